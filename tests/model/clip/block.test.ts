// Attention computed a few heads at a time (large inputs, to bound memory) must equal all heads
// at once, the path the transformers goldens of model.test.ts check, with and without the text
// tower's causal mask, on the native and wasm kernels (Q·Kᵀ inside or outside matMul).
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { initBackend, type BackendName } from '../../../src/model/backend.js';
import {
  ATTENTION_CHUNK_BYTES,
  createBlock,
  headsPerChunk,
} from '../../../src/model/clip/block.js';
import type { BlockWeights } from '../../../src/model/clip/block.js';
import { ACTIVATION_FNS, disposeAll } from '../../../src/model/clip/layers.js';
import { Rng } from '../../../src/io/prng.js';
import { tf, type Tensor2D } from '../../../src/model/tf.js';
import { unavailable } from '../../requirements.js';

const WIDTH = 16;
const HEADS = 4;
const T = 9;
const BATCH = 2;

function randomWeights(rng: Rng): BlockWeights {
  const matrix = (rows: number, cols: number) =>
    tf.tensor2d(
      Float32Array.from({ length: rows * cols }, () => rng.next() - 0.5),
      [rows, cols],
    );
  const vector = (n: number, base = 0) =>
    tf.tensor1d(Float32Array.from({ length: n }, () => base + 0.1 * (rng.next() - 0.5)));
  const linear = (inDim: number, out: number) => ({
    weight: matrix(inDim, out),
    bias: vector(out),
  });
  return {
    ln1: { gamma: vector(WIDTH, 1), beta: vector(WIDTH), eps: 1e-5 },
    qkv: linear(WIDTH, 3 * WIDTH),
    out: linear(WIDTH, WIDTH),
    ln2: { gamma: vector(WIDTH, 1), beta: vector(WIDTH), eps: 1e-5 },
    fc1: linear(WIDTH, 4 * WIDTH),
    fc2: linear(4 * WIDTH, WIDTH),
  };
}

test('headsPerChunk: ViT-L-14@518 goes 4 of 16 heads at a time; small inputs all at once', () => {
  assert.equal(headsPerChunk(1, 16, 1370, ATTENTION_CHUNK_BYTES), 4);
  assert.equal(headsPerChunk(8, 12, 197, ATTENTION_CHUNK_BYTES), 12); // ViT-B-16@224, batch 8
  assert.equal(headsPerChunk(8, 16, 1370, ATTENTION_CHUNK_BYTES), 1); // never fewer than one head
});

for (const backend of ['tensorflow', 'wasm'] as BackendName[]) {
  describe(`block on ${backend}`, () => {
    let skip = '';
    before(async () => {
      try {
        await initBackend(backend);
      } catch (error) {
        if (backend !== 'tensorflow') throw error;
        skip = unavailable('native-backend', (error as Error).message.split('\n')[0]);
      }
    });

    for (const masked of [false, true]) {
      test(`one head at a time equals all heads at once${masked ? ' (causal mask)' : ''}`, (t) => {
        if (skip) return t.skip(skip);
        const rng = new Rng(3);
        const weights = randomWeights(rng);
        const x = tf.tensor2d(
          Float32Array.from({ length: BATCH * T * WIDTH }, () => 2 * rng.next() - 1),
          [BATCH * T, WIDTH],
        );
        const mask = masked
          ? tf.linalg
              .bandPart(tf.ones([T, T]), -1, 0)
              .sub(1)
              .mul(1e9)
          : undefined;
        const act = ACTIVATION_FNS.gelu;
        const oneHead = 4 * BATCH * T * T; // logits bytes of one head: chunks of 1
        assert.equal(headsPerChunk(BATCH, HEADS, T, oneHead), 1);
        const whole = createBlock(weights, HEADS, act)(x, BATCH, mask as Tensor2D | undefined);
        const chunked = createBlock(
          weights,
          HEADS,
          act,
          oneHead,
        )(x, BATCH, mask as Tensor2D | undefined);
        const twoHeads = createBlock(
          weights,
          HEADS,
          act,
          2 * oneHead,
        )(x, BATCH, mask as Tensor2D | undefined);
        const [a, b, c] = [whole, chunked, twoHeads].map((r) => r.dataSync() as Float32Array);
        const diff = (p: Float32Array, q: Float32Array) =>
          p.reduce((m, v, i) => Math.max(m, Math.abs(v - q[i])), 0);
        const scale = a.reduce((m, v) => Math.max(m, Math.abs(v)), 1); // float32 rounding is relative
        assert.ok(diff(a, b) <= 1e-6 * scale, `one head at a time differs by ${diff(a, b)}`);
        assert.ok(diff(a, c) <= 1e-6 * scale, `two heads at a time differ by ${diff(a, c)}`);
        assert.ok(a.some((v) => v !== 0));
        [whole, chunked, twoHeads, x, mask].forEach((r) => r?.dispose());
        disposeAll(weights);
      });
    }
  });
}
