/**
 * Slurm's commands as functions: sbatch, squeue, scontrol, sinfo, scancel. Only squeue and
 * scontrol are used to follow jobs (sacct would need Slurm's accounting database, which many
 * clusters and every small test cluster lack). A missing command or an unreachable
 * slurmctld is a UserError with Slurm's own message.
 */
import { userInfo } from 'node:os';
import { execa } from 'execa';
import { UserError } from '../../errors.js';
import {
  parseConfig,
  parseSbatchJobId,
  parseScontrolJobs,
  parseSqueue,
  SQUEUE_FORMAT,
  type QueuedTask,
} from './slurm-parse.js';

export const SLURM_COMMANDS = ['sbatch', 'squeue', 'scontrol', 'sinfo'] as const;

const INSTALL_HINT =
  'run vcp-exp on a machine that submits to your Slurm cluster (a login node), where sbatch, squeue, scontrol and sinfo are on PATH; on Debian/Ubuntu the client is `apt-get install slurm-client`';

export interface SlurmCommandResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/** Runs a Slurm command; a command that does not exist is a UserError naming it. */
export async function slurmCommand(
  command: string,
  args: readonly string[],
  options: { timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<SlurmCommandResult> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const r = await execa(command, args, {
    reject: false,
    timeout: timeoutMs,
    env: options.env,
    cwd: options.cwd,
    stdin: 'ignore',
  });
  if (r.code === 'ENOENT')
    throw new UserError(`Slurm's ${command} command was not found on PATH`, {
      hint: INSTALL_HINT,
    });
  if (r.timedOut)
    throw new UserError(
      `${command} ${args.join(' ')} did not answer within ${timeoutMs / 1000} s`,
      {
        hint: 'is the Slurm controller up? (scontrol ping)',
      },
    );
  return {
    stdout: String(r.stdout ?? ''),
    stderr: String(r.stderr ?? ''),
    exitCode: r.exitCode ?? 1,
  };
}

function failure(command: string, args: readonly string[], r: SlurmCommandResult): UserError {
  const said = (r.stderr || r.stdout).trim() || `exit code ${r.exitCode}`;
  return new UserError(`${command} ${args.join(' ')} failed: ${said}`, {
    hint: /contact|connect|Unable to/i.test(said)
      ? 'the Slurm controller does not answer: check `scontrol ping` and the cluster status'
      : undefined,
  });
}

/** Checks that the Slurm commands exist and slurmctld answers; returns its configuration. */
export async function slurmConfig(env?: NodeJS.ProcessEnv): Promise<Record<string, string>> {
  for (const command of SLURM_COMMANDS) {
    const r = await slurmCommand(command, ['--version'], { env });
    if (r.exitCode !== 0) throw failure(command, ['--version'], r);
  }
  const args = ['show', 'config'];
  const r = await slurmCommand('scontrol', args, { env });
  if (r.exitCode !== 0) throw failure('scontrol', args, r);
  return parseConfig(r.stdout);
}

/** Submits a job script; returns the job id, or throws with sbatch's own message. */
export async function sbatch(
  script: string,
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<string> {
  const r = await slurmCommand('sbatch', ['--parsable', script], {
    ...options,
    timeoutMs: 120_000,
  });
  const id = r.exitCode === 0 ? parseSbatchJobId(r.stdout) : undefined;
  if (id === undefined)
    throw new UserError(
      `sbatch rejected the job ${script}:\n${(r.stderr || r.stdout).trim() || `exit code ${r.exitCode}`}`,
      {
        hint: 'fix execution.slurm in the spec (partition, account, qos, time, gres, extra_sbatch) so that sbatch accepts it',
      },
    );
  return id;
}

/** The login name Slurm files the jobs under. */
export function currentUser(): string {
  try {
    return userInfo().username;
  } catch {
    return String(process.getuid?.() ?? '');
  }
}

/**
 * Every array task of `users` (default: the current user) that slurmctld still holds,
 * pending ones one by one. By user, not by job id: squeue fails on a single forgotten id.
 */
export async function queuedTasks(
  users: readonly string[] = [],
  env?: NodeJS.ProcessEnv,
): Promise<Map<string, QueuedTask>> {
  const who = users.length > 0 ? `--user=${users.join(',')}` : '--me';
  const args = ['--noheader', '--array', '--states=all', who, `--format=${SQUEUE_FORMAT}`];
  const r = await slurmCommand('squeue', args, { env });
  if (r.exitCode !== 0) throw failure('squeue', args, r);
  return new Map(parseSqueue(r.stdout).map((t) => [t.jobId, t]));
}

/** scontrol's record of one job (e.g. "123_4"), or undefined when slurmctld forgot it. */
export async function jobRecord(
  jobId: string,
  env?: NodeJS.ProcessEnv,
): Promise<Record<string, string> | undefined> {
  const r = await slurmCommand('scontrol', ['--oneliner', 'show', 'job', jobId], { env });
  if (r.exitCode !== 0) return undefined;
  return parseScontrolJobs(r.stdout)[0];
}

/** Partition names (sinfo); the default one is marked by sinfo with '*', removed here. */
export async function partitions(
  env?: NodeJS.ProcessEnv,
): Promise<{ names: string[]; default?: string }> {
  const args = ['--noheader', '--format=%P'];
  const r = await slurmCommand('sinfo', args, { env });
  if (r.exitCode !== 0) throw failure('sinfo', args, r);
  const raw = [
    ...new Set(
      r.stdout
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean),
    ),
  ];
  return {
    names: raw.map((p) => p.replace(/\*$/, '')),
    default: raw.find((p) => p.endsWith('*'))?.replace(/\*$/, ''),
  };
}

/** The gres strings (sinfo %G) of the nodes of a partition (all when undefined). */
export async function partitionGres(
  partition: string | undefined,
  env?: NodeJS.ProcessEnv,
): Promise<string[]> {
  const args = ['--noheader', '--format=%G', ...(partition ? [`--partition=${partition}`] : [])];
  const r = await slurmCommand('sinfo', args, { env });
  if (r.exitCode !== 0) throw failure('sinfo', args, r);
  return r.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
}

export async function scancel(jobIds: readonly string[], env?: NodeJS.ProcessEnv): Promise<void> {
  if (jobIds.length === 0) return;
  const r = await slurmCommand('scancel', [...jobIds], { env });
  if (r.exitCode !== 0) throw failure('scancel', jobIds, r);
}
