/** Augmentations: off = identity, determinism by seed, masks follow the geometry, masks stay 0/1. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  augmentSample,
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

test('each switch alone changes the image only through its own op', () => {
  for (const key of ['rotate', 'rot90', 'brightness_contrast', 'noise', 'blur_jitter'] as const) {
    for (let seed = 0; seed < 4; seed++) {
      const out = augmentSample(sample(), { ...NO_AUGMENT, [key]: true }, new Rng(seed), {
        probabilities: ALWAYS,
      });
      assert.equal(out.applied.length, 1, `${key}: ${out.applied.join(',')}`);
      assert.ok(out.applied[0].startsWith(key === 'blur_jitter' ? '' : key.split('_')[0]));
      if (!['rotate', 'rot90'].includes(key))
        assert.deepEqual(out.mask, sample().mask, `${key} must not move the mask`);
    }
  }
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
