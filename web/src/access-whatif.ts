// "What if…" in the 15-minute city panel: a place added on the map (a new grocery, pharmacy, school…) and the change it
// makes, from `POST /api/access/scenario` (docs/api.md, "The 15-minute city"): the mean score, the share reaching every
// need, per category the change in percentage points, and on the map the homes whose score changed, coloured by the
// change (a diverging, colour-blind-safe scale: better blue, worse orange and red), above the homes layer. Besides
// new places: a place taken away (picked on the map among the points of interest), the paths closed in an area and a
// new path (a walkway, a crossing, a bridge; both drawn with a Sketch of its own, `app-whatif-*` layers, beside the
// traffic editor's), and paths opened to the mode (links of the routable network, `RoadLink` in the vector tiles, drawn
// and picked while that mode is on; which of them the mode may not use comes from the NGSI-LD API, as the tiles leave
// the links' `walkAccess` and `bikeAccess` objects out).

import type { ExpressionSpecification, FilterSpecification, GeoJSONSource, MapMouseEvent, Map as MlMap } from 'maplibre-gl';
import { ApiError, postAccessScenario, queryEntities, type AccessEdit, type AccessMode, type AccessOptions, type AccessScenarioResult } from './api';
import { el } from './dom';
import { lineLengthM, ringAreaM2, Sketch, type Position } from './draw';
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
/** The colour of what a scenario adds to the network: new paths and paths opened (solid; closed ones are dashed red). */
export const PATH_COLOR = '#1b7837';
/** The new paths of the edits (lines). */
export const NEW_PATHS_SOURCE = 'app-access-new-paths';
export const NEW_PATHS_LAYER = 'app-access-new-paths';
/** How far (metres) the ends of a new path may be from the network node they join (the server's rule). */
export const JOIN_M = 50;

/** The routable network (`RoadLink` vector tiles; not in the map's style) drawn while paths are picked to open. */
export const LINKS_SOURCE = 'app-whatif-links';
export const LINK_LAYERS = {
  /** Links the mode may use (thin). */
  usable: 'app-whatif-links',
  /** Links it may not use today or closed by the scenario (dashed grey). */
  blocked: 'app-whatif-links-blocked',
  /** Links the scenario opens (solid, `PATH_COLOR`; shown while listed). */
  opened: 'app-whatif-links-opened',
} as const;
/** The tiles' `RoadLink` layer starts at this zoom; below it there is nothing to pick. */
export const LINKS_MINZOOM = 13;
/** How near (CSS pixels) to a link a click picks it. */
export const PICK_PX = 6;
/** The page size of the queries of blocked links. */
const LINKS_PAGE = 1000;

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
      if (e.kind === 'addPath') return { kind: 'addPath', path: e.path.map((p): [number, number] => [round6(p[0]), round6(p[1])]) };
      if (e.kind === 'openPaths') return { kind: 'openPaths', links: [...new Set(e.links)] };
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

/** The words for an edit in the list (`name`: of a place taken away, or of the one path opened). */
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
    case 'addPath':
      return t('access.whatif.edit.addPath', { m: fmtNumber(Math.round(lineLengthM(e.path)), 0) });
    case 'openPaths':
      return e.links.length === 1
        ? t('access.whatif.edit.openOne', { name: name ?? e.links[0]!.split(':').pop() ?? e.links[0]! })
        : t('access.whatif.edit.openMany', { n: fmtNumber(e.links.length, 0) });
    default:
      return (e as { kind: string }).kind;
  }
}

/** The areas of the edits closing paths, as GeoJSON polygons (drawn while listed). */
export function areaFeatures(edits: AccessEdit[]): { type: 'Feature'; properties: Record<string, unknown>; geometry: Polygon }[] {
  return edits.flatMap((e, i) => (e.kind === 'closePaths' && isPolygon(e.area) ? [{ type: 'Feature' as const, properties: { index: i }, geometry: e.area }] : []));
}

/** The new paths of the edits, as GeoJSON lines (drawn while listed). */
export function pathFeatures(edits: AccessEdit[]): { type: 'Feature'; properties: Record<string, unknown>; geometry: { type: 'LineString'; coordinates: Position[] } }[] {
  return edits.flatMap((e, i) => (e.kind === 'addPath' ? [{ type: 'Feature' as const, properties: { index: i }, geometry: { type: 'LineString' as const, coordinates: e.path } }] : []));
}

/** The links the edits open (`RoadLink` ids). */
export function openedLinks(edits: AccessEdit[]): string[] {
  return [...new Set(edits.flatMap((e) => (e.kind === 'openPaths' ? e.links : [])))];
}

/** The links the edits close by id. */
export function closedLinks(edits: AccessEdit[]): string[] {
  return [...new Set(edits.flatMap((e) => (e.kind === 'closePaths' ? (e.links ?? []) : [])))];
}

/** The NGSI-LD query of the links a mode may use neither way (or that have no access for it at all). */
export function blockedQuery(mode: AccessMode): string {
  const a = `${mode}Access`;
  return `(${a}[forward]==false;${a}[backward]==false)|!${a}`;
}

/** Whether a `RoadLink` (key-values) lets the mode along it one way or the other (`walkAccess`: `{forward, backward}`). */
export function usableBy(link: Record<string, unknown> | undefined, mode: AccessMode): boolean {
  const a = link?.[`${mode}Access`] as { forward?: unknown; backward?: unknown } | undefined;
  return !!a && typeof a === 'object' && (a.forward === true || a.backward === true);
}

/** A filter on the links' `id`: one of `ids` (an empty list: none). */
export function idFilter(ids: Iterable<string>): ExpressionSpecification {
  const list = [...new Set(ids)].sort();
  return list.length ? ['match', ['get', 'id'], list, true, false] : ['==', ['get', 'id'], ''];
}

/** Whether a point is inside a ring (ray casting; lon/lat as a plane, fine at a city's scale). */
function inRing(p: Position, ring: Position[]): boolean {
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const [xi, yi] = ring[i]!;
    const [xj, yj] = ring[j]!;
    if (yi > p[1] !== yj > p[1] && p[0] < ((xj - xi) * (p[1] - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

function cross(o: Position, a: Position, b: Position): number {
  return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
}

/** Whether segments `ab` and `cd` cross or touch. */
function segmentsMeet(a: Position, b: Position, c: Position, d: Position): boolean {
  const d1 = cross(c, d, a);
  const d2 = cross(c, d, b);
  const d3 = cross(a, b, c);
  const d4 = cross(a, b, d);
  if (((d1 > 0 && d2 < 0) || (d1 < 0 && d2 > 0)) && ((d3 > 0 && d4 < 0) || (d3 < 0 && d4 > 0))) return true;
  const on = (p: Position, q: Position, r: Position) =>
    Math.min(p[0], q[0]) <= r[0] && r[0] <= Math.max(p[0], q[0]) && Math.min(p[1], q[1]) <= r[1] && r[1] <= Math.max(p[1], q[1]);
  return (d1 === 0 && on(c, d, a)) || (d2 === 0 && on(c, d, b)) || (d3 === 0 && on(a, b, c)) || (d4 === 0 && on(a, b, d));
}

/** Whether a line meets a polygon (a point inside it, or an edge crossing its rings): the server's "meeting an area". */
export function lineMeetsPolygon(line: Position[], polygon: Position[][]): boolean {
  const [outer, ...holes] = polygon;
  if (!outer?.length) return false;
  if (line.some((p) => inRing(p, outer) && !holes.some((h) => inRing(p, h)))) return true;
  for (const ring of polygon)
    for (let i = 1; i < ring.length; i++) for (let j = 1; j < line.length; j++) if (segmentsMeet(line[j - 1]!, line[j]!, ring[i - 1]!, ring[i]!)) return true;
  return false;
}

/** A link of the network picked on the map: its `RoadLink` id, a name for the list and its line (lon/lat). */
export interface PickedLink {
  id: string;
  name: string;
  line: Position[];
}

/** The link of a `RoadLink` map feature, if it is one (`id`, `name`, `roadClass`; a LineString or MultiLineString). */
export function linkOf(f: { properties?: Record<string, unknown> | null; geometry?: { type: string; coordinates?: unknown } } | undefined): PickedLink | undefined {
  const id = f?.properties?.id;
  if (typeof id !== 'string' || !id.startsWith('urn:ngsi-ld:RoadLink:')) return undefined;
  const p = f!.properties!;
  const g = f!.geometry;
  const line: Position[] =
    g?.type === 'LineString' ? (g.coordinates as Position[]) : g?.type === 'MultiLineString' ? (g.coordinates as Position[][]).flat() : [];
  const name =
    typeof p.name === 'string' && p.name.trim()
      ? p.name.trim()
      : typeof p.roadClass === 'string' && p.roadClass
        ? valueLabel('roadClass', p.roadClass)
        : (id.split(':').pop() ?? id);
  return { id, name, line };
}

/**
 * What the scenario makes of a link for the mode, the edits applied in order as the server does: `usable` (today, and
 * no edit closes it), `blocked` (today, and no edit opens it), `closed` (by an edit: its id, or an area it meets) or
 * `opened` (by an edit).
 */
export function linkState(link: PickedLink, blockedToday: boolean, edits: AccessEdit[]): 'usable' | 'blocked' | 'closed' | 'opened' {
  let state: 'usable' | 'blocked' | 'closed' | 'opened' = blockedToday ? 'blocked' : 'usable';
  for (const e of edits) {
    if (e.kind === 'closePaths' && (state === 'usable' || state === 'opened')) {
      if (e.links?.includes(link.id) || (isPolygon(e.area) && lineMeetsPolygon(link.line, e.area.coordinates))) state = 'closed';
    } else if (e.kind === 'openPaths' && (state === 'blocked' || state === 'closed') && e.links.includes(link.id)) state = 'opened';
  }
  return state;
}

/** The edits with a link opened: the last edit extended when it opens paths, else a new `openPaths` edit. */
export function withLinkOpened(edits: AccessEdit[], id: string): AccessEdit[] {
  const last = edits[edits.length - 1];
  if (last?.kind === 'openPaths') return [...edits.slice(0, -1), { kind: 'openPaths', links: last.links.includes(id) ? last.links : [...last.links, id] }];
  return [...edits, { kind: 'openPaths', links: [id] }];
}

type BBox = [number, number, number, number];

function bboxContains(outer: BBox, inner: BBox): boolean {
  return outer[0] <= inner[0] && outer[1] <= inner[1] && outer[2] >= inner[2] && outer[3] >= inner[3];
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
  private openingOn = false;
  /** What the sketch draws: an area whose paths close, or a new path. */
  private drawKind: 'area' | 'path' = 'area';
  /** The names of the places taken away, for the list. */
  private readonly names = new WeakMap<AccessEdit, string>();
  /** The names of the links opened, by id, for the list. */
  private readonly linkNames = new Map<string, string>();
  /** The links the mode may not use today, as far as loaded (the boxes queried), for drawing them dashed. */
  private blocked: { mode: AccessMode; ids: Set<string>; boxes: BBox[] } = { mode: 'walk', ids: new Set(), boxes: [] };
  private blockedController: AbortController | undefined;
  /** Drawing an area whose paths close, or a new path. */
  readonly sketch: Sketch;
  private category = 'grocery';
  private readonly categorySelect = el('select', { id: 'whatif-category' });
  private readonly placeButton = el('button', { type: 'button', id: 'whatif-place', class: 'text-button' });
  private readonly removeButton = el('button', { type: 'button', id: 'whatif-remove-place', class: 'text-button' });
  private readonly areaButton = el('button', { type: 'button', id: 'whatif-close-area', class: 'text-button' });
  private readonly pathButton = el('button', { type: 'button', id: 'whatif-add-path', class: 'text-button' });
  private readonly openButton = el('button', { type: 'button', id: 'whatif-open-paths', class: 'text-button' });
  private readonly finishButton = el('button', { type: 'button', id: 'whatif-finish', class: 'text-button primary' });
  private readonly undoButton = el('button', { type: 'button', id: 'whatif-undo', class: 'text-button' });
  private readonly cancelDrawButton = el('button', { type: 'button', id: 'whatif-cancel-draw', class: 'text-button' });
  private readonly drawTools = el('div', { class: 'draw-tools', id: 'whatif-draw-tools' });
  private readonly statusEl = el('p', { class: 'access-status', id: 'whatif-status', role: 'status', 'aria-live': 'polite' });
  private readonly onKey = (e: KeyboardEvent) => {
    if (e.key !== 'Escape' || !(this.placingOn || this.removingOn || this.openingOn)) return;
    e.preventDefault();
    e.stopPropagation();
    const message = this.removingOn ? 'access.whatif.removeCancelled' : this.openingOn ? 'access.whatif.open.cancelled' : 'access.whatif.cancelled';
    this.setPlacing(false);
    this.setRemoving(false);
    this.setOpening(false);
    this.status(t(message));
  };
  /** While opening: the pointer over a link is a pointer. */
  private readonly onHover = (e: MapMouseEvent) => {
    if (this.openingOn) this.map.getCanvas().style.cursor = this.linkAt(e.point) ? 'pointer' : 'crosshair';
  };
  /** While opening: the blocked links of the new view. */
  private readonly onMoveEnd = () => {
    if (this.openingOn) void this.loadBlocked();
  };

  constructor(
    private readonly map: MlMap,
    private readonly opts: WhatIfOptions,
  ) {
    this.categorySelect.addEventListener('change', () => (this.category = this.categorySelect.value));
    this.placeButton.addEventListener('click', () => this.setPlacing(!this.placingOn));
    this.removeButton.addEventListener('click', () => this.setRemoving(!this.removingOn));
    this.areaButton.addEventListener('click', () => this.toggleDrawing('area'));
    this.pathButton.addEventListener('click', () => this.toggleDrawing('path'));
    this.openButton.addEventListener('click', () => this.setOpening(!this.openingOn));
    this.finishButton.addEventListener('click', () => {
      if (!this.sketch.finish()) this.status(t(`access.whatif.${this.drawKind}.tooFew`), true);
    });
    this.undoButton.addEventListener('click', () => this.sketch.undo());
    this.cancelDrawButton.addEventListener('click', () => this.sketch.cancel());
    this.drawTools.append(this.finishButton, this.undoButton, this.cancelDrawButton);
    this.sketch = new Sketch(map, {
      idPrefix: SKETCH_PREFIX,
      color: AREA_COLOR,
      onChange: (kind, n) => {
        this.renderTools();
        this.status(t(kind === 'line' ? 'access.whatif.path.progress' : 'access.whatif.area.progress', { n }));
      },
      onFinish: (shape) => {
        if (shape.kind === 'area') {
          this.edits.push({ kind: 'closePaths', area: shape.polygon });
          this.status(t('access.whatif.area.done', { ha: fmtNumber(ringAreaM2(shape.polygon.coordinates[0]!) / 10_000, 1) }));
        } else {
          this.edits.push({ kind: 'addPath', path: shape.path });
          this.status(t('access.whatif.path.done', { m: fmtNumber(Math.round(lineLengthM(shape.path)), 0) }));
        }
        this.staleResult();
        this.render();
      },
      onCancel: () => {
        this.renderTools();
        this.status(t(`access.whatif.${this.drawKind}.cancelled`));
      },
    });
  }

  /** Waiting for a point of interest to take away (a click on it, or Enter on the focused map). */
  get removing(): boolean {
    return this.removingOn;
  }

  /**
   * Taking points from the map: drawing an area or a new path, or picking paths to open. The app sends the clicks on
   * the map and Enter on the focused map (the centre cross) to `addPoint`.
   */
  get drawing(): boolean {
    return this.sketch.drawing !== undefined || this.openingOn;
  }

  /** What the sketch is drawing: an area whose paths close, a new path, or nothing. */
  get drawingKind(): 'area' | 'path' | undefined {
    return this.sketch.drawing ? this.drawKind : undefined;
  }

  /** Picking paths to open on the map (the network drawn). */
  get opening(): boolean {
    return this.openingOn;
  }

  setRemoving(on: boolean): void {
    if (on === this.removingOn) return;
    if (on) {
      this.setPlacing(false);
      this.setOpening(false);
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

  /**
   * A point from the map (a click, or the centre cross for the keyboard): a corner of the area or a point of the path
   * being drawn; while opening paths, the link there.
   */
  addPoint(p: Position): void {
    if (this.openingOn) {
      void this.pickLink(this.linkAt(this.map.project(p)));
      return;
    }
    this.sketch.addPoint(p);
  }

  /** Starts drawing an area or a new path (the other modes end); the same button again stops. */
  private toggleDrawing(kind: 'area' | 'path'): void {
    if (this.sketch.drawing) {
      const same = this.drawKind === kind;
      this.sketch.cancel();
      if (same) return;
    }
    this.setPlacing(false);
    this.setRemoving(false);
    this.setOpening(false);
    this.drawKind = kind;
    this.sketchColour(kind === 'path' ? PATH_COLOR : AREA_COLOR);
    this.sketch.start(kind === 'path' ? 'line' : 'area');
    this.renderTools();
    this.status(t(`access.whatif.${kind}.hint`, { m: JOIN_M }));
  }

  /** The drawing's colour: red for an area to close, green for a new path. */
  private sketchColour(color: string): void {
    const ids = this.sketch.ids.layers;
    if (this.map.getLayer(ids.line)) this.map.setPaintProperty(ids.line, 'line-color', color);
    if (this.map.getLayer(ids.fill)) this.map.setPaintProperty(ids.fill, 'fill-color', color);
    if (this.map.getLayer(ids.points)) this.map.setPaintProperty(ids.points, 'circle-stroke-color', color);
  }

  private syncKeys(): void {
    if (this.placingOn || this.removingOn || this.openingOn) window.addEventListener('keydown', this.onKey, true);
    else window.removeEventListener('keydown', this.onKey, true);
  }

  /** Picking paths to open: the network drawn (blocked links dashed), a click on a link opens it; Escape ends. */
  setOpening(on: boolean): void {
    if (on === this.openingOn) return;
    if (on) {
      this.setPlacing(false);
      this.setRemoving(false);
      this.sketch.cancel();
    }
    this.openingOn = on;
    this.syncKeys();
    this.map.getCanvas().style.cursor = on ? 'crosshair' : '';
    if (on) {
      this.map.on('mousemove', this.onHover);
      this.map.on('moveend', this.onMoveEnd);
      void this.loadBlocked();
    } else {
      this.map.off('mousemove', this.onHover);
      this.map.off('moveend', this.onMoveEnd);
      this.blockedController?.abort();
      this.blockedController = undefined;
    }
    this.renderTools();
    this.paint();
    if (on) this.status(t(this.mode() === 'bike' ? 'access.whatif.open.hintBike' : 'access.whatif.open.hintWalk'));
  }

  private mode(): AccessMode {
    return this.opts.request().mode;
  }

  /** The link of the network at a point of the screen (within `radius` px; a blocked one before a usable one). */
  linkAt(point: { x: number; y: number }, radius = PICK_PX): PickedLink | undefined {
    const layers = [LINK_LAYERS.blocked, LINK_LAYERS.usable].filter((id) => this.map.getLayer(id));
    if (!layers.length) return undefined;
    const box: [[number, number], [number, number]] = [
      [point.x - radius, point.y - radius],
      [point.x + radius, point.y + radius],
    ];
    const hits = this.map.queryRenderedFeatures(box, { layers });
    const first = hits.find((f) => f.layer?.id === LINK_LAYERS.blocked && linkOf(f)) ?? hits.find((f) => linkOf(f));
    return linkOf(first);
  }

  /**
   * The click of the open mode: a link the mode may not use (today, or closed by an edit) is opened (the last edit
   * extended when it opens paths); one it may use is said so and left. Nothing there: said so. The mode goes on.
   */
  async pickLink(link: PickedLink | undefined): Promise<void> {
    if (!this.openingOn) return;
    if (!link) {
      this.status(t('access.whatif.open.nothing'), true);
      return;
    }
    const mode = this.mode();
    let blockedToday = this.blocked.mode === mode && this.blocked.ids.has(link.id);
    if (!blockedToday) {
      // not among the blocked links loaded: the link itself says
      try {
        const [e] = await queryEntities({ id: link.id, type: 'RoadLink', attrs: `${mode}Access`, options: 'keyValues' });
        blockedToday = !usableBy(e as Record<string, unknown> | undefined, mode);
      } catch (e) {
        this.status(t('access.whatif.open.error', { detail: e instanceof Error ? e.message : String(e) }), true);
        return;
      }
      // the mode ended, or changed, while asking
      if (!this.openingOn || this.mode() !== mode) return;
      if (blockedToday && this.blocked.mode === mode) this.blocked.ids.add(link.id);
    }
    const state = linkState(link, blockedToday, this.edits);
    if (state === 'usable') {
      this.status(t(mode === 'bike' ? 'access.whatif.open.usableBike' : 'access.whatif.open.usableWalk', { name: link.name }));
      return;
    }
    if (state === 'opened') {
      this.status(t('access.whatif.open.already', { name: link.name }));
      return;
    }
    this.linkNames.set(link.id, link.name);
    this.edits = withLinkOpened(this.edits, link.id);
    this.status(t('access.whatif.open.done', { name: link.name }));
    this.staleResult();
    this.render();
  }

  /** The links the mode may not use in the view (and around it), unless loaded; then the map's filters. */
  private async loadBlocked(): Promise<void> {
    const mode = this.mode();
    if (this.blocked.mode !== mode) this.blocked = { mode, ids: new Set(), boxes: [] };
    const store = this.blocked;
    if (this.map.getZoom() < LINKS_MINZOOM) return;
    const b = this.map.getBounds();
    const view: BBox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()];
    if (store.boxes.some((box) => bboxContains(box, view))) return;
    const dx = (view[2] - view[0]) / 2;
    const dy = (view[3] - view[1]) / 2;
    const box: BBox = [view[0] - dx, view[1] - dy, view[2] + dx, view[3] + dy];
    const ring = [
      [box[0], box[1]],
      [box[2], box[1]],
      [box[2], box[3]],
      [box[0], box[3]],
      [box[0], box[1]],
    ].map((p) => p.map(round6));
    this.blockedController?.abort();
    const controller = new AbortController();
    this.blockedController = controller;
    try {
      for (let offset = 0; ; offset += LINKS_PAGE) {
        const page = await queryEntities(
          {
            type: 'RoadLink',
            q: blockedQuery(mode),
            attrs: `${mode}Access`,
            options: 'keyValues',
            georel: 'intersects',
            geometry: 'Polygon',
            coordinates: JSON.stringify([ring]),
            limit: LINKS_PAGE,
            offset,
          },
          controller.signal,
        );
        if (controller.signal.aborted) return;
        for (const e of page) store.ids.add(e.id);
        if (page.length < LINKS_PAGE) break;
      }
      store.boxes.push(box);
      this.paint();
    } catch (e) {
      if (controller.signal.aborted || (e instanceof DOMException && e.name === 'AbortError')) return;
      this.status(t('access.whatif.open.error', { detail: e instanceof Error ? e.message : String(e) }), true);
    } finally {
      if (this.blockedController === controller) this.blockedController = undefined;
    }
  }

  /** The mode buttons and the drawing tools as the modes are. */
  private renderTools(): void {
    this.placeButton.setAttribute('aria-pressed', String(this.placingOn));
    this.placeButton.textContent = this.placingOn ? t('access.whatif.stopPlacing') : t('access.whatif.place');
    this.removeButton.setAttribute('aria-pressed', String(this.removingOn));
    this.removeButton.textContent = this.removingOn ? t('access.whatif.stopRemoving') : t('access.whatif.removePlace');
    const kind = this.drawingKind;
    this.areaButton.setAttribute('aria-pressed', String(kind === 'area'));
    this.areaButton.textContent = t('access.whatif.area.button');
    this.pathButton.setAttribute('aria-pressed', String(kind === 'path'));
    this.pathButton.textContent = t('access.whatif.path.button');
    this.openButton.setAttribute('aria-pressed', String(this.openingOn));
    this.openButton.textContent = this.openingOn ? t('access.whatif.open.stop') : t('access.whatif.open.button');
    this.drawTools.hidden = !kind;
    const tools = kind ?? this.drawKind;
    this.finishButton.textContent = t(`access.whatif.${tools}.finish`);
    this.undoButton.textContent = t(`access.whatif.${tools}.undo`);
    this.undoButton.disabled = !this.sketch.count;
    this.cancelDrawButton.textContent = t(`access.whatif.${tools}.cancel`);
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
      this.setOpening(false);
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
    this.map.addSource(NEW_PATHS_SOURCE, { type: 'geojson', data: empty as unknown as SetData });
    this.map.addLayer(
      {
        id: NEW_PATHS_LAYER,
        type: 'line',
        source: NEW_PATHS_SOURCE,
        layout: { visibility: 'none', 'line-cap': 'round', 'line-join': 'round' },
        paint: { 'line-color': PATH_COLOR, 'line-width': ['interpolate', ['linear'], ['zoom'], 13, 3, 18, 7] },
      },
      before,
    );
    // the routable network, for picking the paths to open (hidden until that mode)
    this.map.addSource(LINKS_SOURCE, {
      type: 'vector',
      tiles: [`${window.location.origin}/tiles/RoadLink/{z}/{x}/{y}.mvt`],
      minzoom: LINKS_MINZOOM,
      maxzoom: 18,
    });
    const width = (w13: number, w18: number): ExpressionSpecification => ['interpolate', ['linear'], ['zoom'], 13, w13, 18, w18];
    this.map.addLayer(
      {
        id: LINK_LAYERS.usable,
        type: 'line',
        source: LINKS_SOURCE,
        'source-layer': 'RoadLink',
        layout: { visibility: 'none', 'line-cap': 'round', 'line-join': 'round' },
        paint: { 'line-color': '#1f4e79', 'line-width': width(1, 2.5), 'line-opacity': 0.85 },
      },
      before,
    );
    this.map.addLayer(
      {
        id: LINK_LAYERS.blocked,
        type: 'line',
        source: LINKS_SOURCE,
        'source-layer': 'RoadLink',
        filter: idFilter([]),
        layout: { visibility: 'none', 'line-join': 'round' },
        paint: { 'line-color': '#595959', 'line-width': width(2, 4), 'line-dasharray': [2, 1.5] },
      },
      before,
    );
    this.map.addLayer(
      {
        id: LINK_LAYERS.opened,
        type: 'line',
        source: LINKS_SOURCE,
        'source-layer': 'RoadLink',
        filter: idFilter([]),
        layout: { visibility: 'none', 'line-cap': 'round', 'line-join': 'round' },
        paint: { 'line-color': PATH_COLOR, 'line-width': width(3, 7) },
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
      this.setOpening(false);
      this.sketch.cancel();
      this.controller?.abort();
    }
    this.paint();
  }

  /** The panel's options changed: a comparison made with the old ones no longer holds (and another mode blocks other links). */
  optionsChanged(): void {
    this.controller?.abort();
    if (this.openingOn && this.blocked.mode !== this.mode()) {
      void this.loadBlocked();
      this.paint();
    }
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
    const paths = pathFeatures(this.edits);
    m.getSource<GeoJSONSource>(NEW_PATHS_SOURCE)?.setData({ type: 'FeatureCollection', features: paths } as unknown as SetData);
    if (m.getLayer(NEW_PATHS_LAYER)) m.setLayoutProperty(NEW_PATHS_LAYER, 'visibility', this.shown && paths.length ? 'visible' : 'none');
    this.paintLinks();
    m.getSource<GeoJSONSource>(CHANGE_SOURCE)?.setData((this.result ? changeFeatures(this.result) : { type: 'FeatureCollection', features: [] }) as unknown as SetData);
    const change = this.shown && !!this.result;
    m.setLayoutProperty(CHANGE_LAYER, 'visibility', change ? 'visible' : 'none');
    m.setLayoutProperty(EDITS_LAYER, 'visibility', this.shown && this.edits.length ? 'visible' : 'none');
    if (m.getLayer(this.opts.homesLayer)) m.setPaintProperty(this.opts.homesLayer, 'circle-opacity', change ? 0.25 : 1);
    m.getCanvas().dataset.accessView = change ? 'change' : 'baseline'; // for the tests
  }

  /** The network while opening (blocked links dashed: today's for the mode, less those opened, plus those closed by id) and the links opened. */
  private paintLinks(): void {
    const m = this.map;
    if (!m.getLayer(LINK_LAYERS.usable)) return;
    const opened = openedLinks(this.edits);
    const openedSet = new Set(opened);
    const blockedNow = this.blocked.mode === this.mode() ? [...this.blocked.ids] : [];
    const blocked = idFilter([...blockedNow, ...closedLinks(this.edits)].filter((id) => !openedSet.has(id)));
    m.setFilter(LINK_LAYERS.blocked, blocked as FilterSpecification);
    m.setFilter(LINK_LAYERS.usable, ['!', blocked] as FilterSpecification);
    m.setFilter(LINK_LAYERS.opened, idFilter(opened) as FilterSpecification);
    const network = this.shown && this.openingOn ? 'visible' : 'none';
    m.setLayoutProperty(LINK_LAYERS.usable, 'visibility', network);
    m.setLayoutProperty(LINK_LAYERS.blocked, 'visibility', network);
    m.setLayoutProperty(LINK_LAYERS.opened, 'visibility', this.shown && opened.length ? 'visible' : 'none');
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
        const text = editLabel(e, e.kind === 'openPaths' ? this.linkNames.get(e.links[0] ?? '') : this.names.get(e));
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
      el('div', { class: 'whatif-modes' }, this.removeButton, this.areaButton, this.pathButton, this.openButton),
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
        ...(this.edits.some((e) => e.kind === 'addPath' || e.kind === 'openPaths')
          ? [el('li', {}, el('span', { class: 'swatch swatch-line', style: `--c: ${PATH_COLOR}`, 'aria-hidden': 'true' }), el('span', {}, t('access.whatif.legend.newPath')))]
          : []),
      ),
    );
  }
}
