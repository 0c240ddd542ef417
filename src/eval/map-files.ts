/**
 * Anomaly maps and ground-truth masks on disk, for `vcp-exp metrics`.
 *
 * Layout: `<maps-dir>/<product>/<any/sub/path>/<name>.npy|.png`, one map per image; products
 * are the first directory level. Masks: `<masks-dir>/...png` (or .npy), nonzero = anomalous.
 * Matching rule: a mask belongs to the map whose path relative to `<maps-dir>`, without
 * extension, equals the mask's path relative to `<masks-dir>` without extension, after
 * dropping a trailing `_mask` from the mask's file name and reading a `ground_truth` directory
 * of the mask's path as `test` — so MVTec's `bottle/ground_truth/broken_large/000_mask.png`
 * matches `bottle/test/broken_large/000.npy`, and identical trees match trivially. A map
 * without a mask is a normal image (all-zero mask).
 *
 * Map values: float32 .npy as is; '<f8' rounded to float32 (the public code evaluates float32
 * maps); '|u1' / '<u2' .npy and 8/16-bit PNG scaled by 1/255 or 1/65535 (first channel).
 * 16-bit mask PNGs are read from their first channel.
 */
import { readdir, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import sharp from 'sharp';
import { UserError } from '../errors.js';
import { readNpy } from '../io/npy.js';

export interface Image2D<T> {
  data: T;
  height: number;
  width: number;
}

export interface MapEntry {
  /** Path relative to the maps directory, without extension (the matching key). */
  key: string;
  mapFile: string;
  /** Absent for normal images without a mask file. */
  maskFile?: string;
}

export interface ProductFiles {
  product: string;
  images: MapEntry[];
}

const MAP_EXTENSIONS = ['.npy', '.png'];

async function listFiles(root: string, extensions: readonly string[]): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && extensions.some((x) => e.name.toLowerCase().endsWith(x)))
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

async function requireDirectory(dir: string, role: string): Promise<void> {
  const info = await stat(dir).catch(() => undefined);
  if (!info?.isDirectory())
    throw new UserError(`${role} directory ${dir} does not exist or is not a directory`);
}

function withoutExtension(path: string): string {
  return path.replace(/\.[^./\\]+$/, '');
}

/** The matching key of a mask path (relative to the masks directory). */
export function maskKey(relativePath: string): string {
  const parts = withoutExtension(relativePath).split(sep);
  parts[parts.length - 1] = parts[parts.length - 1].replace(/_mask$/, '');
  return parts.map((p, i) => (p === 'ground_truth' && i < parts.length - 1 ? 'test' : p)).join('/');
}

/**
 * Pairs every map with its mask, grouped by product (sorted by name, images by path).
 * Masks that match no map are returned in `unmatchedMasks` (the caller warns).
 */
export async function pairMapsAndMasks(
  mapsDir: string,
  masksDir: string,
): Promise<{ products: ProductFiles[]; unmatchedMasks: string[] }> {
  await requireDirectory(mapsDir, 'maps');
  await requireDirectory(masksDir, 'masks');
  const masks = new Map<string, string>();
  for (const file of await listFiles(masksDir, ['.png', '.npy'])) {
    const key = maskKey(relative(masksDir, file));
    const previous = masks.get(key);
    if (previous)
      throw new UserError(`masks ${previous} and ${file} both match the map key "${key}"`, {
        hint: 'keep one mask per image',
      });
    masks.set(key, file);
  }
  const byProduct = new Map<string, MapEntry[]>();
  const seenKeys = new Map<string, string>();
  for (const file of await listFiles(mapsDir, MAP_EXTENSIONS)) {
    const rel = relative(mapsDir, file);
    const parts = rel.split(sep);
    if (parts.length < 2)
      throw new UserError(`map ${file} is not inside a product directory`, {
        hint: `put maps under ${join(mapsDir, '<product>')}/`,
      });
    const key = withoutExtension(parts.join('/'));
    const clash = seenKeys.get(key);
    if (clash)
      throw new UserError(`maps ${clash} and ${file} have the same name without extension`, {
        hint: 'keep one map per image (.npy or .png)',
      });
    seenKeys.set(key, file);
    const maskFile = masks.get(key);
    masks.delete(key);
    const list = byProduct.get(parts[0]) ?? [];
    list.push({ key, mapFile: file, maskFile });
    byProduct.set(parts[0], list);
  }
  if (byProduct.size === 0) throw new UserError(`no .npy or .png maps under ${mapsDir}`);
  const products = [...byProduct.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([product, images]) => ({ product, images }));
  return { products, unmatchedMasks: [...masks.values()] };
}

/**
 * Decodes a PNG to 16-bit samples. sharp converts to 8-bit sRGB by default, so 16-bit files
 * are read as one grey16 channel (their first channel) and 8-bit files as 8-bit samples.
 */
async function decodePng(
  file: string,
  firstChannelOnly: boolean,
): Promise<{ values: Uint16Array; max: number; height: number; width: number; channels: number }> {
  try {
    const meta = await sharp(file).metadata();
    const sixteen = meta.depth === 'ushort';
    let image = sharp(file);
    if (sixteen || firstChannelOnly) image = image.extractChannel(0);
    if (sixteen) image = image.toColourspace('grey16');
    const { data, info } = await image
      .raw({ depth: sixteen ? 'ushort' : 'uchar' })
      .toBuffer({ resolveWithObject: true });
    const values = sixteen
      ? Uint16Array.from({ length: data.length / 2 }, (_, k) => data.readUInt16LE(2 * k))
      : Uint16Array.from(data);
    return {
      values,
      max: sixteen ? 65535 : 255,
      height: info.height,
      width: info.width,
      channels: info.channels,
    };
  } catch (error) {
    throw new UserError(`${file}: cannot decode PNG (${(error as Error).message})`);
  }
}

function two(shape: number[], file: string): [number, number] {
  if (shape.length !== 2)
    throw new UserError(`${file}: expected a 2-D array (H, W), got shape (${shape.join(', ')})`);
  return [shape[0], shape[1]];
}

/** Reads one anomaly map as float32 (see the module comment for the value rules). */
export async function readMap(file: string): Promise<Image2D<Float32Array>> {
  if (file.toLowerCase().endsWith('.npy')) {
    const { dtype, shape, data } = await readNpy(file);
    const [height, width] = two(shape, file);
    const scale = dtype === '|u1' ? 1 / 255 : dtype === '<u2' ? 1 / 65535 : 1;
    const out = data instanceof Float32Array ? data : Float32Array.from(data, (v) => v * scale);
    return { data: out, height, width };
  }
  const png = await decodePng(file, true);
  const out = new Float32Array(png.height * png.width);
  for (let k = 0; k < out.length; k++) out[k] = png.values[k * png.channels] / png.max;
  return { data: out, height: png.height, width: png.width };
}

/** Reads one ground-truth mask: 1 where any (non-alpha) channel is nonzero. */
export async function readMask(file: string): Promise<Image2D<Uint8Array>> {
  if (file.toLowerCase().endsWith('.npy')) {
    const { shape, data } = await readNpy(file);
    const [height, width] = two(shape, file);
    return { data: Uint8Array.from(data, (v) => (v !== 0 ? 1 : 0)), height, width };
  }
  const png = await decodePng(file, false);
  const colours = png.channels === 2 || png.channels === 4 ? png.channels - 1 : png.channels;
  const out = new Uint8Array(png.height * png.width);
  for (let k = 0; k < out.length; k++) {
    for (let c = 0; c < colours; c++) if (png.values[k * png.channels + c] !== 0) out[k] = 1;
  }
  return { data: out, height: png.height, width: png.width };
}
