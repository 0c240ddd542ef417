/**
 * `runSweep`: a loaded spec → the trials without a FINISHED run in MLflow → the local
 * executor → one summary. Before anything runs: one runner per experiment and state directory
 * (run-lock.ts), missing synthetic data generated (under the state directory only), every
 * dataset checked (dataset-preflight.ts) and the free disk space checked. The parent MLflow
 * run of the sweep ends FINISHED (all trials fine), FAILED (some failed or were not started;
 * the exit is non-zero) or KILLED (Ctrl-C / SIGTERM: the running trials are stopped and end
 * KILLED, the finished ones are kept). The summary is printed even when MLflow cannot record
 * the sweep's end (e.g. its store is on a full disk).
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import type { BackendChoice } from '../model/backend.js';
import { openTracking, type Tracking } from '../tracking/connect.js';
import { replayJournals } from '../tracking/delivery.js';
import { currentGitCommit, ExperimentLayout, runSource } from '../tracking/layout.js';
import { experimentUrl } from '../tracking/mlflow-ui.js';
import { resolveStateDir } from '../tracking/server.js';
import { chooseTrackingUri } from '../tracking/tracking-uri.js';
import { DatasetInputs } from './dataset-inputs.js';
import { preflightDatasets, preflightError, renamedProductNotes } from './dataset-preflight.js';
import { lowDiskSpace } from './disk-space.js';
import { experimentPresentation } from './experiment-view.js';
import { overridesLine } from './overrides.js';
import { LocalExecutor, OWNER_TAGS } from './executors/local.js';
import type { TrialOutcome } from './executors/pool.js';
import { createReporter, formatSeconds, type ProgressMode } from './progress.js';
import { markOrphans, removeStaleWorkDirs, selectTrials, trialHistory } from './resume.js';
import { acquireRunLock } from './run-lock.js';
import { ensureSynthRoots } from './synth-roots.js';
import type { Spec, Trial } from './spec-types.js';
import { plural } from '../io/wording.js';

export interface SweepOptions {
  spec: Spec;
  workers?: number;
  failFast?: boolean;
  backend?: BackendChoice;
  progress: ProgressMode;
  /** --tracking-uri (the server is chosen by the rule of tracking/tracking-uri.ts). */
  trackingUri?: string;
  /** Share features and checkpoints between trials (default true; off for the benchmark baseline). */
  share?: boolean;
  samplesPerProduct?: number;
  /** Extra params of the sweep run (e.g. the seeds a rerun added). */
  params?: Record<string, string>;
  log?: (line: string) => void;
  env?: NodeJS.ProcessEnv;
}

export interface SweepResult {
  experimentId: string;
  sweepRunId?: string;
  trackingUri: string;
  /** Trials of the spec. */
  total: number;
  outcomes: TrialOutcome[];
  skipped: { finished: Trial[]; notStarted: Trial[] };
  stopped: boolean;
  /** Why the sweep stopped starting trials on its own (e.g. "disk full at …"). */
  halted?: string;
  seconds: number;
}

export async function runSweep(options: SweepOptions): Promise<SweepResult> {
  const { spec } = options;
  const log = options.log ?? ((line: string) => console.log(line));
  const started = performance.now();
  const env = options.env ?? process.env;
  const stateDir = resolveStateDir(undefined, env);
  const lock = acquireRunLock({
    stateDir,
    experiment: spec.tracking.experiment,
    command: `vcp-exp run ${spec.file}`,
    log,
  });
  try {
    await ensureSynthRoots(spec, stateDir, log);
    const reports = await preflightDatasets(spec.trials, {
      stateDir,
      onDataset: (use) => log(`checking ${use.labels.join(', ')} at ${use.root} …`),
    });
    for (const note of renamedProductNotes(reports)) log(note);
    const problems = preflightError(reports, true);
    if (problems) throw problems;
    await mkdir(stateDir, { recursive: true });
    const low = await lowDiskSpace(stateDir, env);
    if (low)
      throw new UserError(`${low}; nothing was run`, {
        hint: 'free some space, then run the same command again',
      });
    return await runTracked(options, { log, started, env, stateDir });
  } finally {
    lock.release();
  }
}

async function runTracked(
  options: SweepOptions,
  context: {
    log: (line: string) => void;
    started: number;
    env: NodeJS.ProcessEnv;
    stateDir: string;
  },
): Promise<SweepResult> {
  const { spec } = options;
  const { log, started, env } = context;
  const tracking: Tracking = await openTracking({
    env,
    choice: chooseTrackingUri({
      flag: options.trackingUri,
      env,
      spec: { uri: spec.tracking.uri, file: spec.file },
    }),
    onStarting: (dir) => log(`starting the local MLflow server (state in ${dir}) …`),
    supervise: log,
  });
  const trackingUri = tracking.client.http.baseUrl;
  try {
    const replayed = await replayJournals(tracking.client, tracking.journalDir);
    if (replayed.length > 0)
      log(`delivered the journals of ${plural(replayed.length, 'run')} left by earlier processes`);
    const layout = new ExperimentLayout(tracking.client, { journalDir: tracking.journalDir });
    const experimentId = await layout.experimentFor(
      spec.tracking.experiment,
      experimentPresentation(spec),
    );
    const orphans = await markOrphans(layout, experimentId);
    if (orphans.length > 0)
      log(`marked ${plural(orphans.length, 'run')} left RUNNING by a runner that died as KILLED`);
    const removed = await removeStaleWorkDirs(layout, tracking.stateDir);
    if (removed > 0)
      log(
        `removed ${removed} trial work director${removed === 1 ? 'y' : 'ies'} left by earlier runs`,
      );
    const history = await trialHistory(layout, experimentId);
    const selection = selectTrials(spec.trials, history);
    for (const t of selection.toRun) {
      const last = history.latest.get(t.id);
      if (last && last.status !== 'RUNNING')
        log(`${t.id}: its last run ${last.runId} ended ${last.status}; running it again`);
    }
    const result: SweepResult = {
      experimentId,
      trackingUri,
      total: spec.trials.length,
      outcomes: [],
      skipped: { finished: selection.finished, notStarted: [] },
      stopped: false,
      seconds: 0,
    };
    if (selection.toRun.length === 0) {
      log(
        `nothing to run: ${selection.finished.length} of ${spec.trials.length} trials already FINISHED in MLflow (experiment "${spec.tracking.experiment}")`,
      );
      result.seconds = (performance.now() - started) / 1000;
      return result;
    }

    const backend = options.backend ?? spec.execution.backend;
    const workers = options.workers ?? spec.execution.workers;
    const identity = {
      specHash: spec.hash,
      gitCommit: currentGitCommit(),
      backend,
      source: runSource(spec.file),
    };
    const sweep = await layout.startSweepRun({
      ...identity,
      device: spec.execution.devices.join(','),
      experimentId,
      runName: `sweep ${new Date().toISOString().slice(0, 19)}`,
      params: {
        'sweep.spec': spec.file,
        'sweep.trials': spec.trials.length,
        'sweep.to_run': selection.toRun.length,
        'sweep.workers': workers,
        'sweep.axes': spec.axes.join(','),
        'sweep.seeds': spec.seeds.join(','),
        'sweep.overrides': overridesParam(spec.overrides),
        ...options.params,
      },
    });
    result.sweepRunId = sweep.runId;
    sweep.setTags({ [OWNER_TAGS.host]: hostname(), [OWNER_TAGS.pid]: String(process.pid) });
    const specDir = join(tracking.stateDir, 'trials', sweep.runId);
    await mkdir(specDir, { recursive: true });
    const resolved = join(specDir, 'resolved-spec.json');
    await writeFile(
      resolved,
      `${JSON.stringify({ ...spec, trials: spec.trials.map(({ origins: _o, ...t }) => t) }, null, 2)}\n`,
    );
    await sweep.logArtifact(resolved, 'spec');
    if (spec.overrides.length > 0) {
      const file = join(specDir, 'overrides.txt');
      await writeFile(file, `${spec.overrides.join('\n')}\n`);
      await sweep.logArtifact(file, 'spec');
    }
    for (const file of spec.chain) await sweep.logArtifact(file, 'spec');
    // The sweep's datasets on the parent run too: the runs table shows it collapsed by default.
    const datasetInputs = new DatasetInputs((line) => log(`note: ${line}`));
    await tracking.client
      .logInputs(sweep.runId, await datasetInputs.forTrials(spec.trials))
      .catch((error: unknown) =>
        log(`note: the sweep's datasets were not logged: ${(error as Error).message}`),
      );
    await sweep.flush();
    await rm(specDir, { recursive: true, force: true }); // uploaded, or copied to the journal

    const reporter = createReporter(options.progress, log);
    const executor = new LocalExecutor({
      spec,
      layout,
      experimentId,
      sweepRunId: sweep.runId,
      trackingUri,
      journalDir: tracking.journalDir,
      stateDir: tracking.stateDir,
      identity,
      backend,
      workers,
      devices: spec.execution.devices,
      failFast: options.failFast,
      share: options.share,
      samplesPerProduct: options.samplesPerProduct,
      datasetInputs,
      trackingReady: () => tracking.ready(),
      env,
      onStart: (t, w, d) => reporter.trialStarted(t, w, d),
      onEvent: (t, e) => reporter.trialEvent(t, e),
      onEnd: (o) => reporter.trialEnded(o),
    });
    let signalled: NodeJS.Signals | undefined;
    const onSignal = (signal: NodeJS.Signals) => {
      if (signalled) return;
      signalled = signal;
      log(
        `\n${signal}: stopping the running trials (finished ones are kept; run the same command again to resume)`,
      );
      executor.stop();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    reporter.start({
      name: spec.name,
      trials: selection.toRun,
      skipped: selection.finished.length,
      workers,
    });
    let pool;
    try {
      pool = await executor.run(selection.toRun);
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    await reporter.end(pool.notStarted);
    result.outcomes = pool.outcomes;
    result.skipped.notStarted = pool.notStarted;
    result.stopped = signalled !== undefined;
    result.halted = pool.halted;
    if (pool.halted) log(`stopped starting trials: ${pool.halted}`);
    // The journals of this sweep's trials that ended while the server was away (not those of
    // another sweep of this state directory, whose processes may still be delivering them).
    const ended = pool.outcomes.map((o) => o.runId).filter((id): id is string => Boolean(id));
    await replayJournals(tracking.client, tracking.journalDir, ended).catch(() => undefined);
    await endSweepRun(sweep, result, signalled, log);
    result.seconds = (performance.now() - started) / 1000;
    log(summaryLine(result));
    log(
      tracking.server
        ? `browse the runs: npx vcp-exp mlflow ui   (experiment "${spec.tracking.experiment}"; its view "vcp-exp: headline metrics" shows the swept params and headline metrics)`
        : `runs: ${experimentUrl(trackingUri, experimentId, true)} (experiment "${spec.tracking.experiment}", headline view)`,
    );
    return result;
  } finally {
    await tracking.close();
  }
}

/** The overrides as the sweep run's param (cut, pointing to the artifact, past MLflow's limit). */
function overridesParam(overrides: readonly string[]): string {
  if (overrides.length === 0) return '-';
  const line = overridesLine(overrides);
  return line.length <= 6000 ? line : `${line.slice(0, 5900)} … (in full: spec/overrides.txt)`;
}

/** Records the sweep's counts and end; MLflow refusing (e.g. its store on a full disk) is reported, not fatal. */
async function endSweepRun(
  sweep: Awaited<ReturnType<ExperimentLayout['startSweepRun']>>,
  result: SweepResult,
  signalled: NodeJS.Signals | undefined,
  log: (line: string) => void,
): Promise<void> {
  const failed = result.outcomes.filter((o) => o.status !== 'FINISHED');
  try {
    sweep.logMetrics({
      'sweep.finished': result.outcomes.length - failed.length,
      'sweep.failed': failed.length,
      'sweep.skipped': result.skipped.finished.length,
      'sweep.not_started': result.skipped.notStarted.length,
      'sweep.trainings': result.outcomes.filter((o) => o.summary?.trained).length,
    });
    if (signalled) await sweep.end('KILLED', `received ${signalled}`);
    else if (failed.length > 0 || result.skipped.notStarted.length > 0)
      await sweep.end(
        'FAILED',
        [
          failed.length > 0
            ? `${plural(failed.length, 'trial')} failed: ${failed.map((o) => o.trial.id).join(', ')}`
            : '',
          result.skipped.notStarted.length > 0
            ? `${result.skipped.notStarted.length} not started${result.halted ? ` (${result.halted})` : ''}`
            : '',
        ]
          .filter(Boolean)
          .join('; '),
      );
    else await sweep.end('FINISHED');
  } catch (error) {
    log(
      `could not record the end of sweep run ${sweep.runId} in MLflow (${(error as Error).message.split('\n')[0]}); the next vcp-exp run marks it KILLED`,
    );
  }
}

export function summaryLine(r: SweepResult): string {
  const finished = r.outcomes.filter((o) => o.status === 'FINISHED').length;
  const failed = r.outcomes.filter((o) => o.status === 'FAILED');
  const killed = r.outcomes.filter((o) => o.status === 'KILLED').length;
  const skipped = r.skipped.finished.length + r.skipped.notStarted.length;
  const lines = [
    `${r.stopped ? 'stopped' : 'done'} in ${formatSeconds(r.seconds)}: ${finished} finished, ${failed.length} failed, ${killed} killed, ${skipped} skipped` +
      ` (${r.skipped.finished.length} already finished, ${r.skipped.notStarted.length} not started)`,
    ...failed.flatMap((o) => {
      // The whole reason (e.g. every problem of a dataset), up to a screenful.
      const [first, ...rest] = (o.reason ?? '').trimEnd().split('\n');
      const shown = rest.slice(0, REASON_LINES);
      return [
        `  FAILED ${o.trial.id} (run ${o.runId ?? '?'}): ${first}`,
        ...shown.map((l) => `    ${l}`),
        ...(rest.length > shown.length
          ? [`    … ${rest.length - shown.length} more lines in its vcp.failure_reason`]
          : []),
      ];
    }),
  ];
  return lines.join('\n');
}

/** Lines of a failure reason shown per trial in the summary beyond its first. */
const REASON_LINES = 12;

/** Trials of the spec without a FINISHED run after this sweep. */
export function unfinishedCount(r: SweepResult): number {
  const finished = r.outcomes.filter((o) => o.status === 'FINISHED').length;
  return r.total - r.skipped.finished.length - finished;
}

/** Throws the sweep's one summary error while any trial of the spec is unfinished. */
export function checkSweep(r: SweepResult): void {
  const failed = r.outcomes.filter((o) => o.status !== 'FINISHED');
  if (r.stopped)
    throw new UserError(`sweep stopped: ${plural(failed.length, 'trial')} interrupted`, {
      exitCode: 130,
      hint: 'run the same command again to resume',
    });
  const unfinished = unfinishedCount(r);
  if (unfinished > 0) {
    const parts = [
      failed.length > 0 ? `${failed.length} failed or killed` : '',
      r.skipped.notStarted.length > 0
        ? `${r.skipped.notStarted.length} not started${r.halted ? ` (${r.halted})` : ''}`
        : '',
    ].filter(Boolean);
    throw new UserError(
      `${unfinished} of ${plural(r.total, 'trial')} unfinished: ${parts.join(', ')} (see their vcp.failure_reason and logs/trial.log in MLflow)`,
      {
        hint: 'fix the cause, then run the same command again: every trial without a FINISHED run runs again',
      },
    );
  }
}
