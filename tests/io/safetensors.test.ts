import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { UserError } from '../../src/errors.js';
import {
  encodeSafetensors,
  readSafetensors,
  readSafetensorsHeader,
  writeSafetensors,
} from '../../src/io/safetensors.js';

const GOLDEN_FILE = fileURLToPath(
  new URL('../fixtures/clip/safetensors-golden.safetensors', import.meta.url),
);
type JsonNumber = number | 'NaN' | 'Infinity' | '-Infinity';
interface Golden {
  metadata: Record<string, string>;
  tensors: Record<string, { dtype: string; shape: number[]; values: JsonNumber[] }>;
  f16Writer: { input: JsonNumber[]; bits: number[] };
}
const golden = JSON.parse(
  readFileSync(new URL('../fixtures/clip/safetensors-golden.json', import.meta.url), 'utf8'),
) as Golden;
const toNumber = (v: JsonNumber) => (typeof v === 'number' ? v : Number(v));

const tmp = await mkdtemp(join(tmpdir(), 'vcp-st-'));
after(() => rm(tmp, { recursive: true, force: true }));

test('reads F32/F16/BF16/I64/I32 tensors written by the Python safetensors library, bit for bit', async () => {
  const { tensors, metadata } = await readSafetensors(GOLDEN_FILE);
  assert.deepEqual(metadata, golden.metadata);
  assert.deepEqual([...tensors.keys()].sort(), Object.keys(golden.tensors).sort());
  for (const [name, expected] of Object.entries(golden.tensors)) {
    const tensor = tensors.get(name)!;
    assert.equal(tensor.dtype, expected.dtype, name);
    assert.deepEqual(tensor.shape, expected.shape, name);
    assert.ok(
      expected.dtype.startsWith('I')
        ? tensor.data instanceof Int32Array
        : tensor.data instanceof Float32Array,
      name,
    );
    // Object.is: NaN equals NaN, and -0 differs from 0.
    const want = expected.values.map((v) =>
      expected.dtype.startsWith('I') ? toNumber(v) : Math.fround(toNumber(v)),
    );
    want.forEach((v, i) =>
      assert.ok(Object.is(tensor.data[i], v), `${name}[${i}]: ${tensor.data[i]} vs ${v}`),
    );
  }
});

test('F32 round trip: encode → read gives the same values, names sorted, data 8-byte aligned', async () => {
  const { tensors } = await readSafetensors(GOLDEN_FILE);
  const floats = new Map(
    [...tensors]
      .filter(([, t]) => t.data instanceof Float32Array)
      .map(([n, t]) => [n, { shape: t.shape, data: t.data as Float32Array }]),
  );
  const file = join(tmp, 'f32.safetensors');
  await writeSafetensors(file, floats, { metadata: { a: 'b' } });
  const back = await readSafetensors(file);
  assert.deepEqual(back.metadata, { a: 'b' });
  for (const [name, t] of floats) {
    assert.deepEqual(back.tensors.get(name)!.shape, t.shape);
    t.data.forEach((v, i) =>
      assert.ok(Object.is(back.tensors.get(name)!.data[i], v), `${name}[${i}]`),
    );
  }
  const { dataStart } = await readSafetensorsHeader(file);
  assert.equal(dataStart % 8, 0);
});

test('F16 writer rounds to nearest even exactly like torch .half()', async () => {
  const input = Float32Array.from(golden.f16Writer.input.map(toNumber));
  const bytes = encodeSafetensors(new Map([['x', { shape: [input.length], data: input }]]), {
    dtype: 'F16',
  });
  const dataStart = 8 + Number(bytes.readBigUInt64LE(0));
  const bits = Array.from({ length: input.length }, (_, i) =>
    bytes.readUInt16LE(dataStart + 2 * i),
  );
  bits.forEach((b, i) =>
    assert.equal(
      b,
      golden.f16Writer.bits[i],
      `value ${input[i]}: 0x${b.toString(16)} vs 0x${golden.f16Writer.bits[i].toString(16)}`,
    ),
  );
  // And the F16 bytes read back to the values Python stored for its own F16 tensor.
  const file = join(tmp, 'f16.safetensors');
  await writeFile(file, bytes);
  const back = (await readSafetensors(file)).tensors.get('x')!;
  assert.equal(back.dtype, 'F16');
  const expected = golden.tensors.f16.values.map(toNumber);
  expected.forEach((v, i) => assert.ok(Object.is(back.data[i], Math.fround(v)), `f16[${i}]`));
});

async function expectCorrupt(bytes: Uint8Array, pattern: RegExp): Promise<void> {
  const file = join(tmp, `bad-${Math.random().toString(36).slice(2)}.safetensors`);
  await writeFile(file, bytes);
  await assert.rejects(readSafetensors(file), (e: Error) => {
    assert.ok(e instanceof UserError, `${e.name}: ${e.message}`);
    assert.ok(e.message.startsWith(file), e.message);
    assert.match(e.message, pattern);
    return true;
  });
}

function withHeader(header: unknown, dataBytes = 0): Buffer {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const out = Buffer.alloc(8 + json.length + dataBytes);
  out.writeBigUInt64LE(BigInt(json.length));
  json.copy(out, 8);
  return out;
}

test('truncated or malformed files are UserErrors naming the file', async () => {
  const good = await readFile(GOLDEN_FILE);
  await expectCorrupt(good.subarray(0, 5), /only 5 bytes/);
  await expectCorrupt(good.subarray(0, 100), /header length \d+ exceeds file size 100/);
  await expectCorrupt(good.subarray(0, good.length - 10), /past the end of the file/);
  await expectCorrupt(withHeader('{"a": [1, 2'), /header is not JSON/);
  await expectCorrupt(withHeader([1, 2]), /not a JSON object/);
  await expectCorrupt(
    withHeader({ w: { dtype: 'F32', shape: [2] } }, 8),
    /tensor "w" needs \{dtype, shape/,
  );
  await expectCorrupt(
    withHeader({ w: { dtype: 'F32', shape: [2, -1], data_offsets: [0, 8] } }, 8),
    /tensor "w" needs/,
  );
  await expectCorrupt(
    withHeader({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 8),
    /spans 8 bytes, shape \[3\] F32 needs 12/,
  );
  await expectCorrupt(
    withHeader({ w: { dtype: 'U8', shape: [3], data_offsets: [0, 3] } }, 3),
    /dtype U8; supported: F32/,
  );
  const big = withHeader({ w: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, 8);
  big.writeBigInt64LE(2n ** 40n, big.length - 8);
  await expectCorrupt(big, /tensor "w": I64 value 1099511627776 at index 0 does not fit in int32/);
  await assert.rejects(
    readSafetensors(join(tmp, 'missing.safetensors')),
    /missing\.safetensors: cannot open \(ENOENT\)/,
  );
});
