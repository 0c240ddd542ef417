/**
 * Checkpoints: save → load → same parameters and forward; refusals naming the field and both
 * values; import of the public implementation's .pth through python/convert/vcp_clip_pth.py,
 * which needs only numpy (CI uses .venv/bin/python): the committed tiny .pth with the real key
 * names (python/convert/make_test_pth.py) must convert to exactly the tensors torch.load gives.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { initBackend } from '../../src/model/backend.js';
import { applyCheckpoint, loadCheckpoint, saveCheckpoint } from '../../src/model/checkpoint.js';
import type { ClipModel } from '../../src/model/clip/model.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { sha256File } from '../../src/model/clip/weights.js';
import { createMethod } from '../../src/model/methods/index.js';
import type { ZeroShotMethod } from '../../src/model/methods/method.js';
import { tf } from '../../src/model/tf.js';
import type { Tensor2D, Tensor3D } from '../../src/model/tf.js';
import {
  buildClip,
  buildMethod,
  contextOf,
  DIR,
  type Fixture,
  fixtureMissing,
  loadFixture,
  tensorOf,
} from './methods/vcp-clip/fixture.js';
import { need, numpyPython, torchPython } from '../requirements.js';

const missing = fixtureMissing();
const fx: Fixture | null = missing ? null : await loadFixture();
const work = mkdtempSync(join(tmpdir(), 'vcp-ckpt-'));
after(() => rmSync(work, { recursive: true, force: true }));

function forwardMap(method: ZeroShotMethod): Float32Array {
  return tf
    .tidy(() => {
      const batch = {
        patchTokens: fx!.meta.layers.map(
          (_, i) => tensorOf(fx!.inputs.get(`patch_tokens.${i}`)!) as Tensor3D,
        ),
        global: tensorOf(fx!.inputs.get('global')!) as Tensor2D,
      };
      return method.forward(batch, { training: false }).anomalyMap!;
    })
    .dataSync() as Float32Array;
}

const FIXTURE_PTH = join(DIR, 'tiny-public.pth');
const CONVERT = [
  'python/convert/vcp_clip_pth.py',
  '--clip-dir',
  join(DIR, 'tiny-clip'),
  '--layers',
  '1',
  '2',
  '--image-size',
  '24',
  '--backbone',
  'tiny',
];

function runConverter(py: string, pth: string, out: string, extra: string[] = []): void {
  const [script, ...options] = CONVERT;
  const conv = spawnSync(py, [script!, pth, out, ...options, ...extra], { encoding: 'utf8' });
  assert.equal(conv.status, 0, `${py} ${script} ${pth}: ${conv.stderr}`);
}

async function assertSameTensors(actualFile: string, expectedFile: string): Promise<void> {
  const actual = (await readSafetensors(actualFile)).tensors;
  const expected = (await readSafetensors(expectedFile)).tensors;
  assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort());
  for (const [name, e] of expected) {
    const a = actual.get(name)!;
    assert.equal(a.dtype, 'F32', name);
    assert.equal(e.dtype, 'F32', name);
    assert.deepEqual(a.shape, e.shape, name);
    assert.deepEqual(a.data, e.data, name);
  }
}

describe('checkpoints', { skip: missing ?? false }, () => {
  let clip: ClipModel;
  let hash: string;
  before(async () => {
    await initBackend('tensorflow');
    clip = buildClip(fx!);
    hash = await sha256File(join(DIR, 'tiny-clip/model.safetensors'));
  });
  after(() => clip.dispose());

  test('save → load: same tensors, same forward; refusals name field and both values', async () => {
    const trained = buildMethod(fx!, clip);
    const dir = join(work, 'ckpt');
    await saveCheckpoint(dir, trained, { sha256: hash, name: 'tiny' });
    await saveCheckpoint(dir, trained, { sha256: hash, name: 'tiny' }); // replacing is atomic too
    const ckpt = await loadCheckpoint(dir);
    assert.equal(ckpt.config.method, 'vcp-clip');
    const fresh = buildMethod(fx!, clip, {}, { load: false });
    const before = forwardMap(fresh);
    applyCheckpoint(fresh, ckpt, hash);
    assert.deepEqual(forwardMap(fresh), forwardMap(trained));
    assert.notDeepEqual(before, forwardMap(trained));

    assert.throws(
      () => applyCheckpoint(fresh, ckpt, 'f'.repeat(64)),
      (e: Error) =>
        e.message.includes('clip.sha256') &&
        e.message.includes(hash) &&
        e.message.includes('f'.repeat(64)),
    );
    const other = buildMethod(fx!, clip, { heads: 2 }, { load: false });
    assert.throws(
      () => applyCheckpoint(other, ckpt, hash),
      /config\.heads: the checkpoint has \d+, the model config has 2/,
    );
    const evalOnly = buildMethod(fx!, clip, { alpha: 0.3, sigma: 1 }, { load: false });
    applyCheckpoint(evalOnly, ckpt, hash); // evaluation-only fields may differ
    await assert.rejects(
      loadCheckpoint(join(work, 'nothing')),
      /not a vcp-exp checkpoint \(missing config\.json\)/,
    );
    for (const m of [trained, fresh, other, evalOnly]) m.dispose();
  });

  test('committed public .pth → converter without torch → the tensors torch reads, same forward as the values set directly', async (t) => {
    const py = need(t, 'numpy-python', numpyPython());
    if (!py) return;
    const reference = join(DIR, 'tiny-public-reference.safetensors');
    const out = join(work, 'converted');
    runConverter(py, FIXTURE_PTH, out);
    // Written by make_test_pth.py --expected: torch.load(weights_only) + safetensors.torch.
    await assertSameTensors(
      join(out, 'model.safetensors'),
      join(DIR, 'tiny-public-expected.safetensors'),
    );

    const ckpt = await loadCheckpoint(out);
    const context = contextOf(fx!, clip);
    const converted = createMethod('vcp-clip', ckpt.config.config, context);
    applyCheckpoint(converted, ckpt, hash);

    // The same values, placed by hand from their PyTorch names and layouts.
    const ref = (await readSafetensors(reference)).tensors;
    const direct = createMethod('vcp-clip', ckpt.config.config, context);
    const p = direct.parameters();
    const set = (name: string, value: tf.Tensor) => {
      p.get(name)!.assign(value.reshape(p.get(name)!.shape));
      value.dispose();
    };
    const raw = (k: string) => tensorOf(ref.get(k)!);
    set('pre_vcp.q', raw('New_Lan_Embed.prompt_query'));
    set('pre_vcp.mininet.weight', raw('New_Lan_Embed.prompt_linear1.fc.weight'));
    set('pre_vcp.mininet.bias', raw('New_Lan_Embed.prompt_linear1.fc.bias'));
    set('maps.base.logit_scale', raw('New_Lan_Embed.prompt_temp'));
    set('maps.vcp.logit_scale', raw('Zero_try.prompt_temp_l1'));
    for (const [ours, theirs] of [
      ['q', 'q_proj_pre'],
      ['k', 'k_proj_pre_1'],
      ['v', 'v_proj_pre_1'],
      ['o', 'proj_post_t'],
    ]) {
      set(`post_vcp.${ours}_proj.weight`, raw(`Zero_try.${theirs}.weight`));
      set(`post_vcp.${ours}_proj.bias`, raw(`Zero_try.${theirs}.bias`));
    }
    for (const i of [0, 1]) {
      set(`maps.base.linear.${i}.weight`, raw(`trainable_linearlayer.fc.${i}.weight`));
      set(`maps.base.linear.${i}.bias`, raw(`trainable_linearlayer.fc.${i}.bias`));
    }
    set('dtp.prompts', tf.concat([raw('prompt_embeddings'), raw('deep_prompt_embeddings')], 0));
    for (const k of [
      'prompt_proj.weight',
      'prompt_proj.bias',
      'prompt_norm.weight',
      'prompt_norm.bias',
    ])
      set(`dtp.${k}`, raw(k));

    assert.equal(ckpt.config.config.activation, 'gelu');
    assert.deepEqual(forwardMap(converted), forwardMap(direct));
    converted.dispose();
    direct.dispose();
  });

  test('a .pth freshly saved by the installed torch: the torch-free reader equals torch.load', async (t) => {
    const py = need(t, 'torch-python', torchPython());
    if (!py) return;
    const { text, vision, projectionDim } = clip.config;
    const pth = join(work, 'fresh.pth');
    const expected = join(work, 'fresh-expected.safetensors');
    const make = spawnSync(
      py,
      [
        'python/convert/make_test_pth.py',
        pth,
        join(work, 'fresh-reference.safetensors'),
        '--expected',
        expected,
        '--r',
        '2',
        '--n',
        '1',
        '--width',
        `${text.width}`,
        '--vision',
        `${vision.width}`,
        '--embed',
        `${projectionDim}`,
        '--text-layers',
        `${text.layers}`,
        '--layers',
        '2',
      ],
      { encoding: 'utf8' },
    );
    assert.equal(make.status, 0, make.stderr);
    runConverter(py, pth, join(work, 'fresh'), ['--loader', 'pure']);
    await assertSameTensors(join(work, 'fresh/model.safetensors'), expected);
  });
});
