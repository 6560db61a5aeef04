import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { reply } from './test-reply';
import { getCsrfToken, setCsrfToken } from './api';
import { canEditScenarios, isAdmin, mainRole, managesDataset, normRole, parseAuthAnswer, seesOwnData, SessionState, signUpRefusal, type Session } from './session';

const session = (over: Partial<Session> = {}): Session => ({ id: 'ann', roles: ['planner'], groups: [], method: 'session', ...over });

describe('parseAuthAnswer', () => {
  it('reads the account, roles (most powerful first), groups, organisation and CSRF token of a sign-in answer', () => {
    const s = parseAuthAnswer({
      account: { id: 'ann', displayName: 'Ann', roles: ['planner', 'data_owner'], groups: ['energy'], organisation: 'helen' },
      principal: { subject: 'ann', roles: ['planner', 'data_owner'], groups: ['energy'], organisation: 'helen', method: { kind: 'session' }, scopes: null },
      csrfToken: 'tok',
    });
    expect(s).toEqual({ id: 'ann', displayName: 'Ann', roles: ['data_owner', 'planner'], groups: ['energy'], organisation: 'helen', method: 'session', csrfToken: 'tok' });
  });

  it('is undefined for the anonymous answer of /api/auth/me and for anything unreadable', () => {
    expect(parseAuthAnswer({ principal: { subject: null, roles: [], groups: [], method: { kind: 'anonymous' } }, account: null, csrfToken: null })).toBeUndefined();
    for (const b of [null, undefined, 'x', 3, [], {}]) expect(parseAuthAnswer(b)).toBeUndefined();
  });

  it('takes the account when the principal is missing, and tolerates odd role spellings and bad fields', () => {
    const s = parseAuthAnswer({ account: { id: 'bo', roles: ['DataOwner', 7, 'admin'], groups: 'g' } })!;
    expect(s.id).toBe('bo');
    expect(s.roles).toEqual(['admin', 'data_owner']);
    expect(s.groups).toEqual([]);
    expect(s.csrfToken).toBeUndefined();
    expect(normRole('data-owner')).toBe('data_owner');
  });
});

describe('what an account may do in the app', () => {
  it('edits scenarios when signed in with any role but device alone', () => {
    expect(canEditScenarios(undefined)).toBe(false);
    expect(canEditScenarios(session({ roles: ['device'] }))).toBe(false);
    expect(canEditScenarios(session({ roles: ['citizen'] }))).toBe(true);
    expect(canEditScenarios(session({ roles: ['device', 'planner'] }))).toBe(true);
  });

  it('sees My data as a data owner or an administrator; the audit log as an administrator', () => {
    expect(seesOwnData(session())).toBe(false);
    expect(seesOwnData(session({ roles: ['data_owner'] }))).toBe(true);
    expect(seesOwnData(session({ roles: ['admin'] }))).toBe(true);
    expect(isAdmin(session({ roles: ['data_owner'] }))).toBe(false);
    expect(isAdmin(session({ roles: ['admin'] }))).toBe(true);
    expect(mainRole(session({ roles: ['admin', 'planner'] }))).toBe('admin');
    expect(mainRole(undefined)).toBeUndefined();
  });

  it('manages a dataset owned by the account, its organisation or one of its groups; an administrator every one', () => {
    const owner = session({ roles: ['data_owner'], organisation: 'helen', groups: ['energy'] });
    expect(managesDataset(owner, { owner: 'ann' })).toBe(true);
    expect(managesDataset(owner, { owner: 'helen' })).toBe(true);
    expect(managesDataset(owner, { owner: 'energy' })).toBe(true);
    expect(managesDataset(owner, { owner: 'OpenStreetMap contributors' })).toBe(false);
    expect(managesDataset(session({ roles: ['data_owner'] }), { owner: '' })).toBe(false);
    expect(managesDataset(session({ roles: ['admin'] }), { owner: 'anyone' })).toBe(true);
    expect(managesDataset(undefined, { owner: 'ann' })).toBe(false);
  });

  it('reads 403 and 404 on sign-up as sign-ups being closed', () => {
    expect(signUpRefusal(403)).toBe('closed');
    expect(signUpRefusal(404)).toBe('closed');
    expect(signUpRefusal(400)).toBe('other');
    expect(signUpRefusal(409)).toBe('other');
  });
});

describe('SessionState', () => {
  let fetchMock: ReturnType<typeof vi.fn>;
  beforeEach(() => {
    fetchMock = vi.fn();
    vi.stubGlobal('fetch', fetchMock);
  });
  afterEach(() => setCsrfToken(undefined));

  it('restores the session of the cookie, hands the CSRF token to the client and tells its listeners', async () => {
    fetchMock.mockResolvedValueOnce(reply(200, { principal: { subject: 'ann', roles: ['planner'] }, account: { id: 'ann' }, csrfToken: 'c' }));
    const st = new SessionState();
    const seen: (string | undefined)[] = [];
    st.onChange((s) => seen.push(s?.id));
    await st.restore();
    expect(st.current?.id).toBe('ann');
    expect(getCsrfToken()).toBe('c');
    expect(seen).toEqual(['ann']);
    expect(fetchMock.mock.calls[0]![0]).toBe('/api/auth/me');
  });

  it('a dead session (401 on /me) leaves the app anonymous', async () => {
    fetchMock.mockResolvedValueOnce(reply(401, { detail: 'the session expired or was ended; sign in again' }));
    const st = new SessionState();
    await st.restore();
    expect(st.current).toBeUndefined();
    expect(getCsrfToken()).toBeUndefined();
  });

  it('signs in, asks /me for the CSRF token when the answer lacks it, and signs out even when the server refuses', async () => {
    fetchMock.mockResolvedValueOnce(reply(200, { principal: { subject: 'ann', roles: ['data_owner'] } }));
    fetchMock.mockResolvedValueOnce(reply(200, { principal: { subject: 'ann', roles: ['data_owner'] }, csrfToken: 'from-me' }));
    const st = new SessionState();
    const s = await st.signIn('ann', 'pw');
    expect(s.csrfToken).toBe('from-me');
    expect(getCsrfToken()).toBe('from-me');
    fetchMock.mockResolvedValueOnce(reply(401, { detail: 'the session expired' }));
    await expect(st.signOut()).rejects.toMatchObject({ status: 401 });
    expect(st.current).toBeUndefined();
    expect(getCsrfToken()).toBeUndefined();
    // the logout carried the token
    expect((fetchMock.mock.calls[2]![1].headers as Headers).get('X-CSRF-Token')).toBe('from-me');
  });
});
