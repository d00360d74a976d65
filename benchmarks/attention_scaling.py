"""From-scratch attention vs torch's fused SDPA as the sequence length doubles: time and peak memory.

    python benchmarks/attention_scaling.py                  # CPU, T = 128 ... 1024
    python benchmarks/attention_scaling.py --device cuda    # GPU, T = 128 ... 4096, bf16 (fp16 on a T4)

Each measurement is a causal forward + backward pass over q, k, v of shape (B, H, T, hs). The two
implementations alternate within every repeat, so a busy machine slows both alike. The from-scratch
version stores the (B, H, T, T) weights, so its memory grows with T^2; flash / memory-efficient
SDPA keeps only O(T) per row. Prints a table and saves a plot (--out).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without installing
from fmteach._io import append_jsonl  # noqa: E402
from fmteach.attention import scaled_dot_product_attention  # noqa: E402
from fmteach.masks import causal_mask  # noqa: E402
from fmteach.profile import autocast_dtype  # noqa: E402


def from_scratch(q, k, v):
    return scaled_dot_product_attention(q, k, v, causal_mask(q.shape[-2], device=q.device))[0]


def fused(q, k, v):
    return F.scaled_dot_product_attention(q, k, v, is_causal=True)


def peak_cpu_bytes(fn) -> int:
    """Peak bytes allocated by torch during fn(), replayed from the profiler's allocation events."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = sorted((e for e in prof.events() if e.self_cpu_memory_usage), key=lambda e: e.time_range.start)
    current = peak = 0
    for event in events:  # allocations are positive, frees negative
        current += event.self_cpu_memory_usage
        peak = max(peak, current)
    return peak


def measure(attention, q, k, v, device) -> tuple[float, int]:
    """(seconds, peak bytes beyond the inputs) of one forward + backward."""

    def step():
        attention(q, k, v).sum().backward()
        q.grad = k.grad = v.grad = None

    if device.type == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        step()
        torch.cuda.synchronize()
        return time.perf_counter() - start, torch.cuda.max_memory_allocated() - base
    start = time.perf_counter()
    step()
    return time.perf_counter() - start, -1


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--max-len", type=int, default=None, help="default 4096 on cuda, 1024 on cpu")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default=None,
                        help="default: the device's training type (bf16, or fp16 on a T4/V100; float32 on the CPU)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(Path(__file__).with_name("attention_scaling.png")))
    parser.add_argument("--max-seconds", type=float, default=None,
                        help="time budget: no longer sequence length is started once it is spent")
    parser.add_argument("--jsonl", default=None, help="append each row and the result to this JSON-lines file")
    args = parser.parse_args(argv)
    for name in ("max_len", "batch", "heads", "head_dim", "repeats", "max_seconds"):
        if getattr(args, name) is not None and getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype) if args.dtype else (autocast_dtype(device) or torch.float32)
    max_len = args.max_len or (4096 if device.type == "cuda" else 1024)
    torch.manual_seed(0)
    rows = []
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    append_jsonl(args.jsonl, {"event": "start", "device": device_name, "torch": torch.__version__, "batch": args.batch,
                              "heads": args.heads, "head_dim": args.head_dim, "dtype": str(dtype), "max_len": max_len})
    started = time.perf_counter()
    print(f"causal attention forward+backward, B={args.batch} H={args.heads} hs={args.head_dim} {dtype} on {device}")
    print(f"{'T':>6} {'scratch ms':>11} {'sdpa ms':>9} {'speedup':>8} "
          f"{'scratch MiB':>12} {'sdpa MiB':>9} {'mem ratio':>9}")
    T = 128
    while T <= max_len:
        if args.max_seconds is not None and rows and time.perf_counter() - started >= args.max_seconds:
            print(f"time budget of {args.max_seconds:g} s spent: stopped before T = {T}")
            break
        q, k, v = (torch.randn(args.batch, args.heads, T, args.head_dim, device=device, dtype=dtype, requires_grad=True)
                   for _ in range(3))
        contenders = (("scratch", from_scratch), ("sdpa", fused))
        times = {"scratch": [], "sdpa": []}
        memory = {}
        for _, fn in contenders:
            measure(fn, q, k, v, device)  # warm-up: kernels chosen, caches filled
        for r in range(args.repeats):
            for name, fn in contenders if r % 2 == 0 else contenders[::-1]:  # alternate who goes first
                seconds, peak = measure(fn, q, k, v, device)
                times[name].append(seconds)
                memory[name] = peak
        if device.type == "cpu":
            for name, fn in contenders:
                memory[name] = peak_cpu_bytes(lambda fn=fn, q=q, k=k, v=v: fn(q, k, v).sum().backward())
        row = {"T": T, **{f"{n}_ms": 1e3 * statistics.median(times[n]) for n in times},
               **{f"{n}_mib": memory[n] / 2**20 for n in memory}}
        rows.append(row)
        append_jsonl(args.jsonl, {"event": "row", **row})
        speedup, memory_ratio = row["scratch_ms"] / row["sdpa_ms"], row["scratch_mib"] / max(row["sdpa_mib"], 1e-9)
        print(f"{T:>6} {row['scratch_ms']:>11.2f} {row['sdpa_ms']:>9.2f} {speedup:>7.1f}x "
              f"{row['scratch_mib']:>12.1f} {row['sdpa_mib']:>9.1f} {memory_ratio:>8.1f}x")
        del q, k, v
        T *= 2
    plot(rows, args.out, f"{device.type}, {dtype}".replace("torch.", ""))
    print(f"plot saved to {args.out}")
    last = rows[-1]
    append_jsonl(args.jsonl, {"event": "final", "device": device_name, "rows": len(rows), "max_T": last["T"],
                              "speedup_at_max_T": last["scratch_ms"] / last["sdpa_ms"],
                              "memory_ratio_at_max_T": last["scratch_mib"] / max(last["sdpa_mib"], 1e-9)})
    return rows


def plot(rows: list[dict], path: str, label: str) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4), dpi=110)
    ax_time, ax_mem = fig.subplots(1, 2)
    lengths = [r["T"] for r in rows]
    for name, text in (("scratch", "from scratch (fmteach)"), ("sdpa", "torch SDPA (fused)")):
        ax_time.plot(lengths, [r[f"{name}_ms"] for r in rows], "o-", label=text)
        ax_mem.plot(lengths, [r[f"{name}_mib"] for r in rows], "o-", label=text)
    for ax, ylabel in ((ax_time, "forward + backward (ms)"), (ax_mem, "peak extra memory (MiB)")):
        ax.set(xscale="log", yscale="log", xlabel="sequence length T", ylabel=ylabel, title=f"{ylabel} ({label})")
        ax.set_xticks(lengths, [str(t) for t in lengths])
        ax.set_xticks([], minor=True)  # no "2x10^2" labels between the powers of two
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)


if __name__ == "__main__":
    main()
