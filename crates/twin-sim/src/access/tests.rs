use twin_graph::{LinkSpec, Mode, ModeSet, Network, NodeIdx};

use super::graph::{AccessGraph, Movement};
use super::nearest::{from_place, Anchor, KNearest};

/// splitmix64: deterministic pseudo-random numbers for the generated networks.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn unit(seed: u64, i: u64) -> f64 {
    (mix(seed ^ mix(i)) >> 11) as f64 / (1u64 << 53) as f64
}

/// A `w × h` grid around central Helsinki with random lengths (30–200 m); every street two-way for walking, some
/// one-way for bikes; a few links for cars only (not walkable).
fn grid(seed: u64, w: u64, h: u64) -> Network {
    let id = |x: u64, y: u64| y * w + x;
    let nodes: Vec<(u64, (f64, f64))> = (0..h)
        .flat_map(|y| {
            (0..w).map(move |x| {
                (
                    id(x, y),
                    (24.93 + x as f64 * 0.001, 60.16 + y as f64 * 0.0005),
                )
            })
        })
        .collect();
    let mut links = Vec::new();
    let mut n = 0u64;
    for y in 0..h {
        for x in 0..w {
            for (dx, dy) in [(1, 0), (0, 1)] {
                let (x2, y2) = (x + dx, y + dy);
                if x2 >= w || y2 >= h {
                    continue;
                }
                n += 1;
                let r = unit(seed, n);
                let len = 30.0 + 170.0 * unit(seed, n + 1_000_000);
                let (fwd, back) = if r < 0.05 {
                    (ModeSet::CAR, ModeSet::CAR)
                } else if r < 0.2 {
                    // one-way for bikes
                    (ModeSet::WALK.with(Mode::Bike), ModeSet::WALK)
                } else {
                    (ModeSet::ALL, ModeSet::ALL)
                };
                let spec = LinkSpec::new(n * 2, id(x, y), id(x2, y2), len, len / 10.0, 500.0, fwd);
                links.push(spec.reversed(n * 2 + 1, back));
                links.push(spec);
            }
        }
    }
    Network::build(nodes, links).expect("grid")
}

/// `count` destinations on random nodes, some met at two nodes (as if in the middle of a link).
fn destinations(seed: u64, nodes: usize, count: usize) -> Vec<Anchor> {
    (0..count as u64)
        .map(|i| {
            let a = (mix(seed ^ (i * 7 + 1)) % nodes as u64) as NodeIdx;
            let b = (mix(seed ^ (i * 7 + 2)) % nodes as u64) as NodeIdx;
            if i % 3 == 0 {
                vec![(a, 20.0 * unit(seed, i)), (b, 40.0 * unit(seed, i + 99))]
            } else {
                vec![(a, 0.0)]
            }
        })
        .collect()
}

/// The `k` nearest destinations of `node` by brute force: one plain Dijkstra from the node, then every destination.
fn brute(g: &AccessGraph, node: NodeIdx, dests: &[Anchor], k: usize, max_s: f64) -> Vec<f64> {
    let dist = from_place(g, &[(node, 0.0)], f64::INFINITY);
    let mut best: Vec<f64> = dests
        .iter()
        .map(|a| {
            a.iter()
                .map(|&(v, s)| dist[v as usize] + s)
                .fold(f64::INFINITY, f64::min)
        })
        .filter(|&s| s <= max_s)
        .collect();
    best.sort_by(f64::total_cmp);
    best.truncate(k);
    best
}

fn times(kn: &KNearest, node: NodeIdx) -> Vec<f64> {
    kn.at(node).map(|(s, _)| s).collect()
}

fn close(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= 1e-9 * x.abs().max(1.0))
}

#[test]
fn a_line_by_hand() {
    // 0 —100 m— 1 —100 m— 2 —100 m— 3 —100 m— 4, walking at 1 m/s; destinations at 0 and 4, and one 30 s off node 2
    let nodes: Vec<(u64, (f64, f64))> = (0..5)
        .map(|i| (i, (24.9 + i as f64 * 0.002, 60.17)))
        .collect();
    let mut links = Vec::new();
    for i in 0..4u64 {
        let s = LinkSpec::new(i * 2, i, i + 1, 100.0, 10.0, 500.0, ModeSet::WALK);
        links.push(s.reversed(i * 2 + 1, ModeSet::WALK));
        links.push(s);
    }
    let net = Network::build(nodes, links).unwrap();
    let g = AccessGraph::build(&net, Movement::walk(1.0));
    let dests = vec![vec![(0, 0.0)], vec![(4, 0.0)], vec![(2, 30.0)]];
    let kn = KNearest::compute(&g, 2, 1e9, &dests);
    assert_eq!(kn.at(1).collect::<Vec<_>>(), vec![(100.0, 0), (130.0, 2)]);
    assert_eq!(kn.at(2).collect::<Vec<_>>(), vec![(30.0, 2), (200.0, 0)]);
    assert_eq!(kn.at(3).collect::<Vec<_>>(), vec![(100.0, 1), (130.0, 2)]);
    // a home 10 s from node 1 and 90 s from node 2 (on the link between them)
    assert_eq!(
        kn.from_anchor(&[(1, 10.0), (2, 90.0)]),
        vec![(110.0, 0), (120.0, 2)]
    );
    // a search cut at 150 s leaves the farther ones out
    let cut = KNearest::compute(&g, 3, 150.0, &dests);
    assert_eq!(cut.at(1).collect::<Vec<_>>(), vec![(100.0, 0), (130.0, 2)]);
    assert_eq!(cut.at(0).collect::<Vec<_>>(), vec![(0.0, 0)]);
}

#[test]
fn k_nearest_equals_brute_force_on_random_grids() {
    for seed in [1u64, 2, 3] {
        let net = grid(seed, 14, 11);
        // (crawling at 1 cm/s, a link takes up to 5 hours: beyond the search queue's ring of buckets)
        for movement in [
            Movement::walk(1.33),
            Movement::bike(4.17),
            Movement::walk(0.01),
        ] {
            let g = AccessGraph::build(&net, movement);
            let dests = destinations(seed, net.node_count(), 12);
            for (k, max_s) in [(1, f64::INFINITY), (3, f64::INFINITY), (3, 400.0)] {
                let kn = KNearest::compute(&g, k, max_s, &dests);
                for v in 0..net.node_count() as NodeIdx {
                    let want = brute(&g, v, &dests, k, max_s);
                    let got = times(&kn, v);
                    assert!(
                        close(&got, &want),
                        "seed {seed} {:?} k {k} node {v}: {got:?} vs {want:?}",
                        movement.mode
                    );
                    // each destination once
                    let mut ids: Vec<u32> = kn.at(v).map(|(_, d)| d).collect();
                    ids.sort_unstable();
                    ids.dedup();
                    assert_eq!(ids.len(), got.len());
                }
            }
        }
    }
}

#[test]
fn adding_destinations_one_by_one_equals_a_new_search() {
    let net = grid(7, 12, 12);
    let g = AccessGraph::build(&net, Movement::walk(1.33));
    let dests = destinations(7, net.node_count(), 15);
    for max_s in [f64::INFINITY, 300.0] {
        let mut kn = KNearest::compute(&g, 3, max_s, &dests[..5]);
        for (i, a) in dests.iter().enumerate().skip(5) {
            let changed = kn.add(&g, i as u32, a);
            let fresh = KNearest::compute(&g, 3, max_s, &dests[..=i]);
            for v in 0..net.node_count() as NodeIdx {
                assert!(
                    close(&times(&kn, v), &times(&fresh, v)),
                    "after {i}, node {v}"
                );
            }
            // what it reports as changed is exactly where the new destination is now held
            for v in 0..net.node_count() as NodeIdx {
                let holds = kn.at(v).any(|(_, d)| d == i as u32);
                assert_eq!(holds, changed.contains(&v), "node {v} after {i}");
            }
        }
    }
}

#[test]
fn crossing_a_major_road_costs_time_both_ways() {
    // a footway 0 — 1 — 2 crossing a primary road (3 — 1 — 4) at node 1
    let nodes: Vec<(u64, (f64, f64))> = vec![
        (0, (24.900, 60.170)),
        (1, (24.902, 60.170)),
        (2, (24.904, 60.170)),
        (3, (24.902, 60.169)),
        (4, (24.902, 60.171)),
    ];
    let mut links = Vec::new();
    for (i, (a, b)) in [(0u64, 1u64), (1, 2)].into_iter().enumerate() {
        let s = LinkSpec::new(
            i as u64 * 2,
            a,
            b,
            100.0,
            36.0,
            100.0,
            ModeSet::WALK.with(Mode::Bike),
        );
        links.push(s.reversed(i as u64 * 2 + 1, ModeSet::WALK.with(Mode::Bike)));
        links.push(s);
    }
    for (i, (a, b)) in [(3u64, 1u64), (1, 4)].into_iter().enumerate() {
        let s = LinkSpec::new(10 + i as u64 * 2, a, b, 100.0, 7.2, 1200.0, ModeSet::ALL);
        links.push(s.reversed(11 + i as u64 * 2, ModeSet::ALL));
        links.push(s);
    }
    let net = Network::build(nodes, links).unwrap();
    let walk = Movement::walk(1.0);
    let g = AccessGraph::build(&net, walk);
    assert!(g.is_crossing(1) && g.crossing_count() == 1);
    let fwd = from_place(&g, &[(0, 0.0)], f64::INFINITY);
    let back = from_place(&g, &[(2, 0.0)], f64::INFINITY);
    assert_eq!(fwd[2], 200.0 + walk.crossing_s);
    assert_eq!(back[0], fwd[2]);
    // the penalty belongs to the node: walking along the road through it pays it too (a simplification the module
    // doc states)
    let along = from_place(&g, &[(3, 0.0)], f64::INFINITY);
    assert_eq!(along[4], 200.0 + walk.crossing_s);
    // without the penalty
    let g0 = AccessGraph::build(
        &net,
        Movement {
            crossing_s: 0.0,
            ..walk
        },
    );
    assert_eq!(from_place(&g0, &[(0, 0.0)], f64::INFINITY)[2], 200.0);
    // the crossing is a place: a scenario closing the footway to everybody keeps it (the baseline's crossings), for
    // those crossing there on foot; a network where no footway ever met the road (a private yard does, closed to
    // everybody) has none
    let mut closed = net.clone();
    for l in 0..closed.link_count() as u32 {
        if !closed.link_modes()[l as usize].contains(Mode::Car) {
            closed.remove_mode(l, Mode::Walk);
            closed.remove_mode(l, Mode::Bike);
        }
    }
    assert!(AccessGraph::build_with_crossings(&closed, walk, Some(g.crossings())).is_crossing(1));
    assert_eq!(AccessGraph::build(&closed, walk).crossing_count(), 0);
    let along_closed = from_place(
        &AccessGraph::build(&closed, walk),
        &[(3, 0.0)],
        f64::INFINITY,
    );
    assert_eq!(along_closed[4], 200.0, "no crossing where nobody may cross");
}

#[test]
fn an_isochrone_along_a_straight_street() {
    use geo::Contains;
    // 0 — 1 — ... — 10 eastwards, 100 m each, walking at 1 m/s
    let dlon = 100.0 / (111_319.49 * 60.17f64.to_radians().cos());
    let nodes: Vec<(u64, (f64, f64))> = (0..=10)
        .map(|i| (i, (24.9 + i as f64 * dlon, 60.17)))
        .collect();
    let mut links = Vec::new();
    for i in 0..10u64 {
        let s = LinkSpec::new(i * 2, i, i + 1, 100.0, 10.0, 100.0, ModeSet::WALK);
        links.push(s.reversed(i * 2 + 1, ModeSet::WALK));
        links.push(s);
    }
    let net = Network::build(nodes, links).unwrap();
    let g = AccessGraph::build(&net, Movement::walk(1.0));
    let snap = twin_graph::SnapIndex::build(&net, Mode::Walk);
    let opts = super::IsochroneOptions::default();
    let iso =
        super::isochrone::isochrones(&net, &g, &snap, 300.0, 24.9, 60.17, &[5.0, 2.0, 5.0], opts)
            .unwrap();
    assert_eq!(
        iso.iter().map(|i| i.minutes).collect::<Vec<_>>(),
        vec![5.0, 2.0],
        "largest first, once each"
    );
    let five = &iso[0];
    let at = |m: f64, north_m: f64| {
        geo::Point::new(24.9 + m / 100.0 * dlon, 60.17 + north_m / 111_320.0)
    };
    assert!(
        five.area.contains(&at(250.0, 0.0)),
        "on the street within 300 m"
    );
    assert!(five.area.contains(&at(100.0, 30.0)), "just off the street");
    assert!(
        !five.area.contains(&at(420.0, 0.0)),
        "beyond 300 m + the reach"
    );
    assert!(
        !five.area.contains(&at(100.0, 90.0)),
        "too far off the street"
    );
    assert!(
        !five.area.contains(&at(-120.0, 0.0)),
        "behind the start, beyond the reach"
    );
    // off the street, a step costs its time too: 50 m either side for the first 250 m, narrowing to nothing at
    // 300 m, and a half disc of 50 m behind the start; give or take the grid
    let want = 250.0 * 100.0 + 50.0 * 50.0 + std::f64::consts::PI * 50.0 * 50.0 / 2.0;
    assert!(
        (five.area_m2 - want).abs() < 0.15 * want,
        "{} m² vs {want}",
        five.area_m2
    );
    assert_eq!(five.nodes, 4, "nodes 0..=3");
    assert!(iso[1].area_m2 < five.area_m2);
    // a point far from the network, and bad minutes
    assert!(
        super::isochrone::isochrones(&net, &g, &snap, 300.0, 25.5, 60.5, &[5.0], opts).is_err()
    );
    assert!(
        super::isochrone::isochrones(&net, &g, &snap, 300.0, 24.9, 60.17, &[0.0], opts).is_err()
    );
}

#[test]
fn absurdly_long_links_end_the_search() {
    // links of 10³⁰ s and 10⁴⁰ s (beyond f32: kept as its largest value) with no cut-off: the queue's last bucket
    // takes them, and the search ends with finite times
    let g = AccessGraph::from_edges(3, &[(0, 1, 1e30), (1, 2, 1e40)], Movement::walk(1.0));
    let kn = KNearest::compute(&g, 2, f64::INFINITY, &[vec![(2, 0.0)]]);
    let at0: Vec<(f64, u32)> = kn.at(0).collect();
    assert_eq!(at0.len(), 1);
    assert!(at0[0].0.is_finite() && at0[0].0 > 3e38, "{at0:?}");
    assert_eq!(kn.at(1).next().map(|x| x.0), Some(f64::from(f32::MAX)));
}

#[test]
fn a_graph_without_links_and_a_full_batch() {
    // 20 destinations on 20 nodes and no link: one bucket of 20 entries, more than the read-ahead
    let g = AccessGraph::from_edges(20, &[], Movement::walk(1.0));
    let dests: Vec<Anchor> = (0..20).map(|i| vec![(i as NodeIdx, 0.5)]).collect();
    let kn = KNearest::compute(&g, 1, 900.0, &dests);
    assert_eq!(kn.at(3).next(), Some((0.5, 3)));
}
