//! MQTT ingestion against the real Mosquitto: 100,000 messages arrive complete and redeliveries change nothing;
//! a hub killed with SIGKILL mid-stream and restarted loses and doubles no message; the broker going away and
//! coming back is survived; refused messages land in the dead-letter table with their reason.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use twin_ingest::IngestConfig;
use twin_model::query::TypeExpr;
use twin_store::{EntityQuery, SqliteStore, Store, TemporalQuery};

const V: &str = "https://uri.etsi.org/ngsi-ld/default-context/";

fn config(url: &str, client_id: &str) -> IngestConfig {
    IngestConfig::parse(&format!(
        r#"[broker]
url = "{url}"
client_id = "{client_id}"
[batch]
max_messages = 2000
max_wait_ms = 10
[[topic]]
filter = "load/+"
format = "json"
id = "urn:ngsi-ld:Sensor:{{$.s}}"
type = "Sensor"
observed_at = "$.ts"
[topic.attributes]
n = {{ path = "$.n", required = true }}
[[topic]]
filter = "ngsi/#"
format = "ngsi-ld"
"#
    ))
    .unwrap()
}

/// Message `i`: sensor `i % sensors`, its `n` = i, observed at a time unique to it.
fn message(i: usize, sensors: usize) -> String {
    format!(
        r#"{{"s": "s{}", "n": {i}, "ts": {}}}"#,
        i % sensors,
        1_780_000_000_000i64 + i as i64
    )
}

/// Every stored value of `n`, per sensor, in time order (the history).
async fn history(store: &dyn Store) -> BTreeMap<String, Vec<i64>> {
    let q = TemporalQuery {
        entities: EntityQuery {
            types: Some(TypeExpr::Type(format!("{V}Sensor"))),
            limit: 100_000,
            ..Default::default()
        },
        instance_limit: 1_000_000,
        ..Default::default()
    };
    let mut out = BTreeMap::new();
    for e in store.temporal_query(&q).await.unwrap() {
        let ns = e
            .attrs
            .get(&format!("{V}n"))
            .map(|v| v.iter().map(|a| a.value.as_i64().unwrap()).collect())
            .unwrap_or_default();
        out.insert(e.id, ns);
    }
    out
}

fn total(h: &BTreeMap<String, Vec<i64>>) -> usize {
    h.values().map(Vec::len).sum()
}

/// Each of messages `0..n` stored exactly once, as the history of its sensor.
fn assert_exactly_once(h: &BTreeMap<String, Vec<i64>>, n: usize, sensors: usize) {
    let mut seen = vec![0u8; n];
    for (id, ns) in h {
        for &x in ns {
            let x = x as usize;
            assert!(x < n, "{id} holds a value {x} never sent");
            assert_eq!(format!("urn:ngsi-ld:Sensor:s{}", x % sensors), *id);
            seen[x] += 1;
        }
    }
    let missing: Vec<usize> = (0..n).filter(|&i| seen[i] == 0).collect();
    let doubled: Vec<usize> = (0..n).filter(|&i| seen[i] > 1).collect();
    assert!(
        missing.is_empty(),
        "{} messages missing, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert!(
        doubled.is_empty(),
        "{} messages doubled, e.g. {:?}",
        doubled.len(),
        &doubled[..doubled.len().min(10)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_messages_arrive_complete_and_redeliveries_change_nothing() {
    if !broker_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(&dir.path().join("broker"));
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("twin.db")).unwrap());
    let ingest = twin_ingest::start(config(&broker.url(), "hub-complete"), store.clone())
        .await
        .unwrap();
    const N: usize = 100_000;
    const SENSORS: usize = 1000;
    let lines: Vec<String> = (0..N).map(|i| message(i, SENSORS)).collect();
    publish_all(broker.port, "load/a", lines).await;
    eventually(120, "100,000 messages stored", async || {
        ingest.stats.snapshot().acknowledged >= N as u64
    })
    .await;
    let h = history(&*store).await;
    assert_eq!(h.len(), SENSORS);
    assert_exactly_once(&h, N, SENSORS);
    // the current value is the newest message of each sensor
    let last = store.get("urn:ngsi-ld:Sensor:s7").await.unwrap().unwrap();
    assert_eq!(
        last.attrs[&format!("{V}n")][0].value,
        serde_json::json!(N - SENSORS + 7)
    );
    let s = ingest.stats.snapshot();
    assert_eq!(s.topics["load/a"].received, N as u64);
    assert_eq!(s.topics["load/a"].written, N as u64);
    assert_eq!(s.topics["load/a"].dead_lettered, 0);
    assert!(s.broker.connected);
    // the same messages again (as a broker redelivers after a crash): nothing changes, nothing is doubled
    let again: Vec<String> = (N - 500..N).map(|i| message(i, SENSORS)).collect();
    broker.publish_lines("load/a", &again);
    eventually(30, "the redeliveries", async || {
        ingest.stats.snapshot().acknowledged >= (N + 500) as u64
    })
    .await;
    assert_eq!(total(&history(&*store).await), N);
    assert_eq!(ingest.stats.snapshot().topics["load/a"].unchanged, 500);
    // and so do older messages again, after newer ones were stored (a broker resending what a hub stored but had not
    // acknowledged when it crashed or lost the connection)
    let old: Vec<String> = (1000..1500).map(|i| message(i, SENSORS)).collect();
    broker.publish_lines("load/a", &old);
    eventually(30, "the old messages again", async || {
        ingest.stats.snapshot().acknowledged >= (N + 1000) as u64
    })
    .await;
    assert_eq!(total(&history(&*store).await), N);
    let t = &ingest.stats.snapshot().topics["load/a"];
    assert_eq!((t.unchanged, t.stale), (1000, 0));
    // an older observation than the stored one goes to the history only, once however often it comes
    let late = r#"{"s": "s7", "n": 7, "ts": 1770000000000}"#.to_string();
    broker.publish_lines("load/a", &[late.clone(), late]);
    eventually(30, "the late message and its copy", async || {
        ingest.stats.snapshot().acknowledged >= (N + 1002) as u64
    })
    .await;
    let t = &ingest.stats.snapshot().topics["load/a"];
    assert_eq!((t.stale, t.unchanged), (1, 1001));
    let h = history(&*store).await;
    assert_eq!(h["urn:ngsi-ld:Sensor:s7"].len(), N / SENSORS + 1);
    let last = store.get("urn:ngsi-ld:Sensor:s7").await.unwrap().unwrap();
    assert_eq!(
        last.attrs[&format!("{V}n")][0].value,
        serde_json::json!(N - SENSORS + 7)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_messages_are_dead_letters_with_their_reason() {
    if !broker_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(&dir.path().join("broker"));
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("twin.db")).unwrap());
    let ingest = twin_ingest::start(config(&broker.url(), "hub-dead"), store.clone())
        .await
        .unwrap();
    broker.publish_lines(
        "load/b",
        &[
            r#"{"s": "ok", "n": 1, "ts": 1780000000000}"#.into(),
            "{not json".into(),
            r#"{"s": "x", "ts": 1780000000000}"#.into(),
        ],
    );
    broker.publish_lines(
        "ngsi/devices",
        &[
            r#"{"id": "urn:ngsi-ld:Device:d1", "type": "Device", "reading": 3}"#.into(),
            r#"{"id": "not a uri", "type": "Device"}"#.into(),
            r#"{"@context": "https://example.org/unknown.jsonld", "id": "urn:ngsi-ld:Device:d2", "type": "Device"}"#.into(),
        ],
    );
    eventually(30, "six messages", async || {
        ingest.stats.snapshot().acknowledged >= 6
    })
    .await;
    let (n, letters) = store.dead_letters(None, None, 10).await.unwrap();
    assert_eq!(n, 4);
    let reasons: Vec<(&str, &str)> = letters
        .iter()
        .rev()
        .map(|l| (l.topic.as_str(), l.reason.as_str()))
        .collect();
    assert_eq!(reasons[0].0, "load/b");
    assert!(reasons[0].1.contains("not JSON"), "{reasons:?}");
    assert!(reasons[1].1.contains("required n"), "{reasons:?}");
    assert_eq!(reasons[2].0, "ngsi/devices");
    assert!(reasons[2].1.contains("not a URI"), "{reasons:?}");
    assert!(reasons[3].1.contains("not registered"), "{reasons:?}");
    assert_eq!(letters.last().unwrap().payload, b"{not json");
    let s = ingest.stats.snapshot();
    assert_eq!(
        (s.topics["load/b"].written, s.topics["load/b"].dead_lettered),
        (1, 2)
    );
    assert_eq!(
        (
            s.topics["ngsi/devices"].written,
            s.topics["ngsi/devices"].dead_lettered
        ),
        (1, 2)
    );
    assert!(s.topics["ngsi/devices"]
        .last_error
        .as_deref()
        .unwrap()
        .contains("not registered"));
    let d1 = store.get("urn:ngsi-ld:Device:d1").await.unwrap().unwrap();
    let r = &d1.attrs[&format!("{V}reading")][0];
    assert_eq!(r.provenance.channel.as_deref(), Some("mqtt"));
    assert_eq!(r.provenance.source.as_deref(), Some("mqtt:ngsi/devices"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_going_away_and_coming_back_is_survived() {
    if !broker_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(&dir.path().join("broker"));
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("twin.db")).unwrap());
    let ingest = twin_ingest::start(config(&broker.url(), "hub-restart"), store.clone())
        .await
        .unwrap();
    let lines: Vec<String> = (0..1000).map(|i| message(i, 10)).collect();
    broker.publish_lines("load/c", &lines);
    eventually(30, "the first thousand", async || {
        ingest.stats.snapshot().acknowledged >= 1000
    })
    .await;
    broker.stop();
    eventually(30, "the hub to notice", async || {
        !ingest.stats.snapshot().broker.connected
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    broker.restart();
    let lines: Vec<String> = (1000..2000).map(|i| message(i, 10)).collect();
    publish_all(broker.port, "load/c", lines).await;
    // the broker may resend some of the first thousand (their acknowledgements were in flight when it stopped),
    // so the count of acknowledgements can reach 2000 before the second thousand is stored: wait for the history
    eventually(60, "the second thousand", async || {
        total(&history(&*store).await) >= 2000
    })
    .await;
    assert_exactly_once(&history(&*store).await, 2000, 10);
    let s = ingest.stats.snapshot();
    assert!(s.broker.connected);
    assert_eq!(s.broker.connections, 2);
    assert!(
        s.broker.session_present,
        "the broker kept the hub's session over its restart"
    );
    assert!(s.broker.last_error.is_some());
}

/// Run as a child process by the test below (with `URBANTWIN_TEST_HUB` set): a hub that ingests until killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_process() {
    let Ok(spec) = std::env::var("URBANTWIN_TEST_HUB") else {
        return;
    };
    let (url, db) = spec.split_once('|').unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(db).unwrap());
    let _ingest = twin_ingest::start(config(url, "hub-killed"), store)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(600)).await;
}

fn spawn_hub(url: &str, db: &std::path::Path) -> std::process::Child {
    std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "hub_process",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env("URBANTWIN_TEST_HUB", format!("{url}|{}", db.display()))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_killed_mid_stream_loses_and_doubles_nothing() {
    if !broker_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(&dir.path().join("broker"));
    let db = dir.path().join("twin.db");
    // the store exists before the hub starts, so that this process can watch it
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&db).unwrap());
    let mut hub = spawn_hub(&broker.url(), &db);
    const N: usize = 100_000;
    const SENSORS: usize = 500;
    let lines: Vec<String> = (0..N).map(|i| message(i, SENSORS)).collect();
    let publish = tokio::spawn(publish_all(broker.port, "load/k", lines));
    // kill it with SIGKILL once it has stored part of the stream
    eventually(120, "a first part stored", async || {
        total(&history(&*store).await) >= 20_000
    })
    .await;
    unsafe_kill(hub.id(), "KILL");
    let _ = hub.wait();
    let at_kill = total(&history(&*store).await);
    assert!(
        at_kill < N,
        "the hub was killed before the end of the stream"
    );
    let mut hub = spawn_hub(&broker.url(), &db);
    publish.await.unwrap();
    eventually(180, "every message after the restart", async || {
        total(&history(&*store).await) >= N
    })
    .await;
    // a moment for anything doubled to show
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = hub.kill();
    let _ = hub.wait();
    assert_exactly_once(&history(&*store).await, N, SENSORS);
    store.check_integrity().await.unwrap();
}
