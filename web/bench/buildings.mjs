#!/usr/bin/env node
// Web-app benchmark: how fast the demo city loads to an interactive map, and how smoothly 50,000+ extruded buildings
// draw, in headless Chromium (software WebGL: SwiftShader, as `--disable-gpu` makes it) against the real server.
//
//   node web/bench/buildings.mjs [--reps N] [--scene-reps N] [--min-buildings N] [--motion-secs S]
//                                [--zoom Z] [--city-zoom Z] [--viewport WxH] [--keep DIR] [--json]
//
// Needs web/dist (npm run build --prefix web) and the release binary (cargo build --release -p twin-cli, or
// URBANTWIN_BIN); `scripts/bench-web` does both and runs this. Steps:
//
// 1. `urbantwin demo` on a fresh database (the harness's startTwin: the binary fetches the Helsinki extract once into
//    its cache folder). The demo's default view is loaded: once right after the server starts (its tile cache empty),
//    then --reps times in a new browser context (empty HTTP cache: "cold") and reloaded in that context ("warm").
//    The load time is the app's own `window.urbantwin.firstIdleMs`: ms from navigation start to the map's first
//    `idle` (everything in view loaded and drawn).
// 2. The demo's Building footprints are read from the server (OGC API Features, /ogc/collections/Building/items)
//    and replicated on an nx×ny grid (about as wide as tall), each copy shifted by the footprints' extent plus 50 m,
//    until there are ≥ --min-buildings;
//    every building gets a height (its own, else levels × 3 m + 1 m, else a fixed pseudo-random 6–30 m). They are
//    written as one GeoJSON FeatureCollection and imported with `urbantwin import geojson --type Building` into a
//    fresh database, served by `urbantwin serve --web-dir web/dist`.
// 3. Server tiles: the street view's centre tile and its neighbour at zooms 16…13 (/tiles/Building/z/x/y.mvt), timed
//    with curl before any browser asked (first request: the tile is made; second: the tile cache), with their sizes.
// 4. Two views of the 50k city at pitch 60: "street" (--zoom, over the densest 500 m of the middle copy) and "city"
//    (--city-zoom, the grid's centre: tens of thousands of buildings in view; Building tiles start at zoom 13). The
//    server's style draws buildings flat (`buildings-flat`, fill) below zoom 14 and extruded (`buildings`,
//    fill-extrusion) from 14 on. Each view in four variants, alternated, --scene-reps times in new browser contexts,
//    all through one route on /tiles/style.json: style (the server's style unchanged: what a user gets — extruded in
//    the street view, flat in the city view); 3D (the extrusion forced at every zoom the Building tiles have: its
//    minzoom lowered to theirs, `buildings-flat` hidden — at the street zoom the same as style); flat (the extrusion
//    hidden, `buildings-flat` drawn at every zoom — at the city zoom the same as style); none (buildings hidden: what
//    the software renderer costs with nothing to draw). Measured: load time; building features drawn in view
//    (queryRenderedFeatures, distinct ids); requestAnimationFrame deltas in the page while the camera orbits
//    (easeTo bearing +120°) and then pans (panBy 40 % of the width), --motion-secs each, linear easing.
//
// Prints markdown tables on stdout (or one JSON object with --json); progress goes to stderr.

import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchBrowser, startTwin, WEB } from '../tests/harness.mjs';

const BIN = process.env.URBANTWIN_BIN ?? '/root/.cache/urbantwin/target/release/urbantwin';

// ---- options
const argv = process.argv.slice(2);
function opt(name, dflt) {
  const i = argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  if (typeof dflt === 'boolean') return true;
  const v = argv[i + 1];
  if (v === undefined) throw new Error(`--${name} needs a value`);
  return typeof dflt === 'number' ? Number(v) : v;
}
if (argv.includes('--help') || argv.includes('-h')) {
  console.log(
    'usage: node web/bench/buildings.mjs [--reps 5] [--scene-reps 3] [--min-buildings 50000] [--motion-secs 5] [--zoom 15.5] [--city-zoom 13] [--viewport 1280x800] [--keep DIR] [--json]',
  );
  process.exit(0);
}
const REPS = opt('reps', 5);
const SCENE_REPS = opt('scene-reps', 3);
const MIN_BUILDINGS = opt('min-buildings', 50_000);
const MOTION_MS = opt('motion-secs', 5) * 1000;
const ZOOM = opt('zoom', 15.5);
const CITY_ZOOM = opt('city-zoom', 13);
const PITCH = 60;
const KEEP = opt('keep', '');
const JSON_OUT = opt('json', false);
const [VW, VH] = String(opt('viewport', '1280x800')).split('x').map(Number);
const VIEWPORT = { width: VW, height: VH };

const log = (...a) => console.error('[bench-web]', ...a);

// ---- statistics
const sorted = (xs) => [...xs].sort((a, b) => a - b);
function quantile(xs, q) {
  const s = sorted(xs);
  if (!s.length) return NaN;
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1));
  return s[i];
}
const median = (xs) => {
  const s = sorted(xs);
  if (!s.length) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const max = (xs) => (xs.length ? Math.max(...xs) : NaN);
const fmt = (n, d = 0) =>
  Number.isFinite(n) ? n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }) : '—';

// ---- processes
function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

async function waitFor(url, ms, proc, out) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (proc.exitCode !== null) throw new Error(`urbantwin exited with ${proc.exitCode}\n${out.join('')}`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} did not answer within ${ms} ms\n${out.join('')}`);
}

/** `urbantwin serve --db DB --web-dir web/dist` on a free port; resolves to `{url, stop}`. */
async function serve(db) {
  const port = await freePort();
  const out = [];
  const proc = spawn(
    BIN,
    ['serve', '--db', db, '--listen', `127.0.0.1:${port}`, '--web-dir', join(WEB, 'dist')],
    { env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  for (const s of [proc.stdout, proc.stderr]) s.on('data', (d) => out.push(String(d)));
  const url = `http://127.0.0.1:${port}`;
  const spawnedAt = Date.now();
  try {
    await waitFor(`${url}/health`, 60_000, proc, out);
  } catch (e) {
    proc.kill('SIGKILL');
    throw e;
  }
  return {
    url,
    spawnedAt,
    healthMs: Date.now() - spawnedAt,
    stop: () =>
      new Promise((r) => {
        if (proc.exitCode !== null) return r();
        const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
        proc.once('exit', () => {
          clearTimeout(t);
          r();
        });
        proc.kill('SIGTERM');
      }),
  };
}

// ---- the browser side
/** Console messages from Chromium's software GL driver are not the app's. */
const BENIGN = [/GL Driver Message/, /GPU stall due to ReadPixels/, /WebGL.*performance/i];

/**
 * A new browser context (empty HTTP cache) with the style rewritten by `styleEdit` (null: passed through), the app
 * opened at `hash`; resolves once `window.urbantwin.ready`. Returns `{context, page, firstIdleMs, tiles, problems}`.
 */
async function open(browser, base, hash, styleEdit) {
  const context = await browser.newContext({ viewport: VIEWPORT, deviceScaleFactor: 1, locale: 'en-GB' });
  await context.route('**/tiles/style.json', async (route) => {
    const resp = await route.fetch();
    const style = await resp.json();
    if (styleEdit) styleEdit(style);
    await route.fulfill({ response: resp, json: style });
  });
  const page = await context.newPage();
  const problems = [];
  page.on('console', (m) => {
    if ((m.type() === 'error' || m.type() === 'warning') && !BENIGN.some((re) => re.test(m.text())))
      problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  const tiles = [];
  page.on('requestfinished', async (req) => {
    const m = /\/tiles\/([^/]+)\/(\d+)\/(\d+)\/(\d+)\.mvt/.exec(req.url());
    if (!m) return;
    try {
      const t = req.timing();
      const resp = await req.response();
      const body = resp ? await resp.body() : Buffer.alloc(0);
      const sizes = await req.sizes().catch(() => undefined);
      tiles.push({
        layers: m[1],
        z: Number(m[2]),
        status: resp?.status(),
        bytes: Number(resp?.headers()['content-length'] ?? NaN),
        decodedBytes: body.length,
        // bytes on the wire (encoded: gzip when the server compresses)
        wireBytes: sizes?.responseBodySize ?? NaN,
        encoding: resp?.headers()['content-encoding'] ?? '',
        // request sent → first byte: the server's time to make (or find) the tile, plus loopback
        serverMs: t.responseStart - t.requestStart,
        // epoch ms: the tiles are fetched by MapLibre's worker, which the page's Resource Timing does not list
        startedAt: t.startTime,
        endedAt: t.startTime + t.responseEnd,
      });
    } catch {
      /* the page went away */
    }
  });
  await page.goto(`${base}/${hash}`);
  await page.waitForFunction(() => window.urbantwin?.ready === true, null, { timeout: 180_000 });
  const firstIdleMs = await page.evaluate(() => window.urbantwin.firstIdleMs);
  return { context, page, firstIdleMs, tiles, problems };
}

/** Where a load's time went (ms from navigation start), from the page's Resource and Navigation Timing. */
async function loadPhases(page, tileLog) {
  const origin = await page.evaluate(() => performance.timeOrigin);
  const tiles = tileLog.filter((t) => t.endedAt >= origin);
  const phases = await page.evaluate(() => {
    const nav = performance.getEntriesByType('navigation')[0];
    const res = performance.getEntriesByType('resource');
    const end = (re) => Math.max(0, ...res.filter((r) => re.test(r.name)).map((r) => r.responseEnd));
    return {
      html: Math.round(nav.responseEnd),
      domContentLoaded: Math.round(nav.domContentLoadedEventEnd),
      appScript: Math.round(end(/\/assets\/index-[^/]*\.js/)),
      appScriptKiB: Math.round(
        res.filter((r) => /\/assets\/index-[^/]*\.js/.test(r.name)).reduce((s, r) => s + r.encodedBodySize, 0) / 1024,
      ),
      appScriptDecodedKiB: Math.round(
        res.filter((r) => /\/assets\/index-[^/]*\.js/.test(r.name)).reduce((s, r) => s + r.decodedBodySize, 0) / 1024,
      ),
      style: Math.round(end(/\/tiles\/style\.json/)),
      otherRequests: res.length,
      lastOtherRequest: Math.round(Math.max(0, ...res.map((r) => r.responseEnd))),
      firstIdle: window.urbantwin.firstIdleMs,
    };
  });
  return {
    ...phases,
    firstTileRequested: Math.round(Math.min(...tiles.map((t) => t.startedAt)) - origin),
    lastTile: Math.round(Math.max(...tiles.map((t) => t.endedAt)) - origin),
    tiles: tiles.length,
    tileKiB: Math.round(tiles.reduce((s, t) => s + t.decodedBytes, 0) / 1024),
    tileWireKiB: Math.round(tiles.reduce((s, t) => s + t.wireBytes, 0) / 1024),
  };
}

/** Reloads the page in its context (HTTP cache kept) and returns the new first-idle time. */
async function reload(page) {
  await page.reload();
  await page.waitForFunction(() => window.urbantwin?.ready === true, null, { timeout: 180_000 });
  return page.evaluate(() => window.urbantwin.firstIdleMs);
}

async function idle(page) {
  await page.evaluate(
    () =>
      new Promise((resolve) => {
        const map = window.urbantwin.map;
        map.once('idle', resolve);
        map.triggerRepaint();
      }),
  );
}

/** Distinct building ids drawn in view, and the MapLibre features behind them. */
async function renderedBuildings(page) {
  return page.evaluate(() => {
    const map = window.urbantwin.map;
    const layers = ['buildings', 'buildings-flat', 'bench-flat-buildings'].filter((l) => map.getLayer(l) && map.getLayoutProperty(l, 'visibility') !== 'none');
    const fs = map.queryRenderedFeatures({ layers });
    const ids = new Set(fs.map((f) => f.properties?.id ?? f.id));
    return { distinct: ids.size, features: fs.length };
  });
}

/**
 * Moves the camera for `ms` with linear easing (orbit: bearing +120° about the centre; pan: panBy 40 % of the map's
 * width) and records requestAnimationFrame deltas and MapLibre renders in the page.
 */
async function motion(page, kind, ms) {
  return page.evaluate(
    async ({ kind, ms }) => {
      const map = window.urbantwin.map;
      const deltas = [];
      let renders = 0;
      const onRender = () => renders++;
      map.on('render', onRender);
      let running = true;
      let last;
      const tick = (t) => {
        if (last !== undefined) deltas.push(t - last);
        last = t;
        if (running) requestAnimationFrame(tick);
      };
      requestAnimationFrame(tick);
      const t0 = performance.now();
      await new Promise((resolve) => {
        map.once('moveend', resolve);
        const easing = (x) => x;
        if (kind === 'orbit') map.easeTo({ bearing: map.getBearing() + 120, duration: ms, easing });
        else map.panBy([Math.round(map.getCanvas().clientWidth * 0.4), 0], { duration: ms, easing });
      });
      running = false;
      const elapsed = performance.now() - t0;
      map.off('render', onRender);
      return { deltas, renders, elapsed };
    },
    { kind, ms },
  );
}

function frameStats(m) {
  const d = m.deltas;
  return {
    frames: d.length,
    medianMs: median(d),
    p95Ms: quantile(d, 0.95),
    maxMs: max(d),
    fps: (d.length / m.elapsed) * 1000,
    renderFps: (m.renders / m.elapsed) * 1000,
    over50ms: d.filter((x) => x > 50).length,
  };
}

/** The Building tiles' minzoom, as the style's building layers state it. */
function buildingMinzoom(style) {
  const ls = style.layers.filter((x) => x['source-layer'] === 'Building');
  return Math.min(...ls.map((x) => x.minzoom ?? 0));
}

function hide(l) {
  if (l) l.layout = { ...(l.layout ?? {}), visibility: 'none' };
}

/** 3D: the extrusion forced at every zoom the Building tiles have (its minzoom lowered to theirs), the style's flat
 * buildings hidden — what the style's flat-below-14 saves at city zooms. At zoom ≥ 14 the same as the style. */
function threeDStyle(style) {
  const l = style.layers.find((x) => x.id === 'buildings');
  if (!l) throw new Error('the style has no `buildings` layer');
  l.minzoom = buildingMinzoom(style);
  hide(style.layers.find((x) => x.id === 'buildings-flat'));
}

/** Flat, the peer: the extrusion layer stays in the style (the app's layer panel reads it) but is hidden, so MapLibre
 * builds no 3D geometry for it; the style's own `buildings-flat` fill is drawn at every zoom (its maxzoom dropped),
 * or, with a style that has none, a fill layer on the same tiles is added. Below zoom 14 the same as the style. */
function flatStyle(style) {
  const i = style.layers.findIndex((x) => x.id === 'buildings');
  if (i < 0) throw new Error('the style has no `buildings` layer');
  const l = style.layers[i];
  const minzoom = buildingMinzoom(style);
  hide(l);
  const f = style.layers.find((x) => x.id === 'buildings-flat');
  if (f) {
    delete f.maxzoom;
    f.minzoom = minzoom;
    return;
  }
  style.layers.splice(i + 1, 0, {
    id: 'bench-flat-buildings',
    type: 'fill',
    source: l.source,
    'source-layer': l['source-layer'],
    minzoom,
    paint: { 'fill-color': '#d6cfc7', 'fill-opacity': 0.85, 'fill-outline-color': '#b8afa5' },
  });
}

/** The floor: no buildings drawn at all. */
function noBuildings(style) {
  const l = style.layers.find((x) => x.id === 'buildings');
  if (!l) throw new Error('the style has no `buildings` layer');
  hide(l);
  hide(style.layers.find((x) => x.id === 'buildings-flat'));
}

// ---- the city
/** Every Building of the server as GeoJSON features (OGC API Features, paged). */
async function fetchBuildings(base) {
  const out = [];
  for (let offset = 0; ; ) {
    const r = await fetch(`${base}/ogc/collections/Building/items?limit=10000&offset=${offset}`, {
      headers: { accept: 'application/geo+json' },
    });
    if (!r.ok) throw new Error(`GET /ogc/collections/Building/items: HTTP ${r.status}: ${await r.text()}`);
    const fc = await r.json();
    out.push(...fc.features);
    if (!fc.features.length || out.length >= (fc.numberMatched ?? Infinity)) break;
    offset += fc.features.length;
  }
  return out;
}

function eachCoord(geom, f) {
  const walk = (c) => (typeof c[0] === 'number' ? f(c) : c.forEach(walk));
  walk(geom.coordinates);
}

function mapCoords(geom, f) {
  const walk = (c) => (typeof c[0] === 'number' ? f(c) : c.map(walk));
  return { type: geom.type, coordinates: walk(geom.coordinates) };
}

/** A fixed pseudo-random number in [0, 1) from a string. */
function hash01(s) {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return ((h >>> 0) % 100000) / 100000;
}

/** The n×n copies of the footprints with heights; the view centre over the densest part. */
function replicate(buildings, minCount) {
  const polys = buildings.filter((f) => f.geometry && /Polygon$/.test(f.geometry.type));
  let [x0, y0, x1, y1] = [Infinity, Infinity, -Infinity, -Infinity];
  for (const f of polys)
    eachCoord(f.geometry, ([x, y]) => {
      x0 = Math.min(x0, x);
      y0 = Math.min(y0, y);
      x1 = Math.max(x1, x);
      y1 = Math.max(y1, y);
    });
  // copies side by side, a 50 m gap between them (in degrees at this latitude); as many across as down in metres
  const coslat = Math.cos((((y0 + y1) / 2) * Math.PI) / 180);
  const gapLat = 50 / 111_320;
  const gapLon = gapLat / coslat;
  const dx = x1 - x0 + gapLon;
  const dy = y1 - y0 + gapLat;
  const aspect = (dy * 111_320) / (dx * 111_320 * coslat);
  const copies = Math.ceil(minCount / polys.length);
  const nx = Math.max(1, Math.round(Math.sqrt(copies * aspect)));
  const ny = Math.max(1, Math.ceil(copies / nx));
  const heightSources = { own: 0, levels: 0, assumed: 0 };
  const base = polys.map((f) => {
    const p = f.properties ?? {};
    const id = String(f.id ?? p.id ?? '');
    let height = typeof p.height === 'number' && p.height > 0 ? p.height : undefined;
    if (height !== undefined) heightSources.own++;
    const levels = Number(p.levels ?? p.floorsAboveGround ?? p['building:levels']);
    if (height === undefined && Number.isFinite(levels) && levels > 0) {
      height = levels * 3 + 1;
      heightSources.levels++;
    }
    if (height === undefined) {
      height = Math.round(6 + 24 * hash01(id));
      heightSources.assumed++;
    }
    const props = { height };
    for (const k of ['name', 'category', 'levels'])
      if (p[k] !== undefined && p[k] !== null && typeof p[k] !== 'object') props[k] = p[k];
    return { id: id.split(':').pop(), geometry: f.geometry, props };
  });
  // the densest 500 m cell of one copy
  const cell = 500 / 111_320;
  const cellLon = cell / Math.cos((((y0 + y1) / 2) * Math.PI) / 180);
  const counts = new Map();
  for (const b of base) {
    let cx = 0;
    let cy = 0;
    let k = 0;
    eachCoord(b.geometry, ([x, y]) => {
      cx += x;
      cy += y;
      k++;
    });
    const key = `${Math.floor((cx / k - x0) / cellLon)},${Math.floor((cy / k - y0) / cell)}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const [bestKey, bestCount] = [...counts.entries()].sort((a, b) => b[1] - a[1])[0];
  const [bi, bj] = bestKey.split(',').map(Number);
  const features = [];
  for (let i = 0; i < nx; i++)
    for (let j = 0; j < ny; j++)
      for (const b of base)
        features.push({
          type: 'Feature',
          id: `${b.id}-${i}-${j}`,
          geometry: mapCoords(b.geometry, ([x, y]) => [+(x + i * dx).toFixed(7), +(y + j * dy).toFixed(7)]),
          properties: b.props,
        });
  // street scene: the middle copy's densest cell, a little south so the tilted view (looking north) has it ahead;
  // city scene: the grid's centre, a sixth of the grid south for the same reason
  const center = {
    lon: x0 + (bi + 0.5) * cellLon + Math.floor(nx / 2) * dx,
    lat: y0 + (bj + 0.5) * cell + Math.floor(ny / 2) * dy - 0.6 * cell,
  };
  const gridCenter = { lon: x0 + (nx * dx) / 2, lat: y0 + (ny * dy) / 2 - (ny * dy) / 6 };
  return {
    features,
    n: `${nx}×${ny}`,
    gridKm: [+(nx * dx * 111.32 * coslat).toFixed(1), +(ny * dy * 111.32).toFixed(1)],
    gridCenter,
    footprints: polys.length,
    skipped: buildings.length - polys.length,
    extentKm: [((x1 - x0) * 111.32 * Math.cos((((y0 + y1) / 2) * Math.PI) / 180)), (y1 - y0) * 111.32],
    densestCell: bestCount,
    heightSources,
    center,
  };
}

// ---- tiles on the server, timed with curl
function lonLatToTile(lon, lat, z) {
  const n = 2 ** z;
  const x = Math.floor(((lon + 180) / 360) * n);
  const r = (lat * Math.PI) / 180;
  const y = Math.floor(((1 - Math.log(Math.tan(r) + 1 / Math.cos(r)) / Math.PI) / 2) * n);
  return [x, y];
}

function curlTile(url) {
  const out = execFileSync(
    'curl',
    ['-s', '-o', '/dev/null', '-H', 'Accept-Encoding: gzip', '-w', '%{http_code} %{size_download} %{time_starttransfer} %{time_total}', url],
    { encoding: 'utf8' },
  );
  const [code, bytes, ttfb, total] = out.trim().split(' ');
  return { status: Number(code), bytes: Number(bytes), ttfbMs: Number(ttfb) * 1000, totalMs: Number(total) * 1000 };
}

async function tileProbe(base, center) {
  const rows = [];
  // the highest zoom first: the first request after the server starts pays a one-off cost of its own
  for (const z of [16, 15, 14, 13])
    for (const dxTile of [0, 1]) {
    const [x0, y] = lonLatToTile(center.lon, center.lat, z);
    const x = x0 + dxTile;
    const url = `${base}/tiles/Building/${z}/${x}/${y}.mvt`;
    const cold = curlTile(url);
    const warm = curlTile(url);
    const raw = execFileSync('curl', ['-s', url]);
    rows.push({ tile: `${z}/${x}/${y}`, status: cold.status, gzipBytes: cold.bytes, rawBytes: raw.length, coldMs: cold.ttfbMs, warmMs: warm.ttfbMs });
    }
  return rows;
}

function tileSummary(tiles) {
  const byZ = new Map();
  for (const t of tiles) {
    const a = byZ.get(t.z) ?? [];
    a.push(t);
    byZ.set(t.z, a);
  }
  return [...byZ.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([z, ts]) => ({
      z,
      count: ts.length,
      decodedKb: ts.reduce((s, t) => s + t.decodedBytes, 0) / 1024,
      wireKb: ts.reduce((s, t) => s + t.wireBytes, 0) / 1024,
      gzipped: ts.filter((t) => t.encoding === 'gzip').length,
      maxKb: max(ts.map((t) => t.decodedBytes)) / 1024,
      medianServerMs: median(ts.map((t) => t.serverMs)),
      maxServerMs: max(ts.map((t) => t.serverMs)),
    }));
}

// ---- the run
async function main() {
  const work = KEEP || mkdtempSync(join(tmpdir(), 'urbantwin-bench-web-'));
  mkdirSync(work, { recursive: true });
  const result = {
    loadavg: [loadavg()[0]],
    machine: {
      nproc: cpus().length,
      cpu: cpus()[0]?.model,
      chromium: execFileSync(process.env.CHROMIUM ?? '/usr/bin/chromium', ['--version'], { encoding: 'utf8' }).trim(),
    },
  };
  const browser = await launchBrowser();
  let demo;
  let big;
  try {
    // 1. the demo city
    log('starting `urbantwin demo` (the first run fetches and imports the Helsinki extract)');
    demo = await startTwin();
    log(`demo at ${demo.url}`);
    const catalog = await (await fetch(`${demo.url}/tiles`)).json().catch(() => undefined);
    const first = await open(browser, demo.url, '', null);
    const firstDemo = { firstIdleMs: first.firstIdleMs, problems: first.problems };
    await first.context.close();
    const cold = [];
    const warm = [];
    const phases = [];
    const problems = [...firstDemo.problems];
    for (let i = 0; i < REPS; i++) {
      const o = await open(browser, demo.url, '', null);
      cold.push(o.firstIdleMs);
      phases.push(await loadPhases(o.page, o.tiles));
      warm.push(await reload(o.page));
      problems.push(...o.problems);
      await o.context.close();
      log(`demo load ${i + 1}/${REPS}: cold ${o.firstIdleMs} ms, warm ${warm[warm.length - 1]} ms`);
    }
    result.demo = {
      layers: (catalog?.layers ?? []).map((l) => ({ id: l.id, count: l.entities })),
      serverColdMs: firstDemo.firstIdleMs,
      cold,
      warm,
      phases: Object.fromEntries(Object.keys(phases[0] ?? {}).map((k) => [k, median(phases.map((p) => p[k]))])),
      problems: [...new Set(problems)],
    };

    // 2. the 50k city
    log('reading the demo buildings');
    const buildings = await fetchBuildings(demo.url);
    await demo.stop();
    demo = undefined;
    const city = replicate(buildings, MIN_BUILDINGS);
    const geojson = join(work, 'buildings.geojson');
    writeFileSync(geojson, JSON.stringify({ type: 'FeatureCollection', features: city.features }));
    const db = join(work, 'buildings.db');
    rmSync(db, { force: true });
    for (const ext of ['-wal', '-shm']) rmSync(db + ext, { force: true });
    log(`importing ${city.features.length} buildings (${city.n} copies of ${city.footprints})`);
    const t0 = Date.now();
    execFileSync(BIN, ['import', 'geojson', geojson, '--db', db, '--type', 'Building', '--dataset', 'bench-buildings', '--title', 'Benchmark city (Helsinki OSM footprints, replicated)', '--owner', 'OpenStreetMap contributors', '--licence', 'ODbL-1.0'], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const importMs = Date.now() - t0;
    result.city = {
      buildings: city.features.length,
      footprints: city.footprints,
      copies: city.n,
      gridKm: city.gridKm,
      extentKm: city.extentKm.map((v) => +v.toFixed(2)),
      densest500mCell: city.densestCell,
      heightSources: city.heightSources,
      importMs,
      center: city.center,
    };
    big = await serve(db);
    log(`50k city at ${big.url}`);
    result.server = { healthMs: big.healthMs };

    // 3. server tiles, before any browser asked for them
    result.server.probeStartMs = Date.now() - big.spawnedAt;
    result.tileProbe = await tileProbe(big.url, city.center);

    // 4. the scenes: 3D, flat (the peer) and no buildings (what the software renderer costs with nothing to draw)
    const scenes = {
      street: { zoom: ZOOM, center: city.center },
      city: { zoom: CITY_ZOOM, center: city.gridCenter },
    };
    const variants = { style: null, '3D': threeDStyle, flat: flatStyle, none: noBuildings };
    result.scenes = {};
    let serverCold = true;
    for (const [sceneName, sc] of Object.entries(scenes)) {
      const hash = `#map=${sc.zoom}/${sc.center.lat.toFixed(5)}/${sc.center.lon.toFixed(5)}/0/${PITCH}`;
      const scene = { hash, zoom: sc.zoom, runs: {} };
      result.scenes[sceneName] = scene;
      for (const v of Object.keys(variants)) scene.runs[v] = { loads: [], problems: [] };
      // the first load after the server started makes every tile it shows: reported on its own
      {
        const o = await open(browser, big.url, hash, null);
        scene.firstLoadMs = o.firstIdleMs;
        scene.firstLoadServerCold = serverCold;
        serverCold = false;
        await new Promise((r) => setTimeout(r, 300));
        scene.firstLoadTiles = tileSummary(o.tiles);
        scene.runs.style.problems.push(...o.problems);
        await o.context.close();
        log(`${sceneName} scene, first load: ${o.firstIdleMs} ms`);
      }
      for (let i = 0; i < SCENE_REPS; i++) {
        for (const [name, edit] of Object.entries(variants)) {
          const run = scene.runs[name];
          const o = await open(browser, big.url, hash, edit);
          run.loads.push(o.firstIdleMs);
          run.problems.push(...o.problems);
          log(`${sceneName} scene ${name} load ${i + 1}/${SCENE_REPS}: ${o.firstIdleMs} ms`);
          if (i === SCENE_REPS - 1) {
            await idle(o.page);
            run.rendered = name === 'none' ? { distinct: 0, features: 0 } : await renderedBuildings(o.page);
            if (KEEP) await o.page.screenshot({ path: join(work, `${sceneName}-${name}.png`) });
            await o.page.waitForTimeout(500);
            const orbit = await motion(o.page, 'orbit', MOTION_MS);
            await idle(o.page);
            await o.page.waitForTimeout(500);
            const pan = await motion(o.page, 'pan', MOTION_MS);
            run.orbit = frameStats(orbit);
            run.pan = frameStats(pan);
            log(`  ${name}: ${run.rendered.distinct} buildings in view; orbit ${fmt(run.orbit.fps, 1)} fps, pan ${fmt(run.pan.fps, 1)} fps`);
          }
          await o.context.close();
        }
      }
      for (const r of Object.values(scene.runs)) r.problems = [...new Set(r.problems)];
    }
    result.loadavg.push(loadavg()[0]);
  } finally {
    await browser.close();
    await demo?.stop();
    await big?.stop();
    if (!KEEP) rmSync(work, { recursive: true, force: true });
  }
  if (KEEP) writeFileSync(join(work, 'result.json'), JSON.stringify(result, null, 2));
  if (JSON_OUT) console.log(JSON.stringify(result, null, 2));
  else console.log(report(result));
  const problems = [...result.demo.problems];
  for (const sc of Object.values(result.scenes ?? {})) for (const r of Object.values(sc.runs)) problems.push(...r.problems);
  if (problems.length) {
    console.error(`[bench-web] ${problems.length} console problem(s):`);
    for (const p of problems.slice(0, 20)) console.error(`  ${p}`);
  }
}

function report(r) {
  const L = [];
  const d = r.demo;
  const ratio = (a, b) => (Number.isFinite(a / b) ? `${fmt(a / b, 2)}×` : '—');
  const met = (v) => (v < 2000 ? 'yes' : '**no**');
  L.push(
    `Machine: ${r.machine.nproc} CPUs (${r.machine.cpu}); ${r.machine.chromium}; headless, --disable-gpu (WebGL in software: SwiftShader); viewport ${VIEWPORT.width}×${VIEWPORT.height}; load average ${r.loadavg.map((x) => fmt(x, 1)).join(' → ')}`,
  );
  L.push('');
  L.push('### Demo city: load to an interactive map (`window.urbantwin.firstIdleMs`: navigation start → first map `idle`)');
  L.push('');
  const b = d.layers?.find?.((l) => l.id === 'Building');
  if (b) L.push(`The demo's default view; the demo holds ${fmt(Number(b.count))} buildings.`, '');
  L.push('| load | runs | median | max | target | met (max) |');
  L.push('|---|---:|---:|---:|---|---|');
  L.push(`| first load after the server started (server tile cache cold) | 1 | ${fmt(d.serverColdMs)} ms | ${fmt(d.serverColdMs)} ms | < 2,000 ms | ${met(d.serverColdMs)} |`);
  L.push(`| cold (new browser context, empty HTTP cache) | ${d.cold.length} | ${fmt(median(d.cold))} ms | ${fmt(max(d.cold))} ms | < 2,000 ms | ${met(max(d.cold))} |`);
  L.push(`| warm (reload in the same context) | ${d.warm.length} | ${fmt(median(d.warm))} ms | ${fmt(max(d.warm))} ms | < 2,000 ms | ${met(max(d.warm))} |`);
  L.push('');
  const p = d.phases;
  if (p && Number.isFinite(p.firstIdle)) {
    L.push('Where a cold load\'s time goes (medians, ms after navigation start):');
    L.push('');
    L.push('| HTML | app script | DOMContentLoaded | style.json | first tile requested | last tile loaded | last other request | first idle | tiles (KiB decoded / sent) | app script (KiB decoded / sent) | other requests |');
    L.push('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    L.push(`| ${p.html} | ${p.appScript} | ${p.domContentLoaded} | ${p.style} | ${p.firstTileRequested} | ${p.lastTile} | ${p.lastOtherRequest} | ${p.firstIdle} | ${p.tiles} (${p.tileKiB} / ${p.tileWireKiB}) | ${p.appScriptDecodedKiB} / ${p.appScriptKiB} | ${p.otherRequests} |`);
    L.push('');
  }
  const c = r.city;
  L.push(
    `### ${fmt(c.buildings)} extruded buildings: ${c.copies} copies of the demo's ${fmt(c.footprints)} OSM footprints (${c.extentKm[0]} × ${c.extentKm[1]} km each; the grid ${c.gridKm[0]} × ${c.gridKm[1]} km), pitch ${PITCH}`,
  );
  L.push('');
  L.push(
    `Heights: ${c.heightSources.own} footprints with their own, ${c.heightSources.levels} from levels, ${c.heightSources.assumed} assumed (6–30 m, fixed per footprint). \`urbantwin import geojson\` of the ${fmt(c.buildings)}: ${fmt(c.importMs / 1000, 1)} s.`,
  );
  L.push('');
  for (const [name, sc] of Object.entries(r.scenes)) {
    const [st, a, f, n] = [sc.runs.style, sc.runs['3D'], sc.runs.flat, sc.runs.none];
    const styleIs = sc.zoom >= 14 ? '= 3D' : '= flat';
    L.push(`#### ${name === 'street' ? 'Street' : 'City'} view, zoom ${sc.zoom}: \`${sc.hash}\``);
    L.push('');
    L.push(`| measure | style (${styleIs}) | 3D (fill-extrusion${sc.zoom < 14 ? ', forced' : ''}) | flat (fill) | 3D / flat | no buildings (floor) |`);
    L.push('|---|---:|---:|---:|---:|---:|');
    L.push(`| first load ${sc.firstLoadServerCold ? 'after the server started (tile cache cold)' : 'of this view (its tiles not yet made)'} | ${fmt(sc.firstLoadMs)} ms | — | — | — | — |`);
    L.push(`| load, cold browser, median of ${a.loads.length} | ${fmt(median(st.loads))} ms | ${fmt(median(a.loads))} ms | ${fmt(median(f.loads))} ms | ${ratio(median(a.loads), median(f.loads))} | ${fmt(median(n.loads))} ms |`);
    L.push(`| load, cold browser, max | ${fmt(max(st.loads))} ms | ${fmt(max(a.loads))} ms | ${fmt(max(f.loads))} ms | ${ratio(max(a.loads), max(f.loads))} | ${fmt(max(n.loads))} ms |`);
    L.push(`| buildings rendered in view (distinct ids) | ${fmt(st.rendered?.distinct)} | ${fmt(a.rendered?.distinct)} | ${fmt(f.rendered?.distinct)} | — | 0 |`);
    for (const kind of ['orbit', 'pan']) {
      const [w, x, y, z] = [st[kind], a[kind], f[kind], n[kind]];
      if (!w || !x || !y || !z) continue;
      const what = kind === 'orbit' ? `orbit (bearing +120° in ${MOTION_MS / 1000} s)` : `pan (40 % of the width in ${MOTION_MS / 1000} s)`;
      L.push(`| ${what}: fps (rAF) | ${fmt(w.fps, 1)} | ${fmt(x.fps, 1)} | ${fmt(y.fps, 1)} | ${ratio(x.fps, y.fps)} | ${fmt(z.fps, 1)} |`);
      L.push(`| ${what}: frame time median | ${fmt(w.medianMs, 1)} ms | ${fmt(x.medianMs, 1)} ms | ${fmt(y.medianMs, 1)} ms | ${ratio(x.medianMs, y.medianMs)} | ${fmt(z.medianMs, 1)} ms |`);
      L.push(`| ${what}: frame time p95 | ${fmt(w.p95Ms, 1)} ms | ${fmt(x.p95Ms, 1)} ms | ${fmt(y.p95Ms, 1)} ms | ${ratio(x.p95Ms, y.p95Ms)} | ${fmt(z.p95Ms, 1)} ms |`);
      L.push(`| ${what}: frame time max | ${fmt(w.maxMs, 1)} ms | ${fmt(x.maxMs, 1)} ms | ${fmt(y.maxMs, 1)} ms | ${ratio(x.maxMs, y.maxMs)} | ${fmt(z.maxMs, 1)} ms |`);
      L.push(`| ${what}: frames over 50 ms / all | ${w.over50ms} / ${w.frames} | ${x.over50ms} / ${x.frames} | ${y.over50ms} / ${y.frames} | — | ${z.over50ms} / ${z.frames} |`);
    }
    L.push('');
    if (sc.firstLoadTiles?.length) {
      L.push(`Tiles of this view's first load (request sent → first byte, as the browser saw it):`);
      L.push('');
      L.push('| zoom | tiles | gzipped | total decoded | total sent | largest (decoded) | server median | server max |');
      L.push('|---:|---:|---:|---:|---:|---:|---:|---:|');
      for (const t of sc.firstLoadTiles)
        L.push(`| ${t.z} | ${t.count} | ${t.gzipped} | ${fmt(t.decodedKb)} KiB | ${fmt(t.wireKb)} KiB | ${fmt(t.maxKb)} KiB | ${fmt(t.medianServerMs, 1)} ms | ${fmt(t.maxServerMs, 1)} ms |`);
      L.push('');
    }
  }
  L.push('#### Server: `/tiles/Building/z/x/y.mvt` of the 50k city, timed with curl before any browser asked');
  L.push('');
  L.push('The street view\'s centre tile and its east neighbour per zoom, in this order; cold: the first request (the tile is made), warm: the second (tile cache).');
  if (r.server) L.push('', `The server answered /health ${fmt(r.server.healthMs)} ms after it was spawned; the first tile request went out ${fmt(r.server.probeStartMs)} ms after the spawn.`);
  L.push('');
  L.push('| tile | bytes sent, gzip accepted | bytes | cold, time to first byte | warm, time to first byte |');
  L.push('|---|---:|---:|---:|---:|');
  for (const t of r.tileProbe) L.push(`| ${t.tile} | ${fmt(t.gzipBytes)} | ${fmt(t.rawBytes)} | ${fmt(t.coldMs, 1)} ms | ${fmt(t.warmMs, 1)} ms |`);
  return L.join('\n');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
