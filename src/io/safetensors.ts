/**
 * The safetensors format: an 8-byte little-endian header length, a JSON header mapping each
 * tensor name to {dtype, shape, data_offsets}, then the raw little-endian bytes.
 * Decodes F32/F16/BF16 (widened to float32) plus I64/I32 (as int32); writes F32, or F16 when
 * asked. Raw access (SafetensorsFile, writeSafetensorsRaw) moves the bytes of any dtype as they
 * are, for bit-exact format conversions.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { open, rename, unlink, writeFile } from 'node:fs/promises';
import { UserError } from '../errors.js';
import { bfloat16ToFloat32, halfToFloat32 } from './half.js';

export type SafetensorsDtype = 'F32' | 'F16' | 'BF16' | 'I64' | 'I32';

/** Every dtype raw access moves (the safetensors names). */
export type RawDtype = SafetensorsDtype | 'F64' | 'I16' | 'I8' | 'U8' | 'BOOL';

export const DTYPE_BYTES: Readonly<Record<RawDtype, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

export interface RawTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  /** Values widened to float32 (floats) or int32 (integers). */
  data: Float32Array | Int32Array;
}

export interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** The reference implementation's bound on the JSON header (safetensors' N_MAX). */
const MAX_HEADER_BYTES = 100_000_000;

const BYTES: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4 };

function corrupt(file: string, what: string): UserError {
  return new UserError(`${file}: not a valid safetensors file: ${what}`, {
    hint: 'the file is truncated or corrupt; delete it and download or export it again',
  });
}

/** Reads only the header (names, dtypes, shapes) of a safetensors file. */
export async function readSafetensorsHeader(file: string): Promise<{
  entries: Record<string, HeaderEntry>;
  metadata: Record<string, string>;
  dataStart: number;
}> {
  const handle = await open(file, 'r').catch((error: NodeJS.ErrnoException) => {
    throw new UserError(`${file}: cannot open (${error.code ?? error.message})`);
  });
  try {
    const { size } = await handle.stat();
    if (size < 8) throw corrupt(file, `only ${size} bytes`);
    const lengthBytes = Buffer.alloc(8);
    await handle.read(lengthBytes, 0, 8, 0);
    const headerLength = Number(lengthBytes.readBigUInt64LE(0));
    if (headerLength <= 0 || 8 + headerLength > size)
      throw corrupt(file, `header length ${headerLength} exceeds file size ${size}`);
    if (headerLength > MAX_HEADER_BYTES)
      throw corrupt(
        file,
        `header length ${headerLength} exceeds the format's limit of ${MAX_HEADER_BYTES}`,
      );
    const headerBytes = Buffer.alloc(headerLength);
    await handle.read(headerBytes, 0, headerLength, 8);
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(headerBytes.toString('utf8')) as Record<string, unknown>;
    } catch {
      throw corrupt(file, 'header is not JSON');
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw corrupt(file, 'header is not a JSON object');
    const { __metadata__: metadata = {}, ...entries } = parsed;
    const dataStart = 8 + headerLength;
    for (const [name, entry] of Object.entries(entries as Record<string, HeaderEntry>)) {
      if (!isHeaderEntry(entry))
        throw corrupt(
          file,
          `tensor "${name}" needs {dtype, shape: [int...], data_offsets: [begin, end]}, got ${JSON.stringify(entry).slice(0, 120)}`,
        );
      const [begin, end] = entry.data_offsets;
      const bytes = DTYPE_BYTES[entry.dtype as RawDtype];
      const count = entry.shape.reduce((a, b) => a * b, 1);
      if (bytes === undefined)
        throw new UserError(
          `${file}: tensor "${name}" has dtype ${entry.dtype}; supported: ${Object.keys(DTYPE_BYTES).join(', ')}`,
        );
      if (end - begin !== count * bytes)
        throw corrupt(
          file,
          `tensor "${name}" spans ${end - begin} bytes, shape [${entry.shape}] ${entry.dtype} needs ${count * bytes}`,
        );
      if (dataStart + end > size)
        throw corrupt(
          file,
          `tensor "${name}" ends at byte ${dataStart + end}, past the end of the file (${size} bytes)`,
        );
    }
    return {
      entries: entries as Record<string, HeaderEntry>,
      metadata: metadata as Record<string, string>,
      dataStart,
    };
  } finally {
    await handle.close();
  }
}

function isHeaderEntry(entry: unknown): entry is HeaderEntry {
  const e = entry as Partial<HeaderEntry> | null;
  const isIndex = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
  return (
    typeof e === 'object' &&
    e !== null &&
    typeof e.dtype === 'string' &&
    Array.isArray(e.shape) &&
    e.shape.every(isIndex) &&
    Array.isArray(e.data_offsets) &&
    e.data_offsets.length === 2 &&
    e.data_offsets.every(isIndex) &&
    e.data_offsets[0] <= e.data_offsets[1]
  );
}

/**
 * Decodes little-endian bytes that start at offset 0 of their own ArrayBuffer (so views are
 * aligned): floats widened to float32, integers to int32 (I64 checked to fit).
 */
export function decode(
  dtype: SafetensorsDtype,
  aligned: Uint8Array,
  what: string,
): Float32Array | Int32Array {
  const count = aligned.length / BYTES[dtype];
  switch (dtype) {
    case 'F32':
      return new Float32Array(aligned.buffer);
    case 'F16':
      return halfToFloat32(new Uint16Array(aligned.buffer));
    case 'BF16':
      return bfloat16ToFloat32(new Uint16Array(aligned.buffer));
    case 'I32':
      return new Int32Array(aligned.buffer);
    case 'I64': {
      const longs = new BigInt64Array(aligned.buffer);
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) {
        out[i] = Number(longs[i]);
        if (BigInt(out[i]) !== longs[i])
          throw new UserError(`${what}: I64 value ${longs[i]} at index ${i} does not fit in int32`);
      }
      return out;
    }
  }
}

/**
 * Reads every tensor of a safetensors file, one tensor at a time straight into its own buffer:
 * no whole-file copy (peak memory ≈ the decoded tensors) and no 2 GiB readFile limit.
 */
export async function readSafetensors(
  file: string,
): Promise<{ tensors: Map<string, RawTensor>; metadata: Record<string, string> }> {
  const st = await SafetensorsFile.open(file);
  const tensors = new Map<string, RawTensor>();
  for (const name of Object.keys(st.entries)) tensors.set(name, st.readTensorSync(name));
  return { tensors, metadata: { ...st.metadata } };
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 → IEEE half bits, rounding to nearest even like torch's `.half()` and numpy. */
function floatToHalf(value: number): number {
  f32[0] = value;
  const bits = u32[0];
  const sign = (bits >>> 16) & 0x8000;
  const exponent = ((bits >>> 23) & 0xff) - 127 + 15;
  const mantissa = bits & 0x7fffff;
  if (((bits >>> 23) & 0xff) === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  if (exponent >= 0x1f) return sign | 0x7c00;
  let half: number;
  let rest: number;
  let halfway: number;
  if (exponent <= 0) {
    if (exponent < -10) return sign; // below half the smallest subnormal
    const shift = 14 - exponent; // subnormal: value / 2^-24 = (1.mantissa) · 2^(exponent - 14)
    const full = mantissa | 0x800000;
    half = full >>> shift;
    rest = full & ((1 << shift) - 1);
    halfway = 1 << (shift - 1);
  } else {
    half = (exponent << 10) | (mantissa >>> 13);
    rest = mantissa & 0x1fff;
    halfway = 0x1000;
  }
  // A carry out of the mantissa correctly bumps the exponent (up to 0x7c00 = infinity).
  if (rest > halfway || (rest === halfway && half & 1)) half++;
  return sign | half;
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
    if (count !== data.length)
      throw new Error(
        `tensor "${name}": shape [${shape}] holds ${count} values, got ${data.length}`,
      );
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
      for (let i = 0; i < data.length; i++, position += 2)
        out.writeUInt16LE(floatToHalf(data[i]), position);
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

/** A safetensors file opened for raw reads: the header, and any tensor's bytes on demand. */
export class SafetensorsFile {
  private constructor(
    readonly file: string,
    readonly entries: Readonly<Record<string, HeaderEntry>>,
    readonly metadata: Readonly<Record<string, string>>,
    private readonly dataStart: number,
  ) {}

  static async open(file: string): Promise<SafetensorsFile> {
    const { entries, metadata, dataStart } = await readSafetensorsHeader(file);
    return new SafetensorsFile(file, entries, metadata, dataStart);
  }

  /**
   * One tensor, decoded, read synchronously: a model's load converts its weights tensor by
   * tensor, so only the one being converted needs to be in memory as raw values.
   */
  readTensorSync(name: string): RawTensor {
    const entry = this.entries[name];
    if (!entry) throw new UserError(`${this.file}: no tensor "${name}"`);
    const dtype = entry.dtype as SafetensorsDtype;
    if (BYTES[dtype] === undefined)
      throw new UserError(
        `${this.file}: tensor "${name}" has dtype ${entry.dtype}; supported: ${Object.keys(BYTES).join(', ')}`,
      );
    const [begin, end] = entry.data_offsets;
    const bytes = new Uint8Array(end - begin);
    const fd = openSync(this.file, 'r');
    try {
      for (let done = 0; done < bytes.length;) {
        const read = readSync(fd, bytes, done, bytes.length - done, this.dataStart + begin + done);
        if (read === 0)
          throw corrupt(
            this.file,
            `tensor "${name}" is cut short (the file shrank while being read)`,
          );
        done += read;
      }
    } finally {
      closeSync(fd);
    }
    return {
      dtype,
      shape: entry.shape,
      data: decode(dtype, bytes, `${this.file}: tensor "${name}"`),
    };
  }

  /** The little-endian bytes of one tensor (in a buffer of its own, so typed views align). */
  async bytes(name: string): Promise<Uint8Array> {
    const entry = this.entries[name];
    if (!entry) throw new UserError(`${this.file}: no tensor "${name}"`);
    const [begin, end] = entry.data_offsets;
    const out = new Uint8Array(end - begin);
    const handle = await open(this.file, 'r');
    try {
      for (let done = 0; done < out.length;) {
        const { bytesRead } = await handle.read(
          out,
          done,
          out.length - done,
          this.dataStart + begin + done,
        );
        if (bytesRead === 0) throw corrupt(this.file, `tensor "${name}" is cut short`);
        done += bytesRead;
      }
    } finally {
      await handle.close();
    }
    return out;
  }
}

/** One tensor to write raw: its bytes are fetched only when its turn comes. */
export interface RawTensorSource {
  dtype: RawDtype;
  shape: number[];
  bytes: () => Promise<Uint8Array>;
}

/**
 * Writes tensors of any dtype as they are (names sorted, data 8-byte aligned) one at a time, so
 * peak memory is the largest tensor; a temp file renamed into place, so a crash never leaves
 * half a file under `file`.
 */
export async function writeSafetensorsRaw(
  file: string,
  tensors: ReadonlyMap<string, RawTensorSource>,
  metadata?: Record<string, string>,
): Promise<void> {
  const names = [...tensors.keys()].sort();
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const name of names) {
    const { dtype, shape } = tensors.get(name)!;
    const length = shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype];
    header[name] = { dtype, shape, data_offsets: [offset, offset + length] };
    offset += length;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, 0x20)]);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  const temp = `${file}.tmp-${process.pid}-${Date.now()}`;
  const handle = await open(temp, 'w');
  try {
    await handle.write(prefix);
    await handle.write(json);
    for (const name of names) {
      const { dtype, shape, bytes } = tensors.get(name)!;
      const data = await bytes();
      const expected = shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype];
      if (data.length !== expected)
        throw new Error(
          `tensor "${name}": [${shape}] ${dtype} needs ${expected} bytes, got ${data.length}`,
        );
      await handle.write(data);
    }
    await handle.sync();
  } catch (error) {
    await handle.close();
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  await handle.close();
  await rename(temp, file);
}
