// The consultations API (docs/consultations.md): consultations, comments, proposals, surveys, flags and moderation,
// following and notifications, results, and the caller's own participation. Reads go through `apiFetch` too, so that
// the session cookie says who asks (`myVote`, `supported`, `following` are the caller's).

import { ApiError, apiFetch, enc, problem, qs, sendJson, type Scenario } from './api';

/** A text in several languages: `{"en": "...", "fi": "..."}`. */
export type LangMap = Record<string, string>;

export const PHASES = ['information', 'feedback', 'voting', 'results'] as const;
export type Phase = (typeof PHASES)[number];
export type PhaseState = 'upcoming' | Phase | 'closed';

export interface PhaseSpan {
  phase: Phase;
  start: string;
  end: string;
}

export type QuestionKind = 'single' | 'multiple' | 'scale' | 'text';

export interface SurveyQuestion {
  id: string;
  text: LangMap;
  kind: QuestionKind;
  options?: LangMap[];
  required?: boolean;
}

export interface Survey {
  id: string;
  title: LangMap;
  questions: SurveyQuestion[];
}

export interface Indicator {
  key: string;
  value?: number;
  unit?: string;
  text?: LangMap;
}

export interface ScenarioSummary {
  id: string;
  name?: string;
  run?: string | null;
  indicators?: Indicator[];
}

export type Action = 'comment' | 'vote' | 'propose' | 'support' | 'survey';
export const ACTIONS: Action[] = ['comment', 'vote', 'propose', 'support', 'survey'];
export type Allowed = Partial<Record<Action, boolean>>;

export interface Counts {
  participants?: number;
  comments?: number;
  proposals?: number;
  supports?: number;
}

export interface Consultation {
  id: string;
  title: LangMap;
  summary?: LangMap;
  description?: LangMap;
  scenarios: string[];
  phases: PhaseSpan[];
  area?: number[] | null;
  supportsPerPerson?: number;
  minAccountAgeHours?: number;
  requireVerifiedEmail?: boolean;
  surveys?: Survey[];
  published?: boolean;
  owner?: string;
  organisation?: string | null;
  createdAt?: string;
  modifiedAt?: string;
  currentPhase?: PhaseState;
  allowed?: Allowed;
  counts?: Counts;
  following?: boolean;
  scenarioSummaries?: ScenarioSummary[];
}

/** What a planner sends to create or replace a consultation. */
export type ConsultationDraft = Omit<Consultation, 'id' | 'currentPhase' | 'allowed' | 'counts' | 'following' | 'scenarioSummaries' | 'createdAt' | 'modifiedAt' | 'owner'> & { id?: string };

export type Stance = 'for' | 'neutral' | 'against';
export const STANCES: Stance[] = ['for', 'neutral', 'against'];
export type ItemState = 'visible' | 'hidden' | 'deleted';

export interface Hidden {
  reason: string;
  at?: string;
}

export interface Comment {
  id: string;
  consultation?: string;
  scenario?: string | null;
  parent?: string | null;
  depth?: number;
  author?: string | null;
  authorName?: string | null;
  stance: Stance;
  body: string;
  location?: [number, number] | null;
  lang?: string | null;
  createdAt?: string;
  editedAt?: string | null;
  state?: ItemState;
  hidden?: Hidden | null;
  votes?: { up: number; down: number };
  myVote?: number;
  replies?: number;
}

export const PROPOSAL_STATUSES = ['submitted', 'evaluating', 'accepted', 'rejected', 'implemented', 'withdrawn'] as const;
export type ProposalStatus = (typeof PROPOSAL_STATUSES)[number];

export interface Milestone {
  at: string;
  title: string;
  body?: string;
}

export interface Proposal {
  id: string;
  consultation?: string;
  author?: string | null;
  authorName?: string | null;
  title: string;
  body: string;
  location?: [number, number] | null;
  scenario?: string | null;
  geometry?: { type: string; coordinates?: unknown; geometries?: unknown[] } | null;
  status: ProposalStatus;
  answer?: { text: string; by?: string; at?: string } | null;
  milestones?: Milestone[];
  state?: ItemState;
  hidden?: Hidden | null;
  supports?: number;
  supported?: boolean;
  createdAt?: string;
  editedAt?: string | null;
}

export const FLAG_REASONS = ['spam', 'offensive', 'off-topic', 'personal-data', 'other'] as const;
export type FlagReason = (typeof FLAG_REASONS)[number];

export interface QueueItem {
  target: string;
  consultation?: string;
  flags: number;
  reasons?: Record<string, number>;
  item?: (Partial<Comment> & Partial<Proposal>) | null;
}

export type ModAction = 'hide' | 'restore' | 'dismiss';

export interface LogEntry {
  id: string;
  at: string;
  consultation?: string;
  target: string;
  action: ModAction | string;
  reason?: string;
  flags?: number;
  moderator?: string;
}

export interface Notification {
  id: string;
  at: string;
  kind: 'reply' | 'answer' | 'milestone' | 'moderation' | string;
  consultation?: string;
  target?: string;
  text?: LangMap;
  read?: boolean;
}

export interface Notifications {
  unread: number;
  items: Notification[];
}

/** A proposal in the results, by supports. */
export interface RankedProposal {
  id: string;
  title: string;
  status: ProposalStatus;
  supports: number;
}

/** A question's answers: counts per option (per scale step 1–5), the number of responses. */
export interface QuestionResult {
  kind?: string;
  counts?: number[];
  responses?: number;
}

export interface Results {
  participants?: number;
  comments?: number;
  /** The number of proposals (an early draft of the API had the ranked list here). */
  proposals?: number | RankedProposal[];
  proposalsBySupport?: RankedProposal[];
  supports?: number;
  /** Per scenario (or `_general`): people's latest stances. */
  stance?: Record<string, Partial<Record<Stance, number>>>;
  surveys?: Record<string, { responses?: number; questions?: Record<string, QuestionResult> } & Record<string, unknown>>;
}

/** The ranked proposals of a results answer (`proposalsBySupport`, or the list an early draft kept in `proposals`). */
export function rankedProposals(r: Results): RankedProposal[] {
  if (Array.isArray(r.proposalsBySupport)) return r.proposalsBySupport;
  return Array.isArray(r.proposals) ? r.proposals : [];
}

/** A question's result, in the answer's shape (`surveys.s1.questions.q1`) or the early draft's (`surveys.s1.q1`). */
export function questionResult(r: Results, survey: string, question: string): QuestionResult | undefined {
  const s = r.surveys?.[survey];
  if (!s) return undefined;
  return s.questions?.[question] ?? (s[question] as QuestionResult | undefined);
}

const C = '/api/consultations';

/** A GET with the session cookie (the answer depends on who asks); throws the ProblemDetails' detail. */
async function getWith<T>(path: string, signal?: AbortSignal): Promise<{ body: T; res: Response }> {
  const res = await apiFetch(path, signal ? { signal } : {});
  if (!res.ok) throw await problem(res);
  return { body: (await res.json()) as T, res };
}

async function get<T>(path: string, signal?: AbortSignal): Promise<T> {
  return (await getWith<T>(path, signal)).body;
}

/** An array answer, also when it comes wrapped (`{items: [...]}`). */
function list<T>(v: unknown): T[] {
  if (Array.isArray(v)) return v as T[];
  const items = (v as { items?: unknown } | null)?.items;
  return Array.isArray(items) ? (items as T[]) : [];
}

export async function listConsultations(signal?: AbortSignal): Promise<Consultation[]> {
  return list<Consultation>(await get<unknown>(C, signal));
}

export function getConsultation(id: string, signal?: AbortSignal): Promise<Consultation> {
  return get<Consultation>(`${C}/${enc(id)}`, signal);
}

export async function createConsultation(c: ConsultationDraft): Promise<Consultation> {
  return (await sendJson<Consultation>('POST', C, c))!;
}

export async function replaceConsultation(id: string, c: ConsultationDraft): Promise<Consultation | undefined> {
  return sendJson<Consultation>('PUT', `${C}/${enc(id)}`, c);
}

export async function deleteConsultation(id: string): Promise<void> {
  await sendJson('DELETE', `${C}/${enc(id)}`);
}

export type CommentSort = 'new' | 'old' | 'top';

/** A page of comments, threads flattened; `total`: the number of root comments (`X-Total-Count`). */
export async function listComments(
  id: string,
  o: { sort?: CommentSort; scenario?: string; parent?: string; limit?: number; offset?: number } = {},
  signal?: AbortSignal,
): Promise<{ items: Comment[]; total: number | undefined }> {
  const { body, res } = await getWith<unknown>(`${C}/${enc(id)}/comments${qs(o)}`, signal);
  const total = Number(res.headers?.get?.('X-Total-Count') ?? NaN);
  return { items: list<Comment>(body), total: Number.isFinite(total) ? total : undefined };
}

export interface NewComment {
  body: string;
  stance: Stance;
  scenario?: string;
  parent?: string;
  location?: [number, number];
  lang?: string;
}

export async function postComment(id: string, c: NewComment): Promise<Comment> {
  return (await sendJson<Comment>('POST', `${C}/${enc(id)}/comments`, c))!;
}

export async function editComment(id: string, cid: string, patch: { body?: string; stance?: Stance }): Promise<Comment | undefined> {
  return sendJson<Comment>('PATCH', `${C}/${enc(id)}/comments/${enc(cid)}`, patch);
}

export async function deleteComment(id: string, cid: string): Promise<void> {
  await sendJson('DELETE', `${C}/${enc(id)}/comments/${enc(cid)}`);
}

/** Votes up (1) or down (-1), or takes the vote back (0). */
export async function voteComment(id: string, cid: string, value: 1 | -1 | 0): Promise<void> {
  const path = `${C}/${enc(id)}/comments/${enc(cid)}/vote`;
  if (value === 0) await sendJson('DELETE', path);
  else await sendJson('PUT', path, { value });
}

export type ProposalSort = 'new' | 'supports';

export async function listProposals(id: string, o: { sort?: ProposalSort; status?: string } = {}, signal?: AbortSignal): Promise<Proposal[]> {
  return list<Proposal>(await get<unknown>(`${C}/${enc(id)}/proposals${qs(o)}`, signal));
}

export interface NewProposal {
  title: string;
  body: string;
  location?: [number, number];
  scenario?: string;
}

export async function postProposal(id: string, p: NewProposal): Promise<Proposal> {
  return (await sendJson<Proposal>('POST', `${C}/${enc(id)}/proposals`, p))!;
}

/** The author withdraws the proposal. */
export async function withdrawProposal(id: string, pid: string): Promise<void> {
  await sendJson('DELETE', `${C}/${enc(id)}/proposals/${enc(pid)}`);
}

export async function setSupport(id: string, pid: string, on: boolean): Promise<void> {
  await sendJson(on ? 'PUT' : 'DELETE', `${C}/${enc(id)}/proposals/${enc(pid)}/support`);
}

export async function answerProposal(id: string, pid: string, a: { status: ProposalStatus; text: string }): Promise<void> {
  await sendJson('POST', `${C}/${enc(id)}/proposals/${enc(pid)}/answer`, a);
}

export async function addMilestone(id: string, pid: string, m: { title: string; body: string; at?: string }): Promise<void> {
  await sendJson('POST', `${C}/${enc(id)}/proposals/${enc(pid)}/milestones`, m);
}

/** A copy of a scenario (or of the baseline, `id = baseline`) owned by the caller. */
export async function forkScenario(id: string, name?: string): Promise<Scenario> {
  return (await sendJson<Scenario>('POST', `/api/scenarios/${enc(id)}/fork`, name ? { name } : {}))!;
}

export type Answers = Record<string, number | number[] | string>;

/** The caller's answers to a survey; undefined when there are none yet (404). */
export async function getSurveyResponse(id: string, sid: string, signal?: AbortSignal): Promise<Answers | undefined> {
  const res = await apiFetch(`${C}/${enc(id)}/surveys/${enc(sid)}/response`, signal ? { signal } : {});
  if (res.status === 404 || res.status === 401) return undefined;
  if (!res.ok) throw await problem(res);
  const body = (await res.json()) as { answers?: Answers } | Answers;
  return ((body as { answers?: Answers }).answers ?? body) as Answers;
}

export async function putSurveyResponse(id: string, sid: string, answers: Answers): Promise<void> {
  await sendJson('PUT', `${C}/${enc(id)}/surveys/${enc(sid)}/response`, { answers });
}

export async function flag(id: string, f: { target: string; reason: FlagReason; note?: string }): Promise<void> {
  await sendJson('POST', `${C}/${enc(id)}/flags`, f);
}

export async function getQueue(consultation?: string, signal?: AbortSignal): Promise<QueueItem[]> {
  return list<QueueItem>(await get<unknown>(`/api/moderation/queue${qs({ consultation })}`, signal));
}

export async function moderate(a: { target: string; action: ModAction; reason: string }): Promise<void> {
  await sendJson('POST', '/api/moderation/actions', a);
}

export async function getModerationLog(o: { consultation?: string; limit?: number; offset?: number } = {}, signal?: AbortSignal): Promise<LogEntry[]> {
  return list<LogEntry>(await get<unknown>(`/api/moderation/log${qs(o)}`, signal));
}

export async function setFollow(id: string, on: boolean): Promise<void> {
  await sendJson(on ? 'PUT' : 'DELETE', `${C}/${enc(id)}/follow`);
}

export async function getNotifications(o: { unread?: boolean; limit?: number } = {}, signal?: AbortSignal): Promise<Notifications> {
  const b = await get<Partial<Notifications> | Notification[]>(`/api/notifications${qs({ unread: o.unread ? 'true' : undefined, limit: o.limit })}`, signal);
  const items = list<Notification>(b);
  const unread = Array.isArray(b) ? items.filter((n) => !n.read).length : (b.unread ?? items.filter((n) => !n.read).length);
  return { unread, items };
}

export async function markRead(which: { ids: string[] } | { all: true }): Promise<void> {
  await sendJson('POST', '/api/notifications/read', which);
}

export function getResults(id: string, signal?: AbortSignal): Promise<Results> {
  return get<Results>(`${C}/${enc(id)}/results`, signal);
}

export function resultsUrl(id: string, format: 'csv' | 'geojson'): string {
  return `${C}/${enc(id)}/results.${format}`;
}

export async function getResultsGeoJson(id: string, signal?: AbortSignal): Promise<{ type: string; features: unknown[] }> {
  return get(resultsUrl(id, 'geojson'), signal);
}

/** Everything the twin keeps of the caller's participation, as the server gives it (one JSON document). */
export async function getParticipation(): Promise<string> {
  const res = await apiFetch('/api/me/participation');
  if (!res.ok) throw await problem(res);
  return res.text();
}

/** Erases the caller's account (a password account confirms with its password). */
export async function deleteMe(password: string): Promise<void> {
  await sendJson('DELETE', '/api/me', { password });
}

/** Whether the caller has a verified e-mail address (which), and since when the account exists. */
export interface EmailStatus {
  verified: boolean;
  email?: string;
  createdAt?: string;
}

/**
 * The caller's e-mail status from `GET /api/me/email` (`verified`, `email`) and the account from `GET /api/auth/me`
 * (`account.createdAt`, for a consultation's minimum account age).
 */
export function emailStatus(mail: unknown, me?: unknown): EmailStatus {
  const m = (mail ?? {}) as { verified?: unknown; email?: unknown };
  const a = ((me ?? {}) as { account?: { createdAt?: unknown } | null }).account;
  const verified = m.verified === true;
  const email = typeof m.email === 'string' && m.email ? m.email : undefined;
  const createdAt = typeof a?.createdAt === 'string' ? a.createdAt : undefined;
  return { verified, ...(verified && email ? { email } : {}), ...(createdAt ? { createdAt } : {}) };
}

export async function getEmailStatus(): Promise<EmailStatus> {
  const [mail, me] = await Promise.all([get<unknown>('/api/me/email'), get<unknown>('/api/auth/me')]);
  return emailStatus(mail, me);
}

/** A failed e-mail request: the ProblemDetails' detail and status, and the wait a 429 asks for (`Retry-After`, s). */
export class EmailError extends ApiError {
  readonly retryAfter: number | undefined;
  constructor(e: ApiError, retryAfter: number | undefined) {
    super(e.status, e.message, e.type);
    this.retryAfter = retryAfter;
  }
}

/** `Retry-After` in seconds (a number of seconds or an HTTP date); undefined when absent or unreadable. */
export function retryAfterSeconds(v: string | null | undefined, now = Date.now()): number | undefined {
  if (!v) return undefined;
  const s = v.trim();
  if (/^\d+$/.test(s)) return Number(s);
  const at = Date.parse(s);
  return Number.isFinite(at) ? Math.max(0, Math.round((at - now) / 1000)) : undefined;
}

async function emailPost<T>(path: string, body: unknown): Promise<T> {
  const res = await apiFetch(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  if (!res.ok) throw new EmailError(await problem(res), retryAfterSeconds(res.headers?.get?.('Retry-After')));
  const text = await res.text();
  return (text ? JSON.parse(text) : {}) as T;
}

/** Sends a six-digit code to the address (`202`); throws an {@link EmailError}. */
export function sendEmailCode(email: string): Promise<{ email?: string; sent?: boolean; expiresInMinutes?: number }> {
  return emailPost('/api/me/email', { email });
}

/** Marks the address verified with the code it received; throws an {@link EmailError}. */
export function verifyEmailCode(code: string): Promise<{ email?: string; verified?: boolean }> {
  return emailPost('/api/me/email/verify', { code });
}
