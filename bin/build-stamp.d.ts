/** Types of build-stamp.js for the TypeScript callers (tests, benchmarks). */
export const ROOT: string;
export interface BuildStamp {
  hash: string;
  files: Record<string, string>;
}
export function snapshot(): BuildStamp;
export function writeStamp(stamp: BuildStamp): void;
export function buildProblem(): { message: string; hint: string } | undefined;
