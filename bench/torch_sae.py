#!/usr/bin/python3
"""The same sparse autoencoder and training step as saekit, in PyTorch, for side-by-side
benchmarks. Run by bench/speed.mjs with Debian's python3-torch (/usr/bin/python3).

Model: h = relu((x - b_dec) @ W_enc + b_enc); xhat = h @ W_dec + b_dec;
loss = mean over rows of ||x - xhat||^2 + l1 * ||h||_1. Decoder rows unit norm, the
gradient's parallel component removed before Adam and rows renormalised after it, as in
sparsify and dictionary_learning.

    torch_sae.py speed --dir DIR --d-in D --d-hidden M --batch B --l1 L --steps N --warmup W [--tied]
                       [--device cuda[:N] [--tf32]]
        DIR holds x.f32 [B*rounds, D] and the initial parameters w_enc.f32 [D, M],
        b_enc.f32 [M], w_dec.f32 [M, D], b_dec.f32 [D] written by the caller. Prints JSON
        with the median milliseconds per step over the timed steps and the mean L0.
        --device cuda (or cuda:N) runs on the GPU, with the batches already there (msPerStep), then
        with each copied from pinned host memory inside the step (fromHostMsPerStep, as saekit's
        trainStep takes its batch from host memory); --tf32 lets its matrix products use TF32
        tensor cores, as saekit's precision 'tf32' does (PyTorch's default is FP32).
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch


class Sae(torch.nn.Module):
    def __init__(self, w_enc, b_enc, w_dec, b_dec, tied):
        super().__init__()
        self.tied = tied
        self.W_dec = torch.nn.Parameter(torch.from_numpy(w_dec).clone())
        self.W_enc = None if tied else torch.nn.Parameter(torch.from_numpy(w_enc).clone())
        self.b_enc = torch.nn.Parameter(torch.from_numpy(b_enc).clone())
        self.b_dec = torch.nn.Parameter(torch.from_numpy(b_dec).clone())

    def forward(self, x):
        w_enc = self.W_dec.t() if self.tied else self.W_enc
        h = torch.relu((x - self.b_dec) @ w_enc + self.b_enc)
        return h, h @ self.W_dec + self.b_dec


def train_step(sae, optimizer, x, l1):
    h, xhat = sae(x)
    loss = ((x - xhat) ** 2).sum(dim=1).mean() + l1 * h.sum(dim=1).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    with torch.no_grad():
        w = sae.W_dec
        w.grad -= (w.grad * w).sum(dim=1, keepdim=True) * w / (w * w).sum(dim=1, keepdim=True)
        optimizer.step()
        w /= w.norm(dim=1, keepdim=True)
    return float(loss), float((h > 0).float().sum(dim=1).mean())


def device_name(value):
    if value == "cpu" or value == "cuda" or (value.startswith("cuda:") and value[5:].isdigit()):
        return value
    raise argparse.ArgumentTypeError(f"expected cpu, cuda or cuda:N but received {value!r}")


def load(directory, name, shape):
    return np.fromfile(os.path.join(directory, name), dtype=np.float32).reshape(shape)


def median(values):
    return sorted(values)[len(values) // 2]


def timed_steps(args, sae, optimizer, rounds, batch_at):
    """Median milliseconds per step over the timed steps and their mean L0; batch_at(start)
    gives the step's batch, inside the timed region."""
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    times, l0s = [], []
    for step in range(args.warmup + args.steps):
        start = (step % rounds) * args.batch
        if cuda:
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        # float() of the loss and L0 waits for the GPU, so the time is the whole step.
        _, l0 = train_step(sae, optimizer, batch_at(start), args.l1)
        elapsed = time.perf_counter() - t0
        if step >= args.warmup:
            times.append(elapsed * 1000)
            l0s.append(l0)
    return median(times), sum(l0s) / len(l0s)


def speed(args):
    d, m, b = args.d_in, args.d_hidden, args.batch
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
    x_host = torch.from_numpy(load(args.dir, "x.f32", (-1, d)))
    x_all = x_host.to(device)
    sae = Sae(load(args.dir, "w_enc.f32", (d, m)), load(args.dir, "b_enc.f32", (m,)),
              load(args.dir, "w_dec.f32", (m, d)), load(args.dir, "b_dec.f32", (d,)), args.tied).to(device)
    optimizer = torch.optim.Adam(sae.parameters(), lr=args.lr)
    rounds = x_all.shape[0] // b
    ms, l0 = timed_steps(args, sae, optimizer, rounds, lambda start: x_all[start:start + b])
    result = {
        "msPerStep": ms,
        "l0": l0,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(device) if cuda else "cpu",
    }
    if cuda:
        # The same steps with each batch copied from host memory, as saekit's trainStep takes
        # it: from pinned memory without blocking, PyTorch's fastest way (a DataLoader with
        # pin_memory). The model goes on from the steps above.
        pinned = x_host.pin_memory()
        result["fromHostMsPerStep"], result["fromHostL0"] = timed_steps(
            args, sae, optimizer, rounds, lambda start: pinned[start:start + b].to(device, non_blocking=True))
    print(json.dumps(result))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["speed"])
    parser.add_argument("--dir", required=True)
    parser.add_argument("--d-in", type=int, required=True)
    parser.add_argument("--d-hidden", type=int, required=True)
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--l1", type=float, required=True)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tied", action="store_true")
    parser.add_argument("--device", type=device_name, default="cpu")
    parser.add_argument("--tf32", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    speed(args)


if __name__ == "__main__":
    sys.exit(main())
