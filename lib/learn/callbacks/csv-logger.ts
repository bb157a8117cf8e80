/** A CSV line per epoch. */
import * as fs from 'fs';
import * as path from 'path';
import { csvField } from '../../report/logs';
import type { Callback, FitControl } from '../types';

/** Appends one CSV line per epoch: epoch, phase, size, train_loss, valid_loss, metrics..., time (seconds). */
export class CsvLogger implements Callback {
  readonly name = 'CsvLogger';
  private wroteHeader = false;

  constructor(
    private readonly file: string,
    private readonly options: { /** Keep an existing file's lines. Default false. */ append?: boolean } = {},
  ) {}

  beforeFit(): void {
    fs.mkdirSync(path.dirname(path.resolve(this.file)), { recursive: true });
    this.wroteHeader = (this.options.append ?? false) && fs.existsSync(this.file);
    if (!this.wroteHeader) fs.writeFileSync(this.file, '');
  }

  async afterEpoch(control: FitControl): Promise<void> {
    const r = control.record;
    if (!r) return;
    const names = Object.keys(r.metrics);
    const line = (cells: unknown[]): string => cells.map(csvField).join(',') + '\n';
    let text = '';
    if (!this.wroteHeader) {
      text += line(['epoch', 'phase', 'size', 'train_loss', 'valid_loss', ...names, 'time']);
      this.wroteHeader = true;
    }
    text += line([r.epoch, r.phase, r.size, r.trainLoss, r.validLoss, ...names.map((n) => r.metrics[n]), r.seconds.toFixed(3)]);
    await fs.promises.appendFile(this.file, text);
  }
}
