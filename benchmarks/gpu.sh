#!/usr/bin/env bash
# One GPU session (a 15-minute lease), in the order of what it is worth now:
#   census:   the kernel census and per-call timing of a few optimizers against optax (kernels.py),
#             with LAMB and LARS also without recorded trust ratios (bench.py EXPERIMENTS), and
#             the census of AdamW and RAdam on ResNet-18, where they missed 1.05x in the loop;
#   per_call: the per-call table (--loop 1) on GPT-2 small and ResNet-18, into results_gpu.json;
#   loop:     the device-loop table (--loop 10) on the same trees, into results_gpu_loop.json.
# Each part has its own time limit; table rows are written as they are measured, so a part cut
# short keeps what it finished. Everything lands in $OUT (HLO dumps as one archive).
# A device command may run 600 s at most, so a lease takes two calls (about 480 s and 300 s):
#   OUT=/some/dir PARTS="census per_call" bash benchmarks/gpu.sh
#   OUT=/some/dir PARTS=loop bash benchmarks/gpu.sh
# (repository root, jax with CUDA installed; PARTS defaults to all three).
set -u
OUT=${OUT:-benchmarks/gpu_logs/latest}
PARTS=${PARTS:-census per_call loop}
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" 2>&1
python -c "import jax, optax; print(jax.__version__, optax.__version__, jax.devices())" >> "$OUT/gpu.txt" 2>&1
wanted() { [[ " $PARTS " == *" $1 "* ]]; }
if wanted census; then
  timeout "${CALLS_S:-150}" python benchmarks/kernels.py --tree gpt2_124m --calls 200 \
    --optimizers adam,radam,lamb,lamb_unrecorded,lars,lars_unrecorded,sgd_momentum --dump "$OUT/hlo" \
    > "$OUT/calls.txt" 2>&1
  # ResNet-18, where AdamW and RAdam ran at 1.06x and 1.10x the floor in the loop: what they launch.
  timeout "${RESNET_CENSUS_S:-90}" python benchmarks/kernels.py --tree resnet18 \
    --optimizers adam,adamw,radam,sgd_momentum --dump "$OUT/hlo" > "$OUT/census_resnet18.txt" 2>&1
  tar czf "$OUT/hlo.tgz" -C "$OUT" hlo && rm -rf "$OUT/hlo"  # one file: a lease returns only a few
fi
if wanted per_call; then
  timeout "${PER_CALL_S:-240}" python benchmarks/bench.py --trees gpt2_124m,resnet18 --loop 1 --steps 20 \
    > "$OUT/per_call.txt" 2>&1
fi
if wanted loop; then
  timeout "${LOOP_S:-300}" python benchmarks/bench.py --trees gpt2_124m,resnet18 --loop 10 --steps 10 \
    > "$OUT/loop.txt" 2>&1
fi
cp benchmarks/results_gpu.json benchmarks/results_gpu_loop.json benchmarks/README.md "$OUT/" 2>/dev/null
