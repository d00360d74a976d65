"""Character-level LM data: tokenizer, split by play, batches, unigram baseline."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from fmteach.lm_data import (
    DEFAULT_VAL_PLAYS,
    CharData,
    CharTokenizer,
    get_batch,
    split_by_play,
    unigram_baseline_loss,
)

TOY = SimpleNamespace(plays={"alpha": "To be, or not.\n", "beta": "Out, spot!\n", "gamma": "Hark.\n"})


def test_tokenizer_round_trip_and_sorted_vocabulary():
    tok = CharTokenizer("hello world")
    assert tok.chars == " dehlorw" and tok.vocab_size == 8
    ids = tok.encode("hello")
    assert ids == [3, 2, 4, 4, 5]
    assert tok.decode(ids) == "hello" == tok.decode(torch.tensor(ids))


def test_tokenizer_names_an_unknown_character():
    tok = CharTokenizer("abc")
    with pytest.raises(ValueError, match=r"character 'z' \(position 2\) is not in the vocabulary of 3"):
        tok.encode("abz")
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.decode([3])
    with pytest.raises(ValueError, match="non-empty"):
        CharTokenizer("")


def test_split_by_play_holds_out_whole_plays():
    train, val = split_by_play(TOY, ["beta"])
    assert val == TOY.plays["beta"]
    assert train == TOY.plays["alpha"] + "\n\n" + TOY.plays["gamma"]
    assert split_by_play(TOY, "beta") == (train, val)  # one name works too
    with pytest.raises(ValueError, match="unknown plays \\['delta'\\]"):
        split_by_play(TOY, ["delta"])
    with pytest.raises(ValueError, match="at least one"):
        split_by_play(TOY, ["alpha", "beta", "gamma"])


def test_default_validation_plays_span_genres():
    from fmteach.assets import load_shakespeare

    corpus = load_shakespeare()
    assert set(DEFAULT_VAL_PLAYS) <= set(corpus.plays)
    assert len({corpus.genres[p] for p in DEFAULT_VAL_PLAYS}) == len(DEFAULT_VAL_PLAYS) == 4
    train, val = split_by_play(corpus)
    assert 0.05 < len(val) / (len(train) + len(val)) < 0.15
    assert corpus.plays["macbeth"] in val and corpus.plays["macbeth"] not in train


def test_get_batch_returns_shifted_windows():
    data = torch.arange(100)
    x, y = get_batch(data, 4, 8, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 8) and x.dtype == torch.long
    assert torch.equal(y, x + 1)  # the target is the next token
    assert torch.equal(x, x[:, :1] + torch.arange(8))  # each row is one contiguous window
    again, _ = get_batch(data, 4, 8, torch.Generator().manual_seed(0))
    assert torch.equal(x, again)
    assert int(y.max()) <= 99  # never reads past the end


def test_get_batch_rejects_bad_data():
    with pytest.raises(ValueError, match="need more than block_size=8"):
        get_batch(torch.arange(8), 2, 8)
    with pytest.raises(ValueError, match="1-D"):
        get_batch(torch.zeros(4, 20, dtype=torch.long), 2, 8)


def test_unigram_baseline_loss():
    # Add-one counts from [0, 0, 1]: p(0) = 3/5, p(1) = 2/5.
    loss = unigram_baseline_loss(torch.tensor([0, 0, 1]), torch.tensor([0, 1]), vocab_size=2)
    assert loss == pytest.approx(-(math.log(0.6) + math.log(0.4)) / 2)
    uniform = torch.arange(10).repeat(100)
    assert unigram_baseline_loss(uniform, uniform, 10) == pytest.approx(math.log(10))
    unseen = unigram_baseline_loss(torch.zeros(10, dtype=torch.long), torch.tensor([2]), 3)
    assert math.isfinite(unseen)  # smoothing: unseen characters cost a finite amount


def test_char_data_batch_fn():
    tok = CharTokenizer("abcd")
    data = CharData(tok, torch.tensor(tok.encode("abcd" * 10)), torch.tensor(tok.encode("dcba" * 10)), ("x",))
    get = data.batch_fn(block_size=5)
    x, y = get("val", 3, torch.Generator().manual_seed(0))
    assert x.shape == (3, 5) and tok.decode(x[0]) in "dcba" * 10
    with pytest.raises(ValueError, match="split='test'"):
        get("test", 3)
    assert data.unigram_baseline() == pytest.approx(math.log(4), abs=0.01)
