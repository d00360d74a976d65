"""Lesson 09's measurements: duplicates and leakage, bias probes, the overfitting helpers."""

import math

import matplotlib

matplotlib.use("Agg")

import pytest
import torch

from fmteach import exercises
from fmteach.bert import MiniBertForMaskedLM
from fmteach.bert_config import BertConfig
from fmteach.bias import association_scores, embedding_association, fill_mask_gender_bias
from fmteach.challenges import set_dropout
from fmteach.leakage import find_duplicates, leakage_experiment, naive_split, normalize_text
from fmteach.text_datasets import DATASETS, TextSplit, load_text_classification
from fmteach.viz import plot_accuracy_curves, plot_occupation_scores
from fmteach.wordpiece import train_wordpiece_tokenizer


def test_normalize_text():
    assert normalize_text("  Hello,   World!! ") == "hello world"
    assert normalize_text("Don't\tstop -- now.") == "dont stop now"
    assert normalize_text("") == ""
    with pytest.raises(TypeError, match="text must be a str, got int"):
        normalize_text(3)


def test_find_duplicates_by_kind():
    dogs = "A completely different sentence about dogs and their owners in the park"
    train = ["The cat sat on the mat.", dogs, "the cat sat on the mat"]
    test = ["the cat sat on the mat",                          # exact (train 2)
            "THE CAT sat on the mat!",                         # normalised (train 0 first)
            dogs + "!!!",                                      # normalised
            dogs.replace("owners", "owner"),                   # near: one letter missing
            "Nothing like anything in the training list"]
    report = find_duplicates(train, test)
    assert report.exact == [(2, 0)]
    assert report.normalized == [(0, 1), (1, 2)]
    assert report.near == [(1, 3)]
    assert report.counts == {"exact": 1, "normalized": 2, "near": 1, "any": 4}
    assert report.leaked == [0, 1, 2, 3] and report.n_test == 5
    assert find_duplicates([], test).counts["any"] == 0
    assert find_duplicates(train, []).counts["any"] == 0


def test_near_duplicate_threshold():
    train = ["the quick brown fox jumps over the lazy dog"]
    test = ["the quick brown fox jumped over the lazy dog", "the quick brown cat sleeps under a lazy dog"]
    similar = find_duplicates(train, test, threshold=0.8)
    assert similar.near == [(0, 0)]                 # one changed word: near
    assert find_duplicates(train, test, threshold=0.99).near == []
    assert len(find_duplicates(train, test, threshold=0.05).near) == 2
    chunked = find_duplicates(train * 3, test * 5, threshold=0.5, chunk_size=2)
    assert chunked == find_duplicates(train * 3, test * 5, threshold=0.5)   # chunking changes nothing
    assert chunked.counts["near"] >= 5 and all(i == 0 for i, _ in chunked.near)  # the first of equal train texts
    with pytest.raises(ValueError, match=r"threshold is a cosine similarity in \(0, 1\], got 1.5"):
        find_duplicates(train, test, threshold=1.5)
    with pytest.raises(TypeError, match="train_texts must be a list of strings"):
        find_duplicates("one string", test)


def test_naive_split_leaks_while_our_splits_do_not():
    _, examples = DATASETS["trec"]()
    train, validation, test = naive_split(examples, seed=0)
    assert len(train) + len(validation) + len(test) == len(examples)
    assert len(train) == round(0.8 * len(examples))
    assert naive_split(examples, seed=0)[2] == test and naive_split(examples, seed=1)[2] != test
    assert len(set(train.texts) & set(test.texts)) > 100   # raw TREC repeats thousands of questions
    data = load_text_classification("trec")
    texts = [set(split.texts) for split in data.splits.values()]
    assert not texts[0] & texts[1] and not texts[0] & texts[2] and not texts[1] & texts[2]
    with pytest.raises(ValueError, match="fractions must be three positive numbers that sum to 1"):
        naive_split(examples, seed=0, fractions=(0.8, 0.3, 0.1))
    with pytest.raises(ValueError, match="need at least 3 examples"):
        naive_split(examples[:2], seed=0)


def test_leakage_experiment_separates_seen_and_unseen():
    words = ["apple", "banana", "cherry", "grape", "lemon", "mango", "melon", "peach", "pear", "plum"]
    train = TextSplit([f"{a} {b} sweet" for a in words for b in words[:5]] + [f"{a} {b} sour" for a in words for b in words[5:]],
                      [0] * 50 + [1] * 50)
    test = TextSplit(train.texts[:5] + ["kiwi lime bitter", "fig date sweet"], train.labels[:5] + [1, 0])
    result = leakage_experiment(train, test, kind="1nn")
    assert result.n_test == 7 and result.n_seen == 5
    assert result.accuracy_seen == 1.0                   # memorised: its own copy is the nearest neighbour
    assert result.accuracy_unseen == 0.5                # 'kiwi lime bitter': no word seen, 'fig date sweet': sweet
    assert math.isclose(result.accuracy, (5 + 2 * result.accuracy_unseen) / 7)
    assert math.isnan(leakage_experiment(train, TextSplit(["kiwi"], [0]), kind="logreg").accuracy_seen)
    with pytest.raises(ValueError, match="kind must be one of logreg, 1nn"):
        leakage_experiment(train, test, kind="svm")


@pytest.fixture(scope="module")
def tiny_mlm():
    tokenizer = train_wordpiece_tokenizer(8000)
    torch.manual_seed(0)
    config = BertConfig(len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=32)
    return MiniBertForMaskedLM(config).eval(), tokenizer


def test_fill_mask_gender_bias_on_a_tiny_model(tiny_mlm):
    model, tokenizer = tiny_mlm
    occupations = ["nurse", "soldier", "engineer"]
    scores = fill_mask_gender_bias(model, tokenizer, occupations)
    assert list(scores) == occupations and all(math.isfinite(v) for v in scores.values())
    swapped = fill_mask_gender_bias(model, tokenizer, occupations, targets=("she", "he"))
    assert all(math.isclose(scores[o], -swapped[o], abs_tol=1e-5) for o in occupations)
    one = fill_mask_gender_bias(model, tokenizer, ["engineer"], templates=["[MASK] is a {occupation}."])
    two = fill_mask_gender_bias(model, tokenizer, ["engineer"], templates=["[MASK] works as a {occupation}."])
    assert math.isclose(scores["engineer"], (one["engineer"] + two["engineer"]) / 2, abs_tol=1e-5)
    with pytest.raises(ValueError, match="'xylophonist' is not one token of this vocabulary"):
        fill_mask_gender_bias(model, tokenizer, occupations, targets=("he", "xylophonist"))
    with pytest.raises(ValueError, match=r"must contain \[MASK\] once and \{occupation\} once"):
        fill_mask_gender_bias(model, tokenizer, occupations, templates=["he is a {occupation}."])
    with pytest.raises(ValueError, match="occupations must be non-empty and distinct"):
        fill_mask_gender_bias(model, tokenizer, ["nurse", "nurse"])
    with pytest.raises(ValueError, match="targets must be two words"):
        fill_mask_gender_bias(model, tokenizer, occupations, targets="he")


def test_article_before_a_vowel(tiny_mlm, monkeypatch):
    import fmteach.fewshot

    seen = []
    monkeypatch.setattr(fmteach.fewshot, "cloze_scores",
                        lambda mlm, tok, texts, *, template, **kw: seen.append((template, texts)) or torch.zeros(len(texts), 2))
    fill_mask_gender_bias(*tiny_mlm, ["engineer", "nurse"], templates=["[MASK] works as a {occupation} here."])
    assert seen == [("[MASK] works as {text} here.", ["an engineer", "a nurse"])]


def test_association_scores_and_embedding_association():
    male, female = torch.tensor([[1.0, 0.0], [2.0, 0.0]]), torch.tensor([[0.0, 5.0]])
    words = torch.tensor([[3.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    torch.testing.assert_close(association_scores(words, male, female), torch.tensor([1.0, -1.0, 0.0], dtype=torch.float64))
    with pytest.raises(ValueError, match=r"expected \(N, H\), \(M, H\), \(F, H\)"):
        association_scores(words, male, torch.zeros(0, 2))
    table = {"he": [1.0, 0.0], "she": [0.0, 1.0], "pilot": [0.9, 0.1], "nurse": [0.2, 0.8]}
    scores = embedding_association(lambda texts: torch.tensor([table[t] for t in texts]), ["pilot", "nurse"],
                                   ["he"], ["she"])
    assert list(scores) == ["pilot", "nurse"] and scores["pilot"] > 0 > scores["nurse"]
    with pytest.raises(ValueError, match="embed_fn returned 1 vectors for 4 texts"):
        embedding_association(lambda texts: torch.zeros(1, 2), ["pilot", "nurse"], ["he"], ["she"])


def test_plots_and_set_dropout():
    ax = plot_occupation_scores({"nurse": -1.0, "pilot": 0.5, "cook": 0.1})
    assert [t.get_text() for t in ax.get_yticklabels()] == ["nurse", "cook", "pilot"]
    history = [{"epoch": e, "train_accuracy": 0.5 + e / 10, "eval_accuracy": 0.6, "eval_loss": 0.7} for e in (1, 2)]
    axes = plot_accuracy_curves({"plain": history})
    assert len(axes[0].lines) == 2 and len(axes[1].lines) == 1
    with pytest.raises(ValueError, match="track_train_accuracy=True"):
        plot_accuracy_curves({"plain": [{"epoch": 1, "eval_accuracy": 0.5, "eval_loss": 1.0}]})
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.1), torch.nn.Dropout(0.2))
    assert set_dropout(model, 0.3) == 2 and all(m.p == 0.3 for m in model if isinstance(m, torch.nn.Dropout))
    with pytest.raises(ValueError, match=r"dropout probability must be in \[0, 1\)"):
        set_dropout(model, 1.0)
    matplotlib.pyplot.close("all")


def test_lesson_09_checkers(capsys):
    from fmteach.leakage import normalize_text as norm

    def count(train, test):
        normal = {norm(t) for t in train}
        return sum(norm(t) in normal for t in test)

    exercises.check_count_normalized_duplicates(count)
    exercises.check_count_normalized_duplicates(lambda train, test: ...)
    with pytest.raises(AssertionError, match="count normalised duplicates: .*you counted"):
        exercises.check_count_normalized_duplicates(lambda train, test: sum(t in train for t in test))

    def association(word, male, female):
        cos = torch.nn.functional.cosine_similarity
        return (cos(male, word[None]).mean() - cos(female, word[None]).mean()).item()

    exercises.check_association(association)
    with pytest.raises(AssertionError, match="association of one word"):
        exercises.check_association(lambda w, m, f: ((m @ w).mean() - (f @ w).mean()).item())
    out = capsys.readouterr().out
    assert out.count("✅") == 2 and "⏳ count normalised duplicates: not attempted yet" in out
