/**
 * What the authors' code cannot run, against a reference written from our spec
 * (python/golden/make_vcp_golden.py; not independent of our reading of the method): deep
 * prompts before EOS (DTP 'post'), Post-VCP's attention maps and its 1/sqrt(d) scaling, on the
 * native, wasm and cpu backends. Everything else is compared with the authors' code itself:
 * public-golden.test.ts. Tolerance 1e-4.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { initBackend, type BackendName } from '../../../../src/model/backend.js';
import type { ClipModel } from '../../../../src/model/clip/model.js';
import { l2Normalize } from '../../../../src/model/methods/vcp-clip/post-vcp.js';
import type { VcpClipMethod } from '../../../../src/model/methods/vcp-clip/model.js';
import { tf } from '../../../../src/model/tf.js';
import type { Tensor3D } from '../../../../src/model/tf.js';
import {
  buildClip,
  buildMethod,
  type Fixture,
  fixtureMissing,
  loadFixture,
  maxAbsDiff,
  tensorOf,
} from './fixture.js';

const TOL = 1e-4;
const missing = fixtureMissing();
const fx: Fixture | null = missing ? null : await loadFixture();

function close(actual: tf.Tensor, key: string, tol = TOL): void {
  const err = maxAbsDiff(actual, fx!.golden.get(key)!);
  assert.ok(err <= tol, `${key}: max |Δ| = ${err} > ${tol}`);
}

for (const backend of ['tensorflow', 'wasm', 'cpu'] as BackendName[]) {
  describe(`vcp-clip golden on ${backend}`, { skip: missing ?? false }, () => {
    let clip: ClipModel;
    let method: VcpClipMethod;
    const input = (key: string) => tensorOf(fx!.inputs.get(key)!);
    const gold = (key: string) => tensorOf(fx!.golden.get(key)!);

    before(async () => {
      const info = await initBackend(backend);
      assert.equal(info.name, backend);
      clip = buildClip(fx!);
      method = buildMethod(fx!, clip);
    });
    after(() => {
      method.dispose();
      clip.dispose();
    });

    test('checkpoint names and shapes are those of the reference', () => {
      const names = [...method.parameters().keys()].sort();
      assert.deepEqual(names, [...fx!.params.keys()].sort());
      for (const [name, v] of method.parameters())
        assert.deepEqual(v.shape, fx!.params.get(name)!.shape, name);
    });

    test("DTP 'post': deep prompts before EOS", () => {
      const post = buildMethod(fx!, clip, { dtp_position: 'post' });
      tf.tidy(() =>
        close(
          post.prompts.encode(gold('pre_vcp.category') as Tensor3D, false),
          'text.embeddings_post',
        ),
      );
      post.dispose();
    });

    test('Post-VCP attention maps, per layer (the public forward does not return them)', () => {
      tf.tidy(() => {
        const text = gold('text.embeddings') as Tensor3D;
        fx!.meta.layers.forEach((layer, i) => {
          const { attention } = method.postVcp!.apply(
            text,
            l2Normalize(input(`patch_tokens.${i}`) as Tensor3D),
          );
          close(attention, `post_vcp.${layer}.attention`);
        });
      });
    });

    test('Post-VCP with 1/sqrt(d) attention scaling (an option the public code lacks)', () => {
      const scaled = buildMethod(fx!, clip, { attention_scaling: true });
      tf.tidy(() => {
        const text = gold('text.embeddings') as Tensor3D;
        fx!.meta.layers.forEach((layer, i) => {
          const { embeddings, attention } = scaled.postVcp!.apply(
            text,
            l2Normalize(input(`patch_tokens.${i}`) as Tensor3D),
          );
          close(embeddings, `post_vcp.${layer}.embeddings_scaled`);
          close(attention, `post_vcp.${layer}.attention_scaled`);
        });
      });
      scaled.dispose();
    });
  });
}
