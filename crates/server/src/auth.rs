//! Who is asking and what they may do: the five roles and their scopes, the principal of a
//! request (from `Authorization: Bearer <key>`, checked against the keys file), and the checks
//! every path calls, GraphQL resolvers and REST handlers alike.
//!
//! | role | aggregates (suppressed) | counts | raw rows, free text | submit |
//! |---|---|---|---|---|
//! | public (no key, unless anonymous access is off) | yes (no `tappedDriverImportance`) | perturbed | no | no |
//! | analyst | yes | exact | no | no |
//! | agency(code) | yes | exact | own agency only | no |
//! | collector(code) | yes | exact | no | own agency only |
//! | admin | yes | exact | every agency | every agency |
//!
//! Suppression of small cells is applied inside analytics for every role. The public role's
//! counts, and every statistic computed from them, are perturbed by the cell-key method
//! (`cx_stats::cellkey`, `Analytics::perturbed`), so small cells cannot be recovered by
//! differencing queries; the other roles get exact numbers. A request without a principal
//! (a library caller that attached none) is public. A server started without a keys file
//! treats every caller as admin and refuses to listen on anything but loopback (a
//! workstation, tests).

use serde::{Deserialize, Serialize};

/// A caller's role.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RoleRepr", into = "RoleRepr")]
pub enum Role {
    Public,
    Analyst,
    Agency(String),
    Collector(String),
    Admin,
}

/// How a role is stored: `{"role": "agency", "agency": "VA"}`.
#[derive(Serialize, Deserialize)]
struct RoleRepr {
    role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    agency: Option<String>,
}

impl TryFrom<RoleRepr> for Role {
    type Error = String;
    fn try_from(r: RoleRepr) -> Result<Role, String> {
        Role::parse(&r.role, r.agency.as_deref())
    }
}

impl From<Role> for RoleRepr {
    fn from(r: Role) -> RoleRepr {
        RoleRepr { role: r.name().into(), agency: r.agency().map(str::to_string) }
    }
}

/// Which agencies' raw rows a role may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawScope {
    None,
    One(String),
    All,
}

impl Role {
    pub const NAMES: [&'static str; 5] = ["public", "analyst", "agency", "collector", "admin"];

    /// A role from its name and, for agency and collector, the agency code.
    pub fn parse(name: &str, agency: Option<&str>) -> Result<Role, String> {
        let needs = |make: fn(String) -> Role| match agency {
            Some(a) if cx_lake::layout::is_valid_agency_code(a) => Ok(make(a.to_string())),
            Some(a) => Err(format!("'{a}' is not an agency code")),
            None => Err(format!("role '{name}' needs an agency (--agency CODE)")),
        };
        let plain = |role: Role| match agency {
            None => Ok(role),
            Some(_) => Err(format!("role '{name}' takes no agency")),
        };
        match name {
            "public" => plain(Role::Public),
            "analyst" => plain(Role::Analyst),
            "admin" => plain(Role::Admin),
            "agency" => needs(Role::Agency),
            "collector" => needs(Role::Collector),
            other => Err(format!("unknown role '{other}' (one of {})", Role::NAMES.join(", "))),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Role::Public => "public",
            Role::Analyst => "analyst",
            Role::Agency(_) => "agency",
            Role::Collector(_) => "collector",
            Role::Admin => "admin",
        }
    }

    pub fn agency(&self) -> Option<&str> {
        match self {
            Role::Agency(a) | Role::Collector(a) => Some(a),
            _ => None,
        }
    }

    /// `agency:VA`, `admin`: for logs, metrics and the result cache key.
    pub fn label(&self) -> String {
        match self.agency() {
            Some(a) => format!("{}:{a}", self.name()),
            None => self.name().to_string(),
        }
    }

    /// Whether the role gets exact counts; the public role's are perturbed (cell-key method).
    pub fn exact_counts(&self) -> bool {
        !matches!(self, Role::Public)
    }

    pub fn raw_scope(&self) -> RawScope {
        match self {
            Role::Agency(a) => RawScope::One(a.clone()),
            Role::Admin => RawScope::All,
            _ => RawScope::None,
        }
    }

    /// Whether the role may submit responses of `agency`.
    pub fn may_submit(&self, agency: &str) -> bool {
        match self {
            Role::Collector(a) => a == agency,
            Role::Admin => true,
            _ => false,
        }
    }

    /// Why the role may not submit responses of these agencies (in order), if it may not: the
    /// one check of the submit API, the mutation and nothing else.
    pub fn submit_refusal<'a>(&self, agencies: impl IntoIterator<Item = &'a str>) -> Option<String> {
        if !self.submits() {
            return Some(format!("role '{}' may not submit responses", self.label()));
        }
        agencies
            .into_iter()
            .enumerate()
            .find(|(_, a)| !self.may_submit(a))
            .map(|(i, a)| format!("response {i}: role '{}' may not submit for agency '{a}'", self.label()))
    }

    /// Whether the role may submit at all (to show the mutation in introspection).
    /// Which agency's services this role may change in the inventory: `Ok(None)` any
    /// (admin), `Ok(Some(a))` only agency `a` (a collector), else the refusal.
    pub fn inventory_scope(&self) -> Result<Option<&str>, String> {
        match self {
            Role::Admin => Ok(None),
            Role::Collector(a) => Ok(Some(a)),
            _ => Err(format!("role '{}' may not change the service inventory", self.label())),
        }
    }

    pub fn submits(&self) -> bool {
        matches!(self, Role::Collector(_) | Role::Admin)
    }

    /// The agencies whose raw rows a request for `asked` (None: no agency named) may read:
    /// an agency role defaults to its own; naming another is refused.
    pub fn raw_agencies(&self, asked: Option<&[String]>) -> Result<Option<Vec<String>>, String> {
        match (self.raw_scope(), asked) {
            (RawScope::None, _) => Err(format!("role '{}' may not read raw responses or free text", self.label())),
            (RawScope::All, asked) => Ok(asked.map(<[String]>::to_vec)),
            (RawScope::One(own), None) => Ok(Some(vec![own])),
            (RawScope::One(own), Some(asked)) => match asked.iter().find(|a| **a != own) {
                Some(other) => Err(format!("role '{}' may read raw responses of agency {own} only, not {other}", self.label())),
                None => Ok(Some(vec![own])),
            },
        }
    }
}

/// Who made a request: a role and, when a key was presented, its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub role: Role,
    pub key_id: Option<String>,
}

impl Principal {
    pub fn anonymous() -> Principal {
        Principal { role: Role::Public, key_id: None }
    }

    /// The principal of a server without keys (workstation, tests) and of the CLI.
    pub fn local_admin() -> Principal {
        Principal { role: Role::Admin, key_id: None }
    }

    /// The principal of a presented key, checked against the keys file (HTTP's bearer, the
    /// Postgres password, Flight SQL's password or bearer).
    pub fn of_key(keys: &super::keys::KeyStore, presented: &str) -> Result<Principal, super::keys::KeyError> {
        keys.verify(presented).map(|(role, id)| Principal { role, key_id: Some(id) })
    }
}

/// The principal of a GraphQL request (public when none was attached).
pub fn principal<'a>(ctx: &async_graphql::Context<'a>) -> &'a Principal {
    static PUBLIC: std::sync::LazyLock<Principal> = std::sync::LazyLock::new(Principal::anonymous);
    ctx.data_opt::<Principal>().unwrap_or(&PUBLIC)
}

/// A GraphQL error for a denied request (`extensions.code = FORBIDDEN`), logged.
pub fn forbidden(ctx: &async_graphql::Context<'_>, reason: String) -> async_graphql::Error {
    use async_graphql::ErrorExtensions;
    let p = principal(ctx);
    tracing::warn!(target: "cxlake::access", role = %p.role.label(), key = p.key_id.as_deref().unwrap_or("-"), %reason, "denied");
    async_graphql::Error::new(reason).extend_with(|_, e| e.set("code", "FORBIDDEN"))
}

/// Introspection visibility of raw rows (the `responses` field and its types).
pub fn sees_raw(ctx: &async_graphql::Context<'_>) -> bool {
    principal(ctx).role.raw_scope() != RawScope::None
}

/// Introspection visibility of the submit mutation.
pub fn sees_submit(ctx: &async_graphql::Context<'_>) -> bool {
    principal(ctx).role.submits()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_and_scope_raw_reads() {
        assert_eq!(Role::parse("agency", Some("VA")), Ok(Role::Agency("VA".into())));
        assert!(Role::parse("agency", None).is_err());
        assert!(Role::parse("analyst", Some("VA")).is_err());
        assert!(Role::parse("root", None).is_err());
        let va = Role::Agency("VA".into());
        assert_eq!(va.raw_agencies(None), Ok(Some(vec!["VA".to_string()])));
        assert!(va.raw_agencies(Some(&["VA".into(), "SSA".into()])).unwrap_err().contains("SSA"));
        assert!(Role::Analyst.raw_agencies(None).is_err());
        assert!(Role::Collector("VA".into()).raw_agencies(None).is_err());
        assert_eq!(Role::Admin.raw_agencies(None), Ok(None));
        assert!(Role::Collector("VA".into()).may_submit("VA") && !Role::Collector("VA".into()).may_submit("SSA"));
        assert!(!Role::Agency("VA".into()).may_submit("VA"));
        assert_eq!(Role::Collector("VA".into()).submit_refusal(["VA", "VA"]), None);
        assert_eq!(Role::Collector("VA".into()).submit_refusal(["VA", "SSA"]).unwrap(), "response 1: role 'collector:VA' may not submit for agency 'SSA'");
        assert_eq!(Role::Analyst.submit_refusal([]).unwrap(), "role 'analyst' may not submit responses");
        let json = serde_json::to_string(&va).unwrap();
        assert_eq!(json, r#"{"role":"agency","agency":"VA"}"#);
        assert_eq!(serde_json::from_str::<Role>(&json).unwrap(), va);
    }
}
