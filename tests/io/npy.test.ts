import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { UserError } from '../../src/errors.js';
import { decodeNpy, encodeNpy, readNpy } from '../../src/io/npy.js';
import { need, numpyPython } from '../requirements.js';

test('encode → decode round-trips every supported dtype', () => {
  for (const data of [
    new Float32Array([1.5, -2, 3e-8, 4, 5, 6]),
    new Float64Array([Math.PI, 2, 3, 4, 5, 6]),
    new Uint8Array([0, 1, 255, 3, 4, 5]),
    new Uint16Array([0, 65535, 2, 3, 4, 5]),
  ]) {
    const bytes = encodeNpy(data, [2, 3]);
    assert.equal((bytes.readUInt16LE(8) + 10) % 64, 0);
    const back = decodeNpy(bytes, 'x.npy');
    assert.deepEqual(back.shape, [2, 3]);
    assert.deepEqual(Array.from(back.data), Array.from(data));
    assert.equal(back.data.constructor, data.constructor);
  }
  assert.deepEqual(decodeNpy(encodeNpy(new Float32Array([7]), [1]), 'x').shape, [1]);
});

test('numpy reads what we write and we read what numpy writes', async (t) => {
  const python = need(t, 'numpy-python', numpyPython());
  if (!python) return;
  const dir = mkdtempSync(join(tmpdir(), 'npy-'));
  try {
    writeFileSync(join(dir, 'ts.npy'), encodeNpy(new Float32Array([0.25, 1, 2, 3, 4, 5]), [3, 2]));
    const script = `import numpy as np
a = np.load('${dir}/ts.npy'); assert a.dtype == np.float32 and a.shape == (3, 2) and a[0, 0] == 0.25, a
np.save('${dir}/py_f4.npy', np.arange(6, dtype='<f4').reshape(2, 3) / 7)
np.save('${dir}/py_u2.npy', np.array([[1, 65535]], dtype='<u2'))
np.save('${dir}/py_f8.npy', np.array([[0.1]], dtype='<f8'))`;
    const r = spawnSync(python, ['-c', script], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const [f4, u2, f8] = await Promise.all([
      readNpy(join(dir, 'py_f4.npy')),
      readNpy(join(dir, 'py_u2.npy')),
      readNpy(join(dir, 'py_f8.npy')),
    ]);
    assert.deepEqual(
      Array.from(f4.data),
      Array.from(new Float32Array([0, 1, 2, 3, 4, 5].map((v) => v / 7))),
    );
    assert.deepEqual([u2.dtype, Array.from(u2.data)], ['<u2', [1, 65535]]);
    assert.deepEqual([f8.dtype, f8.shape, f8.data[0]], ['<f8', [1, 1], 0.1]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bad files are user errors naming the file', () => {
  assert.throws(
    () => decodeNpy(Buffer.from('hello world'), 'a.npy'),
    (e: unknown) =>
      e instanceof UserError && /a\.npy: not a readable \.npy file: missing/.test(e.message),
  );
  const good = encodeNpy(new Float32Array(4), [2, 2]);
  assert.throws(
    () => decodeNpy(good.subarray(0, good.length - 3), 'b.npy'),
    /b\.npy: .*needs 16 data bytes, the file has 13/,
  );
  const i8 = Buffer.from(good.toString('latin1').replace("'<f4'", "'<i8'"), 'latin1');
  assert.throws(
    () => decodeNpy(i8, 'c.npy'),
    /c\.npy: .*dtype '<i8' is not supported; supported: <f4, <f8, \|u1, <u2/,
  );
});
