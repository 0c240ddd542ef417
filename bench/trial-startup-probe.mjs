/**
 * Child process of trial-startup.bench.ts: goes through a trial process's start-up in the
 * order trial-main does, from `dist` (compiled, as trials run) or `src` (through tsx, as
 * trials ran before the compiled CLI), and prints, as one JSON line, the milliseconds since
 * the process started at the end of each stage.
 * Usage: node bench/trial-startup-probe.mjs dist | node --import tsx bench/trial-startup-probe.mjs src
 */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

const root = process.argv[2];
if (root !== 'dist' && root !== 'src') throw new Error('usage: trial-startup-probe.mjs dist|src');
const from = (module) => new URL(`../${root}/${module}`, import.meta.url).href;

const marks = [[root === 'src' ? 'node + tsx + probe' : 'node + probe', performance.now()]];
const mark = (stage) => marks.push([stage, performance.now()]);

await import(from('model/tf.js'));
mark('import tfjs');
const { initBackend } = await import(from('model/backend.js'));
await initBackend('tensorflow');
mark('tensorflow backend ready');
await import(from('runner/trial.js'));
mark('import trial modules');
await import(from('tracking/layout.js'));
await import(from('tracking/client.js'));
mark('import MLflow client');
const { loadMethod } = await import(from('model/load.js'));
const { backbone, method } = await loadMethod('vcp-clip', {
  backbone: join(import.meta.dirname, '../assets/clip/tiny-clip'),
  activation: 'quick_gelu',
  image_size: 32,
  layers: [1, 2, 3],
  n_ctx: 2,
  deep_prompt_len: 1,
  pre_vcp: false,
  topk: 16,
});
mark('CLIP + method loaded');
method.dispose();
backbone.clip.dispose();
console.log(JSON.stringify(marks));
