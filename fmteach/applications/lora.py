"""Fine-tuning a sliver of the model: LoRA (Hu et al. 2021) from scratch, and the cheaper baselines.

LoRA keeps a pretrained ``nn.Linear`` frozen (weight ``W``, ``(out, in)``) and learns a low-rank
change beside it: ``y = W x + b + (alpha / r) * B (A x)`` with ``A`` ``(r, in)`` and ``B`` ``(out, r)``.
``B`` starts at zero, so before the first step the model is exactly the pretrained one; ``A`` starts
random (as ``nn.Linear`` does), so the first step has a gradient to follow. After training,
``W + (alpha / r) B A`` is one plain ``nn.Linear`` again (:meth:`LoRALinear.merge`): no extra cost
at inference time. The names mirror the ``peft`` library's (``base_layer``, ``lora_A``, ``lora_B``,
``scaling``); ``tests/test_lora.py`` proves the outputs and gradients equal to peft's.

The other ways to train a part of a model, for the lesson's comparison at one step budget:
:func:`freeze` (a linear probe: only the head), :func:`bitfit` (the biases, Ben Zaken et al. 2022)
and :func:`train_last_layers`. Module names are matched as peft matches ``target_modules``: a name
matches a module whose full name is that name or ends with ``"." + name``
(``"query"`` matches ``encoder.layer.0.attention.self.query``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .._checks import check_positive, is_int, is_number
from ..seeding import DEFAULT_SEED, seeded

__all__ = ["LoRALinear", "apply_lora", "merge_lora", "freeze", "bitfit", "train_last_layers",
           "count_trainable", "count_parameters", "trainable_state_dict", "ADAPTATION_METHODS", "adapt",
           "adaptation_learning_rate"]

# The ways of adapting a pretrained classifier that lesson 12 compares (see :func:`adapt`).
ADAPTATION_METHODS = ("linear probe", "BitFit", "LoRA r=1", "LoRA r=2", "LoRA r=4", "LoRA r=8", "LoRA r=16",
                      "last layer", "last 2 layers", "full")
_WHOLE_BLOCKS = ("last layer", "last 2 layers", "full")


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update: ``(..., in) -> (..., out)``.

    Draws ``A`` from torch's global RNG, as ``nn.Linear`` does (:func:`apply_lora` seeds it)."""

    def __init__(self, base_layer: nn.Linear, r: int, alpha: float, dropout: float = 0.0):
        super().__init__()
        if not isinstance(base_layer, nn.Linear):
            raise TypeError(f"base_layer must be an nn.Linear, got {type(base_layer).__name__}")
        _check_lora_arguments(r, alpha, dropout)
        self.base_layer = base_layer.requires_grad_(False)
        self.r, self.alpha, self.scaling = r, alpha, alpha / r
        like = dict(device=base_layer.weight.device, dtype=base_layer.weight.dtype)
        self.lora_A = nn.Parameter(torch.empty(r, base_layer.in_features, **like))   # (r, in)
        self.lora_B = nn.Parameter(torch.zeros(base_layer.out_features, r, **like))  # (out, r): zero, so the start = W
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # nn.Linear's own init, as peft's
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    @property
    def in_features(self) -> int:
        return self.base_layer.in_features

    @property
    def out_features(self) -> int:
        return self.base_layer.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(f"x has shape {tuple(x.shape)}: its last dimension must be in_features={self.in_features}")
        update = F.linear(F.linear(self.dropout(x), self.lora_A), self.lora_B)  # (..., r) -> (..., out)
        return self.base_layer(x) + update * self.scaling

    def delta_weight(self) -> torch.Tensor:
        """``(alpha / r) B A``, ``(out, in)``: what training has added to ``W``; rank at most ``r``."""
        return (self.lora_B @ self.lora_A) * self.scaling

    @torch.no_grad()
    def merge(self) -> nn.Linear:
        """A new plain ``nn.Linear`` with weight ``W + (alpha / r) B A`` and the base's bias: the same
        outputs (dropout off), no extra cost. Its parameters are frozen as the base's were."""
        base = self.base_layer
        merged = nn.Linear(self.in_features, self.out_features, bias=base.bias is not None,
                           device=base.weight.device, dtype=base.weight.dtype)
        merged.weight.copy_(base.weight + self.delta_weight())
        if base.bias is not None:
            merged.bias.copy_(base.bias)
        return merged.requires_grad_(base.weight.requires_grad)

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha}, scaling={self.scaling:g}"


def _check_lora_arguments(r, alpha, dropout) -> None:
    check_positive(r=r)
    if not is_number(alpha) or alpha <= 0:
        raise ValueError(f"alpha must be a positive number, got {alpha!r}")
    if not is_number(dropout) or not 0 <= dropout < 1:
        raise ValueError(f"dropout must be a probability in [0, 1), got {dropout!r}")


# --- Which modules: peft's matching rule --------------------------------------------------------

def _names(argument: str, names) -> tuple[str, ...]:
    names = (names,) if isinstance(names, str) else names
    if not isinstance(names, Sequence) or not all(isinstance(n, str) and n for n in names):
        raise TypeError(f"{argument} must be a module name or a sequence of names, got {names!r}")
    return tuple(names)


def _matches(module_name: str, key: str) -> bool:
    return module_name == key or module_name.endswith("." + key)


def _check_model(model) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, new)


def freeze(model: nn.Module, trainable: str | Sequence[str] = ()) -> nn.Module:
    """Freeze every parameter except those of the modules named in ``trainable`` (e.g.
    ``("classifier",)``: a linear probe on frozen features). In place; returns ``model``."""
    _check_model(model)
    found = {}
    for key in _names("trainable", trainable):
        found[key] = [module for name, module in model.named_modules() if _matches(name, key)]
        if not found[key]:
            raise ValueError(f"trainable: {key!r} matches no module of {type(model).__name__}")
    model.requires_grad_(False)  # only once every name is known to match: a bad call changes nothing
    for module in (m for modules in found.values() for m in modules):
        module.requires_grad_(True)
    return model


def bitfit(model: nn.Module, trainable: str | Sequence[str] = ()) -> nn.Module:
    """BitFit: train only the bias vectors (every parameter named ``bias``, LayerNorm's too) and
    the modules named in ``trainable``. In place; returns ``model``."""
    _check_model(model)
    biases = [p for name, p in model.named_parameters() if _matches(name, "bias")]
    if not biases:
        raise ValueError(f"{type(model).__name__} has no parameter named 'bias': BitFit has nothing to train")
    freeze(model, trainable)
    for p in biases:
        p.requires_grad_(True)
    return model


def train_last_layers(model: nn.Module, k: int, trainable: str | Sequence[str] = (), *,
                      layers: str = "encoder.layer") -> nn.Module:
    """Train only the last ``k`` blocks of the ``nn.ModuleList`` named ``layers`` (BERT's
    ``encoder.layer``) and the modules named in ``trainable``; ``k=0`` is a linear probe. In place."""
    _check_model(model)
    if not is_int(k) or k < 0:
        raise ValueError(f"k must be an int >= 0, got {k!r}")
    blocks = [m for name, m in model.named_modules() if _matches(name, layers) and isinstance(m, nn.ModuleList)]
    if len(blocks) != 1:
        raise ValueError(f"layers={layers!r} names {len(blocks)} nn.ModuleList of {type(model).__name__}: expected one")
    if k > len(blocks[0]):
        raise ValueError(f"k={k} is more than the {len(blocks[0])} layers of {layers!r}")
    freeze(model, trainable)
    for block in list(blocks[0])[len(blocks[0]) - k:]:
        block.requires_grad_(True)
    return model


def apply_lora(model: nn.Module, r: int, alpha: float, target_modules: str | Sequence[str] = ("query", "value"), *,
               trainable: str | Sequence[str] = (), dropout: float = 0.0, seed: int = DEFAULT_SEED) -> nn.Module:
    """Wrap every ``nn.Linear`` named in ``target_modules`` in a :class:`LoRALinear` and freeze the
    rest, except the modules named in ``trainable`` (e.g. ``("classifier",)``). In place; returns
    ``model``. ``A`` is drawn inside ``seeded(seed)``: the caller's RNG is left as it was."""
    _check_model(model)
    _check_lora_arguments(r, alpha, dropout)
    keys = _names("target_modules", target_modules)
    if not keys:
        raise ValueError("target_modules is empty: name at least one nn.Linear (e.g. 'query')")
    if any(isinstance(m, LoRALinear) for m in model.modules()):
        raise ValueError(f"{type(model).__name__} already has LoRA layers: apply_lora once (merge_lora first to redo it)")
    targets = {}
    for key in keys:
        found = {name: m for name, m in model.named_modules() if _matches(name, key)}
        if not found:
            linears = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
            raise ValueError(f"target_modules: {key!r} matches no module of {type(model).__name__}; its nn.Linear "
                             f"layers include {linears[:4]}")
        for name, module in found.items():
            if not isinstance(module, nn.Linear):
                raise TypeError(f"target_modules: {key!r} matches {name!r}, a {type(module).__name__}: "
                                f"LoRA here wraps nn.Linear layers only")
        targets.update(found)
    freeze(model, trainable)
    with seeded(seed):
        for name, module in targets.items():
            _replace(model, name, LoRALinear(module, r, alpha, dropout))
    return model


def merge_lora(model: nn.Module) -> nn.Module:
    """Replace every :class:`LoRALinear` inside ``model`` by its :meth:`~LoRALinear.merge`: plain
    ``nn.Linear`` layers again, the same outputs. In place; returns ``model``."""
    _check_model(model)
    if isinstance(model, LoRALinear):
        raise TypeError("model is itself a LoRALinear: call its .merge() for the merged nn.Linear")
    wrapped = [name for name, m in model.named_modules() if isinstance(m, LoRALinear)]
    if not wrapped:
        raise ValueError(f"{type(model).__name__} has no LoRALinear layers: apply_lora first")
    for name in wrapped:
        _replace(model, name, model.get_submodule(name).merge())
    return model


# --- What each method trains and stores -----------------------------------------------------------

def count_parameters(model: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts, each shared tensor once. The trainable count equals
    peft's ``get_nb_trainable_parameters``; peft's total also counts its copy of each head it trains
    (``modules_to_save``)."""
    _check_model(model)
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def count_trainable(model: nn.Module) -> int:
    """How many parameter values an optimiser would update."""
    return count_parameters(model)[0]


def trainable_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The trainable parameters by name (detached copies): all a task must store beside the shared
    pretrained model -- a LoRA adapter and head, the biases of BitFit, or everything when all trains."""
    _check_model(model)
    return {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}


def adapt(model: nn.Module, method: str, *, seed: int = DEFAULT_SEED) -> nn.Module:
    """Set what ``method`` (one of :data:`ADAPTATION_METHODS`) trains on ``model``, in place; returns it.

    Each trains the ``"classifier"`` head and: nothing else (``"linear probe"``), every bias
    (``"BitFit"``), a LoRA update of rank r on ``query`` and ``value`` with ``alpha=16``
    (``"LoRA r=..."``, ``A`` drawn from ``seed``), the last one or two encoder blocks, or every weight
    (``"full"``). Lesson 12 writes the same table inline and checks it against this function."""
    if method == "linear probe":
        return freeze(model, "classifier")
    if method == "BitFit":
        return bitfit(model, "classifier")
    if isinstance(method, str) and method in ADAPTATION_METHODS and method.startswith("LoRA r="):
        return apply_lora(model, int(method.removeprefix("LoRA r=")), alpha=16, target_modules=("query", "value"),
                          trainable="classifier", seed=seed)
    if method in ("last layer", "last 2 layers"):
        return train_last_layers(model, 1 if method == "last layer" else 2, "classifier")
    if method == "full":
        return model.requires_grad_(True)
    raise ValueError(f"method must be one of {', '.join(ADAPTATION_METHODS)}, got {method!r}")


def adaptation_learning_rate(method: str) -> float:
    """The learning rate lesson 12 gives ``method`` at its step budget: 1e-4 when whole blocks train
    (the last layers, full fine-tuning), 1e-3 when only a few values do (probe, BitFit, LoRA)."""
    if method not in ADAPTATION_METHODS:
        raise ValueError(f"method must be one of {', '.join(ADAPTATION_METHODS)}, got {method!r}")
    return 1e-4 if method in _WHOLE_BLOCKS else 1e-3
