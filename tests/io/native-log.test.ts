/**
 * TensorFlow's start-up lines are recognised whole, and the streaming filter drops exactly
 * them however a stream is cut into chunks (mid-line, mid-noise, one byte at a time), passes
 * everything else unchanged, shows a line as soon as its start rules out noise, and gives the
 * last line back at the end even without a newline.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  isNativeLogNoise,
  NativeLogFilter,
  withoutNativeLogNoise,
} from '../../src/io/native-log.js';

const ABSL =
  'WARNING: All log messages before absl::InitializeLog() is called are written to STDERR';
const ONEDNN =
  'I0000 00:00:1796019842.332795   29432 port.cc:153] oneDNN custom operations are on. You may see slightly different numerical results.';
const CPU_INFO =
  'I1130 06:23:28.123456 4242 cpu_feature_guard.cc:210] This TensorFlow binary is optimized.';
const KEPT = [
  'backend: tensorflow (cpu, 2 threads, @tensorflow/tfjs-node)',
  'W0000 00:00:1796019842.3 29432 gpu_device.cc:2342] Cannot dlopen some GPU libraries.',
  'E0000 00:00:1796019842.3 29432 cuda_driver.cc:10] failed call to cuInit',
  'I found 3 images', // starts like an info line, is not one
  'I0000 is not a log line either',
  'WARNING: All log messages before absl', // a prefix of the warning, not the warning
  `${ABSL} (and more)`,
  '',
  'vcp-exp: nothere.png: no such file\n  hint: give an image file',
  '\r\x1b[2Kmodel.safetensors [####....] 50%  \u00e9\u00e8 bytes', // latin1 round trip
];

test('the start-up lines are noise; warnings, errors and look-alikes are not', () => {
  for (const line of [ABSL, ONEDNN, CPU_INFO]) assert.ok(isNativeLogNoise(line), line);
  for (const line of KEPT.flatMap((l) => l.split('\n'))) assert.ok(!isNativeLogNoise(line), line);
  assert.equal(withoutNativeLogNoise(`${ABSL}\na\n${ONEDNN}\nb`), 'a\nb');
});

/** Every cut of `text` into three chunks (and one byte at a time): the output is `want`. */
function checkAllCuts(text: string, want: string): void {
  const run = (chunks: string[]) => {
    const filter = new NativeLogFilter();
    return chunks.map((c) => filter.push(c)).join('') + filter.end();
  };
  assert.equal(run([...text]), want, 'one character at a time');
  for (let i = 0; i <= text.length; i += 3)
    for (let j = i; j <= text.length; j += 7) {
      const got = run([text.slice(0, i), text.slice(i, j), text.slice(j)]);
      assert.equal(got, want, `cut at ${i} and ${j}`);
    }
}

test('noise is dropped and the rest passed unchanged, however the stream is cut', () => {
  const kept = KEPT.map((l) => `${l}\n`);
  const text = [ABSL, ONEDNN, kept[0], CPU_INFO, ...kept.slice(1)]
    .map((l) => (l.endsWith('\n') ? l : `${l}\n`))
    .join('');
  checkAllCuts(text, kept.join(''));
  // A last line without newline comes back at the end; a noise line without one is dropped.
  checkAllCuts(`${ONEDNN}\nlast words`, 'last words');
  checkAllCuts(`a\n${ONEDNN}`, 'a\n');
  checkAllCuts(`a\nI0000 00:0`, 'a\nI0000 00:0');
});

test('a line is passed on as soon as its start rules out noise', () => {
  const filter = new NativeLogFilter();
  assert.equal(filter.push('\r\x1b[2Kweights 10%'), '\r\x1b[2Kweights 10%', 'a progress redraw');
  assert.equal(filter.push('\r\x1b[2Kweights 20%'), '\r\x1b[2Kweights 20%');
  assert.equal(filter.push('\nI000'), '\n', 'may still become an info line: held');
  assert.equal(filter.push('0 00:00:17.5 1 port.cc:1'), '');
  assert.equal(filter.push('53] oneDNN'), '', 'an info line: dropped up to its newline');
  assert.equal(filter.push(' custom operations\nWARN'), '');
  assert.equal(filter.push('ING: disk'), 'WARNING: disk', 'not the absl warning after all');
  assert.equal(filter.push(' almost full\n'), ' almost full\n');
  assert.equal(filter.end(), '');
});
