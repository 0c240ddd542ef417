/**
 * Files a trial logs beside its metrics: the per-product CSV of each eval dataset and, for a
 * few test images per product, the picture triple (image, ground truth, overlay of the final
 * map) and the Post-VCP attention per layer; for more test images per product, their text
 * embeddings in one file. Paths come from src/tracking/artifact-names.ts, which the reports
 * parse with:
 *   results/<dataset>.csv
 *   samples/<dataset>/<product>/<name>_{image,mask,overlay}.png
 *   attention/<dataset>/<product>/<name>_layer<k>.npy     [H, 2, L] per image and layer
 *   text_embeddings/<dataset>/<product>.npy               [N, 2, D] (normal, abnormal) per image
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import {
  readImageRgb,
  resizeRgb,
  loadMaskData,
  writePngRgb,
  writePngGray8,
} from '../datasets/image-io.js';
import { resizeU8 } from '../datasets/resample.js';
import type { Sample } from '../datasets/types.js';
import { METRICS, type MetricName, type ProductMetrics } from '../eval/evaluate.js';
import { withErrorPath } from '../errors.js';
import { minMaxNormalise } from '../eval/smoothing.js';
import { writeNpy } from '../io/npy.js';
import { postprocessProduct, type ImagePrediction } from '../model/infer.js';
import type { ZeroShotMethod } from '../model/methods/method.js';
import {
  attentionPath,
  productKey,
  resultsPath,
  samplePath,
  textEmbeddingsPath,
} from '../tracking/artifact-names.js';

/** src/eval metric names → the snake_case names of specs, reports and MLflow keys. */
export const METRIC_KEYS = {
  pixelAuroc: 'pixel_auroc',
  pro: 'pro',
  pixelAp: 'pixel_ap',
  pixelF1Max: 'pixel_f1_max',
  iou: 'iou',
  imageAuroc: 'image_auroc',
  imageAp: 'image_ap',
  imageF1Max: 'image_f1_max',
} as const satisfies Record<MetricName, string>;

/** Side of the sample pictures: maps of small models are upscaled so that they can be seen. */
const SAMPLE_SIDE = 224;
/**
 * Test images per product whose text embeddings are logged (the t-SNE's points). Their frozen
 * features come from the feature cache that evaluation filled, so only the method head runs.
 */
export const EMBEDDING_IMAGES = 16;

/**
 * One row per product (defect `all`), then one per defect type of the products that have
 * several (that defect's images with the product's normal ones): counts and every metric
 * (empty cell = undefined there).
 */
export function productCsv(
  products: readonly ProductMetrics[],
  defects: readonly (ProductMetrics & { defect: string })[] = [],
): string {
  const header = [
    'product',
    'defect',
    'images',
    'anomalous_images',
    'pixels',
    'anomalous_pixels',
    'regions',
    ...METRICS.map((m) => METRIC_KEYS[m]),
  ];
  const row = (p: ProductMetrics, defect: string) => [
    p.product,
    defect,
    p.images,
    p.anomalousImages,
    p.pixels,
    p.anomalousPixels,
    p.regions,
    ...METRICS.map((m) => (p[m] === null ? '' : String(p[m]))),
  ];
  const rows = products.flatMap((p) => [
    row(p, 'all'),
    ...defects.filter((d) => d.product === p.product).map((d) => row(d, d.defect)),
  ]);
  return [header, ...rows].map((r) => r.map((c) => csvCell(String(c))).join(',')).join('\n') + '\n';
}

function csvCell(text: string): string {
  return /[",\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/**
 * `count` test images of a product: the first anomalous and the first normal one, then more
 * anomalous ones, taking the defect types in turn (so the pictures show each kind).
 */
export function pickSamples(samples: readonly Sample[], count: number): Sample[] {
  const byDefect = new Map<string, Sample[]>();
  for (const s of samples)
    if (s.label === 1) byDefect.set(s.defect, [...(byDefect.get(s.defect) ?? []), s]);
  const anomalous: Sample[] = [];
  const queues = [...byDefect.values()];
  for (let i = 0; anomalous.length < samples.length && queues.some((q) => i < q.length); i++)
    for (const q of queues) if (q[i]) anomalous.push(q[i]);
  const normal = samples.filter((s) => s.label !== 1);
  const picked: Sample[] = [];
  for (let i = 0; picked.length < count && (i < anomalous.length || i < normal.length); i++) {
    if (anomalous[i]) picked.push(anomalous[i]);
    if (picked.length < count && i === 0 && normal[0]) picked.push(normal[0]);
  }
  // Fewer anomalous images than asked: the rest are normal ones.
  for (const s of normal.slice(1)) if (picked.length < count) picked.push(s);
  return picked.slice(0, count);
}

/** A name for a sample unique within its product: `<defect type>_<file stem>`. */
export function sampleName(sample: Sample): string {
  const stem = sample.imagePath
    .split(/[\\/]/)
    .at(-1)!
    .replace(/\.[^.]+$/, '');
  return `${sample.defect}_${stem}`.replace(/[^A-Za-z0-9._-]/g, '_');
}

/** Red-yellow heat colour of a value in [0, 1]. */
function heat(v: number): [number, number, number] {
  const x = Math.min(1, Math.max(0, v));
  return [
    255,
    Math.round(255 * Math.min(1, Math.max(0, 2 * x - 0.5))),
    Math.round(255 * Math.max(0, 2 * x - 1.5) * 2),
  ];
}

/**
 * Which of a product's test samples the sample files use (indices into `all`): the pictured
 * ones (pickSamples), and for the text embeddings those first, then the others in dataset
 * order, up to `embeddings` (default EMBEDDING_IMAGES) or `count` if more.
 */
export function sampleIndices(
  all: readonly Sample[],
  count: number,
  embeddings = EMBEDDING_IMAGES,
): { pictures: number[]; embeddings: number[] } {
  const pictures = pickSamples(all, count).map((sample) => all.indexOf(sample));
  const rest = all.map((_, i) => i).filter((i) => !pictures.includes(i));
  return { pictures, embeddings: [...pictures, ...rest].slice(0, Math.max(count, embeddings)) };
}

/**
 * Writes the sample files of one product under `outDir` (artifact layout) from the
 * evaluation's own predictions (extras kept for the `sampleIndices` images, so no second
 * forward) and returns their paths relative to it: pictures and attention for the picked
 * images, the text embeddings of up to `embeddings` test images. Maps are min–max normalised
 * over the pictured images only, so the overlays show where the model looks, not the
 * product-wide scale.
 * @param method the (variant of the) method that made `predictions`: its post-processing
 * @param predictions one per test sample of the product, in `samples` order
 */
export async function writeProductSamples(options: {
  method: ZeroShotMethod;
  dataset: string;
  product: string;
  samples: readonly Sample[];
  predictions: readonly ImagePrediction[];
  count: number;
  embeddings?: number;
  outDir: string;
}): Promise<string[]> {
  const { method, product, outDir, count, samples: all } = options;
  const chosen = sampleIndices(all, count, options.embeddings);
  if (chosen.embeddings.length === 0) return [];
  const pictures = chosen.pictures.map((i) => all[i]);
  const predictions = chosen.embeddings.map((i) => {
    const prediction = options.predictions[i];
    if (!prediction?.extras)
      throw new Error(`samples of ${product}: image ${i} has no kept extras (see sampleIndices)`);
    return prediction;
  });
  const s = method.features.imageSize;
  const post = postprocessProduct(method, predictions.slice(0, pictures.length));
  // Min–max over the pictured images whatever the method's own rule (ViP²-CLIP reports raw
  // probabilities, nearly flat to the eye), as the public visualisers do.
  const shown = minMaxNormalise(post.maps);
  const written: string[] = [];
  const put = async (rel: string, write: (file: string) => Promise<void>) => {
    const file = join(outDir, rel);
    try {
      await mkdir(dirname(file), { recursive: true });
      await write(file);
    } catch (error) {
      throw withErrorPath(error, file);
    }
    written.push(rel);
  };
  const ds = options.dataset;
  const productPart = productKey(product);
  const text: { shape: number[]; data: Float32Array }[] = [];
  for (const prediction of predictions) {
    const t = prediction.extras?.get('text');
    if (t) text.push(t);
  }
  if (text.length === predictions.length && text.length > 0) {
    const [two, d] = text[0].shape; // [2, D] per image
    const all = new Float32Array(text.length * two * d); // [N, 2, D]
    text.forEach((t, i) => all.set(t.data, i * two * d));
    await put(textEmbeddingsPath(ds, productPart), (f) => writeNpy(f, all, [text.length, two, d]));
  }
  for (const [i, sample] of pictures.entries()) {
    const name = sampleName(sample);
    const image = resizeRgb(
      await readImageRgb(sample.imagePath),
      SAMPLE_SIDE,
      SAMPLE_SIDE,
      'bicubic',
    );
    const mask = await loadMaskData(sample.maskPath, SAMPLE_SIDE);
    const map8 = Uint8Array.from(shown[i], (v) => Math.round(255 * Math.min(1, Math.max(0, v))));
    const map = resizeU8(map8, s, s, 1, SAMPLE_SIDE, SAMPLE_SIDE, 'bilinear');
    const overlay = new Uint8Array(image.data.length);
    for (let p = 0; p < SAMPLE_SIDE * SAMPLE_SIDE; p++) {
      const v = map[p] / 255;
      const colour = heat(v);
      const w = 0.6 * v;
      for (let c = 0; c < 3; c++)
        overlay[p * 3 + c] = Math.round((1 - w) * image.data[p * 3 + c] + w * colour[c]);
    }
    await put(samplePath(ds, productPart, name, 'image'), (f) => writePngRgb(f, image));
    await put(samplePath(ds, productPart, name, 'mask'), (f) =>
      writePngGray8(f, {
        width: SAMPLE_SIDE,
        height: SAMPLE_SIDE,
        data: mask.map((m) => (m ? 255 : 0)),
      }),
    );
    await put(samplePath(ds, productPart, name, 'overlay'), (f) =>
      writePngRgb(f, { width: SAMPLE_SIDE, height: SAMPLE_SIDE, data: overlay }),
    );
    for (const [key, tensor] of predictions[i].extras ?? []) {
      if (key.startsWith('attention.')) {
        const layer = Number(key.slice('attention.'.length));
        await put(attentionPath(ds, productPart, name, layer), (f) =>
          writeNpy(f, tensor.data, tensor.shape),
        );
      }
    }
  }
  return written;
}

/** Writes `results/<dataset>.csv` under `outDir`; returns the file. */
export async function writeProductCsv(
  outDir: string,
  dataset: string,
  products: readonly ProductMetrics[],
  defects: readonly (ProductMetrics & { defect: string })[] = [],
): Promise<string> {
  const file = join(outDir, resultsPath(dataset));
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, productCsv(products, defects)).catch((error: unknown) => {
    throw withErrorPath(error, file);
  });
  return file;
}
