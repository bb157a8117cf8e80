/**
 * Export to PyTorch: a state_dict file that `torch.load` reads and a stock PyTorch model
 * accepts with `load_state_dict` (strict). resnet models keep torchvision's names, which
 * torchts uses itself; xresnet models are renamed to the module tree of fastai's `XResNet`
 * (an nn.Sequential: stem ConvLayers 0-2, max pool 3, stages 4-7, head 8-11).
 */
import type { NativeWeightsSource } from '../native';

/** What the PyTorch exporter reads from a Learner or a Predictor. */
export interface PyTorchExportSource {
  arch: string;
  model: NativeWeightsSource;
}

/** Which PyTorch model the file loads into. */
export type PyTorchLayout = 'torchvision' | 'fastai';

/** What `exportPyTorch` wrote. */
export interface PyTorchExportReport {
  file: string;
  layout: PyTorchLayout;
  /** Tensors written (parameters and buffers, BatchNorm's num_batches_tracked included). */
  tensors: number;
}

/** The layout each architecture family exports to. */
export function pyTorchLayoutOf(arch: string): PyTorchLayout {
  if (/^resnet(18|34|50)$/.test(arch)) return 'torchvision';
  if (/^xresnet(18|34|50)$/.test(arch)) return 'fastai';
  throw new Error(`exportPyTorch: arch ${JSON.stringify(arch)} has no PyTorch layout; expected resnet18/34/50 (torchvision) or xresnet18/34/50 (fastai)`);
}

/**
 * Writes the model's weights as `torch.save(model.state_dict())` would, named for the arch's
 * layout: `torchvision.models.resnet18(num_classes=N).load_state_dict(torch.load(file))`, or
 * fastai's `xresnet18(n_out=N)` for xresnet. Atomic (a temporary, renamed).
 */
export async function exportPyTorch(source: PyTorchExportSource, file: string): Promise<PyTorchExportReport> {
  const layout = pyTorchLayoutOf(source.arch);
  const weights = await source.model.weights();
  const damaged = weights.filter((w) => !w.data.every(Number.isFinite)).map((w) => w.name);
  if (damaged.length > 0) {
    throw new Error(`exportPyTorch: ${damaged.length} weight tensor(s) hold NaN or infinite values (${damaged.slice(0, 3).join(', ')}${damaged.length > 3 ? ', ...' : ''}): the fit diverged; nothing was written to ${file}`);
  }
  const names = withBatchCounters(weights.map((w) => w.name));
  const rename = layout === 'fastai' ? fastaiName : (name: string) => name;
  const pairs = names.map((name) => [name, rename(name)] as const);
  await source.model.savePyTorch(file, pairs);
  return { file, layout, tensors: pairs.length };
}

/**
 * The state_dict names with each BatchNorm's integer `num_batches_tracked` beside its
 * `running_var` (weights() lists floating tensors only; the native writer refuses a list that
 * misses one of the model's tensors, so a wrong guess cannot pass silently).
 */
function withBatchCounters(floating: readonly string[]): string[] {
  return floating.flatMap((name) => (name.endsWith('.running_var') ? [name, name.replace(/running_var$/, 'num_batches_tracked')] : [name]));
}

/** fastai's XResNet children: stem ConvLayers at 0-2, stages from 4, the Linear at 11. */
const FASTAI_FIRST_STAGE = 4;
const FASTAI_LINEAR = 11;
/** A fastai ConvLayer is Sequential(conv, bn, act): our `.conv` is its 0, `.bn` its 1. */
const CONV_LAYER_INDEX = { conv: 0, bn: 1 } as const;

/**
 * Our xresnet name in fastai's module tree. A block's shortcut sits in `idpath` after its
 * average pool when the block is strided (the first block of stages 1-3), else first.
 */
export function fastaiName(name: string): string {
  let m = /^stem\.(\d+)\.(conv|bn)\.(\w+)$/.exec(name);
  if (m) return `${m[1]}.${CONV_LAYER_INDEX[m[2] as 'conv' | 'bn']}.${m[3]}`;
  m = /^stages\.(\d+)\.(\d+)\.convs\.(\d+)\.(conv|bn)\.(\w+)$/.exec(name);
  if (m) return `${FASTAI_FIRST_STAGE + Number(m[1])}.${m[2]}.convpath.${m[3]}.${CONV_LAYER_INDEX[m[4] as 'conv' | 'bn']}.${m[5]}`;
  m = /^stages\.(\d+)\.(\d+)\.shortcut\.(conv|bn)\.(\w+)$/.exec(name);
  if (m) {
    const strided = Number(m[1]) > 0 && m[2] === '0';
    return `${FASTAI_FIRST_STAGE + Number(m[1])}.${m[2]}.idpath.${strided ? 1 : 0}.${CONV_LAYER_INDEX[m[3] as 'conv' | 'bn']}.${m[4]}`;
  }
  m = /^fc\.(weight|bias)$/.exec(name);
  if (m) return `${FASTAI_LINEAR}.${m[1]}`;
  throw new Error(`exportPyTorch: xresnet tensor ${JSON.stringify(name)} has no place in fastai's layout`);
}
