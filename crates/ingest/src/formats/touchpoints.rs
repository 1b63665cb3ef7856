//! Touchpoints A-11 exports. The files carry answers only; the coding (agency, bureau, service,
//! channel, collection, scale) comes from a sidecar TOML file or command-line flags, and which
//! question is which (trust, satisfaction, a driver) is stated explicitly in the mapping.
//!
//! v2 response CSV (17 columns): `external_id`, `question_1` (thumbs 0/1 or Likert 1-5),
//! `positive_{effectiveness,ease,efficiency,transparency,humanity,employee,other}`, the same
//! seven `negative_*`, `question_4` (free text). v1: `external_id` and Likert items
//! `question_1`..`question_N`. Either may add `created_at` (the submission time); without it
//! the mapping gives `submitted_at` for every row.
//!
//! ```toml
//! agency = "VA"
//! bureau = "VA-VBA"
//! service_id = "VA-S01"
//! channel = "digital"
//! collection_id = "VA-S01-digital"
//! scale = "thumbs"
//! [questions]
//! question_1 = "trust"
//! ```

use super::csv::{CsvLayout, FieldSource, LayoutFn};
use super::Format;
use crate::fields::{col, input_column};
use crate::IngestError;
use cx_domain::survey::tap_columns;
use cx_domain::validate::Inventory;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// The coding of a Touchpoints export (sidecar file and flags).
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    pub agency: Option<String>,
    pub bureau: Option<String>,
    pub service_id: Option<String>,
    /// Taken from the lake's service inventory when not given.
    pub service_type: Option<String>,
    pub channel: Option<String>,
    pub collection_id: Option<String>,
    pub scale: Option<String>,
    pub stage: Option<String>,
    pub office_id: Option<String>,
    pub region: Option<String>,
    /// For files without `created_at`: when every response was submitted.
    pub submitted_at: Option<String>,
    pub weight: Option<f64>,
    /// File column to lake column: `trust`, `satisfaction`, a driver, `free_text_1`,
    /// `free_text_2`, or `ignore`.
    #[serde(default)]
    pub questions: BTreeMap<String, String>,
}

impl Mapping {
    /// Reads a sidecar file.
    pub fn read(path: &Path) -> Result<Mapping, IngestError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| IngestError::Io { path: shown.clone(), source })?;
        toml::from_str(&text).map_err(|e| IngestError::Malformed {
            path: shown,
            line: e.span().map_or(0, |s| text[..s.start].lines().count().max(1) as u64),
            message: e.message().to_string(),
        })
    }

    /// `self` with every field `over` sets replacing it (flags override the sidecar).
    pub fn overlaid(mut self, over: Mapping) -> Mapping {
        macro_rules! take {
            ($($f:ident),*) => { $( if over.$f.is_some() { self.$f = over.$f; } )* };
        }
        take!(agency, bureau, service_id, service_type, channel, collection_id, scale, stage, office_id, region, submitted_at, weight);
        self.questions.extend(over.questions);
        self
    }
}

impl Mapping {
    /// The coding values that no row could make valid, each naming its key: unknown scale,
    /// channel, service type, stage or region, a malformed agency code or weight, and where the
    /// lake has an inventory, a service it does not know or coding that contradicts it. Checked
    /// before any row is read, so a wrong sidecar fails at once instead of quarantining the file.
    pub fn problems(&self, service_type: Option<&str>, inventory: &Inventory) -> Vec<String> {
        use cx_domain::validate::{agency_problem, region_problem};
        use cx_domain::{Channel, Scale, ServiceType, Stage};
        fn vocab<T: std::str::FromStr<Err = String>>(out: &mut Vec<String>, key: &str, v: Option<&str>) {
            if let Some(Err(e)) = v.map(|v| v.trim().parse::<T>()) {
                out.push(format!("{key}: {e}"));
            }
        }
        let trim = |v: &Option<String>| v.as_deref().map(str::trim).map(str::to_string);
        let (agency, bureau, region) = (trim(&self.agency), trim(&self.bureau), trim(&self.region));
        let mut out = Vec::new();
        vocab::<Scale>(&mut out, "scale", self.scale.as_deref());
        vocab::<Channel>(&mut out, "channel", self.channel.as_deref());
        vocab::<ServiceType>(&mut out, "service_type", service_type);
        vocab::<Stage>(&mut out, "stage", self.stage.as_deref());
        if let Some(w) = self.weight.filter(|w| !(w.is_finite() && *w > 0.0)) {
            out.push(format!("weight: {w} is not a positive number"));
        }
        // The row rules themselves, for the values every row would get.
        let mut rules: Vec<_> = region.as_deref().and_then(region_problem).into_iter().chain(agency.as_deref().and_then(agency_problem)).collect();
        if let Some(id) = self.service_id.as_deref() {
            rules.extend(inventory.service_problems(id.trim(), agency.as_deref(), bureau.as_deref(), service_type.map(str::trim)));
        }
        out.extend(rules.into_iter().map(|p| format!("{}: {}", p.column, p.reason)));
        out
    }
}

/// The Touchpoints export a header looks like, if any: `external_id` and `question_N` columns,
/// with the v2 form's `positive_*`/`negative_*` tap columns (v2) or without them (v1).
pub fn looks_like<'a>(header: impl Iterator<Item = &'a str>) -> Option<Format> {
    let names: Vec<&str> = header.map(str::trim).collect();
    let has = |n: &str| names.contains(&n);
    if !has("external_id") || !names.iter().any(|n| n.starts_with("question_")) {
        return None;
    }
    let taps = tap_columns().filter(|t| has(t)).count();
    Some(if taps > 0 { Format::TouchpointsV2 } else { Format::TouchpointsV1 })
}

/// Lake columns a question may be mapped to.
fn question_target(target: &str) -> Option<usize> {
    match target {
        "trust" | "satisfaction" | "free_text_1" | "free_text_2" => input_column(target),
        t if cx_domain::Driver::ALL.iter().any(|d| d.as_str() == t) => input_column(t),
        _ => None,
    }
}

/// The layout for a Touchpoints export, checked against the file's header when it is read.
pub fn layout_fn(format: Format, mapping: &Mapping, inventory: &Inventory) -> Result<LayoutFn, IngestError> {
    let config = |message: String| IngestError::Mapping { message };
    let mut constants = vec![FieldSource::Absent; col::COUNT];
    let mut missing = Vec::new();
    let mut set = |c: usize, name: &str, v: &Option<String>, required: bool| match v {
        Some(v) => constants[c] = FieldSource::Constant(v.clone()),
        None if required => missing.push(name.to_string()),
        None => {}
    };
    set(col::AGENCY, "agency", &mapping.agency, true);
    set(col::BUREAU, "bureau", &mapping.bureau, true);
    set(col::SERVICE_ID, "service_id", &mapping.service_id, true);
    set(col::CHANNEL, "channel", &mapping.channel, true);
    set(col::COLLECTION_ID, "collection_id", &mapping.collection_id, true);
    let default_scale = (format == Format::TouchpointsV1).then(|| "likert5".to_string());
    set(col::SCALE, "scale", &mapping.scale.clone().or(default_scale), true);
    set(col::STAGE, "stage", &mapping.stage, false);
    set(col::OFFICE_ID, "office_id", &mapping.office_id, false);
    set(col::REGION, "region", &mapping.region, false);
    set(col::WEIGHT, "weight", &mapping.weight.map(|w| w.to_string()), false);
    let service_type = mapping.service_type.clone().or_else(|| {
        let s = inventory.services.get(mapping.service_id.as_deref()?)?;
        Some(s.service_type.to_string())
    });
    set(col::SERVICE_TYPE, "service_type (not in the lake's inventory for this service)", &service_type, true);
    if !missing.is_empty() {
        return Err(config(format!("a Touchpoints export needs its coding from --mapping or flags; missing: {}", missing.join(", "))));
    }
    let problems = mapping.problems(service_type.as_deref(), inventory);
    if !problems.is_empty() {
        return Err(config(format!("the coding (--mapping or flags) can never be valid, no row was read: {}", problems.join("; "))));
    }
    let mut questions = BTreeMap::new();
    for (column, target) in &mapping.questions {
        if target == "ignore" {
            questions.insert(column.clone(), None);
            continue;
        }
        let c = question_target(target)
            .ok_or_else(|| config(format!("questions.{column} = '{target}': expected trust, satisfaction, a driver, free_text_1, free_text_2 or ignore")))?;
        questions.insert(column.clone(), Some(c));
    }
    if format == Format::TouchpointsV2 && !questions.contains_key("question_1") {
        return Err(config(
            "a Touchpoints v2 export needs the mapping to say what question_1 asks: questions.question_1 = \"trust\" or \"satisfaction\"".into(),
        ));
    }
    questions.entry("question_4".into()).or_insert(if format == Format::TouchpointsV2 { input_column("free_text_1") } else { None });
    let submitted_at = mapping.submitted_at.clone();
    let prefix = format!("{}-", mapping.collection_id.clone().unwrap_or_default());
    Ok(Box::new(move |header| {
        let mut sources = constants;
        let mut seen: Vec<&str> = Vec::new();
        for (i, name) in header.iter().enumerate() {
            let name = name.trim();
            if seen.contains(&name) {
                return Err(format!("column '{name}' appears twice"));
            }
            seen.push(name);
            let taps = tap_columns().any(|t| t == name);
            let target = match name {
                "external_id" => {
                    sources[col::RESPONSE_ID] = FieldSource::ColumnOrLine(i, prefix.clone());
                    continue;
                }
                "created_at" => Some(col::SUBMITTED_AT),
                n if taps && format == Format::TouchpointsV2 => input_column(n),
                n => match questions.get(n) {
                    Some(target) => *target,
                    None if n.starts_with("question_") => {
                        return Err(format!("column '{n}' is not mapped: say what it asks in the mapping's [questions] (or 'ignore')"))
                    }
                    None => return Err(format!("unknown column '{}' for a {format:?} export", n.escape_debug())),
                },
            };
            if let Some(c) = target {
                sources[c] = FieldSource::Column(i);
            }
        }
        if !seen.contains(&"external_id") {
            return Err("missing column 'external_id'".into());
        }
        if format == Format::TouchpointsV2 {
            let expected = tap_columns().chain(["question_1".into()]);
            let absent: Vec<String> = expected.filter(|e| !seen.contains(&e.as_str())).collect();
            if !absent.is_empty() {
                return Err(format!("missing Touchpoints v2 column(s): {}", absent.join(", ")));
            }
        }
        if sources[col::SUBMITTED_AT] == FieldSource::Absent {
            match &submitted_at {
                Some(t) => sources[col::SUBMITTED_AT] = FieldSource::Constant(t.clone()),
                None => return Err("no created_at column and no submitted_at in the mapping: when were these responses submitted?".into()),
            }
        }
        Ok(CsvLayout { sources })
    }))
}
