//! `/api/scenarios/{id}/air` and `/api/scenarios/{id}/noise`: the air quality and road-traffic noise of the baseline
//! or of a scenario's run, per street (keyed by `RoadLink` id) with the change against the baseline, and residents
//! exposed; `.geojson` variants give the streets as lines, `/air/grid` the NOx and NO2 field on a receptor grid for
//! one weather situation.
//!
//! The values are computed with the traffic (`twin_sim::air::city`): the baseline's when it is built, a run's when it
//! is solved, and stored with the run. A scenario's are its latest done run's, or those of the run named by `?run=`.
//! They derive from the model's input datasets: a caller reads them only with read access to each (as the run's
//! results), and street geometry comes from the `RoadLink`s the caller may read.

use std::collections::HashMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Map, Value};
use twin_sim::air::dispersion::{Met, Stability, Terrain};
use twin_store::RunStatus;

use crate::error::ApiResult;
use crate::guard::Guard;
use crate::params::Params;
use crate::scenarios::{
    baseline, conflict, feature_collection, geojson_response, internal, json_response,
    readable_baseline, run_results, stored_scenario, BASELINE_ID,
};
use crate::SharedState;

const PARAMS: [&str; 2] = ["run", "homes"];

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/scenarios/{id}/air", get(air))
        .route("/scenarios/{id}/air.geojson", get(air_geojson))
        .route("/scenarios/{id}/noise", get(noise))
        .route("/scenarios/{id}/noise.geojson", get(noise_geojson))
        .route("/scenarios/{id}/air/grid", get(grid))
}

/// Which half of the results a view shows.
#[derive(Clone, Copy, PartialEq)]
enum View {
    Air,
    Noise,
}

/// Street values each view keeps (the rest belongs to the other).
const AIR_STREET: [&str; 17] = [
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
    "no2Profile",
    "pm10Profile",
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

/// `v`'s members whose names are (`wanted`) or are not (`!wanted`) among `keys`; anything else as it is.
fn members(v: &Value, keys: &[&str], wanted: bool) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .filter(|(k, _)| keys.contains(&k.as_str()) == wanted)
                .map(|(k, x)| (k.clone(), x.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn keep(v: &Value, keys: &[&str]) -> Value {
    members(v, keys, true)
}

fn drop_keys(v: &Value, keys: &[&str]) -> Value {
    members(v, keys, false)
}

/// The stored results (`AirResult` as JSON) of the baseline or of a scenario's run, with the run's id and its
/// per-street traffic values (for the lines of added streets).
async fn results(
    state: &SharedState,
    guard: &Guard,
    id: &str,
    params: &Params,
) -> ApiResult<(Option<String>, Value, Value)> {
    if id == BASELINE_ID {
        if params.has("run") {
            return Err(crate::error::ApiError::bad_data(
                "the baseline has no runs: leave out `run`",
            ));
        }
        let b = readable_baseline(state, guard).await?;
        let air = serde_json::to_value(&b.air_result).map_err(internal)?;
        return Ok((None, air, b.links["links"].clone()));
    }
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
    let mut stored = run_results(state, guard, id, &run).await?;
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
    guard: &Guard,
    id: &str,
    raw: Option<&str>,
    view: View,
) -> ApiResult<Value> {
    let params = Params::parse(raw, &PARAMS)?;
    let homes = params.bool("homes")?.unwrap_or(false);
    let (run, air, _) = results(state, guard, id, &params).await?;
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
    guard: Guard,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let body = document(&state, &guard, &id, raw.as_deref(), View::Air).await?;
    Ok(json_response(StatusCode::OK, &body))
}

async fn noise(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    guard: Guard,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let body = document(&state, &guard, &id, raw.as_deref(), View::Noise).await?;
    Ok(json_response(StatusCode::OK, &body))
}

/// The view's streets as GeoJSON lines (added streets with the line the scenario drew).
async fn geojson(
    state: &SharedState,
    guard: &Guard,
    id: &str,
    raw: Option<&str>,
    view: View,
) -> ApiResult<Value> {
    let params = Params::parse(raw, &["run"])?;
    let (_, air, links) = results(state, guard, id, &params).await?;
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
    feature_collection(state, guard, &Value::Object(values)).await
}

async fn air_geojson(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    guard: Guard,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    Ok(geojson_response(
        &geojson(&state, &guard, &id, raw.as_deref(), View::Air).await?,
    ))
}

async fn noise_geojson(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    guard: Guard,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    Ok(geojson_response(
        &geojson(&state, &guard, &id, raw.as_deref(), View::Noise).await?,
    ))
}

/// Query parameters of the grid.
const GRID_PARAMS: [&str; 7] = [
    "run",
    "cellM",
    "windFromDeg",
    "windMs",
    "stability",
    "terrain",
    "format",
];

/// `GET /api/scenarios/{id}/air/grid`: the NOx and NO2 field on a receptor grid for one weather situation (see
/// [`twin_sim::air::city::AirCity::field`]), from the streets' emissions of the baseline or of the run.
async fn grid(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    guard: Guard,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let p = Params::parse(raw.as_deref(), &GRID_PARAMS)?;
    let bad = |d: String| crate::error::ApiError::bad_data(d);
    let cell_m = p.f64("cellM")?.unwrap_or(20.0);
    if !(5.0..=1000.0).contains(&cell_m) {
        return Err(bad(format!(
            "cellM must be between 5 and 1000 m, not {cell_m}"
        )));
    }
    let wind_from_deg = p.f64("windFromDeg")?.unwrap_or(225.0);
    if !wind_from_deg.is_finite() {
        return Err(bad("windFromDeg must be a finite number of degrees".into()));
    }
    let wind_speed_ms = p.f64("windMs")?.unwrap_or(3.0);
    if !(wind_speed_ms.is_finite() && wind_speed_ms > 0.0 && wind_speed_ms <= 50.0) {
        return Err(bad(format!(
            "windMs must be above 0 and at most 50 m/s, not {wind_speed_ms}"
        )));
    }
    let stability = match p.get("stability").unwrap_or("D") {
        "A" => Stability::A,
        "B" => Stability::B,
        "C" => Stability::C,
        "D" => Stability::D,
        "E" => Stability::E,
        "F" => Stability::F,
        other => {
            return Err(bad(format!(
                "stability must be a Pasquill–Gifford class A to F, not {other:?}"
            )))
        }
    };
    let terrain = match p.get("terrain").unwrap_or("urban") {
        "urban" => Terrain::Urban,
        "rural" => Terrain::Rural,
        other => {
            return Err(bad(format!(
                "terrain must be urban or rural, not {other:?}"
            )))
        }
    };
    match p.get("format") {
        None | Some("json") => {}
        Some(other) => return Err(bad(format!("format must be json, not {other:?}"))),
    }
    let met = Met {
        wind_speed_ms,
        wind_from_deg,
        stability,
        terrain,
    };
    let (run, air, links) = results(&state, &guard, &id, &p).await?;
    // per street, its NOx and direct NO2 line sources (µg/(m·s)) from the stored g/(km·day)
    let mut emissions = HashMap::new();
    let mut added = HashMap::new();
    for (k, v) in air["streets"].as_object().into_iter().flatten() {
        let e = &v["emissionGPerKmDay"];
        let (Some(nox), Some(no2)) = (e["nox"].as_f64(), e["no2"].as_f64()) else {
            continue;
        };
        emissions.insert(k.clone(), [nox / 86.4, no2 / 86.4]);
        if let Some(line) = links
            .get(k)
            .and_then(|l| l["geometry"]["coordinates"].as_array())
        {
            let pts: Vec<[f64; 2]> = line
                .iter()
                .filter_map(|c| Some([c[0].as_f64()?, c[1].as_f64()?]))
                .collect();
            added.insert(k.clone(), pts);
        }
    }
    let base = baseline(&state).await?;
    let field =
        tokio::task::spawn_blocking(move || base.air.field_of(&emissions, &added, &met, cell_m))
            .await
            .map_err(internal)?
            .map_err(|e| bad(e.to_string()))?;
    let mut body = serde_json::to_value(&field).map_err(internal)?;
    body["scenario"] = json!(id);
    body["run"] = json!(run);
    body["met"] = json!({
        "windFromDeg": wind_from_deg,
        "windMs": wind_speed_ms,
        "stability": p.get("stability").unwrap_or("D"),
        "terrain": p.get("terrain").unwrap_or("urban"),
    });
    Ok(json_response(StatusCode::OK, &body))
}
