/**
 * Run as its own process by `vcp-exp setup` and `vcp-exp backend`: loads a build of the native
 * backend (argv[2]: cpu | gpu) the way vcp-exp does (native.ts), runs one matMul on it and
 * prints the versions and whether TensorFlow computes on a GPU; exits non-zero otherwise. A
 * broken addon can take its process down, so it is never tried in the caller's.
 */
import { pinOneGpu } from './gpu.js';
import { loadNativeTfjs, type NativeBuild } from './native.js';
import { tf } from './tf.js';

const build: NativeBuild = process.argv[2] === 'gpu' ? 'gpu' : 'cpu';
process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';
if (build === 'gpu') pinOneGpu();
const from = loadNativeTfjs(build);
await tf.setBackend('tensorflow');
const y = tf.matMul(tf.ones([2, 3]), tf.ones([3, 2])).dataSync();
if (tf.getBackend() !== 'tensorflow' || y[0] !== 3) process.exit(3);
const backend = tf.backend() as unknown as {
  binding: { TF_Version: string };
  isUsingGpuDevice: boolean;
};
const device = backend.isUsingGpuDevice ? 'TensorFlow computes on a GPU' : 'no GPU in use';
console.log(
  `tfjs ${tf.version.tfjs}, libtensorflow ${backend.binding.TF_Version}, ${device}, from ${from}`,
);
