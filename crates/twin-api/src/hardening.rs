//! Security hardening around every route: security headers, rate limits per client (IP, or identity once the auth
//! layer names one), a time limit per request, and logs that never hold secrets.
//!
//! Order in [`crate::router`] (outermost first): sensitive request headers marked → security headers → trace (URI
//! with secret query parameters redacted) → sensitive response headers marked → compression → *(the auth layer goes
//! here: it inserts a [`RateKey`] for the identity it authenticated)* → rate limit → time limit → the routes.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The settings of the hardening layers ([`crate::ApiConfig::hardening`]).
#[derive(Debug, Clone)]
pub struct HardeningConfig {
    /// Sustained reads (GET, HEAD, OPTIONS) per second and client key; 0 = no limit.
    pub rate_limit_per_s: f64,
    /// Reads a client may make at once beyond the sustained rate (the bucket's size).
    pub rate_limit_burst: u32,
    /// Sustained writes (every other method) per second and client key; 0 = no limit.
    pub write_rate_limit_per_s: f64,
    pub write_rate_limit_burst: u32,
    /// Proxies whose `X-Forwarded-For` names the client (IP addresses or CIDR ranges, e.g. `10.0.0.0/8`). Requests
    /// from anywhere else are keyed by their peer address, whatever they claim. Empty by default: loopback is an
    /// ordinary client.
    pub trusted_proxies: Vec<String>,
    /// Longest time a request may take to produce its response (event streams aside); zero = no limit.
    pub request_timeout: Duration,
    /// How many client buckets are kept at most (idle ones are dropped first).
    pub max_clients: usize,
}

impl Default for HardeningConfig {
    fn default() -> Self {
        // per client: far above what the web app (a map view asks for ~100 tiles at once), the test suites and a
        // script need, far below what it takes to starve the other clients
        HardeningConfig {
            rate_limit_per_s: 1000.0,
            rate_limit_burst: 2000,
            write_rate_limit_per_s: 500.0,
            write_rate_limit_burst: 1000,
            trusted_proxies: Vec::new(),
            request_timeout: Duration::from_secs(60),
            max_clients: 100_000,
        }
    }
}

/// The identity a request is rate limited as, instead of its IP address: inserted as a request extension by an
/// authentication layer that runs before (outside) [`rate_limit`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RateKey(pub String);

/// Set by the authentication middleware on a request whose credentials are wrong (the detail of its 401): the rate
/// limiter charges the client's address a write for it and answers the 401 itself.
#[derive(Debug, Clone)]
pub struct FailedCredentials(pub String);

/// Paths whose responses are long-lived by design (event streams): no time limit.
const LONG_LIVED: &[&str] = &["/api/events"];

/// Header values never written to logs.
const SENSITIVE_REQUEST: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
];
const SENSITIVE_RESPONSE: &[&str] = &["set-cookie"];
/// Query parameters whose values are replaced in logged URIs.
const SECRET_PARAMS: &[&str] = &[
    "api_key",
    "apikey",
    "api-key",
    "token",
    "access_token",
    "password",
    "secret",
];

/// What the layers share.
pub struct Hardening {
    config: HardeningConfig,
    proxies: Vec<Cidr>,
    /// `Strict-Transport-Security` is sent when the public URL is https.
    hsts: bool,
    buckets: Mutex<HashMap<(Class, Key), Bucket>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Class {
    Read,
    Write,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Ip(IpAddr),
    Identity(String),
    Unknown,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// An address range: `10.0.0.0/8`, `::1/128`, or a single address.
#[derive(Debug, Clone, Copy)]
struct Cidr {
    net: IpAddr,
    bits: u8,
}

impl Cidr {
    fn parse(s: &str) -> Option<Cidr> {
        let (a, bits) = match s.trim().split_once('/') {
            Some((a, b)) => (a, Some(b.parse::<u8>().ok()?)),
            None => (s.trim(), None),
        };
        let net: IpAddr = a.parse().ok()?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let bits = bits.unwrap_or(max);
        (bits <= max).then_some(Cidr { net, bits })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - self.bits as u32).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - self.bits as u32).unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// IPv4-mapped IPv6 addresses as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

impl Hardening {
    /// The layers' state; fails on a `trusted_proxies` entry that is no address or range.
    pub fn new(config: HardeningConfig, public_url: &str) -> Result<Arc<Hardening>, String> {
        let proxies = config
            .trusted_proxies
            .iter()
            .map(|s| {
                Cidr::parse(s).ok_or_else(|| {
                    format!("invalid trusted proxy {s:?}: expected an IP address or CIDR range")
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Arc::new(Hardening {
            config,
            proxies,
            hsts: public_url.starts_with("https://"),
            buckets: Mutex::new(HashMap::new()),
        }))
    }

    fn trusted(&self, ip: IpAddr) -> bool {
        self.proxies.iter().any(|c| c.contains(ip))
    }

    /// The client's address: the peer, or behind trusted proxies the nearest address in `X-Forwarded-For` that is
    /// not one of them.
    fn client_ip(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = canonical(peer?);
        if !self.trusted(peer) {
            return Some(peer);
        }
        let mut hops: Vec<IpAddr> = Vec::new();
        for v in headers.get_all("x-forwarded-for") {
            let Ok(v) = v.to_str() else { return Some(peer) };
            for part in v.split(',') {
                match part.trim().parse::<IpAddr>() {
                    Ok(ip) => hops.push(canonical(ip)),
                    // a malformed chain: the proxy's own address is the only one known
                    Err(_) => return Some(peer),
                }
            }
        }
        Some(
            hops.into_iter()
                .rev()
                .find(|ip| !self.trusted(*ip))
                .unwrap_or(peer),
        )
    }

    /// Takes a token from the client's bucket, or says how long until one is there.
    fn take(&self, class: Class, key: Key) -> Result<(), Duration> {
        let (rate, burst) = match class {
            Class::Read => (self.config.rate_limit_per_s, self.config.rate_limit_burst),
            Class::Write => (
                self.config.write_rate_limit_per_s,
                self.config.write_rate_limit_burst,
            ),
        };
        if rate.is_nan() || rate <= 0.0 {
            return Ok(());
        }
        let burst = f64::from(burst.max(1));
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= self.config.max_clients.max(1)
            && !buckets.contains_key(&(class, key.clone()))
        {
            evict(&mut buckets, now, self.config.max_clients, |c| match c {
                Class::Read => (
                    self.config.rate_limit_per_s,
                    f64::from(self.config.rate_limit_burst.max(1)),
                ),
                Class::Write => (
                    self.config.write_rate_limit_per_s,
                    f64::from(self.config.write_rate_limit_burst.max(1)),
                ),
            });
        }
        let b = buckets.entry((class, key)).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / rate))
        }
    }

    /// How many client buckets are held (tests).
    pub fn clients(&self) -> usize {
        self.buckets.lock().map(|b| b.len()).unwrap_or(0)
    }
}

/// Drops the buckets that have refilled (their clients idle: a new bucket is the same); when every bucket is in
/// use, half of them go (under a flood of distinct clients, memory stays bounded and budgets restart).
fn evict(
    buckets: &mut HashMap<(Class, Key), Bucket>,
    now: Instant,
    max: usize,
    budget: impl Fn(Class) -> (f64, f64),
) {
    buckets.retain(|(class, _), b| {
        let (rate, burst) = budget(*class);
        b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst
    });
    if buckets.len() >= max / 2 {
        let mut ages: Vec<_> = buckets.iter().map(|(k, b)| (b.at, k.clone())).collect();
        ages.sort_by_key(|(at, _)| *at);
        for (_, k) in ages.into_iter().take(buckets.len() - max / 2) {
            buckets.remove(&k);
        }
    }
}

/// A ProblemDetails response of a limit (types in urbantwin's own namespace: NGSI-LD has none for these).
pub fn problem(status: StatusCode, name: &str, title: &str, detail: &str) -> Response {
    let body = json!({
        "type": format!("https://urbantwin.org/errors/{name}"),
        "title": title,
        "status": status.as_u16(),
        "detail": detail,
    });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// The rate limit: a token bucket per client key and class (reads, writes); 429 with `Retry-After` when empty.
pub async fn rate_limit(
    axum::extract::State(h): axum::extract::State<Arc<Hardening>>,
    req: Request,
    next: Next,
) -> Response {
    let failed = req.extensions().get::<FailedCredentials>().cloned();
    let class = if failed.is_none()
        && matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
    {
        Class::Read
    } else {
        Class::Write
    };
    let key = match req.extensions().get::<RateKey>() {
        Some(k) => Key::Identity(k.0.clone()),
        None => {
            let peer = req
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip());
            h.client_ip(peer, req.headers())
                .map(Key::Ip)
                .unwrap_or(Key::Unknown)
        }
    };
    match h.take(class, key) {
        Ok(()) => match failed {
            Some(FailedCredentials(detail)) => {
                crate::error::ApiError::new(twin_model::ErrorKind::Unauthenticated, detail)
                    .into_response()
            }
            None => next.run(req).await,
        },
        Err(wait) => {
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            let what = if class == Class::Read {
                "reads"
            } else {
                "writes"
            };
            let mut r = problem(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "Too many requests",
                &format!(
                    "this client sent more {what} than the server accepts; retry after {secs} s"
                ),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            r
        }
    }
}

/// The time limit: a request whose response is not ready within `request_timeout` ends with 503.
pub async fn time_limit(
    axum::extract::State(h): axum::extract::State<Arc<Hardening>>,
    req: Request,
    next: Next,
) -> Response {
    let limit = h.config.request_timeout;
    if limit.is_zero() || LONG_LIVED.contains(&req.uri().path()) {
        return next.run(req).await;
    }
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => {
            tracing::warn!(seconds = limit.as_secs_f64(), "request timed out");
            let mut r = problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "RequestTimeout",
                "The request took too long",
                &format!(
                    "the server did not answer within {} s; narrow the request (a smaller page, area or period) or retry later",
                    limit.as_secs_f64()
                ),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            r
        }
    }
}

/// The web app's Content Security Policy, which its built assets satisfy: its own scripts and styles (plus inline
/// style attributes the UI sets), MapLibre's worker (a module from `/assets`; blob: for older builds), images from
/// tiles and canvases (data:, blob:), fetches and event streams to this origin only; no framing, no plugins.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; child-src 'self' blob:; \
object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

/// Security headers on every response (a header a handler set itself is kept).
pub async fn security_headers(
    axum::extract::State(h): axum::extract::State<Arc<Hardening>>,
    req: Request,
    next: Next,
) -> Response {
    let mut r = next.run(req).await;
    let hs = r.headers_mut();
    let mut set = |name: HeaderName, value: &'static str| {
        if !hs.contains_key(&name) {
            hs.insert(name, HeaderValue::from_static(value));
        }
    };
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::REFERRER_POLICY, "strict-origin-when-cross-origin");
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::CONTENT_SECURITY_POLICY, CSP);
    set(
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    if h.hsts {
        set(header::STRICT_TRANSPORT_SECURITY, "max-age=31536000");
    }
    r
}

/// Marks the values of credential headers sensitive, so that no layer that logs headers prints them.
pub async fn mark_sensitive_request(mut req: Request, next: Next) -> Response {
    mark(req.headers_mut(), SENSITIVE_REQUEST);
    next.run(req).await
}

/// As [`mark_sensitive_request`] for response headers (`Set-Cookie`).
pub async fn mark_sensitive_response(mut r: Response) -> Response {
    mark(r.headers_mut(), SENSITIVE_RESPONSE);
    r
}

fn mark(headers: &mut HeaderMap, names: &[&str]) {
    for (name, value) in headers.iter_mut() {
        if names.contains(&name.as_str()) {
            value.set_sensitive(true);
        }
    }
}

/// A URI for logs: the values of secret query parameters (`api_key`, `token`, ...) replaced.
pub fn redact_uri(uri: &axum::http::Uri) -> String {
    let Some(q) = uri.query() else {
        return uri.to_string();
    };
    let redacted: Vec<String> = q
        .split('&')
        .map(|pair| {
            let (k, _) = pair.split_once('=').unwrap_or((pair, ""));
            let name = percent_encoding::percent_decode_str(k)
                .decode_utf8_lossy()
                .to_ascii_lowercase();
            if SECRET_PARAMS.contains(&name.as_str()) {
                format!("{k}=REDACTED")
            } else {
                pair.to_string()
            }
        })
        .collect();
    format!("{}?{}", uri.path(), redacted.join("&"))
}

/// The trace layer's span: method, URI (redacted), version; never a header.
#[derive(Debug, Clone, Copy, Default)]
pub struct RedactingMakeSpan;

impl<B> tower_http::trace::MakeSpan<B> for RedactingMakeSpan {
    fn make_span(&mut self, req: &axum::http::Request<B>) -> tracing::Span {
        tracing::debug_span!(
            "request",
            method = %req.method(),
            uri = %redact_uri(req.uri()),
            version = ?req.version()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_ranges() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains("10.1.2.3".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.0.0.1".parse().unwrap()));
        assert!(Cidr::parse("::1").unwrap().contains("::1".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(Cidr::parse("proxy").is_none());
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let h = Hardening::new(
            HardeningConfig {
                trusted_proxies: vec!["127.0.0.1".into(), "10.0.0.0/8".into()],
                ..HardeningConfig::default()
            },
            "http://x",
        )
        .unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("1.2.3.4, 5.6.7.8, 10.0.0.2"),
        );
        let lo = Some("127.0.0.1".parse().unwrap());
        assert_eq!(h.client_ip(lo, &headers), Some("5.6.7.8".parse().unwrap()));
        let other = Some("192.168.1.1".parse().unwrap());
        assert_eq!(h.client_ip(other, &headers), other);
        assert_eq!(h.client_ip(lo, &HeaderMap::new()), lo);
    }

    #[test]
    fn buckets_refill_and_stay_bounded() {
        let h = Hardening::new(
            HardeningConfig {
                rate_limit_per_s: 1.0,
                rate_limit_burst: 2,
                max_clients: 10,
                ..HardeningConfig::default()
            },
            "http://x",
        )
        .unwrap();
        let k = || Key::Identity("a".into());
        assert!(h.take(Class::Read, k()).is_ok());
        assert!(h.take(Class::Read, k()).is_ok());
        let wait = h.take(Class::Read, k()).unwrap_err();
        assert!(wait <= Duration::from_secs(1));
        for i in 0..100 {
            let _ = h.take(Class::Read, Key::Identity(i.to_string()));
        }
        assert!(h.clients() <= 10, "{}", h.clients());
    }

    #[test]
    fn secrets_leave_logged_uris() {
        let u: axum::http::Uri = "/x?token=abc&type=Building&API_KEY=s3cr3t".parse().unwrap();
        assert_eq!(
            redact_uri(&u),
            "/x?token=REDACTED&type=Building&API_KEY=REDACTED"
        );
    }
}
