//! `/api/ingest`: what the MQTT ingestion of this node is doing (broker connection, per-topic counters) and the
//! dead-letter table of refused messages, which data officers read and clear.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::Router;
use serde_json::{json, Value};
use twin_store::DeadLetter;

use crate::error::{ApiError, ApiResult};
use crate::guard::Guard;
use crate::params::Params;
use crate::scenarios::json_response;
use crate::SharedState;

/// Dead letters per page when `limit` is not given.
const DEFAULT_PAGE: usize = 100;

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/ingest", get(status))
        .route("/ingest/dead-letters", get(dead_letters).delete(delete_all))
        .route("/ingest/dead-letters/{id}", delete(delete_one))
}

/// The counters since this node started (`{"enabled": false}` when it does not ingest).
async fn status(State(state): State<SharedState>, RawQuery(raw): RawQuery) -> ApiResult<Response> {
    Params::parse(raw.as_deref(), &[])?;
    let body = match state.ingest.get() {
        None => json!({"enabled": false}),
        Some(stats) => {
            let mut v = serde_json::to_value(stats.snapshot()).unwrap_or(Value::Null);
            if let Value::Object(m) = &mut v {
                m.insert("enabled".into(), Value::Bool(true));
            }
            v
        }
    };
    Ok(json_response(StatusCode::OK, &body))
}

/// A dead letter for people: the payload as text when it is UTF-8, else in hexadecimal.
fn render(l: &DeadLetter) -> Value {
    let mut v = json!({
        "id": l.id,
        "receivedAt": l.received_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "source": l.source,
        "topic": l.topic,
        "reason": l.reason,
    });
    match std::str::from_utf8(&l.payload) {
        Ok(text) => v["payload"] = Value::String(text.to_string()),
        Err(_) => {
            v["payloadHex"] = Value::String(l.payload.iter().map(|b| format!("{b:02x}")).collect())
        }
    }
    v
}

/// `?topic=&before=&limit=`: newest first; `next` pages on.
async fn dead_letters(
    State(state): State<SharedState>,
    g: Guard,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    // refused messages hold raw sensor data of any dataset: administrators only
    g.require_admin()?;
    let p = Params::parse(raw.as_deref(), &["topic", "before", "limit"])?;
    let limit = p.usize("limit")?.unwrap_or(DEFAULT_PAGE);
    if limit == 0 || limit > state.config.max_limit {
        return Err(ApiError::bad_data(format!(
            "limit must be between 1 and {}",
            state.config.max_limit
        )));
    }
    let before = match p.get("before") {
        None => None,
        Some(b) => Some(b.parse::<i64>().map_err(|_| {
            ApiError::bad_data(format!("before must be a dead letter id, not {b:?}"))
        })?),
    };
    let topic = p.get("topic");
    let (total, letters) = state.store.dead_letters(topic, before, limit).await?;
    let next = match letters.last() {
        Some(last) if letters.len() == limit && total > 0 => {
            let mut q = vec![format!("before={}", last.id), format!("limit={limit}")];
            if let Some(t) = topic {
                q.push(format!("topic={}", crate::path_segment(t)));
            }
            Value::String(format!("/api/ingest/dead-letters?{}", q.join("&")))
        }
        _ => Value::Null,
    };
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "total": total,
            "deadLetters": letters.iter().map(render).collect::<Vec<_>>(),
            "next": next,
        }),
    ))
}

async fn delete_all(
    State(state): State<SharedState>,
    g: Guard,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    // refused messages hold raw sensor data of any dataset: administrators only
    g.require_admin()?;
    Params::parse(raw.as_deref(), &[])?;
    let n = state.store.delete_dead_letters(None).await?;
    Ok(json_response(StatusCode::OK, &json!({"deleted": n})))
}

async fn delete_one(
    State(state): State<SharedState>,
    g: Guard,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    // refused messages hold raw sensor data of any dataset: administrators only
    g.require_admin()?;
    let id = id
        .parse::<i64>()
        .map_err(|_| ApiError::bad_data(format!("{id:?} is not a dead letter id")))?;
    match state.store.delete_dead_letters(Some(vec![id])).await? {
        0 => Err(ApiError::not_found(format!("there is no dead letter {id}"))),
        _ => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}
