"""Argument checks that several modules share, each written once.

* :func:`is_int` / :func:`check_positive` -- a size or a count is an integer (Python's or NumPy's)
  but never a bool: ``True`` is an ``int`` to Python, and ``batch_size=True`` is a bug;
  :func:`is_number` the same for a real number (a rate, a timeout);
* :func:`outside` -- whether a tensor holds values outside ``[0, high)`` (token ids, segment ids),
  checked only where checking is cheap and safe: in eager mode on the CPU.

Nothing in this module imports another ``fmteach`` module.
"""

from __future__ import annotations

import numbers

import torch

__all__ = ["check_positive", "is_int", "is_number", "outside"]


def is_int(value) -> bool:
    """True for an integer (``int``, ``numpy.int64``, ...), False for a bool or anything else."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value) -> bool:
    """True for a real number (``int``, ``float``, ``numpy.float32``, ...), False for a bool or anything else."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_positive(*, allow_none: bool = False, **values) -> None:
    """Raise ``ValueError`` naming the first of ``values`` that is not a positive int.

    ``check_positive(batch_size=batch_size, steps=steps)``; ``allow_none=True`` also accepts ``None``
    (an optional limit)."""
    for name, value in values.items():
        if allow_none and value is None:
            continue
        if not is_int(value) or value < 1:
            raise ValueError(f"{name} must be a positive int{' or None' if allow_none else ''}, got {value!r}")


def outside(values: torch.Tensor, high: int, *, ignore: int | None = None) -> bool:
    """True when ``values`` holds a value outside ``[0, high)``; ``ignore``: a value not counted
    (the -100 of unscored labels).

    Only checked in eager mode on the CPU (elsewhere it says False): reading values back from a GPU
    waits for the GPU, and under ``torch.compile`` it would break the graph."""
    if values.device.type != "cpu" or torch.compiler.is_compiling():
        return False
    if ignore is not None:
        values = values[values != ignore]
    return bool(values.numel() and not 0 <= int(values.min()) <= int(values.max()) < high)
