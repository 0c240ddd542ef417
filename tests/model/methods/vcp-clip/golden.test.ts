/**
 * VCP-CLIP modules against the PyTorch reference (python/golden/make_vcp_golden.py) on the
 * native, wasm and cpu backends: Pre-VCP, UTP + DTP text embeddings, Post-VCP, both maps,
 * focal / dice, the fused map and score, gradients and one Adam step. Tolerance 1e-4.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { initBackend, type BackendName } from '../../../../src/model/backend.js';
import type { ClipModel } from '../../../../src/model/clip/model.js';
import { createOptimizer } from '../../../../src/model/methods/optim.js';
import { diceLoss, focalLoss } from '../../../../src/model/methods/vcp-clip/loss.js';
import { l2Normalize } from '../../../../src/model/methods/vcp-clip/post-vcp.js';
import type { VcpClipMethod } from '../../../../src/model/methods/vcp-clip/model.js';
import { tf } from '../../../../src/model/tf.js';
import type { Tensor1D, Tensor2D, Tensor3D, Tensor4D } from '../../../../src/model/tf.js';
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

/** Compares with a tolerance relative to the reference's scale (gradients span magnitudes). */
function closeScaled(actual: tf.Tensor, key: string, rel: number): void {
  const ref = fx!.golden.get(key)!;
  const scale = Math.max(...Array.from(ref.data, Math.abs), 1e-3);
  const err = maxAbsDiff(actual, ref);
  assert.ok(err <= rel * scale, `${key}: max |Δ| = ${err} > ${rel} × ${scale}`);
}

for (const backend of ['tensorflow', 'wasm', 'cpu'] as BackendName[]) {
  describe(`vcp-clip golden on ${backend}`, { skip: missing ?? false }, () => {
    let clip: ClipModel;
    let method: VcpClipMethod;
    const input = (key: string) => tensorOf(fx!.inputs.get(key)!);
    const gold = (key: string) => tensorOf(fx!.golden.get(key)!);
    const features = () => ({
      patchTokens: fx!.meta.layers.map((_, i) => input(`patch_tokens.${i}`) as Tensor3D),
      global: input('global') as Tensor2D,
    });

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

    test('Pre-VCP category vectors', () => {
      tf.tidy(() =>
        close(method.preVcp.categoryVectors(input('global') as Tensor2D), 'pre_vcp.category'),
      );
    });

    test('UTP + DTP text embeddings (truncated sequences vs the full-length reference)', () => {
      tf.tidy(() => {
        const category = gold('pre_vcp.category') as Tensor3D;
        close(method.prompts.encode(category, false), 'text.embeddings');
      });
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

    test('Post-VCP refined embeddings and attention maps, per layer', () => {
      tf.tidy(() => {
        const text = gold('text.embeddings') as Tensor3D;
        fx!.meta.layers.forEach((layer, i) => {
          const { embeddings, attention } = method.postVcp!.apply(
            text,
            l2Normalize(input(`patch_tokens.${i}`) as Tensor3D),
          );
          close(embeddings, `post_vcp.${layer}.embeddings`);
          close(attention, `post_vcp.${layer}.attention`);
        });
      });
    });

    test('baseline and VCP maps, per layer', () => {
      tf.tidy(() => {
        const text = gold('text.embeddings') as Tensor3D;
        const size = method.config.image_size;
        fx!.meta.layers.forEach((layer, i) => {
          const tokens = input(`patch_tokens.${i}`) as Tensor3D;
          close(method.base.map(i, tokens, text, size), `maps.base.${layer}`);
          const refined = gold(`post_vcp.${layer}.embeddings`) as Tensor3D;
          close(method.vcp!.map(l2Normalize(tokens), refined, size), `maps.vcp.${layer}`);
        });
      });
    });

    test('focal and dice losses on the reference maps', () => {
      tf.tidy(() => {
        const masks = input('masks') as Tensor3D;
        for (const branch of ['base', 'vcp']) {
          for (const layer of fx!.meta.layers) {
            const probs = gold(`maps.${branch}.${layer}`) as Tensor4D;
            const [b, s] = probs.shape;
            const focal = focalLoss(probs, masks).dataSync()[0];
            const dice = diceLoss(
              probs.slice([0, 0, 0, 1], [b, s, s, 1]).reshape([b, s, s]) as Tensor3D,
              masks,
            ).dataSync()[0];
            assert.ok(
              Math.abs(focal - fx!.meta.losses[`focal.${branch}.${layer}`]) < TOL,
              `focal.${branch}.${layer}: ${focal}`,
            );
            assert.ok(
              Math.abs(dice - fx!.meta.losses[`dice.${branch}.${layer}`]) < TOL,
              `dice.${branch}.${layer}: ${dice}`,
            );
          }
        }
      });
    });

    test('full forward: training loss, fused test map and top-k score', () => {
      tf.tidy(() => {
        const batch = features();
        const train = method.forward(batch, { training: true });
        assert.equal(train.anomalyMap, undefined);
        const loss = method
          .loss(train, input('masks') as Tensor3D, tf.tensor1d([1, 1]) as Tensor1D)
          .dataSync()[0];
        assert.ok(
          Math.abs(loss - fx!.meta.loss_total) < TOL,
          `loss ${loss} vs ${fx!.meta.loss_total}`,
        );
        const test = method.forward(batch, { training: false });
        close(test.anomalyMap!, 'eval.anomaly_map');
        close(test.score!, 'eval.score');
        fx!.meta.layers.forEach((layer) =>
          close(test.extras[`attention.${layer}`], `post_vcp.${layer}.attention`),
        );
      });
    });

    test('gradients of every learnable tensor, then one Adam step with the two lr groups', () => {
      const params = method.parameters();
      const batch = features();
      const masks = input('masks') as Tensor3D;
      const labels = tf.tensor1d([1, 1]) as Tensor1D;
      const lossFn = () => method.loss(method.forward(batch, { training: true }), masks, labels);
      const { value, grads } = tf.variableGrads(lossFn, [...params.values()]);
      for (const [name, v] of params) {
        // b_k and the Mini-Net bias shift values that a softmax / LayerNorm ignores: no gradient.
        const grad = grads[v.name] ?? tf.zerosLike(v);
        closeScaled(grad, `grad.${name}`, 2e-3);
      }
      tf.dispose([value, grads]);
      const optimizer = createOptimizer(method);
      const loss = optimizer.step(lossFn);
      assert.ok(Math.abs(loss - fx!.meta.loss_total) < TOL);
      for (const [name, v] of params) close(v, `adam.${name}`);
      optimizer.dispose();
      tf.dispose([...batch.patchTokens, batch.global, masks, labels]);
    });
  });
}
