/**
 * `torchts-train train`: checks the flags, trains, and leaves a run folder
 * with the config, per-epoch metrics, checkpoints, charts and a summary.
 */
import * as fs from 'fs';
import * as path from 'path';
import { imageFolder } from '../data';
import type { AugmentOptions } from '../data/augment';
import { listImageFolder } from '../data/folder';
import { DEFAULT_AUGMENT } from '../data/loader';
import { Learner } from '../learn';
import type { FitState } from '../learn/types';
import type { FitResult } from '../learn/options';
import { confusionMatrix } from '../learn/metrics';
import { native } from '../native';
import { coreCount } from '../data/threads';
import type { DataLoaders } from '../data/types';
import { resolveGroup } from '../learn/distributed';
import { MetricsLog, writeJson, writeRunCharts, type EpochPoint, type ProgressStream, type StepRecord } from '../report';
import {
  UsageError,
  deviceName,
  existingFile,
  integerIn,
  oneOf,
  optionalAmount,
  parsePhases,
  positiveNumber,
  timestampedRunFolder,
  writableFolder,
  MAX_SIZE,
  MIN_SIZE,
  type PhaseSpec,
} from './args';
import { deviceLine, readRunConfig, resolveData, shortPath } from './common';
import { kebab } from './flags';
import { LAUNCH_FLAGS } from './launch';
import { FolderLockedError, LOCK_FILE, lockFolder, removeStaleTemporaries } from '../util/run-lock';
import { ReportCallback } from './report-callback';
import type { FlagsOf } from './flags';
import { AMP_CHOICES, AUGMENT_CHOICES, NORMALIZE_CHOICES, TRAIN_DEFAULTS, type AugmentFlag, type NormalizeFlag } from './train-defaults';

export { AMP_CHOICES, AUGMENT_CHOICES, NORMALIZE_CHOICES, TRAIN_DEFAULTS, type AugmentFlag, type NormalizeFlag };

/**
 * Training augmentation on the device. full: the article's aug_transforms
 * (flip, rotate, zoom, warp, lighting, crop scale >= 0.75); light: flip and a
 * small zoom only, which suits tiny images trained for a few epochs; none.
 */
export function augmentOptions(flag: AugmentFlag): AugmentOptions | false {
  if (flag === 'none') return false;
  if (flag === 'light') return { maxRotate: 0, maxWarp: 0, maxLighting: 0, minZoom: 1, maxZoom: 1.1 };
  return { ...DEFAULT_AUGMENT };
}

/** Everything a run needs, as written to config.json (and read back by --resume). */
export interface TrainConfig {
  command: 'train';
  data: string;
  dataName?: string;
  arch: string;
  epochs: number;
  lr: number;
  bs: number;
  size: number;
  /** Progressive resizing; when set, `epochs` and `size` are those of the phases. */
  phases: PhaseSpec[] | null;
  normalize: NormalizeFlag;
  augment: AugmentFlag;
  /** Keep decoded images on disk (TORCHTS_HOME/presized) so later epochs and runs skip decoding. */
  cache: boolean;
  mixup: number | null;
  cutmix: number | null;
  labelSmoothing: number | null;
  tta: boolean;
  pretrained: string | null;
  device: string;
  amp: (typeof AMP_CHOICES)[number];
  seed: number;
  workers: number | null;
  out: string;
}

/** The raw flags of `train` as yargs hands them over (declared in flags.ts). */
export type TrainFlags = FlagsOf<'train'>;

/** config.json keeps one field per train flag (but --resume and how the ranks were launched): a flag added to the table must be saved. */
type UnsavedTrainFlags = Exclude<keyof TrainFlags, keyof TrainConfig | 'resume' | (typeof LAUNCH_FLAGS)[number]>;
const everyTrainFlagSaved: UnsavedTrainFlags extends never ? true : UnsavedTrainFlags = true;
void everyTrainFlagSaved;

/** Checks every flag (nothing is created) and resolves the defaults. */
export async function trainConfigFrom(flags: TrainFlags): Promise<TrainConfig> {
  const phases = flags.phases === undefined ? null : parsePhases(String(flags.phases));
  if (phases && flags.size !== undefined) throw new UsageError('--size: not allowed with --phases (each phase gives its size)');
  if (phases && flags.epochs !== undefined) throw new UsageError('--epochs: not allowed with --phases (each phase gives its epochs)');
  const mixup = optionalAmount('mixup', flags.mixup, TRAIN_DEFAULTS.mixupAlpha) ?? null;
  const cutmix = optionalAmount('cutmix', flags.cutmix, TRAIN_DEFAULTS.cutmixAlpha) ?? null;
  if (mixup !== null && cutmix !== null) throw new UsageError('--cutmix: not allowed with --mixup (choose one)');
  const labelSmoothing = optionalAmount('label-smoothing', flags.labelSmoothing, TRAIN_DEFAULTS.labelSmoothing, 1, true) ?? null;
  const pretrained = flags.pretrained === undefined ? null : existingFile('pretrained', flags.pretrained);
  const normalize = flags.normalize === undefined ? (pretrained ? 'imagenet' : TRAIN_DEFAULTS.normalize) : oneOf('normalize', flags.normalize, NORMALIZE_CHOICES);
  const amp = flags.amp === undefined ? 'none' : flags.amp === '' || flags.amp === true ? 'fp16' : oneOf('amp', flags.amp, AMP_CHOICES);
  const arch = flags.arch === undefined ? (pretrained ? TRAIN_DEFAULTS.pretrainedArch : TRAIN_DEFAULTS.arch) : String(flags.arch);
  if (!/^[a-z0-9_]+$/i.test(arch)) throw new UsageError(`--arch: expected a model name such as xresnet18 or resnet34, got ${JSON.stringify(arch)}`);
  const bs = flags.bs === undefined ? TRAIN_DEFAULTS.bs : integerIn('bs', flags.bs, 1);
  const epochs = phases ? phases.reduce((s, p) => s + p.epochs, 0) : flags.epochs === undefined ? TRAIN_DEFAULTS.epochs : integerIn('epochs', flags.epochs, 1);
  const lr = flags.lr === undefined ? TRAIN_DEFAULTS.lr : positiveNumber('lr', flags.lr);
  const seed = flags.seed === undefined ? TRAIN_DEFAULTS.seed : integerIn('seed', flags.seed, 0, 2 ** 31 - 1);
  const workers = flags.workers === undefined ? null : integerIn('workers', flags.workers, 1, 1024);
  const device = flags.device === undefined ? TRAIN_DEFAULTS.device : deviceName(flags.device);
  const sizeFlag = flags.size === undefined ? undefined : integerIn('size', flags.size, MIN_SIZE, MAX_SIZE);
  const out = flags.out === undefined ? timestampedRunFolder() : writableFolder('out', flags.out);
  // The other ranks of a data-parallel run share rank 0's folder, which rank 0 may have started writing.
  const mainRank = (process.env.RANK ?? '0') === '0';
  if (mainRank && flags.out !== undefined && fs.existsSync(out) && fs.readdirSync(out).length > 0) {
    throw new UsageError(`--out: ${flags.out} is not empty; expected a new or empty folder`);
  }
  if (flags.out === undefined) writableFolder('out', path.dirname(out));
  // The data last: a named dataset may need a download, which is pointless when another flag is wrong.
  const source = await resolveData(flags.data);
  checkDataset(source.folder, seed);
  await checkArch(arch);
  const bundled = source.name?.startsWith('fashion-mnist') ?? false;
  const size = phases ? phases[phases.length - 1].size : (sizeFlag ?? (bundled ? TRAIN_DEFAULTS.size : TRAIN_DEFAULTS.otherSize));
  const augment = flags.augment === undefined ? (bundled ? TRAIN_DEFAULTS.augment : TRAIN_DEFAULTS.otherAugment) : oneOf('augment', flags.augment, AUGMENT_CHOICES);
  return {
    command: 'train',
    data: source.folder,
    ...(source.name ? { dataName: source.name } : {}),
    arch,
    epochs,
    lr,
    bs,
    size,
    phases,
    normalize,
    augment,
    cache: flags.cache === undefined ? bundled : Boolean(flags.cache),
    mixup,
    cutmix,
    labelSmoothing,
    tta: Boolean(flags.tta),
    pretrained,
    device,
    amp,
    seed,
    workers,
    out,
  };
}

/** The folder must list as an image dataset (class folders with images). */
export function checkDataset(folder: string, seed: number): void {
  try {
    listImageFolder(folder, { seed });
  } catch (err) {
    throw new UsageError(`--data: ${(err as Error).message.replace(/^image folder: /, '')}; expected an image folder (CLASS/IMAGE files, or train/ and val/ with class folders)`);
  }
}

/** The architecture must be one the native build has. */
export async function checkArch(arch: string): Promise<void> {
  const names = native().modelNames();
  if (!names.includes(arch)) throw new UsageError(`--arch: unknown model ${JSON.stringify(arch)}; expected one of ${names.join(', ')}`);
}

/** `--resume FILE`: the interrupted run's config (from the checkpoint's folder). */
export function resumeConfigFrom(flags: TrainFlags): { config: TrainConfig; checkpoint: string } {
  const checkpoint = existingFile('resume', flags.resume);
  const config = readRunConfig<TrainConfig>(path.dirname(checkpoint));
  if (!config || config.command !== 'train') {
    throw new UsageError(`--resume: ${flags.resume} has no config.json of a train run beside it; expected the checkpoint an interrupted run printed`);
  }
  if ([FILES.last, FILES.best].includes(path.basename(checkpoint) as typeof FILES.last)) {
    throw new UsageError(
      `--resume: ${flags.resume} is an exported model, not a resumable checkpoint; expected ${FILES.interrupted} (written on Ctrl-C) or ${FILES.autosave} (written after every epoch) from the same folder`,
    );
  }
  const allowed: readonly string[] = ['resume', 'device', 'workers', ...LAUNCH_FLAGS];
  const extra = Object.entries(flags).filter(([k, v]) => v !== undefined && !allowed.includes(k));
  if (extra.length) throw new UsageError(`--${kebab(extra[0][0])}: not allowed with --resume (the run continues with its saved config)`);
  // The run folder is where the checkpoint is now (it may have been moved or copied since).
  config.out = path.dirname(checkpoint);
  if (flags.device !== undefined) config.device = deviceName(flags.device);
  if (flags.workers !== undefined) config.workers = integerIn('workers', flags.workers, 1, 1024);
  return { config, checkpoint };
}

/** How a training run ended. */
export interface RunResult {
  interrupted: boolean;
  /** The checkpoint to resume from, when interrupted. */
  checkpoint?: string;
  accuracy: number;
  validLoss: number;
  ttaAccuracy?: number;
  /** Wall time of the fit, seconds. */
  seconds: number;
  out: string;
  files: string[];
}

export interface RunOptions {
  /** Continue the fit saved in this checkpoint. */
  resume?: string;
  /** Where bars, table and summary go. Default process.stdout. */
  stream?: ProgressStream;
  /** Progress bars. Default true. */
  progress?: boolean;
  /** Print the device line at start. Default true. */
  deviceLine?: boolean;
}

export const FILES = {
  config: 'config.json',
  last: 'last.tsl',
  best: 'best.tsl',
  interrupted: 'interrupted.tsl',
  /** A resumable checkpoint after every epoch: what `--resume` takes after a crash or kill -9. */
  autosave: 'checkpoint.tsl',
  results: 'results.json',
} as const;

/**
 * How a run's images become pixels (augmentation, presize). `evaluate` uses the
 * same, so its accuracy and its TTA views match the run's.
 */
export function pixelOptions(config: Pick<TrainConfig, 'augment' | 'dataName'>): { augment: AugmentOptions | false; presize?: (size: number) => number } {
  return {
    augment: augmentOptions(config.augment ?? 'full'),
    // The bundled images are 28 px: decoding them larger only to shrink them again costs time and sharpness.
    ...(config.dataName?.startsWith('fashion-mnist') ? { presize: (size: number) => Math.max(size, 28) } : {}),
  };
}

/** This process's place in a data-parallel run (torchrun's variables), or alone. */
interface RankInfo {
  rank: number;
  worldSize: number;
  main: boolean;
  /** The flags that started the ranks (set by the launcher), for the resume hint. */
  launchFlags?: string;
}

function rankInfo(env: NodeJS.ProcessEnv = process.env): RankInfo {
  const group = resolveGroup('env', env);
  const rank = group?.rank ?? 0;
  return { rank, worldSize: group?.worldSize ?? 1, main: rank === 0, launchFlags: env.TORCHTS_LAUNCHER };
}

/** Each rank of a run on CUDA takes its own GPU: cuda:LOCAL_RANK. */
function rankDevice(device: string, ranks: RankInfo, env: NodeJS.ProcessEnv = process.env): string {
  if (ranks.worldSize === 1 || !(device === 'cuda' || device === 'auto')) return device;
  if (device === 'auto' && !native().info().cudaAvailable) return device;
  return `cuda:${env.LOCAL_RANK ?? '0'}`;
}

/**
 * Trains as `config` says and writes the run folder. Stops cleanly on SIGINT (see
 * RunResult.interrupted). In a data-parallel run (WORLD_SIZE set, as `--nproc-per-node` or
 * torchrun start it) every rank trains its shard; rank 0 alone writes the folder and speaks.
 */
export async function runTraining(config: TrainConfig, options: RunOptions = {}): Promise<RunResult> {
  const stream = options.stream ?? process.stdout;
  const ranks = rankInfo();
  const say = (line = '') => {
    if (ranks.main) stream.write(line + '\n');
  };
  const device = rankDevice(config.device, ranks);
  if (ranks.worldSize > 1 && !process.env.TORCHTS_THREADS) {
    // torchrun starts every rank with all the cores: give each its share.
    native().setThreads(Math.max(1, Math.floor(coreCount() / Number(process.env.LOCAL_WORLD_SIZE ?? ranks.worldSize))));
  }

  // Rank 0 owns the folder; two runs into one folder are refused (the second to lock it stops).
  let unlock = () => {};
  if (ranks.main) {
    try {
      unlock = lockFolder(config.out);
    } catch (err) {
      if (err instanceof FolderLockedError) throw new UsageError(`--out: ${err.message}`);
      throw err;
    }
    // Checked again under the lock: a run that started and finished between our parse-time
    // check and the lock has filled the folder.
    if (!options.resume && fs.readdirSync(config.out).some((name) => name !== LOCK_FILE)) {
      unlock();
      throw new UsageError(`--out: ${config.out} is not empty; expected a new or empty folder`);
    }
    if (!options.resume) writeJson(path.join(config.out, FILES.config), config);
    // What a killed run left half-written (its processes are gone, the lock is ours).
    removeStaleTemporaries(config.out);
  }
  try {
    return await trainInFolder(config, options, { ranks, device, say, stream });
  } finally {
    unlock();
  }
}

interface RunContext {
  ranks: RankInfo;
  device: string;
  say: (line?: string) => void;
  stream: ProgressStream;
}

async function trainInFolder(config: TrainConfig, options: RunOptions, { ranks, device, say, stream }: RunContext): Promise<RunResult> {
  if (options.deviceLine ?? true) say(await deviceLine(device));
  const file = (name: string) => path.join(config.out, name);

  const data = await imageFolder(config.data, {
    seed: config.seed,
    normalize: config.normalize,
    ...pixelOptions(config),
    cache: config.cache ?? false,
    log: (line) => process.stderr.write(line + '\n'),
  });
  const previous = options.resume ? MetricsLog.read(config.out) : [];
  let learner: Learner | undefined;
  const report = ranks.main
    ? new ReportCallback({
        metrics: new MetricsLog(config.out, previous),
        stream,
        progress: options.progress,
        bestSoFar: Math.max(-Infinity, ...previous.map((r) => Number(r.accuracy)).filter(Number.isFinite)),
        onBest: async (state: FitState) => state.exportModel(file(FILES.best)),
      })
    : undefined;
  try {
    learner = new Learner({
      data,
      arch: config.arch,
      device,
      amp: config.amp,
      normalize: 'data',
      lossFn: config.labelSmoothing !== null ? { kind: 'labelSmoothing', eps: config.labelSmoothing } : 'crossEntropy',
      mix: config.mixup !== null ? { kind: 'mixup', alpha: config.mixup } : config.cutmix !== null ? { kind: 'cutmix', alpha: config.cutmix } : null,
      seed: config.seed,
      size: config.phases ? config.phases[0].size : config.size,
      bs: config.phases?.[0].bs ?? config.bs,
      callbacks: report ? [report] : [],
      distributed: 'env',
      autosave: file(FILES.autosave),
    });
    const parallel = ranks.worldSize > 1 ? ` | ${ranks.worldSize} data-parallel ranks, bs ${config.bs} each` : '';
    say(`data: ${config.dataName ?? shortPath(config.data)} | ${data.classes.length} classes | ${data.trainItems.length} train, ${data.validItems.length} valid images | ${config.arch} | ${describeSchedule(config)}${parallel}`);
    const started = performance.now();
    const result = await withSigint(learner, file(FILES.interrupted), () => fitAsConfigured(learner!, config, options.resume));
    const seconds = (performance.now() - started) / 1000;
    if (result.stopped && result.checkpoint) {
      const resumeFlags = ranks.launchFlags ? `${ranks.launchFlags} ` : '';
      say(`interrupted: ${result.stopped}; checkpoint written to ${shortPath(result.checkpoint)}`);
      say(`resume with: npx torchts-train ${resumeFlags}--resume ${shortPath(result.checkpoint)}`);
      return { interrupted: true, checkpoint: result.checkpoint, accuracy: NaN, validLoss: NaN, seconds, out: config.out, files: [] };
    }
    if (ranks.main) await learner.export(file(FILES.last));
    // Every rank evaluates its shard; the sums make the whole set's numbers.
    const valid = await learner.validate({ probs: true });
    const shardConfusion = confusionMatrix(valid.probs!, valid.targets, data.classes.length);
    const summed = await learner.allReduce(shardConfusion.flat());
    const confusion = shardConfusion.map((row, i) => row.map((_, j) => summed[i * row.length + j]));
    const perClass = Object.fromEntries(data.classes.map((c, i) => [c, confusion[i][i] / Math.max(1, confusion[i].reduce((s, v) => s + v, 0))]));
    const tta = config.tta ? await learner.tta() : undefined;
    const accuracy = valid.metrics.accuracy;
    if (!ranks.main) return { interrupted: false, accuracy, validLoss: valid.loss, ttaAccuracy: tta?.accuracy, seconds, out: config.out, files: [] };
    const charts = await writeRunCharts(config.out, { ...chartData(learner, data, ranks), classes: data.classes, confusion });
    writeJson(file(FILES.results), {
      accuracy,
      validLoss: valid.loss,
      ...(tta ? { ttaAccuracy: tta.accuracy } : {}),
      perClassAccuracy: perClass,
      classes: data.classes,
      confusion,
      seconds: Number(seconds.toFixed(3)),
      ...(ranks.worldSize > 1 ? { worldSize: ranks.worldSize } : {}),
    });
    // Only now that the final model and results are on disk are the resume points no longer needed.
    if (options.resume) fs.rmSync(options.resume, { force: true });
    fs.rmSync(file(FILES.autosave), { force: true });
    const files = [FILES.config, 'metrics.csv', 'metrics.json', FILES.last, FILES.best, FILES.results, ...charts.map((c) => path.basename(c))];
    say('');
    say(`accuracy ${accuracy.toFixed(4)}${tta ? ` | with TTA ${tta.accuracy.toFixed(4)}` : ''} | valid loss ${valid.loss.toFixed(4)} | ${seconds.toFixed(1)} s`);
    say(`run folder: ${shortPath(config.out)}`);
    say(`  config.json, metrics.csv, metrics.json, results.json`);
    say(`  checkpoints: last.tsl (final weights), best.tsl (best accuracy)`);
    say(`  charts (svg + png): loss, schedule, accuracy, confusion`);
    say(`predict with: npx torchts-train predict --model ${shortPath(file(FILES.last))} IMAGE...`);
    return { interrupted: false, accuracy, validLoss: valid.loss, ttaAccuracy: tta?.accuracy, seconds, out: config.out, files };
  } finally {
    learner?.dispose();
    await data.close();
  }
}

function describeSchedule(config: TrainConfig): string {
  const phases = config.phases
    ? `phases ${config.phases.map((p) => `${p.size}px x${p.epochs}${p.bs ? ` bs ${p.bs}` : ''}`).join(', ')}`
    : `${config.epochs} epoch${config.epochs === 1 ? '' : 's'} at ${config.size} px`;
  const extras = [
    config.pretrained ? `fine-tuning ${path.basename(config.pretrained)}` : 'one-cycle',
    `lr ${config.lr}`,
    `bs ${config.bs}`,
    `normalize ${config.normalize}`,
    `augment ${config.augment}`,
    config.mixup !== null ? `mixup ${config.mixup}` : '',
    config.cutmix !== null ? `cutmix ${config.cutmix}` : '',
    config.labelSmoothing !== null ? `label smoothing ${config.labelSmoothing}` : '',
  ];
  return [phases, ...extras].filter(Boolean).join(', ');
}

async function fitAsConfigured(learner: Learner, config: TrainConfig, resume?: string): Promise<FitResult> {
  if (resume) return learner.resume(resume);
  if (config.pretrained) {
    const report = await learner.model.loadTorchvision(config.pretrained, { skipHead: true }).catch((err: unknown) => {
      throw new UsageError(`--pretrained: ${(err as Error).message.replace(/^torchts: /, '')}`);
    });
    if (report.loaded.length === 0) throw new UsageError(`--pretrained: ${config.pretrained} holds no weights that fit ${config.arch}; expected torchvision ${config.arch} weights`);
  }
  if (config.phases) {
    const phases = config.phases.map((p, i) => ({ ...p, ...(config.pretrained && i === 0 ? { fineTune: true } : {}) }));
    return learner.fitPhases(phases, config.lr, config.pretrained ? { cycle: 'perPhase' } : {});
  }
  if (config.pretrained) return learner.fineTune(config.epochs, config.lr, { size: config.size, bs: config.bs });
  return learner.fitOneCycle(config.epochs, config.lr, { size: config.size, bs: config.bs });
}

/**
 * Runs `fit` with a SIGINT handler: the first Ctrl-C asks the learner to stop
 * after the current batch and save a resumable checkpoint; a second one exits
 * at once with code 130.
 */
async function withSigint<T>(learner: Learner, checkpoint: string, fit: () => Promise<T>): Promise<T> {
  let asked = false;
  const onSigint = () => {
    if (asked) process.exit(130);
    asked = true;
    // Before the fit starts (weights or a checkpoint still loading) there is nothing to save:
    // ignoring the signal would let the whole fit run.
    if (!learner.requestStop('interrupted by SIGINT', { checkpoint })) {
      process.stderr.write('\nSIGINT before training started: nothing to save\n');
      process.exit(130);
    }
    // Rank 0 speaks for a data-parallel run (the ranks stop together; it writes the checkpoint).
    if (learner.isMain) process.stderr.write('\nSIGINT: stopping after this batch and writing a checkpoint (Ctrl-C again to quit now)\n');
  };
  process.on('SIGINT', onSigint);
  try {
    return await fit();
  } finally {
    process.off('SIGINT', onSigint);
  }
}

/** Per-step and per-epoch series for the charts, from the learner's history. */
function chartData(learner: Learner, data: DataLoaders, ranks: RankInfo): { steps: StepRecord[]; epochs: EpochPoint[] } {
  const h = learner.history;
  const steps = h.smoothLosses.map((loss, i) => ({ iteration: i, loss, lr: h.lrs[i][h.lrs[i].length - 1], mom: h.moms[i] }));
  let iteration = 0;
  const epochs = h.records.map((r) => {
    iteration += data.train({ size: r.size, bs: r.bs }, 0, { rank: 0, worldSize: ranks.worldSize }).length;
    return { epoch: r.epoch, iteration, validLoss: r.validLoss, accuracy: r.metrics.accuracy ?? NaN };
  });
  return { steps, epochs };
}
