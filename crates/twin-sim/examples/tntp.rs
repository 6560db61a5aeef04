//! Solves a TNTP network and prints every iteration: `cargo run --release -p twin-sim --example tntp -- NET TRIPS
//! [b|bfw] [GAP] [TOLL_FACTOR DISTANCE_FACTOR]`.

mod support;

use twin_sim::traffic::assign::{assign, Algorithm, Options};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let algorithm = match args.get(3).map(String::as_str) {
        Some("bfw") => Algorithm::BiconjugateFrankWolfe,
        _ => Algorithm::B,
    };
    let gap: f64 = args.get(4).map_or(1e-10, |g| g.parse().expect("gap"));
    let tf: f64 = args.get(5).map_or(0.0, |g| g.parse().expect("toll factor"));
    let df: f64 = args
        .get(6)
        .map_or(0.0, |g| g.parse().expect("distance factor"));
    let case = support::read(
        &args[1],
        std::path::Path::new(&args[1]),
        std::path::Path::new(&args[2]),
        tf,
        df,
    );
    let (net, demand) = (case.net, case.demand);
    let show = |s: &twin_sim::traffic::assign::IterationStats| {
        println!(
            "{:4} {:.3e} {:.9} {:.3}",
            s.iteration, s.relative_gap, s.objective, s.seconds
        );
        true
    };
    let s = assign(
        &net,
        &demand,
        &Options {
            algorithm,
            gap,
            toll_factor: tf,
            distance_factor: df,
            max_seconds: Some(30.0),
            progress: Some(&show),
            ..Options::default()
        },
    )
    .expect("assign");
    println!(
        "{:?} iterations {} gap {:.3e} objective {:.6} seconds {:.3}",
        s.report.stop,
        s.report.iterations,
        s.report.relative_gap,
        s.report.objective,
        s.report.seconds
    );
}
