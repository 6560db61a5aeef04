// Swipe comparison: a second map over the first, showing the same place with the scenario's traffic, cut off left of a
// divider the user drags (or moves with the arrow keys). The map underneath shows the baseline's traffic.

import { Map as MapLibreMap, type Map as MlMap, type StyleSpecification } from 'maplibre-gl';
import { el } from './dom';

export interface SwipeOptions {
  /** Makes the overlay's style show the scenario (filters and paint of the results layers). */
  prepare: (overlay: MlMap) => void;
  /** Labels in the current language. */
  label: string;
  leftLabel: string;
  rightLabel: string;
  /** The icons the main map was given with `addImage` (not part of its style). */
  images: Map<string, ImageData>;
  /** The main map's request transform (server URLs to this origin). */
  transformRequest: (url: string) => { url: string };
}

/** Clamps a divider position (share of the width, 0..1). */
export function clampShare(x: number): number {
  return Math.min(0.98, Math.max(0.02, Number.isFinite(x) ? x : 0.5));
}

export class SwipeCompare {
  readonly overlay: MlMap;
  private readonly box: HTMLElement;
  private readonly handle: HTMLElement;
  private readonly captions: HTMLElement;
  private share = 0.5;
  private readonly sync = () => this.follow();

  constructor(
    private readonly map: MlMap,
    opts: SwipeOptions,
  ) {
    // inside the map's container, above its canvas and under its controls
    const host = map.getContainer();
    const controls = host.querySelector('.maplibregl-control-container');
    this.box = el('div', { class: 'swipe-map', id: 'swipe-map', 'aria-hidden': 'true' });
    host.insertBefore(this.box, controls);
    const style = map.getStyle() as StyleSpecification;
    this.overlay = new MapLibreMap({
      container: this.box,
      style,
      interactive: false,
      attributionControl: false,
      center: map.getCenter(),
      zoom: map.getZoom(),
      bearing: map.getBearing(),
      pitch: map.getPitch(),
      maxPitch: 75,
      fadeDuration: 0,
      transformRequest: opts.transformRequest,
    });
    this.overlay.once('style.load', () => {
      for (const [name, data] of opts.images) if (!this.overlay.hasImage(name)) this.overlay.addImage(name, data, { pixelRatio: 2 });
    });
    this.overlay.once('style.load', () => opts.prepare(this.overlay));
    // for the tests: set once the overlay has drawn everything in view
    this.overlay.on('idle', () => (this.box.dataset.idle = 'true'));
    this.overlay.on('dataloading', () => delete this.box.dataset.idle);
    this.handle = el('div', {
      class: 'swipe-handle',
      id: 'swipe-handle',
      role: 'slider',
      tabindex: '0',
      'aria-label': opts.label,
      'aria-valuemin': '0',
      'aria-valuemax': '100',
      'aria-orientation': 'horizontal',
    });
    this.captions = el(
      'div',
      { class: 'swipe-captions', 'aria-hidden': 'true' },
      el('span', { class: 'swipe-caption left' }, opts.leftLabel),
      el('span', { class: 'swipe-caption right' }, opts.rightLabel),
    );
    host.insertBefore(this.handle, controls);
    host.insertBefore(this.captions, controls);
    this.handle.addEventListener('pointerdown', (e) => this.drag(e));
    this.handle.addEventListener('keydown', (e) => {
      const step = e.shiftKey ? 0.1 : 0.02;
      if (e.key === 'ArrowLeft') this.setShare(this.share - step);
      else if (e.key === 'ArrowRight') this.setShare(this.share + step);
      else if (e.key === 'Home') this.setShare(0);
      else if (e.key === 'End') this.setShare(1);
      else return;
      e.preventDefault();
      e.stopPropagation(); // not the map's keyboard panning
    });
    map.on('move', this.sync);
    map.on('resize', this.sync);
    this.follow();
    this.setShare(0.5);
  }

  /** The divider's position as a share of the map's width. */
  get position(): number {
    return this.share;
  }

  setShare(x: number): void {
    this.share = clampShare(x);
    this.layout();
  }

  private layout(): void {
    const host = this.map.getContainer();
    const w = host.clientWidth;
    const x = Math.round(w * this.share);
    this.box.style.clipPath = `inset(0 0 0 ${x}px)`;
    this.handle.style.left = `${x}px`;
    this.captions.style.setProperty('--x', `${x}px`);
    this.handle.setAttribute('aria-valuenow', String(Math.round(this.share * 100)));
  }

  private follow(): void {
    const host = this.map.getContainer();
    const c = this.overlay.getCanvas();
    if (c.clientWidth !== host.clientWidth || c.clientHeight !== host.clientHeight) this.overlay.resize();
    this.overlay.jumpTo({
      center: this.map.getCenter(),
      zoom: this.map.getZoom(),
      bearing: this.map.getBearing(),
      pitch: this.map.getPitch(),
      padding: this.map.getPadding(),
    });
    this.layout();
  }

  private drag(e: PointerEvent): void {
    e.preventDefault();
    this.handle.setPointerCapture(e.pointerId);
    const host = this.map.getContainer();
    const move = (ev: PointerEvent) => {
      const r = host.getBoundingClientRect();
      this.setShare((ev.clientX - r.left) / r.width);
    };
    const up = () => {
      this.handle.removeEventListener('pointermove', move);
      this.handle.removeEventListener('pointerup', up);
      this.handle.removeEventListener('pointercancel', up);
    };
    this.handle.addEventListener('pointermove', move);
    this.handle.addEventListener('pointerup', up);
    this.handle.addEventListener('pointercancel', up);
  }

  remove(): void {
    this.map.off('move', this.sync);
    this.map.off('resize', this.sync);
    this.overlay.remove();
    this.box.remove();
    this.handle.remove();
    this.captions.remove();
  }
}
