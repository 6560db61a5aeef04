// Sensors on the map with their current value: one focusable marker per sensor entity (types with few entities, such
// as air quality stations or traffic counters) labelled with its main reading. The markers are read once from the
// NGSI-LD API, then kept current by the twin's server-sent events (`/api/events`, docs/api.md): each `entity` event
// carries the entity as written. After a dropped connection the app reconnects with back-off and re-reads once; a
// `reset` event (the client fell behind) re-reads too. For the time slider a marker can show the reading of an
// earlier time instead, from the sensor's history (the temporal API), read once per sensor in view.

import { Marker, type Map as MlMap } from 'maplibre-gl';
import { attrValue, attributes, entityType, getTemporal, plain, queryEntities, type Attribute, type Entity } from './api';
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
  ThreePhaseAcMeasurement: 'totalActivePower',
  WeatherObserved: 'temperature',
  WaterQualityObserved: 'temperature',
  ParkingSpot: 'status',
};

/** At most this many observed (not simulated) entities of all sensor types get a marker. */
export const MAX_MARKERS = 1000;

/** Smart Data Models types that are observations or devices: sensors by their name. */
const OBSERVATION_TYPE = /(Observed|Measurement)$|^(Device|ParkingSpot|OffStreetParking|OnStreetParking|ParkingGroup)$/;

/**
 * Which of the candidate entity types (the map's non-fabric layers) are sensors: the Smart Data Models observation
 * types, and any other type whose observed entities (`q=!simulated`) carry readings with `observedAt`. Simulated
 * results (scenario runs' `TrafficFlowObserved`) never count, however many there are.
 */
export async function detectSensorTypes(candidates: string[]): Promise<string[]> {
  const checks = candidates.map(async (type) => {
    if (OBSERVATION_TYPE.test(type)) return true;
    try {
      const sample = await queryEntities({ type, q: '!simulated', limit: 20 });
      return sample.some((e) => attributes(e).some(([, l]) => l.some((a) => !!a.observedAt)));
    } catch {
      return false;
    }
  });
  const ok = await Promise.all(checks);
  return candidates.filter((_, i) => ok[i]);
}

interface Reading {
  attr: string;
  value: unknown;
  unit: string;
  observedAt?: string;
}

export function mainReading(e: Entity): Reading | undefined {
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

export function pointOf(e: Entity): [number, number] | undefined {
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

/** A sensor's readings of one attribute, ascending: [epoch ms, value]. */
type History = [number, unknown][];

/** The latest reading at or before `at` (epoch ms). */
export function readingAt(h: History, at: number): [number, unknown] | undefined {
  let found: [number, unknown] | undefined;
  for (const r of h) {
    if (r[0] <= at) found = r;
    else break;
  }
  return found;
}

export class SensorLayer {
  private readonly markers = new Map<string, MarkerEntry>();
  private types: string[] = [];
  /** The time shown (epoch ms), or undefined for the live values. */
  private time: number | undefined;
  /** Readings per sensor and attribute (`id attr`), from the temporal API; kept for the time slider. */
  private readonly histories = new Map<string, History>();
  private readonly loading = new Map<string, Promise<void>>();
  private hiddenTypes = new Set<string>();
  private source: EventSource | undefined;
  private retryTimer: number | undefined;
  private retryMs = 0;
  /** Set when the stream dropped: what was written meanwhile is read again once it is back. */
  private stale = false;
  private stopped = false;

  constructor(
    private readonly map: MlMap,
    private readonly onSelect: (id: string) => void,
    private readonly onChange: (id: string) => void,
  ) {
    onLangChange(() => {
      for (const m of this.markers.values()) this.label(m);
    });
    map.on('moveend', () => {
      if (this.time !== undefined) void this.loadVisible();
    });
  }

  async start(types: string[]): Promise<void> {
    this.types = types;
    if (!this.types.length) return;
    this.stopped = false;
    this.connect();
    await this.read();
  }

  stop(): void {
    this.stopped = true;
    window.clearTimeout(this.retryTimer);
    this.source?.close();
    this.source = undefined;
  }

  setTypeVisible(type: string, visible: boolean): void {
    if (visible) this.hiddenTypes.delete(type);
    else this.hiddenTypes.add(type);
    for (const m of this.markers.values())
      if (entityType(m.entity) === type) m.marker.getElement().hidden = !visible;
  }

  /** Shows the readings at `time` (epoch ms; undefined: the live values), from the sensors' histories. */
  async setTime(time: number | undefined): Promise<void> {
    this.time = time;
    for (const m of this.markers.values()) this.label(m);
    if (time !== undefined) await this.loadVisible();
  }

  /** Reads the histories of the sensors in view that are not read yet (once per sensor). */
  private async loadVisible(): Promise<void> {
    const bounds = this.map.getBounds();
    const jobs: Promise<void>[] = [];
    for (const m of this.markers.values()) {
      if (!bounds.contains(m.marker.getLngLat())) continue;
      const r = mainReading(m.entity);
      if (!r) continue;
      const key = `${m.entity.id} ${r.attr}`;
      if (this.histories.has(key)) continue;
      let job = this.loading.get(key);
      if (!job) {
        job = getTemporal(m.entity.id, [r.attr], 1000)
          .then((te) => {
            const values = ((te[r.attr] as { values?: [unknown, string][] } | undefined)?.values ?? [])
              .map(([v, at]) => [Date.parse(at), v] as [number, unknown])
              .filter(([at]) => Number.isFinite(at))
              .sort((a, b) => a[0] - b[0]);
            this.histories.set(key, values);
          })
          .catch(() => undefined)
          .finally(() => this.loading.delete(key));
        this.loading.set(key, job);
      }
      jobs.push(job.then(() => this.label(m)));
    }
    await Promise.all(jobs);
    document.documentElement.dataset.sensorTime = this.time === undefined ? 'live' : String(this.time);
  }

  /** Opens the event stream; on an error closes it and tries again after 1, 2, 4… (at most 30) seconds. */
  private connect(): void {
    if (this.stopped) return;
    // simulated results (a scenario run publishes over a thousand) are not sent at all
    const params = new URLSearchParams({ type: this.types.join(','), format: 'normalized', q: '!simulated' });
    const es = new EventSource(`/api/events?${params}`);
    this.source = es;
    es.addEventListener('ready', () => {
      this.retryMs = 0;
      document.documentElement.dataset.liveEvents = 'open'; // for the tests and for styling
      if (this.stale) {
        this.stale = false;
        void this.read();
      }
    });
    es.addEventListener('entity', (ev) => {
      try {
        this.apply([JSON.parse((ev as MessageEvent<string>).data) as Entity]);
      } catch {
        /* not an entity: ignored */
      }
    });
    es.addEventListener('reset', () => void this.read());
    es.addEventListener('error', () => {
      if (this.source !== es) return;
      es.close();
      this.source = undefined;
      this.stale = true;
      document.documentElement.dataset.liveEvents = 'retrying';
      this.retryMs = Math.min(this.retryMs ? this.retryMs * 2 : 1000, 30_000);
      window.clearTimeout(this.retryTimer);
      this.retryTimer = window.setTimeout(() => this.connect(), this.retryMs);
    });
  }

  /** Reads every sensor of the types (observed ones: simulated results are not sensors). */
  private async read(): Promise<void> {
    try {
      this.apply(await queryEntities({ type: this.types.join(','), q: '!simulated', limit: MAX_MARKERS }));
    } catch {
      this.stale = true; // read again when the stream is back
    }
  }

  private apply(list: Entity[]): void {
    let created = false;
    for (const e of list) {
      if (plain(e, 'simulated') === true || !this.types.includes(entityType(e))) continue;
      const at = pointOf(e);
      if (!at) continue;
      const r = mainReading(e);
      const key = JSON.stringify([r?.value, r?.observedAt, at]);
      const h = r && this.histories.get(`${e.id} ${r.attr}`);
      const when = r?.observedAt ? Date.parse(r.observedAt) : NaN;
      if (h && Number.isFinite(when) && !h.some(([t0, v]) => t0 === when && v === r.value)) {
        h.push([when, r.value]);
        h.sort((a, b) => a[0] - b[0]);
      }
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
      created = true;
    }
    // markers that arrive while the slider shows an earlier time need their histories
    if (created && this.time !== undefined) void this.loadVisible();
  }

  private label(m: MarkerEntry): void {
    const e = m.entity;
    let r = mainReading(e);
    if (r && this.time !== undefined) {
      const h = this.histories.get(`${e.id} ${r.attr}`);
      const at = h ? readingAt(h, this.time) : undefined;
      r = { ...r, value: at ? at[1] : undefined, observedAt: at ? new Date(at[0]).toISOString() : undefined };
      m.button.classList.toggle('no-reading', !at);
    } else m.button.classList.remove('no-reading');
    const name = String(attrValue((e.name as Attribute | undefined) ?? { type: 'Property', value: '' }) ?? '') || e.id;
    const value = r ? (typeof r.value === 'number' ? fmtNumber(r.value) : r.value === undefined ? '–' : String(r.value)) : '';
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
