/**
 * torchts: train image classifiers from Node.js on libtorch.
 *
 * - data: image folders and the named fast.ai datasets, sharp/libjpeg decoding,
 *   seeded loaders, device augmentation decisions, normalisation stats;
 * - learn: the Learner (fitOneCycle, fineTune, progressive resizing, mixup,
 *   label smoothing, TTA, lrFind), schedules, metrics and callbacks;
 * - report: progress bars, epoch tables, logs and SVG/PNG charts;
 * - native: the typed binding to the addon and `info()` about the libtorch build.
 */
// Data first: it sizes libuv's thread pool before anything starts it.
export * from './data';
export * from './learn';
export * from './report';
export { native, packageRoot } from './native';
export type * from './native';
