/**
 * The NumPy .npy format (versions 1–3): magic "\x93NUMPY", version, header length, a Python
 * dict literal {'descr', 'fortran_order', 'shape'}, then the raw bytes. Reads and writes
 * little-endian '<f4', '<f8', '|u1' and '<u2' arrays in C order.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { UserError } from '../errors.js';

export type NpyDtype = '<f4' | '<f8' | '|u1' | '<u2';
export type NpyData = Float32Array | Float64Array | Uint8Array | Uint16Array;

export interface NpyArray {
  dtype: NpyDtype;
  shape: number[];
  data: NpyData;
}

const TYPES = {
  '<f4': Float32Array,
  '<f8': Float64Array,
  '|u1': Uint8Array,
  '<u2': Uint16Array,
} as const satisfies Record<NpyDtype, unknown>;
const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY

function invalid(source: string, what: string): UserError {
  return new UserError(`${source}: not a readable .npy file: ${what}`, {
    hint: "write maps with numpy.save(path, array.astype('<f4')) (2-D, C order)",
  });
}

/**
 * Parses .npy bytes.
 * @param source file name for error messages
 */
export function decodeNpy(bytes: Uint8Array, source: string): NpyArray {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 10 || !buf.subarray(0, 6).equals(MAGIC))
    throw invalid(source, 'missing the \\x93NUMPY magic');
  const major = buf[6];
  if (major < 1 || major > 3) throw invalid(source, `format version ${major} is not 1, 2 or 3`);
  const headerLength = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const headerStart = major === 1 ? 10 : 12;
  const dataStart = headerStart + headerLength;
  if (dataStart > buf.length) throw invalid(source, 'header runs past the end of the file');
  const header = buf.subarray(headerStart, dataStart).toString(major === 3 ? 'utf8' : 'latin1');
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined)
    throw invalid(
      source,
      `header ${JSON.stringify(header.trim())} lacks descr/fortran_order/shape`,
    );
  const dtype = (descr === '<u1' ? '|u1' : descr) as NpyDtype;
  const Type = TYPES[dtype];
  if (!Type)
    throw invalid(
      source,
      `dtype '${descr}' is not supported; supported: ${Object.keys(TYPES).join(', ')}`,
    );
  if (fortran === 'True') throw invalid(source, 'Fortran-order arrays are not supported');
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(Number);
  if (shape.some((d) => !Number.isInteger(d) || d < 0))
    throw invalid(source, `bad shape (${shapeText})`);
  const count = shape.reduce((a, b) => a * b, 1);
  const byteLength = count * Type.BYTES_PER_ELEMENT;
  if (dataStart + byteLength > buf.length)
    throw invalid(
      source,
      `shape (${shape.join(', ')}) needs ${byteLength} data bytes, the file has ${buf.length - dataStart}`,
    );
  const copy = new Uint8Array(byteLength); // aligned copy: the data offset need not be a multiple of 8
  copy.set(buf.subarray(dataStart, dataStart + byteLength));
  return { dtype, shape, data: new Type(copy.buffer) };
}

/** The .npy version 1.0 header (padded to a multiple of 64 bytes) for data written after it. */
export function npyHeader(dtype: NpyDtype, shape: readonly number[]): Buffer {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${dtype}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const prefix = Buffer.alloc(10);
  MAGIC.copy(prefix);
  prefix[6] = 1;
  prefix[7] = 0;
  prefix.writeUInt16LE(header.length, 8);
  return Buffer.concat([prefix, Buffer.from(header, 'latin1')]);
}

/** Serialises an array as .npy version 1.0. */
export function encodeNpy(data: NpyData, shape: readonly number[]): Buffer {
  const dtype = (Object.keys(TYPES) as NpyDtype[]).find((k) => data instanceof TYPES[k]);
  if (!dtype) throw new TypeError('encodeNpy: unsupported array type');
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length)
    throw new RangeError(
      `encodeNpy: shape (${shape.join(', ')}) holds ${count} values, got ${data.length}`,
    );
  return Buffer.concat([
    npyHeader(dtype, shape),
    Buffer.from(data.buffer, data.byteOffset, data.byteLength),
  ]);
}

export async function readNpy(file: string): Promise<NpyArray> {
  const bytes = await readFile(file).catch((error: NodeJS.ErrnoException) => {
    throw new UserError(`${file}: cannot read (${error.code ?? error.message})`);
  });
  return decodeNpy(bytes, file);
}

export async function writeNpy(
  file: string,
  data: NpyData,
  shape: readonly number[],
): Promise<void> {
  await writeFile(file, encodeNpy(data, shape));
}
