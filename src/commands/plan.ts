import { resolveCacheBudget } from '../runner/cache-budget.js';
import { calibrate, synthImagesToGenerate } from '../runner/calibrate.js';
import {
  preflightDatasets,
  preflightError,
  renamedProductNotes,
} from '../runner/dataset-preflight.js';
import type { CostModel } from '../runner/estimate.js';
import { historyCosts } from '../runner/history-costs.js';
import {
  estimatePlan,
  noFinishedTrials,
  planSpec,
  type FinishedTrialLookup,
  type Plan,
} from '../runner/plan.js';
import { openPlanLookup } from '../runner/plan-lookup.js';
import { formatSharing, sharingOf } from '../runner/sharing.js';
import { loadSpec } from '../runner/spec.js';
import { checkpointsDir, featureCacheDir } from '../runner/state-dirs.js';
import { plural } from '../io/wording.js';
import { readServerState, resolveStateDir } from '../tracking/server.js';
import { chooseTrackingUri } from '../tracking/tracking-uri.js';
import { parseCacheGb } from './run.js';

export interface PlanCommandOptions {
  json?: boolean;
  /** Ask this MLflow server which trials are finished (the one rule: tracking-uri.ts). */
  trackingUri?: string;
  /** Start the managed MLflow server if none is running. */
  mlflow?: boolean;
  /** The feature cache budget to plan with (--feature-cache-gb). */
  featureCacheGb?: number | string;
  /** Calibrate this machine even when earlier runs (or an earlier calibration) give the costs. */
  calibrate?: boolean;
  /** False: no time estimate (nothing is measured). */
  estimate?: boolean;
  /** `key=value` overrides of the spec (src/runner/overrides.ts), as `run` takes them. */
  overrides?: readonly string[];
}

/** Seconds taken for starting the managed MLflow server when a run has to (not measured). */
export const MANAGED_SERVER_START_S = 10;

/**
 * `vcp-exp plan <spec>`: validates the spec, checks its datasets as `run` would (every problem
 * listed; a root missing here is only a warning, since a spec may be planned on one machine
 * and run on another) and prints its trials, the images each dataset gives them, what is
 * missing here, and the time the trials still to run will take, from per-image costs of
 * earlier runs in MLflow or, without them, measured on this machine now. Trains and logs
 * nothing; exits 2 on any problem, after printing the plan.
 */
export async function planCommand(
  file: string,
  options: PlanCommandOptions,
  given?: FinishedTrialLookup,
): Promise<void> {
  const spec = await loadSpec(file, { overrides: options.overrides });
  for (const w of spec.warnings) console.error(w);
  const stateDir = resolveStateDir();
  const budget = await resolveCacheBudget({
    cliGb: parseCacheGb(options.featureCacheGb),
    env: process.env,
    spec,
    dir: featureCacheDir(stateDir),
  });
  const reports = await preflightDatasets(spec.trials, {
    stateDir,
    onDataset: (use) => console.error(`checking ${use.labels.join(', ')} at ${use.root} …`),
  });
  for (const note of renamedProductNotes(reports)) console.error(note);
  const problems = preflightError(reports, false);
  const opened = given ? undefined : await openPlanLookup(spec, options);
  const lookup = given ?? opened?.lookup ?? noFinishedTrials;
  let plan: Plan;
  try {
    plan = await planSpec(spec, lookup, { checkpointsDir: checkpointsDir(stateDir), budget });
    const pending = spec.trials.filter((t) => !plan.finished.has(t.id));
    if (
      options.estimate !== false &&
      !problems &&
      plan.workload &&
      plan.missing.length === 0 &&
      pending.length
    ) {
      let model: CostModel | undefined =
        !options.calibrate && opened ? await historyCosts(opened.client, pending) : undefined;
      model ??= await calibrate({
        trials: pending,
        workers: spec.execution.workers,
        backend: spec.execution.backend,
        stateDir,
        fresh: options.calibrate,
        log: (line) => console.error(line),
      });
      const choice = chooseTrackingUri({
        flag: options.trackingUri,
        spec: { uri: spec.tracking.uri, file: spec.file },
      });
      const serverUp = choice.uri !== undefined || readServerState(stateDir) !== undefined;
      estimatePlan(plan, model, {
        setupS: serverUp ? 0 : MANAGED_SERVER_START_S,
        synthImages: synthImagesToGenerate(pending),
      });
    }
  } finally {
    await opened?.close();
  }
  if (options.json) console.log(JSON.stringify({ ...plan, finished: [...plan.finished] }, null, 2));
  else
    console.log(
      formatPlan(
        plan,
        lookup !== noFinishedTrials,
        options.estimate === false
          ? 'time: not estimated (--no-estimate)'
          : problems
            ? 'time: not estimated while the datasets have problems (below)'
            : undefined,
      ),
    );
  if (problems) throw problems;
}

const cell = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v));

export function formatDuration(seconds: number): string {
  if (seconds < 90) return `${Math.max(1, Math.round(seconds))} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

/** `timeNote` replaces the time line (e.g. when nothing was estimated). */
export function formatPlan(plan: Plan, tracked: boolean, timeNote?: string): string {
  const { spec } = plan;
  // Several methods (variants naming one): each trial's method and feature key are shown.
  const methods = new Set(spec.trials.map((t) => t.config.method)).size > 1;
  const header = [
    '#',
    'trial',
    ...(methods ? ['method'] : []),
    ...spec.axes,
    'seed',
    'training',
    ...(methods ? ['features'] : []),
    'done',
  ];
  const rows = spec.trials.map((t) => [
    String(t.index + 1),
    t.id,
    ...(methods ? [t.config.method] : []),
    ...spec.axes.map((a) => cell(t.point[a])),
    String(t.seed),
    t.trainingKey,
    ...(methods ? [t.featureKey.id] : []),
    tracked ? (plan.finished.has(t.id) ? 'yes' : 'no') : '-',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  const w = plan.work;
  const num = (n: number | undefined) => (n === undefined ? '?' : n.toLocaleString('en-US'));
  const datasets = plan.datasets.map((d) => {
    const products = d.perProduct ? Object.keys(d.perProduct).length : undefined;
    const counted =
      d.images === undefined
        ? `? images (${d.note ?? 'cannot be read'})`
        : `${plural(d.images, 'image')}${d.anomalous === undefined ? '' : ` (${d.anomalous} anomalous)`}, ${plural(products ?? 0, 'product')}${d.note ? ` (${d.note})` : ''}`;
    return `  ${d.labels.join(', ')}: ${d.root} (${d.split} split): ${counted}`;
  });
  const trials = spec.trials.length;
  const time = () => {
    if (timeNote !== undefined) return timeNote;
    if (plan.evaluationsToRun === 0) return 'time: nothing left to run';
    if (plan.missing.length > 0) return 'time: unknown until what is missing (below) is here';
    if (w.seconds === undefined) return 'time: unknown (an image count is unknown)';
    return `time: ~${formatDuration(w.seconds)} with ${plural(Math.min(spec.execution.workers, plan.evaluationsToRun), 'worker')}; per-image costs ${w.source}`;
  };
  const out = [
    `${spec.name}: ${spec.description}`.trim(),
    `spec ${spec.file} (hash ${spec.hash})${spec.chain.length > 1 ? `, extends ${spec.chain.slice(1).join(' → ')}` : ''}${spec.overrides.length > 0 ? `, overrides ${spec.overrides.join(' ')}` : ''}`,
    '',
    line(header),
    ...rows.map(line),
    '',
    'images the trials read (counted by the dataset adapters they use):',
    ...datasets,
    '',
    `${plural(trials, 'trial')}: ${plural(plan.trainings, 'training')}, ${plural(trials, 'evaluation')}` +
      (tracked
        ? `; ${plan.finished.size} already finished, to run: ${plural(plan.trainingsToRun, 'training')}, ${plural(plan.evaluationsToRun, 'evaluation')}`
        : ' (no tracking lookup: finished runs not checked)') +
      (plan.checkpointsFound > 0
        ? `; ${plural(plan.checkpointsFound, 'training')} already done (its checkpoint is reused)`
        : ''),
    ...formatSharing(sharingOf(spec.trials)),
    `evaluation groups: ${plural(plan.evaluationsToRun, 'evaluation')} in ${plural(plan.evalGroupsToRun, 'trial process', 'trial processes')}, one forward pass per test image each (trials of one training differing only in post-forward fields such as alpha share one; ${spec.execution.executor === 'slurm' ? 'Slurm: one trial per task' : `execution.eval_group_size ${spec.execution.eval_group_size}`})`,
    `work: ${num(w.trainImages)} train images × epochs × ${plural(plan.trainingsToRun, 'training')} = ${num(w.trainImagePasses)} image passes; ` +
      `${num(w.evalImages)} eval images × ${plural(plan.evalGroupsToRun, 'evaluation group')} = ${num(w.evalImagePasses)} image passes`,
    formatCachePlan(plan),
    time(),
    ...(plan.missing.length > 0
      ? [
          '',
          'missing here (vcp-exp run starts nothing until they are):',
          ...plan.missing.map((m) => `  - ${m}`),
        ]
      : []),
  ];
  return out.join('\n');
}

const gb = (bytes: number) => `${(bytes / 1e9).toFixed(bytes < 1e9 ? 2 : 1)} GB`;

/** The feature cache line: what the pending evaluations need against the budget, and the hit rate. */
export function formatCachePlan(plan: Plan): string {
  const c = plan.cache;
  const budget = `budget ${gb(c.budget.bytes)} (${c.budget.source})`;
  if (c.neededBytes === undefined || c.entries === undefined || c.hitRate === undefined)
    return `feature cache: ${budget}; its need is unknown until the dataset roots exist`;
  const fits = c.neededBytes <= c.budget.bytes ? 'fits' : 'does not fit: the first entries stay';
  return (
    `feature cache: the evaluations need ${gb(c.neededBytes)} for ${c.entries.toLocaleString('en-US')} entries (${c.dtype}), ${budget}: ${fits}; ` +
    `expected hit rate ${(100 * c.hitRate).toFixed(0)} % of ${c.reads!.toLocaleString('en-US')} evaluation feature reads (from an empty cache)`
  );
}
