"""Fixtures for src/io/torch-zip.ts, written by torch itself.

Writes tests/fixtures/torch-zip/:
- views.pth: torch.save of a nested dict (OrderedDict, list, tuple, ints, floats, strings, None,
  bools) holding tensors of every dtype the reader converts (float32/16/64, bfloat16, int64,
  int32, uint8, bool), an nn.Parameter, a 0-d tensor, an empty tensor, and views that share
  storages at offsets and with strides (a transpose, a row slice, a strided column, an expand);
- views.safetensors: the same tensors, contiguous, written by safetensors.torch (floats as
  float32, integers as int32), under the flattened names the test uses;
- malicious.pth: a torch.save zip whose data.pkl calls os.system (built with zipfile; never loaded);
- truncated.pth: views.pth cut in half; not-torch.zip: a zip without data.pkl;
- deflated.pth: views.pth re-zipped with deflate compression (torch stores; other tools may not);
- out-of-bounds.pth: a tensor of 100 elements over a storage of 4; short-storage.pth: a storage
  declared with 4 float32 elements holding 12 bytes (both pickled the way torch.save pickles).
Run: <venv with torch and safetensors>/bin/python python/golden/make_torch_zip_golden.py
"""

import collections
import io
import os
import pickle
import zipfile
from pathlib import Path

import torch
from safetensors.torch import save_file

OUT = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "torch-zip"


class FakeStorage:
    pass


class StoragePickler(pickle.Pickler):
    """torch.save's pickling of a storage: a persistent id ('storage', type, key, location, numel)."""

    def persistent_id(self, obj):
        return ("storage", torch.FloatStorage, "0", "cpu", 4) if isinstance(obj, FakeStorage) else None


class Rebuild:
    def __init__(self, size, stride):
        self.size, self.stride = size, stride

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, (FakeStorage(), 0, self.size, self.stride, False, collections.OrderedDict()))


def crafted(path: Path, tensor: Rebuild, storage: bytes) -> None:
    buffer = io.BytesIO()
    StoragePickler(buffer, protocol=2).dump({"weight": tensor})
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{path.stem}/data.pkl", buffer.getvalue())
        z.writestr(f"{path.stem}/byteorder", "little")
        z.writestr(f"{path.stem}/data/0", storage)


class RunsCode:
    def __reduce__(self):
        return (os.system, ("echo this must never run",))


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(7)
    base = torch.randn(5, 6, generator=g)
    shared = torch.randn(40, generator=g)
    tensors = {
        "f32": torch.randn(2, 3, generator=g),
        "f16": torch.randn(3, 4, generator=g).half(),
        "bf16": torch.randn(4, generator=g).bfloat16(),
        "f64": torch.randn(2, 2, generator=g).double(),
        "i64": torch.tensor([[0, 1, -2], [2**31 - 1, -(2**31), 5]], dtype=torch.int64),
        "i32": torch.tensor([3, -4, 5], dtype=torch.int32),
        "u8": torch.tensor([0, 255, 7], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 3),
        "transposed": base.t(),
        "row": base[2],
        "column": base[:, 3],
        "strided": shared[3:33:3].view(2, 5),
        "expanded": torch.randn(1, 3, generator=g).expand(4, 3),
    }
    parameter = torch.nn.Parameter(torch.randn(3, 2, generator=g))
    state = {
        "tensors": collections.OrderedDict(tensors),
        "parameter": parameter,
        "module": torch.nn.Linear(3, 2).state_dict(),  # an OrderedDict with _metadata
        "meta": {"epoch": 3, "lr": 4e-5, "name": "tiny", "none": None, "flag": True,
                 "list": [1, 2.5, "x"], "tuple": (1, 2), "big": 2**40, "negative": -7},
    }
    torch.save(state, OUT / "views.pth")

    flat = {f"tensors.{k}": v for k, v in tensors.items()}
    flat["parameter"] = parameter.detach()
    flat.update({f"module.{k}": v for k, v in state["module"].items()})
    save_file({k: (v.float() if v.is_floating_point() else v.int()).contiguous() for k, v in flat.items()},
              str(OUT / "views.safetensors"))

    data = (OUT / "views.pth").read_bytes()
    (OUT / "truncated.pth").write_bytes(data[: len(data) // 2])
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(OUT / "deflated.pth", "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
    with zipfile.ZipFile(OUT / "malicious.pth", "w") as z:
        z.writestr("malicious/data.pkl", pickle.dumps({"weights": RunsCode()}, protocol=2))
        z.writestr("malicious/byteorder", "little")
        z.writestr("malicious/version", "3\n")
    crafted(OUT / "out-of-bounds.pth", Rebuild((100,), (1,)), bytes(16))
    crafted(OUT / "short-storage.pth", Rebuild((2,), (1,)), bytes(12))
    with zipfile.ZipFile(OUT / "not-torch.zip", "w") as z:
        z.writestr("readme.txt", "a zip that is not a torch checkpoint\n")


if __name__ == "__main__":
    main()
