//! Turning one MQTT message into entity updates, as pure functions: topic filters and their captures, id
//! templates, JSON paths, timestamps and unit conversion, for NGSI-LD, mapped JSON and CSV payloads.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde_json::{json, Map, Value};
use twin_model::context::Context;
use twin_model::entity::AttrKind;
use twin_model::{Attribute, Provenance};

use crate::config::{AttrMapping, Format, TopicConfig};

/// The new values for one entity that a message carries: its expanded types and attributes (system times unset).
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    pub id: String,
    pub types: Vec<String>,
    pub attrs: BTreeMap<String, Vec<Attribute>>,
    /// The dataset a new entity joins (the topic's).
    pub dataset: Option<String>,
}

/// Why a message could not be mapped.
#[derive(Debug, Clone, PartialEq)]
pub enum MapError {
    /// The message is wrong (it goes to the dead-letter table with this reason).
    Refused(String),
    /// The payload names a JSON-LD context the mapper does not have yet; the caller fetches it and tries again.
    NeedContext(String),
}

impl MapError {
    fn refused(m: impl Into<String>) -> MapError {
        MapError::Refused(m.into())
    }
}

/// One level of a topic filter.
#[derive(Debug, Clone, PartialEq)]
enum Level {
    Exact(String),
    Plus,
    Hash,
}

/// A parsed MQTT topic filter.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicFilter {
    levels: Vec<Level>,
}

/// What a filter's wildcards matched in a topic.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Captures {
    /// One per `+`, in order.
    pub plus: Vec<String>,
    /// What `#` matched (levels joined by `/`), if the filter has one.
    pub hash: Option<String>,
}

impl TopicFilter {
    pub fn parse(filter: &str) -> Result<TopicFilter, String> {
        if filter.is_empty() {
            return Err("the topic filter is empty".into());
        }
        let parts: Vec<&str> = filter.split('/').collect();
        let mut levels = Vec::with_capacity(parts.len());
        for (i, p) in parts.iter().enumerate() {
            levels.push(match *p {
                "+" => Level::Plus,
                "#" if i + 1 == parts.len() => Level::Hash,
                "#" => return Err("# must be the last level of a topic filter".into()),
                p if p.contains(['+', '#']) => {
                    return Err(format!("{p:?}: wildcards must fill a whole level"))
                }
                p => Level::Exact(p.to_string()),
            });
        }
        Ok(TopicFilter { levels })
    }

    /// The captures when `topic` matches (MQTT rules: `+` one level, `#` zero or more trailing levels, and topics
    /// starting with `$` are not matched by a leading wildcard).
    pub fn matches(&self, topic: &str) -> Option<Captures> {
        if topic.starts_with('$') && !matches!(self.levels.first(), Some(Level::Exact(_))) {
            return None;
        }
        let parts: Vec<&str> = topic.split('/').collect();
        let mut caps = Captures::default();
        for (i, l) in self.levels.iter().enumerate() {
            match l {
                Level::Hash => {
                    caps.hash = Some(parts.get(i..).map(|r| r.join("/")).unwrap_or_default());
                    return Some(caps);
                }
                Level::Plus => caps.plus.push(parts.get(i)?.to_string()),
                Level::Exact(e) => {
                    if parts.get(i) != Some(&e.as_str()) {
                        return None;
                    }
                }
            }
        }
        (parts.len() == self.levels.len()).then_some(caps)
    }
}

/// Converts a number between two UN/CEFACT unit codes, for the pairs sensors commonly send; None for others.
pub fn convert(from: &str, to: &str, x: f64) -> Option<f64> {
    if from == to {
        return Some(x);
    }
    Some(match (from, to) {
        ("FAH", "CEL") => (x - 32.0) * 5.0 / 9.0,
        ("CEL", "FAH") => x * 9.0 / 5.0 + 32.0,
        ("KEL", "CEL") => x - 273.15,
        ("CEL", "KEL") => x + 273.15,
        ("MTS", "KMH") => x * 3.6,
        ("KMH", "MTS") => x / 3.6,
        ("HM", "KMH") => x * 1.609_344,
        ("KMH", "HM") => x / 1.609_344,
        ("KNT", "KMH") => x * 1.852,
        ("KNT", "MTS") => x * 1852.0 / 3600.0,
        ("WHR", "KWH") => x / 1000.0,
        ("KWH", "WHR") => x * 1000.0,
        ("KWT", "WTT") => x * 1000.0,
        ("WTT", "KWT") => x / 1000.0,
        ("GP", "GQ") => x * 1000.0,
        ("GQ", "GP") => x / 1000.0,
        ("PAL", "A97") => x / 100.0,
        ("A97", "PAL") => x * 100.0,
        ("MBR", "A97") | ("A97", "MBR") => x,
        _ => return None,
    })
}

/// Looks a value up by a JSON pointer (`/a/0/b`) or a dotted path (`$.a[0].b`, `a.b`).
pub fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    if path.starts_with('/') || path.is_empty() {
        return v.pointer(path);
    }
    let path = path.strip_prefix('$').unwrap_or(path);
    let path = path.strip_prefix('.').unwrap_or(path);
    let mut cur = v;
    for seg in path.split('.').filter(|s| !s.is_empty()) {
        let (key, mut rest) = match seg.find('[') {
            Some(i) => (&seg[..i], &seg[i..]),
            None => (seg, ""),
        };
        if !key.is_empty() {
            cur = cur.get(key)?;
        }
        while let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            cur = cur.get(r[..end].parse::<usize>().ok()?)?;
            rest = &r[end + 1..];
        }
    }
    Some(cur)
}

/// A time from a JSON value: RFC 3339 (or `YYYY-MM-DD HH:MM:SS`, taken as UTC) strings, Unix seconds, or Unix
/// milliseconds when the number is above 10^11 (so after 1973 in milliseconds, before 5138 in seconds).
pub fn parse_time(v: &Value) -> Option<DateTime<Utc>> {
    match v {
        Value::Number(n) => {
            let x = n.as_f64()?;
            if !x.is_finite() {
                return None;
            }
            let ms = if x.abs() > 1e11 { x } else { x * 1000.0 };
            Utc.timestamp_millis_opt(ms.round() as i64).single()
        }
        Value::String(s) => {
            if let Ok(t) = DateTime::parse_from_rfc3339(s) {
                return Some(t.with_timezone(&Utc));
            }
            for f in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
                if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
                    return Some(t.and_utc());
                }
            }
            s.trim()
                .parse::<f64>()
                .ok()
                .and_then(|x| parse_time(&json!(x)))
        }
        _ => None,
    }
}

/// Fills an id template (see [`TopicConfig::id`]).
pub fn render_template(
    tpl: &str,
    topic: &str,
    caps: &Captures,
    payload: &Value,
) -> Result<String, String> {
    let mut out = String::with_capacity(tpl.len() + 16);
    let mut rest = tpl;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let end = rest[i..]
            .find('}')
            .ok_or_else(|| format!("unclosed {{ in template {tpl:?}"))?;
        let key = &rest[i + 1..i + end];
        let piece = if key == "topic" {
            topic.to_string()
        } else if key == "#" {
            caps.hash
                .clone()
                .ok_or_else(|| format!("template {tpl:?} uses {{#}} but the filter has no #"))?
        } else if let Ok(n) = key.parse::<usize>() {
            caps.plus
                .get(n.wrapping_sub(1))
                .cloned()
                .ok_or_else(|| format!("template {tpl:?}: the filter has no wildcard {{{n}}}"))?
        } else {
            match lookup(payload, key) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => return Err(format!("the payload has no text or number at {key}")),
            }
        };
        out.push_str(&piece);
        rest = &rest[i + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Maps one message of a topic to updates. `ctx` is the topic's context; `resolve` returns the document of a
/// JSON-LD context URL the mapper already holds.
pub fn map_message(
    t: &TopicConfig,
    topic: &str,
    caps: &Captures,
    payload: &[u8],
    received_at: DateTime<Utc>,
    ctx: &Arc<Context>,
    resolve: &dyn Fn(&str) -> Option<Arc<Value>>,
) -> Result<Vec<Update>, MapError> {
    let text = std::str::from_utf8(payload)
        .map_err(|e| MapError::refused(format!("the payload is not UTF-8: {e}")))?;
    let prov = Provenance {
        dataset: t.dataset.clone(),
        source: Some(format!("mqtt:{topic}")),
        channel: Some("mqtt".into()),
    };
    match t.format {
        Format::NgsiLd => {
            let v: Value = serde_json::from_str(text)
                .map_err(|e| MapError::refused(format!("the payload is not JSON: {e}")))?;
            map_ngsi_ld(v, received_at, ctx, resolve, &prov)
        }
        Format::Json => {
            let v: Value = serde_json::from_str(text)
                .map_err(|e| MapError::refused(format!("the payload is not JSON: {e}")))?;
            Ok(vec![
                map_json(t, topic, caps, &v, received_at, ctx, &prov).map_err(MapError::Refused)?
            ])
        }
        Format::Csv => {
            let mut rdr = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .delimiter(t.separator.unwrap_or(',') as u8)
                .from_reader(text.as_bytes());
            let mut out = Vec::new();
            for (i, rec) in rdr.records().enumerate() {
                let rec = rec.map_err(|e| MapError::refused(format!("CSV line {}: {e}", i + 1)))?;
                if rec.iter().all(|f| f.trim().is_empty()) {
                    continue;
                }
                // a header line is skipped
                if rec
                    .iter()
                    .map(str::trim)
                    .eq(t.columns.iter().map(String::as_str))
                {
                    continue;
                }
                if rec.len() != t.columns.len() {
                    return Err(MapError::refused(format!(
                        "CSV line {} has {} fields, the topic's columns are {}",
                        i + 1,
                        rec.len(),
                        t.columns.len()
                    )));
                }
                let row: Map<String, Value> = t
                    .columns
                    .iter()
                    .zip(rec.iter())
                    .map(|(c, f)| (c.clone(), csv_value(f)))
                    .collect();
                let u = map_json(t, topic, caps, &Value::Object(row), received_at, ctx, &prov)
                    .map_err(|e| MapError::refused(format!("CSV line {}: {e}", i + 1)))?;
                out.push(u);
            }
            if out.is_empty() {
                return Err(MapError::refused("the payload has no CSV line"));
            }
            Ok(out)
        }
    }
}

/// The value a mapping names in a message: a CSV row's column by its name, else a JSON path or pointer.
fn field<'a>(t: &TopicConfig, v: &'a Value, source: &str) -> Option<&'a Value> {
    match t.format {
        Format::Csv => v.get(source),
        _ => lookup(v, source),
    }
}

fn csv_value(f: &str) -> Value {
    let f = f.trim();
    if f.is_empty() {
        return Value::Null;
    }
    if let Ok(n) = f.parse::<i64>() {
        return Value::from(n);
    }
    if let Ok(n) = f.parse::<f64>() {
        if let Some(n) = serde_json::Number::from_f64(n) {
            return Value::Number(n);
        }
    }
    match f {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => Value::String(f.to_string()),
    }
}

fn map_ngsi_ld(
    v: Value,
    received_at: DateTime<Utc>,
    ctx: &Arc<Context>,
    resolve: &dyn Fn(&str) -> Option<Arc<Value>>,
    prov: &Provenance,
) -> Result<Vec<Update>, MapError> {
    // one entity, an array of them, or an NGSI-LD notification (so one broker can feed another)
    let items = match v {
        Value::Array(items) => items,
        Value::Object(mut m) if m.get("type") == Some(&json!("Notification")) => {
            match m.remove("data") {
                Some(Value::Array(items)) => items,
                _ => return Err(MapError::refused("the notification has no data array")),
            }
        }
        Value::Object(m) => vec![Value::Object(m)],
        _ => {
            return Err(MapError::refused(
                "an NGSI-LD payload is an entity or an array of them",
            ))
        }
    };
    if items.is_empty() {
        return Err(MapError::refused("the payload has no entity"));
    }
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let own;
        let c = match item.get("@context") {
            None => ctx,
            Some(uc) => {
                for url in Context::referenced_urls(uc) {
                    if resolve(&url).is_none() {
                        return Err(MapError::NeedContext(url));
                    }
                }
                own = Arc::new(Context::build(uc, resolve).map_err(|e| {
                    MapError::refused(format!("the @context cannot be used: {e:?}"))
                })?);
                &own
            }
        };
        let e = twin_model::ngsi::parse_entity(&item, c, received_at, prov)
            .map_err(|e| MapError::refused(e.detail))?;
        out.push(Update {
            id: e.id,
            types: e.types,
            attrs: e.attrs,
            dataset: prov.dataset.clone(),
        });
    }
    Ok(out)
}

fn map_json(
    t: &TopicConfig,
    topic: &str,
    caps: &Captures,
    v: &Value,
    received_at: DateTime<Utc>,
    ctx: &Context,
    prov: &Provenance,
) -> Result<Update, String> {
    let id = render_template(t.id.as_deref().unwrap_or_default(), topic, caps, v)?;
    if !twin_model::ngsi::is_uri(&id) || id.contains(char::is_whitespace) {
        return Err(format!("the entity id {id:?} is not a URI"));
    }
    let observed_at = match &t.observed_at {
        None => received_at,
        Some(p) => match field(t, v, p) {
            None | Some(Value::Null) => return Err(format!("no observation time at {p}")),
            Some(x) => parse_time(x).ok_or_else(|| format!("{x} at {p} is not a time"))?,
        },
    };
    let mut attrs = BTreeMap::new();
    for (name, m) in &t.attributes {
        match attribute(t, m, topic, caps, v)? {
            None if m.required => return Err(format!("the required {name} is missing")),
            None => {}
            Some((kind, value)) => {
                let mut a = Attribute::new(kind, value);
                a.observed_at = Some(observed_at);
                a.unit_code = m.unit.clone();
                a.dataset_id = m.dataset_id.clone();
                a.provenance = prov.clone();
                attrs.insert(ctx.expand(name), vec![a]);
            }
        }
    }
    if attrs.is_empty() {
        return Err("none of the mapped attributes is in the message".into());
    }
    Ok(Update {
        id,
        types: vec![ctx.expand(t.type_name.as_deref().unwrap_or_default())],
        attrs,
        dataset: prov.dataset.clone(),
    })
}

/// The kind and value of one mapped attribute (None when the message does not carry it).
fn attribute(
    t: &TopicConfig,
    m: &AttrMapping,
    topic: &str,
    caps: &Captures,
    v: &Value,
) -> Result<Option<(AttrKind, Value)>, String> {
    let at = |p: &str| field(t, v, p).filter(|x| !x.is_null());
    if let (Some(lon), Some(lat)) = (&m.lon, &m.lat) {
        let (Some(x), Some(y)) = (at(lon), at(lat)) else {
            return Ok(None);
        };
        let (Some(x), Some(y)) = (x.as_f64(), y.as_f64()) else {
            return Err(format!("{lon} and {lat} must be numbers"));
        };
        if !(-180.0..=180.0).contains(&x) || !(-90.0..=90.0).contains(&y) {
            return Err(format!("({x}, {y}) is not a longitude and latitude"));
        }
        return Ok(Some((
            AttrKind::GeoProperty,
            json!({"type": "Point", "coordinates": [x, y]}),
        )));
    }
    let src = m
        .path
        .as_deref()
        .or(m.column.as_deref())
        .unwrap_or_default();
    let Some(raw) = at(src) else {
        return Ok(None);
    };
    if m.relationship {
        let target = match raw {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => return Err(format!("{other} at {src} cannot name an entity")),
        };
        let target = if target.contains(':') {
            target
        } else {
            render_template(&target, topic, caps, v)?
        };
        if !twin_model::ngsi::is_uri(&target) {
            return Err(format!("the relationship target {target:?} is not a URI"));
        }
        return Ok(Some((AttrKind::Relationship, Value::String(target))));
    }
    let converts = m.from.is_some() || m.scale.is_some() || m.offset.is_some();
    if !converts {
        return Ok(Some((AttrKind::Property, raw.clone())));
    }
    let x = match raw {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|x| x.is_finite())
    .ok_or_else(|| format!("{raw} at {src} is not a number"))?;
    let mut y = x * m.scale.unwrap_or(1.0) + m.offset.unwrap_or(0.0);
    if let (Some(from), Some(to)) = (&m.from, &m.unit) {
        y = convert(from, to, y).ok_or_else(|| format!("no conversion from {from} to {to}"))?;
    }
    let y = serde_json::Number::from_f64(y)
        .map(Value::Number)
        .ok_or_else(|| format!("{raw} at {src} converts to a value that is not a number"))?;
    Ok(Some((AttrKind::Property, y)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::IngestConfig;

    const V: &str = "https://uri.etsi.org/ngsi-ld/default-context/";

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap()
    }

    fn topic(toml_topic: &str) -> TopicConfig {
        let text = format!("[broker]\nurl = \"mqtt://127.0.0.1\"\n[[topic]]\n{toml_topic}");
        IngestConfig::parse(&text).unwrap().topics.remove(0)
    }

    fn map(t: &TopicConfig, topic: &str, payload: &str) -> Result<Vec<Update>, MapError> {
        let f = TopicFilter::parse(&t.filter).unwrap();
        let caps = f.matches(topic).expect("the filter matches");
        map_message(
            t,
            topic,
            &caps,
            payload.as_bytes(),
            t0(),
            &Context::core(),
            &|_| None,
        )
    }

    #[test]
    fn topic_filters_match_as_mqtt_says() {
        let f = TopicFilter::parse("city/+/air/#").unwrap();
        let c = f.matches("city/s1/air/no2/raw").unwrap();
        assert_eq!(c.plus, ["s1"]);
        assert_eq!(c.hash.as_deref(), Some("no2/raw"));
        // # also matches the parent level
        assert_eq!(f.matches("city/s1/air").unwrap().hash.as_deref(), Some(""));
        assert!(f.matches("city/s1/noise").is_none());
        assert!(f.matches("city/s1").is_none());
        let exact = TopicFilter::parse("a/b").unwrap();
        assert!(exact.matches("a/b").is_some());
        assert!(exact.matches("a/b/c").is_none());
        assert!(TopicFilter::parse("#")
            .unwrap()
            .matches("$SYS/broker")
            .is_none());
        assert!(TopicFilter::parse("a/#/b").is_err());
        assert!(TopicFilter::parse("a/b+").is_err());
        assert!(TopicFilter::parse("").is_err());
    }

    #[test]
    fn paths_times_templates_and_units() {
        let v = json!({"a": {"b": [10, {"c": "x"}]}, "t": 1_700_000_000});
        assert_eq!(lookup(&v, "$.a.b[1].c"), Some(&json!("x")));
        assert_eq!(lookup(&v, "a.b[0]"), Some(&json!(10)));
        assert_eq!(lookup(&v, "/a/b/0"), Some(&json!(10)));
        assert_eq!(lookup(&v, "$.a.z"), None);
        let s = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        assert_eq!(parse_time(&json!(1_700_000_000)), Some(s));
        assert_eq!(parse_time(&json!(1_700_000_000_000i64)), Some(s));
        assert_eq!(parse_time(&json!("2023-11-14T22:13:20Z")), Some(s));
        assert_eq!(parse_time(&json!("2023-11-14T23:13:20+01:00")), Some(s));
        assert_eq!(parse_time(&json!("2023-11-14 22:13:20")), Some(s));
        assert_eq!(parse_time(&json!("yesterday")), None);
        let caps = Captures {
            plus: vec!["s1".into()],
            hash: None,
        };
        assert_eq!(
            render_template("urn:ngsi-ld:X:{1}-{$.a.b[0]}", "t/s1", &caps, &v).unwrap(),
            "urn:ngsi-ld:X:s1-10"
        );
        assert!(render_template("urn:x:{2}", "t/s1", &caps, &v).is_err());
        assert!(render_template("urn:x:{#}", "t/s1", &caps, &v).is_err());
        assert!(render_template("urn:x:{1", "t/s1", &caps, &v).is_err());
        assert_eq!(convert("FAH", "CEL", 212.0), Some(100.0));
        assert_eq!(convert("MTS", "KMH", 10.0), Some(36.0));
        assert_eq!(convert("GP", "GQ", 0.04), Some(40.0));
        assert_eq!(convert("CEL", "KMH", 1.0), None);
    }

    #[test]
    fn json_messages_follow_their_mapping() {
        let t = topic(
            r#"filter = "sensors/+/air"
format = "json"
dataset = "urn:ngsi-ld:Dataset:air"
id = "urn:ngsi-ld:AirQualityObserved:{1}"
type = "AirQualityObserved"
observed_at = "$.ts"
[topic.attributes]
NO2 = { path = "$.no2", unit = "GQ", required = true }
temperature = { path = "$.temp_f", from = "FAH", unit = "CEL" }
location = { lon = "$.pos.lon", lat = "$.pos.lat" }
refDevice = { path = "$.device", relationship = true }"#,
        );
        let u = map(
            &t,
            "sensors/s7/air",
            r#"{"ts": "2026-05-01T10:00:00Z", "no2": 31.5, "temp_f": 50, "pos": {"lon": 24.94, "lat": 60.17}, "device": "urn:ngsi-ld:Device:d7"}"#,
        )
        .unwrap();
        assert_eq!(u.len(), 1);
        let u = &u[0];
        assert_eq!(u.id, "urn:ngsi-ld:AirQualityObserved:s7");
        assert_eq!(u.types, [format!("{V}AirQualityObserved")]);
        assert_eq!(u.dataset.as_deref(), Some("urn:ngsi-ld:Dataset:air"));
        let no2 = &u.attrs[&format!("{V}NO2")][0];
        assert_eq!(no2.value, json!(31.5));
        assert_eq!(no2.unit_code.as_deref(), Some("GQ"));
        assert_eq!(
            no2.observed_at,
            Some(Utc.with_ymd_and_hms(2026, 5, 1, 10, 0, 0).unwrap())
        );
        assert_eq!(no2.provenance.channel.as_deref(), Some("mqtt"));
        assert_eq!(
            no2.provenance.source.as_deref(),
            Some("mqtt:sensors/s7/air")
        );
        assert_eq!(u.attrs[&format!("{V}temperature")][0].value, json!(10.0));
        let loc = &u.attrs[twin_model::entity::iri::LOCATION][0];
        assert_eq!(loc.kind, AttrKind::GeoProperty);
        assert_eq!(loc.value["coordinates"], json!([24.94, 60.17]));
        assert_eq!(
            u.attrs[&format!("{V}refDevice")][0].kind,
            AttrKind::Relationship
        );
        // optional values may be missing; required ones may not
        let u = map(&t, "sensors/s7/air", r#"{"ts": 1777629600, "no2": 20}"#).unwrap();
        assert_eq!(u[0].attrs.len(), 1);
        let refused = |p: &str| match map(&t, "sensors/s7/air", p) {
            Err(MapError::Refused(r)) => r,
            other => panic!("{p} was not refused: {other:?}"),
        };
        assert!(refused(r#"{"ts": 1777629600, "temp_f": 50}"#).contains("required NO2"));
        assert!(refused(r#"{"no2": 20}"#).contains("observation time"));
        assert!(refused(r#"{"ts": "soon", "no2": 20}"#).contains("not a time"));
        assert!(refused(r#"{"ts": 1, "no2": 20, "temp_f": "warm"}"#).contains("not a number"));
        assert!(
            refused(r#"{"ts": 1, "no2": 20, "pos": {"lon": 200, "lat": 1}}"#).contains("longitude")
        );
        assert!(refused("{ts: 1").contains("not JSON"));
        let f = TopicFilter::parse(&t.filter).unwrap();
        let caps = f.matches("sensors/s7/air").unwrap();
        let bytes = [0xffu8, 0xfe];
        assert!(matches!(
            map_message(&t, "sensors/s7/air", &caps, &bytes, t0(), &Context::core(), &|_| None),
            Err(MapError::Refused(r)) if r.contains("UTF-8")
        ));
        // an id built from a topic level that is not URI material
        assert!(refused_on(&t, "sensors/a b/air", r#"{"ts": 1, "no2": 2}"#).contains("not a URI"));
    }

    fn refused_on(t: &TopicConfig, topic: &str, p: &str) -> String {
        match map(t, topic, p) {
            Err(MapError::Refused(r)) => r,
            other => panic!("{p} was not refused: {other:?}"),
        }
    }

    #[test]
    fn csv_lines_become_one_update_each() {
        let t = topic(
            r#"filter = "counters/+"
format = "csv"
id = "urn:ngsi-ld:TrafficFlowObserved:{1}-{/lane}"
type = "TrafficFlowObserved"
columns = ["time", "lane", "count", "speed_ms"]
observed_at = "time"
[topic.attributes]
intensity = { column = "count" }
averageVehicleSpeed = { column = "speed_ms", from = "MTS", unit = "KMH" }"#,
        );
        let u = map(
            &t,
            "counters/c1",
            "time,lane,count,speed_ms\n2026-05-01T10:00:00Z,1,42,10\n2026-05-01T10:00:00Z,2,17,\n",
        )
        .unwrap();
        assert_eq!(u.len(), 2);
        assert_eq!(u[0].id, "urn:ngsi-ld:TrafficFlowObserved:c1-1");
        assert_eq!(u[0].attrs[&format!("{V}intensity")][0].value, json!(42));
        assert_eq!(
            u[0].attrs[&format!("{V}averageVehicleSpeed")][0].value,
            json!(36.0)
        );
        assert_eq!(u[1].attrs.len(), 1, "an empty field is a missing value");
        assert!(
            matches!(map(&t, "counters/c1", "2026-05-01T10:00:00Z,1,42"),
            Err(MapError::Refused(r)) if r.contains("3 fields"))
        );
        assert!(matches!(
            map(&t, "counters/c1", "\n"),
            Err(MapError::Refused(_))
        ));
        // columns whose names JSON pointers would misread
        let t = topic(
            r#"filter = "m/+"
format = "csv"
id = "urn:ngsi-ld:Meter:{1}"
type = "Meter"
columns = ["kWh/day", "a~b"]
[topic.attributes]
daily = { column = "kWh/day" }
other = { column = "a~b" }"#,
        );
        let u = map(&t, "m/x", "12.5,7").unwrap();
        assert_eq!(u[0].attrs[&format!("{V}daily")][0].value, json!(12.5));
        assert_eq!(u[0].attrs[&format!("{V}other")][0].value, json!(7));
    }

    #[test]
    fn ngsi_ld_payloads_in_every_shape() {
        let t = topic("filter = \"ngsi/#\"\nformat = \"ngsi-ld\"");
        let normalized = r#"{"id": "urn:ngsi-ld:Device:d1", "type": "Device",
            "reading": {"type": "Property", "value": 3, "observedAt": "2026-05-01T10:00:00Z"}}"#;
        let u = map(&t, "ngsi/d1", normalized).unwrap();
        assert_eq!(u[0].attrs[&format!("{V}reading")][0].value, json!(3));
        let key_values = r#"[{"id": "urn:ngsi-ld:Device:d1", "type": "Device", "reading": 4},
                             {"id": "urn:ngsi-ld:Device:d2", "type": "Device", "reading": 5}]"#;
        let u = map(&t, "ngsi/batch", key_values).unwrap();
        assert_eq!(u.len(), 2);
        assert_eq!(u[1].attrs[&format!("{V}reading")][0].value, json!(5));
        let notification = format!(
            r#"{{"id": "urn:ngsi-ld:Notification:1", "type": "Notification", "subscriptionId": "urn:x:s",
                "notifiedAt": "2026-05-01T10:00:00Z", "data": [{normalized}]}}"#
        );
        assert_eq!(map(&t, "ngsi/n", &notification).unwrap().len(), 1);
        // a context the hub does not hold is asked for, then used
        let with_ctx = r#"{"@context": "https://example.org/ctx.jsonld", "id": "urn:ngsi-ld:Device:d1",
            "type": "Device", "level": 1}"#;
        assert_eq!(
            map(&t, "ngsi/d1", with_ctx),
            Err(MapError::NeedContext(
                "https://example.org/ctx.jsonld".into()
            ))
        );
        let doc = Arc::new(json!({"@context": {"level": "https://example.org/vocab#level"}}));
        let f = TopicFilter::parse(&t.filter).unwrap();
        let caps = f.matches("ngsi/d1").unwrap();
        let u = map_message(
            &t,
            "ngsi/d1",
            &caps,
            with_ctx.as_bytes(),
            t0(),
            &Context::core(),
            &|_| Some(doc.clone()),
        )
        .unwrap();
        assert!(u[0].attrs.contains_key("https://example.org/vocab#level"));
        for bad in [
            r#"{"type": "Device"}"#,
            "[]",
            "7",
            r#"{"type": "Notification"}"#,
        ] {
            assert!(
                matches!(map(&t, "ngsi/x", bad), Err(MapError::Refused(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn configurations_are_checked_when_read() {
        let bad = |topic: &str| {
            let text = format!("[broker]\nurl = \"mqtt://127.0.0.1\"\n[[topic]]\n{topic}");
            IngestConfig::parse(&text).unwrap_err()
        };
        assert!(bad("filter = \"a\"\nformat = \"json\"").contains("id template"));
        assert!(bad("filter = \"a/#/b\"\nformat = \"ngsi-ld\"").contains("last level"));
        assert!(bad("filter = \"a\"\nformat = \"ngsi-ld\"\nid = \"urn:x\"").contains("own id"));
        assert!(bad(
            "filter = \"a\"\nformat = \"json\"\nid = \"urn:x\"\ntype = \"T\"\n[topic.attributes]\nx = { path = \"$.x\", from = \"CEL\", unit = \"KMH\" }"
        )
        .contains("no conversion"));
        assert!(bad(
            "filter = \"a\"\nformat = \"csv\"\nid = \"urn:x\"\ntype = \"T\"\ncolumns = [\"a\"]\n[topic.attributes]\nx = { column = \"b\" }"
        )
        .contains("not in columns"));
        assert!(bad("filter = \"a\"\nformat = \"xml\"").contains("format"));
        assert!(IngestConfig::parse(
            "[broker]\nurl = \"http://x\"\n[[topic]]\nfilter = \"a\"\nformat = \"ngsi-ld\""
        )
        .unwrap_err()
        .contains("mqtt://"));
        assert!(IngestConfig::parse("[broker]\nurl = \"mqtt://x\"")
            .unwrap_err()
            .contains("no [[topic]]"));
    }
}
