/**
 * Post-processing of anomaly maps, matching the public implementation: scipy's
 * `ndimage.gaussian_filter` and the min–max normalisation over all maps of a product.
 */

/** The normalised kernel of `scipy.ndimage._gaussian_kernel1d(sigma, 0, radius)`. */
export function gaussianKernel(sigma: number, truncate = 4.0): Float64Array {
  if (!(sigma > 0)) throw new RangeError(`gaussian sigma must be > 0, got ${sigma}`);
  const radius = Math.trunc(truncate * sigma + 0.5);
  const kernel = new Float64Array(2 * radius + 1);
  const c = -0.5 / (sigma * sigma);
  let sum = 0;
  for (let x = -radius; x <= radius; x++) sum += kernel[x + radius] = Math.exp(c * (x * x));
  for (let k = 0; k < kernel.length; k++) kernel[k] /= sum;
  return kernel;
}

/** Index into [0, n) for scipy mode 'reflect' (d c b a | a b c d | d c b a), any offset. */
function reflectIndex(i: number, n: number): number {
  const period = 2 * n;
  let m = i % period;
  if (m < 0) m += period;
  return m < n ? m : period - 1 - m;
}

/**
 * One 1-D pass along rows (stride 1) or columns (stride = width), as ndimage's correlate1d
 * does for a symmetric kernel: centre term first, then the mirrored pairs from the outermost
 * inwards, accumulated in float64 and stored in the output's type.
 */
function pass(
  input: Float32Array | Float64Array,
  output: Float32Array | Float64Array,
  lines: number,
  length: number,
  lineStride: number,
  step: number,
  kernel: Float64Array,
): void {
  const radius = (kernel.length - 1) / 2;
  const buffer = new Float64Array(length + 2 * radius);
  for (let line = 0; line < lines; line++) {
    const base = line * lineStride;
    for (let k = -radius; k < length + radius; k++)
      buffer[k + radius] = input[base + reflectIndex(k, length) * step];
    for (let k = 0; k < length; k++) {
      const c = k + radius;
      let acc = buffer[c] * kernel[radius];
      for (let j = -radius; j < 0; j++) acc += (buffer[c + j] + buffer[c - j]) * kernel[radius + j];
      output[base + k * step] = acc;
    }
  }
}

/**
 * `scipy.ndimage.gaussian_filter(map, sigma, mode='reflect', truncate)` of a row-major 2-D map:
 * axis 0 (columns) first, then axis 1, the intermediate stored in the input's precision (so a
 * float32 map is rounded to float32 between passes, as scipy does).
 * @param map [H·W]
 * @returns a new array of the same type, [H·W]
 */
export function gaussianFilter<T extends Float32Array | Float64Array>(
  map: T,
  height: number,
  width: number,
  sigma: number,
  truncate = 4.0,
): T {
  if (map.length !== height * width)
    throw new RangeError(`map has ${map.length} values, expected ${height}×${width}`);
  const kernel = gaussianKernel(sigma, truncate);
  const mid = new (map.constructor as new (n: number) => T)(map.length);
  const out = new (map.constructor as new (n: number) => T)(map.length);
  pass(map, mid, width, height, 1, width, kernel); // axis 0: one line per column
  pass(mid, out, height, width, width, 1, kernel); // axis 1: one line per row
  return out;
}

/**
 * Min–max normalisation over all maps of a product, in float32 like the public `normalize`:
 * (x − min) / (max − min) with min and max over every pixel of every map.
 * @param maps each [H·W] (sizes may differ)
 * @param options.inPlace overwrite the given maps instead of making new ones (saves a copy)
 * @returns maps in [0, 1]; constant input (max = min, where numpy gives NaN) → all zeros
 */
export function minMaxNormalise(
  maps: readonly Float32Array[],
  options: { inPlace?: boolean } = {},
): Float32Array[] {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const map of maps) {
    for (let k = 0; k < map.length; k++) {
      const v = map[k];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  const f = Math.fround;
  const range = f(hi - lo);
  return maps.map((map) => {
    const out = options.inPlace ? map : new Float32Array(map.length);
    if (range > 0) for (let k = 0; k < map.length; k++) out[k] = f(map[k] - lo) / range;
    else out.fill(0);
    return out;
  });
}
