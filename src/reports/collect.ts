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
  /**
   * The trials the results belong to: the spec's, plus the same sweep points with the seeds
   * other FINISHED runs used (added by `rerun --seeds`); in expansion order.
   */
  trials: Spec['trials'];
  /** Seeds found beyond the spec's (their trials are in `trials`). */
  extraSeeds: number[];
  /** FINISHED trial runs whose trial id is not in the spec (an older version of it). */
  foreign: number;
  /** Trials of the spec without a FINISHED run. */
  missing: string[];
}

export const tagOf = (run: Run, key: string): string | undefined =>
  run.data.tags.find((t) => t.key === key)?.value;

/** The seed a trial run was made with (tag vcp.seed, else its model.seed param). */
export function seedOf(run: Run): number | undefined {
  const text = tagOf(run, 'vcp.seed') ?? run.data.params.find((p) => p.key === 'model.seed')?.value;
  const seed = Number(text);
  return text !== undefined && Number.isInteger(seed) && seed >= 0 ? seed : undefined;
}

export interface CollectOptions {
  /**
   * The spec expanded with other seeds (same file, overrides and ids). Given, the FINISHED
   * runs of the spec's sweep points with seeds the spec does not list are included.
   */
  withSeeds?: (seeds: number[]) => Promise<Pick<Spec, 'trials'>>;
}

export async function collectResults(
  client: MlflowClient,
  spec: Pick<Spec, 'tracking' | 'trials' | 'file' | 'seeds'>,
  options: CollectOptions = {},
): Promise<Collected> {
  const name = spec.tracking.experiment;
  const experiment = await client.getExperimentByName(name);
  if (!experiment) {
    throw new UserError(
      `MLflow at ${client.trackingUri} has no experiment "${name}" (from ${spec.file})`,
      {
        hint: `run the experiment first (vcp-exp run ${spec.file}), or point the command at the server that holds it (--tracking-uri, MLFLOW_TRACKING_URI or the spec's tracking.uri)`,
      },
    );
  }
  const runs = await client.searchRuns({
    experimentIds: [experiment.experiment_id],
    filter: `tags."${TAGS.kind}" = 'trial' and attributes.status = 'FINISHED'`,
    orderBy: ['attributes.start_time ASC'],
  });
  let trials = spec.trials;
  const known = new Set(trials.map((t) => t.id));
  const extraSeeds = [
    ...new Set(
      runs
        .filter((r) => !known.has(tagOf(r, TAGS.trialId) ?? ''))
        .map(seedOf)
        .filter((s): s is number => s !== undefined && !spec.seeds.includes(s)),
    ),
  ].sort((a, b) => a - b);
  if (extraSeeds.length > 0 && options.withSeeds)
    trials = (await options.withSeeds([...spec.seeds, ...extraSeeds])).trials;
  const byId = new Map(trials.map((t) => [t.id, t]));
  const newest = new Map<string, Run>();
  let foreign = 0;
  for (const run of runs) {
    const id = tagOf(run, TAGS.trialId);
    if (!id || !byId.has(id)) {
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
      seed: byId.get(id)!.seed,
      metrics,
      tags,
    });
  }
  const missing = spec.trials.filter((t) => !results.has(t.id)).map((t) => t.id);
  const used = new Set(
    trials.filter((t) => results.has(t.id) && !spec.seeds.includes(t.seed)).map((t) => t.seed),
  );
  return {
    experimentId: experiment.experiment_id,
    results,
    trials: options.withSeeds ? trials : spec.trials,
    extraSeeds: extraSeeds.filter((s) => used.has(s)),
    foreign,
    missing,
  };
}
