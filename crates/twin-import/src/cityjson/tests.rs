//! Tests of the CityJSON reader on the real files in `shared/data/cityjson` (Delft, Rotterdam, Den Haag), synthetic
//! documents, CityJSONSeq, and corrupted copies (bad indices, truncation, byte flips) that must never panic.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::TimeZone;
use serde_json::{json, Value};
use twin_model::entity::iri;
use twin_model::Entity;

use super::*;

const DEFAULT: &str = "https://uri.etsi.org/ngsi-ld/default-context/";

/// The directory of the real CityJSON files, or None (with the reason printed) when absent outside CI.
fn data_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/cityjson");
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("test data missing: {} (CI=true)", dir.display());
    }
    eprintln!("skipping: test data directory {} is absent", dir.display());
    None
}

fn options(crs: Option<&str>) -> CityJsonOptions {
    CityJsonOptions {
        default_crs: crs.map(str::to_string),
        now: Some(Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap()),
        ..Default::default()
    }
}

fn read_all(path: &Path, crs: Option<&str>) -> Result<(CityJsonSummary, Vec<Entity>), ImportError> {
    let mut out = Vec::new();
    let s = read_cityjson_with(path, &options(crs), &mut |e| {
        out.push(e);
        Ok(())
    })?;
    Ok((s, out))
}

fn parse_all(text: &str, crs: Option<&str>) -> Result<(CityJsonSummary, Vec<Entity>), ImportError> {
    let mut out = Vec::new();
    let s = parse_cityjson(text.as_bytes(), "test.json", &options(crs), &mut |e| {
        out.push(e);
        Ok(())
    })?;
    Ok((s, out))
}

fn prop<'a>(e: &'a Entity, name: &str) -> Option<&'a Value> {
    e.attrs
        .get(&format!("{DEFAULT}{name}"))
        .and_then(|v| v.first())
        .map(|a| &a.value)
}

fn num(e: &Entity, name: &str) -> Option<f64> {
    prop(e, name).and_then(Value::as_f64)
}

/// Every [lon, lat] position of the entity's footprint.
fn positions(e: &Entity) -> Vec<(f64, f64)> {
    fn walk(v: &Value, out: &mut Vec<(f64, f64)>) {
        match v.as_array() {
            Some(a) if a.len() == 2 && a.iter().all(Value::is_number) => {
                out.push((a[0].as_f64().unwrap(), a[1].as_f64().unwrap()))
            }
            Some(a) => a.iter().for_each(|i| walk(i, out)),
            None => {}
        }
    }
    let mut out = Vec::new();
    for g in e.geometries(iri::LOCATION) {
        walk(&g["coordinates"], &mut out);
    }
    out
}

fn all_within(entities: &[Entity], lon: (f64, f64), lat: (f64, f64)) {
    for e in entities {
        let p = positions(e);
        assert!(!p.is_empty(), "{} has no footprint", e.id);
        for (x, y) in p {
            assert!(
                x > lon.0 && x < lon.1 && y > lat.0 && y < lat.1,
                "{}: ({x}, {y}) out of place",
                e.id
            );
        }
    }
}

/// RD New (EPSG:28992) to WGS84 by the published polynomial approximation of Schreutelkamp and Strang van Hees
/// ("Benaderingsformules voor de transformatie tussen RD- en WGS84-kaartcoördinaten", 2001), good to about 1 m.
fn rd_to_wgs84(x: f64, y: f64) -> (f64, f64) {
    let dx = (x - 155_000.0) * 1e-5;
    let dy = (y - 463_000.0) * 1e-5;
    let n = 3235.65389 * dy
        - 32.58297 * dx.powi(2)
        - 0.2475 * dy.powi(2)
        - 0.84978 * dx.powi(2) * dy
        - 0.0655 * dy.powi(3)
        - 0.01709 * dx.powi(2) * dy.powi(2)
        - 0.00738 * dx
        + 0.0053 * dx.powi(4)
        - 0.00039 * dx.powi(2) * dy.powi(3)
        + 0.00033 * dx.powi(4) * dy
        - 0.00012 * dx * dy;
    let e = 5260.52916 * dx + 105.94684 * dx * dy + 2.45656 * dx * dy.powi(2)
        - 0.81885 * dx.powi(3)
        + 0.05594 * dx * dy.powi(3)
        - 0.05607 * dx.powi(3) * dy
        + 0.01199 * dy
        - 0.00256 * dx.powi(3) * dy.powi(2)
        + 0.00128 * dx * dy.powi(4)
        + 0.00022 * dy.powi(2)
        - 0.00022 * dx.powi(2)
        + 0.00026 * dx.powi(5);
    (5.387206 + e / 3600.0, 52.15517 + n / 3600.0)
}

/// Distance in metres between two nearby lon/lat points.
fn metres(a: (f64, f64), b: (f64, f64)) -> f64 {
    let k = a.1.to_radians().cos();
    let dx = (a.0 - b.0).to_radians() * 6_371_000.0 * k;
    let dy = (a.1 - b.1).to_radians() * 6_371_000.0;
    (dx * dx + dy * dy).sqrt()
}

#[test]
fn delft_buildings() {
    let Some(dir) = data_dir() else { return };
    let path = dir.join("delft.json");
    let (s, es) = read_all(&path, None).unwrap();
    assert_eq!(s.version, "2.0");
    assert_eq!(s.crs, "EPSG:7415");
    assert!(s.crs_from_file);
    assert_eq!(s.buildings, 160);
    assert_eq!(s.building_parts, 0);
    assert_eq!(s.skipped.get("Road"), Some(&143));
    assert_eq!(es.len(), 160);
    assert!(es
        .iter()
        .all(|e| e.types == vec![format!("{DEFAULT}Building")]
            && e.id.starts_with("urn:ngsi-ld:Building:b")));
    all_within(&es, (4.30, 4.42), (51.96, 52.04));

    let raw: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for e in &es {
        let id = prop(e, "cityObjectId").and_then(Value::as_str).unwrap();
        let o = &raw["CityObjects"][id];
        assert_eq!(
            num(e, "height"),
            o["attributes"]["measuredHeight"].as_f64(),
            "{id}"
        );
        assert_eq!(prop(e, "lod"), Some(&json!(["1"])));
        let attrs = &e.attrs[&format!("{DEFAULT}cityjsonAttributes")][0];
        assert_eq!(attrs.kind, twin_model::AttrKind::JsonProperty);
        assert_eq!(&attrs.value, &o["attributes"]);
        assert_eq!(attrs.provenance.channel.as_deref(), Some("import:cityjson"));
        let (g, r) = (
            num(e, "groundHeight").unwrap(),
            num(e, "roofHeight").unwrap(),
        );
        assert!(
            r > g && (-5.0..60.0).contains(&g) && r < 100.0,
            "{id}: {g} {r}"
        );
    }
    // the LoD1 solids are closed: every building has a volume, close to footprint area x extrusion height
    assert!(
        es.iter().all(|e| num(e, "volume").is_some_and(|v| v > 0.0)),
        "{:?}",
        s
    );
    eprintln!("delft footprints: {:?}", s.footprints);
}

/// One building checked by hand against the raw file: BAG pand 0503100000000035 (measuredHeight 6, label point
/// RD 85012.966 447473.243), with RD → WGS84 done by the independent polynomial above.
#[test]
fn delft_hand_checked_building() {
    let Some(dir) = data_dir() else { return };
    let path = dir.join("delft.json");
    let (_, es) = read_all(&path, None).unwrap();
    let id = "b1105d28c-00ba-11e6-b420-2bdcc4ab5d7f";
    let e = es
        .iter()
        .find(|e| e.id == format!("urn:ngsi-ld:Building:{id}"))
        .unwrap();
    assert_eq!(num(e, "height"), Some(6.0));
    assert_eq!(
        prop(e, "cityjsonAttributes").unwrap()["identificatiebagpnd"],
        json!("503100000000035")
    );

    let raw: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let (sc, tr) = (&raw["transform"]["scale"], &raw["transform"]["translate"]);
    let mut idx = Vec::new();
    fn collect(v: &Value, out: &mut Vec<usize>) {
        match v {
            Value::Array(a) => a.iter().for_each(|i| collect(i, out)),
            Value::Number(n) => out.push(n.as_u64().unwrap() as usize),
            _ => {}
        }
    }
    collect(
        &raw["CityObjects"][id]["geometry"][0]["boundaries"],
        &mut idx,
    );
    let pts: Vec<(f64, f64)> = idx
        .iter()
        .map(|&i| {
            let v = &raw["vertices"][i];
            let x = v[0].as_f64().unwrap() * sc[0].as_f64().unwrap() + tr[0].as_f64().unwrap();
            let y = v[1].as_f64().unwrap() * sc[1].as_f64().unwrap() + tr[1].as_f64().unwrap();
            rd_to_wgs84(x, y)
        })
        .collect();
    // every footprint corner is a vertex of the building, within 1.5 m of where the polynomial puts it
    let fp = positions(e);
    assert!(fp.len() >= 4);
    for p in &fp {
        let d = pts
            .iter()
            .map(|q| metres(*p, *q))
            .fold(f64::INFINITY, f64::min);
        assert!(
            d < 1.5,
            "footprint corner {p:?} is {d:.2} m from the nearest raw vertex"
        );
    }
    // and the footprint's extent matches the raw vertices' extent
    let ext = |ps: &[(f64, f64)]| {
        ps.iter()
            .fold((f64::MAX, f64::MAX, f64::MIN, f64::MIN), |a, p| {
                (a.0.min(p.0), a.1.min(p.1), a.2.max(p.0), a.3.max(p.1))
            })
    };
    let (a, b) = (ext(&fp), ext(&pts));
    assert!(metres((a.0, a.1), (b.0, b.1)) < 1.5 && metres((a.2, a.3), (b.2, b.3)) < 1.5);
    // the BAG label point lies within the footprint's extent (give or take the projection error)
    let label = rd_to_wgs84(85_012.966, 447_473.243);
    assert!(
        label.0 > a.0 - 2e-5
            && label.0 < a.2 + 2e-5
            && label.1 > a.1 - 2e-5
            && label.1 < a.3 + 2e-5
    );
    // the footprint is one polygon, and footprint area x (roof - ground) is the volume of this flat-roofed LoD1 block
    let g = e.geometries(iri::LOCATION).next().unwrap();
    assert_eq!(g["type"], "Polygon", "{g}");
    let ring: Vec<(f64, f64)> = g["coordinates"][0]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_f64().unwrap(), p[1].as_f64().unwrap()))
        .collect();
    let to_m = |p: &(f64, f64)| {
        (
            (p.0 - ring[0].0).to_radians() * 6_371_000.0 * ring[0].1.to_radians().cos(),
            (p.1 - ring[0].1).to_radians() * 6_371_000.0,
        )
    };
    let area: f64 = ring
        .windows(2)
        .map(|w| {
            let (a, b) = (to_m(&w[0]), to_m(&w[1]));
            a.0 * b.1 - b.0 * a.1
        })
        .sum::<f64>()
        / 2.0;
    assert!(area > 0.0, "exterior ring must be counter-clockwise");
    let extrusion = num(e, "roofHeight").unwrap() - num(e, "groundHeight").unwrap();
    let volume = num(e, "volume").unwrap();
    assert!(
        (volume / (area * extrusion) - 1.0).abs() < 0.01,
        "volume {volume} vs area {area} x {extrusion}"
    );
    // about 52.0096 N 4.36 E, in Delft
    assert!(
        (label.1 - 52.01).abs() < 0.01 && (label.0 - 4.36).abs() < 0.02,
        "{label:?}"
    );
}

#[test]
fn rotterdam_subset_needs_a_crs_and_lands_in_rotterdam() {
    let Some(dir) = data_dir() else { return };
    let path = dir.join("rotterdam_subset.json");
    let err = read_all(&path, None).unwrap_err();
    assert_eq!(err.location, "metadata.referenceSystem");
    assert!(err.reason.contains("no reference system"), "{err}");
    let (s, es) = read_all(&path, Some("EPSG:7415")).unwrap();
    assert_eq!(
        (s.version.as_str(), s.crs.as_str(), s.crs_from_file),
        ("2.0", "EPSG:7415", false)
    );
    assert_eq!(s.buildings, 16);
    assert_eq!(es.len(), 16);
    // Rotterdam (Delfshaven, west of the centre)
    all_within(&es, (4.40, 4.55), (51.88, 51.96));
    // LoD2 with semantics: footprints from the GroundSurfaces; ids with braces are percent-encoded
    assert_eq!(
        s.footprints.get("groundSurface"),
        Some(&16),
        "{:?}",
        s.footprints
    );
    assert!(es
        .iter()
        .all(|e| e.id.starts_with("urn:ngsi-ld:Building:%7B") && e.id.ends_with("%7D")));
    for e in &es {
        let h = num(e, "height").unwrap();
        let (g, r) = (
            num(e, "groundHeight").unwrap(),
            num(e, "roofHeight").unwrap(),
        );
        assert!(
            (h - (r - g)).abs() < 1e-6 && h > 2.0 && h < 100.0,
            "{}: {h}",
            e.id
        );
    }
}

#[test]
fn den_haag_buildings_and_parts() {
    let Some(dir) = data_dir() else { return };
    let path = dir.join("DH_01_subs.city.json");
    let (s, es) = read_all(&path, Some("urn:ogc:def:crs:EPSG::7415")).unwrap();
    assert_eq!(s.version, "1.1");
    assert_eq!((s.buildings, s.building_parts), (4, 8));
    // The Hague
    all_within(&es, (4.20, 4.40), (52.00, 52.14));
    let by_id: BTreeMap<&str, &Entity> = es.iter().map(|e| (e.id.as_str(), e)).collect();
    let parent = by_id["urn:ngsi-ld:Building:GUID_13974D93-CB4F-4B5A-AB1E-577DD9928CF2"];
    let has_part = &parent.attrs[&format!("{DEFAULT}hasPart")][0];
    assert_eq!(has_part.value.as_array().unwrap().len(), 3);
    assert_eq!(prop(parent, "footprintSource"), Some(&json!("parts")));
    assert_eq!(
        parent.geometries(iri::LOCATION).next().unwrap()["type"],
        "MultiPolygon"
    );
    let part = by_id["urn:ngsi-ld:BuildingPart:GUID_13974D93-CB4F-4B5A-AB1E-577DD9928CF2_1"];
    assert_eq!(part.types, vec![format!("{DEFAULT}BuildingPart")]);
    assert_eq!(
        part.attrs[&format!("{DEFAULT}isPartOf")][0].value,
        json!("urn:ngsi-ld:Building:GUID_13974D93-CB4F-4B5A-AB1E-577DD9928CF2")
    );
    // the parent's roof is its highest part's ridge: AbsoluteRidgeHeight 14.467
    assert!((num(parent, "roofHeight").unwrap() - 14.467).abs() < 0.01);
    for e in es.iter().filter(|e| e.types[0].ends_with("BuildingPart")) {
        let ridge = prop(e, "cityjsonAttributes").unwrap()["AbsoluteRidgeHeight"]
            .as_f64()
            .unwrap();
        assert!(
            (num(e, "roofHeight").unwrap() - ridge).abs() < 0.01,
            "{}",
            e.id
        );
        assert!(num(e, "volume").unwrap() > 0.1, "{}", e.id); // one part is a 0.5 m³ chimney-sized box
    }
    let parts_volume: f64 = es
        .iter()
        .filter(|e| e.id.contains("13974D93") && e.types[0].ends_with("BuildingPart"))
        .map(|e| num(e, "volume").unwrap())
        .sum();
    assert!((num(parent, "volume").unwrap() - parts_volume).abs() < 0.01);
}

#[test]
fn reimport_is_identical() {
    let Some(dir) = data_dir() else { return };
    let a = read_all(&dir.join("DH_01_subs.city.json"), Some("EPSG:7415")).unwrap();
    let b = read_all(&dir.join("DH_01_subs.city.json"), Some("EPSG:7415")).unwrap();
    assert_eq!(a, b);
}

/// Splits a CityJSON document into a CityJSONSeq stream: header, then one feature per top-level object.
fn to_seq(doc: &Value) -> String {
    let mut header = doc.clone();
    header["CityObjects"] = json!({});
    header["vertices"] = json!([]);
    let mut out = vec![header.to_string()];
    let objects = doc["CityObjects"].as_object().unwrap();
    for (id, o) in objects.iter().filter(|(_, o)| o.get("parents").is_none()) {
        let mut ids = vec![id.clone()];
        for c in o
            .get("children")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            ids.push(c.as_str().unwrap().to_string());
        }
        let mut map: BTreeMap<u64, u64> = BTreeMap::new();
        let mut verts = Vec::new();
        fn remap(
            v: &mut Value,
            map: &mut BTreeMap<u64, u64>,
            verts: &mut Vec<Value>,
            all: &[Value],
        ) {
            match v {
                Value::Array(a) => a.iter_mut().for_each(|i| remap(i, map, verts, all)),
                Value::Number(n) => {
                    let old = n.as_u64().unwrap();
                    let new = *map.entry(old).or_insert_with(|| {
                        verts.push(all[old as usize].clone());
                        verts.len() as u64 - 1
                    });
                    *v = json!(new);
                }
                _ => {}
            }
        }
        let mut objs = serde_json::Map::new();
        for i in &ids {
            let mut o = objects[i].clone();
            if let Some(gs) = o.get_mut("geometry").and_then(Value::as_array_mut) {
                for g in gs {
                    remap(
                        &mut g["boundaries"],
                        &mut map,
                        &mut verts,
                        doc["vertices"].as_array().unwrap(),
                    );
                }
            }
            objs.insert(i.clone(), o);
        }
        out.push(
            json!({"type": "CityJSONFeature", "id": id, "CityObjects": objs, "vertices": verts})
                .to_string(),
        );
    }
    out.join("\n") + "\n"
}

#[test]
fn cityjsonseq_gives_the_same_entities() {
    let Some(dir) = data_dir() else { return };
    let text = std::fs::read_to_string(dir.join("DH_01_subs.city.json")).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let (s1, mut a) = parse_all(&text, Some("EPSG:7415")).unwrap();
    let (s2, mut b) = parse_all(&to_seq(&doc), Some("EPSG:7415")).unwrap();
    assert!(!s1.sequence && s2.sequence);
    assert_eq!(s2.features, 4);
    a.sort_by(|x, y| x.id.cmp(&y.id));
    b.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(a, b);
    // a feature line that is not a CityJSONFeature is reported with its line
    let bad = to_seq(&doc) + "{\"type\": \"CityJSON\"}\n";
    let err = parse_all(&bad, Some("EPSG:7415")).unwrap_err();
    assert_eq!(err.location, "line 6");
}

fn tiny() -> Value {
    json!({
        "type": "CityJSON", "version": "2.0",
        "transform": {"scale": [0.001, 0.001, 0.001], "translate": [85000.0, 447000.0, 0.0]},
        "metadata": {"referenceSystem": "https://www.opengis.net/def/crs/EPSG/0/28992"},
        "CityObjects": {
            "NL.IMBAG.Pand.0503100000000010": {
                "type": "Building",
                "attributes": {"function": "residential", "roofType": "flat"},
                "geometry": [{"type": "Solid", "lod": "1.2", "boundaries": [[
                    [[0, 2, 1]], [[0, 3, 2]], [[4, 5, 6, 7]],
                    [[0, 1, 5, 4]], [[1, 2, 6, 5]], [[2, 3, 7, 6]], [[3, 0, 4, 7]]
                ]]}]
            },
            "tree": {"type": "SolitaryVegetationObject"}
        },
        "vertices": [[0, 0, 0], [10000, 0, 0], [10000, 8000, 0], [0, 8000, 0],
                     [0, 0, 5000], [10000, 0, 5000], [10000, 8000, 5000], [0, 8000, 5000]]
    })
}

#[test]
fn a_small_building_in_full() {
    let (s, es) = parse_all(&tiny().to_string(), None).unwrap();
    assert_eq!(
        (s.buildings, s.skipped.get("SolitaryVegetationObject")),
        (1, Some(&1))
    );
    let e = &es[0];
    assert_eq!(e.id, "urn:ngsi-ld:Building:NL.IMBAG.Pand.0503100000000010");
    assert_eq!(num(e, "height"), Some(5.0));
    assert_eq!(num(e, "volume"), Some(400.0));
    assert_eq!(
        (num(e, "groundHeight"), num(e, "roofHeight")),
        (Some(0.0), Some(5.0))
    );
    assert_eq!(prop(e, "category"), Some(&json!(["residential"])));
    assert_eq!(prop(e, "lod"), Some(&json!(["1.2"])));
    assert_eq!(prop(e, "footprintSource"), Some(&json!("bottomFaces")));
    let g = e.geometries(iri::LOCATION).next().unwrap();
    assert_eq!(g["type"], "Polygon");
    assert_eq!(g["coordinates"][0].as_array().unwrap().len(), 5);
    let p = positions(e);
    let rd = rd_to_wgs84(85_000.0, 447_000.0);
    assert!(p.iter().any(|q| metres(*q, rd) < 1.5), "{p:?} vs {rd:?}");
    assert_eq!(
        e.attrs[&format!("{DEFAULT}height")][0].unit_code.as_deref(),
        Some("MTR")
    );
}

#[test]
fn other_crss() {
    // the same box in UTM 31N, in lon/lat, in Web Mercator: same volume (within the projection's scale error)
    let mut doc = tiny();
    doc["metadata"]["referenceSystem"] = json!("urn:ogc:def:crs:EPSG::32631");
    doc["transform"]["translate"] = json!([600000.0, 5760000.0, 0.0]);
    let (_, es) = parse_all(&doc.to_string(), None).unwrap();
    assert_eq!(num(&es[0], "volume"), Some(400.0));
    let (lon, lat) = positions(&es[0])[0];
    assert!((4.0..5.0).contains(&lon) && (51.0..52.5).contains(&lat));

    doc["metadata"]["referenceSystem"] = json!("https://www.opengis.net/def/crs/EPSG/0/4326");
    doc["transform"] = json!({"scale": [1e-7, 1e-7, 0.001], "translate": [4.35, 52.0, 0.0]});
    let (_, es) = parse_all(&doc.to_string(), None).unwrap();
    let v = num(&es[0], "volume").unwrap();
    // 0.001° x 0.0008° at 52° N: about 68.6 m x 89 m x 5 m
    assert!(
        (v / (0.001f64.to_radians()
            * 6_371_008.8
            * 52f64.to_radians().cos()
            * 0.0008f64.to_radians()
            * 6_371_008.8
            * 5.0)
            - 1.0)
            .abs()
            < 1e-3
    );
    assert!(positions(&es[0])
        .iter()
        .all(|p| (p.0 - 4.35).abs() < 0.01 && (p.1 - 52.0).abs() < 0.01));

    doc["metadata"]["referenceSystem"] = json!("EPSG:3857");
    doc["transform"] =
        json!({"scale": [0.001, 0.001, 0.001], "translate": [484_000.0, 6_800_000.0, 0.0]});
    let (_, es) = parse_all(&doc.to_string(), None).unwrap();
    let v = num(&es[0], "volume").unwrap();
    let k = 52f64.to_radians().cos().powi(2);
    assert!((v / (400.0 * k) - 1.0).abs() < 0.01, "{v}");
}

#[test]
fn errors_name_the_place() {
    let check = |doc: Value, loc: &str, reason: &str| {
        let err = parse_all(&doc.to_string(), None).unwrap_err();
        assert_eq!(err.file, "test.json");
        assert!(err.location.contains(loc), "{err}");
        assert!(err.reason.contains(reason), "{err}");
    };
    let id = "CityObject \"NL.IMBAG.Pand.0503100000000010\"";
    let mut d = tiny();
    d["CityObjects"]["NL.IMBAG.Pand.0503100000000010"]["geometry"][0]["boundaries"][0][1][0][2] =
        json!(8);
    check(d, id, "vertex index 8 is out of range");
    let mut d = tiny();
    d["CityObjects"]["NL.IMBAG.Pand.0503100000000010"]["geometry"][0]["boundaries"][0][1][0][2] =
        json!(-3);
    check(d, id, "not a non-negative integer");
    let mut d = tiny();
    d["CityObjects"]["NL.IMBAG.Pand.0503100000000010"]["geometry"][0]["type"] = json!("Solidd");
    check(d, id, "unknown geometry type");
    let mut d = tiny();
    d.as_object_mut().unwrap().remove("vertices");
    check(d, "", "no \"vertices\"");
    let mut d = tiny();
    d["vertices"][3] = json!([1, 2]);
    check(d, "vertices", "vertex 3");
    let mut d = tiny();
    d["type"] = json!("FeatureCollection");
    check(d, "", "expected \"CityJSON\"");
    let mut d = tiny();
    d["version"] = json!("1.0");
    check(d, "", "unsupported CityJSON version");
    let mut d = tiny();
    d["transform"]["scale"] = json!([0.001, 0.0, 0.001]);
    check(d, "transform", "non-zero");
    let mut d = tiny();
    d["transform"]["translate"] = json!([1, 2]);
    check(d, "transform", "translate");
    let mut d = tiny();
    d["metadata"]["referenceSystem"] = json!("https://www.opengis.net/def/crs/EPSG/0/2056");
    check(
        d,
        "metadata.referenceSystem",
        "unsupported reference system EPSG:2056",
    );
    let mut d = tiny();
    d["metadata"]["referenceSystem"] = json!("EPSG:4326"); // RD metres read as degrees
    check(d, "vertices", "valid longitude/latitude");
    let err = parse_all(
        "{\"type\": \"CityJSON\", \"version\": \"2.0\",\n \"CityObjects\": {",
        None,
    )
    .unwrap_err();
    assert!(err.reason.contains("invalid JSON"), "{err}");
    // the sink's own errors come back as they are
    let err = parse_cityjson(
        tiny().to_string().as_bytes(),
        "t",
        &options(None),
        &mut |_| Err(ImportError::file("store", "full")),
    )
    .unwrap_err();
    assert_eq!(err.reason, "full");
}

#[test]
fn byte_order_mark_and_pretty_printing() {
    let pretty = serde_json::to_string_pretty(&tiny()).unwrap();
    assert_eq!(parse_all(&pretty, None).unwrap().0.buildings, 1);
    assert_eq!(
        parse_all(&format!("\u{feff}{}", tiny()), None)
            .unwrap()
            .0
            .buildings,
        1
    );
}

#[test]
fn urns_are_safe_and_stable() {
    assert_eq!(
        urn("Building", "NL.IMBAG.Pand.0503100000000010"),
        "urn:ngsi-ld:Building:NL.IMBAG.Pand.0503100000000010"
    );
    assert_eq!(
        urn("Building", "{A B}/é"),
        "urn:ngsi-ld:Building:%7BA%20B%7D%2F%C3%A9"
    );
}

/// A tiny deterministic generator for the corruption tests.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) as usize) % n.max(1)
    }
}

fn must_not_panic(bytes: &[u8], crs: Option<&str>) -> bool {
    let mut n = 0usize;
    let r = parse_cityjson(bytes, "corrupt.json", &options(crs), &mut |e| {
        assert!(e.id.starts_with("urn:ngsi-ld:"));
        n += 1;
        Ok(())
    });
    r.is_ok()
}

#[test]
fn corrupted_copies_never_panic() {
    let Some(dir) = data_dir() else { return };
    let mut rng = Lcg(42);
    for (name, copies) in [
        ("DH_01_subs.city.json", 300),
        ("rotterdam_subset.json", 200),
        ("delft.json", 12),
    ] {
        let orig = std::fs::read(dir.join(name)).unwrap();
        let (mut ok, mut failed) = (0, 0);
        // random byte flips
        for _ in 0..copies {
            let mut b = orig.clone();
            for _ in 0..1 + rng.next(6) {
                let i = rng.next(b.len());
                b[i] = match rng.next(3) {
                    0 => b[i] ^ (1 << rng.next(8)),
                    1 => b"0123456789,[]{}\"-.e"[rng.next(19)],
                    _ => rng.next(256) as u8,
                };
            }
            if must_not_panic(&b, Some("EPSG:7415")) {
                ok += 1
            } else {
                failed += 1
            }
        }
        // truncations
        for k in 1..20 {
            let cut = orig.len() * k / 20;
            assert!(
                !must_not_panic(&orig[..cut], Some("EPSG:7415")),
                "{name} cut at {cut} was accepted"
            );
        }
        eprintln!("{name}: {ok} corrupted copies read, {failed} rejected");
    }
    // every vertex index of one building out of range, one at a time in a few places
    let text = std::fs::read_to_string(dir.join("rotterdam_subset.json")).unwrap();
    let mut doc: Value = serde_json::from_str(&text).unwrap();
    let first = doc["CityObjects"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    doc["CityObjects"][&first]["geometry"][0]["boundaries"][2][0][1] = json!(1_000_000);
    let err = parse_all(&doc.to_string(), Some("EPSG:7415")).unwrap_err();
    assert_eq!(err.location, format!("CityObject {first:?}"));
    assert!(
        err.reason.contains("geometry 0") && err.reason.contains("1000000"),
        "{err}"
    );
}

/// Replaces a few JSON values (indices, coordinates, strings, arrays) with odd ones, in place.
fn mutate(v: &mut Value, rng: &mut Lcg, rate: usize) {
    match v {
        Value::Array(a) => a.iter_mut().for_each(|i| mutate(i, rng, rate)),
        Value::Object(m) => m.values_mut().for_each(|i| mutate(i, rng, rate)),
        leaf => {
            if rng.next(rate) == 0 {
                *leaf = match rng.next(8) {
                    0 => json!(-1),
                    1 => json!(rng.next(1_000_000)),
                    2 => json!(1e300),
                    3 => json!("x"),
                    4 => Value::Null,
                    5 => json!([]),
                    6 => json!(0.5),
                    _ => json!({}),
                };
            }
        }
    }
}

#[test]
fn mutated_values_never_panic() {
    let Some(dir) = data_dir() else { return };
    let mut rng = Lcg(7);
    for name in ["DH_01_subs.city.json", "rotterdam_subset.json"] {
        let doc: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(name)).unwrap()).unwrap();
        let (mut ok, mut failed) = (0, 0);
        for rate in [50, 500, 5000, 20000] {
            for _ in 0..40 {
                let mut d = doc.clone();
                mutate(&mut d, &mut rng, rate);
                if must_not_panic(d.to_string().as_bytes(), Some("EPSG:7415")) {
                    ok += 1
                } else {
                    failed += 1
                }
            }
        }
        eprintln!("{name}: {ok} mutated copies read, {failed} rejected");
    }
}
