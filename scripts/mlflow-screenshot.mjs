#!/usr/bin/env node
/**
 * Screenshots of the MLflow UI as a user first sees an experiment vcp-exp logged, taken with
 * headless Chromium (playwright-core, a development dependency, driving the system's chromium:
 * `apt-get install chromium`). It checks what the screenshots must show and exits non-zero
 * when it is not there:
 *   1. `#/experiments/<id>` (no tab named) opens on the training runs (the experiment kind is
 *      custom_model_development), not on MLflow 3's GenAI views;
 *   2. the runs table's Dataset column names the logged datasets;
 *   3. the saved view "vcp-exp: headline metrics" shows the headline metric columns.
 *
 * Usage, in a directory where `vcp-exp run` (or `vcp-exp quickstart`) logged the experiment:
 *   node scripts/mlflow-screenshot.mjs --experiment quickstart --out reports/screenshots
 *     [--url http://127.0.0.1:5000]   (default: starts `vcp-exp mlflow ui` here, stops it after)
 *     [--chromium /usr/bin/chromium]  (default: $CHROMIUM, else /usr/bin/chromium)
 */
import { spawn } from 'node:child_process';
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
    chromium: { type: 'string', default: process.env.CHROMIUM ?? '/usr/bin/chromium' },
  },
});

let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch {
  console.error('playwright-core is missing: npm install (it is a development dependency)');
  process.exit(2);
}

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
const experiment = await (
  await fetch(
    `${base}/api/2.0/mlflow/experiments/get-by-name?experiment_name=${encodeURIComponent(values.experiment)}`,
  )
).json();
const id = experiment.experiment?.experiment_id;
if (!id) {
  await ui.stop();
  console.error(`no experiment "${values.experiment}" at ${base}`);
  process.exit(2);
}

const outDir = resolve(values.out);
mkdirSync(outDir, { recursive: true });
const profile = mkdtempSync(join(tmpdir(), 'vcp-chromium-'));
const browser = await chromium.launch({
  executablePath: values.chromium,
  headless: true,
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    `--user-data-dir=${profile}`,
  ],
});
const problems = [];
try {
  const page = await browser.newPage({ viewport: { width: 1600, height: 900 } });

  // 1 + 2: the experiment as linked without a tab: it must land on the runs, Dataset filled.
  await page.goto(`${base}/#/experiments/${id}`);
  await page.waitForURL(/\/runs/, { timeout: 60_000 }).catch(() => undefined);
  await page.getByText('Dataset', { exact: true }).first().waitFor({ timeout: 60_000 });
  await page.waitForTimeout(3_000); // rows and their dataset tags render after the header
  const landing = page.url();
  if (!/\/experiments\/\d+\/runs/.test(landing))
    problems.push(`the experiment opened on ${landing}, not on its runs`);
  const body = await page.locator('body').innerText();
  const datasets = [...new Set(body.match(/\bsynth\b[^\n]{0,30}/g) ?? [])];
  if (!/\(\w{8}\)/.test(body) && datasets.length === 0)
    problems.push('no dataset (name and digest) is shown in the runs table');
  await page.screenshot({ path: join(outDir, 'experiment-runs.png') });
  console.log(`opened ${landing}`);
  console.log(`dataset cells seen: ${datasets.join(' | ') || '(none)'}`);

  // 3: the saved headline view.
  await page.goto(`${base}/#/experiments/${id}/runs?viewStateShareKey=vcp-exp-headline`);
  await page.getByText('Dataset', { exact: true }).first().waitFor({ timeout: 60_000 });
  await page.waitForTimeout(3_000);
  const viewText = await page.locator('body').innerText();
  for (const expected of ['pixel_auroc', 'heads'])
    if (!viewText.includes(expected))
      problems.push(`the headline view shows no "${expected}" column`);
  await page.screenshot({ path: join(outDir, 'experiment-headline-view.png') });
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
  await ui.stop();
}
console.log(`screenshots in ${outDir}: experiment-runs.png, experiment-headline-view.png`);
if (problems.length > 0) {
  console.error(problems.map((p) => `problem: ${p}`).join('\n'));
  process.exit(1);
}
