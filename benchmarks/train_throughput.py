"""Training throughput: fmteach's MiniGPT vs transformers' GPT2LMHeadModel, measured side by side.

    python benchmarks/train_throughput.py                 # CPU, the cpu profile's model size
    python benchmarks/train_throughput.py --device cuda   # GPU, the gpu profile's size, bf16 autocast

Both models have the identical configuration and the same weights (MiniGPT.from_gpt2), see the
same batches on the same device, use AdamW (fused on CUDA) and alternate in rounds, so a busy
machine slows both alike. GPT-2 runs with attn_implementation="sdpa". Prints tokens/s and the ratio.
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
from fmteach.model import GPTConfig, MiniGPT  # noqa: E402


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
    parser.add_argument("--batch-size", type=int, default=None, help="default 12 (cpu size) or 64 (gpu size)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per model per round")
    parser.add_argument("--compile", action="store_true", help="torch.compile both models")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    size = args.size or ("gpu" if device.type == "cuda" else "cpu")
    config = getattr(GPTConfig, size)(vocab_size=65, dropout=0.0)
    batch_size = args.batch_size or {"smoke": 32, "cpu": 12, "gpu": 64}[size]
    if device.type == "cpu":
        torch.set_flush_denormal(True)  # as fmteach.train does, for both models
    mini, gpt2 = build_models(config, device)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
    generator = torch.Generator().manual_seed(0)
    batches = [torch.randint(config.vocab_size, (batch_size, config.block_size + 1), generator=generator).to(device)
               for _ in range(args.steps)]

    def loss_mini(model, batch):
        return model(batch[:, :-1], batch[:, 1:])[1]

    def loss_gpt2(model, batch):  # the same cross-entropy on the same positions
        logits = model(batch[:, :-1]).logits
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)), batch[:, 1:].reshape(-1))

    contenders = {}
    for name, model, loss_fn in (("MiniGPT", mini, loss_mini), ("GPT2LMHeadModel", gpt2, loss_gpt2)):
        fused = {"fused": True} if device.type == "cuda" else {}
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, **fused)
        contenders[name] = (torch.compile(model) if args.compile else model, loss_fn, optimizer)
    with torch.no_grad():
        check = [fn(m, batches[0]).item() for m, fn, _ in contenders.values()]
    print(f"{config}, batch {batch_size}, {device}{', compiled' if args.compile else ''}; "
          f"initial losses {check[0]:.6f} vs {check[1]:.6f} (same weights)")

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
        run_steps(name)
    seconds = {name: [] for name in contenders}
    names = list(contenders)
    for r in range(args.rounds):
        for name in names if r % 2 == 0 else names[::-1]:  # alternate who goes first
            seconds[name].append(run_steps(name))
    tokens = args.steps * batch_size * config.block_size
    rates = {name: tokens / statistics.median(s) for name, s in seconds.items()}
    for name, rate in rates.items():
        spread = [f"{tokens / s:,.0f}" for s in seconds[name]]
        print(f"{name:>16}: {rate:>12,.0f} tokens/s (median of {args.rounds} rounds: {', '.join(spread)})")
    ratio = rates["MiniGPT"] / rates["GPT2LMHeadModel"]
    print(f"ratio MiniGPT / GPT2LMHeadModel = {ratio:.2f}")
    return {"tokens_per_s": rates, "ratio": ratio}


if __name__ == "__main__":
    main()
