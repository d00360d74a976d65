"""What every lesson's setup cell does: quiet, reproducible, and says where it runs."""

from __future__ import annotations

import os
import warnings

import torch

from .profile import describe_environment, get_device, set_seed


def setup_notebook(seed: int = 0) -> torch.device:
    """Seed everything, tidy printing and plotting, silence library chatter; return the device."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # no fork warnings from tokenizers
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    # torch's DataLoader warns on every CPU-only run that Trainer's default pin_memory=True does nothing
    warnings.filterwarnings("ignore", message=".*'pin_memory' argument is set as true but no accelerator",
                            category=UserWarning)
    try:
        import transformers

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
    except ImportError:
        pass
    try:
        import matplotlib.pyplot as plt

        plt.rcParams.update({"figure.dpi": 90, "figure.figsize": (6.4, 4.0), "axes.grid": False})
    except ImportError:
        pass
    torch.set_printoptions(precision=4, sci_mode=False)
    set_seed(seed)
    print(describe_environment())
    return get_device()


def within(diff: float, tol: float) -> str:
    """Check a measured difference against a tolerance and say so portably: ``"< 1e-12 ✓"``.

    Notebooks print this instead of the difference itself: a float64 residue such as 3.3e-16
    depends on the CPU's kernels and reduction order, the tolerance it met does not.
    """
    if not isinstance(tol, (int, float)) or not tol > 0:
        raise ValueError(f"tol must be a positive number, got {tol!r}")
    diff = float(diff)
    if not diff < tol:  # also catches NaN
        raise AssertionError(f"difference {diff:.3g} is not below the tolerance {tol:.0e}")
    return f"< {tol:.0e} ✓"
