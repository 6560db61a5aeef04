// "Colour buildings by": the style's own colour, height, use (category), age (from startDate), or any numeric
// attribute the Building tiles carry. Numeric attributes are classed into quantiles of the buildings loaded so far,
// so the classes follow the city in view rather than fixed guesses; categories get a qualitative palette.

import type { ExpressionSpecification, Map as MlMap } from 'maplibre-gl';

export const BUILDING_LAYER = 'buildings';
/** The style's flat buildings of the lower zooms (3D from zoom 14), coloured alike. */
export const BUILDING_FLAT_LAYER = 'buildings-flat';
export const NO_DATA = '#b9b4ad';

/** Sequential, colour-blind safe (viridis-like, light to dark so tall/old stand out against the light ground). */
const SEQUENTIAL = ['#fde725', '#7ad151', '#22a884', '#2a788e', '#414487', '#440154'];
/** Qualitative (Okabe–Ito, then Tableau-like). */
const QUALITATIVE = ['#0072b2', '#e69f00', '#009e73', '#cc79a7', '#d55e00', '#56b4e9', '#f0e442', '#7f3c8d', '#11a579', '#e73f74'];

export type ColourMode =
  | { kind: 'style' }
  | { kind: 'numeric'; attr: string; derived?: 'year' }
  | { kind: 'category'; attr: string };

export interface ColourChoice {
  key: string;
  mode: ColourMode;
}

export interface BuildingLegend {
  kind: 'classes' | 'categories';
  attr: string;
  items: { label: string; color: string; from?: number; to?: number; value?: string }[];
  noData: string;
}

function firstYear(v: unknown): number | undefined {
  const m = /(\d{4})/.exec(String(v ?? ''));
  return m ? Number(m[1]) : undefined;
}

function valueOf(props: Record<string, unknown>, mode: ColourMode): number | string | undefined {
  if (mode.kind === 'style') return undefined;
  const v = props[mode.attr];
  if (mode.kind === 'numeric') {
    if (mode.derived === 'year') return firstYear(v);
    return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
  }
  if (v === undefined || v === null || v === '') return undefined;
  return String(v).split('; ')[0];
}

/** The attributes of the buildings loaded so far: numeric ones and categorical ones with few distinct values. */
export function discoverAttributes(map: MlMap, source: string): { numeric: string[]; categorical: string[] } {
  const feats = map.querySourceFeatures(source, { sourceLayer: 'Building' });
  const nums = new Map<string, number>();
  const cats = new Map<string, Set<string>>();
  for (const f of feats) {
    for (const [k, v] of Object.entries(f.properties ?? {})) {
      if (k === 'id' || k === 'type') continue;
      if (typeof v === 'number') nums.set(k, (nums.get(k) ?? 0) + 1);
      else if (typeof v === 'string' && v.length <= 40) {
        const s = cats.get(k) ?? new Set<string>();
        s.add(v);
        cats.set(k, s);
      }
    }
  }
  return {
    numeric: [...nums.keys()].sort(),
    categorical: [...cats.entries()].filter(([, s]) => s.size >= 2 && s.size <= 60).map(([k]) => k).sort(),
  };
}

export function quantileBreaks(values: number[], classes: number): number[] {
  const v = [...values].sort((a, b) => a - b);
  const breaks: number[] = [];
  for (let i = 1; i < classes; i++) {
    const q = v[Math.min(v.length - 1, Math.floor((i * v.length) / classes))]!;
    if (q > v[0]! && (!breaks.length || q > breaks[breaks.length - 1]!)) breaks.push(q);
  }
  return breaks;
}

/** The paint expression and legend for a mode, from the buildings loaded in `source`. */
export function colourFor(
  map: MlMap,
  source: string,
  mode: ColourMode,
  otherLabel: string,
): { paint: ExpressionSpecification | string; legend: BuildingLegend } | undefined {
  if (mode.kind === 'style') return undefined;
  const feats = map.querySourceFeatures(source, { sourceLayer: 'Building' });
  if (mode.kind === 'numeric') {
    const values: number[] = [];
    const seen = new Set<string | number | undefined>();
    for (const f of feats) {
      // tiles repeat a building that crosses their edges: count each once
      const id = f.properties?.id as string | undefined;
      if (seen.has(id)) continue;
      seen.add(id);
      const v = valueOf(f.properties ?? {}, mode);
      if (typeof v === 'number') values.push(v);
    }
    if (!values.length) return undefined;
    const breaks = quantileBreaks(values, SEQUENTIAL.length);
    const colors = SEQUENTIAL.slice(0, breaks.length + 1);
    const numberInput: ExpressionSpecification =
      mode.derived === 'year' ? yearOfExpr(mode.attr) : ['to-number', ['get', mode.attr], -1e308];
    const step: unknown[] = ['step', numberInput, colors[0]];
    breaks.forEach((b, i) => step.push(b, colors[i + 1]));
    const hasValue: ExpressionSpecification =
      mode.derived === 'year' ? ['>', yearOfExpr(mode.attr), 0] : ['==', ['typeof', ['get', mode.attr]], 'number'];
    const paint = ['case', hasValue, step, NO_DATA] as unknown as ExpressionSpecification;
    const min = Math.min(...values);
    const max = Math.max(...values);
    const items = colors.map((color, i) => ({
      color,
      from: i === 0 ? min : breaks[i - 1]!,
      to: i === colors.length - 1 ? max : breaks[i]!,
      label: '',
    }));
    return { paint, legend: { kind: 'classes', attr: mode.attr, items, noData: NO_DATA } };
  }
  // categories: the most frequent first, the rest as "other"
  const counts = new Map<string, number>();
  const seen = new Set<string | undefined>();
  for (const f of feats) {
    const id = f.properties?.id as string | undefined;
    if (seen.has(id)) continue;
    seen.add(id);
    const v = valueOf(f.properties ?? {}, mode);
    if (typeof v === 'string') counts.set(v, (counts.get(v) ?? 0) + 1);
  }
  if (!counts.size) return undefined;
  const top = [...counts.entries()].sort((a, b) => b[1] - a[1]).slice(0, QUALITATIVE.length - 1);
  const other = '#8c8c8c';
  // a list value ("a; b") is coloured by its first element
  const attr: ExpressionSpecification = ['to-string', ['coalesce', ['get', mode.attr], '']];
  const first: ExpressionSpecification = [
    'case',
    ['>=', ['index-of', '; ', attr], 0],
    ['slice', attr, 0, ['index-of', '; ', attr]],
    attr,
  ];
  const match: unknown[] = ['match', first];
  top.forEach(([v], i) => match.push(v, QUALITATIVE[i]));
  match.push(other);
  const items = top.map(([v], i) => ({ value: v, label: v, color: QUALITATIVE[i]! }));
  items.push({ value: '', label: otherLabel, color: other });
  return {
    paint: match as ExpressionSpecification,
    legend: { kind: 'categories', attr: mode.attr, items, noData: NO_DATA },
  };
}

/** The first four-digit year in a string attribute, or 0. */
export function yearOfExpr(attr: string): ExpressionSpecification {
  // the first run of four digits among the first 16 characters
  const s: ExpressionSpecification = ['to-string', ['coalesce', ['get', attr], '']];
  // `to-number` of a non-number errors rather than giving null; guard each with a regex-free digit test
  const guarded: unknown[] = ['case'];
  for (let i = 0; i <= 12; i++) {
    const part: ExpressionSpecification = ['slice', s, i, i + 4];
    const digits: ExpressionSpecification = [
      'all',
      ['>=', ['length', s], i + 4],
      ...[0, 1, 2, 3].map(
        (j) =>
          [
            'all',
            ['>=', ['slice', s, i + j, i + j + 1], '0'],
            ['<=', ['slice', s, i + j, i + j + 1], '9'],
          ] as ExpressionSpecification,
      ),
    ];
    guarded.push(digits, ['to-number', part]);
  }
  guarded.push(0);
  return guarded as ExpressionSpecification;
}
