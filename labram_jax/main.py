"""`python -m labram_jax.main --config=configs/X.py --workdir=DIR [--config.key=value ...] [--dry_run]`.

Flags, distributed start-up and dispatch on `config.stage`; the stages live in `labram_jax/train/`.
"""

from __future__ import annotations

import sys

from absl import app, flags, logging
from ml_collections import config_flags

from labram_jax import dry_run

_CONFIG = config_flags.DEFINE_config_file("config", None, "Path to a config file (configs/*.py).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and logs.")
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "Build every model of the config abstractly, print its "
                             "parameter counts and exit without allocating or training.")

STAGES = ("tokenizer", "pretrain", "finetune", "evaluate")


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not flags.FLAGS["verbosity"].present:
        # JAX logs every backend it probes (e.g. no libtpu) at INFO; keep the console for our output.
        logging.set_verbosity(logging.WARNING)
    config = _CONFIG.value
    if config is None:
        raise app.UsageError("--config is required, e.g. --config=configs/base.py")
    if config.stage not in STAGES:
        raise app.UsageError(f"config field stage={config.stage!r} must be one of {', '.join(STAGES)}")
    if _DRY_RUN.value:
        print(dry_run.summarize(config))
        return 0
    print(f"stage {config.stage!r} is not available yet: the training loops land with the training issue "
          "(#5). Use --dry_run to build and size the models.", file=sys.stderr)
    return 2


if __name__ == "__main__":
    app.run(lambda argv: sys.exit(main(argv)))
