"""MLM pretraining pieces: the Shakespeare WordPiece tokenizer, data, loss, metrics, fill-mask."""

import pytest
import torch
from transformers import BertConfig as HFBertConfig, BertForMaskedLM

from fmteach.bert import BertEncoderOutput, MiniBertForMaskedLM
from fmteach.bert_config import BertConfig
from fmteach.masks import IGNORE_INDEX
from fmteach.mlm import MLMData, fill_mask, mlm_metrics
from fmteach.pretrain_mlm import MLMRecipe, masked_loss_fn, pretrain
from fmteach.wordpiece import SPECIAL_TOKENS, train_wordpiece_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return train_wordpiece_tokenizer(8000)


@pytest.fixture(scope="module")
def data(tokenizer):
    return MLMData.from_shakespeare(tokenizer, seq_len=32)


def test_tokenizer_is_bert_style_and_deterministic(tokenizer, tmp_path, monkeypatch):
    assert len(tokenizer) == 8000
    assert tokenizer.convert_ids_to_tokens(list(range(5))) == SPECIAL_TOKENS
    assert tokenizer.tokenize("To be, or not to be") == ["to", "be", ",", "or", "not", "to", "be"]
    assert tokenizer.tokenize("The lazy dog jumps") == ["the", "laz", "##y", "dog", "ju", "##mp", "##s"]  # rarer words: ## pieces
    assert tokenizer.convert_ids_to_tokens(tokenizer("hello")["input_ids"])[::len(tokenizer("hello")["input_ids"]) - 1] == ["[CLS]", "[SEP]"]
    # Rebuilt from scratch, twice, in empty caches: the same vocabulary. A 500-piece one tests the same
    # determinism in seconds (8,000 pieces take a minute), and it must be the 8,000's first 500 pieces:
    # WordPiece adds one merge at a time, so a longer run only extends a shorter one.
    by_id = lambda tok: [p for p, _ in sorted(tok.get_vocab().items(), key=lambda item: item[1])]  # noqa: E731
    builds = []
    for folder in ("a", "b"):
        monkeypatch.setenv("FMTEACH_CACHE", str(tmp_path / folder))
        builds.append(by_id(train_wordpiece_tokenizer(500)))
    assert builds[0] == builds[1] and len(builds[0]) == 500
    assert builds[0] == by_id(tokenizer)[:500]


def test_batches_are_masked_windows(data, tokenizer):
    gen = torch.Generator().manual_seed(0)
    batch = data.get_batch("train", 8, gen)
    assert batch["input_ids"].shape == batch["labels"].shape == (8, 32)
    assert (batch["input_ids"][:, 0] == tokenizer.cls_token_id).all()
    assert (batch["labels"][:, [0, -1]] == IGNORE_INDEX).all()
    selected = (batch["labels"] != IGNORE_INDEX).float().mean().item()
    assert 0.05 < selected < 0.3
    val1, val2 = data.validation_batches(64, 32), data.validation_batches(64, 32)
    assert all(torch.equal(a["input_ids"], b["input_ids"]) for a, b in zip(val1, val2))
    with pytest.raises(ValueError, match="split must be 'train' or 'val'"):
        data.get_batch("test", 2, gen)
    with pytest.raises(ValueError, match="unknown validation plays"):
        MLMData.from_shakespeare(tokenizer, val_plays=("hamlett",))


def test_validation_plays_are_held_out(data, tokenizer):
    # the tokenizer never saw Macbeth: its hero's name is split into pieces, while Hamlet's is one
    assert len(tokenizer.tokenize("macbeth")) > 1 and tokenizer.tokenize("hamlet") == ["hamlet"]
    assert len(data.val_ids) > 100_000 and len(data.train_ids) > 8 * len(data.val_ids)


def test_masked_loss_equals_full_logits_loss(data):
    torch.manual_seed(0)
    model = MiniBertForMaskedLM(BertConfig.smoke(8000)).eval()
    batch = data.get_batch("train", 4, torch.Generator().manual_seed(1))
    full = model(**batch).loss
    torch.testing.assert_close(masked_loss_fn(model, batch), full)


def test_fill_mask_for_our_model_and_hugging_face(tokenizer):
    torch.manual_seed(0)
    ours = MiniBertForMaskedLM(BertConfig.smoke(len(tokenizer)))
    result = fill_mask(ours, tokenizer, "to be or not to [MASK] , that is the [MASK]", top_k=3)
    assert len(result) == 2 and len(result[0]) == 3
    assert result[0][0]["score"] >= result[0][1]["score"] >= result[0][2]["score"]
    hf = BertForMaskedLM(HFBertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1,
                                      num_attention_heads=2, intermediate_size=64))
    assert len(fill_mask(hf, tokenizer, "the [MASK] dog", top_k=2)[0]) == 2
    with pytest.raises(ValueError, match=r"text has no \[MASK\] token"):
        fill_mask(ours, tokenizer, "no mask here")


def test_short_pretraining_beats_the_untrained_model(data):
    recipe = MLMRecipe.from_profile("smoke")
    from dataclasses import replace

    recipe = replace(recipe, train=replace(recipe.train, max_steps=60, eval_interval=60), val_rows=64)
    val = data.validation_batches(n_rows=recipe.val_rows)  # the batches pretrain() evaluates on
    torch.manual_seed(0)
    mask_id = data.tokenizer.mask_token_id
    untrained = mlm_metrics(MiniBertForMaskedLM(recipe.bert), val, mask_token_id=mask_id)
    model, _, result = pretrain(recipe, data=data, device=torch.device("cpu"), progress=False)
    after = mlm_metrics(model, val, mask_token_id=mask_id)
    assert after["mlm_loss"] < untrained["mlm_loss"] - 1.5
    assert after["accuracy_at_mask"] > untrained["accuracy_at_mask"]
    assert result.history[-1]["perplexity"] == pytest.approx(after["perplexity"])


def test_learn_wordpiece_vocab_on_the_classic_toy_corpus():
    from fmteach.wordpiece import learn_wordpiece_vocab

    counts = {"hug": 10, "pug": 5, "pun": 12, "bun": 4, "hugs": 5}
    vocab = learn_wordpiece_vocab(counts, vocab_size=len(SPECIAL_TOKENS) + 14)
    # alphabet (sorted), then merges by frequency: ##u+##g (20), ##u+##n (16), h+##ug (15), ...
    assert vocab == ["##g", "##n", "##s", "##u", "b", "h", "p", "##ug", "##un", "hug", "pun", "hugs", "pug", "bun"]
    assert learn_wordpiece_vocab(dict(reversed(list(counts.items()))), 19) == vocab  # order-free


class _OneHot(torch.nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.vocab_size = vocab_size
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def forward(self, input_ids, attention_mask=None):
        return BertEncoderOutput(torch.nn.functional.one_hot(input_ids, self.vocab_size).float() * 10, None, ())


class _Copier(torch.nn.Module):
    """A 'masked LM' under BERT's module names that predicts whatever its input holds: perfect on unchanged
    tokens, useless elsewhere."""

    def __init__(self, vocab_size):
        super().__init__()
        self.bert = _OneHot(vocab_size)  # the "hidden state" is the input's one-hot, scaled
        self.cls = torch.nn.Module()
        self.cls.predictions = torch.nn.Identity()


def test_mlm_metrics_split_by_what_the_input_held(data):
    batches = data.validation_batches(n_rows=64)
    mask_id = data.tokenizer.mask_token_id
    scores = mlm_metrics(_Copier(len(data.tokenizer)), batches, mask_token_id=mask_id)
    labelled = sum(int((b["labels"] != -100).sum()) for b in batches)
    assert scores["n_mask"] + scores["n_unchanged"] + scores["n_random"] == labelled
    assert scores["n_mask"] > 5 * scores["n_unchanged"] > 0 and scores["n_random"] > 0  # 80 / 10 / 10
    assert scores["accuracy_unchanged"] == 1.0
    assert scores["accuracy_at_mask"] == 0.0 and scores["top5_at_mask"] == 0.0 and scores["accuracy_random"] == 0.0
    # the mixed figure credits the copier with exactly its unchanged share: the artefact the split removes
    assert scores["accuracy_all_selected"] == pytest.approx(scores["n_unchanged"] / labelled)
    with pytest.raises(TypeError, match="mask_token_id must be the tokenizer's"):
        mlm_metrics(_Copier(len(data.tokenizer)), batches, mask_token_id=None)


def test_most_frequent_token_baseline_at_mask_positions(data):
    batches = data.validation_batches(n_rows=64)
    top = int(torch.bincount(data.train_ids).argmax())
    at_mask = torch.cat([b["labels"][b["input_ids"] == data.tokenizer.mask_token_id] for b in batches])
    assert data.most_frequent_token_accuracy(batches) == pytest.approx((at_mask == top).float().mean().item())
    selected = torch.cat([b["labels"][b["labels"] != -100] for b in batches])
    assert data.most_frequent_token_accuracy(batches, where="selected") == pytest.approx(
        (selected == top).float().mean().item())
    with pytest.raises(ValueError, match="where must be 'mask' or 'selected', got 'all'"):
        data.most_frequent_token_accuracy(batches, where="all")


def test_cloze_probes_follow_their_rule():
    from fmteach.lm_data import DEFAULT_VAL_PLAYS
    from fmteach.mlm_probes import cloze_probes, top_k_hit_rate, training_word_ranks

    tokenizer = train_wordpiece_tokenizer(8000)
    probes = cloze_probes(tokenizer, n=32)
    assert len(probes) == 32 and probes == cloze_probes(tokenizer, n=32)  # a rule, not a draw
    ranks = training_word_ranks()
    assert {p.play for p in probes} == set(DEFAULT_VAL_PLAYS)  # held-out plays only, all four
    for p in probes:
        assert p.text.count(tokenizer.mask_token) == 1
        assert p.rank == ranks[p.answer] < 500 and p.answer in tokenizer.get_vocab()
    assert top_k_hit_rate(probes, [[p.answer] for p in probes]) == 1.0
    with pytest.raises(ValueError, match="one list of guesses per probe"):
        top_k_hit_rate(probes, [])
    with pytest.raises(ValueError, match="n must be a positive int, got 0"):
        cloze_probes(tokenizer, n=0)


@pytest.mark.parametrize("corpus", ["shakespeare", "mixed"])
def test_pretraining_text_holds_no_evaluation_example(corpus):
    """The course mini-BERTs pretrain on the training plays (and, ``mixed``, the training splits of
    the English data sets) only: no line of the held-out plays the lessons evaluate on (the thou/you
    cloze of lesson 08, the probes, the MLM validation windows), and no validation or test text of a
    labelled set the course fine-tunes or prompts on (lesson 09's leakage, avoided). A test, so that
    adding text to the pretraining corpus cannot leak silently."""
    from fmteach.fewshot import thou_or_you
    from fmteach.text_datasets import load_text_classification
    from fmteach.wordpiece import MIXED_DATASETS, pretraining_lines

    pretraining_list = pretraining_lines(corpus)
    pretraining = "\n".join(pretraining_list)
    lines = {line.strip() for line in pretraining.splitlines()} | {t.strip() for t in pretraining_list}
    cloze = thou_or_you()
    assert len(cloze) > 100
    # the pronoun is cut from each example, so look for the rest of the line, at least 30 characters long
    long_examples = [t for t in cloze.texts if len(t) >= 30]
    assert long_examples and not [t for t in long_examples if t in pretraining]
    for name in MIXED_DATASETS:
        data = load_text_classification(name)
        for split in (data.validation, data.test):
            leaked = [t for t in split.texts if t.strip() in lines]
            assert not leaked, f"{name}: {len(leaked)} evaluation texts in the pretraining text, e.g. {leaked[0]!r}"
        # and the check can see a text when it is there: the mixed corpus holds every training text
        assert (data.train.texts[0].strip() in lines) == (corpus == "mixed")


def test_unknown_corpus_is_a_clear_error():
    from fmteach.mlm import MLMData
    from fmteach.wordpiece import pretraining_lines

    for call in (lambda: pretraining_lines("wikipedia"), lambda: train_wordpiece_tokenizer(500, corpus="wikipedia"),
                 lambda: MLMData.from_corpus(None, "wikipedia")):
        with pytest.raises(ValueError, match=r"corpus='wikipedia'.*shakespeare, mixed"):
            call()


def test_the_mixed_corpus_keeps_the_held_out_plays_for_measuring(tokenizer):
    """Models pretrained on different text are measured on the same held-out plays."""
    from fmteach.mlm import MLMData

    mixed_tok = train_wordpiece_tokenizer(8000, corpus="mixed")
    shakespeare, mixed = MLMData.from_shakespeare(tokenizer, seq_len=32), MLMData.from_corpus(mixed_tok, "mixed", seq_len=32)
    assert len(mixed.train_ids) > 2 * len(shakespeare.train_ids)  # 2.5 M tokens against 1.1 M
    held_out = [tok.decode(data.val_ids[:200].tolist())[:300] for tok, data in ((tokenizer, shakespeare), (mixed_tok, mixed))]
    assert held_out[0] == held_out[1]
