// @vitest-environment happy-dom
import { Color, createExpression } from '@maplibre/maplibre-gl-style-spec';
import { afterEach, describe, expect, it } from 'vitest';
import { classOf, colorExpression, featureStates, isAirView, legendItems, legendText, RAMPS, rowText, streetRows, summaryRows, type AirView } from './air';
import type { AirResults, NoiseResults } from './api';
import { initLang } from './i18n';

/** The colour MapLibre's own expression engine gives a street with this feature state. */
function colourAt(view: AirView, state: Record<string, unknown>): string {
  const spec = { type: 'color', 'property-type': 'data-driven', expression: { parameters: ['zoom', 'feature', 'feature-state'], interpolated: false } };
  const parsed = createExpression(colorExpression(view), spec as never);
  if (parsed.result !== 'success') throw new Error(`bad expression: ${JSON.stringify(parsed.value)}`);
  const v = parsed.value.evaluate({ zoom: 16 }, { type: 'LineString', properties: {} } as never, state as never);
  return String(typeof v === 'string' ? Color.parse(v) : v);
}
const same = (c: string): string => String(Color.parse(c));

const A = 'urn:ngsi-ld:RoadLink:a';
const B = 'urn:ngsi-ld:RoadLink:b';

const air: AirResults = {
  scenario: 'urn:ngsi-ld:Scenario:x',
  run: 'urn:ngsi-ld:ScenarioRun:1',
  summary: {
    residents: 5000,
    no2: { aboveWho: 4200, aboveEu2030: 800, aboveEuLimit: 0, meanResidents: 17.2 },
    emissionsKgPerDay: { nox: 61.4, co2: 21876.6 },
  },
  change: {
    no2AboveWho: [4300, 4200],
    no2AboveEu2030: [900, 800],
    no2AboveEuLimit: [12, 0],
    noxKgPerDay: [63.2, 61.4],
    co2KgPerDay: [22500, 21876.6],
    streetsNo2Up: 3,
    streetsNo2Down: 5,
  },
  streets: {
    [A]: { name: 'Fabianinkatu', vehiclesPerDay: 0, roadType: 2, no2: 14.25, pm10: 16.1, pm25: 7.02, deltaNo2: -3.5, deltaPm10: -0.4, deltaPm25: -0.1, deltaVehiclesPerDay: -5400 },
    [B]: { name: 'Unioninkatu', vehiclesPerDay: 9000, roadType: 4, no2: 41, pm10: 20, pm25: 8, deltaNo2: 1.2 },
  },
};
const noise: NoiseResults = {
  scenario: air.scenario,
  run: air.run,
  summary: { residents: 5000, noise: { endLden: 2100, endLnight: 900 } },
  change: { ldenAbove55: [2300, 2100], lnightAbove50: [950, 900] },
  streets: {
    [A]: { name: 'Fabianinkatu', lden: null, lnight: null, deltaLden: null },
    [B]: { name: 'Unioninkatu', lden: 68.44, lnight: 59.1, deltaLden: 1.5, deltaLnight: 1.4 },
  },
};

afterEach(() => initLang('en'));

describe('air and noise colour classes', () => {
  it.each([
    ['no2', 9.9, 0],
    ['no2', 10, 1],
    ['no2', 19.9, 1],
    ['no2', 20, 2],
    ['no2', 40, 3],
    ['no2', 80, 3],
    ['deltaNo2', -5, 0],
    ['deltaNo2', 0, 2],
    ['deltaNo2', 2, 4],
    ['lden', 54, 0],
    ['lden', 55, 1],
    ['lden', 72, 4],
    ['lden', 80, 5],
    ['deltaLden', -1.5, 1],
    ['deltaLden', 3.2, 4],
  ] as [AirView, number, number][])('%s %d is class %d, on the map as in the legend', (view, v, cls) => {
    expect(classOf(view, v)).toBe(cls);
    expect(colourAt(view, { [view]: v })).toBe(same(RAMPS[view].colors[cls]!));
    expect(legendItems(view)[cls]!.color).toBe(RAMPS[view].colors[cls]);
  });

  it('draws nothing where a street has no value for the view', () => {
    expect(colourAt('no2', {})).toBe(same('rgba(0, 0, 0, 0)'));
    expect(colourAt('lden', { no2: 30 })).toBe(same('rgba(0, 0, 0, 0)'));
  });

  it('breaks NO2 at the WHO, EU 2030 and EU limit thresholds and Lden at 55–75 dB', () => {
    expect(RAMPS.no2.breaks).toEqual([10, 20, 40]);
    expect(RAMPS.lden.breaks).toEqual([55, 60, 65, 70, 75]);
    expect(legendItems('no2').map((c) => c.label)).toEqual(['< 10', '10 – 20', '20 – 40', '≥ 40']);
    expect(legendItems('deltaLden').map((c) => c.label)).toEqual(['< −3', '−3 – −1', '−1 – +1', '+1 – +3', '≥ +3']);
  });

  it('names the unit and the thresholds in the legend, in the user’s language', () => {
    const no2 = legendText('no2');
    expect(no2.title).toContain('µg/m³');
    expect(no2.note).toMatch(/WHO.*10.*EU 2030.*20.*EU limit 40/);
    expect(legendText('lden').title).toContain('(dB)');
    expect(legendText('lden').note).toContain('55 dB');
    expect(legendText('deltaNo2').title).toMatch(/scenario − baseline/);
    initLang('fi');
    expect(legendText('no2').title).toBe('NO₂, vuosikeskiarvo julkisivulla (µg/m³)');
  });

  it('knows its views', () => {
    expect(isAirView('no2')).toBe(true);
    expect(isAirView('deltaLden')).toBe(true);
    expect(isAirView('delta')).toBe(false);
  });
});

describe('air and noise results to feature states and summary rows', () => {
  it('gives each RoadLink its values, leaving out the silent streets’ noise', () => {
    const s = featureStates(air, noise);
    expect(s.get(A)).toEqual({ no2: 14.25, deltaNo2: -3.5 });
    expect(s.get(B)).toEqual({ no2: 41, deltaNo2: 1.2, lden: 68.44, deltaLden: 1.5 });
    expect(s.size).toBe(2);
    expect(featureStates(undefined, noise).get(A)).toBeUndefined();
  });

  it('pairs a scenario’s figures with the baseline’s', () => {
    const rows = summaryRows(air, noise);
    expect(rows.map((r) => r.key)).toEqual(['no2AboveWho', 'no2AboveEu2030', 'no2AboveEuLimit', 'ldenAbove55', 'lnightAbove50', 'noxKgPerDay', 'co2KgPerDay']);
    expect(rows.map(rowText)).toEqual(['4,300 → 4,200', '900 → 800', '12 → 0', '2,300 → 2,100', '950 → 900', '63 → 61', '22,500 → 21,877']);
  });

  it('shows the baseline’s figures alone', () => {
    const rows = summaryRows({ ...air, change: undefined }, { ...noise, change: undefined });
    expect(rows.map(rowText)).toEqual(['4,200', '800', '0', '2,100', '900', '61', '21,877']);
    expect(rows.every((r) => r.base === undefined)).toBe(true);
  });

  it('lists a street’s values with their changes and the road type in words', () => {
    expect(streetRows(air.streets[B], noise.streets[B])).toEqual([
      ['NO₂', '41 µg/m³ (+1.2)'],
      ['PM10', '20 µg/m³'],
      ['PM2.5', '8 µg/m³'],
      ['Noise Lden', '68.4 dB (+1.5)'],
      ['Noise Lnight', '59.1 dB (+1.4)'],
      ['Vehicles per day', '9,000'],
      ['Street type', 'open road'],
    ]);
    const closed = Object.fromEntries(streetRows(air.streets[A], noise.streets[A]));
    expect(closed['NO₂']).toBe('14.3 µg/m³ (−3.5)');
    expect(closed['Noise Lden']).toBe('no traffic');
    expect(closed['Vehicles per day']).toBe('0 (−5,400)');
    expect(closed['Street type']).toBe('narrow street canyon');
    expect(streetRows(undefined, undefined)).toEqual([]);
  });
});
