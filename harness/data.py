"""Fashion-MNIST, found where it is already installed, verified, and loaded once into tensors.

Where the four idx files are looked for (the first location that holds all four is used):

1. the ``root`` argument (a spec's ``data_dir`` setting), else the ``FASHION_MNIST_DIR``
   environment variable: a configured directory is the only place looked at;
2. torchvision's and the book's conventional roots: ``./data`` (torchvision's examples and
   ``d2l.load_data_fashion_mnist(root='../data')``), ``../data`` and ``~/Datasets`` (Dive-into-DL-PyTorch's
   ``~/Datasets/FashionMNIST``);
3. Debian's ``dataset-fashion-mnist`` package: ``/usr/share/datasets/fashion-mnist``;
4. this harness's cache ``~/.cache/d2l-harness`` (``$XDG_CACHE_HOME``), where an earlier download went;
5. only when ``download=True``: torchvision's own download into the cache.

In each location the files may sit directly, under ``raw/`` or under torchvision's
``FashionMNIST/raw/``, plain (``train-images-idx3-ubyte``) or gzipped (``...-ubyte.gz``).

Every file is verified before use, each time it is used, whether or not the cache holds a copy: its
decompressed size, its idx magic number (2051 for images, 2049 for labels) and the SHA-256 of the
decompressed bytes (a process checks a file once per version: size, mtime and inode). Debian
recompressed the ``.gz`` files, so their MD5s differ from torchvision's resource list (which checks
the .gz as downloaded); the decompressed bytes are the originals, so the SHA-256s below are of the
decompressed files (the decompressed MD5s are 8181f547... / 15d48437... for t10k images / labels,
f4a8712d... / 9018921c... for train images / labels, if you compare with other lists). Gzipped files
are decompressed once into the cache in torchvision's layout (``<cache>/FashionMNIST/raw``), so that
``torchvision.datasets.FashionMNIST(root, download=False)`` both parses them for the fast loop and
serves the tutorial's own pipeline. The cache is only ever a copy of a verified source. Anything
missing or corrupt raises one ``DataError`` whose
one-line message names the path and says how to get the data.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import torch

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
ENV_DIR = "FASHION_MNIST_DIR"
HOW_TO_GET = (f"install it with `apt-get install dataset-fashion-mnist`, set {ENV_DIR} to a directory holding the "
              "four idx files, or allow torchvision's download (spec setting `download: true`)")


@dataclass(frozen=True)
class IdxFile:
    """What one decompressed idx file must be."""

    size: int
    magic: int
    sha256: str


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


class DataError(RuntimeError):
    """Fashion-MNIST is missing or corrupt; the message is one line and says how to get it."""


@dataclass(frozen=True)
class FashionMNIST:
    """The whole dataset as tensors: images (N, 1, 28, 28) float32 in [0, 1], labels int64."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    root: Path  # the torchvision root (``root/FashionMNIST/raw``) the tensors were read from

    def to(self, device: str | torch.device) -> FashionMNIST:
        return FashionMNIST(self.train_x.to(device), self.train_y.to(device), self.test_x.to(device),
                            self.test_y.to(device), self.root)


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "d2l-harness"


def default_locations() -> list[Path]:
    """Where an unconfigured search looks, in order (see the module docstring)."""
    return [Path("data"), Path("../data"), Path.home() / "Datasets", DEBIAN_DIR, cache_dir()]


def _find_in(location: Path) -> dict[str, Path] | None:
    """The four files under one location (directly, raw/ or FashionMNIST/raw/, plain or .gz), or None."""
    for sub in (location, location / "raw", location / "FashionMNIST" / "raw"):
        found = {}
        for name in FILES:
            for candidate in (sub / name, sub / f"{name}.gz"):
                if candidate.is_file():
                    found[name] = candidate
                    break
        if len(found) == len(FILES):
            return found
    return None


def _read(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"{path}: cannot read Fashion-MNIST ({err}); {HOW_TO_GET}") from None


def verify_bytes(name: str, data: bytes, path: Path) -> None:
    """Size, magic number and SHA-256 of one decompressed idx file, or a DataError."""
    want = FILES[name]
    if len(data) != want.size:
        raise DataError(f"{path}: corrupt Fashion-MNIST file: {len(data)} bytes decompressed, expected {want.size}; "
                        f"{HOW_TO_GET}")
    magic = int.from_bytes(data[:4], "big")
    if magic != want.magic:
        raise DataError(f"{path}: corrupt Fashion-MNIST file: idx magic number {magic}, expected {want.magic}; "
                        f"{HOW_TO_GET}")
    digest = hashlib.sha256(data).hexdigest()
    if digest != want.sha256:
        raise DataError(f"{path}: corrupt Fashion-MNIST file: SHA-256 {digest[:12]}... of the decompressed bytes, "
                        f"expected {want.sha256[:12]}...; {HOW_TO_GET}")


def verify(files: dict[str, Path]) -> None:
    """Verify every file; a file already verified in this process, unchanged since (size, mtime, inode), passes."""
    for name, path in files.items():
        try:
            st = path.stat()
        except OSError as err:
            raise DataError(f"{path}: cannot read Fashion-MNIST ({err.strerror or err}); {HOW_TO_GET}") from None
        _verify_version(name, str(path), st.st_size, st.st_mtime_ns, st.st_ino, FILES[name])


@functools.cache
def _verify_version(name: str, path: str, size: int, mtime_ns: int, inode: int, want: IdxFile) -> None:
    verify_bytes(name, _read(Path(path)), Path(path))


def _materialise(files: dict[str, Path], cache: Path) -> Path:
    """A torchvision root holding the verified, decompressed files; plain files in place are used as they are.

    The source is verified every time, whether or not the cache holds a copy: the cache is only ever a copy of
    a source that passed, never a substitute for one.
    """
    verify(files)
    raw_dirs = {p.parent for p in files.values()}
    if all(p.suffix != ".gz" for p in files.values()) and len(raw_dirs) == 1:
        raw = raw_dirs.pop()
        if raw.name == "raw" and raw.parent.name == "FashionMNIST":
            return raw.parent.parent
    target = cache / "FashionMNIST" / "raw"
    cached = {name: target / name for name in FILES}
    if all(p.is_file() for p in cached.values()):
        try:
            verify(cached)
            return cache
        except DataError:
            pass  # a stale or damaged copy: rebuild it from the verified source below
    target.mkdir(parents=True, exist_ok=True)
    for name, src in files.items():
        data = _read(src)
        verify_bytes(name, data, src)  # the bytes copied are the bytes checked
        with tempfile.NamedTemporaryFile(dir=target, prefix=f".{name}.", delete=False) as tmp:
            tmp.write(data)
        os.chmod(tmp.name, 0o644)
        os.replace(tmp.name, target / name)
    return cache


def _download(cache: Path) -> Path:
    from torchvision import datasets  # torchvision takes about 2 s to import: only loading data needs it

    try:
        for train in (True, False):
            datasets.FashionMNIST(str(cache), train=train, download=True)
    except Exception as err:  # URLError, RuntimeError, ...: one line either way
        raise DataError(f"{cache}: torchvision could not download Fashion-MNIST ({type(err).__name__}: "
                        f"{str(err).splitlines()[0] if str(err) else ''}); {HOW_TO_GET}") from None
    files = _find_in(cache / "FashionMNIST" / "raw")
    if files is None:
        raise DataError(f"{cache}: torchvision's download left no idx files; {HOW_TO_GET}")
    for gz in (cache / "FashionMNIST" / "raw").glob("*.gz"):
        gz.unlink()  # the plain files are what torchvision reads
    return _materialise(_find_in(cache / "FashionMNIST" / "raw"), cache)


def locate(root: str | Path | None = None, download: bool = False, cache: Path | None = None) -> Path:
    """A verified torchvision root: ``torchvision.datasets.FashionMNIST(root, download=False)`` works on it."""
    cache = cache or cache_dir()
    configured = root if root is not None else os.environ.get(ENV_DIR) or None
    places = [Path(configured).expanduser()] if configured is not None else default_locations()
    for place in places:
        files = _find_in(place)
        if files is not None:
            return _materialise(files, cache)
    if download:
        return _download(cache)
    where = str(places[0]) if configured is not None else ", ".join(str(p) for p in places)
    raise DataError(f"{where}: Fashion-MNIST not found (looked for train-images-idx3-ubyte[.gz] and the other "
                    f"three idx files); {HOW_TO_GET}")


@functools.cache
def _tensors(torchvision_root: Path) -> tuple[torch.Tensor, ...]:
    """Parse once per process with torchvision's own reader; images scaled as ToTensor does (/255)."""
    from torchvision import datasets  # about 2 s to import: only loading data needs it

    out = []
    for train in (True, False):
        ds = datasets.FashionMNIST(str(torchvision_root), train=train, download=False)
        out += [ds.data.unsqueeze(1).to(torch.float32).div_(255), ds.targets.to(torch.int64)]
    return tuple(out)


def load_fashion_mnist(root: str | Path | None = None, device: str = "cpu", *,
                       download: bool = False) -> FashionMNIST:
    """The verified dataset, decoded once per process and moved to ``device`` (the GPU when training runs there)."""
    tv_root = locate(root, download=download).resolve()
    train_x, train_y, test_x, test_y = _tensors(tv_root)
    data = FashionMNIST(train_x, train_y, test_x, test_y, tv_root)
    return data if str(device) == "cpu" else data.to(device)


def clear_cache() -> None:
    """Forget the decoded tensors and the files verified so far (tests)."""
    _tensors.cache_clear()
    _verify_version.cache_clear()


__all__ = ["DataError", "FILES", "FashionMNIST", "IdxFile", "clear_cache", "load_fashion_mnist", "locate"]
