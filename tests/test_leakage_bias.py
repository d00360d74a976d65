"""Lesson 09's new measurements: nested releases, memorisation, the prior-normalised bias probe, compute."""

import math

import pytest
import torch

from fmteach.bert import BertConfig, MiniBertForMaskedLM
from fmteach.bias import fill_mask_gender_bias, prior_normalized_gender_bias
from fmteach.challenges import BERT_BASE_PRETRAINING, training_flops
from fmteach.leakage import extraction_rate, line_completion_windows, nested_blocks
from fmteach.lm_data import CharTokenizer
from fmteach.mlm import train_wordpiece_tokenizer
from fmteach.model import GPTConfig, MiniGPT
from fmteach.viz import plot_occupation_scores


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
    with pytest.raises(ValueError, match="must be positive"):
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
            return logits, None

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
