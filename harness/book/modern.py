"""The chapter's last sections as the pages write them: batch normalization, ResNet and DenseNet.

The code follows d2l v2 7.5-7.7 (d2l.ai 8.5-8.7; Dive-into-DL-PyTorch 5.10-5.12) so it stays recognisable. The
spec vocabulary (``harness.book.nets``) builds the same blocks from its own layers, joined by ``Skip``; the tests
check the two weight for weight.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def batch_norm(is_training, X, gamma, beta, moving_mean, moving_var, eps, momentum):
    """Batch normalization from scratch: the batch's statistics in training, the moving averages in evaluation.

    The variance is the biased one (divided by m) in both places; ``nn.BatchNorm2d`` keeps the unbiased one (m - 1)
    in its running estimate, so the two layers' moving variances differ by m / (m - 1) (the worked example shows it).
    """
    if not is_training:
        X_hat = (X - moving_mean) / torch.sqrt(moving_var + eps)
    else:
        assert len(X.shape) in (2, 4)
        if len(X.shape) == 2:  # fully connected: statistics over the batch, per feature
            mean = X.mean(dim=0)
            var = ((X - mean) ** 2).mean(dim=0)
        else:  # convolutional: over the batch and every position, per channel
            mean = X.mean(dim=(0, 2, 3), keepdim=True)
            var = ((X - mean) ** 2).mean(dim=(0, 2, 3), keepdim=True)
        X_hat = (X - mean) / torch.sqrt(var + eps)
        moving_mean = momentum * moving_mean + (1.0 - momentum) * mean
        moving_var = momentum * moving_var + (1.0 - momentum) * var
    Y = gamma * X_hat + beta  # scale and shift
    return Y, moving_mean, moving_var


class BatchNorm(nn.Module):
    """The pages' BatchNorm layer: learned gamma and beta, moving mean and variance (momentum 0.9, eps 1e-5).

    The pages keep the moving statistics as plain attributes moved to the input's device in ``forward``; here they
    are buffers, so they move with the module and are saved with its state. ``num_dims`` is 2 after a dense layer,
    4 after a convolution.
    """

    def __init__(self, num_features, num_dims):
        super().__init__()
        shape = (1, num_features) if num_dims == 2 else (1, num_features, 1, 1)
        self.gamma = nn.Parameter(torch.ones(shape))
        self.beta = nn.Parameter(torch.zeros(shape))
        self.register_buffer("moving_mean", torch.zeros(shape))
        self.register_buffer("moving_var", torch.ones(shape))

    def forward(self, X):
        Y, moving_mean, moving_var = batch_norm(self.training, X, self.gamma, self.beta, self.moving_mean,
                                                self.moving_var, eps=1e-5, momentum=0.9)
        self.moving_mean, self.moving_var = moving_mean.detach(), moving_var.detach()
        return Y


def bn_lenet(norm=BatchNorm) -> nn.Sequential:
    """d2l v2 7.5's LeNet with batch normalization after every convolution and hidden dense layer.

    ``norm=BatchNorm``: the from-scratch layer (7.5.3); ``norm=None``: the concise one with nn.BatchNorm2d/1d (7.5.4).
    """
    def bn(n, dims):
        if norm is None:
            return nn.BatchNorm2d(n) if dims == 4 else nn.BatchNorm1d(n)
        return norm(n, num_dims=dims)

    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5), bn(6, 4), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), bn(16, 4), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2), nn.Flatten(),
        nn.Linear(16 * 4 * 4, 120), bn(120, 2), nn.Sigmoid(),
        nn.Linear(120, 84), bn(84, 2), nn.Sigmoid(),
        nn.Linear(84, 10))


class Residual(nn.Module):
    """d2l v2 7.6's residual block: two 3x3 convolutions with batch norm, the input added back before the last ReLU.

    ``use_1x1conv`` puts a 1x1 convolution (with ``strides``) on the shortcut, so the input matches the body's
    output when the channels or the resolution change.
    """

    def __init__(self, input_channels, num_channels, use_1x1conv=False, strides=1):
        super().__init__()
        self.conv1 = nn.Conv2d(input_channels, num_channels, kernel_size=3, padding=1, stride=strides)
        self.conv2 = nn.Conv2d(num_channels, num_channels, kernel_size=3, padding=1)
        if use_1x1conv:
            self.conv3 = nn.Conv2d(input_channels, num_channels, kernel_size=1, stride=strides)
        else:
            self.conv3 = None
        self.bn1 = nn.BatchNorm2d(num_channels)
        self.bn2 = nn.BatchNorm2d(num_channels)

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3:
            X = self.conv3(X)
        Y += X
        return F.relu(Y)


def resnet_block(input_channels, num_channels, num_residuals, first_block=False):
    """d2l v2 7.6's ResNet stage: residual blocks, the first halving the resolution (except after b1)."""
    blk = []
    for i in range(num_residuals):
        if i == 0 and not first_block:
            blk.append(Residual(input_channels, num_channels, use_1x1conv=True, strides=2))
        else:
            blk.append(Residual(num_channels, num_channels))
    return blk


def conv_block(input_channels, num_channels):
    """d2l v2 7.7's DenseNet convolution block: batch norm, ReLU, 3x3 convolution (the pre-activation order)."""
    return nn.Sequential(
        nn.BatchNorm2d(input_channels), nn.ReLU(),
        nn.Conv2d(input_channels, num_channels, kernel_size=3, padding=1))


class DenseBlock(nn.Module):
    """d2l v2 7.7's dense block: each convolution block's output concatenated to its input on the channels."""

    def __init__(self, num_convs, input_channels, num_channels):
        super().__init__()
        layer = []
        for i in range(num_convs):
            layer.append(conv_block(num_channels * i + input_channels, num_channels))
        self.net = nn.Sequential(*layer)

    def forward(self, X):
        for blk in self.net:
            Y = blk(X)
            X = torch.cat((X, Y), dim=1)  # concatenate each block's input and output on the channels
        return X


def transition_block(input_channels, num_channels):
    """d2l v2 7.7's transition block: a 1x1 convolution to fewer channels, then 2x2 average pooling."""
    return nn.Sequential(
        nn.BatchNorm2d(input_channels), nn.ReLU(),
        nn.Conv2d(input_channels, num_channels, kernel_size=1),
        nn.AvgPool2d(kernel_size=2, stride=2))


class GlobalAvgPool2d(nn.Module):
    """Dive-into-DL-PyTorch 5.8's global average pooling: a pooling window the size of the input."""

    def forward(self, x):
        return F.avg_pool2d(x, kernel_size=x.size()[2:])


class Skip(nn.Module):
    """A skip connection of the spec vocabulary: ``after(join(body(x), shortcut(x)))``, join by sum or channels.

    ``add`` is ResNet's (the shortcut an identity or a 1x1 convolution), ``cat`` DenseNet's (the shortcut an
    identity). The body is an nn.Sequential of the spec's layers.
    """

    def __init__(self, body: nn.Sequential, shortcut: nn.Module, after: nn.Module, join: str):
        super().__init__()
        if join not in ("add", "cat"):
            raise ValueError(f"unknown join {join!r}")
        self.body, self.shortcut, self.after, self.join = body, shortcut, after, join

    def forward(self, X):
        Y, X = self.body(X), self.shortcut(X)
        return self.after(Y + X if self.join == "add" else torch.cat((X, Y), dim=1))

    def extra_repr(self) -> str:
        return f"join={self.join}"
