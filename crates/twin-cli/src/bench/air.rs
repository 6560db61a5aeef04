//! `urbantwin bench air`: how long the air-quality and noise models take to follow a traffic scenario, on the demo
//! city (central Helsinki's OpenStreetMap extract, `--data` or the demo's cached copy) and on a city of `--links`
//! directed car links (100,000 by default) made by repeating the extract side by side (as `bench import` does).
//!
//! For each city: the traffic model and its baseline (Algorithm B to a relative gap of 1e-6; the large city's on
//! 1.6 km zones and to 1e-4, 3 iterations or a minute, whichever comes first, since only its flows are needed
//! here), the air model read
//! from the city once (`AirCity::build`: street geometry from the buildings, homes, stations), then a scenario (the
//! busiest named street closed) re-solved warm, and the air and noise update after it (`AirCity::evaluate`: every
//! street's emission, SRM1 concentrations and noise, every home, exposure and the change against the baseline;
//! median of [`RUNS`]), and the 20 m NO2 receptor grid of the scenario (one weather situation). No peer is named for
//! this model; the target is the full update under 1 s on the demo city. No assertion on time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use twin_import::osm::{read_osm, OsmItem, RoadLink as OsmLink};
use twin_model::{Entity, Provenance};
use twin_sim::air::city::{AirCity, AirOptions};
use twin_sim::air::dispersion::{Met, Stability, Terrain};
use twin_sim::traffic::city::{self, CityModel, CityOptions};
use twin_sim::traffic::scenario::{self as sim, Edit, RunOptions, Scenario};

use super::osm_pbf::{self, BLOCK_ENTITIES};
use super::{median, osm_entities, print_results, progress, BenchArgs, Goal, Row};

/// Timed evaluations; the median is reported.
const RUNS: usize = 5;
const GAP: f64 = 1e-6;
/// The large city's traffic: this gap, or this many seconds or iterations per solve, on zones of this size (m).
const LARGE_GAP: f64 = 1e-4;
const LARGE_MAX_S: f64 = 60.0;
const LARGE_MAX_ITER: usize = 3;
const LARGE_CELL_M: f64 = 1600.0;
const GRID_CELL_M: f64 = 20.0;
/// The target for the full air and noise update on the demo city.
const UPDATE_TARGET_S: f64 = 1.0;

/// Closing the busiest named street (by the baseline's flow), as a scenario.
fn closure(model: &CityModel, base: &sim::Outcome) -> Option<Scenario> {
    let mut by_name: std::collections::BTreeMap<String, f64> = Default::default();
    for v in sim::road_links(model, base, None).values() {
        if let Some(n) = &v.name {
            *by_name.entry(n.clone()).or_default() += v.flow;
        }
    }
    let mut names: Vec<(String, f64)> = by_name.into_iter().collect();
    names.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    names.first().map(|(name, _)| Scenario {
        name: format!("{name} closed"),
        description: String::new(),
        edits: vec![Edit::CloseStreet { name: name.clone() }],
    })
}

/// An OSM node id and its `(lon, lat)`.
type CarNode = (i64, (f64, f64));

/// Connector streets between neighbouring copies of a repeated extract, per gap.
const CONNECTORS: usize = 4;

/// The entities of `copies` side-by-side copies of an extract (`shift_deg` apart), with [`CONNECTORS`] two-way
/// streets joining each copy's easternmost car nodes to the next copy's westernmost ones: the traffic model keeps
/// only the car network's largest strongly connected part, so unjoined copies would leave one copy's streets.
fn joined_copies(pbf: &Path, shift_deg: f64) -> Result<Vec<Entity>> {
    let prov = Provenance::default();
    let mut entities = Vec::new();
    let mut links: Vec<OsmLink> = Vec::new();
    read_osm(pbf, &mut |item| {
        match item {
            OsmItem::Entity(e) => entities.push(e),
            OsmItem::Link(l) => links.push(l),
            OsmItem::Node(..) => {}
        }
        Ok(())
    })
    .with_context(|| format!("cannot read {}", pbf.display()))?;
    // car nodes reachable both ways, with their copy (by longitude)
    let mut nodes: BTreeMap<i64, (f64, f64)> = BTreeMap::new();
    for l in links.iter().filter(|l| l.car.forward && l.car.backward) {
        let (Some(a), Some(b)) = (l.coords.first(), l.coords.last()) else {
            continue;
        };
        nodes.insert(l.from_node, *a);
        nodes.insert(l.to_node, *b);
    }
    let west = nodes.values().map(|c| c.0).fold(f64::INFINITY, f64::min);
    let copy_of = |lon: f64| ((lon - west) / shift_deg).floor() as i64;
    let mut by_copy: BTreeMap<i64, Vec<CarNode>> = BTreeMap::new();
    for (&id, &c) in &nodes {
        by_copy.entry(copy_of(c.0)).or_default().push((id, c));
    }
    let Some(template) = links
        .iter()
        .find(|l| l.car.forward && l.car.backward && l.highway == "primary")
        .or_else(|| links.iter().find(|l| l.car.forward && l.car.backward))
        .cloned()
    else {
        bail!(
            "{}: no two-way street to join the copies with",
            pbf.display()
        );
    };
    let copies: Vec<i64> = by_copy.keys().copied().collect();
    let mut joined = 0i64;
    for pair in copies.windows(2) {
        let mut east = by_copy[&pair[0]].clone();
        east.sort_by(|a, b| b.1 .0.total_cmp(&a.1 .0));
        let mut next = by_copy[&pair[1]].clone();
        next.sort_by(|a, b| a.1 .0.total_cmp(&b.1 .0));
        for ((a, ca), (b, cb)) in east.iter().zip(&next).take(CONNECTORS) {
            joined += 1;
            links.push(OsmLink {
                way_id: i64::MAX / 2 + joined,
                seq: 0,
                from_node: *a,
                to_node: *b,
                coords: vec![*ca, *cb],
                length_m: twin_graph::path::haversine_m(*ca, *cb),
                name: Some(format!("Connector {joined}")),
                ..template.clone()
            });
        }
    }
    for l in &links {
        entities.push(l.to_entity(chrono::Utc::now(), &prov)?);
    }
    Ok(entities)
}

/// One city measured: (label, rows). `shift_deg`: a repeated extract's copies are that far apart (joined).
fn measure(label: &str, pbf: &Path, shift_deg: Option<f64>) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let grid = shift_deg.is_none();
    progress(format!("{label}: reading {}", pbf.display()));
    let entities = match shift_deg {
        None => osm_entities(pbf)?,
        Some(shift) => joined_copies(pbf, shift)?,
    };
    let t = Instant::now();
    // the large city: zones of 1.6 km, not 400 m (fewer origins for the assignment that only feeds the measurement)
    let city_options = CityOptions {
        cell_m: if grid { 400.0 } else { LARGE_CELL_M },
        ..CityOptions::default()
    };
    let model = city::build(&entities, &city_options)
        .with_context(|| format!("no traffic model from {}", pbf.display()))?;
    // the large city's assignment is only the input here: stopped at a looser gap or after a minute
    let opts = RunOptions {
        gap: if grid { GAP } else { LARGE_GAP },
        max_seconds: (!grid).then_some(LARGE_MAX_S),
        max_iter: if grid { 10_000 } else { LARGE_MAX_ITER },
        ..RunOptions::default()
    };
    let (solution, base) = sim::baseline(&model, &opts)?;
    let traffic_s = t.elapsed().as_secs_f64();
    let car_links = (0..model.network.link_count() as u32)
        .filter(|&l| model.network.is_open(l))
        .count();
    progress(format!(
        "{label}: {car_links} directed car links, traffic model and baseline in {traffic_s:.1} s"
    ));
    let t = Instant::now();
    let air = AirCity::build(&model, &entities, &base, AirOptions::default())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let build_s = t.elapsed().as_secs_f64();
    let base_air = air
        .evaluate(&model.network, &base, &[], None)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let Some(scenario) = closure(&model, &base) else {
        bail!("{label}: no named street to close");
    };
    let t = Instant::now();
    let r = sim::run(&model, &solution, &scenario, &opts)?;
    let resolve_s = t.elapsed().as_secs_f64();
    let mut times = Vec::new();
    let mut after = None;
    for _ in 0..RUNS {
        let t = Instant::now();
        let a = air
            .evaluate(&r.network, &r.outcome, &r.applied.added, Some(&base_air))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        times.push(t.elapsed().as_secs_f64());
        after = Some(a);
    }
    let after = after.expect("at least one run");
    let update_s = median(&times);
    let s = &after.summary;
    progress(format!(
        "{label}: {} ({}), {} streets, {} homes; update {:.3} s",
        scenario.name, car_links, s.streets, s.homes, update_s
    ));
    rows.push(Row::new(
        format!("{label}: directed car links"),
        car_links as f64,
        "links",
    ));
    rows.push(Row::new(
        format!("{label}: streets"),
        s.streets as f64,
        "streets",
    ));
    rows.push(Row::new(format!("{label}: homes"), s.homes as f64, "homes"));
    rows.push(Row::new(
        format!(
            "{label}: traffic model and baseline (to gap {:.0e}: reached {:.1e})",
            opts.gap, base.summary.relative_gap
        ),
        traffic_s,
        "s",
    ));
    rows.push(Row::new(
        format!("{label}: air model read from the city (once)"),
        build_s,
        "s",
    ));
    rows.push(Row::new(
        format!("{label}: {} re-solved warm (traffic)", scenario.name),
        resolve_s,
        "s",
    ));
    let mut update = Row::new(
        format!("{label}: air and noise update after it (per street and home, median of {RUNS})"),
        update_s,
        "s",
    );
    if grid {
        update = update.target(Goal::AtMost(UPDATE_TARGET_S));
    }
    rows.push(update);
    rows.push(Row::new(
        format!("{label}: scenario to air and noise, traffic re-solve included"),
        resolve_s + update_s,
        "s",
    ));
    if grid {
        let met = Met {
            wind_speed_ms: 3.0,
            wind_from_deg: 225.0,
            stability: Stability::D,
            terrain: Terrain::Urban,
        };
        let mut times = Vec::new();
        let mut cells = 0;
        for _ in 0..RUNS {
            let t = Instant::now();
            let f = air
                .field(&r.network, &r.outcome, &r.applied.added, &met, GRID_CELL_M)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            times.push(t.elapsed().as_secs_f64());
            cells = f.nx * f.ny;
        }
        rows.push(Row::new(
            format!("{label}: 20 m NO2 grid ({cells} cells, roads within 500 m; median of {RUNS})"),
            median(&times),
            "s",
        ));
    }
    Ok(rows)
}

pub fn run(a: &BenchArgs) -> Result<()> {
    let source = super::extract(a)?;
    let threads = rayon::current_num_threads();
    let mut rows = measure("demo city", &source, None)?;
    let one = rows[0].value.max(1.0);
    let copies = ((a.links as f64) / one).ceil().max(1.0) as usize;
    let mut notes = Vec::new();
    if copies > 1 {
        let ex = osm_pbf::read_extract(&source)?;
        let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
        let file: PathBuf = dir.path().join(format!("repeated-x{copies}.osm.pbf"));
        let w = osm_pbf::write_repeated(&ex, copies, BLOCK_ENTITIES, &file)?;
        let label = format!("{copies} × demo city");
        rows.extend(measure(&label, &file, Some(w.shift_deg))?);
        notes.push(format!(
            "The large city is the extract repeated {copies} times side by side (until it has at least {} directed car \
             links), each copy joined to the next by {CONNECTORS} two-way streets; its 20 m grid is not timed (a grid \
             over the whole row of copies would be mostly empty).",
            a.links
        ));
    }
    print_results("air", &rows, &notes, threads, "peer", a.json);
    Ok(())
}
