/**
 * torchts: train image classifiers from Node.js on libtorch.
 */
export { native, addonCandidates, packageRoot } from './native';
export type * from './native';
export type * from './data/types';
