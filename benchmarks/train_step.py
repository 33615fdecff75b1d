"""Whole training steps, chainrule against PyTorch CPU: one command, both frameworks, same machine, same threads.

    python benchmarks/train_step.py                       # every model, all cores (a few minutes)
    python benchmarks/train_step.py --quick               # smoke run, under a minute
    python benchmarks/train_step.py --only mlp,cnn-a --threads 1 --markdown RESULTS.md
    python benchmarks/train_step.py --profile unet --threads 1   # where a step's time goes, both frameworks

Models (random MNIST-shaped data: 28x28x1 in [0, 1], labels 0-9; U-Net: 64x64x1 images and masks):
    mlp            784-256-128-10 ReLU, softmax, Adam(1e-3), batch 128, sparse categorical cross-entropy
    cnn-a          the TensorFlow MNIST tutorial: conv 5x5x32 same + pool, conv 5x5x64 same + pool,
                   dense 1024, dropout 0.5, dense 10 softmax; Adam(1e-3), batch 50
    cnn-b          the Keras lecture CNN (tests/test_lecture_cnn.py): four 3x3 valid convs 32-64-128-256,
                   each followed by BatchNormalization(momentum=0.95) and ReLU, max-pool after the last
                   three, dropout 0.25, global average pooling, dense 128, dropout 0.5, dense 10 softmax;
                   Adadelta (Keras defaults lr=0.001, rho=0.95, eps=1e-7), batch 128
    unet           64x64x1, two 3x3 same conv+ReLU per level, 16-32-64-128 down with max-pool 2,
                   bottleneck 256, up by UpSampling2D(2) + concatenate with the skip + two convs,
                   1x1 conv to 1 channel sigmoid; Adam(1e-3), MSE, batch 8
    predict-mlp    model.predict(x, batch_size=1000) of the MLP on 2000 images
    predict-cnn-a  the same for CNN-A

chainrule runs its normal high-level path: `model.train_on_batch(x, y)` (compiled without metrics,
as the PyTorch loop computes none) over a list of pre-made batches, and `model.predict`. PyTorch
runs nn.Module + torch.optim: zero_grad, forward, loss, backward, step, loss.item(); inference
under net.eval() and torch.no_grad() at batch 1000. Both get the same channels-last data; PyTorch
gets it transposed to NCHW once, before any timing.

Timing: a few warm-up steps, then the median of repeated chunks of k steps (k chosen so a chunk
lasts about 0.7 s), the two frameworks interleaved chunk by chunk so that load from other
processes hits both alike. ratio = chainrule samples/s / torch samples/s: > 1 means chainrule is
faster.

Memory: each framework and model runs in its own child process (this script re-invoked with
--child chainrule:cnn-a, ...), which makes its data, notes its resident memory, builds the model,
runs a few steps and reports its peak resident memory (VmHWM, reset to the current RSS once the data
exists; ru_maxrss would carry the parent's peak over on Linux) minus that starting point: the
memory the model, its activations, gradients and optimizer state cost, without the libraries'
import footprint (printed separately). mem ratio = chainrule MB / torch MB.

GFLOP/s: one step's FLOPs counted from the layer shapes: forward 2 * MACs of every conv and dense
layer; backward the weight-gradient GEMM (same MACs) and the input-gradient GEMM (same MACs) of each
layer except the first, whose input needs no gradient; elementwise work is ignored. Effective
GFLOP/s = FLOPs per sample * samples/s, to hold against the header's float32 GEMM rates of NumPy
and torch (a 2048 x 2048 matmul) measured in the same run.

Threads: --threads N (default os.cpu_count()) sets torch.set_num_threads(N) and limits NumPy's BLAS
through threadpoolctl. The header names the OpenBLAS kernel NumPy runs: OPENBLAS_CORETYPE in the
environment forces one, so for real numbers run
    (unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; python benchmarks/train_step.py)
"""
import argparse
import datetime
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import time

import numpy as np

TRAIN_MODELS = ("mlp", "cnn-a", "cnn-b", "unet")
PREDICT_MODELS = ("predict-mlp", "predict-cnn-a")
ALL_MODELS = TRAIN_MODELS + PREDICT_MODELS
BATCH = {"mlp": 128, "cnn-a": 50, "cnn-b": 128, "unet": 8, "predict-mlp": 1000, "predict-cnn-a": 1000}
PREDICT_IMAGES = 2000
N_BATCHES = 8  # distinct pre-made training batches, cycled


# ------------------------------------------------------------------ data
def make_data(kind, n_batches=N_BATCHES, batch_size=None, seed=0):
    """List of (x, y) channels-last float32 batches; y int64 labels 0-9, or U-Net masks in [0, 1]."""
    rng = np.random.default_rng(seed)
    batch_size = batch_size or BATCH[kind]
    if kind.startswith("predict-"):
        return [(rng.random((PREDICT_IMAGES, 28, 28, 1), dtype=np.float32), None)]
    side = 64 if kind == "unet" else 28
    batches = []
    for _ in range(n_batches):
        x = rng.random((batch_size, side, side, 1), dtype=np.float32)
        y = (rng.random((batch_size, side, side, 1), dtype=np.float32) if kind == "unet"
             else rng.integers(0, 10, batch_size).astype(np.int64))
        batches.append((x, y))
    return batches


# ------------------------------------------------------------------ chainrule models, as a course writes them
def chainrule_model(kind):
    """The compiled chainrule model for `kind` (predict-* kinds give the trained model's architecture)."""
    from chainrule import layers, models, optimizers
    kind = kind.removeprefix("predict-")
    if kind == "mlp":
        model = models.Sequential([
            layers.Input((28, 28, 1)), layers.Flatten(),
            layers.Dense(256, activation="relu"), layers.Dense(128, activation="relu"),
            layers.Dense(10, activation="softmax")])
        model.compile(optimizer=optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    elif kind == "cnn-a":
        model = models.Sequential([
            layers.Input((28, 28, 1)),
            layers.Conv2D(32, 5, padding="same", activation="relu"), layers.MaxPooling2D(2),
            layers.Conv2D(64, 5, padding="same", activation="relu"), layers.MaxPooling2D(2),
            layers.Flatten(), layers.Dense(1024, activation="relu"), layers.Dropout(0.5),
            layers.Dense(10, activation="softmax")])
        model.compile(optimizer=optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    elif kind == "cnn-b":
        model = models.Sequential([layers.Input((28, 28, 1))])
        for i, filters in enumerate((32, 64, 128, 256)):
            model.add(layers.Conv2D(filters, (3, 3)))
            model.add(layers.BatchNormalization(momentum=0.95))
            model.add(layers.Activation("relu"))
            if i > 0:
                model.add(layers.MaxPooling2D(pool_size=(2, 2)))
        model.add(layers.Dropout(0.25))
        model.add(layers.GlobalAveragePooling2D())
        model.add(layers.Dense(128, activation="relu"))
        model.add(layers.Dropout(0.5))
        model.add(layers.Dense(10, activation="softmax"))
        model.compile(optimizer=optimizers.Adadelta(), loss="sparse_categorical_crossentropy")
    elif kind == "unet":
        model = chainrule_unet()
        model.compile(optimizer=optimizers.Adam(1e-3), loss="mse")
    else:
        raise ValueError(f"unknown model {kind!r}; choose from {ALL_MODELS}")
    return model


UNET_WIDTHS = (16, 32, 64, 128)
UNET_BOTTLENECK = 256


def chainrule_unet():
    from chainrule import layers, models

    def twice(x, filters):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        return layers.Conv2D(filters, 3, padding="same", activation="relu")(x)

    inputs = layers.Input((64, 64, 1))
    x, skips = inputs, []
    for filters in UNET_WIDTHS:
        x = twice(x, filters)
        skips.append(x)
        x = layers.MaxPooling2D(2)(x)
    x = twice(x, UNET_BOTTLENECK)
    for filters, skip in zip(reversed(UNET_WIDTHS), reversed(skips)):
        x = layers.Concatenate()([layers.UpSampling2D(2)(x), skip])
        x = twice(x, filters)
    outputs = layers.Conv2D(1, 1, activation="sigmoid")(x)
    return models.Model(inputs, outputs)


# ------------------------------------------------------------------ the same models in PyTorch
def torch_model(kind):
    """(net, optimizer, loss_fn) for `kind`; the nets end in logits, the losses fuse the softmax/sigmoid."""
    import torch
    from torch import nn
    kind = kind.removeprefix("predict-")
    if kind == "mlp":
        net = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                            nn.Linear(128, 10))
        return net, torch.optim.Adam(net.parameters(), lr=1e-3), nn.functional.cross_entropy
    if kind == "cnn-a":
        net = nn.Sequential(nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                            nn.Linear(7 * 7 * 64, 1024), nn.ReLU(), nn.Dropout(0.5), nn.Linear(1024, 10))
        return net, torch.optim.Adam(net.parameters(), lr=1e-3), nn.functional.cross_entropy
    if kind == "cnn-b":
        blocks, c_in = [], 1
        for i, filters in enumerate((32, 64, 128, 256)):
            # Keras BatchNormalization(momentum=0.95, epsilon=1e-3) is torch's momentum=0.05, eps=1e-3
            blocks += [nn.Conv2d(c_in, filters, 3), nn.BatchNorm2d(filters, eps=1e-3, momentum=0.05), nn.ReLU()]
            if i > 0:
                blocks.append(nn.MaxPool2d(2))
            c_in = filters
        net = nn.Sequential(*blocks, nn.Dropout(0.25), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                            nn.Linear(256, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10))
        opt = torch.optim.Adadelta(net.parameters(), lr=0.001, rho=0.95, eps=1e-7)
        return net, opt, nn.functional.cross_entropy
    if kind == "unet":
        net = torch_unet()
        return net, torch.optim.Adam(net.parameters(), lr=1e-3), _sigmoid_mse
    raise ValueError(f"unknown model {kind!r}; choose from {ALL_MODELS}")


def _sigmoid_mse(logits, target):
    import torch
    return torch.nn.functional.mse_loss(torch.sigmoid(logits), target)


def torch_unet():
    """The U-Net as an nn.Module (the class lives in here so that torch is imported only when needed)."""
    import torch
    from torch import nn

    def twice(c_in, c_out):
        return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(),
                             nn.Conv2d(c_out, c_out, 3, padding=1), nn.ReLU())

    class UNet(nn.Module):
        """The U-Net above in NCHW: nearest upsampling and torch.cat with the skip on the channel axis."""

        def __init__(self):
            super().__init__()
            widths, c_in = UNET_WIDTHS, 1
            self.down = nn.ModuleList()
            for w in widths:
                self.down.append(twice(c_in, w))
                c_in = w
            self.pool = nn.MaxPool2d(2)
            self.bottleneck = twice(c_in, UNET_BOTTLENECK)
            self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
            self.up, c_in = nn.ModuleList(), UNET_BOTTLENECK
            for w in reversed(widths):
                self.up.append(twice(c_in + w, w))
                c_in = w
            self.head = nn.Conv2d(c_in, 1, 1)

        def forward(self, x):
            skips = []
            for block in self.down:
                x = block(x)
                skips.append(x)
                x = self.pool(x)
            x = self.bottleneck(x)
            for block, skip in zip(self.up, reversed(skips)):
                x = block(torch.cat([self.upsample(x), skip], dim=1))
            return self.head(x)

    return UNet()


def torch_data(batches):
    """The same batches as torch tensors, images transposed once to NCHW, labels int64."""
    import torch

    def nchw(a):
        return torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))

    return [(nchw(x), None if y is None else (nchw(y) if y.ndim == 4 else torch.from_numpy(y)))
            for x, y in batches]


# ------------------------------------------------------------------ one step of each framework
def chainrule_runner(kind, batches):
    """(step function, samples per step) for chainrule's high-level path."""
    model = chainrule_model(kind)
    if kind.startswith("predict-"):
        x = batches[0][0]
        return (lambda: model.predict(x, batch_size=1000, verbose=0)), len(x)
    counter = iter(range(1 << 62))

    def step():
        x, y = batches[next(counter) % len(batches)]
        return model.train_on_batch(x, y)

    return step, len(batches[0][0])


def torch_runner(kind, tbatches):
    """(step function, samples per step) for the usual PyTorch loop, on batches from torch_data."""
    import torch
    net, opt, loss_fn = torch_model(kind)
    if kind.startswith("predict-"):
        net.eval()
        x = tbatches[0][0]

        def predict():
            with torch.no_grad():
                return torch.cat([torch.softmax(net(x[i:i + 1000]), dim=1) for i in range(0, len(x), 1000)])

        return predict, len(x)
    net.train()
    counter = iter(range(1 << 62))

    def step():
        x, y = tbatches[next(counter) % len(tbatches)]
        opt.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    return step, len(tbatches[0][0])


# ------------------------------------------------------------------ FLOPs, from the layer shapes
def gemm_shapes(kind):
    """(positions per sample, K, N) of every conv/dense layer in order: the layer is a GEMM of
    (batch * positions, K) by (K, N), K = kh * kw * C_in (or the dense fan-in), N = filters or units."""
    def conv(hw, k, c_in, c_out):
        return (hw * hw, k * k * c_in, c_out)

    def dense(n_in, n_out):
        return (1, n_in, n_out)

    kind = kind.removeprefix("predict-")
    if kind == "mlp":
        return [dense(784, 256), dense(256, 128), dense(128, 10)]
    if kind == "cnn-a":  # 28 same -> pool 14 same -> pool 7
        return [conv(28, 5, 1, 32), conv(14, 5, 32, 64), dense(7 * 7 * 64, 1024), dense(1024, 10)]
    if kind == "cnn-b":  # 28 -> 26 -> 24 -> pool 12 -> 10 -> pool 5 -> 3 -> pool 1 -> GAP
        return [conv(26, 3, 1, 32), conv(24, 3, 32, 64), conv(10, 3, 64, 128), conv(3, 3, 128, 256),
                dense(256, 128), dense(128, 10)]
    if kind == "unet":
        shapes, side, c_in = [], 64, 1
        for w in UNET_WIDTHS:
            shapes += [conv(side, 3, c_in, w), conv(side, 3, w, w)]
            side, c_in = side // 2, w
        shapes += [conv(side, 3, c_in, UNET_BOTTLENECK), conv(side, 3, UNET_BOTTLENECK, UNET_BOTTLENECK)]
        c_in = UNET_BOTTLENECK
        for w in reversed(UNET_WIDTHS):
            side *= 2
            shapes += [conv(side, 3, c_in + w, w), conv(side, 3, w, w)]
            c_in = w
        return shapes + [conv(side, 1, c_in, 1)]
    raise ValueError(f"unknown model {kind!r}; choose from {ALL_MODELS}")


def flops_per_sample(kind):
    """FLOPs of one sample through one step.

    forward = sum 2 * P * K * N over the layers (P positions, K fan-in, N outputs);
    training = 3 * forward - 2 * P0 * K0 * N0: the backward repeats each layer's MACs once for dW
    and once for dx, except dx of the first layer, whose input is the data.
    """
    macs = [p * k * n for p, k, n in gemm_shapes(kind)]
    if kind.startswith("predict-"):
        return 2 * sum(macs)
    return 3 * 2 * sum(macs) - 2 * macs[0]


def train_step_flops(kind, batch_size=None):
    """FLOPs of one training step (or one predict batch) at the benchmark's batch size."""
    return flops_per_sample(kind) * (batch_size or BATCH[kind])


# ------------------------------------------------------------------ timing
def measure(runners, chunks, target_s, warmup):
    """Median samples/s of each runner over `chunks` interleaved chunks; also each one's k."""
    ks = {}
    for name, (step, _) in runners.items():
        for _ in range(warmup):
            step()
        t0 = time.perf_counter()
        step()
        ks[name] = max(1, round(target_s / (time.perf_counter() - t0)))
    rates = {name: [] for name in runners}
    names = list(runners)
    for c in range(chunks):
        for name in (names if c % 2 == 0 else names[::-1]):  # alternate who goes first
            step, samples = runners[name]
            t0 = time.perf_counter()
            for _ in range(ks[name]):
                step()
            rates[name].append(ks[name] * samples / (time.perf_counter() - t0))
    return {name: statistics.median(r) for name, r in rates.items()}, ks


def gemm_rates(repeats, n=2048):
    """Median float32 GFLOP/s of an n x n @ n x n matmul, interleaved: NumPy's BLAS as chainrule runs
    it (split over chainrule's threads, one BLAS thread each) and (if present) torch."""
    from chainrule import backend
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)
    runs = {"numpy": (lambda: backend.gemm(a, b)) if hasattr(backend, "gemm") else (lambda: a @ b)}
    torch = _try_torch()
    if torch is not None:
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        runs["torch"] = lambda: ta @ tb
    times = {name: [] for name in runs}
    for fn in runs.values():
        fn()
    for _ in range(repeats):
        for name, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: 2 * n ** 3 / statistics.median(t) / 1e9 for name, t in times.items()}


def _try_torch():
    try:
        import torch
        return torch
    except ImportError:
        return None


def set_threads(n, with_torch=True):
    """torch.set_num_threads(n) and chainrule's kernels on n threads (chainrule holds NumPy's BLAS at
    one thread and splits the big products itself), for the rest of the process."""
    from chainrule import backend
    if hasattr(backend, "set_num_threads"):
        backend.set_num_threads(n)
    else:  # a chainrule from before its own threads (for before/after runs): BLAS's threads it is
        try:
            from threadpoolctl import threadpool_limits
            threadpool_limits(n, "blas")
        except ImportError:
            print(f"threadpoolctl not installed: NumPy's BLAS threads are not limited to {n}", file=sys.stderr)
    torch = _try_torch() if with_torch else None
    if torch is not None:
        torch.set_num_threads(n)


def blas_kernel():
    """'openblas 0.3.31 Haswell, 2 threads' for the BLAS NumPy loaded, through threadpoolctl."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (threadpoolctl not installed)"
    for info in threadpool_info():
        if info.get("user_api") == "blas" and "torch" not in info.get("filepath", ""):
            return (f"{info.get('internal_api')} {info.get('version')} {info.get('architecture', '?')}, "
                    f"{info.get('num_threads')} threads")
    return "unknown"


def cpu_name():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or platform.machine()


# ------------------------------------------------------------------ memory, one child process per (framework, model)
def _status_kb(field):
    """VmRSS / VmHWM of this process in KB from /proc/self/status (Linux), else None."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak():
    """Set VmHWM back to the current RSS (Linux >= 4.0); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def child(spec, steps):
    """Run in a fresh process: data, baseline RSS, model, a few steps; print peak RSS above the baseline.

    The peak is VmHWM, the high-water mark of this process's own memory map, reset to the current
    RSS once the data exists. Not ru_maxrss: Linux carries the parent's peak over into it when
    subprocess starts the child by vfork + exec, so it would report the parent's peak.
    """
    framework, kind = spec.split(":")
    if framework == "chainrule":
        # numba and its compiler (chainrule[fast]) load on first use: a library's footprint, counted
        # with the imports, not as the model's memory
        from chainrule import accelerate
        if accelerate.wants_numba():
            from chainrule import spinpool
            spinpool.spins_per_us()
    import_kb = _status_kb("VmRSS")
    batches = make_data(kind, n_batches=2)
    if framework == "torch":
        batches = torch_data(batches)  # the NHWC arrays are freed: only the NCHW copy stays, as in timing
    base_kb = _status_kb("VmRSS")
    if base_kb is None or not _reset_peak():  # no /proc: fall back to the peak since the process started
        base_kb = 0
    step, _ = (chainrule_runner if framework == "chainrule" else torch_runner)(kind, batches)
    for _ in range(steps):
        step()
    peak_kb = _status_kb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"import_mb": (import_kb or 0) / 1024, "base_mb": base_kb / 1024, "peak_mb": peak_kb / 1024,
                      "model_mb": (peak_kb - base_kb) / 1024}))


def memory(kind, framework, threads, steps):
    """Child's report (dict) or None if it failed."""
    cmd = [sys.executable, os.path.abspath(__file__), "--child", f"{framework}:{kind}", "--threads", str(threads),
           "--child-steps", str(steps)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"memory child {framework}:{kind} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ the report
def header(threads, gemm):
    """The report's first lines: date, machine, versions, BLAS kernel, GEMM rates, the command."""
    import chainrule
    torch = _try_torch()
    lines = [
        f"# chainrule vs PyTorch CPU: whole training steps ({datetime.date.today().isoformat()})",
        "",
        f"- CPU: {cpu_name()}, {os.cpu_count()} logical cores; threads: {threads}",
        f"- Python {platform.python_version()}, NumPy {np.__version__}, chainrule {chainrule.__version__}, "
        f"torch {torch.__version__ if torch else 'not installed'}",
        "- chainrule kernels: " + (f"compiled where they exist (numba {__import__('numba').__version__})"
                                    if chainrule.accelerate.wants_numba() else "NumPy only (numba off or not installed)"),
        f"- NumPy BLAS: {blas_kernel()}"
        + "".join(f"; {k}={os.environ[k]}" for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ),
        "- float32 GEMM 2048x2048 @ 2048x2048: " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in gemm.items()),
        f"- command: `python {shlex.join([os.path.relpath(sys.argv[0])] + sys.argv[1:])}`",
        "",
    ]
    return lines


def table(rows):
    """The markdown table, one row per model; '-' where a number is missing (no torch, or --no-memory)."""
    cols = ["model", "chainrule samples/s", "torch samples/s", "ratio", "cr MB", "torch MB", "mem ratio",
            "cr GFLOP/s", "torch GFLOP/s"]
    out = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(cols))) + "|"]

    def f(v, fmt):
        return "-" if v is None else format(v, fmt)

    for r in rows:
        out.append("| " + " | ".join([
            r["model"], f(r["cr"], ".0f"), f(r["torch"], ".0f"),
            f(r["cr"] / r["torch"] if r["cr"] and r["torch"] else None, ".2f"),
            f(r["cr_mb"], ".1f"), f(r["torch_mb"], ".1f"),
            f(r["cr_mb"] / r["torch_mb"] if r["cr_mb"] and r["torch_mb"] else None, ".2f"),
            f(r["cr"] * r["flops"] / 1e9 if r["cr"] else None, ".1f"),
            f(r["torch"] * r["flops"] / 1e9 if r["torch"] else None, ".1f")]) + " |")
    return out


def profile(kind, steps=10):
    """Where one training step's time goes: chainrule's forward and backward time per op (every
    recorded node timed by wrapping chainrule's record()), then PyTorch's profiler table."""
    import collections
    import importlib
    import pkgutil

    from chainrule import autograd
    import chainrule.ops as ops_package
    forward, backward = collections.defaultdict(float), collections.defaultdict(float)
    last = [time.perf_counter()]
    record = autograd.record

    def timed_record(data, parents, fn, op):
        now = time.perf_counter()
        forward[op] += now - last[0]  # the op's forward ran since the previous record

        def timed_backward(g):
            t0 = time.perf_counter()
            result = fn(g)
            backward[op] += time.perf_counter() - t0
            return result
        out = record(data, parents, timed_backward, op)
        last[0] = time.perf_counter()
        return out

    modules = [importlib.import_module(f"chainrule.ops.{m.name}") for m in pkgutil.iter_modules(ops_package.__path__)]
    patched = [m for m in modules if getattr(m, "record", None) is record]
    for m in patched:
        m.record = timed_record
    batches = make_data(kind, 4)
    step, samples = chainrule_runner(kind, batches)
    for _ in range(3):
        step()
    forward.clear()
    backward.clear()
    t0 = time.perf_counter()
    for _ in range(steps):
        last[0] = time.perf_counter()  # the first op's forward counts from the step's start
        step()
    total = (time.perf_counter() - t0) / steps * 1e3
    for m in patched:
        m.record = record
    print(f"chainrule {kind}: {total:.1f} ms a step ({samples / total * 1e3:.0f} samples/s); per op, ms a step:")
    for op in sorted(set(forward) | set(backward), key=lambda o: -(forward[o] + backward[o])):
        print(f"  {op:34s} forward {forward[op] / steps * 1e3:7.2f}  backward {backward[op] / steps * 1e3:7.2f}")
    timed = (sum(forward.values()) + sum(backward.values())) / steps * 1e3
    print(f"  {'(the rest: optimizer, loop, timing)':34s} {total - timed:7.2f}")
    torch = _try_torch()
    if torch is None:
        return
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile
    tstep, _ = torch_runner(kind, torch_data(batches))
    for _ in range(3):
        tstep()
    t0 = time.perf_counter()
    for _ in range(steps):
        tstep()
    print(f"\ntorch {kind}: {(time.perf_counter() - t0) / steps * 1e3:.1f} ms a step unprofiled; profiled "
          f"over {steps} steps:")
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            tstep()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for torch and NumPy's BLAS")
    parser.add_argument("--only", default=",".join(ALL_MODELS), help=f"comma-separated subset of {ALL_MODELS}")
    parser.add_argument("--quick", action="store_true", help="3 short chunks per model: a smoke run")
    parser.add_argument("--chunks", type=int, default=None, help="timed chunks per framework (default 7, quick 3)")
    parser.add_argument("--no-memory", action="store_true", help="skip the child processes that measure memory")
    parser.add_argument("--markdown", metavar="PATH", help="also write the report to PATH")
    parser.add_argument("--profile", metavar="MODEL", help="instead: where one step's time goes, per op, in both")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-steps", type=int, default=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    # a chainrule child must not import torch, whose import would count in its memory and threads
    with_torch = not (args.child or "").startswith("chainrule:")
    set_threads(args.threads, with_torch)
    if args.child:
        return child(args.child, args.child_steps)
    if args.profile:
        return profile(args.profile)

    kinds = [k.strip() for k in args.only.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in ALL_MODELS]
    if unknown:
        parser.error(f"--only: unknown model(s) {unknown}; choose from {','.join(ALL_MODELS)}")
    chunks = args.chunks or (3 if args.quick else 7)
    target_s, warmup = (0.1, 1) if args.quick else (0.7, 3)
    torch = _try_torch()
    lines = header(args.threads, gemm_rates(3 if args.quick else 7))
    print("\n".join(lines), flush=True)

    rows, notes = [], []
    for kind in kinds:
        batches = make_data(kind)
        runners = {"cr": chainrule_runner(kind, batches)}
        if torch is not None:
            runners["torch"] = torch_runner(kind, torch_data(batches))
        rates, ks = measure(runners, chunks, target_s, warmup)
        row = {"model": kind, "cr": rates["cr"], "torch": rates.get("torch"), "flops": flops_per_sample(kind),
               "cr_mb": None, "torch_mb": None}
        if not args.no_memory:
            steps = 1 if args.quick else 3
            for fw, key in (("chainrule", "cr_mb"), ("torch", "torch_mb")):
                if fw == "torch" and torch is None:
                    continue
                report = memory(kind, fw, args.threads, steps)
                if report:
                    row[key] = report["model_mb"]
                    notes.append((kind, fw, report))
        rows.append(row)
        print(f"  {kind}: done (k = {ks})", file=sys.stderr, flush=True)

    body = table(rows)
    imports, totals = {}, {}
    for kind, fw, report in notes:
        imports.setdefault(fw, report["import_mb"])
        totals.setdefault(kind, {})[fw] = report["peak_mb"]
    body += ["", f"{chunks} timed chunks of k steps per framework (k: about {target_s} s a chunk), interleaved; "
             "median shown. ratio = chainrule / torch samples/s (> 1: chainrule faster). Batch sizes: "
             + ", ".join(f"{k} {BATCH[k]}" for k in kinds) + f"; predict over {PREDICT_IMAGES} images.",
             "MB = peak RSS (VmHWM) of a separate process above its RSS after imports and data; "
             "mem ratio = chainrule / torch. Import footprints (chainrule's with numba loaded, where the fast "
             "extra is installed): "
             + (", ".join(f"{fw} {mb:.0f} MB" for fw, mb in imports.items()) or "not measured") + "; whole "
             "processes' peaks (chainrule / torch): "
             + (", ".join(f"{k} {t.get('chainrule', 0):.0f} / {t.get('torch', 0):.0f} MB" for k, t in totals.items())
                or "not measured") + ".",
             "GFLOP/s = counted conv/dense FLOPs per sample (forward 2*MACs; backward dW and dx GEMMs, no dx for "
             "the first layer) * samples/s; effective rates, as a Winograd conv does fewer real FLOPs."]
    print("\n".join(body))
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write("\n".join(lines + body) + "\n")


if __name__ == "__main__":
    main()
