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
  LINK_LAYERS,
  NEW_PATHS_LAYER,
  PATH_COLOR,
  areaFeatures,
  blockedQuery,
  closedLinks,
  idFilter,
  lineMeetsPolygon,
  linkOf,
  linkState,
  openedLinks,
  pathFeatures,
  usableBy,
  withLinkOpened,
  type PickedLink,
  editFeatures,
  editLabel,
  removeEditOf,
  formatPointsChange,
  formatScoreChange,
  scenarioBody,
  WhatIf,
} from './access-whatif';
import { lineLengthM } from './draw';
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

describe('new paths and paths opened', () => {
  // about 111 m north, then 55 m east (at 60° N a degree of longitude is half a degree of latitude)
  const path: [number, number][] = [
    [24.9400001234, 60.17],
    [24.94, 60.171],
    [24.941, 60.171],
  ];
  const L = 'urn:ngsi-ld:RoadLink:';
  it('sends a new path with its positions rounded and the links opened once each', () => {
    expect(
      scenarioBody([
        { kind: 'addPath', path },
        { kind: 'openPaths', links: [`${L}a`, `${L}b`, `${L}a`] },
      ]).edits,
    ).toEqual([
      {
        kind: 'addPath',
        path: [
          [24.94, 60.17],
          [24.94, 60.171],
          [24.941, 60.171],
        ],
      },
      { kind: 'openPaths', links: [`${L}a`, `${L}b`] },
    ]);
  });
  it('labels a new path by its length and the paths opened by name or number, in English and Finnish', () => {
    const m = Math.round(lineLengthM(path));
    expect(m).toBeGreaterThan(160);
    expect(m).toBeLessThan(170);
    expect(editLabel({ kind: 'addPath', path })).toBe(`New path, ${m} m`);
    expect(editLabel({ kind: 'openPaths', links: [`${L}osm-way-1-0`] }, 'Kaivopiha')).toBe('Path opened: Kaivopiha');
    expect(editLabel({ kind: 'openPaths', links: [`${L}osm-way-1-0`] })).toBe('Path opened: osm-way-1-0');
    expect(editLabel({ kind: 'openPaths', links: [`${L}a`, `${L}b`, `${L}c`] }, 'Kaivopiha')).toBe('3 paths opened');
    setLang('fi');
    expect(editLabel({ kind: 'addPath', path })).toBe(`Uusi polku, ${m} m`);
    expect(editLabel({ kind: 'openPaths', links: [`${L}a`] }, 'Kaivopiha')).toBe('Polku avattu: Kaivopiha');
    expect(editLabel({ kind: 'openPaths', links: [`${L}a`, `${L}b`] })).toBe('2 polkua avattu');
  });
  it('draws the new paths, and knows the links opened and closed by id', () => {
    const edits = [
      { kind: 'closePaths' as const, links: [`${L}c`] },
      { kind: 'addPath' as const, path },
      { kind: 'openPaths' as const, links: [`${L}a`] },
      { kind: 'openPaths' as const, links: [`${L}a`, `${L}b`] },
    ];
    expect(pathFeatures(edits)).toEqual([{ type: 'Feature', properties: { index: 1 }, geometry: { type: 'LineString', coordinates: path } }]);
    expect(openedLinks(edits)).toEqual([`${L}a`, `${L}b`]);
    expect(closedLinks(edits)).toEqual([`${L}c`]);
  });
  it('filters the network by id (none for an empty list)', () => {
    const spec = { type: 'boolean', 'property-type': 'data-driven', expression: { parameters: ['zoom', 'feature'], interpolated: false } };
    const evaluate = (ids: string[], id: string) => {
      const parsed = createExpression(idFilter(ids), spec as never);
      if (parsed.result !== 'success') throw new Error(JSON.stringify(parsed.value));
      return parsed.value.evaluate({ zoom: 16 }, { type: 'LineString', properties: { id } } as never);
    };
    expect(evaluate([`${L}a`, `${L}b`, `${L}a`], `${L}b`)).toBe(true);
    expect(evaluate([`${L}a`], `${L}c`)).toBe(false);
    expect(evaluate([], `${L}a`)).toBe(false);
  });
  it('asks for the links a mode may use neither way, and reads a link’s access', () => {
    expect(blockedQuery('walk')).toBe('(walkAccess[forward]==false;walkAccess[backward]==false)|!walkAccess');
    expect(blockedQuery('bike')).toBe('(bikeAccess[forward]==false;bikeAccess[backward]==false)|!bikeAccess');
    expect(usableBy({ walkAccess: { forward: false, backward: true } }, 'walk')).toBe(true);
    expect(usableBy({ walkAccess: { forward: false, backward: false }, bikeAccess: { forward: true, backward: true } }, 'walk')).toBe(false);
    expect(usableBy({ walkAccess: { forward: true, backward: true } }, 'bike')).toBe(false);
    expect(usableBy(undefined, 'walk')).toBe(false);
  });
  it('reads a link from its map feature, named by its name, else its road class', () => {
    const line = [
      [24.94, 60.17],
      [24.941, 60.17],
    ];
    expect(linkOf({ properties: { id: `${L}x`, name: ' Kaivopiha ', roadClass: 'footway' }, geometry: { type: 'LineString', coordinates: line } })).toEqual({
      id: `${L}x`,
      name: 'Kaivopiha',
      line,
    });
    expect(linkOf({ properties: { id: `${L}x`, roadClass: 'footway' }, geometry: { type: 'MultiLineString', coordinates: [line, line] } })).toEqual({
      id: `${L}x`,
      name: 'Footway',
      line: [...line, ...line],
    });
    expect(linkOf({ properties: { id: 'urn:ngsi-ld:RoadSegment:x' }, geometry: { type: 'LineString', coordinates: line } })).toBeUndefined();
    expect(linkOf(undefined)).toBeUndefined();
  });
  it('tells whether a line meets an area: a point inside, an edge crossing, not inside a hole', () => {
    const square: [number, number][] = [
      [0, 0],
      [2, 0],
      [2, 2],
      [0, 2],
      [0, 0],
    ];
    const hole: [number, number][] = [
      [0.5, 0.5],
      [1.5, 0.5],
      [1.5, 1.5],
      [0.5, 1.5],
      [0.5, 0.5],
    ];
    expect(lineMeetsPolygon([[1, 1], [1.2, 1.2]], [square])).toBe(true);
    expect(lineMeetsPolygon([[-1, 1], [3, 1]], [square])).toBe(true);
    expect(lineMeetsPolygon([[-1, 3], [3, 3]], [square])).toBe(false);
    expect(lineMeetsPolygon([[0.9, 0.9], [1.1, 1.1]], [square, hole])).toBe(false);
    expect(lineMeetsPolygon([[0.9, 0.9], [1.1, 1.8]], [square, hole])).toBe(true);
    expect(lineMeetsPolygon([[2, 1], [3, 1]], [square])).toBe(true);
  });
  it('applies the edits in order to a link: closed by id or area, opened, closed again', () => {
    const link: PickedLink = {
      id: `${L}x`,
      name: 'x',
      line: [
        [24.941, 60.1705],
        [24.9415, 60.1705],
      ],
    };
    const area = {
      type: 'Polygon',
      coordinates: [
        [
          [24.94, 60.17],
          [24.942, 60.17],
          [24.942, 60.171],
          [24.94, 60.17],
        ],
      ],
    };
    expect(linkState(link, false, [])).toBe('usable');
    expect(linkState(link, true, [])).toBe('blocked');
    expect(linkState(link, false, [{ kind: 'closePaths', links: [link.id] }])).toBe('closed');
    expect(linkState(link, false, [{ kind: 'closePaths', area }])).toBe('closed');
    expect(linkState({ ...link, line: [[24.95, 60.18], [24.951, 60.18]] }, false, [{ kind: 'closePaths', area }])).toBe('usable');
    expect(linkState(link, true, [{ kind: 'openPaths', links: [link.id] }])).toBe('opened');
    expect(linkState(link, false, [{ kind: 'closePaths', area }, { kind: 'openPaths', links: [link.id] }])).toBe('opened');
    expect(linkState(link, true, [{ kind: 'openPaths', links: [link.id] }, { kind: 'closePaths', links: [link.id] }])).toBe('closed');
    // a link the mode may use is not opened by naming it
    expect(linkState(link, false, [{ kind: 'openPaths', links: [link.id] }])).toBe('usable');
  });
  it('extends the last edit when it opens paths, else adds one', () => {
    expect(withLinkOpened([], 'a')).toEqual([{ kind: 'openPaths', links: ['a'] }]);
    expect(withLinkOpened([{ kind: 'openPaths', links: ['a'] }], 'b')).toEqual([{ kind: 'openPaths', links: ['a', 'b'] }]);
    expect(withLinkOpened([{ kind: 'openPaths', links: ['a'] }], 'a')).toEqual([{ kind: 'openPaths', links: ['a'] }]);
    expect(withLinkOpened([{ kind: 'openPaths', links: ['a'] }, { kind: 'closePaths', links: ['a'] }], 'a')).toEqual([
      { kind: 'openPaths', links: ['a'] },
      { kind: 'closePaths', links: ['a'] },
      { kind: 'openPaths', links: ['a'] },
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
  /** What the NGSI-LD API answers for RoadLink queries (the blocked links of the view, or one link by id). */
  let links: (url: URL) => unknown[];
  beforeEach(() => {
    links = () => [];
    fetchMock = vi.fn(async (input: string) => {
      const url = new URL(input, 'http://twin.test');
      const body = url.pathname === '/ngsi-ld/v1/entities' ? links(url) : answer;
      return new Response(JSON.stringify(body), { status: 200, headers: { 'Content-Type': 'application/json' } });
    });
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
      setFilter: vi.fn(),
      getZoom: () => 16,
      getBounds: () => ({ getWest: () => 24.94, getSouth: () => 60.17, getEast: () => 24.95, getNorth: () => 60.175 }),
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

  /** The last value set for a layer's layout property. */
  function layout(raw: ReturnType<typeof fakeMap>['raw'], id: string, prop = 'visibility'): unknown {
    return raw.setLayoutProperty.mock.calls.filter((c) => c[0] === id && c[1] === prop).pop()?.[2];
  }

  it('keeps one mode at a time: placing, taking away, drawing an area or a path, opening paths', () => {
    const { map, raw } = fakeMap();
    const w = new WhatIf(map, { request: () => ({ mode: 'walk', minutes: 15 }), categories: () => ['grocery'], homesLayer: 'homes' });
    w.addLayers();
    w.show(true);
    w.render();
    const button = (id: string) => w.element.querySelector<HTMLButtonElement>(`#${id}`)!;
    const pressed = () =>
      ['whatif-place', 'whatif-remove-place', 'whatif-close-area', 'whatif-add-path', 'whatif-open-paths'].filter((id) => button(id).getAttribute('aria-pressed') === 'true');
    const modes = () => ({ placing: w.placing, removing: w.removing, drawing: w.drawingKind, opening: w.opening });
    button('whatif-place').click();
    expect(pressed()).toEqual(['whatif-place']);
    button('whatif-add-path').click();
    expect(modes()).toEqual({ placing: false, removing: false, drawing: 'path', opening: false });
    expect(pressed()).toEqual(['whatif-add-path']);
    expect(w.drawing).toBe(true);
    expect(button('whatif-finish').textContent).toBe('Finish the path');
    button('whatif-close-area').click();
    expect(modes()).toEqual({ placing: false, removing: false, drawing: 'area', opening: false });
    expect(pressed()).toEqual(['whatif-close-area']);
    expect(button('whatif-finish').textContent).toBe('Finish the area');
    button('whatif-open-paths').click();
    expect(modes()).toEqual({ placing: false, removing: false, drawing: undefined, opening: true });
    expect(pressed()).toEqual(['whatif-open-paths']);
    expect(button('whatif-open-paths').textContent).toBe('Stop opening');
    // the app sends the clicks of the open mode to addPoint, as a drawing's
    expect(w.drawing).toBe(true);
    expect(w.element.querySelector<HTMLElement>('#whatif-draw-tools')!.hidden).toBe(true);
    expect(layout(raw, LINK_LAYERS.usable)).toBe('visible');
    expect(layout(raw, LINK_LAYERS.blocked)).toBe('visible');
    button('whatif-remove-place').click();
    expect(modes()).toEqual({ placing: false, removing: true, drawing: undefined, opening: false });
    expect(layout(raw, LINK_LAYERS.usable)).toBe('none');
    button('whatif-open-paths').click();
    button('whatif-place').click();
    expect(modes()).toEqual({ placing: true, removing: false, drawing: undefined, opening: false });
    expect(pressed()).toEqual(['whatif-place']);
    // the same button again stops its mode
    button('whatif-add-path').click();
    button('whatif-add-path').click();
    expect(modes()).toEqual({ placing: false, removing: false, drawing: undefined, opening: false });
    expect(pressed()).toEqual([]);
    // hiding the panel ends any mode
    button('whatif-open-paths').click();
    w.show(false);
    expect(w.opening).toBe(false);
    expect(layout(raw, LINK_LAYERS.blocked)).toBe('none');
  });

  it('draws a new path in its own colour, lists it and sends it', async () => {
    const { map, raw } = fakeMap();
    const w = new WhatIf(map, { request: () => ({ mode: 'walk', minutes: 15 }), categories: () => ['grocery'], homesLayer: 'homes' });
    w.addLayers();
    w.show(true);
    w.render();
    const status = () => w.element.querySelector('#whatif-status')!.textContent;
    raw.getLayer.mockImplementation((id: string) => ({ id }));
    w.element.querySelector<HTMLButtonElement>('#whatif-add-path')!.click();
    expect(status()).toMatch(/within 50 m/);
    expect(raw.setPaintProperty).toHaveBeenCalledWith('app-whatif-sketch-line', 'line-color', PATH_COLOR);
    w.addPoint([24.94, 60.17]);
    w.element.querySelector<HTMLButtonElement>('#whatif-finish')!.click();
    expect(status()).toBe('Too few points: a path needs 2.');
    expect(w.drawingKind).toBe('path');
    w.addPoint([24.94, 60.171]);
    expect(status()).toBe('Points of the path: 2');
    w.element.querySelector<HTMLButtonElement>('#whatif-finish')!.click();
    expect(w.drawingKind).toBeUndefined();
    expect(status()).toMatch(/^A new path of 11\d m added\.$/);
    const item = w.element.querySelector('#whatif-edits li')!;
    expect(item.getAttribute('data-kind')).toBe('addPath');
    expect(item.textContent).toMatch(/^New path, 11\d m/);
    expect(layout(raw, NEW_PATHS_LAYER)).toBe('visible');
    // an area drawn next is red again
    w.element.querySelector<HTMLButtonElement>('#whatif-close-area')!.click();
    expect(raw.setPaintProperty).toHaveBeenLastCalledWith('app-whatif-sketch-points', 'circle-stroke-color', '#b2182b');
    w.element.querySelector<HTMLButtonElement>('#whatif-cancel-draw')!.click();
    w.element.querySelector<HTMLButtonElement>('#whatif-compare')!.click();
    await vi.waitFor(() => expect(w.element.querySelector('#whatif-result')).not.toBeNull());
    const body = JSON.parse(fetchMock.mock.calls.at(-1)![1].body);
    expect(body).toEqual({
      edits: [
        {
          kind: 'addPath',
          path: [
            [24.94, 60.17],
            [24.94, 60.171],
          ],
        },
      ],
    });
    expect(w.element.querySelector('#whatif-legend')!.textContent).toContain('a new or opened path');
    // removed from the list: off the map
    w.element.querySelector<HTMLButtonElement>('#whatif-edits li button')!.click();
    expect(layout(raw, NEW_PATHS_LAYER)).toBe('none');
  });

  it('opens the paths picked on the map: blocked ones dashed, a usable one said so, Escape ends', async () => {
    const { map, raw, canvas } = fakeMap();
    let mode: 'walk' | 'bike' = 'walk';
    const w = new WhatIf(map, { request: () => ({ mode, minutes: 15 }), categories: () => ['grocery'], homesLayer: 'homes' });
    w.addLayers();
    w.show(true);
    w.render();
    const L = 'urn:ngsi-ld:RoadLink:';
    links = (url) =>
      url.searchParams.get('id')
        ? [{ id: url.searchParams.get('id'), type: 'RoadLink', walkAccess: { forward: true, backward: true } }]
        : [{ id: `${L}yard-0`, type: 'RoadLink', walkAccess: { forward: false, backward: false } }, { id: `${L}yard-1`, type: 'RoadLink' }];
    const status = () => w.element.querySelector('#whatif-status')!.textContent;
    const line = [
      [24.941, 60.1705],
      [24.9415, 60.1705],
    ];
    const feature = (id: string, layer: string, name?: string) => ({ properties: { id, roadClass: 'footway', ...(name ? { name } : {}) }, geometry: { type: 'LineString', coordinates: line }, layer: { id: layer } });
    w.element.querySelector<HTMLButtonElement>('#whatif-open-paths')!.click();
    expect(status()).toMatch(/open it to walking/);
    expect(canvas.style.cursor).toBe('crosshair');
    expect(raw.on).toHaveBeenCalledWith('moveend', expect.any(Function));
    // the blocked links of the view (and around it) are asked for and drawn dashed
    await vi.waitFor(() => expect(raw.setFilter).toHaveBeenCalledWith(LINK_LAYERS.blocked, ['match', ['get', 'id'], [`${L}yard-0`, `${L}yard-1`], true, false]));
    const query = new URL(fetchMock.mock.calls[0]![0], 'http://twin.test').searchParams;
    expect(query.get('type')).toBe('RoadLink');
    expect(query.get('q')).toBe(blockedQuery('walk'));
    expect(query.get('georel')).toBe('intersects');
    expect(JSON.parse(query.get('coordinates')!)[0][0]).toEqual([24.935, 60.1675]);
    expect(raw.setFilter).toHaveBeenCalledWith(LINK_LAYERS.usable, ['!', ['match', ['get', 'id'], [`${L}yard-0`, `${L}yard-1`], true, false]]);

    // a click on nothing: said so, the mode goes on
    w.addPoint([24.94, 60.17]);
    await vi.waitFor(() => expect(status()).toMatch(/No path there/));
    expect(w.opening).toBe(true);
    const box = (raw.queryRenderedFeatures.mock.calls.at(-1) as unknown[])[0];
    expect(box).toEqual([
      [249400 - 6, -601700 - 6],
      [249400 + 6, -601700 + 6],
    ]);
    // a link walking may use (the API says): said so, nothing added
    raw.getLayer.mockImplementation((id: string) => ({ id }));
    raw.queryRenderedFeatures.mockImplementation(() => [feature(`${L}street-0`, LINK_LAYERS.usable, 'Aleksanterinkatu')]);
    w.addPoint([24.94, 60.17]);
    await vi.waitFor(() => expect(status()).toBe('Aleksanterinkatu can already be walked: nothing to open.'));
    expect(fetchMock.mock.calls.at(-1)![0]).toContain(`id=${encodeURIComponent(`${L}street-0`)}`);
    expect(w.element.querySelector('#whatif-edits')).toBeNull();
    // a blocked link under a usable one: the blocked one is opened
    raw.queryRenderedFeatures.mockImplementation(() => [feature(`${L}street-0`, LINK_LAYERS.usable), feature(`${L}yard-0`, LINK_LAYERS.blocked)]);
    w.addPoint([24.94, 60.17]);
    await vi.waitFor(() => expect(status()).toBe('Opened: Footway.'));
    expect(w.opening).toBe(true);
    // the next one extends the edit
    raw.queryRenderedFeatures.mockImplementation(() => [feature(`${L}yard-1`, LINK_LAYERS.blocked, 'Kaivopiha')]);
    await w.pickLink(w.linkAt({ x: 5, y: 5 }));
    expect(status()).toBe('Opened: Kaivopiha.');
    await w.pickLink(w.linkAt({ x: 5, y: 5 }));
    expect(status()).toBe('Kaivopiha is already opened.');
    const items = [...w.element.querySelectorAll('#whatif-edits li')];
    expect(items.map((li) => li.getAttribute('data-kind'))).toEqual(['openPaths']);
    expect(items[0]!.textContent).toMatch(/^2 paths opened/);
    expect(raw.setFilter).toHaveBeenLastCalledWith(LINK_LAYERS.opened, ['match', ['get', 'id'], [`${L}yard-0`, `${L}yard-1`], true, false]);
    expect(layout(raw, LINK_LAYERS.opened)).toBe('visible');
    // Escape ends the mode and hides the network (the links opened stay drawn)
    window.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape' }));
    expect(w.opening).toBe(false);
    expect(status()).toBe('Opening paths ended.');
    expect(canvas.style.cursor).toBe('');
    expect(raw.off).toHaveBeenCalledWith('moveend', expect.any(Function));
    expect(layout(raw, LINK_LAYERS.usable)).toBe('none');
    expect(layout(raw, LINK_LAYERS.blocked)).toBe('none');
    expect(layout(raw, LINK_LAYERS.opened)).toBe('visible');
    // a pick after the mode ended does nothing
    await w.pickLink(linkOf(feature(`${L}other-0`, LINK_LAYERS.blocked)));
    expect(w.element.querySelectorAll('#whatif-edits li')).toHaveLength(1);
    w.element.querySelector<HTMLButtonElement>('#whatif-compare')!.click();
    await vi.waitFor(() => expect(w.element.querySelector('#whatif-result')).not.toBeNull());
    const post = fetchMock.mock.calls.find((c) => String(c[0]).startsWith('/api/access/scenario'))!;
    expect(JSON.parse(post[1].body)).toEqual({ edits: [{ kind: 'openPaths', links: [`${L}yard-0`, `${L}yard-1`] }] });
    // cycling: other links are blocked, asked for again
    mode = 'bike';
    w.setOpening(true);
    expect(status()).toMatch(/open it to cycling/);
    const asked = () => fetchMock.mock.calls.map((c) => new URL(String(c[0]), 'http://twin.test').searchParams.get('q'));
    await vi.waitFor(() => expect(asked()).toContain(blockedQuery('bike')));
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
