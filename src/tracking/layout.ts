/**
 * vcp-exp's MLflow layout (docs/architecture.md): one experiment per spec name, a parent run
 * per `vcp-exp run`, a child run per trial (tag mlflow.parentRunId) whose params are the
 * flattened resolved config and whose tags identify the trial, spec, commit and backend.
 */
import { execFileSync } from 'node:child_process';
import { userInfo } from 'node:os';
import { truncateTagValue } from './batch.js';
import type { MlflowClient } from './client.js';
import {
  FAILURE_REASON_TAG,
  RunLogger,
  type ParamValue,
  type RunLoggerOptions,
} from './run-logger.js';
import type { Run, RunStatus } from './types.js';
import { quoteFilterValue } from './wire.js';

export const TAGS = Object.freeze({
  parentRunId: 'mlflow.parentRunId',
  runName: 'mlflow.runName',
  user: 'mlflow.user',
  kind: 'vcp.run_kind',
  trialId: 'vcp.trial_id',
  specHash: 'vcp.spec_hash',
  gitCommit: 'vcp.git_commit',
  backend: 'vcp.backend',
  device: 'vcp.device',
  failureReason: FAILURE_REASON_TAG,
});

export type RunKind = 'sweep' | 'trial';

/** What every run of a `vcp-exp run` carries. */
export interface RunIdentity {
  specHash: string;
  gitCommit: string;
  /** The tfjs backend, e.g. "tensorflow" or "wasm". */
  backend: string;
  /** e.g. "cpu" or "gpu:0". */
  device: string;
}

export interface TrialRunInput extends RunIdentity {
  experimentId: string;
  parentRunId: string;
  trialId: string;
  /** The fully resolved trial config; logged as dotted-key params. */
  config: Record<string, unknown>;
  runName?: string;
}

/**
 * Flattens a config into MLflow params: nested objects become dotted keys; arrays and other
 * leaves are written as JSON (strings as they are), e.g. {model: {layers: [6, 12]}} →
 * {"model.layers": "[6,12]"}.
 */
export function flattenConfig(
  config: Record<string, unknown>,
  prefix = '',
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(config)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      Object.assign(out, flattenConfig(value as Record<string, unknown>, path));
    } else if (value !== undefined) {
      out[path] = typeof value === 'string' ? value : JSON.stringify(value);
    }
  }
  return out;
}

/** The checked-out commit (with "-dirty" when the tree has changes), or "unknown" outside git. */
export function currentGitCommit(cwd = process.cwd()): string {
  try {
    const sha = execFileSync('git', ['rev-parse', 'HEAD'], {
      cwd,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], {
      cwd,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    return dirty ? `${sha}-dirty` : sha;
  } catch {
    return 'unknown';
  }
}

function identityTags(identity: RunIdentity): Record<string, string> {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry (some containers)
  }
  return {
    [TAGS.specHash]: identity.specHash,
    [TAGS.gitCommit]: identity.gitCommit,
    [TAGS.backend]: identity.backend,
    [TAGS.device]: identity.device,
    [TAGS.user]: user,
  };
}

export class ExperimentLayout {
  constructor(
    readonly client: MlflowClient,
    /** Journal directory and flush settings for the RunLoggers this layout starts. */
    readonly loggerOptions: Omit<RunLoggerOptions, 'client' | 'runId'>,
  ) {}

  /** The experiment of a spec (created on first use). */
  experimentFor(specName: string): Promise<string> {
    return this.client.getOrCreateExperiment(specName);
  }

  private logger(runId: string): RunLogger {
    return new RunLogger({ ...this.loggerOptions, client: this.client, runId });
  }

  /** The parent run of one `vcp-exp run` invocation. */
  async startSweepRun(
    input: RunIdentity & {
      experimentId: string;
      runName?: string;
      params?: Record<string, ParamValue>;
    },
  ): Promise<RunLogger> {
    const run = await this.client.createRun({
      experimentId: input.experimentId,
      runName: input.runName,
      tags: { ...identityTags(input), [TAGS.kind]: 'sweep' satisfies RunKind },
    });
    const logger = this.logger(run.info.run_id);
    if (input.params) logger.logParams(input.params);
    return logger;
  }

  /** A trial's child run, with its config as params. */
  async startTrialRun(input: TrialRunInput): Promise<RunLogger> {
    const run = await this.client.createRun({
      experimentId: input.experimentId,
      runName: input.runName ?? input.trialId,
      tags: {
        ...identityTags(input),
        [TAGS.kind]: 'trial' satisfies RunKind,
        [TAGS.parentRunId]: input.parentRunId,
        [TAGS.trialId]: input.trialId,
      },
    });
    const logger = this.logger(run.info.run_id);
    logger.logParams(flattenConfig(input.config));
    await logger.flush();
    return logger;
  }

  /** A RunLogger for an existing run (e.g. in the trial's child process). */
  attach(runId: string): RunLogger {
    return this.logger(runId);
  }

  /** The newest FINISHED run of a trial, so that it is not run again. */
  async findFinishedTrial(experimentId: string, trialId: string): Promise<Run | undefined> {
    const [run] = await this.client.searchRuns({
      experimentIds: [experimentId],
      filter: `tags."${TAGS.trialId}" = ${quoteFilterValue(trialId)} and attributes.status = 'FINISHED'`,
      orderBy: ['attributes.start_time DESC'],
      maxResults: 1,
    });
    return run;
  }

  /** Every trial run of an experiment, optionally only those with `status` or under one parent. */
  listTrialRuns(
    experimentId: string,
    options: { status?: RunStatus; parentRunId?: string } = {},
  ): Promise<Run[]> {
    const clauses = [`tags."${TAGS.kind}" = 'trial'`];
    if (options.status) clauses.push(`attributes.status = ${quoteFilterValue(options.status)}`);
    if (options.parentRunId)
      clauses.push(`tags."${TAGS.parentRunId}" = ${quoteFilterValue(options.parentRunId)}`);
    return this.client.searchRuns({
      experimentIds: [experimentId],
      filter: clauses.join(' and '),
      orderBy: ['attributes.start_time ASC'],
    });
  }

  /** Marks a run whose process died without ending it (e.g. SIGKILL, out of memory). */
  async markEnded(
    runId: string,
    status: Exclude<RunStatus, 'RUNNING' | 'SCHEDULED'>,
    reason?: string,
  ): Promise<void> {
    if (reason !== undefined)
      await this.client.setTag(runId, TAGS.failureReason, truncateTagValue(reason));
    await this.client.updateRun(runId, { status, endTime: Date.now() });
  }
}
