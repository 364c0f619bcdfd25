"""Fashion-MNIST and MNIST, found where they are already installed, verified, and loaded once into tensors.

``load(name)`` finds the four idx files (``locate``: a configured directory, else the book's and torchvision's
roots, Debian's package, this harness's cache, and torchvision's download only when allowed), verifies each one
every time it is used (size, idx magic, a published or recorded checksum), and decodes them once per process.
Not found raises ``DataMissing``; found but corrupt, ``DataError``. docs/internals.md has where and how.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import tempfile
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

FASHION, MNIST = "fashion-mnist", "mnist"
DATASETS = (FASHION, MNIST)

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
ENV_DIR = "FASHION_MNIST_DIR"
HOW_TO_GET = (f"install it with `apt-get install dataset-fashion-mnist`, set {ENV_DIR} to a directory holding the "
              "four idx files, or allow torchvision's download (spec setting `download: true`)")

MNIST_DEBIAN_DIR: Path | None = None  # Debian packages no MNIST (bookworm: `apt-cache search mnist`)
MNIST_ENV_DIR = "MNIST_DIR"
MNIST_HOW_TO_GET = (f"set {MNIST_ENV_DIR} to a directory holding the four idx files (plain, or .gz as torchvision "
                    "downloads them), place torchvision's MNIST/raw files under ./data, ../data or ~/Datasets, or "
                    "allow torchvision's download (spec setting `download: true`)")


@dataclass(frozen=True)
class IdxFile:
    """What one idx file must be: decompressed size and magic, and a checksum where one is known.

    ``sha256`` is of the decompressed bytes; ``gz_md5`` is of the ``.gz`` as published (torchvision's resources).
    """

    size: int
    magic: int
    sha256: str | None = None
    gz_md5: str | None = None


# The original Fashion-MNIST files (Xiao et al. 2017), decompressed. Computed once from Debian's
# dataset-fashion-mnist 2020 package; the same bytes as torchvision's download once gunzipped.
FILES: dict[str, IdxFile] = {
    "train-images-idx3-ubyte": IdxFile(47_040_016, 2051,
                                       "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
    "train-labels-idx1-ubyte": IdxFile(60_008, 2049,
                                       "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
    "t10k-images-idx3-ubyte": IdxFile(7_840_016, 2051,
                                      "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
    "t10k-labels-idx1-ubyte": IdxFile(10_008, 2049,
                                      "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
}

# MNIST (LeCun et al. 1998): decompressed sizes and magic numbers, and the MD5 of each .gz exactly as torchvision
# lists it (torchvision 0.29 ``datasets/mnist.py``, ``MNIST.resources``). No SHA-256 of the decompressed bytes.
MNIST_FILES: dict[str, IdxFile] = {
    "train-images-idx3-ubyte": IdxFile(47_040_016, 2051, gz_md5="f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    "train-labels-idx1-ubyte": IdxFile(60_008, 2049, gz_md5="d53e105ee54ea40749a09fcbcd1e9432"),
    "t10k-images-idx3-ubyte": IdxFile(7_840_016, 2051, gz_md5="9fb629c4189551a2d022fa330f9573f3"),
    "t10k-labels-idx1-ubyte": IdxFile(10_008, 2049, gz_md5="ec29112dd5afa0611ce80d1b7f02629c"),
}


@dataclass(frozen=True)
class Source:
    """One dataset's name, torchvision class (also its folder), environment variable, places and files."""

    name: str
    title: str
    folder: str  # torchvision's class name, and its folder: ``<root>/<folder>/raw``
    env: str
    debian: Path | None
    files: dict[str, IdxFile]
    how_to_get: str


def source(name: str) -> Source:
    """The dataset ``name`` ("fashion-mnist" or "mnist"), read from the module's tables when called."""
    if name == FASHION:
        return Source(FASHION, "Fashion-MNIST", "FashionMNIST", ENV_DIR, DEBIAN_DIR, FILES, HOW_TO_GET)
    if name == MNIST:
        return Source(MNIST, "MNIST", "MNIST", MNIST_ENV_DIR, MNIST_DEBIAN_DIR, MNIST_FILES, MNIST_HOW_TO_GET)
    raise ValueError(f"unknown dataset {name!r}: expected one of {', '.join(DATASETS)}")


class DataError(RuntimeError):
    """A dataset is missing, unreadable or corrupt; the message is one line and says how to get it."""


class DataMissing(DataError):
    """A dataset was not found where it was looked for (nor downloaded): nothing is there to verify."""


@dataclass(frozen=True)
class ImageSet:
    """A whole dataset as tensors: images (N, 1, 28, 28) float32 in [0, 1], labels int64."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    root: Path  # the torchvision root (``root/FashionMNIST/raw``, ``root/MNIST/raw``) the tensors were read from
    name: str = FASHION  # which dataset: "fashion-mnist" or "mnist"
    digest: str = ""  # of the four verified files' decompressed bytes (``files_digest``)

    def described(self) -> dict[str, Any]:
        """What a run records of the data it used: name, digest, where it was read, how many examples."""
        return {"name": self.name, "digest": self.digest, "source": str(self.root),
                "profile": {"train_examples": len(self.train_y), "test_examples": len(self.test_y)}}

    def to(self, device: str | torch.device) -> ImageSet:
        return replace(self, train_x=self.train_x.to(device), train_y=self.train_y.to(device),
                       test_x=self.test_x.to(device), test_y=self.test_y.to(device))


FashionMNIST = ImageSet  # the name it had when Fashion-MNIST was the only dataset


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "d2l-harness"


def default_locations(name: str = FASHION) -> list[Path]:
    """Where an unconfigured search for dataset ``name`` looks, in order (docs/internals.md lists them)."""
    debian = source(name).debian
    return [Path("data"), Path("../data"), Path.home() / "Datasets", *([debian] if debian else []), cache_dir()]


def _find_in(location: Path, name: str = FASHION) -> dict[str, Path] | None:
    """The four files under one location (directly, raw/ or <folder>/raw/, plain or .gz), or None.

    A file with a published checksum of its .gz (MNIST) is taken gzipped where both forms are there.
    """
    src = source(name)
    for sub in (location, location / "raw", location / src.folder / "raw"):
        found = {}
        for file, want in src.files.items():
            forms = (sub / f"{file}.gz", sub / file) if want.gz_md5 else (sub / file, sub / f"{file}.gz")
            for candidate in forms:
                if candidate.is_file():
                    found[file] = candidate
                    break
        if len(found) == len(src.files):
            return found
    return None


def _read(path: Path, name: str = FASHION) -> bytes:
    """A file's bytes as stored, or a DataError."""
    try:
        return path.read_bytes()
    except OSError as err:
        src = source(name)
        raise DataError(f"{path}: cannot read {src.title} ({err.strerror or err}); {src.how_to_get}") from None


def _gunzip(stored: bytes, path: Path, name: str) -> bytes:
    try:
        return gzip.decompress(stored)
    except (OSError, EOFError, zlib.error) as err:
        src = source(name)
        raise DataError(f"{path}: cannot read {src.title} ({err}); {src.how_to_get}") from None


def verify_bytes(file: str, data: bytes, path: Path, want: IdxFile | None = None, name: str = FASHION) -> str:
    """Size, magic number and (where known) SHA-256 of one decompressed idx file; its SHA-256, or a DataError."""
    src = source(name)
    want = want or src.files[file]
    corrupt = f"{path}: corrupt {src.title} file"
    if len(data) != want.size:
        raise DataError(f"{corrupt}: {len(data)} bytes decompressed, expected {want.size}; {src.how_to_get}")
    magic = int.from_bytes(data[:4], "big")
    if magic != want.magic:
        raise DataError(f"{corrupt}: idx magic number {magic}, expected {want.magic}; {src.how_to_get}")
    digest = hashlib.sha256(data).hexdigest()
    if want.sha256 is not None and digest != want.sha256:
        raise DataError(f"{corrupt}: SHA-256 {digest[:12]}... of the decompressed bytes, expected "
                        f"{want.sha256[:12]}...; {src.how_to_get}")
    for other in DATASETS:  # same names, same sizes: a plain file checked by size and magic could be the other's
        if other != name and digest in {f.sha256 for f in source(other).files.values()}:
            raise DataError(f"{corrupt}: its bytes are {source(other).title}'s {file} (same SHA-256), not "
                            f"{src.title}'s; {src.how_to_get}")
    return digest


def _decoded(file: str, path: Path, want: IdxFile, name: str) -> tuple[bytes, bytes]:
    """(the bytes as stored, the decompressed bytes) of one file, both verified: .gz MD5 where published, then
    size, magic and SHA-256 where known."""
    stored = _read(path, name)
    if path.suffix != ".gz":
        verify_bytes(file, stored, path, want, name)
        return stored, stored
    if want.gz_md5 is not None:
        md5 = hashlib.md5(stored, usedforsecurity=False).hexdigest()
        if md5 != want.gz_md5:
            src = source(name)
            raise DataError(f"{path}: corrupt {src.title} file: MD5 {md5[:12]}... of the .gz, expected "
                            f"{want.gz_md5[:12]}... (torchvision's published checksum); {src.how_to_get}")
    data = _gunzip(stored, path, name)
    verify_bytes(file, data, path, want, name)
    return stored, data


def verify(files: dict[str, Path], name: str = FASHION,
           wants: dict[str, IdxFile] | None = None) -> dict[str, str]:
    """Verify every file; returns the SHA-256 of each one's decompressed bytes.

    A file already verified in this process, unchanged since (size, mtime, inode), passes without a read.
    """
    wants = wants or source(name).files
    digests = {}
    for file, path in files.items():
        try:
            st = path.stat()
        except OSError as err:
            src = source(name)
            raise DataError(f"{path}: cannot read {src.title} ({err.strerror or err}); {src.how_to_get}") from None
        digests[file] = _verify_version(file, str(path), st.st_size, st.st_mtime_ns, st.st_ino, wants[file], name)
    return digests


@functools.cache
def _verify_version(file: str, path: str, size: int, mtime_ns: int, inode: int, want: IdxFile, name: str) -> str:
    return hashlib.sha256(_decoded(file, Path(path), want, name)[1]).hexdigest()


def _copies(files: dict[str, Path], digests: dict[str, str], name: str) -> bool:
    """Are these plain files copies of the verified source (same size, magic and SHA-256)?"""
    table = source(name).files
    if not all(p.is_file() for p in files.values()):
        return False
    try:
        verify(files, name, {f: replace(table[f], sha256=digests[f], gz_md5=None) for f in files})
    except DataError:
        return False
    return True


def _write(path: Path, data: bytes) -> None:
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as tmp:
        tmp.write(data)
    os.chmod(tmp.name, 0o644)
    os.replace(tmp.name, path)


def _materialise(files: dict[str, Path], cache: Path, name: str = FASHION) -> Path:
    """A torchvision root holding the verified, decompressed files; plain files in place are used as they are.

    The source is verified every time, whether or not the cache holds a copy: the cache is only ever a copy of
    a source that passed, never a substitute for one.
    """
    src = source(name)
    digests = verify(files, name)
    raw_dirs = {p.parent for p in files.values()}
    if len(raw_dirs) == 1:
        raw = raw_dirs.pop()
        if (raw.name == "raw" and raw.parent.name == src.folder and not (raw.parent / "processed").exists()
                and _copies({f: raw / f for f in files if raw / f != files[f]}, digests, name)):
            return raw.parent.parent  # torchvision's layout already (a processed/ folder would be read instead)
    target = cache / src.folder / "raw"
    if _copies({f: target / f for f in files}, digests, name):
        return cache
    target.mkdir(parents=True, exist_ok=True)
    for file, path in files.items():
        want = src.files[file]
        stored, data = _decoded(file, path, want, name)  # the bytes copied are the bytes checked
        _write(target / file, data)
        if path.suffix == ".gz" and want.gz_md5 is not None:
            _write(target / path.name, stored)  # keeps the cached copy checkable against the published MD5
    return cache


def _download(cache: Path, name: str = FASHION) -> Path:
    from torchvision import datasets  # a slow import: only loading data needs it

    src = source(name)
    raw = cache / src.folder / "raw"
    try:
        for train in (True, False):
            getattr(datasets, src.folder)(str(cache), train=train, download=True)
    except Exception as err:  # URLError, RuntimeError, ...: one line either way
        first = str(err).splitlines()[0] if str(err) else ""
        raise DataMissing(f"{cache}: {src.title} not found, and torchvision could not download it "
                          f"({type(err).__name__}: {first}); {src.how_to_get}") from None
    if _find_in(raw, name) is None:
        raise DataMissing(f"{cache}: torchvision's download left no {src.title} idx files; {src.how_to_get}")
    for gz in raw.glob("*.gz"):
        want = src.files.get(gz.name.removesuffix(".gz"))
        if want is None or want.gz_md5 is None:
            gz.unlink()  # no published checksum to check it by: the plain files are what torchvision reads
    return _materialise(_find_in(raw, name), cache, name)


def find_files(root: str | Path | None = None, name: str = FASHION) -> tuple[dict[str, Path] | None, list[Path], Any]:
    """The four idx files of ``name`` as stored (unverified), where ``locate`` looks; the places looked; the
    configured place (``root`` or the dataset's variable), if any."""
    src = source(name)
    configured = root if root is not None else os.environ.get(src.env) or None
    places = [Path(configured).expanduser()] if configured is not None else default_locations(name)
    for place in places:
        files = _find_in(place, name)
        if files is not None:
            return files, places, configured
    return None, places, configured


def locate(root: str | Path | None = None, download: bool = False, cache: Path | None = None,
           name: str = FASHION) -> Path:
    """A verified torchvision root: ``torchvision.datasets.FashionMNIST(root, download=False)`` (``MNIST``) works
    on it. Raises ``DataMissing`` when the dataset is nowhere looked, ``DataError`` when it is found but corrupt."""
    src = source(name)
    cache = cache or cache_dir()
    found, places, configured = find_files(root, name)
    if found is not None:
        return _materialise(found, cache, name)
    if download:
        return _download(cache, name)
    where = str(places[0]) if configured is not None else ", ".join(str(p) for p in places)
    raise DataMissing(f"{where}: {src.title} not found (looked for train-images-idx3-ubyte[.gz] and the other three "
                      f"idx files, directly, under raw/ and under {src.folder}/raw/); {src.how_to_get}")


def torchvision_dataset(name: str, root: str | Path, train: bool, transform=None):
    """torchvision's own dataset class for ``name`` on a root ``locate`` returned (never downloads)."""
    from torchvision import datasets  # a slow import: only loading data needs it

    return getattr(datasets, source(name).folder)(str(root), train=train, transform=transform, download=False)


@functools.cache
def _tensors(torchvision_root: Path, name: str = FASHION) -> tuple[torch.Tensor, ...]:
    """Parse once per process with torchvision's own reader; images scaled as ToTensor does (/255)."""
    out = []
    for train in (True, False):
        ds = torchvision_dataset(name, torchvision_root, train)
        out += [ds.data.unsqueeze(1).to(torch.float32).div_(255), ds.targets.to(torch.int64)]
    return tuple(out)


def files_digest(torchvision_root: Path, name: str = FASHION) -> str:
    """One digest of a dataset: SHA-256 over its four files' own (decompressed, verified; cached per process)."""
    files = _find_in(torchvision_root / source(name).folder / "raw", name) or {}
    lines = "".join(f"{file}={digest}\n" for file, digest in sorted(verify(files, name).items()))
    return hashlib.sha256(lines.encode()).hexdigest()[:16]


def load(name: str, root: str | Path | None = None, device: str = "cpu", download: bool = False) -> ImageSet:
    """The verified dataset ``name``, decoded once per process and moved to ``device``.

    Raises ``DataMissing`` when it is not found (nor downloaded), ``DataError`` when it is found but corrupt.
    """
    tv_root = locate(root, download=download, name=name).resolve()
    train_x, train_y, test_x, test_y = _tensors(tv_root, name)
    data = ImageSet(train_x, train_y, test_x, test_y, tv_root, name, files_digest(tv_root, name))
    return data if str(device) == "cpu" else data.to(device)


def load_fashion_mnist(root: str | Path | None = None, device: str = "cpu", *,
                       download: bool = False) -> ImageSet:
    """``load("fashion-mnist", ...)``."""
    return load(FASHION, root, device, download)


def clear_cache() -> None:
    """Forget the decoded tensors and the files verified so far (tests)."""
    _tensors.cache_clear()
    _verify_version.cache_clear()


__all__ = ["DATASETS", "DataError", "DataMissing", "FASHION", "FILES", "FashionMNIST", "IdxFile", "ImageSet", "MNIST",
           "MNIST_FILES", "Source", "clear_cache", "load", "load_fashion_mnist", "locate", "source",
           "torchvision_dataset"]
