//! Security hardening over real HTTP: security headers on every kind of answer, rate limits per client IP (through
//! trusted proxies) and per identity, the request time limit, 413 as ProblemDetails on every body-taking route, and
//! no secret in the logs.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::Value;
use twin_api::hardening::{HardeningConfig, RateKey};
use twin_api::{ApiConfig, AppState};

/// A server on a loopback port with `config` (its `public_url` kept when set); `identity` wraps the app in a layer
/// that, as an authentication layer would, keys requests with an `x-test-identity` header by that identity.
struct Srv {
    root: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
    _task: tokio::task::JoinHandle<()>,
}

async fn start(mut config: ApiConfig, identity: bool) -> Srv {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open_store(&dir.path().join("twin.db")).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    if config.public_url == ApiConfig::default().public_url {
        config.public_url = format!("http://{addr}");
    }
    let state = AppState::new(store, config);
    let task = if identity {
        let app = twin_api::router(state).layer(axum::middleware::from_fn(
            |mut req: axum::extract::Request, next: axum::middleware::Next| async move {
                if let Some(id) = req
                    .headers()
                    .get("x-test-identity")
                    .and_then(|v| v.to_str().ok())
                {
                    let id = RateKey(id.to_string());
                    req.extensions_mut().insert(id);
                }
                next.run(req).await
            },
        ));
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        })
    } else {
        tokio::spawn(async move {
            twin_api::serve_listener(state, listener, std::future::pending())
                .await
                .unwrap();
        })
    };
    Srv {
        root: format!("http://{addr}"),
        http: reqwest::Client::new(),
        _dir: dir,
        _task: task,
    }
}

fn limited(reads: f64, burst: u32) -> ApiConfig {
    ApiConfig {
        hardening: HardeningConfig {
            rate_limit_per_s: reads,
            rate_limit_burst: burst,
            write_rate_limit_per_s: reads,
            write_rate_limit_burst: burst,
            ..HardeningConfig::default()
        },
        ..ApiConfig::default()
    }
}

fn assert_security_headers(r: &reqwest::Response, what: &str) {
    let h = r.headers();
    assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
    assert_eq!(
        h["referrer-policy"], "strict-origin-when-cross-origin",
        "{what}"
    );
    assert_eq!(h["x-frame-options"], "DENY", "{what}");
    assert_eq!(h["cross-origin-opener-policy"], "same-origin", "{what}");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("worker-src 'self' blob:"),
        "{what}: {csp}"
    );
}

#[tokio::test]
async fn security_headers_on_api_tile_web_and_error_answers() {
    let web = tempfile::tempdir().unwrap();
    std::fs::write(
        web.path().join("index.html"),
        "<!doctype html><title>t</title>",
    )
    .unwrap();
    std::fs::create_dir(web.path().join("assets")).unwrap();
    std::fs::write(web.path().join("assets/app-1234.js"), "console.log(1)").unwrap();
    let s = start(
        ApiConfig {
            web_dir: Some(web.path().to_path_buf()),
            ..ApiConfig::default()
        },
        false,
    )
    .await;
    for path in [
        "/version",
        "/openapi.json",
        "/ngsi-ld/v1/entities?type=Building",
        "/ngsi-ld/v1/entities/urn:x:nothing",
        "/tiles",
        "/tiles/style.json",
        "/ogc/collections",
        "/",
        "/some/page",
        "/assets/app-1234.js",
    ] {
        let r = s
            .http
            .get(format!("{}{path}", s.root))
            .send()
            .await
            .unwrap();
        assert_security_headers(&r, path);
        assert!(
            r.headers().get("strict-transport-security").is_none(),
            "{path}"
        );
    }
}

#[tokio::test]
async fn hsts_only_when_the_public_url_is_https() {
    let s = start(
        ApiConfig {
            public_url: "https://twin.example.org".into(),
            ..ApiConfig::default()
        },
        false,
    )
    .await;
    let r = s
        .http
        .get(format!("{}/version", s.root))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["strict-transport-security"], "max-age=31536000");
    assert_security_headers(&r, "/version");
}

/// Sends GETs until one is refused; returns how many passed and the refusal.
async fn exhaust(s: &Srv, path: &str, headers: &[(&str, &str)]) -> (usize, reqwest::Response) {
    for n in 0..1000 {
        let mut rq = s.http.get(format!("{}{path}", s.root));
        for (k, v) in headers {
            rq = rq.header(*k, *v);
        }
        let r = rq.send().await.unwrap();
        if r.status() == 429 {
            return (n, r);
        }
        assert_eq!(r.status(), 200);
    }
    panic!("never limited");
}

async fn status(s: &Srv, method: reqwest::Method, path: &str, headers: &[(&str, &str)]) -> u16 {
    let mut rq = s.http.request(method, format!("{}{path}", s.root));
    for (k, v) in headers {
        rq = rq.header(*k, *v);
    }
    rq.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn bursts_beyond_the_budget_get_429_with_retry_after_and_recover() {
    let s = start(limited(2.0, 5), false).await;
    let (passed, r) = exhaust(&s, "/version", &[]).await;
    assert!((5..=6).contains(&passed), "{passed} passed");
    assert_security_headers(&r, "429");
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    assert_eq!(r.headers()["content-type"], "application/json");
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["status"], 429);
    assert_eq!(p["type"], "https://urbantwin.org/errors/TooManyRequests");
    assert!(p["detail"].as_str().unwrap().contains("retry after"));
    // writes have their own budget
    assert_ne!(
        status(
            &s,
            reqwest::Method::DELETE,
            "/ngsi-ld/v1/entities/urn:x:1",
            &[]
        )
        .await,
        429
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(status(&s, reqwest::Method::GET, "/version", &[]).await, 200);
}

#[tokio::test]
async fn forwarded_for_counts_only_from_trusted_proxies() {
    // untrusted: X-Forwarded-For is ignored, every request is the loopback peer's
    let s = start(limited(0.5, 3), false).await;
    exhaust(&s, "/version", &[("x-forwarded-for", "198.51.100.1")]).await;
    assert_eq!(
        status(
            &s,
            reqwest::Method::GET,
            "/version",
            &[("x-forwarded-for", "198.51.100.2")]
        )
        .await,
        429
    );
    // behind a trusted proxy each forwarded client has its own budget
    let mut c = limited(0.5, 3);
    c.hardening.trusted_proxies = vec!["127.0.0.0/8".into()];
    let s = start(c, false).await;
    exhaust(&s, "/version", &[("x-forwarded-for", "198.51.100.1")]).await;
    assert_eq!(
        status(
            &s,
            reqwest::Method::GET,
            "/version",
            &[("x-forwarded-for", "198.51.100.2")]
        )
        .await,
        200
    );
    // the client is the nearest untrusted hop; a spoofed first entry does not escape the budget
    assert_eq!(
        status(
            &s,
            reqwest::Method::GET,
            "/version",
            &[("x-forwarded-for", "203.0.113.9, 198.51.100.1")]
        )
        .await,
        429
    );
    // the proxy itself, without the header, is a client of its own
    assert_eq!(status(&s, reqwest::Method::GET, "/version", &[]).await, 200);
}

#[tokio::test]
async fn identities_have_their_own_budgets() {
    let s = start(limited(0.5, 3), true).await;
    exhaust(&s, "/version", &[("x-test-identity", "alice")]).await;
    assert_eq!(
        status(
            &s,
            reqwest::Method::GET,
            "/version",
            &[("x-test-identity", "bob")]
        )
        .await,
        200
    );
    // and the IP's budget is apart from both
    assert_eq!(status(&s, reqwest::Method::GET, "/version", &[]).await, 200);
    assert_eq!(
        status(
            &s,
            reqwest::Method::GET,
            "/version",
            &[("x-test-identity", "alice")]
        )
        .await,
        429
    );
}

#[tokio::test]
async fn zero_means_no_limit() {
    let s = start(limited(0.0, 1), false).await;
    for _ in 0..50 {
        assert_eq!(status(&s, reqwest::Method::GET, "/version", &[]).await, 200);
    }
}

#[tokio::test]
async fn a_request_over_the_time_limit_ends_with_503_problem_details() {
    let s = start(
        ApiConfig {
            hardening: HardeningConfig {
                request_timeout: Duration::from_millis(500),
                ..HardeningConfig::default()
            },
            ..ApiConfig::default()
        },
        false,
    )
    .await;
    // a client that stalls in the middle of its body keeps the handler waiting
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = s.root.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let started = std::time::Instant::now();
    tcp.write_all(
        format!(
            "POST /ngsi-ld/v1/entities HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             Content-Length: 100\r\nConnection: close\r\n\r\n{{\"id\": \"urn:x:1\","
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer))
        .await
        .expect("no answer within 5 s")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(4));
    let answer = String::from_utf8_lossy(&answer).to_lowercase();
    assert!(answer.starts_with("http/1.1 503"), "{answer}");
    assert!(
        answer.contains("x-content-type-options: nosniff"),
        "{answer}"
    );
    assert!(
        answer.contains("https://urbantwin.org/errors/requesttimeout"),
        "{answer}"
    );
    // the event stream is long-lived by design: still open after the limit
    let mut ev = s
        .http
        .get(format!("{}/api/events", s.root))
        .send()
        .await
        .unwrap();
    assert_eq!(ev.status(), 200);
    let more = tokio::time::timeout(Duration::from_millis(1200), ev.chunk()).await;
    assert!(
        !matches!(more, Ok(Ok(None)) | Ok(Err(_))),
        "the stream ended: {more:?}"
    );
}

#[tokio::test]
async fn every_body_taking_route_answers_413_as_problem_details() {
    let s = start(
        ApiConfig {
            max_body_bytes: 1000,
            ..ApiConfig::default()
        },
        false,
    )
    .await;
    let big = format!(
        "{{\"id\": \"urn:x:1\", \"type\": \"T\", \"pad\": \"{}\"}}",
        "x".repeat(5000)
    );
    let mut checked = 0;
    for op in twin_api::openapi::OPERATIONS {
        if op.body == twin_api::openapi::Body::None {
            continue;
        }
        let path: String = op
            .path
            .split('/')
            .map(|seg| {
                if seg.starts_with('{') {
                    "urn:ngsi-ld:T:1"
                } else {
                    seg
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let m = reqwest::Method::from_bytes(op.method.to_uppercase().as_bytes()).unwrap();
        let r = s
            .http
            .request(m, format!("{}{path}", s.root))
            .header("content-type", "application/json")
            .body(big.clone())
            .send()
            .await
            .unwrap();
        let what = format!("{} {}", op.method, op.path);
        assert_eq!(r.status(), 413, "{what}");
        assert_eq!(r.headers()["content-type"], "application/json", "{what}");
        let p: Value = r.json().await.unwrap();
        assert_eq!(
            p["type"], "https://uri.etsi.org/ngsi-ld/errors/PayloadTooLarge",
            "{what}"
        );
        checked += 1;
    }
    assert!(checked > 20, "{checked}");
}

/// The tracing output of this test binary.
fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let w = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("twin_api=trace,tower_http=trace")
            .with_ansi(false)
            .with_writer(move || Writer(w.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        buf
    })
}

struct Writer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Writer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn secrets_never_reach_the_logs() {
    let logs = logs();
    let s = start(ApiConfig::default(), false).await;
    for path in [
        "/version?api_key=SECRET-QUERY-1&token=SECRET-QUERY-2",
        "/ngsi-ld/v1/entities?type=Building&access_token=SECRET-QUERY-3",
        "/ngsi-ld/v1/entities/urn:x:1?apikey=SECRET-QUERY-4",
    ] {
        let r = s
            .http
            .get(format!("{}{path}", s.root))
            .header("authorization", "Bearer SECRET-HEADER-1")
            .header("cookie", "session=SECRET-HEADER-2")
            .header("x-api-key", "SECRET-HEADER-3")
            .send()
            .await
            .unwrap();
        let _ = r.text().await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).to_string();
    // the requests were logged (with their paths and the redacted parameters)...
    assert!(
        text.contains("/version?api_key=REDACTED&token=REDACTED"),
        "{text}"
    );
    assert!(text.contains("access_token=REDACTED"), "{text}");
    // ...without a secret
    assert!(!text.contains("SECRET"), "{text}");
}
