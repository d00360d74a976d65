"""fmteach.attention against torch's scaled_dot_product_attention, plus invariants and errors."""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from fmteach.attention import scaled_dot_product_attention, stable_softmax


@st.composite
def attention_inputs(draw):
    """Random (q, k, v, mask) with random leading dims, lengths, head dims, dtype and mask kind."""
    seed = draw(st.integers(0, 2**31 - 1))
    gen = torch.Generator().manual_seed(seed)
    batch = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=2)))
    L, S = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    E, Ev = draw(st.integers(1, 16)), draw(st.integers(1, 16))
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    q = torch.randn(*batch, L, E, generator=gen, dtype=dtype)
    k = torch.randn(*batch, S, E, generator=gen, dtype=dtype)
    v = torch.randn(*batch, S, Ev, generator=gen, dtype=dtype)
    kind = draw(st.sampled_from(["none", "bool", "float"]))
    # the mask may omit or shrink leading dims to 1: it must broadcast to (..., L, S)
    mask_batch = tuple(draw(st.sampled_from([b, 1])) for b in batch)[draw(st.integers(0, len(batch))):]
    mask = None
    if kind == "bool":
        mask = torch.rand(*mask_batch, L, S, generator=gen) < 0.7
        mask[..., 0] = True  # torch's fused kernels differ on fully masked rows; tested separately
    elif kind == "float":
        mask = torch.randn(*mask_batch, L, S, generator=gen, dtype=dtype)
    return q, k, v, mask


@settings(max_examples=150, deadline=None)
@given(attention_inputs())
def test_matches_torch_sdpa(inputs):
    q, k, v, mask = inputs
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    tol = 1e-10 if q.dtype == torch.float64 else 1e-5
    torch.testing.assert_close(out, expected, atol=tol, rtol=tol)
    # invariants: rows are probability distributions, masked keys get exactly 0, no NaN
    assert not torch.isnan(weights).any()
    torch.testing.assert_close(weights.sum(-1), torch.ones_like(weights.sum(-1)), atol=tol, rtol=tol)
    if mask is not None and mask.dtype == torch.bool:
        assert (weights.masked_select(~mask.expand_as(weights)) == 0).all()
    torch.testing.assert_close(out, weights @ v, atol=tol, rtol=tol)


@settings(max_examples=40, deadline=None)
@given(attention_inputs(), st.floats(0.05, 4.0))
def test_custom_scale_matches_torch(inputs, scale):
    q, k, v, mask = inputs
    out, _ = scaled_dot_product_attention(q, k, v, mask, scale=scale)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
    tol = 1e-10 if q.dtype == torch.float64 else 1e-5
    torch.testing.assert_close(out, expected, atol=tol, rtol=tol)


def test_float64_to_1e_10_with_causal_mask():
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 4, 32, 64, generator=gen, dtype=torch.float64) for _ in range(3))
    mask = torch.ones(32, 32, dtype=torch.bool).tril()
    out, _ = scaled_dot_product_attention(q, k, v, mask)
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert (out - expected).abs().max().item() < 1e-10


def test_fully_masked_row_gives_zeros_not_nan():
    q, k, v = torch.randn(1, 3, 4), torch.randn(1, 5, 4), torch.randn(1, 5, 2)
    mask = torch.ones(3, 5, dtype=torch.bool)
    mask[1] = False  # query 1 may look at nothing
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    assert not torch.isnan(out).any() and not torch.isnan(weights).any()
    assert (weights[0, 1] == 0).all() and (out[0, 1] == 0).all()
    float_mask = torch.zeros(3, 5).masked_fill(~mask, float("-inf"))
    out_f, weights_f = scaled_dot_product_attention(q, k, v, float_mask)
    torch.testing.assert_close(out_f, out)
    torch.testing.assert_close(weights_f, weights)


def test_huge_scores_do_not_overflow():
    q = torch.full((1, 2, 4), 100.0)
    k = torch.full((1, 3, 4), 100.0)
    v = torch.randn(1, 3, 2)
    out, weights = scaled_dot_product_attention(q, k, v)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(weights, torch.full((1, 2, 3), 1 / 3))


def test_stable_softmax_matches_torch():
    x = torch.randn(5, 7) * 50
    torch.testing.assert_close(stable_softmax(x), torch.softmax(x, -1))


def test_dropout_is_seeded_and_weights_are_the_ones_used():
    q, k, v = torch.randn(2, 6, 8), torch.randn(2, 6, 8), torch.randn(2, 6, 8)
    out1, w1 = scaled_dot_product_attention(q, k, v, dropout_p=0.5, generator=torch.Generator().manual_seed(3))
    out2, w2 = scaled_dot_product_attention(q, k, v, dropout_p=0.5, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(out1, out2)
    torch.testing.assert_close(out1, w1 @ v)
    assert (w1 == 0).any()
    no_drop, w0 = scaled_dot_product_attention(q, k, v)
    kept = w1 != 0
    torch.testing.assert_close(w1[kept], w0[kept] * 2)


def test_default_scale_is_inverse_sqrt_dk():
    q, k, v = torch.randn(3, 16), torch.randn(4, 16), torch.randn(4, 5)
    a, _ = scaled_dot_product_attention(q, k, v)
    b, _ = scaled_dot_product_attention(q, k, v, scale=1 / math.sqrt(16))
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize(
    "q_shape, k_shape, v_shape, message",
    [
        ((4,), (4, 4), (4, 4), r"q has shape \(4,\): expected at least 2 dims"),
        ((2, 3, 8), (2, 5, 7), (2, 5, 4), r"q has shape \(2, 3, 8\), k has \(2, 5, 7\): last dims"),
        ((2, 3, 8), (2, 5, 8), (2, 6, 4), r"k has shape \(2, 5, 8\), v has \(2, 6, 4\)"),
        ((2, 3, 8), (3, 5, 8), (3, 5, 4), r"leading dims .* do not broadcast"),
    ],
)
def test_shape_errors_name_the_shapes(q_shape, k_shape, v_shape, message):
    with pytest.raises(ValueError, match=message):
        scaled_dot_product_attention(torch.randn(q_shape), torch.randn(k_shape), torch.randn(v_shape))


def test_dtype_errors():
    q = torch.randn(2, 3, 4)
    with pytest.raises(TypeError, match="q has dtype torch.int64"):
        scaled_dot_product_attention(q.long(), q, q)
    with pytest.raises(TypeError, match="dtypes differ"):
        scaled_dot_product_attention(q, q.double(), q)
    with pytest.raises(TypeError, match="must be a torch.Tensor"):
        scaled_dot_product_attention(q.tolist(), q, q)


def test_mask_errors():
    q = torch.randn(2, 3, 4)
    with pytest.raises(TypeError, match=r"mask has dtype torch.int64.*mask.bool\(\)"):
        scaled_dot_product_attention(q, q, q, torch.ones(3, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"mask has shape \(4, 3\) which does not broadcast"):
        scaled_dot_product_attention(q, q, q, torch.ones(4, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"mask has shape \(5, 2, 3, 3\)"):  # would grow the batch
        scaled_dot_product_attention(q, q, q, torch.ones(5, 2, 3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="dropout_p"):
        scaled_dot_product_attention(q, q, q, dropout_p=1.0)


def test_devices_must_match():
    q = torch.randn(2, 3, 4)
    meta = torch.randn(2, 3, 4, device="meta")
    with pytest.raises(ValueError, match="different devices"):
        scaled_dot_product_attention(q, meta, q)
