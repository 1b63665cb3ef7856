//! Telemetry and indicators: ingestion (validation with the column named, quarantine,
//! idempotency, conflicts, any format's types, structural errors storing nothing), aggregates,
//! and the drop alarm's detection of the planted drop and its false alarms on a lake without
//! drops.

use crate::common::{analytics, fresh_lake, shared_lake};
use cxlake::analytics::observations::{AggregateQuery, AlarmQuery, ObservationFilter};
use cxlake::analytics::Filter;
use cxlake::domain::observations::ObservationTable;
use cxlake::domain::Dimension;
use cxlake::ingest::formats::{Format, OpenOptions};
use std::path::Path;

fn ingest(lake: &Path, file: &Path, format: Format, table: ObservationTable) -> Result<cxlake::ingest::pipeline::Summary, cxlake::ingest::IngestError> {
    let a = analytics(lake);
    let opts = OpenOptions { inventory: a.catalog().inventory(), now: chrono::Utc::now(), ..Default::default() };
    let lock = cxlake::store::commit::WriteLock::acquire(&a.lake).unwrap();
    cxlake::ingest::observations::ingest_file(&lock, file, format, table, &opts)
}

async fn clicks(lake: &Path, service: &str) -> Vec<cxlake::analytics::observations::AggregateRow> {
    let q = AggregateQuery {
        table: ObservationTable::Telemetry,
        filter: ObservationFilter { filter: Filter::default().with(Dimension::Service, [service]), metrics: Some(vec!["button_clicks".into()]), pages: None },
        by: vec![],
        period: None,
    };
    analytics(lake).aggregate(&q).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn telemetry_ingestion_validates_quarantines_and_is_idempotent() {
    let lake = fresh_lake(2_000, 51, 1);
    let a = analytics(&lake);
    let s = a.catalog().services.iter().find(|s| s.channels.contains(&cxlake::domain::Channel::Digital)).unwrap().clone();
    let dir = lake.parent().unwrap();
    let csv = dir.join("t.csv");
    let valid = [("2022-01-03T00:00:00Z", 10.0), ("2022-01-04", 12.0)];
    std::fs::write(
        &csv,
        format!(
            "service_id,observed_at,metric,value,channel,page\n\
             {id},{},button_clicks,{},digital,submit\n\
             {id},{},button_clicks,{},digital,submit\n\
             {id},2022-01-05,button_clicks,-3,digital,submit\n\
             NOPE-1,2022-01-05,button_clicks,3,digital,submit\n\
             {id},yesterday,button_clicks,3,digital,submit\n\
             {id},2022-01-03T00:00:00Z,button_clicks,11,digital,submit\n\
             {id},2022-01-04,sessions,7,,\n",
            valid[0].0,
            valid[0].1,
            valid[1].0,
            valid[1].1,
            id = s.id
        ),
    )
    .unwrap();
    let sum = ingest(&lake, &csv, Format::Csv, ObservationTable::Telemetry).unwrap();
    assert_eq!((sum.rows_read, sum.rows_stored, sum.rows_quarantined), (7, 3, 4), "{sum:?}");
    let cols: Vec<&str> = sum.quarantined_by_column.keys().map(String::as_str).collect();
    assert_eq!(cols, ["(row)", "observed_at", "service_id", "value"]);
    assert!(
        sum.quarantined_by_column["(row)"].example.starts_with("line 7: conflict: repeats") && sum.quarantined_by_column["(row)"].example.contains("line 2"),
        "{sum:?}"
    );
    assert!(sum.quarantined_by_column["value"].example.contains("not a count"));
    let rows = clicks(&lake, &s.id).await;
    let values: Vec<f64> = valid.iter().map(|v| v.1).collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].count, values.len() as u64);
    assert_eq!(rows[0].sum, values.iter().sum::<f64>());
    assert_eq!((rows[0].min, rows[0].max), (10.0, 12.0));
    assert_eq!(rows[0].median, rows[0].mean);

    // The same file again: it had bad rows, so it is read again (a corrected inventory could
    // store them now), but nothing is stored twice, no problem is recorded twice and the lake
    // version stays.
    let again = ingest(&lake, &csv, Format::Csv, ObservationTable::Telemetry).unwrap();
    assert!(!again.already_ingested, "{again:?}");
    assert_eq!((again.rows_stored, again.duplicates_skipped, again.rows_quarantined), (0, 3, 4), "{again:?}");
    assert_eq!((again.quarantine_already_recorded, again.quarantine_file.as_deref()), (4, None), "{again:?}");
    assert_eq!(again.lake_version, sum.lake_version);

    // Another file overlapping what is stored: equal values are skipped, a different value is
    // quarantined (never overwritten), new ones stored.
    let jsonl = dir.join("t.jsonl");
    std::fs::write(
        &jsonl,
        format!(
            "{{\"service_id\":\"{id}\",\"observed_at\":\"2022-01-04\",\"metric\":\"button_clicks\",\"value\":12,\"channel\":\"digital\",\"page\":\"submit\"}}\n\
             {{\"service_id\":\"{id}\",\"observed_at\":\"2022-01-05T00:00:00Z\",\"metric\":\"button_clicks\",\"value\":9,\"channel\":\"digital\",\"page\":\"submit\"}}\n\
             {{\"service_id\":\"{id}\",\"observed_at\":\"2022-01-04\",\"metric\":\"sessions\",\"value\":8}}\n",
            id = s.id
        ),
    )
    .unwrap();
    let j = ingest(&lake, &jsonl, Format::Jsonl, ObservationTable::Telemetry).unwrap();
    assert_eq!((j.rows_stored, j.duplicates_skipped, j.rows_quarantined), (1, 1, 1), "{j:?}");
    assert!(j.quarantined_by_column["value"].example.contains("already holds 7"), "{j:?}");

    // Parquet with another engine's types (int64 values, a timestamp without zone).
    use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
    let pq = dir.join("t.parquet");
    let batch = RecordBatch::try_from_iter([
        ("service_id", std::sync::Arc::new(StringArray::from(vec![s.id.as_str()])) as ArrayRef),
        (
            "observed_at",
            std::sync::Arc::new(TimestampMillisecondArray::from(vec![chrono::NaiveDate::from_ymd_opt(2022, 1, 6)
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap()
                .and_utc()
                .timestamp_millis()])) as ArrayRef,
        ),
        ("metric", std::sync::Arc::new(StringArray::from(vec!["button_clicks"])) as ArrayRef),
        ("value", std::sync::Arc::new(Int64Array::from(vec![5])) as ArrayRef),
        ("channel", std::sync::Arc::new(StringArray::from(vec!["digital"])) as ArrayRef),
        ("page", std::sync::Arc::new(StringArray::from(vec!["submit"])) as ArrayRef),
    ])
    .unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&pq).unwrap(), batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let p = ingest(&lake, &pq, Format::Parquet, ObservationTable::Telemetry).unwrap();
    assert_eq!((p.rows_stored, p.rows_quarantined), (1, 0), "{p:?}");
    let rows = clicks(&lake, &s.id).await;
    assert_eq!((rows[0].count, rows[0].sum), (4, 10.0 + 12.0 + 9.0 + 5.0));

    // A misspelt column stores nothing and moves no version.
    let broken = dir.join("broken.csv");
    std::fs::write(&broken, format!("service_id,observed_at,metric,valeu\n{},2022-01-07,button_clicks,1\n", s.id)).unwrap();
    let version = cxlake::store::commit::lake_version(&a.lake).unwrap();
    let e = ingest(&lake, &broken, Format::Csv, ObservationTable::Telemetry).unwrap_err().to_string();
    assert!(e.contains("line 1") && e.contains("'valeu'"), "{e}");
    assert_eq!(cxlake::store::commit::lake_version(&a.lake).unwrap(), version);
}

#[tokio::test(flavor = "multi_thread")]
async fn indicators_have_their_own_rules() {
    let lake = fresh_lake(2_000, 53, 1);
    let a = analytics(&lake);
    let catalog = a.catalog();
    let s = &catalog.services[0];
    let foreign_office = catalog.offices.iter().find(|o| o.agency != s.agency).unwrap();
    let csv = lake.parent().unwrap().join("i.csv");
    std::fs::write(
        &csv,
        format!(
            "service_id,observed_at,metric,value,office_id,page\n\
             {id},2022-02-01,first_contact_resolution,0.8,,\n\
             {id},2022-02-01,first_contact_resolution,1.5,{o},\n\
             {id},2022-02-01,wait_time_minutes,12,{fo},\n\
             {id},2022-02-01,wait_time_minutes,12,,/apply\n",
            id = s.id,
            o = catalog.offices.iter().find(|o| o.agency == s.agency).unwrap().id,
            fo = foreign_office.id
        ),
    )
    .unwrap();
    let sum = ingest(&lake, &csv, Format::Csv, ObservationTable::Indicators).unwrap();
    assert_eq!((sum.rows_stored, sum.rows_quarantined), (1, 3), "{sum:?}");
    assert_eq!(sum.quarantined_by_column.keys().map(String::as_str).collect::<Vec<_>>(), ["office_id", "page", "value"]);
}

/// The planted drop (`truth.json`) alarms within a week of its start and not before; on the
/// last day it is the most significant alarm of the lake.
#[tokio::test(flavor = "multi_thread")]
async fn the_planted_telemetry_drop_alarms_within_a_week() {
    let lake = shared_lake();
    let truth: serde_json::Value = serde_json::from_slice(&std::fs::read(lake.join("truth.json")).unwrap()).unwrap();
    let drop = &truth["telemetry"]["drops"][0];
    let service = drop["service_id"].as_str().unwrap();
    let from: chrono::NaiveDate = drop["from"].as_str().unwrap().parse().unwrap();
    let a = analytics(lake);
    let planted = |r: &cxlake::analytics::observations::AlarmRow| r.service_id == service && r.metric == "page_views" && r.page.as_deref() == Some("start");
    let mut first_alarm = None;
    let mut day = from - chrono::Duration::days(14);
    let last = a.alarms(&AlarmQuery::default()).await.unwrap();
    let end = last.as_of.unwrap();
    while day <= end {
        let q = AlarmQuery {
            filter: ObservationFilter { filter: Filter::default().with(Dimension::Service, [service]), ..Default::default() },
            as_of: Some(day),
            ..Default::default()
        };
        let r = a.alarms(&q).await.unwrap();
        if r.rows.iter().any(planted) {
            first_alarm.get_or_insert(day);
        }
        day += chrono::Duration::days(1);
    }
    let first = first_alarm.expect("the planted drop never alarmed");
    assert!(first >= from, "alarm on {first}, before the drop started on {from}");
    let delay = (first - from).num_days();
    assert!(delay <= 6, "detected {delay} days after the drop");
    assert!(planted(&last.rows[0]), "the planted drop is not the most significant alarm: {:?}", last.rows.first());
    eprintln!("planted drop detected {delay} days after it began; {} alarm(s) among {} series on {end}", last.rows.len(), last.series_evaluated);
}

/// False alarms: a lake generated without drops, checked every week of its last year.
#[tokio::test(flavor = "multi_thread")]
async fn alarms_are_rare_without_a_drop() {
    let dir = tempfile::tempdir().unwrap().keep();
    let out = dir.join("lake");
    let cfg = cxlake::generate::GenerateConfig {
        out: out.to_string_lossy().into_owned(),
        rows: 40_000,
        seed: 57,
        fiscal_years: 2,
        first_fiscal_year: 2022,
        drops: false,
        ..Default::default()
    };
    cxlake::generate::generate(&cfg, &|_| {}).unwrap();
    let a = analytics(&out);
    let end = cxlake::domain::FiscalQuarter::new(2023, 4).end();
    let (mut evaluated, mut alarms) = (0usize, 0usize);
    for week in 0..52 {
        let q = AlarmQuery { as_of: Some(end - chrono::Duration::days(7 * week)), ..Default::default() };
        let r = a.alarms(&q).await.unwrap();
        evaluated += r.series_evaluated;
        alarms += r.rows.len();
    }
    let rate = alarms as f64 / evaluated as f64;
    eprintln!("false alarms: {alarms} of {evaluated} series-weeks ({:.4}%)", rate * 100.0);
    assert!(evaluated > 10_000, "{evaluated}");
    assert!(rate < 0.001, "{alarms} false alarms in {evaluated} evaluations");
}
