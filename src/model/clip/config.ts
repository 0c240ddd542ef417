/**
 * CLIP architecture (read from a Hugging Face CLIP config.json) and the options that are not
 * part of the checkpoint: VCP-CLIP and faithful CLIP use the same weights differently.
 */
import { UserError } from '../../errors.js';

export const ACTIVATIONS = ['gelu', 'quick_gelu'] as const;
/** `gelu`: exact erf GELU (what VCP-CLIP's code builds); `quick_gelu`: x·σ(1.702x), as CLIP was trained. */
export type Activation = (typeof ACTIVATIONS)[number];

export const POS_EMBED_RESIZES = ['bicubic_antialias', 'bicubic', 'bilinear'] as const;
/**
 * Interpolation of the positional grid when the input size differs (PyTorch F.interpolate,
 * align_corners=false): `bicubic_antialias` (antialias=True: VCP-CLIP's and open_clip's
 * resize_pos_embed), `bicubic` (Hugging Face's interpolate_pos_encoding), `bilinear`.
 */
export type PosEmbedResize = (typeof POS_EMBED_RESIZES)[number];

export const TOKEN_OUTPUTS = ['raw', 'projected'] as const;
/** Intermediate block tokens as they are (`raw`, before ln_post) or through ln_post + visual projection. */
export type TokenOutput = (typeof TOKEN_OUTPUTS)[number];

export interface VisionConfig {
  imageSize: number;
  patchSize: number;
  /** Token width (HF hidden_size). */
  width: number;
  layers: number;
  heads: number;
  /** MLP hidden width (HF intermediate_size). */
  mlpDim: number;
  /** The checkpoint's own activation (HF hidden_act). */
  activation: Activation;
  layerNormEps: number;
}

export interface TextConfig {
  vocabSize: number;
  /** Context length (HF max_position_embeddings). */
  contextLength: number;
  width: number;
  layers: number;
  heads: number;
  mlpDim: number;
  activation: Activation;
  layerNormEps: number;
}

export interface ClipConfig {
  vision: Readonly<VisionConfig>;
  text: Readonly<TextConfig>;
  /** Joint embedding width of the two projections. */
  projectionDim: number;
}

export interface ClipOptionsInput {
  /** Block activation of both towers (default: the checkpoint's hidden_act). */
  activation?: Activation;
  /** Positional-grid interpolation for other input sizes (default: bicubic, Hugging Face's; methods set theirs). */
  posEmbedResize?: PosEmbedResize;
  /** Form of the intermediate vision tokens returned (default: raw, as VCP-CLIP). */
  intermediateTokens?: TokenOutput;
}

export interface ClipOptions {
  activation: Activation;
  posEmbedResize: PosEmbedResize;
  intermediateTokens: TokenOutput;
}

/** Fills option defaults; an unknown value is a UserError listing the accepted ones. */
export function resolveClipOptions(
  input: ClipOptionsInput,
  config: ClipConfig,
  source = 'CLIP options',
): Readonly<ClipOptions> {
  const pick = <T extends string>(
    field: string,
    value: T | undefined,
    accepted: readonly T[],
    fallback: T,
  ): T => {
    if (value === undefined) return fallback;
    if (!accepted.includes(value))
      throw new UserError(`${source}: ${field}: got "${value}", accepted: ${accepted.join(', ')}`);
    return value;
  };
  return Object.freeze({
    activation: pick('activation', input.activation, ACTIVATIONS, config.vision.activation),
    posEmbedResize: pick('posEmbedResize', input.posEmbedResize, POS_EMBED_RESIZES, 'bicubic'),
    intermediateTokens: pick('intermediateTokens', input.intermediateTokens, TOKEN_OUTPUTS, 'raw'),
  });
}

type Json = Record<string, unknown>;

/** transformers' defaults, used as transformers does when an older config.json omits a field. */
const HF_TEXT_DEFAULTS = {
  vocab_size: 49408,
  hidden_size: 512,
  intermediate_size: 2048,
  num_hidden_layers: 12,
  num_attention_heads: 8,
  max_position_embeddings: 77,
  hidden_act: 'quick_gelu',
  layer_norm_eps: 1e-5,
};
const HF_VISION_DEFAULTS = {
  hidden_size: 768,
  intermediate_size: 3072,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  image_size: 224,
  patch_size: 32,
  hidden_act: 'quick_gelu',
  layer_norm_eps: 1e-5,
  num_channels: 3,
};

class FieldReader {
  constructor(
    private readonly source: string,
    private readonly section: string,
    private readonly json: Json,
    private readonly defaults: Json,
  ) {}

  private fail(field: string, got: unknown, expected: string): never {
    const path = this.section ? `${this.section}.${field}` : field;
    throw new UserError(
      `${this.source}: ${path}: got ${JSON.stringify(got)}, expected ${expected}`,
      {
        hint: 'the file should be the config.json of a Hugging Face CLIPModel checkpoint (e.g. openai/clip-vit-large-patch14-336)',
      },
    );
  }

  int(field: string): number {
    const value = this.json[field] ?? this.defaults[field];
    if (!Number.isInteger(value) || (value as number) <= 0)
      this.fail(field, value, 'a positive integer');
    return value as number;
  }

  positive(field: string): number {
    const value = this.json[field] ?? this.defaults[field];
    if (typeof value !== 'number' || !(value > 0)) this.fail(field, value, 'a positive number');
    return value;
  }

  activation(field: string): Activation {
    const value = this.json[field] ?? this.defaults[field];
    if (!(ACTIVATIONS as readonly unknown[]).includes(value))
      this.fail(field, value, `one of ${ACTIVATIONS.join(', ')}`);
    return value as Activation;
  }

  equals(field: string, expected: number): void {
    const value = this.json[field] ?? this.defaults[field];
    if (value !== expected) this.fail(field, value, String(expected));
  }

  divides(field: string, divisor: string, value: number, by: number): void {
    if (value % by !== 0) this.fail(field, value, `a multiple of ${divisor} (${by})`);
  }
}

function section(source: string, json: Json, name: string): Json {
  const value = json[name];
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new UserError(`${source}: ${name}: missing or not an object`, {
      hint: 'the file should be the config.json of a Hugging Face CLIPModel checkpoint (model_type "clip")',
    });
  }
  return value as Json;
}

/** Reads a Hugging Face CLIP config.json (already parsed); `source` names the file in errors. */
export function parseClipConfig(json: unknown, source = 'config.json'): Readonly<ClipConfig> {
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new UserError(`${source}: expected a JSON object`);
  const root = json as Json;
  const v = new FieldReader(
    source,
    'vision_config',
    section(source, root, 'vision_config'),
    HF_VISION_DEFAULTS,
  );
  const t = new FieldReader(
    source,
    'text_config',
    section(source, root, 'text_config'),
    HF_TEXT_DEFAULTS,
  );
  const vision: VisionConfig = {
    imageSize: v.int('image_size'),
    patchSize: v.int('patch_size'),
    width: v.int('hidden_size'),
    layers: v.int('num_hidden_layers'),
    heads: v.int('num_attention_heads'),
    mlpDim: v.int('intermediate_size'),
    activation: v.activation('hidden_act'),
    layerNormEps: v.positive('layer_norm_eps'),
  };
  v.divides('image_size', 'vision_config.patch_size', vision.imageSize, vision.patchSize);
  v.divides('hidden_size', 'vision_config.num_attention_heads', vision.width, vision.heads);
  v.equals('num_channels', 3);
  const text: TextConfig = {
    vocabSize: t.int('vocab_size'),
    contextLength: t.int('max_position_embeddings'),
    width: t.int('hidden_size'),
    layers: t.int('num_hidden_layers'),
    heads: t.int('num_attention_heads'),
    mlpDim: t.int('intermediate_size'),
    activation: t.activation('hidden_act'),
    layerNormEps: t.positive('layer_norm_eps'),
  };
  t.divides('hidden_size', 'text_config.num_attention_heads', text.width, text.heads);
  const projectionDim = new FieldReader(source, '', root, { projection_dim: 512 }).int(
    'projection_dim',
  );
  return Object.freeze({ vision: Object.freeze(vision), text: Object.freeze(text), projectionDim });
}

/** Patch-grid side for an input of size S: S / patch. */
export function gridSize(
  config: Pick<VisionConfig, 'patchSize'>,
  imageSize: number,
  source = 'image size',
): number {
  if (!Number.isInteger(imageSize) || imageSize <= 0 || imageSize % config.patchSize !== 0) {
    throw new UserError(
      `${source}: got ${imageSize}, expected a positive multiple of the patch size ${config.patchSize}`,
    );
  }
  return imageSize / config.patchSize;
}

/** Whether a parsed config.json is a Hugging Face CLIPModel config (not timm's, not another model's). */
export function isHfClipConfig(config: unknown): boolean {
  if (typeof config !== 'object' || config === null) return false;
  const c = config as { model_type?: unknown; architectures?: unknown };
  return (
    c.model_type === 'clip' ||
    (Array.isArray(c.architectures) && c.architectures.includes('CLIPModel'))
  );
}
