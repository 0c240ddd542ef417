/**
 * Training loss of the public implementation (spec "Losses"): for every layer map, focal loss
 * (γ 2) + dice on the abnormal channel against the mask + dice on the normal channel against
 * 1 − mask, summed over layers without weights, plus the cross-entropy of the UTPA image logits.
 * Focal and dice are the same code as VCP-CLIP's (both repositories copy one implementation).
 */
import { tf } from '../../tf.js';
import type { Tensor1D, Tensor2D, Tensor3D, Tensor4D } from '../../tf.js';
import { diceLoss, focalLoss } from '../vcp-clip/loss.js';

export { diceLoss, focalLoss };

/** The three pixel terms of one layer map. probs [B, S, S, 2], mask [B, S, S] */
export function mapLossTerms(
  probs: Tensor4D,
  mask: Tensor3D,
): { focal: tf.Scalar; diceAbnormal: tf.Scalar; diceNormal: tf.Scalar } {
  return tf.tidy(() => {
    const [b, s] = probs.shape;
    const channel = (c: number) =>
      probs.slice([0, 0, 0, c], [b, s, s, 1]).reshape([b, s, s]) as Tensor3D;
    return {
      focal: focalLoss(probs, mask),
      diceAbnormal: diceLoss(channel(1), mask),
      diceNormal: diceLoss(channel(0), tf.sub(1, mask) as Tensor3D),
    };
  });
}

/** Mean cross-entropy of 2-class logits [B, 2] against labels [B] (0 normal, 1 anomalous). */
export function imageCrossEntropy(logits: Tensor2D, labels: Tensor1D): tf.Scalar {
  return tf.tidy(() => {
    const target = tf.stack([tf.sub(1, labels), labels], 1); // [B, 2]
    return tf.mean(tf.sum(target.mul(tf.logSoftmax(logits, -1)), 1)).neg() as tf.Scalar;
  });
}

/** Σ over layers of focal + both dice terms, plus the image cross-entropy. */
export function vip2Loss(
  layerMaps: Tensor4D[],
  imageLogits: Tensor2D,
  masks: Tensor3D,
  labels: Tensor1D,
): tf.Scalar {
  return tf.tidy(() => {
    const terms = layerMaps.flatMap((probs) => Object.values(mapLossTerms(probs, masks)));
    return tf.addN([...terms, imageCrossEntropy(imageLogits, labels)]) as tf.Scalar;
  });
}
