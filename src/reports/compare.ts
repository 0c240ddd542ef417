/**
 * `vcp-exp compare A B`: two runs side by side (params with the differences marked, metrics
 * with B − A) and the MLflow UI's compare link. A and B are run ids or trial ids (resolved
 * through the `vcp.trial_id` tag to the newest FINISHED run, else the newest run).
 */
import { UserError } from '../errors.js';
import type { MlflowClient } from '../tracking/client.js';
import { TAGS } from '../tracking/layout.js';
import { compareUrl } from '../tracking/mlflow-ui.js';

export { compareUrl };
import type { Run } from '../tracking/types.js';
import { quoteFilterValue } from '../tracking/wire.js';

const RUN_ID = /^[0-9a-f]{32}$/;

export async function resolveRun(client: MlflowClient, ref: string): Promise<Run> {
  if (RUN_ID.test(ref)) {
    try {
      return await client.getRun(ref);
    } catch {
      // not a run id after all: try it as a trial id
    }
  }
  const experiments = await client.searchExperiments({ viewType: 'ACTIVE_ONLY' });
  const runs = experiments.length
    ? await client.searchRuns({
        experimentIds: experiments.map((e) => e.experiment_id),
        filter: `tags."${TAGS.trialId}" = ${quoteFilterValue(ref)}`,
        orderBy: ['attributes.start_time DESC'],
      })
    : [];
  const run = runs.find((r) => r.info.status === 'FINISHED') ?? runs[0];
  if (!run) {
    throw new UserError(`no MLflow run or trial "${ref}" at ${client.trackingUri}`, {
      hint: 'pass a run id (32 hex digits, from the MLflow UI) or a trial id (12 hex digits, from vcp-exp plan), and --tracking-uri of the server that holds it',
    });
  }
  return run;
}

export interface CompareRow {
  key: string;
  a?: string;
  b?: string;
  differs: boolean;
}

export interface Comparison {
  runs: [Run, Run];
  params: CompareRow[];
  metrics: (CompareRow & { delta?: number })[];
  url: string;
}

export function compareRuns(a: Run, b: Run, trackingUri: string): Comparison {
  const pa = new Map(a.data.params.map((p) => [p.key, p.value]));
  const pb = new Map(b.data.params.map((p) => [p.key, p.value]));
  const params = [...new Set([...pa.keys(), ...pb.keys()])]
    .sort()
    .map((key) => ({ key, a: pa.get(key), b: pb.get(key), differs: pa.get(key) !== pb.get(key) }));
  const ma = new Map(a.data.metrics.map((m) => [m.key, m.value]));
  const mb = new Map(b.data.metrics.map((m) => [m.key, m.value]));
  const metrics = [...new Set([...ma.keys(), ...mb.keys()])].sort().map((key) => {
    const [x, y] = [ma.get(key), mb.get(key)];
    return {
      key,
      a: x?.toPrecision(6),
      b: y?.toPrecision(6),
      differs: x !== y,
      delta: x !== undefined && y !== undefined ? y - x : undefined,
    };
  });
  return {
    runs: [a, b],
    params,
    metrics,
    url: compareUrl(
      trackingUri,
      [a.info.run_id, b.info.run_id],
      [a.info.experiment_id, b.info.experiment_id],
    ),
  };
}

function label(run: Run): string {
  const trial = run.data.tags.find((t) => t.key === TAGS.trialId)?.value;
  return `${run.info.run_id}${trial ? ` (trial ${trial})` : ''} ${run.info.status}`;
}

/** Plain-text rendering; `highlight` wraps differing rows (e.g. in ANSI bold yellow on a terminal). */
export function formatComparison(
  c: Comparison,
  highlight: (s: string) => string = (s) => s,
  where = `MLflow UI: ${c.url}`,
): string {
  const table = (title: string, rows: (CompareRow & { delta?: number })[], withDelta: boolean) => {
    const head = [title, 'A', 'B', ...(withDelta ? ['B − A'] : []), ''];
    const body = rows.map((r) => [
      r.key,
      r.a ?? '–',
      r.b ?? '–',
      ...(withDelta
        ? [r.delta === undefined ? '–' : (r.delta >= 0 ? '+' : '') + r.delta.toPrecision(4)]
        : []),
      r.differs ? '≠' : '',
    ]);
    const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
    const line = (cells: string[]) =>
      cells
        .map((s, i) => s.padEnd(widths[i]))
        .join('  ')
        .trimEnd();
    return [
      line(head),
      ...body.map((r, i) => (rows[i].differs ? highlight(line(r)) : line(r))),
    ].join('\n');
  };
  const nDiff = c.params.filter((p) => p.differs).length;
  return [
    `A: ${label(c.runs[0])}`,
    `B: ${label(c.runs[1])}`,
    '',
    `${nDiff} of ${c.params.length} params differ (≠):`,
    table('param', c.params, false),
    '',
    table('metric', c.metrics, true),
    '',
    where,
  ].join('\n');
}
