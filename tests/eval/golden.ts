/** Loads the golden JSON fixtures of tests/fixtures/eval (made by python/golden/make_metrics_golden.py). */
import { readFileSync } from 'node:fs';

export interface StoredArray {
  dtype: string;
  shape: number[];
  b64: string;
}

const TYPES = { f4: Float32Array, f8: Float64Array, u1: Uint8Array, i4: Int32Array } as const;

/** Decodes a base64 little-endian array (this machine is little-endian, as every Node target). */
export function decode(stored: StoredArray): Float32Array | Float64Array | Uint8Array | Int32Array {
  const Type = TYPES[stored.dtype as keyof typeof TYPES];
  if (!Type) throw new Error(`fixture dtype ${stored.dtype} not handled`);
  const bytes = Buffer.from(stored.b64, 'base64');
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return new Type(copy.buffer);
}

export function fixture<T>(name: string): T {
  return JSON.parse(
    readFileSync(new URL(`../fixtures/eval/${name}`, import.meta.url), 'utf8'),
  ) as T;
}

/** |actual − expected| <= tol, with a message naming what is compared. */
export function near(
  actual: number | null | undefined,
  expected: number,
  tol: number,
  what: string,
): void {
  if (actual === expected) return;
  if (actual === null || actual === undefined || !(Math.abs(actual - expected) <= tol)) {
    throw new Error(`${what}: got ${actual}, expected ${expected} (tolerance ${tol})`);
  }
}

/** Splits a stored [n, H, W] stack into per-image arrays. */
export function unstack(stored: StoredArray): {
  images: (Float32Array | Uint8Array)[];
  h: number;
  w: number;
} {
  const all = decode(stored) as Float32Array | Uint8Array;
  const [n, h, w] = stored.shape;
  return {
    images: Array.from({ length: n }, (_, i) => all.slice(i * h * w, (i + 1) * h * w)),
    h,
    w,
  };
}
