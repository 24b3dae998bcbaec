"""egs/TEMPLATE/common.sh: the helpers both staged pipelines source."""

import subprocess
from pathlib import Path

COMMON = Path(__file__).resolve().parents[2] / "egs" / "TEMPLATE" / "common.sh"


def bash(script: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", f"set -euo pipefail; . {COMMON}; {script}"],
                          capture_output=True, text=True, cwd=cwd, timeout=60)


def test_run_stage_selects_and_skips_finished_stages(tmp_path):
    (tmp_path / "done").touch()
    script = ("stage=2 stop_stage=4 force=false; "
              "for n in 1 2 5; do run_stage $n none && echo run$n || echo skip$n; done; "
              "run_stage 3 done && echo run3 || echo skip3; "
              "force=true; run_stage 3 done && echo forced3 || echo skip3")
    proc = bash(script, cwd=tmp_path)
    out = proc.stdout.split()
    assert [w for w in out if w.startswith(("run", "skip", "forced"))] == [
        "skip1", "run2", "skip5", "skip3", "forced3"]
    assert "already done (done exists); --force true to redo" in proc.stdout


def test_fail_names_the_log_and_exits():
    proc = bash("false || fail exp/x/train.log; echo not-reached")
    assert proc.returncode == 1 and "failed; see exp/x/train.log" in proc.stdout
    assert "not-reached" not in proc.stdout


def test_train_launcher_one_node_and_several():
    one = bash("py=python3 ngpu=1 num_nodes=1 cuda_cmd=run.pl; train_launcher exp/a").stdout.strip()
    assert one == "run.pl --gpu 1 exp/a/train.log"
    many = bash("py=python3 ngpu=4 num_nodes=2 cuda_cmd=slurm.pl; train_launcher exp/a").stdout
    assert many.startswith("python3 -m espnet2.bin.launch --cmd 'slurm.pl --name exp/a' --log exp/a/train.log")
    assert "--ngpu 4 --num_nodes 2 --init_file_prefix exp/a/.dist_init_" in many
    assert many.strip().endswith("--multiprocessing_distributed true --")
