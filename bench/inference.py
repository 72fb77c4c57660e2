"""Embedding extraction over a long recording: `labram_jax.load(...).features` against torch Labram.

    python -m bench.inference [--minutes=60] [--channels=23] [--window=10] [--batch=32] [--size=base]
                              [--no_torch] [--smoke]

Writes a fine-tuning checkpoint of the given size with random weights to a temporary directory (as
training or conversion writes one: `checkpoints.write_model`), loads it with `labram_jax.load`, cuts a
synthetic `minutes`-long recording into `window`-second windows and runs `features` (patch tokens after
fc_norm, `(B, C*A, d)`, returned to the host as numpy) over them in batches of `batch`; the last batch is
padded to the full batch so one compiled shape serves the run. When braindecode is installed, the same
windows go through braindecode's `Labram` (`torch.no_grad`, eval mode, patch tokens after fc_norm) batch
by batch, interleaved with ours (A B A B), for the ratio. JSON: `windows`, `ours_windows_per_s`,
`theirs_windows_per_s`, `ratio_ours_over_theirs` (time ratio: < 1 means we are faster),
`ours_x_realtime` (seconds of EEG embedded per second), `ours_first_call_s` (includes compiling), and
`load_s` (restoring the checkpoint).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import common


def write_checkpoint(directory: str, size: str, channels: int, window: int, smoke: bool, dtype: str) -> int:
    """A `finetune` checkpoint with random weights; returns its parameter count."""
    import flax.linen as nn
    import jax

    from configs import finetune_tuab
    from labram_jax import checkpoints
    from labram_jax.models import factory

    config = finetune_tuab.get_config(size)
    config.model.dtype = dtype
    if smoke:
        config.model.update(common.SMOKE_BACKBONE)
    model = factory.classifier_model(config, config.task.num_outputs)
    init = factory.init_fn(model, factory.example_batch(1, channels, window))
    variables = jax.jit(lambda k: nn.meta.unbox(init(k)))(jax.random.PRNGKey(0))
    meta = checkpoints.make_meta("finetune", config, 0, num_outputs=config.task.num_outputs)
    checkpoints.write_model(directory, variables, meta)
    return int(sum(x.size for x in jax.tree.leaves(variables["params"])))


def recording_windows(minutes: float, channels: int, window: int, batch: int):
    """`(batches, real windows)`: a synthetic recording in µV cut into windows, in padded batches."""
    import numpy as np

    samples = int(minutes * 60) // window * window * 200
    rng = np.random.default_rng(0)
    signal = (30.0 * rng.standard_normal((channels, samples))).astype(np.float32)
    windows = signal.reshape(channels, -1, window * 200).transpose(1, 0, 2)  # (W, C, window * 200)
    n = len(windows)
    pad = (-n) % batch
    if pad:
        windows = np.concatenate([windows, np.zeros((pad,) + windows.shape[1:], np.float32)])
    return [np.ascontiguousarray(windows[i : i + batch]) for i in range(0, len(windows), batch)], n


def torch_features(size: str, channels: int, window: int, smoke: bool, threads: int | None = None):
    """`fn(batch_uv) -> (B, C*A, d)` through braindecode Labram, or None without braindecode."""
    if not common.have("braindecode"):
        return None, None
    import torch

    from bench import torch_reference as tr

    tr.setup_threads(threads)
    device = tr.torch_device()
    model, ch_names = tr.build_labram(
        tr.SMOKE_SIZE if smoke else tr.TORCH_SIZES[size], channels=channels, seconds=window, n_outputs=1
    )
    model = model.to(device).eval()

    def run(batch_uv):
        with torch.no_grad():
            x = torch.from_numpy(batch_uv).to(device) / 100.0  # the official engines' input unit
            out = model(x, return_patch_tokens=True, ch_names=ch_names)
            return out.cpu().numpy()

    return run, device


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=None, help="recording length (default 60; smoke 1)")
    parser.add_argument("--channels", type=int, default=None, help="channels (default 23; smoke 2)")
    parser.add_argument("--window", type=int, default=None, help="window seconds (default 10; smoke 2)")
    parser.add_argument("--batch", type=int, default=None, help="windows per call (default 32; smoke 4)")
    parser.add_argument("--size", default="base", choices=("base", "large", "huge"))
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    parser.add_argument("--no_torch", action="store_true", help="ours only")
    parser.add_argument("--torch_threads", type=int, default=None, help="default: available cores; smoke: 1")
    parser.add_argument("--smoke", action="store_true", help="tiny model, a 1-minute recording")
    args = parser.parse_args(argv)
    smoke = args.smoke
    minutes = args.minutes or (1.0 if smoke else 60.0)
    channels = args.channels or (2 if smoke else 23)
    window = args.window or (2 if smoke else 10)
    batch = args.batch or (4 if smoke else 32)
    common.smoke_env(args)

    import labram_jax
    from labram_jax import channels as ch

    names = list(ch.TUH_CHANNELS[:channels]) if channels <= len(ch.TUH_CHANNELS) else list(ch.VOCABULARY[:channels])
    batches, n_windows = recording_windows(minutes, channels, window, batch)
    work = tempfile.mkdtemp(prefix="labram_inference_bench_")
    try:
        params = write_checkpoint(os.path.join(work, "ckpt"), args.size, channels, window, smoke, args.dtype)
        t0 = time.perf_counter()
        model = labram_jax.load(os.path.join(work, "ckpt"))
        load_s = time.perf_counter() - t0
    finally:
        shutil.rmtree(work, ignore_errors=True)

    t0 = time.perf_counter()
    out = model.features(batches[0], names)
    first_s = time.perf_counter() - t0
    threads = args.torch_threads or (1 if smoke else common.cpu_count())
    theirs, device = (None, None) if args.no_torch else torch_features(args.size, channels, window, smoke, threads)
    if theirs is not None:
        theirs(batches[0])  # warm-up
    ours_s, theirs_s = 0.0, 0.0
    with common.CpuMonitor() as cpu:
        for i, b in enumerate(batches):
            t0 = time.perf_counter()
            model.features(b, names)  # returns numpy: the device work is done
            ours_s += time.perf_counter() - t0
            if theirs is not None:
                t0 = time.perf_counter()
                theirs(b)
                theirs_s += time.perf_counter() - t0
            common.log(
                f"  batch {i + 1}/{len(batches)}: ours {ours_s:.2f} s"
                + (f", torch {theirs_s:.2f} s" if theirs is not None else "")
            )
    total = len(batches) * batch
    result = {
        "benchmark": "inference",
        "machine": common.machine_info(),
        "settings": {
            "minutes": minutes,
            "channels": channels,
            "window_s": window,
            "batch": batch,
            "size": args.size,
            "dtype": args.dtype,
            "smoke": smoke,
        },
        "param_count": params,
        "windows": n_windows,
        "windows_computed": total,
        "feature_shape": list(out.shape),
        "load_s": load_s,
        "ours_first_call_s": first_s,
        "ours_s": ours_s,
        "ours_windows_per_s": total / ours_s,
        "ours_x_realtime": total * window / ours_s,
        "cpu_during_run": cpu.result,
    }
    result.update(common.peak_memory(model_device()))
    if theirs is not None:
        result.update(
            {
                "theirs": "braindecode Labram, torch.no_grad",
                "torch_device": str(device),
                "torch_threads": threads,
                "theirs_s": theirs_s,
                "theirs_windows_per_s": total / theirs_s,
                "ratio_ours_over_theirs": ours_s / theirs_s,
            }
        )
    else:
        result["theirs"] = "skipped (--no_torch)" if args.no_torch else "skipped (braindecode not installed)"
    common.emit(result)


def model_device():
    import jax

    return jax.devices()[0]


if __name__ == "__main__":
    common.run_main(main)
