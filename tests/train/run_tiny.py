"""Runs one tiny stage and prints its losses as JSON (for the multi-device and multi-process tests).

python -m tests.train.run_tiny STAGE DATA_DIR WORKDIR DATA,FSDP,TENSOR [PROCESS_ID NUM_PROCESSES PORT]
    [--steps=N] [--tokenizer=DIR]

`--steps` (default 3) trains that many steps (a workdir with a checkpoint resumes); `--tokenizer` is the
tokenizer checkpoint of a `pretrain` stage.
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> None:
    options = dict(a[2:].split("=", 1) for a in argv if a.startswith("--"))
    argv = [a for a in argv if not a.startswith("--")]
    stage, data_dir, workdir, mesh = argv[:4]
    import jax

    if len(argv) > 4:
        process_id, num_processes, port = map(int, argv[4:7])
        jax.distributed.initialize(
            coordinator_address=f"127.0.0.1:{port}", num_processes=num_processes, process_id=process_id
        )
    from labram_jax.train.loop import run
    from labram_jax.train.metric_writers import read_metrics
    from tests.train.tiny_configs import tiny_config

    config = tiny_config(stage, data_dir, steps=int(options.get("steps", 3)))
    if "tokenizer" in options:
        config.tokenizer.checkpoint = options["tokenizer"]
    config.data.shuffle = False  # the same examples in every global batch, whatever the process count
    data, fsdp, tensor = map(int, mesh.split(","))
    config.mesh.update(dict(data=data, fsdp=fsdp, tensor=tensor))
    results = run(config, workdir)
    # Every process restores (Orbax synchronises them), so this works on several processes too.
    quantizer = quantizer_state(workdir) if stage == "tokenizer" else {}
    if jax.process_index() == 0:
        losses = [r["loss"] for r in read_metrics(workdir) if r["split"] == "train"]
        print(
            "RESULT "
            + json.dumps(
                {
                    "losses": losses,
                    "test": results.get("test", {}),
                    "devices": jax.device_count(),
                    "quantizer": quantizer,
                }
            )
        )


def quantizer_state(workdir: str) -> dict:
    """The quantiser variables in a tokenizer run's checkpoint, as lists."""
    import numpy as np

    import labram_jax

    model = labram_jax.load(workdir)
    return {k: np.asarray(v).tolist() for k, v in model.variables["quantizer"]["quantize"].items()}


if __name__ == "__main__":
    main(sys.argv[1:])
