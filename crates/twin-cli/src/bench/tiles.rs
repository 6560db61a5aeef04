//! `urbantwin bench tiles`: vector tile latency over real HTTP on loopback, cold (tile cache emptied before each
//! round; the layers' feature indexes stay, as in a running server) and warm (served from the cache), on the demo
//! city imported into a fresh store, plus the first tile after a start (which builds the indexes).
//!
//! The tiles asked for are every tile of zooms 12–16 over the city's bounds, of the style's layers at once (what a
//! MapLibre map of `/tiles/style.json` asks for). Cold figures are per zoom; the targets are cold z14 p99 ≤ 50 ms and warm p99 ≤ 5 ms.
//! The issue names no peer for tiles, so none is run.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use serde_json::{json, Value};
use twin_store::Store;
use twin_tiles::TileId;

use super::{markdown, percentile, progress, rows_json, start_server, Goal, Row, Server};

/// Zooms asked for.
const ZOOMS: std::ops::RangeInclusive<u8> = 12..=16;

/// Imports the city into a fresh store and starts the server on it; returns the server, its URL and the entities.
async fn start(pbf: &std::path::Path) -> Result<(Server, String, u64)> {
    let dir = tempfile::Builder::new()
        .prefix("urbantwin-bench-tiles-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let db = dir.path().join("city.db");
    let entities = {
        let store: Arc<dyn Store> = crate::open_store(&db.to_string_lossy()).await?;
        progress(format!("importing {} into {}", pbf.display(), db.display()));
        let (city, sensors) = crate::demo::build_city(&store, pbf, &db.to_string_lossy()).await?;
        city + sensors as u64
    };
    let (mut server, url) = start_server(Some(db)).await?;
    server._dir = Some(dir);
    Ok((server, url, entities))
}

/// One tile request: latency in ms and the body size (0 for 204); anything but 200/204 is an error.
async fn fetch(http: &reqwest::Client, url: &str) -> Result<(f64, usize)> {
    let t0 = Instant::now();
    let r = http
        .get(url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = r.status().as_u16();
    let body = r.bytes().await?;
    let ms = t0.elapsed().as_secs_f64() * 1000.0;
    match status {
        200 if !body.is_empty() => Ok((ms, body.len())),
        204 => Ok((ms, 0)),
        s => bail!("GET {url}: {s} {}", String::from_utf8_lossy(&body)),
    }
}

fn quantiles(rows: &mut Vec<Row>, name: &str, mut ms: Vec<f64>, p99_target: Option<f64>) {
    ms.sort_by(|a, b| a.total_cmp(b));
    for p in [50.0, 99.0] {
        let mut r = Row::new(
            format!("{name} p{p:.0} ({} tiles)", ms.len()),
            percentile(&ms, p).unwrap_or(f64::NAN),
            "ms",
        );
        if let (99.0, Some(t)) = (p, p99_target) {
            r = r.target(Goal::AtMost(t));
        }
        rows.push(r);
    }
}

/// Runs the benchmark: `data` is the OSM extract (default: the demo's Helsinki), `rounds` the cold rounds,
/// `warm_requests` the number of warm requests.
pub async fn run(
    data: Option<PathBuf>,
    rounds: usize,
    warm_requests: usize,
    json_out: bool,
) -> Result<()> {
    if rounds == 0 || warm_requests == 0 {
        bail!("--rounds and --requests must be at least 1");
    }
    let pbf = match data {
        Some(p) => p,
        None => crate::demo::helsinki_pbf(&crate::demo::cache_dir(None))?,
    };
    let (server, base, entities) = start(&pbf).await?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    // the layers the style draws (one source for all of them)
    let style: Value = http
        .get(format!("{base}/tiles/style.json"))
        .send()
        .await?
        .json()
        .await?;
    let all = style["sources"]["urbantwin"]["url"]
        .as_str()
        .ok_or_else(|| anyhow!("the city has no drawn layers: {style}"))?
        .to_string();
    let tilejson: Value = http.get(&all).send().await?.json().await?;
    let b = tilejson["bounds"]
        .as_array()
        .and_then(|a| a.iter().map(Value::as_f64).collect::<Option<Vec<f64>>>())
        .filter(|b| b.len() == 4)
        .ok_or_else(|| anyhow!("no bounds in {tilejson}"))?;
    let mut tiles: Vec<TileId> = Vec::new();
    for z in ZOOMS {
        let (xs, ys) = TileId::covering([b[0], b[1], b[2], b[3]], z);
        for x in xs {
            for y in ys.clone() {
                tiles.push(TileId { z, x, y });
            }
        }
    }
    let url = |t: &TileId| format!("{all}/{t}.mvt");
    progress(format!(
        "{entities} entities; {} tiles of zooms {}–{} over [{:.4}, {:.4}, {:.4}, {:.4}]; {rounds} cold rounds",
        tiles.len(),
        ZOOMS.start(),
        ZOOMS.end(),
        b[0],
        b[1],
        b[2],
        b[3]
    ));

    // the first tile after a start also builds the layers' feature indexes from the store
    server.state.tiles.clear_all().await;
    let first = &tiles[tiles.len() / 2];
    let (first_ms, _) = fetch(&http, &url(first)).await?;
    // cold: the cache emptied before each round; each tile asked once per round
    let mut cold: Vec<Vec<f64>> = vec![Vec::new(); *ZOOMS.end() as usize + 1];
    let mut sizes: Vec<usize> = vec![0; *ZOOMS.end() as usize + 1];
    for _ in 0..rounds {
        server.state.tiles.clear();
        for t in &tiles {
            let (ms, size) = fetch(&http, &url(t)).await?;
            cold[t.z as usize].push(ms);
            sizes[t.z as usize] = sizes[t.z as usize].max(size);
        }
    }
    // warm: every tile cached, then random tiles
    for t in &tiles {
        fetch(&http, &url(t)).await?;
    }
    let mut rng = fastrand::Rng::with_seed(1);
    let mut warm = Vec::with_capacity(warm_requests);
    for _ in 0..warm_requests {
        let t = &tiles[rng.usize(..tiles.len())];
        warm.push(fetch(&http, &url(t)).await?.0);
    }

    let mut rows = vec![Row::new(
        format!(
            "first tile after a start (z{}, indexes built from the store)",
            first.z
        ),
        first_ms,
        "ms",
    )];
    for z in ZOOMS {
        let target = (z == 14).then_some(50.0);
        quantiles(
            &mut rows,
            &format!("cold z{z}"),
            std::mem::take(&mut cold[z as usize]),
            target,
        );
        rows.push(Row::new(
            format!("largest z{z} tile"),
            sizes[z as usize] as f64 / 1024.0,
            "KiB",
        ));
    }
    quantiles(&mut rows, "warm, all zooms", warm, Some(5.0));
    let _ = server.stop.send(());
    let _ = server.handle.await;
    if json_out {
        println!(
            "{}",
            json!({"benchmark": "tiles", "entities": entities, "tiles": tiles.len(), "rounds": rounds,
                   "results": rows_json(&rows)})
        );
    } else {
        println!(
            "\nurbantwin bench tiles — {} ({entities} entities), {} tiles of zooms {}–{}, the style's layers per tile\n",
            pbf.display(),
            tiles.len(),
            ZOOMS.start(),
            ZOOMS.end()
        );
        print!("{}", markdown(&rows, "peer"));
        println!("\nNo peer: the issue names none for tiles.");
    }
    Ok(())
}
