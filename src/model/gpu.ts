/**
 * The NVIDIA GPU as vcp-exp sees it before TensorFlow does: the driver (its kernel module's
 * version file and device node), the GPUs (nvidia-smi, which ships with the driver), which one
 * this process is pinned to, and why the GPU build would find none. Reads only; nothing here
 * loads CUDA. (src/model/backend.ts asks TensorFlow itself afterwards.)
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The oldest Linux driver CUDA 12 runs on: NVIDIA's minor-version compatibility lets the CUDA
 * 12.5 libraries run on any driver of the CUDA 12 family, 525.60.13 (CUDA 12.0) or newer.
 */
export const MIN_DRIVER = '525.60.13';

/**
 * What the GPU build's kernels are compiled for (tests/model/native-gpu.test.ts reads it from
 * TensorFlow's libraries): machine code for compute capabilities 6.0, 7.0, 8.0 and 8.9 in
 * every kernel, which GPUs of the same major version run as it is; for 9.0 in only some; and
 * compute_90 PTX of ISA 8.5 (CUDA 12.5) in most. A GPU of compute capability 9.0 or newer
 * therefore runs most kernels from that PTX, compiled by its driver, and a driver compiles
 * only PTX of an ISA it knows: 8.5 needs the CUDA 12.5 driver or newer.
 */
export const KERNELS_IN_FULL = ['6.0', '7.0', '8.0', '8.9'];
export const PTX_JIT_DRIVER = '555.42.02';

/** Why a GPU the build computes on may fail some kernels; undefined when nothing is known against it. */
export function kernelWarning(
  gpu: Pick<GpuInfo, 'computeCapability' | 'driver'>,
): string | undefined {
  const major = Number(gpu.computeCapability.split('.')[0]);
  const fullyCompiled = KERNELS_IN_FULL.some((cc) => Number(cc.split('.')[0]) === major);
  if (fullyCompiled || !(major >= 9)) return undefined;
  if (!/^\d+(\.\d+)*$/.test(gpu.driver) || compareVersions(gpu.driver, PTX_JIT_DRIVER) >= 0)
    return undefined;
  return `on compute capability ${gpu.computeCapability} most of TensorFlow's kernels are JIT-compiled from their CUDA 12.5 PTX, which the NVIDIA driver ${gpu.driver} cannot compile (it needs ${PTX_JIT_DRIVER} or newer): update the driver`;
}

/** Where the kernel module shows itself; a parameter so tests can point elsewhere. */
export interface DriverPaths {
  version: string;
  gpus: string;
  control: string;
}
export const DRIVER_PATHS: DriverPaths = {
  version: '/proc/driver/nvidia/version',
  gpus: '/proc/driver/nvidia/gpus',
  control: '/dev/nvidiactl',
};

/** The driver version in /proc/driver/nvidia/version's text ("NVRM version: … 550.54.14 …"). */
export function parseDriverVersion(text: string): string | undefined {
  return /^NVRM version:.*?\s(\d+\.\d+(?:\.\d+)?)\s/m.exec(text)?.[1];
}

/** -1, 0 or 1 as dotted numeric version a is older than, equal to or newer than b. */
export function compareVersions(a: string, b: string): number {
  const [x, y] = [a.split('.').map(Number), b.split('.').map(Number)];
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

/** The driver's version, when its kernel module is loaded. */
export function driverVersion(paths: DriverPaths = DRIVER_PATHS): string | undefined {
  if (!existsSync(paths.version)) return undefined;
  return parseDriverVersion(readFileSync(paths.version, 'utf8')) ?? 'unknown';
}

/** CUDA_VISIBLE_DEVICES as a list; undefined when unset (every GPU). */
export function visibleDevices(env: NodeJS.ProcessEnv = process.env): string[] | undefined {
  const value = env.CUDA_VISIBLE_DEVICES;
  if (value === undefined) return undefined;
  // CUDA stops at the first invalid entry, -1 included.
  const ids: string[] = [];
  for (const id of value.split(',').map((s) => s.trim())) {
    if (id === '' || id.startsWith('-')) break;
    ids.push(id);
  }
  return ids;
}

export interface GpuBlocker {
  /** hidden: CUDA_VISIBLE_DEVICES; no-driver; unreachable: device files out of reach; no-gpu; old-driver. */
  kind: 'hidden' | 'no-driver' | 'unreachable' | 'no-gpu' | 'old-driver';
  reason: string;
}

/**
 * Why no NVIDIA GPU can be used from this process, before anything is loaded; undefined when
 * one may be (TensorFlow has the last word). In order: hidden by CUDA_VISIBLE_DEVICES, no
 * driver, its device files out of reach (a container started without the GPU), no GPU
 * listed, a driver older than CUDA 12 needs.
 */
export function gpuBlocker(
  env: NodeJS.ProcessEnv = process.env,
  paths: DriverPaths = DRIVER_PATHS,
): GpuBlocker | undefined {
  const visible = visibleDevices(env);
  if (visible !== undefined && visible.length === 0)
    return {
      kind: 'hidden',
      reason: `CUDA_VISIBLE_DEVICES=${JSON.stringify(env.CUDA_VISIBLE_DEVICES)} hides every GPU`,
    };
  const version = driverVersion(paths);
  if (version === undefined)
    return {
      kind: 'no-driver',
      reason: `no NVIDIA driver on this machine (${paths.version} does not exist); the GPU build needs one for CUDA 12 (${MIN_DRIVER} or newer)`,
    };
  if (!existsSync(paths.control))
    return {
      kind: 'unreachable',
      reason: `the NVIDIA driver ${version} is loaded but ${paths.control} is not visible here (a container needs the GPU passed in, e.g. docker run --gpus all)`,
    };
  if (!existsSync(paths.gpus) || readdirSync(paths.gpus).length === 0)
    return {
      kind: 'no-gpu',
      reason: `the NVIDIA driver ${version} lists no GPU (${paths.gpus} is empty)`,
    };
  if (version !== 'unknown' && compareVersions(version, MIN_DRIVER) < 0)
    return {
      kind: 'old-driver',
      reason: `the NVIDIA driver ${version} is too old for CUDA 12 (it needs ${MIN_DRIVER} or newer): update the driver`,
    };
  return undefined;
}

/**
 * Pins this process to one GPU and keeps TensorFlow from reserving all of its memory; call
 * before the GPU build loads. The tfjs binding computes on the last GPU TensorFlow lists, so
 * CUDA_VISIBLE_DEVICES is narrowed to its first entry (GPU 0 when unset), and device numbers
 * follow PCI bus order, as nvidia-smi's do. TF_FORCE_GPU_ALLOW_GROWTH lets memory grow on
 * demand, so trials can share a GPU. Settings the user made are kept.
 */
export function pinOneGpu(env: NodeJS.ProcessEnv = process.env): void {
  env.CUDA_DEVICE_ORDER ??= 'PCI_BUS_ID';
  env.TF_FORCE_GPU_ALLOW_GROWTH ??= 'true';
  const visible = visibleDevices(env);
  env.CUDA_VISIBLE_DEVICES = visible?.[0] ?? '0';
}

export interface GpuInfo {
  /** nvidia-smi's index (PCI bus order). */
  index: string;
  name: string;
  memoryMiB: number;
  /** e.g. "8.0". */
  computeCapability: string;
  driver: string;
  uuid: string;
}

export const SMI_FIELDS = 'index,name,memory.total,compute_cap,driver_version,uuid';

/** Rows of `nvidia-smi --query-gpu=<SMI_FIELDS> --format=csv,noheader,nounits`. */
export function parseNvidiaSmi(csv: string): GpuInfo[] {
  return csv
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0)
    .map((line) => {
      const cells = line.split(',').map((c) => c.trim());
      if (cells.length < 6) throw new Error(`unexpected nvidia-smi line: ${line}`);
      // Only the name could hold a comma.
      const [index, memory, cc, driver, uuid] = [cells[0], ...cells.slice(-4)] as string[];
      const name = cells.slice(1, -4).join(', ');
      return {
        index: index!,
        name,
        memoryMiB: Number(memory),
        computeCapability: cc!,
        driver: driver!,
        uuid: uuid!,
      };
    });
}

/** The GPUs nvidia-smi lists, or why it could not. */
export function listGpus(): { gpus: GpuInfo[] } | { error: string } {
  const r = spawnSync(
    'nvidia-smi',
    [`--query-gpu=${SMI_FIELDS}`, '--format=csv,noheader,nounits'],
    { encoding: 'utf8', timeout: 20_000 },
  );
  if (r.error) return { error: `nvidia-smi: ${r.error.message}` };
  if (r.status !== 0) return { error: `nvidia-smi: ${(r.stderr || r.stdout).trim()}` };
  try {
    return { gpus: parseNvidiaSmi(r.stdout) };
  } catch (error) {
    return { error: (error as Error).message };
  }
}

/** The row of the GPU a pinned process uses (CUDA_VISIBLE_DEVICES = one index or UUID). */
export function pinnedGpu(
  gpus: GpuInfo[],
  env: NodeJS.ProcessEnv = process.env,
): GpuInfo | undefined {
  const id = visibleDevices(env)?.[0] ?? '0';
  return gpus.find((g) => g.index === id || (id.startsWith('GPU-') && g.uuid.startsWith(id)));
}

/** "NVIDIA A100-SXM4-80GB, 80 GiB, compute capability 8.0". */
export function describeGpu(gpu: GpuInfo): string {
  const gib = gpu.memoryMiB / 1024;
  const memory = Number.isFinite(gib) ? `${gib.toFixed(gib < 10 ? 1 : 0)} GiB` : 'memory unknown';
  return `${gpu.name}, ${memory}, compute capability ${gpu.computeCapability}`;
}

/** Where a driver's files are, for tests that fake one. */
export function driverPathsUnder(root: string): DriverPaths {
  return {
    version: join(root, 'proc/driver/nvidia/version'),
    gpus: join(root, 'proc/driver/nvidia/gpus'),
    control: join(root, 'dev/nvidiactl'),
  };
}
