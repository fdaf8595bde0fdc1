#!/usr/bin/env bash
# The GPU benchmarks of docs/benchmarks.md in one go, for a short lease of a CUDA machine:
#
#     OUT=/tmp/gpu bash bench/gpu_session.sh      # writes its logs and a report archive to $OUT
#
# Each benchmark has its own time limit so one slow part cannot eat the others' time. Order:
# the loss head (float32, then bf16; 2 warm-up runs and the fastest of 5, the script's CUDA
# defaults), batched decoding against the reference, pre-training step time (fp32 vs bf16
# autocast), then `tabom reproduce --quick` timed end to end. The package is
# installed in editable mode without dependencies (the machine is expected to have torch,
# transformers, peft, typer, rich, matplotlib and safetensors already).
set -u
OUT=${OUT:-/tmp/gpu-bench}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-deps --no-build-isolation -e . >"$OUT/install.log" 2>&1 \
    || { echo "install failed"; cat "$OUT/install.log"; exit 1; }
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
    nproc
} >"$OUT/machine.txt" 2>&1
cat "$OUT/machine.txt"

part() {  # part NAME SECONDS COMMAND...: run with a limit, output to $OUT/NAME.txt and the screen
    local name=$1 limit=$2
    shift 2
    echo "== $name: $*"
    local start=$SECONDS
    timeout "$limit" "$@" 2>&1 | tee "$OUT/$name.txt"
    echo "== $name: exit ${PIPESTATUS[0]}, $((SECONDS - start)) s" | tee -a "$OUT/$name.txt"
}

part loss_head_fp32 90 python3 bench/loss_head.py --device cuda
part loss_head_bf16 90 python3 bench/loss_head.py --device cuda --dtype bfloat16
part generate 120 python3 bench/generate.py --device cuda --n 256 --batch-size 256 --ref-n 8
part pretrain_speed 150 python3 bench/pretrain_speed.py --device cuda --steps 200 --warmup 20
timer=()
[ -x /usr/bin/time ] && timer=(/usr/bin/time -v)  # wall and peak memory (absent on some images)
part reproduce_quick "${QUICK_LIMIT:-300}" "${timer[@]}" python3 -m tabom.cli reproduce --quick --out /tmp/gpu-quick
if [ -f /tmp/gpu-quick/report.md ]; then
    tar czf "$OUT/quick_report.tgz" -C /tmp gpu-quick/report.md gpu-quick/results.json gpu-quick/figures
fi
