/**
 * How a trial process is started, for every executor (local pool, Slurm): compiled
 * `dist/runner/trial-main.js` under plain Node when this module runs compiled (the CLI), or
 * `src/runner/trial-main.ts` through tsx when it runs from sources (tests, development).
 */
import { nodeArgsFor, sibling } from '../../io/node-entry.js';

/** The trial entry point: trial-main.js, or trial-main.ts from sources. */
export const TRIAL_MAIN = sibling(import.meta.url, '../trial-main');

/** `node <these arguments>` runs the trial described by `jobFile`. */
export function trialProcessArgs(jobFile: string): string[] {
  return [...nodeArgsFor(TRIAL_MAIN), jobFile];
}
