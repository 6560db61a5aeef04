//! Tests on the real Helsinki extract (when /work/shared/data is present) and on a hand-written XML fixture.

use std::io::Write;

use super::*;

/// The shared data directory, or None (with the reason printed) when absent; with CI=true its absence fails.
fn data_dir() -> Option<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    if dir.join("osm/helsinki.osm.pbf").is_file() {
        return Some(dir);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("test data missing at {}", dir.display());
    }
    eprintln!("skipped: no test data at {}", dir.display());
    None
}

#[derive(Default)]
struct Collected {
    entities: Vec<Entity>,
    links: Vec<RoadLink>,
    nodes: Vec<(i64, f64, f64)>,
}

fn collect(path: &Path) -> Result<(OsmSummary, Collected), ImportError> {
    let mut c = Collected::default();
    let s = read_osm(path, &mut |i| {
        match i {
            OsmItem::Entity(e) => c.entities.push(e),
            OsmItem::Link(l) => c.links.push(l),
            OsmItem::Node(id, x, y) => c.nodes.push((id, x, y)),
        }
        Ok(())
    })?;
    Ok((s, c))
}

fn value<'a>(e: &'a Entity, attr: &str) -> Option<&'a Value> {
    e.attrs
        .get(&Context::core().expand(attr))
        .and_then(|a| a.first())
        .map(|a| &a.value)
}

fn find<'a>(c: &'a Collected, id: &str) -> &'a Entity {
    c.entities
        .iter()
        .find(|e| e.id == id)
        .unwrap_or_else(|| panic!("no entity {id}"))
}

fn is_type(e: &Entity, t: &str) -> bool {
    e.types
        .iter()
        .any(|x| x.ends_with(&format!("/{t}")) || x == t)
}

#[test]
fn helsinki_counts_and_known_features() {
    let Some(dir) = data_dir() else { return };
    let path = dir.join("osm/helsinki.osm.pbf");
    let (s, c) = collect(&path).expect("helsinki reads");
    println!("{s:#?}");

    // Independent counts with a plain osmpbf pass.
    let mut node_ids = HashSet::new();
    type Pairs = Vec<(String, String)>;
    let mut ways: Vec<(Vec<i64>, Pairs)> = Vec::new();
    let mut building_rels = 0u64;
    osmpbf::ElementReader::from_path(&path)
        .unwrap()
        .for_each(|e| match e {
            osmpbf::Element::DenseNode(n) => {
                node_ids.insert(n.id());
            }
            osmpbf::Element::Node(n) => {
                node_ids.insert(n.id());
            }
            osmpbf::Element::Way(w) => ways.push((
                w.refs().collect(),
                w.tags()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )),
            osmpbf::Element::Relation(r) => {
                let t: Vec<_> = r.tags().collect();
                if t.contains(&("type", "multipolygon"))
                    && t.iter().any(|(k, v)| *k == "building" && *v != "no")
                {
                    building_rels += 1;
                }
            }
        })
        .unwrap();
    let tag =
        |t: &[(String, String)], k: &str| t.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
    let complete = |r: &[i64]| r.iter().all(|n| node_ids.contains(n));
    let building_ways = ways
        .iter()
        .filter(|(r, t)| {
            tag(t, "building").is_some_and(|b| b != "no")
                && r.len() >= 4
                && r[0] == r[r.len() - 1]
                && complete(r)
        })
        .count() as u64;
    assert!(
        s.buildings >= building_ways && s.buildings <= building_ways + building_rels,
        "buildings {} vs ways {building_ways} + relations {building_rels}",
        s.buildings
    );
    let highway_ways = ways
        .iter()
        .filter(|(r, t)| {
            tag(t, "highway").is_some_and(|h| tags::is_routable(h.as_str()))
                && tag(t, "area").as_deref() != Some("yes")
                && r.iter().filter(|n| node_ids.contains(*n)).count() >= 2
        })
        .count() as u64;
    assert_eq!(s.road_segments, highway_ways);
    let bus_stops = c
        .entities
        .iter()
        .filter(|e| value(e, "osmTag") == Some(&json!("highway=bus_stop")))
        .count();
    assert!(bus_stops > 0);

    // Entity counts agree with the summary.
    let count = |t: &str| c.entities.iter().filter(|e| is_type(e, t)).count() as u64;
    assert_eq!(count("RoadSegment"), s.road_segments);
    assert_eq!(count("Building"), s.buildings);
    assert_eq!(count("PointOfInterest"), s.pois);
    assert_eq!(count("LandUse"), s.land_uses);
    assert_eq!(s.pois_by_category.values().sum::<u64>(), s.pois);
    let ids: HashSet<&str> = c.entities.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), c.entities.len(), "entity ids are unique");

    // The network is consistent: endpoints sent, positive lengths, lengths add up to the segments'.
    let nodes: HashSet<i64> = c.nodes.iter().map(|n| n.0).collect();
    assert_eq!(nodes.len() as u64, s.network_nodes);
    assert_eq!(c.links.len() as u64, s.road_links);
    for l in &c.links {
        assert!(
            nodes.contains(&l.from_node) && nodes.contains(&l.to_node),
            "{}",
            l.id()
        );
        assert!(l.coords.len() >= 2 && l.length_m >= 0.0 && l.free_flow_kmh > 0.0);
    }
    let link_len: f64 = c.links.iter().map(|l| l.length_m).sum();
    let linked: HashSet<String> = c
        .links
        .iter()
        .map(|l| format!("urn:ngsi-ld:RoadSegment:osm-way-{}", l.way_id))
        .collect();
    let seg_len: f64 = c
        .entities
        .iter()
        .filter(|e| linked.contains(&e.id))
        .filter_map(|e| value(e, "length"))
        .filter_map(Value::as_f64)
        .sum();
    assert!(
        (link_len - seg_len).abs() / seg_len < 0.01,
        "links {link_len} m vs segments {seg_len} m"
    );
    let drivable: HashSet<i64> = c
        .links
        .iter()
        .filter(|l| l.car.any())
        .map(|l| l.way_id)
        .collect();
    let walkable: HashSet<i64> = c
        .links
        .iter()
        .filter(|l| l.walk.any())
        .map(|l| l.way_id)
        .collect();
    let bikeable: HashSet<i64> = c
        .links
        .iter()
        .filter(|l| l.bike.any())
        .map(|l| l.way_id)
        .collect();
    let drivable_tagged = c
        .entities
        .iter()
        .filter(|e| is_type(e, "RoadSegment") && value(e, "totalLaneNumber").is_some())
        .filter(|e| value(e, "maximumAllowedSpeed").is_some())
        .count();
    println!(
        "drivable ways {}, with maxspeed {drivable_tagged}, walkable {}, bikeable {}",
        drivable.len(),
        walkable.len(),
        bikeable.len()
    );
    assert!(drivable.len() > 500 && walkable.len() > 1500 && bikeable.len() > 500);
    assert!(s.buildings > 400 && s.buildings_with_height > 100 && s.pois > 1000);

    // Known features, checked by hand against the file.
    let fabianinkatu = find(&c, "urn:ngsi-ld:RoadSegment:osm-way-4243036");
    assert_eq!(value(fabianinkatu, "name"), Some(&json!("Fabianinkatu")));
    assert_eq!(
        value(fabianinkatu, "roadClass"),
        Some(&json!("residential"))
    );
    assert_eq!(
        value(fabianinkatu, "maximumAllowedSpeed"),
        Some(&json!(30.0))
    );
    assert_eq!(value(fabianinkatu, "surface"), Some(&json!("cobblestone")));
    assert_eq!(value(fabianinkatu, "oneway"), Some(&json!(false)));
    let l = c.links.iter().find(|l| l.way_id == 4243036).unwrap();
    assert!(l.car.forward && l.car.backward && l.walk.forward && l.free_flow_kmh == 30.0);
    let ateneum = find(&c, "urn:ngsi-ld:Building:osm-way-8033120");
    assert_eq!(value(ateneum, "name"), Some(&json!("Ateneum")));
    assert_eq!(value(ateneum, "height"), Some(&json!(10.5)));
    assert_eq!(value(ateneum, "startDate"), Some(&json!("1887")));
    assert_eq!(value(ateneum, "category"), Some(&json!(["museum"])));
    assert_eq!(
        value(ateneum, "address").and_then(|a| a.get("streetAddress")),
        Some(&json!("Kaivokatu 2"))
    );
    assert_eq!(
        value(ateneum, "location").and_then(|g| g.get("type")),
        Some(&json!("Polygon"))
    );
    let kiasma = find(&c, "urn:ngsi-ld:Building:osm-way-8042215");
    assert_eq!(value(kiasma, "height"), Some(&json!(12.0)));
    assert_eq!(value(kiasma, "startDate"), Some(&json!("1998")));

    // Re-import is idempotent: same ids, same values.
    let (s2, c2) = collect(&path).unwrap();
    assert_eq!(s, s2);
    assert_eq!(c.links, c2.links);
    assert_eq!(
        c.entities.iter().map(|e| &e.id).collect::<Vec<_>>(),
        c2.entities.iter().map(|e| &e.id).collect::<Vec<_>>()
    );
}

#[test]
fn progress_is_reported() {
    let Some(dir) = data_dir() else { return };
    let seen = std::cell::Cell::new(0u64);
    let progress = |n: u64| {
        assert!(n >= seen.get());
        seen.set(n);
    };
    let o = OsmOptions {
        progress: Some(&progress),
        dataset: Some("urn:ngsi-ld:Dataset:osm".into()),
    };
    let mut first = None;
    let s = read_osm_with(&dir.join("osm/helsinki.osm.pbf"), &o, &mut |i| {
        if let (OsmItem::Entity(e), None) = (&i, &first) {
            first = Some(e.dataset.clone());
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(
        seen.get(),
        s.relations_read + 2 * s.ways_read + s.nodes_read
    );
    assert_eq!(first, Some(Some("urn:ngsi-ld:Dataset:osm".to_string())));
}

#[test]
fn truncated_and_corrupted_pbf_give_errors_not_panics() {
    let Some(dir) = data_dir() else { return };
    let bytes = std::fs::read(dir.join("osm/helsinki.osm.pbf")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let cut = tmp.path().join("cut.osm.pbf");
    for len in [bytes.len() / 2, bytes.len() - 1, 200] {
        std::fs::write(&cut, &bytes[..len]).unwrap();
        let err = collect(&cut)
            .map(|_| ())
            .expect_err("truncated file must fail");
        assert!(err.file.ends_with("cut.osm.pbf"), "{err}");
        assert!(err.location.starts_with("byte "), "{err}");
    }
    // Random byte flips (deterministic): any outcome but a panic is fine.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let flipped = tmp.path().join("flipped.osm.pbf");
    let mut failures = 0;
    for _ in 0..20 {
        let mut b = bytes.clone();
        for _ in 0..4 {
            let i = (next() % b.len() as u64) as usize;
            b[i] ^= 1 << (next() % 8);
        }
        std::fs::write(&flipped, &b).unwrap();
        if let Err(e) = collect(&flipped) {
            assert!(e.file.ends_with("flipped.osm.pbf"));
            failures += 1;
        }
    }
    println!("{failures}/20 corrupted copies rejected");
}

const FIXTURE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6" generator="hand">
  <bounds minlat="60.0" minlon="24.0" maxlat="60.01" maxlon="24.01"/>
  <node id="1" lat="60.0000" lon="24.0000"/>
  <node id="2" lat="60.0010" lon="24.0000"/>
  <node id="3" lat="60.0020" lon="24.0000"/>
  <node id="4" lat="60.0010" lon="24.0010"/>
  <node id="5" lat="60.0010" lon="23.9990"/>
  <node id="10" lat="60.0050" lon="24.0050"/>
  <node id="11" lat="60.0050" lon="24.0060"/>
  <node id="12" lat="60.0060" lon="24.0060"/>
  <node id="13" lat="60.0060" lon="24.0050"/>
  <node id="20" lat="60.0070" lon="24.0070"/>
  <node id="21" lat="60.0070" lon="24.0090"/>
  <node id="22" lat="60.0090" lon="24.0090"/>
  <node id="23" lat="60.0090" lon="24.0070"/>
  <node id="24" lat="60.0075" lon="24.0075"/>
  <node id="25" lat="60.0075" lon="24.0080"/>
  <node id="26" lat="60.0080" lon="24.0080"/>
  <node id="30" lat="60.0040" lon="24.0040">
    <tag k="amenity" v="cafe"/>
    <tag k="name" v="Kahvila &amp; Leipomo"/>
  </node>
  <node id="31" lat="60.0041" lon="24.0041">
    <tag k="amenity" v="bench"/>
  </node>
  <way id="100">
    <nd ref="1"/><nd ref="2"/><nd ref="3"/>
    <tag k="highway" v="primary"/>
    <tag k="name" v="Testikatu"/>
    <tag k="maxspeed" v="FI:urban"/>
    <tag k="lanes" v="4"/>
    <tag k="oneway" v="yes"/>
  </way>
  <way id="101">
    <nd ref="5"/><nd ref="2"/><nd ref="4"/>
    <tag k="highway" v="footway"/>
  </way>
  <way id="102">
    <nd ref="3"/><nd ref="99"/>
    <tag k="highway" v="residential"/>
  </way>
  <way id="200">
    <nd ref="10"/><nd ref="11"/><nd ref="12"/><nd ref="13"/><nd ref="10"/>
    <tag k="building" v="apartments"/>
    <tag k="height" v="12 m"/>
    <tag k="start_date" v="1930"/>
    <tag k="addr:street" v="Testikatu"/><tag k="addr:housenumber" v="5"/>
  </way>
  <way id="201"><nd ref="20"/><nd ref="21"/><nd ref="22"/></way>
  <way id="202"><nd ref="22"/><nd ref="23"/><nd ref="20"/></way>
  <way id="203"><nd ref="24"/><nd ref="25"/><nd ref="26"/><nd ref="24"/></way>
  <way id="204">
    <nd ref="10"/><nd ref="11"/><nd ref="12"/><nd ref="10"/>
    <tag k="landuse" v="grass"/>
  </way>
  <relation id="300">
    <member type="way" ref="201" role="outer"/>
    <member type="way" ref="202" role="outer"/>
    <member type="way" ref="203" role="inner"/>
    <tag k="type" v="multipolygon"/>
    <tag k="building" v="school"/>
    <tag k="amenity" v="school"/>
    <tag k="building:levels" v="2"/>
    <tag k="roof:levels" v="1"/>
  </relation>
</osm>
"#;

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::File::create(&p)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    p
}

#[test]
fn xml_fixture() {
    let tmp = tempfile::tempdir().unwrap();
    let (s, c) = collect(&write(tmp.path(), "small.osm", FIXTURE)).unwrap();
    assert_eq!(s.format, Some(OsmFormat::Xml));
    assert_eq!((s.nodes_read, s.ways_read, s.relations_read), (18, 8, 1));
    assert_eq!(
        (s.road_segments, s.buildings, s.land_uses, s.pois),
        (2, 2, 1, 2)
    );
    // Way 100 splits at node 2 (shared with the footway); way 102 has one node present only.
    assert_eq!(s.incomplete, 1);
    let links: Vec<_> = c
        .links
        .iter()
        .map(|l| (l.way_id, l.from_node, l.to_node))
        .collect();
    assert_eq!(
        links,
        vec![(100, 1, 2), (100, 2, 3), (101, 5, 2), (101, 2, 4)]
    );
    let main = &c.links[0];
    assert_eq!(main.free_flow_kmh, 50.0);
    assert_eq!(
        (main.lanes, main.lanes_forward, main.lanes_backward),
        (4, 4, 0)
    );
    assert_eq!(main.capacity_forward_vph, 4800.0);
    assert_eq!(main.capacity_backward_vph, 0.0);
    assert!(main.car.forward && !main.car.backward && main.walk.backward && !main.bike.backward);
    assert!((main.length_m - 111.2).abs() < 0.5, "{}", main.length_m);
    let foot = &c.links[2];
    assert!(!foot.car.any() && foot.walk.forward && foot.walk.backward && !foot.bike.any());
    assert_eq!(c.nodes.len(), 5);

    let seg = find(&c, "urn:ngsi-ld:RoadSegment:osm-way-100");
    assert_eq!(value(seg, "maximumAllowedSpeed"), Some(&json!(50.0)));
    assert_eq!(value(seg, "totalLaneNumber"), Some(&json!(4)));
    assert_eq!(value(seg, "oneway"), Some(&json!(true)));
    assert_eq!(
        value(seg, "allowedVehicleType"),
        Some(&json!(["car", "bicycle"]))
    );
    assert_eq!(
        seg.attrs[&Context::core().expand("name")][0]
            .provenance
            .channel
            .as_deref(),
        Some("import:osm")
    );

    let b = find(&c, "urn:ngsi-ld:Building:osm-way-200");
    assert_eq!(value(b, "height"), Some(&json!(12.0)));
    assert_eq!(value(b, "category"), Some(&json!(["apartments"])));
    assert_eq!(value(b, "startDate"), Some(&json!("1930")));
    assert_eq!(
        value(b, "address").and_then(|a| a.get("streetAddress")),
        Some(&json!("Testikatu 5"))
    );
    let school = find(&c, "urn:ngsi-ld:Building:osm-relation-300");
    assert_eq!(value(school, "height"), Some(&json!(9.0)));
    let g = value(school, "location").unwrap();
    assert_eq!(g["type"], json!("Polygon"));
    assert_eq!(
        g["coordinates"].as_array().unwrap().len(),
        2,
        "outer ring and one hole"
    );
    assert_eq!(g["coordinates"][0].as_array().unwrap().len(), 5);
    let poi = find(&c, "urn:ngsi-ld:PointOfInterest:osm-relation-300");
    assert_eq!(value(poi, "category"), Some(&json!(["school"])));
    assert_eq!(value(poi, "location").unwrap()["type"], json!("Point"));
    let cafe = find(&c, "urn:ngsi-ld:PointOfInterest:osm-node-30");
    assert_eq!(value(cafe, "name"), Some(&json!("Kahvila & Leipomo")));
    assert_eq!(value(cafe, "category"), Some(&json!(["restaurant_cafe"])));
    assert_eq!(
        value(cafe, "location"),
        Some(&json!({"type": "Point", "coordinates": [24.004, 60.004]}))
    );
    assert_eq!(s.pois_by_category.get("school"), Some(&1));
    let lu = find(&c, "urn:ngsi-ld:LandUse:osm-way-204");
    assert_eq!(value(lu, "category"), Some(&json!(["grass"])));
}

#[test]
fn malformed_xml_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        ("truncated", &FIXTURE[..FIXTURE.len() / 2]),
        (
            "mismatched",
            "<osm><node id=\"1\" lat=\"1\" lon=\"1\"></way></osm>",
        ),
        (
            "bad number",
            "<osm><node id=\"x\" lat=\"1\" lon=\"1\"/></osm>",
        ),
        (
            "bad lat",
            "<osm><node id=\"1\" lat=\"91\" lon=\"1\"/></osm>",
        ),
        ("missing lon", "<osm><node id=\"1\" lat=\"1\"/></osm>"),
        ("not osm", "<html><body/></html>"),
        (
            "unclosed attribute",
            "<osm><node id=\"1 lat=\"1\" lon=\"1\"/></osm>",
        ),
    ];
    for (name, text) in cases {
        let p = write(tmp.path(), "bad.osm", text);
        let err = collect(&p).map(|_| ()).expect_err(name);
        assert!(err.file.ends_with("bad.osm"), "{name}: {err}");
        assert!(
            !err.location.is_empty() || name == "not osm",
            "{name}: {err}"
        );
    }
    let p = write(tmp.path(), "garbage.bin", "\u{1}\u{2}garbage");
    assert!(collect(&p).is_err());
    let p = write(tmp.path(), "empty.osm", "");
    assert!(collect(&p).is_err());
}

/// Just enough protobuf to write small OSM PBF files by hand (uncompressed blobs) for the fuzz regressions.
mod pbf {
    fn varint(mut n: u64, out: &mut Vec<u8>) {
        while n >= 0x80 {
            out.push((n as u8) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    }

    /// A varint field (wire type 0).
    pub fn int(field: u32, n: u64) -> Vec<u8> {
        let mut out = Vec::new();
        varint(u64::from(field) << 3, &mut out);
        varint(n, &mut out);
        out
    }

    /// A length-delimited field (wire type 2).
    pub fn bytes(field: u32, b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        varint(u64::from(field) << 3 | 2, &mut out);
        varint(b.len() as u64, &mut out);
        out.extend_from_slice(b);
        out
    }

    /// A packed repeated varint field.
    pub fn packed(field: u32, values: &[u64]) -> Vec<u8> {
        let mut body = Vec::new();
        for v in values {
            varint(*v, &mut body);
        }
        bytes(field, &body)
    }

    /// Zigzag encoding of a sint64.
    pub fn zz(n: i64) -> u64 {
        ((n << 1) ^ (n >> 63)) as u64
    }

    fn blob(kind: &str, message: &[u8]) -> Vec<u8> {
        let body = bytes(1, message);
        let header = [bytes(1, kind.as_bytes()), int(3, body.len() as u64)].concat();
        [(header.len() as u32).to_be_bytes().to_vec(), header, body].concat()
    }

    /// A file: an OSMHeader blob, then one OSMData blob per PrimitiveBlock message.
    pub fn file(blocks: &[Vec<u8>]) -> Vec<u8> {
        let mut out = blob("OSMHeader", &bytes(4, b"OsmSchema-V0.6"));
        for b in blocks {
            out.extend(blob("OSMData", b));
        }
        out
    }

    /// A PrimitiveBlock with the given strings and one PrimitiveGroup.
    pub fn block(strings: &[&str], group: &[u8]) -> Vec<u8> {
        let table: Vec<u8> = strings
            .iter()
            .flat_map(|s| bytes(1, s.as_bytes()))
            .collect();
        [bytes(1, &table), bytes(2, group)].concat()
    }
}

fn read_bytes(data: &[u8]) -> Result<OsmSummary, ImportError> {
    read_osm_bytes(data, "mem.osm.pbf", &OsmOptions::default(), &mut |_| Ok(()))
}

#[test]
fn hand_written_pbf_reads_from_bytes() {
    // dense nodes 1 and 2, a residential way between them
    let dense = [
        pbf::packed(1, &[pbf::zz(1), pbf::zz(1)]),
        pbf::packed(8, &[pbf::zz(600_000_000), pbf::zz(10_000)]),
        pbf::packed(9, &[pbf::zz(240_000_000), pbf::zz(10_000)]),
    ]
    .concat();
    let way = [
        pbf::int(1, 100),
        pbf::packed(2, &[1]),
        pbf::packed(3, &[2]),
        pbf::packed(8, &[pbf::zz(1), pbf::zz(1)]),
    ]
    .concat();
    let data = pbf::file(&[
        pbf::block(&[""], &pbf::bytes(2, &dense)),
        pbf::block(&["", "highway", "residential"], &pbf::bytes(3, &way)),
    ]);
    let s = read_bytes(&data).unwrap();
    assert_eq!(s.format, Some(OsmFormat::Pbf));
    assert_eq!(
        (s.nodes_read, s.ways_read, s.road_segments, s.road_links),
        (2, 1, 1, 1)
    );
    // the same bytes from a file read the same
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("hand.osm.pbf");
    std::fs::write(&path, &data).unwrap();
    assert_eq!(collect(&path).unwrap().0, s);
}

/// Found by fuzzing (fuzz/regressions/osm_pbf/unknown-member-type.osm.pbf): a relation member of type 65 (not
/// node, way or relation) made osmpbf unwrap an unknown protobuf enum value and panic.
#[test]
fn unknown_relation_member_type_is_an_error() {
    let rel = [
        pbf::int(1, 300),
        pbf::packed(8, &[0]),
        pbf::packed(9, &[pbf::zz(201)]),
        pbf::packed(10, &[65]),
    ]
    .concat();
    let data = pbf::file(&[pbf::block(&[""], &pbf::bytes(4, &rel))]);
    let err = read_bytes(&data).unwrap_err();
    assert_eq!(err.file, "mem.osm.pbf");
    assert!(err.location.starts_with("byte "), "{err}");
    assert!(err.reason.starts_with("corrupt PBF block"), "{err}");
}
