"""Training throughput: fmteach's MiniGPT vs transformers' GPT2LMHeadModel, measured side by side.

    python benchmarks/train_throughput.py                 # CPU, the cpu profile's model size
    python benchmarks/train_throughput.py --device cuda   # GPU, the gpu profile's size, 16-bit autocast (bf16, or fp16 on a T4)
    python benchmarks/train_throughput.py --device cuda --compile --jsonl runs/throughput.jsonl

Both models have the identical configuration and the same weights (MiniGPT.from_gpt2), see the
same batches on the same device, use AdamW (fused on CUDA) and alternate in rounds, so a busy
machine slows both alike. GPT-2 runs with attn_implementation="sdpa". Prints tokens/s, the ratio and,
on a GPU, model FLOPs utilisation: training FLOPs per token 6 N + 12 L d T (N parameters without the
position table, L layers, width d, context T; PaLM's appendix B) times tokens/s, over the card's
dense bf16 peak (--peak-tflops; 989 for an H100 or H200 SXM by the datasheet).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without installing
from fmteach._io import append_jsonl  # noqa: E402
from fmteach.model import GPTConfig, MiniGPT  # noqa: E402
from fmteach.profile import autocast_dtype  # noqa: E402

DATASHEET_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}  # dense, no sparsity


def training_flops_per_token(model: MiniGPT) -> float:
    """6 N for the weights' matrix products (forward + backward) plus 12 L d T for attention scores."""
    config, counts = model.config, model.num_parameters()
    n = counts["total"] - counts["position embedding"]  # a table lookup, no multiply-adds
    return 6 * n + 12 * config.n_layer * config.n_embd * config.block_size


def positive(kind):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value
    return parse


def build_models(config: GPTConfig, device: torch.device):
    from transformers import GPT2Config, GPT2LMHeadModel

    hf_config = GPT2Config(
        vocab_size=config.vocab_size, n_positions=config.block_size, n_embd=config.n_embd,
        n_layer=config.n_layer, n_head=config.n_head, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        bos_token_id=0, eos_token_id=0, attn_implementation="sdpa",
    )
    torch.manual_seed(0)
    gpt2 = GPT2LMHeadModel(hf_config).to(device).train()
    mini = MiniGPT.from_gpt2(gpt2).to(device).train()
    return mini, gpt2


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", choices=["smoke", "cpu", "gpu"], default=None,
                        help="model preset (default: by device)")
    parser.add_argument("--batch-size", type=positive(int), default=None, help="default 12 (cpu size) or 64 (gpu size)")
    parser.add_argument("--rounds", type=positive(int), default=6)
    parser.add_argument("--steps", type=positive(int), default=10, help="timed steps per model per round")
    parser.add_argument("--compile", action="store_true", help="torch.compile both models")
    parser.add_argument("--compile-backend", default="inductor",
                        help="torch.compile backend ('eager' only traces: a quick check of the compile path)")
    parser.add_argument("--peak-tflops", type=positive(float), default=None,
                        help="the device's dense bf16 peak for MFU (default: datasheet value for H100/H200/A100)")
    parser.add_argument("--max-seconds", type=positive(float), default=None,
                        help="time budget for the timed rounds: stop after the round that spends it (2 at least)")
    parser.add_argument("--jsonl", default=None, help="append each round and the result to this JSON-lines file")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    size = args.size or ("gpu" if device.type == "cuda" else "cpu")
    config = getattr(GPTConfig, size)(vocab_size=65, dropout=0.0)
    batch_size = args.batch_size or {"smoke": 32, "cpu": 12, "gpu": 64}[size]
    if device.type == "cpu":
        torch.set_flush_denormal(True)  # as fmteach.train does inside its loop, for both models
    mini, gpt2 = build_models(config, device)
    amp_dtype = autocast_dtype(device)  # bf16 where the GPU has it, fp16 on a T4/V100, None on the CPU
    amp = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None else nullcontext()
    generator = torch.Generator().manual_seed(0)
    batches = [torch.randint(config.vocab_size, (batch_size, config.block_size + 1), generator=generator).to(device)
               for _ in range(args.steps)]

    def loss_mini(model, batch):
        return model(batch[:, :-1], batch[:, 1:]).loss

    def loss_gpt2(model, batch):  # the same cross-entropy on the same positions
        logits = model(batch[:, :-1]).logits
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)), batch[:, 1:].reshape(-1))

    contenders = {}
    for name, model, loss_fn in (("MiniGPT", mini, loss_mini), ("GPT2LMHeadModel", gpt2, loss_gpt2)):
        fused = {"fused": True} if device.type == "cuda" else {}
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, **fused)
        compiled = torch.compile(model, backend=args.compile_backend) if args.compile else model
        contenders[name] = (compiled, loss_fn, optimizer)
    with torch.no_grad():
        check = [fn(m, batches[0]).item() for m, fn, _ in contenders.values()]
    print(f"{config}, batch {batch_size}, {device}{', compiled' if args.compile else ''}; "
          f"initial losses {check[0]:.6f} vs {check[1]:.6f} (same weights)")
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    append_jsonl(args.jsonl, {"event": "start", "device": device_name, "torch": torch.__version__,
                              "config": config.__dict__, "batch_size": batch_size, "compile": args.compile,
                              "compile_backend": args.compile_backend if args.compile else None,
                              "initial_losses": check})

    def run_steps(name: str) -> float:
        model, loss_fn, optimizer = contenders[name]
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for batch in batches:
            with amp:
                loss = loss_fn(model, batch)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    for name in contenders:  # warm-up round, not timed: kernel selection, compilation, allocator
        warm_up = run_steps(name)
        append_jsonl(args.jsonl, {"event": "warm_up", "model": name, "seconds": warm_up})
    seconds = {name: [] for name in contenders}
    names = list(contenders)
    tokens = args.steps * batch_size * config.block_size
    started = time.perf_counter()
    for r in range(args.rounds):
        for name in names if r % 2 == 0 else names[::-1]:  # alternate who goes first
            seconds[name].append(run_steps(name))
        append_jsonl(args.jsonl, {"event": "round", "round": r, **{f"{n}_tokens_per_s": tokens / s[-1]
                                                                    for n, s in seconds.items()}})
        if args.max_seconds is not None and r >= 1 and time.perf_counter() - started >= args.max_seconds:
            print(f"time budget of {args.max_seconds:g} s spent after {r + 1} rounds")
            break
    rates = {name: tokens / statistics.median(s) for name, s in seconds.items()}
    for name, rate in rates.items():
        spread = [f"{tokens / s:,.0f}" for s in seconds[name]]
        print(f"{name:>16}: {rate:>12,.0f} tokens/s (median of {args.rounds} rounds: {', '.join(spread)})")
    ratio = rates["MiniGPT"] / rates["GPT2LMHeadModel"]
    print(f"ratio MiniGPT / GPT2LMHeadModel = {ratio:.2f}")
    result = {"tokens_per_s": rates, "ratio": ratio, "rounds": len(seconds["MiniGPT"]),
              "flops_per_token": training_flops_per_token(mini)}
    peak = args.peak_tflops or next((v for k, v in DATASHEET_BF16_TFLOPS.items() if k in device_name), None)
    if peak is not None:
        result["peak_tflops"] = peak
        result["mfu"] = {name: result["flops_per_token"] * rate / (peak * 1e12) for name, rate in rates.items()}
        print("MFU (" + f"{result['flops_per_token'] / 1e6:.1f} MFLOP/token, peak {peak:g} TFLOP/s): "
              + ", ".join(f"{name} {mfu:.1%}" for name, mfu in result["mfu"].items()))
    append_jsonl(args.jsonl, {"event": "final", "device": device_name, "compile": args.compile, **result})
    return result


if __name__ == "__main__":
    main()
