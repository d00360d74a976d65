"""Tests for fmteach.applications (lessons 10-11): tiny fixtures, seconds. (Their exercise checkers:
tests/test_exercises_10_11.py.)"""

import random

import pytest
import torch

from fmteach.applications import nsp, qa, seq2seq, tagging, training, vit
from fmteach.assets import pretrained_bert
from fmteach.bert_config import BertConfig
from fmteach.cache import MissingAssetError
from fmteach.outputs import QuestionAnsweringOutput

TINY = BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=4, intermediate_size=32,
                  max_position_embeddings=24, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(pretrained_bert("minilm"))


# ---------------------------------------------------------------------------------------------- training

def test_batches_are_seeded_full_and_cover_each_epoch():
    data = {"x": torch.arange(10), "y": torch.arange(10) * 2}
    first, again = training.batches(data, 5, seed=3), training.batches(data, 5, seed=3)
    epoch = [next(first) for _ in range(2)]
    assert all(torch.equal(b["y"], b["x"] * 2) for b in epoch)
    assert sorted(torch.cat([b["x"] for b in epoch]).tolist()) == list(range(10))
    assert all(torch.equal(a["x"], next(again)["x"]) for a in epoch)
    with pytest.raises(ValueError, match="share their first dimension"):
        next(training.batches({"x": torch.zeros(3), "y": torch.zeros(4)}, 2))
    with pytest.raises(ValueError, match="batch_size=8 is larger than the 3"):
        next(training.batches({"x": torch.zeros(3)}, 8))


def test_fit_lowers_the_loss_and_leaves_frozen_weights_alone():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    model[0].requires_grad_(False)
    frozen = model[0].weight.clone()
    x = torch.randn(64, 3)
    data = {"x": x, "y": x.sum(1, keepdim=True)}
    losses = training.fit(model, training.batches(data, 16), lambda m, b: ((m(b["x"]) - b["y"]) ** 2).mean(),
                          steps=150, lr=3e-2)
    assert len(losses) == 150 and sum(losses[-10:]) < 0.2 * sum(losses[:10])
    assert torch.equal(model[0].weight, frozen) and not model.training
    with pytest.raises(ValueError, match="steps must be a positive int, got 0"):
        training.fit(model, iter([]), lambda m, b: None, steps=0)


# ---------------------------------------------------------------------------------------------- NSP

DOCS = [[f"Doc {d} sentence {i}." for i in range(6)] for d in range(4)]


def test_split_sentences_drops_the_glued_headline():
    text = 'Big headline Here is one. "Quoted two!" Three? four stays with three.'
    assert nsp.split_sentences(text) == ['"Quoted two!"', "Three? four stays with three."]


@pytest.mark.parametrize("kind", nsp.NEGATIVE_KINDS)
def test_nsp_pairs_are_balanced_and_of_the_asked_kind(kind):
    pairs = nsp.make_nsp_pairs(DOCS, 40, negatives=kind, seed=1)
    assert [p[2] for p in pairs].count(0) == 20
    where = {s: (d, i) for d, doc in enumerate(DOCS) for i, s in enumerate(doc)}
    for a, b, label in pairs:
        (da, ia), (db, ib) = where[a], where[b]
        if label == 0:
            assert (da, ib) == (db, ia + 1)
        elif kind == "random":
            assert da != db
        elif kind == "same_document":
            assert da == db and abs(ia - ib) >= 2
        else:
            assert da == db and ia == ib + 1
    with pytest.raises(ValueError, match="negatives='other': expected one of random"):
        nsp.make_nsp_pairs(DOCS, 4, negatives="other")


def test_encode_pairs_gives_segment_ids_after_the_first_sep(tokenizer):
    enc = nsp.encode_pairs(tokenizer, [("the cat sat.", "it was happy.", 0), ("a b", "c", 1)])
    ids, types = enc["input_ids"][0], enc["token_type_ids"][0]
    first_sep = int((ids == tokenizer.sep_token_id).nonzero()[0])
    assert types[:first_sep + 1].eq(0).all() and types[first_sep + 1:][enc["attention_mask"][0][first_sep + 1:] == 1].eq(1).all()
    assert enc["labels"].tolist() == [0, 1]


def test_pairs_as_seen_cut_where_encode_pairs_cuts(tokenizer):
    long_a = " ".join(f"word{i}" for i in range(40)) + "."
    pairs = [("the cat sat.", "it was happy.", 0), (long_a, "a short reply.", 1)]
    seen = nsp.pairs_as_seen(tokenizer, pairs, max_length=16)
    assert seen[0] == ("the cat sat.", "it was happy.", 0)  # short pairs come back whole (lower-cased)
    a, b, label = seen[1]
    assert label == 1 and b == "a short reply." and long_a.startswith(a.replace(" ", "")[:5])
    assert len(tokenizer(a, b)["input_ids"]) == 16  # the cut pair fills max_length exactly
    with pytest.raises(ValueError, match="max_length"):
        nsp.pairs_as_seen(tokenizer, pairs, max_length=0)


def test_mean_pooled_pair_classifier_ignores_padding():
    from fmteach.bert import MiniBertModel
    from fmteach.bert_config import BertConfig

    config = BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=16)
    torch.manual_seed(0)
    model = nsp.MeanPooledPairClassifier(MiniBertModel(config), num_labels=3).eval()
    ids = torch.tensor([[2, 5, 7, 3]])
    padded = torch.tensor([[2, 5, 7, 3, 0, 0]])
    short = model(ids, torch.ones_like(ids), torch.zeros_like(ids)).logits
    long = model(padded, torch.tensor([[1, 1, 1, 1, 0, 0]]), torch.zeros_like(padded)).logits
    assert short.shape == (1, 3)
    torch.testing.assert_close(short, long)  # padding changes nothing: the mean is over real tokens
    unmasked = model(padded, None, None).logits
    assert not torch.allclose(short, unmasked)  # ...and with no mask the padding counts
    assert nsp.classifier_accuracy(model, {"input_ids": ids, "attention_mask": torch.ones_like(ids),
                                           "token_type_ids": torch.zeros_like(ids),
                                           "labels": short.argmax(-1)}) == 1.0


# ---------------------------------------------------------------------------------------------- tagging

def test_words_and_labels_take_the_mark_after_each_word():
    words, labels = tagging.words_and_labels('He said: "Really?" Yes, at 1.6% it is. (fine)')
    assert words == ["He", "said", "Really", "Yes", "at", "1.6%", "it", "is", "fine"]
    assert [tagging.PUNCT_LABELS[i] for i in labels] == ["none", "comma", "question", "comma", "none", "none", "none",
                                                         "period", "none"]


def test_align_labels_first_piece_only():
    assert tagging.align_labels([None, 0, 0, 1, None], [2, 1]) == [-100, 2, -100, 1, -100]
    with pytest.raises(ValueError, match="refers to word 2 but word_labels has 2"):
        tagging.align_labels([0, 2], [1, 1])


def test_encode_tagging_labels_first_pieces(tokenizer):
    enc = tagging.encode_tagging(tokenizer, [(["Kewell", "news"], [1, 2])])  # ke ##well news
    pieces = tokenizer.convert_ids_to_tokens(enc["input_ids"][0])
    labelled = [(p, int(y)) for p, y in zip(pieces, enc["labels"][0]) if y != -100]
    assert pieces == ["[CLS]", "ke", "##well", "news", "[SEP]"] and labelled == [("ke", 1), ("news", 2)]


def test_token_classification_equals_hugging_face():
    from transformers import BertConfig as HFConfig, BertForTokenClassification

    torch.manual_seed(0)
    hf = BertForTokenClassification(HFConfig(**{**TINY.__dict__, "num_labels": 3},
                                             attn_implementation="eager")).eval().double()
    ours = tagging.MiniBertForTokenClassification(BertConfig(**{**TINY.__dict__, "num_labels": 3})).double()
    missing, unexpected = ours.load_state_dict(hf.state_dict(), strict=False)
    assert not missing and all("position_ids" in n for n in unexpected)
    ids, mask = torch.randint(1, 40, (2, 7)), torch.tensor([[1] * 7, [1] * 4 + [0] * 3])
    labels = torch.randint(0, 3, (2, 7)).masked_fill(mask == 0, -100)
    got = ours.eval()(ids, mask, labels=labels)
    expected = hf(ids, attention_mask=mask, labels=labels)
    torch.testing.assert_close(got.logits[mask == 1], expected.logits[mask == 1], rtol=0, atol=1e-10)
    torch.testing.assert_close(got.loss, expected.loss, rtol=0, atol=1e-10)


def test_load_task_model_freezes_all_but_the_top_layers():
    model = tagging.load_task_model(tagging.MiniBertForTokenClassification, pretrained_bert("minilm"), num_labels=4,
                                    train_top_layers=2)
    trainable = {n.split(".")[3] if n.startswith("bert.encoder") else n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"4", "5", "classifier"}
    with pytest.raises(ValueError, match="train_top_layers=9: expected 0..6"):
        tagging.load_task_model(tagging.MiniBertForTokenClassification, pretrained_bert("minilm"), num_labels=4, train_top_layers=9)


def test_per_class_report_matches_hand_counts():
    report = tagging.per_class_report([0, 0, 1, 1, 2], [0, 1, 1, 1, 0], ["a", "b", "c"])
    assert report["b"] == {"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2}
    assert report["c"]["f1"] == 0.0 and report["macro"]["support"] == 5
    assert report["macro"]["f1"] == pytest.approx((report["a"]["f1"] + 0.8 + 0.0) / 3)  # c has gold support
    unseen = tagging.per_class_report([0, 0, 1], [0, 2, 1], ["a", "b", "c"])  # c is never gold: out of the macro
    assert unseen["c"]["support"] == 0 and unseen["macro"]["classes"] == ["a", "b"]
    assert unseen["macro"]["f1"] == pytest.approx((unseen["a"]["f1"] + unseen["b"]["f1"]) / 2)
    with pytest.raises(ValueError, match="gold has shape"):
        tagging.per_class_report([0, 1], [0], ["a", "b"])


def test_conll2003_is_refused_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(MissingAssetError, match="conll2003 comes from the Hugging Face hub but HF_HUB_OFFLINE is set"):
        tagging.load_conll2003()


# ---------------------------------------------------------------------------------------------- QA

def _brute_force_span(start, end, max_len):
    pairs = [(s, e) for s in range(len(start)) for e in range(s, min(len(end), s + max_len))]
    return max(pairs, key=lambda p: float(start[p[0]] + end[p[1]]))


def test_best_span_is_the_brute_force_best():
    gen = torch.Generator().manual_seed(0)
    for T, max_len in ((1, 1), (6, 2), (15, 4), (9, 9)):
        start, end = torch.randn(T, generator=gen), torch.randn(T, generator=gen)
        assert qa.best_span(start, end, max_answer_len=max_len)[:2] == _brute_force_span(start, end, max_len)
    allowed = torch.tensor([False, True, True, False])
    assert qa.best_span(torch.tensor([9.0, 0, 1, 0]), torch.tensor([9.0, 0, 1, 9]), max_answer_len=3,
                        allowed=allowed)[:2] == (2, 2)
    with pytest.raises(ValueError, match=r"start_logits \(3,\) and end_logits \(4,\)"):
        qa.best_span(torch.zeros(3), torch.zeros(4), max_answer_len=2)


def test_context_windows_cover_everything_with_the_asked_overlap():
    windows = qa.context_windows(20, 8, 3)
    assert windows == [(0, 8), (5, 13), (10, 18), (15, 20)]
    assert qa.context_windows(5, 8, 3) == [(0, 5)]
    with pytest.raises(ValueError, match="stride=8 is the overlap between windows: expected 0 <= stride < window=8"):
        qa.context_windows(20, 8, 8)


def test_span_contexts_have_exactly_one_legal_answer():
    vocab, rng = qa.SpanVocab(n_symbols=5), random.Random(0)
    for _ in range(20):
        question, context, (s, e) = qa.make_span_context(rng, vocab, 12, max_answer_len=4)
        assert (context[s], context[e]) == question and 0 <= e - s < 4
        legal = [(i, j) for i in range(12) for j in range(i, min(12, i + 4)) if (context[i], context[j]) == question]
        assert legal == [(s, e)]


def test_qa_input_maps_the_answer_or_points_at_cls():
    vocab = qa.SpanVocab(n_symbols=6)
    question, context, (s, e) = qa.make_span_context(random.Random(0), vocab, 10)
    ids, types, start, end, offset = qa.qa_input(question, context, (s, e))
    assert ids[start:end + 1] == context[s:e + 1] and types.count(0) == 4 and offset == 4
    _, _, start, end, _ = qa.qa_input(question, context, (s, e), window=(e + 1, len(context)))
    assert (start, end) == (0, 0)


class _OracleQA(torch.nn.Module):
    """Scores like a perfect model: start where the question's first word is, end at its last word."""

    def forward(self, ids, mask, types):
        ids = ids[0].tolist()
        start, end = torch.zeros(1, len(ids)), torch.zeros(1, len(ids))
        start[0, 0] = end[0, 0] = 2.5  # "no answer" (5): beaten only by a start and an end that both match (6)
        for p in range(4, len(ids) - 1):
            start[0, p] += 3.0 * (ids[p] == ids[1])
            end[0, p] += 3.0 * (ids[p] == ids[2])
        return QuestionAnsweringOutput(start, end)


def test_long_contexts_are_answered_through_overlapping_windows():
    vocab, rng = qa.SpanVocab(n_symbols=12), random.Random(1)
    oracle, hits, truncated = _OracleQA(), 0, 0
    for _ in range(20):
        question, context, answer = qa.make_span_context(rng, vocab, 40)
        hits += qa.answer_long_context(oracle, question, context, window=10, stride=4) == answer
        truncated += qa.answer_long_context(oracle, question, context[:10], window=10, stride=4) == answer
    assert hits == 20 and truncated < 10


def test_question_answering_equals_hugging_face():
    from transformers import BertConfig as HFConfig, BertForQuestionAnswering

    torch.manual_seed(1)
    hf = BertForQuestionAnswering(HFConfig(**TINY.__dict__, attn_implementation="eager")).eval().double()
    ours = qa.MiniBertForQuestionAnswering(TINY).double()
    missing, _ = ours.load_state_dict(hf.state_dict(), strict=False)
    assert not missing
    ids, types = torch.randint(1, 40, (3, 9)), torch.randint(0, 2, (3, 9))
    starts, ends = torch.tensor([1, 4, 0]), torch.tensor([2, 6, 0])
    got = ours.eval()(ids, torch.ones_like(ids), types, starts, ends)
    expected = hf(ids, token_type_ids=types, start_positions=starts, end_positions=ends)
    torch.testing.assert_close((got.start_logits, got.end_logits, got.loss), (expected.start_logits, expected.end_logits, expected.loss), rtol=0, atol=1e-10)


def test_qa_set_shapes_and_untrained_model_rarely_right():
    vocab = qa.SpanVocab()
    data = qa.make_qa_set(vocab, 50, lengths=(8, 20), window=8, seed=0)
    assert data["input_ids"].shape[1] == 13 and (data["start_positions"] == 0).any()
    torch.manual_seed(0)
    model = qa.MiniBertForQuestionAnswering(BertConfig(**{**TINY.__dict__, "vocab_size": vocab.size}))
    assert qa.span_exact_match(model, data) < 0.5


# ---------------------------------------------------------------------------------------------- seq2seq

@pytest.mark.parametrize("causal", [False, True])
def test_cross_attention_equals_torch_multihead_attention(causal):
    torch.manual_seed(0)
    torch_mha = torch.nn.MultiheadAttention(16, 4, batch_first=True).double()
    ours = seq2seq.MultiHeadCrossAttention(16, 4).double().load_from_torch(torch_mha)
    x = torch.randn(2, 3, 16, dtype=torch.float64)
    if causal:  # self-attention of a decoder
        expected, expected_w = torch_mha(x, x, x, attn_mask=torch.ones(3, 3).triu(1).bool(), average_attn_weights=False)
        got, got_w = ours(x, is_causal=True, need_weights=True)
    else:  # L = 3 decoder queries, S = 5 encoder keys, the second memory padded after 3
        memory, memory_mask = torch.randn(2, 5, 16, dtype=torch.float64), torch.tensor([[1] * 5, [1] * 3 + [0] * 2])
        expected, expected_w = torch_mha(x, memory, memory, key_padding_mask=memory_mask == 0, average_attn_weights=False)
        got, got_w = ours(x, memory, memory_mask, need_weights=True)
    torch.testing.assert_close((got, got_w), (expected, expected_w), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match=r"x has shape \(2, 3, 16\) and memory \(2, 5, 8\)"):
        ours(x, torch.zeros(2, 5, 8, dtype=torch.float64))


def test_reversal_set_and_exact_match():
    data = seq2seq.make_reversal_set(5, lengths=(2, 4), seed=0)
    for src, mask, tgt_in, labels in zip(data["src"], data["src_mask"], data["tgt_in"], data["labels"]):
        seq = src[mask == 1].tolist()
        assert tgt_in[1:len(seq) + 1].tolist() == seq[::-1] and labels[:len(seq) + 1].tolist() == seq[::-1] + [2]
    labels = torch.tensor([[5, 4, 2, -100], [3, 2, -100, -100]])
    assert seq2seq.exact_match(torch.tensor([[5, 4, 2, 0], [3, 2, 0, 0]]), labels) == 1.0
    assert seq2seq.exact_match(torch.tensor([[5, 4, 7], [3, 3, 0]]), labels) == 0.0


def test_seq2seq_forward_and_greedy_decode_shapes():
    config = seq2seq.Seq2SeqConfig(vocab_size=9, d_model=16, n_heads=2, n_encoder_layers=1, n_decoder_layers=1,
                                   d_ff=32, max_len=8)
    torch.manual_seed(0)
    model = seq2seq.Seq2Seq(config)
    data = seq2seq.make_reversal_set(4, lengths=(3, 6), vocab_size=9, seed=0)
    out = model(data["src"], data["src_mask"], data["tgt_in"], data["labels"], output_attentions=True)
    logits, loss, maps = out.logits, out.loss, out.cross_attentions
    assert logits.shape == (4, 7, 9) and loss > 0 and maps[0].shape == (4, 2, 7, 6)
    assert torch.allclose(maps[0].sum(-1), torch.ones(4, 2, 7))
    assert (maps[0] * (data["src_mask"] == 0)[:, None, None, :]).sum() == 0  # padding gets no attention
    assert seq2seq.greedy_decode(model, data["src"], data["src_mask"]).shape[1] <= 7
    with pytest.raises(ValueError, match="d_model=10 is not divisible by n_heads=4"):
        seq2seq.Seq2SeqConfig(d_model=10, n_heads=4)


# ---------------------------------------------------------------------------------------------- ViT

def test_patchify_cuts_squares_in_reading_order():
    images = torch.arange(2 * 4 * 6).reshape(2, 4, 6).float()
    patches = vit.patchify(images, 2)
    assert patches.shape == (2, 6, 4)
    assert patches[0, 0].tolist() == [0, 1, 6, 7] and patches[0, 1].tolist() == [2, 3, 8, 9]
    assert patches[1, 3].tolist() == images[1, 2:4, 0:2].flatten().tolist()
    with pytest.raises(ValueError, match="images are 4x6: height and width must be multiples of patch=4"):
        vit.patchify(images, 4)


def test_tiny_vit_shapes_and_cls_attention():
    torch.manual_seed(0)
    model = vit.TinyViT(vit.ViTConfig(hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32)).eval()
    out = model(torch.rand(3, 8, 8), output_attentions=True)
    logits, maps = out.logits, out.attentions
    assert logits.shape == (3, 10) and maps[0].shape == (3, 2, 17, 17)
    with pytest.raises(ValueError, match=r"images has shape \(3, 7, 7\): expected \(batch, 8, 8\)"):
        model(torch.rand(3, 7, 7))


def test_digits_split_and_logistic_baseline():
    train_x, train_y, test_x, test_y = vit.load_digits_split()
    assert train_x.shape[1:] == (8, 8) and len(train_x) + len(test_x) == 1797 and float(train_x.max()) == 1.0
    assert torch.bincount(test_y).min() >= 40  # stratified: every digit in the test split
    assert vit.logistic_baseline(train_x, train_y, test_x, test_y) > 0.9
