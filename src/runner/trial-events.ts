/**
 * What a trial process and the runner say to each other: the job the parent hands over (as a
 * JSON file) and the progress events the child sends back over the IPC channel, one JSON
 * message each, for the progress UI and the sweep summary.
 */
import type { BackendChoice } from '../model/backend.js';
import type { Trial } from './spec-types.js';

/** What one trial needs to run, wherever it runs (a runner's child process or `vcp-exp train`). */
export interface TrialWork {
  trial: Trial;
  /** Trained checkpoints are kept under `<checkpointsDir>/<trainingKey>`. */
  checkpointsDir: string;
  /** Shared frozen-feature cache directory; null disables the cache (benchmark baseline). */
  featureCacheDir: string | null;
  /** Reuse a finished checkpoint of the same training key (default true). */
  reuseCheckpoint: boolean;
  backend: BackendChoice;
  /** e.g. "cpu" or "gpu:0" (CUDA_VISIBLE_DEVICES is set by the parent). */
  device: string;
  /** Sample overlays, attention maps and text embeddings logged per product. */
  samplesPerProduct: number;
  /** Scratch directory of this trial (config, CSVs, samples before upload). */
  workDir: string;
  /** Progress events appended here as JSON lines when there is no IPC channel (Slurm tasks). */
  eventsFile?: string;
  /** Run as a Slurm array task: the run waits SCHEDULED and may be a requeued task's. */
  slurm?: boolean;
}

/** The job a runner hands its trial process (as a JSON file): the work and its MLflow run. */
export interface TrialJob extends TrialWork {
  /** The trial's MLflow child run, created by the parent before the process starts. */
  runId: string;
  trackingUri: string;
  journalDir: string;
}

export type TrialPhase = 'load' | 'train' | 'evaluate' | 'artifacts';

export type TrialEvent =
  | { type: 'phase'; phase: TrialPhase; detail: string }
  /** A line for the trial's log only (config summary, notes). */
  | { type: 'log'; text: string }
  | {
      type: 'step';
      epoch: number;
      epochs: number;
      step: number;
      stepsPerEpoch: number;
      loss: number;
    }
  | { type: 'epoch'; epoch: number; epochs: number; loss: number; seconds?: number }
  /** Images evaluated so far in one eval dataset (sent at most every few seconds). */
  | {
      type: 'images';
      dataset: string;
      product: string;
      done: number;
      total: number;
      /** Images per second since the dataset's evaluation started. */
      rate: number;
    }
  | {
      type: 'product';
      dataset: string;
      product: string;
      done: number;
      total: number;
      images?: number;
      anomalous?: number;
      seconds?: number;
      /** Headline metrics of the product (fractions; absent = undefined there). */
      metrics?: Record<string, number>;
      /** Defect types evaluated separately (against the product's good images). */
      defects?: number;
    }
  | { type: 'done'; summary: TrialSummary };

export interface TrialSummary {
  trialId: string;
  /** True when this process trained; false when it reused the checkpoint of its training key. */
  trained: boolean;
  checkpoint: string;
  cache: { hits: number; misses: number; encoded: number };
  timings: { train_s: number; eval_s: number; features_s: number; total_s: number };
  /** `<dataset>.<metric>` means (fractions; ms_per_image in ms). */
  metrics: Record<string, number>;
}

export function isTrialEvent(message: unknown): message is TrialEvent {
  return (
    typeof message === 'object' &&
    message !== null &&
    typeof (message as { type?: unknown }).type === 'string'
  );
}
