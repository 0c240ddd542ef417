/**
 * Checkpoints: save → load → same parameters and forward; refusals naming the field and both
 * values. (Checkpoints of the authors' code: tests/commands/import-predict.test.ts.)
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { initBackend } from '../../src/model/backend.js';
import { applyCheckpoint, loadCheckpoint, saveCheckpoint } from '../../src/model/checkpoint.js';
import type { ClipModel } from '../../src/model/clip/model.js';
import { sha256File } from '../../src/model/clip/weights.js';
import type { ZeroShotMethod } from '../../src/model/methods/method.js';
import { tf } from '../../src/model/tf.js';
import type { Tensor2D, Tensor3D } from '../../src/model/tf.js';
import {
  buildClip,
  buildMethod,
  DIR,
  type Fixture,
  fixtureMissing,
  loadFixture,
  tensorOf,
} from './methods/vcp-clip/fixture.js';

const missing = fixtureMissing();
const fx: Fixture | null = missing ? null : await loadFixture();
const work = mkdtempSync(join(tmpdir(), 'vcp-ckpt-'));
after(() => rmSync(work, { recursive: true, force: true }));

function forwardMap(method: ZeroShotMethod): Float32Array {
  return tf
    .tidy(() => {
      const batch = {
        patchTokens: fx!.meta.layers.map(
          (_, i) => tensorOf(fx!.inputs.get(`patch_tokens.${i}`)!) as Tensor3D,
        ),
        global: tensorOf(fx!.inputs.get('global')!) as Tensor2D,
      };
      return method.forward(batch, { training: false }).anomalyMap!;
    })
    .dataSync() as Float32Array;
}

describe('checkpoints', { skip: missing ?? false }, () => {
  let clip: ClipModel;
  let hash: string;
  before(async () => {
    await initBackend('tensorflow');
    clip = buildClip(fx!);
    hash = await sha256File(join(DIR, 'tiny-clip/model.safetensors'));
  });
  after(() => clip.dispose());

  test('save → load: same tensors, same forward; refusals name field and both values', async () => {
    const trained = buildMethod(fx!, clip);
    const dir = join(work, 'ckpt');
    await saveCheckpoint(dir, trained, { sha256: hash, name: 'tiny' });
    await saveCheckpoint(dir, trained, { sha256: hash, name: 'tiny' }); // replacing is atomic too
    const ckpt = await loadCheckpoint(dir);
    assert.equal(ckpt.config.method, 'vcp-clip');
    const fresh = buildMethod(fx!, clip, {}, { load: false });
    const before = forwardMap(fresh);
    applyCheckpoint(fresh, ckpt, hash);
    assert.deepEqual(forwardMap(fresh), forwardMap(trained));
    assert.notDeepEqual(before, forwardMap(trained));

    assert.throws(
      () => applyCheckpoint(fresh, ckpt, 'f'.repeat(64)),
      (e: Error) =>
        e.message.includes('clip.sha256') &&
        e.message.includes(hash) &&
        e.message.includes('f'.repeat(64)),
    );
    const other = buildMethod(fx!, clip, { heads: 2 }, { load: false });
    assert.throws(
      () => applyCheckpoint(other, ckpt, hash),
      /config\.heads: the checkpoint has \d+, the model config has 2/,
    );
    const evalOnly = buildMethod(fx!, clip, { alpha: 0.3, sigma: 1 }, { load: false });
    applyCheckpoint(evalOnly, ckpt, hash); // evaluation-only fields may differ
    await assert.rejects(
      loadCheckpoint(join(work, 'nothing')),
      /not a vcp-exp checkpoint \(missing config\.json\)/,
    );
    for (const m of [trained, fresh, other, evalOnly]) m.dispose();
  });
});
