/**
 * Anomaly maps of image files with a checkpoint (what `vcp-exp predict` runs). Each image is
 * processed alone (its own batch), so its map and score do not depend on the other images given:
 * by default the raw fused map (smoothed by σ) and the method's raw image score; `normalize:
 * 'set'` min–max normalises maps and scores over the given images, as evaluation does over a
 * product. Overlays are drawn at each input's own resolution and aspect ratio; raw maps and
 * dumped tensors are at the model's S×S.
 */
import { mkdir } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import {
  normalizeClip,
  readImageRgb,
  resizeRgb,
  writePngGray16,
  writePngRgb,
  type RgbImage,
} from '../datasets/image-io.js';
import { writeNpy } from '../io/npy.js';
import { applyCheckpoint, loadCheckpoint } from './checkpoint.js';
import { FeatureExtractor } from './features.js';
import { postprocessProduct, predictImages, selectScores } from './infer.js';
import { loadMethod } from './load.js';

export type PredictNormalize = 'none' | 'set';

export interface PredictOptions {
  checkpoint: string;
  images: readonly string[];
  out: string;
  /** Also write every intermediate tensor as float32 .npy here (one folder per image). */
  dump?: string;
  raw?: 'npy' | 'png16';
  normalize?: PredictNormalize;
  /** Evaluation-only overrides of the checkpoint's config (e.g. alpha, sigma). */
  overrides?: Record<string, unknown>;
  /** Logs progress lines (default: none). */
  log?: (line: string) => void;
}

export interface PredictedImage {
  file: string;
  /** The selected image score (the method's rule), raw unless normalize is 'set'. */
  score: number;
  /** Maximum of the final map. */
  max: number;
  overlay: string;
  map: string;
}

/** Jet-like colormap: 0 → dark blue, 0.5 → green/yellow, 1 → dark red. */
export function jet(v: number): [number, number, number] {
  const x = Math.min(1, Math.max(0, v));
  const channel = (offset: number) =>
    Math.round(255 * Math.min(1, Math.max(0, 1.5 - Math.abs(4 * x - offset))));
  return [channel(3), channel(2), channel(1)];
}

/**
 * Bilinear resize of a float map [h·w] to [H·W] (half-pixel centres, edges clamped, as
 * F.interpolate(align_corners=False) and OpenCV's INTER_LINEAR).
 */
export function resizeMap(
  map: Float32Array,
  h: number,
  w: number,
  H: number,
  W: number,
): Float32Array {
  if (h === H && w === W) return map.slice();
  const out = new Float32Array(H * W);
  const axis = (n: number, N: number) =>
    Array.from({ length: N }, (_, i) => {
      const src = Math.min(Math.max((i + 0.5) * (n / N) - 0.5, 0), n - 1);
      const i0 = Math.floor(src);
      return { i0, i1: Math.min(i0 + 1, n - 1), t: src - i0 };
    });
  const ys = axis(h, H);
  const xs = axis(w, W);
  for (let y = 0; y < H; y++) {
    const { i0: y0, i1: y1, t: ty } = ys[y];
    for (let x = 0; x < W; x++) {
      const { i0: x0, i1: x1, t: tx } = xs[x];
      const top = map[y0 * w + x0] * (1 - tx) + map[y0 * w + x1] * tx;
      const bottom = map[y1 * w + x0] * (1 - tx) + map[y1 * w + x1] * tx;
      out[y * W + x] = top * (1 - ty) + bottom * ty;
    }
  }
  return out;
}

/** The colour map blended over the image (weight 0.5). map [H·W] in [0, 1] at the image's size. */
export function overlay(image: RgbImage, map: Float32Array): Uint8Array {
  const out = new Uint8Array(image.data.length);
  for (let p = 0; p < map.length; p++) {
    const c = jet(map[p]);
    for (let k = 0; k < 3; k++)
      out[p * 3 + k] = Math.round(0.5 * image.data[p * 3 + k] + 0.5 * c[k]);
  }
  return out;
}

/** Output names from the image file names, numbered when two images share one. */
export function uniqueStems(files: readonly string[]): string[] {
  const seen = new Map<string, number>();
  return files.map((file) => {
    const stem = basename(file, extname(file));
    const n = seen.get(stem) ?? 0;
    seen.set(stem, n + 1);
    return n === 0 ? stem : `${stem}_${n}`;
  });
}

export async function predictFiles(options: PredictOptions): Promise<PredictedImage[]> {
  const raw = options.raw ?? 'npy';
  const normalize = options.normalize ?? 'none';
  const checkpoint = await loadCheckpoint(options.checkpoint);
  const { backbone, method } = await loadMethod(checkpoint.config.method, {
    ...checkpoint.config.config,
    ...options.overrides,
  });
  try {
    applyCheckpoint(method, checkpoint, backbone.sha256);
    const s = method.features.imageSize;
    const extractor = new FeatureExtractor({
      clip: backbone.clip,
      weightsHash: backbone.sha256,
      request: method.features,
    });
    const originals: RgbImage[] = [];
    const predictions = [];
    for (const file of options.images) {
      const image = await readImageRgb(file);
      originals.push(image);
      // One image per forward: nothing about it depends on the others.
      const [prediction] = await predictImages(
        method,
        extractor,
        [{ pixels: normalizeClip(resizeRgb(image, s, s, 'bicubic')), cacheable: false }],
        { batchSize: 1, keepExtras: options.dump !== undefined },
      );
      predictions.push(prediction);
      options.log?.(`${file}: ${image.width}×${image.height} → ${s}×${s}`);
    }
    const post = postprocessProduct(method, predictions, { normalize: normalize === 'set' });
    const scores = selectScores(method, post);
    await mkdir(options.out, { recursive: true });
    const stems = uniqueStems(options.images);
    const results: PredictedImage[] = [];
    for (let i = 0; i < options.images.length; i++) {
      const stem = stems[i];
      const map = post.maps[i];
      const image = originals[i];
      const overlayFile = join(options.out, `${stem}_overlay.png`);
      await writePngRgb(overlayFile, {
        width: image.width,
        height: image.height,
        data: overlay(image, resizeMap(map, s, s, image.height, image.width)),
      });
      const mapFile = join(options.out, `${stem}_map.${raw === 'npy' ? 'npy' : 'png'}`);
      if (raw === 'npy') await writeNpy(mapFile, map, [s, s]);
      else
        await writePngGray16(
          mapFile,
          s,
          s,
          Uint16Array.from(map, (v) => Math.round(65535 * Math.min(1, Math.max(0, v)))),
        );
      if (options.dump) {
        const dir = join(options.dump, stem);
        await mkdir(dir, { recursive: true });
        const p = predictions[i];
        for (const [name, t] of p.extras ?? [])
          await writeNpy(join(dir, `${name}.npy`), t.data, t.shape);
        for (const [name, m] of p.layerMaps ?? [])
          await writeNpy(join(dir, `layer_map.${name}.npy`), m, [s, s]);
        await writeNpy(join(dir, 'fused_map.npy'), p.raw, [s, s]);
        await writeNpy(join(dir, 'final_map.npy'), map, [s, s]);
        if (p.methodScore !== null)
          await writeNpy(join(dir, 'score.npy'), Float32Array.of(p.methodScore), [1]);
      }
      results.push({
        file: options.images[i],
        score: scores[i],
        max: post.maxScores[i],
        overlay: overlayFile,
        map: mapFile,
      });
    }
    return results;
  } finally {
    method.dispose();
    backbone.clip.dispose();
  }
}
