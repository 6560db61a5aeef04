//! `/api/access`: the 15-minute city of the store's entities over HTTP — the residents-weighted summary, every home's
//! results, neighbourhoods, isochrones and what-if scenarios, for the options in the query.
//!
//! The model runs on the blocking pool (`twin_sim::access`) over the entities the caller may read (through its
//! [`Guard`]: a private dataset's points of interest never shape another caller's answer), and reads of data that
//! is not public are logged. A few (option set, read scope) pairs are cached, each with the store's map head when it
//! was computed, and computed again when a `RoadLink`, `Building` or `PointOfInterest` changed since. Answers carry
//! their `provenance`: the model, its parameters and the input datasets.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use twin_model::entity::iri;
use twin_model::query::TypeExpr;
use twin_model::ErrorKind;
use twin_sim::access::{self, AccessOptions, AccessParams, CityAccess};
use twin_store::EntityQuery;

use crate::error::{ApiError, ApiResult};
use crate::guard::Guard;
use crate::params::Params;
use crate::provenance::{dataset_counts, inputs_json};
use crate::scenarios::{model_entities, model_unchanged_since};
use crate::SharedState;

const V: &str = iri::DEFAULT_CONTEXT;
/// Option sets kept.
const CACHED: usize = 6;
const PARAMS: [&str; 7] = [
    "mode",
    "minutes",
    "profile",
    "speedKmh",
    "crossingS",
    "k",
    "categories",
];

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/access", get(summary))
        .route("/access/homes", get(homes))
        .route("/access/isochrone", get(isochrone))
        .route("/access/areas", get(areas))
        .route("/access/scenario", axum::routing::post(scenario))
}

/// Results computed for an option set and a read scope, as of a map head.
struct Computed {
    key: String,
    head: i64,
    run: Arc<CityAccess>,
    inputs: Arc<Inputs>,
}

/// What a result was computed from: entities per dataset, and when.
pub struct Inputs {
    counts: BTreeMap<String, u64>,
    computed_at: chrono::DateTime<chrono::Utc>,
}

/// How the 15-minute city model is named in provenance.
const ACCESS_MODEL: &str = "urbantwin 15-minute city (twin-sim)";
const ACCESS_METHOD: &str = "shortest walking or cycling times (Dijkstra) on the street network from every home \
    (buildings with residential floor area) to the k nearest destinations (points of interest, buildings) of each \
    category of daily needs, with a delay at each crossing of a major road; residents-weighted shares within the \
    threshold";

/// The provenance of an answer computed with `options` from `inputs`.
fn provenance(guard: &Guard, options: &AccessOptions, inputs: &Inputs) -> Value {
    json!({
        "model": {"name": ACCESS_MODEL, "version": twin_sim::VERSION, "method": ACCESS_METHOD},
        "parameters": {
            "mode": format!("{:?}", options.movement.mode).to_lowercase(),
            "thresholdMinutes": options.threshold_min,
            "speedKmh": options.movement.speed_mps * 3.6,
            "crossingSeconds": options.movement.crossing_s,
            "majorRoadCapacityVph": options.movement.major_capacity_vph,
            "k": options.k,
            "categories": options.categories,
            "maxMinutes": options.max_min,
            "m2PerResident": options.m2_per_resident,
            "maxSnapM": options.max_snap_m,
        },
        "inputs": inputs_json(guard.datasets(), &inputs.counts),
        "requestedBy": guard.principal.subject,
        "computedAt": inputs.computed_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    })
}

/// The cache of computed results (most recently used last).
#[derive(Default)]
pub struct AccessState {
    cache: tokio::sync::Mutex<Vec<Computed>>,
}

fn bad(d: impl Into<String>) -> ApiError {
    ApiError::new(ErrorKind::BadRequestData, d)
}

fn parse(raw: Option<&str>) -> ApiResult<(AccessOptions, String)> {
    options(&Params::parse(raw, &PARAMS)?, true)
}

/// The model's options from the query (`minutes` is the threshold when `threshold` says so).
fn options(p: &Params, threshold: bool) -> ApiResult<(AccessOptions, String)> {
    let num = |k: &str| p.f64(k);
    let params = AccessParams {
        mode: p.get("mode").map(String::from),
        minutes: if threshold { num("minutes")? } else { None },
        profile: p.get("profile").map(String::from),
        speed_kmh: num("speedKmh")?,
        crossing_s: num("crossingS")?,
        k: p.usize("k")?,
        categories: p.list("categories"),
        m2_per_resident: None,
    };
    let options = params
        .options(|n| match n {
            "speed-kmh" => "speedKmh".into(),
            "crossing-s" => "crossingS".into(),
            other => other.to_string(),
        })
        .map_err(bad)?;
    let key = format!(
        "{:?}|{}|{}|{}|{}|{}",
        options.movement.mode,
        options.movement.speed_mps,
        options.movement.crossing_s,
        options.threshold_min,
        options.k,
        options.categories.join(",")
    );
    Ok((options, key))
}

/// The results for `options` over the entities the caller may read: cached while the map is unchanged, else
/// computed on the blocking pool. Each answer logs the read of the inputs that are not public.
async fn computed(
    state: &SharedState,
    guard: &Guard,
    options: AccessOptions,
    key: String,
) -> ApiResult<(Arc<CityAccess>, Arc<Inputs>)> {
    let (run, inputs) = compute(state, guard, options, key).await?;
    guard.log_counts(
        inputs.counts.iter().map(|(d, n)| (d.as_str(), *n)),
        "accessibility",
        Some("the 15-minute city model".into()),
    );
    Ok((run, inputs))
}

async fn compute(
    state: &SharedState,
    guard: &Guard,
    options: AccessOptions,
    key: String,
) -> ApiResult<(Arc<CityAccess>, Arc<Inputs>)> {
    // callers who see the same entities share results; callers who see others never do
    let key = format!("{key}|{}", guard.scope_key());
    let mut cache = state.access.cache.lock().await;
    if let Some(i) = cache.iter().position(|c| c.key == key) {
        if let Some(now) = model_unchanged_since(state, cache[i].head).await? {
            let mut c = cache.remove(i);
            c.head = now;
            let out = (c.run.clone(), c.inputs.clone());
            cache.push(c);
            return Ok(out);
        }
        cache.remove(i);
    }
    let (head, entities) = model_entities(state, Some(guard)).await?;
    let inputs = Arc::new(Inputs {
        counts: dataset_counts(&entities),
        computed_at: chrono::Utc::now(),
    });
    let run = tokio::task::spawn_blocking(move || -> Result<CityAccess, String> {
        let (net, _) = twin_graph::entities::network_from_entities(&entities).map_err(|e| e.to_string())?;
        if net.node_count() == 0 {
            return Err("no street network (RoadLink entities)".into());
        }
        let r = access::run(&net, &entities, &options);
        if r.inputs.homes.is_empty() {
            return Err("no homes (Building entities with residential floor area) on the network".into());
        }
        Ok(r)
    })
    .await
    .map_err(|e| ApiError::new(ErrorKind::InternalError, e.to_string()))?
    .map_err(|e| {
        ApiError::new(
            ErrorKind::Conflict,
            format!("the city has no 15-minute model: {e} (import a city with streets and buildings first)"),
        )
    })?;
    let run = Arc::new(run);
    if cache.len() >= CACHED {
        cache.remove(0);
    }
    cache.push(Computed {
        key,
        head,
        run: run.clone(),
        inputs: inputs.clone(),
    });
    Ok((run, inputs))
}

fn json_body(content_type: &'static str, v: &Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, content_type)],
        v.to_string(),
    )
        .into_response()
}

/// `GET /api/access`: the residents-weighted summary (as `urbantwin access --json`).
async fn summary(
    State(state): State<SharedState>,
    guard: Guard,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let (options, key) = parse(raw.as_deref())?;
    let (r, inputs) = computed(&state, &guard, options.clone(), key).await?;
    let mut out = serde_json::to_value(&r.summary)
        .map_err(|e| ApiError::new(ErrorKind::InternalError, e.to_string()))?;
    out["speedKmh"] = json!(options.movement.speed_mps * 3.6);
    out["crossingSeconds"] = json!(options.movement.crossing_s);
    out["k"] = json!(options.k);
    out["crossings"] = json!(r.graph.crossing_count());
    out["destinations"] = json!(r.inputs.destinations.len());
    out["provenance"] = provenance(&guard, &options, &inputs);
    Ok(json_body("application/json", &out))
}

/// `GET /api/access/homes`: every home as a GeoJSON point with its score and minutes per category.
async fn homes(
    State(state): State<SharedState>,
    guard: Guard,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let (options, key) = parse(raw.as_deref())?;
    let (r, _) = computed(&state, &guard, options, key).await?;
    Ok(json_body("application/geo+json", &r.homes_geojson()))
}

/// `GET /api/access/isochrone?lon=..&lat=..&minutes=5,10,15`: the areas reachable from a point, largest first, as a
/// GeoJSON FeatureCollection of MultiPolygons with `minutes`, `areaM2` and `nodes` (network nodes reached).
async fn isochrone(
    State(state): State<SharedState>,
    guard: Guard,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let mut allowed = PARAMS.to_vec();
    allowed.extend(["lon", "lat"]);
    let p = Params::parse(raw.as_deref(), &allowed)?;
    let (Some(lon), Some(lat)) = (p.f64("lon")?, p.f64("lat")?) else {
        return Err(bad(
            "lon and lat are needed: the point the isochrones start from",
        ));
    };
    if !(lon.is_finite() && lat.is_finite() && lon.abs() <= 180.0 && lat.abs() <= 90.0) {
        return Err(bad(format!("({lon}, {lat}) is not a WGS84 position")));
    }
    let minutes: Vec<f64> = match p.list("minutes") {
        None => vec![5.0, 10.0, 15.0],
        Some(l) => l
            .iter()
            .map(|v| {
                v.parse::<f64>().map_err(|_| {
                    bad(format!(
                        "minutes must be numbers, comma-separated, not {v:?}"
                    ))
                })
            })
            .collect::<ApiResult<_>>()?,
    };
    if minutes.is_empty() || minutes.len() > 6 {
        return Err(bad(
            "minutes: from one to six times, comma-separated (e.g. 5,10,15)",
        ));
    }
    let (opts, key) = options(&p, false)?;
    let (r, _) = computed(&state, &guard, opts, key).await?;
    let isos = tokio::task::spawn_blocking(move || r.isochrones(lon, lat, &minutes))
        .await
        .map_err(|e| ApiError::new(ErrorKind::InternalError, e.to_string()))?
        .map_err(|e| bad(e.to_string()))?;
    let features: Vec<Value> = isos
        .iter()
        .map(|i| {
            json!({
                "type": "Feature",
                "geometry": i.geometry_geojson(),
                "properties": {"minutes": i.minutes, "areaM2": i.area_m2.round(), "nodes": i.nodes},
            })
        })
        .collect();
    Ok(json_body(
        "application/geo+json",
        &json!({"type": "FeatureCollection", "features": features}),
    ))
}

/// `GET /api/access/areas?by=grid&cellM=250` or `?by=LandUse` (any entity type with polygons): the homes' figures per
/// neighbourhood, weighted by residents, as a GeoJSON FeatureCollection (zones without residents left out).
async fn areas(
    State(state): State<SharedState>,
    guard: Guard,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let mut allowed = PARAMS.to_vec();
    allowed.extend(["by", "cellM"]);
    let p = Params::parse(raw.as_deref(), &allowed)?;
    let by = p.get("by").unwrap_or("grid").to_string();
    let cell_m = p.f64("cellM")?.unwrap_or(250.0);
    if by == "grid" && !(cell_m.is_finite() && (20.0..=5000.0).contains(&cell_m)) {
        return Err(bad(format!(
            "cellM must be from 20 to 5000 metres, not {cell_m}"
        )));
    }
    if by != "grid" && p.has("cellM") {
        return Err(bad("cellM goes with by=grid"));
    }
    let (opts, key) = options(&p, true)?;
    let (r, _) = computed(&state, &guard, opts, key).await?;
    let zones = if by == "grid" {
        access::areas::grid(&r, r.snap.projection(), cell_m)
    } else {
        let ty = twin_model::context::Context::core().expand(&by);
        let mut q = EntityQuery {
            types: Some(TypeExpr::Type(ty)),
            limit: usize::MAX,
            ..Default::default()
        };
        guard.restrict(&mut q);
        let mut entities = state.store.query(&q).await?.entities;
        guard.release(&mut entities, "accessibility.areas");
        let zones: Vec<access::areas::Zone> = entities
            .iter()
            .filter_map(|e| {
                let g = e
                    .geometries(iri::LOCATION)
                    .next()
                    .and_then(|v| twin_model::geoquery::geometry_from_geojson(v).ok())?;
                let area = match g {
                    geo::Geometry::Polygon(p) => geo::MultiPolygon::new(vec![p]),
                    geo::Geometry::MultiPolygon(m) => m,
                    _ => return None,
                };
                let name = e
                    .attrs
                    .get(&format!("{V}name"))
                    .and_then(|a| a.first())
                    .and_then(|a| a.value.as_str())
                    .map(String::from);
                Some(access::areas::Zone {
                    id: e.id.clone(),
                    name,
                    area,
                })
            })
            .collect();
        if zones.is_empty() {
            return Err(bad(format!(
                "by={by}: the store holds no {by} entities with a polygon location (use by=grid, or a type such as LandUse)"
            )));
        }
        zones
    };
    let fc = tokio::task::spawn_blocking(move || {
        let summaries = access::areas::summarise(&r, zones);
        access::areas::geojson(&r, &summaries)
    })
    .await
    .map_err(|e| ApiError::new(ErrorKind::InternalError, e.to_string()))?;
    Ok(json_body("application/geo+json", &fc))
}

/// `POST /api/access/scenario` with `{"edits": [...]}` (and the model's options in the query): the edits applied to
/// the baseline's results, the summaries before and after, their difference and the homes whose score changed.
async fn scenario(
    State(state): State<SharedState>,
    guard: Guard,
    RawQuery(raw): RawQuery,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let (opts, key) = parse(raw.as_deref())?;
    let v: Value =
        serde_json::from_slice(&body).map_err(|e| bad(format!("the body is not JSON: {e}")))?;
    let edits: Vec<access::AccessEdit> = match v.get("edits") {
        Some(e) => serde_json::from_value(e.clone()).map_err(|e| bad(format!("edits: {e}")))?,
        None => return Err(bad("the body needs \"edits\": [...]")),
    };
    if edits.is_empty() || edits.len() > 100 {
        return Err(bad("edits: from 1 to 100 changes"));
    }
    let (base, inputs) = computed(&state, &guard, opts.clone(), key).await?;
    let (_, entities) = model_entities(&state, Some(&guard)).await?;
    let provenance = provenance(&guard, &opts, &inputs);
    let out = tokio::task::spawn_blocking(move || -> Result<Value, String> {
        let s = access::scenario::apply(&base, &entities, &edits)?;
        let changes = access::scenario::changes(&base, &s);
        let (b, a) = (&base.summary, &s.summary);
        let categories: Vec<Value> = a
            .categories
            .iter()
            .map(|c| {
                let was = b.categories.iter().find(|x| x.category == c.category).map_or(0.0, |x| x.share_within);
                json!({"category": c.category, "shareWithin": c.share_within, "change": c.share_within - was})
            })
            .collect();
        Ok(json!({
            "edits": edits,
            "baseline": b,
            "scenario": a,
            "delta": {
                "meanScore": a.mean_score - b.mean_score,
                "shareAllWithin": a.share_all_within - b.share_all_within,
                "categories": categories,
            },
            "homes": changes,
            "provenance": provenance,
        }))
    })
    .await
    .map_err(|e| ApiError::new(ErrorKind::InternalError, e.to_string()))?
    .map_err(bad)?;
    Ok(json_body("application/json", &out))
}
