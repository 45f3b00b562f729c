#!/usr/bin/env bash
# One short GPU lease, as one command: the CUDA legs of the device tests, the CUDA
# benchmarks, then training on whatever time is left, with the results written to $OUT.
#
#   OUT=/tmp/lease scripts/gpu_lease.sh                                   # on the GPU machine
#   OUT=/tmp/lease FGG_LEASE_PRESET=tiny FGG_LEASE_DEVICE=cpu FGG_LEASE_SECONDS=120 \
#       scripts/gpu_lease.sh                                              # rehearsal on a CPU
#
# Inputs: POP909 at $FGG_POP909_DIR (default .devdata/pop909, a copy carried to the machine);
# Python wheels the machine lacks in .whl/ (installed into /tmp/site when present).
# Everything stops by FGG_LEASE_SECONDS (default 540) after the start: the trainer's
# --max-seconds ends the run at a log line, validated and checkpointed.
# $OUT gets: model.safetensors split in 15 MiB parts (model.part-*; `cat` them back),
# and lease.tar.gz (model.json, log.csv, the test log, the benchmark JSON, this run's log).
set -u
began=$(date +%s)
deadline=$((began + ${FGG_LEASE_SECONDS:-540}))
out=${OUT:?set OUT to the folder that comes back}
preset=${FGG_LEASE_PRESET:-paper}
device=${FGG_LEASE_DEVICE:-cuda}
mode=${FGG_LEASE_MODE:-melody+accompaniment}
work=$(mktemp -d)
run="$work/run"
mkdir -p "$out"
exec > >(tee "$work/lease.log") 2>&1
say() { echo "[lease $(($(date +%s) - began))s] $*"; }
left() { echo $((deadline - $(date +%s))); }

if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 TQDM_MININTERVAL=30
export FGG_POP909_DIR=${FGG_POP909_DIR:-.devdata/pop909} FGG_REQUIRE_DATA=1
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
    torch.cuda.get_device_name() if torch.cuda.is_available() else "")'

say "song cache"
python3 -m fgg.data >"$work/data.json" || exit 1

say "device tests"
# test_app_handlers needs Gradio (not on the machine); the paper checkpoint stays home.
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_devices.py tests/test_precision.py \
    -k "not app_handlers and not paper" 2>&1 | tee "$work/tests.log" | tail -5

say "training benchmark"
timeout 90 python3 -m fgg.bench --train --device "$device" --preset "$preset" --baseline \
    >"$work/bench_train.json" && cat "$work/bench_train.json"
say "sampling benchmark"
timeout 90 python3 -m fgg.bench --device "$device" --preset "$preset" --repeats 7 \
    >"$work/bench_sample.json" && cat "$work/bench_sample.json"

budget=$(($(left) - 45))  # leaves time for the last validation, the checkpoint and packing
say "training $preset $mode for ${budget}s"
train=(python3 -m fgg.train --preset "$preset" --mode "$mode" --steps 100000 --batch-size 128 --lr 2e-4
    --out "$run" --device "$device" --log-every 50 --valid-every 250 --checkpoint-every 250)
"${train[@]}" --workers 6 --max-seconds "$budget" ||
    { say "retrying without loader workers"; "${train[@]}" --resume --max-seconds $(($(left) - 45)); }

say "packing"
if [ -f "$run/model.safetensors" ]; then
    split -b 15m -d "$run/model.safetensors" "$out/model.part-"
    sha256sum "$run/model.safetensors" | tee "$work/model.sha256"
    cp "$run/model.json" "$run/log.csv" "$work/"
fi
say "done"
tar -czf "$out/lease.tar.gz" -C "$work" --exclude run .
