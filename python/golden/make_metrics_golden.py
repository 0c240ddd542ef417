"""Golden values for src/eval/ (roc, pr, components, pro, smoothing, evaluate).

References: scikit-learn (roc_auc_score, average_precision_score, precision_recall_curve,
roc_curve), scikit-image (measure.label), scipy (ndimage.gaussian_filter), numpy (arange),
metrics_reference.py (a port of the public cal_pro_score) and, for the exact AUPRO, the MVTec AD
evaluation code itself (Bergmann et al., MVTec Software GmbH): `pro_curve_util.compute_pro` +
`generic_util.trapezoid(..., x_max=0.3) / 0.3`, imported from --mvtec-eval DIR. That code ships
with the dataset's evaluation package (mvtec_ad_evaluation) and is vendored verbatim in public
repositories, e.g. GitHub Simoary/vqgan-ledgm-segAD at b822c6c279b81c0fe22ef3a6552fc38843f95c56
(its pro_curve_util.py and generic_util.py); products.json records the sha256 of both files.
It keeps the FPR curve in float32, so it agrees with an exact computation to ~1e-7.
Inputs are random and adversarial (ties, constant maps, one-pixel and diagonally touching
regions, all-normal images and products). Arrays are stored as base64 little-endian bytes.
Usage: .venv-golden/bin/python python/golden/make_metrics_golden.py --mvtec-eval DIR
"""

import argparse
import base64
import hashlib
import importlib
import json
import math
import sys
import warnings
from pathlib import Path

import numpy as np
from scipy import ndimage
from skimage import measure
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

from metrics_reference import cal_pro_score, f1_max, pixel_and_image_metrics

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests/fixtures/eval"
rng = np.random.default_rng(20240712)


def b64(a):
    return base64.b64encode(np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()).decode()


def arr(a):
    return {"dtype": a.dtype.str.lstrip("<|"), "shape": list(a.shape), "b64": b64(a)}


def write(name, data):
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / name).write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {OUT / name} ({(OUT / name).stat().st_size} bytes)")


# ---------------------------------------------------------------- curves (roc.ts, pr.ts)
def curve_case(name, scores, labels, with_curves=True):
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.uint8)
    case = {"name": name, "scores": arr(scores), "labels": arr(labels)}
    if labels.any() and not labels.all():
        case["auroc"] = float(roc_auc_score(labels, scores))
        fpr, tpr, th = roc_curve(labels, scores, drop_intermediate=False)
        if with_curves:
            case["roc"] = {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "thresholds": [None if math.isinf(t) else t for t in th.tolist()]}
    if labels.any():
        case["ap"] = float(average_precision_score(labels, scores))
        f1, th, p, r = f1_max(labels, scores)
        case["f1"] = {"f1": f1, "threshold": th, "precision": p, "recall": r}
        precision, recall, thresholds = precision_recall_curve(labels, scores)
        if with_curves:
            case["pr"] = {"precision": precision.tolist(), "recall": recall.tolist(), "thresholds": thresholds.tolist()}
    return case


def make_curves():
    cases = [
        curve_case("random", rng.random(300), rng.random(300) < 0.3),
        curve_case("heavy ties", rng.integers(0, 5, 400) / 4, rng.random(400) < 0.4),
        curve_case("ties across classes only", [0.1, 0.5, 0.5, 0.5, 0.9, 0.9], [0, 1, 0, 1, 1, 0]),
        curve_case("constant scores", np.full(50, 0.25), rng.random(50) < 0.2),
        curve_case("perfect", np.r_[rng.random(20), 2 + rng.random(5)], np.r_[np.zeros(20), np.ones(5)]),
        curve_case("inverted", np.r_[2 + rng.random(20), rng.random(5)], np.r_[np.zeros(20), np.ones(5)]),
        curve_case("single positive", rng.random(30), np.eye(1, 30, 7)[0]),
        curve_case("all positive", rng.random(10), np.ones(10)),
        curve_case("negative scores", rng.normal(size=200) - 3, rng.random(200) < 0.5),
        curve_case("float32 ties 5000", rng.random(5000).astype(np.float32).round(3).astype(np.float64), rng.random(5000) < 0.1, False),
    ]
    write("curves.json", {"cases": cases})


# ---------------------------------------------------------------- components.ts
def make_components():
    masks = []
    for density, shape in [(0.3, (17, 23)), (0.5, (20, 20)), (0.7, (9, 31)), (0.05, (30, 12))]:
        masks.append(("random %.2f" % density, (rng.random(shape) < density).astype(np.uint8)))
    diag = np.zeros((8, 8), np.uint8)
    diag[[0, 1, 2, 3], [0, 1, 2, 3]] = 1
    diag[0, 7] = diag[1, 6] = diag[7, 0] = 1
    masks.append(("diagonal chains", diag))
    checker = (np.indices((10, 11)).sum(0) % 2).astype(np.uint8)
    masks.append(("checkerboard (one 8-connected region)", checker))
    spaced = np.zeros((9, 9), np.uint8)
    spaced[::2, ::2] = 1
    masks.append(("isolated single pixels", spaced))
    u = np.zeros((7, 9), np.uint8)
    u[1:6, 1] = u[1:6, 7] = u[5, 1:8] = 1
    masks.append(("U shape merging late", u))
    masks.append(("empty", np.zeros((5, 6), np.uint8)))
    masks.append(("full", np.ones((4, 3), np.uint8)))
    cases = []
    for name, m in masks:
        lab = measure.label(m).astype(np.int32)
        cases.append({"name": name, "mask": arr(m), "labels": arr(lab), "count": int(lab.max())})
    write("components.json", {"cases": cases})


# ---------------------------------------------------------------- pro.ts + evaluate.ts
MVTEC_EVAL = {}


def load_mvtec_eval(directory):
    """Imports the MVTec AD evaluation code's compute_pro and trapezoid from `directory`."""
    directory = Path(directory).resolve()
    files = {name: directory / name for name in ("pro_curve_util.py", "generic_util.py")}
    for path in files.values():
        if not path.is_file():
            sys.exit(f"--mvtec-eval {directory}: {path.name} is missing (see this script's docstring)")
    sys.path.insert(0, str(directory))
    MVTEC_EVAL["compute_pro"] = importlib.import_module("pro_curve_util").compute_pro
    MVTEC_EVAL["trapezoid"] = importlib.import_module("generic_util").trapezoid
    MVTEC_EVAL["files"] = {name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in files.items()}


def aupro_mvtec(masks, maps, limit=0.3):
    """AU-PRO up to FPR `limit`, normalised by it, as the MVTec AD evaluation script computes it."""
    fprs, pros = MVTEC_EVAL["compute_pro"](anomaly_maps=list(maps), ground_truth_maps=list(masks))
    return float(MVTEC_EVAL["trapezoid"](fprs, pros, x_max=limit) / limit)


def blobs(h, w, count, max_radius):
    m = np.zeros((h, w), np.uint8)
    yy, xx = np.mgrid[:h, :w]
    for _ in range(count):
        cy, cx, r = rng.integers(0, h), rng.integers(0, w), rng.uniform(0.5, max_radius)
        m[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 1
    return m


def informative_map(mask, noise=1.0):
    smooth = ndimage.gaussian_filter(mask.astype(np.float64), 1.5)
    return (smooth * 2 + noise * rng.random(mask.shape)).astype(np.float32)


def product_case(name, maps, masks):
    maps = np.asarray(maps, dtype=np.float32)
    masks = np.asarray(masks, dtype=np.uint8)
    case = {"name": name, "maps": arr(maps), "masks": arr(masks)}
    expected = pixel_and_image_metrics(masks, maps)
    has_regions = masks.any()
    has_normal = not masks.all()
    if has_regions and has_normal:
        with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
            warnings.simplefilter("ignore")
            try:
                paper = float(cal_pro_score(masks, maps))
                expected["proPaper"] = None if math.isnan(paper) else paper
            except (ValueError, ZeroDivisionError) as error:
                expected["proPaper"] = None
                case["proPaperError"] = str(error)
        expected["proExact"] = aupro_mvtec(masks, maps)
    case["expected"] = expected
    return case


def make_products():
    h, w = 24, 20
    cases = []
    masks = np.stack([blobs(h, w, 2, 4) for _ in range(4)] + [np.zeros((h, w), np.uint8)] * 2)
    cases.append(product_case("random blobs, 2 normal images", [informative_map(m) for m in masks], masks))
    masks = np.stack([blobs(h, w, 3, 3) for _ in range(5)])
    cases.append(product_case("quantised maps (heavy ties)", [np.round(informative_map(m) * 4) / 4 for m in masks], masks))
    one = np.zeros((3, h, w), np.uint8)
    one[0, 5, 5] = one[1, 0, 0] = one[1, h - 1, w - 1] = one[2, 10, 3] = 1
    cases.append(product_case("one-pixel regions", [informative_map(m, 2.0) for m in one], one))
    diag = np.zeros((2, h, w), np.uint8)
    for k in range(6):
        diag[0, 3 + k, 3 + k] = 1
    diag[0, 10:14, 12:16] = 1
    diag[0, 14, 16] = 1  # touches the square only diagonally: same 8-connected region
    diag[1, 2, 2] = diag[1, 3, 3] = diag[1, 3, 1] = 1
    cases.append(product_case("diagonally touching regions", [informative_map(m) for m in diag], diag))
    masks = np.stack([blobs(h, w, 2, 5) for _ in range(3)])
    cases.append(product_case("constant maps", np.full((3, h, w), 0.5, np.float32), masks))
    cases.append(product_case("all-normal product", rng.random((3, h, w)), np.zeros((3, h, w), np.uint8)))
    masks = np.stack([blobs(h, w, 2, 4) for _ in range(3)])
    perfect = masks.astype(np.float32) * (1 + rng.random((3, h, w)).astype(np.float32))
    cases.append(product_case("perfect separation (zero FPR range)", perfect, masks))
    masks = np.stack([blobs(h, w, 4, 6) for _ in range(6)] + [np.zeros((h, w), np.uint8)] * 4)
    cases.append(product_case("random maps, pure noise", rng.random((10, h, w)), masks))
    reference = {"proExact": "MVTec AD evaluation code: compute_pro + trapezoid(x_max=0.3) / 0.3", "sha256": MVTEC_EVAL["files"]}
    write("products.json", {"reference": reference, "cases": cases})


# ---------------------------------------------------------------- smoothing.ts, arange
def make_smoothing():
    cases = []
    for shape, sigma, dtype in [((40, 37), 8.0, np.float32), ((10, 7), 4.0, np.float32), ((33, 29), 1.5, np.float64), ((16, 16), 0.7, np.float32)]:
        x = rng.random(shape).astype(dtype)
        y = ndimage.gaussian_filter(x, sigma, mode="reflect", truncate=4.0)
        assert y.dtype == dtype
        cases.append({"sigma": sigma, "input": arr(x), "output": arr(y)})
    maps = [(rng.random((6, 5)) * 3 - 1).astype(np.float32) for _ in range(3)]
    stacked = np.stack(maps)
    normalised = (stacked - stacked.min()) / (stacked.max() - stacked.min())
    assert normalised.dtype == np.float32
    thresholds = []
    for _ in range(12):
        lo, hi = np.sort((rng.random(2) * rng.choice([1, 1e-3, 10, 1e4])).astype(np.float32))
        if lo == hi:
            continue
        t = np.arange(lo, hi, (hi - lo) / 200)
        thresholds.append({"lo": float(lo), "hi": float(hi), "thresholds": arr(t)})
    # numpy yields 201 thresholds for these (the float32 step rounds down)
    for lo, hi in [(0.03959287703037262, 0.5285892486572266), (0.10592123866081238, 0.6331599354743958), (0.0, 1.0)]:
        lo, hi = np.float32(lo), np.float32(hi)
        thresholds.append({"lo": float(lo), "hi": float(hi), "thresholds": arr(np.arange(lo, hi, (hi - lo) / 200))})
    assert any(t["thresholds"]["shape"] == [201] for t in thresholds)
    write("smoothing.json", {"gaussian": cases, "normalise": {"input": arr(stacked), "output": arr(normalised)}, "arange": thresholds})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mvtec-eval", required=True, help="directory with the MVTec AD evaluation code's pro_curve_util.py and generic_util.py")
    load_mvtec_eval(parser.parse_args().mvtec_eval)
    make_curves()
    make_components()
    make_products()
    make_smoothing()
