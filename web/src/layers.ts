// The layer panel: the style's layers grouped by what they show (streets, buildings, points of interest, land use,
// and one group per other entity type, e.g. each kind of sensor), each with a toggle, an opacity slider and a legend
// read from its paint expressions; the buildings group also chooses what the buildings are coloured by.

import type { ExpressionSpecification, LayerSpecification, Map as MlMap } from 'maplibre-gl';
import { colorPaintOf, legendOf, opacityPropsOf, type Legend, type Swatch } from './legend';
import { fmtNumber, has, humanize, onLangChange, t, valueLabel } from './i18n';
import { APP_LAYERS } from './map';
import { BUILDING_FLAT_LAYER, BUILDING_LAYER, colourFor, discoverAttributes, type BuildingLegend, type ColourMode } from './buildings';
import { el } from './dom';

/** A paint property name as MapLibre's typings want it. */
type PaintProp = Parameters<MlMap['getPaintProperty']>[1];

export interface LayerGroup {
  id: string;
  /** The entity types it draws (tile layer ids). */
  types: string[];
  layerIds: string[];
  visible: boolean;
  opacity: number;
  sensor: boolean;
}

const BASE_GROUPS: [string, string[]][] = [
  ['streets', ['RoadSegment']],
  ['buildings', ['Building', 'BuildingPart']],
  ['pois', ['PointOfInterest']],
  ['landuse', ['LandUse']],
  ['transit', ['GtfsStop', 'GtfsStation']],
];

/** Groups the style's layers by their source layer; the highlight layers and the background stay out. */
export function groupLayers(layers: LayerSpecification[]): LayerGroup[] {
  const groups = new Map<string, LayerGroup>();
  const order: string[] = BASE_GROUPS.map(([g]) => g);
  for (const l of layers) {
    if (l.type === 'background' || !('source-layer' in l) || !l['source-layer']) continue;
    if (Object.values(APP_LAYERS).some((a) => a === l.id && a.startsWith('app-highlight'))) continue;
    const sl = l['source-layer'];
    const base = BASE_GROUPS.find(([, types]) => types.includes(sl));
    const id = base ? base[0] : sl;
    let g = groups.get(id);
    if (!g) {
      g = { id, types: [], layerIds: [], visible: true, opacity: 1, sensor: !base };
      groups.set(id, g);
      if (!order.includes(id)) order.push(id);
    }
    if (!g.types.includes(sl)) g.types.push(sl);
    g.layerIds.push(l.id);
  }
  return order.filter((id) => groups.has(id)).map((id) => groups.get(id)!);
}

export function groupLabel(g: LayerGroup): string {
  if (has(`layers.${g.id}`)) return t(`layers.${g.id}`);
  return has(`types.${g.id}`) ? t(`types.${g.id}`) : humanize(g.id);
}

interface PanelOptions {
  source: string;
  initialColour: string | undefined;
  onChange: () => void;
}

/** One `<option>` of "colour buildings by". */
interface ColourOption {
  key: string;
  mode: ColourMode;
}

export class LayerPanel {
  readonly groups: LayerGroup[];
  private readonly base = new Map<string, unknown>();
  private colourKey = 'style';
  private colourOptions: ColourOption[] = [{ key: 'style', mode: { kind: 'style' } }];
  private buildingLegend: BuildingLegend | undefined;
  private readonly styleBuildingColour: unknown;

  constructor(
    private readonly root: HTMLElement,
    private readonly map: MlMap,
    groups: LayerGroup[],
    private readonly opts: PanelOptions,
  ) {
    this.groups = groups;
    for (const g of groups)
      for (const id of g.layerIds) {
        const layer = map.getLayer(id);
        if (!layer) continue;
        for (const p of opacityPropsOf(layer.type)) {
          const v = map.getPaintProperty(id, p as PaintProp);
          this.base.set(`${id}|${p}`, v ?? 1);
        }
      }
    this.styleBuildingColour = map.getLayer(BUILDING_LAYER)
      ? map.getPaintProperty(BUILDING_LAYER, 'fill-extrusion-color')
      : undefined;
    if (opts.initialColour) this.colourKey = opts.initialColour;
    onLangChange(() => this.render());
    this.render();
  }

  /** Hidden groups, for the URL. */
  hidden(): string[] {
    return this.groups.filter((g) => !g.visible).map((g) => g.id);
  }

  colour(): string {
    return this.colourKey;
  }

  setVisible(id: string, visible: boolean): void {
    const g = this.groups.find((x) => x.id === id);
    if (!g) return;
    g.visible = visible;
    for (const l of g.layerIds)
      if (this.map.getLayer(l)) this.map.setLayoutProperty(l, 'visibility', visible ? 'visible' : 'none');
    const box = this.root.querySelector<HTMLInputElement>(`input[data-group="${CSS.escape(id)}"][type=checkbox]`);
    if (box) box.checked = visible;
    this.root.querySelector(`[data-group-body="${CSS.escape(id)}"]`)?.classList.toggle('is-off', !visible);
    this.opts.onChange();
  }

  setOpacity(id: string, opacity: number): void {
    const g = this.groups.find((x) => x.id === id);
    if (!g) return;
    g.opacity = opacity;
    for (const l of g.layerIds) {
      const layer = this.map.getLayer(l);
      if (!layer) continue;
      for (const p of opacityPropsOf(layer.type)) {
        const base = this.base.get(`${l}|${p}`);
        if (typeof base === 'number') this.map.setPaintProperty(l, p as PaintProp, base * opacity);
        else if (base !== undefined && opacity < 1) {
          this.map.setPaintProperty(l, p as PaintProp, ['*', base as ExpressionSpecification, opacity] as ExpressionSpecification);
        } else if (base !== undefined) this.map.setPaintProperty(l, p as PaintProp, base as ExpressionSpecification);
      }
    }
    this.opts.onChange();
  }

  /** Reads the buildings in the tiles for numeric and categorical attributes, then offers them. */
  refreshColourOptions(): void {
    if (!this.map.getLayer(BUILDING_LAYER)) return;
    const { numeric, categorical } = discoverAttributes(this.map, this.opts.source);
    const opts: ColourOption[] = [{ key: 'style', mode: { kind: 'style' } }];
    const add = (key: string, mode: ColourMode) => {
      if (!opts.some((o) => o.key === key)) opts.push({ key, mode });
    };
    if (numeric.includes('height')) add('height', { kind: 'numeric', attr: 'height' });
    if (categorical.includes('category')) add('category', { kind: 'category', attr: 'category' });
    if (categorical.includes('startDate') || numeric.includes('startDate'))
      add('age', { kind: 'numeric', attr: 'startDate', derived: 'year' });
    for (const n of numeric) add(n, { kind: 'numeric', attr: n });
    for (const c of categorical) if (c !== 'startDate' && c !== 'name' && c !== 'source') add(c, { kind: 'category', attr: c });
    const changed = opts.map((o) => o.key).join() !== this.colourOptions.map((o) => o.key).join();
    if (!changed) return;
    this.colourOptions = opts;
    // a choice from the URL is applied once the tiles show that the city has the attribute
    const wanted = opts.find((o) => o.key === this.colourKey);
    if (wanted && wanted.mode.kind !== 'style' && !this.buildingLegend) this.applyColour(false);
    this.render();
  }

  setColour(key: string): void {
    this.colourKey = key;
    this.applyColour(true);
    this.opts.onChange();
  }

  private applyColour(rerender: boolean): void {
    const opt = this.colourOptions.find((o) => o.key === this.colourKey);
    if (!opt || opt.mode.kind === 'style') {
      this.buildingLegend = undefined;
      if (this.styleBuildingColour !== undefined && this.map.getLayer(BUILDING_LAYER)) this.paintBuildings(this.styleBuildingColour);
    } else {
      const c = colourFor(this.map, this.opts.source, opt.mode, t('legend.other'));
      if (c) {
        this.paintBuildings(c.paint);
        this.buildingLegend = c.legend;
      }
    }
    if (rerender) this.renderLegend('buildings');
  }

  /** The buildings' colour, in 3D and flat alike. */
  private paintBuildings(paint: unknown): void {
    this.map.setPaintProperty(BUILDING_LAYER, 'fill-extrusion-color', paint as string);
    if (this.map.getLayer(BUILDING_FLAT_LAYER)) this.map.setPaintProperty(BUILDING_FLAT_LAYER, 'fill-color', paint as string);
  }

  render(): void {
    const list = el('ul', { class: 'layer-list' });
    for (const g of this.groups) list.append(this.renderGroup(g));
    this.root.replaceChildren(list);
  }

  private renderGroup(g: LayerGroup): HTMLElement {
    const label = groupLabel(g);
    const cbId = `layer-toggle-${g.id}`;
    const checkbox = el('input', { type: 'checkbox', id: cbId, 'data-group': g.id }) as HTMLInputElement;
    checkbox.checked = g.visible;
    checkbox.addEventListener('change', () => this.setVisible(g.id, checkbox.checked));
    const slider = el('input', {
      type: 'range',
      min: '0',
      max: '100',
      step: '5',
      value: String(Math.round(g.opacity * 100)),
      'data-group': g.id,
      'aria-label': t('layers.opacityOf', { layer: label }),
    }) as HTMLInputElement;
    const out = el('output', { 'aria-hidden': 'true' }, `${Math.round(g.opacity * 100)} %`);
    slider.addEventListener('input', () => {
      out.textContent = `${slider.value} %`;
      this.setOpacity(g.id, Number(slider.value) / 100);
    });
    const body = el('div', { class: `layer-body${g.visible ? '' : ' is-off'}`, 'data-group-body': g.id });
    body.append(el('label', { class: 'opacity' }, el('span', {}, t('layers.opacity')), slider, out));
    if (g.id === 'buildings' && this.map.getLayer(BUILDING_LAYER)) body.append(this.renderColourSelect());
    body.append(el('div', { class: 'legend', 'data-legend': g.id }));
    const li = el(
      'li',
      { class: 'layer', 'data-layer-group': g.id },
      el('div', { class: 'layer-head' }, checkbox, el('label', { for: cbId }, label)),
      body,
    );
    queueMicrotask(() => this.renderLegend(g.id));
    return li;
  }

  private renderColourSelect(): HTMLElement {
    const sel = el('select', { id: 'building-colour' }) as HTMLSelectElement;
    for (const o of this.colourOptions) {
      const opt = el('option', { value: o.key }, this.colourOptionLabel(o)) as HTMLOptionElement;
      sel.append(opt);
    }
    sel.value = this.colourOptions.some((o) => o.key === this.colourKey) ? this.colourKey : 'style';
    sel.addEventListener('change', () => this.setColour(sel.value));
    return el('div', { class: 'colour-by' }, el('label', { for: 'building-colour' }, t('layers.colourBy')), sel);
  }

  private colourOptionLabel(o: ColourOption): string {
    if (has(`colourBy.${o.key}`)) return t(`colourBy.${o.key}`);
    return attrLabel(o.mode.kind === 'style' ? o.key : o.mode.attr);
  }

  renderLegend(groupId: string): void {
    const box = this.root.querySelector<HTMLElement>(`[data-legend="${CSS.escape(groupId)}"]`);
    const g = this.groups.find((x) => x.id === groupId);
    if (!box || !g) return;
    box.replaceChildren();
    if (groupId === 'buildings' && this.buildingLegend) {
      box.append(renderBuildingLegend(this.buildingLegend));
      return;
    }
    const seen = new Set<string>();
    for (const id of g.layerIds) {
      const layer = this.map.getLayer(id);
      if (!layer || id === 'roads-casing') continue;
      if (id === APP_LAYERS.poiIcons || id === APP_LAYERS.streetLabels) continue;
      const cp = colorPaintOf(layer.type);
      if (!cp) continue;
      const paint = this.map.getPaintProperty(id, cp.prop as PaintProp);
      const dashed = layer.type === 'line' && this.map.getPaintProperty(id, 'line-dasharray') !== undefined;
      const legend = legendOf(paint, dashed ? 'dash' : cp.swatch);
      if (!legend) continue;
      const key = JSON.stringify(legend);
      if (seen.has(key)) continue;
      seen.add(key);
      box.append(renderLegend(legend, g, id));
    }
  }
}

export function attrLabel(attr: string): string {
  return has(`attrs.${attr}`) ? t(`attrs.${attr}`) : humanize(attr);
}

function swatch(kind: Swatch, color: string): HTMLElement {
  const s = el('span', { class: `swatch swatch-${kind}`, 'aria-hidden': 'true' });
  s.style.setProperty('--c', color);
  return s;
}

/** The label of a layer that draws one kind of thing in one colour: "Paths", "Buildings", a sensor type. */
function singleLabel(g: LayerGroup, layerId: string): string {
  if (has(`legend.layer.${layerId}`)) return t(`legend.layer.${layerId}`);
  return groupLabel(g);
}

function renderLegend(legend: Legend, g: LayerGroup, layerId: string): HTMLElement {
  const ul = el('ul', { class: 'legend-items' });
  if (legend.kind === 'single') {
    ul.append(el('li', {}, swatch(legend.swatch, legend.color), el('span', {}, singleLabel(g, layerId))));
  } else if (legend.kind === 'categories') {
    for (const it of legend.items)
      ul.append(el('li', {}, swatch(legend.swatch, it.color), el('span', {}, valueLabel(legend.property, it.values[0]!))));
    if (legend.other)
      ul.append(el('li', {}, swatch(legend.swatch, legend.other), el('span', {}, t('legend.other'))));
  } else if (legend.kind === 'ramp') {
    const grad = el('span', { class: 'ramp', 'aria-hidden': 'true' });
    grad.style.background = `linear-gradient(to right, ${legend.stops.map(([, c]) => c).join(',')})`;
    const first = legend.stops[0];
    const last = legend.stops[legend.stops.length - 1];
    ul.append(
      el('li', { class: 'ramp-row' }, el('span', {}, attrLabel(legend.property)), grad),
      el('li', { class: 'ramp-ends' }, el('span', {}, first ? fmtNumber(first[0]) : ''), el('span', {}, last ? fmtNumber(last[0]) : '')),
    );
  } else {
    for (const c of legend.classes) {
      const range =
        c.from === undefined ? `< ${fmtNumber(c.to!)}` : c.to === undefined ? `≥ ${fmtNumber(c.from)}` : `${fmtNumber(c.from)} – ${fmtNumber(c.to)}`;
      ul.append(el('li', {}, swatch(legend.swatch, c.color), el('span', {}, range)));
    }
  }
  return ul;
}

function renderBuildingLegend(l: BuildingLegend): HTMLElement {
  const ul = el('ul', { class: 'legend-items', 'aria-label': t('legend.buildingsBy', { attr: attrLabel(l.attr) }) });
  for (const it of l.items) {
    let label: string;
    if (l.kind === 'classes') {
      label =
        l.attr === 'startDate'
          ? `${Math.round(it.from!)} – ${Math.round(it.to!)}`
          : `${fmtNumber(it.from!)} – ${fmtNumber(it.to!)}`;
    } else label = it.value ? valueLabel(l.attr, it.value) : it.label;
    ul.append(el('li', {}, swatch('extrusion', it.color), el('span', {}, label)));
  }
  ul.append(el('li', {}, swatch('extrusion', l.noData), el('span', {}, t('legend.noData'))));
  return ul;
}
