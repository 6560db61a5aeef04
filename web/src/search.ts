// Find a place by name: an ARIA combobox over `GET /ngsi-ld/v1/entities?type=...&q=name~="(?i)..."`, so every
// feature on the map can also be reached from the keyboard.

import { queryEntities, entityType, type Entity } from './api';
import { el } from './dom';
import { onLangChange, t } from './i18n';
import { typeLabel } from './feature-panel';

export interface SearchHit {
  id: string;
  type: string;
  name: string;
  location?: { type: string; coordinates: unknown };
}

export function regexEscape(s: string): string {
  return s.replace(/[\\^$.*+?()[\]{}|"]/g, '\\$&');
}

export class Search {
  private readonly input: HTMLInputElement;
  private readonly list: HTMLUListElement;
  private readonly status: HTMLElement;
  private hits: SearchHit[] = [];
  private active = -1;
  private timer: number | undefined;
  private abort: AbortController | undefined;

  constructor(
    root: HTMLElement,
    private readonly types: string[],
    private readonly onPick: (hit: SearchHit) => void,
  ) {
    this.input = root.querySelector('input')!;
    this.list = root.querySelector('ul')!;
    this.status = root.querySelector('[role=status]')!;
    this.input.addEventListener('input', () => {
      window.clearTimeout(this.timer);
      this.timer = window.setTimeout(() => void this.query(), 200);
    });
    this.input.addEventListener('keydown', (e) => this.key(e));
    this.input.addEventListener('blur', () => window.setTimeout(() => this.closeList(), 150));
    onLangChange(() => this.renderList());
  }

  private async query(): Promise<void> {
    const text = this.input.value.trim();
    this.abort?.abort();
    if (text.length < 2) {
      this.hits = [];
      this.renderList();
      return;
    }
    const ac = new AbortController();
    this.abort = ac;
    try {
      const found = await queryEntities(
        { type: this.types.join(','), q: `name~="(?i)${regexEscape(text)}"`, attrs: 'name,location', limit: 100, options: 'keyValues' },
        ac.signal,
      );
      if (ac.signal.aborted) return;
      // a street is many segments: one hit per name and type, names that start with the text first
      const seen = new Set<string>();
      const hits: SearchHit[] = [];
      for (const e of found as (Entity & { name?: unknown; location?: unknown })[]) {
        const name = typeof e.name === 'string' ? e.name : '';
        const key = `${entityType(e)}|${name}`;
        if (!name || seen.has(key)) continue;
        seen.add(key);
        hits.push({ id: e.id, type: entityType(e), name, location: e.location as SearchHit['location'] });
      }
      const lower = text.toLowerCase();
      hits.sort((a, b) => Number(!a.name.toLowerCase().startsWith(lower)) - Number(!b.name.toLowerCase().startsWith(lower)) || a.name.localeCompare(b.name));
      this.hits = hits.slice(0, 12);
      this.active = -1;
      this.renderList();
    } catch {
      if (!ac.signal.aborted) {
        this.hits = [];
        this.renderList();
      }
    }
  }

  private renderList(): void {
    this.list.replaceChildren(
      ...this.hits.map((h, i) => {
        const li = el(
          'li',
          { role: 'option', id: `search-opt-${i}`, 'aria-selected': String(i === this.active) },
          el('span', { class: 'hit-name' }, h.name),
          el('span', { class: 'hit-type' }, typeLabel(h.type)),
        );
        li.addEventListener('mousedown', (e) => {
          e.preventDefault();
          this.pick(i);
        });
        return li;
      }),
    );
    const open = this.hits.length > 0;
    this.list.hidden = !open;
    this.input.setAttribute('aria-expanded', String(open));
    if (this.active >= 0) this.input.setAttribute('aria-activedescendant', `search-opt-${this.active}`);
    else this.input.removeAttribute('aria-activedescendant');
    const text = this.input.value.trim();
    this.status.textContent = text.length < 2 ? '' : open ? t('search.results', { n: this.hits.length }) : t('search.none');
  }

  private key(e: KeyboardEvent): void {
    if (e.key === 'ArrowDown' && this.hits.length) {
      e.preventDefault();
      this.active = (this.active + 1) % this.hits.length;
      this.renderList();
    } else if (e.key === 'ArrowUp' && this.hits.length) {
      e.preventDefault();
      this.active = (this.active - 1 + this.hits.length) % this.hits.length;
      this.renderList();
    } else if (e.key === 'Enter') {
      if (this.hits.length) {
        e.preventDefault();
        this.pick(this.active >= 0 ? this.active : 0);
      }
    } else if (e.key === 'Escape') {
      this.closeList();
    }
  }

  private pick(i: number): void {
    const h = this.hits[i];
    if (!h) return;
    this.input.value = h.name;
    this.closeList();
    this.onPick(h);
  }

  private closeList(): void {
    this.hits = [];
    this.active = -1;
    this.list.hidden = true;
    this.input.setAttribute('aria-expanded', 'false');
    this.input.removeAttribute('aria-activedescendant');
  }
}

/** The bounding box of a GeoJSON geometry. */
export function bboxOf(g: { type: string; coordinates: unknown } | undefined): [number, number, number, number] | undefined {
  if (!g) return undefined;
  let b: [number, number, number, number] | undefined;
  const walk = (c: unknown): void => {
    if (Array.isArray(c) && typeof c[0] === 'number') {
      const [x, y] = c as number[];
      b = b ? [Math.min(b[0], x!), Math.min(b[1], y!), Math.max(b[2], x!), Math.max(b[3], y!)] : [x!, y!, x!, y!];
    } else if (Array.isArray(c)) c.forEach(walk);
  };
  walk(g.coordinates);
  return b;
}

