/**
 * Export to ONNX: one self-contained `.onnx` file (weights inside) that onnxruntime (Node,
 * Python, the browser's wasm backend) runs, giving torchts's own predictions. The graph is built
 * from the architecture's plan (onnx-graph.ts) with BatchNorm folded into the convs, and
 * serialized with protobufjs through the ONNX schema subset in onnx-proto.ts.
 */
import * as fs from 'fs';
import * as path from 'path';
import { LIMITS, withDefaults } from '../defaults';
import { packageRoot, type NativeModel, type NativeWeight } from '../native';
import { writeFileAtomic } from '../util/files';
import { ONNX_ARCHS, ONNX_NAMES, buildClassifierGraph, expectedWeightShapes, networkPlan, type GraphInput, type NetworkPlan, type OnnxArch } from './onnx-graph';
import { encodeOnnxModel, type OnnxGraph, type OnnxModel, type OnnxStringEntry } from './onnx-proto';

export { ONNX_ARCHS, ONNX_NAMES, type OnnxArch };

/** What an exporter reads from a Learner or a Predictor. */
export interface ExportSource {
  /** One of `ONNX_ARCHS`. */
  arch: string;
  classes: readonly string[];
  /** The image size it was trained at last (px, square). */
  size: number;
  /** The normalisation its inputs get after x/255; null: x/255 only. */
  normalize: { mean: number[]; std: number[] } | null;
  model: Pick<NativeModel, 'weights'>;
}

/**
 * What the graph's input holds. 'uint8': [N, H, W, 3] RGB bytes, as torchts's `predict` takes them
 * and as a canvas's ImageData gives them once alpha is dropped. 'float': [N, 3, H, W] float32.
 */
export type OnnxInputKind = 'uint8' | 'float';

/**
 * The input's height and width: a number fixes both (px); 'training' fixes them to the size the
 * model was trained at last; 'dynamic' leaves them symbolic ("height", "width"), for any size the
 * network accepts, square or not. Fixed sizes let a runtime plan memory once (onnxruntime-web runs
 * them best), and the networks are only accurate near the size they were trained at anyway.
 */
export type OnnxSize = number | 'training' | 'dynamic';

/** Options of `exportOnnx`; each default is in `ONNX_EXPORT_DEFAULTS`. */
export interface OnnxExportOptions {
  /** The ai.onnx operator set, an integer in `ONNX_OPSETS`; it sets the file's IR version (17 -> IR 8). */
  opset?: number;
  /** The batch dimension symbolic ("batch"); false fixes it to 1. */
  dynamicBatch?: boolean;
  /** See `OnnxInputKind`. */
  input?: OnnxInputKind;
  /**
   * The graph prepares the input as torchts does: x/255 (after the uint8 input's cast and
   * transpose), then (x - mean) / std when the model was trained normalised. With 'float' the
   * input is then RGB in [0, 1]; false: the 'float' input is already normalised (what a
   * torchvision user feeds). A 'uint8' input needs true.
   */
  includeNormalization?: boolean;
  /** A second output "probabilities" (softmax over the classes) besides "logits". */
  probabilities?: boolean;
  /** See `OnnxSize`. */
  size?: OnnxSize;
}

/** The defaults of `exportOnnx`'s options, stated once. */
export const ONNX_EXPORT_DEFAULTS: Readonly<Required<OnnxExportOptions>> = Object.freeze({
  opset: 17,
  dynamicBatch: true,
  input: 'uint8',
  includeNormalization: true,
  probabilities: false,
  size: 'training',
});

/**
 * The operator sets the graph is written for. 13 is the first whose Softmax works over one axis
 * (older ones flatten the trailing axes, which would need another graph); from 13 to 23 every op
 * the graph uses means the same (later versions only add element types). onnxruntime 1.30 runs
 * all of them; an older runtime may need a lower one.
 */
export const ONNX_OPSETS = Object.freeze({ min: 13, max: 23 });

/** The IR version each operator set first came with (the onnx package's version table). */
const IR_VERSION_OF_OPSET: Readonly<Record<number, number>> = { 13: 7, 14: 7, 15: 8, 16: 8, 17: 8, 18: 8, 19: 9, 20: 9, 21: 10, 22: 10, 23: 11 };

/** The options after defaults and checks. */
export interface ResolvedOnnxExportOptions {
  opset: number;
  /** The IR version that goes with `opset`. */
  irVersion: number;
  dynamicBatch: boolean;
  input: OnnxInputKind;
  includeNormalization: boolean;
  probabilities: boolean;
  /** Fixed height and width (px), or symbolic. */
  size: number | 'dynamic';
}

/** What `exportOnnx` wrote. */
export interface OnnxExportReport {
  file: string;
  bytes: number;
  opset: number;
  irVersion: number;
  /** The graph's input; a string dimension is symbolic. */
  input: { name: string; type: 'uint8' | 'float32'; shape: (number | string)[] };
  /** "logits", then "probabilities" when asked for. */
  outputs: string[];
  nodes: number;
  /** float32 values stored (folded weights and the input's constants). */
  parameters: number;
  options: ResolvedOnnxExportOptions;
}

/** The metadata keys of an exported file (ModelProto.metadata_props). */
export const ONNX_METADATA_KEYS = Object.freeze({
  /** JSON array of class names, in output order. */
  classes: 'classes',
  arch: 'arch',
  /** The size it was trained at last (px). */
  size: 'size',
  /** JSON `{ mean, std }` or null: the normalisation the model expects after x/255. */
  normalize: 'normalize',
  /** 'NHWC' (uint8 input) or 'NCHW' (float). */
  inputLayout: 'input_layout',
  /** What the input's values are: 'uint8 RGB 0..255', 'float32 RGB 0..1' or 'float32 normalized' ((x/255 - mean) / std). */
  inputValues: 'input_values',
  torchtsVersion: 'torchts_version',
});

const WHO = 'exportOnnx';

/**
 * Writes `source`'s network as an ONNX model to `file` (atomically: a temporary, renamed). The
 * graph takes `images` and gives `logits` [N, classes] (and `probabilities`), equal to torchts's
 * own predictions on the same pixels. Throws naming a bad option, an arch it cannot export, or
 * weights that do not fit the arch or are not finite.
 */
export async function exportOnnx(source: ExportSource, file: string, options: OnnxExportOptions = {}): Promise<OnnxExportReport> {
  const resolved = resolveOnnxExportOptions(options, source.size);
  const arch = checkArch(source.arch);
  checkClasses(source.classes);
  checkNormalize(source.normalize);
  const plan = networkPlan(arch, source.classes.length);
  const weights = checkWeights(arch, plan, await source.model.weights());
  const graph = buildClassifierGraph(plan, weights, graphInput(resolved, source.normalize), resolved.probabilities);
  const bytes = encodeOnnxModel(modelOf(graph, resolved, { ...source, arch }));
  writeFileAtomic(file, bytes);
  return report(file, bytes.length, graph, resolved);
}

/** Fills in `ONNX_EXPORT_DEFAULTS` and checks each option; `trainedSize` is what 'training' means. */
export function resolveOnnxExportOptions(options: OnnxExportOptions, trainedSize: number): ResolvedOnnxExportOptions {
  checkKnownKeys(options);
  const o = withDefaults(ONNX_EXPORT_DEFAULTS, options);
  const opset = checkOpset(o.opset);
  const resolved: ResolvedOnnxExportOptions = {
    opset,
    irVersion: IR_VERSION_OF_OPSET[opset],
    dynamicBatch: checkBoolean('dynamicBatch', o.dynamicBatch),
    input: checkChoice('input', o.input, ['uint8', 'float'] as const),
    includeNormalization: checkBoolean('includeNormalization', o.includeNormalization),
    probabilities: checkBoolean('probabilities', o.probabilities),
    size: checkSize(o.size, trainedSize),
  };
  if (resolved.input === 'uint8' && !resolved.includeNormalization) {
    throw new Error(`${WHO}: options.includeNormalization false needs options.input 'float': a 'uint8' input is pixels, which only the graph can scale and normalise`);
  }
  return resolved;
}

function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

function checkKnownKeys(options: unknown): void {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw new Error(`${WHO}: options must be an object, got ${describe(options)}`);
  const known = Object.keys(ONNX_EXPORT_DEFAULTS);
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) throw new Error(`${WHO}: unknown option ${JSON.stringify(key)}; expected one of ${known.join(', ')}`);
  }
}

function checkOpset(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < ONNX_OPSETS.min || value > ONNX_OPSETS.max) {
    throw new Error(`${WHO}: options.opset must be an integer in ${ONNX_OPSETS.min}..${ONNX_OPSETS.max}, got ${describe(value)}`);
  }
  return value;
}

function checkBoolean(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new Error(`${WHO}: options.${name} must be true or false, got ${describe(value)}`);
  return value;
}

function checkChoice<T extends string>(name: string, value: unknown, choices: readonly T[]): T {
  if (!choices.includes(value as T)) throw new Error(`${WHO}: options.${name} must be one of ${choices.map(describe).join(', ')}, got ${describe(value)}`);
  return value as T;
}

function checkSize(value: unknown, trainedSize: number): number | 'dynamic' {
  if (value === 'dynamic') return value;
  const { min, max } = LIMITS.size;
  const inRange = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
  if (value === 'training') {
    if (!inRange(trainedSize)) throw new Error(`${WHO}: the model's training size must be an integer in ${min}..${max}, got ${describe(trainedSize)}; give options.size`);
    return trainedSize;
  }
  if (!inRange(value)) throw new Error(`${WHO}: options.size must be an integer in ${min}..${max}, 'training' or 'dynamic', got ${describe(value)}`);
  return value;
}

function checkArch(arch: string): OnnxArch {
  if (!(ONNX_ARCHS as readonly string[]).includes(arch)) throw new Error(`${WHO}: arch ${describe(arch)} cannot be exported; expected one of ${ONNX_ARCHS.join(', ')}`);
  return arch as OnnxArch;
}

function checkClasses(classes: readonly string[]): void {
  if (!Array.isArray(classes) || classes.length === 0) throw new Error(`${WHO}: the model has no classes; expected a non-empty array of class names`);
  const bad = classes.findIndex((c) => typeof c !== 'string');
  if (bad >= 0) throw new Error(`${WHO}: class ${bad} is ${describe(classes[bad])}; expected a string`);
}

function checkNormalize(normalize: ExportSource['normalize']): void {
  if (normalize === null) return;
  const triple = (values: unknown, positive: boolean) =>
    Array.isArray(values) && values.length === 3 && values.every((v) => typeof v === 'number' && Number.isFinite(v) && (!positive || v > 0));
  if (!triple(normalize?.mean, false) || !triple(normalize?.std, true)) {
    throw new Error(`${WHO}: normalize must be null or { mean, std } of 3 finite numbers each (std positive), got ${JSON.stringify(normalize)}`);
  }
}

/** The first few of a list, for messages. */
function listed(names: readonly string[], most = 5): string {
  const shown = names.slice(0, most).join(', ');
  return names.length > most ? `${shown}, ... (${names.length} in all)` : shown;
}

/** The weights by name, once each name, shape and value is what `plan` reads. */
export function checkWeights(arch: OnnxArch, plan: NetworkPlan, weights: readonly NativeWeight[]): Map<string, NativeWeight> {
  const byName = new Map<string, NativeWeight>();
  for (const weight of weights) {
    if (byName.has(weight.name)) throw new Error(`${WHO}: the model lists weight ${weight.name} more than once`);
    byName.set(weight.name, weight);
  }
  const expected = expectedWeightShapes(plan);
  const missing = [...expected.keys()].filter((name) => !byName.has(name));
  if (missing.length) throw new Error(`${WHO}: ${arch} needs weights the model does not have: ${listed(missing)}`);
  const unexpected = weights.map((w) => w.name).filter((name) => !expected.has(name));
  if (unexpected.length) throw new Error(`${WHO}: the model has weights ${arch} does not use: ${listed(unexpected)}`);
  for (const [name, shape] of expected) checkShape(arch, plan, byName.get(name) as NativeWeight, shape);
  const nonFinite = weights.filter((w) => !allFinite(w.data)).map((w) => w.name);
  if (nonFinite.length) throw new Error(`${WHO}: weights hold NaN or infinite values (${listed(nonFinite)}): the fit diverged; export a checkpoint saved before it did`);
  return byName;
}

function allFinite(values: Float32Array): boolean {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) return false;
  return true;
}

function checkShape(arch: OnnxArch, plan: NetworkPlan, weight: NativeWeight, shape: readonly number[]): void {
  const same = weight.shape.length === shape.length && weight.shape.every((d, i) => d === shape[i]);
  if (!same) {
    throw new Error(`${WHO}: weight ${weight.name} has shape [${weight.shape.join(', ')}]; ${arch} with ${plan.numClasses} classes needs [${shape.join(', ')}]`);
  }
  const count = shape.reduce((a, b) => a * b, 1);
  if (weight.data.length !== count) throw new Error(`${WHO}: weight ${weight.name} holds ${weight.data.length} values; its shape [${shape.join(', ')}] needs ${count}`);
}

function graphInput(options: ResolvedOnnxExportOptions, normalize: ExportSource['normalize']): GraphInput {
  const side = (name: string) => (options.size === 'dynamic' ? name : options.size);
  return {
    kind: options.input,
    normalize: options.includeNormalization ? normalize : null,
    batch: options.dynamicBatch ? 'batch' : 1,
    height: side('height'),
    width: side('width'),
  };
}

/** What the input's values are, in words (a model trained without normalisation takes 0..1 either way). */
function inputValues(options: ResolvedOnnxExportOptions, normalize: ExportSource['normalize']): string {
  if (options.input === 'uint8') return 'uint8 RGB 0..255';
  return options.includeNormalization || normalize === null ? 'float32 RGB 0..1' : 'float32 normalized';
}

let version: string | undefined;
/** torchts's version, from its package.json. */
function torchtsVersion(): string {
  version ??= String(JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')).version);
  return version;
}

function metadata(source: ExportSource, options: ResolvedOnnxExportOptions): OnnxStringEntry[] {
  const k = ONNX_METADATA_KEYS;
  const entries: Record<string, string> = {
    [k.classes]: JSON.stringify(source.classes),
    [k.arch]: source.arch,
    [k.size]: String(source.size),
    [k.normalize]: JSON.stringify(source.normalize),
    [k.inputLayout]: options.input === 'uint8' ? 'NHWC' : 'NCHW',
    [k.inputValues]: inputValues(options, source.normalize),
    [k.torchtsVersion]: torchtsVersion(),
  };
  return Object.entries(entries).map(([key, value]) => ({ key, value }));
}

function modelOf(graph: OnnxGraph, options: ResolvedOnnxExportOptions, source: ExportSource): OnnxModel {
  return {
    irVersion: options.irVersion,
    opsetImport: [{ domain: '', version: options.opset }],
    producerName: 'torchts',
    producerVersion: torchtsVersion(),
    docString: `torchts ${source.arch} image classifier, ${source.classes.length} classes; input "${ONNX_NAMES.input}" is ${inputValues(options, source.normalize)}`,
    graph,
    metadataProps: metadata(source, options),
  };
}

function report(file: string, bytes: number, graph: OnnxGraph, options: ResolvedOnnxExportOptions): OnnxExportReport {
  const dims = graph.input[0].type.tensorType.shape.dim.map((d) => d.dimParam ?? (d.dimValue as number));
  return {
    file,
    bytes,
    opset: options.opset,
    irVersion: options.irVersion,
    input: { name: ONNX_NAMES.input, type: options.input === 'uint8' ? 'uint8' : 'float32', shape: dims },
    outputs: graph.output.map((o) => o.name),
    nodes: graph.node.length,
    parameters: graph.initializer.reduce((sum, t) => sum + t.rawData.length / 4, 0),
    options,
  };
}
