/**
 * How a trial process is started, for every executor (local pool, Slurm): compiled
 * `dist/runner/trial-main.js` under plain Node when this module runs compiled (the CLI), or
 * `src/runner/trial-main.ts` through tsx when it runs from sources (tests, development).
 */
import { fileURLToPath } from 'node:url';

/** True when this code runs from src/*.ts (through tsx), not from the compiled dist/. */
export const FROM_SOURCES = import.meta.url.endsWith('.ts');

/** The trial entry point next to this module: trial-main.js, or trial-main.ts from sources. */
export const TRIAL_MAIN = fileURLToPath(
  new URL(`../trial-main.${FROM_SOURCES ? 'ts' : 'js'}`, import.meta.url),
);

/** `node <these arguments>` runs the trial described by `jobFile`. */
export function trialProcessArgs(jobFile: string): string[] {
  // tsx is a development dependency: resolved only when running from sources.
  return FROM_SOURCES
    ? ['--import', import.meta.resolve('tsx'), TRIAL_MAIN, jobFile]
    : [TRIAL_MAIN, jobFile];
}
