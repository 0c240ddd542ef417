// The restricted torch.save reader against files torch wrote (python/golden/
// make_torch_zip_fixtures.py): every tensor bit for bit against safetensors.torch's copy, and
// every way out of a plain state dict refused by name, before anything runs.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { UserError } from '../../src/errors.js';
import { PickleDict, PickleRefused } from '../../src/io/pickle.js';
import { decode, SafetensorsFile, type SafetensorsDtype } from '../../src/io/safetensors.js';
import { TorchZip } from '../../src/io/torch-zip.js';
import { buildZip, op, pickle, tensorOps, torchArchive } from './torch-zip-builder.js';
import { need, pythonWith } from '../requirements.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/torch-zip/', import.meta.url));
const fixture = (name: string) => join(FIXTURES, name);
const tmp = await mkdtemp(join(tmpdir(), 'vcp-torchzip-'));
after(() => rm(tmp, { recursive: true, force: true }));

async function write(name: string, bytes: Uint8Array): Promise<string> {
  const file = join(tmp, name);
  await writeFile(file, bytes);
  return file;
}

async function assertMatchesExpected(file: string): Promise<void> {
  const expected = await SafetensorsFile.open(fixture('state.expected.safetensors'));
  const archive = await TorchZip.open(file);
  try {
    const tensors = archive.tensors();
    assert.deepEqual([...tensors.keys()].sort(), Object.keys(expected.entries).sort());
    for (const [name, tensor] of tensors) {
      const want = expected.entries[name];
      assert.equal(tensor.dtype, want.dtype, name);
      assert.deepEqual(tensor.shape, want.shape, name);
      const got = Buffer.from(await archive.bytes(tensor));
      assert.ok(got.equals(Buffer.from(await expected.bytes(name))), `${name}: bytes differ`);
    }
    assert.equal(tensors.get('prompt')!.parameter, true);
    // Decoded values (what a consumer of float32 data gets) equal what the safetensors reader
    // decodes from safetensors.torch's copy (that decoder is tested against Python).
    for (const name of ['dtypes.f16', 'dtypes.bf16', 'dtypes.i32', 'views.column', 'prompt']) {
      const raw = await archive.rawTensor(name, tensors.get(name)!);
      const entry = expected.entries[name];
      const want = decode(entry.dtype as SafetensorsDtype, await expected.bytes(name), name);
      assert.equal(raw.dtype, entry.dtype, name);
      assert.deepEqual(raw.shape, entry.shape, name);
      assert.deepEqual([...raw.data], [...want], name);
    }
    await assert.rejects(
      archive.rawTensor('dtypes.u8', tensors.get('dtypes.u8')!),
      /tensor "dtypes\.u8" has dtype U8; readable as numbers: F32, F16, BF16, I64, I32/,
    );
    assert.equal(tensors.get('model.0.weight')!.parameter, false);
    // Views keep their layout until read: the slice sits at offset 12 of the shared storage.
    assert.equal(tensors.get('views.row_slice')!.offset, 12);
    assert.equal(tensors.get('views.row_slice')!.storage, tensors.get('views.whole')!.storage);
    assert.deepEqual(tensors.get('views.column')!.stride, [6]);
    // Non-tensor leaves come back as plain data; the state dict keeps its _metadata.
    const root = archive.root as PickleDict;
    assert.equal(root.get('epoch'), 3);
    assert.equal(root.get('lr'), 0.001);
    assert.equal(root.get('name'), 'tiny');
    assert.equal(root.get('nothing'), null);
    assert.equal(root.get('done'), true);
    const model = root.get('model') as PickleDict;
    assert.ok(model.ordered);
    assert.ok(model.attributes.get('_metadata') instanceof PickleDict);
  } finally {
    await archive.close();
  }
}

test('reads every tensor torch.save wrote (10 dtypes, views, shared storage, 0-d, empty, Parameter) bit for bit', async () => {
  await assertMatchesExpected(fixture('state.pth'));
});

test('pickle protocol 4 (FRAME, MEMOIZE, STACK_GLOBAL) reads the same', async () => {
  await assertMatchesExpected(fixture('state-p4.pth'));
});

test('a big-endian archive is byte-swapped to the same little-endian values', async () => {
  await assertMatchesExpected(fixture('state-big-endian.pth'));
});

test('zip64 records (torch writes them past 4 GB) and deflated entries are read; a deflate bomb claim is refused', async () => {
  const data = Buffer.from(new Float32Array([1.5, -2, 3, 4]).buffer);
  const pkl = pickle(
    op.proto,
    op.emptyDict,
    op.str('w'),
    tensorOps({ key: '0', numel: 4, size: [2, 2], stride: [1, 2] }),
    op.setitem,
    op.stop,
  );
  for (const options of [{ zip64: true }, { deflate: true }, { zip64: true, deflate: true }]) {
    const file = await write('zip.pth', torchArchive(pkl, { '0': data }, options));
    const archive = await TorchZip.open(file);
    const w = archive.tensors().get('w')!;
    assert.deepEqual([...new Float32Array((await archive.bytes(w)).buffer)], [1.5, 3, -2, 4]);
    await archive.close();
  }
  // Deflated entries that claim 2 GB: more than deflate can expand them to, refused unread.
  const bomb = await write('bomb.pth', torchArchive(pkl, {}, { deflate: true, claimSize: 2e9 }));
  await assert.rejects(
    TorchZip.open(bomb),
    /bomb\.pth: entry "archive\/[^"]+" claims 2000000000 bytes, more than the \d+ that can be read for it/,
  );
});

test('a pickle that calls os.system is refused by name and nothing runs; Python itself would run it', async (t) => {
  const marker = join(tmp, 'pwned');
  const previous = process.env.VCP_EXP_PWNED;
  process.env.VCP_EXP_PWNED = marker;
  try {
    await assert.rejects(TorchZip.open(fixture('os-system.pth')), (e: Error) => {
      assert.ok(e instanceof PickleRefused, `${e.name}: ${e.message}`);
      assert.match(
        e.message,
        /os-system\.pth: state\/data\.pkl: refusing to load: the pickle imports os\.system/,
      );
      return true;
    });
    assert.ok(!existsSync(marker), 'the command ran');
  } finally {
    if (previous === undefined) delete process.env.VCP_EXP_PWNED;
    else process.env.VCP_EXP_PWNED = previous;
  }
  // The control: the same bytes through Python's pickle do run the command, so the fixture is
  // a real attack and the absence of the marker above means something.
  const python = need(t, 'project-python', pythonWith([]));
  if (!python) return;
  const run = spawnSync(
    python,
    [
      '-c',
      'import pickle, sys, zipfile; pickle.loads(zipfile.ZipFile(sys.argv[1]).read("state/data.pkl"))',
      fixture('os-system.pth'),
    ],
    { env: { ...process.env, VCP_EXP_PWNED: marker }, encoding: 'utf8' },
  );
  assert.notEqual(run.status, 0, 'Python fails later (no persistent_load), after the call');
  assert.ok(existsSync(marker), `Python did not run the command: ${run.stderr}`);
});

test('every other way out of a state dict is refused, naming what was refused', async () => {
  const cases: [string, Uint8Array, RegExp][] = [
    [
      'eval',
      pickle(op.proto, op.global('builtins', 'eval'), op.str('1+1'), op.tuple1, op.reduce, op.stop),
      /the pickle imports builtins\.eval/,
    ],
    [
      'stack-global',
      pickle(op.proto, op.shortStr('posix'), op.shortStr('system'), op.stackGlobal, op.stop),
      /the pickle imports posix\.system/,
    ],
    [
      'inst',
      pickle(op.proto, op.mark, op.str('ls'), op.inst('os', 'system'), op.stop),
      /opcode 0x69 \(INST\) at byte 10/,
    ],
    [
      'build-on-dict',
      pickle(op.proto, op.emptyDict, op.emptyDict, op.build, op.stop),
      /BUILD \(setting object state\) outside an OrderedDict/,
    ],
    [
      'storage-as-callee',
      pickle(op.proto, op.global('torch', 'FloatStorage'), op.emptyTuple, op.reduce, op.stop),
      /the pickle calls torch\.FloatStorage, which is not callable here/,
    ],
    [
      'allowed-global-as-value',
      pickle(op.proto, op.global('torch._utils', '_rebuild_tensor_v2'), op.stop),
      /the global torch\._utils\._rebuild_tensor_v2 is used as the result/,
    ],
  ];
  for (const [name, pkl, pattern] of cases) {
    const file = await write(`${name}.pth`, torchArchive(pkl, {}));
    await assert.rejects(TorchZip.open(file), (e: Error) => {
      assert.ok(e instanceof PickleRefused, `${name}: ${e.name}: ${e.message}`);
      assert.match(e.message, pattern, name);
      assert.ok(e.message.startsWith(`${file}: archive/data.pkl: refusing to load`), e.message);
      return true;
    });
  }
});

test('tensor layouts are checked against their storage before any byte is read', async () => {
  const four = Buffer.alloc(16);
  const cases: [string, number[], Record<string, Uint8Array>, RegExp][] = [
    [
      'past-the-end',
      tensorOps({ key: '0', numel: 4, size: [10], stride: [1] }),
      { '0': four },
      /tensor \(offset 0, size \[10\], stride \[1\]\) reaches element 9 of a storage of 4 elements/,
    ],
    [
      'stride-past-the-end',
      tensorOps({ key: '0', numel: 4, offset: 1, size: [2, 2], stride: [2, 1] }),
      { '0': four },
      /reaches element 4 of a storage of 4 elements/,
    ],
    [
      'rank-mismatch',
      tensorOps({ key: '0', numel: 4, size: [2, 2], stride: [1] }),
      { '0': four },
      /size \[2,2\] and stride \[1\] have different lengths/,
    ],
    [
      'numel-mismatch',
      tensorOps({ key: '0', numel: 5, size: [4], stride: [1] }),
      { '0': four },
      /storage 0 should hold 5 F32 values \(20 bytes\) but archive\/data\/0 has 16/,
    ],
    [
      'missing-storage',
      tensorOps({ key: '7', numel: 4, size: [4], stride: [1] }),
      { '0': four },
      /storage 7 is referenced but archive\/data\/7 is not in the archive/,
    ],
    [
      'hooks',
      tensorOps({
        key: '0',
        numel: 4,
        size: [4],
        stride: [1],
        hooks: [...op.emptyDict, ...op.int(1), ...op.int(2), ...op.setitem],
      }),
      { '0': four },
      /backward hooks/,
    ],
  ];
  for (const [name, ops, storages, pattern] of cases) {
    const pkl = pickle(op.proto, op.emptyDict, op.str('w'), ops, op.setitem, op.stop);
    const file = await write(`${name}.pth`, torchArchive(pkl, storages));
    await assert.rejects(TorchZip.open(file), (e: Error) => {
      assert.ok(e instanceof UserError, `${name}: ${e.name}: ${e.message}`);
      assert.match(e.message, pattern, name);
      assert.ok(e.message.startsWith(file), e.message);
      return true;
    });
  }
  const pid = pickle(
    op.proto,
    op.mark,
    op.str('module'),
    op.str('x'),
    op.tuple,
    op.persid,
    op.stop,
  );
  await assert.rejects(
    TorchZip.open(await write('pid.pth', torchArchive(pid, {}))),
    /unknown persistent id \["module","x"\]/,
  );
});

test('truncated, corrupt, legacy and non-torch files are clear errors naming the file', async () => {
  const good = await readFile(fixture('state.pth'));
  const truncated = await write('truncated.pth', good.subarray(0, good.length >> 1));
  await assert.rejects(
    TorchZip.open(truncated),
    (e: Error) =>
      e instanceof UserError &&
      e.message.startsWith(truncated) &&
      /no end-of-central-directory record \(the file is cut short\?\)/.test(e.message),
  );
  // One flipped byte inside a storage: the CRC catches it when the tensor is read.
  const expected = await SafetensorsFile.open(fixture('state.expected.safetensors'));
  const start = good.indexOf(Buffer.from(await expected.bytes('views.whole')));
  assert.ok(start > 0);
  const flipped = Buffer.from(good);
  flipped[start + 5] ^= 0x40;
  const corrupt = await write('corrupt.pth', flipped);
  const opened = await TorchZip.open(corrupt);
  await assert.rejects(
    opened.bytes(opened.tensors().get('views.whole')!),
    /entry "state\/data\/\d+" fails its CRC-32 check/,
  );
  await opened.close();
  await assert.rejects(
    TorchZip.open(fixture('legacy.pth')),
    /legacy\.pth: the legacy torch\.save format \(before torch 1\.6\) is not read/,
  );
  await assert.rejects(
    TorchZip.open(fixture('state.expected.safetensors')),
    /state\.expected\.safetensors: not a readable zip archive/,
  );
  await assert.rejects(
    TorchZip.open(await write('no-pickle.zip', buildZip([['notes/a.txt', Buffer.from('hi')]]))),
    /no-pickle\.zip: not a torch\.save archive \(expected one <archive>\/data\.pkl, found 0\)/,
  );
});
