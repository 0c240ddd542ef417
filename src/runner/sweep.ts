/**
 * `runSweep`: a loaded spec → the trials MLflow does not hold yet → the local executor →
 * one summary. The parent MLflow run of the sweep ends FINISHED (all trials fine), FAILED
 * (some failed; the exit is non-zero) or KILLED (Ctrl-C / SIGTERM: the running trials are
 * stopped and end KILLED, the finished ones are kept).
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import { generateSynthDataset, isSynthRoot } from '../datasets/synth.js';
import type { BackendChoice } from '../model/backend.js';
import { openTracking, type Tracking } from '../tracking/connect.js';
import { replayJournals } from '../tracking/delivery.js';
import { currentGitCommit, ExperimentLayout, runSource } from '../tracking/layout.js';
import { experimentUrl } from '../tracking/mlflow-ui.js';
import { chooseTrackingUri } from '../tracking/tracking-uri.js';
import { DatasetInputs } from './dataset-inputs.js';
import { overridesLine } from './overrides.js';
import { experimentPresentation } from './experiment-view.js';
import { LocalExecutor, OWNER_TAGS } from './executors/local.js';
import type { TrialOutcome } from './executors/pool.js';
import { createReporter, formatSeconds, type ProgressMode } from './progress.js';
import { markOrphans, selectTrials, trialHistory } from './resume.js';
import type { Spec, Trial } from './spec-types.js';
import { plural } from '../io/wording.js';

export interface SweepOptions {
  spec: Spec;
  workers?: number;
  failFast?: boolean;
  retryFailed?: boolean;
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
  outcomes: TrialOutcome[];
  skipped: { finished: Trial[]; failedBefore: Trial[]; notStarted: Trial[] };
  stopped: boolean;
  seconds: number;
}

/** Creates a synthetic dataset root the spec names but that does not exist yet (quickstart). */
export async function ensureSynthRoots(spec: Spec, log: (line: string) => void): Promise<void> {
  const roots = new Set(
    spec.trials.flatMap((t) => [
      ...(t.config.train.dataset ? [t.config.train.dataset.root] : []),
      ...t.config.eval.datasets.map((d) => d.root),
    ]),
  );
  for (const root of roots) {
    if (existsSync(root) || !isSynthRoot(root)) continue;
    log(
      `dataset ${root} does not exist: generating the synthetic dataset (vcp-exp data synth ${root})`,
    );
    await generateSynthDataset(root, {});
  }
}

export async function runSweep(options: SweepOptions): Promise<SweepResult> {
  const { spec } = options;
  const log = options.log ?? ((line: string) => console.log(line));
  const started = performance.now();
  await ensureSynthRoots(spec, log);
  const env = options.env ?? process.env;
  const tracking: Tracking = await openTracking({
    env,
    choice: chooseTrackingUri({
      flag: options.trackingUri,
      env,
      spec: { uri: spec.tracking.uri, file: spec.file },
    }),
    onStarting: (dir) => log(`starting the local MLflow server (state in ${dir}) …`),
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
    const history = await trialHistory(layout, experimentId);
    const selection = selectTrials(spec.trials, history, options.retryFailed ?? false);
    for (const t of selection.failedBefore)
      log(
        `skip ${t.id}: its last run ${history.latest.get(t.id)!.runId} FAILED (use --retry-failed to run it again)`,
      );
    const result: SweepResult = {
      experimentId,
      trackingUri,
      outcomes: [],
      skipped: {
        finished: selection.finished,
        failedBefore: selection.failedBefore,
        notStarted: [],
      },
      stopped: false,
      seconds: 0,
    };
    if (selection.toRun.length === 0) {
      log(
        `nothing to run: ${selection.finished.length} of ${plural(spec.trials.length, 'trial')} already FINISHED in MLflow (experiment "${spec.tracking.experiment}")`,
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
      skipped: selection.finished.length + selection.failedBefore.length,
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
    const failed = pool.outcomes.filter((o) => o.status !== 'FINISHED');
    sweep.logMetrics({
      'sweep.finished': pool.outcomes.length - failed.length,
      'sweep.failed': failed.length,
      'sweep.skipped': selection.finished.length + selection.failedBefore.length,
      'sweep.not_started': pool.notStarted.length,
      'sweep.trainings': pool.outcomes.filter((o) => o.summary?.trained).length,
    });
    if (signalled) await sweep.end('KILLED', `received ${signalled}`);
    else if (failed.length > 0)
      await sweep.end(
        'FAILED',
        `${plural(failed.length, 'trial')} failed: ${failed.map((o) => o.trial.id).join(', ')}`,
      );
    else await sweep.end('FINISHED');
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

export function summaryLine(r: SweepResult): string {
  const finished = r.outcomes.filter((o) => o.status === 'FINISHED').length;
  const failed = r.outcomes.filter((o) => o.status === 'FAILED');
  const killed = r.outcomes.filter((o) => o.status === 'KILLED').length;
  const skipped =
    r.skipped.finished.length + r.skipped.failedBefore.length + r.skipped.notStarted.length;
  const lines = [
    `${r.stopped ? 'stopped' : 'done'} in ${formatSeconds(r.seconds)}: ${finished} finished, ${failed.length} failed, ${killed} killed, ${skipped} skipped` +
      ` (${r.skipped.finished.length} already finished, ${r.skipped.failedBefore.length} failed before, ${r.skipped.notStarted.length} not started)`,
    ...failed.map(
      (o) => `  FAILED ${o.trial.id} (run ${o.runId ?? '?'}): ${(o.reason ?? '').split('\n')[0]}`,
    ),
  ];
  return lines.join('\n');
}

/** Throws the sweep's one summary error when a trial failed or the sweep was stopped. */
export function checkSweep(r: SweepResult): void {
  const failed = r.outcomes.filter((o) => o.status !== 'FINISHED');
  if (r.stopped)
    throw new UserError(`sweep stopped: ${plural(failed.length, 'trial')} interrupted`, {
      exitCode: 130,
      hint: 'run the same command again to resume',
    });
  if (failed.length > 0) {
    throw new UserError(
      `${failed.length} of ${plural(r.outcomes.length, 'trial')} failed (see their vcp.failure_reason and logs/trial.log in MLflow)`,
      {
        hint: 'fix the cause, then re-run with --retry-failed',
      },
    );
  }
}
