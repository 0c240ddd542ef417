/**
 * Training losses of the public implementation (spec "Loss"): focal loss on the 2-class
 * probability map and binary dice on its abnormal channel.
 */
import { tf } from '../../tf.js';
import type { Tensor3D, Tensor4D } from '../../tf.js';

const SMOOTH = 1e-5;

/**
 * Focal loss, γ = 2 by default, no class weights: one-hot targets clamped to [1e-5, 1 − 1e-5],
 * p_t = Σ onehot·p + 1e-5, mean of −(1 − p_t)^γ·log p_t over all pixels of the batch.
 * @param probs softmax probabilities, channels last. [B, S, S, 2]
 * @param mask binary ground truth. [B, S, S]
 */
export function focalLoss(probs: Tensor4D, mask: Tensor3D, gamma = 2): tf.Scalar {
  return tf.tidy(() => {
    const target = mask.expandDims(-1); // [B, S, S, 1]
    const oneHot = tf.concat([tf.sub(1, target), target], -1).clipByValue(SMOOTH, 1 - SMOOTH); // [B, S, S, 2]
    const pt = tf.sum(oneHot.mul(probs), -1).add(SMOOTH); // [B, S, S]
    const focal = tf.pow(tf.sub(1, pt), gamma).mul(tf.log(pt)).neg(); // [B, S, S]
    return tf.mean(focal) as tf.Scalar;
  });
}

/**
 * Binary dice loss, smooth 1: 1 − mean over images of (2Σpg + 1)/(Σp + Σg + 1).
 * @param prob abnormal-channel probabilities. [B, S, S]
 * @param mask binary ground truth. [B, S, S]
 */
export function diceLoss(prob: Tensor3D, mask: Tensor3D): tf.Scalar {
  return tf.tidy(() => {
    const b = prob.shape[0];
    const p = prob.reshape([b, -1]); // [B, S·S]
    const g = mask.reshape([b, -1]); // [B, S·S]
    const inter = tf.sum(p.mul(g), 1); // [B]
    const dice = inter
      .mul(2)
      .add(1)
      .div(tf.sum(p, 1).add(tf.sum(g, 1)).add(1)); // [B]
    return tf.sub(1, tf.mean(dice)) as tf.Scalar;
  });
}

/** Σ over branches and layers of focal + dice(abnormal channel). Maps: [B, S, S, 2] each. */
export function segmentationLoss(layerMaps: Record<string, Tensor4D[]>, mask: Tensor3D): tf.Scalar {
  return tf.tidy(() => {
    const terms = Object.values(layerMaps)
      .flat()
      .map((probs) => {
        const [b, s] = probs.shape;
        const abnormal = probs.slice([0, 0, 0, 1], [b, s, s, 1]).reshape([b, s, s]) as Tensor3D; // [B, S, S]
        return focalLoss(probs, mask).add(diceLoss(abnormal, mask));
      });
    return tf.addN(terms) as tf.Scalar;
  });
}
