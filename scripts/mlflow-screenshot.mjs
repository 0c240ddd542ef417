#!/usr/bin/env node
/**
 * Screenshots of the MLflow UI as a user first sees an experiment vcp-exp logged, taken with
 * headless Chromium (the system's: `apt-get install chromium`; its command line only, no
 * browser-automation package). It checks, in the page as rendered, what the screenshots must
 * show and exits non-zero when it is not there:
 *   1. the experiment link vcp-exp prints opens on the training runs ("Model training" mode),
 *      not on MLflow 3's GenAI overview, and the runs table's Dataset column names the logged
 *      datasets (name and digest);
 *   2. the saved view "vcp-exp: headline metrics" shows the headline metric columns.
 * It also takes the link without the mode parameter (what MLflow shows a new browser by
 * default) for comparison: experiment-default.png.
 *
 * Usage, in a directory where `vcp-exp run` (or `vcp-exp quickstart`) logged the experiment:
 *   node scripts/mlflow-screenshot.mjs --experiment quickstart --out reports/screenshots
 *     [--url http://127.0.0.1:5000]   (default: starts `vcp-exp mlflow ui` here, stops it after)
 *     [--chromium /usr/bin/chromium]  (default: $CHROMIUM, else chromium on the PATH)
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    experiment: { type: 'string', default: 'quickstart' },
    out: { type: 'string', default: 'mlflow-screenshots' },
    url: { type: 'string' },
    chromium: { type: 'string', default: process.env.CHROMIUM ?? 'chromium' },
  },
});

/** Starts `vcp-exp mlflow ui` in the current directory; resolves to its URL and a stop(). */
function startUi() {
  const child = spawn(process.execPath, [join(root, 'bin/vcp-exp.js'), 'mlflow', 'ui'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolveUi, reject) => {
    let text = '';
    child.stdout.on('data', (chunk) => {
      text += chunk;
      const m = /MLflow UI: (http:\/\/\S+)/.exec(text);
      if (m)
        resolveUi({
          url: m[1],
          stop: () =>
            new Promise((done) => {
              child.once('exit', done);
              child.kill('SIGINT');
            }),
        });
    });
    child.once('exit', (code) => reject(new Error(`vcp-exp mlflow ui exited (${code}):\n${text}`)));
  });
}

const ui = values.url ? { url: values.url, stop: async () => undefined } : await startUi();
const base = ui.url.replace(/\/+$/, '');
const api = async (path, body) =>
  (
    await fetch(`${base}/api/2.0/mlflow/${path}`, {
      method: body ? 'POST' : 'GET',
      headers: { 'content-type': 'application/json' },
      body: body ? JSON.stringify(body) : undefined,
    })
  ).json();

const problems = [];
const outDir = resolve(values.out);
mkdirSync(outDir, { recursive: true });
const profile = mkdtempSync(join(tmpdir(), 'vcp-chromium-'));

/** Renders `url` in a fresh headless Chromium: a screenshot, and the DOM after 30 s of page time. */
function render(url, png) {
  const args = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    `--user-data-dir=${profile}`,
    '--window-size=1600,900',
    '--virtual-time-budget=30000',
  ];
  const shot = spawnSync(values.chromium, [...args, `--screenshot=${join(outDir, png)}`, url], {
    encoding: 'utf8',
    timeout: 180_000,
  });
  if (shot.status !== 0) throw new Error(`${values.chromium} failed: ${shot.stderr}`);
  const dom = spawnSync(values.chromium, [...args, '--dump-dom', url], {
    encoding: 'utf8',
    timeout: 180_000,
    maxBuffer: 64 << 20,
  });
  if (dom.status !== 0) throw new Error(`${values.chromium} failed: ${dom.stderr}`);
  return dom.stdout.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');
}

try {
  const found = await api(
    `experiments/get-by-name?experiment_name=${encodeURIComponent(values.experiment)}`,
  );
  const id = found.experiment?.experiment_id;
  if (!id) throw new Error(`no experiment "${values.experiment}" at ${base}`);
  const { runs = [] } = await api('runs/search', { experiment_ids: [id], max_results: 100 });
  const digests = [
    ...new Set(runs.flatMap((r) => (r.inputs?.dataset_inputs ?? []).map((d) => d.dataset.digest))),
  ];
  if (digests.length === 0) problems.push('no run of the experiment has dataset inputs');

  // 1. The link vcp-exp prints (src/tracking/mlflow-ui.ts experimentUrl).
  const runsUrl = `${base}/#/experiments/${id}/runs?workflowType=machine_learning`;
  const runsText = render(runsUrl, 'experiment-runs.png');
  if (!/\bRuns\b/.test(runsText) || /Detect Issues in Your Traces/.test(runsText))
    problems.push(`${runsUrl} did not open on the runs table`);
  if (!runsText.includes('Dataset')) problems.push('the runs table has no Dataset column');
  const shown = digests.filter((d) => runsText.includes(`(${d})`));
  if (shown.length === 0) problems.push('no dataset (name and digest) is shown in the runs table');
  console.log(
    `1. ${runsUrl}\n   datasets shown: ${shown.map((d) => `(${d})`).join(' ') || '(none)'}`,
  );

  // 2. The saved headline view.
  const viewUrl = `${runsUrl}&viewStateShareKey=vcp-exp-headline`;
  const viewText = render(viewUrl, 'experiment-headline-view.png');
  for (const expected of ['vcp-exp: headline metrics', 'pixel_auroc'])
    if (!viewText.includes(expected)) problems.push(`the headline view shows no "${expected}"`);
  console.log(`2. ${viewUrl}`);

  // For comparison: what a new browser shows without the mode parameter.
  const plainUrl = `${base}/#/experiments/${id}`;
  const plainText = render(plainUrl, 'experiment-default.png');
  console.log(
    `3. ${plainUrl} (no mode parameter): ${/Detect Issues|Traces 0/.test(plainText) ? "MLflow's GenAI overview" : 'the runs'}`,
  );
} catch (error) {
  problems.push(error.message);
} finally {
  rmSync(profile, { recursive: true, force: true });
  await ui.stop();
}
console.log(
  `screenshots in ${outDir}: experiment-runs.png, experiment-headline-view.png, experiment-default.png`,
);
if (problems.length > 0) {
  console.error(problems.map((p) => `problem: ${p}`).join('\n'));
  process.exit(1);
}
console.log('ok: the experiment opens on its training runs with the Dataset column filled');
