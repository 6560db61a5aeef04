//! The walking or cycling network as travel times: one mode's links of a [`twin_graph::Network`] with their time in
//! seconds, in compact forward and reverse adjacency arrays for the searches of [`super::nearest`].
//!
//! Time of a link = length / speed, plus half a crossing penalty at each end that is a crossing of a major road
//! (a node where a link for people only — a footway, a crossing, a cycleway — meets a car link of at least
//! `major_capacity_vph` per direction). Half at each end keeps a path's time the same in both directions: a path
//! pays the whole penalty at every crossing it passes through, half at a crossing it starts or ends on.

use twin_graph::{LinkIdx, Mode, Network, NodeIdx};

/// How people move on the network.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Movement {
    /// `Walk` or `Bike`.
    pub mode: Mode,
    /// Metres per second on every link of the mode.
    pub speed_mps: f64,
    /// Seconds lost crossing a major road (waiting for a gap or a green light).
    pub crossing_s: f64,
    /// A car link of at least this capacity per direction (veh/h) is a major road.
    pub major_capacity_vph: f64,
}

impl Movement {
    /// Walking at `speed_mps` (see [`super::WalkProfile`]); 15 s at each major crossing.
    pub fn walk(speed_mps: f64) -> Movement {
        Movement {
            mode: Mode::Walk,
            speed_mps,
            crossing_s: 15.0,
            major_capacity_vph: 1000.0,
        }
    }

    /// Cycling at `speed_mps`; 15 s at each major crossing.
    pub fn bike(speed_mps: f64) -> Movement {
        Movement {
            mode: Mode::Bike,
            speed_mps,
            crossing_s: 15.0,
            major_capacity_vph: 1000.0,
        }
    }
}

/// One mode's network as travel times (see the module doc).
#[derive(Debug, Clone)]
pub struct AccessGraph {
    pub(crate) movement: Movement,
    /// Seconds per network link; `INFINITY` for links the mode may not use.
    pub(crate) link_s: Vec<f64>,
    /// Reverse adjacency: for node `v`, `rev[rev_start[v]..rev_start[v+1]]` are the tails `u` of its links `u → v`
    /// with their times, side by side in 8 bytes (a node's links are one read from memory; an `f32` time is within
    /// 4 µs of the link's on a 100 s link, 0.1 ms on a 30-minute one, and the searches add them up in `f64`).
    pub(crate) rev_start: Vec<u32>,
    pub(crate) rev: Vec<(NodeIdx, f32)>,
    /// Forward adjacency, the same way (for searches from a point: isochrones, brute-force checks).
    pub(crate) fwd_start: Vec<u32>,
    pub(crate) fwd: Vec<(NodeIdx, f32)>,
    /// Nodes that are crossings of a major road.
    pub(crate) crossing: Vec<bool>,
}

impl AccessGraph {
    /// The mode's links of `net` as travel times.
    pub fn build(net: &Network, movement: Movement) -> AccessGraph {
        Self::build_with_crossings(net, movement, None)
    }

    /// As [`AccessGraph::build`], with the crossings given (a baseline's, for a scenario's network of the same
    /// nodes): a crossing is a place, and closing the footway that meets the road there must not take the wait away
    /// from the others crossing there. Crossings of another length than the network's nodes are ignored.
    pub fn build_with_crossings(
        net: &Network,
        movement: Movement,
        crossings: Option<&[bool]>,
    ) -> AccessGraph {
        let n = net.node_count();
        let from = net.link_from();
        let to = net.link_to();
        let modes = net.link_modes();
        let cap = net.capacity_vph();
        // crossings: nodes touching both a major car link and a link for people only
        let mut major = vec![false; n];
        let mut people_only = vec![false; n];
        for l in 0..net.link_count() {
            let m = modes[l];
            let ends = [from[l] as usize, to[l] as usize];
            if m.contains(Mode::Car) && cap[l] >= movement.major_capacity_vph {
                ends.iter().for_each(|&v| major[v] = true);
            }
            if !m.contains(Mode::Car) && (m.contains(Mode::Walk) || m.contains(Mode::Bike)) {
                ends.iter().for_each(|&v| people_only[v] = true);
            }
        }
        let crossing: Vec<bool> = match crossings {
            Some(c) if c.len() == n => c.to_vec(),
            _ => (0..n).map(|v| major[v] && people_only[v]).collect(),
        };
        let half = movement.crossing_s / 2.0;
        let link_s: Vec<f64> = (0..net.link_count())
            .map(|l| {
                if !modes[l].contains(movement.mode) {
                    return f64::INFINITY;
                }
                let mut s = net.length_m()[l] / movement.speed_mps;
                if crossing[from[l] as usize] {
                    s += half;
                }
                if crossing[to[l] as usize] {
                    s += half;
                }
                s
            })
            .collect();
        let edges: Vec<(NodeIdx, NodeIdx, f64)> = (0..link_s.len())
            .map(|l| (from[l], to[l], link_s[l]))
            .collect();
        assemble(movement, link_s, crossing, n, &edges)
    }

    /// A graph of `n` nodes from directed edges `(from, to, seconds)` given as they are (no network, no crossings):
    /// for benchmarks and for networks made elsewhere. Edges with an end `>= n` or a time that is not finite and
    /// non-negative are left out.
    pub fn from_edges(
        n: usize,
        edges: &[(NodeIdx, NodeIdx, f64)],
        movement: Movement,
    ) -> AccessGraph {
        let kept: Vec<(NodeIdx, NodeIdx, f64)> =
            edges.iter().copied().filter(|e| usable(n, e)).collect();
        let secs = kept.iter().map(|e| e.2).collect();
        assemble(movement, secs, vec![false; n], n, &kept)
    }

    /// The same graph with more edges `(from, to, seconds)` (new paths of a scenario); the network's links keep their
    /// times and crossings.
    #[must_use]
    pub fn with_edges(&self, extra: &[(NodeIdx, NodeIdx, f64)]) -> AccessGraph {
        let mut all = self.edges();
        all.extend_from_slice(extra);
        assemble(
            self.movement,
            self.link_s.clone(),
            self.crossing.clone(),
            self.node_count(),
            &all,
        )
    }

    /// Every usable link as `(from, to, seconds)`.
    pub fn edges(&self) -> Vec<(NodeIdx, NodeIdx, f64)> {
        let mut out = Vec::with_capacity(self.fwd.len());
        for v in 0..self.node_count() {
            for (u, s) in self.out_of(v as NodeIdx) {
                out.push((v as NodeIdx, u, s));
            }
        }
        out
    }

    pub fn movement(&self) -> Movement {
        self.movement
    }

    pub fn node_count(&self) -> usize {
        self.rev_start.len() - 1
    }

    /// Seconds to travel a network link (`INFINITY` where the mode may not).
    pub fn link_seconds(&self, link: LinkIdx) -> f64 {
        self.link_s[link as usize]
    }

    /// Whether a node is a crossing of a major road.
    pub fn is_crossing(&self, node: NodeIdx) -> bool {
        self.crossing[node as usize]
    }

    /// Which nodes are crossings of a major road (for a scenario's graph to keep: see
    /// [`AccessGraph::build_with_crossings`]).
    pub fn crossings(&self) -> &[bool] {
        &self.crossing
    }

    /// Number of nodes that are crossings of a major road.
    pub fn crossing_count(&self) -> usize {
        self.crossing.iter().filter(|&&c| c).count()
    }

    /// The links into `v` as `(tail, seconds)`.
    pub(crate) fn into(&self, v: NodeIdx) -> impl Iterator<Item = (NodeIdx, f64)> + '_ {
        let r = self.rev_start[v as usize] as usize..self.rev_start[v as usize + 1] as usize;
        self.rev[r].iter().map(|&(u, s)| (u, f64::from(s)))
    }

    /// The links out of `v` as `(head, seconds)`.
    pub(crate) fn out_of(&self, v: NodeIdx) -> impl Iterator<Item = (NodeIdx, f64)> + '_ {
        let r = self.fwd_start[v as usize] as usize..self.fwd_start[v as usize + 1] as usize;
        self.fwd[r].iter().map(|&(u, s)| (u, f64::from(s)))
    }
}

/// Whether an edge has both ends among `n` nodes and a finite, non-negative time.
fn usable(n: usize, &(a, b, s): &(NodeIdx, NodeIdx, f64)) -> bool {
    (a as usize) < n && (b as usize) < n && s.is_finite() && s >= 0.0
}

/// The graph over the usable `edges`, with the network links' times `link_s` and the crossings as given.
fn assemble(
    movement: Movement,
    link_s: Vec<f64>,
    crossing: Vec<bool>,
    n: usize,
    edges: &[(NodeIdx, NodeIdx, f64)],
) -> AccessGraph {
    let kept: Vec<&(NodeIdx, NodeIdx, f64)> = edges.iter().filter(|e| usable(n, e)).collect();
    let from: Vec<NodeIdx> = kept.iter().map(|e| e.0).collect();
    let to: Vec<NodeIdx> = kept.iter().map(|e| e.1).collect();
    let secs: Vec<f64> = kept.iter().map(|e| e.2).collect();
    let ((rev_start, rev), (fwd_start, fwd)) = rayon::join(
        || adjacency(n, &secs, &to, &from),
        || adjacency(n, &secs, &from, &to),
    );
    AccessGraph {
        movement,
        link_s,
        rev_start,
        rev,
        fwd_start,
        fwd,
        crossing,
    }
}

/// CSR arrays of the edges (all usable: see [`assemble`]) grouped by `key` node, listing the `other` end and the
/// time.
fn adjacency(
    n: usize,
    secs: &[f64],
    key: &[NodeIdx],
    other: &[NodeIdx],
) -> (Vec<u32>, Vec<(NodeIdx, f32)>) {
    let mut start = vec![0u32; n + 1];
    for &k in key {
        start[k as usize + 1] += 1;
    }
    for i in 0..n {
        start[i + 1] += start[i];
    }
    let m = start[n] as usize;
    let mut out = vec![(0 as NodeIdx, 0.0f32); m];
    let mut fill = start.clone();
    for ((&k, &o), &s) in key.iter().zip(other).zip(secs) {
        let at = fill[k as usize] as usize;
        // (a time beyond f32's range, absurd as it is, stays finite)
        out[at] = (o, (s as f32).min(f32::MAX));
        fill[k as usize] += 1;
    }
    (start, out)
}
