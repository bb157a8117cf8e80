/**
 * `torchts-train export --model RUN --format onnx|pth`: the trained model for
 * other runtimes. ONNX for onnxruntime (Node, the browser, Python); pth for
 * PyTorch (torchvision's resnet, fastai's xresnet).
 */
import * as path from 'path';
import { ONNX_EXPORT_DEFAULTS, ONNX_OPSETS, type OnnxExportOptions, type OnnxSize } from '../export/onnx';
import { Predictor } from '../learn';
import { UsageError, integerIn, oneOf, writableFolder, MIN_SIZE, MAX_SIZE } from './args';
import { resolveModel, shortPath } from './common';
import { kebab, type FlagsOf } from './flags';

export type ExportFlags = FlagsOf<'export'>;

export const EXPORT_FORMATS = ['onnx', 'pth'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** The flags that shape an ONNX graph: refused with --format pth, which has no graph. */
const ONNX_ONLY = ['opset', 'input', 'normalization', 'probabilities', 'dynamicBatch', 'size'] as const;

/** Checks the flags; nothing is loaded yet. */
export function exportConfigFrom(flags: ExportFlags) {
  const model = resolveModel(flags.model);
  const format: ExportFormat = flags.format === undefined ? 'onnx' : oneOf('format', flags.format, EXPORT_FORMATS);
  if (format === 'pth') {
    const given = ONNX_ONLY.find((name) => flags[name] !== undefined);
    if (given) throw new UsageError(`--${kebab(given)}: only with --format onnx (a pth file holds weights, no graph)`);
  }
  const stem = path.basename(model.file).replace(/\.tsl$/, '');
  const out = flags.out === undefined ? path.join(model.runFolder, `${stem}.${format}`) : path.resolve(String(flags.out));
  writableFolder('out', path.dirname(out));
  return { model, format, out, onnx: format === 'onnx' ? onnxOptionsFrom(flags) : undefined };
}

function onnxOptionsFrom(flags: ExportFlags): OnnxExportOptions {
  const options: OnnxExportOptions = {};
  if (flags.opset !== undefined) options.opset = integerIn('opset', flags.opset, ONNX_OPSETS.min, ONNX_OPSETS.max);
  if (flags.input !== undefined) options.input = oneOf('input', flags.input, ['uint8', 'float'] as const);
  if (flags.normalization !== undefined) options.includeNormalization = Boolean(flags.normalization);
  if (flags.probabilities !== undefined) options.probabilities = Boolean(flags.probabilities);
  if (flags.dynamicBatch !== undefined) options.dynamicBatch = Boolean(flags.dynamicBatch);
  if (flags.size !== undefined) options.size = onnxSize(flags.size);
  if ((options.input ?? ONNX_EXPORT_DEFAULTS.input) === 'uint8' && options.includeNormalization === false) {
    throw new UsageError('--no-normalization: only with --input float (a uint8 input is normalised inside the graph)');
  }
  return options;
}

function onnxSize(value: unknown): OnnxSize {
  if (value === 'dynamic' || value === 'training') return value;
  return integerIn('size', value, MIN_SIZE, MAX_SIZE);
}

/** Writes the export; resolves with the lines to print. */
export async function runExport(config: ReturnType<typeof exportConfigFrom>): Promise<string[]> {
  const predictor = await Predictor.load(config.model.file, { device: 'cpu' });
  try {
    const out = shortPath(config.out);
    if (config.format === 'pth') {
      const report = await predictor.exportPyTorch(config.out);
      const load =
        report.layout === 'torchvision'
          ? `torchvision.models.${predictor.arch}(num_classes=${predictor.classes.length}).load_state_dict(torch.load('${out}'))`
          : `fastai's ${predictor.arch}(n_out=${predictor.classes.length}).load_state_dict(torch.load('${out}'))`;
      return [`wrote ${out}: ${report.tensors} tensors, ${report.layout} names`, `load it in PyTorch with ${load}`];
    }
    const report = await predictor.exportOnnx(config.out, config.onnx);
    return [
      `wrote ${out}: ONNX opset ${report.opset}, input "${report.input.name}" ${report.input.type} [${report.input.shape.join(', ')}], outputs ${report.outputs.map((o) => `"${o}"`).join(', ')}`,
      `run it with onnxruntime: (await ort.InferenceSession.create('${out}')).run({ ${report.input.name}: tensor })`,
      // onnxruntime's JS API does not read a model's metadata: a web page ships the names itself.
      `classes (also in the file's metadata, "classes"): ${JSON.stringify(predictor.classes)}`,
    ];
  } finally {
    predictor.dispose();
  }
}
