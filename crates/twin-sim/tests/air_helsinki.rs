//! Air quality and noise of central Helsinki under its baseline traffic and under a street closure: emissions that add
//! up, SRM1 street values that follow their formula, a closure that cleans its street and loads the streets taking
//! its traffic, exposure counts that agree with the homes, and a background calibrated on stations.

mod common;

use common::helsinki as entities;
use serde_json::json;
use twin_model::context::Context;
use twin_model::ngsi::parse_entity;
use twin_model::{Entity, Provenance};
use twin_sim::air::city::{AirCity, AirOptions, AirResult, EU_LIMIT, WHO_2021};
use twin_sim::air::dispersion::{no2_from_nox, srm1_concentration, RoadType};
use twin_sim::air::emissions::{self as em, Pollutants};
use twin_sim::traffic::city::{self, CityModel, CityOptions};
use twin_sim::traffic::scenario::{self as sim, Edit, Outcome, RunOptions, Scenario};

fn road_type(n: u8) -> RoadType {
    match n {
        1 => RoadType::WideCanyon,
        2 => RoadType::NarrowCanyon,
        3 => RoadType::OneSided,
        _ => RoadType::Open,
    }
}

struct City {
    model: CityModel,
    base: twin_sim::traffic::assign::Solution,
    outcome: Outcome,
}

fn city(entities: &[Entity]) -> City {
    let model = city::build(entities, &CityOptions::default()).expect("city model");
    let (base, outcome) = sim::baseline(
        &model,
        &RunOptions {
            gap: 1e-8,
            ..RunOptions::default()
        },
    )
    .expect("baseline");
    City {
        model,
        base,
        outcome,
    }
}

impl City {
    /// The air model on the city with the default options, and its baseline result.
    fn air(&self, entities: &[Entity]) -> (AirCity, AirResult) {
        let air =
            AirCity::build(&self.model, entities, &self.outcome, AirOptions::default()).unwrap();
        let r = air
            .evaluate(&self.model.network, &self.outcome, &[], None)
            .unwrap();
        (air, r)
    }
}

#[test]
fn baseline_streets_follow_the_formulas_and_emissions_add_up() {
    let Some(entities) = entities() else { return };
    let c = city(&entities);
    let (air, r) = c.air(&entities);
    let s = &r.summary;
    eprintln!(
        "Helsinki air: {} streets {:?}, {} homes, {:.0} residents; NOx {:.2} kg/day; NO2 max {:.1}, residents' mean \
         {:.2}, above WHO {:.0}; Lden ≥ 55: {:.0}",
        s.streets,
        s.road_types,
        s.homes,
        s.residents,
        s.emissions_kg_per_day.nox,
        s.no2.max_street,
        s.no2.mean_residents,
        s.no2.above_who,
        s.noise.end_lden
    );
    // every RoadLink with a car link is a street; the centre has canyons and open roads
    assert_eq!(s.streets, air.streets().len());
    assert!(s.streets > 300, "{} streets", s.streets);
    let canyons = s.road_types.get(&1).unwrap_or(&0) + s.road_types.get(&2).unwrap_or(&0);
    assert!(canyons > 20, "{:?}", s.road_types);
    assert!(
        *s.road_types.get(&4).unwrap_or(&0) > 20,
        "{:?}",
        s.road_types
    );
    assert!(s.homes > 100 && s.residents > 1000.0, "{} homes", s.homes);

    // each street: background + SRM1 of its own emission at its receptor, by the formula
    let bg = AirOptions::default().background;
    let mut checked = 0;
    for st in air.streets() {
        let v = &r.streets[&st.key];
        assert_eq!(v.road_type, st.road_type.srm1_number());
        let e = v.emission_g_per_km_day.scaled(1.0 / 86.4); // µg/(m·s)
        let theta = st.road_type.dilution(v.receptor_m);
        let nox = 0.62 * e.nox * theta * 5.0 / 5.0;
        assert!(
            (v.nox - bg.nox - nox).abs() <= 1e-9 * (1.0 + nox),
            "{}",
            st.key
        );
        let f = if e.nox > 0.0 { e.no2 / e.nox } else { 0.0 };
        let no2 = no2_from_nox(nox, f, bg.no2, bg.o3);
        assert!((v.no2 - no2).abs() <= 1e-9 * no2);
        let pm10 = srm1_concentration(
            e.pm10_exhaust + e.pm10_non_exhaust,
            v.receptor_m,
            road_type(v.road_type),
            Default::default(),
            5.0,
        );
        assert!((v.pm10 - bg.pm10 - pm10).abs() <= 1e-9 * (1.0 + pm10));
        assert!(v.no2 >= bg.no2 && v.pm25 >= bg.pm25);
        // at the set distances: the formula at 5, 10, 20, 30 m, falling with distance, the receptor's value where it
        // is one of them
        for (k, x) in twin_sim::air::city::PROFILE_M.iter().enumerate() {
            let at = 0.62 * e.nox * st.road_type.dilution(*x);
            let want = no2_from_nox(at, f, bg.no2, bg.o3);
            assert!((v.no2_profile[k] - want).abs() <= 1e-9 * want);
            if k > 0 {
                assert!(v.no2_profile[k] <= v.no2_profile[k - 1] + 1e-12);
                assert!(v.pm10_profile[k] <= v.pm10_profile[k - 1] + 1e-12);
            }
            if *x == v.receptor_m {
                assert!((v.no2_profile[k] - v.no2).abs() <= 1e-12 * v.no2);
            }
        }
        assert!(v.receptor_m >= 3.5 && v.receptor_m <= 60.0);
        if v.vehicles_per_day > 0.0 {
            checked += 1;
            let lden = v.noise.lden.expect("a street with traffic is heard");
            assert!(lden < 90.0, "{}: Lden {lden}", st.key);
            assert!(v.noise.lnight.unwrap() < lden);
        } else {
            assert_eq!(v.no2, bg.no2);
            assert!(v.noise.lden.is_none());
        }
    }
    assert!(checked > 100, "{checked} streets with traffic");
    // the busiest street sounds like a city main road at its façades (END maps show 65–75 dB there)
    let busiest = r
        .streets
        .values()
        .max_by(|a, b| a.vehicles_per_day.total_cmp(&b.vehicles_per_day))
        .unwrap();
    let lden = busiest.noise.lden.unwrap();
    eprintln!(
        "busiest street: {:.0} vehicles/day, Lden {lden:.1} dB at {:.1} m",
        busiest.vehicles_per_day, busiest.receptor_m
    );
    assert!((60.0..80.0).contains(&lden), "{busiest:?}");

    // totals: with every vehicle of the day at the modelled hour's speed (peak hours = 24 × peak share), the year's
    // emission is Σ over directed links of the link emission at its flow and speed, summed by `emissions::total`
    let all_peak = AirOptions {
        peak_share: 1.0 / 24.0,
        peak_hours: 24.0,
        ..AirOptions::default()
    };
    let air2 = AirCity::build(&c.model, &entities, &c.outcome, all_peak).unwrap();
    let r2 = air2
        .evaluate(&c.model.network, &c.outcome, &[], None)
        .unwrap();
    let mut links = Vec::new();
    for st in air2.streets() {
        for &l in &st.links {
            let v = &c.outcome.links[l as usize];
            if v.open && v.flow > 0.0 {
                let link = c.model.network.link(l);
                let speed = em::mean_speed_kmh(link.length, v.time_s.unwrap()).unwrap();
                let q = em::link_emission(v.flow, speed, &all_peak.fleet).unwrap();
                // the street's emission sits on its axis: its length, not the link's (equal here, both from the
                // same geometry, to the projection's precision)
                links.push((q, st.length_m));
            }
        }
    }
    let hourly = em::total(&links).unwrap();
    let daily = hourly.scaled(24.0 / 1000.0);
    let got = r2.summary.emissions_kg_per_day;
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1e-12);
    assert!(close(got.nox, daily.nox), "{} vs {}", got.nox, daily.nox);
    assert!(close(got.co2, daily.co2) && close(got.pm10_non_exhaust, daily.pm10_non_exhaust));
    // the per-street emissions add up to the total, for the default options too
    let mut sum = Pollutants::default();
    for st in air.streets() {
        sum.add(
            &r.streets[&st.key]
                .emission_g_per_km_day
                .scaled(st.length_m / 1e6),
        );
    }
    assert!(close(sum.nox, s.emissions_kg_per_day.nox));

    // exposure counts are those of the homes
    let above = |limit: f64| -> f64 {
        r.homes
            .iter()
            .filter(|h| h.no2 > limit)
            .map(|h| h.residents)
            .sum()
    };
    assert_eq!(s.no2.above_who, above(WHO_2021[0]));
    assert_eq!(s.no2.above_eu_limit, above(EU_LIMIT[0]));
    assert!(r.homes.iter().all(|h| h.no2 >= bg.no2));
}

fn closure(c: &City) -> (String, Scenario) {
    // the busiest named street whose closure cuts no zone off
    let named = sim::road_links(&c.model, &c.outcome, None);
    let mut by_name: std::collections::BTreeMap<String, f64> = Default::default();
    for v in named.values() {
        if let Some(n) = &v.name {
            *by_name.entry(n.clone()).or_default() += v.flow;
        }
    }
    let mut streets: Vec<(String, f64)> = by_name.into_iter().collect();
    streets.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    for (name, _) in streets.iter().take(8) {
        let s = Scenario {
            name: format!("close {name}"),
            description: String::new(),
            edits: vec![Edit::CloseStreet { name: name.clone() }],
        };
        let r = sim::run(&c.model, &c.base, &s, &RunOptions::default()).unwrap();
        if r.outcome.summary.unserved_trips == 0.0 {
            return (name.clone(), s);
        }
    }
    panic!("no busy street can be closed without cutting zones off");
}

#[test]
fn closing_a_street_cleans_it_and_loads_the_streets_taking_its_traffic() {
    let Some(entities) = entities() else { return };
    let c = city(&entities);
    let (air, base) = c.air(&entities);
    let (name, scenario) = closure(&c);
    let run = sim::run(
        &c.model,
        &c.base,
        &scenario,
        &RunOptions {
            gap: 1e-8,
            ..RunOptions::default()
        },
    )
    .unwrap();
    let t = std::time::Instant::now();
    let after = air
        .evaluate(&run.network, &run.outcome, &run.applied.added, Some(&base))
        .unwrap();
    eprintln!(
        "closing {name}: air and noise in {:.3} s; {:?}",
        t.elapsed().as_secs_f64(),
        after.change
    );
    let bg = AirOptions::default().background;
    let closed: Vec<&String> = after
        .streets
        .iter()
        .filter(|(_, v)| v.name.as_deref() == Some(&name))
        .map(|(k, _)| k)
        .collect();
    assert!(!closed.is_empty());
    let mut cleaned = 0;
    for k in &closed {
        let (b, a) = (&base.streets[*k], &after.streets[*k]);
        // no traffic left: only the background, and silence
        assert_eq!(a.vehicles_per_day, 0.0);
        assert_eq!(a.no2, bg.no2);
        assert!(a.noise.lden.is_none());
        let d = a.delta.unwrap();
        assert!((d.delta_no2 - (a.no2 - b.no2)).abs() < 1e-12);
        if b.vehicles_per_day > 0.0 {
            assert!(d.delta_no2 < 0.0, "{k}: NO2 {} → {}", b.no2, a.no2);
            cleaned += 1;
        }
    }
    assert!(cleaned > 0);
    // the streets that take its traffic get more NO2 (more vehicles, and slower ones); those that lose traffic less
    let (mut up, mut down) = (0, 0);
    for (k, a) in &after.streets {
        let d = a.delta.expect("every street has its change");
        if d.delta_vehicles_per_day > 1.0 {
            assert!(
                d.delta_no2 > 0.0,
                "{k}: +{} veh/day, ΔNO2 {}",
                d.delta_vehicles_per_day,
                d.delta_no2
            );
            assert!(d.delta_lden.is_none_or(|x| x > 0.0));
            up += 1;
        } else if d.delta_vehicles_per_day < -1.0 && a.vehicles_per_day > 0.0 {
            assert!(
                d.delta_no2 <= 1e-12,
                "{k}: {} veh/day, ΔNO2 {}",
                d.delta_vehicles_per_day,
                d.delta_no2
            );
            down += 1;
        }
    }
    assert!(up > 0 && down + cleaned > 0, "up {up}, down {down}");
    let change = after.change.as_ref().unwrap();
    assert!(change.streets_no2_up > 0 && change.streets_no2_down > 0);
    // the exposure counts before and after are the two results' own
    assert_eq!(
        change.no2_above_who,
        [base.summary.no2.above_who, after.summary.no2.above_who]
    );
    assert_eq!(
        change.lden_above_55,
        [base.summary.noise.end_lden, after.summary.noise.end_lden]
    );
    // a home whose dominant street was closed breathes no worse air than before
    let before: std::collections::HashMap<&str, f64> =
        base.homes.iter().map(|h| (h.id.as_str(), h.no2)).collect();
    for h in &after.homes {
        assert!(before.contains_key(h.id.as_str()));
    }
    let by_closed = base
        .homes
        .iter()
        .filter(|h| h.street.as_ref().is_some_and(|s| closed.contains(&s)))
        .count();
    eprintln!("{by_closed} homes had {name} as their dominant street");
}

fn station(id: &str, lon: f64, lat: f64, no2: f64, pm10: f64) -> Entity {
    parse_entity(
        &json!({
            "id": id, "type": "AirQualityObserved",
            "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}},
            "NO2": {"type": "Property", "value": no2},
            "pm10": {"type": "Property", "value": pm10},
        }),
        &Context::core(),
        chrono::Utc::now(),
        &Provenance::default(),
    )
    .unwrap()
}

#[test]
fn stations_calibrate_the_background_and_report_their_fit() {
    let Some(mut entities) = entities() else {
        return;
    };
    let c = city(&entities);
    // find the street with the most NOx, and put a roadside station at its receptor's distance
    let (plain, r) = c.air(&entities);
    let (key, busiest) = r
        .streets
        .iter()
        .max_by(|a, b| a.1.no2_traffic.total_cmp(&b.1.no2_traffic))
        .unwrap();
    let link = c.model.graph.link_geometry(
        plain
            .streets()
            .iter()
            .find(|s| &s.key == key)
            .unwrap()
            .links[0],
    );
    let mid = link[link.len() / 2];
    // two background stations far outside the extract (no street within SRM1 reach) and one roadside station on the
    // busiest street (taken at SRM1's nearest distance, 3.5 m)
    let road_no2 = 30.0;
    entities.push(station(
        "urn:ngsi-ld:AirQualityObserved:west",
        24.90,
        60.17,
        11.0,
        14.0,
    ));
    entities.push(station(
        "urn:ngsi-ld:AirQualityObserved:east",
        25.00,
        60.17,
        13.0,
        16.0,
    ));
    entities.push(station(
        "urn:ngsi-ld:AirQualityObserved:road",
        mid.0,
        mid.1,
        road_no2,
        25.0,
    ));
    let (_, r) = c.air(&entities);
    let s = &r.summary;
    assert_eq!(s.background.stations["no2"], 3);
    assert_eq!(s.background.stations["o3"], 0);
    assert_eq!(s.stations.len(), 3);
    let west = s.stations.iter().find(|x| x.id.ends_with("west")).unwrap();
    assert!(west.street.is_none());
    assert_eq!(west.pollutants["no2"].traffic, 0.0);
    assert_eq!(west.pollutants["no2"].background, 11.0);
    let road = s.stations.iter().find(|x| x.id.ends_with("road")).unwrap();
    assert_eq!(road.street.as_deref(), Some(key.as_str()));
    let v = road.pollutants["no2"];
    assert!(v.traffic > 0.0);
    // its own background is what it measured minus the traffic; leaving it out, the other two stations' backgrounds
    // (11 and 13, about equally far) predict it
    assert!((v.background - (road_no2 - v.traffic)).abs() < 1e-9);
    let predicted = v.predicted.unwrap();
    assert!(predicted > 11.0 + v.traffic && predicted < 13.0 + v.traffic);
    let fit = s.fit["no2"];
    assert_eq!(fit.stations, 3);
    assert!(fit.rmse > 0.0 && fit.rmse.is_finite() && fit.bias.is_finite());
    // near the roadside station the background is its own; so the busiest street's NO2 moved towards it
    let near = &r.streets[key];
    assert!(
        (near.no2 - near.no2_traffic - v.background).abs()
            < 0.5 * (v.background - 11.0).abs() + 1.0
    );
    eprintln!(
        "stations: road NO2 measured {road_no2}, traffic {:.2}, background {:.2}, predicted {:.2}; fit {fit:?}; \
         busiest street NO2 {:.2} → {:.2}",
        v.traffic, v.background, predicted, busiest.no2, near.no2
    );
}

#[test]
fn a_20_m_field_over_the_city_peaks_on_its_busy_streets() {
    use twin_sim::air::dispersion::{Met, Stability, Terrain};
    let Some(entities) = entities() else { return };
    let c = city(&entities);
    let (air, r) = c.air(&entities);
    let met = Met {
        wind_speed_ms: 3.0,
        wind_from_deg: 225.0,
        stability: Stability::D,
        terrain: Terrain::Urban,
    };
    let t = std::time::Instant::now();
    let f = air
        .field(&c.model.network, &c.outcome, &[], &met, 20.0)
        .unwrap();
    eprintln!(
        "field: {} × {} cells of 20 m, {} segments, {:.2} s; NOx traffic max {:.1}",
        f.nx,
        f.ny,
        f.segments,
        t.elapsed().as_secs_f64(),
        f.nox_traffic.iter().copied().fold(0.0, f32::max)
    );
    // the extract is about 1 km × 1.7 km
    assert!(
        f.nx > 40 && f.nx < 80 && f.ny > 70 && f.ny < 110,
        "{} × {}",
        f.nx,
        f.ny
    );
    assert_eq!(f.no2.len(), f.nx * f.ny);
    assert!(f.nox_traffic.iter().all(|v| v.is_finite() && *v >= 0.0));
    assert!(f.no2.iter().all(|v| *v as f64 >= f.background.no2 - 1e-3));
    // the cells on the most emitting street's middle are among the most polluted tenth of the city
    let top = air
        .streets()
        .iter()
        .filter(|s| s.length_m > 40.0)
        .max_by(|a, b| {
            let e = |s: &&twin_sim::air::city::Street| r.streets[&s.key].emission_g_per_km_day.nox;
            e(a).total_cmp(&e(b))
        })
        .unwrap();
    let g = c.model.graph.link_geometry(top.links[0]);
    let mid = g[g.len() / 2];
    let i =
        ((mid.0 - f.south_west[0]) / (f.north_east[0] - f.south_west[0]) * f.nx as f64) as usize;
    let j =
        ((mid.1 - f.south_west[1]) / (f.north_east[1] - f.south_west[1]) * f.ny as f64) as usize;
    // (a cell centre may lie just upwind of the road, where a Gaussian plume gives nothing: take its neighbours too)
    let at = (j - 1..=j + 1)
        .flat_map(|y| (i - 1..=i + 1).map(move |x| (x, y)))
        .map(|(x, y)| f.nox_traffic[y * f.nx + x])
        .fold(0.0, f32::max);
    let mut sorted = f.nox_traffic.clone();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let p90 = sorted[sorted.len() * 9 / 10];
    assert!(
        at > p90,
        "{at} at the busiest street vs 90th percentile {p90}"
    );
    // the same field from the stored per-street emissions (as the API computes it for a run)
    let stored: std::collections::HashMap<String, [f64; 2]> = r
        .streets
        .iter()
        .map(|(k, v)| {
            let e = v.emission_g_per_km_day.scaled(1.0 / 86.4);
            (k.clone(), [e.nox, e.no2])
        })
        .collect();
    let again = air
        .field_of(&stored, &Default::default(), &met, 20.0)
        .unwrap();
    assert_eq!(
        (again.nx, again.ny, again.segments),
        (f.nx, f.ny, f.segments)
    );
    for (a, b) in again.nox_traffic.iter().zip(&f.nox_traffic) {
        assert!((a - b).abs() <= 1e-4 * b.max(1.0), "{a} vs {b}");
    }
    // a cell under 1 m is refused
    assert!(air
        .field(&c.model.network, &c.outcome, &[], &met, 0.5)
        .is_err());
}

#[test]
fn a_street_a_scenario_adds_has_its_air_and_noise() {
    let Some(entities) = entities() else { return };
    let c = city(&entities);
    let (air, base) = c.air(&entities);
    // a faster street alongside the busiest link, end to end: it takes some of that link's traffic
    let busiest = (0..c.model.graph.link_count())
        .max_by(|&a, &b| c.outcome.links[a].flow.total_cmp(&c.outcome.links[b].flow))
        .unwrap() as u32;
    let mut scenario = Scenario {
        name: "a new street".into(),
        description: String::new(),
        edits: Vec::new(),
    };
    let g = c.model.graph.link_geometry(busiest);
    let (a, b) = (g[0], g[g.len() - 1]);
    let edit: Edit = serde_json::from_value(json!({
        "kind": "addLink", "name": "New street", "roadClass": "primary", "kmh": 80, "lanes": 2,
        "path": [[a.0, a.1], [(a.0 + b.0) / 2.0 + 0.0002, (a.1 + b.1) / 2.0], [b.0, b.1]],
    }))
    .unwrap();
    scenario.edits.push(edit);
    let run = sim::run(&c.model, &c.base, &scenario, &RunOptions::default()).unwrap();
    assert_eq!(run.applied.added.len(), 1);
    let after = air
        .evaluate(&run.network, &run.outcome, &run.applied.added, Some(&base))
        .unwrap();
    let key = &run.applied.added[0].id;
    let v = &after.streets[key];
    eprintln!("{key}: {v:?}");
    assert_eq!(v.name.as_deref(), Some("New street"));
    assert!(v.vehicles_per_day > 0.0, "{v:?}");
    let bg = AirOptions::default().background;
    assert!(v.no2 > bg.no2 && v.noise.lden.is_some());
    // all of it is change
    let d = v.delta.unwrap();
    assert_eq!(d.delta_vehicles_per_day, v.vehicles_per_day);
    assert!((d.delta_no2 - (v.no2 - bg.no2)).abs() < 1e-12);
    assert_eq!(after.summary.streets, base.summary.streets + 1);
    // every home is still there
    assert_eq!(after.homes.len(), base.homes.len());
}
