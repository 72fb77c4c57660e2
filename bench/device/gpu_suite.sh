#!/usr/bin/env bash
# The GPU half of the benchmarks in ONE device call (a lent machine has ~15 minutes of device time in all,
# one command at most 10 minutes, and no network). From the repo root on the device, with `.whl` carried
# (fetched here by bench/device/fetch_wheels.sh):
#
#     bash bench/device/gpu_suite.sh [plan]      # plan: gpu (default, ~8 min on an H100) | smoke (CPU, tiny)
#
# Installs the carried wheels into /tmp/site, then runs, each under its own time limit so that one hang
# does not cost the rest (the limits add up to 530 s: give the device call timeout_s=600):
#   1. bench.torch_reference: our bf16 step against braindecode Labram under bf16 autocast, interleaved, for
#      finetune_base, finetune_large and pretrain_base, one process each (issue 7's "faster than PyTorch on
#      the same GPU");
#   2. bench.train_step: Huge pre-training in bf16 at batch 32 (~30 GB of activations by estimate; 64 may
#      not fit an H100), with model FLOPs and utilisation against a bf16 matmul peak measured in the same
#      run (the MFU goal);
#   3. bench.profile: where that Huge step's time goes (kernels per model part, GPU idle share); the
#      persistent compilation cache lets it reuse step 2's executable.
# Each writes one JSON to $OUT/<name>.json; all logs go to $OUT/suite.log (the device returns at most 8
# files). Read the results back here with `python -m bench.device.summarize <files_at>`.
set -uo pipefail
plan=${1:-gpu}
out=${OUT:-/tmp/labram_bench_out}
mkdir -p "$out"
log="$out/suite.log"
py=${PYTHON:-python3}

if ls .whl/*.whl >/dev/null 2>&1; then
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    >>"$log" 2>&1 || { echo "gpu_suite: installing .whl failed (see $log)"; exit 1; }
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
else
  echo "gpu_suite: no .whl/ here: run bench/device/fetch_wheels.sh and carry .whl (continuing without)" | tee -a "$log"
fi
export PYTHONUNBUFFERED=1
export JAX_COMPILATION_CACHE_DIR=${JAX_COMPILATION_CACHE_DIR:-/tmp/labram_jax_cache}

{ date -u; nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1;
  "$py" -c "import jax, torch; print('jax', jax.__version__, jax.devices()); print('torch', torch.__version__, torch.cuda.is_available())"; } >>"$log" 2>&1

run() {  # run NAME LIMIT_S MODULE ARGS...
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  echo "== $name (limit ${limit}s): $*" | tee -a "$log"
  timeout --kill-after=10 "$limit" "$py" -m "$@" >"$out/$name.json" 2>>"$log"
  local rc=$?
  echo "== $name: rc=$rc in $((SECONDS - t0)) s" | tee -a "$log"
}

# The smoke plan runs the very same commands with --smoke appended (tiny models, a CPU is enough), so a
# flag the GPU plan relies on is exercised before device time is spent on it.
case $plan in
  gpu) smoke=() ;;
  smoke) smoke=(--smoke) ;;
  *) echo "gpu_suite: unknown plan '$plan' (gpu | smoke)"; exit 2 ;;
esac
# One torch comparison per configuration, so that a configuration cut short by its limit costs only itself.
for config_limit in finetune_base:80 finetune_large:100 pretrain_base:80; do
  run "torch_${config_limit%%:*}" "${config_limit##*:}" bench.torch_reference --configs="${config_limit%%:*}" \
    --dtype=bfloat16 --amp=bf16 --rounds=3 --block=10 "${smoke[@]}"
done
run huge_bf16 170 bench.train_step --configs=pretrain_huge --dtype=bfloat16 --batch=32 --steps=5 "${smoke[@]}"
run profile_huge 100 bench.profile --configs=pretrain_huge --dtype=bfloat16 --batch=32 --steps=2 --top=30 "${smoke[@]}"
ls -la "$out" >>"$log"
