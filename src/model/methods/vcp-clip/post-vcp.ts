/**
 * Post-VCP (spec "Post-VCP"): multi-head cross-attention from the two text embeddings of an
 * image (queries) to the L2-normalised raw patch tokens of one layer (keys/values), projected
 * to D_v with bias, then W_o and L2 normalisation. One module serves every layer.
 *
 * Computed without materialising K and V: with K = F_s·W_kᵀ + b_k, the per-head logits
 * Q_h·K_hᵀ = (Q_h·W_k,h)·F_sᵀ + Q_h·b_k,h, and the last term is constant over the patches, so the
 * softmax ignores it; with rows of A summing to 1, A_h·V_h = (A_h·F_s)·W_v,hᵀ + b_v,h. This is
 * the same function at O(H·L·D_v) instead of O(L·D_v²) per image and layer (b_k has zero gradient
 * in both forms).
 */
import { tf } from '../../tf.js';
import type { Tensor3D, Tensor4D, Variable } from '../../tf.js';
import { param, type SeedSequence, torchDefaultLinear } from '../init.js';

const PROJECTIONS = ['q', 'k', 'v', 'o'] as const;

export class PostVcp {
  private readonly weights: Record<
    (typeof PROJECTIONS)[number],
    { weight: Variable; bias: Variable }
  >;
  private readonly headDim: number;

  constructor(
    readonly textDim: number,
    readonly visionWidth: number,
    readonly heads: number,
    readonly scaled: boolean,
    seeds: SeedSequence,
  ) {
    this.headDim = visionWidth / heads;
    const make = (name: string, fanIn: number) => {
      const init = torchDefaultLinear(visionWidth, fanIn, seeds); // Conv1d k=1 default init
      return {
        weight: param(init.weight, `post_vcp.${name}.weight`),
        bias: param(init.bias, `post_vcp.${name}.bias`),
      };
    };
    this.weights = {
      q: make('q', textDim),
      k: make('k', visionWidth),
      v: make('v', visionWidth),
      o: make('o', visionWidth),
    };
  }

  parameters(): [string, Variable][] {
    return PROJECTIONS.flatMap((p) => [
      [`post_vcp.${p}_proj.weight`, this.weights[p].weight] as [string, Variable],
      [`post_vcp.${p}_proj.bias`, this.weights[p].bias] as [string, Variable],
    ]);
  }

  /**
   * @param text text embeddings per image (index 0 normal, 1 abnormal); B may be 1 (shared). [B|1, 2, D]
   * @param patches L2-normalised patch tokens of one layer. [B, L, Dv]
   * @returns refined, L2-normalised text embeddings [B, 2, Dv] and the attention maps [B, H, 2, L]
   */
  apply(text: Tensor3D, patches: Tensor3D): { embeddings: Tensor3D; attention: Tensor4D } {
    return tf.tidy(() => {
      const [b, l, dv] = patches.shape;
      const t = text.shape[0];
      const { heads: h, headDim: dh } = this;
      const { q, k, v, o } = this.weights;
      const query = tf
        .matMul(text.reshape([t * 2, this.textDim]), q.weight, false, true)
        .add(q.bias); // [t·2, Dv]
      const qHeads = query.reshape([t * 2, h, dh]).transpose([1, 0, 2]); // [H, t·2, dh]
      const wk = k.weight.reshape([h, dh, dv]); // [H, dh, Dv]
      let qk = tf.matMul(qHeads, wk); // [H, t·2, Dv]
      if (this.scaled) qk = qk.mul(1 / Math.sqrt(dh));
      qk = qk
        .reshape([h, t, 2, dv])
        .transpose([1, 0, 2, 3])
        .reshape([t, h * 2, dv]); // [t, H·2, Dv]
      if (t !== b) qk = tf.tile(qk, [b, 1, 1]); // [B, H·2, Dv]
      const logits = tf.matMul(qk, patches, false, true); // [B, H·2, L]
      const attention = tf.softmax(logits, -1); // [B, H·2, L]
      const pooled = tf.matMul(attention, patches); // [B, H·2, Dv]
      const perHead = pooled
        .reshape([b, h, 2, dv])
        .transpose([1, 0, 2, 3])
        .reshape([h, b * 2, dv]); // [H, B·2, Dv]
      const wv = v.weight.reshape([h, dh, dv]); // [H, dh, Dv]
      const values = tf.matMul(perHead, wv, false, true); // [H, B·2, dh]
      const concat = values
        .transpose([1, 0, 2])
        .reshape([b * 2, dv])
        .add(v.bias); // [B·2, Dv]
      const out = tf.matMul(concat, o.weight, false, true).add(o.bias); // [B·2, Dv]
      const embeddings = l2Normalize(out).reshape([b, 2, dv]) as Tensor3D; // [B, 2, Dv]
      return { embeddings, attention: attention.reshape([b, h, 2, l]) as Tensor4D };
    });
  }

  dispose(): void {
    for (const [, p] of this.parameters()) p.dispose();
  }
}

/** x / ‖x‖ along the last axis (no epsilon, as torch's x / x.norm(dim=-1, keepdim=True)). */
export function l2Normalize<T extends tf.Tensor>(x: T): T {
  return tf.tidy(() => x.div(tf.sqrt(tf.sum(tf.square(x), -1, true)))) as T;
}
