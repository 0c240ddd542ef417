/**
 * `vcp-exp status <spec> [--once]`: follow the spec's trials that are in Slurm until they end
 * (after `vcp-exp run --detach`, a Ctrl-C or a lost login session), or print every trial's
 * state once. Exit code: 0 all trials FINISHED, 3 some still queued or running in Slurm,
 * 1 otherwise (failed, killed or not run).
 */
import { UserError } from '../errors.js';
import { formatStatus, slurmStatus } from '../runner/executors/slurm-status.js';
import { chooseProgress } from '../runner/progress.js';
import { loadSpec } from '../runner/spec.js';

export interface StatusCommandOptions {
  once?: boolean;
  progress?: string;
  trackingUri?: string;
}

export async function statusCommand(file: string, options: StatusCommandOptions): Promise<void> {
  if (options.progress !== undefined && !['plain', 'fancy'].includes(options.progress))
    throw new UserError(`--progress: got "${options.progress}", expected plain or fancy`, {
      exitCode: 2,
    });
  const spec = await loadSpec(file);
  const result = await slurmStatus({
    spec,
    once: Boolean(options.once),
    progress: chooseProgress(options.progress),
    trackingUri: options.trackingUri,
    log: (line) => console.log(line),
  });
  console.log(formatStatus(result.rows));
  const count = (state: string) => result.rows.filter((r) => r.state === state).length;
  console.log(
    `${spec.trials.length} trial(s): ${count('FINISHED')} finished, ${count('FAILED')} failed, ${count('KILLED')} killed, ${result.waiting.length} in Slurm, ${count('not run')} not run`,
  );
  if (result.waiting.length > 0)
    console.log(
      `still in Slurm (jobs ${result.jobs.join(', ')}): \`vcp-exp status ${file}\` follows them, \`scancel ${result.jobs.join(' ')}\` cancels them`,
    );
  process.exitCode = result.exitCode;
}
