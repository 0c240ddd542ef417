// What vcp-exp reads about an NVIDIA GPU before TensorFlow looks. This machine has no GPU, so
// the driver is faked: its files in a temporary root, written in the formats the NVIDIA driver
// documents (the proprietary and the open kernel module's /proc/driver/nvidia/version lines,
// nvidia-smi's --format=csv,noheader,nounits rows). Not checked against a real driver here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  compareVersions,
  describeGpu,
  driverPathsUnder,
  gpuBlocker,
  kernelWarning,
  MIN_DRIVER,
  parseDriverVersion,
  parseNvidiaSmi,
  pinnedGpu,
  pinOneGpu,
  PTX_JIT_DRIVER,
  visibleDevices,
} from '../../src/model/gpu.js';

const PROPRIETARY =
  'NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 01:15:15 UTC 2023\nGCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n';
const OPEN =
  'NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.54.14  Release Build  (dvs-builder@U16-I3-B03-4-3)  Thu Feb 22 01:25:25 UTC 2024\nGCC version:  gcc version 12.3.0 (Ubuntu 12.3.0-1ubuntu1~22.04)\n';

test('the driver version is read from either kernel module', () => {
  assert.equal(parseDriverVersion(PROPRIETARY), '535.104.05');
  assert.equal(parseDriverVersion(OPEN), '550.54.14');
  assert.equal(parseDriverVersion('something else'), undefined);
});

test('versions compare numerically, part by part', () => {
  assert.equal(compareVersions('525.60.13', MIN_DRIVER), 0);
  assert.equal(compareVersions('525.60.11', MIN_DRIVER), -1);
  assert.equal(compareVersions('470.256.02', MIN_DRIVER), -1);
  assert.equal(compareVersions('535.104.05', MIN_DRIVER), 1);
  assert.equal(compareVersions('1000', MIN_DRIVER), 1);
});

/** A fake root holding what the driver shows: its version file, GPUs, device node. */
function fakeDriver(root: string, { version = PROPRIETARY, gpus = 1, control = true } = {}) {
  mkdirSync(join(root, 'proc/driver/nvidia/gpus'), { recursive: true });
  mkdirSync(join(root, 'dev'), { recursive: true });
  writeFileSync(join(root, 'proc/driver/nvidia/version'), version);
  for (let i = 0; i < gpus; i++)
    mkdirSync(join(root, `proc/driver/nvidia/gpus/0000:0${i}:00.0`), { recursive: true });
  if (control) writeFileSync(join(root, 'dev/nvidiactl'), '');
}

test('why no GPU: each reason, in order', () => {
  const root = mkdtempSync(join(tmpdir(), 'vcp-gpu-'));
  try {
    const paths = driverPathsUnder(root);
    assert.equal(gpuBlocker({}, paths)?.kind, 'no-driver');
    assert.match(
      gpuBlocker({}, paths)!.reason,
      /no NVIDIA driver on this machine \(.*version does not exist\)/,
    );
    fakeDriver(root, { control: false });
    assert.match(gpuBlocker({}, paths)!.reason, /nvidiactl is not visible here .*--gpus all/);
    fakeDriver(root, { gpus: 0 });
    rmSync(join(root, 'proc/driver/nvidia/gpus'), { recursive: true });
    assert.equal(gpuBlocker({}, paths)?.kind, 'no-gpu');
    fakeDriver(root, {
      version:
        'NVRM version: NVIDIA UNIX x86_64 Kernel Module  470.256.02  Thu May  2 14:37:44 UTC 2024\n',
    });
    assert.equal(
      gpuBlocker({}, paths)?.reason,
      'the NVIDIA driver 470.256.02 is too old for CUDA 12 (it needs 525.60.13 or newer): update the driver',
    );
    fakeDriver(root);
    assert.equal(gpuBlocker({}, paths), undefined);
    assert.equal(gpuBlocker({ CUDA_VISIBLE_DEVICES: '' }, paths)?.kind, 'hidden');
    assert.equal(gpuBlocker({ CUDA_VISIBLE_DEVICES: '-1' }, paths)?.kind, 'hidden');
    assert.equal(gpuBlocker({ CUDA_VISIBLE_DEVICES: '1' }, paths), undefined);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('CUDA_VISIBLE_DEVICES is read as CUDA does: up to the first invalid entry', () => {
  assert.equal(visibleDevices({}), undefined);
  assert.deepEqual(visibleDevices({ CUDA_VISIBLE_DEVICES: '1,0' }), ['1', '0']);
  assert.deepEqual(visibleDevices({ CUDA_VISIBLE_DEVICES: '0,-1,2' }), ['0']);
  assert.deepEqual(visibleDevices({ CUDA_VISIBLE_DEVICES: 'GPU-8a1b' }), ['GPU-8a1b']);
});

test('a process is pinned to one GPU (the binding computes on the last one listed)', () => {
  const env: NodeJS.ProcessEnv = {};
  pinOneGpu(env);
  assert.deepEqual(env, {
    CUDA_DEVICE_ORDER: 'PCI_BUS_ID',
    TF_FORCE_GPU_ALLOW_GROWTH: 'true',
    CUDA_VISIBLE_DEVICES: '0',
  });
  const mine: NodeJS.ProcessEnv = {
    CUDA_VISIBLE_DEVICES: '2,3',
    TF_FORCE_GPU_ALLOW_GROWTH: 'false',
  };
  pinOneGpu(mine);
  assert.equal(mine.CUDA_VISIBLE_DEVICES, '2');
  assert.equal(mine.TF_FORCE_GPU_ALLOW_GROWTH, 'false');
});

test("nvidia-smi's rows: the pinned GPU's name, memory and compute capability", () => {
  const gpus = parseNvidiaSmi(
    [
      '0, NVIDIA A100-SXM4-80GB, 81920, 8.0, 550.54.15, GPU-8a1b2c3d-0000-1111-2222-333344445555',
      '1, NVIDIA H100 80GB HBM3, 81559, 9.0, 550.54.15, GPU-9f8e7d6c-0000-1111-2222-333344445555',
      '',
    ].join('\n'),
  );
  assert.equal(gpus.length, 2);
  assert.deepEqual(gpus[1], {
    index: '1',
    name: 'NVIDIA H100 80GB HBM3',
    memoryMiB: 81559,
    computeCapability: '9.0',
    driver: '550.54.15',
    uuid: 'GPU-9f8e7d6c-0000-1111-2222-333344445555',
  });
  assert.equal(pinnedGpu(gpus, { CUDA_VISIBLE_DEVICES: '1' })?.name, 'NVIDIA H100 80GB HBM3');
  assert.equal(pinnedGpu(gpus, { CUDA_VISIBLE_DEVICES: 'GPU-8a1b' })?.index, '0');
  assert.equal(pinnedGpu(gpus, {})?.index, '0');
  assert.equal(describeGpu(gpus[0]!), 'NVIDIA A100-SXM4-80GB, 80 GiB, compute capability 8.0');
  assert.throws(() => parseNvidiaSmi('0, only, three'), /unexpected nvidia-smi line/);
});

test('a GPU that runs the kernels from PTX is warned about a driver too old to compile it', () => {
  // The build's facts behind this (which machine code, which PTX ISA) are read from
  // TensorFlow's libraries in tests/model/native-gpu.test.ts.
  const h100 = { computeCapability: '9.0', driver: '535.104.05' };
  assert.equal(
    kernelWarning(h100),
    "on compute capability 9.0 most of TensorFlow's kernels are JIT-compiled from their CUDA 12.5 PTX, which the NVIDIA driver 535.104.05 cannot compile (it needs 555.42.02 or newer): update the driver",
  );
  assert.equal(kernelWarning({ ...h100, driver: PTX_JIT_DRIVER }), undefined);
  assert.equal(kernelWarning({ ...h100, driver: '570.86.15' }), undefined);
  // Machine code for 6.0, 7.0, 8.0 and 8.9 runs on every GPU of the same major version.
  for (const computeCapability of ['6.1', '7.5', '8.0', '8.6', '8.9'])
    assert.equal(kernelWarning({ computeCapability, driver: MIN_DRIVER }), undefined);
  assert.match(kernelWarning({ computeCapability: '12.0', driver: '550.54.15' })!, /12\.0/);
  assert.equal(kernelWarning({ computeCapability: '9.0', driver: '[N/A]' }), undefined);
});
