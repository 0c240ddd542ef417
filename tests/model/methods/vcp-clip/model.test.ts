/**
 * VCP-CLIP wiring: truncated vs full-length text sequences (every DTP variant, every backend),
 * the ablation switches, gradient flow (every learnable tensor, nothing of CLIP), the registry.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { initBackend, type BackendName } from '../../../../src/model/backend.js';
import type { ClipModel } from '../../../../src/model/clip/model.js';
import { createMethod, METHODS } from '../../../../src/model/methods/index.js';
import { tf } from '../../../../src/model/tf.js';
import type { Tensor2D, Tensor3D } from '../../../../src/model/tf.js';
import {
  buildClip,
  buildMethod,
  contextOf,
  type Fixture,
  fixtureMissing,
  loadFixture,
  maxAbsDiff,
  tensorOf,
} from './fixture.js';

const missing = fixtureMissing();
const fx: Fixture | null = missing ? null : await loadFixture();

/** Parameters whose value only shifts inputs of a softmax or LayerNorm: no gradient by construction. */
const SHIFT_ONLY = ['post_vcp.k_proj.bias', 'pre_vcp.mininet.bias'];

const features = () => ({
  patchTokens: fx!.meta.layers.map(
    (_, i) => tensorOf(fx!.inputs.get(`patch_tokens.${i}`)!) as Tensor3D,
  ),
  global: tensorOf(fx!.inputs.get('global')!) as Tensor2D,
});

for (const backend of ['tensorflow', 'wasm', 'cpu'] as BackendName[]) {
  describe(
    `truncated text sequences equal full-length ones on ${backend}`,
    { skip: missing ?? false },
    () => {
      let clip: ClipModel;
      before(async () => {
        await initBackend(backend);
        clip = buildClip(fx!);
      });
      after(() => clip.dispose());

      for (const variant of [
        { dtp_position: 'pre' },
        { dtp_position: 'post' },
        { dtp: false },
        { deep_prompt_len: 3, n_ctx: 4 },
      ] as const) {
        test(JSON.stringify(variant), () => {
          const short = buildMethod(fx!, clip, variant, { truncate: true });
          const full = buildMethod(fx!, clip, variant, { truncate: false });
          for (const [name, v] of short.parameters()) full.parameters().get(name)!.assign(v); // same values, loaded or not
          assert.ok(short.prompts.layout.length < full.prompts.layout.length);
          assert.equal(full.prompts.layout.length, 77);
          tf.tidy(() => {
            const global = tensorOf(fx!.inputs.get('global')!) as Tensor2D;
            const err = maxAbsDiff(
              short.textEmbeddings(global, false),
              full.textEmbeddings(global, false),
            );
            assert.ok(err < 1e-5, `max |Δ| = ${err}`);
          });
          short.dispose();
          full.dispose();
        });
      }
    },
  );
}

describe('VCP-CLIP model', { skip: missing ?? false }, () => {
  let clip: ClipModel;
  before(async () => {
    await initBackend('auto');
    clip = buildClip(fx!);
  });
  after(() => clip.dispose());

  test('gradients reach every learnable tensor and nothing of CLIP', () => {
    const method = buildMethod(fx!, clip, { dtp_dropout: 0.1 });
    const batch = features();
    const masks = tensorOf(fx!.inputs.get('masks')!) as Tensor3D;
    // No variable list: tfjs differentiates w.r.t. every trainable variable in existence.
    const { value, grads } = tf.variableGrads(() =>
      method.loss(method.forward(batch, { training: true }), masks, tf.tensor1d([1, 1])),
    );
    const byName = new Map([...method.parameters()].map(([name, v]) => [v.name, name]));
    const reached = Object.keys(grads).map(
      (key) => byName.get(key) ?? `not a VCP-CLIP parameter: ${key}`,
    );
    const learnable = [...method.parameters().keys()];
    assert.deepEqual(
      reached.filter((n) => !learnable.includes(n)),
      [],
      'only VCP-CLIP parameters get gradients',
    );
    for (const name of learnable) {
      const g = grads[method.parameters().get(name)!.name];
      const norm = g ? tf.norm(g).dataSync()[0] : 0;
      if (SHIFT_ONLY.includes(name))
        assert.ok(norm < 1e-6, `${name}: ‖grad‖ = ${norm}, expected 0 (shift invariance)`);
      else assert.ok(Number.isFinite(norm) && norm > 1e-9, `${name}: ‖grad‖ = ${norm}`);
    }
    const clipTensors = [
      clip.text.weights.tokenEmbedding,
      clip.text.weights.projection,
      clip.text.weights.positionEmbedding,
    ];
    for (const t of clipTensors)
      assert.ok(!(t instanceof tf.Variable), 'CLIP weights must be plain tensors');
    const ids = new Set([...method.parameters().values()].map((v) => v.id));
    for (const t of clipTensors) assert.ok(!ids.has(t.id));
    tf.dispose([value, grads, masks, batch.global, ...batch.patchTokens]);
    method.dispose();
  });

  test('optimizer groups: τ₁, τ₂ at lr_tau, everything else at lr, Adam (0.5, 0.999)', () => {
    const method = buildMethod(fx!, clip);
    const spec = method.optimizer();
    assert.deepEqual([spec.kind, spec.beta1, spec.beta2, spec.epsilon], ['adam', 0.5, 0.999, 1e-8]);
    const [prompts, temps] = spec.groups;
    assert.deepEqual(temps, {
      name: 'temperatures',
      lr: 0.01,
      params: ['maps.base.logit_scale', 'maps.vcp.logit_scale'],
    });
    assert.equal(prompts.lr, 4e-5);
    assert.equal(prompts.params.length + temps.params.length, method.parameters().size);
    method.dispose();
  });

  test('ablations: a disabled feature has no parameters and changes the outputs as specified', () => {
    const size = fx!.meta.config.image_size!;
    const run = (overrides: object) => {
      const method = buildMethod(fx!, clip, overrides, { load: false });
      const names = [...method.parameters().keys()];
      const shapes = tf.tidy(() => {
        const out = method.forward(features(), { training: false });
        return {
          text: out.extras.text.shape,
          branches: Object.keys(out.layerMaps).sort(),
          map: out.anomalyMap!.shape,
          score: out.score?.shape,
        };
      });
      method.dispose();
      return { names, ...shapes };
    };
    const full = run({});
    assert.deepEqual(full.text, [2, 2, 32]);
    assert.deepEqual(full.branches, ['base', 'vcp']);
    assert.deepEqual(full.map, [2, size, size]);
    assert.deepEqual(full.score, [2]);

    const noPre = run({ pre_vcp: false });
    assert.deepEqual(
      noPre.text,
      [1, 2, 32],
      'without Pre-VCP the text is encoded once for all images',
    );
    assert.ok(
      !noPre.names.some((n) => n.startsWith('pre_vcp.mininet')) &&
        noPre.names.includes('pre_vcp.q'),
    );

    const noPost = run({ post_vcp: false });
    assert.deepEqual(noPost.branches, ['base']);
    assert.ok(!noPost.names.some((n) => n.startsWith('post_vcp.') || n === 'maps.vcp.logit_scale'));

    const noDtp = run({ dtp: false });
    assert.ok(!noDtp.names.some((n) => n.startsWith('dtp.')));
    assert.equal(
      run({ image_score: 'max' }).score,
      undefined,
      "the 'max' rule leaves the score to the evaluator's smoothed map",
    );
  });

  test('a post-forward variant reads the base forward out exactly as its own forward does', () => {
    const method = buildMethod(fx!, clip);
    const settings = [
      { alpha: 0.3 },
      { alpha: 1, topk: 7 },
      { image_score: 'max', sigma: 2 },
      { alpha: 0, image_score: 'topk-mean', topk: 100000 },
    ];
    for (const setting of settings) {
      const variant = method.withPostForward(setting);
      assert.deepEqual(variant.config, { ...method.config, ...setting });
      assert.equal(variant.postprocess.smoothingSigma, variant.config.sigma);
      // Shares the trained Variables and the prompts: nothing is copied.
      for (const [name, v] of variant.parameters()) assert.equal(v, method.parameters().get(name));
      assert.equal(variant.prompts, method.prompts);
      tf.tidy(() => {
        const batch = features();
        const own = variant.forward(batch, { training: false });
        const shared = method.forward(batch, { training: false, skipReadout: true });
        assert.equal(shared.anomalyMap, undefined, 'skipReadout leaves the readout out');
        const read = variant.readout(shared);
        assert.equal(maxAbsDiff(own.anomalyMap!, read.anomalyMap), 0, JSON.stringify(setting));
        assert.equal(own.score === undefined, read.score === undefined);
        if (own.score) assert.equal(maxAbsDiff(own.score, read.score!), 0);
      });
      variant.dispose(); // frees nothing of the method's
    }
    tf.tidy(() => {
      const out = method.forward(features(), { training: false });
      assert.ok(Number.isFinite(out.anomalyMap!.sum().dataSync()[0]), 'the method still works');
    });
    const prompted = method.withPrompts([{ normal: 'a fine {cls}', abnormal: 'a broken {cls}' }]);
    const both = prompted.withPostForward({ alpha: 0.1 });
    assert.equal(both.prompts, prompted.prompts, 'a variant of a prompt view keeps its prompts');
    assert.throws(() => method.withPostForward({ heads: 2 }), /not a post-forward field/);
    method.dispose();
  });

  test('Pre-VCP makes the text depend on the image; without it all images share it', () => {
    tf.tidy(() => {
      const method = buildMethod(fx!, clip);
      const text = method.textEmbeddings(tensorOf(fx!.inputs.get('global')!) as Tensor2D, false); // [2, 2, D]
      const [a, b] = tf.unstack(text);
      assert.ok(maxAbsDiff(a, b) > 1e-3);
      method.dispose();
    });
  });

  test('the registry builds vcp-clip and names the known methods otherwise', async () => {
    assert.deepEqual(Object.keys(METHODS), ['vcp-clip', 'vip2-clip']);
    const method = await createMethod('vcp-clip', fx!.meta.config, contextOf(fx!, clip));
    assert.equal(method.name, 'vcp-clip');
    assert.deepEqual(method.features, { layers: [1, 2], imageSize: 24 });
    assert.deepEqual(method.postprocess, {
      smoothingSigma: 8,
      normalizeMaps: true,
      normalizeScores: true,
      score: 'method',
    });
    method.dispose();
    await assert.rejects(
      () => createMethod('vcp', {}, contextOf(fx!, clip)),
      /method: got "vcp", expected one of vcp-clip, vip2-clip/,
    );
    await assert.rejects(
      () =>
        createMethod(
          'vcp-clip',
          { ...fx!.meta.config, activation: 'quick_gelu' },
          contextOf(fx!, clip),
        ),
      /activation: got "quick_gelu", but the CLIP model was built with "gelu"/,
    );
  });
});
