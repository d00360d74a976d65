"""Load a Hugging Face BERT checkpoint into MiniBert by a readable name mapping.

Our modules carry Hugging Face's names, so most names map to themselves. The mapping only
handles what differs between checkpoints: the ``bert.`` prefix of task models, the old
``LayerNorm.gamma/beta`` spelling, buffers that are not weights, and heads we do not have.
Nothing is skipped silently: missing or unused weights are reported by name.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from safetensors.torch import load_file

__all__ = ["hf_name_to_ours", "load_hf_bert_state_dict"]

NOT_WEIGHTS = ("embeddings.position_ids",)  # a buffer of 0..511 in HF checkpoints; we compute it
HEADS = ("cls.", "classifier.")  # task heads: may be missing (fresh init, reported) or unused (reported)
OPTIONAL = ("pooler.", "bert.pooler.")  # HF's MLM model has no pooler; MiniLM's checkpoint has one


def hf_name_to_ours(name: str, base_prefix: str) -> str | None:
    """``encoder.layer.0.attention.self.query.weight`` -> our name, or None for a non-weight.

    ``base_prefix`` is where our encoder sits: ``""`` (MiniBertModel) or ``"bert."`` (task models).
    """
    name = name.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
    bare = name.removeprefix("bert.")
    if bare.endswith(NOT_WEIGHTS):
        return None
    if name.startswith(HEADS):
        return name  # a head: same name in both
    return base_prefix + bare  # an encoder weight, with or without "bert." in the checkpoint


def load_hf_bert_state_dict(model: torch.nn.Module, safetensors_path: str | Path, *, strict_heads: bool = False) -> dict:
    """Copy weights into ``model``; raise on a missing or misshapen encoder weight, report heads.

    Returns ``{"loaded": [...], "missing_heads": [...], "unused": [...]}`` (also ``model.load_report``).
    A head missing from the checkpoint (an MLM head on MiniLM, a new classifier) keeps its fresh
    initialisation and is named in a warning; ``strict_heads=True`` makes that an error.
    """
    path = Path(safetensors_path)
    if not path.exists():
        raise FileNotFoundError(f"no weights at {path}: expected a Hugging Face folder with model.safetensors")
    try:
        checkpoint = load_file(str(path))
    except Exception as err:  # SafetensorError on a truncated or foreign file
        raise ValueError(f"{path} cannot be read as safetensors weights ({type(err).__name__}: {err}): "
                         f"expected a Hugging Face model.safetensors") from err
    ours = model.state_dict()
    tied = {"cls.predictions.decoder.weight"}  # tied to the word embeddings: loaded through them
    renamed, unused = {}, []
    for hf_name, tensor in checkpoint.items():
        our_name = hf_name_to_ours(hf_name, getattr(model, "base_prefix", ""))
        if our_name is None:
            continue
        if our_name in ours:
            if ours[our_name].shape != tensor.shape:
                raise ValueError(f"{hf_name} has shape {tuple(tensor.shape)} but {our_name} is {tuple(ours[our_name].shape)}")
            renamed[our_name] = tensor
        elif our_name not in tied:
            unused.append(hf_name)
    missing = sorted(set(ours) - set(renamed) - tied)
    missing_encoder = [n for n in missing if not n.startswith(HEADS + OPTIONAL)]
    if missing_encoder:
        raise KeyError(f"{path} lacks encoder weights {missing_encoder[:8]}{' ...' if len(missing_encoder) > 8 else ''}")
    if missing and strict_heads:
        raise KeyError(f"{path} lacks head weights {missing}")
    unexpected = [n for n in unused if not n.startswith(HEADS + OPTIONAL)]
    if unexpected:
        raise KeyError(f"{path} has weights MiniBert does not know: {unexpected[:8]}")
    model.load_state_dict(renamed, strict=False)
    if missing:
        warnings.warn(f"not in the checkpoint, freshly initialised: {missing}", stacklevel=3)
    if unused:
        warnings.warn(f"in the checkpoint but not used by {type(model).__name__}: {unused}", stacklevel=3)
    model.load_report = {"loaded": sorted(renamed), "missing_heads": missing, "unused": sorted(unused)}
    return model.load_report
