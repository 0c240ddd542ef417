/**
 * TensorFlow's C++ start-up lines (absl's pre-init warning, the oneDNN notice): libtensorflow
 * 2.21 writes them straight to stderr whatever TF_CPP_MIN_LOG_LEVEL, TF_ENABLE_ONEDNN_OPTS or
 * ABSL_MIN_LOG_LEVEL say, and they are of no use to a user. Its warnings and errors (level
 * W/E/F) are kept. Two places leave them out: the copies of a trial's log uploaded to MLflow
 * (the trial's stderr goes to the log file directly: a pipe through the runner would break
 * when the runner dies), and the stderr of the CLI's own commands that load the native backend
 * (src/io/filtered-self.ts runs them in a child and passes its stderr through `NativeLogFilter`).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

const ABSL_WARNING =
  'WARNING: All log messages before absl::InitializeLog() is called are written to STDERR';
/** An absl info line: `I<mmdd> <time> <thread> <file>:<line>] <message>`. */
const INFO_LINE = /^I\d{4} [\d:.]+\s+\d+ [\w.-]+:\d+\] /;
/** The start of a line that may still become an info line (the pieces of INFO_LINE, in turn). */
const INFO_START = /^I(?:\d{0,3}|\d{4}(?: [\d:.]*(?:\s+\d*(?: [\w.-]*(?::\d*\]?)?)?)?)?)$/;

export const isNativeLogNoise = (line: string): boolean =>
  line === ABSL_WARNING || INFO_LINE.test(line);

/** Whether a line that starts with `start` can still turn out to be noise. */
const mayBecomeNoise = (start: string): boolean =>
  ABSL_WARNING.startsWith(start) || INFO_START.test(start);

export function withoutNativeLogNoise(text: string): string {
  return text
    .split('\n')
    .filter((line) => !isNativeLogNoise(line))
    .join('\n');
}

/** Writes `from` without the noise to `to` (which may be `from`). */
export async function copyWithoutNativeLogNoise(from: string, to: string): Promise<void> {
  const text = await readFile(from, 'utf8');
  await mkdir(dirname(to), { recursive: true });
  await writeFile(to, withoutNativeLogNoise(text));
}

/**
 * The noise taken out of a stream, chunk by chunk, with nothing else held back: a line is
 * passed on as soon as its start rules out noise (a progress line redrawn with `\r` and no
 * newline shows at once); only a start that may still become noise waits for more, and
 * `end()` gives back whatever is left. Work on latin1 strings to pass bytes through unchanged.
 */
export class NativeLogFilter {
  /** The current line so far, while it may still be noise. */
  private pending = '';
  /** What the rest of the current line is: not known yet, passed on, or dropped. */
  private verdict: 'open' | 'keep' | 'drop' = 'open';

  /** The part of `chunk` (after what earlier chunks left pending) to pass on now. */
  push(chunk: string): string {
    let out = '';
    let at = 0;
    while (at < chunk.length) {
      const newline = chunk.indexOf('\n', at);
      const ends = newline !== -1;
      const piece = chunk.slice(at, ends ? newline + 1 : chunk.length);
      at += piece.length;
      out += this.take(piece, ends);
    }
    return out;
  }

  /** What is still held at the end of the stream (a last line without newline). */
  end(): string {
    const rest = this.pending;
    this.pending = '';
    this.verdict = 'open';
    return rest;
  }

  private take(piece: string, ends: boolean): string {
    if (this.verdict !== 'open') {
      const out = this.verdict === 'keep' ? piece : '';
      if (ends) this.verdict = 'open';
      return out;
    }
    const line = this.pending + (ends ? piece.slice(0, -1) : piece);
    this.pending = '';
    if (ends) return isNativeLogNoise(line) ? '' : `${line}\n`;
    if (INFO_LINE.test(line)) this.verdict = 'drop';
    else if (mayBecomeNoise(line)) this.pending = line;
    else {
      this.verdict = 'keep';
      return line;
    }
    return '';
  }
}
