//! Coded vocabularies: the seven service types of A-11 280.4, delivery channels, the three
//! points in time of 280.10 (stages) and the US state/territory codes used for `region`.

use std::fmt;
use std::str::FromStr;

/// Declares a closed vocabulary stored as lower-case text in the lake.
macro_rules! vocabulary {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The text stored in the lake.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!(
                        "unknown {} '{}' (expected one of: {})",
                        stringify!($name),
                        other,
                        [$($text),+].join(", ")
                    )),
                }
            }
        }
    };
}
pub(crate) use vocabulary;

vocabulary! {
    /// Service types of A-11 280.4.
    ServiceType {
        Administrative => "administrative",
        Benefits => "benefits",
        Compliance => "compliance",
        Recreation => "recreation",
        Informational => "informational",
        DataResearch => "data_research",
        Regulatory => "regulatory",
    }
}

vocabulary! {
    /// The channel through which the customer interacted with the service.
    Channel {
        Digital => "digital",
        InPerson => "in_person",
        Phone => "phone",
        Email => "email",
        Mail => "mail",
        Kiosk => "kiosk",
        Chat => "chat",
    }
}

vocabulary! {
    /// The point in time a survey is administered (A-11 280.10): after a transaction, at a
    /// milestone of a journey, or periodically about the relationship.
    Stage {
        Transaction => "transaction",
        Journey => "journey",
        Relationship => "relationship",
    }
}

/// USPS codes of the states, DC and the territories: the valid values of `region`.
pub const US_REGIONS: &[&str] = &[
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO",
    "MT", "NE", "NV", "NH", "NJ", "NM", "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY", "AS",
    "GU", "MP", "PR", "VI",
];

/// Whether `code` may be an agency code: 1-16 upper-case ASCII letters, digits, `_` or `-`.
/// The code becomes a partition directory name, so nothing else is allowed.
pub fn is_valid_agency_code(code: &str) -> bool {
    !code.is_empty() && code.len() <= 16 && code.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Whether `code` is a valid `region` value.
pub fn is_region(code: &str) -> bool {
    // Called for every ingested row: a set, not a scan of the list.
    static SET: std::sync::LazyLock<std::collections::HashSet<&'static str>> = std::sync::LazyLock::new(|| US_REGIONS.iter().copied().collect());
    code.len() == 2 && SET.contains(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabularies_round_trip_through_text() {
        for t in ServiceType::ALL {
            assert_eq!(t.as_str().parse::<ServiceType>().unwrap(), *t);
        }
        for c in Channel::ALL {
            assert_eq!(c.as_str().parse::<Channel>().unwrap(), *c);
        }
        assert_eq!(ServiceType::ALL.len(), 7, "A-11 280.4 names seven service types");
    }

    #[test]
    fn unknown_code_names_the_vocabulary_and_the_choices() {
        let err = "benefit".parse::<ServiceType>().unwrap_err();
        assert!(err.contains("'benefit'") && err.contains("benefits"), "{err}");
    }

    #[test]
    fn regions_include_territories_and_dc() {
        assert!(is_region("PR") && is_region("DC") && !is_region("XX"));
    }
}
