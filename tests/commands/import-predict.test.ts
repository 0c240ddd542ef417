/**
 * `vcp-exp import vcp-clip` on a .pth written by the authors' own modules with the key layout
 * their train.py saves (python/golden/make_vcp_public_golden.py), then `vcp-exp predict --dump`
 * on an image that needs resizing (image 37×29 → 24 px, positional grid 4 → 6): every dumped
 * tensor within 1e-4 of what the public forward gives. The importer's errors (no traceback,
 * non-zero exit) and warning; predict's maps and scores independent of the other images given.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readImageRgb, writePngRgb } from '../../src/datasets/image-io.js';
import { readNpy } from '../../src/io/npy.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import {
  PUBLIC_DIR,
  publicFixtureMissing,
  type PublicMeta,
} from '../model/methods/vcp-clip/public-fixture.js';
import { isolatedCache } from '../isolated-cache.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(REPO, 'bin/vcp-exp.js');
const CLIP = join(REPO, PUBLIC_DIR, 'tiny-clip');
const PTH = join(REPO, PUBLIC_DIR, 'public.pth');
const work = mkdtempSync(join(tmpdir(), 'vcp-import-'));
after(() => rmSync(work, { recursive: true, force: true }));
const missing = publicFixtureMissing();
const meta = missing
  ? null
  : (JSON.parse(readFileSync(join(PUBLIC_DIR, 'golden.json'), 'utf8')) as PublicMeta);

function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    cwd: work,
    env: { ...process.env, VCP_EXP_CACHE: isolatedCache(join(work, 'cache')) },
    encoding: 'utf8',
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A user error: non-zero exit, the message on stderr, no stack trace. */
function fails(result: ReturnType<typeof cli>, pattern: RegExp): void {
  assert.notEqual(result.status, 0, `expected a failure, got: ${result.stdout}`);
  assert.match(result.stderr, pattern);
  assert.doesNotMatch(result.stderr, /\n\s+at .+:\d+:\d+/, `a stack trace: ${result.stderr}`);
}

const importArgs = (pth: string, out: string, ...extra: string[]) => [
  'import',
  'vcp-clip',
  pth,
  '--clip',
  CLIP,
  '--layers',
  '1,2',
  '--image-size',
  String(meta!.predict.image_size),
  '--out',
  out,
  ...extra,
];

describe('import vcp-clip → predict', { skip: missing ?? false }, () => {
  const checkpoint = join(work, 'imported');
  before(() => {
    const r = cli(...importArgs(PTH, checkpoint));
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.stdout,
      /22 tensors; vcp-clip on .*layers 1,2, image size 24, n_ctx 2, deep prompts 1/,
    );
  });

  for (const backend of ['tensorflow', 'wasm']) {
    test(`predict --dump on ${backend}: every tensor within 1e-4 of the public forward`, async () => {
      const dump = join(work, `dump-${backend}`);
      const { alpha, sigma, image } = meta!.predict;
      const r = cli(
        '--backend',
        backend,
        'predict',
        '--checkpoint',
        checkpoint,
        '--out',
        join(work, `out-${backend}`),
        '--dump',
        dump,
        '--alpha',
        String(alpha),
        '--sigma',
        String(sigma),
        join(REPO, PUBLIC_DIR, image),
      );
      assert.equal(r.status, 0, r.stderr);
      const { tensors: expected } = await readSafetensors(join(PUBLIC_DIR, meta!.predict.expected));
      const errors: Record<string, number> = {};
      for (const [name, e] of expected) {
        const file = join(dump, 'image', `${name}.npy`);
        assert.ok(existsSync(file), `predict --dump wrote no ${name}.npy`);
        const actual = await readNpy(file);
        assert.equal(actual.data.length, e.data.length, name);
        let err = 0;
        for (let i = 0; i < e.data.length; i++)
          err = Math.max(err, Math.abs(actual.data[i] - e.data[i]));
        errors[name] = err;
      }
      const bad = Object.entries(errors).filter(([, err]) => !(err <= 1e-4));
      assert.deepEqual(bad, [], JSON.stringify(errors));
      const score = Number(/score (\S+)/.exec(r.stdout)?.[1]);
      assert.ok(Math.abs(score - expected.get('score')!.data[0]) <= 1e-4, r.stdout);
      const overlay = await readImageRgb(join(work, `out-${backend}`, 'image_overlay.png'));
      assert.deepEqual([overlay.width, overlay.height], [37, 29]); // the input's own size
    });
  }

  test("an image's map and score do not depend on the other images given", async () => {
    const a = join(REPO, PUBLIC_DIR, meta!.predict.image);
    const source = await readImageRgb(a);
    const others = [join(work, 'b.png'), join(work, 'c.png')];
    await writePngRgb(others[0], { ...source, data: source.data.map((v) => 255 - v) });
    await writePngRgb(others[1], {
      width: 50,
      height: 20,
      data: Uint8Array.from({ length: 50 * 20 * 3 }, (_, i) => (i * 37) % 256),
    });
    const run = (out: string, ...images: string[]) => {
      const r = cli('predict', '--checkpoint', checkpoint, '--out', join(work, out), ...images);
      assert.equal(r.status, 0, r.stderr);
      return r.stdout.trim().split('\n');
    };
    const alone = run('alone', a);
    const together = run('together', a, ...others);
    assert.equal(together.length, 3);
    assert.equal(alone[0], together[0]);
    const mapAlone = await readNpy(join(work, 'alone', 'image_map.npy'));
    const mapTogether = await readNpy(join(work, 'together', 'image_map.npy'));
    assert.deepEqual(mapAlone.data, mapTogether.data);
    // --normalize set: min–max over the given images (the evaluation's per-product rule).
    const set = cli(
      'predict',
      '--checkpoint',
      checkpoint,
      '--normalize',
      'set',
      '--out',
      join(work, 'set'),
      a,
      ...others,
    );
    assert.equal(set.status, 0, set.stderr);
    const scores = set.stdout
      .trim()
      .split('\n')
      .map((l) => Number(/score (\S+)/.exec(l)![1]));
    assert.equal(Math.min(...scores), 0);
    assert.equal(Math.max(...scores), 1);
  });

  test('a .pth without deep prompts imports with dtp false and a warning', () => {
    const r = cli(
      ...importArgs(join(REPO, PUBLIC_DIR, 'public-shallow.pth'), join(work, 'shallow')),
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /warning: .*public-shallow\.pth: no deep_prompt_embeddings.*dtp: false/);
    assert.match(r.stdout, /deep prompts none/);
  });
});

describe(
  'import vcp-clip refuses bad input with a message, no traceback',
  { skip: missing ?? false },
  () => {
    const out = () => join(work, `bad-${Math.random().toString(36).slice(2)}`);
    test('a missing file', () =>
      fails(cli(...importArgs(join(work, 'nope.pth'), out())), /nope\.pth: no such file/));
    test('a file that is not a .pth', () =>
      fails(
        cli(...importArgs(join(REPO, PUBLIC_DIR, 'predict/image.png'), out())),
        /image\.png: not a PyTorch checkpoint: neither torch\.save's zip format nor its legacy pickle/,
      ));
    test('a zip that is not a torch checkpoint', () =>
      fails(
        cli(...importArgs(join(REPO, PUBLIC_DIR, 'not-torch.zip'), out())),
        /not-torch\.zip: not a torch\.save archive \(expected one <archive>\/data\.pkl, found 0\)/,
      ));
    test('a legacy pickle .pth, with how to convert it', () => {
      const r = cli(...importArgs(join(REPO, PUBLIC_DIR, 'legacy.pth'), out()));
      fails(r, /legacy\.pth: the legacy torch\.save format \(before torch 1\.6\) is not read/);
      assert.match(
        r.stderr,
        /hint: load and re-save it with a current torch \(torch\.save\(torch\.load\(f, weights_only=True\), g\)\)/,
      );
    });
    test('missing keys, named', () =>
      fails(
        cli(...importArgs(join(REPO, PUBLIC_DIR, 'missing-keys.pth'), out())),
        /missing-keys\.pth: not a VCP-CLIP checkpoint of the public train\.py: keys "trainable_linearlayer" \(missing\), "Zero_try" \(missing\), "prompt_embeddings" \(missing\)/,
      ));
    test('layers checked against the checkpoint and the CLIP', () => {
      fails(
        cli(...importArgs(PTH, out()).map((a) => (a === '1,2' ? '1,2,3' : a))),
        /--layers: got 1,2,3, expected 2 distinct 1-based vision blocks in 1\.\.2/,
      );
      fails(
        cli(...importArgs(PTH, out()).map((a) => (a === '1,2' ? '1,7' : a))),
        /--layers: got 1,7, expected 2 distinct/,
      );
      fails(
        cli(
          ...importArgs(PTH, out()).filter(
            (a, i, all) => a !== '--layers' && all[i - 1] !== '--layers',
          ),
        ),
        /has 2 per-layer maps \(trainable_linearlayer\.fc\.0\.\.1\), VCP-CLIP's default layers are 4/,
      );
    });
    test('a CLIP of other widths', () =>
      fails(
        cli(
          ...importArgs(PTH, out()).map((a) =>
            a === CLIP ? join(REPO, 'assets/clip/tiny-clip') : a,
          ),
        ),
        /public\.pth: does not fit the CLIP .*tiny-clip: the text width \(New_Lan_Embed\.prompt_query\) is 64, the CLIP's is 32/,
      ));
  },
);
