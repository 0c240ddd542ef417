/**
 * ViP²-CLIP's config: fields, types and defaults are schemas/methods/vip2-clip.schema.json (the
 * type is generated from it into config.generated.ts). The defaults are the public code's
 * behaviour, quirks included, because the released checkpoints were trained with it; the paper's
 * intent is a field away (`normal_state_word: good`, `global_ln_post: true`). Here are only the
 * checks across fields, against the backbone, and the method's registry entry.
 */
import type { BackboneShape } from '../../clip/presets.js';
import {
  checkImageSize,
  checkLayers,
  methodDefaults,
  readMethodSchema,
  resolveMethodConfig,
  type BackboneRef,
  type ConfigIssue,
  type MethodDefinition,
} from '../config.js';
import type { Vip2ClipConfig, Vip2ClipConfigInput } from './config.generated.js';

export type { Vip2ClipConfig, Vip2ClipConfigInput } from './config.generated.js';
export { ConfigError } from '../config.js';
/** The state word of the normal prompt: 'damaged' is the code's quirk, 'good' the paper's intent. */
export type NormalStateWord = Vip2ClipConfig['normal_state_word'];

/** Layers within the backbone, S a multiple of its patch, FGP heads dividing the joint width D. */
export function checkVip2ClipConfig(config: Vip2ClipConfig, backbone: BackboneRef): ConfigIssue[] {
  const { shape, name } = backbone;
  const issues = [
    ...checkLayers(config.layers, backbone),
    ...checkImageSize(config.image_size, backbone),
  ];
  if (shape.embedDim % config.heads !== 0) {
    const divisors = Array.from({ length: Math.min(shape.embedDim, 64) }, (_, i) => i + 1).filter(
      (d) => shape.embedDim % d === 0,
    );
    issues.push({
      path: ['heads'],
      message: `got heads ${config.heads}, expected a divisor of the joint embedding width ${shape.embedDim} of ${name} (e.g. ${divisors.join(', ')})`,
    });
  }
  if (shape.embedDim < 2)
    issues.push({
      path: ['backbone'],
      message: `got ${name} with joint width ${shape.embedDim}, expected ≥ 2 (the Meta-Net hides D / 2)`,
    });
  return issues;
}

/** The frozen features ViP²-CLIP asks for, by config (also what the feature key must hold). */
export function vip2FeatureForms(config: Pick<Vip2ClipConfig, 'global_ln_post'>): {
  tokens: 'projected';
  global: 'ln_post' | 'no_ln_post';
} {
  return { tokens: 'projected', global: config.global_ln_post ? 'ln_post' : 'no_ln_post' };
}

/** The registry entry of ViP²-CLIP (src/model/methods/index.ts). */
export const VIP2_CLIP: MethodDefinition<Vip2ClipConfig> = {
  name: 'vip2-clip',
  schema: readMethodSchema('vip2-clip'),
  check: checkVip2ClipConfig,
  features: vip2FeatureForms,
  load: async () => (await import('./model.js')).createVip2Clip,
};

/** The public code's defaults (from the schema). */
export const VIP2_CLIP_DEFAULTS = methodDefaults(VIP2_CLIP) as unknown as Vip2ClipConfig;

/**
 * Validates `input`, fills the defaults, and checks it against `backbone` (default: the known
 * architecture `input.backbone` names; give the shape for a checkpoint or test model).
 */
export function resolveVip2ClipConfig(
  input: Vip2ClipConfigInput = {},
  options: { source?: string; backbone?: BackboneShape; backboneName?: string } = {},
): Vip2ClipConfig {
  const backbone = options.backbone
    ? { shape: options.backbone, name: options.backboneName ?? 'the loaded CLIP' }
    : undefined;
  return resolveMethodConfig(VIP2_CLIP, input, { backbone, source: options.source });
}
