/**
 * `torchts/learn`: the training layer as users see it. The Learner and the
 * Predictor, their options and results, the callbacks users add or write,
 * metrics, and the schedule, mixup and TTA options they pass. Everything else
 * in lib/learn is internal.
 */
export {
  Learner,
  Predictor,
  ImageInputError,
  locateModel,
  RUN_MODEL_FILE,
  type ImageInput,
  type RawPixels,
  type Classification,
  type RankedClass,
  type ClassifyOptions,
  type PredictorOptions,
  type PredictorStats,
  type LocatedModel,
  type BatchingOptions,
  type LearnerOptions,
  type LearnerNormalize,
  type LossOption,
  type OptimizerOptions,
  type SettingsOptions,
  type Phase,
  type FineTuneOptions,
  type FitPhasesOptions,
  type FitResult,
  type ValidationResult,
  type TtaResult,
  type PredictResult,
  type PredictInput,
  type History,
} from '../learn';
export {
  EarlyStopping,
  SaveBestModel,
  CsvLogger,
  type Callback,
  type FitControl,
  type FitState,
  type EpochRecord,
  type Comparison,
  type MonitorOptions,
} from '../learn';
export { accuracy, errorRate, topK, type Metric, type EvalBatch } from '../learn';
export {
  OneCycleSchedule,
  ConstantSchedule,
  ExponentialSchedule,
  type OneCycleOptions,
  type StepHyper,
  type LrSpec,
  type Schedule,
  type ScheduleJSON,
} from '../learn';
export type { MixOptions } from '../learn';
export type { TtaOptions } from '../learn';
export type { LrFindOptions, LrFindResult } from '../learn';
// Data-parallel training (c10d): the Learner's `distributed` option.
export type { DistributedOptions, DistributedOption } from '../learn';
export { DISTRIBUTED_DEFAULTS, PREDICTOR_DEFAULTS } from '../defaults';
// The dispose contract Learner and Predictor share (dispose, Symbol.asyncDispose).
export { NativeOwner } from '../util/native-owner';
export type { NormalizeStats } from '../learn/checkpoint';
// Exports for other runtimes: Learner/Predictor.exportOnnx and exportPyTorch.
export {
  ONNX_EXPORT_DEFAULTS,
  ONNX_OPSETS,
  ONNX_METADATA_KEYS,
  type OnnxExportOptions,
  type OnnxExportReport,
  type OnnxInputKind,
  type OnnxSize,
  type ResolvedOnnxExportOptions,
} from '../export/onnx';
export type { PyTorchExportReport, PyTorchLayout } from '../export/pytorch';
