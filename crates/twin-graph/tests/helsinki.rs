//! The street network of central Helsinki, built from the OpenStreetMap reader's links: connectivity per mode and a
//! walking route checked against an independent algorithm and against geometry.

use std::path::PathBuf;

use twin_graph::path::haversine_m;
use twin_graph::{AStarHeuristic, LinkSpec, Mode, ModeSet, Network, SearchWorkspace, SnapIndex};
use twin_import::osm::{read_osm, Access, OsmItem};

fn pbf() -> Option<PathBuf> {
    let p =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/osm/helsinki.osm.pbf");
    if p.is_file() {
        Some(p)
    } else if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true but {} is missing", p.display());
    } else {
        eprintln!("skipping: {} not found", p.display());
        None
    }
}

fn modes(car: Access, walk: Access, bike: Access, forward: bool) -> ModeSet {
    let on = |a: Access| if forward { a.forward } else { a.backward };
    let mut m = ModeSet::EMPTY;
    if on(car) {
        m = m.with(Mode::Car);
    }
    if on(walk) {
        m = m.with(Mode::Walk);
    }
    if on(bike) {
        m = m.with(Mode::Bike);
    }
    m
}

fn helsinki() -> Option<Network> {
    let path = pbf()?;
    let mut nodes = Vec::new();
    let mut links = Vec::new();
    read_osm(&path, &mut |item| {
        match item {
            OsmItem::Node(id, lon, lat) => nodes.push((id as u64, (lon, lat))),
            OsmItem::Link(l) => {
                let secs = l.length_m / (l.free_flow_kmh / 3.6);
                let fwd = modes(l.car, l.walk, l.bike, true);
                let bwd = modes(l.car, l.walk, l.bike, false);
                let mut spec = LinkSpec::new(
                    format!("{}+", l.id()),
                    l.from_node as u64,
                    l.to_node as u64,
                    l.length_m,
                    secs,
                    l.capacity_forward_vph,
                    fwd,
                );
                spec.geometry = Some(l.coords.clone());
                if !bwd.is_empty() {
                    let mut back = spec.reversed(format!("{}-", l.id()), bwd);
                    back.capacity_vph = l.capacity_backward_vph;
                    links.push(back);
                }
                if !fwd.is_empty() {
                    links.push(spec);
                }
            }
            OsmItem::Entity(_) => {}
        }
        Ok(())
    })
    .expect("read Helsinki");
    Some(Network::build(nodes, links).expect("build network"))
}

#[test]
fn central_helsinki_is_connected_and_routable() {
    let Some(mut net) = helsinki() else { return };
    // measured on this extract: walk 96 %, bike 86 %, car 81 % of the nodes in the largest strongly connected
    // component; one-way streets cut at the edge of the extract strand more car and bike nodes than walking ones
    for (mode, floor) in [(Mode::Walk, 0.95), (Mode::Bike, 0.85), (Mode::Car, 0.8)] {
        let report = net.drop_islands(mode);
        let share = report.kept_nodes as f64 / (report.kept_nodes + report.dropped_nodes) as f64;
        eprintln!(
            "{mode:?}: {} components, kept {} nodes, dropped {}",
            report.components, report.kept_nodes, report.dropped_nodes
        );
        assert!(
            share > floor,
            "{mode:?}: only {:.0} % of the nodes in the largest component",
            share * 100.0
        );
    }
    // walking from the Cathedral steps to Kiasma
    let walk = net.view(Mode::Walk);
    let snaps = SnapIndex::build(&net, Mode::Walk);
    let a = snaps.snap(24.9520, 60.1703).expect("snap cathedral");
    let b = snaps.snap(24.9366, 60.1716).expect("snap kiasma");
    assert!(a.distance_m < 60.0 && b.distance_m < 60.0, "{a:?} {b:?}");
    let from = net.link_to()[a.link as usize];
    let to = net.link_from()[b.link as usize];
    let costs = net.length_m().to_vec();
    let path = walk
        .shortest_path(&costs, from, to)
        .unwrap()
        .expect("a walking route");
    let straight = haversine_m(net.node_coord(from), net.node_coord(to));
    eprintln!(
        "walk {:.0} m, straight line {:.0} m, {} links",
        path.cost,
        straight,
        path.links.len()
    );
    assert!(
        path.cost >= straight - 1.0,
        "no route is shorter than the straight line"
    );
    assert!(
        path.cost < straight * 1.6,
        "a city-centre walk is no long detour: {:.0} vs {:.0} m",
        path.cost,
        straight
    );
    // the path is connected and costs the sum of its links
    let nodes = path.nodes(&net);
    assert_eq!((nodes[0], *nodes.last().unwrap()), (from, to));
    let sum: f64 = path.links.iter().map(|l| costs[*l as usize]).sum();
    assert!((sum - path.cost).abs() < 1e-6);
    // A* agrees, and so does a plain Bellman-Ford over the walking links
    let h = AStarHeuristic::from_costs(&walk, &costs).unwrap();
    let star = walk
        .astar(&mut SearchWorkspace::new(), &costs, h, from, to)
        .unwrap()
        .unwrap();
    assert!((star.cost - path.cost).abs() < 1e-6);
    let mut dist = vec![f64::INFINITY; net.node_count()];
    dist[from as usize] = 0.0;
    let walking: Vec<usize> = (0..net.link_count())
        .filter(|l| net.link_modes()[*l].contains(Mode::Walk))
        .collect();
    loop {
        let mut changed = false;
        for &l in &walking {
            let (u, v) = (net.link_from()[l] as usize, net.link_to()[l] as usize);
            if dist[u] + costs[l] < dist[v] - 1e-9 {
                dist[v] = dist[u] + costs[l];
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    assert!(
        (dist[to as usize] - path.cost).abs() < 1e-6,
        "{} vs {}",
        dist[to as usize],
        path.cost
    );
}

/// The network read back from `RoadLink` entities (what the importer stores in the hub) is the network built from the
/// reader's links: same nodes, links, lengths, capacities and connectivity.
#[test]
fn the_network_from_entities_is_the_network_from_the_reader() {
    let Some(direct) = helsinki() else { return };
    let path = pbf().unwrap();
    let mut entities = Vec::new();
    let prov = twin_model::Provenance::default();
    read_osm(&path, &mut |item| {
        if let OsmItem::Link(l) = item {
            entities.push(l.to_entity(chrono::Utc::now(), &prov).expect("entity"));
        }
        Ok(())
    })
    .expect("read Helsinki");
    let (net, skipped) = twin_graph::entities::network_from_entities(&entities).expect("build");
    assert_eq!(skipped.count, 0, "{skipped:?}");
    assert_eq!(net.node_count(), direct.node_count());
    assert_eq!(net.link_count(), direct.link_count());
    let sum = |v: &[f64]| v.iter().sum::<f64>();
    assert!((sum(net.length_m()) - sum(direct.length_m())).abs() < 1e-6);
    assert!((sum(net.free_flow_s()) - sum(direct.free_flow_s())).abs() < 1e-6);
    assert!((sum(net.capacity_vph()) - sum(direct.capacity_vph())).abs() < 1e-6);
    for mode in [Mode::Car, Mode::Walk, Mode::Bike] {
        assert_eq!(
            net.largest_component(mode).len(),
            direct.largest_component(mode).len(),
            "{mode:?}"
        );
    }
}
