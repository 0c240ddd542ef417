/**
 * A frozen CLIP model (both towers) built from a config and the tensors of a Hugging Face
 * CLIPModel checkpoint. weights.ts loads a checkpoint directory and calls createClipModel.
 */
import { resolveClipOptions } from './config.js';
import type { ClipConfig, ClipOptions, ClipOptionsInput } from './config.js';
import type { RawTensor } from '../../io/safetensors.js';
import { checkClipTensors, rawTensors, textWeights, visionWeights } from './tensors.js';
import type { RawTensors } from './tensors.js';
import { ClipTextTower } from './text.js';
import { ClipVisionTower } from './vision.js';

export interface CreateClipModelOptions extends ClipOptionsInput {
  /** Names the weights in errors, e.g. the path of model.safetensors. */
  source?: string;
}

export class ClipModel {
  constructor(
    readonly config: Readonly<ClipConfig>,
    readonly options: Readonly<ClipOptions>,
    readonly vision: ClipVisionTower,
    readonly text: ClipTextTower,
    /** The learned temperature, log scale (exp gives CLIP's logit multiplier). */
    readonly logitScale: number,
  ) {}

  dispose(): void {
    this.vision.dispose();
    this.text.dispose();
  }
}

/**
 * Checks every expected tensor (present, right shape; a UserError names the first problem) and
 * converts them once to the forward's layouts. Loaded tensors (a Map) can be dropped afterwards;
 * from a file (RawTensors read on demand) only one raw tensor is in memory at a time.
 */
export function createClipModel(
  config: Readonly<ClipConfig>,
  tensors: ReadonlyMap<string, RawTensor> | RawTensors,
  options: CreateClipModelOptions = {},
): ClipModel {
  const source = options.source ?? 'model.safetensors';
  const raw = rawTensors(tensors);
  checkClipTensors(raw, config, source);
  const resolved = resolveClipOptions(options, config);
  const logitScale = raw.read('logit_scale').data[0];
  const vision = new ClipVisionTower(config.vision, visionWeights(raw, config.vision), resolved);
  try {
    const text = new ClipTextTower(config.text, textWeights(raw, config.text), resolved.activation);
    return new ClipModel(config, resolved, vision, text, logitScale);
  } catch (error) {
    vision.dispose();
    throw error;
  }
}
