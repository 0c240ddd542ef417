/**
 * vcp-exp's MLflow layout (docs/architecture.md): one experiment per spec name, a parent run
 * per `vcp-exp run`, a child run per trial (tag mlflow.parentRunId) whose params are the
 * flattened resolved config and whose tags identify the trial, spec, commit and backend.
 */
import { execFileSync } from 'node:child_process';
import { userInfo } from 'node:os';
import { dirname, resolve } from 'node:path';
import { truncateTagValue } from './batch.js';
import type { MlflowClient } from './client.js';
import {
  CUSTOM_MODEL_DEVELOPMENT,
  EXPERIMENT_TAGS,
  headlineViewTag,
  type HeadlineView,
} from './mlflow-ui.js';
import {
  FAILURE_REASON_TAG,
  RunLogger,
  type ParamValue,
  type RunLoggerOptions,
} from './run-logger.js';
import type { DatasetInput, Run, RunStatus } from './types.js';
import { quoteFilterValue } from './wire.js';

export const TAGS = Object.freeze({
  parentRunId: 'mlflow.parentRunId',
  runName: 'mlflow.runName',
  user: 'mlflow.user',
  sourceName: 'mlflow.source.name',
  sourceType: 'mlflow.source.type',
  sourceGitCommit: 'mlflow.source.git.commit',
  gitBranch: 'mlflow.source.git.branch',
  gitRepoUrl: 'mlflow.source.git.repoURL',
  kind: 'vcp.run_kind',
  trialId: 'vcp.trial_id',
  specHash: 'vcp.spec_hash',
  gitCommit: 'vcp.git_commit',
  backend: 'vcp.backend',
  device: 'vcp.device',
  failureReason: FAILURE_REASON_TAG,
});

export type RunKind = 'sweep' | 'trial';

/** Where a run comes from, as MLflow's standard source tags say it. */
export interface RunSource {
  /** The spec file that ran (MLflow shows its base name in the Source column). */
  name: string;
  /** The git checkout holding it, when it is in one. */
  git?: { commit: string; branch?: string; repoUrl?: string };
}

/** What every run of a `vcp-exp run` carries. */
export interface RunIdentity {
  specHash: string;
  gitCommit: string;
  /** The tfjs backend, e.g. "tensorflow" or "wasm". */
  backend: string;
  /** e.g. "cpu" or "gpu:0". */
  device: string;
  source?: RunSource;
}

/** How an experiment presents itself in the UI (set on every sweep; idempotent). */
export interface ExperimentPresentation {
  /** The spec's description (`mlflow.note.content`). */
  description?: string;
  /** Columns of the saved headline view. */
  view?: HeadlineView;
}

export interface TrialRunInput extends RunIdentity {
  experimentId: string;
  parentRunId: string;
  trialId: string;
  /** The fully resolved trial config; logged as dotted-key params. */
  config: Record<string, unknown>;
  runName?: string;
  /** The datasets the trial reads, logged as the run's inputs. */
  datasets?: readonly DatasetInput[];
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

const git = (cwd: string, args: string[]): string | undefined => {
  try {
    return (
      execFileSync('git', args, {
        cwd,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim() || undefined
    );
  } catch {
    return undefined;
  }
};

/** The source of runs started from `specFile`: its path and, in a git checkout, its commit. */
export function runSource(specFile: string): RunSource {
  const cwd = dirname(resolve(specFile));
  const commit = git(cwd, ['rev-parse', 'HEAD']);
  if (!commit) return { name: specFile };
  const branch = git(cwd, ['rev-parse', '--abbrev-ref', 'HEAD']);
  const repoUrl = git(cwd, ['config', '--get', 'remote.origin.url']);
  return {
    name: specFile,
    git: {
      commit,
      ...(branch && branch !== 'HEAD' ? { branch } : {}),
      ...(repoUrl ? { repoUrl } : {}),
    },
  };
}

function userName(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown'; // no passwd entry (some containers)
  }
}

function identityTags(identity: RunIdentity): Record<string, string> {
  const tags: Record<string, string> = {
    [TAGS.specHash]: identity.specHash,
    [TAGS.gitCommit]: identity.gitCommit,
    [TAGS.backend]: identity.backend,
    [TAGS.device]: identity.device,
    [TAGS.user]: userName(),
  };
  const source = identity.source;
  if (source) {
    tags[TAGS.sourceType] = 'LOCAL';
    tags[TAGS.sourceName] = truncateTagValue(source.name);
    if (source.git) {
      tags[TAGS.sourceGitCommit] = source.git.commit;
      if (source.git.branch) tags[TAGS.gitBranch] = source.git.branch;
      if (source.git.repoUrl) tags[TAGS.gitRepoUrl] = truncateTagValue(source.git.repoUrl);
    }
  }
  return tags;
}

export class ExperimentLayout {
  constructor(
    readonly client: MlflowClient,
    /** Journal directory and flush settings for the RunLoggers this layout starts. */
    readonly loggerOptions: Omit<RunLoggerOptions, 'client' | 'runId'>,
  ) {}

  /**
   * The experiment of a spec (created on first use). With `presentation`, it is (re)tagged as
   * a model-development experiment with the spec's description and the headline view.
   */
  async experimentFor(specName: string, presentation?: ExperimentPresentation): Promise<string> {
    const id = await this.client.getOrCreateExperiment(specName);
    if (presentation) {
      await this.client.setExperimentTag(id, EXPERIMENT_TAGS.kind, CUSTOM_MODEL_DEVELOPMENT);
      if (presentation.description)
        await this.client.setExperimentTag(id, EXPERIMENT_TAGS.note, presentation.description);
      if (presentation.view) {
        const tag = headlineViewTag(presentation.view);
        await this.client.setExperimentTag(id, tag.key, tag.value);
      }
    }
    return id;
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
    if (input.datasets) await this.client.logInputs(run.info.run_id, input.datasets);
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
