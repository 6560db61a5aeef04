//! Reads CityJSON 1.1/2.0 documents and CityJSONSeq streams into NGSI-LD `Building` entities (footprint in WGS84,
//! heights, volume, LoDs, attributes) so a city's 3D building model becomes part of the twin.
//!
//! What an entity holds (names expand through the core context):
//! - id `urn:ngsi-ld:Building:<CityObject id>` (characters outside `A-Za-z0-9-._~:` percent-encoded), so importing
//!   the same file again yields the same ids; `cityObjectId` keeps the raw id.
//! - `location`: the footprint as a GeoJSON Polygon/MultiPolygon in WGS84, from the LoD0 surfaces if present, else
//!   the `GroundSurface` faces of the lowest LoD that has semantics, else the lowest horizontal faces (within 0.1 m
//!   of the lowest vertex) of the lowest LoD, else the convex hull of every vertex. Faces are merged by cancelling
//!   shared edges (vertices matched at 1 mm). `footprintSource` says which rule applied (`lod0`, `groundSurface`,
//!   `bottomFaces`, `convexHull`, `parts`).
//! - `height` (metres, `MTR`): the `measuredHeight` attribute, else `roofHeight − groundHeight`; `roofHeight` and
//!   `groundHeight`: the highest and lowest z of the LoD ≥ 1 geometries (absolute, in the file's vertical datum).
//! - `volume` (`MTQ`): of the highest-LoD closed solid (signed tetrahedra from fan-triangulated faces; inner shells
//!   subtract); absent when no solid is closed.
//! - `lod`: the LoDs present, as strings; `category`: the `function` and `usage` attributes when present;
//!   `cityjsonAttributes`: every CityObject attribute, untouched, as one JsonProperty.
//! - BuildingParts become their own entities, of type `BuildingPart` (id `urn:ngsi-ld:BuildingPart:<id>`), with a
//!   Relationship `isPartOf` to their parent; a parent gets a ListRelationship `hasPart`. A Building without geometry
//!   of its own takes the union of its parts: footprint (MultiPolygon), lowest ground, highest roof, summed volume.
//! - Other CityObject types (roads, vegetation, bridges...) are counted in the summary and skipped.
//!
//! Coordinates: `transform` (scale, translate) is applied, then `metadata.referenceSystem` decides the way to WGS84
//! (see [`Crs`]); a file without one needs [`CityJsonOptions::default_crs`] — the reader never guesses. A CityJSON
//! document is read whole (its vertices are shared); a CityJSONSeq stream is read one feature line at a time.

mod crs;
mod geom;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use twin_model::{Context, Entity, Provenance};

pub use crs::Crs;
use geom::{FootprintMethod, Geom, IdxPolygon, P3};

use crate::ImportError;

/// How to read a CityJSON file.
#[derive(Debug, Clone, Default)]
pub struct CityJsonOptions {
    /// The CRS to use when the file declares none (`EPSG:7415`, a CityJSON URL or URN).
    pub default_crs: Option<String>,
    /// A CRS that replaces the declared one (for files that declare a wrong one).
    pub crs_override: Option<String>,
    /// The urbantwin dataset the entities belong to (provenance and `Entity::dataset`).
    pub dataset: Option<String>,
    /// createdAt/modifiedAt of the entities (now when None).
    pub now: Option<DateTime<Utc>>,
}

/// What a read found.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct CityJsonSummary {
    /// The CityJSON version (`2.0`, `1.1`).
    pub version: String,
    /// The CRS used, `EPSG:<code>`.
    pub crs: String,
    /// False when the CRS came from the options rather than the file.
    pub crs_from_file: bool,
    /// True for a CityJSONSeq stream.
    pub sequence: bool,
    /// CityJSONFeature lines read (0 for a plain document).
    pub features: usize,
    /// Entities of type Building handed to the sink.
    pub buildings: usize,
    /// Entities of type BuildingPart handed to the sink.
    pub building_parts: usize,
    /// CityObjects not imported, by CityJSON type.
    pub skipped: BTreeMap<String, usize>,
    /// How footprints were found (`lod0`, `groundSurface`, `bottomFaces`, `convexHull`, `parts`), by count.
    pub footprints: BTreeMap<String, usize>,
    /// Entities written without a footprint (no usable geometry).
    pub without_footprint: usize,
}

/// Reads a CityJSON or CityJSONSeq file with default options and hands every Building/BuildingPart to `sink`.
pub fn read_cityjson(
    path: &Path,
    sink: &mut dyn FnMut(Entity) -> Result<(), ImportError>,
) -> Result<CityJsonSummary, ImportError> {
    read_cityjson_with(path, &CityJsonOptions::default(), sink)
}

/// [`read_cityjson`] with options (a CRS for files that declare none, the dataset, the timestamp).
pub fn read_cityjson_with(
    path: &Path,
    options: &CityJsonOptions,
    sink: &mut dyn FnMut(Entity) -> Result<(), ImportError>,
) -> Result<CityJsonSummary, ImportError> {
    let (name, reader) = crate::error::open(path)?;
    parse_cityjson(reader, &name, options, sink)
}

/// Reads CityJSON from `reader`. A first line that is a complete JSON object starts a CityJSONSeq stream (the
/// CityJSON header, then one CityJSONFeature per line); anything else is read as one CityJSON document.
pub fn parse_cityjson(
    mut reader: impl BufRead,
    file_name: &str,
    options: &CityJsonOptions,
    sink: &mut dyn FnMut(Entity) -> Result<(), ImportError>,
) -> Result<CityJsonSummary, ImportError> {
    let io_err = |e: std::io::Error| ImportError::file(file_name, format!("cannot read: {e}"));
    let mut first = String::new();
    reader.read_line(&mut first).map_err(io_err)?;
    let mut reader_ctx = Reader::new(file_name, options);
    if let Some(rest) = first.strip_prefix('\u{feff}') {
        first = rest.to_string(); // a UTF-8 byte order mark
    }
    if let Ok(header @ Value::Object(_)) = serde_json::from_str::<Value>(&first) {
        reader_ctx.header(&header)?;
        let header_has_objects = header.get("CityObjects").is_some();
        if header_has_objects {
            for e in reader_ctx.objects(&header, "")? {
                sink(e)?;
            }
        }
        let mut line = String::new();
        let mut line_no = 1usize;
        loop {
            line.clear();
            if reader.read_line(&mut line).map_err(io_err)? == 0 {
                break;
            }
            line_no += 1;
            if line.trim().is_empty() {
                continue;
            }
            let loc = format!("line {line_no}");
            let v = serde_json::from_str::<Value>(&line)
                .map_err(|e| ImportError::new(file_name, &loc, format!("invalid JSON: {e}")))?;
            reader_ctx.feature(&v, &loc, sink)?;
        }
        if !header_has_objects && !reader_ctx.summary.sequence {
            return Err(ImportError::file(file_name, "no \"CityObjects\""));
        }
        return Ok(reader_ctx.summary);
    }
    let mut text = first;
    reader.read_to_string(&mut text).map_err(io_err)?;
    parse_cityjson_str(&text, file_name, options, sink)
}

/// Reads one CityJSON document (or a CityJSONSeq stream) held in memory.
pub fn parse_cityjson_str(
    text: &str,
    file_name: &str,
    options: &CityJsonOptions,
    sink: &mut dyn FnMut(Entity) -> Result<(), ImportError>,
) -> Result<CityJsonSummary, ImportError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let doc: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e)
            if e.is_syntax()
                && e.line() > 1
                && text.lines().next().is_some_and(|l| {
                    serde_json::from_str::<Value>(l).is_ok_and(|v| v.is_object())
                }) =>
        {
            // a first line that is a whole object: a CityJSONSeq stream (which takes the other branch there)
            return parse_cityjson(text.as_bytes(), file_name, options, sink);
        }
        Err(e) => return Err(ImportError::file(file_name, format!("invalid JSON: {e}"))),
    };
    let mut r = Reader::new(file_name, options);
    r.header(&doc)?;
    for e in r.objects(&doc, "")? {
        sink(e)?;
    }
    Ok(r.summary)
}

/// `transform` of a CityJSON file.
#[derive(Debug, Clone, Copy)]
struct Transform {
    scale: [f64; 3],
    translate: [f64; 3],
}

struct Reader<'a> {
    file: &'a str,
    options: &'a CityJsonOptions,
    transform: Option<Transform>,
    crs: Option<Crs>,
    now: DateTime<Utc>,
    prov: Provenance,
    summary: CityJsonSummary,
}

/// What one CityObject contributes, before its entity is built.
struct Info {
    footprint: Option<(Vec<IdxPolygon>, FootprintMethod)>,
    zmin: Option<f64>,
    zmax: Option<f64>,
    volume: Option<f64>,
    lods: BTreeSet<String>,
}

impl<'a> Reader<'a> {
    fn new(file: &'a str, options: &'a CityJsonOptions) -> Reader<'a> {
        Reader {
            file,
            options,
            transform: None,
            crs: None,
            now: options.now.unwrap_or_else(Utc::now),
            prov: Provenance {
                dataset: options.dataset.clone(),
                source: Some(file.to_string()),
                channel: Some("import:cityjson".to_string()),
            },
            summary: CityJsonSummary::default(),
        }
    }

    fn err(&self, loc: &str, reason: impl Into<String>) -> ImportError {
        ImportError::new(self.file, loc, reason)
    }

    /// Checks type and version, reads `transform` and the CRS.
    fn header(&mut self, doc: &Value) -> Result<(), ImportError> {
        let m = doc
            .as_object()
            .ok_or_else(|| self.err("", "a CityJSON file must be a JSON object"))?;
        match m.get("type") {
            Some(Value::String(t)) if t == "CityJSON" => {}
            Some(other) => {
                return Err(self.err("", format!("\"type\" is {other}, expected \"CityJSON\"")))
            }
            None => return Err(self.err("", "no \"type\": not a CityJSON file")),
        }
        let version = match m.get("version") {
            Some(Value::String(v)) => v.clone(),
            Some(other) => {
                return Err(self.err("", format!("\"version\" must be a string, got {other}")))
            }
            None => return Err(self.err("", "no \"version\"")),
        };
        let major_minor: String = version.split('.').take(2).collect::<Vec<_>>().join(".");
        if !matches!(major_minor.as_str(), "1.1" | "2.0") {
            return Err(self.err(
                "",
                format!("unsupported CityJSON version {version:?} (supported: 1.1, 2.0)"),
            ));
        }
        self.summary.version = version;
        self.transform = match m.get("transform") {
            None => None,
            Some(t) => Some(parse_transform(t).map_err(|e| self.err("transform", e))?),
        };
        let declared = m.get("metadata").and_then(|md| md.get("referenceSystem"));
        let declared = match declared {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.as_str()),
            Some(other) => {
                return Err(self.err(
                    "metadata.referenceSystem",
                    format!("must be a string, got {other}"),
                ))
            }
        };
        let (text, from_file) = match (&self.options.crs_override, declared, &self.options.default_crs) {
            (Some(o), _, _) => (o.as_str(), false),
            (None, Some(d), _) => (d, true),
            (None, None, Some(d)) => (d.as_str(), false),
            (None, None, None) => {
                return Err(self.err(
                    "metadata.referenceSystem",
                    "the file declares no reference system; give one (e.g. EPSG:7415) as the default CRS",
                ))
            }
        };
        let crs = Crs::parse(text).map_err(|e| self.err("metadata.referenceSystem", e))?;
        self.summary.crs = crs.name();
        self.summary.crs_from_file = from_file;
        self.crs = Some(crs);
        Ok(())
    }

    /// One CityJSONFeature line of a CityJSONSeq stream.
    fn feature(
        &mut self,
        doc: &Value,
        loc: &str,
        sink: &mut dyn FnMut(Entity) -> Result<(), ImportError>,
    ) -> Result<(), ImportError> {
        match doc.get("type") {
            Some(Value::String(t)) if t == "CityJSONFeature" => {}
            Some(other) => {
                return Err(self.err(
                    loc,
                    format!("\"type\" is {other}, expected \"CityJSONFeature\""),
                ))
            }
            None => return Err(self.err(loc, "no \"type\": not a CityJSONFeature")),
        }
        self.summary.features += 1;
        self.summary.sequence = true;
        for e in self.objects(doc, loc)? {
            sink(e)?;
        }
        Ok(())
    }

    /// The entities of the CityObjects of a document or feature (with its own `vertices`).
    fn objects(&mut self, doc: &Value, loc: &str) -> Result<Vec<Entity>, ImportError> {
        let objects = match doc.get("CityObjects") {
            Some(Value::Object(o)) => o,
            Some(_) => return Err(self.err(loc, "\"CityObjects\" must be an object")),
            None => return Err(self.err(loc, "no \"CityObjects\"")),
        };
        let vloc = if loc.is_empty() {
            "vertices".to_string()
        } else {
            format!("{loc}, vertices")
        };
        let vertices = match doc.get("vertices") {
            Some(Value::Array(a)) => a,
            Some(_) => return Err(self.err(&vloc, "must be an array")),
            None => return Err(self.err(loc, "no \"vertices\"")),
        };
        let verts = self.vertices(vertices, &vloc)?;
        let crs = self
            .crs
            .clone()
            .ok_or_else(|| self.err(loc, "no CityJSON header before the features"))?;
        let metric = metric_vertices(&verts, &crs).map_err(|e| self.err(&vloc, e))?;
        let obj_loc = |id: &str| {
            if loc.is_empty() {
                format!("CityObject {id:?}")
            } else {
                format!("{loc}, CityObject {id:?}")
            }
        };

        let mut infos: BTreeMap<&str, Info> = BTreeMap::new();
        for (id, o) in objects {
            let ty = o
                .get("type")
                .and_then(Value::as_str)
                .ok_or_else(|| self.err(&obj_loc(id), "has no type"))?;
            if !matches!(ty, "Building" | "BuildingPart") {
                *self.summary.skipped.entry(ty.to_string()).or_insert(0) += 1;
                continue;
            }
            let info = object_info(o, &verts, &metric).map_err(|e| self.err(&obj_loc(id), e))?;
            infos.insert(id.as_str(), info);
        }

        let mut out = Vec::with_capacity(infos.len());
        for (id, info) in &infos {
            let o = &objects[*id];
            let ty = o.get("type").and_then(Value::as_str).unwrap_or("Building");
            let children: Vec<&str> = o
                .get("children")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .filter(|c| infos.contains_key(c))
                        .collect()
                })
                .unwrap_or_default();
            let (e, method) = self
                .entity(id, ty, o, info, &children, objects, &infos, &verts, &crs)
                .map_err(|e| self.err(&obj_loc(id), e))?;
            match method {
                Some(m) => *self.summary.footprints.entry(m.to_string()).or_insert(0) += 1,
                None => self.summary.without_footprint += 1,
            }
            if ty == "Building" {
                self.summary.buildings += 1;
            } else {
                self.summary.building_parts += 1;
            }
            out.push(e);
        }
        Ok(out)
    }

    fn vertices(&self, vertices: &[Value], loc: &str) -> Result<Vec<P3>, ImportError> {
        let mut out = Vec::with_capacity(vertices.len());
        for (i, v) in vertices.iter().enumerate() {
            let a = v.as_array().filter(|a| a.len() == 3).ok_or_else(|| {
                self.err(
                    loc,
                    format!("vertex {i} must be an array of 3 numbers, got {}", short(v)),
                )
            })?;
            let mut p = [0.0; 3];
            for k in 0..3 {
                let x = a[k].as_f64().ok_or_else(|| {
                    self.err(
                        loc,
                        format!("vertex {i} must be an array of 3 numbers, got {}", short(v)),
                    )
                })?;
                p[k] = match self.transform {
                    Some(t) => x * t.scale[k] + t.translate[k],
                    None => x,
                };
                if !p[k].is_finite() {
                    return Err(
                        self.err(loc, format!("vertex {i} is not finite after the transform"))
                    );
                }
            }
            out.push(p);
        }
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    fn entity(
        &self,
        id: &str,
        ty: &str,
        o: &Value,
        info: &Info,
        children: &[&str],
        objects: &Map<String, Value>,
        infos: &BTreeMap<&str, Info>,
        verts: &[P3],
        crs: &Crs,
    ) -> Result<(Entity, Option<&'static str>), String> {
        let mut m = Map::new();
        m.insert("id".into(), json!(urn(ty, id)));
        m.insert("type".into(), json!(ty));
        m.insert(
            "cityObjectId".into(),
            json!({"type": "Property", "value": id}),
        );

        // geometry of its own, else the union of its parts
        let own = info.footprint.is_some() || info.zmin.is_some();
        let parts: Vec<&Info> = if own {
            Vec::new()
        } else {
            children.iter().filter_map(|c| infos.get(c)).collect()
        };
        let mut polygons: Vec<Value> = Vec::new();
        let mut method: Option<&'static str> = None;
        if let Some((polys, meth)) = &info.footprint {
            for p in polys {
                polygons.push(polygon_wgs84(p, verts, crs)?);
            }
            method = Some(meth.as_str());
        } else {
            for p in &parts {
                for poly in p.footprint.iter().flat_map(|f| &f.0) {
                    polygons.push(polygon_wgs84(poly, verts, crs)?);
                }
            }
            if !polygons.is_empty() {
                method = Some("parts");
            }
        }
        match polygons.len() {
            0 => {}
            1 => {
                let coords = polygons.pop().unwrap_or_default();
                m.insert(
                    "location".into(),
                    json!({"type": "GeoProperty", "value": {"type": "Polygon", "coordinates": coords}}),
                );
            }
            _ => {
                m.insert(
                    "location".into(),
                    json!({"type": "GeoProperty", "value": {"type": "MultiPolygon", "coordinates": polygons}}),
                );
            }
        }
        if let Some(meth) = method {
            m.insert(
                "footprintSource".into(),
                json!({"type": "Property", "value": meth}),
            );
        }

        let zmin = info
            .zmin
            .or_else(|| parts.iter().filter_map(|p| p.zmin).reduce(f64::min));
        let zmax = info
            .zmax
            .or_else(|| parts.iter().filter_map(|p| p.zmax).reduce(f64::max));
        let volume = if own {
            info.volume
        } else if !parts.is_empty() && parts.iter().all(|p| p.volume.is_some()) {
            Some(parts.iter().filter_map(|p| p.volume).sum())
        } else {
            None
        };
        let attrs = o.get("attributes").and_then(Value::as_object);
        let measured = attrs.and_then(|a| a.get("measuredHeight")).and_then(number);
        let height = measured.or_else(|| Some(round3(zmax? - zmin?)).filter(|h| *h > 0.0));
        if let Some(h) = height {
            m.insert(
                "height".into(),
                json!({"type": "Property", "value": h, "unitCode": "MTR"}),
            );
        }
        if let Some(z) = zmax {
            m.insert(
                "roofHeight".into(),
                json!({"type": "Property", "value": round3(z), "unitCode": "MTR"}),
            );
        }
        if let Some(z) = zmin {
            m.insert(
                "groundHeight".into(),
                json!({"type": "Property", "value": round3(z), "unitCode": "MTR"}),
            );
        }
        if let Some(v) = volume {
            m.insert(
                "volume".into(),
                json!({"type": "Property", "value": round3(v), "unitCode": "MTQ"}),
            );
        }
        let mut lods = info.lods.clone();
        for p in &parts {
            lods.extend(p.lods.iter().cloned());
        }
        if !lods.is_empty() {
            m.insert(
                "lod".into(),
                json!({"type": "Property", "value": lods.into_iter().collect::<Vec<_>>()}),
            );
        }
        if let Some(a) = attrs {
            let mut category: Vec<String> = Vec::new();
            for key in ["function", "usage"] {
                match a.get(key) {
                    Some(Value::Array(items)) => {
                        category.extend(items.iter().filter_map(scalar_text))
                    }
                    Some(v) => category.extend(scalar_text(v)),
                    None => {}
                }
            }
            category.retain(|c| !c.is_empty());
            category.dedup();
            if !category.is_empty() {
                m.insert(
                    "category".into(),
                    json!({"type": "Property", "value": category}),
                );
            }
            if !a.is_empty() {
                m.insert(
                    "cityjsonAttributes".into(),
                    json!({"type": "JsonProperty", "json": a}),
                );
            }
        }
        let parents: Vec<String> = o
            .get("parents")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .filter_map(|p| {
                        let pty = objects.get(p)?.get("type")?.as_str()?;
                        matches!(pty, "Building" | "BuildingPart").then(|| urn(pty, p))
                    })
                    .collect()
            })
            .unwrap_or_default();
        match parents.len() {
            0 => {}
            1 => {
                m.insert(
                    "isPartOf".into(),
                    json!({"type": "Relationship", "object": parents[0]}),
                );
            }
            _ => {
                m.insert(
                    "isPartOf".into(),
                    json!({"type": "Relationship", "object": parents}),
                );
            }
        }
        if !children.is_empty() {
            let list: Vec<Value> = children
                .iter()
                .map(|c| {
                    let cty = objects
                        .get(*c)
                        .and_then(|o| o.get("type"))
                        .and_then(Value::as_str)
                        .unwrap_or("BuildingPart");
                    json!({"object": urn(cty, c)})
                })
                .collect();
            m.insert(
                "hasPart".into(),
                json!({"type": "ListRelationship", "objectList": list}),
            );
        }
        let e = twin_model::ngsi::parse_entity(
            &Value::Object(m),
            &Context::core(),
            self.now,
            &self.prov,
        )
        .map_err(|e| format!("not a valid entity: {e}"))?;
        Ok((e, method))
    }
}

fn parse_transform(t: &Value) -> Result<Transform, String> {
    let three = |name: &str, nonzero: bool| -> Result<[f64; 3], String> {
        let a = t
            .get(name)
            .and_then(Value::as_array)
            .filter(|a| a.len() == 3)
            .ok_or_else(|| format!("\"{name}\" must be an array of 3 numbers"))?;
        let mut out = [0.0; 3];
        for (k, v) in a.iter().enumerate() {
            out[k] = v
                .as_f64()
                .filter(|x| x.is_finite() && (!nonzero || *x != 0.0))
                .ok_or_else(|| {
                    format!(
                        "\"{name}\" must hold 3 finite{} numbers, got {v}",
                        if nonzero { " non-zero" } else { "" }
                    )
                })?;
        }
        Ok(out)
    };
    Ok(Transform {
        scale: three("scale", true)?,
        translate: three("translate", false)?,
    })
}

/// Vertices in metres for areas and volumes: as they are in a projected CRS; for longitude/latitude and Web Mercator,
/// a local equirectangular frame around the first vertex.
fn metric_vertices(verts: &[P3], crs: &Crs) -> Result<Vec<P3>, String> {
    if crs.is_metric() || verts.is_empty() {
        return Ok(verts.to_vec());
    }
    const R: f64 = 6_371_008.8;
    let ll = |p: &P3| crs.to_wgs84(p[0], p[1]);
    let (lon0, lat0) = ll(&verts[0]).map_err(|e| format!("vertex 0: {e}"))?;
    let k = lat0.to_radians().cos();
    verts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (lon, lat) = ll(p).map_err(|e| format!("vertex {i}: {e}"))?;
            Ok([
                R * k * (lon - lon0).to_radians(),
                R * (lat - lat0).to_radians(),
                p[2],
            ])
        })
        .collect()
}

fn object_info(o: &Value, verts: &[P3], metric: &[P3]) -> Result<Info, String> {
    let mut geoms: Vec<Geom> = Vec::new();
    match o.get("geometry") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for (i, g) in list.iter().enumerate() {
                if let Some(g) = geom::parse_geometry(g, verts.len())
                    .map_err(|e| format!("geometry {i}: {e}"))?
                {
                    geoms.push(g);
                }
            }
        }
        Some(_) => return Err("\"geometry\" must be an array".into()),
    }
    let footprint = geom::footprint(&geoms, metric);
    let body: Vec<&Geom> = if geoms.iter().any(|g| g.lod_num >= 1.0) {
        geoms.iter().filter(|g| g.lod_num >= 1.0).collect()
    } else {
        geoms.iter().collect()
    };
    let zs = || {
        body.iter()
            .flat_map(|g| g.faces())
            .flat_map(|f| f.rings.iter().flatten())
            .map(|&i| verts[i][2])
    };
    let zmin = zs().reduce(f64::min);
    let zmax = zs().reduce(f64::max);
    let mut solids: Vec<&Geom> = geoms.iter().filter(|g| g.solid).collect();
    solids.sort_by(|a, b| b.lod_num.total_cmp(&a.lod_num));
    let volume = solids.iter().find_map(|g| geom::volume(g, metric));
    let lods = geoms.iter().map(|g| g.lod.clone()).collect();
    Ok(Info {
        footprint,
        zmin,
        zmax,
        volume,
        lods,
    })
}

/// A polygon's coordinates (closed rings of [lon, lat]) in WGS84.
fn polygon_wgs84(p: &IdxPolygon, verts: &[P3], crs: &Crs) -> Result<Value, String> {
    let ring = |r: &[usize]| -> Result<Value, String> {
        let mut out = Vec::with_capacity(r.len() + 1);
        for &i in r.iter().chain(r.first()) {
            let (lon, lat) = crs
                .to_wgs84(verts[i][0], verts[i][1])
                .map_err(|e| format!("vertex {i}: {e}"))?;
            out.push(json!([round8(lon), round8(lat)]));
        }
        Ok(Value::Array(out))
    };
    let mut rings = vec![ring(&p.exterior)?];
    for h in &p.holes {
        rings.push(ring(h)?);
    }
    Ok(Value::Array(rings))
}

/// `urn:ngsi-ld:<type>:<id>` with the id percent-encoded outside `A-Za-z0-9-._~:`.
pub fn urn(ty: &str, id: &str) -> String {
    let mut out = format!("urn:ngsi-ld:{ty}:");
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|x: &f64| x.is_finite())
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn round8(x: f64) -> f64 {
    (x * 1e8).round() / 1e8
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 60 {
        format!(
            "{}...",
            &s[..s.char_indices().nth(57).map_or(s.len(), |(i, _)| i)]
        )
    } else {
        s
    }
}
