"""Lesson 06, BERT inside out: the parameters of one encoder layer, and attention to the next token."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ._checking import _add_solution, _call, _close, _exercise, _NotAttempted

__all__ = ["check_encoder_layer_parameters", "check_next_token_attention"]


def check_encoder_layer_parameters(hidden_size: int, intermediate_size: int, answer) -> None:
    """Exercise: the number of parameters of one BERT encoder layer."""
    with _exercise("parameters of one encoder layer",
                   "list every linear map of the layer in section 3, with the number of features that go in "
                   "and come out, and every LayerNorm: how many numbers does each one store (weights and "
                   "biases; scale and shift)? Section 3's parameter table is a rough check"):
        if answer is ...:
            raise _NotAttempted
        H, I = hidden_size, intermediate_size
        expected = 4 * (H * H + H) + 2 * (2 * H) + (H * I + I) + (I * H + H)
        if int(answer) != expected:
            raise AssertionError(f"{answer:,} is off by {int(answer) - expected:+,}")


def check_next_token_attention(fn: Callable) -> None:
    """Exercise: ``fn(weights (heads, T, T)) -> (heads,)`` mean weight from token i to token i+1."""
    with _exercise("attention to the next token",
                   "which entries of one head's (T, T) matrix hold the weight from token i to token i + 1, "
                   "how many are there, and what pattern do they form? Check your function on a small matrix "
                   "you fill in by hand, with two heads"):
        gen = torch.Generator().manual_seed(3)
        weights = torch.softmax(torch.randn(3, 5, 5, generator=gen), -1)
        expected = torch.stack([torch.stack([weights[h, i, i + 1] for i in range(4)]).mean() for h in range(3)])
        _close(torch.as_tensor(_call(fn, weights)), expected, "the per-head averages")


_add_solution("06.1", '''H, I = cfg.hidden_size, cfg.intermediate_size
exercises.check_encoder_layer_parameters(H, I, answer=4 * (H * H + H) + 2 * (2 * H) + (H * I + I) + (I * H + H))
''')
_add_solution("06.2", '''def next_token_attention(weights):
    return torch.diagonal(weights, offset=1, dim1=-2, dim2=-1).mean(-1)  # (heads,)
''')
