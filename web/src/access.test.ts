// @vitest-environment happy-dom
import { Color, createExpression } from '@maplibre/maplibre-gl-style-spec';
import type { Map as MlMap } from 'maplibre-gl';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  ACCESS_LAYER,
  AccessPanel,
  colourExpression,
  formatMinutes,
  formatScore,
  formatShare,
  legendClasses,
  minuteBreaks,
  minutesClass,
  minutesColour,
  RAMP,
  scoreClass,
  UNREACHED,
} from './access';
import { accessQuery } from './api';
import { initLang } from './i18n';

type Props = Record<string, unknown>;

/** The colour MapLibre's own expression engine gives a home with these properties. */
function colourAt(expr: unknown, properties: Props): string {
  const spec = { type: 'color', 'property-type': 'data-driven', expression: { parameters: ['zoom', 'feature'], interpolated: false } };
  const parsed = createExpression(expr, spec as never);
  if (parsed.result !== 'success') throw new Error(`bad expression: ${JSON.stringify(parsed.value)}`);
  const v = parsed.value.evaluate({ zoom: 16 }, { type: 'Point', properties } as never);
  return String(typeof v === 'string' ? Color.parse(v) : v);
}
const same = (hex: string): string => String(Color.parse(hex));

afterEach(() => initLang('en'));

describe('score classes', () => {
  it.each([
    [1, 0],
    [0.9, 0],
    [0.89, 1],
    [0.7, 1],
    [0.69, 2],
    [0.5, 2],
    [0.49, 3],
    [0, 3],
  ])('score %d is class %d, on the map as in the legend', (score, cls) => {
    expect(scoreClass(score)).toBe(cls);
    expect(colourAt(colourExpression('score', 15), { score })).toBe(same(RAMP[cls]!));
    expect(legendClasses('score', 15)[cls]!.color).toBe(RAMP[cls]);
  });

  it('draws a home without a score in the worst class', () => {
    expect(colourAt(colourExpression('score', 15), {})).toBe(same(RAMP[3]));
  });

  it('labels the classes best first', () => {
    expect(legendClasses('score', 15).map((c) => c.label)).toEqual(['0.9 or more', '0.7 to 0.9', '0.5 to 0.7', 'below 0.5']);
    initLang('fi');
    expect(legendClasses('score', 15).map((c) => c.label)).toEqual(['0,9 tai enemmän', '0,7–0,9', '0,5–0,7', 'alle 0,5']);
  });
});

describe('minute classes', () => {
  it('has ≤ 5, ≤ 10 and ≤ the threshold, without repeats', () => {
    expect(minuteBreaks(15)).toEqual([5, 10, 15]);
    expect(minuteBreaks(20)).toEqual([5, 10, 20]);
    expect(minuteBreaks(10)).toEqual([5, 10]);
    expect(minuteBreaks(5)).toEqual([5]);
  });

  it.each([
    [2.62, 15, 0],
    [5, 15, 0],
    [5.01, 15, 1],
    [10, 15, 1],
    [14.99, 15, 2],
    [15, 15, 2],
    [15.01, 15, 3],
    [40, 15, 3],
    [7, 10, 1],
    [11, 10, 2],
    [4, 5, 0],
    [6, 5, 1],
    [null, 15, -1],
    [undefined, 15, -1],
  ])('%s minutes with a threshold of %d is class %d, on the map as in the legend', (m, threshold, cls) => {
    expect(minutesClass(m, threshold)).toBe(cls);
    const expected = minutesColour(cls, threshold);
    expect(colourAt(colourExpression('grocery', threshold), { groceryMinutes: m ?? null })).toBe(same(expected));
    const legend = legendClasses('grocery', threshold);
    expect(legend[cls === -1 ? legend.length - 1 : cls]!.color).toBe(expected);
  });

  it('uses the lightest colour over the threshold and grey for none within reach', () => {
    expect(minutesColour(3, 15)).toBe(RAMP[3]);
    expect(minutesColour(1, 5)).toBe(RAMP[3]);
    expect(minutesColour(-1, 15)).toBe(UNREACHED);
    expect(colourAt(colourExpression('park', 15), { groceryMinutes: 3 })).toBe(same(UNREACHED));
  });

  it('labels the classes with the threshold', () => {
    expect(legendClasses('grocery', 15).map((c) => c.label)).toEqual(['up to 5 min', 'up to 10 min', 'up to 15 min', 'over 15 min', 'none within reach']);
    expect(legendClasses('grocery', 5).map((c) => c.label)).toEqual(['up to 5 min', 'over 5 min', 'none within reach']);
  });
});

describe('formatting', () => {
  it('shows shares as whole percentages, but never rounds to 100 % or 0 %', () => {
    expect(formatShare(1)).toBe('100 %');
    expect(formatShare(0)).toBe('0 %');
    expect(formatShare(0.8704)).toBe('87 %');
    expect(formatShare(0.9996)).toBe('99.9 %');
    expect(formatShare(0.001)).toBe('0.1 %');
    expect(formatShare(1.2)).toBe('100 %');
    initLang('fi');
    expect(formatShare(0.9996)).toBe('99,9 %');
  });

  it('shows minutes with a decimal below ten, and a dash for none', () => {
    expect(formatMinutes(2.6201)).toBe('2.6 min');
    expect(formatMinutes(12.4)).toBe('12 min');
    expect(formatMinutes(null)).toBe('–');
    initLang('fi');
    expect(formatMinutes(2.6201)).toBe('2,6 min');
  });

  it('shows the score with two decimals', () => {
    expect(formatScore(0.9635)).toBe('0.96');
    expect(formatScore(1)).toBe('1');
  });
});

describe('accessQuery', () => {
  it('sends the profile only when walking', () => {
    expect(accessQuery({ mode: 'walk', minutes: 15, profile: 'older' })).toBe('?mode=walk&minutes=15&profile=older');
    expect(accessQuery({ mode: 'bike', minutes: 10, profile: 'older' })).toBe('?mode=bike&minutes=10');
    expect(accessQuery({ mode: 'walk', minutes: 5, categories: ['grocery', 'park'] })).toBe('?mode=walk&minutes=5&categories=grocery%2Cpark');
  });
});

describe('the panel', () => {
  const summary = {
    mode: 'walk',
    thresholdMinutes: 15,
    homes: 355,
    residents: 20144.7,
    meanScore: 0.9636,
    shareAllWithin: 0.8704,
    missing: ['childcare'],
    categories: [
      { category: 'grocery', destinations: 27, shareWithin: 1, medianMinutes: 2.62 },
      { category: 'childcare', destinations: 0, shareWithin: 0, medianMinutes: null },
      { category: 'pharmacy', destinations: 6, shareWithin: 0.89, medianMinutes: 6.99 },
    ],
  };
  const homes = { type: 'FeatureCollection', features: [] };

  function fakeMap() {
    const setData = vi.fn();
    const layers = new Set<string>();
    const canvas = document.createElement('canvas');
    const map = {
      getSource: vi.fn(() => (layers.size ? { setData } : undefined)),
      addSource: vi.fn(),
      addLayer: vi.fn((l: { id: string }) => layers.add(l.id)),
      getLayer: vi.fn((id: string) => (layers.has(id) ? { id } : undefined)),
      setPaintProperty: vi.fn(),
      setLayoutProperty: vi.fn(),
      getCanvas: () => canvas,
    };
    return { map: map as unknown as MlMap, raw: map, setData };
  }

  let fetchMock: ReturnType<typeof vi.fn>;
  beforeEach(() => {
    fetchMock = vi.fn(async (url: string) => {
      const body = url.startsWith('/api/access/homes') ? homes : summary;
      return new Response(JSON.stringify(body), { status: 200, headers: { 'Content-Type': 'application/json' } });
    });
    vi.stubGlobal('fetch', fetchMock);
  });
  afterEach(() => vi.unstubAllGlobals());

  const settle = () => new Promise((r) => setTimeout(r, 0));

  it('loads the summary and the homes when shown, and lists the categories with "no data" for missing ones', async () => {
    const root = document.createElement('div');
    const { map, raw, setData } = fakeMap();
    const onChange = vi.fn();
    const panel = new AccessPanel(root, map, { onChange });
    panel.addLayers();
    panel.show(true);
    expect(root.getAttribute('aria-busy')).toBe('true');
    expect(root.querySelector('#access-status')!.textContent).toMatch(/Computing/);
    await vi.waitFor(() => expect(root.querySelector('#access-summary')).not.toBeNull());
    expect(root.hasAttribute('aria-busy')).toBe(false);
    expect(fetchMock.mock.calls.map((c) => c[0]).sort()).toEqual([
      '/api/access/homes?mode=walk&minutes=15&profile=adult',
      '/api/access?mode=walk&minutes=15&profile=adult',
    ]);
    expect(setData).toHaveBeenCalledWith(homes);
    expect(raw.setLayoutProperty).toHaveBeenLastCalledWith(ACCESS_LAYER, 'visibility', 'visible');
    expect(panel.layerId).toBe(ACCESS_LAYER);
    expect(root.querySelector('[data-metric="meanScore"] .metric-value')!.textContent).toBe('0.96');
    expect(root.querySelector('[data-metric="shareAll"] .metric-value')!.textContent).toBe('87 %');
    const grocery = root.querySelector('tr[data-category="grocery"]')!;
    expect(grocery.querySelector('.share-value')!.textContent).toBe('100 %');
    expect(grocery.textContent).toContain('2.6 min');
    expect(grocery.textContent).toContain('27');
    expect(root.querySelector('tr[data-category="childcare"]')!.textContent).toContain('no data');
    expect(root.querySelector('#access-missing')!.textContent).toContain('childcare');
    // a missing category is not offered on the map
    const offered = [...root.querySelectorAll<HTMLOptionElement>('#access-indicator option')].map((o) => o.value);
    expect(offered).toEqual(['score', 'grocery', 'pharmacy']);
    expect(root.querySelector('#access-status')!.textContent).toBe('355 homes, 20,145 residents, on foot within 15 minutes.');

    // the indicator only repaints; the mode asks again, without the profile
    const indicator = root.querySelector<HTMLSelectElement>('#access-indicator')!;
    indicator.value = 'grocery';
    indicator.dispatchEvent(new Event('change'));
    await settle();
    expect(fetchMock).toHaveBeenCalledTimes(2);
    expect(root.querySelector('#access-legend')!.getAttribute('data-indicator')).toBe('grocery');
    expect(onChange).toHaveBeenLastCalledWith({ mode: 'walk', minutes: 15, profile: 'adult', indicator: 'grocery' });
    const mode = root.querySelector<HTMLSelectElement>('#access-mode')!;
    mode.value = 'bike';
    mode.dispatchEvent(new Event('change'));
    await vi.waitFor(() => expect(fetchMock).toHaveBeenCalledTimes(4));
    expect(fetchMock.mock.calls.map((c) => c[0])).toContain('/api/access?mode=bike&minutes=15');
    expect(root.querySelector<HTMLSelectElement>('#access-profile')!.disabled).toBe(true);
  });

  it('shows the ProblemDetails of an error', async () => {
    fetchMock.mockImplementation(
      async () =>
        new Response(JSON.stringify({ type: 'https://uri.etsi.org/ngsi-ld/errors/Conflict', title: 'Conflict', detail: 'no streets: import OpenStreetMap first' }), {
          status: 409,
          headers: { 'Content-Type': 'application/problem+json' },
        }),
    );
    const root = document.createElement('div');
    const { map } = fakeMap();
    const panel = new AccessPanel(root, map, { onChange: vi.fn() });
    panel.addLayers();
    panel.show(true);
    await vi.waitFor(() => expect(root.querySelector('#access-status')!.classList.contains('error')).toBe(true));
    expect(root.querySelector('#access-status')!.textContent).toBe('The 15-minute city could not be computed: no streets: import OpenStreetMap first');
    expect(root.hasAttribute('aria-busy')).toBe(false);
    expect(panel.layerId).toBeUndefined();
  });

  it('takes its options from the URL', async () => {
    const root = document.createElement('div');
    const { map } = fakeMap();
    const panel = new AccessPanel(root, map, { onChange: vi.fn() });
    panel.addLayers();
    panel.set({ mode: 'walk', minutes: 10, profile: 'older', indicator: 'park' });
    panel.show(true);
    await vi.waitFor(() => expect(root.querySelector('#access-summary')).not.toBeNull());
    expect(fetchMock.mock.calls.map((c) => c[0])).toContain('/api/access?mode=walk&minutes=10&profile=older');
    expect(root.querySelector<HTMLSelectElement>('#access-minutes')!.value).toBe('10');
    expect(root.querySelector<HTMLSelectElement>('#access-profile')!.value).toBe('older');
    expect(root.querySelector<HTMLSelectElement>('#access-indicator')!.value).toBe('park');
  });
});
