//! Car trips for a city without a travel survey: trip generation from the city model, zones on a grid, and a
//! doubly-constrained gravity model whose deterrence is calibrated to a mean trip time.
//!
//! # Trip generation (one peak hour, car driver trips)
//! - **Productions** (trips leaving home): residential floor area × `trips_per_res_m2` (default 0.004 per m², i.e.
//!   a 100 m² dwelling makes 0.4 car trips in the peak hour — about one trip per dwelling per day in a dense
//!   European centre, with 12 % of it in the peak hour; TRICS/ITE-style rates, to be calibrated to counts).
//! - **Attractions**: jobs × `trips_per_job` (0.12), with jobs = non-residential floor area / `m2_per_job` (30 m²),
//!   plus a fixed number per point of interest by 15-minute category (`poi_attractions`: a grocery 12, a school 25,
//!   healthcare 15, ...; see [`GenerationRates::default`]).
//! - Floor area = footprint × floors; floors from the data (`floorsAboveGround`), else height / 3 m, else 2.
//!   Residential: categories `residential`, `apartments`, `house`, `detached`, `semidetached_house`, `terrace`,
//!   `dormitory`, `bungalow`; a building of unknown use (`yes`) counts half residential, half jobs.
//!
//! # Zones
//! Square cells of `cell_m` metres (default 400 m) in a local metric projection; a zone is a cell holding any
//! production or attraction, its centroid the activity-weighted mean position, connected to the network at the
//! nearest node of the nearest link open to cars.
//!
//! # Distribution
//! T_ij = a_i · b_j · P_i · A_j · exp(−β · c_ij) for i ≠ j, with c_ij the free-flow car time between zone nodes
//! (minutes) and intrazonal trips left out (they never use the network). Attractions are first scaled to the total
//! productions; a_i and b_j are found by Furness balancing (iterative proportional fitting) until every row and column
//! sum is within `tolerance` (relative) of P_i and A_j. β is calibrated by bisection so that the mean trip time
//! Σ T_ij c_ij / Σ T_ij equals a target (default 12 min, a plausible peak car trip within a city centre); the mean
//! time falls monotonically as β grows. Productions of a zone from which no other zone is reachable, and
//! attractions no zone can reach, are reported as unserved rather than forced onto impossible pairs.
//!
//! Sources: Ortúzar & Willumsen, *Modelling Transport*, 4th ed. (2011), ch. 5 (generation) and 6 (gravity models,
//! Furness method, calibration of the deterrence function); Evans (1970) for the convergence of Furness balancing.

use std::collections::HashMap;

use rayon::prelude::*;
use twin_graph::snap::LocalProjection;
use twin_graph::{Mode, Network, SearchWorkspace, SnapIndex};

/// Trip rates (peak hour, car driver trips); see the module doc for the defaults' meaning.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationRates {
    pub trips_per_res_m2: f64,
    pub m2_per_job: f64,
    pub trips_per_job: f64,
    pub default_floors: f64,
    pub floor_height_m: f64,
    /// Attractions per point of interest, by 15-minute category.
    pub poi_attractions: HashMap<String, f64>,
}

impl Default for GenerationRates {
    fn default() -> Self {
        let poi = [
            ("grocery", 12.0),
            ("school", 25.0),
            ("childcare", 8.0),
            ("healthcare", 15.0),
            ("pharmacy", 6.0),
            ("restaurant_cafe", 4.0),
            ("culture", 10.0),
            ("sport", 10.0),
            ("other_shop", 3.0),
            ("services", 4.0),
            ("park", 2.0),
            ("public_transport_stop", 0.0),
        ];
        GenerationRates {
            trips_per_res_m2: 0.004,
            m2_per_job: 30.0,
            trips_per_job: 0.12,
            default_floors: 2.0,
            floor_height_m: 3.0,
            poi_attractions: poi.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        }
    }
}

const RESIDENTIAL: &[&str] = &[
    "residential",
    "apartments",
    "house",
    "detached",
    "semidetached_house",
    "terrace",
    "dormitory",
    "bungalow",
];

/// The share of a building's floor area that is homes, by its use category: 1 for the residential categories, ½ for a
/// building of unknown use (`yes` or none), 0 otherwise.
pub fn residential_share(category: &str) -> f64 {
    if RESIDENTIAL.contains(&category) {
        1.0
    } else if category == "yes" || category.is_empty() {
        0.5
    } else {
        0.0
    }
}

/// Where trips start or end: a position and its productions and attractions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Activity {
    pub lon: f64,
    pub lat: f64,
    pub productions: f64,
    pub attractions: f64,
}

impl GenerationRates {
    /// Floors of a building: given, else from its height, else the default.
    pub fn floors(&self, floors: Option<f64>, height_m: Option<f64>) -> f64 {
        match (floors, height_m) {
            (Some(f), _) if f.is_finite() && f > 0.0 => f,
            (_, Some(h)) if h.is_finite() && h > 0.0 => (h / self.floor_height_m).round().max(1.0),
            _ => self.default_floors,
        }
    }

    /// Productions and attractions of a building from its footprint, floors and use category.
    pub fn building(&self, footprint_m2: f64, floors: f64, category: &str) -> (f64, f64) {
        if !(footprint_m2.is_finite() && footprint_m2 > 0.0 && floors.is_finite() && floors > 0.0) {
            return (0.0, 0.0);
        }
        let area = footprint_m2 * floors;
        let share_res = residential_share(category);
        let productions = area * share_res * self.trips_per_res_m2;
        let jobs = area * (1.0 - share_res) / self.m2_per_job;
        (productions, jobs * self.trips_per_job)
    }

    /// Attractions of a point of interest of a 15-minute category (0 for unknown categories).
    pub fn poi(&self, category: &str) -> f64 {
        self.poi_attractions.get(category).copied().unwrap_or(0.0)
    }
}

/// A traffic zone: its centroid, the network node trips start and end at, and its trip ends.
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    pub lon: f64,
    pub lat: f64,
    pub node: u32,
    pub productions: f64,
    pub attractions: f64,
    /// A gateway where a road leaves the modelled area (trips to and from the rest of the world), not a cell.
    pub external: bool,
}

/// Groups activities into square cells of `cell_m` metres and connects each zone to the car network (`snap` must
/// index the links open to cars of `net`). Activities that cannot be connected are left out and counted.
pub fn grid_zones(
    net: &Network,
    snap: &SnapIndex,
    activities: &[Activity],
    cell_m: f64,
) -> (Vec<Zone>, usize) {
    let proj = LocalProjection::around(net);
    /// Activity-weighted position sums, weight, productions and attractions of a cell.
    #[derive(Default, Clone, Copy)]
    struct Cell {
        sx: f64,
        sy: f64,
        w: f64,
        p: f64,
        a: f64,
    }
    let mut cells: HashMap<(i64, i64), Cell> = HashMap::new();
    for a in activities {
        let w = a.productions + a.attractions;
        if w.is_nan() || w <= 0.0 || !a.lon.is_finite() || !a.lat.is_finite() {
            continue;
        }
        let [x, y] = proj.project((a.lon, a.lat));
        let key = ((x / cell_m).floor() as i64, (y / cell_m).floor() as i64);
        let c = cells.entry(key).or_default();
        c.sx += x * w;
        c.sy += y * w;
        c.w += w;
        c.p += a.productions;
        c.a += a.attractions;
    }
    let mut keys: Vec<_> = cells.keys().copied().collect();
    keys.sort();
    let mut zones = Vec::new();
    let mut unconnected = 0;
    for k in keys {
        let Cell { sx, sy, w, p, a } = cells[&k];
        let (lon, lat) = proj.unproject([sx / w, sy / w]);
        let Some(s) = snap.snap(lon, lat) else {
            unconnected += 1;
            continue;
        };
        let link = s.link as usize;
        let node = if s.fraction < 0.5 {
            net.link_from()[link]
        } else {
            net.link_to()[link]
        };
        zones.push(Zone {
            lon,
            lat,
            node,
            productions: p,
            attractions: a,
            external: false,
        });
    }
    (zones, unconnected)
}

/// Gateways: car network nodes within `edge_m` of the network's bounding box where a road of at least
/// `min_capacity` vehicles per hour (into or out of the area) leaves the extract. Each becomes an external zone
/// producing and attracting `load` × that capacity per hour (the share of the road's capacity in use in the peak:
/// the traffic that passes through the area or comes from outside it).
pub fn gateway_zones(net: &Network, edge_m: f64, min_capacity: f64, load: f64) -> Vec<Zone> {
    let view = net.view(Mode::Car);
    let nodes: Vec<u32> = (0..net.node_count() as u32)
        .filter(|&n| view.touches(n))
        .collect();
    if nodes.is_empty() || load <= 0.0 {
        return Vec::new();
    }
    let proj = LocalProjection::around(net);
    let xy: Vec<[f64; 2]> = nodes
        .iter()
        .map(|&n| proj.project(net.node_coord(n)))
        .collect();
    let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for p in &xy {
        x0 = x0.min(p[0]);
        y0 = y0.min(p[1]);
        x1 = x1.max(p[0]);
        y1 = y1.max(p[1]);
    }
    let caps = net.capacity_vph();
    let mut out = Vec::new();
    for (&n, p) in nodes.iter().zip(&xy) {
        let at_edge = p[0] - x0 <= edge_m
            || x1 - p[0] <= edge_m
            || p[1] - y0 <= edge_m
            || y1 - p[1] <= edge_m;
        if !at_edge {
            continue;
        }
        // a road that stops here, cut by the extract: few car links touch the node
        let outs: Vec<u32> = view.out_links(n).collect();
        let ins: Vec<u32> = view.in_links(n).collect();
        if outs.len() > 1 || ins.len() > 1 {
            continue;
        }
        let inbound: f64 = outs.iter().map(|&l| caps[l as usize]).sum();
        let outbound: f64 = ins.iter().map(|&l| caps[l as usize]).sum();
        let capacity = inbound.max(outbound);
        if capacity < min_capacity {
            continue;
        }
        let (lon, lat) = net.node_coord(n);
        out.push(Zone {
            lon,
            lat,
            node: n,
            productions: load * inbound,
            attractions: load * outbound,
            external: true,
        });
    }
    out
}

/// Free-flow car times between zone nodes, minutes (`f64::INFINITY` where unreachable), one search per zone in
/// parallel.
pub fn skim(net: &Network, zones: &[Zone]) -> Vec<Vec<f64>> {
    let view = net.view(Mode::Car);
    let costs = net.free_flow_s();
    zones
        .par_iter()
        .map_init(SearchWorkspace::new, |ws, z| {
            let mut row = vec![f64::INFINITY; zones.len()];
            if view.one_to_all(ws, costs, z.node).is_ok() {
                for (j, d) in zones.iter().enumerate() {
                    if let Some(c) = ws.cost(d.node) {
                        row[j] = c / 60.0;
                    }
                }
            }
            row
        })
        .collect()
}

/// A trip matrix from the gravity model, with how it was reached.
#[derive(Debug, Clone, PartialEq)]
pub struct Distribution {
    /// `trips[i][j]`, zones in the order given.
    pub trips: Vec<Vec<f64>>,
    pub beta: f64,
    pub mean_cost: f64,
    pub furness_iterations: usize,
    /// Largest relative difference between a row or column sum and its target at the end.
    pub max_error: f64,
    /// Productions of zones that reach no other zone, and attractions no zone reaches (trips).
    pub unserved_productions: f64,
    pub unserved_attractions: f64,
}

/// Doubly-constrained gravity distribution with deterrence exp(−β c) (see the module doc).
#[allow(clippy::needless_range_loop)] // matrix arithmetic reads best with indices
pub fn distribute(
    productions: &[f64],
    attractions: &[f64],
    cost: &[Vec<f64>],
    beta: f64,
    tolerance: f64,
    max_iterations: usize,
) -> Distribution {
    let n = productions.len();
    // each row's deterrence is taken relative to its cheapest destination: a factor per row that the balancing
    // factor a_i absorbs, so the result is the same, but large β·c no longer underflows whole rows to zero
    let f: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            let reachable = |j: usize| i != j && cost[i][j].is_finite();
            let min = (0..n)
                .filter(|&j| reachable(j))
                .map(|j| cost[i][j])
                .fold(f64::INFINITY, f64::min);
            (0..n)
                .map(|j| {
                    if reachable(j) {
                        (-beta * (cost[i][j] - min)).exp()
                    } else {
                        0.0
                    }
                })
                .collect()
        })
        .collect();
    // trip ends that cannot be served: rows or columns with no reachable partner that has trip ends
    let mut p: Vec<f64> = productions.to_vec();
    let mut a: Vec<f64> = attractions.to_vec();
    let mut unserved_p = 0.0;
    let mut unserved_a = 0.0;
    loop {
        let mut changed = false;
        for i in 0..n {
            if p[i] > 0.0 && !(0..n).any(|j| f[i][j] > 0.0 && a[j] > 0.0) {
                unserved_p += p[i];
                p[i] = 0.0;
                changed = true;
            }
        }
        for j in 0..n {
            if a[j] > 0.0 && !(0..n).any(|i| f[i][j] > 0.0 && p[i] > 0.0) {
                unserved_a += a[j];
                a[j] = 0.0;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let total_p: f64 = p.iter().sum();
    let total_a: f64 = a.iter().sum();
    if total_a > 0.0 {
        let k = total_p / total_a;
        a.iter_mut().for_each(|x| *x *= k);
    }
    // deterrence first, so that a zero never meets an overflowed factor (0 × ∞ would be NaN)
    let cell = |i: usize, j: usize, ai: &[f64], bj: &[f64]| {
        if f[i][j] == 0.0 {
            0.0
        } else {
            (f[i][j] * ai[i] * p[i]) * (bj[j] * a[j])
        }
    };
    let mut ai = vec![1.0; n];
    let mut bj = vec![1.0; n];
    let mut iterations = 0;
    let mut max_error = 0.0;
    while iterations < max_iterations {
        iterations += 1;
        for i in 0..n {
            let s: f64 = (0..n).map(|j| bj[j] * a[j] * f[i][j]).sum();
            ai[i] = if s > 0.0 && (1.0 / s).is_finite() {
                1.0 / s
            } else {
                0.0
            };
        }
        for j in 0..n {
            let s: f64 = (0..n).map(|i| ai[i] * p[i] * f[i][j]).sum();
            bj[j] = if s > 0.0 && (1.0 / s).is_finite() {
                1.0 / s
            } else {
                0.0
            };
        }
        // after the column step columns are exact; rows tell the error
        max_error = 0.0f64;
        for i in 0..n {
            if p[i] > 0.0 {
                let row: f64 = (0..n).map(|j| cell(i, j, &ai, &bj)).sum();
                max_error = max_error.max((row - p[i]).abs() / p[i]);
            }
        }
        if max_error <= tolerance || !max_error.is_finite() {
            break;
        }
    }
    let trips: Vec<Vec<f64>> = (0..n)
        .map(|i| (0..n).map(|j| cell(i, j, &ai, &bj)).collect())
        .collect();
    if !trips.iter().flatten().all(|t| t.is_finite()) {
        // β so large that the factors overflow: no usable matrix
        return Distribution {
            trips: vec![vec![0.0; n]; n],
            beta,
            mean_cost: f64::INFINITY,
            furness_iterations: iterations,
            max_error: f64::INFINITY,
            unserved_productions: unserved_p,
            unserved_attractions: unserved_a,
        };
    }
    let total: f64 = trips.iter().flatten().sum();
    let weighted: f64 = (0..n)
        .flat_map(|i| (0..n).map(move |j| (i, j)))
        .filter(|&(i, j)| trips[i][j] > 0.0)
        .map(|(i, j)| trips[i][j] * cost[i][j])
        .sum();
    Distribution {
        trips,
        beta,
        mean_cost: if total > 0.0 { weighted / total } else { 0.0 },
        furness_iterations: iterations,
        max_error,
        unserved_productions: unserved_p,
        unserved_attractions: unserved_a,
    }
}

/// The gravity distribution whose mean trip cost is `target_mean` (same unit as `cost`), β found by bisection. When
/// the target is outside what any β ≥ 0 can give (e.g. below the shortest trips), the nearest end is returned.
pub fn calibrate(
    productions: &[f64],
    attractions: &[f64],
    cost: &[Vec<f64>],
    target_mean: f64,
    tolerance: f64,
) -> Distribution {
    let run = |beta: f64| distribute(productions, attractions, cost, beta, tolerance, 10_000);
    // a β so large that balancing no longer converges counts as "too short": the margins cannot be met with it
    let too_short =
        |d: &Distribution| d.max_error > tolerance.max(1e-6) || d.mean_cost <= target_mean;
    let at_zero = run(0.0);
    if at_zero.mean_cost <= target_mean {
        // even indifference to cost gives trips this short
        return at_zero;
    }
    let (mut lo, mut hi) = (0.0, 0.05);
    let mut best = at_zero;
    loop {
        let d = run(hi);
        if too_short(&d) {
            if d.max_error <= tolerance.max(1e-6) {
                best = d;
            }
            break;
        }
        best = d;
        lo = hi;
        hi *= 2.0;
        if hi > 1e3 {
            // the target is below what the margins allow: the closest is the largest β that still balances
            return best;
        }
    }
    for _ in 0..80 {
        let mid = 0.5 * (lo + hi);
        let d = run(mid);
        if d.max_error <= tolerance.max(1e-6)
            && (d.mean_cost - target_mean).abs() < (best.mean_cost - target_mean).abs()
        {
            best = d.clone();
        }
        if (d.mean_cost - target_mean).abs() <= 1e-9 * target_mean
            && d.max_error <= tolerance.max(1e-6)
        {
            return d;
        }
        if too_short(&d) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn costs() -> Vec<Vec<f64>> {
        vec![
            vec![0.0, 5.0, 10.0, 15.0],
            vec![5.0, 0.0, 6.0, 11.0],
            vec![10.0, 6.0, 0.0, 4.0],
            vec![15.0, 11.0, 4.0, 0.0],
        ]
    }

    #[test]
    fn generation_follows_the_rates() {
        let r = GenerationRates::default();
        assert_eq!(r.floors(Some(4.0), Some(30.0)), 4.0);
        assert_eq!(r.floors(None, Some(12.0)), 4.0);
        assert_eq!(r.floors(None, None), 2.0);
        let (p, a) = r.building(250.0, 4.0, "apartments");
        assert!((p - 1000.0 * 0.004).abs() < 1e-12 && a == 0.0);
        let (p, a) = r.building(300.0, 2.0, "office");
        assert!(p == 0.0 && (a - 600.0 / 30.0 * 0.12).abs() < 1e-12);
        let (p, a) = r.building(100.0, 2.0, "yes");
        assert!((p - 100.0 * 0.004).abs() < 1e-12 && (a - 100.0 / 30.0 * 0.12).abs() < 1e-12);
        assert_eq!(r.building(-1.0, 2.0, "house"), (0.0, 0.0));
        assert_eq!(r.poi("school"), 25.0);
        assert_eq!(r.poi("unknown"), 0.0);
    }

    #[test]
    #[allow(clippy::needless_range_loop)]
    fn furness_meets_both_margins() {
        let p = [100.0, 50.0, 0.0, 30.0];
        let a = [10.0, 40.0, 80.0, 50.0];
        let d = distribute(&p, &a, &costs(), 0.1, 1e-10, 1000);
        assert!(d.max_error <= 1e-10, "{d:?}");
        for i in 0..4 {
            let row: f64 = d.trips[i].iter().sum();
            assert!((row - p[i]).abs() <= 1e-8 * p[i].max(1.0), "row {i}: {row}");
            assert_eq!(d.trips[i][i], 0.0, "no intrazonal trips");
        }
        let total_a: f64 = a.iter().sum();
        for j in 0..4 {
            let col: f64 = (0..4).map(|i| d.trips[i][j]).sum();
            let want = a[j] * 180.0 / total_a;
            assert!(
                (col - want).abs() <= 1e-8 * want.max(1.0),
                "column {j}: {col} vs {want}"
            );
        }
        assert_eq!((d.unserved_productions, d.unserved_attractions), (0.0, 0.0));
    }

    #[test]
    fn indifference_to_cost_spreads_trips_by_attraction() {
        // with β = 0 and two zones, everything produced in one goes to the other
        let c = vec![vec![0.0, 3.0], vec![3.0, 0.0]];
        let d = distribute(&[10.0, 0.0], &[0.0, 10.0], &c, 0.0, 1e-12, 100);
        assert!((d.trips[0][1] - 10.0).abs() < 1e-9);
        assert!((d.mean_cost - 3.0).abs() < 1e-12);
    }

    #[test]
    fn calibration_hits_the_mean_trip_time() {
        let p = [100.0, 50.0, 20.0, 30.0];
        let a = [10.0, 40.0, 80.0, 50.0];
        let free = calibrate(&p, &a, &costs(), 1e9, 1e-10);
        assert_eq!(free.beta, 0.0);
        let d = calibrate(&p, &a, &costs(), 8.0, 1e-10);
        assert!((d.mean_cost - 8.0).abs() < 1e-6, "{d:?}");
        assert!(d.beta > 0.0);
        // a higher β means shorter trips
        let shorter = distribute(&p, &a, &costs(), d.beta * 2.0, 1e-10, 10_000);
        assert!(shorter.mean_cost < d.mean_cost);
        // a target below what the margins allow gives the closest balanced matrix, never NaN
        let tight = calibrate(&p, &a, &costs(), 1.0, 1e-10);
        assert!(
            tight.mean_cost.is_finite() && tight.max_error <= 1e-6,
            "{tight:?}"
        );
        assert!(tight.trips.iter().flatten().all(|t| t.is_finite()));
    }

    #[test]
    fn unreachable_trip_ends_are_reported_not_forced() {
        let inf = f64::INFINITY;
        let c = vec![
            vec![0.0, 5.0, inf],
            vec![5.0, 0.0, inf],
            vec![inf, inf, 0.0],
        ];
        let d = distribute(&[10.0, 10.0, 7.0], &[10.0, 10.0, 4.0], &c, 0.1, 1e-12, 100);
        assert_eq!(d.unserved_productions, 7.0);
        assert_eq!(d.unserved_attractions, 4.0);
        assert!(d.trips[2].iter().all(|&t| t == 0.0));
        assert!(d.trips.iter().all(|r| r[2] == 0.0));
        let total: f64 = d.trips.iter().flatten().sum();
        assert!((total - 20.0).abs() < 1e-9);
        assert!(d.trips.iter().flatten().all(|t| t.is_finite()));
    }
}
