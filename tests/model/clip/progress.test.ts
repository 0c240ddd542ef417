import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createProgress, describeDownload, humanBytes } from '../../../src/model/clip/progress.js';

function fakeStream(isTTY: boolean) {
  const writes: string[] = [];
  return {
    writes,
    stream: { isTTY, write: (s: string) => writes.push(s) > 0 } as unknown as NodeJS.WriteStream,
  };
}

test('human-readable sizes', () => {
  assert.equal(humanBytes(512), '512 B');
  assert.equal(humanBytes(1536), '1.5 kB');
  assert.equal(humanBytes(1.71 * 1024 ** 3), '1.7 GB');
  assert.match(describeDownload(10 * 1024 ** 2, 2000), /^10\.0 MB downloaded \(5\.0 MB\/s\)$/);
});

test('on a TTY one line is redrawn in place, then replaced by the result line', () => {
  const { writes, stream } = fakeStream(true);
  const progress = createProgress(stream);
  progress.start('model.safetensors', 4096, 1024);
  progress.advance(1024);
  progress.done('model.safetensors', 'done');
  const text = writes.join('');
  assert.match(writes[0], /resuming at 1\.0 kB/);
  const bar = `\r\x1b[2Kmodel.safetensors [${'#'.repeat(6)}${'.'.repeat(18)}]  25% 1.0 kB/4.0 kB`;
  assert.ok(text.includes(bar), JSON.stringify(text));
  assert.ok(text.endsWith('\r\x1b[2Kmodel.safetensors: done\n'), JSON.stringify(text));
});

test('without a TTY only plain lines are written', () => {
  const { writes, stream } = fakeStream(false);
  const progress = createProgress(stream);
  progress.start('config.json', 100, 0);
  progress.advance(100);
  progress.done('config.json', 'ok');
  assert.deepEqual(writes, ['config.json: ok\n']);
});
