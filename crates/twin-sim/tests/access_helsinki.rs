//! The 15-minute city of central Helsinki from the twin's entities: plausible figures, every sampled home's nearest
//! destinations equal to a brute-force one-to-all Dijkstra, and a new destination that helps the homes around it and
//! nobody else, incrementally and exactly as a new run would.

mod common;

use twin_graph::entities::network_from_entities;
use twin_sim::access::nearest::from_place;
use twin_sim::access::{self, AccessOptions, Movement, WalkProfile, BIKE_SPEED_MPS};

#[test]
fn walking_and_cycling_in_central_helsinki() {
    let Some(entities) = common::helsinki() else {
        return;
    };
    let (net, _) = network_from_entities(&entities).expect("network");
    for movement in [
        Movement::walk(WalkProfile::Adult.speed_mps()),
        Movement::bike(BIKE_SPEED_MPS),
    ] {
        let options = AccessOptions::new(movement);
        let r = access::run(&net, &entities, &options);
        let s = &r.summary;
        eprintln!("{}", serde_json::to_string_pretty(s).unwrap());
        assert!(s.homes >= 100, "{} homes", s.homes);
        assert!(s.residents > 1000.0, "{} residents", s.residents);
        assert!(
            r.graph.crossing_count() > 0,
            "crossings of major roads are found"
        );
        // the city centre has daily needs near: most categories within 15 minutes for nearly everyone
        assert!(
            s.mean_score > 0.6 && s.mean_score <= 1.0,
            "mean score {}",
            s.mean_score
        );
        // a category with no destination in the extract is left out of the scores, and said so
        for c in &s.categories {
            assert_eq!(
                c.destinations == 0,
                s.missing.contains(&c.category),
                "{c:?}"
            );
        }
        for c in &s.categories {
            assert!((0.0..=1.0).contains(&c.share_within), "{c:?}");
        }
        for cat in ["grocery", "public_transport_stop", "restaurant_cafe"] {
            let c = s.categories.iter().find(|c| c.category == cat).unwrap();
            assert!(c.destinations > 5 && c.share_within > 0.95, "{c:?}");
        }
        // exactness: sampled homes against a plain Dijkstra from the home to every node
        let max_s = options.max_min * 60.0;
        for (i, home) in r
            .inputs
            .homes
            .iter()
            .enumerate()
            .step_by(r.inputs.homes.len() / 40 + 1)
        {
            let dist = from_place(&r.graph, &home.place.anchor, f64::INFINITY);
            for (c, field) in r.fields.iter().enumerate() {
                let mut want: Vec<f64> = field
                    .destinations
                    .iter()
                    .map(|&d| {
                        r.inputs.destinations[d]
                            .place
                            .anchor
                            .iter()
                            .map(|&(v, s)| dist[v as usize] + s)
                            .fold(f64::INFINITY, f64::min)
                    })
                    .filter(|&s| s <= max_s)
                    .collect();
                want.sort_by(f64::total_cmp);
                want.truncate(options.k);
                let got: Vec<f64> = r.homes[i].nearest[c]
                    .iter()
                    .map(|&(m, _)| m * 60.0)
                    .collect();
                assert_eq!(
                    got.len(),
                    want.len(),
                    "home {} {}",
                    home.place.id,
                    field.category
                );
                for (g, w) in got.iter().zip(&want) {
                    assert!(
                        (g - w).abs() <= 1e-9 * w.max(1.0),
                        "home {} {}: {got:?} vs {want:?}",
                        home.place.id,
                        field.category
                    );
                }
            }
        }
    }
}

#[test]
fn a_new_destination_helps_the_homes_around_it_and_nobody_else() {
    let Some(entities) = common::helsinki() else {
        return;
    };
    let (net, _) = network_from_entities(&entities).expect("network");
    let mut options = AccessOptions::new(Movement::walk(WalkProfile::Older.speed_mps()));
    options.threshold_min = 5.0;
    let mut r = access::run(&net, &entities, &options);
    let before = r.homes.clone();
    // the category (of those in the data) with the fewest residents within reach, and the home farthest from it
    let (c, cat) = r
        .summary
        .categories
        .iter()
        .enumerate()
        .filter(|(_, s)| s.destinations > 0)
        .min_by(|a, b| a.1.share_within.total_cmp(&b.1.share_within))
        .map(|(c, s)| (c, s.category.clone()))
        .unwrap();
    let far = (0..r.homes.len())
        .max_by(|&a, &b| {
            let t = |i: usize| r.homes[i].nearest[c].first().map_or(f64::INFINITY, |x| x.0);
            t(a).total_cmp(&t(b))
        })
        .unwrap();
    let (lon, lat) = (r.inputs.homes[far].place.lon, r.inputs.homes[far].place.lat);
    let score_before = r.summary.mean_score;
    let added = r
        .add_destination("urn:ngsi-ld:PointOfInterest:new", &cat, lon, lat)
        .expect("added");
    eprintln!(
        "new {cat} at home {}: {} nodes, {} homes changed, mean score {score_before:.4} → {:.4}",
        r.inputs.homes[far].place.id,
        added.nodes,
        added.homes.len(),
        r.summary.mean_score
    );
    assert!(
        r.homes[far].score > before[far].score,
        "the home next to it gains"
    );
    assert!(r.summary.mean_score > score_before);
    for (i, (now, was)) in r.homes.iter().zip(&before).enumerate() {
        let changed = now != was;
        assert_eq!(changed, added.homes.contains(&i), "home {i}");
        if changed {
            // only through the new destination, and never for the worse
            assert!(
                now.nearest[c].iter().any(|&(_, d)| d == added.destination),
                "home {i}"
            );
            assert!(now.score >= was.score, "home {i}");
            for (k, (a, b)) in now.nearest.iter().zip(&was.nearest).enumerate() {
                if k != c {
                    assert_eq!(a, b, "home {i}: another category changed");
                }
            }
        }
    }
    assert!(added.homes.len() < r.homes.len(), "not everybody changed");
    // the same as a new run with the destination in the data
    let mut with = entities.clone();
    let e = twin_model::ngsi::parse_entity(
        &serde_json::json!({
            "id": "urn:ngsi-ld:PointOfInterest:new",
            "type": "PointOfInterest",
            "category": {"type": "Property", "value": cat},
            "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}}
        }),
        &twin_model::context::Context::core(),
        chrono::Utc::now(),
        &twin_model::Provenance::default(),
    )
    .expect("entity");
    with.push(e);
    let fresh = access::run(&net, &with, &options);
    for (i, (a, b)) in r.homes.iter().zip(&fresh.homes).enumerate() {
        let ta: Vec<f64> = a.nearest[c].iter().map(|x| x.0).collect();
        let tb: Vec<f64> = b.nearest[c].iter().map(|x| x.0).collect();
        assert!(
            ta.len() == tb.len() && ta.iter().zip(&tb).all(|(x, y)| (x - y).abs() < 1e-9),
            "home {i}: {ta:?} vs {tb:?}"
        );
        assert_eq!(a.score, b.score, "home {i}");
    }
}

#[test]
fn isochrones_from_the_railway_square() {
    use geo::Contains;
    let Some(entities) = common::helsinki() else {
        return;
    };
    let (net, _) = network_from_entities(&entities).expect("network");
    let r = access::run(
        &net,
        &entities,
        &AccessOptions::new(Movement::walk(WalkProfile::Adult.speed_mps())),
    );
    let (lon, lat) = (24.9432, 60.1710);
    let iso = r
        .isochrones(lon, lat, &[5.0, 10.0, 15.0])
        .expect("isochrones");
    assert_eq!(iso.len(), 3);
    // nested, and growing
    assert!(
        iso[0].area_m2 > iso[1].area_m2 && iso[1].area_m2 > iso[2].area_m2,
        "{iso:?}"
    );
    // 5 minutes on foot: at most a circle of 400 m + the reach, more than a few blocks
    let five = &iso[2];
    assert!(
        five.area_m2 > 50_000.0 && five.area_m2 < std::f64::consts::PI * 460.0f64.powi(2),
        "{}",
        five.area_m2
    );
    // every node reached within 4.5 minutes is inside the 5-minute polygon; nodes beyond 8 minutes are outside,
    // but for the few a short straight walk (the 50 m reach) from a reached street gets to, across a fence or a
    // railway the network goes around
    let place = twin_sim::access::city::Anchoring::new(&r.net, &r.graph, &r.snap, 300.0)
        .home("p", lon, lat)
        .unwrap();
    let dist = from_place(&r.graph, &place.anchor, f64::INFINITY);
    let (mut inside, mut far, mut far_inside) = (0, 0, 0);
    for (v, &t) in dist.iter().enumerate() {
        let (x, y) = r.net.node_coord(v as u32);
        let p = geo::Point::new(x, y);
        if t <= 270.0 {
            assert!(
                five.area.contains(&p),
                "node {v} at {t:.0} s is outside the 5-minute isochrone"
            );
            inside += 1;
        } else if t > 480.0 && t.is_finite() {
            far += 1;
            if five.area.contains(&p) {
                far_inside += 1;
            }
        }
    }
    eprintln!(
        "{inside} nodes within 4.5 min inside; {far_inside} of {far} nodes beyond 8 min inside"
    );
    assert!(inside > 20 && far > 100, "{inside} inside, {far} far");
    assert!(
        far_inside * 50 < far,
        "{far_inside} of {far} far nodes inside"
    );
}

#[test]
fn scenarios_take_away_a_destination_and_close_paths() {
    use twin_sim::access::scenario::{apply, changes};
    use twin_sim::access::AccessEdit;
    let Some((entities, net, base)) = walking_in_five_minutes() else {
        return;
    };

    // a pharmacy taken away: as a run without it
    let c = base
        .fields
        .iter()
        .position(|f| f.category == "pharmacy")
        .unwrap();
    let gone = base.inputs.destinations[base.fields[c].destinations[0]]
        .place
        .id
        .clone();
    let s = apply(
        &base,
        &entities,
        &[AccessEdit::RemoveDestination { id: gone.clone() }],
    )
    .expect("applied");
    let without: Vec<_> = entities.iter().filter(|e| e.id != gone).cloned().collect();
    let fresh = access::run(&net, &without, &base.options);
    assert!(
        close(&times(&s, c), &times(&fresh, c)),
        "taking a pharmacy away equals a run without it"
    );
    let ch = changes(&base, &s);
    assert!(
        !ch.is_empty() && ch.iter().all(|h| h.score_after <= h.score_before),
        "{ch:?}"
    );

    // paths closed in an area around the railway square: as a run on the network without them
    let area = serde_json::json!({"type": "Polygon", "coordinates": [[[24.940, 60.170], [24.946, 60.170], [24.946, 60.172], [24.940, 60.172], [24.940, 60.170]]]});
    let s = apply(
        &base,
        &entities,
        &[AccessEdit::ClosePaths {
            links: vec![],
            area: Some(area.clone()),
        }],
    )
    .expect("closed");
    let g = twin_model::geoquery::geometry_from_geojson(&area).unwrap();
    let mut cut = base.net.clone();
    for l in 0..cut.link_count() as u32 {
        use geo::Intersects;
        if cut.link_modes()[l as usize].contains(twin_graph::Mode::Walk)
            && g.intersects(&geo::LineString::from(cut.link_geometry(l)))
        {
            cut.remove_mode(l, twin_graph::Mode::Walk);
        }
    }
    // (the homes joining the paths within their baseline reach)
    let fresh = access::city::run_with_paths(
        cut,
        vec![],
        &entities,
        &base.options,
        &base.reach(),
        Some(base.graph.crossings()),
    );
    assert_eq!(s.summary.homes, fresh.summary.homes);
    for c in 0..s.fields.len() {
        assert!(close(&times(&s, c), &times(&fresh, c)), "category {c}");
    }
    assert!(
        !changes(&base, &s).is_empty(),
        "closing the square's paths changes somebody's score"
    );
    // closing paths takes ways away and gives none: no home's way to any of its nearest destinations shortens, in
    // the square and in a thin strip across the blocks west of it
    no_way_shortens(&base, &s);
    let strip = serde_json::json!({"type": "Polygon", "coordinates": [[[24.9370, 60.1690], [24.9375, 60.1690], [24.9375, 60.1720], [24.9370, 60.1720], [24.9370, 60.1690]]]});
    let s = apply(
        &base,
        &entities,
        &[AccessEdit::ClosePaths {
            links: vec![],
            area: Some(strip),
        }],
    )
    .expect("closed");
    assert!(!changes(&base, &s).is_empty(), "the strip changes somebody");
    no_way_shortens(&base, &s);

    // errors name the edit
    let e = apply(
        &base,
        &entities,
        &[AccessEdit::RemoveDestination { id: "urn:x".into() }],
    )
    .err()
    .expect("an error");
    assert!(e.starts_with("edits[0]: no destination"), "{e}");
    let e = apply(
        &base,
        &entities,
        &[AccessEdit::ClosePaths {
            links: vec!["urn:ngsi-ld:RoadLink:nope".into()],
            area: None,
        }],
    )
    .err()
    .expect("an error");
    assert!(
        e.contains("no link has the id urn:ngsi-ld:RoadLink:nope"),
        "{e}"
    );
    let e = apply(
        &base,
        &entities,
        &[AccessEdit::ClosePaths {
            links: vec![],
            area: Some(serde_json::json!({"type": "Point", "coordinates": [24.9, 60.1]})),
        }],
    )
    .err()
    .expect("an error");
    assert!(e.contains("Polygon"), "{e}");
}

#[test]
fn scenarios_add_a_path_and_open_closed_ones() {
    use twin_sim::access::scenario::{apply, changes};
    use twin_sim::access::AccessEdit;
    let Some((entities, _, base)) = walking_in_five_minutes() else {
        return;
    };
    // a walkway across the railway yard, from Kaisaniemi to the station's west side
    let (a, b) = ([24.9445, 60.1730], [24.9395, 60.1735]);
    let s = apply(
        &base,
        &entities,
        &[AccessEdit::AddPath { path: vec![a, b] }],
    )
    .expect("added");
    let &(na, nb, metres) = s.paths.last().unwrap();
    assert!(metres > 200.0 && metres < 500.0, "{metres} m");
    let speed = base.options.movement.speed_mps;
    let t = from_place(&s.graph, &[(na, 0.0)], f64::INFINITY)[nb as usize];
    assert!(
        t <= metres / speed + 1e-9,
        "the new path is a way: {t} s for {metres} m"
    );
    let ch = changes(&base, &s);
    assert!(
        ch.iter().all(|h| h.score_after >= h.score_before),
        "a new path takes nothing away: {ch:?}"
    );
    // a path far from the network is refused, naming the edit
    let e = apply(
        &base,
        &entities,
        &[AccessEdit::AddPath {
            path: vec![[25.5, 60.5], [25.51, 60.5]],
        }],
    )
    .err()
    .expect("refused");
    assert!(
        e.starts_with("edits[0]: its start is more than 50 m"),
        "{e}"
    );

    // closing links by id (their `RoadLink` entities' ids, as a client names them), then opening them again, gives
    // the baseline back
    let mut ids: Vec<String> = (0..base.net.link_count() as u32)
        .filter(|&l| base.net.link_modes()[l as usize].contains(twin_graph::Mode::Walk))
        .filter_map(|l| twin_sim::traffic::scenario::road_link_of(base.net.link_id(l)))
        .map(|(entity, _)| entity.to_string())
        .take(40)
        .collect();
    ids.dedup();
    assert!(ids[0].starts_with("urn:ngsi-ld:RoadLink:"), "{ids:?}");
    let closed = apply(
        &base,
        &entities,
        &[AccessEdit::ClosePaths {
            links: ids.clone(),
            area: None,
        }],
    )
    .expect("closed");
    let reopened =
        apply(&closed, &entities, &[AccessEdit::OpenPaths { links: ids }]).expect("opened");
    for (x, y) in base.homes.iter().zip(&reopened.homes) {
        assert!((x.score - y.score).abs() < 1e-12);
    }
    for c in 0..base.fields.len() {
        assert!(
            close(&times(&base, c), &times(&reopened, c)),
            "category {c}"
        );
    }
}

/// Walking adults, a 5-minute threshold: the central Helsinki entities and the model's results on them.
fn walking_in_five_minutes() -> Option<(
    Vec<twin_model::Entity>,
    twin_graph::Network,
    access::CityAccess,
)> {
    let entities = common::helsinki()?;
    let (net, _) = network_from_entities(&entities).expect("network");
    let mut options = AccessOptions::new(Movement::walk(WalkProfile::Adult.speed_mps()));
    options.threshold_min = 5.0;
    let base = access::run(&net, &entities, &options);
    Some((entities, net, base))
}

/// Every home's minutes to its nearest destinations of category `c`.
fn times(r: &access::CityAccess, c: usize) -> Vec<Vec<f64>> {
    r.homes
        .iter()
        .map(|h| h.nearest[c].iter().map(|x| x.0).collect())
        .collect()
}

/// No home of `after` (a scenario with paths closed) is nearer its j-th nearest destination of any category than in
/// `before`, nor has a higher score.
fn no_way_shortens(before: &access::CityAccess, after: &access::CityAccess) {
    let was: std::collections::HashMap<&str, usize> = before
        .inputs
        .homes
        .iter()
        .enumerate()
        .map(|(i, h)| (h.place.id.as_str(), i))
        .collect();
    let mut compared = 0;
    for (h, r) in after.inputs.homes.iter().zip(&after.homes) {
        let Some(&i) = was.get(h.place.id.as_str()) else {
            continue;
        };
        let b = &before.homes[i];
        assert!(r.score <= b.score + 1e-12, "{} gains", h.place.id);
        for (c, (x, y)) in b.nearest.iter().zip(&r.nearest).enumerate() {
            assert!(
                y.len() <= x.len(),
                "{}: more destinations of {c}",
                h.place.id
            );
            for (p, q) in x.iter().zip(y) {
                assert!(
                    q.0 >= p.0 - 1e-9,
                    "{}: category {c} {} -> {}",
                    h.place.id,
                    p.0,
                    q.0
                );
            }
        }
        compared += 1;
    }
    assert!(compared > 0);
}

/// Equal to 1e-9, home by home and destination by destination.
fn close(a: &[Vec<f64>], b: &[Vec<f64>]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.len() == y.len() && x.iter().zip(y).all(|(p, q)| (p - q).abs() < 1e-9))
}

#[test]
fn loaded_population_replaces_the_estimate() {
    let Some((mut entities, net, base)) = walking_in_five_minutes() else {
        return;
    };
    // a register's count on one home and "nobody lives here" on another
    let (counted, empty) = (
        base.inputs.homes[0].place.id.clone(),
        base.inputs.homes[1].place.id.clone(),
    );
    let population = format!("{}population", twin_model::entity::iri::DEFAULT_CONTEXT);
    for e in entities.iter_mut() {
        let v = if e.id == counted {
            1234.0
        } else if e.id == empty {
            0.0
        } else {
            continue;
        };
        let mut attr = e
            .attrs
            .values()
            .flatten()
            .find(|a| a.kind == twin_model::AttrKind::Property)
            .expect("a property")
            .clone();
        attr.value = serde_json::json!(v);
        attr.dataset_id = None;
        attr.unit_code = None;
        attr.observed_at = None;
        e.attrs.insert(population.clone(), vec![attr]);
    }
    let r = access::run(&net, &entities, &base.options);
    assert_eq!(r.summary.homes_counted, 1);
    assert_eq!(base.summary.homes_counted, 0);
    assert_eq!(r.inputs.homes.len(), base.inputs.homes.len() - 1);
    let home = r
        .inputs
        .homes
        .iter()
        .find(|h| h.place.id == counted)
        .unwrap();
    assert_eq!(home.residents, 1234.0);
    assert!(r.inputs.homes.iter().all(|h| h.place.id != empty));
    let others = |x: &access::CityAccess| -> f64 {
        x.inputs
            .homes
            .iter()
            .filter(|h| h.place.id != counted && h.place.id != empty)
            .map(|h| h.residents)
            .sum()
    };
    assert!(
        (others(&r) - others(&base)).abs() < 1e-6,
        "the others keep their estimate"
    );
}
