//! `urbantwin traffic assign` on Sioux Falls: the JSON contract scripts rely on, the flows CSV, and clear errors.

mod common;

use std::path::PathBuf;

use common::urbantwin;

use serde_json::Value;

fn tntp() -> Option<PathBuf> {
    common::shared("tntp")
}

#[test]
fn assign_sioux_falls_json_and_csv() {
    let Some(data) = tntp() else { return };
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("flows.csv");
    let net = data.join("SiouxFalls/SiouxFalls_net.tntp");
    let trips = data.join("SiouxFalls/SiouxFalls_trips.tntp");
    let (ok, stdout, stderr) = urbantwin(&[
        "traffic",
        "assign",
        "--net",
        net.to_str().unwrap(),
        "--trips",
        trips.to_str().unwrap(),
        "--gap",
        "1e-10",
        "--out",
        csv.to_str().unwrap(),
        "--json",
    ]);
    assert!(ok, "{stderr}");
    // exactly one JSON object on stdout
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    let v: Value = serde_json::from_str(lines[0]).expect("JSON");
    for key in ["iterations", "relative_gap", "objective", "seconds"] {
        assert!(v[key].is_number(), "{key} in {v}");
    }
    assert!(v["relative_gap"].as_f64().unwrap() <= 1e-10, "{v}");
    let objective = v["objective"].as_f64().unwrap();
    assert!((objective - 4_231_335.287).abs() < 1e-8 * objective, "{v}");
    assert_eq!(v["algorithm"], "b");
    assert_eq!(v["network"], "SiouxFalls");
    assert_eq!(
        (v["links"].as_u64(), v["zones"].as_u64()),
        (Some(76), Some(24))
    );
    assert_eq!(v["unserved_demand"].as_f64(), Some(0.0));
    assert_eq!(v["converged"], true);

    let text = std::fs::read_to_string(&csv).unwrap();
    let mut rows = text.lines();
    assert_eq!(rows.next(), Some("init,term,flow,cost"));
    let rows: Vec<Vec<f64>> = rows
        .map(|r| r.split(',').map(|f| f.parse().unwrap()).collect())
        .collect();
    assert_eq!(rows.len(), 76);
    // first link 1 → 2: best-known 4494.66 vehicles at cost 6.0008
    assert_eq!((rows[0][0], rows[0][1]), (1.0, 2.0));
    assert!((rows[0][2] - 4_494.657_646).abs() < 1e-3, "{:?}", rows[0]);
    assert!((rows[0][3] - 6.000_816).abs() < 1e-5, "{:?}", rows[0]);

    // Frank-Wolfe, human summary
    let (ok, stdout, stderr) = urbantwin(&[
        "traffic",
        "assign",
        "--net",
        net.to_str().unwrap(),
        "--trips",
        trips.to_str().unwrap(),
        "--algorithm",
        "bfw",
        "--gap",
        "1e-4",
    ]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("bi-conjugate Frank-Wolfe") && stdout.contains("converged"),
        "{stdout}"
    );
}

#[test]
fn bad_input_is_reported_clearly() {
    let Some(data) = tntp() else { return };
    let net = data.join("Chicago-Sketch/ChicagoSketch_net.tntp");
    let trips = data.join("Chicago-Sketch/ChicagoSketch_trips.tntp");
    // Chicago-Sketch's connectors have free-flow time 0: without the distance weight they would cost nothing
    let (ok, _, stderr) = urbantwin(&[
        "traffic",
        "assign",
        "--net",
        net.to_str().unwrap(),
        "--trips",
        trips.to_str().unwrap(),
        "--json",
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("link 1 → 547 (link 1 in file order)")
            && stderr.contains("generalised cost at zero flow is 0"),
        "{stderr}"
    );

    // a network with a negative capacity, and a trip table whose zones are disconnected
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let header = "<NUMBER OF ZONES> 3\n<NUMBER OF NODES> 4\n<FIRST THRU NODE> 4\n<NUMBER OF LINKS> 3\n<END OF METADATA>\n";
    let bad = write(
        "bad_net.tntp",
        &format!("{header}1 4 -100 1 1 0.15 4 0 0 1 ;\n4 2 100 1 1 0.15 4 0 0 1 ;\n2 1 100 1 1 0.15 4 0 0 1 ;\n"),
    );
    let good = write(
        "good_net.tntp",
        &format!("{header}1 4 100 1 1 0.15 4 0 0 1 ;\n4 2 100 1 1 0.15 4 0 0 1 ;\n2 1 100 1 1 0.15 4 0 0 1 ;\n"),
    );
    let od = write(
        "trips.tntp",
        "<NUMBER OF ZONES> 3\n<END OF METADATA>\nOrigin 1\n2 : 50 ; 3 : 7 ;\nOrigin 2\n1 : 20 ;\n",
    );
    let (ok, _, stderr) = urbantwin(&[
        "traffic",
        "assign",
        "--net",
        bad.to_str().unwrap(),
        "--trips",
        od.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("capacity") && stderr.contains("negative"),
        "{stderr}"
    );
    let (ok, stdout, stderr) = urbantwin(&[
        "traffic",
        "assign",
        "--net",
        good.to_str().unwrap(),
        "--trips",
        od.to_str().unwrap(),
        "--gap",
        "1e-12",
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let v: Value = serde_json::from_str(stdout.trim()).expect("JSON");
    assert_eq!(v["unserved_demand"].as_f64(), Some(7.0), "{v}");
    assert_eq!(v["unserved_pairs"].as_u64(), Some(1));
    assert_eq!(v["unserved"][0]["origin"], 1);
    assert_eq!(v["unserved"][0]["destination"], 3);
    assert_eq!(v["assigned_trips"].as_f64(), Some(70.0));
    assert_eq!(v["converged"], true);
}

/// `urbantwin traffic city` on an imported Helsinki: the baseline and a closure that moves traffic to the parallel
/// street, and a clear error for a street that does not exist.
#[test]
fn city_baseline_and_a_closed_street() {
    let Some((dir, db)) = common::helsinki_db() else {
        return;
    };
    let dbs = db.as_str();
    let (ok, stdout, err) = urbantwin(&[
        "traffic",
        "city",
        "--db",
        dbs,
        "--close",
        "Fabianinkatu",
        "--top",
        "200",
        "--json",
    ]);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    assert!(v["zones"].as_u64().unwrap() >= 8, "{v}");
    assert!(v["trips"].as_f64().unwrap() > 100.0, "{v}");
    let (b, s) = (&v["baseline"], &v["scenario"]);
    assert!(b["relativeGap"].as_f64().unwrap() <= 1e-8);
    assert_eq!(s["unservedTrips"], 0.0);
    assert!(s["vehicleHours"].as_f64().unwrap() > b["vehicleHours"].as_f64().unwrap());
    let streets = v["streets"].as_array().unwrap();
    let closed = streets
        .iter()
        .find(|x| x["street"] == "Fabianinkatu")
        .unwrap();
    assert_eq!(closed["scenarioVehicleKm"], 0.0);
    // Unioninkatu and Mannerheimintie run parallel to the west: they take on traffic
    let parallel = streets
        .iter()
        .find(|x| x["street"] == "Unioninkatu")
        .expect("Unioninkatu changes");
    assert!(parallel["deltaPct"].as_f64().unwrap() > 0.0, "{parallel}");
    let main = streets
        .iter()
        .find(|x| x["street"] == "Mannerheimintie")
        .expect("Mannerheimintie changes");
    assert!(main["deltaPct"].as_f64().unwrap() > 0.0, "{main}");

    let (ok, _, err) = urbantwin(&["traffic", "city", "--db", dbs, "--close", "Nowhere Street"]);
    assert!(!ok && err.contains("Nowhere Street"), "{err}");

    // a scenario file: a new street from Fabianinkatu to Unioninkatu takes traffic and saves time
    let scenario = dir.path().join("add.json");
    std::fs::write(
        &scenario,
        serde_json::json!({"name": "Uusikatu", "edits": [{"kind": "addLink", "name": "Uusikatu",
            "roadClass": "tertiary", "path": [[24.94932, 60.16907], [24.95095, 60.16977]]}]})
        .to_string(),
    )
    .unwrap();
    let sc = scenario.to_str().unwrap();
    let (ok, stdout, err) =
        urbantwin(&["traffic", "city", "--db", dbs, "--scenario", sc, "--json"]);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    let added = &v["added"][0];
    assert_eq!(added["name"], "Uusikatu", "{v}");
    assert!(added["flow"].as_f64().unwrap() > 100.0, "{added}");
    assert!(v["edits"][0]["added"]["joinedM"][0].as_f64().unwrap() < 5.0);
    let (b, s) = (&v["baseline"], &v["scenario"]);
    assert!(s["vehicleHours"].as_f64().unwrap() < b["vehicleHours"].as_f64().unwrap());
    // an added street that does not reach the network is refused with the reason
    std::fs::write(
        &scenario,
        r#"{"name": "far", "edits": [{"kind": "addLink", "path": [[24.94932, 60.16907], [25.5, 60.5]]}]}"#,
    )
    .unwrap();
    let (ok, _, err) = urbantwin(&["traffic", "city", "--db", dbs, "--scenario", sc]);
    assert!(
        !ok && err.contains("edits[0] (addLink)") && err.contains("m from the nearest street"),
        "{err}"
    );
}

/// On the demo twin (city and its traffic counters), `traffic city` reports the model's fit to the counts.
#[test]
fn city_fit_to_the_demo_counts() {
    let Some(data) = tntp() else { return };
    let pbf = data.join("../osm/helsinki.osm.pbf");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    let dbs = db.to_str().unwrap();
    let (ok, _, err) = urbantwin(&[
        "demo",
        "--prepare",
        "--data",
        pbf.to_str().unwrap(),
        "--db",
        dbs,
    ]);
    assert!(ok, "{err}");
    let (ok, stdout, err) = urbantwin(&["traffic", "city", "--db", dbs, "--json"]);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    let c = &v["counts"];
    assert_eq!(c["matched"], 2, "{c}");
    assert_eq!(c["unmatched"].as_array().unwrap().len(), 0, "{c}");
    for x in c["perCount"].as_array().unwrap() {
        let (m, o, geh) = (
            x["modelled"].as_f64().unwrap(),
            x["observed"].as_f64().unwrap(),
            x["geh"].as_f64().unwrap(),
        );
        assert!(m >= 0.0 && o > 0.0);
        assert!((geh - (2.0 * (m - o).powi(2) / (m + o)).sqrt()).abs() < 1e-9);
    }
    assert!(c["r2"].is_number() && c["rmse"].is_number());
    // adjusting the matrix to the counts brings the model to them
    let (ok, stdout, err) =
        urbantwin(&["traffic", "city", "--db", dbs, "--adjust", "10", "--json"]);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    let adj = &v["adjusted"];
    assert!(
        adj["rmse"].as_f64().unwrap() < 0.2 * c["rmse"].as_f64().unwrap(),
        "{adj}"
    );
    assert!(
        adj["gehBelow5"].as_f64().unwrap() >= c["gehBelow5"].as_f64().unwrap(),
        "{adj}"
    );
}
