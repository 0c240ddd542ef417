/**
 * Deep text prompting (spec "Text prompts", DTP): n learnable vectors per text layer, projected
 * by a shared Linear (+ dropout in training), inserted before block 1 and overwritten before
 * every later block; removed after the last block and followed by a learnable LayerNorm.
 * Position 'pre' puts them right after SOS, 'post' right before EOS.
 */
import { tf } from '../../tf.js';
import type { Tensor2D, Tensor3D, Variable } from '../../tf.js';
import type { TextHooks } from '../../clip/text.js';
import { kaimingNormalFanOut, param, type SeedSequence, uniform } from '../init.js';
import type { DtpPosition } from './config.js';

const PROMPT_NORM_EPS = 1e-6;

export class DeepPrompts {
  /** P₀ … P_{layers−1}. [layers, n, W] */
  readonly prompts: Variable;
  readonly projWeight: Variable;
  readonly projBias: Variable;
  readonly normWeight: Variable;
  readonly normBias: Variable;
  /** Seed of the next dropout mask (null: unseeded); see seedDropout. */
  private dropoutSeed: number | null = null;

  constructor(
    readonly layers: number,
    readonly n: number,
    readonly width: number,
    readonly position: DtpPosition,
    readonly dropout: number,
    seeds: SeedSequence,
  ) {
    this.prompts = param(uniform([layers, n, width], -1, 1, seeds), 'dtp.prompts');
    this.projWeight = param(kaimingNormalFanOut([width, width], seeds), 'dtp.proj.weight');
    this.projBias = param(tf.zeros([width]), 'dtp.proj.bias');
    this.normWeight = param(tf.ones([width]), 'dtp.norm.weight');
    this.normBias = param(tf.zeros([width]), 'dtp.norm.bias');
  }

  parameters(): [string, Variable][] {
    return [
      ['dtp.prompts', this.prompts],
      ['dtp.prompt_proj.weight', this.projWeight],
      ['dtp.prompt_proj.bias', this.projBias],
      ['dtp.prompt_norm.weight', this.normWeight],
      ['dtp.prompt_norm.bias', this.normBias],
    ];
  }

  /** Dropout masks from here on are drawn from `seed`, `seed + 1`, … (one per prompt projection). */
  seedDropout(seed: number): void {
    this.dropoutSeed = seed;
  }

  /**
   * Hooks for the text encoder on sequences whose EOS rows are `eosIndex`.
   * @param contextLength the encoder's maximum length: a longer sequence loses its last n rows
   */
  hooks(eosIndex: readonly number[], contextLength: number, training: boolean): TextHooks {
    const at = eosIndex.map((eos) => (this.position === 'pre' ? 1 : eos));
    const prompt = (i: number): Tensor2D => {
      const p = this.prompts
        .slice([i, 0, 0], [1, this.n, this.width])
        .reshape([this.n, this.width]) as Tensor2D; // [n, W]
      const projected = tf.matMul(p, this.projWeight, false, true).add(this.projBias) as Tensor2D; // [n, W]
      if (!training || this.dropout <= 0) return projected;
      const seed = this.dropoutSeed === null ? undefined : this.dropoutSeed++;
      return tf.dropout(projected, this.dropout, undefined, seed) as Tensor2D;
    };
    return {
      beforeBlock: (i, x) => {
        if (i === 0) {
          const inserted = spliceRows(x, at, prompt(0), 'insert'); // [N, T+n, W]
          const keep = Math.min(inserted.shape[1], contextLength);
          return keep === inserted.shape[1]
            ? inserted
            : (inserted.slice([0, 0, 0], [-1, keep, -1]) as Tensor3D);
        }
        return spliceRows(x, at, prompt(i), 'overwrite'); // [N, T', W]
      },
      beforeFinalNorm: (x) => {
        const removed = spliceRows(x, at, null, 'remove', this.n); // [N, T'−n, W]
        const normed = layerNorm(removed, this.normWeight, this.normBias, PROMPT_NORM_EPS);
        return { x: normed, eosIndex: [...eosIndex] };
      },
    };
  }

  dispose(): void {
    for (const [, p] of this.parameters()) p.dispose();
  }
}

/**
 * Inserts the n rows of `rows` at position at[i] of sequence i, overwrites n rows there with
 * them, or removes the n rows there. Written as a batched product with 0/1 selection matrices
 * rather than a gather: its gradient is a matMul on every backend (gather's needs
 * UnsortedSegmentSum, which wasm lacks).
 * @param x [N, T, W]
 * @param rows [n, W] (null for 'remove', which removes `removeCount` rows)
 */
export function spliceRows(
  x: Tensor3D,
  at: readonly number[],
  rows: Tensor2D | null,
  mode: 'insert' | 'overwrite' | 'remove',
  removeCount = 1,
): Tensor3D {
  return tf.tidy(() => {
    const [count, t] = x.shape;
    const n = rows ? rows.shape[0] : removeCount;
    const outLength = mode === 'insert' ? t + n : mode === 'remove' ? t - n : t;
    const sourceLength = rows ? t + n : t; // x's rows, then `rows`
    const select = new Float32Array(count * outLength * sourceLength);
    for (let i = 0; i < count; i++) {
      const a = at[i];
      for (let j = 0; j < outLength; j++) {
        let src: number;
        if (mode === 'remove') src = j < a ? j : j + n;
        else if (j >= a && j < a + n) src = t + (j - a);
        else src = mode === 'insert' && j >= a + n ? j - n : j;
        select[(i * outLength + j) * sourceLength + src] = 1;
      }
    }
    const source = rows ? tf.concat([x, tf.tile(rows.expandDims(0), [count, 1, 1])], 1) : x; // [N, T (+n), W]
    return tf.matMul(tf.tensor3d(select, [count, outLength, sourceLength]), source) as Tensor3D; // [N, T', W]
  });
}

/** LayerNorm over the last axis, computed in float32 like torch's. */
export function layerNorm(x: Tensor3D, weight: Variable, bias: Variable, eps: number): Tensor3D {
  return tf.tidy(() => {
    const { mean, variance } = tf.moments(x, -1, true);
    return x
      .sub(mean)
      .div(tf.sqrt(variance.add(eps)))
      .mul(weight)
      .add(bias) as Tensor3D;
  });
}
