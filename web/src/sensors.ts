// Sensors on the map with their current value: one focusable marker per sensor entity (types with few entities, such
// as air quality stations or traffic counters) labelled with its main reading. Values are re-read from the NGSI-LD API
// every few seconds while the page is visible; the twin has no push channel for the browser yet.

import { Marker, type Map as MlMap } from 'maplibre-gl';
import { attrValue, attributes, entityType, queryEntities, type Attribute, type Entity } from './api';
import { el } from './dom';
import { fmtDateTime, fmtNumber, onLangChange, t } from './i18n';
import { attrLabel } from './layers';
import { typeLabel } from './feature-panel';
import { unitSymbol } from './units';

/** The reading a sensor type is known by. */
const MAIN_ATTR: Record<string, string> = {
  AirQualityObserved: 'NO2',
  TrafficFlowObserved: 'intensity',
  NoiseLevelObserved: 'LAeq',
  OffStreetParking: 'availableSpotNumber',
  WeatherObserved: 'temperature',
  WaterQualityObserved: 'temperature',
  ParkingSpot: 'status',
};

/** At most this many entities per type get a marker; denser layers stay circles in the tiles. */
export const MAX_MARKERS_PER_TYPE = 200;

interface Reading {
  attr: string;
  value: unknown;
  unit: string;
  observedAt?: string;
}

function mainReading(e: Entity): Reading | undefined {
  const attrs = attributes(e);
  const pick = (k: string): Reading | undefined => {
    const a = attrs.find(([n]) => n === k)?.[1][0] as Attribute | undefined;
    if (!a) return undefined;
    return { attr: k, value: attrValue(a), unit: unitSymbol(a.unitCode), observedAt: a.observedAt };
  };
  const known = MAIN_ATTR[entityType(e)];
  if (known) {
    const r = pick(known);
    if (r) return r;
  }
  const observed = attrs.find(([, l]) => l.some((a) => typeof a.value === 'number' && a.observedAt));
  if (observed) return pick(observed[0]);
  const numeric = attrs.find(([, l]) => l.some((a) => typeof a.value === 'number'));
  return numeric ? pick(numeric[0]) : undefined;
}

function pointOf(e: Entity): [number, number] | undefined {
  const loc = e.location as Attribute | undefined;
  const g = loc && !Array.isArray(loc) ? (loc.value as { type?: string; coordinates?: unknown }) : undefined;
  if (g?.type === 'Point' && Array.isArray(g.coordinates)) return [Number(g.coordinates[0]), Number(g.coordinates[1])];
  return undefined;
}

interface MarkerEntry {
  marker: Marker;
  button: HTMLButtonElement;
  entity: Entity;
  key: string;
}

export class SensorLayer {
  private readonly markers = new Map<string, MarkerEntry>();
  private timer: number | undefined;
  private hiddenTypes = new Set<string>();

  constructor(
    private readonly map: MlMap,
    private readonly types: string[],
    private readonly onSelect: (id: string) => void,
    private readonly onChange: (id: string) => void,
    private readonly intervalMs = 3000,
  ) {
    onLangChange(() => {
      for (const m of this.markers.values()) this.label(m);
    });
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') void this.poll();
    });
  }

  async start(): Promise<void> {
    await this.poll();
    this.timer = window.setInterval(() => {
      if (document.visibilityState === 'visible') void this.poll();
    }, this.intervalMs);
  }

  stop(): void {
    window.clearInterval(this.timer);
  }

  setTypeVisible(type: string, visible: boolean): void {
    if (visible) this.hiddenTypes.delete(type);
    else this.hiddenTypes.add(type);
    for (const m of this.markers.values())
      if (entityType(m.entity) === type) m.marker.getElement().hidden = !visible;
  }

  private async poll(): Promise<void> {
    if (!this.types.length) return;
    let list: Entity[];
    try {
      list = await queryEntities({ type: this.types.join(','), limit: 1000 });
    } catch {
      return; // the next poll tries again
    }
    for (const e of list) {
      const at = pointOf(e);
      if (!at) continue;
      const r = mainReading(e);
      const key = JSON.stringify([r?.value, r?.observedAt, at]);
      const old = this.markers.get(e.id);
      if (old) {
        if (old.key === key) continue;
        old.entity = e;
        old.key = key;
        old.marker.setLngLat(at);
        this.label(old);
        old.button.classList.remove('updated');
        void old.button.offsetWidth; // restart the animation
        old.button.classList.add('updated');
        this.onChange(e.id);
        continue;
      }
      const button = el('button', { type: 'button', class: 'sensor-marker', 'data-entity': e.id }) as HTMLButtonElement;
      button.addEventListener('click', (ev) => {
        ev.stopPropagation();
        this.onSelect(e.id);
      });
      const marker = new Marker({ element: button, anchor: 'left', offset: [10, 0] }).setLngLat(at).addTo(this.map);
      const entry = { marker, button, entity: e, key };
      button.hidden = this.hiddenTypes.has(entityType(e));
      this.markers.set(e.id, entry);
      this.label(entry);
    }
  }

  private label(m: MarkerEntry): void {
    const e = m.entity;
    const r = mainReading(e);
    const name = String(attrValue((e.name as Attribute | undefined) ?? { type: 'Property', value: '' }) ?? '') || e.id;
    const value = r ? (typeof r.value === 'number' ? fmtNumber(r.value) : String(r.value ?? '')) : '';
    const text = r ? `${attrLabel(r.attr)} ${value}${r.unit ? ` ${r.unit}` : ''}` : typeLabel(entityType(e));
    m.button.replaceChildren(el('span', { class: 'sensor-value' }, text));
    m.button.setAttribute(
      'aria-label',
      r?.observedAt
        ? t('sensors.labelObserved', { name, type: typeLabel(entityType(e)), reading: text, time: fmtDateTime(r.observedAt) })
        : t('sensors.label', { name, type: typeLabel(entityType(e)), reading: text }),
    );
    m.button.title = name;
  }
}
