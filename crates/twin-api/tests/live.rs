//! `/api/events` against the real server: writes through the API and by another process on the same file reach a
//! connected client as server-sent events, filtered by type and id; the stream ends when the server stops.

mod common;

use std::time::Duration;

use common::Server;
use serde_json::{json, Value};

/// An open event stream, read event by event.
struct Events {
    resp: reqwest::Response,
    buf: String,
}

impl Events {
    async fn open(s: &Server, query: &str) -> Events {
        let url = format!(
            "{}/api/events{query}",
            s.base.trim_end_matches("/ngsi-ld/v1")
        );
        let resp = s.http.get(url).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        let mut ev = Events {
            resp,
            buf: String::new(),
        };
        let (name, _, _) = ev.next().await.expect("the ready event");
        assert_eq!(name, "ready");
        ev
    }

    /// The next event (name, id, data), skipping keep-alive comments; None when the stream ends. A test fails rather
    /// than hangs when nothing comes for 20 s.
    async fn next(&mut self) -> Option<(String, String, Value)> {
        // keep-alive comments must not extend the wait
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut name, mut id, mut data) = (String::new(), String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if name.is_empty() && data.is_empty() {
                    continue;
                }
                return Some((name, id, serde_json::from_str(&data).unwrap_or(Value::Null)));
            }
            let chunk = tokio::time::timeout_at(deadline, self.resp.chunk())
                .await
                .expect("an event within 20 s")
                .ok()??;
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

fn sensor(id: &str, no2: f64) -> Value {
    json!({"id": id, "type": "AirQualityObserved",
        "NO2": {"type": "Property", "value": no2, "observedAt": "2026-11-26T08:00:00Z"},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [24.94, 60.17]}}})
}

#[tokio::test]
async fn writes_reach_connected_clients() {
    let s = Server::start().await;
    let id = "urn:ngsi-ld:AirQualityObserved:live-1";
    assert_eq!(s.post("/entities", &sensor(id, 20.0)).await.status(), 201);
    let mut ev = Events::open(&s, "?type=AirQualityObserved").await;

    // a write of another type first, then the sensor's new value: only the sensor's arrives
    let other = json!({"id": "urn:ngsi-ld:Building:live", "type": "Building", "height": {"type": "Property", "value": 9}});
    assert_eq!(s.post("/entities", &other).await.status(), 201);
    let r = s
        .patch(
            &format!("/entities/{id}/attrs"),
            &json!({"NO2": {"type": "Property", "value": 31.5, "observedAt": "2026-11-26T08:05:00Z"}}),
        )
        .await;
    assert_eq!(r.status(), 204);
    let (name, event_id, data) = ev.next().await.expect("an event");
    assert_eq!(name, "entity");
    assert_eq!(data["id"], id, "{data}");
    assert_eq!(data["type"], "AirQualityObserved");
    // concise: the value with its observedAt
    assert_eq!(data["NO2"]["value"], 31.5, "{data}");
    assert_eq!(data["NO2"]["observedAt"], "2026-11-26T08:05:00.000Z");
    assert!(event_id.parse::<i64>().unwrap() > 0);

    // another process writes the same file: its value reaches the client too
    let other_process = common::open_store(&s.db_path()).await;
    let mut e = s.store.get(id).await.unwrap().unwrap();
    let no2 = format!("{}NO2", twin_model::entity::iri::DEFAULT_CONTEXT);
    e.attrs.get_mut(&no2).unwrap()[0].value = json!(44.0);
    e.modified_at = Some(chrono::Utc::now());
    other_process
        .write(id, twin_store::store_as_is(e))
        .await
        .unwrap();
    let (_, _, data) = ev.next().await.expect("the other process's write");
    assert_eq!(data["NO2"]["value"], 44.0, "{data}");

    // keyValues, an id filter and attrs
    let mut kv = Events::open(&s, &format!("?id={id}&format=keyValues&attrs=NO2")).await;
    s.patch(&format!("/entities/{id}/attrs"), &json!({"NO2": 12.0}))
        .await;
    let (_, _, data) = kv.next().await.unwrap();
    assert_eq!(
        data,
        json!({"id": id, "type": "AirQualityObserved", "NO2": 12.0})
    );

    // q: simulated results stay out of a map's sensor stream
    let mut real = Events::open(&s, "?type=AirQualityObserved&q=!simulated").await;
    let model = "urn:ngsi-ld:AirQualityObserved:model-1";
    let mut simulated = sensor(model, 50.0);
    simulated["simulated"] = json!({"type": "Property", "value": true});
    assert_eq!(s.post("/entities", &simulated).await.status(), 201);
    s.patch(&format!("/entities/{id}/attrs"), &json!({"NO2": 13.0}))
        .await;
    let (_, _, data) = real.next().await.unwrap();
    assert_eq!(
        data["id"], id,
        "the simulated entity is filtered out: {data}"
    );
    let (_, _, data) = kv.next().await.unwrap();
    assert_eq!(data["NO2"], 13.0);

    // a bad format or query is a 400 with ProblemDetails
    let url = format!(
        "{}/api/events?format=xml",
        s.base.trim_end_matches("/ngsi-ld/v1")
    );
    common::assert_problem(s.http.get(url).send().await.unwrap(), 400, "BadRequestData").await;
    let url = format!(
        "{}/api/events?q=NO2%3D%3D",
        s.base.trim_end_matches("/ngsi-ld/v1")
    );
    common::assert_problem(s.http.get(url).send().await.unwrap(), 400, "BadRequestData").await;

    // stopping the server ends the streams (a graceful shutdown does not wait for them)
    let stopped = tokio::time::timeout(Duration::from_secs(10), s.stop()).await;
    assert!(stopped.is_ok(), "the server stopped with streams open");
    // the first stream still holds the later writes (their type matches, it has no q), then ends
    let mut rest = Vec::new();
    while let Some((_, _, data)) = ev.next().await {
        rest.push((
            data["id"].as_str().unwrap_or("").to_string(),
            data["NO2"].clone(),
        ));
    }
    assert_eq!(
        rest,
        [
            (id.to_string(), json!(12.0)),
            (
                model.to_string(),
                json!({"value": 50.0, "observedAt": "2026-11-26T08:00:00.000Z"})
            ),
            (id.to_string(), json!(13.0)),
        ]
    );
}
