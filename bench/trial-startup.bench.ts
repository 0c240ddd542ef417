/**
 * Where a trial process's start-up goes, before it computes anything: Node itself, tsx, the
 * tfjs import, the native backend, the trial's other modules (sharp, tokenizers, the model,
 * datasets and eval code), the MLflow client, loading the tiny CLIP and building the method.
 * Each figure is the median over a few fresh processes, as a trial process starts.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const RUNS = 5;
const PROBE = fileURLToPath(new URL('./trial-startup-probe.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** Wall milliseconds of `node <args>`, spawn to exit. */
function wall(args: string[]): { ms: number; stdout: string } {
  const started = performance.now();
  const stdout = execFileSync(process.execPath, args, { encoding: 'utf8' });
  return { ms: performance.now() - started, stdout };
}

const bare = median(Array.from({ length: RUNS }, () => wall(['-e', '0']).ms));
const withTsx = median(Array.from({ length: RUNS }, () => wall(['--import', TSX, '-e', '0']).ms));
const probes = Array.from({ length: RUNS }, () => {
  const { ms, stdout } = wall(['--import', TSX, PROBE]);
  return { ms, marks: JSON.parse(stdout.trim().split('\n').at(-1)!) as [string, number][] };
});

console.log(`trial process start-up (median of ${RUNS} processes, ms since the process started):`);
console.log(`  ${'node -e 0 (spawn to exit)'.padEnd(34)} ${bare.toFixed(0).padStart(6)}`);
console.log(`  ${'node --import tsx -e 0'.padEnd(34)} ${withTsx.toFixed(0).padStart(6)}`);
let previous = 0;
for (const [i, [stage]] of probes[0].marks.entries()) {
  const at = median(probes.map((p) => p.marks[i][1]));
  console.log(
    `  ${stage.padEnd(34)} ${at.toFixed(0).padStart(6)}  (+${(at - previous).toFixed(0)})`,
  );
  previous = at;
}
const total = median(probes.map((p) => p.ms));
console.log(
  `  ${'spawn to exit'.padEnd(34)} ${total.toFixed(0).padStart(6)}  (+${(total - previous).toFixed(0)} exit)`,
);
