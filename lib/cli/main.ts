/**
 * torchts-train: the command line. yargs parses; lib/cli/* checks every value
 * before anything is created (a mistake is one line on stderr and exit code
 * 2), then runs the command.
 *
 * Exit codes: 0 done, 1 failed, 2 usage error, 130 interrupted (SIGINT; a
 * checkpoint to resume from was written).
 */
import yargs, { type Argv } from 'yargs';
import { configureProcess } from '../data/threads';
import { UsageError, integerIn } from './args';
import { trainConfigFrom, resumeConfigFrom, runTraining } from './train';
import { exitWithLauncher, launch, launchConfigFrom, withoutLaunchFlags } from './launch';
import { declareFlags, pickFlags } from './flags';
import { predictConfigFrom, runPredict, predictionTable } from './predict';
import { evaluateConfigFrom, runEvaluate, evaluationText } from './evaluate';
import { exportConfigFrom, runExport } from './export';
import { lrFindConfigFrom, runLrFind } from './lr-find';
import { runExperiments, progressivePhases } from './experiments';

export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;

const PROG = 'torchts-train';

/**
 * The CLI opts in to torchts' decode settings (libuv's pool size, sharp's concurrency and cache)
 * before anything starts the pool (a download or the first decode would); the library alone changes none.
 */
function applyWorkers(workers: unknown): void {
  configureProcess(workers === undefined ? {} : { threadPoolSize: integerIn('workers', workers, 1, 1024) });
}

const say = (line = '') => process.stdout.write(line + '\n');

/** The command line main() was given (the launcher passes it on to the ranks). */
let commandLine: readonly string[] = [];

async function trainCommand(argv: Record<string, unknown>): Promise<number> {
  const flags = pickFlags(argv, 'train');
  const launchConfig = launchConfigFrom(flags);
  if (launchConfig) {
    // Every flag is checked (and a named dataset fetched) once, here, before any rank starts;
    // the ranks share one run folder.
    const args = withoutLaunchFlags(commandLine);
    if (flags.resume === undefined) {
      const config = await trainConfigFrom(flags);
      if (flags.out === undefined) args.push('--out', config.out);
    } else {
      resumeConfigFrom(flags);
    }
    return launch(launchConfig, args);
  }
  exitWithLauncher();
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
  const config = predictConfigFrom({ ...pickFlags(argv, 'predict'), images: argv.images });
  const predictions = await runPredict(config);
  say(config.json ? JSON.stringify(predictions, null, 2) : predictionTable(predictions));
  return EXIT.ok;
}

async function evaluateCommand(argv: Record<string, unknown>): Promise<number> {
  applyWorkers(undefined);
  const config = await evaluateConfigFrom(pickFlags(argv, 'evaluate'));
  const result = await runEvaluate(config);
  say(config.json ? JSON.stringify(result, null, 2) : evaluationText(result));
  return EXIT.ok;
}

async function exportCommand(argv: Record<string, unknown>): Promise<number> {
  const config = exportConfigFrom(pickFlags(argv, 'export'));
  for (const line of await runExport(config)) say(line);
  return EXIT.ok;
}

async function lrFindCommand(argv: Record<string, unknown>): Promise<number> {
  applyWorkers(argv.workers);
  const config = await lrFindConfigFrom(pickFlags(argv, 'lrFind'));
  await runLrFind(config, say);
  return EXIT.ok;
}

async function experimentsCommand(argv: Record<string, unknown>): Promise<number> {
  applyWorkers(argv.workers);
  const base = await trainConfigFrom(pickFlags(argv, 'experiments'));
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
      declareFlags(y, 'train')
        .example(`${PROG}`, 'train on the bundled Fashion-MNIST subset (about a minute on 2 cores)')
        .example(`${PROG} --data ~/imagenette2-160 --arch xresnet50 --epochs 5 --size 128`, 'the article baseline on Imagenette')
        .example(`${PROG} --data imagenette2-160 --phases 64:2,128:3@64 --mixup --label-smoothing --tta`, 'progressive resizing, mixup, label smoothing, TTA')
        .example(`${PROG} --data pets --pretrained resnet34.pth --epochs 3 --lr 2e-3`, 'fine-tune torchvision weights')
        .example(`${PROG} --resume runs/2026-12-01T10-00-00/interrupted.tsl`, 'continue an interrupted run')
        .example(`${PROG} --nproc-per-node 2 --data imagenette2-160`, 'data-parallel: 2 processes on this machine')
        .example(`${PROG} --nnodes 2 --node-rank 0 --nproc-per-node 8 --master-addr 10.0.0.1`, 'the first of two 8-GPU machines'),
      (argv) => run(trainCommand, argv as Record<string, unknown>),
    )
    .command('predict <images..>', 'classify image files with a trained model', (y) =>
      declareFlags(y.positional('images', { type: 'string', describe: 'image files' }), 'predict')
        .example(`${PROG} predict --model runs/latest shoe.png bag.png`, 'one label per image')
        .example(`${PROG} predict --model runs/latest/best.tsl --top 3 --tta --json *.png`, 'top 3 with TTA, as JSON'),
      (argv) => run(predictCommand, argv as Record<string, unknown>),
    )
    .command('evaluate', "accuracy, per-class accuracy and confusion matrix on a dataset's validation split", (y) =>
      declareFlags(y, 'evaluate')
        .example(`${PROG} evaluate --model runs/latest --tta`, 'with and without TTA')
        .example(`${PROG} evaluate --model runs/latest/best.tsl --data ~/my-test-set --out eval`, 'another dataset, with charts'),
      (argv) => run(evaluateCommand, argv as Record<string, unknown>),
    )
    .command('export', 'the trained model for other runtimes: ONNX (onnxruntime in Node, the browser, Python) or a PyTorch state_dict', (y) =>
      declareFlags(y, 'export')
        .example(`${PROG} export --model runs/latest`, 'runs/latest/last.onnx: uint8 NHWC pixels in, logits out')
        .example(`${PROG} export --model runs/latest/best.tsl --probabilities --size 128 --out web/model.onnx`, 'for onnxruntime-web')
        .example(`${PROG} export --model runs/latest --format pth`, 'runs/latest/last.pth for torchvision (resnet) or fastai (xresnet)'),
      (argv) => run(exportCommand, argv as Record<string, unknown>),
    )
    .command('lr-find', 'the learning-rate finder: prints a suggestion and writes the plot', (y) =>
      declareFlags(y, 'lrFind')
        .example(`${PROG} lr-find`, 'on the bundled data')
        .example(`${PROG} lr-find --data imagenette2-160 --arch xresnet50 --size 128 --out lr`, 'writes lr/lr-find.svg, .png, .csv'),
      (argv) => run(lrFindCommand, argv as Record<string, unknown>),
    )
    .command('experiments', "the article's ablation: baseline, +normalisation, +progressive resizing, +TTA, +mixup, +label smoothing", (y) =>
      declareFlags(y, 'experiments')
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
    if (args.includes(first)) return `${first}: unknown command; expected one of train, predict, evaluate, export, lr-find, experiments`;
    return `${first.length > 1 ? '--' : '-'}${first}: unknown option; run ${PROG} --help for the options`;
  }
  const missing = /^Missing required argument: (\w+)\n*(.*)$/s.exec(message);
  if (missing) return `--${missing[1]}: missing; ${missing[2] || 'it is required'}`;
  if (/Not enough non-option arguments/.test(message)) return `IMAGES: missing; expected at least one image file`;
  if (/Unknown command|Too many non-option/.test(message)) return `${message.split('\n')[0]}; expected one of train, predict, evaluate, export, lr-find, experiments`;
  return message.split('\n')[0];
}

/** Runs the CLI; resolves with the exit code. Usage errors are one line on stderr (exit 2). */
export async function main(args: readonly string[]): Promise<number> {
  commandLine = args;
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
