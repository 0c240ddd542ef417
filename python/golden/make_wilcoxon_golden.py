"""Golden values for src/reports/wilcoxon.ts: scipy.stats.wilcoxon(x, y) with its defaults
(zero_method 'wilcox', no continuity correction, two-sided, method 'auto') and scipy.special.ndtr.

Cases cover every branch scipy's 'auto' takes: exact null distribution (no ties, no zeros,
n ≤ 50), exact sign-flip permutation test (ties or zero differences, n ≤ 13), normal
approximation with tie correction (ties or zeros with 14 ≤ n ≤ 50, or n > 50), plus tiny and
degenerate samples. Values are stored as JSON doubles (repr round-trips).
Usage: .venv-golden/bin/python python/golden/make_wilcoxon_golden.py (python/README.md)
"""

import json
import math
import warnings
from pathlib import Path

import numpy as np
import scipy
from scipy import special, stats

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "reports" / "wilcoxon-golden.json"
rng = np.random.default_rng(15)


def case(name, x, y):
    x, y = np.asarray(x, float), np.asarray(y, float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.wilcoxon(x, y)
    p = float(res.pvalue)
    return {"name": name, "x": x.tolist(), "y": y.tolist(), "statistic": float(res.statistic),
            "pvalue": None if math.isnan(p) else p}


def quarters(n):
    """Paired values on a grid of 0.25 (exact differences) with a zero difference and a tie forced."""
    x = rng.integers(0, 8, n) * 0.25
    y = rng.integers(0, 8, n) * 0.25
    y[0] = x[0]
    y[1], y[2] = x[1] - 0.5, x[2] + 0.5
    return x, y


def main():
    cases = []
    for n in (1, 2, 5, 6, 10, 13, 14, 20, 30, 50):
        x = rng.random(n)
        cases.append(case(f"exact n={n}", x, x + rng.normal(0.05, 0.1, n)))
    x = rng.random(10)
    cases.append(case("exact, all positive differences n=10", x + 0.5 + rng.random(10), x))
    for n in (4, 8, 12, 13):
        cases.append(case(f"permutation, ties and zeros n={n}", *quarters(n)))
        d = np.round(rng.normal(0.1, 0.2, n), 2)
        d[0] = d[1] = abs(d[0]) + 0.01  # a tie
        cases.append(case(f"permutation, ties n={n}", d, np.zeros(n)))
        d = rng.normal(0.1, 0.2, n)
        d[-1] = 0
        cases.append(case(f"permutation, one zero n={n}", d, np.zeros(n)))
    for n in (14, 25, 50):
        cases.append(case(f"asymptotic, ties and zeros n={n}", *quarters(n)))
    for n in (51, 75, 120):
        x = rng.random(n)
        cases.append(case(f"asymptotic n={n}", x, x + rng.normal(0.02, 0.1, n)))
        cases.append(case(f"asymptotic, ties n={n}", np.round(x, 1), np.round(x + rng.normal(0.02, 0.1, n), 1)))
    cases.append(case("strong effect n=60", rng.random(60) + 1, rng.random(60)))
    cases.append(case("all zero differences n=5", [0.5] * 5, [0.5] * 5))
    cases.append(case("all zero differences n=20", [0.5] * 20, [0.5] * 20))
    z = [-40, -9, -5.5, -3, -2, -1.5, -0.7, -0.3, -1e-3, 0, 1e-3, 0.3, 0.7, 1.5, 2, 3, 5.5, 9, 40]
    z += rng.normal(0, 3, 20).tolist()
    normal = [{"z": float(v), "ndtr": float(special.ndtr(v))} for v in z]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"scipy": scipy.__version__, "cases": cases, "ndtr": normal}, separators=(",", ":")) + "\n")
    print(f"wrote {OUT}: {len(cases)} cases")


if __name__ == "__main__":
    main()
