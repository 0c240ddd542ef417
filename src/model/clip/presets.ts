/**
 * The OpenAI CLIP ViT architectures the paper uses, as typed configs (the shapes of the
 * config.json of openai/clip-vit-base-patch16, clip-vit-large-patch14 and -patch14-336).
 * Used by benchmarks and to check a downloaded checkpoint against the name it was asked for.
 */
import { UserError } from '../../errors.js';
import type { ClipConfig, TextConfig } from './config.js';

export const CLIP_PRESET_NAMES = ['ViT-B-16', 'ViT-L-14', 'ViT-L-14-336'] as const;
export type ClipPresetName = (typeof CLIP_PRESET_NAMES)[number];

const TEXT_B: TextConfig = {
  vocabSize: 49408,
  contextLength: 77,
  width: 512,
  layers: 12,
  heads: 8,
  mlpDim: 2048,
  activation: 'quick_gelu',
  layerNormEps: 1e-5,
};
const TEXT_L: TextConfig = { ...TEXT_B, width: 768, heads: 12, mlpDim: 3072 };
const VISION_L = {
  patchSize: 14,
  width: 1024,
  layers: 24,
  heads: 16,
  mlpDim: 4096,
  activation: 'quick_gelu',
  layerNormEps: 1e-5,
} as const;

export const CLIP_PRESETS = {
  'ViT-B-16': {
    vision: {
      imageSize: 224,
      patchSize: 16,
      width: 768,
      layers: 12,
      heads: 12,
      mlpDim: 3072,
      activation: 'quick_gelu',
      layerNormEps: 1e-5,
    },
    text: TEXT_B,
    projectionDim: 512,
  },
  'ViT-L-14': { vision: { imageSize: 224, ...VISION_L }, text: TEXT_L, projectionDim: 768 },
  'ViT-L-14-336': { vision: { imageSize: 336, ...VISION_L }, text: TEXT_L, projectionDim: 768 },
} as const satisfies Record<ClipPresetName, ClipConfig>;

/** The config of a named architecture; an unknown name is a UserError listing the known ones. */
export function clipPreset(name: string): Readonly<ClipConfig> {
  if (!(CLIP_PRESET_NAMES as readonly string[]).includes(name)) {
    throw new UserError(
      `unknown CLIP architecture "${name}"; known: ${CLIP_PRESET_NAMES.join(', ')}`,
    );
  }
  return CLIP_PRESETS[name as ClipPresetName];
}

/** Shapes of a CLIP backbone that the method's config is checked against. */
export interface BackboneShape {
  visionLayers: number;
  visionWidth: number;
  patchSize: number;
  textWidth: number;
  embedDim: number;
}

/** The OpenAI backbones of the paper's backbone ablation, by architecture name. */
export const KNOWN_BACKBONES: Readonly<Record<string, BackboneShape>> = Object.fromEntries(
  Object.entries(CLIP_PRESETS).map(([name, c]) => [
    name,
    {
      visionLayers: c.vision.layers,
      visionWidth: c.vision.width,
      patchSize: c.vision.patchSize,
      textWidth: c.text.width,
      embedDim: c.projectionDim,
    },
  ]),
);

/** Hub ids of the OpenAI checkpoints, accepted for the architecture names. */
export const BACKBONE_ALIASES: Readonly<Record<string, ClipPresetName>> = {
  'openai/clip-vit-base-patch16': 'ViT-B-16',
  'openai/clip-vit-large-patch14': 'ViT-L-14',
  'openai/clip-vit-large-patch14-336': 'ViT-L-14-336',
};
