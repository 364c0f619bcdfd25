"""Two ways to train the chapter's LeNets on Fashion-MNIST, with the tutorial's optimisation unchanged.

``HarnessLoop`` is this harness's loop: the tutorial's model, initialisation, optimiser, learning rate, batch size,
epochs, loss and fresh shuffle every epoch, with only the way the work is done changed. ``TutorialLoop`` is the
book's DataLoader pipeline and loop, kept as the baseline. Both run one epoch a call of ``epoch()``, so that one
run can interleave them (``harness.kinds.training``); docs/internals.md ("The harness loop") lists the changes.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import nn

from harness.book.data import FashionMNIST
from harness.book.models import default_fold, fast_network
from harness.machine import device as devices

EVAL_BATCH = 1000  # small enough that no activation is mapped afresh every batch (docs/internals.md)


@dataclass
class EpochStats:
    """One epoch: mean training loss, accuracies, wall seconds (train + test) and training examples/s."""

    epoch: int
    loss: float
    train_acc: float
    test_acc: float
    epoch_s: float  # the whole epoch: training pass and test evaluation
    train_s: float  # the training pass alone, data loading included, evaluations excluded
    examples_per_s: float  # training examples / train_s

    @classmethod
    def from_sums(cls, epoch: int, loss_sum: float, correct: float, n: int, test_acc: float, seconds: float,
                  train_seconds: float) -> EpochStats:
        """An epoch from its running sums over n examples and its synchronised times."""
        return cls(epoch=epoch, loss=loss_sum / n, train_acc=correct / n, test_acc=test_acc,
                   epoch_s=seconds, train_s=train_seconds, examples_per_s=n / train_seconds)

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
    setup_s: float = 0.0  # building loaders / compiling, before the first epoch

    @property
    def final(self) -> EpochStats:
        return self.epochs[-1]

    @property
    def examples_per_s(self) -> float:
        """Training examples over training seconds, all epochs together."""
        n = sum(e.examples_per_s * e.train_s for e in self.epochs)
        return n / sum(e.train_s for e in self.epochs)


EpochHook = Callable[[EpochStats], None]


def make_optimizer(name: str, net: nn.Module, lr: float, fused: bool = False) -> torch.optim.Optimizer:
    """The pages' optimisers, with their defaults: 5.5 ``torch.optim.Adam(lr=0.001)``, 6.6 ``torch.optim.SGD(lr=0.9)``.

    ``fused=True`` is the same update computed by one fused kernel instead of a loop of foreach kernels.
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


class HarnessLoop:
    """The harness loop (docs/internals.md, "The harness loop"), set up once and then run an epoch a call.

    ``data`` is already on ``device`` (a name for ``harness.machine.device.get``; every clock read goes through it).
    ``fold=None`` is ``default_fold``: by ``CPU_FOLD`` on the CPU, not on CUDA nor through batch norm. ``order()``,
    when given, returns each epoch's permutation of the training examples (else the loop draws its own).
    ``transform`` maps each batch (train and test) before the network sees it: the book's ``resize=``, a batch at a
    time, so that only the 28x28 set is held in memory. ``epoch(evaluate_test=False)`` trains without the test pass:
    an epoch kept for timing only.
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
            fold = default_fold(net, self.dev.is_cuda)
        net = net.to(self.device)
        if channels_last:
            net = net.to(memory_format=torch.channels_last)
        self.net, self.opt = net, make_optimizer(optimizer, net, lr, fused=fused)  # net: the weights it trains
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
        self.result = TrainResult(loop="harness", setup_s=self.dev.clock() - start)

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
    import torchvision  # a slow import: only the tutorial's pipeline needs it
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
def books_workers() -> Iterator[None]:
    """The book's 4 DataLoader workers on a machine with fewer cores: torch warns each time; kept on purpose."""
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
        with books_workers():
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
        self.result = TrainResult(loop=f"tutorial ({name})", setup_s=self.dev.clock() - start)

    def epoch(self, evaluate_test: bool = True, bar=None) -> EpochStats:
        with books_workers():
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
