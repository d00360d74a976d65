"""Lesson 08, zero- and few-shot learning: chance baselines (08.1), a prototype classifier (08.2), cloze
scores from a verbalizer with contextual calibration (08.3), and the prediction 08.p1 (zero-shot
descriptions against a 1-shot probe)."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch

from ._checking import _add_prediction, _add_solution, _call, _exercise, _forbidden, _NotAttempted

__all__ = ["check_chance_baselines", "check_prototype_predict", "check_cloze_calibration"]


def check_chance_baselines(fn: Callable) -> None:
    """``fn(train_labels, test_labels, num_classes) -> (random, majority)``: the expected test accuracy
    of a uniform guess, and the test accuracy of always answering the most frequent *training* label."""
    hint = ("how often is a uniform guess right, whatever the true label? For the majority baseline: which "
            "one label does it answer, which split tells you that label, and how often is it right on test?")
    with _exercise("chance baselines", hint):
        cases = (([0, 1, 1, 2, 1], [1, 0, 2, 2], 3),
                 ([3, 3, 0, 3], [0, 0, 1, 2, 3, 3], 5),            # a class absent from train still counts in C
                 ([0] * 7 + [1] * 3, [0] * 6 + [1] * 4, 2),
                 ([1] * 6 + [0] * 4, [0] * 9 + [1], 2))            # test majority differs from train majority
        for train, test, num_classes in cases:
            got = _call(fn, list(train), list(test), num_classes)
            if got is ... or (isinstance(got, tuple) and any(g is ... for g in got)):
                raise _NotAttempted
            if not isinstance(got, (tuple, list)) or len(got) != 2:
                raise AssertionError(f"return a pair (random, majority), got {got!r}")
            majority_label = max(range(num_classes), key=train.count)
            expected = (1 / num_classes, test.count(majority_label) / len(test))
            for name, g, e in zip(("random", "majority"), got, expected):
                if not math.isclose(float(g), e, rel_tol=1e-9, abs_tol=1e-12):
                    raise AssertionError(f"{name} accuracy for train={train}, test={test}, C={num_classes}: "
                                         f"got {float(g):.4f}, expected {e:.4f}")


def check_prototype_predict(fn: Callable) -> None:
    """``fn(train_x (N, H), train_y (N,), test_x (M, H), num_classes) -> (M,)``: nearest class mean by cosine."""
    hint = ("one prototype per class, built from that class's training vectors only; cosine similarity ignores "
            "the length of vectors, a plain dot product does not")
    with _exercise("prototype (nearest class mean) classifier", hint):
        gen = torch.Generator().manual_seed(8)
        for n_per_class, num_classes in ((1, 3), (4, 3), (5, 4)):
            centres = torch.randn(num_classes, 6, generator=gen)
            train_y = torch.arange(num_classes).repeat_interleave(n_per_class)
            scale = torch.linspace(0.5, 4.0, num_classes)[train_y, None]  # classes of different lengths
            train_x = (centres[train_y] + 0.8 * torch.randn(len(train_y), 6, generator=gen)) * scale
            test_x = torch.randn(25, 6, generator=gen) * 2
            means = torch.stack([train_x[train_y == c].mean(0) for c in range(num_classes)])
            expected = (torch.nn.functional.normalize(test_x, dim=-1)
                        @ torch.nn.functional.normalize(means, dim=-1).T).argmax(-1)
            got = _call(fn, train_x.clone(), train_y.clone(), test_x.clone(), num_classes)
            if got is ...:
                raise _NotAttempted
            got = torch.as_tensor(got).flatten()
            if got.shape != expected.shape:
                raise AssertionError(f"expected {len(expected)} predictions, got shape {tuple(got.shape)}")
            if not torch.equal(got.long(), expected):
                wrong = int((got.long() != expected).sum())
                dot = (test_x @ means.T).argmax(-1)
                why = " (these are raw dot products: lengths still count)" if torch.equal(got.long(), dot) else ""
                raise AssertionError(f"{wrong} of {len(expected)} predictions differ for {n_per_class} example(s) "
                                     f"per class{why}")


_CLOZE_WORDS = ("it was this film is message a the movie n / . , ! great good terrible bad awful okay fine "
                "personal spam free call now win loved hated boring fun dull plot actors text me").split()
_CLOZE_CASES = (  # (template, verbalizer, texts): 2 and 3 labels, one to three words per label, N != C != V
    ("{text} It was [MASK].", [["terrible", "bad"], ["great", "good"]],
     ["a great film , loved it", "boring plot and dull actors", "the movie"]),
    ("{text} This film is [MASK].", [["awful", "bad", "terrible"], ["okay"], ["great", "good"]],
     ["fun !", "i hated the plot", "it was okay , fine", "awful actors , awful film"]),
    ("{text} This message is [MASK].", [["personal"], ["spam"]],
     ["call now to win a free film !", "see you at the movie", "text me", "free free free", "loved it"]),
)


@functools.lru_cache(maxsize=1)
def _tiny_masked_lm():
    """A small random BERT masked LM and a BERT tokenizer over a 40-word vocabulary: its guesses at the
    mask depend on the input and differ a lot between words, so every mistake in the scores shows."""
    from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *_CLOZE_WORDS]
    tokenizer = BertTokenizerFast(vocab={word: i for i, word in enumerate(vocab)})
    config = BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64, initializer_range=0.5)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(8)
        model = BertForMaskedLM(config).eval()
    return model, tokenizer


@torch.no_grad()
def _log_probs_at_mask(model, tokenizer, texts: list[str], template: str) -> torch.Tensor:
    """(N, V): log-probabilities over the vocabulary at the mask of each text's prompt, as cloze_scores
    builds the prompts (the texts are short: nothing is cut)."""
    prompts = [template.format(text=tokenizer.convert_tokens_to_string(tokenizer.tokenize(t)))
               .replace("[MASK]", tokenizer.mask_token) for t in texts]
    enc = tokenizer(prompts, padding=True, return_tensors="pt")
    logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
    return logits[enc["input_ids"] == tokenizer.mask_token_id].float().log_softmax(-1)


def check_cloze_calibration(fn: Callable) -> None:
    """``fn(mask_log_probs (N, V), content_free_log_probs (V,), verbalizer_ids)`` -> (N, C): each label's score
    from its words' probabilities at the mask, calibrated with the content-free prompt ("N/A"), exactly as
    ``fewshot.cloze_scores(..., calibrate=True)`` (checked against it on three prompts), without calling it."""
    from .. import fewshot  # here: lesson 01 imports the exercises without lesson 08

    hint = ("do to the content-free row exactly what you do to each text's row, then compare them label by "
            "label. A label with several words: average what? (fewshot.cloze_scores' docstring says.) In log "
            "space, how do you take a prior away?")
    with _exercise("cloze scores with contextual calibration", hint):
        model, tokenizer = _tiny_masked_lm()
        for template, verbalizer, texts in _CLOZE_CASES:
            scores = {c: fewshot.cloze_scores(model, tokenizer, texts, template=template, verbalizer=verbalizer,
                                              calibrate=c) for c in (True, False, "batch")}
            log_probs = _log_probs_at_mask(model, tokenizer, texts, template)
            content_free = _log_probs_at_mask(model, tokenizer, ["N/A"], template)[0]
            word_ids = [tokenizer.convert_tokens_to_ids(words) for words in verbalizer]
            what = (f"{template!r}, {len(texts)} texts, {len(verbalizer)} labels with "
                    f"{[len(w) for w in verbalizer]} words")
            inputs = (log_probs.clone(), content_free.clone(), [list(ids) for ids in word_ids])
            with _forbidden("fmteach.fewshot.cloze_scores", "fmteach.fewshot.zero_shot.cloze_scores"):
                got = _call(fn, *inputs)
            if got is ...:
                raise _NotAttempted
            if not torch.equal(inputs[0], log_probs) or not torch.equal(inputs[1], content_free):
                raise AssertionError(f"{what}: your function changed the log-probabilities it was given")
            got = torch.as_tensor(got)
            expected = scores[True]
            if got.shape != expected.shape:
                raise AssertionError(f"{what}: expected scores of shape (N, C) = {tuple(expected.shape)}, "
                                     f"got {tuple(got.shape)}")
            got = got.float()
            if torch.allclose(got, expected, atol=1e-5):
                continue
            mean_log = torch.stack([log_probs[:, ids].mean(-1) - content_free[ids].mean() for ids in word_ids], -1)
            if torch.allclose(got, scores[False], atol=1e-5):
                raise AssertionError(f"{what}: these are the raw scores; the model's preference for some words, "
                                     f"whatever the input, is still in them")
            if torch.allclose(got, scores["batch"], atol=1e-5):
                raise AssertionError(f"{what}: you took away the mean over the texts (batch calibration); this "
                                     f"exercise calibrates with the content-free prompt")
            if torch.allclose(got, mean_log, atol=1e-5):
                raise AssertionError(f"{what}: right for labels with one word, not for labels with several: "
                                     f"combine a label's words as cloze_scores does")
            diff = (got - expected).abs().nan_to_num(float("inf")).max().item()
            raise AssertionError(f"{what}: the scores differ from cloze_scores(..., calibrate=True) "
                                 f"by up to {diff:.3g}")


_add_prediction(
    "08.p1",
    "BBC News, five topics. Which scores higher on the test articles: zero-shot with one written "
    "description per topic, or a linear probe trained on ONE labelled article per topic (mean of 5 draws)?",
    {"a": "zero-shot with the descriptions", "b": "the 1-shot linear probe", "c": "about the same (within 0.02)"},
    "a",
    "one article per topic is a noisy prototype: whichever article the draw picked defines the topic. A "
    "description names the topic's vocabulary directly. The probe needs several examples per class to pass it.",
)
_add_solution("08.1", '''def chance_baselines(train_labels, test_labels, num_classes):
    majority_label = max(range(num_classes), key=list(train_labels).count)
    return 1 / num_classes, sum(y == majority_label for y in test_labels) / len(test_labels)
''')
_add_solution("08.2", '''def prototype_predict(train_x, train_y, test_x, num_classes):
    prototypes = torch.stack([train_x[train_y == c].mean(0) for c in range(num_classes)])   # (C, H)
    return (F.normalize(test_x, dim=-1) @ F.normalize(prototypes, dim=-1).T).argmax(-1)    # (M,)
''')
_add_solution("08.3", '''def calibrated_cloze_scores(mask_log_probs, content_free_log_probs, verbalizer_ids):
    def label_scores(log_probs):  # (..., V) -> (..., C): log of the mean probability of each label's words
        return torch.stack([log_probs[..., ids].exp().mean(-1).log() for ids in verbalizer_ids], dim=-1)

    return label_scores(mask_log_probs) - label_scores(content_free_log_probs)  # (N, C) - (C,): divide out the prior
''')
