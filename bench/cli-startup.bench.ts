/**
 * Start-up of the CLI: `vcp-exp --version` (Node, the bin and the argument parser) and
 * `vcp-exp plan experiments/quickstart.yaml` (plus spec loading, schema validation and
 * expansion, no tfjs), as the compiled bin runs them now (with its build-stamp check), as
 * dist/cli.js alone (the check's cost), and as the bin ran before: tsx + src/cli.ts
 * (bench/tsx-bin.mjs). Medians over fresh processes; ratios against the tsx baseline of the
 * same run.
 */
import { fileURLToPath } from 'node:url';
import { median, requireCurrentBuild, wall } from './startup.js';

const RUNS = 7;
const root = (p: string) => fileURLToPath(new URL(`../${p}`, import.meta.url));
const SPEC = root('experiments/quickstart.yaml');
const ways = {
  'bin/vcp-exp.js (compiled)': [root('bin/vcp-exp.js')],
  'dist/cli.js (no stamp check)': [root('dist/cli.js')],
  'tsx + src/cli.ts (before)': [root('bench/tsx-bin.mjs')],
};

requireCurrentBuild();
for (const [command, args] of [
  ['--version', ['--version']],
  ['plan quickstart', ['plan', SPEC]],
] as const) {
  console.log(`\nvcp-exp ${command} (median of ${RUNS} processes, spawn to exit):`);
  const ms = Object.fromEntries(
    Object.entries(ways).map(([way, entry]) => {
      wall([...entry, ...args]); // warm the file cache
      return [way, median(Array.from({ length: RUNS }, () => wall([...entry, ...args]).ms))];
    }),
  );
  const baseline = ms['tsx + src/cli.ts (before)'];
  for (const [way, value] of Object.entries(ms))
    console.log(
      `  ${way.padEnd(30)} ${value.toFixed(0).padStart(6)} ms  (${(value / baseline).toFixed(2)} × before)`,
    );
}
