#!/usr/bin/python3
"""RICA's cost and gradient in numpy, the reference bench/rica_speed.mjs times ours against.

The same objective as saekit's Rica (and the UFLDL exercise's code, vectorised): rows of W
normalised inside the cost, g(u) = sqrt(u^2 + epsilon), means over the N rows of X [N, d].

  /usr/bin/python3 bench/rica_numpy.py --dir DIR --rows N --d-in D --features K \
      --lam 0.1 --epsilon 0.01 --repeats 10 --warmup 2 [--dtype float32|float64]

DIR holds x.f32 (N x D, row-major float32) and w.f32 (K x D). Prints one JSON object:
milliseconds per cost-and-gradient evaluation (median and minimum), and the cost and gradient norm at W
so the caller can check both implementations computed the same thing. Set
OPENBLAS_NUM_THREADS (and OMP_NUM_THREADS) for the thread count.
"""
import argparse
import json
import time

import numpy as np


def cost_gradient(w, x, lam, epsilon):
    norms = np.sqrt((w * w).sum(axis=1, keepdims=True))
    v = w / norms
    y = x @ v.T
    r = y @ v - x
    z = r @ v.T
    smooth = np.sqrt(y * y + epsilon)
    n = x.shape[0]
    cost = (lam * smooth.sum(dtype=np.float64) + 0.5 * (r * r).sum(dtype=np.float64)) / n
    grad_v = ((lam * y / smooth + z).T @ x + y.T @ r) / n
    grad_w = (grad_v - (grad_v * v).sum(axis=1, keepdims=True) * v) / norms
    return cost, grad_w


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--d-in", type=int, required=True)
    parser.add_argument("--features", type=int, required=True)
    parser.add_argument("--lam", type=float, required=True)
    parser.add_argument("--epsilon", type=float, required=True)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    args = parser.parse_args()
    dtype = np.dtype(args.dtype)
    x = np.fromfile(f"{args.dir}/x.f32", dtype=np.float32).reshape(args.rows, args.d_in).astype(dtype)
    w = np.fromfile(f"{args.dir}/w.f32", dtype=np.float32).reshape(args.features, args.d_in).astype(dtype)
    times = []
    for i in range(args.warmup + args.repeats):
        started = time.perf_counter()
        cost, grad = cost_gradient(w, x, dtype.type(args.lam), dtype.type(args.epsilon))
        if i >= args.warmup:
            times.append((time.perf_counter() - started) * 1000)
    print(json.dumps({
        "msPerEvaluation": float(np.median(times)),
        "minMsPerEvaluation": float(np.min(times)),
        "cost": float(cost),
        "gradientNorm": float(np.linalg.norm(grad.astype(np.float64))),
        "dtype": args.dtype,
        "numpy": np.__version__,
    }))


if __name__ == "__main__":
    main()
