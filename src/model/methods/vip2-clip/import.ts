/**
 * `vcp-exp import vip2-clip`: a checkpoint of the authors' train.py (.pth: {"prompt_learner",
 * "Zero_try"}) → a vcp-exp checkpoint directory that `predict` and the runner load like a trained
 * one. The .pth is read without PyTorch and without running it (io/torch-zip). The method is
 * built on the CLIP it will run on, so every shape is checked by the assignment, and the
 * checkpoint's own buffers say which state word its normal prompt was trained with.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UserError } from '../../../errors.js';
import { readTorchCheckpoint } from '../../../io/torch-zip.js';
import { CHECKPOINT_CONFIG, saveCheckpoint, type CheckpointConfig } from '../../checkpoint.js';
import type { ClipModel } from '../../clip/model.js';
import { BACKBONE_ALIASES, KNOWN_BACKBONES } from '../../clip/presets.js';
import type { ClipTokenizer } from '../../clip/tokenizer.js';
import { loadBackbone } from '../../load.js';
import { tf } from '../../tf.js';
import { VIP2_CLIP_DEFAULTS, type NormalStateWord } from './config.js';
import { createVip2Clip } from './model.js';
import { fromPublicVip2Checkpoint } from './public-checkpoint.js';

export const PUBLIC_CODE = 'github.com/kim0806/ViP2-CLIP';

export interface ImportVip2ClipOptions {
  /** The .pth the public train.py saved. */
  pth: string;
  /** The CLIP it was trained on: a checkpoint directory, a known name or a pulled hub id. */
  clip: string;
  /** 1-based vision blocks (default [6, 12, 18, 24]; the checkpoint does not record them). */
  layers?: readonly number[];
  /** Input size S (default 518). */
  imageSize?: number;
  out: string;
}

export interface ImportedVip2Checkpoint {
  dir: string;
  config: CheckpointConfig;
  tensors: number;
  warnings: string[];
  /** What the checkpoint determined, for the import command's summary line. */
  summary: string;
}

async function sha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The name the method config records: a known architecture, else the hub id or absolute directory. */
function backboneName(clip: string): string {
  if (clip in KNOWN_BACKBONES) return clip;
  if (clip in BACKBONE_ALIASES) return BACKBONE_ALIASES[clip];
  if (existsSync(clip) && statSync(clip).isDirectory()) return resolve(clip);
  return clip;
}

/**
 * The normal prompt's state word, from the embedding the checkpoint froze at its position
 * (token_middle_pos): "damaged" in the public code (its quirk), "good" in the paper's intent.
 */
function stateWordOf(
  embedding: Float32Array,
  clip: ClipModel,
  tokenizer: ClipTokenizer,
  file: string,
): NormalStateWord {
  const table = clip.text.weights.tokenEmbedding;
  const distance = (word: NormalStateWord) => {
    const ids = tokenizer.pieceIds(word);
    if (ids.length !== 1) return Infinity;
    const row = tf.tidy(() => table.slice([ids[0], 0], [1, -1]).dataSync() as Float32Array);
    return Math.max(...row.map((v, i) => Math.abs(v - embedding[i])));
  };
  const words = ['damaged', 'good'] as const;
  const distances = words.map(distance);
  const best = distances[0] <= distances[1] ? 0 : 1;
  const scale = Math.max(...embedding.map(Math.abs), 1e-12);
  if (!(distances[best] <= 1e-6 * scale)) {
    throw new UserError(
      `${file}: prompt_learner.token_middle_pos is the embedding of neither "damaged" nor "good" in this CLIP (closest: "${words[best]}", max |Δ| ${distances[best].toExponential(2)})`,
      {
        hint: 'give --clip the CLIP weights the checkpoint was trained on (ViP²-CLIP: ViT-L-14-336)',
      },
    );
  }
  return words[best];
}

export async function importVip2Clip(
  options: ImportVip2ClipOptions,
): Promise<ImportedVip2Checkpoint> {
  const { pth, out } = options;
  if (!existsSync(pth)) throw new UserError(`${pth}: no such file`);
  const imported = fromPublicVip2Checkpoint(await readTorchCheckpoint(pth), pth);
  if (existsSync(out) && !existsSync(join(out, CHECKPOINT_CONFIG))) {
    throw new UserError(`--out ${out}: exists and is not a vcp-exp checkpoint`, {
      hint: 'choose a new directory (an existing checkpoint there is replaced)',
    });
  }
  const name = backboneName(options.clip);
  const backbone = await loadBackbone(
    options.clip,
    VIP2_CLIP_DEFAULTS.activation,
    VIP2_CLIP_DEFAULTS.pos_embed_resize,
  );
  try {
    const { text, projectionDim } = backbone.clip.config;
    const { textWidth, embedDim } = imported.dims;
    if (textWidth !== text.width || embedDim !== projectionDim) {
      throw new UserError(
        `${pth}: trained for text width ${textWidth} and joint width ${embedDim}, but ${name} has ${text.width} and ${projectionDim}`,
        {
          hint: 'give --clip the CLIP weights the checkpoint was trained on (ViP²-CLIP: ViT-L-14-336)',
        },
      );
    }
    const warnings = [...imported.warnings];
    let normalStateWord: NormalStateWord = VIP2_CLIP_DEFAULTS.normal_state_word;
    if (imported.normalStateEmbedding)
      normalStateWord = stateWordOf(
        imported.normalStateEmbedding,
        backbone.clip,
        backbone.tokenizer,
        pth,
      );
    else
      warnings.push(
        `${pth}: no prompt_learner.token_middle_pos buffer: normal_state_word left at "${normalStateWord}" (the public code's)`,
      );
    const method = createVip2Clip(
      {
        backbone: name,
        image_size: options.imageSize ?? VIP2_CLIP_DEFAULTS.image_size,
        layers: [...(options.layers ?? VIP2_CLIP_DEFAULTS.layers)],
        ...imported.config,
        normal_state_word: normalStateWord,
      },
      { clip: backbone.clip, tokenizer: backbone.tokenizer },
    );
    try {
      const params = method.parameters();
      const missing = [...params.keys()].filter((k) => !imported.tensors.has(k));
      if (missing.length > 0) throw new Error(`import: no tensor for ${missing.join(', ')}`);
      for (const [key, v] of params) {
        const t = imported.tensors.get(key)!;
        if (t.shape.join() !== v.shape.join())
          throw new UserError(
            `${pth}: ${key}: shape [${t.shape.join(', ')}], the model on ${name} needs [${v.shape.join(', ')}]`,
          );
        const value = tf.tensor(t.data, t.shape, 'float32');
        v.assign(value);
        value.dispose();
      }
      const config = await saveCheckpoint(
        out,
        method,
        { sha256: backbone.sha256, name },
        { imported_from: resolve(pth), pth_sha256: await sha256(pth), public_code: PUBLIC_CODE },
      );
      const c = method.config;
      const summary = `n_ctx ${c.n_ctx}, n_cls ${c.n_cls}, normal prompt's state word "${c.normal_state_word}"`;
      return { dir: out, config, tensors: params.size, warnings, summary };
    } finally {
      method.dispose();
    }
  } finally {
    backbone.clip.dispose();
  }
}
