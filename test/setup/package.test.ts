/**
 * The npm package as users install it: the packed tarball with prebuilt binaries, installed into
 * a new project on a machine with no compiler, against Debian's libtorch 1.13 and pip torch 2.13
 * in a venv; with install scripts skipped; and against a libtorch no binary serves.
 */
import { strict as assert } from 'assert';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { approveInstallScript, newProject, noCompilerBin, packWithPrebuilds, ROOT, run, userEnv, venvBin } from '../helpers/torch-installs';

const HOME = process.env.TORCHTS_HOME ?? path.join(os.homedir(), '.cache', 'torchts');

/** A hash of everything that goes into a binary, so the built prebuilds are reused until it changes. */
function sourceHash(): string {
  const hash = crypto.createHash('sha256');
  const files = ['CMakeLists.txt', 'package.json', 'scripts/install.js', 'scripts/prebuild.js'];
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const rel = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(rel);
      else files.push(rel);
    }
  };
  walk('native');
  for (const file of files) hash.update(file).update(fs.readFileSync(path.join(ROOT, file)));
  return hash.digest('hex').slice(0, 16);
}

/** Prebuilds for Debian 1.13 and pip 2.13 CPU, built by `npm run prebuild` once per source hash. */
function prebuilds(): string {
  const out = path.join(HOME, 'test-prebuilds', sourceHash());
  const done = path.join(out, '.complete');
  if (!fs.existsSync(done)) {
    run(process.execPath, ['scripts/prebuild.js', '--torch', 'system', '--torch', path.join(venvBin('cpu'), 'python3'), '--out', out], {
      timeoutMs: 1_200_000,
    });
    fs.writeFileSync(done, '');
  }
  return out;
}

const PLATFORM = `${process.platform}-${process.arch}`;
const DEBIAN = 'torch1.13-cxx11-cpu';
const PIP = 'torch2.13-cxx11-cpu';

interface Installed {
  project: string;
  seconds: number;
  output: string;
}

/**
 * `npm install <tarball>` into `project`. npm 11 runs a dependency's install script only where the
 * project approves it (`npm install-scripts approve torchts`, which for a tarball writes its file:
 * spec), so the project approves it first, as a user who wants it run has; --ignore-scripts in
 * `extra` skips it on any npm.
 */
function install(tarball: string, project: string, env: NodeJS.ProcessEnv, extra: string[] = []): Installed {
  if (!extra.includes('--ignore-scripts')) approveInstallScript(project, tarball);
  const started = Date.now();
  const output = run('npm', ['install', tarball, '--no-audit', '--no-fund', '--foreground-scripts', ...extra], { cwd: project, env });
  return { project, seconds: (Date.now() - started) / 1000, output };
}

function info(project: string, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const script = "console.log(JSON.stringify(require('torchts').native().info()))";
  return JSON.parse(run(process.execPath, ['-e', script], { cwd: project, env }).trim().split('\n').pop()!);
}

/** One epoch of the default run on the bundled data, through the installed CLI. */
function trainOneEpoch(project: string, env: NodeJS.ProcessEnv): string {
  const out = path.join(project, 'run');
  const output = run(path.join(project, 'node_modules', '.bin', 'torchts-train'), ['--epochs', '1', '--out', out], { cwd: project, env });
  const metrics = fs.readFileSync(path.join(out, 'metrics.csv'), 'utf8').trim().split('\n');
  assert.equal(metrics.length, 2, `one epoch of metrics expected:\n${metrics.join('\n')}`);
  return output;
}

describe('the npm package with prebuilt binaries (no compiler)', function () {
  this.timeout(1_800_000);
  let tmp: string;
  let tarball: string;
  let noCompiler: string;
  let pipBin: string;

  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torchts-package-'));
    pipBin = venvBin('cpu');
    run('npx', ['tsc', '-p', 'tsconfig.json']);
    tarball = packWithPrebuilds(prebuilds(), tmp);
    noCompiler = noCompilerBin(tmp);
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('ships a binary per variant and the loader, and no libtorch', () => {
    const listing = run('tar', ['-tzf', tarball]).split('\n');
    for (const variant of [DEBIAN, PIP]) {
      assert.ok(listing.includes(`package/prebuilds/${PLATFORM}/${variant}/torchts.node`), `${variant} missing`);
      assert.ok(listing.includes(`package/prebuilds/${PLATFORM}/${variant}/manifest.json`));
    }
    assert.ok(listing.includes(`package/prebuilds/${PLATFORM}/torchts_preload.node`));
    assert.deepEqual(listing.filter((f) => /lib(torch|c10)[^/]*\.so/.test(f)), []);
  });

  it("installs against Debian's libtorch 1.13 without a compiler, and trains an epoch", () => {
    const env = userEnv([noCompiler]);
    const done = install(tarball, newProject(tmp, 'debian'), env);
    console.log(`      npm install with a matching prebuild: ${done.seconds.toFixed(1)} s`);
    assert.match(done.output, new RegExp(`using the prebuilt ${DEBIAN} binary with libtorch 1\\.13`));
    assert.ok(!fs.existsSync(path.join(done.project, 'node_modules', 'torchts', 'build')), 'no build/ folder expected');
    const got = info(done.project, env);
    assert.equal(got.binary, 'prebuilt');
    assert.equal(got.variant, DEBIAN);
    assert.equal(got.libtorchSource, 'system');
    assert.match(String(got.torchVersion), /^1\.13\./);
    trainOneEpoch(done.project, env);
  });

  it('installs against pip torch 2.13 in a venv without a compiler, and trains an epoch quietly', () => {
    const env = userEnv([noCompiler, pipBin]);
    const done = install(tarball, newProject(tmp, 'pip'), env);
    assert.match(done.output, new RegExp(`using the prebuilt ${PIP} binary with libtorch 2\\.13\\.0 \\(python torch`));
    assert.ok(!fs.existsSync(path.join(done.project, 'node_modules', 'torchts', 'build')));
    const got = info(done.project, env);
    assert.equal(got.variant, PIP);
    assert.equal(got.torchVersion, '2.13.0');
    assert.equal(got.libtorchSource, `python torch (${path.join(pipBin, 'python3')})`);
    assert.equal(got.cudaBuild, false);
    assert.equal(got.cxx11Abi, true);
    const output = trainOneEpoch(done.project, env);
    assert.doesNotMatch(output, /NNPACK/);
  });

  it('works with install scripts skipped (--ignore-scripts, unapproved under npm 11, pnpm): the binary is chosen on first require', () => {
    const env = userEnv([noCompiler, pipBin]);
    const done = install(tarball, newProject(tmp, 'ignore-scripts'), env, ['--ignore-scripts']);
    const pkg = path.join(done.project, 'node_modules', 'torchts');
    assert.ok(!fs.existsSync(path.join(pkg, 'torchts-binding.json')), 'install.js must not have run');
    assert.equal(info(done.project, env).variant, PIP);
    trainOneEpoch(done.project, env);
  });

  it('gives one clear error for a libtorch no shipped binary serves, when nothing can be built', () => {
    // A package whose only "2.13" binary is really 1.13's, relabelled: it must be refused, not loaded.
    const fake = path.join(tmp, 'fake-prebuilds');
    fs.cpSync(path.join(prebuilds(), PLATFORM), path.join(fake, PLATFORM), { recursive: true });
    fs.rmSync(path.join(fake, PLATFORM, PIP, 'torchts.node'));
    fs.copyFileSync(path.join(fake, PLATFORM, DEBIAN, 'torchts.node'), path.join(fake, PLATFORM, PIP, 'torchts.node'));
    const mislabelled = packWithPrebuilds(fake, fs.mkdtempSync(path.join(tmp, 'mislabelled-')));
    const env = userEnv([noCompiler, pipBin]);
    const project = newProject(tmp, 'mismatch');
    assert.throws(
      () => install(mislabelled, project, env),
      (err: Error) => {
        assert.match(err.message, /the prebuilt torch2\.13-cxx11-cpu binary does not load here/);
        assert.match(err.message, /no native addon for libtorch 2\.13\.0 \(torch2\.13-cxx11-cpu, python torch/);
        assert.match(err.message, /Prebuilt binaries in this package: torch1\.13-cxx11-cpu, torch2\.13-cxx11-cpu|Prebuilt binaries in this package: torch2\.13-cxx11-cpu, torch1\.13-cxx11-cpu/);
        assert.match(err.message, /a source build is not possible: cmake is not installed/);
        assert.match(err.message, /npm rebuild torchts/);
        assert.doesNotMatch(err.message, /Segmentation|SIGSEGV|core dumped/);
        return true;
      },
    );
    // Skipping scripts defers the same refusal to the first require, as an Error, not a crash.
    install(mislabelled, newProject(tmp, 'mismatch-ignore'), env, ['--ignore-scripts']);
    assert.throws(
      () => info(path.join(tmp, 'mismatch-ignore'), env),
      /could not be loaded|does not load|undefined symbol/,
    );
  });
});
