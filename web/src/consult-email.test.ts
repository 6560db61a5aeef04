// @vitest-environment happy-dom
// E-mail verification in "My participation" and the notice of a consultation that needs a verified address.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { reply } from './test-reply';
import { setCsrfToken } from './api';
import { emailStatus, retryAfterSeconds, sendEmailCode, verifyEmailCode, EmailError } from './consult-api';
import { ConsultPanel, type ConsultHooks } from './consult-panel';
import { initLang, setLang } from './i18n';
import { SessionState, type Session } from './session';

const now = Date.now();
const iso = (days: number) => new Date(now + days * 86400_000).toISOString();

const consultation = {
  id: 'riverside',
  title: { en: 'A calmer Riverside' },
  scenarios: ['urn:ngsi-ld:Scenario:close-bridge'],
  phases: [{ phase: 'feedback', start: iso(-1), end: iso(29) }],
  supportsPerPerson: 3,
  minAccountAgeHours: 0,
  requireVerifiedEmail: true,
  published: true,
  currentPhase: 'feedback',
  allowed: { comment: true, vote: true, propose: true, support: true, survey: true },
  counts: { participants: 0, comments: 1, proposals: 0, supports: 0 },
  surveys: [{ id: 's1', title: { en: 'Your street' }, questions: [{ id: 'q1', text: { en: 'How often do you cycle?' }, kind: 'scale', required: true }] }],
};
const refused = { type: 'https://uri.etsi.org/ngsi-ld/errors/AccessDenied', title: 'The caller may not do this', status: 403, detail: 'this consultation counts votes of accounts with a verified e-mail address: add one under your account (POST /api/me/email)' };

type Route = (path: string, method: string, body: unknown) => ReturnType<typeof reply> | undefined;
let routes: Route[];
let calls: { method: string; path: string; body?: unknown }[];
let verified: { email?: string } | undefined;

function base(path: string, method: string): ReturnType<typeof reply> {
  if (method === 'GET' && path === '/api/me/email') return reply(200, { verified: !!verified, email: verified?.email ?? null, pending: null });
  if (method === 'GET' && path === '/api/auth/me') return reply(200, { principal: {}, account: { id: 'ann', createdAt: iso(-30) } });
  if (method === 'GET' && path === '/api/consultations/riverside') return reply(200, consultation);
  if (method === 'GET' && path === '/api/consultations/riverside/comments')
    return reply(200, [{ id: 'c1', depth: 1, author: 'bob', authorName: 'Bob', stance: 'for', body: 'Yes', state: 'visible', votes: { up: 0, down: 0 }, myVote: 0 }], { 'X-Total-Count': '1' });
  if (method === 'GET' && path === '/api/consultations/riverside/proposals') return reply(200, []);
  if (method === 'GET' && path.endsWith('/response')) return reply(404, { detail: 'none' });
  return reply(204);
}

beforeEach(() => {
  document.body.replaceChildren();
  initLang('en');
  calls = [];
  routes = [];
  verified = undefined;
  vi.stubGlobal(
    'fetch',
    vi.fn(async (url: string, init: RequestInit = {}) => {
      const method = (init.method ?? 'GET').toUpperCase();
      const path = new URL(url, 'http://twin.test').pathname;
      const body = init.body ? JSON.parse(String(init.body)) : undefined;
      calls.push({ method, path, body });
      for (const r of routes) {
        const x = r(path, method, body);
        if (x) return x;
      }
      return base(path, method);
    }),
  );
});
afterEach(() => setCsrfToken(undefined));

const tick = () => new Promise((r) => setTimeout(r, 0));
async function settle(): Promise<void> {
  for (let i = 0; i < 8; i++) await tick();
}

const citizen: Session = { id: 'ann', roles: ['citizen'], groups: [], method: 'session', csrfToken: 'tok' };

function makePanel(s: Session | null = citizen) {
  const state = new SessionState();
  if (s) state.set(s);
  const root = document.createElement('div');
  document.body.append(root);
  const hooks: ConsultHooks = { session: state, signIn: vi.fn(async () => false), onOpen: vi.fn(), announce: vi.fn(), setTitle: vi.fn() };
  return { panel: new ConsultPanel(root, hooks), root, hooks, state };
}

function submit(root: HTMLElement, form: string): void {
  root.querySelector<HTMLFormElement>(form)!.dispatchEvent(new Event('submit', { cancelable: true, bubbles: true }));
}

const text = (root: HTMLElement, sel: string) => root.querySelector(sel)?.textContent ?? '';

describe('the client', () => {
  it('reads the address from /api/me/email and the account age from /api/auth/me', () => {
    expect(emailStatus({ verified: true, email: 'a@b.fi', pending: null }, { account: { createdAt: 'x' } })).toEqual({ verified: true, email: 'a@b.fi', createdAt: 'x' });
    expect(emailStatus({ verified: false, email: null, pending: { email: 'a@b.fi' } }, { account: null })).toEqual({ verified: false });
    expect(emailStatus({})).toEqual({ verified: false });
  });

  it('reads Retry-After as seconds or as a date', () => {
    expect(retryAfterSeconds('1197')).toBe(1197);
    expect(retryAfterSeconds(new Date(1_000_000 + 90_000).toUTCString(), 1_000_000)).toBe(90);
    expect(retryAfterSeconds(null)).toBeUndefined();
    expect(retryAfterSeconds('soon')).toBeUndefined();
  });

  it('posts the address and the code with the CSRF token; an error keeps its status, detail and wait', async () => {
    setCsrfToken('tok');
    routes.push((p) => (p === '/api/me/email' ? reply(202, { email: 'a@b.fi', sent: true, expiresInMinutes: 30 }) : undefined));
    expect(await sendEmailCode('a@b.fi')).toEqual({ email: 'a@b.fi', sent: true, expiresInMinutes: 30 });
    expect(calls.at(-1)).toEqual({ method: 'POST', path: '/api/me/email', body: { email: 'a@b.fi' } });
    routes.unshift((p) => (p === '/api/me/email' ? reply(429, { status: 429, detail: 'at most 3 e-mail codes per hour' }, { 'Retry-After': '600' }) : undefined));
    const e = await sendEmailCode('a@b.fi').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(EmailError);
    expect(e).toMatchObject({ status: 429, message: 'at most 3 e-mail codes per hour', retryAfter: 600 });
    routes.push((p) => (p === '/api/me/email/verify' ? reply(200, { email: 'a@b.fi', verified: true }) : undefined));
    expect(await verifyEmailCode('123456')).toEqual({ email: 'a@b.fi', verified: true });
    expect(calls.at(-1)!.body).toEqual({ code: '123456' });
  });
});

describe('My participation: the e-mail address', () => {
  it('adds an address: Send code, a wrong code with the tries left, then the right one; the address shows verified', async () => {
    let tries = 5;
    routes.push((p, m, b) => {
      if (m === 'POST' && p === '/api/me/email') return reply(202, { email: (b as { email: string }).email, sent: true, expiresInMinutes: 30 });
      if (m === 'POST' && p === '/api/me/email/verify') {
        if ((b as { code: string }).code !== '654321') return reply(400, { status: 400, detail: `the code is not right (${--tries} tries left)` });
        verified = { email: 'ana@example.fi' };
        return reply(200, { email: 'ana@example.fi', verified: true });
      }
      return undefined;
    });
    const { panel, root, hooks } = makePanel();
    panel.showMe();
    await settle();
    expect(text(root, '#consult-email-state')).toBe('Your account has no verified e-mail address.');
    const input = root.querySelector<HTMLInputElement>('#consult-email')!;
    expect(input.type).toBe('email');
    expect(root.querySelector('label[for="consult-email"]')!.textContent).toBe('E-mail address');
    const message = root.querySelector('#consult-email-message')!;
    expect(message.getAttribute('aria-live')).toBe('polite');
    // nothing typed: said, not sent
    submit(root, '#consult-email-form');
    await settle();
    expect(message.textContent).toBe('Type your e-mail address.');
    expect(calls.some((c) => c.method === 'POST')).toBe(false);
    input.value = 'ana@example.fi';
    submit(root, '#consult-email-form');
    await settle();
    expect(calls.find((c) => c.method === 'POST')).toEqual({ method: 'POST', path: '/api/me/email', body: { email: 'ana@example.fi' } });
    expect(text(root, '#consult-email-sent')).toBe('A six-digit code is on its way to ana@example.fi. It is valid for 30 minutes.');
    const code = root.querySelector<HTMLInputElement>('#consult-email-code')!;
    expect(root.querySelector('label[for="consult-email-code"]')!.textContent).toBe('Six-digit code');
    expect(code.getAttribute('autocomplete')).toBe('one-time-code');
    expect(document.activeElement).toBe(code);
    // a malformed code is not sent (every try counts)
    code.value = '12';
    submit(root, '#consult-code-form');
    await settle();
    expect(root.querySelector('#consult-email-message')!.textContent).toBe('Type the six digits of the code in the message.');
    expect(calls.filter((c) => c.path === '/api/me/email/verify')).toHaveLength(0);
    code.value = '111111';
    submit(root, '#consult-code-form');
    await settle();
    expect(root.querySelector('#consult-email-message')!.textContent).toBe('The code is not right. Tries left: 4.');
    expect(root.querySelector('#consult-email-message')!.classList.contains('error')).toBe(true);
    code.value = '654 321';
    submit(root, '#consult-code-form');
    await settle();
    expect(calls.at(-1)!.body).toEqual({ code: '654321' });
    expect(text(root, '#consult-email-state')).toBe('Your verified address: ana@example.fi');
    expect(root.querySelector('#consult-email-message')!.textContent).toBe('Your address ana@example.fi is verified.');
    expect(root.querySelector('#consult-code-form')).toBeNull();
    expect(hooks.announce).toHaveBeenCalledWith('Your address ana@example.fi is verified.');
    // in Finnish too
    setLang('fi');
    expect(text(root, '#consult-email-state')).toBe('Vahvistettu osoitteesi: ana@example.fi');
    setLang('en');
  });

  it('a verified address shows as such, with a way to change it', async () => {
    verified = { email: 'old@example.fi' };
    const { panel, root } = makePanel();
    panel.showMe();
    await settle();
    expect(text(root, '#consult-email-state')).toBe('Your verified address: old@example.fi');
    expect(root.querySelector('#consult-email-form')).toBeNull();
    root.querySelector<HTMLButtonElement>('#consult-email-change')!.click();
    expect(root.querySelector('#consult-email-form')).not.toBeNull();
    expect(document.activeElement?.id).toBe('consult-email');
  });

  it.each([
    [422, { status: 422, type: 'https://uri.etsi.org/ngsi-ld/errors/OperationNotSupported', detail: 'this twin sends no e-mail' }, {}, 'This twin sends no e-mail, so addresses cannot be verified here. Ask the city how to take part.'],
    [429, { status: 429, detail: 'at most 3 e-mail codes per hour per person; try again in 1197 s' }, { 'Retry-After': '1197' }, 'Too many codes asked for: at most 3 an hour. Try again in 20 min.'],
    [400, { status: 400, detail: '"x@y.fi" is not an e-mail address' }, {}, 'That is not an e-mail address.'],
    [409, { status: 409, detail: 'this address is verified for another account' }, {}, 'That address is verified for another account: one address, one account.'],
  ])('sending a code: %i is said in words', async (status, body, headers, expected) => {
    routes.push((p, m) => (m === 'POST' && p === '/api/me/email' ? reply(status, body, headers) : undefined));
    const { panel, root } = makePanel();
    panel.showMe();
    await settle();
    root.querySelector<HTMLInputElement>('#consult-email')!.value = 'x@y.fi';
    submit(root, '#consult-email-form');
    await settle();
    expect(root.querySelector('#consult-email-message')!.textContent).toBe(expected);
    expect(root.querySelector('#consult-code-form')).toBeNull();
    expect(document.activeElement?.id).toBe('consult-email');
  });

  it.each([
    [404, { status: 404, detail: 'no code was sent to you: ask for one (POST /api/me/email)' }, 'No code was sent to you, or it has expired: send a code first.'],
    [409, { status: 409, detail: 'the code has expired or was tried too often: ask for a new one' }, 'The code has expired or was tried too often: send a new code.'],
    [400, { status: 400, detail: 'the code is not right (0 tries left)' }, 'The code is not right, and it cannot be tried again: send a new code.'],
  ])('verifying a code: %i is said in words', async (status, body, expected) => {
    routes.push((p, m) => {
      if (m === 'POST' && p === '/api/me/email') return reply(202, { email: 'x@y.fi', sent: true, expiresInMinutes: 30 });
      if (m === 'POST' && p === '/api/me/email/verify') return reply(status, body);
      return undefined;
    });
    const { panel, root } = makePanel();
    panel.showMe();
    await settle();
    root.querySelector<HTMLInputElement>('#consult-email')!.value = 'x@y.fi';
    submit(root, '#consult-email-form');
    await settle();
    root.querySelector<HTMLInputElement>('#consult-email-code')!.value = '123456';
    submit(root, '#consult-code-form');
    await settle();
    expect(root.querySelector('#consult-email-message')!.textContent).toBe(expected);
    // another address or a new code
    root.querySelector<HTMLButtonElement>('#consult-email-again')!.click();
    expect(root.querySelector('#consult-email-form')).not.toBeNull();
    expect(root.querySelector<HTMLInputElement>('#consult-email')!.value).toBe('x@y.fi');
  });
});

describe('a consultation that needs a verified address', () => {
  it('tells a signed-in participant without one, and leads to the form and back', async () => {
    const { panel, root } = makePanel();
    await panel.open('riverside');
    await settle();
    const notice = root.querySelector<HTMLElement>('#consult-needs')!;
    expect(notice.hidden).toBe(false);
    expect(text(root, '#consult-needs-email')).toBe('Votes, supports and survey answers here need a verified e-mail address.');
    expect(root.querySelector('#consult-needs-age')).toBeNull();
    root.querySelector<HTMLButtonElement>('#consult-needs-verify')!.click();
    await settle();
    expect(panel.view).toBe('me');
    expect(root.querySelector('#consult-email-form')).not.toBeNull();
    expect(document.activeElement?.id).toBe('consult-email-title');
    expect(text(root, '#consult-back')).toMatch(/consultation/i);
  });

  it('says the account age too; nothing for a verified account, nor for a visitor', async () => {
    consultation.minAccountAgeHours = 24;
    try {
      const { panel, root } = makePanel();
      await panel.open('riverside');
      await settle();
      expect(text(root, '#consult-needs-age')).toBe('Votes, supports and survey answers here need an account at least 24 hours old.');
      verified = { email: 'a@b.fi' };
      const other = makePanel();
      await other.panel.open('riverside');
      await settle();
      // an account 30 days old with a verified address: nothing to say
      expect(other.root.querySelector<HTMLElement>('#consult-needs')!.hidden).toBe(true);
      const before = calls.filter((c) => c.path === '/api/me/email').length;
      const anon = makePanel(null);
      await anon.panel.open('riverside');
      await settle();
      expect(anon.root.querySelector<HTMLElement>('#consult-needs')!.hidden).toBe(true);
      // a visitor's page asks nothing of /api/me
      expect(calls.filter((c) => c.path === '/api/me/email').length).toBe(before);
    } finally {
      consultation.minAccountAgeHours = 0;
    }
  });

  it('a refused vote and a refused survey answer show the server’s reason', async () => {
    verified = { email: 'a@b.fi' }; // the page thinks so; the server knows better
    routes.push((p, m) => ((m === 'PUT' && (p.endsWith('/vote') || p.endsWith('/response'))) ? reply(403, refused) : undefined));
    const { panel, root } = makePanel();
    await panel.open('riverside');
    await settle();
    expect(root.querySelector<HTMLElement>('#consult-needs')!.hidden).toBe(true);
    panel.setTab('comments', false);
    root.querySelector<HTMLButtonElement>('[data-comment="c1"] [data-vote="up"]')!.click();
    await settle();
    expect(text(root, '#consult-status')).toContain('this consultation counts votes of accounts with a verified e-mail address');
    expect(root.querySelector('#consult-status')!.classList.contains('error')).toBe(true);
    // the notice shows from then on
    expect(root.querySelector<HTMLElement>('#consult-needs')!.hidden).toBe(false);
    panel.setTab('surveys', false);
    await settle();
    const form = root.querySelector<HTMLFormElement>('#consult-survey-s1')!;
    form.querySelector<HTMLInputElement>('input[value="4"]')!.checked = true;
    form.dispatchEvent(new Event('submit', { cancelable: true, bubbles: true }));
    await settle();
    expect(text(root, '#consult-survey-s1-message')).toContain('verified e-mail address');
  });
});
