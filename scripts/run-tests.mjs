#!/usr/bin/env node
// Runs every tests/**/*.test.ts with node's built-in test runner (through tsx), one file at a
// time: the tests share two cores and some of them start servers. Tests that run the CLI run
// the compiled bin, so dist/ is rebuilt first when it is out of date with src/.
// Usage: npm test [-- <path-substring>...]   e.g. npm test -- eval/ clip
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { buildProblem } from '../bin/build-stamp.js';

function findTests(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'fixtures' ? [] : findTests(path);
    return entry.name.endsWith('.test.ts') ? [path] : [];
  });
}

const filters = process.argv.slice(2);
const files = findTests('tests')
  .map((f) => relative('.', f))
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}
const stale = buildProblem();
if (stale) {
  console.log(`${stale.message}: building it (npm run build)`);
  const build = spawnSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
  if (build.status !== 0) process.exit(build.status ?? 1);
}
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=1', ...files],
  {
    stdio: 'inherit',
    env: {
      ...process.env,
      TF_CPP_MIN_LOG_LEVEL: process.env.TF_CPP_MIN_LOG_LEVEL ?? '2',
      // On a GPU, TensorFlow rounds float32 matmuls to TF32 (10-bit mantissas) unless told not
      // to; the parity tests' tolerances are float32's (docs/gpu.md).
      NVIDIA_TF32_OVERRIDE: process.env.NVIDIA_TF32_OVERRIDE ?? '0',
    },
  },
);
process.exit(result.status ?? 1);
