/**
 * Hand-built torch.save-style archives for the reader's refusal tests: a zip writer (stored, or
 * deflated as a repacked archive would be; optionally with zip64 records, as torch writes for
 * files over 4 GB) and a pickle assembler.
 */
import { deflateRawSync } from 'node:zlib';
import { crc32 } from '../../src/io/zip.js';

export function buildZip(
  entries: [string, Uint8Array][],
  options: { zip64?: boolean; deflate?: boolean; claimSize?: number } = {},
): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const [name, data] of entries) {
    const stored = options.deflate ? deflateRawSync(data) : Buffer.from(data);
    const size = options.claimSize ?? data.length;
    const method = options.deflate ? 8 : 0;
    const nameBytes = Buffer.from(name);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(crc32(data), 14);
    local.writeUInt32LE(stored.length, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    parts.push(local, nameBytes, stored);
    const extra = options.zip64 ? Buffer.alloc(4 + 24) : Buffer.alloc(0);
    if (options.zip64) {
      extra.writeUInt16LE(1, 0);
      extra.writeUInt16LE(24, 2);
      extra.writeBigUInt64LE(BigInt(size), 4);
      extra.writeBigUInt64LE(BigInt(stored.length), 12);
      extra.writeBigUInt64LE(BigInt(offset), 20);
    }
    const entry = Buffer.alloc(46);
    entry.writeUInt32LE(0x02014b50, 0);
    entry.writeUInt16LE(45, 4);
    entry.writeUInt16LE(45, 6);
    entry.writeUInt16LE(method, 10);
    entry.writeUInt32LE(crc32(data), 16);
    entry.writeUInt32LE(options.zip64 ? 0xffffffff : stored.length, 20);
    entry.writeUInt32LE(options.zip64 ? 0xffffffff : size, 24);
    entry.writeUInt16LE(nameBytes.length, 28);
    entry.writeUInt16LE(extra.length, 30);
    entry.writeUInt32LE(options.zip64 ? 0xffffffff : offset, 42);
    central.push(entry, nameBytes, extra);
    offset += 30 + nameBytes.length + stored.length;
  }
  const cd = Buffer.concat(central);
  const tail: Buffer[] = [];
  if (options.zip64) {
    const record = Buffer.alloc(56);
    record.writeUInt32LE(0x06064b50, 0);
    record.writeBigUInt64LE(44n, 4);
    record.writeBigUInt64LE(BigInt(entries.length), 24);
    record.writeBigUInt64LE(BigInt(entries.length), 32);
    record.writeBigUInt64LE(BigInt(cd.length), 40);
    record.writeBigUInt64LE(BigInt(offset), 48);
    const locator = Buffer.alloc(20);
    locator.writeUInt32LE(0x07064b50, 0);
    locator.writeBigUInt64LE(BigInt(offset + cd.length), 8);
    locator.writeUInt32LE(1, 16);
    tail.push(record, locator);
  }
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(options.zip64 ? 0xffff : entries.length, 8);
  end.writeUInt16LE(options.zip64 ? 0xffff : entries.length, 10);
  end.writeUInt32LE(options.zip64 ? 0xffffffff : cd.length, 12);
  end.writeUInt32LE(options.zip64 ? 0xffffffff : offset, 16);
  return Buffer.concat([...parts, cd, ...tail, end]);
}

/** Pickle opcodes as byte arrays, concatenated with `pickle(...)`. */
const text = (s: string) => [...Buffer.from(s)];
const u32 = (n: number) => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff];
export const op = {
  proto: [0x80, 2],
  stop: [0x2e],
  mark: [0x28],
  pop: [0x30],
  none: [0x4e],
  false: [0x89],
  emptyTuple: [0x29],
  tuple: [0x74],
  tuple1: [0x85],
  emptyDict: [0x7d],
  emptyList: [0x5d],
  append: [0x61],
  setitem: [0x73],
  setitems: [0x75],
  reduce: [0x52],
  build: [0x62],
  persid: [0x51],
  put: (i: number) => [0x71, i],
  get: (i: number) => [0x68, i],
  int: (n: number) => [0x4a, ...u32(n)],
  str: (s: string) => [0x58, ...u32(Buffer.byteLength(s)), ...text(s)],
  shortStr: (s: string) => [0x8c, Buffer.byteLength(s), ...text(s)],
  global: (module: string, name: string) => [0x63, ...text(`${module}\n${name}\n`)],
  stackGlobal: [0x93],
  inst: (module: string, name: string) => [0x69, ...text(`${module}\n${name}\n`)],
};

export function pickle(...ops: number[][]): Uint8Array {
  return Uint8Array.from(ops.flat());
}

/** `(d0, d1, …)` as a pickled tuple of ints. */
export function intTuple(values: number[]): number[] {
  return [...op.mark, ...values.flatMap((v) => op.int(v)), ...op.tuple];
}

/** `_rebuild_tensor_v2(<storage key> FloatStorage numel, offset, size, stride, False, OrderedDict())`. */
export function tensorOps(t: {
  key: string;
  numel: number;
  offset?: number;
  size: number[];
  stride: number[];
  storage?: string;
  hooks?: number[];
}): number[] {
  return [
    ...op.global('torch._utils', '_rebuild_tensor_v2'),
    ...op.mark,
    ...op.mark,
    ...op.str('storage'),
    ...op.global('torch', t.storage ?? 'FloatStorage'),
    ...op.str(t.key),
    ...op.str('cpu'),
    ...op.int(t.numel),
    ...op.tuple,
    ...op.persid,
    ...op.int(t.offset ?? 0),
    ...intTuple(t.size),
    ...intTuple(t.stride),
    ...op.false,
    ...(t.hooks ?? [...op.global('collections', 'OrderedDict'), ...op.emptyTuple, ...op.reduce]),
    ...op.tuple,
    ...op.reduce,
  ];
}

/** A torch.save-style archive: `archive/data.pkl`, `archive/byteorder`, `archive/data/<key>`. */
export function torchArchive(
  pkl: Uint8Array,
  storages: Record<string, Uint8Array>,
  options: Parameters<typeof buildZip>[1] = {},
): Buffer {
  return buildZip(
    [
      ['archive/data.pkl', pkl],
      ['archive/byteorder', Buffer.from('little')],
      ...Object.entries(storages).map(([k, v]): [string, Uint8Array] => [`archive/data/${k}`, v]),
    ],
    options,
  );
}
