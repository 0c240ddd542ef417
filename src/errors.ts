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
