/**
 * A pre-LN transformer block of CLIP (both towers): x = x + attn(ln1(x)); x = x + mlp(ln2(x)).
 */
import { tf } from '../tf.js';
import type { Tensor2D, Tensor4D } from '../tf.js';
import { layerNorm, linearFor } from './layers.js';
import type { ActivationFn, LayerNorm, Linear, LinearFn } from './layers.js';

export interface BlockWeights {
  ln1: LayerNorm;
  /** q, k, v projections side by side [W, 3W]; the q part is pre-scaled by 1/√head_dim. */
  qkv: Linear;
  out: Linear;
  ln2: LayerNorm;
  fc1: Linear;
  fc2: Linear;
}

/** One block: x [B·T, W] → [B·T, W]; `mask` [T, T] is added to the attention logits. */
export type Block = (x: Tensor2D, batch: number, mask?: Tensor2D) => Tensor2D;

interface Kernels {
  linear: LinearFn;
  /** Q·Kᵀ through matMul's transposeB (native: free) or an explicit transpose (wasm: ~10x faster). */
  transposeBInMatMul: boolean;
}

/** Multi-head self-attention. x [B·T, W] → [B·T, W] */
function attention(
  x: Tensor2D,
  batch: number,
  heads: number,
  w: BlockWeights,
  k: Kernels,
  mask?: Tensor2D,
): Tensor2D {
  const [n, width] = x.shape;
  const t = n / batch;
  const d = width / heads;
  const qkv = k.linear(x, w.qkv); // [B·T, 3W]
  // 2-D slices: wasm's Slice of a 5-D tensor was 60% of the whole forward.
  const part = (i: number) => qkv.slice([0, i * width], [n, width]).reshape([batch, t, heads, d]); // [B, T, H, d]
  const q = part(0).transpose([0, 2, 1, 3]) as Tensor4D; // [B, H, T, d]
  const v = part(2).transpose([0, 2, 1, 3]) as Tensor4D; // [B, H, T, d]
  const logits = k.transposeBInMatMul
    ? tf.matMul(q, part(1).transpose([0, 2, 1, 3]) as Tensor4D, false, true) // [B, H, T, T]
    : tf.matMul(q, part(1).transpose([0, 2, 3, 1]) as Tensor4D); // [B, H, d, T] → [B, H, T, T]
  const probs = tf.softmax(mask ? logits.add(mask) : logits); // [B, H, T, T]
  const context = tf.matMul(probs, v).transpose([0, 2, 1, 3]).reshape([n, width]) as Tensor2D; // [B·T, W]
  return k.linear(context, w.out);
}

/** Builds a block for the current backend. */
export function createBlock(w: BlockWeights, heads: number, act: ActivationFn): Block {
  const backend = tf.getBackend();
  const kernels: Kernels = {
    linear: linearFor(backend),
    transposeBInMatMul: backend === 'tensorflow',
  };
  const { linear } = kernels;
  const mlp = (x: Tensor2D) => linear(act(linear(x, w.fc1)) as Tensor2D, w.fc2); // [N, W] → [N, 4W] → [N, W]
  return (x, batch, mask) =>
    tf.tidy(() => {
      const h = x.add(attention(layerNorm(x, w.ln1), batch, heads, w, kernels, mask)) as Tensor2D; // [B·T, W]
      return h.add(mlp(layerNorm(h, w.ln2))) as Tensor2D; // [B·T, W]
    });
}
