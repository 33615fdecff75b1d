"""Downloads that can be trusted: SHA-256 checked, written atomically.

A file is streamed into a temporary file beside its destination while its SHA-256 is
computed; only when the sum matches the published one is the file fsync'ed and renamed
into place (``os.replace`` is atomic on POSIX and Windows), so the cache never holds a
truncated or corrupted file, not even after a crash or Ctrl-C mid-download.
"""
import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

CHUNK = 1 << 20
TIMEOUT_S = 60


class ChecksumError(ValueError):
    """A downloaded file does not have the published SHA-256 (corrupted, truncated or replaced)."""


def sha256_of(path):
    """The hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(url, destination, sha256, quiet=False):
    """Download `url` to `destination`, refusing it unless its SHA-256 equals `sha256`.

    Raises ChecksumError (nothing is written) or urllib's URLError/OSError (nothing is written).
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    if not quiet:
        print(f"Downloading {url}", flush=True)
    fd, tmp = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.", suffix=".part")
    try:
        digest, received = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            announced = response.headers.get("Content-Length")
            for block in iter(lambda: response.read(CHUNK), b""):
                digest.update(block)
                out.write(block)
                received += len(block)
            out.flush()
            os.fsync(out.fileno())  # the bytes are on disk before the name points at them
        if announced is not None and received != int(announced):
            raise ConnectionError(f"connection closed after {received} of {announced} bytes (truncated transfer; "
                                  f"not kept)")
        got = digest.hexdigest()
        if got != sha256:
            raise ChecksumError(f"SHA-256 mismatch: expected {sha256}, got {got} (corrupted or truncated download; "
                                f"not kept)")
        os.replace(tmp, destination)
        _fsync_dir(destination.parent)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return destination


def _fsync_dir(folder):
    """Make the rename itself durable (a no-op where directories cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def mirrors(env_var, defaults, base_url=None):
    """The base URLs to try: `base_url=`, else $env_var (comma/space separated), else the defaults."""
    if base_url:
        chosen = [base_url] if isinstance(base_url, str) else list(base_url)
    elif os.environ.get(env_var):
        chosen = os.environ[env_var].replace(",", " ").split()
    else:
        chosen = list(defaults)
    return [u if u.endswith("/") else u + "/" for u in chosen]


def download_set(files, sums, folder, bases, quiet=False):
    """Fetch every file of `files` into `folder` from the first mirror that serves it intact.

    Files already in `folder` with the right SHA-256 are kept. Returns (paths or None, attempts)
    where attempts lists (url, reason) for every failure, for the final error message.
    """
    folder = Path(folder)
    attempts, paths = [], []
    for name in files:
        target = folder / name
        if target.is_file() and sha256_of(target) == sums[name]:
            paths.append(target)
            continue
        for base in bases:
            url = base + name
            try:
                paths.append(fetch(url, target, sums[name], quiet=quiet))
                break
            except ChecksumError as e:
                attempts.append((url, str(e)))
            except (OSError, ValueError, http.client.HTTPException) as e:  # URLError is an OSError
                attempts.append((url, _reason(e)))
        else:
            return None, attempts
    return paths, attempts


def _reason(error):
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        return f"unreachable ({error.reason})"
    if isinstance(error, ConnectionError):
        return str(error)
    return f"{type(error).__name__}: {error}"


def offline():
    """True when $CHAINRULE_OFFLINE is set to 1/true/yes: never touch the network."""
    return os.environ.get("CHAINRULE_OFFLINE", "").strip().lower() in ("1", "true", "yes")
