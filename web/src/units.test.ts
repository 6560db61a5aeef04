import { describe, expect, it } from 'vitest';
import { unitSymbol } from './units';

describe('unitSymbol', () => {
  it.each([
    ['MTR', 'm'],
    ['KMT', 'km'],
    ['MTK', 'm²'],
    ['MTQ', 'm³'],
    ['GQ', 'µg/m³'],
    ['59', 'ppm'],
    ['61', 'ppb'],
    ['KMH', 'km/h'],
    ['MTS', 'm/s'],
    ['CEL', '°C'],
    ['P1', '%'],
    ['2N', 'dB'],
    ['A97', 'hPa'],
    ['KWH', 'kWh'],
    ['E32', 'veh/h'],
    ['H87', 'pcs'],
  ])('%s is %s', (code, symbol) => {
    expect(unitSymbol(code)).toBe(symbol);
  });

  it('shows dimensionless and counting units as nothing', () => {
    expect(unitSymbol('C62')).toBe('');
    expect(unitSymbol('E50')).toBe('');
  });

  it('shows nothing for no unit', () => {
    expect(unitSymbol(undefined)).toBe('');
    expect(unitSymbol('')).toBe('');
  });

  it('shows an unknown code as it is', () => {
    expect(unitSymbol('XYZ')).toBe('XYZ');
    expect(unitSymbol('mtr')).toBe('mtr');
  });

  // Known bug: the lookup is a plain object, so a code such as `toString` yields Object.prototype's function.
  it('does not take inherited object keys for units', () => {
    expect(unitSymbol('toString')).toBe('toString');
    expect(unitSymbol('constructor')).toBe('constructor');
  });
});
