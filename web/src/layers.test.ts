import type { LayerSpecification } from 'maplibre-gl';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import en from './i18n/en.json';
import fi from './i18n/fi.json';
import { initLang } from './i18n';
import { attrLabel, groupLabel, groupLayers, type LayerGroup } from './layers';
import { APP_LAYERS } from './map';

const layer = (id: string, sourceLayer: string | undefined, type = 'fill'): LayerSpecification =>
  ({ id, type, source: 'twin', ...(sourceLayer === undefined ? {} : { 'source-layer': sourceLayer }) }) as LayerSpecification;

beforeEach(() => {
  vi.stubGlobal('document', { documentElement: { lang: '' }, body: { querySelectorAll: () => [] } });
  initLang('en');
});

describe('groupLayers', () => {
  it('groups by source layer into the base groups, in their fixed order, then the others in style order', () => {
    const groups = groupLayers([
      { id: 'bg', type: 'background' } as LayerSpecification,
      layer('aq', 'AirQualityObserved', 'circle'),
      layer('landuse', 'LandUse'),
      layer('roads-casing', 'RoadSegment', 'line'),
      layer('roads', 'RoadSegment', 'line'),
      layer('buildings', 'Building', 'fill-extrusion'),
      layer('building-parts', 'BuildingPart', 'fill-extrusion'),
      layer('traffic', 'TrafficFlowObserved', 'circle'),
      layer('stops', 'GtfsStop', 'circle'),
      layer('stations', 'GtfsStation', 'circle'),
    ]);
    expect(groups.map((g) => g.id)).toEqual(['streets', 'buildings', 'landuse', 'transit', 'AirQualityObserved', 'TrafficFlowObserved']);
    const byId = Object.fromEntries(groups.map((g) => [g.id, g]));
    expect(byId.streets).toEqual({ id: 'streets', types: ['RoadSegment'], layerIds: ['roads-casing', 'roads'], visible: true, opacity: 1, sensor: false });
    expect(byId.buildings!.types).toEqual(['Building', 'BuildingPart']);
    expect(byId.transit!.layerIds).toEqual(['stops', 'stations']);
    expect(byId.AirQualityObserved).toMatchObject({ types: ['AirQualityObserved'], layerIds: ['aq'], sensor: true });
  });

  it('leaves out the highlight layers, layers without a source layer and the background', () => {
    const groups = groupLayers([
      layer(APP_LAYERS.highlightExtrusion, 'Building', 'fill-extrusion'),
      layer(APP_LAYERS.highlightLine, 'RoadSegment', 'line'),
      layer(APP_LAYERS.streetLabels, 'RoadSegment', 'symbol'),
      layer('raster', undefined, 'raster'),
      layer('empty', ''),
    ]);
    expect(groups).toEqual([
      { id: 'streets', types: ['RoadSegment'], layerIds: [APP_LAYERS.streetLabels], visible: true, opacity: 1, sensor: false },
    ]);
  });

  it('no layers, no groups', () => {
    expect(groupLayers([])).toEqual([]);
  });
});

describe('labels', () => {
  const group = (id: string): LayerGroup => ({ id, types: [id], layerIds: [], visible: true, opacity: 1, sensor: false });

  it('a base group by its layers.* name, per language', () => {
    expect(groupLabel(group('streets'))).toBe(en.layers.streets);
    initLang('fi');
    expect(groupLabel(group('streets'))).toBe(fi.layers.streets);
  });

  it('a type group by its types.* name', () => {
    expect(groupLabel(group('RoadLink'))).toBe(en.types.RoadLink);
  });

  it('an unknown group made readable', () => {
    expect(groupLabel(group('WaterQualitySensorXyz'))).toBe('Water quality sensor xyz');
    expect(groupLabel(group('bike_counters'))).toBe('Bike counters');
  });

  it('attrLabel translates known attributes and humanizes others', () => {
    expect(attrLabel('height')).toBe(en.attrs.height);
    expect(attrLabel('floorsAboveGround')).toBe(en.attrs.floorsAboveGround);
    expect(attrLabel('someNewAttr')).toBe('Some new attr');
    expect(attrLabel('LAeq_max')).toBe('LAeq max');
  });
});
