/**
 * A small quickstart-like sweep (heads × α, tiny CLIP, synthetic data) end to end against a
 * real MLflow server: the runner and its trial process are SIGKILLed mid-sweep (after one
 * trial finished, while another runs), then the same command resumes. Finished trials are not
 * re-run, the missing ones complete, the orphaned RUNNING run is marked KILLED, and MLflow
 * holds exactly one FINISHED run per trial. Then `vcp-exp report` draws its tables and the
 * artifact figures from what the runner logged (the runner's writer and the report's reader
 * share src/tracking/artifact-names.ts; this checks that they agree on real runs).
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { generateSynthDataset } from '../../src/datasets/synth.js';
import {
  parseAttentionPath,
  parseSamplePath,
  parseTextEmbeddingsPath,
} from '../../src/tracking/artifact-names.js';
import { ArtifactStore } from '../../src/tracking/artifacts.js';
import { decodeNpy } from '../../src/io/npy.js';
import type { MlflowClient } from '../../src/tracking/client.js';
import { projectRoot } from '../../src/tracking/server.js';
import type { Run } from '../../src/tracking/types.js';
import { startTestServer, type TestServer } from '../tracking/helpers.js';

const SPEC = `name: it-quickstart
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
    heads: [1, 2]
    alpha: [0.5, 0.75]
seeds: 1
train:
  dataset: { format: mvtec, root: ./synth }
  epochs: 1
  batch_size: 4
  augment: { mosaic: 0 }
eval:
  datasets:
    - { name: synth, format: mvtec, root: ./synth }
execution: { executor: local, workers: 1 }
report:
  tables:
    - { name: heads-alpha, title: Heads and alpha, rows: heads, metrics: [pixel_auroc, pro] }
  figures:
    - { name: curve, title: Pixel AUROC, x: heads, series: alpha, metrics: [pixel_auroc] }
    - { name: samples, kind: samples, title: Samples, select: "2 | 0.75" }
    - { name: attention, kind: attention, title: Attention, select: "2 | 0.75" }
    - { name: tsne, kind: tsne, title: Text embeddings }
`;

let server: TestServer;
let dir: string;

before(async () => {
  server = await startTestServer('quickstart');
  dir = mkdtempSync(join(tmpdir(), 'vcp-quickstart-'));
  writeFileSync(join(dir, 'spec.yaml'), SPEC);
  await generateSynthDataset(join(dir, 'synth'), {
    products: ['carpet', 'bottle'],
    size: 64,
    trainGood: 1,
    testGood: 3,
    testDefect: 1,
  });
});

after(async () => {
  if (server.ok) await server.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

interface Runner {
  pid: number;
  lines: string[];
  exited: Promise<number | null>;
  waitFor(predicate: (lines: string[]) => boolean): Promise<void>;
}

function startRunner(url: string): Runner {
  const child = spawn(
    process.execPath,
    [
      join(projectRoot(), 'bin/vcp-exp.js'),
      'run',
      'spec.yaml',
      '--progress',
      'plain',
      '--tracking-uri',
      url,
    ],
    {
      cwd: dir,
      detached: true, // own process group: SIGKILL to the group kills the runner and its trial process at once
      env: { ...process.env, VCP_EXP_STATE_DIR: join(dir, 'state'), MLFLOW_TRACKING_URI: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const lines: string[] = [];
  const waiters: { predicate: (l: string[]) => boolean; resolve: () => void }[] = [];
  const onData = (chunk: Buffer) => {
    lines.push(...chunk.toString().split('\n').filter(Boolean));
    for (const w of [...waiters]) {
      if (!w.predicate(lines)) continue;
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    pid: child.pid!,
    lines,
    exited,
    waitFor: (predicate) =>
      new Promise<void>((resolve, reject) => {
        if (predicate(lines)) return resolve();
        waiters.push({ predicate, resolve });
        void exited.then(() =>
          setTimeout(
            () =>
              reject(new Error(`runner exited before the expected output:\n${lines.join('\n')}`)),
            100,
          ),
        );
      }),
  };
}

const tag = (run: Run, key: string) => run.data.tags.find((t) => t.key === key)?.value;
const metric = (run: Run, key: string) => run.data.metrics.find((m) => m.key === key)?.value;

async function experimentRuns(client: MlflowClient): Promise<Run[]> {
  const experiment = await client.getExperimentByName('it-quickstart');
  assert.ok(experiment, 'the experiment exists');
  return client.searchRuns({ experimentIds: [experiment.experiment_id], runViewType: 'ALL' });
}

test(
  'SIGKILL mid-sweep, then the same command resumes: one FINISHED run per trial, orphan marked KILLED',
  { timeout: 300_000 },
  async (t) => {
    if (!server.ok) return t.skip(server.reason);
    const client = server.client();

    const first = startRunner(server.server.url);
    // One trial finished and the next one is inside its process (its run exists and is RUNNING).
    await first.waitFor((l) => {
      const done = l.findIndex((x) => / finished in /.test(x));
      return done >= 0 && l.slice(done + 1).some((x) => / (load|train): /.test(x));
    });
    process.kill(-first.pid, 'SIGKILL');
    await first.exited;

    const killedState = await experimentRuns(client);
    const trialsBefore = killedState.filter((r) => tag(r, 'vcp.run_kind') === 'trial');
    const finishedBefore = trialsBefore.filter((r) => r.info.status === 'FINISHED');
    const runningBefore = trialsBefore.filter((r) => r.info.status === 'RUNNING');
    assert.ok(
      finishedBefore.length >= 1,
      `at least one trial finished before the kill (${trialsBefore.map((r) => r.info.status).join(', ')})`,
    );
    // α is post-forward: each heads value is one evaluation group of two trials in one process.
    assert.equal(runningBefore.length, 2, 'the killed group of two trials is left RUNNING');

    const second = startRunner(server.server.url);
    const code = await second.exited;
    assert.equal(code, 0, second.lines.join('\n'));
    assert.ok(
      second.lines.some((l) => /marked 3 runs left RUNNING/.test(l)),
      second.lines.join('\n'),
    );
    assert.ok(
      second.lines.some((l) =>
        new RegExp(
          `${4 - finishedBefore.length} finished, 0 failed, 0 killed, ${finishedBefore.length} skipped`,
        ).test(l),
      ),
      second.lines.join('\n'),
    );

    const runs = await experimentRuns(client);
    assert.equal(
      runs.filter((r) => r.info.status === 'RUNNING').length,
      0,
      'no run is left RUNNING',
    );
    const trials = runs.filter((r) => tag(r, 'vcp.run_kind') === 'trial');
    const finished = trials.filter((r) => r.info.status === 'FINISHED');
    const ids = finished.map((r) => tag(r, 'vcp.trial_id')!);
    assert.equal(new Set(ids).size, 4, 'all four trials finished');
    assert.equal(finished.length, 4, 'exactly one FINISHED run per trial');
    assert.equal(
      trials.length,
      4 + runningBefore.length,
      'only the killed trials got a second run',
    );
    for (const before of finishedBefore) {
      const now = finished.find((r) => r.info.run_id === before.info.run_id);
      assert.ok(now, `finished run ${before.info.run_id} is kept, not re-run`);
      assert.equal(now.info.start_time, before.info.start_time);
    }
    for (const killed of runningBefore) {
      const orphan = runs.find((r) => r.info.run_id === killed.info.run_id)!;
      assert.equal(orphan.info.status, 'KILLED');
      assert.match(tag(orphan, 'vcp.failure_reason') ?? '', /orphaned/);
    }
    const sweeps = runs.filter((r) => tag(r, 'vcp.run_kind') === 'sweep');
    assert.deepEqual(sweeps.map((r) => r.info.status).sort(), ['FINISHED', 'KILLED']);

    // What each trial logged.
    for (const run of finished) {
      for (const key of [
        'synth.pixel_auroc',
        'synth.pro',
        'synth.carpet.pixel_ap',
        'synth.bottle.image_auroc',
        'synth.ms_per_image',
        'time.eval_s',
        'cache.hits',
        'cache.misses',
      ]) {
        assert.ok(metric(run, key) !== undefined, `${run.info.run_id}: metric ${key}`);
      }
      const auroc = metric(run, 'synth.pixel_auroc')!;
      assert.ok(auroc >= 0 && auroc <= 1, `pixel AUROC ${auroc} is a fraction`);
      assert.equal(tag(run, 'vcp.device'), 'cpu');
      assert.ok(tag(run, 'vcp.backend'));
      // The device the trial computed on, as its log says it (backend.ts describeBackend).
      assert.match(
        tag(run, 'vcp.backend_detail') ?? '',
        /^(tensorflow|wasm|cpu) \(cpu, \d+ threads?, @tensorflow\//,
      );
      assert.ok(tag(run, 'mlflow.parentRunId'));
    }
    // Two trainings (heads 1, 2): α only changes evaluation, so the other two are evaluated in
    // the training's group, from the same forward pass.
    const trained = finished.filter((r) => tag(r, 'vcp.trained') === 'true');
    const reused = finished.filter((r) => tag(r, 'vcp.trained') === 'false');
    assert.ok(trained.length >= 1 && trained.length <= 2, `trainings: ${trained.length}`);
    for (const run of finished) {
      assert.equal(metric(run, 'eval.group_size'), 2);
      assert.equal(tag(run, 'vcp.eval_group')?.split(',').length, 2);
    }
    assert.equal(trained.length + reused.length, 4);
    for (const run of reused)
      assert.ok(tag(run, 'vcp.checkpoint_from'), 'a reused checkpoint names where it came from');
    const train = trained[0];
    const history = await client.getMetricHistory(train.info.run_id, 'train.loss');
    assert.ok(history.length >= 2, `per-step loss (${history.length} points)`);

    const store = new ArtifactStore(client);
    const files = (await store.listFiles(train.info.run_id)).map((f) => f.path);
    for (const expected of [
      'config.json',
      'logs/trial.log',
      'results/synth.csv',
      'checkpoint/model.safetensors',
      'checkpoint/config.json',
    ]) {
      assert.ok(files.includes(expected), `artifact ${expected} in ${files.join(', ')}`);
    }
    const samples = files.map(parseSamplePath).filter((a) => a !== null);
    assert.ok(
      samples.some((a) => a.dataset === 'synth' && a.part === 'overlay'),
      `sample overlays in ${files.join(', ')}`,
    );
    const attention = files.filter((f) => parseAttentionPath(f)?.dataset === 'synth');
    assert.deepEqual(
      [...new Set(attention.map((f) => parseAttentionPath(f)!.layer))].sort(),
      [1, 2, 3],
      'attention maps of each Post-VCP layer',
    );
    const texts = files.filter((f) => parseTextEmbeddingsPath(f)?.dataset === 'synth');
    assert.deepEqual(
      texts.map((f) => parseTextEmbeddingsPath(f)!.product).sort(),
      ['bottle', 'carpet'],
      'one text-embedding file per product',
    );
    const bytes = async (path: string) => {
      const local = join(dir, 'dl', path.replaceAll('/', '__'));
      await store.download(train.info.run_id, path, local);
      return readFileSync(local);
    };
    const att = decodeNpy(await bytes(attention[0]), attention[0]);
    const trainedHeads = Number(
      train.data.params.find((p) => p.key === 'model.heads')?.value ?? Number.NaN,
    );
    assert.equal(att.shape.length, 3, `attention shape [${att.shape.join(', ')}]`);
    assert.deepEqual(att.shape, [trainedHeads, 2, 16], 'attention [H, 2, L] on the 4×4 grid');
    const text = decodeNpy(await bytes(texts[0]), texts[0]);
    assert.equal(text.shape.length, 3);
    const product = parseTextEmbeddingsPath(texts[0])!.product;
    const testImages = readdirSync(join(dir, 'synth', product, 'test'), { recursive: true }).filter(
      (f) => String(f).endsWith('.png'),
    ).length;
    assert.equal(text.shape[0], Math.min(16, testImages), 'N: the test images of the product');
    assert.equal(text.shape[1], 2);
    const reusedFiles = (await store.listFiles(reused[0].info.run_id)).map((f) => f.path);
    assert.ok(
      !reusedFiles.some((f) => f.startsWith('checkpoint/')),
      'the checkpoint is logged once per training',
    );

    // The report, from what the runner logged.
    const out = join(dir, 'report');
    await promisify(execFile)(
      process.execPath,
      [
        join(projectRoot(), 'bin/vcp-exp.js'),
        'report',
        'spec.yaml',
        '--tracking-uri',
        server.server.url,
        '--out',
        out,
      ],
      { cwd: dir, env: { ...process.env, MLFLOW_TRACKING_URI: '' } },
    );
    const table = readFileSync(join(out, 'heads-alpha.md'), 'utf8');
    for (const run of finished) {
      // One seed per row: the value alone (bold when best).
      const value = (100 * metric(run, 'synth.pixel_auroc')!).toFixed(2);
      const cell = [`| ${value} |`, `| **${value}** |`];
      assert.ok(
        cell.some((c) => table.includes(c)),
        `table has ${value}:\n${table}`,
      );
    }
    for (const name of ['curve', 'samples', 'attention']) {
      const png = await sharp(readFileSync(join(out, `${name}.png`))).stats();
      assert.ok(png.channels[0].min < 128, `${name}.png is not blank`);
    }
    const readme = readFileSync(join(out, 'README.md'), 'utf8');
    assert.ok(readme.includes('![Samples](samples.svg)'), readme);
    assert.ok(readme.includes('![Attention](attention.svg)'), readme);
    assert.ok(readFileSync(join(out, 'attention.svg'), 'utf8').includes('layer 3 (synth)'));
    // The tiny spec has no Pre-VCP: every image shares its text embeddings, so no t-SNE.
    assert.match(
      readme,
      /figure tsne not drawn: the \d+ text embeddings .* are 2 distinct vectors/,
    );
  },
);
