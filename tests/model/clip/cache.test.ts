import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { cacheRoot, checkpointCacheDir, resolveWeightsDir } from '../../../src/model/clip/cache.js';
import { resolveEndpoint } from '../../../src/model/clip/pull.js';

test('cache root: $VCP_EXP_CACHE, then $XDG_CACHE_HOME/vcp-exp, then ~/.cache/vcp-exp', () => {
  assert.equal(cacheRoot({ VCP_EXP_CACHE: '/a', XDG_CACHE_HOME: '/b' }), '/a');
  assert.equal(cacheRoot({ XDG_CACHE_HOME: '/b' }), '/b/vcp-exp');
  assert.equal(cacheRoot({}), join(homedir(), '.cache', 'vcp-exp'));
});

test('checkpoint directories: models/<id>/<revision>, refusing ids that escape the cache', () => {
  assert.equal(
    checkpointCacheDir('openai/clip-vit-base-patch16', 'main', '/c'),
    '/c/models/openai/clip-vit-base-patch16/main',
  );
  assert.equal(checkpointCacheDir('org/m', 'refs/pr/3', '/c'), '/c/models/org/m/refs--pr--3');
  for (const id of ['../x', 'a/b/c', '/abs', 'a/..', ''])
    assert.throws(() => checkpointCacheDir(id, 'main', '/c'), /is not a Hugging Face model id/, id);
  assert.throws(
    () => checkpointCacheDir('a/b', '../main', '/c'),
    /revision "..\/main" is not valid/,
  );
});

test('weights references: a directory, or a pulled hub id; otherwise how to pull it', async () => {
  const root = await mkdtemp(join(tmpdir(), 'vcp-cache-'));
  try {
    assert.equal(resolveWeightsDir(root), resolve(root));
    await assert.throws(
      () => resolveWeightsDir('org/model', { root }),
      /weights "org\/model" \(main\) are not downloaded/,
    );
    await mkdir(join(root, 'models/org/model/main'), { recursive: true });
    assert.equal(resolveWeightsDir('org/model', { root }), join(root, 'models/org/model/main'));
    assert.throws(
      () => resolveWeightsDir('./no/such/dir/', { root }),
      /no such directory, and not a Hugging Face model id/,
    );
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('endpoint: flag, then $HF_ENDPOINT, then huggingface.co; must be http(s)', () => {
  assert.equal(resolveEndpoint(undefined, {}), 'https://huggingface.co');
  assert.equal(
    resolveEndpoint(undefined, { HF_ENDPOINT: 'https://hf-mirror.example/' }),
    'https://hf-mirror.example',
  );
  assert.equal(
    resolveEndpoint('http://127.0.0.1:8080', { HF_ENDPOINT: 'https://x' }),
    'http://127.0.0.1:8080',
  );
  assert.throws(() => resolveEndpoint('nope', {}), /endpoint "nope" is not a URL/);
  assert.throws(() => resolveEndpoint('ftp://x', {}), /only http and https/);
});
