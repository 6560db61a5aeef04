//! The demo's live sensor feed: generated readings for the demo sensors (air quality, traffic counts, noise, a car
//! park, two buildings' electricity meters), published through an MQTT broker and ingested back as a city's sensors
//! are, so the map moves.
//!
//! The values follow a working day in Helsinki (local time taken as UTC+2, without summer time): traffic peaks at
//! 8:00 and 16:30, NO2, particles and noise follow the traffic, the car park fills towards noon, the buildings draw
//! their base load at night and about three times as much in office hours (less at weekends); a little deterministic
//! noise is added. A meter's energy count is the integral of its power profile since the meter started, so it only
//! grows. The meters send watts and watt-hours, which the mapping converts to the kW and kWh the entities hold (as a
//! city's mapping would for its own meters). The values are illustrative, not measured: the dataset they are written
//! under says so, and so does every value's provenance (`mqtt:urbantwin-demo/...`).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Result};
use chrono::{DateTime, Timelike, Utc};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, MqttOptions};
use serde_json::{json, Value};
use twin_ingest::IngestConfig;
use twin_model::dataset::Access;
use twin_model::Dataset;
use twin_store::Store;

/// The dataset the fed values are written under.
pub const FEED_DATASET: &str = "urn:ngsi-ld:Dataset:urbantwin-demo-feed";
/// The topic prefix of the feed.
const PREFIX: &str = "urbantwin-demo";

/// A demo sensor: its kind (topic level), the id suffix of its entity and its scale.
struct Sensor {
    kind: &'static str,
    id: &'static str,
    /// Traffic: vehicles per hour at the peak; air: how much of the traffic's NO2 the station sees; parking: spots;
    /// energy: kW drawn in office hours on a working day.
    scale: f64,
}

const SENSORS: &[Sensor] = &[
    Sensor {
        kind: "air",
        id: "kallio",
        scale: 0.8,
    },
    Sensor {
        kind: "air",
        id: "mannerheimintie",
        scale: 1.5,
    },
    Sensor {
        kind: "traffic",
        id: "mannerheimintie-n",
        scale: 1400.0,
    },
    Sensor {
        kind: "traffic",
        id: "esplanadi-e",
        scale: 900.0,
    },
    Sensor {
        kind: "noise",
        id: "senate-square",
        scale: 1.0,
    },
    Sensor {
        kind: "parking",
        id: "kluuvi",
        scale: 830.0,
    },
    Sensor {
        kind: "energy",
        id: "city-hall",
        scale: 420.0,
    },
    Sensor {
        kind: "energy",
        id: "central-library",
        scale: 330.0,
    },
];

/// How the feed's messages become entity updates (the same mapping a city writes for its own sensors).
pub fn ingest_config(broker: &str) -> Result<IngestConfig> {
    // a session of this process's own: a demo that was down has no backlog worth replaying
    let pid = std::process::id();
    IngestConfig::parse(&format!(
        r#"[broker]
url = "{broker}"
client_id = "urbantwin-demo-hub-{pid}"
session_expiry_s = 3600

[[topic]]
filter = "{PREFIX}/air/+"
format = "json"
dataset = "{FEED_DATASET}"
id = "urn:ngsi-ld:AirQualityObserved:{{1}}"
type = "AirQualityObserved"
observed_at = "$.time"
[topic.attributes]
NO2 = {{ path = "$.no2", unit = "GQ" }}
pm25 = {{ path = "$.pm25", unit = "GQ" }}
pm10 = {{ path = "$.pm10", unit = "GQ" }}

[[topic]]
filter = "{PREFIX}/traffic/+"
format = "json"
dataset = "{FEED_DATASET}"
id = "urn:ngsi-ld:TrafficFlowObserved:{{1}}"
type = "TrafficFlowObserved"
observed_at = "$.time"
[topic.attributes]
intensity = {{ path = "$.vehiclesPerHour", unit = "E50" }}
averageVehicleSpeed = {{ path = "$.speedKmh", unit = "KMH" }}

[[topic]]
filter = "{PREFIX}/noise/+"
format = "json"
dataset = "{FEED_DATASET}"
id = "urn:ngsi-ld:NoiseLevelObserved:{{1}}"
type = "NoiseLevelObserved"
observed_at = "$.time"
[topic.attributes]
LAeq = {{ path = "$.laeq", unit = "2N" }}

[[topic]]
filter = "{PREFIX}/parking/+"
format = "json"
dataset = "{FEED_DATASET}"
id = "urn:ngsi-ld:OffStreetParking:{{1}}"
type = "OffStreetParking"
observed_at = "$.time"
[topic.attributes]
availableSpotNumber = {{ path = "$.free" }}

[[topic]]
filter = "{PREFIX}/energy/+"
format = "json"
dataset = "{FEED_DATASET}"
id = "urn:ngsi-ld:ThreePhaseAcMeasurement:{{1}}"
type = "ThreePhaseAcMeasurement"
observed_at = "$.time"
[topic.attributes]
totalActivePower = {{ path = "$.powerW", from = "WTT", unit = "KWT" }}
totalActiveEnergyImport = {{ path = "$.energyWh", from = "WHR", unit = "KWH" }}
"#
    ))
    .map_err(|e| anyhow!("the demo feed's mapping: {e}"))
}

/// Traffic relative to its peak (0.2 at night, about 1 at the morning peak) at local hour `h`.
fn traffic_factor(h: f64) -> f64 {
    let bump = |centre: f64, width: f64| (-((h - centre) / width).powi(2)).exp();
    (0.15 + 0.85 * bump(8.0, 1.3) + 0.75 * bump(16.5, 1.8) + 0.35 * bump(12.5, 3.0)).min(1.2)
}

/// When the demo meters started counting (local midnight, 1 January 2026, UTC+2).
const METER_START: i64 = 1_767_218_400;

/// Seconds to add to UTC for the demo's local time.
const LOCAL_OFFSET: i64 = 2 * 3600;

/// A building's electricity demand relative to its office-hours load at local hour `h` (0–24) of a working day or a
/// weekend day: a base load of 0.3 (ventilation, servers, lighting kept on), and occupancy from about 7:30 to 17:30.
fn building_factor(h: f64, weekend: bool) -> f64 {
    let on = 1.0 / (1.0 + (-(h - 7.5) * 2.0).exp());
    let off = 1.0 / (1.0 + ((h - 17.5) * 2.0).exp());
    0.3 + 0.7 * on * off * if weekend { 0.3 } else { 1.0 }
}

/// The integral of `building_factor` over local hours `0..h` (in factor-hours), by the midpoint rule on 5-minute
/// steps (and the part-step at the end).
fn building_hours(h: f64, weekend: bool) -> f64 {
    const STEP: f64 = 1.0 / 12.0;
    let whole = (h / STEP).floor();
    let mut sum = 0.0;
    for i in 0..whole as usize {
        sum += building_factor((i as f64 + 0.5) * STEP, weekend) * STEP;
    }
    let rest = h - whole * STEP;
    sum + building_factor(whole * STEP + rest / 2.0, weekend) * rest
}

/// Whether a local day (days since 1970-01-01, local) is a Saturday or a Sunday (1970-01-01 was a Thursday).
fn is_weekend(day: i64) -> bool {
    matches!((day + 3).rem_euclid(7), 5 | 6)
}

/// A meter's power (W, without noise) and its energy count (Wh since `METER_START`) at `t`, for a building that
/// draws `scale` kW in office hours.
fn meter(scale: f64, t: DateTime<Utc>) -> (f64, f64) {
    let local = (t.timestamp() + LOCAL_OFFSET).max(METER_START + LOCAL_OFFSET);
    let day = local.div_euclid(86_400);
    let h = local.rem_euclid(86_400) as f64 / 3600.0;
    let first = (METER_START + LOCAL_OFFSET).div_euclid(86_400);
    let (working, weekend) = (building_hours(24.0, false), building_hours(24.0, true));
    let days: f64 = (first..day)
        .map(|d| if is_weekend(d) { weekend } else { working })
        .sum();
    let hours = days + building_hours(h, is_weekend(day));
    let kw = scale * building_factor(h, is_weekend(day));
    (kw * 1000.0, scale * hours * 1000.0)
}

/// A deterministic number in [-1, 1] for a sensor and a time step.
fn jitter(id: &str, step: i64) -> f64 {
    let mut x = step as u64 ^ 0x9E37_79B9_7F4A_7C15;
    for b in id.bytes() {
        x = (x ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3);
    }
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    (x % 2001) as f64 / 1000.0 - 1.0
}

/// The reading a sensor sends at `t`.
fn reading(s: &Sensor, t: DateTime<Utc>) -> Value {
    let local = (t.hour() as f64 + t.minute() as f64 / 60.0 + 2.0) % 24.0;
    let f = traffic_factor(local);
    let j = jitter(s.id, t.timestamp() / 5);
    let round1 = |x: f64| (x * 10.0).round() / 10.0;
    let time = t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    match s.kind {
        "air" => json!({
            "time": time,
            "no2": round1((6.0 + 32.0 * f * s.scale) * (1.0 + 0.08 * j)),
            "pm25": round1((4.0 + 5.0 * f * s.scale) * (1.0 + 0.05 * j)),
            "pm10": round1((9.0 + 11.0 * f * s.scale) * (1.0 + 0.06 * j)),
        }),
        "traffic" => json!({
            "time": time,
            "vehiclesPerHour": (s.scale * f * (1.0 + 0.07 * j)).round(),
            "speedKmh": round1((48.0 - 22.0 * f + 2.0 * j).max(8.0)),
        }),
        "noise" => json!({
            "time": time,
            "laeq": round1(58.0 + 8.0 * (0.1 + f).log10() + 1.5 * j),
        }),
        "energy" => {
            let (w, wh) = meter(s.scale, t);
            json!({
                "time": time,
                "powerW": (w * (1.0 + 0.03 * j)).round(),
                "energyWh": wh.round(),
            })
        }
        _ => {
            let occupancy = 0.15 + 0.75 * (-((local - 12.5) / 3.5).powi(2)).exp();
            json!({
                "time": time,
                "free": (s.scale * (1.0 - occupancy) * (1.0 + 0.03 * j)).round().clamp(0.0, s.scale),
            })
        }
    }
}

/// Declares the feed's dataset (generated values) in the store.
pub async fn declare_dataset(store: &Arc<dyn Store>) -> Result<()> {
    store
        .put_dataset(Dataset {
            id: FEED_DATASET.into(),
            title: "urbantwin demo sensor feed, central Helsinki (generated values, replayed through MQTT)".into(),
            description: Some(
                "Readings generated for the demo sensors every few seconds and ingested through an MQTT broker; they \
                 follow a typical working day but are not measured"
                    .into(),
            ),
            owner: "urbantwin".into(),
            licence: "CC0-1.0".into(),
            read: Access::Public,
            write: Access::Private,
            created_at: Some(Utc::now()),
            attributes: Vec::new(),
            usage_policy: None,
        catalog: twin_model::dataset::CatalogInfo {
                keywords: vec!["Helsinki".into(), "sensors".into(), "real time".into(), "MQTT".into(), "energy".into()],
                themes: vec!["ENVI".into(), "TRAN".into(), "ENER".into()],
                update_frequency: Some("UPDATE_CONT".into()),
                ..Default::default()
            },
        })
        .await
        .map_err(|e| anyhow!("{e}"))
}

/// Publishes a reading of every demo sensor to `broker` every `every`, until the task is dropped; a broker that is
/// away is waited for.
pub async fn publish_forever(broker: String, every: Duration) {
    let Ok((host, port)) = twin_ingest::mqtt::broker_address(&broker) else {
        return;
    };
    let id = format!("urbantwin-demo-feed-{}", std::process::id());
    let (client, mut eventloop) = AsyncClient::new(MqttOptions::new(id, host, port), 256);
    tokio::spawn(async move {
        loop {
            if eventloop.poll().await.is_err() {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    });
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let now = Utc::now();
        for s in SENSORS {
            let topic = format!("{PREFIX}/{}/{}", s.kind, s.id);
            let _ = client
                .publish(topic, QoS::AtLeastOnce, false, reading(s, now).to_string())
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_working_day_peaks_in_the_morning_and_evening() {
        assert!(traffic_factor(8.0) > 0.9 && traffic_factor(3.0) < 0.2);
        assert!(traffic_factor(16.5) > traffic_factor(12.0));
        assert!((0..240).all(|i| (0.1..=1.2).contains(&traffic_factor(i as f64 / 10.0))));
        assert!((0..1000).all(|i| (-1.0..=1.0).contains(&jitter("kallio", i))));
        // 06:00 UTC is 08:00 in Helsinki: rush hour
        let rush = Utc.with_ymd_and_hms(2026, 11, 26, 6, 0, 0).unwrap();
        let night = Utc.with_ymd_and_hms(2026, 11, 26, 1, 0, 0).unwrap();
        let traffic = &SENSORS[2];
        assert!(
            reading(traffic, rush)["vehiclesPerHour"].as_f64().unwrap()
                > 3.0 * reading(traffic, night)["vehiclesPerHour"].as_f64().unwrap()
        );
        let air = &SENSORS[1];
        assert!(reading(air, rush)["no2"].as_f64() > reading(air, night)["no2"].as_f64());
        let park = reading(&SENSORS[5], rush);
        assert!((0.0..=830.0).contains(&park["free"].as_f64().unwrap()));
    }

    #[test]
    fn a_meter_counts_what_its_building_draws() {
        let at = |d: u32, h: u32, m: u32| Utc.with_ymd_and_hms(2026, 11, d, h, m, 0).unwrap();
        // Thursday 26 November 2026: 09:00 UTC is 11:00 in Helsinki
        let (day_w, _) = meter(400.0, at(26, 9, 0));
        let (night_w, _) = meter(400.0, at(26, 1, 0));
        assert!(
            day_w > 2.5 * night_w && day_w <= 400_000.0,
            "{day_w} {night_w}"
        );
        // Saturday 28 November: the offices are mostly empty
        let (sat_w, _) = meter(400.0, at(28, 9, 0));
        assert!(sat_w < 0.6 * day_w && sat_w > night_w, "{sat_w}");
        // the count only grows, and by what the power says: over an hour at night, about 0.3 × 400 kWh
        let mut last = 0.0;
        for i in 0..(3 * 24 * 12) {
            let t = at(25, 0, 0) + chrono::Duration::minutes(5 * i);
            let (_, wh) = meter(400.0, t);
            assert!(wh > last, "{t}: {wh} after {last}");
            last = wh;
        }
        let (_, a) = meter(400.0, at(26, 0, 0));
        let (_, b) = meter(400.0, at(26, 1, 0));
        assert!((b - a - 120_000.0).abs() < 2_000.0, "{}", b - a);
        // a day's count: base load all day and office hours on top
        let (_, d0) = meter(400.0, at(25, 22, 0));
        let (_, d1) = meter(400.0, at(26, 22, 0));
        let expected = 400.0 * building_hours(24.0, false) * 1000.0;
        assert!((d1 - d0 - expected).abs() < 1.0, "{} {expected}", d1 - d0);
        assert!(is_weekend(20_421) && !is_weekend(20_419)); // 2025-11-29 was a Saturday, 2025-11-27 a Thursday
                                                            // a reading converts to the entity's units through the mapping: W and Wh in the payload
        let r = reading(&SENSORS[6], at(26, 9, 0));
        assert!(r["powerW"].as_f64().unwrap() > 100_000.0 && r["energyWh"].as_f64().unwrap() > 1e8);
    }

    #[test]
    fn the_mapping_names_every_demo_sensor() {
        let cfg = ingest_config("mqtt://127.0.0.1:1883").unwrap();
        for s in SENSORS {
            let topic = format!("{PREFIX}/{}/{}", s.kind, s.id);
            let route = cfg
                .topics
                .iter()
                .find(|t| {
                    twin_ingest::mapping::TopicFilter::parse(&t.filter)
                        .unwrap()
                        .matches(&topic)
                        .is_some()
                })
                .unwrap_or_else(|| panic!("no topic for {topic}"));
            // every field the reading has is mapped
            let r = reading(s, Utc::now());
            let paths: Vec<String> = route
                .attributes
                .values()
                .filter_map(|a| a.path.clone())
                .collect();
            for k in r.as_object().unwrap().keys().filter(|k| *k != "time") {
                assert!(
                    paths.contains(&format!("$.{k}")),
                    "{topic}: {k} is not mapped"
                );
            }
        }
        // the demo's own entities are the ones fed
        let demo: Vec<Value> = serde_json::from_str(crate::demo::DEMO_ENTITIES).unwrap();
        for s in SENSORS {
            assert!(
                demo.iter()
                    .any(|e| e["id"].as_str().unwrap().ends_with(&format!(":{}", s.id))),
                "{}",
                s.id
            );
        }
    }
}
