/**
 * The time a sweep will take, from measured per-image costs (a calibration on this machine,
 * src/runner/calibrate.ts, or earlier runs in MLflow, src/runner/history-costs.ts) and the
 * image counts the trials read (src/runner/dataset-counts.ts).
 *
 * A trial costs: its process start (Node, backend, CLIP, method), its training (images ×
 * epochs × the cost of one training image, plus the first step's warm-up) unless it reuses a
 * checkpoint, its evaluation (per eval image: encoded features for the first trial of a
 * feature key, cached ones after it, plus warm-up), its sample pictures (per product) and its
 * finish (metrics, artifact uploads, exit). Costs are measured with as many processes at once
 * as the sweep runs (workers), so the sweep takes the sum over trials ÷ workers, plus what
 * happens once (starting the MLflow server, generating synthetic data).
 */

/** Costs of one trial process, in seconds; measured with `workers` processes at once. */
export interface TrialCosts {
  /** Process start to method built: Node, tfjs backend, CLIP weights, the method. */
  startupS: number;
  /** One training image in one epoch (augmented: its features are encoded), steady state. */
  trainImageS: number;
  /** Extra time of the first training step (kernels warming up). */
  trainWarmupS: number;
  /** One eval image whose frozen features are encoded. */
  evalEncodeImageS: number;
  /** One eval image whose frozen features come from the cache. */
  evalCachedImageS: number;
  /** Extra time of the first evaluation batch. */
  evalWarmupS: number;
  /** Sample pictures, attention maps and text embeddings of one product. */
  samplesProductS: number;
  /** Metrics, artifact uploads and exit. */
  finishS: number;
}

export interface CostModel {
  /** Costs per feature key (backbone weights, image size, layers); `default` for any other. */
  byFeatureKey: Record<string, TrialCosts>;
  /** Processes at once when the costs were measured. */
  measuredWorkers: number;
  /** Where the costs come from, for the plan's output. */
  source: string;
  /** One synthetic image generated (data the run generates first), when known. */
  synthImageS?: number;
}

export interface TrialWorkload {
  featureKey: string;
  /** Trains (false: reuses a checkpoint, or evaluates a named one). */
  trains: boolean;
  /** Images of the train split × epochs. */
  trainImagePasses: number;
  /** Eval images whose features this trial encodes, and those it finds cached. */
  evalEncoded: number;
  evalCached: number;
  /** Products whose sample pictures it logs (0 when samples_per_product is 0). */
  sampleProducts: number;
}

export interface SweepWorkload {
  trials: TrialWorkload[];
  workers: number;
  /** Seconds spent once before the trials (e.g. starting the managed MLflow server). */
  setupS: number;
  /** Synthetic images the run generates first. */
  synthImages: number;
}

export interface Estimate {
  seconds: number;
  /** Sum over trials (one process at a time would take this long). */
  trialSeconds: number;
  setupSeconds: number;
  source: string;
}

export function trialSeconds(costs: TrialCosts, t: TrialWorkload): number {
  return (
    costs.startupS +
    (t.trains ? t.trainImagePasses * costs.trainImageS + costs.trainWarmupS : 0) +
    t.evalEncoded * costs.evalEncodeImageS +
    t.evalCached * costs.evalCachedImageS +
    (t.evalEncoded + t.evalCached > 0 ? costs.evalWarmupS : 0) +
    t.sampleProducts * costs.samplesProductS +
    costs.finishS
  );
}

export function estimateSweep(model: CostModel, work: SweepWorkload): Estimate {
  let sum = 0;
  for (const t of work.trials) {
    const costs = model.byFeatureKey[t.featureKey] ?? model.byFeatureKey.default;
    if (!costs) throw new Error(`no costs for feature key ${t.featureKey}`);
    sum += trialSeconds(costs, t);
  }
  const workers = Math.max(1, Math.min(work.workers, work.trials.length));
  // Costs measured with k processes at once hold for k workers; with fewer workers each trial
  // shares the machine less (faster) but fewer run at once: about the same sum ÷ workers.
  const setup = work.setupS + work.synthImages * (model.synthImageS ?? 0);
  return {
    seconds: setup + sum / workers,
    trialSeconds: sum,
    setupSeconds: setup,
    source: model.source,
  };
}
