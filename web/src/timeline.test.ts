// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it, vi, type Mock } from 'vitest';
import en from './i18n/en.json';
import { TimeBar } from './timeline';

const NOW = Date.parse('2026-11-25T12:00:00.000Z');
const FIRST = '2026-11-24T06:30:20.000Z';
/** An hour before the first reading, down to the minute. */
const START = Math.floor((Date.parse(FIRST) - 3_600_000) / 60_000) * 60_000;

function ok(body: unknown) {
  return { ok: true, status: 200, json: async () => body };
}

/** The temporal API's reply with `aggrMethods=totalCount`: per attribute `[count, periodStart, periodEnd]` rows. */
const aggregated = [
  {
    id: 'urn:a',
    type: 'AirQualityObserved',
    NO2: { type: 'Property', totalCount: [[10, '2026-11-24T08:00:00Z', '2126-11-24T08:00:00Z']] },
    PM10: [
      { type: 'Property', datasetId: 'urn:d:1', totalCount: [[5, FIRST, '2126-11-24T06:30:20Z']] },
      { type: 'Property', datasetId: 'urn:d:2', totalCount: [] },
    ],
  },
  { id: 'urn:b', type: 'TrafficFlowObserved', intensity: { type: 'Property', totalCount: [[1, '2026-11-25T00:00:00Z', 'x']] }, name: 'n' },
];

let root: HTMLElement;
let onChange: Mock<(time: number | undefined) => void>;
let fetchMock: ReturnType<typeof vi.fn>;

function make(initial?: string): TimeBar {
  root = document.createElement('div');
  document.body.append(root);
  onChange = vi.fn<(time: number | undefined) => void>();
  return new TimeBar(root, { initial, onChange });
}

const slider = () => root.querySelector<HTMLInputElement>('#time-slider')!;
const output = () => root.querySelector<HTMLOutputElement>('#time-output')!.textContent;

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
  vi.setSystemTime(NOW);
  fetchMock = vi.fn(async () => ok(aggregated));
  vi.stubGlobal('fetch', fetchMock);
});

afterEach(() => {
  vi.useRealTimers();
  document.body.replaceChildren();
});

describe('TimeBar.load', () => {
  it('starts hidden, and stays hidden without sensor types (nothing asked)', async () => {
    const bar = make();
    expect(root.hidden).toBe(true);
    await bar.load([]);
    expect(root.hidden).toBe(true);
    expect(fetchMock).not.toHaveBeenCalled();
  });

  it('asks for the observed readings as one aggregated period before now', async () => {
    await make().load(['AirQualityObserved', 'TrafficFlowObserved']);
    expect(fetchMock).toHaveBeenCalledTimes(1);
    const u = new URL(fetchMock.mock.calls[0]![0] as string, 'http://x');
    expect(u.pathname).toBe('/ngsi-ld/v1/temporal/entities');
    expect(Object.fromEntries(u.searchParams)).toEqual({
      type: 'AirQualityObserved,TrafficFlowObserved',
      q: '!simulated',
      timerel: 'before',
      timeAt: new Date(NOW).toISOString(),
      aggrMethods: 'totalCount',
      aggrPeriodDuration: 'P100Y',
    });
  });

  it('spans from an hour before the earliest period start (whole minutes) to now, at the live end', async () => {
    const bar = make();
    await bar.load(['AirQualityObserved']);
    expect(root.hidden).toBe(false);
    expect(Number(root.dataset.start)).toBe(START);
    expect(root.dataset.time).toBe('live');
    expect(bar.urlTime()).toBeUndefined();
    const max = Number(slider().max);
    expect(max).toBe(Math.ceil((NOW - START) / 1000 / 60) * 60);
    expect(Number(slider().value)).toBe(max);
    expect(output()).toBe(en.time.liveNow);
    expect(onChange).not.toHaveBeenCalled();
  });

  it.each([
    ['an error status', async () => ({ ok: false, status: 500, json: async () => ({}) })],
    ['a network failure', async () => Promise.reject(new TypeError('offline'))],
    ['no readings', async () => ok([{ id: 'a', type: 'T', x: { type: 'Property', totalCount: [] } }])],
    ['a body that is not JSON', async () => ({ ok: true, status: 200, json: async () => Promise.reject(new SyntaxError('x')) })],
  ])('stays hidden on %s', async (_, reply) => {
    fetchMock.mockImplementation(reply);
    const bar = make();
    await bar.load(['T']);
    expect(root.hidden).toBe(true);
  });

  it('applies the URL time once loaded', async () => {
    const at = '2026-11-25T08:00:00.000Z';
    const bar = make(at);
    await bar.load(['AirQualityObserved']);
    expect(bar.urlTime()).toBe(at);
    expect(onChange).toHaveBeenCalledWith(Date.parse(at));
    expect(root.dataset.time).toBe(String(Date.parse(at)));
  });
});

describe('TimeBar time', () => {
  let bar: TimeBar;
  beforeEach(async () => {
    bar = make();
    await bar.load(['AirQualityObserved']);
  });

  it('setFromUrl: a time inside the span', () => {
    bar.setFromUrl('2026-11-25T08:00:00Z');
    expect(bar.urlTime()).toBe('2026-11-25T08:00:00.000Z');
    expect(onChange).toHaveBeenLastCalledWith(Date.parse('2026-11-25T08:00:00Z'));
    expect(Number(slider().value)).toBe((Date.parse('2026-11-25T08:00:00Z') - START) / 1000);
    expect(output()).not.toBe(en.time.liveNow);
    expect(root.querySelector<HTMLButtonElement>('#time-live')!.disabled).toBe(false);
  });

  it('setFromUrl: before the start is the start, now or later is live, garbage is live', () => {
    bar.setFromUrl('2000-01-01T00:00:00Z');
    expect(bar.urlTime()).toBe(new Date(START).toISOString());
    bar.setFromUrl('2030-01-01T00:00:00Z');
    expect(bar.urlTime()).toBeUndefined();
    bar.setFromUrl('2026-11-25T08:00:00Z');
    bar.setFromUrl('not a time');
    expect(bar.urlTime()).toBeUndefined();
    expect(onChange.mock.calls.map(([t]) => t)).toEqual([START, undefined, Date.parse('2026-11-25T08:00:00Z'), undefined]);
  });

  it('tells only of changes', () => {
    bar.setFromUrl('2026-11-25T08:00:00Z');
    bar.setFromUrl('2026-11-25T08:00:00.000Z');
    bar.setFromUrl(undefined);
    bar.setFromUrl(undefined);
    expect(onChange).toHaveBeenCalledTimes(2);
  });

  it('the slider: seconds from the start, its right end is live', () => {
    slider().value = '3600';
    slider().dispatchEvent(new Event('input'));
    expect(bar.urlTime()).toBe(new Date(START + 3_600_000).toISOString());
    slider().value = slider().max;
    slider().dispatchEvent(new Event('input'));
    expect(bar.urlTime()).toBeUndefined();
  });

  it('the live button returns to live', () => {
    bar.setFromUrl('2026-11-25T08:00:00Z');
    root.querySelector<HTMLButtonElement>('#time-live')!.click();
    expect(bar.urlTime()).toBeUndefined();
    expect(root.querySelector<HTMLButtonElement>('#time-live')!.disabled).toBe(true);
  });

  it('plays from the start at an hour a second by default, and stops at the live end', () => {
    const play = root.querySelector<HTMLButtonElement>('#time-play')!;
    play.click();
    expect(play.getAttribute('aria-pressed')).toBe('true');
    expect(bar.urlTime()).toBe(new Date(START).toISOString());
    vi.advanceTimersByTime(250);
    // a quarter of a second at 60 map minutes a second: 15 minutes
    expect(bar.urlTime()).toBe(new Date(START + 15 * 60_000).toISOString());
    vi.advanceTimersByTime(1000);
    expect(bar.urlTime()).toBe(new Date(START + 75 * 60_000).toISOString());
    play.click();
    expect(play.getAttribute('aria-pressed')).toBe('false');
    vi.advanceTimersByTime(5000);
    expect(bar.urlTime()).toBe(new Date(START + 75 * 60_000).toISOString());
    // the span is about 30 hours: at an hour a second it reaches now within a minute and goes live
    play.click();
    vi.advanceTimersByTime(60_000);
    expect(bar.urlTime()).toBeUndefined();
    expect(play.getAttribute('aria-pressed')).toBe('false');
  });

  it('the speed chooses map minutes per second', () => {
    const speed = root.querySelector<HTMLSelectElement>('#time-speed')!;
    expect([...speed.options].map((o) => o.value)).toEqual(['1', '10', '60', '360']);
    expect(speed.value).toBe('60');
    speed.selectedIndex = 1;
    bar.setFromUrl('2026-11-25T08:00:00Z');
    root.querySelector<HTMLButtonElement>('#time-play')!.click();
    vi.advanceTimersByTime(1000);
    expect(bar.urlTime()).toBe('2026-11-25T08:10:00.000Z');
  });
});
