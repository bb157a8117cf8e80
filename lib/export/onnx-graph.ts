/**
 * The torchts networks as ONNX graphs. Each architecture is described once, as a plan of
 * conv + BatchNorm units and residual blocks named as the native models name their weights
 * (native/models/resnet.cc, xresnet.cc); both the weights an export needs and the graph's nodes
 * come from that plan, so the two cannot disagree. Inference uses BatchNorm's running
 * statistics, so each BatchNorm is folded into the conv before it and the graph is made of
 * Conv, Relu, MaxPool, AveragePool, Add, GlobalAveragePool, Flatten and Gemm, plus the input's
 * Transpose, Cast, Div and Sub and an optional Softmax.
 */
import * as os from 'os';
import type { NativeWeight } from '../native';
import {
  ONNX_ATTRIBUTE_TYPE,
  ONNX_DATA_TYPE,
  type OnnxAttribute,
  type OnnxDimension,
  type OnnxGraph,
  type OnnxNode,
  type OnnxTensor,
  type OnnxValueInfo,
} from './onnx-proto';

/** The architectures the ONNX exporter knows. */
export const ONNX_ARCHS = Object.freeze(['resnet18', 'resnet34', 'resnet50', 'xresnet18', 'xresnet34', 'xresnet50'] as const);
/** One of `ONNX_ARCHS`. */
export type OnnxArch = (typeof ONNX_ARCHS)[number];

/** PyTorch's BatchNorm2d default, which every torchts model uses. */
const BATCH_NORM_EPS = 1e-5;

interface ArchLayout {
  /** torchvision's names and stem, or fastai's (xresnet). */
  family: 'resnet' | 'xresnet';
  /** Bottleneck blocks (1x1, 3x3, 1x1; 4x wider output) instead of basic ones (3x3, 3x3). */
  bottleneck: boolean;
  /** Blocks in each of the four stages. */
  depths: readonly number[];
}

const ARCH_LAYOUTS: Readonly<Record<OnnxArch, ArchLayout>> = {
  resnet18: { family: 'resnet', bottleneck: false, depths: [2, 2, 2, 2] },
  resnet34: { family: 'resnet', bottleneck: false, depths: [3, 4, 6, 3] },
  resnet50: { family: 'resnet', bottleneck: true, depths: [3, 4, 6, 3] },
  xresnet18: { family: 'xresnet', bottleneck: false, depths: [2, 2, 2, 2] },
  xresnet34: { family: 'xresnet', bottleneck: false, depths: [3, 4, 6, 3] },
  xresnet50: { family: 'xresnet', bottleneck: true, depths: [3, 4, 6, 3] },
};

/** A bias-free conv, padded by kernel/2 on each side, then a BatchNorm, then ReLU when `relu`. */
export interface ConvBnUnit {
  /** The conv's state_dict prefix (its weight is `<conv>.weight`). */
  conv: string;
  /** The BatchNorm's prefix. */
  bn: string;
  inChannels: number;
  outChannels: number;
  kernel: number;
  stride: number;
  relu: boolean;
}

/** out = relu(branch(x) + shortcut(pool(x))). */
export interface ResidualBlock {
  name: string;
  branch: ConvBnUnit[];
  /** xresnet's identity path: a 2x2 average pool (ceil mode) when the block is strided. */
  poolIdentity: boolean;
  /** A 1x1 conv + BatchNorm on the identity path when the shape changes. */
  shortcut: ConvBnUnit | null;
}

/** A whole network: stem units, a 3x3 max pool, the blocks, then global average pool and `fc`. */
export interface NetworkPlan {
  stem: ConvBnUnit[];
  blocks: ResidualBlock[];
  /** Channels entering `fc`. */
  features: number;
  numClasses: number;
}

type UnitShape = Omit<ConvBnUnit, 'conv' | 'bn'>;

/** A block's convolutions, the same in both families (the stride on the 3x3, as torchvision v1.5). */
function branchShapes(inChannels: number, width: number, stride: number, bottleneck: boolean): UnitShape[] {
  if (!bottleneck) {
    return [
      { inChannels, outChannels: width, kernel: 3, stride, relu: true },
      { inChannels: width, outChannels: width, kernel: 3, stride: 1, relu: false },
    ];
  }
  return [
    { inChannels, outChannels: width, kernel: 1, stride: 1, relu: true },
    { inChannels: width, outChannels: width, kernel: 3, stride, relu: true },
    { inChannels: width, outChannels: width * 4, kernel: 1, stride: 1, relu: false },
  ];
}

function resnetBlock(name: string, inChannels: number, width: number, stride: number, bottleneck: boolean): ResidualBlock {
  const branch = branchShapes(inChannels, width, stride, bottleneck).map((shape, k) => ({ conv: `${name}.conv${k + 1}`, bn: `${name}.bn${k + 1}`, ...shape }));
  const outChannels = branch[branch.length - 1].outChannels;
  const reshapes = stride !== 1 || inChannels !== outChannels;
  const shortcut = reshapes ? { conv: `${name}.downsample.0`, bn: `${name}.downsample.1`, inChannels, outChannels, kernel: 1, stride, relu: false } : null;
  return { name, branch, poolIdentity: false, shortcut };
}

function xresnetBlock(name: string, inChannels: number, width: number, stride: number, bottleneck: boolean): ResidualBlock {
  const branch = branchShapes(inChannels, width, stride, bottleneck).map((shape, k) => ({ conv: `${name}.convs.${k}.conv`, bn: `${name}.convs.${k}.bn`, ...shape }));
  const outChannels = branch[branch.length - 1].outChannels;
  // The pool does the striding, so the shortcut conv is 1x1 stride 1.
  const shortcut = inChannels !== outChannels ? { conv: `${name}.shortcut.conv`, bn: `${name}.shortcut.bn`, inChannels, outChannels, kernel: 1, stride: 1, relu: false } : null;
  return { name, branch, poolIdentity: stride !== 1, shortcut };
}

function stemUnits(family: ArchLayout['family']): ConvBnUnit[] {
  if (family === 'resnet') return [{ conv: 'conv1', bn: 'bn1', inChannels: 3, outChannels: 64, kernel: 7, stride: 2, relu: true }];
  const channels = [3, 32, 32, 64];
  return [0, 1, 2].map((k) => ({ conv: `stem.${k}.conv`, bn: `stem.${k}.bn`, inChannels: channels[k], outChannels: channels[k + 1], kernel: 3, stride: k === 0 ? 2 : 1, relu: true }));
}

/** The plan of `arch` with `numClasses` outputs. */
export function networkPlan(arch: OnnxArch, numClasses: number): NetworkPlan {
  const { family, bottleneck, depths } = ARCH_LAYOUTS[arch];
  const makeBlock = family === 'resnet' ? resnetBlock : xresnetBlock;
  const blocks: ResidualBlock[] = [];
  let channels = 64;
  depths.forEach((depth, stage) => {
    const width = 64 << stage;
    for (let b = 0; b < depth; b++) {
      const name = family === 'resnet' ? `layer${stage + 1}.${b}` : `stages.${stage}.${b}`;
      const block = makeBlock(name, channels, width, stage > 0 && b === 0 ? 2 : 1, bottleneck);
      blocks.push(block);
      channels = block.branch[block.branch.length - 1].outChannels;
    }
  });
  return { stem: stemUnits(family), blocks, features: channels, numClasses };
}

function allUnits(plan: NetworkPlan): ConvBnUnit[] {
  return [...plan.stem, ...plan.blocks.flatMap((block) => (block.shortcut ? [...block.branch, block.shortcut] : block.branch))];
}

/** Every weight the plan reads (state_dict name -> shape): what `weights()` must give, no more. */
export function expectedWeightShapes(plan: NetworkPlan): Map<string, number[]> {
  const shapes = new Map<string, number[]>();
  for (const unit of allUnits(plan)) {
    shapes.set(`${unit.conv}.weight`, [unit.outChannels, unit.inChannels, unit.kernel, unit.kernel]);
    for (const field of ['weight', 'bias', 'running_mean', 'running_var']) shapes.set(`${unit.bn}.${field}`, [unit.outChannels]);
  }
  shapes.set('fc.weight', [plan.numClasses, plan.features]);
  shapes.set('fc.bias', [plan.numClasses]);
  return shapes;
}

/** What the graph's input is and what it does to it before the network. */
export interface GraphInput {
  /** 'uint8': [N,H,W,3] RGB bytes, transposed, cast and divided by 255 in the graph; 'float': [N,3,H,W]. */
  kind: 'uint8' | 'float';
  /** (x - mean) / std in the graph; null: not done there. */
  normalize: { mean: readonly number[]; std: readonly number[] } | null;
  /** Fixed sizes, or the names of symbolic dimensions. */
  batch: number | string;
  height: number | string;
  width: number | string;
}

/** The graph's names, fixed: what a caller feeds and reads. */
export const ONNX_NAMES = Object.freeze({ input: 'images', logits: 'logits', probabilities: 'probabilities' });

type Attributes = Record<string, number | readonly number[]>;

/** Collects nodes and initializers with the names the rest of the file chose. */
class GraphBuilder {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxTensor[] = [];

  /** Adds a node named `name`; its one output is `output` (default: its name). */
  node(opType: string, name: string, inputs: readonly string[], attributes: Attributes = {}, output = name): string {
    this.nodes.push({ name, opType, input: [...inputs], output: [output], attribute: Object.entries(attributes).map(([key, value]) => attribute(key, value)) });
    return output;
  }

  /** Adds a float32 initializer; returns its name. */
  constant(name: string, dims: readonly number[], values: Float32Array): string {
    this.initializers.push({ name, dims: [...dims], dataType: ONNX_DATA_TYPE.FLOAT, rawData: littleEndianBytes(values) });
    return name;
  }
}

function attribute(name: string, value: number | readonly number[]): OnnxAttribute {
  if (typeof value === 'number') return { name, type: ONNX_ATTRIBUTE_TYPE.INT, i: value };
  return { name, type: ONNX_ATTRIBUTE_TYPE.INTS, ints: [...value] };
}

/** ONNX stores raw data little-endian whatever the machine. */
function littleEndianBytes(values: Float32Array): Uint8Array {
  if (os.endianness() === 'LE') return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const view = new DataView(new ArrayBuffer(values.byteLength));
  values.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return new Uint8Array(view.buffer);
}

/**
 * The conv weight and bias equal to conv then eval-mode BatchNorm: per output channel c,
 * scale = gamma / sqrt(var + eps), weight * scale, bias = beta - mean * scale. In float64 (JS
 * numbers), rounded to float32 once at the end.
 */
export function foldBatchNorm(unit: ConvBnUnit, weights: ReadonlyMap<string, NativeWeight>): { weight: Float32Array; bias: Float32Array } {
  const read = (name: string) => (weights.get(name) as NativeWeight).data;
  const conv = read(`${unit.conv}.weight`);
  const [gamma, beta, mean, variance] = ['weight', 'bias', 'running_mean', 'running_var'].map((field) => read(`${unit.bn}.${field}`));
  const perChannel = conv.length / unit.outChannels;
  const weight = new Float32Array(conv.length);
  const bias = new Float32Array(unit.outChannels);
  for (let c = 0; c < unit.outChannels; c++) {
    const scale = gamma[c] / Math.sqrt(variance[c] + BATCH_NORM_EPS);
    bias[c] = beta[c] - mean[c] * scale;
    for (let j = c * perChannel; j < (c + 1) * perChannel; j++) weight[j] = conv[j] * scale;
  }
  return { weight, bias };
}

function convBn(graph: GraphBuilder, x: string, unit: ConvBnUnit, weights: ReadonlyMap<string, NativeWeight>): string {
  const folded = foldBatchNorm(unit, weights);
  const w = graph.constant(`${unit.conv}.weight`, [unit.outChannels, unit.inChannels, unit.kernel, unit.kernel], folded.weight);
  const b = graph.constant(`${unit.conv}.bias`, [unit.outChannels], folded.bias);
  const pad = Math.floor(unit.kernel / 2);
  const y = graph.node('Conv', unit.conv, [x, w, b], { kernel_shape: [unit.kernel, unit.kernel], strides: [unit.stride, unit.stride], pads: [pad, pad, pad, pad] });
  return unit.relu ? graph.node('Relu', `${unit.conv}.relu`, [y]) : y;
}

function residualBlock(graph: GraphBuilder, x: string, block: ResidualBlock, weights: ReadonlyMap<string, NativeWeight>): string {
  const branch = block.branch.reduce((y, unit) => convBn(graph, y, unit, weights), x);
  let identity = x;
  if (block.poolIdentity) {
    // PyTorch's avg_pool2d(2, 2, padding 0, ceil_mode) divides a window that hangs over the
    // edge by the elements inside it (its count_include_pad only counts padding, and there is
    // none): ONNX's count_include_pad = 0 divides the same way.
    identity = graph.node('AveragePool', `${block.name}.pool`, [identity], { kernel_shape: [2, 2], strides: [2, 2], ceil_mode: 1, count_include_pad: 0 });
  }
  if (block.shortcut) identity = convBn(graph, identity, block.shortcut, weights);
  const sum = graph.node('Add', `${block.name}.add`, [branch, identity]);
  return graph.node('Relu', `${block.name}.relu`, [sum]);
}

/** The input's preparation, as torchts's own predict does it (native/augment.cc): x/255, then (x - mean)/std. */
function prepareInput(graph: GraphBuilder, input: GraphInput): string {
  let x: string = ONNX_NAMES.input;
  if (input.kind === 'uint8') {
    // Transposing the bytes moves a quarter of the data a float transpose would.
    x = graph.node('Transpose', 'input.nchw', [x], { perm: [0, 3, 1, 2] });
    x = graph.node('Cast', 'input.float', [x], { to: ONNX_DATA_TYPE.FLOAT });
    x = graph.node('Div', 'input.unit', [x, graph.constant('input.255', [], Float32Array.of(255))]);
  }
  if (input.normalize) {
    // Sub then Div (not a folded multiply-add), so the values are torchts's to the bit.
    x = graph.node('Sub', 'input.centred', [x, graph.constant('input.mean', [1, 3, 1, 1], Float32Array.from(input.normalize.mean))]);
    x = graph.node('Div', 'input.normalized', [x, graph.constant('input.std', [1, 3, 1, 1], Float32Array.from(input.normalize.std))]);
  }
  return x;
}

function valueInfo(name: string, elemType: number, dims: readonly (number | string)[]): OnnxValueInfo {
  const dim = dims.map((d): OnnxDimension => (typeof d === 'number' ? { dimValue: d } : { dimParam: d }));
  return { name, type: { tensorType: { elemType, shape: { dim } } } };
}

/**
 * The graph of `plan` with `weights` (checked against `expectedWeightShapes` by the caller):
 * input `images`, output `logits` [N, classes], and `probabilities` (softmax) when asked.
 */
export function buildClassifierGraph(plan: NetworkPlan, weights: ReadonlyMap<string, NativeWeight>, input: GraphInput, probabilities: boolean): OnnxGraph {
  const graph = new GraphBuilder();
  let x = prepareInput(graph, input);
  x = plan.stem.reduce((y, unit) => convBn(graph, y, unit, weights), x);
  x = graph.node('MaxPool', 'maxpool', [x], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] });
  x = plan.blocks.reduce((y, block) => residualBlock(graph, y, block, weights), x);
  x = graph.node('GlobalAveragePool', 'avgpool', [x]);
  x = graph.node('Flatten', 'flatten', [x], { axis: 1 });
  const fcWeight = graph.constant('fc.weight', [plan.numClasses, plan.features], (weights.get('fc.weight') as NativeWeight).data);
  const fcBias = graph.constant('fc.bias', [plan.numClasses], (weights.get('fc.bias') as NativeWeight).data);
  const logits = graph.node('Gemm', 'fc', [x, fcWeight, fcBias], { transB: 1 }, ONNX_NAMES.logits);
  const outputs = [valueInfo(logits, ONNX_DATA_TYPE.FLOAT, [input.batch, plan.numClasses])];
  if (probabilities) {
    graph.node('Softmax', 'softmax', [logits], { axis: 1 }, ONNX_NAMES.probabilities);
    outputs.push(valueInfo(ONNX_NAMES.probabilities, ONNX_DATA_TYPE.FLOAT, [input.batch, plan.numClasses]));
  }
  const inputDims = input.kind === 'uint8' ? [input.batch, input.height, input.width, 3] : [input.batch, 3, input.height, input.width];
  const inputType = input.kind === 'uint8' ? ONNX_DATA_TYPE.UINT8 : ONNX_DATA_TYPE.FLOAT;
  return { name: 'torchts', node: graph.nodes, initializer: graph.initializers, input: [valueInfo(ONNX_NAMES.input, inputType, inputDims)], output: outputs };
}
