/**
 * The restricted torch.save reader against files torch itself wrote
 * (python/golden/make_torch_zip_golden.py): every dtype, views at offsets and with strides,
 * parameters, nested containers, deflated entries; and the refusals: a pickle that calls
 * os.system, tensors past their storage, short storages, truncated and foreign files.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { UserError } from '../../src/errors.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { readTorchCheckpoint, TorchTensor } from '../../src/io/torch-zip.js';

const DIR = 'tests/fixtures/torch-zip';

function flatten(value: unknown, prefix = '', out = new Map<string, TorchTensor>()) {
  if (value instanceof TorchTensor) out.set(prefix, value);
  else if (value instanceof Map)
    for (const [k, v] of value) flatten(v, prefix ? `${prefix}.${String(k)}` : String(k), out);
  return out;
}

async function checkViews(file: string): Promise<void> {
  const state = (await readTorchCheckpoint(file)) as Map<string, unknown>;
  const tensors = flatten(new Map([...state].filter(([k]) => k !== 'meta')));
  const { tensors: expected } = await readSafetensors(join(DIR, 'views.safetensors'));
  assert.deepEqual([...tensors.keys()].sort(), [...expected.keys()].sort());
  for (const [name, t] of tensors) {
    const e = expected.get(name)!;
    assert.deepEqual([...t.shape], e.shape, name);
    assert.deepEqual(Array.from(t.data), Array.from(e.data), name);
  }
  const dtypes = Object.fromEntries(
    [...tensors].filter(([k]) => k.startsWith('tensors.')).map(([k, t]) => [k.slice(8), t.dtype]),
  );
  assert.equal(dtypes.f16, 'float16');
  assert.equal(dtypes.bf16, 'bfloat16');
  assert.equal(dtypes.i64, 'int64');
  assert.equal(dtypes.bool, 'bool');
  const meta = state.get('meta') as Map<string, unknown>;
  assert.deepEqual(Object.fromEntries(meta), {
    epoch: 3,
    lr: 4e-5,
    name: 'tiny',
    none: null,
    flag: true,
    list: [1, 2.5, 'x'],
    tuple: [1, 2],
    big: 2 ** 40,
    negative: -7,
  });
}

test('every tensor of a torch.save file equals torch (dtypes, views, parameters, containers)', () =>
  checkViews(join(DIR, 'views.pth')));

test('deflated entries are read the same', () => checkViews(join(DIR, 'deflated.pth')));

async function rejects(file: string, pattern: RegExp): Promise<UserError> {
  let caught: unknown;
  await readTorchCheckpoint(file).catch((error: unknown) => (caught = error));
  assert.ok(caught instanceof UserError, `expected a UserError, got ${String(caught)}`);
  assert.match(caught.message, pattern);
  return caught;
}

test('a pickle that calls anything but a state dict global is refused by name', async () => {
  await rejects(join(DIR, 'malicious.pth'), /refusing to load (posix|os|nt)\.system/);
});

test('a tensor reaching past its storage, and a short storage, are refused', async () => {
  await rejects(join(DIR, 'out-of-bounds.pth'), /reaches element 99 of storage 0, which has 4/);
  await rejects(join(DIR, 'short-storage.pth'), /storage 0 holds 12 bytes, expected 4 float32/);
});

test('missing, truncated, foreign and legacy files are user errors naming the file', async () => {
  await rejects(join(DIR, 'nothing-here.pth'), /nothing-here\.pth: no such file/);
  await rejects(join(DIR, 'truncated.pth'), /truncated\.pth: a damaged zip archive/);
  await rejects(join(DIR, 'not-torch.zip'), /a zip archive but not a torch\.save checkpoint/);
  await rejects(join(DIR, 'views.safetensors'), /not a PyTorch checkpoint/);
  const legacy = await rejects(
    'tests/fixtures/vcp-clip-public/legacy.pth',
    /a legacy torch\.save file \(PyTorch < 1\.6/,
  );
  assert.match(legacy.hint ?? '', /torch\.save\(torch\.load\('legacy\.pth'/);
  const text = join(tmpdir(), `vcp-exp-not-a-checkpoint-${process.pid}.pth`);
  await writeFile(text, 'hello\n');
  await rejects(text, /not a PyTorch checkpoint/);
});
