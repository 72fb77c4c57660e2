"""Data-pipeline throughput of the training loader against the training step's demand.

    python -m bench.loader [--data_dir=DIR] [--batches=200] [--workers=0] [--step_s=SECONDS] [--smoke]

Reads the `demo/tuab` TFDS dataset (23 channels x 10-s windows; built with the demo builder into a
temporary directory when `--data_dir` holds none: `python -m tfds_builders.build demo --config=tuab`)
through the training loop's own loader (`labram_jax.train.datasets.sources` + `train_loader` with the
fine-tuning config, batch 16, `config.data.num_workers = --workers`), and measures batches/s after the
first batch. The demand is the `finetune_base` step measured in the same process afterwards (or
`--step_s`), and `ratio_loader_over_step` = loader batches/s / step steps/s (goal >= 3: the loader then
needs at most a third of the step's time). `loop_step_s` times the Trainer's inner loop (next batch ->
`global_batch` -> step) to show what the loader costs while the step runs on the same cores.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import common


def ensure_dataset(data_dir: str | None, smoke: bool) -> tuple[str, str, str | None]:
    """`(data_dir, dataset name, temp dir to remove)`: the demo TUAB dataset, built when missing."""
    name = "demo/tiny_tuab" if smoke else "demo/tuab"
    if data_dir and os.path.isdir(os.path.join(os.path.expanduser(data_dir), *name.split("/"))):
        return data_dir, name, None
    temp = None
    if not data_dir:
        data_dir = temp = tempfile.mkdtemp(prefix="labram_loader_bench_")
    t0 = time.perf_counter()
    if smoke:
        from tfds_builders.demo import Demo, DemoConfig

        config = DemoConfig(
            name="tiny_tuab",
            kind="tuab",
            train_subjects=2,
            eval_subjects=1,
            seconds=40.0,
            window_seconds=10.0,
            split_seed=12345,
            seed=0,
        )
        Demo(config=config, data_dir=data_dir, workers=1).download_and_prepare()
    else:
        from tfds_builders.build import build

        build("demo", data_dir, config="tuab", workers=1)
    common.log(f"built {name} in {data_dir} ({time.perf_counter() - t0:.1f} s)")
    return data_dir, name, temp


def loader_config(data_dir: str, name: str, batch: int, workers: int):
    from configs import finetune_tuab

    config = finetune_tuab.get_config("base")
    config.data.data_dir = data_dir
    config.data.train = f"{name}:train"
    config.data.num_workers = workers
    config.optim.batch_size = batch
    return config


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data_dir", default=None, help="TFDS data dir holding demo/tuab (default: build one)")
    parser.add_argument("--batches", type=int, default=None, help="timed batches (default 200; smoke 5)")
    parser.add_argument("--workers", type=int, default=0, help="config.data.num_workers (grain processes)")
    parser.add_argument("--step_s", type=float, default=None, help="the step's seconds (default: measure it)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps for the demand (default 3)")
    common.add_shape_args(parser)
    args = parser.parse_args(argv)
    common.smoke_env(args)
    shape = common.shape_of(args)
    n_batches = args.batches or (5 if args.smoke else 200)
    n_steps = args.steps or (1 if args.smoke else 3)

    from labram_jax.train import datasets as train_data
    from labram_jax.train import sharding as shd

    data_dir, name, temp = ensure_dataset(args.data_dir, args.smoke)
    try:
        config = loader_config(data_dir, name, shape["batch"], args.workers)
        t0 = time.perf_counter()
        sources = train_data.sources(config, "train")
        loader = train_data.train_loader(config, sources)
        first = next(loader)
        first_s = time.perf_counter() - t0
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        with common.CpuMonitor() as cpu:
            t0 = time.perf_counter()
            for _ in range(n_batches):
                local = next(loader)
            load_s = time.perf_counter() - t0
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        loader_cpu_s = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
        result = {
            "benchmark": "loader",
            "machine": common.machine_info(),
            "settings": {
                "dataset": f"{name}:train",
                "examples": sum(len(s) for _, s in sources),
                "batch": shape["batch"],
                "workers": args.workers,
                "batches": n_batches,
                "smoke": args.smoke,
            },
            "batch_shape": list(local["eeg"].shape),
            "first_batch_s": first_s,
            "loader_batches_per_s": n_batches / load_s,
            "loader_examples_per_s": n_batches * shape["batch"] / load_s,
            "loader_cpu_s_per_batch": loader_cpu_s / n_batches,
            "cpu_during_loading": cpu.result,
        }
        del first

        # The demand: the fine-tuning step at the loader's batch shape.
        channels, seconds = local["eeg"].shape[1], local["eeg"].shape[2]
        step_config = common.bench_config(
            "finetune_base",
            batch=shape["batch"],
            channels=channels,
            seconds=seconds,
            dtype=args.dtype,
            smoke=args.smoke,
        )
        bench = common.StepBench(step_config)
        if args.step_s:
            step_s, source = args.step_s, "--step_s"
            bench.compile()
        else:
            step_s, source = common.measure(bench, steps=n_steps, warmup=1)["step_s"], "measured (finetune_base)"
        # The Trainer's inner loop: next batch -> global batch -> step (the loader's threads share the cores).
        import jax

        times = []
        for _ in range(n_steps):
            t0 = time.perf_counter()
            local = next(loader)
            batch = shd.global_batch({k: local[k] for k in train_data.TRAIN_KEYS}, bench.mesh)
            bench.state, metrics = bench.compiled(bench.state, batch, bench.frozen)
            jax.block_until_ready((bench.state, metrics))
            times.append(time.perf_counter() - t0)
        loop_s = sorted(times)[len(times) // 2]
        result.update(
            {
                "step_s": step_s,
                "step_source": source,
                "step_steps_per_s": 1.0 / step_s,
                "ratio_loader_over_step": (n_batches / load_s) * step_s,
                "goal_ratio": 3.0,
                "loop_step_s": loop_s,
                "loop_overhead_fraction": loop_s / step_s - 1.0,
                "load_average_1_5_15": common.load_average(),
            }
        )
    finally:
        if temp:
            shutil.rmtree(temp, ignore_errors=True)
    common.emit(result)


if __name__ == "__main__":
    common.run_main(main)
