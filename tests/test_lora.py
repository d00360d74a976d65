"""LoRA from scratch (fmteach.applications.lora, lesson 12), proved equal to the peft library's LoRA
on the same weights: outputs, gradients, merging and trainable-parameter counts. Tiny models, seconds."""

import copy

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import BertConfig as HFBertConfig, BertModel
from transformers.modeling_outputs import BaseModelOutputWithPoolingAndCrossAttentions

from fmteach.applications import lora
from fmteach.applications.training import batches, fit
from tests.tiny import tiny_bert

# peft 0.21.2 asks transformers 5.24 for a renamed attribute; nothing of ours
pytestmark = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")

R, ALPHA = 4, 8.0


def tiny_bert_model(seed: int = 0) -> BertModel:
    torch.manual_seed(seed)
    return BertModel(HFBertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                  intermediate_size=64, max_position_embeddings=32)).eval()


def ids(seed: int = 1, vocab: int = 100) -> dict:
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(1, vocab, (3, 7), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 5:] = 0  # padding takes part too
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def output_of(out) -> torch.Tensor:
    return out.last_hidden_state if isinstance(out, BaseModelOutputWithPoolingAndCrossAttentions) else out.logits


# ---------------------------------------------------------------------------------------------- one layer

def linear(seed: int = 0, n_in: int = 12, n_out: int = 20) -> torch.nn.Linear:
    torch.manual_seed(seed)
    return torch.nn.Linear(n_in, n_out).double()


def test_lora_linear_starts_as_the_base_layer_then_adds_the_scaled_low_rank_product():
    base = linear()
    layer = lora.LoRALinear(base, r=3, alpha=6.0)
    x = torch.randn(2, 5, 12, dtype=torch.float64)  # leading dimensions pass through
    assert torch.equal(layer(x), base(x))  # B = 0: exactly the pretrained layer
    assert layer.lora_A.shape == (3, 12) and layer.lora_B.shape == (20, 3) and layer.lora_A.abs().sum() > 0
    with torch.no_grad():
        layer.lora_B.normal_()
    A, B, W, b = layer.lora_A, layer.lora_B, base.weight, base.bias
    expected = x @ W.T + b + (6.0 / 3) * (x @ A.T @ B.T)
    torch.testing.assert_close(layer(x), expected, rtol=0, atol=1e-12)
    assert not torch.allclose(layer(x), x @ W.T + b + x @ A.T @ B.T)  # the scaling matters
    assert torch.linalg.matrix_rank(layer.delta_weight()) == 3


def test_merge_gives_one_plain_linear_with_the_same_outputs():
    layer = lora.LoRALinear(linear(), r=3, alpha=6.0)
    with torch.no_grad():
        layer.lora_B.normal_()
    merged = layer.merge()
    assert type(merged) is torch.nn.Linear and (merged.in_features, merged.out_features) == (12, 20)
    torch.testing.assert_close(merged.weight, layer.base_layer.weight + 2.0 * layer.lora_B @ layer.lora_A)
    x = torch.randn(4, 12, dtype=torch.float64)
    torch.testing.assert_close(merged(x), layer(x), rtol=0, atol=1e-12)
    assert not merged.weight.requires_grad  # frozen, as the base was


def test_the_frozen_base_gets_no_gradient_and_does_not_move():
    layer = lora.LoRALinear(linear(), r=2, alpha=2.0)
    frozen = layer.base_layer.weight.clone()
    optimizer = torch.optim.SGD([p for p in layer.parameters() if p.requires_grad], lr=0.1)
    assert lora.count_trainable(layer) == 2 * (12 + 20)
    for _ in range(2):
        optimizer.zero_grad()
        layer(torch.randn(8, 12, dtype=torch.float64)).pow(2).sum().backward()
        assert layer.base_layer.weight.grad is None and layer.base_layer.bias.grad is None
        optimizer.step()
    assert torch.equal(layer.base_layer.weight, frozen)
    assert layer.lora_B.abs().sum() > 0  # B moved (A's first gradient is 0: it is multiplied by B = 0)


# ---------------------------------------------------------------------------------------------- equal to peft

def both(base, **extra):
    """Our LoRA and peft's on copies of ``base``, with the same A and B (B made non-zero)."""
    ours = lora.apply_lora(copy.deepcopy(base), R, ALPHA, trainable=extra.get("modules_to_save", ()))
    theirs = get_peft_model(copy.deepcopy(base), LoraConfig(r=R, lora_alpha=ALPHA, target_modules=["query", "value"],
                                                            lora_dropout=0.0, **extra))
    wrapped = {name: m for name, m in ours.named_modules() if isinstance(m, lora.LoRALinear)}
    assert len(wrapped) == 4  # query and value of 2 layers
    with torch.no_grad():
        for name, layer in wrapped.items():
            layer.lora_B.normal_(std=0.1)
            peft_layer = theirs.base_model.model.get_submodule(name)
            peft_layer.lora_A["default"].weight.copy_(layer.lora_A)
            peft_layer.lora_B["default"].weight.copy_(layer.lora_B)
    return ours, theirs, wrapped


@pytest.mark.parametrize("make, extra", [(tiny_bert_model, {}),
                                         (lambda: tiny_bert().eval(), {"modules_to_save": ["classifier"]})],
                         ids=["BertModel", "BertForSequenceClassification"])
def test_outputs_and_gradients_equal_peft(make, extra):
    base = make()
    ours, theirs, wrapped = both(base, **extra)
    batch = ids(vocab=base.config.vocab_size)
    torch.testing.assert_close(output_of(ours(**batch)), output_of(theirs(**batch)))
    assert not torch.allclose(output_of(ours(**batch)), output_of(base(**batch)))  # B != 0 changed something
    for model in (ours, theirs):
        output_of(model(**batch)).pow(2).mean().backward()
    for name, layer in wrapped.items():
        peft_layer = theirs.base_model.model.get_submodule(name)
        torch.testing.assert_close(layer.lora_A.grad, peft_layer.lora_A["default"].weight.grad)
        torch.testing.assert_close(layer.lora_B.grad, peft_layer.lora_B["default"].weight.grad)
        assert layer.lora_A.grad.abs().sum() > 0 and layer.base_layer.weight.grad is None
    assert all(p.grad is None for n, p in ours.named_parameters() if "lora_" not in n and "classifier" not in n)
    if extra:  # peft trains a copy of the head (modules_to_save); ours trains the head itself
        peft_head = theirs.base_model.model.classifier.modules_to_save["default"]
        torch.testing.assert_close(ours.classifier.weight.grad, peft_head.weight.grad)


def test_the_zero_start_is_the_base_model_exactly_and_equals_peft_start():
    base = tiny_bert_model()
    batch = ids()
    ours = lora.apply_lora(copy.deepcopy(base), R, ALPHA)
    theirs = get_peft_model(copy.deepcopy(base), LoraConfig(r=R, lora_alpha=ALPHA, target_modules=["query", "value"]))
    assert torch.equal(ours(**batch).last_hidden_state, base(**batch).last_hidden_state)
    torch.testing.assert_close(theirs(**batch).last_hidden_state, base(**batch).last_hidden_state, rtol=0, atol=0)


def test_merged_equals_unmerged_and_peft_merge_and_unload():
    base = tiny_bert().eval()
    ours, theirs, _ = both(base, modules_to_save=["classifier"])
    batch = ids(vocab=base.config.vocab_size)
    unmerged = ours(**batch).logits
    merged_model = lora.merge_lora(ours)
    assert not any(isinstance(m, lora.LoRALinear) for m in merged_model.modules())
    assert type(merged_model.bert.encoder.layer[0].attention.self.query) is torch.nn.Linear
    torch.testing.assert_close(merged_model(**batch).logits, unmerged)
    peft_merged = theirs.merge_and_unload()
    torch.testing.assert_close(merged_model.bert.encoder.layer[1].attention.self.value.weight,
                               peft_merged.bert.encoder.layer[1].attention.self.value.weight)
    torch.testing.assert_close(merged_model(**batch).logits, peft_merged(**batch).logits)


def test_trainable_counts_match_peft():
    base = tiny_bert().eval()  # hidden 32, 2 layers, 2 labels
    ours = lora.apply_lora(copy.deepcopy(base), R, ALPHA, trainable="classifier")
    theirs = get_peft_model(copy.deepcopy(base), LoraConfig(r=R, lora_alpha=ALPHA, target_modules=["query", "value"],
                                                            modules_to_save=["classifier"]))
    head = 32 * 2 + 2
    assert lora.count_trainable(ours) == 2 * 2 * R * (32 + 32) + head
    trainable, total = lora.count_parameters(ours)
    peft_trainable, peft_total = theirs.get_nb_trainable_parameters()
    assert trainable == peft_trainable
    assert peft_total == total + head  # peft keeps the original head beside its trainable copy
    stored = lora.trainable_state_dict(ours)
    assert sum(t.numel() for t in stored.values()) == trainable
    assert set(stored) == {n for n, _ in ours.named_parameters() if "lora_" in n} | {"classifier.weight", "classifier.bias"}


# ---------------------------------------------------------------------------------------------- the other methods

def test_probe_bitfit_last_k_and_full_train_what_they_say():
    model = tiny_bert().eval()
    total = lora.count_parameters(model)[1]
    head = 32 * 2 + 2
    assert lora.count_trainable(lora.freeze(model, "classifier")) == head
    assert lora.count_trainable(lora.train_last_layers(model, 0, ("classifier",))) == head
    one_layer = sum(p.numel() for p in model.bert.encoder.layer[1].parameters())
    lora.train_last_layers(model, 1, ("classifier",))
    assert lora.count_trainable(model) == one_layer + head
    assert not any(p.requires_grad for p in model.bert.encoder.layer[0].parameters())
    biases = sum(p.numel() for n, p in model.named_parameters() if n.endswith(".bias"))
    assert lora.count_trainable(lora.bitfit(model, ("classifier",))) == biases + 32 * 2  # classifier.bias counted once
    assert lora.count_trainable(model.requires_grad_(True)) == total


def test_apply_lora_is_seeded_and_leaves_the_callers_rng_alone():
    query = "encoder.layer.0.attention.self.query"
    first, second, other = (lora.apply_lora(tiny_bert_model(), 2, 4.0, seed=s).get_submodule(query).lora_A
                            for s in (3, 3, 4))
    assert torch.equal(first, second) and not torch.equal(first, other)
    model = tiny_bert_model()
    state = torch.get_rng_state()
    lora.apply_lora(model, 2, 4.0)
    assert torch.equal(torch.get_rng_state(), state)


def test_names_match_whole_dotted_parts_as_in_peft():
    model = torch.nn.ModuleDict({"query": torch.nn.Linear(4, 4), "query_proj": torch.nn.Linear(4, 4),
                                 "block": torch.nn.ModuleDict({"query": torch.nn.Linear(4, 4)})})
    lora.apply_lora(model, 1, 1.0, "query")
    wrapped = sorted(name for name, m in model.named_modules() if isinstance(m, lora.LoRALinear))
    assert wrapped == ["block.query", "query"]  # not "query_proj"


def test_lora_training_moves_only_the_adapter_and_the_head():
    torch.manual_seed(0)
    model = lora.apply_lora(tiny_bert().eval(), 2, 4.0, trainable="classifier")
    frozen = {n: p.clone() for n, p in model.named_parameters() if not p.requires_grad}
    start = {n: p.clone() for n, p in model.named_parameters() if p.requires_grad}
    input_ids, labels = torch.randint(10, 200, (32, 6)), torch.arange(32) % 2
    input_ids[labels == 1, 2] = 5  # a toy task: does token 5 occur?
    data = {"input_ids": input_ids, "labels": labels}
    losses = fit(model, batches(data, 16), lambda m, b: m(**b).loss, steps=30, lr=1e-2)
    assert sum(losses[-5:]) < sum(losses[:5])
    assert all(torch.equal(p, frozen[n]) for n, p in model.named_parameters() if n in frozen)
    assert all(not torch.equal(p, start[n]) for n, p in model.named_parameters() if n in start)


# ---------------------------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("call, error, message", [
    (lambda m: lora.apply_lora(m, 0, 1.0), ValueError, "r must be a positive int, got 0"),
    (lambda m: lora.apply_lora(m, 2.5, 1.0), ValueError, "r must be a positive int, got 2.5"),
    (lambda m: lora.apply_lora(m, 2, 0), ValueError, "alpha must be a positive number, got 0"),
    (lambda m: lora.apply_lora(m, 2, -1.0), ValueError, "alpha must be a positive number, got -1.0"),
    (lambda m: lora.apply_lora(m, 2, 4.0, dropout=1.0), ValueError, r"dropout must be a probability in \[0, 1\)"),
    (lambda m: lora.apply_lora(m, 2, 4.0, ("query", "qkv")), ValueError, "target_modules: 'qkv' matches no module"),
    (lambda m: lora.apply_lora(m, 2, 4.0, ()), ValueError, "target_modules is empty"),
    (lambda m: lora.apply_lora(m, 2, 4.0, "attention"), TypeError, "'attention' matches 'encoder.layer.0.attention', a "
                                                                   "BertAttention"),
    (lambda m: lora.apply_lora(m, 2, 4.0, trainable="head"), ValueError, "trainable: 'head' matches no module"),
    (lambda m: lora.apply_lora(lora.apply_lora(m, 2, 4.0), 2, 4.0), ValueError, "already has LoRA layers"),
    (lambda m: lora.apply_lora("bert", 2, 4.0), TypeError, "model must be a torch.nn.Module, got str"),
    (lambda m: lora.merge_lora(m), ValueError, "has no LoRALinear layers: apply_lora first"),
    (lambda m: lora.train_last_layers(m, 3), ValueError, "k=3 is more than the 2 layers of 'encoder.layer'"),
    (lambda m: lora.train_last_layers(m, -1), ValueError, "k must be an int >= 0, got -1"),
    (lambda m: lora.train_last_layers(m, 1, layers="decoder.layer"), ValueError, "names 0 nn.ModuleList"),
    (lambda m: lora.LoRALinear(m.pooler, 2, 4.0), TypeError, "base_layer must be an nn.Linear, got BertPooler"),
    (lambda m: lora.LoRALinear(torch.nn.Linear(12, 20), 3, 6.0)(torch.ones(2, 20)), ValueError,
     r"x has shape \(2, 20\): its last dimension must be in_features=12"),
])
def test_bad_arguments_are_named_and_change_nothing(call, error, message):
    model = tiny_bert_model()
    with pytest.raises(error, match=message):
        call(model)
    if "already" not in message:
        assert all(p.requires_grad for p in model.parameters())  # a refused call froze nothing
        assert not any(isinstance(m, lora.LoRALinear) for m in model.modules())


def test_adapt_trains_what_each_method_says():
    from transformers import BertConfig as HFBertConfig, BertForSequenceClassification

    config = HFBertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
                          intermediate_size=32, num_labels=2)
    torch.manual_seed(0)
    base = BertForSequenceClassification(config)
    head = 16 * 2 + 2

    def trainable(method):
        import copy

        return lora.count_trainable(lora.adapt(copy.deepcopy(base), method))

    assert trainable("linear probe") == head
    assert trainable("full") == sum(p.numel() for p in base.parameters())
    assert trainable("LoRA r=4") == head + 3 * 2 * 4 * (16 + 16)   # query and value in 3 blocks: A and B
    assert trainable("LoRA r=1") < trainable("LoRA r=4")
    biases = sum(p.numel() for n, p in base.named_parameters() if n.endswith("bias") and "classifier" not in n)
    assert trainable("BitFit") == head + biases
    assert trainable("last layer") < trainable("last 2 layers") < trainable("full")
    assert [lora.adaptation_learning_rate(m) for m in ("linear probe", "LoRA r=8", "last layer", "full")] == [
        1e-3, 1e-3, 1e-4, 1e-4]
    with pytest.raises(ValueError, match="method must be one of linear probe"):
        lora.adapt(base, "LoRA r=3")
    with pytest.raises(ValueError, match="method must be one of"):
        lora.adaptation_learning_rate("prompt tuning")
