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
  /** Largest attention logits computed at once (ATTENTION_CHUNK_BYTES). */
  chunkBytes: number;
}

/**
 * Attention logits of at most this many bytes are computed at once: at ViT-L-14@518 one image's
 * logits for all 16 heads are 120 MB (and softmax doubles them), so large inputs go a few heads
 * at a time. Below it (every training and test size of the tiny and B/16 models) the heads go
 * together, as one batched matMul.
 */
export const ATTENTION_CHUNK_BYTES = 32 * 1024 * 1024;

/** Heads per chunk for logits [B, H, T, T] (float32) within `limit` bytes; at least 1. */
export function headsPerChunk(batch: number, heads: number, t: number, limit: number): number {
  return Math.max(1, Math.min(heads, Math.floor(limit / (4 * batch * t * t))));
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
  const kT = k.transposeBInMatMul
    ? (part(1).transpose([0, 2, 1, 3]) as Tensor4D) // [B, H, T, d], transposed inside matMul
    : (part(1).transpose([0, 2, 3, 1]) as Tensor4D); // [B, H, d, T]
  const headsContext = (qh: Tensor4D, kh: Tensor4D, vh: Tensor4D) => {
    const logits = tf.matMul(qh, kh, false, k.transposeBInMatMul); // [B, h, T, T]
    const probs = tf.softmax(mask ? logits.add(mask) : logits); // [B, h, T, T]
    return tf.matMul(probs, vh) as Tensor4D; // [B, h, T, d]
  };
  const chunk = headsPerChunk(batch, heads, t, k.chunkBytes);
  let context: Tensor4D;
  if (chunk >= heads) {
    context = headsContext(q, kT, v);
  } else {
    // Each chunk in its own tidy: its logits and probabilities are freed before the next.
    const parts: Tensor4D[] = [];
    for (let h0 = 0; h0 < heads; h0 += chunk) {
      const size = Math.min(chunk, heads - h0);
      const heads4 = (t4: Tensor4D) =>
        t4.slice([0, h0, 0, 0], [batch, size, t4.shape[2], t4.shape[3]]);
      parts.push(tf.tidy(() => headsContext(heads4(q), heads4(kT), heads4(v))));
    }
    context = tf.concat(parts, 1) as Tensor4D;
  }
  return k.linear(context.transpose([0, 2, 1, 3]).reshape([n, width]) as Tensor2D, w.out); // [B·T, W]
}

/** Builds a block for the current backend. */
export function createBlock(
  w: BlockWeights,
  heads: number,
  act: ActivationFn,
  chunkBytes = ATTENTION_CHUNK_BYTES,
): Block {
  const backend = tf.getBackend();
  const kernels: Kernels = {
    linear: linearFor(backend),
    transposeBInMatMul: backend === 'tensorflow',
    chunkBytes,
  };
  const { linear } = kernels;
  const mlp = (x: Tensor2D) => linear(act(linear(x, w.fc1)) as Tensor2D, w.fc2); // [N, W] → [N, 4W] → [N, W]
  // Attention and MLP each in their own tidy, so that one's intermediates are freed before the
  // other's are made (the block's peak memory is the larger of the two, not their sum).
  return (x, batch, mask) =>
    tf.tidy(() => {
      const h = tf.tidy(() =>
        x.add(attention(layerNorm(x, w.ln1), batch, heads, w, kernels, mask)),
      ) as Tensor2D; // [B·T, W]
      return tf.tidy(() => h.add(mlp(layerNorm(h, w.ln2)))) as Tensor2D; // [B·T, W]
    });
}
