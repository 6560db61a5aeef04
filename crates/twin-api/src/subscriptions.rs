//! `/subscriptions`: create, query, retrieve, update and delete NGSI-LD subscriptions (ETSI GS CIM 009 clause 5.8).
//! The subscription model lives in `twin_model::subscription`; `notify` turns changes into notifications.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use chrono::Utc;
use serde_json::Value;
use twin_model::subscription::{DeliveryInfo, Subscription};
use twin_model::ErrorKind;
use twin_store::{DeliveryStatus, StoredSubscription};

use crate::auth::{may_manage_subscription, owner_of};
use crate::entities::read_body;
use crate::error::{ApiError, ApiResult};
use crate::guard::Guard;
use crate::ld;
use crate::params::Params;
use crate::{json_response, SharedState};

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route(
            "/subscriptions",
            get(query_subscriptions).post(create_subscription),
        )
        .route(
            "/subscriptions/{id}",
            get(retrieve_subscription)
                .patch(update_subscription)
                .delete(delete_subscription),
        )
}

/// The store's delivery statistics in the model's terms.
pub fn delivery_info(s: &DeliveryStatus) -> DeliveryInfo {
    DeliveryInfo {
        times_sent: s.times_sent,
        times_failed: s.times_failed,
        last_notification: s.last_notification,
        last_success: s.last_success,
        last_failure: s.last_failure,
        last_error: s.last_error.clone(),
    }
}

fn subscription_url(id: &str) -> String {
    format!("/ngsi-ld/v1/subscriptions/{}", crate::path_segment(id))
}

fn check_id(id: &str) -> ApiResult<()> {
    if twin_model::ngsi::is_uri(id) {
        Ok(())
    } else {
        Err(ApiError::bad_data(format!(
            "{id:?} is not a valid subscription id (a URI such as urn:ngsi-ld:Subscription:1)"
        )))
    }
}

fn sys_attrs(p: &Params) -> ApiResult<bool> {
    let opts = p.options();
    if let Some(o) = opts.iter().find(|o| o.as_str() != "sysAttrs") {
        return Err(ApiError::bad_data(format!(
            "unknown option {o:?}; subscriptions accept options=sysAttrs"
        )));
    }
    Ok(opts.contains("sysAttrs"))
}

/// Checks that the `jsonldContext` of a subscription can be resolved, so notifications can be rendered under it.
async fn check_jsonld_context(state: &SharedState, sub: &Subscription) -> ApiResult<()> {
    if let Some(url) = &sub.jsonld_context {
        ld::context_for(state, &Value::String(url.clone())).await?;
    }
    Ok(())
}

/// Whether the caller sees a subscription: one of its own (or any, for an administrator) made in the tenant the
/// request names.
fn visible(g: &Guard, sub: &Subscription) -> bool {
    may_manage_subscription(&g.principal, sub.owner.as_ref()) && sub.tenant.as_deref() == g.tenant()
}

/// A subscription the caller may see (another account's, or another tenant's, is reported as missing).
async fn load(
    state: &SharedState,
    g: &Guard,
    id: &str,
) -> ApiResult<(Subscription, DeliveryStatus)> {
    let missing = || ApiError::not_found(format!("subscription {id} does not exist"));
    let stored = state
        .store
        .get_subscription(id)
        .await?
        .ok_or_else(missing)?;
    let sub = Subscription::from_stored(&stored.document)?;
    if !visible(g, &sub) {
        return Err(missing());
    }
    Ok((sub, stored.status))
}

async fn create_subscription(
    State(state): State<SharedState>,
    g: Guard,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> ApiResult<Response> {
    Params::parse(raw.as_deref(), &[])?;
    let (v, rc) = read_body(&state, &headers, &body, false).await?;
    if g.principal.is_anonymous() && !state.config.auth.anonymous_subscriptions {
        return Err(g.denied(
            "subscribing needs an account (sign in, or send an API key): notifications go to an address of the \
             caller's choosing",
        ));
    }
    let mut sub = Subscription::parse(&v, &rc.ctx, rc.user.clone(), Utc::now())?;
    sub.owner = owner_of(&g.principal);
    sub.tenant = g.tenant().map(str::to_string);
    check_jsonld_context(&state, &sub).await?;
    let id = sub.id.clone();
    state
        .store
        .put_subscription(
            StoredSubscription {
                id: id.clone(),
                document: sub.to_stored(),
                status: DeliveryStatus::default(),
            },
            true,
        )
        .await?;
    tracing::info!(subscription = %id, endpoint = %sub.notification.endpoint.uri, "subscription created");
    Ok(crate::created(&subscription_url(&id)))
}

async fn query_subscriptions(
    State(state): State<SharedState>,
    g: Guard,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let p = Params::parse(raw.as_deref(), &["limit", "offset", "count", "options"])?;
    let sys = sys_attrs(&p)?;
    let accept = ld::accept(&headers, false)?;
    let rc = ld::request_context(&state, &headers, None, None).await?;
    let limit = p.usize("limit")?.unwrap_or(state.config.default_limit);
    if limit > state.config.max_limit {
        return Err(ApiError::new(
            ErrorKind::TooManyResults,
            format!(
                "limit {limit} is above the maximum page size {}",
                state.config.max_limit
            ),
        ));
    }
    let offset = p.usize("offset")?.unwrap_or(0);
    let count = p.bool("count")?.unwrap_or(false);
    if limit == 0 && !count {
        return Err(ApiError::bad_data(
            "limit=0 is only allowed together with count=true",
        ));
    }
    let mut all = Vec::new();
    for s in state.store.list_subscriptions().await? {
        let sub = Subscription::from_stored(&s.document)?;
        if visible(&g, &sub) {
            all.push((sub, s.status));
        }
    }
    let now = Utc::now();
    let mut out = Vec::new();
    for (sub, status) in all.iter().skip(offset).take(limit) {
        out.push(sub.render(&rc.ctx, &delivery_info(status), now, sys));
    }
    let mut resp = json_response(StatusCode::OK, Value::Array(out), accept, &rc);
    if count {
        resp.headers_mut()
            .insert("NGSILD-Results-Count", HeaderValue::from(all.len()));
    }
    Ok(resp)
}

async fn retrieve_subscription(
    State(state): State<SharedState>,
    g: Guard,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let p = Params::parse(raw.as_deref(), &["options"])?;
    let sys = sys_attrs(&p)?;
    check_id(&id)?;
    let accept = ld::accept(&headers, false)?;
    let rc = ld::request_context(&state, &headers, None, None).await?;
    let (sub, status) = load(&state, &g, &id).await?;
    let body = sub.render(&rc.ctx, &delivery_info(&status), Utc::now(), sys);
    Ok(json_response(StatusCode::OK, body, accept, &rc))
}

async fn update_subscription(
    State(state): State<SharedState>,
    g: Guard,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> ApiResult<StatusCode> {
    Params::parse(raw.as_deref(), &[])?;
    check_id(&id)?;
    let (v, rc) = read_body(&state, &headers, &body, true).await?;
    let frag = v
        .as_object()
        .ok_or_else(|| ApiError::bad_data("a subscription fragment must be a JSON object"))?;
    if frag.keys().all(|k| k == "@context") {
        return Err(ApiError::bad_data("the subscription fragment is empty"));
    }
    let (sub, _) = load(&state, &g, &id).await?;
    let patched = sub.patch(frag, &rc.ctx, Utc::now())?;
    if patched.jsonld_context != sub.jsonld_context {
        check_jsonld_context(&state, &patched).await?;
    }
    state
        .store
        .put_subscription(
            StoredSubscription {
                id: id.clone(),
                document: patched.to_stored(),
                // ignored on update: the store keeps the delivery statistics
                status: DeliveryStatus::default(),
            },
            false,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_subscription(
    State(state): State<SharedState>,
    g: Guard,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<StatusCode> {
    Params::parse(raw.as_deref(), &[])?;
    check_id(&id)?;
    load(&state, &g, &id).await?;
    if !state.store.delete_subscription(&id).await? {
        return Err(ApiError::not_found(format!(
            "subscription {id} does not exist"
        )));
    }
    tracing::info!(subscription = %id, "subscription deleted");
    Ok(StatusCode::NO_CONTENT)
}
