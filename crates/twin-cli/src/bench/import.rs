//! `urbantwin bench import`: OpenStreetMap import throughput. Writes `--repeat` shifted copies of an extract (by
//! default the demo's Helsinki extract) into one PBF file in a temporary directory, then times
//!
//! 1. the reader alone: `twin_import::osm::read_osm` with a sink that only counts what it is handed ([`RUNS`] runs,
//!    median);
//! 2. the whole `urbantwin import osm` path (`crate::import::run_import`) into a fresh SQLite store in the same
//!    temporary directory, committed;
//! 3. the peer, `osmium` (osmium-tool), on the same file in the same run when it is on PATH: `osmium cat -f opl`
//!    (read and format every element) next to the reader, `osmium export -f geojsonseq` (read, build point, line
//!    and polygon geometries, write GeoJSON) next to the full import ([`RUNS`] runs each, median).
//!
//! Throughput is in OSM elements per second, elements being the nodes + ways + relations of the file, each counted
//! once although urbantwin's reader makes four passes (relations, ways, nodes, ways again). The figures are
//! checked: the reader must report exactly the elements written, and the import must create exactly the entities
//! the reader produced (into an empty store), else the command fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{anyhow, bail, Context as _, Result};
use clap::Parser;
use serde_json::{json, Value};

use super::osm_pbf::{self, BLOCK_ENTITIES};
use super::{markdown, progress, rows_json, BenchArgs, Goal, Row};

/// The target of the issue: full imports at ≥ 500,000 OSM elements/s.
const TARGET: f64 = 500_000.0;

/// `urbantwin import`'s own arguments, parsed the way the command line would be.
#[derive(Parser)]
struct ImportCli {
    #[command(flatten)]
    args: crate::import::ImportArgs,
}

/// The reader alone and each peer command run this many times; the median is reported.
const RUNS: usize = 3;

/// A timed peer: the wall seconds of each run, or why it did not run.
enum Peer {
    Ran(Vec<f64>),
    Skipped(String),
}

impl Peer {
    fn secs(&self) -> Option<f64> {
        match self {
            Peer::Ran(runs) => Some(median(runs)),
            Peer::Skipped(_) => None,
        }
    }
}

/// The median of samples (the mean of the middle two for an even count); NaN for none.
fn median(samples: &[f64]) -> f64 {
    let mut v = samples.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn secs_list(runs: &[f64]) -> String {
    runs.iter()
        .map(|s| format!("{s:.2}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn osmium_version() -> Option<String> {
    let out = Command::new("osmium").arg("--version").output().ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or("osmium")
            .trim()
            .to_string()
    })
}

/// Runs osmium with `args` [`RUNS`] times, timing each run; stdout is discarded, stderr kept for an error message.
fn time_osmium(args: &[&std::ffi::OsStr]) -> Peer {
    let mut runs = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let out = Command::new("osmium")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output();
        let secs = t.elapsed().as_secs_f64();
        match out {
            Ok(o) if o.status.success() => runs.push(secs),
            Ok(o) => {
                return Peer::Skipped(format!(
                    "osmium failed ({}): {}",
                    o.status,
                    String::from_utf8_lossy(&o.stderr).trim()
                ))
            }
            Err(e) => return Peer::Skipped(format!("cannot run osmium: {e}")),
        }
    }
    Peer::Ran(runs)
}

fn count_lines(path: &Path) -> u64 {
    std::fs::read(path).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count() as u64)
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// What the reader handed to its sink.
#[derive(Default)]
struct Items {
    entities: u64,
    links: u64,
    nodes: u64,
}

pub async fn run(a: &BenchArgs) -> Result<()> {
    if a.url.is_some() || a.db.is_some() {
        bail!("--url and --db are for bench hub; bench import always imports into a fresh store in a temporary directory");
    }
    let source: PathBuf = match &a.data {
        Some(p) => p.clone(),
        None => crate::demo::helsinki_pbf(&crate::demo::cache_dir(None))?,
    };
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut errors: Vec<String> = Vec::new();

    // the input
    progress(format!("reading {}", source.display()));
    let ex = osm_pbf::read_extract(&source)?;
    progress(format!(
        "  {} elements: {} nodes, {} ways, {} relations",
        ex.elements(),
        ex.nodes.len(),
        ex.ways.len(),
        ex.relations.len()
    ));
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let stem = source
        .file_name()
        .and_then(|s| s.to_str())
        .and_then(|s| s.split('.').next())
        .unwrap_or("extract");
    let file = dir.path().join(format!("{stem}-x{}.osm.pbf", a.repeat));
    let t = Instant::now();
    let w = osm_pbf::write_repeated(&ex, a.repeat, BLOCK_ENTITIES, &file)?;
    progress(format!(
        "wrote {} copies ({} nodes, {} ways, {} relations = {} elements; {} blocks, {:.1} MB; copies {:.4}° apart, ids {} apart) in {:.1} s to {}",
        w.copies,
        w.nodes,
        w.ways,
        w.relations,
        w.elements(),
        w.blocks,
        w.bytes as f64 / 1e6,
        w.shift_deg,
        w.id_step,
        t.elapsed().as_secs_f64(),
        file.display()
    ));
    let elements = w.elements();

    // 1. the reader alone
    progress(format!(
        "1/3 reader alone: read_osm, the sink only counts; {RUNS} runs"
    ));
    let mut items = Items::default();
    let mut read = twin_import::osm::OsmSummary::default();
    let mut reader_runs = Vec::new();
    for _ in 0..RUNS {
        items = Items::default();
        let t = Instant::now();
        read = twin_import::osm::read_osm(&file, &mut |item| {
            match item {
                twin_import::osm::OsmItem::Entity(_) => items.entities += 1,
                twin_import::osm::OsmItem::Link(_) => items.links += 1,
                twin_import::osm::OsmItem::Node(..) => items.nodes += 1,
            }
            Ok(())
        })
        .map_err(|e| anyhow!("{e}"))?;
        reader_runs.push(t.elapsed().as_secs_f64());
    }
    let reader_secs = median(&reader_runs);
    let read_elements = read.nodes_read + read.ways_read + read.relations_read;
    progress(format!(
        "  {read_elements} elements in {} s (median {reader_secs:.2} s = {:.0}/s); {} entities, {} road links, {} network nodes",
        secs_list(&reader_runs),
        read_elements as f64 / reader_secs,
        items.entities,
        items.links,
        items.nodes
    ));
    if (read.nodes_read, read.ways_read, read.relations_read) != (w.nodes, w.ways, w.relations) {
        errors.push(format!(
            "the reader read {} nodes, {} ways, {} relations; the file has {}, {}, {}",
            read.nodes_read, read.ways_read, read.relations_read, w.nodes, w.ways, w.relations
        ));
    }
    let expected_entities = items.entities + items.links;

    // 2. the full import
    progress("2/3 full import: urbantwin import osm into a fresh SQLite store");
    let db = dir.path().join("bench.db");
    let db_str = db.to_str().context("the temporary path is not UTF-8")?;
    let cli = ImportCli::try_parse_from([
        "import".as_ref(),
        "osm".as_ref(),
        file.as_os_str(),
        "--db".as_ref(),
        db.as_os_str(),
    ])
    .map_err(|e| anyhow!("{e}"))?;
    let store = crate::open_store(db_str).await?;
    let t = Instant::now();
    let (summary, extra) = crate::import::run_import(store.clone(), &cli.args, false).await?;
    let import_secs = t.elapsed().as_secs_f64();
    drop(store);
    // after the commit SQLite has checkpointed the pages into the file; the WAL file keeps its size until the
    // store is closed
    let db_bytes = file_size(&db);
    let wal_bytes = file_size(Path::new(&format!("{db_str}-wal")));
    let written = summary.created + summary.updated + summary.unchanged;
    progress(format!(
        "  {elements} elements in {import_secs:.2} s = {:.0}/s; {} entities created ({:.0}/s)",
        elements as f64 / import_secs,
        summary.created,
        summary.created as f64 / import_secs
    ));
    if summary.created != expected_entities || written != summary.created {
        errors.push(format!(
            "the import created {}, updated {}, left {} unchanged; expected {expected_entities} created",
            summary.created, summary.updated, summary.unchanged
        ));
    }

    // 3. the peer
    let version = osmium_version();
    let (cat, export, features) = if version.is_some() {
        progress(format!(
            "3/3 peer: osmium cat -f opl, osmium export -f geojsonseq on the same file; {RUNS} runs each"
        ));
        let cat = time_osmium(&[
            "cat".as_ref(),
            file.as_os_str(),
            "-o".as_ref(),
            "/dev/null".as_ref(),
            "-f".as_ref(),
            "opl".as_ref(),
            "--overwrite".as_ref(),
            "--no-progress".as_ref(),
        ]);
        let out = dir.path().join("osmium.geojsonseq");
        let export = time_osmium(&[
            "export".as_ref(),
            file.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
            "-f".as_ref(),
            "geojsonseq".as_ref(),
            "--overwrite".as_ref(),
            "--no-progress".as_ref(),
        ]);
        let features = count_lines(&out);
        for (what, p) in [("cat", &cat), ("export", &export)] {
            match p {
                Peer::Ran(runs) => progress(format!(
                    "  osmium {what}: {} s (median {:.2} s = {:.0} elements/s)",
                    secs_list(runs),
                    median(runs),
                    elements as f64 / median(runs)
                )),
                Peer::Skipped(why) => progress(format!("  osmium {what} skipped: {why}")),
            }
        }
        (cat, export, features)
    } else {
        let why = "osmium is not on PATH; install it (Debian/Ubuntu: apt-get install osmium-tool) to measure the peer";
        progress(format!("3/3 peer skipped: {why}"));
        (Peer::Skipped(why.into()), Peer::Skipped(why.into()), 0)
    };

    // results
    let rate = |secs: f64| elements as f64 / secs;
    let mut reader_row = Row::new(
        "reader alone (read_osm, 4 passes, items counted and dropped)",
        rate(reader_secs),
        "elements/s",
    );
    if let Some(s) = cat.secs() {
        reader_row = reader_row.peer("osmium cat -f opl", rate(s));
    }
    let mut import_row = Row::new(
        "full import (urbantwin import osm into a fresh SQLite store)",
        rate(import_secs),
        "elements/s",
    )
    .target(Goal::AtLeast(TARGET));
    if let Some(s) = export.secs() {
        import_row = import_row.peer("osmium export -f geojsonseq", rate(s));
    }
    let mut rows = vec![
        reader_row,
        import_row,
        Row::new(
            "full import: entities written",
            summary.created as f64 / import_secs,
            "entities/s",
        ),
        Row::new("reader alone, wall time (median)", reader_secs, "s"),
        Row::new("full import, wall time", import_secs, "s"),
    ];
    for (what, p) in [
        ("osmium cat -f opl, wall time (median)", &cat),
        ("osmium export -f geojsonseq, wall time (median)", &export),
    ] {
        if let Some(s) = p.secs() {
            rows.push(Row::new(what, s, "s"));
        }
    }
    let mut skipped: Vec<&str> = [&cat, &export]
        .into_iter()
        .filter_map(|p| match p {
            Peer::Skipped(why) => Some(why.as_str()),
            Peer::Ran(_) => None,
        })
        .collect();
    skipped.dedup();
    let runs_json = |p: &Peer| match p {
        Peer::Ran(r) => json!(r),
        Peer::Skipped(_) => Value::Null,
    };

    if a.json {
        let out = json!({
            "benchmark": "import",
            "cores": cores,
            "source": source.display().to_string(),
            "config": {"repeat": a.repeat, "blockEntities": BLOCK_ENTITIES, "runs": RUNS},
            "file": {
                "nodes": w.nodes, "ways": w.ways, "relations": w.relations, "elements": elements,
                "blocks": w.blocks, "bytes": w.bytes, "shiftDegrees": w.shift_deg, "idStep": w.id_step,
            },
            "reader": serde_json::to_value(&read).unwrap_or(Value::Null),
            "readerRunsSeconds": reader_runs,
            "items": {"entities": items.entities, "roadLinks": items.links, "networkNodes": items.nodes},
            "import": {
                "created": summary.created, "updated": summary.updated, "unchanged": summary.unchanged,
                "seconds": import_secs, "dataset": extra["dataset"],
                "dbBytes": db_bytes, "walBytes": wal_bytes,
            },
            "peer": {
                "program": version,
                "catRunsSeconds": runs_json(&cat),
                "exportRunsSeconds": runs_json(&export),
                "exportFeatures": features,
                "skipped": skipped,
            },
            "results": rows_json(&rows),
            "errors": errors,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "urbantwin bench import: {} × {} = {elements} OSM elements ({} nodes, {} ways, {} relations), {:.1} MB PBF, {cores} cores",
            source.display(),
            w.copies,
            w.nodes,
            w.ways,
            w.relations,
            w.bytes as f64 / 1e6
        );
        println!();
        print!("{}", markdown(&rows, "peer (same file, same run)"));
        println!();
        println!(
            "Elements = nodes + ways + relations in the file, each counted once (the reader makes four passes); \
             the reader and osmium ran {RUNS} times each (median), the import once."
        );
        println!(
            "Import: {} entities created ({} road segments, {} road links, {} buildings, {} points of interest, \
             {} land use); database file {:.0} MB, write-ahead log {:.0} MB.",
            summary.created,
            read.road_segments,
            read.road_links,
            read.buildings,
            read.pois,
            read.land_uses,
            db_bytes as f64 / 1e6,
            wal_bytes as f64 / 1e6
        );
        match &version {
            Some(v) if skipped.is_empty() => {
                println!("Peer: {v}; osmium export wrote {features} GeoJSON features.")
            }
            _ => {
                for why in &skipped {
                    println!("Peer skipped: {why}");
                }
            }
        }
    }
    if !errors.is_empty() {
        for e in &errors {
            eprintln!("[bench] error: {e}");
        }
        bail!(
            "{} checks failed; the figures above are not valid",
            errors.len()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::fmt_ratio;

    #[test]
    fn medians_and_ratios_for_the_table() {
        assert!(median(&[]).is_nan());
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(fmt_ratio(0.0364), "0.036×");
        assert_eq!(fmt_ratio(0.384), "0.38×");
        assert_eq!(fmt_ratio(2.43), "2.4×");
        assert_eq!(fmt_ratio(31.2), "31×");
        assert_eq!(fmt_ratio(f64::NAN), "n/a");
    }

    #[test]
    fn the_table_shows_the_measured_peer() {
        let rows = [
            Row::new("full import", 20_000.0, "elements/s")
                .target(Goal::AtLeast(TARGET))
                .peer("osmium export -f geojsonseq", 800_000.0),
            Row::new("full import, wall time", 12.0, "s"),
        ];
        let t = markdown(&rows, "peer (same file, same run)");
        assert!(
            t.contains("| full import | 20,000 | elements/s | ≥ 500,000 | **no** | osmium export -f geojsonseq | 800,000 | 0.025× |"),
            "{t}"
        );
        assert!(
            t.contains("| full import, wall time | 12.00 | s | — | — | — | — | — |"),
            "{t}"
        );
    }

    #[test]
    fn import_args_parse_like_the_command_line() {
        let cli =
            ImportCli::try_parse_from(["import", "osm", "x.osm.pbf", "--db", "/tmp/x.db"]).unwrap();
        assert_eq!(cli.args.kind, crate::import::Kind::Osm);
        assert_eq!(cli.args.db, "/tmp/x.db");
    }
}
