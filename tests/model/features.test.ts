/** Frozen features: cache hits equal computed features, augmented images are never cached, hit/miss counts. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { FeatureCache } from '../../src/model/feature-cache.js';
import { initBackend } from '../../src/model/backend.js';
import { disposeFeatures, encoderChunk, FeatureExtractor } from '../../src/model/features.js';
import { tf } from '../../src/model/tf.js';
import { buildClip, fixtureMissing, loadFixture } from './methods/vcp-clip/fixture.js';

const missing = fixtureMissing();
const dir = mkdtempSync(join(tmpdir(), 'vcp-features-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test(
  'cache hits give the encoder features; counts per image',
  { skip: missing ?? false },
  async () => {
    await initBackend('tensorflow');
    const clip = buildClip(await loadFixture());
    const request = { layers: [1, 2], imageSize: 24 };
    const image = (seed: number) => ({
      pixels: tf.tidy(
        () => tf.randomNormal([3 * 24 * 24], 0, 1, 'float32', seed).dataSync() as Float32Array,
      ),
      cacheable: true,
    });
    const images = [image(1), image(2), { ...image(3), cacheable: false }];
    const plain = new FeatureExtractor({ clip, weightsHash: 'h', request, chunkSize: 2 });
    const cached = new FeatureExtractor({
      clip,
      weightsHash: 'h',
      request,
      cache: new FeatureCache({ dir }),
      chunkSize: 2,
    });
    const reference = await plain.extract(images);
    const first = await cached.extract(images);
    const second = await cached.extract(images);
    assert.deepEqual(cached.stats, { hits: 2, misses: 2, encoded: 4 });
    assert.deepEqual(plain.stats, { hits: 0, misses: 0, encoded: 3 });
    for (const f of [first, second]) {
      assert.deepEqual(f.global.shape, [3, clip.config.projectionDim]);
      f.patchTokens.forEach((t, i) => {
        assert.deepEqual(t.shape, [3, 9, clip.config.vision.width]);
        assert.deepEqual(t.dataSync(), reference.patchTokens[i].dataSync());
      });
      assert.deepEqual(f.global.dataSync(), reference.global.dataSync());
    }
    [reference, first, second].forEach(disposeFeatures);
    clip.dispose();
  },
);

test('encoder chunks: large inputs go a few images at a time, small ones keep the batch', () => {
  assert.equal(encoderChunk(8, 518, 14), 1); // ViT-L-14@518: 1370 tokens per image
  assert.equal(encoderChunk(8, 336, 14), 3); // ViT-L-14@336: 577
  assert.equal(encoderChunk(8, 224, 16), 8); // ViT-B-16@224: 197
  assert.equal(encoderChunk(2, 64, 8), 2); // never more than asked
  assert.equal(encoderChunk(8, 1036, 14), 1); // never fewer than one
});
