"""Which array module runs the numbers, and the default float dtype.

The module is always taken from the data (`array_module(a)`), never hard-wired, so
the same op code runs on NumPy arrays and, once installed, on CuPy arrays.
"""
import functools
import math
import os
import sys
import threading

import numpy as np

_float_dtype = np.dtype(np.float32)

try:  # optional GPU backend; absent on most machines
    import cupy as _cupy
except ImportError:  # pragma: no cover - depends on the machine
    _cupy = None


def array_module(a):
    """The module (numpy or cupy) that owns array `a`."""
    if _cupy is not None and isinstance(a, _cupy.ndarray):
        return _cupy
    return np


def default_float():
    """The dtype new float tensors get unless told otherwise (float32)."""
    return _float_dtype


def set_default_float(dtype):
    """Set the dtype of new float tensors, e.g. to float64 for gradient checks."""
    global _float_dtype
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise ValueError(f"set_default_float: expected a float dtype, got {dtype}")
    _float_dtype = dtype


def to_numpy(a):
    """A NumPy view or copy of a backend array (a device-to-host copy for CuPy)."""
    if type(a) is np.ndarray:
        return a
    if _cupy is not None and isinstance(a, _cupy.ndarray):
        return _cupy.asnumpy(a)
    return np.asarray(a)


class Scratch:
    """Named scratch arrays that the kernels reuse from chunk to chunk and from call to call.

    A fresh temporary of a few hundred KB or more is mmapped by the allocator and page-faulted in on
    every use, which costs more than the arithmetic that fills it (measured: a 6x6 transform of a
    590 KB block took 85 us into a reused buffer, 460 us into a new one). One set per thread, array
    module and dtype; `release()` at the end of a call drops the arrays over `keep_bytes`, so only
    small, cache-sized buffers stay alive between calls. The arrays handed out are overwritten by
    the next request for the same name: never return one to the caller.
    """

    _local = threading.local()

    def __init__(self, xp, dtype, keep_bytes=8 << 20):
        self.xp, self.dtype, self.keep = xp, np.dtype(dtype), keep_bytes
        sets = self._local.__dict__.setdefault("sets", {})
        self.flat = sets.setdefault((xp.__name__, self.dtype.str), {})

    def __call__(self, name, shape):
        size = math.prod(shape)
        buf = self.flat.get(name)
        if buf is None or buf.size < size:
            buf = self.flat[name] = self.xp.empty(size, dtype=self.dtype)
        return buf[:size].reshape(shape)

    def zeros(self, name, shape):
        """A scratch array of zeros (a reused one is cleared: cheaper than faulting in a new one)."""
        buf = self(name, shape)
        buf.fill(0)
        return buf

    def release(self):
        for name in [n for n, b in self.flat.items() if b.nbytes > self.keep]:
            del self.flat[name]


def tune_malloc(enable=True):
    """Keep freed memory for reuse instead of handing it back to the OS (glibc on Linux only).

    Every op allocates its outputs and temporaries afresh. glibc serves blocks of a few hundred KB
    and up by mmap (or trims them off its heap when freed), so each new array is page-faulted in
    again, zero-filled by the kernel page by page: measured on a 256->256 3x3 conv of 4x4 images,
    forward + backward took 5.4 ms that way and 3.0 ms with freed blocks kept (the GEMMs are 2.2).
    enable=True raises glibc's mmap threshold to 32 MB and its trim threshold to 256 MB (PyTorch's
    CPU tuning guide gets the same effect by preloading jemalloc or tcmalloc); enable=False puts
    glibc's defaults back. Done at import unless CHAINRULE_MALLOC=system is set. Returns whether
    the setting took (False off glibc).
    """
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    if enable:
        ok = mallopt(m_mmap_threshold, 32 << 20) and mallopt(m_trim_threshold, 256 << 20)
    else:
        ok = mallopt(m_mmap_threshold, 128 << 10) and mallopt(m_trim_threshold, 128 << 10)
    return bool(ok)


if os.environ.get("CHAINRULE_MALLOC", "").lower() != "system" and sys.platform.startswith("linux"):
    tune_malloc(True)


# ------------------------------------------------------------------ threads
# chainrule splits its heavy loops (convolution chunks, big matrix products, ...) over its own threads
# and holds NumPy's BLAS at one thread throughout. Both threading at once measured slower than either:
# after a threaded call OpenBLAS's helper threads spin, waiting for the next one, on the very cores
# ours need (the lecture CNN on 2 cores: 1,290 samples/s with one thread of each, 1,640 with two of
# ours and one of BLAS's, 1,240 with two of each).
def _default_threads():
    for name in ("CHAINRULE_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return os.cpu_count() or 1


_threads = 1
_blas_saved = None   # BLAS's own thread count before chainrule held it at 1
_pool = None
_pool_lock = threading.Lock()
_blas_calls = None


def _blas_thread_calls():
    """(get, set) of the OpenBLAS thread count NumPy runs on, or None where it cannot be found
    (another BLAS, or no /proc/self/maps): read from the loaded library, as threadpoolctl does."""
    calls = _openblas_thread_calls()
    return calls[0] if calls else None


def _openblas_thread_calls():
    """(get, set) of every OpenBLAS loaded in this process, NumPy's first (SciPy brings its own,
    which numba's compiled kernels call)."""
    global _blas_calls
    if _blas_calls is None:
        _blas_calls = {}
    try:
        import ctypes
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line}
    except OSError:
        return []
    for path in sorted(paths - set(_blas_calls), key=lambda p: "numpy" not in p):
        _blas_calls[path] = None
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in ("scipy_", ""):
            for suffix in ("64_", ""):
                try:
                    get = getattr(lib, f"{prefix}openblas_get_num_threads{suffix}")
                    put = getattr(lib, f"{prefix}openblas_set_num_threads{suffix}")
                except AttributeError:
                    continue
                _blas_calls[path] = (get, put)
                break
            if _blas_calls[path]:
                break
    return [calls for calls in _blas_calls.values() if calls]


def num_threads():
    """How many threads chainrule's kernels use (see `set_num_threads`)."""
    return _threads


def set_num_threads(n):
    """Run chainrule's kernels on n threads (default: $CHAINRULE_NUM_THREADS, else $OMP_NUM_THREADS,
    else every core), as torch.set_num_threads does for PyTorch's ops. NumPy's BLAS (OpenBLAS, as
    NumPy's wheels ship it) is held at one thread from chainrule's import on, whatever n is:
    chainrule splits the big products over its own threads. Returns the previous setting."""
    global _threads
    n = int(n)
    if n < 1:
        raise ValueError(f"set_num_threads: need at least 1 thread, got {n}")
    previous, _threads = _threads, n
    return previous


def hold_blas_at_one_thread():
    """Set every loaded OpenBLAS to one thread (done at import for NumPy's; call again after loading
    another, as chainrule.accelerate does for SciPy's)."""
    global _blas_saved
    for get, put in _openblas_thread_calls():
        if _blas_saved is None:
            _blas_saved = get()
        put(1)


def share(items, elements, factor=1):
    """`split(items)` when the work is worth threads (`worth_threads(elements, factor)`), else all in one run."""
    items = list(items)
    return split(items) if worth_threads(elements, factor) else [items]


def split(items, parts=None):
    """`items` cut into at most `parts` (default num_threads()) contiguous runs of near-equal length."""
    items = list(items)
    return [items[s] for s in _slices(len(items), parts)] or [items]


_NO_POST = (np.zeros(1, np.int64), np.empty(0, np.int64))


def parallel_map(fn, items, handoff=False):
    """[fn(item) for item in items], the items shared out over `num_threads()` threads (the calling
    thread takes the first).

    handoff=True is for items that each run one compiled kernel: fn(item, post) then passes `post`
    on to its kernel, which calls chainrule.spinpool.post(*post) first thing, so that the spinning
    pool's workers are handed their items once the caller holds no GIL (see SpinPool.map); on
    other threads, and without the spinning pool, `post` asks nothing of the kernel.

    NumPy releases the GIL inside its array operations, so threads overlap wherever the work is
    in them; the Python between them runs one thread at a time. While the threads run, the
    interpreter's switch interval is cut from 5 ms to 0.1 ms: a thread coming back from an array
    operation waits for the GIL at most that long (measured on a Winograd forward split over two
    cores: 1.47x faster with the default interval, 1.78x with the short one).

    Where numba is installed and allowed (chainrule.accelerate) the other threads are
    chainrule.spinpool's, which wait for work spinning without the GIL (an empty region: 62-86 ->
    23-26 us); else a ThreadPoolExecutor's, which also takes over when more items than threads
    come, or another of the user's threads has the spinning pool busy.
    """
    global _pool
    items = list(items)
    workers = min(_threads, len(items))
    spinning = None if workers <= 1 or _in_pool() else _spin_pool(len(items) - 1)
    if spinning is not None:
        _short_switch_interval(True)
        try:
            out = spinning.map(fn, items, handoff)
        finally:
            _short_switch_interval(False)
        if out is not None:
            return out
    if handoff:
        fn = functools.partial(_without_post, fn)
    if workers <= 1 or _in_pool():  # inside a worker: no nested pool
        return [fn(item) for item in items]
    with _pool_lock:
        if _pool is None or _pool._max_workers < workers - 1:
            from concurrent.futures import ThreadPoolExecutor
            _pool = ThreadPoolExecutor(max_workers=max(workers, _threads) - 1, thread_name_prefix="chainrule")
    _short_switch_interval(True)
    try:
        futures = [_pool.submit(fn, item) for item in items[1:]]
        first = fn(items[0])
        return [first] + [f.result() for f in futures]
    finally:
        _short_switch_interval(False)


def _without_post(fn, item):
    return fn(item, _NO_POST)


_spinning = None


def _spin_pool(workers):
    """The spinning pool (chainrule.spinpool) with at least `workers` threads, where numba is allowed
    and installed (chainrule.accelerate); else None."""
    global _spinning
    if workers > _threads - 1:
        return None
    from . import accelerate
    if not accelerate.wants_numba():
        return None
    with _pool_lock:
        if _spinning is None or _spinning.workers < workers:
            from .spinpool import SpinPool
            # more threads than cores: spinning would take the cores from the threads with work
            _spinning = SpinPool(max(workers, _threads - 1), spin_us=200 if _threads <= _cores() else 0)
    return _spinning


def _cores():
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


_regions = 0            # parallel_map calls running now (from any of the user's threads)
_saved_interval = None


def _short_switch_interval(enter):
    """The switch interval is the interpreter's, shared by every thread: set it on entering the first
    parallel region and put it back on leaving the last one."""
    global _regions, _saved_interval
    with _pool_lock:
        if enter:
            if _regions == 0:
                _saved_interval = sys.getswitchinterval()
                sys.setswitchinterval(min(_saved_interval, 1e-4))
            _regions += 1
        else:
            _regions -= 1
            if _regions == 0:
                sys.setswitchinterval(_saved_interval)


def _in_pool():
    return threading.current_thread().name.startswith("chainrule")


def _after_fork_in_child():
    # a forked child has the pool object but none of its threads: start afresh there
    global _pool, _regions, _pool_lock, _spinning
    _pool, _regions, _pool_lock, _spinning = None, 0, threading.Lock(), None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


_PARALLEL_GEMM = 1 << 23   # multiply-adds below which a product stays on one thread (an MLP's
                           # 128x256x128 layers ran faster whole)
_PARALLEL_ELEMENTS = 1 << 18  # elements below which a kernel stays on one thread (see worth_threads)


def gemm(a, b):
    """a @ b for 2-D arrays, shared out over the threads when the product is big: each thread a
    single-threaded BLAS call into its rows of the result or, when a has fewer rows than b has
    columns, into its columns (then each streams only its part of b: a dense layer's 50 x 3136
    batch times its 3136 x 1024 weights ran 1.13x faster on 2 threads split by rows, 1.8x by columns)."""
    m, k = a.shape
    n = b.shape[1]
    if max(m, n) < 2 * _threads or not worth_threads(m * k * n, FACTOR_GEMM) or array_module(a) is not np:
        return a @ b
    out = np.empty((m, n), dtype=np.result_type(a, b))
    if m >= n:
        parallel_map(lambda r: np.matmul(a[r], b, out=out[r]), _slices(m))
    else:
        parallel_map(lambda r: np.matmul(a, b[:, r], out=out[:, r]), _slices(n))
    return out


def slices(n, parts=None):
    """range(n) as at most `parts` (default num_threads()) contiguous slices of near-equal lengths,
    the first ones longer; [slice(0, 0)] for n = 0. Computed from n alone, not from a list of n ints
    (that cost 2 ms for the 86K rows of a bias gradient)."""
    return _slices(n, parts) or [slice(0, 0)]


def _slices(n, parts=None):
    """`slices`, but [] for n = 0."""
    parts = max(1, min(parts or _threads, n))
    size, extra = divmod(n, parts)
    bounds = [i * size + min(i, extra) for i in range(parts + 1)]
    return [slice(lo, hi) for lo, hi in zip(bounds, bounds[1:]) if hi > lo]


def worth_threads(elements, factor=1):
    """Whether a kernel touching this many array elements in all should share its work out: handing
    work to another thread and back costs ~50 us here (the OS's wake-up), what one pass over ~250K
    float32 takes. The U-Net on 2 threads trained at 150 samples/s with the limit at 2^18 elements,
    132 at 2^20 (which kept its 16x16 layers and pools on one thread).

    Kernels that make one cheap pass over their elements need `factor` times as many (FACTOR_PASS
    for pooling and ReLU, FACTOR_REDUCE for batch norm and bias sums, whose work is split into
    several short regions). Measured on 2 cores, each against its 1-thread time: max pools of 262K
    and 295K elements 0.85x and 0.45x when split, of 524K-1.6M 1.14-1.5x; batch norm of 524K 0.70x,
    of 4.7M 1.27x."""
    return _threads > 1 and elements >= _PARALLEL_ELEMENTS * factor


FACTOR_PASS = 2         # one elementwise pass: split from 2^19 elements
FACTOR_REDUCE = 4       # reductions and multi-pass normalisation: from 2^20
FACTOR_GEMM = _PARALLEL_GEMM // _PARALLEL_ELEMENTS  # matrix products, counted in multiply-adds: from 2^23


def balanced_step(n, step, elements=None):
    """A chunk size near `step` (not above it) that cuts n items into a multiple of num_threads()
    chunks of near-equal size, so that no thread waits on another's extra chunk (128 images in
    chunks of 50 are 50 + 50 + 28: one thread does 100, the other 28). `step` itself when the work
    (`elements`, if given) is too small to share out."""
    if n <= 0 or (elements is not None and not worth_threads(elements)):
        return max(1, step)
    chunks = -(-n // max(1, step))
    chunks = -(-chunks // _threads) * _threads
    return max(1, -(-n // chunks))


def parallel_slices(n, fn, elements, factor=1):
    """[fn(s) for s in slices of range(n)]: one contiguous slice per thread when the pass touches
    enough elements (`worth_threads(elements, factor)`), else fn(slice(0, n)) alone. For the
    elementwise ops: each slice is the same work on a different part of the batch (or of the rows)."""
    if not worth_threads(elements, factor) or n < 2:
        return [fn(slice(0, n))]
    return parallel_map(fn, _slices(n))


def parallel_sum(n, fn, elements, factor=FACTOR_REDUCE):
    """sum of fn(s) over the slices of `parallel_slices`: partial reductions (per-channel sums as
    GEMVs, say) computed by the threads on their rows, then added."""
    first, *rest = parallel_slices(n, fn, elements, factor)
    for part in rest:
        first = first + part
    return first


set_num_threads(_default_threads())
hold_blas_at_one_thread()
