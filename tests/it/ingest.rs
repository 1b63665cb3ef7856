//! Batch ingestion: every validation rule quarantines with its column and reason, every
//! structural problem is an error naming the file and line, nothing already stored changes,
//! and ingesting the same data twice stores nothing new.

use crate::common::{analytics, data_files, fresh_lake};
use cxlake::ingest::formats::{Format, OpenOptions};
use cxlake::ingest::pipeline::{ingest_file, Summary};
use cxlake::ingest::IngestError;
use cxlake::store::Lake;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const COLUMNS: &[&str] = &[
    "agency",
    "response_id",
    "submitted_at",
    "collection_id",
    "bureau",
    "service_id",
    "service_type",
    "channel",
    "region",
    "stage",
    "scale",
    "trust",
    "satisfaction",
    "effectiveness",
    "positive_ease",
    "free_text_1",
    "weight",
];

/// A valid row for the first service of the lake's inventory.
fn valid_row(lake: &Path, id: &str) -> BTreeMap<&'static str, String> {
    let a = analytics(lake);
    let s = &a.catalog().services[0];
    let mut row = BTreeMap::new();
    for (k, v) in [
        ("agency", s.agency.as_str()),
        ("response_id", id),
        ("submitted_at", "2023-02-01T10:00:00Z"),
        ("collection_id", "c-1"),
        ("bureau", s.bureau.as_str()),
        ("service_id", s.id.as_str()),
        ("service_type", s.service_type.as_str()),
        ("channel", "digital"),
        ("region", "MD"),
        ("stage", "transaction"),
        ("scale", "likert5"),
        ("trust", "4"),
        ("satisfaction", "5"),
        ("effectiveness", "3"),
        ("positive_ease", ""),
        ("free_text_1", ""),
        ("weight", "1.0"),
    ] {
        row.insert(k, v.to_string());
    }
    row
}

fn csv_text(rows: &[BTreeMap<&'static str, String>]) -> String {
    let mut out = COLUMNS.join(",") + "\n";
    for r in rows {
        out += &COLUMNS.iter().map(|c| r[c].clone()).collect::<Vec<_>>().join(",");
        out += "\n";
    }
    out
}

fn ingest(lake: &Path, file: &Path, format: Format) -> Result<Summary, IngestError> {
    let lake = Lake::open(lake).unwrap();
    let opts = OpenOptions { inventory: analytics(lake.local_root().unwrap()).catalog().inventory(), now: chrono::Utc::now(), ..Default::default() };
    ingest_file(&lake, file, format, &opts, &|_| {})
}

/// Path and bytes of every data file: what "nothing already stored changes" compares.
fn snapshot(lake: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    data_files(lake).into_iter().map(|p| (p.clone(), std::fs::read(&p).unwrap())).collect()
}

#[test]
fn every_rule_quarantines_its_row_naming_line_column_and_reason() {
    let lake = fresh_lake(3_000, 21, 2);
    let dir = tempfile::tempdir().unwrap();
    let before = snapshot(&lake);
    type Case = (&'static str, &'static str, String, &'static str);
    let huge = "x".repeat(20_000);
    // (column to change, value, expected column at fault, expected words in the reason)
    let cases: Vec<Case> = vec![
        ("response_id", "", "response_id".into(), "is required"),
        ("submitted_at", "2999-01-01T00:00:00Z", "submitted_at".into(), "in the future"),
        ("submitted_at", "yesterday", "submitted_at".into(), "not a timestamp"),
        ("trust", "7", "trust".into(), "is not 1-5"),
        ("trust", "five", "trust".into(), "not a whole number"),
        ("channel", "fax", "channel".into(), "unknown Channel 'fax'"),
        ("service_type", "benefit", "service_type".into(), "unknown ServiceType"),
        ("agency", "va", "agency".into(), "not an agency code"),
        ("service_id", "XX-S99", "service_id".into(), "not in the lake's service inventory"),
        ("region", "ZZ", "region".into(), "not a US state"),
        ("positive_ease", "maybe", "positive_ease".into(), "not true/false"),
        ("weight", "-1", "weight".into(), "not a positive number"),
        ("free_text_1", "HUGE", "free_text_1".into(), "longer than"),
        ("scale", "stars", "scale".into(), "unknown Scale"),
    ];
    let mut rows = vec![valid_row(&lake, "good-1")];
    for (i, (column, value, _, _)) in cases.iter().enumerate() {
        let mut r = valid_row(&lake, &format!("bad-{i}"));
        r.insert(column, if *value == "HUGE" { huge.clone() } else { value.to_string() });
        rows.push(r);
    }
    let mut thumbs = valid_row(&lake, "bad-thumbs");
    thumbs.insert("scale", "thumbs".into());
    thumbs.insert("effectiveness", "".into());
    thumbs.insert("trust", "3".into());
    thumbs.insert("satisfaction", "1".into());
    rows.push(thumbs);
    let mut empty = valid_row(&lake, "bad-empty");
    for c in ["trust", "satisfaction", "effectiveness"] {
        empty.insert(c, "".into());
    }
    rows.push(empty);
    let mut conflict = valid_row(&lake, "good-1"); // the first row's id with other content
    conflict.insert("trust", "1".into());
    rows.push(conflict);
    rows.push(valid_row(&lake, "good-1")); // the first row again, exactly: a duplicate
    let file = dir.path().join("bad.csv");
    std::fs::write(&file, csv_text(&rows)).unwrap();

    let s = ingest(&lake, &file, Format::Csv).unwrap();
    let n = rows.len() as u64 + 1; // the last line
    assert_eq!((s.rows_read, s.rows_stored, s.rows_quarantined), (rows.len() as u64, 1, rows.len() as u64 - 2), "{s:?}");
    assert_eq!((s.duplicates_skipped, s.duplicate_lines.as_str()), (1, n.to_string().as_str()), "{s:?}");

    // The quarantine table names line, column and reason of each.
    let q = quarantine_rows(&lake.join(s.quarantine_file.as_ref().unwrap()));
    let by_line: BTreeMap<u64, (String, String)> = q.iter().map(|(line, col, reason)| (*line, (col.clone(), reason.clone()))).collect();
    for (i, (_, _, column, words)) in cases.iter().enumerate() {
        let line = i as u64 + 3; // header is line 1, the good row line 2
        let (col, reason) = &by_line[&line];
        assert_eq!(col, column, "line {line}: {reason}");
        assert!(reason.contains(words), "line {line}: '{reason}' lacks '{words}'");
    }
    assert_eq!(by_line[&(n - 3)].0, "trust");
    assert!(by_line[&(n - 3)].1.contains("thumbs"));
    assert!(by_line[&(n - 2)].1.contains("answers no question"));
    assert_eq!(by_line[&(n - 1)].0, "response_id");
    assert!(by_line[&(n - 1)].1.contains("conflict: response_id 'good-1' again with different content (first at line 2)"), "{:?}", by_line[&(n - 1)]);
    assert!(!by_line.contains_key(&n), "the exact repeat is not quarantined");

    // What was stored before is untouched; only the one good row was added.
    let after = snapshot(&lake);
    assert_eq!(after.len(), before.len() + 1);
    for (path, bytes) in &before {
        assert!(after.iter().any(|(p, b)| p == path && b == bytes), "{} changed", path.display());
    }
}

fn quarantine_rows(path: &Path) -> Vec<(u64, String, String)> {
    use arrow::array::{Array, StringArray, UInt64Array};
    let file = std::fs::File::open(path).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap();
    let mut out = Vec::new();
    for b in reader {
        let b = b.unwrap();
        let line = b.column_by_name("line").unwrap().as_any().downcast_ref::<UInt64Array>().unwrap().clone();
        let col = b.column_by_name("column").unwrap().as_any().downcast_ref::<StringArray>().unwrap().clone();
        let reason = b.column_by_name("reason").unwrap().as_any().downcast_ref::<StringArray>().unwrap().clone();
        let source = b.column_by_name("source").unwrap().as_any().downcast_ref::<StringArray>().unwrap().clone();
        for i in 0..b.num_rows() {
            assert!(source.value(i).ends_with(".csv") || source.value(i).ends_with(".jsonl"), "source names the file");
            out.push((line.value(i), col.value(i).to_string(), reason.value(i).to_string()));
        }
    }
    out
}

#[test]
fn malformed_files_are_errors_naming_file_and_line_and_store_nothing() {
    let lake = fresh_lake(2_000, 22, 1);
    let dir = tempfile::tempdir().unwrap();
    let good = csv_text(&[valid_row(&lake, "a"), valid_row(&lake, "b")]);
    let mut lines: Vec<String> = good.lines().map(str::to_string).collect();
    let mut ragged = lines.clone();
    ragged[2] = ragged[2].split(',').take(5).collect::<Vec<_>>().join(",");
    let mut bad_utf8 = good.clone().into_bytes();
    let at = bad_utf8.iter().rposition(|b| *b == b'M').unwrap(); // region "MD" of the last row
    bad_utf8[at] = 0xff;
    lines[0] = lines[0].replace("trust", "trsut");
    let wrong_header = lines.join("\n");
    let missing = good.replace("response_id,", "").lines().map(|l| l.to_string()).collect::<Vec<_>>();
    let _ = missing;
    let cases: Vec<(&str, Vec<u8>, Format, &str)> = vec![
        ("ragged.csv", (ragged.join("\n") + "\n").into_bytes(), Format::Csv, "line 3: has 5 fields where the header has 17"),
        ("latin1.csv", bad_utf8, Format::Csv, "line 3: field 9 is not valid UTF-8"),
        ("empty.csv", Vec::new(), Format::Csv, "line 1: is empty"),
        ("header.csv", format!("{}\n", COLUMNS.join(",")).into_bytes(), Format::Csv, "has a header but no rows"),
        ("typo.csv", wrong_header.into_bytes(), Format::Csv, "line 1: wrong header: unknown column 'trsut'"),
        ("noid.csv", b"agency,submitted_at\nVA,2023-01-01\n".to_vec(), Format::Csv, "missing required column(s): response_id, service_id, scale"),
        ("bad.jsonl", b"{\"agency\": \"VA\"}\n{not json\n".to_vec(), Format::Jsonl, "line 2: is not JSON"),
        ("list.jsonl", b"[1, 2]\n".to_vec(), Format::Jsonl, "line 1: is not a JSON object"),
        ("empty.jsonl", Vec::new(), Format::Jsonl, "has no rows"),
        ("junk.parquet", b"PAR1 not really".to_vec(), Format::Parquet, "is not a readable Parquet file"),
    ];
    let before = snapshot(&lake);
    for (name, bytes, format, words) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let err = ingest(&lake, &path, format).expect_err(name).to_string();
        assert!(err.contains(name) && err.contains(words), "{name}: '{err}' lacks '{words}'");
    }
    assert_eq!(snapshot(&lake), before, "a failed file stores nothing");
    assert!(!lake.join("quarantine").exists(), "and quarantines nothing");
}

#[test]
fn ingesting_the_same_rows_again_stores_nothing_new() {
    let lake = fresh_lake(2_000, 23, 1);
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<_> = (0..50).map(|i| valid_row(&lake, &format!("r{i}"))).collect();
    let file = dir.path().join("a.csv");
    std::fs::write(&file, csv_text(&rows)).unwrap();
    let first = ingest(&lake, &file, Format::Csv).unwrap();
    assert_eq!((first.rows_stored, first.duplicates_skipped, first.already_ingested), (50, 0, false));
    let files = data_files(&lake);
    // The same file: recognised by its digest, not even read.
    let again = ingest(&lake, &file, Format::Csv).unwrap();
    assert!(again.already_ingested && again.rows_read == 0);
    // Other bytes, same responses (reordered, plus two new): only the new ones are stored.
    let mut more: Vec<_> = rows.iter().rev().cloned().collect();
    more.push(valid_row(&lake, "new-1"));
    more.push(valid_row(&lake, "new-2"));
    let file2 = dir.path().join("b.csv");
    std::fs::write(&file2, csv_text(&more)).unwrap();
    let second = ingest(&lake, &file2, Format::Csv).unwrap();
    assert_eq!((second.rows_stored, second.duplicates_skipped, second.rows_quarantined), (2, 50, 0));
    assert_eq!(data_files(&lake).len(), files.len() + 1);
    assert!(second.lake_version > first.lake_version);
}

#[test]
fn the_cli_exits_non_zero_only_when_nothing_could_be_stored() {
    let lake = fresh_lake(2_000, 24, 1);
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_cxlake");
    let run = |files: &[&Path]| std::process::Command::new(bin).arg("ingest").arg("--lake").arg(&lake).args(files).output().unwrap();
    let mut bad = valid_row(&lake, "x");
    bad.insert("trust", "9".into());
    let (all_bad, mixed, dup) = (dir.path().join("bad.csv"), dir.path().join("mixed.csv"), dir.path().join("dup.csv"));
    std::fs::write(&all_bad, csv_text(std::slice::from_ref(&bad))).unwrap();
    std::fs::write(&mixed, csv_text(&[bad.clone(), valid_row(&lake, "ok")])).unwrap();
    std::fs::write(&dup, csv_text(&[valid_row(&lake, "ok")]) + "\n").unwrap();
    let out = run(&[&all_bad]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("trust: 1 rows (e.g. line 2: 9 is not 1-5"), "{out:?}");
    assert!(run(&[&mixed]).status.success(), "one row stored is success");
    let out = run(&[&dup]);
    assert!(out.status.success(), "all duplicates: nothing new, not a failure: {out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("duplicates skipped 1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_merges_small_files_without_changing_any_result() {
    let lake = fresh_lake(2_000, 25, 1);
    let dir = tempfile::tempdir().unwrap();
    let query = |as_of: &str| {
        let filter = if as_of.is_empty() { String::new() } else { format!("filter: {{asOf: {{{as_of}}}}}, ") };
        format!("{{ scores({filter}groupBy: [AGENCY, SERVICE], period: MONTH, weighted: true) {{ agency service period measure n mean sd agreeShare nEffective }} }}")
    };
    let run = |lake: &Path, q: String| {
        let schema = cxlake::api::schema(analytics(lake));
        async move {
            let analyst = cxlake::api::auth::Principal { role: cxlake::api::auth::Role::Analyst, key_id: None };
            let resp = schema.execute(async_graphql::Request::new(q).data(analyst)).await;
            resp.into_result().map(|r| r.data.into_json().unwrap()).map_err(|e| e[0].message.clone())
        }
    };
    let generated = run(&lake, query("")).await.unwrap();
    std::thread::sleep(std::time::Duration::from_millis(50));
    let generated_at = chrono::Utc::now();
    std::thread::sleep(std::time::Duration::from_millis(50));
    // Three files over the same partitions: three small data files in each.
    for f in 0..3 {
        let rows: Vec<_> = (0..40)
            .map(|i| {
                let mut r = valid_row(&lake, &format!("c{f}-{i}"));
                r.insert("submitted_at", format!("2023-0{}-0{}T10:00:00Z", 1 + i % 6, 1 + f));
                r.insert("trust", (1 + (i * 7 + f) % 5).to_string());
                r.insert("weight", format!("{}", 0.5 + (i % 3) as f64 * 0.37));
                r
            })
            .collect();
        let file = dir.path().join(format!("f{f}.csv"));
        std::fs::write(&file, csv_text(&rows)).unwrap();
        ingest(&lake, &file, Format::Csv).unwrap();
    }
    // A killed writer's leftover.
    let some_partition = data_files(&lake)[0].parent().unwrap().to_path_buf();
    std::fs::write(some_partition.join(".tmp-dead.partial"), b"half a file").unwrap();
    let before_files = data_files(&lake);
    let before = run(&lake, query("")).await.unwrap();
    assert_ne!(before, generated);

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cxlake")).args(["compact", "--lake"]).arg(&lake).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("removed 1 temporary files"), "{text}");
    let after_files = data_files(&lake);
    assert!(after_files.len() < before_files.len(), "{} -> {}", before_files.len(), after_files.len());
    assert!(!some_partition.join(".tmp-dead.partial").exists());
    let after = run(&lake, query("")).await.unwrap();
    assert_json_close(&before, &after);
    // Every response id is still stored exactly once.
    let ids = crate::common::stored_ids(&lake);
    assert!(ids.values().all(|n| *n == 1) && ids.len() >= 120);

    // Time travel: the responses table's versions are 0 (created), 1 (generated), 2-4 (the
    // three ingests), then one per compacted partition. Each earlier answer is still there.
    let versions = run(&lake, "{ lakeVersions { lakeVersion tables { table version } } }".to_string()).await.unwrap();
    let responses = versions["lakeVersions"]["tables"].as_array().unwrap().iter().find(|t| t["table"] == "responses").unwrap()["version"].as_u64().unwrap();
    assert!(responses > 4, "{versions}");
    let v1 = run(&lake, query("version: 1")).await.unwrap();
    let total = |v: &serde_json::Value| v["scores"].as_array().unwrap().iter().map(|r| r["n"].as_u64().unwrap()).sum::<u64>();
    assert_eq!((total(&v1), total(&generated)), (total(&generated), total(&generated)), "{versions}");
    assert_json_close(&v1, &generated);
    assert_json_close(&run(&lake, query("version: 4")).await.unwrap(), &before);
    // An instant between the generator and the first ingest reads the generated lake; one
    // before the lake existed reads nothing.
    let then = run(&lake, query(&format!("time: \"{}\"", generated_at.to_rfc3339()))).await.unwrap();
    assert_eq!(total(&then), total(&generated));
    assert_json_close(&then, &generated);
    let long_ago = chrono::Utc::now() - chrono::Duration::days(3650);
    assert_eq!(run(&lake, query(&format!("time: \"{}\"", long_ago.to_rfc3339()))).await.unwrap()["scores"], serde_json::json!([]));
    let err = run(&lake, query(&format!("version: {}", responses + 1))).await.unwrap_err();
    assert!(err.contains(&format!("no version {}", responses + 1)), "{err}");
}

/// Equal JSON, numbers to 1e-12 relative (sums may round differently in the last bit once rows
/// sit in other files).
fn assert_json_close(a: &serde_json::Value, b: &serde_json::Value) {
    use serde_json::Value::*;
    match (a, b) {
        (Number(x), Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!((x - y).abs() <= 1e-12 * x.abs().max(1.0), "{x} != {y}");
        }
        (Array(x), Array(y)) => {
            assert_eq!(x.len(), y.len());
            x.iter().zip(y).for_each(|(x, y)| assert_json_close(x, y));
        }
        (Object(x), Object(y)) => {
            assert_eq!(x.keys().collect::<Vec<_>>(), y.keys().collect::<Vec<_>>());
            x.iter().for_each(|(k, v)| assert_json_close(v, &y[k]));
        }
        _ => assert_eq!(a, b),
    }
}

#[test]
fn json_values_of_the_wrong_type_are_quarantined_naming_the_field() {
    let lake = fresh_lake(2_000, 26, 1);
    let dir = tempfile::tempdir().unwrap();
    let base: serde_json::Map<String, serde_json::Value> =
        valid_row(&lake, "j").into_iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| (k.to_string(), serde_json::Value::String(v))).collect();
    let with = |id: &str, k: &str, v: serde_json::Value| {
        let mut m = base.clone();
        m.insert("response_id".into(), id.into());
        m.insert(k.into(), v);
        serde_json::Value::Object(m).to_string()
    };
    let lines = [
        with("ok", "trust", 4.into()),
        with("j1", "trust", "five".into()),
        with("j2", "trust", true.into()),
        with("j3", "positive_ease", 3.into()),
        with("j4", "weight", serde_json::json!([1])),
        with("j5", "submitted_at", 20230101.into()),
        with("j6", "trsut", 4.into()),
    ];
    let file = dir.path().join("typed.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let s = ingest(&lake, &file, Format::Jsonl).unwrap();
    assert_eq!((s.rows_stored, s.rows_quarantined), (1, 6));
    let q = quarantine_rows(&lake.join(s.quarantine_file.unwrap()));
    let got: Vec<(u64, &str)> = q.iter().map(|(l, c, _)| (*l, c.as_str())).collect();
    assert_eq!(got, [(2, "trust"), (3, "trust"), (4, "positive_ease"), (5, "weight"), (6, "submitted_at"), (7, "trsut")]);
    assert!(q[0].2.contains("\"five\" is not a whole number") && q[3].2.contains("[1] is not a number"), "{q:?}");
}
