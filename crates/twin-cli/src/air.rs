//! `urbantwin air`: the air quality and road-traffic noise of a store's city under its baseline traffic and, with
//! `--scenario`, under a traffic scenario, with the change: per street and residents exposed, as a table or JSON.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Context as _, Result};
use clap::Args;
use serde_json::{json, Value};
use twin_sim::air::city::{AirCity, AirOptions, AirResult};
use twin_sim::traffic::city::{self, CityOptions};
use twin_sim::traffic::scenario::{self as sim, RunOptions, Scenario};

#[derive(Args, Debug)]
pub struct AirArgs {
    /// The store (a SQLite file with an imported city: RoadLink, Building and PointOfInterest entities, and
    /// AirQualityObserved stations if any).
    #[arg(long, env = "URBANTWIN_DB", default_value = "./urbantwin.db")]
    pub db: String,
    /// A traffic scenario: the id or name of one stored in the store (`/api/scenarios`), or a JSON file
    /// `{"name": ..., "edits": [...]}`.
    #[arg(long, value_name = "NAME")]
    pub scenario: Option<String>,
    /// The modelled peak hour's share of the daily flow.
    #[arg(long, default_value_t = 0.10)]
    pub peak_share: f64,
    /// Hours a day at the peak hour's flow and speed.
    #[arg(long, default_value_t = 2.0)]
    pub peak_hours: f64,
    /// SRM1's regional annual-mean wind speed, m/s.
    #[arg(long, default_value_t = 5.0)]
    pub wind_ms: f64,
    /// Stop the traffic assignment at this relative gap.
    #[arg(long, default_value_t = 1e-8)]
    pub gap: f64,
    /// How many streets with the largest NO2 change (or the highest NO2) to list.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Write every street's values (with the change) as JSON keyed by RoadLink id.
    #[arg(long, value_name = "FILE.json")]
    pub out: Option<PathBuf>,
    /// Print one JSON object instead of a summary.
    #[arg(long)]
    pub json: bool,
}

/// The scenario named by `--scenario`: a JSON file, or a scenario stored in the store (by id, then by name).
fn scenario(db: &str, name: &str) -> Result<Scenario> {
    let path = Path::new(name);
    if path.is_file() {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {name}"))?;
        return serde_json::from_str(&text).with_context(|| format!("{name} is not a scenario"));
    }
    let rt = tokio::runtime::Runtime::new()?;
    let stored = rt.block_on(async {
        let store = crate::open_store(db).await?;
        let all = store
            .list_scenarios()
            .await
            .map_err(|e| anyhow!("cannot read the scenarios of {db}: {e}"))?;
        anyhow::Ok(all)
    })?;
    let found = stored
        .iter()
        .find(|s| s.id == name)
        .or_else(|| stored.iter().find(|s| s.document["name"] == name));
    let Some(s) = found else {
        let known: Vec<String> = stored
            .iter()
            .map(|s| format!("{} ({})", s.document["name"].as_str().unwrap_or("?"), s.id))
            .collect();
        bail!(
            "{db} has no scenario with the id or name {name:?} (it has: {}), and no file of that name exists",
            if known.is_empty() { "none".to_string() } else { known.join(", ") }
        );
    };
    twin_api::scenarios::scenario_of(&s.document)
        .with_context(|| format!("scenario {} as stored cannot be read", s.id))
}

fn exposure(r: &AirResult) -> Value {
    let s = &r.summary;
    json!({
        "residents": s.residents,
        "no2AboveWho": s.no2.above_who,
        "no2AboveEu2030": s.no2.above_eu_2030,
        "no2AboveEuLimit": s.no2.above_eu_limit,
        "no2MeanResidents": s.no2.mean_residents,
        "pm25AboveWho": s.pm25.above_who,
        "ldenAbove55": s.noise.end_lden,
        "lnightAbove50": s.noise.end_lnight,
    })
}

pub fn run(a: AirArgs) -> Result<()> {
    let started = Instant::now();
    let entities = crate::store_entities(
        &a.db,
        &[
            "RoadLink",
            "Building",
            "PointOfInterest",
            "AirQualityObserved",
        ],
    )?;
    let options = AirOptions {
        peak_share: a.peak_share,
        peak_hours: a.peak_hours,
        regional_wind_ms: a.wind_ms,
        ..AirOptions::default()
    };
    options.check().map_err(|e| anyhow!("{e}"))?;
    let model = city::build(&entities, &CityOptions::default())
        .with_context(|| format!("cannot build a traffic model from {}", a.db))?;
    let run = RunOptions {
        gap: a.gap,
        ..RunOptions::default()
    };
    let (base_solution, base) = sim::baseline(&model, &run)?;
    let traffic_s = started.elapsed().as_secs_f64();
    let t = Instant::now();
    let air = AirCity::build(&model, &entities, &base, options).map_err(|e| anyhow!("{e}"))?;
    let build_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let base_air = air
        .evaluate(&model.network, &base, &[], None)
        .map_err(|e| anyhow!("{e}"))?;
    let mut evaluate_s = t.elapsed().as_secs_f64();
    let mut out = json!({
        "db": a.db,
        "streets": base_air.summary.streets,
        "homes": base_air.summary.homes,
        "baseline": base_air.summary,
        "options": options,
    });
    let mut result = base_air.clone();
    if let Some(name) = &a.scenario {
        let s = scenario(&a.db, name)?;
        let r = sim::run(&model, &base_solution, &s, &run).map_err(|e| anyhow!("{e}"))?;
        let t = Instant::now();
        result = air
            .evaluate(&r.network, &r.outcome, &r.applied.added, Some(&base_air))
            .map_err(|e| anyhow!("{e}"))?;
        evaluate_s = t.elapsed().as_secs_f64();
        out["scenario"] = json!({
            "name": s.name,
            "edits": r.applied.edits,
            "unservedTrips": r.outcome.summary.unserved_trips,
            "summary": result.summary,
            "change": result.change,
            "before": exposure(&base_air),
            "after": exposure(&result),
        });
    }
    // the streets that changed most (a scenario) or the most polluted (the baseline)
    let mut streets: Vec<(&String, &twin_sim::air::city::StreetAir)> =
        result.streets.iter().collect();
    let key = |v: &twin_sim::air::city::StreetAir| match v.delta {
        Some(d) => d.delta_no2.abs(),
        None => v.no2,
    };
    streets.sort_by(|x, y| key(y.1).total_cmp(&key(x.1)).then(x.0.cmp(y.0)));
    out["top"] = json!(streets
        .iter()
        .take(a.top)
        .map(|(k, v)| json!({"id": k, "name": v.name, "no2": v.no2, "deltaNo2": v.delta.map(|d| d.delta_no2),
                             "lden": v.noise.lden, "vehiclesPerDay": v.vehicles_per_day, "roadType": v.road_type}))
        .collect::<Vec<_>>());
    out["seconds"] = json!({
        "traffic": traffic_s,
        "airBuild": build_s,
        "airEvaluate": evaluate_s,
        "total": started.elapsed().as_secs_f64(),
    });
    if let Some(path) = &a.out {
        std::fs::write(path, serde_json::to_string(&result.streets)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    print_table(&out, &base_air, a.scenario.is_some().then_some(&result));
    Ok(())
}

/// One row of the summary table: a total of a result.
type Total = fn(&AirResult) -> f64;

fn print_table(out: &Value, base: &AirResult, after: Option<&AirResult>) {
    let b = &base.summary;
    println!(
        "{}: {} streets (SRM1 road types 1/2/3/4: {:?}), {} homes, {:.0} residents; background NO2 from {} \
         station(s)",
        out["db"].as_str().unwrap_or(""),
        b.streets,
        (1..=4u8)
            .map(|t| b.road_types.get(&t).copied().unwrap_or(0))
            .collect::<Vec<_>>(),
        b.homes,
        b.residents,
        b.background.stations.get("no2").copied().unwrap_or(0)
    );
    let rows: [(&str, Total); 8] = [
        ("NOx emitted (kg/day)", |r| {
            r.summary.emissions_kg_per_day.nox
        }),
        ("CO2 emitted (kg/day)", |r| {
            r.summary.emissions_kg_per_day.co2
        }),
        ("residents' mean NO2 (µg/m³)", |r| {
            r.summary.no2.mean_residents
        }),
        ("residents above WHO NO2 10", |r| r.summary.no2.above_who),
        ("residents above EU 2030 NO2 20", |r| {
            r.summary.no2.above_eu_2030
        }),
        ("residents above EU limit NO2 40", |r| {
            r.summary.no2.above_eu_limit
        }),
        ("residents Lden ≥ 55 dB", |r| r.summary.noise.end_lden),
        ("residents Lnight ≥ 50 dB", |r| r.summary.noise.end_lnight),
    ];
    match after {
        Some(a) => {
            println!(
                "{:<34} {:>12} {:>12} {:>10}",
                "", "baseline", "scenario", "change"
            );
            for (name, f) in rows {
                println!(
                    "{name:<34} {:>12.1} {:>12.1} {:>+10.1}",
                    f(base),
                    f(a),
                    f(a) - f(base)
                );
            }
        }
        None => {
            for (name, f) in rows {
                println!("{name:<34} {:>12.1}", f(base));
            }
        }
    }
    println!(
        "streets ({}):",
        if after.is_some() {
            "largest NO2 change"
        } else {
            "highest NO2"
        }
    );
    for s in out["top"].as_array().into_iter().flatten() {
        println!(
            "  {:<40} NO2 {:>6.1}{} Lden {:>5} {:>8.0} veh/day",
            s["name"].as_str().unwrap_or(s["id"].as_str().unwrap_or("")),
            s["no2"].as_f64().unwrap_or(0.0),
            s["deltaNo2"]
                .as_f64()
                .map(|d| format!(" ({d:+.2})"))
                .unwrap_or_default(),
            s["lden"]
                .as_f64()
                .map(|l| format!("{l:.1}"))
                .unwrap_or("-".into()),
            s["vehiclesPerDay"].as_f64().unwrap_or(0.0),
        );
    }
    println!(
        "traffic {:.2} s, air model built in {:.2} s, air and noise evaluated in {:.3} s",
        out["seconds"]["traffic"].as_f64().unwrap_or(0.0),
        out["seconds"]["airBuild"].as_f64().unwrap_or(0.0),
        out["seconds"]["airEvaluate"].as_f64().unwrap_or(0.0)
    );
}
