//! `urbantwin import` on the real reference files: counts, idempotent re-import, and all-or-nothing on bad input.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn shared() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    if p.is_dir() {
        Some(p)
    } else if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true but {} is missing", p.display());
    } else {
        eprintln!("skipping: shared data directory {} not found", p.display());
        None
    }
}

fn import(args: &[&str]) -> (bool, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_urbantwin"))
        .arg("import")
        .args(args)
        .arg("--json")
        .output()
        .expect("run urbantwin");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let v = serde_json::from_str(stdout.trim()).unwrap_or(Value::Null);
    (out.status.success(), v, stderr)
}

fn count(db: &Path, ty: &str) -> i64 {
    let c = rusqlite::Connection::open(db).unwrap();
    c.query_row(
        "SELECT count(*) FROM entity_types WHERE type = ?1",
        [format!("https://uri.etsi.org/ngsi-ld/default-context/{ty}")],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn osm_import_is_idempotent_and_all_or_nothing() {
    let Some(data) = shared() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("city.db");
    let dbs = db.to_str().unwrap();
    let pbf = data.join("osm/helsinki.osm.pbf");
    let (ok, first, err) = import(&["osm", pbf.to_str().unwrap(), "--db", dbs]);
    assert!(ok, "{err}");
    let created = first["created"].as_u64().unwrap();
    assert!(created > 8000, "{first}");
    let (roads, links, buildings, pois) = (
        count(&db, "RoadSegment"),
        count(&db, "RoadLink"),
        count(&db, "Building"),
        count(&db, "PointOfInterest"),
    );
    assert_eq!(
        (roads, buildings, pois),
        (2308, 446, 1534),
        "the reader's counts for the Helsinki extract"
    );
    assert!(links > roads, "ways are split into links at intersections");
    // again: same entities, nothing new
    let (ok, again, err) = import(&["osm", pbf.to_str().unwrap(), "--db", dbs]);
    assert!(ok, "{err}");
    assert_eq!(
        (again["created"].as_u64(), again["unchanged"].as_u64()),
        (Some(0), Some(created))
    );
    assert_eq!(count(&db, "Building"), 446);
    // a truncated copy fails, names the file, and changes nothing
    let bytes = std::fs::read(&pbf).unwrap();
    let cut = dir.path().join("cut.osm.pbf");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let (ok, _, err) = import(&[
        "osm",
        cut.to_str().unwrap(),
        "--db",
        dbs,
        "--dataset",
        "other",
    ]);
    assert!(!ok);
    assert!(
        err.contains("cut.osm.pbf") && err.contains("nothing was written"),
        "{err}"
    );
    assert_eq!(count(&db, "Building"), 446);
    let c = rusqlite::Connection::open(&db).unwrap();
    let ds: i64 = c
        .query_row(
            "SELECT count(*) FROM datasets WHERE id LIKE '%other%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(ds, 0, "no dataset record for a failed import");
    let lic: String = c
        .query_row(
            "SELECT doc FROM datasets WHERE id = 'urn:ngsi-ld:Dataset:osm-helsinki'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        lic.contains("ODbL-1.0") && lic.contains("OpenStreetMap contributors"),
        "{lic}"
    );
}

#[test]
fn cityjson_import_needs_an_owner_and_transforms_coordinates() {
    let Some(data) = shared() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("city.db");
    let dbs = db.to_str().unwrap();
    let delft = data.join("cityjson/delft.json");
    let (ok, _, err) = import(&["cityjson", delft.to_str().unwrap(), "--db", dbs]);
    assert!(!ok && err.contains("--owner"), "{err}");
    let (ok, v, err) = import(&[
        "cityjson",
        delft.to_str().unwrap(),
        "--db",
        dbs,
        "--owner",
        "TU Delft",
        "--licence",
        "CC-BY-4.0",
    ]);
    assert!(ok, "{err}");
    assert_eq!(v["created"], 160);
    assert_eq!(count(&db, "Building"), 160);
    let rotterdam = data.join("cityjson/rotterdam_subset.json");
    let (ok, _, err) = import(&[
        "cityjson",
        rotterdam.to_str().unwrap(),
        "--db",
        dbs,
        "--owner",
        "x",
        "--licence",
        "CC0-1.0",
    ]);
    assert!(!ok && err.contains("referenceSystem"), "{err}");
    let (ok, v, err) = import(&[
        "cityjson",
        rotterdam.to_str().unwrap(),
        "--db",
        dbs,
        "--owner",
        "x",
        "--licence",
        "CC0-1.0",
        "--crs",
        "EPSG:7415",
    ]);
    assert!(ok, "{err}");
    assert_eq!(v["created"], 16);
}

#[test]
fn geojson_and_csv_imports_are_idempotent_and_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("city.db");
    let dbs = db.to_str().unwrap();
    let geojson = dir.path().join("trees.geojson");
    std::fs::write(
        &geojson,
        r#"{"type": "FeatureCollection", "features": [
          {"type": "Feature", "id": "t1", "geometry": {"type": "Point", "coordinates": [24.94, 60.17]},
           "properties": {"species": "Tilia × europaea", "height (m)": 12.5, "planted": null}},
          {"type": "Feature", "id": "t2", "geometry": {"type": "Polygon",
             "coordinates": [[[24.9, 60.1], [25.0, 60.1], [25.0, 60.2], [24.9, 60.1]]]},
           "properties": {"species": "Betula"}},
          {"type": "Feature", "id": "t3", "geometry": {"type": "MultiPolygon",
             "coordinates": [[[[0, 0], [1, 0], [1, 1], [0, 0]]], [[[2, 2], [3, 2], [3, 3], [2, 2]]]]},
           "properties": {}}]}"#,
    )
    .unwrap();
    let owned = |kind: &'static str, file: &Path, extra: &[&'static str]| {
        let mut args = vec![kind, file.to_str().unwrap(), "--db", dbs];
        args.extend_from_slice(&["--owner", "City of Helsinki", "--licence", "CC-BY-4.0"]);
        args.extend_from_slice(extra);
        args.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let run = |args: Vec<String>| import(&args.iter().map(String::as_str).collect::<Vec<_>>());
    // --type is required, and so are owner and licence
    let (ok, _, err) = run(owned("geojson", &geojson, &[]));
    assert!(!ok && err.contains("--type"), "{err}");
    let (ok, _, err) = import(&[
        "geojson",
        geojson.to_str().unwrap(),
        "--db",
        dbs,
        "--type",
        "Tree",
    ]);
    assert!(!ok && err.contains("--owner"), "{err}");
    let (ok, v, err) = run(owned("geojson", &geojson, &["--type", "Tree"]));
    assert!(ok, "{err}");
    assert_eq!(v["created"], 3, "{v}");
    assert_eq!(count(&db, "Tree"), 3);
    let (ok, v, err) = run(owned("geojson", &geojson, &["--type", "Tree"]));
    assert!(ok, "{err}");
    assert_eq!(
        (v["created"].as_u64(), v["unchanged"].as_u64()),
        (Some(0), Some(3)),
        "{v}"
    );

    let csv = dir.path().join("lights.csv");
    std::fs::write(
        &csv,
        "code,name,lng,lat,watts\nL1,\"Esplanadi, \"\"east\"\"\",24.95,60.167,40\nL2,Sörnäinen,24.96,60.18,\n",
    )
    .unwrap();
    let (ok, v, err) = run(owned(
        "csv",
        &csv,
        &["--type", "StreetLight", "--id", "code"],
    ));
    assert!(ok, "{err}");
    assert_eq!(v["created"], 2, "{v}");
    let (ok, v, err) = run(owned(
        "csv",
        &csv,
        &["--type", "StreetLight", "--id", "code"],
    ));
    assert!(ok, "{err}");
    assert_eq!(
        (v["created"].as_u64(), v["unchanged"].as_u64()),
        (Some(0), Some(2)),
        "{v}"
    );
    assert_eq!(count(&db, "StreetLight"), 2);

    // one bad row: nothing of the file is written, and the error names the line
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "code,lon,lat\nB1,24.9,60.1\nB2,24.9,60.2\nB3,24.9,north\n",
    )
    .unwrap();
    let (ok, _, err) = run(owned("csv", &bad, &["--type", "Bench", "--id", "code"]));
    assert!(!ok, "a bad row must fail the import");
    assert!(
        err.contains("bad.csv") && err.contains("line 4") && err.contains("nothing was written"),
        "{err}"
    );
    assert_eq!(count(&db, "Bench"), 0);
    let bad = dir.path().join("bad.geojson");
    std::fs::write(
        &bad,
        r#"{"type": "FeatureCollection", "features": [
          {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]}, "properties": {}},
          {"type": "Feature", "geometry": {"type": "Point", "coordinates": [200, 2]}, "properties": {}}]}"#,
    )
    .unwrap();
    let (ok, _, err) = run(owned("geojson", &bad, &["--type", "Bench"]));
    assert!(!ok && err.contains("feature 1"), "{err}");
    assert_eq!(count(&db, "Bench"), 0);
}
