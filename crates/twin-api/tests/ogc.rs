//! OGC API – Features under `/ogc` over real HTTP and a real SQLite file: landing page, conformance, OpenAPI,
//! collections and extents, items with bbox / limit + paging / datetime / property filters / crs, errors, and GDAL.

mod common;

use std::collections::{BTreeSet, HashMap};

use common::Server;
use serde_json::{json, Value};

const TREE_TYPE: &str = "https://example.org/types#Tree";

fn building(i: usize) -> Value {
    // 0.01° squares along a row: building i covers lon [24.90+0.01i, 24.905+0.01i], lat [60.10, 60.105]
    let x0 = 24.90 + 0.01 * i as f64;
    let (x1, y0, y1) = (x0 + 0.005, 60.10, 60.105);
    let mut b = json!({
        "id": format!("urn:ngsi-ld:Building:b{i:02}"),
        "type": "Building",
        "name": {"type": "Property", "value": format!("Building {i}")},
        "category": {"type": "Property", "value": match i % 3 { 0 => "commercial", _ => "residential" }},
        "height": {"type": "Property", "value": 10 + (i % 4)},
        "location": {"type": "GeoProperty", "value": {"type": "Polygon",
            "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}},
    });
    if i == 25 {
        // no location: a feature with a null geometry
        b.as_object_mut().unwrap().remove("location");
    }
    b
}

fn vehicle(i: usize) -> Value {
    let observed = if i < 4 {
        format!("2024-05-01T1{i}:00:00Z")
    } else {
        format!("2024-06-0{}T08:00:00Z", i - 3)
    };
    json!({
        "id": format!("urn:ngsi-ld:Vehicle:v{i}"),
        "type": "Vehicle",
        "speed": {"type": "Property", "value": 20.5 * i as f64, "observedAt": observed},
        "brand": {"type": "Property", "value": "Volvo"},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [25.0 + 0.1 * i as f64, 60.2]}},
    })
}

const BUILDINGS: usize = 26;
const VEHICLES: usize = 7;

/// The server's root URL (`http://127.0.0.1:PORT`).
fn root(s: &Server) -> String {
    s.base.trim_end_matches("/ngsi-ld/v1").to_string()
}

async fn seeded() -> Server {
    let s = Server::start().await;
    let mut all: Vec<Value> = (0..BUILDINGS).map(building).collect();
    all.extend((0..VEHICLES).map(vehicle));
    all.push(json!({
        "id": "urn:ngsi-ld:Tree:t1",
        "type": TREE_TYPE,
        "species": {"type": "Property", "value": "Tilia cordata"},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [24.95, 60.17]}},
    }));
    let r = s.post("/entityOperations/create", &Value::Array(all)).await;
    let status = r.status();
    assert_eq!(status, 201, "{}", r.text().await.unwrap());
    s
}

/// GET under /ogc: status, content type and JSON body.
async fn ogc(s: &Server, path: &str) -> (u16, String, Value) {
    let r = s
        .http
        .get(format!("{}/ogc{path}", root(s)))
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let text = r.text().await.expect("body");
    let v = serde_json::from_str(&text).unwrap_or_else(|_| panic!("GET {path}: not JSON: {text}"));
    (status, ct, v)
}

async fn ok(s: &Server, path: &str) -> Value {
    let (status, _, v) = ogc(s, path).await;
    assert_eq!(status, 200, "GET /ogc{path}: {v}");
    v
}

async fn error(s: &Server, path: &str, status: u16) -> Value {
    let (st, ct, v) = ogc(s, path).await;
    assert_eq!(st, status, "GET /ogc{path}: {v}");
    assert!(ct.starts_with("application/json"), "{ct}");
    assert!(v["code"].as_str().is_some_and(|c| !c.is_empty()), "{v}");
    assert!(
        v["description"].as_str().is_some_and(|c| !c.is_empty()),
        "{v}"
    );
    v
}

fn link<'a>(v: &'a Value, rel: &str) -> Option<&'a Value> {
    v["links"]
        .as_array()
        .expect("links")
        .iter()
        .find(|l| l["rel"] == rel)
}

fn href(v: &Value, rel: &str) -> String {
    link(v, rel).unwrap_or_else(|| panic!("no {rel} link in {v}"))["href"]
        .as_str()
        .unwrap()
        .to_string()
}

fn ids(fc: &Value) -> BTreeSet<String> {
    fc["features"]
        .as_array()
        .expect("features")
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect()
}

/// Every `$ref` of the document points at something in it.
fn check_refs(doc: &Value, v: &Value) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                let ptr = r.strip_prefix('#').expect("local $ref");
                assert!(doc.pointer(ptr).is_some(), "dangling $ref {r}");
            }
            m.values().for_each(|x| check_refs(doc, x));
        }
        Value::Array(a) => a.iter().for_each(|x| check_refs(doc, x)),
        _ => {}
    }
}

#[tokio::test]
async fn landing_conformance_and_openapi() {
    let s = seeded().await;
    let base = format!("{}/ogc", root(&s));
    let (status, ct, landing) = ogc(&s, "").await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("application/json"), "{ct}");
    assert!(landing["title"].is_string() && landing["description"].is_string());
    // the credit line of the datasets (none but the default one here)
    assert_eq!(landing["attribution"], "");
    for rel in [
        "self",
        "alternate",
        "service-desc",
        "service-doc",
        "conformance",
        "data",
    ] {
        assert!(link(&landing, rel).is_some(), "no {rel} link: {landing}");
    }
    assert_eq!(href(&landing, "self"), base);
    assert_eq!(href(&landing, "service-desc"), format!("{base}/api"));
    assert_eq!(href(&landing, "conformance"), format!("{base}/conformance"));
    assert_eq!(href(&landing, "data"), format!("{base}/collections"));
    // trailing slash and f=json are the same resource
    assert_eq!(ok(&s, "/?f=json").await, landing);

    let conf = ok(&s, "/conformance").await;
    let classes: Vec<&str> = conf["conformsTo"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    for c in ["core", "geojson", "oas30"] {
        assert!(
            classes.contains(
                &format!("http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/{c}").as_str()
            ),
            "{classes:?}"
        );
    }

    let (status, ct, api) = ogc(&s, "/api").await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("application/vnd.oai.openapi+json"), "{ct}");
    assert!(api["openapi"].as_str().unwrap().starts_with("3.0"));
    assert_eq!(api["servers"][0]["url"], base);
    for p in [
        "/",
        "/conformance",
        "/api",
        "/collections",
        "/collections/{collectionId}",
        "/collections/{collectionId}/items",
        "/collections/{collectionId}/items/{featureId}",
    ] {
        assert!(
            api["paths"][p]["get"]["responses"]["200"].is_object(),
            "path {p}"
        );
    }
    let item_params =
        api["paths"]["/collections/{collectionId}/items"]["get"]["parameters"].to_string();
    for name in ["limit", "offset", "bbox", "datetime"] {
        assert!(
            item_params.contains(&format!("/parameters/{name}\"")),
            "{item_params}"
        );
    }
    assert_eq!(
        api["components"]["parameters"]["limit"]["schema"]["maximum"],
        10000
    );
    check_refs(&api, &api);

    error(&s, "/nowhere", 404).await;
    error(&s, "/?f=html", 400).await;
    error(&s, "/conformance?foo=bar", 400).await;
}

#[tokio::test]
async fn collections_with_extents() {
    let s = seeded().await;
    let base = format!("{}/ogc", root(&s));
    let cols = ok(&s, "/collections").await;
    assert_eq!(href(&cols, "self"), format!("{base}/collections"));
    let list = cols["collections"].as_array().unwrap();
    let by_id: HashMap<&str, &Value> = list
        .iter()
        .map(|c| (c["id"].as_str().unwrap(), c))
        .collect();
    assert_eq!(by_id.len(), 3, "{cols}");
    let b = by_id["Building"];
    assert_eq!(b["title"], "Building");
    assert_eq!(b["itemType"], "feature");
    assert_eq!(b["crs"][0], "http://www.opengis.net/def/crs/OGC/1.3/CRS84");
    assert_eq!(href(b, "self"), format!("{base}/collections/Building"));
    assert_eq!(
        href(b, "items"),
        format!("{base}/collections/Building/items")
    );
    assert_eq!(link(b, "items").unwrap()["type"], "application/geo+json");
    assert!(href(b, "alternate").contains("/ngsi-ld/v1/entities?type="));
    // 25 located buildings: lon 24.90 .. 24.90+0.24+0.005, lat 60.10 .. 60.105
    let bbox: Vec<f64> = b["extent"]["spatial"]["bbox"][0]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_f64().unwrap())
        .collect();
    let want = [24.90, 60.10, 24.90 + 0.24 + 0.005, 60.105];
    for (got, want) in bbox.iter().zip(want) {
        assert!((got - want).abs() < 1e-9, "{bbox:?} vs {want:?}");
    }
    assert_eq!(bbox.len(), 4);
    // vehicles: points from lon 25.0 to 25.6, temporal extent from their observedAt
    let v = by_id["Vehicle"];
    assert_eq!(v["extent"]["spatial"]["bbox"][0][0], 25.0);
    assert!((v["extent"]["spatial"]["bbox"][0][2].as_f64().unwrap() - 25.6).abs() < 1e-9);
    assert_eq!(
        v["extent"]["temporal"]["interval"][0],
        json!(["2024-05-01T10:00:00.000Z", "2024-06-03T08:00:00.000Z"])
    );
    // a full-IRI type gets a URL-safe id that maps back
    let tree_id = by_id
        .keys()
        .find(|k| k.starts_with("Tree-"))
        .expect("tree collection")
        .to_string();
    assert!(tree_id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)));
    let tree = ok(&s, &format!("/collections/{tree_id}")).await;
    assert_eq!(tree["id"], tree_id.as_str());
    let trees = ok(&s, &format!("/collections/{tree_id}/items")).await;
    assert_eq!(
        ids(&trees),
        BTreeSet::from(["urn:ngsi-ld:Tree:t1".to_string()])
    );
    assert_eq!(trees["features"][0]["properties"]["type"], TREE_TYPE);

    let one = ok(&s, "/collections/Building").await;
    assert_eq!(one["id"], "Building");
    assert_eq!(one["extent"], b["extent"]);
    error(&s, "/collections/Nope", 404).await;
    error(&s, "/collections/Nope/items", 404).await;
    error(&s, "/collections?limit=3", 400).await;
}

#[tokio::test]
async fn items_paging_and_limits() {
    let s = seeded().await;
    let (status, ct, fc) = ogc(&s, "/collections/Building/items").await;
    assert_eq!(status, 200);
    assert_eq!(ct, "application/geo+json");
    assert_eq!(fc["type"], "FeatureCollection");
    assert_eq!(fc["numberMatched"], BUILDINGS);
    assert_eq!(fc["numberReturned"], 10);
    assert_eq!(fc["features"].as_array().unwrap().len(), 10);
    assert!(fc["timeStamp"].as_str().unwrap().ends_with('Z'));
    assert!(link(&fc, "self").is_some() && link(&fc, "next").is_some());
    assert!(link(&fc, "prev").is_none());
    let f = &fc["features"][0];
    assert_eq!(f["type"], "Feature");
    assert_eq!(f["id"], "urn:ngsi-ld:Building:b00");
    assert_eq!(f["geometry"]["type"], "Polygon");
    assert_eq!(f["properties"]["type"], "Building");
    assert_eq!(f["properties"]["name"], "Building 0");
    assert_eq!(f["properties"]["height"], 10);
    assert!(f["properties"].get("location").is_none(), "{f}");

    // follow next links to the end (they keep the other parameters): every building exactly once
    let mut seen: Vec<String> = Vec::new();
    let mut url = format!(
        "{}/ogc/collections/Building/items?limit=7&category=residential",
        root(&s)
    );
    let mut pages = 0;
    loop {
        let page: Value = s.http.get(&url).send().await.unwrap().json().await.unwrap();
        assert_eq!(page["numberMatched"], 17, "{page}");
        assert!(page["numberReturned"].as_u64().unwrap() <= 7);
        seen.extend(ids(&page));
        pages += 1;
        if pages > 1 {
            let prev = href(&page, "prev");
            assert!(
                prev.contains("limit=7") && prev.contains("category=residential"),
                "{prev}"
            );
        }
        match link(&page, "next") {
            Some(n) => {
                url = n["href"].as_str().unwrap().to_string();
                assert!(
                    url.contains("limit=7") && url.contains("category=residential"),
                    "{url}"
                );
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "duplicates: {seen:?}");
    let want: BTreeSet<String> = (0..BUILDINGS)
        .filter(|i| i % 3 > 0)
        .map(|i| format!("urn:ngsi-ld:Building:b{i:02}"))
        .collect();
    assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), want);

    // the building without a location has a null geometry
    let last = ok(&s, "/collections/Building/items?offset=25").await;
    assert_eq!(last["numberReturned"], 1);
    assert_eq!(last["features"][0]["id"], "urn:ngsi-ld:Building:b25");
    assert!(last["features"][0]["geometry"].is_null());
    assert!(link(&last, "next").is_none());
    assert!(href(&last, "prev").contains("offset=15"));

    // a limit above the maximum is served as the maximum
    let all = ok(&s, "/collections/Building/items?limit=50000").await;
    assert_eq!(all["numberReturned"], BUILDINGS);
    assert!(link(&all, "next").is_none());
    error(&s, "/collections/Building/items?limit=0", 400).await;
    error(&s, "/collections/Building/items?limit=ten", 400).await;
    error(&s, "/collections/Building/items?offset=-1", 400).await;
    error(&s, "/collections/Building/items?unknown=1", 400).await;
    error(&s, "/collections/Building/items?f=html", 400).await;
}

#[tokio::test]
async fn items_bbox_datetime_and_properties() {
    let s = seeded().await;
    // building i covers lon [24.90+0.01i, 24.905+0.01i]: the box overlaps 2 (its right part), 3 and 4 (its left part)
    let fc = ok(
        &s,
        "/collections/Building/items?bbox=24.924,60.0,24.941,61.0&limit=100",
    )
    .await;
    let want: BTreeSet<String> = [2, 3, 4]
        .iter()
        .map(|i| format!("urn:ngsi-ld:Building:b{i:02}"))
        .collect();
    assert_eq!(ids(&fc), want);
    assert_eq!(fc["numberMatched"], 3);
    // 6 numbers (with heights) select the same
    let fc6 = ok(
        &s,
        "/collections/Building/items?bbox=24.924,60.0,-10,24.941,61.0,100&limit=100",
    )
    .await;
    assert_eq!(ids(&fc6), want);
    // a box that misses everything, one crossing the antimeridian
    assert_eq!(
        ok(&s, "/collections/Building/items?bbox=0,0,1,1").await["numberMatched"],
        0
    );
    assert_eq!(
        ok(&s, "/collections/Vehicle/items?bbox=179,-90,26,90").await["numberMatched"],
        7
    );
    // bbox together with a property filter
    let fc = ok(
        &s,
        "/collections/Building/items?bbox=24.924,60.0,24.941,61.0&category=commercial",
    )
    .await;
    assert_eq!(
        ids(&fc),
        BTreeSet::from(["urn:ngsi-ld:Building:b03".to_string()])
    );
    for bad in [
        "1,2,3",
        "a,b,c,d",
        "0,0,1,1,1",
        "0,10,1,5",
        "0,0,200,1",
        "0,-95,1,1",
    ] {
        error(&s, &format!("/collections/Building/items?bbox={bad}"), 400).await;
    }

    // datetime on observedAt: v0..v3 observed on 2024-05-01 at 10..13h, v4..v6 on 2024-06-01..03
    let vs = |ns: &[usize]| -> BTreeSet<String> {
        ns.iter()
            .map(|i| format!("urn:ngsi-ld:Vehicle:v{i}"))
            .collect()
    };
    let q = |dt: &str| format!("/collections/Vehicle/items?datetime={dt}");
    assert_eq!(
        ids(&ok(&s, &q("2024-05-01T00:00:00Z/2024-05-01T23:59:59Z")).await),
        vs(&[0, 1, 2, 3])
    );
    assert_eq!(
        ids(&ok(&s, &q("2024-05-01T11:00:00Z/2024-05-01T12:00:00Z")).await),
        vs(&[1, 2])
    );
    assert_eq!(ids(&ok(&s, &q("2024-05-01T11:00:00Z")).await), vs(&[1]));
    assert_eq!(ids(&ok(&s, &q("2024-05-01")).await), vs(&[0, 1, 2, 3]));
    assert_eq!(ids(&ok(&s, &q("../2024-05-31")).await), vs(&[0, 1, 2, 3]));
    assert_eq!(ids(&ok(&s, &q("2024-06-02/..")).await), vs(&[5, 6]));
    assert_eq!(
        ids(&ok(&s, &q("2024-06-02T00:00:00%2B02:00/..")).await),
        vs(&[5, 6])
    );
    assert_eq!(
        ok(&s, &q("2020-01-01/2020-12-31")).await["numberMatched"],
        0
    );
    // buildings carry no observedAt: their modifiedAt (just now) counts
    assert_eq!(
        ok(
            &s,
            "/collections/Building/items?datetime=2000-01-01T00:00:00Z/.."
        )
        .await["numberMatched"],
        BUILDINGS
    );
    assert_eq!(
        ok(&s, "/collections/Building/items?datetime=../2000-01-01").await["numberMatched"],
        0
    );
    for bad in [
        "yesterday",
        "../..",
        "2024-05-02/2024-05-01",
        "2024-13-01",
        "",
    ] {
        error(&s, &q(bad), 400).await;
    }

    // property filters: text, numbers, with datetime
    let fc = ok(
        &s,
        "/collections/Building/items?category=commercial&limit=100",
    )
    .await;
    assert_eq!(fc["numberMatched"], 9);
    assert!(fc["features"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["properties"]["category"] == "commercial"));
    let fc = ok(&s, "/collections/Building/items?height=12&limit=100").await;
    let want: BTreeSet<String> = (0..BUILDINGS)
        .filter(|i| i % 4 == 2)
        .map(|i| format!("urn:ngsi-ld:Building:b{i:02}"))
        .collect();
    assert_eq!(ids(&fc), want);
    let fc = ok(&s, "/collections/Building/items?name=Building+7").await;
    assert_eq!(
        ids(&fc),
        BTreeSet::from(["urn:ngsi-ld:Building:b07".to_string()])
    );
    assert_eq!(
        ok(&s, "/collections/Vehicle/items?speed=41").await["numberMatched"],
        1
    );
    assert_eq!(
        ok(
            &s,
            "/collections/Vehicle/items?brand=Volvo&datetime=2024-06-01/.."
        )
        .await["numberMatched"],
        3
    );
    assert_eq!(
        ok(&s, "/collections/Vehicle/items?brand=Saab").await["numberMatched"],
        0
    );
    // an attribute of another type is not a parameter of this collection
    error(&s, "/collections/Vehicle/items?category=commercial", 400).await;
}

#[tokio::test]
async fn single_features() {
    let s = seeded().await;
    let base = format!("{}/ogc", root(&s));
    let (status, ct, f) = ogc(&s, "/collections/Building/items/urn:ngsi-ld:Building:b03").await;
    assert_eq!(status, 200, "{f}");
    assert_eq!(ct, "application/geo+json");
    assert_eq!(f["type"], "Feature");
    assert_eq!(f["id"], "urn:ngsi-ld:Building:b03");
    assert_eq!(f["geometry"]["type"], "Polygon");
    assert_eq!(
        f["properties"],
        json!({"type": "Building", "name": "Building 3", "category": "commercial", "height": 13})
    );
    assert_eq!(
        href(&f, "self"),
        format!("{base}/collections/Building/items/urn:ngsi-ld:Building:b03")
    );
    assert_eq!(
        href(&f, "collection"),
        format!("{base}/collections/Building")
    );
    let alt = href(&f, "alternate");
    let e: Value = s.http.get(&alt).send().await.unwrap().json().await.unwrap();
    assert_eq!(e["id"], "urn:ngsi-ld:Building:b03", "{alt}");
    // the self link resolves to the same feature
    let again: Value = s
        .http
        .get(href(&f, "self"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again, f);

    error(
        &s,
        "/collections/Vehicle/items/urn:ngsi-ld:Building:b03",
        404,
    )
    .await;
    error(
        &s,
        "/collections/Building/items/urn:ngsi-ld:Building:none",
        404,
    )
    .await;
    error(&s, "/collections/Building/items/not-a-uri", 404).await;
    error(&s, "/collections/Nope/items/urn:ngsi-ld:Building:b03", 404).await;
    error(
        &s,
        "/collections/Building/items/urn:ngsi-ld:Building:b03?limit=1",
        400,
    )
    .await;
}

fn mercator(lon: f64, lat: f64) -> (f64, f64) {
    let r = 6_378_137.0;
    let y = (std::f64::consts::FRAC_PI_4 + lat.to_radians() / 2.0)
        .tan()
        .ln()
        * r;
    (lon.to_radians() * r, y)
}

/// Part 2: `crs` output in Web Mercator with a Content-Crs header, and `bbox-crs`.
#[tokio::test]
async fn web_mercator_output_and_bbox_crs() {
    let s = seeded().await;
    const M: &str = "http://www.opengis.net/def/crs/EPSG/0/3857";
    let conf = ok(&s, "/conformance").await.to_string();
    assert!(conf.contains("http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs"));
    let col = ok(&s, "/collections/Vehicle").await;
    assert!(col["crs"].as_array().unwrap().contains(&json!(M)), "{col}");

    let get = |path: String| {
        let url = format!("{}/ogc{path}", root(&s));
        let http = s.http.clone();
        async move {
            let r = http.get(url).send().await.unwrap();
            assert_eq!(r.status(), 200);
            let crs = r.headers()["content-crs"].to_str().unwrap().to_string();
            (crs, r.json::<Value>().await.unwrap())
        }
    };
    let (crs, fc) = get("/collections/Vehicle/items?limit=1".into()).await;
    assert_eq!(crs, "<http://www.opengis.net/def/crs/OGC/1.3/CRS84>");
    assert_eq!(
        fc["features"][0]["geometry"]["coordinates"],
        json!([25.0, 60.2])
    );
    let (crs, fc) = get(format!("/collections/Vehicle/items?limit=1&crs={M}")).await;
    assert_eq!(crs, format!("<{M}>"));
    let (x, y) = mercator(25.0, 60.2);
    let c = &fc["features"][0]["geometry"]["coordinates"];
    assert!(
        (c[0].as_f64().unwrap() - x).abs() < 1e-3 && (c[1].as_f64().unwrap() - y).abs() < 1e-3,
        "{c}"
    );
    // the next link keeps the crs
    assert!(href(&fc, "next").contains(&format!("crs={M}")));
    let (crs, f) = get(format!(
        "/collections/Building/items/urn:ngsi-ld:Building:b03?crs={M}"
    ))
    .await;
    assert_eq!(crs, format!("<{M}>"));
    let corner = &f["geometry"]["coordinates"][0][0];
    assert!(corner[0].as_f64().unwrap() > 2_700_000.0, "{corner}");

    // the same box in Web Mercator selects the same buildings
    let (x0, y0) = mercator(24.924, 60.0);
    let (x1, y1) = mercator(24.941, 61.0);
    let (_, fc) = get(format!(
        "/collections/Building/items?bbox={x0},{y0},{x1},{y1}&bbox-crs={M}&limit=100"
    ))
    .await;
    let want: BTreeSet<String> = [2, 3, 4]
        .iter()
        .map(|i| format!("urn:ngsi-ld:Building:b{i:02}"))
        .collect();
    assert_eq!(ids(&fc), want);

    error(
        &s,
        "/collections/Vehicle/items?crs=http://www.opengis.net/def/crs/EPSG/0/4326",
        400,
    )
    .await;
    error(
        &s,
        "/collections/Vehicle/items?bbox-crs=http://www.opengis.net/def/crs/EPSG/0/3857",
        400,
    )
    .await;
    error(
        &s,
        "/collections/Vehicle/items?bbox=0,0,1,1&bbox-crs=EPSG:9999",
        400,
    )
    .await;
    error(
        &s,
        "/collections/Vehicle/items/urn:ngsi-ld:Vehicle:v1?crs=nope",
        400,
    )
    .await;
}

/// GDAL's OAPIF driver reads the API: layer names and feature counts. Skipped (with a reason) without `ogrinfo`.
#[tokio::test]
async fn gdal_reads_the_api() {
    let Ok(out) = std::process::Command::new("ogrinfo")
        .arg("--version")
        .output()
    else {
        eprintln!(
            "skipping: GDAL's ogrinfo is not installed (apt-get install gdal-bin){}",
            if std::env::var("CI").as_deref() == Ok("true") {
                " — CI=true, but this test does not require it"
            } else {
                ""
            }
        );
        return;
    };
    eprintln!("using {}", String::from_utf8_lossy(&out.stdout).trim());
    let s = seeded().await;
    let url = format!("OAPIF:{}/ogc", root(&s));
    // a blocking thread: the server keeps answering on this test's runtime meanwhile
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("ogrinfo")
            .args(["-ro", "-al", "-so", &url])
            .env("GDAL_HTTP_TIMEOUT", "30")
            .output()
    })
    .await
    .expect("join")
    .expect("run ogrinfo");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ogrinfo failed: {stdout}\n{stderr}");
    eprintln!("{stdout}");
    let mut counts: HashMap<String, String> = HashMap::new();
    let mut layer = None;
    for line in stdout.lines() {
        if let Some(n) = line.strip_prefix("Layer name: ") {
            layer = Some(n.trim().to_string());
        } else if let (Some(c), Some(l)) = (line.strip_prefix("Feature Count: "), &layer) {
            counts.insert(l.clone(), c.trim().to_string());
        }
    }
    assert_eq!(
        counts.get("Building").map(String::as_str),
        Some("26"),
        "{stdout}\n{stderr}"
    );
    assert_eq!(
        counts.get("Vehicle").map(String::as_str),
        Some("7"),
        "{stdout}\n{stderr}"
    );
    assert_eq!(counts.len(), 3, "{stdout}\n{stderr}");
}
