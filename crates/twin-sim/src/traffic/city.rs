//! A traffic model for a real city from the twin's own entities: the street network (`RoadLink`), trip ends from
//! `Building` and `PointOfInterest` entities ([`super::trips`]), zones, a calibrated gravity matrix, the assignment
//! network, and street closures by name for scenarios.
//!
//! The car network is first cut to its largest strongly connected component (so that every zone can reach every
//! other: streets cut at the edge of an extract would otherwise strand trips), and zones connect to it.

use std::collections::HashMap;

use geo::{ChamberlainDuquetteArea, Geometry};
use serde_json::Value;
use twin_graph::{IslandReport, Mode, SnapIndex};
use twin_model::entity::iri;
use twin_model::geoquery::geometry_from_geojson;
use twin_model::Entity;

use twin_graph::LinkIdx;

use super::assign::{AssignError, Demand, Network};
use super::trips::{self, Activity, Distribution, GenerationRates, Zone};

const V: &str = iri::DEFAULT_CONTEXT;

/// How the city's demand is built.
#[derive(Debug, Clone)]
pub struct CityOptions {
    pub rates: GenerationRates,
    /// Zone cell side, metres.
    pub cell_m: f64,
    /// Target mean car trip time, minutes; capped at 80 % of the mean when cost is ignored (β = 0), since an extract
    /// smaller than a day's trips cannot hold longer ones.
    pub target_mean_min: f64,
    /// BPR `B` and power for every street.
    pub bpr_b: f64,
    pub bpr_power: f64,
    /// Gateways (external zones) where roads of at least `gateway_min_capacity` veh/h leave the extract, within
    /// `gateway_edge_m` of its edge, each loaded at `gateway_load` × that capacity (0 turns gateways off).
    pub gateway_load: f64,
    pub gateway_min_capacity: f64,
    pub gateway_edge_m: f64,
}

impl Default for CityOptions {
    fn default() -> Self {
        CityOptions {
            rates: GenerationRates::default(),
            cell_m: 400.0,
            target_mean_min: 12.0,
            bpr_b: 0.15,
            bpr_power: 4.0,
            gateway_load: 0.3,
            gateway_min_capacity: 1000.0,
            gateway_edge_m: 60.0,
        }
    }
}

/// The city's traffic model: the street graph, zones, the gravity matrix and the assignment network built on them.
pub struct CityModel {
    pub graph: twin_graph::Network,
    pub islands: IslandReport,
    pub zones: Vec<Zone>,
    /// Activity cells that could not be connected to the car network.
    pub unconnected_zones: usize,
    pub distribution: Distribution,
    pub demand: Demand,
    pub network: Network,
    /// Street name of every graph link (from its `RoadLink` entity), for closures by name.
    pub link_names: Vec<Option<String>>,
    /// The `RoadSegment` every graph link belongs to (its `refRoadSegment`), for matching counts.
    pub link_segments: Vec<Option<String>>,
}

pub(crate) fn value<'a>(e: &'a Entity, name: &str) -> Option<&'a Value> {
    let instances = e.attrs.get(&format!("{V}{name}"))?;
    instances
        .iter()
        .find(|a| a.dataset_id.is_none())
        .or(instances.first())
        .map(|a| &a.value)
}

pub(crate) fn first_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => items.first().and_then(Value::as_str).map(String::from),
        _ => None,
    }
}

/// A building or a point of interest of the city, as the models read it: where it is (a polygon's centroid), its use
/// category and, for a building, its footprint (m²) and floors (from the data, else height / 3 m, else the default).
pub struct CityPlace<'a> {
    pub entity: &'a Entity,
    pub lon: f64,
    pub lat: f64,
    pub category: String,
    /// `(footprint m², floors)` of a building; `None` for a point of interest.
    pub building: Option<(f64, f64)>,
}

/// The buildings and points of interest among `entities` that have a location.
pub fn city_places<'a>(
    entities: &'a [Entity],
    rates: &'a GenerationRates,
) -> impl Iterator<Item = CityPlace<'a>> + 'a {
    let building = format!("{V}Building");
    let poi = format!("{V}PointOfInterest");
    entities.iter().filter_map(move |e| {
        let is_building = e.types.contains(&building);
        if !is_building && !e.types.contains(&poi) {
            return None;
        }
        let g = e
            .geometries(iri::LOCATION)
            .next()
            .and_then(|v| geometry_from_geojson(v).ok())?;
        let c = geo::Centroid::centroid(&g)?;
        let building = is_building.then(|| {
            let footprint = match &g {
                Geometry::Polygon(p) => p.chamberlain_duquette_unsigned_area(),
                Geometry::MultiPolygon(m) => m.chamberlain_duquette_unsigned_area(),
                _ => 0.0,
            };
            let floors = rates.floors(
                value(e, "floorsAboveGround").and_then(Value::as_f64),
                value(e, "height").and_then(Value::as_f64),
            );
            (footprint, floors)
        });
        Some(CityPlace {
            entity: e,
            lon: c.x(),
            lat: c.y(),
            category: first_text(value(e, "category")).unwrap_or_default(),
            building,
        })
    })
}

impl CityPlace<'_> {
    /// A building's residents and whether they were counted: its `population` where the city has loaded it (a register
    /// or census count, a number ≥ 0; 0 is a building nobody lives in), else residential floor area (footprint × floors
    /// × [`trips::residential_share`] of its use category) / `m2_per_resident`. `None` for a point of interest and a
    /// building without residents.
    pub fn residents(&self, m2_per_resident: f64) -> Option<(f64, bool)> {
        let (footprint, floors) = self.building?;
        let counted = value(self.entity, "population")
            .and_then(Value::as_f64)
            .filter(|v| v.is_finite() && *v >= 0.0);
        let residents = counted.unwrap_or_else(|| {
            footprint * floors * trips::residential_share(&self.category) / m2_per_resident
        });
        (residents > 0.0).then_some((residents, counted.is_some()))
    }
}

/// Trip ends of the city's buildings (footprint area × floors, by use) and points of interest (by 15-minute
/// category), at their locations (a polygon's centroid).
pub fn activities(entities: &[Entity], rates: &GenerationRates) -> Vec<Activity> {
    city_places(entities, rates)
        .filter_map(|p| {
            let (prod, attr) = match p.building {
                Some((footprint, floors)) => rates.building(footprint, floors, &p.category),
                None => (0.0, rates.poi(&p.category)),
            };
            (prod + attr > 0.0).then_some(Activity {
                lon: p.lon,
                lat: p.lat,
                productions: prod,
                attractions: attr,
            })
        })
        .collect()
}

/// Builds the city's traffic model from its entities (see the module doc).
pub fn build(entities: &[Entity], options: &CityOptions) -> Result<CityModel, AssignError> {
    let (mut graph, skipped) = twin_graph::entities::network_from_entities(entities)
        .map_err(|e| AssignError::Network(e.to_string()))?;
    let _ = skipped;
    let islands = graph.drop_islands(Mode::Car);
    let snap = SnapIndex::build(&graph, Mode::Car);
    let acts = activities(entities, &options.rates);
    let (mut zones, unconnected_zones) = trips::grid_zones(&graph, &snap, &acts, options.cell_m);
    zones.extend(trips::gateway_zones(
        &graph,
        options.gateway_edge_m,
        options.gateway_min_capacity,
        options.gateway_load,
    ));
    if zones.len() < 2 {
        return Err(AssignError::Demand(format!(
            "only {} zone(s) with trips connect to the car network: nothing to travel between",
            zones.len()
        )));
    }
    let cost = trips::skim(&graph, &zones);
    let p: Vec<f64> = zones.iter().map(|z| z.productions).collect();
    let a: Vec<f64> = zones.iter().map(|z| z.attractions).collect();
    let free = trips::distribute(&p, &a, &cost, 0.0, 1e-10, 10_000);
    let target = options.target_mean_min.min(0.8 * free.mean_cost);
    let distribution = trips::calibrate(&p, &a, &cost, target, 1e-10);
    let mut triples = Vec::new();
    for (i, row) in distribution.trips.iter().enumerate() {
        for (j, &t) in row.iter().enumerate() {
            if t > 0.0 {
                triples.push((i, j, t));
            }
        }
    }
    let demand = Demand::from_triples(zones.len(), triples)?;
    let network = Network::from_graph(
        &graph.view(Mode::Car),
        zones.iter().map(|z| z.node).collect(),
        options.bpr_b,
        options.bpr_power,
    )?;
    let per_link = |attr: &str| -> Vec<Option<String>> {
        let by_entity: HashMap<&str, String> = entities
            .iter()
            .filter_map(|e| Some((e.id.as_str(), first_text(value(e, attr))?)))
            .collect();
        (0..graph.link_count() as u32)
            .map(|l| match graph.link_id(l) {
                // links are named after their entity, `+` forward and `-` backward
                twin_graph::ExternalId::Text(id) => {
                    by_entity.get(id.trim_end_matches(['+', '-'])).cloned()
                }
                twin_graph::ExternalId::Number(_) => None,
            })
            .collect()
    };
    let link_names = per_link("name");
    let link_segments = per_link("refRoadSegment");
    Ok(CityModel {
        graph,
        islands,
        zones,
        unconnected_zones,
        distribution,
        demand,
        network,
        link_names,
        link_segments,
    })
}

/// A count that could not be matched to the network, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Unmatched {
    pub id: String,
    pub reason: String,
}

impl CityModel {
    /// The `TrafficFlowObserved` entities as counts on the car network: `intensity` (vehicles per hour) on the
    /// link of their `refRoadSegment` nearest to their `location` (else the nearest car link), both directions
    /// unless `laneDirection` says `forward` or `backward`. Entities marked `simulated` (a model's own results)
    /// are not counts and are left out.
    pub fn counts(&self, entities: &[Entity]) -> (Vec<super::counts::Count>, Vec<Unmatched>) {
        let kind = format!("{V}TrafficFlowObserved");
        let snap = SnapIndex::build(&self.graph, Mode::Car);
        let mut counts = Vec::new();
        let mut unmatched = Vec::new();
        let observed = |e: &&Entity| {
            e.types.contains(&kind) && value(e, "simulated").and_then(Value::as_bool) != Some(true)
        };
        for e in entities.iter().filter(observed) {
            let miss = |reason: &str| Unmatched {
                id: e.id.clone(),
                reason: reason.to_string(),
            };
            let Some(observed) = value(e, "intensity").and_then(Value::as_f64) else {
                unmatched.push(miss("no numeric intensity"));
                continue;
            };
            let Some(point) = e
                .geometries(iri::LOCATION)
                .next()
                .and_then(|v| geometry_from_geojson(v).ok())
                .and_then(|g| geo::Centroid::centroid(&g))
            else {
                unmatched.push(miss("no location"));
                continue;
            };
            let at = (point.x(), point.y());
            let segment = first_text(value(e, "refRoadSegment"));
            let near = |l: usize| {
                self.graph
                    .link_geometry(l as LinkIdx)
                    .into_iter()
                    .map(|p| twin_graph::path::haversine_m(p, at))
                    .fold(f64::INFINITY, f64::min)
            };
            let link = match &segment {
                Some(s) => (0..self.graph.link_count())
                    .filter(|&l| {
                        self.link_segments[l].as_deref() == Some(s.as_str())
                            && self.network.is_open(l as LinkIdx)
                    })
                    .min_by(|&a, &b| near(a).total_cmp(&near(b))),
                None => snap.snap(at.0, at.1).map(|s| s.link as usize),
            };
            let Some(link) = link else {
                unmatched.push(miss(&match segment {
                    Some(s) => format!("no car link of {s} in the network"),
                    None => "no car link near its location".to_string(),
                }));
                continue;
            };
            let (from, to) = (self.graph.link_from()[link], self.graph.link_to()[link]);
            let reverse = (0..self.graph.link_count()).find(|&l| {
                self.graph.link_from()[l] == to
                    && self.graph.link_to()[l] == from
                    && self.network.is_open(l as LinkIdx)
            });
            let direction = first_text(value(e, "laneDirection"));
            let links = match (direction.as_deref(), reverse) {
                (Some("forward"), _) | (_, None) => vec![link as LinkIdx],
                (Some("backward"), Some(r)) => vec![r as LinkIdx],
                (_, Some(r)) => vec![link as LinkIdx, r as LinkIdx],
            };
            counts.push(super::counts::Count {
                id: e.id.clone(),
                links,
                observed,
            });
        }
        (counts, unmatched)
    }

    /// The links of a street (every link whose `RoadLink` has this name, both directions), open to cars.
    pub fn street_links(&self, name: &str) -> Vec<LinkIdx> {
        self.link_names
            .iter()
            .enumerate()
            .filter(|(l, n)| n.as_deref() == Some(name) && self.network.is_open(*l as LinkIdx))
            .map(|(l, _)| l as LinkIdx)
            .collect()
    }
}
