//! The validation rules of one survey response, as every way into the lake (batch ingestion,
//! real-time submit, imports) applies them: each problem names the column and what is wrong.

use super::codes::{is_region, is_valid_agency_code, Channel, ServiceType, Stage};
use super::survey::{Scale, TAP_TOPICS};
use super::Driver;
use chrono::{DateTime, Duration, TimeZone, Utc};

/// One response with typed fields (readers parse text into this, naming the column of a parse
/// failure themselves).
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub response_id: String,
    pub submitted_at: DateTime<Utc>,
    pub collection_id: String,
    pub agency: String,
    pub bureau: String,
    pub service_id: String,
    pub service_type: ServiceType,
    pub channel: Channel,
    pub office_id: Option<String>,
    pub region: Option<String>,
    pub stage: Stage,
    pub scale: Scale,
    pub trust: Option<i64>,
    pub satisfaction: Option<i64>,
    /// In `Driver::ALL` order.
    pub drivers: [Option<i64>; 6],
    /// Tapped indicators in `TAP_TOPICS` order.
    pub positive: [Option<bool>; 7],
    pub negative: [Option<bool>; 7],
    pub free_text: [Option<String>; 2],
    pub weight: f64,
}

/// A rule a response breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub column: String,
    pub reason: String,
}

fn problem(column: &str, reason: String) -> Problem {
    Problem { column: column.to_string(), reason }
}

/// The problem of an `agency` code, if it is not one.
pub fn agency_problem(code: &str) -> Option<Problem> {
    (!is_valid_agency_code(code)).then(|| problem("agency", format!("'{}' is not an agency code (1-16 of A-Z, 0-9, _ and -)", code.escape_debug())))
}

/// The problem of a `region` code, if it is not one.
pub fn region_problem(code: &str) -> Option<Problem> {
    (!is_region(code)).then(|| problem("region", format!("'{}' is not a US state or territory code", code.escape_debug())))
}

/// Longest accepted id or code.
pub const MAX_ID_LEN: usize = 128;
/// Longest accepted free-text answer, in bytes.
pub const MAX_TEXT_LEN: usize = 10_000;
/// Timestamps may be this far ahead of the receiving clock (clock skew).
pub const CLOCK_SKEW: Duration = Duration::minutes(5);

/// The earliest plausible timestamp (A-11 Section 280 CX data collection postdates it).
pub fn earliest() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).single().expect("valid date")
}

fn check_id(out: &mut Vec<Problem>, column: &str, value: &str, required: bool) {
    if value.trim().is_empty() {
        if required {
            out.push(problem(column, "is required".into()));
        }
    } else if value.len() > MAX_ID_LEN {
        out.push(problem(column, format!("is {} characters long (at most {MAX_ID_LEN})", value.len())));
    } else if value.chars().any(|c| c.is_control()) || value != value.trim() {
        out.push(problem(column, format!("'{}' has control characters or surrounding spaces", value.escape_debug())));
    }
}

impl Response {
    /// Every rule the response breaks, judged at `now` (timestamps may not lie in the future).
    pub fn problems(&self, now: DateTime<Utc>) -> Vec<Problem> {
        let mut out = Vec::new();
        check_id(&mut out, "response_id", &self.response_id, true);
        check_id(&mut out, "collection_id", &self.collection_id, true);
        check_id(&mut out, "bureau", &self.bureau, true);
        check_id(&mut out, "service_id", &self.service_id, true);
        out.extend(agency_problem(&self.agency));
        if let Some(office) = &self.office_id {
            check_id(&mut out, "office_id", office, true);
        }
        out.extend(self.region.as_deref().and_then(region_problem));
        if self.submitted_at > now + CLOCK_SKEW {
            out.push(problem("submitted_at", format!("{} is in the future", self.submitted_at.to_rfc3339())));
        } else if self.submitted_at < earliest() {
            out.push(problem("submitted_at", format!("{} is before 2000", self.submitted_at.to_rfc3339())));
        }
        for (column, value) in [("trust", self.trust), ("satisfaction", self.satisfaction)] {
            if let Some(v) = value {
                if !self.scale.is_valid(v) {
                    let expected = if self.scale == Scale::Likert5 { "1-5 on the likert5 scale" } else { "0 or 1 on the thumbs scale" };
                    out.push(problem(column, format!("{v} is not {expected}")));
                }
            }
        }
        for (d, value) in Driver::ALL.iter().zip(&self.drivers) {
            if let Some(v) = value {
                if !Scale::Likert5.is_valid(*v) {
                    out.push(problem(d.as_str(), format!("{v} is not a 1-5 answer")));
                }
            }
        }
        for (i, text) in self.free_text.iter().enumerate() {
            if text.as_ref().is_some_and(|t| t.len() > MAX_TEXT_LEN) {
                out.push(problem(&format!("free_text_{}", i + 1), format!("is longer than {MAX_TEXT_LEN} bytes")));
            }
        }
        if !(self.weight.is_finite() && self.weight > 0.0) {
            out.push(problem("weight", format!("{} is not a positive number", self.weight)));
        }
        let answered = self.trust.is_some()
            || self.satisfaction.is_some()
            || self.drivers.iter().any(Option::is_some)
            || self.positive.iter().chain(&self.negative).any(|t| *t == Some(true));
        if !answered {
            out.push(problem("trust", "the response answers no question (trust, satisfaction, a driver or a tap)".into()));
        }
        debug_assert_eq!(self.positive.len(), TAP_TOPICS.len());
        out
    }
}

/// How a lake's service inventory codes one service.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceCoding {
    pub agency: String,
    pub bureau: String,
    pub service_type: ServiceType,
}

/// The services and offices a lake knows (its dimension tables). Empty tables check nothing,
/// so a lake without an inventory accepts any well-formed code.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inventory {
    pub services: std::collections::HashMap<String, ServiceCoding>,
    /// Office id to the agency that runs it.
    pub offices: std::collections::HashMap<String, String>,
}

impl Inventory {
    /// Problems of a service's coding against the inventory: a service it does not know, and an
    /// agency, bureau or service type (those given) that contradict it. Nothing without an
    /// inventory. Rows and a Touchpoints sidecar are checked by this one rule.
    pub fn service_problems(&self, service_id: &str, agency: Option<&str>, bureau: Option<&str>, service_type: Option<&str>) -> Vec<Problem> {
        let mut out = Vec::new();
        if self.services.is_empty() {
            return out;
        }
        match self.services.get(service_id) {
            None => out.push(problem("service_id", format!("'{}' is not in the lake's service inventory", service_id.escape_debug()))),
            Some(s) => {
                if let Some(a) = agency.filter(|a| *a != s.agency) {
                    out.push(problem("agency", format!("'{a}' but service {service_id} belongs to {}", s.agency)));
                }
                if let Some(b) = bureau.filter(|b| *b != s.bureau) {
                    out.push(problem("bureau", format!("'{}' but service {service_id} belongs to bureau {}", b.escape_debug(), s.bureau)));
                }
                if let Some(t) = service_type.filter(|t| *t != s.service_type.as_str()) {
                    out.push(problem("service_type", format!("'{t}' but service {service_id} is {}", s.service_type)));
                }
            }
        }
        out
    }

    /// Problems of a response's codes against the inventory: unknown services and offices, and
    /// coding that contradicts it (agency, bureau, service type).
    pub fn problems(&self, r: &Response) -> Vec<Problem> {
        let mut out = self.service_problems(&r.service_id, Some(&r.agency), Some(&r.bureau), Some(r.service_type.as_str()));
        if let (Some(office), false) = (&r.office_id, self.offices.is_empty()) {
            match self.offices.get(office) {
                None => out.push(problem("office_id", format!("'{}' is not in the lake's office list", office.escape_debug()))),
                Some(agency) if *agency != r.agency => out.push(problem("office_id", format!("'{office}' is an office of {agency}, not {}", r.agency))),
                Some(_) => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> Response {
        Response {
            response_id: "r-1".into(),
            submitted_at: Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap(),
            collection_id: "VA-S01-digital".into(),
            agency: "VA".into(),
            bureau: "VA-VBA".into(),
            service_id: "VA-S01".into(),
            service_type: ServiceType::Benefits,
            channel: Channel::Digital,
            office_id: None,
            region: Some("PR".into()),
            stage: Stage::Transaction,
            scale: Scale::Likert5,
            trust: Some(4),
            satisfaction: Some(5),
            drivers: [Some(4), None, Some(3), None, None, None],
            positive: [None; 7],
            negative: [None; 7],
            free_text: [None, None],
            weight: 1.0,
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap()
    }

    fn columns(r: &Response) -> Vec<String> {
        r.problems(now()).into_iter().map(|p| p.column).collect()
    }

    #[test]
    fn a_valid_response_has_no_problems() {
        assert_eq!(valid().problems(now()), vec![]);
    }

    #[test]
    fn each_rule_names_its_column() {
        type Breaks = Box<dyn Fn(&mut Response)>;
        let cases: Vec<(Breaks, &str)> = vec![
            (Box::new(|r| r.response_id = "".into()), "response_id"),
            (Box::new(|r| r.response_id = "x".repeat(200)), "response_id"),
            (Box::new(|r| r.collection_id = " padded".into()), "collection_id"),
            (Box::new(|r| r.agency = "va".into()), "agency"),
            (Box::new(|r| r.agency = "../etc".into()), "agency"),
            (Box::new(|r| r.region = Some("XX".into())), "region"),
            (Box::new(|r| r.office_id = Some(format!("a{}b", '\n'))), "office_id"),
            (Box::new(|r| r.submitted_at = now() + Duration::hours(1)), "submitted_at"),
            (Box::new(|r| r.submitted_at = Utc.with_ymd_and_hms(1999, 1, 1, 0, 0, 0).unwrap()), "submitted_at"),
            (Box::new(|r| r.trust = Some(6)), "trust"),
            (Box::new(|r| r.trust = Some(0)), "trust"),
            (
                Box::new(|r| {
                    r.scale = Scale::Thumbs;
                    r.trust = Some(1);
                    r.satisfaction = Some(4)
                }),
                "satisfaction",
            ),
            (Box::new(|r| r.drivers[5] = Some(9)), "employee"),
            (Box::new(|r| r.free_text[1] = Some("x".repeat(MAX_TEXT_LEN + 1))), "free_text_2"),
            (Box::new(|r| r.weight = 0.0), "weight"),
            (Box::new(|r| r.weight = f64::NAN), "weight"),
            (
                Box::new(|r| {
                    r.trust = None;
                    r.satisfaction = None;
                    r.drivers = [None; 6]
                }),
                "trust",
            ),
        ];
        for (i, (breaks, column)) in cases.iter().enumerate() {
            let mut r = valid();
            breaks(&mut r);
            assert_eq!(columns(&r), vec![column.to_string()], "case {i}");
        }
    }

    #[test]
    fn inventory_checks_codes_only_when_it_lists_them() {
        let r = valid();
        assert_eq!(Inventory::default().problems(&r), vec![]);
        let mut inv = Inventory::default();
        inv.services.insert("VA-S01".into(), ServiceCoding { agency: "VA".into(), bureau: "VA-VBA".into(), service_type: ServiceType::Benefits });
        inv.offices.insert("VA-O1".into(), "VA".into());
        inv.offices.insert("SSA-O1".into(), "SSA".into());
        assert_eq!(inv.problems(&r), vec![]);
        let cols = |r: &Response| inv.problems(r).into_iter().map(|p| p.column).collect::<Vec<_>>();
        let mut other = valid();
        other.service_id = "VA-S99".into();
        assert_eq!(cols(&other), ["service_id"]);
        let mut wrong = valid();
        wrong.service_type = ServiceType::Compliance;
        wrong.bureau = "VA-VHA".into();
        assert_eq!(cols(&wrong), ["bureau", "service_type"]);
        let mut office = valid();
        office.office_id = Some("SSA-O1".into());
        assert_eq!(cols(&office), ["office_id"]);
        office.office_id = Some("VA-O1".into());
        assert_eq!(cols(&office), Vec::<String>::new());
    }

    #[test]
    fn clock_skew_and_thumbs_answers_are_accepted() {
        let mut r = valid();
        r.submitted_at = now() + Duration::minutes(4);
        r.scale = Scale::Thumbs;
        r.trust = Some(0);
        r.satisfaction = Some(1);
        assert_eq!(r.problems(now()), vec![]);
        let mut taps_only = valid();
        taps_only.trust = None;
        taps_only.satisfaction = None;
        taps_only.drivers = [None; 6];
        taps_only.positive[1] = Some(true);
        assert_eq!(taps_only.problems(now()), vec![]);
    }
}
