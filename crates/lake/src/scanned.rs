//! What queries read: data files, rows and bytes handed to scans, counted per lake (shared by
//! its clones) for `/metrics`. A scan counts its files and bytes at once; a file's rows come
//! from its Parquet footer, read when the counts are asked for (`Lake::scanned`, async: ranged
//! reads, 16 at a time, no blocking of the caller) and remembered (data files are immutable, so
//! a path's count never changes).

use super::error::StoreError;
use super::objects::Objects;
use foldhash::HashMap;
use futures::StreamExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Footer bytes fetched in one request (our footers are a few kilobytes to tens of them).
const TAIL: u64 = 64 * 1024;

/// Totals since the lake was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Scanned {
    pub files: u64,
    pub rows: u64,
    pub bytes: u64,
}

/// The counters of one lake.
#[derive(Debug, Default)]
pub struct ScanCounters {
    files: AtomicU64,
    rows: AtomicU64,
    bytes: AtomicU64,
    /// Rows per file path, once its footer was read.
    rows_of: Mutex<HashMap<String, u64>>,
    /// Files scanned whose footers are not read yet, by path: (path in the lake, size, how
    /// many scans it was in).
    pending: Mutex<HashMap<String, (String, u64, u64)>>,
    /// Held while footers are read, so two scrapes never count the same file twice.
    reading: tokio::sync::Mutex<()>,
}

impl ScanCounters {
    /// Counts a scan of `files` (paths in the lake and sizes): files and bytes now, rows of
    /// known files now and of the others when the totals are next read.
    pub(super) fn record<'a>(&self, objects: &Objects, files: impl IntoIterator<Item = (&'a str, u64)>) {
        let (mut count, mut rows, mut bytes) = (0, 0, 0);
        {
            let known = self.rows_of.lock().unwrap_or_else(|e| e.into_inner());
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            for (path, size) in files {
                let url = objects.url(path);
                match known.get(&url) {
                    Some(n) => rows += n,
                    None => pending.entry(url).or_insert_with(|| (path.to_string(), size, 0)).2 += 1,
                }
                count += 1;
                bytes += size;
            }
        }
        self.files.fetch_add(count, Ordering::Relaxed);
        self.rows.fetch_add(rows, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The totals, after reading the footers of the files scanned since the last call. A
    /// footer that cannot be read counts no rows (the scan itself reports the file). One call
    /// at a time; a call dropped midway (a scrape that timed out) leaves the pending files for
    /// the next.
    pub(super) async fn totals(&self, objects: &Objects) -> Scanned {
        let _one = self.reading.lock().await;
        let pending: Vec<(String, (String, u64, u64))> =
            self.pending.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|(url, entry)| (url.clone(), entry.clone())).collect();
        if !pending.is_empty() {
            let counts = row_counts(objects, pending.iter().map(|(_, (path, size, _))| (path.as_str(), *size))).await;
            let mut known = self.rows_of.lock().unwrap_or_else(|e| e.into_inner());
            let mut waiting = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            let mut rows = 0;
            for ((url, (_, _, times)), n) in pending.into_iter().zip(counts) {
                // Scans recorded while the footers were read count too (they were added to
                // the same entry); a file whose footer failed is dropped, not retried forever.
                let times = waiting.remove(&url).map_or(times, |(_, _, now)| now);
                if let Ok(n) = n {
                    rows += n * times;
                    known.insert(url, n);
                }
            }
            self.rows.fetch_add(rows, Ordering::Relaxed);
        }
        Scanned { files: self.files.load(Ordering::Relaxed), rows: self.rows.load(Ordering::Relaxed), bytes: self.bytes.load(Ordering::Relaxed) }
    }
}

/// The length of the Parquet footer ending `tail` (from the last 8 bytes: length, `PAR1`).
fn footer_len(tail: &[u8]) -> Option<usize> {
    let n = tail.len();
    (n >= 8 && &tail[n - 4..] == b"PAR1").then(|| u32::from_le_bytes(tail[n - 8..n - 4].try_into().expect("4 bytes")) as usize)
}

fn rows_in_footer(tail: &[u8], path: &str) -> Result<u64, StoreError> {
    let bad = |reason: String| StoreError::Corrupt { path: path.to_string(), reason };
    let n = tail.len();
    let len = footer_len(tail).ok_or_else(|| bad("not a Parquet file (no footer magic)".into()))?;
    if len + 8 > n {
        return Err(bad(format!("footer of {len} bytes is longer than the {n} bytes read")));
    }
    let meta = parquet::file::metadata::ParquetMetaDataReader::decode_metadata(&tail[n - 8 - len..n - 8]).map_err(|e| bad(e.to_string()))?;
    Ok(meta.file_metadata().num_rows() as u64)
}

async fn row_counts<'a>(objects: &Objects, files: impl Iterator<Item = (&'a str, u64)>) -> Vec<Result<u64, StoreError>> {
    let fetches: Vec<_> = files
        .map(|(path, size)| {
            let (objects, path) = (objects.clone(), path.to_string());
            async move {
                let mut tail = objects.read_tail(&path, size, TAIL).await?;
                // A footer longer than the first read (and shorter than the file): read what it needs.
                if let Some(len) = footer_len(&tail).filter(|len| len + 8 > tail.len() && (len + 8) as u64 <= size) {
                    tail = objects.read_tail(&path, size, len as u64 + 8).await?;
                }
                rows_in_footer(&tail, &objects.url(&path))
            }
        })
        .collect();
    futures::stream::iter(fetches).buffered(16).collect::<Vec<_>>().await
}
