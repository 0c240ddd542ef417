/**
 * Pre-VCP (spec "Pre-VCP"): the category vectors c_b that replace [cls] in every prompt.
 * With Pre-VCP, c_b = q + MiniNet(g_b), MiniNet = Conv1d(1 → r, kernel 3, padding same) over the
 * global feature seen as a 1-channel signal of length D; without it, c_b = q for every image.
 */
import { tf } from '../../tf.js';
import type { Tensor2D, Tensor3D, Variable } from '../../tf.js';
import type { SeedSequence } from '../init.js';
import { param, truncatedNormal, uniform } from '../init.js';

export class PreVcp {
  /** Learnable category vectors q. [r, W] */
  readonly q: Variable;
  /** Mini-Net Conv1d weight (PyTorch [r, 1, 3] with the input axis dropped). [r, 3] */
  readonly weight?: Variable;
  /** [r] */
  readonly bias?: Variable;

  constructor(
    readonly r: number,
    readonly width: number,
    enabled: boolean,
    seeds: SeedSequence,
  ) {
    this.q = param(truncatedNormal([r, width], 1, seeds), 'pre_vcp.q');
    if (enabled) {
      const bound = 1 / Math.sqrt(3); // Conv1d default init, fan_in = 1 channel × kernel 3
      this.weight = param(uniform([r, 3], -bound, bound, seeds), 'pre_vcp.weight');
      this.bias = param(uniform([r], -bound, bound, seeds), 'pre_vcp.bias');
    }
  }

  get enabled(): boolean {
    return this.weight !== undefined;
  }

  parameters(): [string, Variable][] {
    const list: [string, Variable][] = [['pre_vcp.q', this.q]];
    if (this.weight && this.bias)
      list.push(['pre_vcp.mininet.weight', this.weight], ['pre_vcp.mininet.bias', this.bias]);
    return list;
  }

  /**
   * Category vectors per image, or one shared set when Pre-VCP is off.
   * @param global [B, D] (D must equal the text width)
   * @returns [B, r, W], or [1, r, W] without Pre-VCP
   */
  categoryVectors(global: Tensor2D): Tensor3D {
    return tf.tidy(() => {
      if (!this.weight || !this.bias) return this.q.expandDims(0) as Tensor3D; // [1, r, W]
      const d = global.shape[1];
      // Conv1d(1 → r, k=3, zero padding 1) as windows × kernel: differentiable on every backend.
      const padded = tf.pad(global, [
        [0, 0],
        [1, 1],
      ]); // [B, D+2]
      const windows = tf.stack(
        [0, 1, 2].map((k) => padded.slice([0, k], [-1, d])),
        -1,
      ); // [B, D, 3]
      const conv = tf.matMul(
        windows,
        tf.tile(this.weight.expandDims(0), [global.shape[0], 1, 1]),
        false,
        true,
      ); // [B, D, r]
      const mini = conv.add(this.bias).transpose([0, 2, 1]); // [B, r, D]
      return mini.add(this.q) as Tensor3D; // [B, r, W]
    });
  }

  dispose(): void {
    for (const [, v] of this.parameters()) v.dispose();
  }
}
