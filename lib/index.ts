/**
 * torchts: train image classifiers from Node.js on libtorch.
 *
 * The package's public surface, which etc/torchts.api.md records (`npm run
 * api:update` after a deliberate change). Each area's list lives in
 * lib/public/ and is also its own entry point:
 * - `torchts/data`: image folders and the named fast.ai datasets, loaders,
 *   augmentation and normalisation options, seeded random streams, and
 *   `configureProcess()`, the opt-in process settings for fast decoding;
 * - `torchts/learn`: the Learner (fitOneCycle, fineTune, progressive resizing,
 *   mixup, label smoothing, TTA, lrFind), the Predictor, callbacks, metrics
 *   and schedules;
 * - `torchts/report`: the progress bar, the epoch table, the metrics log and
 *   the run's SVG/PNG charts;
 * - only here: `native()`, the typed binding to the addon, and `info()` about
 *   the libtorch build.
 *
 * Importing torchts changes no process-wide setting.
 */
export * from './public/data';
export * from './public/learn';
export * from './public/report';
// native() and the types its binding and the Learner's `model` reach.
export {
  native,
  type Matrices3x3,
  type NativeAugment,
  type NativeBatch,
  type NativeBinding,
  type NativeEvalResult,
  type NativeHyper,
  type NativeInfo,
  type NativeLearner,
  type NativeLearnerOptions,
  type NativeLoadReport,
  type NativeMix,
  type NativeModel,
  type NativeModelOptions,
  type NativeParam,
  type NativeWeight,
  type NativeWeightsSource,
} from './native';
