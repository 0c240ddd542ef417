/**
 * The CUDA 12 libraries of the GPU build, from the locked nvidia-*-cu12 wheels, installed with
 * `pip --target` into the tfjs-node-gpu package's `deps/`: `deps/nvidia/<lib>/lib/`, which is
 * where libtensorflow_framework.so.2 (in `deps/lib/`) looks through its RUNPATH
 * (`$ORIGIN/../nvidia/<lib>/lib`), so no LD_LIBRARY_PATH is needed. Three places where the
 * wheels' layout and the RUNPATHs disagree are bridged with relative symlinks (CUDA_LINKS), and
 * assets/native/check_cuda_libs.py proves, without a GPU, that TensorFlow's own loader then
 * finds every library it opens. libcuda.so.1 is not among them: it always comes with the driver.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../io/package-root.js';
import { installWheels, type LockedWheel } from './native-wheels.js';

interface CudaLink {
  /** The symlink, relative to deps/nvidia. */
  link: string;
  /** Its target, relative to the link's directory. */
  target: string;
  why: string;
}

function nvrtcLinks(dir: string, files: readonly string[]): CudaLink[] {
  return files.map((file) => ({
    link: `${dir}/lib/${file}`,
    target: `../../cuda_nvrtc/lib/${file}`,
    why: `${dir === 'cublas' ? 'cuBLASLt' : 'cuFFT'} opens NVRTC from its own directory only`,
  }));
}

/** The symlinks that make every library findable, given the NVRTC files the wheel installed. */
export function cudaLinks(nvrtcFiles: readonly string[]): CudaLink[] {
  return [
    {
      link: 'cuda_runtime/lib/libcusolver.so.11',
      target: '../../cusolver/lib/libcusolver.so.11',
      why: "libtensorflow_framework.so.2's RUNPATH lists no nvidia/cusolver/lib; it does list nvidia/cuda_runtime/lib",
    },
    {
      link: 'nvrtc',
      target: 'cuda_nvrtc',
      why: "cuDNN's RUNPATH names nvidia/nvrtc/lib; the NVRTC wheel installs nvidia/cuda_nvrtc/lib",
    },
    ...nvrtcLinks('cublas', nvrtcFiles),
    ...nvrtcLinks('cufft', nvrtcFiles),
  ];
}

/** Installs the CUDA wheels into `deps` and links what their RUNPATHs miss. */
export function installCudaLibraries(
  py: string,
  wheels: readonly LockedWheel[],
  deps: string,
): CudaLink[] {
  rmSync(join(deps, 'nvidia'), { recursive: true, force: true });
  installWheels(py, wheels, deps);
  const nvidia = join(deps, 'nvidia');
  const nvrtcDir = join(nvidia, 'cuda_nvrtc', 'lib');
  if (!existsSync(nvrtcDir)) throw new Error(`the NVRTC wheel installed no ${nvrtcDir}`);
  const links = cudaLinks(readdirSync(nvrtcDir).filter((f) => /^libnvrtc.*\.so/.test(f)));
  for (const { link, target } of links) {
    const path = join(nvidia, link);
    rmSync(path, { force: true });
    symlinkSync(target, path);
  }
  return links;
}

export interface CudaCheck {
  ok: boolean;
  /** soname → the file TensorFlow's loader opened. */
  tensorflowOpens: Record<string, string>;
  /** library → the NVRTC it finds. */
  nvrtc: Record<string, string>;
  /** TensorFlow's GPU kernels: fatbins, and how many hold machine code per sm / PTX per "arch/ISA". */
  kernels: KernelInventory;
  problems: string[];
}

export interface KernelInventory {
  fatbins: number;
  /** "90" → fatbins with sm_90 machine code. */
  sass: Record<string, number>;
  /** "90/8.5" → fatbins with compute_90 PTX of ISA 8.5. */
  ptx: Record<string, number>;
}

/** Runs assets/native/check_cuda_libs.py on `deps` (a few seconds, no GPU needed). */
export function checkCudaLibraries(py: string, deps: string): CudaCheck {
  const script = join(projectRoot(), 'assets', 'native', 'check_cuda_libs.py');
  const r = spawnSync(py, [script, deps], {
    encoding: 'utf8',
    env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2' },
    maxBuffer: 1 << 24,
    timeout: 300_000,
  });
  const line = r.stdout?.trim().split('\n').pop() ?? '';
  try {
    const report = JSON.parse(line) as {
      tensorflow_opens: Record<string, string>;
      nvrtc: Record<string, string>;
      kernels: Partial<KernelInventory>;
      problems: string[];
    };
    return {
      ok: r.status === 0 && report.problems.length === 0,
      tensorflowOpens: report.tensorflow_opens,
      nvrtc: report.nvrtc,
      kernels: { fatbins: 0, sass: {}, ptx: {}, ...report.kernels },
      problems: report.problems,
    };
  } catch {
    const why = r.error?.message ?? `${r.stderr ?? ''}${r.stdout ?? ''}`.trim().split('\n').pop();
    return {
      ok: false,
      tensorflowOpens: {},
      nvrtc: {},
      kernels: { fatbins: 0, sass: {}, ptx: {} },
      problems: [`${script} did not report (${why})`],
    };
  }
}
