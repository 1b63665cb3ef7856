//! Questions and scales of an A-11 transactional survey: the trust and satisfaction questions,
//! the six driver questions, the two answer scales, and the coding dimensions responses are
//! grouped by.

use super::codes::vocabulary;
use std::fmt;
use std::str::FromStr;

vocabulary! {
    /// Answer scale of the trust and satisfaction questions (A-11 280.10: a 5-point Likert
    /// scale is preferred, thumbs up/down allowed).
    Scale {
        Likert5 => "likert5",
        Thumbs => "thumbs",
    }
}

impl Scale {
    /// Whether `value` is a valid answer on this scale.
    pub fn is_valid(self, value: i64) -> bool {
        match self {
            Scale::Likert5 => (1..=5).contains(&value),
            Scale::Thumbs => value == 0 || value == 1,
        }
    }

    /// Whether `value` counts as agreement: top-2-box (4 or 5) on Likert, thumbs up on thumbs.
    pub fn agrees(self, value: i64) -> bool {
        match self {
            Scale::Likert5 => value >= 4,
            Scale::Thumbs => value == 1,
        }
    }

    /// The valid answers, low to high.
    pub fn values(self) -> &'static [i64] {
        match self {
            Scale::Likert5 => &[1, 2, 3, 4, 5],
            Scale::Thumbs => &[0, 1],
        }
    }
}

vocabulary! {
    /// The driver questions of A-11 280 (effectiveness, ease, efficiency, equity/transparency,
    /// humanity, employee interaction), asked as 1-5 Likert items or tapped as
    /// positive/negative indicators (Touchpoints A-11 v2).
    Driver {
        Effectiveness => "effectiveness",
        Ease => "ease",
        Efficiency => "efficiency",
        Transparency => "transparency",
        Humanity => "humanity",
        Employee => "employee",
    }
}

impl Driver {
    /// Name of the tapped-indicator column for this driver (`positive_ease`, ...).
    pub fn tap_column(self, positive: bool) -> String {
        tap_column(self.as_str(), positive)
    }
}

vocabulary! {
    /// A topic of the Touchpoints A-11 v2 tap lists ("What went well?" / "What didn't go so
    /// well?"): the six drivers and `other`. One topic's two indicators form one driver set of
    /// the tapped importance analysis.
    TapTopic {
        Effectiveness => "effectiveness",
        Ease => "ease",
        Efficiency => "efficiency",
        Transparency => "transparency",
        Humanity => "humanity",
        Employee => "employee",
        Other => "other",
    }
}

/// Tapped-indicator topics as stored in the lake: the six drivers plus `other` ([`TapTopic`]).
pub const TAP_TOPICS: &[&str] = &{
    let mut names = [""; TapTopic::ALL.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = TapTopic::ALL[i].as_str();
        i += 1;
    }
    names
};

/// One tapped indicator: a topic on the went-well (positive) or didn't-go-well (negative) list.
/// Its lake column is null when the form did not offer it, false when offered and not tapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TapIndicator {
    pub topic: TapTopic,
    pub positive: bool,
}

impl TapIndicator {
    /// The fourteen indicators: every positive one, then every negative one (topic order).
    pub fn all() -> Vec<TapIndicator> {
        [true, false].into_iter().flat_map(|positive| TapTopic::ALL.iter().map(move |&topic| TapIndicator { topic, positive })).collect()
    }

    /// The lake column (`positive_ease`, ...).
    pub fn column(self) -> String {
        tap_column(self.topic.as_str(), self.positive)
    }
}

impl fmt::Display for TapIndicator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.column())
    }
}

/// `positive_<topic>` or `negative_<topic>`.
pub fn tap_column(topic: &str, positive: bool) -> String {
    format!("{}_{}", if positive { "positive" } else { "negative" }, topic)
}

/// Every tapped-indicator column: `positive_<topic>`, `negative_<topic>` for each topic in turn.
pub fn tap_columns() -> impl Iterator<Item = String> {
    TAP_TOPICS.iter().flat_map(|t| [tap_column(t, true), tap_column(t, false)])
}

/// A question whose answers are scored: trust, satisfaction or one of the drivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Measure {
    Trust,
    Satisfaction,
    Driver(Driver),
}

impl Measure {
    /// Trust, satisfaction, then the six drivers.
    pub fn all() -> Vec<Measure> {
        let mut v = vec![Measure::Trust, Measure::Satisfaction];
        v.extend(Driver::ALL.iter().map(|d| Measure::Driver(*d)));
        v
    }

    /// The lake column holding the answers.
    pub fn column(self) -> &'static str {
        match self {
            Measure::Trust => "trust",
            Measure::Satisfaction => "satisfaction",
            Measure::Driver(d) => d.as_str(),
        }
    }

    /// Whether thumbs answers exist for this question. Drivers are Likert-only; on thumbs
    /// surveys they are tapped indicators instead.
    pub fn has_thumbs(self) -> bool {
        !matches!(self, Measure::Driver(_))
    }
}

impl fmt::Display for Measure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.column())
    }
}

impl FromStr for Measure {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "trust" => Ok(Measure::Trust),
            "satisfaction" => Ok(Measure::Satisfaction),
            other => other.parse::<Driver>().map(Measure::Driver).map_err(|_| {
                format!(
                    "unknown measure '{other}' (expected trust, satisfaction or one of: {})",
                    Driver::ALL.iter().map(|d| d.as_str()).collect::<Vec<_>>().join(", ")
                )
            }),
        }
    }
}

vocabulary! {
    /// The coding dimensions responses can be filtered and grouped by; the text is the column.
    Dimension {
        Agency => "agency",
        Bureau => "bureau",
        Service => "service_id",
        ServiceType => "service_type",
        Channel => "channel",
        Office => "office_id",
        Region => "region",
        Stage => "stage",
    }
}

impl Dimension {
    /// The lake column holding this dimension.
    pub fn column(self) -> &'static str {
        self.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agreement_is_top_two_box_or_thumbs_up() {
        assert!(!Scale::Likert5.agrees(3) && Scale::Likert5.agrees(4) && Scale::Likert5.agrees(5));
        assert!(Scale::Thumbs.agrees(1) && !Scale::Thumbs.agrees(0));
    }

    #[test]
    fn answers_outside_the_scale_are_invalid() {
        assert!(!Scale::Likert5.is_valid(0) && !Scale::Likert5.is_valid(6));
        assert!(!Scale::Thumbs.is_valid(2) && Scale::Thumbs.is_valid(0));
    }

    #[test]
    fn measures_parse_from_their_columns() {
        for m in Measure::all() {
            assert_eq!(m.column().parse::<Measure>().unwrap(), m);
        }
        assert!("trustt".parse::<Measure>().unwrap_err().contains("'trustt'"));
        assert_eq!(Driver::Ease.tap_column(false), "negative_ease");
    }
}
