#!/usr/bin/env python3
"""Fixtures for src/io/torch-zip.ts (the restricted torch.save reader), written by torch itself.

tests/fixtures/torch-zip/
- state.pth           torch.save (pickle protocol 2, the default) of a dict that holds what
                      checkpoints hold: a module's state_dict() (an OrderedDict with _metadata),
                      an nn.Parameter, every dtype with a typed storage (F64 F32 F16 BF16 I64 I32
                      I16 I8 U8 BOOL), views (a transpose, a slice at an offset of a storage shared
                      with another tensor, a permuted 3-D tensor), a 0-d and an empty tensor, and
                      non-tensor leaves (int, float, str, None, bool, a list and a tuple of tensors).
- state-p4.pth        the same object saved with pickle_protocol=4 (FRAME, MEMOIZE,
                      SHORT_BINUNICODE, STACK_GLOBAL).
- state.expected.safetensors  every tensor of it, made contiguous, under the dotted name the
                      reader gives it (dict keys and list indices joined with "."), written by
                      safetensors.torch — what the reader must return, bit for bit.
- state-big-endian.pth  state.pth rewritten as a big-endian machine would write it (every storage
                      byte-swapped, byteorder "big"): torch only writes its native order, so this
                      one is derived here with zipfile, not by torch.
- legacy.pth          the pre-1.6 format (_use_new_zipfile_serialization=False): refused.
- os-system.pth       a torch.save zip whose data.pkl first calls os.system (GLOBAL 'os system',
                      REDUCE) and then builds a genuine state dict: what a malicious
                      pytorch_model.bin looks like. The command is `touch "$VCP_EXP_PWNED"`, so a
                      test can prove with Python's own pickle that the file does run it, and that
                      the reader refuses it without running anything.
Run: <python with torch and safetensors> python/golden/make_torch_zip_fixtures.py
"""

import collections
import io
import pickle
import zipfile
from pathlib import Path

import torch
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "torch-zip"
COMMAND = 'touch "$VCP_EXP_PWNED"'


def build_state():
    g = torch.Generator().manual_seed(7)
    module = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    shared = torch.randn(5, 6, generator=g)
    dtypes = {
        "f64": torch.randn(2, 3, generator=g, dtype=torch.float64),
        "f32": torch.randn(4, generator=g),
        "f16": torch.randn(3, 5, generator=g).half().t(),  # a transpose view
        "bf16": torch.randn(2, 2, generator=g).bfloat16(),
        "i64": torch.tensor([[0, -1, 2**40], [7, -(2**62), 3]], dtype=torch.int64),
        "i32": torch.tensor([1, -2, 2**31 - 1], dtype=torch.int32),
        "i16": torch.tensor([-3, 300], dtype=torch.int16),
        "i8": torch.tensor([-128, 127], dtype=torch.int8),
        "u8": torch.tensor([0, 255, 9], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
    }
    specials = torch.tensor([float("nan"), float("-inf"), -0.0, 1e-45])  # NaN, -inf, -0, subnormal
    return {
        "model": module.state_dict(),
        "prompt": torch.nn.Parameter(torch.randn(2, 3, generator=g)),
        "dtypes": dtypes,
        "views": {
            "whole": shared,
            "row_slice": shared[2:4],  # offset 12 in the same storage
            "column": shared[:, 1],  # stride 6
            "permuted": torch.randn(2, 3, 4, generator=g).permute(2, 0, 1),
            "scalar": torch.tensor(2.5),
            "empty": torch.zeros(0, 3),
            "specials": specials,
        },
        "layers": [torch.randn(2, generator=g), torch.randn(1, generator=g)],
        "pair": (torch.arange(3, dtype=torch.float32), torch.ones(1)),
        "epoch": 3,
        "lr": 0.001,
        "name": "tiny",
        "nothing": None,
        "done": True,
    }


def flatten(value, name, out):
    if isinstance(value, torch.Tensor):
        out[name] = value.detach().contiguous().clone()
    elif isinstance(value, dict):
        for k, v in value.items():
            flatten(v, f"{name}.{k}" if name else str(k), out)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            flatten(v, f"{name}.{i}" if name else str(i), out)
    return out


def rewrite(src, dst, transform):
    """Copies a torch zip entry by entry (stored, as torch writes them), transforming contents."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = transform(info.filename, zin.read(info.filename))
            zout.writestr(zipfile.ZipInfo(info.filename, date_time=(2020, 1, 1, 0, 0, 0)), data)


def big_endian(state_path, dst):
    with zipfile.ZipFile(state_path) as z:
        prefix = next(n for n in z.namelist() if n.endswith("/data.pkl"))[: -len("data.pkl")]
        # Which dtype each storage has: from the pickle's persistent ids, read by torch's own
        # unpickler machinery (weights_only load records them).
        storages = {}

        class Recorder(pickle.Unpickler):
            def find_class(self, module, name):
                if module == "torch" and name.endswith("Storage"):
                    return name
                return collections.OrderedDict if name == "OrderedDict" else (lambda *a, **k: None)

            def persistent_load(self, pid):
                storages[pid[2]] = pid[1]
                return None

        Recorder(io.BytesIO(z.read(prefix + "data.pkl"))).load()
    width = {"DoubleStorage": 8, "FloatStorage": 4, "HalfStorage": 2, "BFloat16Storage": 2, "LongStorage": 8,
             "IntStorage": 4, "ShortStorage": 2, "CharStorage": 1, "ByteStorage": 1, "BoolStorage": 1}

    def transform(name, data):
        if name == prefix + "byteorder":
            return b"big"
        if name.startswith(prefix + "data/"):
            w = width[storages[name[len(prefix + "data/"):]]]
            return b"".join(data[i:i + w][::-1] for i in range(0, len(data), w))
        return data

    rewrite(state_path, dst, transform)


def malicious(state_path, dst):
    # PROTO 2 · GLOBAL 'os system' · BINUNICODE cmd · TUPLE1 · REDUCE · POP, then the genuine
    # pickle without its own PROTO: loading it in Python runs the command, then returns the dict.
    cmd = COMMAND.encode()
    prefix = b"\x80\x02cos\nsystem\nX" + len(cmd).to_bytes(4, "little") + cmd + b"\x85R0"

    def transform(name, data):
        if name.endswith("/data.pkl"):
            assert data[:2] == b"\x80\x02"
            return prefix + data[2:]
        return data

    rewrite(state_path, dst, transform)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    state = build_state()
    torch.save(state, OUT / "state.pth")
    torch.save(state, OUT / "state-p4.pth", pickle_protocol=4)
    expected = flatten(state, "", {})
    save_file(expected, str(OUT / "state.expected.safetensors"))
    # torch's weights_only unpickler has no FRAME opcode: the protocol-4 file (written just above
    # by this script) is read back with the full unpickler.
    for name, weights_only in (("state.pth", True), ("state-p4.pth", False)):
        loaded = flatten(torch.load(OUT / name, weights_only=weights_only), "", {})
        assert loaded.keys() == expected.keys()
        for k in expected:
            a, b = loaded[k], expected[k]
            assert a.dtype == b.dtype and a.shape == b.shape
            assert a.reshape(-1).view(torch.uint8).equal(b.reshape(-1).view(torch.uint8)), k
    big_endian(OUT / "state.pth", OUT / "state-big-endian.pth")
    torch.save({"w": torch.ones(2)}, OUT / "legacy.pth", _use_new_zipfile_serialization=False)
    malicious(OUT / "state.pth", OUT / "os-system.pth")
    total = sum(f.stat().st_size for f in OUT.iterdir())
    print(f"{len(expected)} tensors; fixtures {total / 1e3:.1f} kB in {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
