//! What queries read: data files, rows and bytes handed to scans, counted process-wide for
//! `/metrics`. A file's row count comes from its Parquet footer, read once per file and
//! remembered (data files are immutable, so a path's count never changes); footers of a lake
//! in object storage are fetched concurrently, one ranged request each.

use super::lake::{DataFile, Lake, StoreError};
use super::objects;
use foldhash::HashMap;
use futures::StreamExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};

static FILES: AtomicU64 = AtomicU64::new(0);
static ROWS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);
static ROWS_OF: LazyLock<Mutex<HashMap<String, u64>>> = LazyLock::new(Default::default);

/// Footer bytes fetched in one request (our footers are a few kilobytes to tens of them).
const TAIL: u64 = 64 * 1024;

/// Totals since the process started.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Scanned {
    pub files: u64,
    pub rows: u64,
    pub bytes: u64,
}

pub fn totals() -> Scanned {
    Scanned { files: FILES.load(Ordering::Relaxed), rows: ROWS.load(Ordering::Relaxed), bytes: BYTES.load(Ordering::Relaxed) }
}

/// Counts a scan of `files`. A footer that cannot be read counts no rows (the scan itself
/// reports the file).
pub(super) fn record(lake: &Lake, files: &[DataFile]) {
    let known: Vec<Option<u64>> = {
        let cache = ROWS_OF.lock().expect("row count cache");
        files.iter().map(|f| cache.get(&lake.locate(&f.path)).copied()).collect()
    };
    let missing: Vec<&DataFile> = files.iter().zip(&known).filter(|(_, k)| k.is_none()).map(|(f, _)| f).collect();
    let fetched = row_counts(lake, &missing);
    let mut rows: u64 = known.iter().flatten().sum();
    {
        let mut cache = ROWS_OF.lock().expect("row count cache");
        for (f, n) in missing.iter().zip(fetched) {
            if let Ok(n) = n {
                cache.insert(lake.locate(&f.path), n);
                rows += n;
            }
        }
    }
    FILES.fetch_add(files.len() as u64, Ordering::Relaxed);
    ROWS.fetch_add(rows, Ordering::Relaxed);
    BYTES.fetch_add(files.iter().map(|f| f.size).sum(), Ordering::Relaxed);
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

fn row_counts(lake: &Lake, files: &[&DataFile]) -> Vec<Result<u64, StoreError>> {
    if files.is_empty() {
        return Vec::new();
    }
    let fetches: Vec<_> = files
        .iter()
        .map(|f| {
            let (objects, path, size) = (lake.objects().clone(), f.path.clone(), f.size);
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
    objects::block_on(async move { futures::stream::iter(fetches).buffered(16).collect::<Vec<_>>().await })
}
