// The shareable state in the URL hash: `#map=zoom/lat/lon/bearing/pitch&layers=a,b&off=c&feature=urn&colour=height&scenario=urn&access=walk/15&t=2026-11-25T08:00:00.000Z&lang=fi`.
// `layers` lists the groups shown when it differs from the default; `off` those hidden; `access` the 15-minute city
// panel's options (`mode/minutes[/older][/category]`).

export interface View {
  zoom: number;
  lat: number;
  lon: number;
  bearing: number;
  pitch: number;
}

/** The options of the 15-minute city panel. */
export interface AccessState {
  mode: 'walk' | 'bike';
  /** The threshold, one of ACCESS_MINUTES. */
  minutes: number;
  /** Walking speed; ignored when cycling. */
  profile: 'adult' | 'older';
  /** What the map shows: `score`, or a category whose minutes it shows. */
  indicator: string;
}

/** The thresholds the panel offers. */
export const ACCESS_MINUTES = [5, 10, 15, 20] as const;
export const ACCESS_DEFAULT: AccessState = { mode: 'walk', minutes: 15, profile: 'adult', indicator: 'score' };

/** `walk/15`, `walk/10/older`, `bike/20/grocery`, `walk/15/older/park`: undefined when the mode is not known. */
export function parseAccess(v: string): AccessState | undefined {
  const [mode, minutes, ...rest] = v.split('/');
  if (mode !== 'walk' && mode !== 'bike') return undefined;
  const m = Number(minutes);
  const s: AccessState = { ...ACCESS_DEFAULT, mode, minutes: (ACCESS_MINUTES as readonly number[]).includes(m) ? m : ACCESS_DEFAULT.minutes };
  for (const r of rest) {
    if (r === 'adult' || r === 'older') s.profile = mode === 'walk' ? r : 'adult';
    else if (/^[a-z][a-z0-9_]*$/.test(r)) s.indicator = r;
  }
  return s;
}

/** The shortest form: the profile only when walking and older, the indicator only when not the score. */
export function formatAccess(s: AccessState): string {
  const parts = [s.mode, String(s.minutes)];
  if (s.mode === 'walk' && s.profile === 'older') parts.push('older');
  if (s.indicator !== 'score') parts.push(s.indicator);
  return parts.join('/');
}

export interface UrlState {
  view?: View;
  hidden?: string[];
  shown?: string[];
  feature?: string;
  colour?: string;
  /** The scenario shown in the scenario panel. */
  scenario?: string;
  /** The 15-minute city panel, open with these options. */
  access?: AccessState;
  lang?: string;
  /** The time slider's time (ISO 8601); absent: live. */
  time?: string;
  /** The consultation open: in the query string (`?consultation=id`), so that a shared link is a plain one. */
  consultation?: string;
}

/** The state the query string holds: `?consultation=id`. */
export function parseSearch(search: string): Pick<UrlState, 'consultation'> {
  const c = new URLSearchParams(search.replace(/^\?/, '')).get('consultation');
  return c ? { consultation: c } : {};
}

/** The query string with the consultation set (or removed), other parameters kept. */
export function formatSearch(search: string, consultation: string | undefined): string {
  const p = new URLSearchParams(search.replace(/^\?/, ''));
  if (consultation) p.set('consultation', consultation);
  else p.delete('consultation');
  const s = p.toString();
  return s ? `?${s}` : '';
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
  const ac = p.get('access');
  const access = ac ? parseAccess(ac) : undefined;
  if (access) s.access = access;
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
  if (s.access) parts.push(`access=${formatAccess(s.access)}`);
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
    const search = formatSearch(window.location.search, this.state.consultation);
    if (hash !== window.location.hash || search !== window.location.search) {
      history.replaceState(history.state, '', `${window.location.pathname}${search}${hash}`);
    }
  }
}
