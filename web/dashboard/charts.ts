/**
 * Drawing: uPlot for time series (lines, or bars stacked per dimension value), plain HTML bars for
 * totals and funnels (they are rankings, not time series, and HTML keeps them readable by screen
 * readers). Axis times are UTC, like the tables and the API.
 */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { ChartData } from './data.js';
import { formatInt } from './data.js';

const PALETTE = ['#2f6fdf', '#e8772e', '#2e9e5b', '#c43d5a', '#8a5cd0', '#1b9aaa', '#b8860b', '#6b7280', '#d4589b', '#4b8f29'];
export const colorOf = (i: number): string => PALETTE[i % PALETTE.length] ?? '#333';

export interface Drawn {
  update(data: ChartData, chart: 'line' | 'bar'): void;
  destroy(): void;
}

function formatTick(v: number, money: boolean, percent: boolean): string {
  if (percent) return `${v.toFixed(v < 10 ? 1 : 0)}%`;
  if (Math.abs(v) >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
  if (Math.abs(v) >= 1e4) return `${(v / 1e3).toFixed(0)}k`;
  return money && v !== 0 ? v.toFixed(v < 100 ? 2 : 0) : formatInt(v);
}

/** Stacked bars: series i is drawn as the sum of series 0..i, tallest first so smaller ones sit on top. */
function stack(values: number[][]): number[][] {
  const acc: number[][] = [];
  values.forEach((v, i) => acc.push(v.map((x, j) => x + (i > 0 ? (acc[i - 1]?.[j] ?? 0) : 0))));
  return acc;
}

function timeChart(host: HTMLElement, data: Extract<ChartData, { kind: 'time' }>, chart: 'line' | 'bar'): uPlot {
  const stacked = chart === 'bar' && data.series.length > 1;
  const ys = stacked ? stack(data.series.map((s) => s.values)) : data.series.map((s) => s.values);
  const order = stacked ? ys.map((_, i) => ys.length - 1 - i) : ys.map((_, i) => i);
  const bars = uPlot.paths.bars?.({ size: [0.8, 48] });
  const opts: uPlot.Options = {
    width: Math.max(240, host.clientWidth),
    height: 220,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
    legend: { show: data.series.length > 1 || stacked, live: false },
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.05 : 1] } },
    axes: [{}, { size: 56, values: (_u, ticks) => ticks.map((v) => formatTick(v, data.money, data.percent)) }],
    series: [
      {},
      ...order.map((i) => {
        const c = colorOf(i);
        return chart === 'bar'
          ? { label: data.series[i]?.label ?? '', stroke: c, fill: c, width: 0, points: { show: false }, ...(bars ? { paths: bars } : {}) }
          : { label: data.series[i]?.label ?? '', stroke: c, width: 2, points: { show: false } };
      }),
    ],
  };
  const aligned: uPlot.AlignedData = [data.x.map((t) => t / 1000), ...order.map((i) => ys[i] ?? [])];
  return new uPlot(opts, aligned, host);
}

function barsChart(host: HTMLElement, data: Extract<ChartData, { kind: 'bars' }>): void {
  const max = Math.max(0, ...data.items.map((i) => i.value));
  const list = document.createElement('ol');
  list.className = 'bars';
  // A ranking beyond a dozen rows is a table's job.
  for (const [i, item] of data.items.slice(0, 12).entries()) {
    const li = document.createElement('li');
    const label = document.createElement('span');
    label.className = 'bar-label';
    label.textContent = item.label;
    const track = document.createElement('span');
    track.className = 'bar-track';
    const bar = document.createElement('span');
    bar.className = 'bar';
    bar.style.width = `${max > 0 ? Math.max(0.5, (item.value / max) * 100) : 0}%`;
    bar.style.background = colorOf(i);
    track.append(bar);
    const value = document.createElement('span');
    value.className = 'bar-value';
    value.textContent = item.text;
    li.append(label, track, value);
    list.append(li);
  }
  host.replaceChildren(list);
}

/** Draws into `host`, keeping one uPlot instance while the shape of the data stays the same. */
export function draw(host: HTMLElement): Drawn {
  let plot: uPlot | undefined;
  let shape = '';
  const resize = new ResizeObserver(() => {
    if (plot && host.clientWidth > 0 && Math.abs(plot.width - host.clientWidth) > 4) plot.setSize({ width: host.clientWidth, height: 220 });
  });
  resize.observe(host);
  return {
    update(data, chart) {
      if (data.kind === 'bars') {
        plot?.destroy();
        plot = undefined;
        shape = '';
        barsChart(host, data);
        return;
      }
      const next = `${chart}|${data.money}|${data.percent}|${data.series.map((s) => s.label).join('\u0000')}|${data.x.length}`;
      if (plot && next === shape) {
        const stacked = chart === 'bar' && data.series.length > 1;
        const ys = stacked ? stack(data.series.map((s) => s.values)) : data.series.map((s) => s.values);
        const order = stacked ? ys.map((_, i) => ys.length - 1 - i) : ys.map((_, i) => i);
        plot.setData([data.x.map((t) => t / 1000), ...order.map((i) => ys[i] ?? [])]);
        return;
      }
      plot?.destroy();
      host.replaceChildren();
      shape = next;
      plot = timeChart(host, data, chart);
    },
    destroy() {
      resize.disconnect();
      plot?.destroy();
    },
  };
}
