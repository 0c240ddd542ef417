/**
 * One training step of VCP-CLIP at ViT-B-16@224 shapes (random weights made in-process), batch 8:
 * text sequences cut after EOS vs full 77, and frozen features from the cache vs recomputed by
 * the vision tower. Baseline: the default (truncated, cached) step measured in the same run.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FeatureCache } from '../src/model/feature-cache.js';
import { Rng } from '../src/io/prng.js';
import type { Sample } from '../src/datasets/types.js';
import { initBackend, describeBackend } from '../src/model/backend.js';
import { NO_AUGMENT } from '../src/model/augment.js';
import { createClipModel } from '../src/model/clip/model.js';
import { clipPreset } from '../src/model/clip/presets.js';
import type { RawTensor } from '../src/io/safetensors.js';
import { expectedClipTensors } from '../src/model/clip/tensors.js';
import { ClipTokenizer } from '../src/model/clip/tokenizer.js';
import { FeatureExtractor } from '../src/model/features.js';
import { resolveVcpClipConfig } from '../src/model/methods/vcp-clip/config.js';
import { backboneShapeOf, VcpClipMethod } from '../src/model/methods/vcp-clip/model.js';
import { trainMethod } from '../src/model/train.js';
import { tinyTokenizerJson } from '../tests/model/clip/helpers.js';

const info = await initBackend('auto');
console.log(`backend: ${describeBackend(info)}`);
const config = clipPreset('ViT-B-16');
const rng = new Rng(1);
const tensors = new Map<string, RawTensor>();
for (const [name, shape] of expectedClipTensors(config)) {
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  const scale = name.includes('norm') && name.endsWith('weight') ? 0 : 0.02;
  for (let i = 0; i < data.length; i++)
    data[i] =
      (name.includes('norm') && name.endsWith('weight') ? 1 : 0) + scale * (rng.next() * 2 - 1);
  tensors.set(name, { dtype: 'F32', shape, data });
}
tensors.set('logit_scale', { dtype: 'F32', shape: [], data: new Float32Array([4.6]) });
const clip = createClipModel(config, tensors, {
  activation: 'gelu',
  posEmbedResize: 'bicubic_antialias',
});
tensors.clear();
const tokenizer = ClipTokenizer.fromJson(tinyTokenizerJson(), {});
const S = 224;
const B = 8;
const samples: Sample[] = Array.from({ length: B }, (_, i) => ({
  imagePath: `${i}`,
  maskPath: null,
  product: 'p',
  defect: 'good',
  label: 0,
}));
const load = async (sample: Sample) => {
  const r = new Rng(Number(sample.imagePath) + 10);
  const data = new Uint8Array(S * S * 3).map(() => Math.floor(r.next() * 256));
  const mask = new Uint8Array(S * S).map(() => (r.next() < 0.05 ? 1 : 0));
  return { image: { width: S, height: S, data }, mask };
};
const cacheDir = mkdtempSync(join(tmpdir(), 'vcp-bench-train-'));

async function msPerStep(truncate: boolean, cached: boolean, steps = 2): Promise<number> {
  const methodConfig = resolveVcpClipConfig(
    { backbone: 'ViT-B-16', image_size: S, layers: [3, 6, 9, 12] },
    { backbone: backboneShapeOf({ clip, tokenizer }) },
  );
  const method = new VcpClipMethod(methodConfig, { clip, tokenizer }, { truncate });
  const cache = cached ? new FeatureCache({ dir: cacheDir, memoryBytes: 1 << 30 }) : undefined;
  const extractor = new FeatureExtractor({
    clip,
    weightsHash: 'bench',
    request: method.features,
    cache,
    chunkSize: B,
  });
  const schedule = { epochs: 1, batch_size: B, micro_batch: B, augment: { ...NO_AUGMENT } };
  await trainMethod({ method, extractor, samples, schedule, seed: 1, load }); // warm-up (and fills the cache)
  const start = performance.now();
  await trainMethod({
    method,
    extractor,
    samples,
    schedule: { ...schedule, epochs: steps },
    seed: 1,
    load,
  });
  const ms = (performance.now() - start) / steps;
  method.dispose();
  return ms;
}

const base = await msPerStep(true, true);
const rows: [string, number][] = [
  ['truncated text, cached features (default)', base],
  ['full 77-token text, cached features', await msPerStep(false, true)],
  ['truncated text, features recomputed', await msPerStep(true, false)],
];
console.log(`one training step, batch ${B}, ViT-B-16 @ ${S}, layers 3/6/9/12 (random weights)`);
for (const [name, ms] of rows)
  console.log(
    `  ${name.padEnd(44)} ${ms.toFixed(0).padStart(7)} ms/step   ×${(ms / base).toFixed(2)} vs default`,
  );
clip.dispose();
rmSync(cacheDir, { recursive: true, force: true });
