/**
 * Child process of trial-startup.bench.ts: goes through a trial process's start-up in the
 * order trial-main.ts does and prints, as one JSON line, the milliseconds since the process
 * started at the end of each stage.
 */
import { join } from 'node:path';

const marks: [string, number][] = [['node + tsx + probe', performance.now()]];
const mark = (stage: string) => marks.push([stage, performance.now()]);

await import('../src/model/tf.js');
mark('import tfjs');
const { initBackend } = await import('../src/model/backend.js');
await initBackend('tensorflow');
mark('tensorflow backend ready');
await import('../src/runner/trial.js');
mark('import trial modules');
await import('../src/tracking/layout.js');
await import('../src/tracking/client.js');
mark('import MLflow client');
const { loadMethod } = await import('../src/model/load.js');
const { backbone, method } = await loadMethod('vcp-clip', {
  backbone: join(import.meta.dirname, '../tests/fixtures/clip/tiny-clip'),
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
