//! `/api/datasets`: the datasets entities belong to, each with an owner, a licence and read/write policies. Writes
//! name their dataset with the `X-Urbantwin-Dataset` header.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::Utc;
use twin_model::policy::{self, Role};
use twin_model::Dataset;

use crate::guard::Guard;

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

/// Whether the caller may know of the dataset: it reads its data or manages it.
fn known(g: &Guard, d: &Dataset) -> bool {
    g.scope().sees(Some(&d.id)) || policy::manages(&g.principal, d)
}

async fn list(
    State(state): State<SharedState>,
    g: Guard,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    Params::parse(raw.as_deref(), &[])?;
    let all: Vec<Dataset> = state
        .store
        .list_datasets()
        .await?
        .into_iter()
        .filter(|d| known(&g, d))
        .collect();
    json(StatusCode::OK, all)
}

/// The policy fields of a dataset, for the audit log.
fn policy_json(d: &Dataset) -> serde_json::Value {
    serde_json::json!({
        "owner": d.owner, "licence": d.licence, "read": d.read, "write": d.write,
        "attributes": d.attributes, "usagePolicy": d.usage_policy,
    })
}

async fn create(
    State(state): State<SharedState>,
    g: Guard,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let mut d = parse(&body, &headers)?;
    if !(g.principal.is_admin() || g.principal.has_role(Role::DataOwner)) {
        return Err(g.denied("creating a dataset needs the data_owner or admin role"));
    }
    if !policy::manages(&g.principal, &d) {
        return Err(g.denied(format!(
            "a data owner creates datasets owned by their account or organisation, not by {}",
            d.owner
        )));
    }
    if state.store.get_dataset(&d.id).await?.is_some() {
        return Err(ApiError::new(
            twin_model::ErrorKind::AlreadyExists,
            format!("dataset {} already exists", d.id),
        ));
    }
    d.created_at = Some(Utc::now());
    state.store.put_dataset(d.clone()).await?;
    state
        .store
        .append_audit(
            &g.principal.label(),
            "dataset.create",
            &d.id,
            policy_json(&d),
        )
        .await?;
    let mut resp = json(StatusCode::CREATED, &d)?;
    let loc = format!("/api/datasets/{}", crate::path_segment(&d.id));
    if let Ok(h) = HeaderValue::from_str(&loc) {
        resp.headers_mut().insert(header::LOCATION, h);
    }
    Ok(resp)
}

async fn retrieve(
    State(state): State<SharedState>,
    g: Guard,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let d = state
        .store
        .get_dataset(&id)
        .await?
        .filter(|d| known(&g, d))
        .ok_or_else(|| ApiError::not_found(format!("dataset {id} does not exist")))?;
    json(StatusCode::OK, d)
}

async fn replace(
    State(state): State<SharedState>,
    g: Guard,
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
    let old = match state.store.get_dataset(&id).await? {
        Some(d) => d,
        // the default dataset has a built-in record until an administrator sets its policy
        None if id == twin_model::dataset::DEFAULT_DATASET => Dataset::default_dataset(),
        None => return Err(ApiError::not_found(format!("dataset {id} does not exist"))),
    };
    if !known(&g, &old) {
        return Err(ApiError::not_found(format!("dataset {id} does not exist")));
    }
    g.require_manager(&old)?;
    if d.owner != old.owner && !g.principal.is_admin() {
        return Err(g.denied("only an administrator gives a dataset to another owner"));
    }
    d.created_at = old.created_at;
    state.store.put_dataset(d.clone()).await?;
    // model results derived from this dataset are published no more openly than it now is
    crate::scenarios::follow_policies(&state).await?;
    if policy_json(&old) != policy_json(&d) {
        state
            .store
            .append_audit(
                &g.principal.label(),
                "dataset.policy",
                &id,
                serde_json::json!({"before": policy_json(&old), "after": policy_json(&d)}),
            )
            .await?;
    }
    Ok(StatusCode::NO_CONTENT)
}
