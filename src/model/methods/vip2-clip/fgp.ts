/**
 * FGP, the Fine-Grained Perception module (spec "ViP-Prompt, part 2"): per image and layer, the
 * two text embeddings (queries) attend over the L2-normalised projected patches (keys, values)
 * with H heads, unscaled logits, softmax over the patches, then W_o and L2 normalisation; no
 * residual, one module for every layer. It is the computation of VCP-CLIP's Post-VCP with all
 * widths equal to the joint dimension D, so the same implementation serves both (it never builds
 * K and V: see ../vcp-clip/post-vcp.ts; b_k shifts every logit of a row alike and gets no
 * gradient in either form).
 */
import type { Tensor3D, Tensor4D, Variable } from '../../tf.js';
import type { SeedSequence } from '../init.js';
import { l2Normalize, PostVcp } from '../vcp-clip/post-vcp.js';

export { l2Normalize };

export class Fgp {
  private readonly attention: PostVcp;

  constructor(embedDim: number, heads: number, seeds: SeedSequence) {
    this.attention = new PostVcp(embedDim, embedDim, heads, false, seeds);
  }

  /** q/k/v/o projections as `fgp.<p>_proj.{weight [D, D], bias [D]}` (PyTorch layout [out, in]). */
  parameters(): [string, Variable][] {
    return this.attention
      .parameters()
      .map(([name, v]) => [name.replace(/^post_vcp\./, 'fgp.'), v] as [string, Variable]);
  }

  /**
   * @param text unit text embeddings per image. [B, 2, D]
   * @param patches unit patch features of one layer. [B, L, D]
   * @returns refined unit embeddings [B, 2, D] and the attention [B, H, 2, L]
   */
  apply(text: Tensor3D, patches: Tensor3D): { embeddings: Tensor3D; attention: Tensor4D } {
    return this.attention.apply(text, patches);
  }

  dispose(): void {
    this.attention.dispose();
  }
}
