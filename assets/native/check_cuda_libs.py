"""Checks, without a GPU, that the GPU build's TensorFlow finds every CUDA library it needs.

Run by `vcp-exp setup --gpu` (src/model/native-cuda.ts) as
    python3 check_cuda_libs.py <deps dir of the tfjs-node-gpu package>
and prints one JSON object: what resolved where, and the problems (exit code 1 if any).

1. TensorFlow's own loader: TF_LoadLibrary(soname) dlopens from libtensorflow_framework.so.2,
   the library whose DsoLoader opens the CUDA libraries when TensorFlow finds a GPU, so the
   search (its RUNPATH, then the system's) is exactly the one TensorFlow makes. Each of the
   libraries DsoLoader::TryDlopenCUDALibraries opens must load, with everything it links.
2. NVRTC as cuDNN, cuBLASLt and cuFFT find it: they dlopen libnvrtc.so.12 themselves,
   through their own RUNPATH; it must be there, and must compile a kernel (that loads its
   builtins library beside it). NVRTC compiles on the host, so this needs no GPU either.
3. cuDNN's sub-libraries, which libcudnn.so.9 opens from its own directory, load.

4. What TensorFlow's GPU kernels are compiled for (informational, "kernels" in the report):
   the fatbins inside its two libraries, counted by the machine code (SASS) architectures
   and the PTX architectures and ISA versions they hold. A GPU without matching machine code
   runs the PTX, JIT-compiled by its driver, which must know that PTX ISA version.

libcuda.so.1 is the driver's and is not checked: it is on a machine with a GPU, or not.
"""
import collections
import ctypes
import json
import mmap
import os
import re
import struct
import sys

# tsl::internal::DsoLoader::TryDlopenCUDALibraries of TensorFlow 2.21, in its order.
TF_OPENS = [
    "libcudart.so.12",
    "libcublas.so.12",
    "libcublasLt.so.12",
    "libcufft.so.11",
    "libcusolver.so.11",
    "libcusparse.so.12",
    "libcudnn.so.9",
]
NVRTC = "libnvrtc.so.12"
NVRTC_USERS = ["cudnn/lib/libcudnn_graph.so.9", "cublas/lib/libcublasLt.so.12", "cufft/lib/libcufft.so.11"]
CUDNN_PARTS = ["graph", "ops", "cnn", "adv", "heuristic", "engines_precompiled", "engines_runtime_compiled"]


def runpath(path):
    """The DT_RUNPATH (or DT_RPATH) directories of an ELF64 little-endian library, $ORIGIN expanded."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError(path + " is not a 64-bit little-endian ELF file")
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    loads, dynamic = [], None
    for i in range(phnum):
        p_type, _, p_offset, p_vaddr, _, p_filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        if p_type == 1:
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == 2:
            dynamic = (p_offset, p_filesz)
    if dynamic is None:
        return []
    strtab, found = None, None
    for off in range(dynamic[0], dynamic[0] + dynamic[1], 16):
        tag, value = struct.unpack_from("<qQ", data, off)
        if tag == 0:
            break
        if tag == 5:
            strtab = value
        elif tag == 29 or (tag == 15 and found is None):
            found = value
    if strtab is None or found is None:
        return []
    base = next(o + strtab - v for v, o, n in loads if v <= strtab < v + n)
    end = data.index(b"\0", base + found)
    origin = os.path.dirname(path)
    dirs = data[base + found:end].decode().split(":")
    return [d.replace("$ORIGIN", origin).replace("${ORIGIN}", origin) for d in dirs if d]


def mapped_path(soname):
    """Where the loaded copy of `soname` lives (/proc/self/maps names the file, symlinks resolved)."""
    with open("/proc/self/maps") as maps:
        for line in maps:
            parts = line.split(None, 5)
            if len(parts) == 6 and os.path.basename(parts[5].strip()) == soname:
                return parts[5].strip()
    return None


def check_tf_loader(deps, report, problems):
    cc = ctypes.CDLL(os.path.join(deps, "lib", "libtensorflow_cc.so.2"))
    cc.TF_NewStatus.restype = ctypes.c_void_p
    cc.TF_DeleteStatus.argtypes = [ctypes.c_void_p]
    cc.TF_GetCode.argtypes = [ctypes.c_void_p]
    cc.TF_Message.argtypes = [ctypes.c_void_p]
    cc.TF_Message.restype = ctypes.c_char_p
    cc.TF_LoadLibrary.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    cc.TF_LoadLibrary.restype = ctypes.c_void_p
    for soname in TF_OPENS:
        status = cc.TF_NewStatus()
        cc.TF_LoadLibrary(soname.encode(), status)
        if cc.TF_GetCode(status) != 0:
            problems.append("TensorFlow cannot open %s: %s" % (soname, cc.TF_Message(status).decode()))
        else:
            report["tensorflow_opens"][soname] = mapped_path(soname)
        cc.TF_DeleteStatus(status)


def check_nvrtc(deps, report, problems):
    for user in NVRTC_USERS:
        lib = os.path.join(deps, "nvidia", user)
        hits = [d for d in runpath(lib) if os.path.exists(os.path.join(d, NVRTC))]
        if not hits:
            problems.append("%s cannot find %s in its RUNPATH %s" % (user, NVRTC, runpath(lib)))
            continue
        path = os.path.join(hits[0], NVRTC)
        report["nvrtc"][os.path.basename(user)] = path
        error = compile_kernel(path)
        if error:
            problems.append("NVRTC as %s loads it (%s) cannot compile: %s" % (user, path, error))


def compile_kernel(path):
    """Compiles a one-line kernel with the NVRTC at `path`; returns an error message or None."""
    nvrtc = ctypes.CDLL(path)
    program = ctypes.c_void_p()
    source = b'extern "C" __global__ void twice(float* x) { x[threadIdx.x] *= 2.0f; }'
    code = nvrtc.nvrtcCreateProgram(ctypes.byref(program), source, b"twice.cu", 0, None, None)
    if code != 0:
        return "nvrtcCreateProgram returned %d" % code
    options = (ctypes.c_char_p * 1)(b"--gpu-architecture=compute_80")
    code = nvrtc.nvrtcCompileProgram(program, 1, options)
    size = ctypes.c_size_t()
    nvrtc.nvrtcGetPTXSize(program, ctypes.byref(size))
    nvrtc.nvrtcDestroyProgram(ctypes.byref(program))
    if code != 0:
        return "nvrtcCompileProgram returned %d" % code
    return None if size.value > 0 else "no PTX produced"


def check_cudnn_parts(deps, report, problems):
    for part in CUDNN_PARTS:
        path = os.path.join(deps, "nvidia", "cudnn", "lib", "libcudnn_%s.so.9" % part)
        try:
            ctypes.CDLL(path)
            report["cudnn_parts"].append(os.path.basename(path))
        except OSError as error:
            problems.append("cuDNN's %s does not load: %s" % (os.path.basename(path), error))


FATBIN_MAGIC = struct.pack("<I", 0xBA55ED50)


def fatbin_entries(path):
    """(kind, arch, PTX ISA version or None) of every entry of every fatbin in an ELF library.

    A fatbin is a 16-byte header (magic, version 1, header size 16, size) followed by entries,
    each a header (kind 1 = PTX, 2 = ELF machine code; its size; the payload size; at offset
    28 the architecture, e.g. 90 for sm_90/compute_90) and the payload.
    """
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        pos = data.find(FATBIN_MAGIC)
        while pos >= 0:
            _, version, header, size = struct.unpack_from("<IHHQ", data, pos)
            if version != 1 or header != 16 or size == 0 or pos + 16 + size > len(data):
                pos = data.find(FATBIN_MAGIC, pos + 4)
                continue
            entry, end = pos + 16, pos + 16 + size
            while entry < end:
                kind, _, entry_header, payload = struct.unpack_from("<HHIQ", data, entry)
                if entry_header < 32 or kind not in (1, 2):
                    break
                arch, = struct.unpack_from("<I", data, entry + 28)
                isa = None
                if kind == 1:
                    start = entry + entry_header
                    found = re.search(rb"\.version (\d+\.\d+)", data[start:start + min(payload, 4096)])
                    isa = found.group(1).decode() if found else "unreadable"
                yield ("ptx" if kind == 1 else "sass", arch, isa)
                entry += entry_header + payload
            yield ("end", None, None)
            pos = data.find(FATBIN_MAGIC, end)


def check_kernels(deps, report, problems):
    fatbins, sass, ptx = 0, collections.Counter(), collections.Counter()
    for lib in ("libtensorflow_cc.so.2", "libtensorflow_framework.so.2"):
        for kind, arch, isa in fatbin_entries(os.path.join(deps, "lib", lib)):
            if kind == "end":
                fatbins += 1
            elif kind == "sass":
                sass[str(arch)] += 1
            else:
                ptx["%d/%s" % (arch, isa)] += 1
    report["kernels"] = {"fatbins": fatbins, "sass": dict(sass), "ptx": dict(ptx)}
    if fatbins == 0:
        problems.append("no CUDA kernels (fatbins) in TensorFlow's libraries: not a GPU build")


def main():
    deps = os.path.abspath(sys.argv[1])
    report = {"tensorflow_opens": {}, "nvrtc": {}, "cudnn_parts": [], "kernels": {}, "problems": []}
    problems = report["problems"]
    for check in (check_tf_loader, check_nvrtc, check_cudnn_parts, check_kernels):
        try:
            check(deps, report, problems)
        except Exception as error:  # a missing file or a broken library: report, do not trace
            problems.append("%s: %s" % (check.__name__, error))
    print(json.dumps(report))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
