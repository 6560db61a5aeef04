//! urbantwin's live data in: the hub subscribes to MQTT topics and turns each message into entity updates (NGSI-LD
//! payloads, JSON with a declared mapping, CSV lines), acknowledging a message only after the store committed it.
//!
//! - [`config`]: the TOML file that names the broker and maps topics to entities;
//! - [`mapping`]: a message to updates, as pure functions (topic filters, id templates, paths, units, times);
//! - [`apply`]: an update to a store change that is idempotent, so a redelivered message changes nothing;
//! - [`mqtt`]: the MQTT 5 session, batching, the dead-letter table and acknowledgements;
//! - [`stats`]: per-topic counters for the API;
//! - [`notify`]: the other way: subscriptions' notifications published to `mqtt://` and `mqtts://` endpoints;
//! - [`tls`]: MQTT over TLS (`mqtts://`): whom to trust, client certificates, readable handshake failures.

pub mod apply;
pub mod config;
pub mod mapping;
pub mod mqtt;
pub mod notify;
pub mod stats;
pub mod tls;

pub use config::IngestConfig;
pub use mqtt::{start, Ingest};
pub use stats::{IngestStats, Snapshot};

/// Why ingestion could not start (running ingestion never stops on an error; it counts and retries).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("ingestion configuration: {0}")]
    Config(String),
    #[error("storage: {0}")]
    Store(String),
}
