// Checkpoint tensors are checked before use: a missing or mis-shaped one is a UserError naming
// the file, the tensor and the expected vs found shape.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { UserError } from '../../../src/errors.js';
import { initBackend } from '../../../src/model/backend.js';
import { parseClipConfig } from '../../../src/model/clip/config.js';
import { createClipModel } from '../../../src/model/clip/model.js';
import { readSafetensors } from '../../../src/io/safetensors.js';
import { expectedClipTensors } from '../../../src/model/clip/tensors.js';
import { tf } from '../../../src/model/tf.js';

const DIR = 'assets/clip/tiny-clip';
const config = parseClipConfig(
  JSON.parse(readFileSync(`${DIR}/config.json`, 'utf8')),
  `${DIR}/config.json`,
);
const { tensors } = await readSafetensors(`${DIR}/model.safetensors`);
const source = `${DIR}/model.safetensors`;
await initBackend('cpu');

test('the fixture holds exactly the expected tensors', () => {
  const expected = expectedClipTensors(config);
  // vision: 3 embeddings, ln_pre, 3 blocks of 16, ln_post, projection; text: 2 embeddings, 3 blocks, ln_final, projection; logit_scale
  assert.equal(expected.size, 3 + 2 + 3 * 16 + 2 + 1 + (2 + 3 * 16 + 2 + 1) + 1);
  assert.deepEqual(
    [...expected.keys()].sort(),
    [...tensors.keys()].filter((k) => !k.endsWith('position_ids')).sort(),
  );
  const before = tf.memory().numTensors;
  createClipModel(config, tensors, { source }).dispose();
  assert.equal(tf.memory().numTensors, before, 'dispose() frees every weight');
});

test('a missing tensor is named with its expected shape', () => {
  const broken = new Map(tensors);
  broken.delete('vision_model.encoder.layers.1.mlp.fc2.weight');
  assert.throws(
    () => createClipModel(config, broken, { source }),
    (error: unknown) => {
      assert.ok(error instanceof UserError);
      assert.equal(
        error.message,
        `${source}: tensor "vision_model.encoder.layers.1.mlp.fc2.weight" is missing (expected shape [32,64])`,
      );
      return true;
    },
  );
});

test('a mis-shaped tensor is named with the expected and found shapes', () => {
  const broken = new Map(tensors);
  broken.set('text_projection.weight', {
    dtype: 'F32',
    shape: [32, 24],
    data: new Float32Array(32 * 24),
  });
  broken.delete('logit_scale');
  assert.throws(
    () => createClipModel(config, broken, { source }),
    (error: unknown) => {
      assert.ok(error instanceof UserError);
      assert.match(
        error.message,
        /model\.safetensors: tensor "text_projection\.weight" has shape \[32,24\], expected \[24,32\] \(and 1 more problem: tensor "logit_scale" is missing/,
      );
      return true;
    },
  );
});
