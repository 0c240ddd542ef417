/** Loads the tiny CLIP + ViP²-CLIP golden fixture (python/golden/make_vip2_golden.py). */
import { readFileSync } from 'node:fs';
import { requireCommittedFixtures, tensorOf } from '../golden-fixture.js';
import { tf } from '../../../../src/model/tf.js';
import type { Tensor, Tensor2D, Tensor3D } from '../../../../src/model/tf.js';
import { parseClipConfig } from '../../../../src/model/clip/config.js';
import { createClipModel, type ClipModel } from '../../../../src/model/clip/model.js';
import { readSafetensors, type RawTensor } from '../../../../src/io/safetensors.js';
import { ClipTokenizer } from '../../../../src/model/clip/tokenizer.js';
import type { FrozenFeatures } from '../../../../src/model/methods/method.js';
import type { Vip2ClipConfigInput } from '../../../../src/model/methods/vip2-clip/config.js';
import {
  createVip2Clip,
  type Vip2ClipMethod,
} from '../../../../src/model/methods/vip2-clip/model.js';

export const DIR = 'tests/fixtures/vip2-clip';
export const TOKENIZER_DIR = 'assets/clip/tiny-clip';

export interface Fixture {
  meta: {
    config: {
      image_size: number;
      layers: number[];
      n_ctx: number;
      n_cls: number;
      topk: number;
      lr: number;
      sigma: number;
      seed: number;
    };
    losses: Record<string, number>;
    test_order: number[];
    source: { commit: string };
  };
  /** Initial parameters train() drew. */
  params: Map<string, RawTensor>;
  /** The parameters of the forward goldens. */
  probe: Map<string, RawTensor>;
  golden: Map<string, RawTensor>;
  tokenizer: ClipTokenizer;
  clipConfigJson: unknown;
  clipTensors: Map<string, RawTensor>;
}

export function fixtureMissing(): string | null {
  return requireCommittedFixtures(
    [
      `${DIR}/golden.safetensors`,
      `${DIR}/tiny-clip/model.safetensors`,
      `${TOKENIZER_DIR}/tokenizer.json`,
    ],
    'python/golden/make_vip2_golden.py',
  );
}

export async function loadFixture(): Promise<Fixture> {
  const read = async (f: string) => (await readSafetensors(f)).tensors;
  return {
    meta: JSON.parse(readFileSync(`${DIR}/golden.json`, 'utf8')) as Fixture['meta'],
    params: await read(`${DIR}/params.safetensors`),
    probe: await read(`${DIR}/probe.safetensors`),
    golden: await read(`${DIR}/golden.safetensors`),
    tokenizer: await ClipTokenizer.fromDirectory(TOKENIZER_DIR),
    clipConfigJson: JSON.parse(readFileSync(`${DIR}/tiny-clip/config.json`, 'utf8')),
    clipTensors: await read(`${DIR}/tiny-clip/model.safetensors`),
  };
}

export { tensorOf };

/** The tiny CLIP with the public code's options (QuickGELU, bilinear position resize). */
export function buildClip(fx: Fixture): ClipModel {
  return createClipModel(parseClipConfig(fx.clipConfigJson), fx.clipTensors, {
    activation: 'quick_gelu',
    posEmbedResize: 'bilinear',
  });
}

/** The fixture's config in our field names. */
export function configOf(fx: Fixture): Vip2ClipConfigInput {
  const c = fx.meta.config;
  return {
    backbone: 'tiny',
    image_size: c.image_size,
    layers: c.layers,
    n_ctx: c.n_ctx,
    n_cls: c.n_cls,
    topk: c.topk,
    lr: c.lr,
    sigma: c.sigma,
    seed: c.seed,
  };
}

/** Assigns `values` (our names) to the method's parameters; every name must match. */
export function assign(method: Vip2ClipMethod, values: Map<string, RawTensor>): void {
  for (const [name, v] of method.parameters()) {
    const raw = values.get(name);
    if (!raw) throw new Error(`fixture has no ${name}`);
    const t = tensorOf(raw);
    v.assign(t as typeof v);
    t.dispose();
  }
}

export function buildMethod(
  fx: Fixture,
  clip: ClipModel,
  overrides: Vip2ClipConfigInput = {},
  values: Map<string, RawTensor> | null = fx.probe,
): Vip2ClipMethod {
  const method = createVip2Clip(
    { ...configOf(fx), ...overrides },
    { clip, tokenizer: fx.tokenizer },
  );
  if (values) assign(method, values);
  return method;
}

/** The authors' frozen features of the training batch (class token dropped). */
export function goldenFeatures(fx: Fixture): FrozenFeatures {
  return tf.tidy(() => {
    const patchTokens = fx.meta.config.layers.map((l) => {
      const t = tensorOf(fx.golden.get(`clip.patch.${l}`)!) as Tensor3D; // [B, 1+L, D]
      const [b, n, d] = t.shape;
      return t.slice([0, 1, 0], [b, n - 1, d]) as Tensor3D;
    });
    return { patchTokens, global: tensorOf(fx.golden.get('clip.global')!) as Tensor2D };
  });
}

/** Max |a − b| after checking shapes. */
export function maxAbsDiff(actual: Tensor, expected: RawTensor | Tensor): number {
  const e = expected instanceof tf.Tensor ? expected : tensorOf(expected);
  if (actual.shape.join() !== e.shape.join())
    throw new Error(`shape [${actual.shape}] vs expected [${e.shape}]`);
  const a = actual.dataSync();
  const b = e.dataSync();
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  if (!(expected instanceof tf.Tensor)) e.dispose();
  return Number.isNaN(m) ? Infinity : m;
}
