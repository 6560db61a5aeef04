//! `/api/retention` over real HTTP: policies created, read (compacted), replaced and deleted; validation errors as
//! ProblemDetails; and the server's background task applying a policy while the NGSI-LD aggregation of the
//! downsampled history still answers as before.

mod common;

use std::time::Duration;

use common::{assert_problem, json_call, Server};
use reqwest::Method;
use serde_json::{json, Value};
use twin_api::ApiConfig;

const DEFAULT: &str = "https://uri.etsi.org/ngsi-ld/default-context/";

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

async fn put(s: &Server, id: &str, body: &Value) -> reqwest::Response {
    s.admin_client()
        .await
        .put(format!("{}/api/retention/{id}", s.root()))
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn policies_are_created_read_replaced_deleted_and_checked() {
    let s = Server::start().await;
    let root = s.root();
    let admin = s.admin_client().await;
    let (list, _) = json_call(
        &s.http,
        Method::GET,
        &format!("{root}/api/retention"),
        None,
        200,
    )
    .await;
    assert_eq!(list, json!([]));
    let air = json!({"entityType": "AirQualityObserved", "attribute": "NO2", "keepRaw": "P30D",
        "levels": [{"period": "PT1H", "keep": "P5Y"}, {"period": "P1D"}]});
    let (_, loc) = json_call(
        &admin,
        Method::PUT,
        &format!("{root}/api/retention/air"),
        Some(&air),
        201,
    )
    .await;
    assert_eq!(loc.as_deref(), Some("/api/retention/air"));
    let (got, _) = json_call(
        &s.http,
        Method::GET,
        &format!("{root}/api/retention/air"),
        None,
        200,
    )
    .await;
    let mut expected = air.clone();
    expected["id"] = json!("air");
    assert_eq!(got, expected);
    // stored expanded, as the history names types and attributes
    let stored = s.store.get_retention_policy("air").await.unwrap().unwrap();
    assert_eq!(
        stored.entity_type,
        Some(format!("{DEFAULT}AirQualityObserved"))
    );
    assert_eq!(stored.attribute, Some(format!("{DEFAULT}NO2")));
    // replaced
    let mut longer = air.clone();
    longer["keepRaw"] = json!("P60D");
    longer["id"] = json!("air");
    json_call(
        &admin,
        Method::PUT,
        &format!("{root}/api/retention/air"),
        Some(&longer),
        204,
    )
    .await;
    let (list, _) = json_call(
        &s.http,
        Method::GET,
        &format!("{root}/api/retention"),
        None,
        200,
    )
    .await;
    assert_eq!(list[0]["keepRaw"], "P60D");

    for (id, body, needle) in [
        ("p", json!({"keepRaw": "30 days"}), "keepRaw"),
        (
            "p",
            json!({"keepRaw": "P30D", "levels": [{"period": "PT7M"}]}),
            "divide a day",
        ),
        (
            "p",
            json!({"keepRaw": "P30D", "levels": [{"period": "PT1H"}, {"period": "P1D"}]}),
            "only the last level",
        ),
        (
            "p",
            json!({"keepRaw": "P30D", "levels": [{"period": "PT1H", "keep": "P1D"}]}),
            "not longer",
        ),
        ("p", json!({"keepraw": "P30D"}), "unknown field"),
        ("p", json!({"levels": []}), "keepRaw"),
        ("p", json!({"id": "q", "keepRaw": "P30D"}), "differs"),
        ("p", json!(["P30D"]), "JSON object"),
        (
            "p",
            json!({"keepRaw": "P30D", "datasetId": ""}),
            "datasetId is empty",
        ),
    ] {
        let p = assert_problem(put(&s, id, &body).await, 400, "BadRequestData").await;
        let detail = p["detail"].as_str().unwrap();
        assert!(detail.contains(needle), "{body}: {detail}");
    }
    // /api/retention/status is the report, not a policy
    assert_eq!(
        put(&s, "status", &json!({"keepRaw": "P30D"}))
            .await
            .status(),
        405
    );
    let r = s
        .admin_client()
        .await
        .put(format!("{root}/api/retention/p"))
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_problem(r, 400, "InvalidRequest").await;

    let (st, _) = json_call(
        &s.http,
        Method::GET,
        &format!("{root}/api/retention/status"),
        None,
        200,
    )
    .await;
    assert_eq!(st["lastRun"], Value::Null);
    json_call(
        &admin,
        Method::DELETE,
        &format!("{root}/api/retention/air"),
        None,
        204,
    )
    .await;
    let r = s
        .admin_client()
        .await
        .delete(format!("{root}/api/retention/air"))
        .send()
        .await
        .unwrap();
    assert_problem(r, 404, "ResourceNotFound").await;
    let r = s
        .http
        .get(format!("{root}/api/retention/air"))
        .send()
        .await
        .unwrap();
    assert_problem(r, 404, "ResourceNotFound").await;
    s.stop().await;
}

fn close(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| close(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| close(v, w)))
        }
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0)
        }
        _ => a == b,
    }
}

#[tokio::test]
async fn the_server_downsamples_and_aggregations_still_answer() {
    let config = ApiConfig {
        retention_interval: Some(Duration::from_millis(200)),
        ..ApiConfig::default()
    };
    let s = Server::start_with(config, None).await;
    let root = s.root();
    let admin = s.admin_client().await;
    let id = "urn:ngsi-ld:AirQualityObserved:old";
    // two days of readings every 10 minutes, years ago
    let instances: Vec<Value> = (0..288)
        .map(|i| {
            let t = chrono::DateTime::parse_from_rfc3339("2020-03-01T00:00:00Z").unwrap()
                + chrono::Duration::minutes(10 * i);
            json!({"type": "Property", "value": (i * 37 % 101) as f64,
                "observedAt": t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)})
        })
        .collect();
    let r = s
        .post(
            "/temporal/entities",
            &json!({"id": id, "type": "AirQualityObserved", "NO2": instances}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let daily = format!(
        "/temporal/entities/{id}?attrs=NO2&aggrMethods=totalCount,sum,avg,min,max,stddev&aggrPeriodDuration=P1D&timerel=between&timeAt={}&endTimeAt={}",
        enc("2020-03-01T00:00:00Z"),
        enc("2020-03-03T00:00:00Z")
    );
    let before = s.get_json(&daily).await;
    assert_eq!(before["NO2"]["totalCount"][0][0], 144);

    let policy = json!({"entityType": "AirQualityObserved", "keepRaw": "P30D", "levels": [{"period": "PT1H"}]});
    json_call(
        &admin,
        Method::PUT,
        &format!("{root}/api/retention/air"),
        Some(&policy),
        201,
    )
    .await;
    // the background task runs every 200 ms
    let mut status = Value::Null;
    for _ in 0..100 {
        let (st, _) = json_call(
            &s.http,
            Method::GET,
            &format!("{root}/api/retention/status"),
            None,
            200,
        )
        .await;
        if st["lastRun"]["policies"][0]["rawDeleted"]
            .as_u64()
            .unwrap_or(0)
            > 0
        {
            status = st;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let run = &status["lastRun"]["policies"][0];
    assert_eq!(run["policy"], "air", "{status}");
    assert_eq!(run["rawDeleted"], 288);
    assert_eq!(run["rawAggregated"], 288);
    assert_eq!(status["notifierNode"], true);

    // the raw instances are gone; the daily aggregation answers the same from the hourly buckets
    let raw = s
        .get_json(&format!("/temporal/entities/{id}?attrs=NO2"))
        .await;
    assert!(
        raw.get("NO2")
            .is_none_or(|v| v.as_array().is_some_and(|a| a.is_empty())),
        "{raw}"
    );
    let after = s.get_json(&daily).await;
    assert!(close(&before, &after), "before {before}\nafter {after}");
    // half-hours cannot be made of hours
    let halves = daily.replace("P1D", "PT30M");
    let p = assert_problem(s.get(&halves).await, 400, "BadRequestData").await;
    assert!(p["detail"].as_str().unwrap().contains("PT1H"), "{p}");
    s.stop().await;
}
