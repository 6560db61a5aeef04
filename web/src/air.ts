// Air quality and noise of a scenario's run on the map (`/api/scenarios/{id}/air` and `/noise`): the pure part. The
// values go onto the `RoadLink` lines of the vector tiles as feature state (keyed by the `RoadLink` id, which the
// source promotes to the feature id), one state key per view, so that switching views only changes the paint. Here:
// the colour classes and their legend, the feature states, the summary rows and a street's values. The panel and the
// layer are in scenarios.ts.

import type { ExpressionSpecification } from 'maplibre-gl';
import type { AirResults, AirStreet, NoiseResults, NoiseStreet } from './api';
import { fmtNumber, t } from './i18n';

/** What the `RoadLink` lines show: NO2, its change, noise (Lden) or its change. */
export type AirView = 'no2' | 'deltaNo2' | 'lden' | 'deltaLden';
export const AIR_VIEWS: readonly AirView[] = ['no2', 'deltaNo2', 'lden', 'deltaLden'];

export const AIR_SOURCE = 'app-scenario-links';
export const AIR_LAYER = 'app-scenario-air';

export function isAirView(v: string): v is AirView {
  return (AIR_VIEWS as readonly string[]).includes(v);
}

interface Ramp {
  unit: 'µg/m³' | 'dB';
  /** Class breaks: a value `b[i-1] ≤ v < b[i]` is in class `i`. */
  breaks: number[];
  colors: string[];
  /** Changes: signed labels. */
  diverging: boolean;
}

const DIVERGING = ['#2166ac', '#67a9cf', '#bdbdbd', '#f08c00', '#c62828'];

/** NO2 at the WHO 2021 guideline (10), the EU 2030 limit (20) and today's EU limit (40, µg/m³); Lden from the EU
 * noise-mapping threshold (55 dB) in 5 dB bands; changes diverging around "about the same". */
export const RAMPS: Record<AirView, Ramp> = {
  no2: { unit: 'µg/m³', breaks: [10, 20, 40], colors: ['#1a9850', '#fee08b', '#f46d43', '#a50026'], diverging: false },
  deltaNo2: { unit: 'µg/m³', breaks: [-2, -0.5, 0.5, 2], colors: DIVERGING, diverging: true },
  lden: { unit: 'dB', breaks: [55, 60, 65, 70, 75], colors: ['#c7e9c0', '#ffffb2', '#fecc5c', '#fd8d3c', '#f03b20', '#bd0026'], diverging: false },
  deltaLden: { unit: 'dB', breaks: [-3, -1, 1, 3], colors: DIVERGING, diverging: true },
};

/** The colour of a class (the index of the class a value falls in). */
export function classOf(view: AirView, v: number): number {
  const b = RAMPS[view].breaks;
  let i = 0;
  while (i < b.length && v >= b[i]!) i++;
  return i;
}

/** The `line-color` of a view: a `step` on the view's feature state; transparent where a street has no value. */
export function colorExpression(view: AirView): ExpressionSpecification {
  const { breaks, colors } = RAMPS[view];
  const step: unknown[] = ['step', ['to-number', ['feature-state', view], 0], colors[0]];
  breaks.forEach((b, i) => step.push(b, colors[i + 1]));
  return ['case', ['==', ['typeof', ['feature-state', view]], 'number'], step as ExpressionSpecification, 'rgba(0, 0, 0, 0)'];
}

function fmtSigned(n: number, diverging: boolean): string {
  const s = fmtNumber(Math.abs(n), 1);
  if (!diverging || n === 0) return s;
  return n > 0 ? `+${s}` : `−${s}`;
}

/** The legend of a view: each class's colour and range ("< 10", "10–20", "≥ 40"). */
export function legendItems(view: AirView): { color: string; label: string }[] {
  const { breaks, colors, diverging } = RAMPS[view];
  const f = (n: number) => fmtSigned(n, diverging);
  return colors.map((color, i) => ({
    color,
    label: i === 0 ? `< ${f(breaks[0]!)}` : i === breaks.length ? `≥ ${f(breaks[i - 1]!)}` : `${f(breaks[i - 1]!)} – ${f(breaks[i]!)}`,
  }));
}

/** The legend's title, naming the unit, and its note, naming the thresholds. */
export function legendText(view: AirView): { title: string; note: string } {
  return { title: t(`scenarios.air.legend.${view}`, { unit: RAMPS[view].unit }), note: t(`scenarios.air.note.${view}`) };
}

export type StreetState = Partial<Record<AirView, number>>;

/** The feature state of each street (`RoadLink` id) from the air and noise results: a number per view it has. */
export function featureStates(air: AirResults | undefined, noise: NoiseResults | undefined): Map<string, StreetState> {
  const out = new Map<string, StreetState>();
  const put = (id: string, k: AirView, v: unknown) => {
    if (typeof v !== 'number' || !Number.isFinite(v)) return;
    let s = out.get(id);
    if (!s) out.set(id, (s = {}));
    s[k] = v;
  };
  for (const [id, s] of Object.entries(air?.streets ?? {})) {
    put(id, 'no2', s.no2);
    put(id, 'deltaNo2', s.deltaNo2);
  }
  for (const [id, s] of Object.entries(noise?.streets ?? {})) {
    put(id, 'lden', s.lden);
    put(id, 'deltaLden', s.deltaLden);
  }
  return out;
}

export type SummaryKey = 'no2AboveWho' | 'no2AboveEu2030' | 'no2AboveEuLimit' | 'ldenAbove55' | 'lnightAbove50' | 'noxKgPerDay' | 'co2KgPerDay';

/** One row of the summary: the baseline's figure (a scenario's results) and this one's. */
export interface SummaryRow {
  key: SummaryKey;
  base?: number;
  value: number | undefined;
}

/** The summary's rows: residents above the NO2 thresholds and the noise thresholds, NOx and CO2 emitted; from the
 * `change` pairs for a scenario, from the summary alone for the baseline. */
export function summaryRows(air: AirResults, noise: NoiseResults): SummaryRow[] {
  const a = air.summary;
  const n = noise.summary.noise;
  const row = (key: SummaryKey, pair: [number, number] | undefined, value: number | undefined): SummaryRow =>
    pair ? { key, base: pair[0], value: pair[1] } : { key, value };
  return [
    row('no2AboveWho', air.change?.no2AboveWho, a.no2?.aboveWho),
    row('no2AboveEu2030', air.change?.no2AboveEu2030, a.no2?.aboveEu2030),
    row('no2AboveEuLimit', air.change?.no2AboveEuLimit, a.no2?.aboveEuLimit),
    row('ldenAbove55', noise.change?.ldenAbove55, n?.endLden),
    row('lnightAbove50', noise.change?.lnightAbove50, n?.endLnight),
    row('noxKgPerDay', air.change?.noxKgPerDay, a.emissionsKgPerDay?.nox),
    row('co2KgPerDay', air.change?.co2KgPerDay, a.emissionsKgPerDay?.co2),
  ];
}

/** A row's figures: "1 234 → 1 180" for a scenario, "1 234" for the baseline. */
export function rowText(r: SummaryRow): string {
  const f = (v: number | undefined) => (v === undefined || v === null ? '–' : fmtNumber(v, 0));
  return r.base === undefined ? f(r.value) : `${f(r.base)} → ${f(r.value)}`;
}

/** A street's values for the feature panel: `[label, value]`, with the change against the baseline in brackets. */
export function streetRows(a: AirStreet | undefined, n: NoiseStreet | undefined): [string, string][] {
  const rows: [string, string][] = [];
  const num = (v: number | null | undefined, unit: string, d: number | null | undefined, digits = 1): string | undefined => {
    if (typeof v !== 'number') return undefined;
    const delta = typeof d === 'number' ? ` (${fmtSigned(d, true)})` : '';
    return `${fmtNumber(v, digits)}${unit ? ` ${unit}` : ''}${delta}`;
  };
  const add = (key: string, value: string | undefined) => {
    if (value !== undefined) rows.push([t(`scenarios.air.street.${key}`), value]);
  };
  add('no2', num(a?.no2, 'µg/m³', a?.deltaNo2));
  add('pm10', num(a?.pm10, 'µg/m³', a?.deltaPm10));
  add('pm25', num(a?.pm25, 'µg/m³', a?.deltaPm25));
  if (n) {
    add('lden', n.lden === null ? t('scenarios.air.street.silent') : num(n.lden, 'dB', n.deltaLden));
    add('lnight', n.lnight === null ? t('scenarios.air.street.silent') : num(n.lnight, 'dB', n.deltaLnight));
  }
  const vpd = a?.vehiclesPerDay ?? n?.vehiclesPerDay;
  const dv = a?.deltaVehiclesPerDay ?? n?.deltaVehiclesPerDay;
  if (typeof vpd === 'number') add('vehicles', `${fmtNumber(vpd, 0)}${typeof dv === 'number' ? ` (${fmtSigned(Math.round(dv), true)})` : ''}`);
  if (typeof a?.roadType === 'number') add('roadType', t(`scenarios.air.roadTypes.t${a.roadType}`));
  return rows;
}
