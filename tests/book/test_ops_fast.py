"""The faster twins compute what the tutorial's loops compute, and what F.conv2d computes, at any stride."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from harness.book.ops import (
    conv2d_library,
    conv2d_library_batched,
    conv2d_loop,
    conv2d_strided,
    conv2d_unfold,
    conv_output_hw,
    corr2d,
    corr2d_multi_in_out,
    corr2d_unfold,
)

SHAPES = [  # n, c_in, h, w, c_out, kh, kw, padding
    (1, 1, 6, 8, 1, 1, 2, 0),
    (1, 1, 28, 28, 1, 5, 5, 0),
    (2, 3, 7, 9, 4, 3, 2, 0),
    (3, 2, 5, 6, 3, 3, 3, 1),
    (2, 6, 8, 8, 5, 5, 5, 2),
    (1, 2, 4, 4, 2, 4, 4, 0),
]


def _inputs(n, c_in, h, w, c_out, kh, kw, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c_in, h, w, generator=g), torch.randn(c_out, c_in, kh, kw, generator=g)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_all_implementations_agree_with_conv2d(shape):
    *dims, padding = shape
    X, K = _inputs(*dims)
    ref = F.conv2d(X.double(), K.double(), padding=padding).float()
    for fn in (conv2d_loop, conv2d_unfold, conv2d_strided, conv2d_library_batched):
        y = fn(X, K, padding)
        assert y.shape == ref.shape, fn.__name__
        torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-4, msg=fn.__name__)


STRIDED = [  # n, c_in, h, w, c_out, kh, kw, padding, stride
    (1, 1, 8, 8, 1, 3, 3, 1, 2),  # d2l 6.3: 8x8 -> 4x4
    (1, 1, 8, 8, 1, 3, 5, (0, 1), (3, 4)),  # d2l 6.3: 8x8 -> 2x2
    (2, 3, 11, 9, 4, 3, 2, 0, 2),
    (2, 3, 11, 9, 4, 3, 2, (1, 2), (2, 3)),
    (2, 2, 13, 12, 3, 3, 3, 1, (3, 4)),
    (1, 2, 12, 12, 2, 2, 2, 0, 5),  # stride larger than the kernel: inputs skipped
    (1, 1, 20, 20, 2, 11, 11, 1, 4),  # AlexNet's first layer, small
]


@pytest.mark.parametrize("shape", STRIDED, ids=lambda s: "x".join(map(str, s)))
def test_every_implementation_strides_as_conv2d(shape):
    n, c_in, h, w, c_out, kh, kw, padding, stride = shape
    X, K = _inputs(n, c_in, h, w, c_out, kh, kw, seed=1)
    ref = F.conv2d(X.double(), K.double(), padding=padding, stride=stride).float()
    assert tuple(ref.shape[2:]) == conv_output_hw(h, w, kh, kw, padding, stride)
    for fn in (conv2d_loop, conv2d_unfold, conv2d_strided, conv2d_library_batched):
        torch.testing.assert_close(fn(X, K, padding, stride), ref, rtol=1e-5, atol=1e-4, msg=fn.__name__)


def test_stride_pair_1_1_is_the_default_bit_for_bit():
    X, K = _inputs(2, 3, 9, 8, 4, 3, 2, seed=4)
    for fn in (conv2d_loop, conv2d_unfold, conv2d_strided, conv2d_library_batched):
        assert torch.equal(fn(X, K, 1, (1, 1)), fn(X, K, 1)), fn.__name__


def test_loop_matches_tutorial_multi_in_out_per_image():
    X, K = _inputs(3, 2, 5, 5, 3, 2, 2, seed=2)
    y = conv2d_loop(X, K)
    for i in range(3):
        assert torch.equal(y[i], corr2d_multi_in_out(X[i], K))
    torch.testing.assert_close(conv2d_library(X[0], K), y[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("hw,k", [((6, 8), (1, 2)), ((3, 3), (2, 2)), ((9, 5), (3, 4))])
@pytest.mark.parametrize("stride", [1, 2, (3, 4)], ids=str)
def test_corr2d_unfold_matches_corr2d(hw, k, stride):
    g = torch.Generator().manual_seed(3)
    X, K = torch.randn(*hw, generator=g), torch.randn(*k, generator=g)
    torch.testing.assert_close(corr2d_unfold(X, K, stride), corr2d(X, K, stride), rtol=1e-5, atol=1e-6)


def test_corr2d_unfold_reproduces_a1():
    X = torch.arange(9.0).reshape(3, 3)
    K = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    assert corr2d_unfold(X, K).tolist() == [[19.0, 25.0], [37.0, 43.0]]


def test_output_hw_a7():
    assert conv_output_hw(8, 8, 3, 3, 1) == (8, 8)
    assert conv_output_hw(8, 8, 5, 3, (2, 1)) == (8, 8)
    assert conv_output_hw(8, 8, 3, 3, 1, 2) == (4, 4)
    assert conv_output_hw(8, 8, 3, 5, (0, 1), (3, 4)) == (2, 2)


@pytest.mark.parametrize("n,k,p,s", [(8, 3, 1, 2), (7, 3, 0, 2), (224, 11, 1, 4), (12, 2, 0, 5), (5, 5, 0, 3)])
def test_output_size_is_floor_n_plus_2p_minus_k_over_s_plus_1(n, k, p, s):
    expected = (n + 2 * p - k) // s + 1
    assert conv_output_hw(n, n, k, k, p, s) == (expected, expected)
    assert F.conv2d(torch.zeros(1, 1, n, n), torch.zeros(1, 1, k, k), padding=p, stride=s).shape[2:] == (expected,) * 2
