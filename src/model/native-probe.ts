/**
 * Run as its own process by `vcp-exp setup native`: loads the native backend the way vcp-exp
 * does (native.ts), runs one matMul on it and prints the versions; exits non-zero otherwise.
 * A broken addon can take its process down, so it is never tried in the caller's.
 */
import { loadNativeTfjs } from './native.js';
import { tf } from './tf.js';

process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';
const from = loadNativeTfjs();
await tf.setBackend('tensorflow');
const y = tf.matMul(tf.ones([2, 3]), tf.ones([3, 2])).dataSync();
if (tf.getBackend() !== 'tensorflow' || y[0] !== 3) process.exit(3);
const binding = (tf.backend() as unknown as { binding: { TF_Version: string } }).binding;
console.log(`tfjs ${tf.version.tfjs}, libtensorflow ${binding.TF_Version}, from ${from}`);
