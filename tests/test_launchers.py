"""The launchers' commands: printed by --dry_run, and tokenised as intended when run (fake gcloud, sbatch,
srun and git on PATH record the argv they receive)."""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = ["--config=configs/base.py", "--workdir=/shared/runs/a b", "--config.data.train=eeg_corpus/w4,tuab/default:train"]
MAIN = ["python", "-m", "labram_jax.main", *RUN, "--distributed"]


def _launch(script: str, *args: str, path: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if path:
        env["PATH"] = f"{path}:{env['PATH']}"
    return subprocess.run(["bash", f"launch/{script}", *args], cwd=ROOT, capture_output=True, text=True, env=env)


def _fake(directory, name: str, body: str = "") -> None:
    """A command that appends its argv (and stdin, for sbatch) as one JSON line to <dir>/calls.jsonl."""
    path = directory / name
    path.write_text(
        f"#!{sys.executable}\nimport json, sys\n"
        f"rec = {{'cmd': {name!r}, 'argv': sys.argv[1:]}}\n{body}\n"
        f"open({str(directory / 'calls.jsonl')!r}, 'a').write(json.dumps(rec) + '\\n')\n"
    )
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def _calls(directory) -> list[dict]:
    return [json.loads(line) for line in (directory / "calls.jsonl").read_text().splitlines()]


def test_slurm_dry_run_prints_one_task_per_gpu_with_distributed():
    out = _launch("slurm.sh", "--dry_run", "--nodes=2", "--gpus_per_node=4", "--partition=gpu", "--requeue", "--", *RUN)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    directives = ("--nodes=2", "--ntasks-per-node=4", "--gpus-per-node=4", "--partition=gpu", "--signal=TERM@120")
    for directive in (*directives, "--requeue"):
        assert f"#SBATCH {directive}" in lines
    srun = next(line for line in lines if line.startswith("srun "))
    argv = shlex.split(srun)
    assert argv[argv.index("python") :] == MAIN  # the unchanged command, one process per GPU
    assert "--output=/shared/runs/a b/slurm-%j-%t.log" in argv


def test_slurm_one_process_per_node_drives_every_gpu_of_the_node():
    out = _launch("slurm.sh", "--dry_run", "--per=node", "--gpus_per_node=4", "--", *RUN)
    srun = shlex.split(next(line for line in out.stdout.splitlines() if line.startswith("srun ")))
    assert "#SBATCH --ntasks-per-node=1" in out.stdout.splitlines()
    assert srun[srun.index("python") :] == [*MAIN, "--local_device_ids=0,1,2,3"]


def test_slurm_submits_the_script_that_srun_then_runs(tmp_path):
    _fake(tmp_path, "sbatch", "rec['stdin'] = sys.stdin.read()")
    _fake(tmp_path, "srun")
    out = _launch(
        "slurm.sh", "--nodes=1", "--gpus_per_node=2", "--", *RUN[:1], f"--workdir={tmp_path}/run", path=str(tmp_path)
    )
    assert out.returncode == 0, out.stderr
    (submitted,) = _calls(tmp_path)
    script = tmp_path / "job.sh"
    # Run the submitted script as SLURM would, with this repository's venv standing in.
    script.write_text(submitted["stdin"].replace(f"{ROOT}/.venv/bin/activate", "/dev/null"))
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    subprocess.run(["bash", str(script)], check=True, env=env, cwd=tmp_path)
    srun = _calls(tmp_path)[1]["argv"]
    assert srun[srun.index("python") :] == [
        "python",
        "-m",
        "labram_jax.main",
        RUN[0],
        f"--workdir={tmp_path}/run",
        "--distributed",
    ]


def test_slurm_refuses_a_run_without_workdir_or_flags():
    assert _launch("slurm.sh", "--dry_run").returncode == 2
    missing = _launch("slurm.sh", "--dry_run", "--", "--config=configs/base.py")
    assert missing.returncode == 2 and "--workdir" in missing.stderr


def test_tpu_vm_runs_the_same_command_on_every_worker(tmp_path):
    _fake(tmp_path, "gcloud")
    _fake(tmp_path, "git")  # records the archive command instead of writing the archive
    args = [
        "--tpu=pod",
        "--zone=us-central2-b",
        "--project=p1",
        "--setup",
        "--",
        *RUN[:1],
        "--workdir=/mnt/shared/huge",
        RUN[2],
    ]
    printed = _launch("tpu_vm.sh", "--dry_run", *args).stdout.splitlines()
    assert printed[0].startswith("git -C ") and " archive --format=tar.gz " in printed[0]
    out = _launch("tpu_vm.sh", *args, path=str(tmp_path))
    assert out.returncode == 0, out.stderr
    calls = _calls(tmp_path)
    assert [c["argv"][2:4] for c in calls if c["cmd"] == "git"][-1] == ["archive", "--format=tar.gz"]
    scp, install, run = [c for c in calls if c["cmd"] == "gcloud"]
    assert scp["argv"][:4] == ["compute", "tpus", "tpu-vm", "scp"] and "--worker=all" in scp["argv"]
    for call in (install, run):
        assert call["argv"][:5] == ["compute", "tpus", "tpu-vm", "ssh", "pod"]
        assert {"--zone=us-central2-b", "--worker=all", "--project=p1"} <= set(call["argv"])
    assert 'pip install -q -e ".[tpu]"' in install["argv"][-1]
    remote = run["argv"][-1].removeprefix("--command=")
    main = remote.split(" && ")[-1]
    assert shlex.split(main)[:8] == [
        "python",
        "-m",
        "labram_jax.main",
        RUN[0],
        "--workdir=/mnt/shared/huge",
        RUN[2],
        "--distributed",
        ">",
    ]
    assert main.endswith("> ~/labram-logs/huge.log 2>&1")


def test_tpu_vm_needs_a_name_a_zone_and_a_mounted_workdir():
    out = _launch("tpu_vm.sh", "--dry_run", "--", *RUN)
    assert out.returncode == 2 and "--tpu=NAME and --zone=ZONE" in out.stderr
    url = _launch("tpu_vm.sh", "--tpu=t", "--zone=z", "--dry_run", "--", RUN[0], "--workdir=gs://b/run")
    assert url.returncode == 2 and "gcsfuse" in url.stderr


def test_local_dry_run_prints_one_command_per_process():
    out = _launch("local.sh", "--dry_run", "3", *RUN[:1], "--workdir=/tmp/x")
    lines = out.stdout.splitlines()
    assert len(lines) == 3, out.stderr
    ports = set()
    for i, line in enumerate(lines):
        argv = shlex.split(line.removesuffix(" &"))
        assert argv[:5] == ["python", "-m", "labram_jax.main", RUN[0], "--workdir=/tmp/x"]
        assert f"--process_id={i}" in argv and "--num_processes=3" in argv
        ports.add(next(a for a in argv if a.startswith("--coordinator_address=127.0.0.1:")))
    assert len(ports) == 1


def test_local_device_ids_flag_parses_indices_and_names_a_bad_one():
    # In a subprocess: labram_jax.main defines absl flags, which other test modules' imports define too.
    code = (
        "from absl import app\n"
        "from labram_jax.main import device_ids\n"
        "print(device_ids(['0', '1', '3']), device_ids(None))\n"
        "try:\n"
        "    device_ids(['0', 'x'])\n"
        "except app.UsageError as err:\n"
        "    print(err)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["[0, 1, 3] None", "--local_device_ids=0,x: give GPU indices, e.g. 0,1,2,3"]
