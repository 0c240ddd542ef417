import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ConfigError,
  resolveVcpClipConfig,
  VCP_CLIP_DEFAULTS,
} from '../../../../src/model/methods/vcp-clip/config.js';
import type { VcpClipConfigInput } from '../../../../src/model/methods/vcp-clip/config.js';

test('defaults are the paper defaults and the result is frozen', () => {
  const c = resolveVcpClipConfig();
  assert.equal(c.activation, 'gelu');
  assert.equal(c.backbone, 'ViT-L-14-336');
  assert.equal(c.image_size, 518);
  assert.deepEqual(c.layers, [6, 12, 18, 24]);
  assert.deepEqual(c.templates, ['a photo of a {state} {cls}']);
  assert.deepEqual(c.state_words, [['good', 'damaged']]);
  assert.equal(c.n_ctx, 2);
  assert.equal(c.deep_prompt_len, 1);
  assert.equal(c.alpha, 0.75);
  assert.equal(c.heads, 8);
  assert.equal(c.attention_scaling, false);
  assert.deepEqual([c.lr, c.lr_tau, c.betas[0], c.betas[1], c.seed], [4e-5, 0.01, 0.5, 0.999, 333]);
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.layers) && Object.isFrozen(c.state_words[0]));
  assert.throws(() => ((c.layers as number[])[0] = 1));
});

test('overrides are kept; undefined fields take the default', () => {
  const c = resolveVcpClipConfig({
    alpha: 0.8,
    backbone: 'ViT-B-16',
    image_size: 224,
    layers: [3, 6, 9, 12],
    dtp_position: 'post',
    n_ctx: undefined,
  });
  assert.equal(c.alpha, 0.8);
  assert.deepEqual(c.layers, [3, 6, 9, 12]);
  assert.equal(c.dtp_position, 'post');
  assert.equal(c.n_ctx, VCP_CLIP_DEFAULTS.n_ctx);
});

const cases: [string, VcpClipConfigInput, RegExp][] = [
  ['n_ctx 0', { n_ctx: 0 }, /n_ctx: got 0, expected an integer in \[1, 64\]/],
  ['n_ctx 1.5', { n_ctx: 1.5 }, /n_ctx: got 1\.5 \(number\), expected an integer in \[1, 64\]/],
  [
    'layer beyond the backbone',
    { layers: [6, 25] },
    /layers: got layers \[6,25\], expected .*1\.\.24: ViT-L-14-336 has 24 vision blocks \(25 beyond it\)/,
  ],
  [
    'ViT-B-16 has 12 blocks',
    { backbone: 'ViT-B-16', image_size: 224 },
    /layers: got layers \[6,12,18,24\], expected .*1\.\.12/,
  ],
  ['0-based layer', { layers: [0, 6] }, /layers\[0\]: got 0, expected an integer in \[1, 128\]/],
  [
    'duplicate layers',
    { layers: [6, 6] },
    /layers: got \[6,6\] \(items 1 and 0 are equal\), expected a non-empty list of distinct items/,
  ],
  [
    'heads must divide the width',
    { heads: 7 },
    /heads: got heads 7, expected a divisor of the vision width 1024 of ViT-L-14-336/,
  ],
  [
    'unknown activation',
    { activation: 'relu' as never },
    /activation: got "relu", expected one of gelu, quick_gelu/,
  ],
  [
    'unknown backbone',
    { backbone: 'RN50' },
    /backbone: got "RN50", expected one of ViT-B-16, ViT-L-14, ViT-L-14-336/,
  ],
  [
    'template without {cls}',
    { templates: ['a photo of a {state} object'] },
    /templates\[0\]: got "a photo of a \{state\} object", expected a string with exactly one \{state\} and one \{cls\}/,
  ],
  [
    'empty templates',
    { templates: [] },
    /templates: got \[\] \(0 items\), expected a non-empty list/,
  ],
  [
    'state pair of one word',
    { state_words: [['good']] as never },
    /state_words\[0\]: got \["good"\] \(1 items\), expected a pair of non-empty words/,
  ],
  ['alpha above 1', { alpha: 1.5 }, /alpha: got 1\.5, expected a number in \[0, 1\]/],
  [
    'image size not a patch multiple',
    { image_size: 500 },
    /image_size: got image_size 500, expected a multiple of the patch size 14 of ViT-L-14-336 \(e\.g\. 490 or 504\)/,
  ],
  [
    'image score rule',
    { image_score: 'mean' as never },
    /image_score: got "mean", expected one of topk-mean, max/,
  ],
  ['negative lr', { lr: -1 }, /lr: got -1, expected a number in \(0, 10\]/],
  ['betas', { betas: [0.5, 1] }, /betas\[1\]: got 1, expected a number in \[0, 1\)/],
  ['dropout 1', { dtp_dropout: 1 }, /dtp_dropout: got 1, expected a number in \[0, 1\)/],
  [
    'boolean switch',
    { pre_vcp: 'yes' as never },
    /pre_vcp: got "yes" \(string\), expected true or false/,
  ],
  [
    'unknown field',
    { n_ctxx: 3 } as never,
    /n_ctxx: unknown key "n_ctxx"; did you mean "n_ctx"\? allowed: activation, backbone/,
  ],
];
for (const [name, input, message] of cases) {
  test(`rejects ${name}`, () => {
    assert.throws(
      () => resolveVcpClipConfig(input, { source: 'spec.yaml' }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.match(error.message, /^spec\.yaml: /);
        assert.match(error.message, message);
        return true;
      },
    );
  });
}

test('a given backbone shape overrides the table (e.g. a test model)', () => {
  const backbone = { visionLayers: 2, visionWidth: 16, patchSize: 8, textWidth: 32, embedDim: 32 };
  const c = resolveVcpClipConfig(
    { backbone: 'tiny', layers: [1, 2], image_size: 24, heads: 4 },
    { backbone },
  );
  assert.deepEqual(c.layers, [1, 2]);
  assert.throws(
    () =>
      resolveVcpClipConfig(
        { backbone: 'tiny', layers: [3], image_size: 24, heads: 4 },
        { backbone },
      ),
    /layers: got layers \[3\], expected 1-based vision blocks in 1\.\.2: the loaded CLIP has 2/,
  );
  assert.throws(
    () =>
      resolveVcpClipConfig(
        { backbone: 'tiny', layers: [1], image_size: 24, heads: 4 },
        { backbone: { ...backbone, embedDim: 24 } },
      ),
    /pre_vcp: got pre_vcp true, expected false for the loaded CLIP: Pre-VCP needs text width \(32\) = embed dim \(24\)/,
  );
});
