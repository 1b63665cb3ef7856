//! The quarterly data a High Impact Service Provider reports for each designated service
//! (A-11 280.14-16): the questions in OMB's order and the columns of performance.gov's public
//! CX data download, one row per service, channel and answer scale.

use super::survey::{Driver, Measure};

/// One reported question: its number (`q1`), the lake measure answering it, and its baseline
/// statement from A-11 280 (agencies adapt the wording; the report carries the standard text).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HispQuestion {
    pub number: u8,
    pub measure: Option<Measure>,
    pub text: &'static str,
}

/// q1-q7 are required where applicable; q8-q11 optional (q8 carries humanity, the driver later
/// A-11 editions and Touchpoints' A-11 v2 form added; q9-q11 are left for agency questions).
pub const QUESTIONS: [HispQuestion; 11] = [
    HispQuestion { number: 1, measure: Some(Measure::Satisfaction), text: "I am satisfied with the service I received." },
    HispQuestion { number: 2, measure: Some(Measure::Trust), text: "This interaction increased my trust in the agency." },
    HispQuestion { number: 3, measure: Some(Measure::Driver(Driver::Effectiveness)), text: "My need was addressed." },
    HispQuestion { number: 4, measure: Some(Measure::Driver(Driver::Ease)), text: "It was easy to complete what I needed to do." },
    HispQuestion { number: 5, measure: Some(Measure::Driver(Driver::Efficiency)), text: "It took a reasonable amount of time to do what I needed to do." },
    HispQuestion { number: 6, measure: Some(Measure::Driver(Driver::Transparency)), text: "I was treated fairly." },
    HispQuestion { number: 7, measure: Some(Measure::Driver(Driver::Employee)), text: "Employees I interacted with were helpful." },
    HispQuestion { number: 8, measure: Some(Measure::Driver(Driver::Humanity)), text: "I felt valued and respected." },
    HispQuestion { number: 9, measure: None, text: "" },
    HispQuestion { number: 10, measure: None, text: "" },
    HispQuestion { number: 11, measure: None, text: "" },
];

/// The columns before the questions.
pub const LEAD_COLUMNS: [&str; 13] = [
    "collection_year",
    "collection_quarter",
    "department_name",
    "department_abbreviation",
    "service_provider_name",
    "service_provider_id",
    "service_name",
    "service_id",
    "channel",
    "point_scale",
    "volume_of_customers",
    "volume_of_customers_provided_survey_opportunity",
    "volume_of_respondents",
];

/// The columns after the questions.
pub const TRAIL_COLUMNS: [&str; 3] = ["service_level_indicators", "summary", "suppressed_questions"];

/// Every column of the report, in order: the lead columns, then `qN_text`, `qN_1` ... `qN_5`
/// for q1 to q11, then the trailing columns.
pub fn columns() -> Vec<String> {
    let mut cols: Vec<String> = LEAD_COLUMNS.iter().map(|c| c.to_string()).collect();
    for q in QUESTIONS {
        cols.push(format!("q{}_text", q.number));
        cols.extend((1..=5).map(|v| format!("q{}_{v}", q.number)));
    }
    cols.extend(TRAIL_COLUMNS.iter().map(|c| c.to_string()));
    cols
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seven_required_questions_in_omb_order() {
        let measures: Vec<&str> = QUESTIONS[..7].iter().map(|q| q.measure.unwrap().column()).collect();
        assert_eq!(measures, ["satisfaction", "trust", "effectiveness", "ease", "efficiency", "transparency", "employee"]);
        let cols = columns();
        assert_eq!(cols.len(), 13 + 11 * 6 + 3);
        let q1 = cols.iter().position(|c| c == "q1_text").unwrap();
        assert_eq!(&cols[q1..q1 + 6], ["q1_text", "q1_1", "q1_2", "q1_3", "q1_4", "q1_5"]);
        assert_eq!(cols.last().unwrap(), "suppressed_questions");
    }
}
