import {
  describeBackend,
  describeDevice,
  initBackend,
  nativeGpuBuilt,
  type BackendChoice,
  type BackendInfo,
} from '../model/backend.js';
import { probeNative, readBuildManifest } from '../model/native-setup.js';
import { nativeDir, TFJS_NODE_GPU } from '../model/native.js';
import { tf } from '../model/tf.js';

/**
 * `vcp-exp backend`: which backend, the GPU it computes on or precisely why none (and what
 * TensorFlow itself said when the GPU build found no device), the GPU build's state, and how
 * fast a 1024³ matMul runs.
 */
export async function backendCommand(options: { backend: string }): Promise<void> {
  const info = await initBackend(options.backend as BackendChoice);
  console.log(`backend: ${describeBackend(info, { gpuNote: false })}`);
  for (const line of gpuLines(info)) console.log(line);
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

function gpuLines(info: BackendInfo): string[] {
  const lines: string[] = [];
  if (info.device === 'gpu') {
    const driver = info.gpu?.info ? ` (NVIDIA driver ${info.gpu.info.driver})` : '';
    lines.push(`GPU: ${describeDevice(info)}${driver}`);
  } else if (info.noGpu) {
    lines.push(`GPU: none used: ${info.noGpu.reason}`);
  }
  lines.push(`GPU build: ${describeGpuBuild()}`);
  // The GPU build loaded and TensorFlow listed no GPU: let TensorFlow say why, in a fresh process.
  if (info.package === TFJS_NODE_GPU && info.device !== 'gpu') {
    const said = probeNative('gpu', { tfLog: true })
      .output.split('\n')
      .filter((l) => /^[IWEF]\d{4} /.test(l) && /cuda|gpu|dlopen|driver|cudnn|cublas/i.test(l))
      .map((l) => `  ${l.trim()}`);
    if (said.length > 0) lines.push('TensorFlow (GPU build) says:', ...said);
  }
  return lines;
}

function describeGpuBuild(): string {
  if (!nativeGpuBuilt()) return 'not set up (vcp-exp setup --gpu: ~2 GB download, ~4 GB on disk)';
  const manifest = readBuildManifest('gpu');
  const pinned = (name: string) =>
    manifest?.wheels.find((w) => w.startsWith(`${name}==`))?.split('==')[1] ?? '?';
  const made = manifest
    ? `TensorFlow ${pinned('tensorflow')}, CUDA runtime ${pinned('nvidia-cuda-runtime-cu12')}, cuDNN ${pinned('nvidia-cudnn-cu12')}`
    : 'no build manifest: rerun vcp-exp setup --gpu';
  return `${nativeDir('gpu')} (${TFJS_NODE_GPU}; ${made})`;
}
