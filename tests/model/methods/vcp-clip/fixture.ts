/** Loads the tiny CLIP + VCP-CLIP golden fixture (python/golden/make_vcp_golden.py). */
import { readFileSync } from 'node:fs';
import { requireCommittedFixtures, tensorOf } from '../golden-fixture.js';
import { tf } from '../../../../src/model/tf.js';
import type { Tensor } from '../../../../src/model/tf.js';
import { parseClipConfig } from '../../../../src/model/clip/config.js';
import { createClipModel, type ClipModel } from '../../../../src/model/clip/model.js';
import { readSafetensors, type RawTensor } from '../../../../src/io/safetensors.js';
import { ClipTokenizer } from '../../../../src/model/clip/tokenizer.js';
import type { MethodContext } from '../../../../src/model/methods/method.js';
import type { VcpClipConfigInput } from '../../../../src/model/methods/vcp-clip/config.js';
import {
  createVcpClip,
  VcpClipMethod,
  backboneShapeOf,
} from '../../../../src/model/methods/vcp-clip/model.js';
import { resolveVcpClipConfig } from '../../../../src/model/methods/vcp-clip/config.js';

export const DIR = 'tests/fixtures/vcp-clip';
export const TOKENIZER_DIR = 'assets/clip/tiny-clip';

export interface Fixture {
  meta: {
    config: VcpClipConfigInput;
    layers: number[];
  };
  params: Map<string, RawTensor>;
  inputs: Map<string, RawTensor>;
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
    'python/golden/make_vcp_golden.py',
  );
}

export async function loadFixture(): Promise<Fixture> {
  const read = async (f: string) => (await readSafetensors(f)).tensors;
  return {
    meta: JSON.parse(readFileSync(`${DIR}/golden.json`, 'utf8')) as Fixture['meta'],
    params: await read(`${DIR}/params.safetensors`),
    inputs: await read(`${DIR}/inputs.safetensors`),
    golden: await read(`${DIR}/golden.safetensors`),
    tokenizer: await ClipTokenizer.fromDirectory(TOKENIZER_DIR),
    clipConfigJson: JSON.parse(readFileSync(`${DIR}/tiny-clip/config.json`, 'utf8')),
    clipTensors: await read(`${DIR}/tiny-clip/model.safetensors`),
  };
}

export { tensorOf };

export function buildClip(fx: Fixture): ClipModel {
  return createClipModel(parseClipConfig(fx.clipConfigJson), fx.clipTensors, {
    activation: 'gelu',
    posEmbedResize: 'bicubic_antialias',
  });
}

export function contextOf(fx: Fixture, clip: ClipModel): MethodContext {
  return { clip, tokenizer: fx.tokenizer };
}

/** The method with the fixture's config (overridable) and, when the shapes allow, its parameters. */
export function buildMethod(
  fx: Fixture,
  clip: ClipModel,
  overrides: VcpClipConfigInput = {},
  options: { truncate?: boolean; load?: boolean } = {},
): VcpClipMethod {
  const context = contextOf(fx, clip);
  const input = { ...fx.meta.config, ...overrides };
  const method =
    options.truncate === undefined
      ? createVcpClip(input, context)
      : new VcpClipMethod(
          resolveVcpClipConfig(input, { backbone: backboneShapeOf(context) }),
          context,
          { truncate: options.truncate },
        );
  if (options.load ?? true) {
    for (const [name, v] of method.parameters()) {
      const raw = fx.params.get(name);
      if (!raw || raw.shape.join() !== v.shape.join()) continue;
      const value = tensorOf(raw);
      v.assign(value as typeof v);
      value.dispose();
    }
  }
  return method;
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
