//! Air quality and noise under `/api/scenarios/{id}/air` and `/noise` over real HTTP and a real SQLite file: the
//! Helsinki extract with two measuring stations, the baseline's values calibrated on them, a street closure whose run
//! carries its air and noise with the change against the baseline, GeoJSON lines, homes, and ProblemDetails.

mod common;

use common::{import_helsinki, json_call, shared_data, Server};
use reqwest::Method;
use serde_json::{json, Value};

fn station(id: &str, lon: f64, lat: f64, no2: f64) -> Value {
    json!({
        "id": id, "type": "AirQualityObserved",
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}},
        "NO2": {"type": "Property", "value": no2, "unitCode": "GQ"},
        "pm10": {"type": "Property", "value": 20.0, "unitCode": "GQ"},
    })
}

#[tokio::test]
async fn air_and_noise_of_a_closure() {
    let Some(data) = shared_data() else { return };
    let mut s = Server::start().await;
    // scenarios are created and run by a signed-in account (a planner), which reads what anonymous callers read
    s.http = s.client_of("planner", &["planner"]).await;
    assert!(import_helsinki(&s.store, &data).await > 3000);
    // an urban-background station north of the extract, and a roadside one on Mannerheimintie
    for st in [
        station(
            "urn:ngsi-ld:AirQualityObserved:kallio",
            24.9502,
            60.187,
            14.0,
        ),
        station(
            "urn:ngsi-ld:AirQualityObserved:mannerheimintie",
            24.9393,
            60.1698,
            31.0,
        ),
    ] {
        let r = s.post("/entities", &st).await;
        assert_eq!(r.status(), 201);
    }

    // the baseline's air: per RoadLink, calibrated on both stations, each predicted from the other
    let base = s.root_json("/api/scenarios/baseline/air").await;
    assert_eq!(base["scenario"], "baseline");
    assert!(base["run"].is_null());
    let sum = &base["summary"];
    assert!(sum["streets"].as_u64().unwrap() > 300, "{sum}");
    assert_eq!(sum["background"]["stations"]["no2"], 2, "{sum}");
    assert_eq!(sum["fit"]["no2"]["stations"], 2, "{sum}");
    assert!(sum["fit"]["no2"]["rmse"].as_f64().unwrap() >= 0.0);
    assert!(sum.get("noise").is_none());
    let stations = sum["stations"].as_array().unwrap();
    let road = stations
        .iter()
        .find(|x| x["id"].as_str().unwrap().ends_with("mannerheimintie"))
        .unwrap();
    assert!(road["street"]
        .as_str()
        .unwrap()
        .starts_with("urn:ngsi-ld:RoadLink:"));
    assert_eq!(road["pollutants"]["no2"]["measured"], 31.0);
    assert!(road["pollutants"]["no2"]["traffic"].as_f64().unwrap() > 0.0);
    let streets = base["streets"].as_object().unwrap();
    assert!(streets
        .keys()
        .all(|k| k.starts_with("urn:ngsi-ld:RoadLink:")));
    let one = streets
        .values()
        .find(|v| v["vehiclesPerDay"].as_f64().unwrap() > 1000.0)
        .unwrap();
    for k in [
        "no2",
        "pm10",
        "pm25",
        "nox",
        "no2Traffic",
        "roadType",
        "receptorM",
    ] {
        assert!(one[k].is_number(), "{k}: {one}");
    }
    assert!(one.get("lden").is_none() && one.get("deltaNo2").is_none());
    let noise = s.root_json("/api/scenarios/baseline/noise").await;
    assert!(
        noise["summary"]["noise"]["endLden"].as_f64().unwrap() > 0.0,
        "{noise}"
    );
    assert!(noise["summary"]["residents"].as_f64().unwrap() > 1000.0);
    let loud = noise["streets"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|v| v["lden"].as_f64())
        .fold(0.0, f64::max);
    assert!((60.0..85.0).contains(&loud), "loudest street {loud} dB");

    // a closure: before its first run there is nothing to show
    let url = format!("{}/api/scenarios", s.root());
    let doc = json!({"name": "Fabianinkatu closed",
                     "edits": [{"kind": "closeStreet", "name": "Fabianinkatu"}]});
    let (created, loc) = json_call(&s.http, Method::POST, &url, Some(&doc), 201).await;
    let loc = loc.unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    let enc = loc.trim_start_matches("/api/scenarios/").to_string();
    s.root_problem(&format!("/api/scenarios/{enc}/air"), 409, "Conflict")
        .await;
    let (_, run) = json_call(
        &s.http,
        Method::POST,
        &format!("{}{loc}/runs", s.root()),
        None,
        202,
    )
    .await;
    let run = run.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    loop {
        let r = s.root_json(&run).await;
        match r["status"].as_str().unwrap() {
            "done" => break,
            "failed" | "cancelled" => panic!("{r}"),
            _ => assert!(std::time::Instant::now() < deadline, "{r}"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // the run's traffic links do not carry the air results; /air does
    let links = s.root_json(&format!("{run}/links")).await;
    assert!(links.get("air").is_none());
    let air = s.root_json(&format!("/api/scenarios/{enc}/air")).await;
    assert_eq!(air["scenario"], id.as_str());
    let run_id = air["run"].as_str().unwrap().to_string();
    assert!(run.ends_with(&urlencoding(&run_id)), "{run} vs {run_id}");
    let change = &air["change"];
    assert!(change["streetsNo2Up"].as_u64().unwrap() > 0, "{change}");
    assert!(change["streetsNo2Down"].as_u64().unwrap() > 0, "{change}");
    assert_eq!(
        change["no2AboveWho"][0], base["summary"]["no2"]["aboveWho"],
        "{change}"
    );
    assert!(change.get("ldenAbove55").is_none());
    let after = air["streets"].as_object().unwrap();
    let mut cleaned = 0;
    for (k, v) in after {
        if v["name"] == "Fabianinkatu" && streets[k]["vehiclesPerDay"].as_f64().unwrap() > 0.0 {
            assert_eq!(v["vehiclesPerDay"], 0.0, "{k}: {v}");
            assert!(v["deltaNo2"].as_f64().unwrap() < 0.0, "{k}: {v}");
            cleaned += 1;
        }
    }
    assert!(cleaned > 0);
    assert!(after.values().any(|v| v["deltaNo2"].as_f64().unwrap() > 0.0
        && v["deltaVehiclesPerDay"].as_f64().unwrap() > 0.0));
    // the same run by name, and the noise of it
    let named = s
        .root_json(&format!(
            "/api/scenarios/{enc}/air?run={}",
            urlencoding(&run_id)
        ))
        .await;
    assert_eq!(named["streets"], air["streets"]);
    let noise = s
        .root_json(&format!("/api/scenarios/{enc}/noise?homes=true"))
        .await;
    let nc = &noise["change"];
    assert_eq!(nc["ldenAbove55"][0], noise_base(&s).await);
    assert!(noise["streets"]
        .as_object()
        .unwrap()
        .values()
        .any(|v| v["deltaLden"].as_f64().is_some_and(|d| d > 0.0)));
    let homes = noise["homes"].as_array().unwrap();
    assert!(homes.len() > 100);
    assert!(homes
        .iter()
        .all(|h| h["residents"].as_f64().unwrap() > 0.0 && h.get("no2").is_none()));
    let air_homes = s
        .root_json(&format!("/api/scenarios/{enc}/air?homes=true"))
        .await;
    assert!(air_homes["homes"][0]["no2"].as_f64().unwrap() > 0.0);
    assert!(air.get("homes").is_none());

    // GeoJSON: the streets as lines with their values
    for (view, key) in [("air", "deltaNo2"), ("noise", "lden")] {
        let fc = s
            .root_geojson(&format!("/api/scenarios/{enc}/{view}.geojson"))
            .await;
        let features = fc["features"].as_array().unwrap();
        assert_eq!(features.len(), after.len());
        assert!(features
            .iter()
            .all(|f| f["geometry"]["type"] == "LineString"));
        assert!(
            features.iter().any(|f| f["properties"][key].is_number()),
            "{view}"
        );
    }

    // the NO2 field on a 20 m grid, baseline and scenario, for a south-west wind
    let g0 = s
        .root_json("/api/scenarios/baseline/air/grid?cellM=20&windFromDeg=225&windMs=3")
        .await;
    let g1 = s
        .root_json(&format!(
            "/api/scenarios/{enc}/air/grid?cellM=20&windFromDeg=225&windMs=3"
        ))
        .await;
    let (nx, ny) = (g0["nx"].as_u64().unwrap(), g0["ny"].as_u64().unwrap());
    assert!(nx > 40 && ny > 70, "{nx} × {ny}");
    assert_eq!(g0["no2"].as_array().unwrap().len() as u64, nx * ny);
    assert_eq!(
        (g1["nx"].as_u64().unwrap(), g1["ny"].as_u64().unwrap()),
        (nx, ny)
    );
    assert_eq!(g1["run"], run_id.as_str());
    assert_eq!(g0["met"]["stability"], "D");
    let cells = |g: &Value| -> Vec<f64> {
        g["noxTraffic"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    };
    let (c0, c1) = (cells(&g0), cells(&g1));
    assert!(
        c0.iter().zip(&c1).any(|(a, b)| b < a),
        "the closure cleans some cells"
    );
    assert!(c0.iter().zip(&c1).any(|(a, b)| b > a), "and loads others");

    // errors
    for q in [
        "cellM=1",
        "stability=G",
        "terrain=sea",
        "windMs=0",
        "format=png",
        "colour=red",
    ] {
        s.root_problem(
            &format!("/api/scenarios/baseline/air/grid?{q}"),
            400,
            "BadRequestData",
        )
        .await;
    }
    s.root_problem("/api/scenarios/baseline/air?run=x", 400, "BadRequestData")
        .await;
    s.root_problem(
        &format!("/api/scenarios/{enc}/noise?colour=red"),
        400,
        "BadRequestData",
    )
    .await;
    s.root_problem(
        &format!("/api/scenarios/{enc}/air?homes=maybe"),
        400,
        "BadRequestData",
    )
    .await;
    s.root_problem(
        "/api/scenarios/urn:ngsi-ld:Scenario:none/air",
        404,
        "ResourceNotFound",
    )
    .await;
    s.root_problem(
        &format!("/api/scenarios/{enc}/air?run=urn:ngsi-ld:ScenarioRun:none"),
        404,
        "ResourceNotFound",
    )
    .await;
}

async fn noise_base(s: &Server) -> Value {
    s.root_json("/api/scenarios/baseline/noise").await["summary"]["noise"]["endLden"].clone()
}

fn urlencoding(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}
