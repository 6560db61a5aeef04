//! Subscriptions' notifications over MQTT (`mqtt://` endpoints, and `mqtts://` over TLS): one connection per broker
//! and account, kept open, publishing one notification at a time so that, at QoS 1 and 2, success means the broker
//! acknowledged it. `mqtts://` brokers are trusted by the server-wide CA file given to [`MqttNotifier::new`], or by
//! the machine's root certificates without one.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use tokio::sync::{mpsc, Mutex};
use twin_model::subscription::MqttTarget;

/// What the polling task of a connection saw.
enum Seen {
    /// A PUBLISH went out with this packet id.
    Sent(u16),
    /// The broker acknowledged (PUBACK, or PUBCOMP at QoS 2) this packet id.
    Acked(u16),
    /// The connection failed.
    Failed(String),
}

/// A connection to one broker: its client, what happened on it in order, and the task polling it.
struct Connection {
    client: AsyncClient,
    seen: Mutex<mpsc::UnboundedReceiver<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The MQTT connections notifications go out on, by broker and user.
#[derive(Default)]
pub struct MqttNotifier {
    connections: Mutex<HashMap<String, Arc<Connection>>>,
    /// The CA file `mqtts://` brokers' certificates must be signed by (None: the machine's root certificates).
    ca_file: Option<PathBuf>,
    /// The TLS configuration, built at the first `mqtts://` notification (or at once with a CA file).
    tls: std::sync::Mutex<Option<Arc<rustls::ClientConfig>>>,
}

impl MqttNotifier {
    /// A notifier whose `mqtts://` connections trust the CA certificate(s) in `ca_file` (PEM) or, without one, the
    /// machine's root certificates. The file is read at the first `mqtts://` notification (a server checks it at
    /// start with [`MqttNotifier::check_tls`]); while it cannot be read, `mqtts://` notifications fail with the reason.
    pub fn new(ca_file: Option<PathBuf>) -> MqttNotifier {
        MqttNotifier {
            ca_file,
            ..Default::default()
        }
    }

    /// Builds the TLS configuration now: whether the CA file (or the machine's roots) can be used.
    pub fn check_tls(&self) -> Result<(), String> {
        self.tls_config().map(|_| ())
    }

    fn tls_config(&self) -> Result<Arc<rustls::ClientConfig>, String> {
        let mut tls = self.tls.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = &*tls {
            return Ok(c.clone());
        }
        let c = crate::tls::client_config(crate::tls::TlsFiles {
            ca_file: self.ca_file.as_deref(),
            ..Default::default()
        })
        .map_err(|e| format!("MQTT over TLS: {e}"))?;
        *tls = Some(c.clone());
        Ok(c)
    }

    /// Publishes one notification to `target`'s topic. `metadata` are the headers an HTTP notification would carry
    /// (Content-Type, Link): with MQTT 5 they become user properties and the payload is `body`; with MQTT 3.1.1
    /// the payload is `{"metadata": {...}, "body": body}`. At QoS 1 and 2 it returns once the broker acknowledged
    /// the message (or fails after `timeout`); at QoS 0 once it was handed to the connection.
    pub async fn publish(
        &self,
        target: &MqttTarget,
        metadata: &[(String, String)],
        body: &serde_json::Value,
        timeout: Duration,
    ) -> Result<(), String> {
        let conn = self.connection(target).await?;
        let qos = match target.qos {
            0 => QoS::AtMostOnce,
            1 => QoS::AtLeastOnce,
            _ => QoS::ExactlyOnce,
        };
        // one publication at a time per connection: the next PUBLISH to go out is this one, and its packet id tells
        // its acknowledgement from a late one of an earlier publication
        let mut seen = conn.seen.lock().await;
        while seen.try_recv().is_ok() {}
        let sent = if target.v5 {
            let props = PublishProperties {
                content_type: metadata
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                    .map(|(_, v)| v.clone()),
                user_properties: metadata.to_vec(),
                ..Default::default()
            };
            conn.client
                .publish_with_properties(target.topic.clone(), qos, false, body.to_string(), props)
                .await
        } else {
            let meta: serde_json::Map<String, serde_json::Value> = metadata
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect();
            let payload = serde_json::json!({"metadata": meta, "body": body});
            conn.client
                .publish(target.topic.clone(), qos, false, payload.to_string())
                .await
        };
        sent.map_err(|e| format!("cannot publish to {}: {e}", target.host))?;
        if qos == QoS::AtMostOnce {
            return Ok(());
        }
        let outcome = tokio::time::timeout(timeout, async {
            let mut ours = None;
            loop {
                match seen.recv().await {
                    Some(Seen::Sent(pkid)) if ours.is_none() => ours = Some(pkid),
                    Some(Seen::Acked(pkid)) if Some(pkid) == ours => return Ok(()),
                    Some(Seen::Failed(e)) => return Err(e),
                    Some(_) => {}
                    None => return Err("the MQTT connection stopped".to_string()),
                }
            }
        })
        .await;
        outcome.unwrap_or_else(|_| {
            Err(format!(
                "the broker {}:{} did not acknowledge the notification within {} ms",
                target.host,
                target.port,
                timeout.as_millis()
            ))
        })
    }

    async fn connection(&self, t: &MqttTarget) -> Result<Arc<Connection>, String> {
        let key = format!(
            "{}:{}:{}:{}:{}:{}",
            t.tls,
            t.host,
            t.port,
            t.username.as_deref().unwrap_or(""),
            t.password.as_deref().unwrap_or(""),
            t.v5
        );
        let mut conns = self.connections.lock().await;
        if let Some(c) = conns.get(&key) {
            if !c.task.is_finished() {
                return Ok(c.clone());
            }
        }
        // unique across nodes (in containers every node may be process 1)
        let id = format!("urbantwin-notifier-{}", uuid::Uuid::new_v4().simple());
        let mut opts = MqttOptions::new(id, t.host.clone(), t.port);
        opts.set_clean_start(true)
            .set_keep_alive(Duration::from_secs(30));
        if t.tls {
            opts.set_transport(rumqttc::Transport::tls_with_config(
                rumqttc::TlsConfiguration::Rustls(self.tls_config()?),
            ));
        }
        if let Some(u) = &t.username {
            opts.set_credentials(u.clone(), t.password.clone().unwrap_or_default());
        }
        let (client, mut eventloop) = AsyncClient::new(opts, 64);
        let (tx, rx) = mpsc::unbounded_channel();
        let host = t.host.clone();
        let task = tokio::spawn(async move {
            loop {
                let seen = match eventloop.poll().await {
                    Ok(Event::Outgoing(rumqttc::Outgoing::Publish(pkid))) => Seen::Sent(pkid),
                    Ok(Event::Incoming(Packet::PubAck(a))) => Seen::Acked(a.pkid),
                    Ok(Event::Incoming(Packet::PubComp(c))) => Seen::Acked(c.pkid),
                    Ok(_) => continue,
                    Err(e) => {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        Seen::Failed(format!("MQTT broker: {}", crate::mqtt::describe(&e, &host)))
                    }
                };
                if tx.send(seen).is_err() {
                    return;
                }
            }
        });
        let c = Arc::new(Connection {
            client,
            seen: Mutex::new(rx),
            task,
        });
        conns.insert(key, c.clone());
        Ok(c)
    }
}
