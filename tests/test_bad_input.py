"""Bad input to the public functions of the model, training and checkpoint code: a clear error that
names the argument (or the file), never an IndexError from deep inside torch or silent success.
Each case here failed in one of those ways before it was given its check."""

import json

import pytest
import torch

from fmteach._io import CheckpointError
from fmteach.bert import MiniBertForMaskedLM, MiniBertForSequenceClassification, MiniBertModel
from fmteach.bert_config import BertConfig
from fmteach.bert_loading import load_hf_bert_state_dict
from fmteach.model import GPTConfig, MiniGPT
from fmteach.train import CHECKPOINT_NAME, train
from fmteach.train_config import TrainConfig
from fmteach.train_lm import load_trained

CFG = BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16,
                 max_position_embeddings=6)
IDS = torch.ones(2, 4, dtype=torch.long)


@pytest.fixture(scope="module")
def gpt():
    torch.manual_seed(0)
    return MiniGPT(GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_head=1, n_embd=8)).eval()


@pytest.mark.parametrize("kwargs, match", [
    (dict(max_new_tokens=-1), "max_new_tokens must be an int >= 0, got -1"),
    (dict(max_new_tokens=2.5), "max_new_tokens must be an int >= 0, got 2.5"),
    (dict(max_new_tokens=2, temperature=-0.5), "temperature"),
    (dict(max_new_tokens=True), "max_new_tokens must be an int >= 0, got True"),
    (dict(max_new_tokens=2, temperature=True), "temperature"),
    (dict(max_new_tokens=2, top_k=0), "top_k must be a positive int or None, got 0"),
    (dict(max_new_tokens=2, top_k=1.5), "top_k must be a positive int or None, got 1.5"),
    (dict(max_new_tokens=2, top_k=True), "top_k must be a positive int or None, got True"),
])
def test_generate_rejects_bad_counts(gpt, kwargs, match):
    with pytest.raises(ValueError, match=match):
        gpt.generate(torch.zeros(1, 2, dtype=torch.long), **kwargs)


def test_generate_rejects_an_empty_prompt_and_still_works_with_zero_tokens(gpt):
    with pytest.raises(ValueError, match="empty prompt"):
        gpt.generate(torch.zeros(1, 0, dtype=torch.long), 2)
    prompt = torch.zeros(1, 3, dtype=torch.long)
    assert torch.equal(gpt.generate(prompt, 0), prompt)


@pytest.mark.parametrize("call, error, match", [
    (lambda m: m(IDS + 30), ValueError, r"input_ids holds ids in \[31, 31\], outside the vocabulary \[0, 20\)"),
    (lambda m: m(IDS - 5), ValueError, "input_ids holds ids in"),
    (lambda m: m(IDS[:, :0]), ValueError, "no tokens"),
    (lambda m: m(IDS, torch.ones(2, 3, dtype=torch.long)), ValueError,
     r"attention_mask has shape \(2, 3\), input_ids has \(2, 4\)"),
    (lambda m: m(IDS, token_type_ids=IDS * 5), ValueError, r"token_type_ids holds values in \[5, 5\]: expected \[0, 2\)"),
    (lambda m: m(IDS, token_type_ids=IDS[:, :3]), ValueError, "token_type_ids has shape"),
])
def test_mini_bert_checks_ids_masks_and_segments(call, error, match):
    with pytest.raises(error, match=match):
        call(MiniBertModel(CFG))


def test_heads_check_their_labels():
    cls, mlm = MiniBertForSequenceClassification(CFG), MiniBertForMaskedLM(CFG)
    with pytest.raises(ValueError, match=r"labels holds values in \[0, 5\]: expected \[0, 2\)"):
        cls(IDS, labels=torch.tensor([0, 5]))
    with pytest.raises(ValueError, match=r"labels has shape \(3,\): expected \(2,\)"):
        cls(IDS, labels=torch.tensor([0, 1, 1]))
    with pytest.raises(TypeError, match="labels must be a tensor of integer class ids"):
        cls(IDS, labels=torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"expected \[0, 20\) or -100"):
        mlm(IDS, labels=IDS + 40)
    with pytest.raises(ValueError, match=r"labels has shape \(2, 2\): expected \(2, 4\)"):
        mlm(IDS, labels=IDS[:, :2])
    labels = torch.full_like(IDS, -100)
    labels[0, 1] = 3
    assert mlm(IDS, labels=labels).loss.isfinite()  # -100 (not scored) is allowed


@pytest.mark.parametrize("text, error, match", [
    (None, FileNotFoundError, "no such file"),
    ("{not json", ValueError, "is not valid JSON"),
    ("[1, 2]", ValueError, "holds a JSON list"),
    (json.dumps({"model_type": "gpt2"}), ValueError, "is not a BERT"),
])
def test_bert_config_from_json_names_the_file(tmp_path, text, error, match):
    path = tmp_path / "config.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(error, match=match) as info:
        BertConfig.from_json(path)
    assert "config.json" in str(info.value)


def test_loading_weights_from_a_file_that_is_not_safetensors(tmp_path):
    (tmp_path / "model.safetensors").write_text("garbage")
    with pytest.raises(ValueError, match="model.safetensors cannot be read as safetensors weights"):
        load_hf_bert_state_dict(MiniBertModel(CFG), tmp_path / "model.safetensors")


def _tiny_run(tmp_path, **config):
    torch.manual_seed(0)
    model = MiniGPT(GPTConfig(vocab_size=5, block_size=4, n_layer=1, n_head=1, n_embd=8))
    data = torch.randint(0, 5, (64,), generator=torch.Generator().manual_seed(0))

    def get_batch(split, n, gen):
        starts = torch.randint(0, len(data) - 5, (n,), generator=gen)
        return torch.stack([data[s:s + 4] for s in starts]), torch.stack([data[s + 1:s + 5] for s in starts])

    cfg = TrainConfig(max_steps=2, batch_size=4, warmup_steps=1, eval_interval=2, eval_iters=1, **config)
    return model, get_batch, cfg


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", None])
def test_resuming_from_a_bad_checkpoint_names_the_file(tmp_path, content):
    model, get_batch, cfg = _tiny_run(tmp_path)
    if content is None:  # a real torch file that is not ours
        torch.save({"weights": torch.ones(2)}, tmp_path / CHECKPOINT_NAME)
    else:
        (tmp_path / CHECKPOINT_NAME).write_bytes(content)
    with pytest.raises(CheckpointError, match=CHECKPOINT_NAME) as info:
        train(model, get_batch, cfg, out_dir=tmp_path, resume=True, progress=False)
    assert "fmteach.train" in str(info.value)


def test_load_trained_names_the_missing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"{CHECKPOINT_NAME}: no such file .*fmteach.train_lm"):
        load_trained(tmp_path)


def test_train_checks_its_arguments(tmp_path):
    model, get_batch, cfg = _tiny_run(tmp_path)
    with pytest.raises(TypeError, match="config must be a TrainConfig, got dict"):
        train(model, get_batch, {"max_steps": 2})
    with pytest.raises(ValueError, match="stop_at_step must be None or >= 0, got -1"):
        train(model, get_batch, cfg, stop_at_step=-1)


def test_train_gives_the_callers_rng_back(tmp_path):
    model, get_batch, cfg = _tiny_run(tmp_path)
    torch.manual_seed(5)
    expected = torch.rand(4)
    torch.manual_seed(5)
    train(model, get_batch, cfg, progress=False)
    torch.testing.assert_close(torch.rand(4), expected)


def test_data_helpers_reject_bad_sizes_and_single_strings():
    from fmteach.leakage import naive_split
    from fmteach.lm_data import get_batch
    from fmteach.text_datasets import TextSplit

    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        get_batch(torch.arange(50), 0, 8)
    with pytest.raises(ValueError, match="block_size must be a positive int, got 2.5"):
        get_batch(torch.arange(50), 2, 2.5)
    with pytest.raises(TypeError, match="texts must be a list of strings, got one str"):
        TextSplit("ab", [0, 1])  # len("ab") == 2: it used to pass as two one-letter texts
    with pytest.raises(TypeError, match="seed must be an int, got 0.5"):
        naive_split([("a", 0)] * 5, seed=0.5)
