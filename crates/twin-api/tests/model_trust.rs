//! Models under the trust policies, over real HTTP (SQLite, and PostgreSQL with `URBANTWIN_TEST_STORE=postgres`):
//! scenario writes need an account and belong to their creator, a run needs read access to every input dataset and
//! is logged in the usage log of those that are not public, runs and 15-minute city answers carry their provenance,
//! the results dataset is no more open than the inputs, and a private dataset's points of interest shape only the
//! answers of those who may read it. The city is a small synthetic street grid, so that every model runs in seconds.

mod common;

use std::time::{Duration, Instant};

use common::grid::*;
use common::*;
use reqwest::{Client, Method};
use serde_json::{json, Value};

const SHOPS: &str = "urn:ngsi-ld:Dataset:shops";
const RESULTS: &str = "urn:ngsi-ld:Dataset:urbantwin-scenario-results";
const DEFAULT: &str = "urn:ngsi-ld:Dataset:default";
/// The grocery of the shops dataset, in the north-east corner (far from the public one).
fn private_grocery() -> Vec<Value> {
    let far = (N - 1) as f64;
    vec![poi(
        "urn:ngsi-ld:PointOfInterest:grocery-ne",
        "grocery",
        LON0 + (far - 0.5) * DLON,
        LAT0 + (far - 0.1) * DLAT,
    )]
}

async fn call(http: &Client, method: Method, url: &str, body: Option<&Value>) -> (u16, Value) {
    let mut r = http.request(method, url);
    if let Some(b) = body {
        r = r
            .header("Content-Type", "application/json")
            .body(b.to_string());
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Asserts a ProblemDetails answer of `status` (401 Unauthenticated, 403 AccessDenied); its detail.
fn problem(got: (u16, Value), status: u16) -> String {
    let kind = if status == 401 {
        "Unauthenticated"
    } else {
        "AccessDenied"
    };
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(
        got.1["type"],
        format!("https://uri.etsi.org/ngsi-ld/errors/{kind}"),
        "{}",
        got.1
    );
    got.1["detail"].as_str().unwrap().to_string()
}

/// Writes entities (in `dataset` when given) as `http`.
async fn write(s: &Server, http: &Client, entities: Vec<Value>, dataset: Option<&str>) {
    let mut r = http
        .post(s.url("/entityOperations/upsert"))
        .header("Content-Type", "application/json")
        .body(Value::Array(entities).to_string());
    if let Some(d) = dataset {
        r = r.header("X-Urbantwin-Dataset", d);
    }
    let resp = r.send().await.unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
}

/// The shops dataset, owned by `olivia`, readable by `read`.
async fn shops(s: &Server, olivia: &Client, read: Value) {
    let d = json!({"id": SHOPS, "title": "Shops of the retail association", "owner": "olivia",
                   "licence": "proprietary", "read": read, "write": {"kind": "private"}});
    let (st, b) = call(
        olivia,
        Method::POST,
        &format!("{}/api/datasets", s.root()),
        Some(&d),
    )
    .await;
    assert_eq!(st, 201, "{b}");
    write(s, olivia, private_grocery(), Some(SHOPS)).await;
}

async fn finished(s: &Server, http: &Client, run: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let (st, v) = call(http, Method::GET, &format!("{}{run}", s.root()), None).await;
        assert_eq!(st, 200, "{v}");
        if ["done", "failed", "cancelled"].contains(&v["status"].as_str().unwrap()) {
            return v;
        }
        assert!(Instant::now() < deadline, "run {run} did not finish: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn closure() -> Value {
    json!({"name": "Keskuskatu closed", "edits": [{"kind": "closeStreet", "name": "Keskuskatu"}]})
}

/// Creates a scenario as `http`; its path.
async fn create(s: &Server, http: &Client) -> (Value, String) {
    let url = format!("{}/api/scenarios", s.root());
    let (v, loc) = json_call(http, Method::POST, &url, Some(&closure()), 201).await;
    (v, loc.unwrap())
}

/// Starts a run of the scenario at `scenario` as `http` (any status); the answer.
async fn start(s: &Server, http: &Client, scenario: &str, body: Option<&Value>) -> (u16, Value) {
    call(
        http,
        Method::POST,
        &format!("{}{scenario}/runs", s.root()),
        body,
    )
    .await
}

fn input<'a>(provenance: &'a Value, dataset: &str) -> Option<&'a Value> {
    provenance["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["dataset"] == dataset)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenarios_are_written_by_accounts_and_changed_by_their_owner() {
    let s = Server::start().await;
    let admin = s.admin_client().await;
    let city = grid_city();
    let entities = city.len() as u64;
    write(&s, &admin, city, None).await;
    let anonymous = Client::new();
    let device = s.client_of("meter-1", &["device"]).await;
    let ann = s.client_of("ann", &["citizen"]).await;
    let bob = s.client_of("bob", &["planner"]).await;
    let url = format!("{}/api/scenarios", s.root());

    // anonymous: 401; a device: 403; a key that may only read: 403
    problem(
        call(&anonymous, Method::POST, &url, Some(&closure())).await,
        401,
    );
    problem(
        call(&device, Method::POST, &url, Some(&closure())).await,
        403,
    );
    let reader = keyed_client(&account_key(&s.store, "ann", &["citizen"], &[], &["read"]).await);
    problem(
        call(&reader, Method::POST, &url, Some(&closure())).await,
        403,
    );
    let (st, list) = call(&anonymous, Method::GET, &url, None).await;
    assert_eq!((st, list), (200, json!([])));

    // a citizen creates one: it is theirs; everyone may read it
    let (created, path) = create(&s, &ann).await;
    assert_eq!(created["owner"], "ann", "{created}");
    let scenario = format!("{}{path}", s.root());
    let (st, read) = call(&anonymous, Method::GET, &scenario, None).await;
    assert_eq!(st, 200);
    assert_eq!(read["owner"], "ann");

    // nobody else changes it: anonymous 401, another citizen 403 (and the scenario is unchanged)
    let mut renamed = read.clone();
    renamed["name"] = json!("Keskuskatu closed for good");
    problem(
        call(&anonymous, Method::PUT, &scenario, Some(&renamed)).await,
        401,
    );
    problem(call(&anonymous, Method::DELETE, &scenario, None).await, 401);
    problem(start(&s, &anonymous, &path, None).await, 401);
    problem(start(&s, &device, &path, None).await, 403);
    let detail = problem(
        call(&bob, Method::PUT, &scenario, Some(&renamed)).await,
        403,
    );
    assert!(detail.contains("ann"), "{detail}");
    problem(call(&bob, Method::DELETE, &scenario, None).await, 403);
    assert_eq!(call(&anonymous, Method::GET, &scenario, None).await.1, read);

    // its owner runs it: the run names who asked, and its provenance the model, the parameters and the inputs
    let (st, queued) = start(
        &s,
        &ann,
        &path,
        Some(&json!({"gap": 1e-6, "maxSeconds": 60})),
    )
    .await;
    assert_eq!(st, 202, "{queued}");
    assert_eq!(queued["requestedBy"], "ann");
    assert_eq!(queued["provenance"]["requestedBy"], "ann");
    assert!(queued["provenance"]["computedAt"].is_null(), "{queued}");
    let run = format!("{path}/runs/{}", enc(queued["id"].as_str().unwrap()));
    let done = finished(&s, &ann, &run).await;
    assert_eq!(done["status"], "done", "{done}");
    let p = &done["provenance"];
    assert_eq!(p["model"]["version"], twin_sim::VERSION, "{p}");
    assert!(p["model"]["name"].as_str().unwrap().contains("traffic"));
    assert!(p["model"]["method"]
        .as_str()
        .unwrap()
        .contains("Algorithm B"));
    assert_eq!(p["parameters"]["gap"], 1e-6, "{p}");
    assert_eq!(p["parameters"]["algorithm"], "b", "{p}");
    assert_eq!(p["parameters"]["maxSeconds"], 60.0);
    assert!(p["parameters"]["demand"]["source"].is_string(), "{p}");
    assert_eq!(p["requestedBy"], "ann");
    let at = chrono::DateTime::parse_from_rfc3339(p["computedAt"].as_str().unwrap()).unwrap();
    assert_eq!(
        at,
        chrono::DateTime::parse_from_rfc3339(done["finishedAt"].as_str().unwrap()).unwrap()
    );
    assert_eq!(p["inputs"].as_array().unwrap().len(), 1, "{p}");
    let default = input(p, DEFAULT).unwrap();
    assert_eq!(default["entities"], entities, "{p}");
    assert!(default["licence"].is_string() && default["title"].is_string());
    // all the inputs are public: so are the results, and anyone reads them
    let (st, results) = call(
        &admin,
        Method::GET,
        &format!("{}/api/datasets/{}", s.root(), enc(RESULTS)),
        None,
    )
    .await;
    assert_eq!(st, 200, "{results}");
    assert_eq!(results["read"], json!({"kind": "public"}), "{results}");
    let (st, links) = call(
        &anonymous,
        Method::GET,
        &format!("{}{run}/links", s.root()),
        None,
    )
    .await;
    assert_eq!(st, 200, "{links}");
    assert!(links["links"].as_object().unwrap().len() >= 60);

    // a planner may run anyone's scenario they may read (a citizen only their own: tests/consultations.rs), but only
    // its owner or an administrator cancels its runs
    let (st, theirs) = start(&s, &bob, &path, None).await;
    assert_eq!(st, 202, "{theirs}");
    assert_eq!(theirs["requestedBy"], "bob");
    let bobs = format!(
        "{}{path}/runs/{}",
        s.root(),
        enc(theirs["id"].as_str().unwrap())
    );
    problem(call(&bob, Method::DELETE, &bobs, None).await, 403);
    problem(call(&anonymous, Method::DELETE, &bobs, None).await, 401);
    let (st, v) = call(&ann, Method::DELETE, &bobs, None).await;
    assert!(st == 202 || st == 409, "{st} {v}");

    // an administrator may change anyone's scenario; the owner stays
    let (st, v) = call(&admin, Method::PUT, &scenario, Some(&renamed)).await;
    assert_eq!(st, 204, "{v}");
    let (_, read) = call(&anonymous, Method::GET, &scenario, None).await;
    assert_eq!(
        (read["name"].as_str(), read["owner"].as_str()),
        (Some("Keskuskatu closed for good"), Some("ann"))
    );
    let (st, v) = call(&admin, Method::DELETE, &scenario, None).await;
    assert_eq!(st, 204, "{v}");

    // the owner replaces and deletes their own
    let (_, path) = create(&s, &ann).await;
    let scenario = format!("{}{path}", s.root());
    let mut doc = closure();
    doc["description"] = json!("for the summer");
    assert_eq!(call(&ann, Method::PUT, &scenario, Some(&doc)).await.0, 204);
    assert_eq!(call(&ann, Method::DELETE, &scenario, None).await.0, 204);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_over_a_restricted_dataset_is_for_those_who_may_read_it() {
    let s = Server::start().await;
    let admin = s.admin_client().await;
    write(&s, &admin, grid_city(), None).await;
    let olivia =
        keyed_client(&account_key(&s.store, "olivia", &["data_owner"], &[], &["admin"]).await);
    // the shops' grocery is for the retail analysts (and its owner)
    shops(&s, &olivia, json!({"kind": "groups", "groups": ["retail"]})).await;
    let pete = s.client_of("pete", &["planner"]).await;
    let ada = keyed_client(
        &account_key(
            &s.store,
            "ada",
            &["planner"],
            &["retail"],
            &["read", "write"],
        )
        .await,
    );
    let anonymous = Client::new();

    // pete may create a scenario, but not run it: the run reads the shops, which pete may not read
    let (_, path) = create(&s, &pete).await;
    let detail = problem(start(&s, &pete, &path, None).await, 403);
    assert!(detail.contains(SHOPS), "{detail}");
    // nor read the baseline, which the shops shaped
    problem(
        call(
            &pete,
            Method::GET,
            &format!("{}/api/scenarios/baseline/links", s.root()),
            None,
        )
        .await,
        403,
    );
    problem(
        call(
            &anonymous,
            Method::GET,
            &format!("{}/api/scenarios/baseline", s.root()),
            None,
        )
        .await,
        401,
    );

    // ada may: the run lists both inputs, and the read of the shops is in their usage log
    let (st, queued) = start(&s, &ada, &path, None).await;
    assert_eq!(st, 202, "{queued}");
    let run = format!("{path}/runs/{}", enc(queued["id"].as_str().unwrap()));
    let done = finished(&s, &ada, &run).await;
    assert_eq!(done["status"], "done", "{done}");
    let p = &done["provenance"];
    assert_eq!(input(p, SHOPS).unwrap()["entities"], 1, "{p}");
    assert_eq!(input(p, SHOPS).unwrap()["owner"], "olivia", "{p}");
    assert_eq!(input(p, SHOPS).unwrap()["licence"], "proprietary", "{p}");
    assert!(input(p, DEFAULT).unwrap()["entities"].as_u64().unwrap() > 60);
    let usage = format!("{}/api/datasets/{}/usage", s.root(), enc(SHOPS));
    let (st, log) = call(&olivia, Method::GET, &usage, None).await;
    assert_eq!(st, 200, "{log}");
    let simulation: Vec<&Value> = log["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["operation"] == "simulation")
        .collect();
    assert_eq!(simulation.len(), 1, "{log}");
    assert_eq!(simulation[0]["entities"], 1);
    assert!(
        simulation[0]["principal"]
            .as_str()
            .unwrap()
            .starts_with("ada"),
        "{log}"
    );
    assert!(
        simulation[0]["detail"]
            .as_str()
            .unwrap()
            .contains(queued["id"].as_str().unwrap()),
        "{log}"
    );
    // pete's refused run left no record
    assert!(!log.to_string().contains("pete"), "{log}");

    // the results are no more open than the shops: for the retail group, not for pete nor anonymous callers
    let (_, results) = call(
        &admin,
        Method::GET,
        &format!("{}/api/datasets/{}", s.root(), enc(RESULTS)),
        None,
    )
    .await;
    assert_eq!(
        results["read"],
        json!({"kind": "groups", "groups": ["retail"]}),
        "{results}"
    );
    let links = format!("{}{run}/links", s.root());
    assert_eq!(call(&ada, Method::GET, &links, None).await.0, 200);
    problem(call(&pete, Method::GET, &links, None).await, 403);
    problem(call(&anonymous, Method::GET, &links, None).await, 401);
    let published = |http: Client| {
        let url = s.url("/entities?type=TrafficFlowObserved&limit=1000");
        async move {
            let (st, v) = call(&http, Method::GET, &url, None).await;
            assert_eq!(st, 200, "{v}");
            v.as_array().unwrap().len()
        }
    };
    assert!(published(ada.clone()).await >= 60);
    assert_eq!(published(pete.clone()).await, 0);
    assert_eq!(published(anonymous.clone()).await, 0);

    // the shops made private (no change to the map): the results follow at once, ada no longer reads them
    let d = json!({"id": SHOPS, "title": "Shops of the retail association", "owner": "olivia",
                   "licence": "proprietary", "read": {"kind": "private"}, "write": {"kind": "private"}});
    let (st, v) = call(
        &olivia,
        Method::PUT,
        &format!("{}/api/datasets/{}", s.root(), enc(SHOPS)),
        Some(&d),
    )
    .await;
    assert_eq!(st, 204, "{v}");
    let (_, results) = call(
        &admin,
        Method::GET,
        &format!("{}/api/datasets/{}", s.root(), enc(RESULTS)),
        None,
    )
    .await;
    assert_eq!(results["read"], json!({"kind": "private"}), "{results}");
    assert_eq!(published(ada.clone()).await, 0);
    problem(call(&ada, Method::GET, &links, None).await, 403);

    // once the shops are public, so are the results of the next baseline (a map change rebuilds it)
    let d = json!({"id": SHOPS, "title": "Shops of the retail association", "owner": "olivia",
                   "licence": "proprietary", "read": {"kind": "public"}, "write": {"kind": "private"}});
    let (st, v) = call(
        &olivia,
        Method::PUT,
        &format!("{}/api/datasets/{}", s.root(), enc(SHOPS)),
        Some(&d),
    )
    .await;
    assert_eq!(st, 204, "{v}");
    let mut moved = private_grocery();
    moved[0]["location"]["value"]["coordinates"][0] = json!(LON0 + 4.4 * DLON);
    write(&s, &olivia, moved, Some(SHOPS)).await;
    let (st, v) = start(&s, &pete, &path, None).await;
    assert_eq!(st, 202, "{v}");
    let (_, results) = call(
        &admin,
        Method::GET,
        &format!("{}/api/datasets/{}", s.root(), enc(RESULTS)),
        None,
    )
    .await;
    assert_eq!(results["read"], json!({"kind": "public"}), "{results}");
    s.stop().await;
}

fn share(v: &Value) -> f64 {
    v["categories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["category"] == "grocery")
        .unwrap()["shareWithin"]
        .as_f64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_point_of_interest_shapes_only_its_readers_fifteen_minute_city() {
    let s = Server::start().await;
    let admin = s.admin_client().await;
    write(&s, &admin, grid_city(), None).await;
    let olivia =
        keyed_client(&account_key(&s.store, "olivia", &["data_owner"], &[], &["admin"]).await);
    let anonymous = Client::new();
    let q = format!("{}/api/access?minutes=5&categories=grocery", s.root());
    let (st, before) = call(&anonymous, Method::GET, &q, None).await;
    assert_eq!(st, 200, "{before}");
    let p = &before["provenance"];
    assert_eq!(p["model"]["version"], twin_sim::VERSION, "{p}");
    assert_eq!(p["parameters"]["thresholdMinutes"], 5.0, "{p}");
    assert_eq!(p["parameters"]["categories"], json!(["grocery"]), "{p}");
    assert_eq!(p["parameters"]["mode"], "walk", "{p}");
    assert_eq!(p["inputs"].as_array().unwrap().len(), 1, "{p}");
    assert!(p["requestedBy"].is_null());
    let base = share(&before);
    assert!(base > 0.0 && base < 1.0, "{before}");

    // a private grocery in the far corner: the anonymous answer does not change, its owner's does
    shops(&s, &olivia, json!({"kind": "private"})).await;
    let (_, anon) = call(&anonymous, Method::GET, &q, None).await;
    assert_eq!(share(&anon), base, "{anon}");
    assert!(input(&anon["provenance"], SHOPS).is_none(), "{anon}");
    let (st, owners) = call(&olivia, Method::GET, &q, None).await;
    assert_eq!(st, 200, "{owners}");
    assert!(share(&owners) > base, "{owners} vs {before}");
    assert_eq!(input(&owners["provenance"], SHOPS).unwrap()["entities"], 1);
    assert_eq!(owners["provenance"]["requestedBy"], "olivia");
    // and again for the anonymous caller (not the owner's cached results)
    let (_, anon) = call(&anonymous, Method::GET, &q, None).await;
    assert_eq!(share(&anon), base, "{anon}");

    // the homes: the same for an anonymous caller as before the private grocery
    let homes = |http: Client| {
        let url = format!("{}/api/access/homes?minutes=5&categories=grocery", s.root());
        async move {
            let (st, v) = call(&http, Method::GET, &url, None).await;
            assert_eq!(st, 200, "{v}");
            v["features"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| {
                    f["properties"]["groceryMinutes"]
                        .as_f64()
                        .is_some_and(|m| m <= 5.0)
                })
                .count()
        }
    };
    assert!(homes(olivia.clone()).await > homes(anonymous.clone()).await);

    // what-if answers carry their provenance too
    let (st, what_if) = call(
        &olivia,
        Method::POST,
        &format!(
            "{}/api/access/scenario?minutes=5&categories=grocery",
            s.root()
        ),
        Some(
            &json!({"edits": [{"kind": "addDestination", "category": "grocery",
                                "lon": LON0 + 2.5 * DLON, "lat": LAT0 + 2.5 * DLAT}]}),
        ),
    )
    .await;
    assert_eq!(st, 200, "{what_if}");
    assert_eq!(input(&what_if["provenance"], SHOPS).unwrap()["entities"], 1);
    assert_eq!(what_if["provenance"]["parameters"]["thresholdMinutes"], 5.0);

    // open to a group: a member's answer reads the shops, and that read is in their usage log (not the owner's)
    let d = json!({"id": SHOPS, "title": "Shops of the retail association", "owner": "olivia",
                   "licence": "proprietary", "read": {"kind": "groups", "groups": ["retail"]},
                   "write": {"kind": "private"}});
    let (st, v) = call(
        &olivia,
        Method::PUT,
        &format!("{}/api/datasets/{}", s.root(), enc(SHOPS)),
        Some(&d),
    )
    .await;
    assert_eq!(st, 204, "{v}");
    let ada = keyed_client(
        &account_key(
            &s.store,
            "ada",
            &["planner"],
            &["retail"],
            &["read", "write"],
        )
        .await,
    );
    let (_, adas) = call(&ada, Method::GET, &q, None).await;
    assert_eq!(share(&adas), share(&owners), "{adas}");
    let (_, anon) = call(&anonymous, Method::GET, &q, None).await;
    assert_eq!(share(&anon), base, "{anon}");
    let (st, log) = call(
        &olivia,
        Method::GET,
        &format!("{}/api/datasets/{}/usage", s.root(), enc(SHOPS)),
        None,
    )
    .await;
    assert_eq!(st, 200, "{log}");
    let records = log["records"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{log}");
    assert_eq!(records[0]["operation"], "accessibility", "{log}");
    assert_eq!(records[0]["entities"], 1, "{log}");
    assert!(records[0]["principal"].as_str().unwrap().starts_with("ada"));
    s.stop().await;
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_is_checked_again_against_the_inputs_it_is_computed_on() {
    // a node that computes no runs: the run stays queued while the shops close to the group
    let config = |enabled: bool| twin_api::ApiConfig {
        jobs: twin_api::scenarios::JobsConfig {
            enabled,
            ..Default::default()
        },
        ..Default::default()
    };
    let s = Server::start_with(config(false), None).await;
    let admin = s.admin_client().await;
    write(&s, &admin, grid_city(), None).await;
    let olivia =
        keyed_client(&account_key(&s.store, "olivia", &["data_owner"], &[], &["admin"]).await);
    shops(&s, &olivia, json!({"kind": "groups", "groups": ["retail"]})).await;
    let ada_key = account_key(
        &s.store,
        "ada",
        &["citizen"],
        &["retail"],
        &["read", "write"],
    )
    .await;
    let ada = keyed_client(&ada_key);
    let (_, path) = create(&s, &ada).await;
    let (st, queued) = start(&s, &ada, &path, None).await;
    assert_eq!(st, 202, "{queued}");
    // the requester's roles and groups are kept with the run, not shown
    assert!(queued["request"].get("requester").is_none(), "{queued}");
    let d = json!({"id": SHOPS, "title": "Shops of the retail association", "owner": "olivia",
                   "licence": "proprietary", "read": {"kind": "private"}, "write": {"kind": "private"}});
    let (st, v) = call(
        &olivia,
        Method::PUT,
        &format!("{}/api/datasets/{}", s.root(), enc(SHOPS)),
        Some(&d),
    )
    .await;
    assert_eq!(st, 204, "{v}");

    // a node that computes runs takes it, and refuses it: ada may no longer read the shops
    let dir = s.stop().await;
    let s = Server::start_with(config(true), Some(dir)).await;
    let run = format!("{path}/runs/{}", enc(queued["id"].as_str().unwrap()));
    let ended = finished(&s, &keyed_client(&ada_key), &run).await;
    assert_eq!(ended["status"], "failed", "{ended}");
    let message = ended["message"].as_str().unwrap();
    assert!(
        message.contains(SHOPS) && message.contains("ada"),
        "{message}"
    );
    s.stop().await;
}
