/**
 * Whole inference of VCP-CLIP (random weights made in-process, the paper's method defaults):
 *  (1) ms/image of the complete test-time path — frozen features computed by the vision tower,
 *      text through Pre-VCP and the text tower, Post-VCP, the branch maps, fusion, smoothing and
 *      normalisation — at ViT-B-16@224 and ViT-L-14-336@518 (batch 1), as a fraction of the FLOP
 *      floor: the vision tower's FLOPs (analytic) ÷ the GFLOP/s of plain 2-D matMuls of the same
 *      Linear shapes measured in the same run (the baseline); and the process's peak RSS (each
 *      configuration runs in its own process, which also builds the random weights in JS);
 *  (2) an evaluation group of 5 α values (one forward pass per test image, src/model/infer.ts
 *      evaluateDatasetGroup) against 5 separate evaluations of the same images (the baseline:
 *      both with features computed, as on a cache that misses, and both with features from a
 *      warm in-memory cache), metrics included, on a synthetic MVTec-layout product.
 * Usage: npm run bench -- infer
 *   env INFER_BENCH_CONFIGS=B,L (default; B = ViT-B-16@224, L = ViT-L-14-336@518)
 *       INFER_BENCH_IMAGES=<test images per configuration> (default 4)
 *       INFER_BENCH_GROUP=0 skips (2)
 * Smallest run (to check it works): INFER_BENCH_CONFIGS=B INFER_BENCH_IMAGES=2 npm run bench -- infer
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openDataset } from '../src/datasets/open.js';
import { loadImageTensorData } from '../src/datasets/image-io.js';
import { generateSynthDataset } from '../src/datasets/synth.js';
import { Rng } from '../src/io/prng.js';
import type { RawTensor } from '../src/io/safetensors.js';
import { describeBackend, initBackend } from '../src/model/backend.js';
import type { VisionConfig } from '../src/model/clip/config.js';
import { createClipModel, type ClipModel } from '../src/model/clip/model.js';
import { clipPreset } from '../src/model/clip/presets.js';
import { expectedClipTensors } from '../src/model/clip/tensors.js';
import { ClipTokenizer } from '../src/model/clip/tokenizer.js';
import { FeatureCache } from '../src/model/feature-cache.js';
import { FeatureExtractor } from '../src/model/features.js';
import {
  evaluateDataset,
  evaluateDatasetGroup,
  postprocessProduct,
  predictImages,
} from '../src/model/infer.js';
import { resolveVcpClipConfig } from '../src/model/methods/vcp-clip/config.js';
import { backboneShapeOf, VcpClipMethod } from '../src/model/methods/vcp-clip/model.js';
import { tf } from '../src/model/tf.js';
import { tinyTokenizerJson } from '../tests/model/clip/helpers.js';
import { realTokenizer } from '../tests/requirements.js';

const CONFIGS = {
  B: { backbone: 'ViT-B-16', size: 224, layers: [3, 6, 9, 12] },
  L: { backbone: 'ViT-L-14-336', size: 518, layers: [6, 12, 18, 24] },
} as const;
type ConfigName = keyof typeof CONFIGS;
const ALPHAS = [0.5, 0.6, 0.7, 0.75, 0.8];

/** FLOPs of one image through the vision tower: patch embedding + every block (multiply-add = 2). */
function visionFlops(v: VisionConfig, size: number): number {
  const l = (size / v.patchSize) ** 2;
  const t = l + 1;
  const block = 2 * t * v.width * (3 * v.width + v.width + 2 * v.mlpDim) + 4 * t * t * v.width;
  return 2 * l * v.patchSize ** 2 * 3 * v.width + v.layers * block;
}

/** The block's four Linear products as plain 2-D matMuls ([T, W]·[W, k]): a runnable and its FLOPs. */
function linearMatMuls(v: VisionConfig, rows: number): { run: () => void; flops: number } {
  const shapes: [number, number][] = [
    [v.width, 3 * v.width],
    [v.width, v.width],
    [v.width, v.mlpDim],
    [v.mlpDim, v.width],
  ];
  const operands = shapes.map(([k, n]) => [tf.randomNormal([rows, k]), tf.randomNormal([k, n])]);
  return {
    run: () => operands.forEach(([a, b]) => tf.matMul(a, b).dataSync()),
    flops: shapes.reduce((sum, [k, n]) => sum + 2 * rows * k * n, 0),
  };
}

/** Random CLIP weights at a preset's shapes: uniform ±0.02, LayerNorm gains 1. */
function randomClip(backbone: string): ClipModel {
  const config = clipPreset(backbone);
  const rng = new Rng(1);
  const tensors = new Map<string, RawTensor>();
  for (const [name, shape] of expectedClipTensors(config)) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    const gain = name.includes('norm') && name.endsWith('weight');
    for (let i = 0; i < data.length; i++) data[i] = gain ? 1 : 0.02 * (rng.next() * 2 - 1);
    tensors.set(name, { dtype: 'F32', shape, data });
  }
  tensors.set('logit_scale', { dtype: 'F32', shape: [], data: new Float32Array([4.6]) });
  const clip = createClipModel(config, tensors, {
    activation: 'gelu',
    posEmbedResize: 'bicubic_antialias',
  });
  tensors.clear();
  return clip;
}

async function tokenizer(): Promise<{ tokenizer: ClipTokenizer; note: string }> {
  const real = realTokenizer();
  if (real.ok) return { tokenizer: await ClipTokenizer.fromDirectory(real.value), note: 'real' };
  return {
    tokenizer: ClipTokenizer.fromJson(tinyTokenizerJson(), {}),
    note: `character-level test tokenizer (${real.reason}: prompts tokenize longer than with the real one)`,
  };
}

const seconds = async (run: () => Promise<unknown>) => {
  const start = performance.now();
  await run();
  return (performance.now() - start) / 1000;
};

async function child(name: ConfigName): Promise<void> {
  const { backbone, size, layers } = CONFIGS[name];
  const images = Math.max(1, Number(process.env.INFER_BENCH_IMAGES ?? 4));
  const info = await initBackend('auto');
  const clip = randomClip(backbone);
  const { tokenizer: tok, note } = await tokenizer();
  const context = { clip, tokenizer: tok };
  const config = resolveVcpClipConfig(
    { backbone, image_size: size, layers: [...layers] },
    { backbone: backboneShapeOf(context) },
  );
  const method = new VcpClipMethod(config, context);
  const label = `${backbone}@${size}`;
  console.log(
    `${label}: backend ${describeBackend(info)}, ${images} test images, batch 1, tokenizer ${note}`,
  );

  // (1) Whole inference, features computed (no cache), batch 1 as at the paper's scale.
  const rng = new Rng(7);
  const pixels = Array.from({ length: images }, () => ({
    pixels: Float32Array.from({ length: 3 * size * size }, () => rng.next() * 4 - 2),
    cacheable: false,
  }));
  const extractor = new FeatureExtractor({
    clip,
    weightsHash: 'bench',
    request: method.features,
    chunkSize: 1,
  });
  /** One image's whole test-time path (a product of one image: normalisation is trivial). */
  const infer = async (index: number) =>
    postprocessProduct(
      method,
      await predictImages(method, extractor, [pixels[index]], { batchSize: 1 }),
    );
  const v = clip.config.vision;
  const baseline = linearMatMuls(v, (size / v.patchSize) ** 2 + 1);
  await infer(0); // warm-up: kernels, the positional-embedding resize
  baseline.run();
  // Interleaved, best of each (the least disturbed): both see the same load of the machine.
  let ms = Infinity;
  let baselineMs = Infinity;
  for (let i = 0; i < images; i++) {
    ms = Math.min(ms, 1000 * (await seconds(() => infer(i))));
    baselineMs = Math.min(baselineMs, 1000 * (await seconds(async () => baseline.run())));
  }
  const gflops = baseline.flops / baselineMs / 1e6;
  const flops = visionFlops(v, size);
  const floorMs = flops / gflops / 1e6;
  const rss = process.resourceUsage().maxRSS * 1024;
  console.log(
    `  whole inference: ${ms.toFixed(0)} ms/image; vision FLOPs ${(flops / 1e9).toFixed(1)} GFLOP/image ÷ ` +
      `2-D matMul ${gflops.toFixed(1)} GFLOP/s = floor ${floorMs.toFixed(0)} ms → ${((100 * floorMs) / ms).toFixed(0)} % of the floor ` +
      `(×${(ms / floorMs).toFixed(2)}); peak RSS ${(rss / 1e9).toFixed(2)} GB (incl. the random weights built in JS)`,
  );
  if (process.env.INFER_BENCH_GROUP === '0') return;

  // (2) An evaluation group of 5 α values vs 5 separate evaluations, metrics included.
  const dir = mkdtempSync(join(tmpdir(), 'vcp-bench-infer-'));
  try {
    const defects = Math.max(1, Math.floor(images / 4));
    await generateSynthDataset(join(dir, 'synth'), {
      products: ['bottle'],
      size,
      trainGood: 0,
      testGood: Math.max(1, images - 3 * defects),
      testDefect: defects,
    });
    const dataset = await openDataset({ root: join(dir, 'synth'), format: 'mvtec' });
    const testImages = dataset.samples('bottle', 'test').length;
    const variants = ALPHAS.map((alpha) => method.withPostForward({ alpha }));
    const group = (from: FeatureExtractor) =>
      seconds(() => evaluateDatasetGroup({ variants, extractor: from, dataset }));
    const separate = (from: FeatureExtractor) =>
      seconds(async () => {
        for (const variant of variants)
          await evaluateDataset({ method: variant, extractor: from, dataset });
      });
    const groupS = await group(extractor);
    const separateS = await separate(extractor);
    const cache = new FeatureCache({ dir: join(dir, 'cache'), memoryBytes: 8 * 1024 ** 3 });
    const cached = new FeatureExtractor({
      clip,
      weightsHash: 'bench',
      request: method.features,
      cache,
      chunkSize: 1,
    });
    // Warm the cache (as an earlier trial of the sweep would), then time both on cache hits.
    for (const sample of dataset.samples('bottle', 'test'))
      await cached.extract([
        { pixels: await loadImageTensorData(sample.imagePath, size), cacheable: true },
      ]);
    const groupCachedS = await group(cached);
    const separateCachedS = await separate(cached);
    variants.forEach((variant) => variant.dispose());
    const per = (s: number) => `${((1000 * s) / testImages).toFixed(0).padStart(6)} ms/image`;
    console.log(`  ${ALPHAS.length} α values on ${testImages} test images (metrics included):`);
    for (const [what, g, sep] of [
      ['features computed', groupS, separateS],
      ['features cached  ', groupCachedS, separateCachedS],
    ] as const)
      console.log(
        `    ${what}: one group ${per(g)}, 5 separate (baseline) ${per(sep)}: group ×${(sep / g).toFixed(2)} faster`,
      );
  } finally {
    rmSync(dir, { recursive: true, force: true });
    method.dispose();
    clip.dispose();
  }
}

const arg = process.argv.indexOf('--config');
if (arg > 0) {
  await child(process.argv[arg + 1] as ConfigName);
} else {
  const names = (process.env.INFER_BENCH_CONFIGS ?? 'B,L').split(',') as ConfigName[];
  for (const name of names) {
    if (!(name in CONFIGS)) throw new Error(`INFER_BENCH_CONFIGS: unknown "${name}" (B or L)`);
    // One process per configuration, so that its peak RSS is its own.
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', fileURLToPath(import.meta.url), '--config', name],
      { stdio: 'inherit' },
    );
    if (r.status !== 0) process.exit(r.status ?? 1);
  }
}
