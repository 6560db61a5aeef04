// An attribute's history as a uPlot line chart, with the same readings as a table for screen readers and keyboards.

import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { el } from './dom';
import { fmtDateTime, fmtNumber, lang, t } from './i18n';

/** The time slider's time (epoch ms) marked on the charts; undefined when live. */
let markTime: number | undefined;
/** The charts shown, with their boxes (which say the time marked in `data-mark-time`). */
const plots = new Map<uPlot, HTMLElement>();

/** Marks `time` (epoch ms; undefined: none) on every chart shown. */
export function setChartTime(time: number | undefined): void {
  markTime = time;
  for (const [p, box] of plots) {
    box.dataset.markTime = time === undefined ? '' : String(time);
    p.redraw(false);
  }
}

/** Draws the time mark as a vertical line. */
function drawMark(u: uPlot): void {
  if (markTime === undefined) return;
  const x = u.valToPos(markTime / 1000, 'x', true);
  if (!Number.isFinite(x) || x < u.bbox.left || x > u.bbox.left + u.bbox.width) return;
  const ctx = u.ctx;
  ctx.save();
  ctx.strokeStyle = '#c62828';
  ctx.lineWidth = 2 * devicePixelRatio;
  ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
  ctx.beginPath();
  ctx.moveTo(x, u.bbox.top);
  ctx.lineTo(x, u.bbox.top + u.bbox.height);
  ctx.stroke();
  ctx.restore();
}

export interface Series {
  label: string;
  unit: string;
  points: [number, number][]; // [epoch seconds, value], ascending
}

/** Draws `s` into `box` (replacing what was there); returns a function that removes the chart. */
export function drawChart(box: HTMLElement, s: Series): () => void {
  box.replaceChildren();
  const xs = s.points.map((p) => p[0]);
  const ys = s.points.map((p) => p[1]);
  const width = Math.max(240, Math.floor(box.clientWidth || 300));
  const plotBox = el('div', { class: 'chart-plot', role: 'img', 'aria-label': chartSummary(s) });
  box.append(plotBox);
  const plot = new uPlot(
    {
      width,
      height: 170,
      legend: { show: false },
      hooks: { draw: [drawMark] },
      cursor: { drag: { x: true, y: false } },
      scales: { x: { time: true } },
      axes: [
        {
          stroke: '#3d3d3d',
          grid: { stroke: '#e3e3e3' },
          ticks: { stroke: '#c8c8c8' },
          // times in the app's language: hours within two days, else dates
          values: (u, splits) => {
            const span = (u.scales.x?.max ?? 0) - (u.scales.x?.min ?? 0);
            const f = new Intl.DateTimeFormat(
              lang(),
              span < 2 * 86400 ? { hour: '2-digit', minute: '2-digit' } : { day: 'numeric', month: 'short' },
            );
            return splits.map((v) => f.format(new Date(v * 1000)));
          },
        },
        {
          stroke: '#3d3d3d',
          grid: { stroke: '#e3e3e3' },
          ticks: { stroke: '#c8c8c8' },
          size: 52,
          values: (_u, vals) => vals.map((v) => fmtNumber(v)),
        },
      ],
      series: [
        {},
        {
          label: s.label,
          stroke: '#0b57d0',
          width: 2,
          fill: 'rgba(11,87,208,0.08)',
          points: { show: s.points.length < 60, size: 6, stroke: '#0b57d0', fill: '#fff' },
        },
      ],
    },
    [xs, ys],
    plotBox,
  );
  plots.set(plot, box);
  box.dataset.markTime = markTime === undefined ? '' : String(markTime);
  // the readings as a table
  const rows = s.points
    .slice()
    .reverse()
    .map(([x, y]) =>
      el('tr', {}, el('td', {}, fmtDateTime(new Date(x * 1000).toISOString())), el('td', { class: 'num' }, `${fmtNumber(y)} ${s.unit}`.trim())),
    );
  const table = el(
    'table',
    { class: 'readings' },
    el('caption', { class: 'sr-only' }, t('feature.readingsOf', { attr: s.label })),
    el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, t('feature.time')), el('th', { scope: 'col' }, t('feature.value')))),
    el('tbody', {}, ...rows),
  );
  box.append(el('details', { class: 'readings-table' }, el('summary', {}, t('feature.showReadings', { n: s.points.length })), table));
  const ro = new ResizeObserver(() => {
    const w = Math.max(240, Math.floor(box.clientWidth));
    if (Math.abs(w - plot.width) > 4) plot.setSize({ width: w, height: 170 });
  });
  ro.observe(box);
  return () => {
    ro.disconnect();
    plots.delete(plot);
    plot.destroy();
  };
}

function chartSummary(s: Series): string {
  if (!s.points.length) return s.label;
  const ys = s.points.map((p) => p[1]);
  const last = s.points[s.points.length - 1]!;
  return t('feature.chartSummary', {
    attr: s.label,
    n: s.points.length,
    min: fmtNumber(Math.min(...ys)),
    max: fmtNumber(Math.max(...ys)),
    last: `${fmtNumber(last[1])} ${s.unit}`.trim(),
  });
}
