//! `/api/datasets`: the datasets entities belong to, each with an owner, a licence and read/write policies. Writes
//! name their dataset with the `X-Urbantwin-Dataset` header.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::Utc;
use twin_model::Dataset;

use crate::error::{ApiError, ApiResult};
use crate::params::Params;
use crate::{ld, parse_body, SharedState};

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/datasets", get(list).post(create))
        .route("/datasets/{id}", get(retrieve).put(replace))
}

fn json(status: StatusCode, v: impl serde::Serialize) -> ApiResult<Response> {
    let body = serde_json::to_string(&v)
        .map_err(|e| ApiError::new(twin_model::ErrorKind::InternalError, e.to_string()))?;
    Ok((status, [(header::CONTENT_TYPE, "application/json")], body).into_response())
}

fn parse(body: &Bytes, headers: &HeaderMap) -> ApiResult<Dataset> {
    ld::body_type(headers, false)?;
    let v = parse_body(body)?;
    let d: Dataset = serde_json::from_value(v)
        .map_err(|e| ApiError::bad_data(format!("invalid dataset: {e}")))?;
    d.validate()?;
    Ok(d)
}

async fn list(State(state): State<SharedState>, RawQuery(raw): RawQuery) -> ApiResult<Response> {
    Params::parse(raw.as_deref(), &[])?;
    json(StatusCode::OK, state.store.list_datasets().await?)
}

async fn create(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let mut d = parse(&body, &headers)?;
    if state.store.get_dataset(&d.id).await?.is_some() {
        return Err(ApiError::new(
            twin_model::ErrorKind::AlreadyExists,
            format!("dataset {} already exists", d.id),
        ));
    }
    d.created_at = Some(Utc::now());
    state.store.put_dataset(d.clone()).await?;
    let mut resp = json(StatusCode::CREATED, &d)?;
    let loc = format!("/api/datasets/{}", crate::path_segment(&d.id));
    if let Ok(h) = HeaderValue::from_str(&loc) {
        resp.headers_mut().insert(header::LOCATION, h);
    }
    Ok(resp)
}

async fn retrieve(State(state): State<SharedState>, Path(id): Path<String>) -> ApiResult<Response> {
    let d = state
        .store
        .get_dataset(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("dataset {id} does not exist")))?;
    json(StatusCode::OK, d)
}

async fn replace(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let mut d = parse(&body, &headers)?;
    if d.id != id {
        return Err(ApiError::bad_data(format!(
            "the body's id {} differs from the id in the URL {id}",
            d.id
        )));
    }
    let old = state
        .store
        .get_dataset(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("dataset {id} does not exist")))?;
    d.created_at = old.created_at;
    state.store.put_dataset(d).await?;
    Ok(StatusCode::NO_CONTENT)
}
