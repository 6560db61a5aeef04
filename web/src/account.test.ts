// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { reply } from './test-reply';
import { AccountControl, SignInDialog, signInError, signUpError } from './account';
import { ApiError, getCsrfToken, setCsrfToken } from './api';
import { renderRunProvenance } from './feature-panel';
import { initLang } from './i18n';
import { SessionState } from './session';
import { parseRunProvenance } from './trust';

// feature-panel.ts pulls in map.ts, which warms MapLibre's worker with a fetch when loaded: answered here, not sent
vi.hoisted(() => {
  globalThis.fetch = (async () => new Response('')) as typeof fetch;
});

let fetchMock: ReturnType<typeof vi.fn>;
beforeEach(() => {
  document.body.replaceChildren();
  initLang('en');
  fetchMock = vi.fn();
  vi.stubGlobal('fetch', fetchMock);
});
afterEach(() => setCsrfToken(undefined));

const tick = () => new Promise((r) => setTimeout(r, 0));

describe('the sign-in dialog', () => {
  it('is a labelled modal dialog; focus goes into it and back; Escape closes it without signing in', async () => {
    const opener = document.createElement('button');
    document.body.append(opener);
    opener.focus();
    const d = new SignInDialog(new SessionState(), () => null);
    expect(d.dialog.getAttribute('aria-modal')).toBe('true');
    expect(d.dialog.getAttribute('aria-labelledby')).toBe('signin-title');
    const done = d.open('scenarios.signInToEdit');
    expect(d.isOpen).toBe(true);
    expect(document.activeElement?.id).toBe('signin-id');
    expect(document.querySelector('#signin-reason')?.textContent).toBe('Sign in to create and run scenarios');
    expect(document.querySelector('label[for="signin-password"]')?.textContent).toBe('Password');
    d.dialog.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape', bubbles: true }));
    expect(await done).toBe(false);
    expect(d.isOpen).toBe(false);
    expect(document.activeElement).toBe(opener);
  });

  it('says a wrong password plainly, then signs in and keeps the CSRF token', async () => {
    const session = new SessionState();
    const d = new SignInDialog(session, () => null);
    const done = d.open();
    (document.querySelector('#signin-id') as HTMLInputElement).value = 'ann';
    (document.querySelector('#signin-password') as HTMLInputElement).value = 'nope';
    fetchMock.mockResolvedValueOnce(reply(401, { detail: 'the account id or the password is wrong' }));
    (document.querySelector('#signin-submit') as HTMLButtonElement).click();
    await vi.waitFor(() => expect(document.querySelector('#signin-message')?.textContent).toBe('The account name or the password is wrong.'));
    expect(d.isOpen).toBe(true);
    (document.querySelector('#signin-password') as HTMLInputElement).value = 'right one';
    fetchMock.mockResolvedValueOnce(reply(200, { account: { id: 'ann', roles: ['planner'] }, principal: { subject: 'ann', roles: ['planner'] }, csrfToken: 'c' }));
    (document.querySelector('#signin-submit') as HTMLButtonElement).click();
    expect(await done).toBe(true);
    expect(session.current?.id).toBe('ann');
    expect(getCsrfToken()).toBe('c');
    expect(JSON.parse(fetchMock.mock.calls[1]![1].body)).toEqual({ id: 'ann', password: 'right one' });
  });

  it('asks for both fields before asking the server; a closed sign-up is said so and its button goes away', async () => {
    const d = new SignInDialog(new SessionState(), () => null);
    void d.open();
    (document.querySelector('#signin-register') as HTMLButtonElement).click();
    await tick();
    expect(document.querySelector('#signin-message')?.textContent).toBe('Type your account name and your password.');
    expect(fetchMock).not.toHaveBeenCalled();
    (document.querySelector('#signin-id') as HTMLInputElement).value = 'bo';
    (document.querySelector('#signin-password') as HTMLInputElement).value = 'long enough password';
    fetchMock.mockResolvedValueOnce(reply(403, { detail: 'this twin does not take sign-ups; ask an administrator for an account' }));
    (document.querySelector('#signin-register') as HTMLButtonElement).click();
    await vi.waitFor(() => expect(document.querySelector('#signin-message')?.textContent).toMatch(/does not take sign-ups/));
    expect((document.querySelector('#signin-register') as HTMLButtonElement).hidden).toBe(true);
  });

  it('words the errors', () => {
    expect(signInError(new ApiError(401, 'x'))).toBe('The account name or the password is wrong.');
    expect(signInError(new ApiError(500, 'boom'))).toBe('Could not sign in: boom');
    expect(signUpError(new ApiError(404, 'Not Found'))).toMatch(/does not take sign-ups/);
    expect(signUpError(new ApiError(400, 'the password is too short'))).toBe('Could not create the account: the password is too short');
  });
});

describe('the account control', () => {
  it('shows Sign in, then the account and role with a menu that fits the role', () => {
    const root = document.createElement('div');
    document.body.append(root);
    const session = new SessionState();
    const said: string[] = [];
    new AccountControl(root, session, new SignInDialog(session, () => null), { openMyData: () => undefined, openAudit: () => undefined, announce: (s) => said.push(s) });
    const q = (s: string) => root.querySelector(s) as HTMLElement;
    expect(q('#sign-in').hidden).toBe(false);
    expect(q('#account-toggle').hidden).toBe(true);
    session.set({ id: 'ann', roles: ['data_owner'], groups: [], method: 'session' });
    expect(q('#sign-in').hidden).toBe(true);
    expect(q('#account-toggle').textContent).toBe('ann · Data owner');
    expect(q('#mydata-open').hidden).toBe(false);
    expect(q('#audit-open').hidden).toBe(true);
    q('#account-toggle').click();
    expect(q('#account-menu').hidden).toBe(false);
    expect(q('#account-toggle').getAttribute('aria-expanded')).toBe('true');
    session.set({ id: 'root', roles: ['admin'], groups: [], method: 'session' });
    expect(q('#audit-open').hidden).toBe(false);
    session.set(undefined);
    expect(q('#sign-in').hidden).toBe(false);
    expect(q('#account-menu').hidden).toBe(true);
    expect(said).toEqual(['Signed in as ann (Data owner)', 'Signed in as root (Administrator)', 'Signed out']);
  });
});

describe('a run’s provenance in the feature panel', () => {
  it('shows model, version, method, who and when, parameters and one row per input', () => {
    const p = parseRunProvenance({
      provenance: {
        model: { name: 'urbantwin traffic', version: '0.4.1', method: 'user equilibrium' },
        parameters: { iterations: 40, bpr: { b: 0.15, power: 4 } },
        inputs: [{ dataset: 'urn:d:osm', title: 'OpenStreetMap', licence: 'ODbL-1.0', owner: 'OpenStreetMap contributors', entities: 1500 }],
        requestedBy: 'web-planner',
        computedAt: '2026-11-26T10:00:00Z',
      },
    })!;
    const box = document.createElement('div');
    box.append(...renderRunProvenance(p, { scenario: 'urn:s', run: 'r1', path: '/api/scenarios/urn%3As/runs/r1' }));
    const text = box.textContent!;
    for (const s of ['urbantwin traffic version 0.4.1', 'user equilibrium', 'web-planner', 'Iterations', '40']) expect(text).toContain(s);
    // a group of parameters is a list inside the list
    const inner = [...box.querySelectorAll('dl dl')].find((d) => /Power/.test(d.textContent ?? ''));
    expect(inner?.textContent).toBe('B0.15Power4');
    const rows = box.querySelectorAll('table.simulation-inputs tbody tr');
    expect(rows).toHaveLength(1);
    expect(rows[0]!.textContent).toContain('OpenStreetMap contributors');
    expect(rows[0]!.querySelector('a')?.getAttribute('href')).toBe('https://opendatacommons.org/licenses/odbl/1-0/');
    expect(box.querySelector('a[href="/api/scenarios/urn%3As/runs/r1"]')).not.toBeNull();
  });
});
