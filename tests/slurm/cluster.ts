/**
 * The Slurm cluster the Slurm tests run against: the one-node cluster of
 * scripts/slurm/start-cluster.sh (started by .ci/run), or any cluster whose sbatch this
 * machine reaches, with an idle node and a short MinJobAge. In CI a missing cluster fails the
 * tests; elsewhere they skip with the reason and the command that starts one
 * (tests/requirements.ts).
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSynthDataset } from '../../src/datasets/synth.js';
import { parseConfig } from '../../src/runner/executors/slurm-parse.js';
import { projectRoot } from '../../src/tracking/server.js';
import { unavailable } from '../requirements.js';

export type Cluster = { ok: true; minJobAge: number; host: string } | { ok: false; reason: string };

/**
 * Whether a cluster answers with a usable node and a short MinJobAge, and the address the
 * test MLflow server listens on; in CI a missing one fails (tests/requirements.ts).
 */
export function slurmCluster(): Cluster {
  const fail = (reason: string): Cluster => ({
    ok: false,
    reason: unavailable('slurm-cluster', reason),
  });
  const info = spawnSync('sinfo', ['--noheader', '--format=%t'], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  if (info.error) return fail(`sinfo: ${info.error.message}`);
  if (info.status !== 0) return fail(`sinfo: ${(info.stderr || info.stdout).trim()}`);
  const states = info.stdout
    .split('\n')
    .map((s) => s.trim())
    .filter(Boolean);
  if (!states.some((s) => /^(idle|mix|alloc)/.test(s)))
    return fail(`no usable node (node states: ${states.join(', ') || 'none'})`);
  const config = parseConfig(
    execFileSync('scontrol', ['show', 'config'], { encoding: 'utf8', timeout: 20_000 }),
  );
  const minJobAge = Number.parseInt(config.MinJobAge ?? '300', 10);
  if (!(minJobAge > 0 && minJobAge <= 60))
    return fail(`MinJobAge is ${minJobAge} s: the re-attach test waits for Slurm to forget jobs`);
  const host = reachableAddress();
  if (!host) return fail('this machine has no non-loopback IPv4 address');
  return { ok: true, minJobAge, host };
}

/** An IPv4 address of this machine other than loopback (the test MLflow server listens there). */
export function reachableAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces()))
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return undefined;
}

export interface QueueRow {
  jobId: string;
  state: string;
  reason: string;
}

/** Array tasks of jobs `ids` as squeue lists them now. */
export function queue(ids: readonly string[]): QueueRow[] {
  const out = execFileSync(
    'squeue',
    ['--noheader', '--array', '--states=all', '--me', '--format=%F_%K|%T|%r'],
    { encoding: 'utf8', timeout: 20_000 },
  );
  return out
    .split('\n')
    .map((l) => l.trim().split('|'))
    .filter((f) => f.length === 3 && ids.includes(f[0].split('_')[0]))
    .map(([jobId, state, reason]) => ({ jobId, state, reason }));
}

export function scontrol(args: string[]): string {
  return execFileSync('scontrol', args, { encoding: 'utf8', timeout: 20_000 });
}

export function scancel(ids: readonly string[]): void {
  if (ids.length > 0) spawnSync('scancel', [...ids], { timeout: 20_000 });
}

/** Polls `check` every `everyMs` until it returns a value, or throws after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 180_000,
  everyMs = 500,
): Promise<T> {
  const started = Date.now();
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() - started > timeoutMs)
      throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A directory with a tiny synthetic dataset and a spec for the tiny CLIP run through Slurm. */
export async function tinySweep(
  name: string,
  sweep: string,
  options: { workers?: number; slurm?: string } = {},
): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), `vcp-slurm-${name}-`));
  await generateSynthDataset(join(dir, 'synth'), {
    products: ['carpet'],
    size: 64,
    trainGood: 1,
    testGood: 2,
    testDefect: 1,
  });
  writeFileSync(
    join(dir, 'spec.yaml'),
    `name: ${name}
method: vcp-clip
base:
  backbone: ${join(projectRoot(), 'assets/clip/tiny-clip')}
  activation: quick_gelu
  image_size: 32
  layers: [1, 2, 3]
  n_ctx: 2
  deep_prompt_len: 1
  pre_vcp: false
  topk: 16
${sweep}
train:
  dataset: { format: mvtec, root: ./synth }
  epochs: 1
  batch_size: 2
  augment: { mosaic: 0 }
eval:
  datasets:
    - { name: synth, format: mvtec, root: ./synth }
execution:
  executor: slurm
  workers: ${options.workers ?? 2}
  shared_dir: ./shared
  slurm: { ${options.slurm ?? 'time: "00:15:00", cpus_per_task: 1, mem_gb: 2, poll_seconds: 1'} }
`,
  );
  return dir;
}

const children = new Set<ReturnType<typeof spawn>>();

/** Stops every vcp-exp process a test started and that is still running (a failed test's). */
export function stopAll(): void {
  for (const child of children) child.kill('SIGKILL');
}

export interface Cli {
  lines: string[];
  exited: Promise<number | null>;
  output(): string;
}

/** Runs `vcp-exp <args>` in `cwd` with its state under `<cwd>/state`; output kept line by line. */
export function vcpExp(cwd: string, args: string[], env: NodeJS.ProcessEnv = {}): Cli {
  const child = spawn(process.execPath, [join(projectRoot(), 'bin/vcp-exp.js'), ...args], {
    cwd,
    env: {
      ...process.env,
      VCP_EXP_STATE_DIR: join(cwd, 'state'),
      MLFLOW_TRACKING_URI: '',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const onData = (chunk: Buffer) => lines.push(...chunk.toString().split('\n').filter(Boolean));
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exited = new Promise<number | null>((resolve) =>
    child.on('close', (code) => resolve(code)),
  );
  return { lines, exited, output: () => lines.join('\n') };
}
