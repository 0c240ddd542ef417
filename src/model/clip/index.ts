export {
  ACTIVATIONS,
  POS_EMBED_RESIZES,
  TOKEN_OUTPUTS,
  gridSize,
  parseClipConfig,
  resolveClipOptions,
} from './config.js';
export type {
  Activation,
  ClipConfig,
  ClipOptions,
  ClipOptionsInput,
  PosEmbedResize,
  TextConfig,
  TokenOutput,
  VisionConfig,
} from './config.js';
export { CLIP_PRESETS, CLIP_PRESET_NAMES, clipPreset } from './presets.js';
export type { ClipPresetName } from './presets.js';
export { ClipModel, createClipModel } from './model.js';
export type { CreateClipModelOptions } from './model.js';
export { ClipVisionTower } from './vision.js';
export type { VisionForwardOptions, VisionOutput, VisionWeights } from './vision.js';
export { ClipTextTower, findEosIndex } from './text.js';
export type { TextHooks, TextWeights, TokenIds } from './text.js';
export { checkClipTensors, expectedClipTensors } from './tensors.js';
export { interpolationMatrix, resizeGrid, resizePosEmbed } from './pos-embed.js';
export { readSafetensors } from '../../io/safetensors.js';
export type { RawTensor } from '../../io/safetensors.js';
