// Parity of the CLIP towers with transformers' CLIPModel (goldens from
// python/golden/make_clip_fixture.py, float64 references) on every backend, for both activations.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, before, after, test } from 'node:test';
import { initBackend } from '../../../src/model/backend.js';
import type { BackendName } from '../../../src/model/backend.js';
import { tf } from '../../../src/model/tf.js';
import type { Tensor, Tensor3D, Tensor4D } from '../../../src/model/tf.js';
import { parseClipConfig } from '../../../src/model/clip/config.js';
import type { Activation } from '../../../src/model/clip/config.js';
import { createClipModel } from '../../../src/model/clip/model.js';
import type { ClipModel } from '../../../src/model/clip/model.js';
import { readSafetensors } from '../../../src/io/safetensors.js';
import type { RawTensor } from '../../../src/io/safetensors.js';
import { findEosIndex } from '../../../src/model/clip/text.js';
import { unavailable } from '../../requirements.js';

const DIR = 'tests/fixtures/clip';
const TINY = 'assets/clip/tiny-clip';
const TOLERANCE = 1e-4;
const BACKENDS: BackendName[] = ['tensorflow', 'wasm', 'cpu'];

const meta = JSON.parse(readFileSync(`${DIR}/golden.json`, 'utf8')) as {
  activations: Activation[];
  ids: number[][];
  context: number;
  eos_index: number[];
  splice_position: number;
  large_image_size: number;
};
const config = parseClipConfig(
  JSON.parse(readFileSync(`${TINY}/config.json`, 'utf8')),
  `${TINY}/config.json`,
);
const [{ tensors: weights }, { tensors: golden }] = await Promise.all([
  readSafetensors(`${TINY}/model.safetensors`),
  readSafetensors(`${DIR}/golden.safetensors`),
]);

function raw(name: string): RawTensor {
  const value = golden.get(name);
  assert.ok(value, `golden ${name} missing: rerun python/golden/make_clip_fixture.py`);
  return value;
}

/** NCHW golden images → NHWC tensor. */
function images(name: string): Tensor4D {
  const { data, shape } = raw(name);
  return tf.tidy(() =>
    tf
      .tensor4d(data as Float32Array, shape as [number, number, number, number])
      .transpose([0, 2, 3, 1]),
  );
}

function maxAbsDiff(actual: Tensor, name: string): number {
  const expected = raw(name);
  assert.deepEqual(actual.shape, expected.shape, `${name}: shape`);
  const a = actual.dataSync();
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - expected.data[i]));
  assert.ok(Number.isFinite(worst), `${name}: non-finite output`);
  return worst;
}

/** Worst error per backend, printed at the end (the figure quoted in reports). */
const worstByBackend = new Map<string, number>();

function assertClose(actual: Tensor, name: string): void {
  const err = maxAbsDiff(actual, name);
  const backend = tf.getBackend();
  worstByBackend.set(backend, Math.max(worstByBackend.get(backend) ?? 0, err));
  assert.ok(err <= TOLERANCE, `${name}: max abs error ${err.toExponential(2)} > ${TOLERANCE}`);
}

function padded(ids: number[][]): number[][] {
  return ids.map((row) => [...row, ...new Array<number>(meta.context - row.length).fill(0)]);
}

after(() => {
  for (const [backend, err] of worstByBackend)
    console.log(
      `CLIP parity on ${backend}: max abs error ${err.toExponential(2)} (tolerance ${TOLERANCE})`,
    );
});

for (const backend of BACKENDS) {
  describe(`CLIP parity with transformers on ${backend}`, () => {
    let ready = false;
    let notReady = '';
    before(async () => {
      try {
        await initBackend(backend);
        ready = true;
      } catch (error) {
        if (backend !== 'tensorflow') throw error;
        notReady = unavailable('native-backend', (error as Error).message.split('\n')[0]);
      }
    });

    for (const activation of meta.activations) {
      describe(`activation ${activation}`, () => {
        let model: ClipModel;
        before(() => {
          if (ready)
            model = createClipModel(config, weights, {
              activation,
              source: 'tiny-clip/model.safetensors',
            });
        });
        after(() => model?.dispose());

        test('vision: every block output and the global feature at the native size', (t) => {
          if (!ready) return t.skip(notReady);
          const pixels = images('input.images');
          const out = model.vision.forward(pixels, { layers: [1, 2, 3], tokens: 'raw' });
          out.layers.forEach((layer, i) =>
            assertClose(layer, `vision.${activation}.hidden.${i + 1}`),
          );
          assertClose(out.global, `vision.${activation}.image_embeds`);
          tf.dispose([pixels, out.layers, out.global]);
        });

        test('vision: a larger input resizes the positional grid (bicubic), in chunks of one image', (t) => {
          if (!ready) return t.skip(notReady);
          const large = images('input.large');
          assert.equal(large.shape[1], meta.large_image_size);
          const out = model.vision.forward(large, { layers: [3, 1], chunkSize: 1 });
          assertClose(out.layers[0], `vision_large.${activation}.hidden.3`);
          assertClose(out.layers[1], `vision_large.${activation}.hidden.1`);
          assertClose(out.global, `vision_large.${activation}.image_embeds`);
          tf.dispose([large, out.layers, out.global]);
        });

        test('vision: a batch split into chunks equals one pass; projected tokens end in the global feature', (t) => {
          if (!ready) return t.skip(notReady);
          const pixels = images('input.images');
          const whole = model.vision.forward(pixels, { layers: [3], tokens: 'projected' });
          const chunked = model.vision.forward(pixels, {
            layers: [3],
            tokens: 'projected',
            chunkSize: 1,
          });
          assert.deepEqual(whole.layers[0].shape, [2, 17, config.projectionDim]);
          assert.ok(
            tf.tidy(() => whole.layers[0].sub(chunked.layers[0]).abs().max().dataSync()[0]) < 1e-6,
          );
          // The projected class token of the last block is exactly g.
          const cls = tf.tidy(() => whole.layers[0].slice([0, 0, 0], [2, 1, -1]).reshape([2, -1]));
          assert.ok(tf.tidy(() => cls.sub(whole.global).abs().max().dataSync()[0]) < 1e-6);
          tf.dispose([pixels, whole.layers, whole.global, chunked.layers, chunked.global, cls]);
        });

        test('text: EOS features of token ids', (t) => {
          if (!ready) return t.skip(notReady);
          const ids = padded(meta.ids);
          assert.deepEqual(findEosIndex(ids), meta.eos_index);
          const features = model.text.encodeText(ids);
          assertClose(features, `text.${activation}.text_embeds`);
          const flat = model.text.encodeText(Int32Array.from(ids.flat()), meta.eos_index);
          assertClose(flat, `text.${activation}.text_embeds`);
          tf.dispose([features, flat]);
        });

        test('text: spliced embeddings with deep prompts inserted and overwritten by hooks', (t) => {
          if (!ready) return t.skip(notReady);
          const ids = padded(meta.ids.slice(0, 2));
          const eos = meta.eos_index.slice(0, 2);
          const splice = raw('input.splice');
          const deep = tf.tensor2d(
            raw('input.deep').data as Float32Array,
            raw('input.deep').shape as [number, number],
          ); // [layers, W]
          const features = tf.tidy(() => {
            const tokens = model.text.embedTokens(ids); // [2, 77, W]
            const p = meta.splice_position;
            const spliced = tf.concat(
              [
                tokens.slice([0, 0, 0], [2, p, -1]),
                tf.tensor3d(splice.data as Float32Array, [2, 1, splice.shape[1]]),
                tokens.slice([0, p + 1, 0], [2, -1, -1]),
              ],
              1,
            ) as Tensor3D;
            const prompt = (i: number) =>
              deep.slice([i, 0], [1, -1]).reshape([1, 1, -1]).tile([2, 1, 1]); // [2, 1, W]
            return model.text.encodeTextEmbeddings(spliced, eos, {
              beforeBlock: (i, x) => {
                const t = x.shape[1];
                const rest =
                  i === 0 ? x.slice([0, 1, 0], [2, t - 2, -1]) : x.slice([0, 2, 0], [2, t - 2, -1]);
                return tf.concat([x.slice([0, 0, 0], [2, 1, -1]), prompt(i), rest], 1) as Tensor3D;
              },
              beforeFinalNorm: (x, eosIndex) => ({
                x: tf.concat(
                  [x.slice([0, 0, 0], [2, 1, -1]), x.slice([0, 2, 0], [2, -1, -1])],
                  1,
                ) as Tensor3D,
                eosIndex,
              }),
            });
          });
          assertClose(features, `text_deep.${activation}.text_embeds`);
          tf.dispose([features, deep]);
        });

        test('text: gradients reach the input embeddings (finite, nonzero)', (t) => {
          if (!ready) return t.skip(notReady);
          const embeddings = model.text.embedTokens(padded(meta.ids)) as Tensor3D;
          const grad = tf.grad((x: Tensor) =>
            model.text
              .encodeTextEmbeddings(x as Tensor3D, meta.eos_index)
              .square()
              .sum(),
          )(embeddings);
          const values = grad.dataSync();
          assert.ok(values.every(Number.isFinite), 'gradient has non-finite values');
          // Causal mask: positions up to EOS get gradient, positions after it none.
          const w = config.text.width;
          const norm = (b: number, pos: number) => {
            let s = 0;
            for (let c = 0; c < w; c++) s += Math.abs(values[(b * meta.context + pos) * w + c]);
            return s;
          };
          meta.eos_index.forEach((eos, b) => {
            assert.ok(
              norm(b, 0) > 0 && norm(b, eos) > 0,
              `sequence ${b}: zero gradient before EOS`,
            );
            assert.equal(norm(b, eos + 1), 0, `sequence ${b}: gradient after EOS`);
          });
          tf.dispose([embeddings, grad]);
        });
      });
    }
  });
}
