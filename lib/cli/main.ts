/**
 * torchts-train: the command line. yargs parses; lib/cli/* checks every value
 * before anything is created (a mistake is one line on stderr and exit code
 * 2), then runs the command.
 *
 * Exit codes: 0 done, 1 failed, 2 usage error, 130 interrupted (SIGINT; a
 * checkpoint to resume from was written).
 */
import yargs, { type Argv } from 'yargs';
import { LABEL_SMOOTHING_EPS, LR_FIND_DEFAULTS, MIX_ALPHA } from '../defaults';
import { configureProcess } from '../data/threads';
import { UsageError, integerIn } from './args';
import { trainConfigFrom, resumeConfigFrom, runTraining, TRAIN_DEFAULTS, type TrainFlags } from './train';
import { predictConfigFrom, runPredict, predictionTable } from './predict';
import { evaluateConfigFrom, runEvaluate, evaluationText } from './evaluate';
import { lrFindConfigFrom, runLrFind } from './lr-find';
import { runExperiments, progressivePhases } from './experiments';

export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;

const PROG = 'torchts-train';

/** Options shared by train, lr-find and experiments. */
function dataOptions<T>(y: Argv<T>) {
  return y
    .option('data', { type: 'string', describe: 'image folder (CLASS/IMAGE, or train/ + val/), or a dataset name such as imagenette2-160', defaultDescription: 'bundled Fashion-MNIST subset' })
    .option('arch', { type: 'string', describe: 'model: xresnet18/34/50, resnet18/34/50', defaultDescription: 'xresnet18 (resnet34 with --pretrained)' })
    .option('bs', { type: 'string', describe: 'batch size', defaultDescription: String(TRAIN_DEFAULTS.bs) })
    .option('size', { type: 'string', describe: 'image size in pixels (square)', defaultDescription: '28 for the bundled data, else 128' })
    .option('normalize', { type: 'string', describe: 'input normalisation: imagenet | dataset | none', defaultDescription: 'dataset (imagenet with --pretrained)' })
    .option('seed', { type: 'string', describe: 'random seed (split, shuffles, augmentation, weights)', defaultDescription: String(TRAIN_DEFAULTS.seed) })
    .option('device', { type: 'string', describe: 'auto | cpu | cuda | cuda:N', defaultDescription: TRAIN_DEFAULTS.device })
    .option('workers', { type: 'string', describe: 'image decoding threads', defaultDescription: 'one per core (at least 4)' })
    .option('out', { type: 'string', describe: 'run folder (new or empty)', defaultDescription: 'runs/<timestamp>' });
}

function trainOptions<T>(y: Argv<T>) {
  return dataOptions(y)
    .option('epochs', { type: 'string', describe: 'epochs', defaultDescription: String(TRAIN_DEFAULTS.epochs) })
    .option('lr', { type: 'string', describe: 'peak learning rate of the one-cycle schedule', defaultDescription: TRAIN_DEFAULTS.lr.toExponential() })
    .option('phases', { type: 'string', describe: 'progressive resizing SIZE:EPOCHS[@BS],... e.g. 64:2,128:3@32 (one cycle spans all phases)' })
    .option('mixup', { type: 'string', describe: 'mixup, optional alpha', defaultDescription: `off; bare flag: ${MIX_ALPHA.mixup}` })
    .option('cutmix', { type: 'string', describe: 'CutMix, optional alpha', defaultDescription: `off; bare flag: ${MIX_ALPHA.cutmix.toFixed(1)}` })
    .option('label-smoothing', { type: 'string', describe: 'label-smoothing cross entropy, optional eps', defaultDescription: `off; bare flag: ${LABEL_SMOOTHING_EPS}` })
    .option('augment', { type: 'string', describe: 'training augmentation: full (the article\'s aug_transforms) | light (flip, zoom) | none', defaultDescription: 'light for the bundled data, else full' })
    .option('cache', { type: 'boolean', describe: 'keep decoded images on disk (TORCHTS_HOME/presized) for later epochs and runs; --no-cache to turn off', defaultDescription: 'on for the bundled data, else off' })
    .option('tta', { type: 'boolean', describe: 'also report accuracy with test-time augmentation' })
    .option('pretrained', { type: 'string', describe: 'torchvision weights (.pth state_dict) to fine-tune' })
    .option('amp', { type: 'string', describe: 'mixed precision on CUDA: none | bf16 | fp16', defaultDescription: 'none; bare flag: fp16' })
    .option('resume', { type: 'string', describe: 'continue an interrupted run from its checkpoint' });
}

/** Pulls the flags we declared out of yargs' argv (dropping its aliases and positionals). */
function pick<T>(argv: Record<string, unknown>, names: readonly string[]): T {
  const out: Record<string, unknown> = {};
  for (const name of names) {
    const camel = name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    if (argv[name] !== undefined) out[camel] = argv[name];
  }
  return out as T;
}

const TRAIN_FLAGS = ['data', 'arch', 'epochs', 'lr', 'bs', 'size', 'phases', 'normalize', 'augment', 'cache', 'mixup', 'cutmix', 'label-smoothing', 'tta', 'pretrained', 'device', 'amp', 'seed', 'workers', 'out', 'resume'];

/**
 * The CLI opts in to torchts' decode settings (libuv's pool size, sharp's concurrency and cache)
 * before anything starts the pool (a download or the first decode would); the library alone changes none.
 */
function applyWorkers(workers: unknown): void {
  configureProcess(workers === undefined ? {} : { threadPoolSize: integerIn('workers', workers, 1, 1024) });
}

const say = (line = '') => process.stdout.write(line + '\n');

async function trainCommand(argv: Record<string, unknown>): Promise<number> {
  const flags = pick<TrainFlags>(argv, TRAIN_FLAGS);
  if (flags.resume !== undefined) {
    const { config, checkpoint } = resumeConfigFrom(flags);
    applyWorkers(config.workers ?? undefined);
    say(`resuming ${checkpoint}`);
    const result = await runTraining(config, { resume: checkpoint });
    return result.interrupted ? EXIT.interrupted : EXIT.ok;
  }
  applyWorkers(flags.workers);
  const config = await trainConfigFrom(flags);
  const result = await runTraining(config);
  return result.interrupted ? EXIT.interrupted : EXIT.ok;
}

async function predictCommand(argv: Record<string, unknown>): Promise<number> {
  applyWorkers(undefined);
  const config = predictConfigFrom(pick(argv, ['images', 'model', 'tta', 'top', 'json', 'device', 'seed']));
  const predictions = await runPredict(config);
  say(config.json ? JSON.stringify(predictions, null, 2) : predictionTable(predictions));
  return EXIT.ok;
}

async function evaluateCommand(argv: Record<string, unknown>): Promise<number> {
  applyWorkers(undefined);
  const config = await evaluateConfigFrom(pick(argv, ['model', 'data', 'tta', 'bs', 'device', 'out', 'json']));
  const result = await runEvaluate(config);
  say(config.json ? JSON.stringify(result, null, 2) : evaluationText(result));
  return EXIT.ok;
}

async function lrFindCommand(argv: Record<string, unknown>): Promise<number> {
  applyWorkers(argv.workers);
  const config = await lrFindConfigFrom(pick(argv, ['data', 'arch', 'bs', 'size', 'normalize', 'num-it', 'seed', 'device', 'out']));
  await runLrFind(config, say);
  return EXIT.ok;
}

async function experimentsCommand(argv: Record<string, unknown>): Promise<number> {
  applyWorkers(argv.workers);
  const base = await trainConfigFrom(pick(argv, ['data', 'arch', 'epochs', 'lr', 'bs', 'size', 'phases', 'augment', 'cache', 'seed', 'device', 'workers', 'out']));
  progressivePhases(base);
  const { interrupted } = await runExperiments(base, say);
  return interrupted ? EXIT.interrupted : EXIT.ok;
}

/** Builds the parser; `run` receives the chosen command's handler. */
export function parser(args: readonly string[], run: (handler: (argv: Record<string, unknown>) => Promise<number>, argv: Record<string, unknown>) => void): Argv {
  return yargs([...args])
    .scriptName(PROG)
    .usage(`${PROG} [command] [options]\n\nTrain image classifiers on libtorch from Node.js.`)
    .command(['train', '$0'], 'train a classifier (the default command)', (y) =>
      trainOptions(y)
        .example(`${PROG}`, 'train on the bundled Fashion-MNIST subset (about a minute on 2 cores)')
        .example(`${PROG} --data ~/imagenette2-160 --arch xresnet50 --epochs 5 --size 128`, 'the article baseline on Imagenette')
        .example(`${PROG} --data imagenette2-160 --phases 64:2,128:3@64 --mixup --label-smoothing --tta`, 'progressive resizing, mixup, label smoothing, TTA')
        .example(`${PROG} --data pets --pretrained resnet34.pth --epochs 3 --lr 2e-3`, 'fine-tune torchvision weights')
        .example(`${PROG} --resume runs/2026-12-01T10-00-00/interrupted.tsl`, 'continue an interrupted run'),
      (argv) => run(trainCommand, argv as Record<string, unknown>),
    )
    .command('predict <images..>', 'classify image files with a trained model', (y) =>
      y
        .positional('images', { type: 'string', describe: 'image files' })
        .option('model', { type: 'string', describe: 'a run folder or its last.tsl / best.tsl', demandOption: 'give --model RUN_FOLDER or MODEL.tsl' })
        .option('tta', { type: 'boolean', describe: 'average 4 augmented views with the plain one' })
        .option('top', { type: 'string', describe: 'show the K most probable classes', defaultDescription: '1' })
        .option('json', { type: 'boolean', describe: 'print JSON instead of a table' })
        .option('device', { type: 'string', describe: 'auto | cpu | cuda | cuda:N', defaultDescription: TRAIN_DEFAULTS.device })
        .option('seed', { type: 'string', describe: 'seed of the TTA views', defaultDescription: '0' })
        .example(`${PROG} predict --model runs/latest shoe.png bag.png`, 'one label per image')
        .example(`${PROG} predict --model runs/latest/best.tsl --top 3 --tta --json *.png`, 'top 3 with TTA, as JSON'),
      (argv) => run(predictCommand, argv as Record<string, unknown>),
    )
    .command('evaluate', "accuracy, per-class accuracy and confusion matrix on a dataset's validation split", (y) =>
      y
        .option('model', { type: 'string', describe: 'a run folder or its last.tsl / best.tsl', demandOption: 'give --model RUN_FOLDER or MODEL.tsl' })
        .option('data', { type: 'string', describe: 'image folder or dataset name', defaultDescription: 'the data the model was trained on' })
        .option('tta', { type: 'boolean', describe: 'also evaluate with test-time augmentation' })
        .option('bs', { type: 'string', describe: 'batch size', defaultDescription: String(TRAIN_DEFAULTS.bs) })
        .option('device', { type: 'string', describe: 'auto | cpu | cuda | cuda:N', defaultDescription: TRAIN_DEFAULTS.device })
        .option('out', { type: 'string', describe: 'write evaluation.json and confusion.svg/png here' })
        .option('json', { type: 'boolean', describe: 'print JSON instead of tables' })
        .example(`${PROG} evaluate --model runs/latest --tta`, 'with and without TTA')
        .example(`${PROG} evaluate --model runs/latest/best.tsl --data ~/my-test-set --out eval`, 'another dataset, with charts'),
      (argv) => run(evaluateCommand, argv as Record<string, unknown>),
    )
    .command('lr-find', 'the learning-rate finder: prints a suggestion and writes the plot', (y) =>
      dataOptions(y)
        .option('num-it', { type: 'string', describe: `steps of the sweep (lr from ${LR_FIND_DEFAULTS.startLr.toExponential()} to ${LR_FIND_DEFAULTS.endLr})`, defaultDescription: String(LR_FIND_DEFAULTS.numIt) })
        .example(`${PROG} lr-find`, 'on the bundled data')
        .example(`${PROG} lr-find --data imagenette2-160 --arch xresnet50 --size 128 --out lr`, 'writes lr/lr-find.svg, .png, .csv'),
      (argv) => run(lrFindCommand, argv as Record<string, unknown>),
    )
    .command('experiments', "the article's ablation: baseline, +normalisation, +progressive resizing, +TTA, +mixup, +label smoothing", (y) =>
      dataOptions(y)
        .option('epochs', { type: 'string', describe: 'epochs of every run', defaultDescription: String(TRAIN_DEFAULTS.epochs) })
        .option('lr', { type: 'string', describe: 'peak learning rate', defaultDescription: TRAIN_DEFAULTS.lr.toExponential() })
        .option('phases', { type: 'string', describe: 'progressive resizing of the progressive runs', defaultDescription: 'half the epochs at half the size' })
        .option('augment', { type: 'string', describe: 'training augmentation: full | light | none', defaultDescription: 'light for the bundled data, else full' })
        .example(`${PROG} experiments`, 'on the bundled data, 4 epochs per run')
        .example(`${PROG} experiments --data imagenette2-160 --arch xresnet50 --epochs 5 --size 128`, "the article's setting"),
      (argv) => run(experimentsCommand, argv as Record<string, unknown>),
    )
    .strict()
    .help()
    .alias('h', 'help')
    .version(false)
    .wrap(Math.min(110, process.stdout.columns || 100))
    .fail((message, error) => {
      throw error ?? new UsageError(rewordYargs(message, args));
    });
}

/** yargs' wording made into "flag: what was expected". */
export function rewordYargs(message: string, args: readonly string[] = []): string {
  const unknown = /^Unknown arguments?: (.*)$/.exec(message);
  if (unknown) {
    const first = unknown[1].split(', ')[0];
    if (args.includes(first)) return `${first}: unknown command; expected one of train, predict, evaluate, lr-find, experiments`;
    return `${first.length > 1 ? '--' : '-'}${first}: unknown option; run ${PROG} --help for the options`;
  }
  const missing = /^Missing required argument: (\w+)\n*(.*)$/s.exec(message);
  if (missing) return `--${missing[1]}: missing; ${missing[2] || 'it is required'}`;
  if (/Not enough non-option arguments/.test(message)) return `IMAGES: missing; expected at least one image file`;
  if (/Unknown command|Too many non-option/.test(message)) return `${message.split('\n')[0]}; expected one of train, predict, evaluate, lr-find, experiments`;
  return message.split('\n')[0];
}

/** Runs the CLI; resolves with the exit code. Usage errors are one line on stderr (exit 2). */
export async function main(args: readonly string[]): Promise<number> {
  let pending: Promise<number> | undefined;
  try {
    await parser(args, (handler, argv) => {
      pending = handler(argv);
    }).parseAsync();
    return pending ? await pending : EXIT.ok;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${PROG}: ${err.message}\n`);
      return EXIT.usage;
    }
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`${PROG}: error: ${message}\n`);
    if (process.env.TORCHTS_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    return EXIT.failed;
  }
}
