"""Markdown tables of the JSON files one `bench/device/gpu_suite.sh` run left (or any benchmarks' JSON).

    python -m bench.device.summarize DIR_OR_FILES...

Each file holds one benchmark's object (`{"benchmark": "train_step", ...}`); a file that is empty or not
JSON (a benchmark killed by its time limit) is named with the reason, so nothing is silently left out.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from bench import all as bench_all  # noqa: E402


def reports(paths: list[str]) -> list[tuple[str, dict | str]]:
    """(file, its benchmark object) or (file, why it could not be read), in name order."""
    files = []
    for p in paths:
        files += sorted(glob.glob(os.path.join(p, "*.json"))) if os.path.isdir(p) else [p]
    out = []
    for f in files:
        try:
            with open(f) as fh:
                obj = json.load(fh)
        except (OSError, json.JSONDecodeError) as err:
            out.append((f, f"unreadable ({type(err).__name__}: {err}); the benchmark may have hit its time limit"))
            continue
        if not isinstance(obj, dict) or "benchmark" not in obj:
            out.append((f, "not a benchmark's JSON object (no 'benchmark' key)"))
            continue
        out.append((f, obj))
    return out


def markdown(paths: list[str], found: list[tuple[str, dict | str]] | None = None) -> str:
    """The tables of `paths`' benchmark files (`found`: their `reports(paths)`, when already read)."""
    lines = []
    for f, obj in reports(paths) if found is None else found:
        lines.append(f"### {os.path.basename(f)}")
        if isinstance(obj, str):
            lines += [obj, ""]
            continue
        benchmarks = obj["benchmarks"] if obj["benchmark"] == "all" else {obj["benchmark"]: obj}
        lines += [bench_all.markdown({"machine": obj.get("machine", {}), "benchmarks": benchmarks}), ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="+", help="directories (their *.json) or JSON files")
    args = parser.parse_args(argv)
    found = reports(args.paths)
    print(markdown(args.paths, found))
    return 0 if all(isinstance(obj, dict) for _, obj in found) else 1


if __name__ == "__main__":
    sys.exit(main())
