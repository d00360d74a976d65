"""Checkers for the notebooks' exercises, one module per lesson; ``from fmteach import exercises`` and
``exercises.check_attention(...)`` work for every lesson.

Each ``check_*`` prints ``✅ correct`` or raises an ``AssertionError`` that says what is wrong,
with a hint that guides without giving the answer. An exercise not attempted yet (its function
still raises ``NotImplementedError``, or its answer is ``...``) only prints a reminder, so a
notebook always runs from top to bottom. Where an exercise forbids a call
(``F.scaled_dot_product_attention`` in an attention of your own), the checker makes that call raise
while your function runs.

* ``check_prediction("01.p1", "b")`` checks a "predict, then run" answer chosen before the cell that
  measures it; ``check_measured_prediction`` compares a prediction with a measured value (10-11);
* ``solution("01.2")`` shows a reference solution, on request.

Layout: :mod:`._checking` (what every checker shares), then ``lesson01`` … ``lesson12``. A lesson
module imports its lesson's heavier code (models, fine-tuning, applications) inside the checker
that needs it, so that importing this package costs lesson 01 nothing it does not use.
"""

from ._checking import check_measured_prediction, check_prediction, solution
from .lesson01 import check_attention, check_fully_masked_attention
from .lesson02 import check_causal_mask, check_cross_attention_mask
from .lesson03 import check_grouped_query_attention, check_post_ln_block
from .lesson04 import check_lr_schedule, check_sampling_probabilities
from .lesson05 import check_masked_cross_entropy, check_whole_word_selection
from .lesson06 import check_attention_at_offset, check_encoder_layer_parameters
from .lesson07 import (
    check_binary_metrics,
    check_learning_rate_experiment,
    check_padded_tokens,
    check_sorted_padding,
    check_trainer_setup,
)
from .lesson08 import check_cloze_calibration, check_prototype_predict, check_stratified_guess
from .lesson09 import check_association, check_count_normalized_duplicates, check_early_stopping
from .lesson10 import check_align_labels, check_best_span
from .lesson11 import check_cross_attention, check_patchify
from .lesson12 import check_lora_linear

__all__ = [
    "solution", "check_prediction", "check_measured_prediction",
    # lesson 01
    "check_attention", "check_fully_masked_attention",
    # lesson 02
    "check_causal_mask", "check_cross_attention_mask",
    # lesson 03
    "check_grouped_query_attention", "check_post_ln_block",
    # lesson 04
    "check_lr_schedule", "check_sampling_probabilities",
    # lesson 05
    "check_whole_word_selection", "check_masked_cross_entropy",
    # lesson 06
    "check_encoder_layer_parameters", "check_attention_at_offset",
    # lesson 07
    "check_binary_metrics", "check_padded_tokens", "check_learning_rate_experiment", "check_sorted_padding",
    "check_trainer_setup",
    # lesson 08
    "check_stratified_guess", "check_prototype_predict", "check_cloze_calibration",
    # lesson 09
    "check_count_normalized_duplicates", "check_association", "check_early_stopping",
    # lessons 10 and 11
    "check_align_labels", "check_best_span", "check_cross_attention", "check_patchify",
    # lesson 12
    "check_lora_linear",
]
