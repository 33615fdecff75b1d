"""Worker threads that wait for work by spinning on a flag in compiled code, without the GIL.

backend.parallel_map hands a share of each kernel to other threads. Through a queue and a lock
(ThreadPoolExecutor) each hand-off is an OS wake-up, ~25-50 us on the machines measured, twice per
parallel region: an empty region cost 62-86 us, as much as a 250K-float pass. Here a worker, once
its share is done, polls its flag for `spin_us` before it sleeps, and the caller polls the worker's
done flag the same way; the polls are a numba loop of atomic loads that holds no GIL, so the
Python running on the other thread is not slowed (an empty region: 23-26 us, what is left being the
GIL's own hand-off to the worker; a 256^3 GEMM split over two threads 265-388 -> 203-235 us).
OpenMP runtimes wait the same way.

The polls give the core away (sched_yield) about once a microsecond: when another program takes one
of the cores, the caller and a worker may share the other, and a caller spinning through its whole
wait kept the worker that it waits for off the core (a 1-core busy loop beside a 2-thread run: the
U-Net's 64x64 max pool 1.45-1.71 -> 0.94-0.98 ms, its 8x8 128->128 convolution 4.54-6.06 -> 2.45-2.50
ms; on an idle machine within the noise). Needs numba (the `fast` extra): backend.parallel_map uses this
pool when chainrule.accelerate allows numba, else its executor.
"""
import sys
import threading
import time

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def _load_acquire(typingctx, flags, index):
    """flags[index] read with an atomic acquire load: the compiler may not hoist it out of a loop."""
    if not (isinstance(flags, types.Array) and flags.dtype == types.int64 and isinstance(index, types.Integer)):
        return None
    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, args[0])
        return builder.load_atomic(builder.gep(array.data, [args[1]]), "acquire", 8)
    return types.int64(flags, index), codegen


@intrinsic
def _yield_cpu(typingctx):
    """sched_yield(): the core goes to another thread that is ready to run on it, if there is one
    (nothing on Windows, which has no sched_yield). A yield costs ~0.5 us, so a spin of `spin_us`
    lasts about 1.5 times that."""
    def codegen(context, builder, signature, args):
        if sys.platform != "win32":
            call = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(32), []), "sched_yield")
            builder.call(call, [])
        return context.get_dummy_value()
    return types.void(), codegen


@njit(nogil=True, cache=True)
def spin_until(flags, index, old, spins, every=0):
    """flags[index] as soon as it differs from `old`, polled at most `spins` times, yielding the core
    after every `every` polls (0: never); `old` if it never did."""
    left = every    # a countdown, not i % every: a division per poll would slow the polls 4-7x
    for _ in range(spins):
        value = _load_acquire(flags, index)
        if value != old:
            return value
        left -= 1
        if left == 0:
            _yield_cpu()
            left = every
    return old


_spins_per_us = None


def spins_per_us():
    """Polls per microsecond on this machine (measured once, ~1 ms)."""
    global _spins_per_us
    if _spins_per_us is None:
        flags = np.zeros(1, np.int64)
        spin_until(flags, 0, 0, 10)  # compile (or load from the cache) first
        count = 1 << 20
        start = time.perf_counter()
        spin_until(flags, 0, 0, count)
        _spins_per_us = max(1, int(count / ((time.perf_counter() - start) * 1e6)))
    return _spins_per_us


class SpinPool:
    """`workers` threads, each running one item of a `map` at a time. Not re-entrant: `map` returns
    None when another thread is using the pool (the caller then uses another way)."""

    def __init__(self, workers, spin_us=200):
        self.workers = workers
        self.spins = spin_us * spins_per_us()
        self.wait_spins = 10 * self.spins              # the caller's wait for a worker's share
        self.every = spins_per_us()                    # polls between yields of the core: ~1 us
        self.posted = np.zeros(workers, np.int64)   # per worker: generation of the last task handed out
        self.done = np.zeros(workers, np.int64)     # ... and of the last one finished
        self.tasks = [None] * workers
        self.results = [None] * workers
        self.sleeping = [False] * workers
        self.wake = [threading.Condition() for _ in range(workers)]
        self.finished = threading.Condition()
        self.waiting = False                        # the caller sleeps on `finished`
        self.busy = threading.Lock()
        self.threads = [threading.Thread(target=self._work, args=(w,), name=f"chainrule-spin-{w}", daemon=True)
                        for w in range(workers)]
        for thread in self.threads:
            thread.start()

    def _work(self, w):
        generation = 0
        while True:
            new = spin_until(self.posted, w, generation, self.spins, self.every)
            if new == generation:
                with self.wake[w]:
                    self.sleeping[w] = True
                    while self.posted[w] == generation:
                        self.wake[w].wait()
                    self.sleeping[w] = False
                new = int(self.posted[w])
            generation = new
            # the task stays in its slot until the next one replaces it: a caller interrupted while
            # waiting (Ctrl-C) may post again before this one is done, and must not find it cleared
            fn, item = self.tasks[w]
            try:
                self.results[w] = (True, fn(item))
            except BaseException as error:  # handed to the caller, raised there
                self.results[w] = (False, error)
            # Publish, then let go of the GIL at once (in spin_until): the caller, which sees `done`
            # first, needs it. The lock only when the caller went to sleep: it sets `waiting` before
            # it reads `done`, so one of the two sees the other's write.
            self.done[w] = generation
            if self.waiting:
                with self.finished:
                    self.finished.notify_all()

    def map(self, fn, items):
        """[fn(item) for item in items], items[0] on the calling thread and items[i] on worker i - 1;
        None if the pool is busy. len(items) <= workers + 1."""
        if not self.busy.acquire(blocking=False):
            return None
        try:
            others = items[1:]
            for w, item in enumerate(others):
                self.tasks[w] = (fn, item)
                with self.wake[w]:
                    self.posted[w] += 1
                    if self.sleeping[w]:
                        self.wake[w].notify()
            try:
                first = fn(items[0])
            finally:
                for w in range(len(others)):
                    self._wait(w)
            out = [first]
            for w in range(len(others)):
                ok, value = self.results[w]
                self.results[w] = None
                if not ok:
                    raise value
                out.append(value)
            return out
        finally:
            self.busy.release()

    def _wait(self, w):
        target = int(self.posted[w])
        if spin_until(self.done, w, target - 1, self.wait_spins, self.every) == target:
            return
        with self.finished:
            self.waiting = True
            while self.done[w] != target:
                if not self.finished.wait(timeout=1.0) and not self.threads[w].is_alive():
                    self.waiting = False
                    raise RuntimeError(f"chainrule.spinpool: worker {w} has died; set CHAINRULE_NUMBA=never "
                                       f"to use the plain thread pool, and please report this")
            self.waiting = False
