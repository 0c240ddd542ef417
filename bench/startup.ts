/** Shared by the start-up benchmarks: medians of fresh processes' wall times. */
import { execFileSync } from 'node:child_process';
import { buildProblem } from '../bin/build-stamp.js';

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** Wall milliseconds of `node <args>`, spawn to exit. */
export function wall(args: string[], cwd?: string): { ms: number; stdout: string } {
  const started = performance.now();
  const stdout = execFileSync(process.execPath, args, {
    encoding: 'utf8',
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return { ms: performance.now() - started, stdout };
}

/** The compiled CLI must be current, or the figures would describe another program. */
export function requireCurrentBuild(): void {
  const problem = buildProblem();
  if (problem) {
    console.error(`${problem.message}; ${problem.hint}`);
    process.exit(1);
  }
}
