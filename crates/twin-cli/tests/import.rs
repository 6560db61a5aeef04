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
