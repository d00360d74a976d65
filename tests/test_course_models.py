"""The shipped course models: they load in seconds, reach the promised metrics, and refuse altered files."""

import json
import shutil

import pytest
import torch

from fmteach import course_models
from fmteach.cache import MissingAssetError
from fmteach.course_models import COURSE_MODELS, course_model, fixed_slice_loss, rebuild_command

MAX_BYTES = 25_000_000  # per file: a course model must stay small enough to ship in the wheel


@pytest.fixture(scope="module")
def minigpt():
    return course_model("minigpt-shakespeare")


@pytest.fixture(scope="module")
def minibert():
    return course_model("minibert-shakespeare")


@pytest.mark.parametrize("name", list(COURSE_MODELS))
def test_folder_is_safetensors_json_and_small(name):
    from safetensors import safe_open

    folder = course_models.course_model_dir(name)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["command"] == rebuild_command(name)
    assert {"git_commit", "seed", "torch", "train_seconds", "metrics", "date", "machine"} <= set(manifest)
    assert sorted(p.name for p in folder.iterdir()) == sorted([*manifest["sha256"], "manifest.json"])
    assert not any(p.suffix in {".pt", ".pth", ".bin", ".pkl"} for p in folder.iterdir())  # no pickle
    assert all(p.stat().st_size <= MAX_BYTES for p in folder.iterdir())
    with safe_open(str(folder / "model.safetensors"), framework="pt") as weights:  # parses without pickle
        assert all(weights.get_tensor(k).dtype == torch.float32 for k in weights.keys())


def test_minigpt_heldout_loss(minigpt):
    from fmteach.lm_data import load_shakespeare_chars

    data = load_shakespeare_chars()  # the held-out plays: macbeth, twelfth-night, richard-ii, the-tempest
    assert minigpt.tokenizer.chars == data.tokenizer.chars
    assert not minigpt.model.training
    loss = fixed_slice_loss(minigpt.model, data.val)
    assert loss <= 1.6, f"shipped MiniGPT: held-out loss {loss:.3f} > 1.6"
    assert abs(loss - minigpt.manifest["metrics"]["fixed_slice_val_loss"]) < 0.01  # the manifest tells the truth


def test_minibert_heldout_accuracy(minibert):
    from fmteach.mlm import MLMData, mlm_metrics
    from fmteach.pretrain_mlm import MLMRecipe

    recipe = MLMRecipe.course()
    data = MLMData.from_shakespeare(minibert.tokenizer, seq_len=recipe.seq_len)
    batches = data.validation_batches(n_rows=recipe.val_rows)
    measured = mlm_metrics(minibert.model, batches, mask_token_id=minibert.tokenizer.mask_token_id)
    baseline = data.most_frequent_token_accuracy(batches)
    metrics = minibert.manifest["metrics"]  # the manifest tells the truth
    assert abs(measured["accuracy_at_mask"] - metrics["heldout_accuracy_at_mask"]) < 0.002
    assert abs(measured["top5_at_mask"] - metrics["heldout_top5_at_mask"]) < 0.002
    assert abs(baseline - metrics["most_frequent_token_accuracy_at_mask"]) < 1e-4
    # the copies inflate the mixed figure: what the model keeps unchanged it mostly repeats
    assert measured["accuracy_unchanged"] > measured["accuracy_all_selected"] > measured["accuracy_at_mask"]
    # 0.265 shipped: off the plateau, more than four times the baseline (the 0.30 aimed at was missed, RESULTS.md)
    assert measured["accuracy_at_mask"] >= 0.25 and measured["accuracy_at_mask"] > 4 * baseline


def test_minibert_fills_the_rule_drawn_blanks(minibert):
    from fmteach.mlm_probes import cloze_probes, probe_predictions, top_k_hit_rate

    probes = cloze_probes(minibert.tokenizer, n=32)  # drawn by a rule fixed before any model was scored
    # 14 of 32 shipped (44%); the 50% aimed at was missed (RESULTS.md); the untrained model: none
    assert top_k_hit_rate(probes, probe_predictions(minibert.model, minibert.tokenizer, probes)) >= 0.4


def test_minibert_curve_leaves_the_unigram_plateau(minibert):
    from fmteach.course_models import course_curve
    from fmteach.viz import plateau_exit_step

    evals, metrics = course_curve("minibert-shakespeare")["evals"], minibert.manifest["metrics"]
    assert [e["step"] for e in evals] == sorted({e["step"] for e in evals}) and evals[-1]["step"] == metrics["steps"]
    assert abs(evals[-1]["accuracy_at_mask"] - metrics["heldout_accuracy_at_mask"]) < 0.01  # it ends where the model does
    exit_step = plateau_exit_step(evals, metrics["most_frequent_token_accuracy_at_mask"])
    assert exit_step is not None and 1000 < exit_step < evals[-1]["step"]
    assert minibert.model.config.layer_norm_placement == "pre"


def test_minibert_tokenizer_is_the_course_vocabulary(minibert):
    from fmteach.wordpiece import train_wordpiece_tokenizer

    assert minibert.tokenizer.get_vocab() == train_wordpiece_tokenizer(8000).get_vocab()
    assert minibert.tokenizer.tokenize("Wherefore art thou Romeo?") == ["wherefore", "art", "thou", "romeo", "?"]


@pytest.fixture()
def copied(tmp_path, monkeypatch):
    """Both model folders copied to tmp_path, and the loader pointed there: tests may damage them."""
    for name in COURSE_MODELS:
        shutil.copytree(course_models.course_model_dir(name), tmp_path / name)
    monkeypatch.setattr(course_models, "MODELS_DIR", tmp_path)
    return tmp_path


@pytest.mark.parametrize("name", list(COURSE_MODELS))
def test_altered_file_raises_with_rebuild_command(copied, name):
    path = copied / name / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 1  # one flipped bit in the last weight
    path.write_bytes(bytes(data))
    with pytest.raises(MissingAssetError, match="model.safetensors has sha256") as info:
        course_model(name)
    assert rebuild_command(name) in str(info.value)


@pytest.mark.parametrize("name, filename", [(n, f) for n in COURSE_MODELS
                                            for f in ("config.json", COURSE_MODELS[n].tokenizer_file, "manifest.json")])
def test_missing_file_raises_with_rebuild_command(copied, name, filename):
    (copied / name / filename).unlink()
    with pytest.raises(MissingAssetError, match=f"{filename} is missing") as info:
        course_model(name)
    assert rebuild_command(name) in str(info.value)


def test_unknown_name_is_a_clear_error():
    with pytest.raises(ValueError, match="name='gpt-5' is not a course model"):
        course_model("gpt-5")


def test_fixed_slice_loss_checks_its_input(minigpt):
    with pytest.raises(ValueError, match="need a 1-D tensor"):
        fixed_slice_loss(minigpt.model, torch.zeros(10, dtype=torch.long))


def test_the_shipped_minigpt_has_its_curve_and_the_cpu_run_beside_it():
    from fmteach.course_models import course_curve, recorded_run

    evals = course_curve("minigpt-shakespeare")["evals"]
    manifest = course_model("minigpt-shakespeare").manifest
    assert evals[-1]["step"] == manifest["metrics"]["steps"]
    assert abs(evals[-1]["val_loss"] - manifest["metrics"]["final_val_loss"]) < 1e-3  # the curve ends where the model does
    assert all(b["seconds"] > a["seconds"] and b["step"] > a["step"] for a, b in zip(evals, evals[1:]))
    assert manifest["metrics"]["final_val_loss"] <= 1.60  # the course model's target
    cpu = recorded_run("minigpt-cpu-profile")
    assert cpu["evals"][-1]["val_loss"] > manifest["metrics"]["final_val_loss"] and "--profile cpu" in cpu["command"]
    with pytest.raises(ValueError, match=r"is not a recorded run; choose one of .*minibert-post-ln-cpu-profile, .*minibert-transfer-movie-reviews, .*minigpt-cpu-profile"):
        recorded_run("nope")


def test_the_mixed_minibert_is_the_same_recipe_on_more_text(minibert):
    """minibert-mixed: the course recipe and architecture, pretrained on the training plays plus the training
    splits of the English data sets, with its own vocabulary; measured on the same held-out plays."""
    from fmteach.mlm import MLMData, mlm_metrics
    from fmteach.pretrain_mlm import MLMRecipe
    from fmteach.wordpiece import train_wordpiece_tokenizer

    mixed = course_model("minibert-mixed")
    assert mixed.manifest["corpus"] == "mixed" and "--corpus mixed" in mixed.manifest["command"]
    assert mixed.model.config == minibert.model.config                     # the same architecture
    assert mixed.tokenizer.get_vocab() == train_wordpiece_tokenizer(8000, corpus="mixed").get_vocab()
    assert mixed.tokenizer.tokenize("a boring movie") == ["a", "boring", "movie"]  # modern words stay whole
    recipe = MLMRecipe.course(corpus="mixed")
    data = MLMData.from_corpus(mixed.tokenizer, "mixed", seq_len=recipe.seq_len)
    batches = data.validation_batches(n_rows=recipe.val_rows)
    measured = mlm_metrics(mixed.model, batches, mask_token_id=mixed.tokenizer.mask_token_id)
    metrics = mixed.manifest["metrics"]  # the manifest tells the truth
    assert abs(measured["accuracy_at_mask"] - metrics["heldout_accuracy_at_mask"]) < 0.002
    assert abs(data.most_frequent_token_accuracy(batches) - metrics["most_frequent_token_accuracy_at_mask"]) < 1e-4
    # 0.195 shipped: off the unigram plateau (0.056), below the Shakespeare-only model on Shakespeare (0.265)
    assert 3 * metrics["most_frequent_token_accuracy_at_mask"] < measured["accuracy_at_mask"]
    assert measured["accuracy_at_mask"] < minibert.manifest["metrics"]["heldout_accuracy_at_mask"]
