//! Test harness: the real server on a loopback port over a real store, and a reqwest client. The store is a SQLite
//! file, or with `URBANTWIN_TEST_STORE=postgres` a fresh PostgreSQL database (`scripts/test` runs the NGSI-LD tests
//! both ways).
#![allow(dead_code)]

pub mod grid;

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::oneshot;
use twin_api::{ApiConfig, AppState};
use twin_store::{SqliteStore, Store};

pub const CORE: &str = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld";

/// True when the tests run on PostgreSQL (`URBANTWIN_TEST_STORE=postgres`).
pub fn on_postgres() -> bool {
    std::env::var("URBANTWIN_TEST_STORE").as_deref() == Ok("postgres")
}

/// The PostgreSQL databases standing in for SQLite files, by file path, so that reopening a path (a restart, a
/// second process) opens the same data.
static PG_DATABASES: std::sync::Mutex<Vec<(PathBuf, String)>> = std::sync::Mutex::new(Vec::new());

/// Opens the store "at" `db`: the SQLite file, or on PostgreSQL the database made for that path on its first open.
pub async fn open_store(db: &std::path::Path) -> Arc<dyn Store> {
    if !on_postgres() {
        return Arc::new(SqliteStore::open(db).expect("open store"));
    }
    let known = PG_DATABASES
        .lock()
        .unwrap()
        .iter()
        .find(|(p, _)| p == db)
        .map(|(_, u)| u.clone());
    let url = match known {
        Some(u) => u,
        None => {
            let t = twin_store::testing::TestDatabase::create()
                .await
                .expect("URBANTWIN_TEST_STORE=postgres needs PostgreSQL (URBANTWIN_TEST_PG)");
            let url = t.url().to_string();
            // kept for the test binary's life; scripts/test drops the ut_* databases afterwards
            std::mem::forget(t);
            PG_DATABASES
                .lock()
                .unwrap()
                .push((db.to_path_buf(), url.clone()));
            url
        }
    };
    Arc::new(
        twin_store::PostgresStore::connect(&url)
            .await
            .expect("open the PostgreSQL store"),
    )
}

pub struct Server {
    pub base: String,
    pub http: reqwest::Client,
    pub store: Arc<dyn Store>,
    pub dir: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    pub async fn start() -> Server {
        Server::start_with(ApiConfig::default(), None).await
    }

    /// Starts a server; `dir` reuses a store directory (restart tests).
    pub async fn start_with(config: ApiConfig, dir: Option<tempfile::TempDir>) -> Server {
        Server::start_with_jwt(config, dir, None).await
    }

    /// As [`Server::start_with`], accepting the bearer tokens `jwt` verifies (an identity provider's).
    pub async fn start_with_jwt(
        mut config: ApiConfig,
        dir: Option<tempfile::TempDir>,
        jwt: Option<Arc<twin_auth::jwt::JwtVerifier>>,
    ) -> Server {
        let dir = dir.unwrap_or_else(|| tempfile::tempdir().expect("tempdir"));
        let store = open_store(&dir.path().join("twin.db")).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        config.public_url = format!("http://{addr}");
        let state = AppState::with_jwt(store.clone(), config, jwt);
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            twin_api::serve_listener(state, listener, async {
                let _ = rx.await;
            })
            .await
            .expect("serve");
        });
        Server {
            base: format!("http://{addr}/ngsi-ld/v1"),
            http: reqwest::Client::new(),
            store,
            dir,
            shutdown: Some(tx),
            handle: Some(handle),
        }
    }

    /// Stops the server and hands back its store directory.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            let _ = h.await;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        std::mem::replace(&mut self.dir, dir)
    }

    /// Creates an account with `roles` and returns an API key of it with `scopes` (`["admin"]` for an
    /// administrator's full powers), written straight to the store as `urbantwin accounts` does.
    pub async fn account_key(
        &self,
        id: &str,
        roles: &[&str],
        groups: &[&str],
        scopes: &[&str],
    ) -> String {
        self.member_key(id, roles, groups, scopes, None).await
    }

    /// As [`Server::account_key`], for an account of an organisation (which NGSI-LD tenants map to).
    pub async fn member_key(
        &self,
        id: &str,
        roles: &[&str],
        groups: &[&str],
        scopes: &[&str],
        organisation: Option<&str>,
    ) -> String {
        make_key(self.store.as_ref(), id, roles, groups, scopes, organisation).await
    }

    /// A client that sends an API key (read and write) of the account `id` with `roles` with every request.
    pub async fn client_of(&self, id: &str, roles: &[&str]) -> reqwest::Client {
        keyed_client(&self.account_key(id, roles, &[], &["read", "write"]).await)
    }

    /// A client that sends an administrator's API key with every request.
    pub async fn admin_client(&self) -> reqwest::Client {
        keyed_client(&self.admin_key().await)
    }

    /// An administrator's API key (account `admin`).
    pub async fn admin_key(&self) -> String {
        self.account_key("admin", &["admin"], &[], &["admin"]).await
    }

    /// The server's root URL (the NGSI-LD base without `/ngsi-ld/v1`), for the other APIs.
    pub fn root(&self) -> String {
        self.base.trim_end_matches("/ngsi-ld/v1").to_string()
    }

    /// GET `path` below the root (with its query), expecting 200 and JSON.
    pub async fn root_json(&self, path: &str) -> Value {
        let url = format!("{}{path}", self.root());
        json_call(&self.http, reqwest::Method::GET, &url, None, 200)
            .await
            .0
    }

    /// GET `path` below the root, expecting 200 and GeoJSON (`application/geo+json`).
    pub async fn root_geojson(&self, path: &str) -> Value {
        let r = self.root_get(path).await;
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["content-type"], "application/geo+json");
        r.json().await.unwrap()
    }

    /// GET `path` below the root, expecting ProblemDetails of `status` and `kind`; returns them.
    pub async fn root_problem(&self, path: &str, status: u16, kind: &str) -> Value {
        assert_problem(self.root_get(path).await, status, kind).await
    }

    /// GET `path` below the root.
    async fn root_get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.root()))
            .send()
            .await
            .unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("twin.db")
    }

    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("request")
    }

    pub async fn post_ld(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .header("Content-Type", "application/ld+json")
            .body(body.to_string())
            .send()
            .await
            .expect("request")
    }

    pub async fn patch(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .patch(self.url(path))
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("request")
    }

    pub async fn put(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .put(self.url(path))
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("request")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.expect("request")
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let r = self.get(path).await;
        let status = r.status();
        let text = r.text().await.expect("body");
        assert_eq!(status, 200, "GET {path}: {text}");
        serde_json::from_str(&text).expect("json")
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.http
            .delete(self.url(path))
            .send()
            .await
            .expect("request")
    }

    /// Link header value for a context URL.
    pub fn link(url: &str) -> String {
        format!(
            "<{url}>; rel=\"http://www.w3.org/ns/json-ld#context\"; type=\"application/ld+json\""
        )
    }
}

/// Creates an account (unless it exists) with `roles`, `groups` and `organisation`, and returns a new API key of it
/// with `scopes`, written straight to the store as `urbantwin accounts` does.
pub async fn make_key(
    store: &dyn Store,
    id: &str,
    roles: &[&str],
    groups: &[&str],
    scopes: &[&str],
    organisation: Option<&str>,
) -> String {
    let now = chrono::Utc::now();
    let a = twin_store::trust::Account {
        id: id.into(),
        display_name: None,
        email: None,
        password_hash: None,
        roles: roles.iter().map(|r| r.to_string()).collect(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        organisation: organisation.map(str::to_string),
        disabled: false,
        created_at: now,
        updated_at: now,
    };
    if store.get_account(id).await.unwrap().is_none() {
        store.put_account(a, true).await.unwrap();
    }
    let k = twin_auth::apikey::generate();
    store
        .put_api_key(twin_store::trust::ApiKeyRecord {
            id: k.id.clone(),
            account_id: id.into(),
            name: "test".into(),
            hash: k.hash.clone(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            created_at: now,
            expires_at: None,
            revoked_at: None,
            last_used_at: None,
        })
        .await
        .unwrap();
    k.secret
}

/// As [`make_key`], for an account of no organisation.
pub async fn account_key(
    store: &Arc<dyn Store>,
    id: &str,
    roles: &[&str],
    groups: &[&str],
    scopes: &[&str],
) -> String {
    make_key(store.as_ref(), id, roles, groups, scopes, None).await
}

/// A client that sends an API key with every request (`Authorization: Bearer <key>`).
pub fn keyed_client(key: &str) -> reqwest::Client {
    let mut h = reqwest::header::HeaderMap::new();
    h.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {key}").parse().unwrap(),
    );
    reqwest::Client::builder()
        .default_headers(h)
        .build()
        .unwrap()
}

/// Asserts a ProblemDetails response of the given status and NGSI-LD error type.
pub async fn assert_problem(r: reqwest::Response, status: u16, kind: &str) -> Value {
    let s = r.status().as_u16();
    let text = r.text().await.expect("body");
    assert_eq!(s, status, "expected {status} {kind}, got {s}: {text}");
    let v: Value = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("ProblemDetails JSON expected: {text}"));
    assert_eq!(
        v["type"],
        format!("https://uri.etsi.org/ngsi-ld/errors/{kind}"),
        "{text}"
    );
    assert_eq!(v["status"], status, "{text}");
    assert!(
        v["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{text}"
    );
    v
}

/// The shared reference data directory, when present (always in CI).
pub fn shared_data() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    if p.is_dir() {
        Some(p)
    } else if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "CI=true but the shared data directory {} is missing",
            p.display()
        );
    } else {
        eprintln!("skipping: shared data directory {} not found", p.display());
        None
    }
}

/// Imports the Helsinki extract straight into the store (what `urbantwin import osm` does, without the CLI).
pub async fn import_helsinki(store: &Arc<dyn Store>, data: &std::path::Path) -> usize {
    let mut entities = Vec::new();
    let prov = twin_model::Provenance::default();
    twin_import::osm::read_osm(&data.join("osm/helsinki.osm.pbf"), &mut |item| {
        match item {
            twin_import::osm::OsmItem::Entity(e) => entities.push(e),
            twin_import::osm::OsmItem::Link(l) => entities.push(
                l.to_entity(chrono::Utc::now(), &prov)
                    .map_err(|e| twin_import::ImportError::new("helsinki", "link", e.detail))?,
            ),
            twin_import::osm::OsmItem::Node(..) => {}
        }
        Ok(())
    })
    .expect("read the extract");
    let n = entities.len();
    let batch = entities
        .into_iter()
        .map(|e| (e.id.clone(), twin_store::store_as_is(e)))
        .collect();
    for r in store.write_batch(batch).await.expect("write") {
        r.map_err(|e: twin_model::NgsiError| e.detail)
            .expect("entity written");
    }
    n
}

/// Sends `method url` with an optional JSON body and checks the status (the body is in the failure message);
/// returns the body as JSON (Null when empty) and the `Location` header.
pub async fn json_call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<&Value>,
    status: u16,
) -> (Value, Option<String>) {
    let mut req = http.request(method.clone(), url);
    if let Some(b) = body {
        req = req
            .header("Content-Type", "application/json")
            .body(b.to_string());
    }
    let r = req.send().await.expect("request");
    let st = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .map(String::from);
    let text = r.text().await.expect("body");
    assert_eq!(st, status, "{method} {url}: {text}");
    let v = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
    };
    (v, location)
}

/// A vector tile feature's properties, decoded.
pub fn mvt_props(
    l: &twin_tiles::mvt::Layer,
    f: &twin_tiles::mvt::Feature,
) -> std::collections::BTreeMap<String, Value> {
    f.tags
        .chunks(2)
        .map(|kv| {
            let v = &l.values[kv[1] as usize];
            let value = if let Some(s) = &v.string_value {
                serde_json::json!(s)
            } else if let Some(d) = v.double_value {
                serde_json::json!(d)
            } else if let Some(u) = v.uint_value {
                serde_json::json!(u)
            } else if let Some(i) = v.sint_value {
                serde_json::json!(i)
            } else if let Some(b) = v.bool_value {
                serde_json::json!(b)
            } else {
                Value::Null
            };
            (l.keys[kv[0] as usize].clone(), value)
        })
        .collect()
}

/// MapLibre's own validator (installed by scripts/test into tests/js) accepts the style; skipped with a printed
/// reason when it is not installed, unless CI=true.
pub fn assert_valid_style(style: &Value) {
    let validator = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/js/node_modules/.bin/gl-style-validate");
    if !validator.exists() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "CI=true but {} is missing (npm ci --prefix tests/js)",
                validator.display()
            );
        }
        eprintln!("skipping the style validation: run `npm ci --prefix tests/js` first");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("style.json");
    std::fs::write(&file, style.to_string()).unwrap();
    let out = std::process::Command::new(&validator)
        .arg(&file)
        .output()
        .expect("run gl-style-validate");
    assert!(
        out.status.success() && out.stdout.is_empty(),
        "the style does not validate: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
