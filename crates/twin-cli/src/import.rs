//! `urbantwin import KIND FILE`: streams a file through its reader into the store in one transaction (all or
//! nothing), under a dataset with an owner and a licence; re-importing the same file updates, never duplicates.

use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use chrono::Utc;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use twin_import::ImportError;
use twin_model::dataset::Access;
use twin_model::{Dataset, Entity, NgsiError, Provenance};
use twin_store::{ChangeOutcome, EntityChange, Store, StreamMsg, StreamSummary};

/// The kinds of files `urbantwin import` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// OpenStreetMap PBF or XML: road segments, the routable network (RoadLink), buildings, POIs, land use.
    Osm,
    /// CityJSON 1.1 / 2.0 or CityJSONSeq: buildings and building parts, transformed to WGS84.
    Cityjson,
    /// GeoJSON FeatureCollection, Feature or GeoJSONSeq: one entity of the `--type` per feature.
    Geojson,
    /// CSV with lon/lat or WKT columns: one entity of the `--type` per row.
    Csv,
    /// GTFS feed (.zip or directory): one GtfsStop per stops.txt row, with the route types serving it.
    Gtfs,
    /// TNTP network (`*_net.tntp`): RoadSegment per link, RoadNode per node, TrafficZone per zone (with --trips).
    Tntp,
}

#[derive(Args)]
pub struct ImportArgs {
    /// What the file is.
    #[arg(value_enum)]
    pub kind: Kind,
    /// The file to import (for gtfs also a directory holding the feed's .txt files).
    pub file: PathBuf,
    /// The store (a SQLite file path).
    #[arg(long, env = "URBANTWIN_DB", default_value = "./urbantwin.db")]
    pub db: String,
    /// The dataset the entities belong to (a name or a URN; default: the kind and the file name).
    #[arg(long)]
    pub dataset: Option<String>,
    /// The dataset's title, as catalogues and the web app show it (default: the file's name and the kind).
    #[arg(long)]
    pub title: Option<String>,
    /// Who owns the data (default for OSM: OpenStreetMap contributors).
    #[arg(long)]
    pub owner: Option<String>,
    /// Its licence, as an SPDX identifier or URL (default for OSM: ODbL-1.0).
    #[arg(long)]
    pub licence: Option<String>,
    /// CityJSON: the CRS to assume when the file names none (e.g. EPSG:7415); TNTP: the CRS of projected node
    /// coordinates (e.g. EPSG:26771).
    #[arg(long)]
    pub crs: Option<String>,
    /// TNTP: the node-coordinate file (`*_node.tntp`).
    #[arg(long, value_name = "NODE_FILE")]
    pub nodes: Option<PathBuf>,
    /// TNTP: a link-flow solution (`*_flow.tntp`), stored as benchmarkFlow and benchmarkCost.
    #[arg(long, value_name = "FLOW_FILE")]
    pub flows: Option<PathBuf>,
    /// TNTP: the trip table (`*_trips.tntp`), stored as one TrafficZone per zone.
    #[arg(long, value_name = "TRIPS_FILE")]
    pub trips: Option<PathBuf>,
    /// GeoJSON, CSV: the NGSI-LD type of the entities (required for these kinds).
    #[arg(long = "type", value_name = "NAME")]
    pub entity_type: Option<String>,
    /// GeoJSON: the property, CSV: the column that holds the entity id (default: the feature id, else the
    /// feature index / row number).
    #[arg(long = "id", value_name = "FIELD")]
    pub id_field: Option<String>,
    /// Also record the imported values as temporal instances (their history starts at the import). Without it,
    /// history starts with the first value a later re-import or API write changes: city models are not time
    /// series, and recording every attribute of every feature would take a third of the import's time.
    #[arg(long)]
    pub history: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The dataset URN for a name (`urn:` names are kept).
pub fn dataset_urn(name: &str) -> String {
    if name.starts_with("urn:") {
        return name.to_string();
    }
    let slug: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("urn:ngsi-ld:Dataset:{slug}")
}

/// The change that writes an imported entity: created, updated where its content changed, left alone otherwise.
/// A created entity's values go into history only with `history`; changed values always do.
fn import_change(e: Entity, history: bool) -> EntityChange {
    Box::new(move |old| {
        let now = Utc::now();
        match old {
            None => {
                let written = if history {
                    twin_model::ops::all_instances(&e)
                } else {
                    Vec::new()
                };
                Ok(ChangeOutcome::Put {
                    entity: e,
                    written,
                    removed: vec![],
                    result: serde_json::Value::Null,
                })
            }
            Some(o) => match twin_model::ops::reimport(&o, e, now) {
                None => Ok(ChangeOutcome::Nothing {
                    result: serde_json::Value::Null,
                }),
                Some((entity, r)) => Ok(ChangeOutcome::Put {
                    entity,
                    written: r.written,
                    removed: r.removed,
                    result: serde_json::Value::Null,
                }),
            },
        }
    })
}

/// Stamps an entity with its dataset (entity and every attribute instance's provenance), the file it came from
/// where the reader named no source, and the import's time where the reader set none.
fn stamp(mut e: Entity, dataset: &str, source: &str, now: chrono::DateTime<Utc>) -> Entity {
    e.dataset = Some(dataset.to_string());
    e.created_at.get_or_insert(now);
    e.modified_at.get_or_insert(now);
    for list in e.attrs.values_mut() {
        for a in list.iter_mut() {
            a.provenance.dataset = Some(dataset.to_string());
            a.provenance
                .source
                .get_or_insert_with(|| source.to_string());
        }
    }
    e
}

/// Runs an import into `store`; returns the store's summary and the reader's own summary as JSON.
pub async fn run_import(
    store: Arc<dyn Store>,
    a: &ImportArgs,
    show_progress: bool,
) -> Result<(StreamSummary, serde_json::Value)> {
    let is_feed_dir = a.kind == Kind::Gtfs && a.file.is_dir();
    if !a.file.is_file() && !is_feed_dir {
        bail!("{}: no such file", a.file.display());
    }
    // `helsinki.osm.pbf` → `helsinki`; `SiouxFalls_net.tntp` → `SiouxFalls`
    let stem = match a.kind {
        Kind::Tntp => twin_import::tntp::network_name(&a.file),
        _ => a
            .file
            .file_name()
            .and_then(|s| s.to_str())
            .and_then(|s| s.split('.').next())
            .unwrap_or("file")
            .to_string(),
    };
    let (kind_name, default_owner, default_licence) = match a.kind {
        Kind::Osm => ("osm", Some("OpenStreetMap contributors"), Some("ODbL-1.0")),
        Kind::Cityjson => ("cityjson", None, None),
        Kind::Geojson => ("geojson", None, None),
        Kind::Csv => ("csv", None, None),
        Kind::Gtfs => ("gtfs", None, None),
        Kind::Tntp => ("tntp", None, None),
    };
    let needs_type = matches!(a.kind, Kind::Geojson | Kind::Csv);
    if needs_type && a.entity_type.is_none() {
        bail!("import {kind_name} needs the type of the entities: --type NAME (e.g. --type Tree)");
    }
    if !needs_type && (a.entity_type.is_some() || a.id_field.is_some()) {
        bail!("--type and --id are for geojson and csv imports, not {kind_name}");
    }
    if a.kind != Kind::Tntp && (a.nodes.is_some() || a.flows.is_some() || a.trips.is_some()) {
        bail!("--nodes, --flows and --trips are for tntp imports, not {kind_name}");
    }
    if a.crs.is_some() && !matches!(a.kind, Kind::Cityjson | Kind::Tntp) {
        bail!("--crs is for cityjson and tntp imports, not {kind_name}");
    }
    for extra in [&a.nodes, &a.flows, &a.trips].into_iter().flatten() {
        if !extra.is_file() {
            bail!("{}: no such file", extra.display());
        }
    }
    let dataset_id = dataset_urn(
        a.dataset
            .as_deref()
            .unwrap_or(&format!("{kind_name}-{stem}")),
    );
    let existing = store
        .get_dataset(&dataset_id)
        .await
        .map_err(|e| anyhow!("{e}"))?;
    let owner = a
        .owner
        .clone()
        .or(existing.as_ref().map(|d| d.owner.clone()))
        .or(default_owner.map(String::from));
    let licence = a
        .licence
        .clone()
        .or(existing.as_ref().map(|d| d.licence.clone()))
        .or(default_licence.map(String::from));
    let (Some(owner), Some(licence)) = (owner, licence) else {
        bail!("say who owns the data and under which licence: --owner NAME --licence SPDX (e.g. CC-BY-4.0)");
    };
    let dataset = Dataset {
        id: dataset_id.clone(),
        title: a
            .title
            .clone()
            .or(existing.as_ref().map(|d| d.title.clone()))
            .unwrap_or_else(|| {
                let name = a.file.file_name().unwrap_or(a.file.as_os_str());
                format!("{} ({kind_name})", name.to_string_lossy())
            }),
        description: Some(format!(
            "imported from {} by urbantwin import {kind_name}",
            a.file.display()
        )),
        owner,
        licence,
        read: existing
            .as_ref()
            .map(|d| d.read.clone())
            .unwrap_or(Access::Public),
        write: existing
            .as_ref()
            .map(|d| d.write.clone())
            .unwrap_or(Access::Private),
        created_at: existing
            .as_ref()
            .and_then(|d| d.created_at)
            .or(Some(Utc::now())),
        attributes: existing
            .as_ref()
            .map(|d| d.attributes.clone())
            .unwrap_or_default(),
        usage_policy: existing.as_ref().and_then(|d| d.usage_policy.clone()),
        catalog: existing.map(|d| d.catalog).unwrap_or_default(),
    };
    dataset.validate().map_err(|e| anyhow!("{e}"))?;

    let bar = if show_progress {
        let b = ProgressBar::new_spinner();
        b.set_style(
            ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        b.enable_steady_tick(Duration::from_millis(120));
        b
    } else {
        ProgressBar::hidden()
    };
    // the reader runs on its own thread and feeds the writer through a bounded channel: memory stays bounded
    let (tx, rx) = mpsc::sync_channel::<StreamMsg>(2048);
    let file = a.file.clone();
    let kind = a.kind;
    let crs = a.crs.clone();
    let entity_type = a.entity_type.clone().unwrap_or_default();
    let id_field = a.id_field.clone();
    let (nodes, flows, trips) = (a.nodes.clone(), a.flows.clone(), a.trips.clone());
    let history = a.history;
    let ds = dataset_id.clone();
    let progress = bar.clone();
    let source = a.file.display().to_string();
    let reader = std::thread::spawn(move || -> Result<serde_json::Value, ImportError> {
        let started = Instant::now();
        let mut sent = 0u64;
        let mut send = |e: Entity| -> Result<(), ImportError> {
            let e = stamp(e, &ds, &source, Utc::now());
            sent += 1;
            if sent.is_multiple_of(1000) {
                progress.set_message(format!(
                    "{sent} entities ({:.0}/s)",
                    sent as f64 / started.elapsed().as_secs_f64()
                ));
            }
            tx.send(StreamMsg::Change(e.id.clone(), import_change(e, history)))
                .map_err(|_| {
                    ImportError::file(file.display().to_string(), "the store stopped the import")
                })
        };
        let prov = Provenance {
            dataset: Some(ds.clone()),
            source: Some(file.display().to_string()),
            channel: Some(format!("import:{kind:?}").to_lowercase()),
        };
        let result = match kind {
            Kind::Osm => {
                let elements = |n: u64| progress.set_message(format!("{n} OSM elements read"));
                let opts = twin_import::osm::OsmOptions {
                    progress: Some(&elements),
                    dataset: Some(ds.clone()),
                };
                twin_import::osm::read_osm_with(&file, &opts, &mut |item| match item {
                    twin_import::osm::OsmItem::Entity(e) => send(e),
                    twin_import::osm::OsmItem::Link(l) => {
                        let e = l.to_entity(Utc::now(), &prov).map_err(|e| {
                            ImportError::new(
                                file.display().to_string(),
                                format!("way {}", l.way_id),
                                e.detail,
                            )
                        })?;
                        send(e)
                    }
                    twin_import::osm::OsmItem::Node(..) => Ok(()),
                })
                .map(|s| serde_json::to_value(&s).unwrap_or_default())
            }
            Kind::Cityjson => {
                let opts = twin_import::cityjson::CityJsonOptions {
                    default_crs: crs,
                    dataset: Some(ds.clone()),
                    ..Default::default()
                };
                twin_import::cityjson::read_cityjson_with(&file, &opts, &mut send)
                    .map(|s| serde_json::to_value(&s).unwrap_or_default())
            }
            Kind::Geojson => {
                let opts = twin_import::geojson::GeoJsonOptions {
                    entity_type,
                    id_property: id_field,
                    dataset: Some(ds.clone()),
                };
                twin_import::geojson::read_geojson(&file, &opts, &mut send)
                    .map(|s| serde_json::to_value(&s).unwrap_or_default())
            }
            Kind::Csv => {
                let opts = twin_import::csv::CsvOptions {
                    entity_type,
                    id_column: id_field,
                    dataset: Some(ds.clone()),
                    ..Default::default()
                };
                twin_import::csv::read_csv(&file, &opts, &mut send)
                    .map(|s| serde_json::to_value(&s).unwrap_or_default())
            }
            Kind::Gtfs => {
                let rows = |n: u64| progress.set_message(format!("{n} stop_times.txt rows read"));
                let opts = twin_import::gtfs::GtfsOptions {
                    dataset: Some(ds.clone()),
                    progress: Some(&rows),
                };
                twin_import::gtfs::read_gtfs(&file, &opts, &mut send)
                    .map(|s| serde_json::to_value(&s).unwrap_or_default())
            }
            Kind::Tntp => {
                let opts = twin_import::tntp::TntpOptions {
                    nodes,
                    flows,
                    trips,
                    crs,
                    dataset: Some(ds.clone()),
                };
                twin_import::tntp::read_tntp(&file, &opts, &mut send)
                    .map(|s| serde_json::to_value(&s).unwrap_or_default())
            }
        };
        match &result {
            Ok(_) => {
                let _ = tx.send(StreamMsg::Commit);
            }
            Err(e) => {
                let _ = tx.send(StreamMsg::Abort(NgsiError::bad_data(e.to_string())));
            }
        }
        result
    });
    let written = store.write_stream(rx).await;
    let read = reader
        .join()
        .map_err(|_| anyhow!("the {kind_name} reader crashed"))?;
    bar.finish_and_clear();
    // the reader's error is the one to show when it caused the abort
    let read = read.map_err(|e| anyhow!("import failed, nothing was written: {e}"))?;
    let summary =
        written.map_err(|e| anyhow!("import failed, nothing was written: {}", e.detail))?;
    store
        .put_dataset(dataset)
        .await
        .map_err(|e| anyhow!("{e}"))?;
    Ok((summary, json!({"dataset": dataset_id, "reader": read})))
}

/// The `urbantwin import` command.
pub async fn run(a: ImportArgs) -> Result<()> {
    let store = crate::open_store(&a.db).await?;
    let started = Instant::now();
    let (s, extra) = run_import(store, &a, !a.json).await?;
    let secs = started.elapsed().as_secs_f64();
    if a.json {
        println!(
            "{}",
            json!({"created": s.created, "updated": s.updated, "unchanged": s.unchanged, "seconds": secs,
                   "dataset": extra["dataset"], "db": a.db})
        );
    } else {
        println!(
            "imported {} into {} (dataset {}): {} created, {} updated, {} unchanged in {:.1} s",
            a.file.display(),
            a.db,
            extra["dataset"].as_str().unwrap_or(""),
            s.created,
            s.updated,
            s.unchanged,
            secs
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_names_become_urns() {
        assert_eq!(
            dataset_urn("osm helsinki"),
            "urn:ngsi-ld:Dataset:osm-helsinki"
        );
        assert_eq!(
            dataset_urn("urn:ngsi-ld:Dataset:x"),
            "urn:ngsi-ld:Dataset:x"
        );
    }
}
