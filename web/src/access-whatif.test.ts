// @vitest-environment happy-dom
import { Color, createExpression } from '@maplibre/maplibre-gl-style-spec';
import type { Map as MlMap } from 'maplibre-gl';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  CHANGE_COLOURS,
  CHANGE_LAYER,
  changeClass,
  changeColourExpression,
  changeColourIndex,
  changeFeatures,
  changeLegend,
  countChanges,
  EDITS_LAYER,
  areaFeatures,
  editFeatures,
  editLabel,
  removeEditOf,
  formatPointsChange,
  formatScoreChange,
  scenarioBody,
  WhatIf,
} from './access-whatif';
import { initLang, setLang } from './i18n';

function colourAt(change: number): string {
  const spec = { type: 'color', 'property-type': 'data-driven', expression: { parameters: ['zoom', 'feature'], interpolated: false } };
  const parsed = createExpression(changeColourExpression(), spec as never);
  if (parsed.result !== 'success') throw new Error('bad expression');
  const v = parsed.value.evaluate({ zoom: 16 }, { type: 'Point', properties: { change } } as never);
  return String(typeof v === 'string' ? Color.parse(v) : v);
}

beforeEach(() => initLang('en'));

describe('the request body', () => {
  it('keeps the edits, rounds positions and drops empty names', () => {
    expect(
      scenarioBody([
        { kind: 'addDestination', category: 'pharmacy', lon: 24.94321234567, lat: 60.171049999, name: '  ' },
        { kind: 'addDestination', category: 'grocery', lon: 24.9, lat: 60.1, name: ' Kauppa ' },
        { kind: 'removeDestination', id: 'urn:ngsi-ld:PointOfInterest:x' },
      ]),
    ).toEqual({
      edits: [
        { kind: 'addDestination', category: 'pharmacy', lon: 24.943212, lat: 60.17105 },
        { kind: 'addDestination', category: 'grocery', lon: 24.9, lat: 60.1, name: 'Kauppa' },
        { kind: 'removeDestination', id: 'urn:ngsi-ld:PointOfInterest:x' },
      ],
    });
  });
});

describe('the three kinds of edit', () => {
  const area = {
    type: 'Polygon',
    coordinates: [
      [
        [24.94201234567, 60.1705],
        [24.9444, 60.1705],
        [24.9444, 60.1715],
        [24.94201234567, 60.1705],
      ],
    ],
  };
  it('sends a place added, one taken away and an area of closed paths, positions rounded', () => {
    expect(
      scenarioBody([
        { kind: 'addDestination', category: 'pharmacy', lon: 24.9432, lat: 60.171 },
        { kind: 'removeDestination', id: 'urn:ngsi-ld:PointOfInterest:p1' },
        { kind: 'closePaths', area },
      ]).edits,
    ).toEqual([
      { kind: 'addDestination', category: 'pharmacy', lon: 24.9432, lat: 60.171 },
      { kind: 'removeDestination', id: 'urn:ngsi-ld:PointOfInterest:p1' },
      {
        kind: 'closePaths',
        area: {
          type: 'Polygon',
          coordinates: [
            [
              [24.942012, 60.1705],
              [24.9444, 60.1705],
              [24.9444, 60.1715],
              [24.942012, 60.1705],
            ],
          ],
        },
      },
    ]);
    expect(scenarioBody([{ kind: 'closePaths', links: ['urn:ngsi-ld:RoadLink:1'] }]).edits).toEqual([{ kind: 'closePaths', links: ['urn:ngsi-ld:RoadLink:1'] }]);
  });
  it('takes a place away by its map feature’s id, named by its name or category', () => {
    expect(removeEditOf({ id: 'urn:ngsi-ld:PointOfInterest:p1', name: ' Apteekki ', category: 'pharmacy' })).toEqual({
      edit: { kind: 'removeDestination', id: 'urn:ngsi-ld:PointOfInterest:p1' },
      name: 'Apteekki',
    });
    expect(removeEditOf({ id: 'urn:ngsi-ld:PointOfInterest:p2', category: 'pharmacy' })!.name).toBe('Pharmacy');
    expect(removeEditOf({ id: 'urn:ngsi-ld:PointOfInterest:p3' })!.name).toBe('p3');
    expect(removeEditOf({ name: 'no id' })).toBeUndefined();
    expect(removeEditOf(undefined)).toBeUndefined();
  });
  it('labels each kind, in English and Finnish', () => {
    const square = {
      type: 'Polygon',
      coordinates: [
        [
          [24.94, 60.17],
          [24.942, 60.17],
          [24.942, 60.171],
          [24.94, 60.171],
          [24.94, 60.17],
        ],
      ],
    };
    expect(editLabel({ kind: 'addDestination', category: 'pharmacy', lon: 24.9432, lat: 60.171 })).toBe('New Pharmacy at 60.171, 24.9432');
    expect(editLabel({ kind: 'removeDestination', id: 'urn:ngsi-ld:PointOfInterest:p1' }, 'Apteekki')).toBe('Apteekki taken away');
    expect(editLabel({ kind: 'removeDestination', id: 'urn:ngsi-ld:PointOfInterest:p1' })).toBe('p1 taken away');
    expect(editLabel({ kind: 'closePaths', area: square })).toBe('Paths closed in an area of 1.2 ha');
    expect(editLabel({ kind: 'closePaths', links: ['a', 'b'] })).toBe('2 paths closed');
    setLang('fi');
    expect(editLabel({ kind: 'removeDestination', id: 'x' }, 'Apteekki')).toBe('Apteekki poistettu');
    expect(editLabel({ kind: 'closePaths', area: square })).toBe('Polut suljettu 1,2 ha:n alueelta');
  });
  it('draws the areas of the edits', () => {
    expect(areaFeatures([{ kind: 'removeDestination', id: 'x' }, { kind: 'closePaths', area }, { kind: 'closePaths', links: ['a'] }])).toEqual([
      { type: 'Feature', properties: { index: 1 }, geometry: area },
    ]);
  });
});

describe('formatting changes', () => {
  it('signs score changes, with three decimals for small ones', () => {
    expect(formatScoreChange(0.0421)).toBe('+0.04');
    expect(formatScoreChange(-0.12)).toBe('\u22120.12');
    expect(formatScoreChange(0.0042)).toBe('+0.004');
    expect(formatScoreChange(0.00001)).toBe('+0.00001');
    expect(formatScoreChange(0)).toBe('±0');
  });
  it('gives shares in percentage points, in English and Finnish', () => {
    expect(formatPointsChange(0.0321)).toBe('+3.2 pp');
    expect(formatPointsChange(-0.005)).toBe('\u22120.5 pp');
    expect(formatPointsChange(0)).toBe('±0 pp');
    setLang('fi');
    expect(formatPointsChange(0.0321)).toBe('+3,2 %-yks.');
  });
});

describe('colour classes', () => {
  it('classes a change as better, worse or the same', () => {
    expect(changeClass(0.01)).toBe('better');
    expect(changeClass(-0.01)).toBe('worse');
    expect(changeClass(0)).toBe('same');
    expect([0.2, 0.1, 0.05, -0.05, -0.1, -0.2, 0].map(changeColourIndex)).toEqual([0, 0, 1, 2, 3, 3, -1]);
  });
  it('the map colours the same classes as the legend', () => {
    for (const d of [0.2, 0.1, 0.0999, 0.05, 0.001, -0.001, -0.05, -0.1, -0.3]) expect(colourAt(d)).toBe(String(Color.parse(CHANGE_COLOURS[changeColourIndex(d)]!)));
    expect(changeLegend().map((c) => c.color)).toEqual([...CHANGE_COLOURS]);
    expect(changeLegend()[0]!.label).toBe('better by 0.1 or more');
  });
  it('better is blue, worse orange and red', () => {
    const hue = (hex: string) => {
      const [r, , b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
      return b > r ? 'blue' : 'warm';
    };
    expect(CHANGE_COLOURS.map(hue)).toEqual(['blue', 'blue', 'warm', 'warm']);
  });
});

describe('the changed homes', () => {
  const homes = [
    { id: 'a', lon: 24.9, lat: 60.1, residents: 10, scoreBefore: 0.5, scoreAfter: 0.6 },
    { id: 'b', lon: 24.91, lat: 60.11, residents: 5, scoreBefore: 0.5, scoreAfter: 0.55 },
    { id: 'c', lon: 24.92, lat: 60.12, residents: 7, scoreBefore: 0.8, scoreAfter: 0.7 },
  ];
  it('counts homes and residents better and worse off', () => {
    expect(countChanges({ homes })).toEqual({ better: 2, worse: 1, residentsBetter: 15, residentsWorse: 7 });
  });
  it('makes points with the change', () => {
    const fc = changeFeatures({ homes });
    expect(fc.features[0]!.geometry.coordinates).toEqual([24.9, 60.1]);
    expect(fc.features[2]!.properties.change).toBeCloseTo(-0.1);
    expect(editFeatures([{ kind: 'removeDestination', id: 'x' }, { kind: 'addDestination', category: 'park', lon: 1, lat: 2 }]).features).toEqual([
      { type: 'Feature', geometry: { type: 'Point', coordinates: [1, 2] }, properties: { index: 1, category: 'park' } },
    ]);
  });
});

describe('the What if section', () => {
  const answer = {
    edits: [],
    baseline: { meanScore: 0.5, shareAllWithin: 0.2 },
    scenario: { meanScore: 0.53, shareAllWithin: 0.25 },
    delta: { meanScore: 0.03, shareAllWithin: 0.05, categories: [{ category: 'pharmacy', shareWithin: 0.6, change: 0.3 }, { category: 'park', shareWithin: 1, change: 0 }] },
    homes: [{ id: 'a', lon: 24.9, lat: 60.1, residents: 10, scoreBefore: 0.5, scoreAfter: 0.6 }],
  };
  let fetchMock: ReturnType<typeof vi.fn>;
  beforeEach(() => {
    fetchMock = vi.fn(async () => new Response(JSON.stringify(answer), { status: 200, headers: { 'Content-Type': 'application/json' } }));
    vi.stubGlobal('fetch', fetchMock);
  });
  afterEach(() => vi.unstubAllGlobals());

  function fakeMap() {
    const layers = new Set<string>();
    const canvas = document.createElement('canvas');
    const setData = vi.fn();
    const map = {
      getSource: vi.fn(() => (layers.size ? { setData } : undefined)),
      addSource: vi.fn(),
      addLayer: vi.fn((l: { id: string }) => layers.add(l.id)),
      getLayer: vi.fn((id: string) => (layers.has(id) ? { id } : undefined)),
      setPaintProperty: vi.fn(),
      setLayoutProperty: vi.fn(),
      getCanvas: () => canvas,
      queryRenderedFeatures: vi.fn((): { properties: Record<string, unknown> }[] => []),
      project: ([x, y]: [number, number]) => ({ x: x * 10_000, y: -y * 10_000 }),
      on: vi.fn(),
      off: vi.fn(),
      doubleClickZoom: { enable: vi.fn(), disable: vi.fn() },
    };
    return { map: map as unknown as MlMap, raw: map, canvas };
  }

  it('places a point, posts the edits with the options and shows the change', async () => {
    const { map, raw, canvas } = fakeMap();
    const w = new WhatIf(map, { request: () => ({ mode: 'walk', minutes: 5, profile: 'older' }), categories: () => ['grocery', 'pharmacy'], homesLayer: 'homes' });
    w.addLayers();
    w.show(true);
    w.render();
    document.body.append(w.element);
    const select = w.element.querySelector<HTMLSelectElement>('#whatif-category')!;
    select.value = 'pharmacy';
    select.dispatchEvent(new Event('change'));
    w.element.querySelector<HTMLButtonElement>('#whatif-place')!.click();
    expect(w.placing).toBe(true);
    expect(canvas.style.cursor).toBe('crosshair');
    // Escape cancels
    window.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape' }));
    expect(w.placing).toBe(false);
    w.setPlacing(true);
    w.place([24.9432, 60.171]);
    expect(w.placing).toBe(false);
    expect(w.element.querySelectorAll('#whatif-edits li')).toHaveLength(1);
    expect(raw.setLayoutProperty).toHaveBeenCalledWith(EDITS_LAYER, 'visibility', 'visible');
    w.element.querySelector<HTMLButtonElement>('#whatif-compare')!.click();
    await vi.waitFor(() => expect(w.element.querySelector('#whatif-result')).not.toBeNull());
    const [url, init] = fetchMock.mock.calls[0]!;
    expect(url).toBe('/api/access/scenario?mode=walk&minutes=5&profile=older');
    expect(JSON.parse(init.body)).toEqual({ edits: [{ kind: 'addDestination', category: 'pharmacy', lon: 24.9432, lat: 60.171 }] });
    expect(w.element.querySelector('[data-metric="meanScore"] .metric-value')!.textContent).toBe('+0.03 (better)');
    expect(w.element.querySelector('[data-metric="shareAll"] .metric-value')!.textContent).toBe('+5 pp (better)');
    expect(w.element.querySelectorAll('#whatif-categories tbody tr')).toHaveLength(1);
    expect(w.element.querySelector('tr[data-category="pharmacy"]')!.textContent).toContain('+30 pp');
    expect(w.element.querySelector('#whatif-homes')!.getAttribute('data-better')).toBe('1');
    expect(raw.setLayoutProperty).toHaveBeenLastCalledWith(EDITS_LAYER, 'visibility', 'visible');
    expect(raw.setLayoutProperty).toHaveBeenCalledWith(CHANGE_LAYER, 'visibility', 'visible');
    expect(canvas.dataset.accessView).toBe('change');
    // Clear: back to the baseline view
    w.element.querySelector<HTMLButtonElement>('#whatif-clear')!.click();
    expect(w.element.querySelector('#whatif-result')).toBeNull();
    expect(canvas.dataset.accessView).toBe('baseline');
    w.element.remove();
  });

  it('takes a place away and closes the paths of a drawn area, and compares them all', async () => {
    const { map, raw, canvas } = fakeMap();
    const w = new WhatIf(map, { request: () => ({ mode: 'walk', minutes: 15 }), categories: () => ['grocery', 'pharmacy'], homesLayer: 'homes' });
    w.addLayers();
    w.show(true);
    w.render();
    document.body.append(w.element);
    const status = () => w.element.querySelector('#whatif-status')!.textContent;
    w.element.querySelector<HTMLButtonElement>('#whatif-remove-place')!.click();
    expect(w.removing).toBe(true);
    expect(canvas.style.cursor).toBe('crosshair');
    window.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape' }));
    expect(w.removing).toBe(false);
    expect(status()).toBe('Taking away cancelled.');
    w.setRemoving(true);
    // a click on nothing: said so, the mode goes on
    expect(w.poiAt({ x: 10, y: 10 })).toBeUndefined();
    w.pickRemove(undefined);
    expect(w.removing).toBe(true);
    expect(status()).toMatch(/No place there/);
    raw.getLayer.mockImplementation((id: string) => ({ id }));
    raw.queryRenderedFeatures.mockImplementation(() => [{ properties: { id: 'urn:ngsi-ld:PointOfInterest:p1', category: 'pharmacy', name: 'Apteekki' } }]);
    w.pickRemove(w.poiAt({ x: 10, y: 10 }));
    expect((raw.queryRenderedFeatures.mock.calls[0] as unknown[])[1]).toEqual({ layers: ['app-poi-icons', 'pois'] });
    expect(w.removing).toBe(false);
    expect(status()).toBe('Taken away: Apteekki.');
    // an area: three corners and Finish
    w.element.querySelector<HTMLButtonElement>('#whatif-close-area')!.click();
    expect(w.drawing).toBe(true);
    expect(w.element.querySelector<HTMLElement>('#whatif-draw-tools')!.hidden).toBe(false);
    w.element.querySelector<HTMLButtonElement>('#whatif-finish')!.click();
    expect(status()).toMatch(/Too few corners/);
    w.addPoint([24.94, 60.17]);
    w.addPoint([24.942, 60.17]);
    w.addPoint([24.942, 60.171]);
    w.element.querySelector<HTMLButtonElement>('#whatif-finish')!.click();
    expect(w.drawing).toBe(false);
    expect(w.sketch.ids.source).toBe('app-whatif-sketch');
    const items = [...w.element.querySelectorAll('#whatif-edits li')];
    expect(items.map((li) => li.getAttribute('data-kind'))).toEqual(['removeDestination', 'closePaths']);
    expect(items[0]!.textContent).toContain('Apteekki taken away');
    expect(items[1]!.textContent).toMatch(/Paths closed in an area of [\d.]+ ha/);
    w.element.querySelector<HTMLButtonElement>('#whatif-compare')!.click();
    await vi.waitFor(() => expect(w.element.querySelector('#whatif-result')).not.toBeNull());
    const body = JSON.parse(fetchMock.mock.calls[0]![1].body);
    expect(body.edits.map((e: { kind: string }) => e.kind)).toEqual(['removeDestination', 'closePaths']);
    expect(body.edits[1].area.coordinates[0]).toHaveLength(4);
    // a remove button takes an edit off the list
    items[0]!.querySelector('button')!.click();
    expect([...w.element.querySelectorAll('#whatif-edits li')].map((li) => li.getAttribute('data-kind'))).toEqual(['closePaths']);
    w.element.remove();
  });

  it('shows a bad edit’s ProblemDetails', async () => {
    fetchMock.mockImplementation(async () => new Response(JSON.stringify({ title: 'Bad', detail: 'edits[0]: unknown category' }), { status: 400 }));
    const { map } = fakeMap();
    const w = new WhatIf(map, { request: () => ({ mode: 'walk', minutes: 15 }), categories: () => ['grocery'], homesLayer: 'homes' });
    w.addLayers();
    w.show(true);
    w.place([24.9, 60.1]);
    w.element.querySelector<HTMLButtonElement>('#whatif-compare')!.click();
    await vi.waitFor(() => expect(w.element.querySelector('#whatif-status')!.classList.contains('error')).toBe(true));
    expect(w.element.querySelector('#whatif-status')!.textContent).toBe('The comparison failed: edits[0]: unknown category');
  });
});
