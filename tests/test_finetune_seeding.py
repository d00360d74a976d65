"""Seeds: a library call draws its weights and dropout masks inside ``seeded(seed)``, so the same seed
gives the same result and the caller's random number generator is left as it was. Also
``random_init`` and few-shot fine-tuning, end to end."""

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer, BertConfig as HFBertConfig, BertModel, DataCollatorWithPadding

from fmteach import fewshot, finetune as ft
from fmteach.assets import pretrained_bert
from fmteach.bert import MiniBertForMaskedLM
from fmteach.bert_config import BertConfig
from fmteach.seeding import seeded
from fmteach.text_datasets import TextSplit
from tests.tiny import NEG, POS, RECIPE, tiny_bert


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(pretrained_bert())


def _leaves_rng_alone(call) -> None:
    """``call()`` between two draws from the global RNG gives the draw that no call gives."""
    torch.manual_seed(1234)
    torch.rand(1)
    call()
    after = torch.rand(5)
    torch.manual_seed(1234)
    torch.rand(1)
    assert torch.equal(after, torch.rand(5)), "the call moved or reseeded the caller's torch RNG"


def test_load_for_classification_seeds_the_head_only_and_leaves_the_rng_alone():
    _leaves_rng_alone(lambda: ft.load_for_classification("minilm", ["n", "p"], seed=3))
    _, a = ft.load_for_classification("minilm", ["n", "p"], seed=3)
    _, b = ft.load_for_classification("minilm", ["n", "p"], seed=3)
    _, c = ft.load_for_classification("minilm", ["n", "p"], seed=4)
    assert torch.equal(a.classifier.weight, b.classifier.weight)  # same seed, same new head
    assert not torch.equal(a.classifier.weight, c.classifier.weight)
    assert torch.equal(a.bert.embeddings.word_embeddings.weight, c.bert.embeddings.word_embeddings.weight)  # pretrained
    assert a.config.id2label == {0: "n", 1: "p"} and a.classifier.out_features == 2


def test_random_init_keeps_the_architecture_and_drops_the_pretrained_weights():
    tok_p, pretrained = ft.load_for_classification("minilm", ["n", "p", "x"], seed=0)
    tok_r, random_a = ft.load_for_classification("minilm", ["n", "p", "x"], seed=0, random_init=True)
    _, random_b = ft.load_for_classification("minilm", ["n", "p", "x"], seed=0, random_init=True)
    _, random_c = ft.load_for_classification("minilm", ["n", "p", "x"], seed=1, random_init=True)
    shapes = {k: tuple(v.shape) for k, v in pretrained.state_dict().items()}
    assert shapes == {k: tuple(v.shape) for k, v in random_a.state_dict().items()}  # the same architecture
    assert tok_p.vocab == tok_r.vocab and random_a.config.num_labels == 3
    word = "bert.embeddings.word_embeddings.weight"
    assert not torch.allclose(pretrained.state_dict()[word], random_a.state_dict()[word])  # not the pretrained weights
    assert all(torch.equal(v, random_b.state_dict()[k]) for k, v in random_a.state_dict().items())  # seeded
    assert not torch.equal(random_a.state_dict()[word], random_c.state_dict()[word])
    _leaves_rng_alone(lambda: ft.load_for_classification("minilm", ["n", "p"], seed=0, random_init=True))


def test_classifier_from_mlm_leaves_the_rng_alone():
    mlm = MiniBertForMaskedLM(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                         intermediate_size=32, max_position_embeddings=16))
    _leaves_rng_alone(lambda: ft.classifier_from_mlm(mlm, 2, seed=5))


def test_finetune_loop_leaves_the_rng_alone(tokenizer):
    train = ft.encode(tokenizer, TextSplit(POS + NEG, [1] * 5 + [0] * 5), max_length=16)
    model = tiny_bert()
    _leaves_rng_alone(lambda: ft.finetune_loop(model, train, None, RECIPE, collator=DataCollatorWithPadding(tokenizer),
                                               device=torch.device("cpu"), max_steps=2, progress=False))


def test_setfit_is_seeded_and_leaves_the_rng_alone(tokenizer):
    torch.manual_seed(0)
    encoder = BertModel(HFBertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=64, max_position_embeddings=64)).eval()
    texts, labels = ["cats purr", "a kitten", "stocks fell", "rates rose"], [0, 0, 1, 1]

    def tune(seed):
        return fewshot.setfit_finetune(encoder, tokenizer, texts, labels, iterations=2, batch_size=4, seed=seed)

    _leaves_rng_alone(lambda: tune(0))
    torch.manual_seed(7)  # another global state: the same result
    a = tune(0).state_dict()
    b = tune(0).state_dict()
    assert all(torch.equal(v, b[k]) for k, v in a.items())
    assert not all(torch.equal(v, tune(1).state_dict()[k]) for k, v in a.items())


def test_finetune_few_shot_learns_and_is_seeded(monkeypatch, tokenizer):
    """Few-shot fine-tuning end to end on a tiny BERT (``load_for_classification`` swapped for a
    seeded tiny model): it learns the toy reviews, the same seed repeats its predictions whatever
    ran before, and the caller's RNG is untouched."""
    loads = []

    def tiny_classifier(name, label_names, *, seed):
        loads.append((name, tuple(label_names), seed))
        with seeded(seed):  # tiny_bert seeds the global RNG itself: keep that inside
            return tokenizer, tiny_bert(seed)

    monkeypatch.setattr(ft, "load_for_classification", tiny_classifier)
    texts, labels = POS + NEG, [1] * 5 + [0] * 5

    def run(seed=0):
        return fewshot.finetune_few_shot("tiny", ["negative", "positive"], texts, labels, texts, steps=40,
                                         batch_size=8, learning_rate=3e-3, max_length=16, seed=seed)

    predictions = run()
    assert isinstance(predictions, np.ndarray) and predictions.tolist() == labels  # it learned the training reviews
    assert loads[-1] == ("tiny", ("negative", "positive"), 0)
    torch.manual_seed(99)
    assert run().tolist() == predictions.tolist()
    _leaves_rng_alone(lambda: run(seed=0))


def test_finetune_few_shot_with_minilm_leaves_the_rng_alone():
    """The real path (MiniLM loaded fresh each call, no hidden cache), two steps only."""
    texts, labels = ["a good film", "a bad film"], [1, 0]

    def run():
        return fewshot.finetune_few_shot("minilm", ["negative", "positive"], texts, labels, ["fine", "awful"],
                                         steps=2, batch_size=2, max_length=16, seed=0)

    first = run()
    assert first.shape == (2,) and set(first.tolist()) <= {0, 1}
    _leaves_rng_alone(run)
    assert not hasattr(fewshot, "_WEIGHTS")  # the module-level weights cache is gone
