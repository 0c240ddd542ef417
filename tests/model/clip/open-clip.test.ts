// The OpenCLIP ↔ Hugging Face name table, both ways, against files written by open_clip and
// transformers (python/golden/make_weight_formats.py), and the config conversion.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SafetensorsFile } from '../../../src/io/safetensors.js';
import { parseClipConfig } from '../../../src/model/clip/config.js';
import {
  openClipConfigToHf,
  openClipNameTable,
  toHf,
  toOpenClip,
  type TensorBytes,
} from '../../../src/model/clip/open-clip.js';
import { CLIP_PRESETS } from '../../../src/model/clip/presets.js';
import { expectedClipTensors } from '../../../src/model/clip/tensors.js';
import { TINY_FIXTURE } from './helpers.js';

const FIXTURES = fileURLToPath(new URL('../../fixtures/clip/', import.meta.url));
const tinyConfig = parseClipConfig(
  JSON.parse(readFileSync(join(TINY_FIXTURE, 'config.json'), 'utf8')),
  'tiny-clip/config.json',
);

async function tensors(file: string): Promise<Map<string, TensorBytes>> {
  const st = await SafetensorsFile.open(file);
  const out = new Map<string, TensorBytes>();
  for (const [name, entry] of Object.entries(st.entries))
    out.set(name, {
      dtype: entry.dtype as TensorBytes['dtype'],
      shape: entry.shape,
      bytes: await st.bytes(name),
    });
  return out;
}

const same = (a: TensorBytes, b: TensorBytes) =>
  a.dtype === b.dtype &&
  JSON.stringify(a.shape) === JSON.stringify(b.shape) &&
  Buffer.from(a.bytes).equals(Buffer.from(b.bytes));

test('the table is a bijection onto the tensors a CLIPModel has (tiny CLIP and ViT-L-14-336)', () => {
  for (const config of [tinyConfig, CLIP_PRESETS['ViT-L-14-336']]) {
    const rules = openClipNameTable(config.vision.layers, config.text.layers);
    const hf = rules.flatMap((r) => r.hf);
    assert.equal(new Set(hf).size, hf.length);
    assert.deepEqual([...hf].sort(), [...expectedClipTensors(config).keys()].sort());
    assert.equal(new Set(rules.map((r) => r.openClip)).size, rules.length);
  }
});

test("HF → OpenCLIP gives open_clip's own file bit for bit, and OpenCLIP → HF gives transformers' back", async () => {
  const hf = await tensors(join(TINY_FIXTURE, 'model.safetensors'));
  const openClip = await tensors(join(FIXTURES, 'formats/open_clip/open_clip_model.safetensors'));
  const rules = openClipNameTable(tinyConfig.vision.layers, tinyConfig.text.layers);
  assert.deepEqual([...openClip.keys()].sort(), rules.map((r) => r.openClip).sort());
  for (const rule of rules) {
    const built = toOpenClip(
      rule,
      rule.hf.map((name) => hf.get(name)!),
    );
    assert.ok(same(built, openClip.get(rule.openClip)!), `HF → OpenCLIP ${rule.openClip}`);
    toHf(rule, openClip.get(rule.openClip)!).forEach((part, i) =>
      assert.ok(same(part, hf.get(rule.hf[i])!), `OpenCLIP → HF ${rule.hf[i]}`),
    );
  }
});

test('transposes and q/k/v splits move bits of any width unchanged (F16, F64, BF16)', () => {
  const rules = openClipNameTable(1, 1);
  const qkv = rules.find((r) => r.kind === 'qkv' && r.openClip.endsWith('in_proj_weight'))!;
  const proj = rules.find((r) => r.kind === 'transpose')!;
  for (const [dtype, size] of [
    ['F16', 2],
    ['F64', 8],
    ['BF16', 2],
  ] as const) {
    const bytes = Uint8Array.from({ length: 6 * 2 * size }, (_, i) => (i * 37 + 11) & 0xff);
    const fused: TensorBytes = { dtype, shape: [6, 2], bytes };
    const parts = toHf(qkv, fused);
    assert.deepEqual(
      parts.map((p) => p.shape),
      [
        [2, 2],
        [2, 2],
        [2, 2],
      ],
    );
    assert.ok(same(toOpenClip(qkv, parts), fused), dtype);
    const t = toHf(proj, fused)[0];
    assert.deepEqual(t.shape, [2, 6]);
    // element (r, c) of the source is element (c, r) of the transpose
    assert.deepEqual(
      [...t.bytes.subarray((1 * 6 + 4) * size, (1 * 6 + 5) * size)],
      [...bytes.subarray((4 * 2 + 1) * size, (4 * 2 + 2) * size)],
    );
    assert.ok(same(toOpenClip(proj, [t]), fused), dtype);
  }
});

test('open_clip_config.json → config.json: the fixture gives the tiny CLIP, OpenAI ViT-L-14-336 gives our preset', () => {
  const fixture = JSON.parse(
    readFileSync(join(FIXTURES, 'formats/open_clip/open_clip_config.json'), 'utf8'),
  ) as unknown;
  assert.deepEqual(parseClipConfig(openClipConfigToHf(fixture, 'f'), 'f'), tinyConfig);
  // open_clip's model_configs/ViT-L-14-336.json, with the quick_gelu its OpenAI weights use.
  const vitL336 = {
    model_cfg: {
      embed_dim: 768,
      quick_gelu: true,
      vision_cfg: { image_size: 336, layers: 24, width: 1024, patch_size: 14 },
      text_cfg: { context_length: 77, vocab_size: 49408, width: 768, heads: 12, layers: 12 },
    },
  };
  const hf = openClipConfigToHf(vitL336, 'f', { bos: 49406, eos: 49407 });
  assert.deepEqual(parseClipConfig(hf, 'f'), CLIP_PRESETS['ViT-L-14-336']);
  assert.equal((hf.text_config as { eos_token_id: number }).eos_token_id, 49407);
});

test('settings our CLIP does not implement are refused by field', () => {
  const base = () =>
    JSON.parse(readFileSync(join(FIXTURES, 'formats/open_clip/open_clip_config.json'), 'utf8')) as {
      model_cfg: Record<string, unknown> & {
        vision_cfg: Record<string, unknown>;
        text_cfg: Record<string, unknown>;
      };
    };
  const cases: [(c: ReturnType<typeof base>) => void, RegExp][] = [
    [
      (c) => (c.model_cfg.vision_cfg.ls_init_value = 0.1),
      /f: model_cfg\.vision_cfg\.ls_init_value: got 0\.1, only null is supported/,
    ],
    [
      (c) => (c.model_cfg.vision_cfg.timm_model_name = 'convnext_base'),
      /model_cfg\.vision_cfg\.timm_model_name: got "convnext_base"/,
    ],
    [
      (c) => (c.model_cfg.text_cfg.hf_model_name = 'xlm-roberta'),
      /model_cfg\.text_cfg\.hf_model_name/,
    ],
    [
      (c) => (c.model_cfg.custom_text = true),
      /model_cfg\.custom_text: got true, a text tower of another layout/,
    ],
    [
      (c) => (c.model_cfg.init_logit_bias = -10),
      /init_logit_bias: got -10, a SigLIP-style logit bias/,
    ],
    [
      (c) => (c.model_cfg.vision_cfg.head_width = 5),
      /head_width: got 5, expected a divisor of the width 32/,
    ],
    [
      (c) => (c.model_cfg.vision_cfg.layers_mystery = 1),
      /model_cfg\.vision_cfg\.layers_mystery: got 1, an option this converter does not know/,
    ],
    [
      (c) => (c.model_cfg.vision_cfg.image_size = [32, 48]),
      /image_size: got \[32,48\], only square images/,
    ],
  ];
  for (const [edit, pattern] of cases) {
    const c = base();
    edit(c);
    assert.throws(() => openClipConfigToHf(c, 'f'), pattern);
  }
  assert.throws(
    () => openClipConfigToHf({ nope: 1 }, 'f'),
    /f: model_cfg: got undefined, expected an object/,
  );
});
