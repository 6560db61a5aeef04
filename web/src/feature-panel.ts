// The feature panel: an entity from `/ngsi-ld/v1/entities/{id}` (with system attributes and provenance), its
// attributes with units and observation times, where each value came from (source, channel, time), the datasets it
// belongs to with owner and licence (`/api/datasets/{id}`), and a chart of its numeric readings from the temporal API.

import {
  attrValue,
  attributes,
  enc,
  entityType,
  getDataset,
  getEntity,
  getRunByPath,
  getTemporal,
  type Attribute,
  type Dataset,
  type Entity,
  type TemporalValues,
} from './api';
import { drawChart } from './chart';
import { el } from './dom';
import { fmtDateTime, fmtNumber, fmtRelative, has, humanize, onLangChange, t, valueLabel } from './i18n';
import { attrLabel } from './layers';
import { paramText, parseRunProvenance, runRefOf, type RunProvenance, type RunRef } from './trust';
import { unitSymbol } from './units';

const HIDDEN_ATTRS = new Set(['location']);
const datasetCache = new Map<string, Promise<Dataset | undefined>>();
/** Runs read for their provenance, by path (a run's provenance does not change once it is done). */
const runCache = new Map<string, Promise<unknown>>();

function runAnswer(path: string): Promise<unknown> {
  let p = runCache.get(path);
  if (!p) {
    p = getRunByPath(path);
    // a failure is not kept: the next opening tries again
    p.catch(() => runCache.delete(path));
    runCache.set(path, p);
  }
  return p;
}

function dataset(id: string): Promise<Dataset | undefined> {
  let p = datasetCache.get(id);
  if (!p) {
    p = getDataset(id).catch(() => undefined);
    datasetCache.set(id, p);
  }
  return p;
}

export interface FeaturePanelOptions {
  onClose: () => void;
  onOpenEntity: (id: string) => void;
  /** The entity has been read (first time it is opened). */
  onLoaded?: (e: Entity) => void;
  /** A section of results about the entity shown by another panel (a scenario's air and noise of a street). */
  extra?: (id: string) => HTMLElement | undefined;
}

export function typeLabel(type: string): string {
  return has(`types.${type}`) ? t(`types.${type}`) : humanize(type);
}

export class FeaturePanel {
  private current: string | undefined;
  private entity: Entity | undefined;
  private abort: AbortController | undefined;
  private destroyChart: (() => void) | undefined;
  private chartAttr: string | undefined;

  /** `panel` is shown and hidden; `root` inside it holds the content. */
  constructor(
    private readonly panel: HTMLElement,
    private readonly root: HTMLElement,
    private readonly opts: FeaturePanelOptions,
  ) {
    onLangChange(() => {
      if (this.entity) void this.render(this.entity);
    });
    panel.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') {
        e.preventDefault();
        this.close();
      }
    });
  }

  get openId(): string | undefined {
    return this.current;
  }

  close(): void {
    this.abort?.abort();
    this.current = undefined;
    this.entity = undefined;
    this.destroyChart?.();
    this.destroyChart = undefined;
    this.panel.hidden = true;
    this.root.replaceChildren();
    this.opts.onClose();
  }

  /** Opens the entity `id`; `focus` moves keyboard focus to the panel's heading. */
  async open(id: string, focus = true): Promise<void> {
    this.abort?.abort();
    const ac = new AbortController();
    this.abort = ac;
    this.current = id;
    this.chartAttr = undefined;
    this.panel.hidden = false;
    this.panel.setAttribute('aria-busy', 'true');
    this.root.replaceChildren(this.header(id, ''), el('p', { class: 'muted', role: 'status' }, t('feature.loading')));
    try {
      const e = await getEntity(id, ac.signal);
      if (ac.signal.aborted) return;
      this.entity = e;
      this.opts.onLoaded?.(e);
      await this.render(e);
      if (focus) this.root.querySelector<HTMLElement>('#feature-title')?.focus();
    } catch (err) {
      if (ac.signal.aborted) return;
      const msg = err instanceof Error ? err.message : String(err);
      this.root.replaceChildren(this.header(id, ''), el('p', { class: 'error', role: 'alert' }, t('feature.error', { detail: msg })));
    } finally {
      if (this.abort === ac) this.panel.removeAttribute('aria-busy');
    }
  }

  /** Re-reads the open entity (a live value changed). */
  async refresh(): Promise<void> {
    if (!this.current) return;
    try {
      const e = await getEntity(this.current);
      if (e.id !== this.current) return;
      this.entity = e;
      await this.render(e);
    } catch {
      /* keep what is shown */
    }
  }

  private header(id: string, title: string, type?: string): HTMLElement {
    const close = el('button', { type: 'button', class: 'icon-button close', 'aria-label': t('feature.close') }, '×');
    close.addEventListener('click', () => this.close());
    return el(
      'header',
      { class: 'panel-head' },
      el(
        'div',
        {},
        el('h2', { id: 'feature-title', tabindex: '-1' }, title || id),
        type ? el('p', { class: 'entity-type' }, typeLabel(type)) : null,
      ),
      close,
    );
  }

  private async render(e: Entity): Promise<void> {
    const type = entityType(e);
    const attrs = attributes(e);
    const nameAttr = attrs.find(([k]) => k === 'name')?.[1][0];
    const name = nameAttr ? String(attrValue(nameAttr)) : '';
    const title = name || `${typeLabel(type)} ${e.id.split(':').pop()}`;

    // attributes; the observation time has a column where some value has one
    const anyObserved = attrs.some(([k, list]) => !HIDDEN_ATTRS.has(k) && list.some((a) => a.observedAt));
    const rows: HTMLElement[] = [];
    for (const [k, list] of attrs) {
      if (HIDDEN_ATTRS.has(k)) continue;
      for (const a of list) rows.push(this.attrRow(k, a, anyObserved));
    }
    const table = el(
      'table',
      { class: 'attrs' },
      el('caption', { class: 'sr-only' }, t('feature.attributesOf', { name: title })),
      el(
        'thead',
        {},
        el(
          'tr',
          {},
          el('th', { scope: 'col' }, t('feature.attribute')),
          el('th', { scope: 'col' }, t('feature.value')),
          anyObserved ? el('th', { scope: 'col' }, t('feature.observed')) : null,
        ),
      ),
      el('tbody', {}, ...rows),
    );
    const loc = e.location as Attribute | undefined;
    const geom = loc && typeof loc === 'object' && !Array.isArray(loc) ? (loc.value as { type?: string } | undefined)?.type : undefined;

    // provenance: one row per distinct (source, channel, dataset), with the time span of its values
    const prov = new Map<string, { source?: string; channel?: string; dataset?: string; attrs: string[]; modified?: string }>();
    const datasetIds = new Set<string>();
    for (const [k, list] of attrs)
      for (const a of list) {
        const p = a.provenance ?? {};
        const ds = p.dataset ?? a.datasetId;
        if (ds) datasetIds.add(ds);
        const key = `${p.source ?? ''}|${p.channel ?? ''}|${ds ?? ''}`;
        const row = prov.get(key) ?? { source: p.source, channel: p.channel, dataset: ds, attrs: [] };
        row.attrs.push(k);
        const m = a.modifiedAt ?? a.createdAt;
        if (m && (!row.modified || m > row.modified)) row.modified = m;
        prov.set(key, row);
      }
    // simulation results name the scenario run that computed them as their source
    const runs = new Map<string, RunRef>();
    const topSource = (e as { provenance?: { source?: unknown } }).provenance?.source;
    for (const src of [typeof topSource === 'string' ? topSource : undefined, ...[...prov.values()].map((p) => p.source)]) {
      const r = runRefOf(src);
      if (r) runs.set(r.path, r);
    }
    const provList = el('ul', { class: 'provenance' });
    for (const p of prov.values()) {
      provList.append(
        el(
          'li',
          {},
          dl([
            ...(p.source ? ([[t('feature.source'), linkOrText(p.source)]] as [string, Node | string][]) : []),
            [t('feature.channel'), p.channel ? channelLabel(p.channel) : t('feature.unknown')],
            [t('feature.written'), p.modified ? timeEl(p.modified) : t('feature.unknown')],
            [t('feature.attributes'), p.attrs.map(attrLabel).join(', ')],
          ]),
        ),
      );
    }

    // datasets
    const dsBox = el('div', { class: 'datasets' }, el('p', { class: 'muted' }, t('feature.loading')));
    const datasets = await Promise.all([...datasetIds].map((d) => dataset(d).then((x) => [d, x] as const)));
    if (this.entity !== e) return;
    dsBox.replaceChildren(
      ...(datasets.length
        ? datasets.map(([id, d]) =>
            d
              ? el(
                  'div',
                  { class: 'dataset' },
                  el('h4', {}, d.title),
                  dl([
                    [t('feature.owner'), d.owner],
                    [t('feature.licence'), licenceEl(d.licence)],
                    [t('feature.credit'), `© ${d.owner} (${d.licence})`],
                    ...(d.description ? ([[t('feature.description'), d.description]] as [string, string][]) : []),
                    [t('feature.datasetId'), el('code', {}, id)],
                  ]),
                )
              : el('p', {}, el('code', {}, id)),
          )
        : [el('p', { class: 'muted' }, t('feature.noDataset'))]),
    );

    // readings: numeric attributes observed at a time. A model's results (`simulated`) are values of a run, not a
    // history of readings: the run is shown instead
    const simulated = attrs.some(([k, list]) => k === 'simulated' && list.some((a) => attrValue(a) === true));
    const observed = simulated
      ? []
      : attrs
      .filter(([, list]) => list.some((a) => typeof a.value === 'number' && a.observedAt))
      .map(([k]) => k);
    const chartSection = observed.length ? this.chartSection(e.id, observed) : null;

    const links = el(
      'ul',
      { class: 'links' },
      el('li', {}, el('a', { href: `/ngsi-ld/v1/entities/${enc(e.id)}?options=sysAttrs,provenance`, target: '_blank', rel: 'noopener' }, t('feature.asNgsiLd'))),
      el('li', {}, el('a', { href: `/ogc/collections/${enc(type)}/items/${enc(e.id)}`, target: '_blank', rel: 'noopener' }, t('feature.asGeoJson'))),
    );

    this.destroyChart?.();
    this.destroyChart = undefined;
    this.root.replaceChildren(
      this.header(e.id, title, type),
      el('p', { class: 'entity-id' }, el('code', {}, e.id), geom ? el('span', { class: 'muted' }, ` · ${geomLabel(geom)}`) : null),
      chartSection ?? '',
      this.opts.extra?.(e.id) ?? '',
      // how a model's result was computed comes first: it is what such a value means
      ...[...runs.values()].map((r, i) => this.runSection(r, i, e)),
      section('feature-attrs', t('feature.attributes'), table),
      section('feature-provenance', t('feature.provenance'), provList),
      section('feature-dataset', datasets.length > 1 ? t('feature.datasets') : t('feature.dataset'), dsBox),
      section('feature-links', t('feature.links'), links),
    );
    if (chartSection) await this.loadChart(e.id, attrs);
  }

  /** "How this was computed": the model, its parameters and inputs of the run named as the values' source. */
  private runSection(ref: RunRef, i: number, e: Entity): HTMLElement {
    const id = i ? `feature-simulation-${i}` : 'feature-simulation';
    const box = el('div', { class: 'simulation', 'data-run': ref.path }, el('p', { class: 'muted' }, t('feature.loading')));
    const s = section(id, t('simulation.title'), box);
    s.id = id;
    runAnswer(ref.path).then(
      (run) => {
        if (this.entity !== e) return;
        const p = parseRunProvenance(run);
        box.replaceChildren(...(p ? renderRunProvenance(p, ref) : [el('p', { class: 'muted no-provenance' }, t('simulation.none')), runLink(ref)]));
      },
      (err: unknown) => {
        if (this.entity !== e) return;
        box.replaceChildren(el('p', { class: 'error' }, t('simulation.error', { detail: err instanceof Error ? err.message : String(err) })), runLink(ref));
      },
    );
    return s;
  }

  private attrRow(k: string, a: Attribute, observedColumn: boolean): HTMLElement {
    const v = attrValue(a);
    let valueCell: Node | string;
    if (a.type === 'Relationship' && typeof v === 'string') {
      const b = el('button', { type: 'button', class: 'link-button' }, v);
      b.addEventListener('click', () => this.opts.onOpenEntity(v));
      valueCell = b;
    } else valueCell = formatValue(k, v, a.unitCode);
    const obs = a.observedAt ? timeEl(a.observedAt, true) : '';
    const ds = a.datasetId ? el('span', { class: 'muted' }, ` (${a.datasetId})`) : null;
    return el(
      'tr',
      { 'data-attr': k },
      el('th', { scope: 'row' }, attrLabel(k), ds),
      el('td', {}, valueCell),
      observedColumn ? el('td', {}, obs) : null,
    );
  }

  private chartSection(id: string, observed: string[]): HTMLElement {
    this.chartAttr = this.chartAttr && observed.includes(this.chartAttr) ? this.chartAttr : observed[0];
    const sel = el('select', { id: 'chart-attr' }) as HTMLSelectElement;
    for (const k of observed) sel.append(el('option', { value: k }, attrLabel(k)));
    sel.value = this.chartAttr!;
    sel.addEventListener('change', () => {
      this.chartAttr = sel.value;
      if (this.entity) void this.loadChart(id, attributes(this.entity));
    });
    return section(
      'feature-chart',
      t('feature.history'),
      el('div', { class: 'chart-controls' }, el('label', { for: 'chart-attr' }, t('feature.chartAttr')), sel),
      el('div', { class: 'chart', id: 'feature-chart-box' }),
    );
  }

  private async loadChart(id: string, attrs: [string, Attribute[]][]): Promise<void> {
    const attr = this.chartAttr;
    const box = this.root.querySelector<HTMLElement>('#feature-chart-box');
    if (!attr || !box) return;
    const unit = unitSymbol(attrs.find(([k]) => k === attr)?.[1][0]?.unitCode);
    try {
      const te = await getTemporal(id, [attr], 200, this.abort?.signal);
      if (this.current !== id || this.chartAttr !== attr) return;
      const raw = te[attr] as TemporalValues | TemporalValues[] | undefined;
      const list = Array.isArray(raw) ? raw : raw ? [raw] : [];
      const points: [number, number][] = [];
      for (const s of list)
        for (const [v, time] of s.values ?? [])
          if (typeof v === 'number') points.push([Date.parse(time) / 1000, v]);
      points.sort((a, b) => a[0] - b[0]);
      this.destroyChart?.();
      this.destroyChart = drawChart(box, { label: attrLabel(attr), unit, points });
    } catch (err) {
      if (this.current !== id) return;
      box.replaceChildren(el('p', { class: 'error' }, t('feature.error', { detail: err instanceof Error ? err.message : String(err) })));
    }
  }
}

/** Parameters as a definition list; a group of parameters (`bpr: {b, power}`) as a list inside (two levels deep). */
function paramList(entries: [string, unknown][], depth = 0): HTMLElement {
  return dl(
    entries.map(([k, v]) => {
      const group = v && typeof v === 'object' && !Array.isArray(v) && depth < 2 ? Object.entries(v as Record<string, unknown>) : undefined;
      return [humanize(k), group?.length ? paramList(group, depth + 1) : paramText(v)] as [string, Node | string];
    }),
  );
}

function runLink(ref: RunRef): HTMLElement {
  return el('p', {}, el('a', { href: ref.path, target: '_blank', rel: 'noopener' }, t('simulation.runLink', { run: ref.run })));
}

/** A run's provenance: model, version and method; who asked and when it was computed; parameters; inputs. */
export function renderRunProvenance(p: RunProvenance, ref: RunRef): HTMLElement[] {
  const model = [p.model.name, p.model.version ? t('simulation.version', { v: p.model.version }) : undefined].filter(Boolean).join(' ');
  const rows: [string, Node | string][] = [
    [t('simulation.model'), model || t('feature.unknown')],
    ...(p.model.method ? ([[t('simulation.method'), p.model.method]] as [string, string][]) : []),
    [t('simulation.requestedBy'), p.requestedBy ?? t('simulation.anonymous')],
    [t('simulation.computedAt'), p.computedAt ? timeEl(p.computedAt) : t('feature.unknown')],
    [t('simulation.scenario'), el('code', {}, ref.scenario)],
  ];
  const out: HTMLElement[] = [dl(rows)];
  if (p.parameters.length) out.push(el('h4', {}, t('simulation.parameters')), paramList(p.parameters));
  out.push(el('h4', {}, t('simulation.inputs')));
  if (p.inputs.length)
    out.push(
      el(
        'table',
        { class: 'simulation-inputs' },
        el('caption', { class: 'sr-only' }, t('simulation.inputsCaption')),
        el(
          'thead',
          {},
          el(
            'tr',
            {},
            el('th', { scope: 'col' }, t('feature.dataset')),
            el('th', { scope: 'col' }, t('feature.licence')),
            el('th', { scope: 'col' }, t('feature.owner')),
            el('th', { scope: 'col', class: 'num' }, t('simulation.entities')),
          ),
        ),
        el(
          'tbody',
          {},
          ...p.inputs.map((d) =>
            el(
              'tr',
              { 'data-dataset': d.dataset },
              el('th', { scope: 'row' }, d.title ?? d.dataset ?? ''),
              el('td', {}, d.licence ? licenceEl(d.licence) : t('feature.unknown')),
              el('td', {}, d.owner ?? t('feature.unknown')),
              el('td', { class: 'num' }, d.entities !== undefined ? fmtNumber(d.entities, 0) : '—'),
            ),
          ),
        ),
      ),
    );
  else out.push(el('p', { class: 'muted' }, t('simulation.noInputs')));
  out.push(runLink(ref));
  return out;
}

function section(id: string, title: string, ...children: (Node | string)[]): HTMLElement {
  return el('section', { class: 'panel-section', 'aria-labelledby': `${id}-h` }, el('h3', { id: `${id}-h` }, title), ...children);
}

function dl(rows: [string, Node | string][]): HTMLElement {
  const d = el('dl');
  for (const [k, v] of rows) d.append(el('dt', {}, k), el('dd', {}, v));
  return d;
}

function timeEl(iso: string, relative = false): HTMLElement {
  const e = el('time', { datetime: iso, title: iso }, fmtDateTime(iso));
  if (relative) e.append(el('span', { class: 'muted' }, ` (${fmtRelative(iso)})`));
  return e;
}

function linkOrText(s: string): Node | string {
  if (/^https?:\/\//.test(s)) return el('a', { href: s, target: '_blank', rel: 'noopener noreferrer' }, s);
  return s;
}

function channelLabel(c: string): string {
  const [kind, detail] = c.split(':');
  const key = `channels.${kind}`;
  const base = has(key) ? t(key) : c;
  return detail && has(key) ? `${base} (${detail})` : base;
}

const SPDX_URLS: Record<string, string> = {
  'ODbL-1.0': 'https://opendatacommons.org/licenses/odbl/1-0/',
  'CC0-1.0': 'https://creativecommons.org/publicdomain/zero/1.0/',
  'CC-BY-4.0': 'https://creativecommons.org/licenses/by/4.0/',
  'CC-BY-SA-4.0': 'https://creativecommons.org/licenses/by-sa/4.0/',
};

function licenceEl(l: string): Node | string {
  const url = SPDX_URLS[l] ?? (/^https?:\/\//.test(l) ? l : undefined);
  return url ? el('a', { href: url, target: '_blank', rel: 'noopener noreferrer' }, l) : l;
}

function geomLabel(g: string): string {
  return has(`geometry.${g}`) ? t(`geometry.${g}`) : g;
}

/** A value as people read it: numbers localised with their unit, lists joined, dates formatted, objects as pairs. */
export function formatValue(attr: string, v: unknown, unitCode?: string): Node | string {
  const unit = unitSymbol(unitCode);
  if (typeof v === 'number') return `${fmtNumber(v, 2)}${unit ? ` ${unit}` : ''}`;
  if (typeof v === 'boolean') return v ? t('feature.yes') : t('feature.no');
  if (typeof v === 'string') {
    if (/^https?:\/\//.test(v)) return linkOrText(v);
    if (/^\d{4}-\d{2}-\d{2}T/.test(v)) return timeEl(v);
    if (attr === 'category' || attr === 'roadClass') return valueLabel(attr, v);
    return v;
  }
  if (Array.isArray(v)) {
    return v.map((x) => (typeof x === 'string' && (attr === 'category' || attr === 'allowedVehicleType') ? valueLabel(attr, x) : typeof x === 'object' ? JSON.stringify(x) : String(x))).join(', ');
  }
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if (o['@type'] === 'DateTime' && typeof o['@value'] === 'string') return timeEl(o['@value']);
    if (o['@value'] !== undefined) return String(o['@value']);
    if (attr === 'address') {
      const parts = [o.streetAddress, [o.postalCode, o.addressLocality].filter(Boolean).join(' '), o.addressCountry].filter(Boolean);
      if (parts.length) return parts.join(', ');
    }
    return dl(Object.entries(o).map(([k, x]) => [humanize(k), typeof x === 'object' ? JSON.stringify(x) : String(x)]));
  }
  return v === null || v === undefined ? '' : String(v);
}
