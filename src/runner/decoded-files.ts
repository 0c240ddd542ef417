/**
 * Which dataset files decoded without error, remembered across commands in the state
 * directory (`<state>/data-checks/<root hash>.json`), so the full-decode check that `plan`
 * and `run` make before any trial costs a dataset's decode once, not once per command. A file
 * counts as known only while its size, mtime and inode are those it had when it decoded.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DecodedFiles } from '../datasets/check.js';

async function fingerprint(path: string): Promise<string | undefined> {
  const info = await stat(path).catch(() => undefined);
  return info ? `${info.size}:${info.mtimeMs}:${info.ino}` : undefined;
}

export class DecodedFilesRecord implements DecodedFiles {
  private readonly file: string;
  private readonly files: Record<string, string>;
  private dirty = false;

  constructor(
    stateDir: string,
    private readonly root: string,
  ) {
    const hash = createHash('sha256').update(root).digest('hex').slice(0, 16);
    this.file = join(stateDir, 'data-checks', `${hash}.json`);
    let files: Record<string, string> = {};
    try {
      const saved = JSON.parse(readFileSync(this.file, 'utf8')) as {
        root?: string;
        files?: Record<string, string>;
      };
      if (saved.root === root && saved.files) files = saved.files;
    } catch {
      // none yet, or unreadable: every file is decoded again
    }
    this.files = files;
  }

  async has(path: string): Promise<boolean> {
    const known = this.files[path];
    return known !== undefined && known === (await fingerprint(path));
  }

  async add(path: string): Promise<void> {
    const print = await fingerprint(path);
    if (print === undefined || this.files[path] === print) return;
    this.files[path] = print;
    this.dirty = true;
  }

  /** Writes the record (atomically) when something was added; a failure only costs a re-decode later. */
  async save(): Promise<void> {
    if (!this.dirty) return;
    const temp = `${this.file}.tmp-${process.pid}`;
    try {
      await mkdir(join(this.file, '..'), { recursive: true });
      await writeFile(temp, JSON.stringify({ root: this.root, files: this.files }));
      await rename(temp, this.file);
      this.dirty = false;
    } catch {
      // e.g. a full disk: the check itself is still valid
    }
  }
}
