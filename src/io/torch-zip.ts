/**
 * Reads what torch.save writes (the zip format, torch ≥ 1.6) without Python and without running
 * anything: `<archive>/data.pkl` goes through the restricted interpreter of pickle.ts with an
 * allowlist of exactly what a state dict needs — collections.OrderedDict,
 * torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter (an nn.Parameter saved
 * directly) and the typed storage classes (torch.FloatStorage, …) — and every tensor's storage
 * is `<archive>/data/<key>`, read lazily. Offsets, sizes and strides are checked against the
 * storage before any byte is read; tensors come back as contiguous little-endian bytes of their
 * own dtype (safetensors names: F32, F16, BF16, …), so a conversion is bit-exact.
 */
import { open, stat } from 'node:fs/promises';
import { extname } from 'node:path';
import { UserError } from '../errors.js';
import {
  type PickleKey,
  PickleDict,
  unpickle,
  type PickleGlobal,
  type PickleObject,
  type PickleTuple,
  type PickleValue,
} from './pickle.js';
import {
  decode,
  DTYPE_BYTES,
  type RawDtype,
  type RawTensor,
  type SafetensorsDtype,
} from './safetensors.js';
import { ZipArchive, type ZipEntry } from './zip.js';
import { bfloat16ToFloat32, halfToFloat32 } from './half.js';

/** Tensor dtypes under their safetensors names. */
export type TorchDtype = RawDtype;
const TORCH_DTYPE_BYTES = DTYPE_BYTES;

/** The legacy typed storage classes _rebuild_tensor_v2 pickles (torch 1.6 to 2.x). */
const STORAGE_TYPES: Readonly<Record<string, TorchDtype>> = {
  DoubleStorage: 'F64',
  FloatStorage: 'F32',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
};

/** Every global the reader accepts, for messages and documentation. */
export const TORCH_ZIP_GLOBALS: readonly string[] = [
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_parameter',
  ...Object.keys(STORAGE_TYPES).map((name) => `torch.${name}`),
];

interface StorageType extends PickleObject {
  kind: 'storage-type';
  dtype: TorchDtype;
}

export interface TorchStorage extends PickleObject {
  kind: 'storage';
  key: string;
  dtype: TorchDtype;
  /** Elements in the storage. */
  numel: number;
  entry: ZipEntry;
}

export interface TorchTensor extends PickleObject {
  kind: 'tensor';
  dtype: TorchDtype;
  shape: number[];
  /** In elements, as torch reports it. */
  stride: number[];
  /** First element in the storage. */
  offset: number;
  storage: TorchStorage;
  /** Saved as an nn.Parameter. */
  parameter: boolean;
}

export interface TorchZipOptions {
  /** Largest data.pkl accepted (default 64 MiB; a ViT-L state dict's is ~100 kB). */
  maxPickleBytes?: number;
}

const DECODABLE = new Set<TorchDtype>(['F32', 'F16', 'BF16', 'I64', 'I32']);
const MAX_DIMS = 32;
const MAX_DEPTH = 64;

export function isTorchTensor(value: unknown): value is TorchTensor {
  return typeof value === 'object' && value !== null && (value as PickleObject).kind === 'tensor';
}

export class TorchZip {
  private cached?: { key: string; bytes: Uint8Array };

  private constructor(
    readonly file: string,
    private readonly zip: ZipArchive,
    /** The object torch.save wrote, with tensors as TorchTensor. */
    readonly root: PickleValue,
    private readonly bigEndian: boolean,
  ) {}

  static async open(file: string, options: TorchZipOptions = {}): Promise<TorchZip> {
    await refuseOtherFormats(file);
    const zip = await ZipArchive.open(file);
    try {
      const pickles = [...zip.entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
      if (pickles.length !== 1)
        throw new UserError(
          `${file}: not a torch.save archive (expected one <archive>/data.pkl, found ${pickles.length})`,
          { hint: 'pass a file written by torch.save (e.g. a Hugging Face pytorch_model.bin)' },
        );
      const prefix = pickles[0].slice(0, -'data.pkl'.length);
      if ([...zip.entries.keys()].some((n) => n.startsWith(`${prefix}code/`)))
        throw new UserError(
          `${file}: a TorchScript archive (torch.jit.save, e.g. OpenAI's original ViT-L-14-336px.pt), not a state dict`,
          {
            hint: 'use the Hugging Face or OpenCLIP release of these weights (vcp-exp weights pull <hub-id>)',
          },
        );
      const byteorderEntry = zip.entries.get(`${prefix}byteorder`);
      const byteorder = byteorderEntry
        ? new TextDecoder().decode(await zip.read(byteorderEntry, 16)).trim()
        : 'little';
      if (byteorder !== 'little' && byteorder !== 'big')
        throw new UserError(`${file}: byteorder record is "${byteorder}"`);
      const pickle = await zip.read(
        zip.entries.get(pickles[0])!,
        options.maxPickleBytes ?? 64 * 2 ** 20,
      );
      const root = unpickle(pickle, {
        source: `${file}: ${pickles[0]}`,
        globals: torchGlobals(file),
        persistentLoad: storageLoader(file, zip, prefix),
      });
      return new TorchZip(file, zip, root, byteorder === 'big');
    } catch (error) {
      await zip.close();
      throw error;
    }
  }

  async close(): Promise<void> {
    this.cached = undefined;
    await this.zip.close();
  }

  /**
   * Every tensor of the saved object under its dotted name: dict keys joined with ".", list
   * items by index (`{'model': OrderedDict(...)}` → `model.<name>`). Other leaves are skipped.
   */
  tensors(): Map<string, TorchTensor> {
    const out = new Map<string, TorchTensor>();
    const seen = new Set<unknown>();
    const walk = (value: PickleValue, name: string, depth: number) => {
      if (isTorchTensor(value)) {
        if (out.has(name)) throw new UserError(`${this.file}: two tensors are named "${name}"`);
        out.set(name, value);
        return;
      }
      if (typeof value !== 'object' || value === null || value instanceof Uint8Array) return;
      if (depth > MAX_DEPTH)
        throw new UserError(`${this.file}: containers nested deeper than ${MAX_DEPTH}`);
      if (seen.has(value)) return;
      seen.add(value);
      const join = (key: unknown) => (name ? `${name}.${String(key)}` : String(key));
      if (value instanceof PickleDict) for (const [k, v] of value) walk(v, join(k), depth + 1);
      else if (Array.isArray(value))
        value.forEach((v, i) => walk(v as PickleValue, join(i), depth + 1));
    };
    walk(this.root, '', 0);
    return out;
  }

  /** The tensor's values, contiguous (row-major), little-endian, in its own dtype. */
  async bytes(tensor: TensorLike): Promise<Uint8Array> {
    const { storage, shape, stride, offset } = tensor;
    const size = TORCH_DTYPE_BYTES[storage.dtype];
    const numel = shape.reduce((a, b) => a * b, 1);
    const out = new Uint8Array(numel * size);
    if (numel === 0) return out;
    const data = await this.storageBytes(storage);
    if (isContiguous(shape, stride)) out.set(data.subarray(offset * size, (offset + numel) * size));
    else gather(data, out, size, shape, stride, offset);
    if (this.bigEndian && size > 1) swapBytes(out, size);
    return out;
  }

  /**
   * The tensor decoded as io/safetensors decodes (floats widened to float32, integers to
   * int32); other dtypes (F64, I16, I8, U8, BOOL) are refused by name.
   */
  async rawTensor(name: string, tensor: TorchTensor): Promise<RawTensor> {
    if (!DECODABLE.has(tensor.dtype))
      throw new UserError(
        `${this.file}: tensor "${name}" has dtype ${tensor.dtype}; readable as numbers: ${[...DECODABLE].join(', ')}`,
      );
    const dtype = tensor.dtype as SafetensorsDtype;
    return {
      dtype,
      shape: tensor.shape,
      data: decode(dtype, await this.bytes(tensor), `${this.file}: tensor "${name}"`),
    };
  }

  /** A storage read whole (CRC-checked); the last one is kept for tensors that share it. */
  private async storageBytes(storage: TorchStorage): Promise<Uint8Array> {
    if (this.cached?.key === storage.key) return this.cached.bytes;
    const bytes = await this.zip.read(storage.entry, storage.entry.size);
    this.cached = { key: storage.key, bytes };
    return bytes;
  }
}

type TensorLike = Pick<TorchTensor, 'storage' | 'shape' | 'stride' | 'offset'>;

function isContiguous(shape: number[], stride: number[]): boolean {
  let expected = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] !== 1 && stride[d] !== expected) return false;
    expected *= shape[d];
  }
  return true;
}

/**
 * Copies a strided view element by element through integer views of the element's width (bits
 * move unchanged: no float conversion that could touch a NaN payload).
 */
function gather(
  data: Uint8Array,
  out: Uint8Array,
  size: number,
  shape: number[],
  stride: number[],
  offset: number,
): void {
  const aligned = (data.byteOffset & 7) === 0 && (out.byteOffset & 7) === 0;
  const words = size === 8 ? 2 : 1;
  const unit = size === 8 ? 4 : size;
  const make = (a: Uint8Array) =>
    !aligned || unit === 1
      ? a
      : unit === 2
        ? new Uint16Array(a.buffer, a.byteOffset, a.byteLength / 2)
        : new Uint32Array(a.buffer, a.byteOffset, a.byteLength / 4);
  const from = make(data);
  const to = make(out);
  const step = aligned ? words : size; // units per element
  const index = new Array<number>(shape.length).fill(0);
  const numel = out.length / size;
  let source = offset;
  for (let i = 0; i < numel; i++) {
    for (let w = 0; w < step; w++) to[i * step + w] = from[source * step + w];
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++index[d] < shape[d]) {
        source += stride[d];
        break;
      }
      source -= stride[d] * (shape[d] - 1);
      index[d] = 0;
    }
  }
}

function swapBytes(data: Uint8Array, size: number): void {
  for (let i = 0; i < data.length; i += size) data.subarray(i, i + size).reverse();
}

/** A pre-1.6 torch.save file (a bare pickle stream) is refused with a useful message. */
async function refuseOtherFormats(file: string): Promise<void> {
  const handle = await open(file, 'r').catch((error: NodeJS.ErrnoException) => {
    throw new UserError(`${file}: cannot open (${error.code ?? error.message})`);
  });
  try {
    const head = Buffer.alloc(4);
    const { bytesRead } = await handle.read(head, 0, 4, 0);
    if (bytesRead >= 3 && head[0] === 0x80 && head[2] === 0x8a)
      throw new UserError(
        `${file}: the legacy torch.save format (before torch 1.6) is not read, only the zip format`,
        {
          hint: 'load and re-save it with a current torch (torch.save(torch.load(f, weights_only=True), g)), or use a safetensors copy',
        },
      );
  } finally {
    await handle.close();
  }
}

function torchGlobals(file: string): Map<string, PickleGlobal> {
  const globals = new Map<string, PickleGlobal>();
  const bad = (what: string): never => {
    throw new UserError(`${file}: ${what}`, {
      hint: 'the file is corrupt or was not written by torch.save',
    });
  };
  globals.set('collections.OrderedDict', {
    call: (args) => {
      if (args.length !== 0) bad('OrderedDict built from arguments (expected an empty call)');
      return new PickleDict(true);
    },
  });
  globals.set('torch._utils._rebuild_tensor_v2', {
    call: (args) => rebuildTensor(args, bad),
  });
  globals.set('torch._utils._rebuild_parameter', {
    call: (args) => {
      const [data, requiresGrad, hooks] = args;
      if (args.length !== 3 || !isTorchTensor(data) || typeof requiresGrad !== 'boolean')
        bad('_rebuild_parameter(tensor, requires_grad, hooks) has other arguments');
      checkNoHooks(hooks, bad);
      return { ...(data as TorchTensor), parameter: true };
    },
  });
  for (const [name, dtype] of Object.entries(STORAGE_TYPES)) {
    const value: StorageType = { kind: 'storage-type', dtype };
    globals.set(`torch.${name}`, { value });
  }
  return globals;
}

function checkNoHooks(hooks: PickleValue, bad: (what: string) => never): void {
  if (!(hooks instanceof PickleDict) || hooks.size > 0)
    bad('a tensor with backward hooks (expected an empty OrderedDict)');
}

const isIndex = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

function rebuildTensor(args: PickleTuple, bad: (what: string) => never): TorchTensor {
  // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
  if (args.length !== 6 && args.length !== 7)
    bad(`_rebuild_tensor_v2 with ${args.length} arguments`);
  const [storage, offset, size, stride, requiresGrad, hooks] = args;
  if (
    typeof storage !== 'object' ||
    storage === null ||
    (storage as PickleObject).kind !== 'storage'
  )
    bad('_rebuild_tensor_v2 without a storage');
  const s = storage as TorchStorage;
  if (!isIndex(offset))
    bad(`tensor storage offset ${String(offset)} is not a non-negative integer`);
  const shape = indexTuple(size, 'size', bad);
  const strides = indexTuple(stride, 'stride', bad);
  if (shape.length !== strides.length)
    bad(`tensor size [${shape}] and stride [${strides}] have different lengths`);
  if (typeof requiresGrad !== 'boolean') bad('tensor requires_grad is not a boolean');
  checkNoHooks(hooks, bad);
  let numel = 1;
  let last = offset as number;
  for (let d = 0; d < shape.length; d++) {
    numel *= shape[d];
    if (shape[d] > 0) last += (shape[d] - 1) * strides[d];
  }
  if (!Number.isSafeInteger(numel) || !Number.isSafeInteger(last))
    bad(`tensor of size [${shape}] is too large`);
  // A tensor must stay inside its storage: as_strided would read whatever memory follows.
  if (numel > 0 && last >= s.numel)
    bad(
      `tensor (offset ${String(offset)}, size [${shape}], stride [${strides}]) reaches element ${last} of a storage of ${s.numel} elements`,
    );
  return {
    kind: 'tensor',
    dtype: s.dtype,
    shape,
    stride: strides,
    offset: offset as number,
    storage: s,
    parameter: false,
  };
}

function indexTuple(value: PickleValue, what: string, bad: (what: string) => never): number[] {
  if (!Array.isArray(value) || value.length > MAX_DIMS || !value.every(isIndex))
    bad(
      `tensor ${what} ${JSON.stringify(value)} is not a tuple of at most ${MAX_DIMS} non-negative integers`,
    );
  return [...(value as number[])];
}

function storageLoader(
  file: string,
  zip: ZipArchive,
  prefix: string,
): (pid: PickleValue) => PickleValue {
  const storages = new Map<string, TorchStorage>();
  return (pid) => {
    // ('storage', StorageType, key, location, numel)
    const [tag, type, key, location, numel] = Array.isArray(pid) ? pid : [];
    if (
      !Array.isArray(pid) ||
      pid.length !== 5 ||
      tag !== 'storage' ||
      typeof type !== 'object' ||
      type === null ||
      (type as PickleObject).kind !== 'storage-type' ||
      typeof key !== 'string' ||
      typeof location !== 'string' ||
      !isIndex(numel)
    )
      throw new UserError(`${file}: unknown persistent id ${describe(pid)}`, {
        hint: 'only torch storages are referenced from a state dict',
      });
    const dtype = (type as StorageType).dtype;
    const existing = storages.get(key);
    if (existing) {
      if (existing.dtype !== dtype || existing.numel !== numel)
        throw new UserError(`${file}: storage ${key} is referenced with two different types`);
      return existing;
    }
    const entry = zip.entries.get(`${prefix}data/${key}`);
    if (!entry)
      throw new UserError(
        `${file}: storage ${key} is referenced but ${prefix}data/${key} is not in the archive`,
        { hint: 'the file is truncated or corrupt: download it again' },
      );
    if (entry.size !== numel * TORCH_DTYPE_BYTES[dtype])
      throw new UserError(
        `${file}: storage ${key} should hold ${numel} ${dtype} values (${numel * TORCH_DTYPE_BYTES[dtype]} bytes) but ${prefix}data/${key} has ${entry.size}`,
        { hint: 'the file is truncated or corrupt: download it again' },
      );
    const storage: TorchStorage = { kind: 'storage', key, dtype, numel, entry };
    storages.set(key, storage);
    return storage;
  };
}

function describe(value: PickleValue): string {
  try {
    return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)).slice(
      0,
      120,
    );
  } catch {
    return String(value);
  }
}

/**
 * A tensor of a state dict, decoded: floats as float32, integers and bools as int32 (int64 as
 * BigInt64Array when a value does not fit in int32).
 */
export interface DecodedTensor {
  readonly kind: 'tensor';
  readonly dtype: TorchDtype;
  readonly shape: readonly number[];
  readonly data: Float32Array | Int32Array | BigInt64Array;
}

/** The saved object with containers as Maps (dicts) and arrays, tensors decoded. */
export type DecodedValue =
  | Exclude<PickleValue, PickleValue[] | PickleTuple | PickleDict>
  | DecodedTensor
  | DecodedValue[]
  | Map<PickleKey, DecodedValue>;

const TORCH_FILE_HINT =
  "give a file written by torch.save (its zip format), e.g. the authors' train.py .pth";

/** A missing file, a directory, or bytes that are neither a zip nor a pickle: said as such. */
export async function checkTorchFile(file: string): Promise<void> {
  const info = await stat(file).catch(() => null);
  if (!info) throw new UserError(`${file}: no such file`, { hint: TORCH_FILE_HINT });
  if (!info.isFile()) throw new UserError(`${file}: not a file`, { hint: TORCH_FILE_HINT });
  const handle = await open(file, 'r');
  const head = Buffer.alloc(4);
  try {
    await handle.read(head, 0, 4, 0);
  } finally {
    await handle.close();
  }
  const zip = head[0] === 0x50 && head[1] === 0x4b; // "PK"
  const pickle = head[0] === 0x80; // PROTO: the legacy format (TorchZip.open refuses it, saying how to convert)
  if (!zip && !pickle)
    throw new UserError(
      `${file}: not a PyTorch checkpoint: neither torch.save's zip format nor its legacy pickle (${extname(file) || 'no extension'}, ${info.size} bytes)`,
      { hint: TORCH_FILE_HINT },
    );
}

/**
 * Reads a torch.save file (zip format, nothing executed) into its object tree with every tensor
 * decoded: float16 / bfloat16 / float64 widened or narrowed to float32, integer and bool tensors
 * as int32 (int64 beyond int32 as BigInt64Array). Containers shared in the pickle stay shared.
 */
export async function readTorchCheckpoint(
  file: string,
  options: TorchZipOptions = {},
): Promise<DecodedValue> {
  await checkTorchFile(file);
  const zip = await TorchZip.open(file, options);
  try {
    const converted = new Map<object, DecodedValue>();
    const convert = async (value: PickleValue): Promise<DecodedValue> => {
      if (isTorchTensor(value)) {
        const bytes = await zip.bytes(value);
        return {
          kind: 'tensor',
          dtype: value.dtype,
          shape: [...value.shape],
          data: decodeTensorBytes(value.dtype, bytes),
        };
      }
      if (typeof value !== 'object' || value === null || value instanceof Uint8Array)
        return value as DecodedValue;
      if (converted.has(value)) return converted.get(value)!;
      if (value instanceof PickleDict) {
        const out = new Map<PickleKey, DecodedValue>();
        converted.set(value, out);
        for (const [k, v] of value) out.set(k, await convert(v));
        return out;
      }
      if (Array.isArray(value)) {
        const list: DecodedValue[] = [];
        converted.set(value, list);
        for (const v of value as readonly PickleValue[]) list.push(await convert(v));
        return list;
      }
      return value as DecodedValue;
    };
    return await convert(zip.root);
  } finally {
    await zip.close();
  }
}

/** Little-endian tensor bytes (as TorchZip.bytes gives them) → float32 or int32 (int64: see above) values. */
export function decodeTensorBytes(
  dtype: TorchDtype,
  bytes: Uint8Array,
): Float32Array | Int32Array | BigInt64Array {
  const aligned = new Uint8Array(bytes); // own buffer, offset 0: typed views are aligned
  switch (dtype) {
    case 'F32':
      return new Float32Array(aligned.buffer);
    case 'F64':
      return Float32Array.from(new Float64Array(aligned.buffer));
    case 'F16':
      return halfToFloat32(new Uint16Array(aligned.buffer));
    case 'BF16':
      return bfloat16ToFloat32(new Uint16Array(aligned.buffer));
    case 'I64': {
      const longs = new BigInt64Array(aligned.buffer);
      if (!longs.every((v) => v >= -(2n ** 31n) && v < 2n ** 31n)) return longs;
      return Int32Array.from(longs, Number);
    }
    case 'I32':
      return new Int32Array(aligned.buffer);
    case 'I16':
      return Int32Array.from(new Int16Array(aligned.buffer));
    case 'I8':
      return Int32Array.from(new Int8Array(aligned.buffer));
    case 'U8':
    case 'BOOL':
      return Int32Array.from(aligned);
  }
}
