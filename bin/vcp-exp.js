#!/usr/bin/env node
// Runs the compiled CLI (dist/, built by `npm run build`, which `npm install` runs through
// `prepare`). In a checkout with src/, a dist/ older than src/ is refused, never run.
import { buildProblem } from './build-stamp.js';

const problem = buildProblem();
if (problem) {
  console.error(`vcp-exp: ${problem.message}\n  hint: ${problem.hint}`);
  process.exit(1);
}
await import('../dist/cli.js');
