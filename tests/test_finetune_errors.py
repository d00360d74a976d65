"""Every public function of finetune and fewshot rejects bad input with an error that names the argument,
what it got and what it expected -- not an IndexError or a CUDA assert deep inside torch."""

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer, BertConfig as HFBertConfig, BertModel, DataCollatorWithPadding

from fmteach import fewshot, finetune as ft
from fmteach.assets import pretrained_bert
from fmteach.text_datasets import TextClassificationData, TextSplit
from tests.tiny import tiny_bert


@pytest.fixture(scope="module")
def kit():
    """A tokenizer, a tiny 2-class classifier, a tiny encoder, a collator, a recipe and two encoded splits."""
    tokenizer = AutoTokenizer.from_pretrained(pretrained_bert())
    torch.manual_seed(0)
    encoder = BertModel(HFBertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=64, max_position_embeddings=64)).eval()
    good = ft.encode(tokenizer, TextSplit(["a good film", "a bad film"], [1, 0]), max_length=16)
    three = ft.encode(tokenizer, TextSplit(["a good film", "a bad film"], [1, 2]), max_length=16)  # label 2 of 2 classes
    return dict(tok=tokenizer, model=tiny_bert(), encoder=encoder, collator=DataCollatorWithPadding(tokenizer),
                recipe=ft.FinetuneRecipe(batch_size=2, max_length=16), good=good, three=three)


def _data(label_names, train_labels):
    split = TextSplit(["a"] * len(train_labels), list(train_labels))
    return TextClassificationData("toy", label_names, split, TextSplit(["a"], [0]), TextSplit(["a"], [0]))


# (description, call(kit), the words the message must hold: the argument, what it got, what was expected)
VALUE_ERRORS = [
    ("metrics: label outside the set", lambda k: ft.classification_metrics([0, 1], [0, 2], num_labels=2),
     ["predictions", "2", "0..1"]),
    ("metrics: negative label", lambda k: ft.classification_metrics([0, -100], [0, 1]), ["labels", "-100", ">= 0"]),
    ("metrics: empty", lambda k: ft.classification_metrics([], []), ["labels is empty"]),
    ("metrics: lengths differ", lambda k: ft.classification_metrics([0, 1], [0, 1, 1]), ["labels", "predictions", "shape"]),
    ("compute_metrics: label outside the logits", lambda k: ft.compute_metrics(
        type("EvalPrediction", (), {"predictions": np.zeros((2, 2)), "label_ids": np.array([0, 5])})()),
     ["labels", "5", "num_labels=2"]),
    ("loop: train label outside the model's classes", lambda k: ft.finetune_loop(
        k["model"], k["three"], None, k["recipe"], collator=k["collator"], progress=False),
     ["train.labels", "2", "num_labels=2"]),
    ("loop: validation label outside", lambda k: ft.finetune_loop(
        k["model"], k["good"], k["three"], k["recipe"], collator=k["collator"], progress=False),
     ["validation.labels", "2"]),
    ("loop: empty train", lambda k: ft.finetune_loop(
        k["model"], ft.EncodedSplit([], []), None, k["recipe"], collator=k["collator"]), ["train is empty"]),
    ("loop: patience without validation", lambda k: ft.finetune_loop(
        k["model"], k["good"], None, k["recipe"], collator=k["collator"], early_stopping_patience=2),
     ["early_stopping_patience", "validation=None"]),
    ("loop: max_steps 0", lambda k: ft.finetune_loop(
        k["model"], k["good"], None, k["recipe"], collator=k["collator"], max_steps=0), ["max_steps", "0"]),
    ("trainer: label outside", lambda k: ft.make_trainer(k["recipe"], k["tok"], k["model"],
                                                         _data(["n", "p"], [0, 3]), "unused"),
     ["data.train.labels", "3", "num_labels=2"]),
    ("trainer: label names vs model", lambda k: ft.make_trainer(k["recipe"], k["tok"], k["model"],
                                                                _data(["a", "b", "c"], [0]), "unused"),
     ["label names", "3", "2 classes"]),
    ("evaluate: empty", lambda k: ft.evaluate_model(k["model"], ft.EncodedSplit([], []), k["collator"]),
     ["data is empty"]),
    ("evaluate: label outside", lambda k: ft.evaluate_model(k["model"], k["three"], k["collator"]),
     ["data.labels", "2"]),
    ("encode: empty split", lambda k: ft.encode(k["tok"], TextSplit([], [])), ["split is empty"]),
    ("encode: max_length", lambda k: ft.encode(k["tok"], TextSplit(["a"], [0]), max_length=0), ["max_length", "0"]),
    ("predict_proba: no texts", lambda k: ft.predict_proba(k["model"], k["tok"], []), ["texts is empty"]),
    ("padding_speed: no texts", lambda k: ft.padding_speed(k["model"], k["tok"], []), ["texts is empty"]),
    ("padding_speed: rounds", lambda k: ft.padding_speed(k["model"], k["tok"], ["a"], rounds=0), ["rounds", "0"]),
    ("mistakes: label outside the names", lambda k: ft.most_confident_mistakes(
        ["a"], [3], torch.tensor([[0.4, 0.6]]), ["n", "p"]), ["labels", "3", "0..1"]),
    ("load: one label", lambda k: ft.load_for_classification("minilm", ["positive"]),
     ["label_names", "at least 2", "regression"]),
    ("load: repeated labels", lambda k: ft.load_for_classification("minilm", ["a", "b", "a"]),
     ["label_names", "distinct", "'a'"]),
    ("classifier_from_mlm: one label", lambda k: ft.classifier_from_mlm(_tiny_mlm(), 1), ["num_labels", ">= 2", "1"]),
    ("recipe: n_train 0", lambda k: ft.FinetuneRecipe(n_train=0), ["n_train", "0"]),
    ("recipe: unknown profile", lambda k: ft.FinetuneRecipe.from_profile("huge"), ["profile", "'huge'"]),
    ("subset: n 0", lambda k: ft.subset(TextSplit(["a"], [0]), 0), ["n must be", "0"]),
    ("embed: no texts", lambda k: fewshot.embed(k["encoder"], k["tok"], []), ["texts is empty"]),
    ("label_embeddings: no descriptions", lambda k: fewshot.label_embeddings(k["encoder"], k["tok"], []),
     ["descriptions is empty"]),
    ("cloze_scores: no texts", lambda k: fewshot.cloze_scores(
        k["encoder"], k["tok"], [], template="{text} [MASK].", verbalizer=[["bad"], ["good"]]), ["texts is empty"]),
    ("cloze_scores: one label", lambda k: fewshot.cloze_scores(
        k["encoder"], k["tok"], ["a"], template="{text} [MASK].", verbalizer=[["good"]]), ["verbalizer", "2 labels"]),
    ("similarity: no labels", lambda k: fewshot.similarity_scores(torch.ones(2, 3), torch.ones(0, 3)),
     ["label_embeddings is empty"]),
    ("sample_k_shot: empty pool", lambda k: fewshot.sample_k_shot([], 1, seed=0), ["labels is empty"]),
    ("sample_k_shot: negative label", lambda k: fewshot.sample_k_shot([0, 1, -1], 1, seed=0), ["labels", "-1"]),
    ("sample_k_shot: k 0", lambda k: fewshot.sample_k_shot([0, 1], 0, seed=0), ["k must be", "0"]),
    ("linear_probe: one class", lambda k: fewshot.linear_probe(np.zeros((2, 3)), [1, 1]), ["train_y", "2 classes"]),
    ("few-shot fine-tuning: lengths differ", lambda k: fewshot.finetune_few_shot(
        "minilm", ["n", "p"], ["a", "b"], [0], ["c"]), ["2 texts", "1 labels"]),
    ("few-shot fine-tuning: label outside", lambda k: fewshot.finetune_few_shot(
        "minilm", ["n", "p"], ["a", "b"], [0, 2], ["c"]), ["labels", "2", "num_labels=2"]),
    ("few-shot fine-tuning: no test texts", lambda k: fewshot.finetune_few_shot(
        "minilm", ["n", "p"], ["a", "b"], [0, 1], []), ["test_texts is empty"]),
    ("few_shot_curve: wrong number of predictions", lambda k: fewshot.few_shot_curve(
        [0, 1], [1], [0], lambda idx: np.zeros(3), [0, 1], progress=False), ["fit_predict", "(3,)", "(2,)"]),
    ("few_shot_curve: no ks", lambda k: fewshot.few_shot_curve([0, 1], [], [0], lambda idx: idx, [0, 1]), ["ks"]),
    ("mean_std: empty", lambda k: fewshot.mean_std([]), ["values is empty"]),
    ("setfit: lengths differ", lambda k: fewshot.setfit_finetune(k["encoder"], k["tok"], ["a", "b"], [0]),
     ["2 texts", "1 labels"]),
]

TYPE_ERRORS = [
    ("metrics: probabilities for predictions", lambda k: ft.classification_metrics([0, 1], [0.2, 0.7]),
     ["predictions", "0.2", "argmax"]),
    ("load: label names as one string", lambda k: ft.load_for_classification("minilm", "positive"),
     ["label_names", "not one string", "'positive'"]),
    ("load: label names not strings", lambda k: ft.load_for_classification("minilm", [0, 1]),
     ["label_names", "strings", "0"]),
    ("load: name", lambda k: ft.load_for_classification(None), ["name", "None"]),
    ("classifier_from_mlm: not our MLM", lambda k: ft.classifier_from_mlm(k["model"], 2),
     ["mlm_model", "BertForSequenceClassification"]),
    ("loop: recipe", lambda k: ft.finetune_loop(k["model"], k["good"], None, {}, collator=k["collator"]),
     ["recipe", "FinetuneRecipe", "dict"]),
    ("training_arguments: recipe", lambda k: ft.training_arguments({}, "unused"), ["recipe", "dict"]),
    ("trainer: data", lambda k: ft.make_trainer(k["recipe"], k["tok"], k["model"], [("a", 0)], "unused"),
     ["data", "TextClassificationData", "list"]),
    ("encode: raw texts", lambda k: ft.encode(k["tok"], ["a", "b"]), ["split", "TextSplit", "list"]),
    ("encode: label names for labels", lambda k: ft.encode(k["tok"], TextSplit(["a"], ["pos"])),
     ["split.labels[0]", "'pos'", "class indices"]),
    ("encode: a text that is not a string", lambda k: ft.encode(k["tok"], TextSplit([None], [0])),
     ["split.texts[0]", "None", "not a string"]),
    ("predict_proba: one string", lambda k: ft.predict_proba(k["model"], k["tok"], "one review"),
     ["texts", "not one string"]),
    ("recipe: seed", lambda k: ft.FinetuneRecipe(seed=1.5), ["seed", "1.5"]),
    ("recipe: unknown override", lambda k: ft.FinetuneRecipe.from_profile("smoke", n_trian=5), ["n_trian"]),
    ("embed: one string", lambda k: fewshot.embed(k["encoder"], k["tok"], "one text"), ["texts", "not one string"]),
    ("cloze_scores: verbalizer as one string", lambda k: fewshot.cloze_scores(
        k["encoder"], k["tok"], ["a"], template="{text} [MASK].", verbalizer="great"), ["verbalizer", "'great'"]),
    ("few-shot fine-tuning: label names as one string", lambda k: fewshot.finetune_few_shot(
        "minilm", "np", ["a", "b"], [0, 1], ["c"]), ["label_names", "'np'"]),
    ("setfit: one string", lambda k: fewshot.setfit_finetune(k["encoder"], k["tok"], "ab", [0, 1]),
     ["texts", "not one string"]),
]


def _tiny_mlm():
    from fmteach.bert import MiniBertForMaskedLM
    from fmteach.bert_config import BertConfig

    return MiniBertForMaskedLM(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                          intermediate_size=32, max_position_embeddings=16))


def _check(kit, call, error, words):
    with pytest.raises(error) as info:
        call(kit)
    message = str(info.value)
    missing = [w for w in words if w not in message]
    assert not missing, f"{type(info.value).__name__}: {message!r} does not say {missing}"


@pytest.mark.parametrize("call, words", [c[1:] for c in VALUE_ERRORS], ids=[c[0] for c in VALUE_ERRORS])
def test_value_errors_name_the_argument(kit, call, words):
    _check(kit, call, ValueError, words)


@pytest.mark.parametrize("call, words", [c[1:] for c in TYPE_ERRORS], ids=[c[0] for c in TYPE_ERRORS])
def test_type_errors_name_the_argument(kit, call, words):
    _check(kit, call, TypeError, words)


def test_bad_labels_are_caught_before_any_weight_moves(kit):
    """The label check runs before the first step: a bad split leaves the model exactly as it was."""
    model = tiny_bert()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match="train.labels"):
        ft.finetune_loop(model, kit["three"], None, kit["recipe"], collator=kit["collator"], progress=False)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_cli_rejects_a_bad_value_as_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        ft.main(["--out", str(tmp_path), "--n-train", "0"])
    assert exit_info.value.code == 2 and "n_train must be a positive int" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        ft.main(["--out", str(tmp_path), "--profile", "huge"])
    assert "invalid choice: 'huge'" in capsys.readouterr().err
