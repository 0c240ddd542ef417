// The native backend's GPU build (`vcp-exp setup --gpu`) on a machine that may have no GPU (this
// project's have none): TensorFlow's own loader finds every CUDA library it would open, the
// build loads and says why no GPU computes, and its CPU kernels compute what the CPU build
// computes. What a GPU itself computes cannot be checked without one (docs/gpu.md).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  compareVersions,
  gpuBlocker,
  KERNELS_IN_FULL,
  PTX_JIT_DRIVER,
} from '../../src/model/gpu.js';
import { checkCudaLibraries } from '../../src/model/native-cuda.js';
import { findPython } from '../../src/model/native-wheels.js';
import { nativeDir, nativePackageDir } from '../../src/model/native.js';
import { need, type Availability } from '../requirements.js';

const deps = join(nativePackageDir('gpu'), 'deps');
const TF_OPENS = [
  'libcudart.so.12',
  'libcublas.so.12',
  'libcublasLt.so.12',
  'libcufft.so.11',
  'libcusolver.so.11',
  'libcusparse.so.12',
  'libcudnn.so.9',
];

function gpuBuild(): Availability<string> {
  return existsSync(join(deps, 'nvidia'))
    ? { ok: true, value: deps }
    : { ok: false, reason: `no ${join(deps, 'nvidia')}` };
}

const cli = (args: string[], env: NodeJS.ProcessEnv) =>
  spawnSync(process.execPath, ['bin/vcp-exp.js', ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 600_000,
  });

test("TensorFlow's own loader finds every CUDA library the GPU build opens, NVRTC included", (t) => {
  if (!need(t, 'gpu-build', gpuBuild())) return;
  const check = checkCudaLibraries(findPython(), deps);
  assert.deepEqual(check.problems, []);
  assert.deepEqual(Object.keys(check.tensorflowOpens), TF_OPENS);
  for (const [soname, path] of Object.entries(check.tensorflowOpens))
    assert.ok(path.startsWith(join(deps, 'nvidia')), `${soname} came from ${path}`);
  assert.deepEqual(Object.keys(check.nvrtc).sort(), [
    'libcublasLt.so.12',
    'libcudnn_graph.so.9',
    'libcufft.so.11',
  ]);
});

/** The first Linux driver of the CUDA release that introduced a PTX ISA (CUDA release notes). */
const PTX_ISA_DRIVER: Record<string, string> = {
  '8.3': '545.23.06',
  '8.4': '550.54.14',
  '8.5': '555.42.02',
};

test('the kernels are what gpu.ts says: machine code up to 8.9 in full, PTX for 9.0 and newer', (t) => {
  if (!need(t, 'gpu-build', gpuBuild())) return;
  const { kernels } = checkCudaLibraries(findPython(), deps);
  console.log(`# TensorFlow's GPU kernels: ${JSON.stringify(kernels)}`);
  assert.ok(kernels.fatbins > 1000, `${kernels.fatbins} fatbins`);
  // Machine code every GPU of these major versions runs without a JIT (kernelWarning is silent).
  for (const cc of KERNELS_IN_FULL)
    assert.equal(kernels.sass[cc.replace('.', '')], kernels.fatbins, `sm_${cc}`);
  // For 9.0 only part: the rest, like everything on newer GPUs, is JIT-compiled from PTX.
  assert.ok((kernels.sass['90'] ?? 0) < kernels.fatbins, 'sm_90 in every kernel: drop the warning');
  const ptx = Object.entries(kernels.ptx);
  assert.ok(
    ptx.length > 0 && ptx.every(([key]) => key.startsWith('90/')),
    Object.keys(kernels.ptx).join(),
  );
  const newest = ptx
    .map(([key]) => key.split('/')[1]!)
    .sort(compareVersions)
    .pop()!;
  assert.equal(PTX_ISA_DRIVER[newest], PTX_JIT_DRIVER, `PTX ISA ${newest}`);
});

test('without its links the check fails: cuSOLVER and NVRTC are then out of reach', (t) => {
  if (!need(t, 'gpu-build', gpuBuild())) return;
  // A hard-linked copy (no extra space) of deps/, then the links setup adds are taken away.
  const copy = mkdtempSync(join(nativeDir('gpu'), '.check-'));
  try {
    const cp = spawnSync('cp', ['-al', deps, join(copy, 'deps')], { encoding: 'utf8' });
    assert.equal(cp.status, 0, cp.stderr);
    const nvidia = join(copy, 'deps/nvidia');
    rmSync(join(nvidia, 'cuda_runtime/lib/libcusolver.so.11'));
    rmSync(join(nvidia, 'nvrtc'));
    for (const lib of ['cublas/lib', 'cufft/lib'])
      for (const file of readdirSync(join(nvidia, lib)).filter((f) => f.startsWith('libnvrtc')))
        rmSync(join(nvidia, lib, file));
    const check = checkCudaLibraries(findPython(), join(copy, 'deps'));
    assert.equal(check.ok, false);
    assert.ok(
      check.problems.some((p) => /^TensorFlow cannot open libcusolver\.so\.11/.test(p)),
      check.problems.join('\n'),
    );
    for (const user of ['libcudnn_graph.so.9', 'libcublasLt.so.12', 'libcufft.so.11'])
      assert.ok(
        check.problems.some((p) => p.includes(`${user} cannot find libnvrtc.so.12`)),
        check.problems.join('\n'),
      );
    assert.deepEqual(
      Object.keys(check.tensorflowOpens),
      TF_OPENS.filter((s) => s !== 'libcusolver.so.11'),
    );
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
});

test('vcp-exp backend names the GPU build and the GPU it computes on, or why none', (t) => {
  if (!need(t, 'gpu-build', gpuBuild())) return;
  const r = cli(['backend'], { VCP_EXP_NATIVE_BUILD: 'gpu' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(
    r.stdout,
    /^GPU build: .*tfjs-node-gpu-.*TensorFlow 2\.21\.0, CUDA runtime 12\.5\.82, cuDNN 9\.3\.0\.75\)$/m,
  );
  const blocker = gpuBlocker();
  if (blocker) {
    assert.match(
      r.stdout,
      /^backend: tensorflow \(cpu, \d+ threads?, @tensorflow\/tfjs-node-gpu\)$/m,
    );
    assert.ok(
      r.stdout.includes(
        `GPU: none used: TensorFlow saw no GPU device (the GPU build computes on its CPU kernels): ${blocker.reason}`,
      ),
      r.stdout,
    );
  } else {
    assert.match(r.stdout, /^GPU: gpu:\d+ \(.*, compute capability \d+\.\d+\) \(NVIDIA driver /m);
  }
});

test('setup --gpu is idempotent: with the build in place it only checks it', (t) => {
  if (!need(t, 'gpu-build', gpuBuild())) return;
  const r = cli(['setup', 'gpu'], {});
  assert.equal(r.status, 0, r.stderr);
  assert.match(
    r.stdout,
    /^\[setup:gpu\] GPU build ready \(tfjs 4\.22\.0, libtensorflow 2\.21\.0, /m,
  );
  assert.doesNotMatch(r.stdout, /downloading|installing|building/);
});

interface ParityRun {
  backend: string;
  package: string;
  device: string;
  worst: number;
  outputs: Record<string, number[]>;
}

function parityRun(build: 'cpu' | 'gpu'): ParityRun {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'tests/model/native-parity-child.ts'], {
    encoding: 'utf8',
    // TF32 would round a GPU's float32 matmuls to 10-bit mantissas; parity wants float32.
    env: { ...process.env, VCP_EXP_NATIVE_BUILD: build, NVIDIA_TF32_OVERRIDE: '0' },
    timeout: 600_000,
  });
  assert.equal(r.status, 0, `${build} build: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as ParityRun;
}

test('the GPU build matches the transformers goldens, and the CPU build where it computes on the CPU', (t) => {
  if (!need(t, 'gpu-build', gpuBuild())) return;
  const gpu = parityRun('gpu');
  const cpu = parityRun('cpu');
  assert.equal(gpu.package, '@tensorflow/tfjs-node-gpu');
  assert.equal(cpu.package, '@tensorflow/tfjs-node');
  let between = 0;
  for (const [name, values] of Object.entries(cpu.outputs)) {
    const other = gpu.outputs[name]!;
    assert.equal(other.length, values.length, name);
    values.forEach((v, i) => (between = Math.max(between, Math.abs(v - other[i]!))));
  }
  console.log(
    `# tiny CLIP vs transformers: max abs error ${gpu.worst.toExponential(2)} on the GPU build (${gpu.device}), ${cpu.worst.toExponential(2)} on the CPU build; between the builds ${between.toExponential(2)} over ${Object.keys(cpu.outputs).length} outputs (gradients included)`,
  );
  assert.ok(gpu.worst <= 1e-4 && cpu.worst <= 1e-4, `goldens: ${gpu.worst}, ${cpu.worst}`);
  // The same TensorFlow CPU kernels: the same numbers, up to float32 rounding.
  if (gpu.device === 'cpu') assert.ok(between <= 1e-6, `builds differ by ${between}`);
});
