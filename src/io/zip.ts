/**
 * A minimal zip reader for torch.save archives: the central directory (ZIP64 included) is read
 * from the file's end, and an entry's bytes are read on demand with positioned reads (stored or
 * deflated, CRC-32 checked), so a multi-gigabyte archive is never held in memory at once.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { inflateRawSync } from 'node:zlib';

export class ZipFormatError extends Error {
  override name = 'ZipFormatError';
}

export interface ZipEntry {
  name: string;
  method: number;
  crc32: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const MAX_COMMENT = 0xffff;

let crcTable: Int32Array | undefined;
/** CRC-32 (IEEE, as zip uses). */
export function crc32(bytes: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Int32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c;
    }
  }
  let c = -1;
  for (let i = 0; i < bytes.length; i++) c = crcTable[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

/** Reads the 64-bit little-endian value at `at` as a safe integer. */
function u64(buf: Buffer, at: number): number {
  const value = buf.readBigUInt64LE(at);
  if (value > BigInt(Number.MAX_SAFE_INTEGER))
    throw new ZipFormatError('a 64-bit size is too large');
  return Number(value);
}

export class ZipReader {
  private constructor(
    private readonly handle: FileHandle,
    readonly fileSize: number,
    readonly entries: ReadonlyMap<string, ZipEntry>,
  ) {}

  /** True when the file starts like a zip archive (a local file header or an empty archive). */
  static isZip(head: Uint8Array): boolean {
    if (head.length < 4) return false;
    const sig = Buffer.from(head.buffer, head.byteOffset, 4).readUInt32LE(0);
    return sig === LOCAL || sig === EOCD;
  }

  static async open(file: string): Promise<ZipReader> {
    const handle = await open(file, 'r');
    try {
      const { size } = await handle.stat();
      const entries = await readCentralDirectory(handle, size);
      return new ZipReader(handle, size, entries);
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  /** The uncompressed bytes of an entry, CRC-checked. */
  async read(name: string): Promise<Buffer> {
    const entry = this.entries.get(name);
    if (!entry) throw new ZipFormatError(`no entry ${name}`);
    const header = Buffer.alloc(30);
    await this.readAt(header, entry.localHeaderOffset);
    if (header.readUInt32LE(0) !== LOCAL)
      throw new ZipFormatError(`entry ${name}: no local file header at ${entry.localHeaderOffset}`);
    const dataStart =
      entry.localHeaderOffset + 30 + header.readUInt16LE(26) + header.readUInt16LE(28);
    if (dataStart + entry.compressedSize > this.fileSize)
      throw new ZipFormatError(
        `entry ${name}: its data runs past the end of the file (truncated?)`,
      );
    const raw = Buffer.alloc(entry.compressedSize);
    await this.readAt(raw, dataStart);
    let data: Buffer;
    if (entry.method === 0) data = raw;
    else if (entry.method === 8) {
      // Deflate cannot expand more than ~1032:1: a larger claim is a zip bomb or garbage.
      if (entry.size > 1032 * entry.compressedSize + 1024)
        throw new ZipFormatError(
          `entry ${name}: implausible size ${entry.size} for ${entry.compressedSize} compressed bytes`,
        );
      try {
        data = inflateRawSync(raw, { maxOutputLength: Math.max(entry.size, 1) });
      } catch (error) {
        throw new ZipFormatError(`entry ${name}: bad deflate data (${(error as Error).message})`);
      }
    } else
      throw new ZipFormatError(
        `entry ${name}: compression method ${entry.method} is not supported`,
      );
    if (data.length !== entry.size)
      throw new ZipFormatError(
        `entry ${name}: ${data.length} bytes, the directory says ${entry.size}`,
      );
    if (crc32(data) !== entry.crc32)
      throw new ZipFormatError(`entry ${name}: CRC-32 mismatch (corrupt file?)`);
    return data;
  }

  async close(): Promise<void> {
    await this.handle.close();
  }

  private async readAt(buffer: Buffer, position: number): Promise<void> {
    const { bytesRead } = await this.handle.read(buffer, 0, buffer.length, position);
    if (bytesRead !== buffer.length)
      throw new ZipFormatError('unexpected end of file (truncated?)');
  }
}

async function readCentralDirectory(
  handle: FileHandle,
  size: number,
): Promise<Map<string, ZipEntry>> {
  const tailLength = Math.min(size, 22 + MAX_COMMENT + 20);
  const tail = Buffer.alloc(tailLength);
  await handle.read(tail, 0, tailLength, size - tailLength);
  let at = -1;
  for (let i = tailLength - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) === EOCD) {
      at = i;
      break;
    }
  }
  if (at < 0)
    throw new ZipFormatError('no end-of-central-directory record (not a zip, or truncated)');
  let count = tail.readUInt16LE(at + 10);
  let directorySize = tail.readUInt32LE(at + 12);
  let directoryOffset = tail.readUInt32LE(at + 16);
  if (count === 0xffff || directorySize === 0xffffffff || directoryOffset === 0xffffffff) {
    if (at < 20 || tail.readUInt32LE(at - 20) !== ZIP64_LOCATOR)
      throw new ZipFormatError('ZIP64 sizes without a ZIP64 locator');
    const record = Buffer.alloc(56);
    const recordOffset = u64(tail, at - 20 + 8);
    const { bytesRead } = await handle.read(record, 0, 56, recordOffset);
    if (bytesRead !== 56 || record.readUInt32LE(0) !== ZIP64_EOCD)
      throw new ZipFormatError('bad ZIP64 end-of-central-directory record');
    count = u64(record, 32);
    directorySize = u64(record, 40);
    directoryOffset = u64(record, 48);
  }
  if (directoryOffset + directorySize > size)
    throw new ZipFormatError('the central directory lies past the end of the file (truncated?)');
  const directory = Buffer.alloc(directorySize);
  await handle.read(directory, 0, directorySize, directoryOffset);
  const entries = new Map<string, ZipEntry>();
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > directory.length || directory.readUInt32LE(p) !== CENTRAL)
      throw new ZipFormatError(`central directory entry ${i} is malformed`);
    const nameLength = directory.readUInt16LE(p + 28);
    const extraLength = directory.readUInt16LE(p + 30);
    const commentLength = directory.readUInt16LE(p + 32);
    if (p + 46 + nameLength + extraLength + commentLength > directory.length)
      throw new ZipFormatError(`central directory entry ${i} runs past the directory`);
    const name = directory.toString('utf8', p + 46, p + 46 + nameLength);
    let compressedSize = directory.readUInt32LE(p + 20);
    let entrySize = directory.readUInt32LE(p + 24);
    let localHeaderOffset = directory.readUInt32LE(p + 42);
    // ZIP64 extended information: the 64-bit values of the fields that hold 0xffffffff, in order.
    let e = p + 46 + nameLength;
    const extraEnd = e + extraLength;
    while (e + 4 <= extraEnd) {
      const id = directory.readUInt16LE(e);
      const length = directory.readUInt16LE(e + 2);
      if (id === 0x0001) {
        let q = e + 4;
        if (entrySize === 0xffffffff) {
          entrySize = u64(directory, q);
          q += 8;
        }
        if (compressedSize === 0xffffffff) {
          compressedSize = u64(directory, q);
          q += 8;
        }
        if (localHeaderOffset === 0xffffffff) localHeaderOffset = u64(directory, q);
      }
      e += 4 + length;
    }
    entries.set(name, {
      name,
      method: directory.readUInt16LE(p + 10),
      crc32: directory.readUInt32LE(p + 16),
      compressedSize,
      size: entrySize,
      localHeaderOffset,
    });
    p += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}
