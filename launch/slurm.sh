#!/usr/bin/env bash
# One labram_jax run on a SLURM cluster: N nodes, one process per GPU (default) or one per node, joined by
# jax.distributed from the SLURM environment (`--distributed`). Writes a batch script and submits it with
# sbatch; --dry_run prints the script instead.
#
#   bash launch/slurm.sh [--nodes=N] [--gpus_per_node=G] [--per=gpu|node] [--time=HH:MM:SS] [--partition=P]
#       [--account=A] [--venv=DIR] [--grace=SECONDS] [--requeue] [--dry_run]
#       -- --config=configs/X.py --workdir=DIR [--config.key=value ...]
#
# SLURM sends SIGTERM to every task --grace seconds (default 120) before the time limit: the run saves a
# checkpoint at the next step and stops (docs/training.md, preemption); with --requeue the job comes back
# and the same command resumes.
#
# Assumes: this repository on a filesystem every node mounts (the job runs it in place), a virtual
# environment with the project installed (`--venv`, default ./.venv), and a shared --workdir. Logs:
# <workdir>/slurm-<job>.out (the batch script) and <workdir>/slurm-<job>-<task>.log (each process).
set -euo pipefail
nodes=1; gpus=8; per=gpu; time_limit=24:00:00; partition=""; account=""; grace=120; requeue=0; dry_run=0
repo="$(cd "$(dirname "$0")/.." && pwd)"; venv="$repo/.venv"
while [ $# -gt 0 ]; do
  case "$1" in
    --nodes=*) nodes="${1#*=}";;
    --gpus_per_node=*) gpus="${1#*=}";;
    --per=*) per="${1#*=}";;
    --time=*) time_limit="${1#*=}";;
    --partition=*) partition="${1#*=}";;
    --account=*) account="${1#*=}";;
    --venv=*) venv="${1#*=}";;
    --grace=*) grace="${1#*=}";;
    --requeue) requeue=1;;
    --dry_run) dry_run=1;;
    --) shift; break;;
    *) echo "launch/slurm.sh: unknown option $1 (the run's own flags go after --)" >&2; exit 2;;
  esac
  shift
done
[ $# -gt 0 ] || { echo "launch/slurm.sh: pass the run's flags after --, e.g. -- --config=configs/base.py --workdir=DIR" >&2; exit 2; }
workdir=""
for arg in "$@"; do case "$arg" in --workdir=*) workdir="${arg#--workdir=}";; esac; done
[ -n "$workdir" ] || { echo "launch/slurm.sh: pass --workdir=DIR (on a filesystem every node mounts)" >&2; exit 2; }
case "$per" in
  gpu) tasks="$gpus"; device_flag="";;  # JAX gives each task the GPU of its SLURM_LOCALID
  node) tasks=1; device_flag=" --local_device_ids=$(seq -s, 0 $((gpus - 1)))";;
  *) echo "launch/slurm.sh: --per must be gpu or node, got $per" >&2; exit 2;;
esac
run="python -m labram_jax.main$(printf ' %q' "$@") --distributed$device_flag"

script="#!/bin/bash
#SBATCH --job-name=labram-jax
#SBATCH --nodes=$nodes
#SBATCH --ntasks-per-node=$tasks
#SBATCH --gpus-per-node=$gpus
#SBATCH --time=$time_limit
#SBATCH --signal=TERM@$grace
#SBATCH --output=$(printf '%q' "$workdir")/slurm-%j.out"
[ -n "$partition" ] && script+="
#SBATCH --partition=$partition"
[ -n "$account" ] && script+="
#SBATCH --account=$account"
[ "$requeue" = 1 ] && script+="
#SBATCH --requeue"
script+="
set -euo pipefail
cd $(printf '%q' "$repo")
. $(printf '%q' "$venv")/bin/activate
mkdir -p $(printf '%q' "$workdir")
srun --kill-on-bad-exit=1 --output=$(printf '%q' "$workdir")/slurm-%j-%t.log $run"

if [ "$dry_run" = 1 ]; then
  printf '%s\n' "$script"
  exit 0
fi
mkdir -p "$workdir"
printf '%s\n' "$script" | sbatch
