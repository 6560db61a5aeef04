//! `urbantwin import` on the real reference files: counts, idempotent re-import, and all-or-nothing on bad input.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn shared() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    if p.is_dir() {
        Some(p)
    } else if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true but {} is missing", p.display());
    } else {
        eprintln!("skipping: shared data directory {} not found", p.display());
        None
    }
}

fn import(args: &[&str]) -> (bool, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_urbantwin"))
        .arg("import")
        .args(args)
        .arg("--json")
        .output()
        .expect("run urbantwin");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let v = serde_json::from_str(stdout.trim()).unwrap_or(Value::Null);
    (out.status.success(), v, stderr)
}

fn count(db: &Path, ty: &str) -> i64 {
    let c = rusqlite::Connection::open(db).unwrap();
    c.query_row(
        "SELECT count(*) FROM entity_types WHERE type = ?1",
        [format!("https://uri.etsi.org/ngsi-ld/default-context/{ty}")],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn osm_import_is_idempotent_and_all_or_nothing() {
    let Some(data) = shared() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("city.db");
    let dbs = db.to_str().unwrap();
    let pbf = data.join("osm/helsinki.osm.pbf");
    let (ok, first, err) = import(&["osm", pbf.to_str().unwrap(), "--db", dbs]);
    assert!(ok, "{err}");
    let created = first["created"].as_u64().unwrap();
    assert!(created > 8000, "{first}");
    let (roads, links, buildings, pois) = (
        count(&db, "RoadSegment"),
        count(&db, "RoadLink"),
        count(&db, "Building"),
        count(&db, "PointOfInterest"),
    );
    assert_eq!(
        (roads, buildings, pois),
        (2308, 446, 1534),
        "the reader's counts for the Helsinki extract"
    );
    assert!(links > roads, "ways are split into links at intersections");
    // again: same entities, nothing new
    let (ok, again, err) = import(&["osm", pbf.to_str().unwrap(), "--db", dbs]);
    assert!(ok, "{err}");
    assert_eq!(
        (again["created"].as_u64(), again["unchanged"].as_u64()),
        (Some(0), Some(created))
    );
    assert_eq!(count(&db, "Building"), 446);
    // a truncated copy fails, names the file, and changes nothing
    let bytes = std::fs::read(&pbf).unwrap();
    let cut = dir.path().join("cut.osm.pbf");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let (ok, _, err) = import(&[
        "osm",
        cut.to_str().unwrap(),
        "--db",
        dbs,
        "--dataset",
        "other",
    ]);
    assert!(!ok);
    assert!(
        err.contains("cut.osm.pbf") && err.contains("nothing was written"),
        "{err}"
    );
    assert_eq!(count(&db, "Building"), 446);
    let c = rusqlite::Connection::open(&db).unwrap();
    let ds: i64 = c
        .query_row(
            "SELECT count(*) FROM datasets WHERE id LIKE '%other%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(ds, 0, "no dataset record for a failed import");
    let lic: String = c
        .query_row(
            "SELECT doc FROM datasets WHERE id = 'urn:ngsi-ld:Dataset:osm-helsinki'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        lic.contains("ODbL-1.0") && lic.contains("OpenStreetMap contributors"),
        "{lic}"
    );
}

#[test]
fn cityjson_import_needs_an_owner_and_transforms_coordinates() {
    let Some(data) = shared() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("city.db");
    let dbs = db.to_str().unwrap();
    let delft = data.join("cityjson/delft.json");
    let (ok, _, err) = import(&["cityjson", delft.to_str().unwrap(), "--db", dbs]);
    assert!(!ok && err.contains("--owner"), "{err}");
    let (ok, v, err) = import(&[
        "cityjson",
        delft.to_str().unwrap(),
        "--db",
        dbs,
        "--owner",
        "TU Delft",
        "--licence",
        "CC-BY-4.0",
    ]);
    assert!(ok, "{err}");
    assert_eq!(v["created"], 160);
    assert_eq!(count(&db, "Building"), 160);
    let rotterdam = data.join("cityjson/rotterdam_subset.json");
    let (ok, _, err) = import(&[
        "cityjson",
        rotterdam.to_str().unwrap(),
        "--db",
        dbs,
        "--owner",
        "x",
        "--licence",
        "CC0-1.0",
    ]);
    assert!(!ok && err.contains("referenceSystem"), "{err}");
    let (ok, v, err) = import(&[
        "cityjson",
        rotterdam.to_str().unwrap(),
        "--db",
        dbs,
        "--owner",
        "x",
        "--licence",
        "CC0-1.0",
        "--crs",
        "EPSG:7415",
    ]);
    assert!(ok, "{err}");
    assert_eq!(v["created"], 16);
}

#[test]
fn geojson_and_csv_imports_are_idempotent_and_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("city.db");
    let dbs = db.to_str().unwrap();
    let geojson = dir.path().join("trees.geojson");
    std::fs::write(
        &geojson,
        r#"{"type": "FeatureCollection", "features": [
          {"type": "Feature", "id": "t1", "geometry": {"type": "Point", "coordinates": [24.94, 60.17]},
           "properties": {"species": "Tilia × europaea", "height (m)": 12.5, "planted": null}},
          {"type": "Feature", "id": "t2", "geometry": {"type": "Polygon",
             "coordinates": [[[24.9, 60.1], [25.0, 60.1], [25.0, 60.2], [24.9, 60.1]]]},
           "properties": {"species": "Betula"}},
          {"type": "Feature", "id": "t3", "geometry": {"type": "MultiPolygon",
             "coordinates": [[[[0, 0], [1, 0], [1, 1], [0, 0]]], [[[2, 2], [3, 2], [3, 3], [2, 2]]]]},
           "properties": {}}]}"#,
    )
    .unwrap();
    let owned = |kind: &'static str, file: &Path, extra: &[&'static str]| {
        let mut args = vec![kind, file.to_str().unwrap(), "--db", dbs];
        args.extend_from_slice(&["--owner", "City of Helsinki", "--licence", "CC-BY-4.0"]);
        args.extend_from_slice(extra);
        args.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let run = |args: Vec<String>| import(&args.iter().map(String::as_str).collect::<Vec<_>>());
    // --type is required, and so are owner and licence
    let (ok, _, err) = run(owned("geojson", &geojson, &[]));
    assert!(!ok && err.contains("--type"), "{err}");
    let (ok, _, err) = import(&[
        "geojson",
        geojson.to_str().unwrap(),
        "--db",
        dbs,
        "--type",
        "Tree",
    ]);
    assert!(!ok && err.contains("--owner"), "{err}");
    let (ok, v, err) = run(owned("geojson", &geojson, &["--type", "Tree"]));
    assert!(ok, "{err}");
    assert_eq!(v["created"], 3, "{v}");
    assert_eq!(count(&db, "Tree"), 3);
    // every value says which file it came from, and the entity when it was imported
    let c = rusqlite::Connection::open(&db).unwrap();
    let (doc, modified_ms): (String, i64) = c
        .query_row(
            "SELECT doc, modified_ms FROM entities WHERE id LIKE '%Tree%t1'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let doc: Value = serde_json::from_str(&doc).unwrap();
    let species = &doc["attrs"]["https://uri.etsi.org/ngsi-ld/default-context/species"][0];
    assert_eq!(
        species["provenance"]["source"],
        geojson.display().to_string()
    );
    assert_eq!(species["provenance"]["channel"], "import:geojson");
    assert!(
        doc["created_at"].is_string() && doc["modified_at"].is_string(),
        "{doc}"
    );
    assert!(modified_ms > 0, "imports reach live views (modified_since)");
    let (ok, v, err) = run(owned("geojson", &geojson, &["--type", "Tree"]));
    assert!(ok, "{err}");
    assert_eq!(
        (v["created"].as_u64(), v["unchanged"].as_u64()),
        (Some(0), Some(3)),
        "{v}"
    );

    let csv = dir.path().join("lights.csv");
    std::fs::write(
        &csv,
        "code,name,lng,lat,watts\nL1,\"Esplanadi, \"\"east\"\"\",24.95,60.167,40\nL2,Sörnäinen,24.96,60.18,\n",
    )
    .unwrap();
    let (ok, v, err) = run(owned(
        "csv",
        &csv,
        &["--type", "StreetLight", "--id", "code"],
    ));
    assert!(ok, "{err}");
    assert_eq!(v["created"], 2, "{v}");
    let (ok, v, err) = run(owned(
        "csv",
        &csv,
        &["--type", "StreetLight", "--id", "code"],
    ));
    assert!(ok, "{err}");
    assert_eq!(
        (v["created"].as_u64(), v["unchanged"].as_u64()),
        (Some(0), Some(2)),
        "{v}"
    );
    assert_eq!(count(&db, "StreetLight"), 2);

    // one bad row: nothing of the file is written, and the error names the line
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "code,lon,lat\nB1,24.9,60.1\nB2,24.9,60.2\nB3,24.9,north\n",
    )
    .unwrap();
    let (ok, _, err) = run(owned("csv", &bad, &["--type", "Bench", "--id", "code"]));
    assert!(!ok, "a bad row must fail the import");
    assert!(
        err.contains("bad.csv") && err.contains("line 4") && err.contains("nothing was written"),
        "{err}"
    );
    assert_eq!(count(&db, "Bench"), 0);
    let bad = dir.path().join("bad.geojson");
    std::fs::write(
        &bad,
        r#"{"type": "FeatureCollection", "features": [
          {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]}, "properties": {}},
          {"type": "Feature", "geometry": {"type": "Point", "coordinates": [200, 2]}, "properties": {}}]}"#,
    )
    .unwrap();
    let (ok, _, err) = run(owned("geojson", &bad, &["--type", "Bench"]));
    assert!(!ok && err.contains("feature 1"), "{err}");
    assert_eq!(count(&db, "Bench"), 0);
}

/// An entity's stored attribute value (its first instance), read from the store's document.
fn attr(db: &Path, id: &str, name: &str) -> Value {
    let c = rusqlite::Connection::open(db).unwrap();
    let doc: String = c
        .query_row("SELECT doc FROM entities WHERE id = ?1", [id], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{id}: {e}"));
    let doc: Value = serde_json::from_str(&doc).unwrap();
    let iri = if name == "location" {
        "https://uri.etsi.org/ngsi-ld/location".to_string()
    } else {
        format!("https://uri.etsi.org/ngsi-ld/default-context/{name}")
    };
    doc["attrs"][iri][0]["value"].clone()
}

/// The bounding box (min lon, min lat, max lon, max lat) and the mean of the box corners of every entity of a
/// type that has a location.
fn extent(db: &Path, ty: &str) -> (f64, f64, f64, f64, f64, f64) {
    let c = rusqlite::Connection::open(db).unwrap();
    c.query_row(
        "SELECT min(g.min_x), min(g.min_y), max(g.max_x), max(g.max_y), avg(g.min_x), avg(g.min_y)
         FROM entity_geo g JOIN entity_types t ON t.rid = g.gid / 64 WHERE t.type = ?1",
        [format!("https://uri.etsi.org/ngsi-ld/default-context/{ty}")],
        |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        },
    )
    .unwrap()
}

fn owned_args(args: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    v.extend(["--owner", "TNTP contributors", "--licence", "CC0-1.0"].map(String::from));
    v
}

fn run_owned(args: &[&str]) -> (bool, Value, String) {
    let args = owned_args(args);
    import(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

#[test]
fn tntp_siouxfalls_import_with_nodes_flows_and_trips() {
    let Some(data) = shared() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("city.db");
    let dbs = db.to_str().unwrap();
    let sf = data.join("tntp/SiouxFalls");
    let file = |name: &str| sf.join(name).to_str().unwrap().to_string();
    let (net, nodes, flows, trips) = (
        file("SiouxFalls_net.tntp"),
        file("SiouxFalls_node.tntp"),
        file("SiouxFalls_flow.tntp"),
        file("SiouxFalls_trips.tntp"),
    );
    let args = [
        "tntp", &net, "--db", dbs, "--nodes", &nodes, "--flows", &flows, "--trips", &trips,
    ];
    let (ok, _, err) = import(&args);
    assert!(
        !ok && err.contains("--owner"),
        "TNTP has no default licence: {err}"
    );
    let (ok, v, err) = run_owned(&args);
    assert!(ok, "{err}");
    assert_eq!(v["created"], 76 + 24 + 24, "{v}");
    assert_eq!(v["dataset"], "urn:ngsi-ld:Dataset:tntp-SiouxFalls");
    assert_eq!(
        (
            count(&db, "RoadSegment"),
            count(&db, "RoadNode"),
            count(&db, "TrafficZone")
        ),
        (76, 24, 24)
    );
    // every node and link lies in Sioux Falls, South Dakota
    for ty in ["RoadNode", "RoadSegment"] {
        let (x0, y0, x1, y1, _, _) = extent(&db, ty);
        assert!(
            x0 > -96.85 && x1 < -96.6 && y0 > 43.45 && y1 < 43.65,
            "{ty}: {x0} {y0} {x1} {y1}"
        );
    }
    let link = "urn:ngsi-ld:RoadSegment:SiouxFalls:1-2";
    assert_eq!(
        attr(&db, link, "refStartPoint"),
        "urn:ngsi-ld:RoadNode:SiouxFalls:1"
    );
    let flow = attr(&db, link, "benchmarkFlow").as_f64().unwrap();
    assert!((flow - 4494.6576464564205).abs() < 1e-9, "{flow}");
    assert_eq!(attr(&db, link, "capacity"), 25900.20064);
    assert_eq!(attr(&db, link, "location")["type"], "LineString");
    let c = rusqlite::Connection::open(&db).unwrap();
    let with_flow: i64 = c
        .query_row(
            "SELECT count(DISTINCT rid) FROM attr_values WHERE attr = ?1",
            ["https://uri.etsi.org/ngsi-ld/default-context/benchmarkFlow"],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(with_flow, 76, "flows on every link");
    let zone = "urn:ngsi-ld:TrafficZone:SiouxFalls:1";
    assert_eq!(
        attr(&db, zone, "productions"),
        8800.0,
        "the sum of row 1 of the trip table"
    );
    // again: nothing new, nothing changed
    let (ok, v, err) = run_owned(&args);
    assert!(ok, "{err}");
    assert_eq!(
        (v["created"].as_u64(), v["unchanged"].as_u64()),
        (Some(0), Some(124)),
        "{v}"
    );
    assert_eq!(count(&db, "RoadSegment"), 76);
    // the extra files are for tntp only
    let (ok, _, err) = run_owned(&[
        "geojson", &net, "--db", dbs, "--type", "X", "--nodes", &nodes,
    ]);
    assert!(
        !ok && err.contains("--nodes, --flows and --trips are for tntp"),
        "{err}"
    );
}

#[test]
fn tntp_projected_nodes_need_their_crs() {
    let Some(data) = shared() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("city.db");
    let dbs = db.to_str().unwrap();
    let base = data.join("tntp/Chicago-Sketch");
    let net = base.join("ChicagoSketch_net.tntp");
    let nodes = base.join("ChicagoSketch_node.tntp");
    let (net, nodes) = (net.to_str().unwrap(), nodes.to_str().unwrap());
    let (ok, _, err) = run_owned(&["tntp", net, "--db", dbs, "--nodes", nodes]);
    assert!(!ok, "state-plane feet are not degrees");
    assert!(
        err.contains("ChicagoSketch_node.tntp")
            && err.contains("not longitude/latitude")
            && err.contains("--crs")
            && err.contains("nothing was written"),
        "{err}"
    );
    assert_eq!(count(&db, "RoadNode"), 0);
    let (ok, _, err) = run_owned(&[
        "tntp",
        net,
        "--db",
        dbs,
        "--nodes",
        nodes,
        "--crs",
        "EPSG:2056",
    ]);
    assert!(
        !ok && err.contains("unsupported") && err.contains("26771"),
        "{err}"
    );
    let (ok, v, err) = run_owned(&[
        "tntp",
        net,
        "--db",
        dbs,
        "--nodes",
        nodes,
        "--crs",
        "EPSG:26771",
    ]);
    assert!(ok, "{err}");
    assert_eq!(v["created"], 933 + 2950, "{v}");
    assert_eq!(
        (count(&db, "RoadNode"), count(&db, "RoadSegment")),
        (933, 2950)
    );
    // the Chicago region, and the nodes' centre within 30 km of the Loop (41.88 N, 87.63 W)
    let (x0, y0, x1, y1, cx, cy) = extent(&db, "RoadNode");
    assert!(
        x0 > -89.2 && x1 < -87.0 && y0 > 40.9 && y1 < 43.0,
        "{x0} {y0} {x1} {y1}"
    );
    let km = ((cx + 87.63) * 111.3 * 41.88f64.to_radians().cos()).hypot((cy - 41.88) * 111.2);
    assert!(km < 30.0, "centre {cx} {cy} is {km} km from the Loop");
    let length = attr(&db, "urn:ngsi-ld:RoadSegment:ChicagoSketch:1-547", "length");
    assert_eq!(length, 0.86267, "miles, as in the file");
}

#[test]
fn gtfs_import_of_a_hand_built_feed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("city.db");
    let dbs = db.to_str().unwrap();
    let feed = dir.path().join("feed");
    std::fs::create_dir(&feed).unwrap();
    let write = |name: &str, text: &str| std::fs::write(feed.join(name), text).unwrap();
    write(
        "stops.txt",
        "stop_id,stop_name,stop_lat,stop_lon,location_type,parent_station\r\n\
         rt,Rautatientori,60.1710,24.9430,1,\r\n\
         rt-1,Rautatientori 1,60.1711,24.9431,0,rt\r\n\
         rt-m,\"Rautatientori, metro\",60.1712,24.9432,0,rt\r\n\
         kh,Kauppahalli,60.1675,24.9525,,\r\n",
    );
    write("routes.txt", "route_id,route_type\n2,0\nM1,1\n55,3\n");
    write(
        "trips.txt",
        "route_id,service_id,trip_id\n2,wk,a\nM1,wk,b\n55,wk,c\n",
    );
    write(
        "stop_times.txt",
        "trip_id,stop_id,stop_sequence\na,rt-1,1\na,kh,2\nb,rt-m,1\nc,kh,1\n",
    );
    let f = feed.to_str().unwrap();
    let (ok, _, err) = import(&["gtfs", f, "--db", dbs]);
    assert!(!ok && err.contains("--owner"), "{err}");
    let (ok, v, err) = run_owned(&["gtfs", f, "--db", dbs]);
    assert!(ok, "{err}");
    assert_eq!(v["created"], 4, "{v}");
    assert_eq!(count(&db, "GtfsStop"), 4);
    let station = "urn:ngsi-ld:GtfsStop:rt";
    assert_eq!(attr(&db, station, "routeType"), serde_json::json!([0, 1]));
    assert_eq!(
        attr(&db, station, "transportMode"),
        serde_json::json!(["subway", "tram"])
    );
    assert_eq!(
        attr(&db, "urn:ngsi-ld:GtfsStop:kh", "category"),
        serde_json::json!(["public_transport_stop"])
    );
    let (ok, v, err) = run_owned(&["gtfs", f, "--db", dbs]);
    assert!(ok, "{err}");
    assert_eq!(
        (v["created"].as_u64(), v["unchanged"].as_u64()),
        (Some(0), Some(4)),
        "{v}"
    );
    // a bad coordinate on line 3: nothing is written, and the error names the table and the line
    write(
        "stops.txt",
        "stop_id,stop_lat,stop_lon\nx1,60.1,24.9\nx2,160.1,24.9\n",
    );
    let (ok, _, err) = run_owned(&["gtfs", f, "--db", dbs, "--dataset", "broken"]);
    assert!(!ok);
    assert!(
        err.contains("stops.txt: line 3: stop_lat 160.1 is out of range")
            && err.contains("nothing was written"),
        "{err}"
    );
    assert_eq!(count(&db, "GtfsStop"), 4);
}

/// The Google GTFS sample feed ("Demo Transit Authority") as shipped in the pygtfs 0.1.11 source distribution on
/// PyPI. Tests never download: this runs when the archive is in the urbantwin cache
/// (`python3 -m pip download --no-deps --no-binary :all: pygtfs==0.1.11 -d ~/.cache/urbantwin`).
#[test]
fn gtfs_import_of_the_google_sample_feed() {
    const SDIST: &str = "pygtfs-0.1.11.tar.gz";
    const SHA256: &str = "35a4868f304114ade6a8789b70a576810210a169fea996b2eca25ab23730c56e";
    const FEED: &str = "pygtfs-0.1.11/pygtfs/test/data/sample_feed";
    let cache = std::env::var_os("URBANTWIN_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/urbantwin")));
    let Some(sdist) = cache.map(|c| c.join(SDIST)).filter(|p| p.is_file()) else {
        eprintln!(
            "skipping: {SDIST} is not in the urbantwin cache; fetch it with \
             `python3 -m pip download --no-deps --no-binary :all: pygtfs==0.1.11 -d ~/.cache/urbantwin`"
        );
        return;
    };
    use sha2::Digest;
    let hash = sha2::Sha256::digest(std::fs::read(&sdist).unwrap());
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        hex,
        SHA256,
        "{} is not the pygtfs 0.1.11 sdist",
        sdist.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let untar = Command::new("tar")
        .arg("xzf")
        .arg(&sdist)
        .arg("-C")
        .arg(dir.path())
        .arg(FEED)
        .status();
    if !untar.is_ok_and(|s| s.success()) {
        eprintln!("skipping: cannot unpack {} with tar", sdist.display());
        return;
    }
    let feed = dir.path().join(FEED);
    let db = dir.path().join("city.db");
    let dbs = db.to_str().unwrap();
    let (ok, v, err) = run_owned(&["gtfs", feed.to_str().unwrap(), "--db", dbs]);
    assert!(ok, "{err}");
    assert_eq!(v["created"], 9, "{v}");
    assert_eq!(count(&db, "GtfsStop"), 9);
    let stop = "urn:ngsi-ld:GtfsStop:BEATTY_AIRPORT";
    assert_eq!(attr(&db, stop, "name"), "Nye County Airport (Demo)");
    assert_eq!(
        attr(&db, stop, "location"),
        serde_json::json!({"type": "Point", "coordinates": [-116.784582, 36.868446]})
    );
    // every stop is served by the feed's bus routes; route EXT (type 103) has no trips
    for id in ["AMV", "FUR_CREEK_RES", "EMSI"] {
        let id = format!("urn:ngsi-ld:GtfsStop:{id}");
        assert_eq!(attr(&db, &id, "routeType"), serde_json::json!([3]), "{id}");
        assert_eq!(attr(&db, &id, "transportMode"), serde_json::json!(["bus"]));
    }
    // the same feed zipped (where Python is at hand to zip it) is the same dataset with the same stops
    let zipped = dir.path().join("sample_feed.zip");
    let mut tables: Vec<String> = std::fs::read_dir(&feed)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    tables.sort();
    let zip = Command::new("python3")
        .args(["-m", "zipfile", "-c"])
        .arg(&zipped)
        .args(&tables)
        .current_dir(&feed)
        .status();
    if !zip.is_ok_and(|s| s.success()) {
        eprintln!("skipping the zipped feed: python3 -m zipfile is not available");
        return;
    }
    let (ok, v, err) = run_owned(&["gtfs", zipped.to_str().unwrap(), "--db", dbs]);
    assert!(ok, "{err}");
    assert_eq!(
        (v["created"].as_u64(), v["unchanged"].as_u64()),
        (Some(0), Some(9)),
        "{v}"
    );
}

/// Temporal instances of an entity, straight from the store file.
fn history(db: &Path, id: &str) -> i64 {
    let c = rusqlite::Connection::open(db).unwrap();
    c.query_row(
        "SELECT count(*) FROM temporal WHERE entity = ?1",
        [id],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn imported_values_go_into_history_when_asked_and_changes_always() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("counts.csv");
    let write = |count: u32| {
        std::fs::write(
            &csv,
            format!("id,lon,lat,intensity\nc1,24.94,60.17,{count}\nc2,24.95,60.17,7\n"),
        )
        .unwrap()
    };
    let run = |db: &Path, extra: &[&str]| {
        let mut args = vec![
            "csv",
            csv.to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
            "--type",
            "TrafficFlowObserved",
            "--id",
            "id",
            "--owner",
            "City",
            "--licence",
            "CC0-1.0",
        ];
        args.extend_from_slice(extra);
        let (ok, v, err) = import(&args);
        assert!(ok, "{err}");
        v
    };
    let id = "urn:ngsi-ld:TrafficFlowObserved:c1";
    // without --history: the city as it is, no history yet
    write(10);
    let plain = dir.path().join("plain.db");
    run(&plain, &[]);
    assert_eq!(history(&plain, id), 0);
    // a re-import that changes a value records the change (and only it)
    write(11);
    let v = run(&plain, &[]);
    assert_eq!(
        (v["updated"].as_u64(), v["unchanged"].as_u64()),
        (Some(1), Some(1)),
        "{v}"
    );
    assert_eq!(history(&plain, id), 1);
    assert_eq!(history(&plain, "urn:ngsi-ld:TrafficFlowObserved:c2"), 0);
    // with --history every imported value is an instance
    write(10);
    let kept = dir.path().join("kept.db");
    run(&kept, &["--history"]);
    assert!(history(&kept, id) >= 1);
}
