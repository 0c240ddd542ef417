// Issue 12, case 15: `weights pull` against a server that lies. Before: a file announced as 100
// bytes streamed 26 MB into `.part`; with no size or hash announced an invalid model.safetensors
// was moved into the cache. After: the body is cut at the announced size (or a bound when none
// is announced) and a weights file is moved into place only if it parses as safetensors with
// every tensor config.json needs.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { UserError } from '../../src/errors.js';
import { pullClipCheckpoint, type PullOptions } from '../../src/model/clip/pull.js';
import type { DownloadProgress } from '../../src/model/clip/progress.js';
import { startHubServer, type HubServer } from '../model/clip/hub-server.js';

const TINY = fileURLToPath(new URL('../../assets/clip/tiny-clip/', import.meta.url));
const OTHER_WEIGHTS = fileURLToPath(
  new URL('../fixtures/vcp-clip/tiny-clip/model.safetensors', import.meta.url),
);
const small = (name: string): [string, Buffer] => [name, readFileSync(join(TINY, name))];
const base = [small('config.json'), small('tokenizer.json')];
const repo = (weights: Buffer) => new Map([...base, ['model.safetensors', weights]]);

let server: HubServer;
const tmp = await mkdtemp(join(tmpdir(), 'vcp-rel-pull-'));
let n = 0;
before(async () => {
  server = await startHubServer(
    new Map([
      ['test-org/hundred', repo(Buffer.alloc(100, 1))],
      ['test-org/good', repo(readFileSync(join(TINY, 'model.safetensors')))],
      [
        'test-org/garbage',
        repo(Buffer.from('definitely not safetensors, but 56 bytes of something..')),
      ],
      ['test-org/other-model', repo(readFileSync(OTHER_WEIGHTS))],
    ]),
  );
});
after(async () => {
  await server.close();
  await rm(tmp, { recursive: true, force: true });
});
beforeEach(() => server.reset());

function pull(id: string, extra: Partial<PullOptions> = {}) {
  let written = 0;
  let file = '';
  const progress: DownloadProgress = {
    start: (name) => void (file = name),
    advance: (bytes) => void (written += file === 'model.safetensors' ? bytes : 0),
    done() {},
    note() {},
  };
  const cacheDir = join(tmp, `cache-${n++}`);
  const run = pullClipCheckpoint({
    id,
    endpoint: server.endpoint,
    cacheDir,
    hfCacheDir: join(tmp, `hf-${n++}`),
    retryDelayMs: 5,
    progress,
    ...extra,
  });
  return {
    run,
    /** Bytes of model.safetensors written to disk. */
    written: () => written,
    dir: join(cacheDir, 'models', ...id.split('/'), 'main'),
  };
}

async function assertNothingPlaced(dir: string): Promise<void> {
  const left = existsSync(dir) ? await readdir(dir) : [];
  assert.deepEqual(
    left.filter((f) => f.startsWith('model.safetensors') || f === 'vcp-weights.json'),
    [],
  );
}

test('a body longer than the announced 100 bytes is cut at 100: nothing past it is written, nothing kept', async () => {
  server.faults.oversize = 26e6;
  const started = performance.now();
  const p = pull('test-org/hundred');
  await assert.rejects(p.run, (e: Error) => {
    assert.ok(e instanceof UserError, e.message);
    assert.match(
      e.message,
      /^model\.safetensors: http:\/\/.*\/cdn\/.* sends more than the 100 bytes announced for it; stopped at \d+ bytes and deleted the partial file/,
    );
    return true;
  });
  assert.ok(p.written() <= 100, `${p.written()} bytes written`);
  assert.ok(performance.now() - started < 20_000);
  await assertNothingPlaced(p.dir);
});

test('no size announced: the body is bounded by --max-bytes', async () => {
  server.faults.oversize = 26e6;
  server.faults.hideMetadata = true;
  const p = pull('test-org/hundred', { maxBytes: 1 << 20 });
  await assert.rejects(
    p.run,
    /model\.safetensors: .* announces no size and sends more than 1048576 bytes; stopped and deleted the partial file/,
  );
  assert.ok(p.written() <= 1 << 20);
  await assertNothingPlaced(p.dir);
});

test('no size and no hash announced: an invalid model.safetensors is refused, not moved into the cache', async () => {
  server.faults.hideMetadata = true;
  const garbage = pull('test-org/garbage');
  await assert.rejects(garbage.run, /model\.safetensors\.part: not a valid safetensors file/);
  await assertNothingPlaced(garbage.dir);
  // Valid safetensors, but another model's tensors: refused by name and shape.
  const other = pull('test-org/other-model');
  await assert.rejects(other.run, (e: Error) => {
    assert.ok(e instanceof UserError);
    assert.match(e.message, /model\.safetensors\.part: tensor "[^"]+" (is missing|has shape)/);
    assert.match(e.hint ?? '', /the weights do not match .*config\.json/);
    return true;
  });
  await assertNothingPlaced(other.dir);
  // The right weights, unannounced, pass the check.
  const good = await pull('test-org/good').run;
  assert.equal(good.format, 'safetensors');
  assert.ok(good.checkpoint.tensorCount > 100);
});
