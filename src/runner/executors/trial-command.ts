/**
 * The command line of a trial process, one place for both executors: the local executor
 * spawns it as a child, a Slurm array task runs it from its job script.
 */
import { fileURLToPath } from 'node:url';

const TRIAL_MAIN = fileURLToPath(new URL('../trial-main.ts', import.meta.url));
/** tsx's loader, resolved from here so that trials start from any working directory. */
const TSX = import.meta.resolve('tsx');

/** Executable and arguments that run one trial, without the job file (always last). */
export function trialCommandPrefix(): { file: string; args: string[] } {
  return { file: process.execPath, args: ['--import', TSX, TRIAL_MAIN] };
}

/** The full command of the trial described by `jobFile`. */
export function trialCommand(jobFile: string): { file: string; args: string[] } {
  const { file, args } = trialCommandPrefix();
  return { file, args: [...args, jobFile] };
}
