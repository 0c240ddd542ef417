/**
 * A read-only zip archive opened by its central directory (zip64 included); entries are read
 * one at a time through the file handle (a 1.7 GB torch.save archive is never read whole),
 * stored or deflated, CRC-checked; every offset and size is checked against the file.
 */
import { constants } from 'node:buffer';
import { open, type FileHandle } from 'node:fs/promises';
import { inflateRawSync } from 'node:zlib';
import * as zlib from 'node:zlib';
import { UserError } from '../errors.js';

export interface ZipEntry {
  name: string;
  /** 0 = stored, 8 = deflated. */
  method: number;
  compressedSize: number;
  size: number;
  crc32: number;
  localHeaderOffset: number;
}

const EOCD = 0x06054b50;
const EOCD64 = 0x06064b50;
const EOCD64_LOCATOR = 0x07064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const MAX_ENTRIES = 1_000_000;

function corrupt(file: string, what: string): UserError {
  return new UserError(`${file}: not a readable zip archive: ${what}`, {
    hint: 'the file is truncated or corrupt (or not a zip at all): delete it and download it again',
  });
}

export class ZipArchive {
  private constructor(
    readonly file: string,
    private readonly handle: FileHandle,
    readonly fileSize: number,
    readonly entries: ReadonlyMap<string, ZipEntry>,
    /** Where the central directory starts: no entry's data may reach it. */
    private readonly centralStart: number,
  ) {}

  static async open(file: string): Promise<ZipArchive> {
    const handle = await open(file, 'r').catch((error: NodeJS.ErrnoException) => {
      throw new UserError(`${file}: cannot open (${error.code ?? error.message})`);
    });
    try {
      const { size } = await handle.stat();
      const { entries, centralStart } = await readCentralDirectory(file, handle, size);
      return new ZipArchive(file, handle, size, entries, centralStart);
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  async close(): Promise<void> {
    await this.handle.close();
  }

  /** Byte offset of an entry's data in the file (after its local header), checked. */
  async dataOffset(entry: ZipEntry): Promise<number> {
    const header = await readExactly(this.handle, entry.localHeaderOffset, 30, this.file);
    if (header.readUInt32LE(0) !== LOCAL)
      throw corrupt(this.file, `entry "${entry.name}" has no local header`);
    const nameLength = header.readUInt16LE(26);
    const extraLength = header.readUInt16LE(28);
    const name = await readExactly(
      this.handle,
      entry.localHeaderOffset + 30,
      nameLength,
      this.file,
    );
    if (name.toString('utf8') !== entry.name)
      throw corrupt(this.file, `entry "${entry.name}" is named differently in its local header`);
    const start = entry.localHeaderOffset + 30 + nameLength + extraLength;
    if (start + entry.compressedSize > this.centralStart)
      throw corrupt(
        this.file,
        `entry "${entry.name}" (${entry.compressedSize} bytes at ${start}) runs into the central directory at ${this.centralStart}`,
      );
    return start;
  }

  /** The whole entry, decompressed and CRC-checked; refuses entries larger than `maxBytes`. */
  async read(entry: ZipEntry, maxBytes: number): Promise<Uint8Array> {
    // One Buffer holds an entry; deflate cannot expand more than 1032:1, so a larger claim is a lie.
    const limit = Math.min(
      maxBytes,
      constants.MAX_LENGTH,
      entry.method === 8 ? entry.compressedSize * 1032 : Infinity,
    );
    if (entry.size > limit)
      throw new UserError(
        `${this.file}: entry "${entry.name}" claims ${entry.size} bytes, more than the ${limit} that can be read for it`,
      );
    const start = await this.dataOffset(entry);
    const raw = await readExactly(this.handle, start, entry.compressedSize, this.file);
    let data: Uint8Array;
    if (entry.method === 0) {
      if (entry.compressedSize !== entry.size)
        throw corrupt(this.file, `stored entry "${entry.name}" has two different sizes`);
      data = raw;
    } else if (entry.method === 8) {
      try {
        data = inflateRawSync(raw, { maxOutputLength: Math.max(1, entry.size) });
      } catch (error) {
        throw corrupt(this.file, `entry "${entry.name}" does not inflate (${String(error)})`);
      }
      if (data.length !== entry.size)
        throw corrupt(
          this.file,
          `entry "${entry.name}" inflates to ${data.length} bytes, not ${entry.size}`,
        );
    } else {
      throw new UserError(
        `${this.file}: entry "${entry.name}" uses compression method ${entry.method}; only stored and deflated entries are read`,
      );
    }
    const crc = crc32(data);
    if (crc !== entry.crc32)
      throw corrupt(
        this.file,
        `entry "${entry.name}" fails its CRC-32 check (${crc.toString(16)} ≠ ${entry.crc32.toString(16)})`,
      );
    return data;
  }
}

async function readExactly(
  handle: FileHandle,
  position: number,
  length: number,
  file: string,
): Promise<Buffer> {
  const out = Buffer.alloc(length);
  for (let done = 0; done < length;) {
    const { bytesRead } = await handle.read(out, done, length - done, position + done);
    if (bytesRead === 0)
      throw corrupt(file, `ends at byte ${position + done}, ${length - done} bytes short`);
    done += bytesRead;
  }
  return out;
}

function safeNumber(value: bigint, file: string, what: string): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw corrupt(file, `${what} ${value} is too large`);
  return Number(value);
}

async function readCentralDirectory(
  file: string,
  handle: FileHandle,
  size: number,
): Promise<{ entries: Map<string, ZipEntry>; centralStart: number }> {
  if (size < 22) throw corrupt(file, `only ${size} bytes`);
  // The end record sits in the last 22 + 65535 (comment) bytes.
  const tailLength = Math.min(size, 22 + 0xffff);
  const tail = await readExactly(handle, size - tailLength, tailLength, file);
  let at = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) === EOCD && i + 22 + tail.readUInt16LE(i + 20) === tail.length) {
      at = i;
      break;
    }
  }
  if (at < 0) throw corrupt(file, 'no end-of-central-directory record (the file is cut short?)');
  const eocdOffset = size - tailLength + at;
  let count = tail.readUInt16LE(at + 10);
  let cdSize = tail.readUInt32LE(at + 12);
  let cdOffset = tail.readUInt32LE(at + 16);
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    if (eocdOffset < 20) throw corrupt(file, 'zip64 locator missing');
    const locator = await readExactly(handle, eocdOffset - 20, 20, file);
    if (locator.readUInt32LE(0) !== EOCD64_LOCATOR) throw corrupt(file, 'zip64 locator missing');
    const record64At = safeNumber(locator.readBigUInt64LE(8), file, 'zip64 record offset');
    if (record64At + 56 > eocdOffset) throw corrupt(file, 'zip64 record out of place');
    const record = await readExactly(handle, record64At, 56, file);
    if (record.readUInt32LE(0) !== EOCD64) throw corrupt(file, 'zip64 end record missing');
    count = safeNumber(record.readBigUInt64LE(32), file, 'entry count');
    cdSize = safeNumber(record.readBigUInt64LE(40), file, 'central directory size');
    cdOffset = safeNumber(record.readBigUInt64LE(48), file, 'central directory offset');
  }
  if (count > MAX_ENTRIES) throw corrupt(file, `${count} entries (more than ${MAX_ENTRIES})`);
  if (cdOffset + cdSize > eocdOffset)
    throw corrupt(file, `central directory (${cdSize} bytes at ${cdOffset}) overruns the end`);
  const cd = await readExactly(handle, cdOffset, cdSize, file);
  const entries = new Map<string, ZipEntry>();
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cd.length || cd.readUInt32LE(p) !== CENTRAL)
      throw corrupt(file, `central directory entry ${i} is malformed`);
    const flags = cd.readUInt16LE(p + 8);
    const method = cd.readUInt16LE(p + 10);
    const crc = cd.readUInt32LE(p + 16);
    let compressedSize = cd.readUInt32LE(p + 20);
    let uncompressedSize = cd.readUInt32LE(p + 24);
    const nameLength = cd.readUInt16LE(p + 28);
    const extraLength = cd.readUInt16LE(p + 30);
    const commentLength = cd.readUInt16LE(p + 32);
    let localHeaderOffset = cd.readUInt32LE(p + 42);
    const end = p + 46 + nameLength + extraLength + commentLength;
    if (end > cd.length) throw corrupt(file, `central directory entry ${i} overruns`);
    if (flags & 0x1) throw corrupt(file, `entry ${i} is encrypted`);
    const name = cd.subarray(p + 46, p + 46 + nameLength).toString('utf8');
    // zip64 extra field: the 0xffffffff fields, in order, as 8-byte values.
    let e = p + 46 + nameLength;
    const extraEnd = e + extraLength;
    while (e + 4 <= extraEnd) {
      const id = cd.readUInt16LE(e);
      const length = cd.readUInt16LE(e + 2);
      if (e + 4 + length > extraEnd) throw corrupt(file, `entry "${name}": bad extra field`);
      if (id === 0x0001) {
        let q = e + 4;
        const next = (what: string) => {
          if (q + 8 > e + 4 + length) throw corrupt(file, `entry "${name}": short zip64 field`);
          const value = safeNumber(cd.readBigUInt64LE(q), file, what);
          q += 8;
          return value;
        };
        if (uncompressedSize === 0xffffffff) uncompressedSize = next('size');
        if (compressedSize === 0xffffffff) compressedSize = next('compressed size');
        if (localHeaderOffset === 0xffffffff) localHeaderOffset = next('offset');
      }
      e += 4 + length;
    }
    if (entries.has(name)) throw corrupt(file, `entry "${name}" appears twice`);
    if (localHeaderOffset + 30 > cdOffset)
      throw corrupt(file, `entry "${name}" starts past the data area`);
    entries.set(name, {
      name,
      method,
      compressedSize,
      size: uncompressedSize,
      crc32: crc,
      localHeaderOffset,
    });
    p = end;
  }
  return { entries, centralStart: cdOffset };
}

let table: Uint32Array | undefined;

/** CRC-32 (zip's polynomial): zlib's when this Node has it (20.15+), else a table loop. */
export function crc32(data: Uint8Array): number {
  const native = (zlib as { crc32?: (data: Uint8Array) => number }).crc32;
  if (native) return native(data) >>> 0;
  if (!table) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (let i = 0; i < data.length; i++) crc = table[(crc ^ data[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
