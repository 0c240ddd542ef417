/**
 * The plan of a loaded spec: which trials exist, which share a training, which already have
 * a FINISHED MLflow run, and roughly how much work is left.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { resolveBackbone } from '../model/backbones.js';
import { missingRequirements } from './requirements.js';
import type { Spec, Trial } from './spec-types.js';

/** Which of these trial ids already have a FINISHED run (the tracking side implements it). */
export type FinishedTrialLookup = (trialIds: readonly string[]) => Promise<Set<string>>;

/** Used when no tracking server is configured: nothing counts as finished. */
export const noFinishedTrials: FinishedTrialLookup = async () => new Set();

/** Approximate dense-throughput of each backend on a 2-core CPU (README's matMul figures). */
export const BACKEND_GFLOPS = { tensorflow: 100, wasm: 20, cpu: 0.5 } as const satisfies Record<
  string,
  number
>;
/** Seconds each trial process spends before computing (Node + tsx + tfjs + loading CLIP), measured ~4–5 s. */
export const TRIAL_STARTUP_SECONDS = 5;

export interface WorkEstimate {
  trainImages: number | undefined;
  evalImages: number | undefined;
  /** Images × epochs summed over the trainings still to run. */
  trainImagePasses: number | undefined;
  /** Images summed over the evaluations still to run. */
  evalImagePasses: number | undefined;
  /** Rough seconds on `backend`, or undefined when an image count is unknown. */
  seconds: number | undefined;
  backend: keyof typeof BACKEND_GFLOPS;
}

export interface Plan {
  spec: Spec;
  finished: Set<string>;
  /** Distinct training keys (all / still to run). */
  trainings: number;
  trainingsToRun: number;
  evaluationsToRun: number;
  work: WorkEstimate;
  /** What the trials need that is not on this machine (weights, datasets), one line each. */
  missing: string[];
}

export async function planSpec(
  spec: Spec,
  lookup: FinishedTrialLookup = noFinishedTrials,
): Promise<Plan> {
  const finished = await lookup(spec.trials.map((t) => t.id));
  const pending = spec.trials.filter((t) => !finished.has(t.id));
  const trainingsToRun = new Map<string, Trial>();
  for (const t of pending)
    if (!t.config.train.checkpoint && !trainingsToRun.has(t.trainingKey))
      trainingsToRun.set(t.trainingKey, t);
  const backend = spec.execution.backend === 'auto' ? 'tensorflow' : spec.execution.backend;
  const counts = new Map<string, number | undefined>();
  const count = (root: string, products: 'all' | string[]) => {
    const key = `${root}\u0000${JSON.stringify(products)}`;
    if (!counts.has(key)) counts.set(key, countImages(root, products));
    return counts.get(key);
  };
  let trainPasses: number | undefined = 0;
  let evalPasses: number | undefined = 0;
  let seconds: number | undefined = 0;
  const add = (a: number | undefined, b: number | undefined) =>
    a === undefined || b === undefined ? undefined : a + b;
  for (const t of trainingsToRun.values()) {
    const n = count(t.config.train.dataset!.root, t.config.train.dataset!.products);
    const passes = n === undefined ? undefined : n * t.config.train.epochs;
    trainPasses = add(trainPasses, passes);
    // Training runs the frozen vision tower on every (augmented) image, plus the text tower and backward of the small heads (≈ +50%).
    seconds = add(
      seconds,
      passes === undefined ? undefined : (passes * visionGflops(t) * 1.5) / BACKEND_GFLOPS[backend],
    );
  }
  for (const t of pending) {
    const n = t.config.eval.datasets.reduce<number | undefined>(
      (sum, d) => add(sum, count(d.root, d.products)),
      0,
    );
    evalPasses = add(evalPasses, n);
    seconds = add(
      seconds,
      n === undefined ? undefined : (n * visionGflops(t)) / BACKEND_GFLOPS[backend],
    );
  }
  // Trial processes start in parallel across workers; the compute above shares the same cores.
  const workers = Math.max(1, Math.min(spec.execution.workers, pending.length));
  seconds = add(seconds, (pending.length * TRIAL_STARTUP_SECONDS) / workers);
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
    work: {
      trainImages: first?.config.train.dataset
        ? count(first.config.train.dataset.root, first.config.train.dataset.products)
        : 0,
      evalImages: first
        ? first.config.eval.datasets.reduce<number | undefined>(
            (s, d) => add(s, count(d.root, d.products)),
            0,
          )
        : 0,
      trainImagePasses: trainPasses,
      evalImagePasses: evalPasses,
      seconds,
      backend,
    },
  };
}

/** Forward GFLOP of the vision tower for one image: layers × (24·T·D² + 4·T²·D), T = (S/p)² + 1. */
export function visionGflops(trial: Trial): number {
  const info = resolveBackbone(String(trial.config.model.backbone), '/');
  if ('error' in info) return 0;
  const size = Number(trial.config.model.image_size);
  const tokens = (size / info.shape.patchSize) ** 2 + 1;
  const d = info.shape.visionWidth;
  return (info.shape.visionLayers * (24 * tokens * d * d + 4 * tokens * tokens * d)) / 1e9;
}

const IMAGE = /\.(png|jpe?g|bmp|tiff?)$/i;

/** Images under a dataset root (masks excluded); undefined when the root is missing. */
export function countImages(root: string, products: 'all' | string[]): number | undefined {
  let dirs: string[];
  try {
    dirs =
      products === 'all'
        ? readdirSync(root).filter((p) => statSync(join(root, p)).isDirectory())
        : products;
  } catch {
    return undefined;
  }
  let n = 0;
  const walk = (dir: string): void => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.isDirectory()) {
        if (!/^(ground_truth|masks?)$/i.test(e.name)) walk(join(dir, e.name));
      } else if (IMAGE.test(e.name)) n++;
    }
  };
  for (const p of dirs) walk(join(root, p));
  return n;
}
