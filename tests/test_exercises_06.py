"""The exercise checkers of lesson 06 (BERT inside out): 06.1 counts an encoder layer's parameters,
06.2 averages attention at an offset over real token pairs; right answers pass, each slip gets its own
message, hints name no step of the solution."""

import pytest
import torch

from fmteach import exercises


def _not_done(*args):
    raise NotImplementedError


def _attention_at_offset(weights, attention_mask, offset):  # exercise 06.2, written without a diagonal
    T = attention_mask.shape[-1]
    i = torch.arange(max(T - offset, 0) if offset >= 0 else T)[max(-offset, 0):]   # queries whose i + offset is inside
    both = attention_mask[:, i].bool() & attention_mask[:, i + offset].bool()      # (B, pairs)
    if not both.any():
        raise ValueError("no pair")
    return (weights[:, :, i, i + offset] * both[:, None]).sum(dim=(0, 2)) / both.sum()


def test_checkers_accept_right_answers(capsys):
    exercises.check_encoder_layer_parameters(384, 1536, 1_774_464)
    exercises.check_attention_at_offset(_attention_at_offset)
    assert capsys.readouterr().out.count("✅") == 2


def test_a_wrong_count_is_rejected(capsys):
    with pytest.raises(AssertionError, match="off by"):
        exercises.check_encoder_layer_parameters(384, 1536, 1_774_000)


def test_lesson_06_hints_name_no_step_of_the_solution(capsys):
    exercises.check_encoder_layer_parameters(384, 1536, ...)
    exercises.check_attention_at_offset(_not_done)
    hints = [line.split("Hint: ", 1)[1] for line in capsys.readouterr().out.splitlines()]
    assert len(hints) == 2 and all("?" in hint for hint in hints)
    assert not [word for word in ("a*b", "a * b", "b biases") if word in hints[0]], hints[0]
    assert not [word for word in ("diagonal", "sum", "mean(", "divide", "&", "ValueError") if word in hints[1]], hints[1]


def _diagonal_pairs(weights, attention_mask, offset, *, divide_by_tokens=False, per_sentence=False):
    """Exercise 06.2's reference, or one of two slips: section 5's denominator, or each sentence weighed once."""
    T, k = attention_mask.shape[-1], abs(offset)
    real = attention_mask.bool()
    both = (real[:, :max(T - k, 0)] & real[:, k:])[:, None, :]
    if not both.any():
        raise ValueError("no pair")
    total = torch.diagonal(weights, offset=offset, dim1=-2, dim2=-1) * both
    if per_sentence:
        keep = both.sum(dim=(1, 2)) > 0
        return (total.sum(2) / both.sum(2).clamp(min=1))[keep].mean(0)
    return total.sum(dim=(0, 2)) / (real.sum() if divide_by_tokens else both.sum())


def _zero_without_pairs(weights, attention_mask, offset):
    """Raises only when the offset falls off every sentence, and returns zeros when padding leaves no pair."""
    if abs(offset) >= attention_mask.shape[-1]:
        raise ValueError("offset too large")
    real = attention_mask.bool()
    k = abs(offset)
    both = (real[:, :attention_mask.shape[-1] - k] & real[:, k:])[:, None, :]
    return (torch.diagonal(weights, offset=offset, dim1=-2, dim2=-1) * both).sum(dim=(0, 2)) / both.sum().clamp(min=1)


def _unclamped_slices(weights, attention_mask, offset):
    """Right up to |offset| = T; beyond it the slice :T - k counts from the end and the two slices differ."""
    T, k = attention_mask.shape[-1], abs(offset)
    real = attention_mask.bool()
    both = (real[:, :T - k] & real[:, k:])[:, None, :]
    if not both.any():
        raise ValueError("no pair")
    return (torch.diagonal(weights, offset=offset, dim1=-2, dim2=-1) * both).sum(dim=(0, 2)) / both.sum()


def test_attention_at_offset_guides_each_slip(capsys):
    """Exercise 06.2: section 5's one-liner alone fails on the shape; each slip after it gets its own message."""
    exercises.check_attention_at_offset(_diagonal_pairs)
    exercises.check_attention_at_offset(_attention_at_offset)
    assert capsys.readouterr().out.count("✅ attention at an offset: correct") == 2
    slips = [
        (lambda w, m, o: torch.diagonal(w, offset=o, dim1=-2, dim2=-1).mean(-1),       # section 5's line, as it is
         r"with no padding, for offset \+1 the per-head averages have shape \(3, 4\): one number per sentence and "
         r"head. Return one per head, shape \(4,\)"),
        (lambda w, m, o: torch.diagonal(w, offset=o, dim1=-2, dim2=-1).mean((0, -1)),  # the mask ignored
         r"padded on the right .*offset \+1 .*matches the average over every pair of positions, padding included"),
        (lambda w, m, o: torch.diagonal(w, offset=1, dim1=-2, dim2=-1).mean((0, -1)),  # offset ignored
         r"with no padding, for offset -1 .*matches the answer for offset \+1"),
        (lambda w, m, o: _diagonal_pairs(w, m, o, divide_by_tokens=True),
         r"divided by the number of real tokens, as section 5 divides"),
        (lambda w, m, o: _diagonal_pairs(w, m, o, per_sentence=True),
         r"padded on the right .*the average of each sentence's own average"),
        (lambda w, m, o: _diagonal_pairs(w, (torch.arange(m.shape[1]) < m.sum(1, keepdim=True)).long(), o),
         r"padded on the left .*the same sentences padded on the right: read which tokens are real from the mask"),
        (lambda w, m, o: torch.nan_to_num(_attention_at_offset(w, m, o)) if abs(o) < m.shape[1] else
         torch.diagonal(w, offset=o, dim1=-2, dim2=-1).mean((0, -1)),
         r"with no padding, offset \+7 pairs no two real tokens: your function returned NaN; .*raise a ValueError"),
        (_zero_without_pairs,
         r"with 4, 2 and 3 real tokens \(T = 7, padded on the right\), offset -4 pairs no two real tokens: your "
         r"function returned tensor\("),
        (_unclamped_slices,
         r"with no padding, offset -9 pairs no two real tokens: your function raised RuntimeError .*expected a "
         r"ValueError"),
    ]
    for fn, message in slips:
        with pytest.raises(AssertionError, match=message) as caught:
            exercises.check_attention_at_offset(fn)
        assert "Hint: for offset +1 and for -1" in str(caught.value)
