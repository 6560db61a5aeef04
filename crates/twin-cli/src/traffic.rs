//! `urbantwin traffic assign`: static user-equilibrium assignment of a TNTP trip table on a TNTP network
//! (`twin_sim::traffic::assign`), with the result as one JSON object (`--json`) or a short summary, and the link
//! flows as CSV (`--out`).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use twin_sim::traffic::assign::{
    assign, Algorithm, AssignError, Demand, IterationStats, Link, Network, Options, Stop,
};

#[derive(Args)]
pub struct TrafficArgs {
    #[command(subcommand)]
    pub command: TrafficCommand,
}

#[derive(Subcommand)]
pub enum TrafficCommand {
    /// Static user-equilibrium assignment (BPR costs) of a trip table on a network, both TNTP files.
    Assign(AssignArgs),
}

/// The solution method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AlgorithmArg {
    /// Dial's Algorithm B (bush-based, converges to machine precision).
    B,
    /// Bi-conjugate Frank-Wolfe (link-based, for comparison).
    Bfw,
}

#[derive(Args)]
pub struct AssignArgs {
    /// The network (`*_net.tntp`).
    #[arg(long, value_name = "NET.tntp")]
    pub net: PathBuf,
    /// The trip table (`*_trips.tntp`).
    #[arg(long, value_name = "TRIPS.tntp")]
    pub trips: PathBuf,
    /// Stop at this relative gap, (TSTT − SPTT) / TSTT.
    #[arg(long, default_value_t = 1e-6)]
    pub gap: f64,
    /// Stop after this many iterations.
    #[arg(long, default_value_t = 10_000)]
    pub max_iter: usize,
    /// Stop after this many seconds.
    #[arg(long)]
    pub max_seconds: Option<f64>,
    /// Algorithm B or bi-conjugate Frank-Wolfe.
    #[arg(long, value_enum, default_value = "b")]
    pub algorithm: AlgorithmArg,
    /// Weight of the toll in the generalised cost (Chicago-Sketch: 0.02).
    #[arg(long, default_value_t = 0.0)]
    pub toll_factor: f64,
    /// Weight of the length in the generalised cost (Chicago-Sketch: 0.04).
    #[arg(long, default_value_t = 0.0)]
    pub distance_factor: f64,
    /// Write the link flows as CSV (init,term,flow,cost; TNTP node numbers, links in file order).
    #[arg(long, value_name = "FILE.csv")]
    pub out: Option<PathBuf>,
    /// Print one JSON object instead of a summary.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: TrafficArgs) -> Result<()> {
    match args.command {
        TrafficCommand::Assign(a) => run_assign(&a),
    }
}

/// The network and trip table of TNTP files, as the assignment takes them (TNTP node `i` is node `i − 1`).
fn read(net_path: &Path, trips_path: &Path) -> Result<(Network, Demand, usize)> {
    let tn = twin_import::tntp::read_net(net_path)?;
    let tt = twin_import::tntp::read_trips(trips_path)?;
    if tt.zones > tn.zones {
        bail!(
            "{}: <NUMBER OF ZONES> {} exceeds the network's {}",
            trips_path.display(),
            tt.zones,
            tn.zones
        );
    }
    let links: Vec<Link> = tn
        .links
        .iter()
        .map(|l| Link {
            from: l.init - 1,
            to: l.term - 1,
            capacity: l.capacity,
            length: l.length,
            free_flow_time: l.free_flow_time,
            b: l.b,
            power: l.power,
            toll: l.toll,
        })
        .collect();
    let net = Network::from_links(
        tn.nodes as usize,
        tn.zones as usize,
        tn.first_thru_node.saturating_sub(1) as usize,
        links,
    )
    .map_err(|e| match e {
        AssignError::InvalidLink { link, reason, .. } => {
            let l = &tn.links[link];
            anyhow::anyhow!(
                "{}: link {} → {} (link {} in file order): {reason}",
                net_path.display(),
                l.init,
                l.term,
                link + 1
            )
        }
        e => anyhow::anyhow!("{}: {e}", net_path.display()),
    })?
    .with_node_labels((1..=u64::from(tn.nodes)).collect());
    let demand = Demand::from_triples(
        tn.zones as usize,
        tt.od
            .iter()
            .map(|&(o, d, v)| (o as usize - 1, d as usize - 1, v)),
    )
    .with_context(|| trips_path.display().to_string())?;
    Ok((net, demand, tn.first_thru_node as usize))
}

fn run_assign(a: &AssignArgs) -> Result<()> {
    let read_started = Instant::now();
    let (net, demand, first_thru_node) = read(&a.net, &a.trips)?;
    let read_seconds = read_started.elapsed().as_secs_f64();
    let algorithm = match a.algorithm {
        AlgorithmArg::B => Algorithm::B,
        AlgorithmArg::Bfw => Algorithm::BiconjugateFrankWolfe,
    };
    let bar = if a.json {
        ProgressBar::hidden()
    } else {
        let b = ProgressBar::new_spinner();
        b.set_style(
            ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        b.enable_steady_tick(Duration::from_millis(120));
        b
    };
    let progress = |s: &IterationStats| {
        bar.set_message(format!(
            "iteration {}: relative gap {:.3e}",
            s.iteration, s.relative_gap
        ));
        true
    };
    let options = Options {
        algorithm,
        gap: a.gap,
        max_iter: a.max_iter,
        max_seconds: a.max_seconds,
        toll_factor: a.toll_factor,
        distance_factor: a.distance_factor,
        warm_start: None,
        progress: Some(&progress),
    };
    let solution = assign(&net, &demand, &options).map_err(|e| match e {
        AssignError::InvalidLink { link, reason, .. } => {
            let l = net.link(link as u32);
            anyhow::anyhow!(
                "{}: link {} → {} (link {} in file order): {reason}",
                a.net.display(),
                l.from + 1,
                l.to + 1,
                link + 1
            )
        }
        e => anyhow::anyhow!("{e}"),
    })?;
    bar.finish_and_clear();
    let r = &solution.report;

    if let Some(out) = &a.out {
        write_flows(out, &net, &solution.flows, &solution.costs)?;
    }

    let name = twin_import::tntp::network_name(&a.net);
    let stop = match r.stop {
        Stop::Converged => "converged",
        Stop::MaxIterations => "max-iterations",
        Stop::MaxSeconds => "max-seconds",
        Stop::Cancelled => "cancelled",
        Stop::NoDemand => "no-demand",
    };
    const LISTED: usize = 100;
    if a.json {
        let unserved: Vec<_> = r
            .unserved
            .iter()
            .take(LISTED)
            .map(|u| json!({"origin": u.origin + 1, "destination": u.destination + 1, "trips": u.trips}))
            .collect();
        let v = json!({
            "network": name,
            "algorithm": algorithm.name(),
            "nodes": net.node_count(),
            "links": net.link_count(),
            "zones": net.zone_count(),
            "first_thru_node": first_thru_node,
            "target_gap": a.gap,
            "toll_factor": a.toll_factor,
            "distance_factor": a.distance_factor,
            "iterations": r.iterations,
            "relative_gap": r.relative_gap,
            "objective": r.objective,
            "tstt": r.tstt,
            "sptt": r.sptt,
            "seconds": r.seconds,
            "read_seconds": read_seconds,
            "stop": stop,
            "converged": r.converged(),
            "total_trips": demand.total() + demand.intrazonal(),
            "assigned_trips": r.assigned,
            "intrazonal_trips": r.intrazonal_trips,
            "unserved_demand": r.unserved_trips,
            "unserved_pairs": r.unserved.len(),
            "unserved": unserved,
            "out": a.out.as_ref().map(|p| p.display().to_string()),
        });
        println!("{v}");
    } else {
        println!(
            "{name}: {} on {} nodes, {} links, {} zones",
            match algorithm {
                Algorithm::B => "Algorithm B",
                Algorithm::BiconjugateFrankWolfe => "bi-conjugate Frank-Wolfe",
            },
            net.node_count(),
            net.link_count(),
            net.zone_count()
        );
        println!(
            "{stop} after {} iterations in {:.3} s: relative gap {:.3e}, objective {:.6}",
            r.iterations, r.seconds, r.relative_gap, r.objective
        );
        println!(
            "assigned {:.2} trips ({:.2} intrazonal not assigned)",
            r.assigned, r.intrazonal_trips
        );
        if !r.unserved.is_empty() {
            println!(
                "unserved: {:.2} trips between {} zone pairs no path joins, e.g.",
                r.unserved_trips,
                r.unserved.len()
            );
            for u in r.unserved.iter().take(10) {
                println!(
                    "  {} → {}: {:.2} trips",
                    u.origin + 1,
                    u.destination + 1,
                    u.trips
                );
            }
        }
        if let Some(out) = &a.out {
            println!("link flows: {}", out.display());
        }
    }
    Ok(())
}

fn write_flows(path: &Path, net: &Network, flows: &[f64], costs: &[f64]) -> Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut w = std::io::BufWriter::new(file);
    writeln!(w, "init,term,flow,cost")?;
    for (l, link) in net.links().iter().enumerate() {
        writeln!(
            w,
            "{},{},{},{}",
            link.from + 1,
            link.to + 1,
            flows[l],
            costs[l]
        )?;
    }
    w.flush()
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
