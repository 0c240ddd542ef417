import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { evaluateProduct, METRICS } from '../../src/eval/evaluate.js';
import { mapMaximum } from '../../src/eval/image.js';
import { maskKey } from '../../src/eval/map-files.js';
import { encodeNpy } from '../../src/io/npy.js';
import { collectPixels } from '../../src/eval/pixels.js';
import { fixture, near, unstack, type StoredArray } from '../eval/golden.js';

interface ProductCase {
  name: string;
  maps: StoredArray;
  masks: StoredArray;
  expected: Partial<Record<string, number | null>>;
}

const root = mkdtempSync(join(tmpdir(), 'vcp-metrics-'));
after(() => rmSync(root, { recursive: true, force: true }));
const { cases } = fixture<{ cases: ProductCase[] }>('products.json');
const golden = cases.find((c) => c.name === 'random blobs, 2 normal images') as ProductCase;

function write(file: string, bytes: Uint8Array): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, bytes);
}

/** A 16-bit greyscale PNG (sharp only writes 8-bit from raw input). */
function png16(values: Uint16Array, height: number, width: number): Buffer {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf: Buffer) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const out = Buffer.alloc(body.length + 8);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc(body), body.length + 4);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 16; // bit depth
  ihdr[9] = 0; // greyscale
  const raw = Buffer.alloc(height * (1 + 2 * width));
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      raw.writeUInt16BE(values[y * width + x], y * (1 + 2 * width) + 1 + 2 * x);
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([
    signature,
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

async function maskPng(mask: Uint8Array, height: number, width: number): Promise<Buffer> {
  return sharp(Buffer.from(mask.map((v) => v * 255)), { raw: { width, height, channels: 1 } })
    .png()
    .toBuffer();
}

function run(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['bin/vcp-exp.js', 'metrics', ...args], {
    encoding: 'utf8',
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

// Product "bottle": .npy maps in MVTec layout (normal images have no mask file).
const maps = unstack(golden.maps).images as Float32Array[];
const { images: masks, h, w } = unstack(golden.masks);
const pngMaps = maps.map((m) => Uint16Array.from(m, (v) => Math.round((v / 3) * 65535)));

test('setup: write maps (.npy, 16-bit PNG) and MVTec-style masks', async () => {
  for (let i = 0; i < maps.length; i++) {
    const anomalous = masks[i].some((v) => v !== 0);
    const defect = anomalous ? 'broken' : 'good';
    const name = String(i).padStart(3, '0');
    write(join(root, 'maps/bottle/test', defect, `${name}.npy`), encodeNpy(maps[i], [h, w]));
    write(join(root, 'maps/cable/test', defect, `${name}.png`), png16(pngMaps[i], h, w));
    if (!anomalous) continue;
    const png = await maskPng(masks[i] as Uint8Array, h, w);
    write(join(root, 'masks/bottle/ground_truth', defect, `${name}_mask.png`), png);
    write(join(root, 'masks/cable/ground_truth', defect, `${name}_mask.png`), png);
  }
});

test('mask keys: _mask suffix dropped, ground_truth read as test', () => {
  assert.equal(
    maskKey('bottle/ground_truth/broken_large/000_mask.png'),
    'bottle/test/broken_large/000',
  );
  assert.equal(maskKey('pcb1/test/bad/001.png'), 'pcb1/test/bad/001');
});

test('--json: .npy product equals the Python reference; 16-bit PNG product equals the same maps quantised', () => {
  const r = run(join(root, 'maps'), join(root, 'masks'), '--json');
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as {
    products: Record<string, unknown>[];
    mean: Record<string, number | null>;
    skipped: Record<string, number>;
  };
  assert.deepEqual(
    out.products.map((p) => p.product),
    ['bottle', 'cable'],
  );
  const [bottle, cable] = out.products;
  assert.equal(bottle.images, 6);
  assert.equal(bottle.anomalousImages, 4);
  for (const name of METRICS)
    near(
      bottle[name] as number,
      golden.expected[name === 'pro' ? 'proPaper' : name] as number,
      1e-12,
      `bottle ${name}`,
    );
  const quantised = pngMaps.map((m) => Float32Array.from(m, (v) => v / 65535));
  const expected = evaluateProduct({
    product: 'cable',
    pixels: collectPixels(quantised, masks as Uint8Array[], h, w),
    imageScores: quantised.map(mapMaximum),
    imageLabels: masks.map((m) => (m.some((v) => v !== 0) ? 1 : 0)),
  });
  for (const name of METRICS) assert.equal(cable[name], expected[name], `cable ${name}`);
  near(
    out.mean.pixelAuroc,
    ((bottle.pixelAuroc as number) + (cable.pixelAuroc as number)) / 2,
    1e-15,
    'mean',
  );
});

test('table output and --pro exact', () => {
  const r = run(join(root, 'maps'), join(root, 'masks'), '--pro', 'exact');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /PRO variant: exact/);
  assert.match(r.stdout, /^bottle\s+6\s+/m);
  assert.match(r.stdout, /^mean\s+12\s+/m);
  assert.match(
    r.stdout,
    new RegExp(
      `^bottle\\s+6\\s+${(100 * (golden.expected.pixelAuroc as number)).toFixed(2)}\\s+${(100 * (golden.expected.proExact as number)).toFixed(2)}\\s`,
      'm',
    ),
  );
});

test('errors name the file and exit non-zero', () => {
  const missing = run(join(root, 'nope'), join(root, 'masks'));
  assert.notEqual(missing.status, 0);
  assert.match(missing.stderr, /maps directory .*nope does not exist/);
  assert.match(
    run(join(root, 'maps'), join(root, 'masks'), '--pro', 'fast').stderr,
    /--pro: got "fast", expected one of paper, exact/,
  );

  write(join(root, 'bad/maps/p/test/x/000.npy'), encodeNpy(new Float32Array(6), [2, 3]));
  write(
    join(root, 'bad/masks/p/ground_truth/x/000_mask.npy'),
    encodeNpy(new Uint8Array(4), [2, 2]),
  );
  const mismatch = run(join(root, 'bad/maps'), join(root, 'bad/masks'));
  assert.notEqual(mismatch.status, 0);
  assert.match(mismatch.stderr, /000_mask\.npy: mask is 2×2 but map .*000\.npy is 2×3/);

  write(join(root, 'bad/maps/p/test/x/000.npy'), Buffer.from('not numpy'));
  const corrupt = run(join(root, 'bad/maps'), join(root, 'bad/masks'));
  assert.notEqual(corrupt.status, 0);
  assert.match(corrupt.stderr, /000\.npy: not a readable \.npy file/);
});
