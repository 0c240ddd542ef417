/**
 * Types of an experiment spec (as written: `SpecInput`, see schemas/experiment.schema.json)
 * and of what loading resolves it to (`Spec`, `Trial`), with the frozen defaults.
 */
import type { MethodName } from '../model/methods/index.js';

import type { JsonPath } from './spec-error.js';
import type { AugmentSwitches } from '../model/augment.js';

export type DatasetFormat = 'mvtec' | 'visa' | 'meta' | 'folder';
export type Products = 'all' | string[];
export type Metric =
  | 'pixel_auroc'
  | 'pro'
  | 'pixel_ap'
  | 'pixel_f1_max'
  | 'image_auroc'
  | 'image_ap'
  | 'image_f1_max'
  | 'ms_per_image';

export interface TrainDataset {
  format: DatasetFormat;
  /** Absolute after loading (written relative to the spec file). */
  root: string;
  products: Products;
  split: 'test' | 'train';
}

export interface EvalDataset {
  name: string;
  format: DatasetFormat;
  root: string;
  products: Products;
}

/** The training augmentation switches, as the trainer takes them. */
export type Augment = AugmentSwitches;

export interface TrainSection {
  /** Absent when `checkpoint` is given. */
  dataset?: TrainDataset;
  /**
   * A checkpoint directory (absolute after loading) every trial evaluates instead of training;
   * dataset, schedule and augmentation are then unused.
   */
  checkpoint?: string;
  epochs: number;
  batch_size: number;
  /** Images per forward/backward chunk (gradient accumulation); an execution detail, not in ids. */
  micro_batch: number;
  augment: Augment;
}

export interface PromptPair {
  normal: string;
  abnormal: string;
}

export interface EvalSection {
  datasets: EvalDataset[];
  /** null: the training templates and state words. */
  prompts: PromptPair[] | null;
  pro: 'paper' | 'exact';
  /** Sample pictures logged per product; an artifact setting, not in trial ids. */
  samples_per_product: number;
}

export interface Reference {
  source: string;
  /** Row label → one value per metric (null: not reported by the paper). */
  values: Record<string, (number | null)[]>;
  /** Eval dataset the values refer to (default: the first dataset shown). */
  dataset?: string;
  /** dataset → product → values (per-product tables). */
  products?: Record<string, Record<string, number[]>>;
  /** Row label the per-product values refer to (default: the only row). */
  products_row?: string;
}

export type FigureKind = 'line' | 'bar' | 'gain' | 'samples' | 'attention' | 'tsne';

export interface TableSpec {
  name: string;
  title?: string;
  rows: string;
  datasets?: string[];
  metrics: Metric[];
  formats?: ('markdown' | 'latex' | 'csv')[];
  per_product?: boolean;
  reference?: Reference;
}

export interface FigureSpec {
  name: string;
  title?: string;
  kind?: FigureKind;
  /** Required by line, bar and gain (checked when the spec loads). */
  x?: string;
  series?: string;
  baseline?: string;
  target?: string;
  select?: string;
  products?: string[];
  max_items?: number;
  datasets?: string[];
  /** Required by line, bar and gain. */
  metrics?: Metric[];
  formats?: ('svg' | 'png')[];
  reference?: Reference;
}

/** report.head_to_head: two sweep points compared (src/reports/head-to-head.ts). */
export interface HeadToHeadSpec {
  name: string;
  title?: string;
  /** Labels of the two compared sweep points (e.g. variant names). */
  compare: [string, string];
  metrics: Metric[];
  /** Eval datasets compared (default: all). */
  datasets?: string[];
}

export interface SlurmResources {
  partition?: string;
  account?: string;
  qos?: string;
  /** sbatch --time, e.g. "04:00:00". */
  time?: string;
  cpus_per_task?: number;
  mem_gb?: number;
  gpus?: number;
  /** sbatch --gres verbatim (instead of gpus). */
  gres?: string;
  /** Written as `#SBATCH <option>` lines. */
  extra_sbatch?: string[];
  /** Shell lines run before the trial (module load …). */
  setup?: string[];
  poll_seconds?: number;
}

export interface Execution {
  executor: 'local' | 'slurm';
  workers: number;
  /** Most trials the spec may expand to (limits.ts DEFAULT_MAX_TRIALS when absent). */
  max_trials?: number;
  devices: string[];
  /** Trials sharing one GPU at once (their memory grows on demand). */
  trials_per_device: number;
  backend: 'auto' | 'tensorflow' | 'wasm' | 'cpu';
  /** Largest evaluation group (src/runner/groups.ts); 1 = every trial alone. */
  eval_group_size: number;
  /** Budget (GB; absent = derived from free disk space) and precision of the feature cache. */
  feature_cache: { budget_gb?: number; dtype: 'float32' | 'float16' };
  /** Absolute after loading: the feature cache and checkpoints of Slurm trials. */
  shared_dir?: string;
  slurm?: SlurmResources;
}

export interface Tracking {
  /** undefined: MLFLOW_TRACKING_URI, else the managed local server (decided by the runner). */
  uri?: string;
  experiment: string;
}

export interface SweepInput {
  grid?: Record<string, unknown[]>;
  zip?: Record<string, unknown[]>[];
  variants?: {
    name: string;
    description?: string;
    /** Another method than the spec's: the variant starts from its defaults (no `base`). */
    method?: MethodName;
    set?: Record<string, unknown>;
  }[];
}

/** A spec as written (after `extends` is merged). */
export interface SpecInput {
  name: string;
  description?: string;
  extends?: string;
  method?: MethodName;
  /** The method's config, partial (schemas/methods/<method>.schema.json). */
  base?: Record<string, unknown>;
  sweep?: SweepInput;
  seeds?: number | number[];
  train: Partial<Omit<TrainSection, 'dataset' | 'augment'>> & {
    dataset?: Partial<TrainDataset>;
    augment?: Partial<Augment>;
  };
  eval: {
    datasets: Partial<EvalDataset>[];
    prompts?: PromptPair[];
    pro?: EvalSection['pro'];
    samples_per_product?: number;
  };
  report?: { tables?: TableSpec[]; figures?: FigureSpec[]; head_to_head?: HeadToHeadSpec };
  execution?: Partial<Execution>;
  tracking?: Partial<Tracking>;
}

/** The config one trial runs with: every field filled in. */
export interface TrialConfig {
  method: MethodName;
  /** The method's config (for vcp-clip: every field of VcpClipConfig; `seed` is the trial's seed). */
  model: Record<string, unknown>;
  train: TrainSection;
  eval: EvalSection;
}

/** Frozen CLIP features depend only on these (see the frozen-feature cache). */
export interface FeatureKey {
  id: string;
  weights: string;
  activation: string;
  pos_embed_resize: string;
  image_size: number;
  layers: number[];
  /** Token form when not raw (e.g. 'projected': ln_post + visual projection). */
  tokens?: string;
  /** Global-feature form when not CLIP's image embedding (e.g. 'no_ln_post'). */
  global?: string;
}

export interface Trial {
  /** Content hash of everything that changes the trial's result (12 hex). */
  id: string;
  /** Hash of the fields that change training only: trials sharing it share one checkpoint. */
  trainingKey: string;
  featureKey: FeatureKey;
  /** 0-based position in the expansion (variants, grid, zip, then seeds, innermost last). */
  index: number;
  seed: number;
  variant?: string;
  /** The swept values of this trial: axis path → value (`variant` for the variant name). */
  point: Record<string, unknown>;
  config: TrialConfig;
  /** Config path (dotted) → where the value was written in the spec (for error positions). */
  origins: Record<string, JsonPath>;
}

export interface Spec {
  file: string;
  /** Files from the spec to its furthest base. */
  chain: string[];
  name: string;
  description: string;
  method: MethodName;
  seeds: number[];
  /** Swept axis paths in expansion order (`variant` first when there are variants). */
  axes: string[];
  report: { tables: TableSpec[]; figures: FigureSpec[]; head_to_head?: HeadToHeadSpec };
  execution: Execution;
  tracking: Tracking;
  trials: Trial[];
  /** Non-fatal findings (e.g. a dataset root missing here), formatted `file:line:col path message`. */
  warnings: string[];
  /** sha256 (12 hex) of the merged spec's canonical JSON (overrides applied). */
  hash: string;
  /** The command-line overrides applied (`key=value`, as given). */
  overrides: string[];
}

export const TRAIN_DEFAULTS = Object.freeze({
  epochs: 10,
  batch_size: 32,
  augment: Object.freeze({
    rotate: true,
    rot90: true,
    brightness_contrast: true,
    noise: true,
    blur_jitter: true,
    mosaic: 0.2,
  }),
  dataset: Object.freeze({ products: 'all', split: 'test' }),
});

/** Sample pictures per product when neither the spec nor its figures ask for more. */
export const DEFAULT_SAMPLES_PER_PRODUCT = 2;

export const EVAL_DEFAULTS = Object.freeze({
  prompts: null,
  pro: 'paper',
  dataset: Object.freeze({ products: 'all' }),
});

export const EXECUTION_DEFAULTS: Readonly<Execution> = Object.freeze({
  executor: 'local',
  workers: 1,
  devices: ['cpu'],
  trials_per_device: 1,
  backend: 'auto',
  eval_group_size: 8,
  feature_cache: Object.freeze({ dtype: 'float32' as const }),
});

/** The seed used when a spec gives neither `seeds` nor `base.seed` (the paper's). */
export const DEFAULT_SEED = 333;
