"""Train MiniGPT on Shakespeare outside a notebook (Colab, a cluster, several GPUs).

    python -m fmteach.train_lm --profile cpu --out runs/cpu
    python -m fmteach.train_lm --profile gpu --out runs/gpu --compile
    torchrun --nproc_per_node=4 -m fmteach.train_lm --profile gpu --out runs/gpu4
    python -m fmteach.train_lm --profile gpu --out runs/gpu --resume --max-steps 8000

Writes ``OUT/ckpt.pt`` (model, optimizer, schedule, RNG states, vocabulary), ``OUT/history.json``
and ``OUT/loss_curve.png``, and prints progress and a sample.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from ._io import append_jsonl, torch_load
from .distributed import cleanup_distributed, setup_distributed
from .lm_data import CharTokenizer, load_shakespeare_chars
from .model import GPTConfig, MiniGPT
from .profile import PROFILES, get_profile
from .seeding import DEFAULT_SEED
from .train import CHECKPOINT_NAME, HISTORY_NAME, train, write_history
from .train_config import TrainConfig

__all__ = ["main", "load_trained"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m fmteach.train_lm", description=__doc__.split("\n")[0])
    parser.add_argument("--profile", choices=PROFILES, default=None,
                        help="run size (default: $FMTEACH_PROFILE, else by hardware)")
    parser.add_argument("--recipe", choices=("profile", "course"), default="profile",
                        help="sizes: the profile's preset (default), or the shipped course model's recipe")
    parser.add_argument("--out", required=True, help="output folder, e.g. runs/cpu")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/ckpt.pt if it exists")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="total optimizer steps (sets the schedule's length)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--device", default=None, help="override the device (default: cuda:LOCAL_RANK, else mps, else cpu)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"weights, data order and dropout (default {DEFAULT_SEED})")
    parser.add_argument("--sample-chars", type=int, default=400, help="characters to sample at the end (0: none)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (log files)")
    parser.add_argument("--max-seconds", type=float, default=None,
                        help="wall-clock budget for training: stop, evaluate and checkpoint once it is spent")
    parser.add_argument("--metrics-jsonl", default=None,
                        help="append each evaluation and the final figures to this JSON-lines file")
    args = parser.parse_args(argv)
    if args.max_seconds is not None and args.max_seconds <= 0:
        parser.error(f"--max-seconds must be positive, got {args.max_seconds}")
    return args


def load_trained(out_dir: str | Path, device: torch.device | str = "cpu") -> tuple[MiniGPT, CharTokenizer, dict]:
    """``(model in eval mode, tokenizer, checkpoint)`` from a run folder written by this CLI."""
    ckpt = torch_load(Path(out_dir) / CHECKPOINT_NAME, map_location=device,
                      expected="a checkpoint written by python -m fmteach.train_lm",
                      required_keys=("model", "model_config", "extra"))
    model = MiniGPT(GPTConfig(**ckpt["model_config"])).to(device)
    model.load_state_dict(ckpt["model"])
    return model.eval(), CharTokenizer(ckpt["extra"]["chars"]), ckpt


def _finish(args, result, model, data, baseline, device, out, jsonl, started, *, profile, world, model_config,
            train_config) -> dict:
    """Rank 0 after training: history.json, the loss curve, a sample, the final line and record."""
    final = result.history[-1]
    summary = {
        "profile": profile, "processes": world, "device": str(device),
        "final_step": result.step, "final_train_loss": final["train_loss"], "final_val_loss": final["val_loss"],
        "unigram_baseline": baseline, "train_seconds": result.seconds, "out_of_time": result.out_of_time,
        "wall_seconds": time.perf_counter() - started,
        "model_config": model_config.__dict__, "train_config": train_config.__dict__,
        "history": result.history, "step_losses": result.step_losses,
    }
    write_history(out / HISTORY_NAME, {k: v for k, v in summary.items() if k not in ("history", "step_losses")},
                  result.history, result.step_losses)
    from .viz.curves import plot_lm_losses

    plot_lm_losses(result, out / "loss_curve.png", baseline, title="MiniGPT, course recipe" if args.recipe == "course" else f"MiniGPT, {profile} profile")
    if args.sample_chars > 0:
        generator = torch.Generator(device=device).manual_seed(args.seed)
        start = torch.tensor([data.tokenizer.encode("\n")], device=device)
        model.eval()
        sample = model.generate(start, args.sample_chars, temperature=0.8, top_k=20, generator=generator)
        print("-" * 60 + "\n" + data.tokenizer.decode(sample[0].tolist()) + "\n" + "-" * 60)
    print(f"final: step {result.step}, val loss {final['val_loss']:.4f} (unigram baseline {baseline:.4f}), "
          f"training {result.seconds:.1f} s, wall {summary['wall_seconds']:.1f} s -> {out}"
          + (" (stopped by --max-seconds)" if result.out_of_time else ""))
    append_jsonl(jsonl, {"event": "final", **{k: v for k, v in summary.items() if k not in (
        "history", "step_losses", "model_config", "train_config")}, "max_steps": train_config.max_steps})
    return summary


def main(argv: list[str] | None = None) -> dict:
    """Run the CLI; returns the summary it writes to ``history.json``."""
    args = parse_args(argv)
    started = time.perf_counter()
    rank, world, device = setup_distributed()
    device = torch.device(args.device) if args.device else device
    profile = args.profile or get_profile()
    out = Path(args.out)
    data = load_shakespeare_chars()
    baseline = data.unigram_baseline()
    if args.recipe == "course":
        model_config = GPTConfig.course(data.tokenizer.vocab_size)
    else:
        model_config = GPTConfig.from_profile(data.tokenizer.vocab_size, profile)
    overrides = {"seed": args.seed}
    if args.max_steps is not None:
        overrides["max_steps"] = args.max_steps
    if args.compile:
        overrides["compile"] = True
    train_config = (TrainConfig.course(**overrides) if args.recipe == "course"
                    else TrainConfig.from_profile(profile, **overrides))
    torch.manual_seed(args.seed)  # the same initial weights on every rank (DDP also broadcasts rank 0's)
    model = MiniGPT(model_config).to(device)
    if rank == 0:
        print(f"profile={profile} device={device} processes={world} parameters={model.num_parameters()['total']:,}")
        print(f"{model_config}\n{train_config}")
        print(f"data: {len(data.train):,} training / {len(data.val):,} validation characters "
              f"(held-out plays: {', '.join(data.val_plays)}); unigram baseline {baseline:.4f}")
    extra = {"chars": data.tokenizer.chars, "val_plays": list(data.val_plays), "profile": profile,
             "recipe": args.recipe}
    jsonl = args.metrics_jsonl if rank == 0 else None
    append_jsonl(jsonl, {"event": "start", "profile": profile, "device": str(device), "processes": world,
                         "parameters": model.num_parameters()["total"], "torch": torch.__version__,
                         "model_config": model_config.__dict__, "train_config": train_config.__dict__})
    result = train(model, data.batch_fn(model_config.block_size, device), train_config, out_dir=out,
                   resume=args.resume, checkpoint_extra=extra, progress=not args.no_progress, verbose=True,
                   max_seconds=args.max_seconds,
                   on_eval=lambda entry, history: append_jsonl(jsonl, {"event": "eval", **entry,
                                                                      "seconds": time.perf_counter() - started}))
    summary = _finish(args, result, model, data, baseline, device, out, jsonl, started,
                      profile=profile, world=world, model_config=model_config, train_config=train_config) if rank == 0 else {}
    cleanup_distributed()
    return summary


if __name__ == "__main__":
    main()
