// @vitest-environment happy-dom
import type { Map as MlMap } from 'maplibre-gl';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AIR_LAYER, AIR_SOURCE } from './air';
import { initLang } from './i18n';
import { runMessage, ScenarioPanel } from './scenarios';

const done = {
  status: 'done' as const,
  message: 'converged to a relative gap of 4.1e-16 in 32 iterations',
  summary: { converged: true, relativeGap: 4.1e-16, iterations: 32, seconds: 0.2287, unservedTrips: 0, unservedPairs: [] },
};

describe('runMessage', () => {
  afterEach(() => initLang('en'));

  it('tells a converged run from its figures, in the user’s language', () => {
    initLang('en');
    expect(runMessage(done)).toBe('The model converged (relative gap 4.1e-16) in 32 iterations and 0.23 s.');
    initLang('fi');
    expect(runMessage(done)).toBe('Malli konvergoi (suhteellinen aukko 4.1e-16) 32 iteraatiossa, 0,23 s.');
  });

  it('warns of trips cut off, of a run stopped early and of results not published', () => {
    initLang('en');
    const m = runMessage({
      status: 'done',
      summary: { converged: false, relativeGap: 0.0123, unservedTrips: 12.25, unservedPairs: [1, 2, 3], published: { error: 'disk full' } },
    });
    expect(m).toBe(
      '12.3 trips between 3 zone pairs have no route: the edits cut them off. ' +
        'The model stopped before converging (relative gap 1.2e-2): the figures are approximate. ' +
        'Its results could not be published to the map; the figures above stand.',
    );
  });

  it('passes a failure’s reason on (it names the edit at fault) and says nothing while queued or running', () => {
    initLang('en');
    expect(runMessage({ status: 'failed', message: 'edits[0] (closeStreet): no street named "X"' })).toBe(
      'The run failed: edits[0] (closeStreet): no street named "X"',
    );
    expect(runMessage({ status: 'failed' })).toBe('');
    expect(runMessage({ status: 'running', message: 'iteration 3' })).toBe('');
    expect(runMessage({ status: 'cancelled', message: 'cancelled' })).toBe('');
    expect(runMessage({ status: 'done' })).toBe('');
  });
});

describe('the scenario panel’s air and noise', () => {
  const SID = 'urn:ngsi-ld:Scenario:closure';
  const LINK = 'urn:ngsi-ld:RoadLink:1';
  const run = { id: 'urn:ngsi-ld:ScenarioRun:1', scenario: SID, status: 'done', progress: 1, summary: { vehicleKm: 10, vehicleHours: 2, unservedTrips: 0 } };
  const air = {
    scenario: SID,
    run: run.id,
    summary: { no2: { aboveWho: 4200, aboveEu2030: 800, aboveEuLimit: 0, meanResidents: 17 }, emissionsKgPerDay: { nox: 61.4, co2: 21876 } },
    change: { no2AboveWho: [4300, 4200], no2AboveEu2030: [900, 800], no2AboveEuLimit: [0, 0], noxKgPerDay: [63, 61.4], co2KgPerDay: [22500, 21876] },
    streets: { [LINK]: { name: 'Fabianinkatu', no2: 14, deltaNo2: -3, pm10: 16, pm25: 7, roadType: 2, vehiclesPerDay: 0 } },
  };
  const noise = {
    scenario: SID,
    run: run.id,
    summary: { noise: { endLden: 2100, endLnight: 900 } },
    change: { ldenAbove55: [2300, 2100], lnightAbove50: [950, 900] },
    streets: { [LINK]: { name: 'Fabianinkatu', lden: 61, lnight: 52, deltaLden: -2 } },
  };

  function fakeMap() {
    const layers = new Set<string>();
    const canvas = document.createElement('canvas');
    const map = {
      on: vi.fn(),
      off: vi.fn(),
      getSource: vi.fn(() => undefined),
      addSource: vi.fn(),
      addLayer: vi.fn((l: { id: string }) => layers.add(l.id)),
      getLayer: vi.fn((id: string) => (layers.has(id) ? { id } : undefined)),
      setFilter: vi.fn(),
      setPaintProperty: vi.fn(),
      setLayoutProperty: vi.fn(),
      setFeatureState: vi.fn(),
      removeFeatureState: vi.fn(),
      queryRenderedFeatures: vi.fn(() => []),
      getCanvas: () => canvas,
    };
    return { map: map as unknown as MlMap, raw: map };
  }

  function serve(airStatus: number) {
    const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
    const fetchMock = vi.fn(async (url: string) => {
      if (url.endsWith('/air')) return airStatus === 200 ? json(air) : json({ type: 'Conflict', title: 'Conflict', status: 409, detail: 'no done run yet' }, 409);
      if (url.endsWith('/noise')) return json(noise);
      if (url.endsWith('/runs')) return json([run]);
      if (url === '/api/scenarios') return json([{ id: SID, name: 'Closure', edits: [] }]);
      return json({ id: SID, name: 'Closure', edits: [{ kind: 'closeStreet', name: 'Fabianinkatu' }] });
    });
    vi.stubGlobal('fetch', fetchMock);
    return fetchMock;
  }

  async function open(airStatus: number) {
    initLang('en');
    const fetchMock = serve(airStatus);
    const root = document.createElement('div');
    const { map, raw } = fakeMap();
    const panel = new ScenarioPanel(root, map, { onSelect: vi.fn(), icons: new Map(), transformRequest: (url) => ({ url }) });
    panel.addLayers();
    await panel.select(SID);
    const radio = root.querySelector<HTMLInputElement>('#scenario-view-no2')!;
    radio.checked = true;
    radio.dispatchEvent(new Event('change'));
    return { root, raw, panel, fetchMock };
  }

  it('colours the streets by NO2 through their feature state, with a legend and the summary as baseline → scenario', async () => {
    const { root, raw, panel, fetchMock } = await open(200);
    await vi.waitFor(() => expect(root.querySelector('#scenario-air-summary')).not.toBeNull());
    expect(fetchMock.mock.calls.map((c) => c[0])).toContain(`/api/scenarios/${encodeURIComponent(SID)}/air`);
    expect(raw.setFeatureState).toHaveBeenCalledWith({ source: AIR_SOURCE, sourceLayer: 'RoadLink', id: LINK }, { no2: 14, deltaNo2: -3, lden: 61, deltaLden: -2 });
    expect(raw.setLayoutProperty).toHaveBeenCalledWith(AIR_LAYER, 'visibility', 'visible');
    expect(raw.setLayoutProperty).toHaveBeenLastCalledWith(AIR_LAYER, 'visibility', 'visible');
    expect(raw.setLayoutProperty).toHaveBeenCalledWith('app-scenario-delta', 'visibility', 'none');
    expect(root.querySelector('#scenario-legend-title')!.textContent).toContain('µg/m³');
    expect(root.querySelectorAll('#scenario-air-legend li').length).toBe(4);
    expect(root.querySelector('[data-metric="no2AboveWho"]')!.textContent).toContain('4,300 → 4,200');
    expect(root.querySelector('[data-metric="ldenAbove55"]')!.textContent).toContain('2,300 → 2,100');
    expect(panel.streetDetails(LINK)!.textContent).toContain('narrow street canyon');
    // back to the traffic: the air layer goes away
    const delta = root.querySelector<HTMLInputElement>('#scenario-view-delta')!;
    delta.checked = true;
    delta.dispatchEvent(new Event('change'));
    expect(raw.setLayoutProperty).toHaveBeenLastCalledWith(AIR_LAYER, 'visibility', 'none');
    expect(root.querySelector('#scenario-air-summary')).toBeNull();
    expect(panel.streetDetails(LINK)).toBeUndefined();
  });

  it('says so when the scenario has no run with air and noise yet (409)', async () => {
    const { root, raw, panel } = await open(409);
    await vi.waitFor(() => expect(root.querySelector('#scenario-air')!.getAttribute('data-state')).toBe('noRun'));
    expect(root.querySelector('#scenario-air-message')!.textContent).toMatch(/No air and noise results/);
    expect(raw.setFeatureState).not.toHaveBeenCalled();
    expect(panel.airOn).toBe(false);
  });
});
