"""Progress bars that stay out of the stored notebooks.

A run of the ``smoke`` profile takes seconds, and a bar drawn in a notebook is an ipywidget whose
stored text is its first frame, ``0%|          | 0/40``: on GitHub every lesson would show bars
that never moved. So bars are on by default except in the smoke profile; ``enabled`` overrides.
"""

from __future__ import annotations

from .profile import get_profile


def progress_enabled(enabled: bool | None = None) -> bool:
    """``enabled`` if given, else True unless the profile is ``smoke``."""
    if enabled is not None and not isinstance(enabled, bool):
        raise TypeError(f"enabled must be True, False or None, got {enabled!r}")
    return get_profile() != "smoke" if enabled is None else enabled


def progress_bar(iterable=None, *, enabled: bool | None = None, **kwargs):
    """``tqdm.auto.tqdm(iterable, **kwargs)``, disabled where :func:`progress_enabled` says so."""
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=not progress_enabled(enabled), **kwargs)
