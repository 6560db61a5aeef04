//! Temporal API over real HTTP: histories recorded by normal updates and by `/temporal/entities`, time relations,
//! lastN, the simplified and aggregated representations, and deletions.

mod common;

use common::{assert_problem, Server};
use serde_json::{json, Value};

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[tokio::test]
async fn updates_through_the_entity_api_are_recorded() {
    let s = Server::start().await;
    let id = "urn:ngsi-ld:TrafficFlowObserved:t1";
    let r = s
        .post(
            "/entities",
            &json!({"id": id, "type": "TrafficFlowObserved",
        "intensity": {"type": "Property", "value": 100, "observedAt": "2024-01-01T00:00:00Z"}}),
        )
        .await;
    assert_eq!(r.status(), 201);
    for (h, v) in [(1, 110), (2, 120), (3, 130)] {
        let r = s.patch(&format!("/entities/{id}/attrs"), &json!({"intensity": {"type": "Property", "value": v, "observedAt": format!("2024-01-01T0{h}:00:00Z")}})).await;
        assert_eq!(r.status(), 204);
    }
    let t = s.get_json(&format!("/temporal/entities/{id}")).await;
    let inst = t["intensity"].as_array().unwrap();
    assert_eq!(inst.len(), 4);
    assert_eq!(inst[0]["value"], 100);
    assert_eq!(inst[3]["value"], 130);
    assert!(inst[0]["instanceId"]
        .as_str()
        .unwrap()
        .starts_with("urn:ngsi-ld:attribute:instance:"));

    let t = s
        .get_json(&format!(
            "/temporal/entities/{id}?timerel=after&timeAt={}",
            enc("2024-01-01T02:00:00Z")
        ))
        .await;
    assert_eq!(t["intensity"].as_array().unwrap().len(), 2);
    let t = s
        .get_json(&format!(
            "/temporal/entities/{id}?timerel=before&timeAt={}",
            enc("2024-01-01T02:00:00Z")
        ))
        .await;
    assert_eq!(t["intensity"].as_array().unwrap().len(), 2);
    let t = s
        .get_json(&format!(
            "/temporal/entities/{id}?timerel=between&timeAt={}&endTimeAt={}",
            enc("2024-01-01T01:00:00Z"),
            enc("2024-01-01T03:00:00Z")
        ))
        .await;
    assert_eq!(t["intensity"].as_array().unwrap().len(), 2);
    let t = s
        .get_json(&format!("/temporal/entities/{id}?lastN=1"))
        .await;
    assert_eq!(t["intensity"][0]["value"], 130);
    let t = s
        .get_json(&format!("/temporal/entities/{id}?options=temporalValues"))
        .await;
    assert_eq!(
        t["intensity"]["values"][1],
        json!([110, "2024-01-01T01:00:00.000Z"])
    );

    let q = s
        .get_json("/temporal/entities?type=TrafficFlowObserved&attrs=intensity&lastN=2")
        .await;
    assert_eq!(q.as_array().unwrap().len(), 1);
    assert_eq!(q[0]["intensity"].as_array().unwrap().len(), 2);

    assert_problem(
        s.get(&format!(
            "/temporal/entities/{id}?timerel=between&timeAt=2024-01-01T00:00:00Z"
        ))
        .await,
        400,
        "BadRequestData",
    )
    .await;
    assert_problem(
        s.get(&format!(
            "/temporal/entities/{id}?timerel=during&timeAt=2024-01-01T00:00:00Z"
        ))
        .await,
        400,
        "BadRequestData",
    )
    .await;
    assert_problem(
        s.get(&format!(
            "/temporal/entities/{id}?timerel=after&timeAt=yesterday"
        ))
        .await,
        400,
        "BadRequestData",
    )
    .await;
    assert_problem(
        s.get("/temporal/entities/urn:ngsi-ld:T:none").await,
        404,
        "ResourceNotFound",
    )
    .await;
}

#[tokio::test]
async fn temporal_create_append_aggregate_and_delete() {
    let s = Server::start().await;
    let id = "urn:ngsi-ld:AirQualityObserved:a1";
    let instances: Vec<Value> = (0..48)
        .map(|h| json!({"type": "Property", "value": (h % 24) as f64, "observedAt": format!("2024-03-{:02}T{:02}:00:00Z", 1 + h / 24, h % 24)}))
        .collect();
    let r = s
        .post(
            "/temporal/entities",
            &json!({"id": id, "type": "AirQualityObserved", "NO2": instances}),
        )
        .await;
    assert_eq!(r.status(), 201);
    // a second post appends
    let r = s.post("/temporal/entities", &json!({"id": id, "type": "AirQualityObserved", "NO2": [{"type": "Property", "value": 100.0, "observedAt": "2024-03-03T00:00:00Z"}]})).await;
    assert_eq!(r.status(), 204);
    let r = s.post(&format!("/temporal/entities/{id}/attrs"), &json!({"pm10": [{"type": "Property", "value": 5, "observedAt": "2024-03-01T00:00:00Z"}]})).await;
    assert_eq!(r.status(), 204);
    assert_problem(
        s.post(
            "/temporal/entities/urn:x:none/attrs",
            &json!({"a": [{"type": "Property", "value": 1}]}),
        )
        .await,
        404,
        "ResourceNotFound",
    )
    .await;

    // aggregation per day: mean of 0..23 is 11.5, sum 276, sample stddev of 0..23 is sqrt(50)
    let t = s
        .get_json(&format!(
            "/temporal/entities/{id}?attrs=NO2&aggrMethods=totalCount,sum,avg,min,max,stddev,sumsq,distinctCount&aggrPeriodDuration=P1D&timerel=between&timeAt={}&endTimeAt={}",
            enc("2024-03-01T00:00:00Z"),
            enc("2024-03-03T00:00:00Z")
        ))
        .await;
    let no2 = &t["NO2"];
    assert_eq!(
        no2["totalCount"],
        json!([
            [24, "2024-03-01T00:00:00.000Z", "2024-03-02T00:00:00.000Z"],
            [24, "2024-03-02T00:00:00.000Z", "2024-03-03T00:00:00.000Z"]
        ])
    );
    assert_eq!(no2["sum"][0][0], 276.0);
    assert_eq!(no2["avg"][1][0], 11.5);
    assert_eq!(no2["min"][0][0], 0.0);
    assert_eq!(no2["max"][0][0], 23.0);
    assert!((no2["stddev"][0][0].as_f64().unwrap() - 50f64.sqrt()).abs() < 1e-9);
    assert_eq!(
        no2["sumsq"][0][0],
        (0..24).map(|x| (x * x) as f64).sum::<f64>()
    );
    assert_eq!(no2["distinctCount"][0][0], 24);
    // one period over everything
    let t = s
        .get_json(&format!(
            "/temporal/entities/{id}?attrs=NO2&aggrMethods=max,totalCount"
        ))
        .await;
    assert_eq!(t["NO2"]["max"][0][0], 100.0);
    assert_eq!(t["NO2"]["totalCount"][0][0], 49);
    assert_problem(
        s.get(&format!("/temporal/entities/{id}?aggrMethods=median"))
            .await,
        400,
        "BadRequestData",
    )
    .await;
    assert_problem(
        s.get(&format!(
            "/temporal/entities/{id}?aggrMethods=sum&aggrPeriodDuration=P1X"
        ))
        .await,
        400,
        "BadRequestData",
    )
    .await;

    // modify and delete one instance
    let t = s
        .get_json(&format!("/temporal/entities/{id}?attrs=pm10"))
        .await;
    let inst = t["pm10"][0]["instanceId"].as_str().unwrap().to_string();
    let r = s
        .patch(
            &format!("/temporal/entities/{id}/attrs/pm10/{inst}"),
            &json!({"pm10": [{"type": "Property", "value": 6}]}),
        )
        .await;
    assert_eq!(r.status(), 204);
    assert_eq!(
        s.get_json(&format!("/temporal/entities/{id}?attrs=pm10"))
            .await["pm10"][0]["value"],
        6
    );
    assert_eq!(
        s.delete(&format!("/temporal/entities/{id}/attrs/pm10/{inst}"))
            .await
            .status(),
        204
    );
    assert_problem(
        s.delete(&format!("/temporal/entities/{id}/attrs/pm10/{inst}"))
            .await,
        404,
        "ResourceNotFound",
    )
    .await;
    // delete an attribute's history, then the entity's
    assert_eq!(
        s.delete(&format!("/temporal/entities/{id}/attrs/NO2"))
            .await
            .status(),
        204
    );
    assert_eq!(
        s.delete(&format!("/temporal/entities/{id}")).await.status(),
        204
    );
    assert_problem(
        s.get(&format!("/temporal/entities/{id}")).await,
        404,
        "ResourceNotFound",
    )
    .await;

    // temporalEntityOperations/query
    s.post("/temporal/entities", &json!({"id": "urn:x:q", "type": "Q", "v": [{"type": "Property", "value": 1, "observedAt": "2024-01-01T00:00:00Z"}, {"type": "Property", "value": 2, "observedAt": "2024-02-01T00:00:00Z"}]})).await;
    let r = s.post("/temporalEntityOperations/query", &json!({"type": "Query", "entities": [{"type": "Q"}], "temporalQ": {"timerel": "after", "timeAt": "2024-01-15T00:00:00Z"}})).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v[0]["v"].as_array().unwrap().len(), 1);
}
