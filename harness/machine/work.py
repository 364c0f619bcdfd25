"""Work counted without running anything (no torch): a convolution's output size and its FLOP."""

from __future__ import annotations


def pair(v: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    """An int or an (h, w) pair as (h, w)."""
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def conv_output_hw(h: int, w: int, kh: int, kw: int, padding=0, stride=1) -> tuple[int, int]:
    """Output height and width of a convolution: floor((n + 2p - k) / s) + 1 per side."""
    (ph, pw), (sh, sw) = pair(padding), pair(stride)
    return (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1


def conv_flops(n: int, c_in: int, h_out: int, w_out: int, c_out: int, kh: int, kw: int) -> int:
    """Floating-point operations of a convolution, a multiply-add counted as 2: 2*N*C_o*H_o*W_o*C_i*kh*kw."""
    if min(n, c_in, h_out, w_out, c_out, kh, kw) < 0:
        raise ValueError("sizes must be non-negative")
    return 2 * n * c_out * h_out * w_out * c_in * kh * kw
