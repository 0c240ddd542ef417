"""Python side of bench/metrics.bench.ts: the reference metrics on one product, timed.

Reads <dir>/maps.npy [N,H,W] float32 and <dir>/masks.npy [N,H,W] uint8 and prints one JSON
line: {"values": {...}, "seconds": {...}}. Metrics as the public VCP-CLIP code computes them
(sklearn pixel AUROC / AP / F1-max, cal_pro_score) plus the exact AUPRO of metrics_reference.
Usage: .venv-golden/bin/python python/golden/bench_metrics.py <dir>
"""

import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from metrics_reference import aupro_exact, cal_pro_score, f1_max  # noqa: E402


def main(directory):
    maps = np.load(Path(directory) / "maps.npy")
    masks = np.load(Path(directory) / "masks.npy")
    gt, pr = masks.ravel(), maps.ravel()
    values, seconds = {}, {}

    def timed(name, fn):
        start = time.perf_counter()
        values[name] = float(fn())
        seconds[name] = time.perf_counter() - start

    timed("pixelAuroc", lambda: roc_auc_score(gt, pr))
    timed("pixelAp", lambda: average_precision_score(gt, pr))
    timed("pixelF1Max", lambda: f1_max(gt, pr)[0])
    timed("pro", lambda: cal_pro_score(masks, maps))
    timed("proExact", lambda: aupro_exact(masks, maps))
    img_gt = masks.reshape(len(masks), -1).any(axis=1).astype(np.int64)
    img_score = maps.reshape(len(maps), -1).max(axis=1)
    timed("imageAuroc", lambda: roc_auc_score(img_gt, img_score))
    print(json.dumps({"values": values, "seconds": seconds}))


if __name__ == "__main__":
    main(sys.argv[1])
