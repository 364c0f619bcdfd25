"""The LeNet variants a spec can name (C1-C3): shapes, the layers that tell them apart, Xavier init."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from harness.book.models import (
    CPU_FOLD,
    BatchFolded,
    default_fold,
    fast_network,
    init_xavier,
    layer_shapes,
    pool_before_sigmoid,
)
from harness.book.nets import build
from tests.book.helpers import MODELS


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_lenet_maps_a_batch_of_images_to_ten_logits(name):
    torch.manual_seed(0)
    net = build(name)
    assert net(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    assert net.to(memory_format=torch.channels_last)(
        torch.rand(3, 1, 28, 28).contiguous(memory_format=torch.channels_last)).shape == (3, 10)


def test_c1_no_padding_max_pool_fc_256_120_84_10():
    net = build("lenet_nopad_max")
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert [c.padding for c in convs] == [(0, 0), (0, 0)]
    assert sum(isinstance(m, nn.MaxPool2d) for m in net.modules()) == 2
    assert [(m.in_features, m.out_features) for m in linears] == [(256, 120), (120, 84), (84, 10)]
    assert layer_shapes(net, torch.zeros(1, 1, 28, 28))[5] == ("MaxPool2d", [1, 16, 4, 4])


def test_c2_padding_2_average_pool_and_c3_padding_2_max_pool():
    c2, c3 = build("lenet_pad2_avg"), build("lenet_pad2_max")
    for net, pool in ((c2, nn.AvgPool2d), (c3, nn.MaxPool2d)):
        convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
        assert convs[0].padding == (2, 2) and convs[1].padding == (0, 0)
        assert sum(isinstance(m, pool) for m in net.modules()) == 2
        assert next(m for m in net.modules() if isinstance(m, nn.Linear)).in_features == 400
        assert layer_shapes(net, torch.zeros(1, 1, 28, 28))[-1] == ("Linear", [1, 10])
    assert sum(p.numel() for p in c2.parameters()) == sum(p.numel() for p in c3.parameters()) == 61706


def test_xavier_init_draws_uniform_weights_in_the_glorot_bound_and_keeps_biases():
    torch.manual_seed(0)
    net = build("lenet_pad2_avg")
    biases = [m.bias.detach().clone() for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    init_xavier(net)
    layers = [m for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    for m, b in zip(layers, biases):
        fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(m.weight)
        bound = (6 / (fan_in + fan_out)) ** 0.5
        top = float(m.weight.detach().abs().max())
        assert 0.8 * bound < top <= bound
        assert torch.equal(m.bias, b)


def test_same_seed_same_weights():
    torch.manual_seed(3)
    a = build("lenet_nopad_max").state_dict()
    torch.manual_seed(3)
    b = build("lenet_nopad_max").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def _kinds(net):
    return [type(m).__name__ for m in net]


def test_pool_before_sigmoid_swaps_only_max_pools_and_shares_the_parameters():
    c1 = build("lenet_nopad_max")
    fast = pool_before_sigmoid(c1)
    assert _kinds(fast) == ["Conv2d", "MaxPool2d", "Sigmoid", "Conv2d", "MaxPool2d", "Sigmoid", "Flatten",
                            "Linear", "Sigmoid", "Linear", "Sigmoid", "Linear"]
    assert [id(p) for p in fast.parameters()] == [id(p) for p in c1.parameters()]
    c2 = build("lenet_pad2_avg")  # average pooling does not commute with the sigmoid: unchanged
    assert _kinds(pool_before_sigmoid(c2)) == _kinds(c2)


def _outputs_and_grads(net, model, x, y):
    """``model``'s outputs on x and the gradients of the cross-entropy on ``net``'s parameters."""
    out = model(x)
    net.zero_grad()
    nn.CrossEntropyLoss()(out, y).backward()
    return out.detach(), [p.grad.clone() for p in net.parameters()]


@pytest.mark.parametrize("name", ["lenet_nopad_max", "lenet_pad2_max"])
@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_pool_before_sigmoid_gives_the_same_outputs_and_gradients(name, memory_format):
    torch.manual_seed(0)
    net = build(name).to(memory_format=memory_format)
    fast = pool_before_sigmoid(net)
    x = torch.rand(64, 1, 28, 28) * 4
    x[:, :, :10] = 0  # a blank band, as around a garment: windows of equal values, where ties are broken
    x = x.contiguous(memory_format=memory_format)
    y = torch.randint(0, 10, (64,))
    out_a, grad_a = _outputs_and_grads(net, net, x, y)
    out_b, grad_b = _outputs_and_grads(net, fast, x, y)
    assert torch.equal(out_a, out_b)
    for a, b in zip(grad_a, grad_b):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("batch", [64, 62, 63])  # folds by 4, by gcd 2, not at all
@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_batch_folded_gives_the_networks_outputs_and_gradients(name, batch, memory_format):
    torch.manual_seed(0)
    net = build(name).to(memory_format=memory_format)
    folded = fast_network(net, pool_first=False, fold=4, channels_last=memory_format == torch.channels_last)
    assert isinstance(folded, BatchFolded) and [id(p) for p in folded.parameters()] == [id(p) for p in net.parameters()]
    x = torch.rand(batch, 1, 28, 28) * 4
    x[:, :, :10] = 0  # a blank band: tied pooling windows
    y = torch.randint(0, 10, (batch,))
    out_a, grad_a = _outputs_and_grads(net, net, x.contiguous(memory_format=memory_format), y)
    out_b, grad_b = _outputs_and_grads(net, folded, x, y)
    torch.testing.assert_close(out_a, out_b, rtol=1e-5, atol=1e-6)
    for a, b in zip(grad_a, grad_b):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", [*sorted(MODELS), "bn_lenet"])
@pytest.mark.parametrize("fold", [1, 4])
def test_the_fast_network_hands_the_layer_before_the_flatten_a_channels_last_gradient(name, fold):
    """The flatten's backward keeps the layout, folded or not: ATen's pooling backward on a contiguous gradient and
    a channels_last input runs its slow mixed-layout path."""
    torch.manual_seed(0)
    net = build(name, (1, 28, 28)).to(memory_format=torch.channels_last)
    fast = fast_network(net, fold=fold)
    assert [id(p) for p in fast.parameters()] == [id(p) for p in net.parameters()]
    layers = list(fast.net if fold > 1 else fast)
    before = layers[next(i for i, m in enumerate(layers) if isinstance(m, nn.Flatten)) - 1]
    outs, grads = [], []
    before.register_forward_hook(lambda module, args, out: outs.append(out))
    x = torch.rand(8, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    y = fast(x)
    outs[0].register_hook(grads.append)  # after the network's own hooks: the gradient as the layer receives it
    y.sum().backward()
    assert len(grads) == 1 and grads[0].is_contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():  # no gradient, no hook: evaluation as before
        assert fast(x).shape == (8, 10)


def test_batch_folded_keeps_each_image_apart():
    """Changing one image of a folded group changes only that image's output."""
    torch.manual_seed(0)
    folded = fast_network(build("lenet_nopad_max"), fold=4)
    x = torch.rand(8, 1, 28, 28)
    with torch.no_grad():
        before = folded(x)
        x[5] = torch.rand(1, 28, 28)
        after = folded(x)
    changed = (before != after).any(dim=1)
    assert changed.tolist() == [False] * 5 + [True] + [False] * 2


def test_fast_network_is_the_network_itself_when_nothing_is_switched_on():
    net = build("lenet_pad2_avg")
    assert fast_network(net, pool_first=False, fold=1, channels_last=False) is net


def test_batch_folded_refuses_other_padding_modes():
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect"), nn.Flatten())
    with pytest.raises(ValueError, match="zero-padded"):
        BatchFolded(net, 4)


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_batch_folded_batch_norm_keeps_the_whole_batchs_statistics(memory_format):
    """Folded, nn.BatchNorm2d still normalises each channel over every image and pixel: same outputs, gradients,
    running mean and (unbiased) running variance as the unfolded network, in training and in eval mode."""
    torch.manual_seed(0)
    net = init_xavier(build("bn_lenet", (1, 28, 28))).to(memory_format=memory_format)
    twin = copy.deepcopy(net)
    folded = fast_network(twin, fold=4, channels_last=memory_format == torch.channels_last)
    assert isinstance(folded, BatchFolded)
    x = torch.rand(64, 1, 28, 28).contiguous(memory_format=memory_format)
    y = torch.randint(0, 10, (64,))
    out_a, grad_a = _outputs_and_grads(net, net, x, y)
    out_b, grad_b = _outputs_and_grads(twin, folded, x, y)
    torch.testing.assert_close(out_a, out_b, rtol=1e-5, atol=1e-5)
    scale = max(float(g.abs().max()) for g in grad_a)  # sums over 64 x 784 values, in another order: rounding
    for (name, _), a, b in zip(net.named_parameters(), grad_a, grad_b):
        # (a bias just before batch norm has a gradient of zero in exact arithmetic: only its rounding is compared)
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * scale, msg=name)
    for (name, a), b in zip(net.named_buffers(), twin.buffers()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7, msg=name)
    net.eval(), folded.eval()
    with torch.no_grad():
        torch.testing.assert_close(net(x), folded(x), rtol=1e-5, atol=1e-5)


def test_the_default_fold_is_the_cpus_and_leaves_batch_norm_unfolded():
    assert default_fold(build("lenet_pad2_avg"), cuda=False) == CPU_FOLD == 4
    assert default_fold(build("lenet_pad2_avg"), cuda=True) == 1
    assert default_fold(build("bn_lenet", (1, 28, 28)), cuda=False) == 1  # folding it was measured no faster
