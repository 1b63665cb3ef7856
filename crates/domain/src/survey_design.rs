//! The survey design check, by edition of the rules a definition follows:
//!
//! - `a11_2022` (the default): OMB A-11 Section 280.10 as written in 2022. A transactional
//!   survey has at most 15 questions; a required trust question and a required satisfaction
//!   question on a 5-point Likert scale (any other scale, such as thumbs or stars, is an
//!   alternative OMB must approve: flagged for review, not refused); every other question mapped
//!   to a driver category (or declared an additional question, which 280.10 allows only where
//!   absolutely necessary); driver statements on the 5-point Likert scale; at most two free-text
//!   questions, none required.
//! - `touchpoints_a11_v2`: GSA Touchpoints' standard A-11 v2 form (`db/seeds/forms/a11_v2.rb`,
//!   fall 2023 on), 280.10's "tapping" design: a required trust question on thumbs up/down (or
//!   1-5 in its `a11_v2_radio` variant); a "What went well?" and a "What didn't go so well?"
//!   checkbox list, each offering at least effectiveness and ease; exactly one free-text
//!   comment, not required. No satisfaction item; any question beyond these four is flagged for
//!   review. The 15-question cap, unique ids, texts and categories of 280.10 hold here too.
//!
//! A definition is JSON or YAML; `edition` is optional (a caller's explicit edition overrides
//! it). A tapped list is a `multiple_choice` question measuring `taps`, with its `options`
//! (effectiveness, ease, efficiency, transparency, humanity, employee, other: the lake's
//! `positive_*` / `negative_*` columns) and, on the v2 form, its `polarity`:
//!
//! ```yaml
//! name: Passport renewal
//! edition: a11_2022          # or touchpoints_a11_v2; a11_2022 when omitted
//! questions:
//!   - id: q1
//!     text: I am satisfied with the service I received from the Passport Office.
//!     type: likert5          # likert5, thumbs, stars5, free_text, multiple_choice, yes_no
//!     measure: satisfaction  # trust, satisfaction, a driver, taps, additional
//!     required: true
//!   - id: q2
//!     text: What went well?
//!     type: multiple_choice
//!     measure: taps
//!     polarity: positive     # positive (went well) or negative (didn't go so well)
//!     options: [effectiveness, ease, efficiency, transparency, humanity, employee, other]
//! ```
//!
//! Pure: parses text, checks rules, returns every finding with the rule and the question.

use serde::{Deserialize, Serialize};

/// Most questions a transactional survey may ask (280.10).
pub const MAX_QUESTIONS: usize = 15;
/// Most free-text questions (280.10: "one or at maximum two").
pub const MAX_FREE_TEXT: usize = 2;
/// The drivers every list of the Touchpoints A-11 v2 form must offer (the issue's minimum: the
/// two process drivers every transaction has).
pub const V2_REQUIRED_OPTIONS: [&str; 2] = ["effectiveness", "ease"];

/// Which rules a definition is checked against.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
pub enum Edition {
    /// OMB A-11 Section 280.10, 2022 text: trust and satisfaction, drivers mapped.
    #[default]
    #[serde(rename = "a11_2022")]
    A11Of2022,
    /// GSA Touchpoints' A-11 v2 form: trust, went-well and didn't-go-well lists, a comment.
    #[serde(rename = "touchpoints_a11_v2")]
    TouchpointsA11V2,
}

impl Edition {
    pub const ALL: [Edition; 2] = [Edition::A11Of2022, Edition::TouchpointsA11V2];

    /// The name in definitions, on the command line and in messages.
    pub fn name(self) -> &'static str {
        match self {
            Edition::A11Of2022 => "a11_2022",
            Edition::TouchpointsA11V2 => "touchpoints_a11_v2",
        }
    }
}

impl std::fmt::Display for Edition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SurveyDefinition {
    pub name: String,
    /// The rules the definition follows; `a11_2022` when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edition: Option<Edition>,
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
    /// A tapped list's side: what went well (positive) or what didn't (negative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub polarity: Option<Polarity>,
    /// A tapped list's options: drivers and `other`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
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

/// The side of a tapped list (Touchpoints' `positive_*` and `negative_*` indicators).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Polarity {
    /// "What went well?"
    Positive,
    /// "What didn't go so well?"
    Negative,
}

/// How serious a finding is.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The design breaks a rule of its edition.
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

/// What a tapped list may offer: the six drivers and `other` (Touchpoints' A-11 v2 options).
const TAP_OPTIONS: [&str; 7] = ["effectiveness", "ease", "efficiency", "transparency", "humanity", "employee", "other"];

const RULE_QUESTION_COUNT: &str = "280.10 at most 15 questions";
const RULE_MAPPED: &str = "280.10 every question maps to a driver category";
const RULE_OTHER_SCALE: &str = "280.10 5-point Likert preferred; other scales need OMB's agreement";
const RULE_ADDITIONAL: &str = "280.10 additional questions only if absolutely necessary";
/// 280.10: tapping or a multiple-choice question "enables the selection of individual drivers".
const RULE_TAP_OPTIONS: &str = "280.10 a tapped list offers drivers";
const RULE_V2_TRUST: &str = "Touchpoints A-11 v2 required trust question (thumbs or 1-5)";
const RULE_V2_WENT_WELL: &str = "Touchpoints A-11 v2 'What went well?' list";
const RULE_V2_NOT_WELL: &str = "Touchpoints A-11 v2 'What didn't go so well?' list";
const RULE_V2_COMMENT: &str = "Touchpoints A-11 v2 exactly one comment, not required";
const RULE_V2_FORM: &str = "Touchpoints A-11 v2 asks trust, two lists and a comment only";

impl SurveyDefinition {
    /// Parses JSON (text starting with `{`) or YAML, naming the line of a syntax error.
    pub fn parse(text: &str) -> Result<SurveyDefinition, String> {
        if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| format!("not a survey definition (JSON): {e}"))
        } else {
            serde_norway::from_str(text).map_err(|e| format!("not a survey definition (YAML): {e}"))
        }
    }

    /// The edition a check follows: the caller's when given (a flag or argument overrides the
    /// definition), else the definition's `edition`, else `a11_2022`.
    pub fn edition(&self, asked: Option<Edition>) -> Edition {
        asked.or(self.edition).unwrap_or_default()
    }

    /// Every finding under the definition's own edition (`a11_2022` when it names none); empty
    /// for a design that follows its rules.
    pub fn check(&self) -> Vec<Finding> {
        self.check_as(self.edition(None))
    }

    /// Every finding under `edition`, rule by rule; empty for a design that follows it.
    pub fn check_as(&self, edition: Edition) -> Vec<Finding> {
        let mut out = Vec::new();
        let mut add = |severity, rule, question: Option<&Question>, message: String| {
            out.push(Finding { severity, rule, question: question.map(|q| q.id.clone()), message })
        };
        use Severity::*;
        if self.questions.len() > MAX_QUESTIONS {
            add(Violation, RULE_QUESTION_COUNT, None, format!("the survey asks {} questions", self.questions.len()));
        }
        let mut seen = std::collections::HashSet::new();
        for q in &self.questions {
            if !seen.insert(q.id.as_str()) {
                add(Violation, "question ids are unique", Some(q), format!("'{}' is used more than once", q.id));
            }
            if q.text.trim().is_empty() {
                add(Violation, "every question has text", Some(q), "the question has no text".into());
            }
            let list = q.measure.as_deref() == Some("taps");
            if !list && (q.polarity.is_some() || !q.options.is_empty()) {
                add(Violation, RULE_TAP_OPTIONS, Some(q), "only a tapped list (measure taps) has options or a polarity".into());
            }
            let mut offered = std::collections::HashSet::new();
            for o in &q.options {
                if !TAP_OPTIONS.contains(&o.as_str()) {
                    add(Violation, RULE_TAP_OPTIONS, Some(q), format!("'{o}' is not an option ({})", TAP_OPTIONS.join(", ")));
                } else if !offered.insert(o.as_str()) {
                    add(Violation, RULE_TAP_OPTIONS, Some(q), format!("'{o}' is offered more than once"));
                }
            }
        }
        match edition {
            Edition::A11Of2022 => self.check_2022(&mut add),
            Edition::TouchpointsA11V2 => self.check_v2(&mut add),
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
                        add(
                            Violation,
                            "280.10 tapped drivers are a multiple-choice list",
                            Some(q),
                            format!("a taps question must be multiple_choice, not {:?}", q.kind),
                        );
                    }
                }
                Some("additional") => {
                    if edition == Edition::A11Of2022 {
                        add(Review, RULE_ADDITIONAL, Some(q), "an additional question beyond trust, satisfaction and the drivers".into())
                    }
                }
                Some(other) => {
                    add(Violation, RULE_MAPPED, Some(q), format!("'{other}' is not a category (trust, satisfaction, {}, taps, additional)", DRIVERS.join(", ")))
                }
                None => add(Violation, RULE_MAPPED, Some(q), "the question names no measure".into()),
            }
        }
        out
    }

    /// The 2022 text of 280.10: required trust and satisfaction on a 5-point Likert scale, at
    /// most two free-text questions, none required.
    fn check_2022(&self, add: &mut impl FnMut(Severity, &'static str, Option<&Question>, String)) {
        use Severity::*;
        for (measure, rule) in [("trust", "280.10 required trust question"), ("satisfaction", "280.10 required satisfaction question")] {
            let asked = self.measuring(measure);
            match asked.as_slice() {
                [] => {
                    let mut message = format!("no {measure} question: required by the 2022 text of 280.10");
                    if self.questions.iter().any(|q| q.polarity.is_some()) {
                        message += &format!("; the Touchpoints A-11 v2 form asks none: check it with edition {}", Edition::TouchpointsA11V2);
                    }
                    add(Violation, rule, None, message)
                }
                [q, ..] => {
                    if asked.len() > 1 {
                        add(Violation, rule, Some(asked[1]), format!("{} questions measure {measure}; ask it once", asked.len()));
                    }
                    if !q.required {
                        add(Violation, rule, Some(q), format!("the {measure} question must be required"));
                    }
                    match q.kind {
                        QuestionType::Likert5 => {}
                        QuestionType::Thumbs | QuestionType::Stars5 => {
                            add(Review, RULE_OTHER_SCALE, Some(q), format!("the {measure} question uses {:?}: discuss with OMB before use", q.kind))
                        }
                        other => add(Violation, rule, Some(q), format!("the {measure} question must be a rating (5-point Likert), not {other:?}")),
                    }
                }
            }
        }
        let free = self.free_text();
        if free.len() > MAX_FREE_TEXT {
            add(Violation, "280.10 at most two free-text questions", Some(free[MAX_FREE_TEXT]), format!("{} free-text questions", free.len()));
        }
        for q in &free {
            if q.required {
                add(Violation, "280.10 free-text questions allow but do not require a response", Some(q), "the free-text question is required".into());
            }
        }
    }

    /// The Touchpoints A-11 v2 form (`a11_v2` and `a11_v2_radio`): a required trust question on
    /// thumbs up/down or 1-5, a went-well and a didn't-go-well list each offering at least
    /// effectiveness and ease, exactly one comment, not required; nothing else.
    fn check_v2(&self, add: &mut impl FnMut(Severity, &'static str, Option<&Question>, String)) {
        use Severity::*;
        let trust = self.measuring("trust");
        match trust.as_slice() {
            [] => add(Violation, RULE_V2_TRUST, None, "no trust question: the v2 form asks trust first".into()),
            [q, ..] => {
                if trust.len() > 1 {
                    add(Violation, RULE_V2_TRUST, Some(trust[1]), format!("{} questions measure trust; ask it once", trust.len()));
                }
                if !q.required {
                    add(Violation, RULE_V2_TRUST, Some(q), "the trust question must be required".into());
                }
                match q.kind {
                    QuestionType::Thumbs | QuestionType::Likert5 => {}
                    QuestionType::Stars5 => add(Review, RULE_OTHER_SCALE, Some(q), "the trust question uses Stars5: discuss with OMB before use".into()),
                    other => add(Violation, RULE_V2_TRUST, Some(q), format!("the trust question must be thumbs up/down or 1-5 (likert5), not {other:?}")),
                }
            }
        }
        for (polarity, rule, title) in
            [(Polarity::Positive, RULE_V2_WENT_WELL, "What went well?"), (Polarity::Negative, RULE_V2_NOT_WELL, "What didn't go so well?")]
        {
            let lists: Vec<&Question> = self.measuring("taps").into_iter().filter(|q| q.polarity == Some(polarity)).collect();
            let side = if polarity == Polarity::Positive { "positive" } else { "negative" };
            match lists.as_slice() {
                [] => add(Violation, rule, None, format!("no '{title}' list (a multiple_choice taps question, polarity {side})")),
                [q, ..] => {
                    if lists.len() > 1 {
                        add(Violation, rule, Some(lists[1]), format!("{} '{title}' lists; ask it once", lists.len()));
                    }
                    let missing: Vec<&str> = V2_REQUIRED_OPTIONS.into_iter().filter(|o| !q.options.iter().any(|x| x == o)).collect();
                    if q.options.is_empty() {
                        add(Violation, rule, Some(q), format!("the list declares no options; it must offer at least {}", V2_REQUIRED_OPTIONS.join(" and ")));
                    } else if !missing.is_empty() {
                        add(Violation, rule, Some(q), format!("the list does not offer {}", missing.join(" or ")));
                    }
                }
            }
        }
        let free = self.free_text();
        match free.as_slice() {
            [] => add(Violation, RULE_V2_COMMENT, None, "no free-text comment: the v2 form ends with one (Additional Comments)".into()),
            [q, ..] => {
                if free.len() > 1 {
                    add(Violation, RULE_V2_COMMENT, Some(free[1]), format!("{} free-text questions; the v2 form has exactly one", free.len()));
                }
                if q.required {
                    add(Violation, RULE_V2_COMMENT, Some(q), "the comment is required".into());
                }
            }
        }
        for q in self.questions.iter().filter(|q| q.kind != QuestionType::FreeText) {
            let message = match q.measure.as_deref() {
                Some("satisfaction") => "a satisfaction question: the v2 form asks none".to_string(),
                Some(d) if DRIVERS.contains(&d) => format!("a Likert {d} question: the v2 form taps drivers in its lists instead"),
                Some("additional") => "an additional question beyond the v2 form (280.10: only if absolutely necessary)".to_string(),
                Some("taps") if q.polarity.is_none() => "a tapped list with no polarity: the v2 form's lists are positive or negative".to_string(),
                _ => continue,
            };
            add(Review, RULE_V2_FORM, Some(q), message);
        }
    }

    fn measuring(&self, measure: &str) -> Vec<&Question> {
        self.questions.iter().filter(|q| q.measure.as_deref() == Some(measure)).collect()
    }

    fn free_text(&self) -> Vec<&Question> {
        self.questions.iter().filter(|q| q.kind == QuestionType::FreeText).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(id: &str, kind: QuestionType, measure: Option<&str>, required: bool) -> Question {
        Question { id: id.into(), text: format!("{id}?"), kind, measure: measure.map(str::to_string), required, polarity: None, options: vec![] }
    }

    fn list(id: &str, polarity: Polarity, options: &[&str]) -> Question {
        Question {
            polarity: Some(polarity),
            options: options.iter().map(|o| o.to_string()).collect(),
            ..q(id, QuestionType::MultipleChoice, Some("taps"), false)
        }
    }

    fn good() -> SurveyDefinition {
        use QuestionType::*;
        SurveyDefinition {
            name: "s".into(),
            edition: None,
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

    /// The Touchpoints A-11 v2 form (`db/seeds/forms/a11_v2.rb`): thumbs trust, two lists, a comment.
    fn v2() -> SurveyDefinition {
        use Polarity::*;
        let all = ["effectiveness", "ease", "efficiency", "transparency", "humanity", "employee", "other"];
        SurveyDefinition {
            name: "v2".into(),
            edition: Some(Edition::TouchpointsA11V2),
            service_id: None,
            questions: vec![
                q("answer_01", QuestionType::Thumbs, Some("trust"), true),
                list("answer_02", Positive, &all),
                list("answer_03", Negative, &all),
                q("answer_04", QuestionType::FreeText, None, false),
            ],
        }
    }

    /// (rule, question) of every finding.
    fn rules(found: &[Finding]) -> Vec<(&'static str, String)> {
        found.iter().map(|f| (f.rule, f.question.clone().unwrap_or_default())).collect()
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
        assert!(missing.check().iter().any(|f| f.message == "no trust question: required by the 2022 text of 280.10"));
    }

    #[test]
    fn the_edition_is_the_callers_else_the_definitions_else_2022() {
        let mut s = good();
        assert_eq!(s.edition(None), Edition::A11Of2022);
        assert_eq!(s.edition(Some(Edition::TouchpointsA11V2)), Edition::TouchpointsA11V2);
        s.edition = Some(Edition::TouchpointsA11V2);
        assert_eq!(s.edition(None), Edition::TouchpointsA11V2);
        assert_eq!(s.edition(Some(Edition::A11Of2022)), Edition::A11Of2022);
        assert_eq!(s.check(), s.check_as(Edition::TouchpointsA11V2));
        assert_ne!(s.check(), vec![], "a 2022 design is not the v2 form");
        assert_eq!(Edition::ALL.map(Edition::name), ["a11_2022", "touchpoints_a11_v2"]);
    }

    #[test]
    fn the_v2_form_and_its_radio_variant_follow_touchpoints_a11_v2() {
        assert_eq!(v2().check(), vec![]);
        let mut radio = v2();
        radio.questions[0].kind = QuestionType::Likert5; // a11_v2_radio: trust on 1-5
        assert_eq!(radio.check(), vec![]);
        let mut few = v2();
        few.questions[1].options = vec!["ease".into(), "effectiveness".into()];
        assert_eq!(few.check(), vec![], "a form may offer only some drivers beyond the two");
    }

    #[test]
    fn under_2022_the_v2_form_lacks_satisfaction_and_its_thumbs_trust_is_for_review() {
        let found = v2().check_as(Edition::A11Of2022);
        assert_eq!(rules(&found), [(RULE_OTHER_SCALE, "answer_01".into()), ("280.10 required satisfaction question", String::new())]);
        assert_eq!(found[0].severity, Severity::Review);
        assert_eq!(found[1].severity, Severity::Violation);
        assert!(found[1].message.starts_with("no satisfaction question: required by the 2022 text of 280.10"), "{}", found[1].message);
        assert!(found[1].message.contains("touchpoints_a11_v2"), "{}", found[1].message);
    }

    #[test]
    fn v2_trust_is_required_once_on_thumbs_or_1_to_5() {
        let mut s = v2();
        s.questions[0].required = false;
        s.questions.push(q("again", QuestionType::Thumbs, Some("trust"), true));
        assert_eq!(rules(&s.check()), [(RULE_V2_TRUST, "again".into()), (RULE_V2_TRUST, "answer_01".into())]);
        let mut s = v2();
        s.questions[0].kind = QuestionType::YesNo;
        assert_eq!(rules(&s.check()), [(RULE_V2_TRUST, "answer_01".into())]);
        s.questions[0].kind = QuestionType::Stars5;
        assert_eq!(s.check()[0].severity, Severity::Review);
        s.questions.remove(0);
        let found = s.check();
        assert_eq!(rules(&found), [(RULE_V2_TRUST, String::new())]);
        assert!(found[0].message.starts_with("no trust question"), "{}", found[0].message);
    }

    #[test]
    fn v2_has_a_went_well_and_a_not_so_well_list_each_offering_effectiveness_and_ease() {
        for (i, rule) in [(1, RULE_V2_WENT_WELL), (2, RULE_V2_NOT_WELL)] {
            let id = v2().questions[i].id.clone();
            let mut s = v2();
            s.questions[i].options.retain(|o| o != "ease");
            let found = s.check();
            assert_eq!(rules(&found), [(rule, id.clone())]);
            assert_eq!(found[0].message, "the list does not offer ease");
            s.questions[i].options.clear();
            assert_eq!(rules(&s.check()), [(rule, id.clone())]);
            let mut s = v2();
            let twice = Question { id: "twice".into(), ..s.questions[i].clone() };
            s.questions.push(twice);
            assert_eq!(rules(&s.check()), [(rule, "twice".into())]);
            let mut s = v2();
            s.questions.remove(i);
            let found = s.check();
            assert_eq!(rules(&found), [(rule, String::new())]);
            assert!(found[0].message.starts_with("no 'What"), "{}", found[0].message);
        }
    }

    #[test]
    fn v2_has_exactly_one_comment_not_required() {
        let mut s = v2();
        s.questions[3].required = true;
        s.questions.push(q("more", QuestionType::FreeText, None, false));
        assert_eq!(rules(&s.check()), [(RULE_V2_COMMENT, "more".into()), (RULE_V2_COMMENT, "answer_04".into())]);
        let mut s = v2();
        s.questions.remove(3);
        assert_eq!(rules(&s.check()), [(RULE_V2_COMMENT, String::new())]);
    }

    #[test]
    fn v2_flags_questions_beyond_the_form_for_review() {
        let mut s = v2();
        s.questions.push(q("sat", QuestionType::Likert5, Some("satisfaction"), true));
        s.questions.push(q("ease", QuestionType::Likert5, Some("ease"), false));
        s.questions.push(q("why", QuestionType::MultipleChoice, Some("taps"), false));
        s.questions.push(q("purpose", QuestionType::YesNo, Some("additional"), false));
        let found = s.check();
        assert_eq!(rules(&found), ["sat", "ease", "why", "purpose"].map(|id| (RULE_V2_FORM, id.to_string())));
        assert!(found.iter().all(|f| f.severity == Severity::Review));
    }

    #[test]
    fn tapped_lists_offer_drivers_or_other_once_in_either_edition() {
        for edition in Edition::ALL {
            let mut s = v2();
            s.questions[1].options.push("speed".into());
            s.questions[2].options.push("ease".into());
            s.questions[0].options.push("ease".into()); // options on the trust question
            let found = s.check_as(edition);
            let ours: Vec<_> = found.iter().filter(|f| f.rule == RULE_TAP_OPTIONS).map(|f| (f.question.clone().unwrap(), f.message.clone())).collect();
            assert_eq!(
                ours,
                [
                    ("answer_01".to_string(), "only a tapped list (measure taps) has options or a polarity".to_string()),
                    ("answer_02".into(), "'speed' is not an option (effectiveness, ease, efficiency, transparency, humanity, employee, other)".into()),
                    ("answer_03".into(), "'ease' is offered more than once".into()),
                ],
                "{edition}"
            );
        }
    }

    #[test]
    fn definitions_parse_from_json_and_yaml_with_clear_errors() {
        let yaml = "name: s\nquestions:\n  - id: q1\n    text: Rate it\n    type: likert5\n    measure: satisfaction\n    required: true\n";
        let s = SurveyDefinition::parse(yaml).unwrap();
        assert_eq!(s.questions[0].kind, QuestionType::Likert5);
        assert_eq!(s.edition, None);
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(SurveyDefinition::parse(&json).unwrap(), s);
        let err = SurveyDefinition::parse("name: s\nquestions:\n  - id: q1\n    type: slider\n").unwrap_err();
        assert!(err.contains("slider") && err.contains("line"), "{err}");
        assert!(SurveyDefinition::parse("{\"name\": 1}").unwrap_err().contains("JSON"));
        let v2 = v2();
        assert_eq!(SurveyDefinition::parse(&serde_json::to_string(&v2).unwrap()).unwrap(), v2);
        let tapped = "name: s\nedition: touchpoints_a11_v2\nquestions:\n  - {id: q2, text: What went well?, type: multiple_choice, measure: taps, polarity: positive, options: [ease, other]}\n";
        let s = SurveyDefinition::parse(tapped).unwrap();
        assert_eq!((s.edition, s.questions[0].polarity, s.questions[0].options.len()), (Some(Edition::TouchpointsA11V2), Some(Polarity::Positive), 2));
        let err = SurveyDefinition::parse("name: s\nedition: a11_2019\nquestions: []\n").unwrap_err();
        assert!(err.contains("a11_2019") && err.contains("touchpoints_a11_v2"), "{err}");
    }
}
