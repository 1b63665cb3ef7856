//! What writers killed mid-write leave (`.tmp-*.partial` files beside the files they were
//! writing): never visible to readers, and removed by the next writer once it holds the lock
//! (issue 18: they stayed until a manual `compact`).

use crate::common::{analytics, data_files, fresh_lake};
use cxlake::analytics::ScoresQuery;
use cxlake::store::commit::WriteLock;
use cxlake::store::Lake;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Plants a dead writer's temporary file in each partition directory of a few tables and in
/// the writer-only directories; returns them, and files that are not ours (kept).
fn plant(lake: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let partition = |table: &str| {
        let mut dirs: Vec<PathBuf> = walkdirs(&lake.join(table), 3);
        dirs.sort();
        dirs.into_iter().take(2).collect::<Vec<_>>()
    };
    let mut dirs = partition("responses");
    dirs.extend(partition("telemetry"));
    dirs.extend(["_lake/ingested", "dimensions/services"].map(|d| lake.join(d)));
    let mut ours = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        std::fs::create_dir_all(dir).unwrap();
        let f = dir.join(format!(".tmp-dead{i:04}.partial"));
        std::fs::write(&f, b"PAR1 half a row group").unwrap();
        ours.push(f);
    }
    let theirs = vec![dirs[0].join(".tmp-notes.txt"), dirs[0].join("export.partial"), lake.join(".tmp-root.partial")];
    for f in &theirs {
        std::fs::write(f, b"someone else's").unwrap();
    }
    (ours, theirs)
}

fn walkdirs(dir: &Path, depth: usize) -> Vec<PathBuf> {
    if depth == 0 {
        return vec![dir.to_path_buf()];
    }
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walkdirs(&p, depth - 1));
        }
    }
    out
}

fn digests(lake: &Path) -> BTreeMap<PathBuf, String> {
    data_files(lake).into_iter().map(|f| (f.clone(), blake3::hash(&std::fs::read(&f).unwrap()).to_hex().to_string())).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn taking_the_writer_lock_removes_dead_writers_temporary_files_and_nothing_else() {
    let root = fresh_lake(5_000, 51, 1);
    let before = digests(&root);
    let scores = analytics(&root).scores(&ScoresQuery::default()).await.unwrap().rows;
    let (ours, theirs) = plant(&root);
    // Readers never see them.
    assert_eq!(digests(&root), before);
    assert_eq!(analytics(&root).scores(&ScoresQuery::default()).await.unwrap().rows, scores);

    let lake = Lake::open(&root).unwrap();
    // While another writer holds the lake, a starting server leaves them to it.
    let held = WriteLock::acquire(&lake).unwrap();
    assert_eq!(held.temporary_files_removed(), ours.len());
    for f in &ours {
        assert!(!f.exists(), "{} is still there", f.display());
    }
    let (ours, _) = plant(&root);
    assert!(WriteLock::try_acquire(&lake).unwrap().is_none());
    assert!(ours.iter().all(|f| f.exists()));
    drop(held);
    let lock = WriteLock::try_acquire(&lake).unwrap().expect("the lake is free");
    assert_eq!(lock.temporary_files_removed(), ours.len());
    drop(lock);
    for f in &ours {
        assert!(!f.exists(), "{} is still there", f.display());
    }
    for f in &theirs {
        assert!(f.exists(), "{} is not a writer's temporary file and must stay", f.display());
    }
    assert_eq!(digests(&root), before, "data files are untouched");
    assert_eq!(analytics(&root).scores(&ScoresQuery::default()).await.unwrap().rows, scores);
}

#[test]
fn a_writing_server_clears_them_when_it_starts() {
    let root = fresh_lake(3_000, 52, 1);
    let before = digests(&root);
    let (ours, theirs) = plant(&root);
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_cxlake"))
        .args(["serve", "--submit", "--listen", "127.0.0.1:0", "--lake"])
        .arg(&root)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while ours.iter().any(|f| f.exists()) && std::time::Instant::now() < deadline && server.try_wait().unwrap().is_none() {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let exited = server.try_wait().unwrap();
    server.kill().ok();
    server.wait().ok();
    assert!(exited.is_none(), "the server exited: {exited:?}");
    let left: Vec<_> = ours.iter().filter(|f| f.exists()).collect();
    assert!(left.is_empty(), "left after the server started: {left:?}");
    assert!(theirs.iter().all(|f| f.exists()));
    assert_eq!(digests(&root), before);
}

/// An ingest stages and writes its quarantine without the write lock: its temporary files are
/// locked while it writes, and a writer taking the lock meanwhile leaves them alone.
#[test]
fn a_live_writers_temporary_file_survives_the_sweep() {
    let root = fresh_lake(2_000, 52, 1);
    let lake = Lake::open(&root).unwrap();
    let mut live = cxlake::store::quarantine::QuarantineWriter::new(&lake, "live-run");
    // Past 8,192 rows the writer starts its file.
    for i in 0..9_000 {
        live.push(cxlake::store::quarantine::QuarantineRow { source: "x.csv".into(), line: Some(i), column: None, reason: "bad".into(), raw: None }).unwrap();
    }
    let temporary = |root: &Path| -> Vec<PathBuf> {
        walkdirs(&root.join(cxlake::store::quarantine::QUARANTINE_DIR), 0)
            .into_iter()
            .flat_map(|d| std::fs::read_dir(d).map(|e| e.map(|e| e.unwrap().path()).collect::<Vec<_>>()).unwrap_or_default())
            .filter(|p| p.file_name().unwrap().to_string_lossy().ends_with(".partial"))
            .collect()
    };
    let before = temporary(&root);
    assert_eq!(before.len(), 1, "the quarantine writer holds one temporary file: {before:?}");
    let lock = WriteLock::acquire(&lake).unwrap();
    assert_eq!(lock.temporary_files_removed(), 0);
    assert!(before[0].exists());
    drop(lock);
    let written = live.finish().unwrap();
    assert!(written.is_some(), "the quarantine file was published");
}
