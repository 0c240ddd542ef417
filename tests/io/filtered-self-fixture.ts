/**
 * A stand-in CLI for tests/io/filtered-self.test.ts: run with a mode, it runs itself again
 * behind the stderr filter (src/io/filtered-self.ts) and, as that child, does what the mode says.
 */
import { runFilteredSelf, wantsFilteredSelf } from '../../src/io/filtered-self.js';
import { isTerminal } from '../../src/io/terminal.js';

const ABSL =
  'WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n';
const ONEDNN =
  'I0000 00:00:1796019842.332795   29432 port.cc:153] oneDNN custom operations are on.\n';
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function child(mode: string | undefined): Promise<void> {
  if (mode === 'noise') {
    process.stdout.write('stdout line\n');
    for (const chunk of [
      ABSL.slice(0, 30),
      ABSL.slice(30),
      'kept 1\nI0000 00:00',
      ONEDNN.slice(11),
    ]) {
      process.stderr.write(chunk);
      await pause(20);
    }
    process.stderr.write('W0000 00:00:1.5 1 x.cc:2] a TensorFlow warning\nlast, no newline');
    process.exitCode = 7;
  } else if (mode === 'wait') {
    // Prints its pid, then waits to be stopped (SIGINT: exits 130 after a line; else the default).
    process.on('SIGINT', () => {
      process.stderr.write('child: interrupted\n');
      process.exit(130);
    });
    process.stdout.write(`ready ${process.pid}\n`);
    setInterval(() => undefined, 1000);
  } else if (mode === 'prompt') {
    // Half a line on stderr, the rest only once stdin says so: the parent must not wait for it.
    process.stderr.write('progress 50%');
    process.stdin.once('data', (data) => {
      process.stderr.write(` then ${String(data).trim()}\n`);
      process.stdin.destroy();
    });
  } else if (mode === 'tty') {
    process.stdout.write(`stderr is a terminal: ${isTerminal(process.stderr)}\n`);
  }
}

if (wantsFilteredSelf()) await runFilteredSelf();
else await child(process.argv[2]);
