"""Padding and causal masks, their combination, and BERT's MLM masking recipe."""

import pytest
import torch
from transformers import AutoTokenizer, DataCollatorForLanguageModeling

from fmteach.assets import load_shakespeare, pretrained_bert
from fmteach.attention import scaled_dot_product_attention
from fmteach.masks import (
    IGNORE_INDEX,
    bool_mask_to_additive,
    causal_mask,
    combine_masks,
    mask_tokens_for_mlm,
    padding_mask,
)


def test_causal_mask_is_lower_triangular():
    m = causal_mask(4)
    assert m.dtype == torch.bool and m.shape == (4, 4)
    assert m.tolist() == [[True, False, False, False], [True, True, False, False],
                          [True, True, True, False], [True, True, True, True]]
    with pytest.raises(ValueError, match="positive int"):
        causal_mask(0)


def test_causal_attention_ignores_future_tokens():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, 6, 8, generator=gen)
    out, _ = scaled_dot_product_attention(x, x, x, causal_mask(6))
    x2 = x.clone()
    x2[0, 4:] = torch.randn(2, 8, generator=gen)  # change the future of position 3
    out2, _ = scaled_dot_product_attention(x2, x2, x2, causal_mask(6))
    torch.testing.assert_close(out[0, :4], out2[0, :4], rtol=0, atol=0)
    assert not torch.allclose(out[0, 4:], out2[0, 4:])


def test_padding_mask_shape_and_values():
    am = torch.tensor([[1, 1, 0], [1, 0, 0]])
    m = padding_mask(am)
    assert m.shape == (2, 1, 1, 3) and m.dtype == torch.bool
    assert m[:, 0, 0].tolist() == [[True, True, False], [True, False, False]]


def test_padding_does_not_change_real_token_outputs():
    gen = torch.Generator().manual_seed(1)
    real = torch.randn(1, 2, 3, 8, generator=gen)  # (B, H, T, E) with 3 real tokens
    padded = torch.cat([real, torch.randn(1, 2, 2, 8, generator=gen)], dim=2)  # 2 junk pad tokens
    am = torch.tensor([[1, 1, 1, 0, 0]])
    out_real, _ = scaled_dot_product_attention(real, real, real)
    out_padded, weights = scaled_dot_product_attention(padded, padded, padded, padding_mask(am))
    torch.testing.assert_close(out_padded[:, :, :3], out_real)
    assert (weights[..., 3:] == 0).all()


def test_padding_mask_errors():
    with pytest.raises(ValueError, match=r"attention_mask has shape \(3,\)"):
        padding_mask(torch.tensor([1, 1, 0]))
    with pytest.raises(ValueError, match="only 0"):
        padding_mask(torch.tensor([[1, 2, 0]]))
    with pytest.raises(TypeError, match="float32"):
        padding_mask(torch.tensor([[1.0, 0.0]]))


def test_combine_masks_bool_and_float():
    am = torch.tensor([[1, 1, 1, 0]])
    both = combine_masks(causal_mask(4), padding_mask(am))
    assert both.shape == (1, 1, 4, 4)
    assert both[0, 0].tolist()[3] == [True, True, True, False]
    additive = combine_masks(causal_mask(4), bool_mask_to_additive(padding_mask(am)))
    assert additive.dtype == torch.float32
    assert torch.equal(torch.isfinite(additive), both)
    assert combine_masks(None, None) is None
    assert torch.equal(combine_masks(None, causal_mask(2)), causal_mask(2))  # None means no mask: the other one
    with pytest.raises(ValueError, match="do not broadcast"):
        combine_masks(causal_mask(3), causal_mask(4))
    with pytest.raises(TypeError, match="dtype torch.int64"):
        combine_masks(torch.ones(2, 2, dtype=torch.long))


def test_mlm_masking_rules_and_input_untouched():
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 100, (8, 64), generator=gen)
    ids[:, 0], ids[:, -1], ids[0, -10:] = 2, 3, 0  # [CLS], [SEP], padding
    special = (ids == 2) | (ids == 3)
    before = ids.clone()
    masked, labels = mask_tokens_for_mlm(ids, mask_token_id=4, vocab_size=100, special_tokens_mask=special,
                                         pad_token_id=0, generator=gen)
    assert torch.equal(ids, before)
    selected = labels != IGNORE_INDEX
    assert not selected[special | (ids == 0)].any()
    assert torch.equal(labels[selected], ids[selected])
    assert torch.equal(masked[~selected], ids[~selected])


def test_mlm_statistics_over_shakespeare():
    """≥ 100k real WordPiece tokens: 15% ± 0.5 selected, 80/10/10 ± 1.5 points."""
    tok = AutoTokenizer.from_pretrained(pretrained_bert())
    plays = load_shakespeare().plays
    lines = [line for name in ("hamlet", "othello", "macbeth") for line in plays[name].splitlines() if line]
    body = torch.tensor([t for enc in tok(lines, add_special_tokens=False)["input_ids"] for t in enc])
    rows = body[: len(body) // 126 * 126].view(-1, 126)  # packed rows: [CLS] + 126 tokens + [SEP]
    cls = torch.full((len(rows), 1), tok.cls_token_id)
    sep = torch.full((len(rows), 1), tok.sep_token_id)
    ids = torch.cat([cls, rows, sep], dim=1)
    special = (ids == tok.cls_token_id) | (ids == tok.sep_token_id)
    n = int((~special).sum())
    assert n >= 100_000, n
    masked, labels = mask_tokens_for_mlm(ids, mask_token_id=tok.mask_token_id, vocab_size=len(tok),
                                         special_tokens_mask=special, generator=torch.Generator().manual_seed(0))
    selected = labels != IGNORE_INDEX
    rate = selected.sum().item() / n
    assert abs(rate - 0.15) < 0.005, rate
    n_sel = selected.sum().item()
    mask_share = (masked[selected] == tok.mask_token_id).sum().item() / n_sel
    same_share = (masked[selected] == ids[selected]).sum().item() / n_sel
    random_share = 1 - mask_share - same_share
    assert abs(mask_share - 0.8) < 0.015 and abs(same_share - 0.1) < 0.015 and abs(random_share - 0.1) < 0.015

    # transformers' own collator on the same batch
    collator = DataCollatorForLanguageModeling(tok, mlm_probability=0.15, return_tensors="pt", seed=0)
    batch = collator([{"input_ids": row, "special_tokens_mask": s.long()} for row, s in zip(ids, special)])
    # seeded alike, the two draw their random numbers in the same order: identical token for token
    assert torch.equal(batch["input_ids"], masked) and torch.equal(batch["labels"], labels)


def test_mlm_argument_errors():
    ids = torch.randint(0, 10, (2, 5))
    with pytest.raises(ValueError, match=r"mlm_probability=1.5 must be in \[0, 1\]"):
        mask_tokens_for_mlm(ids, mask_token_id=1, vocab_size=10, mlm_probability=1.5)
    with pytest.raises(TypeError, match="expected torch.long"):
        mask_tokens_for_mlm(ids.float(), mask_token_id=1, vocab_size=10)
    with pytest.raises(ValueError, match="special_tokens_mask has shape"):
        mask_tokens_for_mlm(ids, mask_token_id=1, vocab_size=10, special_tokens_mask=torch.zeros(2, 4))
    with pytest.raises(ValueError, match="outside the vocabulary"):
        mask_tokens_for_mlm(ids, mask_token_id=10, vocab_size=10)
    masked, labels = mask_tokens_for_mlm(ids, mask_token_id=1, vocab_size=10, mlm_probability=0.0)
    assert (labels == IGNORE_INDEX).all() and torch.equal(masked, ids)
