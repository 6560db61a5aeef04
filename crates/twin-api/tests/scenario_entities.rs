//! Scenario results published as simulated NGSI-LD `TrafficFlowObserved` entities, over real HTTP on the Helsinki
//! extract: the baseline's and a closure's result sets (ids, attributes, provenance, the NGSI-LD query that finds
//! them), their delta values in the `TrafficFlowObserved` vector tiles, a rerun replacing its set, deletion, a street
//! a scenario adds, real observed entities left alone, and CORS on `/api`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::{import_helsinki, shared_data, Server};
use prost::Message;
use serde_json::{json, Value};
use twin_api::scenarios::{result_id, BASELINE_IRI, RESULTS_DATASET, RESULT_PREFIX};
use twin_tiles::mvt;
use twin_tiles::TileId;

fn root(s: &Server) -> String {
    s.base.trim_end_matches("/ngsi-ld/v1").to_string()
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A JSON answer from outside `/ngsi-ld/v1`, of the expected status.
async fn call(
    s: &Server,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
    status: u16,
) -> (Value, Option<String>) {
    common::json_call(&s.http, method, &format!("{}{path}", root(s)), body, status).await
}

async fn get(s: &Server, path: &str) -> Value {
    call(s, reqwest::Method::GET, path, None, 200).await.0
}

/// Runs a scenario to its end; the run.
async fn run(s: &Server, scenario: &str) -> (Value, String) {
    let (_, loc) = call(
        s,
        reqwest::Method::POST,
        &format!("{scenario}/runs"),
        None,
        202,
    )
    .await;
    let loc = loc.expect("Location");
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let v = get(s, &loc).await;
        if ["done", "failed", "cancelled"].contains(&v["status"].as_str().unwrap_or_default()) {
            return (v, loc);
        }
        assert!(Instant::now() < deadline, "run {loc} did not finish: {v}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every entity an NGSI-LD query finds (keyValues, paged), by id.
async fn query_all(s: &Server, query: &str) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let limit = 1000;
    loop {
        let page = s
            .get_json(&format!(
                "/entities?{query}&options=keyValues&limit={limit}&offset={}",
                out.len()
            ))
            .await;
        let page = page.as_array().expect("an array").clone();
        let n = page.len();
        for e in page {
            out.insert(e["id"].as_str().unwrap().to_string(), e);
        }
        if n < limit {
            return out;
        }
    }
}

/// The query docs/api.md gives for a scenario's results.
fn results_query(iri: &str) -> String {
    format!(
        "type=TrafficFlowObserved&q={}",
        enc(&format!("simulated==true;refScenario==\"{iri}\""))
    )
}

/// A tile's layer, decoded: per feature, its properties.
async fn tile_features(s: &Server, layer: &str, t: TileId) -> Vec<BTreeMap<String, Value>> {
    let r = s
        .http
        .get(format!("{}/tiles/{layer}/{t}.mvt", root(s)))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200, "tile {t}");
    let tile = mvt::Tile::decode(r.bytes().await.expect("body").as_ref()).expect("a valid MVT");
    let l = tile
        .layers
        .iter()
        .find(|l| l.name == layer)
        .expect("the layer");
    l.features.iter().map(|f| common::mvt_props(l, f)).collect()
}

fn time(v: &Value) -> chrono::DateTime<chrono::Utc> {
    v.as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .unwrap_or_else(|| panic!("a DateTime expected: {v}"))
        .to_utc()
}

fn num(v: &Value) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("a number expected: {v}"))
}

fn style_is_valid(style: &Value) {
    common::assert_valid_style(style);
}

/// A real, observed count (no `simulated`) at `at`, as a city's sensor platform would write it.
fn observed_count(at: &Value) -> Value {
    json!({
        "id": "urn:ngsi-ld:TrafficFlowObserved:fabianinkatu-counter",
        "type": "TrafficFlowObserved",
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": at}},
        "intensity": {"type": "Property", "value": 310, "observedAt": "2026-11-25T08:00:00Z"},
        "dataProvider": {"type": "Property", "value": "City of Helsinki counters"},
    })
}

#[tokio::test]
async fn helsinki_results_as_entities() {
    use reqwest::Method;
    let Some(data) = shared_data() else { return };
    let mut s = Server::start().await;
    // scenarios are created and run by a signed-in account (a planner), which reads what anonymous callers read
    s.http = s.client_of("planner", &["planner"]).await;
    assert!(import_helsinki(&s.store, &data).await > 3000);
    // a counter on Fabianinkatu
    let fab_link = s
        .get_json(&format!(
            "/entities?type=RoadLink&q={}&limit=1&options=keyValues",
            enc("name==\"Fabianinkatu\";carAccess[forward]==true")
        ))
        .await;
    let at = fab_link[0]["location"]["coordinates"][0].clone();
    let r = s.post("/entities", &observed_count(&at)).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let counter = s
        .get_json("/entities/urn:ngsi-ld:TrafficFlowObserved:fabianinkatu-counter?options=sysAttrs")
        .await;

    // the baseline: every RoadLink with values is an entity, found by the documented query
    let base = get(&s, "/api/scenarios/baseline").await;
    let bp = &base["published"];
    let base_links = get(&s, "/api/scenarios/baseline/links").await;
    let bl = base_links["links"].as_object().unwrap();
    assert_eq!(bp["entities"].as_u64().unwrap() as usize, bl.len(), "{bp}");
    assert_eq!(bp["dataset"], RESULTS_DATASET);
    let baseline = query_all(&s, &results_query(BASELINE_IRI)).await;
    assert_eq!(baseline.len(), bl.len());
    let expected: BTreeSet<String> = bl.keys().map(|l| result_id("baseline", l)).collect();
    assert_eq!(baseline.keys().cloned().collect::<BTreeSet<_>>(), expected);
    for (link, v) in bl {
        let e = &baseline[&result_id("baseline", link)];
        assert_eq!(e["refRoadSegment"], json!(link));
        assert_eq!(num(&e["intensity"]), num(&v["flow"]), "{e}");
        assert!(e.get("intensityChange").is_none(), "{e}");
    }
    let id = result_id("baseline", bl.keys().next().unwrap());
    assert!(
        id.starts_with(&format!("{RESULT_PREFIX}baseline:osm-way-")),
        "{id}"
    );
    // the query in the baseline's summary is the same
    let query = bp["query"].as_str().unwrap();
    let count = s
        .get(&format!(
            "{}&count=true&limit=0",
            query.strip_prefix("/ngsi-ld/v1").unwrap()
        ))
        .await;
    assert_eq!(
        count.headers()["ngsild-results-count"].to_str().unwrap(),
        bl.len().to_string()
    );

    // provenance: the results dataset, derived from the network's, and who wrote each value
    let ds = get(&s, &format!("/api/datasets/{}", enc(RESULTS_DATASET))).await;
    assert_eq!(ds["owner"], "urbantwin");
    assert!(!ds["licence"].as_str().unwrap().is_empty());
    let one = s
        .get_json(&format!("/entities/{}?options=provenance", enc(&id)))
        .await;
    assert_eq!(one["intensity"]["provenance"]["dataset"], RESULTS_DATASET);
    assert_eq!(one["intensity"]["provenance"]["channel"], "model:traffic");

    // closing Fabianinkatu
    let (created, scenario) = call(
        &s,
        Method::POST,
        "/api/scenarios",
        Some(&json!({"name": "Fabianinkatu closed",
                     "edits": [{"kind": "closeStreet", "name": "Fabianinkatu"}]})),
        201,
    )
    .await;
    let scenario = scenario.expect("Location");
    let sid = created["id"].as_str().unwrap().to_string();
    let (done, run_url) = run(&s, &scenario).await;
    assert_eq!(done["status"], "done", "{done}");
    let published = &done["summary"]["published"];
    let links = get(&s, &format!("{run_url}/links")).await;
    let lm = links["links"].as_object().unwrap();
    assert_eq!(published["entities"].as_u64().unwrap() as usize, lm.len());
    assert_eq!(published["deleted"], 0);
    eprintln!(
        "Helsinki: {} result entities published in {:.3} s (the baseline's in {:.3} s); the run solved in {:.3} s",
        published["entities"],
        num(&published["seconds"]),
        num(&bp["seconds"]),
        num(&done["summary"]["seconds"]),
    );

    let results = query_all(&s, &results_query(&sid)).await;
    assert_eq!(results.len(), lm.len());
    let expected: BTreeSet<String> = lm.keys().map(|l| result_id(&sid, l)).collect();
    assert_eq!(results.keys().cloned().collect::<BTreeSet<_>>(), expected);
    let source = format!("{}{run_url}", root(&s));
    let finished = time(&done["finishedAt"]);
    for (link, v) in lm {
        let e = &results[&result_id(&sid, link)];
        assert_eq!(e["type"], "TrafficFlowObserved");
        assert_eq!(e["simulated"], true);
        assert_eq!(e["refScenario"], json!(sid));
        assert_eq!(e["refRoadSegment"], json!(link));
        assert_eq!(e["dataProvider"], "urbantwin traffic model");
        assert_eq!(e["source"], json!(source));
        assert_eq!(e["dateObserved"]["@type"], "DateTime", "{e}");
        assert_eq!(time(&e["dateObserved"]["@value"]), finished, "{e}");
        assert_eq!(e["location"]["type"], "LineString");
        assert_eq!(num(&e["intensity"]), num(&v["flow"]));
        assert_eq!(num(&e["volumeCapacityRatio"]), num(&v["vc"]));
        assert_eq!(e["congested"], json!(num(&v["vc"]) > 1.0));
        assert_eq!(e["closed"], v["closed"]);
        assert_eq!(num(&e["intensityChange"]), num(&v["deltaFlow"]));
        match v["deltaPct"].as_f64() {
            Some(p) => assert_eq!(num(&e["intensityChangePercent"]), p),
            None => assert!(e.get("intensityChangePercent").is_none()),
        }
        for (mine, theirs) in [
            ("intensityForward", "flowForward"),
            ("intensityBackward", "flowBackward"),
        ] {
            assert_eq!(e.get(mine), v.get(theirs), "{e}");
        }
        match v["timeS"].as_f64() {
            Some(t) => {
                assert_eq!(num(&e["travelTime"]), t);
                assert!(num(&e["averageVehicleSpeed"]) > 0.0, "{e}");
            }
            None => assert!(e.get("travelTime").is_none(), "{e}"),
        }
    }
    // the closed street carries nothing; Korkeavuorenkatu, parallel one block west, takes traffic
    let fab: Vec<&Value> = results
        .values()
        .filter(|e| e["name"] == "Fabianinkatu")
        .collect();
    assert!(fab.len() >= 30, "{}", fab.len());
    for e in &fab {
        assert_eq!(e["closed"], true, "{e}");
        assert_eq!(num(&e["intensity"]), 0.0, "{e}");
        assert!(num(&e["intensityChange"]) <= 0.0, "{e}");
    }
    let parallel = "Korkeavuorenkatu";
    let gains: Vec<f64> = results
        .values()
        .filter(|e| e["name"] == parallel)
        .map(|e| num(&e["intensityChange"]))
        .collect();
    assert!(
        gains.iter().sum::<f64>() > 100.0 && gains.iter().any(|&d| d > 50.0),
        "{parallel} gains too little: {gains:?}; the streets that changed most: {}",
        done["summary"]["streets"]
    );
    // where the closure sends traffic, as docs/api.md asks it
    let busier = query_all(
        &s,
        &format!(
            "type=TrafficFlowObserved&q={}",
            enc(&format!("refScenario==\"{sid}\";intensityChange>100"))
        ),
    )
    .await;
    let expected: Vec<&String> = results
        .iter()
        .filter(|(_, e)| num(&e["intensityChange"]) > 100.0)
        .map(|(id, _)| id)
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(busier.keys().collect::<Vec<_>>(), expected);
    // attribute metadata: observedAt is the run's finish time, units where they exist
    let e = fab[0]["id"].as_str().unwrap();
    let full = s.get_json(&format!("/entities/{}", enc(e))).await;
    assert_eq!(time(&full["intensity"]["observedAt"]), finished);
    assert_eq!(full["refScenario"]["type"], "Relationship");
    assert_eq!(full["refScenario"]["object"], json!(sid));
    let open = results
        .values()
        .find(|e| e.get("travelTime").is_some())
        .unwrap();
    let open = s
        .get_json(&format!("/entities/{}", enc(open["id"].as_str().unwrap())))
        .await;
    assert_eq!(open["travelTime"]["unitCode"], "SEC");
    assert_eq!(open["averageVehicleSpeed"]["unitCode"], "KMH");

    // publishing results does not make the baseline stale (TrafficFlowObserved does not feed it)
    assert_eq!(
        get(&s, "/api/scenarios/baseline").await["builtAt"],
        base["builtAt"]
    );

    // the vector tiles: the run's features, with their delta values, next to the observed counter
    let fab_link_id = fab_link[0]["id"].as_str().unwrap();
    let e = &result_id(&sid, fab_link_id);
    let t = TileId::containing(num(&at[0]), num(&at[1]), 16);
    let features = tile_features(&s, "TrafficFlowObserved", t).await;
    let mine: Vec<&BTreeMap<String, Value>> = features
        .iter()
        .filter(|f| f.get("refScenario") == Some(&json!(sid)))
        .collect();
    assert!(!mine.is_empty());
    for f in &mine {
        assert_eq!(f["simulated"], true, "{f:?}");
        for k in ["intensity", "intensityChange", "volumeCapacityRatio"] {
            assert!(f[k].is_number(), "{k}: {f:?}");
        }
        let e = &results[f["id"].as_str().unwrap()];
        assert_eq!(num(&f["intensityChange"]), num(&e["intensityChange"]));
        assert_eq!(
            f.get("intensityChangePercent").map(num),
            e.get("intensityChangePercent").map(num)
        );
    }
    let tile_fab = mine
        .iter()
        .find(|f| f["id"] == json!(e))
        .expect("Fabianinkatu in its tile");
    assert_eq!(tile_fab["closed"], true);
    assert_eq!(num(&tile_fab["intensity"]), 0.0);
    assert!(mine.iter().any(|f| num(&f["intensityChange"]) > 1.0));
    assert!(mine.iter().any(|f| f["intensityChangePercent"].is_number()));
    assert!(features
        .iter()
        .any(|f| f.get("refScenario") == Some(&json!(BASELINE_IRI))));
    let counter_feature = features
        .iter()
        .find(|f| f["id"] == "urn:ngsi-ld:TrafficFlowObserved:fabianinkatu-counter")
        .expect("the observed counter is in the tile");
    assert!(counter_feature.get("simulated").is_none());
    // the city style leaves simulated flows to the apps
    let style = get(&s, "/tiles/style.json").await;
    let tfo_layers: Vec<&Value> = style["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["source-layer"] == "TrafficFlowObserved")
        .collect();
    assert!(!tfo_layers.is_empty());
    for l in tfo_layers {
        assert!(l["filter"].to_string().contains("simulated"), "{l}");
    }
    style_is_valid(&style);

    // a rerun replaces the set: same ids, nothing stale (a leftover planted under the scenario's ids goes), and the
    // cached tile shows the new run
    let stale = result_id(&sid, "urn:ngsi-ld:RoadLink:gone-1");
    let r = s
        .post(
            "/entities",
            &json!({"id": stale, "type": "TrafficFlowObserved",
                    "simulated": {"type": "Property", "value": true},
                    "refScenario": {"type": "Relationship", "object": sid},
                    "location": {"type": "GeoProperty", "value": {"type": "LineString",
                        "coordinates": [[num(&at[0]), num(&at[1])], [num(&at[0]) + 0.0005, num(&at[1])]]}}}),
        )
        .await;
    assert_eq!(r.status(), 201);
    assert_eq!(
        query_all(&s, &results_query(&sid)).await.len(),
        lm.len() + 1
    );
    let (again, again_url) = run(&s, &scenario).await;
    assert_eq!(again["status"], "done", "{again}");
    let p2 = &again["summary"]["published"];
    assert_eq!(p2["deleted"], 1, "{p2}");
    assert_eq!(p2["created"], 0, "{p2}");
    eprintln!(
        "Helsinki: the rerun updated {} and deleted {} result entities in {:.3} s (solved in {:.3} s)",
        p2["updated"],
        p2["deleted"],
        num(&p2["seconds"]),
        num(&again["summary"]["seconds"]),
    );
    let rerun = query_all(&s, &results_query(&sid)).await;
    assert_eq!(
        rerun.keys().collect::<Vec<_>>(),
        results.keys().collect::<Vec<_>>()
    );
    let new_source = json!(format!("{}{again_url}", root(&s)));
    assert!(rerun.values().all(|e| e["source"] == new_source));
    let r = s.get(&format!("/entities/{}", enc(&stale))).await;
    assert_eq!(r.status(), 404);
    let features = tile_features(&s, "TrafficFlowObserved", t).await;
    let mine: Vec<&BTreeMap<String, Value>> = features
        .iter()
        .filter(|f| f.get("refScenario") == Some(&json!(sid)))
        .collect();
    assert!(!mine.is_empty() && mine.iter().all(|f| f["source"] == new_source));

    // deleting the scenario deletes its entities and nothing else
    let deleting = Instant::now();
    call(&s, Method::DELETE, &scenario, None, 204).await;
    eprintln!(
        "Helsinki: the scenario and its result entities deleted in {:.3} s",
        deleting.elapsed().as_secs_f64()
    );
    assert!(query_all(&s, &results_query(&sid)).await.is_empty());
    assert_eq!(
        query_all(&s, &results_query(BASELINE_IRI)).await.len(),
        bl.len()
    );
    assert!(tile_features(&s, "TrafficFlowObserved", t)
        .await
        .iter()
        .all(|f| f.get("refScenario") != Some(&json!(sid))));

    // a street the scenario adds: its entity takes the line of the edit, and refers to no RoadLink
    let korkea = s
        .get_json(&format!(
            "/entities?type=RoadLink&q={}&limit=1&options=keyValues",
            enc("name==\"Korkeavuorenkatu\";carAccess[forward]==true")
        ))
        .await;
    let path = json!([at, korkea[0]["location"]["coordinates"][0]]);
    let (created, added) = call(
        &s,
        Method::POST,
        "/api/scenarios",
        Some(&json!({"name": "A new street", "edits": [{"kind": "addLink", "path": path, "name": "Uusikatu"}]})),
        201,
    )
    .await;
    let added = added.expect("Location");
    let aid = created["id"].as_str().unwrap().to_string();
    let (done, added_run) = run(&s, &added).await;
    assert_eq!(done["status"], "done", "{done}");
    let links = get(&s, &format!("{added_run}/links")).await;
    let values = &links["links"]["added-0"];
    assert_eq!(values["geometry"]["coordinates"], path, "{values}");
    let fc = get(&s, &format!("{added_run}/links.geojson")).await;
    let feature = fc["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "added-0")
        .expect("the added street in the GeoJSON");
    assert_eq!(feature["geometry"]["coordinates"], path);
    assert!(feature["properties"].get("geometry").is_none(), "{feature}");
    let results = query_all(&s, &results_query(&aid)).await;
    assert_eq!(results.len(), lm.len() + 1);
    let new_street = &results[&result_id(&aid, "added-0")];
    assert!(
        new_street["id"].as_str().unwrap().ends_with(":%3Aadded-0"),
        "{new_street}"
    );
    assert_eq!(new_street["location"]["coordinates"], path);
    assert_eq!(new_street["name"], "Uusikatu");
    assert!(new_street.get("refRoadSegment").is_none(), "{new_street}");
    assert_eq!(num(&new_street["intensity"]), num(&values["flow"]));
    assert_eq!(
        num(&new_street["intensityChange"]),
        num(&new_street["intensity"])
    );
    assert!(
        num(&new_street["averageVehicleSpeed"]) > 0.0,
        "{new_street}"
    );
    call(&s, Method::DELETE, &added, None, 204).await;
    assert!(query_all(&s, &results_query(&aid)).await.is_empty());

    // the observed counter was never touched, and real counts are told apart from simulated ones
    let after = s
        .get_json("/entities/urn:ngsi-ld:TrafficFlowObserved:fabianinkatu-counter?options=sysAttrs")
        .await;
    assert_eq!(after, counter);
    let real = query_all(
        &s,
        &format!("type=TrafficFlowObserved&q={}", enc("!simulated")),
    )
    .await;
    assert_eq!(
        real.keys().collect::<Vec<_>>(),
        ["urn:ngsi-ld:TrafficFlowObserved:fabianinkatu-counter"]
    );
}

#[tokio::test]
async fn api_answers_cors() {
    let s = Server::start().await;
    let origin = "https://app.example";
    // a preflight for a GET with a header that needs one
    let r = s
        .http
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/api/scenarios", root(&s)),
        )
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "GET")
        .header("Access-Control-Request-Headers", "if-none-match")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let h = r.headers();
    assert_eq!(h["access-control-allow-origin"], "*");
    let methods = h["access-control-allow-methods"].to_str().unwrap();
    assert!(methods.contains("GET"), "{methods}");
    // writes stay same-origin
    assert!(
        !methods.contains("POST") && !methods.contains("DELETE"),
        "{methods}"
    );
    assert!(h.contains_key("access-control-allow-headers"));
    // the GET itself
    for path in [
        "/api/scenarios",
        "/api/datasets",
        "/api/scenarios/urn%3Angsi-ld%3AScenario%3Anope",
    ] {
        let r = s
            .http
            .get(format!("{}{path}", root(&s)))
            .header("Origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["access-control-allow-origin"], "*", "{path}");
        let exposed = r.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .to_ascii_lowercase();
        assert!(
            exposed.contains("location") && exposed.contains("etag"),
            "{exposed}"
        );
    }
    // the NGSI-LD API is unchanged
    let r = s
        .http
        .get(s.url("/entities?type=Building"))
        .header("Origin", origin)
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}
