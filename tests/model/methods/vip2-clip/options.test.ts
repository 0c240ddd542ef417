/**
 * The paper's intent as options (the authors' code has only its quirks, so these are checked
 * against CLIP's own tensors rather than their code), and config refusals.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { initBackend } from '../../../../src/model/backend.js';
import type { ClipModel } from '../../../../src/model/clip/model.js';
import { disposeFeatures, FeatureExtractor } from '../../../../src/model/features.js';
import { l2Normalize } from '../../../../src/model/methods/vip2-clip/fgp.js';
import { tf } from '../../../../src/model/tf.js';
import type { Tensor2D, Tensor3D } from '../../../../src/model/tf.js';
import {
  buildClip,
  buildMethod,
  type Fixture,
  fixtureMissing,
  goldenFeatures,
  loadFixture,
  maxAbsDiff,
  tensorOf,
} from './fixture.js';

const missing = fixtureMissing();
const fx: Fixture | null = missing ? null : await loadFixture();

describe('vip2-clip options', { skip: missing ?? false }, () => {
  let clip: ClipModel;
  before(async () => {
    await initBackend('tensorflow');
    clip = buildClip(fx!);
  });
  after(() => clip.dispose());

  const stateRows = (word: 'damaged' | 'good') => {
    const method = buildMethod(fx!, clip, { normal_state_word: word });
    const e = method.config.n_ctx;
    const rows = tf.tidy(() => {
      const f = goldenFeatures(fx!);
      const prompts = method.ica.promptEmbeddings(method.ica.classVectors(l2Normalize(f.global))); // [2B, T, W]
      const b = f.global.shape[0];
      disposeFeatures(f);
      return [0, b].map((row) => prompts.slice([row, e + 1, 0], [1, 1, -1]).reshape([-1]));
    });
    method.dispose();
    return rows;
  };
  const embeddingOf = (word: string) =>
    tf.tidy(() =>
      clip.text.weights.tokenEmbedding
        .slice([fx!.tokenizer.pieceIds(word)[0], 0], [1, -1])
        .reshape([-1]),
    );

  test('normal_state_word: damaged (the code) puts "damaged" in both prompts; good (the paper) in the normal one', () => {
    const [damaged, good] = [embeddingOf('damaged'), embeddingOf('good')];
    const [quirkNormal, quirkAbnormal] = stateRows('damaged');
    assert.equal(maxAbsDiff(quirkNormal, damaged), 0);
    assert.equal(maxAbsDiff(quirkAbnormal, damaged), 0);
    const [paperNormal, paperAbnormal] = stateRows('good');
    assert.equal(maxAbsDiff(paperNormal, good), 0);
    assert.equal(maxAbsDiff(paperAbnormal, damaged), 0);
    tf.dispose([damaged, good, quirkNormal, quirkAbnormal, paperNormal, paperAbnormal]);
  });

  test('global_ln_post: true asks for CLIP’s image embedding, ln_post(class token) · projection', async () => {
    const method = buildMethod(fx!, clip, { global_ln_post: true });
    assert.equal(method.features.global, 'ln_post');
    const pixels = fx!.golden.get('input.pixels')!;
    const [b, , s] = pixels.shape;
    const extractor = new FeatureExtractor({ clip, weightsHash: 'h', request: method.features });
    const f = await extractor.extract(
      Array.from({ length: b }, (_, i) => ({
        pixels: pixels.data.slice(i * 3 * s * s, (i + 1) * 3 * s * s) as Float32Array,
        cacheable: false,
      })),
    );
    // The authors' dense features of the last block (2) hold ln_post(class token) · proj at row 0.
    const expected = tf.tidy(() => {
      const last = tensorOf(fx!.golden.get('clip.patch.2')!) as Tensor3D;
      return last.slice([0, 0, 0], [b, 1, -1]).reshape([b, -1]) as Tensor2D;
    });
    assert.ok(maxAbsDiff(f.global, expected) <= 1e-4);
    assert.ok(
      maxAbsDiff(f.global, tensorOf(fx!.golden.get('clip.global')!)) > 1e-2,
      'differs from the quirk',
    );
    disposeFeatures(f);
    expected.dispose();
    method.dispose();
  });

  test('bad configs are refused naming the field', () => {
    const bad = (overrides: Record<string, unknown>, pattern: RegExp) =>
      assert.throws(() => buildMethod(fx!, clip, overrides as never, null), pattern);
    bad(
      { normal_state_word: 'fine' },
      /normal_state_word: got "fine", expected one of damaged, good/,
    );
    bad({ layers: [1, 5] }, /layers: got layers \[1,5\], expected 1-based vision blocks in 1\.\.2/);
    bad({ heads: 5 }, /heads: got heads 5, expected a divisor of the joint embedding width 32/);
    bad({ topk: 0 }, /topk: got 0, expected an integer ≥ 1/);
    bad({ alpha: 0.5 }, /alpha: unknown key "alpha"; allowed: activation, pos_embed_resize/);
    bad(
      { activation: 'gelu' },
      /activation: got "gelu", but the CLIP model was built with "quick_gelu"/,
    );
    bad(
      { pos_embed_resize: 'bicubic' },
      /pos_embed_resize: got "bicubic", but the CLIP model was built with "bilinear"/,
    );
  });
});
