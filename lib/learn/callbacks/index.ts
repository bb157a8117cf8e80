/**
 * Callbacks: each feature of a fit in its own file. The loop's own (the
 * scheduler, mixing, progressive resizing, the recorder, the lr finder) and
 * the ones users add (early stopping, saving the best model, a CSV log).
 */
export { Tracker, monitoredValue, defaultComparison, type Comparison, type MonitorOptions } from './monitor';
export { EarlyStopping } from './early-stopping';
export { SaveBestModel } from './save-best';
export { CsvLogger } from './csv-logger';
export { ParamScheduler } from './scheduler';
export { MixCallback } from './mix';
export { ProgressiveResizing } from './resize';
export { Recorder, emptyHistory, type History } from './recorder';
export { LrFinder } from './lr-finder';
