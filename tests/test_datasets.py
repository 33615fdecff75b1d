"""Datasets: IDX files, where data is looked for, trusted downloads, the embedded subset,
generated sets, users' image folders and HDF5 files.

Every test works on small fixtures it writes itself; the network is never touched (downloads
come from an http.server on 127.0.0.1 or from file:// URLs, with their checksums patched in).
"""
import functools
import gzip
import hashlib
import http.server
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from chainrule import datasets
from chainrule.datasets import _download, embedded, fashion_mnist, mnist
from chainrule.datasets import directory as directory_module
from chainrule.datasets.idx import read_idx, write_idx

IDX_NAMES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty, isolated world: HOME, XDG_CACHE_HOME, no CHAINRULE_DATA, no system copies, no network."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    for var in ("CHAINRULE_DATA", "KERAS_HOME", "CHAINRULE_OFFLINE", fashion_mnist.MIRROR_ENV, mnist.MIRROR_ENV):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(fashion_mnist, "SYSTEM_DIRS", (str(tmp_path / "system" / "fashion-mnist"),))
    # a default mirror that cannot be reached, should a test forget to point elsewhere
    monkeypatch.setattr(fashion_mnist, "MIRRORS", ("file://" + str(tmp_path / "no-mirror") + "/",))
    monkeypatch.setattr(mnist, "MIRRORS", ("file://" + str(tmp_path / "no-mirror") + "/",))
    return tmp_path


def make_set(n_train, n_test=3, seed=0, size=4):
    """A tiny MNIST-like set; n_train tells sets apart in the resolution tests."""
    rng = np.random.default_rng(seed)
    return ((rng.integers(0, 256, (n_train, size, size), dtype=np.uint8), rng.integers(0, 10, n_train, dtype=np.uint8)),
            (rng.integers(0, 256, (n_test, size, size), dtype=np.uint8), rng.integers(0, 10, n_test, dtype=np.uint8)))


def write_set(folder, data, gz=True):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (x_train, y_train), (x_test, y_test) = data
    for name, array in zip(IDX_NAMES, (x_train, y_train, x_test, y_test)):
        write_idx(folder / (name if gz else name[:-3]), array)
    return folder


def assert_same(got, expected):
    for g, e in zip(sum(got, ()), sum(expected, ())):
        assert g.dtype == np.uint8 and g.shape == e.shape
        np.testing.assert_array_equal(g, e)


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture
def server():
    """An HTTP server on 127.0.0.1 serving a temporary folder; yields (folder, base URL)."""
    import tempfile
    with tempfile.TemporaryDirectory() as root:
        handler = functools.partial(_QuietHandler, directory=root)
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        try:
            yield Path(root), f"http://127.0.0.1:{httpd.server_address[1]}/"
        finally:
            httpd.shutdown()
            httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def send_header(self, keyword, value):
        # a file named *.cut is announced 1000 bytes longer than it is: the transfer breaks off early
        if keyword == "Content-Length" and self.path.endswith(".cut"):
            value = str(int(value) + 1000)
        super().send_header(keyword, value)


# ----------------------------------------------------------------------------- IDX
@pytest.mark.parametrize("name", ["a-idx3-ubyte.gz", "a-idx3-ubyte"])
def test_idx_round_trip_gzipped_or_raw(tmp_path, name):
    array = np.arange(2 * 3 * 5, dtype=np.uint8).reshape(2, 3, 5)
    write_idx(tmp_path / name, array)
    assert (tmp_path / name).read_bytes()[:2] == (b"\x1f\x8b" if name.endswith(".gz") else b"\x00\x00")
    got = read_idx(tmp_path / name)
    assert got.dtype == np.uint8 and got.shape == (2, 3, 5)
    np.testing.assert_array_equal(got, array)
    assert datasets.read_idx is read_idx  # public


def test_idx_gzip_is_told_by_content_not_name(tmp_path):
    raw = tmp_path / "labels-idx1-ubyte"
    write_idx(raw, np.array([3, 1, 4], dtype=np.uint8))
    renamed = tmp_path / "labels-idx1-ubyte.gz"  # a raw file carrying a .gz name still reads
    renamed.write_bytes(raw.read_bytes())
    np.testing.assert_array_equal(read_idx(renamed), [3, 1, 4])


def test_idx_truncated_file_is_refused(tmp_path):
    path = tmp_path / "x-idx3-ubyte"
    write_idx(path, np.zeros((4, 3, 3), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(path)
    gz = tmp_path / "x-idx3-ubyte.gz"
    write_idx(gz, np.zeros((4, 3, 3), dtype=np.uint8))
    gz.write_bytes(gz.read_bytes()[:-6])  # a cut gzip stream
    with pytest.raises(ValueError, match="truncated or corrupted"):
        read_idx(gz)


def test_write_idx_gzip_is_reproducible(tmp_path):
    array = np.arange(60, dtype=np.uint8)
    write_idx(tmp_path / "a.gz", array)
    write_idx(tmp_path / "b.gz", array)
    assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.gz").read_bytes()


# ----------------------------------------------------------------------------- local loading
@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_loads_idx_from_explicit_path(home, gz):
    data = make_set(7)
    folder = write_set(home / "mine", data, gz=gz)
    assert_same(fashion_mnist.load_data(path=folder), data)


def test_resolution_order_path_env_cache_keras_system(home, monkeypatch):
    sets = {where: make_set(n, seed=n) for n, where in enumerate(["path", "env", "cache", "keras", "system"], 3)}
    write_set(home / "explicit", sets["path"])
    write_set(home / "env" / "fashion-mnist", sets["env"])
    write_set(home / "xdg" / "chainrule" / "fashion-mnist", sets["cache"])
    write_set(home / "home" / ".keras" / "datasets" / "fashion-mnist", sets["keras"])
    write_set(home / "system" / "fashion-mnist", sets["system"])
    monkeypatch.setenv("CHAINRULE_DATA", str(home / "env"))

    assert_same(fashion_mnist.load_data(path=home / "explicit"), sets["path"])  # explicit path beats env
    assert_same(fashion_mnist.load_data(), sets["env"])                           # env beats cache
    monkeypatch.delenv("CHAINRULE_DATA")
    assert_same(fashion_mnist.load_data(), sets["cache"])                         # cache beats Keras's cache
    for f in (home / "xdg" / "chainrule" / "fashion-mnist").iterdir():
        f.unlink()
    assert_same(fashion_mnist.load_data(), sets["keras"])                         # Keras's cache beats system
    for f in (home / "home" / ".keras" / "datasets" / "fashion-mnist").iterdir():
        f.unlink()
    assert_same(fashion_mnist.load_data(), sets["system"])


def test_explicit_path_is_searched_alone(home, server, monkeypatch):
    root, url = server
    write_set(home / "system" / "fashion-mnist", make_set(3))  # would be found, were the path ignored
    monkeypatch.setenv(fashion_mnist.MIRROR_ENV, url)
    with pytest.raises(datasets.DatasetNotFoundError) as info:
        fashion_mnist.load_data(path=home / "typo")
    message = str(info.value)
    assert f"{home / 'typo'}  (does not exist)" in message and "system" not in message
    assert "tried to download" not in message  # an explicit path never triggers a download


def test_chainrule_data_may_hold_the_files_directly(home, monkeypatch):
    data = make_set(5)
    write_set(home / "flat", data)
    monkeypatch.setenv("CHAINRULE_DATA", str(home / "flat"))
    assert_same(fashion_mnist.load_data(), data)


def test_home_cache_used_when_xdg_unset(home, monkeypatch):
    monkeypatch.delenv("XDG_CACHE_HOME")
    data = make_set(6)
    write_set(home / "home" / ".cache" / "chainrule" / "fashion-mnist", data)
    assert_same(fashion_mnist.load_data(download=False), data)


def test_incomplete_folder_is_skipped(home, monkeypatch):
    data = make_set(4)
    partial = write_set(home / "env" / "fashion-mnist", make_set(9))
    (partial / IDX_NAMES[3]).unlink()  # three files of four: not a match
    write_set(home / "system" / "fashion-mnist", data)
    monkeypatch.setenv("CHAINRULE_DATA", str(home / "env"))
    assert_same(fashion_mnist.load_data(), data)


def test_offline_error_lists_every_place_and_the_fixes(home, monkeypatch):
    monkeypatch.setenv("CHAINRULE_DATA", str(home / "env"))
    with pytest.raises(datasets.DatasetNotFoundError) as info:
        fashion_mnist.load_data(download=False)
    message = str(info.value)
    for place in [home / "env" / "fashion-mnist", home / "env", home / "xdg" / "chainrule" / "fashion-mnist",
                  home / "home" / ".keras" / "datasets" / "fashion-mnist", home / "system" / "fashion-mnist"]:
        assert f"  {place}" in message
    assert "download=False" in message and "apt-get install dataset-fashion-mnist" in message
    assert "path=" in message and "subset='embedded'" in message
    assert isinstance(info.value, FileNotFoundError)  # catchable the usual way too


def test_offline_environment_variable_skips_the_network(home, monkeypatch, server):
    root, url = server
    monkeypatch.setenv("CHAINRULE_OFFLINE", "1")
    with pytest.raises(datasets.DatasetNotFoundError, match="CHAINRULE_OFFLINE"):
        fashion_mnist.load_data(base_url=url)


def test_unreachable_mirror_is_reported(home, server):
    root, url = server  # serves an empty folder: every file is a 404
    with pytest.raises(datasets.DatasetNotFoundError) as info:
        fashion_mnist.load_data(base_url=url)
    assert f"{url}train-images-idx3-ubyte.gz: HTTP 404" in str(info.value)


# ----------------------------------------------------------------------------- downloads
def serve_set(root, data, monkeypatch, module=fashion_mnist):
    """Write the fixture set into the served folder and patch in its checksums."""
    write_set(root, data)
    for name in IDX_NAMES:
        monkeypatch.setitem(module.SHA256, name, sha256(root / name))


def test_download_from_loopback_server_is_verified_cached_and_reused(home, server, monkeypatch):
    root, url = server
    data = make_set(8)
    serve_set(root, data, monkeypatch)
    monkeypatch.setenv(fashion_mnist.MIRROR_ENV, url)
    replaced = []
    real_replace = os.replace

    def spy_replace(src, dst):  # the destination appears only by an atomic rename of a complete file
        assert not Path(dst).exists() and Path(src).parent == Path(dst).parent
        assert sha256(src) == fashion_mnist.SHA256[Path(dst).name]
        replaced.append(Path(dst).name)
        real_replace(src, dst)
    monkeypatch.setattr(_download.os, "replace", spy_replace)

    assert_same(fashion_mnist.load_data(), data)
    assert sorted(replaced) == sorted(IDX_NAMES)
    cache = home / "xdg" / "chainrule" / "fashion-mnist"
    assert sorted(p.name for p in cache.iterdir()) == sorted(IDX_NAMES)  # no temporary files left
    for name in IDX_NAMES:
        assert sha256(cache / name) == fashion_mnist.SHA256[name]
    for name in IDX_NAMES:  # the mirror goes away: the cache answers
        (root / name).unlink()
    assert_same(fashion_mnist.load_data(), data)


@pytest.mark.parametrize("damage", ["truncated", "corrupted"])
def test_bad_download_is_refused_by_checksum_and_not_cached(home, server, monkeypatch, damage):
    root, url = server
    serve_set(root, make_set(8), monkeypatch)
    target = root / IDX_NAMES[0]
    raw = target.read_bytes()
    target.write_bytes(raw[:len(raw) // 2] if damage == "truncated" else raw[:-1] + bytes([raw[-1] ^ 0xFF]))
    with pytest.raises(datasets.DatasetNotFoundError) as info:
        fashion_mnist.load_data(base_url=url)
    assert "SHA-256 mismatch" in str(info.value) and IDX_NAMES[0] in str(info.value)
    cache = home / "xdg" / "chainrule" / "fashion-mnist"
    assert not cache.exists() or not any(cache.iterdir())


def test_connection_cut_mid_transfer_leaves_nothing(home, server, monkeypatch):
    root, url = server
    serve_set(root, make_set(8), monkeypatch)
    name = IDX_NAMES[0] + ".cut"
    whole = (root / IDX_NAMES[0]).read_bytes()
    (root / name).write_bytes(whole[:len(whole) // 2])  # half arrives, the header promised more
    monkeypatch.setattr(fashion_mnist, "FILES", (name,) + IDX_NAMES[1:])
    monkeypatch.setitem(fashion_mnist.SHA256, name, fashion_mnist.SHA256[IDX_NAMES[0]])
    with pytest.raises(datasets.DatasetNotFoundError, match="truncated transfer"):
        fashion_mnist.load_data(base_url=url)
    cache = home / "xdg" / "chainrule" / "fashion-mnist"
    assert not cache.exists() or not any(cache.iterdir())


def test_second_mirror_used_when_first_serves_a_bad_file(home, server, monkeypatch, tmp_path):
    root, url = server
    data = make_set(5)
    serve_set(root, data, monkeypatch)
    good = write_set(tmp_path / "good-mirror", data)
    (root / IDX_NAMES[1]).write_bytes(b"not the labels")
    assert_same(fashion_mnist.load_data(base_url=[url, "file://" + str(good)]), data)


def test_download_from_file_url(home, monkeypatch, tmp_path):
    data = make_set(4)
    mirror = write_set(tmp_path / "mirror", data)
    for name in IDX_NAMES:
        monkeypatch.setitem(fashion_mnist.SHA256, name, sha256(mirror / name))
    assert_same(fashion_mnist.load_data(base_url="file://" + str(mirror)), data)


def test_published_checksums_are_sha256_hex():
    for module in (fashion_mnist, mnist):
        for name, digest in module.SHA256.items():
            assert len(digest) == 64 and int(digest, 16) >= 0, name
    assert fashion_mnist.SHA256["t10k-labels-idx1-ubyte.gz"].startswith("67da17c7")
    assert mnist.SHA256["mnist.npz"].startswith("731c5ac6")


def test_debian_copy_is_the_canonical_data_with_a_rewritten_gzip_header():
    """Debian dropped the file name from each gzip header; putting back the original header
    (name, timestamp of 2017-08-31) reproduces the published SHA-256 byte for byte."""
    debian = Path("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz")
    if not debian.is_file():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    body = debian.read_bytes()[10:]  # the deflate stream and trailer after Debian's 10-byte header
    header = b"\x1f\x8b\x08\x08" + (1504176627).to_bytes(4, "little") + b"\x00\x03" + b"t10k-labels-idx1-ubyte\x00"
    assert hashlib.sha256(header + body).hexdigest() == fashion_mnist.SHA256["t10k-labels-idx1-ubyte.gz"]


# ----------------------------------------------------------------------------- MNIST
def write_npz(path, data):
    (x_train, y_train), (x_test, y_test) = data
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


def test_mnist_reads_npz_file_folder_or_idx(home):
    data = make_set(6)
    npz = write_npz(home / "a" / "mnist.npz", data)
    assert_same(mnist.load_data(path=npz), data)
    assert_same(mnist.load_data(path=npz.parent), data)
    assert_same(mnist.load_data(path=write_set(home / "b", data, gz=False)), data)


def test_mnist_keras_default_path_name_looks_in_the_usual_places(home):
    data = make_set(5)
    write_npz(home / "home" / ".keras" / "datasets" / "mnist.npz", data)  # where Keras caches it
    assert_same(mnist.load_data(path="mnist.npz"), data)
    assert_same(mnist.load_data(), data)


def test_mnist_download_from_loopback_server(home, server, monkeypatch):
    root, url = server
    data = make_set(9)
    write_npz(root / "mnist.npz", data)
    monkeypatch.setitem(mnist.SHA256, "mnist.npz", sha256(root / "mnist.npz"))
    monkeypatch.setenv(mnist.MIRROR_ENV, url)
    assert_same(mnist.load_data(), data)
    assert (home / "xdg" / "chainrule" / "mnist" / "mnist.npz").is_file()


def test_mnist_npz_with_missing_arrays_is_explained(home):
    path = home / "bad.npz"
    np.savez(path, x_train=np.zeros((1, 2, 2), np.uint8))
    with pytest.raises(ValueError, match="missing"):
        mnist.load_data(path=path)


def test_full_fashion_mnist_matches_keras_shapes():
    if not Path(fashion_mnist.SYSTEM_DIRS[0]).is_dir():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data(path=fashion_mnist.SYSTEM_DIRS[0])
    assert (x_train.shape, y_train.shape, x_test.shape, y_test.shape) == ((60000, 28, 28), (60000,),
                                                                         (10000, 28, 28), (10000,))
    assert {a.dtype for a in (x_train, y_train, x_test, y_test)} == {np.dtype(np.uint8)}
    assert np.bincount(y_train).tolist() == [6000] * 10


# ----------------------------------------------------------------------------- the embedded subset
def test_embedded_subset_shapes_dtypes_and_balance():
    (x_train, y_train), (x_test, y_test) = embedded.load_data()
    assert x_train.shape == (6000, 28, 28) and y_train.shape == (6000,)
    assert x_test.shape == (1000, 28, 28) and y_test.shape == (1000,)
    assert {a.dtype for a in (x_train, y_train, x_test, y_test)} == {np.dtype(np.uint8)}
    assert np.bincount(y_train, minlength=10).tolist() == [600] * 10
    assert np.bincount(y_test, minlength=10).tolist() == [100] * 10
    assert x_train.max() > 200 and len(np.unique(x_train.reshape(6000, -1), axis=0)) == 6000
    assert_same(fashion_mnist.load_data(subset="embedded"), ((x_train, y_train), (x_test, y_test)))


def test_embedded_subset_ships_license_and_attribution():
    license_text = (embedded.DATA_DIR / "LICENSE").read_text()
    readme = (embedded.DATA_DIR / "README.md").read_text()
    assert "MIT" in license_text and "Zalando SE" in license_text and "Permission is hereby granted" in license_text
    assert "Han Xiao" in readme and "Zalando Research" in readme
    total = sum((embedded.DATA_DIR / f).stat().st_size for f in embedded.FILES)
    assert total < 4_000_000


def test_embedded_subset_is_what_make_subset_draws_from_the_full_set():
    source = Path(fashion_mnist.SYSTEM_DIRS[0])
    if not source.is_dir():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    assert_same(embedded.make_subset(source), embedded.load_data())


def test_stratified_indices():
    labels = np.repeat(np.arange(3), [5, 7, 9])
    picks = embedded.stratified_indices(labels, 4, np.random.default_rng(0))
    assert np.all(np.diff(picks) > 0) and np.bincount(labels[picks]).tolist() == [4, 4, 4]
    with pytest.raises(ValueError, match="fewer"):
        embedded.stratified_indices(labels, 6, np.random.default_rng(0))


def test_fashion_mnist_rejects_unknown_subset():
    with pytest.raises(ValueError, match="embedded"):
        fashion_mnist.load_data(subset="small")


# ----------------------------------------------------------------------------- generated sets
TOYS = [datasets.xor, datasets.moons, datasets.circles, datasets.spirals, datasets.blobs]


@pytest.mark.parametrize("make", TOYS, ids=lambda f: f.__name__)
def test_toy_sets_shapes_and_seeding(make):
    x, y = make(n_samples=90, seed=3)
    assert x.shape == (90, 2) and x.dtype == np.float32 and y.shape == (90,) and y.dtype.kind == "i"
    x2, y2 = make(n_samples=90, seed=3)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    x3, _ = make(n_samples=90, seed=4)
    assert not np.array_equal(x, x3)
    counts = np.bincount(y)
    assert counts.min() >= 90 // len(counts) - 1 and len(counts) >= 2


def test_toy_sets_follow_the_shared_generator_without_seed():
    import chainrule as cr
    cr.random.seed(11)
    a = datasets.moons(50)[0]
    cr.random.seed(11)
    np.testing.assert_array_equal(a, datasets.moons(50)[0])


def test_toy_geometry():
    x, y = datasets.xor(500, seed=0)
    np.testing.assert_array_equal(y, (x[:, 0] > 0) != (x[:, 1] > 0))
    x, y = datasets.circles(400, noise=0.0, factor=0.3, seed=0)
    radius = np.hypot(x[:, 0], x[:, 1])
    np.testing.assert_allclose(radius[y == 0], 1.0, rtol=1e-6)
    np.testing.assert_allclose(radius[y == 1], 0.3, rtol=1e-5)
    x, y = datasets.blobs(300, centers=[[-5, 0], [5, 0]], cluster_std=0.5, seed=0)
    assert np.all((x[:, 0] > 0) == (y == 1))
    x, y = datasets.spirals(301, classes=3, seed=0)
    assert np.bincount(y).tolist() == [101, 100, 100] and np.abs(x).max() <= 1.0 + 1e-6


def test_heartbeat_labels_agree():
    data = datasets.heartbeat(200, length=96, beat_width=20, p_beat=0.7, seed=1)
    assert data.x.shape == (200, 96, 1) and data.x.dtype == np.float32
    assert data.mask.shape == (200, 96) and data.mask.dtype == np.float32
    assert data.position.shape == data.present.shape == (200,)
    assert 0 < data.present.sum() < 200  # some sequences hold no beat
    for i in range(200):
        on = np.flatnonzero(data.mask[i])
        if data.present[i]:
            assert len(on) == 20 and on[-1] - on[0] == 19 and on[0] <= data.position[i] <= on[-1]
        else:
            assert len(on) == 0 and data.position[i] == -1
    again = datasets.heartbeat(200, length=96, beat_width=20, p_beat=0.7, seed=1)
    np.testing.assert_array_equal(again.x, data.x)
    assert not np.array_equal(datasets.heartbeat(200, length=96, beat_width=20, seed=2).x, data.x)


def test_heartbeat_position_is_the_r_peak():
    clean = datasets.heartbeat(50, length=64, noise=0.0, wander=0.0, seed=3)
    np.testing.assert_array_equal(np.argmax(clean.x[..., 0], axis=1), clean.position)
    np.testing.assert_array_equal(clean.x[..., 0] != 0, clean.mask == 1)  # nothing outside the beat


def test_heartbeat_beat_stands_out_of_the_noise():
    data = datasets.heartbeat(300, seed=0)
    peak = data.x[np.arange(300), data.position, 0]
    elsewhere = np.where(data.mask == 0, data.x[..., 0], np.nan)
    assert np.mean(peak) > 3 * np.nanstd(elsewhere)


def test_microscopy_shapes_counts_and_density():
    data = datasets.microscopy(6, image_size=(64, 80), cell_count=(20, 30), cell_radius=(2.0, 4.0), seed=5)
    assert data.images.shape == data.masks.shape == data.density.shape == (6, 64, 80, 1)
    assert {a.dtype for a in (data.images, data.masks, data.density)} == {np.dtype(np.float32)}
    assert data.counts.dtype == np.int64 and np.all((data.counts >= 20) & (data.counts <= 30))
    np.testing.assert_allclose(data.density.sum(axis=(1, 2, 3)), data.counts, rtol=1e-5)
    assert set(np.unique(data.masks)) <= {0.0, 1.0}
    assert data.images.min() >= 0.0 and data.images.max() <= 1.0
    # cells are brighter than the background
    assert data.images[data.masks == 1].mean() > data.images[data.masks == 0].mean() + 0.2
    again = datasets.microscopy(6, image_size=(64, 80), cell_count=(20, 30), cell_radius=(2.0, 4.0), seed=5)
    np.testing.assert_array_equal(again.images, data.images)
    other = datasets.microscopy(6, image_size=(64, 80), cell_count=(20, 30), cell_radius=(2.0, 4.0), seed=6)
    assert not np.array_equal(other.images, data.images)


def test_microscopy_has_touching_cells():
    """Some cells touch: the mask has fewer 4-connected blobs than there are cells."""
    data = datasets.microscopy(4, image_size=(96, 96), cell_count=(50, 60), seed=0)
    blobs = [_count_components(m[..., 0] > 0) for m in data.masks]
    assert any(b < c for b, c in zip(blobs, data.counts))


def _count_components(mask):
    """Connected components by repeated label propagation (small images only)."""
    labels = np.where(mask, np.arange(mask.size).reshape(mask.shape) + 1, 0)
    while True:
        padded = np.pad(labels, 1)
        neighbours = np.stack([padded[1:-1, 1:-1], padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2],
                               padded[1:-1, 2:]])
        new = np.where(mask, neighbours.max(axis=0), 0)
        if np.array_equal(new, labels):
            return len(np.unique(labels[mask]))
        labels = new


# ----------------------------------------------------------------------------- image folders
def test_resize_matches_half_pixel_bilinear_by_hand():
    # 1-D: 4 pixels to 2: output i samples (i + 1/2) * 2 - 1/2 = 0.5, 2.5 -> means of neighbours
    image = np.array([0.0, 10.0, 20.0, 30.0], dtype=np.float32).reshape(1, 4, 1)
    np.testing.assert_allclose(directory_module.resize(image, (1, 2))[0, :, 0], [5.0, 25.0])
    # 2 pixels to 4: coordinates -0.25 (clamped to 0), 0.25, 0.75, 1.25 (upper neighbour clamped)
    image = np.array([0.0, 8.0], dtype=np.float32).reshape(1, 2, 1)
    np.testing.assert_allclose(directory_module.resize(image, (1, 4))[0, :, 0], [0.0, 2.0, 6.0, 8.0])
    np.testing.assert_allclose(directory_module.resize(image, (1, 4), "nearest")[0, :, 0], [0.0, 0.0, 8.0, 8.0])


@pytest.fixture
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras")


def test_resize_matches_keras(keras, rng):
    image = rng.uniform(0, 255, (13, 17, 3)).astype(np.float32)
    for size in [(5, 8), (20, 30), (13, 40)]:
        theirs = np.asarray(keras.ops.image.resize(image, size, interpolation="bilinear", antialias=False))
        np.testing.assert_allclose(directory_module.resize(image, size), theirs, rtol=1e-5, atol=1e-3)


@pytest.fixture
def image_tree(tmp_path):
    """cats/ (5 PNGs), dogs/ (4, one in a sub-folder), fish/ (3); assorted sizes; one non-image file."""
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    root = tmp_path / "pets"
    counts = {"cats": 5, "dogs": 4, "fish": 3}
    for c, (name, n) in enumerate(counts.items()):
        for i in range(n):
            folder = root / name / ("nested" if name == "dogs" and i == 0 else "")
            folder.mkdir(parents=True, exist_ok=True)
            h, w = 10 + 3 * i, 12 + 2 * c
            pixels = np.full((h, w, 3), 40 * c + 20, dtype=np.uint8)
            pixels[..., 1] = rng.integers(0, 256, (h, w))
            Image.fromarray(pixels).save(folder / f"{name}_{i}.png")
    (root / "cats" / "notes.txt").write_text("not an image")
    return root, counts


def test_image_dataset_from_directory_batches(image_tree):
    root, counts = image_tree
    ds = datasets.image_dataset_from_directory(root, image_size=(8, 6), batch_size=5, seed=1, verbose=False)
    assert ds.class_names == ["cats", "dogs", "fish"] and len(ds.file_paths) == 12 and len(ds) == 3
    batches = list(ds)
    assert [b[0].shape for b in batches] == [(5, 8, 6, 3), (5, 8, 6, 3), (2, 8, 6, 3)]
    assert all(x.dtype == np.float32 and y.dtype == np.int32 for x, y in batches)
    y = np.concatenate([b[1] for b in batches])
    assert np.bincount(y).tolist() == list(counts.values())
    # the red channel encodes the class (40 c + 20): labels follow the files
    x = np.concatenate([b[0] for b in batches])
    np.testing.assert_allclose(x[..., 0].mean(axis=(1, 2)), 40 * y + 20, atol=1e-3)
    assert x.max() > 200  # pixel values stay in 0..255
    epoch2 = np.concatenate([b[1] for b in ds])
    assert sorted(epoch2.tolist()) == sorted(y.tolist())


def test_image_dataset_grayscale_and_label_modes(image_tree):
    root, _ = image_tree
    x, y, names = datasets.load_images_from_directory(root, color_mode="grayscale", image_size=(7, 7),
                                                      label_mode="categorical")
    assert x.shape == (12, 7, 7, 1) and y.shape == (12, 3) and y.dtype == np.float32
    np.testing.assert_array_equal(y.sum(axis=1), 1.0)
    x, y, _ = datasets.load_images_from_directory(root, image_size=(4, 4), class_names=["fish", "cats"])
    assert x.shape == (5 + 3, 4, 4, 3) and y.tolist() == [0, 0, 0, 1, 1, 1, 1, 1]  # sorted file order
    x, y, names = datasets.load_images_from_directory(root, labels=None, image_size=(4, 4))
    assert y is None and names is None and x.shape == (12, 4, 4, 3)
    with pytest.raises(ValueError, match="exactly 2 classes"):
        datasets.image_dataset_from_directory(root, label_mode="binary", verbose=False)
    with pytest.raises(ValueError, match="class_names"):
        datasets.image_dataset_from_directory(root, class_names=["cats", "horses"], verbose=False)


def test_validation_split_subsets_are_disjoint(image_tree):
    root, _ = image_tree
    train, val = datasets.image_dataset_from_directory(root, validation_split=0.25, subset="both", seed=7,
                                                       image_size=(5, 5), verbose=False)
    assert len(train.file_paths) == 9 and len(val.file_paths) == 3
    assert not set(train.file_paths) & set(val.file_paths)
    assert len(set(train.file_paths) | set(val.file_paths)) == 12
    again = datasets.image_dataset_from_directory(root, validation_split=0.25, subset="validation", seed=7,
                                                  image_size=(5, 5), verbose=False)
    assert again.file_paths == val.file_paths
    with pytest.raises(ValueError, match="seed"):
        datasets.image_dataset_from_directory(root, validation_split=0.2, subset="training", verbose=False)


def test_split_matches_keras_file_order(image_tree, keras):
    """Same seed, same files in each subset as Keras's own indexing."""
    from keras.src.utils import dataset_utils
    root, _ = image_tree
    paths, labels, names = dataset_utils.index_directory(str(root), "inferred", formats=(".png",), seed=7,
                                                         verbose=False)
    ours, our_labels, our_names = directory_module.index_directory(str(root), seed=7)
    assert ours == paths and our_labels.tolist() == list(labels) and our_names == names


def test_image_dataset_feeds_fit_style_iteration(image_tree):
    root, _ = image_tree
    ds = datasets.image_dataset_from_directory(root, image_size=(6, 6), batch_size=4, seed=0, verbose=False)
    ds = ds.cache().shuffle(100).prefetch(2).map(lambda x, y: (x / 255.0, y))
    x, y = next(iter(ds))
    assert x.max() <= 1.0 and x.shape == (4, 6, 6, 3) and not hasattr(ds, "shape")
    arrays_x, arrays_y = ds.as_arrays()
    assert arrays_x.shape == (12, 6, 6, 3)


def test_model_fit_accepts_image_datasets(image_tree):
    from chainrule import layers, models
    root, _ = image_tree
    train, val = datasets.image_dataset_from_directory(root, validation_split=0.25, subset="both", seed=3,
                                                       image_size=(6, 6), batch_size=4, verbose=False)
    model = models.Sequential([layers.Input((6, 6, 3)), layers.Flatten(), layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    history = model.fit(train, validation_data=val, epochs=2, verbose=0)
    assert len(history.history["loss"]) == len(history.history["val_loss"]) == 2


def test_crop_and_pad_to_aspect_ratio(image_tree):
    root, _ = image_tree
    x_crop = datasets.load_images_from_directory(root, image_size=(4, 8), crop_to_aspect_ratio=True)[0]
    x_pad = datasets.load_images_from_directory(root, image_size=(4, 8), pad_to_aspect_ratio=True)[0]
    assert x_crop.shape == x_pad.shape == (12, 4, 8, 3)
    assert x_pad[..., 0].min() == 0.0 and x_crop[..., 0].min() > 0.0  # padding is black, a crop is not


def test_pillow_missing_is_explained(monkeypatch, tmp_path):
    import builtins
    real_import = builtins.__import__

    def no_pil(name, *args, **kwargs):
        if name == "PIL" or name.startswith("PIL."):
            raise ImportError("No module named 'PIL'")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_pil)
    (tmp_path / "a").mkdir()
    with pytest.raises(ImportError, match="pip install pillow"):
        datasets.image_dataset_from_directory(tmp_path, verbose=False)


# ----------------------------------------------------------------------------- HDF5
@pytest.fixture
def h5py():
    return pytest.importorskip("h5py")


def test_load_hdf5_guesses_images_and_labels(h5py, tmp_path, rng):
    path = tmp_path / "malaria.h5"
    images = rng.integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
    labels = np.array([0, 1, 1, 0, 1, 0])
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=images)
        f.create_dataset("labels", data=labels)
    x, y = datasets.load_hdf5(path)
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, labels)


def test_load_hdf5_explicit_nested_keys_and_missing_key(h5py, tmp_path, rng):
    path = tmp_path / "cells.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("train/pixels", data=rng.random((4, 3)))
        f.create_dataset("train/answer", data=np.arange(4))
        f.create_dataset("meta/ids", data=np.arange(4))
    x, y = datasets.load_hdf5(path, x_key="train/pixels", y_key="train/answer")
    assert x.shape == (4, 3) and y.tolist() == [0, 1, 2, 3]
    with pytest.raises(KeyError) as info:
        datasets.load_hdf5(path, x_key="images")
    message = str(info.value)
    assert "no dataset 'images'" in message and "'train/pixels' (4, 3)" in message and "'meta/ids'" in message
    with pytest.raises(KeyError, match="x_key"):
        datasets.load_hdf5(path)  # nothing looks like inputs: ask for the key


def test_load_hdf5_length_mismatch(h5py, tmp_path):
    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.zeros((3, 2)))
        f.create_dataset("y", data=np.zeros(4))
    with pytest.raises(ValueError, match="3 samples"):
        datasets.load_hdf5(path)


def test_h5py_missing_is_explained(monkeypatch, tmp_path):
    import builtins
    real_import = builtins.__import__

    def no_h5py(name, *args, **kwargs):
        if name == "h5py":
            raise ImportError("No module named 'h5py'")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_h5py)
    with pytest.raises(ImportError, match="pip install h5py"):
        datasets.load_hdf5(tmp_path / "x.h5")


def test_gzip_module_still_reads_our_files(tmp_path):
    """Our reproducible gzip output is ordinary gzip."""
    write_idx(tmp_path / "a-idx1-ubyte.gz", np.arange(5, dtype=np.uint8))
    with gzip.open(tmp_path / "a-idx1-ubyte.gz") as f:
        assert f.read()[-5:] == bytes(range(5))
