import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  statfsSync,
  readFileSync,
  statSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  defaultCacheBudget,
  FeatureCache,
  pinGroups,
  pinnedGroups,
  type CachedTensors,
} from '../../src/model/feature-cache.js';
import { Rng } from '../../src/io/prng.js';

function features(seed: number, tokens = 50, width = 32): CachedTensors {
  const rng = new Rng(seed);
  const dense = new Float32Array(2 * tokens * width).map(() => rng.uniform(-8, 8));
  const global = new Float32Array(width).map(() => rng.normal());
  return new Map([
    ['dense', { shape: [2, tokens, width], data: dense }],
    ['global', { shape: [width], data: global }],
  ]);
}

const dir = (): string => mkdtempSync(join(tmpdir(), 'vcp-cache-'));

test('key: stable, order-independent, sensitive to every part', () => {
  const cache = new FeatureCache({ dir: dir() });
  const parts = {
    weights: 'abc',
    size: 518,
    layers: [6, 12, 18, 24],
    options: 'gelu',
    image: 'f00d',
  };
  const k = cache.key(parts);
  assert.match(k, /^[0-9a-f]{40}$/);
  assert.equal(
    cache.key({
      image: 'f00d',
      options: 'gelu',
      layers: [6, 12, 18, 24],
      size: 518,
      weights: 'abc',
    }),
    k,
  );
  for (const changed of [
    { size: 336 },
    { layers: [6, 12] },
    { options: 'quick_gelu' },
    { image: 'f00e' },
    { weights: 'abd' },
  ]) {
    assert.notEqual(cache.key({ ...parts, ...changed }), k);
  }
});

test('hit/miss counts; getOrCompute computes once, even for concurrent calls', async () => {
  const cache = new FeatureCache({ dir: dir() });
  const key = cache.key({ image: 'a' });
  assert.equal(await cache.get(key), undefined);
  let computed = 0;
  const compute = async (): Promise<CachedTensors> => {
    computed++;
    return features(1);
  };
  const [a, b] = await Promise.all([
    cache.getOrCompute(key, compute),
    cache.getOrCompute(key, compute),
  ]);
  assert.equal(computed, 1);
  assert.equal(a, b);
  const again = await cache.getOrCompute(key, compute);
  assert.equal(computed, 1);
  assert.deepEqual(again.get('dense')!.data, features(1).get('dense')!.data);
  assert.deepEqual(again.get('dense')!.shape, [2, 50, 32]);
  const stats = cache.stats();
  assert.deepEqual([stats.hits, stats.misses, stats.evictions, stats.corrupt], [1, 2, 0, 0]);
  assert.equal(stats.bytes, statSync(join(cache.dir, `${key}.safetensors`)).size);
  // A second process (another instance) sees the entry.
  const other = new FeatureCache({ dir: cache.dir });
  assert.ok(await other.get(key));
  assert.equal(other.stats().bytes, stats.bytes);
});

test('LRU eviction: the least recently used entry goes first', async () => {
  const probe = new FeatureCache({ dir: dir() });
  await probe.put('probe', features(0));
  const entry = probe.stats().bytes;
  const cache = new FeatureCache({ dir: dir(), maxBytes: Math.floor(entry * 2.5) });
  await cache.put('a', features(1));
  await cache.put('b', features(2));
  assert.ok(await cache.get('a')); // a is now more recent than b
  await cache.put('c', features(3));
  assert.deepEqual(
    ['a', 'b', 'c'].map((k) => existsSync(join(cache.dir, `${k}.safetensors`))),
    [true, false, true],
  );
  await cache.put('d', features(4));
  assert.deepEqual(
    ['a', 'c', 'd'].map((k) => existsSync(join(cache.dir, `${k}.safetensors`))),
    [false, true, true],
  );
  const stats = cache.stats();
  assert.equal(stats.evictions, 2);
  assert.ok(stats.bytes <= cache.maxBytes);
  assert.equal(await cache.get('b'), undefined);
});

test('float16 storage: about half the bytes, relative error ≤ 2^-11', async () => {
  const [full, half] = [
    new FeatureCache({ dir: dir() }),
    new FeatureCache({ dir: dir(), dtype: 'float16' }),
  ];
  const original = features(9, 200, 64);
  await full.put('x', original);
  await half.put('x', original);
  const ratio = half.stats().bytes / full.stats().bytes;
  assert.ok(ratio > 0.49 && ratio < 0.53, `size ratio ${ratio}`);
  const back = (await half.get('x'))!;
  let worst = 0;
  for (const [name, { data }] of original) {
    const got = back.get(name)!.data;
    for (let i = 0; i < data.length; i++)
      worst = Math.max(worst, Math.abs(got[i] - data[i]) / Math.max(Math.abs(data[i]), 2 ** -14));
  }
  assert.ok(worst <= 2 ** -11, `worst relative error ${worst}`);
  assert.ok(worst > 0); // it really was rounded
  // getOrCompute hands back the rounded values too, so a miss and a hit agree.
  const computed = await half.getOrCompute('y', () => original);
  assert.deepEqual(computed.get('dense')!.data, back.get('dense')!.data);
});

test('corrupt entries (truncated, garbled) are misses: deleted, counted, recomputed', async () => {
  const cache = new FeatureCache({ dir: dir() });
  const file = (k: string): string => join(cache.dir, `${k}.safetensors`);
  await cache.put('t', features(1));
  await cache.put('g', features(2));
  truncateSync(file('t'), statSync(file('t')).size - 7);
  const bytes = readFileSync(file('g'));
  bytes[bytes.length - 3] ^= 0x55; // same size, one flipped byte in the data
  writeFileSync(file('g'), bytes);
  writeFileSync(file('h'), 'not a safetensors file at all');
  assert.equal(await cache.get('t'), undefined);
  assert.equal(await cache.get('g'), undefined);
  assert.equal(await cache.get('h'), undefined);
  assert.equal(existsSync(file('t')) || existsSync(file('g')) || existsSync(file('h')), false);
  let computed = 0;
  const again = await cache.getOrCompute('t', () => {
    computed++;
    return features(1);
  });
  assert.equal(computed, 1);
  assert.deepEqual(again.get('global')!.data, features(1).get('global')!.data);
  const stats = cache.stats();
  assert.equal(stats.corrupt, 3);
  assert.equal(stats.misses, 4);
});

test('an entry deleted by another process is a plain miss; memory layer serves repeats', async () => {
  const cache = new FeatureCache({ dir: dir(), memoryBytes: 1 << 20 });
  await cache.put('m', features(5));
  assert.ok(await cache.get('m'));
  assert.equal(cache.stats().memoryHits, 1);
  const disk = new FeatureCache({ dir: cache.dir });
  unlinkSync(join(cache.dir, 'm.safetensors'));
  assert.equal(await disk.get('m'), undefined);
  assert.equal(disk.stats().misses, 1);
  await assert.rejects(cache.get('../escape'), /must be/);
});

/** Reads keys 0..n-1 in order, `passes` times, through getOrCompute; returns hits per pass. */
async function cyclicScan(cache: FeatureCache, group: string, n: number, passes: number) {
  const perPass: number[] = [];
  for (let pass = 0; pass < passes; pass++) {
    const before = cache.stats().hits;
    for (let i = 0; i < n; i++)
      await cache.getOrCompute(cache.key({ image: i }, group), () => features(i));
    perPass.push(cache.stats().hits - before);
  }
  return perPass;
}

test('a cyclic scan over more entries than fit: pinned, C of N hit on every later pass; LRU hits none', async () => {
  const probe = new FeatureCache({ dir: dir() });
  await probe.put('probe', features(0));
  const entry = probe.stats().bytes;
  const n = 10;
  const fit = 4;
  // Plain LRU (nothing pinned): each entry is evicted just before the scan comes back to it.
  const lru = new FeatureCache({ dir: dir(), maxBytes: Math.floor(entry * (fit + 0.5)) });
  assert.deepEqual(await cyclicScan(lru, 'g1', n, 3), [0, 0, 0]);
  // The running sweep pins its group: what was admitted stays, the rest is not admitted.
  const pinnedDir = dir();
  const unpin = await pinGroups(pinnedDir, 'sweep-1', ['g1']);
  assert.deepEqual([...(await pinnedGroups(pinnedDir))], ['g1']);
  const cache = new FeatureCache({ dir: pinnedDir, maxBytes: Math.floor(entry * (fit + 0.5)) });
  // The promise: hit rate C/N on every pass after the first.
  assert.deepEqual(await cyclicScan(cache, 'g1', n, 4), [0, fit, fit, fit]);
  const stats = cache.stats();
  assert.equal(stats.evictions, 0);
  assert.equal(stats.rejected, 4 * (n - fit));
  assert.ok(stats.bytes <= cache.maxBytes);
  // Another group's entries are not admitted while g1 fills the budget…
  await cache.getOrCompute(cache.key({ image: 0 }, 'g2'), () => features(0));
  assert.equal(cache.stats().rejected, 4 * (n - fit) + 1);
  // …and once the sweep ends (unpinned), g1's entries are evicted LRU as any others.
  await unpin();
  assert.deepEqual([...(await pinnedGroups(pinnedDir))], []);
  const after = new FeatureCache({ dir: pinnedDir, maxBytes: Math.floor(entry * (fit + 0.5)) });
  await after.getOrCompute(after.key({ image: 0 }, 'g2'), () => features(0));
  assert.equal(after.stats().evictions, 1);
  assert.equal(after.stats().rejected, 0);
});

test('pins of a process that is gone are ignored and removed; a fitting budget hits everything', async () => {
  const d = dir();
  mkdirSync(join(d, 'pins'), { recursive: true });
  // A pid that cannot be alive: above the kernel's pid_max.
  writeFileSync(
    join(d, 'pins', 'dead.json'),
    JSON.stringify({ host: hostname(), pid: 2 ** 22 + 1, groups: ['g1'] }),
  );
  assert.deepEqual([...(await pinnedGroups(d))], []);
  assert.ok(!existsSync(join(d, 'pins', 'dead.json')));
  const cache = new FeatureCache({ dir: d });
  assert.deepEqual(await cyclicScan(cache, 'g1', 5, 3), [0, 5, 5]);
});

test('the default budget: what the cache holds plus half the free disk space, at most 200 GB', async () => {
  const d = dir();
  const free = statfsSync(d);
  const budget = await defaultCacheBudget(join(d, 'not', 'yet', 'made'));
  const half = Math.floor((free.bavail * free.bsize) / 2);
  assert.ok(Math.abs(budget - Math.min(200e9, half)) < 64 * 1024 ** 2, `${budget} vs ${half}`);
});
