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
  editFeatures,
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
