/**
 * Anomaly maps (spec "Anomaly maps"): cosine scores of patch features against the two text
 * embeddings, scaled by a learnable exp(τ), laid out on the patch grid, upsampled bilinearly
 * (align_corners = true) to S×S and turned into 2-class probabilities.
 */
import { tf } from '../../tf.js';
import type { Tensor3D, Tensor4D, Variable } from '../../tf.js';
import { param, type SeedSequence, torchDefaultLinear } from '../init.js';
import { l2Normalize } from './post-vcp.js';

const TAU_INIT = Math.log(1 / 0.07);

/**
 * Scores → probability map.
 * @param patches L2-normalised patch features. [B, L, C]
 * @param text L2-normalised text embeddings per image. [B, 2, C]
 * @returns [B, S, S, 2], softmax over the last axis
 */
export function similarityMap(
  patches: Tensor3D,
  text: Tensor3D,
  logScale: Variable,
  imageSize: number,
): Tensor4D {
  return tf.tidy(() => {
    const [b, l] = patches.shape;
    const grid = Math.round(Math.sqrt(l));
    if (grid * grid !== l) throw new Error(`patch tokens: got L=${l}, expected a square grid`);
    const scores = tf.matMul(patches, text, false, true).mul(tf.exp(logScale)); // [B, L, 2]
    const onGrid = scores.reshape([b, grid, grid, 2]) as Tensor4D; // [B, G, G, 2]
    const up = tf.image.resizeBilinear(onGrid, [imageSize, imageSize], true); // [B, S, S, 2]
    return tf.softmax(up, -1) as Tensor4D;
  });
}

/** The baseline branch: per-layer Linear(D_v → D) on the raw patch tokens, with τ₁. */
export class BaseBranch {
  readonly linears: { weight: Variable; bias: Variable }[];
  readonly logScale: Variable;

  constructor(layers: number, visionWidth: number, embedDim: number, seeds: SeedSequence) {
    this.linears = Array.from({ length: layers }, (_, i) => {
      const init = torchDefaultLinear(embedDim, visionWidth, seeds);
      return {
        weight: param(init.weight, `maps.base.${i}.weight`),
        bias: param(init.bias, `maps.base.${i}.bias`),
      };
    });
    this.logScale = param(tf.scalar(TAU_INIT), 'maps.base.logit_scale');
  }

  parameters(): [string, Variable][] {
    return [
      ...this.linears.flatMap(({ weight, bias }, i) => [
        [`maps.base.linear.${i}.weight`, weight] as [string, Variable],
        [`maps.base.linear.${i}.bias`, bias] as [string, Variable],
      ]),
      ['maps.base.logit_scale', this.logScale],
    ];
  }

  /**
   * @param tokens raw patch tokens of layer index `layer`. [B, L, Dv]
   * @param text L2-normalised text embeddings. [B|1, 2, D]
   * @returns [B, S, S, 2]
   */
  map(layer: number, tokens: Tensor3D, text: Tensor3D, imageSize: number): Tensor4D {
    return tf.tidy(() => {
      const { weight, bias } = this.linears[layer];
      const [b, l, dv] = tokens.shape;
      const projected = tf.matMul(tokens.reshape([b * l, dv]), weight, false, true).add(bias); // [B·L, D]
      const features = l2Normalize(projected).reshape([b, l, -1]) as Tensor3D; // [B, L, D]
      return similarityMap(features, broadcastBatch(text, b), this.logScale, imageSize);
    });
  }

  dispose(): void {
    for (const [, p] of this.parameters()) p.dispose();
  }
}

/** The VCP branch's temperature τ₂ (its features are the normalised raw tokens and Post-VCP's output). */
export class VcpBranch {
  readonly logScale: Variable = param(tf.scalar(TAU_INIT), 'maps.vcp.logit_scale');

  parameters(): [string, Variable][] {
    return [['maps.vcp.logit_scale', this.logScale]];
  }

  /**
   * @param patches L2-normalised raw patch tokens. [B, L, Dv]
   * @param refined Post-VCP text embeddings. [B, 2, Dv]
   */
  map(patches: Tensor3D, refined: Tensor3D, imageSize: number): Tensor4D {
    return similarityMap(patches, refined, this.logScale, imageSize);
  }

  dispose(): void {
    this.logScale.dispose();
  }
}

/** Repeats a batch-of-one tensor to batch b (text shared by every image). */
export function broadcastBatch(x: Tensor3D, b: number): Tensor3D {
  return x.shape[0] === b ? x : (tf.tile(x, [b, 1, 1]) as Tensor3D);
}
