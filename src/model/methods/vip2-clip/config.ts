/**
 * ViP²-CLIP configuration (docs/vip2-clip-spec.md). The defaults are the public code's
 * behaviour, quirks included, because the released checkpoints were trained with it; the
 * paper's intent is a field away (`normal_state_word: good`, `global_ln_post: true`).
 */
import { UserError } from '../../../errors.js';
import {
  ACTIVATIONS,
  POS_EMBED_RESIZES,
  type Activation,
  type PosEmbedResize,
} from '../../clip/config.js';
import { KNOWN_BACKBONES, type BackboneShape } from '../../clip/presets.js';

export const NORMAL_STATE_WORDS = ['damaged', 'good'] as const;
/** The state word of the normal prompt: 'damaged' is the code's quirk, 'good' the paper's intent. */
export type NormalStateWord = (typeof NORMAL_STATE_WORDS)[number];

export interface Vip2ClipConfig {
  /** Residual-block activation of both CLIP encoders (the public code builds QuickGELU). */
  readonly activation: Activation;
  /** Positional-grid interpolation for other input sizes (the public code: bilinear, no antialias). */
  readonly pos_embed_resize: PosEmbedResize;
  readonly backbone: string;
  /** Input resolution S. */
  readonly image_size: number;
  /** 1-based vision blocks whose ln_post + projection outputs feed FGP and UTPA. */
  readonly layers: readonly number[];
  /** e: learnable context vectors per prompt (7 in the scripts, 9 as the argparse default). */
  readonly n_ctx: number;
  /** r: image-conditioned class tokens, one Meta-Net MLP each. */
  readonly n_cls: number;
  /** Word at position e+1 of the normal prompt ('damaged' = the code: both prompts say "damaged"). */
  readonly normal_state_word: NormalStateWord;
  /** ln_post before the projection of the global feature (false = the code's quirk). */
  readonly global_ln_post: boolean;
  /** The learnable bias b added to the global feature before the Meta-Net (the code: on). */
  readonly meta_net_bias: boolean;
  /** FGP attention heads; must divide the joint embedding width. */
  readonly heads: number;
  /** Fixed UTPA temperature (scores / temperature before the softmax and the image logits). */
  readonly temperature: number;
  /** K: patches per layer whose scores make the image logits (capped at the patch count). */
  readonly topk: number;
  /** Gaussian σ (pixels) of the test-time map; 0 disables. */
  readonly sigma: number;
  /** Learning rate of the ICA parameters (context, class tokens, bias, Meta-Net). */
  readonly lr: number;
  /** FGP learning rate as a multiple of `lr` (the code: 0.01). */
  readonly fgp_lr_scale: number;
  readonly betas: readonly [number, number];
  /** Seed of the parameter initialisation. */
  readonly seed: number;
}

export type Vip2ClipConfigInput = Partial<{
  -readonly [K in keyof Vip2ClipConfig]: Vip2ClipConfig[K] extends readonly (infer T)[]
    ? T[]
    : Vip2ClipConfig[K];
}>;

export const VIP2_CLIP_DEFAULTS: Vip2ClipConfig = Object.freeze({
  activation: 'quick_gelu',
  pos_embed_resize: 'bilinear',
  backbone: 'ViT-L-14-336',
  image_size: 518,
  layers: Object.freeze([6, 12, 18, 24]),
  n_ctx: 7,
  n_cls: 3,
  normal_state_word: 'damaged',
  global_ln_post: false,
  meta_net_bias: true,
  heads: 8,
  temperature: 0.07,
  topk: 50,
  sigma: 8,
  lr: 1e-3,
  fgp_lr_scale: 0.01,
  betas: Object.freeze([0.9, 0.999] as [number, number]),
  seed: 111,
});

/** A config field with a bad value: names the field, what it got and what it accepts. */
export class Vip2ConfigError extends UserError {
  override name = 'ConfigError';
  constructor(
    readonly field: string,
    readonly got: unknown,
    readonly expected: string,
    source = 'vip2-clip config',
  ) {
    super(
      `${source}: ${field}: got ${got === undefined ? 'nothing' : JSON.stringify(got)}, expected ${expected}`,
    );
  }
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/**
 * Validates `input`, fills the defaults, and checks layers and heads against the backbone
 * (`backbone` overrides the table of known backbones, e.g. for a test model).
 */
export function resolveVip2ClipConfig(
  input: Vip2ClipConfigInput = {},
  options: { source?: string; backbone?: BackboneShape } = {},
): Vip2ClipConfig {
  const source = options.source ?? 'vip2-clip config';
  const fail = (field: string, got: unknown, expected: string): never => {
    throw new Vip2ConfigError(field, got, expected, source);
  };
  if (typeof input !== 'object' || input === null || Array.isArray(input))
    fail('(root)', input, 'an object of ViP²-CLIP settings');
  const known = Object.keys(VIP2_CLIP_DEFAULTS);
  for (const [key, value] of Object.entries(input))
    if (!known.includes(key)) fail(key, value, `a known field (${known.join(', ')})`);
  const c = {
    ...VIP2_CLIP_DEFAULTS,
    ...Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)),
  } as Record<string, unknown>;
  const check = (ok: boolean, field: string, expected: string) => {
    if (!ok) fail(field, c[field], expected);
  };
  const oneOf = (field: string, accepted: readonly string[]) =>
    check(accepted.includes(c[field] as string), field, `one of ${accepted.join(', ')}`);
  const intAtLeast = (field: string, min: number) =>
    check(isInt(c[field]) && (c[field] as number) >= min, field, `an integer ≥ ${min}`);
  const positive = (field: string) =>
    check(isNum(c[field]) && (c[field] as number) > 0, field, 'a number > 0');
  const bool = (field: string) => check(typeof c[field] === 'boolean', field, 'true or false');

  oneOf('activation', ACTIVATIONS);
  oneOf('pos_embed_resize', POS_EMBED_RESIZES);
  check(typeof c.backbone === 'string' && c.backbone !== '', 'backbone', 'a backbone name');
  const shape = options.backbone ?? KNOWN_BACKBONES[c.backbone as string];
  if (!shape) fail('backbone', c.backbone, `one of ${Object.keys(KNOWN_BACKBONES).join(', ')}`);
  intAtLeast('image_size', 1);
  check(
    (c.image_size as number) % shape.patchSize === 0,
    'image_size',
    `a multiple of the patch size ${shape.patchSize}`,
  );
  const layers = c.layers as unknown;
  check(
    Array.isArray(layers) &&
      layers.length > 0 &&
      layers.every((l) => isInt(l) && l >= 1 && l <= shape.visionLayers) &&
      new Set(layers).size === layers.length,
    'layers',
    `a non-empty list of distinct 1-based block indices in 1..${shape.visionLayers} (${c.backbone as string} has ${shape.visionLayers} vision blocks)`,
  );
  intAtLeast('n_ctx', 1);
  intAtLeast('n_cls', 1);
  oneOf('normal_state_word', NORMAL_STATE_WORDS);
  bool('global_ln_post');
  bool('meta_net_bias');
  intAtLeast('heads', 1);
  check(
    shape.embedDim % (c.heads as number) === 0,
    'heads',
    `a divisor of the joint embedding width ${shape.embedDim}`,
  );
  check(shape.embedDim >= 2, 'backbone', 'a joint embedding width ≥ 2 (the Meta-Net hides D/2)');
  positive('temperature');
  intAtLeast('topk', 1);
  check(
    isNum(c.sigma) && (c.sigma as number) >= 0,
    'sigma',
    'a number ≥ 0 (pixels; 0 disables smoothing)',
  );
  positive('lr');
  check(
    isNum(c.fgp_lr_scale) && (c.fgp_lr_scale as number) >= 0,
    'fgp_lr_scale',
    'a number ≥ 0 (0 freezes FGP)',
  );
  const betas = c.betas as unknown;
  check(
    Array.isArray(betas) && betas.length === 2 && betas.every((b) => isNum(b) && b >= 0 && b < 1),
    'betas',
    'two numbers in [0, 1), e.g. [0.9, 0.999]',
  );
  intAtLeast('seed', 0);
  return Object.freeze({
    ...(c as unknown as Vip2ClipConfig),
    layers: Object.freeze([...(layers as number[])]),
    betas: Object.freeze([...(betas as [number, number])] as [number, number]),
  });
}
