"""The book's batch norm, ResNet and DenseNet code: the from-scratch layer against the library's, the printed shapes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from harness.book import modern


@pytest.mark.parametrize("shape", [(8, 3, 5, 4), (16, 7)])
def test_scratch_batch_norm_trains_like_the_library_and_keeps_the_biased_variance(shape):
    torch.manual_seed(0)
    X = torch.randn(shape) * 3 + 2
    mine = modern.BatchNorm(shape[1], num_dims=len(shape))
    lib = nn.BatchNorm2d(shape[1]) if len(shape) == 4 else nn.BatchNorm1d(shape[1])
    assert torch.allclose(mine(X), lib(X), atol=1e-5)
    dims = (0, 2, 3) if len(shape) == 4 else (0,)
    m = X.numel() // shape[1]
    assert torch.allclose(mine.moving_mean.flatten(), lib.running_mean, atol=1e-6)
    assert torch.allclose(mine.moving_var.flatten(), 0.9 + 0.1 * X.var(dim=dims, unbiased=False), atol=1e-5)
    # the library keeps the unbiased variance: the two moving estimates differ by m / (m - 1)
    ratio = (lib.running_var - 0.9) / (mine.moving_var.flatten() - 0.9)
    assert torch.allclose(ratio, torch.full_like(ratio, m / (m - 1)), atol=1e-4)


def test_scratch_batch_norm_evaluates_with_the_moving_statistics_and_learns_gamma_and_beta():
    bn = modern.BatchNorm(2, num_dims=4)
    X = torch.randn(4, 2, 3, 3)
    bn.eval()
    assert torch.allclose(bn(X), X / torch.sqrt(torch.tensor(1 + 1e-5)))  # fresh: mean 0, variance 1
    assert torch.equal(bn.moving_mean, torch.zeros(1, 2, 1, 1))  # evaluation leaves the statistics alone
    bn.train()
    bn(X).pow(2).sum().backward()
    assert bn.gamma.grad.abs().sum() > 0 and bn.beta.grad is not None
    assert "moving_mean" in bn.state_dict() and not bn.moving_mean.requires_grad


def test_the_from_scratch_and_concise_bn_lenets_compute_the_same():
    torch.manual_seed(0)
    scratch = modern.bn_lenet()
    torch.manual_seed(0)
    concise = modern.bn_lenet(norm=None)
    X = torch.rand(32, 1, 28, 28)
    assert torch.allclose(scratch(X), concise(X), atol=1e-5)
    assert sum(p.numel() for p in scratch.parameters()) == sum(p.numel() for p in concise.parameters())


def test_residual_and_dense_blocks_print_the_books_shapes():
    X = torch.rand(4, 3, 6, 6)
    assert modern.Residual(3, 3)(X).shape == (4, 3, 6, 6)
    assert modern.Residual(3, 6, use_1x1conv=True, strides=2)(X).shape == (4, 6, 3, 3)
    Y = modern.DenseBlock(2, 3, 10)(torch.randn(4, 3, 8, 8))
    assert Y.shape == (4, 23, 8, 8)
    assert modern.transition_block(23, 10)(Y).shape == (4, 10, 4, 4)
    with pytest.raises(RuntimeError):
        modern.Residual(3, 6)(X)  # no 1x1 convolution: the input cannot be added to a 6-channel output


def test_resnet_block_halves_the_resolution_except_after_b1():
    first, later = modern.resnet_block(64, 64, 2, first_block=True), modern.resnet_block(64, 128, 2)
    assert [b.conv3 is None for b in first] == [True, True]
    assert later[0].conv3.stride == (2, 2) and later[1].conv3 is None


def test_global_average_pooling_is_one_average_per_channel():
    X = torch.randn(2, 5, 7, 3)
    assert torch.allclose(modern.GlobalAvgPool2d()(X), nn.AdaptiveAvgPool2d(1)(X))


def test_skip_joins_by_sum_or_channels_and_refuses_others():
    body = nn.Sequential(nn.Conv2d(2, 2, 1))
    X = torch.rand(1, 2, 3, 3)
    assert torch.equal(modern.Skip(body, nn.Identity(), nn.Identity(), "add")(X), body(X) + X)
    assert torch.equal(modern.Skip(body, nn.Identity(), nn.Identity(), "cat")(X), torch.cat((X, body(X)), 1))
    with pytest.raises(ValueError, match="unknown join"):
        modern.Skip(body, nn.Identity(), nn.Identity(), "mul")
