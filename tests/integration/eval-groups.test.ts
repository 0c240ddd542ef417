/**
 * Evaluation groups end to end against a real MLflow server (tiny CLIP, synthetic data): a
 * 3-value α sweep (α is post-forward) trains once and evaluates its three trials in one
 * process, from one forward pass per test image (counted by the evaluator), logging three runs
 * whose metrics equal those of three separate evaluations (execution.eval_group_size: 1) to
 * 1e-6. Then the group is stopped after its first member ended FINISHED and the runner is
 * SIGKILLed: the same command marks the two unfinished members KILLED, keeps the finished one,
 * and runs the other two as a group of two, with the same metrics again.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { generateSynthDataset } from '../../src/datasets/synth.js';
import { STOP_AFTER_RECORDED_ENV } from '../../src/runner/trial-events.js';
import type { MlflowClient } from '../../src/tracking/client.js';
import { projectRoot } from '../../src/tracking/server.js';
import type { Run } from '../../src/tracking/types.js';
import { startTestServer, type TestServer } from '../tracking/helpers.js';

const ALPHAS = [0.25, 0.5, 0.75];

const spec = (name: string, groupSize: number) => `name: ${name}
method: vcp-clip
base:
  backbone: ${join(projectRoot(), 'assets/clip/tiny-clip')}
  activation: quick_gelu
  image_size: 32
  layers: [1, 2, 3]
  n_ctx: 2
  deep_prompt_len: 1
  pre_vcp: false
  heads: 2
  topk: 16
  sigma: 1
sweep:
  grid:
    alpha: [${ALPHAS.join(', ')}]
seeds: 1
train:
  dataset: { format: mvtec, root: ./synth, products: [carpet] }
  epochs: 1
  batch_size: 4
  augment: { mosaic: 0 }
eval:
  datasets:
    - { name: synth, format: mvtec, root: ./synth, products: [bottle, pill] }
execution: { executor: local, workers: 1, eval_group_size: ${groupSize} }
`;

let server: TestServer;
let dir: string;
let testImages = 0;

before(async () => {
  server = await startTestServer('eval-groups');
  dir = mkdtempSync(join(tmpdir(), 'vcp-eval-groups-'));
  writeFileSync(join(dir, 'grouped.yaml'), spec('it-groups', 8));
  writeFileSync(join(dir, 'separate.yaml'), spec('it-separate', 1));
  writeFileSync(join(dir, 'resumed.yaml'), spec('it-resumed', 8));
  await generateSynthDataset(join(dir, 'synth'), {
    products: ['carpet', 'bottle', 'pill'],
    size: 64,
    trainGood: 1,
    testGood: 3,
    testDefect: 1,
  });
  for (const product of ['bottle', 'pill'])
    testImages += readdirSync(join(dir, 'synth', product, 'test'), { recursive: true }).filter(
      (f) => String(f).endsWith('.png'),
    ).length;
});

after(async () => {
  if (server.ok) await server.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

interface Runner {
  pid: number;
  lines: string[];
  exited: Promise<number | null>;
}

/** `vcp-exp run <file>` in its own process group; the state dir is shared (one training). */
function startRunner(file: string, url: string, env: NodeJS.ProcessEnv = {}): Runner {
  const child = spawn(
    process.execPath,
    [
      join(projectRoot(), 'bin/vcp-exp.js'),
      'run',
      file,
      '--progress',
      'plain',
      '--tracking-uri',
      url,
    ],
    {
      cwd: dir,
      detached: true,
      env: {
        ...process.env,
        VCP_EXP_STATE_DIR: join(dir, 'state'),
        MLFLOW_TRACKING_URI: '',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const lines: string[] = [];
  const onData = (chunk: Buffer) => lines.push(...chunk.toString().split('\n').filter(Boolean));
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { pid: child.pid!, lines, exited };
}

const tag = (run: Run, key: string) => run.data.tags.find((t) => t.key === key)?.value;
const metric = (run: Run, key: string) => run.data.metrics.find((m) => m.key === key)?.value;
const param = (run: Run, key: string) => run.data.params.find((p) => p.key === key)?.value;

async function trialRuns(client: MlflowClient, experiment: string): Promise<Run[]> {
  const found = await client.getExperimentByName(experiment);
  assert.ok(found, `experiment ${experiment} exists`);
  const runs = await client.searchRuns({
    experimentIds: [found.experiment_id],
    runViewType: 'ALL',
  });
  return runs.filter((r) => tag(r, 'vcp.run_kind') === 'trial');
}

/** The evaluation metrics of a run (`synth.*` without the timing), by key. */
function evalMetrics(run: Run): Map<string, number> {
  return new Map(
    run.data.metrics
      .filter((m) => m.key.startsWith('synth.') && !m.key.endsWith('ms_per_image'))
      .map((m) => [m.key, m.value]),
  );
}

function assertSameMetrics(a: Run, b: Run, what: string): void {
  const ma = evalMetrics(a);
  const mb = evalMetrics(b);
  assert.ok(ma.size > 20, `${what}: ${ma.size} evaluation metrics`);
  assert.deepEqual([...ma.keys()].sort(), [...mb.keys()].sort(), what);
  for (const [key, value] of ma)
    assert.ok(Math.abs(value - mb.get(key)!) <= 1e-6, `${what}: ${key} ${value} vs ${mb.get(key)}`);
}

const byAlpha = (runs: Run[]) =>
  new Map(
    runs
      .filter((r) => r.info.status === 'FINISHED')
      .map((r) => [Number(param(r, 'model.alpha')), r]),
  );

let separate: Map<number, Run>;

test(
  'a 3-value α sweep: one process, one forward pass per test image, 3 runs equal to 3 separate evaluations',
  { timeout: 600_000 },
  async (t) => {
    if (!server.ok) return t.skip(server.reason);
    const client = server.client();

    const grouped = startRunner('grouped.yaml', server.server.url);
    assert.equal(await grouped.exited, 0, grouped.lines.join('\n'));
    const groupRuns = await trialRuns(client, 'it-groups');
    assert.equal(groupRuns.length, 3);
    const ids = groupRuns.map((r) => tag(r, 'vcp.trial_id')).sort();
    for (const run of groupRuns) {
      assert.equal(run.info.status, 'FINISHED');
      // One forward pass per test image for the whole group, counted by the evaluator.
      assert.equal(metric(run, 'eval.forward_images'), testImages);
      assert.equal(metric(run, 'eval.group_size'), 3);
      assert.deepEqual(tag(run, 'vcp.eval_group')?.split(',').sort(), ids);
      // The trial process's peak memory (MB): at least the ~0.2 GB of Node with TensorFlow.
      assert.ok((metric(run, 'memory.peak_rss_mb') ?? 0) > 100, 'memory.peak_rss_mb');
    }
    assert.equal(
      groupRuns.filter((r) => tag(r, 'vcp.trained') === 'true').length,
      1,
      'trained once',
    );
    const starts = grouped.lines.filter((l) => / start \(/.test(l));
    assert.equal(starts.length, 3, grouped.lines.join('\n'));
    const loads = grouped.lines.filter((l) => / load: CLIP /.test(l));
    assert.equal(loads.length, 1, `one trial process: ${loads.join('\n')}`);

    // The same trials evaluated one by one (one process each, reusing the training).
    const alone = startRunner('separate.yaml', server.server.url);
    assert.equal(await alone.exited, 0, alone.lines.join('\n'));
    const aloneRuns = await trialRuns(client, 'it-separate');
    assert.equal(aloneRuns.length, 3);
    for (const run of aloneRuns) {
      assert.equal(metric(run, 'eval.forward_images'), testImages);
      assert.equal(metric(run, 'eval.group_size'), 1);
      assert.equal(tag(run, 'vcp.eval_group'), undefined);
    }
    assert.equal(
      alone.lines.filter((l) => / load: CLIP /.test(l)).length,
      3,
      'three trial processes',
    );
    // Three separate evaluations ran 3 × the test images through the method; the group once.
    const groupedForwards = metric(groupRuns[0], 'eval.forward_images')!;
    const separateForwards = aloneRuns.reduce((n, r) => n + metric(r, 'eval.forward_images')!, 0);
    assert.equal(separateForwards, 3 * groupedForwards);

    separate = byAlpha(aloneRuns);
    const group = byAlpha(groupRuns);
    assert.deepEqual([...group.keys()].sort(), ALPHAS);
    for (const alpha of ALPHAS)
      assertSameMetrics(group.get(alpha)!, separate.get(alpha)!, `α ${alpha}`);
    const a = evalMetrics(group.get(0.25)!).get('synth.pixel_auroc');
    const b = evalMetrics(group.get(0.75)!).get('synth.pixel_auroc');
    assert.notEqual(a, b, 'the variants differ');
  },
);

test(
  'a group stopped after one member FINISHED, runner SIGKILLed: the rerun keeps it and evaluates the other two',
  { timeout: 600_000 },
  async (t) => {
    if (!server.ok) return t.skip(server.reason);
    if (!separate) return t.skip('needs the separate evaluations of the previous test');
    const client = server.client();

    const first = startRunner('resumed.yaml', server.server.url, {
      [STOP_AFTER_RECORDED_ENV]: '1',
    });
    // Wait until the trial process stopped itself right after its first member's run ended.
    const deadline = Date.now() + 300_000;
    for (;;) {
      const runs = await trialRuns(client, 'it-resumed').catch(() => [] as Run[]);
      const finished = runs.filter((r) => r.info.status === 'FINISHED').length;
      if (finished >= 1) break;
      assert.ok(Date.now() < deadline, `no member finished:\n${first.lines.join('\n')}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    await new Promise((r) => setTimeout(r, 1000)); // it is stopped: nothing more happens
    const runs = await trialRuns(client, 'it-resumed');
    assert.deepEqual(runs.map((r) => r.info.status).sort(), ['FINISHED', 'RUNNING', 'RUNNING']);
    const kept = runs.find((r) => r.info.status === 'FINISHED')!;
    process.kill(-first.pid, 'SIGKILL'); // the runner and its stopped trial process
    await first.exited;

    const second = startRunner('resumed.yaml', server.server.url);
    assert.equal(await second.exited, 0, second.lines.join('\n'));
    assert.ok(
      second.lines.some((l) => /marked 3 runs left RUNNING/.test(l)),
      second.lines.join('\n'),
    );
    assert.ok(
      second.lines.some((l) => /2 finished, 0 failed, 0 killed, 1 skipped/.test(l)),
      second.lines.join('\n'),
    );
    const after = await trialRuns(client, 'it-resumed');
    assert.equal(after.length, 5, 'the two unfinished members got a second run each');
    assert.deepEqual(after.map((r) => r.info.status).sort(), [
      'FINISHED',
      'FINISHED',
      'FINISHED',
      'KILLED',
      'KILLED',
    ]);
    const keptNow = after.find((r) => r.info.run_id === kept.info.run_id)!;
    assert.equal(keptNow.info.status, 'FINISHED');
    assert.equal(keptNow.info.end_time, kept.info.end_time, 'the finished member is not re-run');
    const resumed = byAlpha(after);
    assert.deepEqual([...resumed.keys()].sort(), ALPHAS);
    for (const run of resumed.values())
      if (run.info.run_id !== kept.info.run_id) {
        assert.equal(metric(run, 'eval.group_size'), 2, 'the rest ran as a group of two');
        assert.equal(metric(run, 'eval.forward_images'), testImages);
      }
    for (const alpha of ALPHAS)
      assertSameMetrics(resumed.get(alpha)!, separate.get(alpha)!, `resumed α ${alpha}`);
  },
);
