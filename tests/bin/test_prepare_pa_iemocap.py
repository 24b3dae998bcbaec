"""python -m espnet_ser.bin.prepare_pa_iemocap: options, exit status and messages."""

import subprocess
import sys

import pytest

from espnet_ser.bin import prepare_pa_iemocap as prepare_bin
from espnet_ser.data.pa_iemocap import prepare_pa_iemocap
from tests.data.test_iemocap import snapshot
from tests.data.test_pa_iemocap import break_value, make_trees, ocean_line


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    return make_trees(tmp_path_factory.mktemp("pa"))


def test_cli_writes_what_the_function_writes(trees, tmp_path):
    root, pa = trees
    prepare_bin.main(["--iemocap_root", str(root), "--pa_iemocap_root", str(pa),
                      "--out_dir", str(tmp_path / "data")])
    prepare_pa_iemocap(root, pa, tmp_path / "ref")
    assert snapshot(tmp_path / "data") == snapshot(tmp_path / "ref")


def test_cli_root_errors(trees, tmp_path, capsys):
    root, pa = trees
    with pytest.raises(SystemExit) as e:
        prepare_bin.main(["--iemocap_root", str(root), "--out_dir", str(tmp_path / "d")])
    assert e.value.code == 2
    assert "the following arguments are required: --pa_iemocap_root" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        prepare_bin.main(["--iemocap_root", str(root), "--pa_iemocap_root", str(tmp_path / "nope"),
                          "--out_dir", str(tmp_path / "d")])
    assert e.value.code == f"ERROR: --pa_iemocap_root {tmp_path / 'nope'}: no such directory"
    with pytest.raises(SystemExit) as e:
        prepare_bin.main(["--iemocap_root", str(tmp_path / "nope"), "--pa_iemocap_root", str(pa),
                          "--out_dir", str(tmp_path / "d")])
    assert e.value.code == f"ERROR: --iemocap_root {tmp_path / 'nope'}: no such directory"
    assert not (tmp_path / "d").exists()


def test_cli_exit_status(tmp_path):
    root, pa = make_trees(tmp_path)
    line = ocean_line(pa, "Ses05F_impro01", "m")
    break_value(root, pa)
    r = subprocess.run([sys.executable, "-m", "espnet_ser.bin.prepare_pa_iemocap",
                        "--iemocap_root", str(root), "--pa_iemocap_root", str(pa),
                        "--out_dir", str(tmp_path / "data")], capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == (
        f"ERROR: {pa / 'ocean.csv'}:{line}: dialogue Ses05F_impro01 m: CO '8' is outside 1-7")
    assert not (tmp_path / "data").exists()
