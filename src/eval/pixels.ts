/**
 * Collects the pixels of one product, one image at a time, into the compact sorted form every
 * pixel metric is computed from: normal-pixel scores sorted, anomalous-pixel scores sorted
 * with the ground-truth region each belongs to, and the region areas. Exact (no histogram):
 * 4 bytes per normal pixel + 8 per anomalous pixel once sorted; while sorting, the per-image
 * chunks, the radix staging buffer and the output coexist until V8 collects the chunks, so a
 * 100-image product at 518×518 (27M pixels) peaks at ~3 × 104 MB (bench/metrics.bench.ts
 * measures ~385 MB peak RSS for the whole process).
 */
import { labelComponents } from './components.js';
import { radixSortChunks } from './sort.js';

/** The sorted pixels of a product; input of the pixel metrics (roc, pr, pro). */
export interface ProductPixels {
  /** [P] anomalous-pixel scores, ascending. */
  positives: Float32Array;
  /** [P] index (0..R-1) of the ground-truth region of each entry of `positives`. */
  positiveRegion: Uint32Array;
  /** [N] normal-pixel scores, ascending. */
  negatives: Float32Array;
  /** [R] pixel count of every 8-connected ground-truth region of every image, in image order. */
  regionAreas: Uint32Array;
  /** Smallest and largest score over all pixels (+Infinity/−Infinity when empty). */
  min: number;
  max: number;
  images: number;
}

/** Accumulates (map, mask) pairs of one product; `finish()` hands over the sorted pixels. */
export class PixelAccumulator {
  private negChunks: Float32Array[] = [];
  private posChunks: Float32Array[] = [];
  private regionChunks: Uint32Array[] = [];
  private areas: number[] = [];
  private min = Number.POSITIVE_INFINITY;
  private max = Number.NEGATIVE_INFINITY;
  private images = 0;
  private finished = false;

  /**
   * Adds one image.
   * @param map [H·W] anomaly scores, row-major; NaN is rejected
   * @param mask [H·W] ground truth, nonzero = anomalous
   * @param name used in error messages
   */
  add(
    map: Float32Array,
    mask: Uint8Array,
    height: number,
    width: number,
    name = `image ${this.images}`,
  ): void {
    if (this.finished) throw new Error('PixelAccumulator.add after finish()');
    const n = height * width;
    if (map.length !== n)
      throw new RangeError(`${name}: map has ${map.length} values, expected ${height}×${width}`);
    if (mask.length !== n)
      throw new RangeError(`${name}: mask has ${mask.length} values, expected ${height}×${width}`);
    const { labels, count, areas } = labelComponents(mask, height, width);
    const regionBase = this.areas.length;
    for (let r = 1; r <= count; r++) this.areas.push(areas[r]);
    let P = 0;
    for (let k = 0; k < n; k++) if (labels[k] !== 0) P++;
    const pos = new Float32Array(P);
    const region = new Uint32Array(P);
    const neg = new Float32Array(n - P);
    let p = 0;
    let q = 0;
    let lo = this.min;
    let hi = this.max;
    for (let k = 0; k < n; k++) {
      const s = map[k];
      if (s !== s)
        throw new RangeError(
          `${name}: score at pixel (${Math.floor(k / width)}, ${k % width}) is NaN`,
        );
      if (s < lo) lo = s;
      if (s > hi) hi = s;
      const l = labels[k];
      if (l !== 0) {
        pos[p] = s;
        region[p++] = regionBase + l - 1;
      } else {
        neg[q++] = s;
      }
    }
    this.min = lo;
    this.max = hi;
    this.negChunks.push(neg);
    this.posChunks.push(pos);
    this.regionChunks.push(region);
    this.images++;
  }

  /** Sorts what was added and releases the per-image buffers; the accumulator is spent. */
  finish(): ProductPixels {
    this.finished = true;
    const negatives = radixSortChunks(this.negChunks).values;
    this.negChunks = [];
    const sortedPos = radixSortChunks(this.posChunks, this.regionChunks);
    this.posChunks = [];
    this.regionChunks = [];
    return {
      positives: sortedPos.values,
      positiveRegion: sortedPos.payload as Uint32Array,
      negatives,
      regionAreas: Uint32Array.from(this.areas),
      min: this.min,
      max: this.max,
      images: this.images,
    };
  }
}

/** Convenience for whole products held in memory: maps and masks image by image. */
export function collectPixels(
  maps: readonly Float32Array[],
  masks: readonly Uint8Array[],
  height: number,
  width: number,
): ProductPixels {
  if (maps.length !== masks.length)
    throw new RangeError(`${maps.length} maps but ${masks.length} masks`);
  const acc = new PixelAccumulator();
  maps.forEach((map, i) => acc.add(map, masks[i], height, width));
  return acc.finish();
}
