"""fmteach: the tested helper package of the fmteach course on foundation models.

Modules follow the lessons: ``attention`` -> ``masks`` -> ``model`` -> ``train`` -> ``viz``,
with ``assets`` (every offline data set and model), ``profile`` (run sizes, device, seeds) and
``exercises`` (checkers for the notebooks' exercises).
"""

from .attention import scaled_dot_product_attention, stable_softmax
from .masks import IGNORE_INDEX, causal_mask, combine_masks, mask_tokens_for_mlm, padding_mask
from .notebook import setup_notebook
from .profile import PROFILES, by_profile, get_device, get_profile, set_seed

__version__ = "0.1.0"

__all__ = [
    "IGNORE_INDEX",
    "PROFILES",
    "by_profile",
    "causal_mask",
    "combine_masks",
    "get_device",
    "get_profile",
    "mask_tokens_for_mlm",
    "padding_mask",
    "scaled_dot_product_attention",
    "set_seed",
    "setup_notebook",
    "stable_softmax",
]
