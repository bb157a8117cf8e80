/**
 * A minimal byte-progress bar for downloads, on stderr. On a TTY it redraws
 * one line; otherwise it prints a plain line at most every 10 % so logs stay
 * readable. Self-contained: training bars live in lib/report.
 */

export interface ByteProgressOptions {
  label: string;
  /** Total bytes, or 0 when unknown. */
  total: number;
  /** Where to write; default process.stderr. */
  stream?: NodeJS.WriteStream;
  /** Print nothing. */
  quiet?: boolean;
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}

export class ByteProgress {
  private done = 0;
  private lastDraw = 0;
  private lastDecile = -1;
  private readonly start = Date.now();
  private readonly stream: NodeJS.WriteStream;

  constructor(private readonly options: ByteProgressOptions) {
    this.stream = options.stream ?? process.stderr;
  }

  private get tty(): boolean {
    return Boolean(this.stream.isTTY);
  }

  /** Adds `bytes` received. */
  tick(bytes: number): void {
    this.done += bytes;
    if (this.options.quiet) return;
    const now = Date.now();
    if (this.tty) {
      if (now - this.lastDraw < 100) return;
      this.lastDraw = now;
      this.stream.write(`\r${this.line()}\x1b[K`);
    } else if (this.options.total > 0) {
      const decile = Math.floor((10 * this.done) / this.options.total);
      if (decile > this.lastDecile && decile < 10) {
        this.lastDecile = decile;
        this.stream.write(`${this.line()}\n`);
      }
    }
  }

  /** Final line. */
  finish(): void {
    if (this.options.quiet) return;
    this.stream.write(`${this.tty ? '\r' : ''}${this.line()}${this.tty ? '\x1b[K' : ''}\n`);
  }

  line(): string {
    const { label, total } = this.options;
    const secs = Math.max((Date.now() - this.start) / 1000, 1e-3);
    const rate = `${formatBytes(Math.round(this.done / secs))}/s`;
    if (total > 0) {
      const frac = Math.min(1, this.done / total);
      const width = 24;
      const filled = Math.round(frac * width);
      const bar = `${'#'.repeat(filled)}${'-'.repeat(width - filled)}`;
      return `${label} [${bar}] ${(frac * 100).toFixed(0).padStart(3)}% ${formatBytes(this.done)}/${formatBytes(total)} ${rate}`;
    }
    return `${label} ${formatBytes(this.done)} ${rate}`;
  }
}
