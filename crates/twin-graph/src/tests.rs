//! Cross-module tests: components with islands, oneway handling per mode, searches checked against Bellman–Ford
//! on random graphs, and the SiouxFalls benchmark read with twin-import's TNTP reader.

use std::path::{Path as FsPath, PathBuf};

use crate::{AStarHeuristic, LinkSpec, Mode, ModeSet, Network, NodeIdx, SearchWorkspace};

/// Nodes 1..=n on a small grid near Helsinki (lon/lat), about 100 m apart.
fn grid_nodes(n: u64) -> Vec<(u64, (f64, f64))> {
    (1..=n)
        .map(|i| {
            (
                i,
                (
                    24.9 + 0.002 * (i % 7) as f64,
                    60.15 + 0.001 * (i / 7) as f64,
                ),
            )
        })
        .collect()
}

fn two_way(id: u64, a: u64, b: u64, cost: f64, modes: ModeSet) -> [LinkSpec; 2] {
    let spec = LinkSpec::new(id, a, b, cost * 10.0, cost, 1000.0, modes);
    let back = spec.reversed(id + 1000, modes);
    [spec, back]
}

#[test]
fn components_find_islands_and_drop_them() {
    // Main loop 1→2→3→1, a two-way pair 4⇄5 (an island), a dead end 3→6, and node 7 reachable only by walking.
    let mut links = vec![
        LinkSpec::car(1, 1, 2, 100.0, 10.0, 900.0),
        LinkSpec::car(2, 2, 3, 100.0, 10.0, 900.0),
        LinkSpec::car(3, 3, 1, 100.0, 10.0, 900.0),
        LinkSpec::car(4, 3, 6, 100.0, 10.0, 900.0),
    ];
    links.extend(two_way(5, 4, 5, 10.0, ModeSet::CAR));
    links.extend(two_way(6, 1, 7, 10.0, ModeSet::WALK));
    let mut net = Network::build(grid_nodes(7), links).expect("valid");
    let idx = |ext: u64| net.node_index(ext).expect("node");

    let car = net.strongly_connected_components(Mode::Car);
    assert_eq!(car.count(), 3, "{{1,2,3}}, {{4,5}}, {{6}}");
    assert_eq!(car.component_of(idx(7)), None, "cars never touch node 7");
    assert_eq!(car.component_of(idx(1)), car.component_of(idx(3)));
    assert_ne!(car.component_of(idx(3)), car.component_of(idx(6)));
    let mut sizes = car.sizes().to_vec();
    sizes.sort_unstable();
    assert_eq!(sizes, vec![1, 2, 3]);
    assert_eq!(
        net.largest_component(Mode::Car),
        vec![idx(1), idx(2), idx(3)]
    );
    assert_eq!(net.largest_component(Mode::Walk), vec![idx(1), idx(7)]);
    assert!(net.largest_component(Mode::Bike).is_empty());

    let report = net.drop_islands(Mode::Car);
    assert_eq!(
        (report.kept_nodes, report.dropped_nodes, report.components),
        (3, 3, 3)
    );
    assert_eq!(net.strongly_connected_components(Mode::Car).count(), 1);
    assert!(
        !net.link_modes()[3].contains(Mode::Car),
        "3→6 leads out of the component"
    );
    // Walking is untouched.
    assert_eq!(net.largest_component(Mode::Walk).len(), 2);
    let report = net.drop_islands(Mode::Bike);
    assert_eq!(
        (report.kept_nodes, report.dropped_nodes, report.components),
        (0, 0, 0)
    );
}

#[test]
fn oneway_streets_bind_cars_but_not_walkers() {
    // 1→2 is oneway for cars; walkers get the reverse link from the spec builder. 2→3→1 is two-way for all.
    let oneway = LinkSpec::new("oneway", 1, 2, 100.0, 10.0, 900.0, ModeSet::ALL);
    let walk_back = oneway.reversed("oneway-walk-back", ModeSet::WALK);
    let mut links = vec![oneway, walk_back];
    links.extend(two_way(10, 2, 3, 50.0, ModeSet::ALL));
    links.extend(two_way(20, 3, 1, 50.0, ModeSet::ALL));
    let net = Network::build(grid_nodes(3), links).expect("valid");
    let (n1, n2) = (net.node_index(1).expect("1"), net.node_index(2).expect("2"));
    let costs = net.free_flow_s();

    let car = net
        .view(Mode::Car)
        .shortest_path(costs, n2, n1)
        .expect("search")
        .expect("path");
    assert_eq!(car.cost, 100.0, "cars go round via 3");
    assert_eq!(car.nodes(&net).len(), 3);
    let walk = net
        .view(Mode::Walk)
        .shortest_path(costs, n2, n1)
        .expect("search")
        .expect("path");
    assert_eq!(
        (walk.cost, walk.links.clone()),
        (10.0, vec![1]),
        "walkers take the reverse link"
    );
    assert_eq!(net.view(Mode::Car).out_links(n2).count(), 1);
    assert_eq!(net.view(Mode::Walk).out_links(n2).count(), 2);
    assert_eq!(net.view(Mode::Car).in_links(n1).count(), 1);
}

/// xorshift64*: a tiny deterministic generator, so the tests need no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Bellman–Ford over the raw link list: the slow, obviously correct reference.
fn bellman_ford(net: &Network, costs: &[f64], mode: Mode, from: NodeIdx) -> Vec<f64> {
    let mut dist = vec![f64::INFINITY; net.node_count()];
    dist[from as usize] = 0.0;
    for _ in 0..net.node_count() {
        let mut changed = false;
        for (l, &cost) in costs.iter().enumerate() {
            if !net.link_modes()[l].contains(mode) {
                continue;
            }
            let (a, b) = (net.link_from()[l] as usize, net.link_to()[l] as usize);
            if dist[a] + cost < dist[b] {
                dist[b] = dist[a] + cost;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    dist
}

#[test]
fn dijkstra_astar_and_bellman_ford_agree_on_random_graphs() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut ws = SearchWorkspace::new();
    for round in 0..40 {
        let n = 2 + rng.below(40);
        let m = rng.below(n * 4);
        let nodes: Vec<(u64, (f64, f64))> = (0..n)
            .map(|i| {
                (
                    i * 3 + 1,
                    (24.9 + 0.05 * rng.unit(), 60.1 + 0.03 * rng.unit()),
                )
            })
            .collect();
        let links: Vec<LinkSpec> = (0..m)
            .map(|l| {
                let (a, b) = (rng.below(n) * 3 + 1, rng.below(n) * 3 + 1);
                let modes = if rng.below(5) == 0 {
                    ModeSet::WALK
                } else {
                    ModeSet::ALL
                };
                LinkSpec::new(l, a, b, 100.0, 0.0, 1000.0, modes)
            })
            .collect();
        let net = Network::build(nodes, links).expect("valid");
        // Costs: mostly random, some zero, some closed.
        let costs: Vec<f64> = (0..m)
            .map(|_| match rng.below(10) {
                0 => 0.0,
                1 => f64::INFINITY,
                _ => 100.0 * rng.unit(),
            })
            .collect();
        for mode in [Mode::Car, Mode::Walk] {
            let view = net.view(mode);
            let heuristic = AStarHeuristic::from_costs(&view, &costs).expect("costs");
            for from in 0..n as NodeIdx {
                let reference = bellman_ford(&net, &costs, mode, from);
                view.one_to_all(&mut ws, &costs, from).expect("search");
                for to in 0..n as NodeIdx {
                    let expected = reference[to as usize];
                    let all = ws.cost(to).unwrap_or(f64::INFINITY);
                    assert!(
                        same(all, expected),
                        "round {round} {mode:?} {from}→{to}: one-to-all {all} vs {expected}"
                    );
                }
                for to in 0..n as NodeIdx {
                    let expected = reference[to as usize];
                    let dijkstra = view
                        .shortest_path_with(&mut ws, &costs, from, to)
                        .expect("search");
                    let astar = view
                        .astar(&mut ws, &costs, heuristic, from, to)
                        .expect("search");
                    for (name, path) in [("dijkstra", dijkstra), ("astar", astar)] {
                        match path {
                            None => assert!(
                                expected.is_infinite(),
                                "round {round} {name} {from}→{to}: no path"
                            ),
                            Some(p) => {
                                assert!(
                                    same(p.cost, expected),
                                    "round {round} {name} {from}→{to}: {}",
                                    p.cost
                                );
                                let sum: f64 = p.links.iter().map(|l| costs[*l as usize]).sum();
                                assert!(same(sum, p.cost), "the links add up to the cost");
                                let nodes = p.nodes(&net);
                                assert_eq!((nodes[0], nodes[nodes.len() - 1]), (from, to));
                                for (i, l) in p.links.iter().enumerate() {
                                    assert_eq!(
                                        net.link_from()[*l as usize],
                                        nodes[i],
                                        "consecutive links"
                                    );
                                    assert!(net.link_modes()[*l as usize].contains(mode));
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn same(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(1.0)
}

#[test]
fn multi_source_and_bounded_searches() {
    // A line 1-2-3-4-5 (two-way, 10 s per link).
    let links: Vec<LinkSpec> = (1..5)
        .flat_map(|i| two_way(i, i, i + 1, 10.0, ModeSet::ALL))
        .collect();
    let net = Network::build(grid_nodes(5), links).expect("valid");
    let view = net.view(Mode::Walk);
    let costs = net.free_flow_s();
    let mut ws = SearchWorkspace::new();
    let (n1, n3, n5) = (0, 2, 4);
    view.multi_source(&mut ws, costs, &[(n1, 0.0), (n5, 5.0)], f64::INFINITY)
        .expect("search");
    assert_eq!(ws.cost(n3), Some(20.0));
    assert_eq!(ws.source_of(n3), Some(n1));
    assert_eq!(
        ws.source_of(3),
        Some(n5),
        "node 4 is 15 from node 5's source and 30 from node 1"
    );
    assert_eq!(ws.cost(3), Some(15.0));
    assert_eq!(ws.settled().len(), 5);
    let path = ws.path_to(&net, 3).expect("path");
    assert_eq!((path.from, path.links.len()), (n5, 1));

    view.one_to_all_within(&mut ws, costs, n1, 25.0)
        .expect("search");
    assert_eq!(ws.settled(), &[0, 1, 2]);
    assert_eq!(ws.cost(3), None, "beyond the bound");
    assert_eq!(ws.pred_link(n1), None);

    // Reusing the workspace on a different network resizes it.
    let small =
        Network::build(grid_nodes(2), two_way(1, 1, 2, 3.0, ModeSet::ALL).to_vec()).expect("valid");
    small
        .view(Mode::Car)
        .one_to_all(&mut ws, small.free_flow_s(), 1)
        .expect("search");
    assert_eq!(ws.cost(0), Some(3.0));
}

#[test]
fn search_errors_are_typed() {
    let net =
        Network::build(grid_nodes(2), two_way(1, 1, 2, 3.0, ModeSet::ALL).to_vec()).expect("valid");
    let view = net.view(Mode::Car);
    let err = view.shortest_path(&[1.0], 0, 1).expect_err("short slice");
    assert_eq!(
        err.to_string(),
        "the cost slice has 1 entries but the network has 2 links"
    );
    let err = view
        .shortest_path(&[-1.0, 1.0], 0, 1)
        .expect_err("negative");
    assert!(
        err.to_string().contains("link 0 has an invalid cost -1"),
        "{err}"
    );
    assert!(view.shortest_path(&[f64::NAN, 1.0], 0, 1).is_err());
    let err = view
        .shortest_path(net.free_flow_s(), 0, 9)
        .expect_err("bad node");
    assert_eq!(
        err.to_string(),
        "node index 9 is out of range (the network has 2 nodes)"
    );
    assert!(view.shortest_path(net.free_flow_s(), 9, 0).is_err());
    assert!(AStarHeuristic::from_costs(&view, &[1.0]).is_err());
    // A closed link makes the target unreachable.
    assert_eq!(view.shortest_path(&[f64::INFINITY, 1.0], 0, 1), Ok(None));
    assert_eq!(
        view.shortest_path(net.free_flow_s(), 0, 0)
            .expect("search")
            .map(|p| p.cost),
        Some(0.0)
    );
}

#[test]
fn a_million_node_cycle_needs_no_recursion() {
    let n = 1_000_000u64;
    let nodes = (0..n).map(|i| {
        (
            i,
            (
                24.0 + (i % 1000) as f64 * 1e-4,
                60.0 + (i / 1000) as f64 * 1e-4,
            ),
        )
    });
    let links: Vec<LinkSpec> = (0..n)
        .map(|i| LinkSpec::car(i, i, (i + 1) % n, 10.0, 1.0, 900.0))
        .collect();
    let net = Network::build(nodes, links).expect("valid");
    let components = net.strongly_connected_components(Mode::Car);
    assert_eq!(components.count(), 1);
    assert_eq!(components.sizes(), &[n as u32]);
}

// ---- SiouxFalls through twin-import's TNTP reader -------------------------------------------------------------

fn tntp_dir() -> Option<PathBuf> {
    let data = FsPath::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    let dir = data.join("tntp");
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "CI=true but the TNTP test data is missing at {}",
            dir.display()
        );
    }
    eprintln!("skipping: TNTP test data not found at {}", dir.display());
    None
}

/// The test adapter from TNTP to link specs: SiouxFalls times are in 0.01 h (taken as minutes by convention, and
/// kept as the cost unit here), lengths are arbitrary; link ids are the 1-based row numbers.
fn sioux_falls(dir: &FsPath) -> (Network, twin_import::tntp::TntpNetwork) {
    let tntp =
        twin_import::tntp::read_net(dir.join("SiouxFalls/SiouxFalls_net.tntp")).expect("net");
    let nodes =
        twin_import::tntp::read_nodes(dir.join("SiouxFalls/SiouxFalls_node.tntp")).expect("nodes");
    let links = tntp
        .links
        .iter()
        .enumerate()
        .map(|(i, l)| {
            LinkSpec::car(
                i as u64 + 1,
                l.init.into(),
                l.term.into(),
                l.length,
                l.free_flow_time,
                l.capacity,
            )
        })
        .collect();
    let net = Network::build(nodes.iter().map(|n| (u64::from(n.id), (n.x, n.y))), links)
        .expect("network");
    (net, tntp)
}

#[test]
fn sioux_falls_free_flow_paths_match_floyd_warshall() {
    let Some(dir) = tntp_dir() else { return };
    let (net, tntp) = sioux_falls(&dir);
    assert_eq!((net.node_count(), net.link_count()), (24, 76));

    // Independent reference: Floyd–Warshall on a matrix built straight from the TNTP rows.
    let n = tntp.nodes as usize;
    let mut d = vec![vec![f64::INFINITY; n]; n];
    for (i, row) in d.iter_mut().enumerate() {
        row[i] = 0.0;
    }
    for l in &tntp.links {
        let (a, b) = (l.init as usize - 1, l.term as usize - 1);
        d[a][b] = d[a][b].min(l.free_flow_time);
    }
    for k in 0..n {
        for i in 0..n {
            for j in 0..n {
                if d[i][k] + d[k][j] < d[i][j] {
                    d[i][j] = d[i][k] + d[k][j];
                }
            }
        }
    }
    assert_eq!(d[0][23], 15.0, "1→3→12→13→24 at free flow (4 + 4 + 3 + 4)");

    let view = net.view(Mode::Car);
    let costs = net.free_flow_s();
    let heuristic = AStarHeuristic::from_costs(&view, costs).expect("costs");
    assert!(heuristic.cost_per_m() > 0.0);
    let mut ws = SearchWorkspace::new();
    let (n1, n24) = (
        net.node_index(1).expect("1"),
        net.node_index(24).expect("24"),
    );
    let path = view
        .shortest_path_with(&mut ws, costs, n1, n24)
        .expect("search")
        .expect("path");
    assert_eq!(path.cost, d[0][23]);
    let ext: Vec<u64> = path.nodes(&net).iter().map(|i| net.node_id(*i)).collect();
    assert_eq!((ext[0], ext[ext.len() - 1]), (1, 24));
    let astar = view
        .astar(&mut ws, costs, heuristic, n1, n24)
        .expect("search")
        .expect("path");
    assert_eq!(astar.cost, d[0][23]);
    for from in 0..n as NodeIdx {
        let ext_from = net.node_id(from) as usize - 1;
        view.one_to_all(&mut ws, costs, from).expect("search");
        for to in 0..n as NodeIdx {
            assert_eq!(
                ws.cost(to),
                Some(d[ext_from][net.node_id(to) as usize - 1]),
                "{from}→{to}"
            );
            let a = view
                .astar(&mut ws, costs, heuristic, from, to)
                .expect("search")
                .map(|p| p.cost);
            view.one_to_all(&mut ws, costs, from).expect("search");
            assert_eq!(a, ws.cost(to), "A* {from}→{to}");
        }
    }
}

#[test]
fn sioux_falls_is_strongly_connected_and_snappable() {
    let Some(dir) = tntp_dir() else { return };
    let (mut net, _) = sioux_falls(&dir);
    let components = net.strongly_connected_components(Mode::Car);
    assert_eq!((components.count(), components.sizes()), (1, &[24u32][..]));
    assert_eq!(net.largest_component(Mode::Car).len(), 24);
    let report = net.drop_islands(Mode::Car);
    assert_eq!(
        (report.kept_nodes, report.dropped_nodes, report.components),
        (24, 0, 1)
    );
    assert!(
        net.view(Mode::Walk).links().next().is_none(),
        "TNTP links are car-only"
    );

    // A point right on node 1 snaps to a link touching node 1, at distance ~0.
    let index = crate::SnapIndex::build(&net, Mode::Car);
    let (lon, lat) = net.node_coord(net.node_index(1).expect("1"));
    let snap = index.snap(lon, lat).expect("snap");
    let link = snap.link as usize;
    assert!(snap.distance_m < 1e-6, "{snap:?}");
    let touches_1 =
        net.node_id(net.link_from()[link]) == 1 || net.node_id(net.link_to()[link]) == 1;
    assert!(touches_1, "{snap:?}");
}
