//! The durable submit log: append-only segment files of checksummed records, written by one
//! thread that commits in groups (every append waiting while an fsync runs shares the next
//! one), so an acknowledgement means the record is on disk.
//!
//! Segment `wal-<seq>.log`: an 8-byte magic, then records `[len u32 LE][crc32 u32 LE][payload]`.
//! Reading stops at the first record that is short (a torn write) or fails its checksum, and
//! reports it: such a tail is dropped, never half-applied. Sealed segments are turned into
//! lake files and then deleted by their consumer.

use super::lake::StoreError;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

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
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(seq) = name.strip_prefix("wal-").and_then(|n| n.strip_suffix(".log")).and_then(|n| n.parse().ok()) {
            out.push((seq, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// What a segment holds.
#[derive(Debug, Default)]
pub struct SegmentRead {
    pub records: Vec<Vec<u8>>,
    /// Where and why reading stopped early (a torn or corrupt tail), if it did.
    pub dropped_tail: Option<(u64, String)>,
}

/// Reads every intact record of a segment.
pub fn read_segment(path: &Path) -> Result<SegmentRead, StoreError> {
    let mut bytes = Vec::new();
    File::open(path).and_then(|mut f| f.read_to_end(&mut bytes)).map_err(io_err(path))?;
    let mut out = SegmentRead::default();
    if bytes.len() < MAGIC.len() {
        // Created but its header never reached the disk: nothing was acknowledged in it.
        out.dropped_tail = (!bytes.is_empty()).then(|| (0, "incomplete segment header".to_string()));
        return Ok(out);
    }
    if &bytes[..MAGIC.len()] != MAGIC {
        return Err(StoreError::Write { path: path.display().to_string(), reason: "not a cxlake submit log segment".into() });
    }
    let mut at = MAGIC.len();
    while at < bytes.len() {
        let rest = &bytes[at..];
        if rest.len() < 8 {
            out.dropped_tail = Some((at as u64, format!("torn record header ({} bytes)", rest.len())));
            break;
        }
        let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
        if len > MAX_RECORD || rest.len() < 8 + len {
            out.dropped_tail = Some((at as u64, format!("torn record (declares {len} bytes, {} present)", rest.len() - 8)));
            break;
        }
        let payload = &rest[8..8 + len];
        if crc32fast::hash(payload) != crc {
            out.dropped_tail = Some((at as u64, "record fails its checksum".into()));
            break;
        }
        out.records.push(payload.to_vec());
        at += 8 + len;
    }
    Ok(out)
}

fn encode(payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// Called once an append is durable (or failed).
type Done = Box<dyn FnOnce(Result<(), String>) + Send>;

enum Request {
    Append { payload: Vec<u8>, done: Done },
    /// Closes the current segment (if it holds records) and starts the next; answers with the
    /// sealed segment.
    Rotate { done: mpsc::Sender<Result<Option<PathBuf>, String>> },
}

struct Open {
    file: File,
    path: PathBuf,
    seq: u64,
    records: u64,
}

fn create_segment(dir: &Path, seq: u64) -> Result<Open, StoreError> {
    let path = dir.join(segment_name(seq));
    let mut file = File::options().create_new(true).write(true).open(&path).map_err(io_err(&path))?;
    file.write_all(MAGIC).and_then(|_| file.sync_all()).map_err(io_err(&path))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir))?;
    Ok(Open { file, path, seq, records: 0 })
}

/// Handle to the log writer thread (cheap to clone).
#[derive(Clone)]
pub struct Wal {
    tx: mpsc::Sender<Request>,
}

impl Wal {
    /// Starts writing a new segment after every existing one in `dir`.
    pub fn start(dir: &Path) -> Result<Wal, StoreError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let next = segments(dir)?.last().map_or(1, |(s, _)| s + 1);
        let mut open = create_segment(dir, next)?;
        let dir = dir.to_path_buf();
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
                                let flushed = sync(&mut open, &mut buf, &mut waiting);
                                let sealed = flushed.and_then(|_| {
                                    if open.records == 0 {
                                        return Ok(None);
                                    }
                                    let next = create_segment(&dir, open.seq + 1).map_err(|e| e.to_string())?;
                                    Ok(Some(std::mem::replace(&mut open, next).path))
                                });
                                let _ = done.send(sealed);
                            }
                        }
                    }
                    let _ = sync(&mut open, &mut buf, &mut waiting);
                }
            })
            .map_err(|source| StoreError::Io { path: "cxlake-wal thread".into(), source })?;
        Ok(Wal { tx })
    }

    /// Appends a record; `done` runs once it is durable (or failed).
    pub fn append(&self, payload: Vec<u8>, done: impl FnOnce(Result<(), String>) + Send + 'static) {
        if let Err(mpsc::SendError(Request::Append { done, .. })) = self.tx.send(Request::Append { payload, done: Box::new(done) }) {
            done(Err("the submit log is closed".into()));
        }
    }

    /// Seals the current segment if it holds records; returns it.
    pub fn rotate(&self) -> Result<Option<PathBuf>, String> {
        let (tx, rx) = mpsc::channel();
        self.tx.send(Request::Rotate { done: tx }).map_err(|_| "the submit log is closed".to_string())?;
        rx.recv().map_err(|_| "the submit log writer stopped".to_string())?
    }
}

/// Writes the pending records, fsyncs once, and answers everyone waiting.
fn sync(open: &mut Open, buf: &mut Vec<u8>, waiting: &mut Vec<Done>) -> Result<(), String> {
    if waiting.is_empty() {
        return Ok(());
    }
    let result = open
        .file
        .write_all(buf)
        .and_then(|_| open.file.sync_data())
        .map_err(|e| format!("writing the submit log {}: {e}", open.path.display()));
    buf.clear();
    if result.is_ok() {
        open.records += waiting.len() as u64;
    }
    for done in waiting.drain(..) {
        done(result.clone());
    }
    result
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
        assert!(read.dropped_tail.is_none());

        // Every truncation point of the last record drops exactly that record.
        let bytes = std::fs::read(&sealed).unwrap();
        let second = MAGIC.len() + 8 + 3;
        for cut in second + 1..bytes.len() {
            std::fs::write(&sealed, &bytes[..cut]).unwrap();
            let read = read_segment(&sealed).unwrap();
            assert_eq!(read.records, vec![b"one".to_vec()], "cut at {cut}");
            assert_eq!(read.dropped_tail.unwrap().0, second as u64);
        }
        // A flipped bit in the payload fails the checksum.
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 1;
        std::fs::write(&sealed, &flipped).unwrap();
        let read = read_segment(&sealed).unwrap();
        assert_eq!(read.records.len(), 1);
        assert!(read.dropped_tail.unwrap().1.contains("checksum"));
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
        assert!(segs.len() >= 3 && segs.windows(2).all(|w| w[0].0 < w[1].0));
    }
}
