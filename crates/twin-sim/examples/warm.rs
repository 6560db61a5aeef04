//! Times scenario re-solves, cold and warm-started from the baseline's solution, to relative gaps 1e-6 and 1e-10:
//!
//! ```sh
//! cargo run --release -p twin-sim --example warm -- [--data DIR] [--repeat N] [--scenario cut|close|both] \
//!     [NETWORK ...]
//! ```
//!
//! `NETWORK` is a folder of `DIR` (default `../shared/data/tntp`): `SiouxFalls`, `Anaheim`, `Barcelona`,
//! `Chicago-Sketch` (default: the last two). Scenarios: `cut`, the busiest link whose cost depends on its flow loses a
//! fifth of its capacity; `close`, the link of median flow among the loaded flow-dependent links is closed (the next
//! one down if that disconnects a pair). The baseline is solved to 1e-10; cold and warm solves alternate `N` times
//! (default 5) and the medians of the solve times are printed (and their ratio in CPU time of all threads, which other
//! jobs on a shared machine disturb less), with the gap of every iteration of the last pair. A warm start measures its
//! first gap once it has re-equilibrated the origins its change touched: its iterations count from there (0 when that
//! first measurement is already below the target).

mod support;

use std::path::PathBuf;

use twin_sim::traffic::assign::{assign, Network, Options, Solution};

fn main() {
    let mut args = std::env::args().skip(1);
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/tntp");
    let mut repeat = 5;
    let mut scenarios = vec!["cut", "close"];
    let mut names = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--data" => dir = PathBuf::from(args.next().expect("--data DIR")),
            "--repeat" => repeat = args.next().expect("--repeat N").parse().expect("N"),
            "--scenario" => {
                scenarios = match args.next().expect("--scenario").as_str() {
                    "cut" => vec!["cut"],
                    "close" => vec!["close"],
                    _ => vec!["cut", "close"],
                }
            }
            _ => names.push(a),
        }
    }
    if names.is_empty() {
        names = vec!["Barcelona".into(), "Chicago-Sketch".into()];
    }
    for name in &names {
        let case = support::benchmark(&dir, name);
        let solve = |net: &Network, warm: Option<&Solution>, gap: f64| {
            assign(
                net,
                &case.demand,
                &Options {
                    gap,
                    toll_factor: case.toll_factor,
                    distance_factor: case.distance_factor,
                    warm_start: warm,
                    ..Options::default()
                },
            )
            .expect("assign")
        };
        let base = solve(&case.net, None, 1e-10);
        let origins = (0..case.demand.zones())
            .filter(|o| !case.demand.row(*o).is_empty())
            .count();
        let mut loaded: Vec<usize> = (0..case.net.link_count())
            .filter(|l| {
                let x = case.net.link(*l as u32);
                x.b > 0.0 && x.power > 0.0 && x.free_flow_time > 0.0 && base.flows[*l] > 0.0
            })
            .collect();
        loaded.sort_by(|a, b| base.flows[*b].total_cmp(&base.flows[*a]));
        for scenario in &scenarios {
            let (scenario_net, what) = if *scenario == "cut" {
                let l = loaded[0];
                let mut net = case.net.clone();
                let mut link = *net.link(l as u32);
                link.capacity *= 0.8;
                net.set_link(l as u32, link).expect("edit");
                (
                    net,
                    format!("capacity of link {l} (flow {:.0}) × 0.8", base.flows[l]),
                )
            } else {
                let mut found = None;
                for &l in &loaded[loaded.len() / 2..] {
                    let mut net = case.net.clone();
                    net.close_links(&[l as u32]);
                    if solve(&net, None, 1e-4).report.unserved.is_empty() {
                        found = Some((net, format!("link {l} (flow {:.0}) closed", base.flows[l])));
                        break;
                    }
                }
                found.expect("a link whose closure disconnects nothing")
            };
            println!("{name}, {what}:");
            for gap in [1e-6, 1e-10] {
                let (mut tc, mut tw) = (Vec::new(), Vec::new());
                let (mut cc, mut cw) = (Vec::new(), Vec::new());
                let mut last = None;
                for _ in 0..repeat {
                    let t0 = support::cpu_seconds();
                    let c = solve(&scenario_net, None, gap);
                    let t1 = support::cpu_seconds();
                    let w = solve(&scenario_net, Some(&base), gap);
                    let t2 = support::cpu_seconds();
                    tc.push(c.report.seconds);
                    tw.push(w.report.seconds);
                    cc.push(t1 - t0);
                    cw.push(t2 - t1);
                    last = Some((c, w));
                }
                let (c, w) = last.expect("repeat ≥ 1");
                let (mc, mw) = (support::median(&tc), support::median(&tw));
                let trace = |s: &Solution| {
                    s.report
                        .history
                        .iter()
                        .map(|h| format!("{:.1e}", h.relative_gap))
                        .collect::<Vec<_>>()
                        .join(" ")
                };
                println!(
                    "  to {gap:.0e}: cold {} it {mc:.4} s, warm {} it {mw:.4} s ({} of {} origins warm, {} repaired), \
                     warm/cold {:.2} (CPU time {:.2}); objectives differ by {:.1e}",
                    c.report.iterations,
                    w.report.iterations,
                    w.report.warm_origins,
                    origins,
                    w.report.repaired_origins,
                    mw / mc,
                    support::median(&cw) / support::median(&cc),
                    (w.report.objective - c.report.objective).abs() / c.report.objective
                );
                println!("    cold [{}]", trace(&c));
                println!("    warm [{}]", trace(&w));
            }
        }
    }
}
