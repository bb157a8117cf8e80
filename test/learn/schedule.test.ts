import { strict as assert } from 'assert';
import { execFileSync } from 'child_process';
import {
  cosineSegment,
  evenMultiples,
  fineTuneStages,
  groupLrs,
  oneCycleLr,
  oneCycleMom,
  OneCycleSchedule,
  scheduleFromJSON,
} from '../../lib/learn';

const close = (a: number, b: number, rel = 1e-9) =>
  assert.ok(Math.abs(a - b) <= rel * Math.max(Math.abs(a), Math.abs(b), 1e-30), `${a} != ${b}`);

describe('learn/schedule: one-cycle', () => {
  it('cosine segment runs from start to end through the midpoint', () => {
    close(cosineSegment(1, 3, 0), 1);
    close(cosineSegment(1, 3, 0.5), 2);
    close(cosineSegment(1, 3, 1), 3);
  });

  it('matches the reference formulas at the first step, the warm-up peak and the last step', () => {
    const lrMax = 3e-3;
    const total = 400; // pctStart 0.25 -> the peak is step 100
    const schedule = new OneCycleSchedule(total, [lrMax]);
    const first = schedule.at(0);
    close(first.lrs[0], lrMax / 25);
    close(first.mom, 0.95);
    const peak = schedule.at(100);
    close(peak.lrs[0], lrMax);
    close(peak.mom, 0.85);
    const last = schedule.at(total - 1);
    // p = 399/400, t = (p - 0.25)/0.75 in the second cosine segment.
    const t = (399 / 400 - 0.25) / 0.75;
    close(last.lrs[0], lrMax + ((1 + Math.cos(Math.PI * (1 - t))) * (lrMax / 1e5 - lrMax)) / 2);
    close(last.mom, 0.85 + ((1 + Math.cos(Math.PI * (1 - t))) * (0.95 - 0.85)) / 2);
    // Past the end the cycle reaches its final values.
    close(oneCycleLr(1, lrMax), lrMax / 1e5);
    close(oneCycleMom(1), 0.95);
  });

  it('warms up monotonically and anneals monotonically', () => {
    const s = new OneCycleSchedule(100, [1e-2]);
    for (let i = 1; i < 100; i++) {
      const [prev, cur] = [s.at(i - 1).lrs[0], s.at(i).lrs[0]];
      if (i <= 25) assert.ok(cur > prev, `step ${i} should warm up`);
      else assert.ok(cur < prev, `step ${i} should anneal`);
    }
  });

  it('scales every parameter group by its own peak and survives a JSON round trip', () => {
    const s = new OneCycleSchedule(50, [1e-4, 1e-3, 1e-2], { pctStart: 0.3, div: 5 });
    const again = scheduleFromJSON(JSON.parse(JSON.stringify(s.toJSON())));
    for (const step of [0, 7, 15, 49]) {
      const h = s.at(step);
      close(h.lrs[1] / h.lrs[0], 10);
      close(h.lrs[2] / h.lrs[1], 10);
      assert.deepEqual(again.at(step), h);
    }
  });

  it('agrees with torch.optim.lr_scheduler.OneCycleLR (cos, three_phase off) where both are defined alike', function () {
    // The reference puts step i at p = i/N and never reaches p = 1; torch puts the last of
    // T steps exactly on the final value. With T = N + 1 and torch's pct_start = (pct*N + 1)/(N + 1)
    // the two phase boundaries coincide, and so does every step 0..N-1. torch's final_div_factor
    // is relative to the initial lr, the reference's divFinal to lrMax: final_div = divFinal/div.
    this.timeout(60_000);
    const cases = [
      { n: 120, lrMax: 3e-3, pct: 0.25, div: 25, divFinal: 1e5 },
      { n: 37, lrMax: 1e-2, pct: 0.3, div: 5, divFinal: 1e5 },
    ];
    const script = `
import json, sys, torch
out = []
for c in json.loads(sys.argv[1]):
    n = c['n']
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([p], lr=c['lrMax'])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=c['lrMax'], total_steps=n + 1,
        pct_start=(c['pct'] * n + 1) / (n + 1), anneal_strategy='cos', cycle_momentum=True,
        base_momentum=0.85, max_momentum=0.95, div_factor=c['div'],
        final_div_factor=c['divFinal'] / c['div'], three_phase=False)
    lrs, moms = [], []
    for i in range(n):
        lrs.append(opt.param_groups[0]['lr']); moms.append(opt.param_groups[0]['betas'][0])
        opt.step(); sched.step()
    out.append({'lrs': lrs, 'moms': moms})
print(json.dumps(out))
`;
    const text = execFileSync('/usr/bin/python3', ['-c', script, JSON.stringify(cases)], { encoding: 'utf8' });
    const torch = JSON.parse(text) as { lrs: number[]; moms: number[] }[];
    cases.forEach((c, k) => {
      const ours = new OneCycleSchedule(c.n, [c.lrMax], { pctStart: c.pct, div: c.div, divFinal: c.divFinal });
      assert.equal(torch[k].lrs.length, c.n);
      for (let i = 0; i < c.n; i++) {
        const h = ours.at(i);
        close(h.lrs[0], torch[k].lrs[i], 1e-6);
        close(h.mom, torch[k].moms[i], 1e-6);
      }
    });
  });

  it('rejects nonsense options with a message naming the value', () => {
    assert.throws(() => new OneCycleSchedule(0, [1e-3]), /at least one training step/);
    assert.throws(() => oneCycleLr(0, 1e-3, { pctStart: 2 }), /pctStart/);
    assert.throws(() => groupLrs([1, 2], 3), /expected 3 learning rates/);
    assert.throws(() => groupLrs(-1, 3), /finite numbers >= 0/);
  });
});

describe('learn/schedule: discriminative lrs and fineTune', () => {
  it('spreads a { lo, hi } range geometrically and { hi } as hi/10 except the head', () => {
    const lrs = groupLrs({ lo: 1e-5, hi: 1e-3 }, 3);
    close(lrs[0], 1e-5);
    close(lrs[1], 1e-4);
    close(lrs[2], 1e-3);
    assert.deepEqual(groupLrs({ hi: 1e-2 }, 3), [1e-3, 1e-3, 1e-2]);
    assert.deepEqual(groupLrs(0.1, 3), [0.1, 0.1, 0.1]);
    assert.deepEqual(evenMultiples(2, 8, 3), [2, 4, 8]);
  });

  it('fineTune: one frozen epoch at pctStart 0.99, then half the lr unfrozen, pctStart 0.3, div 5', () => {
    const [frozen, unfrozen] = fineTuneStages(5, 2e-3, 3);
    assert.deepEqual(frozen, { epochs: 1, freezeTo: 2, lr: { hi: 2e-3 }, options: { pctStart: 0.99 } });
    assert.equal(unfrozen.epochs, 5);
    assert.equal(unfrozen.freezeTo, 0);
    assert.deepEqual(unfrozen.options, { pctStart: 0.3, div: 5 });
    const lrs = groupLrs(unfrozen.lr, 3);
    close(lrs[0], 1e-3 / 100);
    close(lrs[2], 1e-3);
    assert.equal(fineTuneStages(3, 1e-3, 3, { freezeEpochs: 0 }).length, 1);
  });
});
