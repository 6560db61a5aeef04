import { Color, createExpression } from '@maplibre/maplibre-gl-style-spec';
import type { Map as MlMap } from 'maplibre-gl';
import { describe, expect, it, vi } from 'vitest';
import { colourFor, discoverAttributes, NO_DATA, quantileBreaks, yearOfExpr } from './buildings';

type Props = Record<string, unknown>;

/** A map whose `querySourceFeatures` gives these buildings' properties. */
function fakeMap(props: Props[]) {
  const querySourceFeatures = vi.fn((_source: string, _opts: { sourceLayer: string }) => props.map((properties) => ({ properties })));
  return { map: { querySourceFeatures } as unknown as MlMap, querySourceFeatures };
}

/** Evaluates a paint or value expression for one feature, with MapLibre's own expression engine. */
function evaluate(expr: unknown, type: 'color' | 'number', properties: Props): unknown {
  const spec = { type, 'property-type': 'data-driven', expression: { parameters: ['zoom', 'feature'], interpolated: false } };
  const parsed = createExpression(expr, spec as never);
  if (parsed.result !== 'success') throw new Error(`bad expression: ${JSON.stringify(parsed.value)}`);
  return parsed.value.evaluate({ zoom: 16 }, { type: 'Polygon', properties } as never);
}

const colourAt = (paint: unknown, properties: Props): string => {
  const v = evaluate(paint, 'color', properties);
  return String(typeof v === 'string' ? Color.parse(v) : v);
};
const same = (hex: string): string => String(Color.parse(hex));

describe('quantileBreaks', () => {
  it('splits evenly spread values into equal classes', () => {
    const v = Array.from({ length: 100 }, (_, i) => i);
    expect(quantileBreaks(v, 4)).toEqual([25, 50, 75]);
    expect(quantileBreaks(v, 2)).toEqual([50]);
  });

  it('does not depend on the order of the input and does not change it', () => {
    const v = [9, 1, 7, 3, 5, 8, 2, 6, 4, 0];
    const copy = [...v];
    expect(quantileBreaks(v, 5)).toEqual([2, 4, 6, 8]);
    expect(v).toEqual(copy);
  });

  it('drops repeated breaks and breaks at the minimum, so classes are never empty', () => {
    expect(quantileBreaks([1, 1, 1, 1, 1, 1, 1, 2, 3, 4], 5)).toEqual([3]);
    expect(quantileBreaks([1, 1, 2, 2, 2, 2, 3, 3], 4)).toEqual([2, 3]);
    expect(quantileBreaks([5, 5, 5, 5], 6)).toEqual([]);
  });

  it('is strictly increasing', () => {
    const v = [3, 3, 3, 10, 10, 12, 40, 40, 40, 40, 41, 100];
    const b = quantileBreaks(v, 6);
    for (let i = 1; i < b.length; i++) expect(b[i]).toBeGreaterThan(b[i - 1]!);
    expect(b.every((x) => x > 3 && x <= 100)).toBe(true);
  });

  it('one value or one class gives no breaks', () => {
    expect(quantileBreaks([42], 6)).toEqual([]);
    expect(quantileBreaks([1, 2, 3], 1)).toEqual([]);
  });
});

describe('discoverAttributes', () => {
  it('finds numeric attributes and categorical ones with 2 to 60 values, sorted, without id and type', () => {
    const { map, querySourceFeatures } = fakeMap([
      { id: 'a', type: 'Building', height: 10, floors: 3, category: 'residential', name: 'A', note: 'x' },
      { id: 'b', type: 'Building', height: 20, category: 'office', name: 'B', note: 'x' },
      { id: 'c', type: 'Building', category: 'office', name: 'C', long: 'x'.repeat(41) },
      { id: 'd', type: 'Building', long: 'y'.repeat(41) },
    ]);
    expect(discoverAttributes(map, 'twin')).toEqual({ numeric: ['floors', 'height'], categorical: ['category', 'name'] });
    expect(querySourceFeatures).toHaveBeenCalledWith('twin', { sourceLayer: 'Building' });
  });

  it('drops categorical attributes with more than 60 distinct values', () => {
    const { map } = fakeMap(Array.from({ length: 61 }, (_, i) => ({ id: `b${i}`, ref: `r${i}` })));
    expect(discoverAttributes(map, 's').categorical).toEqual([]);
  });

  it('copes with no buildings and missing properties', () => {
    expect(discoverAttributes(fakeMap([]).map, 's')).toEqual({ numeric: [], categorical: [] });
    const map = { querySourceFeatures: () => [{ properties: null }, {}] } as unknown as MlMap;
    expect(discoverAttributes(map, 's')).toEqual({ numeric: [], categorical: [] });
  });
});

describe('colourFor', () => {
  it('the style mode has no paint of its own', () => {
    expect(colourFor(fakeMap([{ height: 1 }]).map, 's', { kind: 'style' }, 'Other')).toBeUndefined();
  });

  it('numeric: quantile classes whose legend covers min to max and whose paint colours each class', () => {
    const buildings = Array.from({ length: 60 }, (_, i) => ({ id: `b${i}`, height: i + 1 }));
    const c = colourFor(fakeMap(buildings).map, 's', { kind: 'numeric', attr: 'height' }, 'Other')!;
    expect(c).toBeDefined();
    const { legend, paint } = c;
    expect(legend.kind).toBe('classes');
    expect(legend.attr).toBe('height');
    expect(legend.noData).toBe(NO_DATA);
    expect(legend.items).toHaveLength(6);
    expect(legend.items[0]!.from).toBe(1);
    expect(legend.items[5]!.to).toBe(60);
    for (let i = 1; i < legend.items.length; i++) expect(legend.items[i]!.from).toBe(legend.items[i - 1]!.to);
    expect(new Set(legend.items.map((it) => it.color)).size).toBe(6);
    // every building gets the colour of the class its value falls in; no value is the no-data colour
    for (const b of buildings) {
      const item = legend.items.findIndex((it, i) => b.height >= it.from! && (b.height < it.to! || i === legend.items.length - 1));
      expect(colourAt(paint, b)).toBe(same(legend.items[item]!.color));
    }
    expect(colourAt(paint, {})).toBe(same(NO_DATA));
    expect(colourAt(paint, { height: 'tall' })).toBe(same(NO_DATA));
  });

  it('numeric: counts a building repeated across tiles once', () => {
    const once = [{ id: 'a', h: 1 }, { id: 'b', h: 2 }, { id: 'c', h: 3 }, { id: 'd', h: 100 }];
    const repeated = [...once, ...Array.from({ length: 50 }, () => ({ id: 'd', h: 100 }))];
    const a = colourFor(fakeMap(once).map, 's', { kind: 'numeric', attr: 'h' }, 'Other')!;
    const b = colourFor(fakeMap(repeated).map, 's', { kind: 'numeric', attr: 'h' }, 'Other')!;
    expect(b.legend).toEqual(a.legend);
  });

  it('numeric: all the same value is one class', () => {
    const c = colourFor(fakeMap([{ id: 'a', h: 7 }, { id: 'b', h: 7 }]).map, 's', { kind: 'numeric', attr: 'h' }, 'Other')!;
    expect(c.legend.items).toEqual([{ color: expect.any(String), from: 7, to: 7, label: '' }]);
  });

  it('numeric: no values, no colouring', () => {
    expect(colourFor(fakeMap([{ id: 'a', h: 'x' }]).map, 's', { kind: 'numeric', attr: 'h' }, 'Other')).toBeUndefined();
    expect(colourFor(fakeMap([]).map, 's', { kind: 'numeric', attr: 'h' }, 'Other')).toBeUndefined();
  });

  it('age: years read from startDate strings, in the legend and in the paint', () => {
    const buildings = [
      { id: 'a', startDate: '1890' },
      { id: 'b', startDate: '1925-05-01' },
      { id: 'c', startDate: 'c. 1950' },
      { id: 'd', startDate: '1975..1980' },
      { id: 'e', startDate: '2001' },
      { id: 'f', startDate: 'unknown' },
      { id: 'g' },
    ];
    const c = colourFor(fakeMap(buildings).map, 's', { kind: 'numeric', attr: 'startDate', derived: 'year' }, 'Other')!;
    expect(c.legend.items[0]!.from).toBe(1890);
    expect(c.legend.items[c.legend.items.length - 1]!.to).toBe(2001);
    expect(colourAt(c.paint, { startDate: '1890' })).toBe(same(c.legend.items[0]!.color));
    expect(colourAt(c.paint, { startDate: '2001' })).toBe(same(c.legend.items[c.legend.items.length - 1]!.color));
    expect(colourAt(c.paint, { startDate: 'unknown' })).toBe(same(NO_DATA));
    expect(colourAt(c.paint, {})).toBe(same(NO_DATA));
  });

  it('categories: most frequent first, a list value by its first element, the rest as other', () => {
    const buildings = [
      ...Array.from({ length: 5 }, (_, i) => ({ id: `r${i}`, category: 'residential' })),
      ...Array.from({ length: 3 }, (_, i) => ({ id: `o${i}`, category: 'office; retail' })),
      { id: 'c1', category: 'church' },
      { id: 'n1', category: '' },
      { id: 'n2' },
    ];
    const c = colourFor(fakeMap(buildings).map, 's', { kind: 'category', attr: 'category' }, 'Muu')!;
    expect(c.legend.kind).toBe('categories');
    expect(c.legend.items.map((i) => i.value)).toEqual(['residential', 'office', 'church', '']);
    expect(c.legend.items[3]).toMatchObject({ label: 'Muu', value: '' });
    const colourOf = (v: string) => c.legend.items.find((i) => i.value === v)!.color;
    expect(colourAt(c.paint, { category: 'residential' })).toBe(same(colourOf('residential')));
    expect(colourAt(c.paint, { category: 'office; retail' })).toBe(same(colourOf('office')));
    expect(colourAt(c.paint, { category: 'office' })).toBe(same(colourOf('office')));
    expect(colourAt(c.paint, { category: 'garage' })).toBe(same(colourOf('')));
    expect(colourAt(c.paint, {})).toBe(same(colourOf('')));
  });

  it('categories: at most 9 named, the rest are other', () => {
    const buildings = Array.from({ length: 20 }, (_, i) => ({ id: `b${i}`, use: `u${String(i).padStart(2, '0')}` }));
    const c = colourFor(fakeMap(buildings).map, 's', { kind: 'category', attr: 'use' }, 'Other')!;
    expect(c.legend.items).toHaveLength(10);
    expect(new Set(c.legend.items.map((i) => i.color)).size).toBe(10);
    expect(c.legend.items[9]!.label).toBe('Other');
  });

  it('categories: none, no colouring', () => {
    expect(colourFor(fakeMap([{ id: 'a' }]).map, 's', { kind: 'category', attr: 'category' }, 'Other')).toBeUndefined();
  });
});

describe('yearOfExpr', () => {
  it.each([
    ['1925', 1925],
    ['1925-05-01', 1925],
    ['c. 1950', 1950],
    ['1975..1980', 1975],
    ['built in 2001', 2001],
    ['abcdefghijkl2010', 2010],
    ['abcdefghijklm2010', 0],
    ['19x5', 0],
    ['unknown', 0],
    ['', 0],
  ])('%j → %d', (startDate, year) => {
    expect(evaluate(yearOfExpr('startDate'), 'number', { startDate })).toBe(year);
  });

  it('a missing or numeric attribute', () => {
    expect(evaluate(yearOfExpr('startDate'), 'number', {})).toBe(0);
    expect(evaluate(yearOfExpr('startDate'), 'number', { startDate: 1984 })).toBe(1984);
  });
});
