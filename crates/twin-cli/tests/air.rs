//! `urbantwin air` on an imported Helsinki: the baseline's air and noise as JSON, a closure from a file and one stored
//! in the store by name (the same result), the table, and a clear error for a scenario that does not exist.

mod common;

use common::{helsinki_db, urbantwin};
use serde_json::{json, Value};

fn json_out(args: &[&str]) -> Value {
    let (ok, stdout, stderr) = urbantwin(args);
    assert!(ok, "{stderr}");
    serde_json::from_str(&stdout).expect("one JSON object")
}

#[test]
fn air_and_noise_of_the_baseline_and_a_closure() {
    let Some((dir, db)) = helsinki_db() else {
        return;
    };
    let base = json_out(&["air", "--db", &db, "--json"]);
    let b = &base["baseline"];
    assert!(base["streets"].as_u64().unwrap() > 300, "{base}");
    assert!(b["residents"].as_f64().unwrap() > 1000.0);
    assert!(b["no2"]["meanResidents"].as_f64().unwrap() > 0.0);
    assert!(b["noise"]["endLden"].as_f64().unwrap() > 0.0);
    assert!(b["emissionsKgPerDay"]["nox"].as_f64().unwrap() > 0.0);
    assert_eq!(base["top"].as_array().unwrap().len(), 10);
    assert!(base.get("scenario").is_none());
    assert_eq!(base["options"]["peakShare"], 0.1);

    // a closure from a file
    let file = dir.path().join("closure.json");
    let doc = json!({"name": "Fabianinkatu closed",
                     "edits": [{"kind": "closeStreet", "name": "Fabianinkatu"}]});
    std::fs::write(&file, doc.to_string()).unwrap();
    let out = dir.path().join("streets.json");
    let from_file = json_out(&[
        "air",
        "--db",
        &db,
        "--scenario",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--json",
    ]);
    let sc = &from_file["scenario"];
    assert_eq!(sc["name"], "Fabianinkatu closed");
    assert_eq!(sc["unservedTrips"], 0.0);
    let change = &sc["change"];
    assert!(change["streetsNo2Down"].as_u64().unwrap() > 0, "{change}");
    assert!(change["streetsNo2Up"].as_u64().unwrap() > 0, "{change}");
    assert_eq!(sc["before"]["no2AboveWho"], b["no2"]["aboveWho"]);
    // the streets that changed most, the closed one among them with less NO2
    let top = from_file["top"].as_array().unwrap();
    assert!(top.iter().all(|s| s["deltaNo2"].is_number()));
    assert!(top
        .iter()
        .any(|s| s["name"] == "Fabianinkatu" && s["deltaNo2"].as_f64().unwrap() < 0.0));
    let streets: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(
        streets.as_object().unwrap().len() as u64,
        from_file["streets"].as_u64().unwrap()
    );

    // the same scenario stored in the twin (as /api/scenarios stores it), by name and by id
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = twin_store::SqliteStore::open(&db).unwrap();
        let now = chrono::Utc::now();
        twin_store::Store::put_scenario(
            &store,
            twin_store::StoredScenario {
                id: "urn:ngsi-ld:Scenario:fabianinkatu".into(),
                document: doc.clone(),
                owner: None,
                created_at: now,
                modified_at: now,
            },
            true,
        )
        .await
        .unwrap();
    });
    for name in ["Fabianinkatu closed", "urn:ngsi-ld:Scenario:fabianinkatu"] {
        let stored = json_out(&["air", "--db", &db, "--scenario", name, "--json"]);
        assert_eq!(
            stored["scenario"]["change"],
            from_file["scenario"]["change"]
        );
    }

    // the table
    let (ok, table, err) = urbantwin(&["air", "--db", &db, "--scenario", "Fabianinkatu closed"]);
    assert!(ok, "{err}");
    for row in [
        "residents above WHO NO2 10",
        "residents Lden ≥ 55 dB",
        "baseline",
        "scenario",
        "Fabianinkatu",
    ] {
        assert!(table.contains(row), "{row} in:\n{table}");
    }

    // errors: an unknown scenario names the ones there are; options out of range
    let (ok, _, err) = urbantwin(&["air", "--db", &db, "--scenario", "Nowhere closed"]);
    assert!(!ok);
    assert!(
        err.contains("Nowhere closed") && err.contains("Fabianinkatu closed"),
        "{err}"
    );
    let (ok, _, err) = urbantwin(&["air", "--db", &db, "--peak-share", "0"]);
    assert!(!ok);
    assert!(err.contains("peakShare"), "{err}");
}
