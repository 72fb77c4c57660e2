"""Benchmark of the data layer: build speed of a realistic TUAB-like corpus and loader throughput.

    python bench/data_build.py [--recordings=50] [--minutes=20] [--workers=N] [--batch_size=64] [--keep=DIR]

Writes `recordings` synthetic EDF files of 23 (+2 non-EEG) channels x `minutes` at 256 Hz in the TUAB
layout (not timed), builds them with the real `tuab` builder using `workers` processes, then reads the
train split with the grain loader at the fine-tuning batch shape `(batch, 23, 10, 200)`. Prints JSON:

* `eeg_hours`, `build_seconds`, `x_realtime_per_worker` (hours of EEG converted per wall-clock hour, per
  worker: the goal is >= 500), `hours_per_second_per_worker`;
* `peak_rss_main_mb` / `peak_rss_worker_mb`: peak resident memory of the building process and of the
  largest worker;
* `loader_batches_per_second` (and examples/s) on one process.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recordings", type=int, default=50)
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--loader_batches", type=int, default=200)
    parser.add_argument("--keep", default=None, help="work in this folder and keep it (default: a temp dir)")
    args = parser.parse_args()

    import tensorflow_datasets as tfds

    from labram_jax.data import loaders
    from tfds_builders.demo import synth
    from tfds_builders.tuab import Tuab

    work = args.keep or tempfile.mkdtemp(prefix="labram_data_bench_")
    raw_root = os.path.join(work, "tuab_raw")
    # Split the recordings over the four TUAB folders (3/4 train, 1/4 eval; half abnormal).
    per_class_train = max(1, round(args.recordings * 0.375))
    per_class_eval = max(1, args.recordings // 2 - per_class_train)
    t0 = time.perf_counter()
    paths = synth.write_tuab_tree(
        raw_root,
        train_subjects=per_class_train,
        eval_subjects=per_class_eval,
        seconds=args.minutes * 60.0,
        second_session_every=0,
        seed=0,
    )
    write_s = time.perf_counter() - t0

    data_dir = os.path.join(work, "tfds")
    builder = Tuab(data_dir=data_dir, workers=args.workers)
    t0 = time.perf_counter()
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=raw_root))
    build_s = time.perf_counter() - t0
    summary = builder.report.summary()
    hours = summary["hours_read"]

    src = loaders.open_tfds("tuab", data_dir, "train")
    it = loaders.make_loader(
        src, batch_size=args.batch_size, max_channels=23, max_patches=10, seed=0, shard_index=0, shard_count=1
    )
    next(it)
    t0 = time.perf_counter()
    for _ in range(args.loader_batches):
        batch = next(it)
    load_s = time.perf_counter() - t0

    kib = 1024.0
    result = {
        "recordings": len(paths),
        "channels": 23,
        "minutes_per_recording": args.minutes,
        "native_sfreq": synth.SFREQ,
        "workers": args.workers,
        "cpu_count": os.cpu_count(),
        "eeg_hours": hours,
        "files_read": summary["files_read"],
        "records_written": summary["units_written"],
        "edf_write_seconds_untimed": round(write_s, 2),
        "build_seconds": round(build_s, 2),
        "x_realtime_per_worker": round(hours * 3600.0 / build_s / args.workers, 1),
        "hours_per_second_per_worker": round(hours / build_s / args.workers, 4),
        "peak_rss_main_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / kib, 1),
        "peak_rss_worker_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / kib, 1),
        "loader_batch_shape": list(batch["eeg"].shape),
        "loader_batches_per_second": round(args.loader_batches / load_s, 1),
        "loader_examples_per_second": round(args.loader_batches * args.batch_size / load_s, 1),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":  # spawned build workers re-import this file: keep the work under the guard
    main()
