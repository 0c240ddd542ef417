/**
 * Errors a user can act on. The CLI prints `message` (and `hint`) without a stack trace and
 * exits with `exitCode`; anything else is a bug and prints its stack.
 */
export class UserError extends Error {
  override name = 'UserError';
  readonly hint?: string;
  readonly exitCode: number;

  constructor(
    message: string,
    options: { hint?: string; exitCode?: number; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.hint = options.hint;
    this.exitCode = options.exitCode ?? 1;
  }
}

/** Renders any error for the terminal: compact for user errors, with the stack otherwise. */
export function formatError(error: unknown, debug: boolean): string {
  if (error instanceof UserError && !debug) {
    return error.hint ? `${error.message}\n  hint: ${error.hint}` : error.message;
  }
  if (error instanceof Error)
    return debug || !(error instanceof UserError) ? (error.stack ?? error.message) : error.message;
  return String(error);
}

export function exitCodeOf(error: unknown): number {
  return error instanceof UserError ? error.exitCode : 1;
}

/** Exit code of a process that stopped because a disk was full (ENOSPC's errno). */
export const DISK_FULL_EXIT_CODE = 28;

const DISK_FULL_TEXT =
  /ENOSPC|EDQUOT|no space left on device|disk quota exceeded|database or disk is full/i;

/** The first error in `error`'s cause chain that says a disk (or quota) is full. */
function diskFullCause(error: unknown): (Error & { path?: string }) | undefined {
  let e: unknown = error;
  for (let depth = 0; depth < 5 && e instanceof Error; depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT' || DISK_FULL_TEXT.test(e.message)) return e;
    e = e.cause;
  }
  return undefined;
}

/** True when `error` (or its cause) is a full disk: ENOSPC, a quota, SQLite's "disk is full". */
export function isDiskFull(error: unknown): boolean {
  return diskFullCause(error) !== undefined;
}

/**
 * "disk full at <path>: ENOSPC (no space left on device)" for a full-disk error, with the path
 * the error names (Node's errors carry it; others, such as sharp's, write it in the message).
 */
export function diskFullReason(error: unknown): string {
  const cause: Error & { path?: string; code?: string } =
    diskFullCause(error) ?? (error instanceof Error ? error : new Error(String(error)));
  // SQLite's words, as an MLflow server with its store on a full disk answers.
  if (/database or disk is full/i.test(cause.message))
    return `disk full at the MLflow server's store: ${cause.message.split('\n')[0]}`;
  const path =
    cause.path ??
    /'(\/[^']+)'/.exec(cause.message)?.[1] ??
    /(\/[^\s:'",]+)/.exec(cause.message)?.[1];
  const what =
    cause.code === 'EDQUOT' || /quota/i.test(cause.message)
      ? 'EDQUOT (disk quota exceeded)'
      : 'ENOSPC (no space left on device)';
  if (path) return `disk full at ${path}: ${what}`;
  return `disk full: ${cause.message.split('\n')[0]}`;
}
