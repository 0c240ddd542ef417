/**
 * `vcp-exp run <spec>` and `vcp-exp rerun <spec> --seeds N`: run a sweep's missing trials
 * (locally, or on Slurm with --executor slurm) and track them in MLflow. A second `run` of the
 * same spec resumes: FINISHED trials are skipped, every other one runs again, except that
 * trials still queued or running in Slurm are followed, not submitted again; the exit is
 * non-zero while any trial of the spec has no FINISHED run.
 */
import { UserError } from '../errors.js';
import { BACKEND_CHOICES, type BackendChoice } from '../model/backend.js';
import { planSpec } from '../runner/plan.js';
import { chooseProgress } from '../runner/progress.js';
import { loadSpecWithSeeds } from '../runner/reruns.js';
import { loadSpec } from '../runner/spec.js';
import type { Spec } from '../runner/spec-types.js';
import { SYNTH_ROOT_NOTE } from '../runner/spec.js';
import { checkSweep, runSweep } from '../runner/sweep.js';
import { plural } from '../io/wording.js';
import { formatPlan } from './plan.js';

export interface RunCommandOptions {
  backend?: string;
  workers?: number | string;
  failFast?: boolean;
  progress?: string;
  trackingUri?: string;
  /** `key=value` overrides of the spec (src/runner/overrides.ts). */
  overrides?: readonly string[];
  executor?: string;
  detach?: boolean;
  /** rerun: seeds per configuration. */
  seeds?: number | string;
  featureCacheGb?: number | string;
}

/** `--feature-cache-gb`: a number ≥ 0, or absent. */
export function parseCacheGb(value: number | string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const gb = Number(value);
  if (!Number.isFinite(gb) || gb < 0)
    throw new UserError(`--feature-cache-gb: got ${String(value)}, expected a number of GB ≥ 0`, {
      exitCode: 2,
      hint: 'e.g. --feature-cache-gb 40',
    });
  return gb;
}

function parseOptions(spec: Spec, options: RunCommandOptions) {
  const backend = options.backend && options.backend !== 'auto' ? options.backend : undefined;
  if (backend !== undefined && !(BACKEND_CHOICES as readonly string[]).includes(backend)) {
    throw new UserError(
      `--backend: got "${backend}", expected one of ${BACKEND_CHOICES.join(', ')}`,
      { exitCode: 2 },
    );
  }
  const workers = options.workers === undefined ? undefined : Number(options.workers);
  if (workers !== undefined && (!Number.isInteger(workers) || workers < 1)) {
    throw new UserError(`--workers: got ${String(options.workers)}, expected an integer ≥ 1`, {
      exitCode: 2,
    });
  }
  if (options.progress !== undefined && !['plain', 'fancy'].includes(options.progress)) {
    throw new UserError(`--progress: got "${options.progress}", expected plain or fancy`, {
      exitCode: 2,
    });
  }
  const executor = options.executor ?? spec.execution.executor;
  if (executor !== 'local' && executor !== 'slurm') {
    throw new UserError(`--executor: got "${executor}", expected local or slurm`, {
      exitCode: 2,
    });
  }
  if (options.detach && executor !== 'slurm') {
    throw new UserError('--detach only applies to the slurm executor', {
      exitCode: 2,
      hint: 'add --executor slurm, or set execution.executor: slurm in the spec',
    });
  }
  return {
    spec,
    workers,
    backend: backend as BackendChoice | undefined,
    failFast: Boolean(options.failFast),
    progress: chooseProgress(options.progress),
    trackingUri: options.trackingUri,
    featureCacheGb: parseCacheGb(options.featureCacheGb),
    executor: executor as 'local' | 'slurm',
    detach: Boolean(options.detach),
  };
}

/**
 * Nothing starts (no MLflow run, no trial process) while the trials need weights or datasets
 * that are not here: the plan is printed and the error names each missing thing and its fix.
 */
async function requireEverything(spec: Spec): Promise<void> {
  const plan = await planSpec(spec);
  if (plan.missing.length === 0) return;
  console.log(formatPlan(plan, false, 'time: vcp-exp plan estimates it once everything is here'));
  throw new UserError(
    `${spec.file}: the trials need what is not on this machine:\n${plan.missing.map((m) => `  - ${m}`).join('\n')}`,
    {
      hint: `get it, then run the same command again (vcp-exp plan ${spec.file} shows the trials)`,
    },
  );
}

/**
 * The spec's warnings, but not that a synthetic root does not exist yet: that one is for
 * `plan`; `run` generates it (and says so) under its lock.
 */
function prepare(spec: Spec): void {
  for (const w of spec.warnings) if (!w.includes(SYNTH_ROOT_NOTE)) console.error(`warning: ${w}`);
}

export async function runCommand(file: string, options: RunCommandOptions): Promise<void> {
  const spec = await loadSpec(file, { overrides: options.overrides });
  const sweep = parseOptions(spec, options);
  prepare(spec);
  await requireEverything(spec);
  checkSweep(await runSweep(sweep), file);
}

export async function rerunCommand(file: string, options: RunCommandOptions): Promise<void> {
  if (options.seeds === undefined)
    throw new UserError('rerun: --seeds <n> is required (seeds per configuration)', {
      exitCode: 2,
    });
  const { spec, added } = await loadSpecWithSeeds(file, Number(options.seeds), options.overrides);
  console.log(
    added.length === 0
      ? `${file} already has ${plural(spec.seeds.length, 'seed')} per configuration`
      : `adding ${plural(added.length, 'seed')} ${added.join(', ')} (seeds now ${spec.seeds.join(', ')}); vcp-exp report ${file} includes them`,
  );
  const sweep = parseOptions(spec, options);
  prepare(spec);
  await requireEverything(spec);
  checkSweep(
    await runSweep({
      ...sweep,
      params: { 'rerun.seeds': spec.seeds.join(','), 'rerun.added_seeds': added.join(',') || '-' },
    }),
    file,
  );
}
