/**
 * Test helpers: a tiny CLIP-style checkpoint directory (config.json, model.safetensors,
 * tokenizer files) generated from scratch. (Where the real CLIP tokenizer lives:
 * tests/requirements.ts.)
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeSafetensors } from '../../../src/io/safetensors.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));

export const TINY_FIXTURE = join(REPO, 'assets/clip/tiny-clip');

/** GPT-2/CLIP byte → printable-character table. */
function bytesToUnicode(): string[] {
  const keep = [...range(33, 126), ...range(161, 172), ...range(174, 255)];
  const table: string[] = [];
  let extra = 0;
  for (let b = 0; b < 256; b++)
    table[b] = String.fromCodePoint(keep.includes(b) ? b : 256 + extra++);
  return table;
}
function range(a: number, b: number): number[] {
  return Array.from({ length: b - a + 1 }, (_, i) => a + i);
}

/** A complete CLIP-format tokenizer.json with a byte vocabulary and a handful of merges. */
export function tinyTokenizerJson(): object {
  const bytes = bytesToUnicode();
  const vocab: Record<string, number> = {};
  for (const ch of bytes) vocab[ch] = Object.keys(vocab).length;
  for (const ch of bytes) vocab[`${ch}</w>`] = Object.keys(vocab).length;
  const merges = [
    'p h',
    'ph o',
    'pho t',
    'phot o</w>',
    'g o',
    'go o',
    'goo d</w>',
    'o f</w>',
    'o t',
  ];
  for (const merge of merges) vocab[merge.replace(' ', '')] = Object.keys(vocab).length;
  const sot = Object.keys(vocab).length;
  vocab['<|startoftext|>'] = sot;
  vocab['<|endoftext|>'] = sot + 1;
  const special = (id: number, content: string) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: content.includes('start'),
    special: true,
  });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(sot, '<|startoftext|>'), special(sot + 1, '<|endoftext|>')],
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'NFC' },
        { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' },
        { type: 'Lowercase' },
      ],
    },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        {
          type: 'Split',
          pattern: {
            Regex:
              "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+",
          },
          behavior: 'Removed',
          invert: true,
        },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: {
      type: 'RobertaProcessing',
      sep: ['<|endoftext|>', sot + 1],
      cls: ['<|startoftext|>', sot],
      trim_offsets: false,
      add_prefix_space: false,
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<|endoftext|>',
      continuing_subword_prefix: '',
      end_of_word_suffix: '</w>',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
}

/** A minimal HF CLIP config with 1-layer towers. */
export function tinyConfig(): Record<string, unknown> {
  return {
    architectures: ['CLIPModel'],
    model_type: 'clip',
    projection_dim: 8,
    text_config: {
      hidden_size: 8,
      intermediate_size: 16,
      num_attention_heads: 2,
      num_hidden_layers: 1,
      max_position_embeddings: 77,
      vocab_size: 523,
    },
    vision_config: {
      hidden_size: 8,
      intermediate_size: 16,
      num_attention_heads: 2,
      num_hidden_layers: 1,
      image_size: 28,
      patch_size: 14,
    },
  };
}

/** Random tensors under every name of an HF CLIPModel with `tinyConfig()`'s sizes. */
export function tinyTensors(seed = 1): Map<string, { shape: number[]; data: Float32Array }> {
  let state = seed;
  const random = () => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  const add = (name: string, shape: number[]) => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1)).map(random);
    tensors.set(name, { shape, data });
  };
  const D = 8;
  const F = 16;
  for (const tower of ['text_model', 'vision_model']) {
    const p = `${tower}.encoder.layers.0`;
    for (const proj of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) {
      add(`${p}.self_attn.${proj}.weight`, [D, D]);
      add(`${p}.self_attn.${proj}.bias`, [D]);
    }
    for (const ln of ['layer_norm1', 'layer_norm2']) {
      add(`${p}.${ln}.weight`, [D]);
      add(`${p}.${ln}.bias`, [D]);
    }
    add(`${p}.mlp.fc1.weight`, [F, D]);
    add(`${p}.mlp.fc1.bias`, [F]);
    add(`${p}.mlp.fc2.weight`, [D, F]);
    add(`${p}.mlp.fc2.bias`, [D]);
  }
  add('text_model.embeddings.token_embedding.weight', [523, D]);
  add('text_model.embeddings.position_embedding.weight', [77, D]);
  add('text_model.final_layer_norm.weight', [D]);
  add('text_model.final_layer_norm.bias', [D]);
  add('vision_model.embeddings.class_embedding', [D]);
  add('vision_model.embeddings.patch_embedding.weight', [D, 3, 14, 14]);
  add('vision_model.embeddings.position_embedding.weight', [5, D]);
  add('vision_model.pre_layrnorm.weight', [D]);
  add('vision_model.pre_layrnorm.bias', [D]);
  add('vision_model.post_layernorm.weight', [D]);
  add('vision_model.post_layernorm.bias', [D]);
  add('visual_projection.weight', [8, D]);
  add('text_projection.weight', [8, D]);
  add('logit_scale', []);
  return tensors;
}

/**
 * Writes a checkpoint directory: the committed tiny-clip fixture's files when present, else a
 * generated one (random tensors, tiny byte-level tokenizer).
 */
export async function makeCheckpointDir(
  dir: string,
  options: { seed?: number; generated?: boolean } = {},
): Promise<void> {
  await mkdir(dir, { recursive: true });
  const files = ['config.json', 'model.safetensors', 'tokenizer.json'];
  if (!options.generated && files.every((f) => existsSync(join(TINY_FIXTURE, f)))) {
    for (const f of [
      ...files,
      'tokenizer_config.json',
      'vocab.json',
      'merges.txt',
      'special_tokens_map.json',
    ]) {
      if (existsSync(join(TINY_FIXTURE, f))) await copyFile(join(TINY_FIXTURE, f), join(dir, f));
    }
    return;
  }
  await writeFile(join(dir, 'config.json'), JSON.stringify(tinyConfig(), null, 2));
  await writeSafetensors(join(dir, 'model.safetensors'), tinyTensors(options.seed ?? 1));
  await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(tinyTokenizerJson()));
  await writeFile(
    join(dir, 'tokenizer_config.json'),
    JSON.stringify({ model_max_length: 77, tokenizer_class: 'CLIPTokenizer' }),
  );
}
