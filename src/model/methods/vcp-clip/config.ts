/**
 * VCP-CLIP's config: fields, types and defaults are schemas/methods/vcp-clip.schema.json
 * (the type is generated from it into config.generated.ts); here are only the checks across
 * fields, against the backbone, and the method's registry entry.
 */
import type { BackboneShape } from '../../clip/presets.js';
import {
  checkHeads,
  checkImageSize,
  checkLayers,
  methodDefaults,
  readMethodSchema,
  resolveMethodConfig,
  type BackboneRef,
  type ConfigIssue,
  type MethodDefinition,
} from '../config.js';
import type { VcpClipConfig, VcpClipConfigInput } from './config.generated.js';

export type { VcpClipConfig, VcpClipConfigInput } from './config.generated.js';
export { ConfigError } from '../config.js';
export type DtpPosition = VcpClipConfig['dtp_position'];
export type ImageScoreRule = VcpClipConfig['image_score'];

/** Layers within the backbone, Post-VCP heads dividing its width, Pre-VCP's width condition. */
export function checkVcpClipConfig(config: VcpClipConfig, backbone: BackboneRef): ConfigIssue[] {
  const { shape, name } = backbone;
  const issues = [
    ...checkLayers(config.layers, backbone),
    ...checkHeads(config.heads, backbone, ['heads']),
    ...checkImageSize(config.image_size, backbone),
  ];
  if (config.pre_vcp && shape.textWidth !== shape.embedDim)
    issues.push({
      path: ['pre_vcp'],
      message: `got pre_vcp true, expected false for ${name}: Pre-VCP needs text width (${shape.textWidth}) = embed dim (${shape.embedDim})`,
    });
  return issues;
}

/** The registry entry of VCP-CLIP (src/model/methods/index.ts). */
export const VCP_CLIP: MethodDefinition<VcpClipConfig> = {
  name: 'vcp-clip',
  schema: readMethodSchema('vcp-clip'),
  check: checkVcpClipConfig,
  load: async () => (await import('./model.js')).createVcpClip,
};

/** The paper's defaults (from the schema). */
export const VCP_CLIP_DEFAULTS = methodDefaults(VCP_CLIP) as unknown as VcpClipConfig;

/**
 * Validates `input`, fills the defaults, and checks it against `backbone` (default: the known
 * architecture `input.backbone` names; give the shape for a checkpoint or test model).
 */
export function resolveVcpClipConfig(
  input: VcpClipConfigInput = {},
  options: { source?: string; backbone?: BackboneShape; backboneName?: string } = {},
): VcpClipConfig {
  const backbone = options.backbone
    ? { shape: options.backbone, name: options.backboneName ?? 'the loaded CLIP' }
    : undefined;
  return resolveMethodConfig(VCP_CLIP, input, { backbone, source: options.source });
}
