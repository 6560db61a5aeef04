//! Shared by the examples: reading a TNTP network and trip table into the assignment's types, and medians.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use twin_sim::traffic::assign::{Demand, Link, Network};

/// A TNTP network and its trips.
pub struct Case {
    pub name: String,
    pub net: Network,
    pub demand: Demand,
    pub toll_factor: f64,
    pub distance_factor: f64,
}

/// Reads `NET` and `TRIPS` (TNTP files).
pub fn read(name: &str, net: &Path, trips: &Path, toll_factor: f64, distance_factor: f64) -> Case {
    let tn = twin_import::tntp::read_net(net).expect("net");
    let tt = twin_import::tntp::read_trips(trips).expect("trips");
    let links = tn
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
        tn.first_thru_node as usize - 1,
        links,
    )
    .expect("network")
    .with_node_labels((1..=u64::from(tn.nodes)).collect());
    let demand = Demand::from_triples(
        tn.zones as usize,
        tt.od
            .iter()
            .map(|&(o, d, v)| (o as usize - 1, d as usize - 1, v)),
    )
    .expect("demand");
    Case {
        name: name.to_string(),
        net,
        demand,
        toll_factor,
        distance_factor,
    }
}

/// The four benchmark networks of `dir` (`../shared/data/tntp`), by name: `SiouxFalls`, `Anaheim`, `Barcelona`,
/// `Chicago-Sketch` (with its generalised-cost weights 0.02 and 0.04).
pub fn benchmark(dir: &Path, name: &str) -> Case {
    let (stem, tf, df) = match name {
        "SiouxFalls" => ("SiouxFalls", 0.0, 0.0),
        "Anaheim" => ("Anaheim", 0.0, 0.0),
        "Barcelona" => ("Barcelona", 0.0, 0.0),
        "Chicago-Sketch" => ("ChicagoSketch", 0.02, 0.04),
        _ => panic!("unknown network {name}"),
    };
    let base: PathBuf = dir.join(name);
    read(
        name,
        &base.join(format!("{stem}_net.tntp")),
        &base.join(format!("{stem}_trips.tntp")),
        tf,
        df,
    )
}

/// The median of `v` (the mean of the two middle values for an even count).
pub fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// CPU time of all this process's threads so far, in seconds (Linux: `/proc/self/task/*/schedstat`; 0 elsewhere).
/// Less disturbed than wall time by other jobs on a shared machine.
pub fn cpu_seconds() -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    let mut ns = 0u64;
    for t in tasks.flatten() {
        if let Ok(s) = std::fs::read_to_string(t.path().join("schedstat")) {
            ns += s
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    ns as f64 * 1e-9
}
