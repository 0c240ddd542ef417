/**
 * Write-ahead journal of one run's tracking data that could not be delivered: an
 * append-only, fsync'd JSONL file (`<journalDir>/<runId>.jsonl`). Entries are replayed in
 * order and each one is acknowledged in the same file once the server has it, so a replay
 * interrupted at any point resumes without sending anything twice.
 */
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import type { Batch, RunStatus } from './types.js';

export type JournalEntry =
  | { t: 'batch'; seq: number; batch: Batch; uncertain?: boolean }
  | { t: 'artifact'; seq: number; file: string; target: string }
  | { t: 'end'; seq: number; status: RunStatus; endTime: number };

type Record_ = JournalEntry | { t: 'ack'; seq: number } | { t: 'uncertain'; seq: number };

export class RunJournal {
  readonly path: string;
  /** Copies of artifacts that could not be uploaded. */
  readonly filesDir: string;
  private nextSeq = 0;

  constructor(
    readonly dir: string,
    readonly runId: string,
  ) {
    this.path = join(dir, `${runId}.jsonl`);
    this.filesDir = join(dir, `${runId}.files`);
    for (const r of this.records()) this.nextSeq = Math.max(this.nextSeq, r.seq + 1);
    // After a write torn by a crash, start the next record on a line of its own.
    if (
      existsSync(this.path) &&
      !readFileSync(this.path, 'utf8').endsWith('\n') &&
      statSync(this.path).size > 0
    )
      this.appendRaw('\n');
  }

  /** Run ids that have a journal in `dir`. */
  static runIds(dir: string): string[] {
    if (!existsSync(dir)) return [];
    return readdirSync(dir)
      .filter((f) => f.endsWith('.jsonl'))
      .map((f) => f.slice(0, -'.jsonl'.length));
  }

  private records(): Record_[] {
    if (!existsSync(this.path)) return [];
    const out: Record_[] = [];
    for (const line of readFileSync(this.path, 'utf8').split('\n')) {
      if (!line) continue;
      try {
        out.push(JSON.parse(line) as Record_);
      } catch {
        // A line torn by a crash mid-write: its entry was never acknowledged to the caller.
      }
    }
    return out;
  }

  private append(records: Record_[]): void {
    if (records.length > 0) this.appendRaw(records.map((r) => JSON.stringify(r) + '\n').join(''));
  }

  private appendRaw(text: string): void {
    const fresh = !existsSync(this.path);
    if (fresh) mkdirSync(this.dir, { recursive: true });
    const fd = openSync(this.path, 'a');
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (fresh) syncDir(this.dir);
  }

  /** Appends entries (durably) and returns them with their sequence numbers. */
  add(
    entries: Array<
      | Omit<Extract<JournalEntry, { t: 'batch' }>, 'seq'>
      | Omit<Extract<JournalEntry, { t: 'artifact' }>, 'seq'>
      | Omit<Extract<JournalEntry, { t: 'end' }>, 'seq'>
    >,
  ): void {
    this.append(entries.map((e) => ({ ...e, seq: this.nextSeq++ }) as JournalEntry));
  }

  ack(seq: number): void {
    this.append([{ t: 'ack', seq }]);
  }

  /** Marks an entry as possibly applied already (a send whose answer was lost). */
  markUncertain(seq: number): void {
    this.append([{ t: 'uncertain', seq }]);
  }

  /** Entries not yet acknowledged, oldest first. */
  pending(): JournalEntry[] {
    const records = this.records();
    const acked = new Set(records.filter((r) => r.t === 'ack').map((r) => r.seq));
    const uncertain = new Set(records.filter((r) => r.t === 'uncertain').map((r) => r.seq));
    return records
      .filter((r): r is JournalEntry => r.t !== 'ack' && r.t !== 'uncertain' && !acked.has(r.seq))
      .map((r) => (r.t === 'batch' && uncertain.has(r.seq) ? { ...r, uncertain: true } : r));
  }

  get isEmpty(): boolean {
    return this.pending().length === 0;
  }

  /** Removes the journal once everything in it was delivered. */
  removeIfDone(): void {
    if (!existsSync(this.path) || !this.isEmpty) return;
    rmSync(this.path, { force: true });
    rmSync(this.filesDir, { recursive: true, force: true });
  }
}

function syncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Some filesystems refuse fsync on a directory; the file itself is synced.
  }
}
