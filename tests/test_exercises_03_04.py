"""The exercise checkers of lessons 03 (the post-LN block) and 04 (sampling probabilities)."""

import math

import pytest
import torch

from fmteach import exercises


def post_ln(block, x):
    x = block.ln_1(x + block.attn(x)[0])
    return block.ln_2(x + block.mlp(x))


def sampling_probabilities(logits, temperature, top_k):
    logits = logits / temperature
    if top_k is not None:
        logits[logits < torch.topk(logits, min(top_k, logits.shape[-1])).values[:, [-1]]] = -math.inf
    return torch.softmax(logits, -1)


def _not_done(*args):
    raise NotImplementedError


def test_checkers_accept_right_answers(capsys):
    exercises.check_post_ln_block(post_ln)
    exercises.check_sampling_probabilities(sampling_probabilities)
    assert capsys.readouterr().out.count("✅") == 2


def test_checkers_reject_wrong_answers_with_hints():
    with pytest.raises(AssertionError, match="block's output differs.*\n.*Hint: post-LN"):
        exercises.check_post_ln_block(lambda block, x: block(x)[0])  # the pre-LN block
    with pytest.raises(AssertionError, match="temperature=0.5, top_k=None"):
        exercises.check_sampling_probabilities(lambda logits, t, k: sampling_probabilities(logits * t, 1.0, k))
    with pytest.raises(AssertionError, match="top_k=2"):
        exercises.check_sampling_probabilities(lambda logits, t, k: torch.softmax(logits / t, -1))


def test_checkers_tolerate_unattempted_exercises(capsys):
    exercises.check_post_ln_block(_not_done)
    exercises.check_sampling_probabilities(_not_done)
    assert capsys.readouterr().out.count("not attempted yet") == 2


def test_checkers_are_exported_and_unused_ones_are_gone():
    for name in ("check_post_ln_block", "check_sampling_probabilities"):
        assert name in exercises.__all__ and callable(getattr(exercises, name))
    for name in ("check_split_heads", "check_sinusoidal_positions", "check_previous_token_attention"):
        assert not hasattr(exercises, name)  # no notebook calls them (issue 21)
