#!/usr/bin/env bash
# One GPU check, at most 10 minutes on one H200 (each step has its own time limit): train the gpu
# profiles of lessons 04 (MiniGPT) and 05 (mini-BERT MLM) through their CLIs, run both benchmarks,
# print the figures.
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]        # default runs/gpu_check
#
# Figures: validation loss on the held-out plays (target <= 1.50) and training time; MiniGPT vs
# GPT2LMHeadModel training tokens/s (target ratio >= 1.2); from-scratch attention vs torch SDPA,
# time and peak memory for T = 128 ... 4096. Logs, checkpoint and plots land in OUT_DIR.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-runs/gpu_check}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
python -c "import torch; assert torch.cuda.is_available(), 'no CUDA device: this check needs a GPU'; \
print('torch', torch.__version__, 'on', torch.cuda.get_device_name(0))" || exit 1
start=$(date +%s)

echo "== 1/4 train MiniGPT, gpu profile (limit 330 s) =="
timeout 330 python -m fmteach.train_lm --profile gpu --out "$OUT/minigpt" --no-progress 2>&1 | tee "$OUT/train.log" \
  || echo "!! training failed or ran out of time (exit $?)"

echo "== 2/4 training throughput: MiniGPT vs GPT2LMHeadModel (sdpa), bf16 autocast (limit 90 s) =="
timeout 90 python benchmarks/train_throughput.py --device cuda 2>&1 | tee "$OUT/throughput.log" \
  || echo "!! throughput benchmark failed (exit $?)"

echo "== 3/4 attention scaling: from scratch vs torch SDPA (limit 60 s) =="
timeout 60 python benchmarks/attention_scaling.py --device cuda --out "$OUT/attention_scaling.png" 2>&1 \
  | tee "$OUT/attention.log" || echo "!! attention benchmark failed (exit $?)"

echo "== 4/4 pretrain mini-BERT with MLM, gpu profile (limit 180 s) =="
timeout 180 python -m fmteach.pretrain_mlm --profile gpu --out "$OUT/mlm" --no-progress 2>&1 | tee "$OUT/mlm.log" \
  || echo "!! MLM pretraining failed or ran out of time (exit $?)"

echo "== summary: $(( $(date +%s) - start )) s =="
grep "^final:" "$OUT/train.log" || echo "training: no final line"
grep -E "tokens/s|^ratio" "$OUT/throughput.log" || echo "throughput: no result"
grep -E "^ +[0-9]+ |^ +T " "$OUT/attention.log" || echo "attention: no result"
grep -E "most_frequent_token_accuracy|mlm_accuracy|perplexity|\"seconds\"" "$OUT/mlm.log" | tail -5 || echo "mlm: no result"
