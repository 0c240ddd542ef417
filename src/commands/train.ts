/**
 * `vcp-exp train <spec.yaml> [--out DIR] [--retrain]`: one trial of a spec through the same
 * pipeline as a runner's trial (src/runner/trial.ts: load, train or reuse, evaluate, record),
 * recorded into a directory instead of MLflow and reported on the terminal. Features and
 * checkpoints are shared with `vcp-exp run` (src/runner/state-dirs.ts). A spec that expands to
 * several trials belongs to `vcp-exp run`.
 */
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { UserError } from '../errors.js';
import { describeBackend, initBackend, type BackendChoice } from '../model/backend.js';
import { CHECKPOINT_CONFIG, CHECKPOINT_WEIGHTS } from '../model/checkpoint.js';
import type { DatasetEvaluation } from '../model/infer.js';
import { pinGroups } from '../model/feature-cache.js';
import { resolveCacheBudget } from '../runner/cache-budget.js';
import { loadSpec } from '../runner/spec.js';
import { checkpointsDir, featureCacheDir } from '../runner/state-dirs.js';
import { describeUndefined, runTrial } from '../runner/trial.js';
import type { TrialEvent } from '../runner/trial-events.js';
import { DirectoryRun } from '../tracking/directory-run.js';
import { resolveStateDir } from '../tracking/server.js';
import { table } from './metrics.js';
import { parseCacheGb } from './run.js';
import { plural } from '../io/wording.js';

export interface TrainCommandOptions {
  backend: string;
  out?: string;
  /** Train even when a checkpoint of the trial's training key exists. */
  retrain?: boolean;
  quiet?: boolean;
  featureCacheGb?: number | string;
}

export async function trainCommand(specFile: string, options: TrainCommandOptions): Promise<void> {
  const spec = await loadSpec(specFile);
  for (const warning of spec.warnings) console.error(`warning: ${warning}`);
  if (spec.trials.length !== 1) {
    throw new UserError(
      `${specFile}: expands to ${plural(spec.trials.length, 'trial')}; \`vcp-exp train\` runs exactly one`,
      {
        hint: `run the sweep with: vcp-exp run ${specFile} (or remove the sweep axes / extra seeds)`,
      },
    );
  }
  const trial = spec.trials[0];
  if (!trial.config.train.dataset) {
    throw new UserError(
      `${specFile}: train.checkpoint names a checkpoint to evaluate; \`vcp-exp train\` trains`,
      { hint: `evaluate it with: vcp-exp run ${specFile}` },
    );
  }
  const log = (line: string) => !options.quiet && console.log(line);
  const backendInfo = await initBackend(options.backend as BackendChoice);
  log(`backend: ${describeBackend(backendInfo)}`);
  const out = resolve(options.out ?? join('.vcp-exp', 'runs', spec.name, trial.id));
  const stateDir = resolveStateDir();
  const prompts = trial.config.eval.prompts;
  if (prompts !== null) log(`eval: ${prompts.length} test-time prompt pair(s) from eval.prompts`);

  const losses: number[] = [];
  const epochLosses: number[] = [];
  const evaluations: DatasetEvaluation[] = [];
  const started = performance.now();
  const seconds = () => ((performance.now() - started) / 1000).toFixed(1);
  const onEvent = (event: TrialEvent): void => {
    if (event.type === 'step') losses.push(event.loss);
    else if (event.type === 'epoch') {
      epochLosses.push(event.loss);
      log(
        `epoch ${event.epoch + 1}/${event.epochs}: loss ${event.loss.toFixed(4)} (${seconds()} s)`,
      );
    } else if (event.type === 'phase' && event.phase !== 'evaluate')
      log(`${event.phase}: ${event.detail}`);
    else if (event.type === 'images')
      log(
        `evaluate ${event.dataset}: ${event.done}/${event.total} images, ${event.rate.toFixed(1)} images/s`,
      );
  };
  const cacheDir = featureCacheDir(stateDir);
  const budget = await resolveCacheBudget({
    cliGb: parseCacheGb(options.featureCacheGb),
    env: process.env,
    spec,
    dir: cacheDir,
  });
  const unpin = await pinGroups(cacheDir, `train-${process.pid}`, [trial.featureKey.id]);
  const [summary] = await runTrial({
    job: {
      members: [{ trial, workDir: out }],
      checkpointsDir: checkpointsDir(stateDir),
      featureCacheDir: cacheDir,
      featureCache: { maxBytes: budget.bytes, dtype: spec.execution.feature_cache.dtype },
      reuseCheckpoint: !options.retrain,
      backend: backendInfo.name,
      device: 'cpu',
      samplesPerProduct: 0,
    },
    recorders: [new DirectoryRun(out)],
    emit: onEvent,
    backendInfo,
    onEvaluation: (_member, name, res) => {
      evaluations.push(res);
      console.log(
        `\n${name}: metrics (%), ${res.images} images, ${res.msPerImage.toFixed(1)} ms/image`,
      );
      console.log(table(res.products, res.mean.mean));
      if (res.undefined.length > 0) console.log(describeUndefined(res.undefined));
    },
  }).finally(unpin);
  const checkpoint = join(out, 'checkpoint');
  await mkdir(checkpoint, { recursive: true });
  for (const file of [CHECKPOINT_CONFIG, CHECKPOINT_WEIGHTS])
    await copyFile(join(summary.checkpoint, file), join(checkpoint, file));
  log(
    `\ncheckpoint: ${checkpoint}${summary.trained ? '' : ` (reused training ${trial.trainingKey}; --retrain trains again)`}`,
  );
  const { hits, misses, encoded } = summary.cache;
  log(`features: ${hits} cache hits, ${misses} misses, ${encoded} encoded`);
  await writeFile(
    join(out, 'metrics.json'),
    `${JSON.stringify({ trial: trial.id, trained: summary.trained, losses, epochLosses, evalPrompts: prompts, evaluations }, null, 2)}\n`,
  );
}
