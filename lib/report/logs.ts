/**
 * Files a run leaves behind: metrics.csv and metrics.json (one record per
 * epoch, rewritten after every epoch so an interrupted run still has them),
 * config.json (the full resolved configuration), and small helpers to write
 * text atomically (a temporary file, then a rename: a crash never leaves a
 * half-written file in place of a good one).
 */
import * as fs from 'fs';
import * as path from 'path';
import { writeFileAtomic } from '../util/files';

/** One epoch's record. `epoch` and `time` (seconds) always, then the metrics by name. */
export type MetricsRecord = { epoch: number; time: number } & Record<string, number | string>;

export { writeFileAtomic };

/** JSON with two-space indent and a final newline, written atomically. */
export function writeJson(file: string, value: unknown): void {
  writeFileAtomic(file, JSON.stringify(value, null, 2) + '\n');
}

/** One CSV field: quoted when it holds a comma, quote or line break. Numbers as JS prints them. */
export function csvField(value: unknown): string {
  const text = value === undefined || value === null ? '' : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** Rows of objects as CSV text with a header line; columns in first-seen order. */
export function toCsv(rows: ReadonlyArray<Readonly<Record<string, unknown>>>, columns?: readonly string[]): string {
  const names = columns ?? [...new Set(rows.flatMap((r) => Object.keys(r)))];
  return [names.map(csvField).join(','), ...rows.map((r) => names.map((n) => csvField(r[n])).join(','))].join('\n') + '\n';
}

/** Parses the CSV that toCsv writes (quoted fields included); numbers stay strings. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else if (c !== '\r') field += c;
  }
  if (field !== '' || row.length) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

/** The per-epoch metrics of a run, kept as metrics.csv and metrics.json in `dir`. */
export class MetricsLog {
  readonly csvFile: string;
  readonly jsonFile: string;
  private readonly rows: MetricsRecord[];

  /** `previous`: records already written by an interrupted run being resumed. */
  constructor(dir: string, previous: readonly MetricsRecord[] = []) {
    this.csvFile = path.join(dir, 'metrics.csv');
    this.jsonFile = path.join(dir, 'metrics.json');
    this.rows = [...previous];
  }

  /** Reads the records a previous run left in `dir` (empty when there are none). */
  static read(dir: string): MetricsRecord[] {
    const file = path.join(dir, 'metrics.json');
    if (!fs.existsSync(file)) return [];
    return JSON.parse(fs.readFileSync(file, 'utf8')) as MetricsRecord[];
  }

  get records(): readonly MetricsRecord[] {
    return this.rows;
  }

  /** Adds (or, for an epoch already there, replaces) one record and rewrites both files. */
  add(record: MetricsRecord): void {
    const at = this.rows.findIndex((r) => r.epoch === record.epoch);
    if (at >= 0) this.rows.splice(at, 1, record);
    else this.rows.push(record);
    this.flush();
  }

  /** Writes both files now. */
  flush(): void {
    writeFileAtomic(this.csvFile, toCsv(this.rows));
    writeJson(this.jsonFile, this.rows);
  }
}
