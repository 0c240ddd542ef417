/**
 * `vcp-exp quickstart`: the quickstart sweep from anywhere, into the current directory. The
 * package's experiments/quickstart.yaml is copied to ./quickstart.yaml (its synthetic data
 * under ./.vcp-exp/data/synth, generated on the first run), then run like `vcp-exp run` and
 * reported like `vcp-exp report` (./reports/quickstart/). An existing ./quickstart.yaml is
 * used as it is, so it can be edited and the command repeated: finished trials are not re-run.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { projectRoot } from '../io/package-root.js';
import { synthDataDir } from '../runner/synth-roots.js';
import { resolveStateDir } from '../tracking/server.js';
import { reportCommand } from './report.js';
import { runCommand, type RunCommandOptions } from './run.js';

export const QUICKSTART_FILE = 'quickstart.yaml';
const DATA_ROOT = '.vcp-exp/data/synth';

/**
 * The package's quickstart spec for the current directory: its data roots (written relative
 * to experiments/) point to `dataRoot` (default `DATA_ROOT`; under the state directory, the
 * only place `vcp-exp run` generates synthetic data), and its header says how to repeat it.
 */
export function quickstartSpecText(dataRoot = DATA_ROOT): string {
  const source = join(projectRoot(), 'experiments', QUICKSTART_FILE);
  const text = readFileSync(source, 'utf8');
  const roots = text.split(`root: ../${DATA_ROOT}`);
  if (roots.length !== 3)
    throw new Error(`${source}: expected its train and eval roots to be ../${DATA_ROOT}`);
  const body = roots.join(`root: ${dataRoot}`).replace(/^(#.*\n)+/, '');
  return [
    '# Quickstart, written by `vcp-exp quickstart`: a small sweep on synthetic data with the tiny',
    '# CLIP shipped with vcp-exp; runs on a laptop CPU. The data is generated under',
    `# ${dataRoot} on the first run. Edit it and repeat \`vcp-exp quickstart\` (finished`,
    '# trials are not re-run), or use vcp-exp plan | run | report quickstart.yaml.',
    body,
  ].join('\n');
}

export async function quickstartCommand(options: RunCommandOptions): Promise<void> {
  const file = resolve(QUICKSTART_FILE);
  if (existsSync(file)) console.log(`using ${file}`);
  else {
    // $VCP_EXP_STATE_DIR may move the state directory: the data goes under it all the same.
    const dataRoot = relative(process.cwd(), join(synthDataDir(resolveStateDir()), 'synth'));
    writeFileSync(file, quickstartSpecText(dataRoot || DATA_ROOT));
    console.log(`wrote ${file}`);
  }
  await runCommand(file, options);
  await reportCommand(file, { trackingUri: options.trackingUri });
  console.log(
    `\nlook at: ${resolve('reports', 'quickstart')}/ (tables and figures), vcp-exp mlflow ui (every run)`,
  );
}
