/**
 * The contract between a zero-shot segmentation method (VCP-CLIP, ViP²-CLIP, …) and the code
 * that trains, evaluates, checkpoints and reports it. Trainer, evaluator, runner and reports
 * depend on this file only; a new method is a new folder implementing `ZeroShotMethod`.
 */
import type { ClipModel } from '../clip/model.js';
import type { MethodName } from './index.js';
import type { ClipTokenizer } from '../clip/tokenizer.js';
import type { tf, Tensor, Tensor1D, Tensor2D, Tensor3D, Tensor4D, Variable } from '../tf.js';

/** Frozen CLIP vision outputs for a batch, as the feature extractor or feature cache gives them. */
export interface FrozenFeatures {
  /**
   * Per requested layer (order of `features.layers`), class token dropped: block outputs before
   * ln_post [B, L, Dv] (request `tokens: 'raw'`), or through ln_post + visual projection [B, L, D]
   * (`tokens: 'projected'`).
   */
  patchTokens: Tensor3D[];
  /**
   * Class token of the last block · visual projection, not normalised: after ln_post (CLIP's image
   * embedding; request `global: 'ln_post'`) or without it (`global: 'no_ln_post'`). [B, D]
   */
  global: Tensor2D;
  /** Class token of the last block before ln_post, for methods that project it themselves. [B, Dv] */
  classToken?: Tensor2D;
}

export const TOKEN_FORMS = ['raw', 'projected'] as const;
export const GLOBAL_FORMS = ['ln_post', 'no_ln_post'] as const;

/** What the frozen vision encoder must produce for this method. */
export interface FeatureRequest {
  /** 1-based vision block indices whose outputs fill `FrozenFeatures.patchTokens`. */
  layers: readonly number[];
  /** Input resolution S (square). */
  imageSize: number;
  /** Form of `patchTokens` (default 'raw'). */
  tokens?: (typeof TOKEN_FORMS)[number];
  /** Form of `global` (default 'ln_post'). */
  global?: (typeof GLOBAL_FORMS)[number];
}

export interface ForwardOptions {
  /** Training mode: dropout on, and the test-time fused map and score are skipped. */
  training: boolean;
  /**
   * Test time: leave out the fused map and score (`readout`), e.g. when several variants read
   * the same forward out (an evaluation group). Default false.
   */
  skipReadout?: boolean;
}

/** What `readout` makes of a test-time forward: the fused map and the raw image score. */
export interface Readout {
  /** The method's fused anomaly map before smoothing and normalisation. [B, S, S] */
  anomalyMap: Tensor3D;
  /** The method's raw image score (higher = more anomalous); absent when it has none. [B] */
  score?: Tensor1D;
}

/** Values of a method's post-forward fields (schema `x-post-forward`), by field name. */
export type PostForwardSettings = Readonly<Record<string, unknown>>;

export interface MethodOutput {
  /**
   * Per branch (e.g. 'base', 'vcp'), per layer: 2-class softmax probabilities at full
   * resolution, channels last (index 0 normal, 1 abnormal). [B, S, S, 2]
   */
  layerMaps: Record<string, Tensor4D[]>;
  /** Test time only: the method's fused anomaly map before smoothing and normalisation. [B, S, S] */
  anomalyMap?: Tensor3D;
  /** Test time only: the method's raw image score (higher = more anomalous). [B] */
  score?: Tensor1D;
  /** Intermediate tensors for figures and diagnostics (e.g. text embeddings, attention maps). */
  extras: Record<string, Tensor>;
}

/** Learning-rate group: the named parameters (keys of `parameters()`) stepped with `lr`. */
export interface ParamGroup {
  name: string;
  lr: number;
  params: string[];
}

export interface OptimizerSpec {
  kind: 'adam';
  beta1: number;
  beta2: number;
  epsilon: number;
  groups: ParamGroup[];
}

/** How the evaluator turns `anomalyMap` / `score` into final maps and scores. */
export interface PostprocessSpec {
  /** Gaussian σ (pixels, scipy semantics: truncate 4σ, mode reflect) on the fused map; 0 = none. */
  smoothingSigma: number;
  /** Min–max normalise the smoothed maps over all images of a product. */
  normalizeMaps: boolean;
  /** Min–max normalise the image scores over all images of a product. */
  normalizeScores: boolean;
  /** Where the image score comes from: the method's `score`, or the maximum of the smoothed map. */
  score: 'method' | 'map-max';
}

export interface ZeroShotMethod<Cfg = unknown> {
  readonly name: MethodName;
  /** Fully resolved, frozen config: the MLflow params and the checkpoint's JSON. */
  readonly config: Cfg;
  readonly features: FeatureRequest;
  readonly postprocess: PostprocessSpec;
  /** Learnable tensors only; the keys are the checkpoint names. CLIP is never in here. */
  parameters(): Map<string, Variable>;
  optimizer(): OptimizerSpec;
  /**
   * Call inside tf.tidy (or dispose the output's tensors). At test time the output holds
   * `readout(output)` as `anomalyMap` and `score` unless `skipReadout`.
   */
  forward(batch: FrozenFeatures, options: ForwardOptions): MethodOutput;
  /**
   * Test time is split at the post-forward fields (those its schema marks `x-post-forward`,
   * e.g. VCP-CLIP's α, σ, image-score rule and top-k): `forward` computes everything none of
   * them changes; `readout` turns that output into this method's fused map and score, from
   * `layerMaps` and `extras` only. So one forward serves every post-forward variant:
   * `variant.readout(base.forward(batch))` equals `variant.forward(batch)` (tested per method).
   * Returns new tensors (call inside tf.tidy, or dispose them); the output is not consumed.
   */
  readout(output: MethodOutput): Readout;
  /**
   * This method with other values of its post-forward fields (a subset of them; any other
   * field is a ConfigError): shares the parameter Variables and everything built from them,
   * so its `readout` and `postprocess` differ and nothing else. Its `dispose` frees nothing
   * of the method's.
   */
  withPostForward(settings: PostForwardSettings): ZeroShotMethod<Cfg>;
  /**
   * Scalar training loss.
   * @param masks binary ground truth at S×S. [B, S, S]
   * @param labels image labels, 1 = anomalous. [B]
   */
  loss(output: MethodOutput, masks: Tensor3D, labels: Tensor1D): tf.Scalar;
  /**
   * Makes the randomness of the next training forwards (e.g. dropout masks) a function of
   * `seed`: the trainer calls it before every micro-batch of a step with that step's seed, so
   * runs repeat exactly and micro-batches of one step share their masks.
   */
  seedRandomness?(seed: number): void;
  /**
   * Test-time prompts (paper Table 9): a view of this method that encodes `pairs` (ensembled)
   * instead of its training prompts. The view shares this method's parameter Variables (no
   * copies): its `dispose` frees only what the view built, and disposing this method frees its
   * views too. Absent on methods without text prompts to swap.
   * @param field the name of `pairs` in validation errors (e.g. 'eval.prompts')
   */
  withPrompts?(pairs: readonly PromptPair[], field?: string): ZeroShotMethod<Cfg>;
  /** Frees the method's own variables (not CLIP's). */
  dispose(): void;
}

/** A normal/abnormal prompt pair, each sentence with exactly one `{cls}` slot. */
export interface PromptPair {
  readonly normal: string;
  readonly abnormal: string;
}

/** A name in the registry (src/model/methods/index.ts). */
export type { MethodName };

/** The part of the CLIP tokenizer prompt builders use. */
export type PromptTokenizer = Pick<
  ClipTokenizer,
  'encodeTemplate' | 'pieceIds' | 'sotId' | 'eotId'
>;

/** What a method factory is given: the frozen CLIP model (towers, config, options) and its tokenizer. */
export interface MethodContext {
  clip: ClipModel;
  tokenizer: PromptTokenizer;
  /** Name of the loaded backbone (e.g. 'ViT-L-14-336'), checked against the method config when given. */
  backbone?: string;
}

export type MethodFactory<Cfg = unknown> = (
  config: unknown,
  context: MethodContext,
) => ZeroShotMethod<Cfg>;
