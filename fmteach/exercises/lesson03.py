"""Lesson 03, the transformer block: grouped-query attention (03.1), the post-LN block (03.2), and the
prediction 03.p1 (a deep stack without residuals)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..attention import scaled_dot_product_attention
from ._checking import _add_prediction, _add_solution, _call, _close, _exercise, _forbidden, _fused_attention_calls

__all__ = ["check_grouped_query_attention", "check_post_ln_block"]


def check_grouped_query_attention(attention: Callable) -> None:
    """Exercise 03.1: grouped-query attention. ``attention(q (B, H, L, d_k), k (B, G, S, d_k),
    v (B, G, S, d_v), mask)`` -> (B, H, L, d_v): H query heads share G key/value heads, query heads
    h*H/G ... (h+1)*H/G - 1 all using key/value head h; without a fused attention function."""
    hint = ("draw H = 4 query heads and G = 2 key/value heads: which key/value head does each query head "
            "use? Lesson 01's attention needs the head axes of q and k to line up: what could make them "
            "line up, and does the order of heads you get match your drawing?")
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


def check_post_ln_block(fn: Callable) -> None:
    """Exercise 03.2: ``fn(block, x)`` -> the original (post-LN) Transformer's block with the same
    sub-layers: ``x = ln_1(x + attn(x))``, then ``x = ln_2(x + mlp(x))``."""
    hint = ("post-LN moves the LayerNorms: compare MyBlock (section 3, pre-LN) with the right half of the "
            "diagram. Where does each LayerNorm sit now, what does each sub-layer read, and what does "
            "block.attn return?")
    with _exercise("post-LN block", hint):
        from ..model import GPTConfig, TransformerBlock  # here: exercises need no model unless this one runs

        torch.manual_seed(0)
        block = TransformerBlock(GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_head=2, n_embd=8)).double()
        x = torch.randn(2, 6, 8, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
        with torch.no_grad():
            expected = block.ln_1(x + block.attn(x)[0])
            expected = block.ln_2(expected + block.mlp(expected))
            out = _call(fn, block, x)
        out = out[0] if isinstance(out, tuple) else out
        _close(out, expected, "the block's output", atol=1e-10)


_add_prediction(
    "03.p1",
    "A stack of 48 pre-LN blocks *without* residual connections, at initialisation. At its output, how "
    "different are the vectors of different positions?",
    {"a": "as different as the input tokens", "b": "about half as different",
     "c": "practically identical: every position holds the same vector"},
    "c",
    "an untrained head averages the tokens it sees, and the feed-forward network works on each token alone, "
    "so it cannot separate them again: block after block shrinks the differences.",
)
_add_solution("03.1", '''def my_grouped_query_attention(q, k, v, mask=None):
    group = q.shape[1] // k.shape[1]                 # query heads per key/value head
    k = k.repeat_interleave(group, dim=1)            # (B, G, S, d_k) -> (B, H, S, d_k)
    v = v.repeat_interleave(group, dim=1)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, -1) @ v
''')
_add_solution("03.2", '''def post_ln_block(block, x):
    x = block.ln_1(x + block.attn(x)[0])    # normalise after adding
    return block.ln_2(x + block.mlp(x))
''')
