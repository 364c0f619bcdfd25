"""The tutorial's operations as the pages wrote them, and their faster twins beside them.

``corr2d``, ``corr2d_multi_in``, ``corr2d_multi_in_out``, ``corr2d_multi_in_out_1x1`` and
``pool2d`` are d2l's code (section 6.2-6.5, Chinese edition), kept line for line so a reader
recognises them; they are the definition, not a fast way to compute.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def corr2d(X, K):
    """Compute 2D cross-correlation (d2l: 计算二维互相关运算)."""
    h, w = K.shape
    Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
    return Y


def corr2d_multi_in(X, K):
    """Iterate over the input channels, cross-correlate each, and add them up."""
    return sum(corr2d(x, k) for x, k in zip(X, K))


def corr2d_multi_in_out(X, K):
    """Iterate over the output channels of K, each a multi-input cross-correlation; stack them."""
    return torch.stack([corr2d_multi_in(X, k) for k in K], 0)


def corr2d_multi_in_out_1x1(X, K):
    """A 1x1 convolution is a matrix product over the channels."""
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


def conv2d_library(X, K):
    """The library convolution (oneDNN on CPU, cuDNN on CUDA) on (C_i,H,W) x (C_o,C_i,kh,kw)."""
    return F.conv2d(X.unsqueeze(0), K).squeeze(0)
