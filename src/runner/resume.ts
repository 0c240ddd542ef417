/**
 * What a sweep must still run, from what MLflow already holds: trials with a FINISHED run are
 * skipped, every other one runs (KILLED, FAILED or never started: a sweep is done only when
 * each trial has a FINISHED run); runs left RUNNING by a runner that died (SIGKILL, power
 * loss) are marked KILLED; trial work directories left by runs that have ended are removed.
 */
import { readdir, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
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
  /** Every trial without a FINISHED run. */
  toRun: Trial[];
  finished: Trial[];
}

export function selectTrials(trials: readonly Trial[], history: TrialHistory): Selection {
  const out: Selection = { toRun: [], finished: [] };
  for (const t of trials) (history.finished.has(t.id) ? out.finished : out.toRun).push(t);
  return out;
}

/**
 * Removes `<state>/trials/<run id>` directories whose run has ended (or is unknown to this
 * server): a runner that died never cleaned up after its trials. A directory whose run is
 * still RUNNING (another sweep of this state directory) is kept.
 */
export async function removeStaleWorkDirs(
  layout: ExperimentLayout,
  stateDir: string,
): Promise<number> {
  const dir = join(stateDir, 'trials');
  const names = await readdir(dir).catch(() => [] as string[]);
  let removed = 0;
  for (const runId of names) {
    if (!/^[0-9a-f]{32}$/.test(runId)) continue;
    const run = await layout.client.getRun(runId).catch((error: unknown) =>
      // Not found: a run of another server or a deleted one; unreachable: decide later.
      (error as { status?: number }).status === 404 ? null : undefined,
    );
    if (run === undefined || run?.info.status === 'RUNNING') continue;
    await rm(join(dir, runId), { recursive: true, force: true });
    removed++;
  }
  return removed;
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
