import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  BackendError,
  describeBackend,
  initBackend,
  nativeBuildOverride,
} from '../../src/model/backend.js';
import { tf } from '../../src/model/tf.js';
import { need } from '../requirements.js';

/** The product of two small matrices, checked on whichever backend is active. */
function checkMatMul(): void {
  const product = tf.tidy(() =>
    tf.matMul(
      tf.tensor2d([
        [1, 2],
        [3, 4],
      ]),
      tf.tensor2d([[5], [6]]),
    ),
  );
  assert.deepEqual(Array.from(product.dataSync()), [17, 39]);
  product.dispose();
}

test('auto picks the native TensorFlow backend when it is built', async (t) => {
  const info = await initBackend('auto');
  if (info.name !== 'tensorflow') {
    need(t, 'native-backend', { ok: false, reason: `auto chose ${describeBackend(info)}` });
    return;
  }
  assert.equal(tf.getBackend(), 'tensorflow');
  // The GPU build when asked for (VCP_EXP_NATIVE_BUILD=gpu) or when it computes on a GPU.
  const gpuBuild = process.env.VCP_EXP_NATIVE_BUILD === 'gpu' || info.device === 'gpu';
  assert.equal(info.package, gpuBuild ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node');
  assert.ok(info.threads >= 1);
  assert.equal(info.hint, undefined);
  checkMatMul();
});

for (const name of ['wasm', 'cpu'] as const) {
  test(`--backend ${name} is honoured`, async () => {
    const info = await initBackend(name);
    assert.equal(info.name, name);
    assert.equal(tf.getBackend(), name);
    assert.match(describeBackend(info), new RegExp(`^${name} \\(cpu, 1 thread`));
    checkMatMul();
  });
}

test('an unknown backend is a user error listing the accepted names', async () => {
  await assert.rejects(initBackend('cuda' as never), (error: unknown) => {
    assert.ok(error instanceof BackendError);
    assert.match(
      (error as Error).message,
      /unknown backend "cuda"; accepted: auto, tensorflow, wasm, cpu/,
    );
    return true;
  });
});

test('the description carries the hint when a faster backend was skipped', () => {
  const info = {
    name: 'wasm',
    package: '@tensorflow/tfjs-backend-wasm',
    device: 'cpu',
    threads: 1,
  } as const;
  assert.equal(describeBackend(info), 'wasm (cpu, 1 thread, @tensorflow/tfjs-backend-wasm)');
  assert.equal(
    describeBackend({ ...info, hint: 'run `npm run setup:native`' }),
    'wasm (cpu, 1 thread, @tensorflow/tfjs-backend-wasm); run `npm run setup:native`',
  );
});

test('the description names the GPU, or says why none computes when that is news', () => {
  const gpu = {
    name: 'tensorflow',
    package: '@tensorflow/tfjs-node-gpu',
    device: 'gpu',
    threads: 2,
    gpu: {
      id: 'gpu:1',
      info: {
        index: '1',
        name: 'NVIDIA L40S',
        memoryMiB: 46068,
        computeCapability: '8.9',
        driver: '550.54.15',
        uuid: 'GPU-1',
      },
    },
  } as const;
  assert.equal(
    describeBackend(gpu),
    'tensorflow (gpu:1 (NVIDIA L40S, 45 GiB, compute capability 8.9), @tensorflow/tfjs-node-gpu)',
  );
  const warned = { ...gpu, gpu: { ...gpu.gpu, warning: 'the NVIDIA driver 535.104.05 cannot' } };
  assert.match(describeBackend(warned), /-gpu\); warning: the NVIDIA driver 535\.104\.05 cannot$/);
  const cpu = {
    name: 'tensorflow',
    package: '@tensorflow/tfjs-node',
    device: 'cpu',
    threads: 2,
  } as const;
  assert.equal(
    describeBackend({
      ...cpu,
      noGpu: { reason: 'no NVIDIA driver on this machine', notable: false },
    }),
    'tensorflow (cpu, 2 threads, @tensorflow/tfjs-node)',
  );
  const old = {
    ...cpu,
    noGpu: { reason: 'the NVIDIA driver 470.256.02 is too old', notable: true },
  };
  assert.equal(
    describeBackend(old),
    'tensorflow (cpu, 2 threads, @tensorflow/tfjs-node); GPU not used: the NVIDIA driver 470.256.02 is too old',
  );
  assert.equal(
    describeBackend(old, { gpuNote: false }),
    'tensorflow (cpu, 2 threads, @tensorflow/tfjs-node)',
  );
});

test('VCP_EXP_NATIVE_BUILD accepts cpu, gpu or auto', () => {
  assert.equal(nativeBuildOverride({}), undefined);
  assert.equal(nativeBuildOverride({ VCP_EXP_NATIVE_BUILD: 'auto' }), undefined);
  assert.equal(nativeBuildOverride({ VCP_EXP_NATIVE_BUILD: 'gpu' }), 'gpu');
  assert.throws(
    () => nativeBuildOverride({ VCP_EXP_NATIVE_BUILD: 'cuda' }),
    /VCP_EXP_NATIVE_BUILD: got "cuda", expected cpu, gpu or auto/,
  );
});
