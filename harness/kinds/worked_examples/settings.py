"""The worked examples' settings and metric table.

Without torch: validating a spec reads this, not the measurement (``measure``).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from harness.kinds.base import Metric
from harness.schema import Strict

Channels = Annotated[int, Field(ge=1, le=16)]
Side = Annotated[int, Field(ge=1, le=64)]
KernelSide = Annotated[int, Field(ge=1, le=8)]


class RandomCase(Strict):
    """One random check: input (C_i, H, W) against kernels (C_o, C_i, kh, kw); pools use kh x kw."""

    c_in: Channels
    height: Side
    width: Side
    c_out: Channels
    kh: KernelSide
    kw: KernelSide


class Settings(Strict):
    random_cases: list[RandomCase] = Field(default_factory=list)


def _output(name: str, meaning: str) -> Metric:
    """An example's exact output (a tensor as nested lists, a shape, a count): no direction is better."""
    return Metric(name, "", "none", meaning)


def _gap(name: str, meaning: str) -> Metric:
    """The largest absolute difference between two ways of computing the same thing: the smaller, the better."""
    return Metric(name, "", "lower", meaning)


METRICS: tuple[Metric, ...] = (
    _output("corr2d", "corr2d of the 3x3 input and the 2x2 kernel"),
    _output("edge_detect", "the 1x2 edge kernel on the stripe image"),
    _output("edge_detect_transposed", "the 1x2 edge kernel on the transposed stripe image"),
    _output("multi_in", "corr2d_multi_in of the two-channel input"),
    _output("multi_in_out", "corr2d_multi_in_out with three output channels"),
    _gap("conv1x1_abs_diff", "summed |1x1 as matrix product - 1x1 as corr2d| on a random input"),
    _output("conv_shapes_8x8", "output shapes of four paddings and strides on an 8x8 input"),
    _output("pool_max", "pool2d max of the 3x3 input"),
    _output("pool_avg", "pool2d avg of the 3x3 input"),
    _output("maxpool_w3", "nn.MaxPool2d(3) on the 4x4 input"),
    _output("maxpool_w3_p1_s2", "nn.MaxPool2d(3, padding=1, stride=2) on the 4x4 input"),
    _output("maxpool_w23_s23_p01", "nn.MaxPool2d((2, 3), stride=(2, 3), padding=(0, 1)) on the 4x4 input"),
    _output("maxpool_w24_p12_s23", "nn.MaxPool2d((2, 4), padding=(1, 2), stride=(2, 3)) on the 4x4 input"),
    _output("maxpool_2ch", "nn.MaxPool2d(3, padding=1, stride=2) on two channels"),
    _output("conv_pool_shapes", "output shapes of a padded convolution and a strided pool"),
    _output("lenet_d2l_shapes", "d2l LeNet's output shape after each layer"),
    _output("lenet_55_shapes", "the 5.5 LeNet's output shape after each layer"),
    _output("lenet_55_first_linear_in", "in_features of the 5.5 LeNet's first Linear layer"),
    _output("residual_shapes", "Residual(3, 3) and Residual(3, 6, use_1x1conv, strides=2) on a 4x3x6x6 input"),
    _output("dense_block_shapes", "DenseBlock(2, 3, 10) on a 4x3x8x8 input, then transition_block(23, 10)"),
    _gap("bn_train_max_abs_diff", "largest |book's BatchNorm - nn.BatchNorm2d/1d| in training mode, random batches"),
    _gap("bn_moving_mean_max_abs_diff", "largest |book's moving mean - nn.BatchNorm's running mean| after one step"),
    _output("bn_moving_var_ratio", "nn.BatchNorm2d's running-variance update over the book's, one step on a "
            "2x3x2x2 batch"),
    _gap("bn_lenet_max_abs_diff", "largest |from-scratch BN-LeNet - concise BN-LeNet| from the same weights, "
         "training mode"),
    _gap("max_abs_diff_conv", "largest |corr2d_multi_in_out - F.conv2d| over the random cases"),
    _gap("max_abs_diff_maxpool", "largest |pool2d max - F.max_pool2d| over the random cases"),
    _gap("max_abs_diff_avgpool", "largest |pool2d avg - F.avg_pool2d| over the random cases"),
)
