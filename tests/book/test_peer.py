"""The book's own package as a peer: how it is found, and how its loader is pointed at the verified data.

A whole epoch of d2l's train_ch6 against the harness loop runs in tests/bench/test_bench_peer.py (once, untimed, in
the default test run)."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from harness.book import peer


def test_a_missing_package_is_one_line_that_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "d2l", None)
    with pytest.raises(peer.PeerMissing, match=r"pip install --no-deps d2l==1\.0\.3") as err:
        peer.d2l_torch()
    assert "\n" not in str(err.value)


def test_another_version_is_refused(monkeypatch):
    monkeypatch.setitem(sys.modules, "d2l", types.SimpleNamespace(torch=object()))
    monkeypatch.setattr("importlib.metadata.version", lambda name: "0.17.6")
    with pytest.raises(peer.PeerMissing, match="measures d2l 1.0.3, not 0.17.6"):
        peer.d2l_torch()


def test_the_packages_loader_reads_the_verified_root_and_leaves_the_working_directory(tmp_path):
    root = tmp_path / "verified"
    (root / "FashionMNIST" / "raw").mkdir(parents=True)
    seen = {}

    def load_data_fashion_mnist(batch_size):  # d2l's reads root="../data", relative to where it runs
        seen["raw"] = (Path("..") / "data" / "FashionMNIST" / "raw").resolve()
        return batch_size, "loaders"

    here = Path.cwd()
    fake = types.SimpleNamespace(load_data_fashion_mnist=load_data_fashion_mnist)
    assert peer.load_data(fake, 256, root) == (256, "loaders")
    assert seen["raw"] == (root / "FashionMNIST" / "raw").resolve() and Path.cwd() == here
