/**
 * What a method costs, measured where it runs: its trainable parameter count and its inference
 * time per image at batch 1 (as both papers' test scripts run), from pixels to the final map:
 * frozen CLIP encoder (never from the feature cache), the method's forward and its
 * post-processing (smoothing). Logged by every trial, so methods compared in one sweep are
 * measured on the same machine.
 */
import type { ClipModel } from './clip/model.js';
import { FeatureExtractor, type FeatureImage } from './features.js';
import { postprocessProduct, predictImages } from './infer.js';
import type { ZeroShotMethod } from './methods/method.js';

/** Scalars in the method's learnable tensors (CLIP excluded). */
export function parameterCount(method: ZeroShotMethod): number {
  let n = 0;
  for (const v of method.parameters().values()) n += v.size;
  return n;
}

/**
 * Milliseconds per image (mean over `images`, after one untimed warm-up image) of encoder +
 * forward + post-processing at batch 1.
 */
export async function inferenceMsPerImage(
  method: ZeroShotMethod,
  clip: ClipModel,
  images: readonly FeatureImage[],
): Promise<number> {
  if (images.length === 0) throw new RangeError('inferenceMsPerImage: no images');
  const extractor = new FeatureExtractor({ clip, weightsHash: 'timing', request: method.features });
  const once = async (image: FeatureImage) => {
    const predictions = await predictImages(method, extractor, [{ ...image, cacheable: false }], {
      batchSize: 1,
    });
    postprocessProduct(method, predictions);
  };
  await once(images[0]);
  const started = performance.now();
  for (const image of images) await once(image);
  return (performance.now() - started) / images.length;
}
