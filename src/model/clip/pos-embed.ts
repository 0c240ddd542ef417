/**
 * Resizing the vision positional grid to another input size, exactly as PyTorch's
 * F.interpolate(mode='bicubic' | 'bilinear', align_corners=False) does (tfjs has no bicubic
 * resize). Both modes are separable, so a resize is two small matrix products, computed here
 * once per input size in float64 on the CPU.
 */
import type { PosEmbedResize } from './config.js';

/** PyTorch's cubic convolution constant (upsample_bicubic2d, as in TensorFlow's and OpenCV's). */
const A = -0.75;

const cubic1 = (x: number): number => ((A + 2) * x - (A + 3)) * x * x + 1; // |x| <= 1
const cubic2 = (x: number): number => ((A * x - 5 * A) * x + 8 * A) * x - 4 * A; // 1 < |x| < 2

/**
 * Interpolation weights [outSize, inSize] (row-major) of one axis.
 * Source index = (dst + 0.5)·in/out − 0.5; bilinear clamps it at 0 and bicubic does not, and
 * bicubic clamps its four taps to the border (both as PyTorch's CPU kernels do).
 */
export function interpolationMatrix(
  inSize: number,
  outSize: number,
  mode: PosEmbedResize,
): Float64Array {
  const weights = new Float64Array(outSize * inSize);
  const scale = inSize / outSize;
  const clamp = (i: number): number => Math.min(Math.max(i, 0), inSize - 1);
  for (let dst = 0; dst < outSize; dst++) {
    const row = dst * inSize;
    const real = scale * (dst + 0.5) - 0.5;
    if (mode === 'bicubic') {
      const index = Math.floor(real);
      const t = real - index;
      const taps = [cubic2(t + 1), cubic1(t), cubic1(1 - t), cubic2(2 - t)];
      for (let k = 0; k < 4; k++) weights[row + clamp(index - 1 + k)] += taps[k];
    } else {
      const source = Math.max(real, 0);
      const i0 = Math.floor(source);
      const i1 = i0 < inSize - 1 ? i0 + 1 : i0;
      const lambda = source - i0;
      weights[row + i0] += 1 - lambda;
      weights[row + i1] += lambda;
    }
  }
  return weights;
}

/**
 * Resizes a square grid of tokens [g·g, C] (row-major, as ViT lays out patches) to [n·n, C].
 * @param grid [g·g, C]
 */
export function resizeGrid(
  grid: Float32Array,
  g: number,
  n: number,
  channels: number,
  mode: PosEmbedResize,
): Float32Array {
  if (grid.length !== g * g * channels)
    throw new Error(`resizeGrid: expected ${g}×${g}×${channels} values, got ${grid.length}`);
  const r = interpolationMatrix(g, n, mode); // [n, g]
  const rows = new Float64Array(n * g * channels); // [n, g, C]: resized along y
  for (let oy = 0; oy < n; oy++) {
    for (let iy = 0; iy < g; iy++) {
      const w = r[oy * g + iy];
      if (w === 0) continue;
      const src = iy * g * channels;
      const dst = oy * g * channels;
      for (let j = 0; j < g * channels; j++) rows[dst + j] += w * grid[src + j];
    }
  }
  const out = new Float32Array(n * n * channels); // [n, n, C]
  const acc = new Float64Array(channels);
  for (let oy = 0; oy < n; oy++) {
    for (let ox = 0; ox < n; ox++) {
      acc.fill(0);
      for (let ix = 0; ix < g; ix++) {
        const w = r[ox * g + ix];
        if (w === 0) continue;
        const src = (oy * g + ix) * channels;
        for (let c = 0; c < channels; c++) acc[c] += w * rows[src + c];
      }
      out.set(acc, (oy * n + ox) * channels);
    }
  }
  return out;
}

/**
 * Positional embeddings for a g×g grid resized to n×n; the class token's row is kept as is.
 * @param positions [1 + g·g, W]
 * @returns [1 + n·n, W]
 */
export function resizePosEmbed(
  positions: Float32Array,
  width: number,
  g: number,
  n: number,
  mode: PosEmbedResize,
): Float32Array {
  if (g === n) return positions.slice();
  const out = new Float32Array((1 + n * n) * width);
  out.set(positions.subarray(0, width), 0);
  out.set(resizeGrid(positions.subarray(width), g, n, width, mode), width);
  return out;
}
