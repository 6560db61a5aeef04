//! Accounts, API keys, the usage log and the audit log over HTTP: `/api/accounts` and `/api/audit` for
//! administrators, `/api/keys` for every account's own keys, `/api/datasets/{id}/usage` for a dataset's owner.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use twin_auth::{apikey, password};
use twin_model::policy::{Role, Scope};
use twin_store::trust::{Account, ApiKeyRecord, UsageQuery};

use crate::auth::{account_json, check_account_id};
use crate::error::{ApiError, ApiResult};
use crate::guard::Guard;
use crate::params::Params;
use crate::{parse_body, SharedState};

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/accounts", get(list_accounts).post(create_account))
        .route(
            "/accounts/{id}",
            get(get_account)
                .patch(update_account)
                .delete(delete_account),
        )
        .route("/keys", get(list_keys).post(create_key))
        .route("/keys/{id}", delete(revoke_key))
        .route("/datasets/{id}/usage", get(usage))
        .route("/datasets/{id}/usage/summary", get(usage_summary))
        .route("/audit", get(audit))
        .route("/audit/verify", get(verify_audit))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AccountBody {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    roles: Option<Vec<String>>,
    #[serde(default)]
    groups: Option<Vec<String>>,
    #[serde(default)]
    organisation: Option<String>,
    #[serde(default)]
    disabled: Option<bool>,
}

fn body<T: serde::de::DeserializeOwned>(b: &Bytes, what: &str) -> ApiResult<T> {
    serde_json::from_value(parse_body(b)?)
        .map_err(|e| ApiError::bad_data(format!("invalid {what}: {e}")))
}

fn check_roles(roles: &[String]) -> ApiResult<()> {
    if let Some(r) = roles.iter().find(|r| Role::parse(r).is_none()) {
        return Err(ApiError::bad_data(format!(
            "role {r:?} is not one of {}",
            Role::ALL.map(|r| r.as_str()).join(", ")
        )));
    }
    Ok(())
}

/// Checks a new password's strength and hashes it (off the async runtime).
async fn hash(p: String) -> ApiResult<String> {
    password::check_strength(&p).map_err(|e| ApiError::bad_data(e.to_string()))?;
    crate::auth::hash_password(p).await
}

async fn list_accounts(State(state): State<SharedState>, g: Guard) -> ApiResult<Response> {
    g.require_admin()?;
    let all: Vec<Value> = state
        .store
        .list_accounts()
        .await?
        .iter()
        .map(account_json)
        .collect();
    Ok(Json(all).into_response())
}

async fn create_account(
    State(state): State<SharedState>,
    g: Guard,
    b: Bytes,
) -> ApiResult<Response> {
    g.require_admin()?;
    let a: AccountBody = body(&b, "account")?;
    let id =
        a.id.ok_or_else(|| ApiError::bad_data("an account needs an id"))?;
    check_account_id(&id)?;
    let roles = a
        .roles
        .unwrap_or_else(|| vec![Role::Citizen.as_str().into()]);
    check_roles(&roles)?;
    let password_hash = match a.password {
        Some(p) => Some(hash(p).await?),
        None => None,
    };
    let now = Utc::now();
    let account = Account {
        id: id.clone(),
        display_name: a.display_name,
        email: a.email,
        password_hash,
        roles,
        groups: a.groups.unwrap_or_default(),
        organisation: a.organisation,
        disabled: a.disabled.unwrap_or(false),
        created_at: now,
        updated_at: now,
    };
    state.store.put_account(account.clone(), true).await?;
    state
        .store
        .append_audit(
            &g.principal.label(),
            "account.create",
            &id,
            json!({"roles": account.roles, "groups": account.groups, "organisation": account.organisation}),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(account_json(&account))).into_response())
}

/// The account, to its owner or an administrator.
async fn readable_account(state: &SharedState, g: &Guard, id: &str) -> ApiResult<Account> {
    let own = g.principal.subject.as_deref() == Some(id);
    if !own && !g.principal.is_admin() {
        return Err(g.denied("only the account itself or an administrator may see it"));
    }
    state
        .store
        .get_account(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("account {id} does not exist")))
}

async fn get_account(
    State(state): State<SharedState>,
    g: Guard,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let a = readable_account(&state, &g, &id).await?;
    Ok(Json(account_json(&a)).into_response())
}

async fn update_account(
    State(state): State<SharedState>,
    g: Guard,
    Path(id): Path<String>,
    b: Bytes,
) -> ApiResult<StatusCode> {
    let mut a = readable_account(&state, &g, &id).await?;
    let u: AccountBody = body(&b, "account update")?;
    if u.id.as_deref().is_some_and(|i| i != id) {
        return Err(ApiError::bad_data("an account's id cannot change"));
    }
    let privileged =
        u.roles.is_some() || u.groups.is_some() || u.organisation.is_some() || u.disabled.is_some();
    if privileged && !g.principal.is_admin() {
        return Err(
            g.denied("only an administrator changes roles, groups, organisation or disabled")
        );
    }
    let mut changed = serde_json::Map::new();
    if let Some(r) = u.roles {
        check_roles(&r)?;
        changed.insert("roles".into(), json!(r));
        a.roles = r;
    }
    if let Some(gs) = u.groups {
        changed.insert("groups".into(), json!(gs));
        a.groups = gs;
    }
    if let Some(o) = u.organisation {
        changed.insert("organisation".into(), json!(o));
        a.organisation = Some(o);
    }
    if let Some(d) = u.disabled {
        changed.insert("disabled".into(), json!(d));
        a.disabled = d;
    }
    if let Some(p) = u.password {
        a.password_hash = Some(hash(p).await?);
        changed.insert("password".into(), json!("changed"));
    }
    if let Some(n) = u.display_name {
        a.display_name = Some(n);
    }
    if let Some(e) = u.email {
        a.email = Some(e);
    }
    a.updated_at = Utc::now();
    state.store.put_account(a, false).await?;
    if !changed.is_empty() {
        state
            .store
            .append_audit(
                &g.principal.label(),
                "account.update",
                &id,
                Value::Object(changed),
            )
            .await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_account(
    State(state): State<SharedState>,
    g: Guard,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    readable_account(&state, &g, &id).await?;
    if !state.store.delete_account(&id).await? {
        return Err(ApiError::not_found(format!("account {id} does not exist")));
    }
    state
        .store
        .append_audit(&g.principal.label(), "account.delete", &id, json!({}))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

fn key_json(k: &ApiKeyRecord) -> Value {
    json!({
        "id": k.id, "account": k.account_id, "name": k.name, "scopes": k.scopes, "createdAt": k.created_at,
        "expiresAt": k.expires_at, "revokedAt": k.revoked_at, "lastUsedAt": k.last_used_at,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct KeyBody {
    name: String,
    #[serde(default)]
    scopes: Option<Vec<String>>,
    #[serde(default)]
    expires_at: Option<DateTime<Utc>>,
    /// An administrator may make a key for another account (a device's).
    #[serde(default)]
    account: Option<String>,
}

async fn list_keys(
    State(state): State<SharedState>,
    g: Guard,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let p = Params::parse(raw.as_deref(), &["account"])?;
    let me = g
        .principal
        .subject
        .clone()
        .ok_or_else(|| g.denied("sign in to see your API keys"))?;
    let account = p.get("account").unwrap_or(&me).to_string();
    if account != me {
        g.require_admin()?;
    }
    let keys: Vec<Value> = state
        .store
        .list_api_keys(Some(&account))
        .await?
        .iter()
        .map(key_json)
        .collect();
    Ok(Json(keys).into_response())
}

async fn create_key(State(state): State<SharedState>, g: Guard, b: Bytes) -> ApiResult<Response> {
    let me = g
        .principal
        .subject
        .clone()
        .ok_or_else(|| g.denied("sign in to make an API key"))?;
    if matches!(
        g.principal.method,
        twin_model::policy::AuthMethod::ApiKey { .. }
    ) {
        return Err(g.denied("an API key cannot make API keys; sign in"));
    }
    let k: KeyBody = body(&b, "API key request")?;
    if k.name.trim().is_empty() {
        return Err(ApiError::bad_data("an API key needs a name"));
    }
    let account = k.account.unwrap_or(me);
    if Some(&account) != g.principal.subject.as_ref() {
        g.require_admin()?;
        if state.store.get_account(&account).await?.is_none() {
            return Err(ApiError::not_found(format!(
                "account {account} does not exist"
            )));
        }
    }
    let scopes = k.scopes.unwrap_or_else(|| vec!["read".into()]);
    for s in &scopes {
        s.parse::<Scope>().map_err(|_| {
            ApiError::bad_data(format!(
                "scope {s:?}: read, write, admin, read:<dataset> or write:<dataset>"
            ))
        })?;
    }
    if scopes.iter().any(|s| s == "admin") && !g.principal.is_admin() {
        return Err(g.denied("only an administrator makes keys with the admin scope"));
    }
    if let Some(at) = k.expires_at.filter(|at| *at <= Utc::now()) {
        return Err(ApiError::bad_data(format!("expiresAt {at} is in the past")));
    }
    let new = apikey::generate();
    let rec = ApiKeyRecord {
        id: new.id.clone(),
        account_id: account.clone(),
        name: k.name,
        hash: new.hash,
        scopes,
        created_at: Utc::now(),
        expires_at: k.expires_at,
        revoked_at: None,
        last_used_at: None,
    };
    state.store.put_api_key(rec.clone()).await?;
    state
        .store
        .append_audit(
            &g.principal.label(),
            "key.create",
            &rec.id,
            json!({"account": account, "scopes": rec.scopes, "expiresAt": rec.expires_at}),
        )
        .await?;
    let mut v = key_json(&rec);
    // the only time the secret is shown
    v["key"] = json!(new.secret);
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

async fn revoke_key(
    State(state): State<SharedState>,
    g: Guard,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let k = state
        .store
        .get_api_key(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("API key {id} does not exist")))?;
    if g.principal.subject.as_deref() != Some(&k.account_id) && !g.principal.is_admin() {
        // not the owner's: as if it did not exist
        return Err(ApiError::not_found(format!("API key {id} does not exist")));
    }
    state.store.revoke_api_key(&id, Utc::now()).await?;
    state
        .store
        .append_audit(
            &g.principal.label(),
            "key.revoke",
            &id,
            json!({"account": k.account_id}),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The dataset, when the caller manages it (404 when they may not even read it, so its existence does not leak).
fn managed(g: &Guard, id: &str) -> ApiResult<()> {
    let d = g
        .dataset(id)
        .filter(|d| g.scope().sees(Some(&d.id)) || twin_model::policy::manages(&g.principal, d))
        .ok_or_else(|| ApiError::not_found(format!("dataset {id} does not exist")))?;
    g.require_manager(d)
}

fn time_param(p: &Params, k: &str) -> ApiResult<Option<DateTime<Utc>>> {
    p.get(k)
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| ApiError::bad_data(format!("{k}={v} is not an RFC 3339 time")))
        })
        .transpose()
}

async fn usage(
    State(state): State<SharedState>,
    g: Guard,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    managed(&g, &id)?;
    let p = Params::parse(
        raw.as_deref(),
        &["principal", "since", "until", "before", "limit"],
    )?;
    state.usage.flush().await;
    let q = UsageQuery {
        datasets: vec![id],
        principal: p.get("principal").map(String::from),
        since: time_param(&p, "since")?,
        until: time_param(&p, "until")?,
        before_id: p
            .get("before")
            .map(|b| {
                b.parse()
                    .map_err(|_| ApiError::bad_data("before must be a record id"))
            })
            .transpose()?,
        limit: p.usize("limit")?.unwrap_or(100).min(1000),
    };
    let (total, records) = state.store.usage(&q).await?;
    let records: Vec<Value> = records
        .iter()
        .map(|r| {
            json!({"id": r.id, "at": r.at, "dataset": r.dataset, "principal": r.principal,
                   "operation": r.operation, "entities": r.entities, "purpose": r.purpose, "detail": r.detail})
        })
        .collect();
    Ok(Json(json!({"total": total, "records": records})).into_response())
}

async fn usage_summary(
    State(state): State<SharedState>,
    g: Guard,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    managed(&g, &id)?;
    let p = Params::parse(raw.as_deref(), &["since"])?;
    state.usage.flush().await;
    let rows: Vec<Value> = state
        .store
        .usage_summary(&[id], time_param(&p, "since")?)
        .await?
        .iter()
        .map(|r| {
            json!({"dataset": r.dataset, "principal": r.principal, "operation": r.operation,
                   "requests": r.requests, "entities": r.entities, "first": r.first, "last": r.last})
        })
        .collect();
    Ok(Json(rows).into_response())
}

async fn audit(
    State(state): State<SharedState>,
    g: Guard,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    g.require_admin()?;
    let p = Params::parse(raw.as_deref(), &["after", "limit"])?;
    let after = p
        .get("after")
        .map(|b| {
            b.parse()
                .map_err(|_| ApiError::bad_data("after must be a sequence number"))
        })
        .transpose()?;
    let recs = state
        .store
        .audit(after, p.usize("limit")?.unwrap_or(100).min(1000))
        .await?;
    let v: Vec<Value> = recs
        .iter()
        .map(|r| {
            json!({"seq": r.seq, "at": r.at, "actor": r.actor, "action": r.action, "target": r.target,
                   "detail": r.detail, "prevHash": r.prev_hash, "hash": r.hash})
        })
        .collect();
    Ok(Json(v).into_response())
}

async fn verify_audit(State(state): State<SharedState>, g: Guard) -> ApiResult<Response> {
    g.require_admin()?;
    let v = state.store.verify_audit().await?;
    let status = if v.ok {
        StatusCode::OK
    } else {
        StatusCode::CONFLICT
    };
    Ok((
        status,
        Json(json!({"records": v.records, "ok": v.ok, "firstBadSeq": v.first_bad_seq, "reason": v.reason})),
    )
        .into_response())
}
