// The scenario editor: "what if this street were closed?" Lists the twin's scenarios (`/api/scenarios`), edits one
// (name, description, and edits picked on the map, typed or drawn: close a street, a segment or everything in a drawn
// area, change lanes or speed, add a new street along a drawn line), saves and runs it, follows the run's progress
// (with Cancel) and shows its results: the delta layer drawn from the simulated `TrafficFlowObserved` entities the run
// publishes (vector tiles, filtered on `refScenario`), the flows of the baseline and the scenario one at a time or
// side by side (swipe), and a summary card (vehicle-km, vehicle-hours and unserved trips against the baseline). "Air &
// noise" colours the `RoadLink` lines by the run's NO2, noise (Lden) or their change (`/air`, `/noise`; see air.ts),
// with the residents exposed and the emissions, baseline → scenario.
// See docs/api.md, "Scenarios".

import type { ExpressionSpecification, FilterSpecification, Map as MlMap, MapGeoJSONFeature, VectorTileSource } from 'maplibre-gl';
import {
  ApiError,
  cancelRun,
  createScenario,
  getAir,
  getNoise,
  getRun,
  getScenario,
  listRuns,
  listScenarios,
  queryEntities,
  replaceScenario,
  startRun,
  type AirResults,
  type NoiseResults,
  type RunSummary,
  type Scenario,
  type ScenarioEdit,
  type ScenarioRun,
} from './api';
import { AIR_LAYER, AIR_SOURCE, AIR_VIEWS, colorExpression, featureStates, isAirView, legendItems, legendText, rowText, streetRows, summaryRows, type AirView } from './air';
import { SwipeCompare } from './compare';
import { el } from './dom';
import { lineLengthM, ringAreaM2, Sketch, type Position, type Shape, type SketchKind } from './draw';
import { fmtNumber, onLangChange, t } from './i18n';

export const SCENARIO_SOURCE = 'app-scenario-flows';
export const SCENARIO_LAYERS = { delta: 'app-scenario-delta', closed: 'app-scenario-closed' } as const;

/** Classes of the change in vehicles per hour: colour and legend key. Diverging: blue less, orange and red more. */
export const DELTA_CLASSES = [
  { key: 'muchLess', color: '#2166ac' },
  { key: 'less', color: '#67a9cf' },
  { key: 'same', color: '#bdbdbd' },
  { key: 'more', color: '#f08c00' },
  { key: 'muchMore', color: '#c62828' },
] as const;
/** Class breaks (veh/h) between the classes above. */
const DELTA_BREAKS = [-100, -10, 10, 100];
export const CLOSED_COLOR = '#5f6368';
/** Classes of the flow itself (vehicles per hour, both directions), for comparing the baseline with the scenario. */
export const FLOW_CLASSES = [
  { upTo: 250, color: '#cbc9e2' },
  { upTo: 750, color: '#9e9ac8' },
  { upTo: 1500, color: '#6a51a3' },
  { upTo: undefined, color: '#3f007d' },
] as const;
const FLOW_COLOR: ExpressionSpecification = [
  'step',
  ['coalesce', ['get', 'intensity'], 0],
  FLOW_CLASSES[0].color,
  250,
  FLOW_CLASSES[1].color,
  750,
  FLOW_CLASSES[2].color,
  1500,
  FLOW_CLASSES[3].color,
];
export const BASELINE_ID = 'urn:ngsi-ld:Scenario:baseline';

/** What the results layer shows: the change, or the flows of the baseline or of the scenario, or both side by side;
 * or the air and noise of the scenario's run on the streets (`RoadLink` lines). */
export type ResultView = 'delta' | 'baseline' | 'scenario' | 'swipe' | AirView;

/** Road classes a new street can have (OSM `highway`; the model takes speed and capacity per lane from the class). */
export const NEW_STREET_CLASSES = ['residential', 'tertiary', 'secondary', 'primary', 'living_street', 'service'] as const;
/** The classes' default free-flow speeds (km/h), as in the model's table (crates/twin-model/src/roads.rs). */
const CLASS_KMH: Record<string, number> = { residential: 50, tertiary: 50, secondary: 50, primary: 50, living_street: 20, service: 20 };

const DELTA_COLOR: ExpressionSpecification = [
  'step',
  ['coalesce', ['get', 'intensityChange'], 0],
  DELTA_CLASSES[0].color,
  DELTA_BREAKS[0]!,
  DELTA_CLASSES[1].color,
  DELTA_BREAKS[1]!,
  DELTA_CLASSES[2].color,
  DELTA_BREAKS[2]!,
  DELTA_CLASSES[3].color,
  DELTA_BREAKS[3]!,
  DELTA_CLASSES[4].color,
];

/** A street picked on the map (or typed): its name and, when picked, the `RoadSegment` under the pointer. */
interface Picked {
  name: string;
  segment?: string;
}

type Action = 'closeStreet' | 'closeLinks' | 'closeArea' | 'setLanes' | 'setSpeed' | 'addLink';

type Polygon = { type: 'Polygon'; coordinates: Position[][] };

/** The drawn area an edit applies to, if any. */
function areaOf(e: ScenarioEdit): Polygon | undefined {
  if (e.kind === 'closeArea') return e.polygon as Polygon;
  const tg = (e as { target?: { area?: Polygon } }).target;
  return tg?.area;
}

/** Hectares of a drawn area (its outer ring). */
function hectares(p: Polygon | undefined): number {
  return p?.coordinates?.[0] ? ringAreaM2(p.coordinates[0]) / 10_000 : 0;
}

interface Draft {
  id?: string;
  name: string;
  description: string;
  edits: ScenarioEdit[];
}

const FINISHED = new Set(['done', 'failed', 'cancelled']);

export interface ScenarioPanelOptions {
  /** The selected scenario changed (for the URL). */
  onSelect: (id: string | undefined) => void;
  /** What a second map of the same style needs (swipe comparison). */
  icons: Map<string, ImageData>;
  transformRequest: (url: string) => { url: string };
  /** Who may write: without it the panel writes as whoever the server sees. */
  auth?: ScenarioAuth;
}

/** What the panel needs to know of the session: creating, saving and running scenarios needs an account. */
export interface ScenarioAuth {
  /** Whether the session may write scenarios (signed in, not a device). */
  canEdit: () => boolean;
  /** Whether someone is signed in at all. */
  signedIn: () => boolean;
  /** Opens the sign-in dialog with the reason (a message key); resolves true once signed in. */
  signIn: (reasonKey: string) => Promise<boolean>;
  /** Calls `f` when the session changes. */
  onChange: (f: () => void) => void;
}

/** What the app says about a run, in the user's language: from the summary's figures when it is done; the server's
 * own words (the model's, in English) only for failures, where they name the edit at fault. */
export function runMessage(r: Pick<ScenarioRun, 'status' | 'message' | 'summary'>): string {
  const s = r.summary as (RunSummary & { converged?: boolean; relativeGap?: number; iterations?: number; seconds?: number; unservedPairs?: unknown[]; published?: { error?: string } }) | undefined;
  switch (r.status) {
    case 'done': {
      if (!s) return '';
      const parts: string[] = [];
      if ((s.unservedTrips ?? 0) > 0)
        parts.push(t('scenarios.runMessage.unserved', { trips: fmtNumber(s.unservedTrips!, 1), pairs: s.unservedPairs?.length ?? 0 }));
      if (typeof s.relativeGap === 'number') {
        const gap = s.relativeGap.toExponential(1);
        parts.push(
          s.converged
            ? t('scenarios.runMessage.converged', { gap, n: s.iterations ?? 0, s: fmtNumber(s.seconds ?? 0, 2) })
            : t('scenarios.runMessage.stopped', { gap }),
        );
      }
      if (s.published?.error) parts.push(t('scenarios.runMessage.notPublished'));
      return parts.join(' ');
    }
    case 'failed':
      return r.message ? t('scenarios.runMessage.failed', { detail: r.message }) : '';
    default:
      return '';
  }
}

export class ScenarioPanel {
  private list: Scenario[] = [];
  private draft: Draft = { name: '', description: '', edits: [] };
  private run: ScenarioRun | undefined;
  private picked: Picked | undefined;
  private pollTimer: number | undefined;
  private busy = false;
  private view: ResultView = 'delta';
  /** The scenario whose results are on the map. */
  private shown: string | undefined;
  /** Labels of `closeLinks` edits made here (the edit itself holds only ids). */
  private readonly linkLabels = new Map<string, string>();
  /** A drawn area or line waiting to become an edit. */
  private shape: Shape | undefined;
  private compare: SwipeCompare | undefined;
  /** The air and noise results on the map's feature state: of which scenario and run, or why there are none. */
  private air: { key: string; state: 'loading' | 'ok' | 'noRun' | 'error'; detail?: string; air?: AirResults; noise?: NoiseResults } | undefined;
  readonly sketch: Sketch;
  picking = false;

  private readonly listEl = el('ul', { class: 'scenario-list', id: 'scenario-list' });
  private readonly nameInput = el('input', { id: 'scenario-name', type: 'text', required: '', autocomplete: 'off' });
  private readonly descInput = el('textarea', { id: 'scenario-description', rows: '2' });
  private readonly editsEl = el('ol', { class: 'scenario-edits', id: 'scenario-edits' });
  private readonly pickButton = el('button', { type: 'button', class: 'text-button', id: 'scenario-pick', 'aria-pressed': 'false' });
  private readonly drawAreaButton = el('button', { type: 'button', class: 'text-button', id: 'scenario-draw-area', 'aria-pressed': 'false' });
  private readonly drawLineButton = el('button', { type: 'button', class: 'text-button', id: 'scenario-draw-line', 'aria-pressed': 'false' });
  private readonly drawTools = el('div', { class: 'draw-tools', id: 'scenario-draw-tools' });
  private readonly finishButton = el('button', { type: 'button', class: 'text-button primary', id: 'scenario-draw-finish' });
  private readonly undoButton = el('button', { type: 'button', class: 'text-button', id: 'scenario-draw-undo' });
  private readonly cancelDrawButton = el('button', { type: 'button', class: 'text-button', id: 'scenario-draw-cancel' });
  private readonly shapeEl = el('p', { class: 'muted', id: 'scenario-shape' });
  private readonly streetLabel = el('label', { for: 'scenario-street' });
  private readonly streetRow = el('div', { class: 'field' });
  private readonly classSelect = el('select', { id: 'scenario-road-class' });
  private readonly classRow = el('div', { class: 'field' });
  private readonly kmhInput = el('input', { id: 'scenario-new-kmh', type: 'number', min: '5', max: '130', step: '5' });
  private readonly lanesInput = el('input', { id: 'scenario-new-lanes', type: 'number', min: '1', max: '6', step: '1', value: '1' });
  private readonly newStreetRows = el('div', { class: 'new-street' });
  private readonly actionRow = el('div', { class: 'field' });
  private readonly oneWayInput = el('input', { id: 'scenario-one-way', type: 'checkbox' });
  private readonly streetInput = el('input', { id: 'scenario-street', type: 'text', autocomplete: 'off', spellcheck: 'false' });
  private readonly segmentEl = el('p', { class: 'muted', id: 'scenario-segment' });
  private readonly actionSelect = el('select', { id: 'scenario-action' });
  private readonly scopeSelect = el('select', { id: 'scenario-scope' });
  private readonly valueInput = el('input', { id: 'scenario-value', type: 'number', min: '1', step: '1' });
  private readonly valueLabel = el('label', { for: 'scenario-value' });
  private readonly valueRow = el('div', { class: 'field' });
  private readonly scopeRow = el('div', { class: 'field' });
  private readonly addButton = el('button', { type: 'button', class: 'text-button', id: 'scenario-add' });
  private readonly saveButton = el('button', { type: 'button', class: 'text-button', id: 'scenario-save' });
  private readonly runButton = el('button', { type: 'button', class: 'text-button primary', id: 'scenario-run' });
  private readonly statusEl = el('p', { class: 'scenario-status', id: 'scenario-status', role: 'status', 'aria-live': 'polite' });
  private readonly runEl = el('div', { class: 'scenario-run', id: 'scenario-run-state' });
  private readonly signInButton = el('button', { type: 'button', class: 'text-button primary', id: 'scenario-signin' });
  private readonly signInNote = el('div', { class: 'signin-note', id: 'scenario-signin-note' });
  private readonly resultEl = el('section', { class: 'panel-section scenario-results', id: 'scenario-results', 'aria-labelledby': 'scenario-results-title' });
  private readonly airEl = el('div', { class: 'scenario-air', id: 'scenario-air', 'aria-live': 'polite' });

  constructor(
    private readonly root: HTMLElement,
    private readonly map: MlMap,
    private readonly opts: ScenarioPanelOptions,
  ) {
    this.sketch = new Sketch(map, {
      onChange: (kind, n) => {
        this.renderPick();
        this.status(t(`scenarios.draw.${kind}Progress`, { n }));
      },
      onFinish: (shape) => {
        this.shape = shape;
        this.picked = undefined;
        this.renderPick();
        this.status(shape.kind === 'area' ? t('scenarios.draw.areaDone', { ha: fmtNumber(hectares(shape.polygon), 1) }) : t('scenarios.draw.lineDone', { m: fmtNumber(lineLengthM(shape.path)) }));
        this.actionSelect.focus({ preventScroll: true });
      },
      onCancel: () => {
        this.renderPick();
        this.status(t('scenarios.draw.cancelled'));
      },
    });
    this.build();
    onLangChange(() => {
      this.renderDynamic();
      if (this.compare) {
        // its captions are in the old language
        this.compare.remove();
        this.compare = undefined;
        this.showDelta(this.shown);
      }
    });
    this.renderDynamic();
  }

  /** The scenario shown (saved), if any. */
  get selectedId(): string | undefined {
    return this.draft.id;
  }

  // ---- markup

  private build(): void {
    const i18n = (key: string) => ({ 'data-i18n': key });
    const newButton = el('button', { type: 'button', class: 'text-button', id: 'scenario-new', ...i18n('scenarios.new') });
    newButton.addEventListener('click', () => this.newDraft());
    this.nameInput.addEventListener('input', () => (this.draft.name = this.nameInput.value));
    this.descInput.addEventListener('input', () => (this.draft.description = this.descInput.value));
    this.pickButton.setAttribute('data-i18n', 'scenarios.pick');
    this.pickButton.addEventListener('click', () => this.setPicking(!this.picking));
    this.drawAreaButton.setAttribute('data-i18n', 'scenarios.draw.area');
    this.drawAreaButton.addEventListener('click', () => this.toggleDrawing('area'));
    this.drawLineButton.setAttribute('data-i18n', 'scenarios.draw.line');
    this.drawLineButton.addEventListener('click', () => this.toggleDrawing('line'));
    this.finishButton.setAttribute('data-i18n', 'scenarios.draw.finish');
    this.finishButton.addEventListener('click', () => {
      if (!this.sketch.finish()) this.status(t('scenarios.draw.tooFew'), true);
    });
    this.undoButton.setAttribute('data-i18n', 'scenarios.draw.undo');
    this.undoButton.addEventListener('click', () => this.sketch.undo());
    this.cancelDrawButton.setAttribute('data-i18n', 'scenarios.draw.cancel');
    this.cancelDrawButton.addEventListener('click', () => this.sketch.cancel());
    this.drawTools.append(this.finishButton, this.undoButton, this.cancelDrawButton);
    this.classSelect.addEventListener('change', () => (this.kmhInput.placeholder = String(CLASS_KMH[this.classSelect.value] ?? '')));
    this.streetRow.append(this.streetLabel, this.streetInput);
    this.actionRow.append(el('label', { for: 'scenario-action', ...i18n('scenarios.actionLabel') }), this.actionSelect);
    this.classRow.append(el('label', { for: 'scenario-road-class', ...i18n('scenarios.roadClass') }), this.classSelect);
    this.newStreetRows.append(
      this.classRow,
      el('div', { class: 'field' }, el('label', { for: 'scenario-new-kmh', ...i18n('scenarios.kmhOptional') }), this.kmhInput),
      el('div', { class: 'field' }, el('label', { for: 'scenario-new-lanes', ...i18n('scenarios.lanes') }), this.lanesInput),
      el('div', { class: 'check' }, this.oneWayInput, el('label', { for: 'scenario-one-way', ...i18n('scenarios.oneWay') })),
    );
    this.streetInput.addEventListener('input', () => {
      // a typed name is a whole street: a segment picked before no longer applies
      if (this.picked?.segment && this.picked.name !== this.streetInput.value) this.picked = undefined;
      this.renderPick();
    });
    this.actionSelect.addEventListener('change', () => this.renderPick());
    this.scopeSelect.addEventListener('change', () => this.renderPick());
    this.addButton.setAttribute('data-i18n', 'scenarios.addEdit');
    this.addButton.addEventListener('click', () => void this.addEdit());
    this.saveButton.setAttribute('data-i18n', 'scenarios.save');
    this.saveButton.addEventListener('click', () => void this.save());
    this.runButton.setAttribute('data-i18n', 'scenarios.run');
    this.runButton.addEventListener('click', () => void this.startRun());
    this.signInButton.addEventListener('click', () => void this.ensureSignedIn());
    this.opts.auth?.onChange(() => {
      this.renderAuth();
      // what the list holds may depend on who asks
      if (!this.root.closest('[hidden]')) void this.refreshList();
    });
    this.valueRow.append(this.valueLabel, this.valueInput);
    this.scopeRow.append(el('label', { for: 'scenario-scope', ...i18n('scenarios.scope') }), this.scopeSelect);

    this.root.replaceChildren(
      el('section', { class: 'panel-section', 'aria-labelledby': 'scenario-list-title' },
        el('h3', { id: 'scenario-list-title', ...i18n('scenarios.saved') }),
        this.listEl,
        newButton,
      ),
      el('section', { class: 'panel-section', 'aria-labelledby': 'scenario-edit-title' },
        el('h3', { id: 'scenario-edit-title', ...i18n('scenarios.scenario') }),
        this.signInNote,
        el('div', { class: 'field' }, el('label', { for: 'scenario-name', ...i18n('scenarios.name') }), this.nameInput),
        el('div', { class: 'field' }, el('label', { for: 'scenario-description', ...i18n('scenarios.description') }), this.descInput),
        el('h4', { id: 'scenario-edits-title', ...i18n('scenarios.edits') }),
        this.editsEl,
        el('fieldset', { class: 'scenario-add' },
          el('legend', i18n('scenarios.addTitle')),
          el('div', { class: 'draw-tools' }, this.pickButton, this.drawAreaButton, this.drawLineButton),
          el('p', { class: 'hint', id: 'scenario-pick-hint', ...i18n('scenarios.pickHint') }),
          this.drawTools,
          this.shapeEl,
          this.streetRow,
          this.segmentEl,
          this.actionRow,
          this.scopeRow,
          this.valueRow,
          this.newStreetRows,
          this.addButton,
        ),
        el('div', { class: 'scenario-actions' }, this.saveButton, this.runButton),
        this.statusEl,
        this.runEl,
      ),
      this.resultEl,
    );
    this.resultEl.hidden = true;
  }

  /** Everything whose text depends on the state (the static labels are `data-i18n`). */
  private renderDynamic(): void {
    this.renderAuth();
    this.renderList();
    this.renderEdits();
    this.renderPick();
    this.renderRun();
  }

  /** Anonymous: Save and Run say that they need an account and lead to the sign-in dialog. */
  private renderAuth(): void {
    const auth = this.opts.auth;
    const may = !auth || auth.canEdit();
    this.signInNote.hidden = may;
    if (may) {
      this.signInNote.replaceChildren();
      for (const b of [this.saveButton, this.runButton]) {
        b.removeAttribute('title');
        b.removeAttribute('aria-describedby');
      }
      return;
    }
    const text = auth.signedIn() ? t('scenarios.cannotEdit') : t('scenarios.signInToEdit');
    this.signInButton.textContent = t('scenarios.signInToEdit');
    this.signInNote.replaceChildren(auth.signedIn() ? el('p', { class: 'panel-intro', id: 'scenario-signin-text' }, text) : this.signInButton);
    for (const b of [this.saveButton, this.runButton]) {
      b.title = text;
      b.setAttribute('aria-describedby', auth.signedIn() ? 'scenario-signin-text' : 'scenario-signin');
    }
  }

  /** True when the session may write scenarios; else opens the sign-in dialog (false when closed without). */
  private async ensureSignedIn(): Promise<boolean> {
    const auth = this.opts.auth;
    if (!auth || auth.canEdit()) return true;
    if (auth.signedIn()) {
      this.status(t('scenarios.cannotEdit'), true);
      return false;
    }
    const ok = await auth.signIn('scenarios.signInToEdit');
    this.renderAuth();
    if (!ok) this.status(t('scenarios.signInToEdit'), true);
    return ok && auth.canEdit();
  }

  private renderList(): void {
    if (!this.list.length) {
      this.listEl.replaceChildren(el('li', { class: 'muted' }, t('scenarios.none')));
      return;
    }
    this.listEl.replaceChildren(
      ...this.list.map((s) => {
        const b = el('button', { type: 'button', class: 'scenario-item', 'data-scenario': s.id, 'aria-pressed': String(s.id === this.draft.id) }, s.name || s.id);
        b.addEventListener('click', () => void this.select(s.id));
        return el('li', {}, b);
      }),
    );
  }

  private editLabel(e: ScenarioEdit): string {
    const target = (x: unknown): string => {
      const tg = x as { street?: string; links?: string[]; area?: Polygon } | undefined;
      if (tg?.street) return tg.street;
      if (tg?.area) return t('scenarios.areaTarget', { ha: fmtNumber(hectares(tg.area), 1) });
      if (tg?.links) return this.linkLabels.get(tg.links.join(',')) ?? t('scenarios.nLinks', { n: tg.links.length });
      return '?';
    };
    switch (e.kind) {
      case 'closeStreet':
        return t('scenarios.edit.closeStreet', { name: String(e.name) });
      case 'closeLinks': {
        const links = (e.links as string[]) ?? [];
        return t('scenarios.edit.closeLinks', { name: this.linkLabels.get(links.join(',')) ?? '', n: links.length });
      }
      case 'setLanes':
        return t('scenarios.edit.setLanes', { target: target(e.target), n: Number(e.lanes) });
      case 'setSpeed':
        return t('scenarios.edit.setSpeed', { target: target(e.target), n: Number(e.kmh) });
      case 'closeArea':
        return t('scenarios.edit.closeArea', { ha: fmtNumber(hectares(areaOf(e)), 1) });
      case 'addLink': {
        const path = (e.path as Position[]) ?? [];
        const name = typeof e.name === 'string' && e.name ? e.name : t('scenarios.newStreet');
        return t('scenarios.edit.addLink', { name, m: fmtNumber(lineLengthM(path)) });
      }
      default:
        return e.kind;
    }
  }

  private renderEdits(): void {
    // the edits' areas and new streets on the map, numbered as in the list
    this.sketch.setEditShapes(
      this.draft.edits.flatMap((e, i) => {
        const area = areaOf(e);
        if (area) return [{ type: 'Feature' as const, properties: { edit: i + 1, kind: e.kind }, geometry: area }];
        if (e.kind === 'addLink' && Array.isArray(e.path))
          return [{ type: 'Feature' as const, properties: { edit: i + 1, kind: e.kind }, geometry: { type: 'LineString', coordinates: e.path } }];
        return [];
      }),
    );
    if (!this.draft.edits.length) {
      this.editsEl.replaceChildren(el('li', { class: 'muted no-marker' }, t('scenarios.noEdits')));
      return;
    }
    this.editsEl.replaceChildren(
      ...this.draft.edits.map((e, i) => {
        const label = this.editLabel(e);
        const remove = el('button', { type: 'button', class: 'icon-button small', 'aria-label': t('scenarios.removeEdit', { edit: label }) }, '×');
        remove.addEventListener('click', () => {
          this.draft.edits.splice(i, 1);
          this.renderEdits();
          this.status(t('scenarios.removed', { edit: label }));
          (this.editsEl.querySelector<HTMLElement>('button') ?? this.streetInput).focus();
        });
        return el('li', { 'data-edit-kind': e.kind }, el('span', {}, label), remove);
      }),
    );
  }

  private renderPick(): void {
    this.pickButton.setAttribute('aria-pressed', String(this.picking));
    this.pickButton.classList.toggle('active', this.picking);
    const drawing = this.sketch.drawing;
    for (const [b, kind] of [[this.drawAreaButton, 'area'], [this.drawLineButton, 'line']] as const) {
      b.setAttribute('aria-pressed', String(drawing === kind));
      b.classList.toggle('active', drawing === kind);
    }
    this.drawTools.hidden = !drawing;
    this.undoButton.disabled = !this.sketch.count;
    const shape = drawing ? undefined : this.shape;
    this.shapeEl.hidden = !shape;
    this.shapeEl.textContent = !shape
      ? ''
      : shape.kind === 'area'
        ? t('scenarios.draw.areaShape', { ha: fmtNumber(hectares(shape.polygon), 1) })
        : t('scenarios.draw.lineShape', { m: fmtNumber(lineLengthM(shape.path)) });
    const segment = !shape && this.picked?.segment && this.picked.name === this.streetInput.value ? this.picked.segment : undefined;
    this.segmentEl.textContent = segment ? t('scenarios.segmentPicked', { id: segment.replace(/^urn:ngsi-ld:RoadSegment:/, '') }) : '';
    this.segmentEl.hidden = !segment;
    const action = (this.actionSelect.value || 'closeStreet') as Action;
    const actions: Action[] =
      shape?.kind === 'area'
        ? ['closeArea', 'setLanes', 'setSpeed']
        : shape?.kind === 'line'
          ? ['addLink']
          : segment
            ? ['closeStreet', 'closeLinks', 'setLanes', 'setSpeed']
            : ['closeStreet', 'setLanes', 'setSpeed'];
    this.actionSelect.replaceChildren(...actions.map((a) => el('option', { value: a }, t(`scenarios.action.${a}`))));
    this.actionSelect.value = actions.includes(action) ? action : actions[0]!;
    const scope = this.scopeSelect.value || 'street';
    const scopes = segment ? ['street', 'segment'] : ['street'];
    this.scopeSelect.replaceChildren(...scopes.map((s) => el('option', { value: s }, t(`scenarios.scopes.${s}`))));
    this.scopeSelect.value = scopes.includes(scope) ? scope : 'street';
    const a = this.actionSelect.value as Action;
    const numeric = a === 'setLanes' || a === 'setSpeed';
    // a street is named for street edits; a new street may have a name; an area has none. While drawing, only the
    // drawing's own buttons
    this.streetRow.hidden = shape?.kind === 'area' || drawing !== undefined;
    this.streetLabel.textContent = shape?.kind === 'line' ? t('scenarios.newStreetName') : t('scenarios.street');
    this.actionRow.hidden = drawing !== undefined;
    this.addButton.hidden = drawing !== undefined;
    this.valueRow.hidden = !numeric || drawing !== undefined;
    this.scopeRow.hidden = !numeric || !segment || drawing !== undefined;
    this.newStreetRows.hidden = a !== 'addLink';
    const cls = this.classSelect.value || 'residential';
    this.classSelect.replaceChildren(...NEW_STREET_CLASSES.map((c) => el('option', { value: c }, t(`scenarios.roadClasses.${c}`))));
    this.classSelect.value = cls;
    this.kmhInput.placeholder = String(CLASS_KMH[cls] ?? '');
    this.valueLabel.textContent = a === 'setSpeed' ? t('scenarios.kmh') : t('scenarios.lanes');
    if (numeric && !this.valueInput.value) this.valueInput.value = a === 'setSpeed' ? '30' : '1';
  }

  private status(text: string, error = false): void {
    this.statusEl.textContent = text;
    this.statusEl.classList.toggle('error', error);
  }

  // ---- picking streets

  setPicking(on: boolean): void {
    if (on) this.sketch.cancel();
    this.picking = on;
    this.map.getCanvas().style.cursor = on ? 'crosshair' : '';
    this.renderPick();
    if (on) this.status(t('scenarios.pickOn'));
  }

  /** A street feature (RoadSegment) clicked on the map, or under the centre for the keyboard. */
  pick(f: MapGeoJSONFeature | undefined): void {
    const name = typeof f?.properties?.name === 'string' ? f.properties.name : '';
    const id = typeof f?.properties?.id === 'string' ? f.properties.id : undefined;
    if (!f || (!name && !id)) {
      this.status(t('scenarios.noStreet'));
      return;
    }
    this.picked = { name, segment: id };
    this.shape = undefined;
    this.streetInput.value = name;
    this.renderPick();
    this.status(t('scenarios.picked', { name: name || id! }));
    this.actionSelect.focus({ preventScroll: true });
  }

  // ---- drawing areas and new streets

  private toggleDrawing(kind: SketchKind): void {
    if (this.sketch.drawing === kind) {
      this.sketch.cancel();
      return;
    }
    this.setPicking(false);
    this.shape = undefined;
    // the side-by-side map would cover the drawing: back to one map
    if (this.view === 'swipe') this.setView('delta');
    this.sketch.start(kind);
    this.status(t(`scenarios.draw.${kind}Hint`));
  }

  /** A point for the drawing: a click on the map, or the crosshair for the keyboard. */
  addPoint(p: Position): void {
    this.sketch.addPoint(p);
  }

  get drawing(): boolean {
    return this.sketch.drawing !== undefined;
  }

  /** The edit for the drawn shape and the chosen action. */
  private shapeEdit(shape: Shape, action: Action): ScenarioEdit | undefined {
    if (shape.kind === 'line') {
      const name = this.streetInput.value.trim();
      const kmh = Number(this.kmhInput.value);
      const lanes = Number(this.lanesInput.value);
      if (this.kmhInput.value && !(kmh > 0)) return undefined;
      if (this.lanesInput.value && !(lanes >= 1)) return undefined;
      return {
        kind: 'addLink',
        path: shape.path,
        ...(name ? { name } : {}),
        roadClass: this.classSelect.value || 'residential',
        ...(this.kmhInput.value ? { kmh } : {}),
        ...(this.lanesInput.value && lanes !== 1 ? { lanes: Math.round(lanes) } : {}),
        ...(this.oneWayInput.checked ? { oneWay: true } : {}),
      };
    }
    const value = Number(this.valueInput.value);
    if (action === 'closeArea') return { kind: 'closeArea', polygon: shape.polygon };
    if (!(value > 0)) return undefined;
    if (action === 'setLanes') return { kind: 'setLanes', target: { area: shape.polygon }, lanes: Math.round(value) };
    return { kind: 'setSpeed', target: { area: shape.polygon }, kmh: value };
  }

  private async addEdit(): Promise<void> {
    const name = this.streetInput.value.trim();
    const action = this.actionSelect.value as Action;
    if (this.sketch.drawing) {
      this.status(t('scenarios.draw.finishFirst'), true);
      return;
    }
    if (this.shape) {
      const edit = this.shapeEdit(this.shape, action);
      if (!edit) {
        this.status(t('scenarios.needValue'), true);
        return;
      }
      this.draft.edits.push(edit);
      this.shape = undefined;
      this.streetInput.value = '';
      this.renderEdits();
      this.renderPick();
      this.status(t('scenarios.added', { edit: this.editLabel(edit) }));
      return;
    }
    const segment = this.picked?.segment && this.picked.name === this.streetInput.value ? this.picked.segment : undefined;
    const bySegment = action === 'closeLinks' || (segment !== undefined && this.scopeSelect.value === 'segment');
    if (!name && !bySegment) {
      this.status(t('scenarios.needStreet'), true);
      this.streetInput.focus();
      return;
    }
    let target: { street: string } | { links: string[] } = { street: name };
    if (bySegment && segment) {
      // a segment's links for cars (the model closes `RoadLink`s)
      let links: string[];
      try {
        const found = await queryEntities({ type: 'RoadLink', q: `refRoadSegment=="${segment}"`, attrs: 'name', limit: 100 });
        links = found.map((e) => e.id);
      } catch (e) {
        this.status(t('scenarios.error', { detail: e instanceof Error ? e.message : String(e) }), true);
        return;
      }
      if (!links.length) {
        this.status(t('scenarios.noLinks'), true);
        return;
      }
      this.linkLabels.set(links.join(','), name || segment);
      target = { links };
    }
    const value = Number(this.valueInput.value);
    if ((action === 'setLanes' || action === 'setSpeed') && !(value > 0)) {
      this.status(t('scenarios.needValue'), true);
      this.valueInput.focus();
      return;
    }
    let edit: ScenarioEdit;
    if (action === 'closeStreet') edit = { kind: 'closeStreet', name };
    else if (action === 'closeLinks') edit = { kind: 'closeLinks', links: (target as { links: string[] }).links };
    else if (action === 'setLanes') edit = { kind: 'setLanes', target, lanes: Math.round(value) };
    else edit = { kind: 'setSpeed', target, kmh: value };
    this.draft.edits.push(edit);
    this.renderEdits();
    this.status(t('scenarios.added', { edit: this.editLabel(edit) }));
  }

  // ---- scenarios

  async refreshList(): Promise<void> {
    try {
      this.list = await listScenarios();
    } catch (e) {
      this.status(t('scenarios.error', { detail: e instanceof Error ? e.message : String(e) }), true);
    }
    this.renderList();
  }

  private newDraft(): void {
    this.stopPolling();
    this.sketch.cancel();
    this.shape = undefined;
    this.draft = { name: '', description: '', edits: [] };
    this.run = undefined;
    this.nameInput.value = '';
    this.descInput.value = '';
    this.showDelta(undefined);
    this.opts.onSelect(undefined);
    this.renderDynamic();
    this.nameInput.focus();
  }

  /** Shows a scenario's latest done run on the map without the editor (a consultation's scenario); resolves whether
   * it has results. The URL is left as it is. */
  async showOnMap(id: string): Promise<boolean> {
    await this.select(id, false);
    return this.shown === id;
  }

  /** Takes the results off the map (the consultation's "Hide"). */
  hideFromMap(): void {
    this.showDelta(undefined);
  }

  /** Whether the scenario's results are on the map (it has a finished run). */
  hasResults(id: string): boolean {
    return this.shown === id && this.run?.status === 'done';
  }

  /** A section at the top of the editor (a consultation's proposal being drafted), or none. */
  setBanner(node: HTMLElement | undefined): void {
    this.root.querySelector(':scope > .consult-banner')?.remove();
    if (node) this.root.prepend(node);
  }

  /** Shows a saved scenario with its latest run (`notify`: the URL follows). */
  async select(id: string, notify = true): Promise<void> {
    this.stopPolling();
    let s: Scenario;
    let runs: ScenarioRun[];
    try {
      [s, runs] = await Promise.all([getScenario(id), listRuns(id)]);
    } catch (e) {
      this.status(t('scenarios.error', { detail: e instanceof Error ? e.message : String(e) }), true);
      return;
    }
    this.sketch.cancel();
    this.shape = undefined;
    this.draft = { id: s.id, name: s.name, description: s.description ?? '', edits: s.edits };
    this.nameInput.value = s.name;
    this.descInput.value = s.description ?? '';
    this.run = runs[runs.length - 1];
    if (notify) this.opts.onSelect(s.id);
    if (!this.list.some((x) => x.id === s.id)) await this.refreshList();
    this.renderDynamic();
    this.status(t('scenarios.selected', { name: s.name }));
    const last = [...runs].reverse().find((r) => r.status === 'done');
    this.showDelta(last ? s.id : undefined);
    if (this.run && !FINISHED.has(this.run.status)) this.poll();
  }

  private async save(): Promise<boolean> {
    if (!(await this.ensureSignedIn())) return false;
    const name = this.nameInput.value.trim();
    if (!name) {
      this.status(t('scenarios.needName'), true);
      this.nameInput.focus();
      return false;
    }
    const body = { name, description: this.descInput.value.trim() || undefined, edits: this.draft.edits };
    this.setBusy(true);
    try {
      if (this.draft.id) await replaceScenario({ id: this.draft.id, ...body });
      else {
        const created = await createScenario(body);
        this.draft.id = created.id;
        this.opts.onSelect(created.id);
      }
      this.draft.name = name;
      this.status(t('scenarios.savedOk', { name }));
      await this.refreshList();
      return true;
    } catch (e) {
      this.status(t('scenarios.error', { detail: e instanceof ApiError || e instanceof Error ? e.message : String(e) }), true);
      return false;
    } finally {
      this.setBusy(false);
    }
  }

  private setBusy(b: boolean): void {
    this.busy = b;
    this.saveButton.disabled = b;
    this.runButton.disabled = b || (this.run !== undefined && !FINISHED.has(this.run.status));
  }

  // ---- runs

  private async startRun(): Promise<void> {
    if (this.busy) return;
    if (!(await this.ensureSignedIn())) return;
    if (!this.draft.edits.length) {
      this.status(t('scenarios.needEdits'), true);
      return;
    }
    if (!(await this.save())) return;
    try {
      this.run = await startRun(this.draft.id!);
    } catch (e) {
      this.status(t('scenarios.error', { detail: e instanceof Error ? e.message : String(e) }), true);
      return;
    }
    this.renderRun();
    this.poll();
  }

  private stopPolling(): void {
    window.clearTimeout(this.pollTimer);
    this.pollTimer = undefined;
  }

  private poll(): void {
    this.stopPolling();
    const sid = this.draft.id;
    const rid = this.run?.id;
    if (!sid || !rid) return;
    this.pollTimer = window.setTimeout(async () => {
      try {
        const r = await getRun(sid, rid);
        if (this.draft.id !== sid) return;
        this.run = r;
      } catch {
        /* tried again below */
      }
      this.renderRun();
      if (this.run && FINISHED.has(this.run.status)) {
        if (this.run.status === 'done') {
          this.refreshDeltaTiles();
          this.showDelta(sid);
        }
        this.status(t(`scenarios.status.${this.run.status}`));
      } else this.poll();
    }, 400);
  }

  private renderRun(): void {
    const r = this.run;
    this.setBusy(this.busy);
    if (!r) {
      this.runEl.replaceChildren();
      delete this.runEl.dataset.status;
      this.resultEl.hidden = true;
      return;
    }
    const running = !FINISHED.has(r.status);
    const pct = Math.round((r.progress ?? 0) * 100);
    const progress = el('progress', { max: '100', value: String(pct), id: 'scenario-progress', 'aria-labelledby': 'scenario-progress-label' });
    const label = el('span', { id: 'scenario-progress-label' }, t('scenarios.progress', { status: t(`scenarios.status.${r.status}`), pct }));
    const children: Node[] = [el('div', { class: 'progress-row' }, label, progress)];
    if (running) {
      const cancel = el('button', { type: 'button', class: 'text-button', id: 'scenario-cancel' }, t('scenarios.cancel'));
      cancel.addEventListener('click', () => {
        const sid = this.draft.id;
        if (!sid) return;
        cancel.disabled = true;
        this.status(t('scenarios.cancelling'));
        // the run's state comes with the next poll; a run already storing its results cannot be cancelled (409)
        void cancelRun(sid, r.id).catch((e: unknown) => {
          cancel.disabled = false;
          this.status(t('scenarios.error', { detail: e instanceof Error ? e.message : String(e) }), true);
        });
      });
      children.push(cancel);
    }
    const message = runMessage(r);
    if (message) children.push(el('p', { class: 'muted run-message' }, message));
    this.runEl.dataset.status = r.status;
    this.runEl.replaceChildren(...children);
    this.renderResults(r.status === 'done' ? r.summary : undefined);
  }

  private renderResults(s: RunSummary | undefined): void {
    if (!s) {
      this.resultEl.hidden = true;
      return;
    }
    const delta = (d: number | undefined, pct: number | undefined, digits = 0): string => {
      if (d === undefined || d === null) return '';
      const sign = d > 0 ? '+' : d < 0 ? '−' : '±';
      const p = pct !== undefined && pct !== null && Number.isFinite(pct) ? ` (${sign}${fmtNumber(Math.abs(pct), 1)} %)` : '';
      return `${sign}${fmtNumber(Math.abs(d), digits)}${p}`;
    };
    const row = (metric: string, value: number | undefined, d: number | undefined, pct: number | undefined, base: number | undefined) =>
      el(
        'div',
        { class: 'metric', 'data-metric': metric, 'data-delta': d === undefined ? undefined : String(d) },
        el('dt', {}, t(`scenarios.metric.${metric}`)),
        el(
          'dd',
          {},
          el('span', { class: 'metric-value' }, value === undefined ? '–' : fmtNumber(value, 0)),
          el('span', { class: `metric-delta ${d && d > 0 ? 'up' : d && d < 0 ? 'down' : ''}` }, delta(d, pct)),
          base === undefined ? '' : el('span', { class: 'metric-base muted' }, t('scenarios.baseline', { value: fmtNumber(base, 0) })),
        ),
      );
    this.resultEl.replaceChildren(
      el('h3', { id: 'scenario-results-title' }, t('scenarios.results')),
      el(
        'dl',
        { class: 'summary-card', id: 'scenario-summary' },
        row('vehicleKm', s.vehicleKm, s.delta?.vehicleKm, s.delta?.vehicleKmPct, s.baseline?.vehicleKm),
        row('vehicleHours', s.vehicleHours, s.delta?.vehicleHours, s.delta?.vehicleHoursPct, s.baseline?.vehicleHours),
        row('unservedTrips', s.unservedTrips, s.delta?.unservedTrips, undefined, s.baseline?.unservedTrips),
      ),
      this.viewChooser(),
      el('h4', { id: 'scenario-legend-title' }, this.legendTitle()),
      this.legend(),
      this.airEl,
    );
    this.renderAir();
    this.resultEl.hidden = false;
  }

  private legendTitle(): string {
    if (isAirView(this.view)) return legendText(this.view).title;
    return t(this.view === 'delta' ? 'scenarios.legend' : 'scenarios.flowLegend');
  }

  /** Radio buttons: the change, the baseline's flows or the scenario's flows; and, one group with them, air and noise. */
  private viewChooser(): DocumentFragment {
    const radio = (v: ResultView, label: string) => {
      const input = el('input', { type: 'radio', name: 'scenario-view', id: `scenario-view-${v}`, value: v });
      input.checked = v === this.view;
      input.addEventListener('change', () => {
        if (input.checked) this.setView(v);
      });
      return el('div', { class: 'radio' }, input, el('label', { for: `scenario-view-${v}` }, label));
    };
    const views: ResultView[] = ['delta', 'baseline', 'scenario', 'swipe'];
    const out = document.createDocumentFragment();
    out.append(
      el('fieldset', { class: 'result-view', id: 'scenario-view' }, el('legend', {}, t('scenarios.view.title')), ...views.map((v) => radio(v, t(`scenarios.view.${v}`)))),
      el(
        'fieldset',
        { class: 'result-view', id: 'scenario-air-view' },
        el('legend', {}, t('scenarios.air.title')),
        ...AIR_VIEWS.map((v) => radio(v, t(`scenarios.air.view.${v}`))),
      ),
    );
    return out;
  }

  /** Shows the results in another view (the radio buttons follow). */
  private setView(v: ResultView): void {
    this.view = v;
    const radio = this.resultEl.querySelector<HTMLInputElement>(`#scenario-view-${v}`);
    if (radio) radio.checked = true;
    this.showDelta(this.shown);
    const legendTitle = this.resultEl.querySelector('#scenario-legend-title');
    if (legendTitle) legendTitle.textContent = this.legendTitle();
    this.resultEl.querySelector('.scenario-legend')?.replaceWith(this.legend());
    this.renderAir();
  }

  private legend(): HTMLElement {
    const item = (kind: 'line' | 'dash', color: string, label: string) =>
      el('li', {}, el('span', { class: `swatch swatch-${kind}`, style: `--c: ${color}`, 'aria-hidden': 'true' }), el('span', {}, label));
    if (isAirView(this.view))
      return el(
        'div',
        { class: 'scenario-legend', id: 'scenario-air-legend', 'data-view': this.view },
        el('ul', { class: 'legend-items', 'aria-labelledby': 'scenario-legend-title' }, ...legendItems(this.view).map((c) => item('line', c.color, c.label))),
        el('p', { class: 'muted legend-note' }, legendText(this.view).note),
      );
    const items =
      this.view === 'delta'
        ? DELTA_CLASSES.map((c) => item('line', c.color, t(`scenarios.delta.${c.key}`)))
        : FLOW_CLASSES.map((c, i) =>
            item(
              'line',
              c.color,
              c.upTo === undefined
                ? t('scenarios.flow.over', { n: fmtNumber(FLOW_CLASSES[i - 1]!.upTo!) })
                : t('scenarios.flow.upTo', { n: fmtNumber(c.upTo) }),
            ),
          );
    if (this.view !== 'baseline') items.push(item('dash', CLOSED_COLOR, t('scenarios.delta.closed')));
    return el('ul', { class: 'legend-items scenario-legend', 'aria-labelledby': 'scenario-legend-title' }, ...items);
  }

  // ---- the delta layer

  /** Adds the scenario results' source and layers (hidden until a scenario with results is shown). */
  addLayers(beforeId?: string): void {
    this.sketch.addLayers(beforeId);
    if (this.map.getSource(SCENARIO_SOURCE)) return;
    this.map.addSource(SCENARIO_SOURCE, {
      type: 'vector',
      tiles: [`${window.location.origin}/tiles/TrafficFlowObserved/{z}/{x}/{y}.mvt`],
      minzoom: 0,
      maxzoom: 18,
    });
    const before = beforeId && this.map.getLayer(beforeId) ? beforeId : undefined;
    this.map.addLayer(
      {
        id: SCENARIO_LAYERS.delta,
        type: 'line',
        source: SCENARIO_SOURCE,
        'source-layer': 'TrafficFlowObserved',
        filter: this.filter('none', false),
        layout: { 'line-cap': 'round', 'line-join': 'round', visibility: 'none' },
        paint: {
          'line-color': DELTA_COLOR,
          'line-width': ['interpolate', ['linear'], ['coalesce', ['get', 'intensity'], 0], 0, 2, 1500, 9],
        },
      },
      before,
    );
    this.map.addLayer(
      {
        id: SCENARIO_LAYERS.closed,
        type: 'line',
        source: SCENARIO_SOURCE,
        'source-layer': 'TrafficFlowObserved',
        filter: this.filter('none', true),
        layout: { 'line-cap': 'butt', visibility: 'none' },
        paint: { 'line-color': CLOSED_COLOR, 'line-width': 4, 'line-dasharray': [2, 1] },
      },
      before,
    );
    // air and noise: the streets (`RoadLink`, keyed by their URN for the feature state), coloured by the state
    this.map.addSource(AIR_SOURCE, {
      type: 'vector',
      tiles: [`${window.location.origin}/tiles/RoadLink/{z}/{x}/{y}.mvt`],
      minzoom: 13,
      maxzoom: 18,
      promoteId: 'id',
    });
    this.map.addLayer(
      {
        id: AIR_LAYER,
        type: 'line',
        source: AIR_SOURCE,
        'source-layer': 'RoadLink',
        layout: { 'line-cap': 'round', 'line-join': 'round', visibility: 'none' },
        paint: { 'line-color': colorExpression('no2'), 'line-width': ['interpolate', ['linear'], ['zoom'], 13, 2, 18, 7] },
      },
      before,
    );
  }

  private filter(scenario: string, closed: boolean): FilterSpecification {
    return [
      'all',
      ['==', ['get', 'simulated'], true],
      ['==', ['get', 'refScenario'], scenario],
      closed ? ['==', ['get', 'closed'], true] : ['!=', ['get', 'closed'], true],
    ];
  }

  /** Shows a scenario's results (undefined: none) in the current view. */
  private showDelta(scenario: string | undefined): void {
    this.shown = scenario;
    this.map.getCanvas().dataset.resultView = scenario ? this.view : ''; // for the tests
    if (!this.map.getLayer(SCENARIO_LAYERS.delta)) return;
    // swipe: the baseline's flows here, the scenario's on the map over this one, right of the divider
    const ref = this.view === 'baseline' || this.view === 'swipe' ? BASELINE_ID : (scenario ?? 'none');
    const air = isAirView(this.view) ? this.view : undefined;
    const traffic = scenario !== undefined && !air;
    this.styleResults(this.map, ref, this.view === 'delta', traffic, traffic && this.view !== 'baseline' && this.view !== 'swipe');
    if (this.map.getLayer(AIR_LAYER)) {
      if (air) this.map.setPaintProperty(AIR_LAYER, 'line-color', colorExpression(air));
      this.map.setLayoutProperty(AIR_LAYER, 'visibility', scenario && air ? 'visible' : 'none');
    }
    if (scenario && air) void this.loadAir(scenario);
    if (scenario && this.view === 'swipe') {
      if (!this.compare) {
        this.compare = new SwipeCompare(this.map, {
          prepare: (overlay) => this.styleResults(overlay, this.shown ?? 'none', false, true, true),
          label: t('scenarios.swipe.label'),
          leftLabel: t('scenarios.view.baseline'),
          rightLabel: t('scenarios.view.scenario'),
          images: this.opts.icons,
          transformRequest: this.opts.transformRequest,
        });
      } else if (this.compare.overlay.getLayer(SCENARIO_LAYERS.delta)) this.styleResults(this.compare.overlay, scenario, false, true, true);
    } else if (this.compare) {
      this.compare.remove();
      this.compare = undefined;
    }
  }

  /** Filters and colours the results layers of a map: the flows of `ref` (or their change), closed links or not. */
  private styleResults(map: MlMap, ref: string, delta: boolean, visible: boolean, closed: boolean): void {
    map.setFilter(SCENARIO_LAYERS.delta, this.filter(ref, false));
    map.setFilter(SCENARIO_LAYERS.closed, this.filter(ref, true));
    map.setPaintProperty(SCENARIO_LAYERS.delta, 'line-color', delta ? DELTA_COLOR : FLOW_COLOR);
    map.setLayoutProperty(SCENARIO_LAYERS.delta, 'visibility', visible ? 'visible' : 'none');
    map.setLayoutProperty(SCENARIO_LAYERS.closed, 'visibility', visible && closed ? 'visible' : 'none');
  }

  // ---- air and noise

  /** Reads the air and noise of the scenario's latest done run (once per run) and puts them on the streets' state. */
  private async loadAir(scenario: string): Promise<void> {
    const key = `${scenario}|${this.run?.status === 'done' ? this.run.id : ''}`;
    if (this.air?.key === key && this.air.state !== 'error') return;
    this.map.removeFeatureState({ source: AIR_SOURCE, sourceLayer: 'RoadLink' });
    this.air = { key, state: 'loading' };
    this.renderAir();
    try {
      const [air, noise] = await Promise.all([getAir(scenario), getNoise(scenario)]);
      if (this.air?.key !== key) return;
      const states = featureStates(air, noise);
      for (const [id, st] of states) this.map.setFeatureState({ source: AIR_SOURCE, sourceLayer: 'RoadLink', id }, st);
      this.map.getCanvas().dataset.airStreets = String(states.size); // for the tests
      this.air = { key, state: 'ok', air, noise };
    } catch (e) {
      if (this.air?.key !== key) return;
      this.air = e instanceof ApiError && e.status === 409 ? { key, state: 'noRun', detail: e.message } : { key, state: 'error', detail: e instanceof Error ? e.message : String(e) };
    }
    this.renderAir();
  }

  /** The air and noise summary (or why there is none) under the legend, in an air or noise view. */
  private renderAir(): void {
    const a = this.air;
    if (!isAirView(this.view) || !a) {
      this.airEl.replaceChildren();
      this.airEl.hidden = true;
      return;
    }
    this.airEl.hidden = false;
    this.airEl.dataset.state = a.state;
    if (a.state !== 'ok' || !a.air || !a.noise) {
      const text = a.state === 'loading' ? t('scenarios.air.loading') : a.state === 'noRun' ? t('scenarios.air.noRun') : t('scenarios.air.error', { detail: a.detail ?? '' });
      this.airEl.replaceChildren(el('p', { class: a.state === 'loading' ? 'muted' : 'error', id: 'scenario-air-message' }, text));
      return;
    }
    this.airEl.replaceChildren(
      el('h4', { id: 'scenario-air-title' }, t('scenarios.air.summaryTitle')),
      el(
        'dl',
        { class: 'summary-card', id: 'scenario-air-summary' },
        ...summaryRows(a.air, a.noise).map((r) =>
          el(
            'div',
            { class: 'metric', 'data-metric': r.key, 'data-base': r.base === undefined ? undefined : String(r.base), 'data-value': r.value === undefined ? undefined : String(r.value) },
            el('dt', {}, t(`scenarios.air.metric.${r.key}`)),
            el('dd', {}, el('span', { class: 'metric-value' }, rowText(r))),
          ),
        ),
      ),
      el('p', { class: 'hint' }, t('scenarios.air.clickHint')),
    );
  }

  /** Whether the map shows air or noise (a click on a street then shows its values). */
  get airOn(): boolean {
    return this.shown !== undefined && isAirView(this.view) && this.air?.state === 'ok';
  }

  /** The `RoadLink` with a value in the current air or noise view near a point, if any. */
  airStreetAt(point: { x: number; y: number }, radius = 6): string | undefined {
    if (!this.airOn || !this.map.getLayer(AIR_LAYER)) return undefined;
    const view = this.view;
    const box: [[number, number], [number, number]] = [
      [point.x - radius, point.y - radius],
      [point.x + radius, point.y + radius],
    ];
    const f = this.map.queryRenderedFeatures(box, { layers: [AIR_LAYER] }).find((x) => typeof x.state?.[view] === 'number' && typeof x.properties?.id === 'string');
    return f?.properties.id as string | undefined;
  }

  /** A street's air and noise values for the feature panel, while the map shows them. */
  streetDetails(id: string): HTMLElement | undefined {
    const a = this.air;
    if (!this.airOn || !a?.air || !a.noise) return undefined;
    const rows = streetRows(a.air.streets[id], a.noise.streets[id]);
    if (!rows.length) return undefined;
    return el(
      'section',
      { class: 'panel-section', id: 'feature-air', 'aria-labelledby': 'feature-air-h' },
      el('h3', { id: 'feature-air-h' }, t('scenarios.air.street.title')),
      el('dl', {}, ...rows.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)])),
    );
  }

  /** The server rebuilt the tiles the run's entities touched: fetch them again (revalidated by their ETags). */
  private refreshDeltaTiles(): void {
    for (const map of [this.map, this.compare?.overlay]) {
      const src = map?.getSource<VectorTileSource>(SCENARIO_SOURCE);
      if (src) src.setTiles([`${window.location.origin}/tiles/TrafficFlowObserved/{z}/{x}/{y}.mvt`]);
    }
  }
}
