//! `/api/retention`: the retention and downsampling policies of temporal data (list, read, create or replace,
//! delete) and the last run's report; and the background task that applies them on the notifier node.
//!
//! A policy names its entity type and attribute as NGSI-LD terms, expanded with the request's `@context` (a `Link`
//! header, else the core context) and shown compacted the same way.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::Utc;
use serde_json::{json, Value};
use twin_store::RetentionPolicy;

use crate::error::{ApiError, ApiResult};
use crate::guard::Guard;
use crate::ld::{self, RequestContext};
use crate::params::Params;
use crate::scenarios::json_response;
use crate::{parse_body, SharedState};

/// Raw instances (or buckets) per transaction of a run.
pub const CHUNK: usize = twin_store::retention::CHUNK;

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/retention", get(list))
        .route("/retention/status", get(status))
        .route("/retention/{id}", get(retrieve).put(replace).delete(remove))
}

async fn context(state: &SharedState, headers: &HeaderMap) -> ApiResult<RequestContext> {
    ld::request_context(state, headers, None, None).await
}

/// A policy as clients see it: entity type and attribute compacted.
fn render(p: &RetentionPolicy, rc: &RequestContext) -> Value {
    let mut p = p.clone();
    p.entity_type = p.entity_type.map(|t| rc.ctx.compact(&t));
    p.attribute = p.attribute.map(|a| rc.ctx.compact(&a));
    serde_json::to_value(&p).unwrap_or(Value::Null)
}

async fn list(
    State(state): State<SharedState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    Params::parse(raw.as_deref(), &[])?;
    let rc = context(&state, &headers).await?;
    let all: Vec<Value> = state
        .store
        .list_retention_policies()
        .await?
        .iter()
        .map(|p| render(p, &rc))
        .collect();
    Ok(json_response(StatusCode::OK, &Value::Array(all)))
}

async fn retrieve(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let rc = context(&state, &headers).await?;
    let p = state
        .store
        .get_retention_policy(&id)
        .await?
        .ok_or_else(|| no_policy(&id))?;
    Ok(json_response(StatusCode::OK, &render(&p, &rc)))
}

fn no_policy(id: &str) -> ApiError {
    ApiError::not_found(format!("retention policy {id} does not exist"))
}

/// Creates (201) or replaces (204) the policy `id`; the body may leave out the id.
async fn replace(
    State(state): State<SharedState>,
    g: Guard,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    // retention deletes history: an administrator's decision
    g.require_admin()?;
    ld::body_type(&headers, false)?;
    let mut v = parse_body(&body)?;
    let Some(obj) = v.as_object_mut() else {
        return Err(ApiError::bad_data(
            "a retention policy is a JSON object, e.g. {\"entityType\": \"AirQualityObserved\", \"keepRaw\": \"P30D\", \"levels\": [{\"period\": \"PT1H\", \"keep\": \"P5Y\"}, {\"period\": \"P1D\"}]}",
        ));
    };
    match obj.get("id") {
        None => {
            obj.insert("id".into(), Value::String(id.clone()));
        }
        Some(Value::String(s)) if *s == id => {}
        Some(other) => {
            return Err(ApiError::bad_data(format!(
                "the body's id {other} differs from the id in the URL {id}"
            )))
        }
    }
    let mut p: RetentionPolicy = serde_json::from_value(v)
        .map_err(|e| ApiError::bad_data(format!("invalid retention policy: {e}")))?;
    let rc = context(&state, &headers).await?;
    p.entity_type = p.entity_type.map(|t| rc.ctx.expand(&t));
    p.attribute = p.attribute.map(|a| rc.ctx.expand(&a));
    p.plan()?;
    let created = state.store.put_retention_policy(p).await?;
    if created {
        let mut resp = StatusCode::CREATED.into_response();
        let loc = format!("/api/retention/{}", crate::path_segment(&id));
        if let Ok(h) = HeaderValue::from_str(&loc) {
            resp.headers_mut().insert(axum::http::header::LOCATION, h);
        }
        Ok(resp)
    } else {
        Ok(StatusCode::NO_CONTENT.into_response())
    }
}

async fn remove(
    State(state): State<SharedState>,
    g: Guard,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    g.require_admin()?;
    if state.store.delete_retention_policy(&id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(no_policy(&id))
    }
}

/// The last run (`{"lastRun": null}` before the first), and how often this node runs the policies.
async fn status(State(state): State<SharedState>, RawQuery(raw): RawQuery) -> ApiResult<Response> {
    Params::parse(raw.as_deref(), &[])?;
    let last = state.store.retention_status().await?;
    let body = json!({
        "lastRun": last,
        "intervalSeconds": state.config.retention_interval.map(|d| d.as_secs_f64()),
        "notifierNode": state.store.is_notifier().await?,
    });
    Ok(json_response(StatusCode::OK, &body))
}

/// Applies the policies every `every`, on the node holding the notifier lock only (always with SQLite), so that
/// one node of several on a PostgreSQL database does the work. Errors are logged and the next round tries again.
pub async fn run(state: SharedState, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        match state.store.is_notifier().await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                tracing::warn!(detail = %e.detail, "retention: cannot tell whether this node runs it");
                continue;
            }
        }
        match state.store.apply_retention(Utc::now(), CHUNK).await {
            Ok(r) => {
                for p in r
                    .policies
                    .iter()
                    .filter(|p| p.raw_deleted > 0 || p.error.is_some())
                {
                    tracing::info!(
                        policy = %p.policy,
                        raw_deleted = p.raw_deleted,
                        raw_aggregated = p.raw_aggregated,
                        buckets_rolled_up = p.buckets_rolled_up,
                        buckets_expired = p.buckets_expired,
                        error = p.error.as_deref().unwrap_or(""),
                        "retention applied"
                    );
                }
            }
            Err(e) => tracing::error!(detail = %e.detail, "retention run failed"),
        }
    }
}
