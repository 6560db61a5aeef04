//! `/api/scenarios`: traffic scenarios (named lists of edits on the city's street network), their runs and results,
//! and the publication of those results into the hub as simulated `TrafficFlowObserved` entities.
//!
//! The baseline is the city's traffic model built from the store's `RoadLink`, `Building` and `PointOfInterest`
//! entities ([`twin_sim::traffic::city::build`]) and assigned once; it is kept in memory with the store's map-change
//! head and rebuilt when one of those types changed on the map. A scenario is checked against it when it is stored
//! (an unknown street is a 400). A run is a job: it is stored `queued`, and the worker of any node that computes runs
//! ([`work`]; several nodes may share one PostgreSQL database) claims it in the store, holds it under a lease it
//! renews while computing (the heartbeat also writes the progress and reads the cancel flag, so any node shows the
//! run and can cancel it), and solves it off the async runtime (`spawn_blocking`, at most
//! [`JobsConfig::max_concurrent`] runs per node) warm-started from the baseline. A run whose node died is requeued
//! when its lease expires and computed by another node, up to [`JobsConfig::max_attempts`] times. Its results (per-`RoadLink` flows, volume/capacity, travel times and the change against the baseline,
//! per-street changes and the totals) are stored with the run and served as JSON keyed by `RoadLink` entity id (for
//! MapLibre feature state on the `RoadLink` tiles) and as GeoJSON. The latest done run of each scenario, and the
//! baseline, are also published as NGSI-LD `TrafficFlowObserved` entities marked `simulated` (one per `RoadLink` or
//! added street, in the dataset [`RESULTS_DATASET`]), written in one transaction per result set, so that the NGSI-LD
//! API, OGC API and the `TrafficFlowObserved` tile layer serve them (see "publishing results" below).
//!
//! Trust: reads of scenarios and runs are public; writes need an account ([`policy::may_create_scenario`]) and
//! changes to a scenario its owner or an administrator ([`policy::may_change_scenario`]). The datasets the baseline is
//! built from are a run's inputs: starting a run and reading the baseline's or a run's results need read access to
//! each (the [`Guard`]'s check), a run's reads of those not public go to their usage log, a run records its
//! `provenance` (model, parameters, inputs, who asked, when), and the results dataset is readable by no more than the
//! inputs ([`policy::narrowest_access`]).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use twin_model::context::Context;
use twin_model::entity::iri;
use twin_model::policy::{self, Principal};
use twin_model::query::TypeExpr;
use twin_model::{Dataset, Entity, ErrorKind, Provenance};
use twin_sim::air::city::{AirCity, AirOptions, AirResult};
use twin_sim::traffic::assign::{Algorithm, Solution};
use twin_sim::traffic::city::{self, CityModel, CityOptions};
use twin_sim::traffic::scenario::{self as sim, Outcome, RunOptions, RunProgress, Scenario};
use twin_store::{
    ChangeOutcome, ClaimedRun, EntityChange, EntityQuery, RunLease, RunStatus, StoredRun,
    StoredScenario, StreamMsg,
};

use crate::error::{ApiError, ApiResult};
use crate::guard::Guard;
use crate::params::Params;
use crate::provenance::{counts_of, dataset_counts, inputs_json};
use crate::{ld, parse_body, path_segment, SharedState};

const V: &str = iri::DEFAULT_CONTEXT;
/// The entity types the traffic model is built from: a map change to one of them rebuilds the baseline.
/// `TrafficFlowObserved` must never be one of them: publishing the baseline writes `TrafficFlowObserved` entities,
/// and a type that both feeds the baseline and is written by it would rebuild (and republish) it forever.
pub(crate) const MODEL_TYPES: [&str; 3] = ["RoadLink", "Building", "PointOfInterest"];
/// The baseline is solved once, so it is solved far (a scenario's delta means something only when both solutions
/// are converged beyond the differences it shows).
const BASELINE_GAP: f64 = 1e-10;
const BASELINE_MAX_SECONDS: f64 = 300.0;
const DEFAULT_GAP: f64 = 1e-8;
const DEFAULT_MAX_SECONDS: f64 = 600.0;
/// How often a running run's progress is looked at (and written to the store when it moved).
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// The longest time between two heartbeats of a running run (shorter when the lease is short): how soon a cancel
/// requested on another node is seen.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);
/// The id reserved for the baseline in `/api/scenarios/{id}`.
pub(crate) const BASELINE_ID: &str = "baseline";
/// Streets listed in a run's summary (all of them are in its `/links`).
const SUMMARY_STREETS: usize = 10;
/// The entity type whose measurements calibrate the air model's background.
pub const AIR_STATION_TYPE: &str = "AirQualityObserved";

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/scenarios", get(list).post(create))
        .route("/scenarios/baseline", get(baseline_summary))
        .route("/scenarios/baseline/links", get(baseline_links))
        .route("/scenarios/baseline/links.geojson", get(baseline_geojson))
        .route("/scenarios/{id}", get(retrieve).put(replace).delete(remove))
        .route("/scenarios/{id}/fork", axum::routing::post(fork))
        .route("/scenarios/{id}/runs", get(list_runs).post(start_run))
        .route(
            "/scenarios/{id}/runs/{run}",
            get(retrieve_run).delete(cancel_run),
        )
        .route("/scenarios/{id}/runs/{run}/links", get(run_links))
        .route("/scenarios/{id}/runs/{run}/links.geojson", get(run_geojson))
}

// ---------------------------------------------------------------------------------------------------------------
// state

/// The city's baseline traffic model and its solution.
pub struct Baseline {
    pub model: CityModel,
    pub solution: Solution,
    pub outcome: Outcome,
    /// Per `RoadLink` entity id, the baseline's values (served by `/api/scenarios/baseline/links`).
    pub links: Value,
    pub built_at: DateTime<Utc>,
    /// The store's map-change head the entities were read after.
    pub map_head: i64,
    /// Seconds to build the model and solve it.
    pub seconds: f64,
    /// The city as the air and noise models see it (background calibrated on the stations when it was built).
    pub air: AirCity,
    /// Air and noise under the baseline's traffic.
    pub air_result: AirResult,
    /// Per `RoadLink` entity id, what publishing results needs of it (as it was when the model was built).
    roads: HashMap<String, RoadInfo>,
    /// The datasets the `RoadLink` entities came from (the results take their licences).
    network_datasets: BTreeSet<String>,
    /// Every dataset the model's entities came from (streets, buildings, points of interest, air quality stations),
    /// with how many entities of each: a run's inputs, whose read policies bound who may run it and read its results.
    pub inputs: BTreeMap<String, u64>,
    /// How the baseline's own results were published as entities (see [`publish_results`]).
    published: std::sync::OnceLock<Value>,
}

/// What the published entities take from a `RoadLink`: its geometry and length.
struct RoadInfo {
    geometry: Option<Value>,
    length_m: Option<f64>,
}

const ACTIVE: u8 = 0;
const CANCEL_REQUESTED: u8 = 1;
const FINISHING: u8 = 2;

/// A run this server is executing.
struct RunHandle {
    scenario: String,
    /// [`ACTIVE`], [`CANCEL_REQUESTED`] or [`FINISHING`] (its results are being stored: too late to cancel).
    state: AtomicU8,
}

impl RunHandle {
    fn cancel_requested(&self) -> bool {
        self.state.load(Ordering::SeqCst) == CANCEL_REQUESTED
    }

    /// Asks the run to stop; false when it is already storing its results.
    fn cancel(&self) -> bool {
        match self.state.compare_exchange(
            ACTIVE,
            CANCEL_REQUESTED,
            Ordering::SeqCst,
            Ordering::SeqCst,
        ) {
            Ok(_) | Err(CANCEL_REQUESTED) => true,
            Err(_) => false,
        }
    }
}

/// Whether and how a node computes scenario runs. Runs are jobs in the store: any node that computes runs may claim
/// a queued one, whichever node it was created on.
#[derive(Debug, Clone)]
pub struct JobsConfig {
    /// Claim and compute runs; false for a node that only serves the API (its runs are computed by other nodes on
    /// the same database).
    pub enabled: bool,
    /// Runs this node computes at once (a city-sized assignment uses every core: 1 unless the machine is large).
    pub max_concurrent: usize,
    /// How long a claimed run stays with this node without a heartbeat; when it runs out (the node died or lost
    /// the database) another node computes the run again. Heartbeats come every third of it, at most every second.
    pub lease: Duration,
    /// How many times a run is claimed before it fails instead (each time, its node died while computing it).
    pub max_attempts: u32,
    /// How often the worker looks for queued runs and expired leases when nothing woke it (a new run wakes it at
    /// once: in-process, and on PostgreSQL through `LISTEN urbantwin_jobs`).
    pub poll: Duration,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            enabled: true,
            max_concurrent: 1,
            lease: Duration::from_secs(30),
            max_attempts: 3,
            poll: Duration::from_secs(2),
        }
    }
}

/// What the scenario endpoints keep in memory: the baseline, the runs this node computes and its run slots.
pub struct ScenarioState {
    baseline: tokio::sync::Mutex<Option<Arc<Baseline>>>,
    /// The map-change head the cached baseline is known to be current at.
    baseline_head: AtomicU64,
    runs: Mutex<HashMap<String, Arc<RunHandle>>>,
    /// The runs this node may compute at once ([`JobsConfig::max_concurrent`]); the worker claims a run only while
    /// it holds a slot.
    queue: Arc<Semaphore>,
    slots: u32,
    /// This node's id in the store's claims (a new one per process).
    node: String,
    /// Held while result entities are written or deleted, and while a done run is recorded: result sets are
    /// published one at a time, in the order runs finish, and never for a scenario being deleted.
    publishing: tokio::sync::Mutex<()>,
    /// The store's configuration epoch the results dataset's policy was last brought up to date at.
    policies_epoch: AtomicU64,
}

impl ScenarioState {
    pub fn new(jobs: &JobsConfig) -> Self {
        let slots = u32::try_from(jobs.max_concurrent.clamp(1, 1024)).unwrap_or(1);
        let host = std::env::var("HOSTNAME").unwrap_or_default();
        let id = uuid::Uuid::new_v4().simple().to_string();
        ScenarioState {
            baseline: tokio::sync::Mutex::new(None),
            baseline_head: AtomicU64::new(0),
            runs: Mutex::new(HashMap::new()),
            queue: Arc::new(Semaphore::new(slots as usize)),
            slots,
            node: if host.is_empty() {
                format!("pid{}-{}", std::process::id(), &id[..12])
            } else {
                format!("{host}-{}", &id[..12])
            },
            publishing: tokio::sync::Mutex::new(()),
            policies_epoch: AtomicU64::new(u64::MAX),
        }
    }

    /// This node's id, as the store records it in the runs it claims.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Takes every run slot of this node: it claims no new run (they stay queued, and can be cancelled, or another
    /// node computes them) until the permit is dropped. For maintenance, such as importing a new city while nobody
    /// should compute on the old one. Waits for the runs this node is computing to end.
    pub async fn pause(&self) -> OwnedSemaphorePermit {
        self.queue
            .clone()
            .acquire_many_owned(self.slots)
            .await
            .expect("the run queue is never closed")
    }

    /// Forgets the baseline (the next request rebuilds it).
    pub async fn forget_baseline(&self) {
        *self.baseline.lock().await = None;
    }

    fn handle(&self, run: &str) -> Option<Arc<RunHandle>> {
        self.runs.lock().ok()?.get(run).cloned()
    }

    fn register(&self, run: &str, h: Arc<RunHandle>) {
        if let Ok(mut m) = self.runs.lock() {
            m.insert(run.to_string(), h);
        }
    }

    fn unregister(&self, run: &str) {
        if let Ok(mut m) = self.runs.lock() {
            m.remove(run);
        }
    }
}

/// The time now, to the millisecond the store keeps (so that what a response shows is what a later GET shows).
fn now() -> DateTime<Utc> {
    let t = Utc::now();
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

pub(crate) fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(ErrorKind::InternalError, e.to_string())
}

pub(crate) fn conflict(d: impl Into<String>) -> ApiError {
    ApiError::new(ErrorKind::Conflict, d)
}

/// `Some(the store's map head now)` when no entity of [`MODEL_TYPES`] changed on the map since `head` (results
/// computed then still hold); `None` when one did, or when the change log no longer reaches back that far.
pub(crate) async fn model_unchanged_since(
    state: &SharedState,
    head: i64,
) -> ApiResult<Option<i64>> {
    let changes = state.store.map_changes_since(head, 4096).await?;
    if changes.head <= head {
        return Ok(Some(head));
    }
    let relevant = |t: &str| MODEL_TYPES.iter().any(|m| t == format!("{V}{m}"));
    Ok(
        (changes.complete && !changes.changes.iter().any(|c| relevant(&c.type_name)))
            .then_some(changes.head),
    )
}

/// Every entity of [`MODEL_TYPES`] (with a guard: those its caller may read, less the attributes hidden from it),
/// with the map head read first (a change made while they are read makes results built on them stale next time).
pub(crate) async fn model_entities(
    state: &SharedState,
    guard: Option<&Guard>,
) -> ApiResult<(i64, Vec<Entity>)> {
    let head = state.store.map_changes_since(i64::MAX, 0).await?.head;
    let mut q = EntityQuery {
        types: Some(TypeExpr::Or(
            MODEL_TYPES
                .iter()
                .map(|t| TypeExpr::Type(format!("{V}{t}")))
                .collect(),
        )),
        limit: usize::MAX,
        ..Default::default()
    };
    let Some(guard) = guard else {
        return Ok((head, state.store.query(&q).await?.entities));
    };
    guard.restrict(&mut q);
    let mut entities = state.store.query(&q).await?.entities;
    for e in &mut entities {
        guard.redact(e);
    }
    Ok((head, entities))
}

/// The baseline for the city as the store holds it now: the cached one while no `RoadLink`, `Building` or
/// `PointOfInterest` changed on the map since it was built, else a new one.
pub async fn baseline(state: &SharedState) -> ApiResult<Arc<Baseline>> {
    let sc = &state.scenarios;
    let mut slot = sc.baseline.lock().await;
    if let Some(b) = slot.as_ref() {
        let head = sc.baseline_head.load(Ordering::SeqCst) as i64;
        if let Some(now) = model_unchanged_since(state, head).await? {
            sc.baseline_head.store(now.max(0) as u64, Ordering::SeqCst);
            follow_input_policies(state, b).await?;
            return Ok(b.clone());
        }
    }
    let (head, mut entities) = model_entities(state, None).await?;
    // the stations calibrate the air model's background; they are read when the baseline is built, and do not make
    // it stale (a sensor's every reading would otherwise rebuild the traffic model)
    let stations = EntityQuery {
        types: Some(TypeExpr::Type(format!("{V}{AIR_STATION_TYPE}"))),
        limit: usize::MAX,
        ..Default::default()
    };
    entities.extend(state.store.query(&stations).await?.entities);
    let built = tokio::task::spawn_blocking(move || build_baseline(&entities, head))
        .await
        .map_err(internal)?
        .map_err(|e| {
            conflict(format!(
                "the city has no traffic model: {e} (import a street network with RoadLink entities, and \
                 buildings or points of interest to make trips)"
            ))
        })?;
    let b = Arc::new(built);
    // its flows go into the hub as the `baseline` result set: a write of TrafficFlowObserved entities, which are not
    // one of MODEL_TYPES, so it does not make this baseline stale
    {
        let _publishing = sc.publishing.lock().await;
        let source = format!("{}{}", public_url(state), scenario_url(BASELINE_ID));
        let links = b.links["links"].clone();
        let published =
            match publish_results(state, &b, BASELINE_ID, &source, b.built_at, links).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(
                        "the baseline's flows could not be published as entities: {}",
                        e.0.detail
                    );
                    json!({"error": e.0.detail})
                }
            };
        let _ = b.published.set(published);
    }
    *slot = Some(b.clone());
    sc.baseline_head.store(head.max(0) as u64, Ordering::SeqCst);
    Ok(b)
}

fn build_baseline(entities: &[Entity], map_head: i64) -> Result<Baseline, String> {
    let t = Instant::now();
    let model = city::build(entities, &CityOptions::default()).map_err(|e| e.to_string())?;
    let opts = RunOptions {
        gap: BASELINE_GAP,
        max_seconds: Some(BASELINE_MAX_SECONDS),
        ..RunOptions::default()
    };
    let (solution, outcome) = sim::baseline(&model, &opts).map_err(|e| e.to_string())?;
    let links = json!({ "links": sim::road_links(&model, &outcome, None) });
    let air = AirCity::build(&model, entities, &outcome, AirOptions::default())
        .map_err(|e| format!("the air model: {e}"))?;
    let air_result = air
        .evaluate(&model.network, &outcome, &[], None)
        .map_err(|e| format!("the air model: {e}"))?;
    let road_link = format!("{V}RoadLink");
    let length = format!("{V}length");
    let mut roads = HashMap::new();
    let mut network_datasets = BTreeSet::new();
    for e in entities.iter().filter(|e| e.types.contains(&road_link)) {
        let geometry = e.geometries(iri::LOCATION).next().cloned();
        let length_m = e
            .instance(&length, None)
            .and_then(|a| a.value.as_f64())
            .filter(|l| l.is_finite() && *l > 0.0)
            .or_else(|| geometry.as_ref().and_then(line_length_m));
        roads.insert(e.id.clone(), RoadInfo { geometry, length_m });
        network_datasets.insert(
            e.dataset
                .clone()
                .unwrap_or_else(|| twin_model::dataset::DEFAULT_DATASET.to_string()),
        );
    }
    Ok(Baseline {
        inputs: dataset_counts(entities),
        model,
        solution,
        outcome,
        links,
        built_at: now(),
        map_head,
        seconds: t.elapsed().as_secs_f64(),
        air,
        air_result,
        roads,
        network_datasets,
        published: std::sync::OnceLock::new(),
    })
}

// ---------------------------------------------------------------------------------------------------------------
// representations

pub(crate) fn json_response(status: StatusCode, v: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

pub(crate) fn geojson_response(v: &Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/geo+json")],
        v.to_string(),
    )
        .into_response()
}

fn with_location(mut resp: Response, location: &str) -> Response {
    if let Ok(h) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, h);
    }
    resp
}

fn scenario_url(id: &str) -> String {
    format!("/api/scenarios/{}", path_segment(id))
}

fn run_url(scenario: &str, run: &str) -> String {
    format!("{}/runs/{}", scenario_url(scenario), path_segment(run))
}

/// A stored scenario as clients see it: id, the document, timestamps and where its runs are.
fn scenario_json(s: &StoredScenario) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(s.id));
    if let Value::Object(doc) = &s.document {
        m.extend(doc.clone());
    }
    m.insert("owner".into(), json!(s.owner));
    m.insert("createdAt".into(), json!(s.created_at));
    m.insert("modifiedAt".into(), json!(s.modified_at));
    m.insert(
        "runs".into(),
        json!(format!("{}/runs", scenario_url(&s.id))),
    );
    Value::Object(m)
}

fn run_json(r: &StoredRun) -> Value {
    let mut request = r.request.clone();
    let mut summary = r.summary.clone();
    let asked = request.as_object_mut().and_then(|o| {
        // who started it is `requestedBy`; their roles, groups, key scopes and purpose are not for everyone
        o.remove("requester");
        o.remove("purpose");
        o.remove("provenance")
    });
    let computed = summary.as_object_mut().and_then(|o| o.remove("provenance"));
    let mut v = json!({
        "id": r.id,
        "scenario": r.scenario_id,
        "status": r.status,
        "progress": r.progress,
        "message": r.message,
        "createdAt": r.created_at,
        "startedAt": r.started_at,
        "finishedAt": r.finished_at,
        "requestedBy": r.request.get("requestedBy").cloned().unwrap_or(Value::Null),
        "request": request,
        "summary": summary,
        // as the run was computed once done; before, what it was started with (computedAt null)
        "provenance": computed.or(asked).unwrap_or(Value::Null),
    });
    if r.status == RunStatus::Done {
        let url = run_url(&r.scenario_id, &r.id);
        v["links"] = json!(format!("{url}/links"));
        v["geojson"] = json!(format!("{url}/links.geojson"));
    }
    v
}

/// A scenario from a request body: the document, and the id when the body names one. `owner`, `createdAt`,
/// `modifiedAt` and `runs` (what a GET returns besides the document) are ignored, so a client can PUT back what it
/// read.
fn parse_scenario(headers: &HeaderMap, body: &Bytes) -> ApiResult<(Option<String>, Scenario)> {
    ld::body_type(headers, false)?;
    let Value::Object(mut doc) = parse_body(body)? else {
        return Err(ApiError::bad_data(
            "a scenario is a JSON object: {\"name\", \"description\", \"edits\": [...]}",
        ));
    };
    let id = match doc.remove("id") {
        None => None,
        Some(Value::String(id)) => Some(check_id(id)?),
        Some(other) => {
            return Err(ApiError::bad_data(format!(
                "the scenario id must be a string, not {other}"
            )))
        }
    };
    for k in ["createdAt", "modifiedAt", "runs", "owner", "forkedFrom"] {
        doc.remove(k);
    }
    let s: Scenario = serde_json::from_value(Value::Object(doc))
        .map_err(|e| ApiError::bad_data(format!("invalid scenario: {e}")))?;
    s.check()
        .map_err(|e| ApiError::bad_data(format!("invalid scenario: {e}")))?;
    Ok((id, s))
}

fn check_id(id: String) -> ApiResult<String> {
    if id == BASELINE_ID || id == BASELINE_IRI {
        return Err(ApiError::bad_data(format!(
            "{id:?} is reserved for the city's baseline; choose another scenario id"
        )));
    }
    if id.len() > 256 || !twin_model::ngsi::is_uri(&id) {
        return Err(ApiError::bad_data(format!(
            "the scenario id {id:?} is not a URI (of at most 256 characters)"
        )));
    }
    Ok(id)
}

/// Applies the scenario to the current city: the report of what each edit selected, or a 400 naming the edit.
async fn check_against_city(state: &SharedState, s: &Scenario) -> ApiResult<Value> {
    let base = baseline(state).await?;
    let s = s.clone();
    tokio::task::spawn_blocking(move || sim::apply(&base.model, &s).map(|(_, report)| report))
        .await
        .map_err(internal)?
        .map(|report| json!(report))
        .map_err(|e| ApiError::bad_data(format!("the scenario does not fit the city: {e}")))
}

/// The keys a stored scenario's document carries beside the model's scenario (what the API records of it).
pub const SCENARIO_METADATA: [&str; 1] = ["forkedFrom"];

/// The model's scenario in a stored document (without [`SCENARIO_METADATA`]).
pub fn scenario_of(document: &Value) -> Result<Scenario, serde_json::Error> {
    let mut doc = document.clone();
    if let Some(o) = doc.as_object_mut() {
        for k in SCENARIO_METADATA {
            o.remove(k);
        }
    }
    serde_json::from_value(doc)
}

pub(crate) async fn stored_scenario(state: &SharedState, id: &str) -> ApiResult<StoredScenario> {
    state
        .store
        .get_scenario(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("scenario {id} does not exist")))
}

async fn stored_run(state: &SharedState, scenario: &str, run: &str) -> ApiResult<StoredRun> {
    stored_scenario(state, scenario).await?;
    match state.store.get_run(run).await? {
        Some(r) if r.scenario_id == scenario => Ok(r),
        _ => Err(ApiError::not_found(format!(
            "scenario {scenario} has no run {run}"
        ))),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// scenarios

async fn list(State(state): State<SharedState>, RawQuery(raw): RawQuery) -> ApiResult<Response> {
    Params::parse(raw.as_deref(), &[])?;
    let all: Vec<Value> = state
        .store
        .list_scenarios()
        .await?
        .iter()
        .map(scenario_json)
        .collect();
    Ok(json_response(StatusCode::OK, &Value::Array(all)))
}

/// Fails unless `p` may create scenarios and start runs: 401 anonymous, 403 a device or a key without `write`.
fn check_may_create(p: &Principal, what: &str) -> ApiResult<()> {
    if policy::may_create_scenario(p) {
        Ok(())
    } else {
        Err(crate::guard::denied(
            p,
            format!("{what} needs a signed-in account (not a device) with the right to write"),
        ))
    }
}

/// Fails unless `p` may change the scenario (its owner or an administrator): 401 anonymous, else 403.
fn check_may_change(p: &Principal, s: &StoredScenario, what: &str) -> ApiResult<()> {
    if policy::may_change_scenario(p, s.owner.as_deref()) {
        return Ok(());
    }
    let whose = match &s.owner {
        Some(o) => format!("its owner ({o})"),
        None => "(it has no owner)".into(),
    };
    Err(crate::guard::denied(
        p,
        format!(
            "{what} scenario {} is for {whose} or an administrator",
            s.id
        ),
    ))
}

async fn create(
    State(state): State<SharedState>,
    guard: Guard,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    check_may_create(&guard.principal, "creating a scenario")?;
    let (id, s) = parse_scenario(&headers, &body)?;
    let id = id.unwrap_or_else(|| format!("urn:ngsi-ld:Scenario:{}", uuid::Uuid::new_v4()));
    if state.store.get_scenario(&id).await?.is_some() {
        return Err(ApiError::new(
            ErrorKind::AlreadyExists,
            format!("scenario {id} already exists"),
        ));
    }
    let applied = check_against_city(&state, &s).await?;
    let at = now();
    let stored = StoredScenario {
        id: id.clone(),
        document: json!(s),
        owner: guard.principal.subject.clone(),
        created_at: at,
        modified_at: at,
    };
    state.store.put_scenario(stored.clone(), true).await?;
    let mut body = scenario_json(&stored);
    body["applied"] = applied;
    Ok(with_location(
        json_response(StatusCode::CREATED, &body),
        &scenario_url(&id),
    ))
}

/// The longest a citizen's run computes (planners and administrators choose their own).
const CITIZEN_MAX_SECONDS: f64 = 60.0;

/// `POST /api/scenarios/{id}/fork`: a copy of a scenario (or of the baseline: no edits) owned by the caller, who
/// may then edit and run it (a citizen's proposal of a street change starts here).
async fn fork(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    guard: Guard,
    body: Bytes,
) -> ApiResult<Response> {
    check_may_create(&guard.principal, "forking a scenario")?;
    let name = if body.is_empty() {
        None
    } else {
        match parse_body(&body)? {
            Value::Object(mut o) => match o.remove("name") {
                None | Some(Value::Null) => None,
                Some(Value::String(n)) if !n.trim().is_empty() && n.chars().count() <= 200 => {
                    Some(n.trim().to_string())
                }
                Some(_) => return Err(ApiError::bad_data("name: a text of 1 to 200 characters")),
            },
            _ => return Err(ApiError::bad_data("the body is an object: {\"name\"?}")),
        }
    };
    let mut doc = if id == BASELINE_ID {
        json!({"name": "Baseline", "edits": []})
    } else {
        stored_scenario(&state, &id).await?.document
    };
    let who = guard.principal.label();
    let source_name = doc["name"].as_str().unwrap_or("scenario").to_string();
    doc["name"] = json!(name.unwrap_or_else(|| format!("{source_name} ({who}'s copy)")));
    // the copy is the model's scenario, with where it came from
    let s: Scenario = scenario_of(&doc)
        .map_err(|e| internal(format!("scenario {id} as stored cannot be read: {e}")))?;
    let mut document = json!(s);
    document["forkedFrom"] = json!(id);
    let at = now();
    let stored = StoredScenario {
        id: format!("urn:ngsi-ld:Scenario:{}", uuid::Uuid::new_v4()),
        document,
        owner: guard.principal.subject.clone(),
        created_at: at,
        modified_at: at,
    };
    state.store.put_scenario(stored.clone(), true).await?;
    Ok(with_location(
        json_response(StatusCode::CREATED, &scenario_json(&stored)),
        &scenario_url(&stored.id),
    ))
}

/// The lines a scenario's edits touch, as one GeoJSON `MultiLineString` (each `RoadLink` once, and the streets it
/// adds), or `None` when it touches none: what a proposal of a street change shows on the map.
pub(crate) async fn edits_geometry(
    state: &SharedState,
    stored: &StoredScenario,
) -> ApiResult<Option<Value>> {
    let s: Scenario = scenario_of(&stored.document).map_err(|e| {
        internal(format!(
            "scenario {} as stored cannot be read: {e}",
            stored.id
        ))
    })?;
    let base = baseline(state).await?;
    tokio::task::spawn_blocking(move || {
        let (_, report) = sim::apply(&base.model, &s)
            .map_err(|e| ApiError::bad_data(format!("the scenario does not fit the city: {e}")))?;
        let graph = &base.model.graph;
        let mut seen = HashSet::new();
        let mut lines: Vec<Value> = Vec::new();
        for e in &report.edits {
            for &l in &e.links {
                let key = sim::road_link_of(graph.link_id(l))
                    .map(|(road, _)| road.to_string())
                    .unwrap_or_else(|| format!("#{l}"));
                if !seen.insert(key) {
                    continue;
                }
                let pts: Vec<[f64; 2]> = graph
                    .link_geometry(l)
                    .into_iter()
                    .map(|(x, y)| [x, y])
                    .collect();
                if pts.len() >= 2 {
                    lines.push(json!(pts));
                }
            }
        }
        for e in s.edits.iter() {
            if let twin_sim::traffic::scenario::Edit::AddLink { path, .. } = e {
                lines.push(json!(path));
            }
        }
        Ok(if lines.is_empty() {
            None
        } else {
            Some(json!({"type": "MultiLineString", "coordinates": lines}))
        })
    })
    .await
    .map_err(internal)?
}

async fn retrieve(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    Params::parse(raw.as_deref(), &[])?;
    let s = stored_scenario(&state, &id).await?;
    Ok(json_response(StatusCode::OK, &scenario_json(&s)))
}

async fn replace(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    guard: Guard,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    crate::auth::require_signed_in(&guard.principal)?;
    let (body_id, s) = parse_scenario(&headers, &body)?;
    if let Some(b) = body_id.filter(|b| *b != id) {
        return Err(ApiError::bad_data(format!(
            "the body's id {b} differs from the id in the URL {id}"
        )));
    }
    let old = stored_scenario(&state, &id).await?;
    check_may_change(&guard.principal, &old, "replacing")?;
    check_against_city(&state, &s).await?;
    let mut document = json!(s);
    // a fork remembers what it was forked from
    if let Some(f) = old.document.get("forkedFrom") {
        document["forkedFrom"] = f.clone();
    }
    state
        .store
        .put_scenario(
            StoredScenario {
                id,
                document,
                owner: old.owner,
                created_at: old.created_at,
                modified_at: now(),
            },
            false,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    guard: Guard,
) -> ApiResult<StatusCode> {
    crate::auth::require_signed_in(&guard.principal)?;
    let old = stored_scenario(&state, &id).await?;
    check_may_change(&guard.principal, &old, "deleting")?;
    // its runs in progress stop (their writes then find nothing to update)
    let active: Vec<Arc<RunHandle>> = state
        .scenarios
        .runs
        .lock()
        .map(|m| m.values().filter(|h| h.scenario == id).cloned().collect())
        .unwrap_or_default();
    for h in active {
        h.cancel();
    }
    // under the publication lock, so that a run finishing now cannot publish for the scenario after it is gone;
    // its result entities go first: if that fails, the scenario is still there to delete again
    let _publishing = state.scenarios.publishing.lock().await;
    stored_scenario(&state, &id).await?;
    unpublish_results(&state, &id).await?;
    if !state.store.delete_scenario(&id).await? {
        return Err(ApiError::not_found(format!("scenario {id} does not exist")));
    }
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------------------------------
// the baseline

async fn baseline_summary(
    State(state): State<SharedState>,
    guard: Guard,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    Params::parse(raw.as_deref(), &[])?;
    let b = readable_baseline(&state, &guard).await?;
    let m = &b.model;
    let url = scenario_url(BASELINE_ID);
    let body = json!({
        "id": BASELINE_ID,
        "builtAt": b.built_at,
        "mapHead": b.map_head,
        "seconds": b.seconds,
        "zones": m.zones.len(),
        "carLinks": (0..m.network.link_count() as u32).filter(|&l| m.network.is_open(l)).count(),
        "summary": b.outcome.summary,
        "published": b.published.get(),
        "inputs": inputs_json(guard.datasets(), &b.inputs),
        "links": format!("{url}/links"),
        "geojson": format!("{url}/links.geojson"),
    });
    Ok(json_response(StatusCode::OK, &body))
}

async fn baseline_links(
    State(state): State<SharedState>,
    guard: Guard,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    Params::parse(raw.as_deref(), &[])?;
    let b = readable_baseline(&state, &guard).await?;
    let mut body = b.links.clone();
    body["scenario"] = json!(BASELINE_ID);
    Ok(json_response(StatusCode::OK, &body))
}

async fn baseline_geojson(
    State(state): State<SharedState>,
    guard: Guard,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    Params::parse(raw.as_deref(), &[])?;
    let b = readable_baseline(&state, &guard).await?;
    let fc = feature_collection(&state, &guard, &b.links["links"]).await?;
    Ok(geojson_response(&fc))
}

/// The baseline, for a caller who may read every one of its input datasets (its values derive from them).
pub(crate) async fn readable_baseline(
    state: &SharedState,
    guard: &Guard,
) -> ApiResult<Arc<Baseline>> {
    let b = baseline(state).await?;
    guard.check_inputs(&b.inputs, "the baseline")?;
    guard.log_counts(
        b.inputs.iter().map(|(d, n)| (d.as_str(), *n)),
        "simulation.results",
        Some("the traffic model's baseline".into()),
    );
    Ok(b)
}

/// The `RoadLink` entities with values, as GeoJSON features: geometry from the values' own `geometry` (links a
/// scenario added), else from the store as the caller may read it (null for a link deleted since, or one the caller
/// may not see), the other values as properties.
pub(crate) async fn feature_collection(
    state: &SharedState,
    guard: &Guard,
    values: &Value,
) -> ApiResult<Value> {
    let mut q = EntityQuery {
        types: Some(TypeExpr::Type(format!("{V}RoadLink"))),
        limit: usize::MAX,
        ..Default::default()
    };
    guard.restrict(&mut q);
    let mut entities = state.store.query(&q).await?.entities;
    guard.release(&mut entities, "scenario.geojson");
    let values = values.clone();
    tokio::task::spawn_blocking(move || {
        let geometry: HashMap<&str, &Value> = entities
            .iter()
            .filter_map(|e| Some((e.id.as_str(), e.geometries(iri::LOCATION).next()?)))
            .collect();
        let features: Vec<Value> = values
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(id, v)| {
                        let mut props = Map::new();
                        props.insert("id".into(), json!(id));
                        if let Value::Object(o) = v {
                            props.extend(
                                o.iter()
                                    .filter(|(k, _)| k.as_str() != "geometry")
                                    .map(|(k, x)| (k.clone(), x.clone())),
                            );
                        }
                        // a link a scenario added carries its own geometry; the others are RoadLink entities
                        let g = v
                            .get("geometry")
                            .filter(|g| g.is_object())
                            .or_else(|| geometry.get(id.as_str()).copied())
                            .cloned()
                            .unwrap_or(Value::Null);
                        json!({
                            "type": "Feature",
                            "id": id,
                            "geometry": g,
                            "properties": props,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        json!({"type": "FeatureCollection", "features": features})
    })
    .await
    .map_err(internal)
}

// ---------------------------------------------------------------------------------------------------------------
// runs

/// What a run may be asked: the target gap and a time limit.
fn run_options(headers: &HeaderMap, body: &Bytes) -> ApiResult<(f64, f64)> {
    if body.is_empty() {
        return Ok((DEFAULT_GAP, DEFAULT_MAX_SECONDS));
    }
    ld::body_type(headers, false)?;
    let Value::Object(doc) = parse_body(body)? else {
        return Err(ApiError::bad_data(
            "run options are a JSON object: {\"gap\", \"maxSeconds\"}",
        ));
    };
    let mut gap = DEFAULT_GAP;
    let mut max_seconds = DEFAULT_MAX_SECONDS;
    for (k, v) in doc {
        let n = v.as_f64();
        match (k.as_str(), n) {
            ("gap", Some(g)) if (1e-14..=1e-2).contains(&g) => gap = g,
            ("maxSeconds", Some(s)) if s > 0.0 && s <= 3600.0 => max_seconds = s,
            ("gap", _) => {
                return Err(ApiError::bad_data(format!(
                    "gap must be a number from 1e-14 to 0.01, not {v}"
                )))
            }
            ("maxSeconds", _) => {
                return Err(ApiError::bad_data(format!(
                    "maxSeconds must be a number above 0 and at most 3600, not {v}"
                )))
            }
            _ => {
                return Err(ApiError::bad_data(format!(
                    "unknown run option {k:?}; a run takes gap and maxSeconds"
                )))
            }
        }
    }
    Ok((gap, max_seconds))
}

/// The traffic model as a run's provenance names it.
const TRAFFIC_MODEL: &str = "urbantwin traffic model (twin-sim)";

/// How a run computes, as its provenance says it: with the assignment algorithm the solver uses.
fn traffic_method(algorithm: Algorithm) -> String {
    let assignment = match algorithm {
        Algorithm::B => "Dial's Algorithm B, bush-based",
        Algorithm::BiconjugateFrankWolfe => "bi-conjugate Frank-Wolfe, link-based",
    };
    format!(
        "trips generated from buildings and points of interest, distributed by a gravity model calibrated on the \
         mean trip time; static user-equilibrium assignment ({assignment}) with BPR link costs, warm-started from \
         the baseline; air quality (road emissions, Gaussian dispersion) and CNOSSOS-EU road noise under the \
         resulting traffic"
    )
}

/// A run's provenance: the model, its parameters, the input datasets (id → entities read), who asked for the run
/// and when it was computed (None before it is).
fn run_provenance(
    datasets: &BTreeMap<String, Dataset>,
    inputs: &BTreeMap<String, u64>,
    gap: f64,
    max_seconds: f64,
    requested_by: Option<&str>,
    computed_at: Option<DateTime<Utc>>,
) -> Value {
    let city = CityOptions::default();
    // the solver's own defaults (sim::solve leaves the algorithm to them)
    let algorithm = twin_sim::traffic::assign::Options::default().algorithm;
    json!({
        "model": {"name": TRAFFIC_MODEL, "version": twin_sim::VERSION, "method": traffic_method(algorithm)},
        "parameters": {
            "gap": gap,
            "maxSeconds": max_seconds,
            "maxIterations": RunOptions::default().max_iter,
            "algorithm": algorithm.name(),
            "warmStart": BASELINE_ID,
            "baselineGap": BASELINE_GAP,
            "demand": {
                "source": "Building and PointOfInterest entities (trip generation), RoadLink entities (network)",
                "zoneCellM": city.cell_m,
                "targetMeanTripMinutes": city.target_mean_min,
                "gatewayLoad": city.gateway_load,
            },
            "bpr": {"b": city.bpr_b, "power": city.bpr_power},
        },
        "inputs": inputs_json(datasets, inputs),
        "requestedBy": requested_by,
        "computedAt": computed_at.map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true)),
    })
}

/// The input datasets of a run as its provenance recorded them (none for a run from before provenance).
fn run_inputs(r: &StoredRun) -> BTreeMap<String, u64> {
    let p = match r.summary.get("provenance") {
        Some(p) => p,
        None => &r.request["provenance"],
    };
    counts_of(p)
}

async fn list_runs(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    Params::parse(raw.as_deref(), &[])?;
    stored_scenario(&state, &id).await?;
    let runs: Vec<Value> = state
        .store
        .list_runs(&id)
        .await?
        .iter()
        .map(run_json)
        .collect();
    Ok(json_response(StatusCode::OK, &Value::Array(runs)))
}

async fn start_run(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    guard: Guard,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    check_may_create(&guard.principal, "starting a run")?;
    let (gap, mut max_seconds) = run_options(&headers, &body)?;
    let stored = stored_scenario(&state, &id).await?;
    if !policy::may_run_any_scenario(&guard.principal) {
        // citizens run their own scenarios, a few an hour, each within a short computing time
        if stored.owner.is_none() || stored.owner != guard.principal.subject {
            return Err(crate::guard::denied(
                &guard.principal,
                format!("scenario {id} is not yours: fork it (POST /api/scenarios/{id}/fork) and run your copy"),
            ));
        }
        max_seconds = max_seconds.min(CITIZEN_MAX_SECONDS);
        if let Err(e) = state
            .participation
            .limits
            .take(&guard.principal.label(), crate::consultations::Limited::Run)
        {
            return Ok(e.into_response());
        }
    }
    // read now: a scenario that cannot be read fails the request, not a node's run later
    let readable: Scenario = scenario_of(&stored.document)
        .map_err(|e| internal(format!("scenario {id} as stored cannot be read: {e}")))?;
    // the run reads the city's datasets: the caller must be allowed to read each of them, and reads of those not
    // public are logged (a node computes the run later, on the baseline as it is then)
    let base = baseline(&state).await?;
    guard.check_inputs(&base.inputs, "a run")?;
    let run_id = format!("urn:ngsi-ld:ScenarioRun:{}", uuid::Uuid::new_v4());
    guard.log_counts(
        base.inputs.iter().map(|(d, n)| (d.as_str(), *n)),
        "simulation",
        Some(format!("run {run_id} of scenario {id}")),
    );
    let requested_by = guard.principal.subject.clone();
    let provenance = run_provenance(
        guard.datasets(),
        &base.inputs,
        gap,
        max_seconds,
        requested_by.as_deref(),
        None,
    );
    let run = StoredRun {
        id: run_id.clone(),
        scenario_id: id.clone(),
        status: RunStatus::Queued,
        progress: 0.0,
        message: None,
        created_at: now(),
        started_at: None,
        finished_at: None,
        request: json!({
            "gap": gap,
            "maxSeconds": max_seconds,
            "scenario": readable,
            "scenarioModifiedAt": stored.modified_at,
            "model": provenance["model"].clone(),
            "requestedBy": requested_by,
            // checked again against the baseline the run is solved on (see check_requester)
            "requester": crate::auth::owner_of(&guard.principal),
            "purpose": guard.purpose,
            "provenance": provenance,
        }),
        summary: Value::Null,
    };
    // stored queued: the worker of this node (woken by the store) or of any other node claims it
    state.store.put_run(run.clone(), None, true).await?;
    // this node's worker at once, without waiting for the database's notification to come back
    state.store.job_signal().notify_one();
    let body = run_json(&run);
    Ok(with_location(
        json_response(StatusCode::ACCEPTED, &body),
        &run_url(&id, &run_id),
    ))
}

async fn retrieve_run(
    State(state): State<SharedState>,
    Path((id, run)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    Params::parse(raw.as_deref(), &[])?;
    let r = stored_run(&state, &id, &run).await?;
    Ok(json_response(StatusCode::OK, &run_json(&r)))
}

async fn cancel_run(
    State(state): State<SharedState>,
    Path((id, run)): Path<(String, String)>,
    guard: Guard,
) -> ApiResult<Response> {
    crate::auth::require_signed_in(&guard.principal)?;
    check_may_change(
        &guard.principal,
        &stored_scenario(&state, &id).await?,
        "cancelling the runs of",
    )?;
    let r = stored_run(&state, &id, &run).await?;
    if r.status.is_final() {
        return Err(conflict(format!(
            "run {run} is already {}",
            r.status.as_str()
        )));
    }
    // computed here: stopped at once (unless it is storing its results)
    if let Some(h) = state.scenarios.handle(&run) {
        if !h.cancel() {
            return Err(conflict(format!(
                "run {run} is storing its results: too late to cancel"
            )));
        }
    }
    // in the store, for whichever node computes it: a queued run is cancelled now, a running one at its node's next
    // heartbeat
    let r = state
        .store
        .request_run_cancel(&run)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("scenario {id} has no run {run}")))?;
    if r.status.is_final() && r.status != RunStatus::Cancelled {
        return Err(conflict(format!(
            "run {run} is already {}",
            r.status.as_str()
        )));
    }
    let mut body = run_json(&r);
    body["cancelRequested"] = json!(true);
    Ok(with_location(
        json_response(StatusCode::ACCEPTED, &body),
        &run_url(&id, &run),
    ))
}

/// The stored results of a done run, for a caller who may read every input dataset its provenance lists.
pub(crate) async fn run_results(
    state: &SharedState,
    guard: &Guard,
    id: &str,
    run: &str,
) -> ApiResult<Value> {
    let r = stored_run(state, id, run).await?;
    let inputs = run_inputs(&r);
    guard.check_inputs(&inputs, "the run")?;
    guard.log_counts(
        inputs.iter().map(|(d, n)| (d.as_str(), *n)),
        "simulation.results",
        Some(format!("the results of run {run}")),
    );
    if r.status != RunStatus::Done {
        return Err(conflict(format!(
            "run {run} is {}: results exist only once it is done",
            r.status.as_str()
        )));
    }
    state
        .store
        .get_run_links(run)
        .await?
        .ok_or_else(|| internal(format!("run {run} is done but its results are missing")))
}

async fn run_links(
    State(state): State<SharedState>,
    Path((id, run)): Path<(String, String)>,
    guard: Guard,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    Params::parse(raw.as_deref(), &[])?;
    let mut body = run_results(&state, &guard, &id, &run).await?;
    if let Some(o) = body.as_object_mut() {
        o.remove("air"); // served by /api/scenarios/{id}/air and /noise
    }
    body["scenario"] = json!(id);
    body["run"] = json!(run);
    Ok(json_response(StatusCode::OK, &body))
}

async fn run_geojson(
    State(state): State<SharedState>,
    Path((id, run)): Path<(String, String)>,
    guard: Guard,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    Params::parse(raw.as_deref(), &[])?;
    let body = run_results(&state, &guard, &id, &run).await?;
    let fc = feature_collection(&state, &guard, &body["links"]).await?;
    Ok(geojson_response(&fc))
}

// ---------------------------------------------------------------------------------------------------------------
// executing a run

/// What a finished solve hands back to the async side.
struct Finished {
    status: RunStatus,
    message: String,
    summary: Value,
    links: Option<Value>,
    /// The baseline the run was solved against (for a done run: its results are published with its roads).
    base: Option<Arc<Baseline>>,
}

/// The worker of a node that computes runs: claims queued runs from the store while it has a free slot, computes
/// each in a task of its own, and requeues (or fails) the runs of nodes whose lease expired. Woken by the store's
/// [`twin_store::Store::job_signal`] when a run is queued, and every [`JobsConfig::poll`] otherwise. Ends (with its
/// runs, whose leases then run out) when the task is aborted.
pub async fn work(state: SharedState) {
    let cfg = state.config.jobs.clone();
    let signal = state.store.job_signal();
    let node = state.scenarios.node.clone();
    let mut running = tokio::task::JoinSet::new();
    tracing::info!(node = %node, slots = state.scenarios.slots, "computing scenario runs");
    loop {
        while running.try_join_next().is_some() {}
        match state.store.requeue_expired_runs(cfg.max_attempts).await {
            Ok(r) => {
                for id in &r.requeued {
                    tracing::warn!(run = %id, "the node computing the run stopped: requeued");
                }
                for id in &r.failed {
                    tracing::warn!(run = %id, "the run failed: its nodes kept stopping");
                }
            }
            Err(e) => tracing::warn!("cannot requeue expired runs: {}", e.detail),
        }
        let Ok(slot) = state.scenarios.queue.clone().acquire_owned().await else {
            return;
        };
        match state.store.claim_run(&node, cfg.lease).await {
            Ok(Some(claimed)) => {
                tracing::info!(run = %claimed.run.id, attempt = claimed.attempt, "run claimed");
                running.spawn(execute(state.clone(), claimed, slot));
                continue;
            }
            Ok(None) => drop(slot),
            Err(e) => {
                drop(slot);
                tracing::warn!("cannot claim a run: {}", e.detail);
            }
        }
        tokio::select! {
            _ = signal.notified() => {}
            _ = tokio::time::sleep(cfg.poll) => {}
        }
    }
}

/// While alive, keeps a run registered as computed here; dropped (the run ended, or its task was aborted), it asks
/// the solve to stop and forgets the run.
struct Registered {
    state: SharedState,
    run: String,
    handle: Arc<RunHandle>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.handle.cancel();
        self.state.scenarios.unregister(&self.run);
    }
}

/// What a run asks (its stored request).
struct Asked {
    /// The scenario as it was when the run was created.
    scenario: Scenario,
    gap: f64,
    max_seconds: f64,
    /// Who started it, with the roles and groups they had then (None for runs from before runs recorded it).
    requester: Option<twin_model::subscription::SubscriptionOwner>,
    /// The purpose they declared.
    purpose: Option<String>,
}

fn run_request(run: &StoredRun) -> Result<Asked, String> {
    let r = &run.request;
    let scenario: Scenario = serde_json::from_value(r["scenario"].clone())
        .map_err(|e| format!("the run's scenario as stored cannot be read: {e}"))?;
    Ok(Asked {
        scenario,
        gap: r["gap"].as_f64().unwrap_or(DEFAULT_GAP),
        max_seconds: r["maxSeconds"].as_f64().unwrap_or(DEFAULT_MAX_SECONDS),
        requester: serde_json::from_value(r["requester"].clone()).ok(),
        purpose: r["purpose"].as_str().map(String::from),
    })
}

/// Fails, saying why, when whoever started a run may not read one of the inputs of the baseline it is about to be
/// solved against: the city may have gained a dataset, or a policy may have changed, since the run was started. The
/// requester is their account as it is now (a disabled or deleted account reads only public data).
async fn check_requester(
    state: &SharedState,
    asked: &Asked,
    base: &Baseline,
) -> Result<(), String> {
    let Some(who) = &asked.requester else {
        return Ok(());
    };
    let p = crate::auth::owner_principal(state, Some(who))
        .await
        .map_err(|e| format!("the run's requester cannot be read: {}", e.detail))?;
    let guard = Guard::new(state, p, asked.purpose.clone())
        .await
        .map_err(|e| e.0.detail)?;
    guard.check_inputs(&base.inputs, "the run").map_err(|e| {
        format!(
            "{} (checked for {}, who started it)",
            e.0.detail, who.subject
        )
    })
}

/// Computes a run this node claimed and records how it ended, renewing its lease meanwhile; the slot is given back
/// afterwards.
async fn execute(state: SharedState, claimed: ClaimedRun, _slot: OwnedSemaphorePermit) {
    let mut run = claimed.run;
    let handle = Arc::new(RunHandle {
        scenario: run.scenario_id.clone(),
        state: AtomicU8::new(ACTIVE),
    });
    state.scenarios.register(&run.id, handle.clone());
    let _registered = Registered {
        state: state.clone(),
        run: run.id.clone(),
        handle: handle.clone(),
    };
    let progress = Arc::new(AtomicU64::new(0f64.to_bits()));
    let lost = Arc::new(AtomicBool::new(false));
    let beat = tokio::spawn(heartbeat(
        state.clone(),
        run.id.clone(),
        progress.clone(),
        handle.clone(),
        lost.clone(),
    ));
    let _beat = AbortOnDrop(beat);
    let done = match run_request(&run) {
        Ok(asked) => drive(&state, asked, &progress, &handle).await,
        Err(reason) => ended(RunStatus::Failed, reason),
    };
    if lost.load(Ordering::SeqCst) {
        tracing::warn!(run = %run.id, "this node no longer holds the run: its outcome is not recorded");
        return;
    }
    run.progress = f64::from_bits(progress.load(Ordering::Relaxed)).clamp(0.0, 1.0);
    record(&state, &mut run, done).await;
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Renews the lease of a run this node computes, writing its progress, until aborted: every [`PROGRESS_EVERY`]
/// when the progress moved, else every third of the lease (at most [`HEARTBEAT_EVERY`]). A cancel requested on any
/// node stops the solve; a lost lease (the run was requeued, or deleted) stops it too, and nothing is recorded.
async fn heartbeat(
    state: SharedState,
    run: String,
    progress: Arc<AtomicU64>,
    handle: Arc<RunHandle>,
    lost: Arc<AtomicBool>,
) {
    let lease = state.config.jobs.lease;
    let every = (lease / 3).clamp(Duration::from_millis(50), HEARTBEAT_EVERY);
    let node = state.scenarios.node.clone();
    let mut written = 0.0;
    let mut last = Instant::now();
    loop {
        tokio::time::sleep(PROGRESS_EVERY.min(every)).await;
        let p = f64::from_bits(progress.load(Ordering::Relaxed)).clamp(0.0, 1.0);
        if p <= written && last.elapsed() < every {
            continue;
        }
        match state.store.renew_run_lease(&run, &node, lease, p).await {
            Ok(RunLease::Held { cancel_requested }) => {
                written = p;
                last = Instant::now();
                if cancel_requested {
                    handle.cancel();
                }
            }
            Ok(RunLease::Lost) => {
                lost.store(true, Ordering::SeqCst);
                handle.cancel();
                return;
            }
            // the store is unreachable: try again; if the lease runs out meanwhile, another node takes the run
            Err(e) => tracing::warn!(run = %run, "cannot renew the run's lease: {}", e.detail),
        }
    }
}

/// Stores how a run ended. A done run's results are first published as entities, and both happen under the
/// publication lock: the published set is always the latest done run's, and a scenario deleted meanwhile gets
/// neither (its deletion waits for the lock, or the publication finds it gone).
async fn record(state: &SharedState, run: &mut StoredRun, f: Finished) {
    let _publishing = match f.status {
        RunStatus::Done => Some(state.scenarios.publishing.lock().await),
        _ => None,
    };
    let finished = now();
    run.status = f.status;
    run.message = Some(f.message);
    run.summary = f.summary;
    run.finished_at = Some(finished);
    if f.status == RunStatus::Done {
        run.progress = 1.0;
        if let (Some(base), Some(links)) = (&f.base, &f.links) {
            if let Ok(None) = state.store.get_scenario(&run.scenario_id).await {
                // deleted meanwhile: nothing to publish, nothing to record (a store error shows below)
                return;
            }
            let source = format!(
                "{}{}",
                public_url(state),
                run_url(&run.scenario_id, &run.id)
            );
            // the provenance of what was computed: the inputs of the baseline the run was solved against
            let (gap, max_seconds) = match run_request(run) {
                Ok(asked) => (asked.gap, asked.max_seconds),
                Err(_) => (DEFAULT_GAP, DEFAULT_MAX_SECONDS),
            };
            let datasets = match state.datasets.get(state.store.as_ref()).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(run = %run.id, "the datasets cannot be read for the run's provenance: {}", e.0.detail);
                    Default::default()
                }
            };
            run.summary["provenance"] = run_provenance(
                &datasets,
                &base.inputs,
                gap,
                max_seconds,
                run.request["requestedBy"].as_str(),
                Some(finished),
            );
            let values = links["links"].clone();
            let published =
                publish_results(state, base, &run.scenario_id, &source, finished, values).await;
            run.summary["published"] = match published {
                Ok(p) => p,
                Err(e) => {
                    // the results stay served by the run; the entities keep the previous run's
                    let why = e.0.detail;
                    tracing::warn!(run = %run.id, "the run's results could not be published: {why}");
                    run.message = Some(format!(
                        "{}; its results could not be published as TrafficFlowObserved entities: {why}",
                        run.message.take().unwrap_or_default()
                    ));
                    json!({ "error": why })
                }
            };
        }
    }
    if let Err(e) = state
        .store
        .finish_run(&state.scenarios.node, run.clone(), f.links)
        .await
    {
        // the scenario was deleted meanwhile, the lease was lost (another node computes it again), or the store
        // failed: nothing left to tell
        tracing::warn!(run = %run.id, "the run's outcome could not be stored: {}", e.detail);
    }
}

fn ended(status: RunStatus, message: impl Into<String>) -> Finished {
    Finished {
        status,
        message: message.into(),
        summary: Value::Null,
        links: None,
        base: None,
    }
}

/// Resolves once a cancel of the run was asked for.
async fn until_cancelled(handle: &RunHandle) {
    while !handle.cancel_requested() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Builds (or reuses) the baseline, solves and says how the run ended.
async fn drive(
    state: &SharedState,
    asked: Asked,
    progress: &Arc<AtomicU64>,
    handle: &Arc<RunHandle>,
) -> Finished {
    let cancelled = || ended(RunStatus::Cancelled, "cancelled");
    if handle.cancel_requested() {
        return cancelled();
    }
    // the baseline is built (or found) in a task of its own: a cancel is not held up by it, and a baseline being
    // built is finished and kept for the next run
    let building = tokio::spawn({
        let state = state.clone();
        async move { baseline(&state).await }
    });
    let base = tokio::select! {
        b = building => match b {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => return ended(RunStatus::Failed, e.0.detail),
            Err(e) => return ended(RunStatus::Failed, format!("the baseline could not be built: {e}")),
        },
        _ = until_cancelled(handle) => return cancelled(),
    };
    if handle.cancel_requested() {
        return cancelled();
    }
    if let Err(why) = check_requester(state, &asked, &base).await {
        return ended(RunStatus::Failed, why);
    }
    let Asked {
        scenario,
        gap,
        max_seconds,
        ..
    } = asked;
    let job = {
        let (progress, handle, base) = (progress.clone(), handle.clone(), base.clone());
        tokio::task::spawn_blocking(move || {
            solve(&base, &scenario, gap, max_seconds, &progress, &handle)
        })
    };
    let mut finished = match job.await {
        Ok(Ok(f)) => f,
        Ok(Err(reason)) => return ended(RunStatus::Failed, reason),
        Err(e) => return ended(RunStatus::Failed, format!("the run stopped: {e}")),
    };
    if finished.status == RunStatus::Done
        && handle
            .state
            .compare_exchange(ACTIVE, FINISHING, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
    {
        return cancelled();
    }
    finished.base = Some(base);
    finished
}

/// The solve itself (on a blocking thread): the scenario against the baseline, and its stored results.
fn solve(
    base: &Baseline,
    scenario: &Scenario,
    gap: f64,
    max_seconds: f64,
    progress: &AtomicU64,
    handle: &RunHandle,
) -> Result<Finished, String> {
    let report = |p: &RunProgress| {
        progress.store(p.fraction.to_bits(), Ordering::Relaxed);
        !handle.cancel_requested()
    };
    let opts = RunOptions {
        gap,
        max_seconds: Some(max_seconds),
        progress: Some(&report),
        ..RunOptions::default()
    };
    let r = sim::run(&base.model, &base.solution, scenario, &opts).map_err(|e| e.to_string())?;
    let s = &r.outcome.summary;
    if s.stop == "cancelled" || handle.cancel_requested() {
        return Ok(Finished {
            status: RunStatus::Cancelled,
            message: "cancelled".into(),
            summary: Value::Null,
            links: None,
            base: None,
        });
    }
    let d = sim::delta(&base.model, &base.outcome, &r.outcome);
    let air = base
        .air
        .evaluate(
            &r.network,
            &r.outcome,
            &r.applied.added,
            Some(&base.air_result),
        )
        .map_err(|e| format!("the air model: {e}"))?;
    let mut links = sim::road_links(&base.model, &r.outcome, Some(&base.outcome));
    // the streets the scenario added, keyed `added-{edit}`, with their own line as `geometry`
    links.extend(sim::added_road_links(&r.applied, &r.outcome, true));
    let b = &base.outcome.summary;
    let message = if s.unserved_trips > 0.0 {
        format!(
            "{:.1} trips between {} zone pairs have no route: the edits cut them off (summary.unservedPairs lists \
             them); the other {:.1} trips are assigned",
            s.unserved_trips,
            s.unserved_pairs.len(),
            s.assigned_trips
        )
    } else if s.converged {
        format!(
            "converged to a relative gap of {:.1e} in {} iterations",
            s.relative_gap, s.iterations
        )
    } else {
        format!(
            "stopped ({}) at a relative gap of {:.1e}, above the target {gap:.1e}",
            s.stop, s.relative_gap
        )
    };
    let mut summary = json!(s);
    summary["edits"] = json!(r.applied.edits);
    summary["baseline"] = json!({
        "vehicleKm": b.vehicle_km,
        "vehicleHours": b.vehicle_hours,
        "unservedTrips": b.unserved_trips,
        "relativeGap": b.relative_gap,
        "builtAt": base.built_at,
        "mapHead": base.map_head,
    });
    summary["delta"] = json!({
        "vehicleKm": d.vehicle_km,
        "vehicleKmPct": d.vehicle_km_pct,
        "vehicleHours": d.vehicle_hours,
        "vehicleHoursPct": d.vehicle_hours_pct,
        "unservedTrips": d.unserved_trips,
    });
    summary["streets"] = json!(d
        .streets
        .iter()
        .filter(|s| s.delta_flow.abs() > 1e-9)
        .take(SUMMARY_STREETS)
        .collect::<Vec<_>>());
    Ok(Finished {
        status: RunStatus::Done,
        message,
        summary,
        links: Some(json!({"links": links, "streets": d.streets, "air": air})),
        base: None,
    })
}

// ---------------------------------------------------------------------------------------------------------------
// publishing results as simulated TrafficFlowObserved entities

/// The dataset the published results belong to (owner and licence: see [`ensure_results_dataset`]).
pub const RESULTS_DATASET: &str = "urn:ngsi-ld:Dataset:urbantwin-scenario-results";
/// Result entity ids are `{RESULT_PREFIX}{scenario part}:{link part}` (see [`result_id`]).
pub const RESULT_PREFIX: &str = "urn:ngsi-ld:TrafficFlowObserved:urbantwin:";
/// What `refScenario` names the baseline by (its id in `/api/scenarios`, `baseline`, is not a URI); reserved.
pub const BASELINE_IRI: &str = "urn:ngsi-ld:Scenario:baseline";
const SCENARIO_PREFIX: &str = "urn:ngsi-ld:Scenario:";
const ROAD_LINK_PREFIX: &str = "urn:ngsi-ld:RoadLink:";
const DATA_PROVIDER: &str = "urbantwin traffic model";
/// The channel the results' attribute instances are recorded as written through.
const CHANNEL: &str = "model:traffic";

/// Characters kept in the parts of a result id (RFC 3986 unreserved); every other one, `:` included, is
/// percent-encoded so that the parts cannot run into each other.
const ID_PART: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn public_url(state: &SharedState) -> String {
    state.config.public_url.trim_end_matches('/').to_string()
}

/// The IRI the results of a scenario name it by in `refScenario`: its id, [`BASELINE_IRI`] for the baseline.
pub fn scenario_iri(scenario: &str) -> &str {
    if scenario == BASELINE_ID {
        BASELINE_IRI
    } else {
        scenario
    }
}

/// One part of a result id: the local name after `prefix` when `id` has one without a colon
/// (`urn:ngsi-ld:RoadLink:osm-way-1-0` → `osm-way-1-0`), else the whole id (behind a colon when it is not a URI),
/// percent-encoded. Different ids give different parts: a local name encodes without `%3A`, a URI with one after
/// its scheme, anything else with one in front.
fn id_part(id: &str, prefix: &str) -> String {
    let part = match id.strip_prefix(prefix) {
        Some(local) if !local.is_empty() && !local.contains(':') => local.to_string(),
        _ if twin_model::ngsi::is_uri(id) => id.to_string(),
        _ => format!(":{id}"),
    };
    percent_encoding::utf8_percent_encode(&part, ID_PART).to_string()
}

/// The first part of every result id of a scenario (`baseline` for the baseline).
fn result_prefix(scenario: &str) -> String {
    format!(
        "{RESULT_PREFIX}{}:",
        id_part(scenario_iri(scenario), SCENARIO_PREFIX)
    )
}

/// The id of the entity holding a scenario's result for one link (a `RoadLink` id, or the id of a link the scenario
/// added): `urn:ngsi-ld:TrafficFlowObserved:urbantwin:{scenario}:{link}`, e.g.
/// `urn:ngsi-ld:TrafficFlowObserved:urbantwin:baseline:osm-way-4252156-0`.
pub fn result_id(scenario: &str, link: &str) -> String {
    format!(
        "{}{}",
        result_prefix(scenario),
        id_part(link, ROAD_LINK_PREFIX)
    )
}

/// The NGSI-LD query that finds a scenario's published results.
fn results_query(scenario: &str) -> String {
    let q = format!(
        "simulated==true;refScenario==\"{}\"",
        scenario_iri(scenario)
    );
    format!(
        "/ngsi-ld/v1/entities?type=TrafficFlowObserved&q={}",
        percent_encoding::utf8_percent_encode(&q, percent_encoding::NON_ALPHANUMERIC)
    )
}

/// Where a result set comes from.
struct Origin {
    /// The scenario id (`baseline` for the baseline).
    scenario: String,
    /// The URL of the run (or of the baseline) the values come from.
    source: String,
    /// When they were computed: the run's finish time, the baseline's build time.
    at: DateTime<Utc>,
}

/// Writes one result set as the scenario's `TrafficFlowObserved` entities, replacing the previous set in one
/// transaction (entities of links no longer in it are deleted), and says what it did. Callers hold the
/// publication lock.
async fn publish_results(
    state: &SharedState,
    base: &Arc<Baseline>,
    scenario: &str,
    source: &str,
    at: DateTime<Utc>,
    links: Value,
) -> ApiResult<Value> {
    let started = Instant::now();
    ensure_results_dataset(state, base).await?;
    let origin = Origin {
        scenario: scenario.to_string(),
        source: source.to_string(),
        at,
    };
    let roads = base.clone();
    let entities =
        tokio::task::spawn_blocking(move || result_entities(&roads.roads, &origin, &links))
            .await
            .map_err(internal)?
            .map_err(|e| internal(format!("the results cannot be written as entities: {e}")))?;
    let count = entities.len();
    let written = write_results(state, scenario, entities).await?;
    Ok(json!({
        "entities": count,
        "created": written.created,
        "updated": written.updated,
        "unchanged": written.unchanged,
        "deleted": written.deleted,
        "seconds": started.elapsed().as_secs_f64(),
        "dataset": RESULTS_DATASET,
        "query": results_query(scenario),
    }))
}

/// Deletes a scenario's result entities (one transaction) and their history. Callers hold the publication lock.
async fn unpublish_results(state: &SharedState, scenario: &str) -> ApiResult<()> {
    write_results(state, scenario, Vec::new()).await?;
    Ok(())
}

/// In one transaction of the store: writes `entities` as the scenario's result set and deletes its other result
/// entities. Readers see the old set or the new one, never a mix; the tile cache follows from the map changes. The
/// history of the entities deleted goes too (derived data of a set that no longer exists).
async fn write_results(
    state: &SharedState,
    scenario: &str,
    entities: Vec<Entity>,
) -> ApiResult<twin_store::StreamSummary> {
    // the scenario's entities through the value index (refScenario), and only those in its id namespace
    let mut q = twin_model::query::parse_q(&format!(
        "simulated==true;refScenario==\"{}\"",
        scenario_iri(scenario)
    ))
    .map_err(|e| internal(format!("the results query: {e}")))?;
    let ctx = Context::core();
    q.expand_names(&|n| ctx.expand(n));
    let pattern = format!("^{}", regex_literal(&result_prefix(scenario)));
    let query = EntityQuery {
        types: Some(TypeExpr::Type(format!("{V}TrafficFlowObserved"))),
        id_pattern: Some(twin_model::query::compile_regex(&pattern).map_err(internal)?),
        q: Some(q),
        limit: usize::MAX,
        ..Default::default()
    };
    let fresh: HashSet<String> = entities.iter().map(|e| e.id.clone()).collect();
    let stale: Vec<String> = state
        .store
        .query(&query)
        .await?
        .entities
        .into_iter()
        .map(|e| e.id)
        .filter(|id| !fresh.contains(id))
        .collect();
    let (tx, rx) = std::sync::mpsc::channel();
    // (the receiver lives until the store has read the whole stream: a failed send shows as a stream without
    // its commit, which the store refuses)
    for e in entities {
        let _ = tx.send(StreamMsg::Change(e.id.clone(), put_result(e)));
    }
    for id in &stale {
        let _ = tx.send(StreamMsg::Change(id.clone(), delete_result()));
    }
    let _ = tx.send(StreamMsg::Commit);
    drop(tx);
    let written = state.store.write_stream(rx).await?;
    // concurrent, so that the store commits them together
    let purged = futures::future::join_all(
        stale
            .iter()
            .map(|id| state.store.temporal_delete(id, None, None, None)),
    )
    .await;
    for r in purged {
        match r {
            Err(e) if e.kind != ErrorKind::ResourceNotFound => return Err(e.into()),
            _ => {}
        }
    }
    Ok(written)
}

/// `s` as a regular expression matching itself (result id prefixes hold letters, digits and `:-._~%`).
fn regex_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Creates or replaces a result entity. As with imports, a new entity's values do not go into the temporal
/// history; values that changed since the previous run do (unchanged ones keep their times, and an entity with
/// nothing changed is not written).
fn put_result(e: Entity) -> EntityChange {
    Box::new(move |old| {
        Ok(match old {
            None => ChangeOutcome::Put {
                entity: e,
                written: Vec::new(),
                removed: Vec::new(),
                result: Value::Null,
            },
            Some(o) => match twin_model::ops::reimport(&o, e, Utc::now()) {
                None => ChangeOutcome::Nothing {
                    result: Value::Null,
                },
                Some((entity, report)) => ChangeOutcome::Put {
                    entity,
                    written: report.written,
                    removed: report.removed,
                    result: Value::Null,
                },
            },
        })
    })
}

/// Deletes a result entity of an earlier set; an entity that is gone or no longer marked simulated is left alone.
fn delete_result() -> EntityChange {
    Box::new(|cur| {
        let simulated = format!("{V}simulated");
        Ok(match cur {
            Some(e)
                if e.instance(&simulated, None)
                    .is_some_and(|a| a.value == Value::Bool(true)) =>
            {
                ChangeOutcome::Delete
            }
            _ => ChangeOutcome::Nothing {
                result: Value::Null,
            },
        })
    })
}

/// Brings the results dataset's read policy up to date with the input datasets' when a dataset changed since it was
/// last done (on any node: the store's configuration epoch), so that a policy narrowed without a change to the map
/// narrows the published results at once.
async fn follow_input_policies(state: &SharedState, base: &Baseline) -> ApiResult<()> {
    let epoch = state.store.config_epoch();
    if state.scenarios.policies_epoch.load(Ordering::SeqCst) == epoch {
        return Ok(());
    }
    let _publishing = state.scenarios.publishing.lock().await;
    ensure_results_dataset(state, base).await?;
    // (its own change, if any, moved the epoch again: that one needs nothing more)
    state
        .scenarios
        .policies_epoch
        .store(state.store.config_epoch(), Ordering::SeqCst);
    Ok(())
}

/// After a dataset's policy changed: the results dataset follows it now, when this node has a baseline (else it
/// follows when one is built).
pub(crate) async fn follow_policies(state: &SharedState) -> ApiResult<()> {
    let cached = state.scenarios.baseline.lock().await.clone();
    match cached {
        Some(b) => follow_input_policies(state, &b).await,
        None => Ok(()),
    }
}

/// Creates or updates the results dataset: owned by urbantwin, under the licence(s) of the street network it is
/// computed from (its geometry is the network's), readable by no more than every input dataset of the baseline lets
/// read (public when they all are; an input dataset without a record makes it private).
async fn ensure_results_dataset(state: &SharedState, base: &Baseline) -> ApiResult<()> {
    let mut reads = Vec::new();
    for id in base.inputs.keys() {
        reads.push(match state.store.get_dataset(id).await? {
            Some(d) => d.read,
            None if id == twin_model::dataset::DEFAULT_DATASET => Dataset::default_dataset().read,
            None => twin_model::dataset::Access::Private,
        });
    }
    let read = policy::narrowest_access(reads.iter());
    let mut licences = BTreeSet::new();
    for id in &base.network_datasets {
        match state.store.get_dataset(id).await? {
            Some(d) => licences.insert(d.licence),
            None => licences.insert(Dataset::default_dataset().licence),
        };
    }
    let licence = if licences.is_empty() {
        Dataset::default_dataset().licence
    } else {
        licences.into_iter().collect::<Vec<_>>().join(" AND ")
    };
    let existing = state.store.get_dataset(RESULTS_DATASET).await?;
    let wanted = Dataset {
        id: RESULTS_DATASET.into(),
        title: "urbantwin traffic model results (simulated)".into(),
        description: Some(format!(
            "TrafficFlowObserved entities computed by urbantwin's traffic model for the baseline and the latest run \
             of each scenario: simulated values, not measurements. Derived from the street network in {}, and from \
             the entities of {} (readable by no more than each of them lets read)",
            base.network_datasets
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
            base.inputs.keys().cloned().collect::<Vec<_>>().join(", ")
        )),
        owner: "urbantwin".into(),
        licence,
        read,
        write: twin_model::dataset::Access::Private,
        created_at: existing
            .as_ref()
            .and_then(|d| d.created_at)
            .or_else(|| Some(now())),
        attributes: Vec::new(),
        usage_policy: None,
        catalog: twin_model::dataset::CatalogInfo {
            keywords: vec!["traffic model".into(), "scenarios".into(), "simulation".into()],
            themes: vec!["TRAN".into()],
            update_frequency: Some("IRREG".into()),
            ..Default::default()
        },
    };
    if existing.as_ref() != Some(&wanted) {
        state.store.put_dataset(wanted).await?;
    }
    Ok(())
}

/// The result entities of one result set, one per link with values (`links`: link id → the values of
/// [`sim::road_links`]).
fn result_entities(
    roads: &HashMap<String, RoadInfo>,
    origin: &Origin,
    links: &Value,
) -> Result<Vec<Entity>, String> {
    let Some(links) = links.as_object() else {
        return Err("they hold no per-link values".into());
    };
    let ctx = Context::core();
    let prov = Provenance {
        dataset: Some(RESULTS_DATASET.into()),
        source: Some(origin.source.clone()),
        channel: Some(CHANNEL.into()),
    };
    let written = Utc::now();
    links
        .iter()
        .map(|(link, values)| {
            let doc = result_document(roads.get(link), origin, link, values)?;
            twin_model::ngsi::parse_entity(&doc, &ctx, written, &prov)
                .map_err(|e| format!("the result of {link}: {}", e.detail))
        })
        .collect()
}

/// One result entity, normalized NGSI-LD under the core context (see docs/api.md, "Results as entities").
fn result_document(
    road: Option<&RoadInfo>,
    origin: &Origin,
    link: &str,
    v: &Value,
) -> Result<Value, String> {
    let num = |k: &str| v.get(k).and_then(Value::as_f64).filter(|x| x.is_finite());
    let flow = num("flow").ok_or_else(|| format!("the result of {link} has no numeric flow"))?;
    let at = origin.at.to_rfc3339_opts(SecondsFormat::Millis, true);
    let observed = |x: Value| json!({"type": "Property", "value": x, "observedAt": at});
    let measured = |x: f64, unit: &str| json!({"type": "Property", "value": x, "observedAt": at, "unitCode": unit});
    let property = |x: Value| json!({"type": "Property", "value": x});
    let vc = num("vc").unwrap_or(0.0);
    // a link the scenario added carries its own geometry; the others have their RoadLink's
    let own_geometry = v.get("geometry").filter(|g| g.is_object());
    let geometry = own_geometry.or_else(|| road.and_then(|r| r.geometry.as_ref()));
    let length_m = match own_geometry {
        Some(g) => line_length_m(g),
        None => road.and_then(|r| r.length_m),
    };

    let mut m = Map::new();
    m.insert("id".into(), json!(result_id(&origin.scenario, link)));
    m.insert("type".into(), json!("TrafficFlowObserved"));
    if let Some(name) = v.get("name").and_then(Value::as_str) {
        m.insert("name".into(), property(json!(name)));
    }
    if let Some(g) = geometry {
        m.insert(
            "location".into(),
            json!({"type": "GeoProperty", "value": g}),
        );
    }
    if road.is_some() {
        m.insert(
            "refRoadSegment".into(),
            json!({"type": "Relationship", "object": link}),
        );
    }
    m.insert(
        "refScenario".into(),
        json!({"type": "Relationship", "object": scenario_iri(&origin.scenario)}),
    );
    m.insert("simulated".into(), property(json!(true)));
    m.insert("dataProvider".into(), property(json!(DATA_PROVIDER)));
    m.insert("source".into(), property(json!(origin.source)));
    m.insert(
        "dateObserved".into(),
        property(json!({"@type": "DateTime", "@value": at})),
    );
    m.insert("intensity".into(), observed(json!(flow)));
    for (key, name) in [
        ("flowForward", "intensityForward"),
        ("flowBackward", "intensityBackward"),
    ] {
        if let Some(x) = num(key) {
            m.insert(name.into(), observed(json!(x)));
        }
    }
    m.insert("volumeCapacityRatio".into(), observed(json!(vc)));
    m.insert("congested".into(), observed(json!(vc > 1.0)));
    m.insert(
        "closed".into(),
        observed(json!(v
            .get("closed")
            .and_then(Value::as_bool)
            .unwrap_or(false))),
    );
    if let Some(t) = num("timeS") {
        m.insert("travelTime".into(), measured(t, "SEC"));
        if let Some(l) = length_m.filter(|_| t > 0.0) {
            m.insert("averageVehicleSpeed".into(), measured(l / t * 3.6, "KMH"));
        }
    }
    if let Some(d) = num("deltaFlow") {
        m.insert("intensityChange".into(), observed(json!(d)));
    }
    if let Some(p) = num("deltaPct") {
        m.insert("intensityChangePercent".into(), measured(p, "P1"));
    }
    Ok(Value::Object(m))
}

/// The length in metres of a GeoJSON LineString (haversine), None for anything else.
fn line_length_m(g: &Value) -> Option<f64> {
    if g.get("type")?.as_str()? != "LineString" {
        return None;
    }
    let points: Vec<(f64, f64)> = g
        .get("coordinates")?
        .as_array()?
        .iter()
        .map(|p| Some((p.get(0)?.as_f64()?, p.get(1)?.as_f64()?)))
        .collect::<Option<_>>()?;
    const R: f64 = 6_371_008.8;
    let metres: f64 = points
        .windows(2)
        .map(|w| {
            let (lon1, lat1) = (w[0].0.to_radians(), w[0].1.to_radians());
            let (lon2, lat2) = (w[1].0.to_radians(), w[1].1.to_radians());
            let a = ((lat2 - lat1) / 2.0).sin().powi(2)
                + lat1.cos() * lat2.cos() * ((lon2 - lon1) / 2.0).sin().powi(2);
            2.0 * R * a.sqrt().min(1.0).asin()
        })
        .sum();
    (metres.is_finite() && metres > 0.0).then_some(metres)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_ids_are_clean_and_never_collide() {
        assert_eq!(
            result_id(BASELINE_ID, "urn:ngsi-ld:RoadLink:osm-way-4252156-0"),
            "urn:ngsi-ld:TrafficFlowObserved:urbantwin:baseline:osm-way-4252156-0"
        );
        assert_eq!(
            result_id(
                "urn:ngsi-ld:Scenario:5f0c",
                "urn:ngsi-ld:RoadLink:osm-way-1-2"
            ),
            "urn:ngsi-ld:TrafficFlowObserved:urbantwin:5f0c:osm-way-1-2"
        );
        // ids outside the usual schemes are kept whole, encoded
        assert_eq!(
            result_id("https://city.example/s?a=1", "urn:x:added:1"),
            "urn:ngsi-ld:TrafficFlowObserved:urbantwin:https%3A%2F%2Fcity.example%2Fs%3Fa%3D1:urn%3Ax%3Aadded%3A1"
        );
        assert_eq!(
            result_id("urn:ngsi-ld:Scenario:s", "added 1"),
            "urn:ngsi-ld:TrafficFlowObserved:urbantwin:s:%3Aadded%201"
        );
        let pairs = [
            ("urn:ngsi-ld:Scenario:a", "urn:ngsi-ld:RoadLink:b"),
            ("urn:ngsi-ld:Scenario:a:b", "urn:ngsi-ld:RoadLink:c"),
            ("urn:ngsi-ld:Scenario:a", "urn:ngsi-ld:RoadLink:b:c"),
            ("urn:x:a", "urn:ngsi-ld:RoadLink:b"),
            ("urn:ngsi-ld:Scenario:urn:x:a", "urn:ngsi-ld:RoadLink:b"),
            ("urn:ngsi-ld:Scenario:urn%3Ax%3Aa", "urn:ngsi-ld:RoadLink:b"),
            (BASELINE_ID, "urn:ngsi-ld:RoadLink:b"),
            ("urn:ngsi-ld:Scenario:a", "b"),
            ("urn:ngsi-ld:Scenario:a", ":b"),
            ("urn:ngsi-ld:Scenario:a", "%3Ab"),
        ];
        let ids: HashSet<String> = pairs.iter().map(|(s, l)| result_id(s, l)).collect();
        assert_eq!(ids.len(), pairs.len(), "{ids:?}");
        for id in &ids {
            assert!(twin_model::ngsi::is_uri(id), "{id}");
            let rest = id.strip_prefix(RESULT_PREFIX).unwrap();
            assert_eq!(rest.matches(':').count(), 1, "{id}");
        }
        // the baseline's IRI cannot be a scenario's id
        assert!(check_id(BASELINE_IRI.into()).is_err());
    }

    #[test]
    fn prefixes_match_themselves_as_patterns() {
        let p = result_prefix("urn:x:a.b~c-d_e");
        let re = twin_model::query::compile_regex(&format!("^{}", regex_literal(&p))).unwrap();
        assert!(re.is_match(&format!("{p}osm-way-1-0")));
        assert!(!re.is_match(&p.replace('.', "x")));
    }

    fn origin(scenario: &str) -> Origin {
        Origin {
            scenario: scenario.into(),
            source: "http://127.0.0.1:1026/api/scenarios/s/runs/r".into(),
            at: DateTime::from_timestamp_millis(1_700_000_000_000).unwrap(),
        }
    }

    #[test]
    fn result_documents() {
        let line = json!({"type": "LineString", "coordinates": [[24.94, 60.17], [24.95, 60.17]]});
        let road = RoadInfo {
            geometry: Some(line.clone()),
            length_m: Some(555.0),
        };
        let link = "urn:ngsi-ld:RoadLink:osm-way-1-0";
        let v = json!({"name": "Fabianinkatu", "flow": 420.5, "flowForward": 300.0, "flowBackward": 120.5,
                       "vc": 1.2, "timeS": 55.5, "closed": false, "deltaFlow": 20.5, "deltaPct": null});
        let d = result_document(Some(&road), &origin("urn:ngsi-ld:Scenario:s"), link, &v).unwrap();
        assert_eq!(
            d["id"],
            "urn:ngsi-ld:TrafficFlowObserved:urbantwin:s:osm-way-1-0"
        );
        assert_eq!(d["location"]["value"], line);
        assert_eq!(d["refRoadSegment"]["object"], link);
        assert_eq!(d["refScenario"]["object"], "urn:ngsi-ld:Scenario:s");
        assert_eq!(d["intensity"]["value"], 420.5);
        assert_eq!(d["intensity"]["observedAt"], "2023-11-14T22:13:20.000Z");
        assert_eq!(d["intensityBackward"]["value"], 120.5);
        assert_eq!(d["congested"]["value"], true);
        assert_eq!(d["travelTime"]["unitCode"], "SEC");
        assert!((d["averageVehicleSpeed"]["value"].as_f64().unwrap() - 36.0).abs() < 1e-9);
        assert_eq!(d["intensityChange"]["value"], 20.5);
        assert!(d.get("intensityChangePercent").is_none());
        assert_eq!(
            d["dateObserved"]["value"]["@value"],
            "2023-11-14T22:13:20.000Z"
        );
        twin_model::ngsi::parse_entity(&d, &Context::core(), Utc::now(), &Provenance::default())
            .unwrap();

        // a closed link of the baseline: no travel time, no speed, no change
        let closed = json!({"flow": 0.0, "vc": 0.0, "timeS": null, "closed": true});
        let d = result_document(Some(&road), &origin(BASELINE_ID), link, &closed).unwrap();
        assert_eq!(d["refScenario"]["object"], BASELINE_IRI);
        assert_eq!(d["closed"]["value"], true);
        assert_eq!(d["congested"]["value"], false);
        for absent in [
            "travelTime",
            "averageVehicleSpeed",
            "intensityChange",
            "intensityForward",
        ] {
            assert!(d.get(absent).is_none(), "{absent}: {d}");
        }

        // a link the scenario added: its own geometry, no RoadLink to refer to
        let added = json!({"flow": 100.0, "vc": 0.1, "timeS": 10.0, "closed": false, "deltaFlow": 100.0,
                           "geometry": line});
        let d =
            result_document(None, &origin("urn:ngsi-ld:Scenario:s"), "added-1", &added).unwrap();
        assert_eq!(d["location"]["value"], line);
        assert!(d.get("refRoadSegment").is_none() && d.get("geometry").is_none());
        let speed = d["averageVehicleSpeed"]["value"].as_f64().unwrap();
        assert!((speed - line_length_m(&line).unwrap() / 10.0 * 3.6).abs() < 1e-9);

        assert!(result_document(None, &origin("s"), link, &json!({"vc": 1})).is_err());
    }

    #[test]
    fn line_lengths() {
        // a minute of latitude is a nautical mile, near enough
        let g =
            json!({"type": "LineString", "coordinates": [[24.0, 60.0], [24.0, 60.0 + 1.0 / 60.0]]});
        assert!((line_length_m(&g).unwrap() - 1853.2).abs() < 2.0);
        assert_eq!(
            line_length_m(&json!({"type": "Point", "coordinates": [1, 2]})),
            None
        );
        assert_eq!(
            line_length_m(&json!({"type": "LineString", "coordinates": [[1, "x"]]})),
            None
        );
    }
}
