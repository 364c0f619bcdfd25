"""The chapter's models as the pages write them: Conv2D, the LeNets, and the modern CNNs' blocks.

The code follows the pages (d2l v2 sections 6.2, 6.6 and 7.1-7.4; Dive-into-DL-PyTorch 5.1 and 5.5) so it stays
recognisable. Specs build networks from the vocabulary in ``harness.book.nets``, which calls the blocks here; the
tests check that the named LeNets build the pages' classes weight for weight.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from harness.book.nets import CPU_FOLD
from harness.book.ops import corr2d


class Conv2D(nn.Module):
    """The hand-written 2D convolution layer: corr2d plus a scalar bias.

    ``init='randn'`` is Dive-into-DL-PyTorch 5.1 (weight and bias ~ N(0, 1));
    ``init='rand'`` is d2l v2 6.2 (weight ~ U[0, 1), bias 0).
    """

    def __init__(self, kernel_size, init: str = "randn"):
        super().__init__()
        if init == "randn":
            self.weight = nn.Parameter(torch.randn(kernel_size))
            self.bias = nn.Parameter(torch.randn(1))
        elif init == "rand":
            self.weight = nn.Parameter(torch.rand(kernel_size))
            self.bias = nn.Parameter(torch.zeros(1))
        else:
            raise ValueError(f"unknown init {init!r}")

    def forward(self, x):
        return corr2d(x, self.weight) + self.bias


class LeNet(nn.Module):
    """Dive-into-DL-PyTorch 5.5's LeNet: no padding, max pooling, fc 256-120-84-10 (C1, A13)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 6, 5),  # in_channels, out_channels, kernel_size
            nn.Sigmoid(),
            nn.MaxPool2d(2, 2),  # kernel_size, stride
            nn.Conv2d(6, 16, 5),
            nn.Sigmoid(),
            nn.MaxPool2d(2, 2),
        )
        self.fc = nn.Sequential(
            nn.Linear(16 * 4 * 4, 120),
            nn.Sigmoid(),
            nn.Linear(120, 84),
            nn.Sigmoid(),
            nn.Linear(84, 10),
        )

    def forward(self, img):
        feature = self.conv(img)
        return self.fc(feature.reshape(img.shape[0], -1))


def lenet_d2l() -> nn.Sequential:
    """d2l v2 6.6's LeNet: padding 2 on the first conv, average pooling (C2, A12)."""
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(),
        nn.Linear(120, 84), nn.Sigmoid(),
        nn.Linear(84, 10),
    )


def init_xavier(net: nn.Module) -> nn.Module:
    """d2l's train_ch6 initialisation: Xavier-uniform weights on every Linear and Conv2d."""

    def init_weights(m):
        if type(m) is nn.Linear or type(m) is nn.Conv2d:
            nn.init.xavier_uniform_(m.weight)

    return net.apply(init_weights)


def vgg_block(num_convs: int, in_channels: int, out_channels: int) -> nn.Sequential:
    """d2l 7.2's VGG block: ``num_convs`` 3x3 convolutions (padding 1) with ReLU, then a 2x2 max-pool."""
    layers = []
    for _ in range(num_convs):
        layers.append(nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1))
        layers.append(nn.ReLU())
        in_channels = out_channels
    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)


def nin_block(in_channels: int, out_channels: int, kernel_size, strides, padding) -> nn.Sequential:
    """d2l 7.3's NiN block: a convolution, then two 1x1 convolutions acting as per-pixel dense layers, all ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, strides, padding), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=1), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=1), nn.ReLU())


class Inception(nn.Module):
    """d2l 7.4's Inception block: four parallel paths joined on the channels; c1-c4 are their output channels."""

    def __init__(self, in_channels, c1, c2, c3, c4, **kwargs):
        super().__init__(**kwargs)
        self.p1_1 = nn.Conv2d(in_channels, c1, kernel_size=1)  # path 1: a 1x1 convolution
        self.p2_1 = nn.Conv2d(in_channels, c2[0], kernel_size=1)  # path 2: 1x1, then 3x3
        self.p2_2 = nn.Conv2d(c2[0], c2[1], kernel_size=3, padding=1)
        self.p3_1 = nn.Conv2d(in_channels, c3[0], kernel_size=1)  # path 3: 1x1, then 5x5
        self.p3_2 = nn.Conv2d(c3[0], c3[1], kernel_size=5, padding=2)
        self.p4_1 = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)  # path 4: 3x3 max-pool, then 1x1
        self.p4_2 = nn.Conv2d(in_channels, c4, kernel_size=1)

    def forward(self, x):
        p1 = F.relu(self.p1_1(x))
        p2 = F.relu(self.p2_2(F.relu(self.p2_1(x))))
        p3 = F.relu(self.p3_2(F.relu(self.p3_1(x))))
        p4 = F.relu(self.p4_2(self.p4_1(x)))
        return torch.cat((p1, p2, p3, p4), dim=1)


def _layers(net: nn.Module) -> list[nn.Module]:
    """The leaf layers in order (LeNet's two halves joined by the flatten its forward does)."""
    return list(net) if isinstance(net, nn.Sequential) else [*net.conv, nn.Flatten(), *net.fc]


def pool_before_sigmoid(net: nn.Module) -> nn.Sequential:
    """The same network with every ``Sigmoid, MaxPool2d`` pair run as ``MaxPool2d, Sigmoid``: the harness's fast order.

    The sigmoid is increasing, so the max of the sigmoids is the sigmoid of the max: the outputs are identical (bit
    for bit, tested) while the sigmoid and its gradient run on a quarter of the values. The gradients are the same
    except where two different pre-activations of one window round to the same sigmoid value (saturation), where
    the tutorial's order passes the gradient to the first of them and this order to the larger. Average pooling does
    not commute with the sigmoid and is left where it is. The layers (so the parameters) are ``net``'s own.
    """
    out: list[nn.Module] = []
    for layer in _layers(net):
        if isinstance(layer, nn.MaxPool2d) and out and isinstance(out[-1], nn.Sigmoid):
            out.insert(len(out) - 1, layer)
        else:
            out.append(layer)
    return nn.Sequential(*out)


class BatchFolded(nn.Module):
    """The same network with the batch folded into the channels up to the flatten: the harness's fast layout.

    Every ``groups`` images are stacked along the channel axis (a batch of 256 one-channel images becomes 64 images of
    4 channels) and each convolution runs as a grouped convolution whose groups all hold the layer's own weights, so
    each image still meets exactly its own filters; pooling and the sigmoid work channel by channel. The maths is the
    network's; what changes is the shape oneDNN sees: 24 channels after the first convolution instead of 6, which its
    channels_last kernels pack into SIMD vectors instead of running scalar loops. Outputs and gradients agree to
    rounding (tested), not bit for bit: the sums run in another order. A batch that ``groups`` does not divide folds
    by their greatest common divisor. Batch normalization (``nn.BatchNorm2d``) keeps its statistics per channel over
    every image and pixel of the batch, as unfolded (``_folded_batch_norm``).
    """

    def __init__(self, net: nn.Sequential, groups: int = 4, memory_format=torch.channels_last):
        super().__init__()
        if any(isinstance(m, nn.Conv2d) and m.padding_mode != "zeros" for m in net):
            raise ValueError("BatchFolded supports zero-padded convolutions only")
        self.net, self.groups, self.memory_format = net, groups, memory_format

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        g = math.gcd(n, self.groups)
        h = x.reshape(n // g, g * x.shape[1], *x.shape[2:]).contiguous(memory_format=self.memory_format)
        folded = True
        for layer in self.net:
            if folded and isinstance(layer, nn.Conv2d):
                bias = None if layer.bias is None else layer.bias.repeat(g)
                h = F.conv2d(h, layer.weight.repeat(g, 1, 1, 1), bias, layer.stride, layer.padding, layer.dilation,
                             groups=g * layer.groups)
            elif folded and isinstance(layer, nn.BatchNorm2d):
                h = _folded_batch_norm(layer, h, g)
            elif folded and isinstance(layer, nn.Flatten):
                h, folded = keep_layout_grad(h).reshape(n, -1), False  # a row per image, (C, H, W) order
            else:
                h = layer(h)
        return h


def keep_layout_grad(h: torch.Tensor) -> torch.Tensor:
    """``h``, with its gradient handed back channels_last when ``h`` is: a flatten's (a reshape's) own backward
    gives the layer before it a contiguous gradient, and ATen's pooling backward on mixed layouts runs its slow
    path (tests/book/test_models.py)."""
    if h.requires_grad and h.dim() == 4 and h.is_contiguous(memory_format=torch.channels_last):
        h.register_hook(lambda grad: grad.contiguous(memory_format=torch.channels_last))
    return h


class Flatten(nn.Flatten):
    """``nn.Flatten`` whose gradient keeps its input's channels_last layout (``keep_layout_grad``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(keep_layout_grad(x))


def _folded_batch_norm(layer: nn.BatchNorm2d, h: torch.Tensor, g: int) -> torch.Tensor:
    """``layer`` on a folded batch, with the unfolded batch's statistics: each of its channels over all n x H x W
    values (the same count, so the same unbiased running variance), whichever the memory layout.

    Channels_last, the folded batch's memory is (n/g, H, W, g, C): every row of C values is one image's pixel, so
    the layer runs on it as a batch of n x H x W one-pixel images. Contiguous, the memory is the unfolded batch's.
    """
    n_g, gc, height, width = h.shape
    if h.is_contiguous(memory_format=torch.channels_last):
        rows = h.permute(0, 2, 3, 1).reshape(-1, gc // g, 1, 1)  # a view: one row per (image, pixel)
        return layer(rows).reshape(n_g, height, width, gc).permute(0, 3, 1, 2)
    return layer(h.reshape(n_g * g, gc // g, height, width)).reshape(h.shape)




def default_fold(net: nn.Module, cuda: bool) -> int:
    """The harness loop's fold when a spec names none: ``CPU_FOLD`` on the CPU, 1 (off) on CUDA, where grouped
    convolutions were never compared with cuDNN's plain ones, and 1 for networks with batch norm, where folding was
    measured no faster (tests/bench/test_bench_variants.py; a spec may still ask for it with ``fold:``)."""
    if cuda or any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules()):
        return 1
    return CPU_FOLD


FOLDABLE = (nn.Conv2d, nn.Sigmoid, nn.ReLU, nn.Tanh, nn.MaxPool2d, nn.AvgPool2d, nn.BatchNorm2d)


def foldable(net: nn.Module) -> bool:
    """Can the batch be folded into the channels? Through plain convolutions, activations, pooling and batch norm."""
    layers = _layers(net)
    flat = next((i for i, m in enumerate(layers) if isinstance(m, nn.Flatten)), None)
    return flat is not None and all(isinstance(m, FOLDABLE) for m in layers[:flat])


def fast_network(net: nn.Module, pool_first: bool = True, fold: int = 1, channels_last: bool = True) -> nn.Module:
    """The harness loop's view of ``net``, sharing its parameters: max-pool before the sigmoid, the batch folded,
    and channels_last, the flatten's gradient kept in that layout.

    A network with other layers before its flatten (blocks, the book's own batch norm, dropout) is not folded.
    """
    fast = pool_before_sigmoid(net) if pool_first else net
    if fold > 1 and foldable(fast):
        layout = torch.channels_last if channels_last else torch.contiguous_format
        return BatchFolded(nn.Sequential(*_layers(fast)), fold, layout)
    if channels_last and isinstance(fast, nn.Sequential) and any(type(m) is nn.Flatten for m in fast):
        fast = nn.Sequential(*[Flatten(m.start_dim, m.end_dim) if type(m) is nn.Flatten else m for m in fast])
    return fast


def layer_shapes(net: nn.Module, x: torch.Tensor) -> list[tuple[str, list[int]]]:
    """d2l's layer-by-layer walk: each leaf layer's name and output shape."""
    out = []
    for layer in _layers(net):
        x = layer(x)
        out.append((layer.__class__.__name__, list(x.shape)))
    return out
