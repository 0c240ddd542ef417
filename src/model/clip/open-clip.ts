/**
 * OpenCLIP / timm `*.openai` repositories (open_clip_config.json + open_clip_model.safetensors or
 * open_clip_pytorch_model.bin) carry OpenAI's own parameter names — the ones the public VCP-CLIP
 * code loads. This module maps them to the Hugging Face CLIPModel names our CLIP reads, both
 * ways, through one table: a fused attention in_proj becomes q/k/v projections, the [width, embed]
 * projection matrices are transposed, everything else is renamed. The bytes move unchanged
 * (any dtype), so a conversion is bit-exact. open_clip_config.json becomes a config.json.
 */
import { UserError } from '../../errors.js';
import {
  DTYPE_BYTES,
  writeSafetensorsRaw,
  type RawDtype,
  type RawTensorSource,
} from '../../io/safetensors.js';
import type { ClipConfig } from './config.js';
import { clipTensorProblems, expectedClipTensors, summariseProblems } from './tensors.js';
import type { TensorSource } from './tensor-source.js';

export const OPEN_CLIP_CONFIG = 'open_clip_config.json';
export const OPEN_CLIP_WEIGHTS = ['open_clip_model.safetensors', 'open_clip_pytorch_model.bin'];

/**
 * One row of the table: an OpenCLIP tensor and the HF tensor(s) it is. `transpose`: 2-D,
 * transposed; `qkv`: rows split in three equal parts (q, k, v).
 */
export interface NameRule {
  openClip: string;
  hf: string[];
  kind: 'same' | 'transpose' | 'qkv';
}

function blockRules(openClip: string, hf: string): NameRule[] {
  const same = (o: string, h: string): NameRule => ({
    openClip: `${openClip}.${o}`,
    hf: [`${hf}.${h}`],
    kind: 'same',
  });
  const qkv = (part: 'weight' | 'bias'): NameRule => ({
    openClip: `${openClip}.attn.in_proj_${part}`,
    hf: ['q_proj', 'k_proj', 'v_proj'].map((p) => `${hf}.self_attn.${p}.${part}`),
    kind: 'qkv',
  });
  return [
    qkv('weight'),
    qkv('bias'),
    ...['weight', 'bias'].flatMap((p) => [
      same(`attn.out_proj.${p}`, `self_attn.out_proj.${p}`),
      same(`ln_1.${p}`, `layer_norm1.${p}`),
      same(`ln_2.${p}`, `layer_norm2.${p}`),
      same(`mlp.c_fc.${p}`, `mlp.fc1.${p}`),
      same(`mlp.c_proj.${p}`, `mlp.fc2.${p}`),
    ]),
  ];
}

/** The whole table for a CLIP with these tower depths. */
export function openClipNameTable(visionLayers: number, textLayers: number): NameRule[] {
  const same = (openClip: string, hf: string): NameRule => ({ openClip, hf: [hf], kind: 'same' });
  const norm = (openClip: string, hf: string) => [
    same(`${openClip}.weight`, `${hf}.weight`),
    same(`${openClip}.bias`, `${hf}.bias`),
  ];
  return [
    same('visual.class_embedding', 'vision_model.embeddings.class_embedding'),
    same('visual.positional_embedding', 'vision_model.embeddings.position_embedding.weight'),
    same('visual.conv1.weight', 'vision_model.embeddings.patch_embedding.weight'),
    ...norm('visual.ln_pre', 'vision_model.pre_layrnorm'),
    ...Array.from({ length: visionLayers }, (_, i) =>
      blockRules(`visual.transformer.resblocks.${i}`, `vision_model.encoder.layers.${i}`),
    ).flat(),
    ...norm('visual.ln_post', 'vision_model.post_layernorm'),
    { openClip: 'visual.proj', hf: ['visual_projection.weight'], kind: 'transpose' },
    same('token_embedding.weight', 'text_model.embeddings.token_embedding.weight'),
    same('positional_embedding', 'text_model.embeddings.position_embedding.weight'),
    ...Array.from({ length: textLayers }, (_, i) =>
      blockRules(`transformer.resblocks.${i}`, `text_model.encoder.layers.${i}`),
    ).flat(),
    ...norm('ln_final', 'text_model.final_layer_norm'),
    { openClip: 'text_projection', hf: ['text_projection.weight'], kind: 'transpose' },
    same('logit_scale', 'logit_scale'),
  ];
}

export interface TensorBytes {
  dtype: RawDtype;
  shape: number[];
  bytes: Uint8Array;
}

function transpose2d(t: TensorBytes): TensorBytes {
  const [rows, cols] = t.shape;
  const size = DTYPE_BYTES[t.dtype];
  const out = new Uint8Array(t.bytes.length);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++)
      out.set(
        t.bytes.subarray((r * cols + c) * size, (r * cols + c + 1) * size),
        (c * rows + r) * size,
      );
  return { dtype: t.dtype, shape: [cols, rows], bytes: out };
}

/** The HF shapes a rule produces from an OpenCLIP shape (undefined: the shape does not fit the rule). */
export function hfShapes(rule: NameRule, shape: readonly number[]): number[][] | undefined {
  if (rule.kind === 'same') return [[...shape]];
  if (rule.kind === 'transpose') return shape.length === 2 ? [[shape[1], shape[0]]] : undefined;
  if (shape.length < 1 || shape[0] % 3 !== 0) return undefined;
  const part = [shape[0] / 3, ...shape.slice(1)];
  return [part, part, part];
}

/** OpenCLIP tensor → its HF tensor(s). */
export function toHf(rule: NameRule, t: TensorBytes): TensorBytes[] {
  if (rule.kind === 'same') return [t];
  if (rule.kind === 'transpose') return [transpose2d(t)];
  const third = t.bytes.length / 3;
  const shape = hfShapes(rule, t.shape)![0];
  return [0, 1, 2].map((i) => ({
    dtype: t.dtype,
    shape,
    bytes: t.bytes.slice(i * third, (i + 1) * third),
  }));
}

/** HF tensor(s) → the OpenCLIP tensor. */
export function toOpenClip(rule: NameRule, parts: TensorBytes[]): TensorBytes {
  if (rule.kind === 'same') return parts[0];
  if (rule.kind === 'transpose') return transpose2d(parts[0]);
  const bytes = new Uint8Array(parts.reduce((n, p) => n + p.bytes.length, 0));
  let at = 0;
  for (const p of parts) {
    bytes.set(p.bytes, at);
    at += p.bytes.length;
  }
  return {
    dtype: parts[0].dtype,
    shape: [parts[0].shape[0] * 3, ...parts[0].shape.slice(1)],
    bytes,
  };
}

type Json = Record<string, unknown>;

/** open_clip's defaults for the fields that change the architecture (open_clip/model.py). */
const VISION_DEFAULTS: Json = {
  head_width: 64,
  mlp_ratio: 4.0,
  ls_init_value: null,
  attentional_pool: false,
  no_ln_pre: false,
  pos_embed_type: 'learnable',
  final_ln_after_pool: false,
  pool_type: 'tok',
  input_patchnorm: false,
  global_average_pool: false,
  proj_bias: false,
  timm_model_name: null,
  act_kwargs: null,
  norm_kwargs: null,
};
const TEXT_DEFAULTS: Json = {
  context_length: 77,
  vocab_size: 49408,
  width: 512,
  heads: 8,
  layers: 12,
  mlp_ratio: 4.0,
  ls_init_value: null,
  hf_model_name: null,
  no_causal_mask: false,
  proj_type: 'linear',
  proj_bias: false,
  pool_type: 'argmax',
  embed_cls: false,
  act_kwargs: null,
  norm_kwargs: null,
};
/** Fields that do not change the weights' meaning at inference. */
const IGNORED = new Set([
  'patch_dropout',
  'output_tokens',
  'output_dim',
  'hf_tokenizer_name',
  'tokenizer_kwargs',
  'pad_id',
  'cast_dtype',
]);

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * open_clip_config.json → a Hugging Face CLIP config.json, refusing (by field) every setting our
 * CLIP does not implement. `specialTokens` (from the tokenizer) fills bos/eos/pad ids.
 */
export function openClipConfigToHf(
  raw: unknown,
  file: string,
  specialTokens: { bos?: number; eos?: number } = {},
): Record<string, unknown> {
  const fail = (field: string, got: unknown, expected: string): never => {
    throw new UserError(`${file}: ${field}: got ${JSON.stringify(got)}, ${expected}`, {
      hint: 'only plain ViT CLIPs (OpenAI ViT-B-16, ViT-L-14, ViT-L-14-336 and their layout) convert to our CLIP',
    });
  };
  if (!isObject(raw) || !isObject(raw.model_cfg))
    fail(
      'model_cfg',
      isObject(raw) ? raw.model_cfg : raw,
      'expected an object (an OpenCLIP open_clip_config.json)',
    );
  const model = (raw as Json).model_cfg as Json;
  if (model.custom_text)
    fail(
      'model_cfg.custom_text',
      model.custom_text,
      'a text tower of another layout is not supported',
    );
  if (model.init_logit_bias !== undefined && model.init_logit_bias !== null)
    fail(
      'model_cfg.init_logit_bias',
      model.init_logit_bias,
      'a SigLIP-style logit bias is not supported',
    );
  const section = (name: 'vision_cfg' | 'text_cfg', defaults: Json): Json => {
    const value = model[name];
    if (!isObject(value)) fail(`model_cfg.${name}`, value, 'expected an object');
    const cfg = value as Json;
    for (const [key, dflt] of Object.entries(defaults)) {
      if (
        [
          'context_length',
          'vocab_size',
          'width',
          'heads',
          'layers',
          'head_width',
          'mlp_ratio',
        ].includes(key)
      )
        continue;
      if (cfg[key] !== undefined && JSON.stringify(cfg[key]) !== JSON.stringify(dflt))
        fail(`model_cfg.${name}.${key}`, cfg[key], `only ${JSON.stringify(dflt)} is supported`);
    }
    for (const key of Object.keys(cfg))
      if (
        !(key in defaults) &&
        !IGNORED.has(key) &&
        !['image_size', 'layers', 'width', 'patch_size'].includes(key)
      )
        fail(`model_cfg.${name}.${key}`, cfg[key], 'an option this converter does not know');
    return { ...defaults, ...cfg };
  };
  const v = section('vision_cfg', VISION_DEFAULTS);
  const t = section('text_cfg', TEXT_DEFAULTS);
  const int = (path: string, value: unknown): number =>
    Number.isInteger(value) && (value as number) > 0
      ? (value as number)
      : fail(path, value, 'expected a positive integer');
  const size = Array.isArray(v.image_size)
    ? v.image_size[0] === v.image_size[1]
      ? v.image_size[0]
      : fail('model_cfg.vision_cfg.image_size', v.image_size, 'only square images are supported')
    : v.image_size;
  const width = int('model_cfg.vision_cfg.width', v.width);
  const headWidth = int('model_cfg.vision_cfg.head_width', v.head_width);
  if (width % headWidth !== 0)
    fail('model_cfg.vision_cfg.head_width', headWidth, `expected a divisor of the width ${width}`);
  const mlp = (path: string, w: number, ratio: unknown) =>
    typeof ratio === 'number' && Number.isInteger(w * ratio) && ratio > 0
      ? w * ratio
      : fail(path, ratio, 'expected a ratio giving a whole MLP width');
  const textWidth = int('model_cfg.text_cfg.width', t.width);
  const act = model.quick_gelu === true ? 'quick_gelu' : 'gelu';
  const embed = int('model_cfg.embed_dim', model.embed_dim);
  const vocab = int('model_cfg.text_cfg.vocab_size', t.vocab_size);
  return {
    architectures: ['CLIPModel'],
    model_type: 'clip',
    projection_dim: embed,
    logit_scale_init_value: 2.6592,
    text_config: {
      hidden_size: textWidth,
      intermediate_size: mlp('model_cfg.text_cfg.mlp_ratio', textWidth, t.mlp_ratio),
      num_attention_heads: int('model_cfg.text_cfg.heads', t.heads),
      num_hidden_layers: int('model_cfg.text_cfg.layers', t.layers),
      max_position_embeddings: int('model_cfg.text_cfg.context_length', t.context_length),
      vocab_size: vocab,
      hidden_act: act,
      layer_norm_eps: 1e-5,
      projection_dim: embed,
      bos_token_id: specialTokens.bos ?? vocab - 2,
      eos_token_id: specialTokens.eos ?? vocab - 1,
      pad_token_id: specialTokens.eos ?? vocab - 1,
    },
    vision_config: {
      hidden_size: width,
      intermediate_size: mlp('model_cfg.vision_cfg.mlp_ratio', width, v.mlp_ratio),
      num_attention_heads: width / headWidth,
      num_hidden_layers: int('model_cfg.vision_cfg.layers', v.layers),
      image_size: int('model_cfg.vision_cfg.image_size', size),
      patch_size: int('model_cfg.vision_cfg.patch_size', v.patch_size),
      hidden_act: act,
      layer_norm_eps: 1e-5,
      num_channels: 3,
      projection_dim: embed,
    },
    vcp_exp_converted_from: OPEN_CLIP_CONFIG,
  };
}

/**
 * Writes the HF-named model.safetensors of an OpenCLIP weights file: every table row checked
 * (present, shape fits) first, then one HF tensor at a time (a q/k/v split reads its in_proj
 * once per part). Unknown source tensors are an error: they mean an architecture the table
 * does not describe.
 */
export async function convertOpenClip(
  source: TensorSource,
  config: ClipConfig,
  dest: string,
  label: string,
): Promise<{ tensorCount: number }> {
  const rules = openClipNameTable(config.vision.layers, config.text.layers);
  const known = new Set(rules.map((r) => r.openClip));
  const unknown = source.names().filter((n) => !known.has(n));
  if (unknown.length > 0)
    throw new UserError(
      `${label}: ${unknown.length} tensor${unknown.length > 1 ? 's' : ''} not in the OpenAI CLIP layout: ${unknown.slice(0, 5).join(', ')}${unknown.length > 5 ? ', …' : ''}`,
      { hint: `the weights are not a plain OpenAI-style ViT CLIP matching ${OPEN_CLIP_CONFIG}` },
    );
  const described = new Map<string, { dtype: string; shape: number[] }>();
  const missing: string[] = [];
  for (const rule of rules) {
    const t = source.describe(rule.openClip);
    const shapes = t && hfShapes(rule, t.shape);
    if (!t || !shapes) {
      missing.push(
        t
          ? `tensor "${rule.openClip}" has shape [${t.shape}], which does not fit ${rule.hf.join(', ')}`
          : `tensor "${rule.openClip}" is missing`,
      );
      continue;
    }
    rule.hf.forEach((name, i) => described.set(name, { dtype: t.dtype, shape: shapes[i] }));
  }
  const problems = missing.length ? missing : clipTensorProblems((n) => described.get(n), config);
  if (problems.length > 0)
    throw new UserError(`${label}: ${summariseProblems(problems)}`, {
      hint: `the weights do not match ${OPEN_CLIP_CONFIG}: both must come from the same repository`,
    });
  const out = new Map<string, RawTensorSource>();
  for (const rule of rules) {
    const { dtype, shape } = source.describe(rule.openClip)!;
    rule.hf.forEach((name, i) =>
      out.set(name, {
        dtype,
        shape: described.get(name)!.shape,
        bytes: async () =>
          toHf(rule, { dtype, shape, bytes: await source.bytes(rule.openClip) })[i].bytes,
      }),
    );
  }
  if (out.size !== expectedClipTensors(config).size)
    throw new Error('the name table and expectedClipTensors disagree');
  await writeSafetensorsRaw(dest, out, { format: 'pt', converted_from: 'open_clip' });
  return { tensorCount: out.size };
}
