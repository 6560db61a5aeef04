//! Who may do what: roles, the principal a request acts as, API-key scopes, the access decision on datasets and on
//! single attributes, and usage policies written in a small subset of ODRL 2.2. Pure functions, no I/O: the HTTP
//! layer builds a [`Principal`] from a session, an API key or a JWT and asks [`may`], [`hidden_attributes`],
//! [`may_aggregate`] and [`check_usage`].
//!
//! # The access rules
//!
//! - **Administrators** (role [`Role::Admin`]) may do everything, unless they act through an API key whose scopes do
//!   not include [`Scope::Admin`]: then they act with their other rights only (see [`Principal::is_admin`]).
//! - **Owners** may do everything on their datasets: the principal is the owner when it is signed in and its
//!   `subject`, its `organisation` or one of its `groups` equals the dataset's `owner`. An anonymous principal never
//!   owns anything, whatever organisation (NGSI-LD tenant) the request named.
//! - **Everyone else** per the dataset's [`Access`] for the operation: `Public` lets anyone, anonymous included;
//!   `Registered` any signed-in principal; `Groups(gs)` a signed-in principal in one of `gs`; `Private` nobody.
//! - **Devices**: a principal whose only role is [`Role::Device`] writes where the rules above allow, but reads only
//!   what is `Public`, what its groups grant, what it owns, and `Registered` data only through an API key scoped
//!   `read:<datasetId>` to that very dataset. Devices push measurements; they do not browse the registered users'
//!   data. The roles `DataOwner`, `Planner` and `Citizen` do not change the decision on a dataset: they say what an
//!   account may do elsewhere (create datasets, run scenarios).
//! - **Scenarios** (model inputs that belong to no dataset): any signed-in principal except a device may create
//!   one and run one ([`may_create_scenario`]); only its owner (the account that created it) or an administrator
//!   may replace or delete it or cancel its runs ([`may_change_scenario`]). A run reads the city's datasets, so it
//!   also needs read access to each of them; its results are published under the narrowest of their read
//!   policies ([`narrowest_access`]).
//! - **API-key scopes** only ever restrict: with scopes, a read needs `read` or `read:<datasetId>`, a write `write`
//!   or `write:<datasetId>`, and administrator powers (and managing a dataset) need `admin`. The `admin` scope
//!   stands for the account's full rights, so it also allows reads and writes.
//!
//! # Usage policies
//!
//! A dataset may carry a [`UsagePolicy`]: a small, documented subset of ODRL 2.2 in its JSON serialisation, e.g.
//!
//! ```json
//! {"@context": "http://www.w3.org/ns/odrl.jsonld", "@type": "Set", "uid": "urn:policy:1",
//!  "permission": [{"action": "use", "constraint": [
//!     {"leftOperand": "purpose", "operator": "isAnyOf", "rightOperand": ["research", "planning"]},
//!     {"leftOperand": "dateTime", "operator": "lt", "rightOperand": "2027-12-31T00:00:00Z"}]}],
//!  "prohibition": [{"action": "distribute"}]}
//! ```
//!
//! Understood: the policy types `Set`, `Offer`, `Agreement`; the rules `permission` and `prohibition`, each with
//! an `action`, optional `constraint`s (all must hold) and an informational `target`; the actions of [`Action`]
//! (`use` includes every other action, as in ODRL's `includedIn`); the left operands of [`LeftOperand`]; the
//! operators of [`Operator`]; right operands as a string, a number, a list, or a JSON-LD value object
//! (`{"@value": ...}`, `{"@id": ...}`). Terms may be written bare, as `odrl:term` or as the full ODRL IRI. Anything
//! else (duties, refinements, logical constraints, unknown properties) is rejected by [`UsagePolicy::validate`],
//! so a policy is never stored with parts that would silently be ignored.
//!
//! [`check_usage`] evaluates: a matching prohibition denies; otherwise a matching permission whose constraints all
//! hold permits; with no permission for the action, it is denied. Administrators are not constrained, and
//! [`check_dataset_usage`] also exempts whoever [`manages`] the dataset.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::dataset::{Access, Dataset};
use crate::error::{NgsiError, Result};

// ---------------------------------------------------------------------------------------------------------------
// Roles, scopes, principals
// ---------------------------------------------------------------------------------------------------------------

/// An account's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Runs the instance: manages accounts and every dataset.
    Admin,
    /// Publishes datasets and manages their policies.
    DataOwner,
    /// Works with the data: queries, scenarios; runs consultations.
    Planner,
    /// Moderates consultations: hides and restores contributions, with a public reason.
    Moderator,
    /// A signed-in member of the public.
    Citizen,
    /// A sensor or gateway that writes measurements.
    Device,
}

impl Role {
    /// Every role, most powerful first.
    pub const ALL: [Role; 6] = [
        Role::Admin,
        Role::DataOwner,
        Role::Planner,
        Role::Moderator,
        Role::Citizen,
        Role::Device,
    ];

    /// Reads a role name: `admin`, `data_owner`, `planner`, `moderator`, `citizen`, `device`; ASCII case and `-` for `_` are
    /// tolerated (`DataOwner`, `data-owner`), as identity providers spell them variously.
    pub fn parse(s: &str) -> Option<Role> {
        let norm: String = s
            .trim()
            .chars()
            .filter(|c| *c != '_' && *c != '-')
            .map(|c| c.to_ascii_lowercase())
            .collect();
        match norm.as_str() {
            "admin" => Some(Role::Admin),
            "dataowner" => Some(Role::DataOwner),
            "planner" => Some(Role::Planner),
            "moderator" => Some(Role::Moderator),
            "citizen" => Some(Role::Citizen),
            "device" => Some(Role::Device),
            _ => None,
        }
    }

    /// The role's name as serialised: `admin`, `data_owner`, `planner`, `moderator`, `citizen`, `device`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::DataOwner => "data_owner",
            Role::Planner => "planner",
            Role::Moderator => "moderator",
            Role::Citizen => "citizen",
            Role::Device => "device",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the principal authenticated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum AuthMethod {
    Anonymous,
    Session,
    #[serde(rename_all = "camelCase")]
    ApiKey {
        key_id: String,
    },
    Jwt {
        issuer: String,
    },
}

/// What an API key may do: `read`, `write`, `admin`, or restricted to one dataset: `read:<datasetId>`,
/// `write:<datasetId>`. Parsed from and displayed (and serialised) as these strings.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    Read,
    Write,
    Admin,
    ReadDataset(String),
    WriteDataset(String),
}

impl FromStr for Scope {
    type Err = NgsiError;

    fn from_str(s: &str) -> Result<Scope> {
        match s {
            "read" => return Ok(Scope::Read),
            "write" => return Ok(Scope::Write),
            "admin" => return Ok(Scope::Admin),
            _ => {}
        }
        let bad = || {
            NgsiError::bad_data(format!(
                "unknown API key scope {s:?}: expected read, write, admin, read:<datasetId> or write:<datasetId>"
            ))
        };
        let (kind, id) = s.split_once(':').ok_or_else(bad)?;
        if id.trim().is_empty() || id.trim() != id {
            return Err(bad());
        }
        match kind {
            "read" => Ok(Scope::ReadDataset(id.to_string())),
            "write" => Ok(Scope::WriteDataset(id.to_string())),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Read => f.write_str("read"),
            Scope::Write => f.write_str("write"),
            Scope::Admin => f.write_str("admin"),
            Scope::ReadDataset(d) => write!(f, "read:{d}"),
            Scope::WriteDataset(d) => write!(f, "write:{d}"),
        }
    }
}

impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Scope, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map_err(|e: NgsiError| serde::de::Error::custom(e.detail))
    }
}

/// Who is asking. `subject` None = anonymous.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Principal {
    /// The account id, or for a JWT the identity the caller built from it (e.g. `"<issuer>#<sub>"`).
    pub subject: Option<String>,
    pub roles: BTreeSet<Role>,
    pub groups: BTreeSet<String>,
    /// The organisation the principal acts for; the NGSI-LD tenant maps to this.
    pub organisation: Option<String>,
    pub method: AuthMethod,
    /// API-key scopes: None = the account's full rights; Some(list) = only these (see [`Scope`]).
    pub scopes: Option<BTreeSet<Scope>>,
}

impl Principal {
    /// Nobody signed in.
    pub fn anonymous() -> Principal {
        Principal {
            subject: None,
            roles: BTreeSet::new(),
            groups: BTreeSet::new(),
            organisation: None,
            method: AuthMethod::Anonymous,
            scopes: None,
        }
    }

    pub fn is_anonymous(&self) -> bool {
        self.subject.is_none()
    }

    /// Whether the principal has administrator powers now: the `admin` role, and no API-key scopes or a scope
    /// list that includes `admin`.
    pub fn is_admin(&self) -> bool {
        !self.is_anonymous()
            && self.roles.contains(&Role::Admin)
            && self.scope_allows(&Scope::Admin)
    }

    /// Whether the principal holds the role (whatever its key scopes).
    pub fn has_role(&self, r: Role) -> bool {
        self.roles.contains(&r)
    }

    /// For logs: "anonymous" or the subject.
    pub fn label(&self) -> String {
        self.subject.clone().unwrap_or_else(|| "anonymous".into())
    }

    /// Whether the key scopes (if any) include `scope`. `admin` includes every other scope.
    pub(crate) fn scope_allows(&self, scope: &Scope) -> bool {
        match &self.scopes {
            None => true,
            Some(s) => s.contains(&Scope::Admin) || s.contains(scope),
        }
    }

    /// Whether the key scopes (if any) allow `op` on the dataset `id`.
    fn scopes_allow_op(&self, id: &str, op: Operation) -> bool {
        match op {
            Operation::Read => {
                self.scope_allows(&Scope::Read) || self.scope_allows(&Scope::ReadDataset(id.into()))
            }
            Operation::Write => {
                self.scope_allows(&Scope::Write)
                    || self.scope_allows(&Scope::WriteDataset(id.into()))
            }
        }
    }

    /// A principal whose only role is `Device`.
    pub(crate) fn is_device_only(&self) -> bool {
        self.roles.contains(&Role::Device) && self.roles.len() == 1
    }

    fn owns(&self, d: &Dataset) -> bool {
        !self.is_anonymous()
            && (self.subject.as_deref() == Some(d.owner.as_str())
                || self.organisation.as_deref() == Some(d.owner.as_str())
                || self.groups.contains(&d.owner))
    }
}

/// An operation on a dataset's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Read,
    Write,
}

// ---------------------------------------------------------------------------------------------------------------
// Access decisions
// ---------------------------------------------------------------------------------------------------------------

/// Whether `access` lets `p` do `op` on `d`, scopes aside (administrators and owners always).
fn allowed(p: &Principal, d: &Dataset, access: &Access, op: Operation) -> bool {
    if p.is_admin() || p.owns(d) {
        return true;
    }
    let in_groups = |gs: &[String]| !p.is_anonymous() && gs.iter().any(|g| p.groups.contains(g));
    match access {
        Access::Public => true,
        Access::Registered => {
            // a device reads registered data only through a key scoped to this dataset
            let device_read_without_scope = op == Operation::Read
                && p.is_device_only()
                && !p
                    .scopes
                    .as_ref()
                    .is_some_and(|s| s.contains(&Scope::ReadDataset(d.id.clone())));
            !p.is_anonymous() && !device_read_without_scope
        }
        Access::Groups(gs) => in_groups(gs),
        Access::Private => false,
    }
}

/// Whether `p` may do `op` on `d`'s data. See the [module documentation](self) for the rules.
pub fn may(p: &Principal, d: &Dataset, op: Operation) -> bool {
    if !p.scopes_allow_op(&d.id, op) {
        return false;
    }
    let access = match op {
        Operation::Read => &d.read,
        Operation::Write => &d.write,
    };
    allowed(p, d, access, op)
}

/// Whether `p` manages `d` (edits its policy, sees its usage log): an administrator or the owner, and through an API
/// key only with the `admin` scope.
pub fn manages(p: &Principal, d: &Dataset) -> bool {
    p.is_admin() || (p.owns(d) && p.scope_allows(&Scope::Admin))
}

/// Whether `p` may create a scenario or start a run: signed in, not only a device, and through an API key only with
/// the `write` scope (scenarios and runs are writes).
pub fn may_create_scenario(p: &Principal) -> bool {
    !p.is_anonymous() && !p.is_device_only() && p.scope_allows(&Scope::Write)
}

/// Whether `p` runs any scenario without the citizens' limits (citizens run their own, a few an hour, each within a
/// short computing time): planners, data owners and administrators.
pub fn may_run_any_scenario(p: &Principal) -> bool {
    p.is_admin() || p.has_role(Role::Planner) || p.has_role(Role::DataOwner)
}

/// Whether `p` may replace or delete a scenario whose owner is `owner`, or cancel its runs: an administrator, or its
/// owner when they may create scenarios. A scenario without an owner (made before scenarios had owners) is changed
/// by administrators only.
pub fn may_change_scenario(p: &Principal, owner: Option<&str>) -> bool {
    p.is_admin() || (may_create_scenario(p) && owner.is_some() && p.subject.as_deref() == owner)
}

/// The narrowest of these access rules: what lets in only those every one of them lets in (a principal's
/// ownership of the datasets aside). Public for none. Groups narrow to the groups all of them name; `Private` when
/// none is left.
pub fn narrowest_access<'a>(rules: impl IntoIterator<Item = &'a Access>) -> Access {
    let mut out = Access::Public;
    for r in rules {
        out = match (out, r) {
            (Access::Private, _) | (_, Access::Private) => Access::Private,
            (o, Access::Public) => o,
            (Access::Public, r) | (Access::Registered, r) => r.clone(),
            (o, Access::Registered) => o,
            (Access::Groups(a), Access::Groups(b)) => {
                let both: Vec<String> = a.into_iter().filter(|g| b.contains(g)).collect();
                if both.is_empty() {
                    Access::Private
                } else {
                    Access::Groups(both)
                }
            }
        };
    }
    out
}

/// A rule on one attribute of a dataset's entities.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttributeRule {
    /// The attribute's name as the client wrote it, short or expanded (see [`AttributeRule::matches`]).
    pub attribute: String,
    /// Who sees the value; others do not see the attribute at all (not its name either).
    pub read: Access,
    /// Who may see temporal aggregates of it although not its raw values (e.g. a private meter's power: aggregate
    /// Public, read Private).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregate: Option<Access>,
}

impl AttributeRule {
    /// Whether the rule is about the attribute named `expanded` (its full IRI) or `short` (its compacted name).
    pub fn matches(&self, expanded: &str, short: &str) -> bool {
        self.attribute == expanded || self.attribute == short
    }
}

/// The attributes of `d` hidden from `p` (for raw reads), as the rules wrote them. Says nothing about the dataset
/// as a whole: check [`may`] first.
pub fn hidden_attributes<'a>(p: &Principal, d: &'a Dataset) -> Vec<&'a AttributeRule> {
    d.attributes
        .iter()
        .filter(|r| !allowed(p, d, &r.read, Operation::Read))
        .collect()
}

/// Whether `p` may see temporal aggregates of the attribute of `rule` (true when it may read it raw too). Says
/// nothing about the dataset as a whole: check [`may`] first.
pub fn may_aggregate(p: &Principal, d: &Dataset, rule: &AttributeRule) -> bool {
    allowed(p, d, &rule.read, Operation::Read)
        || rule
            .aggregate
            .as_ref()
            .is_some_and(|a| allowed(p, d, a, Operation::Read))
}

// ---------------------------------------------------------------------------------------------------------------
// Usage policies (ODRL 2.2 subset)
// ---------------------------------------------------------------------------------------------------------------

const ODRL_NS: &str = "http://www.w3.org/ns/odrl/2/";
const ODRL_CONTEXT: &str = "http://www.w3.org/ns/odrl.jsonld";

/// `odrl:term` and `http://www.w3.org/ns/odrl/2/term` → `term`.
fn odrl_term(s: &str) -> &str {
    let s = s.trim();
    s.strip_prefix(ODRL_NS)
        .or_else(|| s.strip_prefix("odrl:"))
        .unwrap_or(s)
}

macro_rules! odrl_enum {
    ($(#[$m:meta])* $name:ident, $what:literal, { $($(#[$vm:meta])* $v:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub enum $name { $($(#[$vm])* $v),+ }

        impl $name {
            /// Every supported term.
            pub const ALL: &'static [$name] = &[$($name::$v),+];
            /// The ODRL term.
            pub fn as_str(&self) -> &'static str {
                match self { $($name::$v => $s),+ }
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> std::result::Result<Self, String> {
                match odrl_term(s) {
                    $($s => Ok($name::$v),)+
                    _ => Err(format!(
                        concat!("unsupported ODRL ", $what, " {:?}: supported are {}"),
                        s,
                        $name::ALL.iter().map(|x| x.as_str()).collect::<Vec<_>>().join(", ")
                    )),
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(s: String) -> std::result::Result<Self, String> {
                s.parse()
            }
        }

        impl From<$name> for String {
            fn from(x: $name) -> String {
                x.as_str().to_string()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

odrl_enum!(
    /// An ODRL action. `use` includes every other action.
    Action, "action", {
        Use = "use",
        Read = "read",
        Aggregate = "aggregate",
        Distribute = "distribute",
        Derive = "derive",
        Modify = "modify",
        Delete = "delete",
        Reproduce = "reproduce",
    }
);

odrl_enum!(
    /// What a constraint is about.
    LeftOperand, "leftOperand", {
        /// The purpose the requester declares (`purpose` parameter of the request).
        Purpose = "purpose",
        /// The time of the request; right operands are RFC 3339 date-times or dates (midnight UTC).
        DateTime = "dateTime",
        /// Who receives the data: matched against the principal's subject, organisation and groups.
        Recipient = "recipient",
    }
);

odrl_enum!(
    /// A constraint's operator.
    Operator, "operator", {
        Eq = "eq",
        Neq = "neq",
        IsAnyOf = "isAnyOf",
        IsNoneOf = "isNoneOf",
        Lt = "lt",
        Lteq = "lteq",
        Gt = "gt",
        Gteq = "gteq",
    }
);

impl Action {
    /// Whether a rule on `self` covers a request for `other` (ODRL's `includedIn`: everything is included in `use`).
    pub fn includes(self, other: Action) -> bool {
        self == other || self == Action::Use
    }
}

/// A constraint's right operand: one value or a list (numbers and JSON-LD value objects are read as strings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "serde_json::Value", into = "serde_json::Value")]
pub enum RightOperand {
    One(String),
    Many(Vec<String>),
}

impl RightOperand {
    fn scalar(v: &serde_json::Value) -> std::result::Result<String, String> {
        use serde_json::Value;
        match v {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            Value::Object(o) => match (o.get("@value"), o.get("@id")) {
                (Some(v), _) | (None, Some(v)) => Self::scalar(v),
                _ => Err(format!(
                    "unsupported ODRL rightOperand {v}: expected a string, a number, a list or {{\"@value\": ...}}"
                )),
            },
            _ => Err(format!(
                "unsupported ODRL rightOperand {v}: expected a string, a number, a list or {{\"@value\": ...}}"
            )),
        }
    }

    /// The values, one or many.
    pub fn values(&self) -> Vec<&str> {
        match self {
            RightOperand::One(s) => vec![s.as_str()],
            RightOperand::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

impl TryFrom<serde_json::Value> for RightOperand {
    type Error = String;
    fn try_from(v: serde_json::Value) -> std::result::Result<Self, String> {
        match &v {
            serde_json::Value::Array(items) => Ok(RightOperand::Many(
                items
                    .iter()
                    .map(RightOperand::scalar)
                    .collect::<std::result::Result<_, _>>()?,
            )),
            _ => Ok(RightOperand::One(RightOperand::scalar(&v)?)),
        }
    }
}

impl From<RightOperand> for serde_json::Value {
    fn from(r: RightOperand) -> serde_json::Value {
        match r {
            RightOperand::One(s) => serde_json::Value::String(s),
            RightOperand::Many(v) => v.into(),
        }
    }
}

/// `leftOperand operator rightOperand`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Constraint {
    pub left_operand: LeftOperand,
    pub operator: Operator,
    pub right_operand: RightOperand,
    /// Properties this subset does not understand: [`UsagePolicy::validate`] rejects them.
    #[serde(flatten, skip_serializing_if = "BTreeMap::is_empty")]
    pub unsupported: BTreeMap<String, serde_json::Value>,
}

/// A permission or a prohibition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageRule {
    pub action: Action,
    /// All must hold for the rule to apply.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraint: Vec<Constraint>,
    /// The asset (informational: the policy applies to the dataset that carries it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Properties this subset does not understand (duties, refinements, ...): [`UsagePolicy::validate`] rejects them.
    #[serde(flatten, skip_serializing_if = "BTreeMap::is_empty")]
    pub unsupported: BTreeMap<String, serde_json::Value>,
}

fn default_policy_type() -> String {
    "Set".into()
}

/// A usage policy: a small subset of ODRL 2.2 (see the [module documentation](self)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsagePolicy {
    #[serde(rename = "@context", default, skip_serializing_if = "Option::is_none")]
    pub context: Option<serde_json::Value>,
    /// `Set`, `Offer` or `Agreement`.
    #[serde(rename = "@type", default = "default_policy_type")]
    pub policy_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permission: Vec<UsageRule>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prohibition: Vec<UsageRule>,
    /// Properties this subset does not understand: [`UsagePolicy::validate`] rejects them.
    #[serde(flatten, skip_serializing_if = "BTreeMap::is_empty")]
    pub unsupported: BTreeMap<String, serde_json::Value>,
}

/// Reads an RFC 3339 date-time, or a date as midnight UTC.
fn parse_instant(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s.trim()) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

impl UsagePolicy {
    /// Parses and validates a policy document.
    pub fn from_json(v: &serde_json::Value) -> Result<UsagePolicy> {
        let p: UsagePolicy = serde_json::from_value(v.clone())
            .map_err(|e| NgsiError::bad_data(format!("the usage policy is not understood: {e}")))?;
        p.validate()?;
        Ok(p)
    }

    /// Checks that the policy uses only what this subset understands, with operators that fit their operands.
    pub fn validate(&self) -> Result<()> {
        let bad = |s: String| Err(NgsiError::bad_data(format!("usage policy: {s}")));
        if let Some(ctx) = &self.context {
            let names_odrl = match ctx {
                serde_json::Value::String(s) => s == ODRL_CONTEXT,
                serde_json::Value::Array(items) => {
                    items.iter().any(|i| i.as_str() == Some(ODRL_CONTEXT))
                }
                _ => false,
            };
            if !names_odrl {
                return bad(format!("@context must be (or include) {ODRL_CONTEXT:?}"));
            }
        }
        if !matches!(odrl_term(&self.policy_type), "Set" | "Offer" | "Agreement") {
            return bad(format!(
                "@type {:?} is not supported: expected Set, Offer or Agreement",
                self.policy_type
            ));
        }
        if let Some(k) = self.unsupported.keys().next() {
            return bad(format!(
                "the property {k:?} is not supported (understood: @context, @type, uid, permission, prohibition)"
            ));
        }
        if self.permission.is_empty() && self.prohibition.is_empty() {
            return bad("a policy needs at least one permission or prohibition".into());
        }
        let rules = self
            .permission
            .iter()
            .enumerate()
            .map(|(i, r)| ("permission", i, r))
            .chain(
                self.prohibition
                    .iter()
                    .enumerate()
                    .map(|(i, r)| ("prohibition", i, r)),
            );
        for (kind, i, rule) in rules {
            let at = format!("{kind} {} ({})", i + 1, rule.action);
            if let Some(k) = rule.unsupported.keys().next() {
                return bad(format!(
                    "{at}: the property {k:?} is not supported (understood: action, constraint, target)"
                ));
            }
            for c in &rule.constraint {
                if let Some(k) = c.unsupported.keys().next() {
                    return bad(format!(
                        "{at}: the constraint property {k:?} is not supported (understood: leftOperand, operator, \
                         rightOperand)"
                    ));
                }
                let what = format!("{at}: constraint {} {}", c.left_operand, c.operator);
                let ops_ok = match c.left_operand {
                    LeftOperand::Purpose | LeftOperand::Recipient => matches!(
                        c.operator,
                        Operator::Eq | Operator::Neq | Operator::IsAnyOf | Operator::IsNoneOf
                    ),
                    LeftOperand::DateTime => {
                        !matches!(c.operator, Operator::IsAnyOf | Operator::IsNoneOf)
                    }
                };
                if !ops_ok {
                    return bad(format!(
                        "{what}: the operator does not apply to {}",
                        c.left_operand
                    ));
                }
                let values = c.right_operand.values();
                match c.operator {
                    Operator::IsAnyOf | Operator::IsNoneOf => {
                        if values.is_empty() {
                            return bad(format!("{what}: the list of values is empty"));
                        }
                    }
                    _ => {
                        if !matches!(c.right_operand, RightOperand::One(_)) {
                            return bad(format!("{what}: expects one value, not a list"));
                        }
                    }
                }
                if c.left_operand == LeftOperand::DateTime {
                    for v in values {
                        if parse_instant(v).is_none() {
                            return bad(format!(
                                "{what}: {v:?} is not an RFC 3339 date-time (like 2027-12-31T00:00:00Z) or date"
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// The outcome of [`check_usage`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "decision", content = "reason")]
pub enum UsageDecision {
    Permitted,
    /// Why, for the client: e.g. `purpose "marketing" is not among research, planning`.
    Denied(String),
}

impl UsageDecision {
    pub fn is_permitted(&self) -> bool {
        matches!(self, UsageDecision::Permitted)
    }
}

/// Whether a constraint holds; `Err(reason)` when it does not.
fn constraint_holds(
    c: &Constraint,
    p: &Principal,
    purpose: Option<&str>,
    now: DateTime<Utc>,
) -> std::result::Result<(), String> {
    let values = c.right_operand.values();
    let list = values.join(", ");
    match c.left_operand {
        LeftOperand::Purpose => {
            let Some(purpose) = purpose.map(str::trim).filter(|s| !s.is_empty()) else {
                return Err(match c.operator {
                    Operator::Eq | Operator::IsAnyOf => {
                        format!("a purpose is required (the data may be used for: {list})")
                    }
                    _ => format!("a purpose is required (the data may not be used for: {list})"),
                });
            };
            let among = values
                .iter()
                .any(|v| v.trim().eq_ignore_ascii_case(purpose));
            match c.operator {
                Operator::Eq | Operator::IsAnyOf if !among => Err(if values.len() == 1 {
                    format!("purpose {purpose:?} is not {list}")
                } else {
                    format!("purpose {purpose:?} is not among {list}")
                }),
                Operator::Neq | Operator::IsNoneOf if among => Err(format!(
                    "purpose {purpose:?} is excluded by the usage policy"
                )),
                _ => Ok(()),
            }
        }
        LeftOperand::Recipient => {
            let mut who: BTreeSet<&str> = p.groups.iter().map(String::as_str).collect();
            who.extend(p.subject.as_deref());
            who.extend(p.organisation.as_deref());
            if p.is_anonymous() {
                who.clear();
            }
            let among = values.iter().any(|v| who.contains(v));
            match c.operator {
                Operator::Eq | Operator::IsAnyOf if !among => Err(format!(
                    "{} is not among the permitted recipients ({list})",
                    p.label()
                )),
                Operator::Neq | Operator::IsNoneOf if among => Err(format!(
                    "{} is among the excluded recipients ({list})",
                    p.label()
                )),
                _ => Ok(()),
            }
        }
        LeftOperand::DateTime => {
            let Some(v) = values.first().copied() else {
                return Err(
                    "the usage policy is invalid: a dateTime constraint without a value".into(),
                );
            };
            let Some(t) = parse_instant(v) else {
                return Err(format!(
                    "the usage policy is invalid: {v:?} is not a date-time"
                ));
            };
            let ok = match c.operator {
                Operator::Eq => now == t,
                Operator::Neq => now != t,
                Operator::Lt => now < t,
                Operator::Lteq => now <= t,
                Operator::Gt => now > t,
                Operator::Gteq => now >= t,
                Operator::IsAnyOf | Operator::IsNoneOf => false,
            };
            if ok {
                return Ok(());
            }
            Err(match c.operator {
                Operator::Lt | Operator::Lteq => format!("the permission expired at {v}"),
                Operator::Gt | Operator::Gteq => format!("the permission starts after {v}"),
                _ => format!("the permission holds only at the time {v}"),
            })
        }
    }
}

/// Whether `p` may perform `action` (`"read"`, `"aggregate"`, `"use"`, or another [`Action`]) with the declared
/// `purpose` at `now` under `policy`. Administrators are not constrained; for owners use [`check_dataset_usage`].
pub fn check_usage(
    policy: &UsagePolicy,
    p: &Principal,
    action: &str,
    purpose: Option<&str>,
    now: DateTime<Utc>,
) -> UsageDecision {
    if p.is_admin() {
        return UsageDecision::Permitted;
    }
    let action: Action = match action.parse() {
        Ok(a) => a,
        Err(e) => return UsageDecision::Denied(e),
    };
    for rule in policy
        .prohibition
        .iter()
        .filter(|r| r.action.includes(action))
    {
        // A prohibition whose constraints cannot be shown not to hold applies: a missing purpose does not escape it.
        let escapes = rule.constraint.iter().any(|c| {
            let no_purpose = c.left_operand == LeftOperand::Purpose
                && purpose.is_none_or(|s| s.trim().is_empty());
            !no_purpose && constraint_holds(c, p, purpose, now).is_err()
        });
        if !escapes {
            return UsageDecision::Denied(if rule.constraint.is_empty() {
                format!("the usage policy prohibits {}", rule.action)
            } else {
                format!(
                    "the usage policy prohibits {} under these conditions",
                    rule.action
                )
            });
        }
    }
    let mut reasons: Vec<String> = Vec::new();
    for rule in policy
        .permission
        .iter()
        .filter(|r| r.action.includes(action))
    {
        match rule
            .constraint
            .iter()
            .try_for_each(|c| constraint_holds(c, p, purpose, now))
        {
            Ok(()) => return UsageDecision::Permitted,
            Err(why) => {
                if !reasons.contains(&why) {
                    reasons.push(why)
                }
            }
        }
    }
    if reasons.is_empty() {
        UsageDecision::Denied(format!("the usage policy does not permit {action}"))
    } else {
        UsageDecision::Denied(reasons.join("; "))
    }
}

/// [`check_usage`] on `d`'s usage policy, with whoever [`manages`] `d` exempt; a dataset without a usage policy
/// permits every use its access rules allow.
pub fn check_dataset_usage(
    p: &Principal,
    d: &Dataset,
    action: &str,
    purpose: Option<&str>,
    now: DateTime<Utc>,
) -> UsageDecision {
    match &d.usage_policy {
        Some(policy) if !manages(p, d) => check_usage(policy, p, action, purpose, now),
        _ => UsageDecision::Permitted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const D: &str = "urn:ngsi-ld:Dataset:meters";

    fn dataset(read: Access, write: Access) -> Dataset {
        Dataset {
            id: D.into(),
            title: "Meters".into(),
            description: None,
            owner: "utility".into(),
            licence: "proprietary".into(),
            read,
            write,
            created_at: None,
            attributes: Vec::new(),
            usage_policy: None,
            catalog: Default::default(),
        }
    }

    fn who(subject: &str, roles: &[Role], groups: &[&str]) -> Principal {
        Principal {
            subject: Some(subject.into()),
            roles: roles.iter().copied().collect(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            organisation: None,
            method: AuthMethod::Session,
            scopes: None,
        }
    }

    fn keyed(mut p: Principal, scopes: &[&str]) -> Principal {
        p.method = AuthMethod::ApiKey {
            key_id: "k1".into(),
        };
        p.scopes = Some(scopes.iter().map(|s| s.parse().unwrap()).collect());
        p
    }

    #[test]
    fn scenarios_are_created_by_accounts_and_changed_by_their_owner() {
        let citizen = who("ann", &[Role::Citizen], &[]);
        let other = who("bob", &[Role::Citizen], &[]);
        let admin = who("root", &[Role::Admin], &[]);
        let device = who("meter-1", &[Role::Device], &[]);
        assert!(!may_create_scenario(&Principal::anonymous()));
        assert!(!may_create_scenario(&device));
        assert!(may_create_scenario(&citizen) && may_create_scenario(&admin));
        assert!(may_create_scenario(&who(
            "x",
            &[Role::Device, Role::Planner],
            &[]
        )));
        // through a key: only with the write scope
        assert!(!may_create_scenario(&keyed(citizen.clone(), &["read"])));
        assert!(may_create_scenario(&keyed(citizen.clone(), &["write"])));
        assert!(may_change_scenario(&citizen, Some("ann")));
        assert!(!may_change_scenario(&other, Some("ann")));
        assert!(!may_change_scenario(
            &keyed(citizen.clone(), &["read"]),
            Some("ann")
        ));
        assert!(may_change_scenario(&admin, Some("ann")));
        assert!(!may_change_scenario(
            &keyed(admin.clone(), &["write"]),
            Some("ann")
        ));
        // without an owner: administrators only
        assert!(may_change_scenario(&admin, None));
        assert!(!may_change_scenario(&citizen, None));
        assert!(!may_change_scenario(&Principal::anonymous(), None));
    }

    #[test]
    fn the_narrowest_access_lets_in_only_whom_all_let_in() {
        let g = |gs: &[&str]| Access::Groups(gs.iter().map(|g| g.to_string()).collect());
        let n = |rules: &[Access]| narrowest_access(rules.iter());
        assert_eq!(n(&[]), Access::Public);
        assert_eq!(n(&[Access::Public, Access::Public]), Access::Public);
        assert_eq!(n(&[Access::Public, Access::Registered]), Access::Registered);
        assert_eq!(n(&[Access::Registered, Access::Public]), Access::Registered);
        assert_eq!(n(&[Access::Registered, g(&["a"])]), g(&["a"]));
        assert_eq!(
            n(&[g(&["a"]), Access::Registered, Access::Public]),
            g(&["a"])
        );
        assert_eq!(n(&[g(&["a", "b"]), g(&["b", "c"])]), g(&["b"]));
        assert_eq!(n(&[g(&["a"]), g(&["c"])]), Access::Private);
        assert_eq!(
            n(&[Access::Public, Access::Private, Access::Registered]),
            Access::Private
        );
        // no wider than any of them: whoever the result lets in, every rule lets in
        let rules = [Access::Registered, g(&["a", "b"]), g(&["b"])];
        let d = |read: Access| dataset(read, Access::Private);
        let narrow = d(n(&rules));
        for p in [
            who("x", &[Role::Citizen], &["b"]),
            who("y", &[Role::Citizen], &["a"]),
            Principal::anonymous(),
        ] {
            if may(&p, &narrow, Operation::Read) {
                assert!(
                    rules
                        .iter()
                        .all(|r| may(&p, &d(r.clone()), Operation::Read)),
                    "{p:?}"
                );
            }
        }
        assert!(may(
            &who("x", &[Role::Citizen], &["b"]),
            &narrow,
            Operation::Read
        ));
    }

    fn energy() -> Access {
        Access::Groups(vec!["energy".into(), "water".into()])
    }

    /// "rw", "r-", "-w", "--" for what `p` may do where read and write are both `access`.
    fn rights(p: &Principal, access: &Access) -> String {
        let d = dataset(access.clone(), access.clone());
        format!(
            "{}{}",
            if may(p, &d, Operation::Read) {
                "r"
            } else {
                "-"
            },
            if may(p, &d, Operation::Write) {
                "w"
            } else {
                "-"
            }
        )
    }

    #[test]
    fn role_names_round_trip() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
            assert_eq!(serde_json::to_value(r).unwrap(), json!(r.as_str()));
        }
        assert_eq!(Role::parse("DataOwner"), Some(Role::DataOwner));
        assert_eq!(Role::parse("data-owner"), Some(Role::DataOwner));
        assert_eq!(Role::parse("superuser"), None);
    }

    #[test]
    fn scopes_parse_display_and_serde() {
        for s in [
            "read",
            "write",
            "admin",
            "read:urn:ngsi-ld:Dataset:x",
            "write:urn:ngsi-ld:Dataset:x",
        ] {
            let scope: Scope = s.parse().unwrap();
            assert_eq!(scope.to_string(), s);
            assert_eq!(serde_json::to_value(&scope).unwrap(), json!(s));
            assert_eq!(serde_json::from_value::<Scope>(json!(s)).unwrap(), scope);
        }
        assert_eq!(
            "read:urn:x".parse::<Scope>().unwrap(),
            Scope::ReadDataset("urn:x".into())
        );
        for bad in ["", "READ", "delete", "read:", "admin:x", "write: x"] {
            assert!(bad.parse::<Scope>().is_err(), "{bad}");
        }
        assert!(serde_json::from_value::<Scope>(json!("everything")).is_err());
    }

    #[test]
    fn principal_basics_and_serialisation() {
        let a = Principal::anonymous();
        assert!(a.is_anonymous() && !a.is_admin());
        assert_eq!(a.label(), "anonymous");
        let admin = who("root", &[Role::Admin], &[]);
        assert!(admin.is_admin() && admin.has_role(Role::Admin));
        assert_eq!(admin.label(), "root");
        assert!(!keyed(admin.clone(), &["read"]).is_admin());
        assert!(keyed(admin.clone(), &["admin"]).is_admin());
        let v = serde_json::to_value(keyed(admin, &["read:urn:x", "write"])).unwrap();
        assert_eq!(v["method"], json!({"kind": "apiKey", "keyId": "k1"}));
        assert_eq!(v["scopes"], json!(["write", "read:urn:x"]));
        assert_eq!(v["roles"], json!(["admin"]));
        let jwt = AuthMethod::Jwt {
            issuer: "https://idp".into(),
        };
        assert_eq!(
            serde_json::to_value(jwt).unwrap(),
            json!({"kind": "jwt", "issuer": "https://idp"})
        );
    }

    #[test]
    fn access_table_roles_by_access_by_operation() {
        let anon = Principal::anonymous();
        let mut anon_tenant = Principal::anonymous();
        anon_tenant.organisation = Some("utility".into());
        let mut org_member = who("bob", &[Role::Planner], &[]);
        org_member.organisation = Some("utility".into());
        // name, principal, rights on [Public, Registered, Groups(energy, water), Private]
        let table: Vec<(&str, Principal, [&str; 4])> = vec![
            ("anonymous", anon, ["rw", "--", "--", "--"]),
            (
                "anonymous naming the owner's tenant",
                anon_tenant,
                ["rw", "--", "--", "--"],
            ),
            (
                "citizen",
                who("alice", &[Role::Citizen], &[]),
                ["rw", "rw", "--", "--"],
            ),
            (
                "planner in energy",
                who("pia", &[Role::Planner], &["energy"]),
                ["rw", "rw", "rw", "--"],
            ),
            (
                "data owner of others",
                who("olga", &[Role::DataOwner], &["x"]),
                ["rw", "rw", "--", "--"],
            ),
            (
                "no roles",
                who("nobody", &[], &[]),
                ["rw", "rw", "--", "--"],
            ),
            (
                "device",
                who("dev1", &[Role::Device], &[]),
                ["rw", "-w", "--", "--"],
            ),
            (
                "device in water",
                who("dev2", &[Role::Device], &["water"]),
                ["rw", "-w", "rw", "--"],
            ),
            (
                "device and citizen",
                who("dev3", &[Role::Device, Role::Citizen], &[]),
                ["rw", "rw", "--", "--"],
            ),
            (
                "admin",
                who("root", &[Role::Admin], &[]),
                ["rw", "rw", "rw", "rw"],
            ),
            (
                "owner account",
                who("utility", &[Role::DataOwner], &[]),
                ["rw", "rw", "rw", "rw"],
            ),
            (
                "owner as citizen",
                who("utility", &[Role::Citizen], &[]),
                ["rw", "rw", "rw", "rw"],
            ),
            (
                "member of the owner organisation",
                org_member,
                ["rw", "rw", "rw", "rw"],
            ),
            (
                "in the owner group",
                who("carl", &[Role::Citizen], &["utility"]),
                ["rw", "rw", "rw", "rw"],
            ),
        ];
        let accesses = [
            Access::Public,
            Access::Registered,
            energy(),
            Access::Private,
        ];
        for (name, p, expected) in &table {
            for (access, want) in accesses.iter().zip(expected) {
                assert_eq!(rights(p, access), *want, "{name} on {access:?}");
            }
        }
    }

    #[test]
    fn access_table_api_key_scopes() {
        let other = "read:urn:ngsi-ld:Dataset:other";
        let rd = format!("read:{D}");
        let wd = format!("write:{D}");
        let citizen = who("alice", &[Role::Citizen], &["energy"]);
        let admin = who("root", &[Role::Admin], &[]);
        let device = who("dev1", &[Role::Device], &[]);
        let owner = who("utility", &[Role::DataOwner], &[]);
        // name, principal, rights on [Public, Registered, Groups(energy, water), Private]
        let table: Vec<(&str, Principal, [&str; 4])> = vec![
            (
                "citizen read",
                keyed(citizen.clone(), &["read"]),
                ["r-", "r-", "r-", "--"],
            ),
            (
                "citizen write",
                keyed(citizen.clone(), &["write"]),
                ["-w", "-w", "-w", "--"],
            ),
            (
                "citizen read+write",
                keyed(citizen.clone(), &["read", "write"]),
                ["rw", "rw", "rw", "--"],
            ),
            (
                "citizen admin scope",
                keyed(citizen.clone(), &["admin"]),
                ["rw", "rw", "rw", "--"],
            ),
            (
                "citizen no scopes",
                keyed(citizen.clone(), &[]),
                ["--", "--", "--", "--"],
            ),
            (
                "citizen other dataset",
                keyed(citizen.clone(), &[other, "write:urn:x"]),
                ["--", "--", "--", "--"],
            ),
            (
                "citizen this dataset",
                keyed(citizen, &[&rd, &wd]),
                ["rw", "rw", "rw", "--"],
            ),
            (
                "admin read",
                keyed(admin.clone(), &["read"]),
                ["r-", "r-", "--", "--"],
            ),
            (
                "admin this dataset",
                keyed(admin.clone(), &[&wd]),
                ["-w", "-w", "--", "--"],
            ),
            (
                "admin admin scope",
                keyed(admin, &["admin"]),
                ["rw", "rw", "rw", "rw"],
            ),
            (
                "device write",
                keyed(device.clone(), &["write"]),
                ["-w", "-w", "--", "--"],
            ),
            (
                "device read",
                keyed(device.clone(), &["read", "write"]),
                ["rw", "-w", "--", "--"],
            ),
            (
                "device read this dataset",
                keyed(device, &[&rd, "write"]),
                ["rw", "rw", "--", "--"],
            ),
            (
                "owner read",
                keyed(owner.clone(), &["read"]),
                ["r-", "r-", "r-", "r-"],
            ),
            (
                "owner write this",
                keyed(owner, &[&wd]),
                ["-w", "-w", "-w", "-w"],
            ),
        ];
        let accesses = [
            Access::Public,
            Access::Registered,
            energy(),
            Access::Private,
        ];
        for (name, p, expected) in &table {
            for (access, want) in accesses.iter().zip(expected) {
                assert_eq!(rights(p, access), *want, "{name} on {access:?}");
            }
        }
    }

    #[test]
    fn read_and_write_are_decided_separately() {
        let d = dataset(Access::Public, Access::Private);
        let citizen = who("alice", &[Role::Citizen], &[]);
        assert!(may(&citizen, &d, Operation::Read));
        assert!(!may(&citizen, &d, Operation::Write));
        assert!(!may(&Principal::anonymous(), &d, Operation::Write));
        let d = dataset(Access::Private, Access::Registered);
        let device = who("dev", &[Role::Device], &[]);
        assert!(!may(&device, &d, Operation::Read));
        assert!(may(&device, &d, Operation::Write));
    }

    #[test]
    fn managing_is_for_admins_and_owners() {
        let d = dataset(Access::Public, Access::Public);
        assert!(manages(&who("root", &[Role::Admin], &[]), &d));
        assert!(manages(&who("utility", &[], &[]), &d));
        assert!(manages(&who("carl", &[], &["utility"]), &d));
        assert!(!manages(&who("alice", &[Role::DataOwner], &[]), &d));
        assert!(!manages(&Principal::anonymous(), &d));
        assert!(!manages(
            &keyed(who("utility", &[], &[]), &["read", "write"]),
            &d
        ));
        assert!(manages(&keyed(who("utility", &[], &[]), &["admin"]), &d));
        assert!(!manages(
            &keyed(who("root", &[Role::Admin], &[]), &["read"]),
            &d
        ));
    }

    fn metered() -> Dataset {
        let mut d = dataset(Access::Registered, Access::Private);
        d.attributes = vec![
            AttributeRule {
                attribute: "power".into(),
                read: Access::Private,
                aggregate: Some(Access::Public),
            },
            AttributeRule {
                attribute: "https://example.org/meterSerial".into(),
                read: Access::Groups(vec!["energy".into()]),
                aggregate: None,
            },
            AttributeRule {
                attribute: "tariff".into(),
                read: Access::Registered,
                aggregate: Some(Access::Public),
            },
        ];
        d
    }

    fn hidden(p: &Principal, d: &Dataset) -> Vec<String> {
        hidden_attributes(p, d)
            .into_iter()
            .map(|r| r.attribute.clone())
            .collect()
    }

    #[test]
    fn attribute_hiding() {
        let d = metered();
        assert_eq!(
            hidden(&who("alice", &[Role::Citizen], &[]), &d),
            ["power", "https://example.org/meterSerial"]
        );
        assert_eq!(
            hidden(&who("eve", &[Role::Planner], &["energy"]), &d),
            ["power"]
        );
        assert!(hidden(&who("utility", &[], &[]), &d).is_empty());
        assert!(hidden(&who("root", &[Role::Admin], &[]), &d).is_empty());
        assert_eq!(hidden(&Principal::anonymous(), &d).len(), 3);
        // a device reads registered attributes only through a key scoped to the dataset
        assert_eq!(hidden(&who("dev", &[Role::Device], &[]), &d).len(), 3);
        assert_eq!(
            hidden(
                &keyed(who("dev", &[Role::Device], &[]), &[&format!("read:{D}")]),
                &d
            )
            .len(),
            2
        );
        assert!(dataset(Access::Public, Access::Public)
            .attributes
            .is_empty());
    }

    #[test]
    fn attribute_rules_match_short_or_expanded_names() {
        let d = metered();
        let power = &d.attributes[0];
        assert!(power.matches("https://example.org/power", "power"));
        assert!(!power.matches("https://example.org/powerFactor", "powerFactor"));
        let serial = &d.attributes[1];
        assert!(serial.matches("https://example.org/meterSerial", "meterSerial"));
        assert!(!serial.matches("https://other.org/meterSerial", "meterSerial"));
    }

    #[test]
    fn aggregates_of_hidden_attributes() {
        let d = metered();
        let (power, serial, tariff) = (&d.attributes[0], &d.attributes[1], &d.attributes[2]);
        let anon = Principal::anonymous();
        let alice = who("alice", &[Role::Citizen], &[]);
        let eve = who("eve", &[], &["energy"]);
        assert!(may_aggregate(&anon, &d, power));
        assert!(!may_aggregate(&anon, &d, serial));
        assert!(may_aggregate(&anon, &d, tariff));
        assert!(
            !may_aggregate(&alice, &d, serial),
            "no aggregate rule: read rule only"
        );
        assert!(
            may_aggregate(&eve, &d, serial),
            "may read raw, so aggregates too"
        );
        assert!(may_aggregate(&who("utility", &[], &[]), &d, serial));
        let mut private_agg = power.clone();
        private_agg.aggregate = Some(Access::Private);
        assert!(!may_aggregate(&alice, &d, &private_agg));
    }

    #[test]
    fn dataset_serde_stays_compatible_and_validates_new_fields() {
        let old = json!({"id": D, "title": "Meters", "owner": "utility", "licence": "proprietary",
                         "read": {"kind": "registered"}, "write": {"kind": "private"}});
        let d: Dataset = serde_json::from_value(old.clone()).unwrap();
        assert!(d.attributes.is_empty() && d.usage_policy.is_none());
        assert_eq!(
            serde_json::to_value(&d).unwrap(),
            old,
            "no new keys when unused"
        );
        d.validate().unwrap();

        let mut d = metered();
        d.usage_policy = Some(UsagePolicy::from_json(&sample_policy()).unwrap());
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(
            v["attributes"][0],
            json!({"attribute": "power", "read": {"kind": "private"},
                                               "aggregate": {"kind": "public"}})
        );
        assert_eq!(v["usagePolicy"]["permission"][0]["action"], "use");
        let back: Dataset = serde_json::from_value(v).unwrap();
        assert_eq!(back, d);
        back.validate().unwrap();

        let mut dup = d.clone();
        dup.attributes.push(dup.attributes[0].clone());
        assert!(dup
            .validate()
            .unwrap_err()
            .detail
            .contains("more than one rule"));
        let mut blank = d.clone();
        blank.attributes[0].attribute = " ".into();
        assert!(blank.validate().is_err());
        let mut no_groups = d.clone();
        no_groups.attributes[1].read = Access::Groups(vec![]);
        assert!(no_groups
            .validate()
            .unwrap_err()
            .detail
            .contains("at least one group"));
        let mut bad_policy = d;
        bad_policy.usage_policy.as_mut().unwrap().permission[0].constraint[0].operator =
            Operator::Lt;
        assert!(bad_policy
            .validate()
            .unwrap_err()
            .detail
            .contains("does not apply to purpose"));
    }

    // ---- ODRL ----

    fn sample_policy() -> serde_json::Value {
        json!({
            "@context": "http://www.w3.org/ns/odrl.jsonld", "@type": "Set", "uid": "urn:policy:meters",
            "permission": [{"action": "use", "target": D, "constraint": [
                {"leftOperand": "purpose", "operator": "isAnyOf", "rightOperand": ["research", "planning"]},
                {"leftOperand": "dateTime", "operator": "lt", "rightOperand": "2027-12-31T00:00:00Z"}]}],
            "prohibition": [{"action": "distribute"}]
        })
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn constraint_policy(left: &str, op: &str, right: serde_json::Value) -> UsagePolicy {
        UsagePolicy::from_json(&json!({"permission": [{"action": "read", "constraint": [
            {"leftOperand": left, "operator": op, "rightOperand": right}]}]}))
        .unwrap()
    }

    #[test]
    fn odrl_sample_parses_into_typed_structs() {
        let p = UsagePolicy::from_json(&sample_policy()).unwrap();
        assert_eq!(p.policy_type, "Set");
        assert_eq!(p.uid.as_deref(), Some("urn:policy:meters"));
        assert_eq!(p.permission[0].action, Action::Use);
        assert_eq!(p.permission[0].target.as_deref(), Some(D));
        let c = &p.permission[0].constraint;
        assert_eq!(c[0].left_operand, LeftOperand::Purpose);
        assert_eq!(c[0].operator, Operator::IsAnyOf);
        assert_eq!(
            c[0].right_operand,
            RightOperand::Many(vec!["research".into(), "planning".into()])
        );
        assert_eq!(c[1].left_operand, LeftOperand::DateTime);
        assert_eq!(c[1].operator, Operator::Lt);
        assert_eq!(p.prohibition[0].action, Action::Distribute);
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            sample_policy(),
            "round trip"
        );
    }

    #[test]
    fn odrl_accepts_prefixed_terms_and_value_objects() {
        let p = UsagePolicy::from_json(&json!({
            "@context": ["http://www.w3.org/ns/odrl.jsonld", {"ex": "https://example.org/"}],
            "@type": "odrl:Agreement",
            "permission": [{"action": "http://www.w3.org/ns/odrl/2/read", "constraint": [
                {"leftOperand": "odrl:dateTime", "operator": "odrl:lteq",
                 "rightOperand": {"@value": "2027-12-31", "@type": "xsd:date"}},
                {"leftOperand": "recipient", "operator": "eq", "rightOperand": {"@id": "energy"}}]}]
        }))
        .unwrap();
        assert_eq!(p.permission[0].action, Action::Read);
        assert_eq!(p.permission[0].constraint[0].operator, Operator::Lteq);
        assert_eq!(
            p.permission[0].constraint[1].right_operand,
            RightOperand::One("energy".into())
        );
    }

    #[test]
    fn odrl_rejects_what_it_does_not_understand() {
        let cases: Vec<(serde_json::Value, &str)> = vec![
            (
                json!({"permission": [{"action": "print"}]}),
                "unsupported ODRL action \"print\"",
            ),
            (
                json!({"permission": [{"action": "use", "constraint": [
                {"leftOperand": "spatial", "operator": "eq", "rightOperand": "x"}]}]}),
                "leftOperand \"spatial\"",
            ),
            (
                json!({"permission": [{"action": "use", "constraint": [
                {"leftOperand": "purpose", "operator": "isAllOf", "rightOperand": ["x"]}]}]}),
                "operator \"isAllOf\"",
            ),
            (
                json!({"permission": [{"action": "use", "duty": [{"action": "attribute"}]}]}),
                "\"duty\" is not supported",
            ),
            (
                json!({"permission": [{"action": "use", "constraint": [
                {"leftOperand": "purpose", "operator": "eq", "rightOperand": "x", "unit": "m"}]}]}),
                "\"unit\"",
            ),
            (
                json!({"permission": [{"action": "use"}], "obligation": []}),
                "\"obligation\" is not supported",
            ),
            (
                json!({"@type": "Ticket", "permission": [{"action": "use"}]}),
                "@type \"Ticket\"",
            ),
            (
                json!({"@context": "https://schema.org", "permission": [{"action": "use"}]}),
                "@context",
            ),
            (
                json!({"uid": "urn:x"}),
                "at least one permission or prohibition",
            ),
            (
                json!({"permission": [{"action": "use", "constraint": [
                {"leftOperand": "purpose", "operator": "gt", "rightOperand": "x"}]}]}),
                "does not apply to purpose",
            ),
            (
                json!({"permission": [{"action": "use", "constraint": [
                {"leftOperand": "dateTime", "operator": "isAnyOf", "rightOperand": ["2027-01-01"]}]}]}),
                "does not apply to dateTime",
            ),
            (
                json!({"permission": [{"action": "use", "constraint": [
                {"leftOperand": "dateTime", "operator": "lt", "rightOperand": "next year"}]}]}),
                "not an RFC 3339 date-time",
            ),
            (
                json!({"permission": [{"action": "use", "constraint": [
                {"leftOperand": "purpose", "operator": "eq", "rightOperand": ["a", "b"]}]}]}),
                "one value, not a list",
            ),
            (
                json!({"permission": [{"action": "use", "constraint": [
                {"leftOperand": "purpose", "operator": "isAnyOf", "rightOperand": []}]}]}),
                "list of values is empty",
            ),
            (
                json!({"permission": [{"action": "use", "constraint": [
                {"leftOperand": "purpose", "operator": "eq", "rightOperand": {"x": 1}}]}]}),
                "rightOperand",
            ),
            (
                json!({"permission": [{"action": "use", "constraint": [
                {"leftOperand": "purpose", "operator": "eq"}]}]}),
                "rightOperand",
            ),
            (json!({"permission": {"action": "use"}}), "not understood"),
        ];
        for (doc, want) in cases {
            let e = UsagePolicy::from_json(&doc).unwrap_err();
            assert_eq!(e.kind, crate::error::ErrorKind::BadRequestData);
            assert!(
                e.detail.contains(want),
                "{doc}: {:?} lacks {want:?}",
                e.detail
            );
        }
    }

    #[test]
    fn purpose_constraints() {
        let policy = UsagePolicy::from_json(&sample_policy()).unwrap();
        let alice = who("alice", &[Role::Citizen], &[]);
        let now = t("2026-06-01T00:00:00Z");
        assert_eq!(
            check_usage(&policy, &alice, "read", Some("research"), now),
            UsageDecision::Permitted
        );
        assert_eq!(
            check_usage(&policy, &alice, "aggregate", Some("Planning"), now),
            UsageDecision::Permitted
        );
        assert_eq!(
            check_usage(&policy, &alice, "read", Some("marketing"), now),
            UsageDecision::Denied("purpose \"marketing\" is not among research, planning".into())
        );
        let UsageDecision::Denied(why) = check_usage(&policy, &alice, "read", None, now) else {
            panic!("a read without a purpose passed");
        };
        assert!(why.contains("a purpose is required"), "{why}");
        assert!(!check_usage(&policy, &alice, "read", Some("  "), now).is_permitted());
        // prohibited whatever the purpose
        assert_eq!(
            check_usage(&policy, &alice, "distribute", Some("research"), now),
            UsageDecision::Denied("the usage policy prohibits distribute".into())
        );
        assert!(!check_usage(&policy, &alice, "sell", Some("research"), now).is_permitted());

        let eq = constraint_policy("purpose", "eq", json!("research"));
        assert!(check_usage(&eq, &alice, "read", Some("research"), now).is_permitted());
        assert_eq!(
            check_usage(&eq, &alice, "read", Some("ads"), now),
            UsageDecision::Denied("purpose \"ads\" is not research".into())
        );
        let neq = constraint_policy("purpose", "neq", json!("marketing"));
        assert!(check_usage(&neq, &alice, "read", Some("research"), now).is_permitted());
        assert!(!check_usage(&neq, &alice, "read", Some("marketing"), now).is_permitted());
        assert!(!check_usage(&neq, &alice, "read", None, now).is_permitted());
        let none_of = constraint_policy("purpose", "isNoneOf", json!(["marketing", "profiling"]));
        assert!(check_usage(&none_of, &alice, "read", Some("research"), now).is_permitted());
        let UsageDecision::Denied(why) =
            check_usage(&none_of, &alice, "read", Some("profiling"), now)
        else {
            panic!("profiling passed");
        };
        assert!(why.contains("\"profiling\" is excluded"), "{why}");
    }

    #[test]
    fn datetime_constraints_and_expiry() {
        let alice = who("alice", &[Role::Citizen], &[]);
        let edge = "2027-12-31T00:00:00Z";
        let before = t("2027-12-30T23:59:59Z");
        let at = t(edge);
        let after = t("2027-12-31T00:00:01Z");
        let cases = [
            ("lt", [true, false, false]),
            ("lteq", [true, true, false]),
            ("gt", [false, false, true]),
            ("gteq", [false, true, true]),
            ("eq", [false, true, false]),
            ("neq", [true, false, true]),
        ];
        for (op, want) in cases {
            let p = constraint_policy("dateTime", op, json!(edge));
            for (now, w) in [before, at, after].into_iter().zip(want) {
                assert_eq!(
                    check_usage(&p, &alice, "read", None, now).is_permitted(),
                    w,
                    "{op} at {now}"
                );
            }
        }
        let policy = UsagePolicy::from_json(&sample_policy()).unwrap();
        assert_eq!(
            check_usage(&policy, &alice, "read", Some("research"), after),
            UsageDecision::Denied(format!("the permission expired at {edge}"))
        );
        let from = constraint_policy("dateTime", "gteq", json!("2030-01-01"));
        assert_eq!(
            check_usage(&from, &alice, "read", None, before),
            UsageDecision::Denied("the permission starts after 2030-01-01".into())
        );
        assert!(check_usage(&from, &alice, "read", None, t("2030-01-01T00:00:00Z")).is_permitted());
    }

    #[test]
    fn recipient_constraints() {
        let now = t("2026-01-01T00:00:00Z");
        let alice = who("alice", &[Role::Citizen], &["energy"]);
        let mut bob = who("bob", &[], &[]);
        bob.organisation = Some("city".into());
        let any = constraint_policy("recipient", "isAnyOf", json!(["energy", "city"]));
        assert!(check_usage(&any, &alice, "read", None, now).is_permitted());
        assert!(check_usage(&any, &bob, "read", None, now).is_permitted());
        assert!(!check_usage(&any, &who("carl", &[], &[]), "read", None, now).is_permitted());
        let mut anon = Principal::anonymous();
        anon.organisation = Some("city".into());
        assert!(!check_usage(&any, &anon, "read", None, now).is_permitted());
        let eq = constraint_policy("recipient", "eq", json!("alice"));
        assert!(check_usage(&eq, &alice, "read", None, now).is_permitted());
        assert!(!check_usage(&eq, &bob, "read", None, now).is_permitted());
        let neq = constraint_policy("recipient", "neq", json!("city"));
        assert!(check_usage(&neq, &alice, "read", None, now).is_permitted());
        assert!(!check_usage(&neq, &bob, "read", None, now).is_permitted());
        let none_of = constraint_policy("recipient", "isNoneOf", json!(["energy"]));
        let UsageDecision::Denied(why) = check_usage(&none_of, &alice, "read", None, now) else {
            panic!("alice passed");
        };
        assert!(
            why.contains("alice is among the excluded recipients"),
            "{why}"
        );
    }

    #[test]
    fn actions_permissions_and_prohibitions() {
        let now = t("2026-01-01T00:00:00Z");
        let alice = who("alice", &[Role::Citizen], &[]);
        let read_only =
            UsagePolicy::from_json(&json!({"permission": [{"action": "read"}]})).unwrap();
        assert!(check_usage(&read_only, &alice, "read", None, now).is_permitted());
        assert_eq!(
            check_usage(&read_only, &alice, "aggregate", None, now),
            UsageDecision::Denied("the usage policy does not permit aggregate".into())
        );
        // two permissions: either may grant
        let two = UsagePolicy::from_json(&json!({"permission": [
            {"action": "read", "constraint": [{"leftOperand": "purpose", "operator": "eq", "rightOperand": "research"}]},
            {"action": "aggregate"}]}))
        .unwrap();
        assert!(check_usage(&two, &alice, "aggregate", None, now).is_permitted());
        assert!(!check_usage(&two, &alice, "read", None, now).is_permitted());
        // a conditional prohibition: applies when its condition holds, and when a purpose it names is not given
        let no_ads = UsagePolicy::from_json(&json!({"permission": [{"action": "use"}], "prohibition": [
            {"action": "use", "constraint": [{"leftOperand": "purpose", "operator": "eq", "rightOperand": "marketing"}]}]}))
        .unwrap();
        assert!(check_usage(&no_ads, &alice, "read", Some("research"), now).is_permitted());
        assert!(!check_usage(&no_ads, &alice, "read", Some("marketing"), now).is_permitted());
        assert!(!check_usage(&no_ads, &alice, "read", None, now).is_permitted());
    }

    #[test]
    fn admins_and_owners_are_not_constrained() {
        let now = t("2030-01-01T00:00:00Z");
        let policy = UsagePolicy::from_json(&sample_policy()).unwrap();
        let admin = who("root", &[Role::Admin], &[]);
        assert!(check_usage(&policy, &admin, "read", None, now).is_permitted());
        assert!(check_usage(&policy, &admin, "distribute", None, now).is_permitted());
        assert!(!check_usage(&policy, &keyed(admin, &["read"]), "read", None, now).is_permitted());
        let mut d = metered();
        d.usage_policy = Some(policy);
        assert!(
            check_dataset_usage(&who("utility", &[], &[]), &d, "read", None, now).is_permitted()
        );
        assert!(
            !check_dataset_usage(&who("alice", &[], &[]), &d, "read", Some("research"), now)
                .is_permitted()
        );
        assert!(
            check_dataset_usage(&who("alice", &[], &[]), &metered(), "read", None, now)
                .is_permitted()
        );
        let decision = serde_json::to_value(UsageDecision::Denied("why".into())).unwrap();
        assert_eq!(decision, json!({"decision": "denied", "reason": "why"}));
    }
}
