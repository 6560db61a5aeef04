import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { formatAccess, formatHash, parseAccess, parseHash, UrlSync, type AccessState, type UrlState } from './url-state';

describe('parseHash', () => {
  it('reads a full view', () => {
    expect(parseHash('#map=16.5/60.1699/24.9384/30/45')).toEqual({
      view: { zoom: 16.5, lat: 60.1699, lon: 24.9384, bearing: 30, pitch: 45 },
    });
  });

  it('works without the leading #', () => {
    expect(parseHash('map=3/1/2/0/0').view).toEqual({ zoom: 3, lat: 1, lon: 2, bearing: 0, pitch: 0 });
  });

  it('defaults bearing and pitch to 0 when missing or not numbers', () => {
    expect(parseHash('#map=14/60/25').view).toEqual({ zoom: 14, lat: 60, lon: 25, bearing: 0, pitch: 0 });
    expect(parseHash('#map=14/60/25/x/y').view).toEqual({ zoom: 14, lat: 60, lon: 25, bearing: 0, pitch: 0 });
  });

  it('accepts the limits of latitude and longitude', () => {
    expect(parseHash('#map=1/-90/180').view).toMatchObject({ lat: -90, lon: 180 });
    expect(parseHash('#map=1/90/-180').view).toMatchObject({ lat: 90, lon: -180 });
  });

  it.each([
    ['lat above 90', '#map=10/90.5/24'],
    ['lat below -90', '#map=10/-91/24'],
    ['lon beyond 180', '#map=10/60/180.01'],
    ['lon below -180', '#map=10/60/-200'],
    ['NaN zoom', '#map=NaN/60/24'],
    ['text lat', '#map=10/north/24'],
    ['missing lon', '#map=10/60'],
    ['zoom only', '#map=10'],
    ['empty', '#map='],
    ['Infinity', '#map=Infinity/60/24'],
  ])('ignores a bad view (%s)', (_, hash) => {
    expect(parseHash(hash).view).toBeUndefined();
  });

  it('keeps the rest of the state when the view is bad', () => {
    expect(parseHash('#map=10/99/24&colour=height')).toEqual({ colour: 'height' });
  });

  it('returns an empty state for an empty hash', () => {
    expect(parseHash('')).toEqual({});
    expect(parseHash('#')).toEqual({});
  });

  it('splits layer lists and drops empty entries', () => {
    const s = parseHash('#off=buildings,,pois,&layers=AirQualityObserved');
    expect(s.hidden).toEqual(['buildings', 'pois']);
    expect(s.shown).toEqual(['AirQualityObserved']);
  });

  it('keeps an empty list apart from an absent one', () => {
    expect(parseHash('#off=').hidden).toEqual([]);
    expect(parseHash('#colour=height').hidden).toBeUndefined();
    expect(parseHash('#colour=height').shown).toBeUndefined();
  });

  it('decodes encoded URNs', () => {
    const s = parseHash('#feature=urn%3Angsi-ld%3ABuilding%3Aosm%3Away%2F123&scenario=urn%3Angsi-ld%3AScenario%3A1');
    expect(s.feature).toBe('urn:ngsi-ld:Building:osm:way/123');
    expect(s.scenario).toBe('urn:ngsi-ld:Scenario:1');
  });

  it('also reads URNs whose colons were not encoded', () => {
    expect(parseHash('#feature=urn:ngsi-ld:Building:b1').feature).toBe('urn:ngsi-ld:Building:b1');
  });

  it('keeps a valid time and drops an invalid one', () => {
    expect(parseHash('#t=2026-11-25T08%3A00%3A00.000Z').time).toBe('2026-11-25T08:00:00.000Z');
    expect(parseHash('#t=yesterday').time).toBeUndefined();
    expect(parseHash('#t=').time).toBeUndefined();
  });

  it('reads the language', () => {
    expect(parseHash('#lang=fi').lang).toBe('fi');
    expect(parseHash('#lang=').lang).toBeUndefined();
  });

  it('ignores empty values and unknown keys', () => {
    expect(parseHash('#feature=&colour=&scenario=&foo=bar')).toEqual({});
  });
});

describe('formatHash', () => {
  it('is empty for an empty state', () => {
    expect(formatHash({})).toBe('');
    expect(formatHash({ hidden: [], shown: [] })).toBe('');
  });

  it('rounds the view: zoom to 2, coordinates to 5, angles to 1 digit, without trailing zeros', () => {
    expect(formatHash({ view: { zoom: 15.6789, lat: 60.169912345, lon: 24.938456789, bearing: 12.34, pitch: 0 } })).toBe(
      '#map=15.68/60.16991/24.93846/12.3/0',
    );
    expect(formatHash({ view: { zoom: 16, lat: 60.1, lon: 24.5, bearing: 0, pitch: 45 } })).toBe('#map=16/60.1/24.5/0/45');
  });

  it('writes the parts in a fixed order', () => {
    const s: UrlState = {
      lang: 'fi',
      time: '2026-11-25T08:00:00.000Z',
      scenario: 's1',
      access: { mode: 'bike', minutes: 10, profile: 'adult', indicator: 'grocery' },
      feature: 'f1',
      colour: 'height',
      shown: ['a'],
      hidden: ['b'],
      view: { zoom: 1, lat: 2, lon: 3, bearing: 4, pitch: 5 },
    };
    expect(formatHash(s)).toBe(
      '#map=1/2/3/4/5&off=b&layers=a&colour=height&feature=f1&scenario=s1&access=bike/10/grocery&t=2026-11-25T08%3A00%3A00.000Z&lang=fi',
    );
  });

  it('encodes URNs so that colons, slashes, & and = survive', () => {
    const h = formatHash({ feature: 'urn:ngsi-ld:Thing:a&b=c/d#e' });
    expect(h).toBe('#feature=urn%3Angsi-ld%3AThing%3Aa%26b%3Dc%2Fd%23e');
    expect(parseHash(h).feature).toBe('urn:ngsi-ld:Thing:a&b=c/d#e');
  });

  it('encodes each layer id but keeps the commas between them', () => {
    expect(formatHash({ hidden: ['a,b', 'c'] })).toBe('#off=a%2Cb,c');
  });
});

describe('round trips', () => {
  const states: [string, UrlState][] = [
    ['view only', { view: { zoom: 16, lat: 60.1699, lon: 24.9384, bearing: -17.5, pitch: 60 } }],
    ['negative coordinates', { view: { zoom: 2.25, lat: -33.86785, lon: -151.20732, bearing: 0, pitch: 0 } }],
    [
      'everything',
      {
        view: { zoom: 15.5, lat: 60.169, lon: 24.944, bearing: 0, pitch: 30 },
        hidden: ['buildings', 'landuse'],
        shown: ['AirQualityObserved', 'TrafficFlowObserved'],
        feature: 'urn:ngsi-ld:Building:osm:way:4253107',
        colour: 'floorsAboveGround',
        scenario: 'urn:ngsi-ld:Scenario:close-mannerheimintie',
        access: { mode: 'walk', minutes: 20, profile: 'older', indicator: 'public_transport_stop' },
        time: '2026-11-25T08:00:00.000Z',
        lang: 'fi',
      },
    ],
    ['non-ASCII and spaces', { feature: 'urn:ngsi-ld:PointOfInterest:Kauppatori ä/ö', colour: 'käyttö tarkoitus' }],
  ];

  it.each(states)('parseHash(formatHash(s)) == s (%s)', (_, s) => {
    expect(parseHash(formatHash(s))).toEqual(s);
  });

  it.each([
    '#map=16/60.1699/24.9384/0/0',
    '#map=15.6/60.1688/24.947/0/0&off=buildings,pois,landuse',
    '#map=16/60.1694/24.9522/0/0&feature=urn%3Angsi-ld%3ABuilding%3Ab1&t=2026-01-01T00%3A00%3A00.000Z&lang=fi',
  ])('formatHash(parseHash(h)) == h for a canonical hash (%s)', (h) => {
    expect(formatHash(parseHash(h))).toBe(h);
  });

  it('a parsed view is normalised on the way out', () => {
    expect(formatHash(parseHash('#map=16.000/60.16990/24.93840'))).toBe('#map=16/60.1699/24.9384/0/0');
  });
});

describe('access (the 15-minute city panel)', () => {
  const d = (p: Partial<AccessState>): AccessState => ({ mode: 'walk', minutes: 15, profile: 'adult', indicator: 'score', ...p });

  it.each([
    ['walk/15', d({})],
    ['bike/15', d({ mode: 'bike' })],
    ['walk/10/older', d({ minutes: 10, profile: 'older' })],
    ['bike/20/grocery', d({ mode: 'bike', minutes: 20, indicator: 'grocery' })],
    ['walk/5/older/public_transport_stop', d({ minutes: 5, profile: 'older', indicator: 'public_transport_stop' })],
  ])('reads and writes %s', (v, s) => {
    expect(parseAccess(v)).toEqual(s);
    expect(formatAccess(s)).toBe(v);
  });

  it('reads the profile and the indicator in either order', () => {
    expect(parseAccess('walk/15/park/older')).toEqual(d({ profile: 'older', indicator: 'park' }));
  });

  it('ignores the profile when cycling, and leaves it out when writing', () => {
    expect(parseAccess('bike/15/older')).toEqual(d({ mode: 'bike' }));
    expect(formatAccess(d({ mode: 'bike', profile: 'older' }))).toBe('bike/15');
  });

  it('writes the adult profile and the score as the defaults they are', () => {
    expect(formatAccess(d({ minutes: 10 }))).toBe('walk/10');
    expect(parseAccess('walk/15/adult/score')).toEqual(d({}));
  });

  it('falls back to 15 minutes for a threshold the panel does not offer', () => {
    expect(parseAccess('walk/7')!.minutes).toBe(15);
    expect(parseAccess('walk')!.minutes).toBe(15);
    expect(parseAccess('walk/abc')!.minutes).toBe(15);
  });

  it('drops an unknown mode and malformed indicators', () => {
    expect(parseAccess('car/15')).toBeUndefined();
    expect(parseAccess('')).toBeUndefined();
    expect(parseAccess('walk/15/Grocery<script>')).toEqual(d({}));
  });

  it('is part of the hash', () => {
    expect(parseHash('#access=walk%2F10%2Folder').access).toEqual(d({ minutes: 10, profile: 'older' }));
    expect(parseHash('#access=bike/15&lang=fi')).toEqual({ access: d({ mode: 'bike' }), lang: 'fi' });
    expect(parseHash('#access=train/15').access).toBeUndefined();
    expect(parseHash('#access=').access).toBeUndefined();
    expect(formatHash({ access: d({}) })).toBe('#access=walk/15');
  });
});

describe('UrlSync', () => {
  let hash: string;
  let replaceState: ReturnType<typeof vi.fn>;

  beforeEach(() => {
    vi.useFakeTimers();
    hash = '';
    replaceState = vi.fn((_state: unknown, _title: string, url: string) => {
      hash = url.includes('#') ? url.slice(url.indexOf('#')) : '';
    });
    const location = {
      pathname: '/app/',
      search: '?x=1',
      get hash() {
        return hash;
      },
    };
    // the parts of `window` and `history` that UrlSync uses, with the fake timers
    vi.stubGlobal('window', { location, setTimeout, clearTimeout });
    vi.stubGlobal('history', { state: { keep: true }, replaceState });
  });

  afterEach(() => {
    vi.useRealTimers();
  });

  it('starts from a copy of the initial state', () => {
    const initial: UrlState = { colour: 'height' };
    const sync = new UrlSync(initial);
    sync.update({ colour: 'age' });
    expect(initial.colour).toBe('height');
    expect(sync.get().colour).toBe('age');
  });

  it('batches a burst of updates into one write after 150 ms', () => {
    const sync = new UrlSync({});
    for (let i = 0; i < 20; i++) {
      sync.update({ view: { zoom: 10 + i / 10, lat: 60, lon: 24, bearing: 0, pitch: 0 } });
      vi.advanceTimersByTime(50);
    }
    expect(replaceState).not.toHaveBeenCalled();
    vi.advanceTimersByTime(99);
    expect(replaceState).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(replaceState).toHaveBeenCalledTimes(1);
    expect(replaceState).toHaveBeenCalledWith({ keep: true }, '', '/app/?x=1#map=11.9/60/24/0/0');
    vi.advanceTimersByTime(1000);
    expect(replaceState).toHaveBeenCalledTimes(1);
  });

  it('merges patches and deletes keys patched to undefined', () => {
    const sync = new UrlSync({ colour: 'height', feature: 'urn:a' });
    sync.update({ lang: 'fi' });
    sync.update({ feature: undefined });
    expect(sync.get()).toEqual({ colour: 'height', lang: 'fi' });
    expect('feature' in sync.get()).toBe(false);
    vi.runAllTimers();
    expect(hash).toBe('#colour=height&lang=fi');
  });

  it('flush writes at once and cancels the pending write', () => {
    const sync = new UrlSync({});
    sync.update({ colour: 'age' });
    sync.flush();
    expect(replaceState).toHaveBeenCalledTimes(1);
    expect(hash).toBe('#colour=age');
    vi.runAllTimers();
    expect(replaceState).toHaveBeenCalledTimes(1);
  });

  it('does not write when the hash is already right', () => {
    hash = '#colour=age';
    const sync = new UrlSync({});
    sync.update({ colour: 'age' });
    vi.runAllTimers();
    expect(replaceState).not.toHaveBeenCalled();
  });

  it('writes an empty hash when the state empties', () => {
    hash = '#colour=age';
    const sync = new UrlSync({ colour: 'age' });
    sync.update({ colour: undefined });
    vi.runAllTimers();
    expect(replaceState).toHaveBeenCalledWith({ keep: true }, '', '/app/?x=1');
  });
});
