//! The air and noise of a city's streets under a traffic solution (the baseline's or a scenario's): per street its
//! emissions, SRM1 concentrations and road-traffic noise at the façades, per home what its residents breathe and hear.
//!
//! [`AirCity::build`] reads the city once: one **street** per `RoadLink` with a car link (its two directions are one
//! line source on the road axis), its SRM1 road type from the buildings along it, the **homes** (buildings with
//! residents, as the 15-minute city counts them) and the streets near each, and the **stations**
//! (`AirQualityObserved` entities) that calibrate the background. [`AirCity::evaluate`] then turns any traffic
//! [`Outcome`] on the same city into [`AirResult`]: cheap (no search, no geometry), so a scenario's air and noise
//! follow its traffic at once. Every rule below that is this module's own choice says so; the models are in
//! [`super::emissions`], [`super::dispersion`] and [`crate::noise`].
//!
//! **From the modelled hour to the year.** The traffic model is one peak hour. A link with peak flow `F` (veh/h),
//! peak travel time `t` and free-flow time `t₀` carries `F / peak_share` vehicles a day, `peak_hours · F` of them at
//! the peak speed `3.6·L/t` and the rest at the free-flow speed `3.6·L/t₀`. Its annual-mean line source is
//!
//! ```text
//! E = [peak_hours·F·EF(v_peak) + (F/peak_share − peak_hours·F)·EF(v_free)] / 24 / 3.6      µg/(m·s), EF in g/km
//! ```
//!
//! so a scenario that congests a street raises its emission per vehicle as well as its flow. Defaults
//! ([`AirOptions::default`], both `ASSUMPTION`s): the peak hour carries 10 % of the daily flow (the usual "K factor"
//! of urban streets is 8–12 %), and 2 hours a day (morning and evening) run at the peak speed. Noise takes the same
//! daily flow, split into day, evening and night by [`DailySplit`], at the free-flow speed (END maps use the legal or
//! free-flow speed).
//!
//! **Street geometry (SRM1 road type).** Along each street, at up to 16 evenly spaced points (one per 10 m), rays go
//! out square to the street on both sides up to 100 m and stop at the first building wall. A side has buildings when
//! at least half its rays hit one; its façade distance is then the median hit distance and its height the mean height
//! of the buildings hit (`height`, else `floorsAboveGround` × 3 m, else 2 floors, as in the traffic model), and
//! [`disp::road_type`] decides canyon, one-sided or open. The street's **receptor** is its nearer façade when that is
//! within the road type's reach, else 10 m from the axis (this module's choice for a street without homes beside it).
//! Concentrations and noise "at the street" are at that receptor.
//!
//! **Background.** Concentrations are the street's own contribution (SRM1, one street per receptor as in SRM1) plus
//! the city background. The background is configured ([`Background`]), or calibrated on the city's stations: each
//! `AirQualityObserved` entity with a value of `NO2`, `PM10`, `PM2.5` or `O3` (attribute names matched without case:
//! `no2`, `pm10`, `pm25`/`pm2_5`, `o3`) gives the background *at the station* as its value minus the modelled
//! contribution of the street nearest in effect (baseline traffic), and the background anywhere is the inverse-distance
//! (power 2) mean of those station backgrounds. Fit: each station is predicted from the *other* stations' backgrounds
//! plus its own modelled contribution (leave one out), and the bias and RMSE of those predictions are reported. The
//! stations' values are whatever the hub holds (often the latest hourly value), while the model gives annual means:
//! the comparison is only as good as the values are representative of the year.
//!
//! **Homes.** A home's concentration is its background plus the largest contribution of the streets within SRM1 reach
//! of its footprint (its most exposed façade), at the footprint's distance from each street's axis (at least 3.5 m).
//! Its noise is the loudest street's L_den and L_night within 200 m at that distance: the façade facing that street,
//! without screening by other buildings (an overestimate behind buildings) and without adding other streets.
//! Exposure counts residents above the WHO 2021 air-quality guideline (annual NO2 10, PM2.5 5, PM10 15 µg/m³), the EU
//! limit values of Directive 2008/50/EC (NO2 40, PM2.5 25, PM10 40) and those of the recast Directive (EU) 2024/2881
//! applying from 2030 (NO2 20, PM2.5 10, PM10 20), and the noise thresholds of [`crate::noise::exposure`].

use std::collections::{BTreeMap, HashMap};

use geo::{Coord, Geometry, LineString, Polygon};
use rstar::primitives::{GeomWithData, Line};
use rstar::{RTree, AABB};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use twin_graph::LinkIdx;
use twin_model::entity::iri;
use twin_model::geoquery::geometry_from_geojson;
use twin_model::Entity;

use super::dispersion::{self as disp, RoadType, StreetSide, TreeFactor};
use super::emissions::{self as em, Category, FleetMix, Pollutants};
use crate::noise::{self, DailySplit, Exposure, Flows};
use crate::traffic::assign::Network;
use crate::traffic::city::{city_places, first_text, value, CityModel};
use crate::traffic::scenario::{road_link_of, AddedLink, Outcome};
use crate::traffic::trips::GenerationRates;

/// Rays per metre of street (one per 10 m), and at most this many per street.
const RAY_SPACING_M: f64 = 10.0;
const MAX_RAYS: usize = 16;
/// How far a ray looks for a building wall (m).
const SIDE_SEARCH_M: f64 = 100.0;
/// A street's receptor when no façade is within its road type's reach (m from the axis).
const OPEN_RECEPTOR_M: f64 = 10.0;
/// Homes and stations closer to a street axis than this are taken at this distance (SRM1's nearest distance).
const MIN_DISTANCE_M: f64 = disp::SRM1_MIN_DISTANCE_M;
/// The farthest any SRM1 road type reaches (m).
const SRM1_MAX_REACH_M: f64 = 60.0;
/// Inverse-distance weights of the station backgrounds: `1 / max(d, 1 m)²`.
const IDW_MIN_M: f64 = 1.0;

/// The set distances from a street's axis (m) of [`StreetAir::no2_profile`].
pub const PROFILE_M: [f64; 4] = [5.0, 10.0, 20.0, 30.0];

/// WHO 2021 air quality guideline levels, annual means (µg/m³): NO2, PM2.5, PM10. Source: WHO global air quality
/// guidelines (2021), Table 0.1 (executive summary).
pub const WHO_2021: [f64; 3] = [10.0, 5.0, 15.0];
/// EU annual limit values (µg/m³): NO2, PM2.5, PM10, Directive 2008/50/EC Annex XI and XIV.
pub const EU_LIMIT: [f64; 3] = [40.0, 25.0, 40.0];
/// EU annual limit values from 1 January 2030 (µg/m³): NO2, PM2.5, PM10, Directive (EU) 2024/2881 Annex I.
pub const EU_2030: [f64; 3] = [20.0, 10.0, 20.0];

/// Annual-mean background concentrations (µg/m³): what the air holds without the city's own streets.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Background {
    pub no2: f64,
    pub nox: f64,
    pub o3: f64,
    pub pm10: f64,
    pub pm25: f64,
}

impl Default for Background {
    /// `ASSUMPTION`: round values of a northern-European city's urban background (NO2 15, NOx 20, O3 50, PM10 15,
    /// PM2.5 7 µg/m³), not one city's measurements. Replace them with the city's urban-background station, or load
    /// `AirQualityObserved` entities and let the stations calibrate it.
    fn default() -> Self {
        Background {
            no2: 15.0,
            nox: 20.0,
            o3: 50.0,
            pm10: 15.0,
            pm25: 7.0,
        }
    }
}

/// How the city's air and noise are computed from its traffic (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AirOptions {
    pub fleet: FleetMix,
    /// The modelled (peak) hour's share of the daily flow, in (0, 1].
    pub peak_share: f64,
    /// Hours a day at the modelled hour's flow and speed, in [0, 24].
    pub peak_hours: f64,
    /// SRM1's regional (annual mean) wind speed, m/s.
    pub regional_wind_ms: f64,
    pub trees: TreeFactor,
    /// Used where no station gives a value.
    pub background: Background,
    pub split: DailySplit,
    /// Streets farther than this from a home are not heard there (m).
    pub noise_reach_m: f64,
    /// Floor area per resident where no population is loaded (m²), as the 15-minute city.
    pub m2_per_resident: f64,
}

impl Default for AirOptions {
    fn default() -> Self {
        AirOptions {
            fleet: FleetMix::default(),
            peak_share: 0.10,
            peak_hours: 2.0,
            regional_wind_ms: disp::SRM1_DEFAULT_REGIONAL_WIND_MS,
            trees: TreeFactor::None,
            background: Background::default(),
            split: DailySplit::default(),
            noise_reach_m: 200.0,
            m2_per_resident: 35.0,
        }
    }
}

/// Why the options cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AirError {
    #[error("{0}")]
    Options(String),
    #[error(transparent)]
    Emission(#[from] em::EmissionError),
    #[error(transparent)]
    Noise(#[from] noise::NoiseError),
}

impl AirOptions {
    /// Checks every option's range (and the fleet and daily split) before a model is built on them.
    pub fn check(&self) -> Result<(), AirError> {
        let bad = |what: &str, v: f64, range: &str| {
            Err(AirError::Options(format!(
                "{what} must be {range}, not {v}"
            )))
        };
        if !(self.peak_share > 0.0 && self.peak_share <= 1.0) {
            return bad("peakShare", self.peak_share, "in (0, 1]");
        }
        if !(0.0..=24.0).contains(&self.peak_hours) {
            return bad("peakHours", self.peak_hours, "in [0, 24]");
        }
        if !(self.regional_wind_ms.is_finite() && self.regional_wind_ms > 0.0) {
            return bad("regionalWindMs", self.regional_wind_ms, "a positive number");
        }
        if !(self.noise_reach_m.is_finite() && self.noise_reach_m > 0.0) {
            return bad("noiseReachM", self.noise_reach_m, "a positive number");
        }
        if !(self.m2_per_resident.is_finite() && self.m2_per_resident > 0.0) {
            return bad("m2PerResident", self.m2_per_resident, "a positive number");
        }
        let b = &self.background;
        for (name, v) in [
            ("background.no2", b.no2),
            ("background.nox", b.nox),
            ("background.o3", b.o3),
            ("background.pm10", b.pm10),
            ("background.pm25", b.pm25),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(name, v, "a number ≥ 0");
            }
        }
        self.fleet.segment_shares()?;
        self.split.hourly(&Flows::default())?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------------------------------
// local geometry

/// An equirectangular projection around the city's centre: metres east (x) and north (y). Within a city (tens of
/// km) its distances are within a fraction of a per cent of the great-circle ones.
#[derive(Debug, Clone, Copy)]
struct Local {
    lon0: f64,
    lat0: f64,
    kx: f64,
    ky: f64,
}

impl Local {
    fn new(lon0: f64, lat0: f64) -> Local {
        let ky = 6_371_008.8 * std::f64::consts::PI / 180.0;
        Local {
            lon0,
            lat0,
            kx: ky * lat0.to_radians().cos(),
            ky,
        }
    }

    fn xy(&self, lon: f64, lat: f64) -> [f64; 2] {
        [(lon - self.lon0) * self.kx, (lat - self.lat0) * self.ky]
    }
}

fn sub(a: [f64; 2], b: [f64; 2]) -> [f64; 2] {
    [a[0] - b[0], a[1] - b[1]]
}

fn dot(a: [f64; 2], b: [f64; 2]) -> f64 {
    a[0] * b[0] + a[1] * b[1]
}

fn cross(a: [f64; 2], b: [f64; 2]) -> f64 {
    a[0] * b[1] - a[1] * b[0]
}

fn point_segment_m(p: [f64; 2], a: [f64; 2], b: [f64; 2]) -> f64 {
    let ab = sub(b, a);
    let len2 = dot(ab, ab);
    let t = if len2 > 0.0 {
        (dot(sub(p, a), ab) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let q = [a[0] + t * ab[0], a[1] + t * ab[1]];
    dot(sub(p, q), sub(p, q)).sqrt()
}

fn segments_cross(a: [f64; 2], b: [f64; 2], c: [f64; 2], d: [f64; 2]) -> bool {
    let d1 = cross(sub(b, a), sub(c, a));
    let d2 = cross(sub(b, a), sub(d, a));
    let d3 = cross(sub(d, c), sub(a, c));
    let d4 = cross(sub(d, c), sub(b, c));
    d1 * d2 < 0.0 && d3 * d4 < 0.0
}

fn segment_segment_m(a: [f64; 2], b: [f64; 2], c: [f64; 2], d: [f64; 2]) -> f64 {
    if segments_cross(a, b, c, d) {
        return 0.0;
    }
    point_segment_m(a, c, d)
        .min(point_segment_m(b, c, d))
        .min(point_segment_m(c, a, b))
        .min(point_segment_m(d, a, b))
}

/// Where the ray from `o` along the unit vector `dir` first crosses segment `ab`, as a distance along the ray.
fn ray_hit(o: [f64; 2], dir: [f64; 2], a: [f64; 2], b: [f64; 2]) -> Option<f64> {
    let e = sub(b, a);
    let denom = cross(dir, e);
    if denom.abs() < 1e-12 {
        return None;
    }
    let ao = sub(a, o);
    let t = cross(ao, e) / denom;
    let u = cross(ao, dir) / denom;
    (t >= 0.0 && (0.0..=1.0).contains(&u)).then_some(t)
}

fn envelope(points: &[[f64; 2]], grow: f64) -> AABB<[f64; 2]> {
    let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
    for p in points {
        for k in 0..2 {
            lo[k] = lo[k].min(p[k]);
            hi[k] = hi[k].max(p[k]);
        }
    }
    AABB::from_corners([lo[0] - grow, lo[1] - grow], [hi[0] + grow, hi[1] + grow])
}

/// A polyline's point and unit direction at `s` metres from its start.
fn along(line: &[[f64; 2]], s: f64) -> Option<([f64; 2], [f64; 2])> {
    let mut left = s;
    for w in line.windows(2) {
        let d = sub(w[1], w[0]);
        let len = dot(d, d).sqrt();
        if len <= 0.0 {
            continue;
        }
        if left <= len {
            let t = left / len;
            return Some((
                [w[0][0] + t * d[0], w[0][1] + t * d[1]],
                [d[0] / len, d[1] / len],
            ));
        }
        left -= len;
    }
    None
}

fn line_length(line: &[[f64; 2]]) -> f64 {
    line.windows(2)
        .map(|w| dot(sub(w[1], w[0]), sub(w[1], w[0])).sqrt())
        .sum()
}

/// Building walls, each with its building's height, for the rays.
type Wall = GeomWithData<Line<[f64; 2]>, f32>;
/// A street's axis pieces, each with its street's index.
type Piece = GeomWithData<Line<[f64; 2]>, u32>;

fn rings(g: &Geometry) -> Vec<&LineString> {
    match g {
        Geometry::Polygon(p) => std::iter::once(p.exterior()).chain(p.interiors()).collect(),
        Geometry::MultiPolygon(m) => m
            .iter()
            .flat_map(|p: &Polygon| std::iter::once(p.exterior()).chain(p.interiors()))
            .collect(),
        _ => Vec::new(),
    }
}

// ---------------------------------------------------------------------------------------------------------------------
// the city

/// One street: a `RoadLink`'s car links (both directions) as one line source on its axis.
#[derive(Debug, Clone)]
pub struct Street {
    /// The `RoadLink` entity id (or, for a street a scenario added, `added-{edit}`).
    pub key: String,
    pub name: Option<String>,
    /// Its directed links in the traffic network.
    pub links: Vec<LinkIdx>,
    /// Its axis in the city's local metres.
    line: Vec<[f64; 2]>,
    pub length_m: f64,
    pub left: StreetSide,
    pub right: StreetSide,
    pub road_type: RoadType,
    /// Where "at the street" is: metres from the axis (see the module doc).
    pub receptor_m: f64,
    background: Background,
}

/// A building with residents and the streets near it.
#[derive(Debug, Clone)]
struct Home {
    id: String,
    residents: f64,
    /// Footprint rings in local metres.
    rings: Vec<Vec<[f64; 2]>>,
    /// `(street, distance of the footprint from its axis, m)` for streets within the noise reach.
    near: Vec<(u32, f64)>,
    background: Background,
}

/// A measuring station and what it measured.
#[derive(Debug, Clone)]
struct Station {
    id: String,
    name: Option<String>,
    at: [f64; 2],
    /// NO2, PM2.5, PM10, O3 as measured (µg/m³).
    measured: [Option<f64>; 4],
    /// `(street, distance, m)` within SRM1 reach.
    near: Vec<(u32, f64)>,
    /// The background at the station: measured minus the baseline's modelled contribution (NO2, PM2.5, PM10), and the
    /// measured O3.
    residual: [Option<f64>; 4],
}

const NO2: usize = 0;
const PM25: usize = 1;
const PM10: usize = 2;
const O3: usize = 3;
const STATION_NAMES: [&str; 4] = ["no2", "pm25", "pm10", "o3"];

/// The city as the air and noise models see it (see the module doc).
pub struct AirCity {
    options: AirOptions,
    local: Local,
    streets: Vec<Street>,
    by_key: HashMap<String, usize>,
    homes: Vec<Home>,
    stations: Vec<Station>,
    walls: RTree<Wall>,
    /// Residents whose homes have a loaded `population`.
    homes_counted: usize,
}

impl std::fmt::Debug for AirCity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AirCity")
            .field("streets", &self.streets.len())
            .field("homes", &self.homes.len())
            .field("stations", &self.stations.len())
            .finish()
    }
}

fn attr_suffix(key: &str) -> &str {
    key.rsplit(['/', '#']).next().unwrap_or(key)
}

/// The station's measured value of pollutant `k` ([`NO2`], …): an attribute whose name (after the context's IRI) is
/// one of the pollutant's spellings, without case.
fn measured(e: &Entity, k: usize) -> Option<f64> {
    let names: &[&str] = match k {
        NO2 => &["no2"],
        PM25 => &["pm25", "pm2_5", "pm2.5"],
        PM10 => &["pm10"],
        _ => &["o3"],
    };
    e.attrs
        .iter()
        .filter(|(key, _)| {
            let s = attr_suffix(key);
            names.iter().any(|n| s.eq_ignore_ascii_case(n))
        })
        .flat_map(|(_, instances)| instances.iter())
        .find(|a| a.dataset_id.is_none())
        .and_then(|a| a.value.as_f64())
        .filter(|v| v.is_finite() && *v >= 0.0)
}

impl AirCity {
    /// Reads the city (streets of `model` with car links, buildings, homes and `AirQualityObserved` stations from
    /// `entities`) and calibrates the background on the stations against the `baseline`'s traffic.
    pub fn build(
        model: &CityModel,
        entities: &[Entity],
        baseline: &Outcome,
        options: AirOptions,
    ) -> Result<AirCity, AirError> {
        options.check()?;
        let graph = &model.graph;
        let coords = graph.node_coords();
        let (lon0, lat0) = if coords.is_empty() {
            (0.0, 0.0)
        } else {
            let n = coords.len() as f64;
            (
                coords.iter().map(|c| c.0).sum::<f64>() / n,
                coords.iter().map(|c| c.1).sum::<f64>() / n,
            )
        };
        let local = Local::new(lon0, lat0);
        let to_local = |pts: &[(f64, f64)]| -> Vec<[f64; 2]> {
            pts.iter().map(|&(x, y)| local.xy(x, y)).collect()
        };

        // buildings: walls with heights, and homes
        let rates = GenerationRates::default();
        let mut walls = Vec::new();
        let mut homes = Vec::new();
        let mut homes_counted = 0;
        for p in city_places(entities, &rates) {
            let Some((_, floors)) = p.building else {
                continue;
            };
            let Some(g) = p
                .entity
                .geometries(iri::LOCATION)
                .next()
                .and_then(|v| geometry_from_geojson(v).ok())
            else {
                continue;
            };
            let height = value(p.entity, "height")
                .and_then(Value::as_f64)
                .filter(|h| h.is_finite() && *h > 0.0)
                .unwrap_or(floors * rates.floor_height_m);
            let rs: Vec<Vec<[f64; 2]>> = rings(&g)
                .into_iter()
                .map(|r| r.coords().map(|c: &Coord| local.xy(c.x, c.y)).collect())
                .collect();
            for r in &rs {
                for w in r.windows(2) {
                    walls.push(Wall::new(Line::new(w[0], w[1]), height as f32));
                }
            }
            if let Some((residents, counted)) = p.residents(options.m2_per_resident) {
                homes_counted += usize::from(counted);
                homes.push(Home {
                    id: p.entity.id.clone(),
                    residents,
                    rings: rs,
                    near: Vec::new(),
                    background: options.background,
                });
            }
        }
        let walls = RTree::bulk_load(walls);

        // streets: the car links of each RoadLink
        let mut by_key: HashMap<String, usize> = HashMap::new();
        let mut streets: Vec<Street> = Vec::new();
        for l in 0..model.network.link_count() as LinkIdx {
            if !model.network.is_open(l) || (l as usize) >= graph.link_count() {
                continue;
            }
            let id = graph.link_id(l);
            let key = road_link_of(id).map_or_else(|| id.to_string(), |(e, _)| e.to_string());
            let i = *by_key.entry(key.clone()).or_insert_with(|| {
                streets.push(Street {
                    key,
                    name: model.link_names[l as usize].clone(),
                    links: Vec::new(),
                    line: to_local(&graph.link_geometry(l)),
                    length_m: 0.0,
                    left: StreetSide::OPEN,
                    right: StreetSide::OPEN,
                    road_type: RoadType::Open,
                    receptor_m: OPEN_RECEPTOR_M,
                    background: options.background,
                });
                streets.len() - 1
            });
            streets[i].links.push(l);
        }
        for s in &mut streets {
            shape(s, &walls);
        }
        let mut city = AirCity {
            options,
            local,
            streets,
            by_key,
            homes,
            stations: Vec::new(),
            walls,
            homes_counted,
        };

        // which streets are near which homes
        let pieces = city.pieces();
        let reach = city.options.noise_reach_m;
        for h in &mut city.homes {
            h.near = near_streets(&pieces, &h.rings, reach);
        }

        // stations
        let aq = format!("{}AirQualityObserved", iri::DEFAULT_CONTEXT);
        for e in entities.iter().filter(|e| e.types.contains(&aq)) {
            let Some(Geometry::Point(p)) = e
                .geometries(iri::LOCATION)
                .next()
                .and_then(|v| geometry_from_geojson(v).ok())
            else {
                continue;
            };
            let measured: [Option<f64>; 4] = std::array::from_fn(|k| measured(e, k));
            if measured.iter().all(Option::is_none) {
                continue;
            }
            let at = local.xy(p.x(), p.y());
            let near = near_streets(&pieces, &[vec![at]], SRM1_MAX_REACH_M);
            city.stations.push(Station {
                id: e.id.clone(),
                name: first_text(value(e, "name")),
                at,
                measured,
                near,
                residual: [None; 4],
            });
        }
        if !city.stations.is_empty() {
            let emissions = city.emissions(&model.network, baseline, &[])?;
            let streets: Vec<&Street> = city.streets.iter().collect();
            let o3 = city.options.background.o3;
            let parts: Vec<[f64; 3]> = city
                .stations
                .iter()
                .map(|st| city.contribution(&streets, &st.near, &emissions, o3).0)
                .collect();
            for (st, part) in city.stations.iter_mut().zip(parts) {
                st.residual = [
                    st.measured[NO2].map(|m| m - part[NO2]),
                    st.measured[PM25].map(|m| m - part[PM25]),
                    st.measured[PM10].map(|m| m - part[PM10]),
                    st.measured[O3],
                ];
            }
            for i in 0..city.streets.len() {
                let mid = city.streets[i].midpoint();
                city.streets[i].background = city.background_at(mid, None);
            }
            for i in 0..city.homes.len() {
                let at = city.homes[i].rings.first().and_then(|r| r.first()).copied();
                if let Some(at) = at {
                    city.homes[i].background = city.background_at(at, None);
                }
            }
        }
        Ok(city)
    }

    pub fn options(&self) -> &AirOptions {
        &self.options
    }

    pub fn streets(&self) -> &[Street] {
        &self.streets
    }

    /// Every street's axis cut into pieces, for nearest-street searches.
    fn pieces(&self) -> RTree<Piece> {
        RTree::bulk_load(
            self.streets
                .iter()
                .enumerate()
                .flat_map(|(i, s)| {
                    s.line
                        .windows(2)
                        .map(move |w| Piece::new(Line::new(w[0], w[1]), i as u32))
                })
                .collect(),
        )
    }

    /// The background at `at`: the stations' backgrounds interpolated (leaving out station `skip`), each pollutant
    /// from the stations that measured it, else the configured value.
    fn background_at(&self, at: [f64; 2], skip: Option<usize>) -> Background {
        let configured = self.options.background;
        let idw = |k: usize| -> Option<f64> {
            let (mut num, mut den) = (0.0, 0.0);
            for (i, s) in self.stations.iter().enumerate() {
                if Some(i) == skip {
                    continue;
                }
                if let Some(r) = s.residual[k] {
                    let d = dot(sub(at, s.at), sub(at, s.at)).sqrt().max(IDW_MIN_M);
                    let w = 1.0 / (d * d);
                    num += w * r.max(0.0);
                    den += w;
                }
            }
            (den > 0.0).then(|| num / den)
        };
        let no2 = idw(NO2);
        Background {
            no2: no2.unwrap_or(configured.no2),
            // NOx is not measured by the stations read here: it keeps the configured NOx/NO2 ratio of the background
            nox: match no2 {
                Some(v) if configured.no2 > 0.0 => v * configured.nox / configured.no2,
                _ => configured.nox,
            },
            o3: idw(O3).unwrap_or(configured.o3),
            pm10: idw(PM10).unwrap_or(configured.pm10),
            pm25: idw(PM25).unwrap_or(configured.pm25),
        }
    }

    /// Every street's annual-mean line source (µg/(m·s)) and its noise sound power per metre in the day, evening and
    /// night (dB(A), −∞ when silent), under `outcome` on `net`; then the same for `added` streets.
    fn emissions(
        &self,
        net: &Network,
        outcome: &Outcome,
        added: &[Street],
    ) -> Result<Vec<Source>, AirError> {
        let o = &self.options;
        let shares = o.fleet.segment_shares()?;
        let share_of = |of: fn(Category) -> bool| -> f64 {
            shares
                .iter()
                .filter(|(seg, _)| of(seg.category()))
                .map(|(_, s)| s)
                .sum()
        };
        // CNOSSOS-EU categories: cars and vans are light (1), buses medium heavy (2, two axles), trucks heavy (3)
        let (light, medium, heavy) = (
            share_of(|c| matches!(c, Category::Car | Category::Van)),
            share_of(|c| c == Category::Bus),
            share_of(|c| c == Category::Truck),
        );
        self.streets
            .iter()
            .chain(added)
            .map(|s| {
                let mut e = Pollutants::default();
                let mut power = [0.0f64; 3];
                let mut daily_total = 0.0;
                let mut peak_kmh: Option<f64> = None;
                for &l in &s.links {
                    let Some(v) = outcome.links.get(l as usize) else {
                        continue;
                    };
                    if !v.open
                        || v.flow.is_nan()
                        || v.flow <= 0.0
                        || (l as usize) >= net.link_count()
                    {
                        continue;
                    }
                    let link = net.link(l);
                    let free_kmh = if link.free_flow_time > 0.0 && link.length > 0.0 {
                        3.6 * link.length / link.free_flow_time
                    } else {
                        continue;
                    };
                    let v_peak = v
                        .time_s
                        .and_then(|t| em::mean_speed_kmh(link.length, t).ok())
                        .unwrap_or(free_kmh);
                    peak_kmh = Some(peak_kmh.map_or(v_peak, |p: f64| p.min(v_peak)));
                    let daily = v.flow / o.peak_share;
                    let at_peak = (o.peak_hours * v.flow).min(daily);
                    e.add(&Pollutants::from_factors(
                        at_peak / 24.0,
                        &em::factors(v_peak, &o.fleet)?,
                    ));
                    e.add(&Pollutants::from_factors(
                        (daily - at_peak) / 24.0,
                        &em::factors(free_kmh, &o.fleet)?,
                    ));
                    daily_total += daily;
                    let periods = o.split.hourly(&Flows {
                        light: daily * light,
                        medium: daily * medium,
                        heavy: daily * heavy,
                        ..Flows::default()
                    })?;
                    for (k, f) in [periods.day, periods.evening, periods.night]
                        .iter()
                        .enumerate()
                    {
                        let lw = noise::sound_power_per_metre(f, free_kmh)?;
                        if lw.is_finite() {
                            power[k] += 10f64.powf(lw / 10.0);
                        }
                    }
                }
                let lw = power.map(|p| {
                    if p > 0.0 {
                        10.0 * p.log10()
                    } else {
                        f64::NEG_INFINITY
                    }
                });
                Ok(Source {
                    emission: e,
                    lw,
                    daily: daily_total,
                    peak_kmh,
                })
            })
            .collect()
    }

    /// The largest contribution (µg/m³) of the streets `near` (indices into `streets`, with their distances) to NO2
    /// (with ozone `o3`), PM2.5 and PM10 at one point, and the street of the largest NOx contribution.
    fn contribution(
        &self,
        streets: &[&Street],
        near: &[(u32, f64)],
        sources: &[Source],
        o3: f64,
    ) -> ([f64; 3], Option<u32>) {
        let o = &self.options;
        let mut best = [0.0f64; 3];
        let mut best_nox = 0.0;
        let mut which = None;
        for &(i, d) in near {
            let (s, src) = (streets[i as usize], &sources[i as usize]);
            let x = d.max(MIN_DISTANCE_M);
            if x > s.road_type.curve().reach_m {
                continue;
            }
            let c =
                |e: f64| disp::srm1_concentration(e, x, s.road_type, o.trees, o.regional_wind_ms);
            let e = &src.emission;
            let nox = c(e.nox);
            let f = if e.nox > 0.0 { e.no2 / e.nox } else { 0.0 };
            if nox > best_nox {
                best_nox = nox;
                which = Some(i);
            }
            best[NO2] = best[NO2].max(disp::no2_from_nox(nox, f, 0.0, o3));
            best[PM25] = best[PM25].max(c(e.pm25_exhaust + e.pm25_non_exhaust));
            best[PM10] = best[PM10].max(c(e.pm10_exhaust + e.pm10_non_exhaust));
        }
        (best, which)
    }
}

/// A street's emission and noise under one traffic solution.
#[derive(Debug, Clone, Copy)]
struct Source {
    emission: Pollutants,
    /// Sound power per metre, day, evening, night (dB(A)).
    lw: [f64; 3],
    daily: f64,
    peak_kmh: Option<f64>,
}

impl Street {
    fn midpoint(&self) -> [f64; 2] {
        along(&self.line, self.length_m / 2.0)
            .map(|(p, _)| p)
            .or_else(|| self.line.first().copied())
            .unwrap_or([0.0; 2])
    }
}

/// Sets a street's length, sides, road type and receptor from the building walls around it.
fn shape(s: &mut Street, walls: &RTree<Wall>) {
    s.length_m = line_length(&s.line);
    let n = ((s.length_m / RAY_SPACING_M).ceil() as usize).clamp(1, MAX_RAYS);
    let mut hits: [Vec<(f64, f64)>; 2] = [Vec::new(), Vec::new()];
    for k in 0..n {
        let Some((p, t)) = along(&s.line, (k as f64 + 0.5) / n as f64 * s.length_m) else {
            continue;
        };
        for (side, dir) in [[-t[1], t[0]], [t[1], -t[0]]].into_iter().enumerate() {
            let end = [p[0] + dir[0] * SIDE_SEARCH_M, p[1] + dir[1] * SIDE_SEARCH_M];
            let env = AABB::from_corners(
                [p[0].min(end[0]), p[1].min(end[1])],
                [p[0].max(end[0]), p[1].max(end[1])],
            );
            let first = walls
                .locate_in_envelope_intersecting(&env)
                .filter_map(|w| {
                    let (a, b) = (w.geom().from, w.geom().to);
                    ray_hit(p, dir, a, b)
                        .filter(|&t| t <= SIDE_SEARCH_M)
                        .map(|t| (t, w.data as f64))
                })
                .min_by(|x, y| x.0.total_cmp(&y.0));
            if let Some(h) = first {
                hits[side].push(h);
            }
        }
    }
    let side = |h: &mut Vec<(f64, f64)>| {
        if h.is_empty() || h.len() * 2 < n {
            return StreetSide::OPEN;
        }
        h.sort_by(|x, y| x.0.total_cmp(&y.0));
        StreetSide {
            facade_distance_m: h[h.len() / 2].0,
            building_height_m: h.iter().map(|x| x.1).sum::<f64>() / h.len() as f64,
        }
    };
    let [mut l, mut r] = hits;
    s.left = side(&mut l);
    s.right = side(&mut r);
    s.road_type = disp::road_type(s.left, s.right);
    let facade = s
        .left
        .facade_distance_m
        .min(s.right.facade_distance_m)
        .max(MIN_DISTANCE_M);
    s.receptor_m = if facade <= s.road_type.curve().reach_m {
        facade
    } else {
        OPEN_RECEPTOR_M
    };
}

/// The streets within `reach` metres of any of `rings` (a footprint, or one point), with their nearest distance.
fn near_streets(pieces: &RTree<Piece>, rings: &[Vec<[f64; 2]>], reach: f64) -> Vec<(u32, f64)> {
    let all: Vec<[f64; 2]> = rings.iter().flatten().copied().collect();
    if all.is_empty() {
        return Vec::new();
    }
    let mut best: BTreeMap<u32, f64> = BTreeMap::new();
    for piece in pieces.locate_in_envelope_intersecting(&envelope(&all, reach)) {
        let (a, b) = (piece.geom().from, piece.geom().to);
        let d = rings
            .iter()
            .map(|r| match r.len() {
                0 => f64::INFINITY,
                1 => point_segment_m(r[0], a, b),
                _ => r
                    .windows(2)
                    .map(|w| segment_segment_m(w[0], w[1], a, b))
                    .fold(f64::INFINITY, f64::min),
            })
            .fold(f64::INFINITY, f64::min);
        if d <= reach {
            let e = best.entry(piece.data).or_insert(d);
            *e = e.min(d);
        }
    }
    best.into_iter().collect()
}

// ---------------------------------------------------------------------------------------------------------------------
// results

/// The noise indicators (dB(A), incident sound) at one receptor; `None` where no traffic is heard.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Levels {
    pub lden: Option<f64>,
    pub lnight: Option<f64>,
}

/// One street's air and noise at its receptor (see the module doc), and their change against a baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StreetAir {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Motor vehicles a day (both directions).
    pub vehicles_per_day: f64,
    /// The slower direction's mean speed in the modelled hour (km/h); `None` without traffic.
    pub peak_kmh: Option<f64>,
    /// SRM1 road type, 1–4 ([`RoadType::srm1_number`]).
    pub road_type: u8,
    /// Where the values are: metres from the axis.
    pub receptor_m: f64,
    /// Annual-mean emissions per km of street, g/(km·day).
    pub emission_g_per_km_day: Pollutants,
    /// Annual means at the receptor, background included (µg/m³).
    pub nox: f64,
    pub no2: f64,
    pub pm10: f64,
    pub pm25: f64,
    /// The street's own share of `no2`.
    pub no2_traffic: f64,
    /// NO2 and PM10 (background included) at [`PROFILE_M`] from the axis: 5, 10, 20 and 30 m (the background alone
    /// beyond the road type's reach).
    pub no2_profile: [f64; 4],
    pub pm10_profile: [f64; 4],
    #[serde(flatten)]
    pub noise: Levels,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub delta: Option<StreetDelta>,
}

/// A street's change against the baseline (scenario − baseline).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StreetDelta {
    pub delta_vehicles_per_day: f64,
    pub delta_no2: f64,
    pub delta_pm10: f64,
    pub delta_pm25: f64,
    /// dB; `None` where either side is silent.
    pub delta_lden: Option<f64>,
    pub delta_lnight: Option<f64>,
}

/// What one home's residents breathe and hear.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HomeAir {
    /// The `Building` entity id.
    pub id: String,
    pub residents: f64,
    pub no2: f64,
    pub pm10: f64,
    pub pm25: f64,
    #[serde(flatten)]
    pub noise: Levels,
    /// The street of its largest NO2 contribution (key), if any street is within reach.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub street: Option<String>,
}

/// Residents above the WHO 2021 guideline, the EU 2030 limit and the EU limit of one pollutant's annual mean.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AirExposure {
    pub above_who: f64,
    pub above_eu_2030: f64,
    pub above_eu_limit: f64,
    /// The residents' mean concentration (µg/m³).
    pub mean_residents: f64,
    /// The highest value at any street receptor (µg/m³).
    pub max_street: f64,
}

/// One station: measured, modelled and what the model takes as background there.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StationFit {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The street of its largest modelled contribution (key), if one is within reach.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub street: Option<String>,
    pub pollutants: BTreeMap<&'static str, StationValue>,
}

/// One pollutant at one station (µg/m³).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StationValue {
    pub measured: f64,
    /// The modelled street contribution at the station under this traffic.
    pub traffic: f64,
    /// The background the station itself implies (measured − baseline traffic), as used by the model.
    pub background: f64,
    /// The model at the station without this station: the other stations' background + `traffic`; `None` when no
    /// other station measured it.
    pub predicted: Option<f64>,
}

/// Leave-one-out fit of one pollutant over the stations that measured it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Fit {
    pub stations: usize,
    /// Mean of predicted − measured (µg/m³).
    pub bias: f64,
    pub rmse: f64,
}

/// Where the background came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackgroundReport {
    /// Per pollutant (`no2`, `pm25`, `pm10`, `o3`), how many stations calibrate it (0: the configured value).
    pub stations: BTreeMap<&'static str, usize>,
    pub configured: Background,
}

/// The totals of one air and noise evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AirSummary {
    pub streets: usize,
    pub homes: usize,
    pub residents: f64,
    /// Homes whose residents are a loaded `population` (the others are estimated from floor area).
    pub homes_counted: usize,
    /// Streets per SRM1 road type (`1`–`4`).
    pub road_types: BTreeMap<u8, usize>,
    /// Annual-mean emissions of all streets, kg/day.
    pub emissions_kg_per_day: Pollutants,
    pub vehicle_km_per_day: f64,
    pub no2: AirExposure,
    pub pm25: AirExposure,
    pub pm10: AirExposure,
    pub noise: Exposure,
    pub background: BackgroundReport,
    pub stations: Vec<StationFit>,
    /// Per pollutant with at least two stations, the leave-one-out fit.
    pub fit: BTreeMap<&'static str, Fit>,
    /// Thresholds used (µg/m³, NO2 / PM2.5 / PM10).
    pub thresholds: Thresholds,
}

/// The air-quality thresholds of the exposure counts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Thresholds {
    pub who_2021: [f64; 3],
    pub eu_2030: [f64; 3],
    pub eu_limit: [f64; 3],
}

/// The change of the totals against the baseline: `[baseline, scenario]` pairs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SummaryChange {
    pub no2_above_who: [f64; 2],
    pub no2_above_eu_2030: [f64; 2],
    pub no2_above_eu_limit: [f64; 2],
    pub pm25_above_who: [f64; 2],
    pub pm10_above_who: [f64; 2],
    pub no2_mean_residents: [f64; 2],
    pub lden_above_55: [f64; 2],
    pub lnight_above_50: [f64; 2],
    pub nox_kg_per_day: [f64; 2],
    pub pm10_kg_per_day: [f64; 2],
    pub co2_kg_per_day: [f64; 2],
    /// Streets whose NO2 rose / fell by more than 0.05 µg/m³.
    pub streets_no2_up: usize,
    pub streets_no2_down: usize,
}

/// Air and noise under one traffic solution.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AirResult {
    pub summary: AirSummary,
    /// Against a baseline, the change of the totals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<SummaryChange>,
    /// Per street key (`RoadLink` id, or `added-{edit}`).
    pub streets: BTreeMap<String, StreetAir>,
    pub homes: Vec<HomeAir>,
}

fn silent(l: f64) -> Option<f64> {
    l.is_finite().then_some(l)
}

impl AirCity {
    /// A street a scenario added, shaped by the buildings around it.
    fn added_street(&self, a: &AddedLink) -> Street {
        let mut s = Street {
            key: a.id.clone(),
            name: a.name.clone(),
            links: std::iter::once(a.forward).chain(a.backward).collect(),
            line: a.path.iter().map(|p| self.local.xy(p[0], p[1])).collect(),
            length_m: 0.0,
            left: StreetSide::OPEN,
            right: StreetSide::OPEN,
            road_type: RoadType::Open,
            receptor_m: OPEN_RECEPTOR_M,
            background: self.options.background,
        };
        shape(&mut s, &self.walls);
        s.background = self.background_at(s.midpoint(), None);
        s
    }

    /// Air and noise under `outcome` (solved on `net`, the baseline's network or a scenario's with the streets it
    /// `added`), and with `base` its change against the baseline's result.
    pub fn evaluate(
        &self,
        net: &Network,
        outcome: &Outcome,
        added: &[AddedLink],
        base: Option<&AirResult>,
    ) -> Result<AirResult, AirError> {
        let o = &self.options;
        let extra: Vec<Street> = added.iter().map(|a| self.added_street(a)).collect();
        let sources = self.emissions(net, outcome, &extra)?;
        let all: Vec<&Street> = self.streets.iter().chain(&extra).collect();

        // streets
        let mut streets = BTreeMap::new();
        let mut emitted = Pollutants::default();
        let mut vkm = 0.0;
        let mut road_types: BTreeMap<u8, usize> = BTreeMap::new();
        let (mut max_no2, mut max_pm25, mut max_pm10) = (0.0f64, 0.0f64, 0.0f64);
        for (s, src) in all.iter().zip(&sources) {
            let e = &src.emission;
            // µg/(m·s) · m · 86400 s / 10⁹ = kg/day
            emitted.add(&e.scaled(s.length_m * 86_400.0 / 1e9));
            vkm += src.daily * s.length_m / 1000.0;
            *road_types.entry(s.road_type.srm1_number()).or_default() += 1;
            let x = s.receptor_m;
            let at = |x: f64, q: f64| {
                disp::srm1_concentration(q, x, s.road_type, o.trees, o.regional_wind_ms)
            };
            let bg = s.background;
            let nox = at(x, e.nox);
            let f = if e.nox > 0.0 { e.no2 / e.nox } else { 0.0 };
            let no2 = disp::no2_from_nox(nox, f, bg.no2, bg.o3);
            let pm25 = bg.pm25 + at(x, e.pm25_exhaust + e.pm25_non_exhaust);
            let pm10 = bg.pm10 + at(x, e.pm10_exhaust + e.pm10_non_exhaust);
            let no2_profile = PROFILE_M.map(|x| disp::no2_from_nox(at(x, e.nox), f, bg.no2, bg.o3));
            let pm10_profile =
                PROFILE_M.map(|x| bg.pm10 + at(x, e.pm10_exhaust + e.pm10_non_exhaust));
            max_no2 = max_no2.max(no2);
            max_pm25 = max_pm25.max(pm25);
            max_pm10 = max_pm10.max(pm10);
            let noise = levels(&src.lw, x)?;
            let delta = base
                .and_then(|b| b.streets.get(&s.key))
                .map(|b| StreetDelta {
                    delta_vehicles_per_day: src.daily - b.vehicles_per_day,
                    delta_no2: no2 - b.no2,
                    delta_pm10: pm10 - b.pm10,
                    delta_pm25: pm25 - b.pm25,
                    delta_lden: noise.lden.zip(b.noise.lden).map(|(a, b)| a - b),
                    delta_lnight: noise.lnight.zip(b.noise.lnight).map(|(a, b)| a - b),
                });
            let delta = delta.or_else(|| {
                // a street the scenario added: all of it is change
                (base.is_some() && !self.by_key.contains_key(&s.key)).then_some(StreetDelta {
                    delta_vehicles_per_day: src.daily,
                    delta_no2: no2 - bg.no2,
                    delta_pm10: pm10 - bg.pm10,
                    delta_pm25: pm25 - bg.pm25,
                    delta_lden: None,
                    delta_lnight: None,
                })
            });
            streets.insert(
                s.key.clone(),
                StreetAir {
                    name: s.name.clone(),
                    vehicles_per_day: src.daily,
                    peak_kmh: src.peak_kmh,
                    road_type: s.road_type.srm1_number(),
                    receptor_m: x,
                    emission_g_per_km_day: e.scaled(86.4),
                    nox: bg.nox + nox,
                    no2,
                    pm10,
                    pm25,
                    no2_traffic: no2 - bg.no2,
                    no2_profile,
                    pm10_profile,
                    noise,
                    delta,
                },
            );
        }

        // homes: the streets near them, and the added streets near them
        let base_count = self.streets.len() as u32;
        let mut homes = Vec::with_capacity(self.homes.len());
        let mut noise_homes = Vec::with_capacity(self.homes.len());
        let added_tree: Option<RTree<Piece>> = (!extra.is_empty()).then(|| {
            RTree::bulk_load(
                extra
                    .iter()
                    .enumerate()
                    .flat_map(|(i, s)| {
                        s.line
                            .windows(2)
                            .map(move |w| Piece::new(Line::new(w[0], w[1]), base_count + i as u32))
                    })
                    .collect(),
            )
        });
        for h in &self.homes {
            let mut near = h.near.clone();
            if let Some(tree) = &added_tree {
                near.extend(near_streets(tree, &h.rings, o.noise_reach_m));
            }
            let bg = h.background;
            let (part, which) = self.contribution(&all, &near, &sources, bg.o3);
            let mut loudest = Levels::default();
            for &(i, d) in &near {
                let l = levels(&sources[i as usize].lw, d.max(MIN_DISTANCE_M))?;
                if l.lden.unwrap_or(f64::NEG_INFINITY) > loudest.lden.unwrap_or(f64::NEG_INFINITY) {
                    loudest = l;
                }
            }
            noise_homes.push((
                loudest.lden.unwrap_or(f64::NEG_INFINITY),
                loudest.lnight.unwrap_or(f64::NEG_INFINITY),
                h.residents,
            ));
            homes.push(HomeAir {
                id: h.id.clone(),
                residents: h.residents,
                no2: bg.no2 + part[NO2],
                pm25: bg.pm25 + part[PM25],
                pm10: bg.pm10 + part[PM10],
                noise: loudest,
                street: which.map(|i| all[i as usize].key.clone()),
            });
        }
        let exposure = |k: usize, get: fn(&HomeAir) -> f64, max_street: f64| {
            let mut x = AirExposure {
                max_street,
                ..AirExposure::default()
            };
            let mut people = 0.0;
            for h in &homes {
                let v = get(h);
                people += h.residents;
                x.mean_residents += v * h.residents;
                if v > WHO_2021[k] {
                    x.above_who += h.residents;
                }
                if v > EU_2030[k] {
                    x.above_eu_2030 += h.residents;
                }
                if v > EU_LIMIT[k] {
                    x.above_eu_limit += h.residents;
                }
            }
            if people > 0.0 {
                x.mean_residents /= people;
            }
            x
        };
        let no2 = exposure(NO2, |h| h.no2, max_no2);
        let pm25 = exposure(PM25, |h| h.pm25, max_pm25);
        let pm10 = exposure(PM10, |h| h.pm10, max_pm10);
        let noise_exposure = noise::exposure(&noise_homes)?;

        // stations
        let mut fits: BTreeMap<&'static str, Vec<(f64, f64)>> = BTreeMap::new();
        let mut stations = Vec::new();
        for (k, st) in self.stations.iter().enumerate() {
            let o3 = self.background_at(st.at, None).o3;
            let (part, which) = self.contribution(&all, &st.near, &sources, o3);
            let loo = self.background_at(st.at, Some(k));
            let others = |p: usize| {
                self.stations
                    .iter()
                    .enumerate()
                    .any(|(j, s)| j != k && s.residual[p].is_some())
            };
            let mut pollutants = BTreeMap::new();
            for (p, bg_loo) in [(NO2, loo.no2), (PM25, loo.pm25), (PM10, loo.pm10)] {
                let Some(m) = st.measured[p] else { continue };
                let predicted = others(p).then_some(bg_loo + part[p]);
                if let Some(pr) = predicted {
                    fits.entry(STATION_NAMES[p]).or_default().push((pr, m));
                }
                pollutants.insert(
                    STATION_NAMES[p],
                    StationValue {
                        measured: m,
                        traffic: part[p],
                        background: st.residual[p].unwrap_or(m).max(0.0),
                        predicted,
                    },
                );
            }
            stations.push(StationFit {
                id: st.id.clone(),
                name: st.name.clone(),
                street: which.map(|i| self.streets[i as usize].key.clone()),
                pollutants,
            });
        }
        let fit = fits
            .into_iter()
            .map(|(name, pairs)| {
                let n = pairs.len() as f64;
                let bias = pairs.iter().map(|(p, m)| p - m).sum::<f64>() / n;
                let rmse = (pairs.iter().map(|(p, m)| (p - m).powi(2)).sum::<f64>() / n).sqrt();
                (
                    name,
                    Fit {
                        stations: pairs.len(),
                        bias,
                        rmse,
                    },
                )
            })
            .collect();
        let background = BackgroundReport {
            stations: [NO2, PM25, PM10, O3]
                .into_iter()
                .map(|p| {
                    (
                        STATION_NAMES[p],
                        self.stations
                            .iter()
                            .filter(|s| s.residual[p].is_some())
                            .count(),
                    )
                })
                .collect(),
            configured: o.background,
        };
        let summary = AirSummary {
            streets: streets.len(),
            homes: homes.len(),
            residents: homes.iter().map(|h| h.residents).sum(),
            homes_counted: self.homes_counted,
            road_types,
            emissions_kg_per_day: emitted,
            vehicle_km_per_day: vkm,
            no2,
            pm25,
            pm10,
            noise: noise_exposure,
            background,
            stations,
            fit,
            thresholds: Thresholds {
                who_2021: WHO_2021,
                eu_2030: EU_2030,
                eu_limit: EU_LIMIT,
            },
        };
        let change = base.map(|b| {
            let (bs, s) = (&b.summary, &summary);
            let moved = |up: bool| {
                streets
                    .values()
                    .filter_map(|v| v.delta)
                    .filter(|d| {
                        if up {
                            d.delta_no2 > 0.05
                        } else {
                            d.delta_no2 < -0.05
                        }
                    })
                    .count()
            };
            SummaryChange {
                no2_above_who: [bs.no2.above_who, s.no2.above_who],
                no2_above_eu_2030: [bs.no2.above_eu_2030, s.no2.above_eu_2030],
                no2_above_eu_limit: [bs.no2.above_eu_limit, s.no2.above_eu_limit],
                pm25_above_who: [bs.pm25.above_who, s.pm25.above_who],
                pm10_above_who: [bs.pm10.above_who, s.pm10.above_who],
                no2_mean_residents: [bs.no2.mean_residents, s.no2.mean_residents],
                lden_above_55: [bs.noise.end_lden, s.noise.end_lden],
                lnight_above_50: [bs.noise.end_lnight, s.noise.end_lnight],
                nox_kg_per_day: [bs.emissions_kg_per_day.nox, s.emissions_kg_per_day.nox],
                pm10_kg_per_day: [
                    bs.emissions_kg_per_day.pm10_exhaust + bs.emissions_kg_per_day.pm10_non_exhaust,
                    s.emissions_kg_per_day.pm10_exhaust + s.emissions_kg_per_day.pm10_non_exhaust,
                ],
                co2_kg_per_day: [bs.emissions_kg_per_day.co2, s.emissions_kg_per_day.co2],
                streets_no2_up: moved(true),
                streets_no2_down: moved(false),
            }
        });
        Ok(AirResult {
            summary,
            change,
            streets,
            homes,
        })
    }
}

/// L_den and L_night at `distance_m` from a street of sound power per metre `lw` (day, evening, night).
fn levels(lw: &[f64; 3], distance_m: f64) -> Result<Levels, AirError> {
    if lw.iter().all(|l| !l.is_finite()) {
        return Ok(Levels::default());
    }
    let at = |l: f64| noise::level_at(l, distance_m, false);
    let i = noise::Indicators::from_periods(at(lw[0])?, at(lw[1])?, at(lw[2])?)?;
    Ok(Levels {
        lden: silent(i.l_den),
        lnight: silent(i.l_night),
    })
}

// ---------------------------------------------------------------------------------------------------------------------
// the concentration field

/// How far a road counts on the receptor grid (m): nearer roads are summed exactly, farther ones are left to the
/// background (see [`AirCity::field`]).
pub const FIELD_REACH_M: f64 = 500.0;
/// Receptor height on the grid (m): breathing height.
const FIELD_HEIGHT_M: f64 = 1.5;
/// Cells a field may have (a 20 m grid over 12 km × 12 km).
pub const FIELD_MAX_CELLS: usize = 360_000;

/// Concentrations on a regular grid over the city (Gaussian line sources, one weather situation).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Field {
    /// The grid's south-west corner, `[lon, lat]`.
    pub south_west: [f64; 2],
    /// The grid's north-east corner, `[lon, lat]`.
    pub north_east: [f64; 2],
    pub cell_m: f64,
    pub nx: usize,
    pub ny: usize,
    /// The streets' NOx contribution per cell (µg/m³), row by row from the south-west corner eastwards
    /// (cell `(i, j)` at `j·nx + i`).
    pub nox_traffic: Vec<f32>,
    /// NO2 per cell (µg/m³): the city's mean background plus the streets' NOx turned into NO2 with the streets'
    /// overall direct-NO2 share.
    pub no2: Vec<f32>,
    /// The background used.
    pub background: Background,
    pub segments: usize,
    pub reach_m: f64,
}

impl AirCity {
    /// The NOx and NO2 field on a grid of `cell_m` cells over the streets (and one cell around them), under
    /// `outcome` and the weather `met`: every street's axis a Gaussian line source of its annual-mean NOx emission
    /// ([`disp::concentration_grid_within`], receptors at 1.5 m), roads within [`FIELD_REACH_M`] of a receptor
    /// summed. Farther roads are left to the background: they are what an urban-background station measures, and the
    /// cut-off leaves out up to about half of the modelled traffic increment at the far edge of a dense network (the
    /// measurement is in [`super::dispersion`]'s module doc). One weather situation, not an annual mean: use SRM1's
    /// street values for annual means at the façades.
    pub fn field(
        &self,
        net: &Network,
        outcome: &Outcome,
        added: &[AddedLink],
        met: &disp::Met,
        cell_m: f64,
    ) -> Result<Field, AirError> {
        let extra: Vec<Street> = added.iter().map(|a| self.added_street(a)).collect();
        let sources = self.emissions(net, outcome, &extra)?;
        let lines: Vec<(&[[f64; 2]], f64, f64)> = self
            .streets
            .iter()
            .chain(&extra)
            .zip(&sources)
            .map(|(s, src)| (s.line.as_slice(), src.emission.nox, src.emission.no2))
            .collect();
        self.field_of_lines(&lines, met, cell_m)
    }

    /// [`AirCity::field`] from stored street emissions: per street key, its annual-mean NOx and direct NO2 line
    /// source (µg/(m·s)), and the lines (`[lon, lat]`) of streets a scenario added, keyed as in `emissions`. Keys
    /// that are not streets of the city and have no line are left out.
    pub fn field_of(
        &self,
        emissions: &HashMap<String, [f64; 2]>,
        added: &HashMap<String, Vec<[f64; 2]>>,
        met: &disp::Met,
        cell_m: f64,
    ) -> Result<Field, AirError> {
        let added: Vec<(Vec<[f64; 2]>, [f64; 2])> = added
            .iter()
            .filter_map(|(k, line)| {
                let e = emissions.get(k)?;
                Some((line.iter().map(|p| self.local.xy(p[0], p[1])).collect(), *e))
            })
            .collect();
        let lines: Vec<(&[[f64; 2]], f64, f64)> = self
            .streets
            .iter()
            .filter_map(|s| {
                emissions
                    .get(&s.key)
                    .map(|e| (s.line.as_slice(), e[0], e[1]))
            })
            .chain(added.iter().map(|(l, e)| (l.as_slice(), e[0], e[1])))
            .collect();
        self.field_of_lines(&lines, met, cell_m)
    }

    /// The field of street axes (local metres) with their NOx and direct-NO2 line sources (µg/(m·s)).
    fn field_of_lines(
        &self,
        lines: &[(&[[f64; 2]], f64, f64)],
        met: &disp::Met,
        cell_m: f64,
    ) -> Result<Field, AirError> {
        if !(cell_m.is_finite() && cell_m >= 1.0) {
            return Err(AirError::Options(format!(
                "the cell size must be at least 1 m, not {cell_m}"
            )));
        }
        let mut segments = Vec::new();
        let (mut nox, mut no2) = (0.0, 0.0);
        let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
        for &(line, e_nox, e_no2) in lines {
            for p in line {
                for k in 0..2 {
                    lo[k] = lo[k].min(p[k]);
                    hi[k] = hi[k].max(p[k]);
                }
            }
            if !(e_nox.is_finite() && e_nox > 0.0) {
                continue;
            }
            let len = line_length(line);
            nox += e_nox * len;
            no2 += e_no2.clamp(0.0, e_nox) * len;
            for w in line.windows(2) {
                segments.push(disp::LineSegment {
                    q_ug_m_s: e_nox,
                    a: w[0],
                    b: w[1],
                    height_m: 0.0,
                });
            }
        }
        if !lo[0].is_finite() {
            lo = [0.0; 2];
            hi = [0.0; 2];
        }
        let (lo, hi) = (
            [lo[0] - cell_m, lo[1] - cell_m],
            [hi[0] + cell_m, hi[1] + cell_m],
        );
        let nx = ((hi[0] - lo[0]) / cell_m).ceil().max(1.0) as usize;
        let ny = ((hi[1] - lo[1]) / cell_m).ceil().max(1.0) as usize;
        if nx.saturating_mul(ny) > FIELD_MAX_CELLS {
            return Err(AirError::Options(format!(
                "a {cell_m} m grid over the city would have {nx} × {ny} cells, more than {FIELD_MAX_CELLS}: take \
                 larger cells"
            )));
        }
        let grid = disp::ReceptorGrid {
            origin_x: lo[0],
            origin_y: lo[1],
            nx,
            ny,
            cell_m,
            z_m: FIELD_HEIGHT_M,
        };
        let traffic = disp::concentration_grid_within(&segments, &grid, met, FIELD_REACH_M);
        // the city's mean background: the stations' at the grid's centre, else the configured one
        let centre = [(lo[0] + hi[0]) / 2.0, (lo[1] + hi[1]) / 2.0];
        let bg = self.background_at(centre, None);
        let f = if nox > 0.0 { no2 / nox } else { 0.0 };
        let to_lonlat = |p: [f64; 2]| {
            [
                self.local.lon0 + p[0] / self.local.kx,
                self.local.lat0 + p[1] / self.local.ky,
            ]
        };
        Ok(Field {
            south_west: to_lonlat(lo),
            north_east: to_lonlat([lo[0] + nx as f64 * cell_m, lo[1] + ny as f64 * cell_m]),
            cell_m,
            nx,
            ny,
            no2: traffic
                .iter()
                .map(|&c| disp::no2_from_nox(c, f, bg.no2, bg.o3) as f32)
                .collect(),
            nox_traffic: traffic.iter().map(|&c| c as f32).collect(),
            background: bg,
            segments: segments.len(),
            reach_m: FIELD_REACH_M,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row of buildings `height` m high along the street (x from −60 to 60 m), its wall `y` m from the axis.
    fn row(y: f64, height: f32) -> Vec<Wall> {
        let far = y + 12.0 * y.signum();
        let mut w = Vec::new();
        for k in 0..6 {
            let (x0, x1) = (-60.0 + 20.0 * k as f64, -60.0 + 20.0 * (k + 1) as f64);
            for (a, b) in [
                ([x0, y], [x1, y]),
                ([x1, y], [x1, far]),
                ([x1, far], [x0, far]),
                ([x0, far], [x0, y]),
            ] {
                w.push(Wall::new(Line::new(a, b), height));
            }
        }
        w
    }

    fn street(walls: Vec<Wall>) -> Street {
        let mut s = Street {
            key: "s".into(),
            name: None,
            links: Vec::new(),
            line: vec![[-50.0, 0.0], [0.0, 0.0], [50.0, 0.0]],
            length_m: 0.0,
            left: StreetSide::OPEN,
            right: StreetSide::OPEN,
            road_type: RoadType::Open,
            receptor_m: 0.0,
            background: Background::default(),
        };
        shape(&mut s, &RTree::bulk_load(walls));
        s
    }

    #[test]
    fn buildings_along_a_street_make_its_road_type() {
        // 20 m high on both sides, 8 and 9 m from the axis: (8 + 9) / 40 < 1.5, a narrow canyon, receptor at 8 m
        let mut w = row(8.0, 20.0);
        w.extend(row(-9.0, 20.0));
        let s = street(w);
        assert_eq!(s.length_m, 100.0);
        assert_eq!(s.left.facade_distance_m, 8.0);
        assert_eq!(s.right.facade_distance_m, 9.0);
        assert_eq!(s.left.building_height_m, 20.0);
        assert_eq!(s.road_type, RoadType::NarrowCanyon);
        assert_eq!(s.receptor_m, 8.0);
        // 6 m high, 12 m away on both sides: (12 + 12) / 12 ≥ 1.5 but 12 < 3 · 6, a wide canyon
        let mut w = row(12.0, 6.0);
        w.extend(row(-12.0, 6.0));
        assert_eq!(street(w).road_type, RoadType::WideCanyon);
        // one side only
        let s = street(row(-6.0, 15.0));
        assert_eq!((s.road_type, s.receptor_m), (RoadType::OneSided, 6.0));
        assert_eq!(s.left, StreetSide::OPEN);
        // low buildings far away do not enclose: open, the façade (40 m) within the open type's 60 m reach
        let s = street(row(40.0, 6.0));
        assert_eq!((s.road_type, s.receptor_m), (RoadType::Open, 40.0));
        // nothing at all: open, 10 m
        let s = street(Vec::new());
        assert_eq!(
            (s.road_type, s.receptor_m),
            (RoadType::Open, OPEN_RECEPTOR_M)
        );
        // buildings along less than half the street do not make a side
        let half: Vec<Wall> = row(8.0, 20.0)
            .into_iter()
            .filter(|w| w.geom().from[0] >= 10.0 && w.geom().to[0] >= 10.0)
            .collect();
        assert_eq!(street(half).left, StreetSide::OPEN);
    }

    #[test]
    fn distances() {
        assert_eq!(point_segment_m([0.0, 5.0], [-1.0, 0.0], [1.0, 0.0]), 5.0);
        assert_eq!(
            point_segment_m([4.0, 3.0], [-1.0, 0.0], [1.0, 0.0]),
            3f64.hypot(3.0)
        );
        assert_eq!(
            point_segment_m([2.0, 2.0], [1.0, 1.0], [1.0, 1.0]),
            2f64.sqrt()
        );
        // crossing segments touch; parallel ones are their gap apart
        assert_eq!(
            segment_segment_m([-1.0, -1.0], [1.0, 1.0], [-1.0, 1.0], [1.0, -1.0]),
            0.0
        );
        assert_eq!(
            segment_segment_m([0.0, 0.0], [10.0, 0.0], [2.0, 3.0], [8.0, 3.0]),
            3.0
        );
        assert_eq!(
            ray_hit([0.0, 0.0], [0.0, 1.0], [-1.0, 5.0], [1.0, 5.0]),
            Some(5.0)
        );
        assert_eq!(
            ray_hit([0.0, 0.0], [0.0, -1.0], [-1.0, 5.0], [1.0, 5.0]),
            None
        );
        assert_eq!(
            ray_hit([0.0, 0.0], [1.0, 0.0], [-1.0, 5.0], [1.0, 5.0]),
            None
        );
        // a footprint 20 m north of a street, within and beyond the reach
        let pieces = RTree::bulk_load(vec![Piece::new(Line::new([-50.0, 0.0], [50.0, 0.0]), 0)]);
        let house = vec![vec![
            [0.0, 20.0],
            [10.0, 20.0],
            [10.0, 30.0],
            [0.0, 30.0],
            [0.0, 20.0],
        ]];
        assert_eq!(near_streets(&pieces, &house, 25.0), vec![(0, 20.0)]);
        assert!(near_streets(&pieces, &house, 19.0).is_empty());
        let l = Local::new(24.94, 60.17);
        let p = l.xy(24.95, 60.17);
        // 0.01° of longitude at 60.17° N is 555 m
        assert!((p[0] - 555.0).abs() < 2.0 && p[1] == 0.0, "{p:?}");
    }

    #[test]
    fn options_out_of_range_are_refused() {
        assert!(AirOptions::default().check().is_ok());
        for o in [
            AirOptions {
                peak_share: 0.0,
                ..AirOptions::default()
            },
            AirOptions {
                peak_hours: 25.0,
                ..AirOptions::default()
            },
            AirOptions {
                regional_wind_ms: f64::NAN,
                ..AirOptions::default()
            },
            AirOptions {
                background: Background {
                    no2: -1.0,
                    ..Background::default()
                },
                ..AirOptions::default()
            },
            AirOptions {
                split: DailySplit {
                    day: 0.9,
                    evening: 0.2,
                    night: 0.1,
                },
                ..AirOptions::default()
            },
        ] {
            let e = o.check().unwrap_err().to_string();
            assert!(!e.is_empty());
        }
        let e = AirOptions {
            peak_share: 2.0,
            ..AirOptions::default()
        }
        .check()
        .unwrap_err();
        assert_eq!(e.to_string(), "peakShare must be in (0, 1], not 2");
    }
}
