import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  ApiError,
  attributes,
  attrValue,
  cancelRun,
  createScenario,
  entityType,
  getDataset,
  getCsrfToken,
  getEntity,
  getTemporal,
  login,
  logout,
  register,
  requestHeaders,
  setCsrfRefresher,
  setCsrfToken,
  setUnauthorizedHandler,
  verifyAudit,
  getTileJson,
  plain,
  queryEntities,
  replaceScenario,
  startRun,
  type Entity,
} from './api';

/** A Response-like reply. */
function reply(status: number, body: unknown, statusText = '') {
  const text = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
  return {
    ok: status >= 200 && status < 300,
    status,
    statusText,
    json: async () => JSON.parse(text),
    text: async () => text,
  };
}

let fetchMock: ReturnType<typeof vi.fn>;

function respond(status: number, body: unknown, statusText = '') {
  fetchMock.mockResolvedValueOnce(reply(status, body, statusText));
}

/** The URL of the n-th request, parsed. */
function requested(n = 0): URL {
  return new URL(fetchMock.mock.calls[n]![0] as string, 'http://twin.test');
}

beforeEach(() => {
  fetchMock = vi.fn();
  vi.stubGlobal('fetch', fetchMock);
});

describe('requests', () => {
  it('getEntity encodes the id and asks for system attributes and provenance', async () => {
    respond(200, { id: 'urn:ngsi-ld:Building:osm:way/1', type: 'Building' });
    const e = await getEntity('urn:ngsi-ld:Building:osm:way/1');
    expect(e.id).toBe('urn:ngsi-ld:Building:osm:way/1');
    expect(fetchMock.mock.calls[0]![0]).toBe(
      '/ngsi-ld/v1/entities/urn%3Angsi-ld%3ABuilding%3Aosm%3Away%2F1?options=sysAttrs%2Cprovenance',
    );
  });

  it('sends no headers by default and passes the abort signal', async () => {
    respond(200, {});
    const ac = new AbortController();
    await getEntity('x', ac.signal);
    expect(fetchMock.mock.calls[0]![1]).toEqual({ signal: ac.signal });
  });

  it('queryEntities leaves out empty and undefined parameters and encodes the query', async () => {
    respond(200, []);
    await queryEntities({ type: 'Building,RoadSegment', q: 'name~="(?i)kauppa"', attrs: undefined, limit: 100, options: '' });
    const u = requested();
    expect(u.pathname).toBe('/ngsi-ld/v1/entities');
    expect([...u.searchParams.keys()]).toEqual(['type', 'q', 'limit']);
    expect(u.searchParams.get('type')).toBe('Building,RoadSegment');
    expect(u.searchParams.get('q')).toBe('name~="(?i)kauppa"');
    expect(u.searchParams.get('limit')).toBe('100');
  });

  it('queryEntities without parameters has no query string', async () => {
    respond(200, []);
    await queryEntities({});
    expect(fetchMock.mock.calls[0]![0]).toBe('/ngsi-ld/v1/entities');
  });

  it('getTemporal asks for the last N of the attributes as temporal values', async () => {
    respond(200, { id: 's1', type: 'AirQualityObserved' });
    await getTemporal('urn:s:1', ['NO2', 'PM10'], 50);
    const u = requested();
    expect(u.pathname).toBe('/ngsi-ld/v1/temporal/entities/urn%3As%3A1');
    expect(Object.fromEntries(u.searchParams)).toEqual({ attrs: 'NO2,PM10', lastN: '50', options: 'temporalValues' });
  });

  it('getDataset encodes the id; getTileJson does not touch the layer list', async () => {
    respond(200, { id: 'a b' });
    respond(200, { tilejson: '3.0.0', tiles: [] });
    await getDataset('a b/c');
    await getTileJson('Building,RoadSegment');
    expect(fetchMock.mock.calls[0]![0]).toBe('/api/datasets/a%20b%2Fc');
    expect(fetchMock.mock.calls[1]![0]).toBe('/tiles/Building,RoadSegment');
  });
});

describe('errors (ProblemDetails)', () => {
  it('uses detail and type', async () => {
    respond(404, { type: 'https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound', title: 'Not found', detail: 'no entity urn:x' }, 'Not Found');
    const err = await getEntity('urn:x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toBeInstanceOf(Error);
    expect(err).toMatchObject({
      status: 404,
      message: 'no entity urn:x',
      type: 'https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound',
    });
  });

  it('falls back to description, then title, then the status text', async () => {
    respond(400, { description: 'bad q', code: 'BadRequestData' }, 'Bad Request');
    await expect(queryEntities({ q: '(' })).rejects.toMatchObject({ status: 400, message: 'bad q', type: 'BadRequestData' });
    respond(400, { title: 'Invalid request' }, 'Bad Request');
    await expect(queryEntities({})).rejects.toMatchObject({ message: 'Invalid request', type: undefined });
    respond(500, {}, 'Internal Server Error');
    await expect(queryEntities({})).rejects.toMatchObject({ status: 500, message: 'Internal Server Error' });
  });

  it('a body that is not JSON gives the status text', async () => {
    respond(502, '<html>Bad Gateway</html>', 'Bad Gateway');
    await expect(getDataset('d')).rejects.toMatchObject({ status: 502, message: 'Bad Gateway', type: undefined });
  });

  it('a network failure is passed on as it is', async () => {
    fetchMock.mockRejectedValueOnce(new TypeError('Failed to fetch'));
    await expect(getEntity('x')).rejects.toThrow(TypeError);
  });

  it('sends: detail, then title, then the status text', async () => {
    respond(422, { type: 'urn:problem:invalid-edit', title: 'Invalid', detail: 'unknown street' }, 'Unprocessable');
    await expect(createScenario({ name: 'x', edits: [] })).rejects.toMatchObject({
      status: 422,
      message: 'unknown street',
      type: 'urn:problem:invalid-edit',
    });
    respond(409, { title: 'Conflict here' }, 'Conflict');
    await expect(startRun('s')).rejects.toMatchObject({ status: 409, message: 'Conflict here' });
    respond(503, 'down', 'Service Unavailable');
    await expect(cancelRun('s', 'r')).rejects.toMatchObject({ status: 503, message: 'Service Unavailable' });
  });
});

describe('writes', () => {
  it('createScenario posts JSON and returns the created scenario', async () => {
    respond(201, { id: 'urn:s:1', name: 'Closed', edits: [] });
    const s = await createScenario({ name: 'Closed', edits: [{ kind: 'closeStreet', name: 'Mannerheimintie' }] });
    expect(s).toEqual({ id: 'urn:s:1', name: 'Closed', edits: [] });
    const [url, init] = fetchMock.mock.calls[0]!;
    expect(url).toBe('/api/scenarios');
    expect(init).toMatchObject({ method: 'POST', credentials: 'same-origin' });
    expect((init.headers as Headers).get('Content-Type')).toBe('application/json');
    expect(JSON.parse(init.body)).toEqual({ name: 'Closed', edits: [{ kind: 'closeStreet', name: 'Mannerheimintie' }] });
  });

  it('replaceScenario puts to the encoded id and accepts an empty reply', async () => {
    respond(204, undefined);
    await expect(replaceScenario({ id: 'urn:s:1', name: 'n', edits: [] })).resolves.toBeUndefined();
    expect(fetchMock.mock.calls[0]![0]).toBe('/api/scenarios/urn%3As%3A1');
    expect(fetchMock.mock.calls[0]![1].method).toBe('PUT');
  });

  it('startRun posts without a body; cancelRun deletes', async () => {
    respond(202, { id: 'r1', status: 'queued' });
    respond(204, undefined);
    expect(await startRun('urn:s:1')).toEqual({ id: 'r1', status: 'queued' });
    await cancelRun('urn:s:1', 'r/1');
    expect(fetchMock.mock.calls[0]![0]).toBe('/api/scenarios/urn%3As%3A1/runs');
    expect(fetchMock.mock.calls[0]![1]).toMatchObject({ method: 'POST' });
    expect(fetchMock.mock.calls[0]![1].body).toBeUndefined();
    expect(fetchMock.mock.calls[1]![0]).toBe('/api/scenarios/urn%3As%3A1/runs/r%2F1');
    expect(fetchMock.mock.calls[1]![1]).toMatchObject({ method: 'DELETE' });
  });
});

describe('the session: CSRF token and 401', () => {
  afterEach(() => {
    setCsrfToken(undefined);
    setUnauthorizedHandler(undefined);
  });

  it('requestHeaders adds X-CSRF-Token to writes only, and only with a token', () => {
    for (const m of ['POST', 'put', 'PATCH', 'DELETE']) expect(requestHeaders(m, 'tok').get('X-CSRF-Token')).toBe('tok');
    for (const m of ['GET', 'head', 'OPTIONS']) expect(requestHeaders(m, 'tok').get('X-CSRF-Token')).toBeNull();
    expect(requestHeaders('POST', undefined).get('X-CSRF-Token')).toBeNull();
    // the request's own headers are kept
    const h = requestHeaders('POST', 'tok', { 'Content-Type': 'application/json' });
    expect(h.get('Content-Type')).toBe('application/json');
    expect(h.get('X-CSRF-Token')).toBe('tok');
  });

  it('every write of the client carries the session token once signed in; reads do not', async () => {
    setCsrfToken('c1');
    expect(getCsrfToken()).toBe('c1');
    respond(201, { id: 'urn:s:1', name: 'n', edits: [] });
    respond(204, undefined);
    respond(202, { id: 'r', status: 'queued' });
    respond(204, undefined);
    respond(200, { id: 'urn:d', title: 'D', owner: 'o', licence: 'l' });
    await createScenario({ name: 'n', edits: [] });
    await replaceScenario({ id: 'urn:s:1', name: 'n', edits: [] });
    await startRun('urn:s:1');
    await cancelRun('urn:s:1', 'r');
    await getDataset('urn:d');
    for (let i = 0; i < 4; i++) expect((fetchMock.mock.calls[i]![1].headers as Headers).get('X-CSRF-Token')).toBe('c1');
    expect(fetchMock.mock.calls[4]![1]).toEqual({ signal: undefined });
    setCsrfToken(null);
    expect(getCsrfToken()).toBeUndefined();
    respond(204, undefined);
    await cancelRun('urn:s:1', 'r');
    expect((fetchMock.mock.calls[5]![1].headers as Headers).get('X-CSRF-Token')).toBeNull();
  });

  it('a 401 on a write calls the unauthorized handler with the detail, then throws', async () => {
    const seen: string[] = [];
    setUnauthorizedHandler((d) => seen.push(d));
    respond(401, { type: 'https://uri.etsi.org/ngsi-ld/errors/Unauthenticated', title: 'Unauthenticated', detail: 'sign in first' });
    await expect(startRun('s')).rejects.toMatchObject({ status: 401, message: 'sign in first' });
    expect(seen).toEqual(['sign in first']);
    // a wrong password at sign-in is the dialog's own message, not a new dialog
    respond(401, { detail: 'the account id or the password is wrong' });
    await expect(login('ann', 'x')).rejects.toMatchObject({ status: 401 });
    expect(seen).toHaveLength(1);
    // a 403 is not a reason to sign in
    respond(403, { detail: 'no' });
    await expect(startRun('s')).rejects.toMatchObject({ status: 403 });
    expect(seen).toHaveLength(1);
  });

  it('sign-in posts the credentials; sign-up and sign-out go to their paths', async () => {
    respond(200, { account: { id: 'ann' }, principal: { subject: 'ann', roles: ['planner'] }, csrfToken: 'x' });
    respond(201, { account: { id: 'bo' }, principal: { subject: 'bo', roles: ['citizen'] }, csrfToken: 'y' });
    respond(204, undefined);
    expect((await login('ann', 'pw')).csrfToken).toBe('x');
    expect((await register('bo', 'pw2')).principal?.roles).toEqual(['citizen']);
    await logout();
    expect(fetchMock.mock.calls.map((c) => [c[0], c[1].method])).toEqual([
      ['/api/auth/login', 'POST'],
      ['/api/auth/register', 'POST'],
      ['/api/auth/logout', 'POST'],
    ]);
    expect(JSON.parse(fetchMock.mock.calls[0]![1].body)).toEqual({ id: 'ann', password: 'pw' });
  });

  it('a write refused for a stale CSRF token is tried once more after the refresher renewed the token', async () => {
    setCsrfToken('old');
    const refresher = vi.fn(async () => {
      setCsrfToken('new');
      return true;
    });
    setCsrfRefresher(refresher);
    respond(403, { detail: 'a write with a session cookie needs the X-CSRF-Token header (from /api/auth/me or the sign-in answer)' });
    respond(202, { id: 'r', status: 'queued' });
    expect(await startRun('s')).toEqual({ id: 'r', status: 'queued' });
    expect(refresher).toHaveBeenCalledTimes(1);
    expect((fetchMock.mock.calls[1]![1].headers as Headers).get('X-CSRF-Token')).toBe('new');
    // other refusals are not retried, nor a second CSRF refusal
    respond(403, { detail: 'writing to dataset x is not allowed' });
    await expect(startRun('s')).rejects.toMatchObject({ status: 403 });
    respond(403, { detail: 'needs the X-CSRF-Token header' });
    respond(403, { detail: 'needs the X-CSRF-Token header' });
    await expect(startRun('s')).rejects.toMatchObject({ status: 403 });
    expect(refresher).toHaveBeenCalledTimes(2);
    expect(fetchMock).toHaveBeenCalledTimes(5);
    setCsrfRefresher(undefined);
  });

  it('verifyAudit reads the body of a broken chain (409) as an answer', async () => {
    respond(409, { records: 5, ok: false, firstBadSeq: 3, reason: 'hash mismatch' });
    expect(await verifyAudit()).toEqual({ records: 5, ok: false, firstBadSeq: 3, reason: 'hash mismatch' });
    respond(403, { detail: 'administrators only' });
    await expect(verifyAudit()).rejects.toMatchObject({ status: 403, message: 'administrators only' });
  });
});

describe('normalized entities', () => {
  const e: Entity = {
    id: 'urn:ngsi-ld:AirQualityObserved:1',
    type: ['AirQualityObserved', 'Device'],
    '@context': 'https://example.org/ctx.jsonld',
    createdAt: '2026-01-01T00:00:00Z',
    modifiedAt: '2026-01-02T00:00:00Z',
    scope: '/helsinki',
    NO2: { type: 'Property', value: 21.5, unitCode: 'GQ', observedAt: '2026-01-02T00:00:00Z' },
    name: { type: 'LanguageProperty', languageMap: { en: 'Station', fi: 'Asema' } },
    refDevice: { type: 'Relationship', object: 'urn:d:1' },
    category: { type: 'VocabProperty', vocab: 'urban' },
    temperature: [
      { type: 'Property', value: 3, datasetId: 'urn:a' },
      { type: 'Property', value: 4, datasetId: 'urn:b' },
    ],
    broken: null,
    text: 'not an attribute',
  };

  it('attributes leaves out id, type, @context, scope and system attributes, and lists multi-attributes', () => {
    const attrs = attributes(e);
    expect(attrs.map(([k]) => k)).toEqual(['NO2', 'name', 'refDevice', 'category', 'temperature']);
    expect(attrs.find(([k]) => k === 'temperature')![1]).toHaveLength(2);
    expect(attrs.find(([k]) => k === 'NO2')![1]).toHaveLength(1);
  });

  it('attrValue reads each kind of attribute', () => {
    expect(attrValue({ type: 'Property', value: 1 })).toBe(1);
    expect(attrValue({ type: 'Relationship', object: 'urn:x', value: 'ignored' })).toBe('urn:x');
    expect(attrValue({ type: 'LanguageProperty', languageMap: { fi: 'Asema' } })).toEqual({ fi: 'Asema' });
    expect(attrValue({ type: 'VocabProperty', vocab: 'urban' })).toBe('urban');
    expect(attrValue({ type: 'GeoProperty', value: { type: 'Point', coordinates: [1, 2] } })).toEqual({ type: 'Point', coordinates: [1, 2] });
  });

  it('entityType takes the first of several types', () => {
    expect(entityType(e)).toBe('AirQualityObserved');
    expect(entityType({ type: 'Building' })).toBe('Building');
    expect(entityType({ type: [] })).toBe('');
  });

  it('plain reads the (first) value of an attribute', () => {
    expect(plain(e, 'NO2')).toBe(21.5);
    expect(plain(e, 'temperature')).toBe(3);
    expect(plain(e, 'refDevice')).toBe('urn:d:1');
    expect(plain(e, 'missing')).toBeUndefined();
    expect(plain(e, 'broken')).toBeUndefined();
    expect(plain(e, 'text')).toBeUndefined();
  });
});
