"""Every picture the course draws, each helper named once.

* :mod:`.attention` — heatmaps of attention weights and masks (``plot_attention``, ``plot_attention_grid``, ``plot_mask``);
* :mod:`.diagrams` — schematic drawings (``attention_flow_diagram``, ``transformer_block_diagram``, ``gpt_vs_bert_diagram``,
  ``course_map``);
* :mod:`.curves` — training curves and score bars (``plot_lm_losses``, ``plot_mlm_curves``, ``plot_plateau_exit``,
  ``plot_accuracy_curves``, ``plot_occupation_scores``).

This package imports no other ``fmteach`` module: it draws tensors, lists and dicts.
"""

from .attention import plot_attention, plot_attention_grid, plot_mask
from .curves import (
    plateau_exit_step,
    plot_accuracy_curves,
    plot_lm_losses,
    plot_mlm_curves,
    plot_occupation_scores,
    plot_plateau_exit,
    plot_runs_by_step_and_time,
)
from .diagrams import attention_flow_diagram, course_map, gpt_vs_bert_diagram, transformer_block_diagram

__all__ = ["attention_flow_diagram", "course_map", "gpt_vs_bert_diagram", "plot_accuracy_curves", "plot_attention",
           "plot_attention_grid", "plot_lm_losses", "plot_mask", "plot_mlm_curves", "plot_occupation_scores",
           "plateau_exit_step", "plot_plateau_exit", "plot_runs_by_step_and_time", "transformer_block_diagram"]
