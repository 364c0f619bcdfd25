"""The tutorial's operations as the pages wrote them, and their faster twins beside them.

``corr2d``, ``corr2d_multi_in``, ``corr2d_multi_in_out``, ``corr2d_multi_in_out_1x1`` and
``pool2d`` are d2l's code (section 6.2-6.5, Chinese edition), kept line for line so a reader
recognises them; they are the definition, not a fast way to compute. The convolutions take a
``stride`` (an int or (s_h, s_w), section 6.3); at the default stride 1 they are the pages' code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from harness.machine.work import conv_output_hw, pair  # noqa: F401 - conv_output_hw: this module's too


def edge_image() -> torch.Tensor:
    """The pages' 6x8 image of a black stripe on white (A2), the edge kernel's input (B1-B5)."""
    X = torch.ones((6, 8))
    X[:, 2:6] = 0
    return X


def corr2d(X, K, stride=1):
    """Compute 2D cross-correlation (d2l: 计算二维互相关运算), windows ``stride`` apart."""
    h, w = K.shape
    sh, sw = pair(stride)
    Y = torch.zeros(((X.shape[0] - h) // sh + 1, (X.shape[1] - w) // sw + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i * sh:i * sh + h, j * sw:j * sw + w] * K).sum()
    return Y


def corr2d_multi_in(X, K, stride=1):
    """Iterate over the input channels, cross-correlate each, and add them up."""
    return sum(corr2d(x, k, stride) for x, k in zip(X, K))


def corr2d_multi_in_out(X, K, stride=1):
    """Iterate over the output channels of K, each a multi-input cross-correlation; stack them."""
    return torch.stack([corr2d_multi_in(X, k, stride) for k in K], 0)


def corr2d_multi_in_out_1x1(X, K, stride=1):
    """A 1x1 convolution is a matrix product over the channels (strided: of every s-th pixel)."""
    sh, sw = pair(stride)
    X = X[:, ::sh, ::sw]
    c_i, h, w = X.shape
    c_o = K.shape[0]
    X = X.reshape((c_i, h * w))
    K = K.reshape((c_o, c_i))
    Y = torch.matmul(K, X)
    return Y.reshape((c_o, h, w))


def pool2d(X, pool_size, mode="max"):
    """Max or average pooling with stride 1 and no padding, by a Python loop."""
    p_h, p_w = pool_size
    Y = torch.zeros((X.shape[0] - p_h + 1, X.shape[1] - p_w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            if mode == "max":
                Y[i, j] = X[i: i + p_h, j: j + p_w].max()
            elif mode == "avg":
                Y[i, j] = X[i: i + p_h, j: j + p_w].mean()
    return Y


# ---- faster twins: same maths, batched ---------------------------------------------


def conv2d_library(X, K, stride=1):
    """The library convolution (oneDNN on CPU, cuDNN on CUDA) on (C_i,H,W) x (C_o,C_i,kh,kw)."""
    return F.conv2d(X.unsqueeze(0), K, stride=stride).squeeze(0)


def conv2d_loop(X, K, padding=0, stride=1):
    """The tutorial's loop on a batch: per image, ``corr2d_multi_in_out`` on the zero-padded image.

    X is (N, C_i, H, W), K is (C_o, C_i, kh, kw), padding and stride as F.conv2d; the result is moved back
    to X's device (``corr2d`` builds its output on the CPU, one Python-level element at a time).
    """
    ph, pw = pair(padding)
    if ph or pw:
        X = F.pad(X, (pw, pw, ph, ph))
    return torch.stack([corr2d_multi_in_out(x, K, stride) for x in X], 0).to(X.device)


def corr2d_unfold(X, K, stride=1):
    """``corr2d`` (2-D X and K) without a Python loop: every window at once, as a strided view."""
    h, w = K.shape
    sh, sw = pair(stride)
    windows = X.unfold(0, h, sh).unfold(1, w, sw)  # (H_o, W_o, h, w), a view, no copy
    return (windows * K).sum(dim=(-2, -1))


def conv2d_unfold(X, K, padding=0, stride=1):
    """im2col + one matrix product: F.unfold copies every window into a column, K becomes a matrix.

    Same semantics as ``F.conv2d(X, K, padding=padding, stride=stride)`` for (N, C_i, H, W) x
    (C_o, C_i, kh, kw), no bias, no groups or dilation.
    """
    n, _, h, w = X.shape
    c_o, _, kh, kw = K.shape
    h_o, w_o = conv_output_hw(h, w, kh, kw, padding, stride)
    cols = F.unfold(X, (kh, kw), padding=padding, stride=stride)  # (N, C_i*kh*kw, H_o*W_o)
    return (K.reshape(c_o, -1) @ cols).reshape(n, c_o, h_o, w_o)


def conv2d_strided(X, K, padding=0, stride=1):
    """Windows as a strided view (``Tensor.unfold``, no im2col copy up front), contracted by einsum."""
    (ph, pw), (sh, sw) = pair(padding), pair(stride)
    _, _, kh, kw = K.shape
    if ph or pw:
        X = F.pad(X, (pw, pw, ph, ph))
    windows = X.unfold(2, kh, sh).unfold(3, kw, sw)  # (N, C_i, H_o, W_o, kh, kw)
    return torch.einsum("nchwij,ocij->nohw", windows, K)


def conv2d_library_batched(X, K, padding=0, stride=1):
    """F.conv2d on the batch: oneDNN (mkldnn) on CPU where PyTorch picks it, cuDNN on CUDA."""
    return F.conv2d(X, K, padding=padding, stride=stride)
