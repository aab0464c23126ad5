#!/usr/bin/env python3
"""Fits the erfc polynomial behind the vectorized GELU (src/kernels/kern_gen.h, vgelu).

erfc(z) exp(z^2) on z in [0, 10] as a polynomial in u = 1 / (1 + z / 2) (u in [1/6, 1]), for minimum
maximum relative error (Lawson's iteratively reweighted least squares), then checks the float32
coefficients evaluated by float32 Horner with FMA. Prints the degree's error and the coefficients,
highest power first. Needs numpy only: python3 tools/fit_erfc.py [degree]
"""
import math
import sys

import numpy as np

ZMAX = 10.0


def erfcx(z):
    return np.array([math.erfc(t) * math.exp(t * t) for t in z])


def fit(deg, iters=60):
    lo, hi = 1 / (1 + ZMAX / 2), 1.0
    u = np.cos(np.linspace(0, np.pi, 4000)) * 0.5 * (hi - lo) + 0.5 * (hi + lo)
    f = erfcx(2 * (1 / u - 1))
    V = np.vander(u, deg + 1)
    w = np.ones_like(u) / len(u)
    best = None
    for _ in range(iters):
        sw = np.sqrt(w)
        c, *_ = np.linalg.lstsq(V / f[:, None] * sw[:, None], sw, rcond=None)
        e = np.abs(V @ c / f - 1)
        if best is None or e.max() < best[0]:
            best = (e.max(), c)
        w = w * e
        w /= w.sum()
    return best


def horner_f32(c, x):
    # float32 Horner with a fused multiply-add: the product and sum in double, one rounding
    r = np.full_like(x, c[0])
    for k in c[1:]:
        r = np.float32(r.astype(np.float64) * x.astype(np.float64) + np.float64(k))
    return r


def main():
    deg = int(sys.argv[1]) if len(sys.argv) > 1 else 9
    err, c = fit(deg)
    c32 = np.float32(c)
    u = np.float32(1 / (1 + np.linspace(0, ZMAX, 200001) / 2))
    got = horner_f32(c32, u)
    ref = erfcx(2 * (1 / u.astype(np.float64) - 1))
    print("degree %d: fit %.3g, float32 evaluation %.3g max relative error" % (deg, err, np.max(np.abs(got / ref - 1))))
    for x in c32:
        print("%.9ef" % x)


if __name__ == "__main__":
    main()
