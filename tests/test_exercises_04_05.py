"""The new exercises of lessons 04 (the learning-rate schedule, sampling probabilities) and 05 (whole-word
masking, the masked cross-entropy with one weight per sentence): reference solutions pass, usual mistakes
fail with a hint, the forbidden calls are refused and restored, edge cases (no warm-up, top_k > V, rows
without labels) are tested, hints name no step of the solution; the "predict, then run" questions 04.p1
and 05.p1."""

import json
import math
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import fmteach
from fmteach import exercises
from fmteach.masks import IGNORE_INDEX
from fmteach.train_config import TrainConfig
from tests.tiny import assert_hint_guides

CHECKERS = {
    "04.1": ("my_lr_at", exercises.check_lr_schedule),
    "04.2": ("sampling_probabilities", exercises.check_sampling_probabilities),
    "05.1": ("whole_word_selection", exercises.check_whole_word_selection),
    "05.2": ("my_masked_cross_entropy", exercises.check_masked_cross_entropy),
}


def reference(exercise_id):
    namespace = {"math": math, "torch": torch, "F": F}
    exec(exercises.solution(exercise_id), namespace)  # noqa: S102  our own source text
    return namespace[CHECKERS[exercise_id][0]]


@pytest.mark.parametrize("exercise_id", sorted(CHECKERS))
def test_reference_solutions_pass(exercise_id, capsys):
    CHECKERS[exercise_id][1](reference(exercise_id))
    assert "✅" in capsys.readouterr().out


@pytest.mark.parametrize("exercise_id", sorted(CHECKERS))
def test_unattempted_exercises_only_remind(exercise_id, capsys):
    def not_done(*args):
        raise NotImplementedError

    CHECKERS[exercise_id][1](not_done)
    CHECKERS[exercise_id][1](lambda *args: ...)
    out = capsys.readouterr().out
    assert out.count("not attempted yet. Hint:") == 2 and "✅" not in out


# what a hint must not say: a call or a step of the reference solution
GIVEAWAYS = {
    "04.1": ("cos(", "0.5", "1 +", "map that range", "min_lr +"),
    "04.2": ("/ temperature", "topk", "-inf", "before the softmax", "masked_fill"),
    "05.1": ("cumsum", "gather", "number the words", "per *word*"),
    "05.2": ("reduction", "masked_fill", "clamp", "sum(1)", "ignore_index", "one boolean"),
}


@pytest.mark.parametrize("exercise_id", sorted(GIVEAWAYS))
def test_hints_guide_without_giving_the_method(exercise_id, capsys):
    assert_hint_guides(CHECKERS[exercise_id][1], GIVEAWAYS[exercise_id], capsys)


def lr_without_clamp(config, step):  # the decay runs on past max_steps
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    done = (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps)
    return config.min_lr + 0.5 * (config.learning_rate - config.min_lr) * (1 + math.cos(math.pi * done))


def test_lr_schedule_mistakes_and_forbidden_calls():
    with pytest.raises(AssertionError, match=r"at step 0 \(warm-up\) got 0, expected.*\n.*Hint: two phases"):
        exercises.check_lr_schedule(lambda c, s: c.learning_rate * s / c.warmup_steps if s < c.warmup_steps
                                    else reference("04.1")(c, s))                   # warm-up starts at 0
    with pytest.raises(AssertionError, match=r"at step 30\d \(after max_steps\)"):
        exercises.check_lr_schedule(lr_without_clamp)
    with pytest.raises(AssertionError, match="warmup_steps=0, max_steps=7"):          # no warm-up at all
        exercises.check_lr_schedule(lambda c, s: lr_without_clamp(c, min(s, c.max_steps)) if c.warmup_steps
                                    else c.learning_rate)
    with pytest.raises(AssertionError, match="calls TrainConfig.lr_at, which this exercise asks you to do without"):
        exercises.check_lr_schedule(lambda config, step: config.lr_at(step))

    def scheduled(config, step):
        optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=config.learning_rate)
        torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
        return optimizer.param_groups[0]["lr"]

    with pytest.raises(AssertionError, match="calls torch.optim.lr_scheduler.LambdaLR"):
        exercises.check_lr_schedule(scheduled)
    assert TrainConfig.smoke().lr_at(19) == TrainConfig.smoke().learning_rate  # restored
    assert torch.optim.lr_scheduler.LambdaLR.__name__ == "LambdaLR"


def test_sampling_probabilities_edge_cases():
    solution = reference("04.2")
    with pytest.raises(AssertionError, match=r"top_k=20 with a vocabulary of 11: your function raised RuntimeError"):
        exercises.check_sampling_probabilities(
            lambda x, t, k: solution(x, t, None) if k is None else torch.softmax(
                (x / t).masked_fill(x / t < torch.topk(x / t, k).values[:, [-1]], -math.inf), -1))

    def in_place(logits, temperature, top_k):
        logits /= temperature
        return solution(logits, 1.0, top_k)

    with pytest.raises(AssertionError, match="changed the logits it was given"):
        exercises.check_sampling_probabilities(in_place)
    with pytest.raises(AssertionError, match="B=2, V=5, temperature=0.5, top_k=None"):  # softmax, then temperature
        exercises.check_sampling_probabilities(lambda x, t, k: solution(x, 1.0, k) ** (1 / t))


def piece_by_piece(is_continuation, special, probability, generator):
    return (torch.rand(special.shape, generator=generator) < probability) & ~special


def grown_to_words(is_continuation, special, probability, generator):  # pieces drawn, then whole words taken
    selected = piece_by_piece(is_continuation, special, probability, generator)
    word = (~special & ~is_continuation).long().cumsum(-1)
    chosen = torch.zeros(special.shape[0], special.shape[1] + 1, dtype=torch.long).scatter_add(1, word, selected.long())
    return (chosen.gather(1, word) > 0) & ~special


def test_whole_word_selection_mistakes_and_forbidden_calls():
    solution = reference("05.1")
    with pytest.raises(AssertionError, match="a word is split.*\n.*Hint: what must get one random draw"):
        exercises.check_whole_word_selection(piece_by_piece)
    with pytest.raises(AssertionError, match=r"% of the words (of several pieces )?selected, expected about 15%"):
        exercises.check_whole_word_selection(grown_to_words)
    with pytest.raises(AssertionError, match=r"special token \(\[CLS\], \[SEP\] or \[PAD\]\) is selected"):
        exercises.check_whole_word_selection(lambda c, s, p, g: solution(c, torch.zeros_like(s), p, g))
    with pytest.raises(AssertionError, match="probability=0.5: .* expected about 50%"):
        exercises.check_whole_word_selection(lambda c, s, p, g: solution(c, s, 0.15 if 0 < p < 1 else p, g))
    with pytest.raises(AssertionError, match="same generator seed must give the same selection"):
        exercises.check_whole_word_selection(lambda c, s, p, g: solution(c, s, p, torch.Generator().manual_seed(0)))
    with pytest.raises(AssertionError, match="expected a bool tensor"):
        exercises.check_whole_word_selection(lambda c, s, p, g: solution(c, s, p, g).long())

    def with_fmteach(is_continuation, special, probability, generator):
        ids = torch.zeros(special.shape, dtype=torch.long)
        return fmteach.mask_tokens_for_mlm(ids, mask_token_id=1, vocab_size=2, generator=generator)[1] != IGNORE_INDEX

    with pytest.raises(AssertionError, match="calls fmteach.mask_tokens_for_mlm"):
        exercises.check_whole_word_selection(with_fmteach)
    assert fmteach.mask_tokens_for_mlm(torch.zeros(1, 3, dtype=torch.long), mask_token_id=1, vocab_size=2)[0].shape == (1, 3)


def test_masked_cross_entropy_refuses_ignored_labels():
    with pytest.raises(AssertionError, match="gives F.cross_entropy labels of -100 .*do without"):
        exercises.check_masked_cross_entropy(lambda logits, labels: F.cross_entropy(logits.flatten(0, 1), labels.flatten()))
    with pytest.raises(AssertionError, match="gives F.nll_loss labels of -100"):
        exercises.check_masked_cross_entropy(
            lambda logits, labels: F.nll_loss(F.log_softmax(logits, -1).flatten(0, 1), labels.flatten(), ignore_index=-100))
    with pytest.raises(AssertionError, match=r"the loss for B=2, T=6, V=11, labelled positions per sentence \[1, 2\] "
                                             r"differs"):
        exercises.check_masked_cross_entropy(  # every position counted: the unlabelled ones as 0
            lambda logits, labels: F.cross_entropy(logits[labels != -100], labels[labels != -100], reduction="sum")
            / labels.numel())
    assert F.cross_entropy(torch.zeros(1, 2), torch.tensor([-100])).isnan()  # the originals are back


def per_sentence_loop(logits, labels):
    """Another right answer to 05.2: one sentence at a time."""
    losses = [F.cross_entropy(row_logits[row_labels != -100], row_labels[row_labels != -100])
              for row_logits, row_labels in zip(logits, labels) if (row_labels != -100).any()]
    return torch.stack(losses).mean()


def test_masked_cross_entropy_weighs_every_sentence_the_same(capsys):
    exercises.check_masked_cross_entropy(per_sentence_loop)
    assert "✅ masked cross-entropy, one weight per sentence: correct" in capsys.readouterr().out
    # section 4's loss, the mean over all labelled positions of the batch, is no longer the answer
    with pytest.raises(AssertionError, match=r"per sentence \[1, 2\] is section 4's loss: every labelled position "
                                             r"weighs the same.*\n.*Hint: section 4's by_hand"):
        exercises.check_masked_cross_entropy(
            lambda logits, labels: F.cross_entropy(logits[labels != -100], labels[labels != -100]))
    # the sentence without a label averaged over its 0 positions
    with pytest.raises(AssertionError, match=r"per sentence \[3, 0, 1\] is nan \(one sentence has no label\)"):
        exercises.check_masked_cross_entropy(
            lambda logits, labels: torch.stack([F.cross_entropy(lg[lb != -100], lb[lb != -100])
                                                for lg, lb in zip(logits, labels)]).mean())
    # per sentence, but the sentence without a label counted as a loss of 0
    with pytest.raises(AssertionError, match=r"per sentence \[3, 0, 1\] differs"):
        exercises.check_masked_cross_entropy(
            lambda logits, labels: torch.stack([F.cross_entropy(lg[lb != -100], lb[lb != -100]).nan_to_num(0.0)
                                                for lg, lb in zip(logits, labels)]).mean())


def test_predictions_04_05(capsys):
    for question_id in ("04.p1", "05.p1", "06.p1"):
        exercises.check_prediction(question_id, ...)
        exercises.check_prediction(question_id, "b")
        with pytest.raises(AssertionError, match=f"prediction {question_id}: not 'a'"):
            exercises.check_prediction(question_id, "a")
    out = capsys.readouterr().out
    assert out.count("not answered yet") == 3 and out.count("✅") == 3


def test_ids_named_in_lessons_04_05_exist():
    notebooks = Path(__file__).resolve().parents[1] / "notebooks"
    named = set()
    for name in ("04_train_small_transformer", "05_pretrain_mini_bert"):
        cells = json.loads((notebooks / f"{name}.ipynb").read_text(encoding="utf-8"))["cells"]
        named |= set(re.findall(r'(?:solution|check_prediction)\("(\d\d\.p?\d)"',
                                "".join("".join(cell["source"]) for cell in cells)))
    assert {"04.1", "04.2", "04.p1", "05.1", "05.2", "05.p1"} <= named
    for exercise_id in named:
        assert exercise_id in exercises._checking._PREDICTIONS or exercises.solution(exercise_id)


def test_wrong_sampling_and_loss_answers_are_rejected_with_a_hint():
    solution = reference("04.2")
    with pytest.raises(AssertionError, match="temperature=0.5, top_k=None"):
        exercises.check_sampling_probabilities(lambda logits, t, k: solution(logits * t, 1.0, k))
    with pytest.raises(AssertionError, match="top_k=2"):
        exercises.check_sampling_probabilities(lambda logits, t, k: torch.softmax(logits / t, -1))
    with pytest.raises(AssertionError,
                       match=r"the loss for B=2, T=6, V=11, labelled positions per sentence \[1, 2\] differs"):
        exercises.check_masked_cross_entropy(lambda logits, labels: logits.logsumexp(-1).mean())
