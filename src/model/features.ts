/**
 * Frozen CLIP features for a batch of images, as a method's `features` request asks for them.
 * CLIP never trains, so an image that is not augmented (always at test time) has features that
 * depend only on (weights hash, image size, layers, CLIP options, pixels): those come from the
 * FeatureCache when present, and the encoder runs only for the misses and augmented images,
 * in chunks of `chunkSize` images to bound memory.
 */
import { contentHash, type CachedTensors, type FeatureCache } from './feature-cache.js';
import type { ClipModel } from './clip/model.js';
import type { FeatureRequest, FrozenFeatures } from './methods/method.js';
import { tf } from './tf.js';
import type { Tensor2D, Tensor3D, Tensor4D } from './tf.js';

export interface FeatureImage {
  /** CLIP-normalised pixels, channel-first. [3, S, S] */
  pixels: Float32Array;
  /** False for an augmented image: its features are computed, never cached. */
  cacheable: boolean;
  /** Identity of the pixels for the cache key (default: sha256 of `pixels`). */
  contentHash?: string;
}

export interface FeatureStats {
  /** Images whose features came from the cache. */
  hits: number;
  /** Cacheable images not in the cache (computed, then stored). */
  misses: number;
  /** Images run through the encoder (misses + augmented + no cache). */
  encoded: number;
}

export interface FeatureExtractorOptions {
  clip: ClipModel;
  /** sha256 of the CLIP weights (part of every cache key). */
  weightsHash: string;
  request: FeatureRequest;
  cache?: FeatureCache;
  /** Images per encoder forward (default 8; fewer for large inputs, see ENCODER_TOKENS). */
  chunkSize?: number;
  /**
   * The cache entries' group (the trials' feature key id): a running sweep keeps the groups
   * its pending trials need (FeatureCache.pin). Default: ungrouped.
   */
  group?: string;
}

/** Per-image features on the CPU: `layer.<i>` [L, Dv or D] for each requested layer, `global` [D]. */
type ImageFeatures = CachedTensors;

/**
 * Tokens per encoder forward, at most (unless one image has more): the encoder's activations
 * grow with the tokens it holds at once (one ViT-L-14 image at 518 px: 1370 tokens, ~0.4 GB),
 * while a few hundred tokens already keep its matMuls efficient. Batch 8 at ViT-B-16@224 and
 * below is unchanged; ViT-L-14@518 goes one image at a time, as the public code's test does.
 */
export const ENCODER_TOKENS = 2048;

/** Images per encoder forward: `chunkSize`, fewer when their tokens pass ENCODER_TOKENS. */
export function encoderChunk(chunkSize: number, imageSize: number, patchSize: number): number {
  const tokens = (imageSize / patchSize) ** 2 + 1;
  return Math.max(1, Math.min(chunkSize, Math.floor(ENCODER_TOKENS / tokens)));
}

export class FeatureExtractor {
  readonly stats: FeatureStats = { hits: 0, misses: 0, encoded: 0 };
  /** Images per encoder forward (encoderChunk): also the most a test-time forward should take. */
  readonly chunkSize: number;

  constructor(private readonly options: FeatureExtractorOptions) {
    this.chunkSize = encoderChunk(
      Math.max(1, options.chunkSize ?? 8),
      options.request.imageSize,
      options.clip.config.vision.patchSize,
    );
  }

  /** The cache key of an un-augmented image with this content hash. */
  key(imageHash: string): string {
    const { clip, weightsHash, request, cache } = this.options;
    if (!cache) throw new Error('FeatureExtractor.key: no cache configured');
    return cache.key(
      {
        kind: 'vcp-exp frozen clip features v1',
        weights: weightsHash,
        image_size: request.imageSize,
        layers: request.layers,
        activation: clip.options.activation,
        pos_embed_resize: clip.options.posEmbedResize,
        // Only when they differ from the defaults, so the keys of earlier caches stay valid.
        ...(request.tokens && request.tokens !== 'raw' ? { tokens: request.tokens } : {}),
        ...(request.global && request.global !== 'ln_post' ? { global: request.global } : {}),
        image: imageHash,
      },
      this.options.group,
    );
  }

  /** Features of `images` (all S×S) as tensors the caller disposes. */
  async extract(images: readonly FeatureImage[]): Promise<FrozenFeatures> {
    const { cache } = this.options;
    const found: (ImageFeatures | undefined)[] = new Array(images.length);
    const keys: (string | undefined)[] = images.map((image) =>
      cache && image.cacheable
        ? this.key(
            image.contentHash ??
              contentHash(
                new Uint8Array(
                  image.pixels.buffer,
                  image.pixels.byteOffset,
                  image.pixels.byteLength,
                ),
              ),
          )
        : undefined,
    );
    if (cache) {
      await Promise.all(
        keys.map(async (key, i) => {
          if (!key) return;
          found[i] = await cache.get(key);
          if (found[i]) this.stats.hits++;
          else this.stats.misses++;
        }),
      );
    }
    const todo = images.map((_, i) => i).filter((i) => !found[i]);
    for (let start = 0; start < todo.length; start += this.chunkSize) {
      const chunk = todo.slice(start, start + this.chunkSize);
      const computed = this.encode(chunk.map((i) => images[i].pixels));
      this.stats.encoded += chunk.length;
      for (let j = 0; j < chunk.length; j++) {
        const i = chunk[j];
        // What the cache hands back is what a later hit gives (float16-rounded when so stored).
        found[i] = cache && keys[i] ? await cache.put(keys[i]!, computed[j]) : computed[j];
      }
    }
    return this.assemble(found as ImageFeatures[]);
  }

  /** Runs the vision tower on a chunk; returns per-image CPU features (class token dropped). */
  private encode(pixels: Float32Array[]): ImageFeatures[] {
    const { clip, request } = this.options;
    const s = request.imageSize;
    const b = pixels.length;
    const batch = new Float32Array(b * 3 * s * s);
    pixels.forEach((p, i) => {
      if (p.length !== 3 * s * s)
        throw new Error(`image ${i}: ${p.length} values, expected 3×${s}×${s}`);
      batch.set(p, i * 3 * s * s);
    });
    const input = tf.tidy(
      () => tf.tensor4d(batch, [b, 3, s, s]).transpose([0, 2, 3, 1]) as Tensor4D,
    ); // [B, S, S, 3]
    const out = clip.vision.forward(input, {
      layers: request.layers,
      tokens: request.tokens ?? 'raw',
      global: request.global ?? 'ln_post',
    });
    input.dispose();
    const result: ImageFeatures[] = Array.from({ length: b }, () => new Map());
    out.layers.forEach((layer, li) => {
      const [, t, w] = layer.shape; // [B, 1+L, Dv]
      const data = layer.dataSync() as Float32Array;
      for (let i = 0; i < b; i++) {
        // Copy, so the cache and later batches do not keep the whole chunk alive.
        const start = (i * t + 1) * w;
        result[i].set(`layer.${li}`, {
          shape: [t - 1, w],
          data: data.slice(start, start + (t - 1) * w),
        });
      }
    });
    const global = out.global.dataSync() as Float32Array;
    const d = out.global.shape[1];
    for (let i = 0; i < b; i++)
      result[i].set('global', { shape: [d], data: global.slice(i * d, (i + 1) * d) });
    tf.dispose([...out.layers, out.global]);
    return result;
  }

  private assemble(features: ImageFeatures[]): FrozenFeatures {
    const b = features.length;
    const patchTokens = this.options.request.layers.map((_, li) => {
      const [l, w] = features[0].get(`layer.${li}`)!.shape;
      const data = new Float32Array(b * l * w);
      features.forEach((f, i) => data.set(f.get(`layer.${li}`)!.data, i * l * w));
      return tf.tensor3d(data, [b, l, w]) as Tensor3D; // [B, L, Dv]
    });
    const d = features[0].get('global')!.shape[0];
    const global = new Float32Array(b * d);
    features.forEach((f, i) => global.set(f.get('global')!.data, i * d));
    return { patchTokens, global: tf.tensor2d(global, [b, d]) as Tensor2D }; // [B, D]
  }
}

/** Disposes the tensors of a FrozenFeatures. */
export function disposeFeatures(features: FrozenFeatures): void {
  tf.dispose([
    ...features.patchTokens,
    features.global,
    ...(features.classToken ? [features.classToken] : []),
  ]);
}
