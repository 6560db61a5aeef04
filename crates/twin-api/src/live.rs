//! `/api/events`: server-sent events carrying every entity written after a client connects (live sensor values on
//! the map): one poller per server reads the store's recent writes and fans them out to the connected clients.
//!
//! The poller asks the store for the entities whose `modifiedAt` is at or after its cursor ([`Store::modified_since`])
//! every [`POLL`], re-reading the last [`OVERLAP_MS`] because a writer stamps a change before it commits (a slow
//! transaction, another process on the same file) and dropping what it has already sent. So a value written by any
//! process reaches the clients within about a poll interval, and nothing depends on which process wrote it.
//!
//! Each event is `event: entity`, `id:` the write's time in milliseconds, `data:` the entity in the NGSI-LD concise
//! format (or `format=keyValues` / `normalized`) compacted with the core context. A client that falls more than
//! [`BUFFER`] batches behind receives `event: reset` and should re-read what it shows.
//!
//! [`Store::modified_since`]: twin_store::Store::modified_since

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::Router;
use futures::{Stream, StreamExt};
use tokio::sync::{broadcast, watch};
use twin_model::ngsi::{render_entity, Format, RenderOptions};
use twin_model::query::{parse_q, Query};
use twin_model::{Context, Entity};

use crate::error::{ApiError, ApiResult};
use crate::guard::Guard;
use crate::params::Params;
use crate::SharedState;

/// How often the poller reads the store.
pub const POLL: Duration = Duration::from_millis(200);
/// How far back each poll re-reads.
pub const OVERLAP_MS: i64 = 2_000;
/// Entities read per poll (a burst larger than this is read over several polls).
const BATCH: usize = 5_000;
/// Batches a slow client may fall behind before it is told to reset.
pub const BUFFER: usize = 256;

/// The writes one poll found: each entity once, with the time of its write.
type Batch = Arc<Vec<(i64, Entity)>>;

/// The server's live feed: a broadcast of batches, started with the first client.
pub struct LiveFeed {
    tx: broadcast::Sender<Batch>,
    started: Mutex<bool>,
    /// Set when the server shuts down: streams end, the poller stops.
    stopped: watch::Sender<bool>,
}

impl Default for LiveFeed {
    fn default() -> Self {
        LiveFeed {
            tx: broadcast::channel(BUFFER).0,
            started: Mutex::new(false),
            stopped: watch::channel(false).0,
        }
    }
}

impl LiveFeed {
    /// Ends every stream and the poller (the server is shutting down).
    pub fn stop(&self) {
        self.stopped.send_replace(true);
    }

    /// Resolves once [`LiveFeed::stop`] was called.
    fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.stopped.subscribe();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    }

    /// A receiver of every batch from now on; starts the poller when it is not running.
    fn subscribe(&self, state: &SharedState) -> broadcast::Receiver<Batch> {
        let rx = self.tx.subscribe();
        let mut started = self.started.lock().unwrap_or_else(|e| e.into_inner());
        if !*started {
            *started = true;
            let stopped = self.stopped();
            let poller = poll(state.clone(), self.tx.clone());
            tokio::spawn(async move {
                tokio::select! {
                    () = poller => {}
                    () = stopped => {}
                }
            });
        }
        rx
    }
}

/// Reads the store's recent writes for as long as the server runs.
async fn poll(state: SharedState, tx: broadcast::Sender<Batch>) {
    // writes stamped before the feed started are history, not news
    let start = chrono::Utc::now().timestamp_millis();
    let mut cursor = start;
    // what was sent, by id: the modification time sent (kept while inside the overlap)
    let mut sent: HashMap<String, i64> = HashMap::new();
    let mut interval = tokio::time::interval(POLL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let since = cursor - OVERLAP_MS;
        let rows = match state.store.modified_since(since, BATCH).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e.detail, "live feed: cannot read recent writes");
                continue;
            }
        };
        let full = rows.len() == BATCH;
        let mut fresh = Vec::new();
        for (ms, e) in rows {
            cursor = cursor.max(ms);
            if sent.get(&e.id).is_some_and(|&seen| seen >= ms) {
                continue;
            }
            sent.insert(e.id.clone(), ms);
            if ms >= start {
                fresh.push((ms, e));
            }
        }
        // forget what can no longer be re-read
        let horizon = cursor - 2 * OVERLAP_MS;
        sent.retain(|_, &mut ms| ms >= horizon);
        if full {
            // a burst: continue from the newest write seen (the overlap is re-read, the duplicates dropped)
            interval.reset_immediately();
        }
        if !fresh.is_empty() && tx.send(Arc::new(fresh)).is_err() {
            // no client listens; the batch is simply dropped
        }
    }
}

pub fn routes() -> Router<SharedState> {
    Router::new().route("/events", get(events))
}

/// What a client asked for.
struct Filter {
    /// Expanded type IRIs (None: every type).
    types: Option<HashSet<String>>,
    /// An NGSI-LD query the entity must satisfy (e.g. `!simulated`).
    q: Option<Query>,
    /// Entity ids (None: every entity).
    ids: Option<HashSet<String>>,
    options: RenderOptions,
}

impl Filter {
    fn parse(raw: Option<&str>) -> ApiResult<Filter> {
        let p = Params::parse(raw, &["type", "id", "attrs", "format", "q"])?;
        let ctx = Context::core();
        let list = |name: &str| {
            p.get(name).map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect::<Vec<_>>()
            })
        };
        let expand = |name: String| ctx.expand(&name);
        let types = list("type").map(|v| v.into_iter().map(expand).collect());
        let ids = list("id").map(|v| v.into_iter().collect());
        let q = match p.get("q") {
            Some(s) => {
                let mut q = parse_q(s)?;
                q.expand_names(&|n| ctx.expand(n));
                Some(q)
            }
            None => None,
        };
        let attrs: Option<HashSet<String>> =
            list("attrs").map(|v| v.into_iter().map(expand).collect());
        let format = match p.get("format").unwrap_or("concise") {
            "concise" => Format::Concise,
            "keyValues" | "simplified" => Format::KeyValues,
            "normalized" => Format::Normalized,
            other => {
                return Err(ApiError::bad_data(format!(
                    "format must be concise, keyValues or normalized, not {other:?}"
                )))
            }
        };
        Ok(Filter {
            types,
            q,
            ids,
            options: RenderOptions {
                format,
                attrs,
                ..RenderOptions::default()
            },
        })
    }

    fn wants(&self, e: &Entity) -> bool {
        self.types
            .as_ref()
            .is_none_or(|t| e.types.iter().any(|x| t.contains(x)))
            && self.ids.as_ref().is_none_or(|ids| ids.contains(&e.id))
            && self.q.as_ref().is_none_or(|q| q.matches(e))
    }
}

/// One step of a client's stream.
enum Events {
    Batch(Batch),
    Reset(u64),
}

/// `GET /api/events?type=A,B&id=...&attrs=...&format=concise`: the writes from now on, as server-sent events.
async fn events(
    State(state): State<SharedState>,
    g: Guard,
    RawQuery(raw): RawQuery,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let filter = Filter::parse(raw.as_deref())?;
    let rx = state.live.subscribe(&state);
    let ready = Event::default().event("ready").data("{}");
    // each step yields the events of one batch (or a reset), until the feed closes
    let batches = futures::stream::unfold(rx, move |mut rx| async move {
        let step = match rx.recv().await {
            Ok(batch) => Events::Batch(batch),
            Err(broadcast::error::RecvError::Lagged(n)) => Events::Reset(n),
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        Some((step, rx))
    });
    let ctx = Context::core();
    // the caller's scope as the stream opens: only entities it may read, without the attributes hidden from it
    let g = std::sync::Arc::new(g);
    let stream = futures::stream::once(async move { vec![ready] })
        .chain(batches.map(move |b| match b {
            Events::Batch(batch) => {
                let mut seen: Vec<(&i64, Entity)> = batch
                    .iter()
                    .filter(|(_, e)| filter.wants(e) && g.sees(e))
                    .map(|(ms, e)| (ms, e.clone()))
                    .collect();
                for (_, e) in &mut seen {
                    g.redact(e);
                }
                g.log(seen.iter().map(|(_, e)| e.dataset.as_deref()), "events");
                seen.iter()
                    .map(|(ms, e)| {
                        Event::default()
                            .event("entity")
                            .id(ms.to_string())
                            .data(render_entity(e, &ctx, &filter.options).to_string())
                    })
                    .collect()
            }
            Events::Reset(n) => vec![Event::default()
                    .event("reset")
                    .data(format!("{{\"missedBatches\":{n}}}"))],
        }))
        .flat_map(|events| futures::stream::iter(events.into_iter().map(Ok)))
        .take_until(state.live.stopped());
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
