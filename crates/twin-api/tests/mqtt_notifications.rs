//! Subscriptions that notify over MQTT (`mqtt://` endpoints), received by an MQTT client on the machine's Mosquitto:
//! the MQTT 3.1.1 form (`{"metadata", "body"}`) and the MQTT 5 form (the notification as payload, the metadata as
//! user properties), acknowledged at QoS 1 and counted in the subscription's status; and a broker that is not there
//! is a failed delivery with the reason. Over TLS (`mqtts://`), against a private Mosquitto with a TLS listener and
//! a CA made at test time: delivered when the server trusts that CA (`mqtt_ca_file`), a failed delivery with a
//! certificate error when it does not.

mod common;
#[path = "../../twin-ingest/tests/common/tls.rs"]
mod tls;

use std::time::{Duration, Instant};

use common::Server;
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use serde_json::{json, Value};

const BROKER: &str = "127.0.0.1:1883";

fn broker_available() -> bool {
    let ok = std::net::TcpStream::connect(BROKER).is_ok();
    if !ok {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("CI must run the MQTT tests, but no broker answers at {BROKER}");
        }
        eprintln!("skipped: no MQTT broker at {BROKER}");
    }
    ok
}

/// An MQTT 5 client subscribed to `topic`, handing on each message's payload and user properties.
async fn listen(
    topic: &str,
) -> tokio::sync::mpsc::UnboundedReceiver<(Value, Vec<(String, String)>)> {
    let id = format!("urbantwin-test-listener-{}", topic.replace('/', "-"));
    let (client, mut eventloop) = AsyncClient::new(MqttOptions::new(id, "127.0.0.1", 1883), 16);
    client.subscribe(topic, QoS::AtLeastOnce).await.unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (ready_tx, ready) = tokio::sync::oneshot::channel();
    let mut ready_tx = Some(ready_tx);
    tokio::spawn(async move {
        let _client = client;
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(r) = ready_tx.take() {
                        let _ = r.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let v: Value = serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
                    let props = p.properties.map(|p| p.user_properties).unwrap_or_default();
                    if tx.send((v, props)).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), ready)
        .await
        .unwrap()
        .unwrap();
    rx
}

async fn subscribe(s: &Server, uri: &str, info: Value) -> String {
    let sub = json!({"type": "Subscription", "entities": [{"type": "Car"}],
        "notification": {"endpoint": {"uri": uri, "notifierInfo": info}}, "@context": common::CORE});
    let r = s.post_ld("/subscriptions", &sub).await;
    assert_eq!(r.status().as_u16(), 201);
    let loc = r.headers()["location"].to_str().unwrap();
    let id = loc.rsplit('/').next().unwrap();
    percent_encoding::percent_decode_str(id)
        .decode_utf8()
        .unwrap()
        .into_owned()
}

async fn status_of(s: &Server, id: &str) -> Value {
    let id = percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC);
    s.get_json(&format!("/subscriptions/{id}")).await["notification"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_notify_over_mqtt() {
    if !broker_available() {
        return;
    }
    let mut s = Server::start().await;
    s.http = s.admin_client().await;
    let tag = format!("urbantwin-test/{}-{}", std::process::id(), fastrand_tag());
    let mut v3 = listen(&format!("{tag}/v3")).await;
    let mut v5 = listen(&format!("{tag}/v5")).await;
    let sub3 = subscribe(
        &s,
        &format!("mqtt://{BROKER}/{tag}/v3"),
        json!([{"key": "MQTT-QoS", "value": "1"}]),
    )
    .await;
    let sub5 = subscribe(
        &s,
        &format!("mqtt://{BROKER}/{tag}/v5"),
        json!([{"key": "MQTT-QoS", "value": "1"}, {"key": "MQTT-Version", "value": "mqtt5.0"}]),
    )
    .await;
    let car =
        json!({"id": "urn:ngsi-ld:Car:m1", "type": "Car", "speed": 42, "@context": common::CORE});
    assert_eq!(s.post_ld("/entities", &car).await.status().as_u16(), 201);

    let (msg, _) = tokio::time::timeout(Duration::from_secs(10), v3.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(msg["metadata"]["Content-Type"], "application/json", "{msg}");
    assert!(msg["metadata"]["Link"]
        .as_str()
        .unwrap()
        .contains("json-ld#context"));
    let body = &msg["body"];
    assert_eq!(body["type"], "Notification");
    assert_eq!(body["subscriptionId"], sub3);
    assert_eq!(body["data"][0]["id"], "urn:ngsi-ld:Car:m1");
    assert_eq!(body["data"][0]["speed"]["value"], 42);

    let (msg, props) = tokio::time::timeout(Duration::from_secs(10), v5.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(msg["type"], "Notification", "{msg}");
    assert_eq!(msg["subscriptionId"], sub5);
    assert!(
        props
            .iter()
            .any(|(k, v)| k == "Content-Type" && v == "application/json"),
        "{props:?}"
    );

    // each delivery was acknowledged by the broker and counted
    let t = Instant::now();
    loop {
        let st = status_of(&s, &sub3).await;
        if st["timesSent"] == 1 && st["lastSuccess"].is_string() {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "{st}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_is_not_there_is_a_failed_delivery() {
    let mut s = Server::start().await;
    s.http = s.admin_client().await;
    // a port nothing listens on
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sub = subscribe(
        &s,
        &format!("mqtt://127.0.0.1:{port}/nowhere"),
        json!([{"key": "MQTT-QoS", "value": "1"}]),
    )
    .await;
    let car =
        json!({"id": "urn:ngsi-ld:Car:m2", "type": "Car", "speed": 1, "@context": common::CORE});
    assert_eq!(s.post_ld("/entities", &car).await.status().as_u16(), 201);
    let t = Instant::now();
    loop {
        let st = status_of(&s, &sub).await;
        if st["timesFailed"].as_u64() >= Some(1) {
            assert!(st["lastFailure"].is_string(), "{st}");
            assert!(st.get("lastSuccess").is_none_or(Value::is_null), "{st}");
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "{st}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn fastrand_tag() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        % 1_000_000_007
}

/// An MQTT 5 client over TLS subscribed to `topic` on the broker at `port`, handing on each message's payload.
async fn listen_tls(
    port: u16,
    ca: &std::path::Path,
    topic: &str,
) -> tokio::sync::mpsc::UnboundedReceiver<Value> {
    let (client, mut eventloop) = tls::tls_client("urbantwin-test-tls-listener", port, ca, None);
    client.subscribe(topic, QoS::AtLeastOnce).await.unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (ready_tx, ready) = tokio::sync::oneshot::channel();
    let mut ready_tx = Some(ready_tx);
    tokio::spawn(async move {
        let _client = client;
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(r) = ready_tx.take() {
                        let _ = r.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let v: Value = serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
                    if tx.send(v).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), ready)
        .await
        .expect("the TLS listener subscribed")
        .unwrap();
    rx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_notify_over_mqtt_with_tls() {
    if !tls::mosquitto_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pki = tls::Pki::generate(&dir.path().join("pki"));
    let broker = tls::TlsBroker::start(&dir.path().join("broker"), &pki, false);
    let mut s = Server::start_with(
        twin_api::ApiConfig {
            mqtt_ca_file: Some(pki.ca.clone()),
            ..Default::default()
        },
        None,
    )
    .await;
    s.http = s.admin_client().await;
    let mut rx = listen_tls(broker.port, &pki.ca, "city/tls").await;
    let sub = subscribe(
        &s,
        &format!("mqtts://127.0.0.1:{}/city/tls", broker.port),
        json!([{"key": "MQTT-QoS", "value": "1"}, {"key": "MQTT-Version", "value": "mqtt5.0"}]),
    )
    .await;
    let car =
        json!({"id": "urn:ngsi-ld:Car:t1", "type": "Car", "speed": 7, "@context": common::CORE});
    assert_eq!(s.post_ld("/entities", &car).await.status().as_u16(), 201);
    let msg = tokio::time::timeout(Duration::from_secs(15), rx.recv())
        .await
        .expect("a notification over TLS")
        .unwrap();
    assert_eq!(msg["type"], "Notification", "{msg}");
    assert_eq!(msg["subscriptionId"], sub);
    assert_eq!(msg["data"][0]["id"], "urn:ngsi-ld:Car:t1");
    let t = Instant::now();
    loop {
        let st = status_of(&s, &sub).await;
        if st["timesSent"] == 1 && st["lastSuccess"].is_string() {
            assert_eq!(st["status"], "ok", "{st}");
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "{st}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_broker_whose_certificate_is_not_trusted_is_a_failed_delivery_with_the_reason() {
    if !tls::mosquitto_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pki = tls::Pki::generate(&dir.path().join("pki"));
    let broker = tls::TlsBroker::start(&dir.path().join("broker"), &pki, false);
    // the server trusts another CA than the one that signed the broker's certificate
    let mut s = Server::start_with(
        twin_api::ApiConfig {
            mqtt_ca_file: Some(pki.other_ca.clone()),
            ..Default::default()
        },
        None,
    )
    .await;
    s.http = s.admin_client().await;
    let sub = subscribe(
        &s,
        &format!("mqtts://127.0.0.1:{}/city/untrusted", broker.port),
        json!([{"key": "MQTT-QoS", "value": "1"}]),
    )
    .await;
    let car =
        json!({"id": "urn:ngsi-ld:Car:t2", "type": "Car", "speed": 8, "@context": common::CORE});
    assert_eq!(s.post_ld("/entities", &car).await.status().as_u16(), 201);
    let t = Instant::now();
    loop {
        let st = status_of(&s, &sub).await;
        if st["timesFailed"].as_u64() >= Some(1) {
            assert_eq!(st["status"], "failed", "{st}");
            let reason = st["lastErrorReason"].as_str().unwrap_or_default();
            assert!(reason.contains("not signed by a trusted CA"), "{st}");
            assert!(st.get("lastSuccess").is_none_or(Value::is_null), "{st}");
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "{st}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
