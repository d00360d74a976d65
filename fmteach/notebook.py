"""What a lesson's cells call: the setup cell (quiet, reproducible, says where it runs), and the
helpers that print and hold its numbers -- ``within`` (a tolerance met, never the residue), ``near``
(a live number held to its recorded value) and ``measured_results`` (a committed results file)."""

from __future__ import annotations

import os
import warnings

import torch

from ._checks import is_number
from .profile import PROFILES, describe_environment, get_device, get_profile
from .seeding import DEFAULT_SEED, set_seed

_LIBRARY_MODULES = (r"(transformers|torch|huggingface_hub|datasets|accelerate|sklearn|tokenizers|bertviz|matplotlib"
                    r"|ipywidgets|ipykernel|jupyter_client|traitlets|zmq|tqdm|safetensors)(\.|$)")


def setup_notebook(seed: int = DEFAULT_SEED) -> torch.device:
    """A lesson's first cell: seed Python, NumPy and torch with ``seed`` (the one process-wide
    reseeding in the package, and the reason a notebook calls it), tidy printing and plotting,
    silence library chatter (by module and message, never a whole warning category); return the
    device (CUDA, then MPS, then the CPU)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # no fork warnings from tokenizers
    # Deprecation notices raised inside the libraries we call (not in the learner's or our code) are
    # for their maintainers; filtered by module, so a warning about code in the notebook still shows.
    for category in (FutureWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", category=category, module=_LIBRARY_MODULES)
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


def near(value: float, tol: float, **recorded: float) -> float:
    """Check a headline number that moves in its last digits between CPUs (a cell tagged
    ``nbval-ignore-output``): in a profile named in ``recorded`` (``smoke=0.901``, the value the
    committed outputs print), assert ``value`` is within ``tol`` of it; in other profiles there is no
    recorded value to hold it to. Returns ``value``, so a cell can write ``acc = near(acc, 0.03, smoke=0.901)``."""
    if not is_number(value) or not is_number(tol) or not tol > 0:
        raise ValueError(f"value and tol must be numbers and tol > 0, got value={value!r}, tol={tol!r}")
    unknown = set(recorded) - set(PROFILES)
    if unknown or not recorded:
        raise ValueError(f"name the recorded values by profile ({', '.join(PROFILES)}), got {sorted(recorded)}")
    profile = get_profile()
    if profile in recorded and not abs(float(value) - recorded[profile]) <= tol:  # also catches NaN
        raise AssertionError(f"{value:.4f} is not within {tol:g} of {recorded[profile]:.4f}, the value the {profile} "
                             f"profile recorded: the result changed")
    return value


def measured_results(filename: str, *, search=None) -> dict | None:
    """A committed results file of ``benchmarks/results/`` (e.g. ``"lesson11_cpu.json"``), parsed, or
    ``None`` where it is not present (the package installed from PyPI or on Colab has no ``benchmarks/``).

    Lessons quote the figures of a longer run from these files; each holds how, where and when it was
    measured (its ``"how"`` block). ``search``: the folders to look in, by default
    ``../benchmarks/results`` (a notebook run from ``notebooks/``) and ``benchmarks/results``."""
    import json
    from pathlib import Path

    if not isinstance(filename, str) or not filename.endswith(".json") or "/" in filename or "\\" in filename:
        raise ValueError(f"filename must be a file name ending in .json, got {filename!r}")
    folders = search if search is not None else (Path("../benchmarks/results"), Path("benchmarks/results"))
    for folder in folders:
        path = Path(folder) / filename
        if path.is_file():
            try:
                return json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as err:
                raise ValueError(f"{path} is not valid JSON ({err}): a results file should be written by its script") from err
    return None
