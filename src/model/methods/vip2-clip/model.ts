/**
 * ViP²-CLIP as a ZeroShotMethod: global feature → ICA → text tower → T; per layer, FGP refines T
 * against the layer's patches and UTPA aligns them into a map and top-K image logits
 * (docs/vip2-clip-spec.md, "Reference forward").
 */
import { UserError } from '../../../errors.js';
import { tf } from '../../tf.js';
import type { Tensor, Tensor1D, Tensor2D, Tensor3D, Tensor4D, Variable } from '../../tf.js';
import type { BackboneShape } from '../../clip/presets.js';
import { SeedSequence } from '../init.js';
import type {
  FeatureRequest,
  FrozenFeatures,
  MethodContext,
  MethodOutput,
  OptimizerSpec,
  PostForwardSettings,
  PostprocessSpec,
  Readout,
  ZeroShotMethod,
} from '../method.js';
import { applyPostForward } from '../config.js';
import {
  VIP2_CLIP,
  resolveVip2ClipConfig,
  vip2FeatureForms,
  type Vip2ClipConfig,
  type Vip2ClipConfigInput,
} from './config.js';
import { Fgp, l2Normalize } from './fgp.js';
import { Ica } from './ica.js';
import { vip2Loss } from './loss.js';
import {
  alignmentScores,
  BilinearUpsampler,
  maskedMean,
  probabilityMap,
  topkMask,
} from './utpa.js';

/** The abnormal prompt's state word (both prompts use it by default: the code's quirk). */
const ABNORMAL_WORD = 'damaged';
/** The one map branch of ViP²-CLIP (every map comes from the FGP-refined embeddings). */
export const BRANCH = 'utpa';

export class Vip2ClipMethod implements ZeroShotMethod<Vip2ClipConfig> {
  readonly name = 'vip2-clip' as const;
  readonly features: FeatureRequest;
  readonly postprocess: PostprocessSpec;
  readonly ica: Ica;
  readonly fgp: Fgp;
  private readonly params: Map<string, Variable>;
  private readonly upsamplers = new Map<string, BilinearUpsampler>();

  constructor(
    readonly config: Vip2ClipConfig,
    context: MethodContext,
  ) {
    const { text, projectionDim: embedDim } = context.clip.config;
    this.features = {
      layers: config.layers,
      imageSize: config.image_size,
      ...vip2FeatureForms(config),
    };
    this.postprocess = {
      smoothingSigma: config.sigma,
      normalizeMaps: false,
      normalizeScores: false,
      score: 'method',
    };
    // Creation order fixes the seeds each parameter is drawn with.
    const seeds = new SeedSequence(config.seed);
    this.ica = new Ica(
      {
        nCtx: config.n_ctx,
        nCls: config.n_cls,
        embedDim,
        textWidth: text.width,
        bias: config.meta_net_bias,
      },
      { normal: config.normal_state_word, abnormal: ABNORMAL_WORD },
      context.tokenizer,
      context.clip.text,
      seeds,
    );
    this.fgp = new Fgp(embedDim, config.heads, seeds);
    this.params = new Map([...this.ica.parameters(), ...this.fgp.parameters()]);
  }

  parameters(): Map<string, Variable> {
    return new Map(this.params);
  }

  /** Adam (β₁, β₂, ε 1e-8, no decay): ICA at `lr`, FGP at `lr × fgp_lr_scale`. */
  optimizer(): OptimizerSpec {
    const [beta1, beta2] = this.config.betas;
    const names = [...this.params.keys()];
    return {
      kind: 'adam',
      beta1,
      beta2,
      epsilon: 1e-8,
      groups: [
        { name: 'ica', lr: this.config.lr, params: names.filter((n) => n.startsWith('ica.')) },
        {
          name: 'fgp',
          lr: this.config.lr * this.config.fgp_lr_scale,
          params: names.filter((n) => n.startsWith('fgp.')),
        },
      ],
    };
  }

  private upsampler(grid: number, size: number): BilinearUpsampler {
    const key = `${grid}→${size}`;
    let up = this.upsamplers.get(key);
    if (!up) {
      up = new BilinearUpsampler(grid, size);
      this.upsamplers.set(key, up);
    }
    return up;
  }

  forward(
    batch: FrozenFeatures,
    { training, skipReadout = false }: { training: boolean; skipReadout?: boolean },
  ): MethodOutput {
    const { layers, image_size: size, temperature, topk } = this.config;
    if (batch.patchTokens.length !== layers.length) {
      throw new UserError(
        `vip2-clip: got patch tokens of ${batch.patchTokens.length} layers, expected ${layers.length} (layers ${layers.join(', ')})`,
      );
    }
    const grid = Math.round(Math.sqrt(batch.patchTokens[0].shape[1]));
    if (grid * grid !== batch.patchTokens[0].shape[1])
      throw new Error(`vip2-clip: ${batch.patchTokens[0].shape[1]} patches are not a square grid`);
    const upsampler = this.upsampler(grid, size);
    const run = (): MethodOutput => {
      const text = this.ica.textEmbeddings(l2Normalize(batch.global)); // [B, 2, D]
      const extras: Record<string, Tensor> = { text };
      const topMeans: Tensor2D[] = [];
      const maps = batch.patchTokens.map((tokens, i) => {
        const patches = l2Normalize(tokens); // [B, L, D]
        const { embeddings, attention } = this.fgp.apply(text, patches); // [B, 2, D], [B, H, 2, L]
        extras[`refined.${layers[i]}`] = embeddings;
        extras[`attention.${layers[i]}`] = attention;
        const scores = alignmentScores(patches, embeddings); // [B, L, 2]
        topMeans.push(maskedMean(scores, topkMask(scores, temperature, topk))); // [B, 2]
        return probabilityMap(scores, temperature, upsampler); // [B, S, S, 2]
      });
      const logits = tf.addN(topMeans).div(topMeans.length * temperature) as Tensor2D; // [B, 2]
      extras.image_logits = logits;
      const layerMaps: Record<string, Tensor4D[]> = { [BRANCH]: maps };
      if (training || skipReadout) return { layerMaps, extras };
      return { layerMaps, extras, ...this.readout({ layerMaps, extras }) };
    };
    return tf.tidy(() => run() as unknown as tf.TensorContainer) as unknown as MethodOutput;
  }

  /** The layer-averaged abnormal map and softmax(image logits)[abnormal], as the public test(). */
  readout(output: MethodOutput): Readout {
    return tf.tidy(() => {
      const maps = output.layerMaps[BRANCH];
      const logits = output.extras.image_logits as Tensor2D | undefined;
      if (!maps || !logits) throw new Error('vip2-clip readout: the output has no maps or logits');
      const [b, size] = maps[0].shape;
      const abnormal = maps.map((m) => m.slice([0, 0, 0, 1], [b, size, size, 1]));
      const anomalyMap = tf.addN(abnormal).div(maps.length).reshape([b, size, size]) as Tensor3D;
      const score = tf.softmax(logits, -1).slice([0, 1], [b, 1]).reshape([b]) as Tensor1D;
      return { anomalyMap, score };
    }) as unknown as Readout;
  }

  /**
   * ViP²-CLIP marks no post-forward field (its σ is eval-only but applied after the readout, in
   * postprocess): any setting is refused; with none it is a view that disposes nothing.
   */
  withPostForward(settings: PostForwardSettings): Vip2ClipMethod {
    applyPostForward(VIP2_CLIP, this.config, settings, 'vip2-clip post-forward settings');
    const view = Object.create(this) as Vip2ClipMethod;
    view.dispose = () => undefined;
    return view;
  }

  /** Σ layers (focal + dice abnormal + dice normal) + image cross-entropy of the UTPA logits. */
  loss(output: MethodOutput, masks: Tensor3D, labels: Tensor1D): tf.Scalar {
    const logits = output.extras.image_logits as Tensor2D | undefined;
    if (!logits) throw new Error('vip2-clip loss: the output has no image_logits');
    return vip2Loss(output.layerMaps[BRANCH], logits, masks, labels);
  }

  dispose(): void {
    this.ica.dispose();
    this.fgp.dispose();
    for (const up of this.upsamplers.values()) up.dispose();
    this.upsamplers.clear();
  }
}

/** The backbone shape of the CLIP model a method runs on. */
function backboneShapeOf(context: MethodContext): BackboneShape {
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
export function createVip2Clip(input: unknown, context: MethodContext): Vip2ClipMethod {
  const config = resolveVip2ClipConfig((input ?? {}) as Vip2ClipConfigInput, {
    backbone: backboneShapeOf(context),
    backboneName: context.backbone,
  });
  const built = context.clip.options;
  for (const [field, want, got] of [
    ['activation', config.activation, built.activation],
    ['pos_embed_resize', config.pos_embed_resize, built.posEmbedResize],
  ] as const) {
    if (want !== got) {
      throw new UserError(
        `vip2-clip config: ${field}: got "${want}", but the CLIP model was built with "${got}"`,
        {
          hint: 'build CLIP with the CLIP options of the method config (the defaults reproduce the public code)',
        },
      );
    }
  }
  if (context.backbone !== undefined && context.backbone !== config.backbone) {
    throw new UserError(
      `vip2-clip config: backbone: got "${config.backbone}", but the CLIP model loaded is "${context.backbone}"`,
    );
  }
  return new Vip2ClipMethod(config, context);
}
