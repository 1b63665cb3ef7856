//! Editing the service inventory (A-11 280.5): records from a file (CSV, JSON lines, Parquet)
//! or from the API are validated together and merged into the services table by id, all or
//! nothing: one invalid record refuses the whole change with every problem named (record,
//! field, rule), so the inventory never holds half an edit. Besides each record's own rules
//! (`domain::inventory`), a change may not repeat an id, move a service to another agency
//! (its responses are partitioned by agency), or, for a collector, touch another agency.

use super::formats::Format;
use super::records::{self, Cell, Record};
use super::IngestError;
use cx_domain::inventory::ServiceRecord;
use cx_lake::commit::WriteLock;
use cx_lake::StoreError;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// One record of a change, with where it came from (`line 3`, `services[1]`), or the problems
/// that kept it from being read.
pub type Change = (String, Result<ServiceRecord, Vec<RecordProblem>>);

/// The columns a services file may have.
pub const COLUMNS: [&str; 13] = [
    "service_id",
    "name",
    "description",
    "agency",
    "agency_name",
    "bureau",
    "bureau_name",
    "org_unit",
    "service_type",
    "channels",
    "designated",
    "non_digital_reason",
    "digitization_options",
];

/// One problem of a change: which record (its line in a file, its position in an API call),
/// which service, which field, and the rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordProblem {
    /// `line 3` of a file, `services[2]` of an API call.
    pub at: String,
    pub service_id: String,
    pub field: String,
    pub reason: String,
}

impl std::fmt::Display for RecordProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (service '{}'), {}: {}", self.at, self.service_id, self.field, self.reason)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServicesError {
    #[error("the inventory was not changed: {} problem(s): {}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<RecordProblem>),
    #[error(transparent)]
    Input(#[from] IngestError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a change did.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ServicesSummary {
    pub added: Vec<String>,
    pub updated: Vec<String>,
    pub unchanged: Vec<String>,
    /// Services in the inventory after the change.
    pub services: usize,
    /// The lake version of the change (the previous one when nothing changed).
    pub lake_version: u64,
}

/// Items of a list field: a list, or text separated by `;` or `|`.
fn items(cell: Option<&Cell>) -> Vec<String> {
    match cell {
        None => Vec::new(),
        Some(Cell::List(v)) => v.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
        Some(other) => other.text().split([';', '|']).map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
    }
}

/// Reads the records of a services file; a value that cannot be read at all (an unknown
/// service type or channel, a designation that is not yes/no) is a problem of its record.
pub fn read_file(path: &Path, format: Format) -> Result<Vec<Change>, IngestError> {
    let rows = records::read(path, format, &COLUMNS)?;
    Ok(rows.iter().map(|r| (format!("line {}", r.line), from_record(r))).collect())
}

fn from_record(r: &Record) -> Result<ServiceRecord, Vec<RecordProblem>> {
    let text = |c: &str| r.get(c).map(|v| v.text().trim().to_string()).unwrap_or_default();
    let id = text("service_id");
    let at = format!("line {}", r.line);
    let mut problems = Vec::new();
    let mut bad = |field: &str, reason: String| problems.push(RecordProblem { at: at.clone(), service_id: id.clone(), field: field.into(), reason });
    let service_type = match text("service_type").parse() {
        Ok(t) => Some(t),
        Err(e) => {
            bad("service_type", if text("service_type").is_empty() { "is required".into() } else { e });
            None
        }
    };
    let mut channels = Vec::new();
    for c in items(r.get("channels")) {
        match c.parse() {
            Ok(ch) => channels.push(ch),
            Err(e) => bad("channels", e),
        }
    }
    let designated = match r.get("designated") {
        None => false,
        Some(Cell::Flag(b)) => *b,
        Some(other) => match super::fields::parse_flag(&other.text()).or_else(|| match other.text().trim().to_ascii_lowercase().as_str() {
            "yes" | "y" => Some(true),
            "no" | "n" => Some(false),
            _ => None,
        }) {
            Some(b) => b,
            None => {
                bad("designated", format!("'{}' is not yes/no, true/false or 1/0", other.text().escape_debug()));
                false
            }
        },
    };
    let Some(service_type) = service_type else {
        return Err(problems);
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    let reason = text("non_digital_reason");
    Ok(ServiceRecord {
        id,
        name: text("name"),
        description: text("description"),
        agency: text("agency"),
        agency_name: text("agency_name"),
        bureau: text("bureau"),
        bureau_name: text("bureau_name"),
        org_unit: text("org_unit"),
        service_type,
        channels,
        designated,
        non_digital_reason: (!reason.is_empty()).then_some(reason),
        digitization_options: items(r.get("digitization_options")),
    })
}

/// Validates `changes` (each with where it came from) against the rules and the current
/// inventory and, when all pass, writes the merged inventory and commits. `only_agency`
/// restricts the change to one agency's services (a collector).
pub fn upsert(lock: &WriteLock, changes: Vec<Change>, only_agency: Option<&str>, source: &str) -> Result<ServicesSummary, ServicesError> {
    let current = cx_lake::services::read(lock.lake())?;
    let mut by_id: BTreeMap<String, ServiceRecord> = current.iter().map(|s| (s.id.clone(), s.clone())).collect();
    let mut problems = Vec::new();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut valid = Vec::new();
    for (at, record) in changes {
        let record = match record {
            Ok(r) => r,
            Err(p) => {
                problems.extend(p);
                continue;
            }
        };
        let mut bad = |field: &str, reason: String| problems.push(RecordProblem { at: at.clone(), service_id: record.id.clone(), field: field.into(), reason });
        for p in record.problems() {
            bad(&p.column, p.reason);
        }
        if let Some(first) = seen.insert(record.id.clone(), at.clone()) {
            bad("service_id", format!("'{}' is also given at {first}", record.id));
        }
        if let Some(old) = by_id.get(&record.id).filter(|old| old.agency != record.agency) {
            bad(
                "agency",
                format!(
                    "'{}' but service {} belongs to {}; a service cannot move to another agency (its responses are stored under it)",
                    record.agency, record.id, old.agency
                ),
            );
        }
        if let Some(only) = only_agency.filter(|only| *only != record.agency) {
            bad("agency", format!("'{}' but this key may only change services of agency {only}", record.agency));
        }
        valid.push(record);
    }
    if !problems.is_empty() {
        return Err(ServicesError::Invalid(problems));
    }
    let mut summary = ServicesSummary::default();
    for r in valid {
        match by_id.get(&r.id) {
            None => summary.added.push(r.id.clone()),
            Some(old) if *old == r => summary.unchanged.push(r.id.clone()),
            Some(_) => summary.updated.push(r.id.clone()),
        }
        by_id.insert(r.id.clone(), r);
    }
    summary.services = by_id.len();
    if summary.added.is_empty() && summary.updated.is_empty() {
        summary.lake_version = lock.version()?;
        return Ok(summary);
    }
    let all: Vec<ServiceRecord> = by_id.into_values().collect();
    let operation = format!("services {source}: {} added, {} updated", summary.added.len(), summary.updated.len());
    summary.lake_version = cx_lake::services::replace(lock, &all, operation)?;
    Ok(summary)
}
