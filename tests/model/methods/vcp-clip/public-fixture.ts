/**
 * The goldens of the authors' VCP-CLIP code (python/golden/make_vcp_public_golden.py) and the
 * comparisons against them, shared by the test and the parity report: per case (activation,
 * input size) the full forward from pixels (vision tower with the resized positional grid,
 * prompts, both branches, fusion, score), the loss on a mask, and one Adam step.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors, type RawTensor } from '../../../../src/io/safetensors.js';
import type { Activation, PosEmbedResize } from '../../../../src/model/clip/config.js';
import { createClipModel, type ClipModel } from '../../../../src/model/clip/model.js';
import { loadClipCheckpoint, type ClipCheckpoint } from '../../../../src/model/clip/weights.js';
import { createOptimizer } from '../../../../src/model/methods/optim.js';
import type { VcpClipConfigInput } from '../../../../src/model/methods/vcp-clip/config.js';
import { createVcpClip, type VcpClipMethod } from '../../../../src/model/methods/vcp-clip/model.js';
import { readPublicState } from '../../../../src/model/methods/vcp-clip/import.js';
import { fromPublicCheckpoint } from '../../../../src/model/methods/vcp-clip/public-checkpoint.js';
import { tf } from '../../../../src/model/tf.js';
import type { Tensor, Tensor1D, Tensor2D, Tensor3D, Tensor4D } from '../../../../src/model/tf.js';

export const PUBLIC_DIR = 'tests/fixtures/vcp-clip-public';
export const PUBLIC_CLIP_DIR = join(PUBLIC_DIR, 'tiny-clip');

export interface PublicCase {
  tag: string;
  activation: Activation;
  image_size: number;
  config: VcpClipConfigInput;
  checkpoint?: string;
}

export interface PublicMeta {
  commit: string;
  config: VcpClipConfigInput & { layers: number[]; lr: number };
  batch: number;
  sizes: number[];
  cases: PublicCase[];
  losses: Record<string, number>;
  adam: {
    activation: Activation;
    image_size: number;
    loss: number;
    file: string;
    /** The gradients of that step (float16), for some cases. */
    gradients?: string;
  }[];
  predict: {
    image: string;
    image_size: number;
    alpha: number;
    sigma: number;
    checkpoint: string;
    expected: string;
  };
}

export interface PublicFixture {
  meta: PublicMeta;
  golden: Map<string, RawTensor>;
  clip: ClipCheckpoint;
  /** Checkpoint tensors of the .pth files (our names), by file name. */
  params: Map<string, Map<string, { shape: number[]; data: Float32Array }>>;
}

/**
 * Committed fixtures are not optional: a missing one throws (the test file fails) rather than
 * skipping. Returns null so that callers' `{ skip: missing }` never skips.
 */
export function publicFixtureMissing(): string | null {
  for (const f of [
    'golden.json',
    'golden.safetensors',
    'public.pth',
    'tiny-clip/model.safetensors',
  ]) {
    if (!existsSync(join(PUBLIC_DIR, f)))
      throw new Error(
        `committed fixture ${join(PUBLIC_DIR, f)} is missing: restore it from git or regenerate it with python/golden/make_vcp_public_golden.py <VCP-CLIP code> (python/README.md)`,
      );
  }
  return null;
}

export async function readPublicParams(
  file: string,
): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
  return fromPublicCheckpoint(await readPublicState(file), file).tensors;
}

export async function loadPublicFixture(): Promise<PublicFixture> {
  const meta = JSON.parse(readFileSync(join(PUBLIC_DIR, 'golden.json'), 'utf8')) as PublicMeta;
  const files = new Set([
    'public.pth',
    ...meta.cases.flatMap((c) => (c.checkpoint ? [c.checkpoint] : [])),
  ]);
  for (const a of meta.adam) {
    files.add(a.file);
    if (a.gradients) files.add(a.gradients);
  }
  const params = new Map();
  for (const f of files) params.set(f, await readPublicParams(join(PUBLIC_DIR, f)));
  return {
    meta,
    golden: (await readSafetensors(join(PUBLIC_DIR, 'golden.safetensors'))).tensors,
    clip: await loadClipCheckpoint(PUBLIC_CLIP_DIR),
    params,
  };
}

export function buildPublicClip(
  fx: PublicFixture,
  activation: Activation,
  posEmbedResize: PosEmbedResize,
): ClipModel {
  return createClipModel(fx.clip.config, fx.clip.tensors, { activation, posEmbedResize });
}

/** The method of a case with the checkpoint's parameters (tensors it has no use for are skipped). */
export function buildPublicMethod(
  fx: PublicFixture,
  clip: ClipModel,
  c: PublicCase,
): VcpClipMethod {
  const { config: base } = fx.meta;
  const method = createVcpClip(
    {
      ...base,
      ...c.config,
      activation: clip.options.activation,
      pos_embed_resize: clip.options.posEmbedResize,
      image_size: c.image_size,
    },
    { clip, tokenizer: fx.clip.tokenizer },
  );
  const params = fx.params.get(c.checkpoint ?? 'public.pth')!;
  for (const [name, v] of method.parameters()) {
    const raw = params.get(name);
    if (!raw) throw new Error(`the checkpoint has no ${name}`);
    const t = tf.tensor(raw.data, raw.shape);
    v.assign(t);
    t.dispose();
  }
  return method;
}

const tensorOf = (raw: RawTensor): Tensor => tf.tensor(raw.data, raw.shape);

/** Frozen features from pixels [B, 3, S, S] (NCHW, as the public code takes them). */
export function featuresOf(
  clip: ClipModel,
  pixels: RawTensor,
  layers: readonly number[],
): { patchTokens: Tensor3D[]; global: Tensor2D } {
  return tf.tidy(() => {
    const nhwc = tensorOf(pixels).transpose([0, 2, 3, 1]) as Tensor4D;
    const out = clip.vision.forward(nhwc, { layers, tokens: 'raw' });
    const patchTokens = out.layers.map((l) => {
      const [b, t, w] = l.shape;
      return l.slice([0, 1, 0], [b, t - 1, w]) as Tensor3D;
    });
    return { patchTokens, global: out.global };
  });
}

function maxAbsDiff(actual: Tensor, expected: RawTensor): number {
  if (actual.shape.join() !== expected.shape.join())
    throw new Error(`shape [${actual.shape}] vs expected [${expected.shape}]`);
  const a = actual.dataSync();
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - expected.data[i]));
  return Number.isNaN(m) ? Infinity : m;
}

export interface Comparison {
  name: string;
  err: number;
}

/** Every output of one case's forward against the public forward (max |Δ| per tensor). */
export function compareForward(
  fx: PublicFixture,
  method: VcpClipMethod,
  clip: ClipModel,
  c: PublicCase,
): Comparison[] {
  const gold = (k: string) => fx.golden.get(`${c.tag}.${k}`)!;
  const { layers } = fx.meta.config;
  const result: Comparison[] = [];
  tf.tidy(() => {
    const features = featuresOf(clip, fx.golden.get(`input.pixels.${c.image_size}`)!, layers);
    const out = method.forward(features, { training: false });
    const [b, s] = out.anomalyMap!.shape;
    const abnormal = (m: Tensor4D) => m.slice([0, 0, 0, 1], [b, s, s, 1]).reshape([b, s, s]);
    // Without Pre-VCP one set of text embeddings serves every image; the public code repeats it.
    const text = out.extras.text.shape[0] === b ? out.extras.text : out.extras.text.tile([b, 1, 1]);
    result.push(
      { name: 'global', err: maxAbsDiff(features.global, gold('global')) },
      { name: 'text', err: maxAbsDiff(text, gold('text')) },
    );
    layers.forEach((layer, i) => {
      result.push({
        name: `refined.${layer}`,
        err: maxAbsDiff(out.extras[`refined.${layer}`], gold(`refined.${layer}`)),
      });
      result.push({
        name: `map.base.${layer}`,
        err: maxAbsDiff(abnormal(out.layerMaps.base[i]), gold(`map.base.${layer}`)),
      });
      result.push({
        name: `map.vcp.${layer}`,
        err: maxAbsDiff(abnormal(out.layerMaps.vcp[i]), gold(`map.vcp.${layer}`)),
      });
    });
    result.push(
      { name: 'mean.base', err: maxAbsDiff(out.extras['map.base'], gold('mean.base')) },
      { name: 'mean.vcp', err: maxAbsDiff(out.extras['map.vcp'], gold('mean.vcp')) },
      { name: 'fused', err: maxAbsDiff(out.anomalyMap!, gold('fused')) },
      { name: 'score', err: maxAbsDiff(out.score!, gold('score')) },
    );
    const masks = tensorOf(fx.golden.get(`input.mask.${c.image_size}`)!) as Tensor3D;
    const train = method.forward(features, { training: true });
    const loss = method.loss(train, masks, tf.ones([b]) as Tensor1D).dataSync()[0];
    result.push({ name: 'loss', err: Math.abs(loss - fx.meta.losses[c.tag]) });
  });
  return result;
}

/** Parameters whose gradient is zero analytically (a softmax / LayerNorm ignores them): their Adam step follows float noise. */
export const NOISE_ONLY_GRADIENT = ['post_vcp.k_proj.bias', 'pre_vcp.mininet.bias'];

export interface AdamComparison {
  name: string;
  /** max |Δ| over the elements whose step is determined by their gradient. */
  err: number;
  /** Elements whose step follows float noise (see compareAdamStep); only |step| ≤ lr is checked. */
  noisy: number;
  total: number;
  /** max |step| / lr over the noisy elements (≤ 1 for any Adam step). */
  noisyStep: number;
}

/**
 * One Adam step (train.py's groups and betas) against the public parameters after it. Adam's
 * first step is −lr·g/(|g| + ε) (ε = 1e-8): where |g| < 100ε (told by the public step being
 * shorter than 0.99·lr) it depends on the float noise of g, so those elements, and the
 * parameters whose gradient is zero analytically, are only checked to move by at most lr.
 */
export function compareAdamStep(
  fx: PublicFixture,
  method: VcpClipMethod,
  clip: ClipModel,
  adam: PublicMeta['adam'][number],
): { loss: number; params: AdamComparison[] } {
  const { layers } = fx.meta.config;
  const before = new Map([...method.parameters()].map(([n, v]) => [n, v.dataSync().slice()]));
  const lrOf = new Map(
    method.optimizer().groups.flatMap((g) => g.params.map((n) => [n, g.lr] as const)),
  );
  const features = featuresOf(clip, fx.golden.get(`input.pixels.${adam.image_size}`)!, layers);
  const masks = tensorOf(fx.golden.get(`input.mask.${adam.image_size}`)!) as Tensor3D;
  const labels = tf.ones([features.global.shape[0]]) as Tensor1D;
  const optimizer = createOptimizer(method);
  const value = optimizer.step(() =>
    method.loss(method.forward(features, { training: true }), masks, labels),
  );
  optimizer.dispose();
  tf.dispose([...features.patchTokens, features.global, masks, labels]);
  const expected = fx.params.get(adam.file)!;
  const params: AdamComparison[] = [];
  for (const [name, v] of method.parameters()) {
    const gold = expected.get(name)!.data;
    const init = before.get(name)!;
    const ours = v.dataSync();
    const lr = lrOf.get(name)!;
    const result: AdamComparison = { name, err: 0, noisy: 0, total: ours.length, noisyStep: 0 };
    for (let i = 0; i < ours.length; i++) {
      if (NOISE_ONLY_GRADIENT.includes(name) || Math.abs(gold[i] - init[i]) < 0.99 * lr) {
        result.noisy++;
        result.noisyStep = Math.max(result.noisyStep, Math.abs(ours[i] - init[i]) / lr);
      } else result.err = Math.max(result.err, Math.abs(ours[i] - gold[i]));
    }
    params.push(result);
  }
  return { loss: Math.abs(value - adam.loss), params };
}

export interface GradientComparison {
  name: string;
  /** max |Δ| / max |public gradient| over the tensor. */
  relative: number;
  /** max |gradient| of each side, for the zero-gradient parameters. */
  ours: number;
  theirs: number;
}

/** The gradients of the training loss (train.py's forward, dropout off) against the public backward. */
export function compareGradients(
  fx: PublicFixture,
  method: VcpClipMethod,
  clip: ClipModel,
  adam: PublicMeta['adam'][number],
): GradientComparison[] {
  const { layers } = fx.meta.config;
  const features = featuresOf(clip, fx.golden.get(`input.pixels.${adam.image_size}`)!, layers);
  const masks = tensorOf(fx.golden.get(`input.mask.${adam.image_size}`)!) as Tensor3D;
  const labels = tf.ones([features.global.shape[0]]) as Tensor1D;
  const optimizer = createOptimizer(method);
  const { grads } = optimizer.gradients(() =>
    method.loss(method.forward(features, { training: true }), masks, labels),
  );
  optimizer.dispose();
  const expected = fx.params.get(adam.gradients!)!;
  const result: GradientComparison[] = [];
  for (const [name, v] of method.parameters()) {
    const theirs = expected.get(name)!.data;
    const ours = grads[v.name]?.dataSync() ?? new Float32Array(theirs.length);
    let diff = 0;
    let scaleTheirs = 0;
    let scaleOurs = 0;
    for (let i = 0; i < theirs.length; i++) {
      diff = Math.max(diff, Math.abs(ours[i] - theirs[i]));
      scaleTheirs = Math.max(scaleTheirs, Math.abs(theirs[i]));
      scaleOurs = Math.max(scaleOurs, Math.abs(ours[i]));
    }
    result.push({
      name,
      relative: diff / Math.max(scaleTheirs, 1e-30),
      ours: scaleOurs,
      theirs: scaleTheirs,
    });
  }
  tf.dispose([...features.patchTokens, features.global, masks, labels, ...Object.values(grads)]);
  return result;
}
