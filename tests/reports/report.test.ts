/**
 * `vcp-exp report` and `compare` against a real MLflow server: runs with known metric values
 * (two axes, three seeds, a missing seed, a single-seed point, a FAILED run, a superseded
 * run, a run of an unknown trial), artifacts for the picture figures; then the rendered
 * cells, mean ± std, paper column and delta, bold best, CSV/LaTeX, PNG sizes, idempotence.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { encodeNpy } from '../../src/io/npy.js';
import { reportCommand } from '../../src/commands/report.js';
import {
  compareRuns,
  compareUrl,
  formatComparison,
  resolveRun,
} from '../../src/reports/compare.js';
import { writeReport } from '../../src/reports/report.js';
import { PNG_SCALE } from '../../src/reports/vega.js';
import { loadSpec } from '../../src/runner/spec.js';
import type { Spec, Trial } from '../../src/runner/spec-types.js';
import {
  attentionPath,
  samplePath,
  textEmbeddingsPath,
} from '../../src/tracking/artifact-names.js';
import { ArtifactStore } from '../../src/tracking/artifacts.js';
import type { MlflowClient } from '../../src/tracking/client.js';
import { flattenConfig, TAGS } from '../../src/tracking/layout.js';
import { startTestServer, type TestServer } from '../tracking/helpers.js';

const SPEC = 'tests/fixtures/reports/report-spec.yaml';
let server: TestServer;
let client: MlflowClient;
let spec: Spec;
let work: string;
const runOf = new Map<string, string>(); // trial id → the run the report must use

/** Known values (fractions, as src/eval computes them). */
function metricsFor(t: Trial): Record<string, number> {
  const h = t.point.heads as number;
  const a = t.point.alpha as number;
  const e = 0.001 * (t.seed - 2);
  return {
    'synth.pixel_auroc': 0.8 + 0.01 * h + 0.1 * a + e,
    'synth.pixel_ap': 0.3 + 0.05 * h + e,
    'synth.bottle.pixel_auroc': 0.85 + 0.01 * h + e,
    'synth.bottle.pixel_ap': 0.4 + 0.05 * h + e,
    'synth.cable.pixel_auroc': 0.7 + e,
    'synth.cable.pixel_ap': 0.2 + 0.02 * h + e,
  };
}

async function makeRun(
  experimentId: string,
  parent: string,
  trialId: string,
  config: Record<string, unknown>,
  metrics: Record<string, number>,
  status: 'FINISHED' | 'FAILED',
  startTime: number,
): Promise<string> {
  const run = await client.createRun({
    experimentId,
    runName: trialId,
    startTime,
    tags: { [TAGS.kind]: 'trial', [TAGS.parentRunId]: parent, [TAGS.trialId]: trialId },
  });
  const id = run.info.run_id;
  await client.logBatch(id, {
    params: Object.entries(flattenConfig(config)).map(([key, value]) => ({ key, value })),
    metrics: Object.entries(metrics).map(([key, value]) => ({
      key,
      value,
      step: 0,
      timestamp: startTime,
    })),
    tags: [],
  });
  await client.updateRun(id, { status, endTime: startTime + 1 });
  return id;
}

async function logArtifacts(runId: string): Promise<void> {
  const store = new ArtifactStore(client);
  const dir = join(work, 'artifacts');
  const put = async (name: string, bytes: Buffer, target: string) => {
    writeFileSync(join(dir, name), bytes);
    await store.putFile(runId, join(dir, name), target);
  };
  rmSync(dir, { recursive: true, force: true });
  (await import('node:fs')).mkdirSync(dir, { recursive: true });
  const img = (r: number, g: number, b: number) =>
    sharp({ create: { width: 64, height: 48, channels: 3, background: { r, g, b } } })
      .png()
      .toBuffer();
  await put('i.png', await img(200, 180, 40), samplePath('synth', 'bottle', '000', 'image'));
  await put('m.png', await img(255, 255, 255), samplePath('synth', 'bottle', '000', 'mask'));
  await put('o.png', await img(220, 30, 30), samplePath('synth', 'bottle', '000', 'overlay'));
  // Another dataset's pictures must not be picked up by the figure of synth.
  await put('x.png', await img(0, 0, 255), samplePath('other', 'bottle', '000', 'image'));
  const att = new Float32Array(2 * 2 * 16).map((_, i) => ((i * 7) % 16) + 1);
  for (let m = 0; m < 4; m++) {
    let s = 0;
    for (let i = 0; i < 16; i++) s += att[m * 16 + i];
    for (let i = 0; i < 16; i++) att[m * 16 + i] /= s; // each map sums to 1, as a softmax does
  }
  await put('a.npy', encodeNpy(att, [2, 2, 16]), attentionPath('synth', 'bottle', '000', 3));
  // A shallower layer: the figure draws the deepest one.
  await put(
    'a1.npy',
    encodeNpy(new Float32Array(2 * 2 * 9).fill(1 / 9), [2, 2, 9]),
    attentionPath('synth', 'bottle', '000', 1),
  );
  for (const [product, offset] of [
    ['bottle', 0],
    ['cable', 5],
  ] as const) {
    const emb = new Float32Array(10 * 2 * 8).map(
      (_, i) => offset + Math.sin(i * 1.7) * 0.1 + (Math.floor(i / 8) % 2) * 2,
    );
    await put(`${product}.npy`, encodeNpy(emb, [10, 2, 8]), textEmbeddingsPath('synth', product));
  }
}

before(async () => {
  server = await startTestServer('reports');
  if (!server.ok) return;
  client = server.client();
  work = mkdtempSync(join(tmpdir(), 'vcp-report-test-'));
  spec = await loadSpec(SPEC);
  const experimentId = await client.getOrCreateExperiment(spec.tracking.experiment);
  const parent = (
    await client.createRun({ experimentId, runName: 'sweep', tags: { [TAGS.kind]: 'sweep' } })
  ).info.run_id;
  let clock = 1_700_000_000_000;
  for (const t of spec.trials) {
    const { heads, alpha } = t.point as { heads: number; alpha: number };
    if (heads === 2 && alpha === 0.5 && t.seed === 3) continue; // never ran: n = 2
    if (heads === 1 && alpha === 0.75 && t.seed > 1) {
      if (t.seed === 2)
        await makeRun(
          experimentId,
          parent,
          t.id,
          t.config as never,
          { 'synth.pixel_auroc': 0.01 },
          'FAILED',
          clock++,
        );
      continue; // n = 1
    }
    if (heads === 1 && alpha === 0.5 && t.seed === 1)
      await makeRun(
        experimentId,
        parent,
        t.id,
        t.config as never,
        { 'synth.pixel_auroc': 0.02 },
        'FINISHED',
        clock++,
      ); // superseded
    runOf.set(
      t.id,
      await makeRun(
        experimentId,
        parent,
        t.id,
        t.config as never,
        metricsFor(t),
        'FINISHED',
        clock++,
      ),
    );
  }
  await makeRun(
    experimentId,
    parent,
    'deadbeef0000',
    {},
    { 'synth.pixel_auroc': 0.03 },
    'FINISHED',
    clock,
  ); // an old spec's trial
  await client.updateRun(parent, { status: 'FINISHED' });
  await logArtifacts(runOf.get(spec.trials[0].id)!);
});

after(async () => {
  if (server?.ok) await server.cleanup();
  if (work) rmSync(work, { recursive: true, force: true });
});

const snapshot = (dir: string) =>
  Object.fromEntries(
    readdirSync(dir)
      .sort()
      .map((f) => [f, readFileSync(join(dir, f))]),
  );

test('report: tables, figures and README from MLflow runs, byte-identical on rerun', async (t) => {
  if (!server.ok) return t.skip(server.reason);
  const out = join(work, 'report');
  const result = await writeReport({ spec, client, outDir: out });
  const files = new Set(result.files);
  for (const f of [
    'heads-alpha.md',
    'heads-alpha.tex',
    'heads-alpha.csv',
    'heads-alpha.synth.products.md',
    'curve.svg',
    'curve.png',
    'gain.png',
    'samples.png',
    'attention.png',
    'tsne.png',
    'README.md',
  ]) {
    assert.ok(files.has(f), `missing ${f}`);
  }
  assert.ok(!files.has('missing.png'));
  assert.ok(
    result.notes.some((n) => n.includes('figure missing not drawn') && n.includes('samples/')),
  );
  assert.ok(result.notes.some((n) => n.startsWith('3 trials without a FINISHED run')));
  assert.ok(
    result.notes.some((n) =>
      n.startsWith('1 FINISHED run of trials no longer in the spec left out'),
    ),
  );

  const md = readFileSync(join(out, 'heads-alpha.md'), 'utf8').split('\n');
  assert.equal(
    md[0],
    '| Post-VCP heads | α (weight of the VCP map) | n | pixel AUROC (%) | paper | Δ | pixel AP (%) | paper | Δ |',
  );
  assert.equal(
    md[2],
    '| 1 | 0.5 | 3 | 86.00 ± 0.10 | 85.0 | +1.00 | 35.00 ± 0.10 | 40.0 | -5.00 |',
  );
  assert.equal(md[3], '| 1 | 0.75 | 1 | 88.40 | – | – | 34.90 | – | – |');
  assert.equal(md[4], '| 2 | 0.5 | 2 | 86.95 ± 0.07 | – | – | 39.95 ± 0.07 | – | – |');
  assert.equal(md[5], '| 2 | 0.75 | 3 | **89.50 ± 0.10** | – | – | **40.00 ± 0.10** | – | – |');

  const products = readFileSync(join(out, 'heads-alpha.synth.products.md'), 'utf8');
  assert.ok(
    products.includes(
      '| bottle | 2 | 0.75 | 3 | **87.00 ± 0.10** | 90.0 | -3.00 | **50.00 ± 0.10** | 50.0 | +0.00 |',
    ),
    products,
  );
  assert.ok(products.includes('| mean | 1 | 0.5 | 3 | 86.00 ± 0.10 | – | – |'));

  const tex = readFileSync(join(out, 'heads-alpha.tex'), 'utf8');
  assert.match(
    tex,
    /\\toprule\nPost-VCP heads & \$\\alpha\$ \(weight of the VCP map\) & n & pixel AUROC \(\\%\) & paper & \$\\Delta\$/,
  );
  assert.ok(tex.includes('2 & 0.75 & 3 & \\textbf{89.50 $\\pm$ 0.10} & -- & -- &'));
  assert.ok(tex.includes('1 & 0.75 & 1 & 88.40 & -- &'), tex);
  assert.ok(tex.includes('\\bottomrule'));

  const csv = readFileSync(join(out, 'heads-alpha.csv'), 'utf8').split('\n');
  assert.equal(
    csv[0],
    'Post-VCP heads,α (weight of the VCP map),dataset,metric,unit,n,mean,std,paper,delta',
  );
  assert.equal(csv[1], '1,0.5,synth,pixel_auroc,%,3,86,0.1,85,1');
  assert.equal(csv[3], '1,0.75,synth,pixel_auroc,%,1,88.4,,,');

  const readme = readFileSync(join(out, 'README.md'), 'utf8');
  assert.ok(readme.includes('![Pixel AUROC vs heads](curve.svg)'));
  assert.ok(
    readme.includes(
      '9 of 12 trials of the spec finished (4 sweep points × 3 seeds); finished seeds per sweep point: 1–3 (n in the tables).',
    ),
    readme,
  );

  for (const name of ['curve', 'gain', 'samples', 'attention', 'tsne']) {
    const svg = readFileSync(join(out, `${name}.svg`), 'utf8');
    const [, w, h] = /width="([\d.]+)" height="([\d.]+)"/.exec(svg)!;
    const meta = await sharp(readFileSync(join(out, `${name}.png`))).metadata();
    assert.equal(meta.format, 'png');
    assert.equal(meta.width, Math.round(Number(w) * PNG_SCALE), name);
    assert.equal(meta.height, Math.round(Number(h) * PNG_SCALE), name);
    const stats = await sharp(readFileSync(join(out, `${name}.png`))).stats();
    assert.ok(stats.channels[0].min < 128, `${name}.png is blank`);
  }
  const attention = readFileSync(join(out, 'attention.svg'), 'utf8');
  assert.ok(attention.includes('layer 3 (synth)'), 'the deepest logged layer of the spec dataset');
  assert.ok(attention.includes('bottle / 000'));
  const curve = readFileSync(join(out, 'curve.svg'), 'utf8');
  for (const text of ['Post-VCP heads', 'pixel AUROC (%)', 'ours: 0.5', 'paper: 0.5'])
    assert.ok(curve.includes(text), `curve.svg lacks "${text}"`);

  const first = snapshot(out);
  await reportCommand(SPEC, { trackingUri: server.server.url, out });
  const second = snapshot(out);
  if (process.env.VCP_REPORT_TEST_OUT)
    cpSync(out, process.env.VCP_REPORT_TEST_OUT, { recursive: true }); // to look at the figures
  assert.deepEqual(Object.keys(second), Object.keys(first));
  for (const f of Object.keys(first))
    assert.ok(first[f].equals(second[f]), `${f} differs on a second report of the same runs`);
});

test('compare: run ids or trial ids, params that differ, metric deltas, UI link', async (t) => {
  if (!server.ok) return t.skip(server.reason);
  const [a, b] = [spec.trials[0], spec.trials[9]]; // heads 1 / alpha 0.5 / seed 1 vs heads 2 / alpha 0.75 / seed 1
  const ra = await resolveRun(client, a.id);
  assert.equal(ra.info.run_id, runOf.get(a.id), 'the newest FINISHED run of the trial');
  const rb = await resolveRun(client, runOf.get(b.id)!);
  const c = compareRuns(ra, rb, server.server.url);
  assert.deepEqual(
    c.params.filter((p) => p.differs).map((p) => p.key),
    ['model.alpha', 'model.heads'],
  );
  const auroc = c.metrics.find((m) => m.key === 'synth.pixel_auroc')!;
  assert.ok(Math.abs(auroc.delta! - 0.035) < 1e-12);
  assert.equal(
    c.url,
    `${server.server.url}/#/compare-runs?runs=[%22${ra.info.run_id}%22,%22${rb.info.run_id}%22]&experiments=[%22${ra.info.experiment_id}%22]`
      .replaceAll('[', '%5B')
      .replaceAll(']', '%5D'),
  );
  const text = formatComparison(c, (s) => `<<${s}>>`);
  assert.match(text, /^<<model\.heads\s+1\s+2\s+≠>>$/m);
  assert.match(text, /2 of \d+ params differ/);
  await assert.rejects(resolveRun(client, 'nosuchtrial'), /no MLflow run or trial "nosuchtrial"/);
});

test('compareUrl keeps commas between ids', () => {
  assert.equal(
    compareUrl('http://h:1/', ['a', 'b'], ['1', '1']),
    'http://h:1/#/compare-runs?runs=%5B%22a%22,%22b%22%5D&experiments=%5B%221%22%5D',
  );
});
