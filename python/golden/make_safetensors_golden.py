"""Golden files for src/io/safetensors.ts, written by the reference `safetensors` library.

tests/fixtures/clip/safetensors-golden.safetensors holds F32, F16, BF16, I64 and I32 tensors
with awkward values (subnormals, rounding ties, ±inf, NaN, -0, int64 sign); the JSON beside it
lists each tensor's exact float32/int values, and for the F16 writer the float32 inputs with the
bits torch produces when it rounds them to half precision (round-to-nearest-even).
Usage: .venv-golden/bin/python python/golden/make_safetensors_golden.py
"""

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests/fixtures/clip"


def as_json(values):
    out = []
    for v in values:
        v = float(v)
        out.append("NaN" if np.isnan(v) else "Infinity" if v == np.inf else "-Infinity" if v == -np.inf else v)
    return out


def main():
    g = torch.Generator().manual_seed(0)
    specials = [0.0, -0.0, 1.0, -2.5, 65504.0, 65520.0, 1e-8, 6e-8, 2.0**-24, 2.0**-25, 3 * 2.0**-25,
                1.0 + 2.0**-11, 1.0 + 3 * 2.0**-11, 2.0**-14 - 2.0**-25, 1e30, float("inf"), float("-inf"), float("nan"),
                3.14159265, -1e-3, 1.5 * 2.0**-20, 0.1, 1 / 3]
    base = torch.tensor(specials, dtype=torch.float32)
    random = torch.randn(4, 5, 6, generator=g) * 10
    tensors = {
        "f32": torch.cat([base, random.flatten()]).reshape(-1),
        "f32_matrix": random,
        "f16": torch.cat([base, random.flatten()]).half(),
        "bf16": torch.cat([base, random.flatten()]).bfloat16(),
        "i64": torch.tensor([[0, 1, -1], [2**31 - 1, -(2**31), 49407]], dtype=torch.int64),
        "i32": torch.tensor([7, -7, 2**31 - 1], dtype=torch.int32),
        "scalar": torch.tensor(2.6592, dtype=torch.float32),
        "empty": torch.zeros(0, 3, dtype=torch.float32),
    }
    save_file(tensors, str(OUT / "safetensors-golden.safetensors"), metadata={"format": "pt", "source": "make_safetensors_golden.py"})
    expected = {}
    for name, t in tensors.items():
        values = t.float().flatten().tolist() if t.is_floating_point() else t.flatten().tolist()
        dtype = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64", torch.int32: "I32"}[t.dtype]
        expected[name] = {"dtype": dtype, "shape": list(t.shape), "values": as_json(values) if t.is_floating_point() else values}
    writer_input = torch.cat([base, random.flatten(), torch.tensor([1 + 2.0**-11, 1 + 3 * 2.0**-11, 2049.0, 2051.0, 2.0**-24 * 1.5, 2.0**-24 * 2.5])])
    half_bits = writer_input.half().view(torch.int16).to(torch.int32) & 0xFFFF
    payload = {
        "source": "python/golden/make_safetensors_golden.py (safetensors + torch)",
        "metadata": {"format": "pt", "source": "make_safetensors_golden.py"},
        "tensors": expected,
        "f16Writer": {"input": as_json(writer_input.tolist()), "bits": half_bits.tolist()},
    }
    (OUT / "safetensors-golden.json").write_text(json.dumps(payload) + "\n")
    print("wrote tests/fixtures/clip/safetensors-golden.{safetensors,json}")


if __name__ == "__main__":
    main()
