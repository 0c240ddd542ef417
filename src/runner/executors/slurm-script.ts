/**
 * How a sweep's pending trials become Slurm job arrays, and the job script of each array.
 *
 * Trainings go first: level 0 holds the first pending trial of every training key (it trains
 * and saves the checkpoint, or reuses one that exists); level k holds the k-th trial of the
 * keys that have one more (evaluation-only: it reuses that checkpoint). Within a level the
 * array task id is the index of the training key, so every later level is one more array
 * with `--dependency=aftercorr:<level 0>`: its task i starts as soon as task i of level 0
 * (its training) succeeded, while other trainings still run. One array with a dependency per
 * task is not expressible in Slurm, and one `afterok` on the whole training array would make
 * every evaluation wait for the slowest training (and never run if any training failed).
 * With `--kill-on-invalid-dep=yes` the evaluations of a failed training are cancelled
 * (reason DependencyNeverSatisfied) instead of pending forever.
 */
import type { SlurmResources, Trial } from '../spec-types.js';

export interface ArrayTask {
  /** Array task id: the index of the trial's training key among the pending trials. */
  taskId: number;
  trial: Trial;
  /** The level-0 trial whose training this one reuses (levels ≥ 1). */
  after?: Trial;
}

export interface ArrayLevel {
  level: number;
  tasks: ArrayTask[];
}

/** Splits pending trials into levels (see the module comment); order within a key is kept. */
export function arrayLevels(trials: readonly Trial[]): ArrayLevel[] {
  const keys = new Map<string, Trial[]>();
  for (const t of trials) {
    const group = keys.get(t.trainingKey);
    if (group) group.push(t);
    else keys.set(t.trainingKey, [t]);
  }
  const levels: ArrayLevel[] = [];
  [...keys.values()].forEach((group, taskId) =>
    group.forEach((trial, level) => {
      levels[level] ??= { level, tasks: [] };
      levels[level].tasks.push({ taskId, trial, after: level > 0 ? group[0] : undefined });
    }),
  );
  return levels;
}

/** Task ids as sbatch --array wants them: "0-3,5,7-9%2". */
export function arraySpec(taskIds: readonly number[], parallelism: number): string {
  const ids = [...new Set(taskIds)].sort((a, b) => a - b);
  const ranges: string[] = [];
  for (let i = 0; i < ids.length;) {
    let j = i;
    while (j + 1 < ids.length && ids[j + 1] === ids[j] + 1) j++;
    ranges.push(i === j ? `${ids[i]}` : `${ids[i]}-${ids[j]}`);
    i = j + 1;
  }
  return `${ranges.join(',')}%${Math.max(1, Math.floor(parallelism))}`;
}

/** The sbatch options a spec's resources stand for. */
export function resourceOptions(r: SlurmResources): string[] {
  const out: string[] = [];
  if (r.partition) out.push(`--partition=${r.partition}`);
  if (r.account) out.push(`--account=${r.account}`);
  if (r.qos) out.push(`--qos=${r.qos}`);
  if (r.time) out.push(`--time=${r.time}`);
  if (r.cpus_per_task) out.push(`--cpus-per-task=${r.cpus_per_task}`);
  if (r.mem_gb) out.push(`--mem=${Math.ceil(r.mem_gb * 1024)}M`);
  if (r.gres) out.push(`--gres=${r.gres}`);
  else if (r.gpus) out.push(`--gres=gpu:${r.gpus}`);
  out.push(...(r.extra_sbatch ?? []));
  return out;
}

/** True when the resources ask for a GPU (the trial then runs on device gpu:0 of its task). */
export function wantsGpu(r: SlurmResources): boolean {
  return (r.gpus ?? 0) > 0 || /(^|,)gpu(:|,|$)/.test(r.gres ?? '');
}

/** A string as one single-quoted shell word. */
export function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

export interface ScriptInput {
  jobName: string;
  taskIds: readonly number[];
  parallelism: number;
  /** Directory of this array's files: task-<id>.json (job), task-<id>.out (Slurm output), work-<id>/. */
  dir: string;
  resources: SlurmResources;
  /** Level-0 array job id this array's tasks wait for, task by task. */
  afterArray?: string;
  /** The trial command without its job file (executors/trial-entry.ts). */
  command: { file: string; args: readonly string[] };
  /** Comment lines describing the array. */
  about: readonly string[];
}

/** Output file of a task, as --output writes it (%a = the task id). */
export function taskFile(
  dir: string,
  taskId: number | '%a',
  ext: 'json' | 'out' | 'events',
): string {
  return `${dir}/task-${taskId}.${ext}`;
}

/** Scratch directory of a task's trial (config, CSVs, pictures before upload), beside its files. */
export function taskWorkDir(dir: string, taskId: number): string {
  return `${dir}/work-${taskId}`;
}

/** The work directory of the task whose Slurm output is `logFile` (…/task-<id>.out). */
export function workDirOfLog(logFile: string): string | undefined {
  const m = /^(.*)\/task-(\d+)\.out$/.exec(logFile);
  return m ? taskWorkDir(m[1], Number(m[2])) : undefined;
}

export function batchScript(input: ScriptInput): string {
  const directives = [
    `--job-name=${input.jobName}`,
    `--array=${arraySpec(input.taskIds, input.parallelism)}`,
    `--output=${taskFile(input.dir, '%a', 'out')}`,
    // A requeued task appends to its output, so the first attempt's end stays readable.
    '--open-mode=append',
    ...resourceOptions(input.resources),
    ...(input.afterArray
      ? [`--dependency=aftercorr:${input.afterArray}`, '--kill-on-invalid-dep=yes']
      : []),
  ];
  const command = [input.command.file, ...input.command.args].map(shellQuote).join(' ');
  return [
    '#!/bin/bash',
    ...directives.map((d) => `#SBATCH ${d}`),
    ...input.about.map((line) => `# ${line}`),
    'set -eu',
    ...(input.resources.setup ?? []),
    `job=${shellQuote(input.dir)}/task-"$SLURM_ARRAY_TASK_ID".json`,
    'echo "vcp-exp: array task ${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID} (job $SLURM_JOB_ID) on $(hostname), restart ${SLURM_RESTART_COUNT:-0}, $(date -Is)"',
    `exec ${command} "$job"`,
    '',
  ].join('\n');
}

/** A Slurm job name from a spec name (letters, digits, ._-). */
export function jobName(specName: string, level: number): string {
  return `vcp-${specName.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 40)}-level${level}`;
}
