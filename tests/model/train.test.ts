/**
 * Training loop: accumulated micro-batch gradients equal the full-batch gradient (every
 * backend), same seed → same losses and parameters, flat tensor count across steps, NaN stops
 * the run naming epoch and step, abort stops cleanly, the loss falls on a learnable toy task.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { initBackend, type BackendName } from '../../src/model/backend.js';
import type { ClipModel } from '../../src/model/clip/model.js';
import type { AugSample } from '../../src/model/augment.js';
import { NO_AUGMENT } from '../../src/model/augment.js';
import { FeatureExtractor } from '../../src/model/features.js';
import { createOptimizer } from '../../src/model/methods/optim.js';
import { tf } from '../../src/model/tf.js';
import { trainMethod, type TrainSchedule } from '../../src/model/train.js';
import type { Sample } from '../../src/datasets/types.js';
import { Rng } from '../../src/io/prng.js';
import type { VcpClipMethod } from '../../src/model/methods/vcp-clip/model.js';
import {
  buildClip,
  buildMethod,
  type Fixture,
  fixtureMissing,
  loadFixture,
} from './methods/vcp-clip/fixture.js';

const missing = fixtureMissing();
const fx: Fixture | null = missing ? null : await loadFixture();
const S = 24;

/** A bright square on a dark textured background; the mask is the square (anomalous half the time). */
function toySample(index: number): AugSample {
  const rng = new Rng(1000 + index);
  const data = new Uint8Array(S * S * 3);
  for (let i = 0; i < data.length; i++) data[i] = 40 + Math.floor(rng.next() * 30);
  const mask = new Uint8Array(S * S);
  if (index % 2 === 1) {
    const x0 = rng.int(0, S - 9);
    const y0 = rng.int(0, S - 9);
    for (let y = y0; y < y0 + 8; y++)
      for (let x = x0; x < x0 + 8; x++) {
        mask[y * S + x] = 1;
        data.fill(230, (y * S + x) * 3, (y * S + x) * 3 + 3);
      }
  }
  return { image: { width: S, height: S, data }, mask };
}

const samples: Sample[] = Array.from({ length: 6 }, (_, i) => ({
  imagePath: `toy/${i}.png`,
  maskPath: i % 2 ? `toy/${i}_mask.png` : null,
  product: i < 3 ? 'a' : 'b',
  defect: i % 2 ? 'square' : 'good',
  label: (i % 2) as 0 | 1,
}));
const load = async (sample: Sample): Promise<AugSample> =>
  toySample(Number(/(\d+)\.png$/.exec(sample.imagePath)![1]));

function setup(
  clip: ClipModel,
  overrides = {},
): { method: VcpClipMethod; extractor: FeatureExtractor } {
  const method = buildMethod(fx!, clip, { image_size: S, lr: 1e-3, ...overrides }, { load: false });
  const extractor = new FeatureExtractor({ clip, weightsHash: 'test', request: method.features });
  return { method, extractor };
}

const schedule = (over: Partial<TrainSchedule> = {}): TrainSchedule => ({
  epochs: 1,
  batch_size: 4,
  micro_batch: 4,
  augment: { ...NO_AUGMENT },
  ...over,
});

function snapshot(method: VcpClipMethod): Map<string, Float32Array> {
  return new Map([...method.parameters()].map(([n, v]) => [n, v.dataSync() as Float32Array]));
}

/** Zero gradient by construction (see the VCP-CLIP README): Adam's first step turns their rounding noise into ±lr. */
const SHIFT_ONLY = ['post_vcp.k_proj.bias', 'pre_vcp.mininet.bias'];

function maxDiff(
  a: Map<string, Float32Array>,
  b: Map<string, Float32Array>,
  skip: string[] = [],
): number {
  let m = 0;
  for (const [name, x] of a) {
    if (skip.includes(name)) continue;
    const y = b.get(name)!;
    for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  }
  return m;
}

for (const backend of ['tensorflow', 'wasm', 'cpu'] as BackendName[]) {
  describe(`gradient accumulation on ${backend}`, { skip: missing ?? false }, () => {
    let clip: ClipModel;
    before(async () => {
      await initBackend(backend);
      clip = buildClip(fx!);
    });
    after(() => clip.dispose());

    test('micro-batches 4, 2+2 and 3+1 give the full-batch update (dropout on, shared masks)', async () => {
      const results: Map<string, Float32Array>[] = [];
      const losses: number[] = [];
      for (const micro of [4, 2, 3]) {
        const { method, extractor } = setup(clip, { dtp_dropout: 0.3 });
        const out = await trainMethod({
          method,
          extractor,
          samples: samples.slice(0, 4),
          schedule: schedule({ micro_batch: micro }),
          seed: 5,
          load,
        });
        results.push(snapshot(method));
        losses.push(out.losses[0]);
        method.dispose();
      }
      for (let k = 1; k < 3; k++) {
        assert.ok(
          Math.abs(losses[k] - losses[0]) < 1e-4 * Math.abs(losses[0]),
          `loss ${losses[k]} vs ${losses[0]}`,
        );
        const d = maxDiff(results[k], results[0], SHIFT_ONLY);
        assert.ok(d < 2e-5, `max |Δparam| after one step = ${d}`);
      }
    });
  });
}

describe('training loop', { skip: missing ?? false }, () => {
  let clip: ClipModel;
  before(async () => {
    await initBackend('tensorflow');
    clip = buildClip(fx!);
  });
  after(() => clip.dispose());

  test('accumulated gradients equal full-batch gradients tensor by tensor', () => {
    const { method, extractor } = setup(clip, { dtp_dropout: 0 });
    void extractor;
    const opt = createOptimizer(method);
    const s2 = method.features.imageSize;
    const feats = (n: number, off: number) => ({
      patchTokens: method.features.layers.map(
        () =>
          tf.randomNormal(
            [n, 9, clip.config.vision.width],
            0,
            1,
            'float32',
            7 + off,
          ) as tf.Tensor3D,
      ),
      global: tf.randomNormal(
        [n, clip.config.projectionDim],
        0,
        1,
        'float32',
        11 + off,
      ) as tf.Tensor2D,
    });
    const full = feats(4, 0);
    const masks = tf.tidy(
      () => tf.randomUniform([4, s2, s2], 0, 1, 'float32', 3).greater(0.7).toFloat() as tf.Tensor3D,
    );
    const labels = tf.ones([4]) as tf.Tensor1D;
    const whole = opt.gradients(() =>
      method.loss(method.forward(full, { training: true }), masks, labels),
    );
    const part = (a: number, b: number) => {
      const f = {
        patchTokens: full.patchTokens.map((t) => t.slice([a, 0, 0], [b - a, -1, -1])),
        global: full.global.slice([a, 0], [b - a, -1]),
      };
      const m = masks.slice([a, 0, 0], [b - a, -1, -1]);
      const r = opt.gradients(
        () =>
          method
            .loss(method.forward(f, { training: true }), m, labels.slice(a, b - a))
            .mul((b - a) / 4) as tf.Scalar,
      );
      tf.dispose([...f.patchTokens, f.global, m]);
      return r;
    };
    const g1 = part(0, 3);
    const g2 = part(3, 4);
    assert.ok(Math.abs(g1.value + g2.value - whole.value) < 1e-5 * whole.value);
    for (const [name, g] of Object.entries(whole.grads)) {
      const sum = tf.add(g1.grads[name], g2.grads[name]);
      const err = tf.max(tf.abs(sum.sub(g))).dataSync()[0];
      const scale = tf.max(tf.abs(g)).dataSync()[0];
      assert.ok(err <= 1e-5 * Math.max(1, scale), `${name}: max |Δ| = ${err} (scale ${scale})`);
      sum.dispose();
    }
    tf.dispose([whole.grads, g1.grads, g2.grads, full.patchTokens, full.global, masks, labels]);
    opt.dispose();
    method.dispose();
  });

  test('same seed → identical losses and parameters; another seed differs', async () => {
    const run = async (seed: number) => {
      const { method, extractor } = setup(clip);
      const augment = {
        rotate: true,
        rot90: true,
        brightness_contrast: true,
        noise: true,
        blur_jitter: true,
        mosaic: 0.5,
      };
      const out = await trainMethod({
        method,
        extractor,
        samples,
        schedule: schedule({ epochs: 2, augment, micro_batch: 2 }),
        seed,
        load,
      });
      const params = snapshot(method);
      method.dispose();
      return { losses: out.losses, params };
    };
    const a = await run(1);
    const b = await run(1);
    const c = await run(2);
    assert.deepEqual(a.losses, b.losses);
    assert.equal(maxDiff(a.params, b.params), 0);
    assert.notDeepEqual(a.losses, c.losses);
  });

  test('tensor count stays flat across steps; callbacks see every step and epoch', async () => {
    const { method, extractor } = setup(clip);
    const counts: number[] = [];
    const epochs: number[] = [];
    await trainMethod({
      method,
      extractor,
      samples,
      schedule: schedule({ epochs: 2, batch_size: 2, micro_batch: 1 }),
      seed: 3,
      load,
      onStep: () => counts.push(tf.memory().numTensors),
      onEpoch: (e) => epochs.push(e.epoch),
    });
    assert.equal(counts.length, 6);
    assert.deepEqual(epochs, [0, 1]);
    // The first step creates Adam's moment variables; afterwards nothing may accumulate.
    assert.ok(
      counts.slice(1).every((c) => c === counts[1]),
      `numTensors per step: ${counts.join(', ')}`,
    );
    method.dispose();
  });

  test('decoded samples are kept across epochs within the byte budget', async () => {
    const loadsWith = async (sampleCacheBytes: number | undefined): Promise<number> => {
      const { method, extractor } = setup(clip);
      let loads = 0;
      await trainMethod({
        method,
        extractor,
        samples,
        schedule: schedule({ epochs: 3 }),
        seed: 3,
        load: (sample) => (loads++, load(sample)),
        sampleCacheBytes,
      });
      method.dispose();
      return loads;
    };
    const sampleBytes = S * S * 4; // RGB + mask
    assert.equal(await loadsWith(undefined), samples.length); // default budget: each image once
    assert.equal(await loadsWith(0), 3 * samples.length); // off: every epoch decodes again
    // Room for two samples only: epoch order is shuffled, so most epochs decode again.
    const tight = await loadsWith(2 * sampleBytes);
    assert.ok(tight > samples.length && tight <= 3 * samples.length, `loads: ${tight}`);
  });

  test('a NaN loss stops the run naming epoch and step', async () => {
    const { method, extractor } = setup(clip);
    // NaN through the temperatures: exp(τ) overflows to Inf → Inf − Inf in the softmax.
    method.parameters().get('maps.base.logit_scale')!.assign(tf.scalar(1e6));
    await assert.rejects(
      trainMethod({
        method,
        extractor,
        samples,
        schedule: schedule({ batch_size: 2 }),
        seed: 1,
        load,
      }),
      /training diverged: the loss is NaN at epoch 1, step 1 of 3/,
    );
    method.dispose();
  });

  test('abort stops after the current step', async () => {
    const { method, extractor } = setup(clip);
    const controller = new AbortController();
    const out = await trainMethod({
      method,
      extractor,
      samples,
      schedule: schedule({ epochs: 3, batch_size: 2 }),
      seed: 1,
      load,
      signal: controller.signal,
      onStep: (e) => e.step === 1 && controller.abort(),
    });
    assert.equal(out.aborted, true);
    assert.equal(out.losses.length, 2);
    method.dispose();
  });

  test('the loss falls on the toy task', async () => {
    const { method, extractor } = setup(clip, { lr: 1e-2 });
    const out = await trainMethod({
      method,
      extractor,
      samples,
      schedule: schedule({ epochs: 8, batch_size: 6, micro_batch: 3 }),
      seed: 1,
      load,
    });
    assert.ok(
      out.losses.at(-1)! < out.losses[0] * 0.95,
      `losses ${out.losses.map((l) => l.toFixed(3)).join(' ')}`,
    );
    method.dispose();
  });
});
