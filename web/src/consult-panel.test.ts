// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { reply } from './test-reply';
import { getCsrfToken, setCsrfToken } from './api';
import { listComments, getSurveyResponse, voteComment, getNotifications } from './consult-api';
import { allowedText, ConsultPanel, type ConsultHooks } from './consult-panel';
import { initLang, setLang } from './i18n';
import { NotificationBell } from './notifications';
import { SessionState, type Session } from './session';

const now = Date.now();
const iso = (days: number) => new Date(now + days * 86400_000).toISOString();

const consultation = {
  id: 'riverside',
  title: { en: 'A calmer Riverside', fi: 'Rauhallisempi Jokiranta' },
  summary: { en: 'Fewer cars by the river' },
  description: { en: 'First paragraph.\n\nSecond paragraph.' },
  scenarios: ['urn:ngsi-ld:Scenario:close-bridge'],
  phases: [
    { phase: 'information', start: iso(-10), end: iso(-1) },
    { phase: 'feedback', start: iso(-1), end: iso(29) },
  ],
  supportsPerPerson: 3,
  published: true,
  owner: 'pl',
  currentPhase: 'feedback',
  allowed: { comment: true, vote: true, propose: true, support: false, survey: true },
  counts: { participants: 3, comments: 4, proposals: 1, supports: 0 },
  following: false,
  surveys: [{ id: 's1', title: { en: 'Your street' }, questions: [{ id: 'q1', text: { en: 'How often do you cycle?' }, kind: 'scale', required: true }] }],
  scenarioSummaries: [
    { id: 'urn:ngsi-ld:Scenario:close-bridge', name: 'Bridge closed', run: 'r1', indicators: [{ key: 'vehicleHours', value: -3.2, unit: '%', text: { en: 'Time spent driving falls by 3.2 %' } }] },
  ],
};

const comments = [
  { id: 'c1', parent: null, depth: 1, author: 'bob', authorName: 'Bob', stance: 'for', body: 'Yes please', state: 'visible', votes: { up: 2, down: 0 }, myVote: 1, createdAt: iso(-0.5) },
  { id: 'c2', parent: 'c1', depth: 2, author: 'ann', authorName: 'Ann', stance: 'against', body: 'No', state: 'visible', votes: { up: 0, down: 0 }, myVote: 0 },
  { id: 'c3', parent: 'c2', depth: 3, author: 'bob', authorName: 'Bob', stance: 'neutral', body: 'Hm', state: 'visible', votes: { up: 0, down: 0 }, myVote: 0 },
  { id: 'c4', parent: null, depth: 1, author: 'eve', authorName: 'Eve', stance: 'against', body: '', state: 'hidden', hidden: { reason: 'insults' }, votes: { up: 0, down: 0 } },
  { id: 'c5', parent: null, depth: 1, author: null, authorName: null, stance: 'neutral', body: '', state: 'deleted' },
];

const proposals = [
  { id: 'p1', author: 'bob', authorName: 'Bob', title: 'A bench', body: 'By the river', location: [24.9, 60.2], status: 'submitted', supports: 2, supported: false, milestones: [], answer: null },
];

let fetchMock: ReturnType<typeof vi.fn>;
let calls: { method: string; url: string; body?: unknown; headers: Headers }[];

function route(url: string, method: string): ReturnType<typeof reply> {
  const u = new URL(url, 'http://twin.test');
  const p = u.pathname;
  if (method === 'GET' && p === '/api/consultations') return reply(200, [consultation]);
  if (method === 'GET' && p === '/api/consultations/riverside') return reply(200, consultation);
  if (method === 'GET' && p === '/api/consultations/riverside/comments') return reply(200, comments, { 'X-Total-Count': '3' });
  if (method === 'GET' && p === '/api/consultations/riverside/proposals') return reply(200, proposals);
  if (method === 'GET' && p.endsWith('/surveys/s1/response')) return reply(404, { detail: 'none' });
  if (method === 'GET' && p === '/api/moderation/queue') return reply(200, [{ target: 'comment:c2', flags: 2, reasons: { spam: 2 }, item: comments[1] }]);
  if (method === 'GET' && p === '/api/notifications') return reply(200, { unread: 2, items: [{ id: 'n1', at: iso(0), kind: 'reply', consultation: 'riverside', text: { en: 'Bob replied' }, read: false }, { id: 'n2', at: iso(0), kind: 'answer', read: false }] });
  if (method === 'GET' && p === '/api/consultations/riverside/results')
    return reply(200, { participants: 3, comments: 4, proposals: 1, proposalsBySupport: [{ id: 'p1', title: 'A bench', status: 'submitted', supports: 2 }], supports: 2, stance: { _general: { for: 1, neutral: 1, against: 2 } }, surveys: { s1: { responses: 3, questions: { q1: { kind: 'scale', counts: [0, 1, 0, 0, 2], responses: 3 } } } } });
  if (method === 'POST' && p.endsWith('/comments')) return reply(201, { id: 'c9' });
  return reply(204);
}

const tick = () => new Promise((r) => setTimeout(r, 0));
async function settle(): Promise<void> {
  for (let i = 0; i < 6; i++) await tick();
}

function makePanel(s?: Session) {
  const state = new SessionState();
  if (s) state.set(s);
  const root = document.createElement('div');
  const title = document.createElement('h2');
  document.body.append(title, root);
  const hooks: ConsultHooks = {
    session: state,
    signIn: vi.fn(async () => false),
    onOpen: vi.fn(),
    announce: vi.fn(),
    setTitle: (text) => (title.textContent = text),
    showScenario: vi.fn(async () => true),
    hideScenario: vi.fn(),
  };
  return { panel: new ConsultPanel(root, hooks), root, title, hooks, state };
}

const citizen: Session = { id: 'ann', roles: ['citizen'], groups: [], method: 'session', csrfToken: 'tok' };

beforeEach(() => {
  document.body.replaceChildren();
  initLang('en');
  calls = [];
  fetchMock = vi.fn(async (url: string, init: RequestInit = {}) => {
    const method = (init.method ?? 'GET').toUpperCase();
    calls.push({ method, url, body: init.body ? JSON.parse(String(init.body)) : undefined, headers: new Headers(init.headers) });
    return route(url, method);
  });
  vi.stubGlobal('fetch', fetchMock);
});
afterEach(() => setCsrfToken(undefined));

describe('the consultation list and page', () => {
  it('lists published consultations with phase, dates and counts, as links', async () => {
    const { panel, root, title } = makePanel();
    await panel.showList();
    expect(title.textContent).toBe('Consultations');
    const link = root.querySelector<HTMLAnchorElement>('a[data-consultation="riverside"]')!;
    expect(link.textContent).toBe('A calmer Riverside');
    expect(link.getAttribute('href')).toBe('?consultation=riverside');
    expect(root.querySelector('.consult-item')!.textContent).toMatch(/Feedback.*3 participants · 4 comments · 1 proposals/);
    expect(root.querySelector('#consult-new')).toBeNull(); // not a planner
  });

  it('a page: title in the reader’s language, phase now, what one can do, timeline, indicators', async () => {
    const { panel, root, title, hooks } = makePanel();
    await panel.open('riverside');
    expect(hooks.onOpen).toHaveBeenCalledWith('riverside');
    expect(title.textContent).toBe('A calmer Riverside');
    expect(root.querySelector('#consult-phase')!.textContent).toMatch(/Now: Feedback/);
    expect(root.querySelector('#consult-allowed')!.textContent).toBe('What you can do now: comment, vote on comments, make proposals, answer the surveys.');
    const current = root.querySelector('#consult-timeline [aria-current="step"]')!;
    expect(current.getAttribute('data-phase')).toBe('feedback');
    expect(root.querySelector('[data-indicator="vehicleHours"]')!.textContent).toBe('Time spent driving falls by 3.2 %');
    expect(root.querySelectorAll('#consult-panel-overview p').length).toBeGreaterThanOrEqual(2);
    expect(root.querySelector('[data-count="participants"] dd')!.textContent).toBe('3');
    setLang('fi');
    expect(title.textContent).toBe('Rauhallisempi Jokiranta');
    setLang('en');
  });

  it('shows a scenario’s delta layer on the map with its legend, and hides it', async () => {
    const { panel, root, hooks } = makePanel();
    await panel.open('riverside');
    root.querySelector<HTMLButtonElement>('.consult-scenario button[data-scenario]')!.click();
    await settle();
    expect(hooks.showScenario).toHaveBeenCalledWith('urn:ngsi-ld:Scenario:close-bridge');
    const b = root.querySelector<HTMLButtonElement>('.consult-scenario button[data-scenario]')!;
    expect(b.getAttribute('aria-pressed')).toBe('true');
    expect(root.querySelector('#consult-delta-legend')!.textContent).toMatch(/More traffic|more/i);
    b.click();
    await settle();
    expect(hooks.hideScenario).toHaveBeenCalled();
    expect(root.querySelector('#consult-delta-legend')).toBeNull();
  });

  it('tabs are a keyboard-operable tablist', async () => {
    const { panel, root } = makePanel();
    await panel.open('riverside');
    const tab = root.querySelector<HTMLButtonElement>('#consult-tab-overview')!;
    tab.dispatchEvent(new KeyboardEvent('keydown', { key: 'ArrowRight', bubbles: true }));
    expect(panel.tab).toBe('comments');
    expect(root.querySelector('#consult-tab-comments')!.getAttribute('aria-selected')).toBe('true');
    expect(root.querySelector<HTMLElement>('#consult-panel-overview')!.hidden).toBe(true);
    expect(root.querySelector<HTMLElement>('#consult-panel-comments')!.hidden).toBe(false);
  });
});

describe('comments', () => {
  it('threads indented, stance in words, hidden and deleted without text; anonymous sees the sign-in note', async () => {
    const { panel, root, hooks } = makePanel();
    await panel.open('riverside', 'comments');
    const items = [...root.querySelectorAll<HTMLElement>('#consult-comments > li')];
    expect(items.map((li) => `${li.dataset.comment}:${li.dataset.depth}`)).toEqual(['c1:1', 'c2:2', 'c3:3', 'c4:1', 'c5:1']);
    expect(items[1]!.getAttribute('style')).toContain('--depth: 1');
    expect(items[0]!.querySelector('.stance')!.textContent).toMatch(/For/);
    expect(items[3]!.textContent).toMatch(/Hidden by moderation: insults/);
    expect(items[4]!.textContent).toMatch(/Deleted by its author/);
    expect(items[0]!.querySelector('[data-vote="up"]')!.getAttribute('aria-pressed')).toBe('true');
    expect(items[0]!.querySelector('[data-vote="up"]')!.textContent).toBe('▲ Vote up, votes so far: 2');
    expect(root.querySelector('[data-action="reply"]')).toBeNull();
    const note = root.querySelector<HTMLButtonElement>('.consult-signin')!;
    expect(note.textContent).toBe('Sign in to take part');
    note.click();
    expect(hooks.signIn).toHaveBeenCalledWith('consult.signIn');
  });

  it('signed in: Reply up to depth 3, edit and delete own, report others’; the form checks the stance, then posts', async () => {
    const { panel, root } = makePanel(citizen);
    await panel.open('riverside', 'comments');
    const li = (id: string) => root.querySelector<HTMLElement>(`[data-comment="${id}"]`)!;
    expect(li('c1').querySelector('[data-action="reply"]')).not.toBeNull();
    expect(li('c3').querySelector('[data-action="reply"]')).toBeNull();
    expect(li('c2').querySelector('[data-action="edit"]')).not.toBeNull();
    expect(li('c2').querySelector('[data-action="flag"]')).toBeNull();
    expect(li('c1').querySelector('[data-action="flag"]')).not.toBeNull();
    expect(li('c2').querySelector<HTMLButtonElement>('[data-vote="up"]')!.disabled).toBe(true); // own comment
    const form = root.querySelector<HTMLFormElement>('#consult-comment-form')!;
    root.querySelector<HTMLTextAreaElement>('#consult-comment-body')!.value = 'Calmer is better';
    form.dispatchEvent(new Event('submit', { cancelable: true }));
    await settle();
    expect(root.querySelector('#consult-comment-message')!.textContent).toBe('Choose your stance: for, neutral or against.');
    expect(calls.some((c) => c.method === 'POST')).toBe(false);
    root.querySelector<HTMLInputElement>('#consult-comment-stance-for')!.checked = true;
    form.dispatchEvent(new Event('submit', { cancelable: true }));
    await settle();
    const post = calls.find((c) => c.method === 'POST')!;
    expect(post.url).toBe('/api/consultations/riverside/comments');
    expect(post.body).toEqual({ body: 'Calmer is better', stance: 'for', lang: 'en' });
    expect(post.headers.get('X-CSRF-Token')).toBe('tok');
  });
});

describe('proposals', () => {
  it('support is disabled with the reason when the phase does not allow it; planners see Answer', async () => {
    const { panel, root } = makePanel(citizen);
    await panel.open('riverside', 'proposals');
    const p = root.querySelector<HTMLElement>('[data-proposal="p1"]')!;
    expect(p.querySelector('.status')!.textContent).toBe('Submitted');
    const b = p.querySelector<HTMLButtonElement>('[data-action="support"]')!;
    expect(b.disabled).toBe(true);
    expect(document.getElementById(b.getAttribute('aria-describedby')!)!.textContent).toBe('Supports are not given in this phase.');
    expect(p.querySelector('[data-action="answer"]')).toBeNull();
    const planner = makePanel({ id: 'pl', roles: ['planner'], groups: [], method: 'session' });
    await planner.panel.open('riverside', 'proposals');
    expect(planner.root.querySelector('[data-proposal="p1"] [data-action="answer"]')).not.toBeNull();
    expect(planner.root.querySelector('[data-proposal="p1"] [data-action="milestone"]')).not.toBeNull();
  });

  it('a new proposal needs a place or a street change', async () => {
    const { panel, root } = makePanel(citizen);
    await panel.open('riverside', 'proposals');
    root.querySelector<HTMLButtonElement>('#consult-proposal-new')!.click();
    root.querySelector<HTMLInputElement>('#consult-proposal-title')!.value = 'Trees';
    root.querySelector<HTMLTextAreaElement>('#consult-proposal-body')!.value = 'Plant trees';
    root.querySelector<HTMLFormElement>('#consult-proposal-form')!.dispatchEvent(new Event('submit', { cancelable: true }));
    await settle();
    expect(root.querySelector('#consult-proposal-message')!.textContent).toBe('Pin a place on the map, or propose a street change.');
    root.querySelector<HTMLButtonElement>('#consult-proposal-pin')!.click();
    expect(panel.placing).toBe('proposal');
    panel.place([24.95, 60.17]);
    root.querySelector<HTMLFormElement>('#consult-proposal-form')!.dispatchEvent(new Event('submit', { cancelable: true }));
    await settle();
    const post = calls.find((c) => c.method === 'POST')!;
    expect(post.body).toEqual({ title: 'Trees', body: 'Plant trees', location: [24.95, 60.17] });
  });
});

describe('surveys, results, moderation, notifications', () => {
  it('a scale question as radio buttons 1–5; results with stance bars and text values', async () => {
    const { panel, root } = makePanel(citizen);
    await panel.open('riverside', 'surveys');
    panel.setTab('surveys', false);
    expect(root.querySelectorAll('#consult-survey-s1 input[type=radio]').length).toBe(5);
    panel.setTab('results', false);
    await settle();
    const row = root.querySelector('.stance-chart [data-stance="against"]')!;
    expect(row.textContent).toMatch(/Against.*50 %.*2/);
    expect(root.querySelector('#consult-results-csv')!.getAttribute('href')).toBe('/api/consultations/riverside/results.csv');
    expect(root.querySelector('.survey-results')!.textContent).toMatch(/3 responses/);
    expect(root.querySelector('.survey-results tbody tr:last-child')!.textContent).toBe('52');
    expect(root.querySelector('#consult-results-proposals')!.textContent).toMatch(/A bench.*2 supports/);
    expect(root.querySelector('#consult-results-counts [data-k="proposals"] dd, #consult-results-counts div:nth-child(3) dd')!.textContent).toBe('1');
  });

  it('the moderation queue for moderators only; Hide asks for a public reason', async () => {
    const anon = makePanel(citizen);
    await anon.panel.showQueue();
    expect(anon.root.textContent).toMatch(/Only moderators/);
    const { panel, root } = makePanel({ id: 'mo', roles: ['moderator'], groups: [], method: 'session' });
    await panel.showQueue();
    const item = root.querySelector('[data-target="comment:c2"]')!;
    expect(item.textContent).toMatch(/2 reports/);
    expect(item.textContent).toMatch(/Spam or advertising × 2/);
    (item.querySelector('[data-action="hide"]') as HTMLButtonElement).click();
    await settle();
    const dialog = document.querySelector('#consult-moderate')!;
    expect(dialog.getAttribute('aria-modal')).toBe('true');
    dialog.querySelector('form')!.dispatchEvent(new Event('submit', { cancelable: true }));
    await settle();
    expect(dialog.querySelector('[role=alert]')!.textContent).toBe('Give the reason.');
    (dialog.querySelector('#consult-moderate-reason') as HTMLTextAreaElement).value = 'insults';
    dialog.querySelector('form')!.dispatchEvent(new Event('submit', { cancelable: true }));
    await settle();
    expect(calls.find((c) => c.method === 'POST')!.body).toEqual({ target: 'comment:c2', action: 'hide', reason: 'insults' });
    expect(document.querySelector('#consult-moderate')).toBeNull();
  });

  it('the bell shows the unread count and marks read', async () => {
    const state = new SessionState();
    const root = document.createElement('div');
    document.body.append(root);
    new NotificationBell(root, state, { openConsultation: vi.fn() });
    expect(root.hidden).toBe(true);
    state.set(citizen);
    await settle();
    expect(root.hidden).toBe(false);
    const b = root.querySelector('#notif-toggle')!;
    expect(b.getAttribute('aria-label')).toBe('Notifications, 2 unread');
    root.querySelector<HTMLButtonElement>('#notif-read-all')!.click();
    await settle();
    expect(calls.find((c) => c.method === 'POST')!.body).toEqual({ all: true });
    expect(b.getAttribute('aria-label')).toBe('Notifications');
  });
});

describe('the client', () => {
  it('reads X-Total-Count, takes 404 as no survey answer, votes with PUT and DELETE', async () => {
    const r = await listComments('riverside', { sort: 'top', limit: 10 });
    expect(r.total).toBe(3);
    expect(calls[0]!.url).toBe('/api/consultations/riverside/comments?sort=top&limit=10');
    expect(await getSurveyResponse('riverside', 's1')).toBeUndefined();
    setCsrfToken('t');
    expect(getCsrfToken()).toBe('t');
    await voteComment('riverside', 'c1', -1);
    await voteComment('riverside', 'c1', 0);
    expect(calls.slice(-2).map((c) => `${c.method} ${c.url} ${JSON.stringify(c.body ?? null)}`)).toEqual([
      'PUT /api/consultations/riverside/comments/c1/vote {"value":-1}',
      'DELETE /api/consultations/riverside/comments/c1/vote null',
    ]);
    expect((await getNotifications()).unread).toBe(2);
  });

  it('allowed actions in words', () => {
    expect(allowedText({ allowed: {} })).toBe('Nothing can be added in this phase: you can read everything.');
    expect(allowedText({ allowed: { support: true } })).toBe('What you can do now: support proposals.');
  });
});
