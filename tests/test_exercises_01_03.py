"""The exercises of lessons 01-03: checkers accept a right answer, reject a wrong one, reject one that
uses the call the exercise forbids, and test non-square shapes (L != S, d_v != d_k); reference
solutions and "predict, then run" answers on request."""

import math

import pytest
import torch
import torch.nn.functional as F

import fmteach
from fmteach import exercises
from tests.tiny import assert_hint_guides

CHECKERS = {
    "01.1": ("my_attention", exercises.check_attention),
    "01.2": ("my_masked_attention", exercises.check_fully_masked_attention),
    "02.1": ("my_causal_mask", exercises.check_causal_mask),
    "02.2": ("my_cross_attention_mask", exercises.check_cross_attention_mask),
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


def masked_attention(q, k, v, mask, fill=float("-inf"), softmax=lambda s: torch.softmax(s, -1)):
    """Attention with bool or float masks; ``fill`` is what a blocked score becomes."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(~mask, fill) if mask.dtype == torch.bool else scores + mask.clamp_min(fill)
    return softmax(scores) @ v


def naive_softmax(s):
    return s.exp() / s.exp().sum(-1, keepdim=True)


def safe_attention(q, k, v, mask, softmax):
    """Exercise 01.2's solution with the softmax given: rows with no key to attend to output 0."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
    blocked = torch.isneginf(scores).all(-1, keepdim=True)
    return softmax(scores.masked_fill(blocked, 0.0)).masked_fill(blocked, 0.0) @ v


@pytest.mark.parametrize("checker, cheat, forbidden", [
    (exercises.check_fully_masked_attention,
     lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, m).nan_to_num(0.0), "F.scaled_dot_product_attention"),
    (exercises.check_fully_masked_attention, lambda q, k, v, m: fmteach.scaled_dot_product_attention(q, k, v, m)[0],
     "fmteach.scaled_dot_product_attention"),
    (exercises.check_fully_masked_attention,
     lambda q, k, v, m: masked_attention(q, k, v, m, softmax=fmteach.stable_softmax),
     "fmteach.stable_softmax"),
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
    assert torch.equal(fmteach.stable_softmax(torch.zeros(2)), torch.full((2,), 0.5))
    assert torch.equal(torch.ones(2, 2).tril(), torch.tensor([[1.0, 0.0], [1.0, 1.0]]))
    assert fmteach.causal_mask(2).shape == (2, 2)
    assert F.scaled_dot_product_attention(*(torch.ones(1, 2, 3),) * 3).shape == (1, 2, 3)


def test_wrong_answers_are_rejected_with_a_hint():
    with pytest.raises(AssertionError, match=r"with a \(B, 1, L, S\) mask .*differs"):
        exercises.check_attention(lambda q, k, v, m: manual_attention(q, k, v))  # ignores the mask
    # exercise 01.2: the usual ways to get a fully masked row wrong
    with pytest.raises(AssertionError, match="may attend to no key is nan\n.*Hint: run your Exercise 1"):
        exercises.check_fully_masked_attention(masked_attention)  # exercise 01.1's answer: nan rows
    with pytest.raises(AssertionError, match="should output 0, yours outputs the plain average of all values"):
        exercises.check_fully_masked_attention(lambda q, k, v, m: masked_attention(q, k, v, m, fill=-1e9))
    with pytest.raises(AssertionError, match="a float .* mask .*differs"):  # a float mask read as "is it 0?"
        exercises.check_fully_masked_attention(
            lambda q, k, v, m: reference("01.2")(q, k, v, m if m.dtype == torch.bool else m.isfinite()))
    with pytest.raises(AssertionError, match="some keys got nan .did exp.. overflow"):  # lesson 01's naive softmax
        exercises.check_fully_masked_attention(lambda q, k, v, m: safe_attention(q, k, v, m, softmax=naive_softmax))
    with pytest.raises(AssertionError, match="changed q, k, v or the mask"):
        exercises.check_fully_masked_attention(lambda q, k, v, m: reference("01.2")(q.mul_(2), k, v, m))
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
    # queries and keys swapped: a (B, 1, S, L) mask is the right shape only when L == S
    with pytest.raises(AssertionError, match=r"B=2, L=3 decoder positions, S=5 .*shape \(2, 1, 5, 3\), expected"):
        exercises.check_cross_attention_mask(
            lambda dec, enc: (enc.bool()[:, :, None] & dec.bool()[:, None, :])[:, None])


def test_other_right_answers_pass(capsys):
    exercises.check_fully_masked_attention(lambda q, k, v, m: masked_attention(q, k, v, m).nan_to_num(0.0))  # nan -> 0
    exercises.check_fully_masked_attention(lambda q, k, v, m: safe_attention(q, k, v, m, lambda s: s.softmax(-1)))
    exercises.check_cross_attention_mask(lambda dec, enc: torch.einsum("bl,bs->bls", dec, enc).bool().unsqueeze(1))
    assert capsys.readouterr().out.count("✅") == 3


def test_cross_attention_mask_mistakes():
    key_mask = lambda dec, enc: enc.bool()[:, None, None, :].expand(-1, 1, dec.shape[1], -1)  # noqa: E731
    query_mask = lambda dec, enc: dec.bool()[:, None, :, None].expand(-1, 1, -1, enc.shape[1])  # noqa: E731
    with pytest.raises(AssertionError, match="a padded decoder position may still attend to some key\n.*Hint: draw"):
        exercises.check_cross_attention_mask(key_mask)  # the encoder's padding mask alone, grown to (B, 1, L, S)
    with pytest.raises(AssertionError, match="a real decoder query may attend to a padded encoder key"):
        exercises.check_cross_attention_mask(query_mask)
    with pytest.raises(AssertionError, match=r"shape \(2, 1, 1, 5\), expected \(B, 1, L, S\) = \(2, 1, 3, 5\)"):
        exercises.check_cross_attention_mask(lambda dec, enc: fmteach.padding_mask(enc))  # broadcastable is not enough
    with pytest.raises(AssertionError, match="expected a bool tensor, got torch.int64"):
        exercises.check_cross_attention_mask(lambda dec, enc: (dec[:, :, None] * enc[:, None, :])[:, None])
    with pytest.raises(AssertionError, match="changed the attention masks"):
        exercises.check_cross_attention_mask(lambda dec, enc: reference("02.2")(dec, enc.mul_(0)))


# what a hint must not say: a call or a step of the reference solution, or the answer to the exercise's question
GIVEAWAYS = {
    "01.1": ("-inf", "masked_fill"),
    "01.2": ("-inf", "nan", "isneginf", "nan_to_num", "set only those", "masked_fill"),
    "02.1": ("arange", "<=", "comparison", "S - L"),
    "02.2": ("[:, None", "&", "broadcast", "head axis"),
    "03.1": ("repeat", "in place", "H // G", "expand"),
    "03.2": ("ln_1(x", "ln_2(x"),
}


@pytest.mark.parametrize("exercise_id", sorted(GIVEAWAYS))
def test_hints_guide_without_giving_the_method(exercise_id, capsys):
    assert_hint_guides(CHECKERS[exercise_id][1], GIVEAWAYS[exercise_id], capsys)


def test_solution_returns_source_and_names_valid_ids_on_a_bad_one():
    source = exercises.solution("01.1")
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


def post_ln(block, x):
    x = block.ln_1(x + block.attn(x)[0])
    return block.ln_2(x + block.mlp(x))


def test_wrong_attention_masks_and_blocks_are_rejected_with_a_hint(capsys):
    exercises.check_attention(manual_attention)
    exercises.check_causal_mask(lambda L, S: torch.arange(S)[None, :] <= torch.arange(S - L, S)[:, None])
    exercises.check_post_ln_block(post_ln)
    assert capsys.readouterr().out.count("✅") == 3
    with pytest.raises(AssertionError, match=r"output with a \(B, 1, L, S\) mask .*differs"):
        exercises.check_attention(lambda q, k, v, m: manual_attention(q, k, v, None))
    with pytest.raises(AssertionError, match="lets some query see a later key"):
        exercises.check_causal_mask(lambda L, S: torch.arange(S)[None, :] >= torch.arange(S - L, S)[:, None])
    with pytest.raises(AssertionError, match="block's output differs.*\n.*Hint: post-LN"):
        exercises.check_post_ln_block(lambda block, x: block(x)[0])  # the pre-LN block


def test_unused_checkers_are_gone():
    for name in ("check_split_heads", "check_sinusoidal_positions", "check_previous_token_attention"):
        assert not hasattr(exercises, name)  # no notebook calls them (issue 21)
