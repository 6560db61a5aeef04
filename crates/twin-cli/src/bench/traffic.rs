//! `urbantwin bench traffic`: static traffic assignment on TNTP benchmark networks, side by side with AequilibraE's
//! bi-conjugate Frank–Wolfe on the same files in the same run.
//!
//! For each network (default Chicago-Sketch and Barcelona, folders of `--data`, default `../shared/data/tntp`):
//!
//! 1. urbantwin's Algorithm B to relative gap 1e-4, 1e-6 and 1e-10, and its bi-conjugate Frank–Wolfe to 1e-4 and
//!    1e-6: one solve per (algorithm, gap), [`RUNS`] times each, the median wall time of `assign` (files read and
//!    the network built before the clock starts);
//! 2. a scenario re-solve: the busiest link whose cost depends on its flow loses a fifth of its capacity, solved
//!    cold and warm-started from the baseline (Algorithm B to 1e-10), to 1e-6 and 1e-10, [`RUNS`] times each;
//! 3. the peer, `benchmarks/aequilibrae_peer.py` (embedded in the binary, written to a temporary directory) run by
//!    the Python of a virtualenv with AequilibraE (`--peer-python`, default `~/.cache/urbantwin/aeq-venv/bin/python`):
//!    one run to urbantwin's relative gap 1e-6, the time at which its iterate first reached 1e-4 and 1e-6 read from
//!    its per-iteration history. The script measures urbantwin's gap, (TSTT − SPTT) / TSTT, at AequilibraE's flows
//!    after every iteration and subtracts that measurement from the times (AequilibraE's own `rgap` prices the new
//!    flows at the previous iteration's costs, a different number). Its flows are checked: when they do not balance
//!    at every node, they are not a solution of the network given, and the peer runs again on the network without
//!    the links into dead ends that AequilibraE 1.7.2's graph compression mishandles (see docs/benchmarks.md); the
//!    rows say which.
//!
//! Without the peer's Python the peer rows are left out with the reason and how to install it. Our solves must
//! converge, else the command fails. No assertion on time: targets are reported, not enforced.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{anyhow, bail, Context as _, Result};
use serde::Deserialize;
use serde_json::{json, Value};
use twin_sim::traffic::assign::{assign, Algorithm, Demand, Network, Options, Solution, Stop};

use super::{fmt_value, markdown, median, progress, rows_json, BenchArgs, Goal, Row};

/// Our solves run this many times each; the median is reported.
const RUNS: usize = 3;
/// The gaps compared with the peer.
const PEER_GAPS: [f64; 2] = [1e-4, 1e-6];
/// The gap Algorithm B is also timed to.
const EXACT_GAP: f64 = 1e-10;
/// Targets of the issue: at least this many times faster than AequilibraE at the same gap ...
const SPEEDUP_TARGET: f64 = 20.0;
/// ... Chicago-Sketch to 1e-10 in under this many seconds ...
const CHICAGO_EXACT_TARGET_S: f64 = 1.0;
/// ... and a warm-started scenario re-solve in at most this fraction of a cold one.
const WARM_TARGET: f64 = 0.2;
/// The scenario: the busiest flow-dependent link keeps this share of its capacity.
const CAPACITY_CUT: f64 = 0.8;
/// The peer script stops itself after this many (timed) seconds.
const PEER_MAX_SECONDS: f64 = 900.0;
/// The peer script, the same file as `benchmarks/aequilibrae_peer.py`.
const PEER_SCRIPT: &str = include_str!("../../../../benchmarks/aequilibrae_peer.py");
const INSTALL_HINT: &str = "to measure the peer: apt-get install -y libsqlite3-mod-spatialite && \
/usr/bin/python3 -m venv ~/.cache/urbantwin/aeq-venv && \
~/.cache/urbantwin/aeq-venv/bin/pip install -r benchmarks/requirements-aequilibrae.txt (or --peer-python PATH)";

// ---------------------------------------------------------------------------------------------------------------
// pure helpers

/// A gap as the rows show it: `1e-4`, `1e-10`.
fn fmt_gap(g: f64) -> String {
    format!("{g:e}")
}

/// The generalised-cost weights (toll, distance) from a TNTP folder's README: the numbers after `Toll:` and
/// `Distance:` under "Generalized Cost Weights" (Chicago-Sketch: 0.02 and 0.04); 0 where absent.
fn cost_weights(readme: &str) -> (f64, f64) {
    let (mut toll, mut distance) = (0.0, 0.0);
    let mut inside = false;
    for line in readme.lines() {
        let t = line.trim();
        if t.starts_with('#') {
            inside = t.to_ascii_lowercase().contains("generali");
            continue;
        }
        if !inside {
            continue;
        }
        let number = |rest: &str| {
            rest.split_whitespace()
                .next()
                .and_then(|w| w.parse::<f64>().ok())
                .filter(|v| v.is_finite() && *v >= 0.0)
                .unwrap_or(0.0)
        };
        if let Some(rest) = t.strip_prefix("Toll:") {
            toll = number(rest);
        } else if let Some(rest) = t.strip_prefix("Distance:") {
            distance = number(rest);
        }
    }
    (toll, distance)
}

/// A number the peer may report as `null` (it writes NaN and infinities so): NaN then.
fn nullable<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// One iteration of the peer, as its script reports it.
#[derive(Debug, Clone, Deserialize)]
struct PeerIteration {
    iteration: usize,
    /// Seconds since the assignment started, our gap measurements excluded.
    #[serde(deserialize_with = "nullable")]
    seconds: f64,
    /// AequilibraE's own `rgap`.
    #[serde(deserialize_with = "nullable")]
    aequilibrae_gap: f64,
    /// Our (TSTT − SPTT) / TSTT at the peer's flows after this iteration.
    #[serde(deserialize_with = "nullable")]
    gap: f64,
}

/// The peer's comparison with the best-known `_flow.tntp` solution.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct PeerReference {
    #[serde(deserialize_with = "nullable")]
    max_abs_diff_flow_dependent: f64,
    max_abs_diff_flow_dependent_link: usize,
    #[serde(deserialize_with = "nullable")]
    max_rel_diff_flow_dependent: f64,
    error: Option<String>,
}

/// The JSON line of `aequilibrae_peer.py`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct PeerRun {
    version: Option<String>,
    #[serde(deserialize_with = "nullable")]
    seconds: f64,
    iterations: usize,
    stop: String,
    #[serde(deserialize_with = "nullable")]
    relative_gap: f64,
    #[serde(deserialize_with = "nullable")]
    aequilibrae_relative_gap: f64,
    #[serde(deserialize_with = "nullable")]
    objective: f64,
    #[serde(deserialize_with = "nullable")]
    total_trips: f64,
    #[serde(deserialize_with = "nullable")]
    node_balance: f64,
    node_balance_node: u64,
    unbalanced_nodes: usize,
    pruned_links: usize,
    compressed_links: usize,
    links: usize,
    #[serde(deserialize_with = "nullable")]
    gap_check_seconds: f64,
    history: Vec<PeerIteration>,
    reference: Option<PeerReference>,
}

impl PeerRun {
    /// The first iteration (and its time) whose flows are within `gap` by our definition.
    fn time_to(&self, gap: f64) -> Option<(usize, f64)> {
        self.history
            .iter()
            .find(|h| h.gap <= gap)
            .map(|h| (h.iteration, h.seconds))
    }

    /// The same by AequilibraE's own relative gap.
    fn time_to_own(&self, gap: f64) -> Option<(usize, f64)> {
        self.history
            .iter()
            .find(|h| h.aequilibrae_gap <= gap)
            .map(|h| (h.iteration, h.seconds))
    }

    /// Whether the final flows balance at every node (to 1e-6 of the trips): whether they are flows of this
    /// network at all.
    fn balanced(&self) -> bool {
        self.node_balance.is_finite() && self.node_balance <= 1e-6 * self.total_trips.max(1.0)
    }
}

/// The peer's result from its standard output: the last line that is a JSON object.
fn parse_peer_output(stdout: &str) -> Result<(PeerRun, Value)> {
    let line = stdout
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('{'))
        .ok_or_else(|| anyhow!("the peer printed no JSON line"))?;
    let raw: Value = serde_json::from_str(line).context("the peer's JSON line")?;
    let run: PeerRun = serde_json::from_value(raw.clone()).context("the peer's JSON line")?;
    Ok((run, raw))
}

/// The peer column's label: static, as [`Row::peer`] wants.
fn peer_label(gap: f64, pruned: bool) -> &'static str {
    match (gap >= 1e-5, pruned) {
        (true, false) => "AequilibraE BFW to 1e-4",
        (false, false) => "AequilibraE BFW to 1e-6",
        (true, true) => "AequilibraE BFW to 1e-4, dead-end links left out",
        (false, true) => "AequilibraE BFW to 1e-6, dead-end links left out",
    }
}

/// The largest difference between `flows` and best-known `reference` flows over the links whose equilibrium flow
/// is unique (cost growing with the flow: `B`, power and free-flow time all positive), and that link (0-based).
fn flow_difference(net: &Network, flows: &[f64], reference: &[f64]) -> Option<(f64, usize)> {
    (0..net.link_count().min(flows.len()).min(reference.len()))
        .filter(|&l| {
            let x = net.link(l as u32);
            x.b > 0.0 && x.power > 0.0 && x.free_flow_time > 0.0
        })
        .map(|l| ((flows[l] - reference[l]).abs(), l))
        .max_by(|a, b| a.0.total_cmp(&b.0))
}

/// The best-known flows of a `_flow.tntp` file, in link order, when its links are the network's.
fn reference_flows(path: &Path, net: &Network) -> Result<Vec<f64>> {
    let flows = twin_import::tntp::read_flows(path)?;
    if flows.len() != net.link_count() {
        bail!(
            "{}: {} links, the network has {}",
            path.display(),
            flows.len(),
            net.link_count()
        );
    }
    for (l, f) in flows.iter().enumerate() {
        let x = net.link(l as u32);
        if (f.from, f.to) != (x.from + 1, x.to + 1) {
            bail!(
                "{}: link {} is {} → {}, the network's {} → {}",
                path.display(),
                l + 1,
                f.from,
                f.to,
                x.from + 1,
                x.to + 1
            );
        }
    }
    Ok(flows.iter().map(|f| f.volume).collect())
}

// ---------------------------------------------------------------------------------------------------------------
// inputs

struct Input {
    name: String,
    net: PathBuf,
    trips: PathBuf,
    flow: Option<PathBuf>,
    toll_factor: f64,
    distance_factor: f64,
}

/// The files of network `name` in `data/name/`: `*_net.tntp`, `*_trips.tntp`, `*_flow.tntp` (optional) and the
/// README's cost weights.
fn find_input(data: &Path, name: &str) -> Result<Input> {
    let dir = data.join(name);
    let entries = std::fs::read_dir(&dir).with_context(|| {
        format!(
            "cannot read {} (--data names the folder of TNTP networks, one sub-folder each)",
            dir.display()
        )
    })?;
    let (mut net, mut trips, mut flow) = (None, None, None);
    for e in entries.flatten() {
        let p = e.path();
        let file = p.file_name().and_then(|s| s.to_str()).unwrap_or_default();
        if file.ends_with("_net.tntp") {
            net = Some(p.clone());
        } else if file.ends_with("_trips.tntp") {
            trips = Some(p.clone());
        } else if file.ends_with("_flow.tntp") {
            flow = Some(p.clone());
        }
    }
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap_or_default();
    let (toll_factor, distance_factor) = cost_weights(&readme);
    Ok(Input {
        name: name.to_string(),
        net: net.ok_or_else(|| anyhow!("no *_net.tntp in {}", dir.display()))?,
        trips: trips.ok_or_else(|| anyhow!("no *_trips.tntp in {}", dir.display()))?,
        flow,
        toll_factor,
        distance_factor,
    })
}

/// The network and trip table as the assignment takes them (what `urbantwin traffic assign` reads).
fn load(input: &Input) -> Result<(Network, Demand)> {
    let (net, demand, _) = crate::traffic::read(&input.net, &input.trips)?;
    Ok((net, demand))
}

// ---------------------------------------------------------------------------------------------------------------
// our solves

/// Median wall seconds of [`RUNS`] solves, their iterations, and the last solution. A solve that does not reach
/// the gap is an error.
struct Timed {
    runs: Vec<f64>,
    iterations: usize,
    solution: Solution,
}

impl Timed {
    fn secs(&self) -> f64 {
        median(&self.runs)
    }
}

fn timed(
    input: &Input,
    net: &Network,
    demand: &Demand,
    algorithm: Algorithm,
    gap: f64,
    warm: Option<&Solution>,
) -> Result<Timed> {
    let mut runs = Vec::new();
    let mut last = None;
    for _ in 0..RUNS {
        let options = Options {
            algorithm,
            gap,
            toll_factor: input.toll_factor,
            distance_factor: input.distance_factor,
            warm_start: warm,
            ..Options::default()
        };
        let t = Instant::now();
        let s = assign(net, demand, &options).map_err(|e| anyhow!("{}: {e}", input.name))?;
        runs.push(t.elapsed().as_secs_f64());
        if s.report.stop != Stop::Converged {
            bail!(
                "{}: {} stopped at gap {:.3e} after {} iterations ({:?}) without reaching {}",
                input.name,
                algorithm.name(),
                s.report.relative_gap,
                s.report.iterations,
                s.report.stop,
                fmt_gap(gap)
            );
        }
        last = Some(s);
    }
    let solution = last.ok_or_else(|| anyhow!("no run"))?;
    Ok(Timed {
        runs,
        iterations: solution.report.iterations,
        solution,
    })
}

fn algorithm_title(a: Algorithm) -> &'static str {
    match a {
        Algorithm::B => "Algorithm B",
        Algorithm::BiconjugateFrankWolfe => "bi-conjugate Frank-Wolfe",
    }
}

// ---------------------------------------------------------------------------------------------------------------
// the peer

struct PeerEnv {
    python: PathBuf,
    script: PathBuf,
    _dir: tempfile::TempDir,
}

/// The peer's Python and the script written where it can run, or why not.
fn peer_env(python: Option<&Path>) -> std::result::Result<PeerEnv, String> {
    let python = match python {
        Some(p) => p.to_path_buf(),
        None => {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default();
            home.join(".cache/urbantwin/aeq-venv/bin/python")
        }
    };
    if !python.exists() {
        return Err(format!("no Python at {}; {INSTALL_HINT}", python.display()));
    }
    let check = Command::new(&python)
        .args([
            "-c",
            "import importlib.metadata as m, scipy, aequilibrae; print(m.version('aequilibrae'))",
        ])
        .env("AEQ_SHOW_PROGRESS", "FALSE")
        .output();
    match check {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            let err = String::from_utf8_lossy(&o.stderr);
            let last = err.lines().last().unwrap_or("").trim().to_string();
            return Err(format!(
                "{} cannot import aequilibrae ({last}); {INSTALL_HINT}",
                python.display()
            ));
        }
        Err(e) => {
            return Err(format!(
                "cannot run {}: {e}; {INSTALL_HINT}",
                python.display()
            ))
        }
    }
    let dir = tempfile::Builder::new()
        .prefix("urbantwin-bench-traffic-")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let script = dir.path().join("aequilibrae_peer.py");
    std::fs::write(&script, PEER_SCRIPT)
        .map_err(|e| format!("cannot write the peer script: {e}"))?;
    Ok(PeerEnv {
        python,
        script,
        _dir: dir,
    })
}

/// Runs the peer script once on `input` to our gap `gap`.
fn run_peer(
    env: &PeerEnv,
    input: &Input,
    gap: f64,
    prune: bool,
) -> std::result::Result<(PeerRun, Value), String> {
    let mut cmd = Command::new(&env.python);
    cmd.arg(&env.script)
        .arg("--net")
        .arg(&input.net)
        .arg("--trips")
        .arg(&input.trips)
        .args(["--gap", &format!("{gap:e}")])
        .args(["--max-seconds", &PEER_MAX_SECONDS.to_string()])
        .args(["--toll-factor", &input.toll_factor.to_string()])
        .args(["--distance-factor", &input.distance_factor.to_string()])
        .env("AEQ_SHOW_PROGRESS", "FALSE");
    if let Some(f) = &input.flow {
        cmd.arg("--reference").arg(f);
    }
    if prune {
        cmd.arg("--prune-dead-ends");
    }
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {}: {e}", env.python.display()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(5).collect();
        return Err(format!(
            "the peer failed ({}): {}",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        ));
    }
    parse_peer_output(&String::from_utf8_lossy(&out.stdout)).map_err(|e| e.to_string())
}

/// What the peer did on one network.
enum PeerOutcome {
    /// Its run as given, and (when that one's flows did not balance) its run without dead-end links.
    Ran(Box<PeerRuns>),
    Skipped(String),
}

struct PeerRuns {
    as_given: (PeerRun, Value),
    pruned: Option<(PeerRun, Value)>,
}

impl PeerOutcome {
    /// The run whose times are compared, and whether it is the pruned one.
    fn timed(&self) -> Option<(&PeerRun, bool)> {
        match self {
            PeerOutcome::Ran(r) => match &r.pruned {
                Some((p, _)) => Some((p, true)),
                None => Some((&r.as_given.0, false)),
            },
            PeerOutcome::Skipped(_) => None,
        }
    }
}

fn peer_summary(name: &str, what: &str, p: &PeerRun) -> String {
    let own = |g: f64| {
        p.time_to_own(g)
            .map_or(format!("{} not reached", fmt_gap(g)), |(i, s)| {
                format!("{} at iteration {i} ({s:.2} s)", fmt_gap(g))
            })
    };
    let mut s = format!(
        "AequilibraE {} BFW on {name} ({what}): {} iterations in {:.2} s ({}); final relative gap {:.2e} by \
         urbantwin's definition, {:.2e} by its own rgap (its own rgap: {}, {}); objective \
         {:.6}; node balance {} vehicles{}",
        p.version.as_deref().unwrap_or("?"),
        p.iterations,
        p.seconds,
        p.stop,
        p.relative_gap,
        p.aequilibrae_relative_gap,
        own(1e-4),
        own(1e-6),
        p.objective,
        fmt_sci(p.node_balance),
        if p.balanced() {
            String::new()
        } else {
            format!(
                " at node {} ({} nodes unbalanced): NOT a flow of this network",
                p.node_balance_node, p.unbalanced_nodes
            )
        }
    );
    if let Some(r) = &p.reference {
        match &r.error {
            Some(e) => s.push_str(&format!("; best-known flows not compared: {e}")),
            None => s.push_str(&format!(
                "; against the best-known flows: largest difference on a flow-dependent link {:.3} vehicles \
                 (link {}, relative {:.1e})",
                r.max_abs_diff_flow_dependent,
                r.max_abs_diff_flow_dependent_link,
                r.max_rel_diff_flow_dependent
            )),
        }
    }
    s.push('.');
    s
}

fn fmt_sci(v: f64) -> String {
    if v.is_finite() && v != 0.0 && v.abs() < 0.01 {
        format!("{v:.1e}")
    } else {
        fmt_value(v)
    }
}

// ---------------------------------------------------------------------------------------------------------------

pub fn run(a: &BenchArgs) -> Result<()> {
    if a.url.is_some() || a.db.is_some() {
        bail!("--url and --db are for bench hub");
    }
    let data = a
        .data
        .clone()
        .unwrap_or_else(|| PathBuf::from("../shared/data/tntp"));
    let names: Vec<String> = a
        .networks
        .iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if names.is_empty() {
        bail!("--networks names no network");
    }
    let inputs = names
        .iter()
        .map(|n| find_input(&data, n))
        .collect::<Result<Vec<_>>>()?;
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let peer = peer_env(a.peer_python.as_deref());
    if let Err(why) = &peer {
        progress(format!("peer skipped: {why}"));
    }

    let mut rows: Vec<Row> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let mut out_networks = Vec::new();
    for input in &inputs {
        let name = input.name.as_str();
        progress(format!(
            "{name}: {} (toll factor {}, distance factor {})",
            input.net.display(),
            input.toll_factor,
            input.distance_factor
        ));
        let (net, demand) = load(input)?;
        let reference = match &input.flow {
            Some(f) => match reference_flows(f, &net) {
                Ok(r) => Some(r),
                Err(e) => {
                    progress(format!("  best-known flows not compared: {e}"));
                    None
                }
            },
            None => None,
        };

        // 1. our solves
        let mut ours: Vec<(Algorithm, f64, Timed)> = Vec::new();
        for (algorithm, gaps) in [
            (Algorithm::B, &[1e-4, 1e-6, EXACT_GAP][..]),
            (Algorithm::BiconjugateFrankWolfe, &PEER_GAPS[..]),
        ] {
            for &gap in gaps {
                let t = timed(input, &net, &demand, algorithm, gap, None)?;
                progress(format!(
                    "  {} to {}: {} iterations, {} s (median {:.3} s), objective {:.6}",
                    algorithm_title(algorithm),
                    fmt_gap(gap),
                    t.iterations,
                    t.runs
                        .iter()
                        .map(|s| format!("{s:.3}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    t.secs(),
                    t.solution.report.objective
                ));
                ours.push((algorithm, gap, t));
            }
        }
        if let Some(r) = &reference {
            let diffs: Vec<String> = ours
                .iter()
                .filter_map(|(alg, gap, t)| {
                    flow_difference(&net, &t.solution.flows, r).map(|(d, l)| {
                        format!(
                            "{} to {}: {d:.3} (link {})",
                            algorithm_title(*alg),
                            fmt_gap(*gap),
                            l + 1
                        )
                    })
                })
                .collect();
            notes.push(format!(
                "urbantwin on {name} against the best-known flows, largest difference on a flow-dependent link \
                 (vehicles): {}.",
                diffs.join("; ")
            ));
        }
        let find = |alg: Algorithm, gap: f64| {
            ours.iter()
                .find(|(a2, g, _)| *a2 == alg && *g == gap)
                .map(|(_, _, t)| t)
        };

        // 2. the scenario, warm and cold
        let baseline = find(Algorithm::B, EXACT_GAP)
            .map(|t| &t.solution)
            .ok_or_else(|| anyhow!("no baseline"))?;
        let busiest = (0..net.link_count())
            .filter(|&l| {
                let x = net.link(l as u32);
                x.b > 0.0 && x.power > 0.0 && x.free_flow_time > 0.0
            })
            .max_by(|&i, &j| baseline.flows[i].total_cmp(&baseline.flows[j]))
            .ok_or_else(|| anyhow!("{name}: no link whose cost depends on its flow"))?;
        let mut scenario = net.clone();
        let mut cut = *scenario.link(busiest as u32);
        cut.capacity *= CAPACITY_CUT;
        scenario
            .set_link(busiest as u32, cut)
            .map_err(|e| anyhow!("{e}"))?;
        let l = net.link(busiest as u32);
        progress(format!(
            "  scenario: link {} → {} (flow {:.0}, capacity {:.0}) to {:.0} % of its capacity",
            l.from + 1,
            l.to + 1,
            baseline.flows[busiest],
            l.capacity,
            CAPACITY_CUT * 100.0
        ));
        let mut warm_json = Vec::new();
        let mut warm_rows = Vec::new();
        for gap in [1e-6, EXACT_GAP] {
            let cold = timed(input, &scenario, &demand, Algorithm::B, gap, None)?;
            let warm = timed(input, &scenario, &demand, Algorithm::B, gap, Some(baseline))?;
            let ratio = warm.secs() / cold.secs();
            progress(format!(
                "  re-solve to {}: cold {} iterations {:.3} s, warm {} iterations {:.3} s: warm/cold {ratio:.2}",
                fmt_gap(gap),
                cold.iterations,
                cold.secs(),
                warm.iterations,
                warm.secs()
            ));
            warm_rows.push(
                Row::new(
                    format!(
                        "{name}: warm / cold re-solve to {} ({:.1} ms / {:.1} ms; {} / {} iterations)",
                        fmt_gap(gap),
                        warm.secs() * 1e3,
                        cold.secs() * 1e3,
                        warm.iterations,
                        cold.iterations
                    ),
                    ratio,
                    "ratio",
                )
                .target(Goal::AtMost(WARM_TARGET)),
            );
            warm_json.push(json!({
                "gap": gap,
                "coldSeconds": cold.runs, "coldIterations": cold.iterations,
                "warmSeconds": warm.runs, "warmIterations": warm.iterations,
                "warmOverCold": ratio,
            }));
        }

        // 3. the peer
        let outcome = match &peer {
            Err(why) => PeerOutcome::Skipped(why.clone()),
            Ok(env) => {
                progress(format!(
                    "  peer: AequilibraE BFW to urbantwin's gap {} (one run; may take minutes)",
                    fmt_gap(PEER_GAPS[1])
                ));
                match run_peer(env, input, PEER_GAPS[1], false) {
                    Err(why) => PeerOutcome::Skipped(why),
                    Ok(as_given) => {
                        progress(format!(
                            "    {}",
                            peer_summary(name, "network as given", &as_given.0)
                        ));
                        let pruned = if as_given.0.balanced() {
                            None
                        } else {
                            progress(
                                "    its flows do not balance: again without the links into dead ends",
                            );
                            match run_peer(env, input, PEER_GAPS[1], true) {
                                Ok(p) => {
                                    progress(format!(
                                        "    {}",
                                        peer_summary(
                                            name,
                                            &format!(
                                                "{} dead-end links left out",
                                                p.0.pruned_links
                                            ),
                                            &p.0
                                        )
                                    ));
                                    Some(p)
                                }
                                Err(why) => {
                                    progress(format!("    failed: {why}"));
                                    None
                                }
                            }
                        };
                        PeerOutcome::Ran(Box::new(PeerRuns { as_given, pruned }))
                    }
                }
            }
        };
        match &outcome {
            PeerOutcome::Skipped(why) => notes.push(format!("{name}: peer skipped: {why}")),
            PeerOutcome::Ran(r) => {
                let (as_given, pruned) = (&r.as_given, &r.pruned);
                notes.push(peer_summary(name, "network as given", &as_given.0));
                if let Some(p) = pruned {
                    notes.push(peer_summary(
                        name,
                        &format!(
                            "{} links into dead ends left out, same problem",
                            p.0.pruned_links
                        ),
                        &p.0,
                    ));
                } else if !as_given.0.balanced() {
                    notes.push(format!(
                        "{name}: the peer's flows are not a solution of the network, so its times are not compared"
                    ));
                }
            }
        }
        // the run whose times count: balanced flows only
        let compared = outcome.timed().filter(|(p, _)| p.balanced());

        // rows
        for (algorithm, gap, t) in &ours {
            let mut r = Row::new(
                format!(
                    "{name}: {} to {}",
                    algorithm_title(*algorithm),
                    fmt_gap(*gap)
                ),
                t.secs() * 1e3,
                "ms",
            );
            if *algorithm == Algorithm::B && *gap == EXACT_GAP && name == "Chicago-Sketch" {
                r = r.target(Goal::AtMost(CHICAGO_EXACT_TARGET_S * 1e3));
            }
            if let Some((p, pruned)) = compared {
                if let Some((_, s)) = PEER_GAPS.contains(gap).then(|| p.time_to(*gap)).flatten() {
                    r = r.peer(peer_label(*gap, pruned), s * 1e3);
                }
            }
            rows.push(r);
        }
        for gap in PEER_GAPS {
            let ours_s = find(Algorithm::B, gap).map_or(f64::NAN, Timed::secs);
            let peer_s = compared.and_then(|(p, _)| p.time_to(gap)).map(|(_, s)| s);
            match peer_s {
                Some(s) => rows.push(
                    Row::new(
                        format!(
                            "{name}: speed-up vs AequilibraE BFW at {} (Algorithm B)",
                            fmt_gap(gap)
                        ),
                        s / ours_s,
                        "×",
                    )
                    .target(Goal::AtLeast(SPEEDUP_TARGET)),
                ),
                None if compared.is_some() => notes.push(format!(
                    "{name}: AequilibraE did not reach {} within {PEER_MAX_SECONDS} s",
                    fmt_gap(gap)
                )),
                None => {}
            }
        }
        rows.extend(warm_rows);

        let exact = find(Algorithm::B, EXACT_GAP).map(|t| &t.solution.report);
        out_networks.push(json!({
            "network": name,
            "net": input.net.display().to_string(),
            "trips": input.trips.display().to_string(),
            "tollFactor": input.toll_factor,
            "distanceFactor": input.distance_factor,
            "ours": ours.iter().map(|(alg, gap, t)| json!({
                "algorithm": alg.name(), "gap": gap, "seconds": t.runs, "median": t.secs(),
                "iterations": t.iterations, "relativeGap": t.solution.report.relative_gap,
                "objective": t.solution.report.objective,
                "largestFlowDifference": reference.as_ref()
                    .and_then(|r| flow_difference(&net, &t.solution.flows, r))
                    .map(|(d, l)| json!({"vehicles": d, "link": l + 1})),
            })).collect::<Vec<_>>(),
            "objectiveAt1e-10": exact.map(|r| r.objective),
            "scenario": {
                "link": busiest + 1, "from": l.from + 1, "to": l.to + 1,
                "capacity": l.capacity, "capacityFactor": CAPACITY_CUT,
                "baselineFlow": baseline.flows[busiest],
                "resolves": warm_json,
            },
            "peer": match &outcome {
                PeerOutcome::Skipped(why) => json!({"skipped": why}),
                PeerOutcome::Ran(r) => json!({
                    "asGiven": r.as_given.1,
                    "deadEndsLeftOut": r.pruned.as_ref().map(|p| &p.1),
                    "compared": compared.map(|(_, pruned)| if pruned { "deadEndsLeftOut" } else { "asGiven" }),
                }),
            },
        }));
    }

    if a.json {
        let out = json!({
            "benchmark": "traffic",
            "cores": cores,
            "runs": RUNS,
            "data": data.display().to_string(),
            "networks": out_networks,
            "results": rows_json(&rows),
            "notes": notes,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "urbantwin bench traffic: {} from {}, {cores} cores",
            names.join(", "),
            data.display()
        );
        println!();
        print!("{}", markdown(&rows, "peer (same input, same run)"));
        println!();
        println!(
            "urbantwin: wall time of each solve, median of {RUNS} (files read and the network built before the \
             clock). AequilibraE: one run to urbantwin's gap {}, the time at which its flows first reached each gap \
             by urbantwin's definition (TSTT − SPTT) / TSTT, assignment only (graph and matrix built before the \
             clock; the gap measurement itself subtracted). Ratio to peer < 1: urbantwin takes less time.",
            fmt_gap(PEER_GAPS[1])
        );
        for n in &notes {
            println!();
            println!("{n}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use twin_sim::traffic::assign::Link;

    #[test]
    fn cost_weights_come_from_the_readme() {
        let chicago =
            "## Units\nTime: minutes\n\n## Generalized Cost Weights\nToll: 0.02 minutes/cent\n\
                       Distance: 0.04 minutes/mile\n\n## Solutions\nToll: 9\n";
        assert_eq!(cost_weights(chicago), (0.02, 0.04));
        assert_eq!(
            cost_weights("## Generalized Cost Weights\nToll: 0  \nDistance: 0  \n"),
            (0.0, 0.0)
        );
        assert_eq!(cost_weights("no weights here\nToll: 5\n"), (0.0, 0.0));
        assert_eq!(
            cost_weights("## Generalized Cost Weights\nToll: n/a\nDistance: -1\n"),
            (0.0, 0.0)
        );
    }

    const PEER_LINE: &str = r#"{"peer": "aequilibrae", "version": "1.7.2", "seconds": 3.5, "iterations": 4,
        "stop": "converged", "relative_gap": 9e-7, "aequilibrae_relative_gap": 1.2e-6, "objective": 17313020.0,
        "total_trips": 1000.0, "node_balance": 8.6e-11, "node_balance_node": 480, "unbalanced_nodes": 0,
        "pruned_links": 0, "history": [
          {"iteration": 2, "seconds": 0.5, "aequilibrae_gap": 0.6, "gap": 0.4},
          {"iteration": 3, "seconds": 1.5, "aequilibrae_gap": 2e-4, "gap": 8e-5},
          {"iteration": 4, "seconds": 3.5, "aequilibrae_gap": 9e-5, "gap": 9e-7}],
        "reference": {"max_abs_diff_flow_dependent": 4.38, "max_abs_diff_flow_dependent_link": 938,
                      "max_rel_diff_flow_dependent": 0.02, "objective": 17313018.7}}"#;

    #[test]
    fn the_peer_line_is_parsed_and_read_for_times_to_gap() {
        let stdout = format!(
            "some noise\n{}\n",
            PEER_LINE.replace('\n', " ").replace("  ", "")
        );
        let (p, raw) = parse_peer_output(&stdout).unwrap();
        assert_eq!(raw["peer"], "aequilibrae");
        assert_eq!(p.version.as_deref(), Some("1.7.2"));
        assert_eq!(p.iterations, 4);
        assert!(p.balanced());
        // our definition: 8e-5 ≤ 1e-4 at iteration 3; 9e-7 ≤ 1e-6 at iteration 4
        assert_eq!(p.time_to(1e-4), Some((3, 1.5)));
        assert_eq!(p.time_to(1e-6), Some((4, 3.5)));
        assert_eq!(p.time_to(1e-8), None);
        // its own rgap lags
        assert_eq!(p.time_to_own(1e-4), Some((4, 3.5)));
        assert_eq!(p.time_to_own(1e-6), None);
        let r = p.reference.as_ref().unwrap();
        assert_eq!(r.max_abs_diff_flow_dependent_link, 938);
        assert!(peer_summary("Chicago-Sketch", "network as given", &p).contains("link 938"));
    }

    #[test]
    fn unbalanced_peer_flows_are_flagged_and_bad_lines_refused() {
        let line = r#"{"total_trips": 184679.561, "node_balance": 827.8, "node_balance_node": 913,
                       "unbalanced_nodes": 2, "history": []}"#
            .replace('\n', " ");
        let (p, _) = parse_peer_output(&line).unwrap();
        assert!(!p.balanced());
        assert!(peer_summary("Barcelona", "network as given", &p)
            .contains("at node 913 (2 nodes unbalanced): NOT a flow of this network"));
        assert!(parse_peer_output("Traceback (most recent call last):\n").is_err());
        assert!(parse_peer_output("{not json\n").is_err());
        let null = r#"{"total_trips": 10.0, "node_balance": null, "relative_gap": null}"#;
        let (p, _) = parse_peer_output(null).unwrap();
        assert!(p.relative_gap.is_nan() && !p.balanced());
    }

    #[test]
    fn small_helpers() {
        assert_eq!(fmt_gap(1e-4), "1e-4");
        assert_eq!(fmt_gap(1e-10), "1e-10");
        assert!(median(&[]).is_nan());
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(peer_label(1e-4, false), "AequilibraE BFW to 1e-4");
        assert_eq!(
            peer_label(1e-6, true),
            "AequilibraE BFW to 1e-6, dead-end links left out"
        );
        assert_eq!(fmt_sci(8.6e-11), "8.6e-11");
        assert_eq!(fmt_sci(827.8), "828");
    }

    #[test]
    fn flow_differences_skip_constant_cost_links() {
        let mut constant = Link::new(0, 1, 1.0, 2.0);
        constant.b = 0.0;
        let net = Network::from_links(
            2,
            2,
            0,
            vec![
                Link::new(0, 1, 100.0, 1.0),
                constant,
                Link::new(1, 0, 100.0, 1.0),
            ],
        )
        .unwrap();
        let d = flow_difference(&net, &[10.0, 50.0, 3.0], &[12.5, 0.0, 3.0]).unwrap();
        assert_eq!(d, (2.5, 0));
        assert_eq!(flow_difference(&net, &[], &[]), None);
    }

    #[test]
    fn the_embedded_script_is_the_peer() {
        assert!(PEER_SCRIPT.contains("def main()"));
        assert!(PEER_SCRIPT.contains("set_algorithm(\"bfw\")"));
    }

    #[test]
    fn inputs_are_found_by_suffix() {
        let dir = tempfile::tempdir().unwrap();
        let net_dir = dir.path().join("Toy");
        std::fs::create_dir(&net_dir).unwrap();
        for f in ["Toy_net.tntp", "Toy_trips.tntp", "Toy_flow.tntp"] {
            std::fs::write(net_dir.join(f), "").unwrap();
        }
        std::fs::write(
            net_dir.join("README.md"),
            "## Generalized Cost Weights\nToll: 0.5\nDistance: 0.25\n",
        )
        .unwrap();
        let i = find_input(dir.path(), "Toy").unwrap();
        assert!(i.net.ends_with("Toy_net.tntp") && i.trips.ends_with("Toy_trips.tntp"));
        assert!(i.flow.is_some());
        assert_eq!((i.toll_factor, i.distance_factor), (0.5, 0.25));
        assert!(find_input(dir.path(), "Missing").is_err());
    }
}
