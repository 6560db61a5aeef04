// Legends read from a layer's paint expressions: a constant colour is one swatch, `match` on a property gives one
// entry per value (the fallback as "other"), `interpolate` a continuous ramp and `step` classes.

export type Swatch = 'fill' | 'line' | 'dash' | 'circle' | 'extrusion';

export type Legend =
  | { kind: 'single'; color: string; swatch: Swatch }
  | { kind: 'categories'; property: string; swatch: Swatch; items: { values: string[]; color: string }[]; other?: string }
  | { kind: 'ramp'; property: string; swatch: Swatch; stops: [number, string][] }
  | { kind: 'classes'; property: string; swatch: Swatch; classes: { from?: number; to?: number; color: string }[] };

type Expr = unknown;

/** The property an expression reads: `["get", p]`, or inside `coalesce`/`to-number`/`to-string`/`number`. */
export function propertyOf(e: Expr): string | undefined {
  if (!Array.isArray(e)) return undefined;
  if (e[0] === 'get' && typeof e[1] === 'string') return e[1];
  for (const x of e.slice(1)) {
    const p = propertyOf(x);
    if (p) return p;
  }
  return undefined;
}

function isColor(v: unknown): v is string {
  return typeof v === 'string' && (v.startsWith('#') || v.startsWith('rgb') || v.startsWith('hsl') || /^[a-z]+$/.test(v));
}

/** A legend for a colour paint value, or undefined where it cannot be read (feature-state, nested logic). */
export function legendOf(paint: Expr, swatch: Swatch): Legend | undefined {
  if (isColor(paint)) return { kind: 'single', color: paint, swatch };
  if (!Array.isArray(paint)) return undefined;
  const [op] = paint;
  if (op === 'match') {
    const property = propertyOf(paint[1]);
    if (!property) return undefined;
    const items: { values: string[]; color: string }[] = [];
    for (let i = 2; i + 1 < paint.length; i += 2) {
      const label = paint[i];
      const color = paint[i + 1];
      if (!isColor(color)) return undefined;
      const values = (Array.isArray(label) ? label : [label]).map(String);
      items.push({ values, color });
    }
    const other = paint.length % 2 === 1 ? paint[paint.length - 1] : undefined;
    return { kind: 'categories', property, swatch, items, other: isColor(other) ? other : undefined };
  }
  if (op === 'interpolate' || op === 'interpolate-hcl' || op === 'interpolate-lab') {
    const property = propertyOf(paint[2]);
    if (!property) return undefined;
    const stops: [number, string][] = [];
    for (let i = 3; i + 1 < paint.length; i += 2) {
      const z = paint[i];
      const c = paint[i + 1];
      if (typeof z !== 'number' || !isColor(c)) return undefined;
      stops.push([z, c]);
    }
    return { kind: 'ramp', property, swatch, stops };
  }
  if (op === 'step') {
    const property = propertyOf(paint[1]);
    if (!property || !isColor(paint[2])) return undefined;
    const classes: { from?: number; to?: number; color: string }[] = [];
    let from: number | undefined;
    let color = paint[2] as string;
    for (let i = 3; i + 1 < paint.length; i += 2) {
      const z = paint[i] as number;
      classes.push({ from, to: z, color });
      from = z;
      color = paint[i + 1] as string;
    }
    classes.push({ from, color });
    return { kind: 'classes', property, swatch, classes };
  }
  if (op === 'case' || op === 'coalesce') {
    // `["case", cond, special, fallback]`: the legend of the fallback (highlights and the like are not data)
    return legendOf(paint[paint.length - 1], swatch);
  }
  return undefined;
}

/** The colour paint property of a layer type and the swatch drawn for it. */
export function colorPaintOf(layerType: string): { prop: string; swatch: Swatch } | undefined {
  switch (layerType) {
    case 'fill':
      return { prop: 'fill-color', swatch: 'fill' };
    case 'line':
      return { prop: 'line-color', swatch: 'line' };
    case 'circle':
      return { prop: 'circle-color', swatch: 'circle' };
    case 'fill-extrusion':
      return { prop: 'fill-extrusion-color', swatch: 'extrusion' };
    default:
      return undefined;
  }
}

/** The opacity paint properties of a layer type. */
export function opacityPropsOf(layerType: string): string[] {
  switch (layerType) {
    case 'fill':
      return ['fill-opacity'];
    case 'line':
      return ['line-opacity'];
    case 'circle':
      return ['circle-opacity', 'circle-stroke-opacity'];
    case 'fill-extrusion':
      return ['fill-extrusion-opacity'];
    case 'symbol':
      return ['icon-opacity', 'text-opacity'];
    case 'raster':
      return ['raster-opacity'];
    case 'heatmap':
      return ['heatmap-opacity'];
    default:
      return [];
  }
}
