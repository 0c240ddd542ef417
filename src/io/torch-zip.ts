/**
 * Reads a file written by torch.save (the zip format, PyTorch ≥ 1.6) without PyTorch and
 * without running any of it: `<archive>/data.pkl` is interpreted by a restricted pickle machine
 * that knows only the opcodes of plain containers and the globals a state dict needs
 * (collections.OrderedDict, torch._utils._rebuild_tensor_v2 / _rebuild_parameter, the typed
 * storage classes); anything else is refused with its name. Tensor storages come from
 * `<archive>/data/<key>` and are checked against the sizes, strides and offsets that refer to
 * them before anything is copied. Float tensors come back as float32 (float16, bfloat16 and
 * float64 converted), integer and bool tensors as int32 (int64 checked to fit).
 */
import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import { UserError } from '../errors.js';
import { ZipFormatError, ZipReader } from './zip.js';

export type TorchDtype =
  | 'float32'
  | 'float16'
  | 'bfloat16'
  | 'float64'
  | 'int64'
  | 'int32'
  | 'int16'
  | 'int8'
  | 'uint8'
  | 'bool';

/** A tensor of the checkpoint, contiguous (views are copied out of their storage). */
export class TorchTensor {
  readonly kind = 'tensor';
  /** Filled once the storages are read (before readTorchCheckpoint returns). */
  data: Float32Array | Int32Array = new Float32Array(0);
  constructor(
    readonly dtype: TorchDtype,
    readonly shape: readonly number[],
    /** Where the elements sit in their storage (private to the reader). */
    readonly source: { storage: StorageRef; offset: number; stride: readonly number[] },
  ) {}
}

interface StorageRef {
  key: string;
  dtype: TorchDtype;
  numel: number;
}

export interface TorchReadOptions {
  /** Largest data.pkl accepted (default 64 MiB; a state dict's is kilobytes). */
  maxPickleBytes?: number;
}

const ITEM_BYTES: Record<TorchDtype, number> = {
  float32: 4,
  float16: 2,
  bfloat16: 2,
  float64: 8,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};

const STORAGE_TYPES: Record<string, TorchDtype> = {
  FloatStorage: 'float32',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  DoubleStorage: 'float64',
  LongStorage: 'int64',
  IntStorage: 'int32',
  ShortStorage: 'int16',
  CharStorage: 'int8',
  ByteStorage: 'uint8',
  BoolStorage: 'bool',
};

/** The magic number a legacy (pre-zip) torch.save file starts with: PROTO 2, LONG1 0x1950a86a20f9469cfc6c. */
const LEGACY_MAGIC = [
  0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19,
];

/** What the first bytes of a file say it is (a zip is a torch checkpoint only if it has data.pkl). */
export async function sniffTorchFile(file: string): Promise<'zip' | 'legacy-pickle' | 'other'> {
  const handle = await open(file, 'r');
  try {
    const head = Buffer.alloc(LEGACY_MAGIC.length);
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    if (ZipReader.isZip(head.subarray(0, bytesRead))) return 'zip';
    if (bytesRead === LEGACY_MAGIC.length && LEGACY_MAGIC.every((b, i) => head[i] === b))
      return 'legacy-pickle';
    return 'other';
  } finally {
    await handle.close();
  }
}

function convertHint(file: string): string {
  const name = basename(file).replace(/'/g, '');
  return `convert it once with PyTorch ≥ 1.6 (tensors and dicts only, nothing executed): python -c "import torch; torch.save(torch.load('${name}', map_location='cpu', weights_only=True), 'converted.pth')"`;
}

/**
 * The object torch.save wrote to `file`: Maps (dicts, OrderedDicts), arrays (lists, tuples),
 * strings, numbers, booleans, null and TorchTensors. Every problem is a UserError naming the file.
 */
export async function readTorchCheckpoint(
  file: string,
  options: TorchReadOptions = {},
): Promise<unknown> {
  let kind: Awaited<ReturnType<typeof sniffTorchFile>>;
  try {
    kind = await sniffTorchFile(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UserError(`${file}: no such file`);
    if (code === 'EISDIR') throw new UserError(`${file}: is a directory, expected a .pth file`);
    throw new UserError(`${file}: cannot read (${(error as Error).message})`, { cause: error });
  }
  if (kind === 'legacy-pickle') {
    throw new UserError(
      `${file}: a legacy torch.save file (PyTorch < 1.6, or saved with _use_new_zipfile_serialization=False): only the zip format can be read without executing the file`,
      { hint: convertHint(file) },
    );
  }
  if (kind === 'other') {
    throw new UserError(
      `${file}: not a PyTorch checkpoint (neither torch.save's zip format nor its legacy pickle format)`,
      { hint: 'give the .pth file written by torch.save' },
    );
  }
  let zip: ZipReader;
  try {
    zip = await ZipReader.open(file);
  } catch (error) {
    if (error instanceof ZipFormatError)
      throw new UserError(`${file}: a damaged zip archive: ${error.message}`, { cause: error });
    throw error;
  }
  try {
    const pickles = [...zip.entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
    if (pickles.length !== 1) {
      const names = [...zip.entries.keys()];
      throw new UserError(
        `${file}: a zip archive but not a torch.save checkpoint (expected one <name>/data.pkl, found ${pickles.length}; entries: ${names.slice(0, 5).join(', ')}${names.length > 5 ? ', …' : ''})`,
        { hint: 'give the .pth file written by torch.save' },
      );
    }
    const prefix = pickles[0].slice(0, -'data.pkl'.length);
    const limit = options.maxPickleBytes ?? 64 << 20;
    if (zip.entries.get(pickles[0])!.size > limit)
      throw new UserError(`${file}: ${pickles[0]} is larger than ${limit} bytes: not a state dict`);
    const byteorderEntry = `${prefix}byteorder`;
    const byteorder = zip.entries.has(byteorderEntry)
      ? (await zip.read(byteorderEntry)).toString('utf8').trim()
      : 'little';
    if (byteorder !== 'little' && byteorder !== 'big')
      throw new UserError(`${file}: ${byteorderEntry} says "${byteorder}"`);
    const machine = new PickleMachine(await zip.read(pickles[0]), `${file}: ${pickles[0]}`);
    const result = machine.run();
    await materialise(machine.tensors, zip, prefix, byteorder === 'little', file);
    return result;
  } catch (error) {
    if (error instanceof ZipFormatError)
      throw new UserError(`${file}: ${error.message}`, { cause: error });
    throw error;
  } finally {
    await zip.close();
  }
}

/** Reads each referenced storage once and copies every tensor's elements out of it. */
async function materialise(
  tensors: readonly TorchTensor[],
  zip: ZipReader,
  prefix: string,
  littleEndian: boolean,
  file: string,
): Promise<void> {
  const byKey = new Map<string, TorchTensor[]>();
  for (const t of tensors) {
    const list = byKey.get(t.source.storage.key) ?? [];
    list.push(t);
    byKey.set(t.source.storage.key, list);
  }
  for (const [key, users] of byKey) {
    const entry = `${prefix}data/${key}`;
    if (!zip.entries.has(entry))
      throw new UserError(`${file}: storage ${key} is referenced but ${entry} is missing`);
    const storage = users[0].source.storage;
    const bytes = await zip.read(entry);
    const item = ITEM_BYTES[storage.dtype];
    if (bytes.length !== storage.numel * item)
      throw new UserError(
        `${file}: storage ${key} holds ${bytes.length} bytes, expected ${storage.numel} ${storage.dtype} elements`,
      );
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (const t of users) t.data = copyTensor(t, view, littleEndian, file);
  }
}

function readElement(
  view: DataView,
  dtype: TorchDtype,
  index: number,
  little: boolean,
  file: string,
): number {
  const at = index * ITEM_BYTES[dtype];
  switch (dtype) {
    case 'float32':
      return view.getFloat32(at, little);
    case 'float64':
      return view.getFloat64(at, little);
    case 'float16':
      return halfToFloat(view.getUint16(at, little));
    case 'bfloat16': {
      scratch.setUint32(0, view.getUint16(at, little) << 16, true);
      return scratch.getFloat32(0, true);
    }
    case 'int64': {
      const v = view.getBigInt64(at, little);
      if (v > 2147483647n || v < -2147483648n)
        throw new UserError(`${file}: an int64 tensor holds ${v}, beyond int32`);
      return Number(v);
    }
    case 'int32':
      return view.getInt32(at, little);
    case 'int16':
      return view.getInt16(at, little);
    case 'int8':
      return view.getInt8(at);
    case 'uint8':
    case 'bool':
      return view.getUint8(at);
  }
}

const scratch = new DataView(new ArrayBuffer(4));

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

function copyTensor(
  t: TorchTensor,
  view: DataView,
  little: boolean,
  file: string,
): Float32Array | Int32Array {
  const { shape } = t;
  const { offset, stride, storage } = t.source;
  const numel = shape.reduce((a, b) => a * b, 1);
  const isFloat = ['float32', 'float16', 'bfloat16', 'float64'].includes(storage.dtype);
  const out = isFloat ? new Float32Array(numel) : new Int32Array(numel);
  if (numel === 0) return out;
  const contiguous = stride.every(
    (s, d) => shape[d] === 1 || s === shape.slice(d + 1).reduce((a, b) => a * b, 1),
  );
  if (contiguous && storage.dtype === 'float32' && little) {
    const start = view.byteOffset + offset * 4;
    const bytes = new Uint8Array(view.buffer, start, numel * 4);
    return new Float32Array(bytes.slice().buffer); // copied: aligned, and the storage can go
  }
  const index = new Array<number>(shape.length).fill(0);
  let source = offset;
  for (let i = 0; i < numel; i++) {
    out[i] = readElement(view, storage.dtype, source, little, file);
    for (let d = shape.length - 1; d >= 0; d--) {
      index[d]++;
      source += stride[d];
      if (index[d] < shape[d]) break;
      source -= stride[d] * shape[d];
      index[d] = 0;
    }
  }
  return out;
}

/** A global the machine may call: how it builds its value from the REDUCE arguments. */
interface Callable {
  kind: 'callable';
  name: string;
  call(args: unknown[]): unknown;
}

interface StorageType {
  kind: 'storage-type';
  dtype: TorchDtype;
}

/** Pickle opcodes a state dict uses (protocols 2 to 5); every other opcode is refused. */
class PickleMachine {
  readonly tensors: TorchTensor[] = [];
  private readonly storages = new Map<string, StorageRef>();
  private pos = 0;

  constructor(
    private readonly bytes: Buffer,
    private readonly where: string,
  ) {}

  private fail(message: string): never {
    throw new UserError(`${this.where}: ${message}`);
  }

  private need(n: number): void {
    if (this.pos + n > this.bytes.length) this.fail('truncated pickle');
  }

  private u8(): number {
    this.need(1);
    return this.bytes[this.pos++];
  }

  private take(n: number): Buffer {
    this.need(n);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  private line(): string {
    const end = this.bytes.indexOf(0x0a, this.pos);
    if (end < 0) this.fail('truncated pickle (no end of line)');
    const text = this.bytes.toString('utf8', this.pos, end);
    this.pos = end + 1;
    return text;
  }

  private global(module: string, name: string): Callable | StorageType {
    const full = `${module}.${name}`;
    if (module === 'torch' && name in STORAGE_TYPES)
      return { kind: 'storage-type', dtype: STORAGE_TYPES[name] };
    const callables: Record<string, (args: unknown[]) => unknown> = {
      'collections.OrderedDict': (args) => {
        const map = new Map<unknown, unknown>();
        if (args.length > 0) {
          if (!Array.isArray(args[0])) this.fail('OrderedDict(...) with a non-list argument');
          for (const pair of args[0] as unknown[]) {
            if (!Array.isArray(pair) || pair.length !== 2)
              this.fail('OrderedDict item is not a pair');
            map.set(pair[0], pair[1]);
          }
        }
        return map;
      },
      'torch._utils._rebuild_tensor_v2': (args) => this.rebuildTensor(args),
      'torch._utils._rebuild_parameter': (args) => this.tensorArgument(args[0], full),
      'torch._utils._rebuild_parameter_with_state': (args) => this.tensorArgument(args[0], full),
    };
    const call = callables[full];
    if (!call) {
      this.fail(
        `refusing to load ${full}: only tensors, dicts and lists are read from a checkpoint, and nothing in it is executed`,
      );
    }
    return { kind: 'callable', name: full, call };
  }

  private tensorArgument(value: unknown, where: string): TorchTensor {
    if (!(value instanceof TorchTensor)) this.fail(`${where}: its data is not a tensor`);
    return value;
  }

  private rebuildTensor(args: unknown[]): TorchTensor {
    const [storage, offset, size, stride] = args;
    if (!storage || typeof storage !== 'object' || !('numel' in storage))
      this.fail('_rebuild_tensor_v2: the first argument is not a storage');
    const ref = storage as StorageRef;
    const ints = (v: unknown): v is number[] =>
      Array.isArray(v) && v.every((x) => Number.isSafeInteger(x) && (x as number) >= 0);
    if (!Number.isSafeInteger(offset) || (offset as number) < 0 || !ints(size) || !ints(stride))
      this.fail(
        `_rebuild_tensor_v2: bad layout (offset ${String(offset)}, size ${JSON.stringify(size)}, stride ${JSON.stringify(stride)})`,
      );
    if (size.length !== stride.length)
      this.fail(
        `_rebuild_tensor_v2: size ${JSON.stringify(size)} and stride ${JSON.stringify(stride)} differ in rank`,
      );
    const numel = size.reduce((a, b) => a * b, 1);
    if (numel > 0) {
      const last = (offset as number) + size.reduce((acc, n, d) => acc + (n - 1) * stride[d], 0);
      if (last >= ref.numel)
        this.fail(
          `a tensor (offset ${String(offset)}, size [${size.join(', ')}], stride [${stride.join(', ')}]) reaches element ${last} of storage ${ref.key}, which has ${ref.numel}`,
        );
    }
    const tensor = new TorchTensor(ref.dtype, Object.freeze([...size]), {
      storage: ref,
      offset: offset as number,
      stride: Object.freeze([...stride]),
    });
    this.tensors.push(tensor);
    return tensor;
  }

  private persistentLoad(pid: unknown): StorageRef {
    if (!Array.isArray(pid) || pid.length !== 5 || pid[0] !== 'storage')
      this.fail(`unknown persistent id ${JSON.stringify(pid)?.slice(0, 80)}`);
    const [, type, key, , numel] = pid as [string, unknown, unknown, unknown, unknown];
    if (!type || (type as StorageType).kind !== 'storage-type')
      this.fail(`storage ${String(key)} has an unknown type`);
    if (typeof key !== 'string' || !/^[\w.-]+$/.test(key))
      this.fail(`bad storage key ${String(key)}`);
    if (!Number.isSafeInteger(numel) || (numel as number) < 0)
      this.fail(`storage ${key}: bad element count ${String(numel)}`);
    const dtype = (type as StorageType).dtype;
    const existing = this.storages.get(key);
    if (existing) {
      if (existing.dtype !== dtype || existing.numel !== numel)
        this.fail(`storage ${key} is declared twice with different types or sizes`);
      return existing;
    }
    const ref: StorageRef = { key, dtype, numel: numel as number };
    this.storages.set(key, ref);
    return ref;
  }

  run(): unknown {
    const stack: unknown[] = [];
    const marks: number[] = [];
    const memo = new Map<number, unknown>();
    const pop = (): unknown => {
      if (stack.length === 0 || (marks.length > 0 && stack.length <= marks[marks.length - 1]))
        this.fail('stack underflow');
      return stack.pop();
    };
    const top = (): unknown => {
      if (stack.length === 0) this.fail('stack underflow');
      return stack[stack.length - 1];
    };
    const popMark = (): unknown[] => {
      const at = marks.pop();
      if (at === undefined) this.fail('no MARK');
      return stack.splice(at);
    };
    const setItems = (target: unknown, items: unknown[]): void => {
      if (!(target instanceof Map)) this.fail('SETITEM(S) on something that is not a dict');
      if (items.length % 2 !== 0) this.fail('SETITEMS with an odd number of values');
      for (let i = 0; i < items.length; i += 2) target.set(items[i], items[i + 1]);
    };
    const append = (target: unknown, items: unknown[]): void => {
      if (!Array.isArray(target) || Object.isFrozen(target))
        this.fail('APPEND(S) on something that is not a list');
      target.push(...items);
    };
    const tuple = (items: unknown[]): unknown[] => Object.freeze(items) as unknown[];
    const int = (n: bigint): number | bigint =>
      n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
    const longBytes = (b: Buffer): number | bigint => {
      if (b.length === 0) return 0;
      let v = 0n;
      for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
      if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
      return int(v);
    };

    for (;;) {
      const at = this.pos;
      const op = this.u8();
      switch (op) {
        case 0x80: // PROTO
          if (this.u8() > 5) this.fail('pickle protocol above 5');
          break;
        case 0x95: // FRAME
          this.take(8);
          break;
        case 0x2e: // STOP
          if (stack.length !== 1 || marks.length > 0) this.fail('malformed pickle at STOP');
          return stack[0];
        case 0x28: // MARK
          marks.push(stack.length);
          break;
        case 0x7d: // EMPTY_DICT
          stack.push(new Map());
          break;
        case 0x5d: // EMPTY_LIST
          stack.push([]);
          break;
        case 0x29: // EMPTY_TUPLE
          stack.push(tuple([]));
          break;
        case 0x74: // TUPLE
          stack.push(tuple(popMark()));
          break;
        case 0x85: // TUPLE1
          stack.push(tuple([pop()]));
          break;
        case 0x86: {
          // TUPLE2
          const b = pop();
          stack.push(tuple([pop(), b]));
          break;
        }
        case 0x87: {
          // TUPLE3
          const c = pop();
          const b = pop();
          stack.push(tuple([pop(), b, c]));
          break;
        }
        case 0x71: // BINPUT
          memo.set(this.u8(), top());
          break;
        case 0x72: // LONG_BINPUT
          memo.set(this.take(4).readUInt32LE(0), top());
          break;
        case 0x94: // MEMOIZE
          memo.set(memo.size, top());
          break;
        case 0x68: // BINGET
        case 0x6a: {
          // LONG_BINGET
          const key = op === 0x68 ? this.u8() : this.take(4).readUInt32LE(0);
          if (!memo.has(key)) this.fail(`memo ${key} is not set`);
          stack.push(memo.get(key));
          break;
        }
        case 0x4a: // BININT
          stack.push(this.take(4).readInt32LE(0));
          break;
        case 0x4b: // BININT1
          stack.push(this.u8());
          break;
        case 0x4d: // BININT2
          stack.push(this.take(2).readUInt16LE(0));
          break;
        case 0x8a: // LONG1
          stack.push(longBytes(this.take(this.u8())));
          break;
        case 0x8b: {
          // LONG4
          const n = this.take(4).readUInt32LE(0);
          stack.push(longBytes(this.take(n)));
          break;
        }
        case 0x47: // BINFLOAT
          stack.push(this.take(8).readDoubleBE(0));
          break;
        case 0x4e: // NONE
          stack.push(null);
          break;
        case 0x88: // NEWTRUE
          stack.push(true);
          break;
        case 0x89: // NEWFALSE
          stack.push(false);
          break;
        case 0x58: // BINUNICODE
          stack.push(this.take(this.take(4).readUInt32LE(0)).toString('utf8'));
          break;
        case 0x8c: // SHORT_BINUNICODE
          stack.push(this.take(this.u8()).toString('utf8'));
          break;
        case 0x8d: {
          // BINUNICODE8
          const n = this.take(8).readBigUInt64LE(0);
          if (n > BigInt(this.bytes.length)) this.fail('truncated pickle');
          stack.push(this.take(Number(n)).toString('utf8'));
          break;
        }
        case 0x55: // SHORT_BINSTRING
          stack.push(this.take(this.u8()).toString('latin1'));
          break;
        case 0x54: // BINSTRING
          stack.push(this.take(this.take(4).readUInt32LE(0)).toString('latin1'));
          break;
        case 0x43: // SHORT_BINBYTES
          stack.push(new Uint8Array(this.take(this.u8())));
          break;
        case 0x42: // BINBYTES
          stack.push(new Uint8Array(this.take(this.take(4).readUInt32LE(0))));
          break;
        case 0x73: {
          // SETITEM
          const value = pop();
          const key = pop();
          setItems(top(), [key, value]);
          break;
        }
        case 0x75: {
          // SETITEMS
          const items = popMark();
          setItems(top(), items);
          break;
        }
        case 0x61: {
          // APPEND
          const value = pop();
          append(top(), [value]);
          break;
        }
        case 0x65: {
          // APPENDS
          const items = popMark();
          append(top(), items);
          break;
        }
        case 0x63: {
          // GLOBAL
          const module = this.line();
          stack.push(this.global(module, this.line()));
          break;
        }
        case 0x93: {
          // STACK_GLOBAL
          const name = pop();
          const module = pop();
          if (typeof module !== 'string' || typeof name !== 'string')
            this.fail('STACK_GLOBAL without strings');
          stack.push(this.global(module, name));
          break;
        }
        case 0x52: {
          // REDUCE
          const args = pop();
          const callable = pop() as Callable;
          if (!callable || callable.kind !== 'callable')
            this.fail('REDUCE of something not callable');
          if (!Array.isArray(args)) this.fail(`REDUCE ${callable.name} without an argument tuple`);
          stack.push(callable.call(args));
          break;
        }
        case 0x62: {
          // BUILD: only the state torch gives an OrderedDict (its _metadata), which is dropped
          const state = pop();
          const target = top();
          if (!(target instanceof Map) || !(state instanceof Map || state === null))
            this.fail('BUILD of something other than a dict');
          break;
        }
        case 0x51: // BINPERSID
          stack.push(this.persistentLoad(pop()));
          break;
        case 0x30: // POP
          pop();
          break;
        case 0x31: // POP_MARK
          popMark();
          break;
        case 0x32: // DUP
          stack.push(top());
          break;
        default:
          this.fail(
            `pickle opcode 0x${op.toString(16).padStart(2, '0')} at byte ${at} is not allowed in a checkpoint (only plain containers and tensors are read)`,
          );
      }
    }
  }
}
