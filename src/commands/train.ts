/**
 * `vcp-exp train <spec.yaml> [--out DIR]`: one trial of a spec, end to end: train on the train
 * dataset, save the checkpoint, evaluate on the eval datasets, print the metrics table.
 * A spec that expands to several trials belongs to `vcp-exp run`.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { UserError } from '../errors.js';
import { openCheckedDataset } from '../datasets/check.js';
import { FeatureCache } from '../model/feature-cache.js';
import { samplesOfSplit } from '../datasets/open.js';
import { initBackend, describeBackend, type BackendChoice } from '../model/backend.js';
import { saveCheckpoint } from '../model/checkpoint.js';
import { cacheRoot } from '../model/clip/cache.js';
import { FeatureExtractor } from '../model/features.js';
import { evaluateDataset, withEvalPrompts, type DatasetEvaluation } from '../model/infer.js';
import { loadMethod } from '../model/load.js';
import { trainMethod } from '../model/train.js';
import { loadSpec } from '../runner/spec.js';
import { table } from './metrics.js';

export interface TrainCommandOptions {
  backend: string;
  out?: string;
  /** Feature cache directory (default <cache root>/features); false disables it. */
  featureCache?: string | false;
  quiet?: boolean;
}

export async function trainCommand(specFile: string, options: TrainCommandOptions): Promise<void> {
  const spec = await loadSpec(specFile);
  for (const warning of spec.warnings) console.error(`warning: ${warning}`);
  if (spec.trials.length !== 1) {
    throw new UserError(
      `${specFile}: expands to ${spec.trials.length} trials; \`vcp-exp train\` runs exactly one`,
      {
        hint: `run the sweep with: vcp-exp run ${specFile} (or remove the sweep axes / extra seeds)`,
      },
    );
  }
  const trial = spec.trials[0];
  const { method: methodName, model, train, eval: evaluation } = trial.config;
  const ds = train.dataset;
  if (!ds) {
    throw new UserError(
      `${specFile}: train.checkpoint names a checkpoint to evaluate; \`vcp-exp train\` trains`,
      { hint: `evaluate it with: vcp-exp run ${specFile}` },
    );
  }
  const info = await initBackend(options.backend as BackendChoice);
  const log = (line: string) => !options.quiet && console.log(line);
  log(`backend: ${describeBackend(info)}`);
  const out = resolve(options.out ?? join('.vcp-exp', 'runs', spec.name, trial.id));
  const { backbone, method } = await loadMethod(methodName, model);
  try {
    // Built before training so bad prompts fail fast; it shares (and sees) the trained Variables.
    const evalMethod = withEvalPrompts(method, evaluation.prompts);
    const cache =
      options.featureCache === false
        ? undefined
        : new FeatureCache({ dir: options.featureCache ?? join(cacheRoot(), 'features') });
    const extractor = new FeatureExtractor({
      clip: backbone.clip,
      weightsHash: backbone.sha256,
      request: method.features,
      cache,
      chunkSize: train.micro_batch,
    });

    const dataset = await openCheckedDataset(ds);
    const samples = samplesOfSplit(dataset, ds.split);
    log(
      `train: ${samples.length} images of ${dataset.products().length} products (${ds.root}, ${ds.split}), ${train.epochs} epochs, batch ${train.batch_size} (micro ${train.micro_batch})`,
    );
    const started = performance.now();
    const result = await trainMethod({
      method,
      extractor,
      samples,
      seed: trial.seed,
      schedule: train,
      onEpoch: (e) =>
        log(
          `epoch ${e.epoch + 1}/${train.epochs}: loss ${e.loss.toFixed(4)} (${((performance.now() - started) / 1000).toFixed(1)} s)`,
        ),
    });
    await mkdir(out, { recursive: true });
    const checkpointDir = join(out, 'checkpoint');
    await saveCheckpoint(
      checkpointDir,
      method,
      { sha256: backbone.sha256, name: backbone.name },
      { trial: trial.id, training_key: trial.trainingKey, seed: trial.seed, losses: result.losses },
    );
    log(`checkpoint: ${checkpointDir}`);

    if (evaluation.prompts !== null)
      log(`eval: ${evaluation.prompts.length} test-time prompt pair(s) from eval.prompts`);
    const evaluations: DatasetEvaluation[] = [];
    for (const d of evaluation.datasets) {
      const evalSet = await openCheckedDataset(d);
      const res = await evaluateDataset({
        method: evalMethod,
        extractor,
        dataset: evalSet,
        pro: evaluation.pro,
        batchSize: train.micro_batch,
      });
      evaluations.push(res);
      console.log(
        `\n${d.name}: metrics (%), ${res.images} images, ${res.msPerImage.toFixed(1)} ms/image`,
      );
      console.log(table(res.products, res.mean.mean));
    }
    const stats = extractor.stats;
    log(`\nfeatures: ${stats.hits} cache hits, ${stats.misses} misses, ${stats.encoded} encoded`);
    await writeFile(
      join(out, 'metrics.json'),
      `${JSON.stringify({ trial: trial.id, losses: result.losses, epochLosses: result.epochLosses, evalPrompts: evaluation.prompts, evaluations }, null, 2)}\n`,
    );
  } finally {
    method.dispose();
    backbone.clip.dispose();
  }
}
