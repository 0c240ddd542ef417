/**
 * What a trial process and the runner say to each other: the job the parent hands over (as a
 * JSON file) and the progress events the child sends back over the IPC channel, one JSON
 * message each, for the progress UI and the sweep summary.
 */
import type { BackendChoice } from '../model/backend.js';
import type { Trial } from './spec-types.js';

/** One trial of a job, with its scratch directory (config, CSVs, samples before upload). */
export interface TrialMember {
  trial: Trial;
  workDir: string;
}

/** Settings of the shared frozen-feature cache (src/model/feature-cache.ts). */
export interface FeatureCacheSettings {
  /** Disk budget in bytes. */
  maxBytes: number;
  dtype: 'float32' | 'float16';
}

/**
 * What one job needs to run, wherever it runs (a runner's child process, a Slurm array task or
 * `vcp-exp train`): one trial, or an evaluation group — trials of one training key whose
 * configs differ only in the method's post-forward fields (src/runner/groups.ts), trained (or
 * reused) once and evaluated from one forward pass per test image, each recorded on its own.
 */
export interface TrialWork {
  /** At least one; the first records the training when this job trains. */
  members: TrialMember[];
  /** Trained checkpoints are kept under `<checkpointsDir>/<trainingKey>`. */
  checkpointsDir: string;
  /** Shared frozen-feature cache directory; null disables the cache (benchmark baseline). */
  featureCacheDir: string | null;
  /** Budget and precision of that cache (default: FeatureCache's). */
  featureCache?: FeatureCacheSettings;
  /** Reuse a finished checkpoint of the same training key (default true). */
  reuseCheckpoint: boolean;
  backend: BackendChoice;
  /** e.g. "cpu" or "gpu:0" (CUDA_VISIBLE_DEVICES is set by the parent). */
  device: string;
  /** Sample overlays, attention maps and text embeddings logged per product. */
  samplesPerProduct: number;
  /** Progress events appended here as JSON lines when there is no IPC channel (Slurm tasks). */
  eventsFile?: string;
  /** Run as a Slurm array task (one member): the run waits SCHEDULED and may be a requeued task's. */
  slurm?: boolean;
}

/** The job a runner hands its trial process (as a JSON file): the work and its members' MLflow runs. */
export interface TrialJob extends TrialWork {
  /** Each member with its MLflow child run, created by the parent before the process starts. */
  members: (TrialMember & { runId: string })[];
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
  /** A member's results are recorded (its run ends FINISHED): one per member, in order. */
  | { type: 'done'; summary: TrialSummary };

export interface TrialSummary {
  trialId: string;
  /** True when this process trained; false when it reused the checkpoint of its training key. */
  trained: boolean;
  checkpoint: string;
  cache: { hits: number; misses: number; encoded: number };
  timings: TrialTimings;
  /** Trials evaluated together with this one from one forward pass (1 = alone). */
  groupSize: number;
  /** Images the method's forward ran on during evaluation (shared by the group). */
  forwardImages: number;
  /** `<dataset>.<metric>` means (fractions; ms_per_image in ms). */
  metrics: Record<string, number>;
}

/**
 * Where a trial's time went, in seconds (shared phases are the group's): process start-up
 * until the pipeline runs, loading CLIP and the method, training, evaluation (features,
 * forward, post-processing, metrics; `features_s` of it getting features), writing and
 * uploading artifacts, and the whole.
 */
export interface TrialTimings {
  startup_s: number;
  load_s: number;
  train_s: number;
  eval_s: number;
  features_s: number;
  artifacts_s: number;
  total_s: number;
}

/**
 * Fault injection for the tests of group resume (read by trial-main.ts): after this many
 * members ended FINISHED the trial process stops itself (SIGSTOP), so a test can kill it at a
 * known point. Unset: never.
 */
export const STOP_AFTER_RECORDED_ENV = 'VCP_EXP_TEST_STOP_AFTER_RECORDED';

export function isTrialEvent(message: unknown): message is TrialEvent {
  return (
    typeof message === 'object' &&
    message !== null &&
    typeof (message as { type?: unknown }).type === 'string'
  );
}
