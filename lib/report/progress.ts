/**
 * A progress bar for one pass over a data loader. On a terminal it redraws one
 * line in place; elsewhere (a log file, a CI job, a pipe) it prints a plain line
 * every tenth of the pass or every `intervalMs`, whichever comes first, so logs
 * stay readable.
 */
import { formatDuration } from './table';

/** Where the bar is written: process.stdout or anything with the same shape. */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  /** Steps in the pass (batches). */
  total: number;
  /** Shown before the bar, e.g. "train" or "valid". Default "". */
  label?: string;
  /** Default process.stdout. */
  stream?: ProgressStream;
  /** Force the terminal (true) or plain-line (false) style. Default: stream.isTTY. */
  tty?: boolean;
  /** Plain-line mode: the longest gap between two lines. Default 10 000 ms. */
  intervalMs?: number;
  /** Terminal mode: the shortest gap between two redraws. Default 100 ms. */
  redrawMs?: number;
  /** Clock in milliseconds (tests pass their own). Default Date.now. */
  now?: () => number;
}

/** What the caller knows after a step. */
export interface ProgressUpdate {
  /** Images processed in this step (for img/s). */
  items?: number;
  /** Running (smoothed) loss. */
  loss?: number;
}

const BAR_WIDTH = 24;

export class ProgressBar {
  private readonly total: number;
  private readonly label: string;
  private readonly stream: ProgressStream;
  private readonly tty: boolean;
  private readonly intervalMs: number;
  private readonly redrawMs: number;
  private readonly now: () => number;
  private readonly start: number;
  private step = 0;
  private items = 0;
  private loss: number | undefined;
  private lastDraw = -Infinity;
  private lastDecile = 0;
  private finished = false;

  constructor(options: ProgressOptions) {
    if (!Number.isInteger(options.total) || options.total < 0) throw new RangeError(`progress total must be a non-negative integer, got ${options.total}`);
    this.total = options.total;
    this.label = options.label ?? '';
    this.stream = options.stream ?? process.stdout;
    this.tty = options.tty ?? Boolean(this.stream.isTTY);
    this.intervalMs = options.intervalMs ?? 10_000;
    this.redrawMs = options.redrawMs ?? 100;
    this.now = options.now ?? Date.now;
    this.start = this.now();
    if (!this.tty) this.lastDraw = this.start;
  }

  /** Records one finished step (or `steps` of them) and redraws when due. */
  tick(update: ProgressUpdate = {}, steps = 1): void {
    if (this.finished) return;
    this.step = Math.min(this.total, this.step + steps);
    this.items += update.items ?? 0;
    if (update.loss !== undefined && Number.isFinite(update.loss)) this.loss = update.loss;
    const t = this.now();
    if (this.tty) {
      if (t - this.lastDraw >= this.redrawMs || this.step === this.total) this.drawInPlace(t);
      return;
    }
    const decile = this.total ? Math.floor((this.step * 10) / this.total) : 10;
    if (decile > this.lastDecile || t - this.lastDraw >= this.intervalMs) {
      this.lastDecile = decile;
      this.lastDraw = t;
      this.stream.write(this.line(t) + '\n');
    }
  }

  /** Ends the pass: on a terminal the bar line is cleared so the epoch table stays clean. */
  done(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.tty) this.stream.write('\r\x1b[2K');
  }

  /** The text of the bar at time `t` (without a line ending). */
  line(t = this.now()): string {
    const elapsed = (t - this.start) / 1000;
    const fraction = this.total ? this.step / this.total : 1;
    const remaining = this.step ? (elapsed / this.step) * (this.total - this.step) : NaN;
    const rate = elapsed > 0 ? this.items / elapsed : 0;
    const parts = [
      this.label,
      `${String(Math.floor(fraction * 100)).padStart(3)}%`,
      ...(this.tty ? [`|${bar(fraction)}|`] : []),
      `${this.step}/${this.total}`,
      ...(this.items ? [`${rate >= 100 ? rate.toFixed(0) : rate.toFixed(1)} img/s`] : []),
      `${formatDuration(elapsed)}<${Number.isFinite(remaining) ? formatDuration(remaining) : '--:--'}`,
      ...(this.loss !== undefined ? [`loss ${this.loss.toFixed(4)}`] : []),
    ];
    return parts.filter((p) => p !== '').join(' ');
  }

  private drawInPlace(t: number): void {
    this.lastDraw = t;
    let text = this.line(t);
    const columns = this.stream.columns;
    if (columns && text.length >= columns) text = text.slice(0, columns - 1);
    this.stream.write(`\r\x1b[2K${text}`);
  }
}

function bar(fraction: number): string {
  const filled = Math.round(Math.max(0, Math.min(1, fraction)) * BAR_WIDTH);
  return '█'.repeat(filled) + '░'.repeat(BAR_WIDTH - filled);
}
