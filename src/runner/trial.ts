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
import {
  evaluateDatasetGroup,
  withEvalPrompts,
  type DatasetEvaluation,
  type InferenceStats,
} from '../model/infer.js';
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
import { postForwardSettings } from './groups.js';
import {
  METRIC_KEYS,
  sampleIndices,
  writeProductCsv,
  writeProductSamples,
} from './trial-artifacts.js';
import type { TrialEvent, TrialSummary, TrialTimings, TrialWork } from './trial-events.js';
import { configSummary } from './trial-log.js';
import { plural } from '../io/wording.js';

/** Tags of a trial run beyond the layout's identity tags. */
export const TRIAL_TAGS = Object.freeze({
  trained: 'vcp.trained',
  checkpointFrom: 'vcp.checkpoint_from',
  /** Why a checkpoint of the same training key was found unusable and trained again. */
  checkpointDiscarded: 'vcp.checkpoint_discarded',
  trainingKey: 'vcp.training_key',
  /** The trial ids evaluated together from one forward pass (absent when evaluated alone). */
  evalGroup: 'vcp.eval_group',
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
  /** One trial, or an evaluation group (see TrialWork). */
  job: TrialWork;
  /** Where each member's results go (same order as job.members): its MLflow run, or a directory. */
  recorders: readonly TrialRecorder[];
  emit: (event: TrialEvent) => void;
  signal?: AbortSignal;
  /** Backend already initialised by the caller; default: initBackend(job.backend). */
  backendInfo?: BackendInfo;
  /** A member's full result on an eval dataset (per-product metrics) under its spec name. */
  onEvaluation?: (member: number, name: string, evaluation: DatasetEvaluation) => void;
  /**
   * A member's results are all recorded and flushed: the caller ends its run now, so that a
   * later failure of the process does not take a finished member with it.
   */
  onRecorded?: (member: number, summary: TrialSummary) => Promise<void>;
}

/**
 * Runs a job: loads CLIP and the method once, trains or reuses the training once (recorded by
 * the first member), evaluates every member from one forward pass per test image, then records
 * each member in turn (metrics, CSVs, samples; `onRecorded`). Returns one summary per member.
 */
export async function runTrial(options: RunTrialOptions): Promise<TrialSummary[]> {
  const { job, recorders, emit } = options;
  const { members } = job;
  if (members.length === 0 || recorders.length !== members.length)
    throw new Error(
      `runTrial: ${members.length} member(s) and ${recorders.length} recorder(s), expected as many (at least one)`,
    );
  const lead = members[0].trial;
  const { method: methodName, model, train } = lead.config;
  const started = performance.now();
  // The process's own start-up (Node, modules) until here: from the time origin of this process.
  const startup = started / 1000;
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
  for (const [i, { trial, workDir }] of members.entries()) {
    const recorder = recorders[i];
    recorder.setTags({
      'vcp.backend': info.name,
      'vcp.device': device,
      'vcp.backend_detail': describeBackend(info),
      [TRIAL_TAGS.trainingKey]: trial.trainingKey,
      ...(members.length > 1
        ? { [TRIAL_TAGS.evalGroup]: members.map((m) => m.trial.id).join(',') }
        : {}),
    });
    await mkdir(workDir, { recursive: true });
    const configFile = join(workDir, 'config.json');
    await writeFile(
      configFile,
      `${JSON.stringify({ id: trial.id, training_key: trial.trainingKey, seed: trial.seed, point: trial.point, config: trial.config }, null, 2)}\n`,
    );
    await recorder.logArtifact(configFile);
  }

  for (const text of configSummary(lead, info)) emit({ type: 'log', text });
  if (members.length > 1)
    emit({
      type: 'log',
      text: `evaluation group of ${members.length} trials from one forward pass: ${members.map((m) => m.trial.id).join(', ')}`,
    });
  emit({
    type: 'phase',
    phase: 'load',
    detail: `CLIP ${String(model.backbone)} on ${describeDevice(info)}`,
  });
  const loadStart = performance.now();
  const { backbone, method } = await loadMethod(methodName, model);
  try {
    const cache =
      job.featureCacheDir === null
        ? undefined
        : new FeatureCache({ dir: job.featureCacheDir, ...job.featureCache });
    const extractor = new TimedFeatureExtractor({
      clip: backbone.clip,
      weightsHash: backbone.sha256,
      request: method.features,
      cache,
      chunkSize: train.micro_batch,
      group: lead.featureKey.id,
    });
    const loadSeconds = (performance.now() - loadStart) / 1000;
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
    const parameters = parameterCount(method);
    const summaries: TrialSummary[] = [];
    for (const [i, { trial }] of members.entries()) {
      const recorder = recorders[i];
      const artifactsStart = performance.now();
      await evaluation.writeArtifacts(i);
      const artifactsSeconds = (performance.now() - artifactsStart) / 1000;
      const trainedHere = i === 0 && training.trained;
      const timings: TrialTimings = {
        startup_s: startup,
        load_s: loadSeconds,
        train_s: trainedHere ? training.seconds : 0,
        eval_s: evaluation.seconds,
        features_s: extractor.seconds,
        artifacts_s: artifactsSeconds,
        total_s: (performance.now() - started) / 1000 + startup,
      };
      recorder.logMetrics({
        ...evaluation.metrics[i],
        'model.parameters': parameters,
        'model.trained': trainedHere ? 1 : 0,
        ...(inferMs === null ? {} : { 'time.infer_ms_per_image': inferMs }),
        'time.startup_s': timings.startup_s,
        'time.load_s': timings.load_s,
        'time.train_s': timings.train_s,
        'time.eval_s': timings.eval_s,
        'time.features_s': timings.features_s,
        'time.train_features_s': trainedHere ? featuresAfterTrain : 0,
        'time.samples_s': evaluation.samplesSeconds,
        'time.artifacts_s': timings.artifacts_s,
        'time.total_s': timings.total_s,
        // What the work was, so that later plans can turn these times into per-image costs.
        ...(trainedHere && training.images !== undefined
          ? { 'train.images': training.images }
          : {}),
        'eval.images': evaluation.images,
        'eval.products': evaluation.products,
        'eval.encoded': extractor.stats.encoded - encodedBefore,
        'cache.hits': stats.hits,
        'cache.misses': stats.misses,
        'cache.encoded': stats.encoded,
        'cache.corrupt': corrupt,
        'eval.group_size': members.length,
        'eval.forward_images': evaluation.forwardImages,
        // The trial process's peak resident memory so far (maxRSS is in KiB).
        'memory.peak_rss_mb': process.resourceUsage().maxRSS / 1024,
      });
      await recorder.flush();
      const summary: TrialSummary = {
        trialId: trial.id,
        trained: trainedHere,
        checkpoint: training.checkpointDir,
        cache: { ...stats },
        timings,
        groupSize: members.length,
        forwardImages: evaluation.forwardImages,
        metrics: evaluation.metrics[i],
      };
      summaries.push(summary);
      await options.onRecorded?.(i, summary);
      emit({ type: 'done', summary });
    }
    return summaries;
  } finally {
    method.dispose();
    backbone.clip.dispose();
  }
}

/** A job with its CLIP, method and feature extractor built. */
interface LoadedTrial extends RunTrialOptions {
  backbone: LoadedBackbone;
  method: ZeroShotMethod;
  extractor: TimedFeatureExtractor;
}

/**
 * Loads the checkpoint the spec names (train.checkpoint), or the checkpoint of the job's
 * training key when one exists, was logged by the run that trained it and is intact (and
 * reuse is allowed; checkpoint-reuse.ts), else trains on the train dataset and saves it there,
 * logging it once per training (with the first member). A checkpoint that may not be reused is
 * discarded, said so. Every member is tagged with where its training comes from.
 */
export async function trainOrReuse({
  job,
  recorders,
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
  const trial = job.members[0].trial;
  const { train } = trial.config;
  const logger = recorders[0];
  const tagAll = (tags: Record<string, string>) => recorders.forEach((r) => r.setTags(tags));
  if (train.checkpoint) {
    // The spec names a checkpoint (trained elsewhere, or imported): evaluated, never trained,
    // and logged with every trial so that `predict --run` finds what was evaluated.
    applyCheckpoint(method, await loadCheckpoint(train.checkpoint), backbone.sha256);
    emit({ type: 'phase', phase: 'train', detail: `evaluating ${train.checkpoint}` });
    tagAll({ [TRIAL_TAGS.trained]: 'false', [TRIAL_TAGS.checkpointFrom]: train.checkpoint });
    for (const recorder of recorders)
      for (const file of [CHECKPOINT_CONFIG, CHECKPOINT_WEIGHTS])
        await recorder.logArtifact(join(train.checkpoint, file), 'checkpoint');
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
    tagAll({
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
  // The other members were evaluated with this training: they point to it like later reusers.
  recorders
    .slice(1)
    .forEach((r) =>
      r.setTags({ [TRIAL_TAGS.trained]: 'false', [TRIAL_TAGS.checkpointFrom]: logger.runId }),
    );
  // Logged once per training: the trials that reuse it point here through vcp.checkpoint_from,
  // so it becomes reusable only once logged (or journaled for delivery).
  for (const file of [CHECKPOINT_CONFIG, CHECKPOINT_WEIGHTS])
    await logger.logArtifact(join(checkpointDir, file), 'checkpoint');
  await logger.flush();
  if (job.reuseCheckpoint) await markLogged(checkpointDir, logger.runId);
  return { trained: true, seconds, checkpointDir, images: samples.length };
}

/** What evaluateTrial leaves for recording: per member, its metrics and a way to write its files. */
export interface GroupEvaluation {
  /** Per member: `<dataset>.<metric>`, `<dataset>.<product>.<metric>` (fractions), ms per image. */
  metrics: Record<string, number>[];
  /** Seconds of the group's evaluation (all members at once). */
  seconds: number;
  /** Images the method's forward ran on (once per test image and dataset, whatever the group size). */
  forwardImages: number;
  /** Images and products evaluated, over every eval dataset. */
  images: number;
  products: number;
  /** Of `seconds`, the sample pictures. */
  samplesSeconds: number;
  /** Writes and logs member `i`'s CSVs and samples (kept on disk until then). */
  writeArtifacts(member: number): Promise<void>;
}

/**
 * Evaluates the (trained) method on every eval dataset for every member at once: the
 * test-time prompts if the spec gives them, then one post-forward variant per member
 * (ZeroShotMethod.withPostForward), all read out from one forward per test image. Sample
 * files are drawn from that same pass (their images' extras are kept), per member.
 */
export async function evaluateTrial({
  job,
  recorders,
  emit,
  signal,
  onEvaluation,
  method,
  extractor,
}: LoadedTrial): Promise<GroupEvaluation> {
  const { members } = job;
  const { train, eval: evaluation } = members[0].trial.config;
  // Test-time prompts: a view sharing the trained Variables, disposed with `method`.
  const evalMethod = withEvalPrompts(method, evaluation.prompts);
  const variants = members.map((m, i) =>
    i === 0 && members.length === 1
      ? evalMethod
      : evalMethod.withPostForward(postForwardSettings(m.trial)),
  );
  const metrics: Record<string, number>[] = members.map(() => ({}));
  const pending: { member: number; file: string; artifactPath: string }[] = [];
  const stats: InferenceStats = { forwards: 0, forwardImages: 0 };
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
    const samples = job.samplesPerProduct;
    const datasetStart = performance.now();
    let lastProgress = 0;
    const results = await evaluateDatasetGroup({
      variants,
      extractor,
      dataset,
      pro: evaluation.pro,
      batchSize: train.micro_batch,
      signal,
      stats,
      keepExtras:
        samples > 0 ? (_p, all) => new Set(sampleIndices(all, samples).embeddings) : undefined,
      onPredictions:
        samples > 0
          ? async ({ product, samples: all, predictions }) => {
              const samplesStart = performance.now();
              for (const [i, { workDir }] of members.entries()) {
                const outDir = join(workDir, 'artifacts');
                const files = await writeProductSamples({
                  method: variants[i],
                  dataset: d.name,
                  product,
                  samples: all,
                  predictions: predictions[i],
                  count: samples,
                  outDir,
                });
                for (const rel of files)
                  pending.push({
                    member: i,
                    file: join(outDir, rel),
                    artifactPath: artifactDir(rel),
                  });
              }
              samplesSeconds += (performance.now() - samplesStart) / 1000;
            }
          : undefined,
      onImages: (images, total, product) => {
        const now = performance.now();
        if (now - lastProgress < PROGRESS_INTERVAL_MS && images < total) return;
        lastProgress = now;
        const rate = images / Math.max(1e-3, (now - datasetStart) / 1000);
        emit({ type: 'images', dataset: d.name, product, done: images, total, rate });
      },
      onProduct: (v, m, ms, defects) => {
        if (v === 0)
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
          });
      },
    });
    for (const [i, result] of results.entries()) {
      const into = metrics[i];
      for (const name of METRICS) {
        const mean = result.mean.mean[name];
        if (mean !== null) into[`${d.name}.${METRIC_KEYS[name]}`] = mean;
        for (const p of result.products) {
          const value = p[name];
          if (value !== null)
            into[`${d.name}.${productKey(p.product)}.${METRIC_KEYS[name]}`] = value;
        }
        for (const p of result.defects) {
          const value = p[name];
          if (value !== null)
            into[`${d.name}.${defectMetricPrefix(p.product, p.defect)}.${METRIC_KEYS[name]}`] =
              value;
        }
      }
      into[`${d.name}.ms_per_image`] = result.msPerImage;
      if (result.undefined.length > 0) {
        const text = describeUndefined(result.undefined);
        if (i === 0) emit({ type: 'phase', phase: 'evaluate', detail: `${d.name}: ${text}` });
        recorders[i].setTags({ [`${TRIAL_TAGS.undefinedPrefix}${d.name}`]: text });
      }
      onEvaluation?.(i, d.name, result);
      const csv = await writeProductCsv(
        members[i].workDir,
        d.name,
        result.products,
        result.defects,
      );
      pending.unshift({ member: i, file: csv, artifactPath: artifactDir(resultsPath(d.name)) });
    }
    images += results[0].images;
    productCount += results[0].products.length;
  }
  const seconds = (performance.now() - evalStart) / 1000;
  return {
    metrics,
    seconds,
    forwardImages: stats.forwardImages,
    images,
    products: productCount,
    samplesSeconds,
    async writeArtifacts(member) {
      const mine = pending.filter((p) => p.member === member);
      if (mine.length > 0 && job.samplesPerProduct > 0)
        emit({ type: 'phase', phase: 'artifacts', detail: `${plural(mine.length, 'file')}` });
      for (const { file, artifactPath } of mine)
        await recorders[member].logArtifact(file, artifactPath);
    },
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
  const { eval: evaluation } = job.members[0].trial.config;
  const first = evaluation.datasets[0];
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
  const evalMethod = withEvalPrompts(method, evaluation.prompts);
  return inferenceMsPerImage(evalMethod, backbone.clip, images);
}
