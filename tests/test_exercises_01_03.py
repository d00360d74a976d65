"""The exercises of lessons 01-03: checkers accept a right answer, reject a wrong one, reject one that
uses the call the exercise forbids, and test non-square shapes (L != S, d_v != d_k); reference
solutions and "predict, then run" answers on request."""

import math

import pytest
import torch
import torch.nn.functional as F

import fmteach
from fmteach import exercises

CHECKERS = {
    "01.1": ("my_softmax", exercises.check_stable_softmax),
    "01.2": ("my_attention", exercises.check_attention),
    "02.1": ("my_causal_mask", exercises.check_causal_mask),
    "02.2": ("my_padding_mask", exercises.check_padding_mask),
    "03.1": ("my_grouped_query_attention", exercises.check_grouped_query_attention),
    "03.2": ("post_ln_block", exercises.check_post_ln_block),
}


def reference(exercise_id):
    """The function defined by the reference solution's source."""
    namespace = {"math": math, "torch": torch}
    exec(exercises.solution(exercise_id), namespace)  # noqa: S102  our own source text
    return namespace[CHECKERS[exercise_id][0]]


def manual_attention(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, -1) @ v


@pytest.mark.parametrize("exercise_id", sorted(CHECKERS))
def test_reference_solutions_pass_their_checkers(exercise_id, capsys):
    CHECKERS[exercise_id][1](reference(exercise_id))
    assert "✅" in capsys.readouterr().out


@pytest.mark.parametrize("exercise_id", sorted(CHECKERS))
def test_unattempted_exercises_only_remind(exercise_id, capsys):
    def not_done(*args):
        raise NotImplementedError

    CHECKERS[exercise_id][1](not_done)
    assert "not attempted yet" in capsys.readouterr().out


@pytest.mark.parametrize("checker, cheat, forbidden", [
    (exercises.check_stable_softmax, lambda s: torch.softmax(s, -1), "torch.softmax"),
    (exercises.check_stable_softmax, lambda s: s.softmax(-1), "Tensor.softmax"),
    (exercises.check_stable_softmax, lambda s: F.softmax(s, -1), "F.softmax"),
    (exercises.check_stable_softmax, lambda s: F.log_softmax(s, -1).exp(), "F.log_softmax"),
    (exercises.check_attention, lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, m),
     "F.scaled_dot_product_attention"),
    (exercises.check_attention, lambda q, k, v, m: fmteach.scaled_dot_product_attention(q, k, v, m)[0],
     "fmteach.scaled_dot_product_attention"),
    (exercises.check_causal_mask, lambda L, S: torch.ones(L, S, dtype=torch.bool).tril(S - L), "Tensor.tril"),
    (exercises.check_causal_mask, lambda L, S: torch.tril(torch.ones(L, S, dtype=torch.bool), S - L), "torch.tril"),
    (exercises.check_causal_mask, lambda L, S: ~torch.ones(L, S, dtype=torch.bool).triu(S - L + 1), "Tensor.triu"),
    (exercises.check_causal_mask, lambda L, S: fmteach.causal_mask(S)[S - L:], "fmteach.causal_mask"),
    (exercises.check_grouped_query_attention,
     lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, m, enable_gqa=True), "F.scaled_dot_product_attention"),
])
def test_forbidden_calls_are_rejected_and_restored(checker, cheat, forbidden):
    with pytest.raises(AssertionError, match=f"calls {forbidden}, which this exercise asks you to do without"):
        checker(cheat)
    # the patched functions are back, whatever the learner's function did
    assert torch.softmax is not None and torch.equal(torch.softmax(torch.zeros(2), -1), torch.full((2,), 0.5))
    assert torch.equal(torch.ones(2, 2).tril(), torch.tensor([[1.0, 0.0], [1.0, 1.0]]))
    assert fmteach.causal_mask(2).shape == (2, 2)
    assert F.scaled_dot_product_attention(*(torch.ones(1, 2, 3),) * 3).shape == (1, 2, 3)


def test_wrong_answers_are_rejected_with_a_hint():
    with pytest.raises(AssertionError, match="overflowed.*\n.*Hint: what does softmax give"):
        exercises.check_stable_softmax(lambda s: s.exp() / s.exp().sum(-1, keepdim=True))  # the naive softmax
    with pytest.raises(AssertionError, match="differs"):
        exercises.check_stable_softmax(lambda s: (s - s.amax()).exp() / (s - s.amax()).exp().sum())  # not per row
    with pytest.raises(AssertionError, match=r"with a \(B, 1, L, S\) mask .*differs"):
        exercises.check_attention(lambda q, k, v, m: manual_attention(q, k, v))  # ignores the mask
    with pytest.raises(AssertionError, match="should be a bool tensor"):
        exercises.check_causal_mask(lambda L, S: (torch.arange(S)[None, :] <= torch.arange(S - L, S)[:, None]).float())
    with pytest.raises(AssertionError, match="post-LN block: the block's output differs"):
        exercises.check_post_ln_block(lambda block, x: block(x)[0])  # the pre-LN block
    with pytest.raises(AssertionError, match="G=2 key/value heads"):
        exercises.check_grouped_query_attention(  # heads repeated as a tile (0, 1, 0, 1), not in place (0, 0, 1, 1)
            lambda q, k, v, m: manual_attention(q, k.repeat(1, q.shape[1] // k.shape[1], 1, 1),
                                                v.repeat(1, q.shape[1] // k.shape[1], 1, 1), m))


def test_answers_that_only_work_for_square_shapes_are_rejected():
    # scaled by the value width instead of the key width: right whenever d_v == d_k
    with pytest.raises(AssertionError, match="d_k=8, d_v=5"):
        exercises.check_attention(lambda q, k, v, m: manual_attention(q * math.sqrt(q.shape[-1] / v.shape[-1]), k, v, m))
    # the plain lower triangle: right whenever L == S, wrong for queries at the end of a cache
    with pytest.raises(AssertionError, match=r"make_causal_mask\(3, 7\)"):
        exercises.check_causal_mask(lambda L, S: torch.arange(S)[None, :] <= torch.arange(L)[:, None])
    # a (B, 1, S, S) mask: broadcasts only when there are as many queries as keys
    with pytest.raises(AssertionError, match=r"does not broadcast to scores \(B=2, H=3, L=4, S=5\)"):
        exercises.check_padding_mask(lambda am: am.bool()[:, None, None, :].expand(-1, 1, am.shape[1], -1))


def test_solution_returns_source_and_names_valid_ids_on_a_bad_one():
    source = exercises.solution("01.2")
    assert source.startswith("def my_attention(q, k, v, mask=None):") and repr(source) == str(source)
    with pytest.raises(KeyError, match=r"'09.9'.*valid ids: 01\.1, 01\.2, 02\.1"):
        exercises.solution("09.9")


def test_check_prediction(capsys):
    exercises.check_prediction("01.p1", ...)
    assert "not answered yet" in capsys.readouterr().out
    for question_id, right in (("01.p1", "b"), ("02.p1", "b"), ("03.p1", "c")):
        exercises.check_prediction(question_id, right.upper())
        assert f"✅ prediction {question_id}" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="prediction 02.p1: not 'a'"):
        exercises.check_prediction("02.p1", "a")
    with pytest.raises(ValueError, match="answer must be one of 'a', 'b', 'c', got 'z'"):
        exercises.check_prediction("03.p1", "z")
    with pytest.raises(KeyError, match=r"'01\.p9'.*valid ids: 01\.p1, 02\.p1, 03\.p1"):
        exercises.check_prediction("01.p9", "a")


def test_ids_named_in_lessons_01_03_exist():
    import json
    import re
    from pathlib import Path

    notebooks = Path(__file__).resolve().parents[1] / "notebooks"
    named = set()
    for name in ("01_scaled_attention", "02_masking", "03_transformer_block"):
        cells = json.loads((notebooks / f"{name}.ipynb").read_text(encoding="utf-8"))["cells"]
        text = "".join("".join(cell["source"]) for cell in cells)
        named |= set(re.findall(r'(?:solution|check_prediction)\("(\d\d\.p?\d)"', text))
    assert {"01.1", "01.2", "01.p1", "02.1", "02.p1", "03.1", "03.p1"} <= named
    for exercise_id in named:
        if ".p" in exercise_id:
            exercises.check_prediction(exercise_id, ...)
        else:
            assert exercises.solution(exercise_id)
