// "What if…" in the 15-minute city panel: a place added on the map (a new grocery, pharmacy, school…) and the change it
// makes, from `POST /api/access/scenario` (docs/api.md, "The 15-minute city"): the mean score, the share reaching every
// need, per category the change in percentage points, and on the map the homes whose score changed, coloured by the
// change (a diverging, colour-blind-safe scale: better blue, worse orange and red), above the homes layer. Besides
// new places: a place taken away (picked on the map among the points of interest) and the paths closed in an area
// (drawn with a Sketch of its own, `app-whatif-*` layers, beside the traffic editor's).

import type { ExpressionSpecification, GeoJSONSource, Map as MlMap } from 'maplibre-gl';
import { ApiError, postAccessScenario, type AccessEdit, type AccessOptions, type AccessScenarioResult } from './api';
import { el } from './dom';
import { ringAreaM2, Sketch, type Position } from './draw';
import { fmtNumber, t, valueLabel } from './i18n';

export const CHANGE_SOURCE = 'app-access-change';
export const CHANGE_LAYER = 'app-access-change';
export const EDITS_SOURCE = 'app-access-edits';
export const EDITS_LAYER = 'app-access-edits';
/** The layers whose places can be taken away (features with `id`, the PointOfInterest URN, and `category`). */
export const POI_LAYERS = ['app-poi-icons', 'pois'] as const;
/** The id prefix of the What if sketch's layers (`app-whatif-sketch`…; the traffic editor's are `app-sketch`…). */
export const SKETCH_PREFIX = 'app-whatif';
export const AREA_COLOR = '#b2182b';

/** A score change that counts as "much" (a whole category of ten, less a rounding margin). */
export const MUCH = 0.095;

/**
 * The change classes, best first: much better, better, worse, much worse (PuOr/RdBu-like, colour-blind-safe; a dark
 * outline on the circles keeps even the light ones at 3:1 against the map).
 */
export const CHANGE_COLOURS = ['#2166ac', '#67a9cf', '#e08214', '#b2182b'] as const;

export type ChangeClass = 'better' | 'worse' | 'same';

/** Whether a change is an improvement (with a small dead band for float noise). */
export function changeClass(d: number, eps = 1e-9): ChangeClass {
  return d > eps ? 'better' : d < -eps ? 'worse' : 'same';
}

/** The colour index (0..3, `CHANGE_COLOURS`) of a home's score change; -1 for none. */
export function changeColourIndex(d: number): number {
  const c = changeClass(d);
  if (c === 'same') return -1;
  if (c === 'better') return d >= MUCH ? 0 : 1;
  return d <= -MUCH ? 3 : 2;
}

/** The circle colour of the change layer (the feature's `change` = scoreAfter − scoreBefore). */
export function changeColourExpression(): ExpressionSpecification {
  return [
    'step',
    ['coalesce', ['get', 'change'], 0],
    CHANGE_COLOURS[3],
    -MUCH + 1e-9,
    CHANGE_COLOURS[2],
    0,
    CHANGE_COLOURS[1],
    MUCH,
    CHANGE_COLOURS[0],
  ];
}

const MINUS = '\u2212';

/** GeoJSON points (what the two sources hold). */
export interface PointCollection {
  type: 'FeatureCollection';
  features: { type: 'Feature'; geometry: { type: 'Point'; coordinates: [number, number] }; properties: Record<string, unknown> }[];
}
type SetData = Parameters<GeoJSONSource['setData']>[0];

function signed(d: number, digits: number): string {
  const r = Number(Math.abs(d).toFixed(digits));
  if (r === 0 && changeClass(d) === 'same') return '±0';
  const v = r === 0 ? fmtNumber(Math.abs(d), digits + 2) : fmtNumber(r, digits);
  return `${d < 0 ? MINUS : '+'}${v}`;
}

/** A change of the score (0..1): `+0.04`, `−0.12`, `±0`; three decimals when it is under 0.01. */
export function formatScoreChange(d: number): string {
  return signed(d, Math.abs(d) < 0.01 ? 3 : 2);
}

/** A change of a share (0..1) in percentage points: `+3.2 pp`, `−0.5 pp`, `±0 pp`. */
export function formatPointsChange(d: number): string {
  return t('access.whatif.points', { n: signed(d * 100, 1) });
}

/** The words for a change (so that it is not told by colour alone). */
export function changeWord(d: number): string {
  return t(`access.whatif.word.${changeClass(d)}`);
}

/** The legend of the change layer, best first. */
export function changeLegend(): { color: string; label: string }[] {
  const n = fmtNumber(0.1, 1);
  return [
    { color: CHANGE_COLOURS[0], label: t('access.whatif.legend.muchBetter', { n }) },
    { color: CHANGE_COLOURS[1], label: t('access.whatif.legend.better') },
    { color: CHANGE_COLOURS[2], label: t('access.whatif.legend.worse') },
    { color: CHANGE_COLOURS[3], label: t('access.whatif.legend.muchWorse', { n }) },
  ];
}

/** The body of `POST /api/access/scenario`: the edits as the API takes them (no empty names). */
export function scenarioBody(edits: AccessEdit[]): { edits: AccessEdit[] } {
  return {
    edits: edits.map((e) => {
      if (e.kind === 'closePaths' && isPolygon(e.area))
        return { ...e, area: { type: 'Polygon', coordinates: e.area.coordinates.map((ring) => ring.map((p): Position => [round6(p[0]), round6(p[1])])) } };
      if (e.kind !== 'addDestination') return e;
      const out: AccessEdit = { kind: 'addDestination', category: e.category, lon: round6(e.lon), lat: round6(e.lat) };
      if (e.name?.trim()) out.name = e.name.trim();
      return out;
    }),
  };
}

/** A GeoJSON Polygon (what a drawn area is). */
export interface Polygon {
  type: 'Polygon';
  coordinates: Position[][];
}

function isPolygon(a: unknown): a is Polygon {
  return !!a && typeof a === 'object' && (a as Polygon).type === 'Polygon' && Array.isArray((a as Polygon).coordinates);
}

/** The edit taking away the place of a point of interest's map feature (its `id`), with a name for the list. */
export function removeEditOf(properties: Record<string, unknown> | null | undefined): { edit: AccessEdit; name: string } | undefined {
  const id = properties?.id;
  if (typeof id !== 'string' || !id) return undefined;
  const name = typeof properties?.name === 'string' && properties.name.trim() ? properties.name.trim() : undefined;
  const category = typeof properties?.category === 'string' && properties.category ? valueLabel('category', properties.category) : undefined;
  return { edit: { kind: 'removeDestination', id }, name: name ?? category ?? id.split(':').pop() ?? id };
}

/** The words for an edit in the list (`name`: of a place taken away). */
export function editLabel(e: AccessEdit, name?: string): string {
  switch (e.kind) {
    case 'addDestination':
      return t('access.whatif.edit.add', { category: valueLabel('category', e.category), lon: fmtNumber(e.lon, 5), lat: fmtNumber(e.lat, 5) });
    case 'removeDestination':
      return t('access.whatif.edit.remove', { name: name ?? e.id.split(':').pop() ?? e.id });
    case 'closePaths':
      return isPolygon(e.area)
        ? t('access.whatif.edit.closeArea', { ha: fmtNumber(ringAreaM2(e.area.coordinates[0] ?? []) / 10_000, 1) })
        : t('access.whatif.edit.closeLinks', { n: fmtNumber(e.links?.length ?? 0, 0) });
    default:
      return e.kind;
  }
}

/** The areas of the edits closing paths, as GeoJSON polygons (drawn while listed). */
export function areaFeatures(edits: AccessEdit[]): { type: 'Feature'; properties: Record<string, unknown>; geometry: Polygon }[] {
  return edits.flatMap((e, i) => (e.kind === 'closePaths' && isPolygon(e.area) ? [{ type: 'Feature' as const, properties: { index: i }, geometry: e.area }] : []));
}

function round6(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}

/** How many homes (and residents) are better and worse off. */
export function countChanges(r: Pick<AccessScenarioResult, 'homes'>): { better: number; worse: number; residentsBetter: number; residentsWorse: number } {
  const out = { better: 0, worse: 0, residentsBetter: 0, residentsWorse: 0 };
  for (const h of r.homes) {
    const c = changeClass(h.scoreAfter - h.scoreBefore);
    if (c === 'better') {
      out.better++;
      out.residentsBetter += h.residents;
    } else if (c === 'worse') {
      out.worse++;
      out.residentsWorse += h.residents;
    }
  }
  return out;
}

/** The changed homes as GeoJSON points with `change`. */
export function changeFeatures(r: Pick<AccessScenarioResult, 'homes'>): PointCollection {
  return {
    type: 'FeatureCollection',
    features: r.homes.map((h) => ({
      type: 'Feature',
      geometry: { type: 'Point', coordinates: [h.lon, h.lat] },
      properties: { id: h.id, residents: h.residents, change: h.scoreAfter - h.scoreBefore },
    })),
  };
}

/** The places added, as GeoJSON points. */
export function editFeatures(edits: AccessEdit[]): PointCollection {
  return {
    type: 'FeatureCollection',
    features: edits.flatMap((e, i) =>
      e.kind === 'addDestination'
        ? [{ type: 'Feature' as const, geometry: { type: 'Point' as const, coordinates: [e.lon, e.lat] }, properties: { index: i, category: e.category } }]
        : [],
    ),
  };
}

export interface WhatIfOptions {
  /** The options of the panel (mode, minutes, profile) for the request. */
  request: () => AccessOptions;
  /** The categories to offer (the model's). */
  categories: () => string[];
  /** The baseline homes layer, dimmed while the change is shown. */
  homesLayer: string;
}

/** The "What if…" section of the 15-minute city panel and its map layers. */
export class WhatIf {
  readonly element = el('section', { class: 'whatif', 'aria-labelledby': 'whatif-title' });
  private edits: AccessEdit[] = [];
  private result: AccessScenarioResult | undefined;
  private error: string | undefined;
  private busy = false;
  private controller: AbortController | undefined;
  private shown = false;
  private placingOn = false;
  private removingOn = false;
  /** The names of the places taken away, for the list. */
  private readonly names = new WeakMap<AccessEdit, string>();
  /** Drawing an area whose paths close. */
  readonly sketch: Sketch;
  private category = 'grocery';
  private readonly categorySelect = el('select', { id: 'whatif-category' });
  private readonly placeButton = el('button', { type: 'button', id: 'whatif-place', class: 'text-button' });
  private readonly removeButton = el('button', { type: 'button', id: 'whatif-remove-place', class: 'text-button' });
  private readonly areaButton = el('button', { type: 'button', id: 'whatif-close-area', class: 'text-button' });
  private readonly finishButton = el('button', { type: 'button', id: 'whatif-finish', class: 'text-button primary' });
  private readonly undoButton = el('button', { type: 'button', id: 'whatif-undo', class: 'text-button' });
  private readonly cancelDrawButton = el('button', { type: 'button', id: 'whatif-cancel-draw', class: 'text-button' });
  private readonly drawTools = el('div', { class: 'draw-tools', id: 'whatif-draw-tools' });
  private readonly statusEl = el('p', { class: 'access-status', id: 'whatif-status', role: 'status', 'aria-live': 'polite' });
  private readonly onKey = (e: KeyboardEvent) => {
    if (e.key !== 'Escape' || !(this.placingOn || this.removingOn)) return;
    e.preventDefault();
    e.stopPropagation();
    const removing = this.removingOn;
    this.setPlacing(false);
    this.setRemoving(false);
    this.status(t(removing ? 'access.whatif.removeCancelled' : 'access.whatif.cancelled'));
  };

  constructor(
    private readonly map: MlMap,
    private readonly opts: WhatIfOptions,
  ) {
    this.categorySelect.addEventListener('change', () => (this.category = this.categorySelect.value));
    this.placeButton.addEventListener('click', () => this.setPlacing(!this.placingOn));
    this.removeButton.addEventListener('click', () => this.setRemoving(!this.removingOn));
    this.areaButton.addEventListener('click', () => this.toggleDrawing());
    this.finishButton.addEventListener('click', () => {
      if (!this.sketch.finish()) this.status(t('access.whatif.area.tooFew'), true);
    });
    this.undoButton.addEventListener('click', () => this.sketch.undo());
    this.cancelDrawButton.addEventListener('click', () => this.sketch.cancel());
    this.drawTools.append(this.finishButton, this.undoButton, this.cancelDrawButton);
    this.sketch = new Sketch(map, {
      idPrefix: SKETCH_PREFIX,
      color: AREA_COLOR,
      onChange: (_kind, n) => {
        this.renderTools();
        this.status(t('access.whatif.area.progress', { n }));
      },
      onFinish: (shape) => {
        if (shape.kind !== 'area') return;
        this.edits.push({ kind: 'closePaths', area: shape.polygon });
        this.status(t('access.whatif.area.done', { ha: fmtNumber(ringAreaM2(shape.polygon.coordinates[0]!) / 10_000, 1) }));
        this.staleResult();
        this.render();
      },
      onCancel: () => {
        this.renderTools();
        this.status(t('access.whatif.area.cancelled'));
      },
    });
  }

  /** Waiting for a point of interest to take away (a click on it, or Enter on the focused map). */
  get removing(): boolean {
    return this.removingOn;
  }

  /** Drawing an area whose paths close. */
  get drawing(): boolean {
    return this.sketch.drawing !== undefined;
  }

  setRemoving(on: boolean): void {
    if (on === this.removingOn) return;
    if (on) {
      this.setPlacing(false);
      this.sketch.cancel();
    }
    this.removingOn = on;
    this.syncKeys();
    this.map.getCanvas().style.cursor = on ? 'crosshair' : '';
    this.renderTools();
    if (on) this.status(t('access.whatif.removing'));
  }

  /** The point of interest at a point of the screen (the layers of `POI_LAYERS` shown), if any. */
  poiAt(point: { x: number; y: number }, radius = 6): Record<string, unknown> | undefined {
    const layers = POI_LAYERS.filter((id) => this.map.getLayer(id));
    if (!layers.length) return undefined;
    const box: [[number, number], [number, number]] = [
      [point.x - radius, point.y - radius],
      [point.x + radius, point.y + radius],
    ];
    return this.map.queryRenderedFeatures(box, { layers }).find((f) => typeof f.properties?.id === 'string')?.properties;
  }

  /** The click of the remove mode: the place there is taken away (nothing there: the mode goes on). */
  pickRemove(properties: Record<string, unknown> | undefined): void {
    const r = removeEditOf(properties);
    if (!r) {
      this.status(t('access.whatif.nothingToRemove'), true);
      return;
    }
    this.setRemoving(false);
    if (this.edits.some((e) => e.kind === 'removeDestination' && e.id === (r.edit as { id: string }).id)) {
      this.status(t('access.whatif.alreadyRemoved', { name: r.name }));
      return;
    }
    this.names.set(r.edit, r.name);
    this.edits.push(r.edit);
    this.status(t('access.whatif.removed', { name: r.name }));
    this.staleResult();
    this.render();
  }

  /** A corner of the area being drawn (a click, or the centre cross for the keyboard). */
  addPoint(p: Position): void {
    this.sketch.addPoint(p);
  }

  private toggleDrawing(): void {
    if (this.sketch.drawing) {
      this.sketch.cancel();
      return;
    }
    this.setPlacing(false);
    this.setRemoving(false);
    this.sketch.start('area');
    this.renderTools();
    this.status(t('access.whatif.area.hint'));
  }

  private syncKeys(): void {
    if (this.placingOn || this.removingOn) window.addEventListener('keydown', this.onKey, true);
    else window.removeEventListener('keydown', this.onKey, true);
  }

  /** The mode buttons and the drawing tools as the modes are. */
  private renderTools(): void {
    this.placeButton.setAttribute('aria-pressed', String(this.placingOn));
    this.placeButton.textContent = this.placingOn ? t('access.whatif.stopPlacing') : t('access.whatif.place');
    this.removeButton.setAttribute('aria-pressed', String(this.removingOn));
    this.removeButton.textContent = this.removingOn ? t('access.whatif.stopRemoving') : t('access.whatif.removePlace');
    const drawing = this.drawing;
    this.areaButton.setAttribute('aria-pressed', String(drawing));
    this.areaButton.textContent = t('access.whatif.area.button');
    this.drawTools.hidden = !drawing;
    this.finishButton.textContent = t('access.whatif.area.finish');
    this.undoButton.textContent = t('access.whatif.area.undo');
    this.undoButton.disabled = !this.sketch.count;
    this.cancelDrawButton.textContent = t('access.whatif.area.cancel');
  }

  /** Waiting for a point on the map (a click, or Enter at the centre cross). */
  get placing(): boolean {
    return this.placingOn;
  }

  /** The result on the map (for the tests). */
  get comparison(): AccessScenarioResult | undefined {
    return this.result;
  }

  setPlacing(on: boolean): void {
    if (on === this.placingOn) return;
    if (on) {
      this.setRemoving(false);
      this.sketch.cancel();
    }
    this.placingOn = on;
    this.syncKeys();
    this.map.getCanvas().style.cursor = on ? 'crosshair' : '';
    this.renderTools();
    if (on) this.status(t('access.whatif.placing', { category: valueLabel('category', this.category) }));
  }

  /** The point of the pick mode: a new place of the chosen category there. */
  place(lonLat: [number, number]): void {
    this.setPlacing(false);
    this.edits.push({ kind: 'addDestination', category: this.category, lon: lonLat[0], lat: lonLat[1] });
    this.status(t('access.whatif.placed', { category: valueLabel('category', this.category) }));
    this.staleResult();
    this.render();
  }

  addLayers(beforeId?: string): void {
    if (this.map.getSource(CHANGE_SOURCE)) return;
    const before = beforeId && this.map.getLayer(beforeId) ? beforeId : undefined;
    const empty: PointCollection = { type: 'FeatureCollection', features: [] };
    this.map.addSource(CHANGE_SOURCE, { type: 'geojson', data: empty as unknown as SetData });
    this.map.addLayer(
      {
        id: CHANGE_LAYER,
        type: 'circle',
        source: CHANGE_SOURCE,
        layout: { visibility: 'none' },
        paint: {
          'circle-color': changeColourExpression(),
          'circle-radius': ['interpolate', ['linear'], ['zoom'], 12, 3.5, 14, 5, 16, 8, 18, 13],
          'circle-stroke-color': '#1a1a1a',
          'circle-stroke-width': ['interpolate', ['linear'], ['zoom'], 12, 0.8, 16, 1.5],
          'circle-pitch-alignment': 'map',
        },
      },
      before,
    );
    this.map.addSource(EDITS_SOURCE, { type: 'geojson', data: empty as unknown as SetData });
    this.map.addLayer(
      {
        id: EDITS_LAYER,
        type: 'circle',
        source: EDITS_SOURCE,
        layout: { visibility: 'none' },
        paint: {
          'circle-color': '#ffffff',
          'circle-radius': ['interpolate', ['linear'], ['zoom'], 12, 6, 16, 10, 18, 14],
          'circle-stroke-color': '#000000',
          'circle-stroke-width': 4,
          'circle-pitch-alignment': 'map',
        },
      },
      before,
    );
    this.sketch.addLayers(before);
  }

  /** Shown with the panel; hidden, it stops picking and takes its layers off the map. */
  show(on: boolean): void {
    this.shown = on;
    if (!on) {
      this.setPlacing(false);
      this.setRemoving(false);
      this.sketch.cancel();
      this.controller?.abort();
    }
    this.paint();
  }

  /** The panel's options changed: a comparison made with the old ones no longer holds. */
  optionsChanged(): void {
    this.controller?.abort();
    if (this.result || this.error) {
      this.staleResult();
      this.render();
    }
  }

  private staleResult(): void {
    this.result = undefined;
    this.error = undefined;
  }

  private status(text: string, error = false): void {
    this.statusEl.textContent = text;
    this.statusEl.classList.toggle('error', error);
  }

  /** Draws the changed homes and the new places (or the baseline view). */
  private paint(): void {
    const m = this.map;
    if (!m.getLayer(CHANGE_LAYER)) return;
    m.getSource<GeoJSONSource>(EDITS_SOURCE)?.setData(editFeatures(this.edits) as unknown as SetData);
    this.sketch.setEditShapes(this.shown ? areaFeatures(this.edits) : []);
    m.getSource<GeoJSONSource>(CHANGE_SOURCE)?.setData((this.result ? changeFeatures(this.result) : { type: 'FeatureCollection', features: [] }) as unknown as SetData);
    const change = this.shown && !!this.result;
    m.setLayoutProperty(CHANGE_LAYER, 'visibility', change ? 'visible' : 'none');
    m.setLayoutProperty(EDITS_LAYER, 'visibility', this.shown && this.edits.length ? 'visible' : 'none');
    if (m.getLayer(this.opts.homesLayer)) m.setPaintProperty(this.opts.homesLayer, 'circle-opacity', change ? 0.25 : 1);
    m.getCanvas().dataset.accessView = change ? 'change' : 'baseline'; // for the tests
  }

  private async compare(): Promise<void> {
    if (!this.edits.length) return;
    this.controller?.abort();
    const controller = new AbortController();
    this.controller = controller;
    this.busy = true;
    this.error = undefined;
    this.element.setAttribute('aria-busy', 'true');
    this.status(t('access.whatif.comparing'));
    this.render();
    try {
      const r = await postAccessScenario(this.opts.request(), scenarioBody(this.edits), controller.signal);
      if (controller.signal.aborted) return;
      this.result = r;
      const n = countChanges(r);
      this.status(t('access.whatif.compared', { better: fmtNumber(n.better, 0), worse: fmtNumber(n.worse, 0) }));
    } catch (e) {
      if (controller.signal.aborted || (e instanceof DOMException && e.name === 'AbortError')) return;
      this.result = undefined;
      this.error = e instanceof ApiError || e instanceof Error ? e.message : String(e);
      this.status(t('access.whatif.error', { detail: this.error }), true);
    } finally {
      if (this.controller === controller) {
        this.controller = undefined;
        this.busy = false;
        this.element.removeAttribute('aria-busy');
        this.render();
      }
    }
  }

  private clear(): void {
    this.controller?.abort();
    this.busy = false;
    this.element.removeAttribute('aria-busy');
    this.staleResult();
    this.status(t('access.whatif.cleared'));
    this.render();
  }

  render(): void {
    const categories = this.opts.categories();
    if (!categories.includes(this.category) && categories.length) this.category = categories[0]!;
    this.categorySelect.replaceChildren(...categories.map((c) => el('option', { value: c }, valueLabel('category', c))));
    this.categorySelect.value = this.category;
    this.renderTools();

    const list = el(
      'ul',
      { class: 'whatif-edits', id: 'whatif-edits', 'aria-label': t('access.whatif.editsLabel') },
      ...this.edits.map((e, i) => {
        const remove = el('button', { type: 'button', class: 'text-button', 'aria-label': t('access.whatif.removeEdit', { n: i + 1 }) }, t('access.whatif.remove'));
        remove.addEventListener('click', () => {
          this.edits.splice(i, 1);
          this.staleResult();
          this.render();
        });
        const text = editLabel(e, this.names.get(e));
        return el('li', { 'data-kind': e.kind }, el('span', {}, text), remove);
      }),
    );
    const compare = el('button', { type: 'button', id: 'whatif-compare', class: 'text-button primary' }, t('access.whatif.compare'));
    if (!this.edits.length || this.busy) compare.setAttribute('disabled', '');
    compare.addEventListener('click', () => void this.compare());
    const clear = el('button', { type: 'button', id: 'whatif-clear', class: 'text-button' }, t('access.whatif.clear'));
    clear.addEventListener('click', () => this.clear());
    if (!this.result) clear.setAttribute('disabled', '');

    this.element.replaceChildren(
      el('h3', { id: 'whatif-title' }, t('access.whatif.title')),
      el('p', { class: 'muted' }, t('access.whatif.intro')),
      el('div', { class: 'field' }, el('label', { for: 'whatif-category' }, t('access.whatif.categoryLabel')), this.categorySelect),
      this.placeButton,
      el('div', { class: 'whatif-modes' }, this.removeButton, this.areaButton),
      this.drawTools,
      this.edits.length ? list : el('p', { class: 'muted', id: 'whatif-empty' }, t('access.whatif.noEdits')),
      el('div', { class: 'whatif-actions' }, compare, clear),
      this.statusEl,
      ...(this.result ? [this.renderResult(this.result)] : []),
    );
    this.paint();
  }

  private renderResult(r: AccessScenarioResult): HTMLElement {
    const n = countChanges(r);
    const change = (d: number, text: string) =>
      el('span', { class: `change change-${changeClass(d)}` }, text, el('span', { class: 'change-word' }, ` (${changeWord(d)})`));
    const metric = (key: string, before: string, after: string, delta: HTMLElement) =>
      el(
        'div',
        { class: 'metric', 'data-metric': key },
        el('dt', {}, t(`access.whatif.metric.${key}`)),
        el('dd', {}, el('span', { class: 'metric-value' }, delta), el('span', { class: 'metric-base muted' }, t('access.whatif.fromTo', { before, after }))),
      );
    const pct = (s: number) => `${fmtNumber(Math.round(s * 1000) / 10, 1)} %`;
    const rows = r.delta.categories
      .filter((c) => Math.abs(c.change) > 1e-9)
      .map((c) =>
        el(
          'tr',
          { 'data-category': c.category },
          el('th', { scope: 'row' }, valueLabel('category', c.category)),
          el('td', { class: 'num' }, pct(c.shareWithin)),
          el('td', { class: 'num' }, change(c.change, formatPointsChange(c.change))),
        ),
      );
    return el(
      'div',
      { id: 'whatif-result' },
      el(
        'dl',
        { class: 'summary-card', id: 'whatif-summary' },
        metric('meanScore', fmtNumber(r.baseline.meanScore, 2), fmtNumber(r.scenario.meanScore, 2), change(r.delta.meanScore, formatScoreChange(r.delta.meanScore))),
        metric(
          'shareAll',
          pct(r.baseline.shareAllWithin),
          pct(r.scenario.shareAllWithin),
          change(r.delta.shareAllWithin, formatPointsChange(r.delta.shareAllWithin)),
        ),
      ),
      el(
        'p',
        { id: 'whatif-homes', 'data-better': String(n.better), 'data-worse': String(n.worse) },
        t('access.whatif.homes', {
          better: fmtNumber(n.better, 0),
          worse: fmtNumber(n.worse, 0),
          residents: fmtNumber(Math.round(n.residentsBetter), 0),
        }),
      ),
      rows.length
        ? el(
            'table',
            { class: 'access-table', id: 'whatif-categories' },
            el('caption', { class: 'sr-only' }, t('access.whatif.tableCaption')),
            el(
              'thead',
              {},
              el(
                'tr',
                {},
                el('th', { scope: 'col' }, t('access.col.category')),
                el('th', { scope: 'col', class: 'num' }, t('access.whatif.col.share')),
                el('th', { scope: 'col', class: 'num' }, t('access.whatif.col.change')),
              ),
            ),
            el('tbody', {}, ...rows),
          )
        : el('p', { class: 'muted' }, t('access.whatif.noCategoryChange')),
      el('h3', { id: 'whatif-legend-title' }, t('access.whatif.legend.title')),
      el(
        'ul',
        { class: 'legend-items access-legend', id: 'whatif-legend', 'aria-labelledby': 'whatif-legend-title' },
        ...changeLegend().map((c) => el('li', {}, el('span', { class: 'swatch swatch-circle', style: `--c: ${c.color}`, 'aria-hidden': 'true' }), el('span', {}, c.label))),
        el('li', {}, el('span', { class: 'swatch swatch-circle whatif-new', style: '--c: #ffffff', 'aria-hidden': 'true' }), el('span', {}, t('access.whatif.legend.newPlace'))),
      ),
    );
  }
}
