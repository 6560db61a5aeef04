//! Times cold solves of the TNTP benchmark networks with Algorithm B to relative gap 1e-10 (or `--gap G`), `N` runs
//! each interleaved across the networks (`--repeat N`, default 3), and prints the medians:
//!
//! ```sh
//! cargo run --release -p twin-sim --example cold -- [--data DIR] [--repeat N] [--gap G] [NETWORK ...]
//! ```
//!
//! `NETWORK` is a folder of `DIR` (default `../shared/data/tntp`); default: all four.

mod support;

use std::path::PathBuf;

use twin_sim::traffic::assign::{assign, Options};

fn main() {
    let mut args = std::env::args().skip(1);
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/tntp");
    let mut repeat = 3;
    let mut gap = 1e-10;
    let mut names = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--data" => dir = PathBuf::from(args.next().expect("--data DIR")),
            "--repeat" => repeat = args.next().expect("--repeat N").parse().expect("N"),
            "--gap" => gap = args.next().expect("--gap G").parse().expect("G"),
            _ => names.push(a),
        }
    }
    if names.is_empty() {
        names = ["SiouxFalls", "Anaheim", "Barcelona", "Chicago-Sketch"]
            .map(String::from)
            .to_vec();
    }
    let cases: Vec<_> = names.iter().map(|n| support::benchmark(&dir, n)).collect();
    let mut times = vec![Vec::new(); cases.len()];
    let mut cpu = vec![Vec::new(); cases.len()];
    let mut last = vec![None; cases.len()];
    for _ in 0..repeat {
        for (i, case) in cases.iter().enumerate() {
            let t0 = support::cpu_seconds();
            let s = assign(
                &case.net,
                &case.demand,
                &Options {
                    gap,
                    toll_factor: case.toll_factor,
                    distance_factor: case.distance_factor,
                    ..Options::default()
                },
            )
            .expect("assign");
            cpu[i].push(support::cpu_seconds() - t0);
            times[i].push(s.report.seconds);
            last[i] = Some(s.report);
        }
    }
    for (i, case) in cases.iter().enumerate() {
        let r = last[i].as_ref().expect("repeat ≥ 1");
        let mut t = times[i].clone();
        t.sort_by(f64::total_cmp);
        println!(
            "{:15} {:3} iterations, gap {:.1e}, objective {:.6}, median {:.4} s (runs: {}), CPU {:.4} s",
            case.name,
            r.iterations,
            r.relative_gap,
            r.objective,
            support::median(&times[i]),
            t.iter()
                .map(|x| format!("{x:.4}"))
                .collect::<Vec<_>>()
                .join(" "),
            support::median(&cpu[i])
        );
    }
}
