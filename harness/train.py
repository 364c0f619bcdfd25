"""Two ways to train the chapter's LeNets on Fashion-MNIST, with the tutorial's optimisation unchanged.

``train_fast`` (``HarnessLoop``) is this harness's loop. The optimisation is the tutorial's own: the same model and
initialisation, optimiser, learning rate, batch size (last partial batch kept), number of epochs,
cross-entropy loss and a fresh shuffle every epoch. What changes is only how the work is done:

- the whole dataset sits in memory as one tensor (on the GPU when training runs there); each epoch
  draws ``torch.randperm`` from a generator of its own (seeded from the run's seed, but apart from the stream
  that drew the initial weights, as the book's DataLoader is) and slices batches from it, with no per-item
  transforms, no DataLoader, no worker processes; or it replays an order it is given (``order``), such as
  the book's loop's, epoch for epoch, so the two can be checked to compute the same thing;
- the loss and accuracy sums stay on the device (one synchronisation an epoch, not two a batch),
  and the loss is the true mean: sum of batch loss x batch size / n (the 5.5 page printed
  sum of batch means / n, too small by the batch size);
- evaluation runs under ``torch.inference_mode`` in batches of 1,000 (at 2,500 the first activation, 35 MB,
  passed glibc's 32 MB ceiling and was faulted in afresh every batch: 1.4x slower);
- the optimiser's fused kernel (the same update, ~5% faster);
- ``channels_last`` memory format (measured: ~1.3x on CPU);
- max-pool before the sigmoid, and (on the CPU) the batch folded 4 images deep into the channels of grouped
  convolutions (``harness.models.fast_network``: the same maths on shapes oneDNN vectorises; ~1.2x a step;
  off on CUDA by default, where grouped convolutions have not been measured against cuDNN's plain ones);
- ``torch.compile`` is available but off by default: on the 2-core CPU it compiled for 5-30 s and then ran
  slower than eager mode.

``train_tutorial`` (``TutorialLoop``) is the book's pipeline kept as a baseline: ``torchvision.datasets.FashionMNIST``
with ``transforms.ToTensor()`` and ``DataLoader(batch_size=256, shuffle=True, num_workers=4)``
(``d2l.load_data_fashion_mnist``), and the loop of ``train_ch5`` (Dive-into-DL-PyTorch 5.5) or
``train_ch6`` (d2l v2 6.6) with its ``evaluate_accuracy``. It records the same statistics, so one run
compares both loops on one machine. Both loops run an epoch a call of their ``epoch()``, so that one
run can interleave them epoch by epoch (``harness.tasks.lenet``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import nn

from harness import device as devices
from harness.data import FashionMNIST
from harness.models import fast_network

EVAL_BATCH = 1000
CPU_FOLD = 4  # images per group of BatchFolded on the CPU (4 and 8 measured alike; 24 channels fill AVX2)


@dataclass
class EpochStats:
    """One epoch: mean training loss, accuracies, wall seconds (train + test) and training examples/s."""

    epoch: int
    loss: float
    train_acc: float
    test_acc: float
    seconds: float  # the whole epoch: training pass and test evaluation
    train_seconds: float  # the training pass alone, data loading included, evaluations excluded
    examples_per_sec: float  # training examples / train_seconds

    @classmethod
    def from_sums(cls, epoch: int, loss_sum: float, correct: float, n: int, test_acc: float, seconds: float,
                  train_seconds: float) -> EpochStats:
        """An epoch from its running sums over n examples and its synchronised times."""
        return cls(epoch=epoch, loss=loss_sum / n, train_acc=correct / n, test_acc=test_acc,
                   seconds=seconds, train_seconds=train_seconds, examples_per_sec=n / train_seconds)

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass
class BatchEval:
    """C3's study notebook's per-batch print: running loss and train acc, and the test acc, after batch i."""

    batch: int
    loss: float  # running mean over the batches so far, as the notebook printed train_l_sum / batch_count
    train_acc: float
    test_acc: float


@dataclass
class TrainResult:
    loop: str
    epochs: list[EpochStats] = field(default_factory=list)
    first_batches: list[BatchEval] = field(default_factory=list)
    setup_seconds: float = 0.0  # building loaders / compiling, before the first epoch

    @property
    def final(self) -> EpochStats:
        return self.epochs[-1]

    @property
    def examples_per_sec(self) -> float:
        """Training examples over training seconds, all epochs together."""
        n = sum(e.examples_per_sec * e.train_seconds for e in self.epochs)
        return n / sum(e.train_seconds for e in self.epochs)


EpochHook = Callable[[EpochStats], None]


def make_optimizer(name: str, net: nn.Module, lr: float, fused: bool = False) -> torch.optim.Optimizer:
    """The pages' optimisers, with their defaults: 5.5 ``torch.optim.Adam(lr=0.001)``, 6.6 ``torch.optim.SGD(lr=0.9)``.

    ``fused=True`` is the same update computed by one fused kernel instead of a loop of foreach kernels
    (measured ~5% faster a step on the 2-core CPU, and the same curves).
    """
    if name == "adam":
        return torch.optim.Adam(net.parameters(), lr=lr, fused=fused or None)
    if name == "sgd":
        return torch.optim.SGD(net.parameters(), lr=lr, fused=fused or None)
    raise ValueError(f"unknown optimizer {name!r}")


def progress_bar(enabled: bool, description: str, total: int):
    """A rich progress bar over batches (on stderr, transient), or None: when disabled or stderr is no terminal."""
    console = Console(stderr=True)
    if not enabled or not console.is_terminal:
        return None
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TextColumn("{task.fields[info]}"), console=console, transient=True)
    progress.start()
    progress.add_task(description, total=total, info="")
    return progress


Transform = Callable[[torch.Tensor], torch.Tensor]


@torch.inference_mode()
def evaluate(net: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = EVAL_BATCH,
             channels_last: bool = False, transform: Transform | None = None) -> float:
    """Accuracy over in-memory tensors, without autograd, in large batches (each transformed first, if asked)."""
    was_training = net.training
    net.eval()
    correct = torch.zeros((), dtype=torch.int64, device=y.device)
    for i in range(0, len(y), batch_size):
        X = x[i:i + batch_size]
        if transform is not None:
            X = transform(X)
        if channels_last:
            X = X.contiguous(memory_format=torch.channels_last)
        correct += (net(X).argmax(dim=1) == y[i:i + batch_size]).sum()
    net.train(was_training)
    return int(correct) / len(y)


def end_epoch(result: TrainResult, stats: EpochStats, bar, on_epoch: EpochHook | None) -> None:
    """Keep an epoch's numbers, show them on the progress bar, and hand them to the caller's hook."""
    result.epochs.append(stats)
    if bar is not None:
        bar.update(0, info=f"epoch {stats.epoch}: test acc {stats.test_acc:.3f}")
    if on_epoch is not None:
        on_epoch(stats)


def run_epochs(loop: HarnessLoop | TutorialLoop, epochs: int, on_epoch: EpochHook | None = None,
               progress: bool = False) -> TrainResult:
    """Train ``loop`` for ``epochs`` epochs, evaluating after each; its result."""
    bar = progress_bar(progress, loop.description, epochs * loop.num_batches)
    try:
        for _ in range(epochs):
            end_epoch(loop.result, loop.epoch(bar=bar), bar, on_epoch)
    finally:
        if bar is not None:
            bar.stop()
    return loop.result


class HarnessLoop:
    """The harness loop (see the module docstring), set up once and then run an epoch a call.

    ``data`` is already on ``device`` (a name for ``harness.device.get``; every clock read goes through it).
    ``fold=None`` folds by ``CPU_FOLD`` on the CPU and not at all elsewhere. ``order()``, when given, returns each
    epoch's permutation of the training examples (else the loop draws its own). ``transform`` maps each batch (train
    and test) before the network sees it: the book's ``resize=``, a batch at a time, so that only the 28x28 set is
    held in memory. ``epoch(evaluate_test=False)`` trains without the test pass: an epoch kept for timing only.
    """

    def __init__(self, net: nn.Module, data: FashionMNIST, *, optimizer: str, lr: float, batch_size: int,
                 seed: int, device: str = "cpu", eval_first_batches: int = 0, channels_last: bool = True,
                 compile: bool = False, fused: bool = True, pool_first: bool = True, fold: int | None = None,
                 train_subset: int | None = None, order: Callable[[], torch.Tensor] | None = None,
                 transform: Transform | None = None) -> None:
        self.dev = devices.get(device)
        start = self.dev.clock()
        self.device = self.dev.torch
        if fold is None:
            fold = 1 if self.dev.is_cuda else CPU_FOLD
        net = net.to(self.device)
        if channels_last:
            net = net.to(memory_format=torch.channels_last)
        self.opt = make_optimizer(optimizer, net, lr, fused=fused)
        self.fwd = fast_network(net, pool_first=pool_first, fold=fold, channels_last=channels_last)
        self.loss = nn.CrossEntropyLoss()
        self.data, self.channels_last, self.batch_size = data, channels_last, batch_size
        self.train_x, self.train_y = data.train_x, data.train_y
        if train_subset is not None:
            self.train_x, self.train_y = self.train_x[:train_subset], self.train_y[:train_subset]
        self.n = len(self.train_y)
        self.num_batches = (self.n + batch_size - 1) // batch_size
        self.eval_first_batches = eval_first_batches
        self.step = torch.compile(self._step) if compile else self._step
        self.gen = torch.Generator(device="cpu").manual_seed(order_seed(seed))
        self.order, self.transform = order, transform
        self.epochs_run = 0
        self.description = f"{type(net).__name__} harness loop"
        self.result = TrainResult(loop="harness", setup_seconds=self.dev.clock() - start)

    def _step(self, X, y):
        y_hat = self.fwd(X)
        l = self.loss(y_hat, y)
        self.opt.zero_grad()
        l.backward()
        self.opt.step()
        return l.detach(), y_hat.detach()

    def _test_acc(self) -> float:
        return evaluate(self.fwd, self.data.test_x, self.data.test_y, channels_last=self.channels_last,
                        transform=self.transform)

    def epoch(self, evaluate_test: bool = True, bar=None) -> EpochStats:
        self.epochs_run += 1
        device, batch_size, n = self.device, self.batch_size, self.n
        self.fwd.train()
        clock = self.dev.clock
        t0 = clock()
        eval_seconds = 0.0
        perm = (self.order() if self.order else torch.randperm(n, generator=self.gen)).to(device)
        l_sum = torch.zeros((), device=device)
        correct = torch.zeros((), dtype=torch.int64, device=device)
        for i in range(self.num_batches):
            idx = perm[i * batch_size:(i + 1) * batch_size]
            X, y = self.train_x.index_select(0, idx), self.train_y.index_select(0, idx)
            if self.transform is not None:
                X = self.transform(X)
            if self.channels_last:
                X = X.contiguous(memory_format=torch.channels_last)
            l, y_hat = self.step(X, y)
            l_sum += l * y.shape[0]
            correct += (y_hat.argmax(dim=1) == y).sum()
            if self.epochs_run == 1 and i < self.eval_first_batches:
                te = clock()
                seen = min((i + 1) * batch_size, n)
                self.result.first_batches.append(BatchEval(batch=i + 1, loss=float(l_sum) / seen,
                                                           train_acc=int(correct) / seen, test_acc=self._test_acc()))
                eval_seconds += clock() - te
            if bar is not None:
                bar.advance(0)
        train_seconds = clock() - t0 - eval_seconds  # the clock waits for the epoch's queued kernels
        test_acc = self._test_acc() if evaluate_test else math.nan
        return EpochStats.from_sums(self.epochs_run, float(l_sum), int(correct), n, test_acc, clock() - t0,
                                    train_seconds)


def order_seed(seed: int) -> int:
    """The seed of the harness loop's data order: derived from the run's seed, but not equal to it, so that the
    order is not drawn from the very random numbers that drew the initial weights (``torch.manual_seed(seed)``)."""
    return int(np.random.SeedSequence([seed, 1]).generate_state(1)[0])


def train_fast(net: nn.Module, data: FashionMNIST, *, epochs: int, on_epoch: EpochHook | None = None,
               progress: bool = False, **kw: Any) -> TrainResult:
    """The harness loop for ``epochs`` epochs (``kw``: ``HarnessLoop``'s settings)."""
    return run_epochs(HarnessLoop(net, data, **kw), epochs, on_epoch, progress)


# ---- the tutorial's own pipeline and loops, as the pages print them ----------------------------------------------


class RecordedOrder(torch.utils.data.RandomSampler):
    """What ``DataLoader(shuffle=True)`` samples with (the same draws from the same generators), keeping the order
    of its last epoch in ``last``, so that another loop can replay it."""

    last: torch.Tensor | None = None

    def __iter__(self):
        self.last = torch.tensor(list(super().__iter__()))
        yield from self.last.tolist()


def load_data_fashion_mnist(batch_size: int, root: str, num_workers: int = 4, sampler=None):
    """``d2l.load_data_fashion_mnist``: torchvision's dataset, ``ToTensor()`` per item, DataLoaders.

    ``sampler`` (a ``RecordedOrder``) stands in for ``shuffle=True`` when the training order is to be kept.
    """
    import torchvision  # about 2 s to import: only the tutorial's pipeline needs it
    from torchvision import transforms

    trans = transforms.ToTensor()
    mnist_train = torchvision.datasets.FashionMNIST(root=root, train=True, transform=trans, download=False)
    mnist_test = torchvision.datasets.FashionMNIST(root=root, train=False, transform=trans, download=False)
    shuffle = {"sampler": sampler(mnist_train)} if sampler else {"shuffle": True}
    return (torch.utils.data.DataLoader(mnist_train, batch_size, num_workers=num_workers, **shuffle),
            torch.utils.data.DataLoader(mnist_test, batch_size, shuffle=False, num_workers=num_workers))


def evaluate_accuracy(data_iter, net, device=None):
    """Dive-into-DL-PyTorch 5.5's ``evaluate_accuracy`` (the nn.Module branch), as printed."""
    if device is None and isinstance(net, torch.nn.Module):
        device = list(net.parameters())[0].device
    acc_sum, n = 0.0, 0
    with torch.no_grad():
        for X, y in data_iter:
            net.eval()  # 评估模式, 这会关闭dropout
            acc_sum += (net(X.to(device)).argmax(dim=1) == y.to(device)).float().sum().cpu().item()
            net.train()  # 改回训练模式
            n += y.shape[0]
    return acc_sum / n


@contextmanager
def _books_workers() -> Iterator[None]:
    """The book's 4 DataLoader workers on a 2-core machine: torch warns each time; the setting is kept on purpose."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="This DataLoader will create")
        yield


class TutorialLoop:
    """The book's loop: ``train_ch5`` (style ch5: 5.5) or ``train_ch6`` (style ch6: 6.6), on the book's DataLoaders.

    Set up once (``load_data_fashion_mnist``, the optimiser, the loss), then ``epoch()`` runs the body of the
    book's ``for epoch in range(num_epochs)``. The loss recorded is the true mean (``train_ch6``'s
    ``l * X.shape[0]`` sum over the count); the 5.5 page's printed ``train_l_sum / n`` is not reproduced.
    ``train_ch6``'s ``init_weights`` is the caller's job (the model arrives initialised, as for the harness loop).
    ``max_batches`` stops each epoch early (benchmarks only). With ``record_order``, ``last_order()`` is the
    permutation of the training examples its last epoch went through.
    """

    def __init__(self, net: nn.Module, root: str, *, optimizer: str, lr: float, batch_size: int,
                 device: str = "cpu", num_workers: int = 4, style: str = "ch5",
                 max_batches: int | None = None, record_order: bool = False) -> None:
        self.dev = devices.get(device)
        start = self.dev.clock()
        with _books_workers():
            self.train_iter, self.test_iter = load_data_fashion_mnist(
                batch_size, root, num_workers, RecordedOrder if record_order else None)
        self.net = net.to(self.dev.torch)
        self.opt = make_optimizer(optimizer, self.net, lr)
        self.loss = torch.nn.CrossEntropyLoss()
        self.device, self.style, self.max_batches = self.dev.torch, style, max_batches
        self.num_batches = len(self.train_iter)
        self.epochs_run = 0
        self.description = f"{type(net).__name__} tutorial loop"
        name = "train_ch5" if style == "ch5" else "train_ch6"
        self.result = TrainResult(loop=f"tutorial ({name})", setup_seconds=self.dev.clock() - start)

    def epoch(self, evaluate_test: bool = True, bar=None) -> EpochStats:
        with _books_workers():
            return self._epoch(evaluate_test, bar)

    def last_order(self) -> torch.Tensor:
        """The training order of the last epoch (``record_order=True``)."""
        return self.train_iter.sampler.last

    def _epoch(self, evaluate_test: bool, bar) -> EpochStats:
        net, opt, loss, device = self.net, self.opt, self.loss, self.device
        self.epochs_run += 1
        train_l_sum, train_acc_sum, n, batch_count, t0 = 0.0, 0.0, 0, 0, self.dev.clock()
        net.train()
        for X, y in self.train_iter:
            X = X.to(device)
            y = y.to(device)
            if self.style == "ch6":
                opt.zero_grad()
                y_hat = net(X)
                l = loss(y_hat, y)
                l.backward()
                opt.step()
                with torch.no_grad():
                    train_l_sum += float(l * X.shape[0])
                    train_acc_sum += float((y_hat.argmax(axis=1).type(y.dtype) == y).sum())
            else:
                y_hat = net(X)
                l = loss(y_hat, y)
                opt.zero_grad()
                l.backward()
                opt.step()
                train_l_sum += l.cpu().item() * y.shape[0]
                train_acc_sum += (y_hat.argmax(dim=1) == y).sum().cpu().item()
            n += y.shape[0]
            batch_count += 1
            if bar is not None:
                bar.advance(0)
            if self.max_batches is not None and batch_count >= self.max_batches:
                break
        train_seconds = self.dev.clock() - t0
        test_acc = evaluate_accuracy(self.test_iter, net) if evaluate_test else math.nan
        return EpochStats.from_sums(self.epochs_run, train_l_sum, train_acc_sum, n, test_acc, self.dev.clock() - t0,
                                    train_seconds)


def train_tutorial(net: nn.Module, root: str, *, epochs: int, on_epoch: EpochHook | None = None,
                   progress: bool = False, **kw: Any) -> TrainResult:
    """The book's loop for ``epochs`` epochs (``kw``: ``TutorialLoop``'s settings)."""
    return run_epochs(TutorialLoop(net, root, **kw), epochs, on_epoch, progress)


def summary(result: TrainResult) -> dict[str, Any]:
    """Final values and speed of one loop, JSON-able."""
    f = result.final
    return {"loss": f.loss, "train_acc": f.train_acc, "test_acc": f.test_acc,
            "examples_per_sec": result.examples_per_sec,
            "seconds_per_epoch": sum(e.seconds for e in result.epochs) / len(result.epochs),
            "setup_seconds": result.setup_seconds}
