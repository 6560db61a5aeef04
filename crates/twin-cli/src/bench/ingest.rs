//! `urbantwin bench ingest`: sustained MQTT ingestion into SQLite and PostgreSQL through a real broker (`--broker`,
//! the machine's Mosquitto by default), with the latency from publish to queryable and a count of lost messages.
//!
//! Per store: the hub's ingestion (`twin_ingest::start`, as `urbantwin serve --ingest` runs it) on a fresh store,
//! then two phases. *Throughput*: `--messages` sensor readings published by four MQTT 5 clients at QoS 1 as fast as
//! the broker takes them, never more than [`WINDOW`] ahead of what the hub has stored (so the broker never has to
//! drop what it queues); the rate is messages over the time until the hub acknowledged the last. *Latency*: readings
//! at a steady `--rate` (default: the issue's goal, 20,000/s for SQLite and 10,000/s for PostgreSQL) for
//! `--duration-secs`, with a probe message every 10 ms whose arrival a reader sees by polling the store every 2 ms:
//! its latency is the time from publishing the probe to reading its value (so it includes the broker, the batch
//! wait, the commit and up to one poll). Loss: every reading is a temporal instance; their count must equal what
//! was published. Publishers, hub and reader share this process and its cores. No assertion on time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use twin_ingest::IngestConfig;
use twin_model::query::TypeExpr;
use twin_store::{EntityQuery, Store, TemporalQuery};

use super::{median, print_results, progress, BenchArgs, Goal, Row};

/// Publisher connections.
const PUBLISHERS: usize = 4;
/// Most messages published and not yet stored by the hub.
const WINDOW: u64 = 50_000;
/// Sensors the readings are spread over.
const SENSORS: usize = 10_000;
/// A probe every this often in the latency phase; the reader polls every `POLL`.
const PROBE_EVERY: Duration = Duration::from_millis(10);
const POLL: Duration = Duration::from_millis(2);
const V: &str = "https://uri.etsi.org/ngsi-ld/default-context/";

fn config(broker: &str, tag: &str) -> Result<IngestConfig> {
    IngestConfig::parse(&format!(
        r#"[broker]
url = "{broker}"
client_id = "urbantwin-bench-{tag}"
session_expiry_s = 60
[[topic]]
filter = "urbantwin-bench/{tag}/+"
format = "json"
id = "urn:ngsi-ld:BenchSensor:{tag}-{{$.s}}"
type = "BenchSensor"
observed_at = "$.ts"
[topic.attributes]
n = {{ path = "$.n", required = true }}
"#
    ))
    .map_err(|e| anyhow!("{e}"))
}

/// One publisher connection: QoS 1 messages and a count of the broker's acknowledgements.
struct Publisher {
    client: AsyncClient,
    acked: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

async fn publisher(host: &str, port: u16, id: String) -> Result<Publisher> {
    let mut opts = MqttOptions::new(id, host, port);
    opts.set_clean_start(true);
    let (client, mut eventloop) = AsyncClient::new(opts, 4096);
    let acked = Arc::new(AtomicU64::new(0));
    let a = acked.clone();
    let task = tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => {
                    a.fetch_add(1, Ordering::Relaxed);
                }
                Ok(_) => {}
                Err(e) => {
                    progress(format!("publisher lost the broker: {e}"));
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    });
    Ok(Publisher {
        client,
        acked,
        task,
    })
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn reading(i: u64, ts: i64) -> String {
    format!(r#"{{"s":"s{}","n":{i},"ts":{ts}}}"#, i as usize % SENSORS)
}

/// What one store did.
struct Outcome {
    rate: f64,
    latencies_ms: Vec<f64>,
    steady_rate: f64,
    published: u64,
    stored: u64,
}

async fn measure(
    label: &str,
    store: Arc<dyn Store>,
    broker: &str,
    messages: u64,
    rate: f64,
    secs: u64,
) -> Result<Outcome> {
    let (host, port) = twin_ingest::mqtt::broker_address(broker).map_err(|e| anyhow!(e))?;
    let tag = format!("{:06x}", fastrand::u32(..) & 0xFF_FFFF);
    let ingest = twin_ingest::start(config(broker, &tag)?, store.clone()).await?;
    let t = Instant::now();
    while !ingest.stats.snapshot().broker.connected {
        if t.elapsed() > Duration::from_secs(10) {
            bail!("the hub cannot connect to {broker}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut pubs = Vec::new();
    for k in 0..PUBLISHERS {
        pubs.push(publisher(&host, port, format!("urbantwin-bench-pub-{tag}-{k}")).await?);
    }
    let topic = format!("urbantwin-bench/{tag}/readings");
    // polled for every reading published: the counter alone, not a copy of every topic's counters
    let stored = || ingest.stats.acknowledged();

    // throughput: as fast as the broker takes them, at most WINDOW ahead of the hub
    progress(format!("{label}: {messages} readings as fast as possible"));
    let t0 = Instant::now();
    let mut i = 0u64;
    while i < messages {
        while i.saturating_sub(stored()) >= WINDOW {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let p = &pubs[i as usize % PUBLISHERS];
        p.client
            .publish(topic.clone(), QoS::AtLeastOnce, false, reading(i, now_ms()))
            .await?;
        i += 1;
    }
    while stored() < messages {
        if t0.elapsed() > Duration::from_secs(600) {
            bail!(
                "{label}: only {} of {messages} stored after 10 minutes",
                stored()
            );
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let rate_max = messages as f64 / t0.elapsed().as_secs_f64();
    progress(format!("{label}: {rate_max:.0} messages/s"));

    // latency at a steady rate, with probes
    progress(format!(
        "{label}: {rate:.0} readings/s for {secs} s, a probe every {} ms",
        PROBE_EVERY.as_millis()
    ));
    let probe_id = format!("urn:ngsi-ld:BenchSensor:{tag}-probe");
    let sent: Arc<std::sync::Mutex<Vec<Instant>>> = Default::default();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (store, sent, done, probe_id) =
            (store.clone(), sent.clone(), done.clone(), probe_id.clone());
        tokio::spawn(async move {
            let mut seen = 0usize;
            let mut lat = Vec::new();
            let attr = format!("{V}n");
            while !done.load(Ordering::Relaxed) || seen < sent.lock().map(|s| s.len()).unwrap_or(0)
            {
                if let Ok(Some(e)) = store.get(&probe_id).await {
                    let k = e
                        .attrs
                        .get(&attr)
                        .and_then(|a| a[0].value.as_u64())
                        .unwrap_or(0) as usize;
                    let at = Instant::now();
                    let sent = sent.lock().map(|s| s.clone()).unwrap_or_default();
                    // a probe superseded before a poll saw it is measured by the next one seen
                    while seen <= k && seen < sent.len() {
                        if seen == k {
                            lat.push((at - sent[seen]).as_secs_f64() * 1000.0);
                        }
                        seen += 1;
                    }
                }
                tokio::time::sleep(POLL).await;
            }
            lat
        })
    };
    let start_i = i;
    let t1 = Instant::now();
    let end = t1 + Duration::from_secs(secs);
    let mut next_probe = t1;
    let mut probes = 0u64;
    while Instant::now() < end {
        // as many readings as the rate allows by now
        let due = start_i + (t1.elapsed().as_secs_f64() * rate) as u64;
        while i < due {
            pubs[i as usize % PUBLISHERS]
                .client
                .publish(topic.clone(), QoS::AtLeastOnce, false, reading(i, now_ms()))
                .await?;
            i += 1;
        }
        if Instant::now() >= next_probe {
            let body = format!(r#"{{"s":"probe","n":{probes},"ts":{}}}"#, now_ms());
            sent.lock()
                .map_err(|_| anyhow!("poisoned"))?
                .push(Instant::now());
            pubs[0]
                .client
                .publish(topic.clone(), QoS::AtLeastOnce, false, body)
                .await?;
            probes += 1;
            next_probe += PROBE_EVERY;
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
    let published = i + probes;
    let steady_rate = (i - start_i) as f64 / t1.elapsed().as_secs_f64();
    let t = Instant::now();
    while stored() < published {
        if t.elapsed() > Duration::from_secs(120) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    done.store(true, Ordering::Relaxed);
    let latencies_ms = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .context("the probe reader did not finish")??;
    // the broker's last acknowledgements may still be on their way to the publishers
    let acked_now = || -> u64 { pubs.iter().map(|p| p.acked.load(Ordering::Relaxed)).sum() };
    let t = Instant::now();
    while acked_now() < published && t.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let acked = acked_now();
    for p in &pubs {
        p.task.abort();
    }
    ingest.stop();
    // loss: every reading the broker acknowledged is one temporal instance
    let q = TemporalQuery {
        entities: EntityQuery {
            types: Some(TypeExpr::Type(format!("{V}BenchSensor"))),
            id_pattern: Some(regex::Regex::new(&format!(
                "^urn:ngsi-ld:BenchSensor:{tag}-"
            ))?),
            limit: SENSORS + 10,
            ..Default::default()
        },
        instance_limit: published as usize + 10,
        ..Default::default()
    };
    let in_store: u64 = store
        .temporal_query(&q)
        .await
        .map_err(|e| anyhow!("{e}"))?
        .iter()
        .flat_map(|e| e.attrs.values())
        .map(|v| v.len() as u64)
        .sum();
    progress(format!(
        "{label}: {published} published, {acked} acknowledgements counted by the publishers, {in_store} readings \
         stored, {} latency samples",
        latencies_ms.len()
    ));
    Ok(Outcome {
        rate: rate_max,
        latencies_ms,
        steady_rate,
        published,
        stored: in_store,
    })
}

fn percentile(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let k = ((p / 100.0) * (s.len() - 1) as f64).round() as usize;
    s[k.min(s.len() - 1)]
}

fn rows_of(label: &str, o: &Outcome, goal_rate: f64, rows: &mut Vec<Row>) {
    rows.push(
        Row::new(
            format!("{label}: sustained ingestion"),
            o.rate,
            "messages/s",
        )
        .target(Goal::AtLeast(goal_rate)),
    );
    rows.push(
        Row::new(
            format!("{label}: p99 publish → queryable at {:.0}/s", o.steady_rate),
            percentile(&o.latencies_ms, 99.0),
            "ms",
        )
        .target(Goal::AtMost(100.0)),
    );
    rows.push(Row::new(
        format!("{label}: median publish → queryable"),
        median(&o.latencies_ms),
        "ms",
    ));
    rows.push(
        Row::new(
            format!("{label}: readings lost (of {} published)", o.published),
            o.published.saturating_sub(o.stored) as f64,
            "messages",
        )
        .target(Goal::AtMost(0.0)),
    );
}

pub async fn run(a: &BenchArgs) -> Result<()> {
    let messages = a.messages as u64;
    if messages == 0 || a.duration_secs == 0 {
        bail!("--messages and --duration-secs must be at least 1");
    }
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    // SQLite: a fresh file
    let dir = tempfile::Builder::new()
        .prefix("urbantwin-bench-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let db = dir.path().join("ingest.db");
    let sqlite = crate::open_store(&db.to_string_lossy()).await?;
    let rate = a.rate.unwrap_or(20_000.0);
    let o = measure("SQLite", sqlite, &a.broker, messages, rate, a.duration_secs).await?;
    rows_of("SQLite", &o, 20_000.0, &mut rows);
    // PostgreSQL: the database named (its BenchSensor entities of this run are counted apart from any others)
    match &a.pg {
        Some(url) => {
            let pg = crate::open_store(url).await?;
            let rate = a.rate.unwrap_or(10_000.0);
            let o = measure("PostgreSQL", pg, &a.broker, messages, rate, a.duration_secs).await?;
            rows_of("PostgreSQL", &o, 10_000.0, &mut rows);
        }
        None => notes.push(
            "PostgreSQL was not measured: name a database with --pg postgres://…".to_string(),
        ),
    }
    notes.push(format!(
        "Broker {}; {PUBLISHERS} publisher connections at QoS 1; readings over {SENSORS} sensors; the hub batches up \
         to {} messages or {} ms.",
        a.broker,
        twin_ingest::config::BatchConfig::default().max_messages,
        twin_ingest::config::BatchConfig::default().max_wait_ms
    ));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    print_results("ingest", &rows, &notes, threads, "peer", a.json);
    Ok(())
}
