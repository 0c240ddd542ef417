// `execution.devices` end to end with the real CLI and a real MLflow server, on the tiny sweep:
// each worker's trial process gets its own GPU (CUDA_VISIBLE_DEVICES) with memory growing on
// demand. This machine has no GPU, so the trials then compute on the CPU, and each says so,
// with the pinning it was given and why no GPU was used; that a GPU computes is not checked
// here (docs/gpu.md).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { gpuBlocker } from '../../src/model/gpu.js';
import { ArtifactStore } from '../../src/tracking/artifacts.js';
import {
  assertOneFinishedEach,
  experimentRuns,
  runCli,
  tag,
  tinyProject,
  tinySpec,
  trialIds,
  trialRuns,
  writeSpec,
} from '../reliability/helpers.js';
import { startTestServer, type TestServer } from '../tracking/helpers.js';

let server: TestServer;
let dir: string;

before(async () => {
  server = await startTestServer('gpu-devices');
  dir = await tinyProject('gpu-devices');
});

after(async () => {
  if (server.ok) await server.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

test(
  'two GPUs in execution.devices: two workers, each trial pinned to its own GPU',
  { timeout: 300_000 },
  async (t) => {
    if (!server.ok) return t.skip(server.reason);
    const blocker = gpuBlocker();
    if (!blocker) return t.skip('this machine has a GPU: the trials would compute on it');
    const spec = writeSpec(
      dir,
      'gpus.yaml',
      tinySpec({ name: 'gpu-devices', sweep: '  grid:\n    heads: [1, 2]' }).replace(
        'execution: { executor: local, workers: 1 }',
        'execution: { executor: local, devices: [gpu:0, gpu:1] }',
      ),
    );
    const r = runCli(['run', spec, '--progress', 'plain'], {
      cwd: dir,
      stateDir: join(dir, 'state'),
      env: { MLFLOW_TRACKING_URI: server.server.url },
    });
    assert.equal(r.status, 0, r.output);
    // No `workers`: one per GPU slot, so both trials start at once, one on each GPU.
    const starts = r.output.match(/ start \(.*\) on .*$/gm) ?? [];
    assert.deepEqual(
      starts.map((l) => /\bgpu:\d\b/.exec(l)?.[0]).sort(),
      ['gpu:0', 'gpu:1'],
      r.output,
    );

    const client = server.client();
    const runs = trialRuns(await experimentRuns(client, 'gpu-devices'));
    assertOneFinishedEach(runs, await trialIds(dir, spec));
    const store = new ArtifactStore(client);
    const tmp = mkdtempSync(join(tmpdir(), 'vcp-gpu-log-'));
    try {
      const pinned: string[] = [];
      for (const run of runs) {
        assert.equal(tag(run, 'vcp.device'), 'cpu');
        const log = join(tmp, `${run.info.run_id}.log`);
        await store.download(run.info.run_id, 'logs/trial.log', log);
        const line = /^planned for (gpu:\d) \((.*)\), this trial computes on the CPU: (.*)$/m.exec(
          readFileSync(log, 'utf8'),
        );
        assert.ok(line, `${run.info.run_id}: no "planned for gpu" line in its log`);
        const [, device, env, why] = line;
        assert.equal(
          env,
          `CUDA_VISIBLE_DEVICES=${device!.slice(4)}, TF_FORCE_GPU_ALLOW_GROWTH=${process.env.TF_FORCE_GPU_ALLOW_GROWTH ?? 'true'}`,
        );
        // What the trial process itself saw: its own CUDA_VISIBLE_DEVICES, and the backend it got.
        const expected =
          tag(run, 'vcp.backend') === 'tensorflow'
            ? gpuBlocker({ CUDA_VISIBLE_DEVICES: device!.slice(4) })?.reason
            : `the ${tag(run, 'vcp.backend')} backend computes on the CPU only`;
        assert.equal(why, expected);
        pinned.push(device!);
      }
      assert.deepEqual(pinned.sort(), ['gpu:0', 'gpu:1']);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  },
);
