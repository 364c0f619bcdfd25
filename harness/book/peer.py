"""The book's own package as a peer: d2l 1.0.3's ``load_data_fashion_mnist`` and ``train_ch6``, untouched.

``D2lLoop`` runs the package's ``train_ch6`` as the book calls it (it initialises the network, builds its SGD, draws
its Animator and times its batches) in a process of its own, paused after each epoch's test evaluation, so that one
run can interleave it with the harness loop an epoch at a time, as ``harness.kinds.training`` does with the tutorial's
loop. Its own process keeps what the package does (its DataLoader forks four workers twice an epoch, its prints) out
of the process that times the harness loop; only one of the two computes at a time. Two of the package's names are
wrapped there, to see its epochs: ``evaluate_accuracy_gpu`` (timed, then the pause) and ``Animator`` (its ``add``
also records the train loss and accuracy the book plots).
"""

from __future__ import annotations

import contextlib
import io
import math
import multiprocessing
import os
import signal
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

from harness.book.train import EpochStats, TrainResult, books_workers
from harness.machine import device as devices

D2L_VERSION = "1.0.3"
INSTALL = f"pip install --no-deps d2l=={D2L_VERSION} (its own pins are too old for this torch; it needs ipython, " \
          "matplotlib-inline and requests beside it)"


class PeerMissing(RuntimeError):
    """The ``d2l`` package is not installed (or not the version measured here)."""


def d2l_torch():
    """The package's ``d2l.torch`` module, or a one-line error saying how to install it."""
    try:
        from importlib.metadata import version

        from d2l import torch as d2l
    except ImportError as err:
        raise PeerMissing(f"the d2l loop needs the book's package ({err}): {INSTALL}") from None
    if version("d2l") != D2L_VERSION:
        raise PeerMissing(f"the d2l loop measures d2l {D2L_VERSION}, not {version('d2l')}: {INSTALL}")
    return d2l


def load_data(d2l, batch_size: int, root: Path):
    """``d2l.load_data_fashion_mnist(batch_size)`` itself: it reads ``../data``, so it runs from a folder whose
    ``../data`` is the verified torchvision root (where torchvision finds the files, and downloads nothing)."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "data").symlink_to(Path(root).resolve(), target_is_directory=True)
        (Path(tmp) / "cwd").mkdir()
        here = Path.cwd()
        os.chdir(Path(tmp) / "cwd")
        try:
            return d2l.load_data_fashion_mnist(batch_size)
        finally:
            os.chdir(here)


class _Stop(BaseException):
    """Raised inside the package's loop, at its pause, to end it once the caller wants no more epochs."""


def _serve(conn, net: nn.Module, root: str, lr: float, batch_size: int, seed: int, device: str, max_epochs: int,
           threads: int, start_method: str) -> None:
    """The package's side, in its own process: set up, then run ``train_ch6``, an epoch per ``"epoch"`` received.

    The process was spawned, which would make spawning its DataLoader's default too: it gets the caller's back (on
    Linux, fork), so that the workers start as the book's do. Ctrl-C is the caller's to handle: it ends this process
    through ``close()``, or by closing the pipe."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    multiprocessing.set_start_method(start_method, force=True)
    torch.set_num_threads(threads)
    sys.stdout = io.StringIO()  # outside a notebook the Animator prints its figures as text
    dev = devices.get(device)
    try:
        with books_workers():
            d2l = d2l_torch()
            t0 = dev.clock()
            train_iter, test_iter = load_data(d2l, batch_size, Path(root))
            conn.send(("ready", len(train_iter.dataset), len(train_iter), dev.clock() - t0))
            epoch: dict[str, float] = {}
            evaluate = d2l.evaluate_accuracy_gpu

            class Recording(d2l.Animator):
                def add(self, x, y):
                    if y[0] is not None:  # (train loss, train acc, None) during an epoch; its last add: the epoch's
                        epoch.update(loss=y[0], train_acc=y[1])
                    super().add(x, y)

            def next_epoch() -> None:
                if conn.recv() == "stop":
                    raise _Stop
                epoch.clear()
                epoch["start"] = dev.clock()

            def timed_evaluate(net, data_iter, device=None):
                t0 = dev.clock()
                acc = evaluate(net, data_iter, device)
                end = dev.clock()
                conn.send(("epoch", epoch | {"eval_s": end - t0, "test_acc": acc, "end": end}))
                next_epoch()
                return acc

            d2l.evaluate_accuracy_gpu, d2l.Animator = timed_evaluate, Recording
            next_epoch()
            torch.manual_seed(seed)
            d2l.train_ch6(net, train_iter, test_iter, max_epochs, lr, dev.torch)
    except (_Stop, EOFError, BrokenPipeError):  # asked to stop, or the caller is gone
        pass
    except BaseException as err:  # noqa: BLE001 - handed to the caller, which raises it
        with contextlib.suppress(OSError):
            conn.send(("error", f"{type(err).__name__}: {err}"))
    conn.close()


class D2lLoop:
    """``d2l.train_ch6`` on the package's own loaders, an epoch per ``epoch()`` call (the ``TutorialLoop`` interface).

    ``train_ch6`` initialises ``net`` itself (``xavier_uniform_``), from the global generator seeded with ``seed``,
    in a process started afresh (``spawn``) on this one's thread count. An epoch's seconds run from its resumption to
    the end of its test evaluation; ``train_s`` leaves the evaluation out. ``train_ch6`` always evaluates:
    ``evaluate_test=False`` only drops the number. ``close()`` ends the process.
    """

    def __init__(self, net: nn.Module, root: str, *, lr: float, batch_size: int, seed: int, device: str = "cpu",
                 max_epochs: int = 1000) -> None:
        d2l_torch()  # a missing package is a one-line error here, before a process starts
        self.max_epochs = max_epochs
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, name="d2l.train_ch6", args=(
            child, net, root, lr, batch_size, seed, device, max_epochs, torch.get_num_threads(),
            multiprocessing.get_start_method()))
        self._process.start()
        child.close()
        _, self.n, self.num_batches, setup_s = self._receive("ready")
        self.epochs_run = 0
        self.description = f"{type(net).__name__} d2l {D2L_VERSION} train_ch6"
        self.result = TrainResult(loop=f"d2l {D2L_VERSION} (train_ch6)", setup_s=setup_s)

    def _receive(self, what: str) -> tuple:
        try:
            message = self._conn.recv()
        except EOFError:
            self.close()
            raise RuntimeError(f"the d2l loop's process ended (exit code {self._process.exitcode})") from None
        if message[0] == "error":
            self.close()
            raise RuntimeError(f"d2l's train_ch6 failed: {message[1]}")
        assert message[0] == what, message
        return message

    def epoch(self, evaluate_test: bool = True, bar=None) -> EpochStats:
        if self.epochs_run >= self.max_epochs:
            raise RuntimeError(f"the d2l loop was set up for {self.max_epochs} epochs")
        self.epochs_run += 1
        self._conn.send("epoch")
        e = self._receive("epoch")[1]
        if bar is not None:
            bar.advance(0, self.num_batches)
        seconds = e["end"] - e["start"]
        train_seconds = seconds - e["eval_s"]
        return EpochStats(epoch=self.epochs_run, loss=e["loss"], train_acc=e["train_acc"],
                          test_acc=e["test_acc"] if evaluate_test else math.nan, epoch_s=seconds,
                          train_s=train_seconds, examples_per_s=self.n / train_seconds)

    def close(self) -> None:
        """End the package's process (its loop stops where it paused)."""
        if self._process.is_alive():
            with contextlib.suppress(OSError):
                self._conn.send("stop")
            self._process.join(timeout=30)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join()
        self._conn.close()
