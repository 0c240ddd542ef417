/**
 * Image I/O for the datasets: decoding (sharp for PNG/JPEG/TIFF, our own BMP decoder),
 * PIL-exact resizing, CLIP normalisation, mask binarisation, PNG writing.
 */
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { UserError } from '../errors.js';
import { decodeBmp, isBmp } from './bmp.js';
import type { GrayImage, RgbImage } from './image-types.js';
import { resizeU8, type ResampleFilter } from './resample.js';

export type { GrayImage, RgbImage } from './image-types.js';

export const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073] as const;
export const CLIP_STD = [0.26862954, 0.26130258, 0.27577711] as const;

async function readBytes(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    throw new UserError(
      `${path}: cannot read image (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
    );
  }
}

/** Decodes any supported image (PNG, JPEG, TIFF, BMP) to 8-bit RGB; gray becomes R=G=B, alpha is dropped. */
export async function readImageRgb(path: string): Promise<RgbImage> {
  const bytes = await readBytes(path);
  if (isBmp(bytes)) return decodeBmp(bytes, path);
  try {
    const { data, info } = await sharp(bytes, { failOn: 'warning' })
      .removeAlpha()
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels`);
    return {
      width: info.width,
      height: info.height,
      data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    };
  } catch (error) {
    throw new UserError(
      `${path}: cannot decode image (${(error as Error).message.split('\n')[0]})`,
      {
        hint: 'the file is truncated, corrupt or not a PNG/JPEG/TIFF/BMP image; re-export or remove it',
        cause: error,
      },
    );
  }
}

/** Reads only the width and height (fast: no pixel decoding). */
export async function readImageSize(path: string): Promise<{ width: number; height: number }> {
  const bytes = await readBytes(path);
  if (isBmp(bytes)) {
    if (bytes.length < 26)
      throw new UserError(`${path}: cannot decode BMP: only ${bytes.length} bytes`);
    const core = bytes.readUInt32LE(14) === 12;
    return core
      ? { width: bytes.readUInt16LE(18), height: Math.abs(bytes.readInt16LE(20)) }
      : { width: bytes.readInt32LE(18), height: Math.abs(bytes.readInt32LE(22)) };
  }
  try {
    const meta = await sharp(bytes).metadata();
    return { width: meta.width ?? 0, height: meta.height ?? 0 };
  } catch (error) {
    throw new UserError(
      `${path}: cannot read image header (${(error as Error).message.split('\n')[0]})`,
      { cause: error },
    );
  }
}

/** PIL's convert('L'): ITU-R 601-2 luma in 16-bit fixed point. */
export function rgbToGray(image: RgbImage): GrayImage {
  const { width, height, data } = image;
  const out = new Uint8Array(width * height);
  for (let i = 0, p = 0; i < out.length; i++, p += 3) {
    out[i] = (data[p] * 19595 + data[p + 1] * 38470 + data[p + 2] * 7471 + 0x8000) >>> 16;
  }
  return { width, height, data: out };
}

/** Resizes RGB pixels to width×height with PIL semantics (bicubic by default). */
export function resizeRgb(
  image: RgbImage,
  width: number,
  height: number,
  filter: ResampleFilter = 'bicubic',
): RgbImage {
  return {
    width,
    height,
    data: resizeU8(image.data, image.width, image.height, 3, width, height, filter),
  };
}

/**
 * CLIP normalisation of 8-bit RGB to a channel-first float tensor.
 * @param image [H, W, 3] bytes
 * @returns [3, H, W] values ((v / 255) - mean) / std
 */
export function normalizeClip(image: RgbImage): Float32Array {
  const plane = image.width * image.height;
  const out = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    const lut = new Float32Array(256);
    for (let v = 0; v < 256; v++) lut[v] = (Math.fround(v / 255) - CLIP_MEAN[c]) / CLIP_STD[c];
    const base = c * plane;
    for (let i = 0, p = c; i < plane; i++, p += 3) out[base + i] = lut[image.data[p]];
  }
  return out;
}

/**
 * The test-time image transform of VCP-CLIP: decode, resize to S×S (PIL bicubic, aspect
 * ratio not kept), CLIP-normalise.
 * @returns [3, S, S] float32, channel-first
 */
export async function loadImageTensorData(path: string, size: number): Promise<Float32Array> {
  return normalizeClip(resizeRgb(await readImageRgb(path), size, size, 'bicubic'));
}

/**
 * Binarises a mask the way the public VCP-CLIP loader does: any non-zero gray level is
 * foreground (255), then torchvision Resize((S, S)) (its default: PIL bilinear) and
 * "> 0.5" after ToTensor's /255, i.e. a resized value ≥ 128.
 * @returns [S, S] of 0/1
 */
export function binarizeMask(gray: GrayImage, size: number): Uint8Array {
  const binary = new Uint8Array(gray.data.length);
  for (let i = 0; i < binary.length; i++) binary[i] = gray.data[i] > 0 ? 255 : 0;
  const resized = resizeU8(binary, gray.width, gray.height, 1, size, size, 'bilinear');
  for (let i = 0; i < resized.length; i++) resized[i] = resized[i] > 127.5 ? 1 : 0;
  return resized;
}

/** Loads a ground-truth mask resized to S×S and binarised; `null` (a good image) gives zeros. */
export async function loadMaskData(path: string | null, size: number): Promise<Uint8Array> {
  if (path === null) return new Uint8Array(size * size);
  return binarizeMask(rgbToGray(await readImageRgb(path)), size);
}

/** Writes 8-bit RGB ([H, W, 3]) as PNG. */
export async function writePngRgb(path: string, image: RgbImage): Promise<void> {
  await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
    .png({ compressionLevel: 6, adaptiveFiltering: false })
    .toFile(path);
}

/** Writes 8-bit gray ([H, W]) as PNG (masks: 0 / 255). */
export async function writePngGray8(path: string, image: GrayImage): Promise<void> {
  await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 1 } })
    .toColourspace('b-w')
    .png({ compressionLevel: 6, adaptiveFiltering: false })
    .toFile(path);
}

/** Writes 16-bit gray ([H, W] Uint16Array) as PNG, e.g. anomaly maps scaled to 0..65535. */
export async function writePngGray16(
  path: string,
  width: number,
  height: number,
  data: Uint16Array,
): Promise<void> {
  if (data.length !== width * height)
    throw new Error(`writePngGray16: ${data.length} values for ${width}×${height}`);
  await sharp(data, { raw: { width, height, channels: 1 } })
    .toColourspace('grey16')
    .png({ compressionLevel: 6 })
    .toFile(path);
}
