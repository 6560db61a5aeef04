// Translations: every UI string goes through `t`. Dictionaries are nested JSON files, one per language; a key
// missing in a language falls back to English, then to the key itself.

import en from './en.json';
import fi from './fi.json';

type Dict = { [k: string]: string | Dict };

const dictionaries: Record<string, Dict> = { en, fi };
export const languages = ['en', 'fi'] as const;
export type Lang = (typeof languages)[number];

let current: Lang = 'en';
const listeners = new Set<() => void>();

function lookup(dict: Dict, key: string): string | undefined {
  let node: string | Dict | undefined = dict;
  for (const part of key.split('.')) {
    if (node === undefined || typeof node === 'string') return undefined;
    node = node[part];
  }
  return typeof node === 'string' ? node : undefined;
}

/** The translation of `key`, with `{name}` placeholders filled from `vars`. */
export function t(key: string, vars?: Record<string, string | number>): string {
  let s = lookup(dictionaries[current]!, key) ?? lookup(dictionaries.en!, key) ?? key;
  if (vars) for (const [k, v] of Object.entries(vars)) s = s.replaceAll(`{${k}}`, () => String(v)); // a function: `$&` in a value stays as it is
  return s;
}

/** Whether a key has a translation (in the current language or English). */
export function has(key: string): boolean {
  return lookup(dictionaries[current]!, key) !== undefined || lookup(dictionaries.en!, key) !== undefined;
}

/** A data value's label: `values.{group}.{value}` when translated, else the value made readable. */
export function valueLabel(group: string, value: string): string {
  const key = `values.${group}.${value}`;
  return has(key) ? t(key) : humanize(value);
}

/** `public_transport_stop` → `Public transport stop`, `floorsAboveGround` → `Floors above ground`. */
export function humanize(s: string): string {
  const spaced = s
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/[_-]+/g, ' ')
    .trim();
  if (!spaced) return s;
  // keep acronyms such as NO2 or LAeq as they are
  if (/^[A-Z0-9]{2,}/.test(spaced) || /^[A-Z][A-Za-z]*[A-Z]/.test(spaced)) return spaced;
  return spaced.charAt(0).toUpperCase() + spaced.slice(1).toLowerCase();
}

export function lang(): Lang {
  return current;
}

export function isLang(s: string | null | undefined): s is Lang {
  return !!s && (languages as readonly string[]).includes(s);
}

export function setLang(l: Lang): void {
  if (l === current) return;
  current = l;
  document.documentElement.lang = l;
  try {
    localStorage.setItem('urbantwin.lang', l);
  } catch {
    /* storage may be unavailable */
  }
  translateDom(document.body);
  for (const f of listeners) f();
}

/** The language to start in: the URL's, else the last chosen, else the browser's when it is one we have. */
export function initialLang(fromUrl: string | null): Lang {
  if (isLang(fromUrl)) return fromUrl;
  try {
    const stored = localStorage.getItem('urbantwin.lang');
    if (isLang(stored)) return stored;
  } catch {
    /* storage may be unavailable */
  }
  for (const l of navigator.languages ?? [navigator.language]) {
    const base = l.slice(0, 2).toLowerCase();
    if (isLang(base)) return base;
  }
  return 'en';
}

export function initLang(l: Lang): void {
  current = l;
  document.documentElement.lang = l;
  translateDom(document.body);
}

export function onLangChange(f: () => void): () => void {
  listeners.add(f);
  return () => listeners.delete(f);
}

/**
 * Fills the static markup: `data-i18n="key"` sets the text, `data-i18n-attr="aria-label:key;title:key"` sets
 * attributes.
 */
export function translateDom(root: ParentNode): void {
  root.querySelectorAll<HTMLElement>('[data-i18n]').forEach((el) => {
    el.textContent = t(el.dataset.i18n!);
  });
  root.querySelectorAll<HTMLElement>('[data-i18n-attr]').forEach((el) => {
    for (const pair of el.dataset.i18nAttr!.split(';')) {
      const [attr, key] = pair.split(':');
      if (attr && key) el.setAttribute(attr.trim(), t(key.trim()));
    }
  });
}

export function fmtNumber(n: number, maxFractionDigits?: number): string {
  const digits = maxFractionDigits ?? (Math.abs(n) >= 100 ? 0 : Math.abs(n) >= 10 ? 1 : 2);
  return new Intl.NumberFormat(current, { maximumFractionDigits: digits }).format(n);
}

export function fmtDateTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return new Intl.DateTimeFormat(current, { dateStyle: 'medium', timeStyle: 'short' }).format(d);
}

/** "5 minutes ago", "in 2 hours". */
export function fmtRelative(iso: string, now = Date.now()): string {
  const d = new Date(iso).getTime();
  if (Number.isNaN(d)) return '';
  const s = (d - now) / 1000;
  const rtf = new Intl.RelativeTimeFormat(current, { numeric: 'auto' });
  const units: [Intl.RelativeTimeFormatUnit, number][] = [
    ['year', 31536000],
    ['month', 2592000],
    ['day', 86400],
    ['hour', 3600],
    ['minute', 60],
    ['second', 1],
  ];
  for (const [u, secs] of units) if (Math.abs(s) >= secs || u === 'second') return rtf.format(Math.round(s / secs), u);
  return '';
}
