//! The fuzz seeds (`fuzz/seeds/<target>/`) and the minimized inputs that once crashed, hung or exhausted memory
//! (`fuzz/regressions/<target>/`), fed to their reader as the fuzz targets do, so that CI, which does not fuzz,
//! still guards the fixes. A regression input must give `Ok` or an `ImportError` — never a panic — and a seed must
//! read without error (seeds are valid files, the starting point of the fuzzer's mutations).

use std::path::{Path, PathBuf};

use twin_import::cityjson::{parse_cityjson, CityJsonOptions};
use twin_import::csv::{parse_csv, CsvOptions};
use twin_import::geojson::{parse_geojson, GeoJsonOptions};
use twin_import::osm::{read_osm_bytes, OsmOptions};
use twin_import::{tntp, ImportError};

const TARGETS: &[&str] = &["osm_pbf", "osm_xml", "cityjson", "geojson", "csv", "tntp"];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

/// The field separator the `csv` fuzz target uses: `;` when the first line has more of them than commas.
fn csv_delimiter(data: &[u8]) -> char {
    let first = data.split(|&b| b == b'\n').next().unwrap_or_default();
    let count = |c: u8| first.iter().filter(|&&b| b == c).count();
    if count(b';') > count(b',') {
        ';'
    } else {
        ','
    }
}

/// Feeds `data` to the reader of `target` as its fuzz target does; the result of the reader the file is meant for.
fn run(target: &str, name: &str, data: &[u8]) -> Result<(), ImportError> {
    match target {
        "osm_pbf" | "osm_xml" => {
            read_osm_bytes(data, name, &OsmOptions::default(), &mut |_| Ok(())).map(drop)
        }
        "cityjson" => {
            let options = CityJsonOptions {
                default_crs: Some("EPSG:7415".into()),
                ..CityJsonOptions::default()
            };
            parse_cityjson(data, name, &options, &mut |_| Ok(())).map(drop)
        }
        "geojson" => {
            let options = GeoJsonOptions {
                entity_type: "Thing".into(),
                ..GeoJsonOptions::default()
            };
            parse_geojson(data, name, &options, &mut |_| Ok(())).map(drop)
        }
        "csv" => {
            let options = CsvOptions {
                entity_type: "Thing".into(),
                delimiter: csv_delimiter(data),
                ..CsvOptions::default()
            };
            parse_csv(data, name, &options, &mut |_| Ok(())).map(drop)
        }
        "tntp" => {
            let net = tntp::parse_net(data, name).map(drop);
            let trips = tntp::parse_trips(data, name).map(drop);
            let nodes = tntp::parse_nodes(data, name).map(drop);
            let flows = tntp::parse_flows(data, name).map(drop);
            if name.contains("_trips") {
                trips
            } else if name.contains("_node") {
                nodes
            } else if name.contains("_flow") {
                flows
            } else {
                net
            }
        }
        other => panic!("no reader for fuzz target {other:?}"),
    }
}

#[test]
fn seeds_are_read_without_error() {
    let mut n = 0;
    for target in TARGETS {
        for path in files(&fuzz_dir().join("seeds").join(target)) {
            let data = std::fs::read(&path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy();
            if let Err(e) = run(target, &name, &data) {
                panic!("seed {} fails: {e}", path.display());
            }
            n += 1;
        }
    }
    assert!(
        n >= TARGETS.len(),
        "only {n} seeds under {}",
        fuzz_dir().display()
    );
}

#[test]
fn crash_inputs_give_errors_not_panics() {
    for target in TARGETS {
        for path in files(&fuzz_dir().join("regressions").join(target)) {
            let data = std::fs::read(&path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy();
            let outcome = std::panic::catch_unwind(|| run(target, &name, &data));
            match outcome {
                Ok(Ok(())) => println!("{}: read", path.display()),
                Ok(Err(e)) => println!("{}: {e}", path.display()),
                Err(_) => panic!("{} panics the {target} reader", path.display()),
            }
        }
    }
}
