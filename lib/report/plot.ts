/**
 * Small hand-written SVG charts (line, bar, heat map) and their PNG rendering
 * through sharp. No chart library: the charts a training run needs are few and
 * simple, and an SVG string is easy to test and to diff.
 */
import * as fs from 'fs';
import * as path from 'path';
import { loadSharp } from '../data/sharp';

/** One named line of (x, y) points. Non-finite y values leave a gap. */
export interface LineSeries {
  name: string;
  points: ReadonlyArray<readonly [number, number]>;
}

export interface ChartFrame {
  title: string;
  /** Pixel width of the whole picture. Default 640. */
  width?: number;
  /** Pixel height of the whole picture. Default 400. */
  height?: number;
}

export interface LineChartOptions extends ChartFrame {
  xLabel: string;
  yLabel: string;
  series: readonly LineSeries[];
  /** Logarithmic x axis (learning-rate finder). Default false. */
  logX?: boolean;
}

export interface BarChartOptions extends ChartFrame {
  yLabel: string;
  /** One bar (per series) for each category. */
  categories: readonly string[];
  series: ReadonlyArray<{ name: string; values: readonly number[] }>;
}

export interface HeatmapOptions extends ChartFrame {
  /** Row labels (actual classes) and column labels (predicted classes). */
  labels: readonly string[];
  /** labels.length x labels.length counts, rows = actual, columns = predicted. */
  matrix: ReadonlyArray<readonly number[]>;
  xLabel?: string;
  yLabel?: string;
}

const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f'];
const FONT = 'font-family="DejaVu Sans, Arial, Helvetica, sans-serif"';
const MARGIN = { left: 70, right: 20, top: 40, bottom: 55 };

/** Escapes text for use inside SVG elements and attributes. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** Round numbers (1, 2, 5 times a power of ten) covering [min, max], about `count` of them. */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [0, 1];
  if (min === max) {
    const pad = min === 0 ? 1 : Math.abs(min) * 0.1;
    min -= pad;
    max += pad;
  }
  const raw = (max - min) / Math.max(1, count);
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? 10 * power;
  const ticks: number[] = [];
  for (let v = Math.floor(min / step) * step; v <= max + step * 1e-9; v += step) ticks.push(roundTo(v, step));
  if (ticks[ticks.length - 1] < max) ticks.push(roundTo(ticks[ticks.length - 1] + step, step));
  return ticks;
}

/** Powers of ten covering [min, max] (both > 0). */
export function logTicks(min: number, max: number): number[] {
  const lo = Math.floor(Math.log10(min));
  const hi = Math.ceil(Math.log10(max));
  const ticks: number[] = [];
  for (let e = lo; e <= Math.max(hi, lo + 1); e++) ticks.push(Number(`1e${e}`));
  return ticks;
}

function roundTo(value: number, step: number): number {
  const digits = Math.max(0, -Math.floor(Math.log10(step)) + 1);
  return Number(value.toFixed(Math.min(digits, 15)));
}

/** Short tick text: 0.001 -> "1e-3", 12000 -> "1.2e4", 0.25 -> "0.25". */
export function formatTick(value: number): string {
  if (value === 0) return '0';
  const abs = Math.abs(value);
  if (abs >= 1e4 || abs < 1e-3) {
    const [mantissa, exp] = value.toExponential().split('e');
    return `${Number(Number(mantissa).toFixed(2))}e${Number(exp)}`;
  }
  return String(Number(value.toPrecision(4)));
}

interface Frame {
  width: number;
  height: number;
  plotW: number;
  plotH: number;
}

function frameOf(options: ChartFrame): Frame {
  const width = options.width ?? 640;
  const height = options.height ?? 400;
  return { width, height, plotW: width - MARGIN.left - MARGIN.right, plotH: height - MARGIN.top - MARGIN.bottom };
}

function open(frame: Frame, title: string): string[] {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${frame.width}" height="${frame.height}" viewBox="0 0 ${frame.width} ${frame.height}">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="${frame.width / 2}" y="24" text-anchor="middle" font-size="16" ${FONT}>${escapeXml(title)}</text>`,
  ];
}

function axisLabels(frame: Frame, xLabel: string, yLabel: string): string[] {
  const cy = MARGIN.top + frame.plotH / 2;
  return [
    `<text x="${MARGIN.left + frame.plotW / 2}" y="${frame.height - 12}" text-anchor="middle" font-size="13" ${FONT}>${escapeXml(xLabel)}</text>`,
    `<text x="16" y="${cy}" text-anchor="middle" font-size="13" ${FONT} transform="rotate(-90 16 ${cy})">${escapeXml(yLabel)}</text>`,
  ];
}

function legend(frame: Frame, names: readonly string[]): string[] {
  const out: string[] = [];
  names.forEach((name, i) => {
    const x = MARGIN.left + frame.plotW - 150;
    const y = MARGIN.top + 12 + i * 18;
    out.push(`<rect x="${x}" y="${y - 9}" width="14" height="10" fill="${PALETTE[i % PALETTE.length]}"/>`);
    out.push(`<text x="${x + 20}" y="${y}" font-size="12" ${FONT}>${escapeXml(name)}</text>`);
  });
  return out;
}

const fmt = (v: number): string => (Math.round(v * 100) / 100).toString();

/** A line chart with axes, ticks, grid, legend and title. */
export function lineChart(options: LineChartOptions): string {
  const frame = frameOf(options);
  const logX = options.logX ?? false;
  const all = options.series.flatMap((s) => s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!logX || x > 0)));
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]);
  const xTicks = logX && xs.length ? logTicks(Math.min(...xs), Math.max(...xs)) : niceTicks(xs.length ? Math.min(...xs) : 0, xs.length ? Math.max(...xs) : 1);
  const yTicks = niceTicks(ys.length ? Math.min(...ys) : 0, ys.length ? Math.max(...ys) : 1);
  const tx = logX ? Math.log10 : (v: number) => v;
  const [x0, x1] = [tx(xTicks[0]), tx(xTicks[xTicks.length - 1])];
  const [y0, y1] = [yTicks[0], yTicks[yTicks.length - 1]];
  const px = (x: number) => MARGIN.left + ((tx(x) - x0) / (x1 - x0 || 1)) * frame.plotW;
  const py = (y: number) => MARGIN.top + frame.plotH - ((y - y0) / (y1 - y0 || 1)) * frame.plotH;

  const out = open(frame, options.title);
  for (const t of yTicks) {
    out.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + frame.plotW}" y1="${fmt(py(t))}" y2="${fmt(py(t))}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${MARGIN.left - 6}" y="${fmt(py(t) + 4)}" text-anchor="end" font-size="11" ${FONT}>${formatTick(t)}</text>`);
  }
  for (const t of xTicks) {
    out.push(`<line x1="${fmt(px(t))}" x2="${fmt(px(t))}" y1="${MARGIN.top + frame.plotH}" y2="${MARGIN.top + frame.plotH + 5}" stroke="#333"/>`);
    out.push(`<text x="${fmt(px(t))}" y="${MARGIN.top + frame.plotH + 18}" text-anchor="middle" font-size="11" ${FONT}>${formatTick(t)}</text>`);
  }
  out.push(`<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${frame.plotW}" height="${frame.plotH}" fill="none" stroke="#333"/>`);
  options.series.forEach((series, i) => {
    const segments: string[][] = [[]];
    for (const [x, y] of series.points) {
      if (!Number.isFinite(x) || !Number.isFinite(y) || (logX && x <= 0)) {
        segments.push([]);
        continue;
      }
      segments[segments.length - 1].push(`${fmt(px(x))},${fmt(py(y))}`);
    }
    const colour = PALETTE[i % PALETTE.length];
    for (const seg of segments) {
      if (seg.length === 1) out.push(`<circle cx="${seg[0].split(',')[0]}" cy="${seg[0].split(',')[1]}" r="3" fill="${colour}"/>`);
      else if (seg.length > 1) out.push(`<polyline fill="none" stroke="${colour}" stroke-width="2" points="${seg.join(' ')}"/>`);
    }
  });
  out.push(...axisLabels(frame, options.xLabel, options.yLabel));
  if (options.series.length > 1) out.push(...legend(frame, options.series.map((s) => s.name)));
  out.push('</svg>');
  return out.join('\n');
}

/** Grouped vertical bars, one group per category, starting from zero. */
export function barChart(options: BarChartOptions): string {
  const frame = frameOf(options);
  const values = options.series.flatMap((s) => s.values.filter(Number.isFinite));
  const yTicks = niceTicks(Math.min(0, ...values), Math.max(0, ...values));
  const [y0, y1] = [yTicks[0], yTicks[yTicks.length - 1]];
  const py = (y: number) => MARGIN.top + frame.plotH - ((y - y0) / (y1 - y0 || 1)) * frame.plotH;
  const groupW = frame.plotW / Math.max(1, options.categories.length);
  const barW = (groupW * 0.8) / Math.max(1, options.series.length);

  const out = open(frame, options.title);
  for (const t of yTicks) {
    out.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + frame.plotW}" y1="${fmt(py(t))}" y2="${fmt(py(t))}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${MARGIN.left - 6}" y="${fmt(py(t) + 4)}" text-anchor="end" font-size="11" ${FONT}>${formatTick(t)}</text>`);
  }
  options.categories.forEach((category, c) => {
    const gx = MARGIN.left + c * groupW + groupW * 0.1;
    options.series.forEach((series, s) => {
      const v = series.values[c];
      if (!Number.isFinite(v)) return;
      const top = py(Math.max(v, 0));
      const h = Math.abs(py(v) - py(0));
      out.push(`<rect x="${fmt(gx + s * barW)}" y="${fmt(top)}" width="${fmt(barW)}" height="${fmt(h)}" fill="${PALETTE[s % PALETTE.length]}"><title>${escapeXml(`${category} ${series.name}: ${formatTick(v)}`)}</title></rect>`);
      out.push(`<text x="${fmt(gx + s * barW + barW / 2)}" y="${fmt(top - 4)}" text-anchor="middle" font-size="11" ${FONT}>${formatTick(v)}</text>`);
    });
    out.push(`<text x="${fmt(gx + groupW * 0.4)}" y="${MARGIN.top + frame.plotH + 16}" text-anchor="middle" font-size="11" ${FONT}>${escapeXml(category)}</text>`);
  });
  out.push(`<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${frame.plotW}" height="${frame.plotH}" fill="none" stroke="#333"/>`);
  out.push(...axisLabels(frame, '', options.yLabel));
  if (options.series.length > 1) out.push(...legend(frame, options.series.map((s) => s.name)));
  out.push('</svg>');
  return out.join('\n');
}

/** A heat map with the count in each cell (a confusion matrix). */
export function heatmap(options: HeatmapOptions): string {
  const n = options.labels.length;
  const labelSpace = 90;
  const side = Math.max(200, Math.min(700, n * 42));
  const width = options.width ?? side + labelSpace + 40;
  const height = options.height ?? side + labelSpace + 50;
  const cell = side / Math.max(1, n);
  const left = labelSpace + 20;
  const top = 40;
  const max = Math.max(1, ...options.matrix.flat());
  const out = open({ width, height, plotW: side, plotH: side }, options.title);
  options.matrix.forEach((row, r) =>
    row.forEach((count, c) => {
      const shade = count / max;
      const fill = `rgb(${Math.round(255 - shade * 225)},${Math.round(255 - shade * 170)},${Math.round(255 - shade * 75)})`;
      const x = left + c * cell;
      const y = top + r * cell;
      out.push(`<rect x="${fmt(x)}" y="${fmt(y)}" width="${fmt(cell)}" height="${fmt(cell)}" fill="${fill}" stroke="#ffffff"/>`);
      if (cell >= 14) {
        const ink = shade > 0.5 ? '#ffffff' : '#222222';
        out.push(`<text x="${fmt(x + cell / 2)}" y="${fmt(y + cell / 2 + 4)}" text-anchor="middle" font-size="${Math.min(12, cell / 2.5).toFixed(0)}" fill="${ink}" ${FONT}>${count}</text>`);
      }
    }),
  );
  options.labels.forEach((label, i) => {
    const mid = i * cell + cell / 2;
    out.push(`<text x="${left - 6}" y="${fmt(top + mid + 4)}" text-anchor="end" font-size="11" ${FONT}>${escapeXml(label)}</text>`);
    const lx = left + mid;
    const ly = top + side + 10;
    out.push(`<text x="${fmt(lx)}" y="${fmt(ly)}" text-anchor="end" font-size="11" ${FONT} transform="rotate(-45 ${fmt(lx)} ${fmt(ly)})">${escapeXml(label)}</text>`);
  });
  out.push(`<text x="${left + side / 2}" y="${height - 8}" text-anchor="middle" font-size="13" ${FONT}>${escapeXml(options.xLabel ?? 'predicted')}</text>`);
  out.push(`<text x="14" y="${top + side / 2}" text-anchor="middle" font-size="13" ${FONT} transform="rotate(-90 14 ${top + side / 2})">${escapeXml(options.yLabel ?? 'actual')}</text>`);
  out.push('</svg>');
  return out.join('\n');
}

/** Renders an SVG string to PNG bytes with sharp. */
export async function svgToPng(svg: string): Promise<Buffer> {
  return loadSharp()(Buffer.from(svg)).png().toBuffer();
}

/**
 * Writes `<base>.svg` and `<base>.png` side by side; resolves with both paths.
 * `base` is a path without extension.
 */
export async function writeChart(base: string, svg: string): Promise<{ svg: string; png: string }> {
  await fs.promises.mkdir(path.dirname(base), { recursive: true });
  const files = { svg: `${base}.svg`, png: `${base}.png` };
  await fs.promises.writeFile(files.svg, svg);
  await fs.promises.writeFile(files.png, await svgToPng(svg));
  return files;
}
