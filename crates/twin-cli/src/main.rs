//! The `urbantwin` command: `serve` runs the hub on a store, `demo` runs it with the bundled city loaded, `bench`
//! measures it. Configuration comes from flags, then `URBANTWIN_*` environment variables, then a TOML file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use clap::{Args, Parser, Subcommand};
use serde::Deserialize;
use twin_api::{ApiConfig, AppState};
use twin_store::{SqliteStore, Store, StoredContext};

mod access;
mod accounts;
mod air;
mod bench;
mod demo;
mod feed;
mod import;
mod retention;
mod traffic;

#[derive(Parser)]
#[command(
    name = "urbantwin",
    version,
    about = "urbantwin: an open-source local digital twin for cities"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the NGSI-LD hub and the twin's API on a store.
    Serve(ServeArgs),
    /// Run the demo twin: central Helsinki from OpenStreetMap (fetched once) in ./urbantwin-demo.db, then serve it.
    Demo(DemoArgs),
    /// Import a city data file into the store (one transaction: all or nothing).
    Import(import::ImportArgs),
    /// Measure the hub (prints a table; see docs/benchmarks.md).
    Bench(bench::BenchArgs),
    /// Retention and downsampling of temporal data: list, set, delete the policies, or apply them now.
    Retention(retention::RetentionArgs),
    /// Accounts, API keys and dataset access, directly on a store (the first administrator, scripts).
    Accounts(accounts::AccountsArgs),
    /// Traffic models: user-equilibrium assignment.
    Traffic(traffic::TrafficArgs),
    /// The 15-minute city: walking or cycling times from every home to daily needs, and their share within reach.
    Access(access::AccessArgs),
    /// Air quality (NO2, PM10, PM2.5) and road-traffic noise of the city's streets and homes under its traffic, and
    /// the change a traffic scenario makes.
    Air(air::AirArgs),
}

#[derive(Args, Clone, Default)]
pub struct ServeArgs {
    /// The store: a SQLite file path (default ./urbantwin.db).
    #[arg(long, env = "URBANTWIN_DB")]
    db: Option<String>,
    /// Address to listen on (default 127.0.0.1:1026).
    #[arg(long, env = "URBANTWIN_LISTEN")]
    listen: Option<SocketAddr>,
    /// A TOML configuration file (keys as the long flags, with underscores).
    #[arg(long, env = "URBANTWIN_CONFIG")]
    config: Option<PathBuf>,
    /// The URL clients reach this server at (default http://LISTEN).
    #[arg(long, env = "URBANTWIN_PUBLIC_URL")]
    public_url: Option<String>,
    /// Fetch @context URLs that are not built in, registered or preloaded (off by default: no network at run time).
    #[arg(long, env = "URBANTWIN_ALLOW_REMOTE_CONTEXTS")]
    allow_remote_contexts: Option<bool>,
    /// Preload a context document under its URL: URL=FILE (repeatable).
    #[arg(long = "preload-context", value_name = "URL=FILE")]
    preload_context: Vec<String>,
    /// Largest request body in bytes (default 8 MiB).
    #[arg(long, env = "URBANTWIN_MAX_BODY_BYTES")]
    max_body_bytes: Option<usize>,
    /// Largest page size a query may ask for (default 1000).
    #[arg(long, env = "URBANTWIN_MAX_LIMIT")]
    max_limit: Option<usize>,
    /// Memory for cached vector tiles, in MiB (default 256).
    #[arg(long, env = "URBANTWIN_TILE_CACHE_MB")]
    tile_cache_mb: Option<u64>,
    /// Log format: text or json (level from RUST_LOG, default info).
    #[arg(long, env = "URBANTWIN_LOG_FORMAT")]
    log_format: Option<String>,
    /// The built web app to serve at / (default: ./web/dist, else web/ next to the binary, when built).
    #[arg(long, env = "URBANTWIN_WEB_DIR")]
    web_dir: Option<PathBuf>,
    /// Ingest live data from an MQTT broker as this TOML file configures (broker, topics and their mapping; see
    /// docs/operations.md).
    #[arg(long, env = "URBANTWIN_INGEST")]
    ingest: Option<PathBuf>,
    /// Compute no scenario runs on this node: it only serves the API, and the runs it takes are computed by the
    /// other nodes on the same PostgreSQL database (config file: `jobs = false`).
    #[arg(long)]
    no_jobs: bool,
    /// Scenario runs this node computes at once (default 1: a city-sized run uses every core).
    #[arg(long, env = "URBANTWIN_MAX_RUNS")]
    max_runs: Option<usize>,
    /// Seconds a node holds a run it computes without renewing its lease; a run whose node died is computed again
    /// by another node once its lease ran out (default 30).
    #[arg(long, env = "URBANTWIN_RUN_LEASE_S")]
    run_lease_s: Option<f64>,
    /// Seconds between two runs of the retention policies (default 600; 0 = never, e.g. when cron runs
    /// `urbantwin retention apply`).
    #[arg(long, env = "URBANTWIN_RETENTION_EVERY_S")]
    retention_every_s: Option<u64>,
    /// The CA certificate(s) (PEM) that the brokers of `mqtts://` notification endpoints must be signed by
    /// (default: the machine's root certificates).
    #[arg(long, env = "URBANTWIN_MQTT_CA_FILE")]
    mqtt_ca_file: Option<PathBuf>,
    /// Reads (GET, HEAD, OPTIONS) per second a client (IP address, or identity) may make, sustained (default 1000;
    /// 0 = no limit).
    #[arg(long, env = "URBANTWIN_RATE_LIMIT")]
    rate_limit: Option<f64>,
    /// Reads a client may make at once beyond the sustained rate (default 2000).
    #[arg(long, env = "URBANTWIN_RATE_BURST")]
    rate_burst: Option<u32>,
    /// Writes per second a client may make, sustained (default 500; 0 = no limit).
    #[arg(long, env = "URBANTWIN_WRITE_RATE_LIMIT")]
    write_rate_limit: Option<f64>,
    /// Writes a client may make at once beyond the sustained rate (default 1000).
    #[arg(long, env = "URBANTWIN_WRITE_RATE_BURST")]
    write_rate_burst: Option<u32>,
    /// Seconds a request may take before it ends with 503 (default 60; event streams aside; 0 = no limit).
    #[arg(long, env = "URBANTWIN_REQUEST_TIMEOUT_S")]
    request_timeout_s: Option<f64>,
    /// A reverse proxy (IP address or CIDR range) whose X-Forwarded-For names the client for rate limits
    /// (repeatable; environment: comma separated).
    #[arg(
        long = "trusted-proxy",
        env = "URBANTWIN_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    trusted_proxy: Vec<String>,
}

#[derive(Args, Clone, Default)]
pub struct DemoArgs {
    #[command(flatten)]
    serve: ServeArgs,
    /// Run the demo on this OpenStreetMap extract (PBF or XML) instead of central Helsinki.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Where the fetched demo data is kept (default $URBANTWIN_CACHE, else ~/.cache/urbantwin).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Build the demo store and exit without serving it.
    #[arg(long)]
    prepare: bool,
    /// Keep the demo sensors alive: publish generated readings to this MQTT broker (e.g. mqtt://127.0.0.1:1883)
    /// and ingest them back, as a city's sensors are (labelled as generated).
    #[arg(long, value_name = "URL")]
    feed: Option<String>,
    /// Seconds between two readings of the demo feed.
    #[arg(long, default_value_t = 5)]
    feed_every_s: u64,
    /// Do not put the sample consultation (Fabianinkatu) before the public.
    #[arg(long)]
    no_consultation: bool,
}

/// The TOML configuration file.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    db: Option<String>,
    listen: Option<SocketAddr>,
    public_url: Option<String>,
    allow_remote_contexts: Option<bool>,
    #[serde(default)]
    preload_context: Vec<String>,
    max_body_bytes: Option<usize>,
    max_limit: Option<usize>,
    tile_cache_mb: Option<u64>,
    log_format: Option<String>,
    web_dir: Option<PathBuf>,
    ingest: Option<PathBuf>,
    jobs: Option<bool>,
    max_runs: Option<usize>,
    run_lease_s: Option<f64>,
    retention_every_s: Option<u64>,
    mqtt_ca_file: Option<PathBuf>,
    rate_limit: Option<f64>,
    rate_burst: Option<u32>,
    write_rate_limit: Option<f64>,
    write_rate_burst: Option<u32>,
    request_timeout_s: Option<f64>,
    #[serde(default)]
    trusted_proxies: Vec<String>,
    /// Whether anyone may create a citizen account (default true).
    open_registration: Option<bool>,
    /// Hours a session lasts (default 12).
    session_hours: Option<f64>,
    /// Whether callers without an account may subscribe (default false).
    anonymous_subscriptions: Option<bool>,
    /// The city's identity provider (OpenID Connect): its bearer tokens are accepted.
    oidc: Option<twin_auth::jwt::OidcConfig>,
    /// A folder where e-mail (address verification codes) is written for the mail system to send.
    mail_outbox: Option<PathBuf>,
    /// The `From` of that e-mail.
    mail_from: Option<String>,
}

/// Settings after flags, environment and file are merged.
pub struct Settings {
    pub db: String,
    pub listen: SocketAddr,
    pub api: ApiConfig,
    pub preload: Vec<(String, PathBuf)>,
    pub log_json: bool,
    /// MQTT ingestion, when configured.
    pub ingest: Option<twin_ingest::IngestConfig>,
}

impl ServeArgs {
    /// The rate limits, time limit and trusted proxies from flags, environment and file.
    fn hardening(
        &self,
        h: &mut twin_api::hardening::HardeningConfig,
        file: &FileConfig,
    ) -> Result<()> {
        let rate = |name: &str, v: Option<f64>| -> Result<Option<f64>> {
            match v {
                Some(r) if !(r.is_finite() && r >= 0.0) => {
                    bail!("{name} must be a number of requests per second (0 = no limit), not {r}")
                }
                other => Ok(other),
            }
        };
        if let Some(r) = rate("rate_limit", self.rate_limit.or(file.rate_limit))? {
            h.rate_limit_per_s = r;
        }
        if let Some(r) = rate(
            "write_rate_limit",
            self.write_rate_limit.or(file.write_rate_limit),
        )? {
            h.write_rate_limit_per_s = r;
        }
        if let Some(b) = self.rate_burst.or(file.rate_burst) {
            h.rate_limit_burst = b;
        }
        if let Some(b) = self.write_rate_burst.or(file.write_rate_burst) {
            h.write_rate_limit_burst = b;
        }
        if let Some(s) = self.request_timeout_s.or(file.request_timeout_s) {
            if !(s.is_finite() && (0.0..=86_400.0).contains(&s)) {
                bail!("request_timeout_s must be a number of seconds from 0 to 86400, not {s}");
            }
            h.request_timeout = Duration::from_secs_f64(s);
        }
        h.trusted_proxies = self
            .trusted_proxy
            .iter()
            .chain(file.trusted_proxies.iter())
            .filter(|s| !s.trim().is_empty())
            .cloned()
            .collect();
        Ok(())
    }

    fn settings(&self, default_db: &str) -> Result<Settings> {
        let file: FileConfig = match &self.config {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read {}", p.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("invalid configuration file {}", p.display()))?
            }
            None => FileConfig::default(),
        };
        let mut hardening = twin_api::hardening::HardeningConfig::default();
        self.hardening(&mut hardening, &file)?;
        let listen = self
            .listen
            .or(file.listen)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 1026)));
        let mut api = ApiConfig {
            public_url: self
                .public_url
                .clone()
                .or(file.public_url)
                .unwrap_or_else(|| format!("http://{listen}")),
            allow_remote_contexts: self
                .allow_remote_contexts
                .or(file.allow_remote_contexts)
                .unwrap_or(false),
            ..ApiConfig::default()
        };
        if let Some(n) = self.max_body_bytes.or(file.max_body_bytes) {
            api.max_body_bytes = n;
        }
        if let Some(n) = self.max_limit.or(file.max_limit) {
            api.max_limit = n;
        }
        if let Some(mb) = self.tile_cache_mb.or(file.tile_cache_mb) {
            api.tile_cache_bytes = mb << 20;
        }
        if let Some(s) = self.retention_every_s.or(file.retention_every_s) {
            api.retention_interval = (s > 0).then(|| Duration::from_secs(s));
        }
        api.web_dir = match self.web_dir.clone().or(file.web_dir) {
            Some(dir) if twin_api::web::is_built(&dir) => Some(dir),
            Some(dir) => bail!(
                "{} holds no built web app (no index.html): build it with `npm ci --prefix web && npm run build \
                 --prefix web`",
                dir.display()
            ),
            None => default_web_dir(),
        };
        if self.no_jobs || file.jobs == Some(false) {
            api.jobs.enabled = false;
        }
        if let Some(n) = self.max_runs.or(file.max_runs) {
            if n == 0 {
                bail!(
                    "max_runs must be at least 1 (use --no-jobs for a node that computes no runs)"
                );
            }
            api.jobs.max_concurrent = n;
        }
        if let Some(s) = self.run_lease_s.or(file.run_lease_s) {
            if !(s.is_finite() && (0.1..=86_400.0).contains(&s)) {
                bail!("run_lease_s must be a number of seconds from 0.1 to 86400, not {s}");
            }
            api.jobs.lease = Duration::from_secs_f64(s);
        }
        if let Some(ca) = self.mqtt_ca_file.clone().or(file.mqtt_ca_file) {
            // read now, so that a wrong file stops the start rather than every mqtts:// notification
            twin_ingest::tls::client_config(twin_ingest::tls::TlsFiles {
                ca_file: Some(&ca),
                ..Default::default()
            })
            .map_err(|e| anyhow::anyhow!("mqtt_ca_file: {e}"))?;
            api.mqtt_ca_file = Some(ca);
        }
        if let Some(open) = file.open_registration {
            api.auth.open_registration = open;
        }
        if let Some(open) = file.anonymous_subscriptions {
            api.auth.anonymous_subscriptions = open;
        }
        if let Some(dir) = file.mail_outbox {
            api.mail_outbox = Some(dir);
        }
        if let Some(from) = file.mail_from {
            api.mail_from = from;
        }
        if let Some(h) = file.session_hours {
            if !(h.is_finite() && (0.01..=24.0 * 90.0).contains(&h)) {
                bail!("session_hours must be from 0.01 to 2160, not {h}");
            }
            api.auth.session_ttl = Duration::from_secs_f64(h * 3600.0);
        }
        api.auth.oidc = file.oidc;
        api.hardening = hardening;
        twin_api::hardening::Hardening::new(api.hardening.clone(), &api.public_url)
            .map_err(|e| anyhow::anyhow!(e))?;
        let mut preload = Vec::new();
        for spec in self
            .preload_context
            .iter()
            .chain(file.preload_context.iter())
        {
            let Some((url, path)) = spec.split_once('=') else {
                bail!("--preload-context takes URL=FILE, got {spec:?}");
            };
            preload.push((url.to_string(), PathBuf::from(path)));
        }
        let log_format = self
            .log_format
            .clone()
            .or(file.log_format)
            .unwrap_or_else(|| "text".into());
        if !matches!(log_format.as_str(), "text" | "json") {
            bail!("log format must be text or json, not {log_format:?}");
        }
        let ingest = match self.ingest.clone().or(file.ingest) {
            Some(p) => Some(twin_ingest::IngestConfig::from_file(&p)?),
            None => None,
        };
        Ok(Settings {
            ingest,
            db: self
                .db
                .clone()
                .or(file.db)
                .unwrap_or_else(|| default_db.to_string()),
            listen,
            api,
            preload,
            log_json: log_format == "json",
        })
    }
}

/// The web app when none is named: `web/dist` under the working directory (a checkout), else `web/` next to the
/// binary (an installation), if built.
fn default_web_dir() -> Option<PathBuf> {
    let checkout = PathBuf::from("web/dist");
    let installed = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("web")));
    std::iter::once(checkout)
        .chain(installed)
        .find(|d| twin_api::web::is_built(d))
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=warn"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        b.json().init();
    } else {
        b.init();
    }
}

/// Opens the store named by `db`.
/// Every entity of the given types (Smart Data Models names) in a store: the inputs the models read.
pub fn store_entities(db: &str, types: &[&str]) -> Result<Vec<twin_model::Entity>> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let store = open_store(db).await?;
        let types = types
            .iter()
            .map(|t| {
                twin_model::query::TypeExpr::Type(format!(
                    "{}{t}",
                    twin_model::entity::iri::DEFAULT_CONTEXT
                ))
            })
            .collect();
        let q = twin_store::EntityQuery {
            types: Some(twin_model::query::TypeExpr::Or(types)),
            limit: usize::MAX,
            ..Default::default()
        };
        let page = store
            .query(&q)
            .await
            .map_err(|e| anyhow::anyhow!("cannot read {db}: {e}"))?;
        Ok(page.entities)
    })
}

/// Opens the store named by `db`: `postgres://…` (or `postgresql://…`) for PostgreSQL, migrating it at start-up,
/// else a SQLite file path (optionally `sqlite://PATH`).
pub async fn open_store(db: &str) -> Result<Arc<dyn Store>> {
    if db.starts_with("postgres://") || db.starts_with("postgresql://") {
        let store = twin_store::PostgresStore::connect(db)
            .await
            .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", redact(db)))?;
        return Ok(Arc::new(store));
    }
    let path = db.strip_prefix("sqlite://").unwrap_or(db);
    Ok(Arc::new(
        SqliteStore::open(path).map_err(|e| anyhow::anyhow!("{e}"))?,
    ))
}

/// A database URL with its password replaced, for messages and logs.
pub fn redact(db: &str) -> String {
    match (db.find("://"), db.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &db[s + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &db[..s + 3], &db[at..]),
                None => db.to_string(),
            }
        }
        _ => db.to_string(),
    }
}

async fn preload_contexts(store: &Arc<dyn Store>, preload: &[(String, PathBuf)]) -> Result<()> {
    for (url, path) in preload {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read context file {}", path.display()))?;
        let doc: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        if doc.get("@context").is_none() {
            bail!("{} has no @context member", path.display());
        }
        if let Err(twin_model::context::ContextError::Invalid(m)) =
            twin_model::Context::build(&doc["@context"], &|_| None)
        {
            bail!("{} is not a valid JSON-LD context: {m}", path.display());
        }
        store
            .put_context(StoredContext {
                id: twin_api::ld::context_id_for(url),
                url: url.clone(),
                kind: "Cached".into(),
                document: doc,
                created_at: chrono::Utc::now(),
                last_usage: None,
                number_of_hits: 0,
            })
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        tracing::info!(%url, file = %path.display(), "preloaded @context");
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

/// Starts the server with the given settings and store until a shutdown signal.
pub async fn run_server(settings: Settings, store: Arc<dyn Store>) -> Result<()> {
    preload_contexts(&store, &settings.preload).await?;
    if store
        .get_dataset(twin_model::dataset::DEFAULT_DATASET)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .is_none()
    {
        let mut d = twin_model::Dataset::default_dataset();
        d.created_at = Some(chrono::Utc::now());
        // safe default: nothing is writable without signing in until an administrator opens it
        // (`urbantwin accounts access --write public`)
        d.write = twin_model::dataset::Access::Registered;
        store
            .put_dataset(d)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    match &settings.api.web_dir {
        Some(dir) => tracing::info!(dir = %dir.display(), "serving the web app"),
        None => tracing::info!("no built web app found: serving the API alone"),
    }
    // the identity provider's keys are read now: a wrong issuer setting stops the start, not every request
    let jwt = match &settings.api.auth.oidc {
        Some(cfg) => {
            let http = reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .timeout(Duration::from_secs(10))
                .build()?;
            let v = twin_auth::jwt::JwtVerifier::new(cfg.clone(), http)
                .await
                .map_err(|e| anyhow::anyhow!("oidc: {e}"))?;
            tracing::info!(issuer = %cfg.issuer, "accepting the identity provider's bearer tokens");
            Some(Arc::new(v))
        }
        None => None,
    };
    let state = AppState::with_jwt(store.clone(), settings.api, jwt);
    // the ingestion runs as long as the server; dropping it at the end stops it
    let _ingest = match settings.ingest {
        Some(cfg) => {
            // every value belongs to a dataset with an owner, a licence and policies: a topic cannot write to one
            // that was never declared
            for t in &cfg.topics {
                if let Some(d) = &t.dataset {
                    if store
                        .get_dataset(d)
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}"))?
                        .is_none()
                    {
                        bail!(
                            "topic {} writes to dataset {d}, which is not declared: declare it with its owner, licence \
                             and policies (`urbantwin accounts access {d} --owner NAME --licence SPDX --db ...`, or \
                             POST /api/datasets)",
                            t.filter
                        );
                    }
                }
            }
            let topics = cfg.topics.len();
            let url = cfg.broker.url.clone();
            let ingest = twin_ingest::start(cfg, store).await?;
            let _ = state.ingest.set(ingest.stats.clone());
            tracing::info!(broker = %url, topics, "ingesting MQTT");
            Some(ingest)
        }
        None => None,
    };
    twin_api::serve(state, settings.listen, shutdown_signal())
        .await
        .with_context(|| format!("cannot serve on {}", settings.listen))?;
    Ok(())
}

/// A task stopped when its handle goes.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn main() {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("urbantwin: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    let outcome = dispatch(cli.command, &rt);
    // let background tasks wind down
    rt.shutdown_timeout(Duration::from_secs(2));
    if let Err(e) = outcome {
        // one line for people; the exit status for scripts
        eprintln!("urbantwin: {e:#}");
        std::process::exit(1);
    }
}

fn dispatch(command: Command, rt: &tokio::runtime::Runtime) -> Result<()> {
    match command {
        Command::Serve(args) => {
            let s = args.settings("./urbantwin.db")?;
            init_logging(s.log_json);
            rt.block_on(async {
                let store = open_store(&s.db).await?;
                tracing::info!(db = %redact(&s.db), "store opened");
                run_server(s, store).await
            })
        }
        Command::Demo(args) => {
            let mut s = args.serve.settings("./urbantwin-demo.db")?;
            init_logging(s.log_json);
            if let Some(broker) = &args.feed {
                if s.ingest.is_some() {
                    bail!("--feed and --ingest both configure the ingestion; give one");
                }
                s.ingest = Some(feed::ingest_config(broker)?);
            }
            let pbf = match &args.data {
                Some(f) => f.clone(),
                None => demo::helsinki_pbf(&demo::cache_dir(args.cache_dir.as_deref()))?,
            };
            rt.block_on(async {
                let store = open_store(&s.db).await?;
                let (total, sensors) = demo::build_city(&store, &pbf, &s.db).await?;
                println!(
                    "urbantwin demo: {total} city entities from {} and {sensors} generated sensors in {}",
                    pbf.display(),
                    s.db
                );
                println!("map data {}", demo::OSM_ATTRIBUTION);
                if args.prepare {
                    return Ok(());
                }
                match &s.api.web_dir {
                    Some(_) => println!("the twin on a map: http://{}/", s.listen),
                    None => println!(
                        "(no web app: build it with `npm ci --prefix web && npm run build --prefix web`, or run \
                         ./scripts/demo)"
                    ),
                }
                println!(
                    "NGSI-LD: http://{0}/ngsi-ld/v1/entities?type=Building   OGC API Features: http://{0}/ogc\n\
                     vector tiles: http://{0}/tiles   MapLibre style: http://{0}/tiles/style.json",
                    s.listen
                );
                // people sign in to edit scenarios and to see who used their data: demo accounts, new passwords
                // at every start (anyone may also sign up as a citizen in the web app)
                let accounts = demo::demo_accounts(&store).await?;
                println!(
                    "sign in (new passwords at every start): {}",
                    accounts
                        .iter()
                        .map(|(id, pw)| format!("{id} / {pw}"))
                        .collect::<Vec<_>>()
                        .join("   ")
                );
                // e-mail codes land in a folder next to the demo's database
                if s.api.mail_outbox.is_none() {
                    let dir = std::path::Path::new(&s.db)
                        .parent()
                        .filter(|p| !p.as_os_str().is_empty())
                        .unwrap_or(std::path::Path::new("."))
                        .join("urbantwin-demo-outbox");
                    println!("e-mail (address codes) is written to {}", dir.display());
                    s.api.mail_outbox = Some(dir);
                }
                // a sample consultation, put before the public through the API once the server listens
                let _seed = if args.no_consultation {
                    None
                } else {
                    if s.api.web_dir.is_some() {
                        println!(
                            "a consultation to take part in: http://{}/?consultation={}",
                            s.listen,
                            demo::CONSULTATION_ID
                        );
                    }
                    let base = format!("http://{}", s.listen);
                    let store = store.clone();
                    Some(AbortOnDrop(tokio::spawn(async move {
                        if let Err(e) = demo::seed_consultation(store, base).await {
                            tracing::warn!("the sample consultation could not be made: {e:#}");
                        }
                    })))
                };
                // the feed publishes for as long as the server runs
                let _feed = match &args.feed {
                    Some(broker) => {
                        feed::declare_dataset(&store).await?;
                        println!(
                            "live demo sensors: generated readings every {} s through {broker} (dataset {})",
                            args.feed_every_s,
                            feed::FEED_DATASET
                        );
                        Some(AbortOnDrop(tokio::spawn(feed::publish_forever(
                            broker.clone(),
                            Duration::from_secs(args.feed_every_s.max(1)),
                        ))))
                    }
                    None => None,
                };
                run_server(s, store).await
            })
        }
        Command::Import(args) => {
            init_logging(false);
            rt.block_on(import::run(args))
        }
        Command::Bench(args) => rt.block_on(bench::run(args)),
        Command::Retention(args) => rt.block_on(retention::run(args)),
        Command::Accounts(args) => rt.block_on(accounts::run(args)),
        Command::Traffic(args) => traffic::run(args),
        Command::Access(args) => access::run(args),
        Command::Air(args) => air::run(args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_and_defaults_fill_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("urbantwin.toml");
        std::fs::write(
            &file,
            "db = \"file.db\"\nlisten = \"127.0.0.1:2000\"\nmax_limit = 50\ntile_cache_mb = 64\npreload_context = [\"http://x/c=ctx.jsonld\"]\n",
        )
        .unwrap();
        let args = ServeArgs {
            db: Some("flag.db".into()),
            config: Some(file.clone()),
            ..Default::default()
        };
        let s = args.settings("default.db").unwrap();
        assert_eq!(s.db, "flag.db");
        assert_eq!(s.listen, "127.0.0.1:2000".parse().unwrap());
        assert_eq!(s.api.max_limit, 50);
        assert_eq!(s.api.tile_cache_bytes, 64 << 20);
        assert_eq!(s.api.public_url, "http://127.0.0.1:2000");
        assert!(!s.api.allow_remote_contexts);
        assert_eq!(
            s.preload,
            vec![("http://x/c".to_string(), PathBuf::from("ctx.jsonld"))]
        );
        assert!(!s.log_json);

        let s = ServeArgs::default().settings("default.db").unwrap();
        assert_eq!((s.db.as_str(), s.listen.port()), ("default.db", 1026));
    }

    #[test]
    fn jobs_are_configured_by_flags_or_the_file() {
        let s = ServeArgs::default().settings("default.db").unwrap();
        assert!(s.api.jobs.enabled);
        assert_eq!(s.api.jobs.max_concurrent, 1);
        let no_jobs = ServeArgs {
            no_jobs: true,
            ..Default::default()
        };
        assert!(!no_jobs.settings("d.db").unwrap().api.jobs.enabled);

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("urbantwin.toml");
        std::fs::write(&file, "jobs = false\nmax_runs = 2\nrun_lease_s = 5\n").unwrap();
        let from_file = ServeArgs {
            config: Some(file.clone()),
            ..Default::default()
        };
        let s = from_file.settings("d.db").unwrap();
        assert!(!s.api.jobs.enabled);
        assert_eq!(s.api.jobs.max_concurrent, 2);
        assert_eq!(s.api.jobs.lease, Duration::from_secs(5));
        let flags = ServeArgs {
            config: Some(file),
            max_runs: Some(3),
            run_lease_s: Some(0.5),
            ..Default::default()
        };
        let s = flags.settings("d.db").unwrap();
        assert_eq!(s.api.jobs.max_concurrent, 3);
        assert_eq!(s.api.jobs.lease, Duration::from_millis(500));
        for bad in [
            ServeArgs {
                max_runs: Some(0),
                ..Default::default()
            },
            ServeArgs {
                run_lease_s: Some(f64::NAN),
                ..Default::default()
            },
        ] {
            assert!(bad.settings("d.db").is_err());
        }
    }

    #[test]
    fn bad_configuration_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "dbb = \"typo.db\"\n").unwrap();
        let args = ServeArgs {
            config: Some(file),
            ..Default::default()
        };
        let err = format!("{:#}", args.settings("x").err().unwrap());
        assert!(err.contains("unknown field"), "{err}");
        let args = ServeArgs {
            preload_context: vec!["no-equals-sign".into()],
            ..Default::default()
        };
        assert!(args.settings("x").is_err());
        let args = ServeArgs {
            log_format: Some("xml".into()),
            ..Default::default()
        };
        assert!(args.settings("x").is_err());
        assert_eq!(
            redact("postgres://twin:secret@db.example:5432/twin"),
            "postgres://twin:***@db.example:5432/twin"
        );
        assert_eq!(redact("postgres://twin@db/twin"), "postgres://twin@db/twin");
        assert_eq!(redact("./urbantwin.db"), "./urbantwin.db");
        // a web app folder that holds no build
        let args = ServeArgs {
            web_dir: Some(dir.path().to_path_buf()),
            ..Default::default()
        };
        let err = format!("{:#}", args.settings("x").err().unwrap());
        assert!(err.contains("no built web app"), "{err}");
        std::fs::write(dir.path().join("index.html"), "<html></html>").unwrap();
        assert_eq!(
            args.settings("x").unwrap().api.web_dir.as_deref(),
            Some(dir.path())
        );
    }

    #[test]
    fn the_mqtt_ca_file_is_read_at_start() {
        let dir = tempfile::tempdir().unwrap();
        // a file without a certificate stops the start, naming the setting and the file
        let not_pem = dir.path().join("not-a-ca.pem");
        std::fs::write(&not_pem, "hello").unwrap();
        let args = ServeArgs {
            mqtt_ca_file: Some(not_pem),
            ..Default::default()
        };
        let err = format!("{:#}", args.settings("x").err().unwrap());
        assert!(
            err.contains("mqtt_ca_file") && err.contains("not-a-ca.pem"),
            "{err}"
        );
        let args = ServeArgs {
            mqtt_ca_file: Some(dir.path().join("missing.pem")),
            ..Default::default()
        };
        assert!(args.settings("x").is_err());
        assert_eq!(
            ServeArgs::default().settings("x").unwrap().api.mqtt_ca_file,
            None
        );
    }
}
