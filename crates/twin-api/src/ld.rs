//! JSON-LD at the HTTP edge: finds the request's @context (Link header or body), resolves the URLs it names (core
//! built in, registered and preloaded contexts from the store, remote ones only if configured), caches active
//! contexts, and negotiates media types both ways.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::{header, HeaderMap, HeaderValue};
use chrono::Utc;
use serde_json::Value;
use sha2::{Digest, Sha256};
use twin_model::context::{is_core_context_url, Context, ContextError, CORE_CONTEXT_URL};
use twin_model::ErrorKind;
use twin_store::StoredContext;

use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// The JSON-LD context link relation.
pub const LD_REL: &str = "http://www.w3.org/ns/json-ld#context";

/// What the client sent and what it wants back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    Json,
    JsonLd,
    GeoJson,
}

/// The active context of a request and the URL to name it by in the response.
#[derive(Clone)]
pub struct RequestContext {
    pub ctx: Arc<Context>,
    /// The user context as given (Null for the core context alone).
    pub user: Value,
    /// The URL for the response `Link` header / `@context` member.
    pub link_url: String,
}

impl RequestContext {
    /// The `@context` member for `application/ld+json` bodies.
    pub fn body_context(&self) -> Value {
        match &self.user {
            Value::Null => Value::String(CORE_CONTEXT_URL.into()),
            Value::Array(items) => {
                let mut v = items.clone();
                if !v
                    .iter()
                    .any(|i| i.as_str().is_some_and(is_core_context_url))
                {
                    v.push(Value::String(CORE_CONTEXT_URL.into()));
                }
                Value::Array(v)
            }
            other => Value::Array(vec![other.clone(), Value::String(CORE_CONTEXT_URL.into())]),
        }
    }

    /// The `Link` header value naming this context.
    pub fn link_header(&self) -> HeaderValue {
        HeaderValue::from_str(&format!("<{}>; rel=\"{LD_REL}\"; type=\"application/ld+json\"", self.link_url))
            .unwrap_or_else(|_| HeaderValue::from_static("<https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld>; rel=\"http://www.w3.org/ns/json-ld#context\"; type=\"application/ld+json\""))
    }
}

/// Active contexts by the canonical text of the user context, and fetched documents by URL.
#[derive(Default)]
pub struct ContextCache {
    /// user context text → (active context, URL naming it in responses)
    active: Mutex<HashMap<String, (Arc<Context>, String)>>,
    /// The store's [`twin_store::Store::config_epoch`] when the entries were built: contexts registered, replaced
    /// or deleted through another node raise it, and the cache starts afresh.
    epoch: std::sync::atomic::AtomicU64,
}

impl ContextCache {
    /// Forgets every active context (after a context is registered, replaced or deleted).
    pub fn clear(&self) {
        if let Ok(mut m) = self.active.lock() {
            m.clear();
        }
    }
}

/// Parses the JSON-LD context URL out of `Link` headers.
pub fn link_context(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let mut found = None;
    for v in headers.get_all(header::LINK) {
        let s = v
            .to_str()
            .map_err(|_| ApiError::bad_data("the Link header is not valid text"))?;
        for part in split_links(s) {
            let part = part.trim();
            if !part.contains(LD_REL) {
                continue;
            }
            let url = part
                .strip_prefix('<')
                .and_then(|r| r.split_once('>'))
                .map(|(u, _)| u.trim().to_string())
                .ok_or_else(|| ApiError::bad_data(format!("malformed Link header: {part}")))?;
            if found.is_some() {
                return Err(ApiError::bad_data(
                    "more than one JSON-LD context Link header",
                ));
            }
            found = Some(url);
        }
    }
    Ok(found)
}

fn split_links(s: &str) -> Vec<&str> {
    // links are comma separated; commas inside <...> or quotes do not split
    let mut out = Vec::new();
    let (mut depth, mut quoted, mut start) = (0i32, false, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '<' if !quoted => depth += 1,
            '>' if !quoted => depth -= 1,
            '"' => quoted = !quoted,
            ',' if depth == 0 && !quoted => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// The media type of the request body, checked against what the operation accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyType {
    Json,
    JsonLd,
    MergePatch,
}

pub fn body_type(headers: &HeaderMap, allow_merge_patch: bool) -> ApiResult<BodyType> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mt = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mt.as_str() {
        "application/json" => Ok(BodyType::Json),
        "application/ld+json" => Ok(BodyType::JsonLd),
        "application/merge-patch+json" if allow_merge_patch => Ok(BodyType::MergePatch),
        "" => Err(ApiError::new(
            ErrorKind::UnsupportedMediaType,
            "the request has no Content-Type; send application/json or application/ld+json",
        )),
        other => Err(ApiError::new(
            ErrorKind::UnsupportedMediaType,
            format!(
                "Content-Type {other} is not supported here; send application/json or application/ld+json{}",
                if allow_merge_patch { " (or application/merge-patch+json)" } else { "" }
            ),
        )),
    }
}

/// Reads the Accept header.
pub fn accept(headers: &HeaderMap, allow_geojson: bool) -> ApiResult<Accept> {
    let Some(a) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Ok(Accept::Json);
    };
    let mut best: Option<(f32, Accept)> = None;
    for item in a.split(',') {
        let mut parts = item.split(';');
        let mt = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .filter_map(|q| q.parse::<f32>().ok())
            .next()
            .unwrap_or(1.0);
        let kind = match mt.as_str() {
            "application/json" | "*/*" | "application/*" => Some(Accept::Json),
            "application/ld+json" => Some(Accept::JsonLd),
            "application/geo+json" if allow_geojson => Some(Accept::GeoJson),
            _ => None,
        };
        if let Some(k) = kind {
            if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, k));
            }
        }
    }
    best.map(|(_, k)| k).ok_or_else(|| {
        ApiError::new(
            ErrorKind::NotAcceptable,
            format!(
                "cannot produce any of {a}; available: application/json, application/ld+json{}",
                if allow_geojson {
                    ", application/geo+json"
                } else {
                    ""
                }
            ),
        )
    })
}

/// Builds the active context for a request. `body_ctx` is the `@context` member of an `application/ld+json` body.
pub async fn request_context(
    state: &AppState,
    headers: &HeaderMap,
    body_type: Option<BodyType>,
    body_ctx: Option<&Value>,
) -> ApiResult<RequestContext> {
    let link = link_context(headers)?;
    let user = match (body_type, body_ctx, link) {
        (Some(BodyType::JsonLd), Some(_), Some(_)) => {
            return Err(ApiError::bad_data(
                "an application/ld+json request carries its @context in the body and must not also send a context Link header",
            ))
        }
        (Some(BodyType::JsonLd), None, _) => {
            return Err(ApiError::bad_data("an application/ld+json request body must contain an @context member"))
        }
        (Some(BodyType::Json | BodyType::MergePatch), Some(_), _) => {
            return Err(ApiError::bad_data(
                "an application/json request body must not contain @context; send it in a Link header or use application/ld+json",
            ))
        }
        (_, Some(c), _) => c.clone(),
        (_, None, Some(url)) => Value::String(url),
        (_, None, None) => Value::Null,
    };
    context_for(state, &user).await
}

/// Builds (or takes from the cache) the active context of a user context value.
pub async fn context_for(state: &AppState, user: &Value) -> ApiResult<RequestContext> {
    let user = match user {
        Value::String(s) if is_core_context_url(s) => Value::Null,
        Value::Array(a) if a.len() == 1 => a[0].clone(),
        other => other.clone(),
    };
    let user = match &user {
        Value::String(s) if is_core_context_url(s) => Value::Null,
        _ => user,
    };
    let key = user.to_string();
    let epoch = state.store.config_epoch();
    if state
        .contexts
        .epoch
        .swap(epoch, std::sync::atomic::Ordering::SeqCst)
        != epoch
    {
        state.contexts.clear();
    }
    let cached = state
        .contexts
        .active
        .lock()
        .ok()
        .and_then(|m| m.get(&key).cloned());
    let (ctx, link_url) = match cached {
        Some(c) => c,
        None => {
            let ctx = Arc::new(build(state, &user).await?);
            let link_url = match &user {
                Value::Null => CORE_CONTEXT_URL.to_string(),
                Value::String(s) => s.clone(),
                other => implicit_context_url(state, other).await?,
            };
            if let Ok(mut m) = state.contexts.active.lock() {
                if m.len() > 1000 {
                    m.clear();
                }
                m.insert(key, (ctx.clone(), link_url.clone()));
            }
            (ctx, link_url)
        }
    };
    Ok(RequestContext {
        ctx,
        user,
        link_url,
    })
}

async fn build(state: &AppState, user: &Value) -> ApiResult<Context> {
    let mut docs: HashMap<String, Arc<Value>> = HashMap::new();
    // resolve iteratively: building reports the first missing URL; fetch it and try again
    for _ in 0..32 {
        let attempt = Context::build(user, &|u: &str| docs.get(u).cloned());
        match attempt {
            Ok(c) => return Ok(c),
            Err(ContextError::Invalid(m)) => {
                return Err(ApiError::bad_data(format!("invalid @context: {m}")))
            }
            Err(ContextError::Missing(url)) => {
                let doc = fetch_context(state, &url).await?;
                docs.insert(url, doc);
            }
        }
    }
    Err(ApiError::bad_data(
        "the @context references too many other contexts",
    ))
}

/// Finds the document of a context URL: registered or cached in the store, else fetched when allowed.
pub async fn fetch_context(state: &AppState, url: &str) -> ApiResult<Arc<Value>> {
    if let Some(c) = state.store.get_context(url).await? {
        return Ok(Arc::new(c.document));
    }
    // our own hosted-context URLs
    if let Some(id) = url
        .rsplit_once("/ngsi-ld/v1/jsonldContexts/")
        .map(|(_, id)| id)
    {
        let id = percent_encoding::percent_decode_str(id)
            .decode_utf8_lossy()
            .to_string();
        if let Some(c) = state.store.get_context(&id).await? {
            return Ok(Arc::new(c.document));
        }
    }
    // a reference that is no URL is the client's mistake (400), whatever the remote-context setting
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(ApiError::bad_data(format!(
            "the @context {url} is not an http(s) URL"
        )));
    }
    if !state.config.allow_remote_contexts {
        return Err(ApiError::new(
            ErrorKind::LdContextNotAvailable,
            format!(
                "the @context {url} is not known to this broker and fetching remote contexts is disabled; register it \
                 (POST /ngsi-ld/v1/jsonldContexts), preload it (--preload-context URL=FILE) or enable remote contexts"
            ),
        ));
    }
    let resp = state
        .http
        .get(url)
        .header(header::ACCEPT, "application/ld+json, application/json")
        .timeout(state.config.remote_context_timeout)
        .send()
        .await
        .map_err(|e| {
            ApiError::new(
                ErrorKind::LdContextNotAvailable,
                format!("cannot fetch @context {url}: {e}"),
            )
        })?;
    if !resp.status().is_success() {
        return Err(ApiError::new(
            ErrorKind::LdContextNotAvailable,
            format!("fetching @context {url} answered {}", resp.status()),
        ));
    }
    if resp
        .content_length()
        .is_some_and(|n| n as usize > state.config.remote_context_max_bytes)
    {
        return Err(ApiError::new(
            ErrorKind::LdContextNotAvailable,
            format!("the @context {url} is too large"),
        ));
    }
    let mut body = Vec::new();
    let mut resp = resp;
    while let Some(chunk) = resp.chunk().await.map_err(|e| {
        ApiError::new(
            ErrorKind::LdContextNotAvailable,
            format!("cannot read @context {url}: {e}"),
        )
    })? {
        body.extend_from_slice(&chunk);
        if body.len() > state.config.remote_context_max_bytes {
            return Err(ApiError::new(
                ErrorKind::LdContextNotAvailable,
                format!("the @context {url} is too large"),
            ));
        }
    }
    let doc: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            ErrorKind::LdContextNotAvailable,
            format!("the @context {url} is not JSON: {e}"),
        )
    })?;
    if doc.get("@context").is_none() {
        return Err(ApiError::new(
            ErrorKind::LdContextNotAvailable,
            format!("the document at {url} has no @context"),
        ));
    }
    let stored = StoredContext {
        id: context_id_for(url),
        url: url.to_string(),
        kind: "Cached".into(),
        document: doc.clone(),
        created_at: Utc::now(),
        last_usage: None,
        number_of_hits: 0,
    };
    state.store.put_context(stored).await?;
    Ok(Arc::new(doc))
}

/// A stable id for a context URL or inline context.
pub fn context_id_for(key: &str) -> String {
    let h = Sha256::digest(key.as_bytes());
    h.iter().take(12).map(|b| format!("{b:02x}")).collect()
}

/// Stores an inline context as `ImplicitlyCreated` so responses can name it by URL.
async fn implicit_context_url(state: &AppState, ctx: &Value) -> ApiResult<String> {
    let id = context_id_for(&ctx.to_string());
    let url = format!(
        "{}/ngsi-ld/v1/jsonldContexts/{id}",
        state.config.public_url.trim_end_matches('/')
    );
    if state.store.get_context(&id).await?.is_none() {
        state
            .store
            .put_context(StoredContext {
                id: id.clone(),
                url: url.clone(),
                kind: "ImplicitlyCreated".into(),
                document: serde_json::json!({"@context": ctx}),
                created_at: Utc::now(),
                last_usage: None,
                number_of_hits: 0,
            })
            .await?;
    }
    Ok(url)
}
