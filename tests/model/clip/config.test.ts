// config.json parsing (fields, defaults, errors naming file and field), presets, options.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { UserError } from '../../../src/errors.js';
import { gridSize, parseClipConfig, resolveClipOptions } from '../../../src/model/clip/config.js';
import { CLIP_PRESET_NAMES, clipPreset } from '../../../src/model/clip/presets.js';

const FILE = 'assets/clip/tiny-clip/config.json';
const json = JSON.parse(readFileSync(FILE, 'utf8')) as Record<string, Record<string, unknown>>;

function withField(section: string, field: string, value: unknown): unknown {
  const copy = structuredClone(json);
  if (value === undefined) delete copy[section][field];
  else copy[section][field] = value;
  return copy;
}

test('reads the tiny checkpoint config', () => {
  const config = parseClipConfig(json, FILE);
  assert.deepEqual(config.vision, {
    imageSize: 32,
    patchSize: 8,
    width: 32,
    layers: 3,
    heads: 4,
    mlpDim: 64,
    activation: 'quick_gelu',
    layerNormEps: 1e-5,
  });
  assert.equal(config.text.vocabSize, 764);
  assert.equal(config.text.contextLength, 77);
  assert.equal(config.projectionDim, 24);
  assert.ok(Object.isFrozen(config) && Object.isFrozen(config.vision));
});

test('a field older configs omit takes the transformers default', () => {
  const config = parseClipConfig(withField('text_config', 'layer_norm_eps', undefined), FILE);
  assert.equal(config.text.layerNormEps, 1e-5);
});

test('invalid fields are user errors naming the file and the field', () => {
  const cases: [unknown, RegExp][] = [
    [
      withField('vision_config', 'hidden_size', '1024'),
      /config\.json: vision_config\.hidden_size: got "1024", expected a positive integer/,
    ],
    [
      withField('vision_config', 'hidden_act', 'relu'),
      /vision_config\.hidden_act: got "relu", expected one of gelu, quick_gelu/,
    ],
    [
      withField('vision_config', 'image_size', 30),
      /vision_config\.image_size: got 30, expected a multiple of vision_config\.patch_size \(8\)/,
    ],
    [
      withField('text_config', 'num_attention_heads', 5),
      /text_config\.hidden_size: got 32, expected a multiple of text_config\.num_attention_heads \(5\)/,
    ],
    [
      { ...json, vision_config: undefined },
      /config\.json: vision_config: missing or not an object/,
    ],
    [{ ...json, projection_dim: -1 }, /config\.json: projection_dim: got -1/],
  ];
  for (const [input, message] of cases) {
    assert.throws(
      () => parseClipConfig(input, FILE),
      (error: unknown) => error instanceof UserError && message.test(error.message),
    );
  }
});

test('presets have the paper shapes', () => {
  assert.deepEqual([...CLIP_PRESET_NAMES], ['ViT-B-16', 'ViT-L-14', 'ViT-L-14-336']);
  const l336 = clipPreset('ViT-L-14-336');
  assert.equal(gridSize(l336.vision, 518), 37);
  assert.equal(gridSize(l336.vision, l336.vision.imageSize), 24);
  assert.deepEqual(
    [
      l336.vision.width,
      l336.vision.layers,
      l336.vision.heads,
      l336.text.width,
      l336.text.layers,
      l336.projectionDim,
    ],
    [1024, 24, 16, 768, 12, 768],
  );
  assert.equal(clipPreset('ViT-B-16').text.width, 512);
  assert.throws(
    () => clipPreset('ViT-H-14'),
    /unknown CLIP architecture "ViT-H-14"; known: ViT-B-16, ViT-L-14, ViT-L-14-336/,
  );
  assert.throws(
    () => gridSize(l336.vision, 500),
    /expected a positive multiple of the patch size 14/,
  );
});

test('options default to the checkpoint activation, bicubic and raw tokens; bad values are listed', () => {
  const config = parseClipConfig(json, FILE);
  assert.deepEqual(resolveClipOptions({}, config), {
    activation: 'quick_gelu',
    posEmbedResize: 'bicubic',
    intermediateTokens: 'raw',
  });
  assert.equal(resolveClipOptions({ activation: 'gelu' }, config).activation, 'gelu');
  assert.throws(
    () => resolveClipOptions({ posEmbedResize: 'nearest' as never }, config),
    /posEmbedResize: got "nearest", accepted: bicubic_antialias, bicubic, bilinear/,
  );
});
