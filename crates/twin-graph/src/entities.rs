//! The street network from `RoadLink` entities, as the OpenStreetMap importer stores them in the hub, so that models
//! read the network through the same data as every other app (and see a scenario's edits to it).
//!
//! A `RoadLink` entity gives `startNode`, `endNode` (OSM node ids), `length` (m), `freeFlowSpeed` (km/h, cars),
//! `capacityForward` / `capacityBackward` (veh/h), `lanesForward` / `lanesBackward`, `carAccess`, `walkAccess`,
//! `bikeAccess` (`{"forward": bool, "backward": bool}`) and `location` (a LineString from start to end node). Each
//! becomes up to two directed links: forward with the modes allowed forward, backward with those allowed backward; a
//! link no mode may use either way (a private yard) becomes both, with no mode, for a scenario to open.

use std::collections::HashMap;

use serde_json::Value;
use twin_model::entity::iri;
use twin_model::Entity;

use crate::{GraphError, LinkSpec, Mode, ModeSet, Network};

const V: &str = iri::DEFAULT_CONTEXT;

fn value<'a>(e: &'a Entity, name: &str) -> Option<&'a Value> {
    let full = format!("{V}{name}");
    let instances = e.attrs.get(&full)?;
    instances
        .iter()
        .find(|a| a.dataset_id.is_none())
        .or(instances.first())
        .map(|a| &a.value)
}

fn number(e: &Entity, name: &str) -> Result<f64, String> {
    value(e, name)
        .and_then(Value::as_f64)
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("no numeric {name}"))
}

fn access(e: &Entity, name: &str) -> (bool, bool) {
    let v = value(e, name);
    let side = |k: &str| {
        v.and_then(|v| v.get(k))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    (side("forward"), side("backward"))
}

/// A node id and its (lon, lat).
pub type NodeAt = (u64, (f64, f64));

/// The links (and their end nodes with coordinates) of one `RoadLink` entity; an error names what is missing.
pub fn links_of(e: &Entity) -> Result<(Vec<LinkSpec>, [NodeAt; 2]), String> {
    let start = number(e, "startNode")?;
    let end = number(e, "endNode")?;
    if start < 0.0 || end < 0.0 || start.fract() != 0.0 || end.fract() != 0.0 {
        return Err("startNode and endNode must be whole non-negative numbers".into());
    }
    let (from, to) = (start as u64, end as u64);
    let length = number(e, "length")?;
    let speed = number(e, "freeFlowSpeed")?;
    // (numbers are finite here)
    if length < 0.0 || speed <= 0.0 {
        return Err(format!(
            "length {length} m and free-flow speed {speed} km/h must be ≥ 0 and > 0"
        ));
    }
    let coords: Vec<(f64, f64)> = e
        .geometries(iri::LOCATION)
        .next()
        .filter(|g| g.get("type").and_then(Value::as_str) == Some("LineString"))
        .and_then(|g| g.get("coordinates"))
        .and_then(Value::as_array)
        .map(|pts| {
            pts.iter()
                .filter_map(|p| Some((p.get(0)?.as_f64()?, p.get(1)?.as_f64()?)))
                .collect()
        })
        .unwrap_or_default();
    if coords.len() < 2 {
        return Err("location is not a LineString of at least two points".into());
    }
    let seconds = length / (speed / 3.6);
    let (car, walk, bike) = (
        access(e, "carAccess"),
        access(e, "walkAccess"),
        access(e, "bikeAccess"),
    );
    let modes = |pick: fn((bool, bool)) -> bool| {
        let mut m = ModeSet::EMPTY;
        for (mode, a) in [(Mode::Car, car), (Mode::Walk, walk), (Mode::Bike, bike)] {
            if pick(a) {
                m = m.with(mode);
            }
        }
        m
    };
    let (fwd, bwd) = (modes(|a| a.0), modes(|a| a.1));
    // a path nobody may use (a private yard, a closed path) is kept both ways with no mode, so that a scenario can
    // open it; a direction no mode uses on a link that others use is left out
    let closed = fwd.is_empty() && bwd.is_empty();
    let cap = |name: &str| number(e, name).unwrap_or(0.0).max(0.0);
    let lanes = |name: &str| number(e, name).unwrap_or(1.0).max(0.0) as f32;
    let mut spec = LinkSpec::new(
        format!("{}+", e.id),
        from,
        to,
        length,
        seconds,
        cap("capacityForward"),
        fwd,
    );
    spec.lanes = lanes("lanesForward");
    spec.geometry = Some(coords.clone());
    let mut out = Vec::with_capacity(2);
    if !bwd.is_empty() || closed {
        let mut back = spec.reversed(format!("{}-", e.id), bwd);
        back.capacity_vph = cap("capacityBackward");
        back.lanes = lanes("lanesBackward");
        out.push(back);
    }
    if !fwd.is_empty() || closed {
        out.push(spec);
    }
    let ends = [(from, coords[0]), (to, coords[coords.len() - 1])];
    Ok((out, ends))
}

/// What building a network from entities left out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Skipped {
    /// Entities that could not be read as links, with the reason (at most the first 20 are kept).
    pub entities: Vec<(String, String)>,
    pub count: usize,
}

/// A network from `RoadLink` entities (other entities are ignored). Entities that cannot be read are skipped and
/// reported; the network itself is checked by [`Network::build`].
pub fn network_from_entities<'a>(
    entities: impl IntoIterator<Item = &'a Entity>,
) -> Result<(Network, Skipped), GraphError> {
    let road_link = format!("{V}RoadLink");
    let mut nodes: HashMap<u64, (f64, f64)> = HashMap::new();
    let mut links = Vec::new();
    let mut skipped = Skipped::default();
    for e in entities {
        if !e.types.contains(&road_link) {
            continue;
        }
        match links_of(e) {
            Ok((specs, ends)) => {
                for (id, c) in ends {
                    nodes.entry(id).or_insert(c);
                }
                links.extend(specs);
            }
            Err(reason) => {
                skipped.count += 1;
                if skipped.entities.len() < 20 {
                    skipped.entities.push((e.id.clone(), reason));
                }
            }
        }
    }
    let mut nodes: Vec<(u64, (f64, f64))> = nodes.into_iter().collect();
    nodes.sort_by_key(|(id, _)| *id);
    Ok((Network::build(nodes, links)?, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use serde_json::json;
    use twin_model::context::Context;
    use twin_model::ngsi::parse_entity;
    use twin_model::Provenance;

    fn link(id: &str, car: (bool, bool), extra: Value) -> Entity {
        let mut doc = json!({
            "id": format!("urn:ngsi-ld:RoadLink:{id}"), "type": "RoadLink",
            "startNode": {"type": "Property", "value": 1}, "endNode": {"type": "Property", "value": 2},
            "length": {"type": "Property", "value": 100.0},
            "freeFlowSpeed": {"type": "Property", "value": 36.0},
            "capacityForward": {"type": "Property", "value": 900.0},
            "capacityBackward": {"type": "Property", "value": 600.0},
            "carAccess": {"type": "Property", "value": {"forward": car.0, "backward": car.1}},
            "walkAccess": {"type": "Property", "value": {"forward": true, "backward": true}},
            "bikeAccess": {"type": "Property", "value": {"forward": true, "backward": false}},
            "location": {"type": "GeoProperty", "value": {"type": "LineString",
                "coordinates": [[24.94, 60.17], [24.9405, 60.1701], [24.941, 60.1702]]}},
        });
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                doc.as_object_mut().unwrap().remove(k);
            } else {
                doc[k] = v.clone();
            }
        }
        parse_entity(&doc, &Context::core(), Utc::now(), &Provenance::default()).unwrap()
    }

    #[test]
    fn a_two_way_street_with_a_one_way_bike_lane() {
        let e = link("a", (true, true), json!({}));
        let (specs, ends) = links_of(&e).unwrap();
        assert_eq!(specs.len(), 2);
        let back = &specs[0];
        let fwd = &specs[1];
        assert_eq!((fwd.from, fwd.to, back.from, back.to), (1, 2, 2, 1));
        assert_eq!(
            fwd.modes,
            ModeSet::EMPTY
                .with(Mode::Car)
                .with(Mode::Walk)
                .with(Mode::Bike)
        );
        assert_eq!(back.modes, ModeSet::EMPTY.with(Mode::Car).with(Mode::Walk));
        assert!((fwd.free_flow_s - 10.0).abs() < 1e-12, "100 m at 36 km/h");
        assert_eq!((fwd.capacity_vph, back.capacity_vph), (900.0, 600.0));
        assert_eq!(back.geometry.as_ref().unwrap()[0], (24.941, 60.1702));
        assert_eq!(ends, [(1, (24.94, 60.17)), (2, (24.941, 60.1702))]);
        let (net, skipped) = network_from_entities([&e]).unwrap();
        assert_eq!(
            (net.node_count(), net.link_count(), skipped.count),
            (2, 2, 0)
        );
    }

    #[test]
    fn unreadable_links_are_skipped_with_a_reason() {
        let bad = [
            link("nolen", (true, true), json!({"length": null})),
            link(
                "stopped",
                (true, true),
                json!({"freeFlowSpeed": {"type": "Property", "value": 0}}),
            ),
            link(
                "point",
                (true, true),
                json!({"location": {"type": "GeoProperty",
                "value": {"type": "Point", "coordinates": [24.94, 60.17]}}}),
            ),
        ];
        let good = link("ok", (true, false), json!({}));
        let all: Vec<&Entity> = bad.iter().chain([&good]).collect();
        let (net, skipped) = network_from_entities(all).unwrap();
        assert_eq!(skipped.count, 3);
        assert!(skipped.entities[0].1.contains("length"), "{skipped:?}");
        assert!(skipped.entities[1].1.contains("speed"), "{skipped:?}");
        assert!(skipped.entities[2].1.contains("LineString"), "{skipped:?}");
        // one-way for cars: the reverse carries walkers only
        assert_eq!(net.link_count(), 2);
    }
}
