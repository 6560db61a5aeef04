//! Static user-equilibrium traffic assignment with BPR link costs: Dial's Algorithm B (bush-based, exact to
//! machine precision) and bi-conjugate Frank–Wolfe (link-based, for comparison).
//!
//! # The problem
//!
//! A network of directed links `a` with flow-dependent generalised costs, and a matrix of trips `d_rs` from origin
//! zone `r` to destination zone `s`. Each link's cost is the BPR travel time plus fixed terms ([`bpr`]):
//!
//! ```text
//! c_a(x) = t0_a · (1 + B_a · (x / cap_a)^P_a) + toll_factor · toll_a + distance_factor · length_a
//! ```
//!
//! (the TNTP "generalised cost"; Chicago-Sketch's published solution uses toll factor 0.02 and distance factor
//! 0.04). User equilibrium (Wardrop's first principle): every used path between `r` and `s` costs the same, and no
//! unused path costs less. Because each `c_a` depends on its own link's flow only and does not decrease, the
//! equilibrium link flows are the unique minimiser (for strictly increasing costs) of Beckmann's convex objective
//! over the feasible flows (those that carry every trip from its origin to its destination):
//!
//! ```text
//! min  Z(x) = Σ_a ∫₀^{x_a} c_a(w) dw
//! ```
//!
//! # Convergence
//!
//! Progress is measured by the relative gap, computed at one set of link flows and costs:
//!
//! ```text
//! TSTT = Σ_a x_a · c_a(x_a)                (total system travel cost)
//! SPTT = Σ_rs d_rs · min_path_cost_rs      (every trip on a current shortest path)
//! relative gap = (TSTT − SPTT) / TSTT
//! ```
//!
//! It is zero exactly at equilibrium, never negative in exact arithmetic (rounding can give −1e-16, reported as
//! 0), and is what the TNTP solutions and the literature report. A solve stops when the gap reaches
//! [`Options::gap`], after [`Options::max_iter`] iterations or [`Options::max_seconds`], or when the progress
//! callback says so; [`Report`] tells which, with the iterations, gap, Beckmann objective and time, and the history
//! of every iteration (so a benchmark can read the time to 1e-4 and to 1e-6 from one run).
//!
//! # Algorithms
//!
//! - [`Algorithm::B`]: Dial's Algorithm B (Dial 2006), in the form of Boyles' notes. Each origin keeps a *bush*, an
//!   acyclic subnetwork rooted at it that carries all its trips, with its own link flows. An iteration (1) improves
//!   every bush — drop links without flow, add every link `(i, j)` with `U_i + c_ij < U_j` where `U` is the longest
//!   path cost within the bush, which keeps it acyclic — and measures the gap with exact shortest paths (the bush's
//!   own shortest-path labels, corrected by a label-correcting pass over the whole network), in parallel over
//!   origins because nothing shared is written; (2) equilibrates the bushes one origin after another: for each node
//!   in descending topological order, the longest used and the shortest path within the bush are traced back to
//!   where they diverge, and a Newton step `Δ = (C_long − C_short) / Σ c'_a` (bounded by the smallest origin flow on
//!   the long segment) moves flow from one to the other; the segment pairs shifted are replayed between the sweeps
//!   (paired alternative segments, as in Bar-Gera's TAPAS), which settles the moves that couple origins for a
//!   fraction of a sweep's cost. The improvement also adds the last links of shortest paths that leave a bush when
//!   that keeps it acyclic. No path is ever stored or enumerated, and the solution is as exact as floating point
//!   allows (relative gaps of 1e-12 and below). Flow shifts stay sequential: running them on several bushes at once
//!   moves flow by stale costs and overshoots (see `docs/models/traffic.md`).
//! - [`Algorithm::BiconjugateFrankWolfe`]: Mitradjieva & Lindberg (2013). Each iteration loads all trips onto the
//!   current shortest paths (all-or-nothing, in parallel over origins), combines that target with the two previous
//!   search directions so the new direction is conjugate to them with respect to the Hessian `diag(c'_a)`, and
//!   takes an exact line search on the Beckmann objective. Fast to 1e-4, slow beyond 1e-6: link-based methods are
//!   the classical baseline (AequilibraE's default), kept here to compare with.
//!
//! # Warm starts
//!
//! [`Options::warm_start`] takes the [`Solution`] of a previous solve (a baseline) and starts from it: its bushes
//! (Algorithm B) or link flows (Frank–Wolfe), matched to the new network by link ends. Origins whose trips changed
//! start afresh; every other origin keeps its bush, and where its flow used a link that is gone or closed, only the
//! flow of the paths through that link is rerouted ([`Report::repaired_origins`]). With Algorithm B, when the change
//! touches only some origins — those whose flow uses a link whose cost at the starting flows differs from the
//! baseline's, and those repaired or started afresh — these are improved and equilibrated before anything is
//! measured (every other origin following their moves once), then, in a second round, the origins that moved most;
//! the first measured gap (`history[0]`) comes after that step, and [`Report::iterations`] counts the iterations
//! after it (when the change touches every origin, as a closure whose rerouted trips spread over the network can,
//! that step would be a full iteration without its measurement, so the solve starts with a measured one). A
//! scenario (a capacity change, a closure) then re-solves in a fraction of the time of a cold start; the gap
//! reported is measured exactly, as always.
//!
//! # Bad input
//!
//! Invalid links (negative or non-finite parameters, zero capacity under a flow-dependent cost) are refused when the
//! [`Network`] is built; a link whose generalised cost is zero at zero flow (zero free-flow time, no toll or distance
//! weight) is refused by [`assign`], since zero-cost cycles defeat every path-based algorithm. Trips between zones
//! that no path joins (disconnected zones, a closure that cuts the network) are not an error: they are left out and
//! listed in [`Report::unserved`], and everything else is assigned. Results never hold NaN.
//!
//! # Why our own
//!
//! The peers are Python with compiled cores (AequilibraE's Frank–Wolfe family) or research C (Boyles' `tap-b`,
//! Bar-Gera's TAPAS). A city's twin re-solves on every scenario edit, so speed matters, and a scenario's delta is
//! only meaningful when both solutions are converged far beyond the difference they show, so exactness matters.
//! Both come from algorithms that converge to machine precision (bush-based), arrays laid out for the inner loops
//! (each bush stored in topological order with its links' flows in one contiguous block), and warm starts.
//!
//! # Sources
//!
//! - R. B. Dial (2006), "A path-based user-equilibrium traffic assignment algorithm that obviates path storage and
//!   enumeration", Transportation Research Part B 40(10), 917–936.
//! - H. Bar-Gera (2010), "Traffic assignment by paired alternative segments", Transportation Research Part B
//!   44(8–9), 1022–1046.
//! - S. D. Boyles, N. E. Lownes, A. Unnikrishnan, *Transportation Network Analysis*, vol. I, ch. 6 (bush-based
//!   algorithms, Algorithm B; relative gap), lecture notes, 2020–2025.
//! - M. Mitradjieva, P. O. Lindberg (2013), "The stiff is moving — conjugate direction Frank–Wolfe methods with
//!   applications to traffic assignment", Transportation Science 47(2), 280–293.
//! - M. Beckmann, C. B. McGuire, C. B. Winsten (1956), *Studies in the Economics of Transportation*.
//! - Bureau of Public Roads (1964), *Traffic Assignment Manual*.

use std::time::Instant;

use twin_graph::NodeIdx;

mod algorithm_b;
pub mod bpr;
mod demand;
mod frank_wolfe;
mod gap;
mod network;
pub(crate) mod shortest;
#[cfg(test)]
mod tests;

pub use demand::Demand;
pub use gap::relative_gap;
pub use network::{Link, Network};

use bpr::LinkCost;

/// Why an assignment could not run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AssignError {
    /// A link is unusable; `from` and `to` are node labels (see [`Network::with_node_labels`]).
    #[error("link {link} ({from} → {to}): {reason}")]
    InvalidLink {
        link: usize,
        from: u64,
        to: u64,
        reason: String,
    },
    #[error("network: {0}")]
    Network(String),
    #[error("demand: {0}")]
    Demand(String),
    #[error("options: {0}")]
    Options(String),
    /// Costs overflowed (flows many orders of magnitude above capacity with a high BPR power).
    #[error("the link costs overflowed: {0}")]
    Overflow(String),
}

/// The solution method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Algorithm {
    /// Dial's Algorithm B (bush-based; converges to machine precision).
    #[default]
    B,
    /// Bi-conjugate Frank–Wolfe (link-based; for comparison).
    BiconjugateFrankWolfe,
}

impl Algorithm {
    /// The short name used by the CLI: `b` or `bfw`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::B => "b",
            Algorithm::BiconjugateFrankWolfe => "bfw",
        }
    }
}

/// What the progress callback sees after each iteration's gap is measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IterationStats {
    /// Completed iterations (0 = the starting point: the initial all-or-nothing loading, or a warm start after its
    /// touched origins were re-equilibrated).
    pub iteration: usize,
    pub relative_gap: f64,
    /// The Beckmann objective.
    pub objective: f64,
    /// Seconds since the solve started.
    pub seconds: f64,
}

/// A progress callback: return `false` to stop the solve (it then returns the current solution).
pub type Progress<'a> = &'a (dyn Fn(&IterationStats) -> bool + Sync);

/// How to solve.
#[derive(Clone, Copy)]
pub struct Options<'a> {
    pub algorithm: Algorithm,
    /// Target relative gap (stop when reached). Default 1e-6.
    pub gap: f64,
    /// Most iterations (default 10,000).
    pub max_iter: usize,
    /// Most seconds (checked once per iteration).
    pub max_seconds: Option<f64>,
    /// Weight of the toll in the generalised cost.
    pub toll_factor: f64,
    /// Weight of the length in the generalised cost.
    pub distance_factor: f64,
    /// A previous solution to start from.
    pub warm_start: Option<&'a Solution>,
    /// Called after every iteration.
    pub progress: Option<Progress<'a>>,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            algorithm: Algorithm::B,
            gap: 1e-6,
            max_iter: 10_000,
            max_seconds: None,
            toll_factor: 0.0,
            distance_factor: 0.0,
            warm_start: None,
            progress: None,
        }
    }
}

impl std::fmt::Debug for Options<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("algorithm", &self.algorithm)
            .field("gap", &self.gap)
            .field("max_iter", &self.max_iter)
            .field("max_seconds", &self.max_seconds)
            .field("toll_factor", &self.toll_factor)
            .field("distance_factor", &self.distance_factor)
            .field("warm_start", &self.warm_start.is_some())
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// Why a solve stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The target gap was reached.
    Converged,
    MaxIterations,
    MaxSeconds,
    /// The progress callback asked to stop.
    Cancelled,
    /// No trip can be assigned (no demand, or none of it connected).
    NoDemand,
}

/// Trips between two zones that no path joins.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Unserved {
    pub origin: usize,
    pub destination: usize,
    pub trips: f64,
}

/// What a solve did.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub algorithm: Algorithm,
    pub iterations: usize,
    pub relative_gap: f64,
    /// The Beckmann objective `Σ_a ∫₀^{x_a} c_a`.
    pub objective: f64,
    /// Total system travel cost `Σ_a x_a c_a(x_a)`.
    pub tstt: f64,
    /// Shortest-path travel cost `Σ_rs d_rs · min cost_rs` at the same link costs.
    pub sptt: f64,
    pub seconds: f64,
    pub stop: Stop,
    /// Trips assigned (between connected zones).
    pub assigned: f64,
    /// Trips between zones no path joins, by pair (origin, destination ascending).
    pub unserved: Vec<Unserved>,
    /// Their sum.
    pub unserved_trips: f64,
    /// Intrazonal trips (not assigned).
    pub intrazonal_trips: f64,
    /// Origins that started from the warm start's state (0 for a cold start).
    pub warm_origins: usize,
    /// Of those, origins whose flow used a link that is now closed or gone: their bush was kept and only the trips
    /// on those paths were rerouted (Algorithm B).
    pub repaired_origins: usize,
    /// One entry per iteration, the starting point first.
    pub history: Vec<IterationStats>,
}

impl Report {
    pub fn converged(&self) -> bool {
        self.stop == Stop::Converged
    }
}

/// The result of a solve: link flows and costs, the report, and the state a later solve can warm-start from.
#[derive(Debug, Clone)]
pub struct Solution {
    /// Flow on every link (0 on closed links).
    pub flows: Vec<f64>,
    /// Generalised cost of every link at its flow (`+∞` on closed links).
    pub costs: Vec<f64>,
    pub report: Report,
    pub(crate) warm: WarmState,
}

/// What a warm start needs from a previous solve.
#[derive(Debug, Clone)]
pub(crate) struct WarmState {
    /// Tail and head of each link of the network solved, to match links by their ends.
    shape: Vec<(NodeIdx, NodeIdx)>,
    /// Trips per origin of that solve.
    demand: Demand,
    /// Algorithm B's bushes (empty after Frank–Wolfe).
    bushes: Vec<algorithm_b::Bush>,
}

/// Solves the user-equilibrium assignment of `demand` on `net`.
///
/// ```
/// use twin_sim::traffic::assign::{assign, Demand, Link, Network, Options};
/// // two parallel roads from zone 0 (node 0) to zone 1 (node 1)
/// let net = Network::from_links(2, 2, 0, vec![
///     Link::new(0, 1, 1000.0, 10.0),
///     Link::new(0, 1, 500.0, 12.0),
/// ]).unwrap();
/// let demand = Demand::from_triples(2, [(0, 1, 1500.0)]).unwrap();
/// let s = assign(&net, &demand, &Options { gap: 1e-12, ..Options::default() }).unwrap();
/// assert!(s.report.relative_gap <= 1e-12);
/// assert!((s.costs[0] - s.costs[1]).abs() < 1e-9); // both roads used, at the same cost
/// assert!((s.flows[0] + s.flows[1] - 1500.0).abs() < 1e-9);
/// ```
pub fn assign(
    net: &Network,
    demand: &Demand,
    options: &Options<'_>,
) -> Result<Solution, AssignError> {
    let started = Instant::now();
    check_options(options)?;
    if demand.zones() > net.zone_count() {
        return Err(AssignError::Demand(format!(
            "the matrix has {} zones but the network only {}",
            demand.zones(),
            net.zone_count()
        )));
    }
    let costs = bpr::link_costs(net, options.toll_factor, options.distance_factor);
    check_costs(net, &costs)?;
    let problem = Problem {
        net,
        demand,
        costs: &costs,
        options,
        started,
    };
    let mut solution = match options.algorithm {
        Algorithm::B => algorithm_b::solve(&problem)?,
        Algorithm::BiconjugateFrankWolfe => frank_wolfe::solve(&problem)?,
    };
    for (l, c) in solution.costs.iter_mut().enumerate() {
        if !net.is_open(l as u32) {
            *c = f64::INFINITY;
        }
    }
    if !(solution.report.objective.is_finite() && solution.report.tstt.is_finite()) {
        return Err(AssignError::Overflow(format!(
            "objective {} (flows far above capacity?)",
            solution.report.objective
        )));
    }
    solution.report.seconds = started.elapsed().as_secs_f64();
    Ok(solution)
}

/// Everything a solver needs, borrowed.
pub(crate) struct Problem<'a> {
    pub net: &'a Network,
    pub demand: &'a Demand,
    pub costs: &'a [LinkCost],
    pub options: &'a Options<'a>,
    pub started: Instant,
}

impl Problem<'_> {
    /// The origins with trips, as (origin zone, its destinations as (node, trips)).
    pub fn origins(&self) -> Vec<(usize, Vec<(u32, f64)>)> {
        (0..self.demand.zones())
            .filter(|o| !self.demand.row(*o).is_empty())
            .map(|o| {
                let dests = self
                    .demand
                    .row(o)
                    .iter()
                    .map(|&(d, v)| (self.net.zone_node(d as usize), v))
                    .collect();
                (o, dests)
            })
            .collect()
    }

    /// Seconds since the solve started.
    pub fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Records an iteration and decides whether to stop after it.
    pub fn checkpoint(
        &self,
        history: &mut Vec<IterationStats>,
        stats: IterationStats,
    ) -> Option<Stop> {
        history.push(stats);
        let o = self.options;
        if let Some(progress) = o.progress {
            if !progress(&stats) {
                return Some(Stop::Cancelled);
            }
        }
        if stats.relative_gap <= o.gap {
            return Some(Stop::Converged);
        }
        if stats.iteration >= o.max_iter {
            return Some(Stop::MaxIterations);
        }
        if o.max_seconds.is_some_and(|s| stats.seconds >= s) {
            return Some(Stop::MaxSeconds);
        }
        None
    }

    /// A report with the totals filled in from `flows` and the given shortest-path cost.
    pub fn report(
        &self,
        flows: &[f64],
        sptt: f64,
        iterations: usize,
        stop: Stop,
        unserved: Vec<Unserved>,
        history: Vec<IterationStats>,
    ) -> Report {
        let (tstt, objective) = gap::totals(self.costs, flows);
        let unserved_trips = unserved.iter().fold(0.0, |s, u| s + u.trips);
        Report {
            algorithm: self.options.algorithm,
            iterations,
            relative_gap: relative_gap(tstt, sptt),
            objective,
            tstt,
            sptt,
            seconds: self.elapsed(),
            stop,
            assigned: self.demand.total() - unserved_trips,
            unserved,
            unserved_trips,
            intrazonal_trips: self.demand.intrazonal(),
            warm_origins: 0,
            repaired_origins: 0,
            history,
        }
    }
}

fn check_options(o: &Options<'_>) -> Result<(), AssignError> {
    if !(o.gap.is_finite() && o.gap >= 0.0) {
        return Err(AssignError::Options(format!(
            "the target gap must be a non-negative number, not {}",
            o.gap
        )));
    }
    for (name, v) in [
        ("toll factor", o.toll_factor),
        ("distance factor", o.distance_factor),
    ] {
        if !v.is_finite() {
            return Err(AssignError::Options(format!(
                "the {name} must be a finite number, not {v}"
            )));
        }
    }
    if let Some(s) = o.max_seconds {
        if s.is_nan() || s < 0.0 {
            return Err(AssignError::Options(format!(
                "max seconds must be non-negative, not {s}"
            )));
        }
    }
    Ok(())
}

/// Every open link must cost something at zero flow: zero-cost links make zero-cost cycles possible.
fn check_costs(net: &Network, costs: &[LinkCost]) -> Result<(), AssignError> {
    for (i, (link, c)) in net.links().iter().zip(costs).enumerate() {
        if !net.is_open(i as u32) {
            continue;
        }
        if !(c.base.is_finite() && c.base > 0.0) {
            return Err(AssignError::InvalidLink {
                link: i,
                from: net.node_label(link.from),
                to: net.node_label(link.to),
                reason: format!(
                    "its generalised cost at zero flow is {} (free-flow time {}, toll {}, length {}): every link \
                     must cost more than zero, so give it a free-flow time or weigh toll or distance (TNTP's \
                     Chicago-Sketch needs toll factor 0.02 and distance factor 0.04)",
                    c.base, link.free_flow_time, link.toll, link.length
                ),
            });
        }
    }
    Ok(())
}
