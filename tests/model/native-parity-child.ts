// Child process of native-gpu.test.ts (a process loads one native build, never both): the
// tiny CLIP's towers, and a gradient through the text tower, on the native build that
// VCP_EXP_NATIVE_BUILD names, compared with the transformers goldens
// (python/golden/make_clip_fixture.py, float64). Prints one JSON line: the backend, the worst
// error against the goldens, and every output, for the parent to compare the builds.
import { readFileSync } from 'node:fs';
import { readSafetensors } from '../../src/io/safetensors.js';
import { describeBackend, initBackend } from '../../src/model/backend.js';
import { parseClipConfig, type Activation } from '../../src/model/clip/config.js';
import { createClipModel } from '../../src/model/clip/model.js';
import { tf, type Tensor, type Tensor3D, type Tensor4D } from '../../src/model/tf.js';

const DIR = 'tests/fixtures/clip';
const TINY = 'assets/clip/tiny-clip';

const meta = JSON.parse(readFileSync(`${DIR}/golden.json`, 'utf8')) as {
  activations: Activation[];
  ids: number[][];
  context: number;
  eos_index: number[];
};
const config = parseClipConfig(
  JSON.parse(readFileSync(`${TINY}/config.json`, 'utf8')),
  `${TINY}/config.json`,
);
const [{ tensors: weights }, { tensors: golden }] = await Promise.all([
  readSafetensors(`${TINY}/model.safetensors`),
  readSafetensors(`${DIR}/golden.safetensors`),
]);

const info = await initBackend('tensorflow');
const outputs: Record<string, number[]> = {};
let worst = 0;

function record(name: string, value: Tensor, goldenName?: string): void {
  const data = Array.from(value.dataSync());
  outputs[name] = data;
  if (!goldenName) return;
  const expected = golden.get(goldenName);
  if (!expected) throw new Error(`golden ${goldenName} missing`);
  data.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - Number(expected.data[i])))));
}

const images = golden.get('input.images')!;
const pixels = tf.tidy(() =>
  tf
    .tensor4d(images.data as Float32Array, images.shape as [number, number, number, number])
    .transpose([0, 2, 3, 1]),
) as Tensor4D;
const ids = meta.ids.map((row) => [
  ...row,
  ...new Array<number>(meta.context - row.length).fill(0),
]);

for (const activation of meta.activations) {
  const model = createClipModel(config, weights, { activation, source: 'tiny-clip' });
  const vision = model.vision.forward(pixels, { layers: [1, 2, 3], tokens: 'raw' });
  vision.layers.forEach((layer, i) =>
    record(`vision.${activation}.hidden.${i + 1}`, layer, `vision.${activation}.hidden.${i + 1}`),
  );
  record(`vision.${activation}.image_embeds`, vision.global, `vision.${activation}.image_embeds`);
  const text = model.text.encodeText(ids);
  record(`text.${activation}.text_embeds`, text, `text.${activation}.text_embeds`);
  // What training computes: a gradient through the text tower.
  const embeddings = model.text.embedTokens(ids) as Tensor3D;
  const grad = tf.grad((x: Tensor) =>
    model.text
      .encodeTextEmbeddings(x as Tensor3D, meta.eos_index)
      .square()
      .sum(),
  )(embeddings);
  record(`text.${activation}.grad`, grad);
  tf.dispose([vision.layers, vision.global, text, embeddings, grad]);
  model.dispose();
}

console.log(
  JSON.stringify({
    backend: describeBackend(info),
    package: info.package,
    device: info.device,
    worst,
    outputs,
  }),
);
