//! `urbantwin access` on central Helsinki imported from OpenStreetMap: the JSON contract, the per-home GeoJSON, the
//! table, and clear errors for bad arguments and an empty store.

mod common;

use common::{helsinki_db, urbantwin};

use serde_json::Value;

#[test]
fn fifteen_minute_city_of_central_helsinki() {
    let Some((dir, db)) = helsinki_db() else {
        return;
    };
    let dbs = db.as_str();
    let out = dir.path().join("homes.geojson");
    let (ok, stdout, err) = urbantwin(&[
        "access",
        "--db",
        dbs,
        "--mode",
        "walk",
        "--minutes",
        "15",
        "--json",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    assert_eq!(v["mode"], "walk");
    assert_eq!(v["thresholdMinutes"], 15.0);
    assert!(v["homes"].as_u64().unwrap() >= 100, "{v}");
    assert!(v["seconds"].as_f64().unwrap() > 0.0 && v["searchSeconds"].as_f64().unwrap() > 0.0);
    let cats = v["categories"].as_array().unwrap();
    assert_eq!(cats.len(), 10, "the ten daily needs");
    for c in cats {
        let share = c["shareWithin"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&share), "{c}");
    }
    let grocery = cats.iter().find(|c| c["category"] == "grocery").unwrap();
    assert!(grocery["shareWithin"].as_f64().unwrap() > 0.95, "{grocery}");
    // per home: a point with its score and minutes per category
    let fc: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let homes = fc["features"].as_array().unwrap();
    assert_eq!(homes.len() as u64, v["homes"].as_u64().unwrap());
    let h = &homes[0];
    assert_eq!(h["geometry"]["type"], "Point");
    assert!(h["properties"]["score"].as_f64().is_some());
    assert!(
        h["properties"]["groceryMinutes"].as_f64().unwrap() < 15.0,
        "{h}"
    );
    // a shorter threshold and slower walkers: fewer residents within reach, never more
    let (ok, stdout, err) = urbantwin(&[
        "access",
        "--db",
        dbs,
        "--minutes",
        "5",
        "--profile",
        "older",
        "--json",
    ]);
    assert!(ok, "{err}");
    let slow: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert!(
        slow["meanScore"].as_f64().unwrap() < v["meanScore"].as_f64().unwrap(),
        "{slow}"
    );
    for (a, b) in slow["categories"].as_array().unwrap().iter().zip(cats) {
        assert!(
            a["shareWithin"].as_f64().unwrap() <= b["shareWithin"].as_f64().unwrap() + 1e-12,
            "{a} vs {b}"
        );
    }
    // the table
    let (ok, stdout, err) = urbantwin(&[
        "access",
        "--db",
        dbs,
        "--mode",
        "bike",
        "--categories",
        "grocery,school",
    ]);
    assert!(ok, "{err}");
    assert!(
        stdout.contains("grocery") && stdout.contains("school") && !stdout.contains("pharmacy"),
        "{stdout}"
    );
    assert!(stdout.contains("15-minute score"), "{stdout}");
}

#[test]
fn bad_arguments_and_an_empty_store_are_reported_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("empty.db");
    let dbs = db.to_str().unwrap();
    for (args, want) in [
        (vec!["--minutes", "0"], "--minutes must be above 0"),
        (vec!["--speed-kmh=-3"], "--speed-kmh must be above 0"),
        (vec!["--k", "0"], "--k must be from 1 to 50"),
        (
            vec!["--categories", "grocery,,school"],
            "--categories needs names",
        ),
        (vec![], "holds no street network"),
    ] {
        let mut all = vec!["access", "--db", dbs];
        all.extend(args.iter());
        let (ok, _, err) = urbantwin(&all);
        assert!(!ok, "{args:?} should fail");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}
