//! The notification worker (ETSI GS CIM 009 clause 5.11): turns journaled changes and periodic subscriptions into
//! notifications in the store's durable outbox, and delivers them over HTTP with bounded concurrency and back-off.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Value};
use tokio::task::JoinSet;
use twin_model::subscription::{EndpointAccept, EntityEvent, NotificationTrigger, Subscription};
use twin_model::Entity;
use twin_store::{ChangeRecord, DeliveryStatus, EntityQuery, PendingDelivery, Trigger};

use crate::guard::Guard;
use crate::ld::{self, RequestContext};
use crate::SharedState;

/// How often the worker looks for due retries and periodic subscriptions when nothing wakes it.
const TICK: Duration = Duration::from_secs(1);
/// Changes read from the journal at a time.
const CHANGE_BATCH: usize = 500;
/// Journal batches processed before deliveries get a turn.
const BATCHES_PER_ROUND: usize = 8;
/// Deliveries in flight at once.
const MAX_IN_FLIGHT: usize = 16;
/// Longest wait between two attempts of one delivery.
const MAX_BACKOFF_SECS: i64 = 300;
/// Entities per notification when several changes for one subscription are processed together.
const MAX_DATA_PER_NOTIFICATION: usize = 100;

/// A subscription as loaded by the worker: its stored document (to notice changes), the parsed form and its status.
struct Loaded {
    document: Value,
    sub: Arc<Subscription>,
    status: DeliveryStatus,
}

/// Notifications being assembled for one subscription from one batch of changes.
struct Group {
    sub: Arc<Subscription>,
    context: Value,
    reason: Option<NotificationTrigger>,
    data: Vec<Value>,
    ids: HashSet<String>,
}

struct Worker {
    state: SharedState,
    subs: HashMap<String, Loaded>,
    /// Subscriptions whose stored document could not be read (reported once).
    unreadable: HashSet<String>,
    /// The last journal sequence number turned into deliveries.
    last_seq: i64,
    /// Commit time of the last change that notified each throttled subscription.
    throttled: HashMap<String, DateTime<Utc>>,
    /// When each periodic subscription was last notified by this worker.
    periodic: HashMap<String, DateTime<Utc>>,
    /// Notification contexts resolved during the current round.
    contexts: HashMap<String, (Value, RequestContext)>,
    /// What each subscription's owner may read, computed once a round.
    guards: HashMap<String, Arc<Guard>>,
    tasks: JoinSet<()>,
    /// Delivery id of every running task, by task id.
    in_flight: HashMap<tokio::task::Id, i64>,
}

/// Runs the notification worker for the server's lifetime (it is aborted with the server; deliveries in flight are
/// then attempted again after a restart, so delivery is at least once).
pub async fn run(state: SharedState) {
    let signal = state.store.change_signal();
    let mut w = Worker {
        state,
        subs: HashMap::new(),
        unreadable: HashSet::new(),
        last_seq: 0,
        throttled: HashMap::new(),
        periodic: HashMap::new(),
        contexts: HashMap::new(),
        guards: HashMap::new(),
        tasks: JoinSet::new(),
        in_flight: HashMap::new(),
    };
    loop {
        if let Err(e) = w.round().await {
            tracing::warn!(error = %e, "notification worker round failed; retrying");
        }
        let finished = tokio::select! {
            _ = signal.notified() => None,
            _ = tokio::time::sleep(TICK) => None,
            Some(done) = w.tasks.join_next_with_id(), if !w.tasks.is_empty() => Some(done),
        };
        if let Some(done) = finished {
            w.reap(done);
        }
        while let Some(done) = w.tasks.try_join_next_with_id() {
            w.reap(done);
        }
    }
}

/// Exponential back-off after the `attempts`-th failed attempt: 1 s, 2 s, 4 s, ... at most five minutes.
pub fn backoff(attempts: u32) -> TimeDelta {
    let exp = attempts.saturating_sub(1).min(20);
    TimeDelta::seconds((1i64 << exp).min(MAX_BACKOFF_SECS))
}

fn event_of(t: Trigger) -> EntityEvent {
    match t {
        Trigger::EntityCreated => EntityEvent::Created,
        Trigger::EntityUpdated => EntityEvent::Updated,
        Trigger::EntityDeleted => EntityEvent::Deleted,
    }
}

fn seconds(s: f64) -> TimeDelta {
    TimeDelta::milliseconds((s * 1000.0).round() as i64)
}

impl Worker {
    fn reap(&mut self, done: Result<(tokio::task::Id, ()), tokio::task::JoinError>) {
        let id = match done {
            Ok((id, ())) => id,
            Err(e) => {
                if e.is_panic() {
                    tracing::error!("a notification delivery task panicked");
                }
                e.id()
            }
        };
        self.in_flight.remove(&id);
    }

    async fn round(&mut self) -> twin_store::Result<()> {
        self.contexts.clear();
        self.guards.clear();
        self.load_subscriptions().await?;
        self.process_changes().await?;
        self.process_periodic().await?;
        self.dispatch().await
    }

    async fn load_subscriptions(&mut self) -> twin_store::Result<()> {
        let stored = self.state.store.list_subscriptions().await?;
        let mut next = HashMap::with_capacity(stored.len());
        for s in stored {
            let sub = match self.subs.remove(&s.id) {
                Some(l) if l.document == s.document => l.sub,
                _ => match Subscription::from_stored(&s.document) {
                    Ok(sub) => {
                        self.unreadable.remove(&s.id);
                        Arc::new(sub)
                    }
                    Err(e) => {
                        if self.unreadable.insert(s.id.clone()) {
                            tracing::error!(subscription = %s.id, error = %e, "cannot read stored subscription");
                        }
                        continue;
                    }
                },
            };
            next.insert(
                s.id.clone(),
                Loaded {
                    document: s.document,
                    sub,
                    status: s.status,
                },
            );
        }
        self.subs = next;
        self.throttled.retain(|id, _| self.subs.contains_key(id));
        self.periodic.retain(|id, _| self.subs.contains_key(id));
        Ok(())
    }

    /// What the owner of `sub` may read (the public scope when it has no owner or the owner cannot be resolved).
    async fn guard(&mut self, sub: &Subscription) -> twin_store::Result<Arc<Guard>> {
        if let Some(g) = self.guards.get(&sub.id) {
            return Ok(g.clone());
        }
        let principal = crate::auth::owner_principal(&self.state, sub.owner.as_ref()).await?;
        let g = Arc::new(
            Guard::in_tenant(&self.state, principal, None, sub.tenant.clone())
                .await
                .map_err(|e| e.0)?,
        );
        self.guards.insert(sub.id.clone(), g.clone());
        Ok(g)
    }

    /// The context notifications of `sub` are rendered under (the core context when it cannot be resolved).
    async fn context(&mut self, sub: &Subscription) -> (Value, RequestContext) {
        if let Some(c) = self.contexts.get(&sub.id) {
            return c.clone();
        }
        let user = sub.notification_context();
        let resolved = match ld::context_for(&self.state, &user).await {
            Ok(rc) => (user, rc),
            Err(e) => {
                tracing::warn!(subscription = %sub.id, error = %e.0, "notification @context unavailable; using the core context");
                let core = ld::context_for(&self.state, &Value::Null).await;
                match core {
                    Ok(rc) => (Value::Null, rc),
                    Err(_) => (
                        Value::Null,
                        RequestContext {
                            ctx: twin_model::Context::core(),
                            user: Value::Null,
                            link_url: twin_model::context::CORE_CONTEXT_URL.into(),
                        },
                    ),
                }
            }
        };
        self.contexts.insert(sub.id.clone(), resolved.clone());
        resolved
    }

    /// Turns journaled changes into deliveries; each batch is enqueued atomically with forgetting its changes.
    async fn process_changes(&mut self) -> twin_store::Result<()> {
        for _ in 0..BATCHES_PER_ROUND {
            let changes = self
                .state
                .store
                .changes_since(self.last_seq, CHANGE_BATCH)
                .await?;
            let Some(upto) = changes.last().map(|c| c.seq) else {
                return Ok(());
            };
            let now = Utc::now();
            let live: Vec<Arc<Subscription>> = self
                .subs
                .values()
                .filter(|l| l.sub.time_interval.is_none() && l.sub.is_live(now))
                .map(|l| l.sub.clone())
                .collect();
            let mut throttled = self.throttled.clone();
            let mut groups: Vec<Group> = Vec::new();
            let mut open: HashMap<String, usize> = HashMap::new();
            for ch in &changes {
                for sub in &live {
                    self.consider(sub, ch, now, &mut throttled, &mut groups, &mut open)
                        .await;
                }
            }
            let deliveries: Vec<(String, Value)> = groups
                .into_iter()
                .map(|g| {
                    let n = g.sub.notification(g.data, g.reason, now);
                    (
                        g.sub.id.clone(),
                        json!({"notification": n, "context": g.context}),
                    )
                })
                .collect();
            let n = deliveries.len();
            self.state
                .store
                .enqueue_deliveries(upto, deliveries)
                .await?;
            self.throttled = throttled;
            self.last_seq = upto;
            if n > 0 {
                tracing::debug!(notifications = n, upto_seq = upto, "notifications enqueued");
            }
            if changes.len() < CHANGE_BATCH {
                break;
            }
        }
        Ok(())
    }

    async fn consider(
        &mut self,
        sub: &Arc<Subscription>,
        ch: &ChangeRecord,
        now: DateTime<Utc>,
        throttled: &mut HashMap<String, DateTime<Utc>>,
        groups: &mut Vec<Group>,
        open: &mut HashMap<String, usize>,
    ) {
        if ch.at < sub.created_at {
            return; // the change predates the subscription
        }
        // its owner's policies: an entity they may not read is not notified, hidden attributes are left out
        let g = match self.guard(sub).await {
            Ok(g) => g,
            Err(e) => {
                tracing::warn!(subscription = %sub.id, error = %e, "cannot resolve the subscription's owner");
                return;
            }
        };
        if !g.sees(&ch.entity) {
            return;
        }
        let mut entity = ch.entity.clone();
        g.redact(&mut entity);
        let mut previous = ch.previous.clone();
        if let Some(p) = previous.as_mut() {
            g.redact(p);
        }
        // a change to attributes hidden from the owner only is no news to them
        let attributes: Vec<String> = ch
            .attributes
            .iter()
            .filter(|a| entity.attrs.contains_key(*a) || !ch.entity.attrs.contains_key(*a))
            .cloned()
            .collect();
        if attributes.is_empty() && !ch.attributes.is_empty() {
            return;
        }
        let ch = &ChangeRecord {
            entity,
            previous,
            attributes,
            ..ch.clone()
        };
        let event = event_of(ch.trigger);
        let Some(reason) = sub.trigger_reason(event, &ch.attributes, &ch.entity, now) else {
            return;
        };
        if let Some(t) = sub.throttling {
            if throttled
                .get(&sub.id)
                .is_some_and(|last| ch.at < *last + seconds(t))
            {
                return;
            }
            throttled.insert(sub.id.clone(), ch.at);
        }
        g.log(
            std::iter::once(ch.entity.dataset.as_deref()),
            "notification",
        );
        let (context, rc) = self.context(sub).await;
        let data = sub.render_data(
            event,
            &ch.attributes,
            &ch.entity,
            ch.previous.as_ref(),
            &rc.ctx,
            ch.at,
        );
        add_to_group(groups, open, sub, context, Some(reason), &ch.entity, data);
    }

    /// Notifies periodic subscriptions (timeInterval) whose interval has elapsed with the current matching entities.
    async fn process_periodic(&mut self) -> twin_store::Result<()> {
        // with several nodes on one database, one sends the periodic notifications
        if !self.state.store.is_notifier().await? {
            return Ok(());
        }
        let now = Utc::now();
        let due: Vec<(Arc<Subscription>, Option<DateTime<Utc>>)> = self
            .subs
            .values()
            .filter(|l| l.sub.time_interval.is_some() && l.sub.is_live(now))
            .map(|l| {
                (
                    l.sub.clone(),
                    self.periodic
                        .get(&l.sub.id)
                        .copied()
                        .or(l.status.last_notification),
                )
            })
            .collect();
        let mut deliveries = Vec::new();
        for (sub, last) in due {
            let interval = seconds(sub.time_interval.unwrap_or(1.0));
            if last.is_some_and(|t| now < t + interval) {
                continue;
            }
            self.periodic.insert(sub.id.clone(), now);
            // at most one periodic notification waits per subscription: while an endpoint is down, intervals do
            // not pile up deliveries (the next one carries the state of its own time anyway)
            match self.state.store.pending_deliveries(&sub.id).await {
                Ok(0) => {}
                Ok(_) => continue,
                Err(e) => {
                    tracing::warn!(subscription = %sub.id, error = %e, "cannot read the outbox");
                    continue;
                }
            }
            let entities = match self.current_entities(&sub).await {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(subscription = %sub.id, error = %e, "periodic subscription query failed");
                    continue;
                }
            };
            if entities.is_empty() {
                continue;
            }
            let (context, rc) = self.context(&sub).await;
            let data: Vec<Value> = entities
                .values()
                .map(|e| sub.render_data(EntityEvent::Updated, &[], e, None, &rc.ctx, now))
                .collect();
            let n = sub.notification(data, None, now);
            deliveries.push((
                sub.id.clone(),
                json!({"notification": n, "context": context}),
            ));
        }
        if !deliveries.is_empty() {
            // `last_seq` is already forgotten, so this enqueues without touching the journal
            self.state
                .store
                .enqueue_deliveries(self.last_seq, deliveries)
                .await?;
        }
        Ok(())
    }

    /// The entities a periodic subscription currently selects, by id.
    async fn current_entities(
        &mut self,
        sub: &Subscription,
    ) -> twin_store::Result<BTreeMap<String, Entity>> {
        let g = self.guard(sub).await?;
        let m = sub.matchers()?;
        let mut out = BTreeMap::new();
        let limit = self.state.config.max_limit.max(1);
        for sel in &m.selectors {
            let q = EntityQuery {
                ids: sel.id.clone().map(|i| vec![i]),
                id_pattern: if sel.id.is_none() {
                    sel.id_pattern.clone()
                } else {
                    None
                },
                types: Some(sel.types.clone()),
                q: m.q.clone(),
                scope_q: m.scope.clone(),
                geo: m.geo.clone(),
                limit,
                ..Default::default()
            };
            let mut q = q;
            g.restrict(&mut q);
            let mut page = self.state.store.query(&q).await?.entities;
            g.release(&mut page, "notification");
            for e in page {
                if out.len() >= limit {
                    break;
                }
                out.insert(e.id.clone(), e);
            }
        }
        Ok(out)
    }

    /// Starts due deliveries, at most `MAX_IN_FLIGHT` at once.
    async fn dispatch(&mut self) -> twin_store::Result<()> {
        let free = MAX_IN_FLIGHT.saturating_sub(self.in_flight.len());
        if free == 0 {
            return Ok(());
        }
        let running: HashSet<i64> = self.in_flight.values().copied().collect();
        let due = self
            .state
            .store
            .due_deliveries(Utc::now(), MAX_IN_FLIGHT + running.len())
            .await?;
        for d in due
            .into_iter()
            .filter(|d| !running.contains(&d.id))
            .take(free)
        {
            let sub = self.subs.get(&d.subscription_id).map(|l| l.sub.clone());
            let state = self.state.clone();
            let delivery_id = d.id;
            let handle = self.tasks.spawn(deliver(state, d, sub));
            self.in_flight.insert(handle.id(), delivery_id);
        }
        Ok(())
    }
}

fn add_to_group(
    groups: &mut Vec<Group>,
    open: &mut HashMap<String, usize>,
    sub: &Arc<Subscription>,
    context: Value,
    reason: Option<NotificationTrigger>,
    entity: &Entity,
    data: Value,
) {
    if let Some(&i) = open.get(&sub.id) {
        let g = &mut groups[i];
        if g.reason == reason
            && g.data.len() < MAX_DATA_PER_NOTIFICATION
            && !g.ids.contains(&entity.id)
        {
            g.ids.insert(entity.id.clone());
            g.data.push(data);
            return;
        }
    }
    open.insert(sub.id.clone(), groups.len());
    groups.push(Group {
        sub: sub.clone(),
        context,
        reason,
        data: vec![data],
        ids: HashSet::from([entity.id.clone()]),
    });
}

/// One delivery attempt, recorded in the store: success removes it, failure reschedules it with back-off or, after
/// the last allowed attempt, gives it up.
async fn deliver(state: SharedState, d: PendingDelivery, sub: Option<Arc<Subscription>>) {
    let Some(sub) = sub else {
        // the subscription was deleted after the notification was enqueued
        let r = state
            .store
            .finish_delivery(
                d.id,
                &d.subscription_id,
                Utc::now(),
                Some("the subscription no longer exists".into()),
                None,
            )
            .await;
        if let Err(e) = r {
            tracing::warn!(delivery = d.id, error = %e, "cannot drop delivery");
        }
        return;
    };
    let outcome = send(&state, &sub, &d.payload).await;
    let at = Utc::now();
    let (error, retry_at) = match outcome {
        Ok(()) => {
            tracing::debug!(subscription = %sub.id, delivery = d.id, "notification delivered");
            (None, None)
        }
        Err(msg) => {
            let attempts = d.attempts + 1;
            let retry = if attempts >= state.config.notification_attempts {
                tracing::warn!(subscription = %sub.id, delivery = d.id, attempts, error = %msg, "notification given up");
                None
            } else {
                let cooldown = TimeDelta::milliseconds(
                    sub.notification.endpoint.cooldown_ms.unwrap_or(0) as i64,
                );
                let wait = backoff(attempts).max(cooldown);
                tracing::info!(subscription = %sub.id, delivery = d.id, attempts, error = %msg, retry_in_s = wait.num_seconds(), "notification failed; will retry");
                Some(at + wait)
            };
            (Some(msg), retry)
        }
    };
    if let Err(e) = state
        .store
        .finish_delivery(d.id, &sub.id, at, error, retry_at)
        .await
    {
        tracing::warn!(delivery = d.id, error = %e, "cannot record the outcome of a delivery; it will be attempted again");
    }
}

/// Describes a transport error with its causes (reqwest's own message is terse).
fn describe(e: &reqwest::Error) -> String {
    let mut s = if e.is_timeout() {
        "timed out".to_string()
    } else {
        e.to_string()
    };
    let mut src = std::error::Error::source(e);
    while let Some(cause) = src {
        let c = cause.to_string();
        if !s.contains(&c) {
            s.push_str(": ");
            s.push_str(&c);
        }
        src = cause.source();
    }
    s
}

/// POSTs one notification to the subscription's endpoint.
async fn send(state: &SharedState, sub: &Subscription, payload: &Value) -> Result<(), String> {
    let endpoint = &sub.notification.endpoint;
    let mqtt = endpoint.mqtt();
    if !endpoint.is_http() && mqtt.is_none() {
        return Err(format!(
            "cannot deliver to {}: only http, https and mqtt endpoints are supported",
            endpoint.uri
        ));
    }
    let mut body = payload
        .get("notification")
        .cloned()
        .unwrap_or_else(|| payload.clone());
    let context = payload.get("context").cloned().unwrap_or(Value::Null);
    let rc = ld::context_for(state, &context)
        .await
        .map_err(|e| format!("cannot resolve the notification @context: {}", e.0.detail))?;
    if let Value::Object(m) = &mut body {
        m.insert(
            "notifiedAt".into(),
            Value::String(twin_model::ngsi::format_datetime(&Utc::now())),
        );
    }
    let timeout = endpoint
        .timeout_ms
        .map(Duration::from_millis)
        .unwrap_or(state.config.notification_timeout);
    // the headers of an HTTP notification; MQTT carries them as metadata
    let mut headers: Vec<(String, String)> = Vec::new();
    match endpoint.accept {
        EndpointAccept::Json => {
            headers.push(("Content-Type".into(), "application/json".into()));
            headers.push((
                "Link".into(),
                format!(
                    "<{}>; rel=\"{}\"; type=\"application/ld+json\"",
                    rc.link_url,
                    ld::LD_REL
                ),
            ));
        }
        EndpointAccept::JsonLd => {
            if let Value::Object(m) = &mut body {
                m.insert("@context".into(), rc.body_context());
            }
            headers.push(("Content-Type".into(), "application/ld+json".into()));
        }
    }
    for kv in &endpoint.receiver_info {
        headers.push((kv.key.clone(), kv.value.clone()));
    }
    if let Some(target) = mqtt {
        return state.mqtt.publish(&target, &headers, &body, timeout).await;
    }
    let mut req = state.http.post(&endpoint.uri).timeout(timeout);
    for (k, v) in &headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let resp = req
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| describe(&e))?;
    let status = resp.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("the endpoint answered HTTP {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        assert_eq!(backoff(1), TimeDelta::seconds(1));
        assert_eq!(backoff(2), TimeDelta::seconds(2));
        assert_eq!(backoff(3), TimeDelta::seconds(4));
        assert_eq!(backoff(9), TimeDelta::seconds(256));
        assert_eq!(backoff(10), TimeDelta::seconds(300));
        assert_eq!(backoff(1000), TimeDelta::seconds(300));
    }
}
