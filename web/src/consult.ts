// The pure logic of the consultation pages: which language of a text to show, threads flattened with their
// indentation, stance counts, the phase timeline, what the caller may do (and why not), and the checks a form makes
// before it is sent (the server checks again: docs/consultations.md, "Limits").

import type { Comment, Consultation, LangMap, Phase, PhaseSpan, PhaseState, Proposal, Stance, Survey, Answers } from './consult-api';
import { PHASES, STANCES } from './consult-api';
import type { Session } from './session';

/** The text of a language map in `lang`, else English, else the first language it has ('' for none). */
export function pickText(m: LangMap | string | null | undefined, lang: string): string {
  if (!m) return '';
  if (typeof m === 'string') return m;
  if (typeof m[lang] === 'string' && m[lang]) return m[lang]!;
  if (typeof m.en === 'string' && m.en) return m.en;
  for (const v of Object.values(m)) if (typeof v === 'string' && v) return v;
  return '';
}

/** The language a language map's text is shown in (for the element's `lang`), as {@link pickText} picks it. */
export function pickLang(m: LangMap | null | undefined, lang: string): string | undefined {
  if (!m || typeof m !== 'object') return undefined;
  if (m[lang]) return lang;
  if (m.en) return 'en';
  return Object.keys(m).find((k) => m[k]);
}

/** The deepest reply: a comment of depth 3 has no Reply button. */
export const MAX_DEPTH = 3;

export interface ThreadRow {
  comment: Comment;
  /** 1 for a root, 2 and 3 for replies. */
  depth: number;
}

/**
 * Comments in thread order: each root (in the order given), then its replies depth-first (in the order given). The
 * server flattens threads already; this keeps a page whose replies come apart (or out of order) readable. A reply
 * whose parent is not in the list is shown as a root. Depth is the position in the thread, capped at 3.
 */
export function threadRows(comments: Comment[]): ThreadRow[] {
  const ids = new Set(comments.map((c) => c.id));
  const children = new Map<string, Comment[]>();
  const roots: Comment[] = [];
  for (const c of comments) {
    if (c.parent && ids.has(c.parent) && c.parent !== c.id) {
      const list = children.get(c.parent) ?? [];
      list.push(c);
      children.set(c.parent, list);
    } else roots.push(c);
  }
  const out: ThreadRow[] = [];
  const seen = new Set<string>();
  const walk = (c: Comment, depth: number) => {
    if (seen.has(c.id)) return;
    seen.add(c.id);
    out.push({ comment: c, depth: Math.min(depth, MAX_DEPTH) });
    for (const r of children.get(c.id) ?? []) walk(r, depth + 1);
  };
  for (const r of roots) walk(r, r.parent && !ids.has(r.parent) ? Math.max(1, r.depth ?? 1) : 1);
  // a cycle (never from the server) leaves comments unvisited: shown as roots
  for (const c of comments) if (!seen.has(c.id)) walk(c, 1);
  return out;
}

export type StanceCounts = Record<Stance, number>;

/** Stances of the comments that count: visible and hidden ones (a hidden comment's stance stays), not deleted ones. */
export function stanceCounts(comments: Comment[], scenario?: string | null): StanceCounts {
  const out: StanceCounts = { for: 0, neutral: 0, against: 0 };
  for (const c of comments) {
    if (c.state === 'deleted') continue;
    if (scenario !== undefined && (c.scenario ?? null) !== scenario) continue;
    if (STANCES.includes(c.stance)) out[c.stance]++;
  }
  return out;
}

/** Each stance's share of the total, in whole percent (0 when there are none). */
export function stanceShares(c: Partial<StanceCounts>): StanceCounts {
  const total = STANCES.reduce((n, s) => n + (c[s] ?? 0), 0);
  const out: StanceCounts = { for: 0, neutral: 0, against: 0 };
  if (!total) return out;
  for (const s of STANCES) out[s] = Math.round(((c[s] ?? 0) / total) * 100);
  return out;
}

/** The phase at `now` from the phases' dates (the server's `currentPhase` is preferred when it is there). */
export function phaseAt(phases: PhaseSpan[], now: number): PhaseState {
  const sorted = [...phases].sort((a, b) => Date.parse(a.start) - Date.parse(b.start));
  if (!sorted.length) return 'closed';
  if (now < Date.parse(sorted[0]!.start)) return 'upcoming';
  for (const p of sorted) if (now >= Date.parse(p.start) && now < Date.parse(p.end)) return p.phase;
  if (now >= Date.parse(sorted[sorted.length - 1]!.end)) return 'closed';
  // between two phases: the one that ended last
  const past = sorted.filter((p) => Date.parse(p.end) <= now);
  return past.length ? past[past.length - 1]!.phase : 'upcoming';
}

export interface TimelineStep {
  phase: Phase;
  start: string;
  end: string;
  state: 'past' | 'current' | 'future';
}

/** The consultation's phases in order, each past, current or future. */
export function timeline(c: Pick<Consultation, 'phases' | 'currentPhase'>, now: number): TimelineStep[] {
  const current = c.currentPhase ?? phaseAt(c.phases, now);
  const sorted = [...c.phases].sort((a, b) => PHASES.indexOf(a.phase) - PHASES.indexOf(b.phase));
  return sorted.map((p) => ({
    ...p,
    state: p.phase === current ? 'current' : Date.parse(p.end) <= now || current === 'closed' ? 'past' : Date.parse(p.start) > now || current === 'upcoming' ? 'future' : 'past',
  }));
}

/** The first and last dates of the consultation. */
export function dateRange(phases: PhaseSpan[]): { start?: string; end?: string } {
  if (!phases.length) return {};
  const starts = phases.map((p) => p.start).sort();
  const ends = phases.map((p) => p.end).sort();
  return { start: starts[0], end: ends[ends.length - 1] };
}

// ---- who may do what

export function canModerate(s: Session | undefined): boolean {
  return !!s && (s.roles.includes('moderator') || s.roles.includes('admin'));
}

export function canPlan(s: Session | undefined): boolean {
  return !!s && (s.roles.includes('planner') || s.roles.includes('admin'));
}

/** Whether the account takes part at all: signed in with a role other than device alone. */
export function canParticipate(s: Session | undefined): boolean {
  return !!s && s.roles.some((r) => r !== 'device');
}

/** Whether the account answers proposals and adds milestones: the consultation's owner or an administrator. */
export function canAnswer(s: Session | undefined, c: Pick<Consultation, 'owner'>): boolean {
  return !!s && (s.roles.includes('admin') || (!!c.owner && c.owner === s.id));
}

export interface CommentActions {
  reply: boolean;
  vote: boolean;
  edit: boolean;
  delete: boolean;
  flag: boolean;
}

/** The buttons a comment shows to the caller. */
export function commentActions(s: Session | undefined, c: Pick<Consultation, 'allowed'>, comment: Comment, depth: number): CommentActions {
  const me = canParticipate(s);
  const own = me && !!comment.author && comment.author === s!.id;
  const live = comment.state !== 'deleted' && comment.state !== 'hidden';
  return {
    reply: me && live && depth < MAX_DEPTH && !!c.allowed?.comment,
    vote: me && live && !own && !!c.allowed?.vote,
    edit: own && live,
    delete: own && comment.state !== 'deleted',
    flag: me && live && !own,
  };
}

/** Whether the Support button works for the caller, and if not, the message key saying why. */
export function supportState(
  s: Session | undefined,
  c: Pick<Consultation, 'allowed' | 'supportsPerPerson' | 'currentPhase'>,
  p: Proposal,
  all: Proposal[],
): { enabled: boolean; reason?: string } {
  if (p.supported) return { enabled: canParticipate(s) && !!c.allowed?.support, reason: c.allowed?.support ? undefined : 'consult.support.phase' };
  if (!s) return { enabled: false, reason: 'consult.support.signIn' };
  if (!canParticipate(s)) return { enabled: false, reason: 'consult.support.cannot' };
  if (p.status === 'withdrawn' || p.state === 'hidden') return { enabled: false, reason: 'consult.support.closed' };
  if (!c.allowed?.support) return { enabled: false, reason: 'consult.support.phase' };
  const limit = c.supportsPerPerson ?? 3;
  if (all.filter((x) => x.supported).length >= limit) return { enabled: false, reason: 'consult.support.limit' };
  return { enabled: true };
}

// ---- checks before sending

export const LIMITS = { body: 4000, title: 150, links: 2, surveyText: 2000 } as const;

/** Links in a text: http(s) URLs and bare `www.` addresses. */
export function countLinks(text: string): number {
  return (text.match(/\b(?:https?:\/\/|www\.)\S+/gi) ?? []).length;
}

/** The message key of what is wrong with a comment or proposal body, or undefined. */
export function checkBody(body: string): string | undefined {
  const b = body.trim();
  if (!b) return 'consult.check.empty';
  if (b.length > LIMITS.body) return 'consult.check.tooLong';
  if (countLinks(b) > LIMITS.links) return 'consult.check.tooManyLinks';
  return undefined;
}

export function checkComment(c: { body: string; stance?: string }): string | undefined {
  if (!c.stance || !(STANCES as string[]).includes(c.stance)) return 'consult.check.stance';
  return checkBody(c.body);
}

export function checkProposal(p: { title: string; body: string; location?: unknown; scenario?: unknown }): string | undefined {
  const title = p.title.trim();
  if (!title) return 'consult.check.title';
  if (title.length > LIMITS.title) return 'consult.check.titleTooLong';
  const b = checkBody(p.body);
  if (b) return b;
  if (!p.location && !p.scenario) return 'consult.check.where';
  return undefined;
}

/** The message key and question of the first unanswered required question or invalid answer, or undefined. */
export function checkSurvey(s: Survey, answers: Answers): { key: string; question: string } | undefined {
  for (const q of s.questions) {
    const a = answers[q.id];
    const empty = a === undefined || a === '' || (Array.isArray(a) && !a.length);
    if (empty) {
      if (q.required) return { key: 'consult.check.required', question: q.id };
      continue;
    }
    if (q.kind === 'scale' && !(typeof a === 'number' && a >= 1 && a <= 5)) return { key: 'consult.check.scale', question: q.id };
    if (q.kind === 'text' && typeof a === 'string' && a.length > LIMITS.surveyText) return { key: 'consult.check.textTooLong', question: q.id };
  }
  return undefined;
}

export interface DraftPhase {
  phase: Phase;
  start: string;
  end: string;
}

/** What is wrong with a new consultation, as a message key, or undefined. */
export function checkConsultation(d: { title: string; phases: DraftPhase[] }): string | undefined {
  if (!d.title.trim()) return 'consult.check.title';
  if (d.title.trim().length > LIMITS.title) return 'consult.check.titleTooLong';
  if (!d.phases.length) return 'consult.check.noPhase';
  let last = -Infinity;
  for (const p of [...d.phases].sort((a, b) => PHASES.indexOf(a.phase) - PHASES.indexOf(b.phase))) {
    const s = Date.parse(p.start);
    const e = Date.parse(p.end);
    if (!Number.isFinite(s) || !Number.isFinite(e)) return 'consult.check.phaseDates';
    if (e <= s) return 'consult.check.phaseOrder';
    if (s < last) return 'consult.check.phaseOverlap';
    last = e;
  }
  return undefined;
}

const DAY = 86_400_000;

/** A new consultation's phases: feedback from now for 30 days. */
export function defaultPhases(now: number): DraftPhase[] {
  const start = new Date(Math.floor(now / 60_000) * 60_000);
  return [{ phase: 'feedback', start: start.toISOString(), end: new Date(start.getTime() + 30 * DAY).toISOString() }];
}

/** `2026-11-27T10:30` (local time, for `<input type="datetime-local">`) from an instant. */
export function toLocalInput(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** The instant of a `datetime-local` value (local time), as RFC 3339 UTC; '' when it is not a date. */
export function fromLocalInput(v: string): string {
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString();
}

/** `comment:cm-1` → `{kind: 'comment', id: 'cm-1'}`. */
export function parseTarget(target: string): { kind: string; id: string } {
  const i = target.indexOf(':');
  return i < 0 ? { kind: '', id: target } : { kind: target.slice(0, i), id: target.slice(i + 1) };
}

/** The proposals with the most supports first (ties: the newest first). */
export function bySupports<T extends { supports?: number; createdAt?: string }>(ps: T[]): T[] {
  return [...ps].sort((a, b) => (b.supports ?? 0) - (a.supports ?? 0) || (b.createdAt ?? '').localeCompare(a.createdAt ?? ''));
}

// ---- e-mail verification ("My participation") and what a consultation asks of its participants

/** A message of the e-mail form: an i18n key and its values. */
export interface Msg {
  key: string;
  vars?: Record<string, string | number>;
}

/** An address worth sending (the server checks again); undefined when it is, else the message key. */
export function checkEmail(v: string): string | undefined {
  const s = v.trim();
  if (!s) return 'consult.email.needAddress';
  if (s.length > 254 || !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(s)) return 'consult.email.badAddress';
  return undefined;
}

/** A code of six digits (spaces allowed); a malformed one is not sent, for every try counts. */
export function normalizeCode(v: string): string | undefined {
  const s = v.replace(/[\s-]/g, '');
  return /^\d{6}$/.test(s) ? s : undefined;
}

/** The tries left that a wrong code's detail names (`the code is not right (4 tries left)`). */
export function triesLeft(detail: string): number | undefined {
  const m = /(\d+)\s+tr(?:y|ies)\s+left/i.exec(detail);
  return m ? Number(m[1]) : undefined;
}

/** A wait in whole minutes, at least one. */
export function waitMinutes(seconds: number | undefined): number | undefined {
  if (seconds === undefined || !Number.isFinite(seconds)) return undefined;
  return Math.max(1, Math.ceil(seconds / 60));
}

/** What went wrong with sending a code (`send`) or verifying one (`verify`), in words the form shows. */
export function emailErrorMessage(
  step: 'send' | 'verify',
  e: { status?: number; message?: string; retryAfter?: number },
): Msg {
  const status = e.status ?? 0;
  const detail = e.message ?? '';
  if (status === 429) {
    const wait = waitMinutes(e.retryAfter);
    return wait === undefined ? { key: 'consult.email.tooManyLater' } : { key: 'consult.email.tooMany', vars: { minutes: wait } };
  }
  if (status === 401) return { key: 'consult.email.signIn' };
  if (step === 'send') {
    if (status === 422) return { key: 'consult.email.noMail' };
    if (status === 400) return { key: 'consult.email.badAddress' };
    if (status === 409) return { key: 'consult.email.taken' };
  } else {
    if (status === 404) return { key: 'consult.email.noCode' };
    const n = triesLeft(detail);
    if (n !== undefined) return n > 0 ? { key: 'consult.email.wrongCode', vars: { n } } : { key: 'consult.email.noTries' };
    if (status === 409 || status === 410) return { key: 'consult.email.expired' };
    if (status === 400) return { key: 'consult.email.wrongCodeAgain' };
  }
  return { key: 'consult.error', vars: { detail: detail || String(status) } };
}

/** What a consultation asks of a signed-in participant before votes, supports and survey answers count. */
export interface Requirements {
  /** A verified e-mail address is needed and the account has none (yet). */
  email: boolean;
  /** The account must be this many hours old (0: no such rule). */
  ageHours: number;
  /** The account is younger than that (undefined: not known). */
  tooYoung?: boolean;
}

/**
 * The notice a consultation's page shows a signed-in participant; undefined when there is nothing to say (nobody
 * signed in, no rule, or the account meets them). `status` undefined: the address is not known yet (no notice on
 * the e-mail rule until it is).
 */
export function requirements(
  c: Pick<Consultation, 'requireVerifiedEmail' | 'minAccountAgeHours'>,
  signedIn: boolean,
  status: { verified: boolean; createdAt?: string } | undefined,
  now: number,
): Requirements | undefined {
  if (!signedIn) return undefined;
  const email = !!c.requireVerifiedEmail && !!status && !status.verified;
  const ageHours = Math.max(0, Number(c.minAccountAgeHours) || 0);
  const created = status?.createdAt ? Date.parse(status.createdAt) : NaN;
  const tooYoung = ageHours > 0 && Number.isFinite(created) ? now - created < ageHours * 3600_000 : undefined;
  if (!email && !(ageHours > 0 && tooYoung !== false)) return undefined;
  return { email, ageHours, ...(tooYoung !== undefined ? { tooYoung } : {}) };
}
