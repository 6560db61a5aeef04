// The shareable state in the URL hash: `#map=zoom/lat/lon/bearing/pitch&layers=a,b&off=c&feature=urn&colour=height&scenario=urn&t=2026-11-25T08:00:00.000Z&lang=fi`.
// `layers` lists the groups shown when it differs from the default; `off` those hidden.

export interface View {
  zoom: number;
  lat: number;
  lon: number;
  bearing: number;
  pitch: number;
}

export interface UrlState {
  view?: View;
  hidden?: string[];
  shown?: string[];
  feature?: string;
  colour?: string;
  /** The scenario shown in the scenario panel. */
  scenario?: string;
  lang?: string;
  /** The time slider's time (ISO 8601); absent: live. */
  time?: string;
}

export function parseHash(hash: string): UrlState {
  const p = new URLSearchParams(hash.replace(/^#/, ''));
  const s: UrlState = {};
  const map = p.get('map');
  if (map) {
    const [zoom, lat, lon, bearing, pitch] = map.split('/').map(Number);
    if ([zoom, lat, lon].every((n) => Number.isFinite(n)) && Math.abs(lat!) <= 90 && Math.abs(lon!) <= 180) {
      s.view = {
        zoom: zoom!,
        lat: lat!,
        lon: lon!,
        bearing: Number.isFinite(bearing) ? bearing! : 0,
        pitch: Number.isFinite(pitch) ? pitch! : 0,
      };
    }
  }
  const off = p.get('off');
  if (off !== null) s.hidden = off.split(',').filter(Boolean);
  const on = p.get('layers');
  if (on !== null) s.shown = on.split(',').filter(Boolean);
  const f = p.get('feature');
  if (f) s.feature = f;
  const c = p.get('colour');
  if (c) s.colour = c;
  const sc = p.get('scenario');
  if (sc) s.scenario = sc;
  const tm = p.get('t');
  if (tm && Number.isFinite(Date.parse(tm))) s.time = tm;
  const l = p.get('lang');
  if (l) s.lang = l;
  return s;
}

function round(n: number, digits: number): string {
  return String(Number(n.toFixed(digits)));
}

export function formatHash(s: UrlState): string {
  const parts: string[] = [];
  if (s.view) {
    const v = s.view;
    parts.push(
      `map=${[round(v.zoom, 2), round(v.lat, 5), round(v.lon, 5), round(v.bearing, 1), round(v.pitch, 1)].join('/')}`,
    );
  }
  if (s.hidden && s.hidden.length) parts.push(`off=${s.hidden.map(encodeURIComponent).join(',')}`);
  if (s.shown && s.shown.length) parts.push(`layers=${s.shown.map(encodeURIComponent).join(',')}`);
  if (s.colour) parts.push(`colour=${encodeURIComponent(s.colour)}`);
  if (s.feature) parts.push(`feature=${encodeURIComponent(s.feature)}`);
  if (s.scenario) parts.push(`scenario=${encodeURIComponent(s.scenario)}`);
  if (s.time) parts.push(`t=${encodeURIComponent(s.time)}`);
  if (s.lang) parts.push(`lang=${s.lang}`);
  return parts.length ? `#${parts.join('&')}` : '';
}

/** Keeps the hash in step with the app without adding history entries; batches bursts (map moves) into one write. */
export class UrlSync {
  private state: UrlState;
  private timer: number | undefined;
  constructor(initial: UrlState) {
    this.state = { ...initial };
  }
  get(): UrlState {
    return this.state;
  }
  update(patch: Partial<UrlState>): void {
    this.state = { ...this.state, ...patch };
    for (const [k, v] of Object.entries(patch)) if (v === undefined) delete (this.state as Record<string, unknown>)[k];
    window.clearTimeout(this.timer);
    this.timer = window.setTimeout(() => this.flush(), 150);
  }
  flush(): void {
    window.clearTimeout(this.timer);
    const hash = formatHash(this.state);
    if (hash !== window.location.hash) {
      history.replaceState(history.state, '', `${window.location.pathname}${window.location.search}${hash}`);
    }
  }
}
