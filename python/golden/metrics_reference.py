"""Reference implementations of the evaluation metrics, shared by make_metrics_golden.py and
bench_metrics.py.

* `cal_pro_score`: a faithful port of the PRO of the public VCP-CLIP / APRIL-GAN code (after
  cflow-ad): thresholds np.arange(min, max, (max-min)/200) on the float32 maps, detection
  `amaps > th`, per-region overlap over skimage.measure.label regions (connectivity 2 =
  8-connected), global FPR, keep FPR < 0.3, rescale the kept FPRs by their own min/max, sklearn
  auc. Degenerate inputs raise or return NaN exactly as the original does.
* `aupro_exact`: the PRO(FPR) curve at every distinct score (score >= threshold), integrated up
  to FPR 0.3 with linear interpolation at the limit and divided by 0.3 — our numpy restatement
  of the MVTec AD reference, used only by bench_metrics.py for timing; the committed goldens
  come from the MVTec AD evaluation code itself (make_metrics_golden.py --mvtec-eval).
* `pixel_and_image_metrics`: sklearn's roc_auc_score / average_precision_score /
  precision_recall_curve F1-max as the public code computes them.
"""

import numpy as np
from skimage import measure
from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_auc_score


def cal_pro_score(masks, amaps, max_step=200, expect_fpr=0.3):
    """masks [N,H,W] {0,1}, amaps [N,H,W] float32."""
    detected = np.zeros_like(amaps, dtype=bool)
    lo, hi = amaps.min(), amaps.max()
    step = (hi - lo) / max_step
    pro_curve, fpr_curve = [], []
    normal = 1 - masks
    for th in np.arange(lo, hi, step):
        detected[amaps <= th] = 0
        detected[amaps > th] = 1
        overlaps = []
        for det, mask in zip(detected, masks):
            for region in measure.regionprops(measure.label(mask)):
                hits = det[region.coords[:, 0], region.coords[:, 1]].sum()
                overlaps.append(hits / region.area)
        false_pos = np.logical_and(normal, detected).sum()
        fpr_curve.append(false_pos / normal.sum())
        pro_curve.append(np.array(overlaps).mean())
    pro_curve, fpr_curve = np.array(pro_curve), np.array(fpr_curve)
    keep = fpr_curve < expect_fpr
    fpr_curve = fpr_curve[keep]
    if len(fpr_curve) > 0:
        fpr_curve = (fpr_curve - fpr_curve.min()) / (fpr_curve.max() - fpr_curve.min())
        return auc(fpr_curve, pro_curve[keep])
    return 0


def aupro_exact(masks, amaps, fpr_limit=0.3):
    """Exact AUPRO: every distinct score is a threshold (detected: score >= threshold)."""
    scores = amaps.astype(np.float64).ravel()
    labels = np.zeros(scores.shape, dtype=np.int64)
    weight = np.zeros(scores.shape, dtype=np.float64)
    offset = 0
    regions = 0
    flat_labels = []
    for mask in masks:
        lab = measure.label(mask)
        flat_labels.append(np.where(lab > 0, lab + offset, 0).ravel())
        offset += lab.max()
    labels = np.concatenate(flat_labels)
    regions = offset
    areas = np.bincount(labels, minlength=regions + 1)
    pos = labels > 0
    weight[pos] = 1.0 / areas[labels[pos]] / regions
    neg_count = (~pos).sum()
    order = np.argsort(-scores, kind="stable")
    s = scores[order]
    fpr = np.cumsum(~pos[order]) / neg_count
    pro = np.cumsum(weight[order])
    last_of_tie = np.append(np.diff(s) != 0, True)
    fpr = np.concatenate([[0.0], fpr[last_of_tie]])
    pro = np.concatenate([[0.0], pro[last_of_tie]])
    inside = fpr <= fpr_limit
    x, y = fpr[inside], pro[inside]
    if x[-1] < fpr_limit:
        k = np.searchsorted(fpr, fpr_limit, side="right")
        x0, x1, y0, y1 = fpr[k - 1], fpr[k], pro[k - 1], pro[k]
        x = np.append(x, fpr_limit)
        y = np.append(y, y0 + (y1 - y0) * (fpr_limit - x0) / (x1 - x0))
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2) / fpr_limit)


def f1_max(labels, scores):
    """F1-max as the public code takes it, plus the lowest threshold reaching it."""
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = (2 * precision * recall) / (precision + recall)
    best = np.max(f1[np.isfinite(f1)])
    f1_at = np.where(np.isfinite(f1[:-1]), f1[:-1], -np.inf)
    k = int(np.argmax(f1_at))
    return float(best), float(thresholds[k]), float(precision[k]), float(recall[k])


def pixel_and_image_metrics(masks, amaps):
    """The pixel and image (map maximum) metrics of one product; None where undefined."""
    gt = (masks.ravel() > 0).astype(np.int64)
    pr = amaps.ravel()
    out = {}
    if gt.any() and not gt.all():
        out["pixelAuroc"] = float(roc_auc_score(gt, pr))
    if gt.any():
        out["pixelAp"] = float(average_precision_score(gt, pr))
        f1, th, _, _ = f1_max(gt, pr)
        out["pixelF1Max"] = f1
        out["pixelF1Threshold"] = th
        pred = pr >= th
        out["iou"] = float(np.logical_and(pred, gt).sum() / np.logical_or(pred, gt).sum())
    img_gt = np.array([int(m.any()) for m in masks])
    img_score = amaps.reshape(len(amaps), -1).max(axis=1)
    if img_gt.any() and not img_gt.all():
        out["imageAuroc"] = float(roc_auc_score(img_gt, img_score))
    if img_gt.any():
        out["imageAp"] = float(average_precision_score(img_gt, img_score))
        out["imageF1Max"] = f1_max(img_gt, img_score)[0]
    return out
