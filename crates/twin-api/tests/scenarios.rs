//! Traffic scenarios under `/api/scenarios` over real HTTP and a real SQLite file: the Helsinki extract imported,
//! its baseline, a closure that moves traffic (stored results, per-`RoadLink` values, GeoJSON), a closure that cuts
//! zones off (reported, not failed), validation against the city, cancellation of a queued run, and errors.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use common::{assert_problem, import_helsinki, shared_data};
use serde_json::{json, Value};
use tokio::sync::oneshot;
use twin_api::{ApiConfig, AppState, SharedState};
use twin_model::Provenance;
use twin_store::{store_as_is, SqliteStore, Store};

/// The real server with its state at hand (to hold the run queue).
struct Twin {
    root: String,
    http: reqwest::Client,
    store: Arc<dyn Store>,
    state: SharedState,
    _dir: tempfile::TempDir,
    _shutdown: oneshot::Sender<()>,
}

async fn start() -> Twin {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(dir.path().join("twin.db")).expect("open store"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let config = ApiConfig {
        public_url: format!("http://{addr}"),
        ..ApiConfig::default()
    };
    let state = AppState::new(store.clone(), config);
    // scenarios are created and run by a signed-in account (a planner)
    let key = common::account_key(&store, "planner", &["planner"], &[], &["read", "write"]).await;
    let (tx, rx) = oneshot::channel::<()>();
    let serving = state.clone();
    tokio::spawn(async move {
        twin_api::serve_listener(serving, listener, async {
            let _ = rx.await;
        })
        .await
        .expect("serve");
    });
    Twin {
        root: format!("http://{addr}"),
        http: common::keyed_client(&key),
        store,
        state,
        _dir: dir,
        _shutdown: tx,
    }
}

impl Twin {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.root)
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> reqwest::Response {
        let mut req = self.http.request(method, self.url(path));
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(b.to_string());
        }
        req.send().await.expect("request")
    }

    /// A JSON answer of the expected status.
    async fn json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        status: u16,
    ) -> (Value, Option<String>) {
        common::json_call(&self.http, method, &self.url(path), body, status).await
    }

    async fn get(&self, path: &str) -> Value {
        self.json(reqwest::Method::GET, path, None, 200).await.0
    }

    /// Creates a scenario; its location.
    async fn scenario(&self, doc: Value) -> (Value, String) {
        let (v, loc) = self
            .json(reqwest::Method::POST, "/api/scenarios", Some(&doc), 201)
            .await;
        (v, loc.expect("Location"))
    }

    /// Starts a run; its location.
    async fn start_run(&self, scenario: &str, options: Option<&Value>) -> (Value, String) {
        let (v, loc) = self
            .json(
                reqwest::Method::POST,
                &format!("{scenario}/runs"),
                options,
                202,
            )
            .await;
        (v, loc.expect("Location"))
    }

    /// Polls a run until it is done, failed or cancelled.
    async fn finished(&self, run: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let v = self.get(run).await;
            let p = v["progress"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&p), "{v}");
            if ["done", "failed", "cancelled"].contains(&v["status"].as_str().unwrap()) {
                return v;
            }
            assert!(Instant::now() < deadline, "run {run} did not finish: {v}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn closure(name: &str, street: &str) -> Value {
    json!({"name": name, "description": format!("{street} closed for works"),
           "edits": [{"kind": "closeStreet", "name": street}]})
}

#[tokio::test]
async fn helsinki_scenarios() {
    use reqwest::Method;
    let Some(data) = shared_data() else { return };
    let t = start().await;
    assert!(import_helsinki(&t.store, &data).await > 3000);
    assert_eq!(t.get("/api/scenarios").await, json!([]));

    // the baseline: the city's own demand on its own streets, every trip served
    let base = t.get("/api/scenarios/baseline").await;
    let bs = &base["summary"];
    assert!(base["zones"].as_u64().unwrap() >= 8, "{base}");
    assert!(bs["trips"].as_f64().unwrap() > 100.0, "{bs}");
    assert_eq!(bs["unservedTrips"], 0.0, "{bs}");
    assert!(bs["converged"].as_bool().unwrap(), "{bs}");
    let base_vh = bs["vehicleHours"].as_f64().unwrap();
    assert!(base_vh > 0.0);
    let base_links = t.get("/api/scenarios/baseline/links").await;
    let bl = base_links["links"].as_object().unwrap();
    assert!(bl.len() > 500, "{}", bl.len());
    assert!(bl.values().all(|v| v.get("deltaFlow").is_none()));

    // closing Fabianinkatu: 201 with what the edit selected
    let (created, loc) = t
        .scenario(closure("Fabianinkatu closed", "Fabianinkatu"))
        .await;
    assert!(
        loc.starts_with("/api/scenarios/urn%3Angsi%2Dld%3AScenario%3A"),
        "{loc}"
    );
    let id = created["id"].as_str().unwrap().to_string();
    assert!(
        created["applied"]["edits"][0]["matched"].as_u64().unwrap() >= 60,
        "{created}"
    );
    let got = t.get(&loc).await;
    assert_eq!(got["name"], "Fabianinkatu closed");
    assert_eq!(got["id"], id);
    assert_eq!(got["edits"][0]["kind"], "closeStreet");
    assert_eq!(t.get("/api/scenarios").await.as_array().unwrap().len(), 1);

    let (queued, run) = t.start_run(&loc, None).await;
    assert!(run.starts_with(&format!("{loc}/runs/")), "{run}");
    assert_eq!(
        queued["request"]["scenario"]["edits"][0]["name"],
        "Fabianinkatu"
    );
    let r = t.finished(&run).await;
    assert_eq!(r["status"], "done", "{r}");
    assert_eq!(r["progress"], 1.0);
    let s = &r["summary"];
    assert_eq!(s["unservedTrips"], 0.0, "{s}");
    assert!(s["converged"].as_bool().unwrap(), "{s}");
    let vh = s["vehicleHours"].as_f64().unwrap();
    assert!(vh > base_vh, "{vh} veh-h vs {base_vh} in the baseline");
    assert_eq!(s["baseline"]["vehicleHours"].as_f64().unwrap(), base_vh);
    assert!(s["delta"]["vehicleHours"].as_f64().unwrap() > 0.0, "{s}");
    assert!(s["closedLinks"].as_u64().unwrap() >= 60);
    assert!(s["streets"]
        .as_array()
        .unwrap()
        .iter()
        .any(|st| st["name"] == "Fabianinkatu" && st["deltaPct"] == -100.0));
    assert!(r["startedAt"].is_string() && r["finishedAt"].is_string());
    eprintln!(
        "Helsinki: baseline {:.1} veh-km, {:.2} veh-h, built and solved in {:.2} s; Fabianinkatu closed: {:.1} veh-km, \
         {:.2} veh-h, {} iterations, {:.3} s solving, {} of {} origins warm",
        bs["vehicleKm"].as_f64().unwrap(),
        base_vh,
        base["seconds"].as_f64().unwrap(),
        s["vehicleKm"].as_f64().unwrap(),
        vh,
        s["iterations"],
        s["seconds"].as_f64().unwrap(),
        s["warmOrigins"],
        base["zones"],
    );

    // per RoadLink: the closed street carries nothing, other links gained
    let links = t.get(&format!("{run}/links")).await;
    assert_eq!(links["run"], r["id"]);
    let lm = links["links"].as_object().unwrap();
    assert_eq!(lm.len(), bl.len());
    let fab: Vec<&Value> = lm
        .values()
        .filter(|v| v["name"] == "Fabianinkatu")
        .collect();
    assert!(!fab.is_empty());
    for v in &fab {
        assert_eq!(v["closed"], true, "{v}");
        assert_eq!(v["flow"], 0.0, "{v}");
        assert!(v["deltaFlow"].as_f64().unwrap() <= 0.0, "{v}");
    }
    let gained = lm
        .values()
        .filter(|v| v["deltaFlow"].as_f64().unwrap() > 1e-6)
        .count();
    assert!(gained > 0, "no link gained flow");
    for v in lm.values() {
        assert!(v["flow"].as_f64().unwrap().is_finite() && v["vc"].as_f64().unwrap() >= 0.0);
    }
    assert!(!links["streets"].as_array().unwrap().is_empty());

    // as GeoJSON, with geometry
    let resp = t
        .send(Method::GET, &format!("{run}/links.geojson"), None)
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/geo+json"
    );
    let fc: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    assert_eq!(fc["type"], "FeatureCollection");
    let features = fc["features"].as_array().unwrap();
    assert_eq!(features.len(), lm.len());
    for f in features {
        assert_eq!(f["geometry"]["type"], "LineString", "{f}");
        assert!(f["geometry"]["coordinates"].as_array().unwrap().len() >= 2);
        assert_eq!(f["properties"]["id"], f["id"]);
        assert!(f["properties"]["flow"].is_number());
    }
    let listed = t.get(&format!("{loc}/runs")).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["status"], "done");
    // done is final
    assert_problem(t.send(Method::DELETE, &run, None).await, 409, "Conflict").await;

    // Kaivokatu's closure cuts zones off: done, with the unserved pairs reported
    let (_, kaivo) = t.scenario(closure("Kaivokatu closed", "Kaivokatu")).await;
    let (_, krun) = t.start_run(&kaivo, Some(&json!({"gap": 1e-7}))).await;
    let k = t.finished(&krun).await;
    assert_eq!(k["status"], "done", "{k}");
    let ks = &k["summary"];
    assert!(ks["unservedTrips"].as_f64().unwrap() > 0.0, "{ks}");
    let pairs = ks["unservedPairs"].as_array().unwrap();
    assert!(!pairs.is_empty());
    let listed: f64 = pairs.iter().map(|p| p["trips"].as_f64().unwrap()).sum();
    assert!((listed - ks["unservedTrips"].as_f64().unwrap()).abs() < 1e-6 * listed);
    assert!(pairs[0]["originAt"][0].as_f64().unwrap() > 24.0);
    assert!(k["message"].as_str().unwrap().contains("no route"), "{k}");
    assert_eq!(k["request"]["gap"], 1e-7);

    // edits that do not fit the city are refused with the edit named
    let p = assert_problem(
        t.send(
            Method::POST,
            "/api/scenarios",
            Some(&closure("typo", "Fabianinkaty")),
        )
        .await,
        400,
        "BadRequestData",
    )
    .await;
    let detail = p["detail"].as_str().unwrap();
    assert!(
        detail.contains("edits[0] (closeStreet)") && detail.contains("\"Fabianinkaty\""),
        "{detail}"
    );
    let bad = json!({"name": "x", "edits": [{"kind": "setSpeed", "target": {"street": "Fabianinkatu"}, "kmh": 0}]});
    assert_problem(
        t.send(Method::POST, "/api/scenarios", Some(&bad)).await,
        400,
        "BadRequestData",
    )
    .await;
    let bad = json!({"name": "x", "edits": [{"kind": "widenStreet", "name": "Fabianinkatu"}]});
    let p = assert_problem(
        t.send(Method::POST, "/api/scenarios", Some(&bad)).await,
        400,
        "BadRequestData",
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("widenStreet"), "{p}");
    assert_eq!(t.get("/api/scenarios").await.as_array().unwrap().len(), 2);

    // replaced in place (what a GET returned, edited, goes back); a bad edit leaves it as it was
    let mut doc = t.get(&loc).await;
    doc["name"] = json!("Fabianinkatu and a slower Mannerheimintie");
    doc["edits"]
        .as_array_mut()
        .unwrap()
        .push(json!({"kind": "setSpeed", "target": {"street": "Mannerheimintie"}, "kmh": 30}));
    t.json(Method::PUT, &loc, Some(&doc), 204).await;
    let got = t.get(&loc).await;
    assert_eq!(got["edits"].as_array().unwrap().len(), 2);
    assert_eq!(got["createdAt"], created["createdAt"]);
    doc["edits"][1]["target"]["street"] = json!("Mannerheimintiee");
    assert_problem(
        t.send(Method::PUT, &loc, Some(&doc)).await,
        400,
        "BadRequestData",
    )
    .await;
    assert_eq!(
        t.get(&loc).await["edits"][1]["target"]["street"],
        "Mannerheimintie"
    );

    // cancelling: with the queue held, a run stays queued until it is cancelled
    let hold = t.state.scenarios.pause().await;
    let (queued, qrun) = t.start_run(&loc, None).await;
    assert_eq!(queued["status"], "queued");
    assert_eq!(t.get(&qrun).await["status"], "queued");
    assert_problem(
        t.send(Method::GET, &format!("{qrun}/links"), None).await,
        409,
        "Conflict",
    )
    .await;
    let (c, _) = t.json(Method::DELETE, &qrun, None, 202).await;
    assert_eq!(c["cancelRequested"], true);
    let cancelled = t.finished(&qrun).await;
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    assert_eq!(cancelled["summary"], Value::Null);
    drop(hold);
    assert_problem(t.send(Method::DELETE, &qrun, None).await, 409, "Conflict").await;
    // the queue runs again
    let (_, again) = t.start_run(&loc, None).await;
    assert_eq!(t.finished(&again).await["status"], "done");

    // the baseline follows the city: a new building is a new baseline, a sensor somewhere is not
    let built = base["builtAt"].clone();
    let sensor = twin_model::ngsi::parse_entity(
        &json!({"id": "urn:ngsi-ld:AirQualityObserved:t", "type": "AirQualityObserved",
                "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [24.94, 60.17]}}}),
        &twin_model::context::Context::core(),
        Utc::now(),
        &Provenance::default(),
    )
    .unwrap();
    t.store
        .write(&sensor.id.clone(), store_as_is(sensor))
        .await
        .unwrap();
    assert_eq!(t.get("/api/scenarios/baseline").await["builtAt"], built);
    let house = twin_model::ngsi::parse_entity(
        &json!({"id": "urn:ngsi-ld:Building:t", "type": "Building",
                "category": {"type": "Property", "value": ["apartments"]},
                "location": {"type": "GeoProperty", "value": {"type": "Polygon", "coordinates": [[
                    [24.944, 60.166], [24.945, 60.166], [24.945, 60.1665], [24.944, 60.166]]]}}}),
        &twin_model::context::Context::core(),
        Utc::now(),
        &Provenance::default(),
    )
    .unwrap();
    t.store
        .write(&house.id.clone(), store_as_is(house))
        .await
        .unwrap();
    let rebuilt = t.get("/api/scenarios/baseline").await;
    assert_ne!(rebuilt["builtAt"], built);
    assert!(rebuilt["mapHead"].as_i64().unwrap() > base["mapHead"].as_i64().unwrap());

    // deleting a scenario deletes its runs
    t.json(Method::DELETE, &loc, None, 204).await;
    assert_problem(
        t.send(Method::GET, &loc, None).await,
        404,
        "ResourceNotFound",
    )
    .await;
    assert_problem(
        t.send(Method::GET, &run, None).await,
        404,
        "ResourceNotFound",
    )
    .await;
    assert_eq!(t.get("/api/scenarios").await.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn errors_without_a_city() {
    use reqwest::Method;
    let t = start().await;
    // nothing to build a traffic model from
    assert_problem(
        t.send(Method::GET, "/api/scenarios/baseline", None).await,
        409,
        "Conflict",
    )
    .await;
    let p = assert_problem(
        t.send(
            Method::POST,
            "/api/scenarios",
            Some(&closure("x", "Fabianinkatu")),
        )
        .await,
        409,
        "Conflict",
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("RoadLink"), "{p}");
    // malformed requests
    let r = t
        .http
        .post(t.url("/api/scenarios"))
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_problem(r, 400, "InvalidRequest").await;
    for (doc, says) in [
        (json!([1, 2]), "JSON object"),
        (json!({"edits": []}), "name"),
        (json!({"name": "x", "id": "not a uri"}), "URI"),
        (json!({"name": "x", "id": "baseline"}), "reserved"),
        (json!({"name": "x", "colour": "red"}), "colour"),
        (
            json!({"name": "x", "edits": [{"kind": "closeArea", "polygon": {"type": "Point", "coordinates": [1, 2]}}]}),
            "Polygon",
        ),
    ] {
        let p = assert_problem(
            t.send(Method::POST, "/api/scenarios", Some(&doc)).await,
            400,
            "BadRequestData",
        )
        .await;
        assert!(p["detail"].as_str().unwrap().contains(says), "{doc}: {p}");
    }
    let r = t
        .http
        .post(t.url("/api/scenarios"))
        .header("Content-Type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_problem(r, 415, "UnsupportedMediaType").await;
    // missing things are 404
    let missing = "/api/scenarios/urn%3Angsi-ld%3AScenario%3Anope";
    for path in [
        missing.to_string(),
        format!("{missing}/runs"),
        format!("{missing}/runs/urn%3Ax%3Arun"),
        format!("{missing}/runs/urn%3Ax%3Arun/links"),
        format!("{missing}/runs/urn%3Ax%3Arun/links.geojson"),
    ] {
        assert_problem(
            t.send(Method::GET, &path, None).await,
            404,
            "ResourceNotFound",
        )
        .await;
    }
    assert_problem(
        t.send(Method::POST, &format!("{missing}/runs"), None).await,
        404,
        "ResourceNotFound",
    )
    .await;
    assert_problem(
        t.send(Method::DELETE, missing, None).await,
        404,
        "ResourceNotFound",
    )
    .await;
    assert_problem(
        t.send(Method::PUT, missing, Some(&json!({"name": "x"})))
            .await,
        404,
        "ResourceNotFound",
    )
    .await;
    assert_problem(
        t.send(Method::GET, "/api/scenarios?limit=3", None).await,
        400,
        "BadRequestData",
    )
    .await;
}
