/**
 * Download progress for a terminal: one live line (percent, MB, speed) redrawn in place on a TTY,
 * one plain line per finished file otherwise (logs and CI stay readable).
 */
import { isTerminal } from '../../io/terminal.js';

export interface DownloadProgress {
  start(file: string, total: number | undefined, resumedFrom: number): void;
  advance(bytes: number): void;
  /** A finished file, or a note about it ("up to date", "restarting"). */
  done(file: string, note: string): void;
  note(line: string): void;
}

/** 1536 → "1.5 kB", 3.2e6 → "3.1 MB" (binary units, as file managers show them). */
export function humanBytes(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? Math.round(value) : value.toFixed(1)} ${units[unit]}`;
}

export function createProgress(stream: NodeJS.WriteStream = process.stderr): DownloadProgress {
  const live = isTerminal(stream);
  let file = '';
  let total: number | undefined;
  let received = 0;
  let startedAt = 0;
  let startBytes = 0;
  let lastDraw = 0;
  let drawn = false;

  const speed = () => {
    const seconds = (performance.now() - startedAt) / 1000;
    return seconds > 0 ? `${humanBytes((received - startBytes) / seconds)}/s` : '';
  };
  const clear = () => {
    if (drawn) stream.write('\r\x1b[2K');
    drawn = false;
  };
  const draw = () => {
    const width = 24;
    const fraction = total ? Math.min(received / total, 1) : 0;
    const bar = total
      ? `[${'#'.repeat(Math.round(fraction * width)).padEnd(width, '.')}] ${(fraction * 100).toFixed(0).padStart(3)}%`
      : '';
    const size = total ? `${humanBytes(received)}/${humanBytes(total)}` : humanBytes(received);
    stream.write(`\r\x1b[2K${file} ${bar} ${size} ${speed()}`);
    drawn = true;
  };

  return {
    start(name, size, resumedFrom) {
      file = name;
      total = size;
      received = resumedFrom;
      startBytes = resumedFrom;
      startedAt = performance.now();
      if (resumedFrom > 0) this.note(`${name}: resuming at ${humanBytes(resumedFrom)}`);
      if (live) draw();
    },
    advance(bytes) {
      received += bytes;
      const now = performance.now();
      if (live && now - lastDraw > 100) {
        lastDraw = now;
        draw();
      }
    },
    done(name, note) {
      clear();
      stream.write(`${name}: ${note}\n`);
    },
    note(line) {
      clear();
      stream.write(`${line}\n`);
      if (live && file && total !== undefined && received < total) draw();
    },
  };
}

/** For callers that want no output (library use, tests). */
export const silentProgress: DownloadProgress = { start() {}, advance() {}, done() {}, note() {} };

export function describeDownload(bytes: number, ms: number): string {
  return `${humanBytes(bytes)} downloaded${ms > 0 ? ` (${humanBytes(Math.round((bytes / ms) * 1000))}/s)` : ''}`;
}
