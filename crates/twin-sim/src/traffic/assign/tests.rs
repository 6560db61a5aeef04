//! Small networks: exact answers, bad input, unserved demand, warm starts.

use super::*;

fn opts(algorithm: Algorithm, gap: f64) -> Options<'static> {
    Options {
        algorithm,
        gap,
        ..Options::default()
    }
}

/// A grid-like network with 4 zones at the corners of a 3×3 grid (zones 0..4 are the nodes 0..4; grid nodes 4..13),
/// connectors both ways and a zone that is not passed through.
fn grid() -> Network {
    let mut links = Vec::new();
    let mut both = |a: u32, b: u32, cap: f64, t: f64| {
        links.push(Link::new(a, b, cap, t));
        links.push(Link::new(b, a, cap, t));
    };
    // grid nodes 4..13 as (r, c) → 4 + 3r + c
    for r in 0..3u32 {
        for c in 0..3u32 {
            let n = 4 + 3 * r + c;
            if c < 2 {
                both(n, n + 1, 400.0 + 50.0 * f64::from(r), 2.0 + f64::from(c));
            }
            if r < 2 {
                both(
                    n,
                    n + 3,
                    500.0 - 40.0 * f64::from(c),
                    3.0 - 0.5 * f64::from(r),
                );
            }
        }
    }
    for (z, g) in [(0, 4), (1, 6), (2, 10), (3, 12)] {
        both(z, g, 10_000.0, 0.5);
    }
    Network::from_links(13, 4, 4, links).unwrap()
}

fn grid_demand() -> Demand {
    let mut d = Demand::new(4);
    for o in 0..4 {
        for t in 0..4 {
            if o != t {
                d.add(o, t, 150.0 + 40.0 * (o * 4 + t) as f64).unwrap();
            }
        }
    }
    d
}

fn node_balance(net: &Network, demand: &Demand, flows: &[f64]) -> f64 {
    let mut bal = vec![0.0; net.node_count()];
    for (l, link) in net.links().iter().enumerate() {
        bal[link.to as usize] += flows[l];
        bal[link.from as usize] -= flows[l];
    }
    for (z, (p, a)) in demand.productions_attractions().iter().enumerate() {
        bal[net.zone_node(z) as usize] -= a - p;
    }
    bal.iter().fold(0.0f64, |m, b| m.max(b.abs()))
}

#[test]
fn two_routes_split_at_equal_cost() {
    // t1 = 10 (1 + 0.15 (x1/1000)^4), t2 = 12 (1 + 0.15 (x2/500)^4), x1 + x2 = 1500
    let net = Network::from_links(
        2,
        2,
        0,
        vec![Link::new(0, 1, 1000.0, 10.0), Link::new(0, 1, 500.0, 12.0)],
    )
    .unwrap();
    let demand = Demand::from_triples(2, [(0, 1, 1500.0)]).unwrap();
    for algorithm in [Algorithm::B, Algorithm::BiconjugateFrankWolfe] {
        let s = assign(&net, &demand, &opts(algorithm, 1e-12)).unwrap();
        assert!(s.report.converged(), "{algorithm:?} {:?}", s.report);
        assert!((s.costs[0] - s.costs[1]).abs() < 1e-8, "{:?}", s.costs);
        assert!((s.flows[0] + s.flows[1] - 1500.0).abs() < 1e-9);
        assert!(s.flows[1] > 0.0 && s.flows[0] > s.flows[1]);
    }
}

#[test]
fn b_and_frank_wolfe_agree_on_a_grid() {
    let net = grid();
    let demand = grid_demand();
    let b = assign(&net, &demand, &opts(Algorithm::B, 1e-12)).unwrap();
    assert!(b.report.converged(), "{:?}", b.report);
    assert!(b.report.relative_gap <= 1e-12);
    assert!(node_balance(&net, &demand, &b.flows) < 1e-9);
    let f = assign(&net, &demand, &opts(Algorithm::BiconjugateFrankWolfe, 1e-6)).unwrap();
    assert!(f.report.converged(), "{:?}", f.report);
    let rel = (f.report.objective - b.report.objective) / b.report.objective;
    assert!((0.0..1e-5).contains(&rel), "{rel}");
    assert!(node_balance(&net, &demand, &f.flows) < 1e-6);
    // zone nodes below the first through node carry no through traffic: what enters a zone node is what it
    // attracts
    let pa = demand.productions_attractions();
    for z in 0..4u32 {
        let inflow: f64 = net
            .links()
            .iter()
            .zip(&b.flows)
            .filter(|(l, _)| l.to == z)
            .map(|(_, f)| f)
            .sum();
        assert!((inflow - pa[z as usize].1).abs() < 1e-9, "zone {z}");
    }
    assert_eq!(b.report.history.len(), b.report.iterations + 1);
    assert_eq!(b.report.history[0].iteration, 0);
}

#[test]
fn bad_links_are_refused() {
    let bad = |link: Link| {
        Network::from_links(2, 2, 0, vec![link])
            .unwrap_err()
            .to_string()
    };
    let mut l = Link::new(0, 1, -5.0, 1.0);
    assert!(bad(l).contains("capacity is negative"), "{}", bad(l));
    l.capacity = 0.0;
    assert!(bad(l).contains("capacity is 0"), "{}", bad(l));
    l.capacity = 100.0;
    l.free_flow_time = f64::NAN;
    assert!(bad(l).contains("free-flow time is not a finite number"));
    l.free_flow_time = 1.0;
    l.to = 7;
    assert!(bad(l).contains("outside"));
    l.to = 1;
    l.b = -0.15;
    assert!(bad(l).contains("B is negative"));

    // zero free-flow time: refused at solve time, unless a distance weight makes the cost positive
    let mut l = Link::new(0, 1, 100.0, 0.0);
    l.length = 2.0;
    let net = Network::from_links(2, 2, 0, vec![l])
        .unwrap()
        .with_node_labels(vec![1, 2]);
    let demand = Demand::from_triples(2, [(0, 1, 10.0)]).unwrap();
    let err = assign(&net, &demand, &Options::default()).unwrap_err();
    assert!(
        matches!(
            err,
            AssignError::InvalidLink {
                link: 0,
                from: 1,
                to: 2,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("generalised cost at zero flow is 0"),
        "{err}"
    );
    let s = assign(
        &net,
        &demand,
        &Options {
            distance_factor: 0.5,
            ..Options::default()
        },
    )
    .unwrap();
    assert_eq!(s.flows, vec![10.0]);
    assert_eq!(s.costs, vec![1.0]);

    // bad demand and options
    assert!(Demand::from_triples(2, [(0, 1, -1.0)]).is_err());
    assert!(Demand::from_triples(2, [(0, 1, f64::INFINITY)]).is_err());
    assert!(Demand::from_triples(2, [(0, 2, 1.0)]).is_err());
    let o = Options {
        gap: f64::NAN,
        ..Options::default()
    };
    assert!(matches!(
        assign(&net, &demand, &o),
        Err(AssignError::Options(_))
    ));
    assert!(assign(&net, &Demand::new(3), &Options::default()).is_err());
}

#[test]
fn disconnected_pairs_are_reported_and_the_rest_assigned() {
    // zones 0, 1, 2; 0 ⇄ 1 joined, 2 isolated; 0 → 1 by two routes
    let links = vec![
        Link::new(0, 1, 100.0, 5.0),
        Link::new(0, 3, 100.0, 2.0),
        Link::new(3, 1, 100.0, 2.0),
        Link::new(1, 0, 100.0, 5.0),
    ];
    let net = Network::from_links(4, 3, 3, links).unwrap();
    let demand =
        Demand::from_triples(3, [(0, 1, 300.0), (0, 2, 40.0), (2, 0, 7.0), (1, 0, 20.0)]).unwrap();
    for algorithm in [Algorithm::B, Algorithm::BiconjugateFrankWolfe] {
        let s = assign(&net, &demand, &opts(algorithm, 1e-10)).unwrap();
        let r = &s.report;
        assert!(r.converged(), "{algorithm:?} {r:?}");
        assert_eq!(
            r.unserved,
            vec![
                Unserved {
                    origin: 0,
                    destination: 2,
                    trips: 40.0
                },
                Unserved {
                    origin: 2,
                    destination: 0,
                    trips: 7.0
                }
            ]
        );
        assert_eq!(r.unserved_trips, 47.0);
        assert_eq!(r.assigned, 320.0);
        assert!((s.flows[0] + s.flows[1] - 300.0).abs() < 1e-9);
        assert!((s.flows[3] - 20.0).abs() < 1e-12);
        assert!(s.flows.iter().chain(&s.costs).all(|v| v.is_finite()));
    }
    // a closure that cuts 1 → 0 off
    let mut closed = net.clone();
    closed.close_links(&[3]);
    let s = assign(&closed, &demand, &Options::default()).unwrap();
    assert_eq!(s.report.unserved.len(), 3);
    assert_eq!(s.flows[3], 0.0);
    assert_eq!(s.costs[3], f64::INFINITY);
}

#[test]
fn no_demand_is_no_error() {
    let net = grid();
    for algorithm in [Algorithm::B, Algorithm::BiconjugateFrankWolfe] {
        let s = assign(&net, &Demand::new(4), &opts(algorithm, 1e-6)).unwrap();
        assert_eq!(s.report.stop, Stop::NoDemand);
        assert_eq!(s.report.relative_gap, 0.0);
        assert_eq!(s.report.objective, 0.0);
        assert!(s.flows.iter().all(|f| *f == 0.0));
    }
    // only intrazonal trips
    let d = Demand::from_triples(4, [(1, 1, 50.0)]).unwrap();
    let s = assign(&net, &d, &Options::default()).unwrap();
    assert_eq!(s.report.intrazonal_trips, 50.0);
    assert_eq!(s.report.stop, Stop::NoDemand);
}

#[test]
fn warm_start_after_a_capacity_change() {
    let net = grid();
    let demand = grid_demand();
    let base = assign(&net, &demand, &opts(Algorithm::B, 1e-12)).unwrap();
    // the same problem again: converged before any iteration
    let again = assign(
        &net,
        &demand,
        &Options {
            warm_start: Some(&base),
            ..opts(Algorithm::B, 1e-12)
        },
    )
    .unwrap();
    assert_eq!(again.report.iterations, 0);
    assert_eq!(again.report.warm_origins, 4);
    // halve one busy link's capacity
    let busiest = (0..net.link_count())
        .max_by(|a, b| base.flows[*a].total_cmp(&base.flows[*b]))
        .unwrap();
    let mut edited = net.clone();
    let mut l = *edited.link(busiest as u32);
    l.capacity *= 0.5;
    edited.set_link(busiest as u32, l).unwrap();
    let cold = assign(&edited, &demand, &opts(Algorithm::B, 1e-12)).unwrap();
    let warm = assign(
        &edited,
        &demand,
        &Options {
            warm_start: Some(&base),
            ..opts(Algorithm::B, 1e-12)
        },
    )
    .unwrap();
    assert!(warm.report.converged() && cold.report.converged());
    assert!((warm.report.objective - cold.report.objective).abs() < 1e-9 * cold.report.objective);
    assert!(warm.report.iterations <= cold.report.iterations);
    // a closure: origins whose flow used the closed link start afresh, the others keep their bush
    let mut closed = net.clone();
    closed.close_links(&[busiest as u32]);
    let warm = assign(
        &closed,
        &demand,
        &Options {
            warm_start: Some(&base),
            ..opts(Algorithm::B, 1e-10)
        },
    )
    .unwrap();
    let cold = assign(&closed, &demand, &opts(Algorithm::B, 1e-10)).unwrap();
    assert!(warm.report.converged());
    assert!(warm.report.warm_origins < 4);
    assert!((warm.report.objective - cold.report.objective).abs() < 1e-8 * cold.report.objective);
    assert_eq!(warm.flows[busiest], 0.0);
    // Frank–Wolfe starts from the flows
    let f = assign(
        &edited,
        &demand,
        &Options {
            warm_start: Some(&base),
            ..opts(Algorithm::BiconjugateFrankWolfe, 1e-6)
        },
    )
    .unwrap();
    assert!(f.report.converged());
    assert_eq!(f.report.warm_origins, 4);
}

#[test]
fn a_closure_reroutes_only_the_paths_that_used_the_link() {
    let net = grid();
    let demand = grid_demand();
    let base = assign(&net, &demand, &opts(Algorithm::B, 1e-12)).unwrap();
    // the busiest link between grid nodes (closing a connector would cut a zone off)
    let busiest = (0..net.link_count())
        .filter(|l| net.link(*l as u32).from >= 4 && net.link(*l as u32).to >= 4)
        .max_by(|a, b| base.flows[*a].total_cmp(&base.flows[*b]))
        .unwrap();
    assert!(base.flows[busiest] > 0.0);
    let mut closed = net.clone();
    closed.close_links(&[busiest as u32]);
    let cold = assign(&closed, &demand, &opts(Algorithm::B, 1e-12)).unwrap();
    let warm = assign(
        &closed,
        &demand,
        &Options {
            warm_start: Some(&base),
            ..opts(Algorithm::B, 1e-12)
        },
    )
    .unwrap();
    assert!(warm.report.converged() && cold.report.converged());
    // every origin keeps its bush; those whose flow used the link had only that flow rerouted
    assert_eq!(warm.report.warm_origins, 4);
    assert!(warm.report.repaired_origins >= 1, "{:?}", warm.report);
    assert_eq!(warm.flows[busiest], 0.0);
    assert!((warm.report.objective - cold.report.objective).abs() < 1e-9 * cold.report.objective);
    assert!(node_balance(&closed, &demand, &warm.flows) < 1e-9 * demand.total());
    assert!(warm.report.iterations <= cold.report.iterations);
    // the repaired start is closer than a cold start (on this small grid the closed link carries a large share of
    // the trips, which start on their new shortest paths)
    assert!(
        warm.report.history[0].relative_gap < cold.report.history[0].relative_gap,
        "{} vs {}",
        warm.report.history[0].relative_gap,
        cold.report.history[0].relative_gap
    );
}

/// TSTT, SPTT and the relative gap of `s` recomputed from scratch: the link costs from the flows, every trip's
/// shortest path by a plain Dijkstra at those costs.
fn recomputed_gap(net: &Network, demand: &Demand, s: &Solution) -> (f64, f64, f64) {
    let model = bpr::link_costs(net, 0.0, 0.0);
    let mut tstt = 0.0;
    let mut costs = vec![f64::INFINITY; net.link_count()];
    for (l, m) in model.iter().enumerate() {
        if net.is_open(l as u32) {
            costs[l] = m.cost(s.flows[l]);
            tstt += s.flows[l] * costs[l];
        }
    }
    let mut tree = shortest::Tree::new(net.node_count());
    let mut sptt = 0.0;
    for o in 0..demand.zones() {
        tree.search(net, &costs, net.zone_node(o));
        for &(d, v) in demand.row(o) {
            sptt += v * tree.dist[net.zone_node(d as usize) as usize];
        }
    }
    (tstt, sptt, relative_gap(tstt, sptt))
}

#[test]
fn the_reported_gap_is_the_gap_of_the_returned_flows() {
    let net = grid();
    let demand = grid_demand();
    let check = |net: &Network, s: &Solution| {
        let (tstt, sptt, gap) = recomputed_gap(net, &demand, s);
        let r = &s.report;
        assert!(
            (r.tstt - tstt).abs() <= 1e-12 * tstt,
            "{} vs {tstt}",
            r.tstt
        );
        assert!(
            (r.sptt - sptt).abs() <= 1e-12 * sptt,
            "{} vs {sptt}",
            r.sptt
        );
        assert!(
            (r.relative_gap - gap).abs() <= 1e-12,
            "{} vs {gap}",
            r.relative_gap
        );
        assert_eq!(
            r.history.last().map(|h| h.relative_gap),
            Some(r.relative_gap)
        );
    };
    for gap in [1e-2, 1e-6, 1e-12] {
        let base = assign(&net, &demand, &opts(Algorithm::B, gap)).unwrap();
        check(&net, &base);
        // a change that touches some origins only: they are re-equilibrated before the first measurement, which is
        // still exact
        let busiest = (0..net.link_count())
            .filter(|l| net.link(*l as u32).from >= 4 && net.link(*l as u32).to >= 4)
            .max_by(|a, b| base.flows[*a].total_cmp(&base.flows[*b]))
            .unwrap();
        let mut cut = net.clone();
        let mut link = *cut.link(busiest as u32);
        link.capacity *= 0.7;
        cut.set_link(busiest as u32, link).unwrap();
        let mut closed = net.clone();
        closed.close_links(&[busiest as u32]);
        for scenario in [&cut, &closed] {
            let warm = assign(
                scenario,
                &demand,
                &Options {
                    warm_start: Some(&base),
                    ..opts(Algorithm::B, gap)
                },
            )
            .unwrap();
            assert!(warm.report.converged(), "{:?}", warm.report);
            assert_eq!(warm.report.warm_origins, 4);
            check(scenario, &warm);
        }
    }
}

#[test]
fn progress_can_stop_a_solve() {
    let net = grid();
    let demand = grid_demand();
    let stop_after_one = |s: &IterationStats| s.iteration < 1;
    let s = assign(
        &net,
        &demand,
        &Options {
            progress: Some(&stop_after_one),
            ..opts(Algorithm::B, 0.0)
        },
    )
    .unwrap();
    assert_eq!(s.report.stop, Stop::Cancelled);
    assert_eq!(s.report.iterations, 1);
    let s = assign(
        &net,
        &demand,
        &Options {
            max_iter: 2,
            ..opts(Algorithm::BiconjugateFrankWolfe, 0.0)
        },
    )
    .unwrap();
    assert_eq!(
        (s.report.stop, s.report.iterations),
        (Stop::MaxIterations, 2)
    );
}

#[test]
fn a_network_from_the_street_graph_keeps_its_link_indices() {
    use twin_graph::{LinkSpec, Mode, ModeSet};
    let nodes = vec![
        (1, (24.94, 60.17)),
        (2, (24.95, 60.17)),
        (3, (24.95, 60.18)),
    ];
    let links = vec![
        LinkSpec::car(1, 1, 2, 500.0, 40.0, 1800.0),
        LinkSpec::new(2, 1, 3, 900.0, 600.0, 0.0, ModeSet::WALK),
        LinkSpec::car(3, 2, 3, 600.0, 50.0, 1800.0),
        LinkSpec::car(4, 1, 3, 1500.0, 100.0, 900.0),
    ];
    let g = twin_graph::Network::build(nodes, links).unwrap();
    let net = Network::from_graph(&g.view(Mode::Car), vec![0, 2], 0.15, 4.0).unwrap();
    assert!(!net.is_open(1));
    let demand = Demand::from_triples(2, [(0, 1, 2500.0)]).unwrap();
    let s = assign(&net, &demand, &opts(Algorithm::B, 1e-12)).unwrap();
    assert_eq!(s.flows[1], 0.0);
    assert!((s.flows[0] - s.flows[2]).abs() < 1e-9);
    assert!((s.flows[0] + s.flows[3] - 2500.0).abs() < 1e-9);
    assert!((s.costs[0] + s.costs[2] - s.costs[3]).abs() < 1e-8);
}
