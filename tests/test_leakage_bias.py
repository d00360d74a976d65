"""Lesson 09's new measurements: nested releases, memorisation, the prior-normalised bias probe, WEAT's
permutation test, compute."""

import dataclasses
import math

import pytest
import torch

from fmteach.bert import MiniBertForMaskedLM
from fmteach.bert_config import BertConfig
from fmteach.bias import fill_mask_gender_bias, prior_normalized_gender_bias, weat_effect_size, weat_permutation_test
from fmteach.challenges import BERT_BASE_PRETRAINING, training_flops
from fmteach.leakage import extraction_rate, line_completion_windows, nested_blocks
from fmteach.lm_data import CharTokenizer
from fmteach.model import GPTConfig, MiniGPT
from fmteach.outputs import ModelOutput
from fmteach.viz import plot_occupation_scores
from fmteach.wordpiece import train_wordpiece_tokenizer


def test_nested_blocks():
    releases = ["a", "b", "a", "b", "c", "a", "b", "c", "d"]
    assert nested_blocks(releases, [2, 3, 4]) == [True, True]
    assert nested_blocks(["a", "b", "x", "b", "c"], [2, 3]) == [False]
    with pytest.raises(ValueError, match="sizes add up to 8 but there are 9 lines"):
        nested_blocks(releases, [2, 2, 4])
    with pytest.raises(ValueError, match="at least two positive block sizes"):
        nested_blocks(releases, [9])
    with pytest.raises(TypeError, match="lines must be a list of strings"):
        nested_blocks("abc", [1, 2])


def test_line_completion_windows():
    text = "first line here\nsecond line is long\nthird one too, long enough\nx\nlast line of all\n"
    windows = line_completion_windows(text, 2, prefix_chars=5, suffix_chars=8, seed=0)
    assert len(windows) == 2 and all(len(p) == 5 and len(t) == 8 for p, t in windows)
    for prefix, target in windows:
        start = text.index(prefix + target)
        assert text[start + 5 - 1] == "\n"                     # the target starts a line
    assert windows == line_completion_windows(text, 2, prefix_chars=5, suffix_chars=8, seed=0)
    with pytest.raises(ValueError, match="usable lines, asked for n=10"):
        line_completion_windows(text, 10, prefix_chars=5, suffix_chars=8)
    with pytest.raises(ValueError, match="prefix_chars must be a positive int, got 0"):
        line_completion_windows(text, 1, prefix_chars=0)


def test_extraction_rate_counts_exact_greedy_completions():
    text = "abcabcabcabc\n"
    tokenizer = CharTokenizer(text)

    class Copier(torch.nn.Module):
        """Predicts the character three positions back: it has 'memorised' the period-3 pattern."""

        config = GPTConfig(vocab_size=tokenizer.vocab_size, block_size=32, n_layer=1, n_head=1, n_embd=8)

        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(1))

        def forward(self, idx):
            logits = torch.full((*idx.shape, tokenizer.vocab_size), -10.0)
            logits.scatter_(-1, idx.roll(2, dims=1)[..., None], 10.0)   # position t -> token t-2 = next one's t-3
            return ModelOutput(logits)

        def _check_idx(self, idx, name="idx"):
            pass

    model = Copier()
    result = extraction_rate(model, tokenizer, [("abcabc", "abc"), ("cabcab", "cab")])
    assert result.rate == 1.0 and result.mean_chars == 3.0 and result.completions == ["abc", "cab"]
    wrong = extraction_rate(model, tokenizer, [("abcabc", "acc"), ("abcabc", "cbc")])
    assert wrong.rate == 0.0 and wrong.mean_chars == 0.5            # 1 right char, then 0
    free = MiniGPT.generate(model, torch.tensor([tokenizer.encode("abcabc")]), 3, temperature=0)
    assert tokenizer.decode(free[0, 6:].tolist()) == result.completions[0]   # = free greedy decoding
    with pytest.raises(ValueError, match="same length"):
        extraction_rate(model, tokenizer, [("abc", "a"), ("ab", "a")])
    with pytest.raises(ValueError, match="do not fit in block_size 32"):
        extraction_rate(model, tokenizer, [("abc" * 11, "abc")])
    with pytest.raises(ValueError, match="no windows"):
        extraction_rate(model, tokenizer, [])


@pytest.fixture(scope="module")
def tiny_mlm():
    tokenizer = train_wordpiece_tokenizer(8000)
    torch.manual_seed(0)
    config = BertConfig(len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=32)
    return MiniBertForMaskedLM(config).eval(), tokenizer


def test_prior_normalized_bias(tiny_mlm):
    model, tokenizer = tiny_mlm
    occupations = ["nurse", "soldier", "engineer"]
    scores = prior_normalized_gender_bias(model, tokenizer, occupations)
    assert list(scores) == occupations and all(math.isfinite(v) for v in scores.values())
    swapped = prior_normalized_gender_bias(model, tokenizer, occupations, targets=("she", "he"))
    assert all(math.isclose(scores[o], -swapped[o], abs_tol=1e-5) for o in occupations)
    raw = fill_mask_gender_bias(model, tokenizer, occupations)
    assert any(abs(raw[o] - scores[o]) > 1e-4 for o in occupations)  # the prior is subtracted

    # A model blind to everything but position gives the same ratio with or without the occupation: 0.
    class Blind(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask=None):
            return self.inner(torch.full_like(input_ids, tokenizer.mask_token_id), attention_mask)

    blind = prior_normalized_gender_bias(Blind(model), tokenizer, occupations)
    assert all(abs(v) < 1e-5 for v in blind.values())
    with pytest.raises(ValueError, match=r"needs one \[MASK\] before one \{occupation\}"):
        prior_normalized_gender_bias(model, tokenizer, occupations, templates=["A {occupation} said [MASK]."])
    with pytest.raises(ValueError, match="'xylophonist' is not one token"):
        prior_normalized_gender_bias(model, tokenizer, occupations, targets=("he", "xylophonist"))


def test_training_flops_and_plot_options():
    assert training_flops(10, 100) == 6000
    assert BERT_BASE_PRETRAINING["tokens"] == 256 * (900_000 * 128 + 100_000 * 512)
    with pytest.raises(ValueError, match="must be positive"):
        training_flops(0, 5)
    import matplotlib

    matplotlib.use("Agg")
    ax = plot_occupation_scores({"a": -1.0, "b": 2.0}, zero_is_neutral=False, xlim=(-3, 3))
    colors = {tuple(bar.get_facecolor()) for bar in ax.patches}
    assert len(colors) == 1 and ax.get_xlim() == (-3, 3)
    matplotlib.pyplot.close("all")


def _weat_tiny():
    """s(w, A, B) = mean cos to A - mean cos to B is 1, 0 for X and -1, 0 for Y (lengths vary: cosines, not dots)."""
    x = torch.tensor([[3.0, 0.0], [2.0, 2.0]])
    y = torch.tensor([[0.0, 0.5], [1.0, 1.0]])
    a, b = torch.tensor([[1.0, 0.0], [2.0, 0.0]]), torch.tensor([[0.0, 5.0]])
    return x, y, a, b


def test_weat_statistic_effect_size_and_exact_p_by_hand():
    x, y, a, b = _weat_tiny()
    result = weat_permutation_test(x, y, a, b)
    assert math.isclose(result.statistic, (1 + 0) - (-1 + 0), abs_tol=1e-12)
    # mean_x - mean_y = 0.5 - (-0.5) = 1; sample std of (1, 0, -1, 0) = sqrt(2/3)
    assert math.isclose(result.effect_size, 1 / math.sqrt(2 / 3), rel_tol=1e-12)
    assert math.isclose(weat_effect_size(x, y, a, b), result.effect_size, rel_tol=1e-15)
    # the 6 splits of scores (1, 0, -1, 0) give 2, 0, 2, -2, 0, -2: two reach the observed 2 (the zeros swap)
    assert result.exact and result.n_permutations == 6 and math.isclose(result.p_value, 2 / 6)
    swapped = weat_permutation_test(y, x, a, b)        # one-sided: Y nearer A is the opposite claim
    assert swapped.statistic == pytest.approx(-2) and swapped.effect_size < 0 and swapped.p_value == 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.p_value = 0.0


def _planted(n, dim=16, seed=0):
    """X near the A direction and Y near the B direction, with noise: a planted association."""
    gen = torch.Generator().manual_seed(seed)
    a_dir, b_dir = torch.eye(dim)[0], torch.eye(dim)[1]
    x, y = a_dir + 0.1 * torch.randn(n, dim, generator=gen), b_dir + 0.1 * torch.randn(n, dim, generator=gen)
    return x, y, a_dir + 0.1 * torch.randn(5, dim, generator=gen), b_dir + 0.1 * torch.randn(6, dim, generator=gen)


def test_weat_exact_p_value_planted_and_null():
    x, y, a, b = _planted(4)
    planted = weat_permutation_test(x, y, a, b)
    assert planted.exact and planted.n_permutations == math.comb(8, 4) == 70
    assert planted.p_value == 1 / 70                   # the minimum: only the observed split is as extreme
    assert planted.effect_size > 1.5
    # no association: X and Y are the same vectors, so s(X, Y) = 0 sits in the middle of its re-splits
    same = weat_permutation_test(x, x.clone(), a, b)
    assert abs(same.statistic) < 1e-12 and abs(same.effect_size) < 1e-12 and same.p_value > 0.3


def test_weat_sampled_p_value_matches_exact():
    gen = torch.Generator().manual_seed(3)
    a, b = torch.randn(4, 6, generator=gen), torch.randn(4, 6, generator=gen)
    x = torch.randn(5, 6, generator=gen) + 0.1 * a.mean(0)
    y = torch.randn(5, 6, generator=gen) + 0.1 * b.mean(0)
    exact = weat_permutation_test(x, y, a, b)
    sampled = weat_permutation_test(x, y, a, b, n_permutations=20_000, max_exact=0)
    assert exact.exact and exact.n_permutations == 252 and not sampled.exact and sampled.n_permutations == 20_000
    assert 0.02 < exact.p_value < 0.98                 # a case where the sampling has something to estimate
    assert abs(sampled.p_value - exact.p_value) < 0.015   # about 5 standard errors of the sampled estimate
    assert sampled.statistic == exact.statistic and sampled.effect_size == exact.effect_size
    assert weat_permutation_test(x, y, a, b, max_exact=252).exact and not weat_permutation_test(x, y, a, b, max_exact=251).exact


def test_weat_sampling_is_seeded_and_leaves_the_callers_rng_alone():
    x, y, a, b = _planted(10)                          # C(20, 10) = 184,756 splits: sampled by default
    state = torch.get_rng_state()
    first = weat_permutation_test(x, y, a, b, n_permutations=2_000, seed=7)
    assert torch.equal(torch.get_rng_state(), state)
    assert not first.exact and first.n_permutations == 2_000
    assert first.p_value <= 3 / 2_001                   # the +1 correction: never 0, at least 1 / (n + 1)
    assert first == weat_permutation_test(x, y, a, b, n_permutations=2_000, seed=7)
    gen = torch.Generator().manual_seed(5)
    a, b = torch.randn(4, 6, generator=gen), torch.randn(4, 6, generator=gen)
    x, y = torch.randn(5, 6, generator=gen), torch.randn(5, 6, generator=gen)   # no planted association
    p = {seed: weat_permutation_test(x, y, a, b, n_permutations=500, max_exact=0, seed=seed).p_value for seed in (0, 0, 1)}
    assert len(p) == 2 and p[0] != p[1]                # same seed, same p; another seed, another sample
    assert all(math.isclose(v * 501, round(v * 501)) and v >= 1 / 501 for v in p.values())   # (1 + hits) / 501


def test_weat_bad_input_names_the_argument():
    x, y, a, b = _weat_tiny()
    with pytest.raises(ValueError, match=r"target_x has 2 vectors and target_y 1: .* same number"):
        weat_permutation_test(x, y[:1], a, b)
    with pytest.raises(ValueError, match=r"attribute_b must be a non-empty \(N, H\) tensor of vectors, got shape \(0, 2\)"):
        weat_permutation_test(x, y, a, torch.zeros(0, 2))
    with pytest.raises(ValueError, match=r"target_y must be a non-empty .* got shape \(2,\)"):
        weat_effect_size(x, y[0], a, b)
    with pytest.raises(ValueError, match=r"same size H, got target_x \(2, 2\), target_y \(2, 2\), attribute_a \(2, 3\)"):
        weat_permutation_test(x, y, torch.ones(2, 3), b)
    with pytest.raises(ValueError, match="n_permutations must be a positive int, got 0"):
        weat_permutation_test(x, y, a, b, n_permutations=0)
    with pytest.raises(ValueError, match="max_exact must be an int >= 0, got -1"):
        weat_permutation_test(x, y, a, b, max_exact=-1)
    with pytest.raises(TypeError, match="seed must be an int, got float"):
        weat_permutation_test(x, y, a, b, seed=0.5)
