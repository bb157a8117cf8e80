/**
 * Reporting for training runs: the progress bar, the epoch table, the metric
 * and config files, and the SVG/PNG charts.
 */
export * from './plot';
export * from './progress';
export * from './table';
export * from './logs';
export * from './charts';
