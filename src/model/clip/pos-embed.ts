/**
 * Resizing the vision positional grid to another input size, exactly as PyTorch's
 * F.interpolate(align_corners=False) does in three modes (tfjs has no bicubic resize):
 * - `bicubic_antialias` (antialias=True, what VCP-CLIP's and open_clip's resize_pos_embed
 *   call): Keys' cubic with a = −0.5, taps clipped to the grid and renormalised, and the
 *   support widened by the scale when downsampling (Pillow's filter);
 * - `bicubic` (Hugging Face's interpolate_pos_encoding): a = −0.75, taps clamped to the border;
 * - `bilinear`: source index clamped at 0.
 * Every mode is separable, so a resize is two small matrix products, computed here once per
 * input size in float64 on the CPU.
 */
import type { PosEmbedResize } from './config.js';

/** Keys' cubic convolution kernel with parameter a, at distance x. */
function cubic(x: number, a: number): number {
  const d = Math.abs(x);
  if (d < 1) return ((a + 2) * d - (a + 3)) * d * d + 1;
  if (d < 2) return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a;
  return 0;
}

/** PyTorch's upsample_bicubic2d constant (as TensorFlow's and OpenCV's). */
const A_PLAIN = -0.75;
/** PyTorch's antialiased bicubic constant (Keys' a = −0.5, as Pillow). */
const A_ANTIALIAS = -0.5;

/**
 * Interpolation weights [outSize, inSize] (row-major) of one axis.
 * Plain modes: source index = (dst + 0.5)·in/out − 0.5; bilinear clamps it at 0 and bicubic
 * does not, bicubic clamps its four taps to the border (as PyTorch's CPU kernels do).
 * Antialiased: centre = (dst + 0.5)·scale, taps j within ±support of it (support = 2·scale when
 * downsampling, else 2), weight cubic((j − centre + 0.5)/max(scale, 1)), normalised to sum 1
 * (PyTorch's _compute_weights_aa).
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
    if (mode === 'bicubic_antialias') {
      const support = scale >= 1 ? 2 * scale : 2;
      const stretch = scale >= 1 ? scale : 1;
      const centre = scale * (dst + 0.5);
      // Math.trunc as PyTorch's int64 casts (towards zero).
      const from = Math.max(Math.trunc(centre - support + 0.5), 0);
      const to = Math.min(Math.trunc(centre + support + 0.5), inSize);
      let total = 0;
      for (let j = from; j < to; j++) {
        const w = cubic((j - centre + 0.5) / stretch, A_ANTIALIAS);
        weights[row + j] = w;
        total += w;
      }
      if (total !== 0) for (let j = from; j < to; j++) weights[row + j] /= total;
      continue;
    }
    const real = scale * (dst + 0.5) - 0.5;
    if (mode === 'bicubic') {
      const index = Math.floor(real);
      const t = real - index;
      for (let k = 0; k < 4; k++) weights[row + clamp(index - 1 + k)] += cubic(t + 1 - k, A_PLAIN);
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

/** A grid side: one number for a square grid, or [height, width]. */
export type GridSize = number | readonly [number, number];

const sides = (size: GridSize): [number, number] =>
  typeof size === 'number' ? [size, size] : [size[0], size[1]];

/**
 * Resizes a grid of tokens [h·w, C] (row-major, as ViT lays out patches) to [H·W, C].
 * @param grid [h·w, C]
 * @param from the grid's side(s), h×w
 * @param to the new side(s), H×W
 */
export function resizeGrid(
  grid: Float32Array,
  from: GridSize,
  to: GridSize,
  channels: number,
  mode: PosEmbedResize,
): Float32Array {
  const [h, w] = sides(from);
  const [nh, nw] = sides(to);
  if (grid.length !== h * w * channels)
    throw new Error(`resizeGrid: expected ${h}×${w}×${channels} values, got ${grid.length}`);
  const ry = interpolationMatrix(h, nh, mode); // [nh, h]
  const rx = interpolationMatrix(w, nw, mode); // [nw, w]
  const rows = new Float64Array(nh * w * channels); // [nh, w, C]: resized along y
  for (let oy = 0; oy < nh; oy++) {
    for (let iy = 0; iy < h; iy++) {
      const k = ry[oy * h + iy];
      if (k === 0) continue;
      const src = iy * w * channels;
      const dst = oy * w * channels;
      for (let j = 0; j < w * channels; j++) rows[dst + j] += k * grid[src + j];
    }
  }
  const out = new Float32Array(nh * nw * channels); // [nh, nw, C]
  const acc = new Float64Array(channels);
  for (let oy = 0; oy < nh; oy++) {
    for (let ox = 0; ox < nw; ox++) {
      acc.fill(0);
      for (let ix = 0; ix < w; ix++) {
        const k = rx[ox * w + ix];
        if (k === 0) continue;
        const src = (oy * w + ix) * channels;
        for (let c = 0; c < channels; c++) acc[c] += k * rows[src + c];
      }
      out.set(acc, (oy * nw + ox) * channels);
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
