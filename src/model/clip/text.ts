/**
 * CLIP's text transformer: token + positional embedding, causal pre-LN blocks, ln_final, EOS
 * pooling, text projection. Prompt-learning methods splice learned vectors into the token
 * embeddings and overwrite positions between blocks, so the forward also takes embeddings
 * directly, with hooks; gradients flow through the embeddings and whatever the hooks return
 * (the CLIP weights are plain tensors, never variables).
 */
import { UserError } from '../../errors.js';
import { tf } from '../tf.js';
import type { Tensor, Tensor2D, Tensor3D } from '../tf.js';
import { createBlock } from './block.js';
import type { Block, BlockWeights } from './block.js';
import type { Activation, TextConfig } from './config.js';
import { ACTIVATION_FNS, disposeAll, layerNorm } from './layers.js';
import type { LayerNorm } from './layers.js';

export interface TextWeights {
  /** [V, W] */
  tokenEmbedding: Tensor2D;
  /** [contextLength, W] */
  positionEmbedding: Tensor2D;
  blocks: BlockWeights[];
  lnFinal: LayerNorm;
  /** [W, P] */
  projection: Tensor2D;
}

/** Token ids: one array per sequence, or rows of `contextLength` ids laid end to end. */
export type TokenIds = readonly (readonly number[])[] | Int32Array;

export interface TextHooks {
  /** Called before block i (0-based) with its input [B, T, W]; returns the block's input (T may change). */
  beforeBlock?: (i: number, x: Tensor3D) => Tensor3D;
  /** Called after the last block; returns the tokens for ln_final and where EOS now sits. */
  beforeFinalNorm?: (x: Tensor3D, eosIndex: number[]) => { x: Tensor3D; eosIndex: number[] };
}

/** Position of the first highest id per row: EOS for CLIP's vocabulary (HF's argmax rule). */
export function findEosIndex(ids: readonly (readonly number[])[]): number[] {
  return ids.map((row) => {
    let best = 0;
    for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
    return best;
  });
}

export class ClipTextTower {
  readonly blocks: Block[];
  private readonly masks = new Map<number, Tensor2D>();

  constructor(
    readonly config: Readonly<TextConfig>,
    readonly weights: TextWeights,
    activation: Activation,
  ) {
    const act = ACTIVATION_FNS[activation];
    this.blocks = weights.blocks.map((w) => createBlock(w, config.heads, act));
  }

  /** Additive causal mask [T, T]: 0 on and below the diagonal, −1e9 above (cached per T). */
  causalMask(t: number): Tensor2D {
    let mask = this.masks.get(t);
    if (!mask) {
      const data = new Float32Array(t * t);
      for (let i = 0; i < t; i++) for (let j = i + 1; j < t; j++) data[i * t + j] = -1e9;
      mask = tf.keep(tf.tensor2d(data, [t, t]));
      this.masks.set(t, mask);
    }
    return mask;
  }

  /** Token embeddings, without positions. ids → [B, T, W] */
  embedTokens(ids: TokenIds): Tensor3D {
    const rows = this.rows(ids);
    const { vocabSize } = this.config;
    rows.forEach((row, r) => {
      const bad = row.findIndex((id) => !Number.isInteger(id) || id < 0 || id >= vocabSize);
      if (bad >= 0)
        throw new UserError(
          `CLIP text input: sequence ${r}, position ${bad}: token id ${row[bad]} is outside the vocabulary 0..${vocabSize - 1}`,
        );
    });
    const t = rows[0]?.length ?? 0;
    if (rows.some((row) => row.length !== t))
      throw new UserError('CLIP text input: every sequence must have the same length (pad them)');
    return tf.tidy(
      () =>
        tf.gather(
          this.weights.tokenEmbedding,
          tf.tensor2d(rows.flat(), [rows.length, t], 'int32'),
        ) as unknown as Tensor3D,
    ); // [B, T, W]
  }

  /** CLIP's frozen ln_final over every token. x [..., W] */
  lnFinal<T extends Tensor>(x: T): T {
    return layerNorm(x, this.weights.lnFinal);
  }

  /** ln_final then the projection, for pooled tokens (ln_final is per token, so pooling first is exact). x [B, W] → [B, P] */
  project(x: Tensor2D): Tensor2D {
    return tf.tidy(() => tf.matMul(layerNorm(x, this.weights.lnFinal), this.weights.projection));
  }

  /** Tokens at each sequence's EOS position. x [B, T, W] → [B, W] */
  pool(x: Tensor3D, eosIndex: readonly number[]): Tensor2D {
    const [b, t, w] = x.shape;
    if (eosIndex.length !== b || eosIndex.some((e) => !Number.isInteger(e) || e < 0 || e >= t)) {
      throw new UserError(
        `CLIP text pooling: got EOS positions [${eosIndex}], expected ${b} integers in 0..${t - 1}`,
      );
    }
    // A one-hot product rather than a gather: gather's gradient (UnsortedSegmentSum) is missing on wasm.
    const select = new Float32Array(b * t);
    eosIndex.forEach((e, i) => (select[i * t + e] = 1));
    return tf.tidy(() => tf.matMul(tf.tensor3d(select, [b, 1, t]), x).reshape([b, w]) as Tensor2D); // [B, 1, T]·[B, T, W]
  }

  /** Text features (projected, not normalised) of token ids; EOS = first highest id unless given. → [B, P] */
  encodeText(ids: TokenIds, eosIndex?: readonly number[]): Tensor2D {
    const rows = this.rows(ids);
    const eos = eosIndex ? [...eosIndex] : findEosIndex(rows);
    // Causal mask: nothing after the last EOS can change the EOS outputs, so those positions are skipped.
    const keep = Math.max(...eos) + 1;
    const embeddings = this.embedTokens(rows.map((row) => row.slice(0, keep)));
    try {
      return this.encodeTextEmbeddings(embeddings, eos);
    } finally {
      embeddings.dispose();
    }
  }

  /**
   * Text features from token embeddings (positions are added here, to all T positions).
   * @param embeddings [B, T, W] token embeddings, learned vectors already spliced in
   * @param eosIndex per sequence, where EOS sits in `embeddings`
   * @returns [B, P]
   */
  encodeTextEmbeddings(
    embeddings: Tensor3D,
    eosIndex: readonly number[],
    hooks: TextHooks = {},
  ): Tensor2D {
    const [b, t, w] = embeddings.shape;
    const { contextLength } = this.config;
    if (w !== this.config.width)
      throw new UserError(
        `CLIP text input: embeddings have width ${w}, the text tower ${this.config.width}`,
      );
    if (t > contextLength)
      throw new UserError(
        `CLIP text input: ${t} positions exceed the context length ${contextLength}`,
      );
    return tf.tidy(() => {
      let x = embeddings.add(this.weights.positionEmbedding.slice([0, 0], [t, w])) as Tensor3D; // [B, T, W]
      this.blocks.forEach((block, i) => {
        if (hooks.beforeBlock) x = hooks.beforeBlock(i, x);
        const n = x.shape[1];
        x = block(x.reshape([b * n, w]), b, this.causalMask(n)).reshape([b, n, w]); // [B, T, W]
      });
      let eos = [...eosIndex];
      if (hooks.beforeFinalNorm) ({ x, eosIndex: eos } = hooks.beforeFinalNorm(x, eos));
      return this.project(this.pool(x, eos)); // [B, P]
    });
  }

  dispose(): void {
    disposeAll(this.weights);
    for (const mask of this.masks.values()) mask.dispose();
    this.masks.clear();
  }

  private rows(ids: TokenIds): number[][] {
    if (!(ids instanceof Int32Array)) return ids.map((row) => [...row]);
    const t = this.config.contextLength;
    if (ids.length % t !== 0)
      throw new UserError(
        `CLIP text input: ${ids.length} ids are not rows of the context length ${t}`,
      );
    return Array.from({ length: ids.length / t }, (_, r) =>
      Array.from(ids.subarray(r * t, (r + 1) * t)),
    );
  }
}
