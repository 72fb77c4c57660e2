"""`python -m labram_jax.main --config=configs/X.py --workdir=DIR [--config.key=value ...] [--dry_run]`.

Flags, distributed start-up and dispatch on `config.stage`; the loop lives in `labram_jax/train/`.
"""

from __future__ import annotations

import sys

if __name__ == "__main__":  # before JAX allocates anything; may re-execute this command once
    from labram_jax import host_memory

    host_memory.configure()

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from labram_jax import config_cli, dry_run  # noqa: E402
from labram_jax.checkpoints import CheckpointError  # noqa: E402
from labram_jax.config_errors import ConfigError  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "Path to a config file (configs/*.py).", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics, plots and results.")
_DRY_RUN = flags.DEFINE_bool(
    "dry_run",
    False,
    "Build every model of the config abstractly, print its parameter counts and exit without allocating or training.",
)
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address",
    None,
    "Multi-process runs: HOST:PORT of process 0 (omit on TPU pods and SLURM, where JAX finds it).",
)
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Multi-process runs: number of processes.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "Multi-process runs: this process's index.")
_DISTRIBUTED = flags.DEFINE_bool(
    "distributed",
    False,
    "Call jax.distributed.initialize() with the values JAX "
    "detects from the cluster (TPU pod, SLURM) or the three flags above.",
)
_LOCAL_DEVICE_IDS = flags.DEFINE_list(
    "local_device_ids",
    None,
    "Multi-process GPU runs: the GPUs this process drives, e.g. 0,1,2,3 for one process per node (JAX's SLURM "
    "detection otherwise gives each process the one GPU of its SLURM_LOCALID).",
)


PREEMPTED_EXIT_STATUS = 143
"""128 + SIGTERM: the run saved a checkpoint at a preemption notice and stopped; the same command resumes it."""


def _initialize_distributed() -> None:
    if not (_DISTRIBUTED.value or _COORDINATOR.value):
        return
    import jax

    kwargs = {
        k: v
        for k, v in dict(
            coordinator_address=_COORDINATOR.value,
            num_processes=_NUM_PROCESSES.value,
            process_id=_PROCESS_ID.value,
            local_device_ids=device_ids(_LOCAL_DEVICE_IDS.value),
        ).items()
        if v is not None
    }
    jax.distributed.initialize(**kwargs)


def device_ids(values: list[str] | None) -> list[int] | None:
    """`--local_device_ids` as integers; a value that is not a device index is a usage error naming it."""
    if values is None:
        return None
    try:
        return [int(v) for v in values]
    except ValueError:
        raise app.UsageError(f"--local_device_ids={','.join(values)}: give GPU indices, e.g. 0,1,2,3") from None


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not flags.FLAGS["verbosity"].present:
        # JAX logs every backend it probes (e.g. no libtpu) at INFO; keep the console for our output.
        logging.set_verbosity(logging.WARNING)
    config = _CONFIG.value
    if config is None:
        raise app.UsageError("--config is required, e.g. --config=configs/base.py")
    from labram_jax.train.stages import STAGES

    names = (*STAGES, "pipeline")
    if config.stage not in names:
        raise app.UsageError(f"config field stage={config.stage!r} must be one of {', '.join(names)}")
    if _DRY_RUN.value:
        print(dry_run.summarize(config))
        return 0
    if not _WORKDIR.value:
        raise app.UsageError("--workdir is required to train, e.g. --workdir=/tmp/labram-run")
    _initialize_distributed()
    from labram_jax.train.loop import NonFiniteLossError, run
    from labram_jax.train.multistage import run_pipeline
    from labram_jax.train.preemption import Preempted

    try:
        if config.stage == "pipeline":
            run_pipeline(config, _WORKDIR.value)
        else:
            run(config, _WORKDIR.value)
    except (ConfigError, CheckpointError, NonFiniteLossError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except Preempted as stop:
        print(stop, file=sys.stderr, flush=True)
        return PREEMPTED_EXIT_STATUS
    return 0


if __name__ == "__main__":
    app.run(lambda argv: sys.exit(main(argv)), flags_parser=config_cli.parse_flags)
