/**
 * 8-connected component labelling of a binary mask (two-pass union-find), numbered like
 * `skimage.measure.label(mask)` (default connectivity = ndim = 2): components 1..R in the
 * raster order of their first pixel, background 0.
 */

export interface Components {
  /** [H·W] component id per pixel, 0 = background. */
  labels: Int32Array;
  /** Number of components R. */
  count: number;
  /** [R+1] pixel count per component (index 0 unused). */
  areas: Uint32Array;
}

function find(parent: Int32Array, x: number): number {
  while (parent[x] !== x) {
    parent[x] = parent[parent[x]];
    x = parent[x];
  }
  return x;
}

function union(parent: Int32Array, a: number, b: number): number {
  const ra = find(parent, a);
  const rb = find(parent, b);
  if (ra === rb) return ra;
  if (ra < rb) {
    parent[rb] = ra;
    return ra;
  }
  parent[ra] = rb;
  return rb;
}

/** Merges a visited neighbour's set into the current pixel's (0 = none yet / background). */
function join(parent: Int32Array, label: number, other: number): number {
  if (other === 0) return label;
  return label === 0 ? find(parent, other) : union(parent, label, other);
}

/**
 * Labels the nonzero pixels of a row-major mask.
 * @param mask [H·W] nonzero = foreground
 */
export function labelComponents(
  mask: ArrayLike<number>,
  height: number,
  width: number,
): Components {
  const n = height * width;
  if (mask.length !== n)
    throw new RangeError(`mask has ${mask.length} values, expected ${height}×${width} = ${n}`);
  const labels = new Int32Array(n);
  const parent = new Int32Array(n + 1);
  let next = 1;
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) {
      const k = row + x;
      if (mask[k] === 0) continue;
      // Already-visited 8-neighbours: left, up-left, up, up-right.
      let label = x > 0 ? join(parent, 0, labels[k - 1]) : 0;
      if (y > 0) {
        const up = k - width;
        if (x > 0) label = join(parent, label, labels[up - 1]);
        label = join(parent, label, labels[up]);
        if (x + 1 < width) label = join(parent, label, labels[up + 1]);
      }
      if (label === 0) {
        label = next++;
        parent[label] = label;
      }
      labels[k] = label;
    }
  }
  // Roots are the smallest provisional id of their set, so numbering roots in increasing
  // order numbers components by their first pixel in raster order.
  const final = new Int32Array(next);
  let count = 0;
  for (let p = 1; p < next; p++) {
    const root = find(parent, p);
    if (root === p) final[p] = ++count;
  }
  for (let p = 1; p < next; p++) final[p] = final[find(parent, p)];
  const areas = new Uint32Array(count + 1);
  for (let k = 0; k < n; k++) {
    const l = labels[k];
    if (l === 0) continue;
    const f = final[l];
    labels[k] = f;
    areas[f]++;
  }
  return { labels, count, areas };
}
