"""The recipe benchmark wrapper reports the command's exit status and its memory."""

import json
import os
import sys

import pytest

from espnet_ser.bin import benchmark_recipe


def test_tree_rss_counts_this_process():
    rss = benchmark_recipe.tree_rss_bytes(os.getpid())
    assert rss > 10 * 2**20  # a Python interpreter with numpy/torch importable


def test_reports_figures_and_exit_status(tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = "import sys; x = bytearray(60 * 2**20); sys.exit(3)"
    with pytest.raises(SystemExit) as e:
        benchmark_recipe.main(["--json", str(out), "--interval", "0.05", "--", sys.executable, "-c", code])
    assert e.value.code == 3
    figures = json.loads(out.read_text())
    assert figures["returncode"] == 3
    assert figures["peak_rss_largest_process_mb"] >= 60
    assert "wall_seconds" in capsys.readouterr().out
