/**
 * Sweep sharing benchmark (tiny CLIP, synthetic data, a real MLflow server):
 *  (1) a 5-value α sweep trains once (α only changes evaluation): trainings counted from the
 *      trials' summaries;
 *  (2) a 4-value heads sweep extracts each image's frozen features once: cache misses summed
 *      over its trials = distinct images (augmentation off, so every training image is cacheable);
 *  (3) wall time of both sweeps against the same trials run one by one without sharing
 *      (feature cache off, no checkpoint reuse), in the same process, one worker each.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSynthDataset } from '../src/datasets/synth.js';
import { loadSpec } from '../src/runner/spec.js';
import type { Spec } from '../src/runner/spec-types.js';
import { runSweep, type SweepResult } from '../src/runner/sweep.js';
import { projectRoot, startLocalServer } from '../src/tracking/server.js';

const dir = mkdtempSync(join(tmpdir(), 'vcp-bench-sweep-'));

function specText(name: string, axis: string): string {
  return `name: ${name}
method: vcp-clip
base:
  backbone: ${join(projectRoot(), 'assets/clip/tiny-clip')}
  activation: quick_gelu
  image_size: 32
  layers: [1, 2, 3]
  n_ctx: 2
  deep_prompt_len: 1
  pre_vcp: false
  topk: 16
sweep:
  grid:
    ${axis}
seeds: 1
train:
  dataset: { format: mvtec, root: ./synth }
  epochs: 2
  batch_size: 8
  augment: { rotate: false, rot90: false, brightness_contrast: false, noise: false, blur_jitter: false, mosaic: 0 }
eval:
  datasets:
    - { name: synth, format: mvtec, root: ./synth }
execution: { executor: local, workers: 1 }
`;
}

async function sweep(spec: Spec, url: string, share: boolean, state: string): Promise<SweepResult> {
  const experiment = `${spec.name}-${share ? 'shared' : 'unshared'}`;
  return runSweep({
    spec: { ...spec, tracking: { ...spec.tracking, experiment } },
    progress: 'plain',
    trackingUri: url,
    share,
    samplesPerProduct: 0,
    log: () => undefined,
    env: { ...process.env, VCP_EXP_STATE_DIR: state },
  });
}

const server = await startLocalServer({
  stateDir: join(dir, 'mlflow'),
  env: { ...process.env, MLFLOW_TRACKING_URI: '' },
});
try {
  const synth = await generateSynthDataset(join(dir, 'synth'), {
    products: ['carpet', 'bottle', 'pill'],
    size: 64,
    trainGood: 1,
    testGood: 4,
    testDefect: 1,
  });
  writeFileSync(
    join(dir, 'alpha.yaml'),
    specText('bench-alpha', 'alpha: [0.1, 0.3, 0.5, 0.7, 0.9]'),
  );
  writeFileSync(join(dir, 'heads.yaml'), specText('bench-heads', 'heads: [1, 2, 4, 8]'));
  const images = synth.products.reduce(
    (n, p) => n + p.testGood + Object.values(p.defects).reduce((a, b) => a + b, 0),
    0,
  );
  console.log(`dataset: ${images} test images (train = eval split), tiny CLIP at 32 px, 2 epochs`);

  const rows: [string, number, number][] = [];
  for (const name of ['alpha', 'heads']) {
    const spec = await loadSpec(join(dir, `${name}.yaml`));
    const shared = await sweep(spec, server.url, true, join(dir, `state-${name}-shared`));
    const alone = await sweep(spec, server.url, false, join(dir, `state-${name}-alone`));
    for (const r of [shared, alone])
      if (r.outcomes.some((o) => o.status !== 'FINISHED'))
        throw new Error(`${name}: a trial failed: ${r.outcomes.map((o) => o.reason).join('; ')}`);
    const trainings = (r: SweepResult) => r.outcomes.filter((o) => o.summary?.trained).length;
    const misses = (r: SweepResult) =>
      r.outcomes.reduce((n, o) => n + (o.summary?.cache.misses ?? 0), 0);
    const encoded = (r: SweepResult) =>
      r.outcomes.reduce((n, o) => n + (o.summary?.cache.encoded ?? 0), 0);
    console.log(`\n${name} sweep: ${spec.trials.length} trials`);
    console.log(
      `  shared:   ${trainings(shared)} training(s), ${misses(shared)} cache misses, ${encoded(shared)} images encoded, ${shared.seconds.toFixed(1)} s`,
    );
    console.log(
      `  baseline: ${trainings(alone)} training(s), cache off, ${encoded(alone)} images encoded, ${alone.seconds.toFixed(1)} s`,
    );
    console.log(
      `  per trial: ${shared.outcomes.map((o) => `${o.summary!.trained ? 'T' : 'e'}/${o.summary!.cache.misses}m`).join(' ')}  (T = trained, e = checkpoint reused, m = cache misses)`,
    );
    if (name === 'alpha' && trainings(shared) !== 1)
      throw new Error(`alpha sweep trained ${trainings(shared)} times, expected once`);
    if (name === 'heads' && misses(shared) !== images)
      throw new Error(
        `heads sweep: ${misses(shared)} cache misses, expected ${images} (one per image)`,
      );
    rows.push([name, shared.seconds, alone.seconds]);
  }
  console.log('');
  for (const [name, shared, alone] of rows)
    console.log(
      `${name.padEnd(6)} sweep wall time: shared ${shared.toFixed(1)} s vs one by one unshared ${alone.toFixed(1)} s → ${(alone / shared).toFixed(2)}× faster`,
    );
} finally {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
