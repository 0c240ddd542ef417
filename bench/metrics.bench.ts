/**
 * Metrics of one product of 100 images at 518×518 (27M pixels): the streaming TypeScript
 * evaluation vs the Python reference (sklearn + the public cal_pro_score port) on the same
 * inputs, timed in the same run, with the peak RSS of the TypeScript side and the largest
 * difference between the two sets of values.
 * Env: VCP_BENCH_IMAGES (default 100), VCP_EXP_PYTHON (a Python made from
 * python/requirements-golden.txt, see python/README.md; without it the Python side is skipped).
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { evaluateProduct } from '../src/eval/evaluate.js';
import { mapMaximum } from '../src/eval/image.js';
import { npyHeader } from '../src/io/npy.js';
import { PixelAccumulator } from '../src/eval/pixels.js';
import { auproExact } from '../src/eval/pro.js';

const IMAGES = Number(process.env.VCP_BENCH_IMAGES ?? 100);
const SIZE = 518;
const PYTHON = process.env.VCP_EXP_PYTHON ?? '';

/** mulberry32: deterministic inputs without a dependency. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Blob masks (every fifth image normal) and maps = 0.35·mask + 0.65·uniform noise. */
function generate(index: number, map: Float32Array, mask: Uint8Array): void {
  const random = prng(1000 + index);
  mask.fill(0);
  const blobs = index % 5 === 0 ? 0 : 1 + Math.floor(random() * 4);
  for (let b = 0; b < blobs; b++) {
    const cy = random() * SIZE;
    const cx = random() * SIZE;
    const r = 3 + random() * 40;
    for (let y = Math.max(0, Math.floor(cy - r)); y < Math.min(SIZE, Math.ceil(cy + r)); y++) {
      for (let x = Math.max(0, Math.floor(cx - r)); x < Math.min(SIZE, Math.ceil(cx + r)); x++) {
        if ((y - cy) ** 2 + (x - cx) ** 2 <= r * r) mask[y * SIZE + x] = 1;
      }
    }
  }
  for (let k = 0; k < map.length; k++) map[k] = 0.35 * mask[k] + 0.65 * random();
}

const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MB`;

const dir = mkdtempSync(join(tmpdir(), 'vcp-metrics-bench-'));
try {
  const mapsFile = openSync(join(dir, 'maps.npy'), 'w');
  const masksFile = openSync(join(dir, 'masks.npy'), 'w');
  writeSync(mapsFile, npyHeader('<f4', [IMAGES, SIZE, SIZE]));
  writeSync(masksFile, npyHeader('|u1', [IMAGES, SIZE, SIZE]));
  const map = new Float32Array(SIZE * SIZE);
  const mask = new Uint8Array(SIZE * SIZE);
  const rssBefore = process.memoryUsage().rss;

  const acc = new PixelAccumulator();
  const imageScores: number[] = [];
  const imageLabels: number[] = [];
  let addMs = 0;
  for (let i = 0; i < IMAGES; i++) {
    generate(i, map, mask);
    writeSync(mapsFile, map);
    writeSync(masksFile, mask);
    const start = performance.now();
    acc.add(map, mask, SIZE, SIZE);
    imageScores.push(mapMaximum(map));
    imageLabels.push(mask.some((v) => v !== 0) ? 1 : 0);
    addMs += performance.now() - start;
  }
  closeSync(mapsFile);
  closeSync(masksFile);
  let start = performance.now();
  const pixels = acc.finish();
  const sortMs = performance.now() - start;
  start = performance.now();
  const metrics = evaluateProduct(
    { product: 'bench', pixels, imageScores, imageLabels },
    { pro: 'paper' },
  );
  const metricsMs = performance.now() - start;
  start = performance.now();
  const exact = auproExact(pixels).value;
  const exactMs = performance.now() - start;
  const peakRss = process.resourceUsage().maxRSS * 1024;
  const tsTotal = addMs + sortMs + metricsMs;

  console.log(
    `product: ${IMAGES} images ${SIZE}×${SIZE} = ${(metrics.pixels / 1e6).toFixed(1)}M pixels, ${(metrics.anomalousPixels / 1e6).toFixed(2)}M anomalous, ${metrics.regions} regions`,
  );
  console.log(
    `TS   collect (CCL + split) ${addMs.toFixed(0)} ms, radix sort ${sortMs.toFixed(0)} ms, metrics (AUROC, AP, F1, IoU, paper PRO, image) ${metricsMs.toFixed(0)} ms → ${(tsTotal / 1000).toFixed(2)} s; exact AUPRO +${exactMs.toFixed(0)} ms`,
  );
  console.log(
    `TS   peak RSS ${mb(peakRss)} (RSS before collecting ${mb(rssBefore)}; sorted pixels ${mb(pixels.negatives.byteLength + 2 * pixels.positives.byteLength)})`,
  );

  const ts: Record<string, number | null> = {
    pixelAuroc: metrics.pixelAuroc,
    pixelAp: metrics.pixelAp,
    pixelF1Max: metrics.pixelF1Max,
    pro: metrics.pro,
    proExact: exact,
    imageAuroc: metrics.imageAuroc,
  };
  if (!PYTHON || !existsSync(PYTHON)) {
    console.log(
      `Python side skipped: ${PYTHON ? `no interpreter at ${PYTHON}` : 'VCP_EXP_PYTHON is not set'} (python/README.md)`,
    );
  } else {
    const r = spawnSync(
      PYTHON,
      [new URL('../python/golden/bench_metrics.py', import.meta.url).pathname, dir],
      { encoding: 'utf8', maxBuffer: 1 << 20 },
    );
    if (r.status !== 0) {
      console.log(`Python side skipped: ${r.stderr.trim().split('\n').pop()}`);
    } else {
      const py = JSON.parse(r.stdout) as {
        values: Record<string, number>;
        seconds: Record<string, number>;
      };
      let maxError = 0;
      for (const [name, value] of Object.entries(py.values)) {
        const diff = Math.abs((ts[name] as number) - value);
        maxError = Math.max(maxError, diff);
        console.log(
          `  ${name.padEnd(11)} TS ${(ts[name] as number).toFixed(9)}  Python ${value.toFixed(9)}  |Δ| ${diff.toExponential(1)}  Python ${py.seconds[name].toFixed(2)} s`,
        );
      }
      const pyTotal = ['pixelAuroc', 'pixelAp', 'pixelF1Max', 'pro', 'imageAuroc'].reduce(
        (s, k) => s + py.seconds[k],
        0,
      );
      console.log(
        `Python (sklearn ×3 + cal_pro_score + image AUROC) ${pyTotal.toFixed(2)} s; exact AUPRO ${py.seconds.proExact.toFixed(2)} s`,
      );
      console.log(
        `ratio Python / TS: ${(pyTotal / (tsTotal / 1000)).toFixed(1)}x; exact AUPRO ${(py.seconds.proExact / (exactMs / 1000)).toFixed(1)}x; max |Δ| over metrics ${maxError.toExponential(2)}`,
      );
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
