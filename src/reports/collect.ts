/**
 * Reads an experiment's results from MLflow (never from local files): the FINISHED trial
 * runs whose `vcp.trial_id` is a trial of the spec, newest run per trial.
 */
import { UserError } from '../errors.js';
import type { Spec } from '../runner/spec-types.js';
import type { MlflowClient } from '../tracking/client.js';
import { TAGS } from '../tracking/layout.js';
import type { Run } from '../tracking/types.js';
import type { TrialResult } from './aggregate.js';

export interface Collected {
  experimentId: string;
  results: Map<string, TrialResult>;
  /** FINISHED trial runs whose trial id is not in the spec (an older version of it). */
  foreign: number;
  /** Trials of the spec without a FINISHED run. */
  missing: string[];
}

export const tagOf = (run: Run, key: string): string | undefined =>
  run.data.tags.find((t) => t.key === key)?.value;

export async function collectResults(
  client: MlflowClient,
  spec: Pick<Spec, 'tracking' | 'trials' | 'file'>,
): Promise<Collected> {
  const name = spec.tracking.experiment;
  const experiment = await client.getExperimentByName(name);
  if (!experiment) {
    throw new UserError(
      `MLflow at ${client.trackingUri} has no experiment "${name}" (from ${spec.file})`,
      {
        hint: `run the experiment first (vcp-exp run ${spec.file}), or pass --tracking-uri of the server that holds it`,
      },
    );
  }
  const runs = await client.searchRuns({
    experimentIds: [experiment.experiment_id],
    filter: `tags."${TAGS.kind}" = 'trial' and attributes.status = 'FINISHED'`,
    orderBy: ['attributes.start_time ASC'],
  });
  const trials = new Map(spec.trials.map((t) => [t.id, t]));
  const newest = new Map<string, Run>();
  let foreign = 0;
  for (const run of runs) {
    const id = tagOf(run, TAGS.trialId);
    if (!id || !trials.has(id)) {
      foreign++;
      continue;
    }
    const prev = newest.get(id);
    const later = (a: Run, b: Run) =>
      (a.info.start_time ?? 0) - (b.info.start_time ?? 0) ||
      a.info.run_id.localeCompare(b.info.run_id);
    if (!prev || later(run, prev) > 0) newest.set(id, run);
  }
  const results = new Map<string, TrialResult>();
  for (const [id, run] of newest) {
    const metrics = Object.fromEntries(run.data.metrics.map((m) => [m.key, m.value]));
    const tags = Object.fromEntries(run.data.tags.map((t) => [t.key, t.value]));
    results.set(id, {
      trialId: id,
      runId: run.info.run_id,
      seed: trials.get(id)!.seed,
      metrics,
      tags,
    });
  }
  const missing = spec.trials.filter((t) => !results.has(t.id)).map((t) => t.id);
  return { experimentId: experiment.experiment_id, results, foreign, missing };
}
