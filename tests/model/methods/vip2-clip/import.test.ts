/**
 * `vcp-exp import vip2-clip` on checkpoints the authors' own train.py wrote
 * (tests/fixtures/vip2-clip/epoch_5.pth, python/golden/make_vip2_golden.py): exact tensors, the
 * config the file implies (the state-word quirk read from its buffers), and test()'s maps and
 * scores from the imported checkpoint; refusals name what is wrong.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { gaussianFilter } from '../../../../src/eval/smoothing.js';
import { readSafetensors } from '../../../../src/io/safetensors.js';
import { initBackend } from '../../../../src/model/backend.js';
import { applyCheckpoint, loadCheckpoint } from '../../../../src/model/checkpoint.js';
import { disposeFeatures, FeatureExtractor } from '../../../../src/model/features.js';
import { loadMethod } from '../../../../src/model/load.js';
import type { Vip2ClipMethod } from '../../../../src/model/methods/vip2-clip/model.js';
import { importVip2Clip } from '../../../../src/model/methods/vip2-clip/import.js';
import { tf } from '../../../../src/model/tf.js';
import { DIR, fixtureMissing, loadFixture, maxAbsDiff, type Fixture } from './fixture.js';

const missing = fixtureMissing();
const fx: Fixture | null = missing ? null : await loadFixture();
const CLIP_DIR = `${DIR}/tiny-clip`;
const tmp = mkdtempSync(join(tmpdir(), 'vip2-import-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
before(async () => {
  await initBackend('tensorflow');
});

const options = (pth: string, out: string) => ({
  pth: `${DIR}/${pth}`,
  clip: CLIP_DIR,
  layers: [1, 2],
  imageSize: 24,
  out: join(tmp, out),
});

test(
  'train()’s own checkpoint: every tensor exactly, the config it implies',
  { skip: missing ?? false },
  async () => {
    const result = await importVip2Clip(options('epoch_5.pth', 'epoch5'));
    assert.deepEqual(result.warnings, []);
    const written = (await readSafetensors(join(result.dir, 'model.safetensors'))).tensors;
    const expected = (await readSafetensors(`${DIR}/import-expected.safetensors`)).tensors;
    assert.deepEqual([...written.keys()].sort(), [...expected.keys()].sort());
    for (const [name, t] of expected) {
      assert.deepEqual(written.get(name)!.shape, t.shape, name);
      assert.deepEqual(written.get(name)!.data, t.data, name);
    }
    const c = result.config.config;
    assert.deepEqual(
      [c.n_ctx, c.n_cls, c.meta_net_bias, c.normal_state_word, c.layers, c.image_size],
      [7, 3, true, 'damaged', [1, 2], 24],
    );
    assert.equal(result.config.method, 'vip2-clip');
    assert.equal(
      (result.config.info as Record<string, unknown>).public_code,
      'github.com/kim0806/ViP2-CLIP',
    );
  },
);

test(
  'the imported checkpoint reproduces the authors’ test(): smoothed maps and top-K scores',
  { skip: missing ?? false },
  async () => {
    const dir = join(tmp, 'epoch5');
    const checkpoint = await loadCheckpoint(dir);
    // test() ran with K = 5 and σ = 2 (golden.json); evaluation settings, not part of the training.
    const { backbone, method } = await loadMethod('vip2-clip', {
      ...checkpoint.config.config,
      topk: 5,
      sigma: 2,
    });
    try {
      applyCheckpoint(method, checkpoint, backbone.sha256);
      const pixels = fx!.golden.get('input.pixels')!;
      const [b, , s] = pixels.shape;
      const order = fx!.meta.test_order;
      const extractor = new FeatureExtractor({
        clip: backbone.clip,
        weightsHash: backbone.sha256,
        request: method.features,
      });
      const features = await extractor.extract(
        order.map((i) => ({
          pixels: pixels.data.slice(i * 3 * s * s, (i + 1) * 3 * s * s) as Float32Array,
          cacheable: false,
        })),
      );
      const out = tf.tidy(() => {
        const o = (method as Vip2ClipMethod).forward(features, { training: false });
        return { map: o.anomalyMap!, score: o.score! };
      });
      const maps = out.map.dataSync() as Float32Array;
      const smoothed = new Float32Array(b * s * s);
      for (let i = 0; i < b; i++)
        smoothed.set(
          gaussianFilter(
            maps.slice(i * s * s, (i + 1) * s * s),
            s,
            s,
            method.postprocess.smoothingSigma,
          ),
          i * s * s,
        );
      const mapErr = maxAbsDiff(
        tf.tensor3d(smoothed, [b, s, s]),
        fx!.golden.get('test_epoch.anomaly_map')!,
      );
      const scoreErr = maxAbsDiff(out.score, fx!.golden.get('test_epoch.score')!);
      assert.ok(mapErr <= 1e-4 && scoreErr <= 1e-4, `map |Δ| ${mapErr}, score |Δ| ${scoreErr}`);
      tf.dispose([out.map, out.score]);
      disposeFeatures(features);
    } finally {
      method.dispose();
      backbone.clip.dispose();
    }
  },
);

test(
  'a checkpoint that froze "good" in the normal prompt imports as normal_state_word: good',
  { skip: missing ?? false },
  async () => {
    const result = await importVip2Clip(options('import-good.pth', 'good'));
    assert.equal(result.config.config.normal_state_word, 'good');
  },
);

test('refusals name the problem', { skip: missing ?? false }, async () => {
  await assert.rejects(importVip2Clip(options('import-missing.pth', 'x')), (e: Error) => {
    assert.match(e.message, /"prompt_learner\.ctx_neg" \(missing\)/);
    assert.match(e.message, /"Zero_try\.q_proj_pre\.weight" \(missing\)/);
    return true;
  });
  await assert.rejects(
    importVip2Clip({ ...options('epoch_5.pth', 'y'), pth: 'tests/fixtures/torch-zip/legacy.pth' }),
    /legacy torch\.save format/,
  );
  await assert.rejects(
    importVip2Clip({ ...options('epoch_5.pth', 'z'), clip: 'assets/clip/tiny-clip' }),
    /trained for text width 64 and joint width 32, but .* has 32 and 24/,
  );
  mkdirSync(join(tmp, 'occupied'));
  await assert.rejects(
    importVip2Clip(options('epoch_5.pth', 'occupied')),
    /exists and is not a vcp-exp checkpoint/,
  );
});

test(
  'the CLI: exit 0 and a summary line; a bad file exits non-zero with one message, no traceback',
  { skip: missing ?? false },
  () => {
    const run = (...args: string[]) =>
      spawnSync(process.execPath, ['bin/vcp-exp.js', 'import', ...args], { encoding: 'utf8' });
    const ok = run(
      'vip2-clip',
      `${DIR}/epoch_5.pth`,
      '--clip',
      CLIP_DIR,
      '--out',
      join(tmp, 'cli'),
      '--layers',
      '1,2',
      '--image-size',
      '24',
    );
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /24 tensors; vip2-clip on .*layers 1,2, image size 24/);
    const bad = run(
      'vip2-clip',
      `${DIR}/import-missing.pth`,
      '--clip',
      CLIP_DIR,
      '--out',
      join(tmp, 'cli2'),
    );
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /not a ViP²-CLIP checkpoint of the public train\.py/);
    assert.doesNotMatch(bad.stderr, /\n\s+at /);
    const unknown = run('nope', 'x.pth');
    assert.match(unknown.stderr, /got method "nope", expected one of vcp-clip, vip2-clip/);
  },
);
