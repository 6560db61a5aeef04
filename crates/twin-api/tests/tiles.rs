//! Vector tiles under `/tiles` over real HTTP and a real SQLite file: catalogue, TileJSON 3.0, the MapLibre style,
//! MVT 2.1 tiles (decoded, geometry checked), 204 / 304 / errors, invalidation by writes of this and another process,
//! the Helsinki extract, and GDAL's MVT driver reading a tile.

mod common;

use chrono::Utc;
use common::{import_helsinki, shared_data, Server};
use prost::Message;
use serde_json::{json, Value};
use twin_model::context::Context;
use twin_model::ngsi::parse_entity;
use twin_model::Provenance;
use twin_store::store_as_is;
use twin_tiles::mvt::{self, decode_geometry, ring_area, GeomType};
use twin_tiles::TileId;

fn root(s: &Server) -> String {
    s.base.trim_end_matches("/ngsi-ld/v1").to_string()
}

fn square(x: f64, y: f64, d: f64) -> Value {
    json!({"type": "Polygon", "coordinates": [[[x, y], [x + d, y], [x + d, y + d], [x, y + d], [x, y]]]})
}

fn building(i: usize, x: f64, y: f64, height: f64) -> Value {
    json!({
        "id": format!("urn:ngsi-ld:Building:t{i}"),
        "type": "Building",
        "name": {"type": "Property", "value": format!("Talo {i}")},
        "height": {"type": "Property", "value": height},
        "floorsAboveGround": {"type": "Property", "value": 3},
        "category": {"type": "Property", "value": ["residential", "retail"]},
        "address": {"type": "Property", "value": {"streetAddress": "Mannerheimintie 1"}},
        "location": {"type": "GeoProperty", "value": square(x, y, 0.0004)},
    })
}

/// A tile: status, headers and the decoded body (when 200).
async fn get_tile(
    s: &Server,
    path: &str,
    etag: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Option<mvt::Tile>) {
    let mut req = s.http.get(format!("{}/tiles/{path}", root(s)));
    if let Some(e) = etag {
        req = req.header("If-None-Match", e);
    }
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let bytes = r.bytes().await.expect("body");
    let tile = (status == 200).then(|| mvt::Tile::decode(bytes.as_ref()).expect("a valid MVT"));
    (status, headers, tile)
}

async fn get_json(s: &Server, path: &str) -> (u16, Value) {
    let r = s
        .http
        .get(format!("{}/tiles{path}", root(s)))
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")),
    )
}

fn layer<'a>(t: &'a mvt::Tile, name: &str) -> Option<&'a mvt::Layer> {
    t.layers.iter().find(|l| l.name == name)
}

fn find<'a>(l: &'a mvt::Layer, id: &str) -> Option<&'a mvt::Feature> {
    l.features
        .iter()
        .find(|f| common::mvt_props(l, f)["id"] == id)
}

/// Every geometry is well-formed: commands decode, coordinates stay within the buffer, rings are wound as MVT 2.1
/// requires (each polygon starts with a positive-area exterior).
fn check_geometry(t: &mvt::Tile) {
    for l in &t.layers {
        assert_eq!(l.version, 2);
        let extent = l.extent.unwrap_or(4096) as i32;
        for f in &l.features {
            let parts = decode_geometry(&f.geometry).expect("geometry decodes");
            assert!(!parts.is_empty());
            for p in &parts {
                for &(x, y) in p {
                    assert!(
                        (-64..=extent + 64).contains(&x) && (-64..=extent + 64).contains(&y),
                        "{} feature outside the buffer: ({x}, {y})",
                        l.name
                    );
                }
            }
            match f.r#type {
                Some(t) if t == GeomType::Polygon as i32 => {
                    assert!(
                        ring_area(&parts[0]) > 0.0,
                        "{}: first ring must be exterior",
                        l.name
                    );
                    for r in &parts {
                        assert!(r.len() >= 3 && ring_area(r) != 0.0);
                    }
                }
                Some(t) if t == GeomType::Linestring as i32 => {
                    assert!(parts.iter().all(|p| p.len() >= 2))
                }
                Some(t) if t == GeomType::Point as i32 => {
                    assert!(parts.iter().all(|p| p.len() == 1))
                }
                other => panic!("unexpected geometry type {other:?}"),
            }
        }
    }
}

/// The z16 tile over central Helsinki and a point inside it.
fn centre() -> (TileId, f64, f64) {
    let t = TileId::containing(24.9414, 60.1710, 16);
    let [w, s, _, _] = t.bounds();
    (t, w + 0.001, s + 0.001)
}

#[tokio::test]
async fn catalogue_tilejson_style_and_tiles() {
    let s = Server::start().await;
    let (t, x, y) = centre();
    let mut all = vec![
        building(1, x, y, 21.5),
        building(2, x + 0.001, y, 9.0),
        json!({"id": "urn:ngsi-ld:AirQualityObserved:a1", "type": "AirQualityObserved",
               "no2": {"type": "Property", "value": 31.5},
               "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [x + 0.0002, y + 0.0008]}}}),
        json!({"id": "urn:ngsi-ld:Note:n1", "type": "Note", "text": {"type": "Property", "value": "no geometry"}}),
    ];
    // far away (Tampere): in another tile
    all.push(building(3, 23.76, 61.50, 12.0));
    let r = s.post("/entityOperations/create", &Value::Array(all)).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());

    let r = s
        .http
        .post(format!("{}/api/datasets", root(&s)))
        .header("Content-Type", "application/json")
        .header("Authorization", format!("Bearer {}", s.admin_key().await))
        .body(json!({"id": "urn:ngsi-ld:Dataset:osm", "title": "Helsinki", "owner": "OpenStreetMap contributors",
                     "licence": "ODbL-1.0"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    // the catalogue lists the drawn types only
    let (st, cat) = get_json(&s, "").await;
    assert_eq!(st, 200);
    let names: Vec<&str> = cat["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["AirQualityObserved", "Building"]);
    assert_eq!(cat["style"], format!("{}/tiles/style.json", root(&s)));

    // TileJSON 3.0
    let (st, tj) = get_json(&s, "/Building,AirQualityObserved").await;
    assert_eq!(st, 200, "{tj}");
    assert_eq!(tj["tilejson"], "3.0.0");
    assert_eq!(
        tj["tiles"][0],
        format!(
            "{}/tiles/Building,AirQualityObserved/{{z}}/{{x}}/{{y}}.mvt",
            root(&s)
        )
    );
    let b = tj["bounds"].as_array().unwrap();
    assert!(b[0].as_f64().unwrap() <= 23.76 + 1e-6 && b[3].as_f64().unwrap() >= 61.5);
    assert_eq!(tj["attribution"], "© OpenStreetMap contributors (ODbL-1.0)");
    let vl = tj["vector_layers"].as_array().unwrap();
    assert_eq!(vl.len(), 2);
    assert_eq!(vl[0]["id"], "Building");
    assert_eq!(vl[0]["minzoom"], 13);
    assert!(vl[0]["fields"]["height"].is_string(), "{}", vl[0]);
    assert!(vl[0]["fields"].get("location").is_none());
    let (st, same) = get_json(&s, "/Building,AirQualityObserved.json").await;
    assert_eq!((st, &same["tiles"]), (200, &tj["tiles"]));

    // the style draws from these tiles alone
    let (st, style) = get_json(&s, "/style.json").await;
    assert_eq!(st, 200);
    assert_eq!(style["version"], 8);
    let sources = style["sources"].as_object().unwrap();
    assert_eq!(sources.len(), 1);
    // the TileJSON inlined: tiles, zooms and bounds (one round trip less before the first tile)
    let tiles = sources["urbantwin"]["tiles"][0].as_str().unwrap();
    assert!(
        tiles.starts_with(&format!("{}/tiles/", root(&s))) && tiles.ends_with("/{z}/{x}/{y}.mvt"),
        "{tiles}"
    );
    let (_, tj) = get_json(
        &s,
        tiles
            .trim_start_matches(&root(&s))
            .trim_start_matches("/tiles")
            .trim_end_matches("/{z}/{x}/{y}.mvt"),
    )
    .await;
    assert_eq!(sources["urbantwin"]["minzoom"], tj["minzoom"]);
    assert_eq!(sources["urbantwin"]["maxzoom"], tj["maxzoom"]);
    assert_eq!(sources["urbantwin"]["bounds"], tj["bounds"]);
    assert_eq!(
        sources["urbantwin"]["attribution"],
        "© OpenStreetMap contributors (ODbL-1.0)"
    );
    let text = style.to_string();
    assert!(!text.contains("https://"), "no internet resources: {text}");
    assert!(style["layers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["type"] == "fill-extrusion" && l["source-layer"] == "Building"));

    // a tile with both layers
    let path = format!("Building,AirQualityObserved/{t}.mvt");
    let (st, h, tile) = get_tile(&s, &path, None).await;
    assert_eq!(st, 200);
    assert_eq!(h["content-type"], "application/vnd.mapbox-vector-tile");
    // web maps of other origins may read tiles
    let r = s
        .http
        .get(format!("{}/tiles/{path}", root(&s)))
        .header("Origin", "https://maps.example.org")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    let tile = tile.unwrap();
    check_geometry(&tile);
    let bl = layer(&tile, "Building").expect("Building layer");
    assert_eq!(bl.features.len(), 2);
    let f = find(bl, "urn:ngsi-ld:Building:t1").unwrap();
    let p = common::mvt_props(bl, f);
    assert_eq!(p["height"], json!(21.5));
    assert_eq!(p["floorsAboveGround"], json!(3));
    assert_eq!(p["name"], json!("Talo 1"));
    assert_eq!(p["category"], json!("residential; retail"));
    assert_eq!(p["type"], json!("Building"));
    // an object's numbers and booleans are drawn one by one (a RoadLink's walkAccess.forward); its text is not
    assert!(
        !p.keys().any(|k| k.starts_with("address")),
        "the address stays in the API: {p:?}"
    );
    assert_eq!(f.r#type, Some(GeomType::Polygon as i32));
    let aq = layer(&tile, "AirQualityObserved").unwrap();
    assert_eq!(common::mvt_props(aq, &aq.features[0])["no2"], json!(31.5));
    // the order of the layers in the path is the order in the tile
    assert_eq!(tile.layers[0].name, "Building");

    // a single layer; revalidation with the ETag
    let (st, h, tile) = get_tile(&s, &format!("AirQualityObserved/{t}"), None).await;
    assert_eq!(st, 200);
    assert_eq!(tile.unwrap().layers.len(), 1);
    let etag = h["etag"].to_str().unwrap().to_string();
    let (st, _, _) = get_tile(&s, &format!("AirQualityObserved/{t}.mvt"), Some(&etag)).await;
    assert_eq!(st, 304);

    // empty tiles are 204; below a layer's minzoom too
    let far = TileId::containing(-70.0, -40.0, 16);
    assert_eq!(
        get_tile(&s, &format!("Building/{far}.mvt"), None).await.0,
        204
    );
    let low = t.parent_at(12);
    assert_eq!(
        get_tile(&s, &format!("Building/{low}.mvt"), None).await.0,
        204
    );
    assert_eq!(
        get_tile(&s, &format!("AirQualityObserved/{low}.mvt"), None)
            .await
            .0,
        200
    );
    let world = get_tile(&s, "AirQualityObserved/0/0/0.pbf", None).await;
    assert_eq!(world.0, 200);

    // errors: JSON {code, description}
    for (path, status) in [
        ("Building/3/8/0.mvt", 400),
        ("Building/25/0/0.mvt", 400),
        ("Building/z/0/0.mvt", 400),
        ("Nothing/1/0/0.mvt", 404),
        ("Note/1/0/0.mvt", 404),
        ("Building,,Building/1/0/0.mvt", 400),
        ("Building,Building/1/0/0.mvt", 400),
        ("Building/1/0/0/extra", 404),
        ("Building/1/0/0.mvt?f=json", 400),
    ] {
        let r = s
            .http
            .get(format!("{}/tiles/{path}", root(&s)))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{path}");
        let v: Value = r.json().await.unwrap();
        assert!(v["code"].is_string() && v["description"].is_string(), "{v}");
    }
}

#[tokio::test]
async fn cached_tiles_follow_every_write() {
    let s = Server::start().await;
    let (t, x, y) = centre();
    let r = s
        .post(
            "/entityOperations/create",
            &json!([building(1, x, y, 10.0), building(2, x + 0.001, y, 10.0)]),
        )
        .await;
    assert_eq!(r.status(), 201);
    let path = format!("Building/{t}.mvt");
    let height = |tile: &mvt::Tile, id: &str| {
        let l = layer(tile, "Building").unwrap();
        find(l, id).map(|f| common::mvt_props(l, f)["height"].clone())
    };
    let (_, h1, tile) = get_tile(&s, &path, None).await;
    assert_eq!(
        height(&tile.unwrap(), "urn:ngsi-ld:Building:t1"),
        Some(json!(10.0))
    );
    // served from the cache: same ETag
    let (_, h2, _) = get_tile(&s, &path, None).await;
    assert_eq!(h1["etag"], h2["etag"]);

    // a new value through NGSI-LD
    let r = s
        .http
        .patch(s.url("/entities/urn:ngsi-ld:Building:t1/attrs"))
        .header("Content-Type", "application/json")
        .body(json!({"height": {"type": "Property", "value": 30.0}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (_, h3, tile) = get_tile(&s, &path, None).await;
    assert_ne!(h1["etag"], h3["etag"]);
    assert_eq!(
        height(&tile.unwrap(), "urn:ngsi-ld:Building:t1"),
        Some(json!(30.0))
    );

    // a move to another tile: gone here, present there
    let elsewhere = TileId::containing(24.90, 60.20, 16);
    let [w, so, _, _] = elsewhere.bounds();
    let (_, _, _) = get_tile(&s, &format!("Building/{elsewhere}.mvt"), None).await;
    let r = s
        .http
        .patch(s.url("/entities/urn:ngsi-ld:Building:t2/attrs"))
        .header("Content-Type", "application/json")
        .body(json!({"location": {"type": "GeoProperty", "value": square(w + 0.001, so + 0.001, 0.0004)}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (_, _, tile) = get_tile(&s, &path, None).await;
    assert_eq!(height(&tile.unwrap(), "urn:ngsi-ld:Building:t2"), None);
    let (st, _, tile) = get_tile(&s, &format!("Building/{elsewhere}.mvt"), None).await;
    assert_eq!(st, 200);
    assert!(height(&tile.unwrap(), "urn:ngsi-ld:Building:t2").is_some());

    // a write by another process on the same database file (an import while the server runs)
    let other = common::open_store(&s.db_path()).await;
    let e = parse_entity(
        &building(1, x, y, 44.0),
        &Context::core(),
        Utc::now(),
        &Provenance::default(),
    )
    .unwrap();
    other
        .write("urn:ngsi-ld:Building:t1", store_as_is(e))
        .await
        .unwrap();
    let (_, _, tile) = get_tile(&s, &path, None).await;
    assert_eq!(
        height(&tile.unwrap(), "urn:ngsi-ld:Building:t1"),
        Some(json!(44.0))
    );

    // a deletion empties the tile
    let r = s
        .http
        .delete(s.url("/entities/urn:ngsi-ld:Building:t1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(get_tile(&s, &path, None).await.0, 204);
}

#[tokio::test]
async fn helsinki_tiles() {
    let Some(data) = shared_data() else { return };
    let s = Server::start().await;
    let n = import_helsinki(&s.store, &data).await;
    assert!(n > 3000, "{n}");
    let (st, cat) = get_json(&s, "").await;
    assert_eq!(st, 200);
    let ids: Vec<&str> = cat["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    for l in [
        "Building",
        "LandUse",
        "PointOfInterest",
        "RoadLink",
        "RoadSegment",
    ] {
        assert!(ids.contains(&l), "{l} in {ids:?}");
    }
    // the routable network carries each mode's access as flat booleans (walkAccess.forward...), for apps to style by
    let t = TileId::containing(24.9414, 60.1710, 14);
    let (st, _, links) = get_tile(&s, &format!("RoadLink/{t}.mvt"), None).await;
    assert_eq!(st, 200);
    let links = links.unwrap();
    let rl = layer(&links, "RoadLink").unwrap();
    let props: Vec<_> = rl
        .features
        .iter()
        .map(|f| common::mvt_props(rl, f))
        .collect();
    assert!(props.len() > 100, "{}", props.len());
    for key in [
        "walkAccess.forward",
        "bikeAccess.backward",
        "carAccess.forward",
    ] {
        assert!(props.iter().all(|p| p[key].is_boolean()), "{key}");
    }
    assert!(props.iter().any(|p| p["walkAccess.forward"] == false));
    assert!(props.iter().any(|p| p["walkAccess.forward"] == true));

    // the whole centre at z14: every layer, valid geometry, and every building whose box lies inside the tile is in it
    let (st, _, tile) = get_tile(
        &s,
        &format!("RoadSegment,Building,PointOfInterest,LandUse/{t}.mvt"),
        None,
    )
    .await;
    assert_eq!(st, 200);
    let tile = tile.unwrap();
    check_geometry(&tile);
    let [w, so, e, no] = t.bounds();
    let mut q = twin_store::EntityQuery {
        types: Some(twin_model::query::TypeExpr::Type(
            "https://uri.etsi.org/ngsi-ld/default-context/Building".into(),
        )),
        limit: 100_000,
        ..Default::default()
    };
    q.geo = Some(twin_model::geoquery::GeoQuery {
        georel: twin_model::geoquery::GeoRel::Within,
        geometry: geo::Geometry::Polygon(
            geo::Rect::new(geo::coord! {x: w, y: so}, geo::coord! {x: e, y: no}).to_polygon(),
        ),
        geoproperty: twin_model::entity::iri::LOCATION.into(),
    });
    let inside = s.store.query(&q).await.unwrap().entities;
    assert!(inside.len() > 100, "{}", inside.len());
    // (smaller than a pixel of a 512-pixel tile, 8 of 4096 units, a building may be dropped or simplified away)
    let bl = layer(&tile, "Building").unwrap();
    let units = |deg: f64| deg / (e - w) * 4096.0;
    let mut dropped = 0;
    for b in &inside {
        let g = b
            .geometries(twin_model::entity::iri::LOCATION)
            .next()
            .unwrap();
        let [x0, y0, x1, y1] = twin_model::geoquery::geojson_bbox(g).unwrap();
        // a degree of latitude is about twice a degree of longitude here; tile units are square on the ground
        let small = units(x1 - x0) < 8.0 || units((y1 - y0) * 2.0) < 8.0;
        match find(bl, &b.id) {
            Some(_) => {}
            None if small => dropped += 1,
            None => panic!("{} is missing from the tile: {g}", b.id),
        }
    }
    assert!(
        dropped * 20 < inside.len(),
        "{dropped} of {} dropped",
        inside.len()
    );
    let roads = layer(&tile, "RoadSegment").unwrap();
    assert!(roads.features.len() > 500, "{}", roads.features.len());
    let f = roads
        .features
        .iter()
        .find(|f| common::mvt_props(roads, f).get("name") == Some(&json!("Mannerheimintie")));
    assert!(f.is_some(), "Mannerheimintie is drawn");
    let pois = layer(&tile, "PointOfInterest").unwrap();
    assert!(pois
        .features
        .iter()
        .any(|f| common::mvt_props(pois, f)["category"] == "grocery"));

    // GDAL's MVT driver reads the tile (skipped without ogr2ogr)
    gdal_reads(&s, t).await;
    // the style is valid by MapLibre's own validator (installed by scripts/test into tests/js)
    style_is_valid(&s).await;
}

async fn style_is_valid(s: &Server) {
    let style = s
        .http
        .get(format!("{}/tiles/style.json", root(s)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let v: Value = serde_json::from_str(&style).unwrap();
    common::assert_valid_style(&v);
    let drawn: Vec<&str> = v["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["source-layer"].as_str())
        .collect();
    for l in ["LandUse", "RoadSegment", "Building", "PointOfInterest"] {
        assert!(drawn.contains(&l), "{l} is drawn");
    }
}

async fn gdal_reads(s: &Server, t: TileId) {
    if std::process::Command::new("ogr2ogr")
        .arg("--version")
        .output()
        .is_err()
    {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true but GDAL's ogr2ogr is missing (apt-get install gdal-bin)");
        }
        eprintln!("skipping the GDAL check: ogr2ogr is not installed (apt-get install gdal-bin)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // the driver reads z/x/y from the file's path
    let file = dir.path().join(format!("{}/{}/{}.pbf", t.z, t.x, t.y));
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let bytes = s
        .http
        .get(format!(
            "{}/tiles/Building,PointOfInterest/{t}.mvt",
            root(s)
        ))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    std::fs::write(&file, &bytes).unwrap();
    let out = std::process::Command::new("ogrinfo")
        .args(["-ro", "-so", "-al"])
        .arg(&file)
        .output()
        .expect("ogrinfo");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("Layer name: Building"), "{text}");
    assert!(text.contains("Layer name: PointOfInterest"), "{text}");
    let geojson = dir.path().join("pois.geojson");
    let out = std::process::Command::new("ogr2ogr")
        .args(["-f", "GeoJSON", "-t_srs", "EPSG:4326"])
        .arg(&geojson)
        .arg(&file)
        .arg("PointOfInterest")
        .output()
        .expect("ogr2ogr");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fc: Value = serde_json::from_slice(&std::fs::read(&geojson).unwrap()).unwrap();
    let features = fc["features"].as_array().unwrap();
    assert!(features.len() > 100, "{}", features.len());
    let [w, so, e, no] = t.buffered_bounds(64.0 / 4096.0);
    for f in features {
        let c = &f["geometry"]["coordinates"];
        let (lon, lat) = (c[0].as_f64().unwrap(), c[1].as_f64().unwrap());
        assert!(
            lon >= w - 1e-6 && lon <= e + 1e-6 && lat >= so - 1e-6 && lat <= no + 1e-6,
            "{f}"
        );
        assert!(f["properties"]["id"]
            .as_str()
            .unwrap()
            .starts_with("urn:ngsi-ld:PointOfInterest:"));
    }
}

#[tokio::test]
async fn responses_are_gzipped_for_clients_that_accept_it_but_event_streams_are_not() {
    use std::io::Read;
    let s = Server::start().await;
    let (t, x, y) = centre();
    let r = s
        .post(
            "/entityOperations/create",
            &Value::Array(
                (0..40)
                    .map(|i| building(i, x + i as f64 * 1e-4, y, 10.0))
                    .collect(),
            ),
        )
        .await;
    assert_eq!(r.status(), 201);
    let tile = format!("/tiles/Building/{}/{}/{}.mvt", t.z, t.x, t.y);
    for path in [
        "/tiles/style.json",
        tile.as_str(),
        "/ngsi-ld/v1/entities?type=Building&limit=40",
    ] {
        let url = format!("{}{path}", root(&s));
        let plain = s.http.get(&url).send().await.unwrap();
        assert_eq!(plain.status(), 200, "{path}");
        assert!(
            plain.headers().get("content-encoding").is_none(),
            "{path}: not asked for"
        );
        let plain = plain.bytes().await.unwrap();
        let r = s
            .http
            .get(&url)
            .header("Accept-Encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(
            r.headers()
                .get("content-encoding")
                .map(|v| v.to_str().unwrap()),
            Some("gzip"),
            "{path}"
        );
        let zipped = r.bytes().await.unwrap();
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&zipped[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, plain.to_vec(), "{path}: the same body");
        assert!(
            zipped.len() < plain.len(),
            "{path}: {} → {} bytes",
            plain.len(),
            zipped.len()
        );
    }
    // a live event stream is never buffered by a compressor
    let r = s
        .http
        .get(format!("{}/api/events", root(&s)))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("content-encoding").is_none());
    drop(r);
    s.stop().await;
}
