"""B1-B5: the loss falls by orders of magnitude, the kernel is learned (any shape, any image), deterministically."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from harness.book.ops import corr2d, edge_image
from harness.kinds.edge_kernel import KIND
from harness.kinds.edge_kernel.measure import diagonal_image, image, train_handwritten, train_nn_conv2d
from harness.kinds.edge_kernel.settings import IMAGE_SHAPES, Settings
from harness.machine.seeding import seed_everything
from harness.specs.spec import load_spec

from .memory_view import MemoryView, markdown_rows

ROOT = Path(__file__).resolve().parents[2]


def train(layer: str, init: str, lr: float, steps: int, seed: int, target=((1.0, -1.0),)):
    X = edge_image()
    Y = corr2d(X, torch.tensor(target))
    settings = Settings(layer=layer, init=init, lr=lr, steps=steps, target_kernel=[list(target[0])])
    seed_everything(seed)
    fn = train_handwritten if layer == "handwritten" else train_nn_conv2d
    return fn(X, Y, settings)


def test_handwritten_learns_edge_kernel_b1():
    for seed in range(3):
        losses, conv = train("handwritten", "randn", 0.01, 20, seed)
        assert len(losses) == 20 and losses[-1] < losses[0] / 100
        assert torch.allclose(conv.weight.data, torch.tensor([[1.0, -1.0]]), atol=0.2)
        assert abs(float(conv.bias.detach())) < 0.05


def test_longer_training_converges_to_the_kernel():
    losses, conv = train("handwritten", "randn", 0.01, 200, seed=0)
    assert losses[-1] < 1e-8
    assert torch.allclose(conv.weight.data, torch.tensor([[1.0, -1.0]]), atol=1e-4)


def test_nn_conv2d_learns_edge_kernel_b2():
    losses, conv = train("nn_conv2d", "default", 0.03, 10, seed=0)
    assert losses[-1] < losses[0] / 10
    assert torch.allclose(conv.weight.data.reshape(1, 2), torch.tensor([[1.0, -1.0]]), atol=0.15)


def test_large_target_curve_b3():
    losses, conv = train("handwritten", "randn", 0.01, 100, seed=0, target=((1000.0, -0.1),))
    assert 1.5e6 < losses[4] < 1.7e6 and 10 < losses[49] < 12 and losses[-1] < 5e-4
    assert abs(float(conv.weight.detach()[0, 1]) + 0.1) < 0.01


def test_same_seed_same_curve_other_seed_other_curve():
    a, _ = train("handwritten", "randn", 0.01, 20, seed=7)
    b, _ = train("handwritten", "randn", 0.01, 20, seed=7)
    c, _ = train("handwritten", "randn", 0.01, 20, seed=8)
    assert a == b and a != c


def run_kind(memory_recorder, seed=0, **settings):
    seed_everything(seed)
    return KIND.run(Settings(**{"layer": "handwritten", "lr": 0.01, "steps": 20} | settings), memory_recorder())


def test_transposed_image_with_a_2x1_kernel_is_b1_transposed(memory_recorder):
    upright = run_kind(memory_recorder, seed=3)
    transposed = run_kind(memory_recorder, seed=3, image="transposed", target_kernel=[[1], [-1]])
    assert transposed["kernel"] == [[w] for w in upright["kernel"][0]]  # the same draw, the same steps
    assert transposed["final_loss"] == pytest.approx(upright["final_loss"], rel=1e-5)


def test_the_1x2_kernel_finds_nothing_on_the_transposed_image(memory_recorder):
    out = run_kind(memory_recorder, image="transposed", target_kernel=[[1, -1]], steps=30)
    assert out["target_max_abs"] == 0.0
    assert out["output_max_abs"] < 0.05 and abs(out["kernel_sum"]) < 0.05


def test_any_kernel_shape_on_the_diagonal_image(memory_recorder):
    assert torch.equal(corr2d(diagonal_image(3), torch.tensor([[1.0, -1.0]])), torch.tensor([[-1.0, 0.0],
                                                                                          [0.0, -1.0],
                                                                                          [0.0, 0.0]]))
    out = run_kind(memory_recorder, image="diagonal", target_kernel=[[1, -1], [-1, 1]], layer="nn_conv2d",
                   init="default", lr=0.01, steps=200)
    assert len(out["kernel"]) == 2 and len(out["kernel"][0]) == 2 and out["loss_drop_orders"] > 1


@pytest.mark.parametrize("kernel,image,message", [
    ([[1, -1], [1]], "edge", "rectangular"),
    ([[1] * 9], "edge", "larger than the edge image (6x8)"),
    ([[1]] * 7, "transposed", None),
    ([[1]] * 9, "transposed", "larger than the transposed image (8x6)"),
])
def test_bad_target_kernels_are_refused(kernel, image, message):
    settings = {"layer": "handwritten", "lr": 0.01, "steps": 2, "target_kernel": kernel, "image": image}
    if message is None:
        Settings(**settings)
        return
    with pytest.raises(ValueError, match=re.escape(message)):
        Settings(**settings)


def test_the_metric_table_covers_the_run_and_its_loss_curve(memory_recorder):
    rec = memory_recorder()
    seed_everything(0)
    out = KIND.run(Settings(layer="handwritten", lr=0.01, steps=20, checkpoints=[5, 20]), rec)
    assert set(out) | set(rec.series) == set(KIND.names) and KIND.curves == ("loss",)
    assert out["loss_at_checkpoints"] == [rec.series["loss"][1][4], rec.series["loss"][1][19]]
    assert KIND.metric("final_loss").better == "lower" and KIND.metric("loss_drop_orders").better == "higher"


def test_the_learned_table_and_the_loss_figure(memory_recorder, tmp_path):
    spec = load_spec(ROOT / "experiments" / "edge-kernel-handwritten.yaml")
    units = {}
    for seed in (0, 1):
        rec = memory_recorder(seed=seed)
        seed_everything(seed)
        units["cpu", seed] = KIND.run(spec.settings, rec), rec
    view = MemoryView(spec.resolved(), units, figures=tmp_path)
    learned = KIND.tables(view)["learned"]
    assert list(learned.columns) == ["device", "seed", "initial_loss", "final_loss", "kernel", "bias",
                                     "kernel_max_abs_error"]
    for _, row in learned.iterrows():
        out = units["cpu", row["seed"]][0]
        assert (row["initial_loss"], row["final_loss"], row["bias"]) == (out["initial_loss"], out["final_loss"],
                                                                          out["bias"])
        assert json.loads(row["kernel"]) == out["kernel"]
    text = KIND.section(view)
    figure = tmp_path / f"{spec.name}-loss.png"
    assert f"](figures/{figure.name})" in text and figure.stat().st_size > 1000
    assert markdown_rows(text) == len(learned) + 2


def test_the_settings_know_each_images_shape_without_building_it():
    assert {name: tuple(image(name).shape) for name in IMAGE_SHAPES} == IMAGE_SHAPES
