// The time slider: a bar at the bottom of the map over the span of the sensors' temporal data, with play/pause, a
// speed and a "live" position at the right end. Its start is the first reading of the sensors, found with one
// aggregated temporal query (`aggrMethods=totalCount` over one long period: each result's period starts at the
// entity's first instance); its end is now. Moving it reports a time (epoch ms), or undefined at the live end.

import { el } from './dom';
import { fmtDateTime, onLangChange, t } from './i18n';

/** Map time per second of playback, in minutes. */
const SPEEDS = [1, 10, 60, 360];
const TICK_MS = 250;
const STEP_S = 60;

interface Options {
  /** The time from the URL (ISO 8601). */
  initial: string | undefined;
  onChange: (time: number | undefined) => void;
}

export class TimeBar {
  private start = Date.now() - 86_400_000;
  private end = Date.now();
  private time: number | undefined;
  private timer: number | undefined;
  private readonly slider: HTMLInputElement;
  private readonly play: HTMLButtonElement;
  private readonly live: HTMLButtonElement;
  private readonly speed: HTMLSelectElement;
  private readonly output: HTMLOutputElement;
  private readonly speedLabel: HTMLLabelElement;
  private readonly title: HTMLSpanElement;

  constructor(
    private readonly root: HTMLElement,
    private readonly opts: Options,
  ) {
    this.title = el('span', { class: 'time-title', id: 'time-title' }) as HTMLSpanElement;
    this.play = el('button', { type: 'button', id: 'time-play', class: 'time-button', 'aria-pressed': 'false' }) as HTMLButtonElement;
    this.slider = el('input', {
      type: 'range',
      id: 'time-slider',
      min: '0',
      max: '1',
      step: String(STEP_S),
      'aria-labelledby': 'time-title',
    }) as HTMLInputElement;
    this.output = el('output', { id: 'time-output', for: 'time-slider', 'aria-live': 'off' }) as HTMLOutputElement;
    this.live = el('button', { type: 'button', id: 'time-live', class: 'time-button' }) as HTMLButtonElement;
    this.speed = el('select', { id: 'time-speed' }) as HTMLSelectElement;
    this.speedLabel = el('label', { for: 'time-speed', class: 'sr-only' }) as HTMLLabelElement;
    root.setAttribute('role', 'group');
    root.setAttribute('aria-labelledby', 'time-title');
    root.replaceChildren(this.title, this.play, this.slider, this.output, this.speedLabel, this.speed, this.live);
    root.hidden = true;
    this.slider.addEventListener('input', () => this.fromSlider());
    this.play.addEventListener('click', () => this.toggle());
    this.live.addEventListener('click', () => {
      this.pause();
      this.set(undefined);
    });
    root.addEventListener('keydown', (e) => {
      // space plays or pauses wherever the focus is in the bar (a button's own space is its click)
      if (e.key === ' ' && !(e.target instanceof HTMLButtonElement) && !(e.target instanceof HTMLSelectElement)) {
        e.preventDefault();
        this.toggle();
      }
    });
    this.translate();
    onLangChange(() => this.translate());
  }

  /** Reads the span of the sensors' temporal data and shows the bar (if there is any). */
  async load(types: string[]): Promise<void> {
    if (!types.length) return;
    const now = new Date();
    const params = new URLSearchParams({
      type: types.join(','),
      q: '!simulated',
      timerel: 'before',
      timeAt: now.toISOString(),
      aggrMethods: 'totalCount',
      aggrPeriodDuration: 'P100Y',
    });
    let first = Infinity;
    try {
      const res = await fetch(`/ngsi-ld/v1/temporal/entities?${params}`);
      if (!res.ok) return;
      const list = (await res.json()) as Record<string, unknown>[];
      for (const e of list)
        for (const [k, v] of Object.entries(e)) {
          if (k === 'id' || k === 'type' || !v || typeof v !== 'object') continue;
          for (const a of Array.isArray(v) ? v : [v]) {
            const rows = (a as { totalCount?: [number, string, string][] }).totalCount ?? [];
            for (const r of rows) first = Math.min(first, Date.parse(r[1]));
          }
        }
    } catch {
      return;
    }
    if (!Number.isFinite(first)) return;
    // an hour before the first reading, so that the start shows "no reading yet"
    this.start = Math.floor((first - 3_600_000) / 60_000) * 60_000;
    this.end = now.getTime();
    this.root.hidden = false;
    window.setInterval(() => {
      this.end = Date.now();
      this.render();
    }, 30_000);
    this.setFromUrl(this.opts.initial);
  }

  /** The time as the URL holds it. */
  urlTime(): string | undefined {
    return this.time === undefined ? undefined : new Date(this.time).toISOString();
  }

  setFromUrl(iso: string | undefined): void {
    const ms = iso ? Date.parse(iso) : NaN;
    this.set(Number.isFinite(ms) ? ms : undefined);
  }

  private fromSlider(): void {
    const s = Number(this.slider.value);
    const max = Number(this.slider.max);
    this.set(s >= max ? undefined : this.start + s * 1000);
  }

  private set(time: number | undefined): void {
    if (time !== undefined) time = Math.max(this.start, time);
    if (time !== undefined && time >= this.end) time = undefined;
    const changed = time !== this.time;
    this.time = time;
    this.render();
    if (changed) this.opts.onChange(time);
  }

  private toggle(): void {
    if (this.timer !== undefined) this.pause();
    else this.resume();
  }

  private resume(): void {
    if (this.time === undefined) this.set(this.start); // from the live end: play from the start
    this.timer = window.setInterval(() => {
      const minutes = SPEEDS[this.speed.selectedIndex] ?? 60;
      const next = (this.time ?? this.end) + (minutes * 60_000 * TICK_MS) / 1000;
      if (next >= this.end) {
        this.pause();
        this.set(undefined);
      } else this.set(next);
    }, TICK_MS);
    this.render();
  }

  private pause(): void {
    window.clearInterval(this.timer);
    this.timer = undefined;
    this.render();
  }

  private render(): void {
    const max = Math.max(STEP_S, Math.ceil((this.end - this.start) / 1000 / STEP_S) * STEP_S);
    this.slider.max = String(max);
    this.slider.value = String(this.time === undefined ? max : Math.round((this.time - this.start) / 1000));
    const text = this.time === undefined ? t('time.liveNow') : fmtDateTime(new Date(this.time).toISOString());
    this.slider.setAttribute('aria-valuetext', text);
    this.output.textContent = text;
    this.root.dataset.start = String(this.start);
    this.root.dataset.time = this.time === undefined ? 'live' : String(this.time);
    this.live.disabled = this.time === undefined;
    this.live.setAttribute('aria-pressed', String(this.time === undefined));
    const playing = this.timer !== undefined;
    this.play.setAttribute('aria-pressed', String(playing));
    this.play.textContent = playing ? '❚❚' : '▶';
    this.play.setAttribute('aria-label', playing ? t('time.pause') : t('time.play'));
    this.play.title = this.play.getAttribute('aria-label')!;
  }

  private translate(): void {
    this.title.textContent = t('time.title');
    this.live.textContent = t('time.live');
    this.speedLabel.textContent = t('time.speed');
    const i = this.speed.options.length ? this.speed.selectedIndex : 2; // an hour a second by default
    this.speed.replaceChildren(
      ...SPEEDS.map((m) => el('option', { value: String(m) }, m < 60 ? t('time.speedMinutes', { n: m }) : t('time.speedHours', { n: m / 60 }))),
    );
    this.speed.selectedIndex = i;
    this.render();
  }
}
