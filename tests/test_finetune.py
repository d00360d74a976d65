"""finetune: metrics, encoding, the Trainer recipe and the plain loop, on a tiny BERT in seconds."""

import dataclasses

import numpy as np
import pytest
import torch
from transformers import (
    AutoTokenizer,
    BertForSequenceClassification,
    DataCollatorWithPadding,
)
from transformers.trainer_utils import EvalPrediction

from fmteach.assets import pretrained_bert
from fmteach.bert import MiniBertForMaskedLM
from fmteach.bert_config import BertConfig
from fmteach.finetune import (
    FinetuneRecipe,
    classification_metrics,
    classifier_from_mlm,
    compute_metrics,
    encode,
    evaluate_model,
    finetune_loop,
    make_trainer,
    most_confident_mistakes,
    padding_speed,
    predict_proba,
    subset,
)
from fmteach.text_datasets import TextSplit
from tests.tiny import NEG, POS, RECIPE, tiny_bert, toy_data


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(pretrained_bert())


def test_metrics_binary_and_macro():
    m = classification_metrics([0, 1, 1, 0], [0, 1, 0, 0])
    assert m == {"accuracy": 0.75, "precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3)}
    m3 = classification_metrics([0, 1, 2, 2], [0, 2, 2, 2], num_labels=3)
    assert m3["accuracy"] == 0.75 and m3["recall"] == pytest.approx((1 + 0 + 1) / 3)
    with pytest.raises(ValueError, match="shape"):
        classification_metrics([0, 1], [0, 1, 1])
    logits = np.array([[2.0, 0.0], [0.0, 1.0]])
    assert compute_metrics(EvalPrediction(predictions=logits, label_ids=np.array([0, 1])))["accuracy"] == 1.0


def test_encode_dynamic_vs_max_length(tokenizer):
    split = TextSplit(["short", "a somewhat longer sentence here"], [0, 1])
    dynamic, padded = encode(tokenizer, split, max_length=12), encode(tokenizer, split, max_length=12, padding="max_length")
    assert [len(f["input_ids"]) for f in dynamic] == [3, 7]
    assert {len(f["input_ids"]) for f in padded} == {12}
    assert dynamic.labels == [0, 1] and padded.num_tokens() == 24
    with pytest.raises(ValueError, match="padding"):
        encode(tokenizer, split, padding=True)
    assert len(subset(split, 1)) == 1 and subset(split, None) is split


def test_recipe_checks_and_profiles(monkeypatch):
    with pytest.raises(ValueError, match="warmup"):
        FinetuneRecipe(warmup=2)
    with pytest.raises(ValueError, match="batch_size"):
        FinetuneRecipe(batch_size=0)
    smoke, cpu, gpu = (FinetuneRecipe.from_profile(p) for p in ("smoke", "cpu", "gpu"))
    assert (smoke.n_train, smoke.n_eval, smoke.epochs, smoke.batch_size) == (640, 256, 1.0, 16)
    assert (cpu.n_train, cpu.n_eval, cpu.epochs) == (6000, None, 2.0)
    assert (gpu.n_train, gpu.n_eval, gpu.epochs, gpu.learning_rate) == (None, None, 4.0, 5e-5)
    assert smoke.seed == cpu.seed == gpu.seed == 0 and smoke.model == "minilm"
    # overrides replace fields of the preset and nothing else
    assert FinetuneRecipe.from_profile("cpu", n_train=5) == dataclasses.replace(cpu, n_train=5)
    monkeypatch.setenv("FMTEACH_PROFILE", "smoke")
    assert FinetuneRecipe.from_profile() == smoke  # no profile: $FMTEACH_PROFILE
    with pytest.raises(TypeError, match="n_trian"):
        FinetuneRecipe.from_profile("smoke", n_trian=5)
    with pytest.raises(ValueError, match="profile 'huge'"):
        FinetuneRecipe.from_profile("huge")


def test_loop_learns_keeps_best_and_stops_early(tokenizer):
    data = toy_data()
    train, val = encode(tokenizer, data.train, max_length=16), encode(tokenizer, data.validation, max_length=16)
    collator = DataCollatorWithPadding(tokenizer)
    model = tiny_bert()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = finetune_loop(model, train, val, RECIPE, collator=collator, device=torch.device("cpu"),
                           track_train_accuracy=True, progress=False)
    assert result.history[-1]["train_accuracy"] == 1.0 and max(r["eval_accuracy"] for r in result.history) == 1.0
    assert result.steps == 8 * 5
    # full fine-tuning: the encoder moved, not only the head
    assert not torch.equal(before["bert.encoder.layer.0.attention.self.query.weight"],
                           model.state_dict()["bert.encoder.layer.0.attention.self.query.weight"])
    best = result.history[result.best_epoch - 1]["eval_accuracy"]
    assert evaluate_model(model, val, collator)["accuracy"] == best
    stopped = finetune_loop(tiny_bert(), train, val, dataclasses.replace(RECIPE, learning_rate=1e-9, epochs=20),
                            collator=collator, early_stopping_patience=2, progress=False)
    assert stopped.stopped_early and len(stopped.history) < 20
    blind = finetune_loop(tiny_bert(), train, None, RECIPE, collator=collator, max_steps=3, progress=False)
    assert blind.steps == 3 and "eval_accuracy" not in blind.history[0]


def _without_seconds(history):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def test_loop_is_reproducible_whatever_ran_before(tokenizer):
    """Same recipe, same start: the same history (every epoch, every metric) and the same weights,
    even when the global RNG was left in a different state by what ran before."""
    data = toy_data()
    train, val = encode(tokenizer, data.train, max_length=16), encode(tokenizer, data.validation, max_length=16)
    recipe = dataclasses.replace(RECIPE, epochs=3)
    runs, models = [], []
    for global_seed in (1, 2):
        model = tiny_bert()  # seeds the global RNG itself: the same start weights
        torch.manual_seed(global_seed)  # ... then a different global state before the loop
        runs.append(finetune_loop(model, train, val, recipe, collator=DataCollatorWithPadding(tokenizer), progress=False))
        models.append(model)
    assert _without_seconds(runs[0].history) == _without_seconds(runs[1].history)
    assert len(runs[0].history) == 3 and runs[0].best_epoch == runs[1].best_epoch
    for (name, a), b in zip(models[0].state_dict().items(), models[1].state_dict().values()):
        assert torch.equal(a, b), name
    other = tiny_bert()
    finetune_loop(other, train, val, dataclasses.replace(recipe, seed=1), collator=DataCollatorWithPadding(tokenizer),
                  progress=False)  # another seed: another shuffle and other dropout masks
    assert not torch.equal(other.classifier.weight, models[0].classifier.weight)


def test_trainer_recipe_trains_evaluates_saves_and_reloads(tokenizer, tmp_path):
    data = toy_data()
    recipe = dataclasses.replace(RECIPE, epochs=4)
    trainer = make_trainer(recipe, tokenizer, tiny_bert(), data, tmp_path / "run", progress=False)
    assert trainer.args.eval_strategy == "epoch" and trainer.args.load_best_model_at_end
    assert trainer.args.weight_decay == 0.01 and trainer.args.warmup_steps == 0.1
    trainer.train()
    metrics = trainer.evaluate()
    assert set(metrics) >= {"eval_accuracy", "eval_precision", "eval_recall", "eval_f1", "eval_loss"}
    trainer.save_model(str(tmp_path / "model"))
    reloaded = BertForSequenceClassification.from_pretrained(tmp_path / "model")
    texts = data.test.texts
    torch.testing.assert_close(predict_proba(reloaded, tokenizer, texts), predict_proba(trainer.model, tokenizer, texts))
    assert trainer.predict(encode(tokenizer, data.test, max_length=16)).predictions.shape == (10, 2)


def test_predict_proba_order_and_errors(tokenizer):
    model = tiny_bert().eval()
    texts = ["a long long long long sentence", "short"]
    both = predict_proba(model, tokenizer, texts)
    one = predict_proba(model, tokenizer, texts[1:])
    torch.testing.assert_close(both[1:], one, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(both.sum(-1), torch.ones(2))
    with pytest.raises(TypeError, match="list of strings"):
        predict_proba(model, tokenizer, "one string")
    with pytest.raises(ValueError, match="texts is empty"):
        predict_proba(model, tokenizer, [])
    model.train()
    torch.testing.assert_close(predict_proba(model, tokenizer, texts), both)  # dropout off inside the call ...
    assert model.training  # ... and the model's own mode given back


def test_padding_speed_reports_both(tokenizer):
    model = tiny_bert().eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = padding_speed(model, tokenizer, POS + NEG, max_length=32, batch_size=4, n_batches=2, rounds=1)
    assert out["examples"] == 8 and out["max_length_tokens_per_example"] == 32
    lengths = sorted(len(tokenizer(t)["input_ids"]) for t in POS + NEG)
    assert lengths[0] <= out["dynamic_tokens_per_example"] <= lengths[-1] < 10  # each batch as wide as its longest
    assert out["speedup"] == pytest.approx(out["dynamic_examples_per_s"] / out["max_length_examples_per_s"])
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # no optimizer step
    assert not model.training and all(p.grad is None for p in model.parameters())  # mode restored, gradients cleared
    # fewer texts than batch_size * n_batches: the last batch is short, not an IndexError
    assert padding_speed(model, tokenizer, POS, max_length=32, batch_size=4, n_batches=2, rounds=1)["examples"] == 5


def test_most_confident_mistakes():
    probs = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.7, 0.3]])
    rows = most_confident_mistakes(["a", "b", "c", "d"], [1, 1, 0, 0], probs, ["neg", "pos"], k=5)
    assert [r["text"] for r in rows] == ["a", "c"] and rows[0]["predicted"] == "neg" and rows[0]["confidence"] == 0.9
    with pytest.raises(ValueError, match="probabilities"):
        most_confident_mistakes(["a"], [0], probs, ["neg", "pos"])


def test_classifier_from_mlm_copies_the_encoder():
    mlm = MiniBertForMaskedLM(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                         intermediate_size=32, max_position_embeddings=16))
    clf = classifier_from_mlm(mlm, num_labels=3)
    assert clf.classifier.out_features == 3
    torch.testing.assert_close(clf.bert.embeddings.word_embeddings.weight, mlm.bert.embeddings.word_embeddings.weight)
    assert torch.equal(classifier_from_mlm(mlm, 3, seed=0).classifier.weight, clf.classifier.weight)  # seeded head
    assert not torch.equal(classifier_from_mlm(mlm, 3, seed=1).classifier.weight, clf.classifier.weight)


def test_cli_trains_data_parallel_under_torchrun(tmp_path):
    """Two CPU processes (gloo) through Trainer's own DDP: the command the README gives for GPUs."""
    import json
    import os
    import subprocess
    import sys

    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "fmteach.finetune",
           "--profile", "smoke", "--n-train", "64", "--n-eval", "32", "--out", str(tmp_path), "--no-progress"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["processes"] == 2 and set(results["test"]) == {"accuracy", "precision", "recall", "f1"}
    assert (tmp_path / "model" / "model.safetensors").exists() and done.stdout.count("final:") == 1
