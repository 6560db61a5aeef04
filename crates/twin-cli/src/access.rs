//! `urbantwin access`: the 15-minute city of a store's entities (homes from buildings, destinations from points of
//! interest, the walk or bike network from `RoadLink`s), as a table or JSON, with per-home results as GeoJSON.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use clap::{Args, ValueEnum};
use serde_json::json;
use twin_sim::access::{self, AccessOptions, AccessParams};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    Walk,
    Bike,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProfileArg {
    /// 1.33 m/s (4.8 km/h).
    Adult,
    /// 0.97 m/s: the 15th percentile of pedestrians aged 65 and over.
    Older,
}

#[derive(Args, Debug)]
pub struct AccessArgs {
    /// The store (a SQLite file with an imported city: RoadLink, Building and PointOfInterest entities).
    #[arg(long, env = "URBANTWIN_DB", default_value = "./urbantwin.db")]
    pub db: String,
    /// How people travel.
    #[arg(long, value_enum, default_value = "walk")]
    pub mode: ModeArg,
    /// The threshold: a category is within reach when its nearest destination is at most this many minutes away.
    #[arg(long, default_value_t = 15.0)]
    pub minutes: f64,
    /// Walking speed profile (walk only).
    #[arg(long, value_enum, default_value = "adult")]
    pub profile: ProfileArg,
    /// Speed in km/h instead of the profile's (walk) or 15 km/h (bike).
    #[arg(long)]
    pub speed_kmh: Option<f64>,
    /// Seconds lost at each crossing of a major road.
    #[arg(long, default_value_t = 15.0)]
    pub crossing_s: f64,
    /// Nearest destinations kept per category and home.
    #[arg(long, default_value_t = 3)]
    pub k: usize,
    /// Destination categories (the POI scheme's), comma-separated (default: the ten daily needs).
    #[arg(long, value_delimiter = ',')]
    pub categories: Option<Vec<String>>,
    /// Floor area per resident, m².
    #[arg(long, default_value_t = 35.0)]
    pub m2_per_resident: f64,
    /// Write every home's results as a GeoJSON FeatureCollection of points.
    #[arg(long, value_name = "FILE.geojson")]
    pub out: Option<PathBuf>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The model's options from the command line.
pub fn options(a: &AccessArgs) -> Result<AccessOptions> {
    let params = AccessParams {
        mode: Some(match a.mode {
            ModeArg::Walk => "walk".into(),
            ModeArg::Bike => "bike".into(),
        }),
        minutes: Some(a.minutes),
        profile: Some(match a.profile {
            ProfileArg::Adult => "adult".into(),
            ProfileArg::Older => "older".into(),
        }),
        speed_kmh: a.speed_kmh,
        crossing_s: Some(a.crossing_s),
        k: Some(a.k),
        categories: a.categories.clone(),
        m2_per_resident: Some(a.m2_per_resident),
    };
    params
        .options(|n| format!("--{n}"))
        .map_err(anyhow::Error::msg)
}

pub fn run(a: AccessArgs) -> Result<()> {
    let started = Instant::now();
    let options = options(&a)?;
    let entities = crate::store_entities(&a.db, &["RoadLink", "Building", "PointOfInterest"])?;
    let (net, _) = twin_graph::entities::network_from_entities(&entities)
        .with_context(|| format!("cannot build the street network of {}", a.db))?;
    if net.node_count() == 0 {
        bail!(
            "{} holds no street network (RoadLink entities): import a city first",
            a.db
        );
    }
    let r = access::run(&net, &entities, &options);
    if r.inputs.homes.is_empty() {
        bail!(
            "{} holds no homes (Building entities with residential floor area) on the network",
            a.db
        );
    }
    if let Some(path) = &a.out {
        let fc = r.homes_geojson();
        std::fs::write(path, serde_json::to_vec(&fc)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let mut out = serde_json::to_value(&r.summary)?;
    out["seconds"] = json!(seconds);
    out["speedKmh"] = json!(options.movement.speed_mps * 3.6);
    out["crossings"] = json!(r.graph.crossing_count());
    out["destinations"] = json!(r.inputs.destinations.len());
    if a.json {
        println!("{out}");
        return Ok(());
    }
    let s = &r.summary;
    println!(
        "{} homes, {:.0} residents, {} destinations; {} at {:.1} km/h, {} crossings of major roads",
        s.homes,
        s.residents,
        r.inputs.destinations.len(),
        s.mode,
        options.movement.speed_mps * 3.6,
        r.graph.crossing_count()
    );
    println!(
        "{:<24} {:>12} {:>18} {:>16}",
        "category",
        "destinations",
        format!("residents ≤ {} min", s.threshold_minutes),
        "median minutes"
    );
    for c in &s.categories {
        println!(
            "{:<24} {:>12} {:>17.1}% {:>16}",
            c.category,
            c.destinations,
            100.0 * c.share_within,
            c.median_minutes
                .map_or("–".to_string(), |m| format!("{m:.1}"))
        );
    }
    println!(
        "mean {}-minute score {:.3}; {:.1}% of residents reach every category{}",
        s.threshold_minutes,
        s.mean_score,
        100.0 * s.share_all_within,
        if s.missing.is_empty() {
            String::new()
        } else {
            format!(" (no data for {}: left out)", s.missing.join(", "))
        }
    );
    println!(
        "{:.3} s in all, {:.3} s of searches",
        seconds, s.search_seconds
    );
    Ok(())
}
