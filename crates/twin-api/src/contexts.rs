//! `/jsonldContexts`: register (with an account), list, serve and delete (administrators) user @contexts (ETSI GS
//! CIM 009 clause 5.13); the core context is always listed and served from the built-in copy.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::Utc;
use serde_json::{json, Value};
use twin_model::context::{core_context_document, Context, CORE_CONTEXT_URL};
use twin_store::StoredContext;

use crate::error::{ApiError, ApiResult};
use crate::guard::Guard;
use crate::ld;
use crate::params::Params;
use crate::{parse_body, SharedState};

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/jsonldContexts", get(list).post(create))
        .route("/jsonldContexts/{id}", get(serve).delete(delete))
}

const CORE_ID: &str = "ngsi-ld-core-context";

fn info(c: &StoredContext) -> Value {
    json!({
        "URL": c.url,
        "localId": c.id,
        "kind": c.kind,
        "createdAt": twin_model::ngsi::format_datetime(&c.created_at),
    })
}

fn json_ok(v: Value, ct: &'static str) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, ct)], v.to_string()).into_response()
}

async fn list(State(state): State<SharedState>, RawQuery(raw): RawQuery) -> ApiResult<Response> {
    let p = Params::parse(raw.as_deref(), &["details", "kind"])?;
    let kind = p.get("kind");
    if let Some(k) = kind {
        if !matches!(k, "Hosted" | "Cached" | "ImplicitlyCreated") {
            return Err(ApiError::bad_data(format!(
                "kind must be Hosted, Cached or ImplicitlyCreated, not {k:?}"
            )));
        }
    }
    let all = state.store.list_contexts().await?;
    let chosen: Vec<&StoredContext> = all
        .iter()
        .filter(|c| kind.is_none_or(|k| c.kind == k))
        .collect();
    let details = p.bool("details")?.unwrap_or(false);
    let mut out: Vec<Value> = Vec::new();
    if kind.is_none_or(|k| k == "Cached") {
        out.push(if details {
            json!({"URL": CORE_CONTEXT_URL, "localId": CORE_ID, "kind": "Cached"})
        } else {
            json!(CORE_CONTEXT_URL)
        });
    }
    for c in chosen {
        out.push(if details { info(c) } else { json!(c.url) });
    }
    Ok(json_ok(Value::Array(out), "application/json"))
}

async fn create(
    State(state): State<SharedState>,
    g: Guard,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> ApiResult<Response> {
    Params::parse(raw.as_deref(), &[])?;
    crate::auth::require_signed_in(&g.principal)?;
    ld::body_type(&headers, false)?;
    let v = parse_body(&body)?;
    let ctx = v.get("@context").ok_or_else(|| {
        ApiError::bad_data("a context to register must be a JSON object with an @context member")
    })?;
    if !(ctx.is_object() || ctx.is_array() || ctx.is_string()) {
        return Err(ApiError::bad_data(
            "@context must be an object, an array or a URL",
        ));
    }
    // it must be a valid context (resolving what it names)
    ld::context_for(&state, ctx).await?;
    let _ = Context::core();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let url = format!(
        "{}/ngsi-ld/v1/jsonldContexts/{id}",
        state.config.public_url.trim_end_matches('/')
    );
    state
        .store
        .put_context(StoredContext {
            id: id.clone(),
            url: url.clone(),
            kind: "Hosted".into(),
            document: json!({"@context": ctx}),
            created_at: Utc::now(),
            last_usage: None,
            number_of_hits: 0,
        })
        .await?;
    state.contexts.clear();
    Ok(crate::created(&url))
}

async fn serve(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let p = Params::parse(raw.as_deref(), &["details"])?;
    let details = p.bool("details")?.unwrap_or(false);
    if id == CORE_ID {
        return Ok(if details {
            json_ok(
                json!({"URL": CORE_CONTEXT_URL, "localId": CORE_ID, "kind": "Cached"}),
                "application/json",
            )
        } else {
            json_ok(core_context_document().clone(), "application/ld+json")
        });
    }
    let c = state
        .store
        .get_context(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no @context with id {id}")))?;
    Ok(if details {
        json_ok(info(&c), "application/json")
    } else {
        json_ok(c.document, "application/ld+json")
    })
}

async fn delete(
    State(state): State<SharedState>,
    g: Guard,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<StatusCode> {
    let p = Params::parse(raw.as_deref(), &["reload"])?;
    // contexts are shared by every client (and not recorded with who registered them): deleting one, or fetching
    // a cached one anew, is an administrator's
    g.require_admin()?;
    if id == CORE_ID {
        return Err(ApiError::bad_data("the core @context cannot be deleted"));
    }
    if p.bool("reload")?.unwrap_or(false) {
        let c = state
            .store
            .get_context(&id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no @context with id {id}")))?;
        if c.kind != "Cached" {
            return Err(ApiError::bad_data("reload applies to cached contexts only"));
        }
        state.store.delete_context(&id).await?;
        state.contexts.clear();
        ld::fetch_context(&state, &c.url).await?;
        return Ok(StatusCode::NO_CONTENT);
    }
    if !state.store.delete_context(&id).await? {
        return Err(ApiError::not_found(format!("no @context with id {id}")));
    }
    state.contexts.clear();
    Ok(StatusCode::NO_CONTENT)
}
