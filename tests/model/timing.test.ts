import assert from 'node:assert/strict';
import { test } from 'node:test';
import { initBackend } from '../../src/model/backend.js';
import { inferenceMsPerImage, parameterCount } from '../../src/model/timing.js';
import { tf } from '../../src/model/tf.js';
import {
  buildClip,
  buildMethod,
  fixtureMissing,
  loadFixture,
} from './methods/vip2-clip/fixture.js';

const missing = fixtureMissing();

test(
  'parameter count and a positive, finite inference time per image',
  { skip: missing ?? false },
  async () => {
    await initBackend('tensorflow');
    const fx = await loadFixture();
    const clip = buildClip(fx);
    const method = buildMethod(fx, clip);
    // ICA: 17 prompt vectors of W = 64, bias D = 32, 3 MLPs 32→16→64; FGP: 4 × (32·32 + 32).
    assert.equal(
      parameterCount(method),
      17 * 64 + 32 + 3 * (32 * 16 + 16 + 16 * 64 + 64) + 4 * (32 * 32 + 32),
    );
    const images = [1, 2].map((seed) => ({
      pixels: tf.tidy(
        () => tf.randomNormal([3 * 24 * 24], 0, 1, 'float32', seed).dataSync() as Float32Array,
      ),
      cacheable: true,
    }));
    const ms = await inferenceMsPerImage(method, clip, images);
    assert.ok(Number.isFinite(ms) && ms > 0, String(ms));
    method.dispose();
    clip.dispose();
  },
);
