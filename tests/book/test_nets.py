"""The layer vocabulary: every entry, the chapter's blocks against the pages' code, shape errors, named networks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from harness.book import nets
from harness.book.models import Inception, nin_block, vgg_block
from tests.book.helpers import MODELS


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
])
def test_a_size_mismatch_is_one_line_naming_the_layer(layers, message):
    with pytest.raises(nets.NetError) as err:
        nets.trace(net_of(*layers, input_shape=(1, 10, 10)))
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_bad_fields_are_refused_by_the_schema():
    for bad in ({"type": "conv", "channels": 0, "kernel": 3}, {"type": "conv", "channels": 2, "kernel": [3]},
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
