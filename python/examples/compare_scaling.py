#!/usr/bin/env python3
"""compare_scaling.py: torchao-style MXFP4 scaling against Half-S on one tensor.

torchao's MX formats pick the E8M0 block scale from the block's max: FLOOR (the OCP MX rule:
floor(log2 amax) − 2, which may clip the largest values) or CEIL ("max scaling": the smallest
power of two that fits amax under 6, never clipping). Half-S halves the max scale whenever that
lowers the block's error. This prints, per rule, the relative MSE, the SQNR, the fraction of
nonzero values that collapse to zero and the fraction of blocks halved.

usage: python3 compare_scaling.py [TENSOR.f32 COLS]   (default: data/heavy_tailed.f32, 1024
columns, else a Student-t(3) tensor)
"""
import os
import sys

import numpy as np

import halfs


def main():
    if len(sys.argv) == 3:
        x = np.fromfile(sys.argv[1], dtype=np.float32).reshape(-1, int(sys.argv[2]))
        what = sys.argv[1]
    else:
        path = os.path.join(os.path.dirname(__file__), "..", "..", "data", "heavy_tailed.f32")
        if os.path.exists(path):
            x, what = np.fromfile(path, dtype=np.float32).reshape(-1, 1024), "data/heavy_tailed.f32"
        else:
            x = np.random.default_rng(0).standard_t(3, (1024, 1024)).astype(np.float32)
            what = "Student-t(3), 1024 x 1024"
    rules = [("ocp", "torchao FLOOR (OCP MX)"), ("ceil", "torchao CEIL (max scaling)"),
             ("halfs", "Half-S")]
    st = halfs.stats(x, "mxfp4")
    print("%s: %d x %d, MXFP4 (E2M1, E8M0 scale per 32), kurtosis %.2f"
          % (what, x.shape[0], x.shape[1], st["kurtosis"]))
    print("%-28s %10s %8s %14s %8s" % ("rule", "rel_mse", "sqnr_db", "zero_collapse", "halved"))
    for rule, label in rules:
        s = st[rule]
        print("%-28s %10.5f %8.2f %14.4f %8.3f" % (label, s["rel_mse"], s["sqnr_db"],
                                                   s["zero_collapse"], s["halved_fraction"]))
    # the same numbers from the values themselves
    for rule, label in rules:
        y = halfs.qdq(x, "mxfp4", rule=rule)
        rel = float(((x.astype(np.float64) - y) ** 2).sum() / (x.astype(np.float64) ** 2).sum())
        assert abs(rel - st[rule]["rel_mse"]) <= 1e-9 * max(rel, 1e-30), (rule, rel)
    gain = 10 * np.log10(st["ceil"]["rel_mse"] / st["halfs"]["rel_mse"])
    print("Half-S lowers the error of max scaling by %.2f dB" % gain)


if __name__ == "__main__":
    main()
