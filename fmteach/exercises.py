"""Checkers for the notebooks' exercises.

Each ``check_*`` prints ``✅ correct`` or raises an ``AssertionError`` with a hint. An exercise not
attempted yet (its function still raises ``NotImplementedError``, or its answer is ``...``) only
prints a reminder, so a notebook always runs from top to bottom.
"""

from __future__ import annotations

import contextlib
import importlib
import math
from collections.abc import Callable

import torch

from .attention import scaled_dot_product_attention
from .masks import causal_mask, padding_mask

__all__ = [
    "solution",
    "check_prediction",
    "check_stable_softmax",
    "check_attention",
    "check_dot_product_variance",
    "check_causal_mask",
    "check_padding_mask",
    "check_mlm_expected_counts",
    "check_initial_mlm_loss",
    "check_perplexity",
    "check_masked_cross_entropy",
    "check_encoder_layer_parameters",
    "check_next_token_attention",
    "check_grouped_query_attention",
    "check_split_heads",
    "check_post_ln_block",
    "check_sinusoidal_positions",
    "check_previous_token_attention",
    "check_sampling_probabilities",
    "check_binary_metrics",
    "check_padded_tokens",
    # lesson 09
    "check_count_normalized_duplicates",
    "check_association",
    # lesson 08
    "check_chance_baselines",
    "check_prototype_predict",
]


class _NotAttempted(Exception):
    pass


@contextlib.contextmanager
def _exercise(title: str, hint: str):
    try:
        yield
    except (NotImplementedError, _NotAttempted):
        print(f"⏳ {title}: not attempted yet. Hint: {hint}")
    except AssertionError as exc:
        raise AssertionError(f"{title}: {exc}\nHint: {hint}") from None
    else:
        print(f"✅ {title}: correct")


def _call(fn: Callable, *args):
    if not callable(fn):
        raise AssertionError(f"expected a function, got {type(fn).__name__}")
    return fn(*args)


def _close(actual, expected, what: str, atol: float = 1e-6) -> None:
    if not isinstance(actual, torch.Tensor):
        raise AssertionError(f"{what} should be a torch.Tensor, got {type(actual).__name__}")
    if actual.shape != expected.shape:
        raise AssertionError(f"{what} has shape {tuple(actual.shape)}, expected {tuple(expected.shape)}")
    if not torch.allclose(actual.to(expected.dtype), expected, atol=atol, rtol=1e-5, equal_nan=False):
        diff = (actual.to(expected.dtype) - expected).abs().nan_to_num(float("inf")).max().item()
        raise AssertionError(f"{what} differs from the reference by up to {diff:.3g}")


@contextlib.contextmanager
def _forbidden(*targets: tuple[object, str, str]):
    """While active, each ``(owner, attribute, name)`` raises ``AssertionError`` naming the call, so a
    learner's function that uses what the exercise forbids fails with a clear message."""
    saved = []

    def refuse(name: str):
        def call(*args, **kwargs):
            raise AssertionError(f"your function calls {name}, which this exercise asks you to do without")
        return call

    try:
        for owner, attribute, name in targets:
            saved.append((owner, attribute, getattr(owner, attribute)))
            setattr(owner, attribute, refuse(name))
        yield
    finally:
        for owner, attribute, original in reversed(saved):
            setattr(owner, attribute, original)


def _softmax_calls():
    import torch.nn.functional as F

    return ((torch, "softmax", "torch.softmax"), (torch.Tensor, "softmax", "Tensor.softmax"),
            (F, "softmax", "F.softmax"), (torch.special, "softmax", "torch.special.softmax"),
            (torch, "log_softmax", "torch.log_softmax"), (torch.Tensor, "log_softmax", "Tensor.log_softmax"),
            (F, "log_softmax", "F.log_softmax"))


def _fused_attention_calls():
    import torch.nn.functional as F

    from . import attention as attention_module

    package = importlib.import_module(__package__)
    return ((F, "scaled_dot_product_attention", "F.scaled_dot_product_attention"),
            (package, "scaled_dot_product_attention", "fmteach.scaled_dot_product_attention"),
            (attention_module, "scaled_dot_product_attention", "fmteach.scaled_dot_product_attention"))


def _triangle_calls():
    from . import masks as masks_module

    package = importlib.import_module(__package__)
    calls = [(torch, name, f"torch.{name}") for name in ("tril", "triu", "tril_indices", "triu_indices")]
    calls += [(torch.Tensor, name, f"Tensor.{name}") for name in ("tril", "triu", "tril_", "triu_")]
    return (*calls, (package, "causal_mask", "fmteach.causal_mask"), (masks_module, "causal_mask", "fmteach.causal_mask"))


def check_stable_softmax(softmax: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """Exercise 01.1: a softmax over the last dim that survives huge scores, without torch's softmax."""
    with _exercise("stable softmax", "what does softmax give if you subtract the same number from every score of a row? "
                                     "Which number keeps every exp() at most 1?"):
        x = torch.randn(2, 4, 7, generator=torch.Generator().manual_seed(0))
        big = torch.tensor([[1000.0, 1001.0, 1002.0], [-1000.0, -1001.0, -1002.0]])
        expected_x, expected_big = torch.softmax(x, -1), torch.softmax(big, -1)
        with _forbidden(*_softmax_calls()):
            out_x, out_big = _call(softmax, x.clone()), _call(softmax, big.clone())
        _close(out_x, expected_x, "softmax of small scores, shape (2, 4, 7)")
        if not isinstance(out_big, torch.Tensor) or not torch.isfinite(out_big).all():
            raise AssertionError(f"softmax of [1000, 1001, 1002] gave {getattr(out_big, 'tolist', lambda: out_big)()}: "
                                 f"exp(1000) overflowed")
        _close(out_big, expected_big, "softmax of huge scores")


def check_attention(attention: Callable) -> None:
    """Exercise 01.2: ``attention(q (..., L, d_k), k (..., S, d_k), v (..., S, d_v), mask)`` -> output
    (..., L, d_v), with a bool mask (True = may attend), without a ready-made attention function."""
    hint = ("scores compare every query with every key; a blocked score must end up with weight 0 "
            "after the softmax (which value has exp() = 0?)")
    with _exercise("attention with a mask", hint):
        gen = torch.Generator().manual_seed(1)
        q = torch.randn(2, 3, 4, 8, generator=gen, dtype=torch.float64)   # L = 4 queries, d_k = 8
        k = torch.randn(2, 3, 6, 8, generator=gen, dtype=torch.float64)   # S = 6 keys
        v = torch.randn(2, 3, 6, 5, generator=gen, dtype=torch.float64)   # d_v = 5
        mask = torch.rand(2, 1, 4, 6, generator=gen) < 0.6
        mask[..., 0] = True                                               # every query sees some key
        cases = (("without a mask", None), ("with a (B, 1, L, S) mask", mask), ("with an (L, S) mask", mask[0, 0]))
        for what, m in cases:
            expected = scaled_dot_product_attention(q, k, v, m)[0]
            with _forbidden(*_fused_attention_calls()):
                out = _call(attention, q, k, v, m)
            out = out[0] if isinstance(out, tuple) else out
            _close(out, expected, f"output {what} (L=4 queries, S=6 keys, d_k=8, d_v=5)")


def check_dot_product_variance(d_k: int, unscaled, scaled) -> None:
    """Exercise (kept for older notebooks): variance of q·k for N(0, 1) entries, before and after /sqrt(d_k)."""
    hint = "q·k is a sum of d_k products, each with mean 0 and variance 1; dividing by c divides the variance by c²"
    with _exercise(f"variance of q·k with d_k={d_k}", hint):
        if unscaled is ... or scaled is ...:
            raise _NotAttempted
        if not math.isclose(float(unscaled), d_k, rel_tol=1e-6):
            raise AssertionError(f"unscaled variance {unscaled} is wrong")
        if not math.isclose(float(scaled), 1.0, rel_tol=1e-6):
            raise AssertionError(f"scaled variance {scaled} is wrong")


def check_causal_mask(make_causal_mask: Callable[[int, int], torch.Tensor]) -> None:
    """Exercise 02.1: ``make_causal_mask(L, S)`` -> (L, S) bool, without torch.tril/triu. The L queries
    are the *last* L of S positions (generation with a cache); query i may see key j when
    j <= i + (S - L). With L == S it is the lower triangle."""
    hint = ("give every query and every key its absolute position (torch.arange); the queries are the "
            "last L of the S positions; compare a column of query positions with a row of key positions")
    with _exercise("causal mask for L queries over S keys", hint):
        for L, S in ((1, 1), (4, 4), (9, 9), (3, 7), (1, 5)):
            expected = torch.arange(S)[None, :] <= torch.arange(S - L, S)[:, None]
            with _forbidden(*_triangle_calls()):
                m = _call(make_causal_mask, L, S)
            if not isinstance(m, torch.Tensor) or m.dtype != torch.bool:
                raise AssertionError(f"make_causal_mask({L}, {S}) should be a bool tensor, got {getattr(m, 'dtype', type(m))}")
            if m.shape != expected.shape:
                raise AssertionError(f"make_causal_mask({L}, {S}) has shape {tuple(m.shape)}, expected ({L}, {S})")
            if not torch.equal(m, expected):
                raise AssertionError(f"make_causal_mask({L}, {S}) lets some query see a later key, or hides an earlier one")


def check_padding_mask(make_padding_mask: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """Exercise 02.2: (B, S) 0/1 attention_mask -> bool mask broadcastable to (B, H, L, S), L != S allowed."""
    with _exercise("padding mask", "the mask must have a size-1 axis for heads and for queries, and keep B and S where they are"):
        am = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 0]])  # B = 2, S = 5
        scores_shape = (2, 3, 4, 5)                            # H = 3 heads, L = 4 queries
        m = _call(make_padding_mask, am.clone())
        if not isinstance(m, torch.Tensor) or m.dtype != torch.bool:
            raise AssertionError(f"expected a bool tensor, got {getattr(m, 'dtype', type(m))}")
        try:
            grown = torch.broadcast_shapes(m.shape, scores_shape)
        except RuntimeError:
            grown = None
        if grown != scores_shape:
            raise AssertionError(f"shape {tuple(m.shape)} does not broadcast to scores (B=2, H=3, L=4, S=5)")
        if not torch.equal(m.expand(scores_shape), padding_mask(am).expand(scores_shape)):
            raise AssertionError("some query may attend a padding key, or may not attend a real one")


def check_mlm_expected_counts(n_tokens: int, answer: dict) -> None:
    """Exercise: of ``n_tokens`` maskable tokens, how many (in expectation) become [MASK], a random
    token, or stay unchanged-but-predicted? ``answer = {"mask": ..., "random": ..., "unchanged": ...}``."""
    hint = "15% are selected; of those 80% -> [MASK], 10% -> random, 10% -> unchanged"
    with _exercise(f"BERT masking counts for {n_tokens} tokens", hint):
        if answer is ... or any(v is ... for v in dict(answer).values()):
            raise _NotAttempted
        expected = {"mask": 0.15 * 0.8 * n_tokens, "random": 0.15 * 0.1 * n_tokens,
                    "unchanged": 0.15 * 0.1 * n_tokens}
        if set(answer) != set(expected):
            raise AssertionError(f"answer needs exactly the keys {sorted(expected)}, got {sorted(answer)}")
        for key, value in expected.items():
            if not math.isclose(float(answer[key]), value, rel_tol=1e-6):
                raise AssertionError(f"{key!r}: {answer[key]} is not the expected count")


def check_initial_mlm_loss(vocab_size: int, answer) -> None:
    """Exercise: the loss of an untrained model that spreads probability evenly over the vocabulary."""
    with _exercise(f"untrained loss with {vocab_size:,} tokens", "a uniform guess gives each token 1/V; the loss is -log(1/V)"):
        if answer is ...:
            raise _NotAttempted
        if not math.isclose(float(answer), math.log(vocab_size), rel_tol=1e-3):
            raise AssertionError(f"{answer} is not the cross-entropy of a uniform guess")


def check_perplexity(loss: float, answer) -> None:
    """Exercise: perplexity from a mean cross-entropy (in nats)."""
    with _exercise(f"perplexity of loss {loss:g}", "perplexity = exp(loss): the number of equally likely choices"):
        if answer is ...:
            raise _NotAttempted
        if not math.isclose(float(answer), math.exp(loss), rel_tol=1e-4):
            raise AssertionError(f"{answer} is not the perplexity")


def check_masked_cross_entropy(fn: Callable) -> None:
    """Exercise: ``fn(logits (B, T, V), labels (B, T) with -100) -> mean loss over labelled positions``,
    without ``ignore_index``."""
    with _exercise("cross-entropy on masked positions only", "select positions with labels != -100, then F.cross_entropy"):
        gen = torch.Generator().manual_seed(2)
        logits = torch.randn(2, 6, 11, generator=gen)
        labels = torch.full((2, 6), -100)
        labels[0, 1], labels[1, 4], labels[1, 5] = 3, 7, 0
        expected = torch.nn.functional.cross_entropy(logits.view(-1, 11), labels.view(-1), ignore_index=-100)
        _close(torch.as_tensor(_call(fn, logits, labels)), expected, "the loss")


def check_encoder_layer_parameters(hidden_size: int, intermediate_size: int, answer) -> None:
    """Exercise: the number of parameters of one BERT encoder layer."""
    with _exercise("parameters of one encoder layer",
                   "4 projections of H*H + H, two LayerNorms of 2H, then H*I + I and I*H + H"):
        if answer is ...:
            raise _NotAttempted
        H, I = hidden_size, intermediate_size
        expected = 4 * (H * H + H) + 2 * (2 * H) + (H * I + I) + (I * H + H)
        if int(answer) != expected:
            raise AssertionError(f"{answer:,} is off by {int(answer) - expected:+,}")


def check_next_token_attention(fn: Callable) -> None:
    """Exercise: ``fn(weights (heads, T, T)) -> (heads,)`` mean weight from token i to token i+1."""
    with _exercise("attention to the next token", "the entries (i, i+1) are the diagonal above the main one: offset=1"):
        gen = torch.Generator().manual_seed(3)
        weights = torch.softmax(torch.randn(3, 5, 5, generator=gen), -1)
        expected = torch.stack([torch.stack([weights[h, i, i + 1] for i in range(4)]).mean() for h in range(3)])
        _close(torch.as_tensor(_call(fn, weights)), expected, "the per-head averages")


def check_grouped_query_attention(attention: Callable) -> None:
    """Exercise 03.1: grouped-query attention. ``attention(q (B, H, L, d_k), k (B, G, S, d_k),
    v (B, G, S, d_v), mask)`` -> (B, H, L, d_v): H query heads share G key/value heads, query heads
    h*H/G ... (h+1)*H/G - 1 all using key/value head h; without a fused attention function."""
    hint = ("each key/value head must serve H // G consecutive query heads: make G heads into H by "
            "repeating each one in place, then it is lesson 01's attention")
    with _exercise("grouped-query attention", hint):
        gen = torch.Generator().manual_seed(6)
        for H, G, L, S in ((4, 2, 3, 5), (6, 1, 4, 4), (4, 4, 2, 7)):
            q = torch.randn(2, H, L, 8, generator=gen, dtype=torch.float64)
            k = torch.randn(2, G, S, 8, generator=gen, dtype=torch.float64)
            v = torch.randn(2, G, S, 5, generator=gen, dtype=torch.float64)
            mask = torch.arange(S)[None, :] <= torch.arange(S - L, S)[:, None]   # causal, queries last
            for m in (None, mask):
                expected = scaled_dot_product_attention(q, k.repeat_interleave(H // G, dim=1),
                                                        v.repeat_interleave(H // G, dim=1), m)[0]
                with _forbidden(*_fused_attention_calls()):
                    out = _call(attention, q, k, v, m)
                out = out[0] if isinstance(out, tuple) else out
                _close(out, expected, f"output for H={H} query heads, G={G} key/value heads, L={L}, S={S}, "
                                      f"d_v=5, {'causal mask' if m is not None else 'no mask'}")


# --- Predict, then run; reference solutions on request ---------------------------------------

_PREDICTIONS: dict[str, tuple[str, dict[str, str], str, str]] = {
    "01.p1": (
        "The scores are so large that every row of the softmax is one-hot. Which gradients vanish?",
        {"a": "all of them: q, k and v get no gradient, the layer stops learning",
         "b": "those through the scores (to q and k); v still gets its full gradient",
         "c": "only the gradient to v"},
        "b",
        "the output is weights @ v: with one-hot weights it copies one value row, and that row's gradient is "
        "the output's gradient. Only the path through softmax, whose Jacobian diag(a) - aaᵀ is 0 at a one-hot a, dies.",
    ),
    "02.p1": (
        "A small character model is trained twice on Shakespeare, with and without the causal mask. "
        "Without it, after the same number of steps, the training loss is …",
        {"a": "about the same as with the mask", "b": "far lower, heading for 0",
         "c": "higher: the extra context confuses the model"},
        "b",
        "without the mask position t can attend to position t+1, which holds the very character it must "
        "predict: the model learns to copy it. The loss collapses, and the model is useless for generation, "
        "where position t+1 does not exist yet.",
    ),
    "03.p1": (
        "A stack of 48 pre-LN blocks *without* residual connections, at initialisation. At its output, how "
        "different are the vectors of different positions?",
        {"a": "as different as the input tokens", "b": "about half as different",
         "c": "practically identical: every position holds the same vector"},
        "c",
        "an untrained head averages the tokens it sees, and the feed-forward network works on each token alone, "
        "so it cannot separate them again: every block shrinks the differences by a constant factor.",
    ),
}

_SOLUTIONS: dict[str, str] = {
    "01.1": '''def my_softmax(scores):
    shifted = scores - scores.amax(-1, keepdim=True)  # the largest score becomes 0: exp() <= 1
    return shifted.exp() / shifted.exp().sum(-1, keepdim=True)
''',
    "01.2": '''def my_attention(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., L, S)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))     # exp(-inf) = 0: no weight
    return torch.softmax(scores, -1) @ v                       # (..., L, d_v)
''',
    "02.1": '''def my_causal_mask(L, S):
    query_positions = torch.arange(S - L, S)  # the L queries are the last L positions
    key_positions = torch.arange(S)
    return key_positions[None, :] <= query_positions[:, None]  # (L, S): key j visible to query i
''',
    "02.2": '''def my_padding_mask(attention_mask):
    return attention_mask.bool()[:, None, None, :]  # (B, S) -> (B, 1, 1, S)
''',
    "03.1": '''def my_grouped_query_attention(q, k, v, mask=None):
    group = q.shape[1] // k.shape[1]                 # query heads per key/value head
    k = k.repeat_interleave(group, dim=1)            # (B, G, S, d_k) -> (B, H, S, d_k)
    v = v.repeat_interleave(group, dim=1)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, -1) @ v
''',
    "03.2": '''def post_ln_block(block, x):
    x = block.ln_1(x + block.attn(x)[0])    # normalise after adding
    return block.ln_2(x + block.mlp(x))
''',
}


class _Source(str):
    """A string that a notebook shows as the code it holds (not as a quoted repr)."""

    def __repr__(self) -> str:
        return str(self)


def _known(table: dict, kind: str, exercise_id) -> None:
    if exercise_id not in table:
        raise KeyError(f"no {kind} for exercise_id {exercise_id!r}; valid ids: {', '.join(sorted(table))}")


def solution(exercise_id: str) -> str:
    """The reference solution of an exercise as source code, e.g. ``solution("01.2")``; try first."""
    _known(_SOLUTIONS, "solution", exercise_id)
    return _Source(_SOLUTIONS[exercise_id])


def check_prediction(question_id: str, answer) -> None:
    """A "predict, then run" question: ``answer`` is the letter of your choice (``...`` = not yet)."""
    _known(_PREDICTIONS, "prediction question", question_id)
    question, choices, right, why = _PREDICTIONS[question_id]
    options = "; ".join(f"{letter}) {text}" for letter, text in choices.items())
    if answer is ...:
        print(f"⏳ prediction {question_id}: not answered yet. {question}\n   Choose one: {options}")
        return
    if not isinstance(answer, str) or answer.strip().lower() not in choices:
        raise ValueError(f"answer must be one of {', '.join(repr(c) for c in choices)}, got {answer!r}")
    if answer.strip().lower() != right:
        raise AssertionError(f"prediction {question_id}: not {answer!r}. Run the next cell and look at what it "
                             f"measures, then try again")
    print(f"✅ prediction {question_id}: {right}) {choices[right]}. Why: {why}")



# --- Lessons 03-04: the transformer block, training a small transformer --------------------------


def check_split_heads(split_heads: Callable, merge_heads: Callable) -> None:
    """Exercise: ``split_heads(x (B, T, C), n_head) -> (B, nh, T, C // nh)`` and ``merge_heads`` back."""
    hint = "view(B, T, n_head, C // n_head) then transpose(1, 2); merging undoes both (contiguous() before view)"
    with _exercise("split and merge heads", hint):
        x = torch.arange(2 * 5 * 12, dtype=torch.float64).view(2, 5, 12)  # (B=2, T=5, C=12)
        expected = x.view(2, 5, 3, 4).transpose(1, 2)  # head h holds channels 4h .. 4h+3
        _close(torch.as_tensor(_call(split_heads, x, 3)), expected, "split_heads(x, n_head=3)", atol=0)
        _close(torch.as_tensor(_call(merge_heads, expected)), x, "merge_heads(split heads)", atol=0)


def check_post_ln_block(fn: Callable) -> None:
    """Exercise: ``fn(block, x)`` -> the original (post-LN) Transformer's block with the same sub-layers:
    ``x = ln_1(x + attn(x))``, then ``x = ln_2(x + mlp(x))``."""
    hint = "post-LN normalises after adding: x = block.ln_1(x + block.attn(x)[0]); x = block.ln_2(x + block.mlp(x))"
    with _exercise("post-LN block", hint):
        from .model import GPTConfig, TransformerBlock  # here: exercises need no model unless this one runs

        torch.manual_seed(0)
        block = TransformerBlock(GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_head=2, n_embd=8)).double()
        x = torch.randn(2, 6, 8, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
        with torch.no_grad():
            expected = block.ln_1(x + block.attn(x)[0])
            expected = block.ln_2(expected + block.mlp(expected))
            out = _call(fn, block, x)
        out = out[0] if isinstance(out, tuple) else out
        _close(out, expected, "the block's output", atol=1e-10)


def check_sinusoidal_positions(fn: Callable) -> None:
    """Exercise: ``fn(n_positions, dim) -> (n_positions, dim)`` with sin in even and cos in odd columns."""
    hint = "angle[p, i] = p / 10000 ** (2 * (i // 2) / dim); sin for even columns i, cos for odd ones"
    with _exercise("sinusoidal position encoding", hint):
        n_positions, dim = 10, 6
        position = torch.arange(n_positions, dtype=torch.float64)[:, None]
        frequency = 10000.0 ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)
        expected = torch.zeros(n_positions, dim, dtype=torch.float64)
        expected[:, 0::2] = torch.sin(position * frequency)
        expected[:, 1::2] = torch.cos(position * frequency)
        _close(torch.as_tensor(_call(fn, n_positions, dim)), expected, f"fn({n_positions}, {dim})", atol=1e-5)


def check_previous_token_attention(fn: Callable) -> None:
    """Exercise: ``fn(weights (heads, T, T)) -> (heads,)`` mean weight from token i to token i-1 (i >= 1)."""
    with _exercise("attention to the previous token", "the entries (i, i-1) are the diagonal below the main one: offset=-1"):
        gen = torch.Generator().manual_seed(5)
        weights = torch.softmax(torch.randn(3, 6, 6, generator=gen), -1)
        expected = torch.stack([torch.stack([weights[h, i, i - 1] for i in range(1, 6)]).mean() for h in range(3)])
        _close(torch.as_tensor(_call(fn, weights)), expected, "the per-head averages")


def check_sampling_probabilities(fn: Callable) -> None:
    """Exercise: ``fn(logits (B, V), temperature > 0, top_k or None) -> (B, V)`` the probabilities sampled from."""
    hint = "divide the logits by the temperature; keep the top_k largest (others -inf); then softmax"
    with _exercise("temperature and top-k", hint):
        logits = torch.tensor([[2.0, 1.0, 0.5, -1.0, 0.0], [0.0, 3.0, -2.0, 1.0, 1.5]])
        for temperature, top_k in ((1.0, None), (0.5, None), (2.0, None), (1.0, 2), (0.7, 3)):
            scaled = logits / temperature
            if top_k is not None:
                kth = torch.topk(scaled, top_k).values[:, [-1]]
                scaled = scaled.masked_fill(scaled < kth, float("-inf"))
            out = torch.as_tensor(_call(fn, logits.clone(), temperature, top_k))
            _close(out, torch.softmax(scaled, -1), f"probabilities for temperature={temperature}, top_k={top_k}")


# ==============================================================================================
# lesson 09: challenges (data leakage, bias)


def check_count_normalized_duplicates(fn: Callable) -> None:
    """Exercise: ``fn(train_texts, test_texts) -> int``, how many test texts equal some training
    text once both are normalised (lower-case, no punctuation, single spaces)."""
    from .challenges import normalize_text

    hint = ("put normalize_text(t) of every training text in a set, then count the test texts whose "
            "normalize_text is in it")
    with _exercise("count normalised duplicates", hint):
        train = ["The movie was GREAT!", "what a  waste of time", "Loved it.", "Loved it.", "so-so"]
        normal_train = {normalize_text(s) for s in train}
        for test in (["the movie was great", "What a waste of time?!", "loved it", "Hated it."],
                     ["The movie was GREAT!", "soso", "so so", "great movie"], []):
            expected = sum(normalize_text(t) in normal_train for t in test)
            got = _call(fn, list(train), list(test))
            if got is ...:
                raise _NotAttempted
            if isinstance(got, bool) or not isinstance(got, int) and not hasattr(got, "__index__"):
                raise AssertionError(f"expected an int, got {type(got).__name__}")
            if int(got) != expected:
                raise AssertionError(f"for test texts {test} the answer is {expected}, you counted {got} "
                                     f"(an exact duplicate counts too; each test text counts once)")


def check_association(fn: Callable) -> None:
    """Exercise: ``fn(word (H,), male (M, H), female (F, H)) -> float``, the WEAT-style association:
    mean cosine similarity of ``word`` to the male vectors minus its mean cosine to the female ones."""
    from .challenges import association_scores

    hint = "normalise every vector to length 1; cosines are then dot products: (male @ word).mean() - (female @ word).mean()"
    with _exercise("association of one word", hint):
        gen = torch.Generator().manual_seed(9)
        for m, f in ((3, 3), (2, 5)):
            word, male, female = torch.randn(8, generator=gen), torch.randn(m, 8, generator=gen) * 3, torch.randn(f, 8, generator=gen)
            expected = association_scores(word[None], male, female)[0].item()
            got = _call(fn, word.clone(), male.clone(), female.clone())
            if got is ...:
                raise _NotAttempted
            got = float(torch.as_tensor(got))
            if not math.isclose(got, expected, rel_tol=1e-4, abs_tol=1e-6):
                raise AssertionError(f"got {got:.6f}, expected {expected:.6f} (cosine, not the raw dot product?)")


# ----------------------------------------------------------------------------------------------
# Lesson 07: fine-tuning

_PREDICTIONS["07.p1"] = (
    "Raise the decision threshold of a binary classifier from 0.5 to 0.55 on the same examples. Then",
    {"a": "precision and recall both rise", "b": "recall falls (or stays); precision usually rises",
     "c": "precision falls, recall rises"},
    "b",
    "a higher threshold calls fewer examples positive. Every example it still calls positive was called positive "
    "before, so recall (found / all positives) cannot grow; the ones it drops are the least sure, more often "
    "wrong, so precision usually rises. Only precision can move either way: on few examples it may dip.",
)
_SOLUTIONS["07.1"] = '''def binary_metrics(tp, fp, fn, tn):
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    return {"accuracy": (tp + tn) / (tp + fp + fn + tn), "precision": precision, "recall": recall,
            "f1": 2 * precision * recall / (precision + recall)}
'''
_SOLUTIONS["07.2"] = '''def padded_tokens(lengths, batch_size, max_length):
    batches = [lengths[i:i + batch_size] for i in range(0, len(lengths), batch_size)]
    return len(lengths) * max_length, sum(len(b) * max(b) for b in batches)
'''


def check_binary_metrics(fn: Callable) -> None:
    """``fn(tp, fp, fn, tn)`` -> dict of accuracy, precision, recall, f1 (checked against scikit-learn)."""
    from .finetune import classification_metrics

    hint = ("every metric is a ratio of confusion-matrix cells: which cells were called positive? which are "
            "truly positive? F1 is the harmonic mean of precision and recall, not the arithmetic one")
    with _exercise("binary metrics from a confusion matrix", hint):
        for tp, fp, fn_, tn in ((40, 10, 5, 45), (3, 1, 7, 89), (12, 12, 12, 12)):
            labels = [1] * tp + [0] * fp + [1] * fn_ + [0] * tn
            preds = [1] * tp + [1] * fp + [0] * fn_ + [0] * tn
            expected = classification_metrics(labels, preds, num_labels=2)
            got = _call(fn, tp, fp, fn_, tn)
            if got is ...:
                raise _NotAttempted
            if not isinstance(got, dict) or set(got) != set(expected):
                raise AssertionError(f"return a dict with keys {sorted(expected)}, got {got!r}")
            for key, value in expected.items():
                if not math.isclose(float(got[key]), value, rel_tol=1e-9, abs_tol=1e-12):
                    raise AssertionError(f"{key} for tp={tp}, fp={fp}, fn={fn_}, tn={tn}: got {float(got[key]):.6f}, "
                                         f"expected {value:.6f}")


def check_padded_tokens(fn: Callable) -> None:
    """``fn(lengths, batch_size, max_length)`` -> (tokens padded to max_length, tokens padded per batch)."""
    hint = ("with max_length padding every example costs the same; with dynamic padding each batch is a "
            "rectangle as wide as one of its members -- which one? The last batch may be short")
    with _exercise("tokens with max-length vs dynamic padding", hint):
        for lengths, bs, ml in (([5, 9, 3, 7], 2, 16), ([12, 4, 4, 4, 30], 3, 32), ([8], 4, 8)):
            got = _call(fn, list(lengths), bs, ml)
            if got is ...:
                raise _NotAttempted
            batches = [lengths[i:i + bs] for i in range(0, len(lengths), bs)]
            expected = (len(lengths) * ml, sum(len(b) * max(b) for b in batches))
            if tuple(got) != expected:
                raise AssertionError(f"lengths={lengths}, batch_size={bs}, max_length={ml}: got {tuple(got)}, expected {expected}")


# ==============================================================================================
# lesson 08: zero-shot and few-shot learning


def check_chance_baselines(fn: Callable) -> None:
    """Exercise: ``fn(train_labels, test_labels, num_classes) -> (random, majority)``: the expected
    test accuracy of guessing one of ``num_classes`` uniformly at random, and the test accuracy of
    always answering the most frequent *training* label."""
    hint = ("a uniform guess is right with probability 1/C whatever the true label; the majority "
            "baseline answers the most common training label, so its accuracy is that label's share of the test set")
    with _exercise("chance baselines", hint):
        cases = (([0, 1, 1, 2, 1], [1, 0, 2, 2], 3),               # majority label 1: right once in 4
                 ([3, 3, 0, 3], [0, 0, 1, 2, 3, 3], 5),            # a class absent from train (4) still counts in C
                 ([0] * 7 + [1] * 3, [0] * 6 + [1] * 4, 2))
        for train, test, num_classes in cases:
            got = _call(fn, list(train), list(test), num_classes)
            if got is ... or (isinstance(got, tuple) and any(g is ... for g in got)):
                raise _NotAttempted
            if not isinstance(got, (tuple, list)) or len(got) != 2:
                raise AssertionError(f"return a pair (random, majority), got {got!r}")
            majority_label = max(range(num_classes), key=train.count)
            expected = (1 / num_classes, test.count(majority_label) / len(test))
            for name, g, e in zip(("random", "majority"), got, expected):
                if not math.isclose(float(g), e, rel_tol=1e-9, abs_tol=1e-12):
                    raise AssertionError(f"{name} accuracy for train={train}, test={test}, C={num_classes}: "
                                         f"got {float(g):.4f}, expected {e:.4f}")


def check_prototype_predict(fn: Callable) -> None:
    """Exercise: ``fn(train_x (N, H), train_y (N,), test_x (M, H), num_classes) -> (M,)`` class ids:
    each class's prototype is the mean of its training vectors; predict the class whose prototype
    has the highest *cosine* similarity with the test vector."""
    hint = ("prototypes = torch.stack([train_x[train_y == c].mean(0) for c in range(num_classes)]); "
            "normalise test vectors and prototypes (F.normalize), then (test @ prototypes.T).argmax(-1)")
    with _exercise("prototype (nearest class mean) classifier", hint):
        gen = torch.Generator().manual_seed(8)
        for n_per_class, num_classes in ((1, 3), (4, 3), (5, 4)):
            centres = torch.randn(num_classes, 6, generator=gen)
            train_y = torch.arange(num_classes).repeat_interleave(n_per_class)
            scale = torch.linspace(0.5, 4.0, num_classes)[train_y, None]  # classes of different lengths:
            train_x = (centres[train_y] + 0.8 * torch.randn(len(train_y), 6, generator=gen)) * scale  # cosine != dot
            test_x = torch.randn(25, 6, generator=gen) * 2
            prototypes = torch.nn.functional.normalize(
                torch.stack([train_x[train_y == c].mean(0) for c in range(num_classes)]), dim=-1)
            expected = (torch.nn.functional.normalize(test_x, dim=-1) @ prototypes.T).argmax(-1)
            got = _call(fn, train_x.clone(), train_y.clone(), test_x.clone(), num_classes)
            if got is ...:
                raise _NotAttempted
            got = torch.as_tensor(got).flatten()
            if got.shape != expected.shape:
                raise AssertionError(f"expected {len(expected)} predictions, got shape {tuple(got.shape)}")
            if not torch.equal(got.long(), expected):
                wrong = int((got.long() != expected).sum())
                dot = (test_x @ torch.stack([train_x[train_y == c].mean(0) for c in range(num_classes)]).T).argmax(-1)
                why = " (that is the raw dot product: normalise the prototypes)" if torch.equal(got.long(), dot) else ""
                raise AssertionError(f"{wrong} of {len(expected)} predictions differ for {n_per_class} example(s) "
                                     f"per class{why}")
