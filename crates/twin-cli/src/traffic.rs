//! `urbantwin traffic assign`: static user-equilibrium assignment of a TNTP trip table on a TNTP network
//! (`twin_sim::traffic::assign`), with the result as one JSON object (`--json`) or a short summary, and the link
//! flows as CSV (`--out`). `urbantwin traffic city`: the city's own model from a twin's store (demand from its
//! buildings and points of interest), its baseline, and street closures against it.

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
use twin_sim::traffic::scenario::{self as sim, Edit, Scenario};

#[derive(Args)]
pub struct TrafficArgs {
    #[command(subcommand)]
    pub command: TrafficCommand,
}

#[derive(Subcommand)]
pub enum TrafficCommand {
    /// Static user-equilibrium assignment (BPR costs) of a trip table on a network, both TNTP files.
    Assign(AssignArgs),
    /// The city's traffic model from a twin's store: zones, trips, the baseline, and streets closed against it.
    City(CityArgs),
}

#[derive(Args)]
pub struct CityArgs {
    /// The store (a SQLite file with an imported city: RoadLink, Building and PointOfInterest entities).
    #[arg(long, env = "URBANTWIN_DB", default_value = "./urbantwin.db")]
    pub db: String,
    /// Close this street (every car link of that name, both directions); repeatable.
    #[arg(long, value_name = "STREET")]
    pub close: Vec<String>,
    /// Run a scenario: a JSON file `{"name": ..., "edits": [...]}` as `/api/scenarios` takes it (closures,
    /// capacity, lanes, speed, one-way, added streets; see docs/models/traffic.md); after any `--close`.
    #[arg(long, value_name = "FILE.json")]
    pub scenario: Option<PathBuf>,
    /// Stop at this relative gap.
    #[arg(long, default_value_t = 1e-8)]
    pub gap: f64,
    /// Zone cell side in metres.
    #[arg(long, default_value_t = 400.0)]
    pub cell_m: f64,
    /// Target mean car trip time in minutes (capped for small extracts; see docs/models/traffic.md).
    #[arg(long, default_value_t = 12.0)]
    pub mean_trip_min: f64,
    /// Gateways where roads leave the extract: share of their capacity in use in the peak (0 turns them off).
    #[arg(long, default_value_t = 0.3)]
    pub gateway_load: f64,
    /// Gateways: the least capacity (veh/h) of a road leaving the extract to count as one.
    #[arg(long, default_value_t = 1000.0)]
    pub gateway_min_capacity: f64,
    /// Adjust the trip matrix to the store's traffic counts over this many rounds (0: no adjustment); the
    /// adjusted matrix is then the baseline.
    #[arg(long, default_value_t = 0)]
    pub adjust: usize,
    /// How many streets with the largest change to list.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Print one JSON object instead of a summary.
    #[arg(long)]
    pub json: bool,
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
        TrafficCommand::City(a) => run_city(&a),
    }
}

fn run_city(a: &CityArgs) -> Result<()> {
    let started = Instant::now();
    let entities = crate::store_entities(
        &a.db,
        &[
            "RoadLink",
            "Building",
            "PointOfInterest",
            "TrafficFlowObserved",
        ],
    )?;
    let options = twin_sim::traffic::city::CityOptions {
        cell_m: a.cell_m,
        target_mean_min: a.mean_trip_min,
        gateway_load: a.gateway_load,
        gateway_min_capacity: a.gateway_min_capacity,
        ..Default::default()
    };
    let mut model = twin_sim::traffic::city::build(&entities, &options)
        .with_context(|| format!("cannot build a traffic model from {}", a.db))?;
    let opts = Options {
        gap: a.gap,
        ..Options::default()
    };
    let mut base = assign(&model.network, &model.demand, &opts)?;
    let mut demand = model.demand.clone();
    let lengths = model.graph.length_m();
    let summary = |s: &twin_sim::traffic::assign::Solution| {
        let vkm: f64 = s
            .flows
            .iter()
            .zip(lengths)
            .map(|(x, l)| x * l / 1000.0)
            .sum();
        json!({
            "vehicleKm": vkm,
            "vehicleHours": s.report.tstt / 3600.0,
            "assignedTrips": s.report.assigned,
            "unservedTrips": s.report.unserved_trips,
            "unservedPairs": s.report.unserved.len(),
            "relativeGap": s.report.relative_gap,
            "iterations": s.report.iterations,
        })
    };
    let mut out = json!({
        "db": a.db,
        "zones": model.zones.len(),
        "gateways": model.zones.iter().filter(|z| z.external).count(),
        "trips": model.demand.total(),
        "beta": model.distribution.beta,
        "meanTripMinutes": model.distribution.mean_cost,
        "baseline": summary(&base),
    });
    let (counts, unmatched) = model.counts(&entities);
    if !counts.is_empty() || !unmatched.is_empty() {
        let fit = twin_sim::traffic::counts::fit(&counts, &base.flows);
        let finite = |x: f64| {
            if x.is_finite() {
                json!(x)
            } else {
                serde_json::Value::Null
            }
        };
        out["counts"] = json!({
            "matched": fit.counts.len(),
            "gehBelow5": fit.geh_below_5,
            "r2": finite(fit.r2),
            "rmse": finite(fit.rmse),
            "perCount": fit.counts.iter().map(|c| json!({
                "id": c.id, "observed": c.observed, "modelled": c.modelled, "geh": c.geh,
            })).collect::<Vec<_>>(),
            "unmatched": unmatched.iter().map(|u| json!({"id": u.id, "reason": u.reason})).collect::<Vec<_>>(),
        });
        if a.adjust > 0 && !counts.is_empty() {
            let adj = twin_sim::traffic::counts::adjust(
                &model.network,
                &demand,
                &counts,
                &opts,
                a.adjust,
            )?;
            out["adjusted"] = json!({
                "iterations": adj.iterations,
                "tripsBefore": demand.total(),
                "tripsAfter": adj.demand.total(),
                "gehBelow5": adj.after.geh_below_5,
                "r2": finite(adj.after.r2),
                "rmse": finite(adj.after.rmse),
                "perCount": adj.after.counts.iter().map(|c| json!({
                    "id": c.id, "observed": c.observed, "modelled": c.modelled, "geh": c.geh,
                })).collect::<Vec<_>>(),
            });
            // the adjusted matrix is the baseline from here on
            demand = adj.demand;
            base = adj.solution;
            out["baseline"] = summary(&base);
        }
    }
    let mut edits: Vec<Edit> = a
        .close
        .iter()
        .map(|name| Edit::CloseStreet { name: name.clone() })
        .collect();
    let mut title = format!("closing {}", a.close.join(", "));
    if let Some(path) = &a.scenario {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let s: Scenario = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a scenario", path.display()))?;
        title = if edits.is_empty() {
            s.name
        } else {
            format!("{title}, then {}", s.name)
        };
        edits.extend(s.edits);
    }
    if !edits.is_empty() {
        // the (possibly adjusted) matrix is the baseline's
        model.demand = demand;
        let scenario = Scenario {
            name: title.clone(),
            description: String::new(),
            edits,
        };
        let base_outcome = sim::evaluate(&model, &model.network, &base);
        let run = sim::RunOptions {
            gap: a.gap,
            ..Default::default()
        };
        let r = sim::run(&model, &base, &scenario, &run)
            .map_err(|e| anyhow::anyhow!("{e} (in {})", a.db))?;
        let d = sim::delta(&model, &base_outcome, &r.outcome);
        let s = &r.outcome.summary;
        out["title"] = json!(title);
        out["closed"] = json!(a.close);
        out["closedLinks"] = json!(r.applied.closed_links);
        out["edits"] = json!(r.applied.edits);
        out["scenario"] = json!({
            "vehicleKm": s.vehicle_km,
            "vehicleHours": s.vehicle_hours,
            "assignedTrips": s.assigned_trips,
            "unservedTrips": s.unserved_trips,
            "unservedPairs": s.unserved_pairs.len(),
            "relativeGap": s.relative_gap,
            "iterations": s.iterations,
        });
        out["unserved"] = json!(s
            .unserved_pairs
            .iter()
            .take(20)
            .map(|u| json!({"origin": u.origin, "destination": u.destination, "trips": u.trips}))
            .collect::<Vec<_>>());
        out["streets"] = json!(d
            .streets
            .iter()
            .filter(|st| (st.vehicle_km - st.base_vehicle_km).abs() > 1e-6)
            .take(a.top)
            .map(
                |st| json!({"street": st.name, "baselineVehicleKm": st.base_vehicle_km,
                             "scenarioVehicleKm": st.vehicle_km, "deltaPct": st.delta_pct})
            )
            .collect::<Vec<_>>());
        out["added"] = json!(sim::added_road_links(&r.applied, &r.outcome, true)
            .into_iter()
            .map(|(id, v)| json!({"id": id, "name": v.name, "flow": v.flow, "vc": v.vc}))
            .collect::<Vec<_>>());
    }
    out["seconds"] = json!(started.elapsed().as_secs_f64());
    if a.json {
        println!("{out}");
        return Ok(());
    }
    let b = &out["baseline"];
    println!(
        "{}: {} zones, {:.0} peak-hour car trips (mean {:.1} min); baseline {:.0} veh-km, {:.1} veh-h (gap {:.1e})",
        a.db,
        out["zones"],
        out["trips"].as_f64().unwrap_or(0.0),
        out["meanTripMinutes"].as_f64().unwrap_or(0.0),
        b["vehicleKm"].as_f64().unwrap_or(0.0),
        b["vehicleHours"].as_f64().unwrap_or(0.0),
        b["relativeGap"].as_f64().unwrap_or(0.0),
    );
    if let Some(c) = out.get("counts") {
        println!(
            "fit to {} counts: GEH < 5 on {:.0} %, R² {}, RMSE {} veh/h{}",
            c["matched"],
            c["gehBelow5"].as_f64().unwrap_or(0.0) * 100.0,
            c["r2"].as_f64().map_or("n/a".into(), |x| format!("{x:.2}")),
            c["rmse"]
                .as_f64()
                .map_or("n/a".into(), |x| format!("{x:.0}")),
            match c["unmatched"].as_array().map_or(0, Vec::len) {
                0 => String::new(),
                n => format!(" ({n} counts not matched to the network)"),
            }
        );
    }
    if let Some(c) = out.get("adjusted") {
        println!(
            "adjusted to the counts in {} rounds: {:.0} → {:.0} trips, GEH < 5 on {:.0} %, RMSE {} veh/h",
            c["iterations"],
            c["tripsBefore"].as_f64().unwrap_or(0.0),
            c["tripsAfter"].as_f64().unwrap_or(0.0),
            c["gehBelow5"].as_f64().unwrap_or(0.0) * 100.0,
            c["rmse"].as_f64().map_or("n/a".into(), |x| format!("{x:.0}")),
        );
    }
    if let Some(s) = out.get("scenario") {
        println!(
            "{}: {:.0} veh-km, {:.1} veh-h, {:.1} trips cut off ({} pairs)",
            out["title"].as_str().unwrap_or(""),
            s["vehicleKm"].as_f64().unwrap_or(0.0),
            s["vehicleHours"].as_f64().unwrap_or(0.0),
            s["unservedTrips"].as_f64().unwrap_or(0.0),
            s["unservedPairs"],
        );
        for st in out["streets"].as_array().into_iter().flatten() {
            println!(
                "  {:<32} {:>8.1} → {:>8.1} veh-km",
                st["street"].as_str().unwrap_or(""),
                st["baselineVehicleKm"].as_f64().unwrap_or(0.0),
                st["scenarioVehicleKm"].as_f64().unwrap_or(0.0)
            );
        }
        for ad in out["added"].as_array().into_iter().flatten() {
            println!(
                "  added {:<26} {:>8.0} veh/h, volume/capacity {:.2}",
                ad["name"].as_str().or(ad["id"].as_str()).unwrap_or(""),
                ad["flow"].as_f64().unwrap_or(0.0),
                ad["vc"].as_f64().unwrap_or(0.0)
            );
        }
    }
    Ok(())
}

/// The network and trip table of TNTP files as the assignment takes them (TNTP node `i` is node `i − 1`), and
/// the file's first through node.
pub(crate) fn read(net_path: &Path, trips_path: &Path) -> Result<(Network, Demand, usize)> {
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
