"""The pretraining recipe, its command line and the cached mini-BERT later lessons load."""

import json
from dataclasses import replace

import pytest
import torch

from fmteach import cache
from fmteach._io import CheckpointError
from fmteach.pretrain_mlm import MLMRecipe, load_mini_bert_mlm
from fmteach.pretrain_mlm.__main__ import main as pretrain_mlm_main
from fmteach.profile import PROFILES


@pytest.mark.parametrize("profile", PROFILES)
def test_recipes_are_built_from_the_config_presets(profile):
    recipe = MLMRecipe.from_profile(profile)
    assert recipe.bert == recipe.bert.from_profile(recipe.vocab_size, profile, **{
        k: getattr(recipe.bert, k) for k in ("hidden_size", "intermediate_size", "hidden_dropout_prob",
                                             "attention_probs_dropout_prob")})
    assert recipe.train.seed == 0 and recipe.train.weight_decay == 0.01 and recipe.train.eval_iters == 1
    assert MLMRecipe.from_profile(profile, seq_len=16).seq_len == 16  # overrides replace fields
    with pytest.raises(TypeError):
        MLMRecipe.from_profile(profile, no_such_field=1)


def test_smoke_recipe_is_small_and_cpu_recipe_is_not():
    smoke, cpu = MLMRecipe.from_profile("smoke"), MLMRecipe.from_profile("cpu")
    assert (smoke.bert.hidden_size, smoke.train.max_steps) == (64, 400)
    assert (cpu.bert.hidden_size, cpu.train.max_steps) == (128, 3000)


def test_cli_writes_history_curves_and_checkpoint_and_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["--profile", "smoke", "--out", str(out), "--max-steps", "4", "--no-progress", "--dropout", "0.2",
            "--metrics-jsonl", str(tmp_path / "m.jsonl")]
    pretrain_mlm_main(args + ["--stop-at-step", "2"])
    first = json.loads((out / "history.json").read_text())
    assert first["summary"]["steps"] == 2 and first["summary"]["max_steps"] == 4
    pretrain_mlm_main(args + ["--resume"])
    summary = json.loads((out / "history.json").read_text())["summary"]
    assert summary["steps"] == 4 and (out / "curves.png").stat().st_size > 10_000
    ckpt = torch.load(out / "ckpt.pt", map_location="cpu", weights_only=True)
    assert ckpt["step"] == 4  # --dropout replaced the smoke preset's 0.0 in both places
    assert ckpt["model_config"]["hidden_dropout_prob"] == ckpt["model_config"]["attention_probs_dropout_prob"] == 0.2
    events = [json.loads(line)["event"] for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert events.count("start") == 2 and events.count("final") == 2 and "eval" in events
    assert "held-out loss" in capsys.readouterr().out


@pytest.mark.parametrize("flag, value, message", [("--max-steps", "0", "--max-steps must be >= 1, got 0"),
                                                  ("--stop-at-step", "0", "--stop-at-step must be >= 1, got 0"),
                                                  ("--checkpoint-interval", "-1", "must be >= 0, got -1"),
                                                  ("--dropout", "1", "--dropout must be in [0, 1), got 1.0")])
def test_cli_rejects_bad_counts(tmp_path, capsys, flag, value, message):
    with pytest.raises(SystemExit) as info:
        pretrain_mlm_main(["--out", str(tmp_path), flag, value])
    assert info.value.code == 2 and message in capsys.readouterr().err


def test_load_mini_bert_mlm_trains_once_then_loads_the_same_weights(tmp_path, monkeypatch):
    tiny = MLMRecipe.from_profile("smoke")
    tiny = replace(tiny, train=replace(tiny.train, max_steps=3, eval_interval=3), val_rows=8)
    monkeypatch.setattr(MLMRecipe, "from_profile", classmethod(lambda cls, profile=None, **o: tiny))
    monkeypatch.setattr(cache, "cache_dir", lambda: tmp_path)
    torch.manual_seed(11)
    expected_next = torch.rand(2)
    torch.manual_seed(11)
    trained, tokenizer = load_mini_bert_mlm("smoke", progress=False)
    torch.testing.assert_close(torch.rand(2), expected_next)  # training did not reseed the caller
    files = list(tmp_path.glob("mini-bert-mlm-smoke-*.safetensors"))
    assert len(files) == 1 and not trained.training
    loaded, _ = load_mini_bert_mlm("smoke")
    for (name, a), b in zip(trained.state_dict().items(), loaded.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    assert loaded.cls.predictions.decoder.weight is loaded.bert.embeddings.word_embeddings.weight  # still tied
    files[0].write_bytes(files[0].read_bytes()[:100])
    with pytest.raises(CheckpointError, match=files[0].name + ".*delete it to train afresh"):
        load_mini_bert_mlm("smoke")
