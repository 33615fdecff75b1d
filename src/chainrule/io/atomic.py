"""Atomic file writes: the one place in chainrule that replaces a file on disk.

A save that crashes (an exception, a full disk, SIGKILL, a power cut) must leave the previous
file as it was, never a half-written one. Every writer goes through the same three steps:

1. write everything to a temporary file in the *same directory* as the target (so the final
   rename stays on one file system, where it is atomic);
2. flush and `fsync` it, so its bytes are on disk before its name is;
3. `os.replace` it onto the target (atomic on POSIX and Windows), then `fsync` the directory so
   the rename itself survives a power cut.

If anything fails before step 3, the temporary file is removed and the exception goes on.
(A process killed outright cannot clean up: it leaves a hidden '.tmp-...' file beside the
target, and the target untouched.)
"""
import contextlib
import glob
import os
import secrets
import shutil

__all__ = ["atomic_open", "atomic_write_bytes", "atomic_save", "temporary_path"]


def temporary_path(filepath):
    """A fresh hidden name beside `filepath` that still ends with its whole name
    ('.tmp-3fa2c1d0-model.chainrule'), so a saver choosing a format by suffix still sees it."""
    directory, name = os.path.split(os.path.abspath(os.fspath(filepath)))
    return os.path.join(directory, f".tmp-{secrets.token_hex(4)}-{name}")


def _fsync_path(path):
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_directory(directory):
    # Makes the rename durable; directories cannot be opened this way on Windows, where
    # os.replace is already durable enough, so that case is skipped.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)


def _commit(tmp, filepath):
    os.replace(tmp, filepath)
    _fsync_directory(os.path.dirname(os.path.abspath(filepath)))


@contextlib.contextmanager
def atomic_open(filepath, mode="wb"):
    """Open a temporary file for writing; on a clean exit it replaces `filepath` atomically.

        with atomic_open("model.chainrule") as f:
            f.write(...)          # an exception here leaves model.chainrule as it was
    """
    if "w" not in mode:
        raise ValueError(f"atomic_open writes a whole new file: mode must contain 'w', got {mode!r}")
    filepath = os.fspath(filepath)
    tmp = temporary_path(filepath)
    try:
        with open(tmp, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        _commit(tmp, filepath)
    except BaseException:
        _remove(tmp)
        raise


def atomic_write_bytes(filepath, data):
    """Write `data` (bytes) to `filepath` atomically."""
    with atomic_open(filepath, "wb") as f:
        f.write(data)


def atomic_save(save, filepath):
    """Call `save(temporary_path)` (any saver that takes a path), then move its file onto `filepath`.

    For savers we do not control (`model.save`, `np.save`, a user's function). A saver that
    appends its own extension (np.save adds '.npy' when missing) is followed: its one file is
    moved to `filepath` plus that extension. Returns the path finally written.
    If `save` raises, whatever it wrote is removed and the old `filepath` is untouched.
    """
    filepath = os.fspath(filepath)
    tmp = temporary_path(filepath)
    try:
        save(tmp)
        if os.path.lexists(tmp):
            target = filepath
        else:
            made = glob.glob(glob.escape(tmp) + ".*")
            if len(made) != 1:
                raise FileNotFoundError(f"atomic_save: the saver did not write {tmp!r} (found {made}); "
                                        "make it write to the path it is given")
            target = filepath + made[0][len(tmp):]
            os.replace(made[0], tmp)
        if os.path.isfile(tmp):
            _fsync_path(tmp)
        _commit(tmp, target)
        return target
    except BaseException:
        for path in [tmp] + glob.glob(glob.escape(tmp) + ".*"):
            _remove(path)
        raise
