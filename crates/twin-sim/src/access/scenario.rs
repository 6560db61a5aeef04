//! What a change does to the 15-minute city: a new destination (a school, a shop at a point), one taken away, paths
//! closed (by `RoadLink` id or in a drawn area) or opened, a new path (a walkway, a crossing of a major road), applied
//! to a copy of the baseline's results and compared with them.
//!
//! A new destination updates only the nodes and homes it becomes one of the `k` nearest of; a destination taken away
//! recomputes its category; a changed network (paths closed, opened or added) is computed again whole.

use geo::{Geometry, Intersects, LineString};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use twin_graph::ExternalId;
use twin_model::geoquery::geometry_from_geojson;
use twin_model::Entity;

use super::city::{self, CityAccess};
use super::nearest::{Anchor, KNearest};
use crate::traffic::scenario::road_link_of;

/// One change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", deny_unknown_fields)]
pub enum AccessEdit {
    /// A new destination of `category` at a point.
    #[serde(rename_all = "camelCase")]
    AddDestination {
        category: String,
        lon: f64,
        lat: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// A destination (a `PointOfInterest` id) taken away.
    RemoveDestination { id: String },
    /// Paths opened to the mode (`RoadLink` ids of links it may not use: a private yard made public).
    OpenPaths { links: Vec<String> },
    /// A new path, both ways, along `path` (`[lon, lat]` positions): a walkway, a bridge, a crossing of a major road.
    /// Its ends join the nearest nodes of the mode's network within [`ADD_PATH_JOIN_M`].
    AddPath { path: Vec<[f64; 2]> },
    /// Paths closed to the mode: `RoadLink` ids, or every link of the mode meeting a GeoJSON polygon.
    #[serde(rename_all = "camelCase")]
    ClosePaths {
        #[serde(default)]
        links: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        area: Option<Value>,
    },
}

/// How far (metres) the ends of an added path may be from the node they join.
pub const ADD_PATH_JOIN_M: f64 = 50.0;

/// How one home fared.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HomeChange {
    pub id: String,
    pub lon: f64,
    pub lat: f64,
    pub residents: f64,
    pub score_before: f64,
    pub score_after: f64,
}

/// Applies the edits in order to a copy of `base` (the baseline's results on `entities`); errors name the edit.
pub fn apply(
    base: &CityAccess,
    entities: &[Entity],
    edits: &[AccessEdit],
) -> Result<CityAccess, String> {
    let mut r = base.clone();
    let mut removed: Vec<String> = Vec::new();
    let mut added: Vec<(String, String, f64, f64)> = Vec::new();
    let mut rerun = false;
    for (i, e) in edits.iter().enumerate() {
        let at = |m: String| format!("edits[{i}]: {m}");
        match e {
            AccessEdit::AddDestination {
                category,
                lon,
                lat,
                name,
            } => {
                if !(lon.is_finite() && lat.is_finite() && lon.abs() <= 180.0 && lat.abs() <= 90.0)
                {
                    return Err(at(format!("({lon}, {lat}) is not a WGS84 position")));
                }
                let id = format!("urn:ngsi-ld:PointOfInterest:scenario-{i}");
                if rerun {
                    added.push((id, category.clone(), *lon, *lat));
                } else {
                    r.add_destination(&id, category, *lon, *lat)
                        .map_err(|e| at(e.to_string()))?;
                    if let Some(n) = name {
                        if let Some(d) = r.inputs.destinations.last_mut() {
                            d.name = Some(n.clone());
                        }
                    }
                    added.push((id, category.clone(), *lon, *lat));
                }
            }
            AccessEdit::RemoveDestination { id } => {
                let Some(d) = r.inputs.destinations.iter().position(|d| d.place.id == *id) else {
                    return Err(at(format!(
                        "no destination of the model's categories has the id {id}"
                    )));
                };
                removed.push(id.clone());
                if !rerun {
                    remove_destination(&mut r, d);
                }
            }
            AccessEdit::OpenPaths { links } => {
                if links.is_empty() {
                    return Err(at("name the links to open".into()));
                }
                let mode = r.options.movement.mode;
                let mut net = r.net.clone();
                let mut unknown: Vec<&str> = links.iter().map(String::as_str).collect();
                for l in 0..net.link_count() as u32 {
                    if names(net.link_id(l), links) {
                        unknown.retain(|x| !names(net.link_id(l), &[*x]));
                        net.add_mode(l, mode);
                    }
                }
                if !unknown.is_empty() {
                    return Err(at(format!("no link has the id {}", unknown.join(", "))));
                }
                r.net = net;
                rerun = true;
            }
            AccessEdit::AddPath { path } => {
                if path.len() < 2
                    || path.iter().any(|p| {
                        !(p[0].is_finite()
                            && p[1].is_finite()
                            && p[0].abs() <= 180.0
                            && p[1].abs() <= 90.0)
                    })
                {
                    return Err(at("a path needs two or more [lon, lat] positions".into()));
                }
                let end = |p: [f64; 2], which: &str| -> Result<u32, String> {
                    let s = r
                        .snap
                        .snap_within(p[0], p[1], ADD_PATH_JOIN_M)
                        .ok_or_else(|| {
                            at(format!(
                                "its {which} is more than {ADD_PATH_JOIN_M} m from the network"
                            ))
                        })?;
                    let l = s.link as usize;
                    Ok(if s.fraction < 0.5 {
                        r.net.link_from()[l]
                    } else {
                        r.net.link_to()[l]
                    })
                };
                let (a, b) = (end(path[0], "start")?, end(path[path.len() - 1], "end")?);
                if a == b {
                    return Err(at("both ends join the same node: draw it longer".into()));
                }
                // along the drawn line, from the nodes it joins
                let mut pts: Vec<(f64, f64)> = vec![r.net.node_coord(a)];
                pts.extend(path.iter().map(|p| (p[0], p[1])));
                pts.push(r.net.node_coord(b));
                let metres: f64 = pts
                    .windows(2)
                    .map(|w| twin_graph::path::haversine_m(w[0], w[1]))
                    .sum();
                r.paths.push((a, b, metres));
                rerun = true;
            }
            AccessEdit::ClosePaths { links, area } => {
                let mode = r.options.movement.mode;
                let polygon = match area {
                    None => None,
                    Some(v) => match geometry_from_geojson(v) {
                        Ok(g @ (Geometry::Polygon(_) | Geometry::MultiPolygon(_))) => Some(g),
                        _ => {
                            return Err(at(
                                "the area must be a GeoJSON Polygon or MultiPolygon".into()
                            ))
                        }
                    },
                };
                if links.is_empty() && polygon.is_none() {
                    return Err(at("name the links or draw the area to close".into()));
                }
                let mut net = r.net.clone();
                let mut closed = 0;
                let mut unknown: Vec<&str> = links.iter().map(String::as_str).collect();
                for l in 0..net.link_count() as u32 {
                    let by_id = names(net.link_id(l), links);
                    if by_id {
                        unknown.retain(|x| !names(net.link_id(l), &[*x]));
                    }
                    if !net.link_modes()[l as usize].contains(mode) {
                        continue;
                    }
                    let in_area = polygon
                        .as_ref()
                        .is_some_and(|p| p.intersects(&LineString::from(net.link_geometry(l))));
                    if by_id || in_area {
                        net.remove_mode(l, mode);
                        closed += 1;
                    }
                }
                if !unknown.is_empty() {
                    return Err(at(format!("no link has the id {}", unknown.join(", "))));
                }
                // (named links already closed to the mode, or cut off from its network, close nothing more)
                if closed == 0 {
                    let m = format!("{mode:?}").to_lowercase();
                    return Err(at(if polygon.is_some() {
                        format!("no path open to {m} meets the area")
                    } else {
                        format!("none of the links is open to {m}")
                    }));
                }
                r.net = net;
                rerun = true;
            }
        }
    }
    if rerun {
        // the network changed: everything again on it, with the destinations as edited
        let mut ents: Vec<Entity> = entities
            .iter()
            .filter(|e| !removed.contains(&e.id))
            .cloned()
            .collect();
        for (id, category, lon, lat) in &added {
            ents.push(poi_entity(id, category, *lon, *lat));
        }
        let net = r.net.clone();
        let options = r.options.clone();
        let paths = r.paths.clone();
        r = city::run_with_paths(
            net,
            paths,
            &ents,
            &options,
            &base.reach(),
            Some(base.graph.crossings()),
        );
    }
    Ok(r)
}

/// Whether one of `ids` names the link with this id: its `RoadLink` entity's id (both directions), or that id with
/// the direction (`+` forward, `-` backward) as the network holds it.
fn names<S: AsRef<str>>(link: &ExternalId, ids: &[S]) -> bool {
    let ExternalId::Text(full) = link else {
        return false;
    };
    let entity = road_link_of(link).map_or(full.as_str(), |(e, _)| e);
    ids.iter()
        .any(|x| x.as_ref() == full || x.as_ref() == entity)
}

/// A point of interest as the model reads it.
fn poi_entity(id: &str, category: &str, lon: f64, lat: f64) -> Entity {
    let v = serde_json::json!({
        "id": id,
        "type": "PointOfInterest",
        "category": {"type": "Property", "value": category},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}}
    });
    twin_model::ngsi::parse_entity(
        &v,
        &twin_model::context::Context::core(),
        chrono::Utc::now(),
        &twin_model::Provenance::default(),
    )
    .expect("a valid entity")
}

/// Takes destination `d` away and computes its category again.
fn remove_destination(r: &mut CityAccess, d: usize) {
    let cat = r.inputs.destinations[d].category.clone();
    let Some(c) = r.fields.iter().position(|f| f.category == cat) else {
        return;
    };
    let keep: Vec<usize> = r.fields[c]
        .destinations
        .iter()
        .copied()
        .filter(|&x| x != d)
        .collect();
    let anchors: Vec<Anchor> = keep
        .iter()
        .map(|&x| r.inputs.destinations[x].place.anchor.clone())
        .collect();
    r.fields[c].nearest =
        KNearest::compute(&r.graph, r.options.k, r.options.max_min * 60.0, &anchors);
    r.fields[c].destinations = keep;
    // the destination stays in the list (indexes hold) but no search knows it any more
    r.inputs.destinations[d].category = format!("{cat} (taken away)");
    r.homes = city::home_results(&r.fields, &r.inputs, &r.options);
    r.summary = city::summarise(&r.homes, &r.inputs, &r.fields, &r.options, 0.0);
}

/// The homes whose score changed, biggest change first.
/// A home the scenario leaves off the network (its paths closed) scores 0.
pub fn changes(base: &CityAccess, scenario: &CityAccess) -> Vec<HomeChange> {
    let after: std::collections::HashMap<&str, f64> = scenario
        .inputs
        .homes
        .iter()
        .zip(&scenario.homes)
        .map(|(h, r)| (h.place.id.as_str(), r.score))
        .collect();
    let mut out: Vec<HomeChange> = base
        .inputs
        .homes
        .iter()
        .zip(&base.homes)
        .map(|(h, a)| {
            (
                h,
                a.score,
                after.get(h.place.id.as_str()).copied().unwrap_or(0.0),
            )
        })
        .filter(|(_, a, b)| (a - b).abs() > 1e-12)
        .map(|(h, a, b)| HomeChange {
            id: h.place.id.clone(),
            lon: h.place.lon,
            lat: h.place.lat,
            residents: h.residents,
            score_before: a,
            score_after: b,
        })
        .collect();
    out.sort_by(|a, b| {
        (b.score_after - b.score_before)
            .abs()
            .total_cmp(&(a.score_after - a.score_before).abs())
    });
    out
}
