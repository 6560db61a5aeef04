import { describe, expect, it } from 'vitest';
import { clampShare } from './compare';
import { EDIT_SHAPE_LAYERS, EDIT_SHAPES_SOURCE, lineLengthM, minPoints, ringAreaM2, shapeOf, SKETCH_LAYERS, SKETCH_SOURCE, sketchIds, type Position } from './draw';

describe('sketchIds', () => {
  it('keeps the scenario editor’s ids by default and gives a prefixed sketch its own', () => {
    expect(sketchIds()).toEqual({ source: SKETCH_SOURCE, layers: SKETCH_LAYERS, editSource: EDIT_SHAPES_SOURCE, editLayers: EDIT_SHAPE_LAYERS });
    const own = sketchIds('app-whatif');
    expect(own.source).toBe('app-whatif-sketch');
    const all = (ids: ReturnType<typeof sketchIds>) => [ids.source, ...Object.values(ids.layers), ids.editSource, ...Object.values(ids.editLayers)];
    expect(all(own).filter((id) => all(sketchIds()).includes(id))).toEqual([]);
    expect(new Set(all(own)).size).toBe(7);
  });
});

describe('shapeOf', () => {
  it('needs three corners for an area and two points for a line', () => {
    expect(minPoints('area')).toBe(3);
    expect(minPoints('line')).toBe(2);
    expect(shapeOf('area', [[0, 0], [1, 0]])).toBeUndefined();
    expect(shapeOf('line', [[0, 0]])).toBeUndefined();
  });

  it('closes an area into a GeoJSON Polygon ring', () => {
    const pts: Position[] = [[24.94, 60.16], [24.95, 60.16], [24.95, 60.17]];
    const s = shapeOf('area', pts);
    expect(s).toEqual({
      kind: 'area',
      polygon: { type: 'Polygon', coordinates: [[[24.94, 60.16], [24.95, 60.16], [24.95, 60.17], [24.94, 60.16]]] },
    });
    // the points drawn are not changed
    expect(pts).toHaveLength(3);
  });

  it('keeps a line’s points in the order drawn', () => {
    expect(shapeOf('line', [[1, 2], [3, 4], [5, 6]])).toEqual({ kind: 'line', path: [[1, 2], [3, 4], [5, 6]] });
  });
});

describe('lineLengthM', () => {
  it('is 0 for fewer than two points', () => {
    expect(lineLengthM([])).toBe(0);
    expect(lineLengthM([[24.9, 60.1]])).toBe(0);
  });

  it('measures a degree of latitude (about 111.2 km) and a degree of longitude at 60° (half of that)', () => {
    expect(lineLengthM([[0, 0], [0, 1]])).toBeCloseTo(111_195, -1);
    expect(lineLengthM([[24, 60], [25, 60]])).toBeCloseTo(55_597, -2);
  });

  it('adds up the parts of a line', () => {
    const a = lineLengthM([[24.94, 60.16], [24.95, 60.16]]);
    const b = lineLengthM([[24.95, 60.16], [24.95, 60.17]]);
    expect(lineLengthM([[24.94, 60.16], [24.95, 60.16], [24.95, 60.17]])).toBeCloseTo(a + b, 6);
  });
});

describe('ringAreaM2', () => {
  it('is the area of a small square, whichever way the ring turns', () => {
    // 0.01° × 0.01° at the equator: about 1113 m × 1113 m
    const ring: Position[] = [[0, 0], [0.01, 0], [0.01, 0.01], [0, 0.01], [0, 0]];
    const area = ringAreaM2(ring);
    expect(area / 1e6).toBeCloseTo(1.2364, 3);
    expect(ringAreaM2([...ring].reverse())).toBeCloseTo(area, 6);
  });

  it('shrinks with the cosine of the latitude', () => {
    const at = (lat: number): Position[] => [[0, lat], [0.01, lat], [0.01, lat + 0.01], [0, lat + 0.01], [0, lat]];
    expect(ringAreaM2(at(60)) / ringAreaM2(at(0))).toBeCloseTo(0.5, 2);
  });
});

describe('clampShare', () => {
  it('keeps the divider on the map', () => {
    expect(clampShare(0.3)).toBe(0.3);
    expect(clampShare(-1)).toBe(0.02);
    expect(clampShare(2)).toBe(0.98);
    expect(clampShare(Number.NaN)).toBe(0.5);
  });
});
