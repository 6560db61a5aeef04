import { describe, expect, it } from 'vitest';
import { bboxOf, regexEscape } from './search';

describe('regexEscape', () => {
  it('escapes every regex metacharacter and the double quote', () => {
    expect(regexEscape('a.b*c+d?e^f$g(h)i[j]k{l}m|n\\o"p')).toBe('a\\.b\\*c\\+d\\?e\\^f\\$g\\(h\\)i\\[j\\]k\\{l\\}m\\|n\\\\o\\"p');
  });

  it('leaves letters, digits, spaces and non-ASCII alone', () => {
    expect(regexEscape('Kauppatori 1 – Ääkkönen')).toBe('Kauppatori 1 – Ääkkönen');
  });

  it('the escaped text matches itself literally, case-insensitively', () => {
    for (const s of ['St. John (old)', 'a+b', '[x]', 'C:\\path', 'what?', '$5 {cheap}', 'a|b']) {
      const re = new RegExp(`^${regexEscape(s)}$`, 'i');
      expect(re.test(s)).toBe(true);
      expect(re.test(s.toUpperCase())).toBe(true);
      expect(re.test(`${s}x`)).toBe(false);
    }
  });
});

describe('bboxOf', () => {
  it('a point is a box of no size', () => {
    expect(bboxOf({ type: 'Point', coordinates: [24.95, 60.17] })).toEqual([24.95, 60.17, 24.95, 60.17]);
  });

  it('a line', () => {
    expect(bboxOf({ type: 'LineString', coordinates: [[24.9, 60.2], [25.1, 60.1], [25.0, 60.3]] })).toEqual([24.9, 60.1, 25.1, 60.3]);
  });

  it('a polygon with a hole and a multipolygon', () => {
    const poly = { type: 'Polygon', coordinates: [[[0, 0], [4, 0], [4, 3], [0, 3], [0, 0]], [[1, 1], [2, 1], [2, 2], [1, 1]]] };
    expect(bboxOf(poly)).toEqual([0, 0, 4, 3]);
    const multi = { type: 'MultiPolygon', coordinates: [[[[-1, -2], [0, 0], [-1, -2]]], [[[5, 6], [7, 8], [5, 6]]]] };
    expect(bboxOf(multi)).toEqual([-1, -2, 7, 8]);
  });

  it('ignores a third coordinate', () => {
    expect(bboxOf({ type: 'LineString', coordinates: [[1, 2, 100], [3, 4, -5]] })).toEqual([1, 2, 3, 4]);
  });

  it('no geometry or no coordinates, no box', () => {
    expect(bboxOf(undefined)).toBeUndefined();
    expect(bboxOf({ type: 'MultiPoint', coordinates: [] })).toBeUndefined();
    expect(bboxOf({ type: 'Point', coordinates: null })).toBeUndefined();
  });
});
