"""A trained MiniGPT run folder -> float16 safetensors shards small enough to come back from the device.

    python benchmarks/export_minigpt.py RUN_DIR OUT_DIR [--name minigpt] [--max-shard-mib 15]

Writes ``NAME-fp16-00001-of-0000N.safetensors`` (no pickle; each at most --max-shard-mib, since the
device returns files of up to 16 MiB) and ``NAME-fp16.json`` (model config, vocabulary, the run's
final figures, the sha256 of every shard). The output layer is tied to the token embedding, so it is
stored once. :func:`load_export` rebuilds a float32 MiniGPT from them, checking every sha256.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without installing
from fmteach.lm_data import CharTokenizer  # noqa: E402
from fmteach.model import GPTConfig, MiniGPT  # noqa: E402
from fmteach.train_lm import load_trained  # noqa: E402

TIED = "lm_head.weight"  # the same tensor as transformer.wte.weight


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def export(run_dir: Path, out_dir: Path, name: str = "minigpt", max_shard_mib: float = 15.0) -> Path:
    from safetensors.torch import save_file

    if max_shard_mib <= 0:
        raise ValueError(f"max_shard_mib must be positive, got {max_shard_mib}")
    model, tokenizer, ckpt = load_trained(run_dir)
    tensors = {k: (v.half() if v.is_floating_point() else v).contiguous()
               for k, v in model.state_dict().items() if k != TIED}
    limit = max_shard_mib * 2**20
    shards, current, size = [], {}, 0
    for key, tensor in tensors.items():
        nbytes = tensor.numel() * tensor.element_size()
        if nbytes > limit:
            raise ValueError(f"{key} alone is {nbytes / 2**20:.1f} MiB, over max_shard_mib={max_shard_mib}")
        if current and size + nbytes > limit:
            shards.append(current)
            current, size = {}, 0
        current[key], size = tensor, size + nbytes
    shards.append(current)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    for i, shard in enumerate(shards, start=1):
        path = out_dir / f"{name}-fp16-{i:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, path)
        files[path.name] = sha256(path)
    history = ckpt["history"][-1] if ckpt["history"] else {}
    manifest = {"model_config": ckpt["model_config"], "chars": tokenizer.chars, "dtype": "float16",
                "tied": {TIED: "transformer.wte.weight"}, "step": ckpt["step"], "final_eval": history,
                "train_config": ckpt["train_config"], "extra": ckpt["extra"], "sha256": files}
    manifest_path = out_dir / f"{name}-fp16.json"
    manifest_path.write_text(json.dumps(manifest, indent=1))
    total = sum((out_dir / f).stat().st_size for f in files)
    print(f"exported step {ckpt['step']} to {len(files)} float16 shard(s), {total / 2**20:.1f} MiB, + {manifest_path.name}")
    return manifest_path


def load_export(manifest_path: str | Path) -> tuple[MiniGPT, CharTokenizer, dict]:
    """``(float32 MiniGPT in eval mode, tokenizer, manifest)`` from :func:`export`'s files."""
    from safetensors.torch import load_file

    manifest_path = Path(manifest_path)
    manifest = json.loads(manifest_path.read_text())
    state = {}
    for filename, expected in manifest["sha256"].items():
        path = manifest_path.parent / filename
        if not path.is_file() or sha256(path) != expected:
            raise ValueError(f"{path} is missing or differs from {manifest_path.name}'s sha256 {expected[:12]}…")
        state |= load_file(path)
    state[TIED] = state["transformer.wte.weight"]
    model = MiniGPT(GPTConfig(**manifest["model_config"]))
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return model.eval(), CharTokenizer(manifest["chars"]), manifest


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path, help="a folder written by python -m fmteach.train_lm (holds ckpt.pt)")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--name", default="minigpt")
    parser.add_argument("--max-shard-mib", type=float, default=15.0)
    args = parser.parse_args(argv)
    if not (args.run_dir / "ckpt.pt").is_file():
        parser.error(f"run_dir {args.run_dir} holds no ckpt.pt")
    export(args.run_dir, args.out_dir, args.name, args.max_shard_mib)


if __name__ == "__main__":
    main()
