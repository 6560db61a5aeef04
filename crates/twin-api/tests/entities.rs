//! NGSI-LD entity and attribute operations, batch operations, queries and errors, over real HTTP and real SQLite.

mod common;

use common::{assert_problem, Server, CORE};
use serde_json::{json, Value};

fn vehicle(id: &str, speed: f64) -> Value {
    json!({
        "id": id,
        "type": "Vehicle",
        "speed": {"type": "Property", "value": speed, "unitCode": "KMH", "observedAt": "2024-05-01T10:00:00Z"},
        "brandName": {"type": "Property", "value": "Mercedes"},
        "isParked": {"type": "Relationship", "object": "urn:ngsi-ld:OffStreetParking:Downtown1"},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [24.94, 60.17]}}
    })
}

#[tokio::test]
async fn create_retrieve_delete_and_their_errors() {
    let s = Server::start().await;
    let r = s
        .post("/entities", &vehicle("urn:ngsi-ld:Vehicle:A1", 80.0))
        .await;
    assert_eq!(r.status(), 201);
    assert_eq!(
        r.headers()["location"],
        "/ngsi-ld/v1/entities/urn%3Angsi%2Dld%3AVehicle%3AA1"
    );

    let e = s.get_json("/entities/urn:ngsi-ld:Vehicle:A1").await;
    assert_eq!(e["type"], "Vehicle");
    assert_eq!(e["speed"]["value"], 80.0);
    assert_eq!(e["speed"]["observedAt"], "2024-05-01T10:00:00.000Z");
    assert_eq!(
        e["isParked"]["object"],
        "urn:ngsi-ld:OffStreetParking:Downtown1"
    );

    // the Link header names the context used
    let r = s.get("/entities/urn:ngsi-ld:Vehicle:A1").await;
    assert!(r.headers()["link"].to_str().unwrap().contains(CORE));

    assert_problem(
        s.post("/entities", &vehicle("urn:ngsi-ld:Vehicle:A1", 1.0))
            .await,
        409,
        "AlreadyExists",
    )
    .await;
    assert_problem(
        s.get("/entities/urn:ngsi-ld:Vehicle:none").await,
        404,
        "ResourceNotFound",
    )
    .await;
    assert_problem(s.get("/entities/not-a-uri").await, 400, "BadRequestData").await;
    assert_problem(
        s.post("/entities", &json!({"id": "nope", "type": "T"}))
            .await,
        400,
        "BadRequestData",
    )
    .await;
    assert_problem(
        s.post("/entities", &json!({"id": "urn:x:1"})).await,
        400,
        "BadRequestData",
    )
    .await;
    let bad_geo = json!({"id": "urn:x:geo", "type": "T", "location": {"type": "GeoProperty", "value": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1]]]}}});
    assert_problem(s.post("/entities", &bad_geo).await, 400, "BadRequestData").await;

    // malformed JSON, wrong and missing content types
    let r = s
        .http
        .post(s.url("/entities"))
        .header("Content-Type", "application/json")
        .body("{\"id\": ")
        .send()
        .await
        .unwrap();
    assert_problem(r, 400, "InvalidRequest").await;
    let r = s
        .http
        .post(s.url("/entities"))
        .header("Content-Type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_problem(r, 415, "UnsupportedMediaType").await;
    let r = s
        .http
        .post(s.url("/entities"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_problem(r, 415, "UnsupportedMediaType").await;
    // ld+json without @context, json with @context
    assert_problem(
        s.post_ld("/entities", &json!({"id": "urn:x:2", "type": "T"}))
            .await,
        400,
        "BadRequestData",
    )
    .await;
    assert_problem(
        s.post(
            "/entities",
            &json!({"id": "urn:x:2", "type": "T", "@context": CORE}),
        )
        .await,
        400,
        "BadRequestData",
    )
    .await;
    // unknown parameter, unacceptable Accept
    assert_problem(
        s.get("/entities/urn:ngsi-ld:Vehicle:A1?colour=red").await,
        400,
        "BadRequestData",
    )
    .await;
    let r = s
        .http
        .get(s.url("/entities/urn:ngsi-ld:Vehicle:A1"))
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_problem(r, 406, "NotAcceptable").await;

    // nothing half-written: the failed requests created nothing
    let all = s.get_json("/entities?type=T,Vehicle&count=true").await;
    assert_eq!(all.as_array().unwrap().len(), 1);

    assert_eq!(
        s.delete("/entities/urn:ngsi-ld:Vehicle:A1").await.status(),
        204
    );
    assert_problem(
        s.delete("/entities/urn:ngsi-ld:Vehicle:A1").await,
        404,
        "ResourceNotFound",
    )
    .await;
}

#[tokio::test]
async fn representations_projection_and_geojson() {
    let s = Server::start().await;
    s.post("/entities", &vehicle("urn:ngsi-ld:Vehicle:B1", 50.0))
        .await;
    let kv = s
        .get_json("/entities/urn:ngsi-ld:Vehicle:B1?options=keyValues")
        .await;
    assert_eq!(kv["speed"], 50.0);
    assert_eq!(kv["isParked"], "urn:ngsi-ld:OffStreetParking:Downtown1");
    let concise = s
        .get_json("/entities/urn:ngsi-ld:Vehicle:B1?format=concise")
        .await;
    assert_eq!(concise["brandName"], "Mercedes");
    assert_eq!(
        concise["isParked"],
        json!({"object": "urn:ngsi-ld:OffStreetParking:Downtown1"})
    );
    let sys = s
        .get_json("/entities/urn:ngsi-ld:Vehicle:B1?options=sysAttrs")
        .await;
    assert!(sys["createdAt"].as_str().unwrap().ends_with('Z'));
    assert!(sys["speed"]["modifiedAt"].is_string());
    let picked = s
        .get_json("/entities/urn:ngsi-ld:Vehicle:B1?pick=id,speed")
        .await;
    assert_eq!(
        picked
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>(),
        vec!["id", "speed"]
    );
    let omitted = s
        .get_json("/entities/urn:ngsi-ld:Vehicle:B1?omit=speed,location")
        .await;
    assert!(
        omitted.get("speed").is_none()
            && omitted.get("location").is_none()
            && omitted.get("brandName").is_some()
    );
    let attrs = s
        .get_json("/entities/urn:ngsi-ld:Vehicle:B1?attrs=brandName")
        .await;
    assert!(attrs.get("speed").is_none() && attrs["id"] == "urn:ngsi-ld:Vehicle:B1");

    let r = s
        .http
        .get(s.url("/entities/urn:ngsi-ld:Vehicle:B1"))
        .header("Accept", "application/geo+json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "application/geo+json");
    let f: Value = r.json().await.unwrap();
    assert_eq!(f["type"], "Feature");
    assert_eq!(f["geometry"]["coordinates"], json!([24.94, 60.17]));
    let r = s
        .http
        .get(s.url("/entities?type=Vehicle"))
        .header("Accept", "application/geo+json")
        .send()
        .await
        .unwrap();
    let fc: Value = r.json().await.unwrap();
    assert_eq!(fc["type"], "FeatureCollection");
    assert_eq!(fc["features"].as_array().unwrap().len(), 1);

    let r = s
        .http
        .get(s.url("/entities/urn:ngsi-ld:Vehicle:B1"))
        .header("Accept", "application/ld+json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "application/ld+json");
    let ld: Value = r.json().await.unwrap();
    assert_eq!(ld["@context"], CORE);
}

#[tokio::test]
async fn attribute_operations_and_multi_instances() {
    let s = Server::start().await;
    s.post("/entities", &vehicle("urn:ngsi-ld:Vehicle:C1", 10.0))
        .await;
    let e = "/entities/urn:ngsi-ld:Vehicle:C1";

    // append with noOverwrite: the existing attribute is reported, the new one added
    let r = s.post(&format!("{e}/attrs?options=noOverwrite"), &json!({"speed": {"type": "Property", "value": 99}, "colour": {"type": "Property", "value": "red"}})).await;
    assert_eq!(r.status(), 207);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["notUpdated"][0]["attributeName"], "speed");
    assert_eq!(body["updated"], json!(["colour"]));
    assert_eq!(s.get_json(e).await["speed"]["value"], 10.0);

    // append overwriting, and a second instance with a datasetId
    let r = s.post(&format!("{e}/attrs"), &json!({"speed": [{"type": "Property", "value": 11}, {"type": "Property", "value": 12, "datasetId": "urn:ngsi-ld:Dataset:gps"}]})).await;
    assert_eq!(r.status(), 204);
    let got = s.get_json(e).await;
    assert_eq!(got["speed"].as_array().unwrap().len(), 2);

    // update: only existing attributes
    let r = s.patch(&format!("{e}/attrs"), &json!({"colour": {"type": "Property", "value": "blue"}, "wheels": {"type": "Property", "value": 4}})).await;
    assert_eq!(r.status(), 207);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["notUpdated"][0]["attributeName"], "wheels");
    assert_eq!(s.get_json(e).await["colour"]["value"], "blue");

    // partial update of one attribute keeps its other members
    let r = s
        .patch(
            &format!("{e}/attrs/brandName"),
            &json!({"value": "Volvo", "reliability": {"type": "Property", "value": 0.9}}),
        )
        .await;
    assert_eq!(r.status(), 204);
    let b = &s.get_json(e).await["brandName"];
    assert_eq!(b["value"], "Volvo");
    assert_eq!(b["reliability"]["value"], 0.9);
    assert_problem(
        s.patch(&format!("{e}/attrs/nothing"), &json!({"value": 1}))
            .await,
        404,
        "ResourceNotFound",
    )
    .await;

    // replace one attribute
    let r = s
        .put(
            &format!("{e}/attrs/brandName"),
            &json!({"type": "Property", "value": "Saab"}),
        )
        .await;
    assert_eq!(r.status(), 204);
    assert!(s.get_json(e).await["brandName"]
        .get("reliability")
        .is_none());

    // delete one instance, then the attribute
    assert_eq!(
        s.delete(&format!(
            "{e}/attrs/speed?datasetId=urn:ngsi-ld:Dataset:gps"
        ))
        .await
        .status(),
        204
    );
    assert_eq!(s.get_json(e).await["speed"]["value"], 11);
    assert_problem(
        s.delete(&format!(
            "{e}/attrs/speed?datasetId=urn:ngsi-ld:Dataset:other"
        ))
        .await,
        404,
        "ResourceNotFound",
    )
    .await;
    assert_eq!(
        s.delete(&format!("{e}/attrs/speed?deleteAll=true"))
            .await
            .status(),
        204
    );
    assert!(s.get_json(e).await.get("speed").is_none());

    // merge-patch: nulls delete, objects merge, new attributes are added
    let r = s
        .http
        .patch(s.url(e))
        .header("Content-Type", "application/merge-patch+json")
        .body(
            json!({"colour": "urn:ngsi-ld:null", "brandName": {"value": "Scania"}, "wheels": 6})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let got = s.get_json(e).await;
    assert!(got.get("colour").is_none());
    assert_eq!(got["brandName"]["value"], "Scania");
    assert_eq!(got["wheels"]["value"], 6);

    // replace the whole entity
    let r = s
        .put(
            e,
            &json!({"type": "Vehicle", "speed": {"type": "Property", "value": 1}}),
        )
        .await;
    assert_eq!(r.status(), 204);
    let got = s.get_json(&format!("{e}?options=sysAttrs")).await;
    assert!(got.get("brandName").is_none());
    assert_eq!(got["speed"]["value"], 1);
    assert_problem(
        s.put(e, &json!({"id": "urn:other:1", "type": "Vehicle"}))
            .await,
        400,
        "BadRequestData",
    )
    .await;
    assert_problem(
        s.put(
            "/entities/urn:ngsi-ld:Vehicle:none",
            &json!({"type": "Vehicle"}),
        )
        .await,
        404,
        "ResourceNotFound",
    )
    .await;
}

#[tokio::test]
async fn batch_operations_report_per_entity() {
    let s = Server::start().await;
    let batch = json!([
        vehicle("urn:ngsi-ld:Vehicle:1", 1.0),
        vehicle("urn:ngsi-ld:Vehicle:2", 2.0)
    ]);
    let r = s.post("/entityOperations/create", &batch).await;
    assert_eq!(r.status(), 201);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!(["urn:ngsi-ld:Vehicle:1", "urn:ngsi-ld:Vehicle:2"])
    );

    // create again with one new and one invalid: 207 with per-entity errors, the good one is written
    let batch = json!([vehicle("urn:ngsi-ld:Vehicle:1", 1.0), vehicle("urn:ngsi-ld:Vehicle:3", 3.0), {"id": "bad id", "type": "Vehicle"}]);
    let r = s.post("/entityOperations/create", &batch).await;
    assert_eq!(r.status(), 207);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["success"], json!(["urn:ngsi-ld:Vehicle:3"]));
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2);
    assert!(errors
        .iter()
        .any(|e| e["entityId"] == "urn:ngsi-ld:Vehicle:1"
            && e["error"]["type"] == "https://uri.etsi.org/ngsi-ld/errors/AlreadyExists"));

    // upsert: replace by default, update with options=update
    let r = s.post("/entityOperations/upsert", &json!([{"id": "urn:ngsi-ld:Vehicle:1", "type": "Vehicle", "speed": 100}, vehicle("urn:ngsi-ld:Vehicle:4", 4.0)])).await;
    assert_eq!(r.status(), 201, "one entity was created");
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!(["urn:ngsi-ld:Vehicle:4"])
    );
    let v1 = s.get_json("/entities/urn:ngsi-ld:Vehicle:1").await;
    assert_eq!(v1["speed"]["value"], 100);
    assert!(v1.get("brandName").is_none(), "replaced");
    let r = s
        .post(
            "/entityOperations/upsert?options=update",
            &json!([{"id": "urn:ngsi-ld:Vehicle:1", "type": "Vehicle", "colour": "red"}]),
        )
        .await;
    assert_eq!(r.status(), 204);
    let v1 = s.get_json("/entities/urn:ngsi-ld:Vehicle:1").await;
    assert_eq!(
        (v1["speed"]["value"].clone(), v1["colour"]["value"].clone()),
        (json!(100), json!("red"))
    );

    // update and merge
    let r = s
        .post(
            "/entityOperations/update?options=noOverwrite",
            &json!([{"id": "urn:ngsi-ld:Vehicle:2", "speed": 5, "colour": "green"}]),
        )
        .await;
    assert_eq!(r.status(), 204);
    let v2 = s.get_json("/entities/urn:ngsi-ld:Vehicle:2").await;
    assert_eq!(
        (v2["speed"]["value"].clone(), v2["colour"]["value"].clone()),
        (json!(2.0), json!("green"))
    );
    let r = s.post("/entityOperations/merge", &json!([{"id": "urn:ngsi-ld:Vehicle:2", "colour": null, "speed": {"value": 7}}, {"id": "urn:ngsi-ld:Vehicle:nope", "speed": 1}])).await;
    assert_eq!(r.status(), 207);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errors"][0]["error"]["status"], 404);
    let v2 = s.get_json("/entities/urn:ngsi-ld:Vehicle:2").await;
    assert!(v2.get("colour").is_none());
    assert_eq!(v2["speed"]["value"], 7);
    assert_eq!(
        v2["speed"]["unitCode"], "KMH",
        "merge keeps the other members"
    );

    // delete
    let r = s
        .post(
            "/entityOperations/delete",
            &json!(["urn:ngsi-ld:Vehicle:1", "urn:ngsi-ld:Vehicle:nope"]),
        )
        .await;
    assert_eq!(r.status(), 207);
    let r = s
        .post(
            "/entityOperations/delete",
            &json!(["urn:ngsi-ld:Vehicle:2"]),
        )
        .await;
    assert_eq!(r.status(), 204);
    let left = s.get_json("/entities?type=Vehicle").await;
    let ids: Vec<&str> = left
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["urn:ngsi-ld:Vehicle:3", "urn:ngsi-ld:Vehicle:4"]);

    assert_problem(
        s.post("/entityOperations/create", &json!([])).await,
        400,
        "BadRequestData",
    )
    .await;
    assert_problem(
        s.post("/entityOperations/create", &json!({"id": "urn:x:1"}))
            .await,
        400,
        "BadRequestData",
    )
    .await;
}

async fn city(s: &Server) {
    let mut items = Vec::new();
    for i in 0..30 {
        let lon = 24.93 + (i % 10) as f64 * 0.002;
        let lat = 60.16 + (i / 10) as f64 * 0.002;
        items.push(json!({
            "id": format!("urn:ngsi-ld:Sensor:{i:02}"),
            "type": if i % 3 == 0 { "AirQualityObserved" } else { "TrafficFlowObserved" },
            "scope": if i % 2 == 0 { "/Helsinki/Kluuvi" } else { "/Helsinki/Kamppi/North" },
            "intensity": {"type": "Property", "value": i * 10, "observedAt": format!("2024-05-01T{:02}:00:00Z", i % 24)},
            "name": {"type": "Property", "value": format!("sensor {i}")},
            "address": {"type": "Property", "value": {"city": if i < 15 { "Helsinki" } else { "Espoo" }, "zip": format!("00{i:03}")}},
            "refRoad": {"type": "Relationship", "object": format!("urn:ngsi-ld:Road:{}", i % 4)},
            "label": {"type": "LanguageProperty", "languageMap": {"fi": format!("anturi {i}"), "en": format!("sensor {i}")}},
            "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}}
        }));
    }
    let r = s
        .post("/entityOperations/create", &Value::Array(items))
        .await;
    assert_eq!(r.status(), 201);
}

async fn ids(s: &Server, query: &str) -> Vec<String> {
    let v = s.get_json(&format!("/entities?{query}&limit=1000")).await;
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[tokio::test]
async fn queries_by_type_q_scope_geo_and_paging() {
    let s = Server::start().await;
    city(&s).await;
    assert_eq!(ids(&s, "type=AirQualityObserved").await.len(), 10);
    assert_eq!(
        ids(
            &s,
            &format!("type={}", enc("AirQualityObserved,TrafficFlowObserved"))
        )
        .await
        .len(),
        30
    );
    assert_eq!(
        ids(
            &s,
            &format!("type={}", enc("AirQualityObserved|TrafficFlowObserved"))
        )
        .await
        .len(),
        30
    );
    assert_eq!(
        ids(&s, "id=urn:ngsi-ld:Sensor:01,urn:ngsi-ld:Sensor:02")
            .await
            .len(),
        2
    );
    assert_eq!(
        ids(
            &s,
            &format!(
                "type=TrafficFlowObserved&idPattern={}",
                enc("Sensor:1[0-9]$")
            )
        )
        .await
        .len(),
        7
    );

    let q = |q: &str| format!("type=TrafficFlowObserved,AirQualityObserved&q={}", enc(q));
    assert_eq!(ids(&s, &q("intensity>200")).await.len(), 9);
    assert_eq!(ids(&s, &q("intensity>=200;intensity<250")).await.len(), 5);
    assert_eq!(ids(&s, &q("intensity==10..30")).await.len(), 3);
    assert_eq!(ids(&s, &q("intensity==10,20,999")).await.len(), 2);
    assert_eq!(ids(&s, &q("intensity!=0;intensity<30")).await.len(), 2);
    assert_eq!(
        ids(&s, &q("(intensity<20|intensity>280);name~=sensor"))
            .await
            .len(),
        3
    );
    assert_eq!(
        ids(&s, &q("name==\"sensor 7\"")).await,
        vec!["urn:ngsi-ld:Sensor:07"]
    );
    assert_eq!(ids(&s, &q("name~=sensor 2.")).await.len(), 10);
    assert_eq!(ids(&s, &q("refRoad==urn:ngsi-ld:Road:1")).await.len(), 8);
    assert_eq!(ids(&s, &q("address[city]==\"Espoo\"")).await.len(), 15);
    assert_eq!(
        ids(&s, &q("intensity.observedAt>=2024-05-01T20:00:00Z"))
            .await
            .len(),
        4
    );
    assert_eq!(
        ids(&s, &q("label[fi]==\"anturi 3\"")).await,
        vec!["urn:ngsi-ld:Sensor:03"]
    );
    assert_eq!(ids(&s, &q("nothing")).await.len(), 0);
    assert_eq!(
        ids(&s, "attrs=label&type=AirQualityObserved").await.len(),
        10
    );

    assert_eq!(
        ids(
            &s,
            &format!(
                "type=TrafficFlowObserved,AirQualityObserved&scopeQ={}",
                enc("/Helsinki/Kluuvi")
            )
        )
        .await
        .len(),
        15
    );
    assert_eq!(
        ids(
            &s,
            &format!(
                "type=TrafficFlowObserved,AirQualityObserved&scopeQ={}",
                enc("/Helsinki/#")
            )
        )
        .await
        .len(),
        30
    );
    assert_eq!(
        ids(
            &s,
            &format!(
                "type=TrafficFlowObserved,AirQualityObserved&scopeQ={}",
                enc("/Helsinki/+/North")
            )
        )
        .await
        .len(),
        15
    );

    // geo: the grid has 0.002° steps (~111 m north, ~111 m east at this latitude ×0.5)
    let geo = |rel: &str, geom: &str, coords: &str| {
        format!(
            "type=TrafficFlowObserved,AirQualityObserved&georel={}&geometry={geom}&coordinates={}",
            enc(rel),
            enc(coords)
        )
    };
    assert_eq!(
        ids(&s, &geo("near;maxDistance==1", "Point", "[24.93,60.16]")).await,
        vec!["urn:ngsi-ld:Sensor:00"]
    );
    assert_eq!(
        ids(&s, &geo("near;maxDistance==120", "Point", "[24.93,60.16]"))
            .await
            .len(),
        2
    );
    assert_eq!(
        ids(&s, &geo("near;minDistance==120", "Point", "[24.93,60.16]"))
            .await
            .len(),
        28
    );
    let square =
        "[[[24.929,60.159],[24.9351,60.159],[24.9351,60.1621],[24.929,60.1621],[24.929,60.159]]]";
    assert_eq!(ids(&s, &geo("within", "Polygon", square)).await.len(), 6);
    assert_eq!(
        ids(&s, &geo("intersects", "Polygon", square)).await.len(),
        6
    );
    assert_eq!(ids(&s, &geo("disjoint", "Polygon", square)).await.len(), 24);
    assert_problem(
        s.get(&format!("/entities?{}", geo("near", "Polygon", square)))
            .await,
        400,
        "BadRequestData",
    )
    .await;
    assert_problem(
        s.get("/entities?type=T&georel=within").await,
        400,
        "BadRequestData",
    )
    .await;

    // paging and counting
    let r = s
        .get("/entities?type=TrafficFlowObserved&limit=5&offset=3&count=true")
        .await;
    assert_eq!(r.headers()["ngsild-results-count"], "20");
    let page: Value = r.json().await.unwrap();
    assert_eq!(page.as_array().unwrap().len(), 5);
    assert_eq!(page[0]["id"], "urn:ngsi-ld:Sensor:05", "01 02 04 skipped");
    let r = s
        .get(&format!(
            "/entities?type=TrafficFlowObserved&limit=0&count=true&q={}",
            enc("intensity>100")
        ))
        .await;
    assert_eq!(r.headers()["ngsild-results-count"], "13");
    assert_problem(
        s.get("/entities?type=T&limit=0").await,
        400,
        "BadRequestData",
    )
    .await;
    assert_problem(
        s.get("/entities?type=T&limit=100000").await,
        403,
        "TooManyResults",
    )
    .await;
    assert_problem(s.get("/entities").await, 400, "BadRequestData").await;
    assert_problem(
        s.get(&format!("/entities?type=T&q={}", enc("(a>3"))).await,
        400,
        "BadRequestData",
    )
    .await;
    assert_problem(
        s.get(&format!("/entities?type=T&q={}", enc("a~=("))).await,
        400,
        "BadRequestData",
    )
    .await;
    assert_problem(
        s.get(&format!("/entities?type=T&q={}", enc("a=="))).await,
        400,
        "BadRequestData",
    )
    .await;

    // language selection
    let v = s.get_json("/entities/urn:ngsi-ld:Sensor:03?lang=fi").await;
    assert_eq!(
        v["label"],
        json!({"type": "Property", "value": "anturi 3", "lang": "fi"})
    );

    // POST /entityOperations/query
    let r = s.post("/entityOperations/query?count=true", &json!({"type": "Query", "entities": [{"type": "AirQualityObserved"}], "q": "intensity>100", "attrs": ["intensity"]})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["ngsild-results-count"], "6");
    let v: Value = r.json().await.unwrap();
    assert!(v[0].get("name").is_none() && v[0].get("intensity").is_some());
    let r = s.post("/entityOperations/query", &json!({"type": "Query", "geoQ": {"geometry": "Point", "coordinates": [24.93, 60.16], "georel": "near;maxDistance==1"}})).await;
    assert_eq!(
        r.json::<Value>().await.unwrap().as_array().unwrap().len(),
        1
    );
    assert_problem(
        s.post("/entityOperations/query", &json!({"entities": []}))
            .await,
        400,
        "BadRequestData",
    )
    .await;
}

#[tokio::test]
async fn types_and_attributes() {
    let s = Server::start().await;
    city(&s).await;
    let t = s.get_json("/types").await;
    assert_eq!(t["type"], "EntityTypeList");
    assert_eq!(
        t["typeList"],
        json!(["AirQualityObserved", "TrafficFlowObserved"])
    );
    let d = s.get_json("/types?details=true").await;
    assert_eq!(d[0]["typeName"], "AirQualityObserved");
    assert!(d[0]["attributeNames"]
        .as_array()
        .unwrap()
        .contains(&json!("intensity")));
    let i = s.get_json("/types/TrafficFlowObserved").await;
    assert_eq!(i["entityCount"], 20);
    let loc = i["attributeDetails"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["attributeName"] == "location")
        .unwrap();
    assert_eq!(loc["attributeTypes"], json!(["GeoProperty"]));
    assert_problem(s.get("/types/Nothing").await, 404, "ResourceNotFound").await;
    let a = s.get_json("/attributes").await;
    assert!(a["attributeList"]
        .as_array()
        .unwrap()
        .contains(&json!("refRoad")));
    let r = s.get_json("/attributes/refRoad").await;
    assert_eq!(
        (r["attributeCount"].clone(), r["attributeTypes"].clone()),
        (json!(30), json!(["Relationship"]))
    );
    assert_eq!(
        s.get_json("/attributes?details=true")
            .await
            .as_array()
            .unwrap()
            .len(),
        6
    );
}

#[tokio::test]
async fn contexts_expand_and_compact_between_clients() {
    let mut s = Server::start().await;
    // register a user context: with an account
    let ctx_a = json!({"@context": {"sdm": "https://smartdatamodels.org/", "Building": "sdm:dataModel.Building/Building", "floors": "sdm:dataModel.Building/floorsAboveGround"}});
    assert_problem(
        s.post("/jsonldContexts", &ctx_a).await,
        401,
        "Unauthenticated",
    )
    .await;
    s.http = s.admin_client().await;
    let r = s.post("/jsonldContexts", &ctx_a).await;
    assert_eq!(r.status(), 201);
    let url_a = r.headers()["location"].to_str().unwrap().to_string();
    let list: Value = s.get_json("/jsonldContexts").await;
    assert!(list.as_array().unwrap().contains(&json!(url_a)));
    assert!(list.as_array().unwrap().contains(&json!(CORE)));
    let id_a = url_a.rsplit('/').next().unwrap();
    assert_eq!(s.get_json(&format!("/jsonldContexts/{id_a}")).await, ctx_a);
    let details = s
        .get_json(&format!("/jsonldContexts/{id_a}?details=true"))
        .await;
    assert_eq!(details["kind"], "Hosted");
    assert_eq!(
        s.get_json("/jsonldContexts/ngsi-ld-core-context").await["@context"]["value"],
        "ngsi-ld:hasValue"
    );

    // create under context A with the Link header
    let r = s
        .http
        .post(s.url("/entities"))
        .header("Content-Type", "application/json")
        .header("Link", Server::link(&url_a))
        .body(json!({"id": "urn:ngsi-ld:Building:1", "type": "Building", "floors": {"type": "Property", "value": 7}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // read under context A: the short names come back
    let r = s
        .http
        .get(s.url("/entities/urn:ngsi-ld:Building:1"))
        .header("Link", Server::link(&url_a))
        .send()
        .await
        .unwrap();
    assert!(r.headers()["link"].to_str().unwrap().contains(&url_a));
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["type"], "Building");
    assert_eq!(e["floors"]["value"], 7);
    // read under the core context: full IRIs
    let e = s.get_json("/entities/urn:ngsi-ld:Building:1").await;
    assert_eq!(
        e["type"],
        "https://smartdatamodels.org/dataModel.Building/Building"
    );
    assert_eq!(
        e["https://smartdatamodels.org/dataModel.Building/floorsAboveGround"]["value"],
        7
    );
    // under another inline context (ld+json request): other short names
    let ctx_b = json!({"Bldg": "https://smartdatamodels.org/dataModel.Building/Building", "storeys": "https://smartdatamodels.org/dataModel.Building/floorsAboveGround"});
    let r = s.post("/entityOperations/query", &json!({"type": "Query", "entities": [{"type": "https://smartdatamodels.org/dataModel.Building/Building"}]})).await;
    assert_eq!(
        r.json::<Value>().await.unwrap().as_array().unwrap().len(),
        1
    );
    let r = s.post_ld("/entityOperations/query", &json!({"@context": ctx_b, "type": "Query", "entities": [{"type": "Bldg"}], "q": "storeys>=7"})).await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v[0]["type"], "Bldg");
    assert_eq!(v[0]["storeys"]["value"], 7);
    // query by type under context A
    let r = s
        .http
        .get(s.url("/entities?type=Building&q=floors==7"))
        .header("Link", Server::link(&url_a))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap().as_array().unwrap().len(),
        1
    );
    // Accept ld+json puts the context in the body
    let r = s
        .http
        .get(s.url("/entities/urn:ngsi-ld:Building:1"))
        .header("Link", Server::link(&url_a))
        .header("Accept", "application/ld+json")
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["@context"], json!([url_a, CORE]));

    // an unknown remote context is not fetched (remote fetching is off by default)
    let r = s
        .http
        .get(s.url("/entities?type=Building"))
        .header("Link", Server::link("https://example.org/ctx.jsonld"))
        .send()
        .await
        .unwrap();
    assert_problem(r, 503, "LdContextNotAvailable").await;
    // invalid contexts
    assert_problem(
        s.post("/jsonldContexts", &json!({"@context": 42})).await,
        400,
        "BadRequestData",
    )
    .await;
    assert_problem(
        s.post("/jsonldContexts", &json!({"nope": 1})).await,
        400,
        "BadRequestData",
    )
    .await;

    // delete the registered context
    assert_eq!(
        s.delete(&format!("/jsonldContexts/{id_a}")).await.status(),
        204
    );
    assert_problem(
        s.delete(&format!("/jsonldContexts/{id_a}")).await,
        404,
        "ResourceNotFound",
    )
    .await;
    let r = s
        .http
        .get(s.url("/entities/urn:ngsi-ld:Building:1"))
        .header("Link", Server::link(&url_a))
        .send()
        .await
        .unwrap();
    assert_problem(r, 503, "LdContextNotAvailable").await;
}

#[tokio::test]
async fn body_limit_health_and_version() {
    let config = twin_api::ApiConfig {
        max_body_bytes: 2048,
        ..Default::default()
    };
    let s = Server::start_with(config, None).await;
    let big = json!({"id": "urn:x:big", "type": "T", "blob": "x".repeat(5000)});
    assert_problem(s.post("/entities", &big).await, 413, "PayloadTooLarge").await;
    let root = s.base.trim_end_matches("/ngsi-ld/v1").to_string();
    let h: Value = s
        .http
        .get(format!("{root}/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(h["status"], "ok");
    let v: Value = s
        .http
        .get(format!("{root}/version"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["name"], "urbantwin");
    assert_problem(
        s.http.get(format!("{root}/nothing")).send().await.unwrap(),
        404,
        "ResourceNotFound",
    )
    .await;
}

#[tokio::test]
async fn data_survives_a_restart() {
    let s = Server::start().await;
    city(&s).await;
    let dir = s.stop().await;
    let s = Server::start_with(twin_api::ApiConfig::default(), Some(dir)).await;
    assert_eq!(ids(&s, "type=TrafficFlowObserved").await.len(), 20);
    s.store.check_integrity().await.unwrap();
}

#[tokio::test]
async fn datasets_provenance_and_tenants() {
    let s = Server::start().await;
    let root = s.base.trim_end_matches("/ngsi-ld/v1").to_string();
    let admin = format!("Bearer {}", s.admin_key().await);
    let d = json!({"id": "urn:ngsi-ld:Dataset:meters", "title": "Smart meters", "owner": "utility", "licence": "CC-BY-4.0",
                   "read": {"kind": "registered"}, "write": {"kind": "private"}});
    let post = |body: Value| {
        s.http
            .post(format!("{root}/api/datasets"))
            .header("Content-Type", "application/json")
            .header("Authorization", &admin)
            .body(body.to_string())
            .send()
    };
    assert_eq!(post(d.clone()).await.unwrap().status(), 201);
    assert_problem(post(d.clone()).await.unwrap(), 409, "AlreadyExists").await;
    assert_problem(
        post(json!({"id": "urn:x", "title": "", "owner": "o", "licence": "l"}))
            .await
            .unwrap(),
        400,
        "BadRequestData",
    )
    .await;
    let got: Value = s
        .http
        .get(format!("{root}/api/datasets/urn:ngsi-ld:Dataset:meters"))
        .header("Authorization", &admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["licence"], "CC-BY-4.0");

    let r = s
        .http
        .post(s.url("/entities"))
        .header("Content-Type", "application/json")
        .header("X-Urbantwin-Dataset", "urn:ngsi-ld:Dataset:meters")
        .header("X-Urbantwin-Source", "meter-gateway-7")
        .header("Authorization", &admin)
        .body(json!({"id": "urn:ngsi-ld:Meter:1", "type": "Meter", "kwh": 12.5}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // the dataset is readable by registered accounts only: anonymous callers do not see the entity at all
    assert_eq!(s.get("/entities/urn:ngsi-ld:Meter:1").await.status(), 404);
    let e: Value = s
        .http
        .get(s.url("/entities/urn:ngsi-ld:Meter:1?options=provenance"))
        .header("Authorization", &admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        e["kwh"]["provenance"],
        json!({"dataset": "urn:ngsi-ld:Dataset:meters", "source": "meter-gateway-7", "channel": "ngsi-ld"})
    );
    let r = s
        .http
        .post(s.url("/entities"))
        .header("Content-Type", "application/json")
        .header("X-Urbantwin-Dataset", "urn:ngsi-ld:Dataset:unknown")
        .body(json!({"id": "urn:ngsi-ld:Meter:2", "type": "Meter"}).to_string())
        .send()
        .await
        .unwrap();
    assert_problem(r, 400, "BadRequestData").await;

    let r = s
        .http
        .get(s.url("/entities?type=Meter"))
        .header("NGSILD-Tenant", "city2")
        .send()
        .await
        .unwrap();
    // tenants are organisations (tests/trust.rs): one that owns no dataset does not exist
    assert_problem(r, 404, "NonexistentTenant").await;
}
