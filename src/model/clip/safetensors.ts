/**
 * The safetensors format: an 8-byte little-endian header length, a JSON header mapping each
 * tensor name to {dtype, shape, data_offsets}, then the raw little-endian bytes.
 * Reads F32/F16/BF16 (widened to float32) plus I64/I32 (as int32); writes F32, or F16 when asked.
 */
import { open, readFile, rename, writeFile } from 'node:fs/promises';
import { UserError } from '../../errors.js';

export type SafetensorsDtype = 'F32' | 'F16' | 'BF16' | 'I64' | 'I32';

export interface RawTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  /** Values widened to float32 (floats) or int32 (integers). */
  data: Float32Array | Int32Array;
}

interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

const BYTES: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4 };

function corrupt(file: string, what: string): UserError {
  return new UserError(`${file}: not a valid safetensors file: ${what}`, {
    hint: 'the file is truncated or corrupt; delete it and download or export it again',
  });
}

/** Reads only the header (names, dtypes, shapes) of a safetensors file. */
export async function readSafetensorsHeader(file: string): Promise<{ entries: Record<string, HeaderEntry>; metadata: Record<string, string>; dataStart: number; }> {
  const handle = await open(file, 'r').catch((error: NodeJS.ErrnoException) => {
    throw new UserError(`${file}: cannot open (${error.code ?? error.message})`);
  });
  try {
    const { size } = await handle.stat();
    if (size < 8) throw corrupt(file, `only ${size} bytes`);
    const lengthBytes = Buffer.alloc(8);
    await handle.read(lengthBytes, 0, 8, 0);
    const headerLength = Number(lengthBytes.readBigUInt64LE(0));
    if (headerLength <= 0 || 8 + headerLength > size) throw corrupt(file, `header length ${headerLength} exceeds file size ${size}`);
    const headerBytes = Buffer.alloc(headerLength);
    await handle.read(headerBytes, 0, headerLength, 8);
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(headerBytes.toString('utf8')) as Record<string, unknown>;
    } catch {
      throw corrupt(file, 'header is not JSON');
    }
    const { __metadata__: metadata = {}, ...entries } = parsed;
    const dataStart = 8 + headerLength;
    for (const [name, entry] of Object.entries(entries as Record<string, HeaderEntry>)) {
      const [begin, end] = entry.data_offsets ?? [];
      const bytes = BYTES[entry.dtype as SafetensorsDtype];
      const count = entry.shape.reduce((a, b) => a * b, 1);
      if (bytes === undefined) throw new UserError(`${file}: tensor "${name}" has dtype ${entry.dtype}; supported: ${Object.keys(BYTES).join(', ')}`);
      if (end - begin !== count * bytes) throw corrupt(file, `tensor "${name}" spans ${end - begin} bytes, shape [${entry.shape}] ${entry.dtype} needs ${count * bytes}`);
      if (dataStart + end > size) throw corrupt(file, `tensor "${name}" ends at byte ${dataStart + end}, past the end of the file (${size} bytes)`);
    }
    return { entries: entries as Record<string, HeaderEntry>, metadata: metadata as Record<string, string>, dataStart };
  } finally {
    await handle.close();
  }
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

function decode(dtype: SafetensorsDtype, bytes: Buffer): Float32Array | Int32Array {
  // Copy into an aligned buffer: a Buffer slice may start at any byte offset.
  const aligned = new Uint8Array(bytes.length);
  aligned.set(bytes);
  const count = bytes.length / BYTES[dtype];
  switch (dtype) {
    case 'F32':
      return new Float32Array(aligned.buffer);
    case 'F16': {
      const halves = new Uint16Array(aligned.buffer);
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = halfToFloat(halves[i]);
      return out;
    }
    case 'BF16': {
      const halves = new Uint16Array(aligned.buffer);
      const words = new Uint32Array(count);
      for (let i = 0; i < count; i++) words[i] = halves[i] << 16;
      return new Float32Array(words.buffer);
    }
    case 'I32':
      return new Int32Array(aligned.buffer);
    case 'I64': {
      const longs = new BigInt64Array(aligned.buffer);
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = Number(longs[i]);
      return out;
    }
  }
}

/** Reads every tensor of a safetensors file. */
export async function readSafetensors(file: string): Promise<{ tensors: Map<string, RawTensor>; metadata: Record<string, string> }> {
  const { entries, metadata, dataStart } = await readSafetensorsHeader(file);
  const bytes = await readFile(file);
  const tensors = new Map<string, RawTensor>();
  for (const [name, entry] of Object.entries(entries)) {
    const dtype = entry.dtype as SafetensorsDtype;
    const [begin, end] = entry.data_offsets;
    tensors.set(name, { dtype, shape: entry.shape, data: decode(dtype, bytes.subarray(dataStart + begin, dataStart + end)) });
  }
  return { tensors, metadata };
}

function floatToHalf(value: number): number {
  const f32 = new Float32Array([value]);
  const bits = new Uint32Array(f32.buffer)[0];
  const sign = (bits >>> 16) & 0x8000;
  const exponent = ((bits >>> 23) & 0xff) - 127 + 15;
  const mantissa = bits & 0x7fffff;
  if (((bits >>> 23) & 0xff) === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  if (exponent >= 0x1f) return sign | 0x7c00;
  if (exponent <= 0) {
    if (exponent < -10) return sign;
    const m = (mantissa | 0x800000) >> (1 - exponent);
    return sign | ((m + 0x1000) >> 13);
  }
  return sign | ((exponent << 10) + ((mantissa + 0x1000) >> 13));
}

/**
 * Serialises tensors (float32 data) to safetensors bytes, sorted by name as the reference
 * implementation does; `dtype` F16 halves the size (for caches, not for learned weights).
 */
export function encodeSafetensors(
  tensors: Map<string, { shape: number[]; data: Float32Array }>,
  options: { dtype?: 'F32' | 'F16'; metadata?: Record<string, string> } = {},
): Buffer {
  const dtype = options.dtype ?? 'F32';
  const names = [...tensors.keys()].sort();
  const header: Record<string, unknown> = {};
  if (options.metadata) header.__metadata__ = options.metadata;
  let offset = 0;
  for (const name of names) {
    const { shape, data } = tensors.get(name)!;
    const count = shape.reduce((a, b) => a * b, 1);
    if (count !== data.length) throw new Error(`tensor "${name}": shape [${shape}] holds ${count} values, got ${data.length}`);
    header[name] = { dtype, shape, data_offsets: [offset, offset + count * BYTES[dtype]] };
    offset += count * BYTES[dtype];
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const padding = (8 - (json.length % 8)) % 8; // keep the data 8-byte aligned
  json = Buffer.concat([json, Buffer.alloc(padding, 0x20)]);
  const out = Buffer.alloc(8 + json.length + offset);
  out.writeBigUInt64LE(BigInt(json.length), 0);
  json.copy(out, 8);
  let position = 8 + json.length;
  for (const name of names) {
    const { data } = tensors.get(name)!;
    if (dtype === 'F32') {
      Buffer.from(data.buffer, data.byteOffset, data.byteLength).copy(out, position);
      position += data.byteLength;
    } else {
      for (let i = 0; i < data.length; i++, position += 2) out.writeUInt16LE(floatToHalf(data[i]), position);
    }
  }
  return out;
}

/** Writes a safetensors file atomically (temp file + rename): a crash never leaves half a file. */
export async function writeSafetensors(
  file: string,
  tensors: Map<string, { shape: number[]; data: Float32Array }>,
  options: { dtype?: 'F32' | 'F16'; metadata?: Record<string, string> } = {},
): Promise<void> {
  const temp = `${file}.tmp-${process.pid}-${Date.now()}`;
  await writeFile(temp, encodeSafetensors(tensors, options));
  await rename(temp, file);
}
