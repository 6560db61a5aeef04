//! `urbantwin bench access`: the 15-minute city's searches, side by side with pandana's `nearest_pois` on the same
//! network and points of interest in the same run, and the targets of the model's issue.
//!
//! 1. The demo city (central Helsinki's OpenStreetMap extract, `--data` or the demo's cached copy): the whole model
//!    (`access::run`: walk network, homes and destinations on it, 10 categories, every home), median of [`RUNS`];
//!    and an incremental update (a new grocery next to a home), median over [`RUNS`] different homes.
//! 2. The same walk network handed to both tools as a plain graph (nodes, directed edges with times in seconds,
//!    rounded to 1/8 s so that pandana's integer thousandths and float32 results carry them exactly; every
//!    destination on the nearest of its anchor nodes): the nearest 3 destinations of each category from every node
//!    within 30 minutes, including preprocessing (ours: building the graph and one k-label search per category,
//!    in parallel; pandana's: its contraction hierarchy, then `set_pois` + `nearest_pois` per category). The
//!    distances are compared node by node (the largest relative difference).
//! 3. A generated `--grid-side`² grid (1,000,000 nodes by default; two-way streets of 5–60 s; 10 categories × 2,000
//!    destinations): the whole recomputation of ours alone (pandana needs about an hour there; see
//!    docs/benchmarks.md).
//!
//! The peer runs by the Python of a virtualenv with pandana (`--peer-python`, default
//! `~/.cache/urbantwin/pandana-venv/bin/python`); without it the peer rows are left out with the way to install
//! it. No assertion on time: targets are reported, not enforced.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{anyhow, bail, Result};
use rayon::prelude::*;
use serde_json::Value;
use twin_graph::NodeIdx;
use twin_sim::access::{self, AccessGraph, AccessOptions, KNearest, Movement, WalkProfile};

use super::{median, print_results, progress, BenchArgs, Goal, Row};

/// Timed runs of ours; the median is reported.
const RUNS: usize = 5;
/// Nearest destinations per category, and the search radius (seconds).
const K: usize = 3;
const MAX_S: f64 = 1800.0;
/// The targets.
const SPEEDUP_TARGET: f64 = 5.0;
const GRID_TARGET_S: f64 = 2.0;
const INCREMENTAL_TARGET_MS: f64 = 100.0;
const EXACT_TARGET: f64 = 1e-6;
const PEER_SCRIPT: &str = include_str!("../../../../benchmarks/pandana_peer.py");
const INSTALL_HINT: &str = "to measure the peer: python3 -m venv ~/.cache/urbantwin/pandana-venv && \
~/.cache/urbantwin/pandana-venv/bin/pip install -r benchmarks/requirements-pandana.txt (or --peer-python PATH)";

/// A plain graph with destinations on nodes: the problem both tools solve.
struct Plain {
    coords: Vec<(f64, f64)>,
    edges: Vec<(NodeIdx, NodeIdx, f64)>,
    /// (category, node) per destination.
    pois: Vec<(String, NodeIdx)>,
    categories: Vec<String>,
}

impl Plain {
    /// Ours, including preprocessing: the graph, then one search per category (in parallel).
    fn solve(&self) -> Vec<KNearest> {
        self.solve_timed().0
    }

    /// As [`Plain::solve`], with the seconds spent building the graph (the rest is the searches).
    fn solve_timed(&self) -> (Vec<KNearest>, f64) {
        let t = Instant::now();
        let g = AccessGraph::from_edges(self.coords.len(), &self.edges, Movement::walk(1.0));
        let build_s = t.elapsed().as_secs_f64();
        let fields = self
            .categories
            .par_iter()
            .map(|c| {
                let anchors: Vec<Vec<(NodeIdx, f64)>> = self
                    .pois
                    .iter()
                    .filter(|(cat, _)| cat == c)
                    .map(|&(_, v)| vec![(v, 0.0)])
                    .collect();
                KNearest::compute(&g, K, MAX_S, &anchors)
            })
            .collect();
        (fields, build_s)
    }

    fn write(&self, dir: &Path) -> Result<()> {
        use std::fmt::Write as _;
        let mut s = String::from("id,x,y\n");
        for (i, (x, y)) in self.coords.iter().enumerate() {
            writeln!(s, "{i},{x},{y}")?;
        }
        std::fs::write(dir.join("nodes.csv"), &s)?;
        let mut s = String::from("from,to,weight\n");
        for (a, b, w) in &self.edges {
            writeln!(s, "{a},{b},{w}")?;
        }
        std::fs::write(dir.join("edges.csv"), &s)?;
        let mut s = String::from("category,node,x,y\n");
        for (c, v) in &self.pois {
            let (x, y) = self.coords[*v as usize];
            writeln!(s, "{c},{v},{x},{y}")?;
        }
        std::fs::write(dir.join("pois.csv"), &s)?;
        Ok(())
    }
}

/// Rounds to 1/8 s (at least 1/8): exact in pandana's thousandths and in float32.
fn eighths(s: f64) -> f64 {
    ((s * 8.0).round() / 8.0).max(0.125)
}

/// splitmix64, for the generated grid.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A `side`² grid of two-way streets of 5–60 s (whole seconds), 10 categories × `side * 2` destinations.
fn grid(side: usize) -> Plain {
    let n = side * side;
    let coords = (0..n)
        .map(|i| {
            (
                24.0 + (i % side) as f64 * 0.001,
                60.0 + (i / side) as f64 * 0.0005,
            )
        })
        .collect();
    let mut edges = Vec::with_capacity(4 * n);
    for v in 0..n {
        let (x, y) = (v % side, v / side);
        for (u, ok) in [(v + 1, x + 1 < side), (v + side, y + 1 < side)] {
            if ok {
                let w = 5.0 + (mix(v as u64 * 2 + (u - v > 1) as u64) % 56) as f64;
                edges.push((v as NodeIdx, u as NodeIdx, w));
                edges.push((u as NodeIdx, v as NodeIdx, w));
            }
        }
    }
    let categories: Vec<String> = access::DAILY_NEEDS.iter().map(|s| s.to_string()).collect();
    let per = side * 2;
    let pois = categories
        .iter()
        .enumerate()
        .flat_map(|(c, cat)| {
            (0..per).map(move |i| {
                (
                    cat.clone(),
                    (mix((c * 1_000_003 + i) as u64) % n as u64) as NodeIdx,
                )
            })
        })
        .collect();
    Plain {
        coords,
        edges,
        pois,
        categories,
    }
}

struct PeerRun {
    total_s: f64,
    preprocess_s: f64,
    query_s: f64,
    version: String,
    threads: u64,
    /// Per category (in our order): n × k distances, +inf where none.
    dist: Vec<Vec<f64>>,
}

fn peer_python(explicit: Option<&Path>) -> std::result::Result<PathBuf, String> {
    let python = match explicit {
        Some(p) => p.to_path_buf(),
        None => std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default()
            .join(".cache/urbantwin/pandana-venv/bin/python"),
    };
    if !python.exists() {
        return Err(format!("no Python at {}; {INSTALL_HINT}", python.display()));
    }
    match Command::new(&python)
        .args(["-c", "import pandana"])
        .output()
    {
        Ok(o) if o.status.success() => Ok(python),
        Ok(o) => Err(format!(
            "{} cannot import pandana ({}); {INSTALL_HINT}",
            python.display(),
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .last()
                .unwrap_or("")
                .trim()
        )),
        Err(e) => Err(format!(
            "cannot run {}: {e}; {INSTALL_HINT}",
            python.display()
        )),
    }
}

fn run_peer(python: &Path, plain: &Plain) -> std::result::Result<PeerRun, String> {
    let dir = tempfile::Builder::new()
        .prefix("urbantwin-bench-access-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    plain
        .write(dir.path())
        .map_err(|e| format!("cannot write the peer's input: {e}"))?;
    let script = dir.path().join("pandana_peer.py");
    std::fs::write(&script, PEER_SCRIPT).map_err(|e| e.to_string())?;
    let out_dir = dir.path().join("out");
    let out = Command::new(python)
        .arg(&script)
        .arg("--dir")
        .arg(dir.path())
        .args(["--k", &K.to_string(), "--max-cost", &MAX_S.to_string()])
        .arg("--out")
        .arg(&out_dir)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(5).collect();
        return Err(format!(
            "the peer failed ({}): {}",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        ));
    }
    let line = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(line.trim())
        .map_err(|e| format!("the peer printed no JSON ({e}): {line}"))?;
    let n = plain.coords.len();
    let mut dist = Vec::new();
    for c in &plain.categories {
        let bytes =
            std::fs::read(out_dir.join(format!("{c}.f64"))).map_err(|e| format!("{c}.f64: {e}"))?;
        if bytes.len() != n * K * 8 {
            return Err(format!(
                "{c}.f64 has {} bytes, not {}",
                bytes.len(),
                n * K * 8
            ));
        }
        dist.push(
            bytes
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
                .collect(),
        );
    }
    let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    Ok(PeerRun {
        total_s: f("total_seconds"),
        preprocess_s: f("preprocess_seconds"),
        query_s: f("query_seconds"),
        version: v["version"].as_str().unwrap_or("?").to_string(),
        threads: v["threads"].as_u64().unwrap_or(0),
        dist,
    })
}

/// The largest relative difference between our distances and the peer's (both "none" counts as equal; one
/// without the other as infinitely different).
fn largest_difference(ours: &[KNearest], peer: &PeerRun, n: usize) -> f64 {
    let mut worst: f64 = 0.0;
    for (kn, theirs) in ours.iter().zip(&peer.dist) {
        for v in 0..n {
            let mine: Vec<f64> = kn.at(v as NodeIdx).map(|(s, _)| s).collect();
            for i in 0..K {
                let a = mine.get(i).copied().unwrap_or(f64::INFINITY);
                let b = theirs[v * K + i];
                let d = if a.is_infinite() && b.is_infinite() {
                    0.0
                } else if a.is_infinite() || b.is_infinite() {
                    f64::INFINITY
                } else {
                    (a - b).abs() / a.abs().max(1.0)
                };
                worst = worst.max(d);
            }
        }
    }
    worst
}

pub fn run(a: &BenchArgs) -> Result<()> {
    if a.grid_side < 2 {
        bail!("--grid-side must be at least 2");
    }
    let threads = rayon::current_num_threads();
    let mut rows: Vec<Row> = Vec::new();
    let mut notes: Vec<String> = Vec::new();

    // 1. the demo city, the whole model
    progress("reading the demo city");
    let entities = super::osm_entities(&super::extract(a)?)?;
    let (net, _) =
        twin_graph::entities::network_from_entities(&entities).map_err(|e| anyhow!("{e}"))?;
    let options = AccessOptions::new(Movement::walk(WalkProfile::Adult.speed_mps()));
    let mut times = Vec::new();
    let mut city = None;
    for _ in 0..RUNS {
        let t = Instant::now();
        let r = access::run(&net, &entities, &options);
        times.push(t.elapsed().as_secs_f64());
        city = Some(r);
    }
    let mut city = city.expect("runs");
    rows.push(Row::new(
        format!(
            "demo city, whole model: {} homes, {} destinations, 10 categories, walk (median of {RUNS})",
            city.inputs.homes.len(),
            city.inputs.destinations.len()
        ),
        median(&times) * 1000.0,
        "ms",
    ));
    let mut adds = Vec::new();
    let step = (city.inputs.homes.len() / RUNS).max(1);
    for i in 0..RUNS {
        let h = &city.inputs.homes[(i * step) % city.inputs.homes.len()];
        let (lon, lat) = (h.place.lon, h.place.lat);
        let t = Instant::now();
        city.add_destination(
            &format!("urn:ngsi-ld:PointOfInterest:bench-{i}"),
            "grocery",
            lon,
            lat,
        )
        .map_err(|e| anyhow!("{e}"))?;
        adds.push(t.elapsed().as_secs_f64());
    }
    rows.push(
        Row::new(
            format!(
                "demo city, a new grocery: incremental update of the results (median of {RUNS})"
            ),
            median(&adds) * 1000.0,
            "ms",
        )
        .target(Goal::AtMost(INCREMENTAL_TARGET_MS)),
    );

    // 2. the same walk network as a plain graph, against pandana
    let g = &city.graph;
    let plain = Plain {
        coords: city.net.node_coords().to_vec(),
        edges: g
            .edges()
            .into_iter()
            .map(|(u, v, s)| (u, v, eighths(s)))
            .collect(),
        pois: city
            .inputs
            .destinations
            .iter()
            .filter(|d| !d.place.id.contains(":bench-"))
            .filter_map(|d| {
                d.place
                    .anchor
                    .iter()
                    .min_by(|x, y| x.1.total_cmp(&y.1))
                    .map(|&(v, _)| (d.category.clone(), v))
            })
            .collect(),
        categories: city
            .summary
            .categories
            .iter()
            .filter(|c| c.destinations > 0)
            .map(|c| c.category.clone())
            .collect(),
    };
    // pandana cannot tell apart nodes with the same coordinates: a POI goes to the lowest such node on both sides
    let mut first_at = std::collections::HashMap::new();
    for (i, c) in plain.coords.iter().enumerate() {
        first_at
            .entry((c.0.to_bits(), c.1.to_bits()))
            .or_insert(i as NodeIdx);
    }
    let plain = Plain {
        pois: plain
            .pois
            .iter()
            .map(|(c, v)| {
                let p = plain.coords[*v as usize];
                (c.clone(), first_at[&(p.0.to_bits(), p.1.to_bits())])
            })
            .collect(),
        ..plain
    };
    let n = plain.coords.len();
    let mut ours_t = Vec::new();
    let mut ours = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        ours = plain.solve();
        ours_t.push(t.elapsed().as_secs_f64());
    }
    let ours_s = median(&ours_t);
    let label = format!(
        "demo walk network ({n} nodes, {} edges, {} destinations): nearest {K} of {} categories from every node, incl. preprocessing",
        plain.edges.len(),
        plain.pois.len(),
        plain.categories.len()
    );
    match peer_python(a.peer_python.as_deref()).and_then(|py| {
        progress("running pandana on the demo walk network");
        run_peer(&py, &plain)
    }) {
        Ok(p) => {
            rows.push(Row::new(label, ours_s * 1000.0, "ms").peer("pandana", p.total_s * 1000.0));
            rows.push(
                Row::new(
                    "speed-up over pandana, same input (incl. preprocessing)",
                    p.total_s / ours_s,
                    "×",
                )
                .target(Goal::AtLeast(SPEEDUP_TARGET)),
            );
            rows.push(
                Row::new(
                    "largest relative difference to pandana's distances",
                    largest_difference(&ours, &p, n),
                    "",
                )
                .target(Goal::AtMost(EXACT_TARGET)),
            );
            notes.push(format!(
                "pandana {} with {} threads: preprocessing (contraction hierarchy) {:.3} s, queries {:.3} s; ours with {threads} threads",
                p.version, p.threads, p.preprocess_s, p.query_s
            ));
        }
        Err(why) => {
            rows.push(Row::new(label, ours_s * 1000.0, "ms"));
            notes.push(format!("peer left out: {why}"));
        }
    }

    // 3. the large grid, ours alone
    progress(format!("generating a {0}×{0} grid", a.grid_side));
    let big = grid(a.grid_side);
    let (mut big_t, mut build_t) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let t = Instant::now();
        let (r, build_s) = big.solve_timed();
        big_t.push(t.elapsed().as_secs_f64());
        build_t.push(build_s);
        drop(r);
    }
    rows.push(
        Row::new(
            format!(
                "{}-node grid ({} edges, 10 × {} destinations): whole recomputation, nearest {K} per category (median of 3)",
                big.coords.len(),
                big.edges.len(),
                a.grid_side * 2
            ),
            median(&big_t),
            "s",
        )
        .target(Goal::AtMost(GRID_TARGET_S)),
    );
    rows.push(Row::new(
        "of which building the graph from the edge list (the rest: the 10 searches)",
        median(&build_t),
        "s",
    ));

    print_results(
        "access",
        &rows,
        &notes,
        threads,
        "peer (same input, same run)",
        a.json,
    );
    Ok(())
}
