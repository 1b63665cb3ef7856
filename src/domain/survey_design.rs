//! The survey design check of OMB A-11 Section 280.10: a transactional survey has at most 15
//! questions; a required trust question and a required satisfaction question on a 5-point
//! Likert scale (any other scale, such as thumbs or stars, is an alternative OMB must approve:
//! flagged for review, not refused); every other question mapped to a driver category (or
//! declared an additional question, which 280.10 allows only where absolutely necessary);
//! driver statements on the 5-point Likert scale; at most two free-text questions, none
//! required. A definition is JSON or YAML:
//!
//! ```yaml
//! name: Passport renewal
//! questions:
//!   - id: q1
//!     text: I am satisfied with the service I received from the Passport Office.
//!     type: likert5          # likert5, thumbs, stars5, free_text, multiple_choice, yes_no
//!     measure: satisfaction  # trust, satisfaction, a driver, taps, additional
//!     required: true
//! ```
//!
//! Pure: parses text, checks rules, returns every violation with the rule it breaks.

use serde::{Deserialize, Serialize};

/// Most questions a transactional survey may ask (280.10).
pub const MAX_QUESTIONS: usize = 15;
/// Most free-text questions (280.10: "one or at maximum two").
pub const MAX_FREE_TEXT: usize = 2;

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SurveyDefinition {
    pub name: String,
    #[serde(default)]
    pub service_id: Option<String>,
    pub questions: Vec<Question>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Question {
    pub id: String,
    #[serde(default)]
    pub text: String,
    #[serde(rename = "type")]
    pub kind: QuestionType,
    /// What the question measures: trust, satisfaction, a driver (effectiveness, ease,
    /// efficiency, transparency, humanity, employee), taps, or additional.
    #[serde(default)]
    pub measure: Option<String>,
    #[serde(default)]
    pub required: bool,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum QuestionType {
    Likert5,
    Thumbs,
    Stars5,
    FreeText,
    MultipleChoice,
    YesNo,
}

/// How serious a finding is.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The design breaks a rule of 280.10.
    Violation,
    /// Allowed only with OMB's approval, or discouraged: needs a human look.
    Review,
}

/// One finding: which rule, which question (if one), what is wrong.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Finding {
    pub severity: Severity,
    pub rule: &'static str,
    pub question: Option<String>,
    pub message: String,
}

const DRIVERS: [&str; 6] = ["effectiveness", "ease", "efficiency", "transparency", "humanity", "employee"];

impl SurveyDefinition {
    /// Parses JSON (text starting with `{`) or YAML, naming the line of a syntax error.
    pub fn parse(text: &str) -> Result<SurveyDefinition, String> {
        if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| format!("not a survey definition (JSON): {e}"))
        } else {
            serde_norway::from_str(text).map_err(|e| format!("not a survey definition (YAML): {e}"))
        }
    }

    /// Every finding, in question order; empty for a design that follows 280.10.
    pub fn check(&self) -> Vec<Finding> {
        let mut out = Vec::new();
        let mut add = |severity, rule, question: Option<&Question>, message: String| {
            out.push(Finding { severity, rule, question: question.map(|q| q.id.clone()), message })
        };
        use Severity::*;
        if self.questions.len() > MAX_QUESTIONS {
            add(Violation, "280.10 at most 15 questions", None, format!("the survey asks {} questions", self.questions.len()));
        }
        let mut seen = std::collections::HashSet::new();
        for q in &self.questions {
            if !seen.insert(q.id.as_str()) {
                add(Violation, "question ids are unique", Some(q), format!("'{}' is used more than once", q.id));
            }
            if q.text.trim().is_empty() {
                add(Violation, "every question has text", Some(q), "the question has no text".into());
            }
        }
        for (measure, rule) in [("trust", "280.10 required trust question"), ("satisfaction", "280.10 required satisfaction question")] {
            let asked: Vec<&Question> = self.questions.iter().filter(|q| q.measure.as_deref() == Some(measure)).collect();
            match asked.as_slice() {
                [] => add(Violation, rule, None, format!("no question measures {measure}")),
                [q, ..] => {
                    if asked.len() > 1 {
                        add(Violation, rule, Some(asked[1]), format!("{} questions measure {measure}; ask it once", asked.len()));
                    }
                    if !q.required {
                        add(Violation, rule, Some(q), format!("the {measure} question must be required"));
                    }
                    match q.kind {
                        QuestionType::Likert5 => {}
                        QuestionType::Thumbs | QuestionType::Stars5 => add(
                            Review,
                            "280.10 5-point Likert preferred; other scales need OMB's agreement",
                            Some(q),
                            format!("the {measure} question uses {:?}: discuss with OMB before use", q.kind),
                        ),
                        other => add(Violation, rule, Some(q), format!("the {measure} question must be a rating (5-point Likert), not {other:?}")),
                    }
                }
            }
        }
        let free: Vec<&Question> = self.questions.iter().filter(|q| q.kind == QuestionType::FreeText).collect();
        if free.len() > MAX_FREE_TEXT {
            add(Violation, "280.10 at most two free-text questions", Some(free[MAX_FREE_TEXT]), format!("{} free-text questions", free.len()));
        }
        for q in &free {
            if q.required {
                add(Violation, "280.10 free-text questions allow but do not require a response", Some(q), "the free-text question is required".into());
            }
        }
        for q in self.questions.iter().filter(|q| q.kind != QuestionType::FreeText) {
            match q.measure.as_deref() {
                Some("trust" | "satisfaction") => {}
                Some(d) if DRIVERS.contains(&d) => {
                    if q.kind != QuestionType::Likert5 {
                        add(Violation, "280.10 driver statements on a 5-point Likert scale", Some(q), format!("the {d} question is {:?}", q.kind));
                    }
                }
                Some("taps") => {
                    if q.kind != QuestionType::MultipleChoice {
                        add(Violation, "280.10 tapped drivers are a multiple-choice list", Some(q), format!("a taps question must be multiple_choice, not {:?}", q.kind));
                    }
                }
                Some("additional") => add(
                    Review,
                    "280.10 additional questions only if absolutely necessary",
                    Some(q),
                    "an additional question beyond trust, satisfaction and the drivers".into(),
                ),
                Some(other) => add(
                    Violation,
                    "280.10 every question maps to a driver category",
                    Some(q),
                    format!("'{other}' is not a category (trust, satisfaction, {}, taps, additional)", DRIVERS.join(", ")),
                ),
                None => add(Violation, "280.10 every question maps to a driver category", Some(q), "the question names no measure".into()),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(id: &str, kind: QuestionType, measure: Option<&str>, required: bool) -> Question {
        Question { id: id.into(), text: format!("{id}?"), kind, measure: measure.map(str::to_string), required }
    }

    fn good() -> SurveyDefinition {
        use QuestionType::*;
        SurveyDefinition {
            name: "s".into(),
            service_id: None,
            questions: vec![
                q("q1", Likert5, Some("satisfaction"), true),
                q("q2", Likert5, Some("trust"), true),
                q("q3", Likert5, Some("ease"), false),
                q("q4", MultipleChoice, Some("taps"), false),
                q("q5", FreeText, None, false),
            ],
        }
    }

    #[test]
    fn a_design_following_280_10_has_no_findings() {
        assert_eq!(good().check(), vec![]);
    }

    #[test]
    fn each_rule_is_reported_with_its_question() {
        use QuestionType::*;
        let mut s = good();
        s.questions[1].required = false; // trust not required
        s.questions[0].kind = Thumbs; // satisfaction on thumbs: review
        s.questions[2].kind = YesNo; // driver not on Likert
        s.questions.push(q("q6", FreeText, None, true)); // required free text
        s.questions.push(q("q7", FreeText, None, false)); // third free text
        s.questions.push(q("q8", YesNo, Some("purpose"), false)); // unknown category
        s.questions.push(q("q9", YesNo, Some("additional"), false)); // review
        let found = s.check();
        let by = |rule: &str| found.iter().filter(|f| f.rule.contains(rule)).map(|f| f.question.clone().unwrap_or_default()).collect::<Vec<_>>();
        assert_eq!(by("required trust"), ["q2"]);
        assert_eq!(by("OMB's agreement"), ["q1"]);
        assert_eq!(by("driver statements"), ["q3"]);
        assert_eq!(by("do not require"), ["q6"]);
        assert_eq!(by("at most two free-text"), ["q7"]);
        assert_eq!(by("maps to a driver"), ["q8"]);
        assert_eq!(by("absolutely necessary"), ["q9"]);
        assert_eq!(found.iter().filter(|f| f.severity == Severity::Review).count(), 2);
        let mut long = good();
        for i in 0..11 {
            long.questions.push(q(&format!("x{i}"), Likert5, Some("efficiency"), false));
        }
        assert_eq!(long.check().iter().map(|f| f.rule).collect::<Vec<_>>(), ["280.10 at most 15 questions"]);
        let mut missing = good();
        missing.questions.remove(1);
        assert!(missing.check().iter().any(|f| f.message == "no question measures trust"));
    }

    #[test]
    fn definitions_parse_from_json_and_yaml_with_clear_errors() {
        let yaml = "name: s\nquestions:\n  - id: q1\n    text: Rate it\n    type: likert5\n    measure: satisfaction\n    required: true\n";
        let s = SurveyDefinition::parse(yaml).unwrap();
        assert_eq!(s.questions[0].kind, QuestionType::Likert5);
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(SurveyDefinition::parse(&json).unwrap(), s);
        let err = SurveyDefinition::parse("name: s\nquestions:\n  - id: q1\n    type: slider\n").unwrap_err();
        assert!(err.contains("slider") && err.contains("line"), "{err}");
        assert!(SurveyDefinition::parse("{\"name\": 1}").unwrap_err().contains("JSON"));
    }
}
