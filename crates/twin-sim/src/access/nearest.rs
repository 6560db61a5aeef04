//! The `k` nearest destinations of one category from every node of the network, by one multi-source search over the
//! reversed network (a k-label Dijkstra), and the exact incremental update when a destination is added.
//!
//! Written here rather than taken from a crate: no Rust graph crate offers k distinct nearest sources, and the search
//! is the hot loop of the whole model (all homes × all categories). Each node keeps a list of its `k` best
//! candidates `(seconds, destination)` so far, with distinct destinations; a candidate enters the priority queue only
//! when it enters a list (which bounds the queue's traffic by the lists' improvements, not by the number of ways a
//! destination reaches a node), and is spread to the neighbours when it leaves the queue still in its list. A
//! candidate that does not make a node's list is not needed at any node reached through it either: that node gets
//! `k` distinct destinations at most as far through the same node. Every label is a real time, so the lists end
//! right in whatever order entries leave the queue; leaving in increasing time makes them final when they leave
//! (nothing is spread twice). The queue keeps that order to within one-second buckets, taken out whole: the search
//! is bound by memory reads far apart (a node's list, its links, its neighbours' lists), and a bucket's entries are
//! known ahead, so their reads are asked for before they are needed — twice as fast as a radix heap taking entries
//! out one by one in exact order on a million-node network.

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

/// The queue of the k-label search: buckets of `width` seconds (Δ-stepping: Meyer & Sanders 2003), each taken out
/// whole as a batch in any order. The search is label-correcting — a label spread before a better one arrives
/// only offers candidates that are not needed — so the order inside a bucket costs some repeated work at most, and
/// buys batches whose memory reads can be asked for ahead (see [`KNearest::compute`]). A ring of `RING` buckets
/// holds the next `RING × width` seconds; later items wait in a heap.
struct Buckets {
    width: f64,
    ring: Vec<Vec<(f64, NodeIdx, u32)>>,
    /// Absolute number of the current bucket.
    base: u64,
    far: BinaryHeap<Item>,
    in_ring: usize,
}

impl Buckets {
    const RING: u64 = 4096;

    fn new(width: f64) -> Buckets {
        Buckets {
            width,
            ring: (0..Self::RING).map(|_| Vec::new()).collect(),
            base: 0,
            far: BinaryHeap::new(),
            in_ring: 0,
        }
    }

    /// The bucket of time `s`; absurd times (beyond 10¹⁵ s, or not finite) share the last one, which keeps the
    /// arithmetic of bucket numbers far from overflowing.
    #[inline]
    fn bucket(&self, s: f64) -> u64 {
        const LAST: u64 = 1 << 60;
        let b = s / self.width;
        if b < LAST as f64 {
            b as u64
        } else {
            LAST
        }
    }

    /// `s` at least the current bucket's start (a time below it joins the current bucket).
    #[inline]
    fn push(&mut self, s: f64, node: NodeIdx, source: u32) {
        let b = self.bucket(s).max(self.base);
        if b < self.base + Self::RING {
            self.ring[(b % Self::RING) as usize].push((s, node, source));
            self.in_ring += 1;
        } else {
            self.far.push(Item { s, node, source });
        }
    }

    /// Swaps the next non-empty bucket's items into `batch` (which must be empty); false when there are none.
    fn next_batch(&mut self, batch: &mut Vec<(f64, NodeIdx, u32)>) -> bool {
        loop {
            if self.in_ring == 0 {
                // jump to the nearest far item's bucket
                let Some(top) = self.far.peek() else {
                    return false;
                };
                self.base = self.base.max(self.bucket(top.s));
            }
            while let Some(top) = self.far.peek() {
                if self.bucket(top.s) >= self.base + Self::RING {
                    break;
                }
                let Item { s, node, source } = self.far.pop().expect("peeked");
                self.push(s, node, source);
            }
            let slot = &mut self.ring[(self.base % Self::RING) as usize];
            if !slot.is_empty() {
                std::mem::swap(slot, batch);
                self.in_ring -= batch.len();
                return true;
            }
            self.base += 1;
        }
    }
}

/// The `k` nearest destinations (of one category) of every node, within `max_s` seconds.
#[derive(Debug, Clone)]
pub struct KNearest {
    k: usize,
    max_s: f64,
    /// `k` slots per node, in increasing time: `(seconds, destination)` at `lab[v * k + i]`, side by side so that one
    /// node's labels share a cache line; the empty slots last, as [`EMPTY`] (no count to read from elsewhere).
    lab: Vec<(f64, u32)>,
    n: usize,
}

/// Width of the search's buckets (seconds): a few steps' walk, so that a bucket of a city's search holds hundreds of
/// labels to read ahead for, and few are spread before a better one arrives.
const BUCKET_S: f64 = 1.0;

/// How many labels of a batch ahead their memory is asked for.
const AHEAD: usize = 24;

/// An empty slot: no destination, infinitely far.
const EMPTY: (f64, u32) = (f64::INFINITY, u32::MAX);

impl KNearest {
    /// Searches from every destination at once. `destinations[i]` is where destination `i` meets the network: each
    /// `(node, seconds)` says that from `node` the destination is `seconds` away. `k` is at most 255.
    pub fn compute(g: &AccessGraph, k: usize, max_s: f64, destinations: &[Anchor]) -> KNearest {
        let k = k.clamp(1, 255);
        let n = g.node_count();
        let mut out = KNearest {
            k,
            max_s,
            lab: vec![EMPTY; n * k],
            n,
        };
        // each node's list holds its best `k` candidates so far (distinct destinations, by time); a candidate enters
        // the queue only when it enters a list, and leaves it to spread only if it is still there when taken out
        let mut heap = Buckets::new(BUCKET_S);
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
        let mut batch = Vec::new();
        while heap.next_batch(&mut batch) {
            // the batch's nodes are far apart in memory: their lists and links are asked for AHEAD items before
            // they are read (the links in two steps, as where they start must be read first)
            for (j, &(s, node, source)) in batch.iter().enumerate() {
                if let Some(&(_, w, _)) = batch.get(j + AHEAD) {
                    prefetch(&out.lab[out.slot(w)]);
                    prefetch(&g.rev_start[w as usize]);
                }
                if let Some(&(_, w, _)) = batch.get(j + AHEAD * 2 / 3) {
                    if let Some(first) = g.rev.get(g.rev_start[w as usize] as usize) {
                        prefetch(first);
                    }
                }
                if let Some(&(_, w, _)) = batch.get(j + AHEAD / 3) {
                    for (u, _) in g.into(w) {
                        prefetch(&out.lab[out.slot(u)]);
                    }
                }
                let base = out.slot(node);
                // stale: replaced by a better candidate (or the same destination nearer)
                if !out.lab[base..base + k].contains(&(s, source)) {
                    continue;
                }
                for (u, t) in g.into(node) {
                    let su = s + t;
                    if su <= max_s && out.offer(u as usize, su, source) {
                        heap.push(su, u, source);
                    }
                }
            }
            batch.clear();
        }
        out
    }

    /// Puts candidate `(s, source)` in node `v`'s list if it is among its `k` best (a destination once, at its
    /// nearest); true when it went in.
    fn offer(&mut self, v: usize, s: f64, source: u32) -> bool {
        let k = self.k;
        let first = self.slot(v as NodeIdx);
        let ls = &mut self.lab[first..first + k];
        // (the k-th is infinitely far while the list is not full)
        if s >= ls[k - 1].0 {
            return false;
        }
        // where the destination leaves the list from: its slot if listed (it must be nearer now), else the last
        let from = match ls.iter().position(|x| x.1 == source) {
            Some(i) if ls[i].0 <= s => return false,
            Some(i) => i,
            None => k - 1,
        };
        let at = ls[..from].iter().position(|x| x.0 > s).unwrap_or(from);
        ls.copy_within(at..from, at + 1);
        ls[at] = (s, source);
        true
    }

    /// Where node `v`'s slots start.
    #[inline]
    fn slot(&self, v: NodeIdx) -> usize {
        v as usize * self.k
    }

    pub fn k(&self) -> usize {
        self.k
    }

    pub fn max_seconds(&self) -> f64 {
        self.max_s
    }

    /// The labels of a node, nearest first: `(seconds, destination)`.
    pub fn at(&self, node: NodeIdx) -> impl Iterator<Item = (f64, u32)> + '_ {
        let first = self.slot(node);
        self.lab[first..first + self.k]
            .iter()
            .copied()
            .take_while(|x| x.1 != EMPTY.1)
    }

    /// The `k` nearest destinations of a place (its anchor: `(node, seconds from the place to the node)`), nearest
    /// first, each destination once.
    pub fn from_anchor(&self, anchor: &[(NodeIdx, f64)]) -> Vec<(f64, u32)> {
        let mut all: Vec<(f64, u32)> = Vec::with_capacity(anchor.len() * self.k);
        for &(node, s0) in anchor {
            if (node as usize) < self.n {
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
        let mut best: HashMap<NodeIdx, f64> = HashMap::new();
        let mut heap = BinaryHeap::new();
        for &(node, s) in anchor {
            if s <= self.max_s && (node as usize) < self.n {
                heap.push(Item { s, node, source });
            }
        }
        let mut changed = Vec::new();
        while let Some(Item { s, node, .. }) = heap.pop() {
            if best.contains_key(&node) {
                continue;
            }
            best.insert(node, s);
            // no better than the k-th it holds: not here, nor anywhere reached through here (a new destination, so
            // not in the list yet)
            if !self.offer(node as usize, s, source) {
                continue;
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

/// Asks the processor to bring `x`'s cache line in (a hint: nothing happens elsewhere than on x86-64).
#[inline(always)]
fn prefetch<T>(x: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads nothing and cannot fault; `x` is a valid reference.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>((x as *const T).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = x;
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
