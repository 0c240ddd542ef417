/**
 * Disk cache of frozen CLIP features. CLIP never trains, so the dense and global features of
 * an un-augmented image depend only on (checkpoint hash, image size, layers, options, image
 * content hash): computed once, reused by every trial and epoch.
 *
 * One safetensors file per entry (encodeSafetensors from the io floor), with a sha256 of the
 * whole file (header with the checksum field zeroed, then data) in its metadata: a damaged
 * shape in the header is caught like damaged data. Writes are atomic (temp + rename) so
 * several processes may share a directory; a truncated or garbled entry is detected on read,
 * deleted, counted as corrupt and reported as a miss (it is recomputed).
 *
 * Admission and eviction under the budget (`maxBytes`): an epoch or an evaluation reads its
 * images in a cycle, and LRU evicts each entry just before it is needed again, so a scan over
 * more entries than fit would never hit. Entries therefore belong to a group (a key prefix
 * `<group>-`: the trials' feature key), and a running sweep pins the groups its pending trials
 * need (`pinGroups`, a file under `pins/`, removed when it ends or its process is gone). Pinned
 * entries are never evicted; unpinned ones go least recently used first (recency = the file's
 * mtime, touched on every hit, so it is shared across processes without an index file). When
 * only pinned entries are left, a new entry is not admitted. So a cyclic scan over N entries
 * of which C fit hits C of them on every pass after the first (hit rate C/N), where LRU hits
 * none. See docs/performance.md.
 */
import { createHash } from 'node:crypto';
import {
  mkdir,
  readdir,
  readFile,
  rename,
  stat,
  statfs,
  unlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { withErrorPath } from '../errors.js';
import { encodeSafetensors } from '../io/safetensors.js';
import { halfToFloat32 } from '../io/half.js';

export interface CachedTensor {
  shape: number[];
  data: Float32Array;
}
/** Treat as read-only: the in-memory layer hands the same arrays to every caller. */
export type CachedTensors = Map<string, CachedTensor>;
export type FeatureKeyParts = Record<
  string,
  string | number | boolean | readonly (string | number)[]
>;

export interface FeatureCacheOptions {
  dir: string;
  /** Disk budget: unpinned entries are evicted beyond it, LRU first (default 8 GiB). */
  maxBytes?: number;
  /** Storage precision: float16 halves the size, relative error ≤ 2^-11. (default 'float32') */
  dtype?: 'float32' | 'float16';
  /** In-process LRU layer in front of the disk; 0 disables it. (default 0) */
  memoryBytes?: number;
}

export interface FeatureCacheStats {
  hits: number;
  /** Of the hits, those served from the in-memory layer. */
  memoryHits: number;
  misses: number;
  evictions: number;
  /** Entries not stored because the budget was full of pinned entries. */
  rejected: number;
  /** Entries found truncated or garbled (deleted, then counted as misses). */
  corrupt: number;
  /** Bytes on disk as last known by this process. */
  bytes: number;
}

const SUFFIX = '.safetensors';
const CHECKSUM_PLACEHOLDER = '0'.repeat(64);
const STALE_TEMP_MS = 60 * 60 * 1000;
const PINS = 'pins';
/** How long a cache found full of pinned entries is taken to stay so. */
const FULL_RECHECK_MS = 10_000;
/** A pin of another host cannot be checked for life; it is honoured this long after it was written. */
const FOREIGN_PIN_MS = 7 * 24 * 60 * 60 * 1000;
/** The largest default budget, whatever the free space. */
const DEFAULT_BUDGET_CAP = 200e9;

/** The group of an entry key (`<group>-<hash>`), or '' for an ungrouped one. */
export function groupOfKey(key: string): string {
  const at = key.indexOf('-');
  return at > 0 ? key.slice(0, at) : '';
}

/** Bytes of a cache entry holding these tensor shapes (header ≈ 64 bytes per tensor + 256). */
export function entryBytes(
  shapes: readonly (readonly number[])[],
  dtype: 'float32' | 'float16',
): number {
  const width = dtype === 'float16' ? 2 : 4;
  return shapes.reduce((sum, shape) => sum + width * shape.reduce((a, b) => a * b, 1) + 64, 256);
}

interface PinFile {
  host: string;
  pid: number;
  groups: string[];
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Pins `groups` in the cache at `dir` for as long as this process lives (or until the returned
 * function is called): their entries are kept and admitted first. `owner` names the pin file
 * (e.g. the sweep's run id).
 */
export async function pinGroups(
  dir: string,
  owner: string,
  groups: readonly string[],
): Promise<() => Promise<void>> {
  const file = join(dir, PINS, `${owner.replace(/[^0-9A-Za-z_-]/g, '_')}.json`);
  await mkdir(dirname(file), { recursive: true });
  const pin: PinFile = { host: hostname(), pid: process.pid, groups: [...new Set(groups)] };
  await writeFile(file, `${JSON.stringify(pin)}\n`);
  return () => unlink(file).catch(() => undefined);
}

/** The groups pinned by live owners; pins of dead processes on this host are removed. */
export async function pinnedGroups(dir: string): Promise<Set<string>> {
  const pinned = new Set<string>();
  const folder = join(dir, PINS);
  for (const name of await readdir(folder).catch(() => [] as string[])) {
    if (!name.endsWith('.json')) continue;
    const file = join(folder, name);
    const [text, info] = await Promise.all([
      readFile(file, 'utf8').catch(() => undefined),
      stat(file).catch(() => undefined),
    ]);
    if (text === undefined || !info) continue;
    let pin: Partial<PinFile>;
    try {
      pin = JSON.parse(text) as Partial<PinFile>;
    } catch {
      continue; // being written
    }
    const local = pin.host === hostname();
    const live = local
      ? typeof pin.pid === 'number' && isAlive(pin.pid)
      : Date.now() - info.mtimeMs < FOREIGN_PIN_MS;
    if (!live) {
      if (local) await unlink(file).catch(() => undefined);
      continue;
    }
    for (const group of pin.groups ?? []) pinned.add(group);
  }
  return pinned;
}

/**
 * The default budget of a cache at `dir`: what it holds already plus half the free space of
 * its disk, at most 200 GB (8 GiB when the free space cannot be read).
 */
export async function defaultCacheBudget(dir: string): Promise<number> {
  let probe = dir;
  for (;;) {
    const info = await statfs(probe).catch(() => undefined);
    if (info) {
      const held = await heldBytes(dir);
      return Math.min(DEFAULT_BUDGET_CAP, held + Math.floor((info.bavail * info.bsize) / 2));
    }
    const parent = dirname(probe);
    if (parent === probe) return 8 * 1024 ** 3;
    probe = parent;
  }
}

async function heldBytes(dir: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (!name.endsWith(SUFFIX)) continue;
    total += (await stat(join(dir, name)).catch(() => undefined))?.size ?? 0;
  }
  return total;
}

/** sha256 of bytes, hex: the image-content part of a key. */
export function contentHash(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

class CorruptEntry extends Error {}
/** An entry written by an older version of the cache: not damaged, just no longer read. */
class OutdatedEntry extends Error {}

const ENTRY_FORMAT = 'vcp-exp feature cache v2';

/**
 * sha256 of an entry file with its checksum field read as the placeholder: the header's
 * checksum field has the same length either way, so no offset moves.
 */
function entryChecksum(bytes: Buffer): string {
  const dataStart = 8 + Number(bytes.readBigUInt64LE(0));
  const at = bytes.indexOf('"checksum":"', 8, 'latin1');
  if (at < 0 || at > dataStart) return '';
  const from = at + '"checksum":"'.length;
  return createHash('sha256')
    .update(bytes.subarray(0, from))
    .update(CHECKSUM_PLACEHOLDER, 'latin1')
    .update(bytes.subarray(from + CHECKSUM_PLACEHOLDER.length))
    .digest('hex');
}

/** Parses and verifies an entry file's bytes (size, header, checksum), then decodes it. */
function decodeEntry(bytes: Buffer): CachedTensors {
  if (bytes.length < 8) throw new CorruptEntry(`only ${bytes.length} bytes`);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const dataStart = 8 + headerLength;
  if (headerLength <= 0 || dataStart > bytes.length)
    throw new CorruptEntry(`header length ${headerLength}`);
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }> & {
    __metadata__?: Record<string, string>;
  };
  try {
    header = JSON.parse(bytes.toString('utf8', 8, dataStart)) as typeof header;
  } catch {
    throw new CorruptEntry('header is not JSON');
  }
  const { __metadata__: metadata, ...entries } = header;
  if (metadata?.format !== ENTRY_FORMAT) throw new OutdatedEntry(`format ${metadata?.format}`);
  const data = bytes.subarray(dataStart);
  let end = 0;
  for (const entry of Object.values(entries))
    end = Math.max(end, entry.data_offsets?.[1] ?? Infinity);
  if (end !== data.length)
    throw new CorruptEntry(`data section is ${data.length} bytes, header says ${end}`);
  if (typeof metadata.checksum !== 'string' || metadata.checksum !== entryChecksum(bytes))
    throw new CorruptEntry('checksum mismatch');
  const tensors: CachedTensors = new Map();
  for (const [
    name,
    {
      dtype,
      shape,
      data_offsets: [begin, stop],
    },
  ] of Object.entries(entries)) {
    const count = shape.reduce((a, b) => a * b, 1);
    const width = dtype === 'F32' ? 4 : dtype === 'F16' ? 2 : 0;
    if (width === 0 || stop - begin !== count * width)
      throw new CorruptEntry(`tensor ${name}: ${dtype} [${shape}] spans ${stop - begin} bytes`);
    // Zero-copy view when aligned (our writer pads the header to 8 bytes), else a copy.
    const aligned = (data.byteOffset + begin) % width === 0;
    const source = aligned ? data : new Uint8Array(data.subarray(begin, stop));
    const at = aligned ? data.byteOffset + begin : 0;
    let values: Float32Array;
    if (dtype === 'F32') values = new Float32Array(source.buffer, at, count);
    else values = halfToFloat32(new Uint16Array(source.buffer, at, count));
    tensors.set(name, { shape, data: values });
  }
  return tensors;
}

function tensorBytes(tensors: CachedTensors): number {
  let n = 0;
  for (const t of tensors.values()) n += t.data.byteLength;
  return n;
}

export class FeatureCache {
  readonly dir: string;
  readonly maxBytes: number;
  readonly dtype: 'float32' | 'float16';
  private readonly memoryBytes: number;
  private readonly memory = new Map<string, { tensors: CachedTensors; bytes: number }>();
  private memoryUsed = 0;
  private readonly pending = new Map<string, Promise<CachedTensors>>();
  private counters = { hits: 0, memoryHits: 0, misses: 0, evictions: 0, rejected: 0, corrupt: 0 };
  private diskBytes: number | undefined;
  /** Strictly increasing access stamps, so two touches in the same millisecond keep their order. */
  private lastStamp = 0;
  private tempCounter = 0;
  /** Until then, a put over budget is not admitted without rescanning (see put). */
  private fullUntil = 0;
  private ready: Promise<void> | undefined;

  constructor(options: FeatureCacheOptions) {
    this.dir = options.dir;
    this.maxBytes = options.maxBytes ?? 8 * 1024 ** 3;
    this.dtype = options.dtype ?? 'float32';
    this.memoryBytes = options.memoryBytes ?? 0;
  }

  /**
   * A stable key: sha256 of the parts as canonical JSON (keys sorted), 40 hex characters,
   * prefixed `<group>-` when the entry belongs to a group (pinGroups).
   */
  key(parts: FeatureKeyParts, group?: string): string {
    const canonical = JSON.stringify(
      Object.keys(parts)
        .sort()
        .map((k) => [k, parts[k]]),
    );
    const hash = createHash('sha256').update(canonical).digest('hex').slice(0, 40);
    if (group === undefined || group === '') return hash;
    if (!/^[0-9A-Za-z_]+$/.test(group))
      throw new Error(`feature cache group "${group}" must be [0-9A-Za-z_]`);
    return `${group}-${hash}`;
  }

  stats(): FeatureCacheStats {
    return { ...this.counters, bytes: this.diskBytes ?? 0 };
  }

  private path(key: string): string {
    if (!/^[0-9a-zA-Z_-]+$/.test(key))
      throw new Error(`feature cache key "${key}" must be [0-9a-zA-Z_-] (use cache.key(parts))`);
    return join(this.dir, key + SUFFIX);
  }

  private stamp(): Date {
    this.lastStamp = Math.max(Date.now(), this.lastStamp + 1);
    return new Date(this.lastStamp);
  }

  private init(): Promise<void> {
    this.ready ??= (async () => {
      await mkdir(this.dir, { recursive: true });
      this.diskBytes = (await this.scan()).reduce((sum, e) => sum + e.size, 0);
    })();
    return this.ready;
  }

  /** Lists the entries on disk (tolerating concurrent deletions); removes stale temp files. */
  private async scan(): Promise<{ name: string; size: number; mtimeMs: number }[]> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    const entries: { name: string; size: number; mtimeMs: number }[] = [];
    for (const name of names) {
      const info = await stat(join(this.dir, name)).catch(() => undefined);
      if (!info) continue;
      if (name.endsWith(SUFFIX)) entries.push({ name, size: info.size, mtimeMs: info.mtimeMs });
      else if (name.includes('.tmp-') && Date.now() - info.mtimeMs > STALE_TEMP_MS)
        await unlink(join(this.dir, name)).catch(() => undefined);
    }
    return entries;
  }

  private remember(key: string, tensors: CachedTensors): void {
    if (this.memoryBytes <= 0) return;
    const bytes = tensorBytes(tensors);
    if (bytes > this.memoryBytes) return;
    const old = this.memory.get(key);
    if (old) {
      this.memory.delete(key);
      this.memoryUsed -= old.bytes;
    }
    this.memory.set(key, { tensors, bytes });
    this.memoryUsed += bytes;
    for (const [k, v] of this.memory) {
      if (this.memoryUsed <= this.memoryBytes) break;
      this.memory.delete(k);
      this.memoryUsed -= v.bytes;
    }
  }

  /** The cached tensors, or undefined (a miss; a corrupt entry is deleted and is a miss too). */
  async get(key: string): Promise<CachedTensors | undefined> {
    await this.init();
    const inMemory = this.memory.get(key);
    if (inMemory) {
      this.memory.delete(key);
      this.memory.set(key, inMemory);
      this.counters.hits++;
      this.counters.memoryHits++;
      await utimes(this.path(key), this.stamp(), this.stamp()).catch(() => undefined);
      return inMemory.tensors;
    }
    const file = this.path(key);
    let bytes: Buffer;
    try {
      bytes = await readFile(file);
    } catch {
      this.counters.misses++; // absent, or evicted by another process meanwhile
      return undefined;
    }
    let tensors: CachedTensors;
    try {
      tensors = decodeEntry(bytes);
    } catch (error) {
      if (!(error instanceof CorruptEntry || error instanceof OutdatedEntry)) throw error;
      if (error instanceof CorruptEntry) this.counters.corrupt++;
      this.counters.misses++;
      if (
        await unlink(file).then(
          () => true,
          () => false,
        )
      )
        this.diskBytes = Math.max(0, (this.diskBytes ?? 0) - bytes.length);
      return undefined;
    }
    this.counters.hits++;
    const now = this.stamp();
    await utimes(file, now, now).catch(() => undefined);
    this.remember(key, tensors);
    return tensors;
  }

  /**
   * Stores tensors under key (atomically) when they fit the budget after evicting unpinned
   * entries (least recently used first); else leaves them out (counted as `rejected`).
   */
  async put(key: string, tensors: CachedTensors): Promise<CachedTensors> {
    await this.init();
    const file = this.path(key);
    const bytes = encodeSafetensors(tensors, {
      dtype: this.dtype === 'float16' ? 'F16' : 'F32',
      metadata: { format: ENTRY_FORMAT, checksum: CHECKSUM_PLACEHOLDER },
    });
    // The checksum covers the file as written with the placeholder: patch it in place.
    const at = bytes.indexOf(`"checksum":"${CHECKSUM_PLACEHOLDER}"`, 8, 'latin1');
    bytes.write(entryChecksum(bytes), at + '"checksum":"'.length, 'latin1');
    // What a later get returns: float16 entries rounded like the disk copy.
    const stored = this.dtype === 'float16' ? decodeEntry(bytes) : tensors;
    this.remember(key, stored);
    const previous = await stat(file).then(
      (s) => s.size,
      () => 0,
    );
    if ((this.diskBytes ?? 0) - previous + bytes.length > this.maxBytes) {
      // Make room among the unpinned entries; when only pinned ones are left, do not admit
      // (and do not look again for a while: a scan's worth of puts would each rescan).
      const room = Date.now() >= this.fullUntil && (await this.evict(bytes.length - previous, key));
      if (!room) {
        this.fullUntil = Math.max(this.fullUntil, Date.now() + FULL_RECHECK_MS);
        this.counters.rejected++;
        return stored;
      }
    }
    const temp = `${file}.tmp-${process.pid}-${++this.tempCounter}`;
    await writeFile(temp, bytes).catch((error: unknown) => {
      throw withErrorPath(error, temp);
    });
    const now = this.stamp();
    await utimes(temp, now, now);
    await rename(temp, file);
    this.diskBytes = (this.diskBytes ?? 0) - previous + bytes.length;
    return stored;
  }

  /**
   * Deletes unpinned entries, least recently used first, until `incoming` more bytes fit the
   * budget (never `keep`). Returns whether they fit; deletes nothing when they cannot.
   */
  private async evict(incoming: number, keep: string): Promise<boolean> {
    const [entries, pinned] = await Promise.all([this.scan(), pinnedGroups(this.dir)]);
    let total = entries.reduce((sum, e) => sum + e.size, 0);
    this.diskBytes = total;
    const candidates = entries
      .filter((e) => e.name !== keep + SUFFIX && !pinned.has(groupOfKey(e.name)))
      .sort((a, b) => a.mtimeMs - b.mtimeMs || (a.name < b.name ? -1 : 1));
    const freeable = candidates.reduce((sum, e) => sum + e.size, 0);
    if (total + incoming - freeable > this.maxBytes) return false;
    for (const entry of candidates) {
      if (total + incoming <= this.maxBytes) break;
      if (
        await unlink(join(this.dir, entry.name)).then(
          () => true,
          () => false,
        )
      )
        this.counters.evictions++;
      total -= entry.size;
      const key = entry.name.slice(0, -SUFFIX.length);
      const inMemory = this.memory.get(key);
      if (inMemory) {
        this.memory.delete(key);
        this.memoryUsed -= inMemory.bytes;
      }
    }
    this.diskBytes = total;
    return true;
  }

  /** get, or compute + put on a miss; concurrent calls for one key compute it once. */
  async getOrCompute(
    key: string,
    compute: () => Promise<CachedTensors> | CachedTensors,
  ): Promise<CachedTensors> {
    const running = this.pending.get(key);
    if (running) return running;
    const job = (async () => {
      const cached = await this.get(key);
      if (cached) return cached;
      return this.put(key, await compute());
    })();
    this.pending.set(key, job);
    try {
      return await job;
    } finally {
      this.pending.delete(key);
    }
  }
}
