"""Lesson 08, zero- and few-shot learning: chance baselines (08.1), a prototype classifier (08.2), and the
prediction 08.p1 (zero-shot descriptions against a 1-shot probe)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ._checking import _add_prediction, _add_solution, _call, _exercise, _NotAttempted

__all__ = ["check_chance_baselines", "check_prototype_predict"]


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
