/**
 * Seeded parameter initialisers with PyTorch's distributions, so a method's initial state is a
 * function of its config seed. Weight layouts follow PyTorch: Linear / Conv1d-k1 weights are
 * [out, in] (applied as x·Wᵀ).
 */
import { tf } from '../tf.js';
import type { Tensor, Variable } from '../tf.js';

/** Hands out distinct seeds derived from one base seed, in creation order. */
export class SeedSequence {
  private next = 0;
  constructor(private readonly base: number) {}
  take(): number {
    return this.base * 1009 + this.next++;
  }
}

/** Makes a trainable variable from an init tensor (which it disposes). */
export function param(init: Tensor, name: string): Variable {
  const v = tf.variable(init, true, `${name}_${uniqueSuffix()}`);
  init.dispose();
  return v;
}

let counter = 0;
function uniqueSuffix(): number {
  return counter++;
}

/** U(lo, hi). */
export function uniform(shape: number[], lo: number, hi: number, seeds: SeedSequence): Tensor {
  return tf.randomUniform(shape, lo, hi, 'float32', seeds.take());
}

/** torch.nn.init.trunc_normal_(std) with its default cut at ±2 (absolute): exact for std 1. */
export function truncatedNormal(shape: number[], std: number, seeds: SeedSequence): Tensor {
  return tf.truncatedNormal(shape, 0, std, 'float32', seeds.take());
}

/** kaiming_normal_(mode='fan_out', nonlinearity='leaky_relu', a=0): N(0, 2/fan_out) for an [out, in] weight. */
export function kaimingNormalFanOut(shape: [number, number], seeds: SeedSequence): Tensor {
  return tf.randomNormal(shape, 0, Math.sqrt(2 / shape[0]), 'float32', seeds.take());
}

/** PyTorch's default Linear / Conv1d init: weight and bias U(±1/√fan_in). */
export function torchDefaultLinear(
  out: number,
  fanIn: number,
  seeds: SeedSequence,
): { weight: Tensor; bias: Tensor } {
  const bound = 1 / Math.sqrt(fanIn);
  return {
    weight: uniform([out, fanIn], -bound, bound, seeds),
    bias: uniform([out], -bound, bound, seeds),
  };
}
