/**
 * `vcp-exp status <spec>`: the trials of a spec as MLflow and Slurm see them. Follows the
 * trials still in Slurm until they end (re-attaching after `run --detach`, a Ctrl-C or a
 * lost session), or with `once` records what has ended, prints one line per trial and exits.
 */
import { openTracking } from '../../tracking/connect.js';
import { replayJournals } from '../../tracking/delivery.js';
import { ExperimentLayout } from '../../tracking/layout.js';
import type { ProgressMode } from '../progress.js';
import { trialHistory } from '../resume.js';
import type { Spec } from '../spec-types.js';
import { trackingEnv } from '../sweep.js';
import type { TrialOutcome } from './pool.js';
import { runName } from './local.js';
import { follow, settleEarlierSubmissions } from './slurm.js';
import type { WaitingTask } from './slurm-monitor.js';

export interface StatusOptions {
  spec: Spec;
  once: boolean;
  progress: ProgressMode;
  trackingUri?: string;
  env?: NodeJS.ProcessEnv;
  log: (line: string) => void;
}

export interface StatusRow {
  trialId: string;
  name: string;
  /** FINISHED, FAILED, KILLED, or the Slurm state of a trial still there, or "not run". */
  state: string;
  detail: string;
}

export interface StatusResult {
  rows: StatusRow[];
  outcomes: TrialOutcome[];
  /** Trials still queued or running in Slurm when status returned. */
  waiting: WaitingTask[];
  /** 0 every trial FINISHED, 3 some still in Slurm, 1 otherwise (failed, killed or not run). */
  exitCode: number;
  /** Array jobs still holding trials. */
  jobs: string[];
}

export async function slurmStatus(o: StatusOptions): Promise<StatusResult> {
  const env = trackingEnv(o);
  const tracking = await openTracking({
    env,
    onStarting: (dir) => o.log(`starting the local MLflow server (state in ${dir}) …`),
  });
  try {
    await replayJournals(tracking.client, tracking.journalDir);
    const layout = new ExperimentLayout(tracking.client, { journalDir: tracking.journalDir });
    const experiment = await tracking.client.getExperimentByName(o.spec.tracking.experiment);
    let outcomes: TrialOutcome[] = [];
    let waiting: WaitingTask[] = [];
    if (experiment) {
      const first = await settleEarlierSubmissions({
        spec: o.spec,
        layout,
        experimentId: experiment.experiment_id,
        journalDir: tracking.journalDir,
        env,
        log: o.log,
      });
      outcomes = first.recorded;
      waiting = first.live;
      if (!o.once && waiting.length > 0) {
        const history = await trialHistory(layout, experiment.experiment_id);
        const followed = await follow(
          {
            spec: o.spec,
            layout,
            journalDir: tracking.journalDir,
            workers: o.spec.execution.workers,
            skipped: o.spec.trials.filter((t) => history.finished.has(t.id)).length,
            progress: o.progress,
            env,
            log: o.log,
          },
          waiting.map((w) => w.task),
        );
        outcomes = [...outcomes, ...followed.outcomes];
        waiting = followed.detached?.waiting ?? [];
      }
    }
    const history = experiment
      ? await trialHistory(layout, experiment.experiment_id)
      : { finished: new Set<string>(), latest: new Map() };
    const inSlurm = new Map(waiting.map((w) => [w.task.trialId, w]));
    const rows: StatusRow[] = o.spec.trials.map((t) => {
      const w = inSlurm.get(t.id);
      const latest = history.latest.get(t.id);
      if (w)
        return {
          trialId: t.id,
          name: runName(t),
          state: w.state,
          detail: `Slurm task ${w.task.jobId ?? '?'}${w.node ? ` on ${w.node}` : ''}${w.reason ? ` (${w.reason})` : ''}`,
        };
      if (history.finished.has(t.id))
        return { trialId: t.id, name: runName(t), state: 'FINISHED', detail: '' };
      if (latest)
        return {
          trialId: t.id,
          name: runName(t),
          state: latest.status,
          detail: (latest.reason ?? '').split('\n')[0],
        };
      return { trialId: t.id, name: runName(t), state: 'not run', detail: '' };
    });
    const exitCode = rows.every((r) => r.state === 'FINISHED') ? 0 : waiting.length > 0 ? 3 : 1;
    const jobs = [...new Set(waiting.map((w) => w.task.jobId?.split('_')[0]).filter(Boolean))];
    return { rows, outcomes, waiting, exitCode, jobs: jobs as string[] };
  } finally {
    await tracking.close();
  }
}

/** The rows as aligned text columns. */
export function formatStatus(rows: readonly StatusRow[]): string {
  const header: StatusRow = { trialId: 'trial', name: 'run', state: 'state', detail: 'detail' };
  const all = [header, ...rows];
  const width = (k: keyof StatusRow) => Math.max(...all.map((r) => r[k].length));
  const w = { trialId: width('trialId'), name: Math.min(48, width('name')), state: width('state') };
  return all
    .map((r) =>
      [
        r.trialId.padEnd(w.trialId),
        (r.name.length > 48 ? `${r.name.slice(0, 47)}…` : r.name).padEnd(w.name),
        r.state.padEnd(w.state),
        r.detail,
      ]
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
