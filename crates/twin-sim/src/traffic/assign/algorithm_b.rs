//! Dial's Algorithm B (Dial 2006; Boyles' notes): one acyclic bush per origin, equilibrated by Newton flow shifts
//! between the longest used and the shortest path segments within it.
//!
//! Layout: a bush stores its nodes in topological order and, per node, the bush links entering it as "slots" in one
//! contiguous block (`link`, the tail's topological `position`, the origin's `flow`), so the label sweeps read
//! memory in order and index labels by position.

use std::collections::{HashMap, VecDeque};

use rayon::prelude::*;

use super::bpr::LinkCost;
use super::shortest::{Tree, NONE};
use super::{AssignError, Demand};
use super::{IterationStats, Network, Problem, Solution, Stop, Unserved, WarmState};

/// One origin's bush: an acyclic subnetwork rooted at the origin's node that carries all its trips.
#[derive(Debug, Clone)]
pub(crate) struct Bush {
    origin: usize,
    /// Topological order: `order[0]` is the root.
    order: Vec<u32>,
    /// Slots of the links entering the node at position `p`: `start[p]..start[p + 1]`.
    start: Vec<u32>,
    link: Vec<u32>,
    /// Topological position of each slot's tail.
    tail: Vec<u32>,
    /// The origin's flow on each slot's link.
    flow: Vec<f64>,
    /// Served destinations: (node, trips).
    dests: Vec<(u32, f64)>,
}

impl Bush {
    fn root(&self) -> u32 {
        self.order[0]
    }

    /// Adds the bush's flows to the link flows.
    fn add_flows(&self, x: &mut [f64]) {
        for (l, f) in self.link.iter().zip(&self.flow) {
            x[*l as usize] += f;
        }
    }

    /// A bush from edges `(tail node, head node, link, flow)`: the edges the root reaches, in topological order
    /// by Kahn's algorithm. `None` when they hold a cycle, when flow sits on an edge the root does not reach, or
    /// when a destination is not reached.
    fn from_edges(
        origin: usize,
        root: u32,
        edges: &[(u32, u32, u32, f64)],
        dests: Vec<(u32, f64)>,
    ) -> Option<Bush> {
        let mut ids: HashMap<u32, u32> = HashMap::new();
        let mut node_of = vec![root];
        ids.insert(root, 0);
        let mut tmp = |n: u32, node_of: &mut Vec<u32>| {
            *ids.entry(n).or_insert_with(|| {
                node_of.push(n);
                node_of.len() as u32 - 1
            })
        };
        let all: Vec<Edge> = edges
            .iter()
            .map(|&(t, h, link, flow)| Edge {
                tail: tmp(t, &mut node_of),
                head: tmp(h, &mut node_of),
                link,
                flow,
            })
            .collect();
        // what the root reaches
        let n = node_of.len();
        let mut out: Vec<Vec<u32>> = vec![Vec::new(); n];
        for e in &all {
            out[e.tail as usize].push(e.head);
        }
        let mut reach = vec![false; n];
        reach[0] = true;
        let mut stack = vec![0u32];
        while let Some(t) = stack.pop() {
            for &h in &out[t as usize] {
                if !std::mem::replace(&mut reach[h as usize], true) {
                    stack.push(h);
                }
            }
        }
        if all.iter().any(|e| !reach[e.tail as usize] && e.flow > 0.0) {
            return None;
        }
        let kept: Vec<Edge> = all.into_iter().filter(|e| reach[e.tail as usize]).collect();
        let mut kahn = Kahn::default();
        let (count, pos) = kahn.order(n, &kept);
        if count != reach.iter().filter(|r| **r).count() {
            return None; // a cycle
        }
        let mut bush = Bush {
            origin,
            order: Vec::new(),
            start: Vec::new(),
            link: Vec::new(),
            tail: Vec::new(),
            flow: Vec::new(),
            dests,
        };
        bush.fill(&node_of, pos, count, &kept);
        if bush.dests.iter().any(|(d, _)| !bush.order.contains(d)) {
            return None;
        }
        Some(bush)
    }

    /// Rewrites the bush from edges over temporary node ids, given each id's new position (`NONE` for none).
    fn fill(&mut self, node_of: &[u32], pos: &[u32], count: usize, edges: &[Edge]) {
        self.order.clear();
        self.order.resize(count, NONE);
        for (t, &p) in pos.iter().enumerate().take(node_of.len()) {
            if p != NONE {
                self.order[p as usize] = node_of[t];
            }
        }
        self.start.clear();
        self.start.resize(count + 1, 0);
        for e in edges {
            self.start[pos[e.head as usize] as usize + 1] += 1;
        }
        for p in 0..count {
            self.start[p + 1] += self.start[p];
        }
        let slots = edges.len();
        self.link.resize(slots, 0);
        self.tail.resize(slots, 0);
        self.flow.resize(slots, 0.0);
        let mut next: Vec<u32> = self.start[..count].to_vec();
        for e in edges {
            let h = pos[e.head as usize] as usize;
            let s = next[h] as usize;
            next[h] += 1;
            self.link[s] = e.link;
            self.tail[s] = pos[e.tail as usize];
            self.flow[s] = e.flow;
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Edge {
    tail: u32,
    head: u32,
    link: u32,
    flow: f64,
}

/// Kahn's topological sort over temporary ids `0..n` from id 0.
#[derive(Debug, Default)]
struct Kahn {
    indeg: Vec<u32>,
    out_start: Vec<u32>,
    out: Vec<u32>,
    queue: Vec<u32>,
    pos: Vec<u32>,
}

impl Kahn {
    /// (number of ids ordered, position of each id or `NONE`).
    fn order(&mut self, n: usize, edges: &[Edge]) -> (usize, &[u32]) {
        self.indeg.clear();
        self.indeg.resize(n, 0);
        self.out_start.clear();
        self.out_start.resize(n + 1, 0);
        for e in edges {
            self.indeg[e.head as usize] += 1;
            self.out_start[e.tail as usize + 1] += 1;
        }
        for i in 0..n {
            self.out_start[i + 1] += self.out_start[i];
        }
        self.out.resize(edges.len(), 0);
        let mut next: Vec<u32> = self.out_start[..n].to_vec();
        for (i, e) in edges.iter().enumerate() {
            let t = e.tail as usize;
            self.out[next[t] as usize] = i as u32;
            next[t] += 1;
        }
        self.pos.clear();
        self.pos.resize(n, NONE);
        self.queue.clear();
        if n > 0 && self.indeg[0] == 0 {
            self.queue.push(0);
        }
        let mut head = 0;
        while head < self.queue.len() {
            let t = self.queue[head];
            self.pos[t as usize] = head as u32;
            head += 1;
            for i in self.out_start[t as usize]..self.out_start[t as usize + 1] {
                let h = edges[self.out[i as usize] as usize].head as usize;
                self.indeg[h] -= 1;
                if self.indeg[h] == 0 {
                    self.queue.push(h as u32);
                }
            }
        }
        (self.queue.len(), &self.pos)
    }
}

/// Per-thread arrays for improving bushes and measuring shortest paths.
struct Improver {
    /// Node → temporary id (the old position, new nodes after), `NONE` outside the bush.
    id: Vec<u32>,
    node_of: Vec<u32>,
    lmin: Vec<f64>,
    umax: Vec<f64>,
    /// Whether flow reaches the node at each position.
    used: Vec<bool>,
    dist: Vec<f64>,
    touched: Vec<u32>,
    in_queue: Vec<bool>,
    queue: VecDeque<u32>,
    mark: Vec<u32>,
    stamp: u32,
    edges: Vec<Edge>,
    kahn: Kahn,
}

impl Improver {
    fn new(nodes: usize, links: usize) -> Improver {
        Improver {
            id: vec![NONE; nodes],
            node_of: Vec::new(),
            lmin: Vec::new(),
            umax: Vec::new(),
            used: Vec::new(),
            dist: vec![f64::INFINITY; nodes],
            touched: Vec::new(),
            in_queue: vec![false; nodes],
            queue: VecDeque::new(),
            mark: vec![0; links],
            stamp: 0,
            edges: Vec::new(),
            kahn: Kahn::default(),
        }
    }

    /// Improves `bush` (drops links without flow, adds shortcuts by the longest-path criterion, re-sorts) and
    /// returns the origin's trips × exact shortest-path costs at costs `cost`.
    fn improve(&mut self, bush: &mut Bush, net: &Network, cost: &[f64], add: bool) -> f64 {
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            self.mark.fill(0);
            self.stamp = 1;
        }
        let stamp = self.stamp;
        let k = bush.order.len();
        let root = bush.root();
        self.node_of.clear();
        self.node_of.extend_from_slice(&bush.order);
        for (p, &n) in bush.order.iter().enumerate() {
            self.id[n as usize] = p as u32;
        }
        self.lmin.clear();
        self.lmin.resize(k, 0.0);
        self.umax.clear();
        self.umax.resize(k, 0.0);
        self.used.clear();
        self.used.resize(k, false);
        self.used[0] = true;
        self.edges.clear();
        // forward sweep: shortest-path labels over all bush links; keep links with flow and each node's
        // shortest-path link; longest-path labels over the kept links
        for p in 1..k {
            let (s0, s1) = (bush.start[p] as usize, bush.start[p + 1] as usize);
            let mut best = f64::INFINITY;
            let mut best_slot = NONE as usize;
            for s in s0..s1 {
                let v = self.lmin[bush.tail[s] as usize] + cost[bush.link[s] as usize];
                if v < best {
                    best = v;
                    best_slot = s;
                }
            }
            self.lmin[p] = best;
            let mut worst = f64::NEG_INFINITY;
            let mut inflow = false;
            for s in s0..s1 {
                // flow out of a node nothing flows into is rounding debris
                if bush.flow[s] > 0.0 && !self.used[bush.tail[s] as usize] {
                    bush.flow[s] = 0.0;
                }
                inflow |= bush.flow[s] > 0.0;
                if bush.flow[s] > 0.0 || s == best_slot {
                    let l = bush.link[s];
                    let t = bush.tail[s];
                    self.mark[l as usize] = stamp;
                    self.edges.push(Edge {
                        tail: t,
                        head: p as u32,
                        link: l,
                        flow: bush.flow[s],
                    });
                    worst = worst.max(self.umax[t as usize] + cost[l as usize]);
                }
            }
            self.umax[p] = worst;
            self.used[p] = inflow;
        }
        let kept = self.edges.len();

        // exact shortest paths: the bush labels are lengths of real paths, so a label-correcting pass from them
        // over the whole network ends at the true shortest-path costs
        for p in 0..k {
            let n = bush.order[p];
            self.dist[n as usize] = self.lmin[p];
            self.in_queue[n as usize] = true;
            self.queue.push_back(n);
        }
        let links = net.links();
        while let Some(i) = self.queue.pop_front() {
            self.in_queue[i as usize] = false;
            if i != root && !net.passable(i) {
                continue;
            }
            let di = self.dist[i as usize];
            for &l in net.out_links(i) {
                let j = links[l as usize].to as usize;
                let v = di + cost[l as usize];
                if v < self.dist[j] {
                    if self.dist[j] == f64::INFINITY {
                        self.touched.push(j as u32);
                    }
                    self.dist[j] = v;
                    if !self.in_queue[j] {
                        self.in_queue[j] = true;
                        self.queue.push_back(j as u32);
                    }
                }
            }
        }
        let sptt: f64 = bush
            .dests
            .iter()
            .map(|&(d, v)| v * self.dist[d as usize])
            .sum();
        for &n in &bush.order {
            self.dist[n as usize] = f64::INFINITY;
        }
        for &n in &self.touched {
            self.dist[n as usize] = f64::INFINITY;
        }
        self.touched.clear();

        // shortcuts: (i, j) with U_i + c_ij < U_j, and links into nodes the bush does not reach yet
        if add {
            for p in 0..k {
                let i = bush.order[p];
                if i != root && !net.passable(i) {
                    continue;
                }
                let ui = self.umax[p];
                for &l in net.out_links(i) {
                    if self.mark[l as usize] == stamp {
                        continue;
                    }
                    let j = links[l as usize].to;
                    let mut t = self.id[j as usize];
                    if t == NONE {
                        t = self.node_of.len() as u32;
                        self.id[j as usize] = t;
                        self.node_of.push(j);
                        self.umax.push(f64::INFINITY);
                    } else if ui + cost[l as usize] >= self.umax[t as usize] {
                        continue;
                    }
                    self.mark[l as usize] = stamp;
                    self.edges.push(Edge {
                        tail: p as u32,
                        head: t,
                        link: l,
                        flow: 0.0,
                    });
                }
            }
        }
        for &n in &self.node_of {
            self.id[n as usize] = NONE;
        }
        if self.edges.len() > kept || kept < bush.link.len() {
            let n = self.node_of.len();
            let (count, pos) = self.kahn.order(n, &self.edges);
            if count == n {
                bush.fill(&self.node_of, pos, count, &self.edges);
            } else {
                // rounding made a cycle of near-equal labels: keep the old order and only drop links
                let pos: Vec<u32> = (0..k as u32).collect();
                bush.fill(&self.node_of, &pos, k, &self.edges[..kept]);
            }
        }
        sptt
    }
}

/// Link flows, costs and cost derivatives, updated as flow moves.
struct Loads<'a> {
    model: &'a [LinkCost],
    x: Vec<f64>,
    c: Vec<f64>,
    d: Vec<f64>,
}

impl Loads<'_> {
    /// Recomputes the link flows from the bushes (no drift from incremental updates) and the costs from them.
    fn recompute(&mut self, bushes: &[Bush]) {
        self.x.fill(0.0);
        for b in bushes {
            b.add_flows(&mut self.x);
        }
        for (l, m) in self.model.iter().enumerate() {
            let (c, d) = m.cost_and_derivative(self.x[l]);
            self.c[l] = c;
            self.d[l] = d;
        }
    }

    #[inline]
    fn add(&mut self, l: usize, delta: f64) {
        let x = (self.x[l] + delta).max(0.0);
        self.x[l] = x;
        let (c, d) = self.model[l].cost_and_derivative(x);
        self.c[l] = c;
        self.d[l] = d;
    }
}

/// Per-thread arrays for the flow shifts.
#[derive(Default)]
struct Shifter {
    lmin: Vec<f64>,
    umax: Vec<f64>,
    minp: Vec<u32>,
    maxp: Vec<u32>,
    seg_max: Vec<u32>,
    seg_min: Vec<u32>,
}

impl Shifter {
    /// One pass over `bush`: labels, then a Newton shift at every node whose longest used path costs more than
    /// `theta` (relative) above its shortest path. Returns the largest relative excess seen.
    fn pass(&mut self, bush: &mut Bush, loads: &mut Loads<'_>, theta: f64) -> f64 {
        let k = bush.order.len();
        self.lmin.clear();
        self.lmin.resize(k, 0.0);
        self.umax.clear();
        self.umax.resize(k, 0.0);
        self.minp.clear();
        self.minp.resize(k, NONE);
        self.maxp.clear();
        self.maxp.resize(k, NONE);
        for p in 1..k {
            let (s0, s1) = (bush.start[p] as usize, bush.start[p + 1] as usize);
            let mut best = f64::INFINITY;
            let mut best_slot = NONE;
            let mut worst = f64::NEG_INFINITY;
            let mut worst_slot = NONE;
            for s in s0..s1 {
                let c = loads.c[bush.link[s] as usize];
                let t = bush.tail[s] as usize;
                let v = self.lmin[t] + c;
                if v < best {
                    best = v;
                    best_slot = s as u32;
                }
                if bush.flow[s] > 0.0 {
                    let w = self.umax[t] + c;
                    if w > worst {
                        worst = w;
                        worst_slot = s as u32;
                    }
                }
            }
            self.lmin[p] = best;
            self.umax[p] = worst;
            self.minp[p] = best_slot;
            self.maxp[p] = worst_slot;
        }
        let mut max_excess = 0.0f64;
        for p in (1..k).rev() {
            let ws = self.maxp[p];
            if ws == NONE || ws == self.minp[p] {
                continue;
            }
            let excess = self.umax[p] - self.lmin[p];
            if excess <= theta * self.lmin[p] {
                continue;
            }
            max_excess = max_excess.max(excess / self.lmin[p]);
            self.shift(bush, loads, p);
        }
        max_excess
    }

    /// Moves flow at node position `p` from the longest used to the shortest path segment, back to where they
    /// diverge.
    fn shift(&mut self, bush: &mut Bush, loads: &mut Loads<'_>, p: usize) {
        self.seg_max.clear();
        self.seg_min.clear();
        let ws = self.maxp[p];
        let bs = self.minp[p];
        self.seg_max.push(ws);
        self.seg_min.push(bs);
        let mut a = bush.tail[ws as usize];
        let mut b = bush.tail[bs as usize];
        while a != b {
            if a > b {
                let s = self.maxp[a as usize];
                if s == NONE {
                    return; // flow rounded away upstream: nothing to move
                }
                self.seg_max.push(s);
                a = bush.tail[s as usize];
            } else {
                let s = self.minp[b as usize];
                self.seg_min.push(s);
                b = bush.tail[s as usize];
            }
        }
        let (mut cmax, mut dmax, mut fmin) = (0.0, 0.0, f64::INFINITY);
        for &s in &self.seg_max {
            let l = bush.link[s as usize] as usize;
            cmax += loads.c[l];
            dmax += loads.d[l];
            fmin = fmin.min(bush.flow[s as usize]);
        }
        let (mut cmin, mut dmin) = (0.0, 0.0);
        for &s in &self.seg_min {
            let l = bush.link[s as usize] as usize;
            cmin += loads.c[l];
            dmin += loads.d[l];
        }
        let diff = cmax - cmin;
        if !(diff > 0.0 && fmin > 0.0) {
            return;
        }
        let slope = dmax + dmin;
        let delta = if slope == 0.0 {
            fmin
        } else if slope.is_finite() {
            (diff / slope).min(fmin)
        } else {
            self.bisect(bush, loads, fmin)
        };
        if delta.is_nan() || delta <= 0.0 {
            return;
        }
        // when the whole bottleneck flow moves, links that carried (up to rounding) the same flow empty too:
        // leftovers of 1e-14 would keep links whose tails carry nothing
        let snap = if delta == fmin { 1e-12 } else { 0.0 };
        for &s in &self.seg_max {
            let s = s as usize;
            let f = bush.flow[s];
            let left = f - delta;
            let (left, moved) = if left > snap * f {
                (left, delta)
            } else {
                (0.0, f)
            };
            bush.flow[s] = left;
            loads.add(bush.link[s] as usize, -moved);
        }
        for &s in &self.seg_min {
            let s = s as usize;
            bush.flow[s] += delta;
            loads.add(bush.link[s] as usize, delta);
        }
    }

    /// The shift that equalises the two segments when a derivative is infinite (powers below 1 at zero flow):
    /// bisection on the cost difference over `[0, fmin]`.
    fn bisect(&self, bush: &Bush, loads: &Loads<'_>, fmin: f64) -> f64 {
        let diff = |delta: f64| -> f64 {
            let long: f64 = self
                .seg_max
                .iter()
                .map(|&s| {
                    let l = bush.link[s as usize] as usize;
                    loads.model[l].cost((loads.x[l] - delta).max(0.0))
                })
                .sum();
            let short: f64 = self
                .seg_min
                .iter()
                .map(|&s| {
                    let l = bush.link[s as usize] as usize;
                    loads.model[l].cost(loads.x[l] + delta)
                })
                .sum();
            long - short
        };
        if diff(fmin) >= 0.0 {
            return fmin;
        }
        let (mut lo, mut hi) = (0.0, fmin);
        for _ in 0..60 {
            let mid = 0.5 * (lo + hi);
            if diff(mid) > 0.0 {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        lo
    }
}

/// The initial bush of an origin: its shortest-path tree at costs `cost`, loaded all-or-nothing. Returns the bush
/// and the trips no path reaches.
fn initial_bush(
    tree: &mut Tree,
    net: &Network,
    cost: &[f64],
    origin: usize,
    row: &[(u32, f64)],
) -> (Bush, Vec<Unserved>) {
    let root = net.zone_node(origin);
    tree.search(net, cost, root);
    let mut unserved = Vec::new();
    let mut dests = Vec::with_capacity(row.len());
    for &(d, v) in row {
        let node = net.zone_node(d as usize);
        if tree.reached(node) {
            dests.push((node, v));
        } else {
            unserved.push(Unserved {
                origin,
                destination: d as usize,
                trips: v,
            });
        }
    }
    let order = tree.settled.clone();
    let k = order.len();
    // positions of the settled nodes
    let mut pos: HashMap<u32, u32> = HashMap::with_capacity(k);
    for (p, &n) in order.iter().enumerate() {
        pos.insert(n, p as u32);
    }
    let mut node_load = vec![0.0; k];
    for &(d, v) in &dests {
        node_load[pos[&d] as usize] += v;
    }
    let links = net.links();
    let mut start = Vec::with_capacity(k + 1);
    let mut link = Vec::with_capacity(k.saturating_sub(1));
    let mut tail = Vec::with_capacity(k.saturating_sub(1));
    start.push(0u32);
    start.push(0u32);
    for &n in &order[1..] {
        let l = tree.pred[n as usize];
        link.push(l);
        tail.push(pos[&links[l as usize].from]);
        start.push(link.len() as u32);
    }
    let mut flow = vec![0.0; link.len()];
    for p in (1..k).rev() {
        let v = node_load[p];
        if v != 0.0 {
            flow[p - 1] = v; // node at position p has the single slot p - 1
            node_load[tail[p - 1] as usize] += v;
        }
    }
    let bush = Bush {
        origin,
        order,
        start,
        link,
        tail,
        flow,
        dests,
    };
    (bush, unserved)
}

/// Between two bush improvements, every bush gets `PASSES_PER_BUSH` passes of flow shifts per sweep, and the
/// sweeps over all bushes repeat up to `SWEEPS` times (fewer once no node's excess cost is above the threshold).
/// Measured on Anaheim, Barcelona and Chicago-Sketch to 1e-10: repeated sweeps matter most (a shift in one bush
/// changes the costs every other bush sees); one pass per sweep beats several (1, 2, 4, 20 tried); 10 sweeps halve
/// the iterations of 5 and cost less time than 20 or 30 (which save iterations but not time). Bushes that were
/// balanced in one sweep sit out the next ones of the iteration: a quarter less time on Chicago-Sketch.
const PASSES_PER_BUSH: usize = 1;
const SWEEPS: usize = 10;

pub(crate) fn solve(problem: &Problem<'_>) -> Result<Solution, AssignError> {
    let net = problem.net;
    let n = net.node_count();
    let m = net.link_count();
    let model = problem.costs;
    let origins = problem.origins();
    let mut loads = Loads {
        model,
        x: vec![0.0; m],
        c: model.iter().map(|c| c.base).collect(),
        d: vec![0.0; m],
    };
    let mut unserved: Vec<Unserved> = Vec::new();
    let mut bushes: Vec<Bush> = Vec::with_capacity(origins.len());

    // warm start: the previous bushes, matched to this network by link ends
    let mut cold: Vec<usize> = Vec::new();
    let mut warm_origins = 0;
    match problem.options.warm_start.map(|s| &s.warm) {
        Some(warm) if !warm.bushes.is_empty() => {
            let map = link_map(&warm.shape, net);
            let old: HashMap<usize, &Bush> = warm.bushes.iter().map(|b| (b.origin, b)).collect();
            for (i, (o, dests)) in origins.iter().enumerate() {
                let reused = old.get(o).and_then(|b| {
                    reuse_bush(b, *o, dests, &warm.demand, problem.demand, net, &map)
                });
                match reused {
                    Some(b) => {
                        bushes.push(b);
                        warm_origins += 1;
                    }
                    None => cold.push(i),
                }
            }
            loads.recompute(&bushes);
        }
        _ => cold.extend(0..origins.len()),
    }

    // cold origins: shortest-path trees at the current costs, loaded all-or-nothing, in parallel
    let cost_now = loads.c.clone();
    let fresh: Vec<(Bush, Vec<Unserved>)> = cold
        .par_iter()
        .map_init(
            || Tree::new(n),
            |tree, &i| {
                let (o, _) = &origins[i];
                initial_bush(tree, net, &cost_now, *o, problem.demand.row(*o))
            },
        )
        .collect();
    for (b, u) in fresh {
        unserved.extend(u);
        if !b.dests.is_empty() {
            bushes.push(b);
        }
    }
    // warm bushes served all their trips; unserved pairs of a warm solve are re-found by cold origins only
    unserved.sort_by_key(|u| (u.origin, u.destination));
    bushes.sort_by_key(|b| b.origin);

    let mut history = Vec::new();
    let mut iteration = 0;
    let mut sptt;
    let mut active: Vec<bool> = Vec::new();
    let stop = loop {
        loads.recompute(&bushes);
        // improve every bush and measure exact shortest paths, in parallel: only bush-own data is written
        let cost = &loads.c;
        let spt: Vec<f64> = bushes
            .par_iter_mut()
            .map_init(
                || Improver::new(n, m),
                |imp, bush| imp.improve(bush, net, cost, true),
            )
            .collect();
        sptt = spt.iter().fold(0.0, |s, v| s + v);
        let (tstt, objective) = super::gap::totals(model, &loads.x);
        let gap = super::relative_gap(tstt, sptt);
        let stats = IterationStats {
            iteration,
            relative_gap: gap,
            objective,
            seconds: problem.elapsed(),
        };
        if bushes.is_empty() {
            problem.checkpoint(&mut history, stats);
            break Stop::NoDemand;
        }
        if let Some(stop) = problem.checkpoint(&mut history, stats) {
            break stop;
        }
        // equilibrate: bush after bush, the costs updated as flow moves
        let theta = (gap * 1e-2).max(problem.options.gap * 1e-2).max(1e-15);
        let mut shifter = Shifter::default();
        // a bush whose last pass found nothing above the threshold sits out the following sweeps of this
        // iteration (the next iteration's measured gap catches anything that moved meanwhile)
        active.clear();
        active.resize(bushes.len(), true);
        for sweep in 0..SWEEPS {
            let mut worst = 0.0f64;
            for (bush, on) in bushes.iter_mut().zip(active.iter_mut()) {
                if !*on {
                    continue;
                }
                for _ in 0..PASSES_PER_BUSH {
                    let e = shifter.pass(bush, &mut loads, theta);
                    worst = worst.max(e);
                    *on = e > theta;
                    if e <= theta {
                        break;
                    }
                }
            }
            if worst <= theta || sweep + 1 == SWEEPS {
                break;
            }
        }
        iteration += 1;
    };

    let mut report = problem.report(&loads.x, sptt, iteration, stop, unserved, history);
    report.warm_origins = warm_origins;
    let costs = loads.c.clone();
    Ok(Solution {
        flows: loads.x,
        costs,
        report,
        warm: WarmState {
            shape: net.shape(),
            demand: problem.demand.clone(),
            bushes,
        },
    })
}

/// For every link of a previous network (by its ends), the matching open link of `net`, if any. Parallel links
/// are matched in order.
pub(crate) fn link_map(shape: &[(u32, u32)], net: &Network) -> Vec<Option<u32>> {
    let now = net.shape();
    if now == shape {
        return (0..shape.len() as u32)
            .map(|l| net.is_open(l).then_some(l))
            .collect();
    }
    let mut by_ends: HashMap<(u32, u32), VecDeque<u32>> = HashMap::new();
    for (l, ends) in now.iter().enumerate() {
        by_ends.entry(*ends).or_default().push_back(l as u32);
    }
    shape
        .iter()
        .map(|ends| {
            by_ends
                .get_mut(ends)
                .and_then(|q| q.pop_front())
                .filter(|l| net.is_open(*l))
        })
        .collect()
}

/// The previous bush of origin `origin` on the new network, or `None` when the origin must start afresh (its
/// trips changed, or its flow used a link that is gone).
fn reuse_bush(
    old: &Bush,
    origin: usize,
    dests: &[(u32, f64)],
    old_demand: &Demand,
    demand: &Demand,
    net: &Network,
    map: &[Option<u32>],
) -> Option<Bush> {
    if origin >= old_demand.zones() || old_demand.row(origin) != demand.row(origin) {
        return None;
    }
    let root = net.zone_node(origin);
    if old.root() != root || old.dests.len() != dests.len() {
        return None; // the old solve left some trips unserved, or the zones moved
    }
    if old.dests.iter().zip(dests).any(|(a, b)| a != b) {
        return None;
    }
    // the same links, all still open: the bush as it was
    if old
        .link
        .iter()
        .all(|&l| map.get(l as usize).copied().flatten() == Some(l))
    {
        return Some(old.clone());
    }
    let links = net.links();
    let mut edges = Vec::with_capacity(old.link.len());
    for (s, &l) in old.link.iter().enumerate() {
        match map.get(l as usize).copied().flatten() {
            Some(new) => {
                let nl = &links[new as usize];
                edges.push((nl.from, nl.to, new, old.flow[s]));
            }
            None if old.flow[s] > 0.0 => return None,
            None => {}
        }
    }
    Bush::from_edges(origin, root, &edges, dests.to_vec())
}
