//! The ingestion configuration (a TOML file): the broker to subscribe to and, per topic filter, how its messages
//! become entity updates. Everything is checked when the file is read, so a bad mapping stops start-up, not a sensor.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::IngestError;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    pub broker: BrokerConfig,
    /// One entry per topic filter, tried in order; the first whose filter matches a message's topic maps it.
    #[serde(rename = "topic", default)]
    pub topics: Vec<TopicConfig>,
    #[serde(default)]
    pub batch: BatchConfig,
}

/// The MQTT broker and the session the hub keeps on it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerConfig {
    /// `mqtt://host[:port]` (plain TCP, default port 1883) or `mqtts://host[:port]` (TLS, default port 8883).
    pub url: String,
    /// `mqtts://`: a PEM file with the CA certificate(s) the broker's certificate must be signed by (a city's
    /// private CA), in place of the machine's root certificates.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// `mqtts://` with brokers that require client certificates (mutual TLS): the hub's certificate (chain) as PEM
    /// and its private key (PEM, PKCS#8, PKCS#1 or SEC1); both or neither.
    #[serde(default)]
    pub client_cert_file: Option<PathBuf>,
    #[serde(default)]
    pub client_key_file: Option<PathBuf>,
    /// Fixed, so that the broker keeps the hub's session (its subscriptions and the messages not yet acknowledged)
    /// while the hub restarts. Several hub nodes need different ids (and a `share_group`).
    #[serde(default = "default_client_id")]
    pub client_id: String,
    /// How long the broker keeps the session after the hub disconnects (MQTT 5 session expiry).
    #[serde(default = "default_session_expiry")]
    pub session_expiry_s: u32,
    #[serde(default)]
    pub username: Option<String>,
    /// The name of an environment variable holding the password (never the password itself).
    #[serde(default)]
    pub password_env: Option<String>,
    /// Subscribe as `$share/<group>/<filter>`, so that several hub nodes split the messages between them.
    #[serde(default)]
    pub share_group: Option<String>,
    #[serde(default = "default_keep_alive")]
    pub keep_alive_s: u16,
}

fn default_client_id() -> String {
    "urbantwin".into()
}

fn default_session_expiry() -> u32 {
    7 * 24 * 3600
}

fn default_keep_alive() -> u16 {
    30
}

/// How messages are grouped into store transactions: a batch is written when it holds `max_messages` or when
/// its first message has waited `max_wait_ms`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    #[serde(default = "default_batch_messages")]
    pub max_messages: usize,
    #[serde(default = "default_batch_wait")]
    pub max_wait_ms: u64,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_messages: default_batch_messages(),
            max_wait_ms: default_batch_wait(),
        }
    }
}

fn default_batch_messages() -> usize {
    2000
}

fn default_batch_wait() -> u64 {
    10
}

/// What a topic's payloads are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// NGSI-LD entities, normalized or keyValues (one entity, an array, or a notification with `data`).
    NgsiLd,
    /// Any JSON object, mapped by the topic's `id`, `type`, `observed_at` and `attributes`.
    Json,
    /// One or more CSV lines, mapped by `columns`.
    Csv,
}

/// One topic filter and its mapping.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicConfig {
    /// An MQTT topic filter (`+` one level, `#` the rest).
    pub filter: String,
    pub format: Format,
    /// The dataset the updates belong to (provenance), e.g. `urn:ngsi-ld:Dataset:air-sensors`.
    #[serde(default)]
    pub dataset: Option<String>,
    /// The URL of a JSON-LD context registered on the hub, to expand names with (default: the core context).
    #[serde(default)]
    pub context: Option<String>,
    /// JSON and CSV: the entity id, a template: `{1}`, `{2}`... are the levels matched by the filter's `+`
    /// wildcards, `{#}` what `#` matched, `{topic}` the whole topic, and `{/pointer}` or `{$.path}` a payload value.
    #[serde(default)]
    pub id: Option<String>,
    /// JSON and CSV: the entity type (a Smart Data Models name such as `AirQualityObserved`).
    #[serde(default, rename = "type")]
    pub type_name: Option<String>,
    /// JSON: where the observation time is (a path); CSV: its column. Numbers are Unix seconds (or milliseconds
    /// when larger than 10^11), strings RFC 3339. Without it, the time of receipt is used.
    #[serde(default)]
    pub observed_at: Option<String>,
    /// CSV: the column names, in order.
    #[serde(default)]
    pub columns: Vec<String>,
    /// CSV: the separator (default `,`).
    #[serde(default)]
    pub separator: Option<char>,
    /// JSON and CSV: attribute name → where its value comes from and how it is converted.
    #[serde(default)]
    pub attributes: BTreeMap<String, AttrMapping>,
}

/// Where one attribute's value comes from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttrMapping {
    /// JSON: a JSON pointer (`/a/b/0`) or a dotted path (`$.a.b[0]`).
    #[serde(default)]
    pub path: Option<String>,
    /// CSV: the column name.
    #[serde(default)]
    pub column: Option<String>,
    /// A point location from two numbers (`lon` and `lat` paths or columns); makes a GeoProperty.
    #[serde(default)]
    pub lon: Option<String>,
    #[serde(default)]
    pub lat: Option<String>,
    /// The UN/CEFACT unit code stored with the value (`unitCode`), e.g. `GQ` (µg/m³), `CEL`, `KMH`.
    #[serde(default)]
    pub unit: Option<String>,
    /// The unit code the sensor sends; converted to `unit` (known pairs only, see [`crate::mapping::convert`]).
    #[serde(default)]
    pub from: Option<String>,
    /// A linear conversion applied to numbers: `value * scale + offset`.
    #[serde(default)]
    pub scale: Option<f64>,
    #[serde(default)]
    pub offset: Option<f64>,
    /// Make the attribute a Relationship to this entity id template instead of a Property.
    #[serde(default)]
    pub relationship: bool,
    /// The attribute's datasetId (for several sources of one attribute).
    #[serde(default)]
    pub dataset_id: Option<String>,
    /// A message without this value is refused (dead letter) rather than updating the other attributes.
    #[serde(default)]
    pub required: bool,
}

impl IngestConfig {
    pub fn from_file(path: &Path) -> Result<IngestConfig, IngestError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| IngestError::Config(format!("cannot read {}: {e}", path.display())))?;
        IngestConfig::parse(&text)
            .map_err(|e| IngestError::Config(format!("{}: {e}", path.display())))
    }

    /// Reads and checks a configuration.
    pub fn parse(text: &str) -> Result<IngestConfig, String> {
        let c: IngestConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        c.check()?;
        Ok(c)
    }

    fn check(&self) -> Result<(), String> {
        let url = crate::mqtt::BrokerUrl::parse(&self.broker.url)?;
        let b = &self.broker;
        if !url.tls
            && (b.ca_file.is_some() || b.client_cert_file.is_some() || b.client_key_file.is_some())
        {
            return Err(format!(
                "broker.ca_file, client_cert_file and client_key_file apply to TLS: the url must be mqtts://, not {:?}",
                b.url
            ));
        }
        if b.client_cert_file.is_some() != b.client_key_file.is_some() {
            return Err("broker.client_cert_file and client_key_file go together".into());
        }
        if self.broker.client_id.is_empty() {
            return Err("broker.client_id is empty".into());
        }
        if self.topics.is_empty() {
            return Err("no [[topic]] is configured".into());
        }
        if self.batch.max_messages == 0 {
            return Err("batch.max_messages must be at least 1".into());
        }
        for t in &self.topics {
            let at = |m: String| format!("topic {:?}: {m}", t.filter);
            crate::mapping::TopicFilter::parse(&t.filter).map_err(at)?;
            match t.format {
                Format::NgsiLd => {
                    if t.id.is_some() || t.type_name.is_some() || !t.attributes.is_empty() {
                        return Err(at(
                            "ngsi-ld payloads carry their own id, type and attributes; remove id, type and attributes"
                                .into(),
                        ));
                    }
                }
                Format::Json | Format::Csv => {
                    if t.id.is_none() || t.type_name.is_none() {
                        return Err(at(
                            "json and csv topics need an id template and a type".into()
                        ));
                    }
                    if t.attributes.is_empty() {
                        return Err(at("no attributes are mapped".into()));
                    }
                    if t.format == Format::Csv && t.columns.is_empty() {
                        return Err(at("csv topics need their columns".into()));
                    }
                    if t.separator.is_some_and(|c| !c.is_ascii()) {
                        return Err(at("the CSV separator must be one ASCII character".into()));
                    }
                    for (name, a) in &t.attributes {
                        let at = |m: &str| at(format!("attribute {name}: {m}"));
                        let sources = [a.path.is_some(), a.column.is_some(), a.lon.is_some()]
                            .iter()
                            .filter(|x| **x)
                            .count();
                        if sources != 1 {
                            return Err(at("give exactly one of path, column or lon/lat"));
                        }
                        if a.lon.is_some() != a.lat.is_some() {
                            return Err(at("lon and lat go together"));
                        }
                        if t.format == Format::Csv && a.path.is_some() {
                            return Err(at("csv attributes name a column, not a path"));
                        }
                        if t.format == Format::Json && a.column.is_some() {
                            return Err(at("json attributes name a path, not a column"));
                        }
                        if let Some(c) = &a.column {
                            if !t.columns.contains(c) {
                                return Err(at(&format!("column {c:?} is not in columns")));
                            }
                        }
                        if let (Some(from), Some(to)) = (&a.from, &a.unit) {
                            if crate::mapping::convert(from, to, 1.0).is_none() {
                                return Err(at(&format!(
                                    "no conversion from {from} to {to} is known; use scale and offset"
                                )));
                            }
                        } else if a.from.is_some() {
                            return Err(at("from needs unit (the unit to convert to)"));
                        }
                    }
                    if let (Format::Csv, Some(c)) = (t.format, &t.observed_at) {
                        if !t.columns.contains(c) {
                            return Err(at(format!("observed_at column {c:?} is not in columns")));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}
