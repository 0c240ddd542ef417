/**
 * Command-line entry: parses arguments and hands each command to its module in
 * src/commands/ (imported lazily, so `vcp-exp --help` stays fast). Nothing else lives here.
 */
import { cac } from 'cac';
import { readFileSync } from 'node:fs';
import { exitCodeOf, formatError } from './errors.js';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
const cli = cac('vcp-exp');

cli.option('--backend <name>', '[string] tfjs backend: auto | tensorflow | wasm | cpu', { default: 'auto' });
cli.option('--debug', '[boolean] print full stack traces on errors');

cli
  .command('backend', 'Show the tfjs backend vcp-exp would use, its threads and its matMul speed')
  .action(async (options: { backend: string }) => (await import('./commands/backend.js')).backendCommand(options));

cli.help();
cli.version(pkg.version);

async function main(): Promise<void> {
  cli.parse(process.argv, { run: false });
  if (!cli.matchedCommand) {
    if (cli.args.length > 0) {
      console.error(`unknown command "${cli.args.join(' ')}"; see vcp-exp --help`);
      process.exitCode = 2;
    } else if (!cli.options.help && !cli.options.version) {
      cli.outputHelp();
    }
    return;
  }
  await cli.runMatchedCommand();
}

main().catch((error: unknown) => {
  console.error(`vcp-exp: ${formatError(error, Boolean(cli.options.debug))}`);
  process.exitCode = exitCodeOf(error);
});
