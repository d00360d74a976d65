"""Zero-shot and few-shot classification with a pretrained encoder (lesson 08).

* :mod:`.zero_shot` -- no labelled example: embedding similarity to a description of each label,
  and cloze prompts for a masked language model (with contextual calibration);
* :mod:`.k_shot` -- ``k`` labelled examples per class: the linear probe, SetFit, full fine-tuning,
  and curves over several seeded draws.

Every name is importable from ``fmteach.fewshot``.
"""

from .k_shot import (
    contrastive_pairs,
    few_shot_curve,
    finetune_few_shot,
    linear_probe,
    mean_std,
    sample_k_shot,
    setfit_finetune,
)
from .zero_shot import (
    CLOZE_PROMPTS,
    DESCRIPTION_TEMPLATE,
    LABEL_DESCRIPTIONS,
    THOU_YOU,
    cloze_scores,
    embed,
    label_embeddings,
    load_embedder,
    mean_pool,
    similarity_scores,
    thou_or_you,
)

__all__ = ["CLOZE_PROMPTS", "DESCRIPTION_TEMPLATE", "LABEL_DESCRIPTIONS", "cloze_scores", "contrastive_pairs", "embed",
           "few_shot_curve", "finetune_few_shot", "label_embeddings", "linear_probe", "load_embedder", "mean_pool",
           "mean_std", "sample_k_shot", "setfit_finetune", "similarity_scores", "THOU_YOU", "thou_or_you"]
