/**
 * Runs this CLI's command line again in a child process whose stderr passes through
 * `NativeLogFilter` (src/io/native-log.ts), for the commands that load the native TensorFlow
 * backend in the CLI process: libtensorflow writes its start-up lines to file descriptor 2
 * when it loads, whatever its log settings say, and Node cannot redirect a descriptor of its
 * own process (no dup2). Everything else on stderr passes unchanged, as it comes; stdin and
 * stdout are the user's own; SIGINT, SIGTERM and SIGHUP are passed on; the child's exit code,
 * or the signal that ended it, becomes this process's. VCP_EXP_TF_LOG=1 turns this off.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { NativeLogFilter } from './native-log.js';
import { STDERR_TTY_ENV } from './terminal.js';

/** Set in the child: it is already behind the filter and runs the command itself. */
export const FILTERED_CHILD_ENV = 'VCP_EXP_STDERR_FILTERED';
/** `VCP_EXP_TF_LOG=1`: run in this process and let TensorFlow's start-up lines through. */
export const TF_LOG_ENV = 'VCP_EXP_TF_LOG';

const FORWARDED: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
/**
 * How long stderr may stay open after the child exited: a process the child left running
 * (none of ours does: a managed MLflow server writes to its own log) may hold the pipe.
 */
const DRAIN_MS = 2_000;

/** Whether this process should run its command behind the filter (not already, not turned off). */
export function wantsFilteredSelf(env: NodeJS.ProcessEnv = process.env): boolean {
  return env[FILTERED_CHILD_ENV] !== '1' && env[TF_LOG_ENV] !== '1';
}

/**
 * Runs `node <execArgv> <argv[1..]>` as described above and resolves when it has ended, with
 * `process.exitCode` set to its code; a child ended by a signal ends this process with it.
 */
export async function runFilteredSelf(): Promise<void> {
  const env: NodeJS.ProcessEnv = { ...process.env, [FILTERED_CHILD_ENV]: '1' };
  if (process.stderr.isTTY) env[STDERR_TTY_ENV] = '1';
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    env,
    stdio: ['inherit', 'inherit', 'pipe'],
  });
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  for (const signal of FORWARDED) process.on(signal, forward);

  const filter = new NativeLogFilter();
  const pass = (text: string) => {
    if (text) process.stderr.write(Buffer.from(text, 'latin1'));
  };
  child.stderr.on('data', (chunk: Buffer) => pass(filter.push(chunk.toString('latin1'))));
  const drained = new Promise<void>((resolve) => child.stderr.once('close', resolve));
  try {
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>(
      (resolve, reject) => {
        child.once('error', reject);
        child.once('exit', (c, s) => resolve([c, s]));
      },
    );
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      drained,
      new Promise<void>((resolve) => (timer = setTimeout(resolve, DRAIN_MS))),
    ]);
    clearTimeout(timer);
    child.stderr.destroy();
    pass(filter.end());
    process.exitCode = code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0);
    if (signal) {
      for (const s of FORWARDED) process.off(s, forward);
      process.kill(process.pid, signal);
    }
  } finally {
    for (const signal of FORWARDED) process.off(signal, forward);
  }
}
