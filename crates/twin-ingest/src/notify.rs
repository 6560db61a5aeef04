//! Subscriptions' notifications over MQTT (`mqtt://` endpoints): one connection per broker and account, kept open,
//! publishing one notification at a time so that, at QoS 1 and 2, success means the broker acknowledged it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use tokio::sync::{mpsc, Mutex};
use twin_model::subscription::MqttTarget;

/// A connection to one broker: its client, the outcomes of its publications in order, and the task polling it.
struct Connection {
    client: AsyncClient,
    /// One entry per acknowledgement (Ok) or connection error (Err) seen by the polling task.
    outcomes: Mutex<mpsc::UnboundedReceiver<Result<(), String>>>,
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
}

impl MqttNotifier {
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
        let conn = self.connection(target).await;
        let qos = match target.qos {
            0 => QoS::AtMostOnce,
            1 => QoS::AtLeastOnce,
            _ => QoS::ExactlyOnce,
        };
        // one publication at a time per connection: the next acknowledgement is this one's
        let mut outcomes = conn.outcomes.lock().await;
        while outcomes.try_recv().is_ok() {}
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
        match tokio::time::timeout(timeout, outcomes.recv()).await {
            Ok(Some(Ok(()))) => Ok(()),
            Ok(Some(Err(e))) => Err(e),
            Ok(None) => Err("the MQTT connection stopped".into()),
            Err(_) => Err(format!(
                "the broker {}:{} did not acknowledge the notification within {} ms",
                target.host,
                target.port,
                timeout.as_millis()
            )),
        }
    }

    async fn connection(&self, t: &MqttTarget) -> Arc<Connection> {
        let key = format!(
            "{}:{}:{}:{}:{}",
            t.host,
            t.port,
            t.username.as_deref().unwrap_or(""),
            t.password.as_deref().unwrap_or(""),
            t.v5
        );
        let mut conns = self.connections.lock().await;
        if let Some(c) = conns.get(&key) {
            if !c.task.is_finished() {
                return c.clone();
            }
        }
        let id = format!("urbantwin-notifier-{}-{}", std::process::id(), conns.len());
        let mut opts = MqttOptions::new(id, t.host.clone(), t.port);
        opts.set_clean_start(true)
            .set_keep_alive(Duration::from_secs(30));
        if let Some(u) = &t.username {
            opts.set_credentials(u.clone(), t.password.clone().unwrap_or_default());
        }
        let (client, mut eventloop) = AsyncClient::new(opts, 64);
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_)))
                    | Ok(Event::Incoming(Packet::PubComp(_))) => {
                        if tx.send(Ok(())).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        if tx.send(Err(format!("MQTT broker: {e}"))).is_err() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        });
        let c = Arc::new(Connection {
            client,
            outcomes: Mutex::new(rx),
            task,
        });
        conns.insert(key, c.clone());
        c
    }
}
