import assert from 'node:assert/strict';
import { readFile, rm, stat, unlink, utimes, writeFile, mkdtemp, rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { UserError } from '../../../src/errors.js';
import { encodeSafetensors, readSafetensors } from '../../../src/io/safetensors.js';
import {
  inspectClipCheckpoint,
  loadClipCheckpoint,
  sha256File,
  weightsHash,
} from '../../../src/model/clip/weights.js';
import { makeCheckpointDir } from './helpers.js';

const tmp = await mkdtemp(join(tmpdir(), 'vcp-weights-'));
after(() => rm(tmp, { recursive: true, force: true }));
let counter = 0;
async function checkpoint(options: { generated?: boolean } = {}): Promise<string> {
  const dir = join(tmp, `ckpt-${counter++}`);
  await makeCheckpointDir(dir, options);
  return dir;
}

function isUserError(...parts: string[]) {
  return (e: Error) => {
    assert.ok(e instanceof UserError, `${e.name}: ${e.message}`);
    const text = `${e.message}\n${(e as UserError).hint ?? ''}`;
    for (const part of parts) assert.ok(text.includes(part), `"${part}" not in: ${text}`);
    return true;
  };
}

for (const generated of [false, true]) {
  test(`loads a ${generated ? 'generated' : 'fixture'} checkpoint: parsed config, all tensors, tokenizer, sha256 hash`, async () => {
    const dir = await checkpoint({ generated });
    const ckpt = await loadClipCheckpoint(dir);
    const { tensors } = await readSafetensors(join(dir, 'model.safetensors'));
    assert.equal(ckpt.tensors.size, tensors.size);
    assert.ok(ckpt.tensors.has('visual_projection.weight'));
    assert.equal(ckpt.config.text.contextLength, 77);
    assert.equal(ckpt.rawConfig.text_config !== undefined, true);
    assert.equal(ckpt.hash, await sha256File(join(dir, 'model.safetensors')));
    assert.match(ckpt.hash, /^[0-9a-f]{64}$/);
    const ids = ckpt.tokenizer.encode('a photo of a good bottle');
    assert.equal(ids[0], ckpt.tokenizer.sotId);
    assert.equal(ids.at(-1), ckpt.tokenizer.eotId);
    assert.ok(ids.every((id) => id < ckpt.config.text.vocabSize));
  });
}

test('the hash sidecar is reused while size and mtime are unchanged, and recomputed after a change', async () => {
  const dir = await checkpoint();
  const file = join(dir, 'model.safetensors');
  const real = await weightsHash(file);
  const sidecar = JSON.parse(await readFile(`${file}.sha256`, 'utf8')) as {
    sha256: string;
    size: number;
  };
  assert.equal(sidecar.sha256, real);
  assert.equal(sidecar.size, (await stat(file)).size);
  // A planted value proves the sidecar is read instead of hashing again.
  await writeFile(`${file}.sha256`, JSON.stringify({ ...sidecar, sha256: 'ab'.repeat(32) }));
  assert.equal(await weightsHash(file), 'ab'.repeat(32));
  const { mtime } = await stat(file);
  await utimes(file, mtime, new Date(mtime.getTime() + 5000));
  assert.equal(await weightsHash(file), real);
});

test('a missing file is a UserError naming it and the directory, and suggesting weights pull', async () => {
  for (const name of ['config.json', 'model.safetensors', 'tokenizer.json']) {
    const dir = await checkpoint();
    await unlink(join(dir, name));
    await assert.rejects(
      loadClipCheckpoint(dir),
      isUserError(dir, `missing ${name}`, 'vcp-exp weights pull'),
    );
  }
  await assert.rejects(
    loadClipCheckpoint(join(tmp, 'nowhere')),
    isUserError(join(tmp, 'nowhere'), 'no such checkpoint directory', 'weights pull'),
  );
});

test('pytorch_model.bin alone is refused with how to convert it', async () => {
  const dir = await checkpoint();
  await rename(join(dir, 'model.safetensors'), join(dir, 'pytorch_model.bin'));
  await assert.rejects(
    loadClipCheckpoint(dir),
    isUserError(
      'pytorch_model.bin but no model.safetensors',
      'vcp-exp weights pull <id>',
      'runs no pickle code',
    ),
  );
});

test('missing or mis-shaped tensors name the weights file and the tensor', async () => {
  const dir = await checkpoint();
  const file = join(dir, 'model.safetensors');
  const { tensors } = await readSafetensors(file);
  const floats = new Map(
    [...tensors].map(([n, t]) => [n, { shape: t.shape, data: Float32Array.from(t.data) }]),
  );
  floats.delete('text_projection.weight');
  await writeFile(file, encodeSafetensors(floats));
  await assert.rejects(
    inspectClipCheckpoint(dir),
    isUserError(file, 'tensor "text_projection.weight" is missing', 'config.json'),
  );
  const embed = floats.get('vision_model.embeddings.class_embedding')!;
  floats.set('vision_model.embeddings.class_embedding', {
    shape: [1, embed.data.length],
    data: embed.data,
  });
  await writeFile(file, encodeSafetensors(floats));
  await assert.rejects(
    inspectClipCheckpoint(dir),
    isUserError(
      file,
      'is missing',
      '1 more',
      '"vision_model.embeddings.class_embedding" has shape [1,',
    ),
  );
});

test('a corrupt or truncated model.safetensors and a broken config.json are errors naming the file', async () => {
  const dir = await checkpoint();
  const file = join(dir, 'model.safetensors');
  const bytes = await readFile(file);
  await writeFile(file, bytes.subarray(0, bytes.length - 100));
  await assert.rejects(loadClipCheckpoint(dir), isUserError(file, 'not a valid safetensors file'));
  await writeFile(file, bytes);
  await writeFile(join(dir, 'config.json'), '{"vision_config": {');
  await assert.rejects(
    loadClipCheckpoint(dir),
    isUserError(join(dir, 'config.json'), 'not valid JSON'),
  );
  await writeFile(
    join(dir, 'config.json'),
    '{"vision_config": {"patch_size": 0}, "text_config": {}}',
  );
  await assert.rejects(
    loadClipCheckpoint(dir),
    isUserError(join(dir, 'config.json'), 'patch_size'),
  );
});
