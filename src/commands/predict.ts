/**
 * `vcp-exp predict --checkpoint DIR IMAGE... --out DIR [--dump DIR] [--raw npy|png16]`: anomaly
 * maps of images with a trained checkpoint. Per image: a heat-map overlay PNG, the raw final map
 * (float32 .npy or 16-bit PNG) and the image score printed. The given images are treated as one
 * product (smoothing, then min–max normalisation over all of them, as at evaluation).
 * `--dump` writes float32 .npy tensors (text embeddings, every branch's per-layer maps, the
 * fused map) so another implementation can be compared tensor by tensor.
 */
import { mkdir } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { UserError } from '../errors.js';
import {
  normalizeClip,
  readImageRgb,
  resizeRgb,
  writePngGray16,
  writePngRgb,
} from '../datasets/image-io.js';
import { writeNpy } from '../io/npy.js';
import { initBackend, describeBackend, type BackendChoice } from '../model/backend.js';
import { applyCheckpoint, loadCheckpoint } from '../model/checkpoint.js';
import { FeatureExtractor } from '../model/features.js';
import { postprocessProduct, predictImages, selectScores } from '../model/infer.js';
import { loadMethod } from '../model/load.js';

export interface PredictCommandOptions {
  backend: string;
  checkpoint?: string;
  out?: string;
  dump?: string;
  raw?: string;
  batch?: number;
}

/** Jet-like colormap: 0 → dark blue, 0.5 → green/yellow, 1 → dark red. */
export function jet(v: number): [number, number, number] {
  const x = Math.min(1, Math.max(0, v));
  const channel = (offset: number) =>
    Math.round(255 * Math.min(1, Math.max(0, 1.5 - Math.abs(4 * x - offset))));
  return [channel(3), channel(2), channel(1)];
}

/** The colour map blended over the image (weight 0.5). image [S, S, 3], map [S·S] in [0, 1]. */
export function overlay(image: Uint8Array, map: Float32Array): Uint8Array {
  const out = new Uint8Array(image.length);
  for (let p = 0; p < map.length; p++) {
    const c = jet(map[p]);
    for (let k = 0; k < 3; k++) out[p * 3 + k] = Math.round(0.5 * image[p * 3 + k] + 0.5 * c[k]);
  }
  return out;
}

export async function predictCommand(
  images: string[],
  options: PredictCommandOptions,
): Promise<void> {
  if (!options.checkpoint)
    throw new UserError('predict: --checkpoint DIR is required', {
      hint: 'a directory written by vcp-exp train (…/checkpoint)',
    });
  if (!options.out) throw new UserError('predict: --out DIR is required');
  if (images.length === 0) throw new UserError('predict: give at least one image');
  const raw = options.raw ?? 'npy';
  if (raw !== 'npy' && raw !== 'png16')
    throw new UserError(`--raw: got "${raw}", expected npy or png16`);
  const info = await initBackend(options.backend as BackendChoice);
  console.error(`backend: ${describeBackend(info)}`);
  const checkpoint = await loadCheckpoint(options.checkpoint);
  const { backbone, method } = await loadMethod(checkpoint.config.method, checkpoint.config.config);
  try {
    applyCheckpoint(method, checkpoint, backbone.sha256);
    const s = method.features.imageSize;
    const resized = await Promise.all(
      images.map(async (file) => resizeRgb(await readImageRgb(file), s, s, 'bicubic')),
    );
    const extractor = new FeatureExtractor({
      clip: backbone.clip,
      weightsHash: backbone.sha256,
      request: method.features,
    });
    const predictions = await predictImages(
      method,
      extractor,
      resized.map((image) => ({ pixels: normalizeClip(image), cacheable: false })),
      {
        batchSize: options.batch ?? 4,
        keepExtras: options.dump !== undefined,
      },
    );
    const post = postprocessProduct(method, predictions);
    const scores = selectScores(method, post);
    await mkdir(options.out, { recursive: true });
    const names = uniqueStems(images);
    for (let i = 0; i < images.length; i++) {
      const stem = names[i];
      const map = post.maps[i];
      await writePngRgb(join(options.out, `${stem}_overlay.png`), {
        width: s,
        height: s,
        data: overlay(resized[i].data, map),
      });
      if (raw === 'npy') await writeNpy(join(options.out, `${stem}_map.npy`), map, [s, s]);
      else
        await writePngGray16(
          join(options.out, `${stem}_map.png`),
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
      }
      console.log(
        `${images[i]}\tscore ${scores[i].toFixed(6)}\tmax ${post.maxScores[i].toFixed(6)}`,
      );
    }
  } finally {
    method.dispose();
    backbone.clip.dispose();
  }
}

/** Output names from the image file names, numbered when two images share one. */
function uniqueStems(files: string[]): string[] {
  const seen = new Map<string, number>();
  return files.map((file) => {
    const stem = basename(file, extname(file));
    const n = seen.get(stem) ?? 0;
    seen.set(stem, n + 1);
    return n === 0 ? stem : `${stem}_${n}`;
  });
}
