/**
 * VCP-CLIP against the authors' own code (python/golden/make_vcp_public_golden.py, run on
 * github.com/xiaozhen228/VCP-CLIP; commit in tests/fixtures/vcp-clip-public/README.md), on the
 * native and wasm backends: from pixels through the vision tower (positional grid resized when
 * the input size differs from the CLIP's) to text embeddings, every layer's map of both branches,
 * the fused map, the score and the loss, for both activations and three sizes; one Adam step.
 * The parameters come from a .pth the public train.py's save code wrote, read by io/torch-zip.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { initBackend, type BackendName } from '../../../../src/model/backend.js';
import type { ClipModel } from '../../../../src/model/clip/model.js';
import type { Activation } from '../../../../src/model/clip/config.js';
import {
  buildPublicClip,
  buildPublicMethod,
  compareAdamStep,
  compareForward,
  compareGradients,
  loadPublicFixture,
  NOISE_ONLY_GRADIENT,
  publicFixtureMissing,
  type PublicFixture,
} from './public-fixture.js';

const TOL = 1e-4;
const missing = publicFixtureMissing();
const fx: PublicFixture | null = missing ? null : await loadPublicFixture();

for (const backend of ['tensorflow', 'wasm'] as BackendName[]) {
  describe(`vcp-clip equals the authors' code on ${backend}`, { skip: missing ?? false }, () => {
    const clips = new Map<Activation, ClipModel>();
    before(async () => {
      const info = await initBackend(backend);
      assert.equal(info.name, backend);
      for (const activation of ['gelu', 'quick_gelu'] as const)
        clips.set(activation, buildPublicClip(fx!, activation, 'bicubic_antialias'));
    });
    after(() => {
      for (const clip of clips.values()) clip.dispose();
    });

    for (const c of fx?.meta.cases ?? []) {
      test(`${c.tag}: forward from pixels, every tensor within ${TOL}`, () => {
        const clip = clips.get(c.activation)!;
        const method = buildPublicMethod(fx!, clip, c);
        try {
          const bad = compareForward(fx!, method, clip, c).filter((r) => !(r.err <= TOL));
          assert.deepEqual(bad, [], `max |Δ| above ${TOL}: ${JSON.stringify(bad)}`);
        } finally {
          method.dispose();
        }
      });
    }

    for (const adam of (fx?.meta.adam ?? []).filter((a) => a.gradients)) {
      test(`gradients of every parameter at ${adam.activation} ${adam.image_size} px`, () => {
        const clip = clips.get(adam.activation)!;
        const c = fx!.meta.cases.find(
          (x) =>
            x.activation === adam.activation && x.image_size === adam.image_size && !x.checkpoint,
        )!;
        const method = buildPublicMethod(fx!, clip, c);
        try {
          const results = compareGradients(fx!, method, clip, adam);
          const largest = Math.max(...results.map((r) => r.theirs));
          for (const r of results) {
            if (NOISE_ONLY_GRADIENT.includes(r.name)) {
              // Zero analytically: float noise on both sides, far below every real gradient.
              assert.ok(r.ours <= 1e-4 * largest && r.theirs <= 1e-4 * largest, JSON.stringify(r));
            } else {
              // The public gradients are stored as float16 (relative precision 5e-4).
              assert.ok(r.relative <= 2e-3, JSON.stringify(r));
            }
          }
        } finally {
          method.dispose();
        }
      });
    }

    for (const adam of fx?.meta.adam ?? []) {
      test(`one Adam step at ${adam.activation} ${adam.image_size} px: loss and every parameter`, () => {
        const clip = clips.get(adam.activation)!;
        const c = fx!.meta.cases.find(
          (x) =>
            x.activation === adam.activation && x.image_size === adam.image_size && !x.checkpoint,
        )!;
        const method = buildPublicMethod(fx!, clip, c);
        try {
          const { loss, params } = compareAdamStep(fx!, method, clip, adam);
          assert.ok(loss <= TOL, `loss |Δ| ${loss}`);
          const bad = params.filter((r) => !(r.err <= TOL) || !(r.noisyStep <= 1 + 1e-3));
          assert.deepEqual(bad, [], `parameters after the step: ${JSON.stringify(bad)}`);
          // The steps that follow float noise are few: all but the zero-gradient tensors are checked.
          const noisy = params.reduce((n, r) => n + r.noisy, 0);
          const total = params.reduce((n, r) => n + r.total, 0);
          assert.ok(noisy < 0.01 * total, `${noisy} of ${total} elements unchecked`);
        } finally {
          method.dispose();
        }
      });
    }
  });
}
