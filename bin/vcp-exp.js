#!/usr/bin/env node
// Runs the TypeScript sources through tsx, so the CLI never depends on a stale build.
import module from 'node:module';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../src/cli.ts', import.meta.url));
if (typeof module.register === 'function') {
  const { register } = await import('tsx/esm/api');
  register();
  await import(cli);
} else {
  // Node < 20.6 has no module.register: hand over to a child process with tsx's loader.
  const r = spawnSync(process.execPath, ['--loader', 'tsx', cli, ...process.argv.slice(2)], {
    stdio: 'inherit',
  });
  process.exit(r.status ?? 1);
}
