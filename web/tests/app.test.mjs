// End-to-end tests of the web app in headless Chromium against `urbantwin demo` (central Helsinki): what a person sees
// is checked on screenshots of the map canvas (pixels), not only in the DOM. Run with `npm test` after `npm run build`.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  countColour,
  countHue,
  decodePng,
  fillSignIn,
  launchBrowser,
  mapIdle,
  mapPixels,
  openApp,
  OWNED_DATASET,
  REPO,
  signIn,
  signOut,
  startTwin,
} from './harness.mjs';

// Central Helsinki around the railway square and Ateneum, tilted
const VIEW = '#map=16.6/60.16985/24.9447/-20/55';
// the style's road colours: minor roads, primary, secondary, casing
const ROAD_COLOURS = ['#ffffff', '#fcd6a4', '#f7fabf', '#f9b29c', '#c9bfb3'];

let twin;
let browser;

before(async () => {
  twin = await startTwin();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await twin?.stop();
});

/** The pixels of `img` inside a box (clamped to the image). */
function crop(img, x0, y0, x1, y1) {
  const [a, b] = [Math.max(0, Math.floor(x0)), Math.max(0, Math.floor(y0))];
  const [c, d] = [Math.min(img.width, Math.ceil(x1)), Math.min(img.height, Math.ceil(y1))];
  const w = Math.max(0, c - a);
  const h = Math.max(0, d - b);
  const data = new Uint8ClampedArray(w * h * 4);
  for (let y = 0; y < h; y++) data.set(img.data.subarray(((b + y) * img.width + a) * 4, ((b + y) * img.width + a + w) * 4), y * w * 4);
  return { width: w, height: h, data };
}

async function setGroup(page, group, on) {
  const box = page.locator(`#layer-toggle-${group}`);
  if ((await box.isChecked()) !== on) await box.click();
  await mapIdle(page);
}

describe('the urbantwin web app', () => {
  test('loads the demo city to an idle map with no console errors or failed requests', async () => {
    // the demo's own start view (the style's centre, tilted), on a server that has drawn no tile yet
    const page = await openApp(browser, twin.url);
    const firstIdle = await page.evaluate(() => window.urbantwin.firstIdleMs);
    console.log(`first map idle ${firstIdle} ms after navigation start (cold tile cache); ready seen by the test after ${page.loadedMs} ms`);
    assert.equal(await page.getAttribute('.maplibregl-ctrl-zoom-in', 'aria-label'), 'Zoom in');
    await mapIdle(page);
    await page.waitForTimeout(500);
    assert.equal(await page.locator('#layers-title').textContent(), 'Layers');
    // the attribution names the data's owners and licences from the twin's datasets
    const attribution = await page.locator('.maplibregl-ctrl-attrib').textContent();
    assert.match(attribution, /OpenStreetMap contributors \(ODbL-1\.0\)/);
    // the layer panel groups the style's layers, with legends
    for (const g of ['streets', 'buildings', 'pois', 'landuse', 'AirQualityObserved'])
      assert.equal(await page.locator(`#layer-toggle-${g}`).count(), 1, `layer group ${g}`);
    assert.ok((await page.locator('[data-legend="pois"] li').count()) >= 10, 'POI legend by category');
    assert.deepEqual(page.problems, []);
    // the same again, tiles now cached by the server and revalidated by the browser
    await page.reload();
    await page.waitForFunction(() => window.urbantwin?.ready === true);
    console.log(`first map idle ${await page.evaluate(() => window.urbantwin.firstIdleMs)} ms on a reload (warm tile cache)`);
    assert.deepEqual(page.problems, []);
    await page.context().close();
  });

  test('draws streets and 3D buildings (pixels), and toggling a layer off removes its pixels', async () => {
    const page = await openApp(browser, twin.url, { hash: VIEW });
    await mapIdle(page);
    const px = await mapPixels(page);
    const total = px.width * px.height;
    const roads = countColour(px, ROAD_COLOURS, 6);
    assert.ok(roads > total * 0.02, `road colours cover ${roads} of ${total} pixels`);

    // buildings: paint them one pure colour no other layer uses (points of interest and sensors hidden), then compare
    // extruded buildings with their flat footprints in the same tilted view
    await setGroup(page, 'pois', false);
    for (const g of ['AirQualityObserved', 'TrafficFlowObserved', 'NoiseLevelObserved', 'OffStreetParking', 'ThreePhaseAcMeasurement']) await setGroup(page, g, false);
    const MAGENTA = '#e0119d';
    await page.evaluate((c) => window.urbantwin.map.setPaintProperty('buildings', 'fill-extrusion-color', c), MAGENTA);
    await mapIdle(page);
    const extruded = countHue(await mapPixels(page), MAGENTA);
    await page.evaluate(() => window.urbantwin.map.setPaintProperty('buildings', 'fill-extrusion-height', 0));
    await mapIdle(page);
    const flat = countHue(await mapPixels(page), MAGENTA);
    console.log(`building pixels: ${extruded} extruded, ${flat} as flat footprints (of ${total})`);
    assert.ok(flat > total * 0.01, `building footprints are drawn (${flat} pixels)`);
    assert.ok(extruded > flat * 1.15, `extruded buildings cover more than their footprints (${extruded} vs ${flat})`);
    await page.evaluate(() => window.urbantwin.map.setPaintProperty('buildings', 'fill-extrusion-height', ['coalesce', ['get', 'height'], 9]));

    // the layer toggles, through the UI
    await setGroup(page, 'buildings', false);
    assert.ok(countHue(await mapPixels(page), MAGENTA) < extruded * 0.02, 'buildings off: their pixels are gone');
    await setGroup(page, 'buildings', true);
    const roadsOn = countColour(await mapPixels(page), ROAD_COLOURS, 6);
    await setGroup(page, 'streets', false);
    const roadsOff = countColour(await mapPixels(page), ROAD_COLOURS, 6);
    assert.ok(roadsOff < roadsOn * 0.25, `streets off: road pixels ${roadsOn} → ${roadsOff}`);
    await setGroup(page, 'streets', true);
    const roadsBack = countColour(await mapPixels(page), ROAD_COLOURS, 6);
    assert.ok(roadsBack > roadsOn * 0.9, `streets back on: ${roadsBack} of ${roadsOn}`);
    assert.match(page.url(), /off=/);

    // opacity: half-transparent streets change the road pixels
    const slider = page.locator('input[type=range][data-group="streets"]');
    await slider.fill('20');
    await mapIdle(page);
    const faded = countColour(await mapPixels(page), ROAD_COLOURS, 6);
    assert.ok(faded < roadsOn * 0.6, `streets at 20 % opacity: road pixels ${roadsOn} → ${faded}`);
    assert.deepEqual(page.problems, []);
    await page.context().close();
  });

  test('colours buildings by an attribute with a legend', async () => {
    const page = await openApp(browser, twin.url, { hash: VIEW });
    await mapIdle(page);
    const options = await page.locator('#building-colour option').evaluateAll((os) => os.map((o) => o.value));
    for (const k of ['style', 'height', 'category', 'age']) assert.ok(options.includes(k), `colour by ${k} offered (${options})`);
    await setGroup(page, 'pois', false);
    const rampOf = (px) => ['#22a884', '#2a788e', '#414487', '#7ad151'].reduce((n, c) => n + countHue(px, c), 0);
    const before = rampOf(await mapPixels(page));
    await page.selectOption('#building-colour', 'height');
    await mapIdle(page);
    const legend = page.locator('[data-legend="buildings"] li');
    assert.ok((await legend.count()) >= 4, 'a class legend for height');
    // the darkest classes of the ramp appear on the map
    const px = await mapPixels(page);
    const ramp = rampOf(px);
    assert.ok(ramp > before + px.width * px.height * 0.005, `height classes are drawn (${before} → ${ramp} pixels)`);
    assert.match(page.url(), /colour=height/);
    assert.deepEqual(page.problems, []);
    await page.context().close();
  });

  test('clicking a building opens its attributes, provenance, dataset and licence', async () => {
    const page = await openApp(browser, twin.url, { hash: VIEW });
    await mapIdle(page);
    // where on the screen is a building with a name and a height? (MapLibre answers; the click is a real one)
    const at = await page.evaluate(() => {
      const map = window.urbantwin.map;
      const canvas = map.getCanvas();
      for (let y = 120; y < canvas.clientHeight - 40; y += 12)
        for (let x = 360; x < canvas.clientWidth - 60; x += 12) {
          // the topmost thing there is a named building, and no marker or panel covers it
          const r = canvas.getBoundingClientRect();
          if (document.elementFromPoint(r.left + x, r.top + y) !== canvas) continue;
          const f = map.queryRenderedFeatures([[x - 3, y - 3], [x + 3, y + 3]]).find((h) => h.properties?.id);
          if (f && f.layer.id === 'buildings' && f.properties.name && f.properties.height)
            return { x, y, id: f.properties.id, name: f.properties.name };
        }
      return null;
    });
    assert.ok(at, 'a named building is in view');
    const box = await page.locator('#map canvas').boundingBox();
    await page.mouse.click(box.x + at.x, box.y + at.y);
    const panel = page.locator('#feature-panel');
    await panel.locator('#feature-title').waitFor();
    await page.waitForFunction(() => !document.querySelector('#feature-panel')?.hasAttribute('aria-busy'));
    await panel.locator('.dataset').first().waitFor();
    assert.equal(await panel.locator('#feature-title').textContent(), at.name);
    assert.match(await panel.locator('.entity-type').textContent(), /Building/);
    const attrs = await panel.locator('table.attrs').textContent();
    assert.match(attrs, /Height/);
    assert.match(attrs, /\d m/, 'height with its unit');
    const prov = await panel.locator('.provenance').textContent();
    assert.match(prov, /Import \(osm\)/);
    const ds = await panel.locator('.datasets').textContent();
    assert.match(ds, /OpenStreetMap contributors/);
    assert.match(ds, /ODbL-1\.0/);
    assert.match(decodeURIComponent(page.url()), new RegExp(`feature=${at.id}`));
    // the selection is drawn on the map in the highlight colour
    await mapIdle(page);
    assert.ok(countHue(await mapPixels(page), '#0b57d0') > 50, 'the selected building is highlighted');
    // Escape closes the panel
    await panel.locator('#feature-title').focus();
    await page.keyboard.press('Escape');
    assert.equal(await panel.isHidden(), true);
    assert.deepEqual(page.problems, []);
    await page.context().close();
  });

  test('a sensor shows its live value, its history as a chart, and a new reading reaches the map', async () => {
    const page = await openApp(browser, twin.url, { hash: '#map=16/60.1866/24.9480/0/30' });
    const marker = page.locator('.sensor-marker[data-entity="urn:ngsi-ld:AirQualityObserved:kallio"]');
    await marker.waitFor();
    assert.match(await marker.textContent(), /NO₂ 14\.2 µg\/m³/);
    // the live values come by push (the twin's event stream), not by re-reading the entities
    await page.waitForFunction(() => document.documentElement.dataset.liveEvents === 'open');
    const readsBefore = await page.evaluate(
      () => performance.getEntriesByType('resource').filter((e) => /\/ngsi-ld\/v1\/entities\?type=/.test(e.name)).length,
    );
    assert.match(await marker.getAttribute('aria-label'), /Kallio station/);
    // a new reading through the NGSI-LD API
    const observedAt = new Date().toISOString();
    const r = await fetch(`${twin.url}/ngsi-ld/v1/entities/${encodeURIComponent('urn:ngsi-ld:AirQualityObserved:kallio')}/attrs`, {
      method: 'PATCH',
      headers: { 'Content-Type': 'application/json', 'X-Urbantwin-Source': 'web app test', Authorization: `Bearer ${twin.key}` },
      body: JSON.stringify({ NO2: { type: 'Property', value: 31.5, unitCode: 'GQ', observedAt } }),
    });
    assert.equal(r.status, 204);
    const t0 = Date.now();
    await page.waitForFunction(
      () => /31\.5/.test(document.querySelector('.sensor-marker[data-entity="urn:ngsi-ld:AirQualityObserved:kallio"]')?.textContent ?? ''),
      null,
      { timeout: 15_000 },
    );
    console.log(`a new reading showed on the map ${Date.now() - t0} ms after it was written (server-sent events)`);
    const readsAfter = await page.evaluate(
      () => performance.getEntriesByType('resource').filter((e) => /\/ngsi-ld\/v1\/entities\?type=/.test(e.name)).length,
    );
    assert.equal(readsAfter, readsBefore, 'the new value came from the event stream, not from re-reading the entities');
    await marker.click();
    const panel = page.locator('#feature-panel');
    await panel.locator('.chart-plot canvas').waitFor();
    assert.equal(await panel.locator('#feature-title').textContent(), 'Kallio station');
    assert.match(await panel.locator('.readings-table summary').textContent(), /2 readings/);
    assert.match(await panel.locator('.provenance').textContent(), /web app test/);
    assert.deepEqual(page.problems, []);
    await page.context().close();
  });

  test('the keyboard finds a place and opens it', async () => {
    const page = await openApp(browser, twin.url, { hash: VIEW });
    await page.locator('#search-input').focus();
    await page.keyboard.type('Ateneum');
    await page.locator('#search-list li').first().waitFor();
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.querySelector('#feature-title')?.textContent === 'Ateneum');
    // focus moved to the panel's heading; Escape closes the panel and gives the focus to the map
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'feature-title');
    await page.keyboard.press('Escape');
    assert.equal(await page.evaluate(() => document.activeElement?.classList.contains('maplibregl-canvas')), true);
    // on the focused map, Enter opens what is under the centre
    await mapIdle(page);
    await page.keyboard.press('Enter');
    await page.locator('#feature-title').waitFor();
    assert.ok((await page.locator('#feature-title').textContent()).length > 0);
    assert.deepEqual(page.problems, []);
    await page.context().close();
  });

  test('switching the language changes the UI text', async () => {
    const page = await openApp(browser, twin.url, { hash: VIEW });
    assert.equal(await page.locator('label[for="layer-toggle-buildings"]').textContent(), 'Buildings');
    await page.selectOption('#lang-select', 'fi');
    assert.equal(await page.locator('#layers-title').textContent(), 'Tasot');
    assert.equal(await page.locator('label[for="layer-toggle-buildings"]').textContent(), 'Rakennukset');
    assert.equal(await page.getAttribute('html', 'lang'), 'fi');
    assert.equal(await page.getAttribute('#search-input', 'placeholder'), 'Etsi katu, rakennus tai paikka…');
    assert.equal(await page.getAttribute('.maplibregl-ctrl-zoom-in', 'aria-label'), 'Lähennä');
    await page.waitForFunction(() => location.hash.includes('lang=fi'));
    assert.deepEqual(page.problems, []);
    await page.context().close();
  });

  test('the URL hash restores the view, the layers and the open feature', async () => {
    const id = 'urn:ngsi-ld:Building:osm-way-8033120'; // Ateneum
    const hash = `#map=17.2/60.1700/24.9440/35/60&off=pois,landuse&feature=${encodeURIComponent(id)}&lang=fi`;
    const page = await openApp(browser, twin.url, { hash });
    const v = await page.evaluate(() => {
      const m = window.urbantwin.map;
      return { zoom: m.getZoom(), lat: m.getCenter().lat, lon: m.getCenter().lng, bearing: m.getBearing(), pitch: m.getPitch() };
    });
    assert.ok(Math.abs(v.zoom - 17.2) < 0.01 && Math.abs(v.lat - 60.17) < 1e-4 && Math.abs(v.lon - 24.944) < 1e-4, JSON.stringify(v));
    assert.ok(Math.abs(v.bearing - 35) < 0.1 && Math.abs(v.pitch - 60) < 0.1, JSON.stringify(v));
    assert.equal(await page.locator('#layer-toggle-pois').isChecked(), false);
    assert.equal(await page.locator('#layer-toggle-landuse').isChecked(), false);
    assert.equal(await page.locator('#layer-toggle-buildings').isChecked(), true);
    await page.waitForFunction(() => document.querySelector('#feature-title')?.textContent === 'Ateneum');
    assert.equal(await page.locator('#layers-title').textContent(), 'Tasot');
    // moving the map writes the new view back
    await page.evaluate(() => window.urbantwin.map.jumpTo({ zoom: 15, bearing: 0, pitch: 0 }));
    await page.waitForFunction(() => location.hash.includes('map=15/'));
    assert.deepEqual(page.problems, []);
    await page.context().close();
  });

  test('on a phone the panels are bottom sheets', async () => {
    const page = await openApp(browser, twin.url, { hash: VIEW, viewport: { width: 390, height: 844 } });
    assert.equal(await page.locator('#layer-panel').isHidden(), true, 'the layer sheet starts closed');
    await page.locator('#layers-toggle').click();
    const sheet = await page.locator('#layer-panel').boundingBox();
    assert.ok(sheet.y > 300 && Math.abs(sheet.width - 390) < 2, `a bottom sheet: ${JSON.stringify(sheet)}`);
    assert.equal(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), true, 'no sideways scrolling');
    await page.keyboard.press('Escape');
    assert.equal(await page.locator('#layer-panel').isHidden(), true);
    // a feature opens in a bottom sheet, and the map above it stays drawn
    await page.evaluate(() => (location.hash += `&feature=${encodeURIComponent('urn:ngsi-ld:Building:osm-way-8033120')}`));
    await page.waitForFunction(() => document.querySelector('#feature-title')?.textContent === 'Ateneum');
    await mapIdle(page);
    const sheetTop = (await page.locator('#feature-panel').boundingBox()).y;
    const mapTop = (await page.locator('#map').boundingBox()).y;
    assert.ok(sheetTop > mapTop + 200, 'the sheet leaves the map visible');
    const above = decodePng(await page.screenshot({ clip: { x: 0, y: mapTop, width: 340, height: sheetTop - mapTop } }));
    const blank = countColour(above, ['#ffffff'], 3);
    assert.ok(blank < above.width * above.height * 0.3, `the map above the sheet is drawn (${blank} blank pixels)`);
    assert.deepEqual(page.problems, []);
    await page.context().close();
  });

  test('writes the README screenshot (docs/img/web-app.png, 1280×800)', async () => {
    const id = 'urn:ngsi-ld:Building:osm-way-8033120';
    const page = await openApp(browser, twin.url, {
      hash: `#map=16.5/60.16945/24.9462/-28/58&colour=height&feature=${encodeURIComponent(id)}`,
    });
    await page.waitForFunction(() => document.querySelector('#feature-title')?.textContent === 'Ateneum');
    await page.locator('#feature-panel .dataset').first().waitFor();
    await mapIdle(page);
    await page.waitForTimeout(400);
    const png = await page.screenshot({ type: 'png' });
    const dir = join(REPO, 'docs', 'img');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'web-app.png'), png);
    assert.ok(png.length > 50_000);
    assert.deepEqual(page.problems, []);
    await page.context().close();
  });

  test('the time slider shows the sensors’ readings of an earlier time, plays, returns to live and is in the URL', async () => {
    const id = 'urn:ngsi-ld:NoiseLevelObserved:senate-square';
    const api = `${twin.url}/ngsi-ld/v1`;
    // history before the current reading: three earlier readings, an hour apart (the current value stays)
    const now = Date.now();
    const hour = 3_600_000;
    const instances = [[50.1, 3], [55.2, 2], [58.3, 1]].map(([value, h]) => ({
      type: 'Property', value, unitCode: '2N', observedAt: new Date(now - h * hour).toISOString(),
    }));
    const post = await fetch(`${api}/temporal/entities/${encodeURIComponent(id)}/attrs`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${twin.key}` },
      body: JSON.stringify({ LAeq: instances }),
    });
    assert.equal(post.status, 204, await post.text());
    const current = (await (await fetch(`${api}/entities/${encodeURIComponent(id)}?options=keyValues&attrs=LAeq`)).json()).LAeq;

    const page = await openApp(browser, twin.url, { hash: '#map=16/60.1694/24.9522/0/0' });
    const marker = page.locator(`.sensor-marker[data-entity="${id}"]`);
    await marker.waitFor();
    const bar = page.locator('#time-bar');
    await bar.waitFor();
    assert.equal(await bar.getAttribute('data-time'), 'live');
    assert.equal(await page.getAttribute('#time-slider', 'aria-valuetext'), 'Live (now)');
    assert.equal(await page.getAttribute('#time-play', 'aria-label'), 'Play');
    assert.equal(await bar.getAttribute('role'), 'group');

    // an earlier time (a whole minute, 100 minutes ago): the marker shows the reading of that time
    const min = Number(await page.getAttribute('#time-slider', 'min'));
    const max = Number(await page.getAttribute('#time-slider', 'max'));
    const start = await page.evaluate(() => Number(document.querySelector('#time-bar').dataset.start));
    const target = Math.floor((now - 100 * 60_000) / 60_000) * 60_000;
    const value = (target - start) / 1000;
    assert.ok(value > min && value < max, `the span (${new Date(start).toISOString()}, ${max} s) holds the time`);
    const q = new URLSearchParams({ attrs: 'LAeq', options: 'temporalValues', timerel: 'before', timeAt: new Date(target + 1).toISOString(), lastN: '1' });
    const hist = await (await fetch(`${api}/temporal/entities/${encodeURIComponent(id)}?${q}`)).json();
    const expected = hist.LAeq.values.at(-1)[0];
    assert.equal(expected, 55.2);
    await page.locator('#time-slider').fill(String(value));
    await page.waitForFunction(
      ([sel, v]) => document.querySelector(sel)?.textContent?.includes(v),
      [`.sensor-marker[data-entity="${id}"]`, String(expected)],
    );
    assert.equal(await bar.getAttribute('data-time'), String(target));
    const valuetext = await page.getAttribute('#time-slider', 'aria-valuetext');
    assert.ok(valuetext && valuetext !== 'Live (now)' && valuetext === (await page.locator('#time-output').textContent()), valuetext);
    await page.waitForFunction((iso) => decodeURIComponent(location.hash).includes(`t=${iso}`), new Date(target).toISOString());
    // the feature panel's chart marks the time
    await marker.click();
    await page.locator('#feature-panel .chart-plot canvas').waitFor();
    assert.equal(await page.getAttribute('#feature-chart-box', 'data-mark-time'), String(target));

    // play (space on the focused slider, at one map minute a second) advances the time; space again pauses
    await page.selectOption('#time-speed', '1');
    await page.locator('#time-slider').focus();
    await page.keyboard.press(' ');
    assert.equal(await page.getAttribute('#time-play', 'aria-pressed'), 'true');
    assert.equal(await page.getAttribute('#time-play', 'aria-label'), 'Pause');
    await page.waitForFunction((t0) => Number(document.querySelector('#time-bar').dataset.time) > t0, target);
    await page.keyboard.press(' ');
    assert.equal(await page.getAttribute('#time-play', 'aria-pressed'), 'false');

    // back to live: the current value
    await page.locator('#time-live').click();
    assert.equal(await bar.getAttribute('data-time'), 'live');
    await page.waitForFunction(
      ([sel, v]) => document.querySelector(sel)?.textContent?.includes(v),
      [`.sensor-marker[data-entity="${id}"]`, String(current)],
    );
    await page.waitForFunction(() => !location.hash.includes('t='));
    assert.deepEqual(page.problems, []);
    await page.context().close();

    // the URL restores the time
    const again = await openApp(browser, twin.url, { hash: `#map=16/60.1694/24.9522/0/0&t=${encodeURIComponent(new Date(target).toISOString())}&lang=fi` });
    await again.waitForFunction((t0) => document.querySelector('#time-bar')?.dataset.time === String(t0), target);
    await again.waitForFunction(
      ([sel, v]) => document.querySelector(sel)?.textContent?.includes(v),
      [`.sensor-marker[data-entity="${id}"]`, '55,2'],
    );
    assert.equal(await again.getAttribute('#time-play', 'aria-label'), 'Toista');
    assert.deepEqual(again.problems, []);
    await again.context().close();
  });

  test('the 15-minute city panel: a summary, homes coloured by score or minutes, cycling, the URL', async () => {
    // the score ramp of src/access.ts, best first
    const SCORE_RAMP = ['#3b0f70', '#8c2981', '#de4968', '#fe9f6d'];
    const expected = await (await fetch(`${twin.url}/api/access?mode=walk&minutes=15&profile=adult`)).json();
    const page = await openApp(browser, twin.url, { hash: '#map=15.6/60.1690/24.9450/0/0&off=buildings,pois,landuse' });
    for (const g of ['AirQualityObserved', 'TrafficFlowObserved', 'NoiseLevelObserved', 'OffStreetParking', 'ThreePhaseAcMeasurement']) await setGroup(page, g, false);
    const before = countColour(await mapPixels(page), SCORE_RAMP, 12);
    // open it with the keyboard
    await page.locator('#access-toggle').focus();
    await page.keyboard.press('Enter');
    assert.equal(await page.getAttribute('#access-toggle', 'aria-expanded'), 'true');
    assert.equal(await page.locator('#layer-panel').isHidden(), true, 'the panel takes the layer panel’s place');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'access-mode');
    await page.locator('#access-summary').waitFor();
    await page.waitForFunction(() => !document.querySelector('#access-content')?.hasAttribute('aria-busy'));
    assert.equal(await page.locator('[data-metric="meanScore"] .metric-value').textContent(), String(Number(expected.meanScore.toFixed(2))));
    const grocery = await page.locator('tr[data-category="grocery"] .share-value').textContent();
    assert.ok(Number.parseFloat(grocery) > 90, `groceries within 15 minutes: ${grocery}`);
    for (const c of expected.missing) assert.match(await page.locator(`tr[data-category="${c}"]`).textContent(), /no data/);
    assert.match(await page.locator('#access-status').textContent(), /homes, .* residents, on foot within 15 minutes/);
    await page.waitForFunction(() => location.hash.includes('access=walk/15'));
    // the homes on the map in the score ramp's colours
    await mapIdle(page);
    const px = await mapPixels(page);
    const homes = countColour(px, SCORE_RAMP, 12);
    console.log(`15-minute score colours: ${before} pixels before, ${homes} with the homes drawn (of ${px.width * px.height})`);
    assert.ok(homes > before + 500, `the homes are drawn in the score's colours (${before} → ${homes})`);
    assert.equal(await page.locator('#access-legend li').count(), 4);

    // minutes to groceries: the legend follows
    await page.selectOption('#access-indicator', 'grocery');
    assert.equal(await page.getAttribute('#access-legend', 'data-indicator'), 'grocery');
    assert.match(await page.locator('#access-legend-title').textContent(), /minutes to Groceries/);
    assert.match(await page.locator('#access-legend').textContent(), /up to 5 min.*over 15 min.*none within reach/);
    await mapIdle(page);
    assert.ok(countColour(await mapPixels(page), [SCORE_RAMP[0]], 12) > 200, 'homes within 5 minutes of groceries are drawn');

    // cycling: asked again, the walking speed does not apply
    const bike = page.waitForResponse((r) => r.url().includes('/api/access?') && r.url().includes('mode=bike'));
    await page.selectOption('#access-mode', 'bike');
    const res = await bike;
    assert.equal(res.status(), 200);
    assert.ok(!res.url().includes('profile='), res.url());
    const cycled = await res.json();
    await page.waitForFunction(() => /by bike/.test(document.querySelector('#access-status')?.textContent ?? ''));
    assert.equal(await page.locator('[data-metric="meanScore"] .metric-value').textContent(), String(Number(cycled.meanScore.toFixed(2))));
    assert.equal(await page.locator('#access-profile').isHidden(), true);
    await page.waitForFunction(() => location.hash.includes('access=bike/15/grocery'));

    // a home on the map opens its building
    await mapIdle(page);
    const at = await page.evaluate(() => {
      const map = window.urbantwin.map;
      const canvas = map.getCanvas();
      const r = canvas.getBoundingClientRect();
      for (let y = 100; y < canvas.clientHeight - 60; y += 6)
        for (let x = 380; x < canvas.clientWidth - 80; x += 6) {
          if (document.elementFromPoint(r.left + x, r.top + y) !== canvas) continue;
          const f = map.queryRenderedFeatures([[x - 1, y - 1], [x + 1, y + 1]], { layers: ['app-access-homes'] })[0];
          if (f) return { x, y, id: f.properties.id };
        }
      return null;
    });
    assert.ok(at, 'a home is in view');
    const box = await page.locator('#map canvas').boundingBox();
    await page.mouse.click(box.x + at.x, box.y + at.y);
    await page.waitForFunction(() => !document.querySelector('#feature-panel')?.hidden && document.querySelector('#feature-title'));
    await page.waitForFunction((id) => decodeURIComponent(location.hash).includes(`feature=${id}`), at.id);
    assert.match(await page.locator('#feature-panel .entity-type').textContent(), /Building/);

    // Escape closes the panel and takes the homes off the map
    await page.locator('#access-mode').focus();
    await page.keyboard.press('Escape');
    assert.equal(await page.locator('#access-panel').isHidden(), true);
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'access-toggle');
    assert.equal(await page.evaluate(() => window.urbantwin.map.getLayoutProperty('app-access-homes', 'visibility')), 'none');
    await page.waitForFunction(() => !location.hash.includes('access='));
    assert.deepEqual(page.problems, []);
    await page.context().close();

    // the URL restores the panel with its options, in Finnish
    const again = await openApp(browser, twin.url, { hash: '#map=15.6/60.1690/24.9450/0/0&access=walk/10/older&lang=fi' });
    await again.locator('#access-summary').waitFor();
    assert.equal(await again.locator('#access-panel').isHidden(), false);
    assert.equal(await again.locator('#access-minutes').inputValue(), '10');
    assert.equal(await again.locator('#access-profile').inputValue(), 'older');
    assert.equal(await again.locator('#access-title').textContent(), '15 minuutin kaupunki');
    const older = await (await fetch(`${twin.url}/api/access?mode=walk&minutes=10&profile=older`)).json();
    assert.equal(
      await again.locator('[data-metric="meanScore"] .metric-value').textContent(),
      String(Number(older.meanScore.toFixed(2))).replace('.', ','),
    );
    assert.deepEqual(again.problems, []);
    await again.context().close();
  });

  test('What if… a pharmacy placed on the map: the 15-minute city compared, changed homes drawn; then paths closed in a drawn area', async () => {
    // the change colours of src/access-whatif.ts: much better, better
    const BETTER = ['#2166ac', '#67a9cf'];
    // the panel opens from the URL (in the layer panel's place): the sensors are switched off there too
    const off = 'buildings,pois,landuse,AirQualityObserved,TrafficFlowObserved,NoiseLevelObserved,OffStreetParking';
    const page = await openApp(browser, twin.url, { hash: `#map=16/60.1710/24.9432/0/0&off=${off}&access=walk/5/older` });
    await page.locator('#access-summary').waitFor();
    await page.waitForFunction(() => !document.querySelector('#access-content')?.hasAttribute('aria-busy'));
    assert.equal(await page.locator('#access-minutes').inputValue(), '5');
    assert.equal(await page.locator('#access-profile').inputValue(), 'older');
    await page.selectOption('#whatif-category', 'pharmacy');
    await page.locator('#whatif-place').click();
    assert.equal(await page.getAttribute('#whatif-place', 'aria-pressed'), 'true');
    assert.equal(await page.evaluate(() => window.urbantwin.map.getCanvas().style.cursor), 'crosshair');
    await mapIdle(page);
    const before = countColour(await mapPixels(page), BETTER, 12);
    // a real click on the map at the place
    const at = await page.evaluate(() => {
      const p = window.urbantwin.map.project([24.9432, 60.171]);
      const r = window.urbantwin.map.getCanvas().getBoundingClientRect();
      return { x: p.x, y: p.y, onCanvas: document.elementFromPoint(r.left + p.x, r.top + p.y) === window.urbantwin.map.getCanvas() };
    });
    assert.ok(at.onCanvas, 'the place is not under a panel');
    const box = await page.locator('#map canvas').boundingBox();
    await page.mouse.click(box.x + at.x, box.y + at.y);
    assert.equal(await page.locator('#whatif-edits li').count(), 1);
    assert.match(await page.locator('#whatif-edits li').textContent(), /Pharmac/);
    assert.equal(await page.getAttribute('#whatif-place', 'aria-pressed'), 'false');
    assert.equal(await page.locator('#feature-panel').isHidden(), true, 'the click placed, it did not open a feature');

    const answer = page.waitForResponse((r) => r.url().includes('/api/access/scenario') && r.request().method() === 'POST');
    await page.locator('#whatif-compare').click();
    const res = await answer;
    assert.equal(res.status(), 200);
    assert.match(res.url(), /mode=walk&minutes=5&profile=older/);
    const body = JSON.parse(res.request().postData());
    assert.equal(body.edits[0].kind, 'addDestination');
    assert.equal(body.edits[0].category, 'pharmacy');
    assert.ok(Math.abs(body.edits[0].lon - 24.9432) < 0.0005 && Math.abs(body.edits[0].lat - 60.171) < 0.0005, JSON.stringify(body));
    const result = await res.json();
    await page.locator('#whatif-result').waitFor();
    const mean = await page.locator('#whatif-summary [data-metric="meanScore"] .metric-value').textContent();
    assert.match(mean, /^\+/, `the mean score rises: ${mean}`);
    assert.match(mean, /better/);
    const better = Number(await page.getAttribute('#whatif-homes', 'data-better'));
    assert.ok(better >= 1, `homes better: ${better}`);
    assert.equal(better, result.homes.filter((h) => h.scoreAfter > h.scoreBefore).length);
    assert.match(await page.locator('#whatif-categories tr[data-category="pharmacy"]').textContent(), /\+[\d.]+ pp/);
    assert.equal(await page.locator('#whatif-legend li').count(), 5);
    await mapIdle(page);
    assert.equal(await page.evaluate(() => window.urbantwin.map.getCanvas().dataset.accessView), 'change');
    const after = countColour(await mapPixels(page), BETTER, 12);
    console.log(`what if: ${better} homes better, "better" pixels ${before} → ${after}`);
    assert.ok(after > before + 100, `the better homes are drawn (${before} → ${after})`);

    // Clear: the baseline view again
    await page.locator('#whatif-clear').click();
    await mapIdle(page);
    assert.equal(await page.evaluate(() => window.urbantwin.map.getCanvas().dataset.accessView), 'baseline');
    assert.equal(await page.evaluate(() => window.urbantwin.map.getLayoutProperty('app-access-change', 'visibility')), 'none');

    // close the paths in an area around the blocks (about 300 m across): four real clicks at its corners, then Finish
    await page.locator('#whatif-close-area').click();
    assert.equal(await page.getAttribute('#whatif-close-area', 'aria-pressed'), 'true');
    assert.equal(await page.locator('#whatif-draw-tools').isHidden(), false);
    const corners = await page.evaluate(() => {
      const map = window.urbantwin.map;
      const r = map.getCanvas().getBoundingClientRect();
      return [
        [24.9405, 60.1695],
        [24.946, 60.1695],
        [24.946, 60.1725],
        [24.9405, 60.1725],
      ].map((c) => {
        const p = map.project(c);
        return { x: p.x, y: p.y, onCanvas: document.elementFromPoint(r.left + p.x, r.top + p.y) === map.getCanvas() };
      });
    });
    for (const c of corners) {
      assert.ok(c.onCanvas, `the corner is not under a panel: ${JSON.stringify(c)}`);
      await page.mouse.click(box.x + c.x, box.y + c.y);
      await page.waitForTimeout(400); // not a double-click
    }
    assert.match(await page.locator('#whatif-status').textContent(), /Corners of the area: 4/);
    await page.locator('#whatif-finish').click();
    assert.equal(await page.locator('#whatif-draw-tools').isHidden(), true);
    assert.deepEqual(await page.locator('#whatif-edits li').evaluateAll((ls) => ls.map((l) => l.dataset.kind)), ['addDestination', 'closePaths']);
    assert.match(await page.locator('#whatif-edits li[data-kind="closePaths"]').textContent(), /Paths closed in an area of [\d.]+ ha/);
    assert.ok(await page.evaluate(() => !!window.urbantwin.map.getLayer('app-whatif-edit-shapes-fill') && !!window.urbantwin.map.getLayer('app-sketch-fill')));
    assert.equal(await page.locator('#feature-panel').isHidden(), true, 'the clicks drew, they did not open a feature');
    const closed = page.waitForResponse((r) => r.url().includes('/api/access/scenario') && r.request().method() === 'POST');
    await page.locator('#whatif-compare').click();
    const res2 = await closed;
    assert.equal(res2.status(), 200);
    const body2 = JSON.parse(res2.request().postData());
    assert.deepEqual(body2.edits.map((e) => e.kind), ['addDestination', 'closePaths']);
    assert.equal(body2.edits[1].area.type, 'Polygon');
    assert.equal(body2.edits[1].area.coordinates[0].length, 5);
    const result2 = await res2.json();
    await page.waitForFunction(() => document.querySelector('#whatif-homes')?.hasAttribute('data-worse') && !document.querySelector('.whatif')?.hasAttribute('aria-busy'));
    const worse = result2.homes.filter((h) => h.scoreAfter < h.scoreBefore).length;
    console.log(`what if, paths closed: ${worse} homes worse`);
    assert.ok(worse > 0, `homes worse: ${worse}`);
    assert.equal(Number(await page.getAttribute('#whatif-homes', 'data-worse')), worse);
    assert.match(await page.locator('#whatif-homes').textContent(), /[1-9][\d,\s]* worse/);
    assert.deepEqual(page.problems, []);
    await page.context().close();
  });

  test('What if… a new path drawn across a block, and a path opened picked on the network', async () => {
    const off = 'buildings,pois,landuse,AirQualityObserved,TrafficFlowObserved,NoiseLevelObserved,OffStreetParking';
    const page = await openApp(browser, twin.url, { hash: `#map=16/60.1710/24.9432/0/0&off=${off}&access=walk/15` });
    await page.locator('#access-summary').waitFor();
    await page.waitForFunction(() => !document.querySelector('#access-content')?.hasAttribute('aria-busy'));
    const box = await page.locator('#map canvas').boundingBox();
    const onScreen = (positions) =>
      page.evaluate((ps) => {
        const map = window.urbantwin.map;
        const r = map.getCanvas().getBoundingClientRect();
        return ps.map((c) => {
          const p = map.project(c);
          return { x: p.x, y: p.y, onCanvas: document.elementFromPoint(r.left + p.x, r.top + p.y) === map.getCanvas() };
        });
      }, positions);

    // a new path across the block west of the centre: two real clicks, then Finish
    await page.locator('#whatif-add-path').click();
    assert.equal(await page.getAttribute('#whatif-add-path', 'aria-pressed'), 'true');
    assert.match(await page.locator('#whatif-status').textContent(), /nearest street or path within 50 m/);
    const ends = await onScreen([
      [24.9405, 60.1705],
      [24.9415, 60.1708],
    ]);
    for (const c of ends) {
      assert.ok(c.onCanvas, `the point is not under a panel: ${JSON.stringify(c)}`);
      await page.mouse.click(box.x + c.x, box.y + c.y);
    }
    assert.match(await page.locator('#whatif-status').textContent(), /Points of the path: 2/);
    await page.locator('#whatif-finish').click();
    assert.equal(await page.getAttribute('#whatif-add-path', 'aria-pressed'), 'false');
    assert.equal(await page.locator('#whatif-draw-tools').isHidden(), true);
    assert.match(await page.locator('#whatif-edits li[data-kind="addPath"]').textContent(), /New path, \d+ m/);
    assert.equal(await page.locator('#feature-panel').isHidden(), true, 'the clicks drew, they did not open a feature');
    await mapIdle(page);
    assert.ok(
      await page.evaluate(() => window.urbantwin.map.queryRenderedFeatures({ layers: ['app-access-new-paths'] }).length > 0),
      'the new path is drawn while listed',
    );
    const added = page.waitForResponse((r) => r.url().includes('/api/access/scenario') && r.request().method() === 'POST');
    await page.locator('#whatif-compare').click();
    const res = await added;
    assert.equal(res.status(), 200);
    const body = JSON.parse(res.request().postData());
    assert.deepEqual(body.edits.map((e) => e.kind), ['addPath']);
    assert.equal(body.edits[0].path.length, 2);
    assert.ok(Math.abs(body.edits[0].path[0][0] - 24.9405) < 0.0005 && Math.abs(body.edits[0].path[1][1] - 60.1708) < 0.0005, JSON.stringify(body));
    await page.locator('#whatif-result').waitFor();
    await page.waitForFunction(() => !document.querySelector('.whatif')?.hasAttribute('aria-busy'));
    assert.match(await page.locator('#whatif-status').textContent(), /Compared: [\d,\s]+ homes better/);
    assert.match(await page.locator('#whatif-legend').textContent(), /a new or opened path/);

    // open a path: the network is drawn, the links walking may not use today dashed
    await page.locator('#whatif-open-paths').click();
    assert.equal(await page.getAttribute('#whatif-open-paths', 'aria-pressed'), 'true');
    assert.equal(await page.evaluate(() => window.urbantwin.map.getLayoutProperty('app-whatif-links', 'visibility')), 'visible');
    // the blocked links of the view are read from the API, then drawn: wait until the dashed layer has some
    await page.waitForFunction(() => {
      const map = window.urbantwin.map;
      return map.areTilesLoaded() && map.queryRenderedFeatures({ layers: ['app-whatif-links-blocked'] }).length > 0;
    });
    await mapIdle(page);
    const find = (layer) =>
      page.evaluate((layer) => {
        const map = window.urbantwin.map;
        const canvas = map.getCanvas();
        const r = canvas.getBoundingClientRect();
        for (let y = 40; y < canvas.clientHeight - 40; y += 6)
          for (let x = 40; x < canvas.clientWidth - 40; x += 6) {
            if (document.elementFromPoint(r.left + x, r.top + y) !== canvas) continue;
            // alone within the pick tolerance, so that the click picks this one
            const near = map.queryRenderedFeatures([[x - 8, y - 8], [x + 8, y + 8]], { layers: ['app-whatif-links', 'app-whatif-links-blocked'] });
            const ids = new Set(near.map((f) => f.properties.id));
            if (ids.size === 1 && near[0].layer.id === layer) return { x, y, id: near[0].properties.id };
          }
        return null;
      }, layer);
    // a link walking may use: said so, nothing added
    const usable = await find('app-whatif-links');
    assert.ok(usable, 'a usable link is in view');
    const asked = page.waitForResponse((r) => r.url().includes('/ngsi-ld/v1/entities?') && r.url().includes(encodeURIComponent(usable.id)));
    await page.mouse.click(box.x + usable.x, box.y + usable.y);
    const link = await (await asked).json();
    assert.ok(link[0].walkAccess.forward || link[0].walkAccess.backward, JSON.stringify(link));
    await page.waitForFunction(() => /can already be walked/.test(document.querySelector('#whatif-status')?.textContent ?? ''));
    assert.equal(await page.locator('#whatif-edits li').count(), 1);
    // a link walking may not use: opened (checked against the API)
    const blocked = await find('app-whatif-links-blocked');
    assert.ok(blocked, 'a blocked link is in view');
    const entity = await (await fetch(`${twin.url}/ngsi-ld/v1/entities/${encodeURIComponent(blocked.id)}?options=keyValues&attrs=walkAccess`)).json();
    assert.ok(!(entity.walkAccess?.forward || entity.walkAccess?.backward), `${blocked.id} is closed to walking: ${JSON.stringify(entity)}`);
    await page.mouse.click(box.x + blocked.x, box.y + blocked.y);
    await page.locator('#whatif-edits li[data-kind="openPaths"]').waitFor();
    assert.match(await page.locator('#whatif-edits li[data-kind="openPaths"]').textContent(), /Path opened: /);
    assert.equal(await page.locator('#feature-panel').isHidden(), true, 'the clicks picked, they did not open a feature');
    // Escape ends the mode and takes the network off the map; the link opened stays drawn
    await page.locator('#map canvas').focus();
    await page.keyboard.press('Escape');
    assert.equal(await page.getAttribute('#whatif-open-paths', 'aria-pressed'), 'false');
    assert.match(await page.locator('#whatif-status').textContent(), /Opening paths ended/);
    assert.equal(await page.evaluate(() => window.urbantwin.map.getLayoutProperty('app-whatif-links', 'visibility')), 'none');
    assert.equal(await page.evaluate(() => window.urbantwin.map.getLayoutProperty('app-whatif-links-opened', 'visibility')), 'visible');

    const opened = page.waitForResponse((r) => r.url().includes('/api/access/scenario') && r.request().method() === 'POST');
    await page.locator('#whatif-compare').click();
    const res2 = await opened;
    const body2 = JSON.parse(res2.request().postData());
    assert.deepEqual(body2.edits.map((e) => e.kind), ['addPath', 'openPaths']);
    assert.deepEqual(body2.edits[1].links, [blocked.id]);
    assert.match(body2.edits[1].links[0], /^urn:ngsi-ld:RoadLink:/);
    await page.waitForFunction(() => !document.querySelector('.whatif')?.hasAttribute('aria-busy'));
    assert.equal(res2.status(), 200, JSON.stringify(await res2.json()));
    await page.locator('#whatif-result').waitFor();
    assert.match(await page.locator('#whatif-status').textContent(), /Compared: /);
    assert.deepEqual(page.problems, []);
    await page.context().close();
  });

  // ---- accounts and trust: signing in through the dialog, My data, the audit log

  test('a data owner signs in through the dialog and sees who read their dataset, with the purpose; then signs out', async (t) => {
    if (!twin.accounts) return t.skip('no test accounts (URBANTWIN_URL without URBANTWIN_ACCOUNTS)');
    const { owner, reader } = twin.accounts;
    // a reading in the owner's dataset (written by the tests' administrator), read by another account's API key
    // with its purpose: the read is logged, as the dataset is not public
    const id = 'urn:ngsi-ld:Device:web-tests-meter-1';
    const put = await fetch(`${twin.url}/ngsi-ld/v1/entities`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${twin.key}`, 'X-Urbantwin-Dataset': OWNED_DATASET },
      body: JSON.stringify({ id, type: 'Device', name: { type: 'Property', value: 'Meter 1' }, value: { type: 'Property', value: '42 kWh' } }),
    });
    assert.equal(put.status, 201, await put.text());
    const read = await fetch(`${twin.url}/ngsi-ld/v1/entities/${encodeURIComponent(id)}`, {
      headers: { Authorization: `Bearer ${reader.key}`, 'X-Urbantwin-Purpose': 'research' },
    });
    assert.equal(read.status, 200, await read.text());
    // anonymous callers do not see it
    assert.equal((await fetch(`${twin.url}/ngsi-ld/v1/entities/${encodeURIComponent(id)}`)).status, 404);

    const page = await openApp(browser, twin.url);
    // the dialog: modal, labelled, focus inside; Escape closes it and focus goes back to the button
    const open = page.locator('#sign-in');
    await open.waitFor();
    assert.equal(await open.textContent(), 'Sign in');
    await open.click();
    const dialog = page.locator('#signin-dialog');
    await dialog.waitFor({ state: 'visible' });
    assert.equal(await dialog.getAttribute('aria-modal'), 'true');
    assert.equal(await page.locator('#signin-title').textContent(), 'Sign in to the twin');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'signin-id');
    assert.equal(await page.locator('label[for="signin-id"]').textContent(), 'Account name');
    assert.equal(await page.locator('label[for="signin-password"]').textContent(), 'Password');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'sign-in');
    // a wrong password is said plainly, in the dialog
    await open.click();
    await page.locator('#signin-id').fill(owner.id);
    await page.locator('#signin-password').fill('not the password');
    await page.locator('#signin-submit').click();
    await page.waitForFunction(() => /wrong/.test(document.querySelector('#signin-message')?.textContent ?? ''));
    assert.equal(await dialog.isVisible(), true);
    await fillSignIn(page, owner);
    assert.match(await page.locator('#account-toggle').textContent(), /web-owner · Data owner/);
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'account-toggle', 'focus back in the header, on the account');

    // My data: the owner's dataset only, its summary and its log with the reader, the operation and the purpose
    await page.locator('#account-toggle').click();
    assert.equal(await page.locator('#audit-open').isHidden(), true, 'no audit log for a data owner');
    await page.locator('#mydata-open').click();
    const panel = page.locator('#mydata-panel');
    await panel.waitFor({ state: 'visible' });
    const ds = panel.locator(`section[data-dataset="${OWNED_DATASET}"]`);
    await ds.locator('table.usage-log').waitFor();
    assert.equal(await panel.locator('section.mydata-dataset').count(), 1, 'only the datasets the account owns');
    assert.match(await ds.locator('h3').textContent(), /Test smart meters/);
    assert.match(await ds.locator('table.usage-log caption').textContent(), /Recent reads of Test smart meters/);
    const headers = await ds.locator('table.usage-log thead th').allTextContents();
    assert.deepEqual(headers, ['When', 'Who', 'How', 'Entities', 'Purpose']);
    const row = ds.locator('table.usage-log tbody tr').filter({ hasText: 'web-reader' }).first();
    const cells = await row.locator('td').allTextContents();
    console.log(`usage log row: ${JSON.stringify(cells)}`);
    assert.match(cells[1], /web-reader/);
    assert.equal(cells[2], 'Entity read (NGSI-LD)');
    assert.equal(cells[3], '1');
    assert.equal(cells[4], 'research');
    assert.match(await ds.locator('table.usage-summary').textContent(), /web-reader/);
    assert.match(await ds.locator('.usage-totals').textContent(), /Reads: 1 · readers: 1 · entities read: 1/);

    // signing out closes the panel and the header says "Sign in" again; the session is gone on the server too
    await signOut(page);
    assert.equal(await panel.isHidden(), true);
    const me = await page.evaluate(async () => (await fetch('/api/auth/me')).json());
    assert.equal(me.account, null);
    // the wrong password's 401 (and Chromium's console line about it) was expected
    assert.deepEqual(page.problems.filter((p) => !/HTTP 401: .*\/api\/auth\/login$/.test(p) && !/status of 401/.test(p)), []);
    await page.context().close();
  });

  test('an administrator opens the audit log, newest first, and verifies its chain', async (t) => {
    if (!twin.accounts) return t.skip('no test accounts (URBANTWIN_URL without URBANTWIN_ACCOUNTS)');
    const page = await openApp(browser, twin.url);
    await signIn(page, twin.accounts.admin);
    assert.match(await page.locator('#account-toggle').textContent(), /web-admin · Administrator/);
    await page.locator('#account-toggle').click();
    await page.locator('#audit-open').click();
    const panel = page.locator('#audit-panel');
    await panel.locator('table.audit-log tbody tr').first().waitFor();
    assert.equal(await page.locator('#layer-panel').isHidden(), true, 'the audit log takes the left panels’ place');
    assert.match(await panel.locator('table.audit-log caption').textContent(), /newest first/);
    const seqs = (await panel.locator('table.audit-log tbody tr').evaluateAll((rs) => rs.map((r) => Number(r.dataset.seq))));
    assert.ok(seqs.length >= 6, `the harness's accounts, key and dataset are in the log (${seqs.length} records)`);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => b - a), 'newest first');
    const actions = await panel.locator('td[data-action]').evaluateAll((cs) => cs.map((c) => c.dataset.action));
    for (const a of ['account.create', 'key.create', 'dataset.policy']) assert.ok(actions.includes(a), `${a} in ${actions}`);
    assert.match(await panel.locator('table.audit-log').textContent(), /web-owner/);
    await page.locator('#audit-verify').click();
    const result = page.locator('#audit-verify-result[data-ok]');
    await result.waitFor();
    assert.equal(await result.getAttribute('data-ok'), 'true');
    assert.match(await result.textContent(), /The chain is intact: all \d+ records check out/);
    // Escape closes the panel, focus back in the header
    await page.keyboard.press('Escape');
    assert.equal(await panel.isHidden(), true);
    await signOut(page);
    assert.deepEqual(page.problems, []);
    await page.context().close();
  });

  test('a visitor creates a citizen account in the dialog (or is told that sign-ups are closed)', async () => {
    const page = await openApp(browser, twin.url);
    await page.locator('#sign-in').click();
    const id = `web-visitor-${Date.now().toString(36)}`;
    await page.locator('#signin-id').fill(id);
    await page.locator('#signin-password').fill(`visitor-${Math.random().toString(36).slice(2)}-pw`);
    const answer = page.waitForResponse((r) => r.url().endsWith('/api/auth/register'));
    await page.locator('#signin-register').click();
    const status = (await answer).status();
    if (status === 403 || status === 404) {
      // a twin without sign-ups: said plainly, and the button goes away
      await page.waitForFunction(() => /does not take sign-ups/.test(document.querySelector('#signin-message')?.textContent ?? ''));
      assert.equal(await page.locator('#signin-register').isHidden(), true);
      console.log(`# sign-ups are closed on this twin (${status})`);
    } else {
      assert.equal(status, 201);
      await page.locator('#signin-dialog').waitFor({ state: 'hidden' });
      assert.equal(await page.locator('#account-toggle').textContent(), `${id} · Citizen`);
      await page.locator('#account-toggle').click();
      assert.equal(await page.locator('#mydata-open').isHidden(), true, 'no My data for a citizen');
      assert.equal(await page.locator('#audit-open').isHidden(), true, 'no audit log for a citizen');
      await page.keyboard.press('Escape');
      assert.equal(await page.evaluate(() => document.activeElement?.id), 'account-toggle', 'Escape closes the menu, focus on its button');
      await signOut(page);
    }
    assert.deepEqual(page.problems.filter((p) => !/HTTP (403|404): .*\/api\/auth\/register$/.test(p) && !/status of (403|404)/.test(p)), []);
    await page.context().close();
  });

  test('a write answered 401 (the session ended) opens the sign-in dialog with the reason; signed in again, it goes through', async (t) => {
    if (!twin.accounts) return t.skip('no test accounts (URBANTWIN_URL without URBANTWIN_ACCOUNTS)');
    const page = await openApp(browser, twin.url);
    await signIn(page, twin.accounts.planner);
    await page.locator('#scenarios-toggle').click();
    await page.locator('#scenario-name').fill('Session ended test');
    // the server's answer when the session was ended elsewhere (its cookie no longer valid)
    const detail = 'the session expired or was ended; sign in again';
    let csrf = null;
    await page.route(/\/api\/scenarios$/, (route) => {
      if (route.request().method() !== 'POST') return route.continue();
      csrf = route.request().headers()['x-csrf-token'] ?? null;
      return route.fulfill({
        status: 401,
        contentType: 'application/problem+json',
        body: JSON.stringify({ type: 'https://uri.etsi.org/ngsi-ld/errors/Unauthenticated', title: 'Unauthenticated', status: 401, detail }),
      });
    });
    await page.locator('#scenario-save').click();
    await page.locator('#signin-dialog').waitFor({ state: 'visible' });
    assert.ok(csrf && csrf.length > 20, 'the write carried the session’s CSRF token');
    assert.equal(await page.locator('#signin-reason').textContent(), `Sign in to do this (${detail}).`);
    assert.equal(await page.locator('#sign-in').isVisible(), true, 'the app no longer counts itself signed in');
    await page.unroute(/\/api\/scenarios$/);
    await fillSignIn(page, twin.accounts.planner);
    await page.locator('#scenario-save').click();
    await page.waitForFunction(() => /Saved/.test(document.querySelector('#scenario-status')?.textContent ?? ''));
    assert.equal(await page.locator('#scenario-list button[aria-pressed="true"]').textContent(), 'Session ended test');
    assert.deepEqual(page.problems.filter((p) => !/HTTP 401: .*\/api\/scenarios$/.test(p) && !/status of 401/.test(p)), []);
    await page.context().close();
  });

  // last: a run publishes the baseline's and the scenario's flows as entities, which changes what the map shows
  test('a scenario closing Fabianinkatu, picked on the map, runs and draws its delta layer and summary', async () => {
    const page = await openApp(browser, twin.url, { hash: '#map=15.6/60.1688/24.9470/0/0&off=buildings,pois,landuse' });
    for (const g of ['AirQualityObserved', 'TrafficFlowObserved', 'NoiseLevelObserved', 'OffStreetParking', 'ThreePhaseAcMeasurement']) await setGroup(page, g, false);
    await page.locator('#scenarios-toggle').click();
    assert.equal(await page.locator('#layer-panel').isHidden(), true, 'the scenario panel takes the layer panel’s place');
    // anonymous: creating and running scenarios needs an account, and the panel says so and leads to the dialog
    if (twin.accounts) {
      const note = page.locator('#scenario-signin');
      await note.waitFor();
      assert.equal(await note.textContent(), 'Sign in to create and run scenarios');
      await note.click();
      assert.equal(await page.locator('#signin-reason').textContent(), 'Sign in to create and run scenarios');
      await fillSignIn(page, twin.accounts.planner);
      assert.equal(await page.locator('#scenario-signin-note').isHidden(), true, 'signed in: no note');
    }
    await page.locator('#scenario-name').fill('Fabianinkatu closed');
    await page.locator('#scenario-description').fill('What if Fabianinkatu were closed to cars?');
    await page.locator('#scenario-pick').click();
    assert.equal(await page.getAttribute('#scenario-pick', 'aria-pressed'), 'true');
    await mapIdle(page);
    // where on the screen is Fabianinkatu (MapLibre answers; the click is a real one)
    const at = await page.evaluate(() => {
      const map = window.urbantwin.map;
      const canvas = map.getCanvas();
      const r = canvas.getBoundingClientRect();
      for (let y = 80; y < canvas.clientHeight - 80; y += 6)
        for (let x = 400; x < canvas.clientWidth - 80; x += 6) {
          if (document.elementFromPoint(r.left + x, r.top + y) !== canvas) continue;
          const fs = map.queryRenderedFeatures([[x - 1, y - 1], [x + 1, y + 1]], { layers: ['roads'] });
          if (fs.length && fs.every((f) => f.properties.name === 'Fabianinkatu')) return { x, y };
        }
      return null;
    });
    assert.ok(at, 'Fabianinkatu is in view');
    const box = await page.locator('#map canvas').boundingBox();
    await page.mouse.click(box.x + at.x, box.y + at.y);
    await page.waitForFunction(() => document.querySelector('#scenario-street')?.value === 'Fabianinkatu');
    // a picked segment offers closing the segment or the whole street
    const actions = await page.locator('#scenario-action option').evaluateAll((os) => os.map((o) => o.value));
    assert.deepEqual(actions, ['closeStreet', 'closeLinks', 'setLanes', 'setSpeed']);
    await page.selectOption('#scenario-action', 'closeStreet');
    await page.locator('#scenario-add').click();
    assert.match(await page.locator('#scenario-edits').textContent(), /Close Fabianinkatu/);
    // an edit can be removed and added again, with the keyboard
    await page.locator('#scenario-edits button').focus();
    await page.keyboard.press('Enter');
    assert.match(await page.locator('#scenario-edits').textContent(), /No edits/);
    await page.locator('#scenario-add').focus();
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => /Close Fabianinkatu/.test(document.querySelector('#scenario-edits')?.textContent ?? ''));
    await page.locator('#scenario-pick').click(); // picking off

    // the map before the results: the delta colours are not there
    await mapIdle(page);
    const fab = await page.evaluate(() => {
      // Fabianinkatu's extent on the screen, from its rendered features
      const map = window.urbantwin.map;
      const fs = map.queryRenderedFeatures({ layers: ['roads'] }).filter((f) => f.properties.name === 'Fabianinkatu');
      let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
      for (const f of fs)
        for (const line of f.geometry.type === 'LineString' ? [f.geometry.coordinates] : f.geometry.coordinates)
          for (const c of line) {
            const p = map.project(c);
            x0 = Math.min(x0, p.x); y0 = Math.min(y0, p.y); x1 = Math.max(x1, p.x); y1 = Math.max(y1, p.y);
          }
      return { x0, y0, x1, y1 };
    });
    const near = (img) => crop(img, fab.x0 - 120, fab.y0 - 120, fab.x1 + 120, fab.y1 + 120);
    const measure = (img) => ({
      red: countHue(img, '#c62828', 8, 0.6),
      orange: countHue(img, '#f08c00', 6, 0.8),
      closed: countColour(img, ['#5f6368'], 6),
    });
    const before = measure(near(await mapPixels(page)));

    await page.locator('#scenario-run').click();
    await page.waitForFunction(() => document.querySelector('#scenario-run-state')?.dataset.status === 'done', null, { timeout: 120_000 });
    assert.match(page.url(), /scenario=urn%3Angsi-ld%3AScenario%3A/);
    const summary = page.locator('#scenario-summary');
    await summary.waitFor();
    const hours = page.locator('[data-metric="vehicleHours"]');
    assert.ok(Number(await hours.getAttribute('data-delta')) > 0, 'vehicle-hours rise');
    assert.match(await hours.textContent(), /Vehicle-hours.*\+/);
    assert.match(await summary.textContent(), /Vehicle-km/);
    assert.match(await summary.textContent(), /Trips without a route/);
    assert.ok((await page.locator('.scenario-legend li').count()) >= 6, 'a legend for the delta layer');

    // the delta layer: traffic pushed onto other streets (orange, red) and Fabianinkatu closed (dashed grey)
    await page.waitForFunction(() => window.urbantwin.map.querySourceFeatures('app-scenario-flows', { sourceLayer: 'TrafficFlowObserved' }).some((f) => f.properties.closed === true), null, { timeout: 30_000 });
    await mapIdle(page);
    const after = measure(near(await mapPixels(page)));
    console.log(`delta layer near Fabianinkatu: ${JSON.stringify(before)} → ${JSON.stringify(after)} pixels`);
    assert.ok(after.red > before.red + 100, `more traffic (red) is drawn: ${before.red} → ${after.red}`);
    assert.ok(after.orange > before.orange + 100, `more traffic (orange) is drawn: ${before.orange} → ${after.orange}`);
    assert.ok(after.closed > before.closed + 100, `the closed street is drawn dashed grey: ${before.closed} → ${after.closed}`);
    assert.deepEqual(page.problems, []);

    // compare: the baseline's traffic (Fabianinkatu open), then the scenario's (closed), then the change again
    const flows = (img) => countColour(img, ['#cbc9e2', '#9e9ac8', '#6a51a3', '#3f007d'], 6);
    await page.locator('#scenario-view-baseline').check();
    await mapIdle(page);
    let px = near(await mapPixels(page));
    const baseView = { flows: flows(px), ...measure(px) };
    await page.locator('#scenario-view-scenario').check();
    await mapIdle(page);
    px = near(await mapPixels(page));
    const scenView = { flows: flows(px), ...measure(px) };
    console.log(`baseline view ${JSON.stringify(baseView)}, scenario view ${JSON.stringify(scenView)}`);
    assert.ok(baseView.flows > 500 && baseView.closed < 20 && baseView.red < 20, `the baseline's flows, nothing closed: ${JSON.stringify(baseView)}`);
    assert.ok(scenView.flows > 500 && scenView.closed > before.closed + 100, `the scenario's flows with the closure: ${JSON.stringify(scenView)}`);
    assert.match(await page.locator('#scenario-legend-title').textContent(), /Traffic/);
    await page.locator('#scenario-view-delta').check();
    await mapIdle(page);
    assert.ok(measure(near(await mapPixels(page))).red > before.red + 100, 'back to the change');

    // air and noise: NO2 on the streets (the RoadLink lines' feature state), a legend naming the unit and thresholds,
    // residents and emissions as baseline → scenario
    await page.locator('#scenario-view-no2').check();
    await page.locator('#scenario-air-summary').waitFor({ timeout: 30_000 });
    assert.equal(await page.evaluate(() => window.urbantwin.map.getCanvas().dataset.resultView), 'no2');
    assert.match(await page.locator('#scenario-legend-title').textContent(), /NO₂.*µg\/m³/);
    assert.equal(await page.locator('#scenario-air-legend li').count(), 4);
    assert.match(await page.locator('#scenario-air-legend').textContent(), /WHO guideline 10.*EU 2030 limit 20.*EU limit 40/);
    for (const m of ['no2AboveWho', 'no2AboveEu2030', 'no2AboveEuLimit', 'ldenAbove55', 'lnightAbove50', 'noxKgPerDay', 'co2KgPerDay'])
      assert.match(await page.locator(`#scenario-air-summary [data-metric="${m}"]`).textContent(), /\d+ → [\d,]+/, m);
    const nox = page.locator('[data-metric="noxKgPerDay"]');
    assert.notEqual(await nox.getAttribute('data-base'), await nox.getAttribute('data-value'), 'the closure changes the NOx emitted');
    assert.ok(Number(await page.evaluate(() => window.urbantwin.map.getCanvas().dataset.airStreets)) > 300, 'streets got their values');
    const stateOf = (key) =>
      page.waitForFunction(
        (key) => {
          const m = window.urbantwin.map;
          const src = { source: 'app-scenario-links', sourceLayer: 'RoadLink' };
          return m.querySourceFeatures(src.source, { sourceLayer: src.sourceLayer }).filter((f) => typeof m.getFeatureState({ ...src, id: f.id })[key] === 'number').length;
        },
        key,
        { timeout: 30_000 },
      );
    assert.ok((await (await stateOf('no2')).jsonValue()) > 10, 'RoadLink features on the map carry their NO2');
    await mapIdle(page);
    assert.ok((await page.evaluate(() => window.urbantwin.map.queryRenderedFeatures({ layers: ['app-scenario-air'] }).length)) > 10, 'the NO2 lines are drawn');

    // its change: a diverging legend; Fabianinkatu's NO2 falls, and a click on it shows its values in the feature panel
    await page.locator('#scenario-view-deltaNo2').check();
    assert.match(await page.locator('#scenario-legend-title').textContent(), /Change in NO₂, scenario − baseline \(µg\/m³\)/);
    assert.equal(await page.locator('#scenario-air-legend li').count(), 5);
    await mapIdle(page);
    const cleaner = await page.evaluate(() => {
      const m = window.urbantwin.map;
      const r = m.getCanvas().getBoundingClientRect();
      const left = document.querySelector('#scenario-panel').getBoundingClientRect().right - r.x + 20;
      for (const f of m.queryRenderedFeatures({ layers: ['app-scenario-air'] })) {
        if (f.properties.name !== 'Fabianinkatu' || !(f.state.deltaNo2 < 0) || f.geometry.type !== 'LineString') continue;
        const cs = f.geometry.coordinates;
        const i = Math.floor((cs.length - 1) / 2);
        const p = m.project([(cs[i][0] + cs[i + 1][0]) / 2, (cs[i][1] + cs[i + 1][1]) / 2]);
        // clear of the scenario panel and the time bar
        if (p.x > left && p.x < r.width - 20 && p.y > 20 && p.y < r.height - 140) return { x: r.x + p.x, y: r.y + p.y, id: f.properties.id };
      }
      return null;
    });
    assert.ok(cleaner, 'Fabianinkatu is drawn with less NO2');
    await page.mouse.click(cleaner.x, cleaner.y);
    const details = page.locator('#feature-air');
    await details.waitFor({ timeout: 15_000 });
    const text = await details.textContent();
    assert.match(text, /NO₂[\d.]+ µg\/m³ \([−+]?[\d.]+\)/);
    assert.match(text, /PM10[\d.]+ µg\/m³/);
    assert.match(text, /PM2\.5[\d.]+ µg\/m³/);
    assert.match(text, /Noise Lden/);
    assert.match(text, /Street type(wide street canyon|narrow street canyon|buildings on one side|open road)/);
    // noise: Lden in 5 dB bands from 55 dB
    await page.locator('#scenario-view-lden').check();
    assert.match(await page.locator('#scenario-legend-title').textContent(), /Lden \(dB\)/);
    assert.equal(await page.locator('#scenario-air-legend li').count(), 6);
    assert.ok((await (await stateOf('lden')).jsonValue()) > 10, 'RoadLink features carry their Lden');
    await page.locator('#feature-panel button.close').click();
    await page.locator('#scenario-view-delta').check();
    assert.equal(await page.evaluate(() => window.urbantwin.map.getLayoutProperty('app-scenario-air', 'visibility')), 'none');
    assert.deepEqual(page.problems, []);

    // the URL shares the scenario: a reload shows it in the list, selected, with its results
    await page.reload();
    await page.waitForFunction(() => window.urbantwin?.ready === true);
    const item = page.locator('#scenario-list button[aria-pressed="true"]');
    await item.waitFor();
    assert.equal(await item.textContent(), 'Fabianinkatu closed');
    assert.equal(await page.locator('#scenario-name').inputValue(), 'Fabianinkatu closed');
    await page.locator('#scenario-summary').waitFor();
    assert.ok(Number(await page.locator('[data-metric="vehicleHours"]').getAttribute('data-delta')) > 0);
    await mapIdle(page);
    const again = measure(near(await mapPixels(page)));
    assert.ok(again.closed > before.closed + 100 && again.red > before.red + 100, `the delta layer after a reload: ${JSON.stringify(again)}`);
    assert.deepEqual(page.problems, []);
    await page.context().close();

    // the run's simulated TrafficFlowObserved results (over a thousand) do not hide the real traffic counters
    const counts = await (await fetch(`${twin.url}/tiles`)).json();
    assert.ok(counts.layers.find((l) => l.id === 'TrafficFlowObserved').entities > 1000, 'the results are in the tiles');
    const fresh = await openApp(browser, twin.url, { hash: '#map=15.5/60.1690/24.9440/0/0' });
    for (const id of ['urn:ngsi-ld:TrafficFlowObserved:esplanadi-e', 'urn:ngsi-ld:TrafficFlowObserved:mannerheimintie-n']) {
      const counter = fresh.locator(`.sensor-marker[data-entity="${id}"]`);
      await counter.waitFor({ state: 'visible' });
      assert.match(await counter.textContent(), /Vehicles|Intensity|\d/);
    }
    assert.equal(await fresh.locator('.sensor-marker[data-entity*=":urbantwin:"]').count(), 0, 'no markers for simulated results');
    assert.deepEqual(fresh.problems, []);
    await fresh.context().close();
  });
  test('the feature panel of a simulated result names the model, its parameters and the input data of its run', async (t) => {
    const auth = twin.key ? { Authorization: `Bearer ${twin.key}` } : {};
    const get = async (path) => {
      const r = await fetch(`${twin.url}${path}`, { headers: auth });
      assert.equal(r.status, 200, `${path}: ${r.status}`);
      return r.json();
    };
    // a result of the Fabianinkatu run (the test before) and the run its values name as their source
    const scenario = (await get('/api/scenarios')).find((s) => s.name === 'Fabianinkatu closed');
    assert.ok(scenario, 'the Fabianinkatu scenario exists');
    const q = encodeURIComponent(`simulated==true;refScenario=="${scenario.id}"`);
    const [result] = await get(`/ngsi-ld/v1/entities?type=TrafficFlowObserved&q=${q}&limit=1`);
    assert.ok(result, 'the run published results');
    const entity = await get(`/ngsi-ld/v1/entities/${encodeURIComponent(result.id)}?options=sysAttrs,provenance`);
    const source = Object.values(entity)
      .flatMap((a) => (Array.isArray(a) ? a : [a]))
      .map((a) => a?.provenance?.source)
      .find((s) => typeof s === 'string' && /\/api\/scenarios\/[^/]+\/runs\/[^/]+$/.test(s));
    assert.ok(source, `the result names its run as its source: ${JSON.stringify(entity).slice(0, 400)}`);
    const run = await get(new URL(source).pathname);
    if (!run.provenance) {
      console.log(`# skipped: the run answer of this server has no provenance (${new URL(source).pathname})`);
      return t.skip('the server’s run answer has no provenance yet');
    }
    // signed in first (the results may be readable by accounts only), then the result opened by its URL
    const page = await openApp(browser, twin.url, { hash: '#map=16/60.1688/24.9470/0/0' });
    if (twin.accounts) await signIn(page, twin.accounts.planner);
    await page.evaluate((id) => (window.location.hash = `#map=16/60.1688/24.9470/0/0&feature=${encodeURIComponent(id)}`), result.id);
    const section = page.locator('#feature-simulation');
    await section.locator('dl').first().waitFor({ timeout: 30_000 });
    assert.equal(await page.locator('#feature-simulation-h').textContent(), 'How this was computed');
    const text = await section.textContent();
    const p = run.provenance;
    if (p.model?.name) assert.ok(text.includes(p.model.name), `model ${p.model.name} in ${text}`);
    if (p.model?.version) assert.ok(text.includes(p.model.version), `version ${p.model.version}`);
    if (p.model?.method) assert.ok(text.includes(p.model.method), `method ${p.model.method}`);
    const inputs = (p.inputs ?? []).filter((i) => i && (i.dataset || i.title));
    assert.equal(await section.locator('table.simulation-inputs tbody tr').count(), inputs.length, 'one row per input dataset');
    for (const i of inputs) {
      const row = section.locator('table.simulation-inputs tbody tr').filter({ hasText: i.title ?? i.dataset });
      assert.equal(await row.count(), 1, `input ${i.title ?? i.dataset}`);
      if (i.licence) assert.ok((await row.textContent()).includes(i.licence));
      if (i.owner) assert.ok((await row.textContent()).includes(i.owner));
    }
    console.log(`provenance shown: ${text.slice(0, 300)}`);
    await section.scrollIntoViewIfNeeded(); // for the screenshot
    assert.deepEqual(page.problems, []);
    await page.context().close();
  });

  test('the feature panel shows a run’s provenance as the run answer gives it (the answer extended by the test)', async () => {
    // the same path as the test before, with the provenance the scenario API is to give (docs: model, parameters,
    // inputs, requestedBy, computedAt) added to the real run answer in the browser: the panel's part alone
    const auth = twin.key ? { Authorization: `Bearer ${twin.key}` } : {};
    const scenario = (await (await fetch(`${twin.url}/api/scenarios`, { headers: auth })).json()).find((s) => s.name === 'Fabianinkatu closed');
    const q = encodeURIComponent(`simulated==true;refScenario=="${scenario.id}"`);
    const [result] = await (await fetch(`${twin.url}/ngsi-ld/v1/entities?type=TrafficFlowObserved&q=${q}&limit=1`, { headers: auth })).json();
    const provenance = {
      model: { name: 'urbantwin traffic assignment', version: '9.8.7', method: 'static user equilibrium (Frank-Wolfe)' },
      parameters: { maxIterations: 100, relativeGap: 0.0001 },
      inputs: [
        { dataset: 'urn:ngsi-ld:Dataset:osm-test', title: 'Street network (test)', licence: 'ODbL-1.0', owner: 'OpenStreetMap contributors', entities: 1234 },
        { dataset: 'urn:ngsi-ld:Dataset:counts-test', title: 'Traffic counts (test)', licence: 'CC-BY-4.0', owner: 'City of Helsinki', entities: 5 },
      ],
      requestedBy: twin.accounts?.planner.id ?? null,
      computedAt: '2026-11-26T08:00:00Z',
    };
    const page = await openApp(browser, twin.url, { hash: '#map=16/60.1688/24.9470/0/0' });
    if (twin.accounts) await signIn(page, twin.accounts.planner);
    let served = 0;
    await page.route(/\/api\/scenarios\/[^/]+\/runs\/[^/?]+$/, async (route) => {
      if (route.request().method() !== 'GET') return route.continue();
      const real = await route.fetch();
      const body = await real.json();
      served++;
      return route.fulfill({ response: real, json: { ...body, provenance } });
    });
    await page.evaluate((id) => (window.location.hash = `#map=16/60.1688/24.9470/0/0&feature=${encodeURIComponent(id)}`), result.id);
    const section = page.locator('#feature-simulation');
    await section.locator('dl, .no-provenance, .error').first().waitFor({ timeout: 30_000 });
    const text = await section.textContent();
    assert.equal(served, 1, `the run was read once, by its path on this origin: ${text}`);
    for (const s of ['urbantwin traffic assignment version 9.8.7', 'static user equilibrium (Frank-Wolfe)', 'Max iterations', '100', 'Relative gap'])
      assert.ok(text.includes(s), `${s} in ${text}`);
    if (twin.accounts) assert.ok(text.includes(twin.accounts.planner.id), 'who ran it');
    const rows = await section.locator('table.simulation-inputs tbody tr').allTextContents();
    assert.equal(rows.length, 2);
    assert.match(rows[0], /Street network \(test\).*ODbL-1\.0.*OpenStreetMap contributors.*1,234/);
    assert.match(rows[1], /Traffic counts \(test\).*CC-BY-4\.0.*City of Helsinki.*5/);
    assert.equal(await section.locator(`time[datetime="${provenance.computedAt}"]`).count(), 1);
    assert.deepEqual(page.problems, []);
    await page.context().close();
  });

  test('a scenario drawn on the map: an area closed and a new street added, a run cancelled and run again, swipe compare', async () => {
    const page = await openApp(browser, twin.url, { hash: '#map=16.2/60.1684/24.9465/0/0&off=buildings,pois,landuse' });
    for (const g of ['AirQualityObserved', 'TrafficFlowObserved', 'NoiseLevelObserved', 'OffStreetParking', 'ThreePhaseAcMeasurement']) await setGroup(page, g, false);
    if (twin.accounts) await signIn(page, twin.accounts.planner);
    await page.locator('#scenarios-toggle').click();
    await page.locator('#scenario-new').click();
    await page.locator('#scenario-name').fill('Esplanadi area closed, Uusikatu built');
    await mapIdle(page);
    const canvas = page.locator('#map canvas.maplibregl-canvas').first();
    const box = await canvas.boundingBox();
    const screen = (lon, lat) => page.evaluate(([lon, lat]) => window.urbantwin.map.project([lon, lat]), [lon, lat]);
    const click = async (lon, lat, opts) => {
      const p = await screen(lon, lat);
      await page.mouse.click(box.x + p.x, box.y + p.y, opts);
    };

    // an area: four corners clicked, closed by clicking the first corner again
    await page.locator('#scenario-draw-area').click();
    assert.equal(await page.getAttribute('#scenario-draw-area', 'aria-pressed'), 'true');
    const area = [[24.9440, 60.1676], [24.9462, 60.1676], [24.9462, 60.1685], [24.9440, 60.1685]];
    for (const [lon, lat] of area) await click(lon, lat);
    assert.match(await page.locator('#scenario-status').textContent(), /Corners of the area: 4/);
    await page.locator('#scenario-draw-undo').click(); // taken back, and clicked again
    assert.match(await page.locator('#scenario-status').textContent(), /Corners of the area: 3/);
    await click(...area[3]);
    await click(...area[0]);
    assert.equal(await page.getAttribute('#scenario-draw-area', 'aria-pressed'), 'false');
    assert.match(await page.locator('#scenario-shape').textContent(), /The drawn area: [\d.]+ ha/);
    assert.deepEqual(await page.locator('#scenario-action option').evaluateAll((os) => os.map((o) => o.value)), ['closeArea', 'setLanes', 'setSpeed']);
    await page.locator('#scenario-add').click();
    assert.match(await page.locator('#scenario-edits').textContent(), /Close the streets in a drawn area \([\d.]+ ha\)/);

    // a new street: its first point by the keyboard (Enter at the map's centre), its last by a double-click
    const from = [24.94932, 60.16907];
    const to = [24.95095, 60.16977];
    await page.locator('#scenario-draw-line').click();
    await page.evaluate((c) => window.urbantwin.map.jumpTo({ center: c }), from);
    await mapIdle(page);
    await canvas.focus();
    await page.keyboard.press('Enter');
    assert.match(await page.locator('#scenario-status').textContent(), /Points of the new street: 1/);
    await click(...to, { clickCount: 1 });
    await click(...to, { clickCount: 2 });
    assert.equal(await page.getAttribute('#scenario-draw-line', 'aria-pressed'), 'false', 'a double-click ends the line');
    const metres = Number((await page.locator('#scenario-shape').textContent()).match(/([\d,.]+) m/)[1].replace(',', ''));
    assert.ok(metres > 110 && metres < 135, `the drawn street is about 120 m long: ${metres}`);
    assert.deepEqual(await page.locator('#scenario-action option').evaluateAll((os) => os.map((o) => o.value)), ['addLink']);
    await page.locator('#scenario-street').fill('Uusikatu');
    await page.selectOption('#scenario-road-class', 'tertiary');
    await page.locator('#scenario-add').click();
    assert.match(await page.locator('#scenario-edits').textContent(), /New street: Uusikatu \(1\d\d m\)/);
    // the edits are drawn on the map (the source's data reaches the map's worker asynchronously)
    await page.waitForFunction(() => {
      const types = new Set(window.urbantwin.map.querySourceFeatures('app-scenario-edit-shapes').map((f) => f.geometry.type));
      return types.has('LineString') && types.has('Polygon');
    });

    // a run can be cancelled while it waits in the queue. The demo city solves in well under a second, faster than a
    // click, so the server's queue is played here: the run stays queued until the app asks to cancel it (the server's
    // own cancelling of queued and running runs is tested in crates/twin-api/tests)
    let cancelled = null;
    const fake = 'urn:ngsi-ld:ScenarioRun:queued-behind-another';
    await page.route(/\/api\/scenarios\/[^/]+\/runs(\/[^/]+)?$/, async (route) => {
      const req = route.request();
      const sid = decodeURIComponent(req.url().match(/scenarios\/([^/]+)\/runs/)[1]);
      const run = (status) => ({ id: fake, scenario: sid, status, progress: 0, ...(status === 'cancelled' ? { message: 'cancelled' } : {}) });
      if (req.method() === 'POST') return route.fulfill({ status: 202, contentType: 'application/json', body: JSON.stringify(run('queued')) });
      if (!req.url().endsWith(encodeURIComponent(fake)) && !req.url().endsWith(fake)) return route.continue();
      if (req.method() === 'DELETE') {
        cancelled = req.url();
        return route.fulfill({ status: 202, contentType: 'application/json', body: JSON.stringify({ ...run('queued'), cancelRequested: true }) });
      }
      return route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(run(cancelled ? 'cancelled' : 'queued')) });
    });
    await page.locator('#scenario-run').click();
    await page.waitForFunction(() => document.querySelector('#scenario-run-state')?.dataset.status === 'queued');
    assert.match(await page.locator('#scenario-progress-label').textContent(), /Queued: 0 %/);
    assert.equal(await page.locator('#scenario-run').isDisabled(), true, 'one run at a time');
    await page.locator('#scenario-cancel').click();
    await page.waitForFunction(() => document.querySelector('#scenario-run-state')?.dataset.status === 'cancelled', null, { timeout: 30_000 });
    assert.match(cancelled, /\/runs\/urn(%3A|:)ngsi-ld(%3A|:)ScenarioRun(%3A|:)queued-behind-another$/, 'DELETE on the run');
    assert.match(await page.locator('#scenario-status').textContent(), /Cancelled/);
    assert.equal(await page.locator('#scenario-results').isHidden(), true, 'no results from a cancelled run');
    assert.equal(await page.locator('#scenario-cancel').count(), 0, 'nothing left to cancel');
    await page.unroute(/\/api\/scenarios\/[^/]+\/runs(\/[^/]+)?$/);
    // then a real run, to the end
    await page.locator('#scenario-run').click();
    await page.waitForFunction(() => document.querySelector('#scenario-run-state')?.dataset.status === 'done', null, { timeout: 120_000 });
    await page.locator('#scenario-summary').waitFor();
    assert.match(await page.locator('.run-message').textContent(), /^The model converged \(relative gap [\d.]+e-\d+\) in \d+ iterations/);
    const scenario = decodeURIComponent(page.url().match(/scenario=([^&]+)/)[1]);
    // the results: the new street carries traffic, the area's streets are closed
    await page.waitForFunction(
      (sid) => {
        const fs = window.urbantwin.map.querySourceFeatures('app-scenario-flows', { sourceLayer: 'TrafficFlowObserved' }).filter((f) => f.properties.refScenario === sid);
        return fs.some((f) => /:(%3A)?added-\d+$/.test(f.properties.id) && f.properties.intensity > 0) && fs.some((f) => f.properties.closed === true);
      },
      scenario,
      { timeout: 30_000 },
    );

    // swipe: the divider at the right edge shows the baseline everywhere (nothing closed), at the left edge the scenario
    await page.locator('#scenario-view-swipe').check();
    await page.locator('#swipe-handle').waitFor();
    await page.waitForSelector('#swipe-map[data-idle="true"]', { timeout: 30_000 });
    await page.evaluate((c) => window.urbantwin.map.jumpTo({ center: c, zoom: 16.2 }), [24.9451, 60.1681]);
    await mapIdle(page);
    await page.waitForSelector('#swipe-map[data-idle="true"]', { timeout: 30_000 });
    const shot = async () => {
      await page.evaluate(() => {
        const s = document.getElementById('swipe-probe') ?? document.head.appendChild(Object.assign(document.createElement('style'), { id: 'swipe-probe' }));
        s.textContent = '.panel, .time-bar, .maplibregl-marker, .maplibregl-control-container, .swipe-handle, .swipe-captions { visibility: hidden !important; }';
      });
      const b = await canvas.boundingBox();
      // the part of the map right of the scenario panel
      const x0 = (await page.locator('#scenario-panel').boundingBox()).width + 20;
      const img = decodePng(await page.screenshot({ clip: { x: b.x + x0, y: b.y, width: b.width - x0, height: b.height } }));
      await page.evaluate(() => document.getElementById('swipe-probe')?.remove());
      return { closed: countColour(img, ['#5f6368'], 6), flows: countColour(img, ['#cbc9e2', '#9e9ac8', '#6a51a3', '#3f007d'], 6) };
    };
    const handle = page.locator('#swipe-handle');
    await handle.focus();
    await page.keyboard.press('End');
    assert.equal(await handle.getAttribute('aria-valuenow'), '98');
    const baseline = await shot();
    await handle.focus(); // hidden for the shot, it lost the focus
    await page.keyboard.press('Home');
    assert.equal(await handle.getAttribute('aria-valuenow'), '2');
    const scenarioSide = await shot();
    console.log(`swipe: baseline side ${JSON.stringify(baseline)}, scenario side ${JSON.stringify(scenarioSide)}`);
    assert.ok(baseline.flows > 500 && baseline.closed < 30, `the baseline: flows, nothing closed: ${JSON.stringify(baseline)}`);
    assert.ok(scenarioSide.closed > baseline.closed + 100, `the scenario: the area's streets closed: ${JSON.stringify(scenarioSide)}`);
    // back to the change: the second map goes away
    await page.locator('#scenario-view-delta').check();
    assert.equal(await page.locator('#swipe-map').count(), 0);
    assert.deepEqual(page.problems, []);
    await page.context().close();
  });
});
