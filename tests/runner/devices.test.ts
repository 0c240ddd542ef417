import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  defaultWorkers,
  deviceSlotProblem,
  gpuWorkerEnv,
  workersPerGpu,
} from '../../src/runner/executors/devices.js';
import { workerDevice } from '../../src/runner/executors/local.js';
import { loadSpec } from '../../src/runner/spec.js';

test('workers get execution.devices round-robin, each GPU pinned by CUDA_VISIBLE_DEVICES', () => {
  const devices = ['gpu:0', 'gpu:1'];
  assert.deepEqual(
    [0, 1, 2, 3].map((w) => workerDevice(devices, w)),
    [
      { device: 'gpu:0', cuda: '0' },
      { device: 'gpu:1', cuda: '1' },
      { device: 'gpu:0', cuda: '0' },
      { device: 'gpu:1', cuda: '1' },
    ],
  );
  assert.deepEqual(workerDevice(['cpu'], 3), { device: 'cpu' });
  assert.deepEqual(
    [...workersPerGpu(devices, 3)],
    [
      ['0', 2],
      ['1', 1],
    ],
  );
  assert.deepEqual([...workersPerGpu(['cpu', 'gpu:2'], 4)], [['2', 2]]);
});

test('a GPU worker computes on its GPU alone, with memory growing on demand', () => {
  assert.deepEqual(gpuWorkerEnv('1', {}), {
    CUDA_VISIBLE_DEVICES: '1',
    CUDA_DEVICE_ORDER: 'PCI_BUS_ID',
    TF_FORCE_GPU_ALLOW_GROWTH: 'true',
  });
  // What the user set stays.
  assert.equal(
    gpuWorkerEnv('0', { TF_FORCE_GPU_ALLOW_GROWTH: 'false' }).TF_FORCE_GPU_ALLOW_GROWTH,
    'false',
  );
  assert.deepEqual(gpuWorkerEnv(undefined, {}), {});
});

test('trials_per_device caps the trials one GPU runs at once', () => {
  const devices = ['gpu:0', 'gpu:1'];
  assert.equal(deviceSlotProblem(devices, 2, 1), undefined);
  assert.equal(deviceSlotProblem(devices, 4, 2), undefined);
  assert.match(
    deviceSlotProblem(devices, 3, 1)!,
    /put 2 trials at once on gpu:0, and trials_per_device is 1: set execution.trials_per_device: 2 .* or at most 2 workers/,
  );
  // Listing a GPU twice is sharing it too.
  assert.match(deviceSlotProblem(['gpu:0', 'gpu:0'], 2, 1)!, /2 trials at once on gpu:0/);
  // CPU workers are not limited.
  assert.equal(deviceSlotProblem(['cpu'], 8, 1), undefined);
  assert.equal(defaultWorkers(devices, 2), 4);
  assert.equal(defaultWorkers(['gpu:0', 'gpu:0'], 1), 1);
  assert.equal(defaultWorkers(['cpu'], 3), 1);
});

test('a GPU spec without workers fills every GPU slot; trials_per_device on CPUs warns', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vcp-devices-'));
  try {
    const write = (name: string, execution: string) => {
      const file = join(dir, name);
      writeFileSync(
        file,
        [
          `name: ${name.replace('.yaml', '')}`,
          'train: { dataset: { format: mvtec, root: data } }',
          'eval: { datasets: [{ name: d, format: mvtec, root: data }] }',
          `execution: ${execution}`,
          '',
        ].join('\n'),
      );
      return file;
    };
    const shared = await loadSpec(
      write('shared.yaml', '{ devices: [gpu:0, gpu:1], trials_per_device: 2 }'),
    );
    assert.equal(shared.execution.workers, 4);
    assert.equal(shared.execution.trials_per_device, 2);
    // Slurm hands out GPUs itself: devices do not make workers there.
    const slurm = await loadSpec(
      write('slurm.yaml', '{ executor: slurm, devices: [gpu:0, gpu:1], trials_per_device: 2 }'),
    );
    assert.equal(slurm.execution.workers, 1);
    const cpu = await loadSpec(write('cpu.yaml', '{ trials_per_device: 2 }'));
    assert.equal(cpu.execution.workers, 1);
    assert.ok(
      cpu.warnings.some((w) =>
        /trials_per_device applies to GPUs and execution.devices lists none/.test(w),
      ),
      cpu.warnings.join('\n'),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
