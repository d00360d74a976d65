"""MiniGPT: built, then proved against torch.nn.MultiheadAttention and transformers' GPT-2."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch.testing import assert_close

from fmteach.masks import causal_mask
from fmteach.model import GPTConfig, MiniGPT, MultiHeadAttention

TINY = GPTConfig(vocab_size=50, block_size=16, n_layer=2, n_head=4, n_embd=32)


@pytest.fixture
def model() -> MiniGPT:
    torch.manual_seed(0)
    return MiniGPT(TINY).eval()


@pytest.fixture
def idx() -> torch.Tensor:
    return torch.randint(TINY.vocab_size, (3, TINY.block_size), generator=torch.Generator().manual_seed(1))


def test_config_is_frozen_and_validated():
    with pytest.raises(dataclasses.FrozenInstanceError):
        TINY.n_layer = 3
    with pytest.raises(ValueError, match="not divisible by n_head"):
        GPTConfig(vocab_size=50, n_embd=30, n_head=4)
    with pytest.raises(ValueError, match="dropout"):
        GPTConfig(vocab_size=50, dropout=1.0)
    with pytest.raises(ValueError, match="vocab_size"):
        GPTConfig(vocab_size=0)


def test_presets_follow_the_profile(monkeypatch):
    smoke, cpu, gpu = GPTConfig.smoke(65), GPTConfig.cpu(65), GPTConfig.gpu(65)
    assert smoke.n_embd < cpu.n_embd < gpu.n_embd and gpu.block_size == 256
    monkeypatch.setenv("FMTEACH_PROFILE", "smoke")
    assert GPTConfig.from_profile(65) == smoke
    assert GPTConfig.from_profile(65, "gpu", dropout=0.0) == dataclasses.replace(gpu, dropout=0.0)


@pytest.mark.parametrize("need_weights", [False, True], ids=["fast", "teaching"])
def test_attention_equals_torch_multihead_attention(need_weights):
    torch.manual_seed(0)
    mine = MultiHeadAttention(TINY).eval()
    theirs = torch.nn.MultiheadAttention(TINY.n_embd, TINY.n_head, batch_first=True).eval()
    with torch.no_grad():  # the same weights: q, k, v stacked in one (3C, C) matrix in both
        theirs.in_proj_weight.copy_(mine.c_attn.weight)
        theirs.in_proj_bias.copy_(mine.c_attn.bias)
        theirs.out_proj.weight.copy_(mine.c_proj.weight)
        theirs.out_proj.bias.copy_(mine.c_proj.bias)
    x = torch.randn(2, 10, TINY.n_embd)
    blocked = ~causal_mask(10)  # torch's attn_mask: True = may NOT attend (the opposite of ours)
    expected, expected_weights = theirs(x, x, x, attn_mask=blocked, average_attn_weights=False)
    y, weights = mine(x, need_weights=need_weights)
    assert_close(y, expected, atol=1e-6, rtol=1e-5)
    if need_weights:
        assert_close(weights, expected_weights, atol=1e-6, rtol=1e-5)
    else:
        assert weights is None


def test_logits_match_huggingface_gpt2():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=50, n_positions=16, n_embd=32, n_layer=2, n_head=4, bos_token_id=0, eos_token_id=0
    )
    gpt2 = transformers.GPT2LMHeadModel(config).eval()
    ours = MiniGPT.from_gpt2(gpt2).eval()
    idx = torch.randint(50, (3, 16), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = gpt2(idx).logits
        assert_close(ours(idx).logits, expected, atol=1e-5, rtol=0)
        assert_close(ours(idx, output_attentions=True).logits, expected, atol=1e-5, rtol=0)
    assert ours.config.n_layer == 2 and ours.lm_head.weight is ours.transformer.wte.weight


def test_from_gpt2_rejects_a_different_activation():
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(vocab_size=50, n_positions=16, n_embd=32, n_layer=1, n_head=4,
                                     activation_function="relu", bos_token_id=0, eos_token_id=0)
    with pytest.raises(ValueError, match="activation_function"):
        MiniGPT.from_gpt2(transformers.GPT2LMHeadModel(config))


@pytest.mark.parametrize("output_attentions", [False, True], ids=["fast", "teaching"])
def test_causal_mask_leaks_nothing(model, idx, output_attentions):
    with torch.no_grad():
        before = model(idx, output_attentions=output_attentions).logits
        for t in (0, 5, TINY.block_size - 2):
            changed = idx.clone()
            changed[:, t + 1] = (changed[:, t + 1] + 1) % TINY.vocab_size
            after = model(changed, output_attentions=output_attentions).logits
            assert_close(after[:, : t + 1], before[:, : t + 1], atol=0, rtol=0)  # the past is untouched
            assert not torch.allclose(after[:, t + 1], before[:, t + 1])  # the changed token itself matters


def test_fast_path_equals_teaching_path(model, idx):
    targets = torch.roll(idx, -1, dims=1)
    with torch.no_grad():
        fast = model(idx, targets)
        slow = model(idx, targets, output_attentions=True)
    fast_logits, fast_loss = fast.logits, fast.loss
    slow_logits, slow_loss, maps = slow.logits, slow.loss, torch.stack(slow.attentions)
    assert fast.attentions is None and len(slow.attentions) == TINY.n_layer
    assert_close(fast_logits, slow_logits, atol=1e-6, rtol=1e-5)
    assert_close(fast_loss, slow_loss)
    assert maps.shape == (TINY.n_layer, 3, TINY.n_head, 16, 16)
    assert_close(maps.sum(-1), torch.ones(TINY.n_layer, 3, TINY.n_head, 16))  # each row is a distribution
    assert (maps.triu(diagonal=1) == 0).all()  # no weight on the future
    assert_close(model.attention_maps(idx), maps)


def test_loss_is_cross_entropy_and_ignores_minus_100(model, idx):
    targets = torch.roll(idx, -1, dims=1)
    targets[:, -1] = -100  # the last position has no next token
    out = model(idx, targets)
    logits, loss = out.logits, out.loss
    expected = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 50), targets[:, :-1].reshape(-1))
    assert_close(loss, expected)
    loss.backward()
    assert model.transformer.wte.weight.grad is not None


def test_untrained_loss_is_about_log_vocab(model, idx):
    loss = model(idx, torch.roll(idx, -1, dims=1)).loss
    assert abs(loss.item() - torch.log(torch.tensor(50.0)).item()) < 0.1  # small init: near-uniform predictions


def test_generate_is_seeded_and_respects_top_k(model):
    start = torch.zeros(2, 1, dtype=torch.long)

    def sample(**kwargs):
        return model.generate(start, 20, generator=torch.Generator().manual_seed(7), **kwargs)

    assert torch.equal(sample(), sample())
    assert sample().shape == (2, 21) and torch.equal(sample()[:, :1], start)
    assert torch.equal(sample(top_k=1), model.generate(start, 20, temperature=0.0))  # top-1 is greedy
    out = sample(top_k=3, temperature=2.0)  # a high temperature would pick outside the top 3 if allowed
    with torch.no_grad():
        for t in range(1, out.shape[1]):
            allowed = model(out[:, max(0, t - TINY.block_size) : t]).logits[:, -1].topk(3).indices  # (B, 3)
            assert (allowed == out[:, t : t + 1]).any(dim=1).all(), f"token {t} is outside the top 3"


def test_generate_crops_to_block_size(model):
    out = model.generate(torch.zeros(1, 1, dtype=torch.long), 2 * TINY.block_size, temperature=0.0)
    assert out.shape == (1, 1 + 2 * TINY.block_size)


@pytest.mark.parametrize(
    "bad, message",
    [
        (torch.zeros(2, 4), "dtype"),
        (torch.zeros(2, 17, dtype=torch.long), "block_size=16"),
        (torch.zeros(4, dtype=torch.long), "expected \\(batch, seq_len\\)"),
        (torch.full((1, 4), 50), "outside the vocabulary"),
    ],
)
def test_bad_input_gives_clear_errors(model, bad, message):
    with pytest.raises(ValueError, match=message):
        model(bad)


def test_targets_must_match_idx(model, idx):
    with pytest.raises(ValueError, match="targets has shape"):
        model(idx, idx[:, :-1])


def test_generate_rejects_bad_arguments(model):
    start = torch.zeros(1, 1, dtype=torch.long)
    with pytest.raises(ValueError, match="temperature"):
        model.generate(start, 1, temperature=-1.0)
    with pytest.raises(ValueError, match="top_k"):
        model.generate(start, 1, top_k=0)


def test_num_parameters_breakdown(model):
    parts = model.num_parameters()
    C, L, V, T = TINY.n_embd, TINY.n_layer, TINY.vocab_size, TINY.block_size
    assert parts["token embedding"] == V * C  # counted once although the output layer shares it
    assert parts["position embedding"] == T * C
    assert parts["attention"] == L * (3 * C * C + 3 * C + C * C + C)
    assert parts["feed-forward"] == L * (4 * C * C + 4 * C + 4 * C * C + C)
    assert parts["layer norms"] == (2 * L + 1) * 2 * C
    assert parts["total"] == sum(p.numel() for p in model.parameters()) == sum(
        v for k, v in parts.items() if k != "total"
    )
