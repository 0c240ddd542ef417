/**
 * Windows BMP decoder (libvips, hence sharp, has no BMP loader, and several public anomaly
 * datasets ship .bmp). Handles core/info/v4/v5 headers; 1/4/8-bit palettes (grayscale BMPs
 * are 8-bit palettes), 16/24/32-bit, BI_RGB and BI_BITFIELDS; bottom-up and top-down rows.
 * Alpha is dropped, as PIL's convert('RGB') does.
 */
import { UserError } from '../errors.js';
import type { RgbImage } from './image-types.js';

const BI_RGB = 0;
const BI_BITFIELDS = 3;
const BI_ALPHABITFIELDS = 6;

function fail(file: string, what: string): UserError {
  return new UserError(`${file}: cannot decode BMP: ${what}`, {
    hint: 'the file is truncated, corrupt or uses an unsupported BMP variant; re-export it as PNG',
  });
}

/** Extracts a channel selected by a bit mask and scales it to 0..255. */
function maskChannel(value: number, mask: number): number {
  if (mask === 0) return 0;
  let shift = 0;
  while (((mask >>> shift) & 1) === 0) shift++;
  const max = mask >>> shift;
  return Math.floor((((value & mask) >>> shift) * 255) / max); // integer division, as PIL
}

/** True when the bytes start with the BMP signature "BM". */
export function isBmp(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x42 && bytes[1] === 0x4d;
}

/** Decodes a BMP file's bytes to interleaved RGB. `file` only names it in errors. */
export function decodeBmp(bytes: Uint8Array, file = '<bmp>'): RgbImage {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (!isBmp(bytes)) throw fail(file, 'missing "BM" signature');
  if (buf.length < 26) throw fail(file, `only ${buf.length} bytes`);
  const pixelOffset = buf.readUInt32LE(10);
  const headerSize = buf.readUInt32LE(14);
  if (14 + headerSize > buf.length)
    throw fail(file, `header of ${headerSize} bytes exceeds the file`);
  let width: number;
  let rawHeight: number;
  let bpp: number;
  let compression = BI_RGB;
  let colorsUsed = 0;
  let paletteEntryBytes = 4;
  if (headerSize === 12) {
    width = buf.readUInt16LE(18);
    rawHeight = buf.readInt16LE(20);
    bpp = buf.readUInt16LE(24);
    paletteEntryBytes = 3;
  } else if (headerSize >= 40) {
    width = buf.readInt32LE(18);
    rawHeight = buf.readInt32LE(22);
    bpp = buf.readUInt16LE(28);
    compression = buf.readUInt32LE(30);
    colorsUsed = buf.readUInt32LE(46);
  } else {
    throw fail(file, `unknown header size ${headerSize}`);
  }
  const topDown = rawHeight < 0;
  const height = Math.abs(rawHeight);
  if (width <= 0 || height === 0) throw fail(file, `invalid size ${width}×${rawHeight}`);
  if (![1, 4, 8, 16, 24, 32].includes(bpp)) throw fail(file, `unsupported bit depth ${bpp}`);
  if (![BI_RGB, BI_BITFIELDS, BI_ALPHABITFIELDS].includes(compression)) {
    throw fail(
      file,
      `unsupported compression ${compression} (RLE/JPEG/PNG-in-BMP are not supported)`,
    );
  }

  let masks = bpp === 16 ? [0x7c00, 0x03e0, 0x001f] : [0xff0000, 0x00ff00, 0x0000ff];
  if (compression !== BI_RGB) {
    // Masks live inside v2+ headers, or right after a 40-byte info header.
    const at = 14 + 40;
    if (at + 12 > buf.length) throw fail(file, 'bit-field masks past the end of the file');
    masks = [buf.readUInt32LE(at), buf.readUInt32LE(at + 4), buf.readUInt32LE(at + 8)];
  }

  let palette: Uint8Array | undefined;
  if (bpp <= 8) {
    let at = 14 + headerSize;
    if (headerSize === 40 && compression === BI_BITFIELDS) at += 12;
    if (headerSize === 40 && compression === BI_ALPHABITFIELDS) at += 16;
    // Writers may store fewer than 2^bpp entries without saying so (core headers cannot):
    // the palette ends where the pixels start.
    const room = Math.floor((pixelOffset - at) / paletteEntryBytes);
    const count = Math.min(colorsUsed || 2 ** bpp, room > 0 ? room : 2 ** bpp);
    if (at + count * paletteEntryBytes > buf.length)
      throw fail(file, 'palette past the end of the file');
    palette = new Uint8Array(256 * 3);
    for (let i = 0; i < Math.min(count, 256); i++) {
      const p = at + i * paletteEntryBytes;
      palette[i * 3] = buf[p + 2];
      palette[i * 3 + 1] = buf[p + 1];
      palette[i * 3 + 2] = buf[p];
    }
  }

  const stride = Math.floor((bpp * width + 31) / 32) * 4;
  if (pixelOffset + stride * height > buf.length) {
    throw fail(
      file,
      `truncated: ${width}×${height}×${bpp}-bit pixels need ${pixelOffset + stride * height} bytes, file has ${buf.length}`,
    );
  }
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const row = pixelOffset + (topDown ? y : height - 1 - y) * stride;
    const out = y * width * 3;
    for (let x = 0; x < width; x++) {
      const o = out + x * 3;
      if (palette) {
        const bitOffset = x * bpp;
        const byte = buf[row + (bitOffset >> 3)];
        const index = bpp === 8 ? byte : (byte >> (8 - bpp - (bitOffset & 7))) & ((1 << bpp) - 1);
        data[o] = palette[index * 3];
        data[o + 1] = palette[index * 3 + 1];
        data[o + 2] = palette[index * 3 + 2];
      } else if (bpp === 24 || (bpp === 32 && compression === BI_RGB)) {
        const p = row + x * (bpp / 8);
        data[o] = buf[p + 2];
        data[o + 1] = buf[p + 1];
        data[o + 2] = buf[p];
      } else {
        const value = bpp === 16 ? buf.readUInt16LE(row + x * 2) : buf.readUInt32LE(row + x * 4);
        data[o] = maskChannel(value, masks[0]);
        data[o + 1] = maskChannel(value, masks[1]);
        data[o + 2] = maskChannel(value, masks[2]);
      }
    }
  }
  return { width, height, data };
}
