//! NGSI-LD subscriptions (ETSI GS CIM 009 clauses 5.2.12, 5.2.14, 5.8 and 5.11): parsing and validating subscription
//! documents into an expanded form, rendering them back under any context, and deciding which changes they notify.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::context::Context;
use crate::entity::{iri, Entity};
use crate::error::{NgsiError, Result};
use crate::geoquery::GeoQuery;
use crate::ngsi::{
    check_name, format_datetime, is_uri, parse_datetime, render_entity, render_types, Format,
    RenderOptions,
};
use crate::query::{parse_q, parse_scope_q, parse_types, Query, ScopeQuery, TypeExpr};

/// Prefix of the ids the broker generates for subscriptions.
pub const SUBSCRIPTION_ID_PREFIX: &str = "urn:ngsi-ld:Subscription:";
/// Prefix of notification ids.
pub const NOTIFICATION_ID_PREFIX: &str = "urn:ngsi-ld:Notification:";
/// The NGSI-LD null, which deletes a member in a PATCH.
const NGSI_NULL: &str = "urn:ngsi-ld:null";
/// Top-level members a subscription document may carry (read-only ones are accepted and ignored).
const MEMBERS: &[&str] = &[
    "id",
    "type",
    "@context",
    "subscriptionName",
    "description",
    "entities",
    "watchedAttributes",
    "notificationTrigger",
    "timeInterval",
    "q",
    "geoQ",
    "csf",
    "scopeQ",
    "isActive",
    "expiresAt",
    "throttling",
    "notification",
    "lang",
    "jsonldContext",
];
/// Members the broker sets; clients may send them back (e.g. a retrieved subscription) and they are ignored.
const READ_ONLY: &[&str] = &["status", "createdAt", "modifiedAt"];
const NOTIFICATION_MEMBERS: &[&str] = &[
    "attributes",
    "format",
    "endpoint",
    "sysAttrs",
    "showChanges",
];
const NOTIFICATION_READ_ONLY: &[&str] = &[
    "status",
    "timesSent",
    "timesFailed",
    "lastNotification",
    "lastSuccess",
    "lastFailure",
    "lastErrorReason",
];
const ENDPOINT_MEMBERS: &[&str] = &[
    "uri",
    "accept",
    "timeout",
    "cooldown",
    "receiverInfo",
    "notifierInfo",
];
/// Headers a `receiverInfo` entry may not set: the notifier owns the framing and the media type.
const RESERVED_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "host",
    "transfer-encoding",
    "connection",
    "link",
    "te",
    "upgrade",
    "trailer",
];

/// What kind of change triggers a notification (`notificationTrigger`, clause 5.2.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum NotificationTrigger {
    EntityCreated,
    EntityUpdated,
    EntityDeleted,
    AttributeCreated,
    AttributeUpdated,
    AttributeDeleted,
}

impl NotificationTrigger {
    pub const ALL: [NotificationTrigger; 6] = [
        NotificationTrigger::EntityCreated,
        NotificationTrigger::EntityUpdated,
        NotificationTrigger::EntityDeleted,
        NotificationTrigger::AttributeCreated,
        NotificationTrigger::AttributeUpdated,
        NotificationTrigger::AttributeDeleted,
    ];
    /// The triggers of a subscription that does not list any (clause 5.2.12).
    pub const DEFAULT: [NotificationTrigger; 2] = [
        NotificationTrigger::AttributeCreated,
        NotificationTrigger::AttributeUpdated,
    ];

    pub fn name(self) -> &'static str {
        match self {
            NotificationTrigger::EntityCreated => "entityCreated",
            NotificationTrigger::EntityUpdated => "entityUpdated",
            NotificationTrigger::EntityDeleted => "entityDeleted",
            NotificationTrigger::AttributeCreated => "attributeCreated",
            NotificationTrigger::AttributeUpdated => "attributeUpdated",
            NotificationTrigger::AttributeDeleted => "attributeDeleted",
        }
    }

    pub fn parse(s: &str) -> Option<NotificationTrigger> {
        NotificationTrigger::ALL.into_iter().find(|t| t.name() == s)
    }
}

/// What happened to an entity, as the change journal records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntityEvent {
    Created,
    Updated,
    Deleted,
}

/// The representation of entities in notifications (`notification.format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum NotificationFormat {
    #[default]
    Normalized,
    Concise,
    KeyValues,
}

impl NotificationFormat {
    pub fn name(self) -> &'static str {
        match self {
            NotificationFormat::Normalized => "normalized",
            NotificationFormat::Concise => "concise",
            NotificationFormat::KeyValues => "keyValues",
        }
    }

    pub fn as_format(self) -> Format {
        match self {
            NotificationFormat::Normalized => Format::Normalized,
            NotificationFormat::Concise => Format::Concise,
            NotificationFormat::KeyValues => Format::KeyValues,
        }
    }
}

/// The media type notifications are sent as (`endpoint.accept`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum EndpointAccept {
    /// `application/json`: the context goes in a `Link` header.
    #[default]
    #[serde(rename = "application/json")]
    Json,
    /// `application/ld+json`: the context goes in the body as `@context`.
    #[serde(rename = "application/ld+json")]
    JsonLd,
}

impl EndpointAccept {
    pub fn media_type(self) -> &'static str {
        match self {
            EndpointAccept::Json => "application/json",
            EndpointAccept::JsonLd => "application/ld+json",
        }
    }
}

/// A `KeyValuePair` of `receiverInfo` / `notifierInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

/// Where and how notifications are sent (clause 5.2.15).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    pub uri: String,
    #[serde(default)]
    pub accept: EndpointAccept,
    /// Per-attempt timeout in milliseconds (None: the server's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Minimum wait after a failed attempt before the next one, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown_ms: Option<u64>,
    /// Sent as HTTP headers with every notification.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub receiver_info: Vec<KeyValue>,
    /// Settings for the notifier (kept and shown; used by protocol bindings such as MQTT).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notifier_info: Vec<KeyValue>,
}

impl Endpoint {
    /// True for HTTP endpoints (http and https).
    pub fn is_http(&self) -> bool {
        let l = self.uri.to_ascii_lowercase();
        l.starts_with("http://") || l.starts_with("https://")
    }

    /// Where an `mqtt://` or `mqtts://` endpoint publishes, with the notifier settings (None for other endpoints).
    pub fn mqtt(&self) -> Option<MqttTarget> {
        MqttTarget::parse(&self.uri, &self.notifier_info).ok()
    }
}

/// An MQTT notification endpoint (ETSI GS CIM 009, MQTT binding):
/// `mqtt[s]://[user[:password]@]host[:port]/topic[/subtopic]*`, with `notifierInfo` keys `MQTT-QoS` (0, 1 or 2;
/// default 0) and `MQTT-Version` (`mqtt3.1.1`, the default, or `mqtt5.0`). `mqtts://` is MQTT over TLS (default
/// port 8883), `mqtt://` plain TCP (default port 1883).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttTarget {
    pub host: String,
    pub port: u16,
    /// `mqtts://`: the connection is TLS, and the broker's certificate must be valid for `host`.
    pub tls: bool,
    pub username: Option<String>,
    pub password: Option<String>,
    pub topic: String,
    pub qos: u8,
    /// MQTT 5: the notification is the payload and the metadata go in user properties; MQTT 3.1.1: the payload is
    /// `{"metadata": {...}, "body": notification}`.
    pub v5: bool,
}

impl MqttTarget {
    pub fn parse(uri: &str, notifier_info: &[KeyValue]) -> Result<MqttTarget> {
        let scheme_end = uri.find("://").unwrap_or(0);
        let tls = match uri[..scheme_end].to_ascii_lowercase().as_str() {
            "mqtt" => false,
            "mqtts" => true,
            _ => return Err(bad(format!("{uri:?} is not an mqtt:// or mqtts:// URI"))),
        };
        let rest = &uri[scheme_end + 3..];
        let (authority, topic) = rest
            .split_once('/')
            .ok_or_else(|| bad(format!("notification.endpoint.uri {uri:?} names no topic")))?;
        if topic.is_empty() || topic.contains(['+', '#']) {
            return Err(bad(format!(
                "notification.endpoint.uri {uri:?}: the topic must be given, without wildcards"
            )));
        }
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(u) => match u.split_once(':') {
                Some((n, p)) => (Some(n.to_string()), Some(p.to_string())),
                None => (Some(u.to_string()), None),
            },
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse::<u16>().map_err(|_| {
                    bad(format!(
                        "notification.endpoint.uri {uri:?}: {p:?} is not a port"
                    ))
                })?,
            ),
            None => (hostport, if tls { 8883 } else { 1883 }),
        };
        if host.is_empty() {
            return Err(bad(format!(
                "notification.endpoint.uri {uri:?} has no host"
            )));
        }
        let mut t = MqttTarget {
            host: host.to_string(),
            port,
            tls,
            username,
            password,
            topic: topic.to_string(),
            qos: 0,
            v5: false,
        };
        for kv in notifier_info {
            match kv.key.as_str() {
                "MQTT-QoS" => {
                    t.qos = match kv.value.as_str() {
                        "0" => 0,
                        "1" => 1,
                        "2" => 2,
                        v => {
                            return Err(bad(format!(
                                "notifierInfo MQTT-QoS must be 0, 1 or 2, not {v:?}"
                            )))
                        }
                    }
                }
                "MQTT-Version" => {
                    t.v5 = match kv.value.as_str() {
                        "mqtt3.1.1" => false,
                        "mqtt5.0" => true,
                        v => {
                            return Err(bad(format!(
                                "notifierInfo MQTT-Version must be mqtt3.1.1 or mqtt5.0, not {v:?}"
                            )))
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(t)
    }
}

/// `notification` of a subscription (clause 5.2.14), without the status members the broker adds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationParams {
    /// Expanded names of the attributes to include (None: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Vec<String>>,
    #[serde(default)]
    pub format: NotificationFormat,
    pub endpoint: Endpoint,
    #[serde(default)]
    pub sys_attrs: bool,
    #[serde(default)]
    pub show_changes: bool,
}

/// One member of `entities`: an id, an id pattern or neither, and an entity type expression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntitySelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_pattern: Option<String>,
    /// The type expression (clause 4.17) with every type name expanded.
    #[serde(rename = "type")]
    pub type_expr: String,
}

/// Delivery statistics shown with a subscription (kept by the store, handed in for rendering).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeliveryInfo {
    /// Successful deliveries.
    pub times_sent: u64,
    /// Failed delivery attempts.
    pub times_failed: u64,
    pub last_notification: Option<DateTime<Utc>>,
    pub last_success: Option<DateTime<Utc>>,
    pub last_failure: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

/// A subscription in urbantwin's internal form: names and types expanded, ready to store as JSON and to match.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entities: Vec<EntitySelector>,
    /// Expanded attribute names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watched_attributes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_trigger: Option<Vec<NotificationTrigger>>,
    /// Seconds between periodic notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_interval: Option<f64>,
    /// The `q` expression as written; `q_names` expands the names it uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub q_names: BTreeMap<String, String>,
    /// The `geoQ` object with `geoproperty` expanded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geo_q: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csf: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope_q: Option<String>,
    #[serde(default = "yes")]
    pub is_active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// Minimum seconds between two notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttling: Option<f64>,
    pub notification: NotificationParams,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    /// `jsonldContext`: the context URL notifications are rendered under (None: `context`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jsonld_context: Option<String>,
    /// The user @context the subscription was created with (Null: the core context alone).
    #[serde(default)]
    pub context: Value,
    pub created_at: DateTime<Utc>,
    pub modified_at: DateTime<Utc>,
    /// Who made it: its notifications carry only what they may read (None: anyone, i.e. public data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<SubscriptionOwner>,
    /// The NGSI-LD tenant it was made in (`NGSILD-Tenant`): it lives and notifies there only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(skip)]
    compiled: CompiledCell,
}

/// The account (or identity provider's subject) a subscription belongs to, with the roles, groups and
/// organisation it had when it subscribed (used when no account of that name exists, as for OIDC subjects).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionOwner {
    pub subject: String,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organisation: Option<String>,
    /// The key's scopes when it subscribed through an API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
}

fn yes() -> bool {
    true
}

impl PartialEq for Subscription {
    fn eq(&self, other: &Self) -> bool {
        // compare the stored form; the compiled matchers follow from it
        serde_json::to_value(self).ok() == serde_json::to_value(other).ok()
    }
}

/// The compiled filters of a subscription, built once per loaded subscription.
#[derive(Debug)]
pub struct Matchers {
    pub selectors: Vec<CompiledSelector>,
    pub q: Option<Query>,
    pub geo: Option<GeoQuery>,
    pub scope: Option<ScopeQuery>,
    pub triggers: HashSet<NotificationTrigger>,
}

/// An entity selector ready to match.
#[derive(Debug)]
pub struct CompiledSelector {
    pub id: Option<String>,
    pub id_pattern: Option<Regex>,
    pub types: TypeExpr,
}

impl CompiledSelector {
    pub fn matches(&self, e: &Entity) -> bool {
        if let Some(id) = &self.id {
            if &e.id != id {
                return false;
            }
        } else if let Some(p) = &self.id_pattern {
            if !p.is_match(&e.id) {
                return false;
            }
        }
        self.types.matches(&e.types)
    }
}

impl Matchers {
    /// Whether the entity is selected by `entities`, `q`, `geoQ` and `scopeQ`.
    pub fn selects(&self, e: &Entity) -> bool {
        (self.selectors.is_empty() || self.selectors.iter().any(|s| s.matches(e)))
            && self.q.as_ref().is_none_or(|q| q.matches(e))
            && self.geo.as_ref().is_none_or(|g| g.matches(e))
            && self.scope.as_ref().is_none_or(|s| s.matches(&e.scopes))
    }
}

#[derive(Debug, Clone, Default)]
struct CompiledCell(OnceLock<Arc<Matchers>>);

/// The status of a subscription as shown to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionStatus {
    Active,
    Paused,
    Expired,
}

impl SubscriptionStatus {
    pub fn name(self) -> &'static str {
        match self {
            SubscriptionStatus::Active => "active",
            SubscriptionStatus::Paused => "paused",
            SubscriptionStatus::Expired => "expired",
        }
    }
}

fn is_null(v: &Value) -> bool {
    v.is_null() || v.as_str() == Some(NGSI_NULL)
}

fn bad(detail: impl Into<String>) -> NgsiError {
    NgsiError::bad_data(detail)
}

fn string_member(v: &Value, what: &str) -> Result<String> {
    match v {
        Value::String(s) if !s.is_empty() => Ok(s.clone()),
        Value::String(_) => Err(bad(format!("{what} must not be empty"))),
        other => Err(bad(format!("{what} must be a string, got {other}"))),
    }
}

fn bool_member(v: &Value, what: &str) -> Result<bool> {
    v.as_bool()
        .ok_or_else(|| bad(format!("{what} must be true or false, got {v}")))
}

fn seconds_member(v: &Value, what: &str) -> Result<f64> {
    match v.as_f64() {
        Some(n) if n.is_finite() && n > 0.0 && n <= 1.0e9 => Ok(n),
        _ => Err(bad(format!(
            "{what} must be a positive number of seconds, got {v}"
        ))),
    }
}

fn millis_member(v: &Value, what: &str) -> Result<u64> {
    match v.as_u64() {
        Some(n) if n > 0 && n <= 86_400_000 => Ok(n),
        _ => Err(bad(format!(
            "{what} must be a positive whole number of milliseconds (at most one day), got {v}"
        ))),
    }
}

fn number_value(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        Value::from(n as i64)
    } else {
        Value::from(n)
    }
}

/// Expanded attribute names from an array of names, without duplicates.
fn attribute_list(v: &Value, what: &str, ctx: &Context) -> Result<Vec<String>> {
    let items = v.as_array().ok_or_else(|| {
        bad(format!(
            "{what} must be an array of attribute names, got {v}"
        ))
    })?;
    if items.is_empty() {
        return Err(bad(format!("{what} must not be an empty array")));
    }
    let mut out = Vec::with_capacity(items.len());
    for i in items {
        let name = i
            .as_str()
            .ok_or_else(|| bad(format!("{what} must hold strings, got {i}")))?;
        check_name(name, "attribute")?;
        let e = ctx.expand(name);
        if !out.contains(&e) {
            out.push(e);
        }
    }
    Ok(out)
}

fn compile_regex(pattern: &str) -> Result<Regex> {
    crate::query::compile_regex(pattern).map_err(|detail| {
        bad(format!(
            "idPattern {pattern:?} is not a valid regular expression ({detail})"
        ))
    })
}

/// Writes a type expression back as text (the inverse of `parse_types`), naming each type through `name`.
fn type_expr_text(t: &TypeExpr, name: &dyn Fn(&str) -> String) -> String {
    match t {
        TypeExpr::Type(n) => name(n),
        TypeExpr::Or(items) => items
            .iter()
            .map(|i| match i {
                TypeExpr::And(_) if items.len() > 1 => format!("({})", type_expr_text(i, name)),
                _ => type_expr_text(i, name),
            })
            .collect::<Vec<_>>()
            .join("|"),
        TypeExpr::And(items) => items
            .iter()
            .map(|i| match i {
                TypeExpr::Or(_) => format!("({})", type_expr_text(i, name)),
                _ => type_expr_text(i, name),
            })
            .collect::<Vec<_>>()
            .join(";"),
    }
}

fn parse_selector(v: &Value, ctx: &Context, index: usize) -> Result<EntitySelector> {
    let what = format!("entities[{index}]");
    let m = v
        .as_object()
        .ok_or_else(|| bad(format!("{what} must be an object with a type, got {v}")))?;
    if let Some(k) = m
        .keys()
        .find(|k| !matches!(k.as_str(), "id" | "idPattern" | "type"))
    {
        return Err(bad(format!(
            "{what} has the unknown member {k:?}; an entity selector has id, idPattern and type"
        )));
    }
    let id = match m.get("id") {
        None => None,
        Some(Value::String(s)) if is_uri(s) => Some(s.clone()),
        Some(other) => return Err(bad(format!("{what}.id must be a URI, got {other}"))),
    };
    let id_pattern = match m.get("idPattern") {
        None => None,
        Some(Value::String(p)) if !p.is_empty() => {
            compile_regex(p)?;
            Some(p.clone())
        }
        Some(other) => {
            return Err(bad(format!(
                "{what}.idPattern must be a non-empty regular expression string, got {other}"
            )))
        }
    };
    let ty = match m.get("type") {
        Some(Value::String(t)) => t,
        Some(other) => {
            return Err(bad(format!(
                "{what}.type must be a string (an entity type or type expression), got {other}"
            )))
        }
        None => {
            return Err(bad(format!(
                "{what} has no type; every entity selector needs one"
            )))
        }
    };
    let mut te = parse_types(ty).map_err(|e| bad(format!("{what}.type: {}", e.0)))?;
    for n in te.type_names() {
        check_name(n, "entity type")?;
    }
    te.expand_names(&|n| ctx.expand(n));
    Ok(EntitySelector {
        id,
        id_pattern,
        type_expr: type_expr_text(&te, &|n| n.to_string()),
    })
}

fn parse_key_values(v: &Value, what: &str, as_headers: bool) -> Result<Vec<KeyValue>> {
    let items = v.as_array().ok_or_else(|| {
        bad(format!(
            "{what} must be an array of {{\"key\", \"value\"}} objects"
        ))
    })?;
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let m = item.as_object().ok_or_else(|| {
            bad(format!(
                "{what}[{i}] must be an object with key and value, got {item}"
            ))
        })?;
        if let Some(k) = m.keys().find(|k| !matches!(k.as_str(), "key" | "value")) {
            return Err(bad(format!(
                "{what}[{i}] has the unknown member {k:?}; expected key and value"
            )));
        }
        let key = match m.get("key") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => return Err(bad(format!("{what}[{i}].key must be a non-empty string"))),
        };
        let value = match m.get("value") {
            Some(Value::String(s)) => s.clone(),
            _ => return Err(bad(format!("{what}[{i}].value must be a string"))),
        };
        if as_headers {
            let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
            if !key.chars().all(token) {
                return Err(bad(format!(
                    "{what}[{i}].key {key:?} is not a valid HTTP header name"
                )));
            }
            if RESERVED_HEADERS.contains(&key.to_ascii_lowercase().as_str()) {
                return Err(bad(format!(
                    "{what}[{i}].key {key:?} names a header the notifier sets itself (use endpoint.accept for the media type)"
                )));
            }
            if value
                .chars()
                .any(|c| c.is_control() && c != '\t' || !c.is_ascii())
            {
                return Err(bad(format!(
                    "{what}[{i}].value must be printable ASCII (it is sent as an HTTP header)"
                )));
            }
        }
        out.push(KeyValue { key, value });
    }
    Ok(out)
}

fn parse_endpoint(v: &Value) -> Result<Endpoint> {
    let m = v.as_object().ok_or_else(|| {
        bad(format!(
            "notification.endpoint must be an object with a uri, got {v}"
        ))
    })?;
    if let Some(k) = m.keys().find(|k| !ENDPOINT_MEMBERS.contains(&k.as_str())) {
        return Err(bad(format!(
            "notification.endpoint has the unknown member {k:?}; accepted: {}",
            ENDPOINT_MEMBERS.join(", ")
        )));
    }
    let uri = match m.get("uri") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(bad(format!(
                "notification.endpoint.uri must be a string, got {other}"
            )))
        }
        None => return Err(bad("notification.endpoint has no uri")),
    };
    if !is_uri(&uri) {
        return Err(bad(format!(
            "notification.endpoint.uri {uri:?} is not a URI"
        )));
    }
    let scheme = uri
        .split(':')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match scheme.as_str() {
        "http" | "https" => {
            let rest = &uri[scheme.len() + 1..];
            let authority = rest.strip_prefix("//").map(|r| r.split(['/', '?', '#']).next().unwrap_or_default());
            let host = authority.map(|a| a.rsplit('@').next().unwrap_or_default());
            if host.is_none_or(|h| h.is_empty() || h.starts_with(':')) {
                return Err(bad(format!("notification.endpoint.uri {uri:?} has no host")));
            }
        }
        "mqtt" | "mqtts" => {}
        other => {
            return Err(bad(format!(
                "notification.endpoint.uri must be an http://, https://, mqtt:// or mqtts:// URL, not a {other}: URI"
            )))
        }
    }
    let accept = match m.get("accept") {
        None => EndpointAccept::Json,
        Some(Value::String(s)) => match s.as_str() {
            "application/json" => EndpointAccept::Json,
            "application/ld+json" => EndpointAccept::JsonLd,
            other => {
                return Err(bad(format!(
                    "notification.endpoint.accept must be application/json or application/ld+json, not {other:?}"
                )))
            }
        },
        Some(other) => return Err(bad(format!("notification.endpoint.accept must be a string, got {other}"))),
    };
    let timeout_ms = m
        .get("timeout")
        .map(|t| millis_member(t, "notification.endpoint.timeout"))
        .transpose()?;
    let cooldown_ms = m
        .get("cooldown")
        .map(|t| millis_member(t, "notification.endpoint.cooldown"))
        .transpose()?;
    let receiver_info = m
        .get("receiverInfo")
        .map(|r| parse_key_values(r, "notification.endpoint.receiverInfo", true))
        .transpose()?
        .unwrap_or_default();
    let notifier_info = m
        .get("notifierInfo")
        .map(|r| parse_key_values(r, "notification.endpoint.notifierInfo", false))
        .transpose()?
        .unwrap_or_default();
    if scheme == "mqtt" || scheme == "mqtts" {
        MqttTarget::parse(&uri, &notifier_info)?;
    }
    Ok(Endpoint {
        uri,
        accept,
        timeout_ms,
        cooldown_ms,
        receiver_info,
        notifier_info,
    })
}

fn parse_notification(v: &Value, ctx: &Context) -> Result<NotificationParams> {
    let m = v.as_object().ok_or_else(|| {
        bad(format!(
            "notification must be an object with an endpoint, got {v}"
        ))
    })?;
    for k in m.keys() {
        if !NOTIFICATION_MEMBERS.contains(&k.as_str())
            && !NOTIFICATION_READ_ONLY.contains(&k.as_str())
        {
            return Err(bad(format!(
                "notification has the unknown member {k:?}; accepted: {}",
                NOTIFICATION_MEMBERS.join(", ")
            )));
        }
    }
    let attributes = match m.get("attributes") {
        None => None,
        Some(a) => Some(attribute_list(a, "notification.attributes", ctx)?),
    };
    let format = match m.get("format") {
        None => NotificationFormat::Normalized,
        Some(Value::String(s)) => match s.as_str() {
            "normalized" => NotificationFormat::Normalized,
            "concise" => NotificationFormat::Concise,
            "keyValues" | "simplified" => NotificationFormat::KeyValues,
            other => {
                return Err(bad(format!(
                    "notification.format must be normalized, concise or keyValues, not {other:?}"
                )))
            }
        },
        Some(other) => {
            return Err(bad(format!(
                "notification.format must be a string, got {other}"
            )))
        }
    };
    let endpoint = parse_endpoint(
        m.get("endpoint")
            .ok_or_else(|| bad("notification has no endpoint"))?,
    )?;
    let sys_attrs = m
        .get("sysAttrs")
        .map(|b| bool_member(b, "notification.sysAttrs"))
        .transpose()?
        .unwrap_or(false);
    let show_changes = m
        .get("showChanges")
        .map(|b| bool_member(b, "notification.showChanges"))
        .transpose()?
        .unwrap_or(false);
    Ok(NotificationParams {
        attributes,
        format,
        endpoint,
        sys_attrs,
        show_changes,
    })
}

/// RFC 7386 merge of `patch` into `base` (the NGSI-LD null deletes too).
fn merge_patch(base: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (k, v) in patch {
        if is_null(v) {
            base.remove(k);
            continue;
        }
        match (base.get_mut(k), v) {
            (Some(Value::Object(b)), Value::Object(p)) => merge_patch(b, p),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Which attribute-level trigger a change to `name` is, judged from the entity after the change: gone means deleted,
/// an instance whose creation is its last modification means created.
fn attribute_change(e: &Entity, name: &str) -> NotificationTrigger {
    match e
        .attrs
        .get(name)
        .and_then(|list| list.iter().max_by_key(|a| a.modified_at))
    {
        None => NotificationTrigger::AttributeDeleted,
        Some(a) if a.created_at.is_some() && a.created_at == a.modified_at => {
            NotificationTrigger::AttributeCreated
        }
        Some(_) => NotificationTrigger::AttributeUpdated,
    }
}

impl Subscription {
    /// Parses and validates a subscription document (`POST /subscriptions`). `ctx` expands its names; `user_context`
    /// is the request's @context as given (Null for none), kept to render notifications under.
    pub fn parse(
        doc: &Value,
        ctx: &Context,
        user_context: Value,
        now: DateTime<Utc>,
    ) -> Result<Subscription> {
        let m = doc
            .as_object()
            .ok_or_else(|| bad("a subscription must be a JSON object"))?;
        let id = match m.get("id").or_else(|| m.get("@id")) {
            None => format!("{SUBSCRIPTION_ID_PREFIX}{}", uuid::Uuid::new_v4()),
            Some(Value::String(s)) if is_uri(s) => s.clone(),
            Some(Value::String(s)) => {
                return Err(bad(format!("subscription id {s:?} is not a URI")))
            }
            Some(other) => {
                return Err(bad(format!(
                    "subscription id must be a string (a URI), got {other}"
                )))
            }
        };
        let mut s = Subscription::parse_members(m, ctx, now, true)?;
        s.id = id;
        s.context = user_context;
        Ok(s)
    }

    /// Parses every member but `id` and validates the result; `fresh_expiry` requires `expiresAt` in the future.
    fn parse_members(
        m: &Map<String, Value>,
        ctx: &Context,
        now: DateTime<Utc>,
        fresh_expiry: bool,
    ) -> Result<Subscription> {
        match m.get("type").or_else(|| m.get("@type")) {
            Some(Value::String(t))
                if t == "Subscription" || t == "https://uri.etsi.org/ngsi-ld/Subscription" => {}
            Some(other) => {
                return Err(bad(format!(
                    "subscription type must be \"Subscription\", got {other}"
                )))
            }
            None => return Err(bad("subscription has no type; it must be \"Subscription\"")),
        }
        for k in m.keys() {
            if !MEMBERS.contains(&k.as_str())
                && !READ_ONLY.contains(&k.as_str())
                && k != "@id"
                && k != "@type"
            {
                return Err(bad(format!(
                    "unknown subscription member {k:?}; accepted: {}",
                    MEMBERS.join(", ")
                )));
            }
        }
        let opt_string = |k: &str| m.get(k).map(|v| string_member(v, k)).transpose();
        let entities = match m.get("entities") {
            None => Vec::new(),
            Some(Value::Array(items)) if !items.is_empty() => items
                .iter()
                .enumerate()
                .map(|(i, v)| parse_selector(v, ctx, i))
                .collect::<Result<_>>()?,
            Some(Value::Array(_)) => return Err(bad("entities must not be an empty array")),
            Some(other) => {
                return Err(bad(format!(
                    "entities must be an array of entity selectors, got {other}"
                )))
            }
        };
        let watched_attributes = m
            .get("watchedAttributes")
            .map(|v| attribute_list(v, "watchedAttributes", ctx))
            .transpose()?;
        let notification_trigger = match m.get("notificationTrigger") {
            None => None,
            Some(Value::Array(items)) if !items.is_empty() => {
                let mut out = Vec::new();
                for i in items {
                    let t = i
                        .as_str()
                        .and_then(NotificationTrigger::parse)
                        .ok_or_else(|| {
                            bad(format!(
                                "notificationTrigger: {i} is not one of {}",
                                NotificationTrigger::ALL.map(|t| t.name()).join(", ")
                            ))
                        })?;
                    if !out.contains(&t) {
                        out.push(t);
                    }
                }
                Some(out)
            }
            Some(other) => {
                return Err(bad(format!(
                    "notificationTrigger must be a non-empty array of strings, got {other}"
                )))
            }
        };
        let time_interval = m
            .get("timeInterval")
            .map(|v| seconds_member(v, "timeInterval"))
            .transpose()?;
        let throttling = m
            .get("throttling")
            .map(|v| seconds_member(v, "throttling"))
            .transpose()?;
        let (q, q_names) = match m.get("q") {
            None => (None, BTreeMap::new()),
            Some(v) => {
                let text = string_member(v, "q")?;
                let parsed = parse_q(&text)?;
                let mut names = BTreeMap::new();
                for t in parsed.terms() {
                    for n in std::iter::once(&t.path.attr).chain(t.path.sub_path.iter()) {
                        names.entry(n.clone()).or_insert_with(|| ctx.expand(n));
                    }
                }
                (Some(text), names)
            }
        };
        let geo_q = match m.get("geoQ") {
            None => None,
            Some(v) => {
                let obj = v
                    .as_object()
                    .ok_or_else(|| bad(format!("geoQ must be an object, got {v}")))?;
                if let Some(k) = obj.keys().find(|k| {
                    !matches!(
                        k.as_str(),
                        "geometry" | "coordinates" | "georel" | "geoproperty"
                    )
                }) {
                    return Err(bad(format!(
                        "geoQ has the unknown member {k:?}; expected geometry, coordinates, georel and geoproperty"
                    )));
                }
                let g = GeoQuery::from_json(v)?;
                check_name(&g.geoproperty, "geoproperty")?;
                let mut obj = obj.clone();
                obj.insert(
                    "geoproperty".into(),
                    Value::String(ctx.expand(&g.geoproperty)),
                );
                Some(Value::Object(obj))
            }
        };
        let scope_q = match m.get("scopeQ") {
            None => None,
            Some(v) => {
                let text = string_member(v, "scopeQ")?;
                parse_scope_q(&text)?;
                Some(text)
            }
        };
        let is_active = m
            .get("isActive")
            .map(|v| bool_member(v, "isActive"))
            .transpose()?
            .unwrap_or(true);
        let expires_at =
            match m.get("expiresAt") {
                None => None,
                Some(v) => Some(v.as_str().and_then(parse_datetime).ok_or_else(|| {
                    bad(format!("expiresAt must be a DateTime (RFC 3339), got {v}"))
                })?),
            };
        if fresh_expiry {
            if let Some(t) = expires_at {
                if t <= now {
                    return Err(bad(format!(
                        "expiresAt {} is in the past; it must be a future DateTime",
                        format_datetime(&t)
                    )));
                }
            }
        }
        let notification = parse_notification(
            m.get("notification")
                .ok_or_else(|| bad("subscription has no notification"))?,
            ctx,
        )?;
        let lang = match opt_string("lang")? {
            Some(l) if l.chars().any(|c| c.is_whitespace() || c.is_control()) => {
                return Err(bad(format!("lang {l:?} is not a language tag")))
            }
            other => other,
        };
        let jsonld_context = match opt_string("jsonldContext")? {
            Some(u) if !is_uri(&u) => return Err(bad(format!("jsonldContext {u:?} is not a URI"))),
            other => other,
        };
        let s = Subscription {
            id: String::new(),
            subscription_name: opt_string("subscriptionName")?,
            description: opt_string("description")?,
            entities,
            watched_attributes,
            notification_trigger,
            time_interval,
            q,
            q_names,
            geo_q,
            csf: opt_string("csf")?,
            scope_q,
            is_active,
            expires_at,
            throttling,
            notification,
            lang,
            jsonld_context,
            context: Value::Null,
            created_at: now,
            modified_at: now,
            owner: None,
            tenant: None,
            compiled: CompiledCell::default(),
        };
        s.validate()?;
        Ok(s)
    }

    /// The rules that tie members together (clause 5.2.12).
    fn validate(&self) -> Result<()> {
        if self.entities.is_empty() && self.watched_attributes.is_none() {
            return Err(bad(
                "a subscription needs entities, watchedAttributes or both",
            ));
        }
        if self.time_interval.is_some() {
            if self.watched_attributes.is_some() {
                return Err(bad(
                    "timeInterval and watchedAttributes cannot be combined: a periodic subscription notifies at every \
                     interval, not on changes",
                ));
            }
            if self.throttling.is_some() {
                return Err(bad("throttling cannot be combined with timeInterval"));
            }
            if self.entities.is_empty() {
                return Err(bad("a periodic subscription (timeInterval) needs entities"));
            }
        }
        self.compile()?;
        Ok(())
    }

    /// Applies a PATCH fragment (clause 5.8.2): members are merged (objects member by member, `null` or
    /// `urn:ngsi-ld:null` removes one), the result is validated again. `ctx` is the PATCH request's context.
    pub fn patch(
        &self,
        fragment: &Map<String, Value>,
        ctx: &Context,
        now: DateTime<Utc>,
    ) -> Result<Subscription> {
        if let Some(v) = fragment.get("id") {
            if v.as_str() != Some(self.id.as_str()) {
                return Err(bad(format!(
                    "the fragment's id {v} differs from the subscription id {}",
                    self.id
                )));
            }
        }
        if fragment.contains_key("notification")
            && fragment.get("notification").is_some_and(is_null)
        {
            return Err(bad("notification cannot be removed from a subscription"));
        }
        let mut base = self.document(ctx);
        let mut frag = fragment.clone();
        frag.remove("@context");
        frag.remove("id");
        merge_patch(&mut base, &frag);
        let mut s =
            Subscription::parse_members(&base, ctx, now, fragment.contains_key("expiresAt"))?;
        s.id = self.id.clone();
        s.context = self.context.clone();
        s.created_at = self.created_at;
        s.modified_at = now;
        // who made it and where are not the fragment's to change
        s.owner = self.owner.clone();
        s.tenant = self.tenant.clone();
        if !fragment.contains_key("q") {
            // the stored q keeps the names it was written with
            s.q = self.q.clone();
            s.q_names = self.q_names.clone();
            s.compiled = CompiledCell::default();
        }
        Ok(s)
    }

    /// Builds the matchers (parses q, geoQ, scopeQ and the selectors), or reports why they are invalid.
    fn compile(&self) -> Result<Arc<Matchers>> {
        if let Some(m) = self.compiled.0.get() {
            return Ok(m.clone());
        }
        let mut selectors = Vec::with_capacity(self.entities.len());
        for s in &self.entities {
            selectors.push(CompiledSelector {
                id: s.id.clone(),
                id_pattern: s.id_pattern.as_deref().map(compile_regex).transpose()?,
                types: parse_types(&s.type_expr)?,
            });
        }
        let q = match &self.q {
            None => None,
            Some(text) => {
                let mut q = parse_q(text)?;
                q.expand_names(&|n| {
                    self.q_names
                        .get(n)
                        .cloned()
                        .unwrap_or_else(|| n.to_string())
                });
                Some(q)
            }
        };
        let geo = self.geo_q.as_ref().map(GeoQuery::from_json).transpose()?;
        let scope = self.scope_q.as_deref().map(parse_scope_q).transpose()?;
        let triggers = self.triggers().into_iter().collect();
        let m = Arc::new(Matchers {
            selectors,
            q,
            geo,
            scope,
            triggers,
        });
        Ok(self.compiled.0.get_or_init(|| m).clone())
    }

    /// The compiled filters (for periodic notifications, which query the store with them).
    pub fn matchers(&self) -> Result<Arc<Matchers>> {
        self.compile()
    }

    /// The triggers in force (the listed ones, or the default).
    pub fn triggers(&self) -> Vec<NotificationTrigger> {
        self.notification_trigger
            .clone()
            .unwrap_or_else(|| NotificationTrigger::DEFAULT.to_vec())
    }

    /// The user @context notifications are rendered under: `jsonldContext` when given, else the creation context.
    pub fn notification_context(&self) -> Value {
        match &self.jsonld_context {
            Some(u) => Value::String(u.clone()),
            None => self.context.clone(),
        }
    }

    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|t| t <= now)
    }

    pub fn status(&self, now: DateTime<Utc>) -> SubscriptionStatus {
        if self.is_expired(now) {
            SubscriptionStatus::Expired
        } else if !self.is_active {
            SubscriptionStatus::Paused
        } else {
            SubscriptionStatus::Active
        }
    }

    /// True when the subscription may notify now (active and not expired).
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.status(now) == SubscriptionStatus::Active
    }

    /// Whether the change notifies this subscription. See [`Subscription::trigger_reason`].
    pub fn matches(
        &self,
        event: EntityEvent,
        changed_attrs: &[String],
        entity: &Entity,
        now: DateTime<Utc>,
    ) -> bool {
        self.trigger_reason(event, changed_attrs, entity, now)
            .is_some()
    }

    /// Why the change notifies this subscription, or None when it does not. `changed_attrs` are the expanded names
    /// of the attributes written or removed; `entity` is the entity after the change (before it, for deletions).
    /// Periodic subscriptions (timeInterval) are not driven by changes and never match here.
    pub fn trigger_reason(
        &self,
        event: EntityEvent,
        changed_attrs: &[String],
        entity: &Entity,
        now: DateTime<Utc>,
    ) -> Option<NotificationTrigger> {
        if !self.is_live(now) || self.time_interval.is_some() {
            return None;
        }
        let m = self.compile().ok()?;
        let relevant: Vec<&String> = match &self.watched_attributes {
            Some(w) => changed_attrs.iter().filter(|a| w.contains(a)).collect(),
            None => changed_attrs.iter().collect(),
        };
        if self.watched_attributes.is_some() && relevant.is_empty() {
            return None;
        }
        let mut candidates: Vec<NotificationTrigger> = Vec::with_capacity(4);
        match event {
            EntityEvent::Created => {
                candidates.push(NotificationTrigger::EntityCreated);
                if !relevant.is_empty() {
                    candidates.push(NotificationTrigger::AttributeCreated);
                }
            }
            EntityEvent::Deleted => candidates.push(NotificationTrigger::EntityDeleted),
            EntityEvent::Updated => {
                candidates.push(NotificationTrigger::EntityUpdated);
                for a in &relevant {
                    let t = attribute_change(entity, a);
                    if !candidates.contains(&t) {
                        candidates.push(t);
                    }
                }
            }
        }
        let reason = candidates.into_iter().find(|t| m.triggers.contains(t))?;
        m.selects(entity).then_some(reason)
    }

    /// Whether the entity is selected by the subscription's filters alone (no trigger, no status).
    pub fn selects(&self, entity: &Entity) -> bool {
        self.compile().is_ok_and(|m| m.selects(entity))
    }

    /// The render options of notification data.
    pub fn render_options(&self) -> RenderOptions {
        RenderOptions {
            format: self.notification.format.as_format(),
            sys_attrs: self.notification.sys_attrs,
            lang: self.lang.clone(),
            attrs: self
                .notification
                .attributes
                .as_ref()
                .map(|a| a.iter().cloned().collect()),
            ..Default::default()
        }
    }

    /// One member of a notification's `data`: the entity with the notification's projection and format, under `ctx`
    /// (the subscription's notification context). Deleted entities are `id`, `type` and `deletedAt`; attributes
    /// removed by the change appear with the NGSI-LD null when the subscription notifies deletions.
    #[allow(clippy::too_many_arguments)]
    pub fn render_data(
        &self,
        event: EntityEvent,
        changed_attrs: &[String],
        entity: &Entity,
        previous: Option<&Entity>,
        ctx: &Context,
        at: DateTime<Utc>,
    ) -> Value {
        if event == EntityEvent::Deleted {
            let mut m = Map::new();
            m.insert("id".into(), Value::String(entity.id.clone()));
            m.insert("type".into(), render_types(&entity.types, ctx));
            m.insert("deletedAt".into(), Value::String(format_datetime(&at)));
            return Value::Object(m);
        }
        let o = self.render_options();
        let mut v = render_entity(entity, ctx, &o);
        let triggers = self.triggers();
        let notify_deletions = triggers.contains(&NotificationTrigger::AttributeDeleted)
            || triggers.contains(&NotificationTrigger::EntityUpdated);
        if let (Value::Object(m), true) = (&mut v, notify_deletions) {
            for name in changed_attrs {
                if entity.attrs.contains_key(name)
                    || o.attrs.as_ref().is_some_and(|keep| !keep.contains(name))
                {
                    continue;
                }
                if self
                    .watched_attributes
                    .as_ref()
                    .is_some_and(|w| !w.contains(name))
                {
                    continue;
                }
                let null = Value::String(NGSI_NULL.into());
                let rendered = match o.format {
                    Format::KeyValues => null,
                    Format::Concise => {
                        let mut a = Map::new();
                        a.insert("value".into(), null);
                        Value::Object(a)
                    }
                    Format::Normalized => {
                        let mut a = Map::new();
                        a.insert("type".into(), Value::String("Property".into()));
                        a.insert("value".into(), null);
                        if o.sys_attrs {
                            a.insert("deletedAt".into(), Value::String(format_datetime(&at)));
                        }
                        Value::Object(a)
                    }
                };
                m.insert(ctx.compact(name), rendered);
            }
        }
        if let (Value::Object(m), Some(prev), true, false) = (
            &mut v,
            previous,
            self.notification.show_changes,
            o.format == Format::KeyValues,
        ) {
            add_previous_values(m, changed_attrs, entity, prev, ctx);
        }
        v
    }

    /// A Notification (clause 5.3.1) carrying `data`.
    pub fn notification(
        &self,
        data: Vec<Value>,
        reason: Option<NotificationTrigger>,
        at: DateTime<Utc>,
    ) -> Value {
        let mut m = Map::new();
        m.insert(
            "id".into(),
            Value::String(format!("{NOTIFICATION_ID_PREFIX}{}", uuid::Uuid::new_v4())),
        );
        m.insert("type".into(), Value::String("Notification".into()));
        m.insert("subscriptionId".into(), Value::String(self.id.clone()));
        m.insert("notifiedAt".into(), Value::String(format_datetime(&at)));
        m.insert("data".into(), Value::Array(data));
        if let Some(r) = reason {
            m.insert("triggerReason".into(), Value::String(r.name().into()));
        }
        Value::Object(m)
    }

    /// The subscription document with names compacted under `ctx`, without the members the broker adds.
    pub fn document(&self, ctx: &Context) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("id".into(), Value::String(self.id.clone()));
        m.insert("type".into(), Value::String("Subscription".into()));
        let put_str = |m: &mut Map<String, Value>, k: &str, v: &Option<String>| {
            if let Some(s) = v {
                m.insert(k.into(), Value::String(s.clone()));
            }
        };
        put_str(&mut m, "subscriptionName", &self.subscription_name);
        put_str(&mut m, "description", &self.description);
        if !self.entities.is_empty() {
            let list = self
                .entities
                .iter()
                .map(|s| {
                    let mut e = Map::new();
                    if let Some(id) = &s.id {
                        e.insert("id".into(), Value::String(id.clone()));
                    }
                    if let Some(p) = &s.id_pattern {
                        e.insert("idPattern".into(), Value::String(p.clone()));
                    }
                    let ty = match parse_types(&s.type_expr) {
                        Ok(te) => type_expr_text(&te, &|n| ctx.compact(n)),
                        Err(_) => s.type_expr.clone(),
                    };
                    e.insert("type".into(), Value::String(ty));
                    Value::Object(e)
                })
                .collect();
            m.insert("entities".into(), Value::Array(list));
        }
        if let Some(w) = &self.watched_attributes {
            m.insert(
                "watchedAttributes".into(),
                Value::Array(w.iter().map(|a| Value::String(ctx.compact(a))).collect()),
            );
        }
        if let Some(t) = &self.notification_trigger {
            m.insert(
                "notificationTrigger".into(),
                Value::Array(t.iter().map(|t| Value::String(t.name().into())).collect()),
            );
        }
        if let Some(t) = self.time_interval {
            m.insert("timeInterval".into(), number_value(t));
        }
        put_str(&mut m, "q", &self.q);
        if let Some(Value::Object(g)) = &self.geo_q {
            let mut g = g.clone();
            if let Some(Value::String(p)) = g.get("geoproperty") {
                let c = ctx.compact(p);
                g.insert("geoproperty".into(), Value::String(c));
            }
            m.insert("geoQ".into(), Value::Object(g));
        }
        put_str(&mut m, "csf", &self.csf);
        put_str(&mut m, "scopeQ", &self.scope_q);
        m.insert("isActive".into(), Value::Bool(self.is_active));
        if let Some(t) = &self.expires_at {
            m.insert("expiresAt".into(), Value::String(format_datetime(t)));
        }
        if let Some(t) = self.throttling {
            m.insert("throttling".into(), number_value(t));
        }
        let n = &self.notification;
        let mut nm = Map::new();
        if let Some(a) = &n.attributes {
            nm.insert(
                "attributes".into(),
                Value::Array(a.iter().map(|a| Value::String(ctx.compact(a))).collect()),
            );
        }
        nm.insert("format".into(), Value::String(n.format.name().into()));
        let mut ep = Map::new();
        ep.insert("uri".into(), Value::String(n.endpoint.uri.clone()));
        ep.insert(
            "accept".into(),
            Value::String(n.endpoint.accept.media_type().into()),
        );
        if let Some(t) = n.endpoint.timeout_ms {
            ep.insert("timeout".into(), Value::from(t));
        }
        if let Some(t) = n.endpoint.cooldown_ms {
            ep.insert("cooldown".into(), Value::from(t));
        }
        let kv = |list: &[KeyValue]| {
            Value::Array(
                list.iter()
                    .map(|p| {
                        let mut o = Map::new();
                        o.insert("key".into(), Value::String(p.key.clone()));
                        o.insert("value".into(), Value::String(p.value.clone()));
                        Value::Object(o)
                    })
                    .collect(),
            )
        };
        if !n.endpoint.receiver_info.is_empty() {
            ep.insert("receiverInfo".into(), kv(&n.endpoint.receiver_info));
        }
        if !n.endpoint.notifier_info.is_empty() {
            ep.insert("notifierInfo".into(), kv(&n.endpoint.notifier_info));
        }
        nm.insert("endpoint".into(), Value::Object(ep));
        nm.insert("sysAttrs".into(), Value::Bool(n.sys_attrs));
        nm.insert("showChanges".into(), Value::Bool(n.show_changes));
        m.insert("notification".into(), Value::Object(nm));
        put_str(&mut m, "lang", &self.lang);
        put_str(&mut m, "jsonldContext", &self.jsonld_context);
        m
    }

    /// The subscription as `GET /subscriptions/{id}` shows it: the document under `ctx` plus `status` and the
    /// delivery statistics in `notification`; `createdAt`/`modifiedAt` with `sys_attrs`.
    pub fn render(
        &self,
        ctx: &Context,
        delivery: &DeliveryInfo,
        now: DateTime<Utc>,
        sys_attrs: bool,
    ) -> Value {
        let mut m = self.document(ctx);
        m.insert(
            "status".into(),
            Value::String(self.status(now).name().into()),
        );
        if let Some(Value::Object(n)) = m.get_mut("notification") {
            // timesSent counts every notification sent, timesFailed those that failed (clause 5.2.14)
            n.insert(
                "timesSent".into(),
                Value::from(delivery.times_sent + delivery.times_failed),
            );
            n.insert("timesFailed".into(), Value::from(delivery.times_failed));
            let put = |n: &mut Map<String, Value>, k: &str, t: &Option<DateTime<Utc>>| {
                if let Some(t) = t {
                    n.insert(k.into(), Value::String(format_datetime(t)));
                }
            };
            put(n, "lastNotification", &delivery.last_notification);
            put(n, "lastSuccess", &delivery.last_success);
            put(n, "lastFailure", &delivery.last_failure);
            let failed = match (delivery.last_success, delivery.last_failure) {
                (None, None) => None,
                (Some(_), None) => Some(false),
                (None, Some(_)) => Some(true),
                (Some(s), Some(f)) => Some(f >= s),
            };
            match failed {
                Some(true) => {
                    n.insert("status".into(), Value::String("failed".into()));
                    if let Some(e) = &delivery.last_error {
                        n.insert("lastErrorReason".into(), Value::String(e.clone()));
                    }
                }
                Some(false) => {
                    n.insert("status".into(), Value::String("ok".into()));
                }
                None => {}
            }
        }
        if sys_attrs {
            m.insert(
                "createdAt".into(),
                Value::String(format_datetime(&self.created_at)),
            );
            m.insert(
                "modifiedAt".into(),
                Value::String(format_datetime(&self.modified_at)),
            );
        }
        Value::Object(m)
    }

    /// The expanded form to store.
    pub fn to_stored(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Reads the stored form back.
    pub fn from_stored(v: &Value) -> Result<Subscription> {
        serde_json::from_value(v.clone())
            .map_err(|e| NgsiError::internal(format!("stored subscription is unreadable: {e}")))
    }

    /// The GeoProperty a `geoQ` tests (expanded), if any.
    pub fn geoproperty(&self) -> Option<String> {
        self.geo_q.as_ref().map(|g| {
            g.get("geoproperty")
                .and_then(Value::as_str)
                .unwrap_or(iri::LOCATION)
                .to_string()
        })
    }
}

/// `showChanges`: adds `previousValue` / `previousObject` / `previousLanguageMap` to each changed attribute instance
/// that existed before the change (matched by datasetId).
fn add_previous_values(
    m: &mut Map<String, Value>,
    changed_attrs: &[String],
    entity: &Entity,
    previous: &Entity,
    ctx: &Context,
) {
    for name in changed_attrs {
        let (Some(now), Some(before)) = (entity.attrs.get(name), previous.attrs.get(name)) else {
            continue;
        };
        let Some(rendered) = m.get_mut(&ctx.compact(name)) else {
            continue;
        };
        let slots: Vec<&mut Value> = match rendered {
            Value::Array(items) => items.iter_mut().collect(),
            other => vec![other],
        };
        for (slot, inst) in slots.into_iter().zip(now.iter()) {
            let Some(old) = before.iter().find(|b| b.dataset_id == inst.dataset_id) else {
                continue;
            };
            let member = match old.kind {
                crate::entity::AttrKind::Relationship => "previousObject",
                crate::entity::AttrKind::LanguageProperty => "previousLanguageMap",
                _ => "previousValue",
            };
            if let Value::Object(obj) = slot {
                obj.insert(member.into(), old.value.clone());
            } else {
                // concise bare value: make it an object to carry the previous value
                let mut obj = Map::new();
                obj.insert("value".into(), slot.clone());
                obj.insert(member.into(), old.value.clone());
                *slot = Value::Object(obj);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::{AttrKind, Attribute};
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        parse_datetime("2024-05-01T10:00:00Z").unwrap()
    }

    fn later(secs: i64) -> DateTime<Utc> {
        now() + chrono::TimeDelta::seconds(secs)
    }

    fn base() -> Value {
        json!({
            "type": "Subscription",
            "entities": [{"type": "Vehicle"}],
            "watchedAttributes": ["speed"],
            "q": "speed>50",
            "notification": {"endpoint": {"uri": "http://example.org/notify"}}
        })
    }

    fn with(mut v: Value, k: &str, val: Value) -> Value {
        v.as_object_mut().unwrap().insert(k.into(), val);
        v
    }

    fn without(mut v: Value, k: &str) -> Value {
        v.as_object_mut().unwrap().remove(k);
        v
    }

    fn parse(v: &Value) -> Result<Subscription> {
        Subscription::parse(v, &Context::core(), Value::Null, now())
    }

    fn vehicle(speed: f64) -> Entity {
        let mut e = Entity::new("urn:ngsi-ld:Vehicle:1", Context::core().expand("Vehicle"));
        let mut a = Attribute::property(json!(speed));
        a.created_at = Some(now());
        a.modified_at = Some(later(5));
        e.attrs.insert(Context::core().expand("speed"), vec![a]);
        e
    }

    fn speed() -> String {
        Context::core().expand("speed")
    }

    #[test]
    fn parses_and_expands() {
        let s = parse(&base()).unwrap();
        assert!(s.id.starts_with(SUBSCRIPTION_ID_PREFIX));
        assert_eq!(
            s.entities[0].type_expr,
            "https://uri.etsi.org/ngsi-ld/default-context/Vehicle"
        );
        assert_eq!(s.watched_attributes, Some(vec![speed()]));
        assert_eq!(s.q_names.get("speed"), Some(&speed()));
        assert!(s.is_active);
        assert_eq!(s.notification.format, NotificationFormat::Normalized);
        assert_eq!(s.notification.endpoint.accept, EndpointAccept::Json);
        // stored form round-trips
        let back = Subscription::from_stored(&s.to_stored()).unwrap();
        assert_eq!(back, s);
        assert!(back.matches(EntityEvent::Updated, &[speed()], &vehicle(80.0), now()));
    }

    #[test]
    fn renders_under_other_contexts() {
        let user = json!({"speed": "https://example.org/vocab/speed", "Car": "https://example.org/vocab/Car"});
        let ctx = Context::build(&user, &|_| None).unwrap();
        let doc = json!({
            "id": "urn:ngsi-ld:Subscription:x",
            "type": "Subscription",
            "entities": [{"type": "(Car;Vehicle)|Truck", "idPattern": "^urn:.*"}],
            "watchedAttributes": ["speed"],
            "geoQ": {"geometry": "Point", "coordinates": [3.7, 51.0], "georel": "near;maxDistance==1000"},
            "throttling": 5,
            "notification": {"attributes": ["speed"], "format": "keyValues",
                             "endpoint": {"uri": "https://example.org/n", "accept": "application/ld+json",
                                          "receiverInfo": [{"key": "X-Auth", "value": "secret"}]}}
        });
        let s = Subscription::parse(&doc, &ctx, user.clone(), now()).unwrap();
        assert_eq!(
            s.watched_attributes,
            Some(vec!["https://example.org/vocab/speed".to_string()])
        );
        assert_eq!(s.geoproperty().as_deref(), Some(iri::LOCATION));
        let same = s.render(&ctx, &DeliveryInfo::default(), now(), false);
        assert_eq!(same["entities"][0]["type"], "(Car;Vehicle)|Truck");
        assert_eq!(same["watchedAttributes"], json!(["speed"]));
        assert_eq!(same["notification"]["attributes"], json!(["speed"]));
        assert_eq!(same["notification"]["format"], "keyValues");
        assert_eq!(
            same["notification"]["endpoint"]["receiverInfo"][0]["key"],
            "X-Auth"
        );
        assert_eq!(same["throttling"], 5);
        assert_eq!(same["geoQ"]["geoproperty"], "location");
        assert_eq!(same["status"], "active");
        assert!(same["notification"].get("status").is_none());
        let core = s.render(&Context::core(), &DeliveryInfo::default(), now(), true);
        assert_eq!(
            core["watchedAttributes"],
            json!(["https://example.org/vocab/speed"])
        );
        assert_eq!(
            core["entities"][0]["type"],
            "(https://example.org/vocab/Car;Vehicle)|Truck"
        );
        assert!(core.get("createdAt").is_some());
        assert_eq!(s.notification_context(), user);
    }

    #[test]
    fn rejects_invalid_documents_precisely() {
        let cases: Vec<(Value, &str)> = vec![
            (
                with(base(), "type", json!("Subscriptions")),
                "type must be \"Subscription\"",
            ),
            (without(base(), "type"), "has no type"),
            (with(base(), "id", json!("not a uri")), "not a URI"),
            (with(base(), "notification", json!({})), "no endpoint"),
            (without(base(), "notification"), "no notification"),
            (
                with(base(), "notification", json!({"endpoint": {}})),
                "no uri",
            ),
            (
                with(
                    base(),
                    "notification",
                    json!({"endpoint": {"uri": "ftp://x/y"}}),
                ),
                "http://, https://, mqtt:// or mqtts://",
            ),
            (
                with(
                    base(),
                    "notification",
                    json!({"endpoint": {"uri": "http:///y"}}),
                ),
                "no host",
            ),
            (
                with(
                    base(),
                    "notification",
                    json!({"endpoint": {"uri": "http://x", "accept": "text/plain"}}),
                ),
                "accept",
            ),
            (
                with(
                    base(),
                    "notification",
                    json!({"endpoint": {"uri": "http://x"}, "format": "fancy"}),
                ),
                "format",
            ),
            (
                with(
                    base(),
                    "notification",
                    json!({"endpoint": {"uri": "http://x", "receiverInfo": [{"key": "Content-Type", "value": "x"}]}}),
                ),
                "sets itself",
            ),
            (
                with(
                    base(),
                    "notification",
                    json!({"endpoint": {"uri": "http://x", "receiverInfo": [{"key": "a b", "value": "x"}]}}),
                ),
                "header name",
            ),
            (
                with(base(), "timeInterval", json!(10)),
                "timeInterval and watchedAttributes",
            ),
            (
                with(
                    without(base(), "watchedAttributes"),
                    "timeInterval",
                    json!(0),
                ),
                "positive number",
            ),
            (
                with(
                    with(
                        without(base(), "watchedAttributes"),
                        "timeInterval",
                        json!(10),
                    ),
                    "throttling",
                    json!(2),
                ),
                "throttling",
            ),
            (
                without(without(base(), "entities"), "watchedAttributes"),
                "entities, watchedAttributes",
            ),
            (with(base(), "entities", json!([])), "empty array"),
            (
                with(base(), "entities", json!([{"id": "urn:x:1"}])),
                "has no type",
            ),
            (
                with(base(), "entities", json!([{"type": "A", "idPattern": "("}])),
                "not a valid regular expression",
            ),
            (
                with(base(), "entities", json!([{"type": "A;"}])),
                "entities[0].type",
            ),
            (with(base(), "watchedAttributes", json!([])), "empty array"),
            (
                with(base(), "watchedAttributes", json!(["a=b"])),
                "forbidden",
            ),
            (with(base(), "q", json!("speed==")), "q"),
            (with(base(), "scopeQ", json!("nope")), "scopeQ"),
            (
                with(
                    base(),
                    "geoQ",
                    json!({"geometry": "Point", "coordinates": [1, 2]}),
                ),
                "georel",
            ),
            (
                with(base(), "expiresAt", json!("2020-01-01T00:00:00Z")),
                "in the past",
            ),
            (with(base(), "expiresAt", json!("tomorrow")), "DateTime"),
            (with(base(), "isActive", json!("yes")), "isActive"),
            (
                with(base(), "notificationTrigger", json!(["entityChanged"])),
                "notificationTrigger",
            ),
            (
                with(base(), "watchedAttribute", json!(["speed"])),
                "unknown subscription member",
            ),
            (
                with(base(), "jsonldContext", json!("no uri")),
                "jsonldContext",
            ),
        ];
        for (doc, expect) in cases {
            let err = parse(&doc).unwrap_err();
            assert_eq!(err.kind, crate::ErrorKind::BadRequestData, "{doc}: {err}");
            assert!(
                err.detail.contains(expect),
                "{doc}: {err} (expected {expect:?})"
            );
        }
    }

    #[test]
    fn mqtt_endpoints_name_a_broker_and_a_topic() {
        let endpoint = |ep: Value| {
            let doc = with(base(), "notification", json!({ "endpoint": ep }));
            parse(&doc)
        };
        let s = endpoint(json!({"uri": "mqtt://hub:secret@broker:1884/city/cars",
            "notifierInfo": [{"key": "MQTT-QoS", "value": "1"}, {"key": "MQTT-Version", "value": "mqtt5.0"}]}))
        .unwrap();
        let t = s.notification.endpoint.mqtt().unwrap();
        assert_eq!(
            t,
            MqttTarget {
                host: "broker".into(),
                port: 1884,
                tls: false,
                username: Some("hub".into()),
                password: Some("secret".into()),
                topic: "city/cars".into(),
                qos: 1,
                v5: true
            }
        );
        let t = endpoint(json!({"uri": "mqtt://broker/cars"}))
            .unwrap()
            .notification
            .endpoint
            .mqtt()
            .unwrap();
        assert_eq!((t.port, t.qos, t.v5, t.username), (1883, 0, false, None));
        for (uri, info, expect) in [
            ("mqtt://broker:1883", json!([]), "no topic"),
            ("mqtt://broker/cars/#", json!([]), "without wildcards"),
            ("mqtt://:1883/cars", json!([]), "no host"),
            ("mqtt://broker:x/cars", json!([]), "not a port"),
            (
                "mqtt://broker/cars",
                json!([{"key": "MQTT-QoS", "value": "3"}]),
                "MQTT-QoS",
            ),
            (
                "mqtt://broker/cars",
                json!([{"key": "MQTT-Version", "value": "4"}]),
                "MQTT-Version",
            ),
        ] {
            let err = endpoint(json!({"uri": uri, "notifierInfo": info})).unwrap_err();
            assert_eq!(err.kind, crate::ErrorKind::BadRequestData, "{uri}");
            assert!(err.detail.contains(expect), "{uri}: {err}");
        }
        // MQTT over TLS: port 8883 unless given, the scheme in any case
        let t = endpoint(json!({"uri": "mqtts://broker/cars"}))
            .unwrap()
            .notification
            .endpoint
            .mqtt()
            .unwrap();
        assert_eq!((t.tls, t.port, t.host.as_str()), (true, 8883, "broker"));
        let t = endpoint(json!({"uri": "MQTTS://hub@broker.city.example:18883/a/b"}))
            .unwrap()
            .notification
            .endpoint
            .mqtt()
            .unwrap();
        assert_eq!(
            (t.tls, t.port, t.topic.as_str(), t.username.as_deref()),
            (true, 18883, "a/b", Some("hub"))
        );
        for (uri, expect) in [
            ("mqtts://broker", "no topic"),
            ("mqtts://:8883/cars", "no host"),
            ("mqtts://broker:99999/cars", "not a port"),
        ] {
            let err = endpoint(json!({ "uri": uri })).unwrap_err();
            assert_eq!(err.kind, crate::ErrorKind::BadRequestData, "{uri}");
            assert!(err.detail.contains(expect), "{uri}: {err}");
        }
        // a scheme that is neither HTTP nor MQTT is still refused
        let err = endpoint(json!({"uri": "ws://broker/cars"})).unwrap_err();
        assert_eq!(err.kind, crate::ErrorKind::BadRequestData);
        assert!(err.detail.contains("mqtts://"), "{err}");
    }

    #[test]
    fn matching_follows_watched_attributes_q_and_triggers() {
        let s = parse(&base()).unwrap();
        let fast = vehicle(80.0);
        assert!(s.matches(EntityEvent::Updated, &[speed()], &fast, now()));
        // q fails
        assert!(!s.matches(EntityEvent::Updated, &[speed()], &vehicle(20.0), now()));
        // another attribute changed
        let other = Context::core().expand("colour");
        assert!(!s.matches(
            EntityEvent::Updated,
            std::slice::from_ref(&other),
            &fast,
            now()
        ));
        // wrong type
        let mut truck = fast.clone();
        truck.types = vec![Context::core().expand("Truck")];
        assert!(!s.matches(EntityEvent::Updated, &[speed()], &truck, now()));
        // created entity: attributeCreated is a default trigger
        let mut created = fast.clone();
        created.attrs.get_mut(&speed()).unwrap()[0].modified_at = Some(now());
        assert_eq!(
            s.trigger_reason(EntityEvent::Created, &[speed()], &created, now()),
            Some(NotificationTrigger::AttributeCreated)
        );
        // deletions are not default triggers
        assert!(!s.matches(EntityEvent::Deleted, &[speed()], &fast, now()));
        let mut gone = fast.clone();
        gone.attrs.clear();
        assert!(!s.matches(EntityEvent::Updated, &[speed()], &gone, now()));
        // without watchedAttributes any change counts
        let any = parse(&without(without(base(), "watchedAttributes"), "q")).unwrap();
        let mut coloured = fast.clone();
        let mut c = Attribute::property(json!("red"));
        c.created_at = Some(now());
        c.modified_at = Some(later(1));
        coloured.attrs.insert(other.clone(), vec![c]);
        assert!(any.matches(EntityEvent::Updated, &[other], &coloured, now()));
    }

    #[test]
    fn explicit_triggers_and_deletions() {
        let doc = with(
            without(base(), "q"),
            "notificationTrigger",
            json!(["entityDeleted", "attributeDeleted"]),
        );
        let s = parse(&doc).unwrap();
        let fast = vehicle(80.0);
        assert!(!s.matches(EntityEvent::Updated, &[speed()], &fast, now()));
        assert_eq!(
            s.trigger_reason(EntityEvent::Deleted, &[speed()], &fast, now()),
            Some(NotificationTrigger::EntityDeleted)
        );
        let mut gone = fast.clone();
        gone.attrs.clear();
        assert_eq!(
            s.trigger_reason(EntityEvent::Updated, &[speed()], &gone, now()),
            Some(NotificationTrigger::AttributeDeleted)
        );
        let data = s.render_data(
            EntityEvent::Updated,
            &[speed()],
            &gone,
            None,
            &Context::core(),
            now(),
        );
        assert_eq!(
            data["speed"],
            json!({"type": "Property", "value": "urn:ngsi-ld:null"})
        );
        let del = s.render_data(
            EntityEvent::Deleted,
            &[speed()],
            &fast,
            None,
            &Context::core(),
            now(),
        );
        assert_eq!(
            del,
            json!({"id": "urn:ngsi-ld:Vehicle:1", "type": "Vehicle", "deletedAt": "2024-05-01T10:00:00.000Z"})
        );
        let all = parse(&with(
            without(base(), "q"),
            "notificationTrigger",
            json!(["entityUpdated"]),
        ))
        .unwrap();
        assert_eq!(
            all.trigger_reason(EntityEvent::Updated, &[speed()], &fast, now()),
            Some(NotificationTrigger::EntityUpdated)
        );
    }

    #[test]
    fn status_expiry_and_pausing() {
        let s = parse(&with(base(), "expiresAt", json!("2024-05-01T11:00:00Z"))).unwrap();
        assert_eq!(s.status(now()), SubscriptionStatus::Active);
        assert_eq!(s.status(later(7200)), SubscriptionStatus::Expired);
        assert!(!s.matches(
            EntityEvent::Updated,
            &[speed()],
            &vehicle(80.0),
            later(7200)
        ));
        let p = parse(&with(base(), "isActive", json!(false))).unwrap();
        assert_eq!(p.status(now()), SubscriptionStatus::Paused);
        assert!(!p.matches(EntityEvent::Updated, &[speed()], &vehicle(80.0), now()));
        let r = p.render(&Context::core(), &DeliveryInfo::default(), now(), false);
        assert_eq!(r["status"], "paused");
        assert_eq!(r["isActive"], false);
    }

    #[test]
    fn periodic_subscriptions_do_not_match_changes() {
        let s = parse(&with(
            without(base(), "watchedAttributes"),
            "timeInterval",
            json!(30),
        ))
        .unwrap();
        assert!(!s.matches(EntityEvent::Updated, &[speed()], &vehicle(80.0), now()));
        assert!(s.selects(&vehicle(80.0)));
        assert!(!s.selects(&vehicle(10.0)));
        assert_eq!(s.document(&Context::core())["timeInterval"], 30);
    }

    #[test]
    fn geo_and_scope_filters() {
        let mut doc = with(
            without(base(), "q"),
            "geoQ",
            json!({"geometry": "Point", "coordinates": "[3.7, 51.05]", "georel": "near;maxDistance==500"}),
        );
        doc = with(doc, "scopeQ", json!("/Ghent/#"));
        let s = parse(&doc).unwrap();
        let mut e = vehicle(80.0);
        e.scopes = vec!["/Ghent/Centre".into()];
        e.attrs.insert(
            iri::LOCATION.into(),
            vec![Attribute::new(
                AttrKind::GeoProperty,
                json!({"type": "Point", "coordinates": [3.7001, 51.0501]}),
            )],
        );
        assert!(s.matches(EntityEvent::Updated, &[speed()], &e, now()));
        let mut far = e.clone();
        far.attrs.insert(
            iri::LOCATION.into(),
            vec![Attribute::new(
                AttrKind::GeoProperty,
                json!({"type": "Point", "coordinates": [4.4, 50.8]}),
            )],
        );
        assert!(!s.matches(EntityEvent::Updated, &[speed()], &far, now()));
        let mut elsewhere = e.clone();
        elsewhere.scopes = vec!["/Brussels".into()];
        assert!(!s.matches(EntityEvent::Updated, &[speed()], &elsewhere, now()));
    }

    #[test]
    fn selectors_by_id_and_pattern() {
        let s = parse(&with(base(), "entities", json!([{"id": "urn:ngsi-ld:Vehicle:2", "type": "Vehicle"}, {"idPattern": ":1$", "type": "Vehicle"}]))).unwrap();
        assert!(s.matches(EntityEvent::Updated, &[speed()], &vehicle(80.0), now()));
        let mut v3 = vehicle(80.0);
        v3.id = "urn:ngsi-ld:Vehicle:3".into();
        assert!(!s.matches(EntityEvent::Updated, &[speed()], &v3, now()));
        v3.id = "urn:ngsi-ld:Vehicle:2".into();
        assert!(s.matches(EntityEvent::Updated, &[speed()], &v3, now()));
    }

    #[test]
    fn patch_merges_and_revalidates() {
        let user = json!({"speed": "https://example.org/speed"});
        let ctx = Context::build(&user, &|_| None).unwrap();
        let mut s = Subscription::parse(&base(), &ctx, user.clone(), now()).unwrap();
        s.owner = Some(SubscriptionOwner {
            subject: "alice".into(),
            roles: vec!["planner".into()],
            groups: vec![],
            organisation: Some("city".into()),
            scopes: None,
        });
        s.tenant = Some("city".into());
        let frag = json!({"notification": {"format": "keyValues"}, "throttling": 3, "q": null});
        let p = s
            .patch(frag.as_object().unwrap(), &Context::core(), later(1))
            .unwrap();
        assert_eq!(p.notification.format, NotificationFormat::KeyValues);
        assert_eq!(p.notification.endpoint.uri, "http://example.org/notify");
        assert_eq!(p.throttling, Some(3.0));
        assert_eq!(p.q, None);
        // names keep their expansion though the PATCH used another context
        assert_eq!(
            p.watched_attributes,
            Some(vec!["https://example.org/speed".to_string()])
        );
        assert_eq!(p.context, user);
        // the owner and the tenant stay (a fragment naming them is refused as unknown members)
        assert_eq!(p.owner, s.owner);
        assert_eq!(p.tenant.as_deref(), Some("city"));
        assert_eq!(p.created_at, now());
        assert_eq!(p.modified_at, later(1));
        // q not in the fragment: the stored one stays with its expansion
        let q = s
            .patch(
                json!({"isActive": false}).as_object().unwrap(),
                &Context::core(),
                later(1),
            )
            .unwrap();
        assert_eq!(
            q.q_names.get("speed").map(String::as_str),
            Some("https://example.org/speed")
        );
        assert!(!q.is_active);
        // invalid results are rejected
        let err = s
            .patch(
                json!({"timeInterval": 5}).as_object().unwrap(),
                &ctx,
                later(1),
            )
            .unwrap_err();
        assert!(err.detail.contains("timeInterval"), "{err}");
        let err = s
            .patch(
                json!({"id": "urn:other"}).as_object().unwrap(),
                &ctx,
                later(1),
            )
            .unwrap_err();
        assert!(err.detail.contains("differs"), "{err}");
        let err = s
            .patch(
                json!({"expiresAt": "2000-01-01T00:00:00Z"})
                    .as_object()
                    .unwrap(),
                &ctx,
                later(1),
            )
            .unwrap_err();
        assert!(err.detail.contains("in the past"), "{err}");
        let err = s
            .patch(
                json!({"notification": null}).as_object().unwrap(),
                &ctx,
                later(1),
            )
            .unwrap_err();
        assert!(err.detail.contains("cannot be removed"), "{err}");
    }

    #[test]
    fn renders_delivery_status() {
        let s = parse(&base()).unwrap();
        let d = DeliveryInfo {
            times_sent: 2,
            times_failed: 1,
            last_notification: Some(later(10)),
            last_success: Some(later(10)),
            last_failure: Some(later(5)),
            last_error: Some("HTTP 500".into()),
        };
        let r = s.render(&Context::core(), &d, now(), false);
        assert_eq!(r["notification"]["timesSent"], 3);
        assert_eq!(r["notification"]["timesFailed"], 1);
        assert_eq!(r["notification"]["status"], "ok");
        assert_eq!(r["notification"]["lastSuccess"], "2024-05-01T10:00:10.000Z");
        let failing = DeliveryInfo {
            last_failure: Some(later(20)),
            ..d
        };
        let r = s.render(&Context::core(), &failing, now(), false);
        assert_eq!(r["notification"]["status"], "failed");
        assert_eq!(r["notification"]["lastErrorReason"], "HTTP 500");
    }

    #[test]
    fn show_changes_adds_previous_values() {
        let mut doc = without(base(), "q");
        doc["notification"] = json!({"showChanges": true, "endpoint": {"uri": "http://x.org/n"}});
        let s = parse(&doc).unwrap();
        let (before, after) = (vehicle(80.0), vehicle(95.0));
        let data = s.render_data(
            EntityEvent::Updated,
            &[speed()],
            &after,
            Some(&before),
            &Context::core(),
            now(),
        );
        assert_eq!(data["speed"]["value"], 95.0);
        assert_eq!(data["speed"]["previousValue"], 80.0);
        // without showChanges nothing is added
        let plain = parse(&without(base(), "q")).unwrap();
        let data = plain.render_data(
            EntityEvent::Updated,
            &[speed()],
            &after,
            Some(&before),
            &Context::core(),
            now(),
        );
        assert!(data["speed"].get("previousValue").is_none());
    }

    #[test]
    fn notification_payload_and_projection() {
        let mut doc = without(base(), "q");
        doc["notification"] = json!({"attributes": ["speed"], "format": "keyValues", "endpoint": {"uri": "http://x.org/n"}});
        let s = parse(&doc).unwrap();
        let mut e = vehicle(80.0);
        e.attrs.insert(
            Context::core().expand("colour"),
            vec![Attribute::property(json!("red"))],
        );
        let data = s.render_data(
            EntityEvent::Updated,
            &[speed()],
            &e,
            None,
            &Context::core(),
            now(),
        );
        assert_eq!(
            data,
            json!({"id": "urn:ngsi-ld:Vehicle:1", "type": "Vehicle", "speed": 80.0})
        );
        let n = s.notification(
            vec![data],
            Some(NotificationTrigger::AttributeUpdated),
            now(),
        );
        assert_eq!(n["type"], "Notification");
        assert_eq!(n["subscriptionId"], s.id.as_str());
        assert_eq!(n["triggerReason"], "attributeUpdated");
        assert!(n["id"]
            .as_str()
            .unwrap()
            .starts_with(NOTIFICATION_ID_PREFIX));
    }
}
