import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { Entity } from './api';
import { detectSensorTypes, mainReading, pointOf, readingAt } from './sensors';

const prop = (value: unknown, extra: Record<string, unknown> = {}) => ({ type: 'Property', value, ...extra });

describe('mainReading', () => {
  it('the reading a known type is known by, with its unit symbol', () => {
    const e: Entity = {
      id: 'aq1',
      type: 'AirQualityObserved',
      PM10: prop(12, { unitCode: 'GQ', observedAt: '2026-01-01T10:00:00Z' }),
      NO2: prop(21.5, { unitCode: 'GQ', observedAt: '2026-01-01T11:00:00Z' }),
    };
    expect(mainReading(e)).toEqual({ attr: 'NO2', value: 21.5, unit: 'µg/m³', observedAt: '2026-01-01T11:00:00Z' });
  });

  it('a non-numeric main reading (parking spot status)', () => {
    const e: Entity = { id: 'p', type: 'ParkingSpot', status: prop('free', { observedAt: '2026-01-01T00:00:00Z' }) };
    expect(mainReading(e)).toMatchObject({ attr: 'status', value: 'free', unit: '' });
  });

  it('otherwise the first numeric attribute with observedAt, then the first numeric one', () => {
    const observed: Entity = {
      id: 'x',
      type: 'RiverLevel',
      height: prop(2),
      level: prop(1.4, { unitCode: 'MTR', observedAt: '2026-01-01T00:00:00Z' }),
    };
    expect(mainReading(observed)).toMatchObject({ attr: 'level', value: 1.4, unit: 'm' });
    const unobserved: Entity = { id: 'y', type: 'Thing', label: prop('a'), count: prop(5, { unitCode: 'XYZ' }) };
    expect(mainReading(unobserved)).toEqual({ attr: 'count', value: 5, unit: 'XYZ', observedAt: undefined });
  });

  it('a known type without its reading falls back to the other rules', () => {
    const e: Entity = { id: 'w', type: 'WeatherObserved', humidity: prop(80, { unitCode: 'P1', observedAt: '2026-01-01T00:00:00Z' }) };
    expect(mainReading(e)).toMatchObject({ attr: 'humidity', value: 80, unit: '%' });
  });

  it('nothing numeric, no reading', () => {
    expect(mainReading({ id: 'z', type: 'Thing', name: prop('n') })).toBeUndefined();
    expect(mainReading({ id: 'z', type: 'Thing' })).toBeUndefined();
  });
});

describe('pointOf', () => {
  it('reads a GeoJSON point', () => {
    expect(pointOf({ id: 'a', type: 'T', location: { type: 'GeoProperty', value: { type: 'Point', coordinates: [24.9, 60.2] } } })).toEqual([24.9, 60.2]);
  });

  it('coerces string coordinates', () => {
    expect(pointOf({ id: 'a', type: 'T', location: { type: 'GeoProperty', value: { type: 'Point', coordinates: ['24.9', '60.2'] } } })).toEqual([24.9, 60.2]);
  });

  it('no point, no place', () => {
    expect(pointOf({ id: 'a', type: 'T' })).toBeUndefined();
    expect(pointOf({ id: 'a', type: 'T', location: { type: 'GeoProperty', value: { type: 'Polygon', coordinates: [] } } })).toBeUndefined();
    expect(pointOf({ id: 'a', type: 'T', location: [{ type: 'GeoProperty', value: { type: 'Point', coordinates: [1, 2] } }] })).toBeUndefined();
  });
});

describe('readingAt', () => {
  const h: [number, unknown][] = [
    [1000, 'a'],
    [2000, 'b'],
    [3000, 'c'],
  ];

  it('the latest reading at or before the time', () => {
    expect(readingAt(h, 2500)).toEqual([2000, 'b']);
    expect(readingAt(h, 2000)).toEqual([2000, 'b']);
    expect(readingAt(h, 99_999)).toEqual([3000, 'c']);
  });

  it('nothing before the first reading or in an empty history', () => {
    expect(readingAt(h, 999)).toBeUndefined();
    expect(readingAt([], 5000)).toBeUndefined();
  });
});

describe('detectSensorTypes', () => {
  let fetchMock: ReturnType<typeof vi.fn>;
  beforeEach(() => {
    fetchMock = vi.fn();
    vi.stubGlobal('fetch', fetchMock);
  });

  const ok = (body: unknown) => ({ ok: true, status: 200, statusText: 'OK', json: async () => body });

  it('observation types by name without asking; others by whether their observed entities carry observedAt', async () => {
    fetchMock.mockImplementation(async (url: string) => {
      const type = new URL(url, 'http://x').searchParams.get('type');
      if (type === 'RiverGauge') return ok([{ id: 'r', type, level: prop(1, { observedAt: '2026-01-01T00:00:00Z' }) }]);
      if (type === 'Bench') return ok([{ id: 'b', type, seats: prop(3) }]);
      return { ok: false, status: 500, statusText: 'boom', json: async () => ({}) };
    });
    const types = await detectSensorTypes(['Building', 'AirQualityObserved', 'RiverGauge', 'Bench', 'ParkingSpot', 'NoiseMeasurement']);
    expect(types).toEqual(['AirQualityObserved', 'RiverGauge', 'ParkingSpot', 'NoiseMeasurement']);
    const asked = fetchMock.mock.calls.map(([u]) => new URL(u as string, 'http://x'));
    expect(asked.map((u) => u.searchParams.get('type')).sort()).toEqual(['Bench', 'Building', 'RiverGauge']);
    for (const u of asked) {
      expect(u.searchParams.get('q')).toBe('!simulated');
      expect(u.searchParams.get('limit')).toBe('20');
    }
  });

  it('a type whose query fails is not a sensor', async () => {
    fetchMock.mockRejectedValue(new TypeError('offline'));
    expect(await detectSensorTypes(['Bench'])).toEqual([]);
  });
});
