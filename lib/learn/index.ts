/**
 * The training layer: Learner (fit, fitOneCycle, fineTune, fitPhases, lrFind,
 * validate, tta, predict, save/load/export), schedules, mixup/cutmix
 * decisions, TTA combination, metrics and callbacks.
 */
export {
  Learner,
  Predictor,
  LABEL_SMOOTHING_EPS,
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
} from './learner';
export {
  EarlyStopping,
  SaveBestModel,
  CsvLogger,
  monitoredValue,
  defaultComparison,
  type Callback,
  type FitState,
  type EpochRecord,
  type Comparison,
  type MonitorOptions,
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
