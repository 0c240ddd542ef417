/**
 * One trial, start to end, inside its own process: load CLIP and the method, train (or reuse
 * the checkpoint of a trial with the same training key), evaluate on every eval dataset and
 * log everything to the trial's MLflow run. Progress goes to `emit` (the parent's UI).
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openCheckedDataset } from '../datasets/check.js';
import { FeatureCache } from '../model/feature-cache.js';
import { samplesOfSplit } from '../datasets/open.js';
import { METRICS } from '../eval/evaluate.js';
import { initBackend, type BackendInfo } from '../model/backend.js';
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
import { evaluateDataset, withEvalPrompts } from '../model/infer.js';
import { loadMethod } from '../model/load.js';
import type { FrozenFeatures } from '../model/methods/method.js';
import { trainMethod } from '../model/train.js';
import { artifactDir, resultsPath } from '../tracking/artifact-names.js';
import type { RunLogger } from '../tracking/run-logger.js';
import { METRIC_KEYS, writeProductCsv, writeProductSamples } from './trial-artifacts.js';
import type { TrialEvent, TrialJob, TrialSummary } from './trial-events.js';

/** Tags of a trial run beyond the layout's identity tags. */
export const TRIAL_TAGS = Object.freeze({
  trained: 'vcp.trained',
  checkpointFrom: 'vcp.checkpoint_from',
  trainingKey: 'vcp.training_key',
});

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
  job: TrialJob;
  logger: RunLogger;
  emit: (event: TrialEvent) => void;
  signal?: AbortSignal;
  /** Backend already initialised by the caller (tests); default: initBackend(job.backend). */
  backendInfo?: BackendInfo;
}

export async function runTrial({
  job,
  logger,
  emit,
  signal,
  backendInfo,
}: RunTrialOptions): Promise<TrialSummary> {
  const { trial } = job;
  const { method: methodName, model, train, eval: evaluation } = trial.config;
  const started = performance.now();
  const info = backendInfo ?? (await initBackend(job.backend));
  logger.setTags({
    'vcp.backend': info.name,
    'vcp.device': job.device,
    [TRIAL_TAGS.trainingKey]: trial.trainingKey,
  });
  await mkdir(job.workDir, { recursive: true });
  const configFile = join(job.workDir, 'config.json');
  await writeFile(
    configFile,
    `${JSON.stringify({ id: trial.id, training_key: trial.trainingKey, seed: trial.seed, point: trial.point, config: trial.config }, null, 2)}\n`,
  );
  await logger.logArtifact(configFile);

  emit({ type: 'phase', phase: 'load', detail: `CLIP ${String(model.backbone)}` });
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

    const checkpointDir = train.checkpoint ?? join(job.checkpointsDir, trial.trainingKey);
    let trained = false;
    let trainSeconds = 0;
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
    } else if (
      job.reuseCheckpoint &&
      existsSync(join(checkpointDir, CHECKPOINT_CONFIG)) &&
      existsSync(join(checkpointDir, CHECKPOINT_WEIGHTS))
    ) {
      const checkpoint = await loadCheckpoint(checkpointDir);
      applyCheckpoint(method, checkpoint, backbone.sha256);
      const from = checkpoint.config.info?.run_id;
      emit({
        type: 'phase',
        phase: 'train',
        detail: `reusing the checkpoint of training ${trial.trainingKey}`,
      });
      logger.setTags({
        [TRIAL_TAGS.trained]: 'false',
        [TRIAL_TAGS.checkpointFrom]: typeof from === 'string' ? from : checkpointDir,
      });
    } else {
      const ds = train.dataset;
      if (!ds) throw new Error(`trial ${trial.id}: train.dataset is missing`);
      const dataset = await openCheckedDataset({ ...ds, decode: false });
      const samples = samplesOfSplit(dataset, ds.split);
      emit({
        type: 'phase',
        phase: 'train',
        detail: `${samples.length} images, ${train.epochs} epochs`,
      });
      const trainStart = performance.now();
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
          emit({ type: 'epoch', epoch: e.epoch, epochs: train.epochs, loss: e.loss });
        },
      });
      signal?.throwIfAborted();
      trainSeconds = (performance.now() - trainStart) / 1000;
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
      trained = true;
      logger.setTags({ [TRIAL_TAGS.trained]: 'true' });
      // Logged once per training: the trials that reuse it point here through vcp.checkpoint_from.
      for (const file of [CHECKPOINT_CONFIG, CHECKPOINT_WEIGHTS])
        await logger.logArtifact(join(checkpointDir, file), 'checkpoint');
    }
    const featuresAfterTrain = extractor.seconds;

    // Test-time prompts: a view sharing the trained Variables, disposed with `method`.
    const evalMethod = withEvalPrompts(method, evaluation.prompts);
    const metrics: Record<string, number> = {};
    const evalStart = performance.now();
    for (const d of evaluation.datasets) {
      signal?.throwIfAborted();
      const dataset = await openCheckedDataset({ ...d, decode: false });
      const products = dataset.products();
      emit({ type: 'phase', phase: 'evaluate', detail: `${d.name}: ${products.length} products` });
      let done = 0;
      const result = await evaluateDataset({
        method: evalMethod,
        extractor,
        dataset,
        pro: evaluation.pro,
        batchSize: train.micro_batch,
        signal,
        onProduct: (m) =>
          emit({
            type: 'product',
            dataset: d.name,
            product: m.product,
            done: ++done,
            total: products.length,
          }),
      });
      for (const name of METRICS) {
        const mean = result.mean.mean[name];
        if (mean !== null) metrics[`${d.name}.${METRIC_KEYS[name]}`] = mean;
        for (const p of result.products) {
          const value = p[name];
          if (value !== null) metrics[`${d.name}.${p.product}.${METRIC_KEYS[name]}`] = value;
        }
      }
      metrics[`${d.name}.ms_per_image`] = result.msPerImage;
      await logger.logArtifact(
        await writeProductCsv(job.workDir, d.name, result.products),
        artifactDir(resultsPath(d.name)),
      );
      if (job.samplesPerProduct > 0) {
        emit({ type: 'phase', phase: 'artifacts', detail: `${d.name}: sample overlays` });
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
      }
    }
    const evalSeconds = (performance.now() - evalStart) / 1000;
    const stats = extractor.stats;
    const timings = {
      train_s: trainSeconds,
      eval_s: evalSeconds,
      features_s: extractor.seconds,
      total_s: (performance.now() - started) / 1000,
    };
    logger.logMetrics({
      ...metrics,
      'time.train_s': timings.train_s,
      'time.eval_s': timings.eval_s,
      'time.features_s': timings.features_s,
      'time.train_features_s': featuresAfterTrain,
      'time.total_s': timings.total_s,
      'cache.hits': stats.hits,
      'cache.misses': stats.misses,
      'cache.encoded': stats.encoded,
    });
    await logger.flush();
    return {
      trialId: trial.id,
      trained,
      checkpoint: checkpointDir,
      cache: { ...stats },
      timings,
      metrics,
    };
  } finally {
    method.dispose();
    backbone.clip.dispose();
  }
}
