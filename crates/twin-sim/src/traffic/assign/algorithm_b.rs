//! Dial's Algorithm B (Dial 2006; Boyles' notes): one acyclic bush per origin, equilibrated by Newton flow shifts
//! between the longest used and the shortest path segments within it; the segment pairs shifted are replayed
//! between the passes over whole bushes (paired alternative segments, as in Bar-Gera's TAPAS, 2010). Warm starts
//! keep the bushes; the flow of paths through a link that is gone is rerouted (`reuse_bush`, `strip`), and the
//! origins whose flow meets a link whose cost changed are improved and equilibrated before the first measurement
//! (`touched`, `LOCAL_ROUNDS`).
//!
//! An iteration is: improve every bush and measure the exact gap (`Improver::improve`, in parallel), stop if the
//! gap is reached, equilibrate (`equilibrate`, sequential).
//!
//! Layout: a bush stores its nodes in topological order and, per node, the bush links entering it as "slots" in one
//! contiguous block (`link`, the tail's topological `position`, the origin's `flow`), so the label sweeps read
//! memory in order and index labels by position.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};

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

    /// A bush from edges `(tail node, head node, link, flow)` over nodes `0..nodes`: the edges the root reaches, in
    /// topological order by Kahn's algorithm. `None` when they hold a cycle, when flow sits on an edge the root
    /// does not reach, or when a destination is not reached.
    fn from_edges(
        origin: usize,
        root: u32,
        nodes: usize,
        edges: &[(u32, u32, u32, f64)],
        dests: Vec<(u32, f64)>,
    ) -> Option<Bush> {
        let mut ids = vec![NONE; nodes];
        let mut node_of = vec![root];
        ids[root as usize] = 0;
        let mut id = |n: u32, node_of: &mut Vec<u32>| {
            if ids[n as usize] == NONE {
                ids[n as usize] = node_of.len() as u32;
                node_of.push(n);
            }
            ids[n as usize]
        };
        let all: Vec<Edge> = edges
            .iter()
            .map(|&(t, h, link, flow)| Edge {
                tail: id(t, &mut node_of),
                head: id(h, &mut node_of),
                link,
                flow,
            })
            .collect();
        // what the root reaches
        let n = node_of.len();
        let mut out_start = vec![0u32; n + 1];
        for e in &all {
            out_start[e.tail as usize + 1] += 1;
        }
        for i in 0..n {
            out_start[i + 1] += out_start[i];
        }
        let mut out = vec![0u32; all.len()];
        let mut next = out_start.clone();
        for e in &all {
            out[next[e.tail as usize] as usize] = e.head;
            next[e.tail as usize] += 1;
        }
        let mut reach = vec![false; n];
        reach[0] = true;
        let mut stack = vec![0u32];
        while let Some(t) = stack.pop() {
            for &h in &out[out_start[t as usize] as usize..out_start[t as usize + 1] as usize] {
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
        if dests.iter().any(|(d, _)| {
            let i = ids[*d as usize];
            i == NONE || pos[i as usize] == NONE
        }) {
            return None;
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
        Some(bush)
    }

    /// The bush on a network where some of its links are gone: `link_now` gives each old link's index now
    /// (`None` when gone; gone links must carry no flow). The order stays topological; nodes the root no longer
    /// reaches leave. `None` when flow would be lost or a destination is no longer reached.
    fn compact(&self, link_now: impl Fn(u32) -> Option<u32>, nodes: usize) -> Option<Bush> {
        let k = self.order.len();
        let mut at = vec![NONE; k];
        at[0] = 0;
        let mut out = Bush {
            origin: self.origin,
            order: Vec::with_capacity(k),
            start: Vec::with_capacity(k + 1),
            link: Vec::with_capacity(self.link.len()),
            tail: Vec::with_capacity(self.link.len()),
            flow: Vec::with_capacity(self.link.len()),
            dests: self.dests.clone(),
        };
        out.order.push(self.order[0]);
        out.start.extend([0, 0]);
        for p in 1..k {
            let before = out.link.len();
            for s in self.start[p] as usize..self.start[p + 1] as usize {
                let t = at[self.tail[s] as usize];
                match link_now(self.link[s]) {
                    Some(l) if t != NONE => {
                        out.link.push(l);
                        out.tail.push(t);
                        out.flow.push(self.flow[s]);
                    }
                    _ if self.flow[s] > 0.0 => return None,
                    _ => {}
                }
            }
            if out.link.len() > before {
                at[p] = out.order.len() as u32;
                out.order.push(self.order[p]);
                out.start.push(out.link.len() as u32);
            }
        }
        let mut reached = vec![false; nodes];
        for &n in &out.order {
            reached[n as usize] = true;
        }
        out.dests
            .iter()
            .all(|(d, _)| reached[*d as usize])
            .then_some(out)
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

/// The open links leaving each node with their heads, and whether paths may pass through each node: the
/// network's forward star laid out for the improvement sweeps.
struct Star {
    start: Vec<u32>,
    /// (link, head) per open link, grouped by tail.
    arcs: Vec<(u32, u32)>,
    passable: Vec<bool>,
    /// The tail of every link.
    tail: Vec<u32>,
}

impl Star {
    fn new(net: &Network) -> Star {
        let n = net.node_count();
        let links = net.links();
        let mut start = Vec::with_capacity(n + 1);
        let mut arcs = Vec::with_capacity(net.link_count());
        start.push(0);
        for i in 0..n as u32 {
            arcs.extend(net.out_links(i).iter().map(|&l| (l, links[l as usize].to)));
            start.push(arcs.len() as u32);
        }
        Star {
            start,
            arcs,
            passable: (0..n as u32).map(|i| net.passable(i)).collect(),
            tail: links.iter().map(|l| l.from).collect(),
        }
    }

    #[inline]
    fn out(&self, node: u32) -> &[(u32, u32)] {
        &self.arcs[self.start[node as usize] as usize..self.start[node as usize + 1] as usize]
    }
}

/// What the improvement sweep keeps per node: read together for every link relaxed.
#[derive(Debug, Clone, Copy)]
struct NodeLabel {
    /// The shortest-path cost found so far (`+∞` where none is).
    dist: f64,
    /// The longest-path cost over the kept bush links (`+∞` for nodes the bush does not reach yet).
    umax: f64,
    /// Temporary id: the position in the bush's order, new nodes after it; `NONE` outside the bush.
    id: u32,
    /// The last link of the shortest path where the network pass lowered the label, `NONE` elsewhere.
    pred: u32,
}

const UNLABELLED: NodeLabel = NodeLabel {
    dist: f64::INFINITY,
    umax: f64::INFINITY,
    id: NONE,
    pred: NONE,
};

/// What [`Improver::improve`] measured on one bush.
#[derive(Debug, Clone, Copy, Default)]
struct Measure {
    /// The origin's trips × their exact shortest-path costs.
    sptt: f64,
    /// The origin's flow × link costs: its share of the total system travel cost.
    tstt: f64,
}

/// Per-thread arrays for improving bushes and measuring shortest paths.
struct Improver {
    label: Vec<NodeLabel>,
    /// Per position: shortest and longest (over kept links) path costs within the bush, and whether flow reaches it.
    lmin: Vec<f64>,
    umax: Vec<f64>,
    used: Vec<bool>,
    /// Per slot: whether the link stays (it carries flow or is its head's shortest-path link).
    keep: Vec<bool>,
    /// Nodes the bush reaches from now on, in the order they got their ids (`k..`).
    new_nodes: Vec<u32>,
    /// Nodes whose label the network pass lowered.
    lowered: Vec<u32>,
    /// Nodes outside the bush the network pass reached.
    touched: Vec<u32>,
    /// Nodes whose label fell after their scan, by label (`f64` bits: labels are ≥ 0, so the bits order as the
    /// values), taken smallest first; an entry whose label has fallen since is stale and skipped.
    heap: BinaryHeap<Reverse<(u64, u32)>>,
    /// Links added in this improvement carry the current stamp.
    mark: Vec<u32>,
    stamp: u32,
    /// Links joining the bush, over temporary ids.
    added: Vec<Edge>,
    edges: Vec<Edge>,
    kahn: Kahn,
    node_of: Vec<u32>,
    identity: Vec<u32>,
    /// The arrays of the bush being rebuilt, swapped with the bush's own.
    spare: (Vec<u32>, Vec<u32>, Vec<u32>, Vec<f64>),
}

impl Improver {
    /// Lowers `j`'s shortest-path label to `v` through link `l` when that is shorter, noting `j` for the reset
    /// (`touched` the first time it is reached, `lowered` the first time the network pass lowers it); whether it
    /// did.
    #[inline]
    fn relax(&mut self, j: u32, l: u32, v: f64) -> bool {
        let lj = &mut self.label[j as usize];
        if v < lj.dist {
            if lj.dist == f64::INFINITY {
                self.touched.push(j);
            }
            if lj.pred == NONE {
                self.lowered.push(j);
            }
            lj.pred = l;
            lj.dist = v;
            true
        } else {
            false
        }
    }

    fn new(nodes: usize, links: usize) -> Improver {
        Improver {
            label: vec![UNLABELLED; nodes],
            lmin: Vec::new(),
            umax: Vec::new(),
            used: Vec::new(),
            keep: Vec::new(),
            new_nodes: Vec::new(),
            lowered: Vec::new(),
            touched: Vec::new(),
            heap: BinaryHeap::new(),
            mark: vec![0; links],
            stamp: 0,
            added: Vec::new(),
            edges: Vec::new(),
            kahn: Kahn::default(),
            node_of: Vec::new(),
            identity: Vec::new(),
            spare: Default::default(),
        }
    }

    /// Whether link `l` is a kept link into position `t` of `bush`.
    #[inline]
    fn kept(&self, bush: &Bush, t: u32, l: u32) -> bool {
        let t = t as usize;
        (bush.start[t] as usize..bush.start[t + 1] as usize)
            .any(|s| bush.link[s] == l && self.keep[s])
    }

    /// Improves `bush` (drops links without flow, adds shortcuts by the longest-path criterion and the last links
    /// of shortest paths that leave it, re-sorts; a bush where nothing changes keeps its arrays) and measures the
    /// origin's exact shortest-path costs at costs `cost`.
    fn improve(&mut self, bush: &mut Bush, star: &Star, cost: &[f64]) -> Measure {
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            self.mark.fill(0);
            self.stamp = 1;
        }
        let stamp = self.stamp;
        let k = bush.order.len();
        // every label but the root's is written below
        self.lmin.resize(k, 0.0);
        self.umax.resize(k, 0.0);
        self.used.resize(k, false);
        (self.lmin[0], self.umax[0], self.used[0]) = (0.0, 0.0, true);
        self.keep.clear();
        self.keep.resize(bush.link.len(), false);
        let mut tstt = 0.0;
        // forward sweep: shortest-path labels over all bush links; keep links with flow and each node's
        // shortest-path link; longest-path labels over the kept links
        for p in 1..k {
            let (s0, s1) = (bush.start[p] as usize, bush.start[p + 1] as usize);
            let mut best = f64::INFINITY;
            let mut best_slot = s0;
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
                let t = bush.tail[s] as usize;
                // flow out of a node nothing flows into is rounding debris
                if bush.flow[s] > 0.0 && !self.used[t] {
                    bush.flow[s] = 0.0;
                }
                let f = bush.flow[s];
                inflow |= f > 0.0;
                if f > 0.0 || s == best_slot {
                    let c = cost[bush.link[s] as usize];
                    tstt += f * c;
                    self.keep[s] = true;
                    worst = worst.max(self.umax[t] + c);
                }
            }
            self.umax[p] = worst;
            self.used[p] = inflow;
        }
        for (p, &node) in bush.order.iter().enumerate() {
            self.label[node as usize] = NodeLabel {
                dist: self.lmin[p],
                umax: self.umax[p],
                id: p as u32,
                pred: NONE,
            };
        }

        // One sweep over the out-links of the bush's nodes in topological order does two things.
        // Exact shortest paths: the bush labels are lengths of real paths, so label-correcting from them over the
        // whole network ends at the true shortest-path costs; in topological order most labels are final when
        // their node is scanned, and only nodes that improve after their scan (or lie outside the bush) queue.
        // Shortcuts: (i, j) with U_i + c_ij < U_j, and links into nodes the bush does not reach yet.
        self.added.clear();
        self.new_nodes.clear();
        for p in 0..k {
            let i = bush.order[p];
            if p != 0 && !star.passable[i as usize] {
                continue;
            }
            let di = self.label[i as usize].dist;
            let ui = self.umax[p];
            for &(l, j) in star.out(i) {
                let c = cost[l as usize];
                if self.relax(j, l, di + c) {
                    let t = self.label[j as usize].id;
                    if t == NONE || t as usize >= k || t as usize <= p {
                        let d = self.label[j as usize].dist;
                        self.heap.push(Reverse((d.to_bits(), j)));
                    }
                }
                let lj = &mut self.label[j as usize];
                let t = lj.id;
                let head = if t == NONE {
                    let t = (k + self.new_nodes.len()) as u32;
                    lj.id = t;
                    self.new_nodes.push(j);
                    Some(t)
                } else if ui + c < lj.umax
                    && self.mark[l as usize] != stamp
                    && !((t as usize) < k && self.kept(bush, t, l))
                {
                    Some(t)
                } else {
                    None
                };
                if let Some(head) = head {
                    self.mark[l as usize] = stamp;
                    self.added.push(Edge {
                        tail: p as u32,
                        head,
                        link: l,
                        flow: 0.0,
                    });
                }
            }
        }
        let root = bush.root();
        // the rest in label order (Dijkstra from the sweep's labels): with costs ≥ 0 a node taken off the heap is
        // final, so each is scanned once more at most; a first-in-first-out queue here rescanned nodes over and
        // over on large congested networks (minutes per iteration on 100,000 links)
        while let Some(Reverse((bits, i))) = self.heap.pop() {
            let di = self.label[i as usize].dist;
            if f64::from_bits(bits) > di || (i != root && !star.passable[i as usize]) {
                continue;
            }
            for &(l, j) in star.out(i) {
                let v = di + cost[l as usize];
                if self.relax(j, l, v) {
                    self.heap.push(Reverse((v.to_bits(), j)));
                }
            }
        }
        let sptt: f64 = bush
            .dests
            .iter()
            .map(|&(d, v)| v * self.label[d as usize].dist)
            .sum();
        // where the true shortest path to a node leaves the bush, its last link joins the bush when that keeps it
        // acyclic: U_i < U_j, as U increases along every kept link (the bush then holds more of the shortest-path
        // tree than the longest-path criterion alone gives it; a third fewer iterations on Barcelona)
        for &j in &self.lowered {
            let l = std::mem::replace(&mut self.label[j as usize].pred, NONE);
            let ti = self.label[star.tail[l as usize] as usize].id;
            let tj = self.label[j as usize].id;
            if (ti as usize) < k
                && (tj as usize) < k
                && self.umax[ti as usize] < self.umax[tj as usize]
                && self.mark[l as usize] != stamp
                && !self.kept(bush, tj, l)
            {
                self.mark[l as usize] = stamp;
                self.added.push(Edge {
                    tail: ti,
                    head: tj,
                    link: l,
                    flow: 0.0,
                });
            }
        }
        self.lowered.clear();
        for &n in bush
            .order
            .iter()
            .chain(&self.new_nodes)
            .chain(&self.touched)
        {
            self.label[n as usize] = UNLABELLED;
        }
        self.touched.clear();

        if !self.added.is_empty() || self.keep.iter().any(|k| !k) {
            self.rebuild(bush);
        }
        Measure { sptt, tstt }
    }

    /// Rewrites `bush` with its kept links and the added ones. The old order stays topological when every added
    /// link into an old node goes forward in it (new nodes, which no kept or added link leaves, go at the end);
    /// otherwise Kahn's algorithm re-sorts.
    fn rebuild(&mut self, bush: &mut Bush) {
        let k = bush.order.len();
        let n = k + self.new_nodes.len();
        if self
            .added
            .iter()
            .all(|e| e.head as usize >= k || e.tail < e.head)
        {
            self.added.sort_by_key(|e| e.head);
            let (start, link, tail, flow) = &mut self.spare;
            start.clear();
            link.clear();
            tail.clear();
            flow.clear();
            start.push(0);
            let mut a = 0;
            for p in 0..n {
                if p < k {
                    for s in bush.start[p] as usize..bush.start[p + 1] as usize {
                        if self.keep[s] {
                            link.push(bush.link[s]);
                            tail.push(bush.tail[s]);
                            flow.push(bush.flow[s]);
                        }
                    }
                }
                while a < self.added.len() && self.added[a].head as usize == p {
                    link.push(self.added[a].link);
                    tail.push(self.added[a].tail);
                    flow.push(0.0);
                    a += 1;
                }
                start.push(link.len() as u32);
            }
            std::mem::swap(start, &mut bush.start);
            std::mem::swap(link, &mut bush.link);
            std::mem::swap(tail, &mut bush.tail);
            std::mem::swap(flow, &mut bush.flow);
            bush.order.extend_from_slice(&self.new_nodes);
            return;
        }
        self.edges.clear();
        for p in 1..k {
            for s in bush.start[p] as usize..bush.start[p + 1] as usize {
                if self.keep[s] {
                    self.edges.push(Edge {
                        tail: bush.tail[s],
                        head: p as u32,
                        link: bush.link[s],
                        flow: bush.flow[s],
                    });
                }
            }
        }
        let kept = self.edges.len();
        self.edges.extend_from_slice(&self.added);
        self.node_of.clear();
        self.node_of.extend_from_slice(&bush.order);
        self.node_of.extend_from_slice(&self.new_nodes);
        if self.kahn.order(n, &self.edges).0 == n {
            bush.fill(&self.node_of, &self.kahn.pos, n, &self.edges);
        } else {
            // rounding made a cycle of near-equal labels: keep the old order and only drop links
            self.identity.clear();
            self.identity.extend(0..k as u32);
            bush.fill(&self.node_of, &self.identity, k, &self.edges[..kept]);
        }
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
        self.recompute_costs();
    }

    /// The costs and derivatives at the current link flows.
    fn recompute_costs(&mut self) {
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

/// Per-thread arrays for the flow shifts, and the segment pairs shifted in this round (for replays).
#[derive(Default)]
struct Shifter {
    lmin: Vec<f64>,
    umax: Vec<f64>,
    minp: Vec<u32>,
    maxp: Vec<u32>,
    seg_max: Vec<u32>,
    seg_min: Vec<u32>,
    /// The bush being passed over (its index), for the records.
    current: u32,
    pairs: Vec<Pair>,
    /// The slots of the recorded pairs' segments.
    pair_slots: Vec<u32>,
    /// (bush, last slot of each segment, where they diverge) of every recorded pair.
    seen: HashSet<(u32, u32, u32, u32)>,
}

/// Two segments of one bush that join the same two nodes (TAPAS's paired alternative segments, of one origin),
/// recorded from a shift: slots `start..mid` and `mid..end` of `Shifter::pair_slots`.
#[derive(Debug, Clone, Copy)]
struct Pair {
    bush: u32,
    start: u32,
    mid: u32,
    end: u32,
    /// The shortest-path cost to the node where they merge, when recorded: relative differences refer to it.
    scale: f64,
}

impl Shifter {
    /// Forgets the recorded pairs (their slots change when the bushes are improved).
    fn clear_pairs(&mut self) {
        self.pairs.clear();
        self.pair_slots.clear();
        self.seen.clear();
    }

    /// One pass over `bush`: labels, then a Newton shift at every node whose longest used path costs more than
    /// `theta` (relative) above its shortest path. Returns the largest relative excess seen.
    fn pass(&mut self, bush: &mut Bush, loads: &mut Loads<'_>, theta: f64) -> f64 {
        let k = bush.order.len();
        // every label but the root's is written below
        self.lmin.resize(k, 0.0);
        self.umax.resize(k, 0.0);
        self.minp.resize(k, NONE);
        self.maxp.resize(k, NONE);
        (self.lmin[0], self.umax[0], self.minp[0], self.maxp[0]) = (0.0, 0.0, NONE, NONE);
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
            if self.segments(bush, p) {
                equalise(bush, loads, &self.seg_max, &self.seg_min, 0.0);
                self.record(bush, p);
            }
        }
        max_excess
    }

    /// The longest used and the shortest path segments into node position `p`, traced back to where they
    /// diverge, into `seg_max` and `seg_min` (each from its last slot back). `false` when flow was rounded away
    /// upstream and there is nothing to move.
    fn segments(&mut self, bush: &Bush, p: usize) -> bool {
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
                    return false;
                }
                self.seg_max.push(s);
                a = bush.tail[s as usize];
            } else {
                let s = self.minp[b as usize];
                self.seg_min.push(s);
                b = bush.tail[s as usize];
            }
        }
        true
    }

    /// Keeps the pair just shifted (once per round) for the replays.
    fn record(&mut self, bush: &Bush, p: usize) {
        let diverge = bush.tail[*self.seg_max.last().expect("a segment") as usize];
        if !self
            .seen
            .insert((self.current, self.seg_max[0], self.seg_min[0], diverge))
        {
            return;
        }
        let start = self.pair_slots.len() as u32;
        self.pair_slots.extend_from_slice(&self.seg_max);
        let mid = self.pair_slots.len() as u32;
        self.pair_slots.extend_from_slice(&self.seg_min);
        self.pairs.push(Pair {
            bush: self.current,
            start,
            mid,
            end: self.pair_slots.len() as u32,
            scale: self.lmin[p],
        });
    }

    /// Replays every recorded pair once: a Newton shift from its costlier segment to the cheaper one (either way)
    /// where they differ by more than `theta` (relative). Returns the largest relative difference of the pairs
    /// where flow moved (a pair whose costlier segment carries nothing is settled).
    fn replay(&self, bushes: &mut [Bush], loads: &mut Loads<'_>, theta: f64) -> f64 {
        let mut worst = 0.0f64;
        for pair in &self.pairs {
            let bush = &mut bushes[pair.bush as usize];
            let a = &self.pair_slots[pair.start as usize..pair.mid as usize];
            let b = &self.pair_slots[pair.mid as usize..pair.end as usize];
            if let Some(diff) = equalise(bush, loads, a, b, theta * pair.scale) {
                worst = worst.max(diff / pair.scale);
            }
        }
        worst
    }
}

/// Moves flow between two segments of `bush` that join the same two nodes, from the costlier to the cheaper: the
/// Newton step `Δ = (C_long − C_short) / Σ c'_a` on their cost difference, at most the smallest flow on the
/// costlier, updating the link costs. Nothing moves when the costs differ by `min_diff` or less or when the
/// costlier carries no flow; otherwise returns the cost difference.
fn equalise(
    bush: &mut Bush,
    loads: &mut Loads<'_>,
    a: &[u32],
    b: &[u32],
    min_diff: f64,
) -> Option<f64> {
    let (mut ca, mut da, mut fa) = (0.0, 0.0, f64::INFINITY);
    for &s in a {
        let l = bush.link[s as usize] as usize;
        ca += loads.c[l];
        da += loads.d[l];
        fa = fa.min(bush.flow[s as usize]);
    }
    let (mut cb, mut db, mut fb) = (0.0, 0.0, f64::INFINITY);
    for &s in b {
        let l = bush.link[s as usize] as usize;
        cb += loads.c[l];
        db += loads.d[l];
        fb = fb.min(bush.flow[s as usize]);
    }
    let (long, short, diff, fmin) = if ca >= cb {
        (a, b, ca - cb, fa)
    } else {
        (b, a, cb - ca, fb)
    };
    if !(diff > min_diff && fmin > 0.0) {
        return None;
    }
    let slope = da + db;
    let delta = if slope == 0.0 {
        fmin
    } else if slope.is_finite() {
        (diff / slope).min(fmin)
    } else {
        bisect(bush, loads, long, short, fmin)
    };
    if delta.is_nan() || delta <= 0.0 {
        return None;
    }
    // when the whole bottleneck flow moves, links that carried (up to rounding) the same flow empty too:
    // leftovers of 1e-14 would keep links whose tails carry nothing
    let snap = if delta == fmin { 1e-12 } else { 0.0 };
    for &s in long {
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
    for &s in short {
        let s = s as usize;
        bush.flow[s] += delta;
        loads.add(bush.link[s] as usize, delta);
    }
    Some(diff)
}

/// The shift that equalises two segments when a derivative is infinite (powers below 1 at zero flow): bisection
/// on the cost difference over `[0, fmin]`.
fn bisect(bush: &Bush, loads: &Loads<'_>, long: &[u32], short: &[u32], fmin: f64) -> f64 {
    let diff = |delta: f64| -> f64 {
        let up: f64 = long
            .iter()
            .map(|&s| {
                let l = bush.link[s as usize] as usize;
                loads.model[l].cost((loads.x[l] - delta).max(0.0))
            })
            .sum();
        let down: f64 = short
            .iter()
            .map(|&s| {
                let l = bush.link[s as usize] as usize;
                loads.model[l].cost(loads.x[l] + delta)
            })
            .sum();
        up - down
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
    let mut pos = vec![NONE; net.node_count()];
    for (p, &n) in order.iter().enumerate() {
        pos[n as usize] = p as u32;
    }
    let mut node_load = vec![0.0; k];
    for &(d, v) in &dests {
        node_load[pos[d as usize] as usize] += v;
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
        tail.push(pos[links[l as usize].from as usize]);
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

/// Every iteration, the sweeps over all bushes repeat up to `SWEEPS` times (fewer once no node's excess cost is
/// above the threshold), and after each sweep the segment pairs it shifted are replayed up to `REPLAYS` times.
/// Measured on Anaheim, Barcelona and Chicago-Sketch to 1e-10: repeated sweeps matter most (a shift in one bush
/// changes the costs every other bush sees); bushes that were balanced in one sweep sit out the next ones of the
/// iteration (a quarter less time on Chicago-Sketch). The replays are what turns the slow tail into a fast one:
/// a pass over a bush costs its whole size, a replay of a pair a few links, so the coupled moves of different
/// origins on the same links (one origin's shift undone by another's, a Gauss–Seidel rate near 1 per sweep) settle
/// for a small fraction of a sweep's cost.
const SWEEPS: usize = 10;
const REPLAYS: usize = 20;
/// A warm start's rounds of improving and equilibrating the origins its change touched, before the first
/// measurement: the first over the touched origins, with every other bush passed once after their first sweep (they
/// carry flow on the links the touched ones loaded or unloaded), the second over the origins whose largest excess
/// was above a hundred times the threshold, which now have new shortest paths to take in. Measured on the
/// capacity cuts of `examples/warm.rs` (with the rounds' threshold at a hundredth of their gap): one round left
/// Chicago-Sketch's first measurement at 2e-6, two at 8e-9 (converged to 1e-6 without an iteration); one round
/// without the pass over the other bushes, at 1e-5; a third round reached 3.5e-7 on Barcelona but made its solve to
/// 1e-10 slower.
const LOCAL_ROUNDS: usize = 2;

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
    let mut repairs: Vec<(usize, Stripped)> = Vec::new();
    let mut warm_origins = 0;
    let mut warm_map: Option<Vec<Option<u32>>> = None;
    match problem.options.warm_start.map(|s| &s.warm) {
        Some(warm) if !warm.bushes.is_empty() => {
            let map = link_map(&warm.shape, net);
            let old: HashMap<usize, &Bush> = warm.bushes.iter().map(|b| (b.origin, b)).collect();
            // in parallel: copying the bushes is most of a warm start's setup
            let reused: Vec<Reuse> = origins
                .par_iter()
                .map(|(o, dests)| match old.get(o) {
                    Some(b) => reuse_bush(b, *o, dests, &warm.demand, problem.demand, net, &map),
                    None => Reuse::Fresh,
                })
                .collect();
            for (i, reused) in reused.into_iter().enumerate() {
                match reused {
                    Reuse::Kept(b) => {
                        bushes.push(b);
                        warm_origins += 1;
                    }
                    Reuse::Strip(s) => repairs.push((i, s)),
                    Reuse::Fresh => cold.push(i),
                }
            }
            loads.recompute(&bushes);
            for (_, s) in &repairs {
                for &(_, _, l, f) in &s.edges {
                    loads.x[l as usize] += f;
                }
            }
            loads.recompute_costs();
            warm_map = Some(map);
        }
        _ => cold.extend(0..origins.len()),
    }
    // origins whose bush is not the previous one as it was: repaired or fresh
    let mut remade: HashSet<usize> = HashSet::new();

    // origins whose flow used a link that is gone: that flow takes the shortest paths at the current costs, in
    // parallel; an origin that cannot be repaired (a destination no longer reachable) starts afresh
    let cost_now = loads.c.clone();
    let repaired: Vec<(usize, Option<Bush>)> = repairs
        .into_par_iter()
        .map_init(
            || (Tree::new(n), vec![0.0; m]),
            |(tree, add), (i, s)| {
                let (o, dests) = &origins[i];
                (i, repair_bush(tree, add, net, &cost_now, *o, dests, s))
            },
        )
        .collect();
    let mut repaired_origins = 0;
    for (i, b) in repaired {
        remade.insert(origins[i].0);
        match b {
            Some(b) => {
                bushes.push(b);
                warm_origins += 1;
                repaired_origins += 1;
            }
            None => cold.push(i),
        }
    }

    // cold origins: shortest-path trees at the current costs, loaded all-or-nothing, in parallel
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
    for &i in &cold {
        remade.insert(origins[i].0);
    }
    for (b, u) in fresh {
        unserved.extend(u);
        if !b.dests.is_empty() {
            bushes.push(b);
        }
    }
    // warm bushes served all their trips; unserved pairs of a warm solve are re-found by cold origins only
    unserved.sort_by_key(|u| (u.origin, u.destination));
    bushes.sort_by_key(|b| b.origin);

    let star = Star::new(net);
    let mut shifter = Shifter::default();
    let mut history = Vec::new();
    let mut iteration = 0;
    let mut sptt;
    let mut active: Vec<bool> = Vec::new();
    let mut excess: Vec<f64> = Vec::new();
    let target = problem.options.gap;

    // a warm start after a local change: the origins it touched are re-equilibrated before the first measurement
    if let (Some(map), Some(prev)) = (&warm_map, problem.options.warm_start) {
        loads.recompute(&bushes);
        let mut set = touched(&bushes, map, &prev.costs, &loads.c, &remade);
        if set.iter().any(|t| !t) {
            for round in 0..LOCAL_ROUNDS {
                if round > 0 {
                    loads.recompute(&bushes);
                }
                let cost = &loads.c;
                // the touched origins' share of the gap (summed in order: the same result on any schedule)
                let own = bushes
                    .par_iter_mut()
                    .zip(set.par_iter())
                    .filter(|(_, on)| **on)
                    .map_init(
                        || Improver::new(n, m),
                        |imp, (bush, _)| {
                            let measure = imp.improve(bush, &star, cost);
                            measure.tstt - measure.sptt
                        },
                    )
                    .collect::<Vec<f64>>()
                    .iter()
                    .fold(0.0, |s, v| s + v);
                let (tstt, _) = super::gap::totals(model, &loads.x);
                let gap = super::relative_gap(tstt, tstt - own);
                if gap <= target * 1e-1 {
                    break;
                }
                // coarser than an iteration's threshold (a hundredth of the gap): these rounds move the bulk of the
                // flow, the iterations after the measurement settle it (a hundredth here: a fifth more time to the
                // same gaps on Chicago-Sketch)
                let theta = (gap * 1e-1).max(target * 1e-2).max(1e-15);
                active.clone_from(&set);
                equilibrate(
                    &mut bushes,
                    &mut loads,
                    &mut shifter,
                    &mut active,
                    theta,
                    true,
                    &mut excess,
                );
                // the origins that moved most have new shortest paths to take in
                for (on, e) in set.iter_mut().zip(&excess) {
                    *on = *e > 1e2 * theta;
                }
            }
        }
    }

    let stop = loop {
        loads.recompute(&bushes);
        // improve every bush and measure exact shortest paths, in parallel: only bush-own data is written
        let cost = &loads.c;
        sptt = bushes
            .par_iter_mut()
            .map_init(
                || Improver::new(n, m),
                |imp, bush| imp.improve(bush, &star, cost).sptt,
            )
            .collect::<Vec<f64>>()
            .iter()
            .fold(0.0, |s, v| s + v);
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
        let theta = (gap * 1e-2).max(target * 1e-2).max(1e-15);
        active.clear();
        active.resize(bushes.len(), true);
        equilibrate(
            &mut bushes,
            &mut loads,
            &mut shifter,
            &mut active,
            theta,
            false,
            &mut excess,
        );
        iteration += 1;
    };

    let mut report = problem.report(&loads.x, sptt, iteration, stop, unserved, history);
    report.warm_origins = warm_origins;
    report.repaired_origins = repaired_origins;
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

/// Equilibrates the bushes marked `active`: sweeps over them, one bush after another with the costs updated as
/// flow moves, each sweep followed by replays of the segment pairs shifted. A bush whose pass found nothing above
/// the threshold `theta` sits out the following sweeps (the next measured gap catches anything that moved
/// meanwhile). With `wake`, the second sweep passes over every bush once: a few bushes moved, the others follow.
/// `excess` receives each bush's largest relative excess seen.
fn equilibrate(
    bushes: &mut [Bush],
    loads: &mut Loads<'_>,
    shifter: &mut Shifter,
    active: &mut [bool],
    theta: f64,
    wake: bool,
    excess: &mut Vec<f64>,
) {
    shifter.clear_pairs();
    excess.clear();
    excess.resize(bushes.len(), 0.0);
    for sweep in 0..SWEEPS {
        if wake && sweep == 1 {
            active.fill(true);
        }
        let mut worst = 0.0f64;
        for (i, (bush, on)) in bushes.iter_mut().zip(active.iter_mut()).enumerate() {
            if *on {
                shifter.current = i as u32;
                let e = shifter.pass(bush, loads, theta);
                excess[i] = excess[i].max(e);
                worst = worst.max(e);
                *on = e > theta;
            }
        }
        // the pairs shifted so far, again and again: cheap, and what settles moves that couple origins
        for _ in 0..REPLAYS {
            if shifter.replay(bushes, loads, theta) <= theta {
                break;
            }
        }
        if worst <= theta || (sweep + 1 == SWEEPS) {
            break;
        }
    }
}

/// The bushes a warm start's change touched: those carrying flow on a link whose cost at the starting flows is
/// not what the previous solution's was (matched by `map`; links new to the network count as changed), and those
/// of origins `remade` (repaired or started afresh).
fn touched(
    bushes: &[Bush],
    map: &[Option<u32>],
    prev_costs: &[f64],
    costs: &[f64],
    remade: &HashSet<usize>,
) -> Vec<bool> {
    let mut changed = vec![true; costs.len()];
    for (old, new) in map.iter().enumerate() {
        if let Some(l) = new {
            changed[*l as usize] = prev_costs.get(old) != Some(&costs[*l as usize]);
        }
    }
    bushes
        .iter()
        .map(|b| {
            remade.contains(&b.origin)
                || b.link
                    .iter()
                    .zip(&b.flow)
                    .any(|(l, f)| *f > 0.0 && changed[*l as usize])
        })
        .collect()
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

/// What becomes of an origin's previous bush on the new network.
enum Reuse {
    /// The bush, on the new network's links.
    Kept(Bush),
    /// Its flow used a link that is gone: the rest of the bush, to be repaired.
    Strip(Stripped),
    /// Start afresh (the origin's trips changed).
    Fresh,
}

/// A previous bush without the flow of the paths that used links now gone.
struct Stripped {
    /// (tail, head, link, flow) on the new network: every old bush link still open, with its remaining flow.
    edges: Vec<(u32, u32, u32, f64)>,
    /// The trips those paths carried, by destination node: they need new paths.
    reroute: Vec<(u32, f64)>,
    /// The old bush's nodes in topological order.
    order: Vec<u32>,
}

/// The previous bush of origin `origin` on the new network (see [`Reuse`]).
fn reuse_bush(
    old: &Bush,
    origin: usize,
    dests: &[(u32, f64)],
    old_demand: &Demand,
    demand: &Demand,
    net: &Network,
    map: &[Option<u32>],
) -> Reuse {
    if origin >= old_demand.zones() || old_demand.row(origin) != demand.row(origin) {
        return Reuse::Fresh;
    }
    let root = net.zone_node(origin);
    if old.root() != root || old.dests.len() != dests.len() {
        return Reuse::Fresh; // the old solve left some trips unserved, or the zones moved
    }
    if old.dests.iter().zip(dests).any(|(a, b)| a != b) {
        return Reuse::Fresh;
    }
    let new_link = |l: u32| map.get(l as usize).copied().flatten();
    // the same links, all still open: the bush as it was
    if old.link.iter().all(|&l| new_link(l) == Some(l)) {
        return Reuse::Kept(old.clone());
    }
    // links gone without flow of this origin: the bush without them, in the same order
    if old
        .link
        .iter()
        .zip(&old.flow)
        .all(|(&l, &f)| f == 0.0 || new_link(l).is_some())
    {
        if let Some(b) = old.compact(new_link, net.node_count()) {
            return Reuse::Kept(b);
        }
    }
    let links = net.links();
    let gone: Vec<bool> = old
        .link
        .iter()
        .zip(&old.flow)
        .map(|(&l, &f)| f > 0.0 && new_link(l).is_none())
        .collect();
    let (flow, reroute) = if gone.iter().any(|g| *g) {
        strip(old, &gone)
    } else {
        (old.flow.clone(), Vec::new())
    };
    let edges: Vec<(u32, u32, u32, f64)> = old
        .link
        .iter()
        .zip(&flow)
        .filter_map(|(&l, &f)| {
            let new = new_link(l)?;
            let nl = &links[new as usize];
            Some((nl.from, nl.to, new, f))
        })
        .collect();
    if reroute.is_empty() {
        match Bush::from_edges(origin, root, net.node_count(), &edges, dests.to_vec()) {
            Some(b) => Reuse::Kept(b),
            None => Reuse::Fresh,
        }
    } else {
        Reuse::Strip(Stripped {
            edges,
            reroute,
            order: old.order.clone(),
        })
    }
}

/// The flow of `bush` on paths that avoid every slot marked `gone`, and the trips per destination of the paths
/// that do not. The bush's flow is decomposed into paths proportionally (at every node, the flow arriving splits
/// over the links leaving it and the trips ending there in proportion to them), so a link keeps the share of its
/// flow whose path, before and after it, avoids the gone slots: `f · (1 − a_tail) · (1 − c_head)` where `a` is
/// the share of the flow reaching a node that passed a gone slot and `c` the share that will. Every node stays
/// balanced (up to rounding).
fn strip(bush: &Bush, gone: &[bool]) -> (Vec<f64>, Vec<(u32, f64)>) {
    let k = bush.order.len();
    // the flow through each node (the root's is not needed)
    let through: Vec<f64> = (0..k)
        .map(|p| match p {
            0 => 0.0,
            _ => (bush.start[p] as usize..bush.start[p + 1] as usize)
                .map(|s| bush.flow[s])
                .sum(),
        })
        .collect();
    // a: share of the flow reaching each node that used a gone slot on the way
    let mut a = vec![0.0; k];
    for p in 1..k {
        if through[p] > 0.0 {
            let tainted: f64 = (bush.start[p] as usize..bush.start[p + 1] as usize)
                .map(|s| {
                    let at = a[bush.tail[s] as usize];
                    bush.flow[s] * if gone[s] { 1.0 } else { at }
                })
                .sum();
            a[p] = (tainted / through[p]).clamp(0.0, 1.0);
        }
    }
    // c: share of the flow reaching each node that will use a gone slot further on
    let mut later = vec![0.0; k];
    let mut c = vec![0.0; k];
    for p in (1..k).rev() {
        if through[p] > 0.0 {
            c[p] = (later[p] / through[p]).clamp(0.0, 1.0);
        }
        for s in bush.start[p] as usize..bush.start[p + 1] as usize {
            let share = if gone[s] { 1.0 } else { c[p] };
            later[bush.tail[s] as usize] += bush.flow[s] * share;
        }
    }
    let mut flow = vec![0.0; bush.flow.len()];
    for (p, cp) in c.iter().enumerate().skip(1) {
        for s in bush.start[p] as usize..bush.start[p + 1] as usize {
            if !gone[s] {
                let keep = (1.0 - a[bush.tail[s] as usize]) * (1.0 - cp);
                let f = bush.flow[s] * keep;
                // what rounding leaves of a path that was removed whole is no flow
                flow[s] = if f > 1e-12 * bush.flow[s] { f } else { 0.0 };
            }
        }
    }
    let mut pos = vec![NONE; bush.order.iter().max().map_or(0, |m| *m as usize + 1)];
    for (p, &node) in bush.order.iter().enumerate() {
        pos[node as usize] = p as u32;
    }
    let reroute = bush
        .dests
        .iter()
        .filter_map(|&(d, v)| {
            let p = *pos.get(d as usize)?;
            let r = v * a[(p != NONE).then_some(p)? as usize];
            (r > 0.0).then_some((d, r))
        })
        .collect();
    (flow, reroute)
}

/// A stripped bush with its rerouted trips on the shortest paths at costs `cost`, or, when those would close a
/// cycle with the bush's links, on the shortest paths that go forward in its topological order; `None` when a
/// destination is no longer reachable that way (the origin then starts afresh).
fn repair_bush(
    tree: &mut Tree,
    add: &mut [f64],
    net: &Network,
    cost: &[f64],
    origin: usize,
    dests: &[(u32, f64)],
    stripped: Stripped,
) -> Option<Bush> {
    let root = net.zone_node(origin);
    tree.search(net, cost, root);
    if stripped.reroute.iter().any(|(d, _)| !tree.reached(*d)) {
        return None;
    }
    tree.load(net, &stripped.reroute, add);
    let preds: Vec<u32> = tree
        .settled
        .iter()
        .map(|&n| tree.pred[n as usize])
        .collect();
    let mut flows: Vec<(u32, f64)> = Vec::new();
    for &l in &preds {
        if l != NONE && add[l as usize] != 0.0 {
            flows.push((l, std::mem::take(&mut add[l as usize])));
        }
    }
    // the bush with the new paths; else without its links that carry nothing (one of them may close the cycle)
    for keep_empty in [true, false] {
        let mut edges: Vec<(u32, u32, u32, f64)> = stripped
            .edges
            .iter()
            .filter(|e| keep_empty || e.3 > 0.0)
            .copied()
            .collect();
        for &(l, f) in &flows {
            add[l as usize] = f;
        }
        let links: Vec<u32> = flows.iter().map(|e| e.0).collect();
        edges = with_flows(net, edges, add, &links);
        if let Some(bush) = Bush::from_edges(origin, root, net.node_count(), &edges, dests.to_vec())
        {
            return Some(bush);
        }
    }
    // the shortest paths would close a cycle with the flow: paths that only go forward in the bush's order
    let preds = forward_paths(net, cost, root, &stripped.order, &stripped.reroute, add)?;
    let edges = with_flows(net, stripped.edges, add, &preds);
    Bush::from_edges(origin, root, net.node_count(), &edges, dests.to_vec())
}

/// `edges` with the flows of `add` on links `links` added (and `add` zeroed there).
fn with_flows(
    net: &Network,
    mut edges: Vec<(u32, u32, u32, f64)>,
    add: &mut [f64],
    links: &[u32],
) -> Vec<(u32, u32, u32, f64)> {
    let mut index = vec![NONE; net.link_count()];
    for (i, e) in edges.iter().enumerate() {
        index[e.2 as usize] = i as u32;
    }
    for &l in links {
        if l == NONE {
            continue;
        }
        let f = std::mem::take(&mut add[l as usize]);
        if f == 0.0 {
            continue;
        }
        match index[l as usize] {
            NONE => {
                let link = net.link(l);
                index[l as usize] = edges.len() as u32;
                edges.push((link.from, link.to, l, f));
            }
            i => edges[i as usize].3 += f,
        }
    }
    edges
}

/// Loads `trips` onto the shortest paths from `root` that never go backward in the topological order `order` of a
/// bush: between its nodes only from an earlier to a later one, out of it freely, and never back into it from a
/// node outside (those come after all its nodes, in the order they are settled). Adds the flows to `add` and
/// returns the tree's links; `None` when a destination cannot be reached that way.
fn forward_paths(
    net: &Network,
    cost: &[f64],
    root: u32,
    order: &[u32],
    trips: &[(u32, f64)],
    add: &mut [f64],
) -> Option<Vec<u32>> {
    let n = net.node_count();
    let mut rank = vec![NONE; n];
    for (p, &node) in order.iter().enumerate() {
        rank[node as usize] = p as u32;
    }
    let mut dist = vec![f64::INFINITY; n];
    let mut pred = vec![NONE; n];
    let mut done = vec![false; n];
    let mut settled = Vec::new();
    let mut heap = std::collections::BinaryHeap::new();
    dist[root as usize] = 0.0;
    heap.push(std::cmp::Reverse((0f64.to_bits(), root)));
    let links = net.links();
    while let Some(std::cmp::Reverse((bits, i))) = heap.pop() {
        if done[i as usize] || f64::from_bits(bits) > dist[i as usize] {
            continue;
        }
        done[i as usize] = true;
        settled.push(i);
        if i != root && !net.passable(i) {
            continue;
        }
        for &l in net.out_links(i) {
            let j = links[l as usize].to;
            let (ri, rj) = (rank[i as usize], rank[j as usize]);
            let forward = match (ri != NONE, rj != NONE) {
                (true, true) => ri < rj,
                (true, false) => true,
                (false, true) => false,
                (false, false) => !done[j as usize],
            };
            let v = dist[i as usize] + cost[l as usize];
            if forward && v < dist[j as usize] {
                dist[j as usize] = v;
                pred[j as usize] = l;
                heap.push(std::cmp::Reverse((v.to_bits(), j)));
            }
        }
    }
    if trips.iter().any(|(d, _)| !done[*d as usize]) {
        return None;
    }
    let mut load = vec![0.0; n];
    for &(d, v) in trips {
        load[d as usize] += v;
    }
    for &node in settled.iter().rev() {
        let v = load[node as usize];
        let l = pred[node as usize];
        if v != 0.0 && l != NONE {
            add[l as usize] += v;
            load[links[l as usize].from as usize] += v;
        }
    }
    Some(settled.iter().map(|&node| pred[node as usize]).collect())
}
