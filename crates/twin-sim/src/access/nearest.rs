//! The `k` nearest destinations of one category from every node of the network, by one multi-source search over the
//! reversed network (a k-label Dijkstra), and the exact incremental update when a destination is added.
//!
//! Written here rather than taken from a crate: no Rust graph crate offers k distinct nearest sources, and the search
//! is the hot loop of the whole model (all homes × all categories). Each node keeps a list of its `k` best
//! candidates `(seconds, destination)` so far, with distinct destinations; a candidate enters the priority queue only
//! when it enters a list (which bounds the queue's traffic by the lists' improvements, not by the number of ways a
//! destination reaches a node), and is spread to the neighbours when it leaves the queue still in its list. Entries
//! leave the queue in increasing time, so an entry still listed when it leaves is final: every shorter way to that
//! node from that destination has been spread already. A candidate that does not make a node's list is not needed
//! at any node reached through it either: that node gets `k` distinct destinations at most as far through the same
//! node.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use twin_graph::NodeIdx;

use super::graph::AccessGraph;

/// Where a place meets the network: nodes with the seconds between the place and each (at most a few).
pub type Anchor = Vec<(NodeIdx, f64)>;

#[derive(Debug, Clone, Copy, PartialEq)]
struct Item {
    s: f64,
    node: NodeIdx,
    source: u32,
}

impl Eq for Item {}

impl Ord for Item {
    fn cmp(&self, other: &Self) -> Ordering {
        // a min-heap on time; ties by node and source so that the order is deterministic
        other
            .s
            .total_cmp(&self.s)
            .then_with(|| other.node.cmp(&self.node))
            .then_with(|| other.source.cmp(&self.source))
    }
}

impl PartialOrd for Item {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A monotone priority queue on times (a radix heap: Ahuja, Mehlhorn, Orlin & Tarjan 1990): what Dijkstra needs,
/// since it never asks for a time below the last one taken out. Keys are the times' bit patterns, which order
/// non-negative floats as integers; an item sits in the bucket of the highest bit where its key differs from the
/// last key taken out, so that a push is O(1) and each item moves down at most 64 times.
struct RadixHeap {
    last: u64,
    buckets: Vec<Vec<(u64, NodeIdx, u32)>>,
    len: usize,
}

impl RadixHeap {
    fn new() -> RadixHeap {
        RadixHeap {
            last: 0,
            buckets: (0..65).map(|_| Vec::new()).collect(),
            len: 0,
        }
    }

    fn bucket(&self, key: u64) -> usize {
        (64 - (key ^ self.last).leading_zeros()) as usize
    }

    /// `s` must be at least the last time popped (and not negative).
    fn push(&mut self, s: f64, node: NodeIdx, source: u32) {
        let key = s.to_bits();
        debug_assert!(key >= self.last);
        let b = self.bucket(key);
        self.buckets[b].push((key, node, source));
        self.len += 1;
    }

    fn pop(&mut self) -> Option<(f64, NodeIdx, u32)> {
        if self.len == 0 {
            return None;
        }
        if self.buckets[0].is_empty() {
            let i = (1..65).find(|&i| !self.buckets[i].is_empty())?;
            let items = std::mem::take(&mut self.buckets[i]);
            self.last = items.iter().map(|x| x.0).min()?;
            for it in &items {
                let b = self.bucket(it.0);
                self.buckets[b].push(*it);
            }
            // give the emptied bucket its allocation back
            let mut v = items;
            v.clear();
            self.buckets[i] = v;
        }
        let (key, node, source) = self.buckets[0].pop()?;
        self.len -= 1;
        Some((f64::from_bits(key), node, source))
    }
}

/// The `k` nearest destinations (of one category) of every node, within `max_s` seconds.
#[derive(Debug, Clone)]
pub struct KNearest {
    k: usize,
    max_s: f64,
    /// `k` slots per node, in increasing time: `(seconds, destination)` at `lab[v * k + i]` for `i < count[v]`, side
    /// by side so that one node's labels share a cache line.
    lab: Vec<(f64, u32)>,
    count: Vec<u8>,
}

impl KNearest {
    /// Searches from every destination at once. `destinations[i]` is where destination `i` meets the network: each
    /// `(node, seconds)` says that from `node` the destination is `seconds` away. `k` is at most 255.
    pub fn compute(g: &AccessGraph, k: usize, max_s: f64, destinations: &[Anchor]) -> KNearest {
        let k = k.clamp(1, 255);
        let n = g.node_count();
        let mut out = KNearest {
            k,
            max_s,
            lab: vec![(f64::INFINITY, u32::MAX); n * k],
            count: vec![0; n],
        };
        // each node's list holds its best `k` candidates so far (distinct destinations, by time); a candidate enters
        // the queue only when it enters a list, and leaves it to spread only if it is still there when popped
        let mut heap = RadixHeap::new();
        for (i, anchor) in destinations.iter().enumerate() {
            for &(node, s) in anchor {
                if s >= 0.0
                    && s <= max_s
                    && (node as usize) < n
                    && out.offer(node as usize, s, i as u32)
                {
                    heap.push(s, node, i as u32);
                }
            }
        }
        while let Some((s, node, source)) = heap.pop() {
            let v = node as usize;
            let c = out.count[v] as usize;
            let base = v * k;
            // stale: replaced by a better candidate (or the same destination nearer)
            if !(0..c).any(|i| out.lab[base + i].1 == source && out.lab[base + i].0 == s) {
                continue;
            }
            for (u, t) in g.into(node) {
                let su = s + t;
                if su <= max_s && out.offer(u as usize, su, source) {
                    heap.push(su, u, source);
                }
            }
        }
        out
    }

    /// Puts candidate `(s, source)` in node `v`'s list if it is among its `k` best (a destination once, at its
    /// nearest); true when it went in.
    fn offer(&mut self, v: usize, s: f64, source: u32) -> bool {
        let k = self.k;
        let base = v * k;
        let mut c = self.count[v] as usize;
        if let Some(i) = (0..c).find(|&i| self.lab[base + i].1 == source) {
            if self.lab[base + i].0 <= s {
                return false;
            }
            // the same destination, nearer: out with the old entry
            for j in i..c - 1 {
                self.lab[base + j] = self.lab[base + j + 1];
            }
            c -= 1;
        } else if c == k && s >= self.lab[base + k - 1].0 {
            return false;
        }
        let at = (0..c).find(|&i| self.lab[base + i].0 > s).unwrap_or(c);
        let last = if c == k { k - 1 } else { c };
        for j in (at..last).rev() {
            self.lab[base + j + 1] = self.lab[base + j];
        }
        self.lab[base + at] = (s, source);
        self.count[v] = (c + usize::from(c < k)) as u8;
        true
    }

    pub fn k(&self) -> usize {
        self.k
    }

    pub fn max_seconds(&self) -> f64 {
        self.max_s
    }

    /// The labels of a node, nearest first: `(seconds, destination)`.
    pub fn at(&self, node: NodeIdx) -> impl Iterator<Item = (f64, u32)> + '_ {
        let v = node as usize;
        let c = self.count[v] as usize;
        let r = v * self.k..v * self.k + c;
        self.lab[r].iter().copied()
    }

    /// The `k` nearest destinations of a place (its anchor: `(node, seconds from the place to the node)`), nearest
    /// first, each destination once.
    pub fn from_anchor(&self, anchor: &[(NodeIdx, f64)]) -> Vec<(f64, u32)> {
        let mut all: Vec<(f64, u32)> = Vec::with_capacity(anchor.len() * self.k);
        for &(node, s0) in anchor {
            if (node as usize) < self.count.len() {
                all.extend(
                    self.at(node)
                        .map(|(s, d)| (s + s0, d))
                        .filter(|&(s, _)| s <= self.max_s),
                );
            }
        }
        all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut out: Vec<(f64, u32)> = Vec::with_capacity(self.k);
        for (s, d) in all {
            if out.len() == self.k {
                break;
            }
            if !out.iter().any(|&(_, e)| e == d) {
                out.push((s, d));
            }
        }
        out
    }

    /// Adds destination `source` (an index not used yet) met at `anchor`, updating only the nodes it is among the
    /// `k` nearest of; returns those nodes. Equal to a new [`KNearest::compute`] with the destination included (ties
    /// at the `k`-th place aside).
    pub fn add(&mut self, g: &AccessGraph, source: u32, anchor: &[(NodeIdx, f64)]) -> Vec<NodeIdx> {
        let k = self.k;
        let mut best: HashMap<NodeIdx, f64> = HashMap::new();
        let mut heap = BinaryHeap::new();
        for &(node, s) in anchor {
            if s <= self.max_s && (node as usize) < self.count.len() {
                heap.push(Item { s, node, source });
            }
        }
        let mut changed = Vec::new();
        while let Some(Item { s, node, .. }) = heap.pop() {
            if best.contains_key(&node) {
                continue;
            }
            best.insert(node, s);
            let v = node as usize;
            let c = self.count[v] as usize;
            // no better than the k-th it holds: not here, nor anywhere reached through here
            if c == k && s >= self.lab[v * k + k - 1].0 {
                continue;
            }
            let slots = v * k..v * k + k;
            let at = self.lab[v * k..v * k + c]
                .iter()
                .position(|x| x.0 > s)
                .unwrap_or(c);
            let keep = c.min(k - 1);
            let ls = &mut self.lab[slots];
            for i in (at..keep).rev() {
                ls[i + 1] = ls[i];
            }
            ls[at] = (s, source);
            if c < k {
                self.count[v] += 1;
            }
            changed.push(node);
            for (u, t) in g.into(node) {
                let su = s + t;
                if su <= self.max_s && !best.contains_key(&u) {
                    heap.push(Item {
                        s: su,
                        node: u,
                        source,
                    });
                }
            }
        }
        changed
    }
}

/// Seconds from a place (its anchor: `(node, seconds from the place to the node)`) to every node, by a plain
/// Dijkstra on the forward network, up to `max_s`: the one-to-all search the tests check [`KNearest`] against, and
/// the search of isochrones.
pub fn from_place(g: &AccessGraph, anchor: &[(NodeIdx, f64)], max_s: f64) -> Vec<f64> {
    let n = g.node_count();
    let mut dist = vec![f64::INFINITY; n];
    let mut heap = BinaryHeap::new();
    for &(node, s) in anchor {
        if s <= max_s && (node as usize) < n && s < dist[node as usize] {
            dist[node as usize] = s;
            heap.push(Item { s, node, source: 0 });
        }
    }
    while let Some(Item { s, node, .. }) = heap.pop() {
        if s > dist[node as usize] {
            continue;
        }
        for (u, t) in g.out_of(node) {
            let su = s + t;
            if su <= max_s && su < dist[u as usize] {
                dist[u as usize] = su;
                heap.push(Item {
                    s: su,
                    node: u,
                    source: 0,
                });
            }
        }
    }
    dist
}
