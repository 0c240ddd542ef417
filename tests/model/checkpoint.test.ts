/**
 * Checkpoints: save → load → same parameters and forward; refusals naming the field and both
 * values; import of the public implementation's .pth through python/convert/vcp_clip_pth.py
 * (tiny .pth with the real key names from python/convert/make_test_pth.py).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { initBackend } from '../../src/model/backend.js';
import { applyCheckpoint, loadCheckpoint, saveCheckpoint } from '../../src/model/checkpoint.js';
import type { ClipModel } from '../../src/model/clip/model.js';
import { readSafetensors } from '../../src/model/clip/safetensors.js';
import { sha256File } from '../../src/model/clip/weights.js';
import { createMethod } from '../../src/model/methods/index.js';
import type { ZeroShotMethod } from '../../src/model/methods/method.js';
import { tf } from '../../src/model/tf.js';
import type { Tensor2D, Tensor3D } from '../../src/model/tf.js';
import { buildClip, buildMethod, contextOf, DIR, type Fixture, fixtureMissing, loadFixture, tensorOf } from './methods/vcp-clip/fixture.js';

const missing = fixtureMissing();
const fx: Fixture | null = missing ? null : await loadFixture();
const work = mkdtempSync(join(tmpdir(), 'vcp-ckpt-'));
after(() => rmSync(work, { recursive: true, force: true }));

function forwardMap(method: ZeroShotMethod): Float32Array {
  return tf.tidy(() => {
    const batch = {
      patchTokens: fx!.meta.layers.map((_, i) => tensorOf(fx!.inputs.get(`patch_tokens.${i}`)!) as Tensor3D),
      global: tensorOf(fx!.inputs.get('global')!) as Tensor2D,
    };
    return method.forward(batch, { training: false }).anomalyMap!;
  }).dataSync() as Float32Array;
}

function python(): string | null {
  const candidates = [process.env.VCP_EXP_PYTHON, '/work/venv-golden/bin/python'].filter((p): p is string => !!p && existsSync(p));
  for (const p of candidates) if (spawnSync(p, ['-c', 'import torch, safetensors'], { stdio: 'ignore' }).status === 0) return p;
  return null;
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

    assert.throws(() => applyCheckpoint(fresh, ckpt, 'f'.repeat(64)), (e: Error) => e.message.includes('clip.sha256') && e.message.includes(hash) && e.message.includes('f'.repeat(64)));
    const other = buildMethod(fx!, clip, { heads: 2 }, { load: false });
    assert.throws(() => applyCheckpoint(other, ckpt, hash), /config\.heads: the checkpoint has \d+, the model config has 2/);
    const evalOnly = buildMethod(fx!, clip, { alpha: 0.3, sigma: 1 }, { load: false });
    applyCheckpoint(evalOnly, ckpt, hash); // evaluation-only fields may differ
    await assert.rejects(loadCheckpoint(join(work, 'nothing')), /not a vcp-exp checkpoint \(missing config\.json\)/);
    for (const m of [trained, fresh, other, evalOnly]) m.dispose();
  });

  test('public .pth → converter → same forward as the values set directly', async (t) => {
    const py = python();
    if (!py) {
      // CI installs no torch (.ci/run); the converter is the only torch user.
      t.skip('torch is unavailable (set VCP_EXP_PYTHON to a Python with torch and safetensors)');
      return;
    }
    const { text, vision, projectionDim } = clip.config;
    const pth = join(work, 'public.pth');
    const reference = join(work, 'reference.safetensors');
    const make = spawnSync(py, ['python/convert/make_test_pth.py', pth, reference, '--r', '2', '--n', '1', '--width', `${text.width}`, '--vision', `${vision.width}`, '--embed', `${projectionDim}`, '--text-layers', `${text.layers}`, '--layers', '2'], { encoding: 'utf8' });
    assert.equal(make.status, 0, make.stderr);
    const out = join(work, 'converted');
    const conv = spawnSync(py, ['python/convert/vcp_clip_pth.py', pth, out, '--clip-dir', join(DIR, 'tiny-clip'), '--layers', '1', '2', '--image-size', '24', '--backbone', 'tiny'], { encoding: 'utf8' });
    assert.equal(conv.status, 0, conv.stderr);

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
    for (const [ours, theirs] of [['q', 'q_proj_pre'], ['k', 'k_proj_pre_1'], ['v', 'v_proj_pre_1'], ['o', 'proj_post_t']]) {
      set(`post_vcp.${ours}_proj.weight`, raw(`Zero_try.${theirs}.weight`));
      set(`post_vcp.${ours}_proj.bias`, raw(`Zero_try.${theirs}.bias`));
    }
    for (const i of [0, 1]) {
      set(`maps.base.linear.${i}.weight`, raw(`trainable_linearlayer.fc.${i}.weight`));
      set(`maps.base.linear.${i}.bias`, raw(`trainable_linearlayer.fc.${i}.bias`));
    }
    set('dtp.prompts', tf.concat([raw('prompt_embeddings'), raw('deep_prompt_embeddings')], 0));
    for (const k of ['prompt_proj.weight', 'prompt_proj.bias', 'prompt_norm.weight', 'prompt_norm.bias']) set(`dtp.${k}`, raw(k));

    assert.equal(ckpt.config.config.activation, 'gelu');
    assert.deepEqual(forwardMap(converted), forwardMap(direct));
    converted.dispose();
    direct.dispose();
  });
});
