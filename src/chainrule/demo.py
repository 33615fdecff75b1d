"""The first run on a fresh machine: backpropagation by the book, then an MLP that learns.

Part 1 is the lecture's 2-2-2 sigmoid network (inputs .05 .10, targets .01 .99): its
forward pass, E_total, the eight weight gradients and one gradient-descent step.
Part 2 trains a 2-64-64-3 ReLU network on three interleaved spirals with Adam,
written with nothing but tensors, ops and backward().
"""
import time

import numpy as np

from . import ops, random
from .autograd import Tensor, no_grad
from .creation import randn, tensor, zeros


def two_two_two(out=print):
    """The worked example: returns (E_total, gradients dict, updated weights dict)."""
    f64 = np.float64
    w = {f"w{i}": tensor(v, dtype=f64, requires_grad=True)
         for i, v in enumerate([.15, .20, .25, .30, .40, .45, .50, .55], start=1)}
    b1, b2 = tensor(.35, dtype=f64), tensor(.60, dtype=f64)
    i1, i2 = tensor(.05, dtype=f64), tensor(.10, dtype=f64)
    t1, t2 = .01, .99
    h1 = ops.sigmoid(w["w1"] * i1 + w["w2"] * i2 + b1)
    h2 = ops.sigmoid(w["w3"] * i1 + w["w4"] * i2 + b1)
    o1 = ops.sigmoid(w["w5"] * h1 + w["w6"] * h2 + b2)
    o2 = ops.sigmoid(w["w7"] * h1 + w["w8"] * h2 + b2)
    e_total = 0.5 * (t1 - o1) ** 2 + 0.5 * (t2 - o2) ** 2
    e_total.backward()
    out("Part 1: the 2-2-2 sigmoid network of the backpropagation lecture")
    out(f"  out_h1 = {h1.item():.9f}  out_h2 = {h2.item():.9f}")
    out(f"  out_o1 = {o1.item():.9f}  out_o2 = {o2.item():.9f}  E_total = {e_total.item():.9f}")
    grads = {k: float(v.grad) for k, v in w.items()}
    updated = {k: w[k].item() - 0.5 * grads[k] for k in w}
    for k in w:
        out(f"  dE/d{k} = {grads[k]: .9f}   {k} <- {w[k].item():.2f} - 0.5 * dE/d{k} = {updated[k]:.9f}")
    return e_total.item(), grads, updated


def spirals(n_per_class=200, classes=3, seed=0):
    """Three interleaved 2-D spirals (the classic non-linearly-separable toy set)."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for c in range(classes):
        r = np.linspace(0.0, 1.0, n_per_class)
        theta = np.linspace(c * 4.0, (c + 1) * 4.0, n_per_class) + rng.normal(0, 0.2, n_per_class)
        xs.append(np.stack([r * np.sin(theta), r * np.cos(theta)], axis=1))
        ys.append(np.full(n_per_class, c))
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys)


def train_mlp(steps=400, lr=0.01, seed=0, out=print):
    """Full-batch Adam on the spirals; returns the final training accuracy."""
    random.seed(seed)
    x, y = spirals(seed=seed)
    sizes = [2, 64, 64, 3]
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        params.append(randn(fan_in, fan_out) * np.sqrt(2.0 / fan_in))  # He initialisation for ReLU
        params.append(zeros(fan_out))
    params = [p.detach().requires_grad_() for p in params]
    m = [np.zeros_like(p.data) for p in params]
    v = [np.zeros_like(p.data) for p in params]
    xt = Tensor(x)
    out(f"Part 2: an MLP {'-'.join(map(str, sizes))} learns {len(x)} points on three spirals (Adam, lr={lr})")
    start = time.perf_counter()
    for step in range(1, steps + 1):
        h = xt
        for k in range(0, len(params), 2):
            h = ops.linear(h, params[k], params[k + 1])
            if k < len(params) - 2:
                h = ops.relu(h)
        loss = ops.sparse_softmax_cross_entropy(h, y)
        for p in params:
            p.grad = None
        loss.backward()
        with no_grad():
            for p, mi, vi in zip(params, m, v):
                mi += 0.1 * (p.grad - mi)
                vi += 0.001 * (p.grad * p.grad - vi)
                p.data -= lr * (mi / (1 - 0.9 ** step)) / (np.sqrt(vi / (1 - 0.999 ** step)) + 1e-7)
        if step % 100 == 0 or step == 1:
            acc = float((h.data.argmax(axis=1) == y).mean())
            out(f"  step {step:4d}  loss {loss.item():.4f}  accuracy {acc:.3f}")
    out(f"  trained in {time.perf_counter() - start:.1f} s")
    return acc


def run(out=print):
    two_two_two(out)
    out("")
    return train_mlp(out=out)
