/**
 * GPUs for local workers. `execution.devices` is handed out round-robin (worker w computes on
 * devices[w % n], workerDevice in local.ts) and a worker's process sees only its GPU
 * (CUDA_VISIBLE_DEVICES). `execution.trials_per_device` says how many trials may share one GPU
 * at once: TensorFlow then grows its memory on demand (TF_FORCE_GPU_ALLOW_GROWTH) instead of
 * reserving nearly all of it, so two trials fit on a large GPU. More workers than
 * GPUs × trials_per_device would put more trials on a GPU than the spec allows: an error.
 */

/** The CUDA index of a `gpu:<n>` device (also `cuda:<n>` or a bare `<n>`); undefined for cpu. */
export function gpuIndex(device: string): string | undefined {
  return /^(?:gpu:|cuda:)?(\d+)$/.exec(device)?.[1];
}

/** How many of `workers` land on each GPU index under the round-robin hand-out. */
export function workersPerGpu(devices: readonly string[], workers: number): Map<string, number> {
  const counts = new Map<string, number>();
  if (devices.length === 0) return counts;
  for (let w = 0; w < workers; w++) {
    const gpu = gpuIndex(devices[w % devices.length]!);
    if (gpu !== undefined) counts.set(gpu, (counts.get(gpu) ?? 0) + 1);
  }
  return counts;
}

/** The workers a spec runs when it does not say: every listed GPU filled, else one. */
export function defaultWorkers(devices: readonly string[], trialsPerDevice: number): number {
  const gpus = new Set(devices.map(gpuIndex).filter((g) => g !== undefined));
  return gpus.size > 0 ? gpus.size * trialsPerDevice : 1;
}

/** Why `workers` cannot run on `devices` with `trialsPerDevice`; undefined when they can. */
export function deviceSlotProblem(
  devices: readonly string[],
  workers: number,
  trialsPerDevice: number,
): string | undefined {
  for (const [gpu, count] of workersPerGpu(devices, workers)) {
    if (count <= trialsPerDevice) continue;
    const gpus = new Set(devices.map(gpuIndex).filter((g) => g !== undefined)).size;
    return `${workers} workers on devices [${devices.join(', ')}] put ${count} trials at once on gpu:${gpu}, and trials_per_device is ${trialsPerDevice}: set execution.trials_per_device: ${count} (they share the GPU's memory) or at most ${gpus * trialsPerDevice} workers`;
  }
  return undefined;
}

/**
 * The environment of a worker's trial process: pinned to its GPU, with memory growing on
 * demand (unless the user set TF_FORCE_GPU_ALLOW_GROWTH); nothing for a CPU worker.
 */
export function gpuWorkerEnv(
  cuda: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Record<string, string> {
  if (cuda === undefined) return {};
  return {
    CUDA_VISIBLE_DEVICES: cuda,
    CUDA_DEVICE_ORDER: env.CUDA_DEVICE_ORDER ?? 'PCI_BUS_ID',
    TF_FORCE_GPU_ALLOW_GROWTH: env.TF_FORCE_GPU_ALLOW_GROWTH ?? 'true',
  };
}
