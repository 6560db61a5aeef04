// A typed client for the twin's public HTTP API (docs/api.md): NGSI-LD under /ngsi-ld/v1, vector tiles under
// /tiles and datasets under /api/datasets. Every request goes to the origin the app is served from.

import type { StyleSpecification } from 'maplibre-gl';

/** Where provenance of one attribute instance is kept (`options=provenance`). */
export interface Provenance {
  source?: string;
  channel?: string;
  dataset?: string;
}

/** An NGSI-LD attribute in the normalized representation, with system attributes. */
export interface Attribute {
  type: 'Property' | 'GeoProperty' | 'Relationship' | 'LanguageProperty' | 'VocabProperty' | 'ListProperty' | string;
  value?: unknown;
  object?: unknown;
  languageMap?: Record<string, string>;
  vocab?: unknown;
  unitCode?: string;
  observedAt?: string;
  createdAt?: string;
  modifiedAt?: string;
  datasetId?: string;
  instanceId?: string;
  provenance?: Provenance;
  [sub: string]: unknown;
}

/** An entity in the normalized representation: attributes are single objects or, for multi-attributes, arrays. */
export interface Entity {
  id: string;
  type: string | string[];
  createdAt?: string;
  modifiedAt?: string;
  [attr: string]: Attribute | Attribute[] | unknown;
}

/** A temporal entity with `options=temporalValues`: per attribute `{type, values: [[value, time], ...]}`. */
export interface TemporalEntity {
  id: string;
  type: string | string[];
  [attr: string]: unknown;
}

export interface TemporalValues {
  type: string;
  values: [unknown, string][];
}

/** `/api/datasets/{id}` */
export interface Dataset {
  id: string;
  title: string;
  description?: string;
  owner: string;
  licence: string;
  read?: { kind: string };
  write?: { kind: string };
  createdAt?: string;
}

/** One layer of `GET /tiles`. */
export interface TileLayerInfo {
  /** The layer id: the entity type's short name (`Building`). */
  id: string;
  /** The entity type's full IRI. */
  type: string;
  entities: number;
  minzoom: number;
  tilejson?: string;
  tiles?: string;
}

export interface TilesIndex {
  layers: TileLayerInfo[];
  tilejson?: string;
  style?: string;
}

/** TileJSON 3.0.0 as `/tiles/{layers}` serves it. */
export interface TileJson {
  tilejson: string;
  tiles: string[];
  bounds?: [number, number, number, number];
  center?: [number, number, number];
  minzoom?: number;
  maxzoom?: number;
  attribution?: string;
  vector_layers?: { id: string; fields: Record<string, string>; minzoom?: number; maxzoom?: number }[];
}

/** An NGSI-LD ProblemDetails error. */
export class ApiError extends Error {
  readonly status: number;
  readonly type: string | undefined;
  constructor(status: number, message: string, type?: string) {
    super(message);
    this.status = status;
    this.type = type;
  }
}

const NGSI = '/ngsi-ld/v1';

/** The error of a failed answer: its ProblemDetails' detail and type when it has them. */
export async function problem(res: Response): Promise<ApiError> {
  let detail = res.statusText;
  let type: string | undefined;
  try {
    const body = await res.json();
    detail = body.detail ?? body.description ?? body.title ?? detail;
    type = body.type ?? body.code;
  } catch {
    /* not JSON */
  }
  return new ApiError(res.status, detail, type);
}

async function getJson<T>(path: string, signal?: AbortSignal, accept?: string): Promise<T> {
  // no headers by default, so that the requests the page preloads (style, layers) are the same requests
  const res = await fetch(path, { ...(accept ? { headers: { Accept: accept } } : {}), signal });
  if (!res.ok) throw await problem(res);
  return (await res.json()) as T;
}

// ---- the session: writes made with the session cookie carry its CSRF token (docs/api.md, "Accounts")

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
let csrf: string | undefined;
let unauthorized: ((detail: string) => void) | undefined;

/** The CSRF token of the signed-in session (from the sign-in or `/api/auth/me` answer); undefined when anonymous. */
export function setCsrfToken(token: string | null | undefined): void {
  csrf = token || undefined;
}

export function getCsrfToken(): string | undefined {
  return csrf;
}

let refresher: (() => Promise<boolean>) | undefined;

/**
 * How the client gets a fresh CSRF token when a write is refused for a stale one (the session was renewed in another
 * tab): re-reads the session and resolves true when the token changed, so that the write is tried once more.
 */
export function setCsrfRefresher(f: (() => Promise<boolean>) | undefined): void {
  refresher = f;
}

/** What the app does when a write is answered 401 (sign in first, or the session ended): e.g. open the sign-in dialog. */
export function setUnauthorizedHandler(f: ((detail: string) => void) | undefined): void {
  unauthorized = f;
}

/** The headers of a request: `X-CSRF-Token` added to every method that changes something when there is a token. */
export function requestHeaders(method: string, token: string | undefined, headers?: HeadersInit): Headers {
  const h = new Headers(headers);
  if (token && !SAFE_METHODS.has(method.toUpperCase())) h.set('X-CSRF-Token', token);
  return h;
}

/** `fetch` for the twin's API: same-origin credentials (the session cookie) and the CSRF token on writes. */
export function apiFetch(path: string, init: RequestInit = {}): Promise<Response> {
  const method = (init.method ?? 'GET').toUpperCase();
  return fetch(path, { ...init, method, credentials: 'same-origin', headers: requestHeaders(method, csrf, init.headers) });
}

export function qs(params: Record<string, string | number | undefined>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
}

export const enc = encodeURIComponent;

/** `GET /ngsi-ld/v1/entities/{id}` with system attributes and per-attribute provenance. */
export function getEntity(id: string, signal?: AbortSignal): Promise<Entity> {
  return getJson<Entity>(`${NGSI}/entities/${enc(id)}${qs({ options: 'sysAttrs,provenance' })}`, signal);
}

/** `GET /ngsi-ld/v1/entities` (normalized unless `options` says otherwise). */
export function queryEntities(
  params: {
    id?: string;
    type?: string;
    q?: string;
    attrs?: string;
    limit?: number;
    offset?: number;
    options?: string;
    idPattern?: string;
    georel?: string;
    geometry?: string;
    coordinates?: string;
  },
  signal?: AbortSignal,
): Promise<Entity[]> {
  return getJson<Entity[]>(`${NGSI}/entities${qs(params)}`, signal);
}

/** The last `lastN` instances of the named attributes (`options=temporalValues`). */
export function getTemporal(id: string, attrs: string[], lastN: number, signal?: AbortSignal): Promise<TemporalEntity> {
  return getJson<TemporalEntity>(
    `${NGSI}/temporal/entities/${enc(id)}${qs({ attrs: attrs.join(','), lastN, options: 'temporalValues' })}`,
    signal,
  );
}

export function getDataset(id: string, signal?: AbortSignal): Promise<Dataset> {
  return getJson<Dataset>(`/api/datasets/${enc(id)}`, signal);
}

export function listDatasets(signal?: AbortSignal): Promise<Dataset[]> {
  return getJson<Dataset[]>('/api/datasets', signal);
}

export function getTilesIndex(signal?: AbortSignal): Promise<TilesIndex> {
  return getJson<TilesIndex>('/tiles', signal);
}

export function getTileJson(layers: string, signal?: AbortSignal): Promise<TileJson> {
  return getJson<TileJson>(`/tiles/${layers}`, signal);
}

export function getStyle(signal?: AbortSignal): Promise<StyleSpecification> {
  return getJson<StyleSpecification>('/tiles/style.json', signal);
}

// ---- helpers over the normalized representation

/** The attributes of an entity (everything but id, type, @context and the entity's system attributes). */
export function attributes(e: Entity): [string, Attribute[]][] {
  const out: [string, Attribute[]][] = [];
  for (const [k, v] of Object.entries(e)) {
    if (['id', 'type', '@context', 'createdAt', 'modifiedAt', 'deletedAt', 'scope'].includes(k)) continue;
    if (Array.isArray(v)) out.push([k, v as Attribute[]]);
    else if (v && typeof v === 'object') out.push([k, [v as Attribute]]);
  }
  return out;
}

/** The value an attribute carries, whatever its kind. */
export function attrValue(a: Attribute): unknown {
  if (a.type === 'Relationship') return a.object;
  if (a.type === 'LanguageProperty') return a.languageMap;
  if (a.type === 'VocabProperty') return a.vocab;
  return a.value;
}

export function entityType(e: { type: string | string[] }): string {
  return Array.isArray(e.type) ? e.type[0] ?? '' : e.type;
}

/** The plain value of a property (keyValues-like) or undefined. */
export function plain(e: Entity, attr: string): unknown {
  const v = e[attr];
  const a = (Array.isArray(v) ? v[0] : v) as Attribute | undefined;
  return a && typeof a === 'object' ? attrValue(a) : undefined;
}

// ---- scenarios (/api/scenarios)

/** A street selector of the scenario edits: a street by name, `RoadLink` ids, or an area. */
export type EditTarget = { street: string } | { links: string[] } | { area: unknown };

/** One edit of a scenario (docs/models/traffic.md#scenarios). */
export type ScenarioEdit =
  | { kind: 'closeStreet'; name: string }
  | { kind: 'closeLinks'; links: string[] }
  | { kind: 'setLanes'; target: EditTarget; lanes: number }
  | { kind: 'setSpeed'; target: EditTarget; kmh: number }
  | { kind: string; [k: string]: unknown };

export interface Scenario {
  id: string;
  name: string;
  description?: string;
  edits: ScenarioEdit[];
  createdAt?: string;
  modifiedAt?: string;
  runs?: string;
}

export interface RunSummary {
  vehicleKm?: number;
  vehicleHours?: number;
  trips?: number;
  unservedTrips?: number;
  closedLinks?: number;
  baseline?: { vehicleKm?: number; vehicleHours?: number; unservedTrips?: number };
  delta?: { vehicleKm?: number; vehicleKmPct?: number; vehicleHours?: number; vehicleHoursPct?: number; unservedTrips?: number };
  [k: string]: unknown;
}

export interface ScenarioRun {
  id: string;
  status: 'queued' | 'running' | 'done' | 'failed' | 'cancelled';
  progress?: number;
  message?: string;
  createdAt?: string;
  finishedAt?: string;
  summary?: RunSummary;
}

/**
 * A write (or a read that needs no preload-identical request) through [`apiFetch`]: JSON in and out. A 401 calls the
 * unauthorized handler (unless `quiet401`: the sign-in itself answers 401 to a wrong password) before it throws.
 */
export async function sendJson<T>(
  method: string,
  path: string,
  body?: unknown,
  signal?: AbortSignal,
  quiet401 = false,
  retried = false,
): Promise<T | undefined> {
  const res = await apiFetch(path, {
    method,
    ...(signal ? { signal } : {}),
    ...(body !== undefined ? { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) } : {}),
  });
  if (!res.ok) {
    const err = await problem(res);
    if (res.status === 401 && !quiet401) unauthorized?.(err.message);
    // a stale CSRF token (the session renewed elsewhere): once more with a fresh one
    if (res.status === 403 && !retried && !SAFE_METHODS.has(method) && refresher && /csrf/i.test(err.message) && (await refresher()))
      return sendJson<T>(method, path, body, signal, quiet401, true);
    throw err;
  }
  const text = await res.text();
  return text ? (JSON.parse(text) as T) : undefined;
}

const SCEN = '/api/scenarios';

export function listScenarios(signal?: AbortSignal): Promise<Scenario[]> {
  return getJson<Scenario[]>(SCEN, signal);
}

export function getScenario(id: string, signal?: AbortSignal): Promise<Scenario> {
  return getJson<Scenario>(`${SCEN}/${enc(id)}`, signal);
}

export async function createScenario(s: Omit<Scenario, 'id'>): Promise<Scenario> {
  return (await sendJson<Scenario>('POST', SCEN, s))!;
}

export async function replaceScenario(s: Scenario): Promise<void> {
  await sendJson('PUT', `${SCEN}/${enc(s.id)}`, s);
}

export async function startRun(id: string): Promise<ScenarioRun> {
  return (await sendJson<ScenarioRun>('POST', `${SCEN}/${enc(id)}/runs`))!;
}

export function listRuns(id: string, signal?: AbortSignal): Promise<ScenarioRun[]> {
  return getJson<ScenarioRun[]>(`${SCEN}/${enc(id)}/runs`, signal);
}

export function getRun(id: string, run: string, signal?: AbortSignal): Promise<ScenarioRun> {
  return getJson<ScenarioRun>(`${SCEN}/${enc(id)}/runs/${enc(run)}`, signal);
}

export async function cancelRun(id: string, run: string): Promise<void> {
  await sendJson('DELETE', `${SCEN}/${enc(id)}/runs/${enc(run)}`);
}

// ---- the 15-minute city (`/api/access`, docs/api.md)

export type AccessMode = 'walk' | 'bike';
export type AccessProfile = 'adult' | 'older';

/** The options of `/api/access` and `/api/access/homes`. */
export interface AccessOptions {
  mode: AccessMode;
  minutes: number;
  /** Walking only. */
  profile?: AccessProfile;
  categories?: string[];
}

export interface AccessCategory {
  category: string;
  destinations: number;
  /** Share of residents (0..1) within the threshold. */
  shareWithin: number;
  medianMinutes: number | null;
}

/** `GET /api/access`: the residents-weighted summary. */
export interface AccessSummary {
  mode: AccessMode;
  thresholdMinutes: number;
  homes: number;
  residents: number;
  meanScore: number;
  shareAllWithin: number;
  /** Categories without a destination in the data (left out of the scores). */
  missing: string[];
  categories: AccessCategory[];
  speedKmh?: number;
  [k: string]: unknown;
}

/** One home of `GET /api/access/homes`: `id` (a Building URN), `residents`, `score`, `{category}Minutes`, `{category}Nearest`. */
export interface AccessHomes {
  type: 'FeatureCollection';
  features: {
    type: 'Feature';
    id?: string | number;
    geometry: { type: 'Point'; coordinates: [number, number] };
    properties: { id: string; residents: number; score: number; [k: string]: unknown };
  }[];
}

/** The query string of the access endpoints (the profile only when walking). */
export function accessQuery(o: AccessOptions): string {
  return qs({
    mode: o.mode,
    minutes: o.minutes,
    profile: o.mode === 'walk' ? o.profile : undefined,
    categories: o.categories?.length ? o.categories.join(',') : undefined,
  });
}

export function getAccess(o: AccessOptions, signal?: AbortSignal): Promise<AccessSummary> {
  return getJson<AccessSummary>(`/api/access${accessQuery(o)}`, signal);
}

export function getAccessHomes(o: AccessOptions, signal?: AbortSignal): Promise<AccessHomes> {
  return getJson<AccessHomes>(`/api/access/homes${accessQuery(o)}`, signal);
}

/** An edit of `POST /api/access/scenario` ("what if"). */
export type AccessEdit =
  | { kind: 'addDestination'; category: string; lon: number; lat: number; name?: string }
  | { kind: 'removeDestination'; id: string }
  | { kind: 'closePaths'; links?: string[]; area?: unknown }
  | { kind: 'openPaths'; links: string[] }
  | { kind: 'addPath'; path: [number, number][] };

/** A home whose score an access scenario changed. */
export interface AccessChangedHome {
  id: string;
  lon: number;
  lat: number;
  residents: number;
  scoreBefore: number;
  scoreAfter: number;
}

/** The answer of `POST /api/access/scenario`. */
export interface AccessScenarioResult {
  edits: AccessEdit[];
  baseline: AccessSummary;
  scenario: AccessSummary;
  delta: { meanScore: number; shareAllWithin: number; categories: { category: string; shareWithin: number; change: number }[] };
  homes: AccessChangedHome[];
}

/** `POST /api/access/scenario`: the edits applied to the baseline's results, for the same options. */
export async function postAccessScenario(o: AccessOptions, body: { edits: AccessEdit[] }, signal?: AbortSignal): Promise<AccessScenarioResult> {
  return (await sendJson<AccessScenarioResult>('POST', `/api/access/scenario${accessQuery(o)}`, body, signal))!;
}

// ---- air quality and noise of the baseline or of a scenario's latest done run (409 before its first run)

/** `[baseline, scenario]`. */
export type Pair = [number, number];

export interface AirStreet {
  name?: string;
  vehiclesPerDay?: number;
  peakKmh?: number;
  /** SRM1 road type: 1 wide canyon, 2 narrow canyon, 3 one-sided, 4 open. */
  roadType?: number;
  receptorM?: number;
  nox?: number;
  no2?: number;
  pm10?: number;
  pm25?: number;
  no2Traffic?: number;
  deltaVehiclesPerDay?: number;
  deltaNo2?: number;
  deltaPm10?: number;
  deltaPm25?: number;
}

export interface AirExposure {
  aboveWho: number;
  aboveEu2030: number;
  aboveEuLimit: number;
  meanResidents: number;
  maxStreet?: number;
}

export interface AirResults {
  scenario: string;
  run: string | null;
  summary: {
    residents?: number;
    homes?: number;
    emissionsKgPerDay?: Record<string, number>;
    no2: AirExposure;
    pm25?: AirExposure;
    pm10?: AirExposure;
    thresholds?: { who2021: number[]; eu2030: number[]; euLimit: number[] };
  };
  change?: {
    no2AboveWho: Pair;
    no2AboveEu2030: Pair;
    no2AboveEuLimit: Pair;
    pm25AboveWho?: Pair;
    pm10AboveWho?: Pair;
    no2MeanResidents?: Pair;
    noxKgPerDay: Pair;
    pm10KgPerDay?: Pair;
    co2KgPerDay: Pair;
    streetsNo2Up?: number;
    streetsNo2Down?: number;
  };
  streets: Record<string, AirStreet>;
}

export interface NoiseStreet {
  name?: string;
  vehiclesPerDay?: number;
  receptorM?: number;
  lden: number | null;
  lnight: number | null;
  deltaVehiclesPerDay?: number;
  deltaLden?: number | null;
  deltaLnight?: number | null;
}

export interface NoiseResults {
  scenario: string;
  run: string | null;
  summary: {
    residents?: number;
    /** Residents exposed: `endLden` Lden ≥ 55 dB, `endLnight` Lnight ≥ 50 dB (the END thresholds). */
    noise: { residents?: number; endLden: number; endLnight: number; whoLden?: number; whoLnight?: number };
  };
  change?: { ldenAbove55: Pair; lnightAbove50: Pair };
  streets: Record<string, NoiseStreet>;
}

/** `GET /api/scenarios/{id}/air` (`baseline` or a scenario id). */
export function getAir(id: string, signal?: AbortSignal): Promise<AirResults> {
  return getJson<AirResults>(`${SCEN}/${enc(id)}/air`, signal);
}

/** `GET /api/scenarios/{id}/noise`. */
export function getNoise(id: string, signal?: AbortSignal): Promise<NoiseResults> {
  return getJson<NoiseResults>(`${SCEN}/${enc(id)}/noise`, signal);
}

// ---- accounts and trust (`/api/auth`, `/api/datasets/{id}/usage`, `/api/audit`; docs/api.md, "Accounts")

/** The principal of `/api/auth/me` and the sign-in answer. */
export interface PrincipalInfo {
  subject?: string | null;
  roles?: string[];
  groups?: string[];
  organisation?: string | null;
  method?: { kind?: string; [k: string]: unknown };
  scopes?: string[] | null;
}

/** An account as the API shows it. */
export interface AccountInfo {
  id: string;
  displayName?: string | null;
  email?: string | null;
  roles?: string[];
  groups?: string[];
  organisation?: string | null;
  disabled?: boolean;
}

/** The answer of `/api/auth/me`, `/api/auth/login` and `/api/auth/register`. */
export interface AuthAnswer {
  principal?: PrincipalInfo;
  account?: AccountInfo | null;
  csrfToken?: string | null;
}

/** `GET /api/auth/me` (the session cookie goes with it). */
export async function getMe(signal?: AbortSignal): Promise<AuthAnswer> {
  return (await sendJson<AuthAnswer>('GET', '/api/auth/me', undefined, signal, true)) ?? {};
}

/** `POST /api/auth/login`: a 401 means a wrong account id or password. */
export async function login(id: string, password: string): Promise<AuthAnswer> {
  return (await sendJson<AuthAnswer>('POST', '/api/auth/login', { id, password }, undefined, true)) ?? {};
}

/** `POST /api/auth/register`: a citizen account, signed in; 403 (or 404) when the twin takes no sign-ups. */
export async function register(id: string, password: string): Promise<AuthAnswer> {
  return (await sendJson<AuthAnswer>('POST', '/api/auth/register', { id, password }, undefined, true)) ?? {};
}

/** `POST /api/auth/logout`. */
export async function logout(): Promise<void> {
  await sendJson('POST', '/api/auth/logout', undefined, undefined, true);
}

/** `GET /api/datasets/{id}/usage`: the dataset's usage log, newest first (its owner and administrators). */
export function getUsage(id: string, limit = 50, signal?: AbortSignal): Promise<unknown> {
  return sendJson<unknown>('GET', `/api/datasets/${enc(id)}/usage${qs({ limit })}`, undefined, signal);
}

/** `GET /api/datasets/{id}/usage/summary`: reads per principal and operation. */
export function getUsageSummary(id: string, signal?: AbortSignal): Promise<unknown> {
  return sendJson<unknown>('GET', `/api/datasets/${enc(id)}/usage/summary`, undefined, signal);
}

/** `GET /api/audit`: audit records after a sequence number, oldest first (administrators). */
export function getAudit(after: number | undefined, limit: number, signal?: AbortSignal): Promise<unknown> {
  return sendJson<unknown>('GET', `/api/audit${qs({ after, limit })}`, undefined, signal);
}

/** `GET /api/audit/verify`: the chain's check; a broken chain is answered 409 with the same body. */
export async function verifyAudit(signal?: AbortSignal): Promise<unknown> {
  const res = await apiFetch('/api/audit/verify', signal ? { signal } : {});
  if (res.ok || res.status === 409) return res.json();
  const err = await problem(res);
  if (res.status === 401) unauthorized?.(err.message);
  throw err;
}

/** `GET` of a scenario run by its path (`/api/scenarios/{id}/runs/{run}`), as a result's provenance names it. */
export function getRunByPath(path: string, signal?: AbortSignal): Promise<unknown> {
  return getJson<unknown>(path, signal);
}
