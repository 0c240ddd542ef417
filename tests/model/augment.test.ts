/**
 * Augmentations, each checked for what it does to the pixels: rotations move a marked block
 * where the angle says (image and mask), brightness/contrast is an affine map in the allowed
 * range, noise has the allowed spread, blurs remove high-frequency energy, colour jitter keeps
 * gray gray; off = identity; determinism by seed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  augmentSample,
  brightnessContrast,
  mosaic,
  NO_AUGMENT,
  rot90,
  rotate,
  type AugSample,
} from '../../src/model/augment.js';
import { Rng } from '../../src/io/prng.js';

const S = 32;
/** A white disc off-centre on gray noise; the mask is the disc. */
function sample(seed = 1): AugSample {
  const rng = new Rng(seed);
  const data = new Uint8Array(S * S * 3);
  const mask = new Uint8Array(S * S);
  for (let y = 0; y < S; y++)
    for (let x = 0; x < S; x++) {
      const inside = (x - 10) ** 2 + (y - 12) ** 2 < 36;
      mask[y * S + x] = inside ? 1 : 0;
      data.fill(
        inside ? 255 : 20 + Math.floor(rng.next() * 40),
        (y * S + x) * 3,
        (y * S + x) * 3 + 3,
      );
    }
  return { image: { width: S, height: S, data }, mask };
}
const ALL = {
  rotate: true,
  rot90: true,
  brightness_contrast: true,
  noise: true,
  blur_jitter: true,
  mosaic: 0,
};
const ALWAYS = { rotate: 1, rot90: 1, brightness_contrast: 1, noise: 1, blur_jitter: 1 };

function agreement(s: AugSample): number {
  let same = 0;
  for (let p = 0; p < S * S; p++) if (s.image.data[p * 3] > 137 === (s.mask[p] === 1)) same++;
  return same / (S * S);
}

test('everything off is the identity', () => {
  const input = sample();
  const out = augmentSample(input, NO_AUGMENT, new Rng(3), { probabilities: ALWAYS });
  assert.deepEqual(out.applied, []);
  assert.deepEqual(out.image, input.image);
  assert.deepEqual(out.mask, input.mask);
});

/** An S×S image from a per-pixel gray level (R = G = B). */
function grayImage(level: (x: number, y: number) => number): AugSample['image'] {
  const data = new Uint8Array(S * S * 3);
  for (let y = 0; y < S; y++)
    for (let x = 0; x < S; x++) data.fill(level(x, y), (y * S + x) * 3, (y * S + x) * 3 + 3);
  return { width: S, height: S, data };
}

/** Uniform noise in [lo, hi], one gray level per pixel. */
function noiseImage(seed: number, lo: number, hi: number): AugSample['image'] {
  const rng = new Rng(seed);
  return grayImage(() => lo + Math.floor(rng.next() * (hi - lo + 1)));
}

function mean(values: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i];
  return sum / values.length;
}

/** Mean squared difference of horizontally and vertically adjacent values (all channels). */
function highFrequencyEnergy(image: AugSample['image']): number {
  const { width: w, height: h, data } = image;
  let sum = 0;
  let n = 0;
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let c = 0; c < 3; c++) {
        const v = data[(y * w + x) * 3 + c];
        for (const next of [x + 1 < w ? y * w + x + 1 : -1, y + 1 < h ? (y + 1) * w + x : -1]) {
          if (next < 0) continue;
          sum += (data[next * 3 + c] - v) ** 2;
          n++;
        }
      }
  return sum / n;
}

/** Least-squares out ≈ gain·in + offset over every channel value, and the largest residual. */
function affineFit(input: ArrayLike<number>, output: ArrayLike<number>) {
  const mx = mean(input);
  const my = mean(output);
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < input.length; i++) {
    sxy += (input[i] - mx) * (output[i] - my);
    sxx += (input[i] - mx) ** 2;
  }
  const gain = sxy / sxx;
  const offset = my - gain * mx;
  let residual = 0;
  for (let i = 0; i < input.length; i++)
    residual = Math.max(residual, Math.abs(output[i] - (gain * input[i] + offset)));
  return { gain, offset, residual };
}

/** Intensity-weighted centre of the pixels brighter than 0 (channel 0), and of a mask. */
function centroid(values: ArrayLike<number>, stride: number): [number, number] {
  let sx = 0;
  let sy = 0;
  let total = 0;
  for (let p = 0; p < S * S; p++) {
    const v = values[p * stride];
    sx += v * (p % S);
    sy += v * Math.floor(p / S);
    total += v;
  }
  return [sx / total, sy / total];
}

const CENTRE = (S - 1) / 2;

/** A black image with a white 3×3 block (and the same block as mask) centred at (x, y). */
function marked(x: number, y: number): AugSample {
  const mask = new Uint8Array(S * S);
  for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) mask[(y + dy) * S + x + dx] = 1;
  return { image: grayImage((px, py) => mask[py * S + px] * 255), mask };
}

/** Where a counter-clockwise turn (as seen on screen, y down) by `degrees` about the centre sends (x, y). */
function turned(x: number, y: number, degrees: number): [number, number] {
  const t = (degrees * Math.PI) / 180;
  const [dx, dy] = [x - CENTRE, y - CENTRE];
  return [
    CENTRE + dx * Math.cos(t) + dy * Math.sin(t),
    CENTRE - dx * Math.sin(t) + dy * Math.cos(t),
  ];
}

function alone(key: keyof typeof ALWAYS, input: AugSample, seed: number) {
  return augmentSample(input, { ...NO_AUGMENT, [key]: true }, new Rng(seed), {
    probabilities: ALWAYS,
  });
}

test('rotate turns the image and its mask counter-clockwise about the centre by the angle', () => {
  for (const degrees of [-30, -13, 7, 25, 90]) {
    for (const [x, y] of [
      [CENTRE + 8.5, CENTRE + 0.5],
      [CENTRE + 0.5, CENTRE + 9.5],
    ]) {
      const r = rotate(marked(x, y), degrees);
      const [ex, ey] = turned(x, y, degrees);
      const [ix, iy] = centroid(r.image.data, 3);
      const [mx, my] = centroid(r.mask, 1);
      const where = `(${x}, ${y}) by ${degrees}°: expected (${ex.toFixed(2)}, ${ey.toFixed(2)})`;
      assert.ok(Math.hypot(ix - ex, iy - ey) < 0.3, `${where}, image at (${ix}, ${iy})`);
      assert.ok(Math.hypot(mx - ex, my - ey) < 0.6, `${where}, mask at (${mx}, ${my})`);
    }
  }
});

test('rotate via augmentSample: the drawn angle is within ±30° and moves the mark where it says', () => {
  const [x, y] = [CENTRE + 9.5, CENTRE + 0.5];
  const start = (Math.atan2(-(y - CENTRE), x - CENTRE) * 180) / Math.PI;
  const angles: number[] = [];
  for (let seed = 0; seed < 12; seed++) {
    const out = alone('rotate', marked(x, y), seed);
    assert.deepEqual(out.applied, ['rotate']);
    const [ix, iy] = centroid(out.image.data, 3);
    const [mx, my] = centroid(out.mask, 1);
    const degrees = (Math.atan2(-(iy - CENTRE), ix - CENTRE) * 180) / Math.PI - start;
    assert.ok(Math.abs(degrees) <= 30.5, `seed ${seed}: turned by ${degrees}°`);
    const radius = Math.hypot(x - CENTRE, y - CENTRE);
    assert.ok(
      Math.abs(Math.hypot(ix - CENTRE, iy - CENTRE) - radius) < 0.3,
      `seed ${seed}: radius`,
    );
    assert.ok(Math.hypot(mx - ix, my - iy) < 0.6, `seed ${seed}: the mask moved elsewhere`);
    angles.push(degrees);
  }
  assert.ok(Math.min(...angles) < -5 && Math.max(...angles) > 5, `angles ${angles}`);
});

test('rot90 via augmentSample: k quarter turns counter-clockwise, image and mask alike', () => {
  const seen = new Set<number>();
  for (let seed = 0; seed < 16; seed++) {
    const input = marked(5, 11);
    const out = alone('rot90', input, seed);
    assert.equal(out.applied.length, 1);
    const k = Number(/^rot90x([0-3])$/.exec(out.applied[0])?.[1]);
    assert.ok(Number.isInteger(k), out.applied[0]);
    seen.add(k);
    let [x, y] = [5, 11];
    for (let i = 0; i < k; i++) [x, y] = [y, S - 1 - x];
    assert.deepEqual(centroid(out.image.data, 3), [x, y], `k ${k}`);
    assert.deepEqual(centroid(out.mask, 1), [x, y], `k ${k}`);
  }
  assert.deepEqual([...seen].sort(), [0, 1, 2, 3]);
  // One quarter turn equals rotate by 90°.
  const noise = { image: noiseImage(9, 0, 255), mask: sample().mask };
  const a = rot90(noise, 1);
  const b = rotate(noise, 90);
  assert.ok(a.image.data.every((v, i) => Math.abs(v - b.image.data[i]) <= 1));
  assert.deepEqual(a.mask, b.mask);
});

test('brightness/contrast: out = gain·in + offset with gain in 1 ± 0.2 and offset in ±0.2·255', () => {
  const input = noiseImage(4, 90, 165); // stays inside [0, 255] for every allowed draw
  const fits = [];
  for (let seed = 0; seed < 16; seed++) {
    const out = alone('brightness_contrast', { image: input, mask: sample().mask }, seed);
    assert.deepEqual(out.applied, ['brightness_contrast']);
    assert.deepEqual(out.mask, sample().mask, 'the mask must not change');
    const fit = affineFit(input.data, out.image.data);
    // Rounding to 8 bits leaves ≤ 0.5 around the true map, a little more around the fitted one.
    assert.ok(fit.residual <= 0.75, `seed ${seed}: not affine (residual ${fit.residual})`);
    assert.ok(fit.gain >= 0.8 - 0.01 && fit.gain <= 1.2 + 0.01, `seed ${seed}: gain ${fit.gain}`);
    assert.ok(Math.abs(fit.offset) <= 51 + 2, `seed ${seed}: offset ${fit.offset}`);
    // The mean moves by what the fitted map says it moves.
    const shift = mean(out.image.data) - mean(input.data);
    assert.ok(Math.abs(shift - ((fit.gain - 1) * mean(input.data) + fit.offset)) < 0.5);
    fits.push(fit);
  }
  assert.ok(fits.some((f) => f.offset > 10) && fits.some((f) => f.offset < -10));
  assert.ok(fits.some((f) => f.gain > 1.05) && fits.some((f) => f.gain < 0.95));
  // The function itself: brightness shifts the mean by exactly the offset; contrast scales.
  assert.equal(mean(brightnessContrast(input, 1, 20).data), mean(input.data) + 20);
  assert.deepEqual(
    brightnessContrast(input, 1.2, 0).data,
    input.data.map((v) => Math.round(v * 1.2)),
  );
});

test('noise: zero-mean, independent per pixel, standard deviation in [√10, √50]', () => {
  const flat = grayImage(() => 128);
  const sigmas: number[] = [];
  for (let seed = 0; seed < 8; seed++) {
    const out = alone('noise', { image: flat, mask: sample().mask }, seed);
    assert.deepEqual(out.applied, ['noise']);
    assert.deepEqual(out.mask, sample().mask, 'the mask must not change');
    const d = Array.from(out.image.data, (v) => v - 128);
    const m = mean(d);
    const sigma = Math.sqrt(mean(d.map((v) => (v - m) ** 2)));
    assert.ok(Math.abs(m) < 0.5, `seed ${seed}: mean ${m}`);
    assert.ok(sigma > Math.sqrt(10) * 0.93 && sigma < Math.sqrt(50) * 1.07, `σ ${sigma}`);
    let lag = 0;
    for (let i = 3; i < d.length; i++) lag += (d[i] - m) * (d[i - 3] - m);
    assert.ok(Math.abs(lag / (d.length - 3) / sigma ** 2) < 0.1, 'neighbours correlate');
    sigmas.push(sigma);
  }
  assert.ok(Math.max(...sigmas) - Math.min(...sigmas) > 0.5, `σ never varies: ${sigmas}`);
});

test('blur / colour jitter: blurs lower high-frequency energy and keep the mean; jitter keeps gray gray', () => {
  const noisy = noiseImage(7, 40, 215);
  const ramp = grayImage((x, y) => 60 + 3 * x + y);
  const seen = new Set<string>();
  for (let seed = 0; seed < 24; seed++) {
    const out = alone('blur_jitter', { image: noisy, mask: sample().mask }, seed);
    assert.equal(out.applied.length, 1);
    const [op] = out.applied;
    seen.add(op);
    assert.deepEqual(out.mask, sample().mask, `${op} must not move the mask`);
    if (op === 'blur' || op === 'gaussian_blur') {
      const ratio = highFrequencyEnergy(out.image) / highFrequencyEnergy(noisy);
      assert.ok(ratio < 0.5, `${op} seed ${seed}: high-frequency energy kept ${ratio}`);
      assert.ok(Math.abs(mean(out.image.data) - mean(noisy.data)) < 1, `${op} moved the mean`);
    } else {
      assert.equal(op, 'color_jitter');
      const jittered = alone('blur_jitter', { image: ramp, mask: sample().mask }, seed);
      assert.deepEqual(jittered.applied, ['color_jitter']);
      const d = jittered.image.data;
      for (let p = 0; p < d.length; p += 3)
        assert.ok(d[p] === d[p + 1] && d[p] === d[p + 2], 'a gray image stays gray');
      const fit = affineFit(ramp.data, d);
      assert.ok(fit.residual <= 1.5, `not a brightness/contrast map: ${fit.residual}`);
      assert.ok(fit.gain > 0.6 && fit.gain < 1.5 && Math.abs(fit.gain - 1) > 1e-3, `${fit.gain}`);
      assert.ok(highFrequencyEnergy(out.image) > 0.5 * highFrequencyEnergy(noisy));
    }
  }
  assert.deepEqual([...seen].sort(), ['blur', 'color_jitter', 'gaussian_blur']);
});

test('same seed → same result; another seed differs', () => {
  const a = augmentSample(sample(), ALL, new Rng(42));
  const b = augmentSample(sample(), ALL, new Rng(42));
  assert.deepEqual(a, b);
  const differs = [43, 44, 45].some(
    (seed) =>
      JSON.stringify(augmentSample(sample(), ALL, new Rng(seed)).image.data) !==
      JSON.stringify(a.image.data),
  );
  assert.ok(differs);
});

test('rotation and rot90 move the mask with the image; masks stay binary', () => {
  for (const angle of [-30, -13, 7, 25]) {
    const r = rotate(sample(), angle);
    assert.ok(agreement(r) > 0.97, `rotate ${angle}: agreement ${agreement(r)}`);
    assert.ok(r.mask.every((v) => v === 0 || v === 1));
  }
  for (const k of [1, 2, 3]) assert.equal(agreement(rot90(sample(), k)), 1);
  const r1 = rot90(sample(), 1);
  // Counter-clockwise: the disc centred at (x 10, y 12) moves to (x 12, y 32-1-10).
  assert.equal(r1.mask[(S - 1 - 10) * S + 12], 1);
  assert.deepEqual(rot90(rot90(sample(), 1), 3), sample());
});

test('mosaic tiles four samples with their masks', () => {
  const m = mosaic([sample(1), sample(2), sample(3), sample(4)]);
  assert.ok(agreement(m) > 0.95);
  let count = 0;
  for (const v of m.mask) count += v;
  assert.ok(count > 4 * 20 && count < 4 * 40, `mask pixels ${count}`);
});
