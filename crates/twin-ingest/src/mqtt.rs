//! The MQTT client of the hub: a persistent MQTT 5 session (fixed client id, session expiry) subscribed at QoS 1,
//! whose messages are written to the store in batches and acknowledged only after the batch is durable.
//!
//! Three tasks: the connection task polls the client (rumqttc reconnects after errors; the broker resends what was
//! not acknowledged) and hands each PUBLISH on; the mapping stage collects a batch and maps it; the writing stage
//! writes it with one [`Store::write_batch`], keeps refused messages in the dead-letter table, and then acknowledges
//! the batch in arrival order, while the mapping stage prepares the next batch. A message is acknowledged only once
//! what it said is stored, so a crash at any point loses none;
//! a message stored but not acknowledged comes again and changes nothing (see [`crate::apply`]). The client asks
//! the broker for up to 65,535 unacknowledged messages in flight (MQTT 5 Receive Maximum), so that batches of
//! thousands can form while one commits.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rumqttc::v5::mqttbytes::v5::{Filter, Packet, Publish};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, ConnectionError, Event, MqttOptions};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use twin_model::context::Context;
use twin_store::{DeadLetter, EntityChange, EntityQuery, Store, TemporalQuery, TimeRel};

use crate::apply::{self, Applied};
use crate::config::{IngestConfig, TopicConfig};
use crate::mapping::{self, MapError, TopicFilter};
use crate::stats::IngestStats;
use crate::IngestError;

/// A message as the connection task received it: when, and on which connection (acknowledgements are sent only
/// on that connection; the broker resends what an earlier one left unacknowledged).
struct Incoming {
    publish: Publish,
    received_at: chrono::DateTime<Utc>,
    connection: u64,
}

/// Failed attempts at writing a batch before it is split (and a single message that still fails, but can be kept
/// as a dead letter, is: the store refuses that message, not everything).
const ATTEMPTS_BEFORE_SPLIT: u32 = 3;

/// Unacknowledged messages the broker may send at once (the MQTT 5 maximum).
const RECEIVE_MAXIMUM: u16 = u16::MAX;
/// Longest wait between two connection attempts.
const MAX_RECONNECT_WAIT: Duration = Duration::from_secs(5);

/// A broker's address: `mqtt://host[:port]` (or `tcp://`), plain TCP on port 1883 by default, or
/// `mqtts://host[:port]` (or `ssl://`), TLS on port 8883 by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

impl BrokerUrl {
    pub fn parse(url: &str) -> Result<BrokerUrl, String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("broker url {url:?} must start with mqtt:// or mqtts://"))?;
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "mqtt" | "tcp" => false,
            "mqtts" | "ssl" => true,
            _ => {
                return Err(format!(
                    "broker url {url:?} must start with mqtt:// or mqtts://"
                ))
            }
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse::<u16>()
                    .map_err(|_| format!("broker url {url:?}: {p:?} is not a port"))?,
            ),
            None => (rest, if tls { 8883 } else { 1883 }),
        };
        if host.is_empty() || host.contains('/') || host.contains('@') {
            return Err(format!("broker url {url:?} has no plain host name"));
        }
        Ok(BrokerUrl {
            host: host.to_string(),
            port,
            tls,
        })
    }
}

/// Host and port of an `mqtt://host[:port]` URL, for the clients that speak plain TCP only (the demo feed and the
/// ingestion benchmark).
pub fn broker_address(url: &str) -> Result<(String, u16), String> {
    let b = BrokerUrl::parse(url)?;
    if b.tls {
        return Err(format!(
            "broker url {url:?}: this client speaks plain MQTT only (mqtt://)"
        ));
    }
    Ok((b.host, b.port))
}

/// The running ingestion: its counters and its tasks (stopped when dropped).
pub struct Ingest {
    pub stats: Arc<IngestStats>,
    tasks: Vec<JoinHandle<()>>,
}

impl Ingest {
    /// Stops its tasks; messages not yet acknowledged stay with the broker.
    pub fn stop(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One configured topic, ready to map.
struct Route {
    filter: TopicFilter,
    config: TopicConfig,
    context: Arc<Context>,
}

/// Starts ingesting into `store` on the current tokio runtime.
pub async fn start(config: IngestConfig, store: Arc<dyn Store>) -> Result<Ingest, IngestError> {
    let address = BrokerUrl::parse(&config.broker.url).map_err(IngestError::Config)?;
    let mut contexts: HashMap<String, Arc<Value>> = HashMap::new();
    let mut routes = Vec::new();
    for t in &config.topics {
        let context = match &t.context {
            None => Context::core(),
            Some(url) => {
                let doc = fetch_context(&*store, url).await?.ok_or_else(|| {
                    IngestError::Config(format!(
                        "topic {:?}: the @context {url} is not registered on this hub (POST it to /ngsi-ld/v1/jsonldContexts)",
                        t.filter
                    ))
                })?;
                contexts.insert(url.clone(), doc);
                let c = Context::build(&Value::String(url.clone()), &|u| contexts.get(u).cloned())
                    .map_err(|e| IngestError::Config(format!("topic {:?}: {e:?}", t.filter)))?;
                Arc::new(c)
            }
        };
        routes.push(Route {
            filter: TopicFilter::parse(&t.filter).map_err(IngestError::Config)?,
            config: t.clone(),
            context,
        });
    }
    let b = &config.broker;
    let mut opts = MqttOptions::new(b.client_id.clone(), address.host.clone(), address.port);
    if address.tls {
        let tls = crate::tls::client_config(crate::tls::TlsFiles {
            ca_file: b.ca_file.as_deref(),
            client_cert_file: b.client_cert_file.as_deref(),
            client_key_file: b.client_key_file.as_deref(),
        })
        .map_err(|e| IngestError::Config(format!("broker: {e}")))?;
        opts.set_transport(rumqttc::Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(tls),
        ));
    }
    opts.set_manual_acks(true)
        .set_clean_start(false)
        .set_session_expiry_interval(Some(b.session_expiry_s))
        .set_receive_maximum(Some(RECEIVE_MAXIMUM))
        .set_keep_alive(Duration::from_secs(u64::from(b.keep_alive_s.max(5))))
        .set_max_packet_size(Some(16 * 1024 * 1024));
    if let Some(user) = &b.username {
        let password = match &b.password_env {
            Some(var) => std::env::var(var).map_err(|_| {
                IngestError::Config(format!("the password variable {var} is not set"))
            })?,
            None => String::new(),
        };
        opts.set_credentials(user.clone(), password);
    }
    // acknowledgements go through the request channel: room for every message the broker may have in flight
    let (client, eventloop) = AsyncClient::new(opts, usize::from(RECEIVE_MAXIMUM) + 1024);
    let filters: Vec<Filter> = config
        .topics
        .iter()
        .map(|t| {
            let path = match &b.share_group {
                Some(g) => format!("$share/{g}/{}", t.filter),
                None => t.filter.clone(),
            };
            Filter::new(path, QoS::AtLeastOnce)
        })
        .collect();
    let stats = Arc::new(IngestStats::new(&b.url, &b.client_id));
    let (tx, rx) = mpsc::channel::<Incoming>(usize::from(RECEIVE_MAXIMUM) + 1024);
    let connection = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let conn = tokio::spawn(connection_task(
        client.clone(),
        eventloop,
        filters,
        tx,
        stats.clone(),
        connection.clone(),
        address.host,
    ));
    let mapper = Mapper {
        store,
        routes,
        contexts,
    };
    let mut tasks = vec![conn];
    tasks.extend(start_stages(
        rx,
        mapper,
        client,
        connection,
        stats.clone(),
        config.batch.max_messages,
        Duration::from_millis(config.batch.max_wait_ms),
    ));
    Ok(Ingest { stats, tasks })
}

async fn fetch_context(store: &dyn Store, url: &str) -> Result<Option<Arc<Value>>, IngestError> {
    if twin_model::context::is_core_context_url(url) {
        return Ok(Some(Arc::new(
            twin_model::context::core_context_document().clone(),
        )));
    }
    let c = store
        .get_context(url)
        .await
        .map_err(|e| IngestError::Store(e.detail))?;
    Ok(c.map(|c| Arc::new(c.document)))
}

/// Polls the client for the hub's lifetime: hands PUBLISHes on, subscribes on every connection, and waits a
/// little longer after each failed attempt.
async fn connection_task(
    client: AsyncClient,
    mut eventloop: rumqttc::v5::EventLoop,
    filters: Vec<Filter>,
    tx: mpsc::Sender<Incoming>,
    stats: Arc<IngestStats>,
    connection: Arc<std::sync::atomic::AtomicU64>,
    host: String,
) {
    let mut wait = Duration::from_millis(100);
    let mut subscribed = true;
    loop {
        if !subscribed {
            subscribed = client.try_subscribe_many(filters.clone()).is_ok();
        }
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let incoming = Incoming {
                    publish: p,
                    received_at: Utc::now(),
                    connection: connection.load(std::sync::atomic::Ordering::SeqCst),
                };
                if tx.send(incoming).await.is_err() {
                    return;
                }
            }
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                wait = Duration::from_millis(100);
                connection.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tracing::info!(
                    session_present = ack.session_present,
                    "connected to the MQTT broker"
                );
                stats.update(|s| {
                    s.broker.connected = true;
                    s.broker.connections += 1;
                    s.broker.session_present = ack.session_present;
                    s.broker.last_connected_at = Some(Utc::now());
                });
                // subscribing again where the session kept the subscriptions changes nothing; a full request
                // channel is tried again at the next event
                subscribed = client.try_subscribe_many(filters.clone()).is_ok();
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                let refused: Vec<_> = ack
                    .return_codes
                    .iter()
                    .filter(|c| {
                        !matches!(
                            c,
                            rumqttc::v5::mqttbytes::v5::SubscribeReasonCode::Success(_)
                        )
                    })
                    .collect();
                if !refused.is_empty() {
                    tracing::error!(?refused, "the broker refused a subscription");
                    let msg = format!("the broker refused a subscription: {refused:?}");
                    stats.update(|s| {
                        s.broker.last_error = Some(msg);
                        s.broker.last_error_at = Some(Utc::now());
                    });
                }
            }
            Ok(_) => {}
            Err(e) => {
                let msg = describe(&e, &host);
                tracing::warn!(error = %msg, retry_in_ms = wait.as_millis() as u64, "MQTT connection lost");
                stats.update(|s| {
                    s.broker.connected = false;
                    s.broker.last_error = Some(msg);
                    s.broker.last_error_at = Some(Utc::now());
                });
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(MAX_RECONNECT_WAIT);
            }
        }
    }
}

/// A connection error as the operator reads it (in the log and the ingestion status): TLS failures say whether the
/// broker's certificate was not trusted or the broker refused the hub's.
pub fn describe(e: &ConnectionError, host: &str) -> String {
    // an alert the broker sends after the handshake (TLS 1.3: a client certificate it requires) comes while reading
    // CONNACK, as a decoding error that does not name its cause
    let inner: &(dyn std::error::Error + 'static) = match e {
        ConnectionError::MqttState(rumqttc::v5::StateError::Deserialization(
            rumqttc::v5::mqttbytes::Error::Io(io),
        )) => io,
        other => other,
    };
    if let Some(tls) = crate::tls::explain(inner, host) {
        return tls;
    }
    match e {
        ConnectionError::Io(io) => format!("broker unreachable: {io}"),
        other => other.to_string(),
    }
}

/// Maps messages to store changes: the configured routes and the JSON-LD contexts fetched so far. Both stages use
/// it: the writing stage maps a batch again when its write failed, since a write consumes the changes.
struct Mapper {
    store: Arc<dyn Store>,
    routes: Vec<Route>,
    contexts: HashMap<String, Arc<Value>>,
}

/// What became of one message of a batch.
#[derive(Default)]
struct Fate {
    topic: String,
    /// Index range of its updates in the batch's changes.
    changes: std::ops::Range<usize>,
    refused: Option<String>,
}

/// A batch of messages and the changes they make, handed from the mapping stage to the writing stage.
struct Mapped {
    batch: Vec<Incoming>,
    changes: Vec<(String, EntityChange)>,
    /// The entity id and types of each change.
    ids: Vec<(String, Vec<String>)>,
    fates: Vec<Fate>,
}

/// Starts the two stages: while one batch is written (and acknowledged), the next is collected and mapped.
fn start_stages(
    rx: mpsc::Receiver<Incoming>,
    mapper: Mapper,
    client: AsyncClient,
    connection: Arc<std::sync::atomic::AtomicU64>,
    stats: Arc<IngestStats>,
    max_messages: usize,
    max_wait: Duration,
) -> Vec<JoinHandle<()>> {
    let store = mapper.store.clone();
    let mapper = Arc::new(tokio::sync::Mutex::new(mapper));
    let (tx, mapped) = mpsc::channel::<Mapped>(1);
    vec![
        tokio::spawn(collect_stage(
            rx,
            tx,
            mapper.clone(),
            max_messages,
            max_wait,
        )),
        tokio::spawn(write_stage(
            mapped, mapper, store, client, connection, stats,
        )),
    ]
}

/// Collects a batch (up to `max_messages`, or what arrived within `max_wait` of its first message) and maps it.
async fn collect_stage(
    mut rx: mpsc::Receiver<Incoming>,
    tx: mpsc::Sender<Mapped>,
    mapper: Arc<tokio::sync::Mutex<Mapper>>,
    max_messages: usize,
    max_wait: Duration,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + max_wait;
        while batch.len() < max_messages {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(p)) => batch.push(p),
                        _ => break,
                    }
                }
            }
        }
        let mapped = map_until_done(&mapper, batch).await;
        if tx.send(mapped).await.is_err() {
            return;
        }
    }
}

/// Maps a batch, waiting out a store that cannot be read (for a context).
async fn map_until_done(mapper: &tokio::sync::Mutex<Mapper>, batch: Vec<Incoming>) -> Mapped {
    let mut wait = Duration::from_millis(100);
    loop {
        match mapper.lock().await.map_batch(&batch).await {
            Ok((changes, ids, fates)) => {
                return Mapped {
                    batch,
                    changes,
                    ids,
                    fates,
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot map a batch of messages; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// Writes each mapped batch and then acknowledges its messages in order. A batch the store keeps refusing is
/// split in halves, so that one message the store cannot take (kept as a dead letter) does not hold up the rest;
/// while the store is down, everything waits and is retried.
async fn write_stage(
    mut rx: mpsc::Receiver<Mapped>,
    mapper: Arc<tokio::sync::Mutex<Mapper>>,
    store: Arc<dyn Store>,
    client: AsyncClient,
    connection: Arc<std::sync::atomic::AtomicU64>,
    stats: Arc<IngestStats>,
) {
    while let Some(m) = rx.recv().await {
        // the batch, or the halves it was split into, in order (the next to write last)
        let mut work = vec![m];
        while let Some(mut m) = work.pop() {
            let mut wait = Duration::from_millis(100);
            let mut attempts = 0u32;
            let batch = loop {
                match write_mapped(&*store, &stats, m).await {
                    Ok(batch) => break Some(batch),
                    Err((e, mut batch)) => {
                        attempts += 1;
                        tracing::error!(error = %e, messages = batch.len(), attempts, "cannot store a batch of messages; retrying");
                        stats.update(|s| s.last_store_error = Some(e.clone()));
                        if attempts >= ATTEMPTS_BEFORE_SPLIT {
                            if batch.len() > 1 {
                                let second = batch.split_off(batch.len() / 2);
                                work.push(map_until_done(&mapper, second).await);
                                work.push(map_until_done(&mapper, batch).await);
                                break None;
                            }
                            if dead_letter(&*store, &stats, &batch[0], &e).await {
                                break Some(batch);
                            }
                        }
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(Duration::from_secs(10));
                        m = map_until_done(&mapper, batch).await;
                    }
                }
            };
            let Some(batch) = batch else { continue };
            let current = connection.load(std::sync::atomic::Ordering::SeqCst);
            let mut acknowledged = 0u64;
            for i in &batch {
                // a message of an earlier connection is resent by the broker: its packet id may now name another
                if i.connection != current {
                    continue;
                }
                // a lost connection drops these acknowledgements; the broker then sends the messages again
                match client.ack(&i.publish).await {
                    Ok(()) => acknowledged += 1,
                    Err(e) => tracing::warn!("cannot acknowledge a message: {e}"),
                }
            }
            stats.update(|s| {
                s.batches += 1;
                s.acknowledged += acknowledged;
            });
        }
    }
}

/// Keeps one message the store refuses as a dead letter; false when even that cannot be stored (the store is down).
async fn dead_letter(store: &dyn Store, stats: &IngestStats, i: &Incoming, error: &str) -> bool {
    let topic = String::from_utf8_lossy(&i.publish.topic).into_owned();
    let reason = format!("the store refused it: {error}");
    let letter = DeadLetter {
        id: 0,
        received_at: i.received_at,
        source: "mqtt".into(),
        topic: topic.clone(),
        payload: i.publish.payload.to_vec(),
        reason: reason.clone(),
    };
    if store.put_dead_letters(vec![letter]).await.is_err() {
        return false;
    }
    stats.topic(&topic, |t| {
        t.received += 1;
        t.dead_lettered += 1;
        t.last_error = Some(reason);
        t.last_error_at = Some(Utc::now());
    });
    true
}

/// Writes one mapped batch: the entity changes in one transaction, older observations to the history, refused
/// messages to the dead-letter table. Err (with the messages, to map again) only for storage errors.
async fn write_mapped(
    store: &dyn Store,
    stats: &IngestStats,
    m: Mapped,
) -> Result<Vec<Incoming>, (String, Vec<Incoming>)> {
    let Mapped {
        batch,
        changes,
        ids,
        fates,
    } = m;
    let results = match store.write_batch(changes).await {
        Ok(r) => r,
        Err(e) => return Err((e.detail, batch)),
    };
    let mut dead = Vec::new();
    for (inc, f) in batch.iter().zip(&fates) {
        let mut reason = f.refused.clone();
        let mut wrote = false;
        let mut stale = 0u64;
        for i in f.changes.clone() {
            match &results[i] {
                Ok(r) => {
                    wrote |= apply::applied(r) == Applied::Written;
                    let old = match apply::stale_of(&r.result) {
                        Ok(o) => o,
                        Err(e) => return Err((e.detail, batch)),
                    };
                    if !old.is_empty() {
                        let (id, types) = &ids[i];
                        // a redelivered old observation is in the history already
                        let added = match not_in_history(store, id, old).await {
                            Ok(old) if old.is_empty() => Ok(0),
                            Ok(old) => {
                                let n = old.values().map(|v| v.len() as u64).sum::<u64>();
                                store
                                    .temporal_append(id, Some(types.clone()), vec![], old)
                                    .await
                                    .map(|_| n)
                            }
                            Err(e) => Err(e),
                        };
                        match added {
                            Ok(n) => {
                                stale += n;
                                wrote |= n > 0;
                            }
                            // the store is down: the batch is retried
                            Err(e) if e.kind == twin_model::ErrorKind::InternalError => {
                                return Err((e.detail, batch))
                            }
                            // the store refuses this message's history: it is a dead letter
                            Err(e) => {
                                reason.get_or_insert_with(|| format!("{id}: {}", e.detail));
                            }
                        }
                    }
                }
                Err(e) => {
                    reason.get_or_insert_with(|| format!("{}: {}", ids[i].0, e.detail));
                }
            }
        }
        let at = Utc::now();
        stats.topic(&f.topic, |t| {
            t.received += 1;
            t.last_message_at = Some(at);
            t.stale += stale;
            match &reason {
                Some(r) => {
                    t.dead_lettered += 1;
                    t.last_error = Some(r.clone());
                    t.last_error_at = Some(at);
                }
                None if wrote => t.written += 1,
                None => t.unchanged += 1,
            }
        });
        if let Some(r) = reason {
            dead.push(DeadLetter {
                id: 0,
                received_at: inc.received_at,
                source: "mqtt".into(),
                topic: f.topic.clone(),
                payload: inc.publish.payload.to_vec(),
                reason: r,
            });
        }
    }
    if let Err(e) = store.put_dead_letters(dead).await {
        return Err((e.detail, batch));
    }
    Ok(batch)
}

/// The instances of `attrs` that the entity's history does not hold yet (same attribute, datasetId, observation
/// time and content).
async fn not_in_history(
    store: &dyn Store,
    id: &str,
    attrs: BTreeMap<String, Vec<twin_model::Attribute>>,
) -> twin_store::Result<BTreeMap<String, Vec<twin_model::Attribute>>> {
    let mut out: BTreeMap<String, Vec<twin_model::Attribute>> = BTreeMap::new();
    for (name, instances) in attrs {
        for a in instances {
            let known = match a.observed_at {
                None => false,
                Some(t) => {
                    let q = TemporalQuery {
                        entities: EntityQuery {
                            ids: Some(vec![id.to_string()]),
                            limit: 1,
                            ..Default::default()
                        },
                        timerel: Some(TimeRel::Between(t, t + chrono::TimeDelta::milliseconds(1))),
                        attrs: Some(vec![name.clone()]),
                        instance_limit: 1000,
                        ..Default::default()
                    };
                    store.temporal_query(&q).await?.iter().any(|e| {
                        e.attrs
                            .get(&name)
                            .is_some_and(|h| h.iter().any(|x| twin_model::ops::same_content(x, &a)))
                    })
                }
            };
            if !known {
                out.entry(name.clone()).or_default().push(a);
            }
        }
    }
    Ok(out)
}

impl Mapper {
    /// The changes of a batch, the entity id of each, and what each message became; Err when the store cannot be
    /// read.
    #[allow(clippy::type_complexity)]
    async fn map_batch(
        &mut self,
        batch: &[Incoming],
    ) -> Result<
        (
            Vec<(String, EntityChange)>,
            Vec<(String, Vec<String>)>,
            Vec<Fate>,
        ),
        String,
    > {
        let mut changes = Vec::new();
        let mut ids = Vec::new();
        let mut fates = Vec::with_capacity(batch.len());
        for inc in batch {
            let p = &inc.publish;
            let topic = String::from_utf8_lossy(&p.topic).into_owned();
            let start = changes.len();
            // the time of receipt, not of mapping: a batch mapped again maps to the same values
            let refused = match self.map(&topic, &p.payload, inc.received_at).await? {
                Ok(updates) => {
                    for u in updates {
                        ids.push((u.id.clone(), u.types.clone()));
                        changes.push((u.id.clone(), apply::change_for(u)));
                    }
                    None
                }
                Err(reason) => Some(reason),
            };
            fates.push(Fate {
                topic,
                changes: start..changes.len(),
                refused,
            });
        }
        Ok((changes, ids, fates))
    }

    /// Maps one message: Ok(Ok(updates)), Ok(Err(reason)) when refused, Err when the store cannot be read.
    async fn map(
        &mut self,
        topic: &str,
        payload: &[u8],
        now: chrono::DateTime<Utc>,
    ) -> Result<Result<Vec<mapping::Update>, String>, String> {
        let Some((route, caps)) = self
            .routes
            .iter()
            .find_map(|r| r.filter.matches(topic).map(|c| (r, c)))
        else {
            return Ok(Err(format!("no configured topic filter matches {topic}")));
        };
        // a payload naming a context the hub has not loaded yet is mapped again once it is fetched
        for _ in 0..8 {
            let contexts = &self.contexts;
            let r = mapping::map_message(
                &route.config,
                topic,
                &caps,
                payload,
                now,
                &route.context,
                &|u| contexts.get(u).cloned(),
            );
            match r {
                Ok(u) => return Ok(Ok(u)),
                Err(MapError::Refused(m)) => return Ok(Err(m)),
                Err(MapError::NeedContext(url)) => {
                    match fetch_context(&*self.store, &url)
                        .await
                        .map_err(|e| e.to_string())?
                    {
                        Some(doc) => {
                            self.contexts.insert(url, doc);
                        }
                        None => {
                            return Ok(Err(format!(
                                "the @context {url} is not registered on this hub"
                            )))
                        }
                    }
                }
            }
        }
        Ok(Err("the payload's @context names too many documents".into()))
    }
}
