"""The exercise checkers of lessons 03 (the transformer block) and 04 (training a small transformer)."""

import math

import pytest
import torch

from fmteach import exercises


def split_heads(x, n_head):
    B, T, C = x.shape
    return x.view(B, T, n_head, C // n_head).transpose(1, 2)


def merge_heads(x):
    B, nh, T, hs = x.shape
    return x.transpose(1, 2).contiguous().view(B, T, nh * hs)


def post_ln(block, x):
    x = block.ln_1(x + block.attn(x)[0])
    return block.ln_2(x + block.mlp(x))


def sinusoidal(n_positions, dim):
    angle = torch.arange(n_positions)[:, None] / 10000 ** (2 * (torch.arange(dim) // 2) / dim)
    return torch.where(torch.arange(dim) % 2 == 0, torch.sin(angle), torch.cos(angle))


def sampling_probabilities(logits, temperature, top_k):
    logits = logits / temperature
    if top_k is not None:
        logits[logits < torch.topk(logits, min(top_k, logits.shape[-1])).values[:, [-1]]] = -math.inf
    return torch.softmax(logits, -1)


def _not_done(*args):
    raise NotImplementedError


def test_checkers_accept_right_answers(capsys):
    exercises.check_split_heads(split_heads, merge_heads)
    exercises.check_post_ln_block(post_ln)
    exercises.check_sinusoidal_positions(sinusoidal)
    exercises.check_previous_token_attention(lambda w: torch.diagonal(w, offset=-1, dim1=-2, dim2=-1).mean(-1))
    exercises.check_sampling_probabilities(sampling_probabilities)
    assert capsys.readouterr().out.count("✅") == 5


def test_checkers_reject_wrong_answers_with_hints():
    with pytest.raises(AssertionError, match=r"split_heads\(x, n_head=3\) differs.*\n.*Hint: view"):
        exercises.check_split_heads(lambda x, n: x.view(2, 3, 5, 4), merge_heads)  # heads taken from the wrong axis
    with pytest.raises(AssertionError, match="has shape"):
        exercises.check_split_heads(lambda x, n: x.view(2, 5, n, -1), merge_heads)  # forgot the transpose
    with pytest.raises(AssertionError, match="merge_heads"):
        exercises.check_split_heads(split_heads, lambda x: x.reshape(2, 5, 12))  # merged without transposing back
    with pytest.raises(AssertionError, match="block's output differs.*\n.*Hint: post-LN"):
        exercises.check_post_ln_block(lambda block, x: block(x)[0])  # the pre-LN block
    with pytest.raises(AssertionError, match=r"fn\(10, 6\) differs"):
        exercises.check_sinusoidal_positions(lambda n, d: sinusoidal(n, d).flip(-1))  # cos and sin swapped
    with pytest.raises(AssertionError, match="per-head averages differ"):
        exercises.check_previous_token_attention(lambda w: torch.diagonal(w, offset=1, dim1=-2, dim2=-1).mean(-1))
    with pytest.raises(AssertionError, match="temperature=0.5, top_k=None"):
        exercises.check_sampling_probabilities(lambda logits, t, k: sampling_probabilities(logits * t, 1.0, k))
    with pytest.raises(AssertionError, match="top_k=2"):
        exercises.check_sampling_probabilities(lambda logits, t, k: torch.softmax(logits / t, -1))


def test_checkers_tolerate_unattempted_exercises(capsys):
    exercises.check_split_heads(_not_done, _not_done)
    exercises.check_post_ln_block(_not_done)
    exercises.check_sinusoidal_positions(_not_done)
    exercises.check_previous_token_attention(_not_done)
    exercises.check_sampling_probabilities(_not_done)
    assert capsys.readouterr().out.count("not attempted yet") == 5


def test_new_checkers_are_exported():
    for name in ("check_split_heads", "check_post_ln_block", "check_sinusoidal_positions",
                 "check_previous_token_attention", "check_sampling_probabilities"):
        assert name in exercises.__all__ and callable(getattr(exercises, name))
