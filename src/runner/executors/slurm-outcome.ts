/**
 * What became of a submitted trial, from three witnesses: Slurm's record of its array task
 * (while slurmctld still holds it: MinJobAge after the end, and never for a task cancelled
 * while pending inside its array record), the trial's own MLflow run, and the task's Slurm
 * output file (slurmstepd writes why it stopped a job into it). Pure: the monitor gathers
 * the witnesses and applies the verdict.
 */
import type { RunStatus } from '../../tracking/types.js';
import type { OutcomeStatus } from './pool.js';
import { lastStepdMessage } from './slurm-parse.js';

/** States after which Slurm will not run the task again by itself. */
const TERMINAL = new Set([
  'COMPLETED',
  'FAILED',
  'CANCELLED',
  'TIMEOUT',
  'PREEMPTED',
  'NODE_FAIL',
  'BOOT_FAIL',
  'DEADLINE',
  'OUT_OF_MEMORY',
]);

export function isTerminalState(state: string): boolean {
  return TERMINAL.has(state);
}

/** States in which the task's process may be running. */
export function isRunningState(state: string): boolean {
  return ['RUNNING', 'COMPLETING', 'SIGNALING', 'STAGE_OUT', 'CONFIGURING'].includes(state);
}

export interface TaskWitnesses {
  /** Slurm's record, or undefined when squeue no longer lists the task. */
  slurm?: {
    state: string;
    reason: string;
    exitCode?: string;
    timeLimit?: string;
    /** The node the task was given; empty when it never left the queue. */
    node?: string;
  };
  run: { status: RunStatus; reason?: string };
  /** The Slurm output file's content, or undefined when there is none. */
  log?: string;
  logPath: string;
  /** The trial whose training this task waited for (dependency), if any. */
  afterTrial?: string;
}

export type Verdict =
  | { final: false }
  | {
      final: true;
      status: OutcomeStatus;
      /** Set when the run must be (re-)ended with this status and reason. */
      reason?: string;
      /** Why, in one line (the failure reason when the run is not changed). */
      summary: string;
      slurmState: string;
      slurmReason: string;
    };

const NOT_FINAL: Verdict = { final: false };

/** How the run should end for a Slurm state that stopped the task from outside. */
function stoppedBySlurm(
  state: string,
  detail: { reason: string; timeLimit?: string; afterTrial?: string; pending: boolean },
): { status: OutcomeStatus; reason: string } {
  const limit = detail.timeLimit ? ` (${detail.timeLimit})` : '';
  switch (state) {
    case 'TIMEOUT':
      return {
        status: 'FAILED',
        reason: `Slurm TIMEOUT: the trial hit its time limit${limit}; raise execution.slurm.time`,
      };
    case 'OUT_OF_MEMORY':
      return {
        status: 'FAILED',
        reason:
          'Slurm OUT_OF_MEMORY: the trial used more than its memory; raise execution.slurm.mem_gb',
      };
    case 'PREEMPTED':
      return { status: 'KILLED', reason: 'Slurm PREEMPTED: a higher-priority job took the node' };
    case 'NODE_FAIL':
    case 'BOOT_FAIL':
      return {
        status: 'KILLED',
        reason: `Slurm ${state}: the node failed${detail.reason ? ` (${detail.reason})` : ''}`,
      };
    case 'DEADLINE':
      return { status: 'KILLED', reason: 'Slurm DEADLINE: the job passed its deadline' };
    default:
      if (detail.reason === 'DependencyNeverSatisfied')
        return {
          status: 'KILLED',
          reason: `Slurm CANCELLED (DependencyNeverSatisfied): not run, the training it reuses${detail.afterTrial ? ` (trial ${detail.afterTrial})` : ''} did not finish`,
        };
      return {
        status: 'KILLED',
        reason: `Slurm CANCELLED${detail.reason ? ` (${detail.reason})` : ''}: scancel while ${detail.pending ? 'pending' : 'running'}`,
      };
  }
}

/** The Slurm state slurmstepd's "DUE TO" cause stands for. */
function stateOfCause(cause: string | undefined): string {
  switch (cause) {
    case 'TIME LIMIT':
      return 'TIMEOUT';
    case 'PREEMPTION':
      return 'PREEMPTED';
    case 'NODE FAILURE':
      return 'NODE_FAIL';
    case 'JOB REQUEUE':
      return 'REQUEUED';
    default:
      return 'CANCELLED';
  }
}

function tail(log: string | undefined, lines = 15): string {
  return (log ?? '').trimEnd().split('\n').slice(-lines).join('\n');
}

function finished(slurmState: string, slurmReason = ''): Verdict {
  return { final: true, status: 'FINISHED', summary: 'finished', slurmState, slurmReason };
}

/** Keeps the status and reason the trial process gave its run, adding Slurm's view. */
function asRunSays(
  run: TaskWitnesses['run'],
  slurmState: string,
  slurmReason: string,
): Verdict & { final: true } {
  const status: OutcomeStatus = run.status === 'KILLED' ? 'KILLED' : 'FAILED';
  return {
    final: true,
    status,
    summary: (run.reason ?? `${status} (Slurm ${slurmState})`).split('\n')[0],
    slurmState,
    slurmReason,
  };
}

export function judgeTask(w: TaskWitnesses): Verdict {
  const ended =
    w.run.status === 'FINISHED' || w.run.status === 'FAILED' || w.run.status === 'KILLED';
  if (w.slurm) {
    const { state } = w.slurm;
    if (!isTerminalState(state)) return NOT_FINAL;
    const slurmReason = [w.slurm.reason, w.slurm.exitCode ? `exit code ${w.slurm.exitCode}` : '']
      .filter(Boolean)
      .join(', ');
    // A FINISHED trial stays FINISHED, whatever happened to its process afterwards.
    if (w.run.status === 'FINISHED') return finished(state, slurmReason);
    if (state === 'COMPLETED') {
      if (ended) return asRunSays(w.run, state, slurmReason);
      const reason = `the Slurm task COMPLETED but its run was never ended (what it logged may wait in the journal; see ${w.logPath})\n${tail(w.log)}`;
      return {
        final: true,
        status: 'FAILED',
        reason,
        summary: reason.split('\n')[0],
        slurmState: state,
        slurmReason,
      };
    }
    if (state === 'FAILED') {
      if (ended) return asRunSays(w.run, state, slurmReason);
      const reason =
        w.log === undefined
          ? `the Slurm task FAILED (${slurmReason}) and wrote no output at ${w.logPath}: do the compute nodes see the state directory and execution.shared_dir at the same paths?`
          : `the Slurm task FAILED (${slurmReason}) before ending its run\n${tail(w.log)}`;
      return {
        final: true,
        status: 'FAILED',
        reason,
        summary: reason.split('\n')[0],
        slurmState: state,
        slurmReason,
      };
    }
    const stop = stoppedBySlurm(state, {
      reason: w.slurm.reason,
      timeLimit: w.slurm.timeLimit,
      afterTrial: w.afterTrial,
      pending: w.run.status === 'SCHEDULED' && !w.slurm.node,
    });
    return { final: true, ...stop, summary: stop.reason, slurmState: state, slurmReason };
  }

  // Slurm no longer lists the task: it ended more than MinJobAge ago, or it was cancelled
  // while still pending inside its array record (which leaves no trace in Slurm at all).
  if (w.run.status === 'FINISHED') return finished('VANISHED');
  const stepd = w.log === undefined ? undefined : lastStepdMessage(w.log);
  const stoppedState = stepd ? stateOfCause(stepd.cause) : undefined;
  if (stepd && stoppedState !== 'REQUEUED') {
    const stop = stoppedBySlurm(stoppedState!, { reason: '', pending: false });
    // The trial's own FAILED reason (its error) is more precise than "cancelled" unless Slurm's cause explains it.
    if (w.run.status === 'FAILED' && stoppedState === 'CANCELLED')
      return asRunSays(w.run, 'VANISHED', stepd.line);
    return {
      final: true,
      ...stop,
      reason: `${stop.reason} (from the Slurm output: ${stepd.line})`,
      summary: stop.reason,
      slurmState: stoppedState!,
      slurmReason: stepd.line,
    };
  }
  if (ended) return asRunSays(w.run, 'VANISHED', '');
  if (w.run.status === 'SCHEDULED' && w.log === undefined) {
    const reason =
      'cancelled while pending (scancel): Slurm keeps no record of an array task cancelled before it started, and it wrote no output';
    return {
      final: true,
      status: 'KILLED',
      reason,
      summary: reason,
      slurmState: 'VANISHED',
      slurmReason: 'no record, no output',
    };
  }
  const reason = `the Slurm task ended without ending its run, and Slurm no longer holds its record (MinJobAge)\n${tail(w.log)}`;
  return {
    final: true,
    status: 'FAILED',
    reason,
    summary: reason.split('\n')[0],
    slurmState: 'VANISHED',
    slurmReason: '',
  };
}
