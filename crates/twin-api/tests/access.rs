//! The 15-minute city under `/api/access` over real HTTP and a real SQLite file: the Helsinki extract imported, the
//! summary and the homes' GeoJSON for walking and cycling, options in the query, results kept while the map is
//! unchanged and computed again when a point of interest is added, and ProblemDetails for bad options and an empty
//! city.

mod common;

use common::{assert_problem, import_helsinki, json_call, shared_data, Server};
use reqwest::Method;
use serde_json::{json, Value};

/// A server over the Helsinki extract (None, with the reason printed, without the shared data).
async fn helsinki() -> Option<Server> {
    let data = shared_data()?;
    let s = Server::start().await;
    assert!(import_helsinki(&s.store, &data).await > 3000);
    Some(s)
}

#[tokio::test]
async fn helsinki_fifteen_minute_city() {
    let Some(s) = helsinki().await else { return };
    let walk = s.root_json("/api/access").await;
    assert_eq!(walk["mode"], "walk");
    assert_eq!(walk["thresholdMinutes"], 15.0);
    assert!(walk["homes"].as_u64().unwrap() >= 100, "{walk}");
    assert!(walk["meanScore"].as_f64().unwrap() > 0.6, "{walk}");
    assert_eq!(walk["categories"].as_array().unwrap().len(), 10);
    // the same as the command line's model on the same entities
    let bike = s
        .root_json("/api/access?mode=bike&minutes=5&categories=grocery,school,park")
        .await;
    assert_eq!(bike["mode"], "bike");
    let names: Vec<&str> = bike["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["category"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["grocery", "school", "park"]);
    assert!((bike["speedKmh"].as_f64().unwrap() - 15.0).abs() < 1e-9);

    // every home as a point, with its score and minutes per category
    let fc = s.root_geojson("/api/access/homes?minutes=10").await;
    let homes = fc["features"].as_array().unwrap();
    assert_eq!(homes.len() as u64, walk["homes"].as_u64().unwrap());
    let p = &homes[0]["properties"];
    assert!(
        p["score"].as_f64().is_some() && p["residents"].as_f64().unwrap() > 0.0,
        "{p}"
    );
    assert!(
        p.get("groceryMinutes").is_some() && p.get("groceryNearest").is_some(),
        "{p}"
    );

    // a new pharmacy where the farthest home is: the cached results are computed again
    let pharmacy = |v: &Value| {
        v["categories"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["category"] == "pharmacy")
            .unwrap()["shareWithin"]
            .as_f64()
            .unwrap()
    };
    let strict = s.root_json("/api/access?minutes=3").await;
    let far = homes
        .iter()
        .max_by(|a, b| {
            let t = |h: &Value| {
                h["properties"]["pharmacyMinutes"]
                    .as_f64()
                    .unwrap_or(f64::INFINITY)
            };
            t(a).total_cmp(&t(b))
        })
        .unwrap();
    let at = far["geometry"]["coordinates"].clone();
    let r = s
        .post(
            "/entities",
            &json!({"id": "urn:ngsi-ld:PointOfInterest:new-pharmacy", "type": "PointOfInterest",
                    "category": {"type": "Property", "value": "pharmacy"},
                    "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": at}}}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let after = s.root_json("/api/access?minutes=3").await;
    assert!(
        pharmacy(&after) > pharmacy(&strict),
        "{} → {}",
        pharmacy(&strict),
        pharmacy(&after)
    );
    assert!(after["meanScore"].as_f64().unwrap() > strict["meanScore"].as_f64().unwrap());
    s.stop().await;
}

#[tokio::test]
async fn bad_options_and_an_empty_city_are_problem_details() {
    let s = Server::start().await;
    for (q, want) in [
        ("mode=car", "mode must be walk or bike"),
        ("minutes=0", "minutes must be above 0"),
        ("minutes=soon", "minutes must be a number"),
        ("speedKmh=-2", "speedKmh must be above 0"),
        ("k=0", "k must be from 1 to 50"),
        ("profile=child", "profile must be adult or older"),
        ("colour=red", "colour"),
    ] {
        let v = s
            .root_problem(&format!("/api/access?{q}"), 400, "BadRequestData")
            .await;
        assert!(
            v["detail"].as_str().unwrap_or_default().contains(want)
                || v["title"].as_str().unwrap_or_default().contains(want),
            "{q}: {v}"
        );
    }
    let v = s.root_problem("/api/access", 409, "Conflict").await;
    assert!(
        v["detail"].as_str().unwrap().contains("no street network"),
        "{v}"
    );
    s.stop().await;
}

#[tokio::test]
async fn isochrones_over_http() {
    let Some(s) = helsinki().await else { return };
    let url = format!(
        "{}/api/access/isochrone?lon=24.9432&lat=60.1710&minutes=10,5",
        s.root()
    );
    let r = s.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/geo+json");
    let fc: Value = r.json().await.unwrap();
    let f = fc["features"].as_array().unwrap();
    assert_eq!(f.len(), 2);
    assert_eq!(f[0]["properties"]["minutes"], 10.0, "largest first");
    assert_eq!(f[0]["geometry"]["type"], "MultiPolygon");
    let ring = &f[1]["geometry"]["coordinates"][0][0];
    assert!(ring.as_array().unwrap().len() >= 4);
    assert_eq!(
        ring[0],
        ring[ring.as_array().unwrap().len() - 1],
        "closed ring"
    );
    let (a10, a5) = (
        f[0]["properties"]["areaM2"].as_f64().unwrap(),
        f[1]["properties"]["areaM2"].as_f64().unwrap(),
    );
    assert!(a10 > a5 && a5 > 50_000.0, "{a10} {a5}");
    // cycling reaches farther in the same time
    let bike = s
        .root_json("/api/access/isochrone?lon=24.9432&lat=60.1710&minutes=5&mode=bike")
        .await;
    assert!(
        bike["features"][0]["properties"]["areaM2"]
            .as_f64()
            .unwrap()
            > a5
    );
    for (q, status) in [
        ("lon=24.94", 400),
        ("lon=24.9432&lat=91", 400),
        ("lon=24.9432&lat=60.1710&minutes=0", 400),
        ("lon=24.9432&lat=60.1710&minutes=5,x", 400),
        ("lon=10&lat=10", 400),
    ] {
        s.root_problem(
            &format!("/api/access/isochrone?{q}"),
            status,
            "BadRequestData",
        )
        .await;
    }
    s.stop().await;
}

#[tokio::test]
async fn neighbourhoods_add_up_to_the_city() {
    let Some(s) = helsinki().await else { return };
    let city = s.root_json("/api/access").await;
    let grid = s.root_json("/api/access/areas?by=grid&cellM=300").await;
    let cells = grid["features"].as_array().unwrap();
    assert!(cells.len() >= 4, "{} cells", cells.len());
    let residents: f64 = cells
        .iter()
        .map(|c| c["properties"]["residents"].as_f64().unwrap())
        .sum();
    let total = city["residents"].as_f64().unwrap();
    assert!(
        (residents - total).abs() < 0.1 * cells.len() as f64,
        "{residents} vs {total}"
    );
    // the residents-weighted mean of the cells' scores is the city's
    let mean: f64 = cells
        .iter()
        .map(|c| {
            c["properties"]["meanScore"].as_f64().unwrap()
                * c["properties"]["residents"].as_f64().unwrap()
        })
        .sum::<f64>()
        / residents;
    assert!(
        (mean - city["meanScore"].as_f64().unwrap()).abs() < 1e-3,
        "{mean} vs {}",
        city["meanScore"]
    );
    let p = &cells[0]["properties"];
    assert!(
        p["groceryShareWithin"].as_f64().is_some() && p["homes"].as_u64().unwrap() > 0,
        "{p}"
    );
    assert_eq!(cells[0]["geometry"]["type"], "MultiPolygon");
    // by the polygons of a layer: land-use zones with homes in them
    let zones = s.root_json("/api/access/areas?by=LandUse").await;
    for z in zones["features"].as_array().unwrap() {
        let score = z["properties"]["meanScore"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&score), "{z}");
        assert!(z["properties"]["id"]
            .as_str()
            .unwrap()
            .starts_with("urn:ngsi-ld:LandUse:"));
    }
    for q in ["by=grid&cellM=5", "by=Nothing", "by=LandUse&cellM=100"] {
        s.root_problem(&format!("/api/access/areas?{q}"), 400, "BadRequestData")
            .await;
    }
    s.stop().await;
}

#[tokio::test]
async fn a_scenario_of_the_fifteen_minute_city() {
    let Some(s) = helsinki().await else { return };
    let url = format!("{}/api/access/scenario?minutes=5&profile=older", s.root());
    let body = json!({"edits": [{"kind": "addDestination", "category": "pharmacy", "lon": 24.9432, "lat": 60.1710, "name": "New pharmacy"}]});
    let (v, _) = json_call(&s.http, Method::POST, &url, Some(&body), 200).await;
    assert!(
        v["delta"]["meanScore"].as_f64().unwrap() > 0.0,
        "{}",
        v["delta"]
    );
    let homes = v["homes"].as_array().unwrap();
    assert!(!homes.is_empty());
    for h in homes {
        assert!(
            h["scoreAfter"].as_f64().unwrap() > h["scoreBefore"].as_f64().unwrap(),
            "{h}"
        );
    }
    let pharmacy = v["delta"]["categories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["category"] == "pharmacy")
        .unwrap()
        .clone();
    assert!(pharmacy["change"].as_f64().unwrap() > 0.0, "{pharmacy}");
    assert_eq!(v["baseline"]["thresholdMinutes"], 5.0);
    // closing paths in an area: some homes lose
    let body = json!({"edits": [{"kind": "closePaths", "area": {"type": "Polygon", "coordinates": [[[24.940, 60.170], [24.946, 60.170], [24.946, 60.172], [24.940, 60.172], [24.940, 60.170]]]}}]});
    let (v, _) = json_call(&s.http, Method::POST, &url, Some(&body), 200).await;
    let homes = v["homes"].as_array().unwrap();
    assert!(
        homes
            .iter()
            .any(|h| h["scoreAfter"].as_f64() < h["scoreBefore"].as_f64()),
        "{}",
        v["homes"]
    );
    // ...and nobody gains: closing paths only takes ways away
    assert!(
        homes
            .iter()
            .all(|h| h["scoreAfter"].as_f64() <= h["scoreBefore"].as_f64()),
        "{}",
        v["homes"]
    );
    // the same paths by their RoadLink ids, as a client finds them in the hub: the walkable links meeting the area
    let query = reqwest::Url::parse_with_params(
        &format!("{}/ngsi-ld/v1/entities", s.root()),
        [
            ("type", "RoadLink"),
            ("georel", "intersects"),
            ("geometry", "Polygon"),
            (
                "coordinates",
                "[[[24.940,60.170],[24.946,60.170],[24.946,60.172],[24.940,60.172],[24.940,60.170]]]",
            ),
            ("options", "keyValues"),
            ("limit", "1000"),
        ],
    )
    .unwrap();
    let links = s
        .root_json(&format!(
            "{}?{}",
            query.path(),
            query.query().unwrap_or_default()
        ))
        .await;
    let ids: Vec<&str> = links
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["walkAccess"]["forward"] == true || l["walkAccess"]["backward"] == true)
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    assert!(ids.len() > 10, "{links}");
    let body = json!({"edits": [{"kind": "closePaths", "links": ids}]});
    let (by_id, _) = json_call(&s.http, Method::POST, &url, Some(&body), 200).await;
    let results = |r: &Value| {
        let mut r = r["scenario"].clone();
        r.as_object_mut().unwrap().remove("searchSeconds");
        r
    };
    assert_eq!(results(&by_id), results(&v), "closed by id as by area");
    // closed and opened again: nobody changes
    let body = json!({"edits": [{"kind": "closePaths", "links": ids}, {"kind": "openPaths", "links": ids}]});
    let (v, _) = json_call(&s.http, Method::POST, &url, Some(&body), 200).await;
    assert_eq!(v["homes"], json!([]), "{}", v["delta"]);
    // a walkway across the railway yard: nobody loses
    let body =
        json!({"edits": [{"kind": "addPath", "path": [[24.9445, 60.1730], [24.9395, 60.1735]]}]});
    let (v, _) = json_call(&s.http, Method::POST, &url, Some(&body), 200).await;
    assert!(
        v["homes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["scoreAfter"].as_f64() >= h["scoreBefore"].as_f64()),
        "{}",
        v["homes"]
    );
    assert_eq!(v["edits"][0]["kind"], "addPath");
    for (body, want) in [
        (json!({}), "edits"),
        (json!({"edits": []}), "from 1 to 100"),
        (json!({"edits": [{"kind": "teleport"}]}), "edits"),
        (
            json!({"edits": [{"kind": "removeDestination", "id": "urn:nope"}]}),
            "edits[0]: no destination",
        ),
        (
            json!({"edits": [{"kind": "addDestination", "category": "casino", "lon": 24.94, "lat": 60.17}]}),
            "not one of the model's categories",
        ),
    ] {
        let r = s
            .http
            .post(&url)
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let p = assert_problem(r, 400, "BadRequestData").await;
        assert!(
            p["detail"].as_str().unwrap_or_default().contains(want),
            "{body}: {p}"
        );
    }
    s.stop().await;
}
