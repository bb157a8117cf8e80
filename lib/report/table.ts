/**
 * The epoch table printed during training, in the layout fastai users know:
 *
 *   epoch  train_loss  valid_loss  accuracy  time
 *   0      0.912345    0.734567    0.745000  00:12
 *
 * Every column is as wide as its header (or its widest value), numbers have
 * six decimals, time is mm:ss (h:mm:ss past an hour), whole seconds truncated.
 */

/** Seconds as mm:ss, or h:mm:ss from one hour on. */
export function formatDuration(seconds: number): string {
  const total = Math.max(0, Math.floor(seconds));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const mmss = `${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}`;
  return h ? `${h}:${mmss}` : mmss;
}

/** One table cell: numbers get six decimals, NaN/undefined print as "nan"/"". */
export function formatCell(value: number | string | undefined): string {
  if (value === undefined) return '';
  if (typeof value === 'string') return value;
  if (Number.isInteger(value)) return String(value);
  return Number.isFinite(value) ? value.toFixed(6) : 'nan';
}

export interface EpochTableOptions {
  /** Column names after "epoch", before "time", e.g. ["train_loss", "valid_loss", "accuracy"]. */
  columns: readonly string[];
  /** Where lines go. Default: console.log. */
  write?: (line: string) => void;
}

/** One row: the epoch number, the column values by name, and the epoch's duration in seconds. */
export interface EpochRow {
  epoch: number;
  values: Readonly<Record<string, number | string | undefined>>;
  seconds: number;
}

/** Prints the header once, then one aligned line per epoch. */
export class EpochTable {
  private readonly names: string[];
  private readonly write: (line: string) => void;
  private headerPrinted = false;

  constructor(options: EpochTableOptions) {
    this.names = ['epoch', ...options.columns, 'time'];
    this.write = options.write ?? ((line) => console.log(line));
  }

  /** The header line. */
  header(): string {
    return this.names.join('  ');
  }

  /** Formats one row against the header widths. */
  format(row: EpochRow): string {
    const cells = [String(row.epoch), ...this.names.slice(1, -1).map((n) => formatCell(row.values[n])), formatDuration(row.seconds)];
    return cells.map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(this.names[i].length))).join('  ');
  }

  /** Prints the header (first call only) and the row. */
  add(row: EpochRow): void {
    if (!this.headerPrinted) {
      this.write(this.header());
      this.headerPrinted = true;
    }
    this.write(this.format(row));
  }
}

/** A plain Markdown table (used for experiment comparisons). */
export function markdownTable(header: readonly string[], rows: ReadonlyArray<readonly (string | number)[]>): string {
  const text = rows.map((r) => r.map((c) => (typeof c === 'number' ? formatCell(c) : c)));
  const widths = header.map((h, i) => Math.max(h.length, 3, ...text.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  return [line(header), `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`, ...text.map(line)].join('\n') + '\n';
}

/** A fixed-width text table for the terminal (predict, evaluate, experiments). */
export function textTable(header: readonly string[], rows: ReadonlyArray<readonly (string | number)[]>): string {
  const text = rows.map((r) => r.map((c) => (typeof c === 'number' ? formatCell(c) : c)));
  const widths = header.map((h, i) => Math.max(h.length, ...text.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  return [line(header), ...text.map(line)].join('\n');
}
