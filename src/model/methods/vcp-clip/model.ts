/**
 * VCP-CLIP as a ZeroShotMethod: Pre-VCP → prompts (UTP + DTP) → text encoder → baseline maps,
 * and Post-VCP → VCP maps, from frozen CLIP features. Disabled features are left out when the
 * model is built (no Mini-Net, no deep prompts, no VCP branch).
 */
import { UserError } from '../../../errors.js';
import { tf } from '../../tf.js';
import type { Tensor, Tensor1D, Tensor3D, Tensor4D, Variable } from '../../tf.js';
import { SeedSequence } from '../init.js';
import type {
  FrozenFeatures,
  MethodContext,
  MethodOutput,
  OptimizerSpec,
  PostprocessSpec,
  PromptPair,
  ZeroShotMethod,
} from '../method.js';
import type { BackboneShape } from '../../clip/presets.js';
import { resolveVcpClipConfig, type VcpClipConfig, type VcpClipConfigInput } from './config.js';
import { DeepPrompts } from './dtp.js';
import { segmentationLoss } from './loss.js';
import { BaseBranch, VcpBranch } from './maps.js';
import { l2Normalize, PostVcp } from './post-vcp.js';
import { PreVcp } from './pre-vcp.js';
import { buildPromptLayout, PromptEncoder, resolvePromptPairs, templatePairs } from './prompts.js';

const TEMPERATURES = ['maps.base.logit_scale', 'maps.vcp.logit_scale'];

export interface VcpClipOptions {
  /** Cut the text sequences after the longest EOS (default true; exact, see prompts.ts). */
  truncate?: boolean;
  /** Prompt pairs to encode instead of the config's templates × state words (test time). */
  prompts?: readonly PromptPair[];
  /** Where `prompts` come from, for errors (default 'prompts'). */
  promptsField?: string;
}

export class VcpClipMethod implements ZeroShotMethod<VcpClipConfig> {
  readonly name = 'vcp-clip' as const;
  readonly features: { layers: readonly number[]; imageSize: number };
  readonly postprocess: PostprocessSpec;
  readonly preVcp: PreVcp;
  readonly deep: DeepPrompts | null;
  readonly prompts: PromptEncoder;
  readonly postVcp: PostVcp | null;
  readonly base: BaseBranch;
  readonly vcp: VcpBranch | null;
  /** The pairs the text embeddings ensemble (the training ones unless a test-time view). */
  readonly promptPairs: readonly PromptPair[];
  private readonly params: Map<string, Variable>;
  private readonly truncate: boolean;
  /** The method whose modules a prompt view borrows (null: this one owns them). */
  private readonly owner: VcpClipMethod | null;
  /** Prompt views made from this method, disposed with it. */
  private readonly views = new Set<VcpClipMethod>();

  /**
   * @param shared borrow every learnable module from this method instead of building new ones
   *   (a prompt view: see withPrompts)
   */
  constructor(
    readonly config: VcpClipConfig,
    private readonly context: MethodContext,
    options: VcpClipOptions = {},
    shared?: VcpClipMethod,
  ) {
    const { text, vision, projectionDim: embedDim } = context.clip.config;
    this.truncate = options.truncate ?? true;
    this.owner = shared ? (shared.owner ?? shared) : null;
    this.promptPairs = options.prompts
      ? resolvePromptPairs(options.prompts, options.promptsField)
      : Object.freeze(templatePairs(config.templates, config.state_words));
    this.features = { layers: config.layers, imageSize: config.image_size };
    this.postprocess = {
      smoothingSigma: config.sigma,
      normalizeMaps: true,
      normalizeScores: true,
      score: config.image_score === 'max' ? 'map-max' : 'method',
    };
    const layout = buildPromptLayout(this.promptPairs, config.n_ctx, context.tokenizer, {
      contextLength: text.contextLength,
      reserve: config.dtp ? config.deep_prompt_len : 0,
      truncate: this.truncate,
      field: options.prompts
        ? `vcp-clip test-time prompts: ${options.promptsField ?? 'prompts'}`
        : undefined,
    });
    if (this.owner) {
      ({
        preVcp: this.preVcp,
        deep: this.deep,
        postVcp: this.postVcp,
        base: this.base,
        vcp: this.vcp,
        params: this.params,
      } = this.owner);
      this.owner.views.add(this);
    } else {
      // Creation order fixes the seeds each parameter is drawn with.
      const seeds = new SeedSequence(config.seed);
      this.preVcp = new PreVcp(config.n_ctx, text.width, config.pre_vcp, seeds);
      this.deep = config.dtp
        ? new DeepPrompts(
            text.layers,
            config.deep_prompt_len,
            text.width,
            config.dtp_position,
            config.dtp_dropout,
            seeds,
          )
        : null;
      this.postVcp = config.post_vcp
        ? new PostVcp(embedDim, vision.width, config.heads, config.attention_scaling, seeds)
        : null;
      this.base = new BaseBranch(config.layers.length, vision.width, embedDim, seeds);
      this.vcp = config.post_vcp ? new VcpBranch() : null;
      this.params = new Map([
        ...this.preVcp.parameters(),
        ...(this.deep?.parameters() ?? []),
        ...(this.postVcp?.parameters() ?? []),
        ...this.base.parameters(),
        ...(this.vcp?.parameters() ?? []),
      ]);
    }
    this.prompts = new PromptEncoder(layout, config.n_ctx, context.clip.text, this.deep);
  }

  /**
   * The same trained parameters with other prompts (paper Table 9): {cls} is filled by the
   * category vectors exactly as in training, and the pairs are ensembled like the training ones.
   * The view shares this method's Variables; its dispose frees only its prompt tokens.
   * @param field the name of `pairs` in validation errors, e.g. 'eval.prompts'
   */
  withPrompts(pairs: readonly PromptPair[], field = 'prompts'): VcpClipMethod {
    return new VcpClipMethod(
      this.config,
      this.context,
      { truncate: this.truncate, prompts: pairs, promptsField: field },
      this,
    );
  }

  parameters(): Map<string, Variable> {
    return new Map(this.params);
  }

  optimizer(): OptimizerSpec {
    const names = [...this.params.keys()];
    const [beta1, beta2] = this.config.betas;
    return {
      kind: 'adam',
      beta1,
      beta2,
      epsilon: 1e-8,
      groups: [
        {
          name: 'prompts',
          lr: this.config.lr,
          params: names.filter((n) => !TEMPERATURES.includes(n)),
        },
        {
          name: 'temperatures',
          lr: this.config.lr_tau,
          params: names.filter((n) => TEMPERATURES.includes(n)),
        },
      ],
    };
  }

  /** Text embeddings per image ([1, 2, D] shared by all images without Pre-VCP). */
  textEmbeddings(global: tf.Tensor2D, training: boolean): Tensor3D {
    return tf.tidy(() => this.prompts.encode(this.preVcp.categoryVectors(global), training));
  }

  forward(batch: FrozenFeatures, { training }: { training: boolean }): MethodOutput {
    const { layers, image_size: size } = this.config;
    if (batch.patchTokens.length !== layers.length) {
      throw new UserError(
        `vcp-clip: got patch tokens of ${batch.patchTokens.length} layers, expected ${layers.length} (layers ${layers.join(', ')})`,
      );
    }
    const run = (): MethodOutput => {
      const text = this.textEmbeddings(batch.global, training); // [B|1, 2, D]
      const extras: Record<string, Tensor> = { text };
      const baseMaps = batch.patchTokens.map((tokens, i) => this.base.map(i, tokens, text, size)); // [B, S, S, 2] each
      const layerMaps: Record<string, Tensor4D[]> = { base: baseMaps };
      if (this.postVcp && this.vcp) {
        layerMaps.vcp = batch.patchTokens.map((tokens, i) => {
          const patches = l2Normalize(tokens); // [B, L, Dv]
          const { embeddings, attention } = this.postVcp!.apply(text, patches); // [B, 2, Dv], [B, H, 2, L]
          extras[`refined.${layers[i]}`] = embeddings;
          extras[`attention.${layers[i]}`] = attention;
          return this.vcp!.map(patches, embeddings, size);
        });
      }
      if (training) return { layerMaps, extras };
      const baseMap = meanAbnormal(layerMaps.base); // [B, S, S]
      const vcpMap = layerMaps.vcp ? meanAbnormal(layerMaps.vcp) : null;
      const alpha = this.config.alpha;
      const anomalyMap = vcpMap ? vcpMap.mul(alpha).add(baseMap.mul(1 - alpha)) : baseMap; // [B, S, S]
      extras['map.base'] = baseMap;
      if (vcpMap) extras['map.vcp'] = vcpMap;
      const output: MethodOutput = { layerMaps, anomalyMap: anomalyMap as Tensor3D, extras };
      if (this.config.image_score === 'topk-mean') {
        output.score = [baseMap, vcpMap]
          .filter((m) => m !== null)
          .map((m) => topkMean(m, this.config.topk))
          .reduce((a, b) => a.add(b)) as Tensor1D;
      }
      return output;
    };
    return tf.tidy(() => run() as unknown as tf.TensorContainer) as unknown as MethodOutput;
  }

  /** Pixel losses only: the image labels are not used by VCP-CLIP. */
  loss(output: MethodOutput, masks: Tensor3D, _labels?: Tensor1D): tf.Scalar {
    return segmentationLoss(output.layerMaps, masks);
  }

  seedRandomness(seed: number): void {
    this.deep?.seedDropout(seed);
  }

  dispose(): void {
    this.prompts.dispose();
    if (this.owner) {
      this.owner.views.delete(this);
      return;
    }
    for (const view of this.views) view.prompts.dispose();
    this.views.clear();
    this.preVcp.dispose();
    this.deep?.dispose();
    this.postVcp?.dispose();
    this.base.dispose();
    this.vcp?.dispose();
  }
}

/** Layer-averaged abnormal channel. [B, S, S, 2][] → [B, S, S] */
function meanAbnormal(maps: Tensor4D[]): Tensor3D {
  return tf.tidy(() => {
    const [b, s] = maps[0].shape;
    const abnormal = maps.map((m) => m.slice([0, 0, 0, 1], [b, s, s, 1]).reshape([b, s, s]));
    return tf.addN(abnormal).div(maps.length) as Tensor3D;
  });
}

/** Mean of the k largest pixels per image (k capped at S²). [B, S, S] → [B] */
function topkMean(map: Tensor3D, k: number): Tensor1D {
  return tf.tidy(() => {
    const [b, s] = map.shape;
    const flat = map.reshape([b, s * s]); // [B, S·S]
    return tf.mean(tf.topk(flat, Math.min(k, s * s)).values, 1) as Tensor1D;
  });
}

/** The method's backbone shape from the CLIP model it runs on. */
export function backboneShapeOf(context: MethodContext): BackboneShape {
  const { vision, text, projectionDim } = context.clip.config;
  return {
    visionLayers: vision.layers,
    visionWidth: vision.width,
    patchSize: vision.patchSize,
    textWidth: text.width,
    embedDim: projectionDim,
  };
}

/** Factory for the registry: validates the raw config against the CLIP model in `context`. */
export function createVcpClip(input: unknown, context: MethodContext): VcpClipMethod {
  const config = resolveVcpClipConfig((input ?? {}) as VcpClipConfigInput, {
    backbone: backboneShapeOf(context),
    backboneName: context.backbone,
  });
  const built = context.clip.options.activation;
  if (built !== config.activation) {
    throw new UserError(
      `vcp-clip config: activation: got "${config.activation}", but the CLIP model was built with "${built}"`,
      {
        hint: 'build CLIP with the activation of the method config (gelu reproduces the paper and the released checkpoints)',
      },
    );
  }
  const resize = context.clip.options.posEmbedResize;
  if (resize !== config.pos_embed_resize) {
    throw new UserError(
      `vcp-clip config: pos_embed_resize: got "${config.pos_embed_resize}", but the CLIP model was built with "${resize}"`,
      {
        hint: 'build CLIP with the pos_embed_resize of the method config (bicubic_antialias is the public code)',
      },
    );
  }
  if (context.backbone !== undefined && context.backbone !== config.backbone) {
    throw new UserError(
      `vcp-clip config: backbone: got "${config.backbone}", but the CLIP model loaded is "${context.backbone}"`,
    );
  }
  return new VcpClipMethod(config, context);
}
