/**
 * The calibration `vcp-exp plan` makes when no earlier runs tell what a trial costs: for each
 * feature key of the trials still to run (backbone weights, image size, layers), as many
 * calibration processes as the sweep runs workers, at once (src/runner/calibrate-main.ts),
 * on the spec's own data. A synthetic root not generated yet is stood in for by a small one
 * generated now (which also times the generation). Results are kept in the state directory
 * (`calibration.json`) for later plans on this machine; `plan --calibrate` measures again.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { generateSynthDataset, isSynthRoot, synthLayout } from '../datasets/synth.js';
import { UserError } from '../errors.js';
import { nodeArgsFor, sibling } from '../io/node-entry.js';
import type { BackendChoice } from '../model/backend.js';
import type { CalibrationJob, CalibrationMessage, CalibrationResult } from './calibrate-main.js';
import type { CostModel, TrialCosts } from './estimate.js';
import type { Trial } from './spec-types.js';

const CALIBRATE_MAIN = sibling(import.meta.url, 'calibrate-main');

/** Seconds one artifact upload is taken to cost (not measured: it depends on the server). */
export const UPLOAD_S = 0.05;
/** Seconds a trial's metrics, final uploads and exit are taken to cost (not measured). */
export const FINISH_S = 1;

export interface CalibrateOptions {
  /** The trials still to run (one calibration per feature key among them). */
  trials: readonly Trial[];
  workers: number;
  backend: BackendChoice;
  /** Measurement time per calibration process, load excluded (default 20 s). */
  budgetSeconds?: number;
  stateDir: string;
  /** Measure again even when calibration.json has this machine's costs. */
  fresh?: boolean;
  log?: (line: string) => void;
}

interface Stored {
  machine: string;
  entries: Record<string, { at: string; costs: TrialCosts; synthImageS?: number }>;
}

const machine = () => `${hostname()} (${availableParallelism()} CPUs)`;

function storeKey(trial: Trial, workers: number, backend: string): string {
  const c = trial.config;
  return JSON.stringify([
    trial.featureKey.id,
    backend,
    workers,
    c.train.micro_batch,
    c.eval.samples_per_product,
    c.model.heads ?? null,
  ]);
}

function readStored(file: string): Stored {
  try {
    const stored = JSON.parse(readFileSync(file, 'utf8')) as Stored;
    if (stored.machine === machine()) return stored;
  } catch {
    // none yet, or unreadable: measure
  }
  return { machine: machine(), entries: {} };
}

/** Per-product costs of sample pictures: their predictions plus their uploads. */
function samplesProductS(r: CalibrationResult, trial: Trial): number {
  const count = trial.config.eval.samples_per_product;
  if (count === 0) return 0;
  const layers = Array.isArray(trial.config.model.layers) ? trial.config.model.layers.length : 1;
  return r.samplesS + UPLOAD_S * (count * (3 + layers) + 1);
}

function mean(values: number[]): number {
  return values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
}

async function runCalibrations(
  job: CalibrationJob,
  processes: number,
  dir: string,
): Promise<{ results: CalibrationResult[]; spawnedAt: number }> {
  const file = join(dir, `job-${job.trial.featureKey.id}.json`);
  await writeFile(file, JSON.stringify(job));
  const spawnedAt = Date.now();
  const runs = Array.from({ length: processes }, async () => {
    let message: CalibrationMessage | undefined;
    const child = execa(process.execPath, [...nodeArgsFor(CALIBRATE_MAIN), file], {
      stdin: 'ignore',
      stdout: 'ignore',
      stderr: 'pipe',
      ipc: true,
      serialization: 'json',
      reject: false,
    });
    child.on('message', (m: unknown) => (message = m as CalibrationMessage));
    const result = await child;
    if (message?.type === 'result') return message.result;
    const why =
      message?.type === 'error'
        ? message.message
        : `the calibration process exited with code ${result.exitCode ?? '?'}${result.signal ? ` (${result.signal})` : ''}: ${String(result.stderr).trim().split('\n').slice(-5).join(' / ')}`;
    throw new UserError(`plan: calibrating ${job.trial.id} failed: ${why}`, {
      hint: 'vcp-exp run would fail the same way; fix the cause, or see vcp-exp train <spec> for one trial',
    });
  });
  return { results: await Promise.all(runs), spawnedAt };
}

/** Costs per feature key of the trials, measured now (or as measured earlier on this machine). */
export async function calibrate(options: CalibrateOptions): Promise<CostModel> {
  const log = options.log ?? (() => undefined);
  const storeFile = join(options.stateDir, 'calibration.json');
  const stored = readStored(storeFile);
  const processes = Math.max(1, Math.min(options.workers, options.trials.length));
  const representatives = new Map<string, Trial>();
  for (const t of options.trials)
    if (!representatives.has(t.featureKey.id)) representatives.set(t.featureKey.id, t);
  const model: CostModel = { byFeatureKey: {}, measuredWorkers: processes, source: '' };
  const scratch = await mkdtemp(join(tmpdir(), 'vcp-plan-'));
  const when: string[] = [];
  try {
    const substitutes: Record<string, string> = {};
    for (const [featureKey, trial] of representatives) {
      const key = storeKey(trial, processes, options.backend);
      const known = options.fresh ? undefined : stored.entries[key];
      if (known) {
        model.byFeatureKey[featureKey] = known.costs;
        model.synthImageS ??= known.synthImageS;
        when.push(known.at);
        continue;
      }
      const roots = [
        ...(trial.config.train.dataset ? [trial.config.train.dataset.root] : []),
        ...trial.config.eval.datasets.map((d) => d.root),
      ];
      for (const root of roots) {
        if (existsSync(root) || substitutes[root] || !isSynthRoot(root)) continue;
        // A small stand-in of the synthetic data run will generate; it also times generation.
        const dir = join(scratch, `synth-${Object.keys(substitutes).length}`);
        const input = { trainGood: 4, testGood: 2, testDefect: 1 };
        const started = performance.now();
        const summary = await generateSynthDataset(dir, input);
        model.synthImageS = (performance.now() - started) / 1000 / Math.max(1, summary.files);
        substitutes[root] = dir;
      }
      log(
        `calibrating ${trial.featureKey.weights} at ${trial.featureKey.image_size} px: ${processes} process${processes === 1 ? '' : 'es'} at once, as the sweep's workers (vcp-exp plan --calibrate measures again later) …`,
      );
      const { results, spawnedAt } = await runCalibrations(
        {
          trial,
          backend: options.backend,
          budgetSeconds: options.budgetSeconds ?? 20,
          substitutes,
        },
        processes,
        scratch,
      );
      const costs: TrialCosts = {
        startupS: mean(results.map((r) => (r.timeOrigin - spawnedAt) / 1000 + r.loadedAfterS)),
        trainImageS: mean(results.map((r) => r.trainImageS)),
        trainWarmupS: mean(results.map((r) => r.trainWarmupS)),
        evalEncodeImageS: mean(results.map((r) => r.evalEncodeImageS)),
        evalCachedImageS: mean(results.map((r) => r.evalCachedImageS)),
        evalWarmupS: mean(results.map((r) => r.evalWarmupS)),
        samplesProductS: mean(results.map((r) => samplesProductS(r, trial))),
        finishS: FINISH_S,
      };
      model.byFeatureKey[featureKey] = costs;
      const at = new Date().toISOString();
      when.push(at);
      stored.entries[key] = { at, costs, synthImageS: model.synthImageS };
    }
    await mkdir(options.stateDir, { recursive: true });
    await writeFile(storeFile, `${JSON.stringify(stored, null, 2)}\n`);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  const oldest = when.sort()[0];
  model.source = `measured on this machine (${machine()}) ${oldest ? `at ${oldest.slice(0, 16).replace('T', ' ')} UTC` : ''} with ${processes} process${processes === 1 ? '' : 'es'} at once`;
  if (model.synthImageS === undefined && options.trials.some((t) => missingSynth(t)))
    model.synthImageS = 0;
  return model;
}

function missingSynth(trial: Trial): boolean {
  return [trial.config.train.dataset?.root, ...trial.config.eval.datasets.map((d) => d.root)].some(
    (r) => r !== undefined && !existsSync(r) && isSynthRoot(r),
  );
}

/** Images `vcp-exp run` generates first for the synthetic roots that do not exist yet. */
export function synthImagesToGenerate(trials: readonly Trial[]): number {
  const roots = new Set(
    trials.flatMap((t) =>
      [t.config.train.dataset?.root, ...t.config.eval.datasets.map((d) => d.root)].filter(
        (r): r is string => r !== undefined && !existsSync(r) && isSynthRoot(r),
      ),
    ),
  );
  const perRoot = synthLayout().reduce(
    (n, p) => n + p.train + 2 * Object.values(p.test).reduce((a, b) => a + b, 0) - p.test.good,
    0,
  );
  return roots.size * perRoot;
}
