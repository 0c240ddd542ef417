/**
 * Shared set-up of the reliability tests (issue 12): a tiny sweep (the tiny CLIP, 32-px
 * images, one epoch on a few synthetic images) in a temporary directory, the real CLI run as
 * a child process whose output can be awaited line by line, and the MLflow queries the tests
 * assert on (FINISHED runs per trial id).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSynthDataset } from '../../src/datasets/synth.js';
import { loadSpec } from '../../src/runner/spec.js';
import type { MlflowClient } from '../../src/tracking/client.js';
import { projectRoot } from '../../src/tracking/server.js';
import type { Run } from '../../src/tracking/types.js';

export const CLI = join(projectRoot(), 'bin/vcp-exp.js');
export const TINY_CLIP = join(projectRoot(), 'assets/clip/tiny-clip');

export interface TinySpecOptions {
  name: string;
  /** The sweep section (YAML flow or block), default: heads × alpha (2 trainings, 4 trials). */
  sweep?: string;
  root?: string;
  /** Root of the eval dataset (default: the train root). */
  evalRoot?: string;
  evalProducts?: string;
  workers?: number;
  epochs?: number;
}

export function tinySpec(o: TinySpecOptions): string {
  const root = o.root ?? './synth';
  return `name: ${o.name}
method: vcp-clip
base:
  backbone: ${TINY_CLIP}
  activation: quick_gelu
  image_size: 32
  layers: [1, 2, 3]
  n_ctx: 2
  deep_prompt_len: 1
  pre_vcp: false
  topk: 16
sweep:
${o.sweep ?? '  grid:\n    heads: [1, 2]\n    alpha: [0.5, 0.75]'}
seeds: 1
train:
  dataset: { format: mvtec, root: ${root} }
  epochs: ${o.epochs ?? 1}
  batch_size: 4
  augment: { mosaic: 0 }
eval:
  datasets:
    - { name: synth, format: mvtec, root: ${o.evalRoot ?? root}${o.evalProducts ? `, products: ${o.evalProducts}` : ''} }
execution: { executor: local, workers: ${o.workers ?? 1} }
`;
}

/** A temporary directory with the tiny synthetic dataset in `synth/` (two products, 17 images). */
export async function tinyProject(label: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), `vcp-rel-${label}-`));
  await generateSynthDataset(join(dir, 'synth'), {
    products: ['carpet', 'bottle'],
    size: 64,
    trainGood: 1,
    testGood: 3,
    testDefect: 1,
  });
  return dir;
}

export function writeSpec(dir: string, file: string, text: string): string {
  writeFileSync(join(dir, file), text);
  return file;
}

export interface Runner {
  pid: number;
  lines: string[];
  exited: Promise<number | null>;
  waitFor(predicate: (lines: string[]) => boolean, what?: string): Promise<void>;
  output(): string;
}

export interface CliOptions {
  cwd: string;
  stateDir: string;
  /** Extra environment (MLFLOW_TRACKING_URI is cleared unless given here). */
  env?: NodeJS.ProcessEnv;
}

function cliEnv(o: CliOptions): NodeJS.ProcessEnv {
  return {
    ...process.env,
    MLFLOW_TRACKING_URI: '',
    VCP_EXP_STATE_DIR: o.stateDir,
    VCP_EXP_MIN_FREE_MB: '1',
    ...o.env,
  };
}

/** Starts `vcp-exp <args>` in its own process group; its output is collected line by line. */
export function startCli(args: string[], o: CliOptions): Runner {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: o.cwd,
    detached: true,
    env: cliEnv(o),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const waiters: { predicate: (l: string[]) => boolean; resolve: () => void }[] = [];
  const onData = (chunk: Buffer) => {
    lines.push(...chunk.toString().split('\n').filter(Boolean));
    for (const w of [...waiters]) {
      if (!w.predicate(lines)) continue;
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exited = new Promise<number | null>((resolve) =>
    child.on('close', (code) => resolve(code)),
  );
  return {
    pid: child.pid!,
    lines,
    exited,
    output: () => lines.join('\n'),
    waitFor: (predicate, what = 'the expected output') =>
      new Promise<void>((resolve, reject) => {
        if (predicate(lines)) return resolve();
        waiters.push({ predicate, resolve });
        void exited.then(() =>
          setTimeout(
            () => reject(new Error(`vcp-exp exited before ${what}:\n${lines.join('\n')}`)),
            200,
          ),
        );
      }),
  };
}

/** Runs `vcp-exp <args>` to its end. */
export function runCli(
  args: string[],
  o: CliOptions,
): { status: number | null; stdout: string; stderr: string; output: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    cwd: o.cwd,
    env: cliEnv(o),
    encoding: 'utf8',
    timeout: 280_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, output: r.stdout + r.stderr };
}

export const tag = (run: Run, key: string) => run.data.tags.find((t) => t.key === key)?.value;
export const metric = (run: Run, key: string) => run.data.metrics.find((m) => m.key === key)?.value;

/** Every run of an experiment (none when it does not exist). */
export async function experimentRuns(client: MlflowClient, name: string): Promise<Run[]> {
  const experiment = await client.getExperimentByName(name);
  if (!experiment) return [];
  return client.searchRuns({ experimentIds: [experiment.experiment_id], runViewType: 'ALL' });
}

export const trialRuns = (runs: Run[]) => runs.filter((r) => tag(r, 'vcp.run_kind') === 'trial');

/** Trial id → statuses of its runs, e.g. {abc: ['KILLED', 'FINISHED']}. */
export function statusesByTrial(runs: Run[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const r of trialRuns(runs).sort(
    (a, b) => (a.info.start_time ?? 0) - (b.info.start_time ?? 0),
  ))
    (out[tag(r, 'vcp.trial_id') ?? '?'] ??= []).push(r.info.status);
  return out;
}

/** Asserts that each of `ids` has exactly one FINISHED run. */
export function assertOneFinishedEach(runs: Run[], ids: readonly string[], context = ''): void {
  const byTrial = statusesByTrial(runs);
  for (const id of ids) {
    const finished = (byTrial[id] ?? []).filter((s) => s === 'FINISHED').length;
    assert.equal(
      finished,
      1,
      `trial ${id}: ${finished} FINISHED runs (${JSON.stringify(byTrial)})\n${context}`,
    );
  }
}

/** The trial ids of a spec file (`vcp-exp plan` lists the same). */
export async function trialIds(dir: string, spec: string): Promise<string[]> {
  return (await loadSpec(join(dir, spec))).trials.map((t) => t.id);
}
