/**
 * The checkpoint format: what a saved learner's meta holds, how it is read
 * back and checked, and the JSON sidecar an exported model carries so a
 * Predictor knows which model to build before it reads the weights.
 */
import * as fs from 'fs';
import { writeFileAtomic } from '../util/files';
import type { History } from './callbacks/recorder';
import type { SmoothedLoss } from './lr-find';
import type { Position, StagePlan } from './plan';

export const FORMAT_VERSION = 1;

/** Normalisation stats as stored (null: x/255 only). */
export type NormalizeStats = { mean: number[]; std: number[] } | null;

/** What a checkpoint's meta holds. */
export interface CheckpointMeta {
  format: 'torchts-learner' | 'torchts-export';
  version: typeof FORMAT_VERSION;
  arch: string;
  classes: string[];
  normalize: NormalizeStats;
  size: number;
  frozenTo: number;
  dataEpoch: number;
  /** Processes of the data-parallel group that saved it (absent: 1); a resume with another count rescales the plan. */
  worldSize?: number;
  /** An interrupted fit: its plan, where it stopped, and the recorder's state. */
  resume?: {
    stages: StagePlan[];
    position: Position;
    smooth: ReturnType<SmoothedLoss['toJSON']>;
    history: History;
  };
}

/** Parses and checks the meta text of a checkpoint (`file` names it in errors). */
export function parseMeta(text: string, file: string): CheckpointMeta {
  let meta: CheckpointMeta;
  try {
    meta = JSON.parse(text) as CheckpointMeta;
  } catch {
    throw new Error(`load: ${file} is not a torchts learner checkpoint (its metadata is not JSON)`);
  }
  if (!meta || (meta.format !== 'torchts-learner' && meta.format !== 'torchts-export')) {
    throw new Error(`load: ${file} is not a torchts learner checkpoint`);
  }
  if (meta.version !== FORMAT_VERSION) throw new Error(`load: ${file} has format version ${meta.version}; expected ${FORMAT_VERSION}`);
  return meta;
}

/** The sidecar of an exported model: its meta as JSON, next to the weights. */
export function sidecarOf(file: string): string {
  return `${file}.json`;
}

export function writeSidecar(file: string, meta: CheckpointMeta): void {
  writeFileAtomic(sidecarOf(file), JSON.stringify(meta, null, 2));
}

/** The meta of an exported model, from its sidecar, before a model exists to load it into. */
export function readSidecar(file: string): CheckpointMeta {
  const sidecar = sidecarOf(file);
  if (!fs.existsSync(sidecar)) {
    throw new Error(`Predictor.load: ${sidecar} (written by Learner.export next to the weights) is missing`);
  }
  return parseMeta(fs.readFileSync(sidecar, 'utf8'), sidecar);
}
