/**
 * The plan of a loaded spec: which trials exist, which share a training, which already have
 * a FINISHED MLflow run, how many images each dataset gives the trials (counted by the same
 * adapters the trials read them with), what is missing on this machine, and the work left as
 * the estimate (src/runner/estimate.ts) needs it. Timing it is separate: see `estimatePlan`.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CHECKPOINT_CONFIG, CHECKPOINT_WEIGHTS } from '../model/checkpoint.js';
import { resolveStateDir } from '../tracking/server.js';
import { resolveCacheBudget, type CacheBudget } from './cache-budget.js';
import { planCache, type CachePlan } from './cache-plan.js';
import { DatasetCounts, type DatasetCount } from './dataset-counts.js';
import { estimateSweep, type CostModel, type Estimate, type TrialWorkload } from './estimate.js';
import { formGroups, maxGroupOf } from './groups.js';
import { missingRequirements } from './requirements.js';
import { featureCacheDir } from './state-dirs.js';
import type { DatasetFormat, Products, Spec, Trial } from './spec-types.js';

/** Which of these trial ids already have a FINISHED run (the tracking side implements it). */
export type FinishedTrialLookup = (trialIds: readonly string[]) => Promise<Set<string>>;

/** Used when no tracking server is configured: nothing counts as finished. */
export const noFinishedTrials: FinishedTrialLookup = async () => new Set();

export interface DatasetLine extends DatasetCount {
  /** "train dataset", "eval dataset synth", … (every use of this root, products and split). */
  labels: string[];
}

export interface WorkEstimate {
  /** Images one training reads per epoch (the first trial's train split). */
  trainImages: number | undefined;
  /** Images one evaluation reads (every eval dataset's test split). */
  evalImages: number | undefined;
  /** Images × epochs summed over the trainings still to run. */
  trainImagePasses: number | undefined;
  /** Images summed over the evaluation groups still to run (one forward pass per group). */
  evalImagePasses: number | undefined;
  /** Filled by `estimatePlan`: seconds, and where the per-image costs came from. */
  seconds?: number;
  source?: string;
}

export interface Plan {
  spec: Spec;
  finished: Set<string>;
  /** Distinct training keys (all / still to run). */
  trainings: number;
  trainingsToRun: number;
  evaluationsToRun: number;
  /** Processes the pending evaluations run in: evaluation groups (src/runner/groups.ts). */
  evalGroupsToRun: number;
  /** The feature cache the pending evaluations need against its budget. */
  cache: CachePlan;
  /** Trials whose checkpoint already exists (in the state directory): evaluated, not trained. */
  checkpointsFound: number;
  datasets: DatasetLine[];
  work: WorkEstimate;
  /** Per pending trial, what it will do (undefined when an image count is unknown). */
  workload: TrialWorkload[] | undefined;
  /** What the trials need that is not on this machine (weights, datasets), one line each. */
  missing: string[];
}

export interface PlanOptions {
  /** Where trained checkpoints are kept (a training whose checkpoint is there is reused). */
  checkpointsDir?: string;
  /** The feature cache budget (default: as `vcp-exp run` resolves it here, without a CLI value). */
  budget?: CacheBudget;
  env?: NodeJS.ProcessEnv;
}

const add = (a: number | undefined, b: number | undefined) =>
  a === undefined || b === undefined ? undefined : a + b;

export async function planSpec(
  spec: Spec,
  lookup: FinishedTrialLookup = noFinishedTrials,
  options: PlanOptions = {},
): Promise<Plan> {
  const finished = await lookup(spec.trials.map((t) => t.id));
  const pending = spec.trials.filter((t) => !finished.has(t.id));
  const groups = formGroups(pending, maxGroupOf(spec));
  // Evaluation groups run one forward pass per test image: only their first trial reads the images.
  const leads = new Set(groups.map(([lead]) => lead));
  const env = options.env ?? process.env;
  const budget =
    options.budget ??
    (await resolveCacheBudget({
      env,
      spec,
      dir: featureCacheDir(resolveStateDir(process.cwd(), env)),
    }));
  const counts = new DatasetCounts();
  // Test-split image counts by root and products, for the cache plan (filled below).
  const testImages = new Map<string, number | undefined>();
  const labels = new Map<string, string[]>();
  const count = async (
    label: string,
    d: { root: string; format: DatasetFormat; products: Products },
    split: 'train' | 'test',
  ) => {
    const use = { root: d.root, format: d.format, products: d.products, split };
    const key = JSON.stringify([use.root, use.format, use.products, split]);
    const list = labels.get(key) ?? [];
    if (!list.includes(label)) list.push(label);
    labels.set(key, list);
    return (await counts.get(use)).images;
  };
  const trainImagesOf = (t: Trial) =>
    t.config.train.dataset && !t.config.train.checkpoint
      ? count('train dataset', t.config.train.dataset, t.config.train.dataset.split)
      : Promise.resolve(0);
  const evalImagesOf = async (t: Trial) => {
    let n: number | undefined = 0;
    for (const d of t.config.eval.datasets) {
      const images = await count(`eval dataset ${d.name}`, d, 'test');
      testImages.set(`${d.root}\u0000${JSON.stringify(d.products)}`, images);
      n = add(n, images);
    }
    return n;
  };
  for (const t of spec.trials) {
    await trainImagesOf(t);
    await evalImagesOf(t);
  }

  const checkpointExists = (t: Trial) =>
    options.checkpointsDir !== undefined &&
    existsSync(join(options.checkpointsDir, t.trainingKey, CHECKPOINT_CONFIG)) &&
    existsSync(join(options.checkpointsDir, t.trainingKey, CHECKPOINT_WEIGHTS));
  const trainingsToRun = new Map<string, Trial>();
  let checkpointsFound = 0;
  for (const t of pending) {
    if (t.config.train.checkpoint || trainingsToRun.has(t.trainingKey)) continue;
    if (checkpointExists(t)) checkpointsFound++;
    else trainingsToRun.set(t.trainingKey, t);
  }

  let trainPasses: number | undefined = 0;
  let evalPasses: number | undefined = 0;
  let workload: TrialWorkload[] | undefined = [];
  const encodedBy = new Set<string>();
  for (const t of pending) {
    const trains = trainingsToRun.get(t.trainingKey) === t;
    const images = trains ? await trainImagesOf(t) : 0;
    const passes = images === undefined ? undefined : images * t.config.train.epochs;
    trainPasses = add(trainPasses, trains ? passes : 0);
    const evalImages = await evalImagesOf(t);
    const lead = leads.has(t);
    evalPasses = add(evalPasses, lead ? evalImages : 0);
    let encoded = 0;
    let cached = 0;
    let products = 0;
    for (const d of t.config.eval.datasets) {
      const c = await counts.get({
        root: d.root,
        format: d.format,
        products: d.products,
        split: 'test',
      });
      // The first trial of a feature key encodes a dataset's features; later ones read the cache.
      const key = JSON.stringify([t.featureKey.id, d.root, d.format, d.products]);
      // A group's other members read its forward pass: priced like a cached evaluation.
      if (encodedBy.has(key) || !lead) cached += c.images ?? 0;
      else encoded += c.images ?? 0;
      encodedBy.add(key);
      products += Object.keys(c.perProduct ?? {}).length;
    }
    if (workload && passes !== undefined && evalImages !== undefined)
      workload.push({
        featureKey: t.featureKey.id,
        trains,
        trainImagePasses: trains ? passes : 0,
        evalEncoded: encoded,
        evalCached: cached,
        sampleProducts: t.config.eval.samples_per_product > 0 ? products : 0,
      });
    else workload = undefined;
  }

  const datasets: DatasetLine[] = [];
  for (const [key, list] of labels) {
    const [root, format, products, split] = JSON.parse(key) as [
      string,
      DatasetFormat,
      Products,
      'train' | 'test',
    ];
    datasets.push({ ...(await counts.get({ root, format, products, split })), labels: list });
  }
  const first = spec.trials[0];
  return {
    spec,
    finished,
    missing: missingRequirements(spec),
    trainings: new Set(
      spec.trials.filter((t) => !t.config.train.checkpoint).map((t) => t.trainingKey),
    ).size,
    trainingsToRun: trainingsToRun.size,
    evaluationsToRun: pending.length,
    evalGroupsToRun: groups.length,
    cache: planCache(spec, pending, budget, (root, products) =>
      testImages.get(`${root}\u0000${JSON.stringify(products)}`),
    ),
    checkpointsFound,
    datasets,
    workload,
    work: {
      trainImages: first ? await trainImagesOf(first) : 0,
      evalImages: first ? await evalImagesOf(first) : 0,
      trainImagePasses: trainPasses,
      evalImagePasses: evalPasses,
    },
  };
}

/**
 * The plan's time: its workload priced by `model`, plus `setupS` (e.g. starting the managed
 * MLflow server) and the synthetic images the run generates first.
 */
export function estimatePlan(
  plan: Plan,
  model: CostModel,
  setup: { setupS: number; synthImages: number },
): Estimate | undefined {
  if (!plan.workload) return undefined;
  const estimate = estimateSweep(model, {
    trials: plan.workload,
    workers: plan.spec.execution.workers,
    setupS: setup.setupS,
    synthImages: setup.synthImages,
  });
  plan.work.seconds = estimate.seconds;
  plan.work.source = estimate.source;
  return estimate;
}
