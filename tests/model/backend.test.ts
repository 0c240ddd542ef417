import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BackendError, describeBackend, initBackend } from '../../src/model/backend.js';
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
  assert.equal(info.package, '@tensorflow/tfjs-node');
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
