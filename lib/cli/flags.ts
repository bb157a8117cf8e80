/**
 * Every flag of torchts-train, declared once: its yargs type, its help text
 * and the default it shows. Each command lists the flags it takes; yargs'
 * options, the raw-flag types handed to the checkers (`FlagsOf`) and the pick
 * from yargs' argv all come from these lists. Defaults shown come from
 * lib/defaults.ts and `TRAIN_DEFAULTS`, never restated.
 */
import type { Argv } from 'yargs';
import { DATA_SEED, DISTRIBUTED_DEFAULTS, LABEL_SMOOTHING_EPS, LEARNER_DEFAULTS, LR_FIND_DEFAULTS, MIX_ALPHA, TTA_DEFAULTS } from '../defaults';
import { TRAIN_DEFAULTS } from './train-defaults';
import { ONNX_EXPORT_DEFAULTS, ONNX_OPSETS } from '../export/onnx';

interface FlagSpec {
  type: 'string' | 'boolean';
  describe: string;
  defaultDescription?: string;
  /** The message when a required flag is missing. */
  demandOption?: string;
}

/** Every flag, by its camelCase name (the kebab-case spelling is the command-line one). */
export const FLAGS = {
  data: { type: 'string', describe: 'image folder (CLASS/IMAGE, or train/ + val/), or a dataset name such as imagenette2-160', defaultDescription: 'bundled Fashion-MNIST subset' },
  arch: { type: 'string', describe: 'model: xresnet18/34/50, resnet18/34/50', defaultDescription: `${TRAIN_DEFAULTS.arch} (${TRAIN_DEFAULTS.pretrainedArch} with --pretrained)` },
  bs: { type: 'string', describe: 'batch size', defaultDescription: String(TRAIN_DEFAULTS.bs) },
  size: { type: 'string', describe: 'image size in pixels (square)', defaultDescription: `${TRAIN_DEFAULTS.size} for the bundled data, else ${TRAIN_DEFAULTS.otherSize}` },
  normalize: { type: 'string', describe: 'input normalisation: imagenet | dataset | none', defaultDescription: `${TRAIN_DEFAULTS.normalize} (imagenet with --pretrained)` },
  seed: { type: 'string', describe: 'random seed (split, shuffles, augmentation, weights)', defaultDescription: String(DATA_SEED) },
  device: { type: 'string', describe: 'auto | cpu | cuda | cuda:N', defaultDescription: LEARNER_DEFAULTS.device },
  workers: { type: 'string', describe: 'image decoding threads', defaultDescription: 'one per core (at least 4)' },
  out: { type: 'string', describe: 'run folder (new or empty)', defaultDescription: 'runs/<timestamp>' },
  epochs: { type: 'string', describe: 'epochs', defaultDescription: String(TRAIN_DEFAULTS.epochs) },
  lr: { type: 'string', describe: 'peak learning rate of the one-cycle schedule', defaultDescription: TRAIN_DEFAULTS.lr.toExponential() },
  phases: { type: 'string', describe: 'progressive resizing SIZE:EPOCHS[@BS],... e.g. 64:2,128:3@32 (one cycle spans all phases)' },
  mixup: { type: 'string', describe: 'mixup, optional alpha', defaultDescription: `off; bare flag: ${MIX_ALPHA.mixup}` },
  cutmix: { type: 'string', describe: 'CutMix, optional alpha', defaultDescription: `off; bare flag: ${MIX_ALPHA.cutmix.toFixed(1)}` },
  labelSmoothing: { type: 'string', describe: 'label-smoothing cross entropy, optional eps', defaultDescription: `off; bare flag: ${LABEL_SMOOTHING_EPS}` },
  augment: { type: 'string', describe: "training augmentation: full (the article's aug_transforms) | light (flip, zoom) | none", defaultDescription: `${TRAIN_DEFAULTS.augment} for the bundled data, else ${TRAIN_DEFAULTS.otherAugment}` },
  cache: { type: 'boolean', describe: 'keep decoded images on disk (TORCHTS_HOME/presized) for later epochs and runs; --no-cache to turn off', defaultDescription: 'on for the bundled data, else off' },
  tta: { type: 'boolean', describe: 'also report accuracy with test-time augmentation' },
  pretrained: { type: 'string', describe: 'torchvision weights (.pth state_dict) to fine-tune' },
  amp: { type: 'string', describe: 'mixed precision on CUDA: none | bf16 | fp16', defaultDescription: `${LEARNER_DEFAULTS.amp}; bare flag: fp16` },
  resume: { type: 'string', describe: 'continue an interrupted run from its checkpoint' },
  nprocPerNode: { type: 'string', describe: 'data-parallel: start N ranks on this machine (cores split between them); like torchrun', defaultDescription: '1 process' },
  nnodes: { type: 'string', describe: 'data-parallel: machines in the run (start the command on each)', defaultDescription: '1' },
  nodeRank: { type: 'string', describe: "data-parallel: this machine's index in [0, nnodes)", defaultDescription: '0' },
  masterAddr: { type: 'string', describe: 'data-parallel: address of node 0 (required with --nnodes > 1)', defaultDescription: DISTRIBUTED_DEFAULTS.masterAddr },
  masterPort: { type: 'string', describe: 'data-parallel: rendezvous port on node 0', defaultDescription: `a free port with one node, else ${DISTRIBUTED_DEFAULTS.masterPort}` },
  iface: { type: 'string', describe: 'data-parallel: network interface for Gloo (as GLOO_SOCKET_IFNAME)', defaultDescription: 'the one that routes to --master-addr' },
  distTimeout: { type: 'string', describe: 'data-parallel: seconds a rank waits for the others before the run ends naming the rank at fault', defaultDescription: String(DISTRIBUTED_DEFAULTS.timeout) },
  numIt: { type: 'string', describe: `steps of the sweep (lr from ${LR_FIND_DEFAULTS.startLr.toExponential()} to ${LR_FIND_DEFAULTS.endLr})`, defaultDescription: String(LR_FIND_DEFAULTS.numIt) },
  model: { type: 'string', describe: 'a run folder or its last.tsl / best.tsl', demandOption: 'give --model RUN_FOLDER or MODEL.tsl' },
  top: { type: 'string', describe: 'show the K most probable classes', defaultDescription: '1' },
  json: { type: 'boolean', describe: 'print JSON instead of a table' },
  format: { type: 'string', describe: 'onnx (onnxruntime: Node, browser, Python) | pth (a PyTorch state_dict)', defaultDescription: 'onnx' },
  opset: { type: 'string', describe: `ONNX operator set, ${ONNX_OPSETS.min}..${ONNX_OPSETS.max}`, defaultDescription: String(ONNX_EXPORT_DEFAULTS.opset) },
  input: { type: 'string', describe: 'ONNX input: uint8 ([N,H,W,3] RGB bytes) | float ([N,3,H,W])', defaultDescription: ONNX_EXPORT_DEFAULTS.input },
  normalization: { type: 'boolean', describe: 'the graph does x/255 and the mean/std normalisation itself; --no-normalization: a float input arrives normalised', defaultDescription: String(ONNX_EXPORT_DEFAULTS.includeNormalization) },
  probabilities: { type: 'boolean', describe: 'add a "probabilities" output (softmax) besides "logits"' },
  dynamicBatch: { type: 'boolean', describe: 'a symbolic batch dimension; --no-dynamic-batch fixes it to 1', defaultDescription: String(ONNX_EXPORT_DEFAULTS.dynamicBatch) },
} as const satisfies Record<string, FlagSpec>;

export type FlagName = keyof typeof FLAGS;

/** A flag a command takes, with the help text changed where the command means something narrower. */
type Use = FlagName | readonly [FlagName, Partial<FlagSpec>];

const DATA_FLAGS = ['data', 'arch', 'bs', 'size', 'normalize', 'seed', 'device', 'workers', 'out'] as const;

/** The flags of each command, in help order. */
export const COMMAND_FLAGS = {
  train: [
    ...DATA_FLAGS,
    'epochs',
    'lr',
    'phases',
    'mixup',
    'cutmix',
    'labelSmoothing',
    'augment',
    'cache',
    'tta',
    'pretrained',
    'amp',
    'resume',
    ...(['nprocPerNode', 'nnodes', 'nodeRank', 'masterAddr', 'masterPort', 'iface', 'distTimeout'] as const),
  ],
  predict: [
    'model',
    ['tta', { describe: `average ${TTA_DEFAULTS.n} augmented views with the plain one` }],
    'top',
    'json',
    'device',
    ['seed', { describe: 'seed of the TTA views', defaultDescription: '0' }],
  ],
  evaluate: [
    'model',
    ['data', { describe: 'image folder or dataset name', defaultDescription: 'the data the model was trained on' }],
    ['tta', { describe: 'also evaluate with test-time augmentation' }],
    'bs',
    'device',
    ['out', { describe: 'write evaluation.json and confusion.svg/png here', defaultDescription: undefined }],
    ['json', { describe: 'print JSON instead of tables' }],
  ],
  export: [
    'model',
    'format',
    ['out', { describe: 'the file to write', defaultDescription: 'beside the model: RUN/last.onnx or RUN/last.pth' }],
    'opset',
    'input',
    'normalization',
    'probabilities',
    'dynamicBatch',
    ['size', { describe: 'ONNX input height and width: N px | training | dynamic', defaultDescription: 'training (the size it was trained at last)' }],
  ],
  lrFind: [...DATA_FLAGS, 'numIt'],
  experiments: [
    ...DATA_FLAGS,
    ['epochs', { describe: 'epochs of every run' }],
    ['lr', { describe: 'peak learning rate' }],
    ['phases', { describe: 'progressive resizing of the progressive runs', defaultDescription: 'half the epochs at half the size' }],
    ['augment', { describe: 'training augmentation: full | light | none' }],
  ],
} as const satisfies Record<string, readonly Use[]>;

type NameOf<U> = U extends readonly [infer N, unknown] ? N : U;

/** The raw values of a command's flags as yargs hands them over (undefined when absent). */
export type FlagsOf<C extends keyof typeof COMMAND_FLAGS> = { [K in NameOf<(typeof COMMAND_FLAGS)[C][number]> & string]?: unknown };

function nameOf(use: Use): FlagName {
  return typeof use === 'string' ? use : use[0];
}

/** The command-line spelling of a flag name. */
export function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** Declares a command's flags on a yargs builder. */
export function declareFlags<T>(y: Argv<T>, command: keyof typeof COMMAND_FLAGS): Argv<T> {
  let out = y;
  for (const use of COMMAND_FLAGS[command] as readonly Use[]) {
    const spec: FlagSpec = { ...FLAGS[nameOf(use)], ...(typeof use === 'string' ? {} : use[1]) };
    out = out.option(kebab(nameOf(use)), spec);
  }
  return out;
}

/** A command's flags out of yargs' argv (dropping its aliases and positionals), by camelCase name. */
export function pickFlags<C extends keyof typeof COMMAND_FLAGS>(argv: Record<string, unknown>, command: C): FlagsOf<C> {
  const out: Record<string, unknown> = {};
  for (const use of COMMAND_FLAGS[command] as readonly Use[]) {
    const name = nameOf(use);
    if (argv[kebab(name)] !== undefined) out[name] = argv[kebab(name)];
  }
  return out as FlagsOf<C>;
}
