// The hash-locked wheels the native backend is built from (assets/native/requirements-*.txt).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ZipArchive } from '../../src/io/zip.js';
import { compareVersions } from '../../src/model/gpu.js';
import {
  findVerifiedWheel,
  formatLock,
  parseLock,
  readLock,
  wheelsDir,
} from '../../src/model/native-wheels.js';
import { wheelPlatformProblem } from '../../src/model/native-setup.js';
import { need, type Availability } from '../requirements.js';

test('the GPU lock pins TensorFlow and the CUDA 12 libraries it opens, each with its hashes', () => {
  const gpu = readLock('gpu');
  assert.deepEqual(
    gpu.map((w) => w.name),
    [
      'tensorflow',
      'nvidia-cublas-cu12',
      'nvidia-cuda-nvrtc-cu12',
      'nvidia-cuda-runtime-cu12',
      'nvidia-cudnn-cu12',
      'nvidia-cufft-cu12',
      'nvidia-cusolver-cu12',
      'nvidia-cusparse-cu12',
      'nvidia-nvjitlink-cu12',
    ],
  );
  for (const wheel of [...gpu, ...readLock('cpu')]) {
    assert.match(wheel.version, /^\d+(\.\d+)+$/, wheel.name);
    assert.ok(wheel.hashes.length >= 1, wheel.name);
  }
  assert.deepEqual(
    readLock('cpu').map((w) => `${w.name}==${w.version}`),
    ['tensorflow-cpu==2.21.0'],
  );
  // What pip is handed is what the file says.
  assert.deepEqual(parseLock(formatLock(gpu)), gpu);
});

test('a lock line without a hash, or not a pin, is refused with its file', () => {
  assert.throws(
    () => parseLock('numpy==2.0.0\n', 'req.txt'),
    /req\.txt: numpy==2\.0\.0 has no --hash/,
  );
  assert.throws(
    () => parseLock('numpy>=2\n', 'req.txt'),
    /req\.txt: "numpy>=2" is not "name==version/,
  );
  assert.deepEqual(parseLock(`# c\nx-y==1.0 \\\n    --hash=sha256:${'a'.repeat(64)}\n`), [
    { name: 'x-y', version: '1.0', hashes: ['a'.repeat(64)] },
  ]);
});

test('a cached wheel counts only when its sha256 is a locked one', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vcp-wheels-'));
  try {
    const file = join(dir, 'nvidia_x_cu12-1.2.3-py3-none-manylinux2014_x86_64.whl');
    writeFileSync(file, 'wheel bytes');
    const hash = createHash('sha256').update('wheel bytes').digest('hex');
    const wheel = { name: 'nvidia-x-cu12', version: '1.2.3', hashes: [hash] };
    assert.equal(findVerifiedWheel(dir, wheel), file);
    writeFileSync(file, 'tampered bytes');
    assert.equal(findVerifiedWheel(dir, wheel), undefined);
    assert.equal(findVerifiedWheel(dir, { ...wheel, version: '1.2.4' }), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** tensorflow==2.21.0's own requirements for its `and-cuda` extra, from the wheel's METADATA. */
async function andCudaRequirements(): Promise<Availability<Map<string, string[]>>> {
  const tensorflow = readLock('gpu')[0]!;
  const wheel = findVerifiedWheel(wheelsDir(), tensorflow);
  if (!wheel) return { ok: false, reason: `no verified tensorflow wheel in ${wheelsDir()}` };
  const zip = await ZipArchive.open(wheel);
  try {
    const entry = zip.entries.get(`tensorflow-${tensorflow.version}.dist-info/METADATA`)!;
    const text = Buffer.from(await zip.read(entry, 1 << 20)).toString('utf8');
    const ranges = new Map<string, string[]>();
    for (const line of text.split(/\r?\n/)) {
      const m = /^Requires-Dist: ([a-z0-9-]+)([^;]*); extra == "and-cuda"$/.exec(line);
      if (m)
        ranges.set(
          m[1]!,
          m[2]!.split(',').map((s) => s.trim()),
        );
    }
    return { ok: true, value: ranges };
  } finally {
    await zip.close();
  }
}

test("every pinned CUDA library is within tensorflow 2.21.0's own and-cuda ranges", async (t) => {
  const ranges = need(t, 'gpu-build', await andCudaRequirements());
  if (!ranges) return;
  for (const wheel of readLock('gpu').slice(1)) {
    const range = ranges.get(wheel.name);
    assert.ok(range, `${wheel.name} is not in tensorflow's and-cuda extra`);
    for (const bound of range) {
      const [, op, version] = /^(>=|<)(.+)$/.exec(bound)!;
      const cmp = compareVersions(wheel.version, version!);
      assert.ok(op === '>=' ? cmp >= 0 : cmp < 0, `${wheel.name}==${wheel.version} vs ${bound}`);
    }
  }
  // What the extra has and the lock leaves out, on purpose (the lock's header says why).
  const pinned = new Set(readLock('gpu').map((w) => w.name));
  assert.deepEqual([...ranges.keys()].filter((name) => !pinned.has(name)).sort(), [
    'nvidia-cuda-cupti-cu12',
    'nvidia-cuda-nvcc-cu12',
    'nvidia-curand-cu12',
    'nvidia-nccl-cu12',
  ]);
});

test('the wheels are built from on Linux x86_64 only; elsewhere setup says so', () => {
  assert.equal(wheelPlatformProblem('cpu', 'linux', 'x64'), undefined);
  assert.equal(wheelPlatformProblem('gpu', 'linux', 'x64'), undefined);
  assert.match(
    wheelPlatformProblem('gpu', 'darwin', 'arm64')!,
    /^the GPU build is for Linux x86_64 only \(this is darwin-arm64\)/,
  );
  assert.match(
    wheelPlatformProblem('cpu', 'linux', 'arm64')!,
    /wheel is for Linux x86_64 only \(this is linux-arm64\); here only tfjs-node's official download/,
  );
});
