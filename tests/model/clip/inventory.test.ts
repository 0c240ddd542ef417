// `weights list` and `weights verify`: what is local (our cache and Python's Hugging Face cache)
// and whether it is still what was downloaded; a flipped byte is found in either cache.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { cp, mkdtemp, open, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { listLocalWeights, verifyLocalWeights } from '../../../src/model/clip/inventory.js';
import { hfRepoDir } from '../../../src/model/clip/hf-cache.js';
import { pullClipCheckpoint } from '../../../src/model/clip/pull.js';
import { startHubServer, type HubServer } from './hub-server.js';
import { TINY_FIXTURE } from './helpers.js';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const FIXTURES = join(REPO_ROOT, 'tests/fixtures');
const TINY = TINY_FIXTURE;
const tiny = new Map(
  readdirSync(TINY).map((n): [string, Buffer] => [n, readFileSync(join(TINY, n))]),
);
const torchOnly = new Map([...tiny].filter(([n]) => n !== 'model.safetensors'));
torchOnly.set('pytorch_model.bin', readFileSync(join(FIXTURES, 'clip/formats/pytorch_model.bin')));
const openClipDir = join(FIXTURES, 'clip/formats/open_clip');
const openClip = new Map(
  readdirSync(openClipDir).map((n): [string, Buffer] => [n, readFileSync(join(openClipDir, n))]),
);

const tmp = await mkdtemp(join(tmpdir(), 'vcp-inventory-'));
const root = join(tmp, 'ours');
const hfRoot = join(tmp, 'hf');
let server: HubServer;
before(async () => {
  server = await startHubServer(
    new Map([
      ['test-org/torch-only', torchOnly],
      ['test-org/open-clip', openClip],
    ]),
  );
  await cp(join(FIXTURES, 'clip/hf-cache'), hfRoot, { recursive: true, verbatimSymlinks: true });
  const common = { endpoint: server.endpoint, cacheDir: root, hfCacheDir: hfRoot };
  await pullClipCheckpoint({ id: 'test-org/torch-only', hfCache: true, ...common });
  await pullClipCheckpoint({ id: 'test-org/open-clip', ...common });
});
after(async () => {
  await server.close();
  await rm(tmp, { recursive: true, force: true });
});

/** Flips one bit `at` bytes from the start (or from the end when negative): same size, new content. */
async function flipByte(file: string, at: number): Promise<void> {
  const handle = await open(await realpath(file), 'r+');
  if (at < 0) at += (await handle.stat()).size;
  const byte = Buffer.alloc(1);
  await handle.read(byte, 0, 1, at);
  byte[0] ^= 0x01;
  await handle.write(byte, 0, 1, at);
  await handle.close();
}

test('list: our converted checkpoints and the CLIP repositories of the Hugging Face cache, with format, size, sha256', async () => {
  const entries = await listLocalWeights({ root, hfRoot });
  const summary = entries.map((e) => `${e.id} ${e.revision} ${e.format} ${e.where}`);
  assert.deepEqual(summary, [
    'test-org/open-clip main open_clip vcp-exp',
    'test-org/tiny-clip main safetensors hf-cache',
    'test-org/torch-only main pytorch_model.bin (convert) hf-cache',
    'test-org/torch-only main pytorch_model.bin vcp-exp',
  ]);
  for (const e of entries) assert.match(e.sha256 ?? '', /^[0-9a-f]{64}$/, e.id);
  const hfTiny = entries.find((e) => e.where === 'hf-cache' && e.id === 'test-org/tiny-clip')!;
  assert.equal(hfTiny.size, tiny.get('model.safetensors')!.length);
});

test('verify: every file re-hashed; a flipped byte is found in our cache (manifest) and in the hub cache (blob names)', async () => {
  const ok = await verifyLocalWeights('test-org/open-clip', 'main', { root, hfRoot });
  assert.deepEqual(ok.problems, []);
  assert.ok(ok.checks.length >= 3 && ok.checks.every((c) => c.ok && c.against === 'manifest'));
  await flipByte(join(ok.dir, 'model.safetensors'), -60);
  const bad = await verifyLocalWeights('test-org/open-clip', 'main', { root, hfRoot });
  assert.deepEqual(
    bad.checks.filter((c) => !c.ok).map((c) => c.file),
    ['model.safetensors'],
  );

  const hf = await verifyLocalWeights('test-org/tiny-clip', 'main', { root, hfRoot });
  assert.equal(hf.where, 'hf-cache');
  assert.deepEqual(hf.problems, []);
  assert.deepEqual(
    hf.checks.map((c) => `${c.file} ${c.against} ${c.ok}`),
    [
      'config.json blob name (git sha1) true',
      'merges.txt blob name (git sha1) true',
      'model.safetensors blob name (sha256) true',
      'special_tokens_map.json blob name (git sha1) true',
      'tokenizer.json blob name (git sha1) true',
      'tokenizer_config.json blob name (git sha1) true',
      'vocab.json blob name (git sha1) true',
    ],
  );
  const snapshot = join(
    hfRepoDir(hfRoot, 'test-org/tiny-clip'),
    'snapshots',
    'fedcba9876543210fedcba9876543210fedcba98',
  );
  await flipByte(join(snapshot, 'model.safetensors'), 6000);
  await flipByte(join(snapshot, 'config.json'), 10);
  const damaged = await verifyLocalWeights('test-org/tiny-clip', 'main', { root, hfRoot });
  assert.deepEqual(
    damaged.checks.filter((c) => !c.ok).map((c) => c.file),
    ['config.json', 'model.safetensors'],
  );
  await flipByte(join(snapshot, 'model.safetensors'), 6000);
  await flipByte(join(snapshot, 'config.json'), 10);
});

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [join(REPO_ROOT, 'bin/vcp-exp.js'), ...args, '--cache-dir', root],
      {
        cwd: REPO_ROOT,
        env: { ...process.env, HF_HUB_CACHE: hfRoot },
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('vcp-exp weights list / verify: a table, exit 0 when intact, exit 1 naming the file and what to do', async () => {
  const list = await cli(['weights', 'list']);
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, /^ID\s+REVISION\s+FORMAT\s+WHERE\s+SIZE\s+SHA256/);
  assert.match(
    list.stdout,
    /test-org\/torch-only\s+main\s+pytorch_model\.bin\s+vcp-exp\s+[\d.]+ kB\s+[0-9a-f]{64}/,
  );
  assert.match(list.stdout, /"\(convert\)" entries are used after one offline conversion/);
  const good = await cli(['weights', 'verify', 'test-org/torch-only']);
  assert.equal(good.code, 0, good.stderr);
  assert.match(good.stdout, /ok {3}model\.safetensors: sha256 [0-9a-f]{64} \(manifest\)/);
  assert.match(good.stdout, /test-org\/torch-only \(main\): \d+ files verified, checkpoint valid/);
  // A byte flipped in the converted weights (same size): found, exit 1, a hint.
  await flipByte(join(root, 'models/test-org/torch-only/main/model.safetensors'), -50);
  const bad = await cli(['weights', 'verify', 'test-org/torch-only']);
  assert.equal(bad.code, 1);
  assert.match(
    bad.stdout,
    /BAD {2}model\.safetensors: sha256 [0-9a-f]{64}, expected [0-9a-f]{64} \(manifest\)/,
  );
  assert.match(
    bad.stderr,
    /weights verify test-org\/torch-only \(main\): 1 problem in .*: model\.safetensors does not match its manifest/,
  );
  assert.match(
    bad.stderr,
    /hint: delete .*models\/test-org\/torch-only\/main and run: vcp-exp weights pull test-org\/torch-only/,
  );
});
