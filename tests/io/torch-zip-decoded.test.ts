/** readTorchCheckpoint: the object tree of a torch.save file with every tensor decoded to numbers. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SafetensorsFile } from '../../src/io/safetensors.js';
import {
  decodeTensorBytes,
  readTorchCheckpoint,
  type DecodedTensor,
  type DecodedValue,
} from '../../src/io/torch-zip.js';

const fixture = (name: string) => `tests/fixtures/torch-zip/${name}`;

/** The value at a dotted name whose dict keys may themselves contain dots ("model.0.weight"). */
function at(node: DecodedValue, name: string): DecodedValue | undefined {
  if (name === '') return node;
  const parts = name.split('.');
  for (let n = parts.length; n >= 1; n--) {
    const key = parts.slice(0, n).join('.');
    const rest = parts.slice(n).join('.');
    let child: DecodedValue | undefined;
    if (node instanceof Map) child = node.get(key);
    else if (Array.isArray(node) && /^\d+$/.test(key)) child = node[Number(key)];
    if (child !== undefined) {
      const found = at(child, rest);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

/** Values as strings (floats through float32, int64 exactly), from typed-array views of torch's bytes. */
function expectedValues(dtype: string, bytes: Uint8Array): string[] {
  const b = new Uint8Array(bytes).buffer;
  const views: Record<string, () => ArrayLike<number | bigint>> = {
    F32: () => new Float32Array(b),
    F64: () => Float32Array.from(new Float64Array(b)),
    I64: () => new BigInt64Array(b),
    I32: () => new Int32Array(b),
    I16: () => new Int16Array(b),
    I8: () => new Int8Array(b),
    U8: () => new Uint8Array(b),
    BOOL: () => new Uint8Array(b),
  };
  return Array.from(views[dtype](), String);
}

test('every tensor decoded: floats to float32, integers and bools to int32, containers as Maps and arrays', async () => {
  const root = await readTorchCheckpoint(fixture('state.pth'));
  const expected = await SafetensorsFile.open(fixture('state.expected.safetensors'));
  for (const [name, entry] of Object.entries(expected.entries)) {
    const t = at(root, name) as DecodedTensor;
    assert.equal(t?.kind, 'tensor', name);
    assert.deepEqual(t.shape, entry.shape, name);
    if (['F32', 'F64', 'F16', 'BF16'].includes(entry.dtype))
      assert.ok(t.data instanceof Float32Array, name);
    else if (entry.dtype !== 'I64') assert.ok(t.data instanceof Int32Array, name);
    if (entry.dtype === 'F16' || entry.dtype === 'BF16') continue; // below, by known bit patterns
    const got = Array.from(t.data as ArrayLike<number | bigint>, String);
    assert.deepEqual(got, expectedValues(entry.dtype, await expected.bytes(name)), name);
  }
  const map = root as Map<unknown, unknown>;
  assert.equal(map.get('epoch'), 3);
  assert.equal(map.get('name'), 'tiny');
  assert.ok(Array.isArray(map.get('layers')));
});

test('float16 and bfloat16 bit patterns; int64 as int32 when it fits, else exact', () => {
  const half = new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0xfc00, 0x7e00, 0x0000]);
  const got = decodeTensorBytes('F16', new Uint8Array(half.buffer));
  assert.deepEqual(Array.from(got as Float32Array).slice(0, 6), [
    1,
    -2,
    65504,
    2 ** -24,
    Infinity,
    -Infinity,
  ]);
  assert.ok(Number.isNaN(got[6]));
  const bf = new Uint16Array([0x3f80, 0xc040]);
  assert.deepEqual(
    Array.from(decodeTensorBytes('BF16', new Uint8Array(bf.buffer)) as Float32Array),
    [1, -3],
  );
  const wide = decodeTensorBytes('I64', new Uint8Array(new BigInt64Array([2n ** 40n, -3n]).buffer));
  assert.deepEqual(Array.from(wide as BigInt64Array), [2n ** 40n, -3n]);
  const small = decodeTensorBytes('I64', new Uint8Array(new BigInt64Array([7n, -3n]).buffer));
  assert.deepEqual(Array.from(small as Int32Array), [7, -3]);
});
