import {
  preflightDatasets,
  preflightError,
  renamedProductNotes,
} from '../runner/dataset-preflight.js';
import { planSpec, noFinishedTrials, type FinishedTrialLookup, type Plan } from '../runner/plan.js';
import { openPlanLookup } from '../runner/plan-lookup.js';
import { loadSpec } from '../runner/spec.js';
import { resolveStateDir } from '../tracking/server.js';

export interface PlanCommandOptions {
  json?: boolean;
  /** Ask this MLflow server which trials are finished (else MLFLOW_TRACKING_URI, tracking.uri, a running managed server). */
  trackingUri?: string;
  /** Start the managed MLflow server if none is running. */
  mlflow?: boolean;
}

/**
 * `vcp-exp plan <spec>`: validates the spec, checks its datasets as `run` would (every problem
 * listed; a root missing here is only a warning, since a spec may be planned on one machine
 * and run on another) and prints its trials, trainings vs evaluations and a rough work
 * estimate. Runs nothing; exits 2 on any problem, after printing the plan.
 */
export async function planCommand(
  file: string,
  options: PlanCommandOptions,
  given?: FinishedTrialLookup,
): Promise<void> {
  const spec = await loadSpec(file);
  for (const w of spec.warnings) console.error(w);
  const reports = await preflightDatasets(spec.trials, {
    stateDir: resolveStateDir(),
    onDataset: (use) => console.error(`checking ${use.labels.join(', ')} at ${use.root} …`),
  });
  for (const note of renamedProductNotes(reports)) console.error(note);
  const problems = preflightError(reports, false);
  const opened = given ? undefined : await openPlanLookup(spec, options);
  const lookup = given ?? opened?.lookup ?? noFinishedTrials;
  let plan: Plan;
  try {
    plan = await planSpec(spec, lookup);
  } finally {
    await opened?.close();
  }
  if (options.json) console.log(JSON.stringify({ ...plan, finished: [...plan.finished] }, null, 2));
  else console.log(formatPlan(plan, lookup !== noFinishedTrials));
  if (problems) throw problems;
}

const cell = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v));

export function formatPlan(plan: Plan, tracked: boolean): string {
  const { spec } = plan;
  const header = ['#', 'trial', ...spec.axes, 'seed', 'training', 'done'];
  const rows = spec.trials.map((t) => [
    String(t.index + 1),
    t.id,
    ...spec.axes.map((a) => cell(t.point[a])),
    String(t.seed),
    t.trainingKey,
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
  const out = [
    `${spec.name}: ${spec.description}`.trim(),
    `spec ${spec.file} (hash ${spec.hash})${spec.chain.length > 1 ? `, extends ${spec.chain.slice(1).join(' → ')}` : ''}`,
    '',
    line(header),
    ...rows.map(line),
    '',
    `${spec.trials.length} trials: ${plan.trainings} trainings, ${spec.trials.length} evaluations` +
      (tracked
        ? `; ${plan.finished.size} already finished, to run: ${plan.trainingsToRun} trainings, ${plan.evaluationsToRun} evaluations`
        : ' (no tracking lookup: finished runs not checked)'),
    `work: ${num(w.trainImages)} train images × epochs × ${plan.trainingsToRun} trainings = ${num(w.trainImagePasses)} image passes; ` +
      `${num(w.evalImages)} eval images × ${plan.evaluationsToRun} evaluations = ${num(w.evalImagePasses)} image passes`,
    w.seconds === undefined
      ? 'time: unknown until the dataset roots exist (image counts are needed)'
      : `time: ~${formatDuration(w.seconds)} on ${w.backend} (approximate: vision-tower FLOPs ÷ typical ${w.backend} throughput + ~5 s start-up per trial process; the feature cache makes re-evaluations cheaper)`,
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

function formatDuration(seconds: number): string {
  if (seconds < 90) return `${Math.max(1, Math.round(seconds))} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}
