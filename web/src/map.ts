// The map: MapLibre with the twin's own style (`/tiles/style.json`), its tiles fetched from the origin the app is
// served from, plus what the app adds to the style: street names, POI icons and the highlight of the selected feature.

import { AttributionControl, Map as MapLibreMap, NavigationControl, ScaleControl, setWorkerUrl } from 'maplibre-gl';
// MapLibre's worker is a module of its own: bundled as an asset and named to MapLibre explicitly
import workerUrl from 'maplibre-gl/dist/maplibre-gl-worker.mjs?url';
import type {
  ExpressionSpecification,
  LayerSpecification,
  Map as MlMap,
  StyleSpecification,
  VectorSourceSpecification,
} from 'maplibre-gl';
import { addIcons, drawPoiIcons } from './icons';
import type { View } from './url-state';
import type { TileJson } from './api';

/** Layers the app adds; the layer panel groups them with the style's own. */
export const APP_LAYERS = {
  streetLabels: 'app-street-labels',
  poiIcons: 'app-poi-icons',
  highlightExtrusion: 'app-highlight-extrusion',
  highlightLine: 'app-highlight-line',
  highlightCircle: 'app-highlight-circle',
  highlightFill: 'app-highlight-fill',
} as const;

export const HIGHLIGHT = '#0b57d0';

export interface PreparedStyle {
  style: StyleSpecification;
  /** The server's public URL as the style names it (`http://127.0.0.1:1026`), rewritten to this origin. */
  serverBase: string | undefined;
  /** The vector source drawing the city. */
  sourceId: string;
  /** The POI category colours of the style, for the icons. */
  poiColors: Record<string, string>;
  poiOther: string;
}

function findLayer(style: StyleSpecification, id: string): LayerSpecification | undefined {
  return style.layers.find((l) => l.id === id);
}

function insertAfter(style: StyleSpecification, afterId: string | undefined, layer: LayerSpecification): void {
  const i = afterId ? style.layers.findIndex((l) => l.id === afterId) : -1;
  if (i < 0) style.layers.push(layer);
  else style.layers.splice(i + 1, 0, layer);
}

/** Reads `["match", ["get", "category"], v, colour, ..., fallback]` into a map. */
function matchColors(expr: unknown): { colors: Record<string, string>; other: string } {
  const colors: Record<string, string> = {};
  let other = '#616161';
  if (Array.isArray(expr) && expr[0] === 'match') {
    for (let i = 2; i + 1 < expr.length; i += 2) {
      const keys = Array.isArray(expr[i]) ? expr[i] : [expr[i]];
      for (const k of keys) colors[String(k)] = String(expr[i + 1]);
    }
    if (expr.length % 2 === 1) other = String(expr[expr.length - 1]);
  } else if (typeof expr === 'string') other = expr;
  return { colors, other };
}

/** Takes the server's style and makes it the app's (see the module comment); pure apart from `location`. */
export function prepareStyle(input: StyleSpecification, origin: string): PreparedStyle {
  const style: StyleSpecification = structuredClone(input);
  let serverBase: string | undefined;
  let sourceId = 'urbantwin';
  for (const [id, src] of Object.entries(style.sources)) {
    const s = src as VectorSourceSpecification;
    if (s.type !== 'vector' || (!s.url && !s.tiles?.length)) continue;
    sourceId = id;
    // the server names itself by its public URL (TileJSON `url`, or the tiles inlined): the app asks its own origin
    const rebase = (u: string): string => {
      const m = /^(https?:\/\/[^/]+)(\/.*)?(\/tiles\/.*)$/.exec(u);
      if (!m) return u;
      serverBase = m[1]! + (m[2] ?? '');
      return origin + (m[2] ?? '') + m[3]!;
    };
    if (s.url) s.url = rebase(s.url);
    if (s.tiles) s.tiles = s.tiles.map(rebase);
    // MVT feature ids are hashes of the entity ids; the `id` property carries the URN itself
    s.promoteId = undefined;
  }
  const layers = style.layers;
  // tilted far enough (or on a tall phone screen) the view reaches the horizon: draw a sky there, not a blank
  style.sky ??= { 'sky-color': '#c9dcec', 'horizon-color': '#eef1f2', 'sky-horizon-blend': 0.7, 'atmosphere-blend': 0 };
  const roads = findLayer(style, 'roads');
  if (roads && 'source' in roads) {
    insertAfter(style, 'roads', {
      id: APP_LAYERS.streetLabels,
      type: 'symbol',
      source: roads.source,
      'source-layer': roads['source-layer'],
      minzoom: 15,
      filter: ['has', 'name'],
      layout: {
        'symbol-placement': 'line',
        'text-field': ['get', 'name'],
        'text-font': ['sans-serif'],
        'text-size': ['interpolate', ['linear'], ['zoom'], 15, 11, 18, 14],
        'text-max-angle': 30,
        'symbol-spacing': 320,
        'text-padding': 4,
      },
      paint: { 'text-color': '#3b3530', 'text-halo-color': '#ffffff', 'text-halo-width': 1.6 },
    });
  }
  let poiColors: Record<string, string> = {};
  let poiOther = '#616161';
  const pois = findLayer(style, 'pois');
  if (pois && pois.type === 'circle') {
    ({ colors: poiColors, other: poiOther } = matchColors(pois.paint?.['circle-color']));
    // discs until icons take over
    pois.maxzoom = 16;
    insertAfter(style, 'pois', {
      id: APP_LAYERS.poiIcons,
      type: 'symbol',
      source: pois.source,
      'source-layer': pois['source-layer'],
      minzoom: 16,
      ...(pois.filter ? { filter: pois.filter } : {}),
      layout: {
        'icon-image': [
          'match',
          ['get', 'category'],
          Object.keys(poiColors),
          ['concat', 'poi-', ['get', 'category']],
          'poi-other',
        ] as ExpressionSpecification,
        'icon-size': ['interpolate', ['linear'], ['zoom'], 16, 0.7, 18, 1],
        'icon-allow-overlap': false,
        'icon-padding': 5,
        'symbol-sort-key': ['match', ['get', 'category'], ['healthcare', 'school', 'public_transport_stop'], 0, 1],
      },
      paint: {},
    });
  }
  // the selected feature, on top of everything
  const source = sourceId;
  const none: ExpressionSpecification = ['==', ['get', 'id'], ''];
  layers.push(
    {
      id: APP_LAYERS.highlightFill,
      type: 'fill',
      source,
      'source-layer': 'LandUse',
      filter: none,
      paint: { 'fill-color': HIGHLIGHT, 'fill-opacity': 0.25, 'fill-outline-color': HIGHLIGHT },
    },
    {
      id: APP_LAYERS.highlightExtrusion,
      type: 'fill-extrusion',
      source,
      'source-layer': 'Building',
      filter: none,
      paint: {
        'fill-extrusion-color': HIGHLIGHT,
        'fill-extrusion-height': ['+', ['coalesce', ['get', 'height'], 9], 0.3],
        'fill-extrusion-opacity': 0.9,
      },
    },
    {
      id: APP_LAYERS.highlightLine,
      type: 'line',
      source,
      'source-layer': 'RoadSegment',
      filter: none,
      layout: { 'line-cap': 'round', 'line-join': 'round' },
      paint: { 'line-color': HIGHLIGHT, 'line-width': ['interpolate', ['linear'], ['zoom'], 12, 3, 18, 10], 'line-opacity': 0.8 },
    },
    {
      id: APP_LAYERS.highlightCircle,
      type: 'circle',
      source,
      'source-layer': 'PointOfInterest',
      filter: none,
      paint: {
        'circle-radius': 14,
        'circle-color': 'rgba(0,0,0,0)',
        'circle-stroke-color': HIGHLIGHT,
        'circle-stroke-width': 3,
      },
    },
  );
  return { style, serverBase, sourceId, poiColors, poiOther };
}

/** Replaces the vector source's `url` by the TileJSON it names (tile URLs on this origin); leaves it if that fails. */
async function inlineTileJson(prepared: PreparedStyle, origin: string): Promise<void> {
  const src = prepared.style.sources[prepared.sourceId] as VectorSourceSpecification | undefined;
  if (!src?.url || !src.url.startsWith(origin)) return;
  try {
    const res = await fetch(src.url);
    if (!res.ok) return;
    const tj = (await res.json()) as TileJson;
    const base = prepared.serverBase;
    const tiles = tj.tiles.map((u) => (base && u.startsWith(base) ? origin + u.slice(base.length) : u));
    delete src.url;
    src.tiles = tiles;
    if (tj.bounds) src.bounds = tj.bounds;
    if (tj.minzoom !== undefined) src.minzoom = tj.minzoom;
    if (tj.maxzoom !== undefined) src.maxzoom = tj.maxzoom;
    if (tj.attribution) src.attribution = tj.attribution;
  } catch {
    /* the map reads the TileJSON itself */
  }
}

/** Points the highlight layers at the entity `id` in the given tile layer (or nowhere). */
export function setHighlight(map: MlMap, sourceLayer: string | undefined, id: string | undefined): void {
  const byId: ExpressionSpecification = ['==', ['get', 'id'], id ?? ''];
  const none: ExpressionSpecification = ['==', ['get', 'id'], ''];
  const targets: [string, string[]][] = [
    [APP_LAYERS.highlightExtrusion, ['Building', 'BuildingPart']],
    [APP_LAYERS.highlightLine, ['RoadSegment', 'RoadLink']],
    [APP_LAYERS.highlightFill, ['LandUse']],
  ];
  let matched = false;
  for (const [layer, types] of targets) {
    const hit = !!sourceLayer && types.includes(sourceLayer) && !!id;
    matched ||= hit;
    if (map.getLayer(layer)) map.setFilter(layer, hit ? byId : none);
  }
  // every point layer: a ring around the point
  const ring = map.getLayer(APP_LAYERS.highlightCircle);
  if (ring) {
    const isPoint = !!id && !!sourceLayer && !matched;
    if (isPoint && sourceLayer !== (map.getLayer(APP_LAYERS.highlightCircle) as { sourceLayer?: string }).sourceLayer) {
      // a point of another layer: re-create the ring on that source layer
      const spec = map.getStyle().layers.find((l) => l.id === APP_LAYERS.highlightCircle);
      if (spec && spec.type === 'circle') {
        map.removeLayer(APP_LAYERS.highlightCircle);
        map.addLayer({ ...spec, 'source-layer': sourceLayer, filter: byId });
      }
    } else {
      map.setFilter(APP_LAYERS.highlightCircle, isPoint ? byId : none);
    }
  }
}

setWorkerUrl(workerUrl);
// start loading the worker now: the map asks for it only once it is created (the asset is cached immutably)
void fetch(workerUrl).catch(() => undefined);

export interface CreatedMap {
  map: MlMap;
  prepared: PreparedStyle;
  /** Resolves when the map is first idle: everything in view loaded and drawn. */
  firstIdle: Promise<void>;
  /** The POI icons given to the map (`addImage`: not part of its style), for a second map of the same style. */
  icons: Map<string, ImageData>;
  /** Points the style's server URLs at the origin the app is served from (for a second map of the same style). */
  transformRequest: (url: string) => { url: string };
}

/** Creates the map in `container` from the server's style; resolves once the style is loaded (tiles may still load). */
export async function createMap(
  container: HTMLElement,
  serverStyle: StyleSpecification,
  view: View | undefined,
  labels: { region: string },
): Promise<CreatedMap> {
  const origin = window.location.origin;
  const prepared = prepareStyle(serverStyle, origin);
  const base = prepared.serverBase;
  let icons: Map<string, ImageData> | undefined;
  // the source's TileJSON is read here, alongside drawing the icons, rather than by the map one step later
  const inlined = inlineTileJson(prepared, origin);
  try {
    icons = await drawPoiIcons(prepared.poiColors, prepared.poiOther);
    await inlined;
  } catch (e) {
    // discs stay where icons cannot be drawn
    console.info('POI icons could not be drawn', e);
    prepared.style.layers = prepared.style.layers.filter((l) => l.id !== APP_LAYERS.poiIcons);
    const pois = prepared.style.layers.find((l) => l.id === 'pois');
    if (pois) delete pois.maxzoom;
  }
  // the style names the server by its public URL; the app talks to the origin it is served from
  const transformRequest = (url: string) => {
    if (base && base !== origin && url.startsWith(base)) return { url: origin + url.slice(base.length) };
    return { url };
  };
  const map = new MapLibreMap({
    container,
    style: prepared.style,
    ...(view
      ? { center: [view.lon, view.lat] as [number, number], zoom: view.zoom, bearing: view.bearing, pitch: view.pitch }
      : {}),
    maxPitch: 75,
    hash: false,
    attributionControl: false,
    transformRequest,
    cancelPendingTileRequestsWhileZooming: true,
    fadeDuration: 150,
  });
  map.getCanvas().setAttribute('aria-label', labels.region);
  map.addControl(new NavigationControl({ visualizePitch: true, showCompass: true }), 'top-right');
  map.addControl(new ScaleControl({ unit: 'metric' }), 'bottom-right');
  map.addControl(new AttributionControl({ compact: false }), 'bottom-right');
  // the icons go in as soon as the style is there, before any tile is laid out
  map.once('style.load', () => {
    if (icons) addIcons(map, icons);
  });
  // listened for from the start: with few tiles in view, the first idle comes in the same frame as `load`
  const firstIdle = new Promise<void>((resolve) => map.once('idle', () => resolve()));
  return new Promise((resolve, reject) => {
    // the panels are built from the style while the tiles load
    map.once('style.load', () => resolve({ map, prepared, firstIdle, icons: icons ?? new Map(), transformRequest }));
    map.once('error', (ev: unknown) => {
      if (!map.loaded()) reject((ev as { error?: Error }).error ?? new Error('the map could not load'));
    });
  });
}

/** MapLibre's own controls in the current language. */
export function translateControls(container: HTMLElement, t: (key: string) => string): void {
  const controls: [string, string][] = [
    ['.maplibregl-ctrl-zoom-in', 'map.zoomIn'],
    ['.maplibregl-ctrl-zoom-out', 'map.zoomOut'],
    ['.maplibregl-ctrl-compass', 'map.resetBearing'],
  ];
  for (const [sel, key] of controls)
    container.querySelectorAll<HTMLElement>(sel).forEach((b) => {
      b.title = t(key);
      b.setAttribute('aria-label', t(key));
    });
  const canvas = container.querySelector<HTMLElement>('canvas');
  if (canvas) canvas.setAttribute('aria-label', t('app.mapCanvas'));
}

export function viewOf(map: MlMap): View {
  const c = map.getCenter();
  return { zoom: map.getZoom(), lat: c.lat, lon: c.lng, bearing: map.getBearing(), pitch: map.getPitch() };
}
