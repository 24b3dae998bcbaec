"""tools/run.pl: Kaldi-style local job runner."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

RUN_PL = Path(__file__).resolve().parents[2] / "tools" / "run.pl"

# A job that counts how many jobs run at once (under a file lock), waits until `limit` jobs have
# overlapped once (so a correct runner reaches the limit), holds its slot a little, then leaves.
COUNTER = """
import fcntl, sys, time
state, limit = sys.argv[1], int(sys.argv[2])

def update(delta):
    with open(state + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            cur, peak = map(int, open(state).read().split())
        except FileNotFoundError:
            cur, peak = 0, 0
        cur += delta
        peak = max(peak, cur)
        with open(state, "w") as f:
            f.write(f"{cur} {peak}")
        return peak

peak = update(1)
deadline = time.monotonic() + 30
while peak < limit and time.monotonic() < deadline:
    time.sleep(0.02)
    peak = update(0)
time.sleep(0.2)
update(-1)
"""

HEADER = re.compile(r"# (?P<cmd>.*)\n# Started at .+\n")
FOOTER = re.compile(r"# Accounting: time=\d+ threads=1\n"
                    r"# Ended \(code (?P<rc>\d+)\) at .+, elapsed time \d+ seconds\n$")


def run(tmp_path, *args):
    return subprocess.run(["perl", str(RUN_PL), *map(str, args)], capture_output=True, text=True,
                          cwd=tmp_path)


def body(log):
    text = Path(log).read_text()
    head, foot = HEADER.match(text), FOOTER.search(text)
    assert head and foot, text
    return head["cmd"], text[head.end():foot.start()], int(foot["rc"])


def test_single_job(tmp_path):
    proc = run(tmp_path, "a/b/c/job.log", "echo", "hello world")
    assert proc.returncode == 0, proc.stderr
    cmd, out, rc = body(tmp_path / "a/b/c/job.log")  # log directories are created
    assert (cmd, out, rc) == ("echo 'hello world'", "hello world\n", 0)


def test_array_substitutes_index_in_log_and_arguments(tmp_path):
    proc = run(tmp_path, "JOB=1:4", "log/x.JOB.log", "echo", "job JOB", "part.JOB.of.4")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "log").iterdir()) == [
        f"x.{i}.log" for i in range(1, 5)]
    for i in range(1, 5):
        cmd, out, rc = body(tmp_path / f"log/x.{i}.log")
        assert cmd == f"echo 'job {i}' part.{i}.of.4"
        assert out == f"job {i} part.{i}.of.4\n" and rc == 0


def test_range_not_starting_at_one_and_other_variable_name(tmp_path):
    proc = run(tmp_path, "SEED=3:5", "log/s.SEED.log", "echo", "SEED")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "log").iterdir()) == ["s.3.log", "s.4.log", "s.5.log"]
    assert body(tmp_path / "log/s.4.log")[1] == "4\n"


def test_job_is_not_exported(tmp_path):
    run(tmp_path, "JOB=1:1", "log/e.JOB.log", "echo ${JOB:-unset}")
    assert body(tmp_path / "log/e.1.log")[1] == "unset\n"


def test_failures_are_counted_and_first_failed_log_named(tmp_path):
    proc = run(tmp_path, "JOB=1:4", "log/f.JOB.log", "echo JOB; [ $((JOB % 2)) = 1 ] || exit 3")
    assert proc.returncode != 0
    assert proc.stderr.strip() == "run.pl: 2 / 4 failed, log is in log/f.2.log"
    assert [body(tmp_path / f"log/f.{i}.log")[2] for i in range(1, 5)] == [0, 3, 0, 3]
    assert body(tmp_path / "log/f.4.log")[1] == "4\n"  # every job ran


def test_single_failure(tmp_path):
    proc = run(tmp_path, "log/one.log", "false")
    assert proc.returncode != 0
    assert "run.pl: 1 / 1 failed, log is in log/one.log" in proc.stderr
    assert body(tmp_path / "log/one.log")[2] == 1


def test_stderr_goes_to_the_log(tmp_path):
    run(tmp_path, "log/err.log", "echo oops >&2")
    assert body(tmp_path / "log/err.log")[1] == "oops\n"


def test_quoted_pipe_as_one_argument(tmp_path):
    proc = run(tmp_path, "JOB=1:2", "log/p.JOB.log", "echo abcJOB | tr a-c A-C")
    assert proc.returncode == 0, proc.stderr
    assert body(tmp_path / "log/p.2.log")[:2] == ("echo abc2 | tr a-c A-C", "ABC2\n")


def test_escaped_pipe_and_redirection_tokens(tmp_path):
    proc = run(tmp_path, "JOB=1:2", "log/q.JOB.log", "echo", "x JOB", "|", "tr", "x", "y", ">",
               "out.JOB.txt")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out.2.txt").read_text() == "y 2\n"


def test_argument_with_pipe_and_quotes_reaches_the_program_unchanged(tmp_path):
    weird = "ark:gunzip -c it's.JOB.gz |"
    proc = run(tmp_path, "JOB=1:1", "log/w.JOB.log", "printf", "%s\\n", weird, "$HOME")
    assert proc.returncode == 0, proc.stderr
    assert body(tmp_path / "log/w.1.log")[1] == "ark:gunzip -c it's.1.gz |\n$HOME\n"


@pytest.mark.parametrize("max_jobs", [1, 2, 3])
def test_max_jobs_run_limits_concurrency(tmp_path, max_jobs):
    job = tmp_path / "counter.py"
    job.write_text(COUNTER)
    state = tmp_path / "state"
    proc = run(tmp_path, "--max-jobs-run", max_jobs, "JOB=1:7", "log/c.JOB.log",
               sys.executable, job, state, max_jobs)
    assert proc.returncode == 0, proc.stderr
    current, peak = map(int, state.read_text().split())
    assert current == 0
    assert peak == max_jobs  # reached, never exceeded
    assert len(list((tmp_path / "log").iterdir())) == 7


def test_cluster_options_accepted_and_noted(tmp_path):
    proc = run(tmp_path, "--gpu", "1", "--mem", "4G", "JOB=1:2", "--num-threads", "2",
               "--time=1:00:00", "--name", "exp/x", "log/g.JOB.log", "echo", "ok")
    assert proc.returncode == 0, proc.stderr
    _, out, _ = body(tmp_path / "log/g.2.log")
    assert "# run.pl: ignoring --gpu 1" in out and "--num-threads 2" in out
    assert out.endswith("ok\n")


@pytest.mark.parametrize("args,message", [
    (["--bogus", "1", "log/x.log", "true"], "unknown option --bogus"),
    (["JOB=1:3", "log/x.log", "true"], "share one log file"),
    (["JOB=3:1", "log/x.JOB.log", "true"], "empty job range"),
    (["--max-jobs-run", "0", "log/x.log", "true"], "positive integer"),
    (["log/x.log"], "Usage"),
])
def test_usage_errors(tmp_path, args, message):
    proc = run(tmp_path, *args)
    assert proc.returncode == 1 and message in proc.stderr
    assert not (tmp_path / "log").exists()
