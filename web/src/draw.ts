// Drawing on the map for the scenario editor: an area (to close or slow the streets in it) or the line of a new
// street. A click (or Enter on the focused map, at the crosshair) adds a point; a double-click, a click on the first
// point of an area or the panel's Finish button ends; Backspace takes the last point back; Escape gives up.

import type { GeoJSONSource, Map as MlMap, MapLayerMouseEvent } from 'maplibre-gl';

export type SketchKind = 'area' | 'line';
export type Position = [number, number];

/** A finished drawing: a GeoJSON Polygon (one closed ring) or the positions of a line. */
export type Shape = { kind: 'area'; polygon: { type: 'Polygon'; coordinates: Position[][] } } | { kind: 'line'; path: Position[] };

export const SKETCH_SOURCE = 'app-sketch';
export const SKETCH_LAYERS = { fill: 'app-sketch-fill', line: 'app-sketch-line', points: 'app-sketch-points' } as const;
/** The shapes of the scenario's edits (areas and added streets), drawn under the sketch. */
export const EDIT_SHAPES_SOURCE = 'app-scenario-edit-shapes';
export const EDIT_SHAPE_LAYERS = { fill: 'app-edit-shapes-fill', line: 'app-edit-shapes-line' } as const;
export const SKETCH_COLOR = '#7b1fa2';

/** The ids of a sketch's sources and layers. */
export interface SketchIds {
  source: string;
  layers: { fill: string; line: string; points: string };
  editSource: string;
  editLayers: { fill: string; line: string };
}

/**
 * The ids of a sketch's sources and layers: without a prefix those of the scenario editor (`SKETCH_SOURCE`…), with
 * one `{prefix}-sketch`, `{prefix}-sketch-fill`…, `{prefix}-edit-shapes`… (a second sketch on the same map).
 */
export function sketchIds(prefix?: string): SketchIds {
  if (!prefix) return { source: SKETCH_SOURCE, layers: { ...SKETCH_LAYERS }, editSource: EDIT_SHAPES_SOURCE, editLayers: { ...EDIT_SHAPE_LAYERS } };
  return {
    source: `${prefix}-sketch`,
    layers: { fill: `${prefix}-sketch-fill`, line: `${prefix}-sketch-line`, points: `${prefix}-sketch-points` },
    editSource: `${prefix}-edit-shapes`,
    editLayers: { fill: `${prefix}-edit-shapes-fill`, line: `${prefix}-edit-shapes-line` },
  };
}

/** Points closer than this (CSS pixels) to the previous one are the same point (the clicks of a double-click). */
const SAME_POINT_PX = 6;

/** The fewest points a shape needs. */
export function minPoints(kind: SketchKind): number {
  return kind === 'area' ? 3 : 2;
}

/** The shape of `points`, or undefined while there are too few of them. */
export function shapeOf(kind: SketchKind, points: Position[]): Shape | undefined {
  if (points.length < minPoints(kind)) return undefined;
  if (kind === 'line') return { kind, path: points.map((p) => [p[0], p[1]]) };
  const ring = points.map((p): Position => [p[0], p[1]]);
  ring.push([points[0]![0], points[0]![1]]);
  return { kind, polygon: { type: 'Polygon', coordinates: [ring] } };
}

const R = 6_371_008.8;
const rad = Math.PI / 180;

/** Length of a line in metres (haversine). */
export function lineLengthM(path: Position[]): number {
  let m = 0;
  for (let i = 1; i < path.length; i++) {
    const [lon1, lat1] = path[i - 1]!;
    const [lon2, lat2] = path[i]!;
    const dLat = (lat2 - lat1) * rad;
    const dLon = (lon2 - lon1) * rad;
    const a = Math.sin(dLat / 2) ** 2 + Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(dLon / 2) ** 2;
    m += 2 * R * Math.asin(Math.min(1, Math.sqrt(a)));
  }
  return m;
}

/** Area of a ring in square metres (on the sphere; accurate for city-sized rings). */
export function ringAreaM2(ring: Position[]): number {
  let s = 0;
  for (let i = 0; i < ring.length; i++) {
    const [lon1, lat1] = ring[i]!;
    const [lon2, lat2] = ring[(i + 1) % ring.length]!;
    s += (lon2 - lon1) * rad * (2 + Math.sin(lat1 * rad) + Math.sin(lat2 * rad));
  }
  return Math.abs((s * R * R) / 2);
}

type Feature = { type: 'Feature'; properties: Record<string, unknown>; geometry: { type: string; coordinates: unknown } };

function collection(features: Feature[]): { type: 'FeatureCollection'; features: Feature[] } {
  return { type: 'FeatureCollection', features };
}

export interface SketchOptions {
  /** The drawing changed (a point added or taken back); `points` so far. */
  onChange: (kind: SketchKind, points: number) => void;
  /** The drawing ended with a valid shape. */
  onFinish: (shape: Shape) => void;
  /** The drawing was given up. */
  onCancel: () => void;
  /** The prefix of its source and layer ids (`sketchIds`); none: the scenario editor's ids. */
  idPrefix?: string;
  /** The colour of the drawing and of the edit shapes (`SKETCH_COLOR`). */
  color?: string;
}

/** One drawing at a time on the map; its own GeoJSON source and layers, added on `addLayers`. */
export class Sketch {
  private kind: SketchKind | undefined;
  private points: Position[] = [];
  private hover: Position | undefined;
  private readonly keydown = (e: KeyboardEvent) => this.onKey(e);
  /** Its source and layer ids. */
  readonly ids: SketchIds;

  constructor(
    private readonly map: MlMap,
    private readonly opts: SketchOptions,
  ) {
    this.ids = sketchIds(opts.idPrefix);
  }

  /** What is being drawn, if anything. */
  get drawing(): SketchKind | undefined {
    return this.kind;
  }

  get count(): number {
    return this.points.length;
  }

  addLayers(beforeId?: string): void {
    if (this.map.getSource(this.ids.source)) return;
    const color = this.opts.color ?? SKETCH_COLOR;
    const before = beforeId && this.map.getLayer(beforeId) ? beforeId : undefined;
    this.map.addSource(this.ids.editSource, { type: 'geojson', data: collection([]) });
    this.map.addLayer(
      {
        id: this.ids.editLayers.fill,
        type: 'fill',
        source: this.ids.editSource,
        filter: ['==', ['geometry-type'], 'Polygon'],
        paint: { 'fill-color': color, 'fill-opacity': 0.12 },
      },
      before,
    );
    this.map.addLayer(
      {
        id: this.ids.editLayers.line,
        type: 'line',
        source: this.ids.editSource,
        layout: { 'line-join': 'round' },
        paint: { 'line-color': color, 'line-width': 2.5, 'line-dasharray': [3, 2] },
      },
      before,
    );
    this.map.addSource(this.ids.source, { type: 'geojson', data: collection([]) });
    this.map.addLayer({
      id: this.ids.layers.fill,
      type: 'fill',
      source: this.ids.source,
      filter: ['==', ['geometry-type'], 'Polygon'],
      paint: { 'fill-color': color, 'fill-opacity': 0.2 },
    });
    this.map.addLayer({
      id: this.ids.layers.line,
      type: 'line',
      source: this.ids.source,
      filter: ['==', ['geometry-type'], 'LineString'],
      layout: { 'line-join': 'round', 'line-cap': 'round' },
      paint: { 'line-color': color, 'line-width': 3 },
    });
    this.map.addLayer({
      id: this.ids.layers.points,
      type: 'circle',
      source: this.ids.source,
      filter: ['==', ['geometry-type'], 'Point'],
      paint: { 'circle-radius': 5, 'circle-color': '#ffffff', 'circle-stroke-color': color, 'circle-stroke-width': 2.5 },
    });
  }

  /** Shows the scenario's edit shapes (areas and added streets). */
  setEditShapes(features: Feature[]): void {
    this.map.getSource<GeoJSONSource>(this.ids.editSource)?.setData(collection(features));
  }

  start(kind: SketchKind): void {
    this.stop();
    this.kind = kind;
    this.points = [];
    this.hover = undefined;
    this.map.doubleClickZoom.disable();
    this.map.getCanvas().style.cursor = 'crosshair';
    this.map.on('mousemove', this.onMove);
    this.map.on('dblclick', this.onDoubleClick);
    this.map.getCanvas().addEventListener('keydown', this.keydown);
    this.render();
    this.opts.onChange(kind, 0);
  }

  /** Adds a point (a click, or the crosshair for the keyboard); a click on an area's first point closes it. */
  addPoint(p: Position): void {
    if (!this.kind) return;
    const px = this.map.project(p);
    const near = (q: Position | undefined) => {
      if (!q) return false;
      const qp = this.map.project(q);
      return Math.hypot(qp.x - px.x, qp.y - px.y) < SAME_POINT_PX;
    };
    if (near(this.points[this.points.length - 1])) return;
    if (this.kind === 'area' && this.points.length >= minPoints('area') && near(this.points[0])) {
      this.finish();
      return;
    }
    this.points.push([p[0], p[1]]);
    this.render();
    this.opts.onChange(this.kind, this.points.length);
  }

  undo(): void {
    if (!this.kind || !this.points.length) return;
    this.points.pop();
    this.render();
    this.opts.onChange(this.kind, this.points.length);
  }

  /** Ends the drawing: true when it made a shape (too few points: the drawing goes on). */
  finish(): boolean {
    if (!this.kind) return false;
    const shape = shapeOf(this.kind, this.points);
    if (!shape) return false;
    this.stop();
    this.opts.onFinish(shape);
    return true;
  }

  cancel(): void {
    if (!this.kind) return;
    this.stop();
    this.opts.onCancel();
  }

  private stop(): void {
    if (!this.kind) return;
    this.kind = undefined;
    this.points = [];
    this.hover = undefined;
    this.map.doubleClickZoom.enable();
    this.map.getCanvas().style.cursor = '';
    this.map.off('mousemove', this.onMove);
    this.map.off('dblclick', this.onDoubleClick);
    this.map.getCanvas().removeEventListener('keydown', this.keydown);
    this.render();
  }

  private readonly onMove = (e: MapLayerMouseEvent) => {
    this.hover = [e.lngLat.lng, e.lngLat.lat];
    this.render();
  };

  private readonly onDoubleClick = (e: MapLayerMouseEvent) => {
    e.preventDefault();
    this.finish();
  };

  private onKey(e: KeyboardEvent): void {
    if (!this.kind) return;
    if (e.key === 'Backspace') {
      e.preventDefault();
      this.undo();
    } else if (e.key === 'Escape') {
      e.preventDefault();
      e.stopPropagation();
      this.cancel();
    }
  }

  private render(): void {
    const src = this.map.getSource<GeoJSONSource>(this.ids.source);
    if (!src) return;
    const features: Feature[] = [];
    const pts = this.points;
    if (this.kind && pts.length) {
      const line = this.hover ? [...pts, this.hover] : pts;
      if (this.kind === 'area' && line.length >= 3)
        features.push({ type: 'Feature', properties: {}, geometry: { type: 'Polygon', coordinates: [[...line, line[0]!]] } });
      if (line.length >= 2) {
        const drawn = this.kind === 'area' && line.length >= 3 ? [...line, line[0]!] : line;
        features.push({ type: 'Feature', properties: {}, geometry: { type: 'LineString', coordinates: drawn } });
      }
      for (const p of pts) features.push({ type: 'Feature', properties: {}, geometry: { type: 'Point', coordinates: p } });
    }
    src.setData(collection(features));
  }
}
