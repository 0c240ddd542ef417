/**
 * VCP-CLIP configuration: every paper ablation switch is a field here (see
 * docs/vcp-clip-spec.md). `resolveVcpClipConfig` validates user input and fills the defaults.
 */
import { UserError } from '../../../errors.js';
import {
  ACTIVATIONS,
  POS_EMBED_RESIZES,
  type Activation,
  type PosEmbedResize,
} from '../../clip/config.js';
import { KNOWN_BACKBONES, type BackboneShape } from '../../clip/presets.js';
export const DTP_POSITIONS = ['pre', 'post'] as const;
export type DtpPosition = (typeof DTP_POSITIONS)[number];
export const IMAGE_SCORE_RULES = ['topk-mean', 'max'] as const;
export type ImageScoreRule = (typeof IMAGE_SCORE_RULES)[number];

export interface VcpClipConfigInput {
  /** Residual-block activation of both CLIP encoders; the public code uses exact GELU (default 'gelu'). */
  activation?: Activation;
  /**
   * Positional-grid resize when image_size differs from the backbone's: the public code's
   * antialiased bicubic ('bicubic_antialias', default), Hugging Face's 'bicubic', or 'bilinear'.
   */
  pos_embed_resize?: PosEmbedResize;
  /** CLIP backbone name (default 'ViT-L-14-336'). */
  backbone?: string;
  /** Input resolution S (default 518). */
  image_size?: number;
  /** 1-based vision blocks whose outputs feed the maps (default [6, 12, 18, 24]). */
  layers?: number[];
  /** Prompt templates with one `{state}` and one `{cls}` slot (default ["a photo of a {state} {cls}"]). */
  templates?: string[];
  /** [normal, abnormal] state words, ensembled with the templates (default [["good", "damaged"]]). */
  state_words?: [string, string][];
  /** r: learnable vectors replacing [cls] (default 2). */
  n_ctx?: number;
  /** n: deep text prompt vectors per text layer (default 1). */
  deep_prompt_len?: number;
  /** Deep text prompting on/off (default true). */
  dtp?: boolean;
  /** Where the deep prompts sit: after SOS ('pre', default) or before EOS ('post'). */
  dtp_position?: DtpPosition;
  /** Dropout on the projected deep prompts, training only (default 0.1). */
  dtp_dropout?: number;
  /** Global visual context → category vectors (default true). */
  pre_vcp?: boolean;
  /** Fine-grained visual context → text embeddings, and its map branch (default true). */
  post_vcp?: boolean;
  /** Post-VCP attention heads; must divide the vision width (default 8). */
  heads?: number;
  /** 1/√d attention scaling in Post-VCP; the public code has none (default false). */
  attention_scaling?: boolean;
  /** Weight of the VCP map in the fused map: 0.75 paper, 0.8 public test script (default 0.75). */
  alpha?: number;
  /** Gaussian smoothing σ of the final map in pixels; 0 disables (default 8). */
  sigma?: number;
  /** Image score: mean of the top-k pixels of each branch map, or the map maximum (default 'topk-mean'). */
  image_score?: ImageScoreRule;
  /** k of the 'topk-mean' image score (default 2000). */
  topk?: number;
  /** Learning rate of every learnable tensor except the temperatures (default 4e-5). */
  lr?: number;
  /** Learning rate of the temperatures τ₁, τ₂ (default 0.01). */
  lr_tau?: number;
  /** Adam betas (default [0.5, 0.999]). */
  betas?: [number, number];
  /** Seed of the parameter initialisation (default 333). */
  seed?: number;
}

export type VcpClipConfig = Readonly<
  Required<Omit<VcpClipConfigInput, 'layers' | 'templates' | 'state_words' | 'betas'>>
> & {
  readonly layers: readonly number[];
  readonly templates: readonly string[];
  readonly state_words: readonly (readonly [string, string])[];
  readonly betas: readonly [number, number];
};

export const VCP_CLIP_DEFAULTS: VcpClipConfig = Object.freeze({
  activation: 'gelu',
  backbone: 'ViT-L-14-336',
  image_size: 518,
  pos_embed_resize: 'bicubic_antialias',
  layers: Object.freeze([6, 12, 18, 24]),
  templates: Object.freeze(['a photo of a {state} {cls}']),
  state_words: Object.freeze([Object.freeze(['good', 'damaged'] as [string, string])]),
  n_ctx: 2,
  deep_prompt_len: 1,
  dtp: true,
  dtp_position: 'pre',
  dtp_dropout: 0.1,
  pre_vcp: true,
  post_vcp: true,
  heads: 8,
  attention_scaling: false,
  alpha: 0.75,
  sigma: 8,
  image_score: 'topk-mean',
  topk: 2000,
  lr: 4e-5,
  lr_tau: 0.01,
  betas: Object.freeze([0.5, 0.999] as [number, number]),
  seed: 333,
});

/** A config field with a bad value: names the field, what it got and what it accepts. */
export class ConfigError extends UserError {
  override name = 'ConfigError';
  constructor(
    readonly field: string,
    readonly got: unknown,
    readonly expected: string,
    source = 'vcp-clip config',
  ) {
    super(`${source}: ${field}: got ${show(got)}, expected ${expected}`);
  }
}

function show(value: unknown): string {
  return value === undefined ? 'nothing' : JSON.stringify(value);
}

function check(ok: boolean, field: string, got: unknown, expected: string, source: string): void {
  if (!ok) throw new ConfigError(field, got, expected, source);
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/**
 * Validates `input`, fills defaults, and checks layer indices and heads against the backbone
 * (`backbone` overrides the table of known backbones, e.g. for a test model).
 */
export function resolveVcpClipConfig(
  input: VcpClipConfigInput = {},
  options: { source?: string; backbone?: BackboneShape } = {},
): VcpClipConfig {
  const source = options.source ?? 'vcp-clip config';
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new ConfigError('(root)', input, 'an object of VCP-CLIP settings', source);
  }
  const known = new Set(Object.keys(VCP_CLIP_DEFAULTS));
  for (const key of Object.keys(input)) {
    check(
      known.has(key),
      key,
      (input as Record<string, unknown>)[key],
      `a known field (${[...known].join(', ')})`,
      source,
    );
  }
  const c = { ...VCP_CLIP_DEFAULTS, ...stripUndefined(input) } as Record<string, unknown>;
  const oneOf = (field: string, options: readonly string[]) =>
    check(
      options.includes(c[field] as string),
      field,
      c[field],
      `one of ${options.join(', ')}`,
      source,
    );
  const intAtLeast = (field: string, min: number) =>
    check(
      isInt(c[field]) && (c[field] as number) >= min,
      field,
      c[field],
      `an integer ≥ ${min}`,
      source,
    );
  const bool = (field: string) =>
    check(typeof c[field] === 'boolean', field, c[field], 'true or false', source);
  const inRange = (field: string, lo: number, hi: number, what: string) =>
    check(
      isNum(c[field]) && (c[field] as number) >= lo && (c[field] as number) <= hi,
      field,
      c[field],
      what,
      source,
    );

  oneOf('activation', ACTIVATIONS);
  oneOf('pos_embed_resize', POS_EMBED_RESIZES);
  check(
    typeof c.backbone === 'string' && c.backbone.length > 0,
    'backbone',
    c.backbone,
    'a backbone name',
    source,
  );
  const shape: BackboneShape | undefined =
    options.backbone ?? KNOWN_BACKBONES[c.backbone as string];
  check(
    shape !== undefined,
    'backbone',
    c.backbone,
    `one of ${Object.keys(KNOWN_BACKBONES).join(', ')}`,
    source,
  );
  intAtLeast('image_size', 1);
  check(
    (c.image_size as number) % shape!.patchSize === 0,
    'image_size',
    c.image_size,
    `a multiple of the patch size ${shape!.patchSize}`,
    source,
  );
  const layers = c.layers as unknown;
  const depth = shape!.visionLayers;
  check(
    Array.isArray(layers) &&
      layers.length > 0 &&
      layers.every((l) => isInt(l) && l >= 1 && l <= depth),
    'layers',
    layers,
    `a non-empty list of 1-based block indices in 1..${depth} (${c.backbone as string} has ${depth} vision blocks)`,
    source,
  );
  check(
    new Set(layers as number[]).size === (layers as number[]).length,
    'layers',
    layers,
    'distinct block indices',
    source,
  );
  const templates = c.templates as unknown;
  check(
    Array.isArray(templates) && templates.length > 0,
    'templates',
    templates,
    'a non-empty list of strings',
    source,
  );
  (templates as unknown[]).forEach((t, i) =>
    check(
      typeof t === 'string' && count(t, '{cls}') === 1 && count(t, '{state}') === 1,
      `templates[${i}]`,
      t,
      'a string with exactly one {state} and one {cls} slot, e.g. "a photo of a {state} {cls}"',
      source,
    ),
  );
  const states = c.state_words as unknown;
  check(
    Array.isArray(states) && states.length > 0,
    'state_words',
    states,
    'a non-empty list of [normal, abnormal] word pairs',
    source,
  );
  (states as unknown[]).forEach((p, i) =>
    check(
      Array.isArray(p) &&
        p.length === 2 &&
        p.every((w) => typeof w === 'string' && w.trim().length > 0),
      `state_words[${i}]`,
      p,
      'a pair of non-empty words [normal, abnormal], e.g. ["good", "damaged"]',
      source,
    ),
  );
  intAtLeast('n_ctx', 1);
  intAtLeast('deep_prompt_len', 1);
  bool('dtp');
  oneOf('dtp_position', DTP_POSITIONS);
  check(
    isNum(c.dtp_dropout) && (c.dtp_dropout as number) >= 0 && (c.dtp_dropout as number) < 1,
    'dtp_dropout',
    c.dtp_dropout,
    'a number in [0, 1)',
    source,
  );
  bool('pre_vcp');
  bool('post_vcp');
  intAtLeast('heads', 1);
  check(
    shape!.visionWidth % (c.heads as number) === 0,
    'heads',
    c.heads,
    `a divisor of the vision width ${shape!.visionWidth}`,
    source,
  );
  bool('attention_scaling');
  inRange('alpha', 0, 1, 'a number in [0, 1]');
  inRange('sigma', 0, Number.MAX_VALUE, 'a number ≥ 0 (pixels; 0 disables smoothing)');
  oneOf('image_score', IMAGE_SCORE_RULES);
  intAtLeast('topk', 1);
  inRange('lr', Number.MIN_VALUE, Number.MAX_VALUE, 'a number > 0');
  inRange('lr_tau', Number.MIN_VALUE, Number.MAX_VALUE, 'a number > 0');
  const betas = c.betas as unknown;
  check(
    Array.isArray(betas) && betas.length === 2 && betas.every((b) => isNum(b) && b >= 0 && b < 1),
    'betas',
    betas,
    'two numbers in [0, 1), e.g. [0.5, 0.999]',
    source,
  );
  check(isInt(c.seed) && (c.seed as number) >= 0, 'seed', c.seed, 'an integer ≥ 0', source);
  check(
    !c.pre_vcp || shape!.textWidth === shape!.embedDim,
    'pre_vcp',
    c.pre_vcp,
    `false for this backbone: Pre-VCP needs text width (${shape!.textWidth}) = embed dim (${shape!.embedDim})`,
    source,
  );

  return Object.freeze({
    ...(c as unknown as VcpClipConfig),
    layers: Object.freeze([...(layers as number[])]),
    templates: Object.freeze([...(templates as string[])]),
    state_words: Object.freeze(
      (states as [string, string][]).map((p) => Object.freeze([p[0], p[1]] as [string, string])),
    ),
    betas: Object.freeze([...(betas as [number, number])] as [number, number]),
  });
}

function count(text: string, slot: string): number {
  return text.split(slot).length - 1;
}

function stripUndefined(input: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined));
}
