/**
 * Datasets benchmark: (1) images/s of decode + PIL-exact bicubic resize + CLIP normalisation,
 * 1024² PNG → [3, 518, 518], against sharp's own cubic resize as the baseline; (2) feature
 * cache get (verify + decode) against a bare readFile of the same entry, fp32 vs fp16 sizes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { FeatureCache, type CachedTensors } from '../src/model/feature-cache.js';
import { normalizeClip, readImageRgb, resizeRgb, writePngRgb } from '../src/datasets/image-io.js';
import { Rng } from '../src/io/prng.js';
import { renderSynthSample } from '../src/datasets/synth.js';

const S = 518;
const IMAGES = 6;
const dir = mkdtempSync(join(tmpdir(), 'vcp-bench-datasets-'));

async function time(label: string, repeats: number, run: () => Promise<unknown>): Promise<number> {
  await run(); // warm-up
  const start = performance.now();
  for (let i = 0; i < repeats; i++) await run();
  const ms = (performance.now() - start) / repeats;
  console.log(`${label.padEnd(52)} ${ms.toFixed(1).padStart(8)} ms`);
  return ms;
}

try {
  const paths: string[] = [];
  for (let i = 0; i < IMAGES; i++) {
    const path = join(dir, `img${i}.png`);
    await writePngRgb(
      path,
      renderSynthSample(i % 2 ? 'wood' : 'bottle', 'good', 'test', i, 0, 1024).image,
    );
    paths.push(path);
  }
  let k = 0;
  const next = (): string => paths[k++ % paths.length];

  console.log(
    `image loading, 1024² PNG → [3, ${S}, ${S}] float32 (per image, ${IMAGES} images cycled)`,
  );
  const decode = await time('decode (sharp)', 12, () => readImageRgb(next()));
  const image = await readImageRgb(paths[0]);
  const resize = await time('resize (PIL-exact bicubic, ours)', 6, async () =>
    resizeRgb(image, S, S),
  );
  const small = resizeRgb(image, S, S);
  const norm = await time('CLIP normalisation', 20, async () => normalizeClip(small));
  const ours = await time('total: decode + resize + normalise (ours)', 12, async () =>
    normalizeClip(resizeRgb(await readImageRgb(next()), S, S)),
  );
  const base = await time('baseline: sharp cubic resize + normalise', 12, async () => {
    const { data, info } = await sharp(next())
      .removeAlpha()
      .resize(S, S, { fit: 'fill', kernel: 'cubic' })
      .raw()
      .toBuffer({ resolveWithObject: true });
    return normalizeClip({ width: info.width, height: info.height, data });
  });
  console.log(
    `  → ${(1000 / ours).toFixed(1)} images/s (ours, PIL-exact) vs ${(1000 / base).toFixed(1)} images/s (sharp cubic, not PIL-exact); ratio ${(ours / base).toFixed(2)}× the baseline's time`,
  );
  console.log(
    `  → breakdown: decode ${decode.toFixed(0)} ms, resize ${resize.toFixed(0)} ms, normalise ${norm.toFixed(0)} ms`,
  );

  // A ViT-L-14-336 entry at 518: 4 layers × 1369 patch tokens × 1024, plus the 768-d global feature.
  const rng = new Rng(1);
  const entry: CachedTensors = new Map([
    [
      'dense',
      { shape: [4, 1369, 1024], data: new Float32Array(4 * 1369 * 1024).map(() => rng.normal()) },
    ],
    ['global', { shape: [768], data: new Float32Array(768).map(() => rng.normal()) }],
  ]);
  console.log('\nfeature cache, one ViT-L-14-336 @518 entry (4×1369×1024 + 768 floats)');
  const sizes: Record<string, number> = {};
  for (const dtype of ['float32', 'float16'] as const) {
    const cache = new FeatureCache({ dir: join(dir, dtype), dtype });
    const key = cache.key({ image: 'bench', dtype });
    await time(`${dtype}: put (encode + checksum + atomic write)`, 3, () => cache.put(key, entry));
    sizes[dtype] = cache.stats().bytes;
    const file = join(cache.dir, `${key}.safetensors`);
    const raw = await time(`${dtype}: bare readFile of the entry (floor)`, 10, () =>
      readFile(file),
    );
    const get = await time(`${dtype}: cache.get (read + verify + decode)`, 10, () =>
      cache.get(key),
    );
    console.log(
      `  → get is ${(get / raw).toFixed(2)}× a bare read; ${(sizes[dtype] / 2 ** 20).toFixed(1)} MiB on disk`,
    );
  }
  console.log(`\nfp16 / fp32 entry size: ${(sizes.float16 / sizes.float32).toFixed(3)}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
