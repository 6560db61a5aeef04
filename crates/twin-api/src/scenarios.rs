//! `/api/scenarios`: traffic scenarios (named lists of edits on the city's street network), their runs and results.
//!
//! The baseline is the city's traffic model built from the store's `RoadLink`, `Building` and `PointOfInterest`
//! entities ([`twin_sim::traffic::city::build`]) and assigned once; it is kept in memory with the store's map-change
//! head and rebuilt when one of those types changed on the map. A scenario is checked against it when it is stored
//! (an unknown street is a 400). A run is queued, then solved off the async runtime (`spawn_blocking`, one run at a
//! time) warm-started from the baseline, with its progress written to the store; it can be cancelled while queued or
//! running. Its results (per-`RoadLink` flows, volume/capacity, travel times and the change against the baseline,
//! per-street changes and the totals) are stored with the run and served as JSON keyed by `RoadLink` entity id (for
//! MapLibre feature state on the `RoadLink` tiles) and as GeoJSON.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use twin_model::entity::iri;
use twin_model::query::TypeExpr;
use twin_model::{Entity, ErrorKind};
use twin_sim::traffic::assign::Solution;
use twin_sim::traffic::city::{self, CityModel, CityOptions};
use twin_sim::traffic::scenario::{self as sim, Outcome, RunOptions, RunProgress, Scenario};
use twin_store::{EntityQuery, RunStatus, StoredRun, StoredScenario};

use crate::error::{ApiError, ApiResult};
use crate::params::Params;
use crate::{ld, parse_body, path_segment, SharedState};

const V: &str = iri::DEFAULT_CONTEXT;
/// The entity types the traffic model is built from: a map change to one of them rebuilds the baseline.
const MODEL_TYPES: [&str; 3] = ["RoadLink", "Building", "PointOfInterest"];
/// The baseline is solved once, so it is solved far (a scenario's delta means something only when both solutions
/// are converged beyond the differences it shows).
const BASELINE_GAP: f64 = 1e-10;
const BASELINE_MAX_SECONDS: f64 = 300.0;
const DEFAULT_GAP: f64 = 1e-8;
const DEFAULT_MAX_SECONDS: f64 = 600.0;
/// How often a running run's progress is written to the store.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// The id reserved for the baseline in `/api/scenarios/{id}`.
const BASELINE_ID: &str = "baseline";
/// Streets listed in a run's summary (all of them are in its `/links`).
const SUMMARY_STREETS: usize = 10;

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/scenarios", get(list).post(create))
        .route("/scenarios/baseline", get(baseline_summary))
        .route("/scenarios/baseline/links", get(baseline_links))
        .route("/scenarios/baseline/links.geojson", get(baseline_geojson))
        .route("/scenarios/{id}", get(retrieve).put(replace).delete(remove))
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
}

const ACTIVE: u8 = 0;
const CANCEL_REQUESTED: u8 = 1;
const FINISHING: u8 = 2;

/// A run this server is executing.
struct RunHandle {
    scenario: String,
    /// [`ACTIVE`], [`CANCEL_REQUESTED`] or [`FINISHING`] (its results are being stored: too late to cancel).
    state: AtomicU8,
    cancelled: Notify,
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
            Ok(_) | Err(CANCEL_REQUESTED) => {
                self.cancelled.notify_one();
                true
            }
            Err(_) => false,
        }
    }
}

/// What the scenario endpoints keep in memory: the baseline, the runs in progress and the run queue.
pub struct ScenarioState {
    baseline: tokio::sync::Mutex<Option<Arc<Baseline>>>,
    /// The map-change head the cached baseline is known to be current at.
    baseline_head: AtomicU64,
    runs: Mutex<HashMap<String, Arc<RunHandle>>>,
    /// One run at a time (a city-sized assignment uses every core).
    queue: Arc<Semaphore>,
    /// Runs a previous process left queued or running are marked failed once, on first use.
    recovered: tokio::sync::OnceCell<()>,
}

impl Default for ScenarioState {
    fn default() -> Self {
        ScenarioState {
            baseline: tokio::sync::Mutex::new(None),
            baseline_head: AtomicU64::new(0),
            runs: Mutex::new(HashMap::new()),
            queue: Arc::new(Semaphore::new(1)),
            recovered: tokio::sync::OnceCell::new(),
        }
    }
}

impl ScenarioState {
    /// Holds the run queue: new runs stay queued (and can be cancelled) until the permit is dropped. For
    /// maintenance, such as importing a new city while nobody should compute on the old one.
    pub async fn pause(&self) -> OwnedSemaphorePermit {
        self.queue
            .clone()
            .acquire_owned()
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

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(ErrorKind::InternalError, e.to_string())
}

fn conflict(d: impl Into<String>) -> ApiError {
    ApiError::new(ErrorKind::Conflict, d)
}

/// The baseline for the city as the store holds it now: the cached one while no `RoadLink`, `Building` or
/// `PointOfInterest` changed on the map since it was built, else a new one.
pub async fn baseline(state: &SharedState) -> ApiResult<Arc<Baseline>> {
    let sc = &state.scenarios;
    let mut slot = sc.baseline.lock().await;
    if let Some(b) = slot.as_ref() {
        let head = sc.baseline_head.load(Ordering::SeqCst) as i64;
        let changes = state.store.map_changes_since(head, 4096).await?;
        if changes.head <= head {
            return Ok(b.clone());
        }
        let relevant = |t: &str| MODEL_TYPES.iter().any(|m| t == format!("{V}{m}"));
        if changes.complete && !changes.changes.iter().any(|c| relevant(&c.type_name)) {
            sc.baseline_head
                .store(changes.head.max(0) as u64, Ordering::SeqCst);
            return Ok(b.clone());
        }
    }
    // the head first: a change made while the entities are read rebuilds the baseline next time
    let head = state.store.map_changes_since(i64::MAX, 0).await?.head;
    let q = EntityQuery {
        types: Some(TypeExpr::Or(
            MODEL_TYPES
                .iter()
                .map(|t| TypeExpr::Type(format!("{V}{t}")))
                .collect(),
        )),
        limit: usize::MAX,
        ..Default::default()
    };
    let entities = state.store.query(&q).await?.entities;
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
    Ok(Baseline {
        model,
        solution,
        outcome,
        links,
        built_at: now(),
        map_head,
        seconds: t.elapsed().as_secs_f64(),
    })
}

/// Marks the runs a previous process left unfinished as failed (once per process).
async fn recover(state: &SharedState) -> ApiResult<()> {
    state
        .scenarios
        .recovered
        .get_or_try_init(|| async {
            for s in state.store.list_scenarios().await? {
                for mut r in state.store.list_runs(&s.id).await? {
                    if r.status.is_final() || state.scenarios.handle(&r.id).is_some() {
                        continue;
                    }
                    r.status = RunStatus::Failed;
                    r.message =
                        Some("interrupted: the server stopped before the run finished".into());
                    r.finished_at = Some(now());
                    // (a run another process finished meanwhile keeps its outcome)
                    let _ = state.store.put_run(r, None, false).await;
                }
            }
            Ok::<(), ApiError>(())
        })
        .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// representations

fn json_response(status: StatusCode, v: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

fn geojson_response(v: &Value) -> Response {
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
    m.insert("createdAt".into(), json!(s.created_at));
    m.insert("modifiedAt".into(), json!(s.modified_at));
    m.insert(
        "runs".into(),
        json!(format!("{}/runs", scenario_url(&s.id))),
    );
    Value::Object(m)
}

fn run_json(r: &StoredRun) -> Value {
    let mut v = json!({
        "id": r.id,
        "scenario": r.scenario_id,
        "status": r.status,
        "progress": r.progress,
        "message": r.message,
        "createdAt": r.created_at,
        "startedAt": r.started_at,
        "finishedAt": r.finished_at,
        "request": r.request,
        "summary": r.summary,
    });
    if r.status == RunStatus::Done {
        let url = run_url(&r.scenario_id, &r.id);
        v["links"] = json!(format!("{url}/links"));
        v["geojson"] = json!(format!("{url}/links.geojson"));
    }
    v
}

/// A scenario from a request body: the document, and the id when the body names one. `createdAt`, `modifiedAt` and
/// `runs` (what a GET returns besides the document) are ignored, so a client can PUT back what it read.
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
    for k in ["createdAt", "modifiedAt", "runs"] {
        doc.remove(k);
    }
    let s: Scenario = serde_json::from_value(Value::Object(doc))
        .map_err(|e| ApiError::bad_data(format!("invalid scenario: {e}")))?;
    s.check()
        .map_err(|e| ApiError::bad_data(format!("invalid scenario: {e}")))?;
    Ok((id, s))
}

fn check_id(id: String) -> ApiResult<String> {
    if id == BASELINE_ID {
        return Err(ApiError::bad_data(
            "\"baseline\" is reserved for the city's baseline; choose another scenario id",
        ));
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

async fn stored_scenario(state: &SharedState, id: &str) -> ApiResult<StoredScenario> {
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

async fn create(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
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
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let (body_id, s) = parse_scenario(&headers, &body)?;
    if let Some(b) = body_id.filter(|b| *b != id) {
        return Err(ApiError::bad_data(format!(
            "the body's id {b} differs from the id in the URL {id}"
        )));
    }
    let old = stored_scenario(&state, &id).await?;
    check_against_city(&state, &s).await?;
    state
        .store
        .put_scenario(
            StoredScenario {
                id,
                document: json!(s),
                created_at: old.created_at,
                modified_at: now(),
            },
            false,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove(State(state): State<SharedState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
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
    if !state.store.delete_scenario(&id).await? {
        return Err(ApiError::not_found(format!("scenario {id} does not exist")));
    }
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------------------------------
// the baseline

async fn baseline_summary(
    State(state): State<SharedState>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    Params::parse(raw.as_deref(), &[])?;
    let b = baseline(&state).await?;
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
        "links": format!("{url}/links"),
        "geojson": format!("{url}/links.geojson"),
    });
    Ok(json_response(StatusCode::OK, &body))
}

async fn baseline_links(
    State(state): State<SharedState>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    Params::parse(raw.as_deref(), &[])?;
    let b = baseline(&state).await?;
    let mut body = b.links.clone();
    body["scenario"] = json!(BASELINE_ID);
    Ok(json_response(StatusCode::OK, &body))
}

async fn baseline_geojson(
    State(state): State<SharedState>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    Params::parse(raw.as_deref(), &[])?;
    let b = baseline(&state).await?;
    let fc = feature_collection(&state, &b.links["links"]).await?;
    Ok(geojson_response(&fc))
}

/// The `RoadLink` entities with values, as GeoJSON features: geometry from the store (null for a link deleted
/// since), the values as properties.
async fn feature_collection(state: &SharedState, values: &Value) -> ApiResult<Value> {
    let q = EntityQuery {
        types: Some(TypeExpr::Type(format!("{V}RoadLink"))),
        limit: usize::MAX,
        ..Default::default()
    };
    let entities = state.store.query(&q).await?.entities;
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
                            props.extend(o.clone());
                        }
                        json!({
                            "type": "Feature",
                            "id": id,
                            "geometry": geometry.get(id.as_str()).copied().cloned().unwrap_or(Value::Null),
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

async fn list_runs(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    Params::parse(raw.as_deref(), &[])?;
    recover(&state).await?;
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
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    recover(&state).await?;
    let (gap, max_seconds) = run_options(&headers, &body)?;
    let stored = stored_scenario(&state, &id).await?;
    let scenario: Scenario = serde_json::from_value(stored.document.clone())
        .map_err(|e| internal(format!("scenario {id} as stored cannot be read: {e}")))?;
    let run_id = format!("urn:ngsi-ld:ScenarioRun:{}", uuid::Uuid::new_v4());
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
            "scenario": stored.document,
            "scenarioModifiedAt": stored.modified_at,
            "model": {
                "name": "twin-sim traffic: city demand, static user equilibrium (Algorithm B), BPR costs",
                "version": env!("CARGO_PKG_VERSION"),
            },
        }),
        summary: Value::Null,
    };
    let handle = Arc::new(RunHandle {
        scenario: id.clone(),
        state: AtomicU8::new(ACTIVE),
        cancelled: Notify::new(),
    });
    // registered before it is stored, so that it is never taken for a run an earlier process left behind
    state.scenarios.register(&run_id, handle.clone());
    if let Err(e) = state.store.put_run(run.clone(), None, true).await {
        state.scenarios.unregister(&run_id);
        return Err(e.into());
    }
    let body = run_json(&run);
    tokio::spawn(execute(
        state.clone(),
        run,
        scenario,
        gap,
        max_seconds,
        handle,
    ));
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
    recover(&state).await?;
    let r = stored_run(&state, &id, &run).await?;
    Ok(json_response(StatusCode::OK, &run_json(&r)))
}

async fn cancel_run(
    State(state): State<SharedState>,
    Path((id, run)): Path<(String, String)>,
) -> ApiResult<Response> {
    recover(&state).await?;
    let mut r = stored_run(&state, &id, &run).await?;
    if r.status.is_final() {
        return Err(conflict(format!(
            "run {run} is already {}",
            r.status.as_str()
        )));
    }
    match state.scenarios.handle(&run) {
        Some(h) => {
            if !h.cancel() {
                return Err(conflict(format!(
                    "run {run} is storing its results: too late to cancel"
                )));
            }
        }
        None => {
            // not running here (another process's, or left behind): recorded as cancelled at once
            r.status = RunStatus::Cancelled;
            r.message = Some("cancelled".into());
            r.finished_at = Some(now());
            state.store.put_run(r.clone(), None, false).await?;
        }
    }
    let mut body = run_json(&r);
    body["cancelRequested"] = json!(true);
    Ok(with_location(
        json_response(StatusCode::ACCEPTED, &body),
        &run_url(&id, &run),
    ))
}

async fn run_results(state: &SharedState, id: &str, run: &str) -> ApiResult<Value> {
    let r = stored_run(state, id, run).await?;
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
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    Params::parse(raw.as_deref(), &[])?;
    let mut body = run_results(&state, &id, &run).await?;
    body["scenario"] = json!(id);
    body["run"] = json!(run);
    Ok(json_response(StatusCode::OK, &body))
}

async fn run_geojson(
    State(state): State<SharedState>,
    Path((id, run)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    Params::parse(raw.as_deref(), &[])?;
    let body = run_results(&state, &id, &run).await?;
    let fc = feature_collection(&state, &body["links"]).await?;
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
}

/// Runs one scenario run to its end and records it; the handle is dropped afterwards.
async fn execute(
    state: SharedState,
    mut run: StoredRun,
    scenario: Scenario,
    gap: f64,
    max_seconds: f64,
    handle: Arc<RunHandle>,
) {
    let done = drive(&state, &mut run, scenario, gap, max_seconds, &handle).await;
    if let Some(f) = done {
        run.status = f.status;
        run.message = Some(f.message);
        run.summary = f.summary;
        run.finished_at = Some(now());
        if f.status == RunStatus::Done {
            run.progress = 1.0;
        }
        if let Err(e) = state.store.put_run(run.clone(), f.links, false).await {
            // the scenario was deleted meanwhile, or the store failed: nothing left to tell
            tracing::warn!(run = %run.id, "the run's outcome could not be stored: {}", e.detail);
        }
    }
    state.scenarios.unregister(&run.id);
}

fn ended(status: RunStatus, message: impl Into<String>) -> Option<Finished> {
    Some(Finished {
        status,
        message: message.into(),
        summary: Value::Null,
        links: None,
    })
}

/// Waits for the queue, solves and says how the run ended (None when there is nothing left to record).
async fn drive(
    state: &SharedState,
    run: &mut StoredRun,
    scenario: Scenario,
    gap: f64,
    max_seconds: f64,
    handle: &Arc<RunHandle>,
) -> Option<Finished> {
    let cancelled = || ended(RunStatus::Cancelled, "cancelled");
    let _permit = tokio::select! {
        p = state.scenarios.queue.clone().acquire_owned() => p.ok()?,
        _ = handle.cancelled.notified() => return cancelled(),
    };
    if handle.cancel_requested() {
        return cancelled();
    }
    let base = match baseline(state).await {
        Ok(b) => b,
        Err(e) => return ended(RunStatus::Failed, e.0.detail),
    };
    if handle.cancel_requested() {
        return cancelled();
    }
    run.status = RunStatus::Running;
    run.started_at = Some(now());
    if state.store.put_run(run.clone(), None, false).await.is_err() {
        return None; // deleted meanwhile
    }
    let progress = Arc::new(AtomicU64::new(0f64.to_bits()));
    let job = {
        let (progress, handle, base) = (progress.clone(), handle.clone(), base.clone());
        tokio::task::spawn_blocking(move || {
            solve(&base, &scenario, gap, max_seconds, &progress, &handle)
        })
    };
    tokio::pin!(job);
    let mut written = 0.0;
    let result = loop {
        tokio::select! {
            r = &mut job => break r,
            _ = tokio::time::sleep(PROGRESS_EVERY) => {
                let p = f64::from_bits(progress.load(Ordering::Relaxed));
                if p > written {
                    written = p;
                    run.progress = p;
                    if state.store.put_run(run.clone(), None, false).await.is_err() {
                        handle.cancel();
                    }
                }
            }
        }
    };
    let finished = match result {
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
    Some(finished)
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
        });
    }
    let d = sim::delta(&base.model, &base.outcome, &r.outcome);
    let links = sim::road_links(&base.model, &r.outcome, Some(&base.outcome));
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
        links: Some(json!({"links": links, "streets": d.streets})),
    })
}
