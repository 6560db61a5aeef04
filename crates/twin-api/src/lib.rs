//! urbantwin's HTTP server (axum): NGSI-LD under `/ngsi-ld/v1`, OGC API Features under `/ogc`, vector tiles under
//! `/tiles`, datasets and traffic scenarios under `/api`, the web app at `/`. Handlers translate HTTP to model and
//! store calls and back; no logic lives here.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use twin_model::{ErrorKind, Provenance};
use twin_store::Store;

pub mod access;
pub mod air;
pub mod auth;
pub mod batch;
pub mod catalog;
pub mod consultations;
pub mod contexts;
pub mod datasets;
pub mod entities;
pub mod error;
pub mod guard;
pub mod hardening;
pub mod ingest;
pub mod ld;
pub mod live;
pub mod notify;
pub mod ogc;
pub mod openapi;
pub mod params;
pub mod provenance;
pub mod retention;
pub mod scenarios;
pub mod subscriptions;
pub mod temporal;
pub mod tenants;
pub mod tiles;
pub mod trust;
pub mod types;
pub mod web;

pub use error::{ApiError, ApiResult};

/// Settings of the API server.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// The base URL clients reach this server at (used in Link headers and Location URLs of hosted contexts).
    pub public_url: String,
    /// Fetch @context URLs that are neither built in, registered nor preloaded.
    pub allow_remote_contexts: bool,
    pub remote_context_timeout: Duration,
    pub remote_context_max_bytes: usize,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Page size when `limit` is not given, and the largest allowed.
    pub default_limit: usize,
    pub max_limit: usize,
    /// Notification delivery: timeout per attempt and attempts before giving up.
    pub notification_timeout: Duration,
    pub notification_attempts: u32,
    /// Memory for cached vector tiles.
    pub tile_cache_bytes: u64,
    /// The built web app (`web/dist`), served at `/`; `None` serves the API alone.
    pub web_dir: Option<std::path::PathBuf>,
    /// Whether and how this node computes scenario runs (see [`scenarios::JobsConfig`]).
    pub jobs: scenarios::JobsConfig,
    /// How often the retention policies are applied (on the notifier node); `None` = never.
    pub retention_interval: Option<Duration>,
    /// The CA certificate(s) (PEM) that `mqtts://` notification endpoints' brokers must be signed by; `None`
    /// trusts the machine's root certificates.
    pub mqtt_ca_file: Option<std::path::PathBuf>,
    /// Sign-in: sessions, sign-up, the city's identity provider.
    pub auth: auth::AuthConfig,
    /// Rate limits, the request time limit, trusted proxies (see [`hardening`]).
    pub hardening: hardening::HardeningConfig,
    /// Where e-mail (verification codes) is written for the mail system to send: one RFC 5322 file per message,
    /// a pickup folder; `None` = this twin sends no e-mail (adding an address is refused).
    pub mail_outbox: Option<std::path::PathBuf>,
    /// The `From` of the e-mail this twin sends.
    pub mail_from: String,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            public_url: "http://127.0.0.1:1026".into(),
            allow_remote_contexts: false,
            remote_context_timeout: Duration::from_secs(5),
            remote_context_max_bytes: 1 << 20,
            max_body_bytes: 8 << 20,
            default_limit: 20,
            max_limit: 1000,
            notification_timeout: Duration::from_secs(10),
            notification_attempts: 8,
            tile_cache_bytes: 256 << 20,
            web_dir: None,
            jobs: scenarios::JobsConfig::default(),
            retention_interval: Some(Duration::from_secs(600)),
            mqtt_ca_file: None,
            auth: auth::AuthConfig::default(),
            hardening: hardening::HardeningConfig::default(),
            mail_outbox: None,
            mail_from: "urbantwin <no-reply@localhost>".into(),
        }
    }
}

/// What every handler shares.
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub config: ApiConfig,
    pub contexts: ld::ContextCache,
    pub http: reqwest::Client,
    pub started: Instant,
    pub tiles: tiles::TileCache,
    /// The traffic baseline and the scenario runs in progress.
    pub scenarios: scenarios::ScenarioState,
    /// Writes fanned out to `/api/events` clients.
    pub live: live::LiveFeed,
    /// The 15-minute city's cached results.
    pub access: access::AccessState,
    /// The MQTT ingestion's counters, when this node ingests.
    pub ingest: std::sync::OnceLock<Arc<twin_ingest::IngestStats>>,
    /// Connections for notifications to `mqtt://` and `mqtts://` endpoints.
    pub mqtt: twin_ingest::notify::MqttNotifier,
    /// The datasets and their policies, as of the store's configuration epoch.
    pub datasets: guard::DatasetCache,
    /// API keys with their accounts, per configuration epoch.
    pub keys: auth::KeyCache,
    /// Reads of non-public data, on their way to the store.
    pub usage: guard::UsageLog,
    /// The verifier of the identity provider's bearer tokens, when one is configured ([`AppState::with_jwt`]).
    pub jwt: Option<Arc<twin_auth::jwt::JwtVerifier>>,
    /// Consultations' per-account limits and cached views.
    pub participation: consultations::ParticipationState,
}

pub type SharedState = Arc<AppState>;

impl AppState {
    pub fn new(store: Arc<dyn Store>, config: ApiConfig) -> SharedState {
        AppState::with_jwt(store, config, None)
    }

    /// As [`AppState::new`], accepting the bearer tokens `jwt` verifies (the city's identity provider).
    pub fn with_jwt(
        store: Arc<dyn Store>,
        config: ApiConfig,
        jwt: Option<Arc<twin_auth::jwt::JwtVerifier>>,
    ) -> SharedState {
        let http = reqwest::Client::builder()
            .user_agent(concat!("urbantwin/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        let mqtt = twin_ingest::notify::MqttNotifier::new(config.mqtt_ca_file.clone());
        Arc::new(AppState {
            usage: guard::UsageLog::new(store.clone()),
            datasets: guard::DatasetCache::default(),
            keys: auth::KeyCache::default(),
            jwt,
            participation: consultations::ParticipationState::default(),
            store,
            tiles: tiles::TileCache::new(config.tile_cache_bytes),
            scenarios: scenarios::ScenarioState::new(&config.jobs),
            config,
            contexts: ld::ContextCache::default(),
            http,
            started: Instant::now(),
            live: live::LiveFeed::default(),
            access: access::AccessState::default(),
            ingest: std::sync::OnceLock::new(),
            mqtt,
        })
    }
}

/// The credit line for the data this server shows: `© owner (licence)` of every public dataset but the default one,
/// e.g. `© OpenStreetMap contributors (ODbL-1.0)`; used by OGC API Features, TileJSON and the style (which anyone
/// reads, so datasets not open to all are not named).
pub async fn attribution(store: &dyn Store) -> Result<String, twin_model::NgsiError> {
    let mut parts: Vec<String> = store
        .list_datasets()
        .await?
        .into_iter()
        .filter(|d| {
            d.id != twin_model::dataset::DEFAULT_DATASET
                && d.read == twin_model::dataset::Access::Public
        })
        .map(|d| format!("© {} ({})", d.owner, d.licence))
        .collect();
    parts.sort();
    parts.dedup();
    Ok(parts.join(" · "))
}

/// Who wrote a value: the source the request names (`X-Urbantwin-Source`), else the signed-in account (with its
/// key), else the client's `User-Agent`; and through which channel, into which dataset.
pub fn provenance(
    headers: &HeaderMap,
    principal: &twin_model::policy::Principal,
    channel: &str,
) -> Provenance {
    let text = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(200).collect::<String>())
    };
    let source = text(header::HeaderName::from_static("x-urbantwin-source"))
        .or_else(|| (!principal.is_anonymous()).then(|| guard::principal_label(principal)))
        .or_else(|| text(header::USER_AGENT));
    let dataset = headers
        .get("x-urbantwin-dataset")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    Provenance {
        dataset,
        source,
        channel: Some(channel.to_string()),
    }
}

/// Parses a JSON request body with a precise error.
pub fn parse_body(body: &Bytes) -> ApiResult<Value> {
    if body.is_empty() {
        return Err(ApiError::invalid("the request body is empty"));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid(format!("the request body is not valid JSON: {e}")))
}

/// A JSON response with the content type and context the client asked for.
pub fn json_response(
    status: StatusCode,
    body: Value,
    accept: ld::Accept,
    rc: &ld::RequestContext,
) -> Response {
    let mut headers = HeaderMap::new();
    let body = match accept {
        ld::Accept::JsonLd => {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/ld+json"),
            );
            with_context(body, rc.body_context())
        }
        ld::Accept::GeoJson => {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/geo+json"),
            );
            headers.insert(header::LINK, rc.link_header());
            body
        }
        ld::Accept::Json => {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            headers.insert(header::LINK, rc.link_header());
            body
        }
    };
    (status, headers, body.to_string()).into_response()
}

/// `201 Created` with a `Location` header.
pub fn created(location: &str) -> Response {
    let mut resp = StatusCode::CREATED.into_response();
    if let Ok(loc) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    resp
}

/// A path segment with every non-alphanumeric character percent-encoded (ids in Location headers).
pub fn path_segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn with_context(body: Value, ctx: Value) -> Value {
    match body {
        Value::Object(mut m) => {
            m.insert("@context".into(), ctx);
            Value::Object(m)
        }
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|i| with_context(i, ctx.clone()))
                .collect(),
        ),
        other => other,
    }
}

async fn health(State(state): State<SharedState>) -> Response {
    match state.store.get("urn:ngsi-ld:urbantwin:health-probe").await {
        Ok(_) => Json(json!({"status": "ok", "uptimeSeconds": state.started.elapsed().as_secs()}))
            .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "detail": e.detail})),
        )
            .into_response(),
    }
}

async fn version() -> Json<Value> {
    Json(json!({
        "name": "urbantwin",
        "version": env!("CARGO_PKG_VERSION"),
        "ngsiLd": {"specification": "ETSI GS CIM 009", "versions": ["1.8.1", "1.9.1"], "coreContext": twin_model::context::CORE_CONTEXT_URL},
    }))
}

/// What no route takes: the web app's files and pages, else a ProblemDetails 404.
async fn fallback(State(state): State<SharedState>, req: axum::extract::Request) -> Response {
    web::serve(state.config.web_dir.clone(), req).await
}

/// The whole HTTP application. Panics on an invalid `hardening.trusted_proxies` entry (`serve` checks it first,
/// see [`hardening::Hardening::new`]).
pub fn router(state: SharedState) -> Router {
    let limit = state.config.max_body_bytes;
    let hard = hardening::Hardening::new(state.config.hardening.clone(), &state.config.public_url)
        .expect("invalid hardening configuration");
    let ngsi = Router::new()
        .merge(entities::routes())
        .merge(batch::routes())
        .merge(types::routes())
        .merge(contexts::routes())
        .merge(temporal::routes())
        .merge(subscriptions::routes());
    Router::new()
        .nest("/ngsi-ld/v1", ngsi)
        .nest(
            "/api",
            datasets::routes()
                .merge(scenarios::routes())
                .merge(access::routes())
                .merge(air::routes())
                .merge(live::routes())
                .merge(ingest::routes())
                .merge(retention::routes())
                .merge(auth::routes())
                .merge(trust::routes())
                .merge(consultations::routes())
                .layer(public_reads()),
        )
        .nest("/ogc", ogc::routes().layer(public_reads()))
        .nest("/tiles", tiles::routes().layer(public_reads()))
        .merge(catalog::routes().layer(public_reads()))
        .route("/health", get(health))
        .route("/version", get(version))
        .route("/openapi.json", get(openapi::serve).layer(public_reads()))
        .fallback(fallback)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::map_response(body_limit_problem))
        // --- hardening, inner part: the time limit, then the rate limit
        .layer(axum::middleware::from_fn_with_state(
            hard.clone(),
            hardening::time_limit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            hard.clone(),
            hardening::rate_limit,
        ))
        // who is calling (anonymous without credentials; wrong credentials are a 401): outside the rate limit, so
        // that the `hardening::RateKey` it inserts keys the budget by identity; inside the headers and the trace
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::middleware,
        ))
        // gzip where the client accepts it (tiles, JSON, the app's assets shrink to a third); never event streams,
        // images or tiny bodies (tower-http's default predicate)
        .layer(tower_http::compression::CompressionLayer::new().gzip(true))
        // --- hardening, outer part: no secret in logs, security headers on every answer
        .layer(axum::middleware::map_response(
            hardening::mark_sensitive_response,
        ))
        .layer(
            tower_http::trace::TraceLayer::new_for_http()
                .make_span_with(hardening::RedactingMakeSpan),
        )
        .layer(axum::middleware::from_fn_with_state(
            hard,
            hardening::security_headers,
        ))
        .layer(axum::middleware::from_fn(hardening::mark_sensitive_request))
        .with_state(state)
}

/// Maps, GIS clients and web apps of any origin may read the OGC API, the tiles and `/api` (datasets, scenarios, runs
/// and results: public city data; access policies come with accounts): CORS for GET and HEAD, with the `ETag` and
/// `Location` readable. Writes stay same-origin: without accounts, allowing them cross-origin would let any web page
/// a visitor opens drive the twin.
fn public_reads() -> tower_http::cors::CorsLayer {
    use axum::http::Method;
    tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods([Method::GET, Method::HEAD])
        .allow_headers(tower_http::cors::Any)
        .expose_headers([header::ETAG, header::LOCATION])
}

/// Turns axum's plain-text 413 into a ProblemDetails body.
async fn body_limit_problem(resp: Response) -> Response {
    if resp.status() == StatusCode::PAYLOAD_TOO_LARGE
        && resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            != Some("application/json")
    {
        return ApiError::new(
            ErrorKind::PayloadTooLarge,
            "the request body is larger than the server accepts",
        )
        .into_response();
    }
    resp
}

/// Runs the server until `shutdown` resolves, then finishes in-flight requests. Starts the notification worker and,
/// unless the configuration says this node computes no runs, the worker that claims and computes scenario runs.
pub async fn serve(
    state: SharedState,
    addr: SocketAddr,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    serve_listener(state, listener, shutdown).await
}

/// As [`serve`], on a listener already bound (tests bind port 0).
pub async fn serve_listener(
    state: SharedState,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let worker = tokio::spawn(notify::run(state.clone()));
    let jobs = state
        .config
        .jobs
        .enabled
        .then(|| tokio::spawn(scenarios::work(state.clone())));
    // the tile layers' feature indexes are built now rather than on the first map's first tile
    let warm = tokio::spawn(tiles::warm(state.clone()));
    let retention = state
        .config
        .retention_interval
        .filter(|d| !d.is_zero())
        .map(|every| tokio::spawn(retention::run(state.clone(), every)));
    let state_for_shutdown = state.clone();
    let state_for_flush = state.clone();
    tracing::info!(addr = %listener.local_addr()?, "urbantwin listening");
    // clients such as ngsildclient post to `/entities/`: trailing slashes are trimmed before routing
    let app = tower::Layer::layer(
        &tower_http::normalize_path::NormalizePathLayer::trim_trailing_slash(),
        router(state),
    );
    let app = axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<
        SocketAddr,
    >(app);
    // open event streams would hold a graceful shutdown forever: they end when it starts
    let live = state_for_shutdown;
    let shutdown = async move {
        shutdown.await;
        live.live.stop();
    };
    let r = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    // the reads of the last moment reach the usage log before the process ends
    state_for_flush.usage.flush().await;
    worker.abort();
    warm.abort();
    // runs in progress stop; their leases run out and another node (or this one, restarted) computes them again
    if let Some(j) = jobs {
        j.abort();
    }
    if let Some(t) = retention {
        t.abort();
    }
    r
}
