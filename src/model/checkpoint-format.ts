/**
 * What a checkpoint directory is made of, without loading tfjs (spec loading and `plan` read
 * these too): its file names, format tag, and the values of fields added later.
 */
export const CHECKPOINT_CONFIG = 'config.json';
export const CHECKPOINT_WEIGHTS = 'model.safetensors';
export const CHECKPOINT_FORMAT = 'vcp-exp checkpoint v1';

/**
 * Method-config fields added after trial ids and checkpoints were first made, with the value
 * every earlier trial and checkpoint had (unrecorded then): filled in when a checkpoint is
 * loaded, and left out of a trial's identity when it has that value, so such a trial keeps its
 * id (src/runner/expand.ts). Before pos_embed_resize, the positional grid was resized with
 * plain bicubic.
 */
export const LEGACY_CONFIG_VALUES: Readonly<Record<string, unknown>> = {
  pos_embed_resize: 'bicubic',
};
