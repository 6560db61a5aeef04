//! One-to-all shortest paths under the assignment's rules (open links only; no passing through centroids other than
//! the origin) and all-or-nothing loading of an origin's trips onto the tree.
//!
//! Dijkstra over the network's forward star with link costs that are positive by validation, on an indexed 4-ary
//! heap (a node is in the heap at most once and its key decreases in place: on Chicago-Sketch a search takes a
//! third of the time it took on a binary heap of (cost, node) entries with stale duplicates). It is separate from
//! `twin_graph`'s search because of the through-node rule and because the assignment wants the settle order (a
//! topological order of the tree, used to build bushes and to load trips in one backward sweep).

use super::Network;

pub(crate) const NONE: u32 = u32::MAX;

/// Reusable search arrays for one thread.
#[derive(Debug, Default)]
pub(crate) struct Tree {
    pub dist: Vec<f64>,
    pub pred: Vec<u32>,
    /// Nodes in the order they were settled: the root first, every node after its predecessor.
    pub settled: Vec<u32>,
    heap: Heap,
    load: Vec<f64>,
}

/// A min-heap of nodes by cost, 4-ary, with each node's place in it (`NONE` when absent) for decreasing keys.
#[derive(Debug, Default)]
struct Heap {
    items: Vec<(f64, u32)>,
    place: Vec<u32>,
}

impl Heap {
    fn new(nodes: usize) -> Heap {
        Heap {
            items: Vec::new(),
            place: vec![NONE; nodes],
        }
    }

    fn clear(&mut self) {
        for &(_, n) in &self.items {
            self.place[n as usize] = NONE;
        }
        self.items.clear();
    }

    /// Inserts `node` with cost `key`, or lowers its cost to `key` (which must not be higher).
    #[inline]
    fn push_or_decrease(&mut self, node: u32, key: f64) {
        let i = match self.place[node as usize] {
            NONE => {
                self.items.push((key, node));
                self.items.len() - 1
            }
            i => {
                self.items[i as usize].0 = key;
                i as usize
            }
        };
        self.up(i);
    }

    #[inline]
    fn up(&mut self, mut i: usize) {
        let item = self.items[i];
        while i > 0 {
            let parent = (i - 1) / 4;
            let p = self.items[parent];
            if p.0 <= item.0 {
                break;
            }
            self.items[i] = p;
            self.place[p.1 as usize] = i as u32;
            i = parent;
        }
        self.items[i] = item;
        self.place[item.1 as usize] = i as u32;
    }

    #[inline]
    fn pop(&mut self) -> Option<(f64, u32)> {
        let top = *self.items.first()?;
        self.place[top.1 as usize] = NONE;
        let last = self.items.pop().expect("not empty");
        let len = self.items.len();
        if len > 0 {
            // sift the last item down from the root
            let mut i = 0;
            loop {
                let first = 4 * i + 1;
                if first >= len {
                    break;
                }
                let mut best = first;
                let mut key = self.items[first].0;
                for c in first + 1..(first + 4).min(len) {
                    if self.items[c].0 < key {
                        best = c;
                        key = self.items[c].0;
                    }
                }
                if key >= last.0 {
                    break;
                }
                self.items[i] = self.items[best];
                self.place[self.items[i].1 as usize] = i as u32;
                i = best;
            }
            self.items[i] = last;
            self.place[last.1 as usize] = i as u32;
        }
        Some(top)
    }
}

impl Tree {
    pub fn new(nodes: usize) -> Tree {
        Tree {
            dist: vec![f64::INFINITY; nodes],
            pred: vec![NONE; nodes],
            settled: Vec::with_capacity(nodes),
            heap: Heap::new(nodes),
            load: vec![0.0; nodes],
        }
    }

    /// Dijkstra from `root` with per-link `cost` (non-negative).
    pub fn search(&mut self, net: &Network, cost: &[f64], root: u32) {
        for &n in &self.settled {
            self.dist[n as usize] = f64::INFINITY;
            self.pred[n as usize] = NONE;
        }
        // nodes reached but never settled cannot exist: Dijkstra settles everything it reaches
        self.settled.clear();
        self.heap.clear();
        let (dist, pred) = (&mut self.dist, &mut self.pred);
        dist[root as usize] = 0.0;
        self.heap.push_or_decrease(root, 0.0);
        let links = net.links();
        while let Some((d, node)) = self.heap.pop() {
            self.settled.push(node);
            if node != root && !net.passable(node) {
                continue;
            }
            for &l in net.out_links(node) {
                let next = d + cost[l as usize];
                let w = links[l as usize].to as usize;
                if next < dist[w] {
                    dist[w] = next;
                    pred[w] = l;
                    self.heap.push_or_decrease(w as u32, next);
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
