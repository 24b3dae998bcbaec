"""tools/slurm.pl, with a fake sbatch that runs the array tasks locally and records its arguments."""
import os
import subprocess
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[2] / "tools"
SLURM_PL = TOOLS / "slurm.pl"

# Records its arguments (one per line) and runs every array task in turn, like `sbatch --wait`.
# FAKE_SBATCH_SKIP=i: task i is "killed" before it runs. FAKE_SBATCH_REJECT=1: submission fails.
FAKE_SBATCH = r"""#!/usr/bin/env bash
printf '%s\n' "$@" > "$FAKE_SBATCH_ARGS"
if [ -n "${FAKE_SBATCH_REJECT:-}" ]; then echo "sbatch: error: invalid partition" >&2; exit 1; fi
echo "Submitted batch job 42"
script=${!#} array=
for a in "$@"; do case $a in --array=*) array=${a#--array=} ;; esac; done
rc=0
if [ -z "$array" ]; then
  bash "$script" || rc=1
else
  range=${array%\%*}
  for ((i = ${range%-*}; i <= ${range#*-}; i++)); do
    [ "$i" = "${FAKE_SBATCH_SKIP:-}" ] && { rc=1; continue; }
    SLURM_ARRAY_TASK_ID=$i SLURM_JOB_ID=42 bash "$script" || rc=1
  done
fi
exit $rc
"""


@pytest.fixture
def env(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    sbatch = bindir / "sbatch"
    sbatch.write_text(FAKE_SBATCH)
    sbatch.chmod(0o755)
    env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}",
               FAKE_SBATCH_ARGS=str(tmp_path / "sbatch.args"))
    env.pop("SLURM_ARRAY_TASK_ID", None)
    return env


def run(tmp_path, env, *args, **extra_env):
    return subprocess.run(["perl", str(SLURM_PL), *map(str, args)], capture_output=True,
                          text=True, cwd=tmp_path, env=dict(env, **extra_env))


def sbatch_args(tmp_path):
    return (tmp_path / "sbatch.args").read_text().splitlines()


def test_array_job_options_and_logs(tmp_path, env):
    proc = run(tmp_path, env, "--gpu", "2", "--mem", "4G", "--num-threads", "3", "--time",
               "2:00:00", "--max-jobs-run", "2", "JOB=1:3", "exp/log/train.JOB.log",
               "echo", "task JOB")
    assert proc.returncode == 0, proc.stderr
    args = sbatch_args(tmp_path)
    assert args[0] == "--wait"
    assert set(args[1:-1]) == {"--job-name=train", "--output=exp/log/q/train.%a.out",
                               "--array=1-3%2", "--gres=gpu:2", "--mem=4G", "--cpus-per-task=3",
                               "--time=2:00:00"}
    assert args[-1] == "exp/log/q/train.sh"
    assert (tmp_path / "exp/log/q/train.sh").is_file()  # the batch script sits next to the logs
    for i in (1, 2, 3):
        log = (tmp_path / f"exp/log/train.{i}.log").read_text()
        assert log.startswith(f"# echo 'task {i}'\n# Started at ")
        assert f"\ntask {i}\n# Accounting: time=" in log and "# Ended (code 0)" in log
        assert (tmp_path / f"exp/log/q/train.{i}.exit").read_text().strip() == "0"


def test_single_job_is_not_an_array(tmp_path, env):
    proc = run(tmp_path, env, "exp/log/stats.log", "echo ok | tr a-z A-Z")
    assert proc.returncode == 0, proc.stderr
    args = sbatch_args(tmp_path)
    assert not any(a.startswith(("--array", "--gres", "--partition")) for a in args)
    assert "--output=exp/log/q/stats.out" in args
    assert (tmp_path / "exp/log/stats.log").read_text().count("\nOK\n") == 1


def test_config_file_defaults_and_command_line_overrides(tmp_path, env):
    conf = tmp_path / "my.conf"
    conf.write_text("# site settings\npartition=cpu   # CPU queue\ngpu_partition=gpu\nmem=2G\n"
                    'extra_options="--account=proj --qos=normal"\ntime=\n')
    proc = run(tmp_path, env, "--config", conf, "--mem", "16G", "log/a.log", "true")
    assert proc.returncode == 0, proc.stderr
    args = sbatch_args(tmp_path)
    assert {"--partition=cpu", "--mem=16G", "--account=proj", "--qos=normal"} <= set(args)
    assert not any(a.startswith(("--mem=2G", "--time", "--gres")) for a in args)
    proc = run(tmp_path, env, "--config", conf, "--gpu", "1", "log/a.log", "true")
    assert proc.returncode == 0, proc.stderr
    assert {"--partition=gpu", "--gres=gpu:1", "--mem=2G"} <= set(sbatch_args(tmp_path))


def test_conf_slurm_conf_is_read_by_default(tmp_path, env):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf/slurm.conf").write_text("partition=short\nnum_threads=4\n")
    proc = run(tmp_path, env, "log/a.log", "true")
    assert proc.returncode == 0, proc.stderr
    assert {"--partition=short", "--cpus-per-task=4"} <= set(sbatch_args(tmp_path))


def test_example_config_parses(tmp_path, env):
    proc = run(tmp_path, env, "--config", TOOLS / "conf/slurm.conf", "log/a.log", "true")
    assert proc.returncode == 0, proc.stderr
    assert {"--partition=cpu", "--mem=8G"} <= set(sbatch_args(tmp_path))


def test_bad_config_key_fails(tmp_path, env):
    conf = tmp_path / "bad.conf"
    conf.write_text("queue=all\n")
    proc = run(tmp_path, env, "--config", conf, "log/a.log", "true")
    assert proc.returncode == 1 and "unknown key 'queue'" in proc.stderr
    assert not (tmp_path / "sbatch.args").exists()


def test_failed_tasks_are_reported(tmp_path, env):
    proc = run(tmp_path, env, "JOB=1:4", "log/d.JOB.log", "[ JOB -lt 3 ]")
    assert proc.returncode == 1
    assert "slurm.pl: 2 / 4 failed, log is in log/d.3.log" in proc.stderr
    assert (tmp_path / "log/q/d.4.exit").read_text().strip() == "1"
    assert "# Ended (code 1)" in (tmp_path / "log/d.3.log").read_text()


def test_task_without_exit_file_counts_as_failed(tmp_path, env):
    (tmp_path / "log/q").mkdir(parents=True)
    (tmp_path / "log/q/k.2.exit").write_text("0\n")  # stale file from an earlier run
    proc = run(tmp_path, env, "JOB=1:3", "log/k.JOB.log", "true", FAKE_SBATCH_SKIP="2")
    assert proc.returncode == 1
    assert "slurm.pl: 1 / 3 failed, log is in log/k.2.log" in proc.stderr
    assert "no exit status" in proc.stderr and "log/q/k.2.out" in proc.stderr


def test_submission_failure_is_reported(tmp_path, env):
    proc = run(tmp_path, env, "JOB=1:2", "log/r.JOB.log", "true", FAKE_SBATCH_REJECT="1")
    assert proc.returncode == 1
    assert "sbatch failed" in proc.stderr and "invalid partition" in proc.stderr


def test_espnet_launcher_style_call(tmp_path, env):
    # what espnet2.bin.launch runs for multi-node training with --cmd 'slurm.pl --name exp/x'
    proc = run(tmp_path, env, "--name", "exp/x", "--gpu", "0", "--num_threads", "1",
               "--num_nodes", "2", "exp/x/train.log", "echo", "--export=ALL", "--ngpu", "0")
    assert proc.returncode == 0, proc.stderr
    args = sbatch_args(tmp_path)
    assert {"--job-name=exp/x", "--nodes=2", "--cpus-per-task=1"} <= set(args)
    assert not any(a.startswith("--gres") for a in args)
    assert "\n--export=ALL --ngpu 0\n" in (tmp_path / "exp/x/train.log").read_text()


@pytest.mark.parametrize("args,message", [
    (["--queue", "x", "log/a.log", "true"], "unknown option --queue"),
    (["--gpu", "two", "log/a.log", "true"], "--gpu expects a number"),
    (["JOB=1:2", "log/a.log", "true"], "share one log file"),
])
def test_usage_errors(tmp_path, env, args, message):
    proc = run(tmp_path, env, *args)
    assert proc.returncode == 1 and message in proc.stderr
    assert not (tmp_path / "sbatch.args").exists()
