"""Where dataset files are looked for, and the one error raised when they are nowhere.

The order, first match wins:

1. an explicit ``path=`` (a folder, or for MNIST the ``mnist.npz`` file itself);
2. ``$CHAINRULE_DATA/<name>`` then ``$CHAINRULE_DATA``;
3. the user cache ``$XDG_CACHE_HOME/chainrule/<name>`` (default ``~/.cache/chainrule/<name>``),
   where downloads go;
4. Keras's own cache (``$KERAS_HOME/datasets``, default ``~/.keras/datasets``), so files a
   course already fetched with Keras are reused;
5. system copies (Debian's ``dataset-fashion-mnist`` installs ``/usr/share/datasets/fashion-mnist``);
6. a download from the dataset's mirrors into the cache (see ``_download.py``).

A dataset is stored in one of several *layouts* (e.g. MNIST as ``mnist.npz`` or as four IDX
files); a folder matches when it holds every file of one layout, each file gzipped or not.
"""
import os
from pathlib import Path


class DatasetNotFoundError(FileNotFoundError):
    """A dataset is in none of the places looked at and could not be downloaded."""


def cache_dir():
    """chainrule's download cache: $XDG_CACHE_HOME/chainrule (default ~/.cache/chainrule)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "chainrule"


def keras_cache_dir():
    """Keras's dataset cache: $KERAS_HOME/datasets (default ~/.keras/datasets)."""
    base = os.environ.get("KERAS_HOME") or str(Path.home() / ".keras")
    return Path(base) / "datasets"


def candidate_dirs(name, path=None, keras_subdir=None, system_dirs=()):
    """The folders searched for dataset `name`, in order (see the module docstring)."""
    if path is not None:
        return [Path(path)]
    dirs = []
    env = os.environ.get("CHAINRULE_DATA")
    if env:
        dirs += [Path(env) / name, Path(env)]
    dirs.append(cache_dir() / name)
    if keras_subdir is not None:
        dirs.append(keras_cache_dir() / keras_subdir)
    dirs += [Path(d) for d in system_dirs]
    return dirs


def _variants(filename):
    """A file may be stored gzipped or not: try the name as given, then the other form."""
    return (filename, filename[:-3]) if filename.endswith(".gz") else (filename, filename + ".gz")


def find_in(folder, layouts):
    """(layout index, file paths) for the first layout complete in `folder`, else None."""
    for index, layout in enumerate(layouts):
        found = []
        for filename in layout:
            hit = next((folder / v for v in _variants(filename) if (folder / v).is_file()), None)
            if hit is None:
                break
            found.append(hit)
        else:
            return index, found
    return None


def find_files(name, layouts, path=None, keras_subdir=None, system_dirs=()):
    """Search the candidate folders; returns ((layout index, paths) or None, folders searched)."""
    searched = candidate_dirs(name, path, keras_subdir, system_dirs)
    for folder in searched:
        hit = find_in(folder, layouts)
        if hit is not None:
            return hit, searched
    return None, searched


def not_found_message(title, name, layouts, searched, attempts=(), hints=(), skipped=None):
    """The text of the single error: every place looked at, every URL tried, and the fixes."""
    wanted = " or ".join("{" + ", ".join(layout) + "}" for layout in layouts)
    lines = [f"{title} not found. Looked for {wanted} (each file gzipped or not) in:"]
    lines += [f"  {d}" + ("" if d.exists() else "  (does not exist)") for d in searched]
    if attempts:
        lines.append("and tried to download:")
        lines += [f"  {url}: {reason}" for url, reason in attempts]
    if skipped:
        lines.append(f"Did not download: {skipped}.")
    lines.append("To provide the files:")
    lines += [f"  - {hint}" for hint in hints]
    lines += ["  - put them in a folder and pass path=..., or set CHAINRULE_DATA to that folder",
              f"  - or copy them into {cache_dir() / name}"]
    return "\n".join(lines)


def locate(name, title, layouts, path=None, keras_subdir=None, system_dirs=(), download=True,
           download_layout=None, sums=None, bases=(), hints=()):
    """(layout index, paths) of the dataset: found locally, else downloaded into the cache.

    Raises DatasetNotFoundError listing every folder searched and every URL tried.
    """
    from . import _download
    hit, searched = find_files(name, layouts, path, keras_subdir, system_dirs)
    if hit is not None:
        return hit
    attempts, skipped = [], None
    if path is None and download_layout is not None:
        if not download:
            skipped = "download=False"
        elif _download.offline():
            skipped = "CHAINRULE_OFFLINE is set"
        else:
            paths, attempts = _download.download_set(download_layout, sums, cache_dir() / name, bases)
            if paths is not None:
                return layouts.index(tuple(download_layout)), paths
    raise DatasetNotFoundError(not_found_message(title, name, layouts, searched, attempts, hints, skipped))
