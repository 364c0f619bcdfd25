"""The layer vocabulary: every entry, the chapter's blocks against the pages' code, shape errors, named networks."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from harness.book import modern, nets
from harness.book.models import Inception, nin_block, vgg_block
from tests.book.helpers import BOOK_NETS, MODELS


def net_of(*layers, input_shape=(1, 8, 8)) -> nets.Network:
    return nets.Network.model_validate({"input": list(input_shape), "layers": list(layers)})


def same_weights_same_output(a: nn.Module, b: nn.Module, x: torch.Tensor) -> None:
    b.load_state_dict(a.state_dict())
    a.eval(), b.eval()
    assert torch.equal(a(x), b(x))


def test_every_layer_type_builds_the_module_it_names():
    net = nets.build(net_of(
        {"type": "conv", "channels": 4, "kernel": 3, "stride": 1, "padding": 1}, {"type": "batchnorm"},
        {"type": "relu"}, {"type": "maxpool", "kernel": 2}, {"type": "tanh"},
        {"type": "avgpool", "kernel": [2, 1], "stride": [2, 1]}, {"type": "adaptive_avgpool", "size": [1, 2]},
        {"type": "dropout", "p": 0.25}, {"type": "flatten"}, {"type": "linear", "features": 3},
        {"type": "batchnorm"}, {"type": "sigmoid"}))
    kinds = [nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d, nn.Tanh, nn.AvgPool2d, nn.AdaptiveAvgPool2d,
             nn.Dropout, nn.Flatten, nn.Linear, nn.BatchNorm1d, nn.Sigmoid]
    assert [type(m) for m in net] == kinds
    assert net[0].in_channels == 1 and net[0].padding == (1, 1) and net[3].stride == (2, 2)  # PyTorch's default
    assert net[5].kernel_size == (2, 1) and net[7].p == 0.25 and net[9].in_features == 8
    assert net(torch.rand(5, 1, 8, 8)).shape == (5, 3)


def test_trace_gives_every_output_shape_without_weights():
    shapes = nets.trace(net_of({"type": "conv", "channels": 6, "kernel": 5, "padding": 2},
                               {"type": "maxpool", "kernel": 2}, {"type": "flatten"},
                               input_shape=(1, 28, 28)))
    assert shapes == [("conv", (6, 28, 28)), ("maxpool", (6, 14, 14)), ("flatten", (1176,))]


@pytest.mark.parametrize("layers,message", [
    ([{"type": "conv", "channels": 16, "kernel": 5}, {"type": "flatten"},
      {"type": "linear", "features": 10, "in_features": 400}], "layers[2]: linear expects 400 inputs, gets 576"),
    ([{"type": "conv", "channels": 6, "kernel": 3, "in_channels": 3}],
     "layers[0]: conv expects 3 input channels, gets 1"),
    ([{"type": "linear", "features": 10}], "layers[0]: linear needs a flat input (add a flatten before it)"),
    ([{"type": "flatten"}, {"type": "conv", "channels": 2, "kernel": 1}], "layers[1]: conv needs an image input"),
    ([{"type": "conv", "channels": 6, "kernel": 11}], "layers[0]: conv on an input of shape [1, 10, 10]"),
    ([{"type": "block", "layers": [{"type": "relu"}, {"type": "maxpool", "kernel": 20}]}],
     "layers[0].layers[1]: maxpool on an input of shape [1, 10, 10]"),
    ([{"type": "residual", "channels": 8}],
     "layers[0]: residual: the body's output [8, 10, 10] and the shortcut's [1, 10, 10] differ (use_1x1conv: true"),
    ([{"type": "residual", "channels": 8, "use_1x1conv": True, "stride": 2}, {"type": "flatten"},
      {"type": "resnet_block", "channels": 4, "num_residuals": 2}],
     "layers[2].residuals[0]: residual needs an image input"),
    ([{"type": "residual", "layers": [{"type": "conv", "channels": 2, "kernel": 3}]}],
     "layers[0]: residual: the body's output [2, 8, 8] and the shortcut's [1, 10, 10] differ"),
    ([{"type": "residual", "use_1x1conv": True, "layers": [{"type": "conv", "channels": 2, "kernel": 3, "padding": 1},
                                                           {"type": "maxpool", "kernel": 11}]}],
     "layers[0].layers[1]: maxpool on an input of shape [2, 10, 10]"),
    ([{"type": "residual", "channels": 3, "layers": [{"type": "conv", "channels": 2, "kernel": 1}]}],
     "layers[0]: residual: the body ends with 2 channels, channels says 3"),
    ([{"type": "concat", "layers": [{"type": "conv", "channels": 2, "kernel": 3}]}],
     "layers[0]: concat: the body's output [2, 8, 8] does not keep the input's height and width [10, 10]"),
    ([{"type": "dense_block", "num_convs": 2, "growth_rate": 4}, {"type": "transition_block", "compression": 0.1}],
     "layers[1]: transition_block: compression 0.1 leaves no channel of 9"),
])
def test_a_size_mismatch_is_one_line_naming_the_layer(layers, message):
    with pytest.raises(nets.NetError) as err:
        nets.trace(net_of(*layers, input_shape=(1, 10, 10)))
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_bad_fields_are_refused_by_the_schema():
    for bad in ({"type": "residual"}, {"type": "residual", "stride": 2, "layers": [{"type": "relu"}]},
                {"type": "transition_block"}, {"type": "transition_block", "channels": 4, "compression": 0.5},
                {"type": "resnet_block", "channels": 4}, {"type": "batchnorm", "impl": "mine"},
                {"type": "residual", "channels": 4, "layers": [{"type": "residul"}]},
                {"type": "concat", "layers": []}, {"type": "dense_block", "num_convs": 2, "growth_rate": 0},
                {"type": "dense_block", "num_convs": 2}, {"type": "residual", "channels": 4, "use_1x1conv": True,
                                                         "shortcut": [{"type": "relu"}]},
                {"type": "conv", "channels": 0, "kernel": 3}, {"type": "conv", "channels": 2, "kernel": [3]},
                {"type": "dropout", "p": 1.0}, {"type": "softmax"}, {"type": "relu", "inplace": True}):
        with pytest.raises(ValueError):
            net_of(bad)


def test_vgg_block_is_the_pages_function():
    torch.manual_seed(0)
    mine = nets.build(net_of({"type": "vgg_block", "num_convs": 2, "channels": 4}))[0]
    page = nn.Sequential(nn.Conv2d(1, 4, kernel_size=3, padding=1), nn.ReLU(),
                         nn.Conv2d(4, 4, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(kernel_size=2, stride=2))
    assert [type(m) for m in mine] == [type(m) for m in page] and mine[2].padding == (1, 1)
    same_weights_same_output(mine, page, torch.rand(2, 1, 8, 8))
    assert isinstance(vgg_block(1, 1, 4), nn.Sequential)


def test_nin_block_is_the_pages_function():
    mine = nets.build(net_of({"type": "nin_block", "channels": 5, "kernel": 3, "stride": 2, "padding": 1}))[0]
    page = nn.Sequential(nn.Conv2d(1, 5, 3, 2, 1), nn.ReLU(), nn.Conv2d(5, 5, kernel_size=1), nn.ReLU(),
                         nn.Conv2d(5, 5, kernel_size=1), nn.ReLU())
    same_weights_same_output(mine, page, torch.rand(2, 1, 8, 8))
    assert mine[0].stride == (2, 2) and nin_block(1, 5, 3, 2, 1)[2].kernel_size == (1, 1)


def test_inception_is_the_pages_four_paths():
    block = nets.build(net_of({"type": "inception", "c1": 2, "c2": [3, 4], "c3": [1, 2], "c4": 3},
                              input_shape=(5, 6, 6)))[0]
    assert isinstance(block, Inception)
    x = torch.rand(2, 5, 6, 6)
    p1 = F.relu(block.p1_1(x))
    p2 = F.relu(block.p2_2(F.relu(block.p2_1(x))))
    p3 = F.relu(block.p3_2(F.relu(block.p3_1(x))))
    p4 = F.relu(block.p4_2(F.max_pool2d(x, 3, 1, 1)))
    assert torch.equal(block(x), torch.cat((p1, p2, p3, p4), dim=1))
    assert block(x).shape == (2, 2 + 4 + 2 + 3, 6, 6)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_named_lenets_are_the_pages_classes_weight_for_weight(name):
    torch.manual_seed(3)
    page = MODELS[name]()
    torch.manual_seed(3)
    mine = nets.build(name)
    x = torch.rand(4, 1, 28, 28)
    assert torch.equal(page(x), mine(x))  # same layers, built in the same order from the same seed


def test_a_spec_starts_from_a_named_network_and_changes_fields():
    relu = nets.Network.model_validate({"from": "lenet_pad2_avg", "activation": "relu", "change": {0: {"padding": 0}}})
    net = nets.build(relu)
    assert not any(isinstance(m, nn.Sigmoid) for m in net.modules())
    assert sum(isinstance(m, nn.ReLU) for m in net) == 4 and net[0].padding == (0, 0)
    assert net[7].in_features == 256  # inferred again after the change
    with pytest.raises(nets.NetError, match=r"change.0.padding"):
        nets.build(nets.Network.model_validate({"from": "lenet_pad2_avg", "change": {0: {"padding": -1}}}))
    with pytest.raises(ValueError, match="unknown network"):
        nets.Network.model_validate({"from": "resnet"})


def test_layer_table_counts_parameters_and_flop_with_the_library_counter():
    rows = nets.layer_table("lenet_pad2_avg")
    assert [r["output shape"] for r in rows][:3] == [[1, 6, 28, 28], [1, 6, 28, 28], [1, 6, 14, 14]]
    assert sum(r["parameters"] for r in rows) == 61706
    assert rows[0]["forward FLOP"] == 2 * 6 * 28 * 28 * 25  # a multiply-add is 2
    assert rows[7]["forward FLOP"] == 2 * 400 * 120


@pytest.mark.parametrize("name", sorted(BOOK_NETS))
def test_named_later_networks_are_the_pages_code_weight_for_weight(name):
    page, shape = BOOK_NETS[name]
    torch.manual_seed(3)
    theirs = page()
    torch.manual_seed(3)
    mine = nets.build(name)
    x = torch.rand(4, *shape)
    assert torch.equal(theirs(x), mine(x))  # training mode: the batch's statistics, same draws in the same order
    assert nets.parameters(mine) == nets.parameters(theirs)


def test_residual_is_the_pages_block_with_or_without_the_1x1_shortcut():
    for fields, page in (({}, lambda: modern.Residual(3, 3)),
                         ({"use_1x1conv": True, "stride": 2}, lambda: modern.Residual(3, 6, True, 2))):
        torch.manual_seed(1)
        theirs = page()
        torch.manual_seed(1)
        mine = nets.build(net_of({"type": "residual", "channels": 6 if fields else 3, **fields},
                                 input_shape=(3, 6, 6)))[0]
        assert isinstance(mine, modern.Skip) and mine.join == "add"
        x = torch.rand(4, 3, 6, 6)
        assert torch.equal(theirs(x), mine(x))


def test_dense_and_transition_blocks_are_the_pages_and_halve_with_compression():
    torch.manual_seed(2)
    theirs = nn.Sequential(modern.DenseBlock(2, 3, 10), modern.transition_block(23, 11))
    torch.manual_seed(2)
    mine = nets.build(net_of({"type": "dense_block", "num_convs": 2, "growth_rate": 10},
                             {"type": "transition_block", "compression": 0.5}, input_shape=(3, 8, 8)))
    x = torch.randn(4, 3, 8, 8)
    assert torch.equal(theirs(x), mine(x)) and mine(x).shape == (4, 11, 4, 4)  # 23 // 2


def test_a_residual_body_of_ones_own_and_a_concat_step():
    bottleneck = {"type": "residual", "use_1x1conv": True, "stride": 2, "activation": "none", "layers": [
        {"type": "conv", "channels": 4, "kernel": 1}, {"type": "relu"},
        {"type": "conv", "channels": 4, "kernel": 3, "padding": 1, "stride": 2}, {"type": "relu"},
        {"type": "conv", "channels": 16, "kernel": 1}]}
    step = {"type": "concat", "layers": [{"type": "batchnorm"}, {"type": "conv", "channels": 5, "kernel": 1}]}
    net = nets.build(net_of(bottleneck, step, input_shape=(8, 8, 8)))
    x = torch.randn(2, 8, 8, 8)
    block = net[0]
    assert torch.equal(block(x), block.body(x) + block.shortcut(x)) and isinstance(block.after, nn.Identity)
    assert block.shortcut.stride == (2, 2) and net(x).shape == (2, 21, 4, 4)
    assert nets.trace(net_of(bottleneck, step, input_shape=(8, 8, 8))) == [("residual", (16, 4, 4)),
                                                                           ("concat", (21, 4, 4))]


def test_activation_reaches_into_every_block():
    net = nets.build(nets.Network.model_validate({"from": "resnet18", "activation": "tanh"}))
    assert not any(isinstance(m, nn.ReLU) for m in net.modules())
    assert sum(isinstance(m, nn.Tanh) for m in net.modules()) == 1 + 8 * 2  # b1, and two in each residual block
    dense = nets.build(nets.Network.model_validate({"from": "densenet", "activation": "sigmoid"}))
    assert not any(isinstance(m, nn.ReLU) for m in dense.modules())


def test_batchnorm_from_scratch_in_the_vocabulary():
    net = nets.build(net_of({"type": "conv", "channels": 3, "kernel": 3}, {"type": "batchnorm", "impl": "scratch"},
                            {"type": "flatten"}, {"type": "batchnorm", "impl": "scratch"}))
    assert isinstance(net[1], modern.BatchNorm) and net[1].gamma.shape == (1, 3, 1, 1)
    assert net[3].gamma.shape == (1, 108)
    assert isinstance(nets.build(net_of({"type": "global_avgpool"}))[0], modern.GlobalAvgPool2d)


def test_layer_tree_opens_blocks_and_its_rows_add_up():
    top = nets.layer_tree("densenet")
    assert [r["type"] for r in top][:3] == ["block", "dense_block", "transition_block"]
    assert [r["output shape"] for r in top] == [[1, *shape] for _, shape in nets.trace("densenet")]
    deep = nets.layer_tree("densenet", depth=1)
    steps = [r for r in deep if r["layer"].startswith("1.")]
    assert [r["type"] for r in steps] == ["concat"] * 4 and steps[-1]["output shape"] == [1, 192, 24, 24]
    assert sum(r["parameters"] for r in steps) == top[1]["parameters"]
    assert sum(r["forward FLOP"] for r in steps) == top[1]["forward FLOP"]
    assert [r for r in deep if r["depth"] == 0] == top


def _meta_shapes(model, input_shape=None) -> list[tuple[int, ...]]:
    """Each top-level layer's output shape, found by PyTorch on the meta device: the oracle for ``trace``."""
    shape = tuple(input_shape or nets.input_shape(model))
    net = nets.build(model, shape, device="meta").eval()
    x, out = torch.empty((1, *shape), device="meta"), []
    for layer in net:
        x = layer(x)
        out.append(tuple(x.shape[1:]))
    return out


def _spec_models():
    from harness.specs.spec import load_specs

    root = Path(__file__).resolve().parents[2] / "experiments"
    for spec in load_specs([str(root), str(root / "studies"), str(root / "peer")]):
        model = getattr(spec.settings, "model", None)
        if model is not None:
            size = getattr(spec.settings, "resize", None)
            shape = getattr(spec.settings, "input_shape", None) or ((1, size, size) if size else None)
            yield spec.name, model, shape


@pytest.mark.parametrize("name", list(nets.NAMED))
def test_trace_works_out_the_shapes_pytorch_computes(name):
    """``trace`` needs no torch: its arithmetic is held to PyTorch's own, network by network."""
    assert [out for _, out in nets.trace(name)] == _meta_shapes(name)


def test_every_spec_network_traces_as_pytorch_runs_it():
    for spec, model, shape in _spec_models():
        assert [out for _, out in nets.trace(model, shape)] == _meta_shapes(model, shape), spec


@pytest.mark.parametrize("name", list(nets.NAMED))
def test_foldable_is_what_the_built_network_says(name):
    from harness.book.models import foldable

    assert nets.foldable(name) == foldable(nets.build(name, device="meta"))
