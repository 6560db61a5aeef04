//! Reading and writing NGSI-LD entity documents: normalized and concise payloads in (with validation and term
//! expansion), normalized, concise, keyValues and GeoJSON out (with compaction, projection and `lang`).

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

use crate::context::Context;
use crate::entity::{iri, AttrKind, Attribute, Entity, Provenance};
use crate::error::{NgsiError, Result};
use crate::geoquery::geometry_from_geojson;

/// Members of an attribute object that are not sub-attributes.
const ATTR_MEMBERS: &[&str] = &[
    "type",
    "value",
    "object",
    "languageMap",
    "vocab",
    "json",
    "valueList",
    "objectList",
    "observedAt",
    "unitCode",
    "datasetId",
    "createdAt",
    "modifiedAt",
    "deletedAt",
    "instanceId",
    "objectType",
    "lang",
    "previousValue",
    "previousObject",
    "previousLanguageMap",
];

/// True when `s` is an absolute URI as NGSI-LD requires for entity ids, relationship objects and datasetIds.
pub fn is_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    !scheme.is_empty()
        && !rest.is_empty()
        && scheme
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.')
        && !s.chars().any(|c| {
            c.is_whitespace()
                || c.is_control()
                || matches!(c, '<' | '>' | '"' | '{' | '}' | '|' | '\\' | '^' | '`')
        })
}

/// Checks an attribute or type name: NGSI-LD forbids characters that break queries and URLs.
pub fn check_name(name: &str, what: &str) -> Result<()> {
    if name.is_empty() {
        return Err(NgsiError::bad_data(format!("empty {what} name")));
    }
    if name.len() > 256 {
        return Err(NgsiError::bad_data(format!(
            "{what} name longer than 256 characters"
        )));
    }
    if let Some(c) = name.chars().find(|c| {
        c.is_whitespace()
            || c.is_control()
            || matches!(
                c,
                '<' | '>'
                    | '"'
                    | '\''
                    | '='
                    | ';'
                    | '('
                    | ')'
                    | '['
                    | ']'
                    | '{'
                    | '}'
                    | '|'
                    | '\\'
                    | '^'
                    | '`'
            )
    }) {
        return Err(NgsiError::bad_data(format!(
            "{what} name {name:?} contains the forbidden character {c:?}"
        )));
    }
    Ok(())
}

/// Parses an RFC 3339 DateTime as NGSI-LD uses it (`2024-01-01T12:00:00Z`, with fractions and offsets).
pub fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// Formats a time as NGSI-LD does: UTC, milliseconds, `Z`.
pub fn format_datetime(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn datetime_member(v: &Value, what: &str, attr: &str) -> Result<DateTime<Utc>> {
    v.as_str().and_then(parse_datetime).ok_or_else(|| {
        NgsiError::bad_data(format!(
            "{what} of attribute {attr} must be a DateTime (RFC 3339), got {v}"
        ))
    })
}

/// Parses a full entity (normalized or concise). `now` becomes createdAt/modifiedAt of the entity and attributes.
pub fn parse_entity(
    v: &Value,
    ctx: &Context,
    now: DateTime<Utc>,
    prov: &Provenance,
) -> Result<Entity> {
    let m = v
        .as_object()
        .ok_or_else(|| NgsiError::bad_data("an entity must be a JSON object"))?;
    let id = match m.get("id").or_else(|| m.get("@id")) {
        Some(Value::String(s)) if is_uri(s) => s.clone(),
        Some(Value::String(s)) => {
            return Err(NgsiError::bad_data(format!("entity id {s:?} is not a URI")))
        }
        Some(_) => return Err(NgsiError::bad_data("entity id must be a string")),
        None => return Err(NgsiError::bad_data("entity has no id")),
    };
    let types = parse_types_member(m.get("type").or_else(|| m.get("@type")), ctx)?
        .ok_or_else(|| NgsiError::bad_data(format!("entity {id} has no type")))?;
    let scopes = parse_scope(m.get("scope"))?;
    let attrs = parse_attributes(m, ctx, now, prov)?;
    Ok(Entity {
        id,
        types,
        scopes,
        attrs,
        created_at: Some(now),
        modified_at: Some(now),
        dataset: prov.dataset.clone(),
    })
}

/// Parses the `type` member of an entity into expanded type IRIs.
pub fn parse_types_member(v: Option<&Value>, ctx: &Context) -> Result<Option<Vec<String>>> {
    let raw: Vec<&str> = match v {
        None => return Ok(None),
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) if !a.is_empty() => a
            .iter()
            .map(|t| {
                t.as_str()
                    .ok_or_else(|| NgsiError::bad_data("entity types must be strings"))
            })
            .collect::<Result<_>>()?,
        Some(_) => {
            return Err(NgsiError::bad_data(
                "entity type must be a string or a non-empty array of strings",
            ))
        }
    };
    let mut out = Vec::with_capacity(raw.len());
    for t in raw {
        check_name(t, "entity type")?;
        let e = ctx.expand(t);
        if !out.contains(&e) {
            out.push(e);
        }
    }
    Ok(Some(out))
}

/// Parses the `scope` member.
pub fn parse_scope(v: Option<&Value>) -> Result<Vec<String>> {
    let list: Vec<&Value> = match v {
        None => return Ok(Vec::new()),
        Some(Value::Array(a)) => a.iter().collect(),
        Some(other) => vec![other],
    };
    list.into_iter()
        .map(|s| match s.as_str() {
            Some(s)
                if s.starts_with('/')
                    && !s.contains(['#', '+', ' ', ';', '|'])
                    && !s.ends_with('/')
                    || s == "/" =>
            {
                Ok(s.to_string())
            }
            _ => Err(NgsiError::bad_data(format!(
                "invalid scope {s}: scopes look like /Madrid/Gardens"
            ))),
        })
        .collect()
}

/// Parses every attribute member of an entity or fragment object (skipping id, type, scope, @context and system
/// members). Names are expanded.
pub fn parse_attributes(
    m: &Map<String, Value>,
    ctx: &Context,
    now: DateTime<Utc>,
    prov: &Provenance,
) -> Result<BTreeMap<String, Vec<Attribute>>> {
    let mut attrs = BTreeMap::new();
    for (k, v) in m {
        if matches!(
            k.as_str(),
            "id" | "@id"
                | "type"
                | "@type"
                | "scope"
                | "@context"
                | "createdAt"
                | "modifiedAt"
                | "deletedAt"
        ) {
            continue;
        }
        check_name(k, "attribute")?;
        let name = ctx.expand(k);
        let instances = parse_attribute(k, v, ctx, now, prov)?;
        attrs.insert(name, instances);
    }
    Ok(attrs)
}

/// Parses one attribute member (an object, a concise value, or an array of instances with distinct datasetIds).
pub fn parse_attribute(
    name: &str,
    v: &Value,
    ctx: &Context,
    now: DateTime<Utc>,
    prov: &Provenance,
) -> Result<Vec<Attribute>> {
    let is_geo = is_geoproperty_name(name);
    let instances: Vec<Attribute> = match v {
        Value::Array(items)
            if items
                .iter()
                .all(|i| i.as_object().is_some_and(looks_like_attribute_object))
                && !items.is_empty() =>
        {
            items
                .iter()
                .map(|i| parse_instance(name, i, ctx, now, prov, is_geo, 0))
                .collect::<Result<_>>()?
        }
        other => vec![parse_instance(name, other, ctx, now, prov, is_geo, 0)?],
    };
    let mut seen = HashSet::new();
    for a in &instances {
        if !seen.insert(a.dataset_id.clone()) {
            return Err(NgsiError::bad_data(format!(
                "attribute {name} has two instances with the same datasetId {}",
                a.dataset_id.as_deref().unwrap_or("(default)")
            )));
        }
    }
    Ok(instances)
}

fn is_geoproperty_name(name: &str) -> bool {
    matches!(name, "location" | "observationSpace" | "operationSpace")
        || name == iri::LOCATION
        || name == iri::OBSERVATION_SPACE
        || name == iri::OPERATION_SPACE
}

fn looks_like_attribute_object(m: &Map<String, Value>) -> bool {
    m.contains_key("type")
        && AttrKind::parse(m.get("type").and_then(Value::as_str).unwrap_or("")).is_some()
        || m.contains_key("value")
        || m.contains_key("object")
        || m.contains_key("languageMap")
        || m.contains_key("vocab")
        || m.contains_key("json")
        || m.contains_key("valueList")
        || m.contains_key("objectList")
}

fn is_geojson_geometry(m: &Map<String, Value>) -> bool {
    matches!(
        m.get("type").and_then(Value::as_str),
        Some(
            "Point"
                | "MultiPoint"
                | "LineString"
                | "MultiLineString"
                | "Polygon"
                | "MultiPolygon"
                | "GeometryCollection"
        )
    ) && (m.contains_key("coordinates") || m.contains_key("geometries"))
}

const MAX_SUB_DEPTH: usize = 8;

fn parse_instance(
    name: &str,
    v: &Value,
    ctx: &Context,
    now: DateTime<Utc>,
    prov: &Provenance,
    is_geo: bool,
    depth: usize,
) -> Result<Attribute> {
    if depth > MAX_SUB_DEPTH {
        return Err(NgsiError::bad_data(format!(
            "sub-attributes of {name} nested deeper than {MAX_SUB_DEPTH} levels"
        )));
    }
    let m = match v {
        Value::Object(m) if is_geojson_geometry(m) => {
            // concise GeoProperty
            geometry_from_geojson(v)
                .map_err(|e| NgsiError::bad_data(format!("attribute {name}: {}", e.0)))?;
            let mut a = Attribute::new(AttrKind::GeoProperty, v.clone());
            stamp(&mut a, now, prov);
            return Ok(a);
        }
        Value::Object(m) => m,
        Value::Null => return Err(NgsiError::bad_data(format!("attribute {name} is null"))),
        other => {
            // concise Property
            let mut a = Attribute::property(other.clone());
            stamp(&mut a, now, prov);
            return Ok(a);
        }
    };
    let declared = match m.get("type") {
        Some(Value::String(t)) => Some(AttrKind::parse(t).ok_or_else(|| {
            NgsiError::bad_data(format!(
                "attribute {name} has type {t:?}; expected Property, Relationship, GeoProperty, LanguageProperty, \
                 VocabProperty, JsonProperty, ListProperty or ListRelationship"
            ))
        })?),
        Some(other) => return Err(NgsiError::bad_data(format!("type of attribute {name} must be a string, got {other}"))),
        None => None,
    };
    let kind = match declared {
        Some(k) => k,
        None => {
            if m.contains_key("object") {
                AttrKind::Relationship
            } else if m.contains_key("languageMap") {
                AttrKind::LanguageProperty
            } else if m.contains_key("vocab") {
                AttrKind::VocabProperty
            } else if m.contains_key("json") {
                AttrKind::JsonProperty
            } else if m.contains_key("valueList") {
                AttrKind::ListProperty
            } else if m.contains_key("objectList") {
                AttrKind::ListRelationship
            } else if m.contains_key("value") {
                let geo = m
                    .get("value")
                    .and_then(Value::as_object)
                    .is_some_and(is_geojson_geometry);
                if geo && is_geo {
                    AttrKind::GeoProperty
                } else {
                    AttrKind::Property
                }
            } else {
                // concise Property whose value is a JSON object
                let mut a = Attribute::property(v.clone());
                stamp(&mut a, now, prov);
                return Ok(a);
            }
        }
    };
    let member = kind.value_member();
    let raw = m.get(member).filter(|v| !v.is_null()).ok_or_else(|| {
        NgsiError::bad_data(format!(
            "attribute {name} of type {} has no {member} member",
            kind.as_str()
        ))
    })?;
    let value = match kind {
        AttrKind::Property => raw.clone(),
        AttrKind::GeoProperty => {
            geometry_from_geojson(raw)
                .map_err(|e| NgsiError::bad_data(format!("attribute {name}: {}", e.0)))?;
            raw.clone()
        }
        AttrKind::Relationship => {
            check_objects(name, raw)?;
            raw.clone()
        }
        AttrKind::ListRelationship => {
            let items = raw.as_array().ok_or_else(|| {
                NgsiError::bad_data(format!("objectList of {name} must be an array"))
            })?;
            let mut out = Vec::new();
            for i in items {
                let obj = i.get("object").unwrap_or(i);
                check_objects(name, obj)?;
                out.push(obj.clone());
            }
            Value::Array(out)
        }
        AttrKind::LanguageProperty => {
            let lm = raw.as_object().ok_or_else(|| {
                NgsiError::bad_data(format!("languageMap of {name} must be an object"))
            })?;
            for (lang, text) in lm {
                if !(lang == "@none" || is_language_tag(lang)) {
                    return Err(NgsiError::bad_data(format!(
                        "{lang:?} in the languageMap of {name} is not a language tag"
                    )));
                }
                if !(text.is_string()
                    || text
                        .as_array()
                        .is_some_and(|a| a.iter().all(Value::is_string)))
                {
                    return Err(NgsiError::bad_data(format!(
                        "languageMap values of {name} must be strings"
                    )));
                }
            }
            raw.clone()
        }
        AttrKind::VocabProperty => expand_vocab(name, raw, ctx)?,
        AttrKind::JsonProperty => raw.clone(),
        AttrKind::ListProperty => {
            if !raw.is_array() {
                return Err(NgsiError::bad_data(format!(
                    "valueList of {name} must be an array"
                )));
            }
            raw.clone()
        }
    };
    let mut a = Attribute::new(kind, value);
    if let Some(d) = m.get("observedAt") {
        a.observed_at = Some(datetime_member(d, "observedAt", name)?);
    }
    if let Some(u) = m.get("unitCode") {
        a.unit_code = Some(
            u.as_str()
                .ok_or_else(|| NgsiError::bad_data(format!("unitCode of {name} must be a string")))?
                .to_string(),
        );
    }
    if let Some(d) = m.get("datasetId") {
        match d.as_str() {
            Some(s) if is_uri(s) => a.dataset_id = Some(s.to_string()),
            _ => {
                return Err(NgsiError::bad_data(format!(
                    "datasetId of {name} must be a URI, got {d}"
                )))
            }
        }
    }
    if let Some(t) = m.get("objectType") {
        a.object_type = Some(expand_vocab(name, t, ctx)?);
    }
    for (k, sv) in m {
        if ATTR_MEMBERS.contains(&k.as_str()) {
            continue;
        }
        check_name(k, "sub-attribute")?;
        let sub = parse_instance(k, sv, ctx, now, prov, is_geoproperty_name(k), depth + 1)?;
        a.sub.insert(ctx.expand(k), sub);
    }
    stamp(&mut a, now, prov);
    Ok(a)
}

fn stamp(a: &mut Attribute, now: DateTime<Utc>, prov: &Provenance) {
    a.created_at = Some(now);
    a.modified_at = Some(now);
    a.provenance = prov.clone();
}

fn is_language_tag(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 35
        && s.split('-')
            .all(|p| !p.is_empty() && p.len() <= 8 && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

fn check_objects(name: &str, v: &Value) -> Result<()> {
    let ok = match v {
        Value::String(s) => is_uri(s),
        Value::Array(a) => !a.is_empty() && a.iter().all(|i| i.as_str().is_some_and(is_uri)),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(NgsiError::bad_data(format!(
            "object of relationship {name} must be a URI or an array of URIs, got {v}"
        )))
    }
}

fn expand_vocab(name: &str, v: &Value, ctx: &Context) -> Result<Value> {
    match v {
        Value::String(s) => Ok(Value::String(ctx.expand(s))),
        Value::Array(a) => Ok(Value::Array(
            a.iter()
                .map(|i| match i {
                    Value::String(s) => Ok(Value::String(ctx.expand(s))),
                    _ => Err(NgsiError::bad_data(format!(
                        "vocab of {name} must hold strings"
                    ))),
                })
                .collect::<Result<_>>()?,
        )),
        _ => Err(NgsiError::bad_data(format!(
            "vocab of {name} must be a string or an array of strings"
        ))),
    }
}

fn compact_vocab(v: &Value, ctx: &Context) -> Value {
    match v {
        Value::String(s) => Value::String(ctx.compact(s)),
        Value::Array(a) => Value::Array(a.iter().map(|i| compact_vocab(i, ctx)).collect()),
        other => other.clone(),
    }
}

/// The representation asked for by `options` / `format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Normalized,
    Concise,
    KeyValues,
}

/// How to render entities.
#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    pub format: Format,
    pub sys_attrs: bool,
    /// `lang`: render LanguageProperties as Properties in this language (`*` = all, as languageMap).
    pub lang: Option<String>,
    /// Expanded attribute names to keep (None = all).
    pub attrs: Option<HashSet<String>>,
    /// Expanded attribute names to leave out (`omit`).
    pub omit: Option<HashSet<String>>,
    /// Whether to render `id` / `type` / `scope` (`pick`/`omit` may drop them).
    pub omit_id: bool,
    pub omit_type: bool,
    /// Include the provenance of every attribute instance (urbantwin extension, `options=provenance`).
    pub provenance: bool,
}

/// Renders an entity with compacted names.
pub fn render_entity(e: &Entity, ctx: &Context, o: &RenderOptions) -> Value {
    let mut m = Map::new();
    if !o.omit_id {
        m.insert("id".into(), Value::String(e.id.clone()));
    }
    if !o.omit_type {
        m.insert("type".into(), render_types(&e.types, ctx));
    }
    if !e.scopes.is_empty() && o.attrs.as_ref().is_none_or(|a| a.contains("scope")) {
        m.insert("scope".into(), scopes_value(&e.scopes));
    }
    for (name, instances) in &e.attrs {
        if let Some(keep) = &o.attrs {
            if !keep.contains(name) {
                continue;
            }
        }
        if o.omit.as_ref().is_some_and(|d| d.contains(name)) {
            continue;
        }
        let key = ctx.compact(name);
        let rendered: Vec<Value> = instances
            .iter()
            .map(|a| render_attribute(a, ctx, o))
            .collect();
        let v = if o.format == Format::KeyValues {
            // keyValues: the default instance (or the first), no metadata
            let idx = instances
                .iter()
                .position(|a| a.dataset_id.is_none())
                .unwrap_or(0);
            rendered.into_iter().nth(idx).unwrap_or(Value::Null)
        } else if rendered.len() == 1 {
            rendered.into_iter().next().unwrap_or(Value::Null)
        } else {
            Value::Array(rendered)
        };
        m.insert(key, v);
    }
    if o.sys_attrs && o.format != Format::KeyValues {
        if let Some(t) = e.created_at {
            m.insert("createdAt".into(), Value::String(format_datetime(&t)));
        }
        if let Some(t) = e.modified_at {
            m.insert("modifiedAt".into(), Value::String(format_datetime(&t)));
        }
    }
    Value::Object(m)
}

/// Compacted entity type(s): a string for one type, an array for several.
pub fn render_types(types: &[String], ctx: &Context) -> Value {
    if types.len() == 1 {
        Value::String(ctx.compact(&types[0]))
    } else {
        Value::Array(
            types
                .iter()
                .map(|t| Value::String(ctx.compact(t)))
                .collect(),
        )
    }
}

fn scopes_value(scopes: &[String]) -> Value {
    if scopes.len() == 1 {
        Value::String(scopes[0].clone())
    } else {
        Value::Array(scopes.iter().map(|s| Value::String(s.clone())).collect())
    }
}

fn language_pick(map: &Value, lang: &str) -> Option<(String, Value)> {
    let m = map.as_object()?;
    if let Some(v) = m.get(lang) {
        return Some((lang.to_string(), v.clone()));
    }
    // a requested "en" matches "en-GB" and vice versa by primary subtag
    let primary = lang.split('-').next().unwrap_or(lang);
    if let Some((k, v)) = m.iter().find(|(k, _)| k.split('-').next() == Some(primary)) {
        return Some((k.clone(), v.clone()));
    }
    if let Some(v) = m.get("@none") {
        return Some(("@none".into(), v.clone()));
    }
    m.iter().next().map(|(k, v)| (k.clone(), v.clone()))
}

/// Renders one attribute instance.
pub fn render_attribute(a: &Attribute, ctx: &Context, o: &RenderOptions) -> Value {
    let lang_pick = match (&o.lang, a.kind) {
        (Some(l), AttrKind::LanguageProperty) if l != "*" => language_pick(&a.value, l),
        _ => None,
    };
    let value = match a.kind {
        AttrKind::VocabProperty => compact_vocab(&a.value, ctx),
        AttrKind::ListRelationship if o.format == Format::Normalized => Value::Array(
            a.value
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .map(|i| serde_json::json!({"object": i}))
                        .collect()
                })
                .unwrap_or_default(),
        ),
        _ => a.value.clone(),
    };
    if o.format == Format::KeyValues {
        return match (a.kind, lang_pick) {
            (AttrKind::LanguageProperty, Some((_, v))) => v,
            (AttrKind::LanguageProperty, None) => serde_json::json!({"languageMap": value}),
            (AttrKind::VocabProperty, _) => serde_json::json!({"vocab": value}),
            (AttrKind::JsonProperty, _) => serde_json::json!({"json": value}),
            (AttrKind::ListRelationship, _) => serde_json::json!({"objectList": value}),
            _ => value,
        };
    }
    let mut m = Map::new();
    let (kind, member, value) = match lang_pick {
        Some((lang, v)) => {
            m.insert("type".into(), "Property".into());
            m.insert("value".into(), v);
            m.insert("lang".into(), Value::String(lang));
            (AttrKind::Property, "", Value::Null)
        }
        None => (a.kind, a.kind.value_member(), value),
    };
    if !member.is_empty() {
        let has_meta = a.observed_at.is_some()
            || a.unit_code.is_some()
            || a.dataset_id.is_some()
            || !a.sub.is_empty()
            || o.sys_attrs
            || o.provenance;
        if o.format == Format::Concise
            && kind == AttrKind::Property
            && !has_meta
            && !value.is_object()
        {
            return value;
        }
        if o.format == Format::Normalized {
            m.insert("type".into(), Value::String(kind.as_str().into()));
        }
        m.insert(member.into(), value);
    }
    if let Some(t) = &a.object_type {
        m.insert("objectType".into(), compact_vocab(t, ctx));
    }
    if let Some(t) = a.observed_at {
        m.insert("observedAt".into(), Value::String(format_datetime(&t)));
    }
    if let Some(u) = &a.unit_code {
        m.insert("unitCode".into(), Value::String(u.clone()));
    }
    if let Some(d) = &a.dataset_id {
        m.insert("datasetId".into(), Value::String(d.clone()));
    }
    if let Some(i) = &a.instance_id {
        m.insert("instanceId".into(), Value::String(i.clone()));
    }
    if o.sys_attrs {
        if let Some(t) = a.created_at {
            m.insert("createdAt".into(), Value::String(format_datetime(&t)));
        }
        if let Some(t) = a.modified_at {
            m.insert("modifiedAt".into(), Value::String(format_datetime(&t)));
        }
    }
    if o.provenance && !a.provenance.is_empty() {
        if let Ok(p) = serde_json::to_value(&a.provenance) {
            m.insert("provenance".into(), p);
        }
    }
    let sub_opts = RenderOptions {
        attrs: None,
        omit: None,
        ..o.clone()
    };
    for (k, s) in &a.sub {
        m.insert(ctx.compact(k), render_attribute(s, ctx, &sub_opts));
    }
    Value::Object(m)
}

/// Renders an entity as a GeoJSON Feature (`Accept: application/geo+json`); `geoproperty` is expanded.
pub fn render_feature(e: &Entity, ctx: &Context, o: &RenderOptions, geoproperty: &str) -> Value {
    let geometry = e
        .geometries(geoproperty)
        .next()
        .cloned()
        .unwrap_or(Value::Null);
    let mut props = render_entity(e, ctx, o);
    if let Value::Object(p) = &mut props {
        p.remove("id");
    }
    serde_json::json!({"id": e.id, "type": "Feature", "geometry": geometry, "properties": props})
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        parse_datetime("2024-05-01T10:00:00Z").unwrap()
    }

    #[test]
    fn normalized_round_trip() {
        let ctx = Context::core();
        let doc = json!({
            "id": "urn:ngsi-ld:Vehicle:A1",
            "type": "Vehicle",
            "speed": [{"type": "Property", "value": 80, "observedAt": "2024-05-01T09:00:00Z", "unitCode": "KMH"},
                      {"type": "Property", "value": 82, "datasetId": "urn:ngsi-ld:Dataset:gps"}],
            "owner": {"type": "Relationship", "object": "urn:ngsi-ld:Person:1", "since": {"type": "Property", "value": 2020}},
            "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [24.94, 60.17]}},
            "name": {"type": "LanguageProperty", "languageMap": {"en": "Car", "fi": "Auto"}},
            "category": {"type": "VocabProperty", "vocab": "sedan"}
        });
        let e = parse_entity(&doc, &ctx, now(), &Provenance::default()).unwrap();
        assert_eq!(
            e.types,
            vec!["https://uri.etsi.org/ngsi-ld/default-context/Vehicle"]
        );
        assert_eq!(
            e.attrs["https://uri.etsi.org/ngsi-ld/default-context/speed"].len(),
            2
        );
        assert_eq!(e.attrs[iri::LOCATION][0].kind, AttrKind::GeoProperty);
        let out = render_entity(&e, &ctx, &RenderOptions::default());
        assert_eq!(out["speed"][0]["value"], 80);
        assert_eq!(out["speed"][0]["observedAt"], "2024-05-01T09:00:00.000Z");
        assert_eq!(out["owner"]["since"]["value"], 2020);
        assert_eq!(out["category"]["vocab"], "sedan");
        let kv = render_entity(
            &e,
            &ctx,
            &RenderOptions {
                format: Format::KeyValues,
                ..Default::default()
            },
        );
        assert_eq!(kv["speed"], 80);
        assert_eq!(kv["owner"], "urn:ngsi-ld:Person:1");
        let fi = render_entity(
            &e,
            &ctx,
            &RenderOptions {
                lang: Some("fi".into()),
                ..Default::default()
            },
        );
        assert_eq!(
            fi["name"],
            json!({"type": "Property", "value": "Auto", "lang": "fi"})
        );
    }

    #[test]
    fn concise_input_and_output() {
        let ctx = Context::core();
        let doc = json!({"id": "urn:x:1", "type": "T", "temp": 21.5, "address": {"city": "Ghent"},
                         "refRoad": {"object": "urn:x:road"}, "location": {"type": "Point", "coordinates": [3.7, 51.05]}});
        let e = parse_entity(&doc, &ctx, now(), &Provenance::default()).unwrap();
        let temp = &e.attrs["https://uri.etsi.org/ngsi-ld/default-context/temp"][0];
        assert_eq!((temp.kind, &temp.value), (AttrKind::Property, &json!(21.5)));
        assert_eq!(
            e.attrs["https://uri.etsi.org/ngsi-ld/default-context/address"][0].value,
            json!({"city": "Ghent"})
        );
        assert_eq!(
            e.attrs["https://uri.etsi.org/ngsi-ld/default-context/refRoad"][0].kind,
            AttrKind::Relationship
        );
        assert_eq!(e.attrs[iri::LOCATION][0].kind, AttrKind::GeoProperty);
        let c = render_entity(
            &e,
            &ctx,
            &RenderOptions {
                format: Format::Concise,
                ..Default::default()
            },
        );
        assert_eq!(c["temp"], 21.5);
        assert_eq!(c["address"], json!({"value": {"city": "Ghent"}}));
        assert_eq!(c["refRoad"], json!({"object": "urn:x:road"}));
        // concise output parses back to the same entity
        let back = parse_entity(&c, &ctx, now(), &Provenance::default()).unwrap();
        assert_eq!(back.attrs, e.attrs);
    }

    #[test]
    fn invalid_payloads_are_rejected_with_reasons() {
        let ctx = Context::core();
        let bad = [
            (json!({"type": "T"}), "no id"),
            (json!({"id": "not a uri", "type": "T"}), "not a URI"),
            (json!({"id": "urn:x:1"}), "no type"),
            (
                json!({"id": "urn:x:1", "type": "T", "a": {"type": "Property"}}),
                "no value",
            ),
            (
                json!({"id": "urn:x:1", "type": "T", "a": {"type": "Banana", "value": 1}}),
                "Banana",
            ),
            (
                json!({"id": "urn:x:1", "type": "T", "r": {"type": "Relationship", "object": 3}}),
                "URI",
            ),
            (
                json!({"id": "urn:x:1", "type": "T", "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [200, 0]}}}),
                "location",
            ),
            (json!({"id": "urn:x:1", "type": "T", "a=b": 1}), "forbidden"),
            (
                json!({"id": "urn:x:1", "type": "T", "a": {"type": "Property", "value": 1, "observedAt": "yesterday"}}),
                "observedAt",
            ),
            (
                json!({"id": "urn:x:1", "type": "T", "a": [{"type": "Property", "value": 1}, {"type": "Property", "value": 2}]}),
                "same datasetId",
            ),
        ];
        for (doc, expect) in bad {
            let err = parse_entity(&doc, &ctx, now(), &Provenance::default()).unwrap_err();
            assert!(err.detail.contains(expect), "{doc}: {err}");
        }
    }

    #[test]
    fn geojson_feature() {
        let ctx = Context::core();
        let doc = json!({"id": "urn:x:1", "type": "T", "location": {"type": "Point", "coordinates": [3.7, 51.05]}, "n": 1});
        let e = parse_entity(&doc, &ctx, now(), &Provenance::default()).unwrap();
        let f = render_feature(&e, &ctx, &RenderOptions::default(), iri::LOCATION);
        assert_eq!(f["geometry"]["type"], "Point");
        assert_eq!(f["properties"]["n"]["value"], 1);
    }
}
