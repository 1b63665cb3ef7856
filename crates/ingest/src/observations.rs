//! Ingesting telemetry and service-level indicators: one file (CSV, JSON lines or Parquet) as
//! one unit, like responses. Each row is parsed into a `domain::observations::Observation`
//! (every problem named by column), checked against the service inventory (the service's
//! agency is taken from it when the row has none), and quarantined when anything is wrong;
//! a row repeating an earlier row's key in the same file is quarantined as a duplicate. The
//! rest is grouped by partition and checked against what each partition holds: the same key
//! with the same value is skipped (re-ingesting is idempotent), the same key with another
//! value is quarantined (stored numbers are not silently overwritten). Each partition gets one
//! new file, published atomically before the commit that lists it; the file's digest makes a
//! second ingest of the same bytes a no-op.

use super::formats::{Format, OpenOptions};
use super::pipeline::{run_id, Summary};
use super::records::{self, Cell, Record};
use super::IngestError;
use cx_domain::observations::{Observation, ObservationTable};
use cx_domain::validate::Problem;
use cx_domain::FiscalQuarter;
use cx_lake::commit::{partition_files_in, WriteLock};
use cx_lake::quarantine::QuarantineWriter;
use cx_lake::writer::{parquet_properties, AtomicParquetWriter};
use cx_lake::{observations as stored, PartitionKey, Table};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// The columns an observations file may have.
pub const COLUMNS: [&str; 8] = ["agency", "service_id", "observed_at", "metric", "value", "channel", "page", "office_id"];

fn problem(column: &str, reason: impl Into<String>) -> Problem {
    Problem { column: column.to_string(), reason: reason.into() }
}

/// Parses and validates one row (without the duplicate checks).
pub fn parse(record: &Record, table: ObservationTable, opts: &OpenOptions) -> Result<Observation, Vec<Problem>> {
    let mut problems = Vec::new();
    let text = |c: &str| record.get(c).map(|v| v.text().trim().to_string());
    let required = |c: &str, problems: &mut Vec<Problem>| {
        let v = text(c);
        if v.is_none() {
            problems.push(problem(c, "is required"));
        }
        v.unwrap_or_default()
    };
    let service_id = required("service_id", &mut problems);
    let metric = required("metric", &mut problems);
    let observed_at = match record.get("observed_at") {
        None => {
            problems.push(problem("observed_at", "is required"));
            None
        }
        Some(v) => {
            let t = v.text();
            let parsed = super::fields::parse_timestamp(&t);
            if parsed.is_none() {
                problems.push(problem("observed_at", format!("'{}' is not a timestamp (RFC 3339, e.g. 2025-03-01T00:00:00Z, or a date)", t.escape_debug())));
            }
            parsed
        }
    };
    let value = match record.get("value") {
        None => {
            problems.push(problem("value", "is required"));
            None
        }
        Some(Cell::Number(n)) => Some(*n),
        Some(other) => {
            let t = other.text();
            match t.trim().parse::<f64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    problems.push(problem("value", format!("'{}' is not a number", t.escape_debug())));
                    None
                }
            }
        }
    };
    let channel = match text("channel") {
        None => None,
        Some(c) => match c.parse() {
            Ok(ch) => Some(ch),
            Err(e) => {
                problems.push(problem("channel", e));
                None
            }
        },
    };
    let page = text("page");
    let office_id = text("office_id");
    if page.is_some() && table == ObservationTable::Indicators {
        problems.push(problem("page", "indicators describe a service or an office, not a page"));
    }
    // The agency: from the row, else from the inventory; the two must agree.
    let given = text("agency");
    let coded = opts.inventory.services.get(&service_id);
    let agency = match (&given, coded) {
        (Some(a), Some(c)) if *a != c.agency => {
            problems.push(problem("agency", format!("'{a}' but service {service_id} belongs to {}", c.agency)));
            a.clone()
        }
        (Some(a), _) => a.clone(),
        (None, Some(c)) => c.agency.clone(),
        (None, None) => String::new(),
    };
    if coded.is_none() && !service_id.is_empty() && !opts.inventory.services.is_empty() {
        problems.push(problem("service_id", format!("'{}' is not in the lake's service inventory", service_id.escape_debug())));
    } else if agency.is_empty() && !service_id.is_empty() {
        problems.push(problem("agency", "is required when the lake has no service inventory to take it from"));
    } else if !cx_domain::codes::is_valid_agency_code(&agency) && !agency.is_empty() {
        problems.push(problem("agency", format!("'{}' is not an agency code", agency.escape_debug())));
    }
    if let (Some(office), false) = (&office_id, opts.inventory.offices.is_empty()) {
        match opts.inventory.offices.get(office) {
            None => problems.push(problem("office_id", format!("'{}' is not in the lake's office list", office.escape_debug()))),
            Some(a) if *a != agency && !agency.is_empty() => problems.push(problem("office_id", format!("'{office}' is an office of {a}, not {agency}"))),
            Some(_) => {}
        }
    }
    if let Some(only) = opts.agency.as_deref().filter(|only| !agency.is_empty() && *only != agency) {
        problems.push(problem("agency", format!("'{agency}' but this upload may only hold rows of agency {only}")));
    }
    let (Some(observed_at), Some(value)) = (observed_at, value) else {
        return Err(problems);
    };
    let o = Observation { agency, service_id, observed_at, metric, value, channel, page, office_id };
    problems.extend(o.problems(table, opts.now));
    if problems.is_empty() {
        Ok(o)
    } else {
        Err(problems)
    }
}

/// Ingests one file of `table` under `lock`.
pub fn ingest_file(lock: &WriteLock, path: &Path, format: Format, table: ObservationTable, opts: &OpenOptions) -> Result<Summary, IngestError> {
    let shown = opts.source_name.clone().unwrap_or_else(|| path.display().to_string());
    let mut summary = Summary { source: shown.clone(), format: format!("{format:?}"), table: table.as_str().into(), ..Default::default() };
    let digest = opts.ingest_key(path, format, table.as_str())?;
    if let Some(before) = lock.ingested(&digest)? {
        summary.already_ingested = true;
        summary.lake_version = before.version;
        return Ok(summary);
    }
    let rows = records::read(path, format, &COLUMNS)?;
    summary.rows_read = rows.len() as u64;
    let run = run_id();
    let mut quarantine = QuarantineWriter::for_source(lock.lake(), &run, &shown);
    let mut seen: HashMap<String, (u64, f64)> = HashMap::new();
    let mut skipped_lines = Vec::new();
    let mut partitions: BTreeMap<PartitionKey, Vec<(Observation, u64, String)>> = BTreeMap::new();
    for record in &rows {
        match parse(record, table, opts) {
            Err(problems) => summary.quarantine(&mut quarantine, record.line, problems, Some(record.raw()))?,
            Ok(o) => {
                // An exact repeat of an earlier row is a duplicate (as it is across runs); the
                // same observation with another value is a conflict.
                if let Some(&(first, value)) = seen.get(&o.key()) {
                    if value == o.value {
                        summary.duplicates_skipped += 1;
                        skipped_lines.push(record.line);
                    } else {
                        let p = problem(
                            "(row)",
                            format!(
                                "conflict: repeats the service, metric, time, channel, page and office of line {first} with another value ({} there)",
                                value
                            ),
                        );
                        summary.quarantine(&mut quarantine, record.line, vec![p], Some(record.raw()))?;
                    }
                    continue;
                }
                seen.insert(o.key(), (record.line, o.value));
                let key = PartitionKey { agency: o.agency.clone(), quarter: FiscalQuarter::of(o.observed_at.date_naive()) };
                partitions.entry(key).or_default().push((o, record.line, record.raw()));
            }
        }
    }
    let lake = lock.lake().clone();
    let store_table = Table::Observations(table);
    let mut added = Vec::new();
    for (key, mut rows) in partitions {
        let mut stored_keys = HashMap::new();
        for file in partition_files_in(&lake, store_table, &key)? {
            stored::read_keys(&lake, &file, &key.agency, &mut stored_keys)?;
        }
        let mut fresh = Vec::with_capacity(rows.len());
        for (o, line, raw) in rows.drain(..) {
            match stored_keys.get(&o.key()) {
                None => fresh.push(o),
                Some(v) if *v == o.value => {
                    summary.duplicates_skipped += 1;
                    skipped_lines.push(line);
                }
                Some(v) => {
                    let p = problem(
                        "value",
                        format!("{} but the lake already holds {v} for this service, metric and time; stored values are not overwritten", o.value),
                    );
                    summary.quarantine(&mut quarantine, line, vec![p], Some(raw))?;
                }
            }
        }
        if fresh.is_empty() {
            continue;
        }
        fresh.sort_by(|a, b| {
            (&a.service_id, &a.metric, a.channel, &a.page, &a.office_id, a.observed_at).cmp(&(
                &b.service_id,
                &b.metric,
                b.channel,
                &b.page,
                &b.office_id,
                b.observed_at,
            ))
        });
        let target = format!("{}/part-{run}.parquet", key.dir_in(store_table));
        let mut w = AtomicParquetWriter::in_lake(&lake, &target, stored::arrow_schema(), parquet_properties(&[]))?;
        w.write(&stored::batch(&fresh))?;
        let size = w.finish()?;
        summary.rows_stored += fresh.len() as u64;
        added.push(cx_lake::delta::TableFile { path: target, partition: Some(key), size, rows: fresh.len() as u64 });
    }
    skipped_lines.sort_unstable();
    summary.duplicate_lines = super::pipeline::line_ranges(&skipped_lines, 20);
    super::pipeline::finish(lock, store_table, summary, quarantine, added, format!("ingest {} {shown}", table.as_str()), digest)
}
