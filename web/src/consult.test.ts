import { describe, expect, it } from 'vitest';
import type { Comment, Consultation, Proposal, Survey } from './consult-api';
import {
  checkEmail,
  emailErrorMessage,
  normalizeCode,
  requirements,
  triesLeft,
  waitMinutes,
  bySupports,
  canAnswer,
  canModerate,
  canParticipate,
  canPlan,
  checkBody,
  checkComment,
  checkConsultation,
  checkProposal,
  checkSurvey,
  commentActions,
  countLinks,
  dateRange,
  defaultPhases,
  fromLocalInput,
  parseTarget,
  phaseAt,
  pickLang,
  pickText,
  stanceCounts,
  stanceShares,
  supportState,
  threadRows,
  timeline,
  toLocalInput,
} from './consult';
import type { Session } from './session';

const session = (id: string, ...roles: string[]): Session => ({ id, roles, groups: [], method: 'session' });
const cm = (id: string, parent: string | null, extra: Partial<Comment> = {}): Comment => ({ id, parent, stance: 'neutral', body: id, state: 'visible', ...extra });

describe('language maps', () => {
  it('show the reader’s language, else English, else the first', () => {
    expect(pickText({ en: 'Calm', fi: 'Rauhallinen' }, 'fi')).toBe('Rauhallinen');
    expect(pickText({ en: 'Calm', sv: 'Lugn' }, 'fi')).toBe('Calm');
    expect(pickText({ sv: 'Lugn', fr: 'Calme' }, 'fi')).toBe('Lugn');
    expect(pickText({ fi: '', en: 'Calm' }, 'fi')).toBe('Calm');
    expect(pickText(undefined, 'en')).toBe('');
    expect(pickText('plain', 'fi')).toBe('plain');
    expect(pickLang({ sv: 'Lugn' }, 'fi')).toBe('sv');
    expect(pickLang({ en: 'Calm', fi: 'Rauha' }, 'fi')).toBe('fi');
  });
});

describe('threads', () => {
  it('flatten roots and replies depth-first, with their depth', () => {
    // out of order: a reply before its parent, a grandchild before the child
    const rows = threadRows([cm('a', null), cm('c', 'b'), cm('b', 'a'), cm('d', null), cm('e', 'a')]);
    expect(rows.map((r) => `${r.comment.id}${r.depth}`)).toEqual(['a1', 'b2', 'c3', 'e2', 'd1']);
  });

  it('cap the indentation at 3 and show an orphan reply (its parent on another page) at its own depth', () => {
    const rows = threadRows([cm('a', null), cm('b', 'a'), cm('c', 'b'), cm('d', 'c'), cm('x', 'gone', { depth: 2 })]);
    expect(rows.map((r) => r.depth)).toEqual([1, 2, 3, 3, 2]);
  });

  it('keep the server’s flattened order as it is', () => {
    const server = [cm('r1', null), cm('r1a', 'r1'), cm('r1a1', 'r1a'), cm('r1b', 'r1'), cm('r2', null)];
    expect(threadRows(server).map((r) => r.comment.id)).toEqual(['r1', 'r1a', 'r1a1', 'r1b', 'r2']);
  });

  it('survive a cycle', () => {
    expect(threadRows([cm('a', 'b'), cm('b', 'a')]).length).toBe(2);
  });
});

describe('stances', () => {
  const list = [
    cm('1', null, { stance: 'for' }),
    cm('2', null, { stance: 'for', scenario: 's1' }),
    cm('3', null, { stance: 'against', scenario: 's1' }),
    cm('4', null, { stance: 'against', state: 'deleted' }),
    cm('5', null, { stance: 'neutral', state: 'hidden' }),
  ];
  it('count visible and hidden comments, not deleted ones, per scenario or all', () => {
    expect(stanceCounts(list)).toEqual({ for: 2, neutral: 1, against: 1 });
    expect(stanceCounts(list, 's1')).toEqual({ for: 1, neutral: 0, against: 1 });
    expect(stanceCounts(list, null)).toEqual({ for: 1, neutral: 1, against: 0 });
  });

  it('share in whole percent', () => {
    expect(stanceShares({ for: 1, neutral: 1, against: 2 })).toEqual({ for: 25, neutral: 25, against: 50 });
    expect(stanceShares({})).toEqual({ for: 0, neutral: 0, against: 0 });
  });
});

describe('phases', () => {
  const d = (s: string) => `2026-${s}T00:00:00Z`;
  const phases = [
    { phase: 'information' as const, start: d('01-01'), end: d('01-10') },
    { phase: 'feedback' as const, start: d('01-10'), end: d('02-10') },
    { phase: 'voting' as const, start: d('02-15'), end: d('03-01') },
  ];
  it('the phase of a moment: upcoming, each phase, between two, closed', () => {
    expect(phaseAt(phases, Date.parse(d('12-01')) - 400 * 86400_000)).toBe('upcoming');
    expect(phaseAt(phases, Date.parse(d('01-05')))).toBe('information');
    expect(phaseAt(phases, Date.parse(d('01-10')))).toBe('feedback');
    expect(phaseAt(phases, Date.parse(d('02-12')))).toBe('feedback');
    expect(phaseAt(phases, Date.parse(d('03-02')))).toBe('closed');
    expect(phaseAt([], 0)).toBe('closed');
  });

  it('a timeline in the phases’ order, the current one from the server', () => {
    const tl = timeline({ phases: [...phases].reverse(), currentPhase: 'feedback' }, Date.parse(d('01-20')));
    expect(tl.map((s) => `${s.phase}:${s.state}`)).toEqual(['information:past', 'feedback:current', 'voting:future']);
    expect(timeline({ phases }, Date.parse(d('03-05'))).every((s) => s.state === 'past')).toBe(true);
    expect(dateRange(phases)).toEqual({ start: d('01-01'), end: d('03-01') });
  });

  it('a new consultation: feedback from now for 30 days, checked', () => {
    const now = Date.parse('2026-11-27T10:30:20Z');
    const [p] = defaultPhases(now);
    expect(p).toEqual({ phase: 'feedback', start: '2026-11-27T10:30:00.000Z', end: '2026-12-27T10:30:00.000Z' });
    expect(checkConsultation({ title: 'Calm', phases: defaultPhases(now) })).toBeUndefined();
    expect(checkConsultation({ title: ' ', phases: defaultPhases(now) })).toBe('consult.check.title');
    expect(checkConsultation({ title: 'x', phases: [] })).toBe('consult.check.noPhase');
    expect(checkConsultation({ title: 'x', phases: [{ phase: 'feedback', start: d('02-01'), end: d('01-01') }] })).toBe('consult.check.phaseOrder');
    expect(checkConsultation({ title: 'x', phases: [{ phase: 'feedback', start: '', end: d('01-01') }] })).toBe('consult.check.phaseDates');
    expect(
      checkConsultation({
        title: 'x',
        phases: [
          { phase: 'voting', start: d('01-05'), end: d('01-20') },
          { phase: 'feedback', start: d('01-01'), end: d('01-10') },
        ],
      }),
    ).toBe('consult.check.phaseOverlap');
  });

  it('datetime-local values and instants, both ways', () => {
    const iso = '2026-11-27T10:30:00.000Z';
    expect(fromLocalInput(toLocalInput(iso))).toBe(iso);
    expect(toLocalInput('nonsense')).toBe('');
    expect(fromLocalInput('')).toBe('');
  });
});

describe('who may do what', () => {
  const c: Pick<Consultation, 'allowed' | 'owner' | 'supportsPerPerson' | 'currentPhase'> = {
    allowed: { comment: true, vote: true, propose: true, support: false, survey: true },
    owner: 'pl',
    supportsPerPerson: 2,
    currentPhase: 'feedback',
  };
  it('roles: moderators, planners, owners, devices', () => {
    expect(canModerate(session('m', 'moderator'))).toBe(true);
    expect(canModerate(session('a', 'admin'))).toBe(true);
    expect(canModerate(session('p', 'planner'))).toBe(false);
    expect(canModerate(undefined)).toBe(false);
    expect(canPlan(session('p', 'planner'))).toBe(true);
    expect(canPlan(session('c', 'citizen'))).toBe(false);
    expect(canParticipate(session('d', 'device'))).toBe(false);
    expect(canParticipate(session('c', 'citizen'))).toBe(true);
    expect(canAnswer(session('pl', 'planner'), c)).toBe(true);
    expect(canAnswer(session('other', 'planner'), c)).toBe(false);
    expect(canAnswer(session('a', 'admin'), c)).toBe(true);
  });

  it('a comment’s buttons: reply up to depth 3, vote on others’, edit and delete one’s own, report others’', () => {
    const ann = session('ann', 'citizen');
    const mine = cm('1', null, { author: 'ann' });
    const theirs = cm('2', null, { author: 'bob' });
    expect(commentActions(ann, c, mine, 1)).toEqual({ reply: true, vote: false, edit: true, delete: true, flag: false });
    expect(commentActions(ann, c, theirs, 1)).toEqual({ reply: true, vote: true, edit: false, delete: false, flag: true });
    expect(commentActions(ann, c, theirs, 3).reply).toBe(false);
    expect(commentActions(undefined, c, theirs, 1)).toEqual({ reply: false, vote: false, edit: false, delete: false, flag: false });
    expect(commentActions(ann, c, { ...theirs, state: 'hidden' }, 1)).toEqual({ reply: false, vote: false, edit: false, delete: false, flag: false });
    expect(commentActions(ann, { allowed: { comment: false, vote: false } }, theirs, 1)).toMatchObject({ reply: false, vote: false, flag: true });
  });

  it('support: why not (signed out, phase, limit), and withdrawing', () => {
    const p = (id: string, supported = false): Proposal => ({ id, title: id, body: '', status: 'submitted', supported, supports: 0 });
    const ann = session('ann', 'citizen');
    expect(supportState(undefined, c, p('a'), [])).toEqual({ enabled: false, reason: 'consult.support.signIn' });
    expect(supportState(ann, c, p('a'), [])).toEqual({ enabled: false, reason: 'consult.support.phase' });
    const voting = { ...c, allowed: { ...c.allowed, support: true } };
    expect(supportState(ann, voting, p('a'), [p('a')])).toEqual({ enabled: true });
    const two = [p('x', true), p('y', true), p('a')];
    expect(supportState(ann, voting, p('a'), two)).toEqual({ enabled: false, reason: 'consult.support.limit' });
    expect(supportState(ann, voting, p('x', true), two)).toEqual({ enabled: true, reason: undefined });
    expect(supportState(ann, voting, { ...p('w'), status: 'withdrawn' }, [])).toEqual({ enabled: false, reason: 'consult.support.closed' });
  });
});

describe('checks before sending', () => {
  it('a body: not empty, at most 4,000 characters and 2 links', () => {
    expect(countLinks('see https://a.example/x and www.b.example and http://c.example')).toBe(3);
    expect(checkBody('  ')).toBe('consult.check.empty');
    expect(checkBody('x'.repeat(4001))).toBe('consult.check.tooLong');
    expect(checkBody('https://a.example https://b.example https://c.example')).toBe('consult.check.tooManyLinks');
    expect(checkBody('https://a.example https://b.example')).toBeUndefined();
  });

  it('a comment needs a stance', () => {
    expect(checkComment({ body: 'Good', stance: undefined })).toBe('consult.check.stance');
    expect(checkComment({ body: 'Good', stance: 'maybe' })).toBe('consult.check.stance');
    expect(checkComment({ body: 'Good', stance: 'for' })).toBeUndefined();
  });

  it('a proposal needs a title of at most 150 characters, a body and a place or a scenario', () => {
    expect(checkProposal({ title: '', body: 'b', location: [1, 2] })).toBe('consult.check.title');
    expect(checkProposal({ title: 'x'.repeat(151), body: 'b', location: [1, 2] })).toBe('consult.check.titleTooLong');
    expect(checkProposal({ title: 'T', body: '', location: [1, 2] })).toBe('consult.check.empty');
    expect(checkProposal({ title: 'T', body: 'b' })).toBe('consult.check.where');
    expect(checkProposal({ title: 'T', body: 'b', scenario: 'urn:x' })).toBeUndefined();
  });

  it('a survey: required questions, scale 1–5, text at most 2,000 characters', () => {
    const s: Survey = {
      id: 's1',
      title: { en: 'S' },
      questions: [
        { id: 'q1', text: { en: 'One' }, kind: 'single', options: [{ en: 'a' }, { en: 'b' }], required: true },
        { id: 'q2', text: { en: 'Two' }, kind: 'scale' },
        { id: 'q3', text: { en: 'Three' }, kind: 'text' },
        { id: 'q4', text: { en: 'Four' }, kind: 'multiple', options: [{ en: 'a' }], required: true },
      ],
    };
    expect(checkSurvey(s, {})).toEqual({ key: 'consult.check.required', question: 'q1' });
    expect(checkSurvey(s, { q1: 0, q4: [] })).toEqual({ key: 'consult.check.required', question: 'q4' });
    expect(checkSurvey(s, { q1: 0, q4: [0], q2: 6 })).toEqual({ key: 'consult.check.scale', question: 'q2' });
    expect(checkSurvey(s, { q1: 0, q4: [0], q3: 'x'.repeat(2001) })).toEqual({ key: 'consult.check.textTooLong', question: 'q3' });
    expect(checkSurvey(s, { q1: 1, q4: [0], q2: 5, q3: 'ok' })).toBeUndefined();
  });
});

describe('helpers', () => {
  it('targets and ranking', () => {
    expect(parseTarget('comment:cm-1')).toEqual({ kind: 'comment', id: 'cm-1' });
    expect(parseTarget('proposal:pr:2')).toEqual({ kind: 'proposal', id: 'pr:2' });
    expect(bySupports([{ supports: 1 }, { supports: 5 }, { supports: 5, createdAt: '2026-02' }, {}]).map((p) => p.supports ?? 0)).toEqual([5, 5, 1, 0]);
  });
});

describe('the consultation in the URL', async () => {
  const { formatSearch, parseSearch } = await import('./url-state');
  it('is `?consultation=id` in the query string, other parameters kept', () => {
    expect(parseSearch('?consultation=riverside-2026')).toEqual({ consultation: 'riverside-2026' });
    expect(parseSearch('')).toEqual({});
    expect(formatSearch('?x=1', 'a b')).toBe('?x=1&consultation=a+b');
    expect(formatSearch('?consultation=old&x=1', undefined)).toBe('?x=1');
    expect(formatSearch('', undefined)).toBe('');
  });
});

describe('e-mail verification', () => {
  it('checks an address before sending it', () => {
    expect(checkEmail('')).toBe('consult.email.needAddress');
    expect(checkEmail('  ')).toBe('consult.email.needAddress');
    expect(checkEmail('nope')).toBe('consult.email.badAddress');
    expect(checkEmail('a@b')).toBe('consult.email.badAddress');
    expect(checkEmail('a b@c.fi')).toBe('consult.email.badAddress');
    expect(checkEmail(' ana@example.fi ')).toBeUndefined();
  });

  it('takes six digits as a code (spaces and dashes allowed), nothing else', () => {
    expect(normalizeCode('123456')).toBe('123456');
    expect(normalizeCode(' 123 456 ')).toBe('123456');
    expect(normalizeCode('123-456')).toBe('123456');
    expect(normalizeCode('12345')).toBeUndefined();
    expect(normalizeCode('1234567')).toBeUndefined();
    expect(normalizeCode('12a456')).toBeUndefined();
  });

  it('reads the tries left from a wrong code’s detail', () => {
    expect(triesLeft('the code is not right (4 tries left)')).toBe(4);
    expect(triesLeft('the code is not right (1 tries left)')).toBe(1);
    expect(triesLeft('1 try left')).toBe(1);
    expect(triesLeft('the code is not right')).toBeUndefined();
  });

  it('rounds a wait up to whole minutes', () => {
    expect(waitMinutes(1197)).toBe(20);
    expect(waitMinutes(1)).toBe(1);
    expect(waitMinutes(0)).toBe(1);
    expect(waitMinutes(undefined)).toBeUndefined();
  });

  it('says what went wrong when sending a code', () => {
    expect(emailErrorMessage('send', { status: 422, message: 'no mail outbox' })).toEqual({ key: 'consult.email.noMail' });
    expect(emailErrorMessage('send', { status: 429, message: 'at most 3', retryAfter: 1197 })).toEqual({ key: 'consult.email.tooMany', vars: { minutes: 20 } });
    expect(emailErrorMessage('send', { status: 429, message: 'at most 3' })).toEqual({ key: 'consult.email.tooManyLater' });
    expect(emailErrorMessage('send', { status: 400, message: '"x" is not an e-mail address' })).toEqual({ key: 'consult.email.badAddress' });
    expect(emailErrorMessage('send', { status: 409, message: 'another account' })).toEqual({ key: 'consult.email.taken' });
    expect(emailErrorMessage('send', { status: 500, message: 'boom' })).toEqual({ key: 'consult.error', vars: { detail: 'boom' } });
  });

  it('says what went wrong when verifying a code', () => {
    expect(emailErrorMessage('verify', { status: 400, message: 'the code is not right (4 tries left)' })).toEqual({ key: 'consult.email.wrongCode', vars: { n: 4 } });
    expect(emailErrorMessage('verify', { status: 400, message: 'the code is not right (0 tries left)' })).toEqual({ key: 'consult.email.noTries' });
    expect(emailErrorMessage('verify', { status: 400, message: 'the code is not right' })).toEqual({ key: 'consult.email.wrongCodeAgain' });
    expect(emailErrorMessage('verify', { status: 409, message: 'the code has expired or was tried too often: ask for a new one' })).toEqual({ key: 'consult.email.expired' });
    expect(emailErrorMessage('verify', { status: 404, message: 'no code was sent to you' })).toEqual({ key: 'consult.email.noCode' });
    expect(emailErrorMessage('verify', { status: 429, message: 'slow down', retryAfter: 30 })).toEqual({ key: 'consult.email.tooMany', vars: { minutes: 1 } });
  });

  it('a consultation’s requirements: a verified address, an account old enough', () => {
    const now = Date.parse('2026-11-27T12:00:00Z');
    const email = { requireVerifiedEmail: true, minAccountAgeHours: 0 };
    expect(requirements(email, false, { verified: false }, now)).toBeUndefined();
    expect(requirements(email, true, undefined, now)).toBeUndefined(); // not known yet
    expect(requirements(email, true, { verified: false }, now)).toEqual({ email: true, ageHours: 0 });
    expect(requirements(email, true, { verified: true }, now)).toBeUndefined();
    expect(requirements({ requireVerifiedEmail: false }, true, { verified: false }, now)).toBeUndefined();
    const age = { requireVerifiedEmail: false, minAccountAgeHours: 24 };
    expect(requirements(age, true, { verified: true, createdAt: '2026-11-27T10:00:00Z' }, now)).toEqual({ email: false, ageHours: 24, tooYoung: true });
    expect(requirements(age, true, { verified: true, createdAt: '2026-11-20T10:00:00Z' }, now)).toBeUndefined();
    expect(requirements(age, true, undefined, now)).toEqual({ email: false, ageHours: 24 });
    expect(requirements({ requireVerifiedEmail: true, minAccountAgeHours: 48 }, true, { verified: false, createdAt: '2026-11-20T10:00:00Z' }, now)).toEqual({ email: true, ageHours: 48, tooYoung: false });
  });
});
