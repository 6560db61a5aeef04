//! Times a scenario re-solve to relative gap 1e-10, cold and warm-started from the baseline: the `K` busiest links
//! whose cost depends on their flow lose a fifth of their capacity (`FACTOR=0.9` in the environment for a tenth):
//! `cargo run --release -p twin-sim --example warm -- NET TRIPS K [TOLL_FACTOR DISTANCE_FACTOR]`.

use twin_sim::traffic::assign::{assign, Demand, Link, Network, Options, Solution};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let tn = twin_import::tntp::read_net(&args[1]).expect("net");
    let tt = twin_import::tntp::read_trips(&args[2]).expect("trips");
    let k: usize = args[3].parse().expect("k");
    let factor: f64 = std::env::var("FACTOR")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.8);
    let tf: f64 = args.get(4).map_or(0.0, |g| g.parse().expect("toll factor"));
    let df: f64 = args
        .get(5)
        .map_or(0.0, |g| g.parse().expect("distance factor"));
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
    .expect("network");
    let demand = Demand::from_triples(
        tn.zones as usize,
        tt.od
            .iter()
            .map(|&(o, d, v)| (o as usize - 1, d as usize - 1, v)),
    )
    .expect("demand");
    let solve = |net: &Network, warm: Option<&Solution>| {
        assign(
            net,
            &demand,
            &Options {
                gap: 1e-10,
                toll_factor: tf,
                distance_factor: df,
                warm_start: warm,
                ..Options::default()
            },
        )
        .expect("assign")
    };
    let base = solve(&net, None);
    let mut order: Vec<usize> = (0..net.link_count()).collect();
    order.retain(|l| {
        let x = net.link(*l as u32);
        x.b > 0.0 && x.power > 0.0 && x.free_flow_time > 0.0
    });
    order.sort_by(|a, b| base.flows[*b].total_cmp(&base.flows[*a]));
    let mut scenario = net.clone();
    for &l in &order[..k] {
        let mut link = *scenario.link(l as u32);
        link.capacity *= factor;
        scenario.set_link(l as u32, link).expect("edit");
    }
    let cold = solve(&scenario, None);
    let warm = solve(&scenario, Some(&base));
    let show = |name: &str, s: &Solution| {
        let h: Vec<String> = s
            .report
            .history
            .iter()
            .map(|h| format!("{:.1e}", h.relative_gap))
            .collect();
        println!(
            "{name}: {} iterations, {:.4} s, gap {:.2e}, objective {:.6} [{}]",
            s.report.iterations,
            s.report.seconds,
            s.report.relative_gap,
            s.report.objective,
            h.join(" ")
        );
    };
    show("baseline", &base);
    show("cold", &cold);
    show("warm", &warm);
    println!(
        "warm/cold time {:.2}",
        warm.report.seconds / cold.report.seconds
    );
}
