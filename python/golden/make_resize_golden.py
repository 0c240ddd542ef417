"""Golden values for src/model/clip/pos-embed.ts: torch.nn.functional.interpolate of a grid
[1, C, h, w] to [H, W] with align_corners=False in the three positional-embedding resize modes:
  bicubic_antialias  mode='bicubic', antialias=True   (VCP-CLIP's and open_clip's resize_pos_embed)
  bicubic            mode='bicubic', antialias=False  (Hugging Face's interpolate_pos_encoding)
  bilinear           mode='bilinear', antialias=False
Inputs are random float32 grids; outputs are computed in float64 from them.
Writes tests/fixtures/clip/resize-golden.safetensors (resize.<case>.input and
resize.<case>.<mode>, channels last [h·w, C] as the ViT lays out its patches) and
resize-golden.json (the cases).
Run: .venv-golden/bin/python python/golden/make_resize_golden.py (python/README.md)
"""

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "clip"
SEED = 2024
CHANNELS = 2

# (name, from [h, w], to [H, W]): the paper's 24→37 (ViT-L-14-336 at 518 px), downsampling
# 24→16 (336 → 224 px), small up/down, and non-square grids both ways.
CASES = [
    ("up24to37", [24, 24], [37, 37]),
    ("down24to16", [24, 24], [16, 16]),
    ("up4to8", [4, 4], [8, 8]),
    ("down7to5", [7, 7], [5, 5]),
    ("down37to24", [37, 37], [24, 24]),
    ("rect6x4to9x3", [6, 4], [9, 3]),
    ("rect5x7to3x11", [5, 7], [3, 11]),
]
MODES = {
    "bicubic_antialias": dict(mode="bicubic", antialias=True),
    "bicubic": dict(mode="bicubic", antialias=False),
    "bilinear": dict(mode="bilinear", antialias=False),
}


def main() -> None:
    gen = torch.Generator().manual_seed(SEED)
    tensors, meta = {}, []
    for name, src, dst in CASES:
        grid = torch.randn(1, CHANNELS, *src, generator=gen).float()
        tensors[f"resize.{name}.input"] = grid[0].permute(1, 2, 0).reshape(-1, CHANNELS)
        for mode, kwargs in MODES.items():
            out = F.interpolate(grid.double(), size=dst, align_corners=False, **kwargs)
            tensors[f"resize.{name}.{mode}"] = out[0].permute(1, 2, 0).reshape(-1, CHANNELS).float()
        meta.append({"name": name, "channels": CHANNELS, "from": src, "to": dst})
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(OUT / "resize-golden.safetensors"))
    doc = {"description": __doc__.split("Run:")[0].strip(), "torch": torch.__version__, "cases": meta}
    (OUT / "resize-golden.json").write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
