//! MQTT ingestion over TLS (`mqtts://`) against the real Mosquitto with a TLS listener and a CA made at test time:
//! messages arrive when the hub trusts the broker's CA (`ca_file`); a broker signed by a CA the hub does not trust
//! is refused with a certificate error in the ingestion status; a broker that requires client certificates takes
//! the hub with its certificate (`client_cert_file`, `client_key_file`) and refuses it without.

mod common;
#[path = "common/tls.rs"]
mod tls;

use std::path::Path;
use std::sync::Arc;

use common::eventually;
use tls::{mosquitto_available, publish_tls, Pki, TlsBroker};
use twin_ingest::IngestConfig;
use twin_store::{SqliteStore, Store};

const V: &str = "https://uri.etsi.org/ngsi-ld/default-context/";

/// A hub configuration for `url`, with `tls_lines` added to `[broker]`.
fn config(url: &str, client_id: &str, tls_lines: &str) -> IngestConfig {
    IngestConfig::parse(&format!(
        r#"[broker]
url = "{url}"
client_id = "{client_id}"
{tls_lines}
[[topic]]
filter = "tls/+"
format = "json"
id = "urn:ngsi-ld:Sensor:{{1}}"
type = "Sensor"
[topic.attributes]
n = {{ path = "$.n", required = true }}
"#
    ))
    .unwrap()
}

fn ca_line(path: &Path) -> String {
    format!("ca_file = {:?}\n", path.display().to_string())
}

fn client_lines(pki: &Pki) -> String {
    format!(
        "client_cert_file = {:?}\nclient_key_file = {:?}\n",
        pki.client_cert.display().to_string(),
        pki.client_key.display().to_string()
    )
}

/// Waits until the hub is connected, then publishes `n` readings of sensor `s` over TLS and waits until they are
/// stored; returns the stored value of `n`.
async fn publish_and_store(
    ingest: &twin_ingest::Ingest,
    store: &dyn Store,
    broker: &TlsBroker,
    pki: &Pki,
    client: Option<(&Path, &Path)>,
    s: &str,
    n: usize,
) -> serde_json::Value {
    eventually(20, "the hub connected over TLS", async || {
        ingest.stats.snapshot().broker.connected
    })
    .await;
    let payloads = (0..n).map(|i| format!(r#"{{"n": {i}}}"#)).collect();
    publish_tls(broker.port, &pki.ca, client, &format!("tls/{s}"), payloads).await;
    eventually(20, "the TLS messages stored", async || {
        ingest.stats.snapshot().acknowledged >= n as u64
    })
    .await;
    let e = store
        .get(&format!("urn:ngsi-ld:Sensor:{s}"))
        .await
        .unwrap()
        .expect("the sensor entity");
    e.attrs[&format!("{V}n")][0].value.clone()
}

/// Waits until the hub's connection failed and returns the error the ingestion status shows.
async fn connection_error(ingest: &twin_ingest::Ingest) -> String {
    eventually(20, "a connection error", async || {
        ingest.stats.snapshot().broker.last_error.is_some()
    })
    .await;
    let s = ingest.stats.snapshot();
    assert!(!s.broker.connected);
    assert_eq!(s.broker.connections, 0);
    s.broker.last_error.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingestion_over_tls_receives_messages_from_a_broker_signed_by_the_configured_ca() {
    if !mosquitto_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(&dir.path().join("pki"));
    let broker = TlsBroker::start(&dir.path().join("broker"), &pki, false);
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("twin.db")).unwrap());
    let ingest = twin_ingest::start(
        config(&broker.url(), "hub-tls", &ca_line(&pki.ca)),
        store.clone(),
    )
    .await
    .unwrap();
    let n = publish_and_store(&ingest, &*store, &broker, &pki, None, "t1", 50).await;
    assert_eq!(n, serde_json::json!(49));
    let s = ingest.stats.snapshot();
    assert_eq!(s.topics["tls/t1"].written, 50);
    assert_eq!(s.broker.url, broker.url());
    assert!(s.broker.last_error.is_none(), "{:?}", s.broker.last_error);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_signed_by_an_untrusted_ca_is_refused_with_a_certificate_error() {
    if !mosquitto_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(&dir.path().join("pki"));
    let broker = TlsBroker::start(&dir.path().join("broker"), &pki, false);
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("twin.db")).unwrap());

    // the CA file names another CA
    let ingest = twin_ingest::start(
        config(&broker.url(), "hub-other-ca", &ca_line(&pki.other_ca)),
        store.clone(),
    )
    .await
    .unwrap();
    let e = connection_error(&ingest).await;
    assert!(e.contains("not signed by a trusted CA"), "{e}");
    assert!(e.contains("UnknownIssuer"), "{e}");
    drop(ingest);

    // no CA file: the machine's root certificates, which do not hold the test CA
    match twin_ingest::start(config(&broker.url(), "hub-system-roots", ""), store.clone()).await {
        Ok(ingest) => {
            let e = connection_error(&ingest).await;
            assert!(e.contains("not signed by a trusted CA"), "{e}");
        }
        // a machine without CA certificates says so at start
        Err(e) => assert!(e.to_string().contains("no root certificates"), "{e}"),
    }

    // a CA file that holds no certificate stops the start, naming the file
    let start = twin_ingest::start(
        config(&broker.url(), "hub-key-as-ca", &ca_line(&pki.server_key)),
        store.clone(),
    )
    .await;
    let e = start
        .err()
        .expect("a CA file without certificates")
        .to_string();
    assert!(e.contains("server.key") && e.contains("ca_file"), "{e}");
    assert!(!e.contains("PRIVATE KEY"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_takes_the_hub_with_its_client_certificate_and_refuses_it_without() {
    if !mosquitto_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(&dir.path().join("pki"));
    let broker = TlsBroker::start(&dir.path().join("broker"), &pki, true);
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("twin.db")).unwrap());
    let client = Some((pki.client_cert.as_path(), pki.client_key.as_path()));

    let with_cert = twin_ingest::start(
        config(
            &broker.url(),
            "hub-mtls",
            &(ca_line(&pki.ca) + &client_lines(&pki)),
        ),
        store.clone(),
    )
    .await
    .unwrap();
    let n = publish_and_store(&with_cert, &*store, &broker, &pki, client, "m1", 10).await;
    assert_eq!(n, serde_json::json!(9));
    drop(with_cert);

    let without = twin_ingest::start(
        config(&broker.url(), "hub-no-cert", &ca_line(&pki.ca)),
        store.clone(),
    )
    .await
    .unwrap();
    let e = connection_error(&without).await;
    assert!(e.contains("client certificate"), "{e}");
}

#[test]
fn tls_settings_are_checked_when_the_configuration_is_read() {
    let parse = |url: &str, lines: &str| {
        IngestConfig::parse(&format!(
            "[broker]\nurl = \"{url}\"\n{lines}\n[[topic]]\nfilter = \"a/#\"\nformat = \"ngsi-ld\"\n"
        ))
    };
    let c = parse(
        "mqtts://broker.city.example",
        "ca_file = \"/etc/city/ca.pem\"",
    )
    .unwrap();
    assert_eq!(
        c.broker.ca_file.as_deref(),
        Some(Path::new("/etc/city/ca.pem"))
    );
    let u = twin_ingest::mqtt::BrokerUrl::parse("mqtts://broker.city.example").unwrap();
    assert_eq!(
        (u.host.as_str(), u.port, u.tls),
        ("broker.city.example", 8883, true)
    );
    let u = twin_ingest::mqtt::BrokerUrl::parse("mqtt://broker:1884").unwrap();
    assert_eq!((u.port, u.tls), (1884, false));
    let e = parse("mqtt://broker", "ca_file = \"ca.pem\"").unwrap_err();
    assert!(e.contains("mqtts://"), "{e}");
    let e = parse("mqtts://broker", "client_cert_file = \"c.pem\"").unwrap_err();
    assert!(e.contains("go together"), "{e}");
    let e = parse("ws://broker", "").unwrap_err();
    assert!(e.contains("mqtt:// or mqtts://"), "{e}");
    // the plain-TCP clients (demo feed, benchmark) say they cannot speak TLS
    let e = twin_ingest::mqtt::broker_address("mqtts://broker").unwrap_err();
    assert!(e.contains("plain MQTT"), "{e}");
}
