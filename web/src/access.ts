// The 15-minute city panel: how many of the residents reach their daily needs (groceries, school, healthcare, a park,
// a stop…) within a threshold on foot or by bike, from `/api/access` (the summary) and `/api/access/homes` (every
// home as a point, drawn on the map by its score or by the minutes to one category). See docs/api.md, "The 15-minute
// city", and docs/models/access.md.

import type { ExpressionSpecification, GeoJSONSource, Map as MlMap } from 'maplibre-gl';
import { ApiError, getAccess, getAccessHomes, type AccessHomes, type AccessOptions, type AccessSummary } from './api';
import { WhatIf } from './access-whatif';
import { el } from './dom';
import { fmtNumber, onLangChange, t, valueLabel } from './i18n';
import { ACCESS_DEFAULT, ACCESS_MINUTES, type AccessState } from './url-state';

export const ACCESS_SOURCE = 'app-access-homes';
export const ACCESS_LAYER = 'app-access-homes';

/** The POI scheme's daily needs, in the order the server lists them. */
export const ACCESS_CATEGORIES = [
  'grocery',
  'school',
  'childcare',
  'healthcare',
  'pharmacy',
  'park',
  'public_transport_stop',
  'restaurant_cafe',
  'culture',
  'sport',
] as const;

/**
 * A sequential, colour-blind-safe ramp (magma): darkest is best (a high score, few minutes), light orange is worst.
 * Every class stands apart from the style's own colours; the circles' dark outline gives even the lightest class 3:1
 * contrast against the light map (WCAG 1.4.11).
 */
export const RAMP = ['#3b0f70', '#8c2981', '#de4968', '#fe9f6d'] as const;
/** No destination of the category within reach. */
export const UNREACHED = '#808080';

/** Score classes: lower bounds, best first (`≥ 0.9`, `0.7–0.9`, `0.5–0.7`, `< 0.5`). */
export const SCORE_BREAKS = [0.9, 0.7, 0.5] as const;

export interface ColourClass {
  color: string;
  /** The legend's words. */
  label: string;
}

/** The class index (0 best) of a score. */
export function scoreClass(score: number): number {
  const i = SCORE_BREAKS.findIndex((b) => score >= b);
  return i === -1 ? SCORE_BREAKS.length : i;
}

/** The upper bounds of the "within" classes for a threshold: ≤ 5, ≤ 10, ≤ threshold (the ones below it, then it). */
export function minuteBreaks(threshold: number): number[] {
  return [...[5, 10].filter((b) => b < threshold), threshold];
}

/** The class index of a number of minutes (null: none within reach → -1). Within classes first, then "over". */
export function minutesClass(minutes: number | null | undefined, threshold: number): number {
  if (minutes === null || minutes === undefined || !Number.isFinite(minutes)) return -1;
  const b = minuteBreaks(threshold);
  const i = b.findIndex((x) => minutes <= x);
  return i === -1 ? b.length : i;
}

/** The colour of a minutes class: the within classes take the ramp's darkest colours, "over" its lightest. */
export function minutesColour(cls: number, threshold: number): string {
  const n = minuteBreaks(threshold).length;
  if (cls < 0) return UNREACHED;
  return cls >= n ? RAMP[RAMP.length - 1]! : RAMP[cls]!;
}

/** The circle colour of the homes layer for an indicator (`score` or a category). */
export function colourExpression(indicator: string, threshold: number): ExpressionSpecification {
  if (indicator === 'score') {
    const v: ExpressionSpecification = ['coalesce', ['get', 'score'], 0];
    return ['step', v, RAMP[3], SCORE_BREAKS[2], RAMP[2], SCORE_BREAKS[1], RAMP[1], SCORE_BREAKS[0], RAMP[0]];
  }
  const prop = `${indicator}Minutes`;
  const b = minuteBreaks(threshold);
  // `step` wants ascending stops: "≤ x" is "< x + ε"; minutes come with two decimals
  const stops: (string | number)[] = [];
  b.forEach((x, i) => {
    if (i === 0) stops.push(RAMP[0]);
    stops.push(x + 0.001, minutesColour(i + 1, threshold));
  });
  return [
    'case',
    ['==', ['typeof', ['get', prop]], 'number'],
    ['step', ['get', prop], ...stops] as unknown as ExpressionSpecification,
    UNREACHED,
  ];
}

/** The legend of an indicator, best class first. */
export function legendClasses(indicator: string, threshold: number): ColourClass[] {
  if (indicator === 'score') {
    const f = (n: number) => fmtNumber(n, 1);
    return [
      { color: RAMP[0], label: t('access.legend.scoreAtLeast', { n: f(SCORE_BREAKS[0]) }) },
      { color: RAMP[1], label: t('access.legend.scoreRange', { a: f(SCORE_BREAKS[1]), b: f(SCORE_BREAKS[0]) }) },
      { color: RAMP[2], label: t('access.legend.scoreRange', { a: f(SCORE_BREAKS[2]), b: f(SCORE_BREAKS[1]) }) },
      { color: RAMP[3], label: t('access.legend.scoreBelow', { n: f(SCORE_BREAKS[2]) }) },
    ];
  }
  const b = minuteBreaks(threshold);
  return [
    ...b.map((x, i) => ({ color: minutesColour(i, threshold), label: t('access.legend.upTo', { n: x }) })),
    { color: minutesColour(b.length, threshold), label: t('access.legend.over', { n: threshold }) },
    { color: UNREACHED, label: t('access.legend.none') },
  ];
}

/** A share (0..1) as a percentage: whole numbers, but never "100 %" nor "0 %" unless it is exactly that. */
export function formatShare(share: number): string {
  const pct = Math.min(100, Math.max(0, share * 100));
  if (pct > 99.5 && pct < 100) return `${fmtNumber(Math.floor(pct * 10) / 10, 1)} %`;
  if (pct > 0 && pct < 0.5) return `${fmtNumber(Math.max(0.1, Math.round(pct * 10) / 10), 1)} %`;
  return `${fmtNumber(Math.round(pct), 0)} %`;
}

/** Minutes with one decimal below 10 (`2.6 min`), whole above; a dash for none. */
export function formatMinutes(m: number | null | undefined): string {
  if (m === null || m === undefined || !Number.isFinite(m)) return '–';
  return t('access.minutes', { n: fmtNumber(m, m < 10 ? 1 : 0) });
}

/** The score (0..1) with two decimals. */
export function formatScore(s: number): string {
  return fmtNumber(s, 2);
}

export interface AccessPanelOptions {
  /** The options changed (for the URL). */
  onChange: (s: AccessState) => void;
}

export class AccessPanel {
  private state: AccessState = { ...ACCESS_DEFAULT };
  private summary: AccessSummary | undefined;
  private homes: AccessHomes | undefined;
  /** The options of the data on the map and in the card (`mode/minutes/profile`). */
  private loadedKey: string | undefined;
  private controller: AbortController | undefined;
  private error: string | undefined;
  private shown = false;
  /** Paint values of the layers dimmed while the homes are shown, to give back. */
  private readonly dimmed = new Map<string, unknown>();

  private readonly modeSelect = el('select', { id: 'access-mode' });
  private readonly profileSelect = el('select', { id: 'access-profile' });
  private readonly profileRow = el('div', { class: 'field' });
  private readonly minutesSelect = el('select', { id: 'access-minutes' });
  private readonly indicatorSelect = el('select', { id: 'access-indicator' });
  private readonly statusEl = el('p', { class: 'access-status', id: 'access-status', role: 'status', 'aria-live': 'polite' });
  private readonly resultEl = el('div', { id: 'access-results' });
  private readonly legendEl = el('div', { class: 'access-legend-box' });
  /** "What if…": a place added on the map and the change it makes. */
  readonly whatIf: WhatIf;

  constructor(
    private readonly root: HTMLElement,
    private readonly map: MlMap,
    private readonly opts: AccessPanelOptions,
  ) {
    this.whatIf = new WhatIf(map, {
      request: () => this.request(),
      categories: () => {
        const missing = new Set(this.summary?.missing ?? []);
        return (this.summary?.categories.map((c) => c.category) ?? [...ACCESS_CATEGORIES]).filter((c) => !missing.has(c));
      },
      homesLayer: ACCESS_LAYER,
    });
    for (const s of [this.modeSelect, this.profileSelect, this.minutesSelect, this.indicatorSelect])
      s.addEventListener('change', () => this.fromControls());
    this.render();
    onLangChange(() => this.render());
  }

  /** The options (for the URL). */
  get options(): AccessState {
    return { ...this.state };
  }

  /** Sets the options (from the URL) and loads what they need if the panel is shown. */
  set(s: AccessState): void {
    const old = this.key();
    this.state = { ...s, profile: s.mode === 'walk' ? s.profile : 'adult' };
    this.syncControls();
    if (this.key() !== old) this.whatIf.optionsChanged();
    if (this.shown) void this.load();
  }

  /** Shows the homes on the map and loads the data for the current options (once per set of options). */
  show(on: boolean): void {
    this.shown = on;
    if (this.map.getLayer(ACCESS_LAYER)) this.map.setLayoutProperty(ACCESS_LAYER, 'visibility', on && this.homes ? 'visible' : 'none');
    this.dimPlaces(on);
    this.whatIf.show(on);
    if (on) void this.load();
    else this.controller?.abort();
  }

  /** While the homes are shown, the places of interest step back (their discs would read as homes' colours). */
  private dimPlaces(on: boolean): void {
    for (const [id, prop] of [
      ['pois', 'circle-opacity'],
      ['app-poi-icons', 'icon-opacity'],
    ] as const) {
      if (!this.map.getLayer(id)) continue;
      if (on && !this.dimmed.has(id)) {
        this.dimmed.set(id, this.map.getPaintProperty(id, prop));
        this.map.setPaintProperty(id, prop, 0.3);
      } else if (!on && this.dimmed.has(id)) {
        this.map.setPaintProperty(id, prop, (this.dimmed.get(id) ?? 1) as number);
        this.dimmed.delete(id);
      }
    }
  }

  /** The homes layer, when it is on the map (for clicks). */
  get layerId(): string | undefined {
    return this.shown && this.homes && this.map.getLayer(ACCESS_LAYER) ? ACCESS_LAYER : undefined;
  }

  /** Adds the homes' source and circle layer (empty and hidden until loaded). */
  addLayers(beforeId?: string): void {
    if (this.map.getSource(ACCESS_SOURCE)) return;
    this.map.addSource(ACCESS_SOURCE, { type: 'geojson', data: { type: 'FeatureCollection', features: [] } });
    const residents: ExpressionSpecification = ['min', 1, ['/', ['coalesce', ['get', 'residents'], 0], 200]];
    this.map.addLayer(
      {
        id: ACCESS_LAYER,
        type: 'circle',
        source: ACCESS_SOURCE,
        layout: { visibility: 'none' },
        paint: {
          'circle-color': colourExpression(this.state.indicator, this.state.minutes),
          // by zoom, a little larger for homes with more residents
          'circle-radius': [
            'interpolate',
            ['linear'],
            ['zoom'],
            12,
            ['+', 2.5, ['*', 1.5, residents]],
            14,
            ['+', 4, ['*', 2, residents]],
            16,
            ['+', 6.5, ['*', 3, residents]],
            18,
            ['+', 11, ['*', 6, residents]],
          ],
          'circle-stroke-color': '#ffffff',
          'circle-stroke-width': ['interpolate', ['linear'], ['zoom'], 12, 0.8, 16, 1.5],
          'circle-pitch-alignment': 'map',
        },
      },
      beforeId && this.map.getLayer(beforeId) ? beforeId : undefined,
    );
    // the change of a "what if" and the places added, above the homes
    this.whatIf.addLayers(beforeId);
  }

  private fromControls(): void {
    const mode = this.modeSelect.value === 'bike' ? 'bike' : 'walk';
    this.state = {
      mode,
      minutes: Number(this.minutesSelect.value) || ACCESS_DEFAULT.minutes,
      profile: mode === 'walk' && this.profileSelect.value === 'older' ? 'older' : 'adult',
      indicator: this.indicatorSelect.value || 'score',
    };
    this.syncControls();
    if (this.key() !== this.loadedKey) this.whatIf.optionsChanged();
    this.opts.onChange(this.options);
    void this.load();
  }

  private key(): string {
    return `${this.state.mode}/${this.state.minutes}/${this.state.mode === 'walk' ? this.state.profile : ''}`;
  }

  private request(): AccessOptions {
    return { mode: this.state.mode, minutes: this.state.minutes, profile: this.state.mode === 'walk' ? this.state.profile : undefined };
  }

  /** Loads the summary and the homes for the current options, unless they are there; repaints either way. */
  private async load(): Promise<void> {
    this.paint();
    const key = this.key();
    if (key === this.loadedKey && !this.error) return;
    this.controller?.abort();
    const controller = new AbortController();
    this.controller = controller;
    this.root.setAttribute('aria-busy', 'true');
    this.error = undefined;
    this.status(t('access.loading'));
    try {
      const [summary, homes] = await Promise.all([getAccess(this.request(), controller.signal), getAccessHomes(this.request(), controller.signal)]);
      if (controller.signal.aborted) return;
      this.summary = summary;
      this.homes = homes;
      this.loadedKey = key;
      this.map.getSource<GeoJSONSource>(ACCESS_SOURCE)?.setData(homes as unknown as Parameters<GeoJSONSource['setData']>[0]);
      this.status(
        t(summary.mode === 'bike' ? 'access.doneBike' : 'access.doneWalk', {
          homes: fmtNumber(summary.homes, 0),
          residents: fmtNumber(Math.round(summary.residents), 0),
          minutes: summary.thresholdMinutes,
        }),
      );
    } catch (e) {
      if (controller.signal.aborted || (e instanceof DOMException && e.name === 'AbortError')) return;
      this.error = e instanceof ApiError || e instanceof Error ? e.message : String(e);
      this.summary = undefined;
      this.homes = undefined;
      this.loadedKey = undefined;
      this.status(t('access.error', { detail: this.error }), true);
    } finally {
      if (this.controller === controller) {
        this.root.removeAttribute('aria-busy');
        this.controller = undefined;
      }
    }
    this.renderResults();
    this.paint();
  }

  private status(text: string, error = false): void {
    this.statusEl.textContent = text;
    this.statusEl.classList.toggle('error', error);
  }

  /** Colours the homes by the chosen indicator and shows them when there are some. */
  private paint(): void {
    const m = this.map;
    if (!m.getLayer(ACCESS_LAYER)) return;
    m.setPaintProperty(ACCESS_LAYER, 'circle-color', colourExpression(this.state.indicator, this.state.minutes));
    // while new options load, the old homes stay until the answer replaces them
    m.setLayoutProperty(ACCESS_LAYER, 'visibility', this.shown && this.homes ? 'visible' : 'none');
    m.getCanvas().dataset.accessIndicator = this.state.indicator; // for the tests
    this.renderLegend();
  }

  // ---- the panel

  private render(): void {
    const option = (value: string, label: string) => el('option', { value }, label);
    this.modeSelect.replaceChildren(option('walk', t('access.mode.walk')), option('bike', t('access.mode.bike')));
    this.profileSelect.replaceChildren(option('adult', t('access.profile.adult')), option('older', t('access.profile.older')));
    this.minutesSelect.replaceChildren(...ACCESS_MINUTES.map((m) => option(String(m), t('access.minutesOption', { n: m }))));
    this.renderIndicatorOptions();
    const field = (id: string, label: string, control: HTMLElement, row = el('div', { class: 'field' })) => {
      row.replaceChildren(el('label', { for: id }, label), control);
      return row;
    };
    this.root.replaceChildren(
      el('p', { class: 'muted access-intro' }, t('access.intro')),
      el(
        'div',
        { class: 'access-options' },
        field('access-mode', t('access.modeLabel'), this.modeSelect),
        field('access-profile', t('access.profileLabel'), this.profileSelect, this.profileRow),
        field('access-minutes', t('access.minutesLabel'), this.minutesSelect),
        field('access-indicator', t('access.indicatorLabel'), this.indicatorSelect),
      ),
      this.statusEl,
      this.legendEl,
      this.resultEl,
      this.whatIf.element,
    );
    this.syncControls();
    this.renderResults();
    this.renderLegend();
    this.whatIf.render();
    if (this.error) this.status(t('access.error', { detail: this.error }), true);
    else if (this.summary)
      this.status(
        t(this.summary.mode === 'bike' ? 'access.doneBike' : 'access.doneWalk', {
          homes: fmtNumber(this.summary.homes, 0),
          residents: fmtNumber(Math.round(this.summary.residents), 0),
          minutes: this.summary.thresholdMinutes,
        }),
      );
  }

  private renderIndicatorOptions(): void {
    const categories = this.summary?.categories.map((c) => c.category) ?? [...ACCESS_CATEGORIES];
    const missing = new Set(this.summary?.missing ?? []);
    this.indicatorSelect.replaceChildren(
      el('option', { value: 'score' }, t('access.indicator.score')),
      el(
        'optgroup',
        { label: t('access.indicator.minutesTo') },
        ...categories
          .filter((c) => !missing.has(c))
          .map((c) => el('option', { value: c }, t('access.indicator.category', { category: valueLabel('category', c) }))),
      ),
    );
    if (this.state.indicator !== 'score' && !categories.includes(this.state.indicator))
      this.indicatorSelect.append(el('option', { value: this.state.indicator }, valueLabel('category', this.state.indicator)));
    this.indicatorSelect.value = this.state.indicator;
  }

  private syncControls(): void {
    this.modeSelect.value = this.state.mode;
    this.profileSelect.value = this.state.profile;
    this.profileSelect.disabled = this.state.mode !== 'walk';
    this.profileRow.hidden = this.state.mode !== 'walk';
    this.minutesSelect.value = String(this.state.minutes);
    if (this.indicatorSelect.value !== this.state.indicator) this.renderIndicatorOptions();
  }

  private renderLegend(): void {
    const indicator = this.state.indicator;
    const title =
      indicator === 'score'
        ? t('access.legend.scoreTitle')
        : t('access.legend.minutesTitle', { category: valueLabel('category', indicator) });
    this.legendEl.replaceChildren(
      el('h3', { id: 'access-legend-title' }, title),
      el(
        'ul',
        { class: 'legend-items access-legend', id: 'access-legend', 'aria-labelledby': 'access-legend-title', 'data-indicator': indicator },
        ...legendClasses(indicator, this.state.minutes).map((c) =>
          el('li', {}, el('span', { class: 'swatch swatch-circle', style: `--c: ${c.color}`, 'aria-hidden': 'true' }), el('span', {}, c.label)),
        ),
      ),
    );
  }

  private renderResults(): void {
    const s = this.summary;
    if (!s) {
      this.resultEl.replaceChildren();
      return;
    }
    this.renderIndicatorOptions();
    this.whatIf.render();
    const missing = new Set(s.missing);
    const metric = (key: string, value: string, note: string) =>
      el('div', { class: 'metric', 'data-metric': key }, el('dt', {}, t(`access.metric.${key}`)), el('dd', {}, el('span', { class: 'metric-value' }, value), el('span', { class: 'metric-base muted' }, note)));
    const rows = s.categories.map((c) => {
      const name = valueLabel('category', c.category);
      if (missing.has(c.category))
        return el(
          'tr',
          { 'data-category': c.category, class: 'missing' },
          el('th', { scope: 'row' }, name),
          el('td', { colspan: '3', class: 'muted' }, t('access.noData')),
        );
      const pct = Math.round(Math.min(1, Math.max(0, c.shareWithin)) * 100);
      return el(
        'tr',
        { 'data-category': c.category },
        el('th', { scope: 'row' }, name),
        el(
          'td',
          { class: 'share' },
          el('span', { class: 'share-bar', 'aria-hidden': 'true' }, el('span', { style: `width: ${pct}%` })),
          el('span', { class: 'share-value' }, formatShare(c.shareWithin)),
        ),
        el('td', { class: 'num' }, formatMinutes(c.medianMinutes)),
        el('td', { class: 'num' }, fmtNumber(c.destinations, 0)),
      );
    });
    this.resultEl.replaceChildren(
      el('h3', { id: 'access-summary-title' }, t('access.summaryTitle')),
      el(
        'dl',
        { class: 'summary-card', id: 'access-summary', 'aria-labelledby': 'access-summary-title' },
        metric('meanScore', formatScore(s.meanScore), t('access.metric.meanScoreNote')),
        metric('shareAll', formatShare(s.shareAllWithin), t('access.metric.shareAllNote', { minutes: s.thresholdMinutes })),
      ),
      el(
        'table',
        { class: 'access-table', id: 'access-categories' },
        el('caption', { class: 'sr-only' }, t('access.tableCaption', { minutes: s.thresholdMinutes })),
        el(
          'thead',
          {},
          el(
            'tr',
            {},
            el('th', { scope: 'col' }, t('access.col.category')),
            el('th', { scope: 'col' }, t('access.col.within', { minutes: s.thresholdMinutes })),
            el('th', { scope: 'col', class: 'num' }, t('access.col.median')),
            el('th', { scope: 'col', class: 'num' }, t('access.col.destinations')),
          ),
        ),
        el('tbody', {}, ...rows),
      ),
      ...(s.missing.length
        ? [
            el(
              'p',
              { class: 'muted access-missing', id: 'access-missing' },
              t('access.missing', { categories: s.missing.map((c) => valueLabel('category', c).toLowerCase()).join(', ') }),
            ),
          ]
        : []),
    );
  }
}
