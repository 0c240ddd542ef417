/**
 * Entry point of a calibration process (`vcp-exp plan`, src/runner/calibrate.ts): measures what
 * one trial's work costs on this machine, with the trial's own code: backend, CLIP and method
 * loaded as a trial loads them, a few training steps on its training images (augmented, as
 * trained), evaluation of a few test images with features encoded and then cached, and one
 * product's sample pictures. Several run at once when the sweep runs several workers, so the
 * costs include the sharing of the machine. The result goes to the parent over IPC.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDataset } from '../datasets/open.js';
import type { Dataset, Sample, Split } from '../datasets/types.js';
import { formatError } from '../errors.js';
import { initBackend, type BackendChoice } from '../model/backend.js';
import { FeatureCache } from '../model/feature-cache.js';
import { FeatureExtractor } from '../model/features.js';
import { loadImageTensorData } from '../datasets/image-io.js';
import { evaluateDataset, predictImages, withEvalPrompts } from '../model/infer.js';
import { loadMethod } from '../model/load.js';
import { trainMethod } from '../model/train.js';
import type { Trial } from './spec-types.js';
import { sampleIndices, writeProductSamples } from './trial-artifacts.js';

export interface CalibrationJob {
  trial: Trial;
  backend: BackendChoice;
  /** Roughly how long the measurements may take (the load not counted). */
  budgetSeconds: number;
  /** Used instead of a dataset root that does not exist yet (a synthetic root run generates). */
  substitutes: Record<string, string>;
}

export interface CalibrationResult {
  /** When the process started (ms since the epoch) and when its method was built (s after). */
  timeOrigin: number;
  loadedAfterS: number;
  trainImageS: number;
  trainWarmupS: number;
  evalEncodeImageS: number;
  evalCachedImageS: number;
  evalWarmupS: number;
  /** One product's sample pictures with `samplesImages` test images. */
  samplesS: number;
  samplesImages: number;
  /** What was measured, for the plan's note. */
  trainImages: number;
  evalImages: number;
}

export type CalibrationMessage =
  { type: 'result'; result: CalibrationResult } | { type: 'error'; message: string };

/** A few samples of one dataset, spread over its products. */
class SubsetDataset implements Dataset {
  constructor(
    private readonly inner: Dataset,
    private readonly picked: Map<string, Sample[]>,
    private readonly split: Split,
  ) {}
  get name() {
    return this.inner.name;
  }
  get format() {
    return this.inner.format;
  }
  get root() {
    return this.inner.root;
  }
  products(): string[] {
    return [...this.picked.keys()];
  }
  samples(product: string, split: Split): Sample[] {
    return split === this.split ? (this.picked.get(product) ?? []) : [];
  }
}

/** `count` samples of a split, evenly spread over the products and over each product's list. */
function spread(dataset: Dataset, split: Split, count: number): Map<string, Sample[]> {
  const products = dataset.products().filter((p) => dataset.samples(p, split).length > 0);
  const out = new Map<string, Sample[]>();
  const per = Math.max(1, Math.ceil(count / Math.max(1, products.length)));
  let left = count;
  for (const p of products) {
    if (left <= 0) break;
    const all = dataset.samples(p, split);
    const take = Math.min(per, all.length, left);
    out.set(
      p,
      Array.from({ length: take }, (_, k) => all[Math.floor((k * all.length) / take)]),
    );
    left -= take;
  }
  return out;
}

const now = () => performance.now() / 1000;

async function calibrate(job: CalibrationJob): Promise<CalibrationResult> {
  const { trial } = job;
  const { train, eval: evaluation } = trial.config;
  await initBackend(job.backend);
  const { backbone, method } = await loadMethod(trial.config.method, trial.config.model);
  const loadedAfterS = performance.now() / 1000; // performance.now() counts from process start
  const scratch = await mkdtemp(join(tmpdir(), 'vcp-calibrate-'));
  const root = (r: string) => job.substitutes[r] ?? r;
  const extractorWith = (dir: string) =>
    new FeatureExtractor({
      clip: backbone.clip,
      weightsHash: backbone.sha256,
      request: method.features,
      cache: new FeatureCache({ dir }),
      chunkSize: train.micro_batch,
    });
  try {
    // Evaluation first: its one-image cost sizes the training batch measured below.
    const d = evaluation.datasets[0];
    const evalData = await openDataset({
      root: root(d.root),
      format: d.format,
      products: d.products,
    });
    const evalMethod = withEvalPrompts(method, evaluation.prompts);
    const budget = job.budgetSeconds;
    // Enough images to time (small models need many), few for large ones: grow until the
    // encoding pass takes a fifth of the budget.
    let evalImages = Math.min(train.micro_batch, 4);
    let encode: { seconds: number; n: number };
    const evaluateOnce = async (count: number, cacheDir: string) => {
      const subset = new SubsetDataset(evalData, spread(evalData, 'test', count), 'test');
      const n = subset.products().reduce((s, p) => s + subset.samples(p, 'test').length, 0);
      const started = now();
      await evaluateDataset({
        method: evalMethod,
        extractor: extractorWith(cacheDir),
        dataset: subset,
        pro: evaluation.pro,
        batchSize: train.micro_batch,
      });
      return { seconds: now() - started, n, subset };
    };
    const cold = await evaluateOnce(evalImages, join(scratch, 'cold'));
    encode = cold;
    for (let round = 0; round < 4 && encode.seconds < budget / 5; round++) {
      const more = Math.min(evalImages * 4, 256);
      if (more === evalImages) break;
      evalImages = more;
      encode = await evaluateOnce(evalImages, join(scratch, `encode-${round}`));
      if (encode.n < evalImages) break; // the dataset has no more
    }
    const evalEncodeImageS = encode.seconds / encode.n;
    const cacheDir = join(scratch, 'cached');
    await evaluateOnce(evalImages, cacheDir); // fills the cache
    const cached = await evaluateOnce(evalImages, cacheDir);
    const evalCachedImageS = cached.seconds / cached.n;
    const evalWarmupS = Math.max(0, cold.seconds - cold.n * evalEncodeImageS);

    // Sample pictures of one product (features cached, as after evaluation).
    const product = cached.subset.products()[0];
    let samplesS = 0;
    let samplesImages = 0;
    if (evaluation.samples_per_product > 0 && product !== undefined) {
      // A trial draws its samples from its evaluation's own forward pass (extras kept for
      // the chosen images): only writing them costs extra, which is what is timed here.
      const samples = cached.subset.samples(product, 'test');
      const s = evalMethod.features.imageSize;
      const predictions = await predictImages(
        evalMethod,
        extractorWith(cacheDir),
        await Promise.all(
          samples.map(async (x) => ({
            pixels: await loadImageTensorData(x.imagePath, s),
            cacheable: true,
          })),
        ),
        {
          keepExtrasOf: new Set(sampleIndices(samples, evaluation.samples_per_product).embeddings),
        },
      );
      const started = now();
      await writeProductSamples({
        method: evalMethod,
        dataset: 'calibration',
        product,
        samples,
        predictions,
        count: evaluation.samples_per_product,
        outDir: join(scratch, 'samples'),
      });
      samplesS = now() - started;
      samplesImages = cached.subset.samples(product, 'test').length;
    }

    // Training: a few steps with the trial's augmentation, features encoded (nothing cached).
    let trainImageS = 0;
    let trainWarmupS = 0;
    let trainImages = 0;
    if (train.dataset && !train.checkpoint) {
      const ds = train.dataset;
      const trainData = await openDataset({
        root: root(ds.root),
        format: ds.format,
        products: ds.products,
      });
      // A step of `micro` images should take at most a tenth of the budget.
      const affordable = Math.floor(budget / 10 / Math.max(1e-3, 3 * evalEncodeImageS));
      const micro = Math.max(1, Math.min(train.micro_batch, affordable));
      const samples = [...spread(trainData, ds.split, micro * 4).values()].flat();
      const steps: number[] = [];
      let last = now();
      const abort = new AbortController();
      const started = last;
      await trainMethod({
        method,
        extractor: extractorWith(join(scratch, 'train')),
        samples,
        seed: trial.seed,
        schedule: { ...train, epochs: 1, batch_size: micro, micro_batch: micro },
        signal: abort.signal,
        onStep: (e) => {
          const t = now();
          steps.push(t - last);
          last = t;
          trainImages += e.images;
          if (t - started > budget / 2) abort.abort();
        },
      });
      const steady = steps.length > 1 ? steps.slice(1) : steps;
      const steadyImages = steps.length > 1 ? trainImages - micro : trainImages;
      trainImageS = steady.reduce((a, b) => a + b, 0) / Math.max(1, steadyImages);
      trainWarmupS = steps.length > 1 ? Math.max(0, steps[0] - micro * trainImageS) : 0;
    }
    return {
      timeOrigin: performance.timeOrigin,
      loadedAfterS,
      trainImageS,
      trainWarmupS,
      evalEncodeImageS,
      evalCachedImageS,
      evalWarmupS,
      samplesS,
      samplesImages,
      trainImages,
      evalImages: encode.n,
    };
  } finally {
    method.dispose();
    backbone.clip.dispose();
    await rm(scratch, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const job = JSON.parse(await readFile(process.argv[2], 'utf8')) as CalibrationJob;
  let message: CalibrationMessage;
  try {
    message = { type: 'result', result: await calibrate(job) };
  } catch (error) {
    message = { type: 'error', message: formatError(error, false) };
  }
  await new Promise<void>((resolve) => process.send!(message, () => resolve()));
  process.disconnect();
}

void main();
