"""The harness loop and the tutorial's loop: they learn, the loss is the true mean, same seed -> same curve."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from harness.book import data as D
from harness.book.nets import build
from harness.book.train import evaluate
from tests.book.helpers import train_fast, train_tutorial
from tests.book.test_data import make_dataset

pytestmark = pytest.mark.usefixtures("one_thread")


def subset(d: D.FashionMNIST, n_train: int, n_test: int) -> D.FashionMNIST:
    return D.FashionMNIST(d.train_x[:n_train], d.train_y[:n_train], d.test_x[:n_test], d.test_y[:n_test], d.root)


@pytest.fixture
def tiny(tmp_path, monkeypatch) -> D.FashionMNIST:
    """A generated 600/200 idx dataset (a class-dependent bar in noise), loaded through the real loader."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    make_dataset(tmp_path / "idx", monkeypatch, n_train=600, n_test=200)
    return D.load_fashion_mnist(tmp_path / "idx")


def fast(d, seed=0, model="lenet_nopad_max", **kw):
    torch.manual_seed(seed)
    args = dict(optimizer="adam", lr=0.003, batch_size=32, epochs=3, seed=seed) | kw
    return train_fast(build(model), d, **args)


def curve(result):
    return [(e.loss, e.train_acc, e.test_acc) for e in result.epochs]


def test_short_run_beats_chance_on_generated_data(tiny):
    r = fast(tiny, epochs=8)
    assert r.final.test_acc > 0.5 and r.final.train_acc > 0.3, curve(r)
    assert r.epochs[-1].loss < r.epochs[0].loss
    assert all(e.examples_per_s > 0 and e.epoch_s >= e.train_s > 0 for e in r.epochs)


@pytest.mark.skipif(not D.DEBIAN_DIR.is_dir() and not D.os.environ.get(D.ENV_DIR),
                    reason="Fashion-MNIST is not installed")
def test_short_run_beats_chance_on_fashion_mnist():
    d = subset(D.load_fashion_mnist(), 6400, 2000)
    torch.manual_seed(0)
    r = train_fast(build("lenet_nopad_max"), d, optimizer="adam", lr=0.003, batch_size=64, epochs=2, seed=0)
    assert r.final.test_acc > 0.3, curve(r)


def test_same_seed_same_curve_other_seed_other_curve(tiny):
    a, b, c = fast(tiny, seed=5), fast(tiny, seed=5), fast(tiny, seed=6)
    assert curve(a) == curve(b)
    assert curve(a) != curve(c)


def test_same_seed_same_curve_with_first_batch_evaluations(tiny):
    a = fast(tiny, seed=1, eval_first_batches=3)
    b = fast(tiny, seed=1, eval_first_batches=3)
    assert [vars(x) for x in a.first_batches] == [vars(x) for x in b.first_batches] and len(a.first_batches) == 3
    assert curve(a) == curve(b) == curve(fast(tiny, seed=1))  # evaluating does not change the training


def test_channels_last_changes_speed_not_the_maths(tiny):
    a, b = fast(tiny, seed=2, channels_last=True), fast(tiny, seed=2, channels_last=False)
    for x, y in zip(curve(a), curve(b)):
        assert x == pytest.approx(y, abs=2e-3)


def test_pool_before_sigmoid_changes_speed_not_the_maths(tiny):
    a, b = fast(tiny, seed=2, pool_first=True), fast(tiny, seed=2, pool_first=False)
    for x, y in zip(curve(a), curve(b)):
        assert x == pytest.approx(y, abs=2e-3)


def test_batch_fold_changes_speed_not_the_maths(tiny):
    a, b = fast(tiny, seed=2, fold=4), fast(tiny, seed=2, fold=1)
    for x, y in zip(curve(a), curve(b)):
        assert x == pytest.approx(y, abs=2e-3)
    assert curve(fast(tiny, seed=2)) == curve(a)  # on the CPU the default folds by CPU_FOLD (4)


def test_loss_is_the_true_mean_over_examples_with_a_partial_last_batch(tiny):
    """600 examples in batches of 256: 256 + 256 + 88. The epoch loss is sum(l * batch) / n, not a mean of means."""
    torch.manual_seed(0)
    net = build("lenet_nopad_max")
    with torch.no_grad():
        want = nn.CrossEntropyLoss()(net(tiny.train_x), tiny.train_y).item()
    r = train_fast(net, tiny, optimizer="sgd", lr=1e-12, batch_size=256, epochs=1, seed=0, channels_last=False)
    assert r.final.loss == pytest.approx(want, rel=1e-5)


def test_evaluate_counts_correct_predictions_without_autograd(tiny):
    torch.manual_seed(0)
    net = build("lenet_pad2_avg")
    with torch.no_grad():
        want = (net(tiny.test_x).argmax(1) == tiny.test_y).float().mean().item()
    assert evaluate(net, tiny.test_x, tiny.test_y, batch_size=64) == pytest.approx(want)
    assert net.training


@pytest.mark.parametrize("style", ["ch5", "ch6"])
def test_tutorial_loop_learns_on_the_books_pipeline(tiny, style):
    torch.manual_seed(0)
    r = train_tutorial(build("lenet_nopad_max"), str(tiny.root), optimizer="adam", lr=0.003, batch_size=32,
                       epochs=8, num_workers=0, style=style)
    assert r.loop.endswith(f"train_{style})") and len(r.epochs) == 8
    assert r.final.test_acc > 0.5 and r.epochs[-1].loss < r.epochs[0].loss


def test_both_loops_from_the_same_weights_optimise_the_same_way(tiny):
    """No shuffle difference matters at lr ~ 0: both loops see the same model, so the same loss and accuracy."""
    torch.manual_seed(0)
    a = train_fast(build("lenet_nopad_max"), tiny, optimizer="sgd", lr=1e-12, batch_size=100, epochs=1, seed=0)
    torch.manual_seed(0)
    b = train_tutorial(build("lenet_nopad_max"), str(tiny.root), optimizer="sgd", lr=1e-12, batch_size=100,
                       epochs=1, num_workers=0)
    assert a.final.loss == pytest.approx(b.final.loss, rel=1e-4)
    assert a.final.test_acc == b.final.test_acc and a.final.train_acc == b.final.train_acc


def test_the_recorded_order_is_the_order_shuffle_true_draws(tiny):
    """``RecordedOrder`` stands in for ``shuffle=True``: the same draws, so the same order, now kept."""
    from harness.book.train import RecordedOrder, load_data_fashion_mnist

    def order(sampler):
        torch.manual_seed(3)
        train_iter, _ = load_data_fashion_mnist(600, str(tiny.root), num_workers=0, sampler=sampler)
        return [torch.cat([y for _, y in train_iter]) for _ in range(2)], train_iter.sampler

    (plain_1, plain_2), _ = order(None)
    (kept_1, kept_2), sampler = order(RecordedOrder)
    assert torch.equal(plain_1, kept_1) and torch.equal(plain_2, kept_2) and not torch.equal(kept_1, kept_2)
    assert torch.equal(tiny.train_y[sampler.last], kept_2)  # the labels, in the order the last epoch drew them


def test_on_the_books_data_order_the_harness_loop_follows_the_books_loop(tiny):
    """The harness loop replaying the tutorial loop's order, from the same weights: the same curves, with its
    speed-ups (channels_last, the fused step, the batch folded into grouped convolutions) on."""
    from harness.book.train import HarnessLoop, TutorialLoop
    from tests.book.helpers import run_epochs

    common = dict(optimizer="sgd", lr=0.5, batch_size=32)
    torch.manual_seed(0)
    book = TutorialLoop(build("lenet_pad2_avg"), str(tiny.root), num_workers=0, style="ch6", record_order=True,
                        **common)
    torch.manual_seed(0)
    mine = HarnessLoop(build("lenet_pad2_avg"), tiny, seed=0, order=book.last_order, **common)
    epochs = [(book.epoch(), mine.epoch()) for _ in range(3)]
    for b, h in epochs:
        assert h.loss == pytest.approx(b.loss, rel=1e-5) and (h.train_acc, h.test_acc) == (b.train_acc, b.test_acc)
    torch.manual_seed(0)
    own = run_epochs(HarnessLoop(build("lenet_pad2_avg"), tiny, seed=0, **common), 1)  # its own order differs
    assert own.final.loss != pytest.approx(epochs[0][1].loss, rel=1e-5)


def test_the_harness_order_is_not_drawn_from_the_init_stream():
    from harness.book.train import order_seed

    assert len({order_seed(s) for s in range(100)} | set(range(100))) == 200  # no seed maps onto a seed
    torch.manual_seed(0)
    init_draws = torch.randperm(50)
    assert not torch.equal(torch.randperm(50, generator=torch.Generator().manual_seed(order_seed(0))), init_draws)
