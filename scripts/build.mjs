#!/usr/bin/env node
// `npm run build` (and `prepare`): compiles src/ into dist/ with tsc, then stamps dist/ with
// the sources it was built from (bin/build-stamp.js), so the bin can tell a
// stale build from a current one.
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { ROOT, snapshot, writeStamp } from '../bin/build-stamp.js';

const stamp = snapshot();
rmSync(join(ROOT, 'dist'), { recursive: true, force: true });
const tsc = createRequire(join(ROOT, 'package.json')).resolve('typescript/bin/tsc');
const r = spawnSync(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.build.json')], {
  stdio: 'inherit',
});
if (r.status !== 0) process.exit(r.status ?? 1);
writeStamp(stamp);
