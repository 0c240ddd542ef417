// Python's Hugging Face cache: read as huggingface_hub wrote it (tests/fixtures/clip/hf-cache,
// made by hf_hub_download in python/golden/make_hf_cache_fixture.py), used offline, and written
// by `weights pull --hf-cache` exactly as hf_hub_download lays it out.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, lstatSync } from 'node:fs';
import { cp, mkdtemp, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, beforeEach, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { getHFHubCachePath, getRepoFolderName } from '@huggingface/hub';
import type { UserError } from '../../../src/errors.js';
import { resolveWeightsDir } from '../../../src/model/clip/cache.js';
import { hfHubCacheRoot, hfRepoDir } from '../../../src/model/clip/hf-cache.js';
import { pullClipCheckpoint, type PullOptions } from '../../../src/model/clip/pull.js';
import { hashSidecar, loadClipCheckpoint } from '../../../src/model/clip/weights.js';
import { hubPython, need } from '../../requirements.js';
import { startHubServer, type HubRepo, type HubServer } from './hub-server.js';
import { TINY_FIXTURE } from './helpers.js';

const FIXTURES = fileURLToPath(new URL('../../fixtures/', import.meta.url));
const HF_FIXTURE = join(FIXTURES, 'clip/hf-cache');
const TINY = TINY_FIXTURE;
const FIXTURE_COMMIT = 'fedcba9876543210fedcba9876543210fedcba98';
const ID = 'test-org/tiny-clip';
const tmp = await mkdtemp(join(tmpdir(), 'vcp-hfcache-'));
let counter = 0;
const fresh = (name: string) => join(tmp, `${name}-${counter++}`);

const tinyFiles = new Map(
  readdirSync(TINY).map((name): [string, Buffer] => [name, readFileSync(join(TINY, name))]),
);
const torchOnly = new Map([...tinyFiles].filter(([name]) => name !== 'model.safetensors'));
torchOnly.set('pytorch_model.bin', readFileSync(join(FIXTURES, 'clip/formats/pytorch_model.bin')));
let server: HubServer;
before(async () => {
  server = await startHubServer(
    new Map<string, Map<string, Buffer> | HubRepo>([
      [
        ID,
        { revisions: new Map([['main', tinyFiles]]), commits: new Map([['main', FIXTURE_COMMIT]]) },
      ],
      ['test-org/torch-only', torchOnly],
    ]),
  );
});
after(async () => {
  await server.close();
  await rm(tmp, { recursive: true, force: true });
});
beforeEach(() => server.reset());

/** The fixture copied with its relative symlinks intact. */
async function copyFixture(): Promise<string> {
  const root = fresh('hf');
  await cp(HF_FIXTURE, root, { recursive: true, verbatimSymlinks: true });
  return root;
}

function pull(extra: Partial<PullOptions>) {
  return pullClipCheckpoint({
    id: ID,
    endpoint: server.endpoint,
    cacheDir: fresh('ours'),
    retryDelayMs: 5,
    ...extra,
  });
}

/** Every path under `root` → 'file <bytes hex prefix+size>' | 'link <target>' | 'dir'. */
function tree(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      const rel = relative(root, path);
      const info = lstatSync(path);
      if (info.isSymbolicLink()) out.set(rel, `link ${readlinkSync(path)}`);
      else if (info.isDirectory()) {
        out.set(rel, 'dir');
        walk(path);
      } else out.set(rel, `file ${readFileSync(path).toString('base64')}`);
    }
  };
  walk(root);
  return out;
}

test('the cache root and repository folder follow the same rules as @huggingface/hub (and Python)', () => {
  const saved = { ...process.env };
  const cases: Record<string, string | undefined>[] = [
    {},
    { XDG_CACHE_HOME: '/x' },
    { HF_HOME: '/h', XDG_CACHE_HOME: '/x' },
    { HUGGINGFACE_HUB_CACHE: '/legacy', HF_HOME: '/h' },
    { HF_HUB_CACHE: '/c', HUGGINGFACE_HUB_CACHE: '/legacy', HF_HOME: '/h' },
  ];
  try {
    for (const env of cases) {
      for (const key of ['HF_HUB_CACHE', 'HUGGINGFACE_HUB_CACHE', 'HF_HOME', 'XDG_CACHE_HOME'])
        delete process.env[key];
      Object.assign(process.env, env);
      assert.equal(hfHubCacheRoot(), getHFHubCachePath(), JSON.stringify(env));
    }
  } finally {
    process.env = saved;
  }
  for (const id of [
    'openai/clip-vit-large-patch14-336',
    'timm/vit_large_patch14_clip_336.openai',
    'gpt2',
  ])
    assert.equal(hfRepoDir('/r', id), join('/r', getRepoFolderName({ name: id, type: 'model' })));
});

test('a checkpoint huggingface_hub downloaded is used where it lies: resolved, loaded, nothing written into the cache', async () => {
  const hfRoot = await copyFixture();
  const before = tree(hfRoot);
  const ours = fresh('ours');
  const previous = process.env.VCP_EXP_CACHE;
  process.env.VCP_EXP_CACHE = ours;
  try {
    const dir = resolveWeightsDir(ID, { root: ours, hfRoot });
    assert.equal(dir, join(hfRepoDir(hfRoot, ID), 'snapshots', FIXTURE_COMMIT));
    const checkpoint = await loadClipCheckpoint(dir);
    assert.equal(checkpoint.tensors.size, (await loadClipCheckpoint(TINY)).tensors.size);
    // The weights hash (the feature cache's key) is remembered in our cache, not in Python's.
    const sidecar = hashSidecar(join(dir, 'model.safetensors'));
    assert.ok(sidecar.startsWith(ours), sidecar);
    assert.ok(existsSync(sidecar));
    assert.deepEqual(tree(hfRoot), before);
  } finally {
    if (previous === undefined) delete process.env.VCP_EXP_CACHE;
    else process.env.VCP_EXP_CACHE = previous;
  }
});

test('weights pull finds it in the Hugging Face cache first: no request at all, files linked from the snapshot', async () => {
  const hfRoot = await copyFixture();
  const result = await pull({ hfCacheDir: hfRoot });
  assert.deepEqual(server.requests, []);
  assert.equal(result.format, 'safetensors');
  assert.equal(result.commit, FIXTURE_COMMIT);
  assert.equal(result.manifest.source.from, 'hf-cache');
  assert.match(result.origin, /from the Hugging Face cache/);
  const snapshot = join(hfRepoDir(hfRoot, ID), 'snapshots', FIXTURE_COMMIT);
  for (const name of ['config.json', 'model.safetensors', 'tokenizer.json'])
    assert.equal(await readlink(join(result.dir, name)), join(snapshot, name));
  assert.ok(
    result.files.every((f) => f.status === 'hf-cache'),
    JSON.stringify(result.files),
  );
});

test('--hf-cache writes the layout hf_hub_download writes (blobs by etag, relative snapshot links, refs/main)', async () => {
  const hfRoot = fresh('hf-written');
  const result = await pull({ hfCacheDir: hfRoot, hfCache: true });
  assert.equal(result.commit, FIXTURE_COMMIT);
  const ours = tree(join(hfRoot, 'models--test-org--tiny-clip'));
  const python = tree(join(HF_FIXTURE, 'models--test-org--tiny-clip'));
  assert.deepEqual([...ours.keys()].sort(), [...python.keys()].sort());
  for (const [path, what] of python) assert.equal(ours.get(path), what, path);
  // Our directory links into it.
  assert.equal(
    await readlink(join(result.dir, 'model.safetensors')),
    join(hfRepoDir(hfRoot, ID), 'snapshots', FIXTURE_COMMIT, 'model.safetensors'),
  );
});

test('Python finds what --hf-cache wrote', async (t) => {
  const python = need(t, 'hub-python', hubPython());
  if (!python) return;
  const hfRoot = fresh('hf-for-python');
  await pull({ hfCacheDir: hfRoot, hfCache: true });
  const run = spawnSync(
    python,
    [
      '-c',
      'import sys; from huggingface_hub import try_to_load_from_cache as f; print(f(sys.argv[1], "model.safetensors", cache_dir=sys.argv[2]))',
      ID,
      hfRoot,
    ],
    { encoding: 'utf8' },
  );
  assert.equal(run.status, 0, run.stderr);
  assert.equal(
    run.stdout.trim(),
    join(hfRepoDir(hfRoot, ID), 'snapshots', FIXTURE_COMMIT, 'model.safetensors'),
  );
});

test('pytorch_model.bin kept in the Hugging Face cache converts offline; resolving it unconverted says how', async () => {
  const hfRoot = fresh('hf-torch');
  const first = await pull({ id: 'test-org/torch-only', hfCacheDir: hfRoot, hfCache: true });
  assert.equal(first.format, 'pytorch_model.bin');
  const cached = join(hfRepoDir(hfRoot, 'test-org/torch-only'), 'snapshots');
  assert.ok(
    existsSync(join(cached, readdirSync(cached)[0], 'pytorch_model.bin')),
    'the bin stays in the HF cache',
  );
  server.requests.length = 0;
  const ours = fresh('ours-offline');
  assert.throws(
    () => resolveWeightsDir('test-org/torch-only', { root: ours, hfRoot }),
    (e: UserError) =>
      /are in the Hugging Face cache \(.*\) but not as a Hugging Face CLIP checkpoint/.test(
        e.message,
      ) && e.hint === 'convert them once, offline: vcp-exp weights pull test-org/torch-only',
  );
  const offline = await pull({
    id: 'test-org/torch-only',
    hfCacheDir: hfRoot,
    cacheDir: ours,
    offline: true,
  });
  assert.deepEqual(server.requests, []);
  assert.equal(offline.format, 'pytorch_model.bin');
  assert.equal(offline.manifest.source.from, 'hf-cache');
  assert.equal(
    offline.manifest.files['model.safetensors'].sha256,
    first.manifest.files['model.safetensors'].sha256,
  );
  assert.equal(resolveWeightsDir('test-org/torch-only', { root: ours, hfRoot }), offline.dir);
});

test('offline with nothing local: an error naming both caches and what to do', async () => {
  await assert.rejects(
    pull({ hfCacheDir: fresh('empty'), offline: true }),
    /test-org\/tiny-clip \(main\) is not available offline: not in .* nor in the Hugging Face cache .*models--test-org--tiny-clip/,
  );
});
