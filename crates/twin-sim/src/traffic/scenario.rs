//! Traffic scenarios: a named list of edits on the city's baseline network, solved from the baseline and compared
//! with it link by link and street by street.
//!
//! # Edits
//!
//! A [`Scenario`] is plain data (JSON with a `kind` per edit) so that it can be stored and sent over HTTP:
//!
//! | `kind` | fields | effect on the selected car links |
//! | --- | --- | --- |
//! | `closeStreet` | `name` | closes every link of the street (both directions) |
//! | `closeLinks` | `links`: `RoadLink` entity ids | closes them (both directions; an id ending in `+` or `-` names one direction) |
//! | `closeArea` | `polygon`: a GeoJSON Polygon or MultiPolygon | closes every link whose geometry meets it |
//! | `setCapacity` | `target`, `factor` or `vehiclesPerHour` | capacity × factor, or the given capacity per direction |
//! | `setSpeed` | `target`, `kmh` | free-flow time = length / speed |
//! | `setLanes` | `target`, `lanes` | capacity × new lanes / current lanes (per direction; a link without lanes counts one) |
//! | `oneWay` | `target`, `keep`: `forward` or `backward` | closes the other direction (relative to each `RoadLink`'s drawing direction, start node to end node) |
//! | `addLink` | `path` (`[lon, lat]` positions), optional `name`, `roadClass`, `kmh`, `lanes`, `vehiclesPerHour`, `oneWay` | a new street along the path, in both directions unless `oneWay`; its ends join the nearest car nodes within 50 m; speed and capacity per lane from the road class (`residential` by default) |
//!
//! A `target` is `{"street": name}`, `{"links": [ids]}` or `{"area": polygon}`. Selections only ever see links open
//! to cars in the baseline (the car network after islands are dropped); an edit that selects nothing is an error
//! that names it (`edits[2] (setSpeed): no street named "Fabianinkaty" ...`), so a typo never passes as "no effect".
//! Edits apply in order: parameter edits compose (a capacity factor after a lane change scales the new capacity),
//! closures add up.
//!
//! Added streets are appended to the scenario's network after the street graph's links ([`Network::add_link`]), so
//! every baseline link keeps its index and the warm start finds its bushes unchanged; later edits select baseline
//! links only (give an added street the parameters it should have). Their results are keyed `added-{edit}` and
//! carry their line ([`added_road_links`]).
//!
//! # Results
//!
//! [`run`] applies a scenario and solves user equilibrium warm-started from the baseline's solution (Algorithm B
//! reuses every bush the edits did not touch). [`evaluate`] turns a solution into per-link values (flow, capacity,
//! volume/capacity, travel time) and a [`Summary`] (vehicle-km, vehicle-hours, trips assigned and unserved, the
//! unserved origin–destination pairs with their zone centroids). [`delta`] compares two outcomes: per link
//! Δflow and Δ%, per street the change in its mean cross-section flow, and the totals.
//!
//! A street's flow is its vehicle-km divided by its length: `Σ_a x_a · L_a / Σ_r L_r` over its directed car links
//! `a` and its `RoadLink`s `r` — the traffic passing an average point of the street, both directions together. Δ% is
//! `100 · (new − base) / base`, and absent (`None`) where the base is zero and the new value is not: the values
//! never hold NaN or infinities.
//!
//! Closures that cut zones off are not errors: the trips between the pairs no path joins are left out and
//! reported ([`Summary::unserved_pairs`]), and everything else is assigned.

use std::collections::{BTreeMap, HashMap};

use geo::{Geometry, Intersects, LineString};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use twin_graph::path::haversine_m;
use twin_graph::{ExternalId, LinkIdx, NodeIdx};
use twin_model::geoquery::geometry_from_geojson;

use super::assign::{self, AssignError, IterationStats, Network, Solution, Stop};
use super::city::CityModel;

/// A named list of edits on the baseline network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default)]
    pub edits: Vec<Edit>,
}

/// One change to the network (see the module doc for what each does).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum Edit {
    CloseStreet {
        name: String,
    },
    CloseLinks {
        links: Vec<String>,
    },
    CloseArea {
        polygon: Value,
    },
    SetCapacity {
        target: Target,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        factor: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        vehicles_per_hour: Option<f64>,
    },
    SetSpeed {
        target: Target,
        kmh: f64,
    },
    SetLanes {
        target: Target,
        lanes: f64,
    },
    OneWay {
        target: Target,
        keep: Direction,
    },
    AddLink {
        /// The new street's line, GeoJSON positions `[lon, lat]`; its two ends join the nearest nodes of the car
        /// network (within [`ADD_LINK_JOIN_M`]).
        path: Vec<[f64; 2]>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// OSM `highway` class whose defaults (speed, capacity per lane) it takes; `residential` when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        road_class: Option<String>,
        /// Free-flow speed; the class's default when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kmh: Option<f64>,
        /// Lanes per direction (default 1).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lanes: Option<f64>,
        /// Capacity per direction; lanes × the class's capacity per lane when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        vehicles_per_hour: Option<f64>,
        /// Only from the path's first point to its last (default: both directions).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        one_way: bool,
    },
}

/// How far (metres) the ends of an added link may be from the node of the car network they join.
pub const ADD_LINK_JOIN_M: f64 = 50.0;
/// The road class of an added link that names none.
const ADD_LINK_CLASS: &str = "residential";

/// Which car links an edit changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Target {
    /// Every link of the street with this name (the `RoadLink`s' `name`).
    Street(String),
    /// `RoadLink` entity ids (both directions), or with a `+` / `-` suffix one direction.
    Links(Vec<String>),
    /// Every link whose geometry meets this GeoJSON Polygon or MultiPolygon.
    Area(Value),
}

/// A direction relative to a `RoadLink`'s drawing (start node to end node).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Direction {
    Forward,
    Backward,
}

impl Edit {
    /// The edit's `kind` as written in JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            Edit::CloseStreet { .. } => "closeStreet",
            Edit::CloseLinks { .. } => "closeLinks",
            Edit::CloseArea { .. } => "closeArea",
            Edit::SetCapacity { .. } => "setCapacity",
            Edit::SetSpeed { .. } => "setSpeed",
            Edit::SetLanes { .. } => "setLanes",
            Edit::OneWay { .. } => "oneWay",
            Edit::AddLink { .. } => "addLink",
        }
    }

    /// The baseline links it selects, as a target (`None` for an added link).
    fn target(&self) -> Option<Target> {
        Some(match self {
            Edit::CloseStreet { name } => Target::Street(name.clone()),
            Edit::CloseLinks { links } => Target::Links(links.clone()),
            Edit::CloseArea { polygon } => Target::Area(polygon.clone()),
            Edit::SetCapacity { target, .. }
            | Edit::SetSpeed { target, .. }
            | Edit::SetLanes { target, .. }
            | Edit::OneWay { target, .. } => target.clone(),
            Edit::AddLink { .. } => return None,
        })
    }

    /// Checks what can be checked without a network: numbers in range, one capacity form, geometries that parse.
    fn check(&self) -> Result<(), String> {
        let positive = |what: &str, v: f64, max: f64, zero_hint: &str| {
            if !v.is_finite() || v < 0.0 || v > max {
                Err(format!(
                    "{what} must be a number between 0 and {max}, not {v}"
                ))
            } else if v == 0.0 {
                Err(format!("{what} must be more than 0{zero_hint}"))
            } else {
                Ok(())
            }
        };
        let close = " (to close links, use closeStreet, closeLinks or closeArea)";
        match self {
            Edit::SetCapacity {
                factor,
                vehicles_per_hour,
                ..
            } => match (factor, vehicles_per_hour) {
                (Some(f), None) => positive("factor", *f, 1e3, close),
                (None, Some(v)) => positive("vehiclesPerHour", *v, 1e6, close),
                _ => Err("give exactly one of factor and vehiclesPerHour".into()),
            },
            Edit::SetSpeed { kmh, .. } => positive("kmh", *kmh, 300.0, close),
            Edit::SetLanes { lanes, .. } => positive("lanes", *lanes, 20.0, close),
            Edit::AddLink {
                path,
                road_class,
                kmh,
                lanes,
                vehicles_per_hour,
                ..
            } => {
                let none = "";
                if path.len() < 2 {
                    return Err(format!(
                        "path needs at least two positions [lon, lat], not {}",
                        path.len()
                    ));
                }
                if let Some(p) = path.iter().find(|[x, y]| {
                    !(x.is_finite() && y.is_finite() && x.abs() <= 180.0 && y.abs() <= 90.0)
                }) {
                    return Err(format!("path position {p:?} is not a [lon, lat] on Earth"));
                }
                if let Some(c) = road_class {
                    if !twin_model::roads::is_car_class(c) {
                        return Err(format!(
                            "roadClass {c:?} is not a road class open to cars (one of {})",
                            twin_model::roads::CLASS_DEFAULTS
                                .iter()
                                .map(|(h, ..)| *h)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ));
                    }
                }
                kmh.map_or(Ok(()), |v| positive("kmh", v, 300.0, none))?;
                lanes.map_or(Ok(()), |v| positive("lanes", v, 20.0, none))?;
                vehicles_per_hour.map_or(Ok(()), |v| positive("vehiclesPerHour", v, 1e6, none))
            }
            _ => Ok(()),
        }?;
        match self.target() {
            Some(Target::Street(name)) if name.trim().is_empty() => {
                Err("the street name is empty".into())
            }
            Some(Target::Links(ids)) if ids.is_empty() => Err("the list of links is empty".into()),
            Some(Target::Area(polygon)) => area(&polygon).map(|_| ()),
            _ => Ok(()),
        }
    }
}

fn area(v: &Value) -> Result<Geometry<f64>, String> {
    match geometry_from_geojson(v) {
        Ok(g @ (Geometry::Polygon(_) | Geometry::MultiPolygon(_))) => Ok(g),
        Ok(_) => Err("the area must be a GeoJSON Polygon or MultiPolygon".into()),
        Err(e) => Err(format!("the area is not a valid GeoJSON polygon: {e}")),
    }
}

impl Scenario {
    /// Checks the scenario without a network (a name, and each edit's numbers and geometries).
    pub fn check(&self) -> Result<(), ScenarioError> {
        if self.name.trim().is_empty() {
            return Err(ScenarioError::Invalid("the scenario has no name".into()));
        }
        for (i, e) in self.edits.iter().enumerate() {
            e.check().map_err(|reason| ScenarioError::Edit {
                edit: i,
                kind: e.kind(),
                reason,
            })?;
        }
        Ok(())
    }
}

/// Why a scenario cannot be applied or solved.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScenarioError {
    #[error("{0}")]
    Invalid(String),
    /// Edit `edit` (0-based, as in `edits[i]`) is invalid or selects nothing.
    #[error("edits[{edit}] ({kind}): {reason}")]
    Edit {
        edit: usize,
        kind: &'static str,
        reason: String,
    },
    #[error("the assignment failed: {0}")]
    Assign(#[from] AssignError),
}

/// What one edit did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppliedEdit {
    pub edit: usize,
    pub kind: &'static str,
    /// Directed car links it selected.
    pub matched: usize,
    /// Of those, how many it closed (closures, and the dropped direction of `oneWay`).
    pub closed: usize,
    /// The selected links (indices of the city's street graph).
    #[serde(skip)]
    pub links: Vec<LinkIdx>,
    /// The link an `addLink` added.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub added: Option<AddedLink>,
}

/// A street a scenario added: one or two links of the scenario's network beyond the baseline's.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AddedLink {
    /// `added-{edit}`: its key among the per-`RoadLink` results.
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The link from the path's first point to its last.
    pub forward: LinkIdx,
    /// The link back, unless one-way.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backward: Option<LinkIdx>,
    /// The nodes it joins (external ids: OSM node ids for an OSM network).
    pub from_node: u64,
    pub to_node: u64,
    /// How far the path's ends were from those nodes, metres.
    pub joined_m: [f64; 2],
    pub length_m: f64,
    pub kmh: f64,
    /// Per direction, vehicles per hour.
    pub capacity: f64,
    /// The path with its ends moved onto the nodes, `[lon, lat]`.
    pub path: Vec<[f64; 2]>,
}

/// What applying a scenario did.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppliedReport {
    pub edits: Vec<AppliedEdit>,
    /// The links `addLink` edits added, in edit order.
    #[serde(skip)]
    pub added: Vec<AddedLink>,
    /// Every closed link, ascending.
    #[serde(skip)]
    pub closed: Vec<LinkIdx>,
    pub closed_links: usize,
}

/// The car links of the baseline by `RoadLink` entity id and by directed link id (`…+`, `…-`).
struct LinkIndex<'a> {
    model: &'a CityModel,
    by_entity: HashMap<&'a str, Vec<LinkIdx>>,
    by_link: HashMap<&'a str, LinkIdx>,
}

/// The `RoadLink` entity id and direction of a graph link (`urn:…+` forward, `urn:…-` backward).
pub fn road_link_of(id: &ExternalId) -> Option<(&str, Direction)> {
    let ExternalId::Text(s) = id else { return None };
    if let Some(e) = s.strip_suffix('+') {
        Some((e, Direction::Forward))
    } else {
        s.strip_suffix('-').map(|e| (e, Direction::Backward))
    }
}

impl<'a> LinkIndex<'a> {
    fn new(model: &'a CityModel) -> LinkIndex<'a> {
        let mut by_entity: HashMap<&str, Vec<LinkIdx>> = HashMap::new();
        let mut by_link = HashMap::new();
        for l in car_links(model) {
            let id = model.graph.link_id(l);
            if let ExternalId::Text(full) = id {
                by_link.insert(full.as_str(), l);
            }
            if let Some((e, _)) = road_link_of(id) {
                by_entity.entry(e).or_default().push(l);
            }
        }
        LinkIndex {
            model,
            by_entity,
            by_link,
        }
    }

    fn select(&self, target: &Target) -> Result<Vec<LinkIdx>, String> {
        let m = self.model;
        match target {
            Target::Street(name) => {
                let links = m.street_links(name);
                if links.is_empty() {
                    return Err(format!(
                        "no street named {name:?} has links open to cars{}",
                        self.suggest(name)
                    ));
                }
                Ok(links)
            }
            Target::Links(ids) => {
                let mut out = Vec::new();
                let mut unknown = Vec::new();
                for id in ids {
                    if let Some(&l) = self.by_link.get(id.as_str()) {
                        out.push(l);
                    } else if let Some(ls) = self.by_entity.get(id.as_str()) {
                        out.extend(ls);
                    } else {
                        unknown.push(id.as_str());
                    }
                }
                if !unknown.is_empty() {
                    let more = unknown.len().saturating_sub(5);
                    unknown.truncate(5);
                    return Err(format!(
                        "no RoadLink open to cars has the id {}{}",
                        unknown.join(", "),
                        if more > 0 {
                            format!(" (and {more} more)")
                        } else {
                            String::new()
                        }
                    ));
                }
                out.sort_unstable();
                out.dedup();
                Ok(out)
            }
            Target::Area(polygon) => {
                let area = area(polygon)?;
                let links: Vec<LinkIdx> = car_links(m)
                    .filter(|&l| {
                        let line = LineString::from(m.graph.link_geometry(l));
                        area.intersects(&line)
                    })
                    .collect();
                if links.is_empty() {
                    return Err("no link open to cars meets the area".into());
                }
                Ok(links)
            }
        }
    }

    /// ` (did you mean "X"?)` for names that differ only in case or contain the name asked for.
    fn suggest(&self, name: &str) -> String {
        let want = name.trim().to_lowercase();
        let mut close: Vec<&str> = Vec::new();
        for l in car_links(self.model) {
            if let Some(n) = self.model.link_names[l as usize].as_deref() {
                let lower = n.to_lowercase();
                if (lower == want || (want.len() >= 3 && lower.contains(&want)))
                    && !close.contains(&n)
                {
                    close.push(n);
                }
            }
        }
        close.sort_unstable();
        close.truncate(3);
        if close.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = close.iter().map(|n| format!("{n:?}")).collect();
            format!(" (did you mean {}?)", quoted.join(" or "))
        }
    }
}

/// The links open to cars in the baseline.
fn car_links(model: &CityModel) -> impl Iterator<Item = LinkIdx> + '_ {
    (0..model.network.link_count() as LinkIdx).filter(|&l| model.network.is_open(l))
}

/// The node of the car network nearest to `at` (lon, lat), and its distance in metres.
fn nearest_car_node(model: &CityModel, at: (f64, f64)) -> Option<(NodeIdx, f64)> {
    let net = &model.network;
    (0..net.node_count() as NodeIdx)
        .filter(|&n| !net.out_links(n).is_empty() || !net.in_links(n).is_empty())
        .map(|n| (n, haversine_m(at, model.graph.node_coord(n))))
        .min_by(|a, b| a.1.total_cmp(&b.1))
}

/// Adds edit `i` (an `addLink`) to `net`: its path's ends joined to the nearest car nodes, its parameters from
/// its road class unless given.
fn add_link(
    model: &CityModel,
    net: &mut Network,
    i: usize,
    edit: &Edit,
) -> Result<AddedLink, String> {
    let Edit::AddLink {
        path,
        name,
        road_class,
        kmh,
        lanes,
        vehicles_per_hour,
        one_way,
    } = edit
    else {
        return Err("not an addLink edit".into());
    };
    let class = road_class.as_deref().unwrap_or(ADD_LINK_CLASS);
    let (default_kmh, _, per_lane) = twin_model::roads::class_defaults(class);
    let kmh = kmh.unwrap_or(default_kmh);
    let capacity = vehicles_per_hour.unwrap_or(per_lane * lanes.unwrap_or(1.0));
    let (first, last) = (path[0], path[path.len() - 1]);
    let join = |p: [f64; 2], which: &str| {
        let (node, d) = nearest_car_node(model, (p[0], p[1]))
            .ok_or_else(|| "the baseline has no street open to cars".to_string())?;
        if d > ADD_LINK_JOIN_M {
            return Err(format!(
                "the path's {which} point is {d:.0} m from the nearest street open to cars (at most \
                 {ADD_LINK_JOIN_M:.0} m: an added street must join the network at both ends)"
            ));
        }
        Ok((node, d))
    };
    let (from, d_from) = join(first, "first")?;
    let (to, d_to) = join(last, "last")?;
    if from == to {
        return Err(format!(
            "both ends of the path join the same node ({}): an added street must join two places",
            model.graph.node_id(from)
        ));
    }
    let mut line: Vec<[f64; 2]> = path.clone();
    let at = |n: NodeIdx| {
        let (x, y) = model.graph.node_coord(n);
        [x, y]
    };
    line[0] = at(from);
    let end = line.len() - 1;
    line[end] = at(to);
    let length: f64 = line
        .windows(2)
        .map(|w| haversine_m((w[0][0], w[0][1]), (w[1][0], w[1][1])))
        .sum();
    if length <= 0.0 {
        return Err("the path has no length".into());
    }
    let b = model.network.links().iter().find(|l| l.b > 0.0);
    let link = |from: NodeIdx, to: NodeIdx| assign::Link {
        from,
        to,
        capacity,
        length,
        free_flow_time: length / (kmh / 3.6),
        b: b.map_or(0.15, |l| l.b),
        power: b.map_or(4.0, |l| l.power),
        toll: 0.0,
    };
    let forward = net.add_link(link(from, to)).map_err(|e| e.to_string())?;
    let backward = if *one_way {
        None
    } else {
        Some(net.add_link(link(to, from)).map_err(|e| e.to_string())?)
    };
    Ok(AddedLink {
        id: format!("added-{i}"),
        name: name.clone().filter(|n| !n.trim().is_empty()),
        forward,
        backward,
        from_node: model.graph.node_id(from),
        to_node: model.graph.node_id(to),
        joined_m: [d_from, d_to],
        length_m: length,
        kmh,
        capacity,
        path: line,
    })
}

/// The scenario's assignment network: the baseline's with the edits applied in order, and what each edit did.
pub fn apply(
    model: &CityModel,
    scenario: &Scenario,
) -> Result<(Network, AppliedReport), ScenarioError> {
    scenario.check()?;
    let index = LinkIndex::new(model);
    let mut net = model.network.clone();
    let n = net.link_count();
    let mut closed = vec![false; n];
    // lanes as edits leave them (a link without lane data counts one)
    let mut lanes: Vec<f64> = model
        .graph
        .lanes()
        .iter()
        .map(|&l| if l > 0.0 { f64::from(l) } else { 1.0 })
        .collect();
    let mut report = AppliedReport::default();
    for (i, edit) in scenario.edits.iter().enumerate() {
        let fail = |reason: String| ScenarioError::Edit {
            edit: i,
            kind: edit.kind(),
            reason,
        };
        if let Edit::AddLink { .. } = edit {
            let added = add_link(model, &mut net, i, edit).map_err(fail)?;
            lanes.push(1.0);
            if added.backward.is_some() {
                lanes.push(1.0);
            }
            closed.resize(net.link_count(), false);
            report.added.push(added.clone());
            report.edits.push(AppliedEdit {
                edit: i,
                kind: edit.kind(),
                matched: 0,
                closed: 0,
                links: Vec::new(),
                added: Some(added),
            });
            continue;
        }
        let Some(target) = edit.target() else {
            continue;
        };
        let links = index.select(&target).map_err(fail)?;
        let mut newly_closed = 0;
        let mut close = |l: LinkIdx| {
            if !closed[l as usize] {
                closed[l as usize] = true;
                newly_closed += 1;
            }
        };
        let mut set = |l: LinkIdx, change: &dyn Fn(&mut assign::Link)| {
            let mut link = *net.link(l);
            change(&mut link);
            net.set_link(l, link).map_err(|e| fail(e.to_string()))
        };
        match edit {
            Edit::CloseStreet { .. } | Edit::CloseLinks { .. } | Edit::CloseArea { .. } => {
                links.iter().for_each(|&l| close(l));
            }
            Edit::SetCapacity {
                factor,
                vehicles_per_hour,
                ..
            } => {
                for &l in &links {
                    set(l, &|k| match (factor, vehicles_per_hour) {
                        (Some(f), _) => k.capacity *= f,
                        (None, Some(v)) => k.capacity = *v,
                        (None, None) => {}
                    })?;
                }
            }
            Edit::SetSpeed { kmh, .. } => {
                for &l in &links {
                    let length = model.graph.length_m()[l as usize];
                    set(l, &|k| k.free_flow_time = length / (kmh / 3.6))?;
                }
            }
            Edit::SetLanes { lanes: to, .. } => {
                for &l in &links {
                    let from = lanes[l as usize];
                    set(l, &|k| k.capacity *= to / from)?;
                    lanes[l as usize] = *to;
                }
            }
            Edit::OneWay { keep, .. } => {
                for &l in &links {
                    let dir = road_link_of(model.graph.link_id(l)).map(|(_, d)| d);
                    if dir.is_some_and(|d| d != *keep) {
                        close(l);
                    }
                }
                if newly_closed == 0 {
                    return Err(fail(format!(
                        "its {} link(s) already run {} only",
                        links.len(),
                        match keep {
                            Direction::Forward => "forward",
                            Direction::Backward => "backward",
                        }
                    )));
                }
            }
            // added above, before selecting links
            Edit::AddLink { .. } => {}
        }
        report.edits.push(AppliedEdit {
            edit: i,
            kind: edit.kind(),
            matched: links.len(),
            closed: newly_closed,
            links,
            added: None,
        });
    }
    let to_close: Vec<LinkIdx> = (0..n as LinkIdx).filter(|&l| closed[l as usize]).collect();
    debug_assert!(
        closed[n..].iter().all(|c| !c),
        "added links are never closed"
    );
    net.close_links(&to_close);
    report.closed_links = to_close.len();
    report.closed = to_close;
    Ok((net, report))
}

/// Progress of a solve: a fraction from 0 to 1 (the relative gap's way from its first value to the target, on a
/// log scale), the iteration and the gap.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunProgress {
    pub fraction: f64,
    pub iteration: usize,
    pub relative_gap: f64,
}

/// A progress callback: return `false` to cancel.
pub type ProgressFn<'a> = &'a (dyn Fn(&RunProgress) -> bool + Sync);

/// How to solve a baseline or a scenario.
#[derive(Clone, Copy)]
pub struct RunOptions<'a> {
    /// Target relative gap (default 1e-8: deltas mean something only far below the differences they show).
    pub gap: f64,
    pub max_iter: usize,
    pub max_seconds: Option<f64>,
    pub progress: Option<ProgressFn<'a>>,
}

impl Default for RunOptions<'_> {
    fn default() -> Self {
        RunOptions {
            gap: 1e-8,
            max_iter: 10_000,
            max_seconds: None,
            progress: None,
        }
    }
}

impl std::fmt::Debug for RunOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("gap", &self.gap)
            .field("max_iter", &self.max_iter)
            .field("max_seconds", &self.max_seconds)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// How far a solve is, from its first gap `first` to the target, on a log scale (0 to 1; 1 once converged).
pub fn progress_fraction(first: f64, gap: f64, target: f64) -> f64 {
    if gap <= target {
        return 1.0;
    }
    let target = target.max(1e-300);
    if !(first.is_finite() && gap.is_finite()) || first <= target {
        return 0.0;
    }
    let f = (first / gap).ln() / (first / target).ln();
    if f.is_finite() {
        f.clamp(0.0, 0.99)
    } else {
        0.0
    }
}

/// Solves `net` with the city's demand, warm-started from `warm` when given.
pub fn solve(
    model: &CityModel,
    net: &Network,
    warm: Option<&Solution>,
    options: &RunOptions<'_>,
) -> Result<Solution, AssignError> {
    let first = std::sync::Mutex::new(None::<f64>);
    let target = options.gap;
    let user = options.progress;
    let wrapped = |s: &IterationStats| -> bool {
        let Some(cb) = user else { return true };
        let g0 = {
            let mut f = first.lock().unwrap_or_else(|p| p.into_inner());
            *f.get_or_insert(s.relative_gap)
        };
        cb(&RunProgress {
            fraction: progress_fraction(g0, s.relative_gap, target),
            iteration: s.iteration,
            relative_gap: s.relative_gap,
        })
    };
    let opts = assign::Options {
        gap: options.gap,
        max_iter: options.max_iter,
        max_seconds: options.max_seconds,
        warm_start: warm,
        progress: Some(&wrapped),
        ..assign::Options::default()
    };
    assign::assign(net, &model.demand, &opts)
}

/// Values of one directed link at a solution.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkValue {
    /// Open to cars in this network.
    pub open: bool,
    /// Vehicles per hour.
    pub flow: f64,
    /// Vehicles per hour (as edited).
    pub capacity: f64,
    /// Volume / capacity (0 where the capacity is 0 or the link closed).
    pub vc: f64,
    /// Travel time at the flow, seconds (None when closed).
    pub time_s: Option<f64>,
}

/// Trips between two zones that no path joins.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnservedPair {
    pub origin: usize,
    pub destination: usize,
    pub trips: f64,
    /// Zone centroids, `[lon, lat]`.
    pub origin_at: [f64; 2],
    pub destination_at: [f64; 2],
}

/// The totals of a solution.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// `Σ_a x_a · L_a / 1000`.
    pub vehicle_km: f64,
    /// `Σ_a x_a · t_a(x_a) / 3600`.
    pub vehicle_hours: f64,
    /// Trips between different zones (the demand).
    pub trips: f64,
    pub assigned_trips: f64,
    pub unserved_trips: f64,
    /// Pairs no path joins, by origin then destination.
    pub unserved_pairs: Vec<UnservedPair>,
    /// Trips within a zone (never on the network).
    pub intrazonal_trips: f64,
    /// Mean time of an assigned trip, minutes.
    pub mean_trip_minutes: f64,
    /// Open links loaded above their capacity.
    pub links_over_capacity: usize,
    /// Car links of the baseline closed in this network.
    pub closed_links: usize,
    pub relative_gap: f64,
    pub iterations: usize,
    pub converged: bool,
    /// `converged`, `max-iterations`, `max-seconds`, `cancelled` or `no-demand`.
    pub stop: &'static str,
    /// Seconds the solve took.
    pub seconds: f64,
    /// Origins that reused the warm start's state.
    pub warm_origins: usize,
}

/// Per-link values and totals of one solution.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// One per link of the network solved: the street graph's (links never open to cars: `open: false`, all zero),
    /// then those a scenario added ([`AddedLink`]).
    pub links: Vec<LinkValue>,
    pub summary: Summary,
}

fn stop_name(s: Stop) -> &'static str {
    match s {
        Stop::Converged => "converged",
        Stop::MaxIterations => "max-iterations",
        Stop::MaxSeconds => "max-seconds",
        Stop::Cancelled => "cancelled",
        Stop::NoDemand => "no-demand",
    }
}

/// The values of `solution` on `net` (the baseline's network or a scenario's).
pub fn evaluate(model: &CityModel, net: &Network, solution: &Solution) -> Outcome {
    let mut vkm = 0.0;
    let mut vh = 0.0;
    let mut over = 0;
    let links: Vec<LinkValue> = (0..net.link_count())
        .map(|l| {
            let open = net.is_open(l as LinkIdx);
            let link = net.link(l as LinkIdx);
            if !open {
                return LinkValue {
                    open,
                    flow: 0.0,
                    capacity: link.capacity,
                    vc: 0.0,
                    time_s: None,
                };
            }
            let flow = solution.flows[l];
            let time = assign::bpr::travel_time(link, flow);
            if flow > 0.0 {
                vkm += flow * link.length / 1000.0;
                vh += flow * time / 3600.0;
            }
            let vc = if link.capacity > 0.0 {
                flow / link.capacity
            } else {
                0.0
            };
            if vc > 1.0 {
                over += 1;
            }
            LinkValue {
                open,
                flow,
                capacity: link.capacity,
                vc,
                time_s: Some(time),
            }
        })
        .collect();
    let r = &solution.report;
    let zone_at = |z: usize| {
        model
            .zones
            .get(z)
            .map_or([0.0; 2], |zone| [zone.lon, zone.lat])
    };
    let unserved_pairs = r
        .unserved
        .iter()
        .map(|u| UnservedPair {
            origin: u.origin,
            destination: u.destination,
            trips: u.trips,
            origin_at: zone_at(u.origin),
            destination_at: zone_at(u.destination),
        })
        .collect();
    let closed_links = car_links(model).filter(|&l| !net.is_open(l)).count();
    Outcome {
        links,
        summary: Summary {
            vehicle_km: vkm,
            vehicle_hours: vh,
            trips: model.demand.total(),
            assigned_trips: r.assigned,
            unserved_trips: r.unserved_trips,
            unserved_pairs,
            intrazonal_trips: r.intrazonal_trips,
            mean_trip_minutes: if r.assigned > 0.0 {
                vh * 60.0 / r.assigned
            } else {
                0.0
            },
            links_over_capacity: over,
            closed_links,
            relative_gap: r.relative_gap,
            iterations: r.iterations,
            converged: r.converged(),
            stop: stop_name(r.stop),
            seconds: r.seconds,
            warm_origins: r.warm_origins,
        },
    }
}

/// The baseline: the city's own network solved cold.
pub fn baseline(
    model: &CityModel,
    options: &RunOptions<'_>,
) -> Result<(Solution, Outcome), AssignError> {
    let s = solve(model, &model.network, None, options)?;
    let o = evaluate(model, &model.network, &s);
    Ok((s, o))
}

/// A solved scenario.
#[derive(Debug, Clone)]
pub struct ScenarioResult {
    pub applied: AppliedReport,
    pub network: Network,
    pub solution: Solution,
    pub outcome: Outcome,
}

/// Applies `scenario` and solves it warm-started from the baseline's solution.
pub fn run(
    model: &CityModel,
    baseline: &Solution,
    scenario: &Scenario,
    options: &RunOptions<'_>,
) -> Result<ScenarioResult, ScenarioError> {
    let (network, applied) = apply(model, scenario)?;
    let solution = solve(model, &network, Some(baseline), options)?;
    let outcome = evaluate(model, &network, &solution);
    Ok(ScenarioResult {
        applied,
        network,
        solution,
        outcome,
    })
}

/// `100 · (new − base) / base`; 0 when both are (nearly) zero, None when only the base is.
pub fn percent(base: f64, new: f64) -> Option<f64> {
    const EPS: f64 = 1e-9;
    if base.abs() > EPS {
        Some(100.0 * (new - base) / base)
    } else if (new - base).abs() <= EPS {
        Some(0.0)
    } else {
        None
    }
}

/// A link's change.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkDelta {
    pub base_flow: f64,
    pub flow: f64,
    pub delta_flow: f64,
    pub delta_pct: Option<f64>,
}

/// A street's change (its flow is vehicle-km per km of street, see the module doc).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StreetDelta {
    pub name: String,
    pub length_m: f64,
    pub base_flow: f64,
    pub flow: f64,
    pub delta_flow: f64,
    pub delta_pct: Option<f64>,
    pub base_vehicle_km: f64,
    pub vehicle_km: f64,
}

/// A scenario against the baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Delta {
    pub vehicle_km: f64,
    pub vehicle_km_pct: Option<f64>,
    pub vehicle_hours: f64,
    pub vehicle_hours_pct: Option<f64>,
    pub unserved_trips: f64,
    /// One per link of the street graph.
    #[serde(skip)]
    pub links: Vec<LinkDelta>,
    /// Named streets with car links in the baseline, the largest |Δflow| first.
    pub streets: Vec<StreetDelta>,
}

/// The change from `base` to `new` (two outcomes of the same city model).
pub fn delta(model: &CityModel, base: &Outcome, new: &Outcome) -> Delta {
    let links: Vec<LinkDelta> = base
        .links
        .iter()
        .zip(&new.links)
        .map(|(b, n)| LinkDelta {
            base_flow: b.flow,
            flow: n.flow,
            delta_flow: n.flow - b.flow,
            delta_pct: percent(b.flow, n.flow),
        })
        .collect();
    // per street: vehicle-km over the street's length (each RoadLink counted once)
    #[derive(Default)]
    struct Acc<'a> {
        length: f64,
        base_vkm: f64,
        vkm: f64,
        seen: Vec<&'a str>,
    }
    let lengths = model.graph.length_m();
    let mut streets: BTreeMap<&str, Acc> = BTreeMap::new();
    for l in car_links(model) {
        let i = l as usize;
        let Some(name) = model.link_names[i].as_deref() else {
            continue;
        };
        let acc = streets.entry(name).or_default();
        acc.base_vkm += base.links[i].flow * lengths[i] / 1000.0;
        acc.vkm += new.links[i].flow * lengths[i] / 1000.0;
        let entity = road_link_of(model.graph.link_id(l)).map_or("", |(e, _)| e);
        if !acc.seen.contains(&entity) {
            acc.seen.push(entity);
            acc.length += lengths[i];
        }
    }
    let mut streets: Vec<StreetDelta> = streets
        .into_iter()
        .map(|(name, a)| {
            let per_m = |vkm: f64| {
                if a.length > 0.0 {
                    vkm * 1000.0 / a.length
                } else {
                    0.0
                }
            };
            let (bf, f) = (per_m(a.base_vkm), per_m(a.vkm));
            StreetDelta {
                name: name.to_string(),
                length_m: a.length,
                base_flow: bf,
                flow: f,
                delta_flow: f - bf,
                delta_pct: percent(bf, f),
                base_vehicle_km: a.base_vkm,
                vehicle_km: a.vkm,
            }
        })
        .collect();
    streets.sort_by(|a, b| {
        b.delta_flow
            .abs()
            .total_cmp(&a.delta_flow.abs())
            .then_with(|| a.name.cmp(&b.name))
    });
    let (b, n) = (&base.summary, &new.summary);
    Delta {
        vehicle_km: n.vehicle_km - b.vehicle_km,
        vehicle_km_pct: percent(b.vehicle_km, n.vehicle_km),
        vehicle_hours: n.vehicle_hours - b.vehicle_hours,
        vehicle_hours_pct: percent(b.vehicle_hours, n.vehicle_hours),
        unserved_trips: n.unserved_trips - b.unserved_trips,
        links,
        streets,
    }
}

/// The change of one `RoadLink` (both directions together).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoadLinkDelta {
    pub delta_flow: f64,
    pub delta_pct: Option<f64>,
}

/// The values of one `RoadLink` entity: its directions' flows added up, the larger volume/capacity and travel time
/// of its open directions, and (against a baseline) the change of its flow.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoadLinkValues {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub flow: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow_forward: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow_backward: Option<f64>,
    pub vc: f64,
    pub time_s: Option<f64>,
    /// No direction is open to cars (it was in the baseline).
    pub closed: bool,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub delta: Option<RoadLinkDelta>,
    /// The line of a link the scenario added (GeoJSON LineString); `RoadLink`s have theirs in the store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub geometry: Option<Value>,
}

/// Per `RoadLink` entity id, the values of `outcome` (and its change from `base`, when given), for every
/// `RoadLink` with a car link in the baseline.
pub fn road_links(
    model: &CityModel,
    outcome: &Outcome,
    base: Option<&Outcome>,
) -> BTreeMap<String, RoadLinkValues> {
    let mut out: BTreeMap<String, (RoadLinkValues, f64)> = BTreeMap::new();
    for l in car_links(model) {
        let i = l as usize;
        let Some((entity, dir)) = road_link_of(model.graph.link_id(l)) else {
            continue;
        };
        let v = &outcome.links[i];
        let (entry, base_flow) = out.entry(entity.to_string()).or_insert_with(|| {
            (
                RoadLinkValues {
                    name: model.link_names[i].clone(),
                    flow: 0.0,
                    flow_forward: None,
                    flow_backward: None,
                    vc: 0.0,
                    time_s: None,
                    closed: true,
                    delta: None,
                    geometry: None,
                },
                0.0,
            )
        });
        *base_flow += base.map_or(0.0, |b| b.links[i].flow);
        if !v.open {
            continue;
        }
        entry.closed = false;
        entry.flow += v.flow;
        match dir {
            Direction::Forward => entry.flow_forward = Some(v.flow),
            Direction::Backward => entry.flow_backward = Some(v.flow),
        }
        entry.vc = entry.vc.max(v.vc);
        entry.time_s = match (entry.time_s, v.time_s) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
    out.into_iter()
        .map(|(id, (mut v, base_flow))| {
            if base.is_some() {
                v.delta = Some(RoadLinkDelta {
                    delta_flow: v.flow - base_flow,
                    delta_pct: percent(base_flow, v.flow),
                });
            }
            (id, v)
        })
        .collect()
}

/// The values of the links a scenario added, keyed by [`AddedLink::id`], in the form of [`road_links`] (with the
/// link's line as `geometry`, and against a baseline their whole flow as the change).
pub fn added_road_links(
    applied: &AppliedReport,
    outcome: &Outcome,
    with_delta: bool,
) -> BTreeMap<String, RoadLinkValues> {
    applied
        .added
        .iter()
        .filter_map(|a| {
            let fwd = outcome.links.get(a.forward as usize)?;
            let bwd = a.backward.and_then(|b| outcome.links.get(b as usize));
            let flow = fwd.flow + bwd.map_or(0.0, |b| b.flow);
            let time_s = match (fwd.time_s, bwd.and_then(|b| b.time_s)) {
                (Some(x), Some(y)) => Some(x.max(y)),
                (x, y) => x.or(y),
            };
            let values = RoadLinkValues {
                name: a.name.clone(),
                flow,
                flow_forward: Some(fwd.flow),
                flow_backward: bwd.map(|b| b.flow),
                vc: fwd.vc.max(bwd.map_or(0.0, |b| b.vc)),
                time_s,
                closed: false,
                delta: with_delta.then(|| RoadLinkDelta {
                    delta_flow: flow,
                    delta_pct: percent(0.0, flow),
                }),
                geometry: Some(serde_json::json!({"type": "LineString", "coordinates": a.path})),
            };
            Some((a.id.clone(), values))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traffic::city::{self, CityOptions};
    use serde_json::json;
    use twin_model::context::Context;
    use twin_model::ngsi::parse_entity;
    use twin_model::{Entity, Provenance};

    fn entity(doc: Value) -> Entity {
        parse_entity(
            &doc,
            &Context::core(),
            chrono::Utc::now(),
            &Provenance::default(),
        )
        .unwrap()
    }

    /// A two-way street `id` from node `a` to node `b`.
    fn road(
        id: &str,
        name: &str,
        a: (u64, [f64; 2]),
        b: (u64, [f64; 2]),
        kmh: f64,
        cap: f64,
    ) -> Entity {
        let p = |v: Value| json!({"type": "Property", "value": v});
        let length = twin_graph::path::haversine_m((a.1[0], a.1[1]), (b.1[0], b.1[1]));
        entity(json!({
            "id": format!("urn:ngsi-ld:RoadLink:{id}"), "type": "RoadLink",
            "name": p(json!(name)),
            "startNode": p(json!(a.0)), "endNode": p(json!(b.0)),
            "length": p(json!(length)), "freeFlowSpeed": p(json!(kmh)),
            "capacityForward": p(json!(cap)), "capacityBackward": p(json!(cap)),
            "lanesForward": p(json!(1)), "lanesBackward": p(json!(1)),
            "carAccess": p(json!({"forward": true, "backward": true})),
            "location": {"type": "GeoProperty", "value": {"type": "LineString", "coordinates": [a.1, b.1]}},
        }))
    }

    fn building(id: &str, x: f64, y: f64) -> Entity {
        let (dx, dy) = (0.0009, 0.00045);
        entity(json!({
            "id": format!("urn:ngsi-ld:Building:{id}"), "type": "Building",
            "category": {"type": "Property", "value": ["yes"]},
            "floorsAboveGround": {"type": "Property", "value": 5},
            "location": {"type": "GeoProperty", "value": {"type": "Polygon", "coordinates": [[
                [x - dx, y - dy], [x + dx, y - dy], [x + dx, y + dy], [x - dx, y + dy], [x - dx, y - dy]]]}},
        }))
    }

    /// Two routes between a west and an east zone: Mainkatu (A–B–C, short, 60 veh/h) and Westkatu–Backkatu–
    /// Eastkatu (A–D–E–C, longer, 1000 veh/h). About 100 trips each way, split between the two at equilibrium.
    fn town() -> CityModel {
        let a = (1, [24.930, 60.170]);
        let b = (2, [24.940, 60.170]);
        let c = (3, [24.950, 60.170]);
        let d = (4, [24.930, 60.165]);
        let e = (5, [24.950, 60.165]);
        let entities = vec![
            road("main1", "Mainkatu", a, b, 40.0, 60.0),
            road("main2", "Mainkatu", b, c, 40.0, 60.0),
            road("west", "Westkatu", a, d, 50.0, 1000.0),
            road("back", "Backkatu", d, e, 50.0, 1000.0),
            road("east", "Eastkatu", e, c, 50.0, 1000.0),
            building("w", 24.929, 60.1705),
            building("e", 24.951, 60.1705),
        ];
        city::build(
            &entities,
            &CityOptions {
                gateway_load: 0.0,
                ..CityOptions::default()
            },
        )
        .expect("town")
    }

    fn scenario(edits: Value) -> Scenario {
        serde_json::from_value(json!({"name": "test", "edits": edits})).expect("scenario")
    }

    fn link(m: &CityModel, id: &str) -> LinkIdx {
        (0..m.graph.link_count() as LinkIdx)
            .find(|&l| {
                m.graph.link_id(l) == &ExternalId::Text(format!("urn:ngsi-ld:RoadLink:{id}"))
            })
            .unwrap_or_else(|| panic!("no link {id}"))
    }

    fn base(m: &CityModel) -> (Solution, Outcome) {
        baseline(m, &RunOptions::default()).expect("baseline")
    }

    #[test]
    fn scenarios_round_trip_as_json() {
        let doc = json!({"name": "Summer", "description": "works", "edits": [
            {"kind": "closeStreet", "name": "Mainkatu"},
            {"kind": "closeLinks", "links": ["urn:ngsi-ld:RoadLink:a", "urn:ngsi-ld:RoadLink:b+"]},
            {"kind": "closeArea", "polygon": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}},
            {"kind": "setCapacity", "target": {"street": "X"}, "factor": 0.5},
            {"kind": "setCapacity", "target": {"links": ["urn:ngsi-ld:RoadLink:a"]}, "vehiclesPerHour": 800.0},
            {"kind": "setSpeed", "target": {"area": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}}, "kmh": 30.0},
            {"kind": "setLanes", "target": {"street": "X"}, "lanes": 2.0},
            {"kind": "oneWay", "target": {"street": "X"}, "keep": "backward"},
        ]});
        let s: Scenario = serde_json::from_value(doc.clone()).unwrap();
        assert_eq!(s.edits.len(), 8);
        assert_eq!(
            s.edits[7],
            Edit::OneWay {
                target: Target::Street("X".into()),
                keep: Direction::Backward
            }
        );
        let back = serde_json::to_value(&s).unwrap();
        assert_eq!(serde_json::from_value::<Scenario>(back).unwrap(), s);
        // typos are refused with the name of what is wrong
        for (bad, says) in [
            (json!({"kind": "closeStret", "name": "X"}), "closeStret"),
            (json!({"kind": "closeStreet", "nme": "X"}), "nme"),
            (
                json!({"kind": "setSpeed", "target": {"road": "X"}, "kmh": 3}),
                "road",
            ),
            (
                json!({"kind": "oneWay", "target": {"street": "X"}, "keep": "up"}),
                "up",
            ),
        ] {
            let e = serde_json::from_value::<Scenario>(json!({"name": "t", "edits": [bad]}))
                .unwrap_err()
                .to_string();
            assert!(e.contains(says), "{e}");
        }
    }

    #[test]
    fn closing_a_street_moves_its_traffic() {
        let m = town();
        assert_eq!(m.zones.len(), 2);
        let (bs, bo) = base(&m);
        assert!(bs.report.converged());
        let main = m.street_links("Mainkatu");
        assert_eq!(main.len(), 4);
        assert!(
            main.iter().any(|&l| bo.links[l as usize].flow > 1.0),
            "the short road is used"
        );
        let s = scenario(json!([{"kind": "closeStreet", "name": "Mainkatu"}]));
        let r = run(&m, &bs, &s, &RunOptions::default()).unwrap();
        assert_eq!(r.applied.edits[0].matched, 4);
        assert_eq!(r.applied.closed_links, 4);
        assert_eq!(r.outcome.summary.closed_links, 4);
        for &l in &main {
            assert!(!r.network.is_open(l));
            assert_eq!(r.outcome.links[l as usize].flow, 0.0);
            assert_eq!(r.outcome.links[l as usize].time_s, None);
        }
        assert!(r.solution.report.converged());
        assert_eq!(r.outcome.summary.unserved_trips, 0.0);
        let d = delta(&m, &bo, &r.outcome);
        assert!(d.vehicle_hours > 0.0 && d.vehicle_km > 0.0, "{d:?}");
        let back = d.streets.iter().find(|s| s.name == "Backkatu").unwrap();
        assert!(
            back.delta_flow > 1.0 && back.delta_pct.unwrap() > 0.0,
            "{back:?}"
        );
        let mainkatu = d.streets.iter().find(|s| s.name == "Mainkatu").unwrap();
        assert_eq!(mainkatu.flow, 0.0);
        assert_eq!(mainkatu.delta_pct, Some(-100.0));
        // per RoadLink: closed, with the loss; the back road gained
        let rl = road_links(&m, &r.outcome, Some(&bo));
        let m1 = &rl["urn:ngsi-ld:RoadLink:main1"];
        assert!(m1.closed && m1.flow == 0.0 && m1.time_s.is_none());
        assert!(m1.delta.unwrap().delta_flow < 0.0);
        let b = &rl["urn:ngsi-ld:RoadLink:back"];
        assert!(!b.closed && b.delta.unwrap().delta_flow > 1.0);
        assert!(b.flow_forward.is_some() && b.flow_backward.is_some());
        let v = serde_json::to_value(b).unwrap();
        assert!(
            v["deltaFlow"].as_f64().unwrap() > 1.0 && v.get("timeS").is_some(),
            "{v}"
        );
        // nothing anywhere is NaN
        let all = serde_json::to_string(&(&r.outcome.summary, &d, &rl)).unwrap();
        assert!(!all.contains("NaN"), "{all}");
    }

    #[test]
    fn an_added_street_takes_traffic_from_the_congested_one() {
        let m = town();
        let (bs, bo) = base(&m);
        // a wide road from A to C, north of Mainkatu, its ends drawn a few metres off the nodes
        let s = scenario(
            json!([{"kind": "addLink", "name": "Newkatu", "roadClass": "secondary",
            "path": [[24.93002, 60.17001], [24.940, 60.1712], [24.94998, 60.16999]]}]),
        );
        let r = run(&m, &bs, &s, &RunOptions::default()).unwrap();
        let added = &r.applied.added[0];
        assert_eq!((added.from_node, added.to_node), (1, 3));
        assert!(
            added.joined_m.iter().all(|&d| d > 0.5 && d < 5.0),
            "{:?}",
            added.joined_m
        );
        assert_eq!(
            added.path[0],
            [24.930, 60.170],
            "the ends move onto the nodes"
        );
        assert_eq!(added.capacity, 1000.0, "secondary: 1 lane × 1000 veh/h");
        assert_eq!(added.kmh, 50.0);
        let base_links = m.network.link_count();
        assert_eq!(r.network.link_count(), base_links + 2);
        assert_eq!(r.outcome.links.len(), base_links + 2);
        let (f, b) = (added.forward as usize, added.backward.unwrap() as usize);
        assert!(f >= base_links && b >= base_links);
        assert!(r.outcome.links[f].flow > 10.0 && r.outcome.links[b].flow > 10.0);
        let main_flow = |o: &Outcome| -> f64 {
            m.street_links("Mainkatu")
                .iter()
                .map(|&l| o.links[l as usize].flow)
                .sum()
        };
        assert!(main_flow(&r.outcome) < main_flow(&bo) - 1.0);
        assert!(r.outcome.summary.vehicle_hours < bo.summary.vehicle_hours);
        assert_eq!(r.outcome.summary.unserved_trips, 0.0);
        // the warm start reaches the equilibrium a cold solve of the same network finds
        let cold = solve(&m, &r.network, None, &RunOptions::default()).unwrap();
        for (l, (w, c)) in r.solution.flows.iter().zip(&cold.flows).enumerate() {
            assert!(
                (w - c).abs() <= 1e-4 * c.abs().max(1.0),
                "link {l}: {w} vs {c}"
            );
        }
        // flow is conserved at every node that is not a zone
        let zones: Vec<NodeIdx> = r.network.zone_nodes().to_vec();
        for n in 0..r.network.node_count() as NodeIdx {
            if zones.contains(&n) {
                continue;
            }
            let inflow: f64 = r
                .network
                .in_links(n)
                .iter()
                .map(|&l| r.solution.flows[l as usize])
                .sum();
            let outflow: f64 = r
                .network
                .out_links(n)
                .iter()
                .map(|&l| r.solution.flows[l as usize])
                .sum();
            assert!(
                (inflow - outflow).abs() < 1e-6,
                "node {n}: {inflow} in, {outflow} out"
            );
        }
        // its results, keyed by its id, with its line
        let values = added_road_links(&r.applied, &r.outcome, true);
        let v = &values["added-0"];
        assert_eq!(v.name.as_deref(), Some("Newkatu"));
        assert!((v.flow - r.outcome.links[f].flow - r.outcome.links[b].flow).abs() < 1e-9);
        assert_eq!(v.delta.unwrap().delta_flow, v.flow);
        assert_eq!(
            v.geometry.as_ref().unwrap()["coordinates"][1],
            json!([24.940, 60.1712])
        );
        // the rest of the results keep one value per street graph link
        let d = delta(&m, &bo, &r.outcome);
        assert_eq!(d.links.len(), base_links);
        assert!(d.vehicle_hours < 0.0);
    }

    #[test]
    fn an_added_one_way_street_and_bad_added_streets() {
        let m = town();
        let (bs, _) = base(&m);
        let s = scenario(
            json!([{"kind": "addLink", "oneWay": true, "lanes": 2, "kmh": 30,
            "path": [[24.930, 60.170], [24.950, 60.170]]}]),
        );
        let r = run(&m, &bs, &s, &RunOptions::default()).unwrap();
        let added = &r.applied.added[0];
        assert_eq!(added.backward, None);
        assert_eq!(added.capacity, 1000.0, "residential: 2 lanes × 500 veh/h");
        assert_eq!(r.network.link_count(), m.network.link_count() + 1);
        assert!(r.outcome.links[added.forward as usize].flow > 0.0);
        let v = &added_road_links(&r.applied, &r.outcome, false)["added-0"];
        assert_eq!(v.flow_backward, None);
        assert!(v.delta.is_none());
        for (edit, says) in [
            (
                json!({"kind": "addLink", "path": [[24.930, 60.170], [24.990, 60.170]]}),
                "last point is 2",
            ),
            (
                json!({"kind": "addLink", "path": [[24.930, 60.170], [24.9301, 60.1701]]}),
                "same node",
            ),
            (
                json!({"kind": "addLink", "path": [[24.930, 60.170]]}),
                "at least two",
            ),
            (
                json!({"kind": "addLink", "roadClass": "footway", "path": [[24.93, 60.17], [24.95, 60.17]]}),
                "footway",
            ),
            (
                json!({"kind": "addLink", "kmh": 0, "path": [[24.93, 60.17], [24.95, 60.17]]}),
                "kmh must be more than 0",
            ),
            (
                json!({"kind": "addLink", "path": [[24.93, 60.17], [240.0, 60.17]]}),
                "on Earth",
            ),
        ] {
            let e = run(&m, &bs, &scenario(json!([edit])), &RunOptions::default())
                .unwrap_err()
                .to_string();
            assert!(e.contains("edits[0] (addLink)") && e.contains(says), "{e}");
        }
        // round trip
        let doc = json!({"name": "n", "edits": [{"kind": "addLink", "path": [[1.0, 2.0], [3.0, 4.0]],
            "name": "X", "roadClass": "tertiary", "kmh": 40.0, "lanes": 2.0, "vehiclesPerHour": 900.0,
            "oneWay": true}]});
        let s: Scenario = serde_json::from_value(doc.clone()).unwrap();
        assert_eq!(serde_json::to_value(&s).unwrap(), doc);
    }

    #[test]
    fn closing_links_by_id_and_direction() {
        let m = town();
        let s = scenario(json!([{"kind": "closeLinks", "links": ["urn:ngsi-ld:RoadLink:main1"]}]));
        let (net, rep) = apply(&m, &s).unwrap();
        assert_eq!(rep.closed_links, 2);
        assert!(!net.is_open(link(&m, "main1+")) && !net.is_open(link(&m, "main1-")));
        assert!(net.is_open(link(&m, "main2+")));
        let s = scenario(json!([{"kind": "closeLinks", "links": ["urn:ngsi-ld:RoadLink:main1-"]}]));
        let (net, rep) = apply(&m, &s).unwrap();
        assert_eq!(rep.closed, vec![link(&m, "main1-")]);
        assert!(net.is_open(link(&m, "main1+")));
        let e = apply(
            &m,
            &scenario(json!([{"kind": "closeLinks", "links": ["urn:ngsi-ld:RoadLink:main1", "urn:x:nope"]}])),
        )
        .unwrap_err();
        assert!(
            e.to_string().starts_with("edits[0] (closeLinks): ")
                && e.to_string().contains("urn:x:nope"),
            "{e}"
        );
    }

    #[test]
    fn closing_an_area() {
        let m = town();
        // a box around node B: both Mainkatu links touch it
        let s = scenario(
            json!([{"kind": "closeArea", "polygon": {"type": "Polygon", "coordinates": [[
            [24.939, 60.169], [24.941, 60.169], [24.941, 60.171], [24.939, 60.171], [24.939, 60.169]]]}}]),
        );
        let (_, rep) = apply(&m, &s).unwrap();
        let mut want = m.street_links("Mainkatu");
        want.sort_unstable();
        assert_eq!(rep.closed, want);
        let far = scenario(
            json!([{"kind": "closeArea", "polygon": {"type": "Polygon", "coordinates": [[
            [25.0, 61.0], [25.1, 61.0], [25.1, 61.1], [25.0, 61.0]]]}}]),
        );
        let e = apply(&m, &far).unwrap_err().to_string();
        assert!(
            e.contains("closeArea") && e.contains("meets the area"),
            "{e}"
        );
        let point = scenario(
            json!([{"kind": "closeArea", "polygon": {"type": "Point", "coordinates": [24.94, 60.17]}}]),
        );
        assert!(apply(&m, &point)
            .unwrap_err()
            .to_string()
            .contains("Polygon"));
    }

    #[test]
    fn capacity_lanes_and_speed() {
        let m = town();
        let (bs, bo) = base(&m);
        let l = link(&m, "main1+");
        let cap0 = m.network.link(l).capacity;
        let double = scenario(
            json!([{"kind": "setCapacity", "target": {"street": "Mainkatu"}, "factor": 2.0}]),
        );
        let (net, rep) = apply(&m, &double).unwrap();
        assert_eq!((rep.edits[0].matched, rep.closed_links), (4, 0));
        assert_eq!(net.link(l).capacity, 2.0 * cap0);
        let r2 = run(&m, &bs, &double, &RunOptions::default()).unwrap();
        // the same links: every origin starts from its baseline bush
        assert_eq!(r2.solution.report.warm_origins, 2);
        assert!(r2.outcome.links[l as usize].flow > bo.links[l as usize].flow + 1e-6);
        assert!(r2.outcome.summary.vehicle_hours < bo.summary.vehicle_hours);
        // two lanes where there was one: the same capacity, so the same flows
        let lanes =
            scenario(json!([{"kind": "setLanes", "target": {"street": "Mainkatu"}, "lanes": 2}]));
        let rl = run(&m, &bs, &lanes, &RunOptions::default()).unwrap();
        assert_eq!(rl.network.link(l).capacity, 2.0 * cap0);
        assert!(
            (rl.outcome.links[l as usize].flow - r2.outcome.links[l as usize].flow).abs() < 1e-6
        );
        // a fixed capacity, then lanes: the lane change scales what the first edit left
        let vph = scenario(json!([
            {"kind": "setCapacity", "target": {"links": ["urn:ngsi-ld:RoadLink:main1+"]}, "vehiclesPerHour": 300},
            {"kind": "setLanes", "target": {"links": ["urn:ngsi-ld:RoadLink:main1+"]}, "lanes": 3},
        ]));
        let (net, _) = apply(&m, &vph).unwrap();
        assert_eq!(net.link(l).capacity, 900.0);
        assert_eq!(net.link(link(&m, "main1-")).capacity, cap0);
        // a slower street loses traffic
        let slow =
            scenario(json!([{"kind": "setSpeed", "target": {"street": "Mainkatu"}, "kmh": 20}]));
        let rs = run(&m, &bs, &slow, &RunOptions::default()).unwrap();
        let len = m.graph.length_m()[l as usize];
        assert!((rs.network.link(l).free_flow_time - len / (20.0 / 3.6)).abs() < 1e-9);
        assert!(rs.outcome.links[l as usize].flow < bo.links[l as usize].flow - 1e-6);
        // bad numbers name the edit
        for (edit, says) in [
            (
                json!({"kind": "setCapacity", "target": {"street": "Mainkatu"}}),
                "exactly one",
            ),
            (
                json!({"kind": "setCapacity", "target": {"street": "Mainkatu"}, "factor": 2, "vehiclesPerHour": 3}),
                "exactly one",
            ),
            (
                json!({"kind": "setCapacity", "target": {"street": "Mainkatu"}, "factor": 0}),
                "closeStreet",
            ),
            (
                json!({"kind": "setSpeed", "target": {"street": "Mainkatu"}, "kmh": -5}),
                "kmh",
            ),
            (
                json!({"kind": "setLanes", "target": {"street": "Mainkatu"}, "lanes": 0}),
                "lanes",
            ),
            (
                json!({"kind": "setSpeed", "target": {"street": "Mainkatu"}, "kmh": 1e308}),
                "kmh",
            ),
        ] {
            let e = apply(
                &m,
                &scenario(json!([{"kind": "closeStreet", "name": "Backkatu"}, edit])),
            )
            .unwrap_err()
            .to_string();
            assert!(e.starts_with("edits[1] (") && e.contains(says), "{e}");
        }
    }

    #[test]
    fn one_way_keeps_one_direction() {
        let m = town();
        let (bs, _) = base(&m);
        let s = scenario(
            json!([{"kind": "oneWay", "target": {"street": "Mainkatu"}, "keep": "forward"}]),
        );
        let r = run(&m, &bs, &s, &RunOptions::default()).unwrap();
        assert_eq!(
            (r.applied.edits[0].matched, r.applied.edits[0].closed),
            (4, 2)
        );
        assert!(r.network.is_open(link(&m, "main1+")) && !r.network.is_open(link(&m, "main1-")));
        assert!(r.network.is_open(link(&m, "main2+")) && !r.network.is_open(link(&m, "main2-")));
        assert_eq!(r.outcome.summary.unserved_trips, 0.0);
        let rl = road_links(&m, &r.outcome, None);
        let m1 = &rl["urn:ngsi-ld:RoadLink:main1"];
        assert!(!m1.closed && m1.flow_backward.is_none() && m1.flow_forward.is_some());
        // already one way: nothing to do is an error
        let again = scenario(json!([
            {"kind": "oneWay", "target": {"street": "Mainkatu"}, "keep": "forward"},
            {"kind": "oneWay", "target": {"links": ["urn:ngsi-ld:RoadLink:main1+"]}, "keep": "forward"},
        ]));
        let e = apply(&m, &again).unwrap_err().to_string();
        assert!(
            e.starts_with("edits[1] (oneWay)") && e.contains("forward only"),
            "{e}"
        );
    }

    #[test]
    fn unknown_streets_are_named() {
        let m = town();
        let e = apply(
            &m,
            &scenario(json!([{"kind": "closeStreet", "name": "mainkatu"}])),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "edits[0] (closeStreet): no street named \"mainkatu\" has links open to cars (did you mean \"Mainkatu\"?)"
        );
        let e = apply(
            &m,
            &scenario(json!([{"kind": "setSpeed", "target": {"street": "Nowhere"}, "kmh": 30}])),
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                ScenarioError::Edit {
                    edit: 0,
                    kind: "setSpeed",
                    ..
                }
            ),
            "{e}"
        );
        let unnamed =
            serde_json::from_value::<Scenario>(json!({"name": " ", "edits": []})).unwrap();
        assert!(matches!(
            apply(&m, &unnamed),
            Err(ScenarioError::Invalid(_))
        ));
        // no edits at all is the baseline
        let (net, rep) = apply(&m, &scenario(json!([]))).unwrap();
        assert_eq!(
            (rep.closed_links, net.link_count()),
            (0, m.network.link_count())
        );
    }

    #[test]
    fn a_closure_that_cuts_zones_off_is_reported() {
        let m = town();
        let (bs, bo) = base(&m);
        // node A (the west zone's) loses both its streets
        let s = scenario(json!([
            {"kind": "closeStreet", "name": "Westkatu"},
            {"kind": "closeLinks", "links": ["urn:ngsi-ld:RoadLink:main1"]},
        ]));
        let r = run(&m, &bs, &s, &RunOptions::default()).unwrap();
        let sum = &r.outcome.summary;
        assert!(
            (sum.unserved_trips - sum.trips).abs() < 1e-9 && sum.trips > 100.0,
            "{sum:?}"
        );
        assert_eq!(sum.unserved_pairs.len(), 2);
        let p = &sum.unserved_pairs[0];
        assert!(p.trips > 0.0 && p.origin_at.iter().all(|c| c.is_finite()));
        assert!(r.outcome.links.iter().all(|l| l.flow == 0.0));
        assert_eq!(sum.vehicle_km, 0.0);
        let d = delta(&m, &bo, &r.outcome);
        assert!((d.unserved_trips - sum.trips).abs() < 1e-9);
        assert_eq!(d.vehicle_hours_pct, Some(-100.0));
        let text = serde_json::to_string(&(sum, &d)).unwrap();
        assert!(!text.contains("NaN") && !text.contains("inf"), "{text}");
    }

    #[test]
    fn progress_reaches_one_and_cancels() {
        let m = town();
        let seen = std::sync::Mutex::new(Vec::new());
        let record = |p: &RunProgress| {
            seen.lock().unwrap().push(p.fraction);
            true
        };
        let opts = RunOptions {
            gap: 1e-12,
            progress: Some(&record),
            ..RunOptions::default()
        };
        let (s, _) = baseline(&m, &opts).unwrap();
        let seen = seen.into_inner().unwrap();
        assert!(!seen.is_empty());
        assert!(seen.iter().all(|f| (0.0..=1.0).contains(f)));
        if s.report.converged() {
            assert_eq!(*seen.last().unwrap(), 1.0);
        }
        // a callback that says stop stops the solve
        let stop = |_: &RunProgress| false;
        let opts = RunOptions {
            progress: Some(&stop),
            ..RunOptions::default()
        };
        let (s, o) = baseline(&m, &opts).unwrap();
        assert_eq!(s.report.stop, Stop::Cancelled);
        assert_eq!(o.summary.stop, "cancelled");
        assert_eq!(progress_fraction(1.0, 1e-4, 1e-8), 0.5);
        assert_eq!(progress_fraction(1.0, 1e-9, 1e-8), 1.0);
        assert_eq!(progress_fraction(f64::NAN, 1.0, 1e-8), 0.0);
        assert_eq!(percent(0.0, 5.0), None);
        assert_eq!(percent(0.0, 0.0), Some(0.0));
        assert_eq!(percent(10.0, 15.0), Some(50.0));
    }

    /// The Helsinki extract as the importer stores it (skipped unless CI=true when the data is missing).
    fn helsinki() -> Option<Vec<Entity>> {
        let p = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/data/osm/helsinki.osm.pbf");
        if !p.is_file() {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("CI=true but {} is missing", p.display());
            }
            eprintln!("skipping: {} not found", p.display());
            return None;
        }
        let prov = Provenance::default();
        let mut out = Vec::new();
        twin_import::osm::read_osm(&p, &mut |item| {
            match item {
                twin_import::osm::OsmItem::Entity(e) => out.push(e),
                twin_import::osm::OsmItem::Link(l) => {
                    out.push(l.to_entity(chrono::Utc::now(), &prov).expect("link"))
                }
                twin_import::osm::OsmItem::Node(..) => {}
            }
            Ok(())
        })
        .expect("read Helsinki");
        Some(out)
    }

    #[test]
    fn helsinki_scenarios() {
        let Some(entities) = helsinki() else { return };
        let m = city::build(&entities, &CityOptions::default()).expect("model");
        let (bs, bo) = base(&m);
        let s = scenario(json!([
            {"kind": "closeStreet", "name": "Fabianinkatu"},
            {"kind": "setCapacity", "target": {"street": "Mannerheimintie"}, "factor": 0.8},
        ]));
        let r = run(&m, &bs, &s, &RunOptions::default()).unwrap();
        assert!(r.solution.report.converged());
        assert_eq!(r.outcome.summary.unserved_trips, 0.0);
        assert!(r.outcome.summary.vehicle_hours > bo.summary.vehicle_hours);
        let d = delta(&m, &bo, &r.outcome);
        assert!(d.links.iter().any(|l| l.delta_flow > 1e-6));
        let fab = d.streets.iter().find(|s| s.name == "Fabianinkatu").unwrap();
        assert_eq!((fab.flow, fab.delta_pct), (0.0, Some(-100.0)));
        let rl = road_links(&m, &r.outcome, Some(&bo));
        assert!(rl.values().filter(|v| v.closed).count() >= 60);
        // Kaivokatu's closure cuts zones off: reported pair by pair
        let k = run(
            &m,
            &bs,
            &scenario(json!([{"kind": "closeStreet", "name": "Kaivokatu"}])),
            &RunOptions::default(),
        )
        .unwrap();
        let sum = &k.outcome.summary;
        assert!(sum.unserved_trips > 100.0 && !sum.unserved_pairs.is_empty());
        let listed: f64 = sum.unserved_pairs.iter().map(|p| p.trips).sum();
        assert!((listed - sum.unserved_trips).abs() < 1e-6 * listed);
    }
}
