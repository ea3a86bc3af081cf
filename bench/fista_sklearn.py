#!/usr/bin/python3
"""scikit-learn's lasso coder on the same problem as saekit's FistaCoder, for bench/fista_speed.mjs.
Run with Debian's python3-sklearn (/usr/bin/python3); nothing in the tests needs it.

The objective: saekit solves, per row x, min_z 0.5 ||x - z D||^2 + lambda ||z||_1.
sparse_encode(algorithm='lasso_cd', alpha=a) fits sklearn.linear_model.Lasso with
alpha = a / n_features to X = D^T (n_features rows) and y = x (sklearn 1.2,
decomposition/_dict_learning.py, _sparse_encode), and Lasso minimises
(1 / (2 n_samples)) ||y - X w||^2 + alpha ||w||_1 with n_samples = n_features here. That is
(1 / n_features) (0.5 ||x - z D||^2 + a ||z||_1): the same minimiser, so a = lambda. This script
checks it: the KKT violation of sklearn's codes is reported for lambda itself.

    fista_sklearn.py --dir DIR --atoms M --dim D --lambda L [--jobs J] [--codes NAME ...]
        DIR holds dictionary.f32 [M, D] and x.f32 [rows, D]. Times sparse_encode on x, then
        evaluates in float64 the objective of each row for sklearn's codes and for every
        codes file DIR/NAME.f32 [rows, M] given. Prints JSON.
"""
import argparse
import json
import os
import time

import numpy as np
from sklearn.decomposition import sparse_encode


def objectives(x, dictionary, codes, lam):
    residual = x - codes @ dictionary
    return 0.5 * np.einsum("ij,ij->i", residual, residual) + lam * np.abs(codes).sum(axis=1)


def relative_kkt(x, dictionary, codes, lam):
    """Per row: the lasso's KKT violation divided by max(lambda, ||x D^T||_inf), as saekit reports it."""
    g = (codes @ dictionary - x) @ dictionary.T
    active = codes != 0
    violation = np.where(active, np.abs(g + lam * np.sign(codes)), np.maximum(np.abs(g) - lam, 0.0))
    scale = np.maximum(lam, np.abs(x @ dictionary.T).max(axis=1))
    return violation.max(axis=1) / scale


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--atoms", type=int, required=True)
    parser.add_argument("--dim", type=int, required=True)
    parser.add_argument("--lambda", dest="lam", type=float, required=True)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--codes", nargs="*", default=[])
    args = parser.parse_args()

    dictionary = np.fromfile(os.path.join(args.dir, "dictionary.f32"), dtype=np.float32).reshape(args.atoms, args.dim)
    x = np.fromfile(os.path.join(args.dir, "x.f32"), dtype=np.float32).reshape(-1, args.dim)
    started = time.perf_counter()
    cpu_started = time.process_time()
    codes = sparse_encode(x, dictionary, algorithm="lasso_cd", alpha=args.lam, n_jobs=args.jobs)
    cpu_seconds = time.process_time() - cpu_started
    seconds = time.perf_counter() - started

    d64 = dictionary.astype(np.float64)
    x64 = x.astype(np.float64)
    c64 = codes.astype(np.float64)
    result = {
        "sklearn": sklearn_version(),
        "jobs": args.jobs,
        "dtype": str(codes.dtype),
        "usPerSample": seconds / x.shape[0] * 1e6,
        # CPU time of this process only: with n_jobs > 1 the work runs in other processes.
        "cpuUsPerSample": cpu_seconds / x.shape[0] * 1e6 if args.jobs == 1 else None,
        "l0": float((codes != 0).sum(axis=1).mean()),
        "objective": objectives(x64, d64, c64, args.lam).tolist(),
        "kkt": relative_kkt(x64, d64, c64, args.lam).tolist(),
        "codes": {},
    }
    for name in args.codes:
        ours = np.fromfile(os.path.join(args.dir, name + ".f32"), dtype=np.float32).reshape(x.shape[0], args.atoms)
        result["codes"][name] = objectives(x64, d64, ours.astype(np.float64), args.lam).tolist()
    print(json.dumps(result))


def sklearn_version():
    import sklearn

    return sklearn.__version__


if __name__ == "__main__":
    main()
