"""MiniBert: Hugging Face names, real MiniLM weights reproduce transformers' BertModel, clear errors."""

import warnings

import pytest
import torch
from transformers import (
    AutoModel,
    AutoTokenizer,
    BertConfig as HFBertConfig,
    BertForMaskedLM,
    BertForSequenceClassification,
)

from fmteach.assets import pretrained_bert
from fmteach.attention import attend, scaled_dot_product_attention
from fmteach.bert import MiniBertForMaskedLM, MiniBertForSequenceClassification, MiniBertModel
from fmteach.bert_config import BertConfig
from fmteach.bert_loading import hf_name_to_ours


@pytest.fixture(scope="module")
def minilm():
    path = pretrained_bert()
    tok = AutoTokenizer.from_pretrained(path)
    batch = tok(["The quick brown fox jumps over the lazy dog", "To be, or not to be"], padding=True, return_tensors="pt")
    return path, tok, batch


def test_minilm_hidden_states_and_attentions_equal_transformers(minilm):
    path, _, batch = minilm
    ours = MiniBertModel.from_pretrained(path)
    theirs = AutoModel.from_pretrained(path, attn_implementation="eager").eval()
    with torch.no_grad():
        a = ours(**batch, output_attentions=True)
        b = theirs(**batch, output_hidden_states=True, output_attentions=True)
    real = batch["attention_mask"].bool()
    assert len(a.hidden_states) == len(b.hidden_states) == 7
    for mine, ref in zip(a.hidden_states, b.hidden_states):
        torch.testing.assert_close(mine[real], ref[real], atol=1e-5, rtol=1e-5)
    for mine, ref in zip(a.attentions, b.attentions):
        torch.testing.assert_close(mine, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a.pooler_output, b.pooler_output, atol=1e-5, rtol=1e-5)


def test_small_random_hf_bert_round_trip(tmp_path):
    """A tiny HF BertForMaskedLM saved to disk loads into MiniBertForMaskedLM with equal logits."""
    cfg = HFBertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                       intermediate_size=64, max_position_embeddings=40, attn_implementation="eager")
    torch.manual_seed(0)
    hf = BertForMaskedLM(cfg).eval()
    hf.save_pretrained(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a full MLM checkpoint: nothing missing, nothing unused
        ours = MiniBertForMaskedLM.from_pretrained(tmp_path)
    ids = torch.randint(0, 100, (3, 12))
    am = torch.ones_like(ids)
    am[0, 8:] = 0
    with torch.no_grad():
        logits = ours(ids, am).logits
        ref = hf(input_ids=ids, attention_mask=am).logits
    real = am.bool()
    torch.testing.assert_close(logits[real], ref[real], atol=1e-5, rtol=1e-5)
    assert ours.cls.predictions.decoder.weight is ours.bert.embeddings.word_embeddings.weight


def test_missing_head_is_reported_by_name(minilm):
    path, _, _ = minilm
    with pytest.warns(UserWarning, match=r"freshly initialised: \['classifier.bias', 'classifier.weight'\]"):
        clf = MiniBertForSequenceClassification.from_pretrained(path, num_labels=3)
    assert clf.load_report["missing_heads"] == ["classifier.bias", "classifier.weight"]
    with pytest.raises(KeyError, match="lacks head weights"):
        MiniBertForSequenceClassification.from_pretrained(path, strict_heads=True)


def test_missing_encoder_weight_raises(tmp_path):
    cfg = HFBertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=32, max_position_embeddings=20)
    BertForSequenceClassification(cfg).save_pretrained(tmp_path)
    from safetensors.torch import load_file, save_file

    weights = load_file(tmp_path / "model.safetensors")
    del weights["bert.encoder.layer.0.attention.self.query.weight"]
    weights["bert.encoder.layer.0.mystery.weight"] = torch.zeros(1)
    save_file(weights, tmp_path / "model.safetensors")
    with pytest.raises(KeyError, match=r"lacks encoder weights \['bert.encoder.layer.0.attention.self.query.weight'\]"):
        MiniBertForSequenceClassification.from_pretrained(tmp_path)


def test_name_mapping():
    assert hf_name_to_ours("encoder.layer.3.attention.self.query.weight", "bert.") == "bert.encoder.layer.3.attention.self.query.weight"
    assert hf_name_to_ours("bert.embeddings.LayerNorm.gamma", "") == "embeddings.LayerNorm.weight"
    assert hf_name_to_ours("embeddings.position_ids", "") is None
    assert hf_name_to_ours("cls.predictions.bias", "bert.") == "cls.predictions.bias"


def test_mlm_loss_only_on_labelled_positions():
    torch.manual_seed(0)
    model = MiniBertForMaskedLM(BertConfig.smoke(vocab_size=60)).eval()
    ids = torch.randint(5, 60, (2, 10))
    labels = torch.full_like(ids, -100)
    labels[0, 3] = ids[0, 3]
    out = model(ids, labels=labels)
    logits, loss = out.logits, out.loss
    expected = torch.nn.functional.cross_entropy(logits[0, 3:4], ids[0, 3:4])
    torch.testing.assert_close(loss, expected)


def test_fast_and_teaching_attention_paths_agree():
    torch.manual_seed(0)
    model = MiniBertModel(BertConfig.smoke(vocab_size=60)).eval()
    ids = torch.randint(0, 60, (2, 9))
    am = torch.ones_like(ids)
    am[1, 5:] = 0
    with torch.no_grad():
        fast = model(ids, am).last_hidden_state
        slow = model(ids, am, output_attentions=True)
    torch.testing.assert_close(fast, slow.last_hidden_state, atol=1e-5, rtol=1e-5)
    assert len(slow.attentions) == 2 and slow.attentions[0].shape == (2, 4, 9, 9)
    assert (slow.attentions[0][1, ..., 5:] == 0).all()


def test_attend_causal_with_mask_matches_teaching_path():
    q = torch.randn(2, 3, 6, 8)
    am = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]]).bool()[:, None, None, :]
    fast, none = attend(q, q, q, am, is_causal=True)
    slow, weights = attend(q, q, q, am, is_causal=True, need_weights=True)
    assert none is None and weights.shape == (2, 3, 6, 6)
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(slow, scaled_dot_product_attention(q, q, q, torch.ones(6, 6, dtype=torch.bool).tril() & am)[0])


def test_errors_name_the_problem():
    model = MiniBertModel(BertConfig.smoke(vocab_size=60))
    with pytest.raises(ValueError, match=r"seq_len 65 exceeds max_position_embeddings=64"):
        model(torch.zeros(1, 65, dtype=torch.long))
    with pytest.raises(TypeError, match="integer token ids"):
        model(torch.zeros(1, 5))
    with pytest.raises(ValueError, match=r"input_ids has shape \(5,\)"):
        model(torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="hidden_size=10 is not divisible by num_attention_heads=4"):
        BertConfig(hidden_size=10, num_attention_heads=4)


def test_pre_layernorm_encoder_equals_torch_norm_first_layers():
    """layer_norm_placement="pre" computes torch's TransformerEncoderLayer(norm_first=True) stack
    plus a final LayerNorm, weight for weight; "post" would not (the two placements differ)."""
    from fmteach.bert import MiniBertModel
    from fmteach.bert_config import BertConfig

    config = BertConfig(vocab_size=50, hidden_size=24, num_hidden_layers=2, num_attention_heads=3,
                        intermediate_size=40, max_position_embeddings=16, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0, layer_norm_eps=1e-5, layer_norm_placement="pre")
    torch.manual_seed(0)
    ours = MiniBertModel(config, add_pooling_layer=False).eval()
    for p in ours.parameters():  # LayerNorm gains and biases away from 1 and 0, so a misplaced LN shows
        torch.nn.init.normal_(p, std=0.3)
    layers = []
    for layer in ours.encoder.layer:
        ref = torch.nn.TransformerEncoderLayer(24, 3, 40, dropout=0.0, activation="gelu", layer_norm_eps=1e-5,
                                               batch_first=True, norm_first=True)
        att = layer.attention
        with torch.no_grad():
            ref.self_attn.in_proj_weight.copy_(torch.cat([att.self.query.weight, att.self.key.weight, att.self.value.weight]))
            ref.self_attn.in_proj_bias.copy_(torch.cat([att.self.query.bias, att.self.key.bias, att.self.value.bias]))
            ref.self_attn.out_proj.load_state_dict(att.output.dense.state_dict())
            ref.norm1.load_state_dict(att.output.LayerNorm.state_dict())
            ref.linear1.load_state_dict(layer.intermediate.dense.state_dict())
            ref.linear2.load_state_dict(layer.output.dense.state_dict())
            ref.norm2.load_state_dict(layer.output.LayerNorm.state_dict())
        layers.append(ref.eval())
    ids = torch.randint(5, 50, (2, 7))
    attention_mask = torch.tensor([[1] * 7, [1] * 5 + [0] * 2])
    x = ours.embeddings(ids, torch.zeros_like(ids))
    for ref in layers:
        x = ref(x, src_key_padding_mask=attention_mask == 0)
    expected = ours.encoder.LayerNorm(x)
    got = ours(ids, attention_mask).last_hidden_state
    torch.testing.assert_close(got[0], expected[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got[1, :5], expected[1, :5], rtol=1e-5, atol=1e-5)  # padded rows are not compared
    post = MiniBertModel(replace_placement(config, "post"), add_pooling_layer=False).eval()
    post.load_state_dict({k: v for k, v in ours.state_dict().items() if not k.startswith("encoder.LayerNorm")})
    assert not torch.allclose(post(ids, attention_mask).last_hidden_state[0], expected[0], atol=1e-3)


def replace_placement(config, placement):
    from dataclasses import replace

    return replace(config, layer_norm_placement=placement)


def test_layer_norm_placement_is_checked():
    from fmteach.bert_config import BertConfig

    with pytest.raises(ValueError, match="layer_norm_placement must be 'post' or 'pre', got 'middle'"):
        BertConfig(layer_norm_placement="middle")
