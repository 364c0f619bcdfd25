"""The tutorial's operations: exact printed outputs, and agreement with the library on random inputs, strided too."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from harness.book.ops import (
    conv2d_library,
    corr2d,
    corr2d_multi_in,
    corr2d_multi_in_out,
    corr2d_multi_in_out_1x1,
    pool2d,
)

X3 = torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])


def test_corr2d_a1():
    assert torch.equal(corr2d(X3, torch.tensor([[0.0, 1.0], [2.0, 3.0]])), torch.tensor([[19.0, 25.0], [37.0, 43.0]]))


def test_corr2d_integer_input_like_page_001():
    X = torch.tensor([[0, 1, 2], [3, 4, 5], [6, 7, 8]])
    K = torch.tensor([[0, 1], [2, 3]])
    assert corr2d(X, K).tolist() == [[19, 25], [37, 43]]


def test_edge_detection_a2_a3():
    X = torch.ones((6, 8))
    X[:, 2:6] = 0
    K = torch.tensor([[1.0, -1.0]])
    Y = corr2d(X, K)
    expected = torch.zeros(6, 7)
    expected[:, 1], expected[:, 5] = 1, -1
    assert torch.equal(Y, expected)
    assert torch.equal(corr2d(X.t(), K), torch.zeros(8, 5))


def test_multi_channel_a4_a5():
    X = torch.stack([X3, X3 + 1])
    K = torch.tensor([[[0.0, 1.0], [2.0, 3.0]], [[1.0, 2.0], [3.0, 4.0]]])
    assert corr2d_multi_in(X, K).tolist() == [[56, 72], [104, 120]]
    out = corr2d_multi_in_out(X, torch.stack((K, K + 1, K + 2), 0))
    assert out.tolist() == [[[56, 72], [104, 120]], [[76, 100], [148, 172]], [[96, 128], [192, 224]]]


def test_1x1_is_a_matrix_product_a6():
    g = torch.Generator().manual_seed(0)
    X, K = torch.normal(0, 1, (3, 3, 3), generator=g), torch.normal(0, 1, (2, 3, 1, 1), generator=g)
    assert float(torch.abs(corr2d_multi_in_out_1x1(X, K) - corr2d_multi_in_out(X, K)).sum()) < 1e-6


def test_pool2d_a8():
    assert pool2d(X3, (2, 2)).tolist() == [[4, 5], [7, 8]]
    assert pool2d(X3, (2, 2), "avg").tolist() == [[2, 3], [5, 6]]


SHAPES = [(1, 6, 8, 1, 1, 2), (1, 5, 5, 1, 5, 5), (2, 7, 9, 3, 3, 2), (3, 12, 10, 4, 3, 3), (4, 9, 6, 2, 2, 4)]


@pytest.mark.parametrize("c_in,h,w,c_out,kh,kw", SHAPES)
def test_loops_agree_with_library(c_in, h, w, c_out, kh, kw):
    g = torch.Generator().manual_seed(h * w + kh)
    X, K = torch.randn(c_in, h, w, generator=g), torch.randn(c_out, c_in, kh, kw, generator=g)
    torch.testing.assert_close(corr2d_multi_in_out(X, K), conv2d_library(X, K), rtol=1e-5, atol=1e-5)
    x = X[0][None, None]
    assert torch.equal(pool2d(X[0], (kh, kw)), F.max_pool2d(x, (kh, kw), stride=1)[0, 0])
    torch.testing.assert_close(pool2d(X[0], (kh, kw), "avg"), F.avg_pool2d(x, (kh, kw), stride=1)[0, 0])


def _d2l_corr2d(X, K):
    """d2l's corr2d as the page prints it, without a stride."""
    h, w = K.shape
    Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
    return Y


def test_stride_1_is_the_pages_corr2d_bit_for_bit():
    g = torch.Generator().manual_seed(5)
    X, K = torch.randn(9, 7, generator=g), torch.randn(3, 2, generator=g)
    assert torch.equal(corr2d(X, K), _d2l_corr2d(X, K)) and torch.equal(corr2d(X, K, 1), _d2l_corr2d(X, K))
    assert torch.equal(corr2d(X, K, (1, 1)), _d2l_corr2d(X, K))


def test_stride_examples_of_6_3():
    X = torch.rand(8, 8)
    assert corr2d(F.pad(X, (1, 1, 1, 1)), torch.rand(3, 3), 2).shape == (4, 4)
    assert corr2d(F.pad(X, (1, 1, 0, 0)), torch.rand(3, 5), (3, 4)).shape == (2, 2)


def test_strided_corr2d_picks_every_s_th_window():
    X = torch.arange(36.0).reshape(6, 6)
    assert corr2d(X, torch.ones(1, 1), (2, 3)).tolist() == [[0, 3], [12, 15], [24, 27]]
    assert corr2d(X, torch.ones(2, 2), 4).tolist() == [[14, 30], [110, 126]]


@pytest.mark.parametrize("stride", [2, (3, 4), (1, 2), 5], ids=str)
def test_strided_loops_agree_with_library(stride):
    g = torch.Generator().manual_seed(7)
    X, K = torch.randn(2, 11, 13, generator=g), torch.randn(3, 2, 3, 2, generator=g)
    ref = conv2d_library(X, K, stride)
    torch.testing.assert_close(corr2d_multi_in_out(X, K, stride), ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(corr2d_multi_in(X, K[0], stride), ref[0], rtol=1e-5, atol=1e-5)
    K1 = K[:, :, :1, :1]
    torch.testing.assert_close(corr2d_multi_in_out_1x1(X, K1, stride), conv2d_library(X, K1, stride), rtol=1e-5,
                               atol=1e-5)
