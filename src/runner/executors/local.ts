/**
 * The local executor: a pool of `workers` child processes on this machine, one process per
 * job — a trial, or an evaluation group of trials (execa, IPC for progress). A job's stdout and
 * stderr go to its `trial.log`, uploaded to each member's run as `logs/trial.log`; the members'
 * work directories are removed once that is done. A process that dies without ending its run (SIGKILL, out of memory) is marked here:
 * FAILED, or KILLED when the runner stopped it. Before each trial the pool waits for the
 * tracking server (a supervised one may be restarting) and checks the free disk space; a
 * trial that ran out of disk (exit 28) stops the sweep from starting more.
 */
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { DISK_FULL_EXIT_CODE, diskFullReason, isDiskFull } from '../../errors.js';
import { copyWithoutNativeLogNoise } from '../../io/native-log.js';
import type { BackendChoice } from '../../model/backend.js';
import { artifactDir, TRIAL_LOG_ARTIFACT } from '../../tracking/artifact-names.js';
import type { ArtifactStore } from '../../tracking/artifacts.js';
import { TAGS, type ExperimentLayout, type RunIdentity } from '../../tracking/layout.js';
import type { DatasetInputs } from '../dataset-inputs.js';
import { lowDiskSpace } from '../disk-space.js';
import type { Spec, Trial } from '../spec-types.js';
import { checkpointsDir, featureCacheDir } from '../state-dirs.js';
import { DEFAULT_MAX_GROUP, formGroups } from '../groups.js';
import {
  isTrialEvent,
  type FeatureCacheSettings,
  type TrialEvent,
  type TrialJob,
  type TrialSummary,
} from '../trial-events.js';
import { gpuIndex, gpuWorkerEnv } from './devices.js';
import { liveArtifactStore, streamLog, uploadTrialLog } from './log-stream.js';
import { runPool, type PoolResult, type TrialOutcome } from './pool.js';
import { trialProcessArgs } from './trial-entry.js';

/** How often a running trial's log is uploaded to its run (when it grew). */
export const LOG_UPLOAD_INTERVAL_MS = 15_000;

/** Tags naming the process that owns a run, so a later run can tell an orphan from a live one. */
export const OWNER_TAGS = Object.freeze({ host: 'vcp.host', pid: 'vcp.runner_pid' });

export interface LocalExecutorOptions {
  spec: Spec;
  layout: ExperimentLayout;
  experimentId: string;
  sweepRunId: string;
  trackingUri: string;
  journalDir: string;
  stateDir: string;
  identity: Omit<RunIdentity, 'device'>;
  backend: BackendChoice;
  workers: number;
  /** execution.devices: "cpu", or GPU ids ("0", "gpu:1"), given to the workers in turn. */
  devices: readonly string[];
  failFast?: boolean;
  /** Share the frozen-feature cache and trained checkpoints between trials (default true). */
  share?: boolean;
  samplesPerProduct?: number;
  /** Largest evaluation group (1: every trial in its own process). Default DEFAULT_MAX_GROUP. */
  maxGroup?: number;
  /** Budget and precision of the shared feature cache. */
  featureCache?: FeatureCacheSettings;
  /** Describes each trial's datasets for its run's inputs (none when absent). */
  datasetInputs?: DatasetInputs;
  /** Resolves when the tracking server takes requests (a supervised one may be restarting). */
  trackingReady?: () => Promise<void>;
  /** Environment whose VCP_EXP_MIN_FREE_MB sets the free-space floor (default process.env). */
  env?: NodeJS.ProcessEnv;
  onStart?: (trial: Trial, worker: number, device: string) => void;
  /** An event of a job's process, for the trials it concerns (every member, or the one done). */
  onEvent?: (trials: readonly Trial[], event: TrialEvent) => void;
  onEnd?: (outcome: TrialOutcome) => void;
}

/** The reason of an outcome that ran out of disk, which stops the sweep from starting more. */
export const isDiskFullOutcome = (o: TrialOutcome) => /^disk full\b/m.test(o.reason ?? '');

/** The device of a worker and the CUDA_VISIBLE_DEVICES that pins it there (devices.ts). */
export function workerDevice(
  devices: readonly string[],
  worker: number,
): { device: string; cuda?: string } {
  const raw = devices.length > 0 ? devices[worker % devices.length]! : 'cpu';
  const gpu = gpuIndex(raw);
  return gpu !== undefined ? { device: `gpu:${gpu}`, cuda: gpu } : { device: raw };
}

function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

export class LocalExecutor {
  private readonly children = new Set<ResultPromise>();
  private stopping = false;
  private readonly abort = new AbortController();
  /** Uploads of the growing trial logs: one attempt each, never journaled (see log-stream.ts). */
  private readonly liveArtifacts: ArtifactStore;

  constructor(private readonly options: LocalExecutorOptions) {
    this.liveArtifacts = liveArtifactStore(options.trackingUri);
  }

  /**
   * Runs the trials, each evaluation group (src/runner/groups.ts; at most `maxGroup` trials,
   * default DEFAULT_MAX_GROUP) in one process; resolves when every started job has ended.
   */
  run(trials: readonly Trial[]): Promise<PoolResult> {
    const { workers, failFast, stateDir } = this.options;
    const jobs = formGroups(trials, this.options.maxGroup ?? DEFAULT_MAX_GROUP);
    return runPool(
      jobs,
      {
        workers,
        failFast,
        signal: this.abort.signal,
        beforeStart: async () => {
          await this.options.trackingReady?.();
          return lowDiskSpace(stateDir, this.options.env);
        },
        haltAfter: (outcome) =>
          isDiskFullOutcome(outcome) ? outcome.reason!.split('\n')[0] : undefined,
      },
      (job, worker) => this.runOne(job, worker),
    );
  }

  /** Ctrl-C: start nothing new and send SIGTERM to the running trials (they end their runs KILLED). */
  stop(): void {
    this.stopping = true;
    this.abort.abort();
    for (const child of this.children) child.kill('SIGTERM');
  }

  /** One job (a trial or an evaluation group) in one child process: one MLflow run per member. */
  private async runOne(trials: readonly Trial[], worker: number): Promise<TrialOutcome[]> {
    const o = this.options;
    const started = performance.now();
    const { device, cuda } = workerDevice(o.devices, worker);
    const members: TrialJob['members'] = [];
    const loggers = [];
    for (const trial of trials) {
      const logger = await o.layout.startTrialRun({
        ...o.identity,
        device,
        experimentId: o.experimentId,
        parentRunId: o.sweepRunId,
        trialId: trial.id,
        config: trial.config as unknown as Record<string, unknown>,
        runName: runName(trial),
        datasets: o.datasetInputs ? await o.datasetInputs.forTrial(trial) : undefined,
      });
      logger.setTags({
        [OWNER_TAGS.host]: hostname(),
        [OWNER_TAGS.pid]: String(process.pid),
        'vcp.seed': String(trial.seed),
      });
      await logger.flush();
      loggers.push(logger);
      members.push({
        trial,
        workDir: join(o.stateDir, 'trials', logger.runId),
        runId: logger.runId,
      });
    }
    for (const trial of trials) o.onStart?.(trial, worker, device);

    const share = o.share ?? true;
    const lead = members[0];
    const logFile = join(lead.workDir, 'trial.log');
    const job: TrialJob = {
      members,
      trackingUri: o.trackingUri,
      journalDir: o.journalDir,
      checkpointsDir: share ? checkpointsDir(o.stateDir) : join(lead.workDir, 'checkpoints'),
      featureCacheDir: share ? featureCacheDir(o.stateDir) : null,
      featureCache: o.featureCache,
      reuseCheckpoint: share,
      backend: o.backend,
      device,
      samplesPerProduct: o.samplesPerProduct ?? lead.trial.config.eval.samples_per_product,
    };
    const jobFile = join(lead.workDir, 'job.json');
    try {
      for (const { workDir } of members) await mkdir(workDir, { recursive: true });
      await writeFile(jobFile, JSON.stringify(job));
      closeSync(openSync(logFile, 'a'));
    } catch (error) {
      // E.g. a full disk: the runs exist, so they must end (journaled if need be), not stay RUNNING.
      const reason = isDiskFull(error) ? diskFullReason(error) : (error as Error).message;
      const outcomes: TrialOutcome[] = [];
      for (const [i, { trial, runId }] of members.entries()) {
        await loggers[i]
          .end('FAILED', `the trial could not start: ${reason}`)
          .catch(() => undefined);
        const outcome: TrialOutcome = {
          trial,
          status: 'FAILED',
          reason,
          runId,
          seconds: (performance.now() - started) / 1000,
        };
        o.onEnd?.(outcome);
        outcomes.push(outcome);
      }
      return outcomes;
    }
    const summaries = new Map<string, TrialSummary>();
    let result: { exitCode?: number; signal?: string };
    const child = execa(process.execPath, trialProcessArgs(jobFile), {
      stdin: 'ignore',
      // O_APPEND on both: lines of the two streams interleave as they are written.
      stdout: { file: logFile, append: true },
      stderr: { file: logFile, append: true },
      ipc: true,
      serialization: 'json',
      reject: false,
      forceKillAfterDelay: 30_000,
      env: {
        ...gpuWorkerEnv(cuda),
        VCP_EXP_TRIAL: trials.map((t) => t.id).join(','),
      },
    });
    this.children.add(child);
    const stream = streamLog({
      file: logFile,
      everyMs: LOG_UPLOAD_INTERVAL_MS,
      upload: (file) =>
        uploadTrialLog(
          this.liveArtifacts,
          members.map((m) => m.runId),
          file,
          join(lead.workDir, 'live', 'trial.log'),
        ),
    });
    child.on('message', (message: unknown) => {
      if (!isTrialEvent(message)) return;
      if (message.type === 'done') {
        summaries.set(message.summary.trialId, message.summary);
        const trial = trials.find((t) => t.id === message.summary.trialId);
        if (trial) o.onEvent?.([trial], message);
      } else o.onEvent?.(trials, message);
    });
    try {
      result = await child;
    } finally {
      this.children.delete(child);
      await stream.stop();
    }

    const seconds = (performance.now() - started) / 1000;
    const how = result.signal
      ? `killed by ${result.signal}`
      : `exited with code ${result.exitCode ?? '?'}`;
    const outcomes: TrialOutcome[] = [];
    for (const { trial, runId } of members) {
      const summary = summaries.get(trial.id);
      let outcome: TrialOutcome;
      if (summary) {
        // Recorded and ended FINISHED by the process, whatever happened to it afterwards.
        outcome = { trial, status: 'FINISHED', summary, runId, seconds };
      } else {
        const run = await o.layout.client.getRun(runId).catch(() => undefined);
        const reasonTag = run?.data.tags.find((t) => t.key === TAGS.failureReason)?.value;
        const diskFull =
          result.exitCode === DISK_FULL_EXIT_CODE
            ? (/^disk full\b.*$/m.exec(reasonTag ?? tail(logFile, 200))?.[0] ??
              'disk full (the trial process exited with code 28)')
            : undefined;
        if (!run || run.info.status === 'RUNNING') {
          const status = this.stopping ? 'KILLED' : 'FAILED';
          const reason = this.stopping
            ? `stopped by the runner (${how})`
            : diskFull
              ? `${diskFull}\n${tail(logFile)}`
              : `the trial process ${how} without ending its run${result.signal === 'SIGKILL' ? ' (out of memory?)' : ''}\n${tail(logFile)}`;
          // Through a RunLogger: journaled, and delivered later, when the server is away.
          await o.layout
            .attach(runId)
            .end(status, reason)
            .catch(() => undefined);
          outcome = { trial, status, reason, runId, seconds };
        } else if (diskFull && !reasonTag?.startsWith('disk full')) {
          outcome = { trial, status: 'FAILED', reason: diskFull, runId, seconds };
        } else {
          const status =
            run.info.status === 'KILLED'
              ? 'KILLED'
              : run.info.status === 'FINISHED'
                ? 'FINISHED'
                : 'FAILED';
          outcome = { trial, status, reason: reasonTag ?? how, runId, seconds };
        }
      }
      outcomes.push(outcome);
    }
    // The log is complete only now: the parent uploads it to every member's run (journaled if
    // the server is away); once it is, the work directories hold nothing that is not in MLflow
    // or its journal.
    await copyWithoutNativeLogNoise(logFile, logFile).catch(() => undefined);
    let logged = true;
    for (const { runId } of members) {
      const attached = o.layout.attach(runId);
      logged =
        (await attached
          .logArtifact(logFile, artifactDir(TRIAL_LOG_ARTIFACT))
          .then(() => attached.flush())
          .then(
            () => true,
            (error: unknown) => {
              console.error(`could not upload ${logFile} (kept): ${(error as Error).message}`);
              return false;
            },
          )) && logged;
    }
    if (logged)
      for (const { workDir } of members)
        await rm(workDir, { recursive: true, force: true }).catch(() => undefined);
    for (const outcome of outcomes) o.onEnd?.(outcome);
    return outcomes;
  }
}

/** A readable MLflow run name: the swept values and the seed. */
export function runName(trial: Trial): string {
  const parts = Object.entries(trial.point).map(
    ([k, v]) => `${k.split('.').at(-1)}=${typeof v === 'string' ? v : JSON.stringify(v)}`,
  );
  return [...parts, `seed=${trial.seed}`].join(' ').slice(0, 250);
}
