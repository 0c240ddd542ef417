/**
 * UTPA, Unified Text-Patch Alignment (spec "UTPA"): one patch-level alignment gives both the
 * pixel map and the image logits.
 * - scores s = F_s · T̃ᵀ (cosines) [B, L, 2]; P = softmax(s / τ) over the two states;
 * - map: P on the patch grid, bilinearly upsampled to S×S with align_corners = false (softmax
 *   first, so the channels still sum to 1);
 * - image logits: the mean over layers of each layer's mean raw score over the K patches with
 *   the largest P[:, 1], divided by τ.
 *
 * The upsampling is two matrix products with PyTorch's interpolation weights: tfjs's
 * resizeBilinear gradient ignores half-pixel centres on wasm, matMul's is exact everywhere.
 * The top-K choice is not differentiated (as torch.topk's indices): it is made on the values and
 * enters as a constant 0/1 mask, so gradients reach exactly the selected scores.
 */
import { tf } from '../../tf.js';
import type { Tensor2D, Tensor3D, Tensor4D } from '../../tf.js';
import { interpolationMatrix } from '../../clip/pos-embed.js';

/** Cosine scores of unit patches against unit text embeddings. [B, L, D] × [B, 2, D] → [B, L, 2] */
export function alignmentScores(patches: Tensor3D, text: Tensor3D): Tensor3D {
  return tf.matMul(patches, text, false, true);
}

/** Bilinear G×G → S×S upsampling (PyTorch, align_corners = false) of channels-last grids. */
export class BilinearUpsampler {
  private readonly rows: Tensor2D; // [S, G]
  private readonly columns: Tensor2D; // [G, S] = rowsᵀ

  constructor(
    readonly grid: number,
    readonly size: number,
  ) {
    const weights = Float32Array.from(interpolationMatrix(grid, size, 'bilinear'));
    // Kept: an upsampler outlives the tidy scope of the forward that first needs it.
    this.rows = tf.keep(tf.tensor2d(weights, [size, grid]));
    this.columns = tf.keep(tf.tidy(() => this.rows.transpose() as Tensor2D));
  }

  /** [B, G, G, C] → [B, S, S, C] */
  apply(x: Tensor4D): Tensor4D {
    return tf.tidy(() => {
      const [b, g, , c] = x.shape;
      const s = this.size;
      const byColumn = x.transpose([0, 1, 3, 2]).reshape([b * g * c, g]); // [B·G·C, G]
      const wide = tf.matMul(byColumn, this.columns).reshape([b, g, c, s]); // [B, G(y), C, S(x)]
      const byRow = wide.transpose([1, 0, 2, 3]).reshape([g, b * c * s]); // [G, B·C·S]
      const tall = tf.matMul(this.rows, byRow).reshape([s, b, c, s]); // [S(y), B, C, S(x)]
      return tall.transpose([1, 0, 3, 2]) as Tensor4D; // [B, S, S, C]
    });
  }

  dispose(): void {
    tf.dispose([this.rows, this.columns]);
  }
}

/**
 * Per-state probabilities on the grid, upsampled.
 * @param scores [B, L, 2] with L = G²
 * @returns [B, S, S, 2]
 */
export function probabilityMap(
  scores: Tensor3D,
  temperature: number,
  upsampler: BilinearUpsampler,
): Tensor4D {
  return tf.tidy(() => {
    const [b] = scores.shape;
    const g = upsampler.grid;
    const probs = tf.softmax(scores.div(temperature), -1).reshape([b, g, g, 2]) as Tensor4D;
    return upsampler.apply(probs);
  });
}

/**
 * 0/1 mask of the K patches with the largest abnormal probability per image (K capped at L).
 * Ranked on P[:, 1] as the public code does (ties: the lower patch index first).
 * @param scores [B, L, 2]
 * @returns [B, L] (a constant: no gradient flows into the choice)
 */
export function topkMask(scores: Tensor3D, temperature: number, k: number): Tensor2D {
  const [b, l] = scores.shape;
  const abnormal = tf.tidy(() =>
    tf.softmax(scores.div(temperature), -1).slice([0, 0, 1], [b, l, 1]).reshape([b, l]),
  );
  const values = abnormal.dataSync();
  abnormal.dispose();
  const kk = Math.min(k, l);
  const mask = new Float32Array(b * l);
  const order = Array.from({ length: l }, (_, i) => i);
  for (let i = 0; i < b; i++) {
    const row = values.subarray(i * l, (i + 1) * l);
    const ranked = [...order].sort((x, y) => row[y] - row[x] || x - y);
    for (let j = 0; j < kk; j++) mask[i * l + ranked[j]] = 1;
  }
  return tf.tensor2d(mask, [b, l]);
}

/**
 * Mean of the selected raw scores per image. scores [B, L, 2], mask [B, L] → [B, 2]
 */
export function maskedMean(scores: Tensor3D, mask: Tensor2D): Tensor2D {
  return tf.tidy(() => {
    const count = tf.sum(mask, 1, true); // [B, 1]
    return tf.sum(scores.mul(mask.expandDims(-1)), 1).div(count) as Tensor2D;
  });
}
