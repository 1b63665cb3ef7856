//! `cxlake ingest`: one source file in, as one unit. Rows are parsed and validated in parallel
//! chunks, valid rows staged by partition, invalid ones quarantined with file, line, column and
//! reason; at the end the staged rows are deduplicated and published, the quarantine file
//! written, the commit recorded and the file's digest remembered, so ingesting the same file
//! again stores nothing. A structural error stores nothing of the file.

use super::formats::{self, Format, OpenOptions};
use super::stage::Stager;
use super::IngestError;
use cx_domain::validate::Response;
use cx_lake::commit::{ingested, IngestedFile, Staging, WriteLock};
use cx_lake::delta::{Change, TableFile};
use cx_lake::quarantine::{QuarantineRow, QuarantineWriter};
use cx_lake::{Lake, StoreError, Table};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// How often each column's rule was broken, with the first example.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ReasonCount {
    pub rows: u64,
    pub example: String,
}

/// What ingesting one file did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub source: String,
    pub format: String,
    /// The table written: responses, telemetry or indicators.
    pub table: String,
    /// Set when the file was ingested completely before with the same options (its bytes,
    /// format and coding): nothing is read again.
    pub already_ingested: bool,
    pub rows_read: u64,
    pub rows_stored: u64,
    /// Rows with at least one problem (or repeating an id of the same file).
    pub rows_quarantined: u64,
    /// Quarantined rows by the column at fault.
    pub quarantined_by_column: BTreeMap<String, ReasonCount>,
    /// Rows the lake already held (same response id), or exact repeats of an earlier row of
    /// the same file.
    pub duplicates_skipped: u64,
    /// The lines (rows) of those, as ranges: `2-91, 95` (the first 20 ranges, then `...`).
    pub duplicate_lines: String,
    /// Quarantined rows whose problem the quarantine table already recorded for this source
    /// (from an earlier run): counted above, not recorded twice.
    pub quarantine_already_recorded: u64,
    pub files_written: usize,
    pub quarantine_file: Option<String>,
    pub lake_version: u64,
}

impl Summary {
    /// Quarantines one row with all its problems (one quarantine row per problem) and counts it.
    pub(crate) fn quarantine(
        &mut self,
        writer: &mut QuarantineWriter,
        line: u64,
        problems: Vec<cx_domain::validate::Problem>,
        raw: Option<String>,
    ) -> Result<(), StoreError> {
        self.rows_quarantined += 1;
        for p in problems {
            let q = QuarantineRow { source: self.source.clone(), line: Some(line), column: Some(p.column), reason: p.reason, raw: raw.clone() };
            self.count(&q);
            writer.push(q)?;
        }
        Ok(())
    }

    pub(crate) fn count(&mut self, q: &QuarantineRow) {
        let key = q.column.clone().unwrap_or_else(|| "(row)".into());
        let e = self.quarantined_by_column.entry(key).or_default();
        e.rows += 1;
        if e.example.is_empty() {
            e.example = format!("line {}: {}", q.line.unwrap_or(0), q.reason);
        }
    }
}

/// A new run id: sortable by time, unique.
pub fn run_id() -> String {
    format!("{}-{}", chrono::Utc::now().format("%Y%m%dT%H%M%S"), &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// Ingests one file into `lake`. `progress` is told how many rows were read. Reading,
/// validation and staging run without the lake's write lock, so the submit flusher and other
/// writers keep committing meanwhile; the lock is taken to publish (dedup against the lake,
/// files, commit record).
pub fn ingest_file(lake: &Lake, path: &Path, format: Format, opts: &OpenOptions, progress: &dyn Fn(u64)) -> Result<Summary, IngestError> {
    let shown = opts.source_name.clone().unwrap_or_else(|| path.display().to_string());
    let mut summary = Summary { source: shown.clone(), format: format!("{format:?}"), table: "responses".into(), ..Default::default() };
    let digest = opts.ingest_key(path, format, "responses")?;
    let already = |before: IngestedFile, mut summary: Summary| {
        summary.already_ingested = true;
        summary.lake_version = before.version;
        summary
    };
    if let Some(before) = ingested(lake, &digest)? {
        return Ok(already(before, summary));
    }
    let started = std::time::Instant::now();
    let mut source = formats::open(path, format, opts)?;
    let run = run_id();
    let staging = Staging::create(lake, &run)?;
    let mut quarantine = QuarantineWriter::for_source(lake, &run, &shown);
    // Valid rows are staged on their own thread while the next chunk is parsed.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<(Response, u64)>>(2);
    let stage_dir = staging.path().to_path_buf();
    let stager_thread = std::thread::Builder::new()
        .name("cxlake-stage".into())
        .spawn(move || -> Result<Stager, StoreError> {
            let mut stager = Stager::new(&stage_dir);
            for rows in rx {
                for (r, line) in &rows {
                    stager.push(r, *line)?;
                }
            }
            Ok(stager)
        })
        .map_err(|source| StoreError::Io { path: "cxlake-stage thread".into(), source })?;
    let read = (|| -> Result<(), IngestError> {
        while let Some(chunk) = source.next_chunk()? {
            summary.rows_read += chunk.len() as u64;
            progress(chunk.len() as u64);
            let mut valid = Vec::with_capacity(chunk.len());
            for mut row in chunk {
                if let Ok(r) = &row.result {
                    let mut found = opts.inventory.problems(r);
                    if let Some(only) = opts.agency.as_deref().filter(|a| *a != r.agency) {
                        found.push(cx_domain::validate::Problem {
                            column: "agency".into(),
                            reason: format!("'{}' but this upload may only hold rows of agency {only}", r.agency),
                        });
                    }
                    if !found.is_empty() {
                        row.raw = Some(serde_json::Value::Object(super::formats::json::to_object(r)).to_string());
                        row.result = Err(found);
                    }
                }
                match row.result {
                    Ok(response) => valid.push((response, row.line)),
                    Err(problems) => summary.quarantine(&mut quarantine, row.line, problems, row.raw)?,
                }
            }
            if tx.send(valid).is_err() {
                break; // the stager failed; its error is reported below
            }
        }
        Ok(())
    })();
    drop(tx);
    let staged = stager_thread.join().map_err(|_| StoreError::Write { path: shown.clone(), reason: "staging thread panicked".into() })?;
    read?;
    let stager = staged?;
    let t_read = started.elapsed();
    let lock = WriteLock::acquire(lake)?;
    if let Some(before) = lock.ingested(&digest)? {
        return Ok(already(before, summary)); // another process ingested it meanwhile
    }
    let committed = stager.commit(&lock, &run, &shown)?;
    tracing::debug!(read_validate_stage = ?t_read, commit = ?(started.elapsed() - t_read), "ingest phases");
    for q in committed.quarantined {
        summary.rows_quarantined += 1;
        summary.count(&q);
        quarantine.push(q)?;
    }
    summary.rows_stored = committed.stored;
    summary.duplicates_skipped = committed.duplicates_skipped;
    summary.duplicate_lines = line_ranges(&committed.skipped_lines, 20);
    let summary = finish(&lock, Table::Responses, summary, quarantine, committed.added, format!("ingest {shown}"), digest)?;
    drop(staging);
    Ok(summary)
}

/// The end of ingesting one file, whatever its table: the quarantine file, one commit of all
/// the files added (all partitions or none), and the file's digest, in that order. A run that
/// stored nothing commits nothing (the lake version stays); only a file whose every row is
/// now in the lake (none quarantined) is remembered as ingested, so a corrected retry of a
/// file with bad rows is read again rather than refused.
pub(crate) fn finish(
    lock: &WriteLock,
    table: Table,
    mut summary: Summary,
    quarantine: QuarantineWriter,
    added: Vec<TableFile>,
    operation: String,
    digest: String,
) -> Result<Summary, IngestError> {
    summary.files_written = added.len();
    summary.quarantine_already_recorded = quarantine.already_recorded;
    summary.quarantine_file = quarantine.finish()?;
    summary.lake_version = if added.is_empty() { lock.version()? } else { lock.commit(table, Change { operation, added, ..Default::default() })? };
    if summary.rows_quarantined == 0 {
        lock.mark_ingested(&IngestedFile {
            digest,
            source: summary.source.clone(),
            rows_read: summary.rows_read,
            rows_stored: summary.rows_stored,
            version: summary.lake_version,
        })?;
    }
    Ok(summary)
}

/// Sorted line numbers as ranges, `2-91, 95`, the first `max` ranges and then `...`.
pub fn line_ranges(lines: &[u64], max: usize) -> String {
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    for &l in lines {
        match ranges.last_mut() {
            Some((_, end)) if l <= *end + 1 => *end = (*end).max(l),
            _ => ranges.push((l, l)),
        }
    }
    let mut shown: Vec<String> = ranges.iter().take(max).map(|&(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") }).collect();
    if ranges.len() > max {
        shown.push("...".into());
    }
    shown.join(", ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn line_ranges_join_runs_and_stop_at_the_limit() {
        assert_eq!(super::line_ranges(&[], 3), "");
        assert_eq!(super::line_ranges(&[2, 3, 4, 7, 9, 10], 3), "2-4, 7, 9-10");
        assert_eq!(super::line_ranges(&[1, 3, 5, 7], 2), "1, 3, ...");
        assert_eq!(super::line_ranges(&[5, 5, 6], 2), "5-6");
    }
}
