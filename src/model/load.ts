/**
 * Builds what training and inference need from a method config: the frozen CLIP model named by
 * `backbone` (a checkpoint directory, a known architecture name or a hub id pulled into the
 * cache, or a CLIP shipped with the package) with the method's activation and
 * positional-embedding resize, its tokenizer and weights hash, then the method itself.
 */
import { backboneDir } from './backbones.js';
import type { Activation, PosEmbedResize } from './clip/config.js';
import { createClipModel, type ClipModel } from './clip/model.js';
import type { ClipTokenizer } from './clip/tokenizer.js';
import { openClipCheckpoint } from './clip/weights.js';
import { createMethod } from './methods/index.js';
import type { ZeroShotMethod } from './methods/method.js';

export { backboneDir };

export interface LoadedBackbone {
  clip: ClipModel;
  tokenizer: ClipTokenizer;
  /** sha256 of model.safetensors. */
  sha256: string;
  dir: string;
  /** As the config names it (e.g. ViT-L-14-336 or a directory). */
  name: string;
}

export async function loadBackbone(
  backbone: string,
  activation: Activation,
  posEmbedResize?: PosEmbedResize,
): Promise<LoadedBackbone> {
  const dir = backboneDir(backbone);
  const checkpoint = await openClipCheckpoint(dir);
  const clip = createClipModel(checkpoint.config, checkpoint.tensors, {
    activation,
    posEmbedResize,
    source: `${dir}/model.safetensors`,
  });
  return { clip, tokenizer: checkpoint.tokenizer, sha256: checkpoint.hash, dir, name: backbone };
}

/** Loads the backbone of `config` and builds the method on it. */
export async function loadMethod(
  name: string,
  config: Record<string, unknown>,
): Promise<{ backbone: LoadedBackbone; method: ZeroShotMethod }> {
  const backbone = await loadBackbone(
    String(config.backbone),
    (config.activation as Activation | undefined) ?? 'gelu',
    (config.pos_embed_resize as PosEmbedResize | undefined) ?? 'bicubic_antialias',
  );
  try {
    return {
      backbone,
      method: await createMethod(name, config, {
        clip: backbone.clip,
        tokenizer: backbone.tokenizer,
      }),
    };
  } catch (error) {
    backbone.clip.dispose();
    throw error;
  }
}
