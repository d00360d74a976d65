"""fewshot: mean pooling, embeddings, zero-shot scores, cloze prompts and k-shot draws."""

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer, BertConfig as HFBertConfig, BertModel

from fmteach.assets import pretrained_bert
from fmteach.bert import MiniBertForMaskedLM
from fmteach.bert_config import BertConfig
from fmteach.fewshot import (
    CLOZE_PROMPTS,
    LABEL_DESCRIPTIONS,
    cloze_scores,
    embed,
    few_shot_curve,
    linear_probe,
    mean_pool,
    mean_std,
    sample_k_shot,
    similarity_scores,
)
from fmteach.text_datasets import load_text_classification
from fmteach.wordpiece import train_wordpiece_tokenizer


@pytest.fixture(scope="module")
def tiny_encoder():
    torch.manual_seed(0)
    model = BertModel(HFBertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                   intermediate_size=64, max_position_embeddings=64)).eval()
    return AutoTokenizer.from_pretrained(pretrained_bert()), model


def test_mean_pool_ignores_padding():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    torch.testing.assert_close(mean_pool(hidden, torch.tensor([[1, 1, 0]])), torch.tensor([[2.0, 3.0]]))
    with pytest.raises(ValueError, match="attention_mask"):
        mean_pool(hidden, torch.ones(1, 2))


def test_embed_is_normalised_and_independent_of_batching(tiny_encoder, tmp_path, monkeypatch):
    tok, model = tiny_encoder
    texts = ["a much longer sentence than the others, with commas", "short", "middle sized text"]
    together = embed(model, tok, texts, batch_size=2)
    alone = torch.cat([embed(model, tok, [t]) for t in texts])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(together.norm(dim=-1), torch.ones(3))
    monkeypatch.setenv("FMTEACH_CACHE", str(tmp_path))
    first = embed(model, tok, texts, cache=True)
    assert len(list(tmp_path.glob("embeddings-*.pt"))) == 1
    torch.testing.assert_close(embed(model, tok, texts, cache=True), first)
    with pytest.raises(TypeError, match="texts must be a list of strings, not one string"):
        embed(model, tok, "one string")


def test_embedding_cache_is_read_safely_and_rebuilt_when_broken(tiny_encoder, tmp_path, monkeypatch):
    tok, model = tiny_encoder
    monkeypatch.setenv("FMTEACH_CACHE", str(tmp_path))
    texts = ["one text", "another text"]
    fresh = embed(model, tok, texts, cache=True)
    (path,) = tmp_path.glob("embeddings-*.pt")
    assert torch.equal(torch.load(path, map_location="cpu", weights_only=True), fresh) and not list(tmp_path.glob("*.tmp"))
    path.write_bytes(b"not a torch file")  # a truncated or foreign cache file
    with pytest.warns(UserWarning, match="computing the embeddings again"):
        again = embed(model, tok, texts, cache=True)
    torch.testing.assert_close(again, fresh)
    assert torch.equal(torch.load(path, map_location="cpu", weights_only=True), again)  # and written back whole
    torch.save(torch.zeros(5, 2), path)  # readable, but not these texts' shape
    with pytest.warns(UserWarning, match=r"does not hold a \(2, 32\) tensor"):
        torch.testing.assert_close(embed(model, tok, texts, cache=True), fresh)


def test_embed_and_cloze_run_in_eval_mode_and_give_the_mode_back(tiny_encoder):
    tok, model = tiny_encoder
    texts = ["a text with some words", "another"]
    expected = embed(model, tok, texts)
    model.train()  # dropout on: embed must switch it off for the call, then give the mode back
    try:
        torch.testing.assert_close(embed(model, tok, texts), expected)
        assert model.training
    finally:
        model.eval()
    mlm = MiniBertForMaskedLM(BertConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=1,
                                         num_attention_heads=2, intermediate_size=32, max_position_embeddings=64))
    prompt = CLOZE_PROMPTS["movie-reviews"]
    mlm.eval()
    still = cloze_scores(mlm, tok, texts, template=prompt["template"], verbalizer=[["bad"], ["good"]])
    mlm.train()
    torch.testing.assert_close(cloze_scores(mlm, tok, texts, template=prompt["template"],
                                            verbalizer=[["bad"], ["good"]]), still)
    assert mlm.training


def test_similarity_scores_pick_the_closest():
    texts = torch.tensor([[1.0, 0.0], [0.1, 1.0]])
    labels = torch.tensor([[2.0, 0.0], [0.0, 3.0]])
    assert similarity_scores(texts, labels).argmax(-1).tolist() == [0, 1]
    with pytest.raises(ValueError, match="embeddings"):
        similarity_scores(texts, torch.ones(2, 3))


def test_descriptions_cover_every_label():
    for name, descriptions in LABEL_DESCRIPTIONS.items():
        assert len(descriptions) == len(load_text_classification(name).label_names), name


def test_sample_k_shot_is_balanced_seeded_and_checked():
    labels = [0] * 10 + [1] * 10 + [2] * 3
    a, b = sample_k_shot(labels, 3, seed=1), sample_k_shot(labels, 3, seed=1)
    assert a == b and sorted(np.bincount(np.array(labels)[a]).tolist()) == [3, 3, 3]
    assert sample_k_shot(labels, 3, seed=2) != a
    with pytest.raises(ValueError, match="class 2 has only 3"):
        sample_k_shot(labels, 4, seed=0)


def test_probe_and_curve():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-2, 1, (50, 4)), rng.normal(2, 1, (50, 4))]).astype(np.float32)
    y = [0] * 50 + [1] * 50
    test_x, test_y = x[::5], y[::5]
    curve = few_shot_curve(y, [1, 8], [0, 1, 2], lambda idx: linear_probe(x[idx], [y[i] for i in idx]).predict(test_x),
                           test_y, progress=False)
    assert set(curve) == {1, 8} and len(curve[8]) == 3
    assert mean_std(curve[8])[0] > 0.9
    with pytest.raises(ValueError, match="labels"):
        linear_probe(x[:3], y[:2])


def test_cloze_scores_with_our_mini_bert():
    tok = train_wordpiece_tokenizer(8000)
    mlm = MiniBertForMaskedLM(BertConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=1,
                                         num_attention_heads=2, intermediate_size=32, max_position_embeddings=64))
    prompt = CLOZE_PROMPTS["movie-reviews"]
    texts = ["a good play", "a bad play " * 40]  # the long one is cut, the [MASK] survives
    raw = cloze_scores(mlm, tok, texts, template=prompt["template"], verbalizer=[["bad"], ["good"]], calibrate=False)
    calibrated = cloze_scores(mlm, tok, texts, template=prompt["template"], verbalizer=[["bad"], ["good"]], max_length=32)
    assert raw.shape == calibrated.shape == (2, 2) and torch.isfinite(raw).all() and (raw <= 0).all()
    assert not torch.allclose(raw, calibrated)
    with pytest.raises(ValueError, match="not one token"):
        cloze_scores(mlm, tok, texts, template=prompt["template"], verbalizer=[["bad"], ["supercalifragilistic"]])
    with pytest.raises(ValueError, match="template"):
        cloze_scores(mlm, tok, texts, template="no mask {text}", verbalizer=[["bad"], ["good"]])
    kw = dict(template=prompt["template"], verbalizer=[["bad"], ["good"]], max_length=32)
    raw32 = cloze_scores(mlm, tok, texts, calibrate=False, **kw)
    torch.testing.assert_close(cloze_scores(mlm, tok, texts, calibrate="batch", **kw), raw32 - raw32.mean(0))
    torch.testing.assert_close(cloze_scores(mlm, tok, texts, calibrate="content-free", **kw), calibrated)
    for bad in ("yes", 1, None):
        with pytest.raises(ValueError, match="calibrate must be False, True, 'content-free' or 'batch'"):
            cloze_scores(mlm, tok, texts, calibrate=bad, **kw)


def test_contrastive_pairs_are_seeded_and_labelled():
    from fmteach.fewshot import contrastive_pairs

    labels = [0, 0, 1, 1, 2]
    pairs = contrastive_pairs(labels, iterations=3, seed=0)
    assert pairs == contrastive_pairs(labels, iterations=3, seed=0)
    assert len(pairs) == 3 * (4 * 2 + 1)                      # class 2 has no partner of its own class
    assert all((labels[i] == labels[j]) == (target == 1.0) and i != j for i, j, target in pairs)
    with pytest.raises(ValueError, match="at least two classes"):
        contrastive_pairs([1, 1, 1], iterations=1, seed=0)
    with pytest.raises(ValueError, match="iterations must be a positive int, got 0"):
        contrastive_pairs(labels, iterations=0, seed=0)


def test_setfit_finetune_pulls_classes_apart(tiny_encoder):
    from fmteach.fewshot import setfit_finetune

    tok, model = tiny_encoder
    texts = ["cats purr and sleep", "a kitten chased yarn", "stocks fell on monday", "the bank raised rates"]
    labels = [0, 0, 1, 1]

    def gap(m):
        e = embed(m, tok, texts)
        same = (e[0] @ e[1] + e[2] @ e[3]) / 2
        other = (e[0] @ e[2] + e[0] @ e[3] + e[1] @ e[2] + e[1] @ e[3]) / 4
        return float(same - other)

    before = {k: v.clone() for k, v in model.state_dict().items()}
    tuned = setfit_finetune(model, tok, texts, labels, iterations=10, epochs=3, batch_size=4, learning_rate=1e-3, seed=0)
    assert gap(tuned) > gap(model) + 0.05                      # same-class texts closer than before
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # the original is untouched
    assert not tuned.training
    with pytest.raises(ValueError, match="4 texts but 3 labels"):
        setfit_finetune(model, tok, texts, labels[:3])


def test_embedding_cache_is_keyed_by_tokenizer_and_weights(tiny_encoder, tmp_path, monkeypatch):
    """A run that embedded the same texts with another tokenizer (or other weights) must not be
    read back: lesson 08 once read vectors made with the mini-BERT's tokenizer as MiniLM's."""
    import copy

    from fmteach.wordpiece import train_wordpiece_tokenizer

    tok, model = tiny_encoder
    model = copy.deepcopy(model)
    other_tok = train_wordpiece_tokenizer(8000)  # another vocabulary (from the checkout's cache), ids in range
    monkeypatch.setenv("FMTEACH_CACHE", str(tmp_path))
    texts = ["one text", "another text"]
    fresh = embed(model, tok, texts, cache=True)
    other = embed(model, other_tok, texts, cache=True)
    assert len(list(tmp_path.glob("embeddings-*.pt"))) == 2 and not torch.allclose(other, fresh)
    with torch.no_grad():
        next(model.parameters()).add_(0.5)  # other weights: another key again
    embed(model, tok, texts, cache=True)
    assert len(list(tmp_path.glob("embeddings-*.pt"))) == 3


def test_thou_or_you_is_a_balanced_task_from_held_out_plays():
    from fmteach.fewshot import thou_or_you

    data = thou_or_you()
    assert len(data) == 170 and sorted(set(data.labels)) == [0, 1]
    assert 0.4 < sum(data.labels) / len(data) < 0.6                      # about as many "you" as "thou"
    assert data.texts[1] == "shalt get kings, though thou be none:" and data.labels[1] == 0  # Macbeth, 1.3
    assert all(not t.lower().startswith(("thou ", "you ")) and len(t) >= 10 for t in data.texts)
    assert len(thou_or_you(["macbeth"])) < len(data)
    with pytest.raises(ValueError, match="plays must be names of the 38 plays"):
        thou_or_you(["hamlet-2"])
    with pytest.raises(ValueError, match="min_chars must be a positive int, got 0"):
        thou_or_you(min_chars=0)
