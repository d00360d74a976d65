"""Training curves and score bars: one plotting helper per kind of result, each named once.

* :func:`plot_lm_losses` — a language model's losses (``fmteach.train.train``; lesson 04, ``train_lm``);
* :func:`plot_runs_by_step_and_time` — several training runs' evaluations against steps and against
  minutes (the shipped course models' curves; lesson 04);
* :func:`plot_mlm_curves` — MLM pre-training (``fmteach.pretrain_mlm.pretrain``; lesson 05);
* :func:`plot_accuracy_curves` — fine-tuning runs side by side (``finetune_loop``; lesson 09);
* :func:`plot_occupation_scores` — one bar per occupation (``fmteach.bias``; lesson 09).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["plateau_exit_step", "plot_accuracy_curves", "plot_lm_losses", "plot_mlm_curves", "plot_occupation_scores",
           "plot_plateau_exit", "plot_runs_by_step_and_time"]


def plot_lm_losses(result, path: str | Path | None = None, baseline: float | None = None,
                title: str = "MiniGPT"):
    """A language model's loss curves from a :class:`fmteach.train_config.TrainResult`
    (every step's training loss, evaluated train/val losses, the baseline); saved to ``path``.

    The evaluations are markers, not joined: the loss between two evaluations was not measured, and
    a straight line from one to the next would cut across the grey per-step line that shows how it
    fell. Returns the matplotlib Figure (no pyplot, so no window and no global state)."""
    from matplotlib.figure import Figure  # the object API needs no GUI backend (Agg by default)

    fig = Figure(figsize=(7, 4), dpi=120)
    ax = fig.subplots()
    ax.plot(range(len(result.step_losses)), result.step_losses, color="0.75", lw=0.8, label="training loss (per step)")
    steps = [h["step"] for h in result.history]
    ax.plot(steps, [h["train_loss"] for h in result.history], "o", ms=7, label="train (evaluated)")
    ax.plot(steps, [h["val_loss"] for h in result.history], "o", ms=4.5, label="validation (held-out plays)")  # smaller: both show where they meet
    if baseline is not None:
        ax.axhline(baseline, ls="--", color="k", lw=1, label=f"unigram baseline {baseline:.2f}")
    ax.set(xlabel="optimizer step", ylabel="cross-entropy (nats / char)", title=title)
    ax.set_ylim(top=max(4.6, baseline or 0) + 0.1)
    ax.legend()
    fig.tight_layout()
    if path is not None:
        fig.savefig(path)
    return fig


def plot_runs_by_step_and_time(runs: dict[str, list[dict]], *, baseline: float | None = None,
                               ylabel: str = "cross-entropy (nats / char)", title: str = ""):
    """Evaluations of several runs (name -> ``[{"step", "train_loss", "val_loss", "seconds"}, ...]``):
    validation loss solid, training loss dashed, against optimizer steps (left) and wall-clock
    minutes (right, log scale: a run of minutes beside one of hours). Returns the Figure."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4), dpi=110)
    by_step, by_time = fig.subplots(1, 2)
    for (name, evals), color in zip(runs.items(), ("C0", "C1", "C2", "C3", "C4")):
        steps = [e["step"] for e in evals]
        minutes = [max(e["seconds"], 1.0) / 60 for e in evals]
        for ax, x in ((by_step, steps), (by_time, minutes)):
            ax.plot(x, [e["val_loss"] for e in evals], "-", color=color, lw=1.8, label=f"{name}: validation")
            ax.plot(x, [e["train_loss"] for e in evals], "--", color=color, lw=1.0, label=f"{name}: train")
    for ax in (by_step, by_time):
        if baseline is not None:
            ax.axhline(baseline, ls=":", color="k", lw=1, label=f"unigram baseline {baseline:.2f}")
        ax.set(ylabel=ylabel)
        ax.grid(alpha=0.3)
    by_step.set(xlabel="optimizer step", title="against steps")
    by_time.set(xlabel="wall-clock minutes (log scale)", xscale="log", title="against time")
    by_step.legend(fontsize=8, loc="upper right", bbox_to_anchor=(1, 0.58))  # above the baseline, below the early curves
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_mlm_curves(history: list[dict], path=None, *, baseline: float | None = None):
    """MLM pre-training curves from ``pretrain``'s history: loss (train and held out), accuracy at
    ``[MASK]`` positions (with the most-frequent-token ``baseline`` there, when given) and perplexity
    per evaluation step; saved to ``path`` when given."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    steps = [h["step"] for h in history]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.5))
    axes[0].plot(steps, [h["train_loss"] for h in history], "o-", label="train (masked tokens)")
    axes[0].plot(steps, [h["mlm_loss"] for h in history], "s-", label="held-out plays")
    axes[0].set(xlabel="step", ylabel="cross-entropy", title="MLM loss")
    axes[0].legend()
    accuracy = [h["accuracy_at_mask"] for h in history]
    axes[1].plot(steps, accuracy, "s-", color="C2", lw=3, ms=7, alpha=0.6, label="top-1 at [MASK]")
    if baseline is not None:  # drawn over the curve, thin and dark: visible even where the curve sits on it
        axes[1].axhline(baseline, ls="--", color="k", lw=1.2, zorder=3, label=f"most frequent token {baseline:.3f}")
    top = max(accuracy + ([baseline] if baseline is not None else [])) or 1.0  # room above the curve and the line
    axes[1].set(xlabel="step", ylabel="accuracy", title="accuracy at [MASK] (held out)", ylim=(-0.04 * top, 1.3 * top))
    axes[1].legend(fontsize=8, loc="lower right")
    axes[2].plot(steps, [h["perplexity"] for h in history], "s-", color="C3")
    axes[2].set(xlabel="step", ylabel="perplexity (log scale)", yscale="log", title="perplexity (held out)")
    axes[2].yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))  # 500, 1000, 2000, 5000: few, plain labels
    axes[2].yaxis.set_major_formatter(ScalarFormatter())
    axes[2].yaxis.set_minor_formatter(NullFormatter())
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def plateau_exit_step(evals: list[dict], baseline: float, margin: float = 0.02) -> int | None:
    """The first evaluated step whose accuracy at ``[MASK]`` beats the most-frequent-token
    ``baseline`` by more than ``margin`` and stays above it at every later evaluation; ``None`` if
    the run never leaves the unigram plateau."""
    if not evals or "accuracy_at_mask" not in evals[0]:
        raise ValueError("evals must be a list of evaluations with 'step' and 'accuracy_at_mask' (an MLM run's curve)")
    for i, e in enumerate(evals):
        if all(later["accuracy_at_mask"] > baseline + margin for later in evals[i:]):
            return e["step"]
    return None


def plot_plateau_exit(evals: list[dict], *, baseline: float, others: dict[str, float] | None = None,
                      margin: float = 0.02):
    """An MLM run's held-out loss and accuracy at ``[MASK]`` (top 1, top 5) against steps, the
    most-frequent-token ``baseline`` drawn, the unigram plateau shaded up to
    :func:`plateau_exit_step`; ``others`` (name -> final accuracy at ``[MASK]``) are drawn as dotted
    lines for comparison."""
    import matplotlib.pyplot as plt

    exit_step = plateau_exit_step(evals, baseline, margin)
    steps = [e["step"] for e in evals]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(12, 4.6), layout="constrained")
    loss_ax.plot(steps, [e["mlm_loss"] for e in evals], "s-", ms=3, label="held-out plays (at selected positions)")
    if all("train_loss" in e for e in evals):
        loss_ax.plot(steps, [e["train_loss"] for e in evals], "-", color="C7", lw=1, label="training batch")
    loss_ax.set(xlabel="step", ylabel="cross-entropy", title="MLM loss", ylim=(None, min(9.5, max(
        e["mlm_loss"] for e in evals[1:]) + 0.5) if len(evals) > 1 else None))
    acc_ax.plot(steps, [e["accuracy_at_mask"] for e in evals], "s-", ms=3, color="C2", label="top 1 at [MASK]")
    if all("top5_at_mask" in e for e in evals):
        acc_ax.plot(steps, [e["top5_at_mask"] for e in evals], "^-", ms=3, color="C2", alpha=0.45,
                    label="top 5 at [MASK]")
    acc_ax.axhline(baseline, ls="--", color="k", lw=1, label=f"always the most frequent token ({baseline:.3f})")
    for (name, value), color in zip((others or {}).items(), ("C3", "C4", "C5")):
        acc_ax.axhline(value, ls=":", color=color, lw=1.5, label=f"{name} ({value:.3f})")
    acc_ax.set(xlabel="step", ylabel="accuracy (held-out plays)", title="accuracy at [MASK]", ylim=(0, None))
    for ax in (loss_ax, acc_ax):
        if exit_step is not None:  # the plateau: up to the last evaluation before the exit
            ax.axvspan(steps[0], max([s for s in steps if s < exit_step], default=steps[0]), color="0.85", zorder=0,
                       label="unigram plateau" if ax is acc_ax else None)
    loss_ax.legend(fontsize=8, loc="upper right")
    # the accuracy panel's legend goes below both panels: inside, it would cover the curves
    fig.legend(*acc_ax.get_legend_handles_labels(), loc="outside lower center", ncol=3, fontsize=8)
    return fig


# where :func:`plot_accuracy_curves` puts each panel's legend: below the panel, out of the data
_LEGEND_BELOW = {"fontsize": 8, "loc": "upper center", "bbox_to_anchor": (0.5, -0.15), "ncol": 2}


def plot_accuracy_curves(histories: dict[str, list[dict]], *, axes=None):
    """Per run (name -> ``LoopResult.history``): train (dashed) and validation (solid) accuracy per
    epoch, and the validation loss. Train accuracy needs ``track_train_accuracy=True``.

    Each run is drawn thinner, with smaller markers, than the one before it, so that a run lying on
    an earlier one shows as a thin line inside a thick one instead of hiding it. Each panel's legend
    sits below it (call ``ax.legend`` again after adding lines; keep ``loc``/``bbox_to_anchor``)."""
    import matplotlib.pyplot as plt

    if axes is None:
        axes = plt.subplots(1, 2, figsize=(11, 4.6), layout="constrained")[1]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, ((name, history), color) in enumerate(zip(histories.items(), colors)):
        if not history or "train_accuracy" not in history[0]:
            raise ValueError(f"run {name!r} has no train_accuracy: use finetune_loop(..., track_train_accuracy=True)")
        lw, ms = (1.5, 6.0) if len(histories) == 1 else (max(3.5 - 1.1 * k, 1.0), max(9.0 - 2.5 * k, 3.0))
        epochs = [row["epoch"] for row in history]
        axes[0].plot(epochs, [row["train_accuracy"] for row in history], "--", color=color, lw=lw, label=f"{name}: train")
        axes[0].plot(epochs, [row["eval_accuracy"] for row in history], "-o", color=color, lw=lw, ms=ms,
                     label=f"{name}: validation")
        axes[1].plot(epochs, [row["eval_loss"] for row in history], "-o", color=color, lw=lw, ms=ms, label=name)
    axes[0].set(xlabel="epoch", ylabel="accuracy", title="train vs validation accuracy")
    axes[1].set(xlabel="epoch", ylabel="cross-entropy", title="validation loss")
    for ax in axes:
        ax.legend(**_LEGEND_BELOW)
    return axes


def plot_occupation_scores(scores: dict[str, float], *, ax=None, title: str = "", xlabel: str = "",
                           labels: tuple[str, str] = ("she", "he"), zero_is_neutral: bool = True, xlim=None):
    """Horizontal bars, one per occupation, sorted; negative (``labels[0]``) left, positive right.
    ``zero_is_neutral=False`` draws every bar in one colour (for a score whose 0 means nothing,
    e.g. an embedding association); ``xlim`` fixes the x-scale (use one for panels compared)."""
    import matplotlib.pyplot as plt

    if not scores:
        raise ValueError("no scores to plot")
    names = sorted(scores, key=scores.get)
    values = [scores[n] for n in names]
    ax = ax or plt.subplots(figsize=(5.5, 0.28 * len(names) + 1.2))[1]
    colors = ["tab:orange" if v < 0 else "tab:blue" for v in values] if zero_is_neutral else "tab:gray"
    ax.barh(names, values, color=colors)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set(title=title, xlabel=xlabel or f"← {labels[0]}   |   {labels[1]} →")
    if xlim is not None:
        ax.set_xlim(*xlim)
    return ax
