//! One-to-all shortest paths under the assignment's rules (open links only; no passing through centroids other than
//! the origin) and all-or-nothing loading of an origin's trips onto the tree.
//!
//! A binary-heap Dijkstra over the network's forward star with link costs that are positive by validation. It is
//! separate from `twin_graph`'s search because of the through-node rule and because the assignment wants the settle
//! order (a topological order of the tree, used to build bushes and to load trips in one backward sweep).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::Network;

pub(crate) const NONE: u32 = u32::MAX;

/// Reusable search arrays for one thread.
#[derive(Debug, Default)]
pub(crate) struct Tree {
    pub dist: Vec<f64>,
    pub pred: Vec<u32>,
    /// Nodes in the order they were settled: the root first, every node after its predecessor.
    pub settled: Vec<u32>,
    heap: BinaryHeap<Reverse<(u64, u32)>>,
    load: Vec<f64>,
}

impl Tree {
    pub fn new(nodes: usize) -> Tree {
        Tree {
            dist: vec![f64::INFINITY; nodes],
            pred: vec![NONE; nodes],
            settled: Vec::with_capacity(nodes),
            heap: BinaryHeap::new(),
            load: vec![0.0; nodes],
        }
    }

    /// Dijkstra from `root` with per-link `cost` (non-negative; the bit pattern of a non-negative f64 orders as the
    /// number, which keeps the heap on integers).
    pub fn search(&mut self, net: &Network, cost: &[f64], root: u32) {
        for &n in &self.settled {
            self.dist[n as usize] = f64::INFINITY;
            self.pred[n as usize] = NONE;
        }
        // nodes reached but never settled cannot exist: Dijkstra settles everything it reaches
        self.settled.clear();
        self.heap.clear();
        self.dist[root as usize] = 0.0;
        self.heap.push(Reverse((0f64.to_bits(), root)));
        let links = net.links();
        while let Some(Reverse((bits, node))) = self.heap.pop() {
            let d = f64::from_bits(bits);
            if d > self.dist[node as usize] {
                continue;
            }
            self.settled.push(node);
            if node != root && !net.passable(node) {
                continue;
            }
            for &l in net.out_links(node) {
                let next = d + cost[l as usize];
                let w = links[l as usize].to as usize;
                if next < self.dist[w] {
                    self.dist[w] = next;
                    self.pred[w] = l;
                    self.heap.push(Reverse((next.to_bits(), w as u32)));
                }
            }
        }
    }

    /// Loads `trips` (destination node, trips) onto the tree of the last search, adding to `flows`; returns the sum
    /// over destinations of trips × path cost. Unreached destinations are skipped (the caller reports them).
    pub fn load(&mut self, net: &Network, trips: &[(u32, f64)], flows: &mut [f64]) -> f64 {
        let mut sptt = 0.0;
        for &(d, v) in trips {
            let dist = self.dist[d as usize];
            if dist.is_finite() {
                self.load[d as usize] += v;
                sptt += v * dist;
            }
        }
        let links = net.links();
        for &n in self.settled.iter().rev() {
            let v = std::mem::take(&mut self.load[n as usize]);
            let l = self.pred[n as usize];
            if v != 0.0 && l != NONE {
                flows[l as usize] += v;
                self.load[links[l as usize].from as usize] += v;
            }
        }
        sptt
    }

    /// Whether the last search reached `node`.
    pub fn reached(&self, node: u32) -> bool {
        self.dist[node as usize].is_finite()
    }
}
