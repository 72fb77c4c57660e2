#!/usr/bin/env bash
# One labram_jax run on every worker of a Cloud TPU VM slice, with gcloud from this machine. `--setup` first
# copies this repository (the committed tree, `git archive HEAD`) to every worker and installs it in a
# virtual environment there; then the same command starts on all workers at once with `--distributed`
# (JAX finds the slice's coordinator, process count and index itself). --dry_run prints the commands.
#
#   bash launch/tpu_vm.sh --tpu=NAME --zone=ZONE [--project=P] [--remote_dir=labram-jax] [--setup] [--dry_run]
#       -- --config=configs/X.py --workdir=/mnt/shared/run [--config.key=value ...]
#
# Assumes: an existing TPU VM (`gcloud compute tpus tpu-vm create ...`), gcloud authenticated here, and a
# --workdir every worker can write at the same path (a Filestore/NFS mount, or one bucket mounted with
# gcsfuse on every worker; the loop writes through the local filesystem, gs:// URLs are not supported yet).
# Logs: each worker's ~/labram-logs/<run>.log; the commands to read them are printed at the end.
set -euo pipefail
tpu=""; zone=""; project=""; remote_dir="labram-jax"; setup=0; dry_run=0
while [ $# -gt 0 ]; do
  case "$1" in
    --tpu=*) tpu="${1#*=}";;
    --zone=*) zone="${1#*=}";;
    --project=*) project="${1#*=}";;
    --remote_dir=*) remote_dir="${1#*=}";;
    --setup) setup=1;;
    --dry_run) dry_run=1;;
    --) shift; break;;
    *) echo "launch/tpu_vm.sh: unknown option $1 (the run's own flags go after --)" >&2; exit 2;;
  esac
  shift
done
[ -n "$tpu" ] && [ -n "$zone" ] || { echo "launch/tpu_vm.sh: pass --tpu=NAME and --zone=ZONE" >&2; exit 2; }
[ $# -gt 0 ] || { echo "launch/tpu_vm.sh: pass the run's flags after --, e.g. -- --config=configs/base.py --workdir=/mnt/shared/run" >&2; exit 2; }
workdir=""
for arg in "$@"; do case "$arg" in --workdir=*) workdir="${arg#--workdir=}";; esac; done
[ -n "$workdir" ] || { echo "launch/tpu_vm.sh: pass --workdir (a path every worker can write, e.g. a shared mount)" >&2; exit 2; }
case "$workdir" in *://*) echo "launch/tpu_vm.sh: --workdir=$workdir: the loop writes through the local filesystem; mount the bucket on every worker (gcsfuse) and pass its path" >&2; exit 2;; esac
run_name="$(basename "$workdir")"
gcloud_args=(--zone="$zone" --worker=all)
[ -n "$project" ] && gcloud_args+=(--project="$project")
repo="$(cd "$(dirname "$0")/.." && pwd)"
squote() { local q="'\\''"; printf "'%s'" "${1//\'/$q}"; }  # one shell word, readable
archive="/tmp/labram-jax-$(git -C "$repo" rev-parse --short HEAD).tar.gz"

commands=()
if [ "$setup" = 1 ]; then
  install="mkdir -p $remote_dir && tar -xzf ~/$(basename "$archive") -C $remote_dir && cd $remote_dir && python3 -m venv .venv && . .venv/bin/activate && pip install -q -e \".[tpu]\""
  commands+=("git -C $(printf '%q' "$repo") archive --format=tar.gz -o $archive HEAD")
  commands+=("gcloud compute tpus tpu-vm scp $archive $tpu:~ ${gcloud_args[*]}")
  commands+=("gcloud compute tpus tpu-vm ssh $tpu ${gcloud_args[*]} --command=$(squote "$install")")
fi
run="cd $remote_dir && . .venv/bin/activate && mkdir -p ~/labram-logs && python -m labram_jax.main$(printf ' %q' "$@") --distributed > ~/labram-logs/$run_name.log 2>&1"
commands+=("gcloud compute tpus tpu-vm ssh $tpu ${gcloud_args[*]} --command=$(squote "$run")")

for cmd in "${commands[@]}"; do
  echo "$cmd"
  [ "$dry_run" = 1 ] || eval "$cmd"
done
echo "# logs: gcloud compute tpus tpu-vm ssh $tpu ${gcloud_args[*]} --command='tail -n 20 ~/labram-logs/$run_name.log'"
