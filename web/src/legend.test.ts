import { describe, expect, it } from 'vitest';
import { colorPaintOf, legendOf, opacityPropsOf, propertyOf } from './legend';

describe('propertyOf', () => {
  it('reads ["get", p]', () => {
    expect(propertyOf(['get', 'height'])).toBe('height');
  });

  it('looks inside wrappers, depth first', () => {
    expect(propertyOf(['to-number', ['get', 'height'], 0])).toBe('height');
    expect(propertyOf(['coalesce', ['get', 'a'], ['get', 'b']])).toBe('a');
    expect(propertyOf(['to-string', ['coalesce', ['literal', 1], ['number', ['get', 'lanes']]]])).toBe('lanes');
  });

  it('is undefined where no property is read', () => {
    expect(propertyOf('height')).toBeUndefined();
    expect(propertyOf(['zoom'])).toBeUndefined();
    expect(propertyOf(['get', 1])).toBeUndefined();
    expect(propertyOf(['feature-state', 'hover'])).toBeUndefined();
    expect(propertyOf(undefined)).toBeUndefined();
  });
});

describe('legendOf', () => {
  it('a constant colour is one swatch', () => {
    expect(legendOf('#ff0000', 'fill')).toEqual({ kind: 'single', color: '#ff0000', swatch: 'fill' });
    expect(legendOf('rgba(0, 0, 0, 0.5)', 'line')).toEqual({ kind: 'single', color: 'rgba(0, 0, 0, 0.5)', swatch: 'line' });
    expect(legendOf('hsl(120, 50%, 50%)', 'circle')).toMatchObject({ kind: 'single' });
    expect(legendOf('white', 'circle')).toEqual({ kind: 'single', color: 'white', swatch: 'circle' });
  });

  it('a non-colour constant has no legend', () => {
    expect(legendOf(3, 'fill')).toBeUndefined();
    expect(legendOf('Not a colour', 'fill')).toBeUndefined();
    expect(legendOf(undefined, 'fill')).toBeUndefined();
    expect(legendOf(['zoom'], 'fill')).toBeUndefined();
  });

  it('match gives one entry per label, arrays of labels kept together, and the fallback as other', () => {
    const paint = ['match', ['get', 'roadClass'], 'motorway', '#e15759', ['primary', 'secondary'], '#f28e2b', '#cccccc'];
    expect(legendOf(paint, 'line')).toEqual({
      kind: 'categories',
      property: 'roadClass',
      swatch: 'line',
      items: [
        { values: ['motorway'], color: '#e15759' },
        { values: ['primary', 'secondary'], color: '#f28e2b' },
      ],
      other: '#cccccc',
    });
  });

  it('match labels are strings even when numbers or booleans', () => {
    const l = legendOf(['match', ['get', 'lanes'], 1, '#111111', [2, 3], '#222222', true, '#333333', '#000000'], 'line');
    expect(l).toMatchObject({
      items: [
        { values: ['1'], color: '#111111' },
        { values: ['2', '3'], color: '#222222' },
        { values: ['true'], color: '#333333' },
      ],
    });
  });

  it('match without a colour fallback has no other', () => {
    const l = legendOf(['match', ['get', 'k'], 'a', '#111111', ['get', 'colour']], 'fill');
    expect(l).toMatchObject({ kind: 'categories', other: undefined });
  });

  it('match whose outputs are not colours, or with no property, has no legend', () => {
    expect(legendOf(['match', ['get', 'k'], 'a', ['get', 'c'], '#000000'], 'fill')).toBeUndefined();
    expect(legendOf(['match', ['zoom'], 1, '#111111', '#000000'], 'fill')).toBeUndefined();
  });

  it('interpolate gives a ramp with its stops', () => {
    const paint = ['interpolate', ['linear'], ['get', 'height'], 0, '#fde725', 20, '#22a884', 60, '#440154'];
    expect(legendOf(paint, 'extrusion')).toEqual({
      kind: 'ramp',
      property: 'height',
      swatch: 'extrusion',
      stops: [
        [0, '#fde725'],
        [20, '#22a884'],
        [60, '#440154'],
      ],
    });
    expect(legendOf(['interpolate-hcl', ['linear'], ['get', 'NO2'], 0, 'green', 200, 'red'], 'circle')).toMatchObject({
      kind: 'ramp',
      property: 'NO2',
    });
  });

  it('interpolate over zoom, or with non-numeric stops, has no legend', () => {
    expect(legendOf(['interpolate', ['linear'], ['zoom'], 10, '#000000', 16, '#ffffff'], 'fill')).toBeUndefined();
    expect(legendOf(['interpolate', ['linear'], ['get', 'h'], 'a', '#000000'], 'fill')).toBeUndefined();
  });

  it('step gives classes with open ends', () => {
    const paint = ['step', ['get', 'LAeq'], '#2a9d8f', 55, '#e9c46a', 65, '#e76f51'];
    expect(legendOf(paint, 'circle')).toEqual({
      kind: 'classes',
      property: 'LAeq',
      swatch: 'circle',
      classes: [
        { from: undefined, to: 55, color: '#2a9d8f' },
        { from: 55, to: 65, color: '#e9c46a' },
        { from: 65, color: '#e76f51' },
      ],
    });
  });

  it('step with only a base colour is one open class', () => {
    expect(legendOf(['step', ['get', 'x'], '#123456'], 'fill')).toEqual({
      kind: 'classes',
      property: 'x',
      swatch: 'fill',
      classes: [{ from: undefined, color: '#123456' }],
    });
  });

  it('case and coalesce give the legend of their fallback', () => {
    const paint = ['case', ['boolean', ['feature-state', 'selected'], false], '#0b57d0', ['match', ['get', 'k'], 'a', '#111111', '#999999']];
    expect(legendOf(paint, 'fill')).toMatchObject({ kind: 'categories', property: 'k', other: '#999999' });
    expect(legendOf(['coalesce', ['get', 'colour'], '#abcdef'], 'fill')).toEqual({ kind: 'single', color: '#abcdef', swatch: 'fill' });
  });

  it('unknown operators have no legend', () => {
    expect(legendOf(['feature-state', 'colour'], 'fill')).toBeUndefined();
    expect(legendOf(['to-color', ['get', 'c']], 'fill')).toBeUndefined();
  });
});

describe('layer types', () => {
  it('colorPaintOf', () => {
    expect(colorPaintOf('fill')).toEqual({ prop: 'fill-color', swatch: 'fill' });
    expect(colorPaintOf('line')).toEqual({ prop: 'line-color', swatch: 'line' });
    expect(colorPaintOf('circle')).toEqual({ prop: 'circle-color', swatch: 'circle' });
    expect(colorPaintOf('fill-extrusion')).toEqual({ prop: 'fill-extrusion-color', swatch: 'extrusion' });
    expect(colorPaintOf('symbol')).toBeUndefined();
    expect(colorPaintOf('raster')).toBeUndefined();
  });

  it('opacityPropsOf', () => {
    expect(opacityPropsOf('fill')).toEqual(['fill-opacity']);
    expect(opacityPropsOf('circle')).toEqual(['circle-opacity', 'circle-stroke-opacity']);
    expect(opacityPropsOf('symbol')).toEqual(['icon-opacity', 'text-opacity']);
    expect(opacityPropsOf('fill-extrusion')).toEqual(['fill-extrusion-opacity']);
    expect(opacityPropsOf('heatmap')).toEqual(['heatmap-opacity']);
    expect(opacityPropsOf('raster')).toEqual(['raster-opacity']);
    expect(opacityPropsOf('line')).toEqual(['line-opacity']);
    expect(opacityPropsOf('background')).toEqual([]);
  });
});
