/**
 * Test-time prompts (paper Table 9): explicit prompt pairs through `withPrompts`, a view that
 * shares the trained Variables. Equivalent wordings give the training embeddings exactly, other
 * wordings change embeddings and maps but never the parameters, ensembles are the normalised
 * mean of normalised members, and bad pairs are rejected with the field and prompt named.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { UserError } from '../../../../src/errors.js';
import { initBackend, type BackendName } from '../../../../src/model/backend.js';
import type { ClipModel } from '../../../../src/model/clip/model.js';
import { withEvalPrompts } from '../../../../src/model/infer.js';
import type { PromptPair, ZeroShotMethod } from '../../../../src/model/methods/method.js';
import type { VcpClipMethod } from '../../../../src/model/methods/vcp-clip/model.js';
import {
  resolvePromptPairs,
  templatePairs,
} from '../../../../src/model/methods/vcp-clip/prompts.js';
import { tf } from '../../../../src/model/tf.js';
import type { Tensor, Tensor2D, Tensor3D } from '../../../../src/model/tf.js';
import {
  buildClip,
  buildMethod,
  type Fixture,
  fixtureMissing,
  loadFixture,
  maxAbsDiff,
  tensorOf,
} from './fixture.js';

const missing = fixtureMissing();
const fx: Fixture | null = missing ? null : await loadFixture();

const GOOD_DAMAGED: PromptPair = {
  normal: 'a photo of a good {cls}',
  abnormal: 'a photo of a damaged {cls}',
};
const OTHER: PromptPair = {
  normal: 'There is not a damaged {cls} in the photo',
  abnormal: 'There is a damaged {cls} in the photo',
};
const SINGLE_TEMPLATE = {
  templates: ['a photo of a {state} {cls}'],
  state_words: [['good', 'damaged']] as [string, string][],
};

const features = () => ({
  patchTokens: fx!.meta.layers.map(
    (_, i) => tensorOf(fx!.inputs.get(`patch_tokens.${i}`)!) as Tensor3D,
  ),
  global: tensorOf(fx!.inputs.get('global')!) as Tensor2D,
});

/** Text embeddings [B, 2, D] and the fused test-time map [B, S, S] of the fixture batch. */
function outputs(method: VcpClipMethod): { text: Tensor3D; map: Tensor3D } {
  return tf.tidy(() => {
    const out = method.forward(features(), { training: false });
    return { text: out.extras.text as Tensor3D, map: out.anomalyMap! };
  });
}

function snapshot(method: ZeroShotMethod): Map<string, Float32Array> {
  return new Map(
    [...method.parameters()].map(([name, v]) => [name, Float32Array.from(v.dataSync())]),
  );
}

function dispose(...tensors: Record<string, Tensor>[]): void {
  for (const t of tensors) tf.dispose(Object.values(t));
}

for (const backend of ['tensorflow', 'wasm', 'cpu'] as BackendName[]) {
  describe(`test-time prompts on ${backend}`, { skip: missing ?? false }, () => {
    let clip: ClipModel;
    before(async () => {
      await initBackend(backend);
      clip = buildClip(fx!);
    });
    after(() => clip.dispose());

    test('the pair "a photo of a good/damaged {cls}" gives exactly the template × state-word embeddings', () => {
      const method = buildMethod(fx!, clip, SINGLE_TEMPLATE);
      const view = method.withPrompts([GOOD_DAMAGED]);
      const trained = outputs(method);
      const viewed = outputs(view);
      assert.equal(maxAbsDiff(viewed.text, trained.text), 0);
      assert.equal(maxAbsDiff(viewed.map, trained.map), 0);
      dispose(trained, viewed);
      method.dispose();
    });

    test('the fixture ensemble (2 templates × 2 state pairs) as explicit pairs is the training ensemble', () => {
      const method = buildMethod(fx!, clip);
      const pairs = templatePairs(fx!.meta.config.templates!, fx!.meta.config.state_words!);
      assert.deepEqual(pairs[1], {
        normal: 'a photo of a flawless {cls}',
        abnormal: 'a photo of a broken {cls}',
      });
      const view = method.withPrompts(pairs);
      const trained = outputs(method);
      const viewed = outputs(view);
      assert.equal(maxAbsDiff(viewed.text, trained.text), 0);
      dispose(trained, viewed);
      method.dispose();
    });

    test('another pair changes embeddings and maps, never the parameters', () => {
      const method = buildMethod(fx!, clip, SINGLE_TEMPLATE);
      const before = snapshot(method);
      const view = method.withPrompts([OTHER]);
      assert.deepEqual(view.promptPairs, [OTHER]);
      for (const [name, v] of view.parameters())
        assert.equal(v, method.parameters().get(name), `${name}: the view must share the Variable`);
      const trained = outputs(method);
      const viewed = outputs(view);
      assert.ok(maxAbsDiff(viewed.text, trained.text) > 1e-3, 'text embeddings unchanged');
      assert.ok(maxAbsDiff(viewed.map, trained.map) > 1e-6, 'anomaly maps unchanged');
      dispose(viewed);
      view.dispose();
      for (const [name, v] of method.parameters()) {
        assert.ok(!v.isDisposed, `${name} disposed with the view`);
        assert.deepEqual(Float32Array.from(v.dataSync()), before.get(name), `${name} changed`);
      }
      const again = outputs(method); // the method still runs after its view is gone
      assert.equal(maxAbsDiff(again.text, trained.text), 0);
      dispose(trained, again);
      method.dispose();
    });

    test('an ensemble of two pairs is the normalised mean of the two normalised single-pair embeddings', () => {
      const method = buildMethod(fx!, clip, SINGLE_TEMPLATE);
      const [both, first, second] = [[GOOD_DAMAGED, OTHER], [GOOD_DAMAGED], [OTHER]].map((pairs) =>
        method.withPrompts(pairs),
      );
      const global = tensorOf(fx!.inputs.get('global')!) as Tensor2D;
      tf.tidy(() => {
        const e1 = first.textEmbeddings(global, false); // [B, 2, D], unit rows
        const e2 = second.textEmbeddings(global, false);
        const mean = e1.add(e2).div(2);
        const expected = mean.div(tf.norm(mean, 'euclidean', -1, true)) as Tensor3D;
        const err = maxAbsDiff(both.textEmbeddings(global, false), expected);
        assert.ok(err < 1e-6, `max |Δ| = ${err}`);
        assert.ok(maxAbsDiff(e1, e2) > 1e-3);
      });
      global.dispose();
      method.dispose();
    });
  });
}

describe('test-time prompt validation and lifetime', { skip: missing ?? false }, () => {
  let clip: ClipModel;
  before(async () => {
    await initBackend('tensorflow');
    clip = buildClip(fx!);
  });
  after(() => clip.dispose());

  const rejects = (input: unknown, pattern: RegExp) =>
    assert.throws(
      () => resolvePromptPairs(input, 'eval.prompts'),
      (e: unknown) => e instanceof UserError && pattern.test(e.message),
      `${JSON.stringify(input)}`,
    );

  test('bad pairs name the field and the prompt', () => {
    rejects([], /eval\.prompts: got \[\], expected a non-empty list/);
    rejects('a photo of a {cls}', /eval\.prompts: got "a photo of a \{cls\}"/);
    rejects(
      [GOOD_DAMAGED, { normal: 'a {cls}', abnormal: 'a damaged {cls} or {cls}' }],
      /eval\.prompts\[1\]\.abnormal: got "a damaged \{cls\} or \{cls\}", expected a sentence with exactly one \{cls\} slot/,
    );
    rejects(
      [{ normal: 'a good photo', abnormal: 'a damaged {cls}' }],
      /eval\.prompts\[0\]\.normal: got "a good photo"/,
    );
    rejects(
      [{ normal: 'a {state} {cls}', abnormal: 'a damaged {cls}' }],
      /eval\.prompts\[0\]\.normal: .*no \{state\} slot/,
    );
    rejects([{ normal: 'a {cls}' }], /eval\.prompts\[0\]\.abnormal: got nothing/);
    rejects(
      [{ normal: 'a {cls}', abnormal: 'a {cls}', state: 'x' }],
      /eval\.prompts\[0\]: got .*expected an object with the keys normal and abnormal/,
    );
    rejects(
      [['a {cls}', 'a damaged {cls}']],
      /eval\.prompts\[0\]: got \["a \{cls\}","a damaged \{cls\}"\]/,
    );
    assert.deepEqual(resolvePromptPairs([GOOD_DAMAGED]), [GOOD_DAMAGED]);
  });

  test('withPrompts and withEvalPrompts reject bad pairs before building anything; a prompt too long for the context names it', () => {
    const method = buildMethod(fx!, clip, SINGLE_TEMPLATE);
    const tensors = tf.memory().numTensors;
    assert.throws(
      () => withEvalPrompts(method, [{ normal: 'good', abnormal: 'a damaged {cls}' }]),
      /eval\.prompts\[0\]\.normal: got "good"/,
    );
    // 9 + n tokens: n = 80 overflows the context; n = 68 fills it exactly, leaving no room for the deep prompt
    for (const [repeat, what] of [
      [80, /needs 89 tokens/],
      [68, /needs 78 positions/],
    ] as const) {
      const long = `a photo of a damaged {cls} with ${'a '.repeat(repeat - 1)}`;
      assert.throws(
        () =>
          method.withPrompts([GOOD_DAMAGED, { normal: 'a {cls}', abnormal: long }], 'eval.prompts'),
        (e: unknown) =>
          e instanceof UserError &&
          e.message.startsWith(
            'vcp-clip test-time prompts: eval.prompts: "a photo of a damaged {cls} with',
          ) &&
          what.test(e.message),
      );
    }
    assert.equal(tf.memory().numTensors, tensors, 'a rejected view leaks no tensors');
    method.dispose();
  });

  test('withEvalPrompts: null keeps the method; a method without text prompts is a UserError', () => {
    const method = buildMethod(fx!, clip, SINGLE_TEMPLATE);
    assert.equal(withEvalPrompts(method, null), method);
    const view = withEvalPrompts(method, [OTHER]) as VcpClipMethod;
    assert.notEqual(view, method);
    assert.deepEqual(view.promptPairs, [OTHER]);
    const promptless: ZeroShotMethod = {
      ...method,
      name: method.name,
      withPrompts: undefined,
    } as unknown as ZeroShotMethod;
    assert.throws(
      () => withEvalPrompts(promptless, [OTHER]),
      (e: unknown) =>
        e instanceof UserError &&
        /eval\.prompts: method vcp-clip has no text prompts/.test(e.message),
    );
    method.dispose();
  });

  test('disposing the method frees its views; views of views share the same Variables', () => {
    const tensors = tf.memory().numTensors;
    const method = buildMethod(fx!, clip, SINGLE_TEMPLATE, { load: false }); // loading leaves the fixture's source tensors
    const view = method.withPrompts([OTHER]);
    const nested = view.withPrompts([GOOD_DAMAGED, OTHER]);
    for (const [name, v] of nested.parameters())
      assert.equal(v, method.parameters().get(name), name);
    method.dispose();
    view.dispose(); // after the owner: a no-op, not an error
    assert.equal(
      tf.memory().numTensors,
      tensors,
      'every tensor of the method and its views is freed',
    );
  });
});
