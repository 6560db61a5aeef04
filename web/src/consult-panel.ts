// The consultation pages (docs/consultations.md): the list of published consultations, a page per consultation
// (summary, phase timeline, what one can do now, the scenarios with their indicators and their delta layer on the
// map, comments in threads, proposals with supports and answers, surveys, results), the moderation queue and the
// public moderation log, "My participation" (download, erase), and a planner's form for a new consultation. One
// panel on the left, like the scenario editor; comments and proposals with a place are drawn on the map.

import type { GeoJSONSource, Map as MlMap } from 'maplibre-gl';
import { ApiError, listScenarios, type Scenario } from './api';
import {
  ACTIONS,
  FLAG_REASONS,
  PHASES,
  PROPOSAL_STATUSES,
  STANCES,
  addMilestone,
  answerProposal,
  createConsultation,
  deleteComment,
  deleteMe,
  editComment,
  flag,
  forkScenario,
  getConsultation,
  getEmailStatus,
  getModerationLog,
  getParticipation,
  getQueue,
  getResults,
  getSurveyResponse,
  listComments,
  listConsultations,
  listProposals,
  moderate,
  postComment,
  postProposal,
  putSurveyResponse,
  questionResult,
  rankedProposals,
  sendEmailCode,
  verifyEmailCode,
  resultsUrl,
  setFollow,
  setSupport,
  voteComment,
  withdrawProposal,
  type Answers,
  type Comment,
  type CommentSort,
  type Consultation,
  type EmailStatus,
  type LogEntry,
  type ModAction,
  type Phase,
  type Proposal,
  type ProposalSort,
  type ProposalStatus,
  type QueueItem,
  type Results,
  type Stance,
  type Survey,
} from './consult-api';
import {
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
  checkEmail,
  commentActions,
  dateRange,
  defaultPhases,
  emailErrorMessage,
  fromLocalInput,
  normalizeCode,
  parseTarget,
  pickLang,
  pickText,
  requirements,
  stanceShares,
  supportState,
  threadRows,
  timeline,
  toLocalInput,
  type DraftPhase,
  type Msg,
} from './consult';
import { field, openFormDialog, radioGroup, radioValue } from './consult-dialog';
import { el } from './dom';
import { fmtDateTime, fmtNumber, lang, onLangChange, t } from './i18n';
import { CLOSED_COLOR, DELTA_CLASSES } from './scenarios';
import type { Session, SessionState } from './session';

export type ConsultView = 'list' | 'page' | 'queue' | 'log' | 'me' | 'create';
export type ConsultTab = 'overview' | 'comments' | 'proposals' | 'surveys' | 'results';
export const TABS: ConsultTab[] = ['overview', 'comments', 'proposals', 'surveys', 'results'];

/** Threads read at once (the server gives at most 100). */
const PAGE = 50;

export const CONSULT_SOURCE = 'app-consult';
export const CONSULT_LAYERS = { fill: 'app-consult-fill', line: 'app-consult-line', points: 'app-consult-points' } as const;
export const STANCE_COLORS: Record<Stance, string> = { for: '#1e6b2f', neutral: '#545454', against: '#a50e0e' };
const PROPOSAL_COLOR = '#6a1b9a';
const DRAFT_COLOR = '#0b57d0';

/** A GeoJSON feature of the consultation's layer. */
type Feature = { type: 'Feature'; properties: Record<string, unknown>; geometry: { type: string; coordinates?: unknown; geometries?: unknown[] } };

/** Nodes without the nulls of conditional parts. */
function nodes(list: (Node | null | undefined | false)[]): Node[] {
  return list.filter((n): n is Node => !!n);
}

export interface ConsultHooks {
  session: SessionState;
  /** Opens the sign-in dialog with a reason (a message key); resolves true once signed in. */
  signIn: (reasonKey: string) => Promise<boolean>;
  /** The consultation shown changed (for the URL); undefined: none. */
  onOpen: (id: string | undefined) => void;
  /** Said to screen readers. */
  announce: (text: string) => void;
  /** The panel's heading (the panel head's h2). */
  setTitle: (text: string, lang?: string) => void;
  /** Shows a scenario's latest results on the map (the delta layer); resolves whether it has any. */
  showScenario?: (id: string) => Promise<boolean>;
  hideScenario?: () => void;
  /** Whether the scenario has a finished run on the map now. */
  hasResults?: (id: string) => boolean;
  /** Opens the scenario editor on a scenario with a banner at its top (the proposal being drafted). */
  editScenario?: (id: string, banner: HTMLElement) => void;
  /** Closes the editor (its banner goes) and shows this panel again. */
  backFromEditor?: () => void;
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function time(iso: string | undefined | null): HTMLElement | string {
  return iso ? el('time', { datetime: iso }, fmtDateTime(iso)) : '';
}

function fmtDate(iso: string | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : new Intl.DateTimeFormat(lang(), { dateStyle: 'medium' }).format(d);
}

/** Paragraphs of a text (blank lines between them). */
function paragraphs(text: string, attrs: Record<string, string | undefined> = {}): HTMLElement[] {
  return text
    .split(/\n\s*\n/)
    .map((p) => p.trim())
    .filter(Boolean)
    .map((p) => el('p', attrs, p));
}

/** A stance as a badge: a symbol and the word (not colour alone). */
export function stanceBadge(s: Stance): HTMLElement {
  const sym = s === 'for' ? '+' : s === 'against' ? '−' : '○';
  return el('span', { class: `badge stance stance-${s}`, 'data-stance': s }, el('span', { 'aria-hidden': 'true' }, `${sym} `), t(`consult.stance.${s}`));
}

export function statusBadge(s: ProposalStatus | string): HTMLElement {
  return el('span', { class: `badge status status-${s}`, 'data-status': s }, t(`consult.status.${s}`));
}

export function phaseLabel(p: string): string {
  return t(`consult.phase.${p}`);
}

/** "What you can do now", in words. */
export function allowedText(c: Pick<Consultation, 'allowed'>): string {
  const can = ACTIONS.filter((a) => c.allowed?.[a]).map((a) => t(`consult.can.${a}`));
  return can.length ? t('consult.canNow', { list: can.join(', ') }) : t('consult.canNothing');
}

export class ConsultPanel {
  view: ConsultView = 'list';
  tab: ConsultTab = 'overview';
  consultation: Consultation | undefined;
  private list: Consultation[] = [];
  private comments: Comment[] = [];
  private commentTotal: number | undefined;
  private proposals: Proposal[] = [];
  private results: Results | undefined;
  private commentSort: CommentSort = 'new';
  private proposalSort: ProposalSort = 'supports';
  private proposalStatus = '';
  private shownScenario: string | undefined;
  private map: MlMap | undefined;
  /** What the next click on the map places: a comment's or a new proposal's location. */
  placing: 'comment' | 'proposal' | undefined;
  private commentLocation: [number, number] | undefined;
  private proposalLocation: [number, number] | undefined;
  private generation = 0;
  /** The proposal being drafted in the scenario editor: the fork and its consultation. */
  private fork: { scenario: string; consultation: string } | undefined;
  private newProposalOpen = false;
  /** The session changed while the panel was hidden: read again when it shows. */
  private stale = false;
  private logAll = false;

  // persistent form controls (what is typed survives a re-render)
  private readonly commentBody = el('textarea', { rows: '4', maxlength: '4000' });
  private readonly commentScenario = el('select', {});
  private readonly commentPin = el('button', { type: 'button', class: 'text-button', id: 'consult-comment-pin', 'aria-pressed': 'false' });
  private readonly proposalTitle = el('input', { type: 'text', maxlength: '150', autocomplete: 'off' });
  private readonly proposalBody = el('textarea', { rows: '4', maxlength: '4000' });
  private readonly proposalPin = el('button', { type: 'button', class: 'text-button', id: 'consult-proposal-pin', 'aria-pressed': 'false' });
  private readonly forkBase = el('select', {});
  private readonly forkTitle = el('input', { type: 'text', maxlength: '150', autocomplete: 'off' });
  private readonly forkBody = el('textarea', { rows: '3', maxlength: '4000' });
  private readonly forkStatus = el('p', { class: 'scenario-status', id: 'consult-fork-status', role: 'status', 'aria-live': 'polite' });
  private readonly status = el('p', { class: 'consult-status', id: 'consult-status', role: 'status', 'aria-live': 'polite' });
  private readonly panels = new Map<ConsultTab, HTMLElement>();
  // the caller's e-mail address ("My participation") and what a consultation asks of participants
  private email: EmailStatus | undefined;
  /** Whose address `email` is (a new session reads it again). */
  private emailOf: string | undefined;
  private emailLoading: Promise<void> | undefined;
  /** Sending a code (`add`) or typing the code sent to `emailPending` (`code`). */
  private emailStep: 'add' | 'code' = 'add';
  private emailPending: { email: string; minutes: number } | undefined;
  private emailMsg: (Msg & { error?: boolean }) | undefined;
  private emailBusy = false;
  /** "My participation" was opened from a consultation's notice: its back button returns there. */
  private meFromPage = false;
  private readonly emailInput = el('input', { type: 'email', autocomplete: 'email', maxlength: '254', spellcheck: 'false' });
  private readonly codeInput = el('input', { type: 'text', inputmode: 'numeric', autocomplete: 'one-time-code', maxlength: '7' });
  private readonly emailMessage = el('p', { class: 'form-message', id: 'consult-email-message', role: 'status', 'aria-live': 'polite' });
  private readonly needsBox = el('div', { class: 'consult-needs', id: 'consult-needs', hidden: '' });
  private readonly tabButtons = new Map<ConsultTab, HTMLButtonElement>();

  constructor(
    private readonly root: HTMLElement,
    private readonly hooks: ConsultHooks,
  ) {
    this.commentPin.addEventListener('click', () => this.togglePlacing('comment'));
    this.proposalPin.addEventListener('click', () => this.togglePlacing('proposal'));
    for (const tab of TABS) {
      this.panels.set(tab, el('div', { role: 'tabpanel', id: `consult-panel-${tab}`, 'aria-labelledby': `consult-tab-${tab}`, class: 'consult-tabpanel', tabindex: '0' }));
      const b = el('button', { type: 'button', role: 'tab', id: `consult-tab-${tab}`, 'aria-controls': `consult-panel-${tab}`, 'data-tab': tab });
      b.addEventListener('click', () => this.setTab(tab, false));
      b.addEventListener('keydown', (e) => {
        const i = TABS.indexOf(tab);
        const next = e.key === 'ArrowRight' ? TABS[(i + 1) % TABS.length] : e.key === 'ArrowLeft' ? TABS[(i + TABS.length - 1) % TABS.length] : e.key === 'Home' ? TABS[0] : e.key === 'End' ? TABS[TABS.length - 1] : undefined;
        if (next) {
          e.preventDefault();
          this.setTab(next, true);
        }
      });
      this.tabButtons.set(tab, b);
    }
    onLangChange(() => this.render());
    let who: string | undefined;
    hooks.session.onChange((s) => {
      if (s?.id === who) return;
      who = s?.id;
      this.forgetEmail();
      // what the pages show depends on who asks (own votes, supports, follows; drafts; the queue)
      if (this.root.closest('[hidden]')) {
        this.stale = true;
        return;
      }
      this.refreshForSession();
    });
  }

  /** Reads the view again for the account now signed in (or for nobody). */
  private refreshForSession(): void {
    const s = this.session;
    this.stale = false;
    {
      if (this.view === 'page' && this.consultation) void this.open(this.consultation.id, this.tab);
      else if (this.view === 'queue' && !canModerate(s)) void this.showList();
      else if (this.view === 'me' && !s) void this.showList();
      else if (this.view === 'list') void this.showList();
      else this.render();
    }
  }

  private get session(): Session | undefined {
    return this.hooks.session.current;
  }

  private say(text: string, error = false): void {
    this.status.textContent = text;
    this.status.classList.toggle('error', error);
  }

  // ---- the map

  /** Adds the layers of located comments and proposals (and of a place being pinned). */
  setMap(map: MlMap, beforeId?: string): void {
    this.map = map;
    if (map.getSource(CONSULT_SOURCE)) return;
    map.addSource(CONSULT_SOURCE, { type: 'geojson', data: { type: 'FeatureCollection', features: [] } });
    const before = beforeId && map.getLayer(beforeId) ? beforeId : undefined;
    map.addLayer({ id: CONSULT_LAYERS.fill, type: 'fill', source: CONSULT_SOURCE, filter: ['==', ['geometry-type'], 'Polygon'], paint: { 'fill-color': PROPOSAL_COLOR, 'fill-opacity': 0.18 } }, before);
    map.addLayer({
      id: CONSULT_LAYERS.line,
      type: 'line',
      source: CONSULT_SOURCE,
      filter: ['any', ['==', ['geometry-type'], 'LineString'], ['==', ['geometry-type'], 'Polygon']],
      paint: { 'line-color': PROPOSAL_COLOR, 'line-width': 3, 'line-dasharray': [2, 1] },
    }, before);
    map.addLayer({
      id: CONSULT_LAYERS.points,
      type: 'circle',
      source: CONSULT_SOURCE,
      filter: ['==', ['geometry-type'], 'Point'],
      paint: {
        'circle-radius': ['match', ['get', 'kind'], 'proposal', 8, 'draft', 9, 6],
        'circle-color': ['match', ['get', 'kind'], 'proposal', PROPOSAL_COLOR, 'draft', DRAFT_COLOR, ['match', ['get', 'stance'], 'for', STANCE_COLORS.for, 'against', STANCE_COLORS.against, STANCE_COLORS.neutral]],
        'circle-stroke-color': '#ffffff',
        'circle-stroke-width': 2,
      },
    }, before);
    this.updateMap();
  }

  /** The located comments and proposals of the consultation shown, and the place being pinned. */
  mapFeatures(): Feature[] {
    const out: Feature[] = [];
    if (this.view !== 'page' || !this.consultation || this.root.closest('[hidden]')) return out;
    for (const c of this.comments)
      if (c.location && c.state !== 'deleted' && c.state !== 'hidden')
        out.push({ type: 'Feature', properties: { kind: 'comment', id: c.id, stance: c.stance }, geometry: { type: 'Point', coordinates: c.location } });
    for (const p of this.proposals) {
      if (p.state === 'hidden') continue;
      if (p.geometry && typeof p.geometry.type === 'string') out.push({ type: 'Feature', properties: { kind: 'proposal-geometry', id: p.id }, geometry: p.geometry });
      if (p.location) out.push({ type: 'Feature', properties: { kind: 'proposal', id: p.id }, geometry: { type: 'Point', coordinates: p.location } });
    }
    for (const loc of [this.commentLocation, this.proposalLocation]) if (loc) out.push({ type: 'Feature', properties: { kind: 'draft' }, geometry: { type: 'Point', coordinates: loc } });
    return out;
  }

  updateMap(): void {
    const src = this.map?.getSource<GeoJSONSource>(CONSULT_SOURCE);
    if (!src) return;
    const features = this.mapFeatures();
    src.setData({ type: 'FeatureCollection', features } as unknown as Parameters<GeoJSONSource['setData']>[0]);
    this.map!.getCanvas().dataset.consultFeatures = String(features.length); // for the tests
  }

  /** The comment or proposal drawn on the map near a point (while a page is open), if any. */
  featureAt(point: { x: number; y: number }, radius = 6): { kind: 'comment' | 'proposal'; id: string } | undefined {
    if (!this.map || this.view !== 'page' || !this.map.getLayer(CONSULT_LAYERS.points)) return undefined;
    const box: [[number, number], [number, number]] = [
      [point.x - radius, point.y - radius],
      [point.x + radius, point.y + radius],
    ];
    const f = this.map.queryRenderedFeatures(box, { layers: [CONSULT_LAYERS.points, CONSULT_LAYERS.line] }).find((x) => typeof x.properties?.id === 'string');
    if (!f) return undefined;
    return { kind: f.properties.kind === 'comment' ? 'comment' : 'proposal', id: f.properties.id as string };
  }

  /** Shows a comment or proposal clicked on the map: its tab, scrolled to and focused. */
  reveal(hit: { kind: 'comment' | 'proposal'; id: string }): void {
    this.setTab(hit.kind === 'comment' ? 'comments' : 'proposals', false);
    const item = this.root.querySelector<HTMLElement>(`[data-${hit.kind}="${CSS.escape(hit.id)}"] article`);
    if (!item) return;
    item.tabIndex = -1;
    item.scrollIntoView({ block: 'center' });
    item.focus({ preventScroll: true });
  }

  private togglePlacing(kind: 'comment' | 'proposal'): void {
    this.placing = this.placing === kind ? undefined : kind;
    if (this.map) this.map.getCanvas().style.cursor = this.placing ? 'crosshair' : '';
    this.renderPins();
    if (this.placing) this.say(t('consult.pin.hint'));
  }

  /** A click on the map (or Enter on the focused map) while pinning: the location of the comment or proposal. */
  place(at: [number, number]): void {
    const p: [number, number] = [Number(at[0].toFixed(6)), Number(at[1].toFixed(6))];
    if (this.placing === 'comment') this.commentLocation = p;
    else if (this.placing === 'proposal') this.proposalLocation = p;
    else return;
    const which = this.placing;
    this.placing = undefined;
    if (this.map) this.map.getCanvas().style.cursor = '';
    this.renderPins();
    this.updateMap();
    this.say(t('consult.pin.set', { lon: p[0].toFixed(5), lat: p[1].toFixed(5) }));
    (which === 'comment' ? this.commentPin : this.proposalPin).focus();
  }

  /** Escape while pinning. */
  cancelPlacing(): boolean {
    if (!this.placing) return false;
    this.placing = undefined;
    if (this.map) this.map.getCanvas().style.cursor = '';
    this.renderPins();
    this.say(t('consult.pin.cancelled'));
    return true;
  }

  private renderPins(): void {
    for (const [b, kind, loc] of [
      [this.commentPin, 'comment', this.commentLocation],
      [this.proposalPin, 'proposal', this.proposalLocation],
    ] as const) {
      b.setAttribute('aria-pressed', String(this.placing === kind));
      b.classList.toggle('active', this.placing === kind);
      b.textContent = this.placing === kind ? t('consult.pin.picking') : loc ? t('consult.pin.move') : t('consult.pin.button');
      const info = this.root.querySelector(`#consult-${kind}-where`);
      if (info) info.textContent = loc ? t('consult.pin.at', { lon: loc[0].toFixed(5), lat: loc[1].toFixed(5) }) : t('consult.pin.none');
      const clear = this.root.querySelector<HTMLButtonElement>(`#consult-${kind}-unpin`);
      if (clear) clear.hidden = !loc;
    }
  }

  /** Called when the panel is hidden or shown: the contributions leave or return to the map. */
  visibilityChanged(): void {
    if (this.root.closest('[hidden]')) this.cancelPlacing();
    else if (this.stale) this.refreshForSession();
    this.updateMap();
  }

  // ---- views

  async showList(): Promise<void> {
    this.view = 'list';
    this.consultation = undefined;
    this.hooks.onOpen(undefined);
    this.clearScenario();
    const gen = ++this.generation;
    this.render();
    this.say(t('consult.loading'));
    try {
      const all = await listConsultations();
      if (gen !== this.generation) return;
      this.list = all;
      this.say('');
    } catch (e) {
      if (gen !== this.generation) return;
      this.say(t('consult.error', { detail: errText(e) }), true);
    }
    this.render();
    this.updateMap();
  }

  /** Opens a consultation's page (from the list, a link or the URL). */
  async open(id: string, tab: ConsultTab = 'overview'): Promise<void> {
    const gen = ++this.generation;
    const same = this.consultation?.id === id;
    this.view = 'page';
    if (!same) {
      this.consultation = undefined;
      this.comments = [];
      this.proposals = [];
      this.results = undefined;
      this.commentLocation = undefined;
      this.proposalLocation = undefined;
      this.newProposalOpen = false;
      this.clearScenario();
    }
    this.tab = tab;
    this.hooks.onOpen(id);
    if (!same) this.render();
    this.say(t('consult.loading'));
    try {
      const [c, comments, proposals] = await Promise.all([getConsultation(id), listComments(id, { sort: this.commentSort, limit: PAGE }), listProposals(id, this.proposalQuery())]);
      if (gen !== this.generation) return;
      this.consultation = c;
      this.comments = comments.items;
      this.commentTotal = comments.total;
      this.proposals = proposals;
      this.say('');
    } catch (e) {
      if (gen !== this.generation) return;
      this.say(e instanceof ApiError && e.status === 404 ? t('consult.notFound', { id }) : t('consult.error', { detail: errText(e) }), true);
      this.render();
      return;
    }
    this.render();
    this.updateMap();
    if (!same) this.fitArea();
    if (tab === 'results') void this.loadResults();
  }

  private fitArea(): void {
    const a = this.consultation?.area;
    if (!this.map || !a || a.length !== 4 || !a.every((n) => Number.isFinite(n))) return;
    this.map.fitBounds([a[0]!, a[1]!, a[2]!, a[3]!], { padding: 40, duration: 600, maxZoom: 17 });
  }

  async showQueue(): Promise<void> {
    this.view = 'queue';
    const gen = ++this.generation;
    this.clearScenario();
    this.hooks.onOpen(undefined);
    this.render();
    if (!canModerate(this.session)) return;
    this.say(t('consult.loading'));
    try {
      const items = await getQueue();
      if (gen !== this.generation) return;
      this.say(items.length ? t('consult.queue.count', { n: items.length }) : t('consult.queue.empty'));
      this.renderQueue(items);
    } catch (e) {
      if (gen === this.generation) this.say(t('consult.error', { detail: errText(e) }), true);
    }
  }

  async showLog(): Promise<void> {
    this.view = 'log';
    const gen = ++this.generation;
    this.render();
    this.say(t('consult.loading'));
    try {
      const entries = await getModerationLog({ consultation: this.logAll ? undefined : this.consultation?.id, limit: 200 });
      if (gen !== this.generation) return;
      this.say(entries.length ? '' : t('consult.log.empty'));
      this.renderLog(entries);
    } catch (e) {
      if (gen === this.generation) this.say(t('consult.error', { detail: errText(e) }), true);
    }
  }

  /** "My participation"; `fromPage`: opened from a consultation's notice (its back button returns there). */
  showMe(fromPage = false): void {
    this.view = 'me';
    this.meFromPage = fromPage && !!this.consultation;
    ++this.generation;
    this.say('');
    if (this.emailStep === 'add' && !this.emailBusy) this.emailMsg = undefined;
    this.render();
    void this.loadEmail().then(() => {
      if (this.view === 'me') this.renderEmail();
    });
    if (fromPage) this.root.querySelector<HTMLElement>('#consult-email-title')?.focus();
  }

  async showCreate(): Promise<void> {
    this.view = 'create';
    const gen = ++this.generation;
    this.clearScenario();
    this.hooks.onOpen(undefined);
    this.say('');
    this.render();
    try {
      const scenarios = await listScenarios();
      if (gen !== this.generation) return;
      this.renderCreate(scenarios);
    } catch (e) {
      if (gen === this.generation) this.say(t('consult.error', { detail: errText(e) }), true);
    }
  }

  /** Re-renders the current view. */
  render(): void {
    const focusId = document.activeElement instanceof HTMLElement && this.root.contains(document.activeElement) ? document.activeElement.id : '';
    switch (this.view) {
      case 'list':
        this.renderList();
        break;
      case 'page':
        this.renderPage();
        break;
      case 'queue':
        this.hooks.setTitle(t('consult.queue.title'));
        this.root.replaceChildren(this.backButton(), canModerate(this.session) ? el('p', { class: 'panel-intro' }, t('consult.queue.intro')) : el('p', { class: 'panel-intro' }, t('consult.queue.only')), this.status, el('ul', { class: 'consult-queue', id: 'consult-queue' }));
        break;
      case 'log':
        this.renderLogFrame();
        break;
      case 'me':
        this.renderMe();
        break;
      case 'create':
        this.hooks.setTitle(t('consult.create.title'));
        this.root.replaceChildren(this.backButton(), this.status, el('div', { id: 'consult-create' }));
        break;
    }
    if (focusId) document.getElementById(focusId)?.focus({ preventScroll: true });
  }

  private backButton(toList = true): HTMLButtonElement {
    const page = !toList && this.consultation;
    const b = el('button', { type: 'button', class: 'link-button consult-back', id: 'consult-back' }, `← ${page ? t('consult.backToPage') : t('consult.backToList')}`);
    b.addEventListener('click', () => {
      if (page && this.consultation) void this.open(this.consultation.id, this.tab);
      else void this.showList();
    });
    return b;
  }

  // ---- the list

  private renderList(): void {
    this.hooks.setTitle(t('consult.title'));
    const s = this.session;
    const tools = el('div', { class: 'consult-tools' });
    if (canPlan(s)) {
      const b = el('button', { type: 'button', class: 'text-button primary', id: 'consult-new' }, t('consult.create.open'));
      b.addEventListener('click', () => void this.showCreate());
      tools.append(b);
    }
    if (canModerate(s)) {
      const b = el('button', { type: 'button', class: 'text-button', id: 'consult-queue-open' }, t('consult.queue.title'));
      b.addEventListener('click', () => void this.showQueue());
      tools.append(b);
    }
    const logButton = el('button', { type: 'button', class: 'text-button', id: 'consult-log-open' }, t('consult.log.title'));
    logButton.addEventListener('click', () => {
      this.logAll = true;
      void this.showLog();
    });
    tools.append(logButton);
    const items = this.list.map((c) => {
      const l = lang();
      const range = dateRange(c.phases ?? []);
      const link = el('a', { href: `?consultation=${encodeURIComponent(c.id)}`, class: 'consult-link', 'data-consultation': c.id, lang: pickLang(c.title, l) }, pickText(c.title, l) || c.id);
      link.addEventListener('click', (e) => {
        if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
        e.preventDefault();
        void this.open(c.id);
      });
      const counts = c.counts ?? {};
      return el(
        'li',
        { class: 'consult-item' },
        el('h3', {}, link),
        c.summary ? el('p', { class: 'consult-summary', lang: pickLang(c.summary, l) }, pickText(c.summary, l)) : null,
        el(
          'p',
          { class: 'consult-meta' },
          el('span', { class: `badge phase phase-${c.currentPhase ?? 'upcoming'}` }, phaseLabel(c.currentPhase ?? 'upcoming')),
          c.published === false ? el('span', { class: 'badge draft' }, t('consult.draft')) : null,
          range.start ? el('span', {}, t('consult.dates', { start: fmtDate(range.start), end: fmtDate(range.end) })) : null,
        ),
        el('p', { class: 'consult-counts muted' }, t('consult.countsLine', { participants: counts.participants ?? 0, comments: counts.comments ?? 0, proposals: counts.proposals ?? 0 })),
      );
    });
    this.root.replaceChildren(
      el('p', { class: 'panel-intro' }, t('consult.intro')),
      tools,
      this.status,
      el('ul', { class: 'consult-list', id: 'consult-list', 'aria-label': t('consult.title') }, ...items),
      ...nodes([!this.list.length && !this.status.textContent ? el('p', { class: 'muted' }, t('consult.none')) : null]),
    );
  }

  // ---- a consultation's page

  private renderPage(): void {
    const c = this.consultation;
    const l = lang();
    if (!c) {
      this.hooks.setTitle(t('consult.title'));
      this.root.replaceChildren(this.backButton(), this.status);
      return;
    }
    this.hooks.setTitle(pickText(c.title, l) || c.id, pickLang(c.title, l));
    const phase = c.currentPhase ?? 'upcoming';
    const range = dateRange(c.phases);
    const follow = el('button', { type: 'button', class: 'text-button', id: 'consult-follow', 'aria-pressed': String(!!c.following) }, c.following ? t('consult.following') : t('consult.follow'));
    follow.addEventListener('click', () => void this.toggleFollow());
    const share = el('a', { href: `?consultation=${encodeURIComponent(c.id)}`, class: 'consult-share', id: 'consult-share' }, t('consult.link'));
    share.addEventListener('click', (e) => {
      e.preventDefault();
      const url = new URL(`?consultation=${encodeURIComponent(c.id)}`, window.location.href).href;
      void navigator.clipboard?.writeText(url).then(
        () => this.say(t('consult.linkCopied')),
        () => this.say(url),
      );
    });
    const counts = c.counts ?? {};
    const head = el(
      'div',
      { class: 'consult-head' },
      c.summary ? el('p', { class: 'consult-summary', lang: pickLang(c.summary, l) }, pickText(c.summary, l)) : null,
      el(
        'p',
        { class: 'consult-meta', id: 'consult-phase' },
        el('span', { class: `badge phase phase-${phase}`, 'data-phase': phase }, t('consult.now', { phase: phaseLabel(phase) })),
        c.published === false ? el('span', { class: 'badge draft' }, t('consult.draft')) : null,
        range.start ? el('span', {}, t('consult.dates', { start: fmtDate(range.start), end: fmtDate(range.end) })) : null,
      ),
      el('p', { class: 'consult-allowed', id: 'consult-allowed' }, allowedText(c)),
      this.needsBox,
      el(
        'dl',
        { class: 'consult-counts-dl', id: 'consult-counts' },
        ...(['participants', 'comments', 'proposals', 'supports'] as const).flatMap((k) => [
          el('div', { 'data-count': k }, el('dt', {}, t(`consult.counts.${k}`)), el('dd', {}, fmtNumber(counts[k] ?? 0, 0))),
        ]),
      ),
      el('div', { class: 'consult-tools' }, this.session ? follow : null, share),
    );
    const tablist = el('div', { role: 'tablist', class: 'consult-tabs', 'aria-label': t('consult.sections') });
    for (const tab of TABS) {
      const b = this.tabButtons.get(tab)!;
      const n = tab === 'comments' ? (counts.comments ?? this.comments.length) : tab === 'proposals' ? (counts.proposals ?? this.proposals.length) : undefined;
      b.textContent = n === undefined ? t(`consult.tab.${tab}`) : `${t(`consult.tab.${tab}`)} (${n})`;
      b.setAttribute('aria-selected', String(tab === this.tab));
      b.tabIndex = tab === this.tab ? 0 : -1;
      tablist.append(b);
      this.panels.get(tab)!.hidden = tab !== this.tab;
    }
    this.root.replaceChildren(this.backButton(), head, tablist, this.status, ...this.panels.values());
    this.renderTab();
    this.renderNeeds();
    if (this.session && (c.requireVerifiedEmail || (c.minAccountAgeHours ?? 0) > 0)) void this.loadEmail().then(() => this.renderNeeds());
  }

  /** What the consultation asks of the signed-in participant that they lack: a verified address, an older account. */
  private renderNeeds(): void {
    const c = this.consultation;
    const s = this.session;
    const need = c && this.view === 'page' && canParticipate(s) ? requirements(c, true, this.emailOf === s?.id ? this.email : undefined, Date.now()) : undefined;
    this.needsBox.hidden = !need;
    if (!need) {
      this.needsBox.replaceChildren();
      return;
    }
    const verify = el('button', { type: 'button', class: 'text-button primary', id: 'consult-needs-verify' }, t('consult.needs.verify'));
    verify.addEventListener('click', () => this.showMe(true));
    this.needsBox.replaceChildren(
      ...nodes([
        el('p', { class: 'consult-needs-title' }, el('strong', {}, t('consult.needs.title'))),
        need.email ? el('p', { id: 'consult-needs-email' }, t('consult.needs.email')) : null,
        need.ageHours > 0 ? el('p', { id: 'consult-needs-age' }, t('consult.needs.age', { hours: need.ageHours })) : null,
        need.email ? verify : null,
      ]),
    );
  }

  setTab(tab: ConsultTab, focus: boolean): void {
    this.tab = tab;
    for (const [k, b] of this.tabButtons) {
      b.setAttribute('aria-selected', String(k === tab));
      b.tabIndex = k === tab ? 0 : -1;
      this.panels.get(k)!.hidden = k !== tab;
    }
    if (focus) this.tabButtons.get(tab)!.focus();
    this.renderTab();
    if (tab === 'results') void this.loadResults();
    if (tab === 'surveys') void this.loadSurveyResponses();
  }

  private renderTab(): void {
    const c = this.consultation;
    if (!c) return;
    const p = this.panels.get(this.tab)!;
    switch (this.tab) {
      case 'overview':
        p.replaceChildren(...nodes(this.overview(c)));
        break;
      case 'comments':
        p.replaceChildren(...nodes(this.commentsTab(c)));
        this.renderPins();
        break;
      case 'proposals':
        p.replaceChildren(...nodes(this.proposalsTab(c)));
        this.renderPins();
        break;
      case 'surveys':
        p.replaceChildren(...nodes(this.surveysTab(c)));
        break;
      case 'results':
        p.replaceChildren(...nodes(this.resultsTab(c)));
        break;
    }
  }

  /** "Sign in to take part": opens the sign-in dialog. */
  private signInNote(): HTMLElement {
    const b = el('button', { type: 'button', class: 'text-button primary consult-signin' }, t('consult.signIn'));
    b.addEventListener('click', () => void this.hooks.signIn('consult.signIn'));
    return el('div', { class: 'signin-note consult-signin-note' }, el('p', { class: 'panel-intro' }, t('consult.signInWhy')), b);
  }

  private scenarioName(id: string | null | undefined): string {
    if (!id) return t('consult.general');
    const s = this.consultation?.scenarioSummaries?.find((x) => x.id === id);
    return s?.name || id.replace(/^urn:ngsi-ld:Scenario:/, '');
  }

  // ---- overview: description, timeline, scenarios

  private overview(c: Consultation): (Node | null)[] {
    const l = lang();
    const now = Date.now();
    const steps = timeline(c, now);
    const tl = el(
      'ol',
      { class: 'timeline', id: 'consult-timeline' },
      ...steps.map((s) =>
        el(
          'li',
          { class: `step step-${s.state}`, 'data-phase': s.phase, ...(s.state === 'current' ? { 'aria-current': 'step' } : {}) },
          el('span', { class: 'step-name' }, phaseLabel(s.phase)),
          s.state === 'current' ? el('span', { class: 'badge now' }, t('consult.nowShort')) : null,
          el('span', { class: 'step-dates' }, t('consult.dates', { start: fmtDate(s.start), end: fmtDate(s.end) })),
          el('span', { class: 'step-what muted' }, t(`consult.phaseWhat.${s.phase}`)),
        ),
      ),
    );
    const summaries = c.scenarioSummaries?.length ? c.scenarioSummaries : c.scenarios.map((id) => ({ id, name: undefined, run: undefined, indicators: [] }));
    const scen = summaries.map((s) => {
      const shown = this.shownScenario === s.id;
      const b = el('button', { type: 'button', class: `text-button${shown ? ' active' : ''}`, 'aria-pressed': String(shown), 'data-scenario': s.id }, shown ? t('consult.scenario.hide') : t('consult.scenario.show'));
      b.addEventListener('click', () => void this.toggleScenario(s.id));
      return el(
        'li',
        { class: 'consult-scenario', 'data-scenario': s.id },
        el('h4', {}, s.name || this.scenarioName(s.id)),
        s.indicators?.length
          ? el('ul', { class: 'indicators' }, ...s.indicators.map((i) => el('li', { 'data-indicator': i.key, lang: pickLang(i.text, l) }, pickText(i.text, l) || `${i.key}: ${i.value ?? ''} ${i.unit ?? ''}`)))
          : el('p', { class: 'muted' }, s.run === null ? t('consult.scenario.noRun') : t('consult.scenario.noIndicators')),
        b,
        shown ? this.deltaLegend() : null,
      );
    });
    return [
      el('h3', {}, t('consult.about')),
      ...(c.description ? paragraphs(pickText(c.description, l), { lang: pickLang(c.description, l) }) : []),
      el('h3', { id: 'consult-timeline-title' }, t('consult.timeline')),
      tl,
      el('h3', {}, t('consult.scenarios')),
      scen.length ? el('ul', { class: 'consult-scenarios', id: 'consult-scenarios' }, ...scen) : el('p', { class: 'muted' }, t('consult.scenario.none')),
    ];
  }

  private deltaLegend(): HTMLElement {
    const item = (kind: 'line' | 'dash', color: string, label: string) =>
      el('li', {}, el('span', { class: `swatch swatch-${kind}`, style: `--c: ${color}`, 'aria-hidden': 'true' }), el('span', {}, label));
    return el(
      'div',
      { class: 'consult-legend', id: 'consult-delta-legend' },
      el('p', { class: 'legend-title', id: 'consult-legend-title' }, t('scenarios.legend')),
      el(
        'ul',
        { class: 'legend-items', 'aria-labelledby': 'consult-legend-title' },
        ...DELTA_CLASSES.map((d) => item('line', d.color, t(`scenarios.delta.${d.key}`))),
        item('dash', CLOSED_COLOR, t('scenarios.delta.closed')),
      ),
    );
  }

  private async toggleScenario(id: string): Promise<void> {
    if (this.shownScenario === id) {
      this.clearScenario();
      this.say(t('consult.scenario.hidden'));
      this.renderTab();
      return;
    }
    if (!this.hooks.showScenario) return;
    this.say(t('consult.loading'));
    const ok = await this.hooks.showScenario(id);
    this.shownScenario = ok ? id : undefined;
    this.say(ok ? t('consult.scenario.shown', { name: this.scenarioName(id) }) : t('consult.scenario.noRun'), !ok);
    this.renderTab();
  }

  private clearScenario(): void {
    if (this.shownScenario) this.hooks.hideScenario?.();
    this.shownScenario = undefined;
  }

  private async toggleFollow(): Promise<void> {
    const c = this.consultation;
    if (!c) return;
    const on = !c.following;
    try {
      await setFollow(c.id, on);
      c.following = on;
      this.say(on ? t('consult.followed') : t('consult.unfollowed'));
      this.renderPage();
      document.getElementById('consult-follow')?.focus();
    } catch (e) {
      this.say(t('consult.error', { detail: errText(e) }), true);
    }
  }

  // ---- comments

  private commentsTab(c: Consultation): (Node | null)[] {
    const s = this.session;
    const sort = el('select', { id: 'consult-comment-sort' }, ...(['new', 'old', 'top'] as CommentSort[]).map((k) => el('option', { value: k }, t(`consult.sort.${k}`))));
    sort.value = this.commentSort;
    sort.addEventListener('change', () => {
      this.commentSort = sort.value as CommentSort;
      void this.reloadComments();
    });
    let form: Node;
    if (!s) form = this.signInNote();
    else if (!canParticipate(s)) form = el('p', { class: 'panel-intro' }, t('consult.cannotTakePart'));
    else if (!c.allowed?.comment) form = el('p', { class: 'panel-intro', id: 'consult-comment-closed' }, t('consult.closed.comment', { phase: phaseLabel(c.currentPhase ?? 'upcoming') }));
    else form = this.commentForm(c);
    const rows = threadRows(this.comments);
    return [
      el('h3', { id: 'consult-comments-title' }, t('consult.comments')),
      form,
      el('div', { class: 'field inline' }, el('label', { for: 'consult-comment-sort' }, t('consult.sortBy')), sort),
      rows.length
        ? el('ol', { class: 'comments', id: 'consult-comments', 'aria-labelledby': 'consult-comments-title' }, ...rows.map((r) => this.commentItem(c, r.comment, r.depth)))
        : el('p', { class: 'muted', id: 'consult-comments' }, t('consult.noComments')),
      this.moreCommentsButton(),
    ];
  }

  /** The threads loaded: the root comments. */
  private rootCount(): number {
    const ids = new Set(this.comments.map((c) => c.id));
    return this.comments.filter((c) => !c.parent || !ids.has(c.parent)).length;
  }

  /** "Show more threads" when the server has more than the pages read. */
  private moreCommentsButton(): HTMLElement | null {
    const loaded = this.rootCount();
    if (this.commentTotal === undefined || this.commentTotal <= loaded) return null;
    const b = el('button', { type: 'button', class: 'text-button', id: 'consult-comments-more' }, t('consult.moreComments', { n: loaded, total: this.commentTotal }));
    b.addEventListener('click', async () => {
      const c = this.consultation;
      if (!c) return;
      b.disabled = true;
      try {
        const r = await listComments(c.id, { sort: this.commentSort, limit: PAGE, offset: loaded });
        const have = new Set(this.comments.map((x) => x.id));
        this.comments = [...this.comments, ...r.items.filter((x) => !have.has(x.id))];
        this.commentTotal = r.total ?? this.commentTotal;
        this.renderTab();
        this.updateMap();
        this.root.querySelector<HTMLElement>('#consult-comments-more')?.focus();
      } catch (e) {
        b.disabled = false;
        this.say(t('consult.error', { detail: errText(e) }), true);
      }
    });
    return b;
  }

  private stanceRadios(name: string, checked?: Stance): HTMLFieldSetElement {
    return radioGroup(name, t('consult.stance.legend'), STANCES.map((s) => ({ value: s, label: t(`consult.stance.${s}`) })), checked, 'radio-group stances');
  }

  private commentForm(c: Consultation): HTMLElement {
    const message = el('p', { class: 'form-message', id: 'consult-comment-message', role: 'alert' });
    this.commentScenario.replaceChildren(el('option', { value: '' }, t('consult.general')), ...c.scenarios.map((id) => el('option', { value: id }, this.scenarioName(id))));
    const unpin = el('button', { type: 'button', class: 'link-button', id: 'consult-comment-unpin' }, t('consult.pin.remove'));
    unpin.addEventListener('click', () => {
      this.commentLocation = undefined;
      this.renderPins();
      this.updateMap();
    });
    const stances = this.stanceRadios('consult-comment-stance');
    const submit = el('button', { type: 'submit', class: 'text-button primary', id: 'consult-comment-submit' }, t('consult.post'));
    const form = el(
      'form',
      { class: 'consult-form', id: 'consult-comment-form', novalidate: '', 'aria-labelledby': 'consult-comment-form-title' },
      el('h4', { id: 'consult-comment-form-title' }, t('consult.newComment')),
      field('consult-comment-body', t('consult.commentBody'), this.commentBody, t('consult.bodyHint')),
      stances,
      field('consult-comment-scenario', t('consult.aboutScenario'), this.commentScenario),
      el('div', { class: 'pin-row' }, this.commentPin, el('span', { id: 'consult-comment-where', class: 'muted' }), unpin),
      message,
      submit,
    );
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const stance = radioValue(form, 'consult-comment-stance') as Stance | undefined;
      const err = checkComment({ body: this.commentBody.value, stance });
      if (err) {
        message.textContent = t(err);
        (err === 'consult.check.stance' ? form.querySelector<HTMLInputElement>('input[type=radio]') : this.commentBody)?.focus();
        return;
      }
      submit.disabled = true;
      message.textContent = '';
      try {
        await postComment(c.id, {
          body: this.commentBody.value.trim(),
          stance: stance!,
          ...(this.commentScenario.value ? { scenario: this.commentScenario.value } : {}),
          ...(this.commentLocation ? { location: this.commentLocation } : {}),
          lang: lang(),
        });
        this.commentBody.value = '';
        this.commentLocation = undefined;
        this.say(t('consult.posted'));
        await this.reloadComments(true);
        this.commentBody.focus();
      } catch (x) {
        message.textContent = this.writeError(x);
      } finally {
        submit.disabled = false;
      }
    });
    return form;
  }

  /** A failed write in words: the server's reason (a 409 names the phase, a 429 says to wait). */
  private writeError(e: unknown): string {
    if (e instanceof ApiError && e.status === 429) return t('consult.tooFast');
    // refused for want of a verified address: the notice (with its way to the form) shows from now on
    if (e instanceof ApiError && e.status === 403 && /e-?mail/i.test(e.message)) {
      this.email = { ...(this.email ?? {}), verified: false };
      delete this.email.email;
      this.emailOf = this.session?.id;
      this.renderNeeds();
    }
    return t('consult.error', { detail: errText(e) });
  }

  private commentItem(c: Consultation, cm: Comment, depth: number): HTMLElement {
    const s = this.session;
    const can = commentActions(s, c, cm, depth);
    const metaId = `comment-${cm.id}-meta`;
    const li = el('li', { class: `comment depth-${depth}`, 'data-comment': cm.id, 'data-depth': String(depth), 'data-state': cm.state ?? 'visible', style: `--depth: ${depth - 1}` });
    const head = el(
      'p',
      { class: 'comment-head', id: metaId },
      stanceBadge(cm.stance),
      el('span', { class: 'comment-author' }, cm.authorName || cm.author || t('consult.anonymousAuthor')),
      el('span', { class: 'muted' }, time(cm.createdAt)),
      cm.editedAt ? el('span', { class: 'muted' }, t('consult.edited')) : null,
      cm.scenario ? el('span', { class: 'muted' }, t('consult.on', { name: this.scenarioName(cm.scenario) })) : null,
    );
    let body: HTMLElement;
    if (cm.state === 'deleted') body = el('p', { class: 'comment-body removed' }, t('consult.deleted'));
    else if (cm.state === 'hidden') body = el('p', { class: 'comment-body removed' }, t('consult.hiddenBy', { reason: cm.hidden?.reason ?? '' }));
    else body = el('div', { class: 'comment-body', ...(cm.lang ? { lang: cm.lang } : {}) }, ...paragraphs(cm.body));
    const actions = el('div', { class: 'comment-actions' });
    if (cm.state !== 'deleted') {
      for (const v of [1, -1] as const) {
        const n = v === 1 ? (cm.votes?.up ?? 0) : (cm.votes?.down ?? 0);
        // the name holds the visible count: "Vote up, votes so far: 3"
        const b = el(
          'button',
          { type: 'button', class: 'vote-button', 'data-vote': v === 1 ? 'up' : 'down', 'data-count': String(n), 'aria-pressed': String(cm.myVote === v) },
          el('span', { 'aria-hidden': 'true' }, v === 1 ? '▲ ' : '▼ '),
          el('span', { class: 'sr-only' }, `${t(v === 1 ? 'consult.vote.up' : 'consult.vote.down')} `),
          el('span', { class: 'vote-count' }, String(n)),
        );
        b.disabled = !can.vote;
        b.addEventListener('click', () => void this.vote(c, cm, cm.myVote === v ? 0 : v));
        actions.append(b);
      }
    }
    const slot = el('div', { class: 'comment-slot' });
    if (can.reply) {
      const b = el('button', { type: 'button', class: 'link-button', 'data-action': 'reply' }, t('consult.reply'));
      b.addEventListener('click', () => slot.replaceChildren(this.replyForm(c, cm, slot, b)));
      actions.append(b);
    }
    if (can.edit) {
      const b = el('button', { type: 'button', class: 'link-button', 'data-action': 'edit' }, t('consult.edit'));
      b.addEventListener('click', () => slot.replaceChildren(this.editForm(c, cm, slot, b)));
      actions.append(b);
    }
    if (can.delete) {
      const b = el('button', { type: 'button', class: 'link-button', 'data-action': 'delete' }, t('consult.delete'));
      b.addEventListener('click', () => void this.removeComment(c, cm));
      actions.append(b);
    }
    if (can.flag) {
      const b = el('button', { type: 'button', class: 'link-button', 'data-action': 'flag' }, t('consult.flag.button'));
      b.addEventListener('click', () => void this.flagDialog(c, `comment:${cm.id}`));
      actions.append(b);
    }
    if (cm.location && this.map) {
      const b = el('button', { type: 'button', class: 'link-button', 'data-action': 'locate' }, t('consult.showPlace'));
      b.addEventListener('click', () => this.map?.flyTo({ center: cm.location!, zoom: Math.max(this.map.getZoom(), 16) }));
      actions.append(b);
    }
    li.append(el('article', { 'aria-labelledby': metaId }, head, body, actions, slot));
    return li;
  }

  private replyForm(c: Consultation, parent: Comment, slot: HTMLElement, opener: HTMLElement): HTMLElement {
    const id = `reply-${parent.id}`;
    const body = el('textarea', { rows: '3', maxlength: '4000' });
    const message = el('p', { class: 'form-message', role: 'alert' });
    const cancel = el('button', { type: 'button', class: 'text-button' }, t('consult.cancel'));
    const form = el(
      'form',
      { class: 'consult-form reply-form', novalidate: '', 'aria-label': t('consult.replyTo', { name: parent.authorName || parent.author || '' }) },
      field(`${id}-body`, t('consult.replyBody'), body),
      this.stanceRadios(`${id}-stance`),
      message,
      el('div', { class: 'dialog-actions' }, el('button', { type: 'submit', class: 'text-button primary', 'data-action': 'send-reply' }, t('consult.postReply')), cancel),
    );
    cancel.addEventListener('click', () => {
      slot.replaceChildren();
      opener.focus();
    });
    form.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') {
        e.stopPropagation();
        cancel.click();
      }
    });
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const stance = radioValue(form, `${id}-stance`) as Stance | undefined;
      const err = checkComment({ body: body.value, stance });
      if (err) {
        message.textContent = t(err);
        return;
      }
      try {
        await postComment(c.id, { body: body.value.trim(), stance: stance!, parent: parent.id, ...(parent.scenario ? { scenario: parent.scenario } : {}), lang: lang() });
        this.say(t('consult.replied'));
        await this.reloadComments(true);
      } catch (x) {
        message.textContent = this.writeError(x);
      }
    });
    queueMicrotask(() => body.focus());
    return form;
  }

  private editForm(c: Consultation, cm: Comment, slot: HTMLElement, opener: HTMLElement): HTMLElement {
    const id = `edit-${cm.id}`;
    const body = el('textarea', { rows: '4', maxlength: '4000' });
    body.value = cm.body;
    const message = el('p', { class: 'form-message', role: 'alert' });
    const cancel = el('button', { type: 'button', class: 'text-button' }, t('consult.cancel'));
    const form = el(
      'form',
      { class: 'consult-form', novalidate: '', 'aria-label': t('consult.editComment') },
      field(`${id}-body`, t('consult.commentBody'), body),
      this.stanceRadios(`${id}-stance`, cm.stance),
      message,
      el('div', { class: 'dialog-actions' }, el('button', { type: 'submit', class: 'text-button primary' }, t('consult.save')), cancel),
    );
    cancel.addEventListener('click', () => {
      slot.replaceChildren();
      opener.focus();
    });
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const stance = radioValue(form, `${id}-stance`) as Stance | undefined;
      const err = checkComment({ body: body.value, stance });
      if (err) {
        message.textContent = t(err);
        return;
      }
      try {
        await editComment(c.id, cm.id, { body: body.value.trim(), stance });
        this.say(t('consult.saved'));
        await this.reloadComments(true);
      } catch (x) {
        message.textContent = this.writeError(x);
      }
    });
    queueMicrotask(() => body.focus());
    return form;
  }

  private async removeComment(c: Consultation, cm: Comment): Promise<void> {
    const ok = await openFormDialog({
      id: 'consult-confirm',
      title: t('consult.deleteTitle'),
      intro: t('consult.deleteIntro'),
      fields: [],
      submitLabel: t('consult.delete'),
      danger: true,
      onSubmit: async () => {
        await deleteComment(c.id, cm.id);
        return undefined;
      },
    });
    if (ok) {
      this.say(t('consult.deletedOk'));
      await this.reloadComments(true);
    }
  }

  private async vote(c: Consultation, cm: Comment, value: 1 | -1 | 0): Promise<void> {
    try {
      await voteComment(c.id, cm.id, value);
      // the counts as the server keeps them: the comment again, with the others
      this.say(value === 0 ? t('consult.vote.removed') : t('consult.vote.done'));
      await this.reloadComments(false, `[data-comment="${CSS.escape(cm.id)}"] [data-vote="${value === -1 ? 'down' : 'up'}"]`);
    } catch (e) {
      this.say(this.writeError(e), true);
    }
  }

  private async reloadComments(refreshCounts = false, focusSel?: string): Promise<void> {
    const c = this.consultation;
    if (!c) return;
    try {
      const [r, fresh] = await Promise.all([listComments(c.id, { sort: this.commentSort, limit: Math.max(PAGE, this.rootCount()) }), refreshCounts ? getConsultation(c.id) : Promise.resolve(undefined)]);
      if (this.consultation?.id !== c.id) return;
      this.comments = r.items;
      this.commentTotal = r.total;
      if (fresh) {
        this.consultation = fresh;
        this.renderPage();
      } else this.renderTab();
      this.updateMap();
      if (focusSel) this.root.querySelector<HTMLElement>(focusSel)?.focus();
    } catch (e) {
      this.say(t('consult.error', { detail: errText(e) }), true);
    }
  }

  private async flagDialog(c: Consultation, target: string): Promise<void> {
    const note = el('textarea', { rows: '2', maxlength: '500' });
    const reasons = radioGroup('consult-flag-reason', t('consult.flag.reason'), FLAG_REASONS.map((r) => ({ value: r, label: t(`consult.flag.reasons.${r}`) })));
    const ok = await openFormDialog({
      id: 'consult-flag',
      title: t('consult.flag.title'),
      intro: t('consult.flag.intro'),
      fields: [reasons, field('consult-flag-note', t('consult.flag.note'), note)],
      submitLabel: t('consult.flag.submit'),
      onSubmit: async () => {
        const reason = radioValue(reasons, 'consult-flag-reason') as (typeof FLAG_REASONS)[number] | undefined;
        if (!reason) return t('consult.flag.needReason');
        try {
          await flag(c.id, { target, reason, ...(note.value.trim() ? { note: note.value.trim() } : {}) });
        } catch (e) {
          if (e instanceof ApiError && e.status === 409) return t('consult.flag.already');
          throw e;
        }
        return undefined;
      },
    });
    if (ok) this.say(t('consult.flag.done'));
  }

  // ---- proposals

  private proposalQuery(): { sort: ProposalSort; status?: string } {
    return { sort: this.proposalSort, ...(this.proposalStatus ? { status: this.proposalStatus } : {}) };
  }

  private async reloadProposals(refreshCounts = false, focusSel?: string): Promise<void> {
    const c = this.consultation;
    if (!c) return;
    try {
      const [ps, fresh] = await Promise.all([listProposals(c.id, this.proposalQuery()), refreshCounts ? getConsultation(c.id) : Promise.resolve(undefined)]);
      if (this.consultation?.id !== c.id) return;
      this.proposals = ps;
      if (fresh) {
        this.consultation = fresh;
        this.renderPage();
      } else this.renderTab();
      this.updateMap();
      if (focusSel) this.root.querySelector<HTMLElement>(focusSel)?.focus();
    } catch (e) {
      this.say(t('consult.error', { detail: errText(e) }), true);
    }
  }

  private proposalsTab(c: Consultation): (Node | null)[] {
    const s = this.session;
    const sort = el('select', { id: 'consult-proposal-sort' }, ...(['supports', 'new'] as ProposalSort[]).map((k) => el('option', { value: k }, t(`consult.sort.${k}`))));
    sort.value = this.proposalSort;
    sort.addEventListener('change', () => {
      this.proposalSort = sort.value as ProposalSort;
      void this.reloadProposals();
    });
    const status = el('select', { id: 'consult-proposal-status' }, el('option', { value: '' }, t('consult.status.all')), ...PROPOSAL_STATUSES.map((k) => el('option', { value: k }, t(`consult.status.${k}`))));
    status.value = this.proposalStatus;
    status.addEventListener('change', () => {
      this.proposalStatus = status.value;
      void this.reloadProposals();
    });
    let top: Node;
    if (!s) top = this.signInNote();
    else if (!canParticipate(s)) top = el('p', { class: 'panel-intro' }, t('consult.cannotTakePart'));
    else if (!c.allowed?.propose) top = el('p', { class: 'panel-intro', id: 'consult-propose-closed' }, t('consult.closed.propose', { phase: phaseLabel(c.currentPhase ?? 'upcoming') }));
    else if (!this.newProposalOpen) {
      const b = el('button', { type: 'button', class: 'text-button primary', id: 'consult-proposal-new' }, t('consult.proposal.new'));
      b.addEventListener('click', () => {
        this.newProposalOpen = true;
        this.renderTab();
        this.proposalTitle.focus();
      });
      top = b;
    } else top = this.proposalForm(c);
    const supported = this.proposals.filter((p) => p.supported).length;
    const limit = c.supportsPerPerson ?? 3;
    return [
      el('h3', { id: 'consult-proposals-title' }, t('consult.proposals')),
      top,
      el(
        'div',
        { class: 'consult-filters' },
        el('div', { class: 'field inline' }, el('label', { for: 'consult-proposal-sort' }, t('consult.sortBy')), sort),
        el('div', { class: 'field inline' }, el('label', { for: 'consult-proposal-status' }, t('consult.status.filter')), status),
      ),
      s ? el('p', { class: 'muted', id: 'consult-supports-left' }, t('consult.support.used', { n: supported, limit })) : null,
      this.proposals.length
        ? el('ul', { class: 'proposals', id: 'consult-proposals', 'aria-labelledby': 'consult-proposals-title' }, ...this.proposals.map((p) => this.proposalItem(c, p)))
        : el('p', { class: 'muted', id: 'consult-proposals' }, t('consult.noProposals')),
    ];
  }

  private proposalForm(c: Consultation): HTMLElement {
    const message = el('p', { class: 'form-message', id: 'consult-proposal-message', role: 'alert' });
    const unpin = el('button', { type: 'button', class: 'link-button', id: 'consult-proposal-unpin' }, t('consult.pin.remove'));
    unpin.addEventListener('click', () => {
      this.proposalLocation = undefined;
      this.renderPins();
      this.updateMap();
    });
    this.forkBase.replaceChildren(...c.scenarios.map((id) => el('option', { value: id }, this.scenarioName(id))), el('option', { value: 'baseline' }, t('consult.proposal.fromBaseline')));
    const forkButton = el('button', { type: 'button', class: 'text-button', id: 'consult-fork' }, t('consult.proposal.fork'));
    forkButton.addEventListener('click', () => void this.startFork(c, forkButton, message));
    const submit = el('button', { type: 'submit', class: 'text-button primary', id: 'consult-proposal-submit' }, t('consult.proposal.submit'));
    const cancel = el('button', { type: 'button', class: 'text-button', id: 'consult-proposal-cancel' }, t('consult.cancel'));
    cancel.addEventListener('click', () => {
      this.newProposalOpen = false;
      this.proposalLocation = undefined;
      this.cancelPlacing();
      this.renderTab();
      this.updateMap();
      this.root.querySelector<HTMLElement>('#consult-proposal-new')?.focus();
    });
    const form = el(
      'form',
      { class: 'consult-form', id: 'consult-proposal-form', novalidate: '', 'aria-labelledby': 'consult-proposal-form-title' },
      el('h4', { id: 'consult-proposal-form-title' }, t('consult.proposal.new')),
      field('consult-proposal-title', t('consult.proposal.title'), this.proposalTitle),
      field('consult-proposal-body', t('consult.proposal.body'), this.proposalBody, t('consult.bodyHint')),
      el(
        'fieldset',
        { class: 'radio-group' },
        el('legend', {}, t('consult.proposal.where')),
        el('p', { class: 'hint' }, t('consult.proposal.placeHint')),
        el('div', { class: 'pin-row' }, this.proposalPin, el('span', { id: 'consult-proposal-where', class: 'muted' }), unpin),
        el('p', { class: 'hint' }, t('consult.proposal.forkHint')),
        field('consult-fork-base', t('consult.proposal.startFrom'), this.forkBase),
        forkButton,
      ),
      message,
      el('div', { class: 'dialog-actions' }, submit, cancel),
    );
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const draft = { title: this.proposalTitle.value, body: this.proposalBody.value, location: this.proposalLocation };
      const err = checkProposal(draft);
      if (err) {
        message.textContent = t(err);
        (err === 'consult.check.where' ? this.proposalPin : err.includes('itle') ? this.proposalTitle : this.proposalBody).focus();
        return;
      }
      submit.disabled = true;
      try {
        await postProposal(c.id, { title: draft.title.trim(), body: draft.body.trim(), location: draft.location! });
        this.proposalTitle.value = '';
        this.proposalBody.value = '';
        this.proposalLocation = undefined;
        this.newProposalOpen = false;
        this.say(t('consult.proposal.submitted'));
        await this.reloadProposals(true);
      } catch (x) {
        message.textContent = this.writeError(x);
      } finally {
        submit.disabled = false;
      }
    });
    return form;
  }

  /** "Propose a street change": a copy of a scenario of the consultation, edited in the scenario editor. */
  private async startFork(c: Consultation, button: HTMLButtonElement, message: HTMLElement): Promise<void> {
    if (!this.hooks.editScenario) return;
    button.disabled = true;
    message.textContent = '';
    const base = this.forkBase.value || 'baseline';
    try {
      const name = t('consult.proposal.forkName', { title: pickText(c.title, lang()) || c.id, who: this.session?.id ?? '' });
      const fork = await forkScenario(base, name.slice(0, 150));
      this.fork = { scenario: fork.id, consultation: c.id };
      if (!this.forkTitle.value) this.forkTitle.value = this.proposalTitle.value;
      if (!this.forkBody.value) this.forkBody.value = this.proposalBody.value;
      this.forkStatus.textContent = '';
      this.hooks.editScenario(fork.id, this.forkBanner(c));
      this.hooks.announce(t('consult.proposal.forked'));
    } catch (e) {
      message.textContent = this.writeError(e);
    } finally {
      button.disabled = false;
    }
  }

  /** The banner over the scenario editor while a proposal is drafted there. */
  private forkBanner(c: Consultation): HTMLElement {
    const submit = el('button', { type: 'button', class: 'text-button primary', id: 'consult-fork-submit' }, t('consult.proposal.submitFork'));
    const back = el('button', { type: 'button', class: 'text-button', id: 'consult-fork-back' }, t('consult.backToPage'));
    submit.addEventListener('click', () => void this.submitFork(c, submit));
    back.addEventListener('click', () => {
      this.fork = undefined;
      this.hooks.backFromEditor?.();
      void this.open(c.id, 'proposals');
    });
    return el(
      'section',
      { class: 'consult-banner', id: 'consult-fork-banner', 'aria-labelledby': 'consult-fork-title-h' },
      el('h3', { id: 'consult-fork-title-h' }, t('consult.proposal.forkTitle', { title: pickText(c.title, lang()) || c.id })),
      el('p', { class: 'hint' }, t('consult.proposal.forkSteps')),
      field('consult-fork-title', t('consult.proposal.title'), this.forkTitle),
      field('consult-fork-body', t('consult.proposal.body'), this.forkBody),
      el('div', { class: 'dialog-actions' }, submit, back),
      this.forkStatus,
    );
  }

  private async submitFork(c: Consultation, button: HTMLButtonElement): Promise<void> {
    const fork = this.fork;
    if (!fork) return;
    const err = checkProposal({ title: this.forkTitle.value, body: this.forkBody.value, scenario: fork.scenario });
    if (err) {
      this.forkStatus.textContent = t(err);
      this.forkStatus.classList.add('error');
      (err.includes('itle') ? this.forkTitle : this.forkBody).focus();
      return;
    }
    if (this.hooks.hasResults && !this.hooks.hasResults(fork.scenario)) {
      this.forkStatus.textContent = t('consult.proposal.runFirst');
      this.forkStatus.classList.add('error');
      return;
    }
    button.disabled = true;
    try {
      await postProposal(c.id, { title: this.forkTitle.value.trim(), body: this.forkBody.value.trim(), scenario: fork.scenario });
      this.fork = undefined;
      this.forkTitle.value = '';
      this.forkBody.value = '';
      this.proposalTitle.value = '';
      this.proposalBody.value = '';
      this.newProposalOpen = false;
      this.hooks.backFromEditor?.();
      await this.open(c.id, 'proposals');
      this.proposalSort = 'new';
      await this.reloadProposals(true);
      this.say(t('consult.proposal.submitted'));
      this.hooks.announce(t('consult.proposal.submitted'));
    } catch (e) {
      this.forkStatus.textContent = this.writeError(e);
      this.forkStatus.classList.add('error');
    } finally {
      button.disabled = false;
    }
  }

  private proposalItem(c: Consultation, p: Proposal): HTMLElement {
    const s = this.session;
    const own = !!s && !!p.author && p.author === s.id;
    const titleId = `proposal-${p.id}-title`;
    const reasonId = `proposal-${p.id}-support-why`;
    const hidden = p.state === 'hidden';
    const sup = supportState(s, c, p, this.proposals);
    const supportButton = el(
      'button',
      { type: 'button', class: `text-button${p.supported ? ' active' : ''}`, 'data-action': 'support', 'aria-pressed': String(!!p.supported), ...(sup.reason ? { 'aria-describedby': reasonId } : {}) },
      p.supported ? t('consult.support.withdraw') : t('consult.support.button'),
    );
    supportButton.disabled = !sup.enabled;
    supportButton.addEventListener('click', () => void this.support(c, p, !p.supported));
    const where: (HTMLElement | null)[] = [];
    if (p.location && this.map) {
      const b = el('button', { type: 'button', class: 'link-button', 'data-action': 'locate' }, t('consult.showPlace'));
      b.addEventListener('click', () => this.map?.flyTo({ center: p.location!, zoom: Math.max(this.map.getZoom(), 16) }));
      where.push(el('span', {}, t('consult.proposal.pinned')), b);
    }
    if (p.scenario) {
      const shown = this.shownScenario === p.scenario;
      const b = el('button', { type: 'button', class: 'link-button', 'data-action': 'show-scenario', 'aria-pressed': String(shown) }, shown ? t('consult.scenario.hide') : t('consult.scenario.showChange'));
      b.addEventListener('click', () => void this.toggleScenario(p.scenario!).then(() => this.renderTab()));
      where.push(el('span', {}, t('consult.proposal.streetChange')), b);
    }
    const actions = el('div', { class: 'comment-actions' });
    if (canAnswer(s, c) && !hidden) {
      const a = el('button', { type: 'button', class: 'text-button', 'data-action': 'answer' }, t('consult.answer.button'));
      a.addEventListener('click', () => void this.answerDialog(c, p));
      const m = el('button', { type: 'button', class: 'text-button', 'data-action': 'milestone' }, t('consult.milestone.button'));
      m.addEventListener('click', () => void this.milestoneDialog(c, p));
      actions.append(a, m);
    }
    if (own && p.status === 'submitted') {
      const w = el('button', { type: 'button', class: 'link-button', 'data-action': 'withdraw' }, t('consult.proposal.withdraw'));
      w.addEventListener('click', () => void this.withdraw(c, p));
      actions.append(w);
    }
    if (s && !own && !hidden && canParticipate(s)) {
      const f = el('button', { type: 'button', class: 'link-button', 'data-action': 'flag' }, t('consult.flag.button'));
      f.addEventListener('click', () => void this.flagDialog(c, `proposal:${p.id}`));
      actions.append(f);
    }
    return el(
      'li',
      { class: 'proposal', 'data-proposal': p.id, 'data-status': p.status, 'data-state': p.state ?? 'visible' },
      el(
        'article',
        { 'aria-labelledby': titleId },
        el('h4', { id: titleId }, hidden ? t('consult.proposal.hiddenTitle') : p.title),
        el('p', { class: 'comment-head' }, statusBadge(p.status), el('span', { class: 'comment-author' }, p.authorName || p.author || t('consult.anonymousAuthor')), el('span', { class: 'muted' }, time(p.createdAt))),
        hidden ? el('p', { class: 'comment-body removed' }, t('consult.hiddenBy', { reason: p.hidden?.reason ?? '' })) : el('div', { class: 'comment-body' }, ...paragraphs(p.body)),
        where.length ? el('p', { class: 'proposal-where' }, ...where) : null,
        p.answer
          ? el(
              'div',
              { class: 'proposal-answer' },
              el('p', { class: 'answer-head' }, el('strong', {}, t('consult.answer.from')), ' ', time(p.answer.at)),
              ...paragraphs(p.answer.text),
            )
          : null,
        p.milestones?.length
          ? el(
              'div',
              { class: 'milestones' },
              el('p', { class: 'answer-head' }, el('strong', {}, t('consult.milestone.title'))),
              el('ol', {}, ...p.milestones.map((m) => el('li', {}, el('span', { class: 'muted' }, fmtDate(m.at)), ' ', el('strong', {}, m.title), m.body ? el('span', {}, ` — ${m.body}`) : null))),
            )
          : null,
        el(
          'div',
          { class: 'support-row' },
          el('span', { class: 'support-count', 'data-supports': String(p.supports ?? 0) }, t('consult.support.count', { n: p.supports ?? 0 })),
          supportButton,
          sup.reason ? el('span', { class: 'muted support-why', id: reasonId }, t(sup.reason, { limit: c.supportsPerPerson ?? 3 })) : null,
        ),
        actions.childElementCount ? actions : null,
      ),
    );
  }

  private async support(c: Consultation, p: Proposal, on: boolean): Promise<void> {
    try {
      await setSupport(c.id, p.id, on);
      this.say(on ? t('consult.support.done') : t('consult.support.undone'));
      await this.reloadProposals(true, `[data-proposal="${CSS.escape(p.id)}"] [data-action="support"]`);
    } catch (e) {
      this.say(this.writeError(e), true);
    }
  }

  private async withdraw(c: Consultation, p: Proposal): Promise<void> {
    const ok = await openFormDialog({
      id: 'consult-confirm',
      title: t('consult.proposal.withdrawTitle'),
      intro: t('consult.proposal.withdrawIntro'),
      fields: [],
      submitLabel: t('consult.proposal.withdraw'),
      danger: true,
      onSubmit: async () => {
        await withdrawProposal(c.id, p.id);
        return undefined;
      },
    });
    if (ok) {
      this.say(t('consult.proposal.withdrawn'));
      await this.reloadProposals(true);
    }
  }

  private async answerDialog(c: Consultation, p: Proposal): Promise<void> {
    const status = el('select', {}, ...PROPOSAL_STATUSES.filter((s) => s !== 'withdrawn').map((s) => el('option', { value: s }, t(`consult.status.${s}`))));
    status.value = p.status === 'submitted' ? 'evaluating' : p.status;
    const text = el('textarea', { rows: '5', maxlength: '4000' });
    text.value = p.answer?.text ?? '';
    const ok = await openFormDialog({
      id: 'consult-answer',
      title: t('consult.answer.title', { title: p.title }),
      fields: [field('consult-answer-status', t('consult.answer.status'), status), field('consult-answer-text', t('consult.answer.text'), text)],
      submitLabel: t('consult.answer.submit'),
      onSubmit: async () => {
        const err = checkBody(text.value);
        if (err) return t(err);
        await answerProposal(c.id, p.id, { status: status.value as ProposalStatus, text: text.value.trim() });
        return undefined;
      },
    });
    if (ok) {
      this.say(t('consult.answer.done'));
      await this.reloadProposals();
    }
  }

  private async milestoneDialog(c: Consultation, p: Proposal): Promise<void> {
    const title = el('input', { type: 'text', maxlength: '150' });
    const body = el('textarea', { rows: '3', maxlength: '4000' });
    const at = el('input', { type: 'date' });
    at.value = toLocalInput(new Date().toISOString()).slice(0, 10);
    const ok = await openFormDialog({
      id: 'consult-milestone',
      title: t('consult.milestone.add', { title: p.title }),
      fields: [field('consult-milestone-title', t('consult.milestone.name'), title), field('consult-milestone-body', t('consult.milestone.body'), body), field('consult-milestone-at', t('consult.milestone.at'), at)],
      submitLabel: t('consult.milestone.submit'),
      onSubmit: async () => {
        if (!title.value.trim()) return t('consult.check.title');
        const when = at.value ? fromLocalInput(`${at.value}T12:00`) : '';
        await addMilestone(c.id, p.id, { title: title.value.trim(), body: body.value.trim(), ...(when ? { at: when } : {}) });
        return undefined;
      },
    });
    if (ok) {
      this.say(t('consult.milestone.done'));
      await this.reloadProposals();
    }
  }

  // ---- surveys

  private surveyForms = new Map<string, HTMLFormElement>();

  private surveysTab(c: Consultation): (Node | null)[] {
    const s = this.session;
    const l = lang();
    const surveys = c.surveys ?? [];
    const out: (Node | null)[] = [el('h3', {}, t('consult.surveys'))];
    if (!surveys.length) {
      out.push(el('p', { class: 'muted' }, t('consult.noSurveys')));
      return out;
    }
    if (!s) out.push(this.signInNote());
    else if (!c.allowed?.survey) out.push(el('p', { class: 'panel-intro' }, t('consult.closed.survey', { phase: phaseLabel(c.currentPhase ?? 'upcoming') })));
    this.surveyForms.clear();
    for (const sv of surveys) {
      const message = el('p', { class: 'form-message', role: 'status', 'aria-live': 'polite', id: `consult-survey-${sv.id}-message` });
      const fieldset = el('fieldset', { class: 'survey-questions' });
      fieldset.disabled = !s || !c.allowed?.survey;
      for (const q of sv.questions) fieldset.append(this.question(sv, q, l));
      const form = el(
        'form',
        { class: 'consult-form survey', id: `consult-survey-${sv.id}`, 'data-survey': sv.id, novalidate: '', 'aria-labelledby': `consult-survey-${sv.id}-title` },
        el('h4', { id: `consult-survey-${sv.id}-title`, lang: pickLang(sv.title, l) }, pickText(sv.title, l) || sv.id),
        fieldset,
        message,
        s && c.allowed?.survey ? el('button', { type: 'submit', class: 'text-button primary' }, t('consult.survey.submit')) : null,
      );
      form.addEventListener('submit', async (e) => {
        e.preventDefault();
        const answers = this.surveyAnswers(sv, form);
        const err = checkSurvey(sv, answers);
        message.classList.toggle('error', !!err);
        if (err) {
          const q = sv.questions.find((x) => x.id === err.question);
          message.textContent = t(err.key, { question: pickText(q?.text, l) });
          form.querySelector<HTMLElement>(`[data-question="${CSS.escape(err.question)}"] input, [data-question="${CSS.escape(err.question)}"] textarea`)?.focus();
          return;
        }
        try {
          await putSurveyResponse(c.id, sv.id, answers);
          message.textContent = t('consult.survey.saved');
        } catch (x) {
          message.classList.add('error');
          message.textContent = this.writeError(x);
        }
      });
      this.surveyForms.set(sv.id, form);
      out.push(form);
    }
    return out;
  }

  private question(sv: Survey, q: Survey['questions'][number], l: string): HTMLElement {
    const name = `consult-q-${sv.id}-${q.id}`;
    const label = `${pickText(q.text, l) || q.id}${q.required ? ` (${t('consult.survey.required')})` : ''}`;
    if (q.kind === 'text') {
      const ta = el('textarea', { rows: '3', maxlength: '2000', name });
      const f = field(name, label, ta);
      f.dataset.question = q.id;
      return f;
    }
    const options =
      q.kind === 'scale'
        ? [1, 2, 3, 4, 5].map((n) => ({ value: String(n), label: n === 1 ? t('consult.survey.scaleLow', { n }) : n === 5 ? t('consult.survey.scaleHigh', { n }) : String(n) }))
        : (q.options ?? []).map((o, i) => ({ value: String(i), label: pickText(o, l) }));
    const fs = el(
      'fieldset',
      { class: `radio-group question q-${q.kind}`, 'data-question': q.id },
      el('legend', {}, label),
      ...options.map((o) => {
        const id = `${name}-${o.value}`;
        return el('div', { class: 'radio' }, el('input', { type: q.kind === 'multiple' ? 'checkbox' : 'radio', name, id, value: o.value }), el('label', { for: id }, o.label));
      }),
    );
    return fs;
  }

  private surveyAnswers(sv: Survey, form: HTMLElement): Answers {
    const out: Answers = {};
    for (const q of sv.questions) {
      const name = `consult-q-${sv.id}-${q.id}`;
      if (q.kind === 'text') {
        const v = form.querySelector<HTMLTextAreaElement>(`textarea[name="${CSS.escape(name)}"]`)?.value.trim() ?? '';
        if (v) out[q.id] = v;
      } else if (q.kind === 'multiple') {
        const vs = [...form.querySelectorAll<HTMLInputElement>(`input[name="${CSS.escape(name)}"]:checked`)].map((i) => Number(i.value));
        if (vs.length) out[q.id] = vs;
      } else {
        const v = form.querySelector<HTMLInputElement>(`input[name="${CSS.escape(name)}"]:checked`)?.value;
        if (v !== undefined) out[q.id] = Number(v);
      }
    }
    return out;
  }

  /** Fills the survey forms with the caller's saved answers. */
  private async loadSurveyResponses(): Promise<void> {
    const c = this.consultation;
    if (!c || !this.session) return;
    for (const sv of c.surveys ?? []) {
      let answers: Answers | undefined;
      try {
        answers = await getSurveyResponse(c.id, sv.id);
      } catch {
        continue;
      }
      const form = this.surveyForms.get(sv.id);
      if (!answers || !form) continue;
      for (const q of sv.questions) {
        const a = answers[q.id];
        const name = `consult-q-${sv.id}-${q.id}`;
        if (a === undefined) continue;
        if (q.kind === 'text') {
          const ta = form.querySelector<HTMLTextAreaElement>(`textarea[name="${CSS.escape(name)}"]`);
          if (ta) ta.value = String(a);
        } else
          for (const i of form.querySelectorAll<HTMLInputElement>(`input[name="${CSS.escape(name)}"]`))
            i.checked = Array.isArray(a) ? a.includes(Number(i.value)) : Number(i.value) === a;
      }
      const msg = form.querySelector(`#consult-survey-${CSS.escape(sv.id)}-message`);
      if (msg) msg.textContent = t('consult.survey.yours');
    }
  }

  // ---- results

  private async loadResults(): Promise<void> {
    const c = this.consultation;
    if (!c) return;
    try {
      const r = await getResults(c.id);
      if (this.consultation?.id !== c.id) return;
      this.results = r;
      if (this.tab === 'results') this.renderTab();
    } catch (e) {
      this.say(t('consult.error', { detail: errText(e) }), true);
    }
  }

  private resultsTab(c: Consultation): (Node | null)[] {
    const r = this.results;
    const l = lang();
    const out: (Node | null)[] = [el('h3', {}, t('consult.results.title'))];
    if (!r) {
      out.push(el('p', { class: 'muted' }, t('consult.loading')));
      return out;
    }
    const proposals = rankedProposals(r);
    out.push(
      el(
        'dl',
        { class: 'consult-counts-dl', id: 'consult-results-counts' },
        el('div', {}, el('dt', {}, t('consult.counts.participants')), el('dd', {}, fmtNumber(r.participants ?? 0, 0))),
        el('div', {}, el('dt', {}, t('consult.counts.comments')), el('dd', {}, fmtNumber(r.comments ?? 0, 0))),
        el('div', {}, el('dt', {}, t('consult.counts.proposals')), el('dd', {}, fmtNumber(typeof r.proposals === 'number' ? r.proposals : proposals.length, 0))),
        el('div', {}, el('dt', {}, t('consult.counts.supports')), el('dd', {}, fmtNumber(r.supports ?? 0, 0))),
      ),
      el('h4', {}, t('consult.results.stance')),
    );
    const stance = r.stance ?? {};
    const keys = Object.keys(stance);
    if (!keys.length) out.push(el('p', { class: 'muted' }, t('consult.noComments')));
    for (const k of keys) {
      const counts = stance[k]!;
      const shares = stanceShares(counts);
      const name = k === '_general' ? t('consult.general') : this.scenarioName(k);
      out.push(
        el(
          'table',
          { class: 'stance-chart', 'data-scenario': k },
          el('caption', {}, name),
          el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, t('consult.results.stanceCol')), el('th', { scope: 'col' }, t('consult.results.share')), el('th', { scope: 'col', class: 'num' }, t('consult.results.count')))),
          el(
            'tbody',
            {},
            ...STANCES.map((s) =>
              el(
                'tr',
                { 'data-stance': s },
                el('th', { scope: 'row' }, stanceBadge(s)),
                el('td', {}, el('span', { class: 'bar', 'aria-hidden': 'true' }, el('span', { class: `bar-fill stance-${s}`, style: `width: ${shares[s]}%` })), el('span', { class: 'share-value' }, `${shares[s]} %`)),
                el('td', { class: 'num' }, fmtNumber(counts[s] ?? 0, 0)),
              ),
            ),
          ),
        ),
      );
    }
    out.push(el('h4', {}, t('consult.results.proposals')));
    out.push(
      proposals.length
        ? el('ol', { class: 'results-proposals', id: 'consult-results-proposals' }, ...bySupports(proposals).map((p) => el('li', {}, el('strong', {}, p.title), ' ', statusBadge(p.status), ' ', el('span', {}, t('consult.support.count', { n: p.supports ?? 0 })))))
        : el('p', { class: 'muted' }, t('consult.noProposals')),
    );
    const surveys = c.surveys ?? [];
    if (surveys.length) {
      out.push(el('h4', {}, t('consult.results.surveys')));
      for (const sv of surveys) {
        for (const q of sv.questions) {
          const qr = questionResult(r, sv.id, q.id);
          const labels = q.kind === 'scale' ? ['1', '2', '3', '4', '5'] : q.kind === 'text' ? [] : (q.options ?? []).map((o) => pickText(o, l));
          const counts = qr?.counts ?? [];
          out.push(
            el(
              'table',
              { class: 'survey-results', 'data-question': q.id },
              el('caption', {}, `${pickText(sv.title, l)}: ${pickText(q.text, l)} — ${t('consult.results.responses', { n: qr?.responses ?? 0 })}`),
              labels.length
                ? el('tbody', {}, ...labels.map((label, i) => el('tr', {}, el('th', { scope: 'row' }, label), el('td', { class: 'num' }, fmtNumber(counts[i] ?? 0, 0)))))
                : el('tbody', {}, el('tr', {}, el('td', {}, t('consult.results.textCounted')))),
            ),
          );
        }
      }
    }
    out.push(
      el('h4', {}, t('consult.results.download')),
      el(
        'ul',
        { class: 'links' },
        el('li', {}, el('a', { href: resultsUrl(c.id, 'csv'), download: `${c.id}-results.csv`, id: 'consult-results-csv' }, t('consult.results.csv'))),
        el('li', {}, el('a', { href: resultsUrl(c.id, 'geojson'), download: `${c.id}-results.geojson`, id: 'consult-results-geojson' }, t('consult.results.geojson'))),
      ),
      el('p', { class: 'hint' }, t('consult.results.mapHint')),
    );
    return out;
  }

  // ---- moderation

  private renderQueue(items: QueueItem[]): void {
    const ul = this.root.querySelector('#consult-queue');
    if (!ul) return;
    ul.replaceChildren(
      ...items.map((q) => {
        const { kind } = parseTarget(q.target);
        const it = q.item ?? {};
        const reasons = Object.entries(q.reasons ?? {})
          .map(([r, n]) => `${t(`consult.flag.reasons.${r}`)} × ${n}`)
          .join(', ');
        const buttons = el('div', { class: 'comment-actions' });
        for (const action of ['hide', 'restore', 'dismiss'] as ModAction[]) {
          if (action === 'hide' && it.state === 'hidden') continue;
          if (action === 'restore' && it.state !== 'hidden') continue;
          const b = el('button', { type: 'button', class: `text-button${action === 'hide' ? ' danger' : ''}`, 'data-action': action }, t(`consult.mod.${action}`));
          b.addEventListener('click', () => void this.moderateDialog(q, action));
          buttons.append(b);
        }
        return el(
          'li',
          { class: 'queue-item', 'data-target': q.target },
          el(
            'article',
            { 'aria-label': t('consult.queue.itemLabel', { kind: t(`consult.kind.${kind}`), n: q.flags }) },
            el('p', { class: 'comment-head' }, el('strong', {}, t(`consult.kind.${kind}`)), el('span', { class: 'badge flags' }, t('consult.queue.flags', { n: q.flags })), el('span', { class: 'muted' }, reasons)),
            it.title ? el('p', {}, el('strong', {}, it.title)) : null,
            el('div', { class: 'comment-body' }, ...paragraphs(it.body ?? '')),
            el('p', { class: 'muted' }, t('consult.queue.by', { who: it.authorName || it.author || '—' }), ' ', time(it.createdAt)),
            buttons,
          ),
        );
      }),
    );
  }

  private async moderateDialog(q: QueueItem, action: ModAction): Promise<void> {
    const reason = el('textarea', { rows: '3', maxlength: '500', required: '' });
    const ok = await openFormDialog({
      id: 'consult-moderate',
      title: t(`consult.mod.${action}Title`),
      intro: t('consult.mod.public'),
      fields: [field('consult-moderate-reason', t('consult.mod.reason'), reason)],
      submitLabel: t(`consult.mod.${action}`),
      danger: action === 'hide',
      onSubmit: async () => {
        if (!reason.value.trim()) return t('consult.mod.needReason');
        await moderate({ target: q.target, action, reason: reason.value.trim() });
        return undefined;
      },
    });
    if (ok) {
      await this.showQueue();
      this.say(t('consult.mod.done'));
    }
  }

  private renderLogFrame(): void {
    this.hooks.setTitle(t('consult.log.title'));
    const scope = el('div', { class: 'consult-tools' });
    if (this.consultation) {
      const b = el('button', { type: 'button', class: 'text-button', id: 'consult-log-scope', 'aria-pressed': String(this.logAll) }, this.logAll ? t('consult.log.onlyThis') : t('consult.log.all'));
      b.addEventListener('click', () => {
        this.logAll = !this.logAll;
        void this.showLog();
      });
      scope.append(b);
    }
    this.root.replaceChildren(this.backButton(!this.logAll), el('p', { class: 'panel-intro' }, t('consult.log.intro')), scope, this.status, el('div', { id: 'consult-log' }));
  }

  private renderLog(entries: LogEntry[]): void {
    const box = this.root.querySelector('#consult-log');
    if (!box || !entries.length) return;
    box.replaceChildren(
      el(
        'div',
        { class: 'table-scroll' },
        el(
          'table',
          { class: 'trust-table mod-log', id: 'consult-log-table' },
          el('caption', {}, t('consult.log.caption', { n: entries.length })),
          el('thead', {}, el('tr', {}, ...['when', 'what', 'action', 'reason', 'flags'].map((k) => el('th', { scope: 'col' }, t(`consult.log.${k}`))))),
          el(
            'tbody',
            {},
            ...entries.map((e) => {
              const { kind } = parseTarget(e.target);
              return el(
                'tr',
                { 'data-target': e.target, 'data-action': e.action },
                el('td', {}, time(e.at)),
                el('td', {}, t(`consult.kind.${kind}`), el('br'), el('code', {}, e.target)),
                el('td', {}, t(`consult.mod.done_${e.action}`)),
                el('td', { class: 'log-reason' }, e.reason ?? ''),
                el('td', { class: 'num' }, String(e.flags ?? 0)),
              );
            }),
          ),
        ),
      ),
    );
  }

  // ---- my participation

  private renderMe(): void {
    this.hooks.setTitle(t('consult.me.title'));
    const s = this.session;
    if (!s) {
      this.root.replaceChildren(this.backButton(), this.signInNote(), this.status);
      return;
    }
    const download = el('button', { type: 'button', class: 'text-button', id: 'consult-me-download' }, t('consult.me.download'));
    download.addEventListener('click', () => void this.downloadMine());
    const erase = el('button', { type: 'button', class: 'text-button danger', id: 'consult-me-delete' }, t('consult.me.delete'));
    erase.addEventListener('click', () => void this.deleteAccount());
    this.root.replaceChildren(
      this.backButton(!this.meFromPage),
      el('p', { class: 'panel-intro' }, t('consult.me.intro', { id: s.id })),
      el('h3', { id: 'consult-email-title', tabindex: '-1' }, t('consult.email.title')),
      el('p', {}, t('consult.email.why')),
      el('div', { id: 'consult-email-box', class: 'consult-email' }),
      el('h3', {}, t('consult.me.dataTitle')),
      el('p', {}, t('consult.me.dataText')),
      download,
      el('h3', {}, t('consult.me.deleteTitle')),
      el('p', {}, t('consult.me.deleteText')),
      erase,
      this.status,
    );
    this.renderEmail();
  }

  // ---- the e-mail address

  private forgetEmail(): void {
    this.email = undefined;
    this.emailOf = undefined;
    this.emailLoading = undefined;
    this.emailStep = 'add';
    this.emailPending = undefined;
    this.emailMsg = undefined;
    this.emailInput.value = '';
    this.codeInput.value = '';
  }

  /** Reads whether the caller has a verified address (once per session, unless `again`). */
  private loadEmail(again = false): Promise<void> {
    const s = this.session;
    if (!s) return Promise.resolve();
    if (!again && this.emailOf === s.id && this.email) return Promise.resolve();
    if (!again && this.emailLoading) return this.emailLoading;
    const who = s.id;
    const p = getEmailStatus().then(
      (st) => {
        if (this.session?.id !== who) return;
        this.email = st;
        this.emailOf = who;
      },
      (e) => {
        if (this.session?.id !== who) return;
        if (this.view === 'me') this.emailMsg = { key: 'consult.error', vars: { detail: errText(e) }, error: true };
      },
    );
    this.emailLoading = p.finally(() => {
      if (this.emailLoading === p) this.emailLoading = undefined;
    });
    return p;
  }

  /** The e-mail part of "My participation": the verified address, or the form to add one and then its code. */
  private renderEmail(): void {
    const box = this.root.querySelector('#consult-email-box');
    const s = this.session;
    if (!box || !s) return;
    const focusId = document.activeElement instanceof HTMLElement && box.contains(document.activeElement) ? document.activeElement.id : '';
    const known = this.emailOf === s.id ? this.email : undefined;
    const msg = this.emailMsg;
    this.emailMessage.textContent = msg ? t(msg.key, msg.vars) : '';
    this.emailMessage.classList.toggle('error', !!msg?.error);
    const state = el(
      'p',
      { id: 'consult-email-state', 'data-verified': known ? String(known.verified) : '' },
      !known ? t('consult.email.loading') : known.verified ? t('consult.email.verified', { email: known.email ?? '' }) : t('consult.email.none'),
    );
    if (known?.verified && this.emailStep === 'add' && !this.emailBusy && this.emailInput.dataset.open !== 'true') {
      const change = el('button', { type: 'button', class: 'text-button', id: 'consult-email-change' }, t('consult.email.change'));
      change.addEventListener('click', () => {
        this.emailInput.dataset.open = 'true';
        this.emailMsg = undefined;
        this.renderEmail();
        this.emailInput.focus();
      });
      box.replaceChildren(state, change, this.emailMessage);
      return;
    }
    let form: HTMLFormElement;
    if (this.emailStep === 'add' || !this.emailPending) {
      this.emailInput.setAttribute('aria-describedby', 'consult-email-message');
      this.emailInput.required = true;
      const send = el('button', { type: 'submit', class: 'text-button primary', id: 'consult-email-send' }, this.emailBusy ? t('consult.email.sending') : t('consult.email.send'));
      send.disabled = this.emailBusy;
      form = el('form', { class: 'consult-form', id: 'consult-email-form', novalidate: '' }, field('consult-email', t('consult.email.address'), this.emailInput), send);
      form.addEventListener('submit', (e) => {
        e.preventDefault();
        void this.sendCode();
      });
    } else {
      this.codeInput.setAttribute('aria-describedby', 'consult-email-sent consult-email-message');
      this.codeInput.required = true;
      const verify = el('button', { type: 'submit', class: 'text-button primary', id: 'consult-email-verify' }, this.emailBusy ? t('consult.email.verifying') : t('consult.email.verify'));
      verify.disabled = this.emailBusy;
      const again = el('button', { type: 'button', class: 'link-button', id: 'consult-email-again' }, t('consult.email.again'));
      again.addEventListener('click', () => {
        this.emailStep = 'add';
        this.emailMsg = undefined;
        this.codeInput.value = '';
        this.renderEmail();
        this.emailInput.focus();
      });
      form = el(
        'form',
        { class: 'consult-form', id: 'consult-code-form', novalidate: '' },
        el('p', { id: 'consult-email-sent' }, t('consult.email.sent', { email: this.emailPending.email, minutes: this.emailPending.minutes })),
        field('consult-email-code', t('consult.email.code'), this.codeInput),
        verify,
        again,
      );
      form.addEventListener('submit', (e) => {
        e.preventDefault();
        void this.verifyCode();
      });
    }
    box.replaceChildren(state, form, this.emailMessage);
    if (focusId) document.getElementById(focusId)?.focus({ preventScroll: true });
  }

  private setEmailMsg(m: Msg | undefined, error = false): void {
    this.emailMsg = m ? { ...m, error } : undefined;
  }

  /** Says why `input`'s value is not sent (`key`, a message), marks the field invalid and puts the focus on it. */
  private refuseInput(input: HTMLInputElement, key: string): void {
    this.setEmailMsg({ key }, true);
    this.renderEmail();
    input.setAttribute('aria-invalid', 'true');
    input.focus();
  }

  private async sendCode(): Promise<void> {
    if (this.emailBusy) return;
    const address = this.emailInput.value.trim();
    const bad = checkEmail(address);
    if (bad) return this.refuseInput(this.emailInput, bad);
    this.emailInput.removeAttribute('aria-invalid');
    this.emailBusy = true;
    this.setEmailMsg(undefined);
    this.renderEmail();
    try {
      const r = await sendEmailCode(address);
      this.emailPending = { email: r.email ?? address, minutes: r.expiresInMinutes ?? 30 };
      this.emailStep = 'code';
      this.codeInput.value = '';
      this.setEmailMsg(undefined);
    } catch (e) {
      const x = e as { status?: number; message?: string; retryAfter?: number };
      this.setEmailMsg(emailErrorMessage('send', x), true);
    } finally {
      this.emailBusy = false;
    }
    if (this.view !== 'me') return;
    this.renderEmail();
    (this.emailStep === 'code' ? this.codeInput : this.emailInput).focus();
  }

  private async verifyCode(): Promise<void> {
    if (this.emailBusy) return;
    const code = normalizeCode(this.codeInput.value);
    if (!code) return this.refuseInput(this.codeInput, 'consult.email.needCode');
    this.codeInput.removeAttribute('aria-invalid');
    this.emailBusy = true;
    this.setEmailMsg(undefined);
    this.renderEmail();
    let ok = false;
    try {
      const r = await verifyEmailCode(code);
      const who = this.session?.id;
      const address = r.email ?? this.emailPending?.email ?? '';
      this.email = { ...(this.email ?? {}), verified: true, email: address };
      this.emailOf = who;
      this.emailStep = 'add';
      this.emailPending = undefined;
      this.emailInput.value = '';
      delete this.emailInput.dataset.open;
      this.codeInput.value = '';
      this.setEmailMsg({ key: 'consult.email.done', vars: { email: address } });
      this.hooks.announce(t('consult.email.done', { email: address }));
      ok = true;
    } catch (e) {
      const m = emailErrorMessage('verify', e as { status?: number; message?: string });
      this.setEmailMsg(m, true);
      // the code is spent: a new one is needed
      if (m.key === 'consult.email.noTries' || m.key === 'consult.email.expired' || m.key === 'consult.email.noCode') this.codeInput.value = '';
    } finally {
      this.emailBusy = false;
    }
    if (this.view !== 'me') return;
    this.renderEmail();
    if (ok) this.root.querySelector<HTMLElement>('#consult-email-change')?.focus();
    else this.codeInput.focus();
  }

  private async downloadMine(): Promise<void> {
    try {
      const text = await getParticipation();
      const blob = new Blob([text], { type: 'application/json' });
      const url = URL.createObjectURL(blob);
      const a = el('a', { href: url, download: `urbantwin-participation-${this.session?.id ?? 'me'}.json`, hidden: '' });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
      this.say(t('consult.me.downloaded'));
    } catch (e) {
      this.say(t('consult.error', { detail: errText(e) }), true);
    }
  }

  private async deleteAccount(): Promise<void> {
    const pw = el('input', { type: 'password', autocomplete: 'current-password' });
    const ok = await openFormDialog({
      id: 'consult-delete-account',
      title: t('consult.me.deleteTitle'),
      intro: t('consult.me.deleteConfirm'),
      fields: [field('consult-delete-password', t('account.password'), pw)],
      submitLabel: t('consult.me.deleteSubmit'),
      danger: true,
      onSubmit: async () => {
        if (!pw.value) return t('consult.me.needPassword');
        try {
          await deleteMe(pw.value);
        } catch (e) {
          if (e instanceof ApiError && (e.status === 401 || e.status === 403)) return t('consult.me.wrongPassword');
          throw e;
        }
        return undefined;
      },
    });
    if (ok) {
      this.hooks.session.set(undefined);
      this.hooks.announce(t('consult.me.deleted'));
      await this.showList();
      this.say(t('consult.me.deleted'));
    }
  }

  // ---- a new consultation (planners)

  private renderCreate(scenarios: Scenario[]): void {
    const box = this.root.querySelector('#consult-create');
    if (!box) return;
    const title = el('input', { type: 'text', maxlength: '150', autocomplete: 'off', required: '' });
    const summary = el('textarea', { rows: '2', maxlength: '500' });
    const description = el('textarea', { rows: '5', maxlength: '4000' });
    const textLang = el('select', {}, el('option', { value: 'en', lang: 'en' }, 'English'), el('option', { value: 'fi', lang: 'fi' }, 'Suomi'));
    textLang.value = lang();
    const supports = el('input', { type: 'number', min: '1', max: '20', step: '1', value: '3' });
    const publish = el('input', { type: 'checkbox', id: 'consult-create-publish' });
    publish.checked = true;
    const scen = el(
      'fieldset',
      { class: 'radio-group', id: 'consult-create-scenarios' },
      el('legend', {}, t('consult.create.scenarios')),
      ...(scenarios.length
        ? scenarios.map((s, i) => {
            const id = `consult-create-scenario-${i}`;
            return el('div', { class: 'radio' }, el('input', { type: 'checkbox', id, value: s.id, 'data-scenario': s.id }), el('label', { for: id }, s.name || s.id));
          })
        : [el('p', { class: 'muted' }, t('scenarios.none'))]),
    );
    const defaults = defaultPhases(Date.now());
    const phaseRows = PHASES.map((ph) => {
      const d = defaults.find((x) => x.phase === ph);
      const on = el('input', { type: 'checkbox', id: `consult-create-${ph}`, 'data-phase': ph });
      on.checked = !!d;
      const start = el('input', { type: 'datetime-local', id: `consult-create-${ph}-start` });
      const end = el('input', { type: 'datetime-local', id: `consult-create-${ph}-end` });
      if (d) {
        start.value = toLocalInput(d.start);
        end.value = toLocalInput(d.end);
      }
      return {
        ph,
        on,
        start,
        end,
        row: el(
          'div',
          { class: 'phase-row', 'data-phase': ph },
          el('div', { class: 'check' }, on, el('label', { for: on.id }, phaseLabel(ph))),
          el('div', { class: 'field' }, el('label', { for: start.id }, t('consult.create.start')), start),
          el('div', { class: 'field' }, el('label', { for: end.id }, t('consult.create.end')), end),
        ),
      };
    });
    const message = el('p', { class: 'form-message', role: 'alert', id: 'consult-create-message' });
    const form = el(
      'form',
      { class: 'consult-form', id: 'consult-create-form', novalidate: '' },
      field('consult-create-lang', t('consult.create.lang'), textLang),
      field('consult-create-title', t('consult.create.titleField'), title),
      field('consult-create-summary', t('consult.create.summary'), summary),
      field('consult-create-description', t('consult.create.description'), description),
      scen,
      el('fieldset', { class: 'radio-group' }, el('legend', {}, t('consult.create.phases')), ...phaseRows.map((r) => r.row)),
      field('consult-create-supports', t('consult.create.supports'), supports),
      el('div', { class: 'check' }, publish, el('label', { for: 'consult-create-publish' }, t('consult.create.publish'))),
      message,
      el('button', { type: 'submit', class: 'text-button primary', id: 'consult-create-submit' }, t('consult.create.submit')),
    );
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const phases: DraftPhase[] = phaseRows.filter((r) => r.on.checked).map((r) => ({ phase: r.ph as Phase, start: fromLocalInput(r.start.value), end: fromLocalInput(r.end.value) }));
      const err = checkConsultation({ title: title.value, phases });
      if (err) {
        message.textContent = t(err);
        if (err.startsWith('consult.check.title')) title.focus();
        return;
      }
      const l = textLang.value;
      const picked = [...scen.querySelectorAll<HTMLInputElement>('input[type=checkbox]:checked')].map((i) => i.value);
      try {
        const created = await createConsultation({
          title: { [l]: title.value.trim() },
          ...(summary.value.trim() ? { summary: { [l]: summary.value.trim() } } : {}),
          ...(description.value.trim() ? { description: { [l]: description.value.trim() } } : {}),
          scenarios: picked,
          phases,
          supportsPerPerson: Math.max(1, Math.round(Number(supports.value) || 3)),
          published: publish.checked,
        });
        this.hooks.announce(t('consult.create.done'));
        await this.open(created.id);
        this.say(t('consult.create.done'));
      } catch (x) {
        message.textContent = this.writeError(x);
      }
    });
    box.replaceChildren(el('p', { class: 'panel-intro' }, t('consult.create.intro')), form);
    title.focus();
  }
}
