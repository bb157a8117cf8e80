/**
 * The package surface as an installed package sees it: the `exports` map (through Node's package
 * self-reference, which resolves `torchts/...` by the map as an install does), the typed subpaths
 * (TypeScript with node16 resolution and with the older node10 one), and what `npm pack` ships.
 * The exact list of names is etc/torchts.api.md's business (api-report.test.ts).
 */
import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { buildDist, nodeIn, ROOT } from './dist';

const SUBPATHS = ['data', 'learn', 'report'] as const;

/** A few names each entry must have: what the READMEs show and the CLI's users reach for. */
const EXPECTED: Record<(typeof SUBPATHS)[number], string[]> = {
  data: ['imageFolder', 'untarData', 'fastaiDataset', 'FASTAI_DATASETS', 'configureProcess', 'Random', 'IMAGENET_STATS', 'DecodeError'],
  learn: ['Learner', 'Predictor', 'EarlyStopping', 'SaveBestModel', 'CsvLogger', 'accuracy', 'errorRate', 'topK'],
  report: ['ProgressBar', 'EpochTable', 'MetricsLog', 'writeRunCharts'],
};

/** Internals the old `export *` leaked; none may be reachable from any entry. */
const INTERNAL = ['escapeXml', 'matMul', 'referenceWarp', 'packageRoot', 'writeFileAtomic', 'parseCsv', 'sampleMixup', 'PresizeCache', 'sniffJpeg', 'announceDevice'];

interface Entry {
  file: string;
  names: string[];
}

/** Resolves and loads each specifier in a fresh node in the package root; a refusal is reported as its error code. */
function load(specifiers: readonly string[]): Record<string, Entry | { error: string }> {
  const script = `
    const out = {};
    for (const s of ${JSON.stringify(specifiers)}) {
      try { out[s] = { file: require.resolve(s), names: Object.keys(require(s)).sort() }; }
      catch (e) { out[s] = { error: e.code || e.message }; }
    }
    console.log(JSON.stringify(out));`;
  const child = nodeIn(script);
  assert.equal(child.status, 0, child.stderr);
  return JSON.parse(child.stdout.trim().split('\n').pop()!);
}

function entry(result: Entry | { error: string } | undefined, specifier: string): Entry {
  assert.ok(result && !('error' in result), `${specifier}: ${result && 'error' in result ? result.error : 'missing'}`);
  return result;
}

describe('the package surface: exports map, typed subpaths, published files', function () {
  this.timeout(180_000);

  before(() => buildDist());

  it("require('torchts') and its subpaths resolve to dist/ by the exports map and expose the public names", () => {
    const loaded = load(['torchts', ...SUBPATHS.map((s) => `torchts/${s}`), 'torchts/package.json']);
    const root = entry(loaded.torchts, 'torchts');
    assert.equal(root.file, path.join(ROOT, 'dist', 'lib', 'index.js'));
    const union = new Set<string>(['native']);
    for (const sub of SUBPATHS) {
      const got = entry(loaded[`torchts/${sub}`], `torchts/${sub}`);
      assert.equal(got.file, path.join(ROOT, 'dist', 'lib', 'public', `${sub}.js`));
      for (const name of EXPECTED[sub]) assert.ok(got.names.includes(name), `torchts/${sub} lacks ${name}`);
      for (const name of got.names) union.add(name);
    }
    // The root is exactly the subpaths together, plus native().
    assert.deepEqual(root.names, [...union].sort());
    for (const name of INTERNAL) assert.ok(!root.names.includes(name), `torchts exposes the internal ${name}`);
    assert.equal(entry(loaded['torchts/package.json'], 'torchts/package.json').file, path.join(ROOT, 'package.json'));
  });

  it('refuses every path the map does not list (ERR_PACKAGE_PATH_NOT_EXPORTED)', () => {
    const internal = ['torchts/lib/learn', 'torchts/lib/data', 'torchts/dist/lib/index.js', 'torchts/dist/lib/data/augment', 'torchts/dist/lib/native', 'torchts/scripts/install.js'];
    const loaded = load(internal);
    for (const specifier of internal) assert.deepEqual(loaded[specifier], { error: 'ERR_PACKAGE_PATH_NOT_EXPORTED' }, specifier);
  });

  it('types the root and each subpath for TypeScript users, with node16 and with node10 module resolution', function () {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torchts-consumer-'));
    try {
      fs.mkdirSync(path.join(tmp, 'node_modules'));
      fs.symlinkSync(ROOT, path.join(tmp, 'node_modules', 'torchts'), 'dir');
      fs.writeFileSync(path.join(tmp, 'package.json'), JSON.stringify({ name: 'consumer', private: true }));
      const uses = [
        "import { Learner, imageFolder, native, type FitState, type NativeInfo } from 'torchts';",
        "import { configureProcess, untarData, type DataLoaders, type ProcessOptions } from 'torchts/data';",
        "import { EarlyStopping, Predictor, topK, type Callback, type EpochRecord, type LearnerOptions } from 'torchts/learn';",
        "import { ProgressBar, writeRunCharts, type StepRecord } from 'torchts/report';",
        'export const values = [Learner, imageFolder, native, configureProcess, untarData, EarlyStopping, Predictor, topK, ProgressBar, writeRunCharts];',
        'export type Types = [FitState, NativeInfo, DataLoaders, ProcessOptions, Callback, EpochRecord, LearnerOptions, StepRecord];',
        'export const size: number = configureProcess({ threadPoolSize: 4 }).threadPoolSize;',
      ];
      // node16 reads the exports map, so a deep import is an error there (node10 ignores the map).
      const refused = ['// @ts-expect-error: not in the exports map', "import { matMul } from 'torchts/dist/lib/data/augment';", 'export const internal = matMul;'];
      fs.writeFileSync(path.join(tmp, 'node16.ts'), [...uses, ...refused].join('\n'));
      fs.writeFileSync(path.join(tmp, 'node10.ts'), uses.join('\n'));
      const tsc = require.resolve('typescript/bin/tsc');
      const common = ['--noEmit', '--strict', '--target', 'es2022', '--types', 'node', '--typeRoots', path.join(ROOT, 'node_modules', '@types')];
      for (const [file, resolution] of [['node16.ts', ['--module', 'node16', '--moduleResolution', 'node16']], ['node10.ts', ['--module', 'commonjs', '--moduleResolution', 'node10']]] as const) {
        const out = spawnSync(process.execPath, [tsc, ...common, ...resolution, file], { cwd: tmp, encoding: 'utf8' });
        assert.equal(out.status, 0, `tsc ${resolution.join(' ')} ${file}:\n${out.stdout}${out.stderr}`);
      }
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('packs no tests, and everything the entry points, the bin and the install scripts need', () => {
    const pack = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8', maxBuffer: 1 << 28 });
    assert.equal(pack.status, 0, pack.stderr);
    const files: string[] = (JSON.parse(pack.stdout) as { files: { path: string }[] }[])[0].files.map((f) => f.path);
    const tests = files.filter((f) => f.split('/').some((part) => part === 'test' || part === 'tests') || /\.(test|spec)\.[cm]?[jt]s$|\.(test|spec)\.d\.ts$/.test(f));
    assert.deepEqual(tests, [], 'test files in the tarball');
    assert.deepEqual(files.filter((f) => f.startsWith('dist/scripts/bench')), [], 'benchmarks in the tarball');
    const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
      exports: Record<string, string | { types: string; default: string }>;
      bin: Record<string, string>;
    };
    const needed = [
      ...Object.values(manifest.exports).flatMap((target) => (typeof target === 'string' ? [target] : [target.types, target.default])),
      ...Object.values(manifest.bin),
      'scripts/install.js',
      'scripts/find-libtorch.js',
      'scripts/binary.js',
      'scripts/setup-libtorch',
      'scripts/setup-libtorch.js',
      'CMakeLists.txt',
      'dist/lib/cli/main.js',
    ].map((f) => f.replace(/^\.\//, ''));
    for (const file of needed) assert.ok(files.includes(file), `${file} is not in the tarball`);
    assert.ok(files.some((f) => f.startsWith('native/') && f.endsWith('.cc')), 'no native sources for a source build');
  });
});
