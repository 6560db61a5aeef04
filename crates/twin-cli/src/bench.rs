//! `urbantwin bench hub`: measures the NGSI-LD hub end to end over real HTTP on loopback — single creates, batch
//! upserts, `type`+`q` queries, geo-queries and temporal aggregation — and prints a markdown table (or `--json`).
//!
//! By default the server runs in this process on `127.0.0.1:0` over a fresh SQLite file in a temporary directory;
//! `--db PATH` picks the file, `--url` measures a server that is already running. Every response is checked: a
//! wrong status, an unparsable body or a result that does not satisfy the query counts as an error, errors are
//! printed, and the command exits non-zero when there was any. After loading, the entity count and the
//! aggregation's `totalCount` are compared with what was sent, so the figures cannot come from requests that did
//! nothing.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use clap::Args;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use reqwest::header::{HeaderMap, CONTENT_TYPE};
use reqwest::StatusCode;
use serde_json::{json, Value};

mod access;
mod air;
mod consultation;
mod import;
mod ingest;
mod osm_pbf;
mod tiles;
mod traffic;

/// The entity type every benchmark entity has.
const TYPE: &str = "TrafficFlowObserved";
/// Helsinki centre: where the entities are.
const LON: (f64, f64) = (24.93, 24.96);
const LAT: (f64, f64) = (60.16, 60.18);
/// `intensity` values are integers in [0, MAX_INTENSITY); `laneId` in 1..=LANES.
const MAX_INTENSITY: u64 = 2000;
const LANES: u64 = 6;
/// Page size of the queries.
const PAGE: usize = 20;
/// Radius of the `near` queries, metres, and side of the `within` squares, metres.
const NEAR_M: f64 = 200.0;
const SQUARE_M: f64 = 300.0;
/// Mean Earth radius (as the model's haversine uses).
const EARTH_R: f64 = 6_371_008.8;
/// Error messages kept for printing.
const MAX_ERROR_SAMPLES: usize = 20;

#[derive(Args)]
pub struct BenchArgs {
    /// What to measure: `hub` (the NGSI-LD broker over HTTP), `import` (OpenStreetMap import throughput), `tiles`
    /// (vector tile latency, cold and warm, over the demo city), `traffic` (traffic assignment on TNTP networks,
    /// side by side with AequilibraE), `access` (the 15-minute city's nearest destinations, side by side with
    /// pandana), `air` (air quality and noise after a traffic scenario, the demo city and a city of `--links`),
    /// `ingest` (MQTT messages/s into SQLite and PostgreSQL, and the latency from publish to queryable) or
    /// `consultation` (participants reading a consultation while comments arrive: latency percentiles).
    pub what: String,
    /// Entities to load (single creates, then batch upserts until this many exist); queries run over them.
    #[arg(long, default_value_t = 100_000)]
    pub entities: usize,
    /// Temporal instances to load for the aggregation measurement.
    #[arg(long, default_value_t = 1_000_000)]
    pub instances: usize,
    /// Concurrent clients for single creates and queries.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Length of each timed phase (single creates, type+q queries, each geo-query kind), seconds.
    #[arg(long, default_value_t = 10)]
    pub duration_secs: u64,
    /// Entities per batch upsert request.
    #[arg(long, default_value_t = 1000)]
    pub batch_size: usize,
    /// Concurrent batch upsert requests.
    #[arg(long, default_value_t = 4)]
    pub batch_concurrency: usize,
    /// Temporal instances per load request (the server accepts 8 MiB bodies by default).
    #[arg(long, default_value_t = 50_000)]
    pub temporal_chunk: usize,
    /// Timed aggregation requests (after one warm-up).
    #[arg(long, default_value_t = 20)]
    pub aggr_runs: usize,
    /// Seed of the generated data and query parameters.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// SQLite file for the in-process server (default: a fresh file in a temporary directory).
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// Measure a running server at this base URL (e.g. http://127.0.0.1:1026) instead of starting one.
    #[arg(long, conflicts_with = "db")]
    pub url: Option<String>,
    /// Print the results as one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// bench import and tiles: the OSM PBF extract (for import, to repeat; default: the demo's Helsinki extract, fetched once into the
    /// cache folder like `urbantwin demo` does). bench traffic: the folder of TNTP networks, one sub-folder each
    /// (default: ../shared/data/tntp).
    #[arg(long, value_name = "PATH")]
    pub data: Option<PathBuf>,
    /// bench import: how many shifted copies of the extract make the benchmark file.
    #[arg(long, default_value_t = 8)]
    pub repeat: usize,
    /// bench tiles: cold rounds (the tile cache emptied before each).
    #[arg(long, default_value_t = 10)]
    pub rounds: usize,
    /// bench tiles: warm requests (random tiles, all cached).
    #[arg(long, default_value_t = 2000)]
    pub requests: usize,
    /// bench traffic: the networks, sub-folders of --data, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "Chicago-Sketch,Barcelona"
    )]
    pub networks: Vec<String>,
    /// bench traffic and access: the Python of a virtualenv with the peer, AequilibraE or pandana (default:
    /// ~/.cache/urbantwin/aeq-venv/bin/python or ~/.cache/urbantwin/pandana-venv/bin/python; without it the peer
    /// rows are left out).
    #[arg(long, value_name = "PATH")]
    pub peer_python: Option<PathBuf>,
    /// bench air: directed car links of the large city (the extract repeated until it has at least this many).
    #[arg(long, default_value_t = 100_000)]
    pub links: usize,
    /// bench ingest: the MQTT broker to publish through and ingest from.
    #[arg(long, default_value = "mqtt://127.0.0.1:1883")]
    pub broker: String,
    /// bench ingest: readings published in the throughput phase.
    #[arg(long, default_value_t = 200_000)]
    pub messages: usize,
    /// bench ingest: readings per second in the latency phase (default: 20,000 into SQLite, 10,000 into
    /// PostgreSQL).
    #[arg(long)]
    pub rate: Option<f64>,
    /// bench ingest: a PostgreSQL database to measure too (`postgres://user@host/db`).
    #[arg(long, value_name = "URL")]
    pub pg: Option<String>,
    /// bench hub: measure twice in one run, without and with access policies (the bench data in a dataset that one
    /// group reads and writes, every client signed in with an API key, every read written to the usage log, and 50
    /// more datasets with policies), and print both with their ratio.
    #[arg(long)]
    pub policies: bool,
    /// bench hub --policies: alternate the two measurements this many times and print the median of each figure
    /// (on a small or shared machine one round's ratio moves by tens of percent from run to run).
    #[arg(long, default_value_t = 1)]
    pub policy_rounds: usize,
    /// bench access: side of the generated square grid whose whole recomputation is timed (1000: a
    /// 1,000,000-node network).
    #[arg(long, default_value_t = 1000)]
    pub grid_side: usize,
    /// bench consultation: participants reading the consultation's page at once (each signed in).
    #[arg(long, default_value_t = 1000)]
    pub participants: usize,
    /// bench consultation: comments written per second while they read.
    #[arg(long, default_value_t = 100.0)]
    pub comment_rate: f64,
    /// bench consultation: a participant's mean pause between two pages, milliseconds (each pause is drawn
    /// uniformly from half to one and a half times this).
    #[arg(long, default_value_t = 5000)]
    pub think_ms: u64,
}

// ---------------------------------------------------------------------------------------------------------------
// pure helpers

/// The median of samples (the mean of the middle two for an even count); NaN for none.
fn median(samples: &[f64]) -> f64 {
    let mut v = samples.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The `p`th percentile (0–100) of sorted samples, nearest-rank method; None for no samples.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let p = p.clamp(0.0, 100.0);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// A deterministic 64-bit mix (splitmix64): the generated data is a pure function of the seed and the index.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform number in [0, 1) from a hash.
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// Great-circle distance in metres.
fn haversine_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (la1, la2) = (a.1.to_radians(), b.1.to_radians());
    let dlat = la2 - la1;
    let dlon = (b.0 - a.0).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_R * h.sqrt().asin()
}

/// Formats a figure for the table: thousands separators above 100, two decimals below, scientific below 0.01.
pub fn fmt_value(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".into();
    }
    if v != 0.0 && v.abs() < 0.01 {
        return format!("{v:.1e}");
    }
    if v.abs() >= 100.0 {
        let s = format!("{:.0}", v.abs());
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        if v < 0.0 {
            out.insert(0, '-');
        }
        out
    } else {
        format!("{v:.2}")
    }
}

fn enc(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

// ---------------------------------------------------------------------------------------------------------------
// generated data

/// What the generator put in entity `i` (for checking query results).
struct Gen {
    intensity: u64,
    speed: f64,
    lane: u64,
    lon: f64,
    lat: f64,
}

fn gen(seed: u64, i: usize) -> Gen {
    let h = |k: u64| mix(seed ^ mix((i as u64) << 3 | k));
    Gen {
        intensity: h(0) % MAX_INTENSITY,
        speed: (50.0 + unit(h(1)) * 750.0).round() / 10.0,
        lane: 1 + h(2) % LANES,
        lon: LON.0 + unit(h(3)) * (LON.1 - LON.0),
        lat: LAT.0 + unit(h(4)) * (LAT.1 - LAT.0),
    }
}

fn entity_id(tag: &str, i: usize) -> String {
    format!("urn:ngsi-ld:{TYPE}:bench-{tag}-{i:07}")
}

/// A Smart Data Models-like TrafficFlowObserved entity (normalized NGSI-LD, core context).
fn entity_json(seed: u64, tag: &str, i: usize, observed: &str) -> Value {
    let g = gen(seed, i);
    json!({
        "id": entity_id(tag, i),
        "type": TYPE,
        "intensity": {"type": "Property", "value": g.intensity, "observedAt": observed},
        "averageVehicleSpeed": {"type": "Property", "value": g.speed, "unitCode": "KMH", "observedAt": observed},
        "laneId": {"type": "Property", "value": g.lane},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [g.lon, g.lat]}},
        "name": {"type": "Property", "value": format!("Traffic counter {i}")},
        "refRoadSegment": {"type": "Relationship", "object": format!("urn:ngsi-ld:RoadSegment:helsinki-{}", i / 50)},
    })
}

/// The value of temporal instance `i`.
fn instance_value(seed: u64, i: usize) -> u64 {
    mix(seed.wrapping_mul(31) ^ 0xA55A ^ mix(i as u64)) % 1000
}

fn year_start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default()
}

fn year_end() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default()
}

/// observedAt of temporal instance `i` of `m`: spread evenly over 2024.
fn instance_time(i: usize, m: usize) -> DateTime<Utc> {
    let span = (year_end() - year_start()).num_milliseconds();
    let step = span / m.max(1) as i64;
    year_start() + chrono::Duration::milliseconds(step * i as i64)
}

// ---------------------------------------------------------------------------------------------------------------
// HTTP plumbing with error accounting

#[derive(Default)]
struct Errors {
    count: AtomicU64,
    samples: Mutex<Vec<String>>,
}

impl Errors {
    fn record(&self, msg: String) {
        let n = self.count.fetch_add(1, Ordering::Relaxed);
        if (n as usize) < MAX_ERROR_SAMPLES {
            if let Ok(mut s) = self.samples.lock() {
                s.push(msg);
            }
        }
    }
    fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

struct Client {
    http: reqwest::Client,
    /// `http://host:port/ngsi-ld/v1`
    base: String,
    errors: Errors,
    requests: AtomicU64,
}

struct Reply {
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Client {
    /// Sends a request; returns the reply when the status is one of `expect`, records an error otherwise.
    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        expect: &[StatusCode],
        what: &str,
    ) -> Option<Reply> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                self.errors.record(format!("{what}: request failed: {e}"));
                return None;
            }
        };
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = match resp.bytes().await {
            Ok(b) => b.to_vec(),
            Err(e) => {
                self.errors
                    .record(format!("{what}: reading the body failed: {e}"));
                return None;
            }
        };
        if !expect.contains(&status) {
            let text: String = String::from_utf8_lossy(&body).chars().take(300).collect();
            self.errors.record(format!("{what}: HTTP {status}: {text}"));
            return None;
        }
        Some(Reply { headers, body })
    }

    fn get(&self, path_and_query: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{path_and_query}", self.base))
    }

    fn post(&self, path: &str, body: String) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}{path}", self.base))
            .header(CONTENT_TYPE, "application/json")
            .body(body)
    }

    /// Entities of the benchmark type, from the `NGSILD-Results-Count` header.
    async fn type_count(&self) -> Result<u64> {
        let r = self
            .send(
                self.get(&format!("/entities?type={TYPE}&count=true&limit=0")),
                &[StatusCode::OK],
                "count",
            )
            .await
            .ok_or_else(|| anyhow!("the count query failed"))?;
        r.headers
            .get("NGSILD-Results-Count")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| anyhow!("the count query returned no NGSILD-Results-Count header"))
    }
}

fn progress(msg: impl AsRef<str>) {
    eprintln!("[bench] {}", msg.as_ref());
}

/// Prints progress of a counter every two seconds until dropped.
struct Ticker(tokio::task::JoinHandle<()>);

impl Ticker {
    fn start(label: &'static str, done: Arc<AtomicUsize>, total: usize) -> Ticker {
        let t0 = Instant::now();
        Ticker(tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(2)).await;
                let n = done.load(Ordering::Relaxed);
                let s = t0.elapsed().as_secs_f64();
                let of = if total > 0 {
                    format!("/{total}")
                } else {
                    String::new()
                };
                progress(format!(
                    "  {label}: {n}{of} ({:.0}/s, {s:.0} s)",
                    n as f64 / s
                ));
            }
        }))
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.0.abort();
    }
}

// ---------------------------------------------------------------------------------------------------------------
// results

#[derive(Clone, Copy)]
enum Goal {
    AtLeast(f64),
    AtMost(f64),
}

struct Row {
    measure: String,
    value: f64,
    unit: &'static str,
    target: Option<Goal>,
    peer: Option<(&'static str, f64)>,
}

impl Row {
    fn new(measure: impl Into<String>, value: f64, unit: &'static str) -> Row {
        Row {
            measure: measure.into(),
            value,
            unit,
            target: None,
            peer: None,
        }
    }
    fn target(mut self, g: Goal) -> Row {
        self.target = Some(g);
        self
    }
    fn peer(mut self, label: &'static str, v: f64) -> Row {
        self.peer = Some((label, v));
        self
    }
    fn met(&self) -> Option<bool> {
        self.target.map(|g| match g {
            Goal::AtLeast(t) => self.value >= t,
            Goal::AtMost(t) => self.value <= t,
        })
    }
    fn ratio(&self) -> Option<f64> {
        self.peer.map(|(_, p)| self.value / p)
    }
}

/// The OpenStreetMap extract of `--data`, or the demo's Helsinki extract (fetched once into the cache folder).
fn extract(a: &BenchArgs) -> Result<PathBuf> {
    match &a.data {
        Some(p) => Ok(p.clone()),
        None => crate::demo::helsinki_pbf(&crate::demo::cache_dir(None)),
    }
}

/// The entities an OpenStreetMap extract imports as (streets as `RoadLink`s), read in memory without a store.
fn osm_entities(pbf: &Path) -> Result<Vec<twin_model::Entity>> {
    use twin_import::osm::{read_osm, OsmItem};
    let prov = twin_model::Provenance::default();
    let mut out = Vec::new();
    let mut bad = None;
    read_osm(pbf, &mut |item| {
        match item {
            OsmItem::Entity(e) => out.push(e),
            OsmItem::Link(l) => match l.to_entity(chrono::Utc::now(), &prov) {
                Ok(e) => out.push(e),
                Err(e) => bad = Some(e.to_string()),
            },
            OsmItem::Node(..) => {}
        }
        Ok(())
    })
    .with_context(|| format!("cannot read {}", pbf.display()))?;
    if let Some(why) = bad {
        bail!("{}: a street could not be read: {why}", pbf.display());
    }
    Ok(out)
}

/// Latency samples (ms) → p50, p95, p99.
fn latency_rows(rows: &mut Vec<Row>, name: &str, mut ms: Vec<f64>, p95_target: Option<f64>) {
    ms.sort_by(|a, b| a.total_cmp(b));
    for p in [50.0, 95.0, 99.0] {
        let v = percentile(&ms, p).unwrap_or(f64::NAN);
        let mut r = Row::new(format!("{name} p{p:.0}"), v, "ms");
        if p == 95.0 {
            if let Some(t) = p95_target {
                r = r.target(Goal::AtMost(t));
            }
        }
        rows.push(r);
    }
}

/// A ratio with two significant digits (`0.036×`, `0.38×`, `2.4×`, `31×`).
fn fmt_ratio(x: f64) -> String {
    if !x.is_finite() || x <= 0.0 {
        return "n/a".into();
    }
    let decimals = (1 - x.log10().floor() as i32).max(0) as usize;
    format!("{x:.decimals$}×")
}

/// The results as a markdown table, with the peer's figure next to its name (`peer` heads that column).
fn markdown(rows: &[Row], peer: &str) -> String {
    let mut s = format!(
        "| measure | value | unit | target | met | {peer} | peer value | ratio to peer |\n|---|---:|---|---|---|---|---:|---:|\n"
    );
    for r in rows {
        let target = match r.target {
            Some(Goal::AtLeast(t)) => format!("≥ {}", fmt_value(t)),
            Some(Goal::AtMost(t)) => format!("≤ {}", fmt_value(t)),
            None => "—".into(),
        };
        let met = match r.met() {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "—",
        };
        let (label, value, ratio) = match (r.peer, r.ratio()) {
            (Some((l, v)), Some(x)) => (l.to_string(), fmt_value(v), fmt_ratio(x)),
            _ => ("—".into(), "—".into(), "—".into()),
        };
        s.push_str(&format!(
            "| {} | {} | {} | {target} | {met} | {label} | {value} | {ratio} |\n",
            r.measure,
            fmt_value(r.value),
            r.unit
        ));
    }
    s
}

/// Prints a benchmark's rows and notes: one JSON object with `--json`, else the markdown table, the notes and the
/// number of threads it ran on.
fn print_results(
    benchmark: &str,
    rows: &[Row],
    notes: &[String],
    threads: usize,
    peer_heading: &str,
    as_json: bool,
) {
    if as_json {
        println!(
            "{}",
            json!({"benchmark": benchmark, "threads": threads, "results": rows_json(rows), "notes": notes})
        );
    } else {
        print!("{}", markdown(rows, peer_heading));
        for n in notes {
            println!("\n{n}");
        }
        println!("\n{threads} threads");
    }
}

fn rows_json(rows: &[Row]) -> Value {
    Value::Array(
        rows.iter()
            .map(|r| {
                json!({
                    "measure": r.measure,
                    "value": if r.value.is_finite() { json!(r.value) } else { Value::Null },
                    "unit": r.unit,
                    "target": r.target.map(|g| match g {
                        Goal::AtLeast(t) => json!({"atLeast": t}),
                        Goal::AtMost(t) => json!({"atMost": t}),
                    }),
                    "met": r.met(),
                    "peer": r.peer.map(|(l, v)| json!({"figure": l, "value": v})),
                    "ratioToPeer": r.ratio(),
                })
            })
            .collect(),
    )
}

// ---------------------------------------------------------------------------------------------------------------
// the phases

struct Setup {
    seed: u64,
    tag: String,
    concurrency: usize,
    duration: Duration,
}

/// Phase 1: single creates by `concurrency` clients for the phase duration (at most `cap` entities).
async fn single_creates(c: &Arc<Client>, s: &Setup, cap: usize) -> (usize, f64, Vec<f64>) {
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + s.duration;
    let observed = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    let t0 = Instant::now();
    let _tick = Ticker::start("single creates", next.clone(), cap);
    let mut tasks = Vec::new();
    for _ in 0..s.concurrency {
        let (c, next, tag, observed, seed) = (
            c.clone(),
            next.clone(),
            s.tag.clone(),
            observed.clone(),
            s.seed,
        );
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= cap {
                    break;
                }
                let body = entity_json(seed, &tag, i, &observed).to_string();
                let t = Instant::now();
                let r = c
                    .send(
                        c.post("/entities", body),
                        &[StatusCode::CREATED],
                        "single create",
                    )
                    .await;
                if r.is_some() {
                    lat.push(t.elapsed().as_secs_f64() * 1e3);
                }
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap_or_default());
    }
    let secs = t0.elapsed().as_secs_f64();
    let created = next.load(Ordering::Relaxed).min(cap);
    (created, secs, lat)
}

/// Phase 2: batch upserts of entities `from..to`, prepared before the clock starts.
async fn batch_upserts(
    c: &Arc<Client>,
    s: &Setup,
    from: usize,
    to: usize,
    batch: usize,
    conc: usize,
) -> (usize, f64) {
    let observed = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    let bodies: Vec<(usize, String)> = (from..to)
        .step_by(batch.max(1))
        .map(|start| {
            let end = (start + batch).min(to);
            let items: Vec<Value> = (start..end)
                .map(|i| entity_json(s.seed, &s.tag, i, &observed))
                .collect();
            (end - start, Value::Array(items).to_string())
        })
        .collect();
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let _tick = Ticker::start("batch upserts", done.clone(), to - from);
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conc.max(1) {
        let (c, bodies, next, done) = (c.clone(), bodies.clone(), next.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some((n, body)) = bodies.get(k) else {
                    break;
                };
                let r = c
                    .send(
                        c.post("/entityOperations/upsert", body.clone()),
                        &[StatusCode::CREATED],
                        "batch upsert",
                    )
                    .await;
                if let Some(r) = r {
                    // 201 lists the created ids: all of them must be new
                    let created = serde_json::from_slice::<Vec<String>>(&r.body)
                        .map(|v| v.len())
                        .unwrap_or(0);
                    if created != *n {
                        c.errors.record(format!(
                            "batch upsert: {created} of {n} entities reported created"
                        ));
                    }
                    done.fetch_add(created, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    (done.load(Ordering::Relaxed), t0.elapsed().as_secs_f64())
}

/// Checks a query reply: a JSON array of entities each satisfying `ok`; returns how many entities.
fn check_entities(c: &Client, r: &Reply, what: &str, ok: &dyn Fn(&Value) -> bool) -> usize {
    let v: Value = match serde_json::from_slice(&r.body) {
        Ok(v) => v,
        Err(e) => {
            c.errors.record(format!("{what}: body is not JSON: {e}"));
            return 0;
        }
    };
    let Some(list) = v.as_array() else {
        c.errors
            .record(format!("{what}: body is not an array of entities"));
        return 0;
    };
    if list.len() > PAGE {
        c.errors
            .record(format!("{what}: {} entities for limit {PAGE}", list.len()));
    }
    for e in list {
        if !ok(e) {
            let text: String = e.to_string().chars().take(300).collect();
            c.errors.record(format!(
                "{what}: an entity does not match the query: {text}"
            ));
            break;
        }
    }
    list.len()
}

fn num_of(e: &Value, attr: &str) -> Option<f64> {
    e.get(attr)?.get("value")?.as_f64()
}

fn point_of(e: &Value) -> Option<(f64, f64)> {
    let c = e.get("location")?.get("value")?.get("coordinates")?;
    Some((c.get(0)?.as_f64()?, c.get(1)?.as_f64()?))
}

/// The check every entity a query returns must pass.
type Check = Box<dyn Fn(&Value) -> bool + Send + Sync>;

/// Reports one geo-query phase: progress, the check that it returned something, throughput and latency rows.
fn report_geo(
    c: &Client,
    rows: &mut Vec<Row>,
    checks: &mut serde_json::Map<String, Value>,
    kind: &str,
    clients: usize,
    latency_label: &str,
    (nq, secs, lat, returned, empty): (usize, f64, Vec<f64>, usize, usize),
) {
    progress(format!(
        "  {nq} queries in {secs:.1} s = {:.0}/s; {returned} entities returned, {empty} empty results",
        nq as f64 / secs
    ));
    let mut key = String::from("geo");
    key.push_str(&kind[..1].to_uppercase());
    key.push_str(&kind[1..]);
    key.push_str("EntitiesReturned");
    checks.insert(key, json!(returned));
    if returned == 0 {
        c.errors
            .record(format!("{kind} queries returned no entities at all"));
    }
    rows.push(Row::new(
        format!("geo {kind} queries, limit {PAGE}, {clients} clients"),
        nq as f64 / secs,
        "queries/s",
    ));
    latency_rows(rows, latency_label, lat, None);
}

/// One type+q query with random bounds, and the check every returned entity must pass.
fn type_q_query(rng: &mut fastrand::Rng) -> (String, Check) {
    let x = rng.u64(0..MAX_INTENSITY);
    let k = rng.u64(1..=LANES);
    let q = format!("intensity>{x};laneId=={k}");
    let url = format!("/entities?type={TYPE}&q={}&limit={PAGE}", enc(&q));
    let ok = move |e: &Value| {
        e.get("type").and_then(Value::as_str) == Some(TYPE)
            && num_of(e, "intensity").is_some_and(|v| v > x as f64)
            && num_of(e, "laneId") == Some(k as f64)
    };
    (url, Box::new(ok))
}

/// Runs `make` (which builds one query and its check) by `concurrency` clients for the phase duration.
/// Returns (requests, seconds, latencies ms, entities returned, empty results).
async fn timed_queries<F>(
    c: &Arc<Client>,
    s: &Setup,
    label: &'static str,
    make: F,
) -> (usize, f64, Vec<f64>, usize, usize)
where
    F: Fn(&mut fastrand::Rng) -> (String, Box<dyn Fn(&Value) -> bool + Send + Sync>)
        + Send
        + Sync
        + 'static,
{
    let make = Arc::new(make);
    let deadline = Instant::now() + s.duration;
    let count = Arc::new(AtomicUsize::new(0));
    let _tick = Ticker::start(label, count.clone(), 0);
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..s.concurrency {
        let (c, make, count) = (c.clone(), make.clone(), count.clone());
        let mut rng =
            fastrand::Rng::with_seed(mix(s.seed ^ 0x5EED ^ (w as u64) << 20 ^ label.len() as u64));
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut rows, mut empty) = (Vec::new(), 0usize, 0usize);
            while Instant::now() < deadline {
                let (url, ok) = make(&mut rng);
                let t = Instant::now();
                let r = c.send(c.get(&url), &[StatusCode::OK], label).await;
                let ms = t.elapsed().as_secs_f64() * 1e3;
                count.fetch_add(1, Ordering::Relaxed);
                if let Some(r) = r {
                    lat.push(ms);
                    let n = check_entities(&c, &r, label, &*ok);
                    rows += n;
                    if n == 0 {
                        empty += 1;
                    }
                }
            }
            (lat, rows, empty)
        }));
    }
    let (mut lat, mut rows, mut empty) = (Vec::new(), 0, 0);
    for t in tasks {
        if let Ok((l, r, e)) = t.await {
            lat.extend(l);
            rows += r;
            empty += e;
        }
    }
    (
        count.load(Ordering::Relaxed),
        t0.elapsed().as_secs_f64(),
        lat,
        rows,
        empty,
    )
}

/// Phase 5a: loads `m` instances of `intensity` for one temporal entity; returns (instances/s, expected sum,
/// min, max).
async fn load_temporal(
    c: &Arc<Client>,
    s: &Setup,
    id: &str,
    m: usize,
    chunk: usize,
) -> Result<(f64, f64, f64, f64)> {
    let chunk = chunk.max(1);
    let (mut sum, mut min, mut max) = (0f64, f64::INFINITY, f64::NEG_INFINITY);
    for i in 0..m {
        let v = instance_value(s.seed, i) as f64;
        sum += v;
        min = min.min(v);
        max = max.max(v);
    }
    let seed = s.seed;
    let instances = move |from: usize, to: usize| -> String {
        let mut out = String::with_capacity((to - from) * 80);
        out.push('[');
        for i in from..to {
            if i > from {
                out.push(',');
            }
            out.push_str(&format!(
                r#"{{"type":"Property","value":{},"observedAt":"{}"}}"#,
                instance_value(seed, i),
                instance_time(i, m).to_rfc3339_opts(SecondsFormat::Millis, true)
            ));
        }
        out.push(']');
        out
    };
    let done = Arc::new(AtomicUsize::new(0));
    let _tick = Ticker::start("temporal instances", done.clone(), m);
    let t0 = Instant::now();
    // the first chunk creates the temporal entity
    let first = chunk.min(m);
    let body = format!(
        r#"{{"id":"{id}","type":"{TYPE}","intensity":{}}}"#,
        instances(0, first)
    );
    c.send(
        c.post("/temporal/entities", body),
        &[StatusCode::CREATED],
        "temporal create",
    )
    .await
    .ok_or_else(|| anyhow!("creating the temporal entity failed"))?;
    done.fetch_add(first, Ordering::Relaxed);
    // the rest is appended by two concurrent loaders (the client builds the next body while the server writes)
    let next = Arc::new(AtomicUsize::new(first));
    let instances = Arc::new(instances);
    let path = format!("/temporal/entities/{}/attrs", enc(id));
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let (c, next, done, instances, path) = (
            c.clone(),
            next.clone(),
            done.clone(),
            instances.clone(),
            path.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let from = next.fetch_add(chunk, Ordering::Relaxed);
                if from >= m {
                    break;
                }
                let to = (from + chunk).min(m);
                let body = format!(r#"{{"intensity":{}}}"#, instances(from, to));
                if c.send(
                    c.post(&path, body),
                    &[StatusCode::NO_CONTENT],
                    "temporal append",
                )
                .await
                .is_some()
                {
                    done.fetch_add(to - from, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let secs = t0.elapsed().as_secs_f64();
    Ok((done.load(Ordering::Relaxed) as f64 / secs, sum, min, max))
}

/// Sums the per-period values of one aggregation method, checking each is a number.
fn aggr_series(v: &Value, method: &str) -> Option<Vec<f64>> {
    v.get("intensity")?
        .get(method)?
        .as_array()?
        .iter()
        .map(|p| p.get(0).and_then(Value::as_f64))
        .collect()
}

// ---------------------------------------------------------------------------------------------------------------

struct Server {
    state: twin_api::SharedState,
    stop: tokio::sync::oneshot::Sender<()>,
    handle: tokio::task::JoinHandle<std::io::Result<()>>,
    db: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

async fn start_server(db: Option<PathBuf>) -> Result<(Server, String)> {
    let (dir, path) = match db {
        Some(p) => (None, p),
        None => {
            let d = tempfile::Builder::new()
                .prefix("urbantwin-bench-")
                .tempdir()
                .context("cannot create a temporary directory")?;
            let p = d.path().join("bench.db");
            (Some(d), p)
        }
    };
    let store = crate::open_store(&path.to_string_lossy()).await?;
    if store
        .get_dataset(twin_model::dataset::DEFAULT_DATASET)
        .await
        .map_err(|e| anyhow!("{e}"))?
        .is_none()
    {
        let mut d = twin_model::Dataset::default_dataset();
        d.created_at = Some(Utc::now());
        store.put_dataset(d).await.map_err(|e| anyhow!("{e}"))?;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let state = twin_api::AppState::new(
        store,
        twin_api::ApiConfig {
            public_url: format!("http://{addr}"),
            // the bench measures the server, not one client's budget
            hardening: twin_api::hardening::HardeningConfig {
                rate_limit_per_s: 0.0,
                write_rate_limit_per_s: 0.0,
                ..Default::default()
            },
            ..Default::default()
        },
    );
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(twin_api::serve_listener(
        state.clone(),
        listener,
        async move {
            let _ = rx.await;
        },
    ));
    Ok((
        Server {
            state,
            stop,
            handle,
            db: path,
            _dir: dir,
        },
        format!("http://{addr}"),
    ))
}

fn db_size(db: &std::path::Path) -> u64 {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| {
            let mut p = db.as_os_str().to_owned();
            p.push(suffix);
            std::fs::metadata(PathBuf::from(p)).ok().map(|m| m.len())
        })
        .sum()
}

pub async fn run(a: BenchArgs) -> Result<()> {
    match a.what.as_str() {
        "hub" => {}
        "import" => return import::run(&a).await,
        "tiles" => return tiles::run(a.data.clone(), a.rounds, a.requests, a.json).await,
        "traffic" => return traffic::run(&a),
        "access" => return access::run(&a),
        "air" => return air::run(&a),
        "ingest" => return ingest::run(&a).await,
        "consultation" => return consultation::run(&a).await,
        other => {
            bail!(
                "unknown benchmark {other:?}; available: hub, import, tiles, traffic, access, air, ingest, \
                 consultation"
            )
        }
    }
    if a.entities == 0 || a.instances == 0 || a.concurrency == 0 || a.duration_secs == 0 {
        bail!("--entities, --instances, --concurrency and --duration-secs must be at least 1");
    }
    if a.policies {
        if a.url.is_some() || a.db.is_some() {
            bail!("--policies measures two fresh in-process servers: leave out --url and --db");
        }
        if a.policy_rounds == 0 {
            bail!("--policy-rounds must be at least 1");
        }
        let (mut plain, mut guarded) = (Vec::new(), Vec::new());
        for round in 1..=a.policy_rounds {
            progress(format!(
                "round {round}/{}: without access policies",
                a.policy_rounds
            ));
            plain.push(hub(&a, false).await?);
            progress(format!(
                "round {round}/{}: with access policies",
                a.policy_rounds
            ));
            guarded.push(hub(&a, true).await?);
        }
        return print_policies(&a, &median_outcome(plain), &median_outcome(guarded));
    }
    let o = hub(&a, false).await?;
    print_hub(&a, &o)
}

/// The dataset the bench data goes to when measured with policies.
const BENCH_DATASET: &str = "urn:ngsi-ld:Dataset:bench";

/// Policies as a city would have them: the bench data in a dataset that one group reads and writes (so every read
/// is logged), 50 more datasets with every kind of policy, and a client account in that group with an API key.
/// Returns the key.
async fn set_up_policies(store: &dyn twin_store::Store) -> Result<String> {
    use twin_model::dataset::Access;
    let err = |e: twin_model::NgsiError| anyhow!("{e}");
    let dataset = |id: String, read: Access, write: Access| {
        let mut d = twin_model::Dataset::default_dataset();
        d.id = id;
        d.title = "bench".into();
        d.owner = "city".into();
        d.read = read;
        d.write = write;
        d
    };
    let energy = || Access::Groups(vec!["bench".into()]);
    store
        .put_dataset(dataset(BENCH_DATASET.into(), energy(), energy()))
        .await
        .map_err(err)?;
    for i in 0..50 {
        let read = match i % 4 {
            0 => Access::Public,
            1 => Access::Registered,
            2 => Access::Groups(vec![format!("g{i}")]),
            _ => Access::Private,
        };
        store
            .put_dataset(dataset(
                format!("urn:ngsi-ld:Dataset:other-{i}"),
                read,
                Access::Private,
            ))
            .await
            .map_err(err)?;
    }
    let now = Utc::now();
    store
        .put_account(
            twin_store::trust::Account {
                id: "bench-client".into(),
                display_name: None,
                email: None,
                password_hash: None,
                roles: vec!["planner".into()],
                groups: vec!["bench".into()],
                organisation: None,
                disabled: false,
                created_at: now,
                updated_at: now,
            },
            true,
        )
        .await
        .map_err(err)?;
    let k = twin_auth::apikey::generate();
    store
        .put_api_key(twin_store::trust::ApiKeyRecord {
            id: k.id.clone(),
            account_id: "bench-client".into(),
            name: "bench".into(),
            hash: k.hash.clone(),
            scopes: vec!["read".into(), "write".into()],
            created_at: now,
            expires_at: None,
            revoked_at: None,
            last_used_at: None,
        })
        .await
        .map_err(err)?;
    Ok(k.secret)
}

/// Both measurements side by side: each row's value without and with policies, and their ratio.
fn print_policies(a: &BenchArgs, plain: &HubOutcome, guarded: &HubOutcome) -> Result<()> {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let pairs: Vec<(&Row, &Row)> = plain.rows.iter().zip(&guarded.rows).collect();
    if a.json {
        let rows: Vec<Value> = pairs
            .iter()
            .map(|(p, g)| {
                json!({"measure": p.measure, "unit": p.unit, "withoutPolicies": p.value, "withPolicies": g.value,
                       "ratio": g.value / p.value})
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "benchmark": "hub --policies", "cores": cores, "entities": a.entities, "instances": a.instances, "rounds": a.policy_rounds,
                "results": rows, "errors": plain.errors + guarded.errors,
            }))?
        );
    } else {
        println!(
            "urbantwin bench hub --policies: {} entities, {} temporal instances, {} clients, {} s phases, {cores} cores, \
             median of {} alternating rounds",
            a.entities, a.instances, a.concurrency, a.duration_secs, a.policy_rounds
        );
        println!();
        println!("| measure | without policies | with policies | unit | ratio (with / without) |");
        println!("|---|---:|---:|---|---:|");
        for (p, g) in &pairs {
            println!(
                "| {} | {} | {} | {} | {:.2} |",
                p.measure,
                fmt_value(p.value),
                fmt_value(g.value),
                p.unit,
                g.value / p.value
            );
        }
        println!();
        println!(
            "with policies: the data in a dataset one group reads and writes, the client signed in with an API key, \
             every read logged, 51 datasets with policies; {} + {} requests",
            plain.requests, guarded.requests
        );
    }
    let errors = plain.errors + guarded.errors;
    if errors > 0 {
        for e in plain.samples.iter().chain(&guarded.samples) {
            eprintln!("[bench] error: {e}");
        }
        bail!("{errors} requests or checks failed; the figures above are not valid");
    }
    Ok(())
}

/// One outcome whose figures are the medians of several rounds' (the same measures in the same order), with their
/// requests and errors summed.
fn median_outcome(mut rounds: Vec<HubOutcome>) -> HubOutcome {
    let mut out = rounds.remove(0);
    for (i, row) in out.rows.iter_mut().enumerate() {
        let mut values: Vec<f64> = std::iter::once(row.value)
            .chain(rounds.iter().filter_map(|r| r.rows.get(i).map(|x| x.value)))
            .collect();
        values.sort_by(f64::total_cmp);
        let n = values.len();
        row.value = if n % 2 == 1 {
            values[n / 2]
        } else {
            (values[n / 2 - 1] + values[n / 2]) / 2.0
        };
    }
    for r in &rounds {
        out.requests += r.requests;
        out.errors += r.errors;
    }
    out
}

/// What one measurement of the hub gave.
struct HubOutcome {
    url: String,
    version: Value,
    rows: Vec<Row>,
    checks: serde_json::Map<String, Value>,
    requests: u64,
    errors: u64,
    samples: Vec<String>,
    db_bytes: Option<u64>,
}

/// Loads and queries a hub (started here unless `--url`); with `policies`, as a signed-in client of a dataset
/// with access policies.
async fn hub(a: &BenchArgs, policies: bool) -> Result<HubOutcome> {
    let (server, url) = match &a.url {
        Some(u) => (None, u.trim_end_matches('/').to_string()),
        None => {
            let (s, u) = start_server(a.db.clone()).await?;
            progress(format!("server started on {u}, store {}", s.db.display()));
            (Some(s), u)
        }
    };
    let mut headers = HeaderMap::new();
    if let (true, Some(sv)) = (policies, &server) {
        let key = set_up_policies(sv.state.store.as_ref()).await?;
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {key}").parse()?,
        );
        headers.insert("x-urbantwin-dataset", BENCH_DATASET.parse()?);
        headers.insert("x-urbantwin-purpose", "benchmark".parse()?);
    }
    let http = reqwest::Client::builder()
        .default_headers(headers)
        .pool_max_idle_per_host(a.concurrency.max(a.batch_concurrency) + 4)
        .timeout(Duration::from_secs(300))
        .build()?;
    let c = Arc::new(Client {
        http,
        base: format!("{url}/ngsi-ld/v1"),
        errors: Errors::default(),
        requests: AtomicU64::new(0),
    });
    let version: Value = c
        .http
        .get(format!("{url}/version"))
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?
        .json()
        .await
        .with_context(|| format!("{url}/version is not JSON"))?;
    let tag = format!("{:06x}", fastrand::u32(..) & 0xFF_FFFF);
    let s = Setup {
        seed: a.seed,
        tag: tag.clone(),
        concurrency: a.concurrency,
        duration: Duration::from_secs(a.duration_secs),
    };
    let n = a.entities;
    let baseline = c.type_count().await?;
    if baseline > 0 {
        progress(format!(
            "note: {baseline} {TYPE} entities exist already; queries run over them too"
        ));
    }
    let mut rows: Vec<Row> = Vec::new();
    let mut checks = serde_json::Map::new();

    // 1. single creates
    progress(format!(
        "1/5 single creates: {} clients for {} s (at most {} entities)",
        a.concurrency,
        a.duration_secs,
        n / 2
    ));
    let (singles, secs, lat) = single_creates(&c, &s, (n / 2).max(1)).await;
    progress(format!(
        "  {singles} entities in {secs:.1} s = {:.0}/s",
        singles as f64 / secs
    ));
    rows.push(
        Row::new(
            format!("single creates, POST /entities, {} clients", a.concurrency),
            singles as f64 / secs,
            "entities/s",
        )
        .target(Goal::AtLeast(3000.0))
        .peer("Stellio 130–240 creates/s (8 vCPU)", 240.0),
    );
    latency_rows(&mut rows, "single create latency", lat, None);

    // 2. batch upserts up to N
    progress(format!(
        "2/5 batch upserts of {} entities per request, {} in flight, entities {singles}..{n}",
        a.batch_size, a.batch_concurrency
    ));
    let (upserted, secs) =
        batch_upserts(&c, &s, singles, n, a.batch_size, a.batch_concurrency).await;
    progress(format!(
        "  {upserted} entities in {secs:.1} s = {:.0}/s",
        upserted as f64 / secs
    ));
    rows.push(
        Row::new(
            format!(
                "batch upserts, {} entities/request, {} in flight",
                a.batch_size, a.batch_concurrency
            ),
            upserted as f64 / secs,
            "entities/s",
        )
        .target(Goal::AtLeast(30_000.0))
        .peer("Orion-LD ~1,800 updates/s (1 CPU + 8 CPU MongoDB)", 1800.0),
    );
    let count = c.type_count().await?;
    progress(format!(
        "  check: type={TYPE}&count=true reports {count} (expected {})",
        baseline + n as u64
    ));
    checks.insert("entityCount".into(), json!(count));
    checks.insert("entityCountExpected".into(), json!(baseline + n as u64));
    if count != baseline + n as u64 {
        c.errors.record(format!(
            "count check: {count} {TYPE} entities, expected {}",
            baseline + n as u64
        ));
    }

    // 3. type + q
    progress(format!(
        "3/5 type+q queries: {} clients for {} s",
        a.concurrency, a.duration_secs
    ));
    let (nq, secs, lat, returned, empty) =
        timed_queries(&c, &s, "type+q query", type_q_query).await;
    progress(format!(
        "  {nq} queries in {secs:.1} s = {:.0}/s; {returned} entities returned, {empty} empty results",
        nq as f64 / secs
    ));
    checks.insert("typeQEntitiesReturned".into(), json!(returned));
    checks.insert("typeQEmptyResults".into(), json!(empty));
    if returned == 0 {
        c.errors
            .record("type+q queries returned no entities at all".into());
    }
    rows.push(
        Row::new(
            format!("type+q queries, limit {PAGE}, {} clients", a.concurrency),
            nq as f64 / secs,
            "queries/s",
        )
        .peer("Stellio 11 queries/s at 100k entities (8 vCPU)", 11.0),
    );
    latency_rows(
        &mut rows,
        &format!(
            "type+q latency under load ({n} entities, {} clients)",
            a.concurrency
        ),
        lat,
        None,
    );
    // the same queries one at a time: the latency of a query, without queueing behind 15 others on 2 cores
    let one = Setup {
        seed: s.seed ^ 1,
        tag: s.tag.clone(),
        concurrency: 1,
        duration: s.duration,
    };
    let (_, _, lat1, returned1, _) =
        timed_queries(&c, &one, "type+q query, 1 client", type_q_query).await;
    if returned1 == 0 {
        c.errors
            .record("type+q queries (1 client) returned no entities at all".into());
    }
    latency_rows(
        &mut rows,
        &format!("type+q latency ({n} entities, 1 client)"),
        lat1,
        Some(10.0),
    );

    // 4. geo
    progress(format!(
        "4/5 geo-queries: near;maxDistance=={NEAR_M} and within a {SQUARE_M} m square, {} clients, {} s each",
        a.concurrency, a.duration_secs
    ));
    let (nq, secs, lat, returned, empty) = timed_queries(&c, &s, "geo near query", |rng| {
        let p = (
            LON.0 + rng.f64() * (LON.1 - LON.0),
            LAT.0 + rng.f64() * (LAT.1 - LAT.0),
        );
        let url = format!(
            "/entities?type={TYPE}&georel={}&geometry=Point&coordinates={}&limit={PAGE}",
            enc(&format!("near;maxDistance=={NEAR_M}")),
            enc(&format!("[{},{}]", p.0, p.1))
        );
        let ok = move |e: &Value| point_of(e).is_some_and(|q| haversine_m(p, q) <= NEAR_M + 0.5);
        (
            url,
            Box::new(ok) as Box<dyn Fn(&Value) -> bool + Send + Sync>,
        )
    })
    .await;
    report_geo(
        &c,
        &mut rows,
        &mut checks,
        "near",
        a.concurrency,
        &format!("geo near;maxDistance=={NEAR_M} latency"),
        (nq, secs, lat, returned, empty),
    );
    let (nq, secs, lat, returned, empty) = timed_queries(&c, &s, "geo within query", |rng| {
        let dlat = SQUARE_M / EARTH_R * 180.0 / std::f64::consts::PI;
        let dlon = dlat / (60.17f64.to_radians().cos());
        let x0 = LON.0 + rng.f64() * (LON.1 - LON.0 - dlon);
        let y0 = LAT.0 + rng.f64() * (LAT.1 - LAT.0 - dlat);
        let (x1, y1) = (x0 + dlon, y0 + dlat);
        let url = format!(
            "/entities?type={TYPE}&georel=within&geometry=Polygon&coordinates={}&limit={PAGE}",
            enc(&format!(
                "[[[{x0},{y0}],[{x1},{y0}],[{x1},{y1}],[{x0},{y1}],[{x0},{y0}]]]"
            ))
        );
        let ok = move |e: &Value| {
            point_of(e).is_some_and(|(x, y)| x >= x0 && x <= x1 && y >= y0 && y <= y1)
        };
        (
            url,
            Box::new(ok) as Box<dyn Fn(&Value) -> bool + Send + Sync>,
        )
    })
    .await;
    report_geo(
        &c,
        &mut rows,
        &mut checks,
        "within",
        a.concurrency,
        &format!("geo within {SQUARE_M} m square latency"),
        (nq, secs, lat, returned, empty),
    );

    // 5. temporal
    let m = a.instances;
    let tid = format!("urn:ngsi-ld:{TYPE}:bench-{tag}-history");
    progress(format!(
        "5/5 temporal: loading {m} instances of intensity for {tid}, {} per request",
        a.temporal_chunk
    ));
    let (rate, sum, min, max) = load_temporal(&c, &s, &tid, m, a.temporal_chunk).await?;
    progress(format!("  loaded at {rate:.0} instances/s"));
    rows.push(Row::new(
        format!(
            "temporal load, {} instances/request",
            a.temporal_chunk.min(m)
        ),
        rate,
        "instances/s",
    ));
    let path = format!(
        "/temporal/entities/{}?attrs=intensity&aggrMethods={}&aggrPeriodDuration=P1D&timerel=between&timeAt={}&endTimeAt={}",
        enc(&tid),
        enc("sum,avg,min,max,totalCount,stddev"),
        enc(&year_start().to_rfc3339_opts(SecondsFormat::Secs, true)),
        enc(&year_end().to_rfc3339_opts(SecondsFormat::Secs, true)),
    );
    progress(format!(
        "  aggregation: 1 warm-up + {} runs of GET {path}",
        a.aggr_runs
    ));
    let mut lat = Vec::new();
    for run in 0..=a.aggr_runs {
        let t = Instant::now();
        let r = c
            .send(c.get(&path), &[StatusCode::OK], "temporal aggregation")
            .await;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let Some(r) = r else { continue };
        if run > 0 {
            lat.push(ms);
        }
        if run > 1 {
            continue;
        }
        // check the first two replies in full
        let v: Value = match serde_json::from_slice(&r.body) {
            Ok(v) => v,
            Err(e) => {
                c.errors
                    .record(format!("temporal aggregation: body is not JSON: {e}"));
                continue;
            }
        };
        let total: f64 = aggr_series(&v, "totalCount")
            .unwrap_or_default()
            .iter()
            .sum();
        let got_sum: f64 = aggr_series(&v, "sum").unwrap_or_default().iter().sum();
        let got_min = aggr_series(&v, "min")
            .unwrap_or_default()
            .into_iter()
            .fold(f64::INFINITY, f64::min);
        let got_max = aggr_series(&v, "max")
            .unwrap_or_default()
            .into_iter()
            .fold(f64::NEG_INFINITY, f64::max);
        let periods = aggr_series(&v, "totalCount").map_or(0, |s| s.len());
        for m2 in ["avg", "stddev"] {
            if aggr_series(&v, m2).is_none() {
                c.errors
                    .record(format!("temporal aggregation: no {m2} series"));
            }
        }
        if run == 0 {
            progress(format!(
                "  check: totalCount {total} (expected {m}), sum {got_sum} (expected {sum}), min {got_min}, max {got_max}, {periods} periods"
            ));
            checks.insert("aggregationTotalCount".into(), json!(total));
            checks.insert("aggregationTotalCountExpected".into(), json!(m));
            checks.insert("aggregationPeriods".into(), json!(periods));
        }
        if total != m as f64
            || (got_sum - sum).abs() > 1e-9 * sum.abs().max(1.0)
            || got_min != min
            || got_max != max
        {
            c.errors.record(format!(
                "aggregation check: totalCount {total}/{m}, sum {got_sum}/{sum}, min {got_min}/{min}, max {got_max}/{max}"
            ));
        }
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    for (p, target) in [(50.0, None), (95.0, Some(200.0)), (99.0, None)] {
        let mut r = Row::new(
            format!("aggregation over {m} instances (6 methods, P1D, 1 year) p{p:.0}"),
            percentile(&lat, p).unwrap_or(f64::NAN),
            "ms",
        );
        if let Some(t) = target {
            r = r.target(Goal::AtMost(t));
        }
        rows.push(r);
    }

    // done
    let mut db_bytes = None;
    if let Some(sv) = server {
        db_bytes = Some(db_size(&sv.db));
        let _ = sv.stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(5), sv.handle).await;
    }
    let errors = c.errors.count();
    let requests = c.requests.load(Ordering::Relaxed);
    let samples = c
        .errors
        .samples
        .lock()
        .map(|s| s.clone())
        .unwrap_or_default();
    Ok(HubOutcome {
        url,
        version,
        rows,
        checks,
        requests,
        errors,
        samples,
        db_bytes,
    })
}

fn print_hub(a: &BenchArgs, o: &HubOutcome) -> Result<()> {
    let (n, m, url, version, rows, checks, requests, errors, samples, db_bytes) = (
        a.entities,
        a.instances,
        &o.url,
        &o.version,
        &o.rows,
        &o.checks,
        o.requests,
        o.errors,
        &o.samples,
        o.db_bytes,
    );
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    if a.json {
        let out = json!({
            "benchmark": "hub",
            "server": if a.url.is_some() { json!(url) } else { json!("in-process") },
            "serverVersion": version.get("version"),
            "cores": cores,
            "config": {
                "entities": n, "instances": m, "concurrency": a.concurrency, "durationSecs": a.duration_secs,
                "batchSize": a.batch_size, "batchConcurrency": a.batch_concurrency,
                "temporalChunk": a.temporal_chunk, "aggrRuns": a.aggr_runs, "seed": a.seed,
            },
            "results": rows_json(rows),
            "checks": checks,
            "requests": requests,
            "errors": errors,
            "errorSamples": samples,
            "dbBytes": db_bytes,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "urbantwin bench hub: {n} entities, {m} temporal instances, {} clients, {} s phases, {cores} cores, server {}",
            a.concurrency,
            a.duration_secs,
            if a.url.is_some() { url.as_str() } else { "in-process" }
        );
        println!();
        print!("{}", markdown(rows, "published peer figure"));
        println!();
        println!(
            "{requests} requests, {errors} errors{}",
            db_bytes.map_or(String::new(), |b| format!(
                "; store size {:.0} MB",
                b as f64 / 1e6
            ))
        );
    }
    if errors > 0 {
        for e in samples {
            eprintln!("[bench] error: {e}");
        }
        bail!("{errors} of {requests} requests or checks failed; the figures above are not valid");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_nearest_rank() {
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 95.0), Some(95.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        let w = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&w, 50.0), Some(2.0));
        assert_eq!(percentile(&w, 51.0), Some(3.0));
    }

    #[test]
    fn values_format_for_the_table() {
        assert_eq!(fmt_value(1234567.4), "1,234,567");
        assert_eq!(fmt_value(100.0), "100");
        assert_eq!(fmt_value(99.456), "99.46");
        assert_eq!(fmt_value(-4321.0), "-4,321");
        assert_eq!(fmt_value(f64::NAN), "n/a");
        assert_eq!(fmt_value(3.2e-8), "3.2e-8");
        assert_eq!(fmt_value(0.0), "0.00");
        assert_eq!(fmt_value(0.017), "0.02");
    }

    #[test]
    fn generated_data_stays_in_bounds_and_is_deterministic() {
        for i in 0..1000 {
            let g = gen(1, i);
            assert!(g.intensity < MAX_INTENSITY);
            assert!((1..=LANES).contains(&g.lane));
            assert!(g.lon >= LON.0 && g.lon < LON.1 && g.lat >= LAT.0 && g.lat < LAT.1);
            assert!((5.0..=80.0).contains(&g.speed));
            assert_eq!(gen(1, i).intensity, g.intensity);
        }
        assert_eq!(instance_time(0, 10), year_start());
        assert!(instance_time(9, 10) < year_end());
    }

    #[test]
    fn haversine_matches_a_known_distance() {
        // one degree of latitude is ~111.2 km on the mean sphere
        let d = haversine_m((24.94, 60.0), (24.94, 61.0));
        assert!((d - 111_195.0).abs() < 10.0, "{d}");
    }
}
