/**
 * Whether the user sees a stream on a terminal. A command the CLI runs in a child behind a
 * stderr filter (src/io/filtered-self.ts) has a pipe for stderr; the CLI then says in
 * VCP_EXP_STDERR_TTY that the user's stderr is a terminal, so live progress lines still draw.
 */
export const STDERR_TTY_ENV = 'VCP_EXP_STDERR_TTY';

export function isTerminal(stream: NodeJS.WriteStream): boolean {
  if (stream.isTTY === true) return true;
  return stream === process.stderr && process.env[STDERR_TTY_ENV] === '1';
}
