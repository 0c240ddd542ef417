"""Small dataset trees in the real public layouts, for tests/datasets/layouts.test.ts.

Writes tests/fixtures/datasets/layouts/:
  mvtec/      MVTec-AD as downloaded: license.txt, readme.txt, <product>/train/good/000.png,
              test/good/, test/<defect>/, ground_truth/<defect>/<stem>_mask.png with 0/255 masks;
              bottle in RGB, screw in 8-bit gray (as the real screw, grid and zipper are).
  visa/       VisA as downloaded: split_csv/1cls.csv (object,split,label,image,mask),
              <object>/Data/Images/{Normal,Anomaly}/*.JPG, <object>/Data/Masks/Anomaly/*.png with
              0/1 masks, <object>/image_anno.csv.
  vcp-mvisa/  what the public VCP-CLIP code makes of those two trees, run here unchanged:
              dataset/datasets200/{MVTec,VisA}.py `make_VAND` (mvtec/ and visa/ with train/good,
              test/good, test/anomaly, ground_truth/anomaly, .bmp images, 0/255 .png masks) and
              dataset/make_meta.py `metaSolver` (meta_mvtec.json, meta_visa.json beside them).
  vip2-meta/  the meta.json that the public ViP²-CLIP generate_dataset_json/{mvtec,visa}.py write
              into an MVTec / VisA root (run here on copies, stored as mvtec.json / visa.json).
  SOURCES.json  the commits of the public code that wrote vcp-mvisa/ and vip2-meta/.

The pixels are small hand-made patterns. Every anomalous region is one rectangle, listed in
REGIONS below; tests/datasets/layouts.test.ts states the same rectangles and sample lists by
hand. The public scripts are stubbed only where they name the full datasets' class lists (set to
this tree's products) and their root paths (given as arguments).

Needs the golden Python (python/README.md): numpy, Pillow, pandas < 3 (the VisA scripts index
rows by position) and opencv-python-headless (make_VAND). Usage:
  .venv-golden/bin/python python/golden/make_dataset_layouts.py --vcp VCP_CLIP_DIR --vip2 VIP2_CLIP_DIR \\
      [--vcp-commit SHA] [--vip2-commit SHA]
"""

import argparse
import contextlib
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests/fixtures/datasets/layouts"
SIZE = 16

# (x0, y0, x1, y1) inclusive: the anomalous pixels of each anomalous test image.
REGIONS = {
    ("mvtec", "bottle", "broken_large", "000"): (3, 4, 6, 9),  # 4 × 6 = 24 pixels
    ("mvtec", "bottle", "broken_large", "001"): (10, 10, 13, 12),  # 12
    ("mvtec", "bottle", "contamination", "000"): (0, 0, 1, 2),  # 6
    ("mvtec", "screw", "thread_top", "000"): (7, 1, 8, 14),  # 28
    ("visa", "candle", "Anomaly", "000"): (5, 5, 9, 7),  # 15
    ("visa", "candle", "Anomaly", "001"): (12, 0, 15, 3),  # 16
    ("visa", "pcb1", "Anomaly", "000"): (2, 11, 4, 13),  # 9
}
MVTEC_GOOD = {"bottle": {"train": 2, "test": 1}, "screw": {"train": 1, "test": 1}}
VISA_NORMAL = {"candle": {"train": ["0000", "0001"], "test": ["0002"]}, "pcb1": {"train": ["0000"], "test": ["0001"]}}
BASE_COLOUR = {"bottle": (60, 90, 50), "screw": (200, 200, 200), "candle": (210, 180, 150), "pcb1": (40, 120, 60)}


def pattern(product, index, region=None):
    """An RGB image: the product's colour with a diagonal ramp, a bright rectangle where anomalous."""
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    base = np.array(BASE_COLOUR[product], dtype=np.int32)
    rgb = base + ((x + 2 * y + 5 * index) % 24)[..., None] - 12
    if region:
        x0, y0, x1, y1 = region
        rgb[y0 : y1 + 1, x0 : x1 + 1] = (250, 240, 30)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def mask(region, on):
    m = np.zeros((SIZE, SIZE), np.uint8)
    x0, y0, x1, y1 = region
    m[y0 : y1 + 1, x0 : x1 + 1] = on
    return Image.fromarray(m, mode="L")


def save_image(array, path, gray=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(array, mode="RGB")
    if gray:
        image = image.convert("L")
    if path.suffix == ".JPG":
        image.save(path, format="JPEG", quality=95)
    else:
        image.save(path)


def make_mvtec(root):
    root.mkdir(parents=True)
    (root / "license.txt").write_text("Stand-in for the MVTec AD licence file (CC BY-NC-SA 4.0).\n")
    (root / "readme.txt").write_text("Stand-in for the MVTec AD readme.\n")
    for product, counts in MVTEC_GOOD.items():
        gray = product == "screw"
        for split, n in counts.items():
            for i in range(n):
                save_image(pattern(product, i), root / product / split / "good" / f"{i:03d}.png", gray)
    for (dataset, product, defect, stem), region in REGIONS.items():
        if dataset != "mvtec":
            continue
        save_image(pattern(product, int(stem) + 7, region), root / product / "test" / defect / f"{stem}.png", product == "screw")
        target = root / product / "ground_truth" / defect / f"{stem}_mask.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        mask(region, 255).save(target)


def make_visa(root):
    rows = ["object,split,label,image,mask"]
    for product, splits in VISA_NORMAL.items():
        annotations = ["image,label,mask"]
        for split in ("train", "test"):
            for stem in splits[split]:
                image = f"{product}/Data/Images/Normal/{stem}.JPG"
                save_image(pattern(product, int(stem)), root / image)
                rows.append(f"{product},{split},normal,{image},")
                annotations.append(f"{image},normal,")
            if split == "test":
                for (dataset, p, _, stem), region in REGIONS.items():
                    if dataset != "visa" or p != product:
                        continue
                    image = f"{product}/Data/Images/Anomaly/{stem}.JPG"
                    target = f"{product}/Data/Masks/Anomaly/{stem}.png"
                    save_image(pattern(product, int(stem) + 7, region), root / image)
                    (root / target).parent.mkdir(parents=True, exist_ok=True)
                    mask(region, 1).save(root / target)
                    rows.append(f"{product},test,anomaly,{image},{target}")
                    annotations.append(f"{image},anomaly,{target}")
        (root / product / "image_anno.csv").write_text("\n".join(annotations) + "\n")
    (root / "split_csv").mkdir(parents=True, exist_ok=True)
    (root / "split_csv" / "1cls.csv").write_text("\n".join(rows) + "\n")


def load(path, name):
    """Imports one public script by path, with its own directory importable (as when run there)."""
    sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.path.pop(0)
    return module


def quietly(run):
    with contextlib.redirect_stdout(io.StringIO()):
        return run()


def make_vcp(vcp, out):
    """dataset/make_dataset_new.py and dataset/make_meta.py of VCP-CLIP, on this tree."""
    datasets = vcp / "dataset"
    visa_module = load(datasets / "datasets200" / "VisA.py", "vcp_visa")
    mvtec_module = load(datasets / "datasets200" / "MVTec.py", "vcp_mvtec")
    make_meta = load(datasets / "make_meta.py", "vcp_make_meta")
    # make_dataset_new.py: VisA into visa/, ids from 0; then MVTec into mvtec/, ids from 0.
    visa = visa_module.Visa_dataset(str(OUT / "visa"))
    visa.dataset_name = list(VISA_NORMAL)  # stub: the full VisA class list
    quietly(lambda: visa.make_VAND(binary=True, to_255=True, des_path_root=str(out / "visa"), id=0))
    mvtec = mvtec_module.Mvtec_dataset(str(OUT / "mvtec"))
    mvtec.dataset_name = list(MVTEC_GOOD)  # stub: the full MVTec AD class list
    quietly(lambda: mvtec.make_VAND(binary=True, to_255=True, des_path_root=str(out / "mvtec"), id=0))
    for name, classes in (("visa", VISA_NORMAL), ("mvtec", MVTEC_GOOD)):
        solver = make_meta.metaSolver(root=str(out / name), meta_path=str(out / f"meta_{name}.json"), datasets=name)
        solver.CLSNAMES = list(classes)  # stub: the full class list
        solver.run()


def make_vip2(vip2, out):
    """generate_dataset_json/{mvtec,visa}.py of ViP²-CLIP, on copies of this tree."""
    out.mkdir(parents=True, exist_ok=True)
    scripts = vip2 / "generate_dataset_json"
    for name, solver_name, classes in (("mvtec", "MVTecSolver", MVTEC_GOOD), ("visa", "VisASolver", VISA_NORMAL)):
        module = load(scripts / f"{name}.py", f"vip2_{name}")
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / name
            shutil.copytree(OUT / name, copy)
            solver_class = getattr(module, solver_name)
            solver_class.CLSNAMES = list(classes)  # stub: the full class list
            quietly(lambda: solver_class(root=str(copy)).run())
            shutil.copyfile(copy / "meta.json", out / f"{name}.json")


def commit_of(directory, given):
    if given:
        return given
    r = subprocess.run(["git", "-C", str(directory), "rev-parse", "HEAD"], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{directory} is not a git checkout: pass its commit with --vcp-commit / --vip2-commit")
    return r.stdout.strip()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vcp", type=Path, required=True, help="a checkout of the public VCP-CLIP code (GitHub xiaozhen228/VCP-CLIP)")
    parser.add_argument("--vip2", type=Path, required=True, help="a checkout of the public ViP2-CLIP code (GitHub kim0806/ViP2-CLIP)")
    parser.add_argument("--vcp-commit")
    parser.add_argument("--vip2-commit")
    args = parser.parse_args()
    sources = {
        "VCP-CLIP": {"repository": "xiaozhen228/VCP-CLIP", "commit": commit_of(args.vcp, args.vcp_commit)},
        "ViP2-CLIP": {"repository": "kim0806/ViP2-CLIP", "commit": commit_of(args.vip2, args.vip2_commit)},
    }
    if OUT.exists():
        shutil.rmtree(OUT)
    make_mvtec(OUT / "mvtec")
    make_visa(OUT / "visa")
    make_vcp(args.vcp.resolve(), OUT / "vcp-mvisa")
    make_vip2(args.vip2.resolve(), OUT / "vip2-meta")
    sources["written"] = {
        "vcp-mvisa": "dataset/datasets200/{VisA,MVTec}.py make_VAND(binary=True, to_255=True), then dataset/make_meta.py metaSolver",
        "vip2-meta": "generate_dataset_json/mvtec.py MVTecSolver, generate_dataset_json/visa.py VisASolver",
    }
    (OUT / "SOURCES.json").write_text(json.dumps(sources, indent=2) + "\n")
    files = [p for p in OUT.rglob("*") if p.is_file()]
    print(f"wrote {len(files)} files, {sum(p.stat().st_size for p in files)} bytes under {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    os.umask(0o022)
    main()
