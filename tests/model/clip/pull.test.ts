import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { UserError } from '../../../src/errors.js';
import { checkpointCacheDir } from '../../../src/model/clip/cache.js';
import type { DownloadProgress } from '../../../src/model/clip/progress.js';
import { pullClipCheckpoint, type PullOptions } from '../../../src/model/clip/pull.js';
import { COMMIT, startHubServer, type HubServer } from './hub-server.js';
import { makeCheckpointDir } from './helpers.js';

const ID = 'test-org/tiny-clip';
const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const tmp = await mkdtemp(join(tmpdir(), 'vcp-pull-'));
const source = join(tmp, 'source');
await makeCheckpointDir(source);
const files = new Map<string, Buffer>();
for (const name of await readdir(source)) files.set(name, await readFile(join(source, name)));
const weights = files.get('model.safetensors')!;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

const repos = new Map([
  [ID, files],
  [
    'test-org/torch-only',
    new Map(
      [...files]
        .filter(([n]) => n !== 'model.safetensors')
        .concat([['pytorch_model.bin', Buffer.from('pickle')]]),
    ),
  ],
]);
let server: HubServer;
let cacheCounter = 0;
before(async () => {
  server = await startHubServer(repos);
});
after(async () => {
  await server.close();
  await rm(tmp, { recursive: true, force: true });
});
beforeEach(() => server.reset());

function recorder(): DownloadProgress & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    start() {},
    advance() {},
    done: (file, note) => lines.push(`${file}: ${note}`),
    note: (line) => lines.push(line),
  };
}

function pull(extra: Partial<PullOptions> = {}) {
  const cacheDir = join(tmp, `cache-${cacheCounter++}`);
  const progress = recorder();
  const run = pullClipCheckpoint({
    id: ID,
    endpoint: server.endpoint,
    cacheDir,
    retryDelayMs: 5,
    progress,
    ...extra,
  });
  return { cacheDir, progress, run, dir: checkpointCacheDir(ID, 'main', cacheDir) };
}

async function assertSameFiles(dir: string): Promise<void> {
  for (const [name, bytes] of files)
    assert.ok((await readFile(join(dir, name))).equals(bytes), name);
  const leftovers = (await readdir(dir)).filter((f) => f.endsWith('.part'));
  assert.deepEqual(leftovers, []);
}

test('downloads every file, verifies it, validates the checkpoint; a second pull downloads nothing', async () => {
  const { run, dir, cacheDir, progress } = pull();
  const result = await run;
  assert.equal(result.dir, dir);
  assert.equal(result.commit, COMMIT);
  await assertSameFiles(dir);
  assert.equal(result.files.find((f) => f.name === 'model.safetensors')!.status, 'downloaded');
  assert.ok(result.checkpoint.tensorCount > 10);
  assert.ok(
    progress.lines.some((l) =>
      /^model\.safetensors: [\d.]+ [kM]?B downloaded.*sha256 verified/.test(l),
    ),
    progress.lines.join('\n'),
  );
  // The verified hash is recorded for loadClipCheckpoint.
  const sidecar = JSON.parse(await readFile(join(dir, 'model.safetensors.sha256'), 'utf8')) as {
    sha256: string;
  };
  assert.equal(sidecar.sha256, sha(weights));

  server.requests.length = 0;
  const again = await pullClipCheckpoint({
    id: ID,
    endpoint: server.endpoint,
    cacheDir,
    progress: recorder(),
  });
  assert.ok(again.files.every((f) => f.status !== 'downloaded'));
  assert.deepEqual(
    server.requests.filter((r) => r.method === 'GET'),
    [],
  );
});

test('resumes with a Range request after the server drops the connection mid-file', async () => {
  server.faults.dropAfter = Math.floor(weights.length / 3);
  const { run, dir, progress } = pull();
  await run;
  await assertSameFiles(dir);
  const gets = server.requests.filter((r) => r.method === 'GET' && r.path.startsWith('/cdn/'));
  assert.equal(gets.length, 2, JSON.stringify(gets));
  assert.equal(gets[0].range, undefined);
  assert.match(gets[1].range ?? '', /^bytes=\d+-$/);
  assert.ok(Number(/\d+/.exec(gets[1].range!)![0]) > 0);
  assert.equal(gets[1].status, 206);
  assert.ok(
    progress.lines.some((l) => l.includes('retrying')),
    progress.lines.join('\n'),
  );
});

test('a server that ignores Range (200) makes the download restart from the beginning', async () => {
  server.faults.dropAfter = Math.floor(weights.length / 2);
  server.faults.ignoreRange = true;
  const { run, dir, progress } = pull();
  await run;
  await assertSameFiles(dir);
  const gets = server.requests.filter((r) => r.method === 'GET' && r.path.startsWith('/cdn/'));
  assert.deepEqual(
    gets.map((g) => g.status),
    [200, 200],
  );
  assert.ok(gets[1].range);
  assert.ok(
    progress.lines.some((l) => l.includes('ignored the Range request')),
    progress.lines.join('\n'),
  );
});

test('a .part left by an earlier run is resumed', async () => {
  const { run, dir } = pull();
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'model.safetensors.part'), weights.subarray(0, 1000));
  await run;
  await assertSameFiles(dir);
  const gets = server.requests.filter((r) => r.method === 'GET' && r.path.startsWith('/cdn/'));
  assert.deepEqual(
    gets.map((g) => g.range),
    ['bytes=1000-'],
  );
});

test('a stale .part that is not a prefix of the file is detected and downloaded again from the start', async () => {
  const { run, dir, progress } = pull();
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'model.safetensors.part'), Buffer.alloc(1000, 7));
  await run;
  await assertSameFiles(dir);
  assert.ok(
    progress.lines.some((l) => l.includes('does not match; downloading it again')),
    progress.lines.join('\n'),
  );
});

test('corrupted bytes are rejected naming the file and both hashes, and nothing is left in place', async () => {
  server.faults.corrupt = true;
  const { run, dir } = pull();
  const corrupt = Buffer.from(weights);
  corrupt[corrupt.length >> 1] ^= 0xff;
  await assert.rejects(run, (e: Error) => {
    assert.ok(e instanceof UserError, e.message);
    assert.match(e.message, /^model\.safetensors: sha256 mismatch/);
    assert.ok(e.message.includes(`expected ${sha(weights)}`), e.message);
    assert.ok(e.message.includes(`got ${sha(corrupt)}`), e.message);
    return true;
  });
  assert.ok(!existsSync(join(dir, 'model.safetensors')));
  assert.ok(!existsSync(join(dir, 'model.safetensors.part')));
});

test('transient 503s are retried; 401 and 404 give clear errors', async () => {
  server.faults.unavailable = 2;
  const ok = pull();
  await ok.run;
  await assertSameFiles(ok.dir);
  assert.ok(
    ok.progress.lines.some((l) => /answered 503; retrying/.test(l)),
    ok.progress.lines.join('\n'),
  );

  server.faults.unauthorized = true;
  await assert.rejects(
    pull().run,
    (e: Error) =>
      e instanceof UserError &&
      /^test-org\/tiny-clip: http:\/\/127\.0\.0\.1:\d+ refused the revision "main" lookup \(401\)/.test(
        e.message,
      ) &&
      /HF_TOKEN/.test((e as UserError).hint ?? ''),
  );
  server.faults.unauthorized = false;
  server.requests.length = 0;
  await pull({ token: 'hf_secret' }).run;
  const hub = server.requests.filter(
    (r) => r.path.includes('/resolve/') || r.path.startsWith('/api/'),
  );
  assert.ok(hub.length > 0 && hub.every((r) => r.auth === 'Bearer hf_secret'));

  await assert.rejects(
    pull({ id: 'test-org/nothing-here' }).run,
    (e: Error) =>
      e instanceof UserError &&
      /test-org\/nothing-here \(main\): nothing found at http:\/\/127\.0\.0\.1:\d+\/test-org\/nothing-here\/resolve\/main\/config\.json \(404\)/.test(
        e.message,
      ),
  );
  // A pytorch_model.bin that is no torch archive at all: converted through the reader, refused.
  await assert.rejects(
    pull({ id: 'test-org/torch-only' }).run,
    /^UserError: test-org\/torch-only \(main\): .*pytorch_model\.bin: not a readable zip archive: only 6 bytes/,
  );
  await assert.rejects(pull({ id: '../etc' }).run, /"\.\.\/etc" is not a Hugging Face model id/);
  await assert.rejects(
    pull({ retries: 1, endpoint: 'http://127.0.0.1:9' }).run,
    /test-org\/tiny-clip: Hub API: revision lookup failed after 2 attempts/,
  );
});

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(REPO_ROOT, 'bin/vcp-exp.js'), ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, HF_TOKEN: '' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('vcp-exp weights pull end to end: exit 0 and a usable directory; exit 1 with the message on corruption', async () => {
  const cacheDir = join(tmp, 'cli-cache');
  const ok = await cli([
    'weights',
    'pull',
    ID,
    '--endpoint',
    server.endpoint,
    '--cache-dir',
    cacheDir,
  ]);
  assert.equal(ok.code, 0, ok.stderr);
  const dir = checkpointCacheDir(ID, 'main', cacheDir);
  assert.ok(ok.stdout.includes(dir), ok.stdout);
  assert.match(ok.stdout, /CLIP: vision \d+×\d+ patch \d+/);
  assert.match(ok.stderr, /model\.safetensors: .*sha256 verified/);
  await assertSameFiles(dir);

  server.faults.corrupt = true;
  const bad = await cli([
    'weights',
    'pull',
    ID,
    '--endpoint',
    server.endpoint,
    '--cache-dir',
    join(tmp, 'cli-cache-2'),
  ]);
  assert.equal(bad.code, 1);
  assert.match(
    bad.stderr,
    /vcp-exp: model\.safetensors: sha256 mismatch: expected [0-9a-f]{64}, got [0-9a-f]{64}/,
  );
  assert.doesNotMatch(bad.stderr, /at .*\.ts:\d+/); // a user error, not a stack trace
});
