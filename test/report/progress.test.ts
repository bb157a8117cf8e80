import { strict as assert } from 'assert';
import { ProgressBar } from '../../lib/report/progress';

function capture(isTTY: boolean) {
  const chunks: string[] = [];
  return { chunks, stream: { isTTY, columns: 200, write: (t: string) => chunks.push(t) } };
}

describe('report/progress', () => {
  it('prints a plain line at every tenth of the pass when not a terminal', () => {
    let now = 0;
    const out = capture(false);
    const bar = new ProgressBar({ total: 50, label: 'train', stream: out.stream, now: () => now });
    for (let i = 0; i < 50; i++) {
      now += 100;
      bar.tick({ items: 32, loss: 1 - i / 100 });
    }
    bar.done();
    assert.equal(out.chunks.length, 10);
    assert.ok(out.chunks.every((c) => c.endsWith('\n') && !c.includes('\r')));
    assert.equal(out.chunks[0].trim(), 'train  10% 5/50 320 img/s 00:00<00:04 loss 0.9600');
    assert.ok(out.chunks[9].startsWith('train 100% 50/50'));
  });

  it('also prints when the interval passes within a tenth', () => {
    let now = 0;
    const out = capture(false);
    const bar = new ProgressBar({ total: 1000, stream: out.stream, intervalMs: 1000, now: () => now });
    now += 1500;
    bar.tick();
    now += 500;
    bar.tick();
    assert.equal(out.chunks.length, 1);
  });

  it('redraws one line in place on a terminal and clears it when done', () => {
    let now = 0;
    const out = capture(true);
    const bar = new ProgressBar({ total: 4, label: 'valid', stream: out.stream, now: () => now });
    for (let i = 0; i < 4; i++) {
      now += 1000;
      bar.tick({ items: 10, loss: 0.5 });
    }
    bar.done();
    assert.ok(out.chunks.every((c) => c.startsWith('\r')));
    assert.ok(out.chunks[0].includes('valid  25% |██████░░░░░░░░░░░░░░░░░░| 1/4 10.0 img/s 00:01<00:03 loss 0.5000'));
    assert.equal(out.chunks[out.chunks.length - 1], '\r\x1b[2K');
  });

  it('rejects a negative total', () => {
    assert.throws(() => new ProgressBar({ total: -1 }), /non-negative integer/);
  });
});
