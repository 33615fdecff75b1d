"""Forward + backward time of every conv layer of three small CNNs, chainrule against PyTorch CPU.

    python benchmarks/conv_kernels.py [--repeats 15] [--passes 5] [--only CNN-A,U-Net] [--layers 16->16,1x1]
                                      [--threads 1 --clock cpu]

For each layer: one forward and a backward that asks for every gradient (input, kernel, bias),
timed as the median of `repeats` runs after a warm-up, chainrule and PyTorch interleaved run by
run so that load from other processes hits both alike (with more than one thread, in blocks, each
warmed up until the other library's threads are idle: see `interleaved_times`). PyTorch runs in
NCHW with its own weight layout and torch.set_num_threads(cores), as users would run it;
chainrule in NHWC with Keras's layouts. A pass times every layer once; `passes` sweeps (default 5) give each layer independent
measurements seconds apart, the library timed first alternating from pass to pass.
ratio = torch ms / chainrule ms of a pass's medians, the median over the passes, so > 1 means
chainrule is faster; "passes" gives the lowest and highest pass's ratio (a shared machine's slow
phase lasts seconds and hits one library's block in one pass: see RESULTS.md); best is the same
ratio of the fastest runs of all passes. The ms columns are the medians over the passes.

Memory, two measures:
  cr MB     peak of NumPy allocations during chainrule's forward + backward (tracemalloc), above
            the inputs; it includes the output and the gradients themselves, whose sizes add up
            to "y+g MB" (the least any library must allocate).
  RSS MB    peak resident set size above the start of the call (Linux VmHWM after resetting it
            through /proc/self/clear_refs), for chainrule and PyTorch alike; the allocators' caches
            blur it, so read it as a rough comparison.
Max-pool and batch-norm rows appear when chainrule.ops.pool / chainrule.ops.norm exist.

The first line names the BLAS kernel NumPy's OpenBLAS chose (through threadpoolctl, when installed):
where OPENBLAS_CORETYPE forces an older one (Haswell's AVX2 on an AVX-512 machine) the GEMMs run
at about half speed; unset it for real numbers. --threads sets both libraries' threads (chainrule
splits its chunk loops over its own threads and holds NumPy's BLAS at one); --threads 1 --clock
cpu gives steadier numbers on a machine that other jobs share. chainrule runs its compiled kernels
where numba is installed (chainrule.accelerate; CHAINRULE_NUMBA=never for NumPy's alone).
"""
import argparse
import os
import statistics
import sys
import time
import tracemalloc

import numpy as np

import chainrule as cr
from chainrule.ops.conv import conv2d, conv_transpose2d

try:
    from chainrule.ops.pool import max_pool2d
except ImportError:
    max_pool2d = None
try:
    from chainrule.ops.norm import batch_norm
except ImportError:
    batch_norm = None

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    torch = None


# ------------------------------------------------------------------ the models' layers
# (model, layer name, kind, input shape NHWC, kernel size, out channels, stride, padding)

def layers():
    rows = []
    # CNN-A, the TensorFlow MNIST tutorial: batch 50
    rows += [("CNN-A", "conv1 5x5 1->32", "conv", (50, 28, 28, 1), 5, 32, 1, "same"),
             ("CNN-A", "pool1", "pool", (50, 28, 28, 32), 2, None, 2, "valid"),
             ("CNN-A", "conv2 5x5 32->64", "conv", (50, 14, 14, 32), 5, 64, 1, "same"),
             ("CNN-A", "pool2", "pool", (50, 14, 14, 64), 2, None, 2, "valid")]
    # CNN-B, the Keras lecture model: batch 128, 3x3 valid convs, 28->26->24->12->10->5->3->1
    rows += [("CNN-B", "conv1 3x3 1->32", "conv", (128, 28, 28, 1), 3, 32, 1, "valid"),
             ("CNN-B", "conv2 3x3 32->64", "conv", (128, 26, 26, 32), 3, 64, 1, "valid"),
             ("CNN-B", "bn 64", "bn", (128, 24, 24, 64), None, None, None, None),
             ("CNN-B", "pool1", "pool", (128, 24, 24, 64), 2, None, 2, "valid"),
             ("CNN-B", "conv3 3x3 64->128", "conv", (128, 12, 12, 64), 3, 128, 1, "valid"),
             ("CNN-B", "pool2", "pool", (128, 10, 10, 128), 2, None, 2, "valid"),
             ("CNN-B", "conv4 3x3 128->256", "conv", (128, 5, 5, 128), 3, 256, 1, "valid"),
             ("CNN-B", "pool3", "pool", (128, 3, 3, 256), 2, None, 2, "valid")]
    # U-Net on 64x64x1, batch 8: two 3x3 'same' convs per level, 2x2 max-pool down,
    # 2x2 stride-2 transposed conv up, skip connections concatenated, 1x1 conv out
    n, rows_u = 8, []
    size, c_in = 64, 1
    for c in (16, 32, 64, 128, 256):
        rows_u.append(("U-Net", f"down{size} 3x3 {c_in}->{c}", "conv", (n, size, size, c_in), 3, c, 1, "same"))
        rows_u.append(("U-Net", f"down{size} 3x3 {c}->{c}", "conv", (n, size, size, c), 3, c, 1, "same"))
        if size == 64:
            rows_u.append(("U-Net", f"bn{size} {c}", "bn", (n, size, size, c), None, None, None, None))
        if c < 256:
            rows_u.append(("U-Net", f"pool{size}", "pool", (n, size, size, c), 2, None, 2, "valid"))
            size, c_in = size // 2, c
    c_in = 256
    for c in (128, 64, 32, 16):
        rows_u.append(("U-Net", f"up{size}->{size * 2} 2x2/2 {c_in}->{c}", "tconv", (n, size, size, c_in), 2, c, 2,
                       "valid"))
        size *= 2
        rows_u.append(("U-Net", f"up{size} 3x3 {2 * c}->{c}", "conv", (n, size, size, 2 * c), 3, c, 1, "same"))
        rows_u.append(("U-Net", f"up{size} 3x3 {c}->{c}", "conv", (n, size, size, c), 3, c, 1, "same"))
        c_in = c
    rows_u.append(("U-Net", "out 1x1 16->1", "conv", (n, 64, 64, 16), 1, 1, 1, "valid"))
    return rows + rows_u


# ------------------------------------------------------------------ one layer, both libraries

def make_case(kind, shape, k, c_out, stride, padding, rng):
    """(chainrule step, torch step or None, output bytes): each step runs forward + backward once."""
    x = rng.standard_normal(shape).astype(np.float32)
    n, h, w, c = shape
    if kind in ("conv", "tconv"):
        if kind == "conv":
            wk = (rng.standard_normal((k, k, c, c_out)) * (2 / (k * k * c)) ** 0.5).astype(np.float32)
            op = lambda X, W, B: conv2d(X, W, B, stride=stride, padding=padding)  # noqa: E731
        else:
            wk = (rng.standard_normal((k, k, c_out, c)) * (2 / (k * k * c)) ** 0.5).astype(np.float32)
            op = lambda X, W, B: conv_transpose2d(X, W, B, stride=stride, padding=padding)  # noqa: E731
        bias = np.zeros(c_out, np.float32)
        X, W, B = (cr.Tensor(a, requires_grad=True) for a in (x, wk, bias))
        y0 = op(X, W, B)
        g = rng.standard_normal(y0.shape).astype(np.float32)
        leaves = (X, W, B)

        def ours():
            for t in leaves:
                t.grad = None
            op(X, W, B).backward(g)

        theirs = None
        if torch is not None:
            tx = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).requires_grad_()
            tb = torch.from_numpy(bias).requires_grad_()
            tg = torch.from_numpy(g.transpose(0, 3, 1, 2).copy())
            if kind == "conv":
                tw = torch.from_numpy(wk.transpose(3, 2, 0, 1).copy()).requires_grad_()
                pad = k // 2 if padding == "same" else 0
                top = lambda: F.conv2d(tx, tw, tb, stride=stride, padding=pad)  # noqa: E731
            else:
                tw = torch.from_numpy(wk.transpose(3, 2, 0, 1).copy()).requires_grad_()  # (C_in, C_out, kh, kw)
                top = lambda: F.conv_transpose2d(tx, tw, tb, stride=stride)  # noqa: E731
            assert tuple(top().shape) == (g.shape[0], g.shape[3], g.shape[1], g.shape[2])

            def torch_step():
                for t in (tx, tw, tb):
                    t.grad = None
                top().backward(tg)
            theirs = torch_step
        return ours, theirs, g.nbytes + x.nbytes + wk.nbytes
    if kind == "pool":
        X = cr.Tensor(x, requires_grad=True)
        y0 = max_pool2d(X, k, stride, padding)
        g = rng.standard_normal(y0.shape).astype(np.float32)

        def ours():
            X.grad = None
            max_pool2d(X, k, stride, padding).backward(g)
        theirs = None
        if torch is not None:
            tx = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).requires_grad_()
            tg = torch.from_numpy(g.transpose(0, 3, 1, 2).copy())

            def theirs():
                tx.grad = None
                F.max_pool2d(tx, k, stride).backward(tg)
        return ours, theirs, g.nbytes + x.nbytes
    # batch norm, training mode, Keras's momentum 0.99 (PyTorch's 0.01)
    X = cr.Tensor(x, requires_grad=True)
    gamma = cr.Tensor(np.ones(c, np.float32), requires_grad=True)
    beta = cr.Tensor(np.zeros(c, np.float32), requires_grad=True)
    mean, var = np.zeros(c, np.float32), np.ones(c, np.float32)
    g = rng.standard_normal(shape).astype(np.float32)

    def ours():
        for t in (X, gamma, beta):
            t.grad = None
        batch_norm(X, gamma, beta, mean, var, training=True).backward(g)
    theirs = None
    if torch is not None:
        tx = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).requires_grad_()
        tgam, tbet = torch.ones(c, requires_grad=True), torch.zeros(c, requires_grad=True)
        tmean, tvar = torch.zeros(c), torch.ones(c)
        tg = torch.from_numpy(g.transpose(0, 3, 1, 2).copy())

        def theirs():
            for t in (tx, tgam, tbet):
                t.grad = None
            F.batch_norm(tx, tmean, tvar, tgam, tbet, training=True, momentum=0.01, eps=1e-3).backward(tg)
    return ours, theirs, 2 * g.nbytes


# ------------------------------------------------------------------ measuring

def interleaved_times(fa, fb, repeats, warmup=2, clock=time.perf_counter, blocks=False, rounds=1, warm_s=0.0):
    """Seconds of each run of fa and of fb, run alternately so that background load hits both alike.

    blocks=True (used with more than one thread) alternates blocks instead of runs: `rounds` times,
    fa's warm-up and a share of the repeats, then fb's. Run by run alternation measured each library
    in the other's wake, its caches full of the other's data and PyTorch's OpenMP workers still
    spinning on the cores (2 cores: chainrule's CNN-A conv2 took 9.8 ms right after a PyTorch call,
    6.1 ms in a block of its own; PyTorch's own runs move alike). More rounds spread a change in
    the machine's load over both libraries, but put chainrule's blocks in PyTorch's wake more often:
    on the U-Net's convs, 2 threads, back to back, 1 round gave geometric means 1.49 and 1.43, 3
    rounds 1.38 and 1.41 (`--rounds`; default 1).

    With blocks, each block's warm-up also lasts at least `warm_s` seconds, long enough for the other
    library's idle threads to stop spinning: PyTorch's OpenMP worker spins on its core for several
    ms after a parallel region, and in chainrule's next block took that core from chainrule's own
    worker (U-Net layers, two threads, per block of 17 runs: PyTorch's threads ran 8.4 ms, median,
    while chainrule's worker waited 6.4 ms for a core, `/proc/self/task/*/schedstat`). A pause
    (sleep) before each block instead also let PyTorch's threads go idle, but then both libraries'
    first runs were slow, chainrule's more (the U-Net's 64x64 layers 1.2-1.5x their time): an idle
    vCPU comes back slowly on this VM. chainrule's worker spins 0.2 ms, then sleeps.
    """
    if blocks:
        ta, tb = [], []
        for r in range(rounds):
            share = repeats // rounds + (r < repeats % rounds)
            ta += _block_times(fa, share, warmup, clock, warm_s)
            if fb is not None:
                tb += _block_times(fb, share, warmup, clock, warm_s)
        return ta, tb
    for _ in range(warmup):
        fa()
        if fb is not None:
            fb()
    ta, tb = [], []
    for _ in range(repeats):
        t0 = clock()
        fa()
        ta.append(clock() - t0)
        if fb is not None:
            t0 = clock()
            fb()
            tb.append(clock() - t0)
    return ta, tb


def timed_passes(cases, passes, time_case):
    """[[(ta, tb) of each pass] for each case]: `passes` sweeps over the cases, each case timed by
    time_case(ours, theirs) in the first pass and by time_case(theirs, ours) (the pair swapped back
    in the result) in the second, and so on alternating, so that neither library always runs in
    the other's wake."""
    timed = [[] for _ in cases]
    for p in range(passes):
        for i, (ours, theirs) in enumerate(cases):
            if sys.stderr.isatty():
                print(f"  pass {p + 1}/{passes}: timing {i + 1}/{len(cases)}...", end="\r", file=sys.stderr, flush=True)
            if p % 2 and theirs is not None:
                tb, ta = time_case(theirs, ours)
            else:
                ta, tb = time_case(ours, theirs)
            timed[i].append((ta, tb))
    return timed


def pass_ratios(timed):
    """torch ms / chainrule ms of each pass's medians (nan without PyTorch's times)."""
    return [statistics.median(tb) / statistics.median(ta) if tb else float("nan") for ta, tb in timed]


def _block_times(fn, repeats, warmup, clock, warm_s=0.0):
    start = clock()
    for _ in range(warmup):
        fn()
    while clock() - start < warm_s:
        fn()
    times = []
    for _ in range(repeats):
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return times


def tracemalloc_peak(fn):
    """Peak bytes NumPy allocated during fn() above what was allocated before it."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    fn()
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return peak


def _status_kb(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1])
    return None


def _glibc_returns_large_blocks():
    """Make glibc serve every block over 64 KiB by mmap and unmap it on free (its default raises that
    threshold as blocks are freed, which keeps freed memory resident and hides it from VmHWM)."""
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 64 * 1024)  # M_MMAP_THRESHOLD; setting it also turns off the dynamic adjustment
        return libc
    except (OSError, AttributeError):
        return None


def rss_peak(fn, libc):
    """Peak resident memory above the start of fn() (Linux only; None elsewhere)."""
    try:
        if libc is not None:
            libc.malloc_trim(0)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM, the high-water mark of the resident set
        base = _status_kb("VmRSS")
        fn()
        return (_status_kb("VmHWM") - base) * 1024
    except OSError:
        return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--passes", type=int, default=5,
                        help="sweeps over all layers; each ratio is the median of the passes' ratios")
    parser.add_argument("--only", default="", help="comma-separated models, e.g. CNN-A,U-Net")
    parser.add_argument("--layers", default="", help="comma-separated parts of layer names, e.g. '16->16,1x1'")
    parser.add_argument("--convs-only", action="store_true", help="skip the pool and batch-norm rows")
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="threads for both libraries (default: all cores; BLAS set through threadpoolctl)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="with several threads: alternate the two libraries' blocks this many times")
    parser.add_argument("--warm-ms", type=float, default=25,
                        help="with several threads: each block's warm-up lasts at least this long (see interleaved_times)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="cpu: this process's CPU time, steadier on a busy machine (sums the threads)")
    args = parser.parse_args()
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    cores = args.threads
    cr.backend.set_num_threads(cores)  # chainrule holds NumPy's BLAS at one thread and splits work itself
    if torch is not None:
        torch.set_num_threads(cores)
    blas = ""
    try:
        from threadpoolctl import threadpool_info
        blas = ", ".join(f"{i['internal_api']} {i.get('architecture', '')} {i['num_threads']} threads"
                         for i in threadpool_info() if i["user_api"] == "blas")
    except ImportError:
        pass
    from chainrule import accelerate
    compiled = (f"numba {__import__('numba').__version__}" if accelerate.wants_numba()
                else f"NumPy only (numba {'off' if accelerate.numba_available() else 'not installed'})")
    print(f"numpy {np.__version__}{' (' + blas + ')' if blas else ''}; chainrule kernels: {compiled}; "
          f"torch {torch.__version__ + f', {torch.get_num_threads()} threads' if torch else 'not installed'}; "
          f"{os.cpu_count()} cores; {args.clock} clock, median of {args.repeats} runs, {args.passes} passes, "
          f"{f'warm-ups of {args.warm_ms:g} ms or more, ' if cores > 1 else ''}"
          f"forward + backward (all gradients)")
    only = {m.strip() for m in args.only.split(",") if m.strip()}
    rng = np.random.default_rng(0)
    cases = []
    for model, name, kind, shape, k, c_out, stride, padding in layers():
        if only and model not in only:
            continue
        if args.layers and not any(part.strip() in name for part in args.layers.split(",")):
            continue
        if (kind == "pool" and max_pool2d is None) or (kind == "bn" and batch_norm is None):
            continue
        if args.convs_only and kind in ("pool", "bn"):
            continue
        cases.append((model, name, kind, shape) + make_case(kind, shape, k, c_out, stride, padding, rng))

    # time everything under the allocator's normal settings
    timed = timed_passes([(ours, theirs) for _, _, _, _, ours, theirs, _ in cases], max(args.passes, 1),
                         lambda fa, fb: interleaved_times(fa, fb, args.repeats, clock=clock, blocks=cores > 1,
                                                          rounds=args.rounds, warm_s=args.warm_ms / 1e3))
    # then memory (the mmap setting it needs slows allocation, so it comes after all timings)
    libc = _glibc_returns_large_blocks()
    memory = [(tracemalloc_peak(ours), rss_peak(ours, libc), rss_peak(theirs, libc) if theirs else None)
              for _, _, _, _, ours, theirs, _ in cases]
    if sys.stderr.isatty():
        print(" " * 60, end="\r", file=sys.stderr)

    head = (f"{'model':6} {'layer':28} {'input NHWC':18} {'cr ms':>8} {'torch ms':>8} {'ratio':>6} {'passes':>11} "
            f"{'best':>6} {'cr MB':>7} {'y+g MB':>7} {'RSS cr':>7} {'RSS pt':>7}")
    print(head)
    print("-" * len(head))
    conv_ratios, target = [], []
    mb = lambda v: f"{v / 2**20:7.1f}" if v is not None else f"{'-':>7}"  # noqa: E731
    for (model, name, kind, shape, _, theirs, io_bytes), per_pass, (mem, rss_ours, rss_theirs) in \
            zip(cases, timed, memory):
        t_ours = statistics.median(statistics.median(ta) for ta, _ in per_pass)
        has_torch = bool(per_pass[0][1])
        t_theirs = statistics.median(statistics.median(tb) for _, tb in per_pass) if has_torch else float("nan")
        ratios = pass_ratios(per_pass)
        ratio = statistics.median(ratios)
        spread = f"{min(ratios):.2f}-{max(ratios):.2f}" if has_torch else "-"
        best = (min(t for _, tb in per_pass for t in tb) / min(t for ta, _ in per_pass for t in ta)
                if has_torch else float("nan"))
        if kind != "bn" and has_torch:  # the target: every conv and pool layer
            target.append((ratio, min(ratios)))
        if kind in ("conv", "tconv") and has_torch:
            conv_ratios.append(ratio)
        print(f"{model:6} {name:28} {str(shape):18} {t_ours * 1e3:8.2f} {t_theirs * 1e3:8.2f} {ratio:6.2f} "
              f"{spread:>11} {best:6.2f} {mb(mem)} {mb(io_bytes)} {mb(rss_ours)} {mb(rss_theirs)}")
    if target:
        print(f"conv and pool layers: {sum(r >= 1 for r, _ in target)}/{len(target)} at ratio >= 1 "
              f"({sum(low >= 1 for _, low in target)}/{len(target)} in every pass), min {min(r for r, _ in target):.2f}")
    if conv_ratios:
        geo = float(np.exp(np.mean(np.log(conv_ratios))))
        print(f"conv layers: {sum(r >= 1 for r in conv_ratios)}/{len(conv_ratios)} at ratio >= 1, "
              f"geometric mean ratio {geo:.2f}, min {min(conv_ratios):.2f}")


if __name__ == "__main__":
    main()
