"""Lesson 08, zero- and few-shot learning: a chance baseline that follows the training labels (08.1), a
prototype classifier (08.2), cloze scores from a verbalizer with contextual calibration (08.3), and the
prediction 08.p1 (zero-shot descriptions against a 1-shot probe)."""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Callable

import torch

from ._checking import _add_prediction, _add_solution, _call, _exercise, _forbidden, _NotAttempted

__all__ = ["check_stratified_guess", "check_prototype_predict", "check_cloze_calibration"]


def _stratified_cases() -> list[tuple[list[int], list[int], int]]:
    """(train labels, test labels, number of classes): splits of different lengths and label frequencies."""
    draw = random.Random(8)
    return [([0, 0, 0, 1, 1], [0, 1, 1, 1, 1, 1], 2),                # frequencies differ between the splits
            ([1, 1, 2, 1, 2], [0, 0, 1, 3, 2, 2, 1], 4),             # classes 0 and 3 never occur in train
            ([0, 3, 3, 3, 1, 0], [1, 1, 1, 2], 5),                   # class 4 in neither split, 0 and 3 not in test
            ([0, 1, 2, 2, 1, 0], [2, 2, 2, 0, 1], 3),                # balanced train
            ([0] * 8 + [1] * 2, [0] * 4 + [1], 2),                   # the same frequencies in both splits
            (draw.choices(range(6), weights=[30, 1, 5, 12, 2, 8], k=120),
             draw.choices(range(6), weights=[4, 6, 1, 9, 3, 1], k=45), 6)]


def check_stratified_guess(fn: Callable) -> None:
    """``fn(train_labels, test_labels, num_classes) -> float``: the expected test accuracy of a guesser that draws
    each answer at random with the training split's label frequencies, computed exactly and without
    ``sklearn.dummy``. Wrong answers that are another baseline, or use the wrong split's frequencies, are named."""
    from sklearn.dummy import DummyClassifier  # here: lesson 01 imports the exercises without scikit-learn's cost

    hint = ("a guess is right when it names the true label. For one test example, whose label you know, how likely "
            "is that? Then average over the test examples. Which split sets the guesser's frequencies? A class "
            "missing from one split still has a frequency there.")
    refused = [(DummyClassifier, name, "sklearn.dummy.DummyClassifier")
               for name in ("__init__", "fit", "predict", "predict_proba", "score")]
    with _exercise("chance baseline: a guesser that follows the training labels", hint):
        for train, test, num_classes in _stratified_cases():
            what = (f"train labels {train}, test labels {test}, C = {num_classes}" if len(train) < 20 else
                    f"{len(train)} train and {len(test)} test labels over C = {num_classes} classes, "
                    f"with different frequencies")
            try:
                with _forbidden(*refused):
                    got = _call(fn, list(train), list(test), num_classes)
            except NotImplementedError:
                raise
            except (ValueError, IndexError, RuntimeError, ZeroDivisionError) as exc:
                raise AssertionError(f"{what}: your function raised {type(exc).__name__}: {exc}. Which classes occur "
                                     f"in each split here, and how many classes are there?") from None
            if got is ...:
                raise _NotAttempted
            if isinstance(got, (tuple, list, str)):
                raise AssertionError(f"{what}: return one number, the expected accuracy; got {type(got).__name__} "
                                     f"{got!r}")
            try:
                value = float(got)
            except (TypeError, ValueError):
                raise AssertionError(f"{what}: return one number, got {type(got).__name__}") from None
            p = [train.count(c) / len(train) for c in range(num_classes)]  # how often the guesser answers c
            q = [test.count(c) / len(test) for c in range(num_classes)]    # how often c is the true test label
            expected = sum(a * b for a, b in zip(p, q))
            if math.isclose(value, expected, rel_tol=1e-9, abs_tol=1e-12):
                continue
            if not 0 <= value <= 1:
                raise AssertionError(f"{what}: got {value:.4g}, but an accuracy lies between 0 and 1 "
                                     f"(counts, not frequencies?)")
            wrong = (  # another quantity than the one asked for, and what it is
                (1 / num_classes, "the uniform guess's accuracy, 1/C (section 2's `random` column); this guesser "
                                  "answers each class as often as it occurs in the training split"),
                (q[max(range(num_classes), key=p.__getitem__)],
                 "the accuracy of always answering the most frequent training label (section 2's `majority` "
                 "column); this guesser draws a new label for every test example"),
                (sum(b * b for b in q), "you gave the guesser the test split's label frequencies; it has only seen "
                                        "the training labels"),
                (sum(a * a for a in p), "you used the training frequencies for the true labels as well; how often "
                                        "each class occurs on test decides how often a guess can be right"),
            )
            for other, why in wrong:
                if math.isclose(value, other, rel_tol=1e-9, abs_tol=1e-12):
                    raise AssertionError(f"{what}: {value:.4f} is {why}")
            close = (" It is close: if you drew random guesses, that estimates the expected accuracy; compute it "
                     "exactly from the label frequencies." if abs(value - expected) < 0.05 else "")
            raise AssertionError(f"{what}: got {value:.4f}, expected {expected:.4f}.{close}")


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
_add_solution("08.1", '''def stratified_guess_accuracy(train_labels, test_labels, num_classes):
    # A guess and the true label are independent: P(right) = sum over classes c of P(guess c) * P(true label c).
    # With the same frequencies q in both splits this is sum of q_c squared <= max q_c: never above `majority`.
    # When the splits differ it can be: the training majority may be rare on test.
    guess = [list(train_labels).count(c) / len(train_labels) for c in range(num_classes)]
    truth = [list(test_labels).count(c) / len(test_labels) for c in range(num_classes)]
    return sum(g * t for g, t in zip(guess, truth))
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
