/**
 * What a sweep must still run, from what MLflow already holds: trials with a FINISHED run are
 * skipped; runs left RUNNING by a runner that died (SIGKILL, power loss) are marked KILLED;
 * a trial whose latest run FAILED is re-run only with `retryFailed` (a crash usually repeats),
 * while a KILLED one (stopped, interrupted) is re-run by default.
 */
import { hostname } from 'node:os';
import { isAlive } from '../tracking/server.js';
import { TAGS, type ExperimentLayout } from '../tracking/layout.js';
import type { Run, RunStatus } from '../tracking/types.js';
import { OWNER_TAGS } from './executors/local.js';
import type { FinishedTrialLookup } from './plan.js';
import type { Trial } from './spec-types.js';

const tagOf = (run: Run, key: string) => run.data.tags.find((t) => t.key === key)?.value;

/** True when the process that owns `run` (host + pid tags) is gone; runs of other hosts are left alone. */
export function isOrphan(
  run: Run,
  host = hostname(),
  alive: (pid: number) => boolean = isAlive,
): boolean {
  if (run.info.status !== 'RUNNING') return false;
  const pid = Number(tagOf(run, OWNER_TAGS.pid));
  return (
    tagOf(run, OWNER_TAGS.host) === host &&
    Number.isInteger(pid) &&
    pid > 0 &&
    (pid === process.pid ? false : !alive(pid))
  );
}

/** Marks the orphaned RUNNING runs (sweep and trial) of an experiment KILLED; returns them. */
export async function markOrphans(layout: ExperimentLayout, experimentId: string): Promise<Run[]> {
  const running = await layout.client.searchRuns({
    experimentIds: [experimentId],
    filter: `attributes.status = 'RUNNING'`,
  });
  const orphans = running.filter((r) => isOrphan(r));
  for (const run of orphans) {
    const pid = tagOf(run, OWNER_TAGS.pid);
    await layout.markEnded(
      run.info.run_id,
      'KILLED',
      `orphaned: its vcp-exp run process (pid ${pid} on ${hostname()}) died without ending it; marked by a later vcp-exp run`,
    );
  }
  return orphans;
}

export interface TrialHistory {
  finished: Set<string>;
  /** Latest status of every trial id that has runs. */
  latest: Map<string, { status: RunStatus; runId: string; reason?: string }>;
}

/** One search over the experiment's trial runs. */
export async function trialHistory(
  layout: ExperimentLayout,
  experimentId: string,
): Promise<TrialHistory> {
  const runs = await layout.listTrialRuns(experimentId); // oldest first
  const finished = new Set<string>();
  const latest = new Map<string, { status: RunStatus; runId: string; reason?: string }>();
  for (const run of runs) {
    const id = tagOf(run, TAGS.trialId);
    if (!id) continue;
    if (run.info.status === 'FINISHED') finished.add(id);
    latest.set(id, {
      status: run.info.status,
      runId: run.info.run_id,
      reason: tagOf(run, TAGS.failureReason),
    });
  }
  return { finished, latest };
}

export interface Selection {
  toRun: Trial[];
  finished: Trial[];
  /** Latest run FAILED and no --retry-failed. */
  failedBefore: Trial[];
}

export function selectTrials(
  trials: readonly Trial[],
  history: TrialHistory,
  retryFailed: boolean,
): Selection {
  const out: Selection = { toRun: [], finished: [], failedBefore: [] };
  for (const t of trials) {
    if (history.finished.has(t.id)) out.finished.push(t);
    else if (!retryFailed && history.latest.get(t.id)?.status === 'FAILED')
      out.failedBefore.push(t);
    else out.toRun.push(t);
  }
  return out;
}

/** A FinishedTrialLookup over one experiment (for `vcp-exp plan`). */
export function mlflowLookup(
  layout: ExperimentLayout,
  experimentName: string,
): FinishedTrialLookup {
  return async (ids) => {
    const experiment = await layout.client.getExperimentByName(experimentName);
    if (!experiment) return new Set();
    const { finished } = await trialHistory(layout, experiment.experiment_id);
    return new Set(ids.filter((id) => finished.has(id)));
  };
}
