/**
 * `runSweep`: a loaded spec → the trials without a FINISHED run in MLflow → the local
 * executor (or Slurm, executors/slurm.ts) → one summary. Before anything runs: one runner per
 * experiment and state directory (run-lock.ts), missing synthetic data generated (under the
 * state directory only), every dataset checked (dataset-preflight.ts) and the free disk space
 * checked (for Slurm also the cluster, the tracking URI and the shared directory). The parent
 * MLflow run of a local sweep ends FINISHED (all trials fine), FAILED (some failed or were not
 * started; the exit is non-zero) or KILLED (Ctrl-C / SIGTERM: the running trials are stopped
 * and end KILLED, the finished ones are kept). The summary is printed even when MLflow cannot
 * record the sweep's end (e.g. its store is on a full disk). Trials submitted to Slurm earlier
 * and still queued or running are followed, never submitted twice; a local run refuses to
 * start while there are any.
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
import { deviceSlotProblem } from './executors/devices.js';
import { experimentPresentation } from './experiment-view.js';
import { overridesLine } from './overrides.js';
import { LocalExecutor, OWNER_TAGS } from './executors/local.js';
import type { TrialOutcome } from './executors/pool.js';
import { runOnSlurm, settleEarlierSubmissions } from './executors/slurm.js';
import { checkCluster, checkTrackingUri, sharedDirOf } from './executors/slurm-checks.js';
import type { WaitingTask } from './executors/slurm-monitor.js';
import { SLURM_TAGS } from './executors/slurm-tags.js';
import { createReporter, formatSeconds, type ProgressMode } from './progress.js';
import { pinGroups } from '../model/feature-cache.js';
import { resolveCacheBudget } from './cache-budget.js';
import { markOrphans, removeStaleWorkDirs, selectTrials, trialHistory } from './resume.js';
import { acquireRunLock } from './run-lock.js';
import { featureCacheDir } from './state-dirs.js';
import { ensureSynthRoots } from './synth-roots.js';
import type { Execution, Spec, Trial } from './spec-types.js';
import { plural } from '../io/wording.js';

export interface SweepOptions {
  spec: Spec;
  /** Overrides execution.executor. */
  executor?: Execution['executor'];
  /** Slurm: return once the jobs are submitted (vcp-exp status follows them). */
  detach?: boolean;
  workers?: number;
  failFast?: boolean;
  backend?: BackendChoice;
  progress: ProgressMode;
  /** --tracking-uri (the server is chosen by the rule of tracking/tracking-uri.ts). */
  trackingUri?: string;
  /** Share features and checkpoints between trials (default true; off for the benchmark baseline). */
  share?: boolean;
  samplesPerProduct?: number;
  /** Largest evaluation group (default: the spec's execution.eval_group_size). */
  evalGroupSize?: number;
  /** Feature cache budget in GB from the command line (see resolveCacheBudget). */
  featureCacheGb?: number;
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
  /** Slurm: trials left queued or running when the runner stopped following them. */
  detached?: { waiting: WaitingTask[]; jobs: string[]; bySignal: boolean };
  seconds: number;
}

/** The environment with MLFLOW_TRACKING_URI set to the server the one rule chooses (tracking-uri.ts). */
export function trackingEnv(options: {
  spec: Spec;
  trackingUri?: string;
  env?: NodeJS.ProcessEnv;
}): NodeJS.ProcessEnv {
  const env = { ...(options.env ?? process.env) };
  const choice = chooseTrackingUri({
    flag: options.trackingUri,
    env,
    spec: { uri: options.spec.tracking.uri, file: options.spec.file },
  });
  if (choice.uri) env.MLFLOW_TRACKING_URI = choice.uri;
  return env;
}

export async function runSweep(options: SweepOptions): Promise<SweepResult> {
  const { spec } = options;
  const log = options.log ?? ((line: string) => console.log(line));
  const started = performance.now();
  const executor = options.executor ?? spec.execution.executor;
  const env = trackingEnv(options);
  const stateDir = resolveStateDir(undefined, env);
  const lock = acquireRunLock({
    stateDir,
    experiment: spec.tracking.experiment,
    command: `vcp-exp run ${spec.file}`,
    log,
  });
  try {
    let slurm: SlurmSetup | undefined;
    if (executor === 'slurm') {
      // Configuration first: these fail in a second, the dataset checks below take longer.
      const sharedDir = sharedDirOf(spec);
      await checkTrackingUri(env.MLFLOW_TRACKING_URI?.trim());
      slurm = { sharedDir, clusterConfig: await checkCluster(spec, env) };
    }
    await ensureSynthRoots(spec, stateDir, log);
    const reports = await preflightDatasets(spec.trials, {
      stateDir,
      onDataset: (use) => log(`checking ${use.labels.join(', ')} at ${use.root} …`),
    });
    for (const note of renamedProductNotes(reports)) log(note);
    const problems = preflightError(reports, true);
    if (problems) throw problems;
    for (const dir of slurm ? [stateDir, slurm.sharedDir] : [stateDir]) {
      await mkdir(dir, { recursive: true });
      const low = await lowDiskSpace(dir, env);
      if (low)
        throw new UserError(`${low}; nothing was ${slurm ? 'submitted' : 'run'}`, {
          hint: 'free some space, then run the same command again',
        });
    }
    return await runTracked(options, { log, started, env, stateDir, executor, slurm });
  } finally {
    lock.release();
  }
}

/** What the Slurm checks found: the shared directory and slurmctld's configuration. */
interface SlurmSetup {
  sharedDir: string;
  clusterConfig: Record<string, string>;
}

async function runTracked(
  options: SweepOptions,
  context: {
    log: (line: string) => void;
    started: number;
    env: NodeJS.ProcessEnv;
    stateDir: string;
    executor: Execution['executor'];
    slurm?: SlurmSetup;
  },
): Promise<SweepResult> {
  const { spec } = options;
  const { log, started, env, executor } = context;
  const tracking: Tracking = await openTracking({
    env,
    // Chosen from the caller's environment, so that errors name where the URI came from.
    choice: chooseTrackingUri({
      flag: options.trackingUri,
      env: options.env ?? process.env,
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
    const earlier = await settleEarlierSubmissions({
      spec,
      layout,
      experimentId,
      journalDir: tracking.journalDir,
      env,
      log,
    }).catch((error: unknown) => {
      if (executor === 'slurm') throw error;
      return undefined; // no Slurm here: refused below if any trial is still out there
    });
    if (executor !== 'slurm') {
      const out = earlier?.live.length ?? (await unrecordedCount(layout, experimentId));
      if (out > 0)
        throw new UserError(
          `${out} trial(s) of this spec were submitted to Slurm and are not recorded as ended; running them here too would run them twice`,
          {
            hint: `follow them with \`vcp-exp status ${spec.file}\` on a machine with Slurm, or cancel them there (scancel) and run vcp-exp status once to record it`,
          },
        );
    }
    if (earlier && earlier.recorded.length > 0)
      log(`recorded the end of ${earlier.recorded.length} trial(s) submitted to Slurm earlier`);
    const live = earlier?.live ?? [];
    if (live.length > 0)
      log(
        `${live.length} trial(s) submitted earlier are still in Slurm: following them, not submitting them again`,
      );
    const liveIds = new Set(live.map((w) => w.task.trialId));
    const removed = await removeStaleWorkDirs(layout, tracking.stateDir);
    if (removed > 0)
      log(
        `removed ${removed} trial work director${removed === 1 ? 'y' : 'ies'} left by earlier runs`,
      );
    const history = await trialHistory(layout, experimentId);
    const selected = selectTrials(spec.trials, history);
    const selection = { ...selected, toRun: selected.toRun.filter((t) => !liveIds.has(t.id)) };
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
    if (selection.toRun.length === 0 && live.length === 0) {
      log(
        `nothing to run: ${selection.finished.length} of ${spec.trials.length} trials already FINISHED in MLflow (experiment "${spec.tracking.experiment}")`,
      );
      result.seconds = (performance.now() - started) / 1000;
      return result;
    }

    const backend = options.backend ?? spec.execution.backend;
    const workers = options.workers ?? spec.execution.workers;
    const { devices, trials_per_device: perDevice } = spec.execution;
    const crowded =
      options.workers === undefined ? undefined : deviceSlotProblem(devices, workers, perDevice);
    if (crowded) throw new UserError(`--workers ${workers}: ${crowded}`, { exitCode: 2 });
    const identity = {
      specHash: spec.hash,
      gitCommit: currentGitCommit(),
      backend,
      source: runSource(spec.file),
    };
    if (executor === 'slurm' && selection.toRun.length === 0) {
      // Only trials submitted earlier: follow them (what `vcp-exp status` does).
      const slurm = await runOnSlurm({
        spec,
        layout,
        experimentId,
        trackingUri,
        journalDir: tracking.journalDir,
        stateDir: tracking.stateDir,
        sharedDir: context.slurm!.sharedDir,
        identity,
        backend,
        workers,
        toRun: [],
        live: live.map((w) => w.task),
        skipped: selection.finished.length,
        detach: options.detach ?? false,
        failFast: options.failFast,
        progress: options.progress,
        env,
        log,
      });
      return finishSlurm(result, slurm, started, log, spec.tracking.experiment);
    }
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
        'sweep.executor': executor,
        ...options.params,
      },
    });
    result.sweepRunId = sweep.runId;
    // A Slurm sweep outlives this process (--detach): no owner pid, or it would look orphaned.
    sweep.setTags(
      executor === 'slurm'
        ? { [SLURM_TAGS.executor]: 'slurm', [OWNER_TAGS.host]: hostname() }
        : { [OWNER_TAGS.host]: hostname(), [OWNER_TAGS.pid]: String(process.pid) },
    );
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

    if (executor === 'slurm') {
      let slurm;
      try {
        slurm = await runOnSlurm({
          spec,
          layout,
          experimentId,
          sweepRunId: sweep.runId,
          trackingUri,
          journalDir: tracking.journalDir,
          stateDir: tracking.stateDir,
          sharedDir: context.slurm!.sharedDir,
          identity,
          backend,
          workers,
          samplesPerProduct: options.samplesPerProduct,
          maxArraySize: Number(context.slurm!.clusterConfig.MaxArraySize) || undefined,
          datasetInputs,
          toRun: selection.toRun,
          live: live.map((w) => w.task),
          skipped: selection.finished.length,
          detach: options.detach ?? false,
          failFast: options.failFast,
          progress: options.progress,
          env,
          log,
        });
      } catch (error) {
        await sweep.end('FAILED', `submission failed: ${(error as Error).message}`);
        throw error;
      }
      return finishSlurm(result, slurm, started, log, spec.tracking.experiment);
    }

    const featureCache = {
      maxBytes: (
        await resolveCacheBudget({
          cliGb: options.featureCacheGb,
          env,
          spec,
          dir: featureCacheDir(tracking.stateDir),
        })
      ).bytes,
      dtype: spec.execution.feature_cache.dtype,
    };
    // Keep the features the pending trials need (see FeatureCache): evaluations and epochs
    // read their images in cycles, which plain LRU would always miss beyond the budget.
    const unpin =
      options.share === false
        ? undefined
        : await pinGroups(
            featureCacheDir(tracking.stateDir),
            sweep.runId,
            selection.toRun.map((t) => t.featureKey.id),
          );
    const reporter = createReporter(options.progress, log);
    const local = new LocalExecutor({
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
      maxGroup: options.evalGroupSize ?? spec.execution.eval_group_size,
      featureCache,
      datasetInputs,
      trackingReady: () => tracking.ready(),
      env,
      onStart: (t, w, d) => reporter.trialStarted(t, `${d} (worker ${w})`),
      onEvent: (trials, e) => reporter.trialEvent(trials, e),
      onEnd: (o) => reporter.trialEnded(o),
    });
    let signalled: NodeJS.Signals | undefined;
    const onSignal = (signal: NodeJS.Signals) => {
      if (signalled) return;
      signalled = signal;
      log(
        `\n${signal}: stopping the running trials (finished ones are kept; run the same command again to resume)`,
      );
      local.stop();
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
      pool = await local.run(selection.toRun);
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await unpin?.();
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

/** Trial runs submitted to Slurm whose end nobody recorded yet. */
async function unrecordedCount(layout: ExperimentLayout, experimentId: string): Promise<number> {
  const runs = await layout.listTrialRuns(experimentId);
  return runs.filter(
    (r) =>
      r.data.tags.some((t) => t.key === SLURM_TAGS.executor && t.value === 'slurm') &&
      !r.data.tags.some((t) => t.key === SLURM_TAGS.recorded && t.value === 'true'),
  ).length;
}

function finishSlurm(
  result: SweepResult,
  slurm: Awaited<ReturnType<typeof runOnSlurm>>,
  started: number,
  log: (line: string) => void,
  experiment: string,
): SweepResult {
  result.outcomes = slurm.outcomes;
  result.halted = slurm.halted;
  result.detached = slurm.detached;
  result.stopped = slurm.detached?.bySignal ?? false;
  result.seconds = (performance.now() - started) / 1000;
  if (!slurm.detached || slurm.detached.bySignal) log(summaryLine(result));
  log(`runs: ${result.trackingUri} (experiment "${experiment}")`);
  return result;
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

/**
 * Throws the sweep's one summary error while any trial of the spec is unfinished, except
 * after `--detach`, whose trials are still in Slurm by design (`vcp-exp status` reports them).
 */
export function checkSweep(r: SweepResult, specFile?: string): void {
  const failed = r.outcomes.filter((o) => o.status !== 'FINISHED');
  if (r.detached?.bySignal)
    throw new UserError(
      `stopped following: ${r.detached.waiting.length} trial(s) are still in Slurm (jobs ${r.detached.jobs.join(', ')})`,
      {
        exitCode: 130,
        hint: `vcp-exp status ${specFile ?? '<spec>'} follows them again; scancel ${r.detached.jobs.join(' ')} cancels them`,
      },
    );
  if (r.stopped)
    throw new UserError(`sweep stopped: ${plural(failed.length, 'trial')} interrupted`, {
      exitCode: 130,
      hint: 'run the same command again to resume',
    });
  if (r.detached) return; // --detach: submitted, and `vcp-exp status` tells how they end
  const unfinished = unfinishedCount(r);
  if (unfinished > 0) {
    const parts = [
      failed.length > 0 ? `${failed.length} failed or killed` : '',
      r.skipped.notStarted.length > 0
        ? `${r.skipped.notStarted.length} not started${r.halted ? ` (${r.halted})` : ''}`
        : r.halted // Slurm: the pending tasks were cancelled, so they count as killed
          ? `the rest stopped (${r.halted})`
          : '',
    ].filter(Boolean);
    throw new UserError(
      `${unfinished} of ${r.total} trials unfinished: ${parts.join(', ')} (see their vcp.failure_reason and the logs/ artifacts in MLflow)`,
      {
        hint: 'fix the cause, then run the same command again: every trial without a FINISHED run runs again',
      },
    );
  }
}
