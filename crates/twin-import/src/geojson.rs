//! Reads GeoJSON (a FeatureCollection, a single Feature, or newline-delimited GeoJSONSeq) into entities of a type the
//! user names: id from the feature id, an id property or the index; geometry → `location`; properties → Properties.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::BufRead;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use twin_model::{Context, Entity, Provenance};

use crate::cityjson::urn;
use crate::ImportError;

/// How to read a GeoJSON file.
#[derive(Debug, Clone, Default)]
pub struct GeoJsonOptions {
    /// The NGSI-LD type of every entity (`Tree`, `StreetLight`...).
    pub entity_type: String,
    /// A property whose value is the entity id (instead of the feature `id`).
    pub id_property: Option<String>,
    /// The urbantwin dataset the entities belong to.
    pub dataset: Option<String>,
}

/// What a read found.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct GeoJsonSummary {
    /// True for a GeoJSONSeq stream (one feature per line).
    pub sequence: bool,
    /// Entities handed to the sink.
    pub entities: usize,
    /// Features with a null geometry (entities without `location`).
    pub without_geometry: usize,
    /// Geometry types, by count.
    pub geometries: BTreeMap<String, usize>,
    /// Property names that were changed to be valid attribute names: original → attribute name.
    pub renamed: BTreeMap<String, String>,
}

/// Reads a GeoJSON / GeoJSONSeq file and hands one entity per feature to `sink`.
///
/// The id is `urn:ngsi-ld:<Type>:<id>` (percent-encoded as [`crate::cityjson::urn`]), so importing the same file
/// again yields the same ids; without a feature id or [`GeoJsonOptions::id_property`] the id is the feature's 0-based
/// index (`feature 12` in errors). Null properties are skipped; objects become JsonProperties; property names are
/// sanitised by [`attribute_name`]. A FeatureCollection is read whole; a GeoJSONSeq stream one line at a time.
pub fn read_geojson(
    path: &Path,
    options: &GeoJsonOptions,
    sink: &mut dyn FnMut(Entity) -> Result<(), ImportError>,
) -> Result<GeoJsonSummary, ImportError> {
    let (name, reader) = crate::error::open(path)?;
    parse_geojson(reader, &name, options, sink)
}

/// Reads GeoJSON from `reader`. A first line that is a whole Feature object starts a GeoJSONSeq stream (one Feature
/// per line, RFC 8142 record separators allowed); anything else is read as one FeatureCollection or Feature.
pub fn parse_geojson(
    mut reader: impl BufRead,
    file_name: &str,
    options: &GeoJsonOptions,
    sink: &mut dyn FnMut(Entity) -> Result<(), ImportError>,
) -> Result<GeoJsonSummary, ImportError> {
    check_entity_type(&options.entity_type).map_err(|e| ImportError::file(file_name, e))?;
    let io_err = |e: std::io::Error| ImportError::file(file_name, format!("cannot read: {e}"));
    let mut r = Builder::new(
        file_name,
        &options.entity_type,
        options.dataset.clone(),
        "geojson",
    );
    let mut summary = GeoJsonSummary::default();
    let mut first = String::new();
    reader.read_line(&mut first).map_err(io_err)?;
    let first_trim = first.trim_start_matches(['\u{feff}', '\u{1e}']).trim();
    if let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(first_trim) {
        if v.get("type").and_then(Value::as_str) == Some("Feature") {
            summary.sequence = true;
            let mut index = 0usize;
            feature(
                &mut r,
                options,
                &v,
                index,
                "line 1, feature 0",
                &mut summary,
                sink,
            )?;
            let mut line = String::new();
            let mut line_no = 1usize;
            loop {
                line.clear();
                if reader.read_line(&mut line).map_err(io_err)? == 0 {
                    break;
                }
                line_no += 1;
                let text = line.trim_start_matches('\u{1e}').trim();
                if text.is_empty() {
                    continue;
                }
                index += 1;
                let loc = format!("line {line_no}, feature {index}");
                let v = serde_json::from_str::<Value>(text)
                    .map_err(|e| ImportError::new(file_name, &loc, format!("invalid JSON: {e}")))?;
                feature(&mut r, options, &v, index, &loc, &mut summary, sink)?;
            }
            summary.renamed = r.names.renamed;
            return Ok(summary);
        }
    }
    let mut text = first;
    reader.read_to_string(&mut text).map_err(io_err)?;
    let doc: Value = serde_json::from_str(text.trim_start_matches('\u{feff}'))
        .map_err(|e| ImportError::file(file_name, format!("invalid JSON: {e}")))?;
    match doc.get("type").and_then(Value::as_str) {
        Some("FeatureCollection") => {
            let features = doc
                .get("features")
                .and_then(Value::as_array)
                .ok_or_else(|| ImportError::file(file_name, "\"features\" must be an array"))?;
            for (i, f) in features.iter().enumerate() {
                feature(
                    &mut r,
                    options,
                    f,
                    i,
                    &format!("feature {i}"),
                    &mut summary,
                    sink,
                )?;
            }
        }
        Some("Feature") => feature(&mut r, options, &doc, 0, "feature 0", &mut summary, sink)?,
        Some(t) => {
            return Err(ImportError::file(
                file_name,
                format!("\"type\" is {t:?}, expected \"FeatureCollection\" or \"Feature\""),
            ))
        }
        None => {
            return Err(ImportError::file(
                file_name,
                "no \"type\": not a GeoJSON object",
            ))
        }
    }
    summary.renamed = r.names.renamed;
    Ok(summary)
}

fn feature(
    r: &mut Builder,
    options: &GeoJsonOptions,
    f: &Value,
    index: usize,
    loc: &str,
    summary: &mut GeoJsonSummary,
    sink: &mut dyn FnMut(Entity) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    let err = |reason: String| ImportError::new(r.file, loc, reason);
    let m = f
        .as_object()
        .ok_or_else(|| err("a feature must be a JSON object".into()))?;
    if m.get("type").and_then(Value::as_str) != Some("Feature") {
        return Err(err(format!(
            "\"type\" is {}, expected \"Feature\"",
            m.get("type").unwrap_or(&Value::Null)
        )));
    }
    let props = match m.get("properties") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(p)) => p.clone(),
        Some(other) => {
            return Err(err(format!(
                "\"properties\" must be an object, got {other}"
            )))
        }
    };
    let id = match &options.id_property {
        Some(p) => match props.get(p) {
            Some(v) => id_text(v).ok_or_else(|| {
                err(format!(
                    "id property {p:?} must be a non-empty string or a number, got {v}"
                ))
            })?,
            None => return Err(err(format!("no property {p:?} (the id property)"))),
        },
        None => match m.get("id") {
            None | Some(Value::Null) => index.to_string(),
            Some(v) => id_text(v).ok_or_else(|| {
                err(format!(
                    "\"id\" must be a non-empty string or a number, got {v}"
                ))
            })?,
        },
    };
    let geometry = match m.get("geometry") {
        None | Some(Value::Null) => None,
        Some(g) => Some(g.clone()),
    };
    match geometry
        .as_ref()
        .and_then(|g| g.get("type"))
        .and_then(Value::as_str)
    {
        Some(t) => *summary.geometries.entry(t.to_string()).or_insert(0) += 1,
        None if geometry.is_none() => summary.without_geometry += 1,
        None => {}
    }
    let e = r.entity(&id, geometry, props, loc)?;
    summary.entities += 1;
    sink(e)
}

/// A feature id or id property value as text: a non-empty string, or a number.
fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Checks the entity type the user names: a letter, then letters, digits, `_` or `-` (at most 256).
pub(crate) fn check_entity_type(t: &str) -> Result<(), String> {
    let ok = t.len() <= 256
        && t.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "entity type {t:?} must start with a letter and hold only letters, digits, '_' and '-'"
        ))
    }
}

/// Names NGSI-LD reserves for an entity's own members or geometry; properties so named get a `_` prefix.
const RESERVED: &[&str] = &[
    "id",
    "type",
    "scope",
    "createdAt",
    "modifiedAt",
    "deletedAt",
    "location",
    "observationSpace",
    "operationSpace",
];

/// The attribute name for a property (column) name: every character other than a letter, a digit, `_`, `-` or `.`
/// becomes `_` (so `height (m)` → `height__m_`, `addr:street` → `addr_street`); an empty name becomes `unnamed`; a
/// reserved name (`id`, `type`, `location`...) gets a `_` prefix; names are cut to 200 bytes.
pub fn attribute_name(raw: &str) -> String {
    let mut s: String = raw
        .trim()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        s = "unnamed".into();
    }
    if RESERVED.contains(&s.as_str()) {
        s.insert(0, '_');
    }
    if s.len() > 200 {
        let cut = (0..=200)
            .rev()
            .find(|&i| s.is_char_boundary(i))
            .unwrap_or(0);
        s.truncate(cut);
    }
    s
}

/// Property names to attribute names, consistent over a file; two names that sanitise alike get `_2`, `_3`...
#[derive(Default)]
pub(crate) struct Names {
    map: HashMap<String, String>,
    used: HashSet<String>,
    /// Per sanitised name, the next suffix to try (every smaller one is taken), so that n names that sanitise alike
    /// cost O(n) lookups, not O(n²).
    next_suffix: HashMap<String, usize>,
    pub(crate) renamed: BTreeMap<String, String>,
}

impl Names {
    pub(crate) fn get(&mut self, raw: &str) -> String {
        if let Some(n) = self.map.get(raw) {
            return n.clone();
        }
        let base = attribute_name(raw);
        let mut name = base.clone();
        if self.used.contains(&name) {
            let k = self.next_suffix.entry(base.clone()).or_insert(2);
            loop {
                name = format!("{base}_{k}");
                *k += 1;
                if !self.used.contains(&name) {
                    break;
                }
            }
        }
        self.used.insert(name.clone());
        self.map.insert(raw.to_string(), name.clone());
        if name != raw {
            self.renamed.insert(raw.to_string(), name.clone());
        }
        name
    }
}

/// Builds validated entities of one type, checking that ids are unique within the file.
pub(crate) struct Builder<'a> {
    pub(crate) file: &'a str,
    ty: &'a str,
    now: DateTime<Utc>,
    prov: Provenance,
    ctx: std::sync::Arc<Context>,
    seen: HashSet<String>,
    pub(crate) names: Names,
}

impl<'a> Builder<'a> {
    pub(crate) fn new(
        file: &'a str,
        ty: &'a str,
        dataset: Option<String>,
        kind: &str,
    ) -> Builder<'a> {
        Builder {
            file,
            ty,
            now: Utc::now(),
            prov: Provenance {
                dataset,
                source: Some(file.to_string()),
                channel: Some(format!("import:{kind}")),
            },
            ctx: Context::core(),
            seen: HashSet::new(),
            names: Names::default(),
        }
    }

    /// The entity `urn:ngsi-ld:<type>:<id>` with `geometry` as `location` and the non-null `props`.
    pub(crate) fn entity(
        &mut self,
        id: &str,
        geometry: Option<Value>,
        props: Map<String, Value>,
        loc: &str,
    ) -> Result<Entity, ImportError> {
        let err = |reason: String| ImportError::new(self.file, loc, reason);
        let urn = urn(self.ty, id);
        if self.seen.contains(&urn) {
            return Err(err(format!("duplicate id {id:?}")));
        }
        let mut m = Map::new();
        m.insert("id".into(), json!(urn));
        m.insert("type".into(), json!(self.ty));
        if let Some(g) = geometry {
            twin_model::geoquery::geometry_from_geojson(&g)
                .map_err(|e| err(format!("invalid geometry: {}", e.0)))?;
            m.insert(
                "location".into(),
                json!({"type": "GeoProperty", "value": g}),
            );
        }
        for (k, v) in props {
            let attr = match v {
                Value::Null => continue,
                Value::Object(_) => json!({"type": "JsonProperty", "json": v}),
                v => json!({"type": "Property", "value": v}),
            };
            m.insert(self.names.get(&k), attr);
        }
        let e = twin_model::ngsi::parse_entity(&Value::Object(m), &self.ctx, self.now, &self.prov)
            .map_err(|e| err(format!("not a valid entity: {}", e.detail)))?;
        self.seen.insert(urn);
        Ok(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use twin_model::entity::iri;

    fn read(
        text: &str,
        opts: &GeoJsonOptions,
    ) -> Result<(GeoJsonSummary, Vec<Entity>), ImportError> {
        let mut out = Vec::new();
        let s = parse_geojson(text.as_bytes(), "t.geojson", opts, &mut |e| {
            out.push(e);
            Ok(())
        })?;
        Ok((s, out))
    }

    fn opts(ty: &str) -> GeoJsonOptions {
        GeoJsonOptions {
            entity_type: ty.into(),
            ..Default::default()
        }
    }

    fn attr<'a>(e: &'a Entity, name: &str) -> Option<&'a Value> {
        let ctx = Context::core();
        e.attrs.get(&ctx.expand(name)).map(|l| &l[0].value)
    }

    const FC: &str = r#"{"type": "FeatureCollection", "features": [
      {"type": "Feature", "id": "t1", "geometry": {"type": "Point", "coordinates": [24.94, 60.17]},
       "properties": {"species": "Tilia × europaea", "height (m)": 12.5, "planted": null, "id": 7, "meta": {"a": 1}}},
      {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[24.9,60.1],[25.0,60.1],[25.0,60.2],[24.9,60.1]]]},
       "properties": {"species": "Betula", "höhe": 3}},
      {"type": "Feature", "id": 42, "geometry": {"type": "MultiPolygon", "coordinates": [
         [[[0,0],[1,0],[1,1],[0,0]]], [[[2,2],[3,2],[3,3],[2,2]]]]}, "properties": null},
      {"type": "Feature", "geometry": null, "properties": {"species": "none"}}
    ]}"#;

    #[test]
    fn reads_a_feature_collection() {
        let (s, es) = read(FC, &opts("Tree")).unwrap();
        assert_eq!(s.entities, 4);
        assert!(!s.sequence);
        assert_eq!(s.without_geometry, 1);
        assert_eq!(s.geometries["Polygon"], 1);
        assert_eq!(s.geometries["MultiPolygon"], 1);
        let ids: Vec<&str> = es.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "urn:ngsi-ld:Tree:t1",
                "urn:ngsi-ld:Tree:1",
                "urn:ngsi-ld:Tree:42",
                "urn:ngsi-ld:Tree:3"
            ]
        );
        let t1 = &es[0];
        assert_eq!(attr(t1, "species"), Some(&json!("Tilia × europaea")));
        assert_eq!(attr(t1, "height__m_"), Some(&json!(12.5)));
        assert_eq!(attr(t1, "_id"), Some(&json!(7)));
        assert!(attr(t1, "planted").is_none(), "null properties are skipped");
        assert_eq!(
            t1.attrs[&Context::core().expand("meta")][0].kind,
            twin_model::AttrKind::JsonProperty
        );
        assert_eq!(t1.attrs[iri::LOCATION][0].value["type"], "Point");
        assert_eq!(attr(&es[1], "höhe"), Some(&json!(3)));
        assert_eq!(es[2].attrs[iri::LOCATION][0].value["type"], "MultiPolygon");
        assert!(!es[3].attrs.contains_key(iri::LOCATION));
        assert_eq!(s.renamed["height (m)"], "height__m_");
        assert_eq!(s.renamed["id"], "_id");
        // the same file gives the same ids
        let (_, again) = read(FC, &opts("Tree")).unwrap();
        assert_eq!(
            again.iter().map(|e| &e.id).collect::<Vec<_>>(),
            es.iter().map(|e| &e.id).collect::<Vec<_>>()
        );
    }

    #[test]
    fn id_property_single_feature_and_sequence() {
        let o = GeoJsonOptions {
            entity_type: "Stop".into(),
            id_property: Some("code".into()),
            dataset: None,
        };
        let one = r#"{"type": "Feature",
            "geometry": {"type": "Point", "coordinates": [1, 2]}, "properties": {"code": "H 1/2"}}"#;
        let (s, es) = read(one, &o).unwrap();
        assert_eq!((s.entities, s.sequence), (1, false));
        assert_eq!(es[0].id, "urn:ngsi-ld:Stop:H%201%2F2");
        let seq = "\u{1e}{\"type\":\"Feature\",\"geometry\":{\"type\":\"Point\",\"coordinates\":[1,2]},\"properties\":{\"code\":1}}\n\n\
                   {\"type\":\"Feature\",\"geometry\":{\"type\":\"LineString\",\"coordinates\":[[1,2],[3,4]]},\"properties\":{\"code\":2}}\n";
        let (s, es) = read(seq, &o).unwrap();
        assert_eq!((s.entities, s.sequence), (2, true));
        assert_eq!(es[1].id, "urn:ngsi-ld:Stop:2");
        let missing = "{\"type\":\"Feature\",\"geometry\":null,\"properties\":{}}\n";
        let e = read(missing, &o).unwrap_err();
        assert!(
            e.to_string().contains("line 1, feature 0") && e.reason.contains("code"),
            "{e}"
        );
    }

    #[test]
    fn bad_geometry_names_the_feature() {
        let mut features = Vec::new();
        for i in 0..13 {
            let coords = if i == 12 {
                json!([200.0, 0.0])
            } else {
                json!([1.0, 2.0])
            };
            features.push(json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": coords}, "properties": {}}));
        }
        let doc = json!({"type": "FeatureCollection", "features": features}).to_string();
        let e = read(&doc, &opts("Tree")).unwrap_err();
        assert_eq!(e.location, "feature 12");
        assert!(e.reason.starts_with("invalid geometry"), "{e}");
        let open_ring = r#"{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0,0],[1,0],[1,1]]]}, "properties": {}}"#;
        let e = read(open_ring, &opts("Tree")).unwrap_err();
        assert!(e.to_string().contains("feature 0: invalid geometry"), "{e}");
        let dup = r#"{"type": "FeatureCollection", "features": [
            {"type": "Feature", "id": 1, "geometry": null, "properties": {}},
            {"type": "Feature", "id": 1, "geometry": null, "properties": {}}]}"#;
        assert!(read(dup, &opts("Tree"))
            .unwrap_err()
            .to_string()
            .contains("feature 1: duplicate id"));
        assert!(read(FC, &opts("bad type")).is_err());
        assert!(read("[1, 2]", &opts("Tree")).is_err());
    }

    #[test]
    fn names_are_sanitised() {
        assert_eq!(attribute_name("addr:street"), "addr_street");
        assert_eq!(attribute_name("type"), "_type");
        assert_eq!(attribute_name("  "), "unnamed");
        assert_eq!(attribute_name("straße"), "straße");
        let mut n = Names::default();
        assert_eq!(n.get("a b"), "a_b");
        assert_eq!(n.get("a_b"), "a_b_2");
        assert_eq!(n.get("a b"), "a_b");
    }

    /// 30,000 property names that all sanitise to `a____` (a CSV header or GeoJSON properties can hold that many):
    /// the search for a free suffix used to start from `_2` every time, quadratic — minutes for 60,000 names.
    #[test]
    fn many_names_that_sanitise_alike_take_linear_time() {
        let punct: Vec<char> = "!#$%&()*+/<=>?@[]^{|}~".chars().collect();
        let raws: Vec<String> = punct
            .iter()
            .flat_map(|a| punct.iter().map(move |b| (a, b)))
            .flat_map(|(a, b)| punct.iter().map(move |c| format!("a{a}{b}{c}")))
            .flat_map(|abc| ["!", "#", "$"].map(|d| format!("{abc}{d}")))
            .take(30_000)
            .collect();
        let start = std::time::Instant::now();
        let mut n = Names::default();
        assert_eq!(n.get("a_____2"), "a_____2"); // taken before its turn: skipped
        for (i, raw) in raws.iter().enumerate() {
            let expect = match i {
                0 => "a____".to_string(),
                _ => format!("a_____{}", i + 2),
            };
            assert_eq!(n.get(raw), expect);
        }
        assert_eq!(
            n.get(&raws[5]),
            "a_____7",
            "the same name again gets the same attribute"
        );
        assert!(start.elapsed().as_secs() < 20, "{:?}", start.elapsed());
    }
}
