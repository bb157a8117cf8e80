/**
 * The training layer: the Learner facade (fit, fitOneCycle, fineTune,
 * fitPhases, lrFind, validate, tta, predict, save/load/export), the Predictor,
 * the callback contract and the callbacks, schedules, mixing, TTA and metrics.
 */
export { Learner, LABEL_SMOOTHING_EPS } from './learner';
export {
  Predictor,
  ImageInputError,
  locateModel,
  predictionRequest,
  RUN_MODEL_FILE,
  type ImageInput,
  type RawPixels,
  type Classification,
  type RankedClass,
  type ClassifyOptions,
  type PredictorOptions,
  type PredictorStats,
  type LocatedModel,
} from './predictor';
export type { BatchingOptions } from './batcher';
export { resolveGroup, type DistributedOptions, type DistributedOption } from './distributed';
export type {
  LearnerOptions,
  LearnerNormalize,
  LossOption,
  OptimizerOptions,
  SettingsOptions,
  FitResult,
  ValidationResult,
  TtaResult,
  PredictResult,
  PredictInput,
} from './options';
export type { Phase, FineTuneOptions, FitPhasesOptions } from './plan';
export { FIT_EVENTS, type Callback, type FitControl, type FitState, type FitEvent, type EpochRecord } from './types';
export {
  EarlyStopping,
  SaveBestModel,
  CsvLogger,
  monitoredValue,
  defaultComparison,
  type Comparison,
  type MonitorOptions,
  type History,
} from './callbacks';
export {
  accuracy,
  errorRate,
  topK,
  countTopK,
  argmaxRows,
  accuracyOf,
  confusionMatrix,
  type Metric,
  type EvalBatch,
} from './metrics';
export {
  sampleMixup,
  sampleCutMix,
  sampleMix,
  cutBox,
  mixedTargets,
  MIXUP_ALPHA,
  CUTMIX_ALPHA,
  type MixOptions,
  type MixRandom,
  type CutBox,
} from './mixup';
export {
  cosineSegment,
  evenMultiples,
  groupLrs,
  oneCycleLr,
  oneCycleMom,
  fineTuneStages,
  scheduleFromJSON,
  OneCycleSchedule,
  ConstantSchedule,
  ExponentialSchedule,
  ONE_CYCLE_DEFAULTS,
  type OneCycleOptions,
  type StepHyper,
  type LrSpec,
  type Schedule,
  type ScheduleJSON,
  type FineTuneStage,
} from './schedule';
export { combineTta, TTA_DEFAULTS, type TtaOptions } from './tta';
export { SmoothedLoss, valley, LR_FIND_DEFAULTS, type LrFindOptions, type LrFindResult } from './lr-find';
