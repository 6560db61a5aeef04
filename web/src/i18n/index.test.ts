import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import en from './en.json';
import fi from './fi.json';
import {
  fmtDateTime,
  fmtNumber,
  fmtRelative,
  has,
  humanize,
  initialLang,
  initLang,
  isLang,
  lang,
  languages,
  onLangChange,
  setLang,
  t,
  translateDom,
  valueLabel,
} from './index';

type Dict = { [k: string]: string | Dict };

/** Every key of a nested dictionary as `a.b.c`, with its string. */
function flatten(d: Dict, prefix = ''): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of Object.entries(d)) {
    if (typeof v === 'string') out.set(prefix + k, v);
    else for (const [kk, vv] of flatten(v, `${prefix}${k}.`)) out.set(kk, vv);
  }
  return out;
}

const placeholders = (s: string): string[] => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!).sort();

/** A `document` with no DOM: what initLang and setLang touch. */
function fakeDocument() {
  return { documentElement: { lang: '' }, body: { querySelectorAll: () => [] } };
}

beforeEach(() => {
  vi.stubGlobal('document', fakeDocument());
  vi.stubGlobal('localStorage', { getItem: vi.fn(() => null), setItem: vi.fn() });
  initLang('en');
});

describe('dictionaries', () => {
  const E = flatten(en as Dict);
  const F = flatten(fi as Dict);

  it('are not empty', () => {
    expect(E.size).toBeGreaterThan(50);
  });

  it('en.json and fi.json have exactly the same keys', () => {
    const onlyEn = [...E.keys()].filter((k) => !F.has(k));
    const onlyFi = [...F.keys()].filter((k) => !E.has(k));
    expect({ onlyEn, onlyFi }).toEqual({ onlyEn: [], onlyFi: [] });
  });

  it('every key has the same {placeholders} in both languages', () => {
    const diff = [...E.entries()]
      .filter(([k, v]) => F.has(k) && placeholders(v).join() !== placeholders(F.get(k)!).join())
      .map(([k, v]) => `${k}: en {${placeholders(v)}} fi {${placeholders(F.get(k)!)}}`);
    expect(diff).toEqual([]);
  });

  it('no translation is empty', () => {
    const empty = [...E.entries(), ...F.entries()].filter(([, v]) => !v.trim()).map(([k]) => k);
    expect(empty).toEqual([]);
  });

  it('no key is both a string and a group (a.b and a.b.c)', () => {
    for (const keys of [E, F]) {
      const clash = [...keys.keys()].filter((k) => [...keys.keys()].some((o) => o.startsWith(`${k}.`)));
      expect(clash).toEqual([]);
    }
  });
});

describe('t', () => {
  it('looks up nested keys in English', () => {
    expect(lang()).toBe('en');
    expect(t('layers.streets')).toBe(en.layers.streets);
    expect(t('time.liveNow')).toBe(en.time.liveNow);
  });

  it('looks up the current language', () => {
    initLang('fi');
    expect(t('layers.streets')).toBe(fi.layers.streets);
    expect(t('layers.streets')).not.toBe(en.layers.streets);
  });

  it('falls back to the key itself when no language has it', () => {
    expect(t('no.such.key')).toBe('no.such.key');
    initLang('fi');
    expect(t('no.such.key')).toBe('no.such.key');
  });

  it('gives the key for a group rather than a string, and for a path through a string', () => {
    expect(t('layers')).toBe('layers');
    expect(t('layers.streets.more')).toBe('layers.streets.more');
    expect(t('')).toBe('');
  });

  it('fills {placeholders} with strings and numbers', () => {
    const s = t('layers.opacityOf', { layer: 'Kadut & puistot' });
    expect(s).toBe(en.layers.opacityOf.replace('{layer}', 'Kadut & puistot'));
    expect(s).not.toContain('{');
    expect(t('search.results', { n: 7 })).toBe(en.search.results.replace('{n}', '7'));
  });

  it('fills every occurrence of a placeholder and leaves unknown ones', () => {
    // a key that is missing is its own template
    expect(t('{a} and {a} but {b}', { a: 1 })).toBe('1 and 1 but {b}');
  });

  // Known bug: `replaceAll(pattern, string)` expands `$&`, `$'`, `$$` in the value (an entity's name can hold them).
  it('does not treat $ in a value as a replacement pattern', () => {
    expect(t('{x}', { x: "$& $' $$" })).toBe("$& $' $$");
  });
});

describe('fallback to English', () => {
  afterEach(() => {
    vi.doUnmock('./fi.json');
    vi.resetModules();
  });

  it('a key missing in Finnish is shown in English', async () => {
    vi.resetModules();
    vi.doMock('./fi.json', () => ({ default: { layers: { buildings: 'Rakennukset' } } }));
    const i18n = await import('./index');
    i18n.initLang('fi');
    expect(i18n.t('layers.buildings')).toBe('Rakennukset');
    expect(i18n.t('layers.streets')).toBe(en.layers.streets);
    expect(i18n.has('layers.streets')).toBe(true);
    expect(i18n.t('search.results', { n: 3 })).toBe(en.search.results.replace('{n}', '3'));
  });
});

describe('has and valueLabel', () => {
  it('has tells translated keys from others', () => {
    expect(has('layers.streets')).toBe(true);
    expect(has('layers')).toBe(false);
    expect(has('layers.nope')).toBe(false);
  });

  it('valueLabel translates known values', () => {
    expect(valueLabel('roadClass', 'motorway')).toBe(en.values.roadClass.motorway);
    initLang('fi');
    expect(valueLabel('roadClass', 'motorway')).toBe(fi.values.roadClass.motorway);
  });

  it('valueLabel makes unknown values readable', () => {
    expect(valueLabel('roadClass', 'some_new_class')).toBe('Some new class');
    expect(valueLabel('nothing', 'busStop')).toBe('Bus stop');
  });
});

describe('humanize', () => {
  it.each([
    ['public_transport_stop', 'Public transport stop'],
    ['floorsAboveGround', 'Floors above ground'],
    ['living-street', 'Living street'],
    ['height', 'Height'],
    ['NO2', 'NO2'],
    ['PM10', 'PM10'],
    ['LAeq', 'LAeq'],
    ['  padded_', 'Padded'],
    ['', ''],
    ['___', '___'],
  ])('%j → %j', (input, out) => {
    expect(humanize(input)).toBe(out);
  });
});

describe('languages', () => {
  it('isLang knows exactly the languages there are dictionaries for', () => {
    expect([...languages]).toEqual(['en', 'fi']);
    expect(isLang('en')).toBe(true);
    expect(isLang('fi')).toBe(true);
    expect(isLang('sv')).toBe(false);
    expect(isLang('EN')).toBe(false);
    expect(isLang('')).toBe(false);
    expect(isLang(null)).toBe(false);
    expect(isLang(undefined)).toBe(false);
  });

  it('initialLang: the URL first', () => {
    vi.stubGlobal('localStorage', { getItem: () => 'en' });
    vi.stubGlobal('navigator', { languages: ['en-GB'], language: 'en-GB' });
    expect(initialLang('fi')).toBe('fi');
  });

  it('initialLang: then the stored choice', () => {
    vi.stubGlobal('localStorage', { getItem: (k: string) => (k === 'urbantwin.lang' ? 'fi' : null) });
    vi.stubGlobal('navigator', { languages: ['en-GB'], language: 'en-GB' });
    expect(initialLang('xx')).toBe('fi');
  });

  it('initialLang: then the first browser language we have', () => {
    vi.stubGlobal('localStorage', { getItem: () => 'klingon' });
    vi.stubGlobal('navigator', { languages: ['de-DE', 'FI-fi', 'en'], language: 'de-DE' });
    expect(initialLang(null)).toBe('fi');
  });

  it('initialLang: storage that throws is skipped, and English is the last resort', () => {
    vi.stubGlobal('localStorage', {
      getItem: () => {
        throw new Error('denied');
      },
    });
    vi.stubGlobal('navigator', { languages: ['sv-SE', 'de'], language: 'sv-SE' });
    expect(initialLang(null)).toBe('en');
  });

  it('setLang switches, stores, sets <html lang> and tells the listeners once', () => {
    const doc = fakeDocument();
    vi.stubGlobal('document', doc);
    const setItem = vi.fn();
    vi.stubGlobal('localStorage', { getItem: () => null, setItem });
    const listener = vi.fn();
    const off = onLangChange(listener);
    setLang('fi');
    expect(lang()).toBe('fi');
    expect(doc.documentElement.lang).toBe('fi');
    expect(setItem).toHaveBeenCalledWith('urbantwin.lang', 'fi');
    expect(listener).toHaveBeenCalledTimes(1);
    setLang('fi'); // no change: nobody is told
    expect(listener).toHaveBeenCalledTimes(1);
    off();
    setLang('en');
    expect(listener).toHaveBeenCalledTimes(1);
    expect(lang()).toBe('en');
  });
});

describe('translateDom', () => {
  it('sets the text and the attributes of marked elements', () => {
    const text = { dataset: { i18n: 'layers.streets' } as Record<string, string>, textContent: '' };
    const attrs: Record<string, string> = {};
    const withAttrs = {
      dataset: { i18nAttr: 'aria-label: layers.buildings ;title:time.live;broken;:x' } as Record<string, string>,
      setAttribute: (k: string, v: string) => (attrs[k] = v),
    };
    const root = {
      querySelectorAll: (sel: string) => ({
        forEach: (f: (e: unknown) => void) => (sel === '[data-i18n]' ? [text] : [withAttrs]).forEach(f),
      }),
    };
    initLang('fi');
    translateDom(root as unknown as ParentNode);
    expect(text.textContent).toBe(fi.layers.streets);
    expect(attrs).toEqual({ 'aria-label': fi.layers.buildings, title: fi.time.live });
  });
});

describe('number formatting', () => {
  it('English: grouping with commas, fraction digits by size', () => {
    expect(fmtNumber(1234.567)).toBe('1,235');
    expect(fmtNumber(12.345)).toBe('12.3');
    expect(fmtNumber(1.23456)).toBe('1.23');
    expect(fmtNumber(-150.6)).toBe('-151');
    expect(fmtNumber(0)).toBe('0');
    expect(fmtNumber(2.5, 0)).toBe('3');
    expect(fmtNumber(1234.5678, 3)).toBe('1,234.568');
  });

  it('drops trailing zeros', () => {
    expect(fmtNumber(3.1)).toBe('3.1');
    expect(fmtNumber(20)).toBe('20');
  });

  it('Finnish: space for grouping, comma for decimals, a real minus sign', () => {
    initLang('fi');
    expect(fmtNumber(1234.567)).toMatch(/^1\s235$/u);
    expect(fmtNumber(12.345)).toBe('12,3');
    expect(fmtNumber(1.23456)).toBe('1,23');
    expect(fmtNumber(-1.5)).toMatch(/^[−-]1,5$/u);
  });
});

describe('dates', () => {
  it('fmtDateTime gives back what it cannot read', () => {
    expect(fmtDateTime('not a date')).toBe('not a date');
  });

  it('fmtDateTime formats per language', () => {
    const iso = '2026-11-25T08:00:00.000Z';
    const en1 = fmtDateTime(iso);
    expect(en1).toMatch(/2026/);
    expect(en1).toMatch(/Nov/);
    initLang('fi');
    const fi1 = fmtDateTime(iso);
    expect(fi1).toMatch(/25\.11\.2026/);
    expect(fi1).not.toBe(en1);
  });

  it('fmtRelative picks the largest fitting unit', () => {
    const now = Date.parse('2026-11-25T12:00:00Z');
    expect(fmtRelative('2026-11-25T11:55:00Z', now)).toBe('5 minutes ago');
    expect(fmtRelative('2026-11-25T14:00:00Z', now)).toBe('in 2 hours');
    expect(fmtRelative('2026-11-25T11:59:30Z', now)).toBe('30 seconds ago');
    expect(fmtRelative('2026-11-25T12:00:00Z', now)).toBe('now');
    expect(fmtRelative('2026-11-24T12:00:00Z', now)).toBe('yesterday');
    expect(fmtRelative('2024-11-25T12:00:00Z', now)).toBe('2 years ago');
    expect(fmtRelative('garbage', now)).toBe('');
  });

  it('fmtRelative in Finnish', () => {
    initLang('fi');
    const now = Date.parse('2026-11-25T12:00:00Z');
    expect(fmtRelative('2026-11-25T11:55:00Z', now)).toBe('5 minuuttia sitten');
  });
});
