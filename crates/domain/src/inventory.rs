//! The service inventory of A-11 280.5: what one service record says (name, short
//! description, responsible organizational unit, service type, channels, HISP designation) and
//! the rules it must follow, among them that a service with no digital channel states why and
//! how it could be made digital. Every problem names its field.

use super::codes::{is_valid_agency_code, Channel, ServiceType};
use super::validate::Problem;

/// Longest short description accepted (characters).
pub const MAX_DESCRIPTION: usize = 500;
/// Longest name, organizational unit or agency/bureau name accepted (characters).
pub const MAX_NAME: usize = 200;

/// One service of the inventory.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceRecord {
    /// Stable id (`VA-S001`): letters, digits, `-`, `_`, `.`; at most 64 characters.
    pub id: String,
    pub name: String,
    /// Short description of what the service provides.
    pub description: String,
    /// Department or agency code (`VA`), a partition of the lake.
    pub agency: String,
    pub agency_name: String,
    /// Bureau (the HISP's service provider) code, `VA-VBA`.
    pub bureau: String,
    pub bureau_name: String,
    /// The organizational unit responsible for the service.
    pub org_unit: String,
    pub service_type: ServiceType,
    /// Channels through which customers receive it, without repeats.
    pub channels: Vec<Channel>,
    /// A designated service of a High Impact Service Provider (280.5): reported quarterly.
    pub designated: bool,
    /// Why it has no digital channel (required exactly when it has none).
    pub non_digital_reason: Option<String>,
    /// Ways it could be made digital (at least one when it has no digital channel).
    pub digitization_options: Vec<String>,
}

/// Channels that count as digital delivery: online, chat and email.
pub fn is_digital(c: Channel) -> bool {
    matches!(c, Channel::Digital | Channel::Chat | Channel::Email)
}

/// Whether `id` may be a service id.
pub fn is_valid_service_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn problem(column: &str, reason: impl Into<String>) -> Problem {
    Problem { column: column.to_string(), reason: reason.into() }
}

fn text(out: &mut Vec<Problem>, column: &str, value: &str, max: usize) {
    let chars = value.trim().chars().count();
    if chars == 0 {
        out.push(problem(column, "is required"));
    } else if chars > max {
        out.push(problem(column, format!("is {chars} characters long; at most {max} are allowed")));
    }
}

impl ServiceRecord {
    /// Whether customers can receive the service through a digital channel.
    pub fn has_digital_channel(&self) -> bool {
        self.channels.iter().any(|c| is_digital(*c))
    }

    /// Every rule the record breaks (empty: valid).
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if !is_valid_service_id(&self.id) {
            out.push(problem("service_id", format!("'{}' is not a service id (1-64 letters, digits, '-', '_' or '.')", self.id.escape_debug())));
        }
        text(&mut out, "name", &self.name, MAX_NAME);
        text(&mut out, "description", &self.description, MAX_DESCRIPTION);
        if !is_valid_agency_code(&self.agency) {
            out.push(problem("agency", format!("'{}' is not an agency code (1-16 of A-Z, 0-9, '_', '-')", self.agency.escape_debug())));
        }
        text(&mut out, "agency_name", &self.agency_name, MAX_NAME);
        text(&mut out, "bureau", &self.bureau, 64);
        text(&mut out, "bureau_name", &self.bureau_name, MAX_NAME);
        text(&mut out, "org_unit", &self.org_unit, MAX_NAME);
        if self.channels.is_empty() {
            out.push(problem("channels", "at least one channel is required"));
        }
        for (i, c) in self.channels.iter().enumerate() {
            if self.channels[..i].contains(c) {
                out.push(problem("channels", format!("'{c}' is listed twice")));
            }
        }
        let reason = self.non_digital_reason.as_deref().map(str::trim).filter(|r| !r.is_empty());
        let options: Vec<&str> = self.digitization_options.iter().map(|o| o.trim()).filter(|o| !o.is_empty()).collect();
        if !self.channels.is_empty() && !self.has_digital_channel() {
            if reason.is_none() {
                out.push(problem("non_digital_reason", "is required for a service with no digital channel (digital, chat or email)"));
            }
            if options.is_empty() {
                out.push(problem("digitization_options", "a service with no digital channel must name at least one way it could be made digital"));
            }
        } else if self.has_digital_channel() && (reason.is_some() || !options.is_empty()) {
            let digital: Vec<&str> = self.channels.iter().filter(|c| is_digital(**c)).map(|c| c.as_str()).collect();
            out.push(problem(
                if reason.is_some() { "non_digital_reason" } else { "digitization_options" },
                format!("only for services without a digital channel; this one has {}", digital.join(", ")),
            ));
        }
        if let Some(r) = reason {
            if r.chars().count() > MAX_DESCRIPTION {
                out.push(problem("non_digital_reason", format!("at most {MAX_DESCRIPTION} characters are allowed")));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> ServiceRecord {
        ServiceRecord {
            id: "VA-S001".into(),
            name: "Disability claims".into(),
            description: "Apply for and track disability compensation".into(),
            agency: "VA".into(),
            agency_name: "Department of Veterans Affairs".into(),
            bureau: "VA-VBA".into(),
            bureau_name: "Veterans Benefits Administration".into(),
            org_unit: "Office of Field Operations".into(),
            service_type: ServiceType::Benefits,
            channels: vec![Channel::Digital, Channel::Phone],
            designated: true,
            non_digital_reason: None,
            digitization_options: vec![],
        }
    }

    fn columns(r: &ServiceRecord) -> Vec<String> {
        r.problems().into_iter().map(|p| p.column).collect()
    }

    #[test]
    fn a_complete_record_is_valid() {
        assert_eq!(record().problems(), vec![]);
    }

    #[test]
    fn a_service_without_digital_channel_needs_a_reason_and_options() {
        let mut r = record();
        r.channels = vec![Channel::InPerson, Channel::Mail];
        assert_eq!(columns(&r), ["non_digital_reason", "digitization_options"]);
        r.non_digital_reason = Some("Identity must be verified in person".into());
        r.digitization_options = vec!["remote identity proofing".into()];
        assert_eq!(r.problems(), vec![]);
        // Blank text does not count.
        r.digitization_options = vec!["  ".into()];
        assert_eq!(columns(&r), ["digitization_options"]);
    }

    #[test]
    fn a_digital_service_may_not_claim_a_non_digital_reason() {
        let mut r = record();
        r.non_digital_reason = Some("none".into());
        let p = r.problems();
        assert_eq!(p.len(), 1);
        assert!(p[0].reason.contains("digital"), "{}", p[0].reason);
        // Chat and email are digital channels too.
        let mut r = record();
        r.channels = vec![Channel::Email];
        assert!(r.has_digital_channel() && r.problems().is_empty());
    }

    #[test]
    fn required_text_ids_and_channels_are_checked() {
        let mut r = record();
        r.id = "VA S1".into();
        r.description = " ".into();
        r.org_unit = String::new();
        r.agency = "va".into();
        r.channels = vec![Channel::Phone, Channel::Phone, Channel::Digital];
        assert_eq!(columns(&r), ["service_id", "description", "agency", "org_unit", "channels"]);
        r.description = "x".repeat(MAX_DESCRIPTION + 1);
        assert!(r.problems().iter().any(|p| p.column == "description" && p.reason.contains("501")));
        r.channels.clear();
        assert!(r.problems().iter().any(|p| p.column == "channels" && p.reason.contains("at least one")));
    }
}
