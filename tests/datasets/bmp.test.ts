import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeBmp } from '../../src/datasets/bmp.js';
import { UserError } from '../../src/errors.js';

// 16-bit BMPs (5-5-5, 5-6-5 bit-fields) scale channels to 8 bits: their expected values come
// from Pillow (tests/fixtures/datasets/image/rgb5*.bmp, checked in image-io.test.ts), not from
// a formula here.
interface Variant {
  bpp: 1 | 8 | 24 | 32;
  topDown: boolean;
  header?: 40 | 108 | 12;
  bitfields?: boolean;
}

const W = 5;
const H = 3;
// An RGB test pattern (5×3, odd width so every row needs padding) and, for palette
// variants, a palette made of those very colours.
const pattern: [number, number, number][] = Array.from({ length: W * H }, (_, i) => [
  (i * 53) % 256,
  (i * 97 + 11) % 256,
  (i * 31 + 200) % 256,
]);

/** A small independent BMP writer, to produce the layouts whose pixels need no scaling. */
function encode({ bpp, topDown, header = 40, bitfields = false }: Variant): {
  bytes: Buffer;
  expected: Uint8Array;
} {
  const expected = new Uint8Array(W * H * 3);
  const paletteSize = bpp === 1 ? 2 : bpp === 8 ? W * H : 0;
  const entry = header === 12 ? 3 : 4;
  const stride = Math.floor((bpp * W + 31) / 32) * 4;
  const masks = bitfields ? 12 : 0;
  const offset = 14 + header + (header === 40 ? masks : 0) + paletteSize * entry;
  const bytes = Buffer.alloc(offset + stride * H);
  bytes.write('BM', 0, 'latin1');
  bytes.writeUInt32LE(bytes.length, 2);
  bytes.writeUInt32LE(offset, 10);
  bytes.writeUInt32LE(header, 14);
  if (header === 12) {
    bytes.writeUInt16LE(W, 18);
    bytes.writeInt16LE(topDown ? -H : H, 20);
    bytes.writeUInt16LE(1, 22);
    bytes.writeUInt16LE(bpp, 24);
  } else {
    bytes.writeInt32LE(W, 18);
    bytes.writeInt32LE(topDown ? -H : H, 22);
    bytes.writeUInt16LE(1, 26);
    bytes.writeUInt16LE(bpp, 28);
    bytes.writeUInt32LE(bitfields ? 3 : 0, 30);
    if (bitfields) {
      // R in the low byte (unusual on purpose).
      const m = [0x000000ff, 0x0000ff00, 0x00ff0000];
      m.forEach((v, i) => bytes.writeUInt32LE(v, 54 + i * 4));
    }
  }
  const paletteAt = 14 + header + (header === 40 ? masks : 0);
  for (let i = 0; i < paletteSize; i++) {
    const [r, g, b] = bpp === 1 ? (i ? [250, 240, 230] : [5, 10, 15]) : pattern[i];
    bytes[paletteAt + i * entry] = b;
    bytes[paletteAt + i * entry + 1] = g;
    bytes[paletteAt + i * entry + 2] = r;
  }
  for (let y = 0; y < H; y++) {
    const row = offset + (topDown ? y : H - 1 - y) * stride;
    for (let x = 0; x < W; x++) {
      const i = y * W + x;
      let [r, g, b] = pattern[i];
      if (bpp === 1) {
        const bit = (x + y) & 1;
        if (bit) bytes[row + (x >> 3)] |= 0x80 >> (x & 7);
        [r, g, b] = bit ? [250, 240, 230] : [5, 10, 15];
      } else if (bpp === 8) bytes[row + x] = i;
      else if (bpp === 24) bytes.set([b, g, r], row + x * 3);
      else if (bpp === 32 && !bitfields) bytes.set([b, g, r, 77], row + x * 4);
      else bytes.writeUInt32LE((r | (g << 8) | (b << 16) | (77 << 24)) >>> 0, row + x * 4);
      expected.set([r, g, b], i * 3);
    }
  }
  return { bytes, expected };
}

const variants: Variant[] = [
  { bpp: 8, topDown: false },
  { bpp: 8, topDown: true },
  { bpp: 8, topDown: false, header: 12 },
  { bpp: 1, topDown: false },
  { bpp: 24, topDown: false },
  { bpp: 24, topDown: true },
  { bpp: 24, topDown: false, header: 108 },
  { bpp: 32, topDown: false },
  { bpp: 32, topDown: true, bitfields: true },
];

for (const v of variants) {
  test(`BMP ${v.bpp}-bit ${v.topDown ? 'top-down' : 'bottom-up'} header ${v.header ?? 40}${v.bitfields ? ' bitfields' : ''}`, () => {
    const { bytes, expected } = encode(v);
    const image = decodeBmp(bytes);
    assert.equal(image.width, W);
    assert.equal(image.height, H);
    assert.deepEqual(image.data, expected);
  });
}

test('a truncated BMP is a UserError naming the file and the missing bytes', () => {
  const { bytes } = encode({ bpp: 24, topDown: false });
  assert.throws(
    () => decodeBmp(bytes.subarray(0, bytes.length - 5), 'x.bmp'),
    (e: unknown) => e instanceof UserError && /^x\.bmp: .*truncated/.test(e.message),
  );
  assert.throws(() => decodeBmp(Buffer.from('BMxx'), 'y.bmp'), /y\.bmp/);
  const rle = Buffer.from(bytes);
  rle.writeUInt32LE(1, 30);
  assert.throws(() => decodeBmp(rle, 'z.bmp'), /unsupported compression 1/);
});
