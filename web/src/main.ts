// The app: reads the URL, loads the twin's style and layers, and wires map, layer panel, feature panel, sensors,
// search, language and the shareable URL together.

import 'maplibre-gl/dist/maplibre-gl.css';
import './style.css';
import type { MapGeoJSONFeature, Map as MlMap } from 'maplibre-gl';
import { getCsrfToken, getStyle, getTilesIndex, setCsrfRefresher, setUnauthorizedHandler, type TilesIndex } from './api';
import { AccountControl, SignInDialog } from './account';
import { canEditScenarios, isAdmin, SessionState, seesOwnData } from './session';
import { AuditPanel, MyDataPanel } from './trust-panels';
import { FeaturePanel } from './feature-panel';
import { initLang, initialLang, isLang, lang, onLangChange, setLang, t, translateDom } from './i18n';
import { groupLayers, LayerPanel } from './layers';
import { APP_LAYERS, createMap, setHighlight, translateControls, viewOf } from './map';
import { bboxOf, Search } from './search';
import { ScenarioPanel } from './scenarios';
import { AccessPanel } from './access';
import { detectSensorTypes, SensorLayer } from './sensors';
import { TimeBar } from './timeline';
import { setChartTime } from './chart';
import { parseHash, parseSearch, UrlSync } from './url-state';
import { ConsultPanel } from './consult-panel';
import { canModerate, canParticipate } from './consult';
import { NotificationBell } from './notifications';

declare global {
  interface Window {
    /** For the browser tests and for people poking at the twin from the console. */
    urbantwin?: { map: MlMap; firstIdleMs?: number; ready: boolean };
  }
}

const initial = { ...parseHash(window.location.hash), ...parseSearch(window.location.search) };
initLang(initialLang(initial.lang ?? null));
const url = new UrlSync(initial);

const $ = <T extends HTMLElement>(sel: string) => document.querySelector<T>(sel)!;
const mapEl = $('#map');
const layerPanelEl = $('#layer-panel');
const scenarioPanelEl = $('#scenario-panel');
const featurePanelEl = $('#feature-panel');
const statusEl = $('#map-status');
const errorEl = $('#app-error');
const narrow = window.matchMedia('(max-width: 720px)');

// ---- language
const langSelect = $<HTMLSelectElement>('#lang-select');
langSelect.value = lang();
langSelect.addEventListener('change', () => {
  if (isLang(langSelect.value)) {
    setLang(langSelect.value);
    url.update({ lang: langSelect.value });
  }
});

// ---- the left panels: layers, scenarios and the 15-minute city share the left side (one open at a time; a bottom
// sheet on narrow screens)
const layersToggle = $<HTMLButtonElement>('#layers-toggle');
const scenariosToggle = $<HTMLButtonElement>('#scenarios-toggle');
const accessToggle = $<HTMLButtonElement>('#access-toggle');
const accessPanelEl = $('#access-panel');
const myDataPanelEl = $('#mydata-panel');
const auditPanelEl = $('#audit-panel');
const consultPanelEl = $('#consult-panel');
const consultToggle = $<HTMLButtonElement>('#consult-toggle');
/** Set once the map exists: keeps the map's centre in the part of it that no panel covers. */
let onPanelsChanged: () => void = () => undefined;
/** Set once the map exists. */
let onScenariosOpened: (open: boolean) => void = () => undefined;
/** Set once the map exists; `active` false when the panel is closed for good (not only hidden behind a feature). */
let onAccessOpened: (open: boolean, active: boolean) => void = () => undefined;

/** On a phone the feature panel hides behind an open left sheet. */
function syncBehind(): void {
  const leftOpen = !layerPanelEl.hidden || !scenarioPanelEl.hidden || !accessPanelEl.hidden || !myDataPanelEl.hidden || !auditPanelEl.hidden || !consultPanelEl.hidden;
  featurePanelEl.classList.toggle('behind', leftOpen && narrow.matches);
}

function setLayersOpen(open: boolean, focus = false): void {
  if (open) closeTrustPanels();
  if (open && !scenarioPanelEl.hidden) setScenariosOpen(false);
  if (open && !accessPanelEl.hidden) setAccessOpen(false);
  if (open && !consultPanelEl.hidden) setConsultOpen(false);
  layerPanelEl.hidden = !open;
  onPanelsChanged();
  layersToggle.setAttribute('aria-expanded', String(open));
  syncBehind();
  if (open && focus) layerPanelEl.querySelector<HTMLElement>('input, select, button')?.focus();
  if (!open && focus) layersToggle.focus();
}
layersToggle.addEventListener('click', () => setLayersOpen(layerPanelEl.hasAttribute('hidden'), true));
$('#layers-close').addEventListener('click', () => setLayersOpen(false, true));
layerPanelEl.addEventListener('keydown', (e) => {
  if (e.key === 'Escape') setLayersOpen(false, true);
});

// ---- the scenario panel: on the left in the layer panel's place
function setScenariosOpen(open: boolean, focus = false): void {
  if (open) closeTrustPanels();
  if (open && !layerPanelEl.hidden) setLayersOpen(false);
  if (open && !accessPanelEl.hidden) setAccessOpen(false);
  if (open && !consultPanelEl.hidden) setConsultOpen(false);
  scenarioPanelEl.hidden = !open;
  scenariosToggle.setAttribute('aria-expanded', String(open));
  syncBehind();
  onPanelsChanged();
  onScenariosOpened(open);
  if (open && focus) scenarioPanelEl.querySelector<HTMLElement>('#scenario-content button, #scenario-content input')?.focus();
  if (!open && focus) scenariosToggle.focus();
}
scenariosToggle.addEventListener('click', () => setScenariosOpen(scenarioPanelEl.hasAttribute('hidden'), true));
$('#scenarios-close').addEventListener('click', () => setScenariosOpen(false, true));
scenarioPanelEl.addEventListener('keydown', (e) => {
  if (e.key === 'Escape') setScenariosOpen(false, true);
});

// ---- the 15-minute city panel: on the left too. `keepLayer`: hidden (a phone's sheet making room for a feature)
// but its homes stay on the map
function setAccessOpen(open: boolean, focus = false, keepLayer = false): void {
  if (open) closeTrustPanels();
  if (open && !layerPanelEl.hidden) setLayersOpen(false);
  if (open && !scenarioPanelEl.hidden) setScenariosOpen(false);
  if (open && !consultPanelEl.hidden) setConsultOpen(false);
  accessPanelEl.hidden = !open;
  accessToggle.setAttribute('aria-expanded', String(open));
  syncBehind();
  onPanelsChanged();
  onAccessOpened(open, open || keepLayer);
  if (open && focus) accessPanelEl.querySelector<HTMLElement>('#access-content select')?.focus();
  if (!open && focus) accessToggle.focus();
}
accessToggle.addEventListener('click', () => setAccessOpen(accessPanelEl.hasAttribute('hidden'), true));
$('#access-close').addEventListener('click', () => setAccessOpen(false, true));
accessPanelEl.addEventListener('keydown', (e) => {
  if (e.key === 'Escape') setAccessOpen(false, true);
});
// ---- consultations: on the left too (wider)
function setConsultOpen(open: boolean, focus = false): void {
  if (open) {
    closeTrustPanels();
    if (!layerPanelEl.hidden) setLayersOpen(false);
    if (!scenarioPanelEl.hidden) setScenariosOpen(false);
    if (!accessPanelEl.hidden) setAccessOpen(false);
  }
  consultPanelEl.hidden = !open;
  consultToggle.setAttribute('aria-expanded', String(open));
  syncBehind();
  onPanelsChanged();
  consult?.visibilityChanged();
  if (!open) url.update({ consultation: undefined });
  else if (consult?.view === 'page' && consult.consultation) url.update({ consultation: consult.consultation.id });
  if (open && focus) $('#consult-title').focus();
  if (!open && focus) consultToggle.focus();
}
consultToggle.addEventListener('click', () => {
  const open = consultPanelEl.hasAttribute('hidden');
  setConsultOpen(open, true);
  if (open && consult.view === 'list') void consult.showList();
});
$('#consult-close').addEventListener('click', () => setConsultOpen(false, true));
consultPanelEl.addEventListener('keydown', (e) => {
  if (e.key !== 'Escape' || e.defaultPrevented) return;
  if (consult.cancelPlacing()) return;
  setConsultOpen(false, true);
});

// ---- "My data" and the audit log (for data owners and administrators): on the left too
const session = new SessionState();
const myData = new MyDataPanel($('#mydata-content'));
const audit = new AuditPanel($('#audit-content'));
const trustPanels = { mydata: { panel: myDataPanelEl, load: () => void myData.load(session.current) }, audit: { panel: auditPanelEl, load: () => void audit.load() } };
type TrustPanel = keyof typeof trustPanels;

function closeTrustPanels(): void {
  for (const k of Object.keys(trustPanels) as TrustPanel[]) if (!trustPanels[k].panel.hidden) setTrustOpen(k, false);
}

function setTrustOpen(which: TrustPanel, open: boolean, focus = false): void {
  const { panel, load } = trustPanels[which];
  if (open) {
    if (!layerPanelEl.hidden) setLayersOpen(false);
    if (!scenarioPanelEl.hidden) setScenariosOpen(false);
    if (!accessPanelEl.hidden) setAccessOpen(false);
    if (!consultPanelEl.hidden) setConsultOpen(false);
    for (const k of Object.keys(trustPanels) as TrustPanel[]) if (k !== which && !trustPanels[k].panel.hidden) setTrustOpen(k, false);
  }
  const wasOpen = !panel.hidden;
  panel.hidden = !open;
  syncBehind();
  onPanelsChanged();
  if (open) {
    load();
    if (focus) panel.querySelector<HTMLElement>('h2')?.focus();
  } else if (wasOpen && focus) account.focusTarget.focus();
}
for (const k of Object.keys(trustPanels) as TrustPanel[]) {
  const { panel } = trustPanels[k];
  panel.querySelector('h2')?.setAttribute('tabindex', '-1');
  $(k === 'mydata' ? '#mydata-close' : '#audit-close').addEventListener('click', () => setTrustOpen(k, false, true));
  panel.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') setTrustOpen(k, false, true);
  });
}

// ---- signing in: the header's control and the dialog; every write carries the session's CSRF token (api.ts)
const signInDialog = new SignInDialog(session, () => account.focusTarget);
const account = new AccountControl($('#account'), session, signInDialog, {
  openMyData: () => setTrustOpen('mydata', true, true),
  openAudit: () => setTrustOpen('audit', true, true),
  announce: (text) => (statusEl.textContent = text),
  extra: [
    {
      id: 'participation-open',
      label: () => t('consult.me.title'),
      visible: (s) => canParticipate(s),
      onClick: () => {
        setConsultOpen(true, true);
        consult.showMe();
      },
    },
    {
      id: 'moderation-open',
      label: () => t('consult.queue.title'),
      visible: (s) => canModerate(s),
      onClick: () => {
        setConsultOpen(true, true);
        void consult.showQueue();
      },
    },
  ],
});
// ---- consultations: the panel, the notifications bell; the map and the scenario editor join once they exist
const scenarioHooks: { panel?: ScenarioPanel } = {};
const consult: ConsultPanel = new ConsultPanel($('#consult-content'), {
  session,
  signIn: (reasonKey) => signInDialog.open(reasonKey),
  onOpen: (id) => {
    if (!consultPanelEl.hidden || !id) url.update({ consultation: id });
  },
  announce: (text) => (statusEl.textContent = text),
  setTitle: (text, l) => {
    const h = $('#consult-title');
    h.textContent = text;
    if (l) h.setAttribute('lang', l);
    else h.removeAttribute('lang');
  },
  showScenario: async (id) => (scenarioHooks.panel ? scenarioHooks.panel.showOnMap(id) : false),
  hideScenario: () => scenarioHooks.panel?.hideFromMap(),
  hasResults: (id) => !!scenarioHooks.panel?.hasResults(id),
  editScenario: (id, banner) => {
    const p = scenarioHooks.panel;
    if (!p) return;
    p.setBanner(banner);
    setScenariosOpen(true);
    void p.select(id).then(() => $('#scenario-pick').focus());
  },
  backFromEditor: () => {
    scenarioHooks.panel?.setBanner(undefined);
    setConsultOpen(true);
  },
});
function openConsultation(id: string): void {
  setConsultOpen(true);
  void consult.open(id);
}
new NotificationBell($('#notif'), session, { openConsultation, refreshMs: 60_000 });

session.onChange((s) => {
  // a panel the account may no longer see closes; one it still sees shows the new account's data
  if (!myDataPanelEl.hidden) (seesOwnData(s) ? trustPanels.mydata.load() : setTrustOpen('mydata', false));
  if (!auditPanelEl.hidden) (isAdmin(s) ? trustPanels.audit.load() : setTrustOpen('audit', false));
});
// a write answered 401: the server sees no (valid) session; say why and offer to sign in
setUnauthorizedHandler((detail) => {
  if (session.current) session.set(undefined);
  if (!signInDialog.isOpen) void signInDialog.open({ text: t('account.needSignIn', { detail }) });
});
setCsrfRefresher(async () => {
  const before = getCsrfToken();
  await session.restore();
  return !!getCsrfToken() && getCsrfToken() !== before;
});
void session.restore();

setLayersOpen(!narrow.matches);
narrow.addEventListener('change', () => {
  if (accessPanelEl.hidden && scenarioPanelEl.hidden && myDataPanelEl.hidden && auditPanelEl.hidden && consultPanelEl.hidden) setLayersOpen(!narrow.matches);
  else syncBehind();
});

function showError(message: string): void {
  errorEl.hidden = false;
  errorEl.textContent = message;
}

async function start(): Promise<void> {
  let style;
  let index: TilesIndex;
  try {
    [style, index] = await Promise.all([getStyle(), getTilesIndex()]);
  } catch (e) {
    showError(t('app.loadError', { detail: e instanceof Error ? e.message : String(e) }));
    return;
  }
  const { map, prepared, firstIdle, icons, transformRequest } = await createMap(mapEl, style, initial.view, { region: t('app.mapCanvas') });
  window.urbantwin = { map, ready: false };
  // on wide screens the layer panel covers the map's left: the centre (and the keyboard's cross) is that of the rest
  const crosshair = $('.crosshair');
  const padding = () => ({
    top: 0,
    bottom: 0,
    right: 0,
    left: narrow.matches
      ? 0
      : !layerPanelEl.hidden
        ? layerPanelEl.getBoundingClientRect().right
        : !scenarioPanelEl.hidden
          ? scenarioPanelEl.getBoundingClientRect().right
          : !accessPanelEl.hidden
            ? accessPanelEl.getBoundingClientRect().right
            : !myDataPanelEl.hidden
              ? myDataPanelEl.getBoundingClientRect().right
              : !auditPanelEl.hidden
                ? auditPanelEl.getBoundingClientRect().right
                : !consultPanelEl.hidden
                  ? consultPanelEl.getBoundingClientRect().right
                  : 0,
  });
  const placeCrosshair = () => {
    const c = map.project(map.getCenter());
    crosshair.style.left = `${c.x}px`;
    crosshair.style.top = `${c.y}px`;
  };
  map.setPadding(padding());
  placeCrosshair();
  onPanelsChanged = () => {
    map.easeTo({ padding: padding(), duration: 300 });
    map.once('moveend', placeCrosshair);
  };
  map.on('resize', placeCrosshair);
  translateControls(mapEl, t);
  onLangChange(() => translateControls(mapEl, t));
  void firstIdle.then(() => {
    // milliseconds since the navigation started
    const ms = Math.round(performance.now());
    window.urbantwin!.firstIdleMs = ms;
    window.urbantwin!.ready = true;
    performance.mark('urbantwin:first-idle');
    panel.refreshColourOptions();
  });

  // ---- layers
  const groups = groupLayers(map.getStyle().layers);
  const panel = new LayerPanel($('#layer-list'), map, groups, {
    source: prepared.sourceId,
    initialColour: initial.colour,
    onChange: () => syncLayers(),
  });
  // ---- sensors with live values: the types are decided from the data (observations), not from the tile counts,
  // which include simulated results
  const sensorCandidates = index.layers.filter((l) => groups.some((g) => g.sensor && g.types.includes(l.id))).map((l) => l.id);
  const sensors = new SensorLayer(
    map,
    (id) => void select(id, undefined, true),
    (id) => {
      if (features.openId === id) void features.refresh();
    },
  );
  function syncLayers(): void {
    for (const g of groups) if (g.sensor) for (const ty of g.types) sensors.setTypeVisible(ty, g.visible);
    const hidden = groups.filter((g) => !g.visible && defaults.get(g.id)).map((g) => g.id);
    const shown = groups.filter((g) => g.visible && !defaults.get(g.id)).map((g) => g.id);
    url.update({ hidden: hidden.length ? hidden : undefined, shown: shown.length ? shown : undefined, colour: panel.colour() === 'style' ? undefined : panel.colour() });
  }
  const defaults = new Map<string, boolean>(groups.map((g) => [g.id, g.visible]));
  for (const id of initial.hidden ?? []) panel.setVisible(id, false);
  for (const id of initial.shown ?? []) panel.setVisible(id, true);
  let colourRefresh: number | undefined;
  map.on('idle', () => {
    window.clearTimeout(colourRefresh);
    colourRefresh = window.setTimeout(() => panel.refreshColourOptions(), 300);
  });

  syncLayers();
  const sensorTypes = detectSensorTypes(sensorCandidates);
  void sensorTypes.then((types) => sensors.start(types));

  // ---- the time slider over the sensors' history
  const timeBar = new TimeBar($('#time-bar'), {
    initial: initial.time,
    onChange: (time) => {
      void sensors.setTime(time);
      setChartTime(time);
      url.update({ time: time === undefined ? undefined : new Date(time).toISOString() });
    },
  });
  void sensorTypes.then((types) => timeBar.load(types));

  // ---- scenarios: the editor and the delta layer (under the street names)
  const scenarios = new ScenarioPanel($('#scenario-content'), map, {
    onSelect: (id) => url.update({ scenario: id }),
    icons,
    transformRequest,
    auth: {
      canEdit: () => canEditScenarios(session.current),
      signedIn: () => !!session.current,
      signIn: (reasonKey) => signInDialog.open(reasonKey),
      onChange: (f) => void session.onChange(f),
    },
  });
  scenarios.addLayers(APP_LAYERS.streetLabels);
  scenarioHooks.panel = scenarios;
  consult.setMap(map);
  onScenariosOpened = (open) => {
    if (open) void scenarios.refreshList();
    else {
      scenarios.setPicking(false);
      scenarios.sketch.cancel();
    }
  };
  if (initial.consultation) openConsultation(initial.consultation);
  else if (initial.scenario) {
    setScenariosOpen(true);
    void scenarios.select(initial.scenario);
  }

  // ---- the 15-minute city: its homes layer under the street names too
  const access = new AccessPanel($('#access-content'), map, { onChange: (s) => url.update({ access: s }) });
  // above the buildings and places (a home's circle sits at its building's foot), under the selection's highlight
  access.addLayers(APP_LAYERS.highlightFill);
  onAccessOpened = (_open, active) => {
    access.show(active);
    url.update({ access: active ? access.options : undefined });
  };
  if (initial.access && !initial.scenario && !initial.consultation) {
    access.set(initial.access);
    setAccessOpen(true);
  }

  // ---- feature panel
  const features = new FeaturePanel(featurePanelEl, $('#feature-content'), {
    onClose: () => {
      setHighlight(map, undefined, undefined);
      url.update({ feature: undefined });
      mapEl.querySelector<HTMLElement>('canvas')?.focus();
    },
    onOpenEntity: (id) => void select(id, undefined, true),
    // a street's air and noise while the scenario panel shows them
    extra: (id) => scenarios.streetDetails(id),
    // a feature opened from a link or a relationship that is out of view: go there
    onLoaded: (e) => {
      const b = bboxOf((e.location as { value?: { type: string; coordinates: unknown } } | undefined)?.value);
      if (!b) return;
      const view = map.getBounds();
      const inView = b[2] >= view.getWest() && b[0] <= view.getEast() && b[3] >= view.getSouth() && b[1] <= view.getNorth();
      if (!inView) map.fitBounds(b, { padding: freePadding(), maxZoom: Math.max(map.getZoom(), 16), duration: 600 });
    },
  });

  async function select(id: string, sourceLayer: string | undefined, focus: boolean, at?: [number, number]): Promise<void> {
    const type = sourceLayer ?? id.split(':')[2];
    setHighlight(map, type, id);
    url.update({ feature: id });
    if (narrow.matches) {
      setLayersOpen(false);
      if (!accessPanelEl.hidden) setAccessOpen(false, false, true);
    }
    statusEl.textContent = t('feature.opened', { id });
    await features.open(id, focus);
    if (at) revealAboveSheet(at);
  }

  /** The part of the map no panel covers, as padding for fitting a place into it (beyond the map's own padding). */
  function freePadding(): { top: number; bottom: number; left: number; right: number } {
    const m = mapEl.getBoundingClientRect();
    const pad = { top: 60, bottom: 60, left: 60, right: 60 };
    if (!featurePanelEl.hidden) {
      const f = featurePanelEl.getBoundingClientRect();
      if (narrow.matches) pad.bottom += m.bottom - f.top;
      else pad.right += m.right - f.left;
    }
    return pad;
  }

  /** On a phone the feature panel covers the lower part of the map: the selected place moves above it. */
  function revealAboveSheet(at: [number, number]): void {
    if (!narrow.matches || featurePanelEl.hidden) return;
    const mapBox = mapEl.getBoundingClientRect();
    const visible = featurePanelEl.getBoundingClientRect().top - mapBox.top;
    const p = map.project(at);
    if (p.y < visible - 24 && p.y > 24) return;
    map.panBy([p.x - mapBox.width / 2, p.y - visible / 2], { duration: 400 });
  }

  const interactive = (): string[] => [
    // the 15-minute city's homes (their `id` is the building's), over everything else
    ...(access.layerId ? [access.layerId] : []),
    ...groups
      .filter((g) => g.visible)
      .flatMap((g) => g.layerIds)
      .filter((id) => id !== APP_LAYERS.streetLabels && id !== 'roads-casing' && map.getLayer(id)),
  ];

  function featureAt(point: { x: number; y: number }, radius = 3): MapGeoJSONFeature | undefined {
    const box: [[number, number], [number, number]] = [
      [point.x - radius, point.y - radius],
      [point.x + radius, point.y + radius],
    ];
    const hits = map.queryRenderedFeatures(box, { layers: interactive() });
    return hits.find((f) => typeof f.properties?.id === 'string');
  }

  /** The street (RoadSegment of the `roads` layer) at a point, for the scenario editor. */
  function streetAt(point: { x: number; y: number }, radius = 6): MapGeoJSONFeature | undefined {
    const box: [[number, number], [number, number]] = [
      [point.x - radius, point.y - radius],
      [point.x + radius, point.y + radius],
    ];
    const layers = ['roads'].filter((id) => map.getLayer(id));
    return map.queryRenderedFeatures(box, { layers }).find((f) => typeof f.properties?.id === 'string');
  }

  map.on('click', (e) => {
    // a comment's or a proposal's place
    if (consult.placing) {
      consult.place([e.lngLat.lng, e.lngLat.lat]);
      return;
    }
    // "What if…" of the 15-minute city: the next click places the new destination
    if (access.whatIf.placing) {
      access.whatIf.place([e.lngLat.lng, e.lngLat.lat]);
      return;
    }
    // … takes away the place clicked, or draws the area whose paths close
    if (access.whatIf.removing) {
      access.whatIf.pickRemove(access.whatIf.poiAt(e.point));
      return;
    }
    if (access.whatIf.drawing) {
      access.whatIf.addPoint([e.lngLat.lng, e.lngLat.lat]);
      return;
    }
    if (scenarios.drawing) {
      scenarios.addPoint([e.lngLat.lng, e.lngLat.lat]);
      return;
    }
    if (scenarios.picking) {
      scenarios.pick(streetAt(e.point));
      return;
    }
    // a comment or a proposal of the consultation open
    const pin = consultPanelEl.hidden ? undefined : consult.featureAt(e.point);
    if (pin) {
      consult.reveal(pin);
      return;
    }
    // air and noise on the map: a street's values
    const street = scenarios.airStreetAt(e.point);
    if (street) {
      void select(street, 'RoadLink', false, [e.lngLat.lng, e.lngLat.lat]);
      return;
    }
    const f = featureAt(e.point);
    if (f) void select(f.properties.id as string, f.sourceLayer, false, [e.lngLat.lng, e.lngLat.lat]);
    else if (features.openId) features.close();
  });
  map.on('mousemove', (e) => {
    if (access.whatIf.placing || consult.placing) {
      map.getCanvas().style.cursor = 'crosshair';
      return;
    }
    if (access.whatIf.removing) {
      map.getCanvas().style.cursor = access.whatIf.poiAt(e.point) ? 'pointer' : 'crosshair';
      return;
    }
    if (access.whatIf.drawing || scenarios.drawing) return;
    if (!consultPanelEl.hidden && consult.featureAt(e.point)) {
      map.getCanvas().style.cursor = 'pointer';
      return;
    }
    if (scenarios.picking) map.getCanvas().style.cursor = streetAt(e.point) ? 'pointer' : 'crosshair';
    else map.getCanvas().style.cursor = scenarios.airStreetAt(e.point) || featureAt(e.point) ? 'pointer' : '';
  });

  // keyboard: Enter or Space on the focused map selects what is under the crosshair
  const canvas = map.getCanvas();
  canvas.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && consult.cancelPlacing()) return;
    if (e.key !== 'Enter' && e.key !== ' ') return;
    e.preventDefault();
    const c = map.project(map.getCenter());
    if (consult.placing) {
      const p = map.getCenter();
      consult.place([p.lng, p.lat]);
      return;
    }
    if (access.whatIf.placing) {
      const p = map.getCenter();
      access.whatIf.place([p.lng, p.lat]);
      return;
    }
    if (access.whatIf.removing) {
      access.whatIf.pickRemove(access.whatIf.poiAt(c, 12));
      return;
    }
    if (access.whatIf.drawing) {
      const p = map.getCenter();
      access.whatIf.addPoint([p.lng, p.lat]);
      return;
    }
    if (scenarios.drawing) {
      const p = map.getCenter();
      scenarios.addPoint([p.lng, p.lat]);
      return;
    }
    if (scenarios.picking) {
      scenarios.pick(streetAt(c, 12));
      return;
    }
    const street = scenarios.airStreetAt(c, 12);
    if (street) {
      void select(street, 'RoadLink', true);
      return;
    }
    const f = featureAt(c, 12);
    if (f) void select(f.properties.id as string, f.sourceLayer, true);
    else statusEl.textContent = t('app.nothingHere');
  });

  if (initial.feature) void select(initial.feature, undefined, false);

  // ---- search
  const searchTypes = index.layers.map((l) => l.id).filter((id) => id !== 'RoadLink');
  new Search($('.search'), searchTypes, (hit) => {
    const b = bboxOf(hit.location);
    // on a phone the bottom sheet takes the lower part of the map: fit the place into the part above it
    const sheet = narrow.matches ? Math.round(mapEl.clientHeight * 0.58) : 0;
    const padding = { top: 60, left: 40, right: 40, bottom: 60 + sheet };
    if (b) {
      if (b[0] === b[2] && b[1] === b[3])
        map.flyTo({ center: [b[0], b[1]], zoom: Math.max(map.getZoom(), 17), offset: [0, -sheet / 2] });
      else map.fitBounds(b, { padding, maxZoom: 18 });
    }
    void select(hit.id, hit.type, true);
  });

  // ---- URL
  const syncView = () => url.update({ view: viewOf(map) });
  map.on('moveend', syncView);
  syncView();
  window.addEventListener('hashchange', (e) => {
    // the hash as it was set: a pending write of the app's own state may already have replaced it
    const s = parseHash(new URL(e.newURL).hash);
    if (s.view) map.jumpTo({ center: [s.view.lon, s.view.lat], zoom: s.view.zoom, bearing: s.view.bearing, pitch: s.view.pitch });
    if (s.feature && s.feature !== features.openId) void select(s.feature, undefined, false);
    if (s.scenario && s.scenario !== scenarios.selectedId) {
      setScenariosOpen(true);
      void scenarios.select(s.scenario);
    }
    if (s.access && JSON.stringify(s.access) !== JSON.stringify(access.options)) {
      access.set(s.access);
      if (accessPanelEl.hidden) setAccessOpen(true);
      url.update({ access: s.access });
    }
    if (s.time !== timeBar.urlTime()) timeBar.setFromUrl(s.time);
    if (s.lang && isLang(s.lang) && s.lang !== lang()) {
      setLang(s.lang);
      langSelect.value = s.lang;
    }
  });
  translateDom(document.body);
}

start().catch((e) => {
  console.error(e);
  showError(t('app.loadError', { detail: e instanceof Error ? e.message : String(e) }));
});
