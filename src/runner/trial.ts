/**
 * One trial, start to end: load CLIP and the method, train (or reuse the checkpoint of a
 * trial with the same training key), evaluate on every eval dataset and record everything.
 * The one pipeline of both a runner's trial process (recording to its MLflow run, progress to
 * the parent's UI) and `vcp-exp train` (recording to a directory, progress to the terminal).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openCheckedDataset } from '../datasets/check.js';
import { FeatureCache } from '../model/feature-cache.js';
import { samplesOfSplit } from '../datasets/open.js';
import type { UndefinedMetrics } from '../eval/applicability.js';
import { METRICS, type ProductMetrics } from '../eval/evaluate.js';
import { loadImageTensorData } from '../datasets/image-io.js';
import {
  describeBackend,
  describeDevice,
  initBackend,
  type BackendInfo,
} from '../model/backend.js';
import {
  applyCheckpoint,
  CHECKPOINT_CONFIG,
  CHECKPOINT_WEIGHTS,
  loadCheckpoint,
  saveCheckpoint,
} from '../model/checkpoint.js';
import {
  FeatureExtractor,
  type FeatureExtractorOptions,
  type FeatureImage,
} from '../model/features.js';
import { evaluateDataset, withEvalPrompts, type DatasetEvaluation } from '../model/infer.js';
import { loadMethod, type LoadedBackbone } from '../model/load.js';
import type { FrozenFeatures, ZeroShotMethod } from '../model/methods/method.js';
import { inferenceMsPerImage, parameterCount } from '../model/timing.js';
import { trainMethod } from '../model/train.js';
import {
  artifactDir,
  defectMetricPrefix,
  productKey,
  resultsPath,
} from '../tracking/artifact-names.js';
import type { TrialRecorder } from '../tracking/recorder.js';
import {
  discardCheckpoint,
  markLogged,
  reusableCheckpoint,
  type ReuseDecision,
} from './checkpoint-reuse.js';
import { configSummary } from './trial-log.js';
import { METRIC_KEYS, writeProductCsv, writeProductSamples } from './trial-artifacts.js';
import type { TrialEvent, TrialSummary, TrialWork } from './trial-events.js';
import { plural } from '../io/wording.js';

/** Tags of a trial run beyond the layout's identity tags. */
export const TRIAL_TAGS = Object.freeze({
  trained: 'vcp.trained',
  checkpointFrom: 'vcp.checkpoint_from',
  /** Why a checkpoint of the same training key was found unusable and trained again. */
  checkpointDiscarded: 'vcp.checkpoint_discarded',
  trainingKey: 'vcp.training_key',
  /** `vcp.undefined.<dataset>`: the metrics that dataset cannot define, and why. */
  undefinedPrefix: 'vcp.undefined.',
});

/** Test images whose inference is timed per trial (batch 1, after one warm-up image). */
const TIMED_IMAGES = 4;
/** Least time between two progress events of one evaluation. */
const PROGRESS_INTERVAL_MS = 5_000;

/** The metrics a product's log line shows. */
function headline(m: ProductMetrics): Record<string, number> {
  const out: Record<string, number> = {};
  for (const name of ['pixelAuroc', 'pro', 'pixelAp', 'imageAuroc'] as const)
    if (m[name] !== null) out[METRIC_KEYS[name]] = m[name];
  return out;
}

/** A FeatureExtractor that also measures the time spent getting features (cache or encoder). */
export class TimedFeatureExtractor extends FeatureExtractor {
  seconds = 0;

  constructor(options: FeatureExtractorOptions) {
    super(options);
  }

  override async extract(images: readonly FeatureImage[]): Promise<FrozenFeatures> {
    const started = performance.now();
    try {
      return await super.extract(images);
    } finally {
      this.seconds += (performance.now() - started) / 1000;
    }
  }
}

export interface RunTrialOptions {
  job: TrialWork;
  /** Where the results go: the trial's MLflow run, or a directory. */
  logger: TrialRecorder;
  emit: (event: TrialEvent) => void;
  signal?: AbortSignal;
  /** Backend already initialised by the caller; default: initBackend(job.backend). */
  backendInfo?: BackendInfo;
  /** Each eval dataset's full result (per-product metrics) under its spec name, once evaluated. */
  onEvaluation?: (name: string, evaluation: DatasetEvaluation) => void;
}

export async function runTrial(options: RunTrialOptions): Promise<TrialSummary> {
  const { job, logger, emit } = options;
  const { trial } = job;
  const { method: methodName, model, train } = trial.config;
  const started = performance.now();
  const info = options.backendInfo ?? (await initBackend(job.backend));
  // The device it really runs on, which may differ from the one planned (job.device).
  const device = info.gpu?.id ?? 'cpu';
  // A caller that initialised the backend has logged it already (vcp-exp train).
  if (!options.backendInfo) console.log(`backend: ${describeBackend(info)}`);
  if (job.device.startsWith('gpu') && device === 'cpu') {
    const env = process.env;
    const pinned = `CUDA_VISIBLE_DEVICES=${env.CUDA_VISIBLE_DEVICES ?? '(unset)'}, TF_FORCE_GPU_ALLOW_GROWTH=${env.TF_FORCE_GPU_ALLOW_GROWTH ?? '(unset)'}`;
    const why = info.noGpu?.reason ?? `the ${info.name} backend computes on the CPU only`;
    console.log(`planned for ${job.device} (${pinned}), this trial computes on the CPU: ${why}`);
  }
  logger.setTags({
    'vcp.backend': info.name,
    'vcp.device': device,
    'vcp.backend_detail': describeBackend(info),
    [TRIAL_TAGS.trainingKey]: trial.trainingKey,
  });
  await mkdir(job.workDir, { recursive: true });
  const configFile = join(job.workDir, 'config.json');
  await writeFile(
    configFile,
    `${JSON.stringify({ id: trial.id, training_key: trial.trainingKey, seed: trial.seed, point: trial.point, config: trial.config }, null, 2)}\n`,
  );
  await logger.logArtifact(configFile);

  for (const text of configSummary(trial, info)) emit({ type: 'log', text });
  emit({
    type: 'phase',
    phase: 'load',
    detail: `CLIP ${String(model.backbone)} on ${describeDevice(info)}`,
  });
  const { backbone, method } = await loadMethod(methodName, model);
  try {
    const cache =
      job.featureCacheDir === null ? undefined : new FeatureCache({ dir: job.featureCacheDir });
    const extractor = new TimedFeatureExtractor({
      clip: backbone.clip,
      weightsHash: backbone.sha256,
      request: method.features,
      cache,
      chunkSize: train.micro_batch,
    });
    const loadSeconds = (performance.now() - started) / 1000;
    const loaded: LoadedTrial = { ...options, backbone, method, extractor };
    const training = await trainOrReuse(loaded);
    const featuresAfterTrain = extractor.seconds;
    const encodedBefore = extractor.stats.encoded;
    const evaluation = await evaluateTrial(loaded);
    const inferMs = await timeInference(loaded);

    const stats = extractor.stats;
    const corrupt = cache?.stats().corrupt ?? 0;
    if (corrupt > 0)
      console.error(
        `feature cache ${cache!.dir}: ${corrupt} damaged entr${corrupt === 1 ? 'y' : 'ies'} (checksum mismatch) deleted and recomputed`,
      );
    const timings = {
      train_s: training.seconds,
      eval_s: evaluation.seconds,
      features_s: extractor.seconds,
      total_s: (performance.now() - started) / 1000,
    };
    logger.logMetrics({
      ...evaluation.metrics,
      'model.parameters': parameterCount(method),
      'model.trained': training.trained ? 1 : 0,
      ...(inferMs === null ? {} : { 'time.infer_ms_per_image': inferMs }),
      'time.train_s': timings.train_s,
      'time.eval_s': timings.eval_s,
      'time.features_s': timings.features_s,
      'time.train_features_s': featuresAfterTrain,
      'time.load_s': loadSeconds,
      'time.samples_s': evaluation.samplesSeconds,
      'time.total_s': timings.total_s,
      // What the work was, so that later plans can turn these times into per-image costs.
      ...(training.trained ? { 'train.images': training.images } : {}),
      'eval.images': evaluation.images,
      'eval.products': evaluation.products,
      'eval.encoded': extractor.stats.encoded - encodedBefore,
      'cache.hits': stats.hits,
      'cache.misses': stats.misses,
      'cache.encoded': stats.encoded,
      'cache.corrupt': corrupt,
    });
    await logger.flush();
    return {
      trialId: trial.id,
      trained: training.trained,
      checkpoint: training.checkpointDir,
      cache: { ...stats },
      timings,
      metrics: evaluation.metrics,
    };
  } finally {
    method.dispose();
    backbone.clip.dispose();
  }
}

/** A trial with its CLIP, method and feature extractor built. */
interface LoadedTrial extends RunTrialOptions {
  backbone: LoadedBackbone;
  method: ZeroShotMethod;
  extractor: TimedFeatureExtractor;
}

/**
 * Loads the checkpoint the spec names (train.checkpoint), or the checkpoint of the trial's
 * training key when one exists, was logged by the run that trained it and is intact (and
 * reuse is allowed; checkpoint-reuse.ts), else trains on the train dataset and saves it there,
 * logging it once per training. A checkpoint that may not be reused is discarded, said so.
 */
export async function trainOrReuse({
  job,
  logger,
  emit,
  signal,
  backbone,
  method,
  extractor,
}: LoadedTrial): Promise<{
  trained: boolean;
  seconds: number;
  checkpointDir: string;
  /** Training images per epoch (when trained). */
  images?: number;
}> {
  const { trial } = job;
  const { train } = trial.config;
  if (train.checkpoint) {
    // The spec names a checkpoint (trained elsewhere, or imported): evaluated, never trained,
    // and logged with the trial so that `predict --run` finds what was evaluated.
    applyCheckpoint(method, await loadCheckpoint(train.checkpoint), backbone.sha256);
    emit({ type: 'phase', phase: 'train', detail: `evaluating ${train.checkpoint}` });
    logger.setTags({
      [TRIAL_TAGS.trained]: 'false',
      [TRIAL_TAGS.checkpointFrom]: train.checkpoint,
    });
    for (const file of [CHECKPOINT_CONFIG, CHECKPOINT_WEIGHTS])
      await logger.logArtifact(join(train.checkpoint, file), 'checkpoint');
    return { trained: false, seconds: 0, checkpointDir: train.checkpoint };
  }
  const checkpointDir = join(job.checkpointsDir, trial.trainingKey);
  const reuse: ReuseDecision = job.reuseCheckpoint
    ? await reusableCheckpoint(checkpointDir)
    : { reuse: false };
  if (reuse.reuse) {
    const checkpoint = await loadCheckpoint(checkpointDir);
    applyCheckpoint(method, checkpoint, backbone.sha256);
    emit({
      type: 'phase',
      phase: 'train',
      detail: `reusing the checkpoint of training ${trial.trainingKey}`,
    });
    logger.setTags({
      [TRIAL_TAGS.trained]: 'false',
      [TRIAL_TAGS.checkpointFrom]: reuse.runId,
    });
    return { trained: false, seconds: 0, checkpointDir };
  }
  if (reuse.discard) {
    const note = `checkpoint ${checkpointDir} discarded: ${reuse.discard}; training again`;
    console.error(note);
    emit({ type: 'phase', phase: 'train', detail: note });
    logger.setTags({ [TRIAL_TAGS.checkpointDiscarded]: reuse.discard });
    await discardCheckpoint(checkpointDir);
  }
  const ds = train.dataset;
  if (!ds) throw new Error(`trial ${trial.id}: train.dataset is missing`);
  const dataset = await openCheckedDataset({ ...ds, decode: false, requireMasks: true });
  const samples = samplesOfSplit(dataset, ds.split);
  emit({
    type: 'phase',
    phase: 'train',
    detail: `${plural(samples.length, 'image')} of ${plural(dataset.products().length, 'product')} (${ds.root}, ${ds.split}), ${train.epochs} epochs, batch ${train.batch_size} (micro ${train.micro_batch})`,
  });
  const trainStart = performance.now();
  let epochStart = trainStart;
  const result = await trainMethod({
    method,
    extractor,
    samples,
    seed: trial.seed,
    schedule: train,
    signal,
    onStep: (e) => {
      logger.logMetric('train.loss', e.loss, e.step);
      emit({
        type: 'step',
        epoch: e.epoch,
        epochs: train.epochs,
        step: e.stepInEpoch,
        stepsPerEpoch: e.stepsPerEpoch,
        loss: e.loss,
      });
    },
    onEpoch: (e) => {
      logger.logMetric('train.epoch_loss', e.loss, e.epoch);
      const now = performance.now();
      emit({
        type: 'epoch',
        epoch: e.epoch,
        epochs: train.epochs,
        loss: e.loss,
        seconds: (now - epochStart) / 1000,
      });
      epochStart = now;
    },
  });
  signal?.throwIfAborted();
  const seconds = (performance.now() - trainStart) / 1000;
  await saveCheckpoint(
    checkpointDir,
    method,
    { sha256: backbone.sha256, name: backbone.name },
    {
      trial: trial.id,
      training_key: trial.trainingKey,
      run_id: logger.runId,
      seed: trial.seed,
      losses: result.losses,
    },
  );
  logger.setTags({ [TRIAL_TAGS.trained]: 'true' });
  // Logged once per training: the trials that reuse it point here through vcp.checkpoint_from,
  // so it becomes reusable only once logged (or journaled for delivery).
  for (const file of [CHECKPOINT_CONFIG, CHECKPOINT_WEIGHTS])
    await logger.logArtifact(join(checkpointDir, file), 'checkpoint');
  await logger.flush();
  if (job.reuseCheckpoint) await markLogged(checkpointDir, logger.runId);
  return { trained: true, seconds, checkpointDir, images: samples.length };
}

/**
 * Evaluates the (trained) method on every eval dataset, with the test-time prompts if the
 * spec gives them; logs per-product CSVs and sample artifacts; returns the metrics
 * (`<dataset>.<metric>`, `<dataset>.<product>.<metric>`, fractions).
 */
export async function evaluateTrial({
  job,
  logger,
  emit,
  signal,
  onEvaluation,
  method,
  extractor,
}: LoadedTrial): Promise<{
  metrics: Record<string, number>;
  seconds: number;
  /** Images and products evaluated, over every eval dataset. */
  images: number;
  products: number;
  /** Of `seconds`, the sample pictures. */
  samplesSeconds: number;
}> {
  const { train, eval: evaluation } = job.trial.config;
  // Test-time prompts: a view sharing the trained Variables, disposed with `method`.
  const evalMethod = withEvalPrompts(method, evaluation.prompts);
  const metrics: Record<string, number> = {};
  const evalStart = performance.now();
  let images = 0;
  let productCount = 0;
  let samplesSeconds = 0;
  for (const d of evaluation.datasets) {
    signal?.throwIfAborted();
    const dataset = await openCheckedDataset({ ...d, decode: false });
    const products = dataset.products();
    emit({
      type: 'phase',
      phase: 'evaluate',
      detail: `${d.name}: ${plural(products.length, 'product')}`,
    });
    let done = 0;
    const datasetStart = performance.now();
    let lastProgress = 0;
    const result = await evaluateDataset({
      method: evalMethod,
      extractor,
      dataset,
      pro: evaluation.pro,
      batchSize: train.micro_batch,
      signal,
      onImages: (images, total, product) => {
        const now = performance.now();
        if (now - lastProgress < PROGRESS_INTERVAL_MS && images < total) return;
        lastProgress = now;
        const rate = images / Math.max(1e-3, (now - datasetStart) / 1000);
        emit({ type: 'images', dataset: d.name, product, done: images, total, rate });
      },
      onProduct: (m, ms, defects) =>
        emit({
          type: 'product',
          dataset: d.name,
          product: m.product,
          done: ++done,
          total: products.length,
          images: m.images,
          anomalous: m.anomalousImages,
          seconds: ms / 1000,
          metrics: headline(m),
          defects: defects.length,
        }),
    });
    for (const name of METRICS) {
      const mean = result.mean.mean[name];
      if (mean !== null) metrics[`${d.name}.${METRIC_KEYS[name]}`] = mean;
      for (const p of result.products) {
        const value = p[name];
        if (value !== null)
          metrics[`${d.name}.${productKey(p.product)}.${METRIC_KEYS[name]}`] = value;
      }
      for (const p of result.defects) {
        const value = p[name];
        if (value !== null)
          metrics[`${d.name}.${defectMetricPrefix(p.product, p.defect)}.${METRIC_KEYS[name]}`] =
            value;
      }
    }
    metrics[`${d.name}.ms_per_image`] = result.msPerImage;
    if (result.undefined.length > 0) {
      const text = describeUndefined(result.undefined);
      emit({ type: 'phase', phase: 'evaluate', detail: `${d.name}: ${text}` });
      logger.setTags({ [`${TRIAL_TAGS.undefinedPrefix}${d.name}`]: text });
    }
    images += result.images;
    productCount += result.products.length;
    onEvaluation?.(d.name, result);
    await logger.logArtifact(
      await writeProductCsv(job.workDir, d.name, result.products, result.defects),
      artifactDir(resultsPath(d.name)),
    );
    if (job.samplesPerProduct > 0) {
      const samplesStart = performance.now();
      emit({
        type: 'phase',
        phase: 'artifacts',
        detail: `${d.name}: ${plural(job.samplesPerProduct, 'sample picture')} per product`,
      });
      const outDir = join(job.workDir, 'artifacts');
      for (const product of products) {
        const files = await writeProductSamples({
          method: evalMethod,
          extractor,
          dataset,
          product,
          count: job.samplesPerProduct,
          outDir,
        });
        for (const rel of files) await logger.logArtifact(join(outDir, rel), artifactDir(rel));
      }
      samplesSeconds += (performance.now() - samplesStart) / 1000;
    }
  }
  return {
    metrics,
    seconds: (performance.now() - evalStart) / 1000,
    images,
    products: productCount,
    samplesSeconds,
  };
}

/** "image AUROC, image AP, image F1-max not defined: every image is anomalous (…)". */
export function describeUndefined(skipped: readonly UndefinedMetrics[]): string {
  return skipped
    .map(
      ({ metrics, reason }) =>
        `${metrics.map((m) => METRIC_KEYS[m]).join(', ')} not defined on this dataset (${reason}): skipped`,
    )
    .join('; ');
}

/**
 * Inference ms per image on this machine (model/timing.ts), on the first test images of the
 * first eval dataset: the cost column of method comparisons. null without test images.
 */
async function timeInference({ job, method, backbone }: LoadedTrial): Promise<number | null> {
  const first = job.trial.config.eval.datasets[0];
  if (!first) return null;
  const dataset = await openCheckedDataset({ ...first, decode: false });
  const samples = dataset.products().flatMap((p) => dataset.samples(p, 'test'));
  if (samples.length === 0) return null;
  const s = method.features.imageSize;
  const images = await Promise.all(
    samples.slice(0, TIMED_IMAGES).map(async (sample) => ({
      pixels: await loadImageTensorData(sample.imagePath, s),
      cacheable: false,
    })),
  );
  const evalMethod = withEvalPrompts(method, job.trial.config.eval.prompts);
  return inferenceMsPerImage(evalMethod, backbone.clip, images);
}
