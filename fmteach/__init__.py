"""fmteach: the tested helper package of the fmteach course on foundation models.

The package reads in layers; a module imports only from its own layer or those below it
(``tests/test_layers.py`` keeps it so, and a new module must be given a layer there):

* **base** -- ``_io`` (atomic writes, checked ``torch_load``, ``eval_mode``, the offline switches),
  ``_checks`` (argument checks), ``profile`` (run sizes, device, precision), ``seeding`` (``DEFAULT_SEED``,
  ``set_seed``, ``seeded``),
  ``progress``, ``optim``, ``thresholds``, ``notebook`` (a lesson's setup cell), ``outputs`` (what every
  model of ours returns: ``out.logits``, ``out.loss``, ``out.attentions``, as Hugging Face's do);
* **core** -- what the lessons build: ``masks``, ``attention``, ``model`` (MiniGPT), ``bert`` /
  ``bert_config`` / ``bert_loading`` (MiniBert and Hugging Face weights), ``cache`` / ``assets`` /
  ``text_datasets`` / ``lm_data`` / ``wordpiece`` (every offline data set, model and tokenizer), ``viz/`` (every picture),
  ``bertviz_offline``, ``train_config``, ``distributed``;
* **training** -- ``train`` (one loop for every lesson), ``mlm``, ``pretrain_mlm``;
* **lessons** -- ``finetune/`` (lesson 07), ``fewshot`` (08), ``leakage`` / ``bias`` / ``challenges``
  (09), ``applications/`` (10-11), ``course_models/`` (the shipped trained models);
* **top** -- ``exercises/`` (one module of checkers per lesson) and the command lines
  (``python -m fmteach.train_lm``, ``fmteach.pretrain_mlm``, ``fmteach.finetune``, ``fmteach.course_models``).

Presets follow one idiom, ``X.from_profile(profile=None, **overrides)``; every ``seed=`` defaults to
``seeding.DEFAULT_SEED``; no library call reseeds the caller's random state unless its name says so
(``set_seed``, ``setup_notebook``).
"""

from .attention import scaled_dot_product_attention, stable_softmax
from .masks import IGNORE_INDEX, causal_mask, combine_masks, mask_tokens_for_mlm, padding_mask
from .notebook import setup_notebook
from .profile import PROFILES, by_profile, get_device, get_profile
from .seeding import set_seed

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
