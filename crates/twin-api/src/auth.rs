//! Who is calling: the middleware that turns an API key, an OpenID Connect bearer token or a session cookie into a
//! [`Principal`] (anonymous without credentials; wrong credentials are a 401, never anonymous), checks the CSRF
//! token of cookie-authenticated writes, and the `/api/auth` endpoints: sign-up, sign-in, sign-out, `me`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use twin_auth::{apikey, password, session};
use twin_model::policy::{AuthMethod, Principal, Role, Scope};
use twin_model::ErrorKind;
use twin_store::trust::{Account, ApiKeyRecord, SessionRecord};

use crate::error::{ApiError, ApiResult};
use crate::guard::denied;
use crate::{parse_body, SharedState};

/// Settings of sign-in.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// How long a session lasts without being used.
    pub session_ttl: Duration,
    /// Whether anyone may create a citizen account (`POST /api/auth/register`).
    pub open_registration: bool,
    /// The city's identity provider, whose bearer tokens are accepted.
    pub oidc: Option<twin_auth::jwt::OidcConfig>,
    /// Whether callers without an account may subscribe (their notifications carry public data only). Off by
    /// default: a subscription makes the twin send requests to an address of the caller's choosing.
    pub anonymous_subscriptions: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            session_ttl: Duration::from_secs(12 * 3600),
            open_registration: true,
            oidc: None,
            anonymous_subscriptions: false,
        }
    }
}

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/auth/register", post(register))
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/auth/me", get(me))
}

fn unauthenticated(detail: impl Into<String>) -> ApiError {
    ApiError::new(ErrorKind::Unauthenticated, detail)
}

/// The principal of an account, with its roles, groups and organisation.
pub fn principal_of(a: &Account, method: AuthMethod, scopes: Option<Vec<String>>) -> Principal {
    Principal {
        subject: Some(a.id.clone()),
        roles: a.roles.iter().filter_map(|r| Role::parse(r)).collect(),
        groups: a.groups.iter().cloned().collect(),
        organisation: a.organisation.clone(),
        method,
        scopes: scopes.map(|s| s.iter().filter_map(|x| x.parse::<Scope>().ok()).collect()),
    }
}

/// What a request carries to say who it is.
enum Credential {
    ApiKey(String),
    Bearer(String),
    Session(String),
}

fn credential(headers: &HeaderMap) -> ApiResult<Option<Credential>> {
    if let Some(v) = headers.get("x-api-key") {
        let v = v
            .to_str()
            .map_err(|_| unauthenticated("the X-API-Key header is not text"))?;
        return Ok(Some(Credential::ApiKey(v.trim().to_string())));
    }
    if let Some(v) = headers.get(header::AUTHORIZATION) {
        let v = v
            .to_str()
            .map_err(|_| unauthenticated("the Authorization header is not text"))?;
        let Some(token) = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
        else {
            return Err(unauthenticated(
                "the Authorization header must be `Bearer <API key or token>`",
            ));
        };
        let token = token.trim().to_string();
        return Ok(Some(if apikey::parse(&token).is_some() {
            Credential::ApiKey(token)
        } else {
            Credential::Bearer(token)
        }));
    }
    if let Some(c) = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(session::from_cookie_header)
    {
        return Ok(Some(Credential::Session(c)));
    }
    Ok(None)
}

/// The principal behind a request's credentials (anonymous without any).
pub async fn authenticate(
    state: &SharedState,
    headers: &HeaderMap,
) -> ApiResult<(Principal, Option<String>)> {
    let Some(c) = credential(headers)? else {
        return Ok((Principal::anonymous(), None));
    };
    let now = Utc::now();
    match c {
        Credential::ApiKey(token) => {
            let (id, _) =
                apikey::parse(&token).ok_or_else(|| unauthenticated("the API key is malformed"))?;
            let entry = state
                .keys
                .get(state, &id)
                .await?
                .filter(|e| apikey::verify(&token, &e.0.hash))
                .ok_or_else(|| unauthenticated("the API key is not valid"))?;
            let (k, a) = (&entry.0, &entry.1);
            if let Some(at) = k.revoked_at {
                return Err(unauthenticated(format!(
                    "the API key {id} was revoked at {at}"
                )));
            }
            if let Some(at) = k.expires_at.filter(|at| *at <= now) {
                return Err(unauthenticated(format!("the API key {id} expired at {at}")));
            }
            if a.disabled {
                return Err(unauthenticated(format!("the account {} is disabled", a.id)));
            }
            if state.keys.touch_due(&id, k.last_used_at, now) {
                let store = state.store.clone();
                tokio::spawn(async move {
                    let _ = store.touch_api_key(&id, now).await;
                });
            }
            Ok((
                principal_of(
                    a,
                    AuthMethod::ApiKey {
                        key_id: k.id.clone(),
                    },
                    Some(k.scopes.clone()),
                ),
                None,
            ))
        }
        Credential::Bearer(token) => {
            let Some(v) = state.jwt.as_ref() else {
                return Err(unauthenticated(
                    "bearer tokens are not accepted: this server has no identity provider configured",
                ));
            };
            let p = v
                .verify(&token)
                .await
                .map_err(|e| unauthenticated(format!("the bearer token is not accepted: {e}")))?;
            Ok((p, None))
        }
        Credential::Session(token) => {
            let s = state
                .store
                .get_session(&session::hash(&token))
                .await?
                .filter(|s| s.expires_at > now)
                .ok_or_else(|| {
                    unauthenticated("the session expired or was ended; sign in again")
                })?;
            let a = active_account(state, &s.account_id).await?;
            Ok((principal_of(&a, AuthMethod::Session, None), Some(token)))
        }
    }
}

/// API keys with their accounts as of a configuration epoch (which the store raises when an account changes or a
/// key is revoked, on any node): a request with a key reads neither from the store while nothing changed. Unknown
/// key ids are not kept, and the cache starts again past [`KEY_CACHE_MAX`] keys.
#[derive(Default)]
pub struct KeyCache {
    inner: std::sync::Mutex<(u64, HashMap<String, Arc<KeyEntry>>)>,
    /// When this process last recorded each key's use.
    touched: std::sync::Mutex<HashMap<String, DateTime<Utc>>>,
}

/// A key with its account.
pub type KeyEntry = (ApiKeyRecord, Account);

/// The most keys [`KeyCache`] holds.
const KEY_CACHE_MAX: usize = 10_000;

impl KeyCache {
    /// Whether a key's use should be recorded now: at most once a minute per key (`stored`: the last use the
    /// store knew when the key was read).
    pub fn touch_due(&self, id: &str, stored: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
        let Ok(mut t) = self.touched.lock() else {
            return false;
        };
        if t.len() >= KEY_CACHE_MAX {
            t.clear();
        }
        let last = t.get(id).copied().max(stored);
        if last.is_none_or(|l| now - l > chrono::Duration::seconds(60)) {
            t.insert(id.to_string(), now);
            true
        } else {
            false
        }
    }

    /// The key `id` and its account (None when either does not exist).
    pub async fn get(&self, state: &SharedState, id: &str) -> ApiResult<Option<Arc<KeyEntry>>> {
        let epoch = state.store.config_epoch();
        if let Ok(g) = self.inner.lock() {
            if g.0 == epoch {
                if let Some(hit) = g.1.get(id) {
                    return Ok(Some(hit.clone()));
                }
            }
        }
        let Some(k) = state.store.get_api_key(id).await? else {
            return Ok(None);
        };
        let Some(a) = state.store.get_account(&k.account_id).await? else {
            return Ok(None);
        };
        let entry = Arc::new((k, a));
        if let Ok(mut g) = self.inner.lock() {
            // read before the epoch moved again: kept only under the epoch it was read in
            if g.0 != epoch || g.1.len() >= KEY_CACHE_MAX {
                *g = (epoch, HashMap::new());
            }
            if state.store.config_epoch() == epoch {
                g.1.insert(id.to_string(), entry.clone());
            }
        }
        Ok(Some(entry))
    }
}

async fn active_account(state: &SharedState, id: &str) -> ApiResult<Account> {
    match state.store.get_account(id).await? {
        Some(a) if !a.disabled => Ok(a),
        Some(_) => Err(unauthenticated(format!("the account {id} is disabled"))),
        None => Err(unauthenticated(format!(
            "the account {id} no longer exists"
        ))),
    }
}

/// The middleware: resolves the principal, checks CSRF on cookie-authenticated writes, and hands the principal
/// (and the rate limiter's key) on as request extensions.
pub async fn middleware(
    State(state): State<SharedState>,
    mut req: Request,
    next: Next,
) -> Response {
    let (principal, session_token) = match authenticate(&state, req.headers()).await {
        Ok(p) => p,
        Err(e) => {
            if matches!(credential(req.headers()), Ok(Some(Credential::Session(_)))) {
                // a session that ended (signed out elsewhere, expired, its account disabled) leaves its cookie in
                // the browser: the request goes on without it, and the answer tells the browser to drop it
                req.extensions_mut().insert(Principal::anonymous());
                let mut resp = next.run(req).await;
                let secure = state.config.public_url.starts_with("https://");
                if let Ok(v) = HeaderValue::from_str(&session::clear_cookie(secure)) {
                    resp.headers_mut().append(header::SET_COOKIE, v);
                }
                return resp;
            }
            // wrong credentials are answered by the rate limiter, after it charged the client's address: guessing
            // keys or tokens costs budget like any write
            req.extensions_mut()
                .insert(crate::hardening::FailedCredentials(e.0.detail));
            return next.run(req).await;
        }
    };
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if let (Some(token), false) = (&session_token, safe) {
        let presented = req
            .headers()
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        // sign-in and sign-out take a fresh cookie or end one: the CSRF check would only lock a user out
        let exempt = matches!(req.uri().path(), "/api/auth/login" | "/api/auth/register");
        if !exempt && !session::verify_csrf(token, presented) {
            return ApiError::new(
                ErrorKind::AccessDenied,
                "a write with a session cookie needs the X-CSRF-Token header (from /api/auth/me or the sign-in answer)",
            )
            .into_response();
        }
    }
    if let Some(s) = &principal.subject {
        req.extensions_mut()
            .insert(crate::hardening::RateKey(s.clone()));
    }
    req.extensions_mut().insert(principal);
    next.run(req).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Credentials {
    id: String,
    password: String,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

fn credentials(body: &Bytes) -> ApiResult<Credentials> {
    serde_json::from_value(parse_body(body)?)
        .map_err(|e| ApiError::bad_data(format!("expected {{\"id\", \"password\"}}: {e}")))
}

/// Checks an account id: 2 to 64 of `a-z 0-9 . _ -`.
pub fn check_account_id(id: &str) -> ApiResult<()> {
    let ok = (2..=64).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_data(format!(
            "account id {id:?}: 2 to 64 characters among a-z, 0-9, '.', '_' and '-'"
        )))
    }
}

async fn register(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    if !state.config.auth.open_registration {
        return Err(ApiError::new(
            ErrorKind::AccessDenied,
            "this twin does not take sign-ups; ask an administrator for an account",
        ));
    }
    let c = credentials(&body)?;
    check_account_id(&c.id)?;
    password::check_strength(&c.password).map_err(|e| ApiError::bad_data(e.to_string()))?;
    let hash = hash_password(c.password).await?;
    let now = Utc::now();
    let a = Account {
        id: c.id.clone(),
        display_name: c.display_name,
        email: c.email,
        password_hash: Some(hash),
        roles: vec![Role::Citizen.as_str().to_string()],
        groups: vec![],
        organisation: None,
        disabled: false,
        created_at: now,
        updated_at: now,
    };
    state.store.put_account(a.clone(), true).await?;
    state
        .store
        .append_audit(&a.id, "account.register", &a.id, json!({"roles": a.roles}))
        .await?;
    start_session(&state, &a, &headers, StatusCode::CREATED).await
}

/// Hashes on a blocking thread: argon2 takes tens of milliseconds of CPU on purpose.
pub(crate) async fn hash_password(p: String) -> ApiResult<String> {
    tokio::task::spawn_blocking(move || password::hash(&p))
        .await
        .map_err(|e| ApiError::new(ErrorKind::InternalError, e.to_string()))?
        .map_err(|e| ApiError::new(ErrorKind::InternalError, e.to_string()))
}

async fn login(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let c = credentials(&body)?;
    let account = state.store.get_account(&c.id).await?;
    // the same work and the same answer whether the account exists or not
    let phc = account.as_ref().and_then(|a| a.password_hash.clone());
    let pw = c.password;
    let ok = tokio::task::spawn_blocking(move || {
        password::verify(&pw, phc.as_deref().unwrap_or_else(|| dummy_hash()))
    })
    .await
    .unwrap_or(false);
    match account {
        Some(a) if ok && !a.disabled && a.password_hash.is_some() => {
            start_session(&state, &a, &headers, StatusCode::OK).await
        }
        _ => Err(unauthenticated("the account id or the password is wrong")),
    }
}

/// The hash verified against when an account does not exist or has no password, so that a wrong account id
/// costs the same time as a wrong password: a real hash, with today's parameters, of a random password, made once.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let (random, _) = session::new_token();
        password::hash(&random).unwrap_or_default()
    })
}

async fn start_session(
    state: &SharedState,
    a: &Account,
    headers: &HeaderMap,
    status: StatusCode,
) -> ApiResult<Response> {
    let (token, hash) = session::new_token();
    let now = Utc::now();
    let ttl = state.config.auth.session_ttl;
    state
        .store
        .put_session(SessionRecord {
            hash,
            account_id: a.id.clone(),
            created_at: now,
            expires_at: now
                + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(12)),
            last_seen_at: now,
            user_agent: headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.chars().take(200).collect()),
        })
        .await?;
    let secure = state.config.public_url.starts_with("https://");
    let cookie = session::set_cookie(&token, ttl, secure);
    let p = principal_of(a, AuthMethod::Session, None);
    let body = json!({"account": account_json(a), "principal": p, "csrfToken": session::csrf_token(&token)});
    let mut resp = (status, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

/// An account as the API shows it: never its password hash.
pub fn account_json(a: &Account) -> serde_json::Value {
    json!({
        "id": a.id, "displayName": a.display_name, "email": a.email, "roles": a.roles, "groups": a.groups,
        "organisation": a.organisation, "disabled": a.disabled, "createdAt": a.created_at, "updatedAt": a.updated_at,
        "hasPassword": a.password_hash.is_some(),
    })
}

async fn logout(State(state): State<SharedState>, headers: HeaderMap) -> ApiResult<Response> {
    if let Some(token) = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(session::from_cookie_header)
    {
        state.store.delete_session(&session::hash(&token)).await?;
    }
    let secure = state.config.public_url.starts_with("https://");
    let mut resp = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = HeaderValue::from_str(&session::clear_cookie(secure)) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

async fn me(
    State(state): State<SharedState>,
    axum::Extension(p): axum::Extension<Principal>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    // who the middleware found (anonymous for a session that ended), and the session's token for its CSRF token
    let token = matches!(p.method, AuthMethod::Session)
        .then(|| {
            headers
                .get(header::COOKIE)
                .and_then(|v| v.to_str().ok())
                .and_then(session::from_cookie_header)
        })
        .flatten();
    let account = match &p.subject {
        Some(id) if !matches!(p.method, AuthMethod::Jwt { .. }) => {
            state.store.get_account(id).await?
        }
        _ => None,
    };
    Ok(Json(json!({
        "principal": p,
        "account": account.as_ref().map(account_json),
        "csrfToken": token.map(|t| session::csrf_token(&t)),
    }))
    .into_response())
}

/// What a subscription's owner is now: their account as it is (a disabled or deleted account reads only public
/// data), else the roles they had when subscribing (identity provider subjects have no account here).
pub async fn owner_principal(
    state: &SharedState,
    owner: Option<&twin_model::subscription::SubscriptionOwner>,
) -> twin_store::Result<Principal> {
    let Some(o) = owner else {
        return Ok(Principal::anonymous());
    };
    match state.store.get_account(&o.subject).await? {
        Some(a) if !a.disabled => Ok(principal_of(&a, AuthMethod::Session, o.scopes.clone())),
        Some(_) => Ok(Principal::anonymous()),
        None => Ok(Principal {
            subject: Some(o.subject.clone()),
            roles: o.roles.iter().filter_map(|r| Role::parse(r)).collect(),
            groups: o.groups.iter().cloned().collect(),
            organisation: o.organisation.clone(),
            method: AuthMethod::Jwt {
                issuer: "subscription".into(),
            },
            scopes: o
                .scopes
                .as_ref()
                .map(|s| s.iter().filter_map(|x| x.parse::<Scope>().ok()).collect()),
        }),
    }
}

/// The owner record of a subscription made by `p` (None for an anonymous caller).
pub fn owner_of(p: &Principal) -> Option<twin_model::subscription::SubscriptionOwner> {
    let subject = p.subject.clone()?;
    Some(twin_model::subscription::SubscriptionOwner {
        subject,
        roles: p.roles.iter().map(|r| r.as_str().to_string()).collect(),
        groups: p.groups.iter().cloned().collect(),
        organisation: p.organisation.clone(),
        scopes: p
            .scopes
            .as_ref()
            .map(|s| s.iter().map(|x| x.to_string()).collect()),
    })
}

/// Whether `p` may see and change a subscription of `owner`: its owner, an administrator, or anyone for a
/// subscription made anonymously.
pub fn may_manage_subscription(
    p: &Principal,
    owner: Option<&twin_model::subscription::SubscriptionOwner>,
) -> bool {
    match owner {
        None => true,
        Some(o) => p.is_admin() || p.subject.as_deref() == Some(o.subject.as_str()),
    }
}

/// Fails unless the request's principal is signed in.
pub fn require_signed_in(p: &Principal) -> ApiResult<()> {
    if p.is_anonymous() {
        Err(denied(p, "sign in first"))
    } else {
        Ok(())
    }
}

/// The JWT verifier of the configured identity provider, if any (built at start-up).
pub type Jwt = Option<Arc<twin_auth::jwt::JwtVerifier>>;
