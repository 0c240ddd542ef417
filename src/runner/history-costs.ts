/**
 * Per-image costs from earlier FINISHED trial runs in MLflow with the same backbone and image
 * size (any experiment): what they took (`time.*`) over what they did (`train.images`,
 * `eval.images`, `eval.encoded`, `eval.products`, logged by every trial since these costs were
 * needed; the members of an evaluation group share its times). Medians, so that one run on a
 * busy machine does not decide. Undefined when the runs do not cover what the plan needs
 * (training, or evaluation with encoded and cached features); the plan then calibrates.
 */
import type { MlflowClient } from '../tracking/client.js';
import { TAGS } from '../tracking/layout.js';
import type { Run } from '../tracking/types.js';
import { quoteFilterValue } from '../tracking/wire.js';
import type { CostModel, TrialCosts } from './estimate.js';
import type { Trial } from './spec-types.js';

/** Runs looked at per backbone and size, newest first. */
const MAX_RUNS = 200;

const metric = (run: Run, key: string) => run.data.metrics.find((m) => m.key === key)?.value;
const param = (run: Run, key: string) => run.data.params.find((p) => p.key === key)?.value;

function median(values: number[]): number | undefined {
  const xs = values.filter((v) => Number.isFinite(v) && v >= 0).sort((a, b) => a - b);
  if (xs.length === 0) return undefined;
  const mid = Math.floor(xs.length / 2);
  return xs.length % 2 ? xs[mid] : (xs[mid - 1] + xs[mid]) / 2;
}

/** Costs from `runs` (all of one backbone and size); undefined for what they do not show. */
export function costsFromRuns(runs: readonly Run[]): Partial<TrialCosts> & { runs: number } {
  const train: number[] = [];
  const encoded: number[] = [];
  const cached: number[] = [];
  const samples: number[] = [];
  const overhead: number[] = [];
  const overheadInGroups: number[] = [];
  let used = 0;
  for (const run of runs) {
    const images = metric(run, 'eval.images');
    const evalS = metric(run, 'time.eval_s');
    const totalS = metric(run, 'time.total_s');
    const samplesS = metric(run, 'time.samples_s') ?? 0;
    const { start_time: start, end_time: end } = run.info;
    if (images === undefined || evalS === undefined || totalS === undefined) continue;
    used++;
    // The members of an evaluation group each record the group's evaluation and sample times
    // (one forward pass, every member's read-out and samples): a member's share is 1/size.
    const size = Math.max(1, metric(run, 'eval.group_size') ?? 1);
    const evalImageS = (evalS - samplesS) / Math.max(1, images) / size;
    const enc = metric(run, 'eval.encoded') ?? 0;
    if (enc >= images) encoded.push(evalImageS);
    else if (enc === 0) cached.push(evalImageS);
    const products = metric(run, 'eval.products');
    if (products) samples.push(samplesS / products / size);
    const trainImages = metric(run, 'train.images');
    const epochs = Number(param(run, 'train.epochs'));
    const trainS = metric(run, 'time.train_s');
    if (trainImages && epochs > 0 && trainS !== undefined)
      train.push(trainS / (trainImages * epochs));
    // Everything not priced per image (process start, backend, CLIP and method, the inference
    // timing, metrics, uploads, exit): the run's wall time less its training and evaluation.
    // The other members of an evaluation group that trained share its process, and their
    // walls hold its training too: they count only when no run shows a process of its own.
    if (start !== undefined && end !== undefined) {
      const rest = (end - start) / 1000 - (trainS ?? 0) - evalS;
      const ownProcess =
        (metric(run, 'eval.group_size') ?? 1) <= 1 || metric(run, 'model.trained') === 1;
      (ownProcess ? overhead : overheadInGroups).push(rest);
    }
  }
  return {
    runs: used,
    startupS: median(overhead.length > 0 ? overhead : overheadInGroups),
    trainImageS: median(train),
    evalEncodeImageS: median(encoded),
    evalCachedImageS: median(cached),
    samplesProductS: median(samples),
  };
}

/**
 * Costs per feature key from earlier runs of the same backbone and image size, or undefined
 * when, for some feature key of `trials`, the runs do not show a cost the trials need.
 */
export async function historyCosts(
  client: MlflowClient,
  trials: readonly Trial[],
): Promise<CostModel | undefined> {
  const experiments = await client.searchExperiments({ viewType: 'ACTIVE_ONLY' });
  if (experiments.length === 0) return undefined;
  const byFeatureKey: Record<string, TrialCosts> = {};
  let total = 0;
  for (const trial of trials) {
    const key = trial.featureKey.id;
    if (byFeatureKey[key]) continue;
    const { backbone, image_size: size } = trial.config.model;
    const runs = await client.searchRuns({
      experimentIds: experiments.map((e) => e.experiment_id),
      filter: [
        `tags."${TAGS.kind}" = 'trial'`,
        `attributes.status = 'FINISHED'`,
        `params."model.backbone" = ${quoteFilterValue(String(backbone))}`,
        `params."model.image_size" = ${quoteFilterValue(String(size))}`,
      ].join(' and '),
      orderBy: ['attributes.start_time DESC'],
      maxResults: MAX_RUNS,
    });
    const c = costsFromRuns(runs);
    const needsTraining = trials.some(
      (t) => t.featureKey.id === key && t.config.train.dataset && !t.config.train.checkpoint,
    );
    const encode = c.evalEncodeImageS ?? c.evalCachedImageS;
    const cachedCost = c.evalCachedImageS ?? c.evalEncodeImageS;
    if (
      c.runs === 0 ||
      encode === undefined ||
      cachedCost === undefined ||
      c.startupS === undefined ||
      (needsTraining && c.trainImageS === undefined)
    )
      return undefined;
    byFeatureKey[key] = {
      startupS: c.startupS,
      trainImageS: c.trainImageS ?? 0,
      trainWarmupS: 0,
      evalEncodeImageS: encode,
      evalCachedImageS: cachedCost,
      evalWarmupS: 0,
      samplesProductS: c.samplesProductS ?? 0,
      finishS: 0,
    };
    total += c.runs;
  }
  return {
    byFeatureKey,
    measuredWorkers: 0,
    source: `from ${total} earlier FINISHED run${total === 1 ? '' : 's'} in MLflow with the same backbone and image size (medians; vcp-exp plan --calibrate measures this machine instead)`,
  };
}
