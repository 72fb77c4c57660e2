"""The GPU kit (`bench/device/`): the wheel list, the suite script's plans and the summary of its files.

The suite itself runs on a lent GPU machine; here its shell syntax, its refusal of an unknown plan and the
summary of benchmark JSON (a real smoke run's and a truncated one) are checked.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from bench.device import summarize

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEVICE = os.path.join(ROOT, "bench", "device")


def test_wheel_list_is_pinned_and_has_no_duplicates():
    with open(os.path.join(DEVICE, "wheels.txt")) as f:
        reqs = [line.strip() for line in f if line.strip() and not line.lstrip().startswith("#")]
    names = []
    for req in reqs:
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([0-9][0-9A-Za-z.\-]*)", req)
        assert m, f"{req!r}: pin every wheel to one version (NAME==VERSION)"
        names.append(re.sub(r"[-_.]+", "_", m.group(1).lower()))
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    # What the benchmarks import that the device image lacks (bench/device/wheels.txt's header).
    assert {"braindecode", "mne", "ml_collections", "grain", "array_record"} <= set(names)


def test_scripts_parse_and_unknown_plan_is_refused(tmp_path):
    for script in ("gpu_suite.sh", "fetch_wheels.sh"):
        subprocess.run(["bash", "-n", os.path.join(DEVICE, script)], check=True)
    proc = subprocess.run(
        ["bash", os.path.join(DEVICE, "gpu_suite.sh"), "tpu"],
        cwd=tmp_path,
        env={**os.environ, "OUT": str(tmp_path / "out"), "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "unknown plan 'tpu'" in proc.stdout


def test_summarize_tables_and_names_unreadable_files(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "bench.train_step", "--smoke", "--inprocess", "--configs=finetune_base"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    (tmp_path / "base.json").write_text(proc.stdout)
    (tmp_path / "huge.json").write_text(proc.stdout[: len(proc.stdout) // 2])  # killed mid-write
    (tmp_path / "other.json").write_text(json.dumps({"results": {}}))

    text = summarize.markdown([str(tmp_path)])
    assert "### base.json" in text and "| finetune_base |" in text and "| config | s/step |" in text
    assert re.search(r"### huge\.json\nunreadable \(JSONDecodeError", text)
    assert "### other.json\nnot a benchmark's JSON object" in text
    assert summarize.main([str(tmp_path / "base.json")]) == 0
    assert summarize.main([str(tmp_path)]) == 1
    assert summarize.main([str(tmp_path / "other.json")]) == 1
