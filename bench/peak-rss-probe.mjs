// Preloaded into every Node process of a benchmarked command (NODE_OPTIONS=--import=…): prints
// the process's peak resident memory when it exits, for infer.bench.ts to take the largest.
import { writeSync } from 'node:fs';

process.on('exit', () => {
  try {
    writeSync(2, `peak-rss ${process.pid} ${process.resourceUsage().maxRSS * 1024}\n`);
  } catch {
    // stderr closed: nothing to report to
  }
});
