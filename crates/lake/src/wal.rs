//! The durable submit log: append-only segment files of checksummed records, written by one
//! thread that commits in groups (every append waiting while an fsync runs shares the next
//! one), so an acknowledgement means the record is on disk.
//!
//! Segment `wal-<seq>.log`: an 8-byte magic, then records `[len u32 LE][crc32 u32 LE][payload]`.
//! A write or fsync that fails (a full disk) is answered as an error to everyone in its group
//! and cut off the segment, which is then closed: nothing is ever appended after a torn record,
//! and the next append starts a new segment. Reading skips a stretch that holds no intact
//! record (short, or failing its checksum: never half-applied) and resumes at the next intact
//! one, reporting the damage. Sealed segments are turned into lake files and then deleted by
//! their consumer. A log directory has one owner process (`DirOwner`, a lock on `LOCK`).

use super::error::StoreError;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::SystemTime;

const MAGIC: &[u8; 8] = b"CXWAL001";
/// Largest accepted record (a submitted batch), in bytes.
pub const MAX_RECORD: usize = 64 << 20;
/// Appends gathered into one group commit at most.
const MAX_GROUP: usize = 4096;

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io { path: path.display().to_string(), source }
}

fn segment_name(seq: u64) -> String {
    format!("wal-{seq:020}.log")
}

fn segment_seq(path: &Path) -> Option<u64> {
    path.file_name()?.to_str()?.strip_prefix("wal-")?.strip_suffix(".log")?.parse().ok()
}

/// Segments in `dir`, oldest first.
pub fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, StoreError> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io_err(dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io_err(dir))?;
        if let Some(seq) = segment_seq(&entry.path()) {
            out.push((seq, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// A stretch of a segment that holds no intact record.
#[derive(Debug, Clone, PartialEq)]
pub struct Damage {
    pub offset: u64,
    pub len: u64,
    pub reason: String,
    /// Whether intact records follow it. The writer never appends after a failed write, so
    /// this means the file was damaged after it was written; the records after are kept.
    pub records_after: bool,
}

/// What a segment holds.
#[derive(Debug, Default)]
pub struct SegmentRead {
    pub records: Vec<Vec<u8>>,
    /// Stretches without an intact record (a torn tail, or damage), in file order.
    pub damage: Vec<Damage>,
}

/// The record starting at `at`, and where the next one starts.
fn record_at(bytes: &[u8], at: usize) -> Result<(&[u8], usize), String> {
    let rest = &bytes[at..];
    if rest.len() < 8 {
        return Err(format!("torn record header ({} bytes)", rest.len()));
    }
    let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
    // The writer never logs an empty record; zeros are a hole, not a record.
    if len == 0 {
        return Err("empty record".into());
    }
    if len > MAX_RECORD || rest.len() < 8 + len {
        return Err(format!("torn record (declares {len} bytes, {} present)", rest.len() - 8));
    }
    let payload = &rest[8..8 + len];
    if crc32fast::hash(payload) != crc {
        return Err("record fails its checksum".into());
    }
    Ok((payload, at + 8 + len))
}

/// Reads every intact record of a segment. Past a stretch without one, reading resumes at the
/// next intact record (a checksummed header and payload), so damage in the middle of a
/// segment loses no record after it.
pub fn read_segment(path: &Path) -> Result<SegmentRead, StoreError> {
    let mut bytes = Vec::new();
    File::open(path).and_then(|mut f| f.read_to_end(&mut bytes)).map_err(io_err(path))?;
    let mut out = SegmentRead::default();
    if bytes.len() < MAGIC.len() {
        // Created but its header never reached the disk: nothing was acknowledged in it.
        if !bytes.is_empty() {
            out.damage.push(Damage { offset: 0, len: bytes.len() as u64, reason: "incomplete segment header".into(), records_after: false });
        }
        return Ok(out);
    }
    if &bytes[..MAGIC.len()] != MAGIC {
        return Err(StoreError::Read { path: path.display().to_string(), reason: "not a cxlake submit log segment".into() });
    }
    let mut at = MAGIC.len();
    while at < bytes.len() {
        match record_at(&bytes, at) {
            Ok((payload, next)) => {
                out.records.push(payload.to_vec());
                at = next;
            }
            Err(reason) => {
                let resume = (at + 1..bytes.len()).find(|&o| record_at(&bytes, o).is_ok());
                let end = resume.unwrap_or(bytes.len());
                out.damage.push(Damage { offset: at as u64, len: (end - at) as u64, reason, records_after: resume.is_some() });
                at = end;
            }
        }
    }
    Ok(out)
}

fn encode(payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// The file in a log directory that its owner holds locked (and names itself in).
pub const OWNER_FILE: &str = "LOCK";

/// Sole ownership of a log directory: an exclusive `flock` on `LOCK` in it, released by the
/// operating system when the process dies. Two processes appending to and flushing one log
/// would delete each other's segments.
pub struct DirOwner {
    _file: File,
}

impl DirOwner {
    /// Takes the directory, or fails at once naming the process that holds it.
    pub fn acquire(dir: &Path) -> Result<DirOwner, StoreError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let path = dir.join(OWNER_FILE);
        let mut file = File::options().read(true).write(true).create(true).truncate(false).open(&path).map_err(io_err(&path))?;
        match file.try_lock() {
            Ok(()) => {
                let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
                let me = format!("pid {} on {} since {}\n", std::process::id(), host.trim(), chrono::Utc::now().to_rfc3339());
                file.set_len(0).and_then(|_| file.write_all(me.as_bytes())).and_then(|_| file.sync_data()).map_err(io_err(&path))?;
                Ok(DirOwner { _file: file })
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                Err(StoreError::InUse {
                    path: dir.display().to_string(),
                    holder: format!("{}; give each server its own submit log directory (--wal)", holder.trim()),
                })
            }
            Err(std::fs::TryLockError::Error(e)) => Err(io_err(&path)(e)),
        }
    }
}

/// Called once an append is durable (or failed).
type Done = Box<dyn FnOnce(Result<(), String>) + Send>;

enum Request {
    Append {
        payload: Vec<u8>,
        done: Done,
    },
    /// Closes the current segment (if it holds records); answers with the sealed segment.
    Rotate {
        done: mpsc::Sender<Result<Option<PathBuf>, String>>,
    },
}

struct Open {
    file: File,
    path: PathBuf,
    seq: u64,
    records: u64,
    /// Bytes up to the end of the last durable record.
    len: u64,
}

/// A new segment with its header on disk; on failure nothing is left behind.
fn create_segment(dir: &Path, seq: u64) -> Result<Open, StoreError> {
    let path = dir.join(segment_name(seq));
    let mut file = File::options().create_new(true).write(true).open(&path).map_err(io_err(&path))?;
    let written = file.write_all(MAGIC).and_then(|_| file.sync_all()).and_then(|_| File::open(dir)?.sync_all());
    if let Err(e) = written {
        let _ = std::fs::remove_file(&path);
        return Err(io_err(&path)(e));
    }
    Ok(Open { file, path, seq, records: 0, len: MAGIC.len() as u64 })
}

/// The log writer thread's state.
struct Writer {
    dir: PathBuf,
    /// The segment appends go to; opened at the first append after a start, a rotation or a
    /// failed write.
    open: Option<Open>,
    next_seq: u64,
    /// The newest segment closed after a failed write, holding records the flusher has not
    /// been handed.
    closed: Option<PathBuf>,
    /// Bytes the disk will still take: always `None` but in tests, which simulate a full disk.
    space: Option<Arc<AtomicU64>>,
    backlog: Arc<Mutex<Backlog>>,
}

/// Acknowledged records not yet moved into the lake, by segment.
#[derive(Default)]
struct Backlog {
    /// Segment number -> (when its first record was acknowledged, its records).
    segments: BTreeMap<u64, (SystemTime, u64)>,
}

/// How far the lake is behind the log.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Lag {
    /// Acknowledged records (submits) not yet in the lake.
    pub records: u64,
    /// Since when the oldest of them has waited.
    pub oldest: Option<SystemTime>,
}

impl Writer {
    /// Writes a group's records, fsyncs once, and answers everyone waiting.
    fn commit_group(&mut self, buf: &mut Vec<u8>, waiting: &mut Vec<Done>) {
        if waiting.is_empty() {
            return;
        }
        let result = self.write(buf);
        buf.clear();
        if let (Ok(()), Some(open)) = (&result, self.open.as_mut()) {
            open.records += waiting.len() as u64;
            let mut backlog = self.backlog.lock().unwrap_or_else(|e| e.into_inner());
            backlog.segments.entry(open.seq).or_insert((SystemTime::now(), 0)).1 += waiting.len() as u64;
        }
        for done in waiting.drain(..) {
            done(result.clone());
        }
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        if self.open.is_none() {
            let seq = self.next_seq;
            self.next_seq += 1;
            self.open = Some(create_segment(&self.dir, seq).map_err(|e| format!("starting a submit log segment: {e}"))?);
        }
        let open = self.open.as_mut().expect("opened above");
        let Err(e) = write_synced(&mut open.file, bytes, self.space.as_deref()) else {
            open.len += bytes.len() as u64;
            return Ok(());
        };
        let open = self.open.take().expect("open");
        // Nothing may follow a torn record: cut the segment back to its last durable record
        // and close it; the next append starts a new segment.
        let cut = open.file.set_len(open.len).and_then(|_| open.file.sync_all());
        if let Err(c) = &cut {
            tracing::error!(segment = %open.path.display(), error = %c, "could not cut a failed write off the submit log; the segment is closed and its torn tail will be skipped");
        }
        let error = format!("writing the submit log {}: {e}", open.path.display());
        if open.records > 0 {
            self.closed = Some(open.path);
        } else if cut.is_ok() {
            let _ = std::fs::remove_file(&open.path);
        }
        Err(error)
    }

    /// Closes the current segment if it holds records and answers with it, or with a segment
    /// closed by a failed write since the last rotation.
    fn rotate(&mut self) -> Option<PathBuf> {
        match self.open.take_if(|o| o.records > 0) {
            Some(sealed) => {
                self.closed = None;
                Some(sealed.path)
            }
            None => self.closed.take(),
        }
    }
}

fn write_synced(file: &mut File, bytes: &[u8], space: Option<&AtomicU64>) -> std::io::Result<()> {
    if let Some(space) = space {
        let fits = (space.load(Ordering::SeqCst) as usize).min(bytes.len());
        space.fetch_sub(fits as u64, Ordering::SeqCst);
        file.write_all(&bytes[..fits])?;
        if fits < bytes.len() {
            return Err(std::io::Error::from_raw_os_error(28)); // ENOSPC
        }
        return file.sync_data();
    }
    file.write_all(bytes).and_then(|_| file.sync_data())
}

/// Handle to the log writer thread (cheap to clone).
#[derive(Clone)]
pub struct Wal {
    tx: mpsc::Sender<Request>,
    backlog: Arc<Mutex<Backlog>>,
}

impl Wal {
    /// Starts the log writer; its first append opens a segment after every existing one in
    /// `dir`.
    pub fn start(dir: &Path) -> Result<Wal, StoreError> {
        Wal::start_with_space(dir, None)
    }

    fn start_with_space(dir: &Path, space: Option<Arc<AtomicU64>>) -> Result<Wal, StoreError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let next_seq = segments(dir)?.last().map_or(1, |(s, _)| s + 1);
        let backlog = Arc::new(Mutex::new(Backlog::default()));
        let mut writer = Writer { dir: dir.to_path_buf(), open: None, next_seq, closed: None, space, backlog: backlog.clone() };
        let (tx, rx) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("cxlake-wal".into())
            .spawn(move || {
                let mut buf = Vec::with_capacity(1 << 20);
                while let Ok(first) = rx.recv() {
                    let mut group = vec![first];
                    while group.len() < MAX_GROUP {
                        match rx.try_recv() {
                            Ok(r) => group.push(r),
                            Err(_) => break,
                        }
                    }
                    let mut waiting: Vec<Done> = Vec::new();
                    for request in group {
                        match request {
                            Request::Append { payload, done } => {
                                encode(&payload, &mut buf);
                                waiting.push(done);
                            }
                            Request::Rotate { done } => {
                                writer.commit_group(&mut buf, &mut waiting);
                                let _ = done.send(Ok(writer.rotate()));
                            }
                        }
                    }
                    writer.commit_group(&mut buf, &mut waiting);
                }
            })
            .map_err(|source| StoreError::Io { path: "cxlake-wal thread".into(), source })?;
        Ok(Wal { tx, backlog })
    }

    /// Acknowledged records not yet in the lake, and since when the oldest has waited.
    pub fn lag(&self) -> Lag {
        let backlog = self.backlog.lock().unwrap_or_else(|e| e.into_inner());
        Lag { records: backlog.segments.values().map(|(_, n)| n).sum(), oldest: backlog.segments.values().map(|(t, _)| *t).min() }
    }

    /// Forgets the records of `segment` and every earlier one: they are in the lake.
    pub fn flushed(&self, segment: &Path) {
        if let Some(seq) = segment_seq(segment) {
            self.backlog.lock().unwrap_or_else(|e| e.into_inner()).segments.retain(|s, _| *s > seq);
        }
    }

    /// Appends a record; `done` runs once it is durable (or failed).
    pub fn append(&self, payload: Vec<u8>, done: impl FnOnce(Result<(), String>) + Send + 'static) {
        if let Err(mpsc::SendError(Request::Append { done, .. })) = self.tx.send(Request::Append { payload, done: Box::new(done) }) {
            done(Err("the submit log is closed".into()));
        }
    }

    /// Seals the current segment if it holds records; returns it (or a segment closed by a
    /// failed write since the last call).
    pub fn rotate(&self) -> Result<Option<PathBuf>, String> {
        let (tx, rx) = mpsc::channel();
        self.tx.send(Request::Rotate { done: tx }).map_err(|_| "the submit log is closed".to_string())?;
        rx.recv().map_err(|_| "the submit log writer stopped".to_string())?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn append_wait(wal: &Wal, payload: &[u8]) {
        let (tx, rx) = mpsc::channel();
        wal.append(payload.to_vec(), move |r| tx.send(r).unwrap());
        rx.recv().unwrap().unwrap();
    }

    #[test]
    fn records_survive_and_torn_tails_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::start(dir.path()).unwrap();
        append_wait(&wal, b"one");
        append_wait(&wal, b"two");
        let sealed = wal.rotate().unwrap().unwrap();
        assert_eq!(wal.rotate().unwrap(), None, "an empty segment is not sealed");
        let read = read_segment(&sealed).unwrap();
        assert_eq!(read.records, vec![b"one".to_vec(), b"two".to_vec()]);
        assert!(read.damage.is_empty());

        // Every truncation point of the last record drops exactly that record.
        let bytes = std::fs::read(&sealed).unwrap();
        let second = MAGIC.len() + 8 + 3;
        for cut in second + 1..bytes.len() {
            std::fs::write(&sealed, &bytes[..cut]).unwrap();
            let read = read_segment(&sealed).unwrap();
            assert_eq!(read.records, vec![b"one".to_vec()], "cut at {cut}");
            assert_eq!(read.damage.len(), 1);
            assert_eq!((read.damage[0].offset, read.damage[0].records_after), (second as u64, false));
        }
        // A flipped bit in the payload fails the checksum.
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 1;
        std::fs::write(&sealed, &flipped).unwrap();
        let read = read_segment(&sealed).unwrap();
        assert_eq!(read.records.len(), 1);
        assert!(read.damage[0].reason.contains("checksum"));
    }

    fn try_append(wal: &Wal, payload: &[u8]) -> Result<(), String> {
        let (tx, rx) = mpsc::channel();
        wal.append(payload.to_vec(), move |r| tx.send(r).unwrap());
        rx.recv().unwrap()
    }

    fn all_records(dir: &Path) -> (Vec<Vec<u8>>, Vec<Damage>) {
        let (mut records, mut damage) = (Vec::new(), Vec::new());
        for (_, path) in segments(dir).unwrap() {
            let read = read_segment(&path).unwrap();
            records.extend(read.records);
            damage.extend(read.damage);
        }
        (records, damage)
    }

    /// The disk fills in the middle of a record, appends fail for a while, then space returns:
    /// every acknowledged record is read back, no refused one is, and nothing is damaged.
    #[test]
    fn a_full_disk_loses_no_acknowledged_record() {
        let dir = tempfile::tempdir().unwrap();
        let space = Arc::new(AtomicU64::new(u64::MAX));
        let wal = Wal::start_with_space(dir.path(), Some(space.clone())).unwrap();
        let payload = |i: usize| format!("record {i:04} {}", "x".repeat(i % 7 * 10)).into_bytes();
        let (mut acked, mut refused) = (Vec::new(), Vec::new());
        for i in 0..120 {
            match i {
                40 => space.store(25, Ordering::SeqCst), // the next record tears after 25 bytes
                60 => space.store(u64::MAX, Ordering::SeqCst),
                80 => assert!(wal.rotate().unwrap().is_some()),
                _ => {}
            }
            match try_append(&wal, &payload(i)) {
                Ok(()) => acked.push(payload(i)),
                Err(e) => {
                    assert!(e.contains("No space left"), "{e}");
                    refused.push(payload(i));
                }
            }
        }
        assert_eq!(refused.len(), 20, "appends fail while the disk is full");
        let (records, damage) = all_records(dir.path());
        assert_eq!(records, acked, "every acknowledged record, in order, and nothing else");
        assert!(damage.is_empty(), "the torn write was cut off: {damage:?}");
        // The segment closed by the failure is handed to the flusher even with no new append.
        let wal2_dir = tempfile::tempdir().unwrap();
        let space = Arc::new(AtomicU64::new(u64::MAX));
        let wal2 = Wal::start_with_space(wal2_dir.path(), Some(space.clone())).unwrap();
        try_append(&wal2, b"kept").unwrap();
        space.store(3, Ordering::SeqCst);
        assert!(try_append(&wal2, b"refused").is_err());
        let closed = wal2.rotate().unwrap().expect("the closed segment");
        assert_eq!(read_segment(&closed).unwrap().records, vec![b"kept".to_vec()]);
        assert_eq!(wal2.rotate().unwrap(), None);
    }

    #[test]
    fn reading_resumes_after_damage_in_the_middle() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::start(dir.path()).unwrap();
        for p in [b"first", b"secnd", b"third"] {
            try_append(&wal, p).unwrap();
        }
        let sealed = wal.rotate().unwrap().unwrap();
        let mut bytes = std::fs::read(&sealed).unwrap();
        let second = MAGIC.len() + 8 + 5;
        bytes[second + 9] ^= 0xff; // a payload byte of the second record
        std::fs::write(&sealed, &bytes).unwrap();
        let read = read_segment(&sealed).unwrap();
        assert_eq!(read.records, vec![b"first".to_vec(), b"third".to_vec()]);
        assert_eq!(read.damage, vec![Damage { offset: second as u64, len: 13, reason: "record fails its checksum".into(), records_after: true }]);
    }

    #[test]
    fn a_log_directory_has_one_owner() {
        let dir = tempfile::tempdir().unwrap();
        let owner = DirOwner::acquire(dir.path()).unwrap();
        let err = DirOwner::acquire(dir.path()).err().expect("a second owner is refused").to_string();
        assert!(err.contains(&format!("pid {}", std::process::id())) && err.contains("--wal"), "{err}");
        drop(owner);
        DirOwner::acquire(dir.path()).expect("free again once the owner is gone");
    }

    #[test]
    fn concurrent_appends_share_fsyncs_and_all_land() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::start(dir.path()).unwrap();
        std::thread::scope(|s| {
            for t in 0..8 {
                let wal = wal.clone();
                s.spawn(move || {
                    for i in 0..50 {
                        append_wait(&wal, format!("{t}-{i}").as_bytes());
                    }
                });
            }
        });
        let sealed = wal.rotate().unwrap().unwrap();
        let mut got: Vec<String> = read_segment(&sealed).unwrap().records.into_iter().map(|r| String::from_utf8(r).unwrap()).collect();
        got.sort();
        let mut want: Vec<String> = (0..8).flat_map(|t| (0..50).map(move |i| format!("{t}-{i}"))).collect();
        want.sort();
        assert_eq!(got, want);
        // A restarted log continues after the existing segments.
        let again = Wal::start(dir.path()).unwrap();
        append_wait(&again, b"x");
        let segs = segments(dir.path()).unwrap();
        assert!(segs.len() >= 2 && segs.windows(2).all(|w| w[0].0 < w[1].0));
    }
}
