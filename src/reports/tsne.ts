/**
 * Exact t-SNE (van der Maaten & Hinton 2008) for a few hundred points: per-point perplexity
 * calibration by binary search on the Gaussian precision, symmetrised P, early exaggeration,
 * gradient descent with momentum and per-coordinate gains (as the reference tsne.py).
 * O(n²) per iteration; seeded, so the same input and seed give the same embedding.
 */
import { Rng } from '../io/prng.js';

export interface TsneOptions {
  /** Effective number of neighbours (default 30, capped at (n − 1) / 3). */
  perplexity?: number;
  /** Gradient steps (default 1000). */
  iterations?: number;
  seed?: number;
  learningRate?: number;
  /** P multiplier during the first `exaggerationIters` steps (default 12 for 250 steps). */
  exaggeration?: number;
  exaggerationIters?: number;
}

/** Squared Euclidean distances of n points of dimension d ([n, d] row-major) → [n, n]. */
export function squaredDistances(x: Float64Array, n: number, d: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      let s = 0;
      for (let k = 0; k < d; k++) {
        const diff = x[i * d + k] - x[j * d + k];
        s += diff * diff;
      }
      out[i * n + j] = s;
      out[j * n + i] = s;
    }
  }
  return out;
}

/**
 * Conditional probabilities p_{j|i} whose entropy is log(perplexity) for every i, found by
 * bisection on the precision β_i = 1/(2σ_i²); then P = (P + Pᵀ) / 2n.
 */
export function jointProbabilities(
  dist: Float64Array,
  n: number,
  perplexity: number,
  tol = 1e-5,
  maxSteps = 100,
): Float64Array {
  const target = Math.log(perplexity);
  const cond = new Float64Array(n * n);
  const row = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let beta = 1;
    let lo = -Infinity;
    let hi = Infinity;
    // Distances relative to the nearest neighbour keep exp() away from underflow.
    let minD = Infinity;
    for (let j = 0; j < n; j++) if (j !== i) minD = Math.min(minD, dist[i * n + j]);
    for (let step = 0; step < maxSteps; step++) {
      let sum = 0;
      let weighted = 0;
      for (let j = 0; j < n; j++) {
        const p = j === i ? 0 : Math.exp(-(dist[i * n + j] - minD) * beta);
        row[j] = p;
        sum += p;
        weighted += p * (dist[i * n + j] - minD);
      }
      const entropy = Math.log(sum) + (beta * weighted) / sum; // H = log Σ + β⟨d⟩
      for (let j = 0; j < n; j++) cond[i * n + j] = row[j] / sum;
      const diff = entropy - target;
      if (Math.abs(diff) < tol) break;
      if (diff > 0) {
        lo = beta;
        beta = hi === Infinity ? beta * 2 : (beta + hi) / 2;
      } else {
        hi = beta;
        beta = lo === -Infinity ? beta / 2 : (beta + lo) / 2;
      }
    }
  }
  const p = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++)
      p[i * n + j] = Math.max((cond[i * n + j] + cond[j * n + i]) / (2 * n), 1e-12);
  }
  return p;
}

/** 2-D embedding ([n, 2] row-major) of n points of dimension d. */
export function tsne(
  x: Float64Array,
  n: number,
  d: number,
  options: TsneOptions = {},
): Float64Array {
  if (n < 4) throw new Error(`t-SNE needs at least 4 points, got ${n}`);
  const perplexity = Math.min(options.perplexity ?? 30, (n - 1) / 3);
  const iterations = options.iterations ?? 1000;
  const eta = options.learningRate ?? Math.max(n / 12, 50);
  const exaggeration = options.exaggeration ?? 12;
  const exIters = options.exaggerationIters ?? 250;
  const rng = new Rng(options.seed ?? 0);

  const p = jointProbabilities(squaredDistances(x, n, d), n, perplexity);
  const y = new Float64Array(n * 2).map(() => rng.normal() * 1e-4);
  const update = new Float64Array(n * 2);
  const gains = new Float64Array(n * 2).fill(1);
  const num = new Float64Array(n * n);
  const grad = new Float64Array(n * 2);

  for (let it = 0; it < iterations; it++) {
    const ex = it < exIters ? exaggeration : 1;
    const momentum = it < exIters ? 0.5 : 0.8;
    let sumNum = 0;
    for (let i = 0; i < n; i++) {
      for (let j = i + 1; j < n; j++) {
        const dx = y[2 * i] - y[2 * j];
        const dy = y[2 * i + 1] - y[2 * j + 1];
        const q = 1 / (1 + dx * dx + dy * dy); // Student-t kernel
        num[i * n + j] = q;
        num[j * n + i] = q;
        sumNum += 2 * q;
      }
    }
    grad.fill(0);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        if (i === j) continue;
        const q = num[i * n + j];
        const mult = 4 * (ex * p[i * n + j] - Math.max(q / sumNum, 1e-12)) * q;
        grad[2 * i] += mult * (y[2 * i] - y[2 * j]);
        grad[2 * i + 1] += mult * (y[2 * i + 1] - y[2 * j + 1]);
      }
    }
    let mx = 0;
    let my = 0;
    for (let k = 0; k < n * 2; k++) {
      gains[k] =
        Math.sign(grad[k]) !== Math.sign(update[k])
          ? gains[k] + 0.2
          : Math.max(gains[k] * 0.8, 0.01);
      update[k] = momentum * update[k] - eta * gains[k] * grad[k];
      y[k] += update[k];
    }
    for (let i = 0; i < n; i++) {
      mx += y[2 * i];
      my += y[2 * i + 1];
    }
    for (let i = 0; i < n; i++) {
      y[2 * i] -= mx / n;
      y[2 * i + 1] -= my / n;
    }
  }
  return y;
}
