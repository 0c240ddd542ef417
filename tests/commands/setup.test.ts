// Which parts `vcp-exp setup` sets up: the GPU build with --gpu, or by itself when an NVIDIA
// driver for CUDA 12 is visible. This machine has none, so the driver is faked as in
// tests/model/gpu.test.ts (its files under a temporary root).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chooseParts } from '../../src/commands/setup.js';
import { UserError } from '../../src/errors.js';
import { driverPathsUnder, gpuBlocker } from '../../src/model/gpu.js';

function driverAt(root: string, version: string): void {
  mkdirSync(join(root, 'proc/driver/nvidia/gpus/0000:01:00.0'), { recursive: true });
  mkdirSync(join(root, 'dev'), { recursive: true });
  writeFileSync(
    join(root, 'proc/driver/nvidia/version'),
    `NVRM version: NVIDIA UNIX x86_64 Kernel Module  ${version}  Sat Aug 19 01:15:15 UTC 2023\n`,
  );
  writeFileSync(join(root, 'dev/nvidiactl'), '');
}

test('setup builds the GPU build with --gpu, or when a CUDA 12 driver is visible', () => {
  const root = mkdtempSync(join(tmpdir(), 'vcp-setup-'));
  try {
    const paths = driverPathsUnder(root);
    const logged: string[] = [];
    const log = (line: string) => logged.push(line);
    const noDriver = gpuBlocker({}, paths);
    assert.equal(noDriver?.kind, 'no-driver');
    assert.deepEqual(chooseParts(undefined, {}, log, { blocker: noDriver }), ['native', 'mlflow']);
    assert.deepEqual(chooseParts('all', { gpu: true }, log, { blocker: noDriver }), [
      'native',
      'gpu',
      'mlflow',
    ]);
    assert.deepEqual(chooseParts('native', { gpu: true }, log, { blocker: noDriver }), [
      'native',
      'gpu',
    ]);
    assert.deepEqual(chooseParts('gpu', {}, log, { blocker: noDriver }), ['gpu']);
    assert.deepEqual(logged, [], 'a machine without a driver hears nothing about GPUs');

    driverAt(root, '550.54.14');
    assert.deepEqual(chooseParts(undefined, {}, log, { blocker: gpuBlocker({}, paths) }), [
      'native',
      'gpu',
      'mlflow',
    ]);

    driverAt(root, '470.256.02');
    assert.deepEqual(chooseParts(undefined, {}, log, { blocker: gpuBlocker({}, paths) }), [
      'native',
      'mlflow',
    ]);
    assert.deepEqual(logged, [
      '[setup:gpu] skipped: the NVIDIA driver 470.256.02 is too old for CUDA 12 (it needs 525.60.13 or newer): update the driver (vcp-exp setup --gpu builds it anyway)',
    ]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('an unknown setup part is a usage error naming the parts', () => {
  assert.throws(
    () => chooseParts('cuda', {}, () => {}, { blocker: undefined }),
    (error: unknown) =>
      error instanceof UserError &&
      error.exitCode === 2 &&
      /setup: got "cuda", expected one of native, gpu, mlflow or all/.test(error.message),
  );
});
