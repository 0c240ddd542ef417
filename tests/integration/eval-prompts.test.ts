/**
 * `eval.prompts` end to end through `vcp-exp train` with the tiny CLIP fixture: one training
 * (the later commands reuse its checkpoint, as trials of a sweep do) evaluated with the
 * training prompts, with an explicit pair that spells the training prompt (identical
 * metrics), and with another wording (different metrics).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { generateSynthDataset } from '../../src/datasets/synth.js';
import { CHECKPOINT_WEIGHTS } from '../../src/model/checkpoint.js';
import { isolatedCache } from '../isolated-cache.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(REPO, 'bin/vcp-exp.js');
const work = mkdtempSync(join(tmpdir(), 'vcp-eval-prompts-'));
after(() => rmSync(work, { recursive: true, force: true }));

const env = { ...process.env, VCP_EXP_CACHE: isolatedCache(join(work, 'cache')) };
const run = (...args: string[]) =>
  execFileSync(process.execPath, [CLI, '--backend', 'tensorflow', ...args], {
    cwd: work,
    env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });

interface Metrics {
  trained: boolean;
  losses: number[];
  evalPrompts: { normal: string; abnormal: string }[] | null;
  evaluations: {
    products: Record<string, unknown>[];
    mean: { mean: Record<string, number | null> };
    msPerImage?: number;
  }[];
}

function spec(prompts: string): string {
  return `name: tiny-eval-prompts
method: vcp-clip
base:
  backbone: ${join(REPO, 'assets/clip/tiny-clip')}
  activation: quick_gelu
  image_size: 64
  layers: [1, 2, 3]
  pre_vcp: false
  heads: 4
  sigma: 2
  topk: 100
  lr: 0.001
seeds: [333]
train:
  dataset: { format: mvtec, root: ./data, products: [carpet, bottle] }
  epochs: 1
  batch_size: 4
eval:
  datasets:
    - { name: held-out, format: mvtec, root: ./data, products: [grid, pill] }
${prompts}`;
}

/** Trains and evaluates one spec; returns its metrics.json and checkpoint weights. */
function trainWith(
  name: string,
  prompts: string,
): { metrics: Metrics; weights: Buffer; printed: string } {
  writeFileSync(join(work, `${name}.yaml`), spec(prompts));
  const out = join(work, name);
  const printed = run('train', `${name}.yaml`, '--out', out);
  return {
    metrics: JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8')) as Metrics,
    weights: readFileSync(join(out, 'checkpoint', CHECKPOINT_WEIGHTS)),
    printed,
  };
}

test('vcp-exp train evaluates with eval.prompts', async () => {
  await generateSynthDataset(join(work, 'data'), {
    size: 64,
    trainGood: 0,
    testGood: 2,
    testDefect: 2,
    seed: 11,
    products: ['carpet', 'bottle', 'grid', 'pill'],
  });
  const trained = trainWith('training-prompts', '');
  const same = trainWith(
    'same-wording',
    `  prompts:
    - { normal: 'a photo of a good {cls}', abnormal: 'a photo of a damaged {cls}' }
`,
  );
  const other = trainWith(
    'other-wording',
    `  prompts:
    - { normal: 'There is not a damaged {cls} in the photo', abnormal: 'There is a damaged {cls} in the photo' }
    - { normal: 'It is a photo of a {cls} without damage', abnormal: 'It is a photo of a {cls} with damage' }
`,
  );
  assert.equal(trained.metrics.evalPrompts, null);
  assert.equal(other.metrics.evalPrompts?.length, 2);
  assert.match(other.printed, /2 test-time prompt pair\(s\) from eval\.prompts/);
  // One training: the runs differ only in their evaluation, so the later ones reuse the
  // first one's checkpoint from the shared state directory (as a sweep's trials would).
  assert.deepEqual(
    [trained, same, other].map((r) => r.metrics.trained),
    [true, false, false],
  );
  assert.match(same.printed, /reusing the checkpoint of training/);
  assert.ok(existsSync(join(work, '.vcp-exp', 'features')), 'the shared feature cache');
  assert.ok(same.weights.equals(trained.weights), 'same-wording: another checkpoint');
  assert.ok(other.weights.equals(trained.weights), 'other-wording: another checkpoint');
  assert.deepEqual(
    withoutTimes(same.metrics.evaluations),
    withoutTimes(trained.metrics.evaluations),
    'the training wording spelled out must evaluate identically',
  );
  const a = trained.metrics.evaluations[0].products;
  const b = other.metrics.evaluations[0].products;
  const changed = ['pixelAuroc', 'pixelAp', 'imageAuroc', 'imageAp'].some((k) =>
    a.some((p, i) => p[k] !== b[i][k]),
  );
  console.log(
    `pixel AUROC: training prompts ${fmt(trained)}, same wording ${fmt(same)}, other wording ${fmt(other)}`,
  );
  assert.ok(changed, 'other prompts gave the same metrics for every product');
});

function fmt(r: { metrics: Metrics }): string {
  return String(r.metrics.evaluations[0].mean.mean.pixelAuroc);
}

/** Evaluations without wall times (msPerImage), which no two runs share. */
function withoutTimes(evaluations: Metrics['evaluations']): Metrics['evaluations'] {
  return evaluations.map(({ msPerImage: _, ...rest }) => rest);
}
