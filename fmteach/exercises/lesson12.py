"""Lesson 12, adapting a foundation model cheaply: write the LoRA layer (12.1), without ``peft``; the
predictions 12.p1 (what one task's LoRA adapter weighs on disk) and 12.p2 (what int8 quantisation saves on
MiniLM). The lesson's question about prompt wording is measured: :func:`~._checking.check_measured_prediction`."""

from __future__ import annotations

import inspect
import re
import types
from collections.abc import Callable

import torch

from ..seeding import seeded
from ._checking import _add_prediction, _add_solution, _call, _close, _exercise, _NotAttempted

__all__ = ["check_lora_linear"]

_HINTS = (  # questions that guide, shown together after any failure
    "which parameters may train, and what tells PyTorch that the others may not?",
    "what must one of the two factors be at the start for the first output to equal the base layer's?",
    "the update is multiplied by one number made of alpha and r",
    "merging folds the update into one weight matrix: which shape has B @ A, and which has W?",
)

# (in_features, out_features, r, alpha): unequal in and out catch a transposed matrix; alpha / r != 1
_CASES = ((12, 20, 3, 6.0), (20, 12, 2, 1.0))


def _peft_use(layer: torch.nn.Module, make_layer) -> str | None:
    """What, if anything, ties the learner's layer to the peft library: a peft module inside it, a
    peft class among its bases, an ``import peft`` in its code, or a name its code uses bound to peft."""
    is_peft = lambda obj: (getattr(obj, "__module__", None) or getattr(obj, "__name__", "")).split(".")[0] == "peft"  # noqa: E731
    for name, module in layer.named_modules():
        if any(is_peft(cls) for cls in type(module).__mro__):
            return f"{name or 'the layer'} is a {type(module).__qualname__} from peft"
    classes = [c for c in type(layer).__mro__ if not c.__module__.startswith(("torch", "builtins"))]
    functions = [make_layer] if isinstance(make_layer, types.FunctionType) else []
    for cls in classes:
        for value in vars(cls).values():
            value = getattr(value, "__func__", getattr(value, "fget", value))  # static/class methods, properties
            if isinstance(value, types.FunctionType):
                functions.append(value)
    for function in functions:
        try:
            source = inspect.getsource(function)
        except (OSError, TypeError):
            source = ""
        if re.search(r"^\s*(from\s+peft\b|import\s+peft\b)", source, flags=re.MULTILINE):
            return f"{function.__qualname__} imports peft"
        codes, names = [function.__code__], set()
        while codes:  # the names of nested functions and comprehensions count too
            code = codes.pop()
            names.update(code.co_names)
            codes.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
        used = [n for n in sorted(names) if n in function.__globals__ and is_peft(function.__globals__[n])]
        if used:
            return f"{function.__qualname__} uses {used[0]!r} from peft"
    return None


def _low_rank_factors(layer, n_in: int, n_out: int, r: int) -> tuple[torch.Tensor, torch.Tensor]:
    found = []
    for name, shape in (("lora_A", (r, n_in)), ("lora_B", (n_out, r))):
        factor = getattr(layer, name, None)
        factor = factor.weight if isinstance(factor, torch.nn.Linear) else factor
        if not isinstance(factor, torch.Tensor):
            raise AssertionError(f"the layer has no tensor {name}: keep the skeleton's names, lora_A (r, in_features) "
                                 f"and lora_B (out_features, r)")
        if tuple(factor.shape) != shape:
            raise AssertionError(f"{name} has shape {tuple(factor.shape)} for in_features={n_in}, out_features={n_out}, "
                                 f"r={r}: expected {shape}")
        if not factor.requires_grad:
            raise AssertionError(f"{name} does not require grad: it is what LoRA trains")
        found.append(factor)
    return found[0], found[1]


def _check_frozen_base(layer, A, B) -> list[torch.Tensor]:
    others = [(name, p) for name, p in layer.named_parameters() if p is not A and p is not B]
    if not others:
        raise AssertionError("the layer holds no parameters besides lora_A and lora_B: keep the base layer inside it")
    trainable = [name for name, p in others if p.requires_grad]
    if trainable:
        raise AssertionError(f"{trainable[0]} still requires grad: the base layer must be frozen, only lora_A and "
                             f"lora_B train")
    return [p for _, p in others]


def _check_scaling(got, base_out, update, alpha: float, r: int, what: str) -> None:
    for wrong, why in ((1.0, "the update B A x is not scaled"), (alpha, "the update is scaled by alpha"),
                       (r / alpha, "the update is scaled by r / alpha")):
        if wrong != alpha / r and isinstance(got, torch.Tensor) and got.shape == base_out.shape \
                and torch.allclose(got, base_out + wrong * update, atol=1e-5):
            raise AssertionError(f"{what}: {why}; LoRA scales it by alpha / r = {alpha / r:g}")
    _close(got, base_out + (alpha / r) * update, what, atol=1e-5)


def _check_case(make_layer, n_in: int, n_out: int, r: int, alpha: float) -> None:
    what = f"in_features={n_in}, out_features={n_out}, r={r}, alpha={alpha:g}"
    generator = torch.Generator().manual_seed(12 + n_in)
    base = torch.nn.Linear(n_in, n_out)
    layer = _call(make_layer, base, r, alpha)
    if layer is ...:
        raise _NotAttempted
    if not isinstance(layer, torch.nn.Module):
        raise AssertionError(f"make_layer should return an nn.Module, got {type(layer).__name__}")
    used = _peft_use(layer, make_layer)
    if used:
        raise AssertionError(f"{used}: this exercise asks you to write LoRA without the peft library")
    from ..applications.lora import LoRALinear  # section 1's layer: the answer, so refused too

    for name, module in layer.named_modules():
        if isinstance(module, LoRALinear):
            raise AssertionError(f"{name or 'the layer'} is fmteach's lora.LoRALinear from section 1: this exercise "
                                 f"asks you to write the layer yourself")
    A, B = _low_rank_factors(layer, n_in, n_out, r)
    base_params = _check_frozen_base(layer, A, B)
    layer.eval()
    x = torch.randn(2, 5, n_in, generator=generator)  # (batch, tokens, in): leading dimensions pass through
    W, bias = base.weight.detach().clone(), base.bias.detach().clone()
    base_out = x @ W.T + bias
    if not torch.any(A != 0):
        raise AssertionError(f"{what}: lora_A is all zeros at the start: with A = B = 0 no gradient ever reaches "
                             f"either; A starts random")
    if torch.any(B != 0):
        raise AssertionError(f"{what}: lora_B should start at zero, so that the first output is the base layer's")
    _close(_call(layer, x), base_out, f"the output at the start ({what}): it should equal the base layer's", atol=1e-6)

    with torch.no_grad():  # now a trained-looking update: the scaling shows
        A.copy_(torch.randn(A.shape, generator=generator))
        B.copy_(torch.randn(B.shape, generator=generator))
    update = x @ A.detach().T @ B.detach().T
    _check_scaling(_call(layer, x), base_out, update, alpha, r, f"the output with lora_B non-zero ({what})")

    before = [p.detach().clone() for p in base_params]
    optimizer = torch.optim.SGD([A, B], lr=0.1)
    _call(layer, x).pow(2).mean().backward()
    for name, factor in (("lora_A", A), ("lora_B", B)):
        if factor.grad is None or not torch.any(factor.grad != 0):
            raise AssertionError(f"{what}: no gradient reached {name}: does the forward pass use it directly "
                                 f"(not a .data or .detach() copy)?")
    if any(p.grad is not None for p in base_params):
        raise AssertionError(f"{what}: the base layer received a gradient: it must be frozen")
    optimizer.step()
    if not all(torch.equal(p, b) for p, b in zip(base_params, before)):
        raise AssertionError(f"{what}: a training step changed the base layer's weights")

    expected = _call(layer, x).detach()
    merged = layer.merge() if callable(getattr(layer, "merge", None)) else None
    if not isinstance(merged, torch.nn.Linear) or (merged.in_features, merged.out_features) != (n_in, n_out):
        raise AssertionError(f"{what}: merge() should return an nn.Linear({n_in}, {n_out}), got {merged!r}")
    with torch.no_grad():
        got = merged(x)
        if torch.allclose(got, base_out, atol=1e-5):
            raise AssertionError(f"{what}: the merged layer gives the base layer's output: add the update to W")
        _check_scaling(got, base_out, x @ A.T @ B.T, alpha, r, f"the merged layer's output ({what})")
        _close(got, expected, f"the merged layer's output ({what})", atol=1e-5)


def check_lora_linear(make_layer: Callable) -> None:
    """Exercise 12.1: ``make_layer(base: nn.Linear, r, alpha)`` -> a module (your class itself will do)
    with ``lora_A`` ``(r, in)``, ``lora_B`` ``(out, r)``, ``forward(x)`` and ``merge() -> nn.Linear``.
    Checked: no peft, the zero start, the ``alpha / r`` scaling, the frozen base, the merge."""
    with _exercise("the LoRA layer", "; ".join(_HINTS)):
        if make_layer is ...:
            raise _NotAttempted
        for case in _CASES:
            with seeded(12):  # the learner's initialisation and merge draw here, not from the caller's RNG
                _check_case(make_layer, *case)


_add_solution("12.1", '''class MyLoRALinear(nn.Module):
    def __init__(self, base: nn.Linear, r: int, alpha: float):
        super().__init__()
        self.base = base.requires_grad_(False)                      # the pretrained layer never trains
        self.scaling = alpha / r
        self.lora_A = nn.Parameter(torch.randn(r, base.in_features) / base.in_features ** 0.5)  # (r, in): random
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r))                         # (out, r): zero

    def forward(self, x):
        return self.base(x) + (x @ self.lora_A.T @ self.lora_B.T) * self.scaling

    @torch.no_grad()
    def merge(self) -> nn.Linear:
        merged = nn.Linear(self.base.in_features, self.base.out_features, bias=self.base.bias is not None)
        merged.weight.copy_(self.base.weight + self.scaling * self.lora_B @ self.lora_A)
        if self.base.bias is not None:
            merged.bias.copy_(self.base.bias)
        return merged
''')


_add_prediction(
    "12.p1",
    "MiniLM fine-tuned for one task with LoRA (r = 8 on the query and value layers of all 6 blocks) plus its new "
    "classifier head: saved to disk, how big is what the task adds, compared with saving the whole fine-tuned model?",
    {"a": "about a third: attention is a large part of the model", "b": "about a thirtieth",
     "c": "about a three-hundredth"},
    "c",
    "a wrapped 384 x 384 layer gains r (in + out) = 8 x 768 = 6,144 values against its 147,456 weights, and only "
    "12 layers are wrapped: 73,728 adapter values and 770 in the head, 0.33 % of MiniLM's 22.7 M. The embeddings, "
    "the feed-forward layers and the rest are the pretrained model's, stored once for every task.",
)
_add_prediction(
    "12.p2",
    "Dynamic int8 quantisation (torch.ao.quantization.quantize_dynamic on nn.Linear) stores each linear layer's "
    "weights in 1 byte instead of 4. Saved to disk, the int8 MiniLM classifier is, compared with the float32 one, ...",
    {"a": "about a quarter of the size", "b": "about two thirds of the size",
     "c": "about the same size: only the activations change"},
    "b",
    "about half of MiniLM's 22.7 M parameters are its word-embedding table (30,522 x 384 = 11.7 M), and "
    "quantize_dynamic with {nn.Linear} leaves embeddings in float32; only the linear layers' 10.8 M weights shrink "
    "to a quarter. In a model whose weights are mostly linear layers (BERT-base: about a fifth embeddings, a 7 B "
    "decoder: a few per cent) int8 comes much closer to a quarter.",
)
