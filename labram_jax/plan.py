"""`python -m labram_jax.plan --config=configs/X.py --topology=T [--config.key=value ...] [--json]`.

Compiles the config's real train step (and eval step) ahead of time for a target and reports, per device,
the bytes of parameters, optimiser state, batch and XLA temporaries against the device's memory, the FLOPs
and bytes of one step with the roofline time they allow, and the collectives XLA inserted. Targets: a TPU
slice by name (`v5e-16`, `v5p-8`, `v4-32`, ...; compiled with libtpu, no TPU needed: `pip install -e '.[tpu]'`),
`cpu:N` (N fake CPU devices: exact parameter and optimiser sizes of an N-device mesh, XLA:CPU estimates of the
rest; `--memory_gib` sets the device memory, e.g. a GPU's) or `local` (this process's devices).

Exit status: 0 when the plan fits, 3 when it does not, a step the TPU compiler refuses for memory included
(the levers are named and, unless --nosearch, the smallest change that fits is searched for and printed), 4
when it cannot say (device memory unknown, or depth probes whose memory does not grow with depth), 1 for a
config error, 2 for a usage error.
"""

from __future__ import annotations

import os
import re
import sys


def _prepare_environment(argv: list[str]) -> None:
    """Before JAX starts: fake CPU devices for `cpu:N`; quiet, compile-only libtpu for TPU slices."""
    topology = next((a.split("=", 1)[1] for a in argv if a.startswith("--topology=")), None)
    if topology is None and "--topology" in argv[:-1]:
        topology = argv[argv.index("--topology") + 1]
    if topology is None:
        return
    match = re.fullmatch(r"cpu:(\d+)", topology)
    if match:
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_force_host_platform_device_count" not in flags:
            os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={match.group(1)}".strip()
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
    elif topology != "local":
        # A TPU slice: compile-only libtpu (planning.targets), and JAX's own backend on the CPU, so that
        # libtpu is not also started (and locked) as this host's accelerator.
        os.environ.setdefault("JAX_PLATFORMS", "cpu")


if __name__ == "__main__":
    _prepare_environment(sys.argv[1:])

import json  # noqa: E402

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from labram_jax import config_cli  # noqa: E402
from labram_jax.config_errors import ConfigError  # noqa: E402
from labram_jax.planning.report import NO_VERDICT_EXIT_STATUS, NOT_FITTING_EXIT_STATUS, plan, report  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "Path to a config file (configs/*.py).", lock_config=True)
_TOPOLOGY = flags.DEFINE_string(
    "topology", None, "Target: a TPU slice (v5e-16, v5p-8, v4-32, ...), cpu:N (N fake CPU devices) or local."
)
_JSON = flags.DEFINE_bool("json", False, "Print one JSON object instead of the report.")
_MEMORY_GIB = flags.DEFINE_float(
    "memory_gib", None, "Memory per device in GiB (default: the device kind's; cpu:N: the host's split N ways)."
)
_EVAL = flags.DEFINE_bool("eval", True, "Also compile the eval step (--noeval: the train step only).")
_SEARCH = flags.DEFINE_bool(
    "search", True, "When the plan does not fit, compile candidate changes until one fits (--nosearch: name them)."
)
_MAX_COMPILES = flags.DEFINE_integer("max_compiles", 3, "At most this many candidate compiles in the search.")
_DEPTH_PROBES = flags.DEFINE_list(
    "depth_probes",
    None,
    "Two depths, e.g. 2,4: compile the model at those depths and extrapolate every XLA figure linearly to the "
    "full depth (minutes instead of a deep model's compile; parameter and optimiser bytes stay exact).",
)


def _probes(values: list[str] | None) -> tuple[int, int] | None:
    if not values:
        return None
    try:
        probes = tuple(int(v) for v in values)
    except ValueError:
        probes = ()
    if len(probes) != 2:
        raise app.UsageError(f"--depth_probes={','.join(values)}: give two depths, e.g. --depth_probes=2,4")
    return probes  # type: ignore[return-value]


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
    if _CONFIG.value is None:
        raise app.UsageError("--config is required, e.g. --config=configs/huge.py")
    if not _TOPOLOGY.value:
        raise app.UsageError("--topology is required: a TPU slice (e.g. v5e-16), cpu:N or local")
    from labram_jax.planning.targets import TargetError

    try:
        result = plan(
            _CONFIG.value,
            _TOPOLOGY.value,
            memory_gib=_MEMORY_GIB.value,
            evaluate=_EVAL.value,
            search=_SEARCH.value,
            max_compiles=_MAX_COMPILES.value,
            config_name=flags.FLAGS["config"].serialize().split("=", 1)[-1],
            depth_probes=_probes(_DEPTH_PROBES.value),
        )
    except TargetError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2, default=str) if _JSON.value else report(result))
    return {True: 0, False: NOT_FITTING_EXIT_STATUS, None: NO_VERDICT_EXIT_STATUS}[result["fits"]]


if __name__ == "__main__":
    app.run(lambda argv: sys.exit(main(argv)), flags_parser=config_cli.parse_flags)
