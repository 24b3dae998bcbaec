"""Stage 1 of egs/pa_iemocap (run.sh -> local/data.sh -> prepare_pa_iemocap) on small trees."""

import os
import subprocess
from pathlib import Path

from espnet_ser.data.datadir import read_kaldi_map
from espnet_ser.data.pa_iemocap import set_names
from tests.data.test_pa_iemocap import all_ids, make_trees

REPO = Path(__file__).resolve().parents[2]


def run(d: Path, *args):
    env = dict(os.environ, ESPNET_SER_ROOT=str(REPO))
    return subprocess.run(["./run.sh", *args], cwd=d, env=env, capture_output=True, text=True,
                          timeout=300)


def test_stage1(tmp_path, recipe_tools):
    copy_recipe, _ = recipe_tools
    root, pa = make_trees(tmp_path / "corpora")
    (tmp_path / "work").mkdir()
    d = copy_recipe("pa_iemocap", tmp_path / "work")
    proc = run(d, "--iemocap_root", str(root), "--pa_iemocap_root", str(pa))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Stage 1: data preparation" in proc.stdout
    assert sorted(p.name for p in (d / "data").iterdir()) == sorted(set_names())
    assert set(read_kaldi_map(d / "data" / "pa_iemocap_all" / "utt2personality")) == all_ids()
    log = (d / "exp" / "log" / "data.log").read_text()
    assert "after dropping 2 with no words in the transcript" in log
    # later stages do not exist yet; a missing PA-IEMOCAP root is named
    later = run(d, "--stop_stage", "2")
    assert later.returncode == 2 and "only stage 1 exists so far" in later.stderr
    missing = run(d, "--iemocap_root", str(root))
    assert missing.returncode == 1 and "failed; see exp/log/data.log" in missing.stdout
    assert "ERROR: --pa_iemocap_root " in (d / "exp" / "log" / "data.log").read_text()
    help_text = run(d, "--help").stdout
    assert "Stage 1 only for now" in help_text and "--pa_iemocap_root" in help_text
