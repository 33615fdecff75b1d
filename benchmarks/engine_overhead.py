"""Engine overhead, side by side with PyTorch CPU in one run.

1. Per-op Python overhead: a chain of small elementwise ops on a 16-element tensor,
   forward and backward, so the arithmetic is negligible and the time is the engine's.
2. A 2-layer dense network (784-256-10, ReLU, softmax cross-entropy) forward+backward
   at batch 128, where BLAS should dominate.

Prints milliseconds for each framework and the ratio torch_time / chainrule_time
(> 1 means chainrule is faster). Run: python benchmarks/engine_overhead.py
"""
import os
import statistics
import sys
import time

import numpy as np

import chainrule as cr
from chainrule import ops

try:
    import torch
except ImportError:
    torch = None


def timeit(fn, repeats=30, inner=10, warmup=5):
    """Median over `repeats` chunks of `inner` calls, in milliseconds per call."""
    for _ in range(warmup):
        fn()
    chunks = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        chunks.append((time.perf_counter() - t0) / inner * 1e3)
    return statistics.median(chunks)


CHAIN = 100  # ops per chain: 50 mul + 50 add, then one sum


def chain_chainrule():
    x = cr.randn(16, requires_grad=True)

    def step():
        y = x
        for _ in range(CHAIN // 2):
            y = y * 1.001
            y = y + 0.001
        y.sum().backward()
        x.grad = None
    return step


def chain_torch():
    x = torch.randn(16, requires_grad=True)

    def step():
        y = x
        for _ in range(CHAIN // 2):
            y = y * 1.001
            y = y + 0.001
        y.sum().backward()
        x.grad = None
    return step


def dense_chainrule(batch=128):
    rng = np.random.default_rng(0)
    x = cr.tensor(rng.standard_normal((batch, 784), dtype=np.float32))
    labels = rng.integers(0, 10, batch)
    w1 = cr.tensor(rng.standard_normal((784, 256), dtype=np.float32) * 0.05, requires_grad=True)
    b1 = cr.zeros(256, requires_grad=True)
    w2 = cr.tensor(rng.standard_normal((256, 10), dtype=np.float32) * 0.05, requires_grad=True)
    b2 = cr.zeros(10, requires_grad=True)
    params = (w1, b1, w2, b2)

    def step():
        h = ops.relu(ops.linear(x, w1, b1))
        loss = ops.sparse_softmax_cross_entropy(ops.linear(h, w2, b2), labels)
        loss.backward()
        for p in params:
            p.grad = None
    return step


def dense_torch(batch=128):
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((batch, 784), dtype=np.float32))
    labels = torch.from_numpy(rng.integers(0, 10, batch))
    l1, l2 = torch.nn.Linear(784, 256), torch.nn.Linear(256, 10)

    def step():
        loss = torch.nn.functional.cross_entropy(l2(torch.relu(l1(x))), labels)
        loss.backward()
        for p in (*l1.parameters(), *l2.parameters()):
            p.grad = None
    return step


def main():
    threads = os.cpu_count()
    if torch is not None:
        torch.set_num_threads(threads)
    print(f"chainrule {cr.__version__}, numpy {np.__version__}, "
          f"torch {torch.__version__ if torch else 'not installed'}, {threads} threads, python {sys.version.split()[0]}")
    rows = [("op chain (100 ops fwd+bwd), per op", chain_chainrule, chain_torch, 1 / (CHAIN + 1)),
            ("dense 784-256-10 fwd+bwd, batch 128", dense_chainrule, dense_torch, 1.0)]
    print(f"{'benchmark':40s} {'chainrule':>12s} {'torch':>12s} {'ratio':>7s}")
    for name, ours, theirs, scale in rows:
        t_ours = timeit(ours()) * scale
        t_theirs = timeit(theirs()) * scale if torch is not None else float("nan")
        unit = "us" if scale < 1 else "ms"
        mult = 1e3 if scale < 1 else 1.0
        print(f"{name:40s} {t_ours * mult:9.2f} {unit} {t_theirs * mult:9.2f} {unit} {t_theirs / t_ours:7.2f}")
    print("ratio = torch time / chainrule time (> 1 means chainrule is faster)")


if __name__ == "__main__":
    main()
