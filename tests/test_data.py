"""The Fashion-MNIST loader: lookup, verification (size, magic, SHA-256), one-line errors, one load per process."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import pytest
import torch

from harness import data as D

NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def idx_bytes(kind: str, n: int, seed: int) -> bytes:
    """A small valid idx file: images (n, 28, 28) uint8 with a class-dependent bright band, or labels 0..9."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 10
    labels = labels[torch.randperm(n, generator=g)]
    if kind == "labels":
        return (2049).to_bytes(4, "big") + n.to_bytes(4, "big") + bytes(labels.to(torch.uint8).tolist())
    images = torch.randint(0, 60, (n, 28, 28), generator=g, dtype=torch.uint8)
    for i, c in enumerate(labels.tolist()):
        images[i, 2 * c + 4:2 * c + 8, 4:24] = 255  # the class is a horizontal bar at its own height
    header = (2051).to_bytes(4, "big") + n.to_bytes(4, "big") + (28).to_bytes(4, "big") + (28).to_bytes(4, "big")
    return header + images.numpy().tobytes()


def make_dataset(directory: Path, monkeypatch, n_train: int = 200, n_test: int = 100, gz: bool = True,
                 layout: str = "flat") -> dict[str, bytes]:
    """Write four generated idx files (gzipped, like Debian's, or plain) and make them the expected originals."""
    raw = directory if layout == "flat" else directory / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    contents = {
        NAMES[0]: idx_bytes("images", n_train, 1), NAMES[1]: idx_bytes("labels", n_train, 1),
        NAMES[2]: idx_bytes("images", n_test, 2), NAMES[3]: idx_bytes("labels", n_test, 2),
    }
    for name, blob in contents.items():
        if gz:
            (raw / f"{name}.gz").write_bytes(gzip.compress(blob, mtime=0))
        else:
            (raw / name).write_bytes(blob)
    files = {name: D.IdxFile(len(blob), int.from_bytes(blob[:4], "big"), hashlib.sha256(blob).hexdigest())
             for name, blob in contents.items()}
    monkeypatch.setattr(D, "FILES", files)
    return contents


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No configured directory, the cache in tmp_path, and no default location that could hold the real data."""
    monkeypatch.delenv(D.ENV_DIR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(D, "default_locations", lambda: [tmp_path / "nowhere", D.cache_dir()])
    return tmp_path


def test_loads_gzipped_idx_into_tensors_via_a_torchvision_root(isolated, monkeypatch):
    make_dataset(isolated / "debian", monkeypatch)
    d = D.load_fashion_mnist(isolated / "debian")
    assert d.train_x.shape == (200, 1, 28, 28) and d.train_x.dtype == torch.float32
    assert d.test_x.shape == (100, 1, 28, 28) and d.test_y.dtype == torch.int64
    assert 0.0 <= float(d.train_x.min()) and float(d.train_x.max()) == 1.0
    assert sorted(d.train_y.unique().tolist()) == list(range(10))
    # decompressed once into the cache, in torchvision's layout, and parsed by torchvision
    assert d.root == (isolated / "cache" / "d2l-harness").resolve()
    assert all((d.root / "FashionMNIST" / "raw" / n).is_file() for n in NAMES)
    from torchvision.datasets import FashionMNIST

    tv = FashionMNIST(str(d.root), train=False, download=False)
    assert torch.equal(tv.data.unsqueeze(1).float() / 255, d.test_x)
    # the decoded tensors are cached in-process
    again = D.load_fashion_mnist(isolated / "debian")
    assert again.train_x is d.train_x


def test_plain_files_in_torchvision_layout_are_used_in_place(isolated, monkeypatch):
    make_dataset(isolated / "tv", monkeypatch, gz=False, layout="torchvision")
    assert D.locate(isolated / "tv") == isolated / "tv"
    assert not (isolated / "cache").exists()


def test_environment_variable_and_default_locations(isolated, monkeypatch):
    make_dataset(isolated / "env", monkeypatch)
    monkeypatch.setenv(D.ENV_DIR, str(isolated / "env"))
    assert D.load_fashion_mnist().train_x.shape[0] == 200
    monkeypatch.delenv(D.ENV_DIR)
    monkeypatch.setattr(D, "default_locations", lambda: [isolated / "nowhere", isolated / "env"])
    assert D.locate() == D.cache_dir()


@pytest.mark.parametrize("damage, message", [
    ("flip", "SHA-256"),
    ("truncate", "bytes decompressed, expected"),
    ("magic", "idx magic number 2049, expected 2051"),
    ("garbage", "cannot read"),
])
def test_corrupt_file_gives_one_line_error_with_the_path_and_how_to_get_it(isolated, monkeypatch, damage, message):
    contents = make_dataset(isolated / "bad", monkeypatch)
    path = isolated / "bad" / f"{NAMES[0]}.gz"
    blob = bytearray(contents[NAMES[0]])
    if damage == "flip":
        blob[5000] ^= 0xFF
    elif damage == "truncate":
        blob = blob[:-100]
    elif damage == "magic":
        blob[:4] = (2049).to_bytes(4, "big")
    if damage == "garbage":
        path.write_bytes(gzip.compress(bytes(blob))[:200])  # a cut gzip stream
    else:
        path.write_bytes(gzip.compress(bytes(blob)))
    with pytest.raises(D.DataError) as err:
        D.load_fashion_mnist(isolated / "bad")
    text = str(err.value)
    assert message in text and str(path) in text
    assert "apt-get install dataset-fashion-mnist" in text and D.ENV_DIR in text and "\n" not in text


def test_corrupt_cached_copy_is_rebuilt_from_the_verified_source(isolated, monkeypatch):
    make_dataset(isolated / "deb", monkeypatch)
    root = D.locate(isolated / "deb")
    cached = root / "FashionMNIST" / "raw" / NAMES[2]
    cached.write_bytes(b"\x00" * 16)
    assert D.locate(isolated / "deb") == root
    D.verify({NAMES[2]: cached})


def test_missing_data_says_where_it_looked_and_how_to_get_it(isolated, monkeypatch):
    (isolated / "empty").mkdir()
    with pytest.raises(D.DataError, match="not found.*apt-get install dataset-fashion-mnist") as err:
        D.load_fashion_mnist(isolated / "empty")
    assert str(isolated / "empty") in str(err.value) and "download: true" in str(err.value)
    with pytest.raises(D.DataError, match="nowhere"):
        D.locate()


def test_download_is_only_tried_when_allowed(isolated, monkeypatch):
    calls = []
    monkeypatch.setattr(D, "_download", lambda cache: calls.append(cache) or cache)
    with pytest.raises(D.DataError):
        D.locate(isolated / "empty")
    assert calls == []
    assert D.locate(isolated / "empty", download=True) == D.cache_dir() and calls == [D.cache_dir()]


@pytest.mark.skipif(not D.DEBIAN_DIR.is_dir(), reason="dataset-fashion-mnist is not installed")
def test_the_installed_debian_package_verifies(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    files = D._find_in(D.DEBIAN_DIR)
    assert files is not None and all(p.suffix == ".gz" for p in files.values())
    D.verify(files)  # the recompressed .gz hold the original bytes


def test_a_corrupted_configured_file_is_caught_though_the_cache_holds_a_verified_copy(isolated, monkeypatch):
    contents = make_dataset(isolated / "configured", monkeypatch)
    monkeypatch.setenv(D.ENV_DIR, str(isolated / "configured"))
    first = D.locate()
    assert first == D.cache_dir() and (first / "FashionMNIST" / "raw" / NAMES[1]).is_file()  # a verified copy
    broken = bytearray(contents[NAMES[1]])
    broken[-1] ^= 0xFF
    (isolated / "configured" / f"{NAMES[1]}.gz").write_bytes(gzip.compress(bytes(broken), mtime=0))
    with pytest.raises(D.DataError) as err:
        D.load_fashion_mnist()
    message = str(err.value)
    assert message.startswith(f"{isolated / 'configured' / NAMES[1]}.gz: corrupt Fashion-MNIST file: SHA-256")
    assert "\n" not in message


def test_a_source_is_verified_once_per_version_in_a_process(isolated, monkeypatch):
    make_dataset(isolated / "src", monkeypatch)
    reads = []
    real = D._read
    monkeypatch.setattr(D, "_read", lambda path: reads.append(path) or real(path))
    D.clear_cache()
    D.locate(isolated / "src")  # verifies the source and writes the cache
    D.locate(isolated / "src")  # verifies the copy in the cache
    seen = len(reads)
    D.locate(isolated / "src")
    assert seen >= 8 and len(reads) == seen  # unchanged files passed without another read
