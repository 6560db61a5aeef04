//! `/api/scenarios/{id}/air` and `/api/scenarios/{id}/noise`: the air quality and road-traffic noise of the baseline
//! or of a scenario's run, per street (keyed by `RoadLink` id) with the change against the baseline, and residents
//! exposed; `.geojson` variants give the streets as lines.
//!
//! The values are computed with the traffic (`twin_sim::air::city`): the baseline's when it is built, a run's when it
//! is solved, and stored with the run. A scenario's are its latest done run's, or those of the run named by `?run=`.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Map, Value};
use twin_store::RunStatus;

use crate::error::ApiResult;
use crate::params::Params;
use crate::scenarios::{
    baseline, conflict, feature_collection, geojson_response, internal, json_response, recover,
    run_results, stored_scenario, BASELINE_ID,
};
use crate::SharedState;

const PARAMS: [&str; 2] = ["run", "homes"];

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/scenarios/{id}/air", get(air))
        .route("/scenarios/{id}/air.geojson", get(air_geojson))
        .route("/scenarios/{id}/noise", get(noise))
        .route("/scenarios/{id}/noise.geojson", get(noise_geojson))
}

/// Which half of the results a view shows.
#[derive(Clone, Copy, PartialEq)]
enum View {
    Air,
    Noise,
}

/// Street values each view keeps (the rest belongs to the other).
const AIR_STREET: [&str; 15] = [
    "name",
    "vehiclesPerDay",
    "peakKmh",
    "roadType",
    "receptorM",
    "emissionGPerKmDay",
    "nox",
    "no2",
    "pm10",
    "pm25",
    "no2Traffic",
    "deltaVehiclesPerDay",
    "deltaNo2",
    "deltaPm10",
    "deltaPm25",
];
const NOISE_STREET: [&str; 8] = [
    "name",
    "vehiclesPerDay",
    "receptorM",
    "lden",
    "lnight",
    "deltaVehiclesPerDay",
    "deltaLden",
    "deltaLnight",
];
const NOISE_SUMMARY: [&str; 5] = ["streets", "homes", "residents", "homesCounted", "noise"];
const NOISE_CHANGE: [&str; 2] = ["ldenAbove55", "lnightAbove50"];
const AIR_HOME: [&str; 6] = ["id", "residents", "no2", "pm10", "pm25", "street"];
const NOISE_HOME: [&str; 4] = ["id", "residents", "lden", "lnight"];

fn keep(v: &Value, keys: &[&str]) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .filter(|(k, _)| keys.contains(&k.as_str()))
                .map(|(k, x)| (k.clone(), x.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn drop_keys(v: &Value, keys: &[&str]) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .filter(|(k, _)| !keys.contains(&k.as_str()))
                .map(|(k, x)| (k.clone(), x.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The stored results (`AirResult` as JSON) of the baseline or of a scenario's run, with the run's id and its
/// per-street traffic values (for the lines of added streets).
async fn results(
    state: &SharedState,
    id: &str,
    params: &Params,
) -> ApiResult<(Option<String>, Value, Value)> {
    if id == BASELINE_ID {
        if params.has("run") {
            return Err(crate::error::ApiError::bad_data(
                "the baseline has no runs: leave out `run`",
            ));
        }
        let b = baseline(state).await?;
        let air = serde_json::to_value(&b.air_result).map_err(internal)?;
        return Ok((None, air, b.links["links"].clone()));
    }
    recover(state).await?;
    stored_scenario(state, id).await?;
    let run = match params.get("run") {
        Some(r) => r.to_string(),
        None => state
            .store
            .list_runs(id)
            .await?
            .into_iter()
            .filter(|r| r.status == RunStatus::Done)
            .max_by_key(|r| r.finished_at)
            .map(|r| r.id)
            .ok_or_else(|| {
                conflict(format!(
                    "scenario {id} has no done run yet: start one with POST /api/scenarios/{id}/runs"
                ))
            })?,
    };
    let mut stored = run_results(state, id, &run).await?;
    let air = stored
        .get_mut("air")
        .map(Value::take)
        .unwrap_or(Value::Null);
    if air.is_null() {
        return Err(conflict(format!(
            "run {run} was made before air and noise were computed with each run: run the scenario again"
        )));
    }
    Ok((Some(run), air, stored["links"].take()))
}

/// The view's JSON document.
async fn document(
    state: &SharedState,
    id: &str,
    raw: Option<&str>,
    view: View,
) -> ApiResult<Value> {
    let params = Params::parse(raw, &PARAMS)?;
    let homes = params.bool("homes")?.unwrap_or(false);
    let (run, air, _) = results(state, id, &params).await?;
    let (street_keys, home_keys): (&[&str], &[&str]) = match view {
        View::Air => (&AIR_STREET, &AIR_HOME),
        View::Noise => (&NOISE_STREET, &NOISE_HOME),
    };
    let streets: Map<String, Value> = air["streets"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), keep(v, street_keys)))
                .collect()
        })
        .unwrap_or_default();
    let (summary, change) = match view {
        View::Air => (
            drop_keys(&air["summary"], &["noise"]),
            drop_keys(&air["change"], &NOISE_CHANGE),
        ),
        View::Noise => (
            keep(&air["summary"], &NOISE_SUMMARY),
            keep(&air["change"], &NOISE_CHANGE),
        ),
    };
    let mut body = json!({
        "scenario": id,
        "run": run,
        "summary": summary,
        "streets": streets,
    });
    if !change.is_null() {
        body["change"] = change;
    }
    if homes {
        body["homes"] = Value::Array(
            air["homes"]
                .as_array()
                .map(|h| h.iter().map(|x| keep(x, home_keys)).collect())
                .unwrap_or_default(),
        );
    }
    Ok(body)
}

async fn air(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let body = document(&state, &id, raw.as_deref(), View::Air).await?;
    Ok(json_response(StatusCode::OK, &body))
}

async fn noise(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let body = document(&state, &id, raw.as_deref(), View::Noise).await?;
    Ok(json_response(StatusCode::OK, &body))
}

/// The view's streets as GeoJSON lines (added streets with the line the scenario drew).
async fn geojson(state: &SharedState, id: &str, raw: Option<&str>, view: View) -> ApiResult<Value> {
    let params = Params::parse(raw, &["run"])?;
    let (_, air, links) = results(state, id, &params).await?;
    let keys: &[&str] = match view {
        View::Air => &AIR_STREET,
        View::Noise => &NOISE_STREET,
    };
    let values: Map<String, Value> = air["streets"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let mut v = keep(v, keys);
                    if let Some(g) = links.get(k).and_then(|l| l.get("geometry")) {
                        v["geometry"] = g.clone();
                    }
                    (k.clone(), v)
                })
                .collect()
        })
        .unwrap_or_default();
    feature_collection(state, &Value::Object(values)).await
}

async fn air_geojson(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    Ok(geojson_response(
        &geojson(&state, &id, raw.as_deref(), View::Air).await?,
    ))
}

async fn noise_geojson(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    Ok(geojson_response(
        &geojson(&state, &id, raw.as_deref(), View::Noise).await?,
    ))
}
