import { describeBackend, initBackend, type BackendChoice } from '../model/backend.js';
import { tf } from '../model/tf.js';

/** `vcp-exp backend`: which backend, how many threads, how fast a 1024³ matMul runs. */
export async function backendCommand(options: { backend: string }): Promise<void> {
  const info = await initBackend(options.backend as BackendChoice);
  console.log(`backend: ${describeBackend(info)}`);
  const n = 1024;
  const [a, b] = [tf.randomNormal([n, n]), tf.randomNormal([n, n])];
  // Never return a TypedArray from tf.tidy: tfjs walks it element by element looking for tensors.
  const product = () => tf.tidy(() => void tf.matMul(a, b).dataSync());
  product(); // warm-up
  const repeats = info.name === 'cpu' ? 1 : 5;
  const start = performance.now();
  for (let i = 0; i < repeats; i++) product();
  const ms = (performance.now() - start) / repeats;
  console.log(`matMul ${n}³: ${ms.toFixed(1)} ms, ${((2 * n ** 3) / ms / 1e6).toFixed(1)} GFLOP/s`);
  tf.dispose([a, b]);
}
