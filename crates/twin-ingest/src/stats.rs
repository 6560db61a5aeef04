//! Counters of the ingestion since the hub started: the broker connection, and per topic the messages received,
//! written, unchanged (duplicates), stale and refused, with the last error; served by the API as JSON.

use std::collections::BTreeMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// Above this many distinct topics, further topics are counted together under [`OTHER_TOPICS`].
pub const MAX_TOPICS: usize = 10_000;
pub const OTHER_TOPICS: &str = "(other topics)";

/// One topic's counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TopicStats {
    /// Messages received (a redelivery counts again).
    pub received: u64,
    /// Messages that created or changed at least one entity.
    pub written: u64,
    /// Messages whose every value was already stored (duplicates, redeliveries).
    pub unchanged: u64,
    /// Attribute values older than the stored ones, added to the history only (a redelivered one, already in the
    /// history, counts as unchanged).
    pub stale: u64,
    /// Messages refused and kept in the dead-letter table.
    pub dead_lettered: u64,
    pub last_message_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

/// The connection to the broker.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BrokerStats {
    pub url: String,
    pub client_id: String,
    pub connected: bool,
    /// Successful connections (the first one and every reconnection).
    pub connections: u64,
    /// Whether the broker still had the hub's session at the last connection (its queued messages were kept).
    pub session_present: bool,
    pub last_connected_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

/// A snapshot of every counter.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub started_at: Option<DateTime<Utc>>,
    pub broker: BrokerStats,
    /// Store transactions written (each holds up to a batch of messages).
    pub batches: u64,
    /// Messages stored and acknowledged to the broker; a message the broker sends again (its acknowledgement was
    /// lost with a connection) counts again, a message stored while its connection was lost counts when it comes back.
    pub acknowledged: u64,
    /// The last store error (the batch is retried, not acknowledged, until it succeeds).
    pub last_store_error: Option<String>,
    pub topics: BTreeMap<String, TopicStats>,
}

/// The shared counters.
#[derive(Debug, Default)]
pub struct IngestStats {
    inner: Mutex<Snapshot>,
}

impl IngestStats {
    pub fn new(url: &str, client_id: &str) -> IngestStats {
        IngestStats {
            inner: Mutex::new(Snapshot {
                started_at: Some(Utc::now()),
                broker: BrokerStats {
                    url: url.into(),
                    client_id: client_id.into(),
                    ..Default::default()
                },
                ..Default::default()
            }),
        }
    }

    /// Messages stored and acknowledged so far (without copying every counter, as [`IngestStats::snapshot`] does).
    pub fn acknowledged(&self) -> u64 {
        self.inner.lock().map(|s| s.acknowledged).unwrap_or(0)
    }

    pub fn snapshot(&self) -> Snapshot {
        self.inner.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Changes the counters under the lock.
    pub(crate) fn update(&self, f: impl FnOnce(&mut Snapshot)) {
        if let Ok(mut s) = self.inner.lock() {
            f(&mut s);
        }
    }

    /// Changes one topic's counters.
    pub(crate) fn topic(&self, topic: &str, f: impl FnOnce(&mut TopicStats)) {
        self.update(|s| {
            let key = if s.topics.contains_key(topic) || s.topics.len() < MAX_TOPICS {
                topic
            } else {
                OTHER_TOPICS
            };
            f(s.topics.entry(key.to_string()).or_default())
        })
    }
}
