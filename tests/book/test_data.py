"""The Fashion-MNIST and MNIST loader: lookup, verification (size, magic, SHA-256 or the .gz's published MD5),
one-line errors (DataMissing when not found, DataError when corrupt), one load per process."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import pytest
import torch

from harness.book import data as D

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
                 layout: str = "flat", dataset: str = D.FASHION, plain: bool = False) -> dict[str, bytes]:
    """Write four generated idx files (gzipped, like Debian's, or plain) and make them the expected originals.

    Fashion-MNIST's table gets their SHA-256s; MNIST's gets the MD5 of each .gz, as torchvision publishes them
    (``plain`` also writes the decompressed files beside the .gz, as torchvision's download leaves them).
    """
    raw = directory if layout == "flat" else directory / D.source(dataset).folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    contents = {
        NAMES[0]: idx_bytes("images", n_train, 1), NAMES[1]: idx_bytes("labels", n_train, 1),
        NAMES[2]: idx_bytes("images", n_test, 2), NAMES[3]: idx_bytes("labels", n_test, 2),
    }
    md5 = {}
    for name, blob in contents.items():
        if gz:
            packed = gzip.compress(blob, mtime=0)
            (raw / f"{name}.gz").write_bytes(packed)
            md5[name] = hashlib.md5(packed).hexdigest()
        if not gz or plain:
            (raw / name).write_bytes(blob)
    if dataset == D.MNIST:
        files = {name: D.IdxFile(len(blob), int.from_bytes(blob[:4], "big"), gz_md5=md5.get(name, "0" * 32))
                 for name, blob in contents.items()}
        monkeypatch.setattr(D, "MNIST_FILES", files)
    else:
        files = {name: D.IdxFile(len(blob), int.from_bytes(blob[:4], "big"), hashlib.sha256(blob).hexdigest())
                 for name, blob in contents.items()}
        monkeypatch.setattr(D, "FILES", files)
    return contents


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No configured directory, the cache in tmp_path, and no default location that could hold the real data."""
    monkeypatch.delenv(D.ENV_DIR, raising=False)
    monkeypatch.delenv(D.MNIST_ENV_DIR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(D, "default_locations", lambda name=D.FASHION: [tmp_path / "nowhere", D.cache_dir()])
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
    monkeypatch.setattr(D, "default_locations", lambda name=D.FASHION: [isolated / "nowhere", isolated / "env"])
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
    assert not isinstance(err.value, D.DataMissing)  # found but corrupt: an error, not a skip
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
    with pytest.raises(D.DataMissing, match="not found.*apt-get install dataset-fashion-mnist") as err:
        D.load_fashion_mnist(isolated / "empty")
    assert str(isolated / "empty") in str(err.value) and "download: true" in str(err.value)
    with pytest.raises(D.DataMissing, match="nowhere"):
        D.locate()


def test_download_is_only_tried_when_allowed(isolated, monkeypatch):
    calls = []
    monkeypatch.setattr(D, "_download", lambda cache, name=D.FASHION: calls.append(cache) or cache)
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
    monkeypatch.setattr(D, "_read", lambda path, *rest: reads.append(path) or real(path, *rest))
    D.clear_cache()
    D.locate(isolated / "src")  # verifies the source and writes the cache
    D.locate(isolated / "src")  # verifies the copy in the cache
    seen = len(reads)
    D.locate(isolated / "src")
    assert seen >= 8 and len(reads) == seen  # unchanged files passed without another read


# ---- MNIST: the same path, torchvision's layout and MD5s --------------------------------------------------------


def test_mnist_in_torchvision_layout_loads_through_the_same_path(isolated, monkeypatch):
    """torchvision's download leaves MNIST/raw with each .gz and its decompressed file: the .gz is verified (MD5)."""
    make_dataset(isolated / "tv", monkeypatch, layout="torchvision", dataset=D.MNIST, plain=True)
    d = D.load(D.MNIST, isolated / "tv")
    assert d.name == "mnist" and d.root == (isolated / "tv").resolve()  # used in place: its plain files match
    assert d.train_x.shape == (200, 1, 28, 28) and d.test_y.shape == (100,) and d.test_y.dtype == torch.int64
    assert not (isolated / "cache").exists()
    from torchvision.datasets import MNIST

    tv = MNIST(str(d.root), train=True, download=False)
    assert torch.equal(tv.data.unsqueeze(1).float() / 255, d.train_x)
    assert D.load(D.MNIST, isolated / "tv").train_x is d.train_x  # decoded once per process
    assert D.torchvision_dataset(D.MNIST, d.root, train=False).targets.tolist() == d.test_y.tolist()


def test_mnist_gz_only_is_copied_to_the_cache_with_its_gz_and_found_there_later(isolated, monkeypatch):
    make_dataset(isolated / "dl", monkeypatch, dataset=D.MNIST)  # the four .gz, flat
    monkeypatch.setenv(D.MNIST_ENV_DIR, str(isolated / "dl"))
    d = D.load("mnist")
    raw = D.cache_dir() / "MNIST" / "raw"
    assert d.root == D.cache_dir().resolve() and all((raw / n).is_file() and (raw / f"{n}.gz").is_file()
                                                      for n in NAMES)
    monkeypatch.delenv(D.MNIST_ENV_DIR)
    assert D._find_in(D.cache_dir(), D.MNIST) == {n: raw / f"{n}.gz" for n in NAMES}  # the MD5-checkable form
    assert D.locate(name=D.MNIST) == D.cache_dir()


def test_mnist_default_roots_are_torchvision_s(tmp_path, monkeypatch):
    """Unconfigured, ./data/MNIST/raw (torchvision's examples) is found; a plain copy that differs is not used."""
    monkeypatch.delenv(D.MNIST_ENV_DIR, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    assert D.default_locations(D.MNIST) == [Path("data"), Path("../data"), tmp_path / "home" / "Datasets",
                                            tmp_path / "cache" / "d2l-harness"]
    contents = make_dataset(tmp_path / "work" / "data", monkeypatch, layout="torchvision", dataset=D.MNIST,
                            plain=True)
    assert D.locate(name=D.MNIST) == Path("data")
    plain = tmp_path / "work" / "data" / "MNIST" / "raw" / NAMES[3]
    damaged = bytearray(contents[NAMES[3]])
    damaged[-1] ^= 0xFF
    plain.write_bytes(bytes(damaged))  # same size and magic, other bytes than the verified .gz
    assert D.locate(name=D.MNIST) == D.cache_dir()
    assert (D.cache_dir() / "MNIST" / "raw" / NAMES[3]).read_bytes() == contents[NAMES[3]]


def test_mnist_missing_is_data_missing_naming_where_it_looked_and_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.delenv(D.MNIST_ENV_DIR, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(D.DataMissing) as err:
        D.load(D.MNIST)
    text = str(err.value)
    assert text.startswith(f"data, ../data, {tmp_path / 'home' / 'Datasets'}, {tmp_path / 'cache' / 'd2l-harness'}: "
                           "MNIST not found")
    assert "MNIST_DIR" in text and "download: true" in text and "MNIST/raw" in text and "\n" not in text
    assert "apt-get" not in text  # Debian has no MNIST package
    with pytest.raises(D.DataMissing, match=f"^{tmp_path / 'empty'}: MNIST not found"):
        D.load(D.MNIST, tmp_path / "empty")
    monkeypatch.setenv(D.MNIST_ENV_DIR, str(tmp_path / "env"))
    with pytest.raises(D.DataMissing, match=f"^{tmp_path / 'env'}: MNIST not found"):
        D.locate(name=D.MNIST)


@pytest.mark.parametrize("damage, message", [
    ("recompressed", "MD5"),  # the bytes are fine, but the .gz is not the one whose checksum is published
    ("cut", "MD5"),
])
def test_a_corrupt_mnist_gz_is_a_data_error_not_data_missing(isolated, monkeypatch, damage, message):
    contents = make_dataset(isolated / "bad", monkeypatch, dataset=D.MNIST)
    path = isolated / "bad" / f"{NAMES[0]}.gz"
    if damage == "recompressed":
        path.write_bytes(gzip.compress(contents[NAMES[0]], compresslevel=1, mtime=0))
    else:
        path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(D.DataError) as err:
        D.load(D.MNIST, isolated / "bad")
    assert not isinstance(err.value, D.DataMissing)
    text = str(err.value)
    assert text.startswith(f"{path}: corrupt MNIST file: {message}") and "torchvision's published checksum" in text
    assert D.MNIST_ENV_DIR in text and "\n" not in text


@pytest.mark.parametrize("damage, message", [
    ("truncate", "bytes decompressed, expected"),
    ("magic", "idx magic number 2049, expected 2051"),
])
def test_plain_mnist_files_are_checked_by_size_and_magic(isolated, monkeypatch, damage, message):
    contents = make_dataset(isolated / "plain", monkeypatch, gz=False, dataset=D.MNIST)
    blob = bytearray(contents[NAMES[0]])
    if damage == "truncate":
        blob = blob[:-1]
    else:
        blob[:4] = (2049).to_bytes(4, "big")
    (isolated / "plain" / NAMES[0]).write_bytes(bytes(blob))
    with pytest.raises(D.DataError, match=message) as err:
        D.load(D.MNIST, isolated / "plain")
    assert not isinstance(err.value, D.DataMissing)


def test_fashion_mnist_files_are_not_taken_for_mnist(isolated, monkeypatch):
    """Same names, same sizes: plain Fashion-MNIST files pass MNIST's size and magic, but not its lookalike check."""
    contents = make_dataset(isolated / "fashion", monkeypatch, gz=False)
    monkeypatch.setattr(D, "MNIST_FILES", {n: D.IdxFile(len(b), int.from_bytes(b[:4], "big"), gz_md5="0" * 32)
                                           for n, b in contents.items()})
    assert D.locate(isolated / "fashion") == D.cache_dir()
    with pytest.raises(D.DataError, match="its bytes are Fashion-MNIST's train-images-idx3-ubyte"):
        D.locate(isolated / "fashion", name=D.MNIST)


def test_mnist_download_only_when_allowed_and_a_failed_one_is_data_missing(isolated, monkeypatch):
    import torchvision.datasets

    calls = []

    def offline(root, train, download):
        calls.append((root, train, download))
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried https://...")

    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    with pytest.raises(D.DataMissing):
        D.locate(isolated / "empty", name=D.MNIST)
    assert calls == []
    with pytest.raises(D.DataMissing, match="MNIST not found, and torchvision could not download it "
                                            r"\(RuntimeError: Error downloading train-images-idx3-ubyte.gz:\)") as err:
        D.load(D.MNIST, isolated / "empty", download=True)
    assert calls == [(str(D.cache_dir()), True, True)] and "\n" not in str(err.value)


def test_mnist_checksums_are_torchvision_s_published_ones():
    from torchvision.datasets import MNIST

    assert {f"{n}.gz": f.gz_md5 for n, f in D.MNIST_FILES.items()} == dict(MNIST.resources)
    assert [(f.size, f.magic, f.sha256) for f in D.MNIST_FILES.values()] == [
        (47_040_016, 2051, None), (60_008, 2049, None), (7_840_016, 2051, None), (10_008, 2049, None)]


def test_names_and_aliases():
    assert D.FashionMNIST is D.ImageSet and D.DATASETS == ("fashion-mnist", "mnist")
    assert issubclass(D.DataMissing, D.DataError)
    with pytest.raises(ValueError, match="unknown dataset 'cifar'"):
        D.load("cifar")
