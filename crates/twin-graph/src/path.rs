//! Shortest paths over a mode's subgraph with caller-supplied per-link costs: Dijkstra one-to-one, one-to-all and
//! multi-source (bounded or not), and A* with an admissible great-circle heuristic; results are link index lists.
//!
//! Costs are a slice indexed by link (`network.free_flow_s()` for free-flow times, or congested times from traffic
//! assignment); `f64::INFINITY` closes a link, and negative or NaN costs are an error. A [`SearchWorkspace`] keeps
//! its arrays between searches and is reset in O(1) by a generation stamp, so repeated searches do not reallocate.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::snap::EARTH_RADIUS_M;
use crate::{GraphError, LinkIdx, Network, NetworkView, NodeIdx};

const NONE: u32 = u32::MAX;

/// A route: the links from `from` to `to` in order, and their total cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    pub from: NodeIdx,
    pub to: NodeIdx,
    pub links: Vec<LinkIdx>,
    pub cost: f64,
}

impl Path {
    /// The nodes visited, `from` first and `to` last.
    pub fn nodes(&self, net: &Network) -> Vec<NodeIdx> {
        let mut nodes = Vec::with_capacity(self.links.len() + 1);
        nodes.push(self.from);
        nodes.extend(self.links.iter().map(|l| net.link_to()[*l as usize]));
        nodes
    }
}

/// Reusable search state: costs, predecessor links and origins per node, valid for the last search only.
#[derive(Debug, Default)]
pub struct SearchWorkspace {
    dist: Vec<f64>,
    pred: Vec<LinkIdx>,
    origin: Vec<NodeIdx>,
    stamp: Vec<u32>,
    generation: u32,
    heap: BinaryHeap<Entry>,
    settled: Vec<NodeIdx>,
}

impl SearchWorkspace {
    pub fn new() -> SearchWorkspace {
        SearchWorkspace::default()
    }

    /// Prepares for a search on `n` nodes without clearing the arrays.
    fn start(&mut self, n: usize) {
        if self.stamp.len() != n {
            self.dist = vec![f64::INFINITY; n];
            self.pred = vec![NONE; n];
            self.origin = vec![NONE; n];
            self.stamp = vec![0; n];
            self.generation = 0;
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.stamp.fill(0);
            self.generation = 1;
        }
        self.heap.clear();
        self.settled.clear();
    }

    fn reached(&self, node: NodeIdx) -> bool {
        self.stamp.get(node as usize) == Some(&self.generation) && self.generation != 0
    }

    /// Cost of the best path found to `node` by the last search (for one-to-one and A*, final only for the target
    /// and the nodes settled before it).
    pub fn cost(&self, node: NodeIdx) -> Option<f64> {
        self.reached(node).then(|| self.dist[node as usize])
    }

    /// The last link of the best path to `node` (`None` for a source or an unreached node).
    pub fn pred_link(&self, node: NodeIdx) -> Option<LinkIdx> {
        self.reached(node)
            .then(|| self.pred[node as usize])
            .filter(|l| *l != NONE)
    }

    /// The source the best path to `node` starts from (multi-source searches).
    pub fn source_of(&self, node: NodeIdx) -> Option<NodeIdx> {
        self.reached(node).then(|| self.origin[node as usize])
    }

    /// The nodes settled by the last search, in order of increasing cost (Dijkstra).
    pub fn settled(&self) -> &[NodeIdx] {
        &self.settled
    }

    /// The best path found to `node` by the last search on `net`.
    pub fn path_to(&self, net: &Network, node: NodeIdx) -> Option<Path> {
        let cost = self.cost(node)?;
        let mut links = Vec::new();
        let mut at = node;
        while let Some(l) = self.pred_link(at) {
            links.push(l);
            at = net.link_from()[l as usize];
            if links.len() > self.dist.len() {
                return None; // a cycle: cannot happen with non-negative costs, but never loop forever
            }
        }
        links.reverse();
        Some(Path {
            from: at,
            to: node,
            links,
            cost,
        })
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    key: f64,
    cost: f64,
    node: NodeIdx,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    /// Reversed, so that `BinaryHeap` (a max-heap) pops the smallest key; ties by node for determinism.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .key
            .total_cmp(&self.key)
            .then_with(|| other.node.cmp(&self.node))
    }
}

/// The A* lower bound: `cost_per_m` × great-circle distance to the target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AStarHeuristic {
    cost_per_m: f64,
}

impl AStarHeuristic {
    /// No estimate: A* becomes Dijkstra.
    pub fn zero() -> AStarHeuristic {
        AStarHeuristic { cost_per_m: 0.0 }
    }

    /// The tightest bound valid for these costs: the smallest cost per metre of straight-line distance between a
    /// link's end nodes over the view's links. Since every link costs at least that rate times the distance it
    /// spans, and great-circle distance obeys the triangle inequality, the estimate is admissible and consistent
    /// whatever the link lengths or congestion say.
    pub fn from_costs(view: &NetworkView<'_>, costs: &[f64]) -> Result<AStarHeuristic, GraphError> {
        let net = view.network();
        check_costs_len(net, costs)?;
        let mut rate = f64::INFINITY;
        for l in view.links() {
            let cost = costs[l as usize];
            if cost.is_nan() || cost < 0.0 {
                return Err(GraphError::InvalidCost { link: l, cost });
            }
            let span = haversine_m(
                net.node_coord(net.link_from()[l as usize]),
                net.node_coord(net.link_to()[l as usize]),
            );
            if span > 0.0 {
                rate = rate.min(cost / span);
            }
        }
        // A hair below the bound so that rounding can never make the estimate exceed a true cost.
        Ok(AStarHeuristic {
            cost_per_m: if rate.is_finite() {
                rate * (1.0 - 1e-9)
            } else {
                0.0
            },
        })
    }

    /// For costs in seconds when no link is faster than `max_speed_mps` over the straight-line distance it spans;
    /// admissibility is then the caller's promise ([`AStarHeuristic::from_costs`] checks it instead).
    pub fn from_max_speed(max_speed_mps: f64) -> AStarHeuristic {
        let ok = max_speed_mps.is_finite() && max_speed_mps > 0.0;
        AStarHeuristic {
            cost_per_m: if ok { 1.0 / max_speed_mps } else { 0.0 },
        }
    }

    pub fn cost_per_m(&self) -> f64 {
        self.cost_per_m
    }
}

/// Great-circle distance in metres between two (lon, lat) points.
pub fn haversine_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (lat1, lat2) = (a.1.to_radians(), b.1.to_radians());
    let dlat = lat2 - lat1;
    let dlon = (b.0 - a.0).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

fn check_costs_len(net: &Network, costs: &[f64]) -> Result<(), GraphError> {
    if costs.len() == net.link_count() {
        Ok(())
    } else {
        Err(GraphError::CostLength {
            expected: net.link_count(),
            found: costs.len(),
        })
    }
}

struct Search<'s> {
    sources: &'s [(NodeIdx, f64)],
    target: Option<NodeIdx>,
    max_cost: f64,
    heuristic: AStarHeuristic,
}

impl NetworkView<'_> {
    /// Dijkstra from `from` to `to`; `None` when `to` cannot be reached. Allocates a workspace: prefer
    /// [`NetworkView::shortest_path_with`] in loops.
    pub fn shortest_path(
        &self,
        costs: &[f64],
        from: NodeIdx,
        to: NodeIdx,
    ) -> Result<Option<Path>, GraphError> {
        self.shortest_path_with(&mut SearchWorkspace::new(), costs, from, to)
    }

    /// Dijkstra from `from` to `to`, stopping when `to` is settled.
    pub fn shortest_path_with(
        &self,
        ws: &mut SearchWorkspace,
        costs: &[f64],
        from: NodeIdx,
        to: NodeIdx,
    ) -> Result<Option<Path>, GraphError> {
        self.network().check_node(to)?;
        let search = Search {
            sources: &[(from, 0.0)],
            target: Some(to),
            max_cost: f64::INFINITY,
            heuristic: AStarHeuristic::zero(),
        };
        self.run(ws, costs, &search)?;
        Ok(ws.path_to(self.network(), to))
    }

    /// A* from `from` to `to` with `heuristic` (see [`AStarHeuristic::from_costs`] for one that is always admissible).
    pub fn astar(
        &self,
        ws: &mut SearchWorkspace,
        costs: &[f64],
        heuristic: AStarHeuristic,
        from: NodeIdx,
        to: NodeIdx,
    ) -> Result<Option<Path>, GraphError> {
        self.network().check_node(to)?;
        let search = Search {
            sources: &[(from, 0.0)],
            target: Some(to),
            max_cost: f64::INFINITY,
            heuristic,
        };
        self.run(ws, costs, &search)?;
        Ok(ws.path_to(self.network(), to))
    }

    /// Dijkstra from `from` to every reachable node; read the results from `ws`.
    pub fn one_to_all(
        &self,
        ws: &mut SearchWorkspace,
        costs: &[f64],
        from: NodeIdx,
    ) -> Result<(), GraphError> {
        self.multi_source(ws, costs, &[(from, 0.0)], f64::INFINITY)
    }

    /// Dijkstra from `from` to every node within `max_cost` (an isochrone).
    pub fn one_to_all_within(
        &self,
        ws: &mut SearchWorkspace,
        costs: &[f64],
        from: NodeIdx,
        max_cost: f64,
    ) -> Result<(), GraphError> {
        self.multi_source(ws, costs, &[(from, 0.0)], max_cost)
    }

    /// Dijkstra from several sources at once, each with a starting cost (e.g. the walk from a snapped point to the
    /// node), to every node within `max_cost`; `ws.source_of(node)` tells the nearest source.
    pub fn multi_source(
        &self,
        ws: &mut SearchWorkspace,
        costs: &[f64],
        sources: &[(NodeIdx, f64)],
        max_cost: f64,
    ) -> Result<(), GraphError> {
        self.run(
            ws,
            costs,
            &Search {
                sources,
                target: None,
                max_cost,
                heuristic: AStarHeuristic::zero(),
            },
        )
    }

    fn run(
        &self,
        ws: &mut SearchWorkspace,
        costs: &[f64],
        search: &Search<'_>,
    ) -> Result<(), GraphError> {
        let net = self.network();
        check_costs_len(net, costs)?;
        ws.start(net.node_count());
        let target_coord = search.target.map(|t| net.node_coord(t));
        let estimate = |node: NodeIdx| match target_coord {
            Some(t) if search.heuristic.cost_per_m > 0.0 => {
                search.heuristic.cost_per_m * haversine_m(net.node_coord(node), t)
            }
            _ => 0.0,
        };
        for &(node, start) in search.sources {
            net.check_node(node)?;
            if !(start.is_finite() && start >= 0.0) {
                return Err(GraphError::InvalidCost {
                    link: NONE,
                    cost: start,
                });
            }
            if start > search.max_cost || (ws.reached(node) && ws.dist[node as usize] <= start) {
                continue;
            }
            let n = node as usize;
            ws.stamp[n] = ws.generation;
            ws.dist[n] = start;
            ws.pred[n] = NONE;
            ws.origin[n] = node;
            ws.heap.push(Entry {
                key: start + estimate(node),
                cost: start,
                node,
            });
        }
        let to = net.link_to();
        while let Some(Entry { cost, node, .. }) = ws.heap.pop() {
            if cost > ws.dist[node as usize] {
                continue; // stale entry
            }
            ws.settled.push(node);
            if Some(node) == search.target {
                break;
            }
            let origin = ws.origin[node as usize];
            for &l in net.out_links(node) {
                if !self.allows(l) {
                    continue;
                }
                let c = costs[l as usize];
                if c.is_nan() || c < 0.0 {
                    return Err(GraphError::InvalidCost { link: l, cost: c });
                }
                let next = cost + c;
                if next > search.max_cost || next == f64::INFINITY {
                    continue;
                }
                let w = to[l as usize];
                let wi = w as usize;
                if ws.stamp[wi] != ws.generation || next < ws.dist[wi] {
                    ws.stamp[wi] = ws.generation;
                    ws.dist[wi] = next;
                    ws.pred[wi] = l;
                    ws.origin[wi] = origin;
                    ws.heap.push(Entry {
                        key: next + estimate(w),
                        cost: next,
                        node: w,
                    });
                }
            }
        }
        Ok(())
    }
}
