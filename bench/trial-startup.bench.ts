/**
 * Where a trial process's start-up goes, before it computes anything: Node itself, the tfjs
 * import, the native backend, the trial's other modules (sharp, tokenizers, the model,
 * datasets and eval code), the MLflow client, loading the tiny CLIP and building the method.
 * Measured twice: compiled (dist/, how trial processes start now) and from sources through
 * tsx (how they started before the compiled CLI, and how tests still run them). Each figure
 * is the median over a few fresh processes.
 */
import { fileURLToPath } from 'node:url';
import { median, requireCurrentBuild, wall } from './startup.js';

const RUNS = 5;
const PROBE = fileURLToPath(new URL('./trial-startup-probe.mjs', import.meta.url));
const TSX = import.meta.resolve('tsx');

requireCurrentBuild();
const bare = median(Array.from({ length: RUNS }, () => wall(['-e', '0']).ms));
const withTsx = median(Array.from({ length: RUNS }, () => wall(['--import', TSX, '-e', '0']).ms));
console.log(`trial process start-up (median of ${RUNS} processes, ms since the process started):`);
console.log(`  ${'node -e 0 (spawn to exit)'.padEnd(34)} ${bare.toFixed(0).padStart(6)}`);
console.log(`  ${'node --import tsx -e 0'.padEnd(34)} ${withTsx.toFixed(0).padStart(6)}`);

const totals: Record<string, number> = {};
for (const [label, args] of [
  ['compiled (dist/, as trials run now)', [PROBE, 'dist']],
  ['from sources through tsx (as before)', ['--import', TSX, PROBE, 'src']],
] as const) {
  const probes = Array.from({ length: RUNS }, () => {
    const { ms, stdout } = wall([...args]);
    return { ms, marks: JSON.parse(stdout.trim().split('\n').at(-1)!) as [string, number][] };
  });
  console.log(`\n${label}:`);
  let previous = 0;
  for (const [i, [stage]] of probes[0].marks.entries()) {
    const at = median(probes.map((p) => p.marks[i][1]));
    console.log(
      `  ${stage.padEnd(34)} ${at.toFixed(0).padStart(6)}  (+${(at - previous).toFixed(0)})`,
    );
    previous = at;
  }
  totals[label] = median(probes.map((p) => p.ms));
  console.log(
    `  ${'spawn to exit'.padEnd(34)} ${totals[label].toFixed(0).padStart(6)}  (+${(totals[label] - previous).toFixed(0)} exit)`,
  );
}
const [compiled, sources] = Object.values(totals);
console.log(
  `\ncompiled / from sources: ${(compiled / sources).toFixed(2)} (${(sources - compiled).toFixed(0)} ms saved per trial process)`,
);
