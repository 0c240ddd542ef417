import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import {
  loadImageTensorData,
  loadMaskData,
  readImageRgb,
  resizeRgb,
  writePngGray16,
  writePngRgb,
} from '../../src/datasets/image-io.js';
import { UserError } from '../../src/errors.js';
import { readNpy } from './npy.js';
import { need, pillowPython } from '../requirements.js';

const FIXTURES = new URL('../fixtures/datasets/image/', import.meta.url).pathname;
const manifest = JSON.parse(readFileSync(join(FIXTURES, 'manifest.json'), 'utf8')) as {
  resize: { source: string; size: number; expected: string }[];
  mask: { source: string; size: number; expected: string }[];
  decode: { source: string; expected: string }[];
};

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

// Max abs error against Pillow's Image.resize((S, S), BICUBIC), in [0, 255] units: 0 — our
// resampler reproduces Pillow's fixed-point arithmetic exactly (src/datasets/resample.ts).
for (const { source, size, expected } of manifest.resize) {
  test(`bicubic resize of ${source} to ${size}² equals PIL exactly (max abs error 0/255)`, async () => {
    const image = await readImageRgb(join(FIXTURES, source));
    const out = resizeRgb(image, size, size);
    const ref = readNpy(join(FIXTURES, expected));
    assert.deepEqual(ref.shape, [size, size, 3]);
    assert.equal(maxAbsDiff(out.data, ref.data), 0);
  });
}

test('sharp cubic resize is measurably further from PIL than ours (why we resample ourselves)', async () => {
  const path = join(FIXTURES, 'src_rgb.png');
  const ref = readNpy(join(FIXTURES, 'src_rgb_bicubic160.npy'));
  const viaSharp = await sharp(path)
    .resize(160, 160, { fit: 'fill', kernel: 'cubic' })
    .raw()
    .toBuffer();
  const error = maxAbsDiff(viaSharp, ref.data);
  console.log(`# sharp cubic 150×100 → 160² vs PIL bicubic: max abs error ${error}/255 (ours: 0)`);
  assert.ok(error > 0);
});

test('loadImageTensorData: CLIP-normalised CHW matches torchvision ToTensor+Normalize', async () => {
  const out = await loadImageTensorData(join(FIXTURES, 'src_rgb.png'), 64);
  const ref = readNpy(join(FIXTURES, 'src_rgb_clip64.npy'));
  assert.deepEqual(ref.shape, [3, 64, 64]);
  assert.ok(maxAbsDiff(out, ref.data) < 1e-6);
});

for (const { source, size, expected } of manifest.mask) {
  test(`mask ${source} → ${size}²: bilinear resize then > 0.5 equals the torchvision pipeline`, async () => {
    const out = await loadMaskData(join(FIXTURES, source), size);
    const ref = readNpy(join(FIXTURES, expected));
    assert.equal(maxAbsDiff(out, ref.data), 0);
    assert.ok(out.some((v) => v === 1) && out.some((v) => v === 0));
  });
}

test('a null mask (good image) is all zeros', async () => {
  const out = await loadMaskData(null, 8);
  assert.equal(out.length, 64);
  assert.ok(out.every((v) => v === 0));
});

// Decoding (16-bit BMPs included: packed by hand, read by Pillow): lossless formats must match
// PIL exactly; JPEG decoders (mozjpeg in sharp, libjpeg-turbo in Pillow) may differ by a few
// levels in IDCT rounding.
for (const { source, expected } of manifest.decode) {
  const tolerance = source.endsWith('.jpg') ? 3 : 0;
  test(`decode ${source} to RGB like PIL convert('RGB') (max abs error ≤ ${tolerance})`, async () => {
    const image = await readImageRgb(join(FIXTURES, source));
    const ref = readNpy(join(FIXTURES, expected));
    assert.deepEqual([image.height, image.width, 3], ref.shape);
    const error = maxAbsDiff(image.data, ref.data);
    if (tolerance > 0) console.log(`# ${source}: max abs decode error vs PIL ${error}/255`);
    assert.ok(error <= tolerance, `max abs error ${error}`);
  });
}

test('a truncated PNG raises a UserError naming the file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vcp-io-'));
  const bytes = readFileSync(join(FIXTURES, 'src_rgb.png'));
  const broken = join(dir, 'broken.png');
  writeFileSync(broken, bytes.subarray(0, bytes.length >> 1));
  await assert.rejects(
    readImageRgb(broken),
    (e: unknown) => e instanceof UserError && e.message.includes(broken),
  );
  await assert.rejects(
    readImageRgb(join(dir, 'absent.png')),
    (e: unknown) => e instanceof UserError && e.message.includes('ENOENT'),
  );
});

test('writePngRgb / writePngGray16: Pillow reads back exactly the values written, 16 bits kept', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vcp-io-'));
  const rgb = {
    width: 5,
    height: 3,
    data: Uint8Array.from({ length: 45 }, (_, i) => (i * 37) % 256),
  };
  await writePngRgb(join(dir, 'a.png'), rgb);
  assert.deepEqual((await readImageRgb(join(dir, 'a.png'))).data, rgb.data);
  const values = Uint16Array.from({ length: 12 }, (_, i) => i * 5000 + 7);
  await writePngGray16(join(dir, 'g.png'), 4, 3, values);
  const python = need(t, 'pillow-python', pillowPython());
  if (!python) return;
  const script = `import json, sys
import numpy as np
from PIL import Image
out = {}
for name in sys.argv[1:]:
    with Image.open(name) as im:
        out[name] = {"mode": im.mode, "size": list(im.size), "values": np.asarray(im).ravel().tolist()}
print(json.dumps(out))`;
  const [a, g] = [join(dir, 'a.png'), join(dir, 'g.png')];
  const r = spawnSync(python, ['-c', script, a, g], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const read = JSON.parse(r.stdout) as Record<
    string,
    { mode: string; size: number[]; values: number[] }
  >;
  assert.deepEqual(read[a], { mode: 'RGB', size: [5, 3], values: Array.from(rgb.data) });
  assert.match(read[g].mode, /^I(;16)?$/, 'a 16-bit grayscale PNG');
  assert.deepEqual(read[g].size, [4, 3]);
  assert.deepEqual(read[g].values, Array.from(values));
});
