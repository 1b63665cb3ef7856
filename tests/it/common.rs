//! Shared test lakes, generated once per test run with fixed seeds.

use cxlake::analytics::Analytics;
use cxlake::generate::{generate, GenerateConfig};
use cxlake::store::Lake;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Generates a lake into a fresh temporary directory (kept for the whole run).
pub fn fresh_lake(rows: u64, seed: u64, fiscal_years: u32) -> PathBuf {
    let dir = tempfile::tempdir().expect("tempdir").keep();
    let out = dir.join("lake");
    let cfg = GenerateConfig { out: out.to_string_lossy().into_owned(), rows, seed, fiscal_years, first_fiscal_year: 2022, ..Default::default() };
    generate(&cfg, &|_| {}).expect("generate");
    out
}

/// Rows of the shared lake.
pub const SHARED_ROWS: u64 = 40_000;

/// A 40k-row, five-year lake shared by read-only tests.
pub fn shared_lake() -> &'static Path {
    static LAKE: OnceLock<PathBuf> = OnceLock::new();
    LAKE.get_or_init(|| fresh_lake(SHARED_ROWS, 11, 5))
}

pub fn analytics(path: &Path) -> Analytics {
    Analytics::open(Lake::open(path).expect("open lake")).expect("catalog")
}

/// Every data file of the responses table, relative to the lake root.
/// How many times each response id is stored in the data files of the lake at `root`.
pub fn stored_ids(root: &Path) -> std::collections::HashMap<String, usize> {
    let lake = Lake::open(root).expect("open lake");
    let mut ids = std::collections::HashMap::new();
    for f in data_files(root) {
        let relative = f.strip_prefix(root).expect("file under the lake").to_string_lossy().into_owned();
        cxlake::store::commit::for_each_id(&lake, &relative, |id| *ids.entry(id.to_string()).or_default() += 1).unwrap();
    }
    ids
}

/// The live data files of the responses table (those its Delta log holds), sorted.
pub fn data_files(root: &Path) -> Vec<PathBuf> {
    let lake = cxlake::store::Lake::open(root).unwrap();
    let files = lake.objects().block_on({
        let lake = lake.clone();
        async move { lake.response_files(&Default::default()).await }
    });
    files.unwrap().into_iter().map(|f| root.join(f.path)).collect()
}

/// Every `.parquet` file under the responses directory, in the table or not, sorted.
pub fn parquet_files_on_disk(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&root.join("responses"), &mut out);
    out.sort();
    out
}

/// A submitted response (the lake's columns as JSON) for the lake's first service, in
/// collection `collection`, answering trust only.
pub fn submission(lake: &Path, id: &str, collection: &str) -> serde_json::Value {
    let a = analytics(lake);
    let s = &a.catalog().services[0];
    serde_json::json!({
        "response_id": id, "agency": s.agency, "bureau": s.bureau, "service_id": s.id,
        "service_type": s.service_type.as_str(), "channel": "digital", "collection_id": collection,
        "scale": "likert5", "trust": 4, "submitted_at": "2023-03-01T00:00:00Z",
    })
}
