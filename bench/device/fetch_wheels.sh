#!/usr/bin/env bash
# Downloads, on this (networked) machine, the wheels that bench/device/gpu_suite.sh installs on a lent GPU
# machine (no network there; its image has jax, flax, optax, orbax, torch but not the packages listed in
# bench/device/wheels.txt). Python 3.12, manylinux x86-64: the image's interpreter, whatever runs here.
#
#     bash bench/device/fetch_wheels.sh          # -> .whl/ (gitignored), ~30 MB
#
# then carry `.whl` with the device run (see the README's Benchmarks section).
set -euo pipefail
cd "$(dirname "$0")/../.."
dest=.whl
mkdir -p "$dest"
py=${PYTHON:-python3}
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
  platforms+=(--platform "$p")
done
grep -vE '^\s*(#|$)' bench/device/wheels.txt | while read -r req; do
  "$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${platforms[@]}" -d "$dest" "$req" || { echo "fetch_wheels: could not download $req" >&2; exit 1; }
done
# One version of each: a stale second copy stops the install there.
dups=$(ls "$dest"/*.whl | xargs -n1 basename | cut -d- -f1 | tr 'A-Z-' 'a-z_' | sort | uniq -d)
if [ -n "$dups" ]; then echo "fetch_wheels: several versions in $dest of: $dups (delete the old ones)" >&2; exit 1; fi
echo "fetch_wheels: $(ls "$dest"/*.whl | wc -l) wheels, $(du -sh "$dest" | cut -f1) in $dest"
