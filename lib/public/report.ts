/**
 * `torchts/report`: what a training script uses to show and keep a run. The
 * progress bar, the epoch table, the metrics log, and the run's charts as SVG
 * (and PNG). Everything else in lib/report is internal.
 */
export { ProgressBar, type ProgressOptions, type ProgressStream, type ProgressUpdate } from '../report/progress';
export { EpochTable, type EpochRow, type EpochTableOptions } from '../report/table';
export { MetricsLog, type MetricsRecord } from '../report/logs';
export {
  accuracyChart,
  confusionChart,
  lossChart,
  lrFindChart,
  scheduleChart,
  writeRunCharts,
  type EpochPoint,
  type StepRecord,
} from '../report/charts';
export { svgToPng, writeChart } from '../report/plot';
