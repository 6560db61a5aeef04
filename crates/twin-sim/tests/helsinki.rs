//! The traffic model of central Helsinki built from the twin's entities (the OpenStreetMap extract as the importer
//! stores it): a plausible, converged baseline, and a street closure that moves traffic to the parallel streets.

mod common;

use common::helsinki as entities;
use twin_sim::traffic::assign::{assign, Options};
use twin_sim::traffic::city::{self, CityOptions};

#[test]
fn a_baseline_and_a_street_closure() {
    let Some(entities) = entities() else { return };
    let model = city::build(&entities, &CityOptions::default()).expect("city model");
    let d = &model.distribution;
    // zones of 400 m over a 1 × 1.7 km extract, every trip end connected
    assert!(model.zones.len() >= 8, "{} zones", model.zones.len());
    assert_eq!(model.unconnected_zones, 0);
    // roads cut by the extract's edge bring traffic in and out
    let gateways = model.zones.iter().filter(|z| z.external).count();
    assert!(gateways >= 2, "{gateways} gateways");
    assert!(d.max_error <= 1e-6, "Furness did not balance: {d:?}");
    assert!(d.beta > 0.0 && d.mean_cost.is_finite());
    assert_eq!((d.unserved_productions, d.unserved_attractions), (0.0, 0.0));
    let total = model.demand.total();
    let produced: f64 = model.zones.iter().map(|z| z.productions).sum();
    assert!(
        (total - produced).abs() <= 1e-6 * produced,
        "{total} trips vs {produced} produced"
    );
    assert!(total > 100.0, "{total} peak-hour car trips");

    let opts = Options {
        gap: 1e-8,
        ..Options::default()
    };
    let base = assign(&model.network, &model.demand, &opts).expect("baseline");
    assert!(base.report.converged(), "{:?}", base.report.stop);
    assert_eq!(base.report.unserved_trips, 0.0);
    assert!(base.flows.iter().all(|f| f.is_finite() && *f >= 0.0));
    let vkm = |f: &[f64]| -> f64 {
        f.iter()
            .zip(model.graph.length_m())
            .map(|(x, l)| x * l / 1000.0)
            .sum()
    };
    let vh = |s: &twin_sim::traffic::assign::Solution| s.report.tstt / 3600.0;

    // close the busiest named streets one at a time (every car link of the street, both directions)
    let mut by_street: std::collections::HashMap<&str, f64> = std::collections::HashMap::new();
    for (l, name) in model.link_names.iter().enumerate() {
        if let Some(n) = name {
            *by_street.entry(n.as_str()).or_default() += base.flows[l];
        }
    }
    let mut streets: Vec<(&str, f64)> = by_street.into_iter().collect();
    streets.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    let mut rerouted = 0;
    for (street, _) in streets.iter().take(5) {
        let closed = model.street_links(street);
        assert!(!closed.is_empty());
        let mut scenario = model.network.clone();
        scenario.close_links(&closed);
        let after = assign(
            &scenario,
            &model.demand,
            &Options {
                warm_start: Some(&base),
                ..opts
            },
        )
        .expect("scenario");
        assert!(
            after.report.converged(),
            "{street}: {:?}",
            after.report.stop
        );
        for &l in &closed {
            assert_eq!(
                after.flows[l as usize], 0.0,
                "closed link {l} carries no traffic"
            );
        }
        // every trip is either assigned or reported unserved, pair by pair
        let accounted = after.report.assigned + after.report.unserved_trips;
        assert!((accounted - base.report.assigned).abs() <= 1e-6 * base.report.assigned);
        let listed: f64 = after.report.unserved.iter().map(|u| u.trips).sum();
        assert!((listed - after.report.unserved_trips).abs() <= 1e-9 * listed.max(1.0));
        if after.report.unserved_trips > 0.0 {
            // the closure cut some zones off (a street is their only way out): reported, not forced
            eprintln!(
                "closing {street} disconnects {:.1} trips",
                after.report.unserved_trips
            );
            continue;
        }
        // its traffic moves to other streets, and the same trips cost more in total
        let gained = (0..after.flows.len())
            .filter(|&l| after.flows[l] > base.flows[l] + 1e-6)
            .count();
        assert!(gained > 0, "closing {street} moved no traffic");
        assert!(
            vh(&after) > vh(&base),
            "closing {street}: {:.3} veh-h after vs {:.3} before",
            vh(&after),
            vh(&base)
        );
        rerouted += 1;
        eprintln!(
            "Helsinki: {} zones, {:.0} trips, β {:.3}/min, mean {:.2} min; baseline {:.1} veh-km, {:.2} veh-h; \
             closing {street} ({} links): {:.1} veh-km, {:.2} veh-h; warm {} iterations vs cold {}",
            model.zones.len(),
            total,
            d.beta,
            d.mean_cost,
            vkm(&base.flows),
            vh(&base),
            closed.len(),
            vkm(&after.flows),
            vh(&after),
            after.report.iterations,
            base.report.iterations
        );
    }
    assert!(
        rerouted > 0,
        "none of the five busiest streets could be closed without cutting zones off"
    );
}
