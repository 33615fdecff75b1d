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
ms; on an idle machine within the noise).

The other hand-offs avoid the GIL's sleeps: a thread that goes for the GIL while another holds it
sleeps and must be woken. A caller waits (spinning) until its worker is back in its own spin, past
the Python that follows its item (`idle`), not merely done; and a compiled kernel may hand out the
workers' items itself once it runs without the GIL (`map(..., handoff=True)`).

Needs numba (the `fast` extra): backend.parallel_map uses this pool when chainrule.accelerate allows
numba, else its executor.
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
def _store_release(typingctx, flags, index, value):
    """flags[index] = value with an atomic release store: what was written before it is seen by the
    thread that reads the new value with an acquire load."""
    if not (isinstance(flags, types.Array) and flags.dtype == types.int64 and isinstance(index, types.Integer)
            and isinstance(value, types.Integer)):
        return None
    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, args[0])
        value = context.cast(builder, args[2], signature.args[2], types.int64)
        builder.store_atomic(value, builder.gep(array.data, [args[1]]), "release", 8)
        return context.get_dummy_value()
    return types.void(flags, index, value), codegen


@njit(nogil=True, cache=True)
def post(posted, targets):
    """posted[w] = targets[w] for every w with targets[w] >= 0: the hand-out of a `SpinPool.map(...,
    handoff=True)`, done by the caller's compiled kernel once it runs without the GIL (see `map`)."""
    for w in range(targets.size):
        if targets[w] >= 0:
            _store_release(posted, w, targets[w])


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


@njit(nogil=True, cache=True)
def idle_then_spin(idle, flags, index, old, spins, every=0):
    """idle[index] = old, then `spin_until(flags, index, old, spins, every)`: the store tells a waiting
    caller that this thread has let go of the GIL (a numba function without the GIL lets go of it on
    entry), so that the caller, resuming, does not find it held."""
    _store_release(idle, index, old)
    return spin_until(flags, index, old, spins, every)


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
        self.idle = np.zeros(workers, np.int64)     # ... and of the last one after which it let go of the GIL
        self.tasks = [None] * workers
        self.no_post = (self.posted, np.empty(0, np.int64))   # what a worker's call of a handoff map gets
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
            new = idle_then_spin(self.idle, self.posted, w, generation, self.spins, self.every)
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
            fn, item, handoff = self.tasks[w]
            try:
                self.results[w] = (True, fn(item, self.no_post) if handoff else fn(item))
            except BaseException as error:  # handed to the caller, raised there
                self.results[w] = (False, error)
            # Publish, then let go of the GIL at once (in idle_then_spin, whose `idle` the spinning
            # caller waits for). The lock only when the caller went to sleep: it sets `waiting` before
            # it reads `done`, so one of the two sees the other's write.
            self.done[w] = generation
            if self.waiting:
                with self.finished:
                    self.finished.notify_all()

    def map(self, fn, items, handoff=False):
        """[fn(item) for item in items], items[0] on the calling thread and items[i] on worker i - 1;
        None if the pool is busy. len(items) <= workers + 1.

        handoff=True: fn(item, post) takes a pair of arrays, (posted, targets), that it hands to its
        compiled kernel, which calls `post(posted, targets)` first thing. A worker that is spinning
        then gets its task only once the caller runs without the GIL: posted from Python, it went for
        the GIL at once, found the caller still holding it (the calls into its kernel) and slept
        until the caller let go, then waited to be woken (a futex wake-up from the other core takes
        ~25-45 us on the 2-core VM measured, milliseconds at times). The U-Net's 4x4 layers on two
        threads: 0.7-1.4 -> 0.04-0.19 sleeps per call, 2-3% faster. A sleeping worker is posted and
        woken here as before; so is any worker whose task the kernel did not post (it raised first)."""
        if not self.busy.acquire(blocking=False):
            return None
        try:
            others = items[1:]
            targets = np.full(len(others), -1, np.int64)
            for w, item in enumerate(others):
                self.tasks[w] = (fn, item, handoff)
                with self.wake[w]:
                    if handoff and not self.sleeping[w]:
                        targets[w] = self.posted[w] + 1
                    else:
                        self.posted[w] += 1
                        if self.sleeping[w]:
                            self.wake[w].notify()
            try:
                first = fn(items[0], (self.posted, targets)) if handoff else fn(items[0])
            finally:
                for w in np.flatnonzero(targets >= 0):
                    # posted now if the kernel did not; woken if it went to sleep before the kernel posted
                    with self.wake[w]:
                        self.posted[w] = targets[w]
                        if self.sleeping[w]:
                            self.wake[w].notify()
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
        # Spin until the worker is back in its spin loop, not merely done: past `done` it still holds
        # the GIL for a few statements, and a caller that resumed then found the GIL taken and slept
        # (0.1-0.8 times per layer call on two threads, a futex wake-up of ~25-45 us here each time).
        target = int(self.posted[w])
        if spin_until(self.idle, w, target - 1, self.wait_spins, self.every) == target:
            return
        with self.finished:
            self.waiting = True
            while self.done[w] != target:
                if not self.finished.wait(timeout=1.0) and not self.threads[w].is_alive():
                    self.waiting = False
                    raise RuntimeError(f"chainrule.spinpool: worker {w} has died; set CHAINRULE_NUMBA=never "
                                       f"to use the plain thread pool, and please report this")
            self.waiting = False
