// A trial-like child process for resilience.test.ts: logs a metric through a RunLogger with
// the exit handlers installed, prints "ready" once the first points are on the server, then
// either keeps logging until it is killed (mode "run") or throws (mode "throw").
// Usage: node --import tsx tests/tracking/child-logger.ts <tracking-uri> <run-id> <journal-dir> run|throw
import { MlflowClient } from '../../src/tracking/client.js';
import { endRunOnExit } from '../../src/tracking/exit.js';
import { RunLogger } from '../../src/tracking/run-logger.js';

const [trackingUri, runId, journalDir, mode] = process.argv.slice(2);
const client = new MlflowClient({
  trackingUri,
  env: {},
  retry: { attempts: 3, baseDelayMs: 50, maxDelayMs: 200 },
});
const logger = new RunLogger({ client, runId, journalDir, flushEvery: 10, flushIntervalMs: 100 });
endRunOnExit(logger);

for (let step = 0; step < 10; step++) logger.logMetric('progress', step, step);
await logger.flush();
console.log('ready');

if (mode === 'throw') {
  setTimeout(() => {
    throw new Error('simulated trial failure: NaN loss at step 10');
  }, 10);
} else {
  let step = 10;
  setInterval(() => logger.logMetric('progress', step, step++), 5);
}
