//! OpenStreetMap (PBF or XML, told apart by content) into urbantwin's city: `RoadSegment`, `Building`,
//! `PointOfInterest` and `LandUse` entities, and the routable network as [`RoadLink`]s split at intersections.
//!
//! # Reading
//! [`read_osm`] streams the file in four passes (multipolygon relations, ways, nodes, ways again) so that only the
//! coordinates of nodes used by interesting ways are kept (a hash map of 1e-7° integers), plus the member ways of
//! interesting multipolygons. Every item goes to the caller's sink as soon as it is ready; a sink error stops the
//! import (that is how a caller cancels). Truncated or corrupt input gives an [`ImportError`] naming the file and a
//! position (`byte 1024` for PBF blocks and XML, `node 42` for bad coordinates); a PBF cut exactly at a block
//! boundary cannot be told from a complete file (the format has no footer). Nodes and ways referenced but absent from
//! an extract are skipped: links end at the gap, polygons with missing nodes are dropped and counted in
//! [`OsmSummary::incomplete`].
//!
//! # Entities (ids stable across re-imports)
//! | OSM | entity | id |
//! | --- | --- | --- |
//! | routable `highway` way | `RoadSegment`: name, roadClass (highway value), totalLaneNumber, maximumAllowedSpeed (km/h, only when tagged), oneway, width, surface, allowedVehicleType (`car`, `bicycle`), pedestrianAllowed, length (m), source, location LineString | `urn:ngsi-ld:RoadSegment:osm-way-<id>` |
//! | closed way / multipolygon with `building` | `Building`: name, category ([building value]), height (m), heightSource (`height` or `levels`), floorsAboveGround, startDate, address (PostalAddress), source, location Polygon/MultiPolygon | `urn:ngsi-ld:Building:osm-way-<id>` / `osm-relation-<id>` |
//! | node / way / multipolygon with a category below | `PointOfInterest`: name, category ([15-minute category]), osmTag (`amenity=school`), address, source, location Point (area centroid) | `urn:ngsi-ld:PointOfInterest:osm-node-<id>` ... |
//! | closed way / multipolygon with `landuse=*` or `leisure=park` | `LandUse`: name, category ([landuse value] or `park`), source, location Polygon/MultiPolygon | `urn:ngsi-ld:LandUse:osm-way-<id>` ... |
//!
//! Heights: `height` (`"12"`, `"12.5 m"`, `"40 ft"`) wins; else (`building:levels` + `roof:levels`) × 3 m.
//!
//! # 15-minute-city categories (first matching key wins, in this order)
//! | category | tags |
//! | --- | --- |
//! | pharmacy | amenity=pharmacy, healthcare=pharmacy, shop=chemist + dispensing=yes |
//! | school | amenity=school, college, university, music_school, language_school |
//! | childcare | amenity=kindergarten, childcare |
//! | healthcare | amenity=hospital, clinic, doctors, dentist, health_post, nursing_home; any other healthcare=* |
//! | restaurant_cafe | amenity=restaurant, cafe, fast_food, bar, pub, food_court, ice_cream, biergarten |
//! | culture | amenity=library, theatre, cinema, arts_centre, community_centre, place_of_worship, concert_hall, events_venue, planetarium, exhibition_centre; tourism=museum, gallery, attraction, artwork, zoo, aquarium, theme_park, viewpoint |
//! | grocery | shop=supermarket, convenience, greengrocer, bakery, butcher, grocery, deli, seafood, cheese, dairy, health_food, food, pastry, farm, frozen_food; amenity=marketplace |
//! | other_shop | any other shop=* (not `no`/`vacant`/`disused`) |
//! | public_transport_stop | highway=bus_stop; railway=station, halt, tram_stop, subway_entrance; public_transport=platform, stop_position, station; amenity=bus_station, ferry_terminal |
//! | park | leisure=park, garden, playground, dog_park, nature_reserve |
//! | sport | leisure=sports_centre, pitch, fitness_centre, swimming_pool, stadium, track, ice_rink, sports_hall, fitness_station, golf_course, swimming_area, water_park, climbing |
//! | services | amenity=post_office, bank, atm, townhall, police, fire_station, courthouse, social_facility, social_centre, veterinary, post_box, toilets, bicycle_rental, car_sharing, charging_station, fuel, car_wash, driving_school, recycling, public_bookcase, internet_cafe, nightclub, casino, coworking_space, luggage_locker; tourism=hotel, hostel, guest_house, motel, apartment; office=government, employment_agency, diplomatic, educational_institution |
//!
//! Street furniture (benches, waste baskets, parking, vending machines...) is not a point of interest.
//!
//! # Network
//! One [`RoadLink`] per stretch of a routable way between nodes used by two or more ways (or twice by one) and way
//! ends; each link endpoint is sent once as [`OsmItem::Node`] before the first link that uses it. Defaults when tags
//! are missing (free-flow = `maxspeed` parsed as km/h — `"50"`, `"30 mph"`, `"FI:urban"` = 50, `FI:rural` = 80,
//! `FI:motorway` = 120, `FI:living_street` = 20, `walk` = 7, other countries in `tags::ZONE_SPEEDS` — else):
//!
//! | highway | free-flow km/h | lanes per direction | capacity veh/h/lane |
//! | --- | --- | --- | --- |
//! | motorway / _link | 120 / 70 | 2 / 1 | 2000 / 1500 |
//! | trunk / _link | 80 / 60 | 1 (2 when one-way) / 1 | 1800 / 1500 |
//! | primary / _link | 50 / 40 | 1 | 1200 / 1000 |
//! | secondary / _link | 50 / 40 | 1 | 1000 / 900 |
//! | tertiary / _link | 50 / 40 | 1 | 800 / 700 |
//! | unclassified, residential, road, busway | 50 | 1 | 600, 500, 500, 500 |
//! | living_street / service / track | 20 | 1 | 300 / 300 / 200 |
//! | footway, path, cycleway, pedestrian, steps, bridleway, corridor | 10 | 1 | 100 |
//!
//! Lanes come from `lanes`, `lanes:forward`, `lanes:backward`; capacity of a direction = per-lane capacity × its
//! lanes, 0 where cars may not drive. Modes: **car** on motorway…residential, living_street, service, road unless
//! `motorcar`/`motor_vehicle`/`vehicle`/`access` (most specific first) say no/private/agricultural/forestry/
//! emergency; **walk** everywhere except motorways, trunks and busways unless `foot`/`access` say otherwise (never on
//! motorways), both directions always; **bike** everywhere except motorways and footway/pedestrian/steps/corridor/
//! bridleway unless `bicycle=yes|designated|permissive`; `bicycle=no|dismount|use_sidepath` closes. One-way:
//! `oneway=yes|true|1` forward, `-1|reverse` backward, `junction=roundabout|circular` and motorways imply forward;
//! bikes follow it unless `oneway:bicycle=no` or a `cycleway*=opposite*` tag. `oneway=reversible` counts as two-way.

mod geom;
mod source;
pub mod tags;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use twin_model::{Context, Entity, Provenance};

use crate::ImportError;
use geom::{
    assemble_rings, group_polygons, haversine_m, line_centroid, polygons_centroid, polygons_json,
};
pub use source::OsmFormat;
use source::{Element, Input, MemberKind, Tags, Want};

/// Directions of travel allowed to one mode, along the way's node order (forward) or against it (backward).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Access {
    pub forward: bool,
    pub backward: bool,
}

impl Access {
    pub fn any(self) -> bool {
        self.forward || self.backward
    }
}

/// One stretch of a routable way between two network nodes (intersections or way ends).
#[derive(Debug, Clone, PartialEq)]
pub struct RoadLink {
    pub way_id: i64,
    /// Position of the stretch along its way, from 0.
    pub seq: u32,
    pub from_node: i64,
    pub to_node: i64,
    /// (lon, lat) in WGS84 degrees, from `from_node` to `to_node`.
    pub coords: Vec<(f64, f64)>,
    /// Haversine length in metres.
    pub length_m: f64,
    /// The `highway` value.
    pub highway: String,
    pub name: Option<String>,
    pub lanes: u32,
    pub lanes_forward: u32,
    pub lanes_backward: u32,
    /// `maxspeed` as tagged (km/h), when readable.
    pub maxspeed_kmh: Option<f64>,
    /// Car free-flow speed: the tagged limit or the class default.
    pub free_flow_kmh: f64,
    pub capacity_forward_vph: f64,
    pub capacity_backward_vph: f64,
    pub car: Access,
    pub walk: Access,
    pub bike: Access,
}

impl RoadLink {
    /// A stable identifier: `osm-way-<way>-<seq>`.
    pub fn id(&self) -> String {
        format!("osm-way-{}-{}", self.way_id, self.seq)
    }

    /// The link as a `RoadLink` entity, so the routable network lives in the store with the rest of the city:
    /// end nodes, length, car free-flow speed and capacity per direction, access per mode and direction, the
    /// geometry, and `refRoadSegment` to the way it belongs to.
    pub fn to_entity(
        &self,
        now: DateTime<Utc>,
        prov: &Provenance,
    ) -> Result<Entity, twin_model::NgsiError> {
        let p = |v: Value| json!({"type": "Property", "value": v});
        let access = |a: Access| json!({"forward": a.forward, "backward": a.backward});
        let mut m = Map::new();
        m.insert(
            "id".into(),
            json!(format!("urn:ngsi-ld:RoadLink:{}", self.id())),
        );
        m.insert("type".into(), json!("RoadLink"));
        m.insert("startNode".into(), p(json!(self.from_node)));
        m.insert("endNode".into(), p(json!(self.to_node)));
        m.insert(
            "length".into(),
            json!({"type": "Property", "value": self.length_m, "unitCode": "MTR"}),
        );
        m.insert("roadClass".into(), p(json!(self.highway)));
        if let Some(n) = &self.name {
            m.insert("name".into(), p(json!(n)));
        }
        m.insert("totalLaneNumber".into(), p(json!(self.lanes)));
        m.insert("lanesForward".into(), p(json!(self.lanes_forward)));
        m.insert("lanesBackward".into(), p(json!(self.lanes_backward)));
        if let Some(v) = self.maxspeed_kmh {
            m.insert(
                "maximumAllowedSpeed".into(),
                json!({"type": "Property", "value": v, "unitCode": "KMH"}),
            );
        }
        m.insert(
            "freeFlowSpeed".into(),
            json!({"type": "Property", "value": self.free_flow_kmh, "unitCode": "KMH"}),
        );
        m.insert(
            "capacityForward".into(),
            json!({"type": "Property", "value": self.capacity_forward_vph, "unitCode": "E50"}),
        );
        m.insert(
            "capacityBackward".into(),
            json!({"type": "Property", "value": self.capacity_backward_vph, "unitCode": "E50"}),
        );
        m.insert("carAccess".into(), p(access(self.car)));
        m.insert("walkAccess".into(), p(access(self.walk)));
        m.insert("bikeAccess".into(), p(access(self.bike)));
        m.insert(
            "refRoadSegment".into(),
            json!({"type": "Relationship", "object": format!("urn:ngsi-ld:RoadSegment:osm-way-{}", self.way_id)}),
        );
        let coords: Vec<Value> = self.coords.iter().map(|(x, y)| json!([x, y])).collect();
        m.insert(
            "location".into(),
            json!({"type": "GeoProperty", "value": {"type": "LineString", "coordinates": coords}}),
        );
        twin_model::ngsi::parse_entity(&Value::Object(m), &Context::core(), now, prov)
    }
}

/// What the reader hands to its sink.
#[derive(Debug, Clone, PartialEq)]
pub enum OsmItem {
    Entity(Entity),
    Link(RoadLink),
    /// A network node: OSM node id, lon, lat (sent before the first link that uses it).
    Node(i64, f64, f64),
}

/// What one import read and produced.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct OsmSummary {
    pub format: Option<OsmFormat>,
    pub nodes_read: u64,
    pub ways_read: u64,
    pub relations_read: u64,
    pub road_segments: u64,
    pub road_links: u64,
    pub network_nodes: u64,
    pub buildings: u64,
    /// Buildings whose height came from `height` or from levels.
    pub buildings_with_height: u64,
    pub pois: u64,
    pub pois_by_category: BTreeMap<String, u64>,
    pub land_uses: u64,
    /// Features dropped because their geometry was incomplete in the file (missing nodes or member ways).
    pub incomplete: u64,
}

/// Options of [`read_osm_with`].
#[derive(Default)]
pub struct OsmOptions<'a> {
    /// Called with the number of elements read so far (over all passes) every 10,000 elements and after each pass.
    pub progress: Option<&'a dyn Fn(u64)>,
    /// The urbantwin dataset the entities belong to.
    pub dataset: Option<String>,
}

/// Reads an OSM PBF or XML file, sending every entity, network node and link to `sink`.
pub fn read_osm(
    path: &Path,
    sink: &mut dyn FnMut(OsmItem) -> Result<(), ImportError>,
) -> Result<OsmSummary, ImportError> {
    read_osm_with(path, &OsmOptions::default(), sink)
}

/// [`read_osm`] with a progress callback and a dataset.
pub fn read_osm_with(
    path: &Path,
    options: &OsmOptions<'_>,
    sink: &mut dyn FnMut(OsmItem) -> Result<(), ImportError>,
) -> Result<OsmSummary, ImportError> {
    read(Input::File(path), path.display().to_string(), options, sink)
}

/// [`read_osm_with`] over OSM PBF or XML held in memory; `file_name` names it in errors.
pub fn read_osm_bytes(
    data: &[u8],
    file_name: &str,
    options: &OsmOptions<'_>,
    sink: &mut dyn FnMut(OsmItem) -> Result<(), ImportError>,
) -> Result<OsmSummary, ImportError> {
    read(Input::Bytes(data), file_name.to_string(), options, sink)
}

fn read(
    input: Input<'_>,
    file: String,
    options: &OsmOptions<'_>,
    sink: &mut dyn FnMut(OsmItem) -> Result<(), ImportError>,
) -> Result<OsmSummary, ImportError> {
    let mut r = Reader {
        file,
        now: Utc::now(),
        prov: Provenance {
            dataset: options.dataset.clone(),
            source: None,
            channel: Some("import:osm".into()),
        },
        progress: options.progress,
        read: 0,
        next_report: 10_000,
        summary: OsmSummary::default(),
        rels: Vec::new(),
        member_ways: HashSet::new(),
        member_refs: HashMap::new(),
        needed: HashSet::new(),
        uses: HashMap::new(),
        coords: HashMap::new(),
        sent_nodes: HashSet::new(),
    };
    let format = source::detect(input, &r.file)?;
    r.summary.format = Some(format);
    r.run(input, format, sink)?;
    Ok(r.summary)
}

/// A multipolygon relation worth building.
struct Rel {
    id: i64,
    tags: Tags,
    outer: Vec<i64>,
    inner: Vec<i64>,
}

struct Reader<'a> {
    file: String,
    now: DateTime<Utc>,
    prov: Provenance,
    progress: Option<&'a dyn Fn(u64)>,
    read: u64,
    next_report: u64,
    summary: OsmSummary,
    rels: Vec<Rel>,
    member_ways: HashSet<i64>,
    member_refs: HashMap<i64, Vec<i64>>,
    /// Nodes whose coordinates are needed.
    needed: HashSet<i64>,
    /// How often routable ways use a node (way ends count twice); ≥ 2 makes a network node.
    uses: HashMap<i64, u8>,
    coords: HashMap<i64, (i32, i32)>,
    sent_nodes: HashSet<i64>,
}

fn is_routable(tags: &Tags) -> bool {
    tags.get("highway").is_some_and(tags::is_routable) && !tags.is("area", "yes")
}

fn is_building(tags: &Tags) -> bool {
    tags.get("building").is_some_and(|b| b != "no")
}

fn is_land_use(tags: &Tags) -> bool {
    tags.get("landuse").is_some() || tags.is("leisure", "park")
}

fn is_area_feature(tags: &Tags) -> bool {
    is_building(tags) || is_land_use(tags) || tags::poi_category(tags).is_some()
}

fn closed(refs: &[i64]) -> bool {
    refs.len() >= 4 && refs.first() == refs.last()
}

fn prop(v: impl Into<Value>) -> Value {
    json!({"type": "Property", "value": v.into()})
}

fn prop_unit(v: f64, unit: &str) -> Value {
    json!({"type": "Property", "value": (v * 100.0).round() / 100.0, "unitCode": unit})
}

fn address(tags: &Tags) -> Option<Value> {
    let mut a = Map::new();
    let street = match (tags.get("addr:street"), tags.get("addr:housenumber")) {
        (Some(s), Some(n)) => Some(format!("{s} {n}")),
        (Some(s), None) => Some(s.to_string()),
        _ => None,
    };
    if let Some(s) = street {
        a.insert("streetAddress".into(), s.into());
    }
    for (k, key) in [
        ("addr:postcode", "postalCode"),
        ("addr:city", "addressLocality"),
        ("addr:country", "addressCountry"),
    ] {
        if let Some(v) = tags.get(k) {
            a.insert(key.into(), v.into());
        }
    }
    (!a.is_empty()).then(|| prop(Value::Object(a)))
}

impl Reader<'_> {
    fn tick(&mut self) {
        self.read += 1;
        if self.read >= self.next_report {
            self.next_report += 10_000;
            if let Some(p) = self.progress {
                p(self.read);
            }
        }
    }

    fn end_pass(&self) {
        if let Some(p) = self.progress {
            p(self.read);
        }
    }

    fn lonlat(&self, id: i64) -> Option<(f64, f64)> {
        self.coords
            .get(&id)
            .map(|&(x, y)| (f64::from(x) / 1e7, f64::from(y) / 1e7))
    }

    fn run(
        &mut self,
        input: Input<'_>,
        format: OsmFormat,
        sink: &mut dyn FnMut(OsmItem) -> Result<(), ImportError>,
    ) -> Result<(), ImportError> {
        let file = self.file.clone();
        let only = |nodes, ways, relations| Want {
            nodes,
            ways,
            relations,
        };

        let mut kinds = source::BlockKinds::default();
        // Pass 1: multipolygon relations that make buildings, land use or points of interest.
        source::scan(
            input,
            &file,
            format,
            only(false, false, true),
            &mut kinds,
            &mut |e| {
                if let Element::Relation { id, members, tags } = e {
                    self.tick();
                    self.summary.relations_read += 1;
                    if tags.is("type", "multipolygon") && is_area_feature(&tags) {
                        let mut rel = Rel {
                            id,
                            tags,
                            outer: Vec::new(),
                            inner: Vec::new(),
                        };
                        for m in members.iter().filter(|m| m.kind == MemberKind::Way) {
                            match m.role.as_str() {
                                "inner" => rel.inner.push(m.id),
                                "outer" | "" => rel.outer.push(m.id),
                                _ => continue,
                            }
                            self.member_ways.insert(m.id);
                        }
                        self.rels.push(rel);
                    }
                }
                Ok(())
            },
        )?;
        self.end_pass();

        // Pass 2: ways — which nodes are needed, which are shared (intersections).
        source::scan(
            input,
            &file,
            format,
            only(false, true, false),
            &mut kinds,
            &mut |e| {
                if let Element::Way { id, refs, tags } = e {
                    self.tick();
                    self.summary.ways_read += 1;
                    let routable = is_routable(&tags) && refs.len() >= 2;
                    if routable {
                        for (i, r) in refs.iter().enumerate() {
                            let add = if i == 0 || i + 1 == refs.len() { 2 } else { 1 };
                            let u = self.uses.entry(*r).or_insert(0);
                            *u = u.saturating_add(add);
                        }
                    }
                    let member = self.member_ways.contains(&id);
                    if routable || member || (is_area_feature(&tags) && !refs.is_empty()) {
                        self.needed.extend(refs.iter().copied());
                    }
                    if member {
                        self.member_refs.insert(id, refs);
                    }
                }
                Ok(())
            },
        )?;
        self.end_pass();

        // Pass 3: nodes — keep needed coordinates, send points of interest.
        source::scan(
            input,
            &file,
            format,
            only(true, false, false),
            &mut kinds,
            &mut |e| {
                if let Element::Node {
                    id,
                    lon7,
                    lat7,
                    tags,
                } = e
                {
                    self.tick();
                    self.summary.nodes_read += 1;
                    if self.needed.contains(&id) {
                        self.coords.insert(id, (lon7, lat7));
                    }
                    if !tags.is_empty() {
                        let p = (f64::from(lon7) / 1e7, f64::from(lat7) / 1e7);
                        if let Some(e) = self.poi(&tags, "node", id, p)? {
                            sink(OsmItem::Entity(e))?;
                        }
                    }
                }
                Ok(())
            },
        )?;
        self.needed = HashSet::new();
        self.end_pass();

        // Pass 4: ways — road segments, links, buildings, land use, area POIs.
        source::scan(
            input,
            &file,
            format,
            only(false, true, false),
            &mut kinds,
            &mut |e| {
                if let Element::Way { id, refs, tags } = e {
                    self.tick();
                    self.way(id, &refs, &tags, sink)?;
                }
                Ok(())
            },
        )?;
        self.end_pass();

        // Multipolygons, from the member ways kept in pass 2.
        for rel in std::mem::take(&mut self.rels) {
            self.relation(&rel, sink)?;
        }
        Ok(())
    }

    fn entity(
        &self,
        id: String,
        ty: &str,
        mut attrs: Map<String, Value>,
        at: &str,
    ) -> Result<Entity, ImportError> {
        attrs.insert("id".into(), id.into());
        attrs.insert("type".into(), ty.into());
        twin_model::ngsi::parse_entity(
            &Value::Object(attrs),
            &Context::core(),
            self.now,
            &self.prov,
        )
        .map_err(|e| ImportError::new(&self.file, at, format!("cannot build {ty}: {e}")))
    }

    fn common(&self, tags: &Tags, kind: &str, id: i64) -> Map<String, Value> {
        let mut a = Map::new();
        if let Some(n) = tags.get("name") {
            a.insert("name".into(), prop(n));
        }
        a.insert(
            "source".into(),
            prop(format!("https://www.openstreetmap.org/{kind}/{id}")),
        );
        a
    }

    fn poi(
        &mut self,
        tags: &Tags,
        kind: &str,
        id: i64,
        p: (f64, f64),
    ) -> Result<Option<Entity>, ImportError> {
        let Some((cat, tag)) = tags::poi_category(tags) else {
            return Ok(None);
        };
        let mut a = self.common(tags, kind, id);
        a.insert("category".into(), prop(json!([cat])));
        a.insert("osmTag".into(), prop(tag));
        if let Some(ad) = address(tags) {
            a.insert("address".into(), ad);
        }
        a.insert(
            "location".into(),
            json!({"type": "GeoProperty", "value": geom::point_json(p)}),
        );
        let e = self.entity(
            format!("urn:ngsi-ld:PointOfInterest:osm-{kind}-{id}"),
            "PointOfInterest",
            a,
            &format!("{kind} {id}"),
        )?;
        self.summary.pois += 1;
        *self
            .summary
            .pois_by_category
            .entry(cat.to_string())
            .or_insert(0) += 1;
        Ok(Some(e))
    }

    /// Building, land use and area POI entities for one polygon feature.
    fn areas(
        &mut self,
        tags: &Tags,
        kind: &str,
        id: i64,
        polys: &[Vec<Vec<(f64, f64)>>],
        sink: &mut dyn FnMut(OsmItem) -> Result<(), ImportError>,
    ) -> Result<(), ImportError> {
        let at = format!("{kind} {id}");
        let location = json!({"type": "GeoProperty", "value": polygons_json(polys)});
        if is_building(tags) {
            let mut a = self.common(tags, kind, id);
            a.insert(
                "category".into(),
                prop(json!([tags.get("building").unwrap_or("yes")])),
            );
            if let Some((h, how)) = tags::building_height(tags) {
                a.insert("height".into(), prop_unit(h, "MTR"));
                a.insert("heightSource".into(), prop(how));
                self.summary.buildings_with_height += 1;
            }
            if let Some(l) = tags.get("building:levels").and_then(tags::parse_count) {
                a.insert("floorsAboveGround".into(), prop(l));
            }
            if let Some(d) = tags.get("start_date") {
                a.insert("startDate".into(), prop(d));
            }
            if let Some(ad) = address(tags) {
                a.insert("address".into(), ad);
            }
            a.insert("location".into(), location.clone());
            let e = self.entity(
                format!("urn:ngsi-ld:Building:osm-{kind}-{id}"),
                "Building",
                a,
                &at,
            )?;
            self.summary.buildings += 1;
            sink(OsmItem::Entity(e))?;
        }
        if is_land_use(tags) {
            let mut a = self.common(tags, kind, id);
            let cat = tags.get("landuse").unwrap_or("park");
            a.insert("category".into(), prop(json!([cat])));
            a.insert("location".into(), location);
            let e = self.entity(
                format!("urn:ngsi-ld:LandUse:osm-{kind}-{id}"),
                "LandUse",
                a,
                &at,
            )?;
            self.summary.land_uses += 1;
            sink(OsmItem::Entity(e))?;
        }
        if let Some(c) = polygons_centroid(polys) {
            if let Some(e) = self.poi(tags, kind, id, c)? {
                sink(OsmItem::Entity(e))?;
            }
        }
        Ok(())
    }

    fn way(
        &mut self,
        id: i64,
        refs: &[i64],
        tags: &Tags,
        sink: &mut dyn FnMut(OsmItem) -> Result<(), ImportError>,
    ) -> Result<(), ImportError> {
        if is_routable(tags) && refs.len() >= 2 {
            self.road(id, refs, tags, sink)?;
        }
        if !is_area_feature(tags) {
            return Ok(());
        }
        let pts: Option<Vec<(f64, f64)>> = refs.iter().map(|r| self.lonlat(*r)).collect();
        let Some(pts) = pts.filter(|p| !p.is_empty()) else {
            self.summary.incomplete += 1;
            return Ok(());
        };
        if closed(refs) {
            self.areas(tags, "way", id, &[vec![pts]], sink)?;
        } else if let Some(c) = line_centroid(&pts).or(pts.first().copied()) {
            // An open way can still be a point of interest (platforms, ...).
            if let Some(e) = self.poi(tags, "way", id, c)? {
                sink(OsmItem::Entity(e))?;
            }
        }
        Ok(())
    }

    fn road(
        &mut self,
        id: i64,
        refs: &[i64],
        tags: &Tags,
        sink: &mut dyn FnMut(OsmItem) -> Result<(), ImportError>,
    ) -> Result<(), ImportError> {
        let hw = tags.get("highway").unwrap_or("road").to_string();
        let (car, walk, bike) = tags::modes(tags);
        let (lanes, lanes_fwd, lanes_bwd) = tags::lanes(tags, car);
        let maxspeed = tags.get("maxspeed").and_then(tags::parse_maxspeed);
        let (default_speed, _, per_lane) = tags::class_defaults(&hw);
        let name = tags.get("name").map(str::to_string);

        // The road segment entity, over the nodes present in the file.
        let mut refs: Vec<i64> = refs.to_vec();
        refs.dedup();
        let pts: Vec<(f64, f64)> = refs.iter().filter_map(|r| self.lonlat(*r)).collect();
        if pts.len() < 2 {
            self.summary.incomplete += 1;
            return Ok(());
        }
        let mut a = self.common(tags, "way", id);
        a.insert("roadClass".into(), prop(hw.as_str()));
        if car.any() {
            a.insert("totalLaneNumber".into(), prop(lanes));
        }
        if let Some(s) = maxspeed {
            a.insert("maximumAllowedSpeed".into(), prop_unit(s, "KMH"));
        }
        a.insert(
            "oneway".into(),
            prop(car.any() && car.forward != car.backward),
        );
        if let Some(w) = tags.get("width").and_then(tags::parse_length) {
            a.insert("width".into(), prop_unit(w, "MTR"));
        }
        if let Some(s) = tags.get("surface") {
            a.insert("surface".into(), prop(s));
        }
        let mut vehicles = Vec::new();
        if car.any() {
            vehicles.push("car");
        }
        if bike.any() {
            vehicles.push("bicycle");
        }
        a.insert("allowedVehicleType".into(), prop(json!(vehicles)));
        a.insert("pedestrianAllowed".into(), prop(walk.any()));
        a.insert(
            "length".into(),
            prop_unit(geom::polyline_length_m(&pts), "MTR"),
        );
        a.insert(
            "location".into(),
            json!({"type": "GeoProperty", "value": geom::linestring_json(&pts)}),
        );
        let e = self.entity(
            format!("urn:ngsi-ld:RoadSegment:osm-way-{id}"),
            "RoadSegment",
            a,
            &format!("way {id}"),
        )?;
        self.summary.road_segments += 1;
        sink(OsmItem::Entity(e))?;

        if !(car.any() || walk.any() || bike.any()) {
            return Ok(());
        }
        // Links: split at network nodes and at nodes missing from the file.
        let template = RoadLink {
            way_id: id,
            seq: 0,
            from_node: 0,
            to_node: 0,
            coords: Vec::new(),
            length_m: 0.0,
            highway: hw.clone(),
            name,
            lanes,
            lanes_forward: lanes_fwd,
            lanes_backward: lanes_bwd,
            maxspeed_kmh: maxspeed,
            free_flow_kmh: maxspeed.unwrap_or(default_speed),
            capacity_forward_vph: if car.forward {
                per_lane * f64::from(lanes_fwd.max(1))
            } else {
                0.0
            },
            capacity_backward_vph: if car.backward {
                per_lane * f64::from(lanes_bwd.max(1))
            } else {
                0.0
            },
            car,
            walk,
            bike,
        };
        let mut seq = 0u32;
        let mut current: Vec<(i64, (f64, f64))> = Vec::new();
        for (i, r) in refs.iter().enumerate() {
            let Some(p) = self.lonlat(*r) else {
                self.emit_link(&template, &mut seq, &mut current, sink)?;
                current.clear();
                continue;
            };
            current.push((*r, p));
            let split = i + 1 == refs.len() || self.uses.get(r).copied().unwrap_or(0) >= 2;
            if split && current.len() >= 2 {
                self.emit_link(&template, &mut seq, &mut current, sink)?;
                current = vec![(*r, p)];
            }
        }
        self.emit_link(&template, &mut seq, &mut current, sink)
    }

    fn emit_link(
        &mut self,
        template: &RoadLink,
        seq: &mut u32,
        current: &mut Vec<(i64, (f64, f64))>,
        sink: &mut dyn FnMut(OsmItem) -> Result<(), ImportError>,
    ) -> Result<(), ImportError> {
        if current.len() < 2 {
            return Ok(());
        }
        let (first, last) = (current[0], current[current.len() - 1]);
        for (n, p) in [first, last] {
            if self.sent_nodes.insert(n) {
                self.summary.network_nodes += 1;
                sink(OsmItem::Node(n, p.0, p.1))?;
            }
        }
        let coords: Vec<(f64, f64)> = current.iter().map(|c| c.1).collect();
        let length_m = coords.windows(2).map(|w| haversine_m(w[0], w[1])).sum();
        let link = RoadLink {
            seq: *seq,
            from_node: first.0,
            to_node: last.0,
            coords,
            length_m,
            ..template.clone()
        };
        *seq += 1;
        current.clear();
        self.summary.road_links += 1;
        sink(OsmItem::Link(link))
    }

    fn relation(
        &mut self,
        rel: &Rel,
        sink: &mut dyn FnMut(OsmItem) -> Result<(), ImportError>,
    ) -> Result<(), ImportError> {
        let parts = |ids: &[i64]| -> Option<Vec<Vec<i64>>> {
            ids.iter()
                .map(|w| self.member_refs.get(w).cloned())
                .collect()
        };
        let (Some(outer), Some(inner)) = (parts(&rel.outer), parts(&rel.inner)) else {
            self.summary.incomplete += 1;
            return Ok(());
        };
        let (outer, dropped_o) = assemble_rings(outer);
        let (inner, dropped_i) = assemble_rings(inner);
        let coords = |rings: Vec<Vec<i64>>| -> Option<Vec<Vec<(f64, f64)>>> {
            rings
                .iter()
                .map(|r| r.iter().map(|n| self.lonlat(*n)).collect())
                .collect()
        };
        let (Some(outer), Some(inner)) = (coords(outer), coords(inner)) else {
            self.summary.incomplete += 1;
            return Ok(());
        };
        if outer.is_empty() || dropped_o || dropped_i {
            self.summary.incomplete += 1;
            return Ok(());
        }
        let polys = group_polygons(outer, inner);
        self.areas(&rel.tags, "relation", rel.id, &polys, sink)
    }
}
