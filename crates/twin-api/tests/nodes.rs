//! Two API nodes on one PostgreSQL database, as a city runs them behind a load balancer: a write on one is read on
//! the other at once, a subscription made on one fires exactly once per change whichever node took the write, and a
//! context registered on one is used by the other. Scenario runs are jobs: a run created on an API-only node is
//! computed by the other and read with its results on the first, a cancel on one node stops a run computed on the
//! other, and a run whose node dies is finished by the other once its lease runs out. PostgreSQL only (skipped,
//! saying why, without it; run under CI).

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use twin_api::scenarios::JobsConfig;
use twin_api::{ApiConfig, AppState, SharedState};
use twin_store::testing::TestDatabase;
use twin_store::{PostgresStore, Store};

/// One node: a server on its own port over its own connection pool to the shared database.
async fn node(url: &str) -> String {
    let store: Arc<dyn Store> = Arc::new(PostgresStore::connect(url).await.unwrap());
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let config = ApiConfig {
        public_url: format!("http://{addr}"),
        ..Default::default()
    };
    let state = AppState::new(store, config);
    tokio::spawn(twin_api::serve_listener(state, l, std::future::pending()));
    format!("http://{addr}/ngsi-ld/v1")
}

/// An HTTP endpoint that keeps every notification it gets.
async fn receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    async fn take(State(got): State<Arc<Mutex<Vec<Value>>>>, Json(v): Json<Value>) {
        got.lock().unwrap().push(v);
    }
    let got = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new()
        .route("/notify", post(take))
        .with_state(got.clone());
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/notify", l.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    (url, got)
}

async fn send(http: &reqwest::Client, method: reqwest::Method, url: String, body: Value) -> u16 {
    http.request(method, url)
        .header("content-type", "application/ld+json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_one_database() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let a = node(db.url()).await;
    let b = node(db.url()).await;
    // an administrator's client (registering and deleting contexts need one)
    let admin = {
        let store = PostgresStore::connect(db.url()).await.unwrap();
        common::make_key(&store, "admin", &["admin"], &[], &["admin"], None).await
    };
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {admin}").parse().unwrap(),
    );
    let http = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap();
    let ctx = common::CORE;

    // a write on one node is read on the other at once
    let car =
        |id: &str, speed: u32| json!({"id": id, "type": "Car", "speed": speed, "@context": ctx});
    assert_eq!(
        send(
            &http,
            reqwest::Method::POST,
            format!("{a}/entities"),
            car("urn:ngsi-ld:Car:1", 10)
        )
        .await,
        201
    );
    let (got, _) = common::json_call(
        &http,
        reqwest::Method::GET,
        &format!("{b}/entities/urn:ngsi-ld:Car:1"),
        None,
        200,
    )
    .await;
    assert_eq!(got["speed"]["value"], 10, "{got}");

    // a subscription made on one node fires once per change, whichever node took the write
    let (endpoint, got) = receiver().await;
    let sub = json!({"type": "Subscription", "entities": [{"type": "Car"}], "watchedAttributes": ["speed"],
                     "notification": {"format": "keyValues", "endpoint": {"uri": endpoint}}, "@context": ctx});
    assert_eq!(
        send(
            &http,
            reqwest::Method::POST,
            format!("{a}/subscriptions"),
            sub
        )
        .await,
        201
    );
    const CHANGES: u32 = 40;
    for i in 1..=CHANGES {
        let node = if i % 2 == 0 { &a } else { &b };
        let body = json!({"speed": {"type": "Property", "value": 100 + i}, "@context": ctx});
        let status = send(
            &http,
            reqwest::Method::PATCH,
            format!("{node}/entities/urn:ngsi-ld:Car:1/attrs"),
            body,
        )
        .await;
        assert_eq!(status, 204);
    }
    let t = Instant::now();
    loop {
        let seen: Vec<u64> = got
            .lock()
            .unwrap()
            .iter()
            .flat_map(|n| n["data"].as_array().cloned().unwrap_or_default())
            .map(|d| d["speed"].as_u64().unwrap())
            .collect();
        if seen.len() >= CHANGES as usize {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "only {} notifications: {seen:?}",
            seen.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // both nodes' workers had time to send anything twice
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut seen: Vec<u64> = got
        .lock()
        .unwrap()
        .iter()
        .flat_map(|n| n["data"].as_array().cloned().unwrap_or_default())
        .map(|d| d["speed"].as_u64().unwrap())
        .collect();
    seen.sort();
    let want: Vec<u64> = (1..=CHANGES as u64).map(|i| 100 + i).collect();
    assert_eq!(seen, want, "every change notified exactly once");

    // a context registered through one node is used by the other; once deleted through the first, the other no
    // longer uses it (its cache of built contexts is dropped when the database announces the change)
    let doc = json!({"@context": {"vitesse": "https://example.org/vocab#speed"}});
    let r = http
        .post(format!("{a}/jsonldContexts"))
        .header("content-type", "application/json")
        .body(doc.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let hosted = r.headers()["location"].to_str().unwrap().to_string();
    let link = format!(
        "<{hosted}>; rel=\"http://www.w3.org/ns/json-ld#context\"; type=\"application/ld+json\""
    );
    let create_on_b = |id: &str| {
        http.post(format!("{b}/entities"))
            .header("content-type", "application/json")
            .header("link", link.clone())
            .body(json!({"id": id, "type": "Car", "vitesse": 5}).to_string())
            .send()
    };
    let r = create_on_b("urn:ngsi-ld:Car:2").await.unwrap();
    assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap());
    let (e, _) = common::json_call(
        &http,
        reqwest::Method::GET,
        &format!("{a}/entities/urn:ngsi-ld:Car:2"),
        None,
        200,
    )
    .await;
    assert_eq!(e["https://example.org/vocab#speed"]["value"], 5, "{e}");
    let id = hosted.rsplit('/').next().unwrap();
    let r = http
        .delete(format!("{a}/jsonldContexts/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let t = Instant::now();
    loop {
        let r = create_on_b("urn:ngsi-ld:Car:3").await.unwrap();
        if r.status().as_u16() != 201 {
            let p: Value = r.json().await.unwrap();
            assert!(
                p["type"]
                    .as_str()
                    .unwrap()
                    .contains("LdContextNotAvailable"),
                "{p}"
            );
            break;
        }
        // created with the stale context: undo, and wait for the announcement
        http.delete(format!("{b}/entities/urn:ngsi-ld:Car:3"))
            .send()
            .await
            .unwrap();
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "node b kept using a deleted context"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A node with its state at hand, computing runs as `jobs` says.
struct Node {
    root: String,
    state: SharedState,
}

async fn api_node(url: &str, jobs: JobsConfig) -> Node {
    let store: Arc<dyn Store> = Arc::new(PostgresStore::connect(url).await.unwrap());
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let config = ApiConfig {
        public_url: format!("http://{addr}"),
        jobs,
        ..Default::default()
    };
    let state = AppState::new(store, config);
    tokio::spawn(twin_api::serve_listener(
        state.clone(),
        l,
        std::future::pending(),
    ));
    Node {
        root: format!("http://{addr}"),
        state,
    }
}

/// A node on a runtime of its own, which the test can kill: every task of the node (server, run worker,
/// heartbeats, database connections) stops at once, as when its machine dies.
struct KillableNode {
    root: String,
    rt: Option<tokio::runtime::Runtime>,
}

impl KillableNode {
    fn start(url: &str, jobs: JobsConfig) -> KillableNode {
        let url = url.to_string();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            let root = rt.block_on(async { api_node(&url, jobs).await.root });
            KillableNode { root, rt: Some(rt) }
        })
        .join()
        .unwrap()
    }

    fn kill(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for KillableNode {
    fn drop(&mut self) {
        self.kill();
    }
}

fn fast_jobs(enabled: bool) -> JobsConfig {
    JobsConfig {
        enabled,
        lease: Duration::from_millis(1500),
        poll: Duration::from_millis(300),
        ..JobsConfig::default()
    }
}

/// A client signed in (API key) as a planner, who may create and run scenarios, of the nodes' shared database.
async fn planner(node: &Node) -> reqwest::Client {
    let key = common::account_key(
        &node.state.store,
        "planner",
        &["planner"],
        &[],
        &["read", "write"],
    )
    .await;
    common::keyed_client(&key)
}

/// The Helsinki extract in the shared database, and a scenario closing a street created through `node`; its URL.
async fn city_and_scenario(http: &reqwest::Client, node: &Node) -> String {
    let data = common::shared_data().expect("checked by the caller");
    common::import_helsinki(&node.state.store, &data).await;
    let doc = json!({"name": "works", "edits": [{"kind": "closeStreet", "name": "Fabianinkatu"}]});
    let (_, loc) = common::json_call(
        http,
        reqwest::Method::POST,
        &format!("{}/api/scenarios", node.root),
        Some(&doc),
        201,
    )
    .await;
    format!("{}{}", node.root, loc.expect("Location"))
}

async fn start_run(http: &reqwest::Client, scenario: &str, options: Value) -> String {
    let (v, loc) = common::json_call(
        http,
        reqwest::Method::POST,
        &format!("{scenario}/runs"),
        Some(&options),
        202,
    )
    .await;
    assert_eq!(v["status"], "queued", "{v}");
    loc.expect("Location")
}

async fn get(http: &reqwest::Client, url: &str) -> Value {
    common::json_call(http, reqwest::Method::GET, url, None, 200)
        .await
        .0
}

/// Polls a run on a node until `until` holds of it.
async fn wait_for(
    http: &reqwest::Client,
    url: &str,
    within: Duration,
    until: impl Fn(&Value) -> bool,
) -> Value {
    let t = Instant::now();
    loop {
        let v = get(http, url).await;
        if until(&v) {
            return v;
        }
        assert!(t.elapsed() < within, "{url} after {within:?}: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ended(v: &Value) -> bool {
    ["done", "failed", "cancelled"].contains(&v["status"].as_str().unwrap_or_default())
}

fn computing(v: &Value) -> bool {
    v["status"] == "running" && v["progress"].as_f64().unwrap_or(0.0) > 0.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_are_jobs_that_any_node_computes() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    if common::shared_data().is_none() {
        return;
    }
    // a computes no runs (an API-only node); b does
    let a = api_node(db.url(), fast_jobs(false)).await;
    let b = api_node(db.url(), fast_jobs(true)).await;
    let http = planner(&a).await;
    let scenario = city_and_scenario(&http, &a).await;

    // a cancel on a stops the run b computes (here while b builds its baseline): the flag in the database, seen at
    // b's next heartbeat
    let first = start_run(&http, &scenario, json!({})).await;
    let on_a = format!("{}{first}", a.root);
    let running = wait_for(&http, &on_a, Duration::from_secs(60), |v| {
        v["status"] != "queued"
    })
    .await;
    assert_eq!(
        running["status"], "running",
        "claimed by b, seen on a: {running}"
    );
    let asked = Instant::now();
    let (c, _) = common::json_call(&http, reqwest::Method::DELETE, &on_a, None, 202).await;
    assert_eq!(c["cancelRequested"], true, "{c}");
    let cancelled = wait_for(&http, &on_a, Duration::from_secs(30), ended).await;
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "the cancel took {:?}",
        asked.elapsed()
    );
    assert_eq!(cancelled["summary"], Value::Null);
    assert_conflict_on_links(&http, &on_a).await;

    // a run created on a is computed by b, and read on a with its results
    let run = start_run(&http, &scenario, json!({})).await;
    let on_a = format!("{}{run}", a.root);
    let done = wait_for(&http, &on_a, Duration::from_secs(300), ended).await;
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(done["progress"], 1.0);
    assert!(
        done["summary"]["vehicleKm"].as_f64().unwrap() > 0.0,
        "{done}"
    );
    let links = get(&http, &format!("{on_a}/links")).await;
    assert!(links["links"].as_object().unwrap().len() > 100, "{links}");
    // the same on b
    assert_eq!(get(&http, &format!("{}{run}", b.root)).await, done);
}

/// The results of a run that did not finish are a conflict.
async fn assert_conflict_on_links(http: &reqwest::Client, run: &str) {
    let r = http.get(format!("{run}/links")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_node_died_is_finished_by_another_node() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    if common::shared_data().is_none() {
        return;
    }
    let a = api_node(db.url(), fast_jobs(true)).await;
    // a claims nothing while held, so b gets the run
    let hold = a.state.scenarios.pause().await;
    let mut b = KillableNode::start(db.url(), fast_jobs(true));
    let http = planner(&a).await;
    let scenario = city_and_scenario(&http, &a).await;
    let run = start_run(&http, &scenario, json!({"gap": 1e-14, "maxSeconds": 20})).await;
    let on_a = format!("{}{run}", a.root);
    let on_b = format!("{}{run}", b.root);
    let first = wait_for(&http, &on_b, Duration::from_secs(120), |v| {
        computing(v) || ended(v)
    })
    .await;
    assert_eq!(first["status"], "running", "{first}");

    // b dies in the middle of the run; a takes over once b's lease has run out
    b.kill();
    let killed = Instant::now();
    drop(hold);
    let done = wait_for(&http, &on_a, Duration::from_secs(300), ended).await;
    assert_eq!(done["status"], "done", "{done}");
    assert_ne!(
        done["startedAt"], first["startedAt"],
        "computed again: {done}"
    );
    assert!(killed.elapsed() > Duration::from_millis(1500));
    let links = get(&http, &format!("{on_a}/links")).await;
    assert!(links["links"].as_object().unwrap().len() > 100);
}
