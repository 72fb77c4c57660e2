#!/usr/bin/env bash
# N processes of one run on this machine, joined by jax.distributed over 127.0.0.1 (gloo collectives on CPU).
#   bash launch/local.sh [--dry_run] N --config=configs/X.py --workdir=DIR [--config.key=value ...]
# Each process sees its own devices; the mesh spans all of them. Logs: DIR/process_<i>.log. --dry_run prints
# the N commands (with the free port it found) instead of running them.
set -euo pipefail
dry_run=0
[ "${1:-}" = "--dry_run" ] && { dry_run=1; shift; }
n="${1:?usage: bash launch/local.sh [--dry_run] N --config=configs/X.py --workdir=DIR [--config.key=value ...]}"
shift
workdir=""
for arg in "$@"; do case "$arg" in --workdir=*) workdir="${arg#--workdir=}";; esac; done
[ -n "$workdir" ] || { echo "pass --workdir=DIR" >&2; exit 2; }
port=$(python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
if [ "$dry_run" = 1 ]; then
  for ((i = 0; i < n; i++)); do
    echo "python -m labram_jax.main$(printf ' %q' "$@") --coordinator_address=127.0.0.1:$port --num_processes=$n --process_id=$i > $workdir/process_$i.log 2>&1 &"
  done
  exit 0
fi
mkdir -p "$workdir"
pids=()
for ((i = 0; i < n; i++)); do
  python -m labram_jax.main "$@" --coordinator_address="127.0.0.1:$port" --num_processes="$n" --process_id="$i" \
    >"$workdir/process_$i.log" 2>&1 &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
tail -n 20 "$workdir/process_0.log"
exit $status
