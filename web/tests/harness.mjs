// Test harness: starts `urbantwin demo` on a free port with a fresh database, serving the built app (web/dist) with
// its own `--web-dir`, and a headless Chromium through playwright-core. `URBANTWIN_URL` points the tests at a server
// that is already running instead. Every page opened with `openApp` leaves a full-page screenshot in
// `<repo>/target/e2e/<test-name>.png` (CI keeps them as artefacts) when its context closes or its test ends.

import { spawn, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach } from 'node:test';
import { chromium } from 'playwright-core';

export const WEB = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const REPO = resolve(WEB, '..');
const BIN = process.env.URBANTWIN_BIN ?? '/root/.cache/urbantwin/target/release/urbantwin';
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'];
/** Where each page's last look is saved. */
export const SHOTS = join(REPO, 'target', 'e2e');

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

async function waitFor(url, ms, proc) {
  const until = Date.now() + ms;
  let last;
  while (Date.now() < until) {
    if (proc && proc.exitCode !== null) throw new Error(`urbantwin exited with ${proc.exitCode} before answering`);
    try {
      const r = await fetch(url);
      if (r.ok) return;
      last = `HTTP ${r.status}`;
    } catch (e) {
      last = e.message;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${url} did not answer within ${ms} ms (${last})`);
}

/** The dataset the data owner of the tests owns (declared with the CLI, read by others only when signed in). */
export const OWNED_DATASET = 'urn:ngsi-ld:Dataset:web-tests-meters';

/** Runs the CLI's `accounts` command on the database (`input`: its standard input). */
function accountsCli(db, args, input) {
  return execFileSync(BIN, ['accounts', ...args, '--db', db], { encoding: 'utf8', ...(input !== undefined ? { input } : {}) }).trim();
}

/**
 * The accounts the browser tests sign in with, made with the CLI as an operator would (`--password-stdin`): an
 * administrator, a planner (scenarios), a data owner owning {@link OWNED_DATASET} (read: signed-in accounts only, so
 * that reads of it are logged) and a reader whose API key reads it. Passwords are random per run.
 */
function makeAccounts(db) {
  const password = () => `wt-${randomBytes(12).toString('base64url')}`;
  const accounts = {};
  for (const [name, id, role] of [
    ['admin', 'web-admin', 'admin'],
    ['planner', 'web-planner', 'planner'],
    ['owner', 'web-owner', 'data_owner'],
    ['reader', 'web-reader', 'planner'],
  ]) {
    const pw = password();
    accountsCli(db, ['add', id, '--role', role, '--password-stdin'], `${pw}\n`);
    accounts[name] = { id, password: pw, role };
  }
  // the consultation tests: citizens (one of whom deletes their account) and a moderator (a role servers before the
  // consultations API lack: then the tests that need it are skipped)
  for (const [name, id, role] of [
    ['citizen', 'web-citizen', 'citizen'],
    ['citizen2', 'web-citizen-2', 'citizen'],
    ['citizen3', 'web-citizen-3', 'citizen'],
    ['leaver', 'web-citizen-leaving', 'citizen'],
    ['moderator', 'web-moderator', 'moderator'],
  ]) {
    const pw = password();
    try {
      accountsCli(db, ['add', id, '--role', role, '--password-stdin'], `${pw}\n`);
      accounts[name] = { id, password: pw, role };
    } catch (e) {
      console.error(`# account ${id} (${role}) not made: ${String(e.stderr ?? e.message).trim()}`);
    }
  }
  accountsCli(db, ['access', OWNED_DATASET, '--owner', 'web-owner', '--licence', 'CC-BY-4.0', '--title', 'Test smart meters', '--read', 'registered']);
  accounts.reader.key = accountsCli(db, ['key', 'web-reader', '--name', 'web tests reader', '--scope', 'read']);
  return accounts;
}

/**
 * Starts the twin; resolves to `{url, key, accounts, db, outbox, stop}` (`key`: an administrator's API key, for the
 * tests' writes; `accounts`: see {@link makeAccounts}; `outbox`: the folder the demo writes its e-mail to, one RFC 5322
 * `.eml` file per message, next to the database `db`). Against `URBANTWIN_URL`, `URBANTWIN_ACCOUNTS` may name a JSON
 * file of the same shape (without it the tests that sign in are skipped) and `URBANTWIN_OUTBOX` the twin's mail outbox.
 */
export async function startTwin() {
  if (process.env.URBANTWIN_URL) {
    const accounts = process.env.URBANTWIN_ACCOUNTS ? JSON.parse(readFileSync(process.env.URBANTWIN_ACCOUNTS, 'utf8')) : undefined;
    return { url: process.env.URBANTWIN_URL.replace(/\/$/, ''), key: process.env.URBANTWIN_KEY, accounts, outbox: process.env.URBANTWIN_OUTBOX, stop: async () => {} };
  }
  if (!existsSync(join(WEB, 'dist', 'index.html'))) throw new Error('web/dist is not built: run `npm run build` first');
  if (!existsSync(BIN)) throw new Error(`no urbantwin binary at ${BIN}: build it (cargo build --release -p twin-cli) or set URBANTWIN_BIN`);
  const help = execFileSync(BIN, ['demo', '--help'], { encoding: 'utf8' });
  if (!help.includes('--web-dir')) throw new Error(`${BIN} cannot serve the web app (no --web-dir): rebuild it`);
  const dir = mkdtempSync(join(tmpdir(), 'urbantwin-web-'));
  // the demo's data is written by its owner only: the tests write as an administrator, with an API key
  const db = join(dir, 'demo.db');
  execFileSync(BIN, ['accounts', 'add', 'web-tests', '--role', 'admin', '--db', db]);
  const key = execFileSync(BIN, ['accounts', 'key', 'web-tests', '--scope', 'admin', '--db', db], { encoding: 'utf8' }).trim();
  const accounts = makeAccounts(db);
  const port = await freePort();
  const log = [];
  const proc = spawn(
    BIN,
    ['demo', '--db', db, '--listen', `127.0.0.1:${port}`, '--web-dir', join(WEB, 'dist')],
    { cwd: dir, env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  for (const s of [proc.stdout, proc.stderr]) s.on('data', (d) => log.push(String(d)));
  const url = `http://127.0.0.1:${port}`;
  try {
    // the first run fetches and imports the city extract
    await waitFor(`${url}/health`, 600_000, proc);
    await waitFor(`${url}/`, 10_000, proc);
  } catch (e) {
    proc.kill('SIGKILL');
    throw new Error(`${e.message}\n${log.join('')}`);
  }
  return {
    url,
    key,
    accounts,
    log,
    db,
    // `urbantwin demo` writes every e-mail into this folder next to its database
    outbox: join(dir, 'urbantwin-demo-outbox'),
    stop: async () => {
      if (proc.exitCode === null) {
        proc.kill('SIGTERM');
        await new Promise((r) => {
          const t = setTimeout(() => {
            proc.kill('SIGKILL');
            r();
          }, 5000);
          proc.once('exit', () => {
            clearTimeout(t);
            r();
          });
        });
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function launchBrowser() {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

/** Chromium's notes about the software GL driver are not the app's: they are left out of the console check. */
const BENIGN = [/GL Driver Message/, /GPU stall due to ReadPixels/, /WebGL.*performance/i];

// ---- screenshots as artefacts: one per page, taken when its context (or the page) is closed, when its test ends
// (passed or failed: a failed test leaves its page open) or, for pages still open then, when the browser closes.

/** The name of the node:test test that is running, for naming its screenshots. */
let currentTest;
/** Pages opened by `openApp` whose screenshot is not taken yet, with the test that opened them. */
const pending = new Map();
const usedNames = new Set();
let pageCount = 0;

// hooks at the top level apply to every test of the file that imports the harness; only under the test runner
// (registering them elsewhere would start one)
if (process.env.NODE_TEST_CONTEXT || process.execArgv.includes('--test') || /\.test\.[cm]?js$/.test(process.argv[1] ?? '')) {
  beforeEach((t) => {
    currentTest = t?.name;
  });
  afterEach(async () => {
    const test = currentTest;
    currentTest = undefined;
    for (const [page, info] of [...pending]) if (info.test === test) await saveScreenshot(page);
  });
}

function slug(s) {
  return (
    String(s)
      .normalize('NFKD')
      .replace(/[\u0300-\u036f]/g, '')
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 80)
      .replace(/-+$/, '') || 'page'
  );
}

/** A file name not used yet in this run: the test's (or the given) name, else a counter and a hash of the URL. */
function screenshotName(name, url) {
  pageCount++;
  const base = name
    ? slug(name)
    : `page-${pageCount}-${createHash('sha1').update(`${process.pid} ${url}`).digest('hex').slice(0, 8)}`;
  let file = base;
  for (let i = 2; usedNames.has(file); i++) file = `${base}-${i}`;
  usedNames.add(file);
  return file;
}

/** Saves the page's full-page screenshot once; never throws (a missing artefact must not fail a test). */
async function saveScreenshot(page) {
  const info = pending.get(page);
  if (!info) return;
  pending.delete(page);
  try {
    if (page.isClosed()) return;
    const png = await page.screenshot({ fullPage: true, timeout: 15_000 });
    mkdirSync(SHOTS, { recursive: true });
    writeFileSync(join(SHOTS, `${info.file}.png`), png);
  } catch (e) {
    console.error(`# screenshot ${info.file}.png not saved: ${e?.message ?? e}`);
  }
}

/** Makes `target.close` take the screenshots first (once per object). */
function shootBeforeClose(target, pages) {
  if (target.__shootsBeforeClose) return;
  target.__shootsBeforeClose = true;
  const close = target.close.bind(target);
  target.close = async (...args) => {
    for (const p of pages()) await saveScreenshot(p);
    return close(...args);
  };
}

/**
 * Opens the app in a new page and waits until the map is idle for the first time. Collects console errors and
 * warnings, page errors and failed requests in `page.problems`. `name` names its screenshot in target/e2e/ (default:
 * the running test's name).
 */
export async function openApp(
  browser,
  base,
  { hash = '', viewport = { width: 1280, height: 800 }, locale = 'en-GB', name = undefined } = {},
) {
  const context = await browser.newContext({ viewport, locale, deviceScaleFactor: 1 });
  const page = await context.newPage();
  pending.set(page, { test: currentTest, file: screenshotName(name ?? currentTest, `${base}/${hash}`) });
  shootBeforeClose(context, () => [page]);
  shootBeforeClose(page, () => [page]);
  shootBeforeClose(browser, () => [...pending.keys()].filter((p) => p.context().browser() === browser));
  const problems = [];
  page.on('console', (m) => {
    if ((m.type() === 'error' || m.type() === 'warning') && !BENIGN.some((re) => re.test(m.text())))
      problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => {
    // requests the app cancels on purpose (tiles left behind while zooming) are not failures
    if (r.failure()?.errorText !== 'net::ERR_ABORTED') problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`);
  });
  page.problems = problems;
  const t0 = Date.now();
  await page.goto(`${base}/${hash}`);
  await page.waitForFunction(() => window.urbantwin?.ready === true, null, { timeout: 60_000 });
  page.loadedMs = Date.now() - t0;
  return page;
}

/**
 * Fills the open sign-in dialog with the account's name and password and submits it; resolves once the header shows
 * the account.
 */
export async function fillSignIn(page, account) {
  const dialog = page.locator('#signin-dialog');
  await dialog.waitFor({ state: 'visible' });
  await page.locator('#signin-id').fill(account.id);
  await page.locator('#signin-password').fill(account.password);
  await page.locator('#signin-submit').click();
  await dialog.waitFor({ state: 'hidden' });
  await page.locator('#account-toggle').waitFor({ state: 'visible' });
}

/** Signs in through the header's "Sign in" button and the dialog (waits for the app to know it is anonymous). */
export async function signIn(page, account) {
  const button = page.locator('#sign-in');
  await button.waitFor({ state: 'visible' });
  await button.click();
  await fillSignIn(page, account);
}

/** Signs out through the account menu. */
export async function signOut(page) {
  await page.locator('#account-toggle').click();
  await page.locator('#sign-out').click();
  await page.locator('#sign-in').waitFor({ state: 'visible' });
}

/** Waits until the map has no pending tiles or transitions (MapLibre's `idle`). */
export async function mapIdle(page) {
  await page.evaluate(
    () =>
      new Promise((resolve) => {
        const map = window.urbantwin.map;
        if (map.loaded() && !map.isMoving() && map.areTilesLoaded()) {
          map.once('idle', resolve);
          map.triggerRepaint();
        } else map.once('idle', resolve);
      }),
  );
}

/** Pixels of the map canvas, as `{width, height, data}` (RGBA) from a PNG screenshot of the map element. */
export async function mapPixels(page) {
  // what is drawn on the canvas alone: panels, markers and controls are hidden for the shot
  await page.evaluate(() => {
    if (!document.getElementById('pixel-probe')) {
      const s = document.createElement('style');
      s.id = 'pixel-probe';
      s.textContent =
        'body.pixel-probe .panel, body.pixel-probe .time-bar, body.pixel-probe .maplibregl-marker, body.pixel-probe .maplibregl-control-container { visibility: hidden !important; }';
      document.head.append(s);
    }
    document.body.classList.add('pixel-probe');
  });
  const png = await page.locator('#map canvas').screenshot();
  await page.evaluate(() => document.body.classList.remove('pixel-probe'));
  return decodePng(png);
}

// ---- a small PNG decoder (8-bit RGB/RGBA, non-interlaced: what Chromium writes), with node:zlib
import { inflateSync } from 'node:zlib';

export function decodePng(buf) {
  let pos = 8;
  let width = 0;
  let height = 0;
  let colorType = 0;
  const idat = [];
  while (pos < buf.length) {
    const len = buf.readUInt32BE(pos);
    const type = buf.toString('ascii', pos + 4, pos + 8);
    const body = buf.subarray(pos + 8, pos + 8 + len);
    if (type === 'IHDR') {
      width = body.readUInt32BE(0);
      height = body.readUInt32BE(4);
      if (body[8] !== 8 || body[12] !== 0) throw new Error('only 8-bit non-interlaced PNGs');
      colorType = body[9];
    } else if (type === 'IDAT') idat.push(body);
    else if (type === 'IEND') break;
    pos += 12 + len;
  }
  const bpp = colorType === 6 ? 4 : colorType === 2 ? 3 : 0;
  if (!bpp) throw new Error(`PNG colour type ${colorType} not supported`);
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * bpp;
  const out = new Uint8ClampedArray(width * height * 4);
  let prev = new Uint8Array(stride);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const cur = new Uint8Array(stride);
    for (let i = 0; i < stride; i++) {
      const a = i >= bpp ? cur[i - bpp] : 0;
      const b = prev[i];
      const c = i >= bpp ? prev[i - bpp] : 0;
      let v = line[i];
      if (f === 1) v += a;
      else if (f === 2) v += b;
      else if (f === 3) v += (a + b) >> 1;
      else if (f === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      cur[i] = v & 255;
    }
    for (let x = 0; x < width; x++) {
      out[(y * width + x) * 4] = cur[x * bpp];
      out[(y * width + x) * 4 + 1] = cur[x * bpp + 1];
      out[(y * width + x) * 4 + 2] = cur[x * bpp + 2];
      out[(y * width + x) * 4 + 3] = bpp === 4 ? cur[x * bpp + 3] : 255;
    }
    prev = cur;
  }
  return { width, height, data: out };
}

export function hex(c) {
  const n = parseInt(c.replace('#', ''), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

/** How many pixels are within `tol` (per channel) of any of the colours. */
export function countColour(img, colours, tol = 10) {
  const cs = colours.map((c) => (typeof c === 'string' ? hex(c) : c));
  let n = 0;
  const d = img.data;
  for (let i = 0; i < d.length; i += 4) {
    for (const [r, g, b] of cs) {
      if (Math.abs(d[i] - r) <= tol && Math.abs(d[i + 1] - g) <= tol && Math.abs(d[i + 2] - b) <= tol) {
        n++;
        break;
      }
    }
  }
  return n;
}

function hsv(r, g, b) {
  const max = Math.max(r, g, b);
  const min = Math.min(r, g, b);
  const d = max - min;
  let h = 0;
  if (d) {
    if (max === r) h = 60 * (((g - b) / d) % 6);
    else if (max === g) h = 60 * ((b - r) / d + 2);
    else h = 60 * ((r - g) / d + 4);
  }
  return [(h + 360) % 360, max ? d / max : 0, max / 255];
}

/**
 * Pixels of the same hue as `colour` and clearly saturated: the colour whether lit, shaded (extrusion walls) or
 * blended with what lies beneath.
 */
export function countHue(img, colour, hueTol = 14, minSat = 0.4) {
  const [h0] = hsv(...hex(colour));
  let n = 0;
  const d = img.data;
  for (let i = 0; i < d.length; i += 4) {
    const [h, s, v] = hsv(d[i], d[i + 1], d[i + 2]);
    if (s < minSat || v < 0.15) continue;
    const dh = Math.min(Math.abs(h - h0), 360 - Math.abs(h - h0));
    if (dh <= hueTol) n++;
  }
  return n;
}

/**
 * The newest e-mail in the outbox sent to `to` (written after `since`, ms), polled for up to `ms`: `{file, text}`.
 */
export async function newestMail(outbox, to, since = 0, ms = 10_000) {
  if (!outbox) throw new Error('no mail outbox known (set URBANTWIN_OUTBOX against a running twin)');
  const until = Date.now() + ms;
  for (;;) {
    const mails = existsSync(outbox)
      ? readdirSync(outbox)
          .filter((f) => f.endsWith('.eml'))
          .map((f) => ({ file: join(outbox, f), at: statSync(join(outbox, f)).mtimeMs }))
          .filter((m) => m.at >= since - 1000)
          .sort((a, b) => b.at - a.at || (b.file < a.file ? -1 : 1))
          .map((m) => ({ ...m, text: readFileSync(m.file, 'utf8') }))
          .filter((m) => m.text.split(/\r?\n/).some((l) => /^To:/i.test(l) && l.includes(to)))
      : [];
    if (mails.length) return mails[0];
    if (Date.now() > until) throw new Error(`no e-mail to ${to} in ${outbox} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
