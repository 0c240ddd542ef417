/**
 * The building blocks shared by both CLIP towers, over tokens kept flat as [N, W] (N = B·T) so
 * that every Linear is one 2-D matMul (on native TF a 3-D×2-D broadcast matMul is ~2x slower).
 * Weights are frozen plain tensors, stored pre-transposed as [in, out]: a transposed operand is
 * ~10x slower on wasm.
 */
import { tf } from '../tf.js';
import type { Tensor, Tensor1D, Tensor2D } from '../tf.js';
import type { Activation } from './config.js';

export interface Linear {
  /** [in, out] */
  weight: Tensor2D;
  /** [out] */
  bias?: Tensor1D;
}

export interface LayerNorm {
  gamma: Tensor1D;
  beta: Tensor1D;
  eps: number;
}

/** x·W + b. x [N, in] → [N, out] */
export type LinearFn = (x: Tensor2D, layer: Linear) => Tensor2D;

// wasm has a real fused matMul+bias kernel; tfjs-node emulates it by reshaping to 3-D
// BatchMatMul + add, measured slower than a 2-D matMul followed by the add.
const fusedLinear: LinearFn = (x, layer) =>
  tf.fused.matMul({ a: x, b: layer.weight, bias: layer.bias }) as Tensor2D;
const plainLinear: LinearFn = (x, layer) => {
  const y = tf.matMul(x, layer.weight);
  return (layer.bias ? y.add(layer.bias) : y) as Tensor2D;
};

/** The Linear implementation for a backend, picked once when a tower is built. */
export function linearFor(backend: string = tf.getBackend()): LinearFn {
  return backend === 'tensorflow' ? plainLinear : fusedLinear;
}

/** x·W + b with the current backend's implementation. x [N, in] → [N, out] */
export function linear(x: Tensor2D, layer: Linear): Tensor2D {
  return linearFor()(x, layer);
}

/** LayerNorm over the last axis, in float32 as CLIP computes it. x [..., W] */
export function layerNorm<T extends Tensor>(x: T, norm: LayerNorm): T {
  return tf.tidy(() => {
    const { mean, variance } = tf.moments(x, -1, true);
    return x.sub(mean).mul(variance.add(norm.eps).rsqrt()).mul(norm.gamma).add(norm.beta) as T;
  });
}

const SQRT1_2 = Math.SQRT1_2;

export const ACTIVATION_FNS = {
  // 0.5·x·(1 + erf(x/√2)): torch's default GELU, not the tanh approximation.
  gelu: (x: Tensor) => x.mul(tf.erf(x.mul(SQRT1_2)).add(1)).mul(0.5),
  quick_gelu: (x: Tensor) => x.mul(tf.sigmoid(x.mul(1.702))),
} satisfies Record<Activation, (x: Tensor) => Tensor>;

export type ActivationFn = (typeof ACTIVATION_FNS)[Activation];

/** Disposes every tensor of a (nested) weight object. */
export function disposeAll(weights: unknown): void {
  if (weights instanceof tf.Tensor) weights.dispose();
  else if (Array.isArray(weights)) weights.forEach(disposeAll);
  else if (typeof weights === 'object' && weights !== null)
    Object.values(weights).forEach(disposeAll);
}
