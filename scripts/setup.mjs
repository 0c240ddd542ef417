#!/usr/bin/env node
// One idempotent set-up step for everything vcp-exp needs beyond `npm install`:
// the native TensorFlow backend and the project's pinned MLflow. Each part is its own
// script (npm run setup:native, npm run setup:mlflow) and can be re-run alone.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const parts = ['scripts/setup-native.mjs', 'scripts/setup-mlflow.mjs'];
let failed = false;
for (const script of parts) {
  if (!existsSync(script)) continue;
  const r = spawnSync(process.execPath, [script, ...process.argv.slice(2)], { stdio: 'inherit' });
  if (r.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
