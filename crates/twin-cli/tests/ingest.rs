//! `urbantwin serve --ingest FILE` end to end, with the machine's Mosquitto and `mosquitto_pub`: sensor messages
//! become NGSI-LD entities with history, a refused message lands in the dead-letter table that `/api/ingest` shows
//! and clears, and a bad configuration stops start-up with a clear message. On SQLite and on PostgreSQL.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BROKER: &str = "127.0.0.1:1883";

fn broker_available() -> bool {
    let ok = std::net::TcpStream::connect(BROKER).is_ok()
        && Command::new("mosquitto_pub").arg("--help").output().is_ok();
    if !ok {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("CI must run the MQTT tests, but no broker answers at {BROKER} or mosquitto_pub is missing");
        }
        eprintln!("skipped: no MQTT broker at {BROKER} (or no mosquitto_pub)");
    }
    ok
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn publish(topic: &str, lines: &[&str]) {
    use std::io::Write;
    let mut p = Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            "1883",
            "-q",
            "1",
            "-t",
            topic,
            "-l",
        ])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = p.stdin.take().unwrap();
    for l in lines {
        writeln!(stdin, "{l}").unwrap();
    }
    drop(stdin);
    assert!(p.wait().unwrap().success());
}

/// A client sending the API key of an administrator made with `urbantwin accounts` in the store `db`.
fn admin_client(db: &str) -> reqwest::Client {
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_urbantwin"))
            .args(args)
            .args(["--db", db])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    run(&["accounts", "add", "tester", "--role", "admin"]);
    let key = run(&["accounts", "key", "tester", "--scope", "admin"]);
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

async fn get(http: &reqwest::Client, url: &str) -> (u16, Value) {
    let r = http.get(url).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn eventually(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let t = Instant::now();
    while !f().await {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs the whole journey against `db` (a SQLite path or a PostgreSQL URL).
async fn journey(db: &str, dir: &Path) {
    // topics and ids of their own, since the machine's broker is shared
    let tag = format!("t{}{}", std::process::id(), free_port());
    let config = dir.join("ingest.toml");
    std::fs::write(
        &config,
        format!(
            r#"[broker]
url = "mqtt://{BROKER}"
client_id = "urbantwin-test-{tag}"
session_expiry_s = 60
[[topic]]
filter = "{tag}/air/+"
format = "json"
dataset = "urn:ngsi-ld:Dataset:air-sensors"
id = "urn:ngsi-ld:AirQualityObserved:{tag}-{{1}}"
type = "AirQualityObserved"
observed_at = "$.time"
[topic.attributes]
NO2 = {{ path = "$.no2", unit = "GQ", required = true }}
temperature = {{ path = "$.t_f", from = "FAH", unit = "CEL" }}
"#
        ),
    )
    .unwrap();
    // the topic's dataset is declared first (serve refuses a topic writing to an undeclared one)
    let declared = Command::new(env!("CARGO_BIN_EXE_urbantwin"))
        .args([
            "accounts",
            "access",
            "urn:ngsi-ld:Dataset:air-sensors",
            "--owner",
            "city-environment",
            "--licence",
            "CC-BY-4.0",
            "--db",
            db,
        ])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(declared.success());
    // the dead letters are an administrator's: the test reads them with an administrator's key
    let http = admin_client(db);
    let port = free_port();
    let _server = Serve(
        Command::new(env!("CARGO_BIN_EXE_urbantwin"))
            .args([
                "serve",
                "--db",
                db,
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .arg("--ingest")
            .arg(&config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let status_url = format!("{base}/api/ingest");
    eventually("the server and its MQTT session", async || {
        match http.get(&status_url).send().await {
            Ok(r) => r
                .json::<Value>()
                .await
                .is_ok_and(|v| v["broker"]["connected"] == true),
            Err(_) => false,
        }
    })
    .await;
    publish(
        &format!("{tag}/air/s1"),
        &[
            r#"{"time": "2026-11-26T08:00:00Z", "no2": 31.5, "t_f": 41}"#,
            r#"{"time": "2026-11-26T09:00:00Z", "no2": 44.0, "t_f": 50}"#,
            r#"{"time": "2026-11-26T09:00:00Z", "t_f": 50}"#,
        ],
    );
    eventually("three messages", async || {
        get(&http, &status_url).await.1["acknowledged"].as_u64() >= Some(3)
    })
    .await;
    // the sensor as an NGSI-LD entity, with its newest values and history
    let id = format!("urn:ngsi-ld:AirQualityObserved:{tag}-s1");
    let (status, e) = get(&http, &format!("{base}/ngsi-ld/v1/entities/{id}")).await;
    assert_eq!(status, 200, "{e}");
    assert_eq!(e["type"], "AirQualityObserved");
    assert_eq!(e["NO2"]["value"], 44.0);
    assert_eq!(e["NO2"]["unitCode"], "GQ");
    assert_eq!(e["NO2"]["observedAt"], "2026-11-26T09:00:00.000Z");
    assert_eq!(e["temperature"]["value"], 10.0);
    let (_, h) = get(
        &http,
        &format!("{base}/ngsi-ld/v1/temporal/entities/{id}?attrs=NO2"),
    )
    .await;
    let values: Vec<f64> = h["NO2"]
        .as_array()
        .unwrap_or_else(|| panic!("{h}"))
        .iter()
        .map(|i| i["value"].as_f64().unwrap())
        .collect();
    assert_eq!(values, [31.5, 44.0]);
    // counters and the refused message
    let (_, s) = get(&http, &status_url).await;
    let t = &s["topics"][format!("{tag}/air/s1")];
    assert_eq!(
        (
            t["received"].as_u64(),
            t["written"].as_u64(),
            t["deadLettered"].as_u64()
        ),
        (Some(3), Some(2), Some(1)),
        "{s}"
    );
    assert!(t["lastError"].as_str().unwrap().contains("required NO2"));
    let dl_url = format!("{base}/api/ingest/dead-letters?topic={tag}/air/s1");
    let (status, dl) = get(&http, &dl_url).await;
    assert_eq!(status, 200);
    assert_eq!(dl["total"], 1, "{dl}");
    let letter = &dl["deadLetters"][0];
    assert_eq!(
        letter["payload"],
        r#"{"time": "2026-11-26T09:00:00Z", "t_f": 50}"#
    );
    assert_eq!(letter["source"], "mqtt");
    let one = format!("{base}/api/ingest/dead-letters/{}", letter["id"]);
    assert_eq!(
        http.delete(&one).send().await.unwrap().status().as_u16(),
        204
    );
    let r = http.delete(&one).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(
        r.json::<Value>().await.unwrap()["type"],
        "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound"
    );
    assert_eq!(get(&http, &dl_url).await.1["total"], 0);
    let (status, p) = get(&http, &format!("{base}/api/ingest/dead-letters?limit=0")).await;
    assert_eq!(status, 400, "{p}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensors_over_mqtt_become_entities_on_sqlite() {
    if !broker_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("twin.db");
    journey(db.to_str().unwrap(), dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensors_over_mqtt_become_entities_on_postgres() {
    if !broker_available() {
        return;
    }
    let Some(pg) = twin_store::testing::TestDatabase::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    journey(pg.url(), dir.path()).await;
}

#[test]
fn a_bad_ingestion_configuration_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ingest.toml");
    std::fs::write(
        &config,
        "[broker]\nurl = \"mqtt://127.0.0.1\"\n[[topic]]\nfilter = \"a/+\"\nformat = \"json\"\ntype = \"T\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_urbantwin"))
        .args(["serve", "--db"])
        .arg(dir.path().join("twin.db"))
        .arg("--ingest")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ingest.toml") && err.contains("id template"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_feed_keeps_the_sensors_alive() {
    if !broker_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // a tiny city: the feed is what is tested
    let osm = dir.path().join("tiny.osm");
    std::fs::write(
        &osm,
        r#"<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6">
  <node id="1" lat="60.170" lon="24.940"/>
  <node id="2" lat="60.171" lon="24.942"/>
  <way id="10"><nd ref="1"/><nd ref="2"/><tag k="highway" v="residential"/><tag k="name" v="Testikatu"/></way>
</osm>"#,
    )
    .unwrap();
    let port = free_port();
    let started = chrono::Utc::now();
    let _demo = Serve(
        Command::new(env!("CARGO_BIN_EXE_urbantwin"))
            .arg("demo")
            .arg("--data")
            .arg(&osm)
            .arg("--db")
            .arg(dir.path().join("demo.db"))
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--feed", &format!("mqtt://{BROKER}"), "--feed-every-s", "1"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let url =
        format!("{base}/ngsi-ld/v1/entities/urn:ngsi-ld:TrafficFlowObserved:mannerheimintie-n");
    let mut seen = Vec::new();
    eventually("two fed readings of a traffic counter", async || {
        let Ok(r) = http.get(&url).send().await else {
            return false;
        };
        let e: Value = r.json().await.unwrap_or(Value::Null);
        let at = e["intensity"]["observedAt"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let fresh = chrono::DateTime::parse_from_rfc3339(&at)
            .is_ok_and(|t| t.timestamp() >= started.timestamp() - 1);
        if fresh && !seen.contains(&at) {
            assert!(e["intensity"]["value"].as_f64().unwrap() > 0.0, "{e}");
            seen.push(at);
        }
        seen.len() >= 2
    })
    .await;
    // the values are said to be generated, and where they came from
    let (_, datasets) = get(&http, &format!("{base}/api/datasets")).await;
    let feed = datasets
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == "urn:ngsi-ld:Dataset:urbantwin-demo-feed")
        .unwrap_or_else(|| panic!("{datasets}"));
    assert!(feed["title"].as_str().unwrap().contains("generated"));
    let (_, s) = get(&http, &format!("{base}/api/ingest")).await;
    for topic in [
        "urbantwin-demo/air/kallio",
        "urbantwin-demo/noise/senate-square",
        "urbantwin-demo/parking/kluuvi",
        "urbantwin-demo/energy/city-hall",
    ] {
        assert!(
            s["topics"][topic]["written"].as_u64() >= Some(1),
            "{topic}: {s}"
        );
    }
    assert_eq!(s["topics"]["urbantwin-demo/air/kallio"]["deadLettered"], 0);
    // a meter sends W and Wh; the entity holds kW and kWh, fed since the feed started
    let (_, meter) = get(
        &http,
        &format!("{base}/ngsi-ld/v1/entities/urn:ngsi-ld:ThreePhaseAcMeasurement:central-library"),
    )
    .await;
    let power = &meter["totalActivePower"];
    assert_eq!(power["unitCode"], "KWT", "{meter}");
    assert!(
        (50.0..400.0).contains(&power["value"].as_f64().unwrap()),
        "{meter}"
    );
    let energy = &meter["totalActiveEnergyImport"];
    assert_eq!(energy["unitCode"], "KWH", "{meter}");
    assert!(energy["value"].as_f64().unwrap() > 1e5, "{meter}");
    let at = chrono::DateTime::parse_from_rfc3339(energy["observedAt"].as_str().unwrap()).unwrap();
    assert!(at.timestamp() >= started.timestamp() - 1, "{meter}");
}
