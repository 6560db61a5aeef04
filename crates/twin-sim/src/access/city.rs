//! The 15-minute city of the twin's own entities: homes from `Building`s (residents from floor area), destinations
//! from `PointOfInterest`s by category, both anchored on the walk or bike network, and the model run over them.

use std::collections::HashMap;
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;
use serde_json::{json, Value};
use twin_graph::{IslandReport, Network, NodeIdx, SnapIndex};
use twin_model::Entity;

use super::graph::{AccessGraph, Movement};
use super::nearest::{Anchor, KNearest};
use crate::traffic::city::{city_places, first_text, value};
use crate::traffic::trips::GenerationRates;

/// The daily needs a 15-minute city is measured on by default: categories of the twin's POI scheme (see the OSM
/// importer's table).
pub const DAILY_NEEDS: [&str; 10] = [
    "grocery",
    "school",
    "childcare",
    "healthcare",
    "pharmacy",
    "park",
    "public_transport_stop",
    "restaurant_cafe",
    "culture",
    "sport",
];

/// Everything the model is run with.
#[derive(Debug, Clone)]
pub struct AccessOptions {
    pub movement: Movement,
    /// The destination categories, in the order of the results.
    pub categories: Vec<String>,
    /// How many nearest destinations of each category are kept per home.
    pub k: usize,
    /// The threshold of the score: a category is within reach when its nearest destination is at most this far.
    pub threshold_min: f64,
    /// Searches stop this far (minutes): farther destinations are "not within reach" (`None`).
    pub max_min: f64,
    /// Floor area per resident (m²) where no population is loaded.
    pub m2_per_resident: f64,
    /// Homes and destinations farther than this from the mode's network are left out (metres).
    pub max_snap_m: f64,
}

impl AccessOptions {
    pub fn new(movement: Movement) -> AccessOptions {
        AccessOptions {
            movement,
            categories: DAILY_NEEDS.iter().map(|s| s.to_string()).collect(),
            k: 3,
            threshold_min: 15.0,
            max_min: 30.0,
            m2_per_resident: 35.0,
            max_snap_m: 300.0,
        }
    }
}

/// The options a caller (the CLI, the HTTP API) states, before validation: what people choose.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccessParams {
    /// `walk` (default) or `bike`.
    pub mode: Option<String>,
    /// The threshold, minutes (default 15).
    pub minutes: Option<f64>,
    /// `adult` (default) or `older` (walking only).
    pub profile: Option<String>,
    /// A speed instead of the profile's or the bike's, km/h.
    pub speed_kmh: Option<f64>,
    /// Seconds at each crossing of a major road (default 15).
    pub crossing_s: Option<f64>,
    /// Nearest destinations kept per category (default 3).
    pub k: Option<usize>,
    /// The categories (default [`DAILY_NEEDS`]).
    pub categories: Option<Vec<String>>,
    /// Floor area per resident, m² (default 35).
    pub m2_per_resident: Option<f64>,
}

impl AccessParams {
    /// The model's options, or what is wrong with the parameters (named as `what` calls them, e.g. `--minutes` or
    /// `minutes`).
    pub fn options(&self, name: impl Fn(&str) -> String) -> Result<AccessOptions, String> {
        let walk = match self.mode.as_deref().unwrap_or("walk") {
            "walk" => true,
            "bike" => false,
            other => {
                return Err(format!(
                    "{} must be walk or bike, not {other:?}",
                    name("mode")
                ))
            }
        };
        let profile = match self.profile.as_deref().unwrap_or("adult") {
            "adult" => super::WalkProfile::Adult,
            "older" => super::WalkProfile::Older,
            other => {
                return Err(format!(
                    "{} must be adult or older, not {other:?}",
                    name("profile")
                ))
            }
        };
        let mut movement = if walk {
            Movement::walk(profile.speed_mps())
        } else {
            Movement::bike(super::BIKE_SPEED_MPS)
        };
        if let Some(kmh) = self.speed_kmh {
            if !(kmh.is_finite() && kmh > 0.0 && kmh <= 60.0) {
                return Err(format!(
                    "{} must be above 0 and at most 60, not {kmh}",
                    name("speed-kmh")
                ));
            }
            movement.speed_mps = kmh / 3.6;
        }
        if let Some(c) = self.crossing_s {
            if !(c.is_finite() && (0.0..=600.0).contains(&c)) {
                return Err(format!(
                    "{} must be from 0 to 600, not {c}",
                    name("crossing-s")
                ));
            }
            movement.crossing_s = c;
        }
        let mut o = AccessOptions::new(movement);
        let minutes = self.minutes.unwrap_or(15.0);
        if !(minutes.is_finite() && minutes > 0.0 && minutes <= 120.0) {
            return Err(format!(
                "{} must be above 0 and at most 120, not {minutes}",
                name("minutes")
            ));
        }
        o.threshold_min = minutes;
        o.max_min = (2.0 * minutes).max(30.0);
        let k = self.k.unwrap_or(3);
        if !(1..=50).contains(&k) {
            return Err(format!("{} must be from 1 to 50, not {k}", name("k")));
        }
        o.k = k;
        if let Some(m2) = self.m2_per_resident {
            if !(m2.is_finite() && m2 > 0.0) {
                return Err(format!(
                    "{} must be above 0, not {m2}",
                    name("m2-per-resident")
                ));
            }
            o.m2_per_resident = m2;
        }
        if let Some(c) = &self.categories {
            if c.is_empty() || c.iter().any(|s| s.trim().is_empty()) {
                return Err(format!(
                    "{} needs names, comma-separated (e.g. grocery,school)",
                    name("categories")
                ));
            }
            let mut seen = Vec::new();
            for s in c {
                let s = s.trim().to_string();
                if !seen.contains(&s) {
                    seen.push(s);
                }
            }
            o.categories = seen;
        }
        Ok(o)
    }
}

/// A place on the network: where it is, and how it meets the network.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Place {
    pub id: String,
    pub lon: f64,
    pub lat: f64,
    /// Metres between the place and the network (infinite when a scenario's run finds no path open to it within
    /// the snapping distance).
    pub snap_m: f64,
    /// Metres within which it joins every path of the mode: [`ANCHOR_SLACK_M`] beyond the nearest in the baseline,
    /// kept by a scenario's run (see [`Anchoring`]).
    #[serde(skip)]
    pub reach_m: f64,
    #[serde(skip)]
    pub anchor: Anchor,
}

/// A home: a building with residents.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Home {
    #[serde(flatten)]
    pub place: Place,
    pub residents: f64,
}

/// A destination of one category.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Destination {
    #[serde(flatten)]
    pub place: Place,
    pub category: String,
    pub name: Option<String>,
}

/// How far beyond its nearest path a place joins the other paths of the mode (metres): the far side of the street,
/// a path behind the building.
pub const ANCHOR_SLACK_M: f64 = 25.0;

/// Where each place of a run joins the network: its id and reach (metres), which a scenario's run keeps.
pub type Reach = HashMap<String, f64>;

/// Anchors places on one mode's network: every link within the place's reach (its nearest link and any other within
/// [`ANCHOR_SLACK_M`] beyond it), each entered at its point nearest the place and walked (or ridden) from there to the
/// link's end, the best way to each node kept. The step from the place to a link is a straight line at the mode's
/// speed.
///
/// A scenario's run keeps each place's baseline reach ([`Anchoring::keeping`]): a closed path then only takes ways
/// away (the place's links are those of the baseline still open), and an opened or new one only adds them, so closing
/// paths never shortens anybody's way. A place left with no open link within its reach is cut off (an empty
/// anchor: nothing reaches it, it reaches nothing), not moved to a path farther away.
pub struct Anchoring<'a> {
    net: &'a Network,
    graph: &'a AccessGraph,
    snap: &'a SnapIndex,
    max_snap_m: f64,
    reach: Option<&'a Reach>,
}

impl<'a> Anchoring<'a> {
    /// `snap` indexes the links of the graph's mode ([`SnapIndex::build`]).
    pub fn new(
        net: &'a Network,
        graph: &'a AccessGraph,
        snap: &'a SnapIndex,
        max_snap_m: f64,
    ) -> Anchoring<'a> {
        Anchoring {
            net,
            graph,
            snap,
            max_snap_m,
            reach: None,
        }
    }

    /// Places named in `reach` join the links within the reach given there (a baseline's), not their own.
    pub fn keeping(mut self, reach: &'a Reach) -> Anchoring<'a> {
        self.reach = Some(reach);
        self
    }

    /// The place `id` at a point, joined to the network; `None` beyond the snapping distance. `towards`: seconds
    /// from the point to the nodes (a home) or from the nodes to the point (a destination).
    fn place(&self, id: &str, lon: f64, lat: f64, towards: bool) -> Option<Place> {
        let nearest = self.snap.snap_within(lon, lat, self.max_snap_m);
        let (reach_m, snap_m) = match (self.reach.and_then(|r| r.get(id)), nearest) {
            // a scenario's run: the baseline's reach, cut off when nothing there is open
            (Some(&kept), n) => (kept, n.map_or(f64::INFINITY, |n| n.distance_m)),
            (None, Some(n)) => (n.distance_m + ANCHOR_SLACK_M, n.distance_m),
            (None, None) => return None,
        };
        let speed = self.graph.movement().speed_mps;
        let mut anchor: Anchor = Vec::new();
        let mut join = |node: NodeIdx, s: f64| match anchor.iter_mut().find(|(v, _)| *v == node) {
            Some(e) => e.1 = e.1.min(s),
            None => anchor.push((node, s)),
        };
        for s in self.snap.links_within(lon, lat, reach_m) {
            let l = s.link as usize;
            let link_s = self.graph.link_seconds(s.link);
            if !link_s.is_finite() {
                continue;
            }
            let off = s.distance_m / speed;
            // each link is used from tail to head (the way back is its reverse link, indexed too when usable)
            if towards {
                join(self.net.link_to()[l], off + (1.0 - s.fraction) * link_s);
            } else {
                join(self.net.link_from()[l], off + s.fraction * link_s);
            }
        }
        anchor.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        Some(Place {
            id: id.to_string(),
            lon,
            lat,
            snap_m,
            reach_m,
            anchor,
        })
    }

    /// A home at a point: seconds from it to the network's nodes.
    pub fn home(&self, id: &str, lon: f64, lat: f64) -> Option<Place> {
        self.place(id, lon, lat, true)
    }

    /// A destination at a point: seconds from the network's nodes to it.
    pub fn destination(&self, id: &str, lon: f64, lat: f64) -> Option<Place> {
        self.place(id, lon, lat, false)
    }
}

/// Homes and destinations read from entities, and what was left out.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub homes: Vec<Home>,
    pub destinations: Vec<Destination>,
    /// Buildings with residents too far from the network.
    pub homes_off_network: usize,
    pub destinations_off_network: usize,
    /// Homes and destinations of the baseline that a scenario's closed paths cut off (no open path within their
    /// reach): kept, with nothing within reach.
    pub homes_cut_off: usize,
    pub destinations_cut_off: usize,
    /// Homes whose residents come from a loaded `population`, not the floor-area estimate.
    pub homes_counted: usize,
}

/// Homes: buildings with residents, at the footprint's centroid. Residents are the building's `population` where the
/// city has loaded it (a register or census count: a number ≥ 0; 0 is a building nobody lives in), else estimated:
/// residential floor area (footprint × floors × residential share of the use category, as in the traffic model's trip
/// generation) / `m2_per_resident`. Destinations: points of interest of the chosen categories, at their location (a
/// polygon's centroid).
pub fn inputs(entities: &[Entity], anchoring: &Anchoring<'_>, options: &AccessOptions) -> Inputs {
    let rates = GenerationRates::default();
    let mut out = Inputs::default();
    for p in city_places(entities, &rates) {
        let id = &p.entity.id;
        if p.building.is_some() {
            let Some((residents, counted)) = p.residents(options.m2_per_resident) else {
                continue;
            };
            out.homes_counted += usize::from(counted);
            match anchoring.home(id, p.lon, p.lat) {
                Some(place) => {
                    out.homes_cut_off += usize::from(place.anchor.is_empty());
                    out.homes.push(Home { place, residents });
                }
                None => out.homes_off_network += 1,
            }
        } else if options.categories.contains(&p.category) {
            match anchoring.destination(id, p.lon, p.lat) {
                Some(place) => {
                    out.destinations_cut_off += usize::from(place.anchor.is_empty());
                    out.destinations.push(Destination {
                        place,
                        name: first_text(value(p.entity, "name")),
                        category: p.category,
                    });
                }
                None => out.destinations_off_network += 1,
            }
        }
    }
    out
}

/// The nearest destinations of one category from every node.
#[derive(Debug, Clone)]
pub struct CategoryField {
    pub category: String,
    /// Indexes into [`Inputs::destinations`] of this category's destinations, by the search's source number.
    pub destinations: Vec<usize>,
    pub nearest: KNearest,
}

/// Runs the searches of every category (in parallel).
pub fn fields(graph: &AccessGraph, inputs: &Inputs, options: &AccessOptions) -> Vec<CategoryField> {
    let max_s = options.max_min * 60.0;
    options
        .categories
        .par_iter()
        .map(|cat| {
            let destinations: Vec<usize> = inputs
                .destinations
                .iter()
                .enumerate()
                .filter(|(_, d)| d.category == *cat)
                .map(|(i, _)| i)
                .collect();
            let anchors: Vec<Anchor> = destinations
                .iter()
                .map(|&i| inputs.destinations[i].place.anchor.clone())
                .collect();
            CategoryField {
                category: cat.clone(),
                nearest: KNearest::compute(graph, options.k, max_s, &anchors),
                destinations,
            }
        })
        .collect()
}

/// One home's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HomeResult {
    /// Per category (in the options' order): minutes to the nearest 1..k destinations, with the destinations'
    /// indexes into [`Inputs::destinations`]; empty when none is within the search's reach.
    pub nearest: Vec<Vec<(f64, usize)>>,
    /// Share of the categories whose nearest destination is within the threshold, 0..1 (the "15-minute score"),
    /// over the categories with at least one destination in the data.
    pub score: f64,
}

/// The share of the categories (those with destinations) whose nearest destination is within `threshold_min`.
fn score(nearest: &[Vec<(f64, usize)>], fields: &[CategoryField], threshold_min: f64) -> f64 {
    let counted = fields.iter().filter(|f| !f.destinations.is_empty()).count();
    if counted == 0 {
        return 0.0;
    }
    let within = nearest
        .iter()
        .filter(|n| n.first().is_some_and(|&(m, _)| m <= threshold_min))
        .count();
    within as f64 / counted as f64
}

/// Per category, over all residents.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CategorySummary {
    pub category: String,
    pub destinations: usize,
    /// Share of residents whose nearest destination of the category is within the threshold.
    pub share_within: f64,
    /// Residents-weighted median minutes to the nearest destination (`None` when most have none within reach).
    pub median_minutes: Option<f64>,
}

/// The model's answer for a city.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessSummary {
    pub mode: String,
    pub threshold_minutes: f64,
    pub homes: usize,
    pub residents: f64,
    /// Residents-weighted mean score.
    pub mean_score: f64,
    /// Share of residents with every category (of those with destinations) within the threshold.
    pub share_all_within: f64,
    /// Categories without a single destination in the data: left out of the scores (a gap in the data, not in
    /// the city, as far as the model can tell).
    pub missing: Vec<String>,
    pub categories: Vec<CategorySummary>,
    pub homes_off_network: usize,
    pub destinations_off_network: usize,
    /// Homes and destinations cut off by a scenario's closed paths (see [`Inputs::homes_cut_off`]).
    pub homes_cut_off: usize,
    pub destinations_cut_off: usize,
    /// Homes whose residents were loaded (a building's `population`); the others' are estimated from floor area.
    pub homes_counted: usize,
    /// Seconds of the searches (not reading or anchoring).
    pub search_seconds: f64,
}

/// Each home's nearest destinations and score.
pub fn home_results(
    fields: &[CategoryField],
    inputs: &Inputs,
    options: &AccessOptions,
) -> Vec<HomeResult> {
    inputs
        .homes
        .par_iter()
        .map(|h| {
            let nearest: Vec<Vec<(f64, usize)>> = fields
                .iter()
                .map(|f| {
                    f.nearest
                        .from_anchor(&h.place.anchor)
                        .into_iter()
                        .map(|(s, d)| (s / 60.0, f.destinations[d as usize]))
                        .collect()
                })
                .collect();
            HomeResult {
                score: score(&nearest, fields, options.threshold_min),
                nearest,
            }
        })
        .collect()
}

/// The residents-weighted summary of the homes' results.
pub fn summarise(
    results: &[HomeResult],
    inputs: &Inputs,
    fields: &[CategoryField],
    options: &AccessOptions,
    search_seconds: f64,
) -> AccessSummary {
    let residents: f64 = inputs
        .homes
        .iter()
        .map(|h| h.residents)
        .fold(0.0, |a, b| a + b);
    let w = |f: &dyn Fn(&HomeResult) -> bool| -> f64 {
        if residents <= 0.0 {
            return 0.0;
        }
        results
            .iter()
            .zip(&inputs.homes)
            .filter(|(r, _)| f(r))
            .map(|(_, h)| h.residents)
            .fold(0.0, |a, b| a + b)
            / residents
    };
    let mean_score = if residents > 0.0 {
        results
            .iter()
            .zip(&inputs.homes)
            .map(|(r, h)| r.score * h.residents)
            .fold(0.0, |a, b| a + b)
            / residents
    } else {
        0.0
    };
    let categories = fields
        .iter()
        .enumerate()
        .map(|(c, f)| {
            let mut times: Vec<(f64, f64)> = results
                .iter()
                .zip(&inputs.homes)
                .map(|(r, h)| {
                    (
                        r.nearest[c].first().map_or(f64::INFINITY, |x| x.0),
                        h.residents,
                    )
                })
                .collect();
            times.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mut acc = 0.0;
            let median = times
                .iter()
                .find(|(_, w)| {
                    acc += w;
                    acc >= residents / 2.0
                })
                .map(|x| x.0)
                .filter(|m| m.is_finite());
            CategorySummary {
                category: f.category.clone(),
                destinations: f.destinations.len(),
                share_within: w(&|r: &HomeResult| {
                    r.nearest[c]
                        .first()
                        .is_some_and(|&(m, _)| m <= options.threshold_min)
                }),
                median_minutes: median,
            }
        })
        .collect();
    AccessSummary {
        mode: format!("{:?}", options.movement.mode).to_lowercase(),
        threshold_minutes: options.threshold_min,
        homes: inputs.homes.len(),
        residents,
        mean_score,
        share_all_within: w(&|r: &HomeResult| r.score >= 1.0),
        missing: fields
            .iter()
            .filter(|f| f.destinations.is_empty())
            .map(|f| f.category.clone())
            .collect(),
        categories,
        homes_off_network: inputs.homes_off_network,
        destinations_off_network: inputs.destinations_off_network,
        homes_cut_off: inputs.homes_cut_off,
        destinations_cut_off: inputs.destinations_cut_off,
        homes_counted: inputs.homes_counted,
        search_seconds,
    }
}

/// The model, end to end, on the twin's entities: network, anchors, searches, per-home results and summary.
#[derive(Clone)]
pub struct CityAccess {
    pub options: AccessOptions,
    /// The network the model ran on: the one given, less the mode's islands.
    pub net: Network,
    /// Paths a scenario added `(node, node, metres)`, both ways, beyond the network's links.
    pub paths: Vec<(u32, u32, f64)>,
    /// Links of the mode outside its largest strongly connected part (cut off by the extract's edge, private
    /// yards...): left out so that no home is anchored where nothing can be reached.
    pub islands: IslandReport,
    pub graph: AccessGraph,
    pub snap: SnapIndex,
    pub inputs: Inputs,
    pub fields: Vec<CategoryField>,
    pub homes: Vec<HomeResult>,
    pub summary: AccessSummary,
}

/// Runs the model on a network and the entities holding homes and destinations.
pub fn run(net: &Network, entities: &[Entity], options: &AccessOptions) -> CityAccess {
    run_on(net.clone(), entities, options)
}

/// As [`run`], taking the network.
pub fn run_on(net: Network, entities: &[Entity], options: &AccessOptions) -> CityAccess {
    run_with_paths(net, Vec::new(), entities, options, &Reach::new(), None)
}

/// As [`run_on`], with new two-way paths `(node, node, metres)` between nodes of the network (a scenario's walkways
/// and crossings) added to the mode's graph, the places named in `reach` joining the network within the reach given
/// there, and the crossings given (a baseline's: see [`Anchoring`] and [`AccessGraph::build_with_crossings`]).
pub fn run_with_paths(
    mut net: Network,
    paths: Vec<(u32, u32, f64)>,
    entities: &[Entity],
    options: &AccessOptions,
    reach: &Reach,
    crossings: Option<&[bool]>,
) -> CityAccess {
    let islands = net.drop_islands(options.movement.mode);
    let speed = options.movement.speed_mps;
    let extra: Vec<(u32, u32, f64)> = paths
        .iter()
        .flat_map(|&(a, b, m)| [(a, b, m / speed), (b, a, m / speed)])
        .collect();
    let graph =
        AccessGraph::build_with_crossings(&net, options.movement, crossings).with_edges(&extra);
    let snap = SnapIndex::build(&net, options.movement.mode);
    let inputs = inputs(
        entities,
        &Anchoring::new(&net, &graph, &snap, options.max_snap_m).keeping(reach),
        options,
    );
    let t = Instant::now();
    let fields = fields(&graph, &inputs, options);
    let homes = home_results(&fields, &inputs, options);
    let seconds = t.elapsed().as_secs_f64();
    let summary = summarise(&homes, &inputs, &fields, options, seconds);
    CityAccess {
        options: options.clone(),
        net,
        paths,
        islands,
        graph,
        snap,
        inputs,
        fields,
        homes,
        summary,
    }
}

impl CityAccess {
    /// Each home's and destination's reach, for a scenario's run to keep.
    pub fn reach(&self) -> Reach {
        let homes = self.inputs.homes.iter().map(|h| &h.place);
        let destinations = self.inputs.destinations.iter().map(|d| &d.place);
        homes
            .chain(destinations)
            .map(|p| (p.id.clone(), p.reach_m))
            .collect()
    }

    /// Every home as a GeoJSON point with its residents, score and, per category, the minutes to the nearest
    /// destination (`{category}Minutes`, rounded to 0.01) and its id (`{category}Nearest`); null where none is within
    /// reach.
    pub fn homes_geojson(&self) -> Value {
        let features: Vec<Value> = self
            .inputs
            .homes
            .iter()
            .zip(&self.homes)
            .map(|(h, res)| {
                let mut props = serde_json::Map::new();
                props.insert("id".into(), json!(h.place.id));
                props.insert("residents".into(), json!(h.residents));
                props.insert("score".into(), json!(res.score));
                for (c, f) in self.fields.iter().enumerate() {
                    let nearest = res.nearest[c].first();
                    props.insert(
                        format!("{}Minutes", f.category),
                        nearest.map_or(Value::Null, |x| json!((x.0 * 100.0).round() / 100.0)),
                    );
                    props.insert(
                        format!("{}Nearest", f.category),
                        nearest.map_or(Value::Null, |x| {
                            json!(self.inputs.destinations[x.1].place.id)
                        }),
                    );
                }
                json!({
                    "type": "Feature",
                    "id": h.place.id,
                    "geometry": {"type": "Point", "coordinates": [h.place.lon, h.place.lat]},
                    "properties": props,
                })
            })
            .collect();
        json!({"type": "FeatureCollection", "features": features})
    }
}

impl CityAccess {
    /// The isochrones of `minutes` from (lon, lat) on the model's network and mode, largest first.
    pub fn isochrones(
        &self,
        lon: f64,
        lat: f64,
        minutes: &[f64],
    ) -> Result<Vec<super::Isochrone>, super::IsochroneError> {
        super::isochrone::isochrones(
            &self.net,
            &self.graph,
            &self.snap,
            self.options.max_snap_m,
            lon,
            lat,
            minutes,
            super::IsochroneOptions::default(),
        )
    }
}

/// What adding a destination changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Added {
    /// Its index in [`Inputs::destinations`].
    pub destination: usize,
    /// The network nodes it is now among the `k` nearest of.
    pub nodes: usize,
    /// The homes whose results changed, by index.
    pub homes: Vec<usize>,
}

/// Why an edit could not be applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EditError {
    #[error("{0:?} is not one of the model's categories ({1})")]
    UnknownCategory(String, String),
    #[error("({0}, {1}) is more than {2} m from the network")]
    OffNetwork(f64, f64, f64),
}

impl CityAccess {
    /// Adds a destination (a new shop, school...) at a point, updating only the nodes it becomes one of the `k`
    /// nearest of and the homes anchored on them; the summary is recomputed.
    pub fn add_destination(
        &mut self,
        id: &str,
        category: &str,
        lon: f64,
        lat: f64,
    ) -> Result<Added, EditError> {
        let Some(c) = self.fields.iter().position(|f| f.category == category) else {
            return Err(EditError::UnknownCategory(
                category.to_string(),
                self.options.categories.join(", "),
            ));
        };
        let place = Anchoring::new(&self.net, &self.graph, &self.snap, self.options.max_snap_m)
            .destination(id, lon, lat)
            .ok_or(EditError::OffNetwork(lon, lat, self.options.max_snap_m))?;
        let t = Instant::now();
        let index = self.inputs.destinations.len();
        let field = &mut self.fields[c];
        let source = field.destinations.len() as u32;
        let changed = field.nearest.add(&self.graph, source, &place.anchor);
        field.destinations.push(index);
        self.inputs.destinations.push(Destination {
            place,
            category: category.to_string(),
            name: None,
        });
        // the homes anchored on a changed node
        let mut touched = vec![false; self.graph.node_count()];
        for &v in &changed {
            touched[v as usize] = true;
        }
        let homes: Vec<usize> = self
            .inputs
            .homes
            .iter()
            .enumerate()
            .filter(|(_, h)| h.place.anchor.iter().any(|&(v, _)| touched[v as usize]))
            .map(|(i, _)| i)
            .collect();
        let mut really = Vec::new();
        for &i in &homes {
            let field = &self.fields[c];
            let nearest: Vec<(f64, usize)> = field
                .nearest
                .from_anchor(&self.inputs.homes[i].place.anchor)
                .into_iter()
                .map(|(s, d)| (s / 60.0, field.destinations[d as usize]))
                .collect();
            let r = &mut self.homes[i];
            if r.nearest[c] != nearest {
                r.nearest[c] = nearest;
                r.score = score(&r.nearest, &self.fields, self.options.threshold_min);
                really.push(i);
            }
        }
        let seconds = t.elapsed().as_secs_f64();
        self.summary = summarise(
            &self.homes,
            &self.inputs,
            &self.fields,
            &self.options,
            seconds,
        );
        Ok(Added {
            destination: index,
            nodes: changed.len(),
            homes: really,
        })
    }
}
